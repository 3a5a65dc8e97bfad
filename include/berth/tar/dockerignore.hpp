#pragma once
// .dockerignore rules with moby/patternmatcher's semantics: patterns are cleaned like Go's filepath.Clean, `*` and `?`
// stop at '/', `**` spans directories, `[...]` classes, `!` exceptions, the last matching pattern wins, and a pattern
// that matches a parent directory matches everything below it. Patterns are compiled once; matching needs no regex.
#include <berth/detail/outside_text.hpp>
#include <berth/tar/error.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace berth::tar {

namespace detail {

// Go's path.Clean for '/'-separated paths: collapse "//", drop ".", resolve ".." lexically, no trailing '/'.
inline std::string clean_path(std::string_view p) {
    if (p.empty()) return ".";
    const bool rooted = p.front() == '/';
    std::vector<std::string_view> parts;
    std::size_t i = 0;
    while (i < p.size()) {
        std::size_t j = p.find('/', i);
        if (j == std::string_view::npos) j = p.size();
        std::string_view c = p.substr(i, j - i);
        i = j + 1;
        if (c.empty() || c == ".") continue;
        if (c == "..") {
            if (!parts.empty() && parts.back() != "..")
                parts.pop_back();
            else if (!rooted)
                parts.push_back(c);
            continue;
        }
        parts.push_back(c);
    }
    std::string out = rooted ? "/" : "";
    for (std::size_t k = 0; k < parts.size(); ++k) {
        if (k) out += '/';
        out += parts[k];
    }
    if (out.empty()) out = ".";
    return out;
}

// Go's path.Dir: everything before the last '/', cleaned; "." when there is no '/'.
inline std::string dir_path(std::string_view p) {
    auto slash = p.rfind('/');
    if (slash == std::string_view::npos) return ".";
    return clean_path(p.substr(0, slash + 1));
}

// Decodes one UTF-8 rune at s[i]; invalid bytes decode as U+FFFD of length 1, as Go does.
inline char32_t decode_rune(std::string_view s, std::size_t i, std::size_t& len) {
    auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
    unsigned char c = b(0);
    len = 1;
    if (c < 0x80) return c;
    std::size_t n = c >= 0xF0 && c < 0xF8 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
    if (n == 0 || i + n > s.size()) return 0xFFFD;
    char32_t r = c & (0x7F >> n);
    for (std::size_t k = 1; k < n; ++k) {
        if ((b(k) & 0xC0) != 0x80) return 0xFFFD;
        r = (r << 6) | (b(k) & 0x3F);
    }
    if ((n == 3 && r < 0x800) || (n == 4 && (r < 0x10000 || r > 0x10FFFF)) || (r >= 0xD800 && r <= 0xDFFF))
        return 0xFFFD;
    len = n;
    return r;
}

class glob_pattern {
public:
    enum class kind { exact, prefix, suffix, glob };

    // `cleaned` is already cleaned and stripped of '!'. Throws tar::error(bad_pattern) for what Go's
    // filepath.Match rejects (unclosed or empty classes, bad ranges, a trailing '\').
    explicit glob_pattern(std::string cleaned) : text_(std::move(cleaned)) {
        validate();
        compile();
    }

    const std::string& text() const noexcept { return text_; }
    kind match_kind() const noexcept { return kind_; }

    bool match(std::string_view path) const {
        switch (kind_) {
        case kind::exact: return path == text_;
        case kind::prefix: return path.starts_with(std::string_view(text_).substr(0, text_.size() - 2));
        case kind::suffix: {
            std::string_view suffix = std::string_view(text_).substr(2);
            if (path.ends_with(suffix)) return true;
            return !suffix.empty() && suffix.front() == '/' && path == suffix.substr(1);
        }
        case kind::glob: break;
        }
        std::vector<std::uint8_t> memo;
        if (stars_ > 1) memo.assign((toks_.size() + 1) * (path.size() + 1), 0);
        return run(0, path, 0, memo);
    }

private:
    enum class op : std::uint8_t { lit, any, star, cls, dstar_dir, dstar_end };
    struct range {
        char32_t lo, hi;
    };
    struct token {
        op kind;
        std::string lit;            // op::lit
        bool negated = false;       // op::cls
        std::vector<range> ranges;  // op::cls
    };

    [[noreturn]] void bad() const {
        throw error(errc::bad_pattern, "bad .dockerignore pattern " + berth::detail::quote_outside_text(text_));
    }

