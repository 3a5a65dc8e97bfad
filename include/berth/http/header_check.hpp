#pragma once
// The one rule for a request header berth sends: the name an HTTP token (RFC 9110), the value free of control
// characters but tab (so no CR, LF or NUL can end the header early and smuggle another). Each API checks what its
// caller gave with it before anything is sent, in its own words; http::exchange checks every header again.
#include <algorithm>
#include <optional>
#include <string>
#include <string_view>

namespace berth::http {

inline bool is_token_char(char c) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// What is wrong with the header, or nothing.
inline std::optional<std::string> header_problem(std::string_view name, std::string_view value) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char)) return "its name is not an HTTP token";
    for (char c : value) {
        const auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u == 0x7f) return "its value holds a control character (CR, LF, NUL...)";
    }
    return std::nullopt;
}

}  // namespace berth::http
