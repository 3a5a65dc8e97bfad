#pragma once
// The 512-byte header block: field layout, numeric fields (octal and GNU base-256), checksum, and the USTAR,
// GNU and V7 dialects. Pure functions over one block; the reader and writer decide what the fields mean together.
#include <berth/tar/error.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace berth::tar {

inline constexpr std::size_t block_size = 512;
using block_view = std::span<const char, block_size>;
using block_span = std::span<char, block_size>;

enum class header_format : std::uint8_t {
    v7,     // no magic: name, ids, size, mtime, type and link name only
    ustar,  // "ustar\0" "00": adds uname/gname, devices and the 155-byte name prefix
    gnu,    // "ustar  \0" (oldgnu and gnu): no prefix; atime/ctime and the old sparse map live there instead
    star,   // "ustar\0" with "tar\0" at 508: 131-byte prefix
};

// The fields of one header block, decoded but not yet interpreted (typeflag is the raw byte).
struct header {
    header_format format = header_format::ustar;
    char typeflag = '0';
    std::string name;  // prefix + '/' + name for ustar/star
    std::string linkname;
    std::uint32_t mode = 0;
    std::int64_t uid = 0;
    std::int64_t gid = 0;
    std::int64_t size = 0;
    std::int64_t mtime = 0;
    std::string uname;
    std::string gname;
    std::uint32_t devmajor = 0;
    std::uint32_t devminor = 0;
};

namespace detail {

// Field offsets and widths (POSIX ustar, plus the GNU and star variants of the tail).
struct field {
    std::size_t offset, size;
};
inline constexpr field f_name{0, 100}, f_mode{100, 8}, f_uid{108, 8}, f_gid{116, 8}, f_size{124, 12}, f_mtime{136, 12},
    f_chksum{148, 8}, f_typeflag{156, 1}, f_linkname{157, 100}, f_magic{257, 6}, f_version{263, 2}, f_uname{265, 32},
    f_gname{297, 32}, f_devmajor{329, 8}, f_devminor{337, 8}, f_prefix{345, 155}, f_star_prefix{345, 131},
    f_star_trailer{508, 4};
// Old GNU sparse map inside the main header and in extension blocks.
inline constexpr std::size_t gnu_sparse_offset = 386, gnu_sparse_entries = 4, gnu_isextended = 482, gnu_realsize = 483,
                             gnu_ext_entries = 21, gnu_ext_isextended = 504;

inline std::string_view raw(block_view b, field f) noexcept { return {b.data() + f.offset, f.size}; }

// A NUL-terminated string field (a field that is full has no terminator).
inline std::string_view c_string(std::string_view s) noexcept {
    const auto n = s.find('\0');
    return n == std::string_view::npos ? s : s.substr(0, n);
}

inline bool is_octal_digit(char c) noexcept { return c >= '0' && c <= '7'; }

}  // namespace detail

// Decodes a numeric field: octal text (leading spaces/NULs skipped, terminated by space or NUL like GNU tar
// accepts), or GNU base-256 when the high bit of the first byte is set (0x80 positive, 0xff negative).
// nullopt when the field is garbage or does not fit in int64.
inline std::optional<std::int64_t> parse_numeric(std::string_view f) noexcept {
    if (!f.empty() && (static_cast<unsigned char>(f[0]) & 0x80)) {
        // Two's complement over the field with the marker bit removed: -a-1 == ~a lets us read negatives as
        // inverted positives.
        const unsigned char inv = (static_cast<unsigned char>(f[0]) & 0x40) ? 0xff : 0x00;
        std::uint64_t x = 0;
        for (std::size_t i = 0; i < f.size(); ++i) {
            unsigned char c = static_cast<unsigned char>(f[i]) ^ inv;
            if (i == 0) c &= 0x7f;
            if (x >> 56) return std::nullopt;
            x = (x << 8) | c;
        }
        if (x >> 63) return std::nullopt;
        return inv ? ~static_cast<std::int64_t>(x) : static_cast<std::int64_t>(x);
    }
    std::size_t i = 0;
    while (i < f.size() && (f[i] == ' ' || f[i] == '\0')) ++i;
    std::uint64_t x = 0;
    for (; i < f.size() && detail::is_octal_digit(f[i]); ++i) {
        if (x >> 60) return std::nullopt;
        x = (x << 3) | static_cast<std::uint64_t>(f[i] - '0');
    }
    if (i < f.size() && f[i] != ' ' && f[i] != '\0') return std::nullopt;
    if (x >> 63) return std::nullopt;
    return static_cast<std::int64_t>(x);
}

