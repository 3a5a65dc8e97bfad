// Unit tests of the pieces under the engine client that need no connection: engine addresses, URL encoding,
// base64, the multiplexed-stream decoder, engine error classification and API version comparison.
#include <berth/detail/base64.hpp>
#include <berth/detail/poll.hpp>
#include <berth/detail/url.hpp>
#include <berth/engine/client.hpp>
#include <berth/engine/error.hpp>
#include <berth/http/multiplexed_stream.hpp>
#include <berth/engine/json.hpp>
#include <berth/transport/docker_host.hpp>

#include <doctest/doctest.h>

#include "support/checks.hpp"
#include "support/run.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/assert/source_location.hpp>

#include <cctype>
#include <chrono>
#include <exception>
#include <optional>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace {

using berth::host_address;
using berth::parse_docker_host;

// The message of the invalid_host thrown for `spec`; fails the test when nothing (or something else) is thrown.
std::string rejection(std::string_view spec) {
    try {
        auto a = parse_docker_host(spec);
        FAIL_CHECK("'" << std::string(spec) << "' was accepted as " << a.to_string());
    } catch (const berth::invalid_host& e) { return e.what(); }
    return {};
}

using berth_test::contains;

// A frame of the engine's multiplexed stream.
std::string frame(std::uint8_t stream, std::string_view payload) {
    std::string f(8, '\0');
    f[0] = static_cast<char>(stream);
    auto n = static_cast<std::uint32_t>(payload.size());
    for (int i = 0; i < 4; ++i) f[4 + i] = static_cast<char>((n >> (24 - 8 * i)) & 0xFF);
    return f + std::string(payload);
}

// What a demultiplexer hands out, per stream, with consecutive slices of one stream joined.
struct demuxed {
    std::vector<std::pair<berth::output_stream, std::string>> runs;
    void add(const berth::output_chunk& c) {
        std::string_view data(c.data.data(), c.data.size());
        if (!runs.empty() && runs.back().first == c.stream)
            runs.back().second.append(data);
        else
            runs.emplace_back(c.stream, std::string(data));
    }
    bool operator==(const demuxed&) const = default;
};

// Feeds `bytes` in pieces of `step` bytes (0: all at once).
demuxed demux(std::string_view bytes, std::size_t step, bool* at_boundary = nullptr) {
    berth::demultiplexer d;
    demuxed out;
    if (step == 0) step = bytes.size();
    for (std::size_t at = 0; at < bytes.size(); at += step) {
        d.feed(std::span<const char>(bytes.data() + at, std::min(step, bytes.size() - at)));
        while (auto c = d.next()) out.add(*c);
    }
    if (at_boundary) *at_boundary = d.at_frame_boundary();
    return out;
}

}  // namespace

