#pragma once
// gzip for .tar.gz, as push adapters around Boost.Iostreams' zlib filters (zlib itself parses and writes the gzip
// wrapper: window bits 15 + 16). Output is produced in pieces of at most one buffer, so memory stays flat however
// well the data compresses.
#include <berth/tar/error.hpp>

#include <boost/iostreams/filter/zlib.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <utility>
#include <vector>

namespace berth::tar {

inline bool looks_gzipped(std::span<const char> first_bytes) noexcept {
    return first_bytes.size() >= 2 && static_cast<unsigned char>(first_bytes[0]) == 0x1f &&
           static_cast<unsigned char>(first_bytes[1]) == 0x8b;
}

namespace detail {
inline constexpr int gzip_window_bits = 15 + 16; // zlib: 32 KiB window, gzip wrapper instead of zlib's

inline boost::iostreams::zlib_params gzip_params(int level) {
    boost::iostreams::zlib_params p(level);
    p.window_bits = gzip_window_bits;
    return p;
}
} // namespace detail

// Push decompressor: feed() compressed slices, receive decompressed slices through a callback. Concatenated gzip
// members (gzip's own multi-member form) and zero padding after a member are accepted, like gzip(1) does.
class gunzip {
public:
    explicit gunzip(std::size_t buffer_size = 64 * 1024)
        : z_(std::make_unique<impl>(detail::gzip_params(boost::iostreams::zlib::default_compression))),
          buf_(buffer_size) {}

    // Calls out(std::span<const char>) for each decompressed piece; a piece is valid only during the call (so a
    // tar::reader fed from the callback must be drained to need_more before returning).
    template <class Out>
    void feed(std::span<const char> in, Out&& out) {
        const char* p = in.data();
        const char* const end = p + in.size();
        for (;;) {
            if (member_done_) {
                while (p != end && *p == '\0') ++p; // padding after a member
                if (p == end) break;
                z_->close(); // another member follows
                member_done_ = false;
            }
            if (p == end && !output_pending_) break;
            const char* before = p;
            char* dst = buf_.data();
            bool more = true;
            try {
                more = z_->filter(p, end, dst, buf_.data() + buf_.size(), false);
            } catch (const boost::iostreams::zlib_error& e) {
                // Z_BUF_ERROR only means "no progress possible now"; anything else is corrupt input.
                if (e.error() != boost::iostreams::zlib::buf_error)
                    throw error(errc::bad_compressed_data, std::string("gzip: ") + e.what(), {},
                                start_ + static_cast<std::uint64_t>(p - in.data()));
            }
            const std::size_t produced = static_cast<std::size_t>(dst - buf_.data());
            output_pending_ = produced == buf_.size();
            if (produced != 0) std::invoke(out, std::span<const char>(buf_.data(), produced));
            if (!more) {
                member_done_ = true;
                output_pending_ = false;
                continue;
            }
            if (p == before && produced == 0) break; // nothing to do without more input
        }
        start_ += in.size();
    }

    // End of the compressed stream: throws tar::error(truncated) unless it ended after a complete member.
    void finish() const {
        if (!member_done_) throw error(errc::truncated, "gzip stream ends inside a member", {}, start_);
    }

private:
    using impl = boost::iostreams::detail::zlib_decompressor_impl<>;
    std::unique_ptr<impl> z_;
    std::vector<char> buf_;
    std::uint64_t start_ = 0; // compressed bytes before the current feed()
    bool member_done_ = false, output_pending_ = false;
};

// Sink adapter: compresses what it is given and passes gzip output to `sink` (void(std::span<const char>)) in
// pieces of at most buffer_size. Call finish() once at the end to flush the gzip trailer.
template <class Sink>
class gzip_sink {
public:
    explicit gzip_sink(Sink sink, int level = 6, std::size_t buffer_size = 64 * 1024)
        : sink_(std::move(sink)), z_(std::make_unique<impl>(detail::gzip_params(level))), buf_(buffer_size) {}

    void operator()(std::span<const char> bytes) {
        const char* p = bytes.data();
        const char* const end = p + bytes.size();
        while (p != end) run(p, end, false);
    }

    void finish() {
        const char* p = nullptr;
        while (run(p, p, true)) {
        }
    }

    Sink& sink() noexcept { return sink_; }

private:
    using impl = boost::iostreams::detail::zlib_compressor_impl<>;

    // One deflate step; hands produced bytes on. Returns false once the stream is complete (flush only).
    bool run(const char*& p, const char* end, bool flush) {
        char* dst = buf_.data();
        bool more = true;
        try {
            more = z_->filter(p, end, dst, buf_.data() + buf_.size(), flush);
        } catch (const boost::iostreams::zlib_error& e) {
            if (e.error() != boost::iostreams::zlib::buf_error)
                throw error(errc::bad_compressed_data, std::string("gzip: ") + e.what());
        }
        if (dst != buf_.data()) std::invoke(sink_, std::span<const char>(buf_.data(), dst - buf_.data()));
        return more;
    }

    Sink sink_;
    std::unique_ptr<impl> z_;
    std::vector<char> buf_;
};

} // namespace berth::tar
