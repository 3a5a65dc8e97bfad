// The tar format layer: header codec, PAX records, push reader, writer and gzip, unit-tested and checked against
// the real tools (GNU tar, bsdtar, Python's tarfile) on archives they write and archives berth writes.
#include <berth/tar/tar.hpp>

#include <boost/crc.hpp>
#include <doctest/doctest.h>

#include "support/files.hpp"
#include "support/shell.hpp"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace tar = berth::tar;
namespace fs = std::filesystem;
using ev = tar::reader::event;
using berth_test::read_file;
using berth_test::shell_output;
using berth_test::temp_dir;
using berth_test::write_file;

namespace {

// ---------------------------------------------------------------------------------------------- helpers

struct member {
    tar::entry e;
    std::string content;
};

// Reads a whole archive, feeding `chunk` bytes at a time.
std::vector<member> read_members(std::string_view ar, std::size_t chunk = ~std::size_t{0},
                                 tar::reader_options opt = {}) {
    tar::reader r(opt);
    std::vector<member> out;
    std::size_t pos = 0;
    for (;;) {
        switch (r.next()) {
        case ev::need_more: {
            if (pos == ar.size()) {
                r.finish();
                return out;
            }
            const std::size_t n = std::min(chunk, ar.size() - pos);
            r.feed({ar.data() + pos, n});
            pos += n;
            break;
        }
        case ev::entry: out.push_back({r.current(), {}}); break;
        case ev::data: out.back().content.append(r.data().data(), r.data().size()); break;
        case ev::entry_end:
            // only files have content; other types report the size they carry
            REQUIRE(out.back().content.size() == (out.back().e.type == tar::entry_type::file ? out.back().e.size : 0));
            break;
        case ev::end: return out;
        }
    }
}

// Runs the reader over `ar` and returns the error it throws (fails the test if none).
tar::error read_error(std::string_view ar, std::size_t chunk = ~std::size_t{0}, tar::reader_options opt = {}) {
    try {
        read_members(ar, chunk, opt);
    } catch (const tar::error& e) { return e; }
    FAIL("no tar::error thrown");
    return tar::error(tar::errc::io_error, "unreachable");
}

std::uint32_t crc32(std::string_view s) {
    boost::crc_32_type crc;
    crc.process_bytes(s.data(), s.size());
    return crc.checksum();
}

// One line per member, the same fields the Python reference prints.
std::string listing(const std::vector<member>& ms) {
    std::string out;
    for (const auto& m : ms) {
        const auto& e = m.e;
        std::ostringstream l;
        l << e.name << '|' << static_cast<char>(e.type) << '|' << e.size << '|' << std::oct << e.mode << std::dec << '|'
          << e.mtime << '|' << e.linkname << '|' << e.uid << '|' << e.gid << '|' << e.uname << '|' << e.gname << '|'
          << (e.type == tar::entry_type::file ? crc32(m.content) : 0) << '\n';
        out += l.str();
    }
    return out;
}

std::string write_archive(const std::vector<member>& ms, tar::writer_options opt = {}) {
    std::string out;
    tar::writer w([&](std::span<const char> b) { out.append(b.data(), b.size()); }, opt);
    for (const auto& m : ms) {
        w.add(m.e);
        w.write(m.content);
    }
    w.finish();
    return out;
}

tar::entry file_entry(std::string name, std::uint64_t size) {
    tar::entry e;
    e.name = std::move(name);
    e.size = size;
    e.mtime = 1700000000;
    return e;
}

bool have_tool(const std::string& name) {
    return berth_test::shell_status("command -v " + name + " >/dev/null 2>&1") == 0;
}

// The reference listing: Python's tarfile reads every format here; it prints the fields `listing` prints.
constexpr const char* python_lister = R"PY(
import sys, tarfile, zlib, math
tf = tarfile.open(sys.argv[1])
out = []
for m in tf:
    t = '0' if m.isreg() else '1' if m.islnk() else '2' if m.issym() else '3' if m.ischr() else \
        '4' if m.isblk() else '5' if m.isdir() else '6' if m.isfifo() else '?'
    size = m.size  # non-regular members too: the size field they carry
    crc = zlib.crc32(tf.extractfile(m).read()) if m.isreg() else 0
    out.append('%s|%s|%d|%o|%d|%s|%d|%d|%s|%s|%d\n' % (m.name, t, size, m.mode & 0o7777, math.floor(m.mtime),
               m.linkname, m.uid, m.gid, m.uname, m.gname, crc))
sys.stdout.buffer.write(''.join(out).encode('utf-8', 'surrogateescape'))
)PY";

std::string python_listing(const temp_dir& d, const fs::path& archive) {
    const auto script = d.path / "list.py";
    if (!fs::exists(script)) write_file(script, python_lister);
    int rc = 0;
    auto out = shell_output("/usr/bin/python3 '" + script.string() + "' '" + archive.string() + "'", &rc);
    CHECK(rc == 0);
    return out;
}

}  // namespace

