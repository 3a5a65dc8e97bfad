// Hostile engines, helpers and configuration files (issue #19): every decoder has a bound per message, every
// configuration file read is capped, an error reply keeps its status whatever its size, and no error message quotes
// a secret or grows with what a peer sends. The mock engine plays the hostile engine; files are written here.
#include <berth/berth.hpp>
#include <berth/detail/base64.hpp>
#include <berth/detail/outside_text.hpp>
#include <berth/tar/packer.hpp>
#include <berth/testing/mock_engine.hpp>
#include <berth/transport/docker_context.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <doctest/doctest.h>

#include "support/checks.hpp"
#include "support/run_until.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using berth::testing::mock_engine;
using berth::testing::reply;
using verb = boost::beast::http::verb;
using mock_client = berth::basic_client<mock_engine>;
using namespace std::chrono_literals;

template <class T>
T run(asio::io_context& ioc, asio::awaitable<T> op) {
    return berth_test::run_until_done(ioc, std::move(op), 5s);
}

using berth_test::thrown;

// No run of 6 or more bytes of `secret` in `text`: a cut secret leaks its prefix too.
bool leaks(std::string_view text, std::string_view secret) {
    for (std::size_t i = 0; i + 6 <= secret.size(); ++i)
        if (text.find(secret.substr(i, 6)) != std::string_view::npos) return true;
    return false;
}

struct scratch_dir {
    fs::path path;
    scratch_dir() {
        std::string templ = (fs::temp_directory_path() / "berth-h19b-XXXXXX").string();
        path = ::mkdtemp(templ.data());
    }
    ~scratch_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    void write(const fs::path& relative, std::string_view text) const {
        fs::create_directories((path / relative).parent_path());
        std::ofstream(path / relative, std::ios::binary) << text;
    }
};

const std::string password = "hunter2-Sup3rSecret-pw";

berth::registry_credentials credentials() {
    berth::registry_credentials c;
    c.username = "alice";
    c.password = password;
    c.server_address = "127.0.0.1:5000";
    return c;
}

// A line of the engine's JSON progress carrying a BuildKit trace payload.
std::string trace_line(std::string_view payload) {
    return R"({"id":"moby.buildkit.trace","aux":")" + berth::detail::base64_encode(payload) + "\"}\n";
}

} // namespace

// ---- 1. the BuildKit trace: a bound per message, not only per line ----

TEST_CASE("hostile: a BuildKit trace of many empty vertexes stops at the bound on entries per message") {
    std::string payload;
    for (int i = 0; i < 20001; ++i) payload += std::string("\x0a\x00", 2);  // field 1 (vertex), length 0
    auto e = thrown<berth::buildkit::trace_error>([&] { berth::buildkit::decode_status_response(payload); });
    CHECK(std::string(e.what()).find("more than 10000 entries in one message") != std::string::npos);
    // empty inputs inside one vertex are entries too (a std::string each)
    std::string inputs;
    for (int i = 0; i < 20001; ++i) inputs += std::string("\x12\x00", 2);
    std::string one_vertex = "\x0a" + std::string(1, static_cast<char>(0x80 | (inputs.size() & 0x7f))) +
                             std::string(1, static_cast<char>(0x80 | ((inputs.size() >> 7) & 0x7f))) +
                             std::string(1, static_cast<char>(inputs.size() >> 14)) + inputs;
    CHECK_THROWS_AS(berth::buildkit::decode_status_response(one_vertex), berth::buildkit::trace_error);
    // what a real message holds still decodes
    CHECK(berth::buildkit::decode_status_response(std::string("\x0a\x00\x0a\x00", 4)).vertexes.size() == 2);
}

