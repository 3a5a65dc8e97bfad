#pragma once
// base64 (RFC 4648, with padding): decoding of the engine's X-Docker-Container-Path-Stat header (either alphabet
// accepted), encoding for the registry headers (the url alphabet, as Go's base64.URLEncoding that the engine
// decodes them with) and the mock engine's stat header (the standard one).
#include <optional>
#include <string>
#include <string_view>

namespace berth::detail {

namespace base64_alphabet {
inline constexpr char standard[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
inline constexpr char url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
}  // namespace base64_alphabet

inline std::string base64_encode(std::string_view in, const char (&alphabet)[65] = base64_alphabet::standard) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    auto byte = [&](std::size_t i) { return unsigned{static_cast<unsigned char>(in[i])}; };
    std::size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        unsigned v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
        for (int shift : {18, 12, 6, 0}) out += alphabet[(v >> shift) & 63];
    }
    if (std::size_t rest = in.size() - i; rest > 0) {
        unsigned v = byte(i) << 16;
        if (rest == 2) v |= byte(i + 1) << 8;
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += rest == 2 ? alphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

inline std::string base64url_encode(std::string_view in) { return base64_encode(in, base64_alphabet::url); }

// nullopt when the text is not base64.
inline std::optional<std::string> base64_decode(std::string_view in) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+' || c == '-') return 62;
        if (c == '/' || c == '_') return 63;
        return -1;
    };
    while (!in.empty() && in.back() == '=') in.remove_suffix(1);
    std::string out;
    out.reserve(in.size() * 3 / 4);
    unsigned acc = 0;
    int bits = 0;
    for (char c : in) {
        int v = value(c);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xFF);
        }
    }
    if (bits >= 6) return std::nullopt;  // a lone trailing character cannot be
    return out;
}

}  // namespace berth::detail
