#pragma once
// Encoding members: USTAR header blocks, preceded by a PAX 'x' header exactly when USTAR cannot hold a value.
// encode_header/padding_after are sans-I/O; writer<Sink> strings them together over any byte sink and checks
// that each member gets exactly the content its header announced.
#include <berth/tar/entry.hpp>
#include <berth/tar/error.hpp>
#include <berth/tar/header.hpp>
#include <berth/tar/pax.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace berth::tar {

struct writer_options {
    // Keep entry::mtime_nsec (costs a PAX header per member that has one); off by default so archives of the
    // same tree are plain USTAR and reproducible.
    bool preserve_subsecond = false;
};

inline constexpr std::size_t end_of_archive_size = 1024;  // two zero blocks

inline constexpr std::size_t padding_after(std::uint64_t content_size) noexcept {
    return static_cast<std::size_t>((block_size - content_size % block_size) % block_size);
}

namespace detail {

inline constexpr std::array<char, block_size + end_of_archive_size> zero_tail{};

inline bool is_ascii(std::string_view s) noexcept {
    for (char c : s)
        if (static_cast<unsigned char>(c) >= 0x80) return false;
    return true;
}

// What a reader that ignores PAX gets instead: the ASCII bytes of the value, cut to the field.
inline std::string ascii_fallback(std::string_view s, std::size_t field) {
    std::string out;
    for (char c : s)
        if (static_cast<unsigned char>(c) < 0x80 && out.size() < field) out += c;
    return out;
}

inline bool is_interpreted_pax_key(std::string_view k) noexcept {
    return k == pax_key::path || k == pax_key::linkpath || k == pax_key::size || k == pax_key::uid ||
           k == pax_key::gid || k == pax_key::uname || k == pax_key::gname || k == pax_key::mtime ||
           k.starts_with(pax_key::sparse_prefix);
}

inline constexpr std::int64_t max_octal_7 = 07777777;           // uid, gid, devices: 7 digits
inline constexpr std::uint64_t max_octal_11 = 077777777777ULL;  // size, mtime: 11 digits (8 GiB - 1)

}  // namespace detail