TEST_CASE("hostile: a BuildKit trace that decodes to more than the bytes bound is refused") {
    std::string log = "\x1a" + std::string("\x08\x22\x06", 3) + "abcdef";  // a vertex log with msg "abcdef"
    berth::buildkit::trace_limits limits;
    limits.max_bytes = 100;
    std::string payload;
    for (int i = 0; i < 3; ++i) payload += log;
    CHECK(berth::buildkit::decode_status_response(payload).logs.size() == 3);
    limits.max_bytes = sizeof(berth::buildkit::vertex_log) * 2;
    auto e = thrown<berth::buildkit::trace_error>([&] { berth::buildkit::decode_status_response(payload, limits); });
    CHECK(std::string(e.what()).find("decodes to more than") != std::string::npos);
}

TEST_CASE("hostile: a build whose trace line holds 100000 empty vertexes fails with a protocol_error") {
    asio::io_context ioc;
    mock_engine engine(ioc.get_executor());
    std::string payload;
    for (int i = 0; i < 100000; ++i) payload += std::string("\x0a\x00", 2);
    engine.on(verb::post, "/build", reply::chunked(200, {trace_line(payload)}, "application/json"));
    mock_client client(engine);
    berth::http::memory_source context{std::string_view("context")};
    berth::build_options options;
    options.builder = berth::builder::buildkit;
    options.network_mode = "none";
    auto e = thrown<berth::protocol_error>([&] { run(ioc, client.images().build(context, options)); });
    CHECK(std::string(e.what()).find("entries in one message") != std::string::npos);
}

TEST_CASE("hostile: a progress line of a million tiny JSON values is refused before it is parsed") {
    std::string line = "{\"stream\":\"x\",\"junk\":[";
    for (int i = 0; i < 1000000; ++i) line += "0,";
    line += "0]}";
    berth::progress_message m;
    auto e = thrown<berth::protocol_error>([&] { berth::parse_progress_message(line, "POST /build", m); });
    CHECK(std::string(e.what()).find("more than 10000 JSON values") != std::string::npos);
    CHECK(std::string(e.what()).size() < 300);
}

// ---- 2. no secret in an error message, whatever the engine echoes ----

TEST_CASE("hostile: POST /auth answered 200 with a body that echoes the password quotes none of it") {
    asio::io_context ioc;
    mock_engine engine(ioc.get_executor());
    engine.on(verb::post, "/auth", reply::text(200, "you sent password=" + password + " <- not JSON"));
    mock_client client(engine);
    auto e = thrown<berth::protocol_error>([&] { run(ioc, client.images().check_auth(credentials())); });
    CHECK(std::string(e.what()).find("not valid JSON") != std::string::npos);
    CHECK_FALSE(leaks(e.what(), password));
}

TEST_CASE("hostile: an error reply to POST /auth cut where the password starts leaks no prefix of it") {
    asio::io_context ioc;
    mock_engine engine(ioc.get_executor());
    // the password straddles the 4096 bytes of the (not JSON) message kept
    engine.on(verb::post, "/auth", reply::text(401, std::string(4090, 'x') + password));
    mock_client client(engine);
    auto e = thrown<berth::registry_error>([&] { run(ioc, client.images().check_auth(credentials())); });
    CHECK(e.reason() == berth::registry_errc::unauthorized);
    CHECK_FALSE(leaks(e.what(), password));
    CHECK_FALSE(leaks(e.message(), password));
}

TEST_CASE("hostile: a pull whose progress line echoes the credentials quotes none of them") {
    asio::io_context ioc;
    mock_engine engine(ioc.get_executor());
    const std::string header = berth::registry_auth_header(credentials());
    engine.on(verb::post, "/images/create",
              reply::chunked(200, {"not json: " + password + " " + header + "\n"}, "application/json"));
    mock_client client(engine);
    berth::pull_options options;
    options.credentials = credentials();
    auto e = thrown<berth::protocol_error>([&] { run(ioc, client.images().pull("127.0.0.1:5000/app:1", options)); });
    CHECK_FALSE(leaks(e.what(), password));
    CHECK_FALSE(leaks(e.what(), header));
    // and an error message inside the stream has them redacted
    engine.on(verb::post, "/images/create",
              reply::chunked(200, {R"({"error":"denied for )" + password + R"("})" "\n"}, "application/json"));
    auto r = thrown<berth::registry_error>([&] { run(ioc, client.images().pull("127.0.0.1:5000/app:1", options)); });
    CHECK(std::string(r.what()).find("<redacted>") != std::string::npos);
    CHECK_FALSE(leaks(r.what(), password));
}

