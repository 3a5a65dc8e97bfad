// Filesystem side of the tar layer: .dockerignore matcher, tree packer, safe extractor.
#include <berth/tar/dockerignore.hpp>
#include <berth/detail/sha256.hpp>
#include <berth/tar/extract.hpp>
#include <berth/tar/packer.hpp>
#include <berth/tar/reader.hpp>
#include <berth/tar/writer.hpp>

#include <doctest/doctest.h>

#include "support/files.hpp"
#include "support/shell.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <filesystem>
#include <functional>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace tar = berth::tar;
namespace fs = std::filesystem;
using berth_test::read_file;
using berth_test::shell_status;
using berth_test::temp_dir;
using berth_test::write_file;

namespace {

std::set<std::string> names_in(const fs::path& dir) {
    std::set<std::string> out;
    for (auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
    return out;
}

// Every path beneath `dir`, relative, recursively ("a", "a/b", ...).
std::set<std::string> tree(const fs::path& dir) {
    std::set<std::string> out;
    for (auto& e : fs::recursive_directory_iterator(dir)) out.insert(e.path().lexically_relative(dir).string());
    return out;
}

}  // namespace
namespace doctest {
template <>
struct StringMaker<std::set<std::string>> {
    static String convert(const std::set<std::string>& s) {
        std::string out = "{";
        for (auto& x : s) out += "\"" + x + "\" ";
        return (out + "}").c_str();
    }
};
}  // namespace doctest
namespace {
tar::entry make_entry(std::string name, tar::entry_type type, std::string linkname = {}, std::uint64_t size = 0) {
    tar::entry e;
    e.name = std::move(name);
    e.type = type;
    e.linkname = std::move(linkname);
    e.size = size;
    e.mode = type == tar::entry_type::directory ? 0755 : 0644;
    e.mtime = 1'600'000'000;
    return e;
}

struct member {
    tar::entry e;
    std::string content;
};

member mfile(std::string name, std::string content, std::uint32_t mode = 0644) {
    auto e = make_entry(std::move(name), tar::entry_type::file, {}, content.size());
    e.mode = mode;
    return {e, std::move(content)};
}
member mdir(std::string name, std::uint32_t mode = 0755) {
    auto e = make_entry(std::move(name), tar::entry_type::directory);
    e.mode = mode;
    return {e, {}};
}
member slink(std::string name, std::string target) {
    return {make_entry(std::move(name), tar::entry_type::symlink, std::move(target)), {}};
}
member hlink(std::string name, std::string target) {
    return {make_entry(std::move(name), tar::entry_type::hardlink, std::move(target)), {}};
}

void extract_all(tar::extractor& x, const std::vector<member>& ms) {
    for (auto& m : ms) {
        x.begin(m.e);
        x.write(m.content);
        x.end();
    }
    x.finish();
}

// Runs `ms` into a fresh `dest` under a fresh temp dir and expects the last member to fail with `code`.
boost::system::error_code expect_refusal(const std::vector<member>& ms, bool fallback,
                                         const std::function<void(const temp_dir&)>& plant = {}) {
    temp_dir t;
    fs::create_directory(t / "dest");
    if (plant) plant(t);
    auto before = names_in(t.path);
    tar::extract_options o;
    o.force_fallback = fallback;
    tar::extractor x(t / "dest", o);
    CHECK(x.uses_openat2() == !fallback);
    boost::system::error_code code{};
    bool threw = false;
    try {
        extract_all(x, ms);
    } catch (const tar::error& e) {
        threw = true;
        code = e.code();
        CHECK(e.entry_name() == ms.back().e.name);
    }
    CHECK(threw);
    CHECK(names_in(t.path) == before);  // nothing created next to the destination
    return code;
}

}  // namespace


namespace {

// What a tree looks like, for comparing trees byte for byte: type, mode, size, mtime, content hash, link target,
// and which names share an inode.
struct node {
    char type;
    unsigned mode;
    long long size;
    long long mtime;
    std::string sha;
    std::string link;
    std::string inode_group;  // first name (sorted) of the names sharing this inode, for hard links
    bool operator==(const node&) const = default;
};
using snapshot = std::map<std::string, node>;

std::string hash_file(const fs::path& p) {
    berth::detail::sha256 h;
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    std::vector<char> buf(1 << 16);
    for (ssize_t n; (n = ::read(fd, buf.data(), buf.size())) > 0;) h.update({buf.data(), static_cast<std::size_t>(n)});
    ::close(fd);
    return h.hex_digest();
}

snapshot snap(const fs::path& root, bool symlink_mtimes = true) {
    snapshot out;
    std::map<std::pair<dev_t, ino_t>, std::string> first;
    std::vector<std::string> names;
    for (auto& e : fs::recursive_directory_iterator(root)) names.push_back(e.path().lexically_relative(root).string());
    std::sort(names.begin(), names.end());
    for (auto& n : names) {
        struct stat st;
        REQUIRE(::lstat((root / n).c_str(), &st) == 0);
        node x{};
        x.mode = st.st_mode & 07777;
        x.mtime = st.st_mtim.tv_sec;
        if (S_ISREG(st.st_mode)) {
            x.type = 'f';
            x.size = st.st_size;
            x.sha = hash_file(root / n);
        } else if (S_ISDIR(st.st_mode)) {
            x.type = 'd';
        } else if (S_ISLNK(st.st_mode)) {
            x.type = 'l';
            x.link = fs::read_symlink(root / n).string();
            x.mode = 0;
            if (!symlink_mtimes) x.mtime = 0;
        } else {
            x.type = 'o';
        }
        if (!S_ISDIR(st.st_mode) && st.st_nlink > 1)
            x.inode_group = first.try_emplace({st.st_dev, st.st_ino}, n).first->second;
        out[n] = x;
    }
    return out;
}

void set_mtime(const fs::path& p, long long sec) {
    timespec t[2] = {{sec, 0}, {sec, 0}};
    REQUIRE(::utimensat(AT_FDCWD, p.c_str(), t, AT_SYMLINK_NOFOLLOW) == 0);
}

// A tree with the awkward cases: long and UTF-8 names, empty things, links, odd modes.
void build_tree(const fs::path& r) {
    fs::create_directories(r / "empty-dir");
    fs::create_directories(r / "sub/deeper");
    write_file(r / "zero", "");
    write_file(r / "sub/a.txt", "alpha\n");
    std::string big(1'000'003, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 2654435761u) >> 13);
    write_file(r / "sub/deeper/big.bin", big);
    const std::string name150 = std::string(90, 'p') + "/" + std::string(59, 'q');
    const std::string name300 = std::string(100, 'x') + "/" + std::string(100, 'y') + "/" + std::string(98, 'z');
    fs::create_directories((r / name150).parent_path());
    fs::create_directories((r / name300).parent_path());
    write_file(r / name150, "150");
    write_file(r / name300, "300");
    fs::create_directories(r / "\u00fcnic\u00f8de-\u65e5\u672c");
    write_file(r / "\u00fcnic\u00f8de-\u65e5\u672c/\u00e9t\u00e9.txt", "\u00e9t\u00e9");
    fs::create_symlink("sub/a.txt", r / "link");
    fs::create_symlink(std::string(200, 'L') + "/target", r / "long-link");
    fs::create_hard_link(r / "sub/a.txt", r / "hard-a");
    write_file(r / "exec.sh", "#!/bin/sh\n");
    fs::permissions(r / "exec.sh", static_cast<fs::perms>(0750));
    write_file(r / "private", "p");
    fs::permissions(r / "private", static_cast<fs::perms>(0600));
    fs::create_directories(r / "ro-dir");
    write_file(r / "ro-dir/inside", "i");
    long long t = 1'500'000'000;
    std::vector<fs::path> all;
    for (auto& e : fs::recursive_directory_iterator(r)) all.push_back(e.path());
    std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.native().size() > b.native().size(); });
    for (auto& p : all) set_mtime(p, t += 7);
    fs::permissions(r / "ro-dir", static_cast<fs::perms>(0555));
    set_mtime(r / "ro-dir", 1'400'000'000);
}

