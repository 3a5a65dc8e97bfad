#pragma once
// The YAML that kubeconfigs are written in, and nothing more: block mappings and sequences ("- " items, also at the
// indentation of their key, as kubectl writes them), plain, single- and double-quoted one-line scalars, comments,
// and the empty flow collections [] and {}; a file whose first character is '{' or '[' is JSON (JSON is YAML).
// Anything else (anchors, aliases, tags, block scalars, multi-line scalars, several documents, flow collections
// with content, tabs in indentation) is a kubeconfig_error naming the file and the line: berth adds no YAML
// library, and a config it would read differently from kubectl must not be used.
#include <berth/detail/outside_text.hpp>
#include <berth/engine/json.hpp>
#include <berth/kubernetes/error.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace berth::kubernetes::detail {

class yaml_subset_parser {
public:
    static constexpr std::size_t max_depth = 64;

    yaml_subset_parser(std::string_view text, std::string file) : file_(std::move(file)) { split_lines(text); }

    boost::json::value parse() {
        if (lines_.empty()) return boost::json::object{};
        auto v = parse_node(0, 0);
        if (at_ < lines_.size()) fail(lines_[at_].number, "unexpected indentation");
        return v;
    }

private:
    struct line {
        std::size_t number = 0;  // 1-based, for errors
        std::size_t indent = 0;  // columns before the content
        std::string content{};   // without indentation, comment and trailing blanks
    };

    [[noreturn]] void fail(std::size_t line_number, const std::string& what) const {
        throw kubeconfig_error(file_, line_number, what);
    }

    // Whether a quote at s[i] opens a quoted scalar: at the start, or after "key: " or "- " (in `a 'b` it is text).
    static bool starts_scalar(std::string_view s, std::size_t i) {
        if (i == 0) return true;
        std::size_t j = i;
        while (j > 0 && s[j - 1] == ' ') --j;
        if (j == i) return false;
        if (j == 0) return true;
        return s[j - 1] == ':' || (s[j - 1] == '-' && (j == 1 || s[j - 2] == ' '));
    }

    // Removes a comment: '#' at the start or after a blank, outside quotes.
    std::string strip_comment(std::string_view s, std::size_t number) const {
        char quote = 0;
        for (std::size_t i = 0; i < s.size(); ++i) {
            const char c = s[i];
            if (quote == '\'') {
                if (c == '\'') {
                    if (i + 1 < s.size() && s[i + 1] == '\'')
                        ++i;
                    else
                        quote = 0;
                }
            } else if (quote == '"') {
                if (c == '\\')
                    ++i;
                else if (c == '"')
                    quote = 0;
            } else if ((c == '"' || c == '\'') && starts_scalar(s, i)) {
                quote = c;
            } else if (c == '#' && (i == 0 || s[i - 1] == ' ')) {
                s = s.substr(0, i);
                break;
            }
        }
        if (quote != 0) fail(number, "a quoted scalar does not end on its line (multi-line scalars are not supported)");
        while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
        return std::string(s);
    }

    void split_lines(std::string_view text) {
        if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // a UTF-8 byte-order mark
        std::size_t number = 0;
        bool seen_content = false;
        while (!text.empty()) {
            auto nl = text.find('\n');
            std::string_view raw = text.substr(0, nl);
            text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
            ++number;
            if (raw.ends_with('\r')) raw.remove_suffix(1);
            for (char c : raw)
                if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
                    fail(number, "a control character in the text");
            std::size_t indent = 0;
            while (indent < raw.size() && raw[indent] == ' ') ++indent;
            std::string content = strip_comment(raw.substr(indent), number);
            if (content.empty()) continue;
            if (content.front() == '\t') fail(number, "a tab in the indentation");
            if (content == "---" && !seen_content && indent == 0) {
                seen_content = true;  // an explicit start of the one document
                continue;
            }
            if (content.starts_with("---") || content.starts_with("...") || content.front() == '%')
                fail(number, "several documents or directives are not supported");
            seen_content = true;
            lines_.push_back({number, indent, std::move(content)});
        }
    }

    static bool is_item(std::string_view s) { return s == "-" || s.starts_with("- "); }