TEST_CASE("hostile: a build's error that echoes X-Registry-Config credentials has them redacted") {
    asio::io_context ioc;
    mock_engine engine(ioc.get_executor());
    engine.on(verb::post, "/build",
              reply::chunked(200, {R"({"error":"pull failed with )" + password + R"("})" "\n"}, "application/json"));
    mock_client client(engine);
    berth::http::memory_source context{std::string_view("context")};
    berth::build_options options;
    options.builder = berth::builder::legacy;
    options.registry_config["127.0.0.1:5000"] = credentials();
    auto e = thrown<berth::build_error>([&] { run(ioc, client.images().build(context, options)); });
    CHECK_FALSE(leaks(e.what(), password));
    // a 500 that echoes the X-Registry-Config header is redacted too
    auto header = berth::registry_config_header(options.registry_config);
    engine.on(verb::post, "/build", reply::error(500, "bad header " + header));
    auto r = thrown<berth::engine_error>([&] { run(ioc, client.images().build(context, options)); });
    CHECK(r.status() == 500);
    CHECK_FALSE(leaks(r.what(), header));
}

TEST_CASE("hostile: an ssh address with a password is refused without showing it") {
    auto e = thrown<berth::invalid_host>([] { berth::parse_docker_host("ssh://alice:" + password + "@host"); });
    CHECK_FALSE(leaks(e.what(), password));
}

// ---- 3. an error reply larger than 1 MiB keeps its status ----

TEST_CASE("hostile: a 500 with a 2 MiB body is a server_error with a bounded message, and the client goes on") {
    asio::io_context ioc;
    mock_engine engine(ioc.get_executor());
    engine.on(verb::get, "/info", reply::text(500, std::string(2 << 20, 'e')));
    engine.on(verb::get, "/images/app/json", reply::json(200, R"({"Id":"sha256:1"})"));
    mock_client client(engine);
    auto e = thrown<berth::engine_error>([&] { run(ioc, client.system().info()); });
    CHECK(e.status() == 500);
    CHECK(e.code() == berth::engine_errc::server_error);
    CHECK(e.message().size() < 4200);
    CHECK(e.message().find("(1048576 bytes)") != std::string::npos);  // the part read, no more
    // the cut connection is not reused: the next request gets its own reply
    CHECK(run(ioc, client.images().inspect("app")).id == "sha256:1");
}

TEST_CASE("hostile: a 401 from POST /auth with a 2 MiB body is still unauthorized") {
    asio::io_context ioc;
    mock_engine engine(ioc.get_executor());
    engine.on(verb::post, "/auth", reply::text(401, std::string(2 << 20, 'u')));
    mock_client client(engine);
    auto e = thrown<berth::registry_error>([&] { run(ioc, client.images().check_auth(credentials())); });
    CHECK(e.status() == 401);
    CHECK(e.reason() == berth::registry_errc::unauthorized);
}

// ---- 6. configuration files are capped ----

TEST_CASE("hostile: a config.json over 1 MiB is a credential_error naming the file") {
    scratch_dir dir;
    dir.write("config.json", R"({"auths":{}})" + std::string((1 << 20) + 10, ' '));
    asio::io_context ioc;
    berth::credential_options o;
    o.config_dir = dir.path;
    auto e = thrown<berth::credential_error>([&] { run(ioc, berth::find_credentials("127.0.0.1:5000", o)); });
    CHECK(std::string(e.what()).find((dir.path / "config.json").string()) != std::string::npos);
    CHECK(std::string(e.what()).find("larger than 1048576 bytes") != std::string::npos);
}