// Octal with a trailing NUL, zero-padded to fill the field; false when the value needs more digits.
inline bool format_octal(std::span<char> f, std::uint64_t v) noexcept {
    std::size_t digits = f.size() - 1;
    if (digits < 22 && (v >> (3 * digits)) != 0) return false;
    f[digits] = '\0';
    for (std::size_t i = digits; i-- > 0; v >>= 3) f[i] = static_cast<char>('0' + (v & 7));
    return true;
}

// GNU base-256 (big-endian two's complement with the marker bit); false when the value needs more bytes.
inline bool format_base256(std::span<char> f, std::int64_t v) noexcept {
    const std::size_t bits = (f.size() - 1) * 8;
    if (bits < 63) {
        const std::int64_t lim = std::int64_t{1} << bits;
        if (v >= lim || v < -lim) return false;
    }
    auto u = static_cast<std::uint64_t>(v);
    for (std::size_t i = f.size(); i-- > 0;) {
        f[i] = static_cast<char>(u & 0xff);
        u = v < 0 ? (u >> 8) | (std::uint64_t{0xff} << 56) : u >> 8;
    }
    f[0] = static_cast<char>(v < 0 ? 0xff : 0x80);
    return true;
}

inline bool is_zero_block(block_view b) noexcept {
    // Word-wise: this runs on every header, and end-of-archive detection must stay cheap.
    std::uint64_t acc = 0;
    for (std::size_t i = 0; i < block_size; i += 8) {
        std::uint64_t w;
        std::memcpy(&w, b.data() + i, 8);
        acc |= w;
    }
    return acc == 0;
}

// The two sums a writer may have used: over unsigned bytes (POSIX) and over signed chars (old Sun/historic
// tars), both with the checksum field counted as spaces.
struct checksums {
    std::int64_t unsigned_sum, signed_sum;
};
inline checksums compute_checksums(block_view b) noexcept {
    std::int64_t u = 0, s = 0;
    for (std::size_t i = 0; i < block_size; ++i) {
        const bool in_field = i >= detail::f_chksum.offset && i < detail::f_chksum.offset + detail::f_chksum.size;
        const char c = in_field ? ' ' : b[i];
        u += static_cast<unsigned char>(c);
        s += static_cast<signed char>(c);
    }
    return {u, s};
}

inline bool verify_checksum(block_view b) noexcept {
    const std::string_view f = detail::raw(b, detail::f_chksum);
    // The stored sum is octal; a base-256 or empty checksum field is never valid.
    if ((static_cast<unsigned char>(f[0]) & 0x80) ||
        detail::c_string(f).find_first_not_of(' ') == std::string_view::npos)
        return false;
    const auto stored = parse_numeric(f);
    if (!stored) return false;
    const auto sums = compute_checksums(b);
    return *stored == sums.unsigned_sum || *stored == sums.signed_sum;
}

inline header_format detect_format(block_view b) noexcept {
    const std::string_view magic = detail::raw(b, detail::f_magic);
    const std::string_view version = detail::raw(b, detail::f_version);
    if (magic == std::string_view("ustar\0", 6)) {
        return detail::raw(b, detail::f_star_trailer) == std::string_view("tar\0", 4) ? header_format::star
                                                                                      : header_format::ustar;
    }
    if (magic == "ustar " && version == std::string_view(" \0", 2)) return header_format::gnu;
    return header_format::v7;
}

// Decodes one non-zero header block into `h` (reusing its string capacity). Throws tar::error with `offset`:
// bad_checksum, or bad_header_field for a numeric field that is garbage or out of range.
inline void decode_header(block_view b, header& h, std::uint64_t offset = error::no_offset) {
    using namespace detail;
    h.format = detect_format(b);
    h.typeflag = b[f_typeflag.offset];
    h.name.assign(c_string(raw(b, f_name)));
    if (h.format == header_format::ustar || h.format == header_format::star) {
        const auto prefix = c_string(raw(b, h.format == header_format::star ? f_star_prefix : f_prefix));
        if (!prefix.empty()) {
            h.name.insert(0, 1, '/');
            h.name.insert(0, prefix);
        }
    }
    if (!verify_checksum(b)) throw error(errc::bad_checksum, "header checksum mismatch", h.name, offset);

    auto number = [&](field f, const char* what) {
        const auto v = parse_numeric(raw(b, f));
        if (!v) throw error(errc::bad_header_field, std::string("invalid ") + what + " field", h.name, offset);
        return *v;
    };
    auto small = [&](field f, const char* what, std::int64_t max) {
        const auto v = number(f, what);
        if (v < 0 || v > max) throw error(errc::bad_header_field, std::string(what) + " out of range", h.name, offset);
        return v;
    };
    // Old writers put the file-type bits (S_IFREG...) into mode; only permission bits are meant.
    h.mode = static_cast<std::uint32_t>(small(f_mode, "mode", 0xffffffff) & 07777);
    h.uid = number(f_uid, "uid");
    h.gid = number(f_gid, "gid");
    h.size = number(f_size, "size");
    if (h.size < 0) throw error(errc::bad_header_field, "negative size", h.name, offset);
    h.mtime = number(f_mtime, "mtime");
    h.linkname.assign(c_string(raw(b, f_linkname)));
    if (h.format == header_format::v7) {
        h.uname.clear();
        h.gname.clear();
        h.devmajor = h.devminor = 0;
    } else {
        h.uname.assign(c_string(raw(b, f_uname)));
        h.gname.assign(c_string(raw(b, f_gname)));
        h.devmajor = static_cast<std::uint32_t>(small(f_devmajor, "devmajor", 0xffffffff));
        h.devminor = static_cast<std::uint32_t>(small(f_devminor, "devminor", 0xffffffff));
    }
}