    // The node whose first line is the current one, which must be indented by at least `min_indent`.
    boost::json::value parse_node(std::size_t min_indent, std::size_t depth) {
        if (depth > max_depth) fail(lines_[at_].number, "nested deeper than " + std::to_string(max_depth));
        const line& first = lines_[at_];
        if (first.indent < min_indent) return nullptr;
        if (is_item(first.content)) return parse_sequence(first.indent, depth);
        if (find_key_end(first.content, first.number) != std::string::npos) return parse_mapping(first.indent, depth);
        ++at_;
        return scalar(first.content, first.number);
    }

    boost::json::value parse_sequence(std::size_t indent, std::size_t depth) {
        boost::json::array out;
        while (at_ < lines_.size() && lines_[at_].indent == indent && is_item(lines_[at_].content)) {
            line& l = lines_[at_];
            if (l.content == "-") {  // the item's node starts on the next line, indented more
                ++at_;
                if (at_ < lines_.size() && lines_[at_].indent > indent)
                    out.push_back(parse_node(indent + 1, depth + 1));
                else
                    out.push_back(nullptr);
                continue;
            }
            // "- x": x is a node at the column after "- " (a mapping's later keys line up with it)
            std::size_t extra = 2;
            while (extra < l.content.size() && l.content[extra] == ' ') ++extra;
            l.content.erase(0, extra);
            l.indent += extra;
            out.push_back(parse_node(l.indent, depth + 1));
        }
        return out;
    }

    boost::json::value parse_mapping(std::size_t indent, std::size_t depth) {
        boost::json::object out;
        while (at_ < lines_.size() && lines_[at_].indent == indent && !is_item(lines_[at_].content)) {
            const line l = lines_[at_];
            const std::size_t colon = find_key_end(l.content, l.number);
            if (colon == std::string::npos) fail(l.number, "expected 'key: value'");
            std::string key = key_text(std::string_view(l.content).substr(0, colon), l.number);
            if (out.contains(key)) fail(l.number, "the key " + berth::detail::quote_outside_text(key) + " repeats");
            std::string_view rest = std::string_view(l.content).substr(colon + 1);
            while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
            ++at_;
            if (!rest.empty()) {
                out[key] = scalar(rest, l.number);
                continue;
            }
            // The value is on the lines below: indented more, or a sequence at the key's own indentation.
            if (at_ < lines_.size() &&
                (lines_[at_].indent > indent || (lines_[at_].indent == indent && is_item(lines_[at_].content))))
                out[key] = lines_[at_].indent == indent ? parse_sequence(indent, depth + 1)
                                                        : parse_node(indent + 1, depth + 1);
            else
                out[key] = nullptr;
        }
        return out;
    }

    // Where a mapping key ends (its ':' followed by a blank or the end of the line), or npos.
    std::size_t find_key_end(std::string_view s, std::size_t number) const {
        if (s.empty()) return std::string::npos;
        std::size_t i = 0;
        if (s.front() == '"' || s.front() == '\'') {
            i = quoted_end(s, number);
            if (i < s.size() && s[i] == ':' && (i + 1 == s.size() || s[i + 1] == ' ')) return i;
            return std::string::npos;
        }
        for (; i < s.size(); ++i)
            if (s[i] == ':' && (i + 1 == s.size() || s[i + 1] == ' ')) return i;
        return std::string::npos;
    }

    // The index after the closing quote of the quoted scalar at the start of s.
    std::size_t quoted_end(std::string_view s, std::size_t number) const {
        const char q = s.front();
        for (std::size_t i = 1; i < s.size(); ++i) {
            if (q == '"' && s[i] == '\\') {
                ++i;
                continue;
            }
            if (s[i] == q) {
                if (q == '\'' && i + 1 < s.size() && s[i + 1] == '\'') {
                    ++i;
                    continue;
                }
                return i + 1;
            }
        }
        fail(number, "a quoted scalar does not end on its line");
    }

    std::string key_text(std::string_view k, std::size_t number) const {
        while (!k.empty() && k.back() == ' ') k.remove_suffix(1);
        if (k.empty()) fail(number, "an empty key");
        if (k.front() == '"' || k.front() == '\'') return unquote(k, number);
        check_plain(k, number);
        return std::string(k);
    }