TEST_CASE("hostile: a .dockerignore over 1 MiB is a limit_exceeded tar error") {
    scratch_dir dir;
    dir.write("Dockerfile", "FROM scratch\n");
    dir.write(".dockerignore", std::string((1 << 20) + 10, '#'));
    berth::tar::pack_options o;
    o.use_dockerignore = true;
    auto e = thrown<berth::tar::error>([&] { berth::tar::packer p(dir.path, "", o); });
    CHECK(e.code() == berth::tar::errc::limit_exceeded);
}

TEST_CASE("hostile: a credential helper's reply over 1 MiB or not JSON is refused without quoting it") {
    auto e = thrown<berth::credential_error>(
        [] { berth::detail::parse_helper_get_reply("{\"Secret\":\"" + password, "pass", "127.0.0.1:5000"); });
    CHECK_FALSE(leaks(e.what(), password));
    std::string big = "{\"Username\":\"a\",\"Secret\":\"" + std::string((1 << 20) + 1, 's') + "\"}";
    CHECK_THROWS_AS(berth::detail::parse_helper_get_reply(big, "pass", "k"), berth::credential_error);
    auto c = berth::detail::parse_helper_get_reply(R"({"Username":"<token>","Secret":"tok"})", "pass", "k");
    REQUIRE(c);
    CHECK(c->identity_token == "tok");
    CHECK(berth::detail::parse_helper_list_reply(R"({"a":"u","b":"v"})", "pass") == std::vector<std::string>{"a", "b"});
}

// ---- 8. outside text is quoted once, bounded ----

TEST_CASE("hostile: a 100 KB host in a context's meta.json makes a short error message") {
    scratch_dir dir;
    const std::string name = "hostile";
    const std::string host(100000, 'h');
    dir.write(fs::path("contexts/meta") / berth::detail::context_digest(name) / "meta.json",
              R"({"Name":"hostile","Endpoints":{"docker":{"Host":")" + host + R"(://x"}}})");
    auto e = thrown<berth::invalid_host>([&] { berth::load_docker_context(name, dir.path); });
    const std::string what = e.what();
    CHECK(what.size() < 400);
    CHECK(what.find("(100004 bytes)") != std::string::npos);
    // a valid-looking 100 KB host would be quoted in every transport error: refused here
    auto long_host = thrown<berth::invalid_host>([&] { berth::parse_docker_host("tcp://" + host + ":2375"); });
    CHECK(std::string(long_host.what()).find("longer than 255 bytes") != std::string::npos);
    CHECK(std::string(long_host.what()).size() < 400);
}

TEST_CASE("hostile: outside text in messages is quoted once and bounded") {
    CHECK(berth::detail::quote_outside_text("abc") == "'abc'");
    CHECK(berth::detail::quote_outside_text(std::string("a\0b\n", 4)) == "'a\\x00b\\x0a'");
    auto long_text = berth::detail::quote_outside_text(std::string(1000, 'z'));
    CHECK(long_text == "'" + std::string(200, 'z') + "'... (1000 bytes)");
    // a cut never splits a UTF-8 character
    auto utf8 = berth::detail::bounded_outside_text(std::string(199, 'a') + "\xc3\xa9" + "b", 200);
    CHECK(utf8 == std::string(199, 'a') + "... (202 bytes)");
    // a 100 KB context name from DOCKER_CONTEXT or config.json
    auto e = thrown<berth::context_error>([] { berth::load_docker_context(std::string(100000, '-'), "/nonexistent"); });
    CHECK(std::string(e.what()).size() < 400);
    // a 100 KB key in config.json's auths
    scratch_dir dir;
    dir.write("config.json", R"({"auths":{")" + std::string(100000, 'k') + R"(":{"auth":"!!"}}})");
    asio::io_context ioc;
    berth::credential_options o;
    o.config_dir = dir.path;
    auto c = thrown<berth::credential_error>([&] { run(ioc, berth::find_credentials("127.0.0.1:5000", o)); });
    CHECK(std::string(c.what()).size() < 600);
    // a 1 MB reply that is not JSON is quoted in 80 bytes
    auto p = thrown<berth::protocol_error>([] { berth::json_read::parse(std::string(1000000, '<'), "GET /info"); });
    CHECK(std::string(p.what()).size() < 200);
}