// Appends the header block(s) of `e` to `out`: a PAX 'x' header (with its padding) when needed, then the USTAR
// block. Throws tar::error(bad_header_field) for what no header can carry (empty name, NUL in a string, device
// numbers over 7 octal digits) and bad_pax_record for an unusable key in e.pax_records.
inline void encode_header(const entry& e, std::string& out, const writer_options& options = {}) {
    using namespace detail;
    auto fail = [&](errc c, const char* why) { throw error(c, why, e.name); };
    if (e.name.empty()) fail(errc::bad_header_field, "empty member name");
    for (const std::string* s : {&e.name, &e.linkname, &e.uname, &e.gname})
        if (s->find('\0') != std::string::npos) fail(errc::bad_header_field, "NUL in a name");
    if (e.devmajor > max_octal_7 || e.devminor > max_octal_7) fail(errc::bad_header_field, "device number too large");

    header h;
    h.format = header_format::ustar;
    h.typeflag = static_cast<char>(e.type);
    h.mode = e.mode & 07777;
    h.devmajor = e.devmajor;
    h.devminor = e.devminor;
    std::string pax;

    std::string name = e.name;
    if (e.type == entry_type::directory && name.back() != '/') name += '/';
    if (is_ascii(name) && (name.size() <= f_name.size || split_ustar_path(name))) {
        h.name = std::move(name);
    } else {
        append_pax_record(pax, pax_key::path, name);
        h.name = ascii_fallback(name, f_name.size);
    }
    if (is_ascii(e.linkname) && e.linkname.size() <= f_linkname.size) {
        h.linkname = e.linkname;
    } else {
        append_pax_record(pax, pax_key::linkpath, e.linkname);
        h.linkname = ascii_fallback(e.linkname, f_linkname.size);
    }
    const std::uint64_t size = e.type == entry_type::file ? e.size : 0;
    if (size > max_octal_11)
        append_pax_record(pax, pax_key::size, std::to_string(size));
    else
        h.size = static_cast<std::int64_t>(size);
    // Values USTAR cannot hold go to PAX; the USTAR field then says 0, as Python's tarfile does.
    auto id = [&](std::int64_t v, std::string_view key, std::int64_t& field) {
        if (v < 0 || v > max_octal_7)
            append_pax_record(pax, key, std::to_string(v));
        else
            field = v;
    };
    id(e.uid, pax_key::uid, h.uid);
    id(e.gid, pax_key::gid, h.gid);
    auto owner = [&](const std::string& v, std::string_view key, std::string& field) {
        if (v.size() > f_uname.size || !is_ascii(v)) {
            append_pax_record(pax, key, v);
            field = ascii_fallback(v, f_uname.size);
        } else {
            field = v;
        }
    };
    owner(e.uname, pax_key::uname, h.uname);
    owner(e.gname, pax_key::gname, h.gname);
    const bool subsecond = options.preserve_subsecond && e.mtime_nsec != 0;
    if (subsecond && e.mtime_nsec >= 1'000'000'000) fail(errc::bad_header_field, "mtime_nsec out of range");
    if (e.mtime < 0 || static_cast<std::uint64_t>(e.mtime) > max_octal_11 || subsecond)
        append_pax_record(pax, pax_key::mtime, format_pax_time({e.mtime, subsecond ? e.mtime_nsec : std::uint32_t{0}}));
    if (e.mtime >= 0 && static_cast<std::uint64_t>(e.mtime) <= max_octal_11) h.mtime = e.mtime;
    for (const auto& [k, v] : e.pax_records) {
        if (is_interpreted_pax_key(k)) continue;  // entry fields own these
        if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos)
            fail(errc::bad_pax_record, "unusable PAX key in pax_records");
        append_pax_record(pax, k, v);
    }

    const std::size_t start = out.size();
    if (!pax.empty()) {
        header x;
        x.format = header_format::ustar;
        x.typeflag = 'x';
        x.name = "././@PaxHeader";
        x.mode = 0644;
        x.size = static_cast<std::int64_t>(pax.size());
        x.mtime = h.mtime;
        out.resize(start + block_size);
        encode_header_block(x, block_span(out.data() + start, block_size));
        out += pax;
        out.append(padding_after(pax.size()), '\0');
    }
    const std::size_t at = out.size();
    out.resize(at + block_size);
    encode_header_block(h, block_span(out.data() + at, block_size));
}

// Streams an archive into `sink` (callable as void(std::span<const char>)). For a .tar.gz, pass a gzip_sink
// (gzip.hpp) and call its finish() after this writer's.
template <class Sink>
class writer {
public:
    explicit writer(Sink sink, writer_options options = {}) : sink_(std::move(sink)), options_(options) {}

    // Writes the header(s) of the next member (after the padding of the previous one).
    void add(const entry& e) {
        check_open();
        close_member();
        buf_.clear();
        buf_.append(padding_after(size_), '\0');
        encode_header(e, buf_, options_);
        size_ = remaining_ = e.type == entry_type::file ? e.size : 0;
        name_ = e.name;
        put(buf_);
    }

    // Content of the current member; more than its size announced is an error.
    void write(std::span<const char> bytes) {
        check_open();
        if (bytes.size() > remaining_)
            throw error(errc::size_mismatch, "more content than the member's size", name_, offset_);
        remaining_ -= bytes.size();
        if (!bytes.empty()) put(bytes);
    }

    // Padding of the last member and the end-of-archive marker.
    void finish() {
        check_open();
        close_member();
        put(std::span<const char>(detail::zero_tail.data(), padding_after(size_) + end_of_archive_size));
        finished_ = true;
    }

    Sink& sink() noexcept { return sink_; }
    std::uint64_t offset() const noexcept { return offset_; }  // bytes handed to the sink

private:
    void check_open() const {
        if (finished_) throw invalid_argument_error("tar::writer used after finish()");
    }
    void close_member() const {
        if (remaining_ != 0)
            throw error(errc::size_mismatch,
                        "member content shorter than its size (" + std::to_string(remaining_) + " bytes missing)",
                        name_, offset_);
    }
    void put(std::span<const char> bytes) {
        std::invoke(sink_, bytes);
        offset_ += bytes.size();
    }

    Sink sink_;
    writer_options options_;
    std::string buf_;
    std::string name_;
    std::uint64_t size_ = 0, remaining_ = 0, offset_ = 0;
    bool finished_ = false;
};

}  // namespace berth::tar