    // Go's filepath.Match syntax check, run once at construction like patternmatcher.New does.
    void validate() const {
        std::string_view p = text_;
        std::size_t i = 0;
        while (i < p.size()) {
            char c = p[i];
            if (c == '\\') {
                if (i + 1 >= p.size()) bad();
                i += 2;
            } else if (c == '[') {
                ++i;
                if (i < p.size() && p[i] == '^') ++i;
                bool first = true;
                for (;;) {
                    if (i >= p.size()) bad();
                    if (p[i] == ']' && !first) {
                        ++i;
                        break;
                    }
                    auto take = [&]() {
                        if (i >= p.size() || p[i] == '-' || p[i] == ']') bad();
                        if (p[i] == '\\') {
                            if (++i >= p.size()) bad();
                        }
                        std::size_t n;
                        decode_rune(p, i, n);
                        i += n;
                    };
                    take();
                    if (i < p.size() && p[i] == '-') {
                        ++i;
                        take();
                    }
                    first = false;
                }
            } else {
                ++i;
            }
        }
    }

    // Mirrors patternmatcher's regex construction, including how it picks exact/prefix/suffix shortcuts.
    void compile() {
        std::string_view p = text_;
        kind k = kind::exact;
        auto push_lit = [&](std::string_view s) {
            if (toks_.empty() || toks_.back().kind != op::lit) toks_.push_back({op::lit, {}, false, {}});
            toks_.back().lit += s;
        };
        std::size_t i = 0;
        for (int n = 0; i < p.size(); ++n) {
            std::size_t len;
            decode_rune(p, i, len);
            std::string_view ch = p.substr(i, len);
            i += len;
            if (ch == "*") {
                if (i < p.size() && p[i] == '*') {
                    ++i;
                    if (i < p.size() && p[i] == '/') ++i;  // "**/" is "**"
                    if (i >= p.size()) {
                        if (k == kind::exact)
                            k = kind::prefix;
                        else {
                            toks_.push_back({op::dstar_end, {}, false, {}});
                            k = kind::glob;
                        }
                    } else {
                        toks_.push_back({op::dstar_dir, {}, false, {}});
                        ++stars_;
                        k = kind::glob;
                    }
                    if (n == 0) k = kind::suffix;
                } else {
                    toks_.push_back({op::star, {}, false, {}});
                    ++stars_;
                    k = kind::glob;
                }
            } else if (ch == "?") {
                toks_.push_back({op::any, {}, false, {}});
                k = kind::glob;
            } else if (ch == "\\") {
                if (i < p.size()) {
                    std::size_t l2;
                    decode_rune(p, i, l2);
                    push_lit(p.substr(i, l2));
                    i += l2;
                    k = kind::glob;
                } else {
                    push_lit("\\");
                }
            } else if (ch == "[") {
                token t{op::cls, {}, false, {}};
                if (i < p.size() && p[i] == '^') {
                    t.negated = true;
                    ++i;
                }
                auto take = [&]() {
                    if (p[i] == '\\') ++i;
                    std::size_t l2;
                    char32_t r = decode_rune(p, i, l2);
                    i += l2;
                    return r;
                };
                while (p[i] != ']') {
                    char32_t lo = take(), hi = lo;
                    if (p[i] == '-') {
                        ++i;
                        hi = take();
                    }
                    t.ranges.push_back({lo, hi});
                }
                ++i;
                toks_.push_back(std::move(t));
                k = kind::glob;
            } else if (ch == "]") {
                push_lit("]");
                k = kind::glob;
            } else {
                push_lit(ch);
            }
        }
        kind_ = k;
    }

    static bool class_has(const token& t, char32_t r) {
        bool in = false;
        for (auto& rg : t.ranges)
            if (r >= rg.lo && r <= rg.hi) {
                in = true;
                break;
            }
        return in != t.negated;
    }

    bool run(std::size_t t, std::string_view s, std::size_t i, std::vector<std::uint8_t>& memo) const {
        for (;;) {
            if (t == toks_.size()) return i == s.size();
            const token& tk = toks_[t];
            switch (tk.kind) {
            case op::lit:
                if (s.substr(i, tk.lit.size()) != tk.lit) return false;
                i += tk.lit.size();
                ++t;
                continue;
            case op::any:
            case op::cls: {
                if (i >= s.size()) return false;
                std::size_t len;
                char32_t r = decode_rune(s, i, len);
                if (tk.kind == op::any ? r == U'/' : !class_has(tk, r)) return false;
                i += len;
                ++t;
                continue;
            }
            case op::dstar_end: return s.find('\n', i) == std::string_view::npos;  // Go's '.' stops at newline
            case op::star:
            case op::dstar_dir: break;
            }
            // Backtracking point; memo[t][i] records positions already known to fail.
            std::size_t key = t * (s.size() + 1) + i;
            if (!memo.empty() && memo[key]) return false;
            bool ok = false;
            if (tk.kind == op::star) {
                for (std::size_t j = i;; ++j) {
                    if (run(t + 1, s, j, memo)) {
                        ok = true;
                        break;
                    }
                    if (j >= s.size() || s[j] == '/') break;
                }
            } else {  // (.*/)? : nothing, or anything up to and including some later '/'
                if (run(t + 1, s, i, memo)) ok = true;
                for (std::size_t j = i; !ok && j < s.size() && s[j] != '\n'; ++j)
                    if (s[j] == '/' && run(t + 1, s, j + 1, memo)) ok = true;
            }
            if (!ok && !memo.empty()) memo[key] = 1;
            return ok;
        }
    }