inline header decode_header(block_view b, std::uint64_t offset = error::no_offset) {
    header h;
    decode_header(b, h, offset);
    return h;
}

// Where to split a path into USTAR prefix (<= 155) and name (<= 100, non-empty) at a '/'; nullopt if impossible.
// Returns the index of the separating '/'.
inline std::optional<std::size_t> split_ustar_path(std::string_view path) noexcept {
    if (path.size() <= detail::f_name.size) return std::nullopt;  // fits without a prefix
    if (path.size() > detail::f_prefix.size + 1 + detail::f_name.size) return std::nullopt;
    // The first '/' that leaves at most 100 bytes after it; the prefix then is as short as possible.
    std::size_t from = path.size() - detail::f_name.size - 1;
    const auto i = path.find('/', from);
    if (i == std::string_view::npos || i == 0 || i + 1 == path.size() || i > detail::f_prefix.size) return std::nullopt;
    return i;
}

// Encodes `h` into one block: the magic of h.format, name split into prefix when needed (ustar), numbers in
// octal (base-256 when they do not fit and the format is gnu), checksum last. Throws tar::error(bad_header_field)
// when a value cannot be represented; the caller (writer) moves such values to a PAX header first.
inline void encode_header_block(const header& h, block_span out) {
    using namespace detail;
    std::fill(out.begin(), out.end(), '\0');
    auto fail = [&](const char* what) {
        throw error(errc::bad_header_field, std::string(what) + " does not fit in the header", h.name);
    };
    auto put_string = [&](field f, std::string_view s, const char* what) {
        if (s.size() > f.size || s.find('\0') != std::string_view::npos) fail(what);
        std::memcpy(out.data() + f.offset, s.data(), s.size());
    };
    auto put_number = [&](field f, std::int64_t v, const char* what) {
        const std::span<char> dst(out.data() + f.offset, f.size);
        if (v >= 0 && format_octal(dst, static_cast<std::uint64_t>(v))) return;
        if (h.format == header_format::gnu && format_base256(dst, v)) return;
        fail(what);
    };

    std::string_view name = h.name;
    if (name.size() > f_name.size && (h.format == header_format::ustar || h.format == header_format::star)) {
        const auto split = split_ustar_path(name);
        if (!split || *split > (h.format == header_format::star ? f_star_prefix.size : f_prefix.size)) fail("name");
        put_string(h.format == header_format::star ? f_star_prefix : f_prefix, name.substr(0, *split), "name");
        name = name.substr(*split + 1);
    }
    put_string(f_name, name, "name");
    put_number(f_mode, h.mode & 07777, "mode");
    put_number(f_uid, h.uid, "uid");
    put_number(f_gid, h.gid, "gid");
    put_number(f_size, h.size, "size");
    put_number(f_mtime, h.mtime, "mtime");
    out[f_typeflag.offset] = h.typeflag;
    put_string(f_linkname, h.linkname, "linkname");
    switch (h.format) {
    case header_format::v7: break;
    case header_format::gnu: std::memcpy(out.data() + f_magic.offset, "ustar  ", 8); break;
    case header_format::star: std::memcpy(out.data() + f_star_trailer.offset, "tar", 4); [[fallthrough]];
    case header_format::ustar:
        std::memcpy(out.data() + f_magic.offset,
                    "ustar\0"
                    "00",
                    8);
        break;
    }
    if (h.format != header_format::v7) {
        put_string(f_uname, h.uname, "uname");
        put_string(f_gname, h.gname, "gname");
        put_number(f_devmajor, h.devmajor, "devmajor");
        put_number(f_devminor, h.devminor, "devminor");
    }
    // Classic layout: six octal digits, NUL, space.
    const auto sum = compute_checksums(out).unsigned_sum;
    format_octal(std::span<char>(out.data() + f_chksum.offset, 7), static_cast<std::uint64_t>(sum));
    out[f_chksum.offset + 7] = ' ';
}

}  // namespace berth::tar