TEST_SUITE("tar format") {

// ------------------------------------------------------------------------------------------------ header

TEST_CASE("numeric fields: octal, base-256, garbage") {
    using tar::parse_numeric;
    CHECK(parse_numeric(std::string_view("0000644\0", 8)) == 0644);
    CHECK(parse_numeric(std::string_view("   644 \0", 8)) == 0644);
    CHECK(parse_numeric(std::string_view("\0\0\0\0\0\0\0\0", 8)) == 0);
    CHECK(parse_numeric(std::string_view("00000000017\0", 12)) == 017);
    CHECK_FALSE(parse_numeric("00x00000").has_value());
    CHECK_FALSE(parse_numeric("0009").has_value());
    std::array<char, 8> f{};
    for (std::int64_t v : {std::int64_t{0}, std::int64_t{1}, std::int64_t{-1}, std::int64_t{1} << 40,
                           -(std::int64_t{1} << 40), (std::int64_t{1} << 55) - 1, -(std::int64_t{1} << 55)}) {
        REQUIRE(tar::format_base256(f, v));
        CHECK(static_cast<unsigned char>(f[0]) >= 0x80);
        CHECK(parse_numeric({f.data(), f.size()}) == v);
    }
    CHECK_FALSE(tar::format_base256(f, std::int64_t{1} << 56));
    std::array<char, 12> big{};
    REQUIRE(tar::format_base256(big, INT64_MAX));
    CHECK(parse_numeric({big.data(), big.size()}) == INT64_MAX);
    REQUIRE(tar::format_base256(big, INT64_MIN));
    CHECK(parse_numeric({big.data(), big.size()}) == INT64_MIN);
    // A base-256 value over int64 is rejected, not wrapped.
    std::string over(12, '\xff');
    over[0] = '\x80';
    CHECK_FALSE(parse_numeric(over).has_value());
    CHECK(tar::format_octal(f, 07777777));
    CHECK_FALSE(tar::format_octal(f, 010000000));
}

TEST_CASE("header block round trip, USTAR prefix split and GNU base-256") {
    tar::header h;
    h.name = std::string(60, 'a') + "/" + std::string(89, 'b');  // 150 bytes: needs the prefix
    h.typeflag = '0';
    h.mode = 04755;
    h.uid = 1000;
    h.gid = 1001;
    h.size = 12345;
    h.mtime = 1700000000;
    h.uname = "user";
    h.gname = "group";
    h.linkname = "";
    std::array<char, 512> b;
    tar::encode_header_block(h, b);
    CHECK(tar::verify_checksum(b));
    auto d = tar::decode_header(b);
    CHECK(d.format == tar::header_format::ustar);
    CHECK(d.name == h.name);
    CHECK(d.mode == 04755);
    CHECK(d.uid == 1000);
    CHECK(d.size == 12345);
    CHECK(d.uname == "user");

    h.name = std::string(300, 'c');
    CHECK_THROWS_AS(tar::encode_header_block(h, b), tar::error);

    // GNU dialect: numbers too big for octal go base-256 (uid 2^40, negative mtime).
    h.format = tar::header_format::gnu;
    h.name = "n";
    h.uid = std::int64_t{1} << 40;
    h.mtime = -1234567;
    tar::encode_header_block(h, b);
    d = tar::decode_header(b);
    CHECK(d.format == tar::header_format::gnu);
    CHECK(d.uid == std::int64_t{1} << 40);
    CHECK(d.mtime == -1234567);
}

TEST_CASE("checksum: unsigned and signed sums accepted, anything else rejected") {
    tar::header h;
    h.name = "caf\xc3\xa9";  // bytes >= 0x80 make the two sums differ
    std::array<char, 512> b;
    tar::encode_header_block(h, b);
    const auto sums = tar::compute_checksums(b);
    CHECK(sums.unsigned_sum != sums.signed_sum);
    CHECK(tar::verify_checksum(b));
    tar::format_octal(std::span<char>(b.data() + 148, 7), static_cast<std::uint64_t>(sums.signed_sum));
    CHECK(tar::verify_checksum(b));
    CHECK(tar::decode_header(b).name == h.name);
    tar::format_octal(std::span<char>(b.data() + 148, 7), static_cast<std::uint64_t>(sums.unsigned_sum + 1));
    CHECK_FALSE(tar::verify_checksum(b));
    CHECK_THROWS_AS(tar::decode_header(b), tar::error);
}

// --------------------------------------------------------------------------------------------------- PAX

TEST_CASE("PAX records: parse, encode with self-referential length") {
    std::vector<std::pair<std::string, std::string>> got;
    tar::parse_pax_records("30 mtime=1350244992.023960108\n6 a=b\n5 k=\n",
                           [&](std::string_view k, std::string_view v) { got.emplace_back(k, v); });
    REQUIRE(got.size() == 3);
    CHECK(got[0].second == "1350244992.023960108");
    CHECK(got[1] == std::pair<std::string, std::string>("a", "b"));
    CHECK(got[2].second.empty());

    // Lengths around digit boundaries: 9 -> "11 ...", 98 -> "101 ...".
    for (std::size_t n = 0; n < 1100; ++n) {
        std::string rec;
        tar::append_pax_record(rec, "k", std::string(n, 'v'));
        CHECK(rec.size() == tar::pax_record_size("k", std::string(n, 'v')));
        CHECK(std::stoul(rec) == rec.size());
        std::size_t count = 0;
        tar::parse_pax_records(rec, [&](std::string_view k, std::string_view v) {
            CHECK(k == "k");
            CHECK(v.size() == n);
            ++count;
        });
        CHECK(count == 1);
    }
}

TEST_CASE("PAX records: every malformation is bad_pax_record at the record's offset") {
    for (std::string_view bad : {"x a=b\n", "6 a=b", "5 a=b\n", "7 a=b\n", "6 ab\n\n", "5 =b\n", "6 a=bX", "-6 a=b\n",
                                 "99999999999999999999 a=b\n", "6\0a=b\n"}) {
        CAPTURE(bad);
        try {
            tar::parse_pax_records(
                bad, [](auto, auto) {}, 1000);
            FAIL("accepted");
        } catch (const tar::error& e) {
            CHECK(e.code() == tar::errc::bad_pax_record);
            CHECK(e.offset() == 1000);
        }
    }
    try {
        tar::parse_pax_records(
            "6 a=b\n6 a=b", [](auto, auto) {}, 1000);
    } catch (const tar::error& e) {
        CHECK(e.offset() == 1006);  // the second record
    }
}

TEST_CASE("PAX time and integer values") {
    CHECK(tar::parse_pax_time("-1.5") == tar::pax_time{-2, 500'000'000});
    CHECK(tar::parse_pax_time("-0.25") == tar::pax_time{-1, 750'000'000});
    CHECK(tar::parse_pax_time("1.0000000019") == tar::pax_time{1, 1});
    CHECK(tar::parse_pax_time("17") == tar::pax_time{17, 0});
    CHECK(tar::parse_pax_time("17.") == tar::pax_time{17, 0});
    for (auto bad : {"", ".5", "1.a", "--1", "1e5", "99999999999999999999"}) CHECK_FALSE(tar::parse_pax_time(bad));
    CHECK(tar::format_pax_time({-2, 500'000'000}) == "-1.5");
    CHECK(tar::format_pax_time({-1, 750'000'000}) == "-0.25");
    CHECK(tar::format_pax_time({5, 10}) == "5.00000001");
    CHECK(tar::format_pax_time({-7, 0}) == "-7");
    CHECK(tar::parse_pax_integer("-9223372036854775808") == INT64_MIN);
    CHECK_FALSE(tar::parse_pax_integer("9223372036854775808"));
    CHECK_FALSE(tar::parse_pax_integer("+1"));
}

// ------------------------------------------------------------------------------------------ writer+reader

std::vector<member> tricky_members() {
    std::vector<member> ms;
    auto add = [&](tar::entry e, std::string content = {}) {
        e.size = e.type == tar::entry_type::file ? content.size() : 0;
        ms.push_back({std::move(e), std::move(content)});
    };
    tar::entry d = file_entry("dir", 0);
    d.type = tar::entry_type::directory;
    d.mode = 0755;
    add(d);
    add(file_entry("dir/empty", 0));
    add(file_entry("dir/" + std::string(60, 'p') + "/" + std::string(85, 'q'), 0), "150-byte path");
    std::string p300;
    for (int i = 0; i < 6; ++i) p300 += std::string(49, char('a' + i)) + "/";
    add(file_entry(p300 + "f", 0), "300-byte path");
    add(file_entry("dir/h\xc3\xa9llo-\xe2\x82\xac.txt", 0), "utf-8");
    tar::entry big_ids = file_entry("ids", 0);
    big_ids.uid = 3'000'000;  // over 7 octal digits
    big_ids.gid = 5'000'000;  // GNU tar refuses ids over 32 bits, so stay under
    big_ids.uname = std::string(40, 'u');
    big_ids.gname = "gr\xc3\xbcppe";
    big_ids.mode = 06751;
    add(big_ids, std::string(1000, 'x'));
    tar::entry old = file_entry("old", 0);
    old.mtime = -86400 * 365;
    add(old, "before 1970");
    tar::entry s = file_entry("dir/link", 0);
    s.type = tar::entry_type::symlink;
    s.linkname = std::string(150, 't') + "/target";
    s.mode = 0777;
    add(s);
    tar::entry h = file_entry("hard", 0);
    h.type = tar::entry_type::hardlink;
    h.linkname = "ids";
    add(h);
    tar::entry x = file_entry("xattr", 0);
    x.pax_records["SCHILY.xattr.user.k"] = std::string("v\0v", 3);
    add(x, std::string(513, 'z'));
    return ms;
}

TEST_CASE("writer output reads back identically, whole and byte by byte") {
    const auto ms = tricky_members();
    const auto ar = write_archive(ms);
    CHECK(ar.size() % 512 == 0);
    const auto whole = read_members(ar);
    REQUIRE(whole.size() == ms.size());
    CHECK(listing(whole) == listing(ms));
    for (std::size_t i = 0; i < ms.size(); ++i) CHECK(whole[i].e.pax_records == ms[i].e.pax_records);
    CHECK(listing(read_members(ar, 1)) == listing(ms));
    CHECK(listing(read_members(ar, 511)) == listing(ms));
    CHECK(listing(read_members(ar, 513)) == listing(ms));
}

TEST_CASE("writer: PAX only when needed; sub-second mtimes on request; big sizes") {
    auto e = file_entry("plain", 0);
    e.mtime_nsec = 5;
    std::string out;
    tar::encode_header(e, out);
    CHECK(out.size() == 512);  // nothing USTAR cannot hold
    out.clear();
    tar::encode_header(e, out, {.preserve_subsecond = true});
    CHECK(out.size() > 512);
    tar::reader r;
    out.append(1024, '\0');
    r.feed(out);
    REQUIRE(r.next() == ev::entry);
    CHECK(r.current().mtime_nsec == 5);

    // 10 GiB: the header says so through PAX; the reader reports it before any content.
    auto big = file_entry("big", std::uint64_t{10} << 30);
    out.clear();
    tar::encode_header(big, out);
    tar::reader r2;
    r2.feed(out);
    REQUIRE(r2.next() == ev::entry);
    CHECK(r2.current().size == std::uint64_t{10} << 30);
    CHECK(r2.next() == ev::need_more);
    CHECK_THROWS_AS(r2.finish(), tar::error);
}

TEST_CASE("writer checks content sizes") {
    std::string sink;
    tar::writer w([&](std::span<const char> b) { sink.append(b.data(), b.size()); });
    w.add(file_entry("a", 3));
    CHECK_THROWS_AS(w.write(std::string_view("abcd")), tar::error);
    w.write(std::string_view("ab"));
    try {
        w.add(file_entry("b", 0));
        FAIL("short member accepted");
    } catch (const tar::error& e) {
        CHECK(e.code() == tar::errc::size_mismatch);
        CHECK(e.entry_name() == "a");
    }
    CHECK_THROWS_AS(tar::encode_header(file_entry("", 0), sink), tar::error);
}

// ------------------------------------------------------------------------------------------- reader errors

namespace {
// A small archive with a patchable second header.
std::string two_files() {
    std::vector<member> ms{{file_entry("one", 5), "hello"}, {file_entry("two", 3), "abc"}};
    return write_archive(ms);
}
void rechecksum(std::string& ar, std::size_t at) {
    const tar::block_span b(ar.data() + at, 512);
    tar::format_octal(std::span<char>(b.data() + 148, 7),
                      static_cast<std::uint64_t>(tar::compute_checksums(b).unsigned_sum));
    b[155] = ' ';
}
}  // namespace

TEST_CASE("reader errors carry kind, offset and entry name") {
    {
        auto ar = two_files();
        ar[1024] = 'X';  // second header's name: checksum no longer matches
        const auto e = read_error(ar);
        CHECK(e.code() == tar::errc::bad_checksum);
        CHECK(e.offset() == 1024);
        CHECK(e.entry_name() == "Xwo");
    }
    {
        auto ar = two_files();
        std::memcpy(ar.data() + 1024 + 124, "0000000z000", 11);  // size
        rechecksum(ar, 1024);
        const auto e = read_error(ar, 1);
        CHECK(e.code() == tar::errc::bad_header_field);
        CHECK(e.offset() == 1024);
        CHECK(e.entry_name() == "two");
    }
    {
        auto ar = two_files();
        tar::format_base256(std::span<char>(ar.data() + 1024 + 124, 12), -5);  // negative size
        rechecksum(ar, 1024);
        const auto e = read_error(ar);
        CHECK(e.code() == tar::errc::bad_header_field);
        CHECK(e.offset() == 1024);
    }
    {
        // A PAX record with a wrong length: offset is the payload start (512) plus the record's position.
        auto x = file_entry("x", 0);
        x.pax_records["aaa"] = "1";
        x.pax_records["bbb"] = "2";
        auto ar = write_archive({{x, ""}});
        const auto pos = ar.find("8 bbb=2\n");
        REQUIRE(pos != std::string::npos);
        ar[pos] = '9';  // "9 bbb=2\n" + the padding NUL: no newline at its end
        const auto e = read_error(ar, 7);
        CHECK(e.code() == tar::errc::bad_pax_record);
        CHECK(e.offset() == pos);
    }
    {
        // A NUL inside a PAX path is refused (it would silently cut the name elsewhere).
        auto x = file_entry("x", 0);
        x.pax_records["k"] = "v";
        auto ar = write_archive({{x, ""}});
        const auto pos = ar.find("6 k=v\n");
        REQUIRE(pos != std::string::npos);
        ar.replace(pos, 6, std::string("9 path=\0\n", 9));
        std::memcpy(ar.data() + 124, "00000000011", 11);  // payload size 6 -> 9
        rechecksum(ar, 0);
        const auto e = read_error(ar);
        CHECK(e.code() == tar::errc::bad_pax_record);
        CHECK(e.offset() == pos + 2);
    }
    {
        auto ar = two_files();
        const auto e = read_error(std::string_view(ar).substr(0, 512 + 3));
        CHECK(e.code() == tar::errc::truncated);
        CHECK(e.offset() == 515);
        CHECK(e.entry_name() == "one");
    }
    {
        auto ar = two_files();
        CHECK(read_error(ar, 100, {.max_entries = 1}).code() == tar::errc::limit_exceeded);
        CHECK(read_error(ar, 100, {.max_path_length = 2}).code() == tar::errc::limit_exceeded);
        auto x = file_entry("x", 0);
        x.pax_records["k"] = std::string(2000, 'v');
        const auto e = read_error(write_archive({{x, ""}}), 100, {.max_pax_size = 1000});
        CHECK(e.code() == tar::errc::limit_exceeded);
        CHECK(e.offset() == 0);
    }
}

TEST_CASE("reader: sparse map errors") {
    // PAX 0.1 map whose data sizes do not add up to the stored size.
    auto make = [](std::string map, std::string realsize, std::string stored) {
        auto x = file_entry("s", stored.size());
        std::string pax;
        tar::append_pax_record(pax, "GNU.sparse.map", map);
        tar::append_pax_record(pax, "GNU.sparse.size", realsize);
        tar::append_pax_record(pax, "GNU.sparse.numblocks", "2");
        tar::header h;
        h.typeflag = 'x';
        h.name = "pax";
        h.size = static_cast<std::int64_t>(pax.size());
        std::string ar(512, '\0');
        tar::encode_header_block(h, tar::block_span(ar.data(), 512));
        ar += pax;
        ar.append(tar::padding_after(pax.size()), '\0');
        std::string rest;
        tar::encode_header(x, rest);
        ar += rest + stored;
        ar.append(tar::padding_after(stored.size()) + 1024, '\0');
        return ar;
    };
    const auto good = read_members(make("2,3,10,2", "20", "abcde"), 1);
    REQUIRE(good.size() == 1);
    CHECK(good[0].e.size == 20);
    CHECK(good[0].content == std::string("\0\0abc\0\0\0\0\0de\0\0\0\0\0\0\0\0", 20));
    for (auto [map, real] : {std::pair{"2,3,10,3", "20"},
                             {"2,3,10,2", "11"},
                             {"10,2,2,3", "20"},
                             {"2,3,4,2", "20"},
                             {"2,3,10", "20"},
                             {"2,3,x,2", "20"},
                             {"2,3,10,2", "-1"}}) {
        const std::string_view which = map;
        CAPTURE(which);
        const auto e = read_error(make(map, real, "abcde"));
        CHECK(e.code() == tar::errc::bad_sparse_map);
    }
}

TEST_CASE("reader: truncation anywhere is truncated or a clean end, never anything else") {
    auto ms = tricky_members();
    ms.resize(6);
    const auto ar = write_archive(ms);
    const auto full = listing(read_members(ar));
    for (bool strict : {true, false}) {
        for (std::size_t n = 0; n <= ar.size(); ++n) {
            CAPTURE(strict);
            CAPTURE(n);
            try {
                const auto got = read_members(std::string_view(ar).substr(0, n), n % 3 == 0 ? 1 : 4096,
                                              {.require_end_marker = strict});
                // By default only the whole archive, end marker included, is complete. Without the marker rule
                // a clean end is at a block boundary, or after the first zero block.
                if (strict)
                    CHECK(n == ar.size());
                else
                    CHECK((n % 512 == 0 || n >= ar.size() - 512));
                CHECK(full.starts_with(listing(got)));
            } catch (const tar::error& e) {
                CHECK(e.code() == tar::errc::truncated);
                CHECK(e.offset() == n);
            }
        }
    }
}

TEST_CASE("reader: old archives and oddities") {
    // V7: no magic, typeflag '\0', directory by trailing slash; the trailing '/' is stripped.
    tar::header h;
    h.format = tar::header_format::v7;
    h.typeflag = '\0';
    h.name = "olddir/";
    h.mode = 0755;
    std::string ar(1536, '\0');
    tar::encode_header_block(h, tar::block_span(ar.data(), 512));
    h.name = "olddir/f";
    h.typeflag = '7';  // contiguous file
    h.size = 2;
    tar::encode_header_block(h, tar::block_span(ar.data() + 512, 512));
    ar.insert(1024, std::string("hi") + std::string(510, '\0'));
    ar.append(512, '\0');  // the end-of-archive marker: two zero blocks
    const auto ms = read_members(ar, 3);
    REQUIRE(ms.size() == 2);
    CHECK(ms[0].e.type == tar::entry_type::directory);
    CHECK(ms[0].e.name == "olddir");
    CHECK(ms[1].e.type == tar::entry_type::file);
    CHECK(ms[1].content == "hi");
    // Bytes after the end marker: ignored. Without the marker (or with half of it): accepted only when asked for.
    CHECK(read_members(ar + "garbage that is not a header").size() == 2);
    for (std::size_t cut : {1536, 2048}) {
        CAPTURE(cut);
        CHECK(read_error(ar.substr(0, cut)).code() == tar::errc::truncated);
        CHECK(read_members(ar.substr(0, cut), 1, {.require_end_marker = false}).size() == 2);
    }
    CHECK(read_members(ar.substr(0, 2048) + "garbage that is not a header", 1, {.require_end_marker = false}).size() ==
          2);
}

TEST_CASE("reader: PAX global headers apply to later members; local ones to one") {
    std::string pax_g, pax_x;
    tar::append_pax_record(pax_g, "uname", "globaluser");
    tar::append_pax_record(pax_g, "comment", "hi");
    tar::append_pax_record(pax_x, "uname", "local");
    tar::append_pax_record(pax_x, "mtime", "-1.5");
    std::string ar;
    auto ext = [&](char type, const std::string& payload) {
        tar::header h;
        h.typeflag = type;
        h.name = "pax";
        h.size = static_cast<std::int64_t>(payload.size());
        std::string b(512, '\0');
        tar::encode_header_block(h, tar::block_span(b.data(), 512));
        ar += b + payload;
        ar.append(tar::padding_after(payload.size()), '\0');
    };
    ext('g', pax_g);
    ext('x', pax_x);
    tar::encode_header(file_entry("a", 0), ar);
    tar::encode_header(file_entry("b", 0), ar);
    ar.append(tar::end_of_archive_size, '\0');
    const auto ms = read_members(ar, 1);
    REQUIRE(ms.size() == 2);
    CHECK(ms[0].e.uname == "local");
    CHECK(ms[0].e.mtime == -2);
    CHECK(ms[0].e.mtime_nsec == 500'000'000);
    CHECK(ms[1].e.uname == "globaluser");
    CHECK(ms[1].e.mtime == 1700000000);
    CHECK(ms[1].e.pax_records.at("comment") == "hi");
}

namespace {
// An extension header ('x', 'g', 'L', ...) with its payload, padded: what goes before a member.
std::string ext_header(char type, const std::string& payload) {
    tar::header h;
    h.typeflag = type;
    h.name = "pax";
    h.size = static_cast<std::int64_t>(payload.size());
    std::string b(512, '\0');
    tar::encode_header_block(h, tar::block_span(b.data(), 512));
    b += payload;
    b.append(tar::padding_after(payload.size()), '\0');
    return b;
}

// `ar` written to a file in `d`, listed by GNU tar and bsdtar (names only); empty when a tool refuses it.
std::string tool_names(const temp_dir& d, const std::string& tool, const std::string& ar) {
    const auto p = d.path / "tool.tar";
    write_file(p, ar);
    int rc = 0;
    auto out = shell_output(tool + " -tf '" + p.string() + "' 2>/dev/null", &rc);
    return rc == 0 ? out : std::string();
}
}  // namespace

TEST_CASE("reader: nothing fed, or an empty slice, asks for more") {
    // Regression (UBSan): an empty span's data() is null, and memcpy from null is undefined even for 0 bytes.
    tar::reader r;
    CHECK(r.next() == ev::need_more);
    r.feed({});
    CHECK(r.next() == ev::need_more);
    const auto ar = two_files();
    r.feed({ar.data(), 100});
    CHECK(r.next() == ev::need_more);
    r.feed(std::span<const char>{});
    CHECK(r.next() == ev::need_more);
}

TEST_CASE("PAX numbers: leading zeros beyond 19 digits are read like Go, Python, GNU tar and bsdtar do") {
    const std::string z(30, '0');
    CHECK(tar::parse_pax_integer(z + "42") == 42);
    CHECK(tar::parse_pax_integer(z) == 0);
    CHECK(tar::parse_pax_integer("-" + z + "9223372036854775808") == INT64_MIN);
    CHECK(tar::parse_pax_integer(z + "9223372036854775807") == INT64_MAX);
    CHECK_FALSE(tar::parse_pax_integer(z + "9223372036854775808"));  // still range-checked
    CHECK_FALSE(tar::parse_pax_integer(z + "12345678901234567890"));
    CHECK_FALSE(tar::parse_pax_integer(z + "x"));
    CHECK(tar::parse_pax_time(z + "17.5") == tar::pax_time{17, 500'000'000});
    // A record length with leading zeros counts them as part of the record.
    std::vector<std::pair<std::string, std::string>> got;
    tar::parse_pax_records(std::string(29, '0') + "36 k=v\n",
                           [&](std::string_view k, std::string_view v) { got.emplace_back(k, v); });
    CHECK(got == std::vector<std::pair<std::string, std::string>>{{"k", "v"}});

    std::string pax;
    tar::append_pax_record(pax, "size", z + "5");
    tar::append_pax_record(pax, "uid", z + "1000");
    tar::append_pax_record(pax, "mtime", z + "1700000000.25");
    std::string ar = ext_header('x', pax);
    tar::encode_header(file_entry("f", 5), ar);
    ar += "hello";
    ar.append(tar::padding_after(5) + tar::end_of_archive_size, '\0');
    const auto ms = read_members(ar, 7);
    REQUIRE(ms.size() == 1);
    CHECK(ms[0].e.size == 5);
    CHECK(ms[0].content == "hello");
    CHECK(ms[0].e.uid == 1000);
    CHECK(ms[0].e.mtime == 1700000000);
    CHECK(ms[0].e.mtime_nsec == 250'000'000);
    temp_dir d;
    write_file(d.path / "zeros.tar", ar);
    CHECK(python_listing(d, d.path / "zeros.tar") == listing(ms));
    if (have_tool("tar")) CHECK(tool_names(d, "tar", ar) == "f\n");
    if (have_tool("bsdtar")) CHECK(tool_names(d, "bsdtar", ar) == "f\n");

    std::string over;
    tar::append_pax_record(over, "uid", z + "9223372036854775808");
    std::string bad = ext_header('x', over);
    tar::encode_header(file_entry("f", 0), bad);
    bad.append(tar::end_of_archive_size, '\0');
    CHECK(read_error(bad).code() == tar::errc::bad_pax_record);
}

TEST_CASE("reader: a later PAX header for the same member replaces the earlier one, as Go and GNU tar read it") {
    std::string first, second;
    tar::append_pax_record(first, "path", "from-first");
    tar::append_pax_record(first, "uname", "first");
    tar::append_pax_record(first, "comment", "first only");
    tar::append_pax_record(second, "uname", "second");
    std::string ar = ext_header('x', first) + ext_header('x', second);
    tar::encode_header(file_entry("header-name", 0), ar);
    tar::encode_header(file_entry("next", 0), ar);
    ar.append(tar::end_of_archive_size, '\0');
    const auto ms = read_members(ar, 1);
    REQUIRE(ms.size() == 2);
    CHECK(ms[0].e.name == "header-name");
    CHECK(ms[0].e.uname == "second");
    CHECK(ms[0].e.pax_records.empty());
    CHECK(ms[1].e.uname.empty());
    // GNU tar agrees (Python's tarfile applies the first header last, so it is no reference here).
    temp_dir d;
    if (have_tool("tar")) CHECK(tool_names(d, "tar", ar) == "header-name\nnext\n");
    if (have_tool("tar")) {
        write_file(d.path / "twice.tar", ar);
        CHECK(shell_output("tar --numeric-owner -tvf '" + (d.path / "twice.tar").string() +
                           "' | head -n1 | tr -s ' ' | cut -d' ' -f2") == "0/0\n");
        CHECK(shell_output("tar -tvf '" + (d.path / "twice.tar").string() +
                           "' | head -n1 | tr -s ' ' | cut -d' ' -f2") == "second/0\n");
    }
}

TEST_CASE("reader: non-regular members report the size they carry; no data blocks follow them (like Go)") {
    // A directory and a symlink whose size fields say 700 and 5: the next header follows at once.
    tar::entry dir = file_entry("d", 0);
    dir.type = tar::entry_type::directory;
    dir.mode = 0755;
    tar::entry link = file_entry("l", 0);
    link.type = tar::entry_type::symlink;
    link.linkname = "d";
    std::string ar;
    tar::encode_header(dir, ar);
    tar::encode_header(link, ar);
    std::memcpy(ar.data() + 124, "00000001274", 11);  // 700
    rechecksum(ar, 0);
    std::memcpy(ar.data() + 512 + 124, "00000000005", 11);
    rechecksum(ar, 512);
    tar::encode_header(file_entry("f", 2), ar);
    ar += "hi";
    ar.append(tar::padding_after(2) + tar::end_of_archive_size, '\0');
    const auto ms = read_members(ar, 3);
    REQUIRE(ms.size() == 3);
    CHECK(ms[0].e.size == 700);
    CHECK(ms[0].content.empty());
    CHECK(ms[1].e.size == 5);
    CHECK(ms[1].e.linkname == "d");
    CHECK(ms[2].e.name == "f");
    CHECK(ms[2].content == "hi");
    temp_dir d;
    write_file(d.path / "sizes.tar", ar);
    CHECK(python_listing(d, d.path / "sizes.tar") == listing(ms));
}

TEST_CASE("reader: an archive is complete only with its end-of-archive marker") {
    const auto ar = two_files();  // ends with two zero blocks
    REQUIRE(ar.size() == 4 * 512 + tar::end_of_archive_size);
    CHECK(read_members(ar, 100).size() == 2);
    {
        // cut at a member boundary: the second file is silently missing unless this is an error
        const auto e = read_error(std::string_view(ar).substr(0, 1024), 100);
        CHECK(e.code() == tar::errc::truncated);
        CHECK(e.offset() == 1024);
        CHECK(std::string(e.what()).find("end-of-archive marker") != std::string::npos);
    }
    {
        const auto e = read_error(std::string_view(ar).substr(0, 2048 + 512), 100);  // one zero block of two
        CHECK(e.code() == tar::errc::truncated);
        CHECK(e.offset() == 2560);
    }
    {
        // a lone zero block, then a header: Go's reader refuses it too
        std::string lone = ar.substr(0, 1024) + std::string(512, '\0') + ar.substr(1024);
        const auto e = read_error(lone, 1);
        CHECK(e.code() == tar::errc::bad_header_field);
        CHECK(e.offset() == 1024);
        CHECK(read_members(lone, 1, {.require_end_marker = false}).size() == 1);  // GNU tar's reading
    }
    {
        // extension headers, then the end marker: their member is missing
        auto x = ext_header('x', "8 uid=1\n") + std::string(1024, '\0');
        CHECK(read_error(x).code() == tar::errc::truncated);
    }
    CHECK(read_members(std::string_view(ar).substr(0, 1024), 100, {.require_end_marker = false}).size() == 1);
    CHECK(read_members(std::string_view(ar).substr(0, 2560), 100, {.require_end_marker = false}).size() == 2);
    CHECK(read_members(std::string_view(ar).substr(0, 0), 100, {.require_end_marker = false}).empty());
    CHECK(read_error("").code() == tar::errc::truncated);  // not even an empty archive
}

// ---------------------------------------------------------------------------------------------------- gzip

TEST_CASE("gzip: round trip through the sink and the push decompressor, in small pieces") {
    const auto ms = tricky_members();
    std::string gz;
    {
        auto collect = [&](std::span<const char> b) { gz.append(b.data(), b.size()); };
        tar::gzip_sink<decltype(collect)> sink(collect, 6, 100);  // tiny buffer: many output pieces
        tar::writer w(std::ref(sink));
        for (const auto& m : ms) {
            w.add(m.e);
            w.write(m.content);
        }
        w.finish();
        sink.finish();
    }
    CHECK(tar::looks_gzipped(gz));
    CHECK_FALSE(tar::looks_gzipped(write_archive(ms)));

    auto gunzip_all = [](std::string_view in, std::size_t chunk, std::size_t buf) {
        tar::gunzip g(buf);
        std::string out;
        for (std::size_t i = 0; i < in.size(); i += chunk)
            g.feed(in.substr(i, chunk), [&](std::span<const char> b) { out.append(b.data(), b.size()); });
        g.finish();
        return out;
    };
    const auto plain = write_archive(ms);
    CHECK(gunzip_all(gz, 1, 7) == plain);
    CHECK(gunzip_all(gz, 4096, 1 << 16) == plain);
    CHECK(gunzip_all(gz + gz + std::string(10, '\0'), 333, 512) == plain + plain);  // multi-member, padding

    // Straight into the reader from the callback.
    tar::gunzip g;
    tar::reader r;
    std::vector<std::string> names;
    g.feed(gz, [&](std::span<const char> b) {
        r.feed(b);
        for (ev e; (e = r.next()) != ev::need_more && e != ev::end;)
            if (e == ev::entry) names.push_back(r.current().name);
    });
    g.finish();
    CHECK(names.size() == ms.size());

    try {
        gunzip_all(std::string_view(gz).substr(0, gz.size() - 5), 100, 4096);
        FAIL("truncated gzip accepted");
    } catch (const tar::error& e) { CHECK(e.code() == tar::errc::truncated); }
    auto corrupt = gz;
    corrupt[gz.size() - 6] ^= 0x55;  // CRC
    CHECK_THROWS_AS(gunzip_all(corrupt, 100, 4096), tar::error);
    try {
        gunzip_all("definitely not gzip", 100, 4096);
    } catch (const tar::error& e) { CHECK(e.code() == tar::errc::bad_compressed_data); }
}

// ------------------------------------------------------------------------------------------------ interop

namespace {
// Builds the test tree; `level` 0 = everything, 1 = what ustar holds, 2 = what v7 holds.
void make_tree(const fs::path& root, int level) {
    const std::string r = "'" + root.string() + "'";
    std::string script = "set -e; mkdir -p " + r + " && cd " + r + R"SH(
mkdir -p d1/d2 empty
printf 'hello\n' > a.txt
: > zero
printf 'odd' > odd && chmod 4751 odd
printf 'ro' > ro && chmod 0400 ro
ln a.txt hard
ln -s ../a.txt d1/rel
mkdir -p sub/dir
head -c 70000 /dev/urandom > sub/dir/random.bin
touch -d '1999-12-31 23:59:59' a.txt
)SH";
    if (level <= 1) {
        script += "p=" + std::string(60, 'p') + "/" + std::string(60, 'q') + "; mkdir -p $p; printf 150 > $p/" +
                  std::string(25, 'r') + "\n";
        script += "printf u > 'h\xc3\xa9llo-\xe2\x82\xac.txt'\n";
    }
    if (level == 0) {
        std::string p300;
        for (int i = 0; i < 5; ++i) p300 += std::string(50, char('a' + i)) + "/";
        script += "mkdir -p " + p300 + "; printf 300 > " + p300 + std::string(45, 'z') + "\n";
        script += "ln -s " + std::string(200, 't') + " longlink\n";
    }
    write_file(root.parent_path() / "make-tree.sh", script);
    REQUIRE(std::system(("bash '" + (root.parent_path() / "make-tree.sh").string() + "'").c_str()) == 0);
}

void check_same_as_python(const temp_dir& d, const fs::path& archive) {
    CAPTURE(archive.string());
    const auto data = read_file(archive);
    const auto expected = python_listing(d, archive);
    CHECK(!expected.empty());
    CHECK(listing(read_members(data)) == expected);
    CHECK(listing(read_members(data, 1)) == expected);
}
}  // namespace

