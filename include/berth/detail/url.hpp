#pragma once
// Percent-encoding of path segments and query values, and a small query-string builder.
#include <string>
#include <string_view>

namespace berth::detail {

inline std::string percent_encode(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                          c == '.' || c == '_' || c == '~';
        if (unreserved) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

class query {
public:
    // Distinct names for flags and numbers: a string literal would otherwise convert to bool before string_view.
    query& add(std::string_view key, std::string_view value) {
        text_ += text_.empty() ? '?' : '&';
        text_ += percent_encode(key);
        text_ += '=';
        text_ += percent_encode(value);
        return *this;
    }
    query& add_flag(std::string_view key, bool value) { return add(key, std::string_view(value ? "1" : "0")); }
    query& add_number(std::string_view key, long long value) { return add(key, std::to_string(value)); }
    query& add_if(bool condition, std::string_view key, std::string_view value) {
        return condition ? add(key, value) : *this;
    }
    const std::string& str() const { return text_; }

private:
    std::string text_;
};

}  // namespace berth::detail