TEST_SUITE("http") {

// ------------------------------------------------------------------------------------------------------------
// Engine addresses
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("parse_docker_host: unix sockets") {
    auto a = parse_docker_host("unix:///var/run/docker.sock");
    CHECK(a.scheme == host_address::kind::unix_socket);
    CHECK(a.path == "/var/run/docker.sock");
    CHECK(a.to_string() == "unix:///var/run/docker.sock");
    CHECK(parse_docker_host("unix:///run/user/1000/podman/podman.sock").path == "/run/user/1000/podman/podman.sock");
    CHECK(parse_docker_host("unix:///tmp/dir with space/d.sock").path == "/tmp/dir with space/d.sock");
}

TEST_CASE("parse_docker_host: tcp addresses") {
    auto a = parse_docker_host("tcp://127.0.0.1:2376");
    CHECK(a.scheme == host_address::kind::tcp);
    CHECK(a.host == "127.0.0.1");
    CHECK(a.port == 2376);
    CHECK(a.to_string() == "tcp://127.0.0.1:2376");

    SUBCASE("the port defaults to the engine's plain-TCP port") {
        auto d = parse_docker_host("tcp://docker.example.com");
        CHECK(d.host == "docker.example.com");
        CHECK(d.port == 2375);
    }
    SUBCASE("a trailing slash is allowed") {
        auto d = parse_docker_host("tcp://localhost:1234/");
        CHECK(d.host == "localhost");
        CHECK(d.port == 1234);
    }
    SUBCASE("IPv6 in brackets, with and without a port") {
        auto v6 = parse_docker_host("tcp://[::1]:2376");
        CHECK(v6.host == "::1");
        CHECK(v6.port == 2376);
        auto v6d = parse_docker_host("tcp://[fe80::1%25eth0]");
        CHECK(v6d.host == "fe80::1%25eth0");
        CHECK(v6d.port == 2375);
    }
    SUBCASE("the extremes of the port range") {
        CHECK(parse_docker_host("tcp://h:1").port == 1);
        CHECK(parse_docker_host("tcp://h:65535").port == 65535);
    }
}

TEST_CASE("host_address::to_string gives back an address that parses to the same") {
    for (std::string spec :
         {"unix:///var/run/docker.sock", "tcp://10.0.0.2:2375", "tcp://[::1]:2376", "tcp://[2001:db8::7]:9999"}) {
        CAPTURE(spec);
        auto a = parse_docker_host(spec);
        CHECK(a.to_string() == spec);
        auto b = parse_docker_host(a.to_string());
        CHECK(b.host == a.host);
        CHECK(b.port == a.port);
        CHECK(b.path == a.path);
    }
}

TEST_CASE("parse_docker_host: every malformed address is an invalid_host saying what is wrong") {
    struct bad {
        std::string spec;
        std::string reason;
    };
    std::vector<bad> cases{
        {"", "expected unix:///path or tcp://host:port"},
        {"/var/run/docker.sock", "expected unix:///path or tcp://host:port"},
        {"localhost:2375", "expected unix:///path or tcp://host:port"},
        {"unix://", "must be absolute"},
        {"unix://run/docker.sock", "must be absolute"},
        {std::string("unix:///run/do\0cker.sock", 24), "NUL"},
        {"tcp://", "no host"},
        {"tcp://:2375", "no host"},
        {"tcp://host:abc", "not a number"},
        {"tcp://host:-1", "not a number"},
        {"tcp://host:+80", "not a number"},
        {"tcp://host:0", "out of range"},
        {"tcp://host:65536", "out of range"},
        {"tcp://host:99999999999999999999999", "out of range"},
        {"tcp://host:2375/v1.41", "path"},
        {"tcp://[::1", "unterminated"},
        {"tcp://[::1]2375", "expected ':'"},
        {"tcp://[[]", "contains '['"},  // found by docker_host_fuzz: it printed as an address that did not parse
        {"tcp://a]b:1", "contains ']'"},
        {"tcp://::1", "brackets"},
        {"tcp://fe80::1:2375", "brackets"},
        {"ssh://user:secret@host", "password"},
        {"npipe:////./pipe/docker_engine", "'npipe' is not supported"},
        {"http://localhost:2375", "'http' is not supported"},
        {"fd://", "'fd' is not supported"},
    };
    for (auto& c : cases) {
        CAPTURE(c.spec);
        auto message = rejection(c.spec);
        CHECK(contains(message, c.reason));
        if (c.reason == "password")
            CHECK_FALSE(contains(message, "secret"));  // never shows the password
        else if (c.spec.find('\0') == std::string::npos)
            CHECK(contains(message, "'" + c.spec + "'"));  // names the input
        else
            CHECK(contains(message, "'unix:///run/do\\x00cker.sock'"));  // escaped, so what() is not cut short
    }
}

TEST_CASE("invalid_host is a berth::error with the generic invalid_argument code") {
    CHECK_THROWS_AS(parse_docker_host("ftp://x"), berth::error);
    try {
        parse_docker_host("ftp://x");
    } catch (const berth::invalid_host& e) { CHECK(e.code() == boost::system::errc::invalid_argument); }
}

TEST_CASE("docker_host_from_env") {
    const char* var = "BERTH_HTTP_TESTS_DOCKER_HOST";
    SUBCASE("unset: the default socket") {
        ::unsetenv(var);
        auto a = berth::docker_host_from_env(var);
        CHECK(a.scheme == host_address::kind::unix_socket);
        CHECK(a.path == berth::default_docker_socket);
    }
    SUBCASE("empty: the default socket") {
        ::setenv(var, "", 1);
        CHECK(berth::docker_host_from_env(var).path == "/var/run/docker.sock");
    }
    SUBCASE("set: parsed") {
        ::setenv(var, "tcp://[::1]:12375", 1);
        auto a = berth::docker_host_from_env(var);
        CHECK(a.scheme == host_address::kind::tcp);
        CHECK(a.host == "::1");
        CHECK(a.port == 12375);
    }
    SUBCASE("set to something malformed: invalid_host, not a silent fallback") {
        ::setenv(var, "ssh://me:secret@box", 1);
        CHECK_THROWS_AS(berth::docker_host_from_env(var), berth::invalid_host);
    }
    ::unsetenv(var);
}

// ------------------------------------------------------------------------------------------------------------
// URL encoding
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("percent_encode keeps only unreserved characters") {
    using berth::detail::percent_encode;
    CHECK(percent_encode("") == "");
    CHECK(percent_encode("AZaz09-._~") == "AZaz09-._~");
    CHECK(percent_encode("my container") == "my%20container");
    CHECK(percent_encode("/tmp/a b/é.txt") == "%2Ftmp%2Fa%20b%2F%C3%A9.txt");
    CHECK(percent_encode("a&b=c?d#e+f%g") == "a%26b%3Dc%3Fd%23e%2Bf%25g");
    CHECK(percent_encode(std::string_view("\0\xff", 2)) == "%00%FF");
    for (int c = 0; c < 256; ++c) {
        char ch = static_cast<char>(c);
        auto e = percent_encode(std::string_view(&ch, 1));
        CAPTURE(c);
        bool unreserved = std::isalnum(c) || ch == '-' || ch == '.' || ch == '_' || ch == '~';
        if (unreserved) {
            CHECK(e == std::string(1, ch));
        } else {
            REQUIRE(e.size() == 3);
            CHECK(e[0] == '%');
            CHECK(std::stoi(e.substr(1), nullptr, 16) == c);
            CHECK_FALSE(std::islower(static_cast<unsigned char>(e[1])));
            CHECK_FALSE(std::islower(static_cast<unsigned char>(e[2])));
        }
    }
}

TEST_CASE("query builds ?k=v&k=v with encoded keys and values") {
    using berth::detail::query;
    CHECK(query().str() == "");
    CHECK(query().add("path", "/a b").str() == "?path=%2Fa%20b");
    CHECK(query().add("t", "app:1").add("x y", "é").str() == "?t=app%3A1&x%20y=%C3%A9");
    CHECK(query().add_flag("all", true).add_flag("force", false).str() == "?all=1&force=0");
    CHECK(query().add_number("t", -5).add_number("n", 1234567890123).str() == "?t=-5&n=1234567890123");
    CHECK(query().add_if(false, "a", "1").add_if(true, "b", "2").str() == "?b=2");
    CHECK(query().add("empty", "").str() == "?empty=");
    // A string literal goes to add(string_view), never to a bool overload.
    CHECK(query().add("signal", "SIGKILL").str() == "?signal=SIGKILL");
}

// ------------------------------------------------------------------------------------------------------------
// base64 (X-Docker-Container-Path-Stat)
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("base64_decode") {
    using berth::detail::base64_decode;
    CHECK(base64_decode("") == "");
    CHECK(base64_decode("Zg==") == "f");
    CHECK(base64_decode("Zm8=") == "fo");
    CHECK(base64_decode("Zm9v") == "foo");
    CHECK(base64_decode("Zm9vYg") == "foob");  // padding may be left out
    CHECK(base64_decode("e30=") == "{}");
    CHECK(base64_decode("eyJuYW1lIjoiZGF0YSJ9") == R"({"name":"data"})");
    CHECK(base64_decode("//79") == std::string("\xff\xfe\xfd", 3));
    CHECK(base64_decode("__79") == std::string("\xff\xfe\xfd", 3));  // URL-safe alphabet
    CHECK(base64_decode("AAEC") == std::string("\x00\x01\x02", 3));

    SUBCASE("what is not base64 is refused") {
        CHECK_FALSE(base64_decode("Zm9v!"));
        CHECK_FALSE(base64_decode("Zm 9v"));
        CHECK_FALSE(base64_decode("Zg==Zg=="));  // padding inside
        CHECK_FALSE(base64_decode("Z"));         // a lone character carries no byte
        CHECK_FALSE(base64_decode("Zm9vY"));
        CHECK_FALSE(base64_decode("Zm9v\n"));
    }
}

// ------------------------------------------------------------------------------------------------------------
// The multiplexed stdout/stderr stream
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("demultiplexer: the same output whether fed whole, byte by byte or in any pieces") {
    using berth::output_stream;
    std::string big(70000, 'x');  // a size that needs more than 16 bits
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
    std::string stream = frame(1, "hello ") + frame(2, "warning\n") + frame(1, "") + frame(1, "world\n") +
                         frame(0, "stdin echo") + frame(2, big) + frame(3, "system error");

    demuxed expected;
    expected.runs = {{output_stream::stdout_, "hello "},  {output_stream::stderr_, "warning\n"},
                     {output_stream::stdout_, "world\n"}, {output_stream::stdin_, "stdin echo"},
                     {output_stream::stderr_, big},       {output_stream::system_error, "system error"}};
    bool at_boundary = false;
    CHECK(demux(stream, 0, &at_boundary) == expected);
    CHECK(at_boundary);
    for (std::size_t step : {1, 2, 3, 7, 8, 9, 4096}) {
        CAPTURE(step);
        CHECK(demux(stream, step, &at_boundary) == expected);
        CHECK(at_boundary);
    }
}

TEST_CASE("demultiplexer: a frame split at every byte position") {
    std::string stream = frame(1, "out") + frame(2, "err");
    for (std::size_t at = 0; at <= stream.size(); ++at) {
        CAPTURE(at);
        berth::demultiplexer d;
        demuxed got;
        d.feed(std::span<const char>(stream.data(), at));
        while (auto c = d.next()) got.add(*c);
        CHECK(d.at_frame_boundary() == (at == 0 || at == 11 || at == 22));
        d.feed(std::span<const char>(stream.data() + at, stream.size() - at));
        while (auto c = d.next()) got.add(*c);
        CHECK(d.at_frame_boundary());
        REQUIRE(got.runs.size() == 2);
        CHECK(got.runs[0].second == "out");
        CHECK(got.runs[1].second == "err");
    }
}

TEST_CASE("demultiplexer: a payload is handed out as slices of the input, never copied whole") {
    std::string stream = frame(1, "0123456789");
    berth::demultiplexer d;
    d.feed(std::span<const char>(stream.data(), 12));  // header + 4 payload bytes
    auto c = d.next();
    REQUIRE(c);
    CHECK(c->data.data() == stream.data() + 8);
    CHECK(c->data.size() == 4);
    CHECK_FALSE(d.next());
    CHECK_FALSE(d.at_frame_boundary());
}

TEST_CASE("demultiplexer: a malformed header is a protocol_error") {
    for (std::uint8_t stream_byte : {4, 7, 255}) {
        CAPTURE(int(stream_byte));
        std::string bytes = frame(1, "fine") + frame(stream_byte, "bad");
        berth::demultiplexer d;
        d.feed(bytes);
        auto good = d.next();
        REQUIRE(good);
        CHECK(std::string_view(good->data.data(), good->data.size()) == "fine");
        try {
            d.next();
            FAIL_CHECK("no error");
        } catch (const berth::protocol_error& e) {
            CHECK(contains(e.what(), "stream byte " + std::to_string(stream_byte)));
        }
    }
    SUBCASE("non-zero padding bytes") {
        std::string bytes = frame(1, "x");
        bytes[2] = 1;
        berth::demultiplexer d;
        d.feed(bytes);
        CHECK_THROWS_AS(d.next(), berth::protocol_error);
    }
    SUBCASE("text that is not a multiplexed stream (a tty's output read as one)") {
        std::string text = "total 0\ndrwxr-xr-x 2 root root 40 Jan  1 00:00 .\n";
        berth::demultiplexer d;
        d.feed(text);
        CHECK_THROWS_AS(d.next(), berth::protocol_error);
    }
}

// ------------------------------------------------------------------------------------------------------------
// Engine errors
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("engine_errc_from_status") {
    using berth::engine_errc;
    using berth::engine_errc_from_status;
    CHECK(engine_errc_from_status(304) == engine_errc::not_modified);
    CHECK(engine_errc_from_status(400) == engine_errc::bad_request);
    CHECK(engine_errc_from_status(401) == engine_errc::unauthorized);
    CHECK(engine_errc_from_status(403) == engine_errc::unauthorized);
    CHECK(engine_errc_from_status(404) == engine_errc::not_found);
    CHECK(engine_errc_from_status(406) == engine_errc::not_acceptable);
    CHECK(engine_errc_from_status(409) == engine_errc::conflict);
    CHECK(engine_errc_from_status(500) == engine_errc::server_error);
    CHECK(engine_errc_from_status(503) == engine_errc::server_error);
    CHECK(engine_errc_from_status(418) == engine_errc::other);
    CHECK(engine_errc_from_status(200) == engine_errc::other);
}

TEST_CASE("throw_engine_error throws the most specific type, with status, message and endpoint") {
    try {
        berth::throw_engine_error(404, "No such container: app", "GET /v1.41/containers/app/json");
        FAIL_CHECK("no throw");
    } catch (const berth::not_found_error& e) {
        CHECK(e.status() == 404);
        CHECK(e.code() == berth::engine_errc::not_found);
        CHECK(e.message() == "No such container: app");
        CHECK(e.endpoint() == "GET /v1.41/containers/app/json");
        CHECK(std::string(e.what()) == "GET /v1.41/containers/app/json -> 404: No such container: app");
    }
    CHECK_THROWS_AS(berth::throw_engine_error(409, "name in use", "POST /x"), berth::conflict_error);
    try {
        berth::throw_engine_error(500, "boom", "POST /x");
        FAIL_CHECK("no throw");
    } catch (const berth::not_found_error&) {
        FAIL_CHECK("a 500 is not a not_found_error");
    } catch (const berth::conflict_error&) {
        FAIL_CHECK("a 500 is not a conflict_error");
    } catch (const berth::engine_error& e) {
        CHECK(e.code() == berth::engine_errc::server_error);
        CHECK(e.status() == 500);
    }
    // Every engine error is caught as engine_error and as std::runtime_error.
    CHECK_THROWS_AS(berth::throw_engine_error(404, "m", "e"), berth::engine_error);
    CHECK_THROWS_AS(berth::throw_engine_error(400, "m", "e"), std::runtime_error);
}

TEST_CASE("an engine_error without a status (a build failure) says so plainly") {
    berth::engine_error e(berth::engine_errc::build_failed, 0, "returned a non-zero code: 1", "POST /v1.41/build");
    CHECK(e.code() == berth::engine_errc::build_failed);
    CHECK(std::string(e.what()) == "POST /v1.41/build: returned a non-zero code: 1");
}

TEST_CASE("the engine's error message is taken from its JSON, else its text, else the status") {
    using core = berth::client_core<berth::socket_transport>;
    CHECK(core::error_message(R"({"message":"No such image: x"})", 404) == "No such image: x");
    CHECK(core::error_message("page not found\r\n", 404) == "page not found");
    CHECK(core::error_message(R"({"msg":"other shape"})", 500) == R"({"msg":"other shape"})");
    CHECK(core::error_message("", 502) == "HTTP status 502");
    CHECK(core::error_message(std::string(10000, 'e'), 500) == std::string(4096, 'e') + "... (10000 bytes)");
}

TEST_CASE("protocol_error names its endpoint") {
    berth::protocol_error e("GET /v1.41/info", "reply is not valid JSON");
    CHECK(e.endpoint() == "GET /v1.41/info");
    CHECK(std::string(e.what()) == "GET /v1.41/info: reply is not valid JSON");
    CHECK(std::string(berth::protocol_error("", "bare").what()) == "bare");
}

// ------------------------------------------------------------------------------------------------------------
// API versions
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("api_version_less compares versions as numbers") {
    using berth::detail::api_version_less;
    CHECK(api_version_less("1.9", "1.41"));
    CHECK_FALSE(api_version_less("1.41", "1.9"));
    CHECK(api_version_less("1.40", "1.41"));
    CHECK_FALSE(api_version_less("1.41", "1.41"));
    CHECK_FALSE(api_version_less("1.43", "1.41"));
    CHECK(api_version_less("1.99", "2.0"));
    CHECK_FALSE(api_version_less("2.0", "1.99"));
}

TEST_CASE("an API version is digits.digits and nothing else (it goes into every request line)") {
    using berth::detail::parse_api_version;
    CHECK(parse_api_version("1.41") == std::pair{1, 41});
    CHECK(parse_api_version("1.9") == std::pair{1, 9});
    CHECK(parse_api_version("10.1000") == std::pair{10, 1000});
    for (std::string_view bad :
         {"", "1", "1.", ".41", "1.41.0", "v1.41", "1.41 ", " 1.41", "1.-4", "+1.41", "1.40/../../evil",
          "1.41\r\nX-Evil: 1", "1.41/containers", "1.41?x=1", "1.41#", "1.12345", "12345.1", "1,41", "4.3.1"})
        CHECK_MESSAGE(!parse_api_version(bad), std::string(bad));
    CHECK_FALSE(parse_api_version(std::string_view("1.4\0", 4)));
    CHECK_FALSE(parse_api_version("1.41\r\n"));
}

TEST_CASE("negotiation: the newest version both speak, within the engine's minimum and berth's range") {
    using berth::detail::negotiate_api_version;
    CHECK(berth::oldest_api_version == "1.40");
    CHECK(berth::newest_api_version == "1.56");
    // Docker 20.10, Podman 4.3 (both report 1.41)
    CHECK(negotiate_api_version("1.41", "1.12", "") == "1.41");
    CHECK(negotiate_api_version("1.41", "1.24", "") == "1.41");
    // Docker 29.0 raised the minimum to 1.44; current Docker speaks 1.56 down to 1.40
    CHECK(negotiate_api_version("1.51", "1.44", "") == "1.51");
    CHECK(negotiate_api_version("1.56", "1.40", "") == "1.56");
    // newer than berth: berth's newest; no MinAPIVersion: taken as no minimum
    CHECK(negotiate_api_version("1.60", "1.44", "") == "1.56");
    CHECK(negotiate_api_version("1.40", "", "") == "1.40");
    // pinned: exactly that version, when the engine speaks it
    CHECK(negotiate_api_version("1.51", "1.44", "1.44") == "1.44");
    CHECK(negotiate_api_version("1.41", "1.12", "1.40") == "1.40");
}

TEST_CASE("negotiation: no version in common is an unsupported_api_version_error saying both ranges") {
    using berth::detail::negotiate_api_version;
    auto refusal = [](std::string_view api, std::string_view min, std::string_view pinned) {
        try {
            auto v = negotiate_api_version(api, min, pinned);
            FAIL_CHECK("negotiated " << v);
        } catch (const berth::unsupported_api_version_error& e) {
            CHECK(e.code() == berth::engine_errc::unsupported_api_version);
            CHECK(e.endpoint() == "GET /version");
            CHECK(e.status() == 0);
            return std::string(e.what());
        }
        return std::string();
    };
    auto old_engine = refusal("1.39", "1.12", "");
    CHECK(contains(old_engine, "1.39"));
    CHECK(contains(old_engine, "at least 1.40"));
    auto future_engine = refusal("1.70", "1.60", "");
    CHECK(contains(future_engine, "1.60 to 1.70"));
    CHECK(contains(future_engine, "1.40 to 1.56"));
    CHECK(contains(refusal("1.51", "1.44", "1.41"), "pinned to 1.41"));           // Docker 29.0, pinned too low
    CHECK(contains(refusal("1.41", "1.12", "1.44"), "newer than the engine's"));  // Docker 20.10, pinned too high
}

TEST_CASE("negotiation: a version field that is not digits.digits is a protocol_error quoting it safely") {
    using berth::detail::negotiate_api_version;
    try {
        negotiate_api_version("1.40/../../evil\r\nX: y", "1.12", "");
        FAIL_CHECK("accepted");
    } catch (const berth::protocol_error& e) {
        CHECK(e.endpoint() == "GET /version");
        CHECK(contains(e.what(), "ApiVersion '1.40/../../evil\\x0d\\x0aX: y'"));
    }
    CHECK_THROWS_AS(negotiate_api_version("1.41", "one", ""), berth::protocol_error);
    CHECK_THROWS_AS(negotiate_api_version("", "1.12", ""), berth::protocol_error);
}

TEST_CASE("a pinned API version outside berth's range, or not a version, is refused when the client is made") {
    boost::asio::io_context ioc;
    auto make = [&](std::string pinned) {
        berth::client_options options;
        options.api_version = std::move(pinned);
        return berth::client::at(ioc.get_executor(), "unix:///nonexistent.sock", std::move(options));
    };
    CHECK_THROWS_AS(make("1.39"), berth::invalid_argument_error);
    CHECK_THROWS_AS(make("1.57"), berth::invalid_argument_error);
    CHECK_THROWS_AS(make("1.41/x"), berth::invalid_argument_error);
    CHECK_NOTHROW(make("1.40"));
    CHECK_NOTHROW(make("1.56"));
    CHECK_NOTHROW(make(""));
}

TEST_CASE("Docker's refusal of a client version is an unsupported_api_version_error") {
    CHECK_THROWS_AS(berth::throw_engine_error(400,
                                              "client version 1.41 is too old. Minimum supported API version is 1.44, "
                                              "please upgrade your client to a newer version",
                                              "GET /v1.41/containers/json"),
                    berth::unsupported_api_version_error);
    CHECK_THROWS_AS(berth::throw_engine_error(400,
                                              "client version 1.56 is too new. Maximum supported API version is 1.41",
                                              "GET /v1.56/containers/json"),
                    berth::unsupported_api_version_error);
    CHECK_THROWS_AS(berth::throw_engine_error(400, "invalid reference format", "POST /v1.41/containers/create"),
                    berth::engine_error);
    try {
        berth::throw_engine_error(400, "invalid reference format", "e");
    } catch (const berth::unsupported_api_version_error&) {
        FAIL_CHECK("an ordinary 400 taken for a version refusal");
    } catch (const berth::engine_error& e) { CHECK(e.code() == berth::engine_errc::bad_request); }
}

// ------------------------------------------------------------------------------------------------------------
// Numbers in the engine's JSON
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("an integer field that does not fit its type is a protocol_error, not a wrong value") {
    using berth::json_read::optional_int;
    using berth::json_read::optional_int_as;
    auto field = [](std::string_view text) { return boost::json::parse(text).as_object(); };
    const std::string endpoint = "GET /v1.41/containers/x/json";
    CHECK(optional_int_as<int>(field(R"({"ExitCode":137})"), "ExitCode", endpoint) == 137);
    CHECK(optional_int_as<int>(field(R"({"ExitCode":-1})"), "ExitCode", endpoint) == -1);
    CHECK(optional_int_as<int>(field(R"({"ExitCode":2.0})"), "ExitCode", endpoint) == 2);
    CHECK(optional_int_as<int>(field(R"({})"), "ExitCode", endpoint, -7) == -7);
    CHECK(optional_int(field(R"({"Size":9223372036854775807})"), "Size", endpoint) == INT64_MAX);
    CHECK(optional_int(field(R"({"Size":-9223372036854775808})"), "Size", endpoint) == INT64_MIN);
    CHECK(optional_int_as<std::uint32_t>(field(R"({"mode":4294967295})"), "mode", endpoint) == 4294967295u);
    for (std::string_view bad : {R"({"ExitCode":1e400})", R"({"ExitCode":-1e400})", R"({"ExitCode":2147483648})",
                                 R"({"ExitCode":-2147483649})", R"({"ExitCode":18446744073709551615})",
                                 R"({"ExitCode":1.5})", R"({"ExitCode":1e10})"}) {
        try {
            optional_int_as<int>(field(bad), "ExitCode", endpoint);
            FAIL_CHECK("accepted " << bad);
        } catch (const berth::protocol_error& e) {
            CHECK(e.endpoint() == endpoint);
            CHECK(contains(e.what(), "'ExitCode'"));
        }
    }
    CHECK_THROWS_AS(optional_int(field(R"({"Size":9223372036854775808})"), "Size", endpoint), berth::protocol_error);
    CHECK_THROWS_AS(optional_int(field(R"({"Size":9.3e18})"), "Size", endpoint), berth::protocol_error);
    CHECK_THROWS_AS(optional_int(field(R"({"Size":1e400})"), "Size", endpoint), berth::protocol_error);
    CHECK_THROWS_AS(optional_int_as<std::uint32_t>(field(R"({"mode":4294967296})"), "mode", endpoint),
                    berth::protocol_error);
    CHECK_THROWS_AS(optional_int_as<std::uint32_t>(field(R"({"mode":-1})"), "mode", endpoint), berth::protocol_error);
}

// ------------------------------------------------------------------------------------------------------------
// Transport error texts
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("a connection_error keeps its code and says where, without Boost's source location") {
    boost::system::error_code located = boost::asio::error::connection_refused;
    static constexpr auto here = BOOST_CURRENT_LOCATION;
    located.assign(located.value(), located.category(), &here);
    REQUIRE(contains(boost::system::system_error(located, "x").what(), " at "));  // what Boost alone would print
    berth::connection_error e(located, "unix:///tmp/x.sock: POST /v1.41/containers/create: connect");
    CHECK(e.code() == boost::asio::error::connection_refused);
    CHECK(std::string(e.what()) == "unix:///tmp/x.sock: POST /v1.41/containers/create: connect: " + located.message());
    const boost::system::system_error& as_system_error = e;
    CHECK(as_system_error.code() == boost::asio::error::connection_refused);
    CHECK_FALSE(e.code().has_location());
    // A copy sliced to system_error still says where, and still not Asio's source location.
    boost::system::system_error sliced = e;
    CHECK(contains(sliced.what(), "POST /v1.41/containers/create: connect: "));
    CHECK_FALSE(contains(sliced.what(), " at "));
}

TEST_CASE("a transport's words about a failed connect are kept, without what the message says anyway") {
    using berth::http::detail::connect_failure_detail;
    const std::string address = "unix:///tmp/x.sock";
    boost::system::error_code refused = boost::asio::error::connection_refused;
    const std::string plain = refused.message();
    CHECK(connect_failure_detail(boost::system::system_error(refused), address) == "");
    CHECK(connect_failure_detail(boost::system::system_error(refused, "connect to " + address), address) == "");
    CHECK(connect_failure_detail(berth::connection_error(refused, address), address) == "");
    CHECK(connect_failure_detail(berth::connection_error(refused, "ssh: Permission denied (publickey)"), address) ==
          "ssh: Permission denied (publickey)");
}

}  // TEST_SUITE("http")