TEST_CASE("interop: archives written by GNU tar, bsdtar and Python tarfile") {
    if (!have_tool("tar") || !have_tool("/usr/bin/python3")) {
        MESSAGE("SKIPPED: GNU tar or python3 missing");
        return;
    }
    temp_dir d;
    for (int level : {0, 1, 2}) make_tree(d.path / ("t" + std::to_string(level)), level);
    auto tree = [&](int level) { return "'" + (d.path / ("t" + std::to_string(level))).string() + "'"; };
    auto out = [&](const std::string& name) { return d.path / name; };
    const std::string gnu = "LC_ALL=C.UTF-8 tar --sort=name ";
    const std::vector<std::pair<std::string, std::string>> cmds = {
        {"gnu-v7.tar", gnu + "--format=v7 -cf '%o' -C " + tree(2) + " ."},
        {"gnu-ustar.tar", gnu + "--format=ustar -cf '%o' -C " + tree(1) + " ."},
        {"gnu-oldgnu.tar", gnu + "--format=oldgnu -cf '%o' -C " + tree(0) + " ."},
        {"gnu-gnu.tar", gnu + "--format=gnu -cf '%o' -C " + tree(0) + " ."},
        {"gnu-posix.tar", gnu + "--format=posix -cf '%o' -C " + tree(0) + " ."},
        {"py-pax.tar", "/usr/bin/python3 -c \"import tarfile,sys; t=tarfile.open(sys.argv[1],'w',format=tarfile."
                       "PAX_FORMAT); t.add(sys.argv[2],'.'); t.close()\" '%o' " +
                           tree(0)},
        {"py-gnu.tar", "/usr/bin/python3 -c \"import tarfile,sys; t=tarfile.open(sys.argv[1],'w',format=tarfile."
                       "GNU_FORMAT); t.add(sys.argv[2],'.'); t.close()\" '%o' " +
                           tree(0)},
        {"py-ustar.tar", "/usr/bin/python3 -c \"import tarfile,sys; t=tarfile.open(sys.argv[1],'w',format=tarfile."
                         "USTAR_FORMAT); t.add(sys.argv[2],'.'); t.close()\" '%o' " +
                             tree(1)},
        {"gnu-posix.tar.gz", gnu + "--format=posix -czf '%o' -C " + tree(0) + " ."},
    };
    for (auto [name, cmd] : cmds) {
        cmd.replace(cmd.find("%o"), 2, out(name).string());
        REQUIRE(std::system(cmd.c_str()) == 0);
        if (name.ends_with(".gz")) {
            const auto gz = read_file(out(name));
            REQUIRE(tar::looks_gzipped(gz));
            tar::gunzip g;
            std::string plain;
            g.feed(gz, [&](std::span<const char> b) { plain.append(b.data(), b.size()); });
            g.finish();
            CHECK(listing(read_members(plain)) == python_listing(d, out(name)));
        } else {
            check_same_as_python(d, out(name));
        }
    }
    if (have_tool("bsdtar")) {
        for (const std::string fmt : {"pax", "ustar", "gnutar"}) {
            const auto p = out("bsd-" + fmt + ".tar");
            REQUIRE(std::system(("LC_ALL=C.UTF-8 bsdtar --format=" + fmt + " -cf '" + p.string() + "' -C " +
                                 tree(fmt == "ustar" ? 1 : 0) + " . 2>/dev/null")
                                    .c_str()) == 0);
            check_same_as_python(d, p);
        }
    } else {
        MESSAGE("SKIPPED part: bsdtar missing");
    }
}

