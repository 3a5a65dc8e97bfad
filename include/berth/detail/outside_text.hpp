#pragma once
// Text from outside (an engine's reply, a config file's value, a credential helper's output, a host name) in an
// error message: quoted once and bounded, whatever its size, with any secret the request carried taken out first.
// Every message berth builds from such text goes through here, so none can grow with what a hostile peer sends.
#include <span>
#include <string>
#include <string_view>

namespace berth::detail {

// How much of an outside text a message quotes.
inline constexpr std::size_t quoted_text_limit = 200;
// How much of an engine's own error message (the {"message"} of an error reply, an error in a progress stream) an
// error keeps: enough for any real one.
inline constexpr std::size_t engine_message_limit = 4096;

// Where to cut `text` to at most `limit` bytes without splitting a UTF-8 character.
inline std::size_t outside_text_cut(std::string_view text, std::size_t limit) {
    if (text.size() <= limit) return text.size();
    std::size_t cut = limit;
    for (int back = 0; back < 3 && cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0u) == 0x80u; ++back) --cut;
    return cut;
}

inline std::string cut_note(std::string_view text, std::size_t cut) {
    return cut < text.size() ? "... (" + std::to_string(text.size()) + " bytes)" : std::string();
}

// At most `limit` bytes of `text`, and when cut, "... (N bytes)" after them.
inline std::string bounded_outside_text(std::string_view text, std::size_t limit = engine_message_limit) {
    const std::size_t cut = outside_text_cut(text, limit);
    return std::string(text.substr(0, cut)) + cut_note(text, cut);
}

// 'text' bounded as above ('abc'... (100000 bytes) when cut), control characters escaped as \xNN (a NUL would cut
// what() short, a newline would forge a line of a log).
inline std::string quote_outside_text(std::string_view text, std::size_t limit = quoted_text_limit) {
    static constexpr char hex[] = "0123456789abcdef";
    const std::size_t cut = outside_text_cut(text, limit);
    std::string out = "'";
    for (char c : text.substr(0, cut)) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) {
            out += "\\x";
            out += hex[byte >> 4];
            out += hex[byte & 15];
        } else {
            out += c;
        }
    }
    return out + "'" + cut_note(text, cut);
}

// `text` with every occurrence of each secret replaced by "<redacted>". Secrets shorter than 3 bytes are left
// alone: they would redact ordinary words. Done before any bounding, so no prefix of a secret survives a cut.
inline std::string redact_secrets(std::string text, std::span<const std::string> secrets) {
    for (const std::string& secret : secrets) {
        if (secret.size() < 3) continue;
        for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 10))
            text.replace(at, secret.size(), "<redacted>");
    }
    return text;
}

// What a refused request's error quotes, for engines and API servers alike: the message the reply's JSON gave
// (`json_message`), else the body's text without trailing blanks, else "HTTP status N"; `secrets` redacted before
// it is bounded.
inline std::string reply_error_message(std::string json_message, std::string_view body, unsigned status,
                                       std::span<const std::string> secrets) {
    if (json_message.empty()) {
        while (!body.empty() && (body.back() == '\n' || body.back() == '\r' || body.back() == ' '))
            body.remove_suffix(1);
        json_message = body.empty() ? "HTTP status " + std::to_string(status) : std::string(body);
    }
    return bounded_outside_text(redact_secrets(std::move(json_message), secrets));
}

}  // namespace berth::detail
