#pragma once
// PAX extended header records ("%d %s=%s\n"): strict parsing, encoding with the self-referential length, and the
// numeric/time value syntaxes PAX uses. What the records mean for an entry is the reader's and writer's business.
#include <berth/tar/error.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace berth::tar {

// Keys berth interprets (everything else is carried in entry::pax_records).
namespace pax_key {
inline constexpr std::string_view path = "path", linkpath = "linkpath", size = "size", uid = "uid", gid = "gid",
                                  uname = "uname", gname = "gname", mtime = "mtime";
inline constexpr std::string_view sparse_prefix = "GNU.sparse.";
}  // namespace pax_key

// Calls on_record(key, value) for each record of `payload`, in order (a key may repeat: GNU sparse 0.0 does it).
// Throws tar::error(bad_pax_record) at base_offset + the record's position for: a length that is not decimal,
// overflows, is too small or runs past the payload; a record not ending in '\n'; no '=' ; an empty key or a key
// containing NUL.
template <class OnRecord>
void parse_pax_records(std::string_view payload, OnRecord&& on_record, std::uint64_t base_offset = error::no_offset,
                       const std::string& entry_name = {}) {
    std::size_t pos = 0;
    while (pos < payload.size()) {
        const std::string_view rest = payload.substr(pos);
        auto fail = [&](const char* why) {
            throw error(errc::bad_pax_record, why, entry_name,
                        base_offset == error::no_offset ? base_offset : base_offset + pos);
        };
        std::size_t i = 0, len = 0;
        while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') {
            // Leading zeros are allowed (Go and Python parse the length as a plain integer); the value is bounded.
            if (len >= 100'000'000'000'000'000) fail("PAX record length too long");
            len = len * 10 + static_cast<std::size_t>(rest[i] - '0');
            ++i;
        }
        if (i == 0 || i >= rest.size() || rest[i] != ' ') fail("PAX record length is not a decimal number");
        // The length counts itself, the space, the key, '=' and '\n': at least "5 k=\n".
        if (len < i + 4 || len > rest.size()) fail("PAX record length out of range");
        const std::string_view rec = rest.substr(i + 1, len - i - 1);
        if (rec.back() != '\n') fail("PAX record does not end in a newline");
        const auto eq = rec.find('=');
        if (eq == std::string_view::npos) fail("PAX record without '='");
        const std::string_view key = rec.substr(0, eq);
        if (key.empty()) fail("PAX record with an empty key");
        if (key.find('\0') != std::string_view::npos) fail("PAX record key contains NUL");
        on_record(key, rec.substr(eq + 1, rec.size() - eq - 2));
        pos += len;
    }
}

namespace detail {
inline std::size_t decimal_digits(std::size_t n) noexcept {
    std::size_t d = 1;
    while (n >= 10) n /= 10, ++d;
    return d;
}
}  // namespace detail

// Total length of the record for key/value, including its own length digits (which may add a digit).
inline std::size_t pax_record_size(std::string_view key, std::string_view value) noexcept {
    const std::size_t body = key.size() + value.size() + 3;  // ' ', '=', '\n'
    const std::size_t digits = detail::decimal_digits(body);
    const std::size_t total = body + digits;
    return detail::decimal_digits(total) > digits ? total + 1 : total;  // 9+1 -> "11 ..." not "10 ..."
}

inline void append_pax_record(std::string& out, std::string_view key, std::string_view value) {
    out += std::to_string(pax_record_size(key, value));
    out += ' ';
    out += key;
    out += '=';
    out += value;
    out += '\n';
}

// A decimal integer as PAX writes it: optional '-', then digits, nothing else; nullopt when invalid or outside
// int64. Leading zeros do not count against the range (Go, Python, GNU tar and bsdtar accept "000…0042").
inline std::optional<std::int64_t> parse_pax_integer(std::string_view s) noexcept {
    const bool neg = !s.empty() && s[0] == '-';
    if (neg) s.remove_prefix(1);
    while (s.size() > 1 && s[0] == '0') s.remove_prefix(1);
    if (s.empty() || s.size() > 19) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (v > (neg ? std::uint64_t{1} << 63 : (std::uint64_t{1} << 63) - 1)) return std::nullopt;
    return neg ? static_cast<std::int64_t>(0 - v) : static_cast<std::int64_t>(v);
}

// A point in time as seconds plus a non-negative nanosecond part: -1.5 s is {-2, 500000000}.
struct pax_time {
    std::int64_t sec = 0;
    std::uint32_t nsec = 0;
    friend bool operator==(const pax_time&, const pax_time&) = default;
};

// "[-]seconds[.fraction]"; the fraction keeps 9 digits (more are truncated) and carries the sign of the whole,
// so "-1.5" is 1.5 s before the epoch.
inline std::optional<pax_time> parse_pax_time(std::string_view s) noexcept {
    const auto dot = s.find('.');
    const std::string_view whole = s.substr(0, dot);
    const auto sec = parse_pax_integer(whole);
    if (!sec) return std::nullopt;
    std::uint32_t nsec = 0;
    if (dot != std::string_view::npos) {
        const std::string_view frac = s.substr(dot + 1);
        std::uint32_t scale = 100'000'000;
        for (char c : frac) {
            if (c < '0' || c > '9') return std::nullopt;
            nsec += static_cast<std::uint32_t>(c - '0') * scale;
            scale /= 10;
        }
    }
    if (!whole.empty() && whole[0] == '-' && nsec != 0) {
        if (*sec == INT64_MIN) return std::nullopt;
        return pax_time{*sec - 1, 1'000'000'000 - nsec};
    }
    return pax_time{*sec, nsec};
}

inline std::string format_pax_time(pax_time t) {
    if (t.nsec == 0) return std::to_string(t.sec);
    std::string out;
    std::uint32_t frac = t.nsec;
    if (t.sec < 0) {
        // {-2, 0.5e9} is -1.5: print the magnitude of the whole and the complement of the fraction.
        out = "-" + std::to_string(static_cast<std::uint64_t>(-(t.sec + 1)));
        frac = 1'000'000'000 - t.nsec;
    } else {
        out = std::to_string(t.sec);
    }
    std::string digits = std::to_string(frac);
    digits.insert(0, 9 - digits.size(), '0');
    digits.erase(digits.find_last_not_of('0') + 1);
    return out + "." + digits;
}

}  // namespace berth::tar