TEST_SUITE("poll") {
using berth::detail::poll_policy;
using berth::detail::poll_until;
using std::chrono::milliseconds;
using poll_clock = std::chrono::steady_clock;

template <class T>
T run_poll(boost::asio::awaitable<T> op) {
    boost::asio::io_context ioc;
    return berth_test::run_on_mock(ioc, std::move(op), std::chrono::seconds(60));
}

TEST_CASE("poll_until: pauses grow by the factor and stop growing at max") {
    const poll_policy policy{.first = milliseconds(20), .max = milliseconds(500), .factor = 2};
    std::vector<poll_policy::duration> pauses{policy.first};
    while (pauses.size() < 8) pauses.push_back(berth::detail::next_pause(policy, pauses.back()));
    const std::vector<poll_policy::duration> expected{milliseconds(20),  milliseconds(40),  milliseconds(80),
                                                      milliseconds(160), milliseconds(320), milliseconds(500),
                                                      milliseconds(500), milliseconds(500)};
    CHECK(pauses == expected);
    const poll_policy steady{.first = milliseconds(20), .max = milliseconds(20), .factor = 1};
    CHECK(berth::detail::next_pause(steady, milliseconds(20)) == milliseconds(20));
}

TEST_CASE("poll_until: the first answer ends the poll, with its value; the pauses between checks are the policy's") {
    std::vector<poll_clock::time_point> checked;
    auto check = [&]() -> boost::asio::awaitable<std::optional<int>> {
        checked.push_back(poll_clock::now());
        if (checked.size() == 6) co_return 42;
        co_return std::nullopt;
    };
    const poll_policy policy{.first = milliseconds(2), .max = milliseconds(10), .factor = 2};
    CHECK(run_poll(poll_until(check, policy)) == std::optional<int>(42));
    REQUIRE(checked.size() == 6);
    const std::vector<milliseconds> pauses{milliseconds(2), milliseconds(4), milliseconds(8), milliseconds(10),
                                           milliseconds(10)};
    for (std::size_t i = 0; i < pauses.size(); ++i)
        CHECK(checked[i + 1] - checked[i] >= pauses[i]);  // a timer never ends early
}

TEST_CASE("poll_until: when the attempts run out it answers false after exactly that many checks") {
    int checks = 0;
    auto never = [&]() -> boost::asio::awaitable<bool> {
        ++checks;
        co_return false;
    };
    const poll_policy policy{.first = milliseconds(1), .max = milliseconds(1), .attempts = 4};
    CHECK_FALSE(run_poll(poll_until(never, policy)));
    CHECK(checks == 4);
}

TEST_CASE("poll_until: a deadline cuts the pause before it short, checks once more at it, then answers nothing") {
    std::vector<poll_clock::time_point> checked;
    auto never = [&]() -> boost::asio::awaitable<std::optional<int>> {
        checked.push_back(poll_clock::now());
        co_return std::nullopt;
    };
    const poll_policy hour{.first = std::chrono::hours(1), .max = std::chrono::hours(1)};
    const auto deadline = poll_clock::now() + milliseconds(20);
    CHECK(run_poll(poll_until(never, hour, deadline)) ==
          std::nullopt);  // an hour's pause would outlast run_poll's limit
    REQUIRE(checked.size() == 2);
    CHECK(checked[1] >= deadline);

    checked.clear();
    CHECK(run_poll(poll_until(never, hour, poll_clock::now() - milliseconds(1))) == std::nullopt);
    CHECK(checked.size() == 1);  // a deadline already passed: one check, no pause

    checked.clear();
    poll_policy first_pause = hour;
    first_pause.pause_first = true;
    const auto soon = poll_clock::now() + milliseconds(20);
    CHECK(run_poll(poll_until(never, first_pause, soon)) == std::nullopt);  // the first pause is cut short too
    REQUIRE(checked.size() == 1);
    CHECK(checked[0] >= soon);
}

TEST_CASE("poll_until: pause_first waits before the first check; a pause function is asked with the checks so far") {
    std::vector<poll_clock::time_point> checked;
    auto second_time = [&]() -> boost::asio::awaitable<bool> {
        checked.push_back(poll_clock::now());
        co_return checked.size() == 2;
    };
    const poll_policy later{.first = milliseconds(5), .max = milliseconds(5), .pause_first = true};
    const auto began = poll_clock::now();
    CHECK(run_poll(poll_until(second_time, later)));
    REQUIRE(checked.size() == 2);
    CHECK(checked[0] - began >= milliseconds(5));

    checked.clear();
    std::vector<std::size_t> asked;
    poll_policy paced;
    paced.pause = [&](std::size_t checks, poll_policy::duration waited) -> poll_policy::duration {
        asked.push_back(checks);
        CHECK(waited >= poll_policy::duration::zero());
        return milliseconds(1);
    };
    auto fourth_time = [&]() -> boost::asio::awaitable<bool> {
        checked.push_back(poll_clock::now());
        co_return checked.size() == 4;
    };
    CHECK(run_poll(poll_until(fourth_time, paced)));
    CHECK(asked == std::vector<std::size_t>{1, 2, 3});
}

TEST_CASE("poll_until: what the check throws passes through; cancellation during a pause ends the poll") {
    auto broken = []() -> boost::asio::awaitable<bool> {
        throw std::runtime_error("the check failed");
        co_return false;
    };
    CHECK_THROWS_WITH(run_poll(poll_until(broken, poll_policy{})), "the check failed");

    boost::asio::io_context ioc;
    boost::asio::cancellation_signal cancel;
    int checks = 0;
    auto never = [&]() -> boost::asio::awaitable<bool> {
        ++checks;
        co_return false;
    };
    const poll_policy hour{.first = std::chrono::hours(1), .max = std::chrono::hours(1)};
    std::exception_ptr error;
    bool done = false;
    boost::asio::co_spawn(ioc, poll_until(never, hour),
                          boost::asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e, bool) {
                              error = e;
                              done = true;
                          }));
    boost::asio::steady_timer soon(ioc, milliseconds(10));
    soon.async_wait([&](boost::system::error_code) { cancel.emit(boost::asio::cancellation_type::terminal); });
    const auto limit = poll_clock::now() + std::chrono::seconds(60);
    while (!done && ioc.run_one_until(limit) > 0) {}
    REQUIRE(done);
    CHECK(checks == 1);
    REQUIRE(error);
    try {
        std::rethrow_exception(error);
    } catch (const boost::system::system_error& e) { CHECK(e.code() == boost::asio::error::operation_aborted); }
}

}  // TEST_SUITE("poll")