    void check_plain(std::string_view s, std::size_t number) const {
        static constexpr std::string_view reserved = "&*!|>@`?%";
        if (reserved.find(s.front()) != std::string_view::npos)
            fail(number, std::string("'") + s.front() +
                             "' starts an anchor, alias, tag, block scalar or reserved form, which berth's kubeconfig "
                             "reader does not support");
        if (s.front() == '[' || s.front() == '{')
            fail(number, "flow collections other than [] and {} are not supported");
    }

    boost::json::value scalar(std::string_view s, std::size_t number) const {
        if (s == "[]") return boost::json::array{};
        if (s == "{}") return boost::json::object{};
        if (s.front() == '"' || s.front() == '\'') {
            if (quoted_end(s, number) != s.size()) fail(number, "text after a quoted scalar");
            return boost::json::string(unquote(s, number));
        }
        check_plain(s, number);
        if (s.find(": ") != std::string_view::npos) fail(number, "a mapping inside a value (use a new line)");
        if (s == "null" || s == "~" || s == "Null" || s == "NULL") return nullptr;
        if (s == "true" || s == "True" || s == "TRUE") return true;
        if (s == "false" || s == "False" || s == "FALSE") return false;
        return boost::json::string(s);  // numbers too: kubeconfig fields are strings and booleans
    }

    std::string unquote(std::string_view s, std::size_t number) const {
        const char q = s.front();
        std::string out;
        s = s.substr(1, s.size() - 2);
        for (std::size_t i = 0; i < s.size(); ++i) {
            const char c = s[i];
            if (q == '\'') {
                out += c;
                if (c == '\'') ++i;  // '' is one quote
                continue;
            }
            if (c != '\\') {
                out += c;
                continue;
            }
            if (++i >= s.size()) fail(number, "a backslash at the end of a quoted scalar");
            switch (s[i]) {
            case 'n': out += '\n'; break;
            case 't': out += '\t'; break;
            case 'r': out += '\r'; break;
            case '0': out += '\0'; break;
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case ' ': out += ' '; break;
            case 'x':
            case 'u': {
                const std::size_t n = s[i] == 'x' ? 2 : 4;
                unsigned v = 0;
                for (std::size_t k = 1; k <= n; ++k) {
                    if (i + k >= s.size()) fail(number, "a short escape sequence");
                    const char h = s[i + k];
                    v = v * 16 + static_cast<unsigned>(h >= '0' && h <= '9'   ? h - '0'
                                                       : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                                       : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                                              : (fail(number, "a bad escape"), 0));
                }
                i += n;
                append_utf8(out, v);
                break;
            }
            default: fail(number, std::string("the escape \\") + s[i] + " is not supported");
            }
        }
        return out;
    }

    static void append_utf8(std::string& out, unsigned v) {
        if (v < 0x80) {
            out += static_cast<char>(v);
        } else if (v < 0x800) {
            out += static_cast<char>(0xC0 | (v >> 6));
            out += static_cast<char>(0x80 | (v & 0x3F));
        } else {
            out += static_cast<char>(0xE0 | (v >> 12));
            out += static_cast<char>(0x80 | ((v >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (v & 0x3F));
        }
    }

    std::string file_;
    std::vector<line> lines_{};
    std::size_t at_ = 0;
};

inline constexpr std::size_t max_kubeconfig_json_values = 100000;

// A kubeconfig's text as JSON: JSON when it starts with '{' or '[', else the YAML subset above.
inline boost::json::value parse_kubeconfig_text(std::string_view text, const std::string& file) {
    std::size_t i = 0;
    while (i < text.size() && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t')) ++i;
    if (i < text.size() && (text[i] == '{' || text[i] == '[')) {
        // parsing costs some 50 bytes per value: a megabyte of "0," would take far more than its size
        if (json_read::count_values(text) > max_kubeconfig_json_values)
            throw kubeconfig_error(file, 0,
                                   "JSON with more than " + std::to_string(max_kubeconfig_json_values) + " values");
        boost::system::error_code ec;
        auto v = boost::json::parse(text, ec);
        if (ec) throw kubeconfig_error(file, 0, "not valid JSON (" + ec.message() + ")");
        return v;
    }
    return yaml_subset_parser(text, file).parse();
}

}  // namespace berth::kubernetes::detail