std::string pack_to_string(const fs::path& src, const std::string& name, tar::pack_options o = {}) {
    tar::packer p(src, name, o);
    std::string out;
    std::vector<char> buf(4093);  // odd size: exercises every boundary
    while (std::size_t n = p.read(buf)) out.append(buf.data(), n);
    CHECK(p.bytes_produced() == out.size());
    CHECK(out.size() % 512 == 0);
    return out;
}

struct listed {
    tar::entry e;
    std::string sha;
};

std::vector<listed> read_archive(std::string_view bytes) {
    tar::reader r;
    std::vector<listed> out;
    berth::detail::sha256 h;
    bool ended = false;
    for (std::size_t off = 0; off < bytes.size() && !ended; off += 1000) {
        r.feed(bytes.substr(off, 1000));
        for (bool more = true; more;) {
            switch (r.next()) {
            case tar::reader::event::need_more: more = false; break;
            case tar::reader::event::entry:
                out.push_back({r.current(), {}});
                h = {};
                break;
            case tar::reader::event::data: h.update(r.data()); break;
            case tar::reader::event::entry_end: out.back().sha = h.hex_digest(); break;
            case tar::reader::event::end:
                more = false;
                ended = true;
                break;
            }
        }
    }
    CHECK(ended);
    return out;
}

// Exact modes by default here: these tests are about reproducing a tree as it was.
void unpack(const std::string& archive, const fs::path& dest, bool fallback, std::size_t chunk = 7777,
            tar::permissions modes = tar::permissions::exact) {
    tar::extract_options o;
    o.force_fallback = fallback;
    o.permissions = modes;
    tar::unpacker u(dest, o);
    for (std::size_t off = 0; off < archive.size(); off += chunk) u.feed(std::string_view(archive).substr(off, chunk));
    u.finish();
}

}  // namespace

