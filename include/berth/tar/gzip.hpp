#pragma once
// gzip for .tar.gz, as push adapters around zlib (zlib itself parses and writes the gzip wrapper: window bits
// 15 + 16). Output is produced in pieces of at most one buffer, so memory stays flat however well the data
// compresses. zlib is used directly: it is small, stable and C, where Boost.Iostreams offers push-style
// filtering only through its internal classes.
#include <berth/tar/error.hpp>

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace berth::tar {

inline bool looks_gzipped(std::span<const char> first_bytes) noexcept {
    return first_bytes.size() >= 2 && static_cast<unsigned char>(first_bytes[0]) == 0x1f &&
           static_cast<unsigned char>(first_bytes[1]) == 0x8b;
}

namespace detail {
inline constexpr int gzip_window_bits = 15 + 16;  // zlib: 32 KiB window, gzip wrapper instead of zlib's

// A z_stream for one direction. zlib's state points back at its z_stream, so it lives at a fixed address (the
// adapters hold it through unique_ptr and stay movable).
class z_stream_holder {
public:
    enum class mode { inflate, deflate };

    z_stream_holder(mode m, int level) : mode_(m) {
        const int rc = m == mode::inflate
                           ? ::inflateInit2(&s_, gzip_window_bits)
                           : ::deflateInit2(&s_, level, Z_DEFLATED, gzip_window_bits, 8, Z_DEFAULT_STRATEGY);
        if (rc == Z_MEM_ERROR) throw std::bad_alloc();
        if (rc != Z_OK)
            throw invalid_argument_error("gzip: zlib refused the settings (level " + std::to_string(level) + ")");
    }
    z_stream_holder(const z_stream_holder&) = delete;
    z_stream_holder& operator=(const z_stream_holder&) = delete;
    ~z_stream_holder() {
        if (mode_ == mode::inflate)
            ::inflateEnd(&s_);
        else
            ::deflateEnd(&s_);
    }

    // Points zlib at [in, in_end) and [out, out_end); sizes above what zlib's 32-bit counters take are clamped
    // (the callers loop until everything is consumed).
    void set(const char* in, const char* in_end, char* out, char* out_end) noexcept {
        s_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in));
        s_.avail_in = clamp(in_end - in);
        s_.next_out = reinterpret_cast<Bytef*>(out);
        s_.avail_out = clamp(out_end - out);
    }
    const char* next_in() const noexcept { return reinterpret_cast<const char*>(s_.next_in); }
    char* next_out() const noexcept { return reinterpret_cast<char*>(s_.next_out); }
    const char* message() const noexcept { return s_.msg != nullptr ? s_.msg : "corrupt data"; }
    z_stream* get() noexcept { return &s_; }

private:
    static uInt clamp(std::ptrdiff_t n) noexcept {
        const auto limit = std::uint64_t{std::numeric_limits<uInt>::max()};
        return static_cast<uInt>(std::min(static_cast<std::uint64_t>(n), limit));
    }
    z_stream s_{};
    mode mode_;
};
}  // namespace detail

// Push decompressor: feed() compressed slices, receive decompressed slices through a callback. Concatenated gzip
// members (gzip's own multi-member form) and zero padding after a member are accepted, like gzip(1) does.
class gunzip {
public:
    explicit gunzip(std::size_t buffer_size = 64 * 1024)
        : z_(std::make_unique<detail::z_stream_holder>(detail::z_stream_holder::mode::inflate, 0)), buf_(buffer_size) {}

    // Calls out(std::span<const char>) for each decompressed piece; a piece is valid only during the call (so a
    // tar::reader fed from the callback must be drained to need_more before returning).
    template <class Out>
    void feed(std::span<const char> in, Out&& out) {
        const char* p = in.data();
        const char* const end = p + in.size();
        for (;;) {
            if (member_done_) {
                while (p != end && *p == '\0') ++p;  // padding after a member
                if (p == end) break;
                ::inflateReset(z_->get());  // another member follows
                member_done_ = false;
            }
            if (p == end && !output_pending_) break;
            const char* const before = p;
            z_->set(p, end, buf_.data(), buf_.data() + buf_.size());
            const int rc = ::inflate(z_->get(), Z_NO_FLUSH);
            p = z_->next_in();
            // Z_BUF_ERROR only means "no progress possible now"; anything else but OK / end is corrupt input.
            if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
                throw error(errc::bad_compressed_data, std::string("gzip: ") + z_->message(), {},
                            start_ + static_cast<std::uint64_t>(p - in.data()));
            const auto produced = static_cast<std::size_t>(z_->next_out() - buf_.data());
            output_pending_ = produced == buf_.size();
            if (produced != 0) std::invoke(out, std::span<const char>(buf_.data(), produced));
            if (rc == Z_STREAM_END) {
                member_done_ = true;
                output_pending_ = false;
                continue;
            }
            if (p == before && produced == 0) break;  // nothing to do without more input
        }
        start_ += in.size();
    }

    // End of the compressed stream: throws tar::error(truncated) unless it ended after a complete member.
    void finish() const {
        if (!member_done_) throw error(errc::truncated, "gzip stream ends inside a member", {}, start_);
    }

private:
    std::unique_ptr<detail::z_stream_holder> z_;
    std::vector<char> buf_;
    std::uint64_t start_ = 0;  // compressed bytes before the current feed()
    bool member_done_ = false, output_pending_ = false;
};

// Sink adapter: compresses what it is given and passes gzip output to `sink` (void(std::span<const char>)) in
// pieces of at most buffer_size. Call finish() once at the end to flush the gzip trailer.
template <class Sink>
class gzip_sink {
public:
    explicit gzip_sink(Sink sink, int level = 6, std::size_t buffer_size = 64 * 1024)
        : sink_(std::move(sink)),
          z_(std::make_unique<detail::z_stream_holder>(detail::z_stream_holder::mode::deflate, level)),
          buf_(buffer_size) {}

    void operator()(std::span<const char> bytes) {
        const char* p = bytes.data();
        const char* const end = p + bytes.size();
        while (p != end) run(p, end, Z_NO_FLUSH);
    }

    void finish() {
        const char* p = nullptr;
        while (run(p, p, Z_FINISH)) {}
    }

    Sink& sink() noexcept { return sink_; }

private:
    // One deflate step; hands produced bytes on. Returns false once the stream is complete (Z_FINISH only).
    bool run(const char*& p, const char* end, int flush) {
        z_->set(p, end, buf_.data(), buf_.data() + buf_.size());
        const int rc = ::deflate(z_->get(), flush);
        p = z_->next_in();
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
            throw error(errc::bad_compressed_data, std::string("gzip: ") + z_->message());
        const auto produced = static_cast<std::size_t>(z_->next_out() - buf_.data());
        if (produced != 0) std::invoke(sink_, std::span<const char>(buf_.data(), produced));
        return rc != Z_STREAM_END;
    }

    Sink sink_;
    std::unique_ptr<detail::z_stream_holder> z_;
    std::vector<char> buf_;
};

}  // namespace berth::tar