    std::string text_;
    kind kind_ = kind::exact;
    std::vector<token> toks_;
    int stars_ = 0;
};

}  // namespace detail

class dockerignore {
public:
    dockerignore() = default;

    // Patterns as patternmatcher.New takes them (already read from a file, see read_patterns). Throws
    // tar::error(bad_pattern) for a lone "!" or a malformed pattern.
    explicit dockerignore(std::span<const std::string> patterns) {
        for (auto& p : patterns) add(p);
    }

    // The content of a .dockerignore file: comments, blank lines, '/'-prefixed paths, UTF-8 BOM.
    static dockerignore parse(std::string_view file_content) {
        auto pats = read_patterns(file_content);
        return dockerignore(pats);
    }

    // moby's ignorefile.ReadAll: one pattern per line, '#' comments only at column 0, whitespace trimmed,
    // cleaned, leading '/' dropped, '!' kept as a prefix.
    static std::vector<std::string> read_patterns(std::string_view content) {
        std::vector<std::string> out;
        if (content.starts_with("\xEF\xBB\xBF")) content.remove_prefix(3);
        while (!content.empty()) {
            auto nl = content.find('\n');
            std::string_view line = content.substr(0, nl);
            content = nl == std::string_view::npos ? std::string_view{} : content.substr(nl + 1);
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            if (line.starts_with('#')) continue;
            line = trim(line);
            if (line.empty()) continue;
            bool invert = line.front() == '!';
            if (invert) line = trim(line.substr(1));
            std::string pat;
            if (!line.empty()) {
                pat = detail::clean_path(line);
                if (pat.size() > 1 && pat.front() == '/') pat.erase(0, 1);
            }
            out.push_back(invert ? "!" + pat : pat);
        }
        return out;
    }

    // Appends one pattern (patternmatcher.New's per-pattern processing).
    void add(std::string_view raw) {
        std::string_view t = trim(raw);
        if (t.empty()) return;
        std::string p = detail::clean_path(t);
        bool exclusion = false;
        if (p.front() == '!') {
            if (p.size() == 1) throw error(errc::bad_pattern, "illegal exclusion pattern \"!\"");
            exclusion = true;
            p.erase(0, 1);
        }
        has_exceptions_ |= exclusion;
        pats_.push_back({detail::glob_pattern(std::move(p)), exclusion});
    }

    bool empty() const noexcept { return pats_.empty(); }
    bool has_exceptions() const noexcept { return has_exceptions_; }

    // True when `path` ('/'-separated, relative to the context root) is excluded: the last pattern matching it
    // or one of its parent directories decides (patternmatcher's MatchesOrParentMatches).
    bool excluded(std::string_view path) const {
        bool matched = false;
        std::string parent = detail::dir_path(path);
        for (auto& p : pats_) {
            if (p.exclusion != matched) continue;  // cannot change the outcome
            bool m = p.glob.match(path);
            if (!m && parent != ".") {
                for (std::size_t i = parent.find('/');; i = parent.find('/', i + 1)) {
                    if (p.glob.match(std::string_view(parent).substr(0, i))) {
                        m = true;
                        break;
                    }
                    if (i == std::string::npos) break;
                }
            }
            if (m) matched = !p.exclusion;
        }
        return matched;
    }

    // For an excluded directory: whether the walk must still descend because an exception might re-include
    // something below it. Same test as moby's pkg/archive walker (a literal prefix check on the exception).
    bool may_reinclude_under(std::string_view dir) const {
        if (!has_exceptions_) return false;
        std::string dir_slash = std::string(dir) + '/';
        for (auto& p : pats_)
            if (p.exclusion && (p.glob.text() + '/').starts_with(dir_slash)) return true;
        return false;
    }

private:
    static std::string_view trim(std::string_view s) {
        auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
        while (!s.empty() && ws(s.front())) s.remove_prefix(1);
        while (!s.empty() && ws(s.back())) s.remove_suffix(1);
        return s;
    }

    struct rule {
        detail::glob_pattern glob;
        bool exclusion;
    };
    std::vector<rule> pats_;
    bool has_exceptions_ = false;
};

}  // namespace berth::tar