TEST_SUITE("tar fs") {

// The single-pattern table of moby/patternmatcher's TestMatches (MatchesOrParentMatches column).
TEST_CASE("dockerignore: moby pattern table") {
    struct row {
        const char* pattern;
        const char* text;
        bool pass;
    };
    const row rows[] = {
        {"**", "file", true},
        {"**", "file/", true},
        {"**/", "file", true},
        {"**/", "file/", true},
        {"**", "/", true},
        {"**/", "/", true},
        {"**", "dir/file", true},
        {"**/", "dir/file", true},
        {"**", "dir/file/", true},
        {"**/", "dir/file/", true},
        {"**/**", "dir/file", true},
        {"**/**", "dir/file/", true},
        {"dir/**", "dir/file", true},
        {"dir/**", "dir/file/", true},
        {"dir/**", "dir/dir2/file", true},
        {"dir/**", "dir/dir2/file/", true},
        {"**/dir", "dir", true},
        {"**/dir", "dir/file", true},
        {"**/dir2/*", "dir/dir2/file", true},
        {"**/dir2/*", "dir/dir2/file/", true},
        {"**/dir2/**", "dir/dir2/dir3/file", true},
        {"**/dir2/**", "dir/dir2/dir3/file/", true},
        {"**file", "file", true},
        {"**file", "dir/file", true},
        {"**/file", "dir/file", true},
        {"**file", "dir/dir/file", true},
        {"**/file", "dir/dir/file", true},
        {"**/file*", "dir/dir/file", true},
        {"**/file*", "dir/dir/file.txt", true},
        {"**/file*txt", "dir/dir/file.txt", true},
        {"**/file*.txt", "dir/dir/file.txt", true},
        {"**/file*.txt*", "dir/dir/file.txt", true},
        {"**/**/*.txt", "dir/dir/file.txt", true},
        {"**/**/*.txt2", "dir/dir/file.txt", false},
        {"**/*.txt", "file.txt", true},
        {"**/**/*.txt", "file.txt", true},
        {"a**/*.txt", "a/file.txt", true},
        {"a**/*.txt", "a/dir/file.txt", true},
        {"a**/*.txt", "a/dir/dir/file.txt", true},
        {"a/*.txt", "a/dir/file.txt", false},
        {"a/*.txt", "a/file.txt", true},
        {"a/*.txt**", "a/file.txt", true},
        {"a[b-d]e", "ae", false},
        {"a[b-d]e", "ace", true},
        {"a[b-d]e", "aae", false},
        {"a[^b-d]e", "aze", true},
        {".*", ".foo", true},
        {".*", "foo", false},
        {"abc.def", "abcdef", false},
        {"abc.def", "abc.def", true},
        {"abc.def", "abcZdef", false},
        {"abc?def", "abcZdef", true},
        {"abc?def", "abcdef", false},
        {"**/foo/bar", "foo/bar", true},
        {"**/foo/bar", "dir/foo/bar", true},
        {"**/foo/bar", "dir/dir2/foo/bar", true},
        {"abc/**", "abc", false},
        {"abc/**", "abc/def", true},
        {"abc/**", "abc/def/ghi", true},
        {"**/.foo", ".foo", true},
        {"**/.foo", "bar.foo", false},
        {"a(b)c/def", "a(b)c/def", true},
        {"a(b)c/def", "a(b)c/xyz", false},
        {"a.|)$(}+{bc", "a.|)$(}+{bc", true},
        {"dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
         "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true},
        {"dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true},
        {"a\\\\", "a\\", true},
        {"a\\*b", "a*b", true},
        // Go's filepath.Match table as patternmatcher's TestMatch runs it (parent matching included).
        {"abc", "abc", true},
        {"*", "abc", true},
        {"*c", "abc", true},
        {"a*", "a", true},
        {"a*", "abc", true},
        {"a*", "ab/c", true},
        {"a*/b", "abc/b", true},
        {"a*/b", "a/c/b", false},
        {"a*b*c*d*e*/f", "axbxcxdxe/f", true},
        {"a*b*c*d*e*/f", "axbxcxdxexxx/f", true},
        {"a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false},
        {"a*b*c*d*e*/f", "axbxcxdxexxx/fff", false},
        {"a*b?c*x", "abxbbxdbxebxczzx", true},
        {"a*b?c*x", "abxbbxdbxebxczzy", false},
        {"ab[c]", "abc", true},
        {"ab[b-d]", "abc", true},
        {"ab[e-g]", "abc", false},
        {"ab[^c]", "abc", false},
        {"ab[^b-d]", "abc", false},
        {"ab[^e-g]", "abc", true},
        {"a\\*b", "ab", false},
        {"a?b", "a\u263Ab", true},
        {"a[^a]b", "a\u263Ab", true},
        {"a???b", "a\u263Ab", false},
        {"a[^a][^a][^a]b", "a\u263Ab", false},
        {"[a-\u03B6]*", "\u03B1", true},
        {"*[a-\u03B6]", "A", false},
        {"a?b", "a/b", false},
        {"a*b", "a/b", false},
        {"[\\]a]", "]", true},
        {"[\\-]", "-", true},
        {"[x\\-]", "x", true},
        {"[x\\-]", "-", true},
        {"[x\\-]", "z", false},
        {"[\\-x]", "x", true},
        {"[\\-x]", "-", true},
        {"[\\-x]", "a", false},
        {"*x", "xxx", true},
    };
    for (auto& r : rows) {
        CAPTURE(r.pattern);
        CAPTURE(r.text);
        std::vector<std::string> pats{r.pattern};
        tar::dockerignore di(pats);
        CHECK(di.excluded(r.text) == r.pass);
    }
}

TEST_CASE("dockerignore: malformed patterns are errors") {
    for (const char* p : {"[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[", "!"}) {
        CAPTURE(p);
        std::vector<std::string> pats{p};
        try {
            tar::dockerignore di(pats);
            FAIL("accepted");
        } catch (const tar::error& e) { CHECK(e.code() == tar::errc::bad_pattern); }
    }
}

TEST_CASE("dockerignore: exceptions, last match wins") {
    struct row {
        std::vector<std::string> pats;
        const char* text;
        bool pass;
    };
    const row rows[] = {
        {{"**", "!util/docker/web"}, "util/docker/web/foo", false},
        {{"**", "!util/docker/web", "util/docker/web/foo"}, "util/docker/web/foo", true},
        {{"**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"},
         "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
         false},
        {{"**", "!dist/*.whl"}, "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false},
        {{"!fileutils.go", "*.go"}, "fileutils.go", true},
        {{"*.go", "!fileutils.go"}, "fileutils.go", false},
        {{"docs", "!docs/README.md"}, "docs/README.md", false},
        {{"docs/", "!docs/README.md"}, "docs/README.md", false},
        {{"docs/*", "!docs/README.md"}, "docs/README.md", false},
        {{"docs", "!docs/README.md"}, "docs/other.md", true},
        {{"  docs  ", "  !docs/README.md  "}, "docs/README.md", false},
        {{}, "any/path/there", false},
    };
    for (auto& r : rows) {
        CAPTURE(r.text);
        tar::dockerignore di(r.pats);
        CHECK(di.excluded(r.text) == r.pass);
    }
}

TEST_CASE("dockerignore: file syntax") {
    auto pats = tar::dockerignore::read_patterns("\xEF\xBB\xBF# comment\n\n  /abs/path/  \n!  ./keep//me \r\n"
                                                 "a/../b\n #not a comment\n/\n");
    CHECK(pats == std::vector<std::string>{"abs/path", "!keep/me", "b", "#not a comment", "/"});
    auto di = tar::dockerignore::parse("node_modules\n*.log\n!important.log\nbuild/**\n");
    CHECK(di.excluded("node_modules"));
    CHECK(di.excluded("node_modules/x/y.js"));
    CHECK(di.excluded("debug.log"));
    CHECK_FALSE(di.excluded("important.log"));
    CHECK_FALSE(di.excluded("sub/debug.log"));  // '*' does not cross '/'
    CHECK(di.excluded("build/out/a.o"));
    CHECK_FALSE(di.excluded("build"));
    CHECK(di.has_exceptions());
    CHECK_FALSE(di.may_reinclude_under("node_modules"));
    auto d2 = tar::dockerignore::parse("vendor\n!vendor/keep\n");
    CHECK(d2.may_reinclude_under("vendor"));
    CHECK_FALSE(d2.may_reinclude_under("other"));
}

TEST_CASE("extractor: refusals, openat2 and fallback") {
    for (bool fb : {false, true}) {
        CAPTURE(fb);
        using tar::errc;
        CHECK(expect_refusal({mfile("/abs", "x")}, fb) == errc::unsafe_path);
        CHECK(expect_refusal({mfile("../escape", "x")}, fb) == errc::unsafe_path);
        CHECK(expect_refusal({mdir("a"), mfile("a/../../escape", "x")}, fb) == errc::unsafe_path);
        CHECK(expect_refusal({mfile("", "x")}, fb) == errc::unsafe_path);
        CHECK(expect_refusal({mfile(std::string("nul\0name", 8), "x")}, fb) == errc::unsafe_path);
        // A symlink planted earlier in the same archive, pointing inside: still never written through.
        CHECK(expect_refusal({mdir("sub"), slink("l", "sub"), mfile("l/f", "x")}, fb) == errc::through_symlink);
        CHECK(expect_refusal({mdir("sub"), slink("l", "sub"), mdir("l/d")}, fb) == errc::through_symlink);
        CHECK(expect_refusal({slink("l", "."), mfile("l/l/f", "x")}, fb) == errc::through_symlink);
        // Symlink targets that leave the destination.
        CHECK(expect_refusal({slink("l", "/etc")}, fb) == errc::unsafe_link);
        CHECK(expect_refusal({slink("l", "..")}, fb) == errc::unsafe_link);
        CHECK(expect_refusal({mdir("a"), slink("a/l", "../../outside")}, fb) == errc::unsafe_link);
        CHECK(expect_refusal({slink("l", "")}, fb) == errc::unsafe_link);
        // Hard links: only to members this extractor wrote, inside the destination.
        CHECK(expect_refusal({hlink("h", "/etc/passwd")}, fb) == errc::unsafe_link);
        CHECK(expect_refusal({hlink("h", "../outside/f")}, fb) == errc::unsafe_link);
        CHECK(expect_refusal({hlink("h", "preexisting")}, fb,
                             [](const temp_dir& t) { write_file(t / "dest/preexisting", "p"); }) == errc::unsafe_link);
        CHECK(expect_refusal({hlink("h", "never")}, fb) == errc::unsafe_link);
        // Devices and fifos unless opted in.
        auto dev = make_entry("dev", tar::entry_type::char_device);
        dev.devmajor = 1;
        dev.devminor = 3;
        CHECK(expect_refusal({{dev, {}}}, fb) == errc::device_refused);
        CHECK(expect_refusal({{make_entry("blk", tar::entry_type::block_device), {}}}, fb) == errc::device_refused);
        CHECK(expect_refusal({{make_entry("fifo", tar::entry_type::fifo), {}}}, fb) == errc::device_refused);
        // Type conflicts.
        CHECK(expect_refusal({mdir("a"), mfile("a", "x")}, fb) == errc::type_conflict);
        CHECK(expect_refusal({mfile("a", "x"), mdir("a")}, fb) == errc::type_conflict);
        CHECK(expect_refusal({mdir("a"), slink("a", "b")}, fb) == errc::type_conflict);
        CHECK(expect_refusal({mfile("a", "x"), mfile("a/b", "y")}, fb) == errc::type_conflict);
        CHECK(expect_refusal({mfile(".", "x")}, fb) == errc::type_conflict);
    }
}

TEST_CASE("extractor: a pre-existing symlink inside the destination pointing outside") {
    for (bool fb : {false, true}) {
        CAPTURE(fb);
        auto plant = [](const temp_dir& t) {
            fs::create_directory(t / "outside");
            fs::create_directory_symlink(t / "outside", t / "dest/pre");
            fs::create_symlink("../outside", t / "dest/rel");
        };
        CHECK(expect_refusal({mfile("pre/f", "x")}, fb, plant) == tar::errc::through_symlink);
        CHECK(expect_refusal({mfile("rel/f", "x")}, fb, plant) == tar::errc::through_symlink);
        CHECK(expect_refusal({mdir("pre/sub")}, fb, plant) == tar::errc::through_symlink);
        if (!fb)  // only the kernel can tell that a lexically inside target resolves outside through "pre"
            CHECK(expect_refusal({slink("x", "pre/f")}, fb, plant) == tar::errc::unsafe_link);
        temp_dir t;
        fs::create_directory(t / "dest");
        plant(t);
        {
            tar::extract_options o;
            o.force_fallback = fb;
            tar::extractor x(t / "dest", o);
            // Replacing the link itself is fine: the link goes, nothing is written through it.
            extract_all(x, {mfile("pre", "now a file")});
        }
        CHECK(fs::is_regular_file(fs::symlink_status(t / "dest/pre")));
        CHECK(fs::is_empty(t / "outside"));
    }
}

TEST_CASE("extractor: limits") {
    temp_dir t;
    tar::extract_options o;
    o.max_entries = 2;
    o.max_path_length = 10;
    tar::extractor x(t.path, o);
    CHECK_THROWS_AS(extract_all(x, {mfile("this-name-is-long", "x")}), tar::error);
    try {
        extract_all(x, {mfile("a", "x"), mfile("b", "y")});
        FAIL("no limit");
    } catch (const tar::error& e) { CHECK(e.code() == tar::errc::limit_exceeded); }
}

TEST_CASE("extractor: exact modes, mtimes, deferred directory metadata, special bits") {
    for (bool fb : {false, true}) {
        temp_dir t;
        tar::extract_options o;
        o.force_fallback = fb;
        o.permissions = tar::permissions::exact;
        tar::extractor x(t.path, o);
        auto ro = mdir("ro", 0555);
        ro.e.mtime = 1'000'000'000;
        ro.e.mtime_nsec = 123'456'789;
        auto f = mfile("ro/f", "content", 04755);
        extract_all(x, {ro, f, mfile("ro/g", "", 0600), mfile("implicit/deep/h", "h", 0640), slink("ro/l", "f"),
                        hlink("ro/hl", "ro/f")});
        struct stat st;
        REQUIRE(::stat((t / "ro").c_str(), &st) == 0);
        CHECK((st.st_mode & 07777) == 0555);
        CHECK(st.st_mtim.tv_sec == 1'000'000'000);
        CHECK(st.st_mtim.tv_nsec == 123'456'789);
        REQUIRE(::stat((t / "ro/f").c_str(), &st) == 0);
        CHECK((st.st_mode & 07777) == 0755);  // setuid stripped
        CHECK(st.st_mtim.tv_sec == 1'600'000'000);
        CHECK(st.st_nlink == 2);
        REQUIRE(::stat((t / "ro/g").c_str(), &st) == 0);
        CHECK((st.st_mode & 07777) == 0600);
        CHECK(st.st_size == 0);
        CHECK(fs::read_symlink(t / "ro/l") == "f");
        CHECK(read_file(t / "implicit/deep/h") == "h");
        REQUIRE(::lstat((t / "ro/l").c_str(), &st) == 0);
        CHECK(st.st_mtim.tv_sec == 1'600'000'000);
    }
    temp_dir t;
    tar::extract_options o;
    o.permissions = tar::permissions::exact;
    o.keep_special_bits = true;
    o.keep_owners = true;
    tar::extractor x(t.path, o);
    auto f = mfile("suid", "x", 04755);
    f.e.uid = 1234;
    f.e.gid = 2345;
    extract_all(x, {f});
    struct stat st;
    REQUIRE(::stat((t / "suid").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 04755);
    if (::geteuid() == 0) {
        CHECK(st.st_uid == 1234);
        CHECK(st.st_gid == 2345);
    }
}

TEST_CASE("extractor: replacing files is all or nothing") {
    for (bool fb : {false, true}) {
        temp_dir t;
        write_file(t / "keep", "good");
        fs::create_symlink("keep", t / "link");
        tar::extract_options o;
        o.force_fallback = fb;
        {
            tar::extractor x(t.path, o);
            auto m = mfile("keep", std::string(100, 'x'));
            x.begin(m.e);
            x.write(std::string_view(m.content).substr(0, 10));
            x.abort();  // the stream failed mid-member
            auto n = mfile("new", std::string(100, 'y'));
            x.begin(n.e);
            x.write(std::string_view(n.content).substr(0, 10));
        }  // destroyed mid-member
        CHECK(read_file(t / "keep") == "good");
        CHECK(tree(t.path) == std::set<std::string>{"keep", "link"});
        tar::extractor x(t.path, o);
        extract_all(x,
                    {mfile("keep", "better"), mfile("link", "replaces the link, not its target"),
                     slink("keep2", "keep"), slink("keep2", "link"), hlink("keep3", "keep"), hlink("keep3", "keep")});
        CHECK(read_file(t / "keep") == "better");
        CHECK(fs::is_regular_file(fs::symlink_status(t / "link")));
        CHECK(fs::read_symlink(t / "keep2") == "link");
        CHECK(fs::hard_link_count(t / "keep") == 2);
        CHECK(tree(t.path) == std::set<std::string>{"keep", "keep2", "keep3", "link"});
    }
}

TEST_CASE("extractor: devices and fifos when opted in") {
    temp_dir t;
    tar::extract_options o;
    o.allow_devices = true;
    tar::extractor x(t.path, o);
    auto fifo = make_entry("fifo", tar::entry_type::fifo);
    fifo.mode = 0600;
    extract_all(x, {{fifo, {}}});
    CHECK(fs::is_fifo(t / "fifo"));
    if (::geteuid() == 0) {
        auto dev = make_entry("null", tar::entry_type::char_device);
        dev.devmajor = 1;
        dev.devminor = 3;
        tar::extractor y(t.path, o);
        extract_all(y, {{dev, {}}});
        CHECK(fs::is_character_file(t / "null"));
    }
}

namespace {
// Sets the process umask for a scope; the extractor reads it when constructed, child processes inherit it.
struct umask_scope {
    mode_t old;
    explicit umask_scope(mode_t m) : old(::umask(m)) {}
    ~umask_scope() { ::umask(old); }
};

// Members with every kind of mode the data filter changes.
std::vector<member> mode_zoo() {
    return {mdir("d-world", 0777),
            mdir("d-private", 0700),
            mdir("d-sticky", 01777),
            mfile("world-writable", "w", 0666),
            mfile("group-write-exec", "g", 0775),
            mfile("suid", "s", 04755),
            mfile("sgid-no-owner-x", "x", 02071),
            mfile("nothing", "n", 0),
            mfile("other-x-only", "o", 0601),
            mfile("d-world/inside", "i", 0646),
            hlink("hard", "world-writable"),
            slink("sym", "nothing")};
}

std::string archive_of(const std::vector<member>& ms) {
    std::string out;
    tar::writer w([&](std::span<const char> b) { out.append(b.data(), b.size()); });
    for (auto& m : ms) {
        w.add(m.e);
        w.write(m.content);
    }
    w.finish();
    return out;
}

std::map<std::string, unsigned> modes_in(const fs::path& root) {
    std::map<std::string, unsigned> out;
    for (auto& [name, n] : snap(root))
        if (n.type != 'l') out[name] = n.mode;
    return out;
}
}  // namespace

TEST_CASE("extractor: permissions follow PEP 706's data filter and the umask by default") {
    const std::map<std::string, unsigned> want_022 = {
        {"d-private", 0700},        {"d-sticky", 0755}, {"d-world", 0755},       {"d-world/inside", 0644},
        {"group-write-exec", 0755}, {"hard", 0644},     {"nothing", 0600},       {"other-x-only", 0600},
        {"sgid-no-owner-x", 0640},  {"suid", 0755},     {"world-writable", 0644}};
    for (bool fb : {false, true}) {
        CAPTURE(fb);
        umask_scope mask(022);
        temp_dir t;
        tar::extract_options o;
        o.force_fallback = fb;
        tar::extractor x(t.path, o);
        extract_all(x, mode_zoo());
        CHECK(modes_in(t.path) == want_022);
    }
    {
        // The umask applies on top (nothing group- or world-accessible under 077), to directories too.
        umask_scope mask(077);
        temp_dir t;
        tar::extractor x(t.path);
        extract_all(x, mode_zoo());
        auto got = modes_in(t.path);
        for (auto& [name, mode] : want_022) CHECK(got[name] == (mode & 0700));
    }
    {
        // A directory that was already there keeps its mode; one this archive made takes its last entry's.
        umask_scope mask(022);
        temp_dir t;
        fs::create_directory(t / "pre");
        fs::permissions(t / "pre", static_cast<fs::perms>(0711));
        tar::extractor x(t.path);
        extract_all(x, {mdir("pre", 0777), mdir("pre", 0700), mdir("new", 0700), mdir("new", 0777), mdir("new2", 0777),
                        mdir("new2", 0700)});
        CHECK(modes_in(t.path) == std::map<std::string, unsigned>{{"new", 0755}, {"new2", 0700}, {"pre", 0711}});
    }
    if (::system("/usr/bin/python3 -c 'import tarfile; tarfile.data_filter' 2>/dev/null") == 0) {
        // Python's own data filter agrees (its files ignore the umask; under 022 that makes no difference), but
        // for the one deliberate difference: it ignores directory modes, so its private directory comes out 0755.
        umask_scope mask(022);
        temp_dir t;
        write_file(t / "zoo.tar", archive_of(mode_zoo()));
        fs::create_directory(t / "py");
        REQUIRE(
            shell_status("/usr/bin/python3 -c \"import sys,tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], "
                         "filter='data')\" " +
                         (t / "zoo.tar").string() + " " + (t / "py").string()) == 0);
        fs::create_directory(t / "berth");
        unpack(archive_of(mode_zoo()), t / "berth", false, 512, tar::permissions::data_filter);
        CHECK(modes_in(t / "py").at("d-private") == 0755);
        fs::permissions(t / "py/d-private", static_cast<fs::perms>(0700));
        CHECK(snap(t / "berth", false) == snap(t / "py", false));
        CHECK(modes_in(t / "py") == want_022);
    }
}

TEST_CASE("extractor: exact modes on request; special bits only with them") {
    umask_scope mask(022);
    temp_dir t;
    fs::create_directory(t / "d-private");
    tar::extract_options o;
    o.permissions = tar::permissions::exact;
    {
        tar::extractor x(t.path, o);
        extract_all(x, mode_zoo());
    }
    auto got = modes_in(t.path);
    CHECK(got["world-writable"] == 0666);
    CHECK(got["group-write-exec"] == 0775);
    CHECK(got["suid"] == 0755);
    CHECK(got["nothing"] == 0);
    CHECK(got["d-world"] == 0777);
    CHECK(got["d-private"] == 0700);
    CHECK(got["d-sticky"] == 0777);
    o.keep_special_bits = true;
    {
        tar::extractor x(t.path, o);
        extract_all(x, mode_zoo());
    }
    got = modes_in(t.path);
    CHECK(got["suid"] == 04755);
    CHECK(got["sgid-no-owner-x"] == 02071);
    CHECK(got["d-sticky"] == 01777);
    o.permissions = tar::permissions::data_filter;
    CHECK_THROWS_AS(tar::extractor(t.path, o), berth::invalid_argument_error);
}

TEST_CASE("extractor: restrictive directory modes survive, wide ones are narrowed to 0755, after the contents") {
    umask_scope mask(022);
    const std::vector<member> tree_members = {mdir("d700", 0700),           mfile("d700/secret", "s", 0600),
                                              mdir("d500", 0500),           mfile("d500/inside", "i", 0644),
                                              mdir("d500/sub", 0500),       mfile("d500/sub/run", "r", 0755),
                                              mdir("d750", 0750),           mfile("d750/tool", "t", 0755),
                                              mfile("d750/key", "k", 0600), mdir("d777", 0777),
                                              mdir("d775", 0775),           mdir("d1777", 01777),
                                              mdir("d2750", 02750),         mdir("d770", 0770)};
    const std::map<std::string, unsigned> want = {
        {"d700", 0700},         {"d700/secret", 0600}, {"d500", 0500},      {"d500/inside", 0644}, {"d500/sub", 0500},
        {"d500/sub/run", 0755}, {"d750", 0750},        {"d750/tool", 0755}, {"d750/key", 0600},    {"d777", 0755},
        {"d775", 0755},         {"d1777", 0755},       {"d2750", 0750},     {"d770", 0750}};
    for (bool fb : {false, true}) {
        CAPTURE(fb);
        temp_dir t;
        tar::extract_options o;
        o.force_fallback = fb;
        tar::extractor x(t.path, o);
        extract_all(x, tree_members);  // a 0500 directory's contents are written before its mode is set
        CHECK(modes_in(t.path) == want);
        CHECK(read_file(t / "d500/sub/run") == "r");
    }
    {
        // the same through an archive and the unpacker
        temp_dir t;
        unpack(archive_of(tree_members), t.path, false, 512, tar::permissions::data_filter);
        CHECK(modes_in(t.path) == want);
    }
    {
        // The umask still narrows them further.
        umask_scope strict(027);
        temp_dir t;
        tar::extractor x(t.path);
        extract_all(x, {mdir("d755", 0755), mdir("d700", 0700)});
        CHECK(modes_in(t.path) == std::map<std::string, unsigned>{{"d700", 0700}, {"d755", 0750}});
    }
    {
        // An extraction that fails part way applies no archive mode: the directories made keep the owner-only
        // 0700 they were created with (a partial tree stays private and removable), whatever the archive said.
        temp_dir t;
        fs::create_directory(t / "dest");
        auto archive = archive_of({mdir("open", 0755), mdir("ro", 0500), mfile("ro/a", "a", 0644),
                                   mdir("ro/deeper", 0555), slink("ro/escape", "/etc")});
        tar::unpacker u(t / "dest");
        CHECK_THROWS_AS(u.feed(archive), tar::error);
        CHECK(modes_in(t / "dest") ==
              std::map<std::string, unsigned>{{"open", 0700}, {"ro", 0700}, {"ro/a", 0644}, {"ro/deeper", 0700}});
    }
}

TEST_CASE("unpacker: an archive cut at a member boundary is an error, not a smaller tree") {
    temp_dir t;
    fs::create_directories(t / "src");
    write_file(t / "src/one", "1");
    write_file(t / "src/two", "2");
    const auto archive = pack_to_string(t / "src", "");
    const std::size_t boundary = archive.size() - tar::end_of_archive_size;
    for (std::size_t cut : {std::size_t{1024}, boundary, boundary + 512}) {
        CAPTURE(cut);
        fs::remove_all(t / "dest");
        fs::create_directory(t / "dest");
        tar::unpacker u(t / "dest");
        u.feed(std::string_view(archive).substr(0, cut));
        try {
            u.finish();
            FAIL("a cut archive was taken as complete");
        } catch (const tar::error& e) {
            CHECK(e.code() == tar::errc::truncated);
            CHECK(e.offset() == cut);
        }
    }
    // The whole archive, in pieces, is complete; so is a cut one when the caller turns the rule off.
    fs::remove_all(t / "dest");
    fs::create_directory(t / "dest");
    unpack(archive, t / "dest", false, 100);
    CHECK(tree(t / "dest") == std::set<std::string>{"one", "two"});
    fs::remove_all(t / "dest");
    fs::create_directory(t / "dest");
    tar::extract_options o;
    o.reader.require_end_marker = false;
    tar::unpacker u(t / "dest", o);
    u.feed(std::string_view(archive).substr(0, 1024));
    u.finish();
    CHECK(tree(t / "dest") == std::set<std::string>{"one"});
}

TEST_CASE("packer: round trip through the reader") {
    temp_dir t;
    build_tree(t / "src");
    auto archive = pack_to_string(t / "src", "data");
    auto members = read_archive(archive);
    auto want = snap(t / "src");
    REQUIRE(members.size() == want.size() + 1);
    CHECK(members[0].e.name == "data");
    CHECK(members[0].e.type == tar::entry_type::directory);
    std::set<std::string> seen_inodes;
    std::vector<std::string> names;
    for (std::size_t i = 1; i < members.size(); ++i) {
        auto& m = members[i];
        names.push_back(m.e.name);
        REQUIRE(m.e.name.starts_with("data/"));
        std::string rel = m.e.name.substr(5);
        CAPTURE(rel);
        REQUIRE(want.count(rel) == 1);
        const node& n = want[rel];
        CHECK(m.e.mtime == n.mtime);
        CHECK(m.e.uname.empty());
        CHECK(m.e.uid == static_cast<std::int64_t>(::geteuid()));
        if (n.type == 'l') {
            CHECK(m.e.type == tar::entry_type::symlink);
            CHECK(m.e.linkname == n.link);
        } else {
            CHECK(m.e.mode == n.mode);
        }
        if (n.type == 'd') CHECK(m.e.type == tar::entry_type::directory);
        if (n.type == 'f') {
            if (!n.inode_group.empty() && n.inode_group != rel) {
                // the second name of an inode is a hard link to the first name in archive order
                CHECK(m.e.type == tar::entry_type::hardlink);
                CHECK(m.e.size == 0);
            } else if (m.e.type == tar::entry_type::file) {
                CHECK(m.e.size == static_cast<std::uint64_t>(n.size));
                CHECK(m.sha == n.sha);
            }
        }
    }
    CHECK(archive == pack_to_string(t / "src", "data"));  // deterministic
    // The hard-linked pair: one member with content, one hard link to it.
    int files = 0, links = 0;
    for (auto& m : members)
        if (m.e.name == "data/hard-a" || m.e.name == "data/sub/a.txt")
            (m.e.type == tar::entry_type::hardlink ? links : files)++;
    CHECK(files == 1);
    CHECK(links == 1);
}

TEST_CASE("packer: single file, empty name, subsecond mtimes, not found") {
    temp_dir t;
    write_file(t / "f.txt", "single");
    timespec ts[2] = {{1'600'000'000, 5}, {1'600'000'000, 123'456'789}};
    REQUIRE(::utimensat(AT_FDCWD, (t / "f.txt").c_str(), ts, 0) == 0);
    auto m = read_archive(pack_to_string(t / "f.txt", "name.txt"));
    REQUIRE(m.size() == 1);
    CHECK(m[0].e.name == "name.txt");
    CHECK(m[0].e.size == 6);
    CHECK(m[0].e.mtime_nsec == 0);
    tar::pack_options o;
    o.preserve_subsecond = true;
    m = read_archive(pack_to_string(t / "f.txt", "", o));
    REQUIRE(m.size() == 1);
    CHECK(m[0].e.name == "f.txt");
    CHECK(m[0].e.mtime_nsec == 123'456'789);
    fs::create_directories(t / "ctx/d");
    write_file(t / "ctx/d/x", "x");
    m = read_archive(pack_to_string(t / "ctx", ""));
    REQUIRE(m.size() == 2);
    CHECK(m[0].e.name == "d");
    CHECK(m[1].e.name == "d/x");
    try {
        tar::packer p(t / "missing", "x");
        FAIL("no error");
    } catch (const tar::error& e) {
        CHECK(e.code() == tar::errc::not_found);
        CHECK(std::string(e.what()).find("missing") != std::string::npos);
    }
    // Sockets are skipped.
    fs::create_directories(t / "sock");
    REQUIRE(shell_status("python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.bind('" +
                         (t / "sock/s").string() + "')\"") == 0);
    write_file(t / "sock/f", "f");
    m = read_archive(pack_to_string(t / "sock", ""));
    REQUIRE(m.size() == 1);
    CHECK(m[0].e.name == "f");
}

TEST_CASE("packer: .dockerignore") {
    temp_dir t;
    auto c = t / "ctx";
    fs::create_directories(c / "node_modules/pkg");
    fs::create_directories(c / "src");
    fs::create_directories(c / "vendor/keep");
    write_file(c / ".dockerignore", "# build context\n*\n!src\n!vendor/keep\n");
    write_file(c / "Dockerfile", "FROM scratch\n");
    write_file(c / "node_modules/pkg/i.js", "");
    write_file(c / "src/main.c", "int main;");
    write_file(c / "vendor/keep/k", "k");
    write_file(c / "vendor/drop", "d");
    write_file(c / "top.log", "");
    tar::pack_options o;
    o.use_dockerignore = true;
    std::vector<std::string> names;
    for (auto& m : read_archive(pack_to_string(c, "", o))) names.push_back(m.e.name);
    // Dockerfile and .dockerignore are always sent; "vendor" itself stays excluded, its re-included child does not.
    CHECK(names ==
          std::vector<std::string>{".dockerignore", "Dockerfile", "src", "src/main.c", "vendor/keep", "vendor/keep/k"});
    names.clear();
    for (auto& m : read_archive(pack_to_string(c, ""))) names.push_back(m.e.name);
    CHECK(names.size() == 12);
}

TEST_CASE("packer -> extractor: trees reproduced, openat2 and fallback") {
    temp_dir t;
    build_tree(t / "src");
    auto archive = pack_to_string(t / "src", "data");
    auto want = snap(t / "src");
    for (bool fb : {false, true}) {
        CAPTURE(fb);
        auto dest = t / (fb ? "fallback" : "openat2");
        fs::create_directory(dest);
        unpack(archive, dest, fb);
        CHECK(names_in(dest) == std::set<std::string>{"data"});
        CHECK(snap(dest / "data") == want);
        // Extracting again over the same tree replaces every file and keeps the result identical.
        unpack(archive, dest, fb, 512);
        CHECK(snap(dest / "data") == want);
    }
}

TEST_CASE("unpacker: a truncated stream leaves no partial file") {
    temp_dir t;
    fs::create_directories(t / "src");
    write_file(t / "src/one", std::string(10000, 'a'));
    write_file(t / "src/two", std::string(10000, 'b'));
    auto archive = pack_to_string(t / "src", "");
    fs::create_directory(t / "dest");
    write_file(t / "dest/two", "old two");
    tar::unpacker u(t / "dest");
    u.feed(std::string_view(archive).substr(0, 10240 + 512 + 5000));  // stops inside "two"
    CHECK_THROWS_AS(u.finish(), tar::error);
    CHECK(read_file(t / "dest/one") == std::string(10000, 'a'));
    CHECK(read_file(t / "dest/two") == "old two");
    CHECK(names_in(t / "dest") == std::set<std::string>{"one", "two"});
}

TEST_CASE("packer: 5 GiB sparse file streams in constant memory") {
    temp_dir t;
    const std::uint64_t size = 5ull << 30;
    const std::vector<std::pair<std::uint64_t, std::string>> marks = {
        {0, "head"}, {(5ull << 29) + 3, "middle"}, {size - 4, "tail"}};
    {
        int fd = ::open((t / "big").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        REQUIRE(fd >= 0);
        REQUIRE(::ftruncate(fd, static_cast<off_t>(size)) == 0);
        for (auto& [off, s] : marks)
            REQUIRE(::pwrite(fd, s.data(), s.size(), static_cast<off_t>(off)) == static_cast<ssize_t>(s.size()));
        ::close(fd);
    }
    // Fingerprint of content: every non-zero byte with its offset, plus the total length.
    auto fold = [](std::uint64_t h, std::uint64_t off, unsigned char c) {
        return (h ^ (off * 131 + c)) * 0x100000001b3ull;
    };
    std::uint64_t want = 0xcbf29ce484222325ull;
    for (auto& [off, s] : marks)
        for (std::size_t i = 0; i < s.size(); ++i) want = fold(want, off + i, static_cast<unsigned char>(s[i]));

    tar::packer p(t / "big", "big.bin");
    tar::reader r;
    std::vector<char> buf(1 << 20);
    static const char zeros[1 << 16] = {};
    std::uint64_t got = 0xcbf29ce484222325ull, pos = 0;
    bool ended = false;
    while (std::size_t n = p.read(buf)) {
        r.feed({buf.data(), n});
        for (bool more = true; more;) {
            switch (r.next()) {
            case tar::reader::event::need_more: more = false; break;
            case tar::reader::event::entry: CHECK(r.current().size == size); break;
            case tar::reader::event::data: {
                auto d = r.data();
                for (std::size_t i = 0; i < d.size(); i += sizeof zeros) {
                    std::size_t k = std::min(sizeof zeros, d.size() - i);
                    if (std::memcmp(d.data() + i, zeros, k) != 0)
                        for (std::size_t j = i; j < i + k; ++j)
                            if (d[j]) got = fold(got, pos + j, static_cast<unsigned char>(d[j]));
                }
                pos += d.size();
                break;
            }
            case tar::reader::event::entry_end: break;
            case tar::reader::event::end:
                ended = true;
                more = false;
                break;
            }
        }
    }
    CHECK(ended);
    CHECK(pos == size);
    CHECK(got == want);
}

TEST_CASE("packer -> extractor: a sparse file arrives intact") {
    temp_dir t;
    fs::create_directories(t / "src");
    {
        int fd = ::open((t / "src/sparse").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        REQUIRE(::ftruncate(fd, 8 << 20) == 0);
        REQUIRE(::pwrite(fd, "x", 1, 5 << 20) == 1);
        ::close(fd);
    }
    fs::create_directory(t / "dest");
    unpack(pack_to_string(t / "src", ""), t / "dest", false, 1 << 20);
    CHECK(hash_file(t / "dest/sparse") == hash_file(t / "src/sparse"));
    CHECK(fs::file_size(t / "dest/sparse") == (8u << 20));
    // the zeros became holes: a few blocks on disk, not 8 MiB
    struct stat st {};
    REQUIRE(::stat((t / "dest/sparse").c_str(), &st) == 0);
    CHECK(st.st_blocks * 512 < (2 << 20));
}

TEST_CASE("extractor: a file ending in zeros keeps its size, one of only zeros too") {
    temp_dir t;
    fs::create_directories(t / "src");
    write_file(t / "src/tail", std::string(70000, 'a') + std::string(200000, '\0'));
    write_file(t / "src/zeros", std::string(300000, '\0'));
    fs::create_directory(t / "dest");
    unpack(pack_to_string(t / "src", ""), t / "dest", false, 4096);
    CHECK(read_file(t / "dest/tail") == std::string(70000, 'a') + std::string(200000, '\0'));
    CHECK(read_file(t / "dest/zeros") == std::string(300000, '\0'));
}

TEST_CASE("interop: GNU tar, bsdtar and python tarfile read what the packer writes") {
    temp_dir t;
    build_tree(t / "src");
    auto archive = pack_to_string(t / "src", "data");
    write_file(t / "a.tar", archive);
    auto want = snap(t / "src");
    const std::string a = (t / "a.tar").string();
    // Listings: names, types, sizes, modes, mtimes and link names as each tool reports them.
    std::string ours;
    for (auto& m : read_archive(archive)) {
        char type = m.e.type == tar::entry_type::directory  ? 'd'
                    : m.e.type == tar::entry_type::symlink  ? 'l'
                    : m.e.type == tar::entry_type::hardlink ? 'h'
                                                            : 'f';
        ours += m.e.name + "|" + type + "|" + std::to_string(m.e.size) + "|" + std::to_string(m.e.mode) + "|" +
                std::to_string(m.e.mtime) + "|" + m.e.linkname + "\n";
    }
    const std::string py = R"(import sys, tarfile
with tarfile.open(sys.argv[1]) as tf:
    for m in tf:
        t = 'd' if m.isdir() else 'l' if m.issym() else 'h' if m.islnk() else 'f'
        sys.stdout.write('%s|%s|%d|%d|%d|%s\n' % (m.name, t, m.size, m.mode, m.mtime, m.linkname))
)";
    write_file(t / "list.py", py);
    REQUIRE(shell_status("/usr/bin/python3 " + (t / "list.py").string() + " " + a + " > " + (t / "py.txt").string()) ==
            0);
    CHECK(read_file(t / "py.txt") == ours);
    // GNU tar's verbose listing (numeric owners, UTC): perms, owner, size, date, time, name [-> link | link to].
    REQUIRE(shell_status("TZ=UTC tar --numeric-owner --full-time --quoting-style=literal -tvf " + a + " > " +
                         (t / "gnu.txt").string()) == 0);
    std::istringstream gnu(read_file(t / "gnu.txt"));
    std::string line;
    std::size_t lines = 0;
    auto members = read_archive(archive);
    for (; std::getline(gnu, line); ++lines) {
        REQUIRE(lines < members.size());
        auto& m = members[lines].e;
        std::istringstream ls(line);
        std::string perms, owner, size, date, time;
        ls >> perms >> owner >> size >> date >> time;
        std::string rest;
        std::getline(ls, rest);
        rest.erase(0, 1);
        std::string expect_name = m.name + (m.type == tar::entry_type::directory ? "/" : "");
        if (m.type == tar::entry_type::symlink) expect_name += " -> " + m.linkname;
        if (m.type == tar::entry_type::hardlink) expect_name += " link to " + m.linkname;
        CHECK(rest == expect_name);
        CHECK(owner == std::to_string(::geteuid()) + "/" + std::to_string(::getegid()));
        CHECK(std::stoull(size) == m.size);
        std::tm tm{};
        REQUIRE(::strptime((date + " " + time).c_str(), "%Y-%m-%d %H:%M:%S", &tm) != nullptr);
        CHECK(::timegm(&tm) == m.mtime);
    }
    CHECK(lines == members.size());
    // bsdtar agrees on the names (its mtree dump would say the same as the extraction check below).
    REQUIRE(shell_status("bsdtar -tf " + a + " > " + (t / "bsd.txt").string()) == 0);
    std::string names;
    for (auto& m : members) names += m.e.name + (m.e.type == tar::entry_type::directory ? "/" : "") + "\n";
    CHECK(read_file(t / "bsd.txt") == names);
    // Extraction by each tool reproduces the source tree.
    for (
        const auto& tool : std::vector<std::pair<std::string, std::string>>{
            {"gnu", "tar -xpf " + a + " -C "},
            {"bsd", "bsdtar -xpf " + a + " -C "},
            {"py",
             "/usr/bin/python3 -c \"import sys,tarfile; tf=tarfile.open(sys.argv[1]); "
             "tf.extractall(sys.argv[2], **({'filter':'fully_trusted'} if hasattr(tarfile,'data_filter') else {}))\" " +
                 a + " "}}) {
        const std::string& dir = tool.first;
        const std::string& cmd = tool.second;
        CAPTURE(dir);
        fs::create_directory(t / dir);
        REQUIRE(shell_status(cmd + (t / dir).string()) == 0);
        bool symlink_mtimes = dir != "py";  // tarfile does not set a symlink's own mtime
        CHECK(snap(t / dir / "data", symlink_mtimes) == snap(t / "src", symlink_mtimes));
    }
    // And the other way: GNU tar's archive of the same tree through the unpacker.
    REQUIRE(shell_status("tar --format=posix -cf " + (t / "g.tar").string() + " -C " + (t / "src").string() + " .") ==
            0);
    fs::create_directory(t / "from-gnu");
    unpack(read_file(t / "g.tar"), t / "from-gnu", false);
    CHECK(snap(t / "from-gnu") == want);
}

}  // TEST_SUITE("tar fs")