TEST_CASE("interop: GNU tar sparse files (old GNU, PAX 0.0, 0.1, 1.0)") {
    if (!have_tool("tar") || !have_tool("/usr/bin/python3")) {
        MESSAGE("SKIPPED: GNU tar or python3 missing");
        return;
    }
    temp_dir d;
    const std::string src = "'" + (d.path / "src").string() + "'";
    REQUIRE(std::system(("mkdir -p " + src + " && cd " + src +
                         " && truncate -s 300K s && printf abc | dd of=s bs=1 seek=100000 conv=notrunc 2>/dev/null"
                         " && printf xyz | dd of=s bs=1 seek=250000 conv=notrunc 2>/dev/null"
                         " && truncate -s 70000 allhole && printf tail > t && truncate -s 9000 t"
                         // more data segments than the old GNU header holds: extension blocks
                         " && truncate -s 1000000 many && for i in $(seq 1 30); do printf d | dd of=many bs=1"
                         " seek=$((i * 30000)) conv=notrunc 2>/dev/null; done")
                            .c_str()) == 0);
    for (const std::string opts : {"--format=gnu", "--format=oldgnu", "--format=posix --sparse-version=0.0",
                                   "--format=posix --sparse-version=0.1", "--format=posix --sparse-version=1.0"}) {
        const auto p = d.path / "sparse.tar";
        REQUIRE(std::system(
                    ("tar --sort=name --sparse " + opts + " -cf '" + p.string() + "' -C " + src + " .").c_str()) == 0);
        CAPTURE(opts);
        const auto raw = read_file(p);
        CHECK(raw.size() < 400'000);  // the sparse form was used: holes (of 1.4 MB) are not stored
        check_same_as_python(d, p);
    }
}

TEST_CASE("interop: archives written by berth list identically in GNU tar, bsdtar and Python") {
    if (!have_tool("tar") || !have_tool("/usr/bin/python3")) {
        MESSAGE("SKIPPED: GNU tar or python3 missing");
        return;
    }
    temp_dir d;
    const auto ms = tricky_members();
    const auto p = d.path / "berth.tar";
    write_file(p, write_archive(ms));
    const auto mine = listing(ms);
    CHECK(python_listing(d, p) == mine);

    // GNU tar: verbose listing with numeric owners, UTC times.
    std::string expected_gnu;
    for (const auto& m : ms) {
        const auto& e = m.e;
        std::string line;
        line += e.type == tar::entry_type::directory  ? 'd'
                : e.type == tar::entry_type::symlink  ? 'l'
                : e.type == tar::entry_type::hardlink ? 'h'
                                                      : '-';
        const char* rwx = "rwxrwxrwx";
        for (int i = 0; i < 9; ++i) line += (e.mode >> (8 - i)) & 1 ? rwx[i] : '-';
        if (e.mode & 04000) line[3] = line[3] == 'x' ? 's' : 'S';
        if (e.mode & 02000) line[6] = line[6] == 'x' ? 's' : 'S';
        std::array<char, 32> when;
        const std::time_t t = e.mtime;
        std::tm tm;
        gmtime_r(&t, &tm);
        std::strftime(when.data(), when.size(), "%Y-%m-%d %H:%M:%S", &tm);
        line += ' ' + std::to_string(e.uid) + '/' + std::to_string(e.gid) + ' ' + std::to_string(e.size) + ' ' +
                when.data() + ' ' + e.name + (e.type == tar::entry_type::directory ? "/" : "");
        if (e.type == tar::entry_type::symlink) line += " -> " + e.linkname;
        if (e.type == tar::entry_type::hardlink) line += " link to " + e.linkname;
        expected_gnu += line + '\n';
    }
    // Squeeze GNU tar's column padding so the comparison is about values.
    auto gnu = shell_output("TZ=UTC LC_ALL=C.UTF-8 tar --numeric-owner --full-time --quoting-style=literal -tvf '" +
                            p.string() + "' | tr -s ' '");
    CHECK(gnu == expected_gnu);
    std::string gnu_content = shell_output("tar -xOf '" + p.string() + "'"), my_content;
    for (const auto& m : ms)
        if (m.e.type == tar::entry_type::file) my_content += m.content;
    CHECK(gnu_content == my_content);

    if (have_tool("bsdtar")) {
        // bsdtar re-archives what it read; Python then lists bsdtar's archive.
        const auto q = d.path / "bsd.tar";
        REQUIRE(std::system(
                    ("LC_ALL=C.UTF-8 bsdtar --format=pax -cf '" + q.string() + "' @'" + p.string() + "'").c_str()) ==
                0);
        CHECK(python_listing(d, q) == mine);
    } else {
        MESSAGE("SKIPPED part: bsdtar missing");
    }
}

TEST_CASE("seed corpus (tests/data/tar) lists like Python's tarfile") {
#ifdef BERTH_TEST_DATA_DIR
    const fs::path dir = fs::path(BERTH_TEST_DATA_DIR) / "tar";
#else
    const fs::path dir = "tests/data/tar";
#endif
    if (!fs::exists(dir) || !have_tool("/usr/bin/python3")) {
        MESSAGE("SKIPPED: no seed corpus at " << dir.string() << " or python3 missing");
        return;
    }
    temp_dir d;
    int n = 0;
    for (const auto& f : fs::directory_iterator(dir)) {
        const auto name = f.path().filename().string();
        if (!name.ends_with(".tar")) continue;  // .tar.gz is covered through gunzip elsewhere
        check_same_as_python(d, f.path());
        ++n;
    }
    CHECK(n >= 10);
}

}  // TEST_SUITE("tar format")
