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
#include "support/files.hpp"
#include "support/run.hpp"

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

using berth_test::contains;
using berth_test::run_on_mock;
using berth_test::temp_dir;
using berth_test::thrown;
using berth_test::write_file;

// No run of 6 or more bytes of `secret` in `text`: a cut secret leaks its prefix too.
bool leaks(std::string_view text, std::string_view secret) {
    for (std::size_t i = 0; i + 6 <= secret.size(); ++i)
        if (text.find(secret.substr(i, 6)) != std::string_view::npos) return true;
    return false;
}

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

}  // namespace

// ---- 1. the BuildKit trace: a bound per message, not only per line ----

// Each layer's errors are caught as berth::error, and code() names the layer's category.
template <class F>
std::string category_of(F&& f) {
    try {
        f();
    } catch (const berth::error& e) { return e.code().category().name(); } catch (const std::exception& e) {
        return std::string("not a berth::error: ") + e.what();
    }
    return "no throw";
}

TEST_CASE("every layer's error is a berth::error whose code names the layer") {
    // thrown by berth itself
    const std::string not_tar(512, 'x');
    CHECK(category_of([&] {
              berth::tar::reader r;
              r.feed(not_tar);
              (void)r.next();
          }) == "berth.tar");
    CHECK(category_of([] { berth::parse_docker_host("ftp://x"); }) == "generic");  // bad input: errc::invalid_argument
    CHECK(category_of([] { berth::parse_image_reference("a//b"); }) == "generic");
    CHECK(category_of([] { berth::load_docker_context("../x"); }) == "berth.context");
    CHECK(category_of([] { berth::buildkit::decode_status_response(std::string(10, '\xff') + "\x01"); }) ==
          "berth.protocol");
    asio::io_context ioc;
    mock_engine engine(ioc.get_executor());
    mock_client client(engine);
    engine.on(verb::get, "/containers/gone/json", reply::error(404, "No such container: gone"));
    CHECK(category_of([&] { run_on_mock(ioc, client.containers().inspect("gone")); }) == "berth.engine");
    engine.on(verb::get, "/containers/cut/json", reply::json(200, "{\"Id\": "));
    CHECK(category_of([&] { run_on_mock(ioc, client.containers().inspect("cut")); }) == "berth.protocol");
    engine.refuse_connections();
    client.close_idle_connections();
    CHECK(category_of([&] { run_on_mock(ioc, client.containers().inspect("any")); }) == "system");  // the OS's own code
    CHECK_THROWS_AS(run_on_mock(ioc, client.containers().inspect("any")), berth::connection_error);

    // made here: each type's code and category
    using berth::error;
    CHECK(category_of([] { throw berth::tls_error(berth::tls_errc::unknown_ca, "tcp://h:2376", "verify"); }) ==
          "berth.tls");
    CHECK(category_of([] { throw berth::ssh_error(berth::ssh_errc::remote_docker_missing, "ssh://h", "", 127, ""); }) ==
          "berth.ssh");
    CHECK(category_of([] { throw berth::registry_error(berth::registry_errc::not_found, 404, "m", "e"); }) ==
          "berth.registry");
    CHECK(category_of([] { throw berth::credential_error(berth::credential_errc::helper_failed, "h"); }) ==
          "berth.credential");
    CHECK(category_of([] {
              throw berth::task_failed_error(berth::cluster_errc::task_unplaceable, "s", "t", "pending",
                                             "no suitable node");
          }) == "berth.cluster");
    CHECK(category_of([] { throw berth::node_address_error({}, "no label"); }) == "berth.cluster");
    CHECK(category_of([] { throw berth::file_not_found(berth::file_not_found::side::host, "/x"); }) == "berth.eval");
    CHECK(category_of([] { throw berth::script_failed(3); }) == "berth.eval");

    // code() is the enum: no kind() or reason() beside it
    berth::tls_error tls(berth::tls_errc::unknown_ca, "tcp://h:2376", "self-signed certificate");
    CHECK(tls.code() == berth::tls_errc::unknown_ca);
    CHECK(tls.message() == "self-signed certificate");
    CHECK(tls.endpoint() == "tcp://h:2376");
    berth::registry_error denied(berth::registry_errc::unauthorized, 401, "denied", "POST /images/create");
    CHECK(denied.code() == berth::registry_errc::unauthorized);
    CHECK(denied.status() == 401);
    berth::task_failed_error failed(berth::cluster_errc::task_failed, "s", "t", "rejected", "no such image");
    CHECK(failed.code() == berth::cluster_errc::task_failed);
    CHECK(failed.message() == "no such image");
    // every protocol_errc is also the generic protocol_error condition
    CHECK(berth::protocol_error(berth::protocol_errc::truncated, "e", "cut").code() ==
          boost::system::errc::protocol_error);
    // what() is berth's own text, without Boost's "[category:value]"
    CHECK(std::string(denied.what()) == "POST /images/create -> 401: denied");
}

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
    auto e = thrown<berth::protocol_error>([&] { run_on_mock(ioc, client.images().build(context, options)); });
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
    auto e = thrown<berth::protocol_error>([&] { run_on_mock(ioc, client.images().check_auth(credentials())); });
    CHECK(std::string(e.what()).find("not valid JSON") != std::string::npos);
    CHECK_FALSE(leaks(e.what(), password));
}

TEST_CASE("hostile: an error reply to POST /auth cut where the password starts leaks no prefix of it") {
    asio::io_context ioc;
    mock_engine engine(ioc.get_executor());
    // the password straddles the 4096 bytes of the (not JSON) message kept
    engine.on(verb::post, "/auth", reply::text(401, std::string(4090, 'x') + password));
    mock_client client(engine);
    auto e = thrown<berth::registry_error>([&] { run_on_mock(ioc, client.images().check_auth(credentials())); });
    CHECK(e.code() == berth::registry_errc::unauthorized);
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
    auto e = thrown<berth::protocol_error>(
        [&] { run_on_mock(ioc, client.images().pull("127.0.0.1:5000/app:1", options)); });
    CHECK_FALSE(leaks(e.what(), password));
    CHECK_FALSE(leaks(e.what(), header));
    // and an error message inside the stream has them redacted
    engine.on(verb::post, "/images/create",
              reply::chunked(200,
                             {R"({"error":"denied for )" + password +
                              R"("})"
                              "\n"},
                             "application/json"));
    auto r = thrown<berth::registry_error>(
        [&] { run_on_mock(ioc, client.images().pull("127.0.0.1:5000/app:1", options)); });
    CHECK(std::string(r.what()).find("<redacted>") != std::string::npos);
    CHECK_FALSE(leaks(r.what(), password));
}

TEST_CASE("hostile: a build's error that echoes X-Registry-Config credentials has them redacted") {
    asio::io_context ioc;
    mock_engine engine(ioc.get_executor());
    engine.on(verb::post, "/build",
              reply::chunked(200,
                             {R"({"error":"pull failed with )" + password +
                              R"("})"
                              "\n"},
                             "application/json"));
    mock_client client(engine);
    berth::http::memory_source context{std::string_view("context")};
    berth::build_options options;
    options.builder = berth::builder::legacy;
    options.registry_config["127.0.0.1:5000"] = credentials();
    auto e = thrown<berth::build_error>([&] { run_on_mock(ioc, client.images().build(context, options)); });
    CHECK_FALSE(leaks(e.what(), password));
    // a 500 that echoes the X-Registry-Config header is redacted too
    auto header = berth::registry_config_header(options.registry_config);
    engine.on(verb::post, "/build", reply::error(500, "bad header " + header));
    auto r = thrown<berth::engine_error>([&] { run_on_mock(ioc, client.images().build(context, options)); });
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
    auto e = thrown<berth::engine_error>([&] { run_on_mock(ioc, client.system().info()); });
    CHECK(e.status() == 500);
    CHECK(e.code() == berth::engine_errc::server_error);
    CHECK(e.message().size() < 4200);
    CHECK(e.message().find("(1048576 bytes)") != std::string::npos);  // the part read, no more
    // the cut connection is not reused: the next request gets its own reply
    CHECK(run_on_mock(ioc, client.images().inspect("app")).id == "sha256:1");
}

TEST_CASE("hostile: a 401 from POST /auth with a 2 MiB body is still unauthorized") {
    asio::io_context ioc;
    mock_engine engine(ioc.get_executor());
    engine.on(verb::post, "/auth", reply::text(401, std::string(2 << 20, 'u')));
    mock_client client(engine);
    auto e = thrown<berth::registry_error>([&] { run_on_mock(ioc, client.images().check_auth(credentials())); });
    CHECK(e.status() == 401);
    CHECK(e.code() == berth::registry_errc::unauthorized);
}

// ---- 6. configuration files are capped ----

TEST_CASE("hostile: a config.json over 1 MiB is a credential_error naming the file") {
    temp_dir dir("berth-h19b");
    write_file(dir / "config.json", R"({"auths":{}})" + std::string((1 << 20) + 10, ' '));
    asio::io_context ioc;
    berth::credential_options o;
    o.config_dir = dir.path;
    auto e = thrown<berth::credential_error>([&] { run_on_mock(ioc, berth::find_credentials("127.0.0.1:5000", o)); });
    CHECK(std::string(e.what()).find((dir.path / "config.json").string()) != std::string::npos);
    CHECK(std::string(e.what()).find("larger than 1048576 bytes") != std::string::npos);
}

TEST_CASE("hostile: a .dockerignore over 1 MiB is a limit_exceeded tar error") {
    temp_dir dir("berth-h19b");
    write_file(dir / "Dockerfile", "FROM scratch\n");
    write_file(dir / ".dockerignore", std::string((1 << 20) + 10, '#'));
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
    temp_dir dir("berth-h19b");
    const std::string name = "hostile";
    const std::string host(100000, 'h');
    write_file(dir / fs::path("contexts/meta") / berth::detail::context_digest(name) / "meta.json",
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
    temp_dir dir("berth-h19b");
    write_file(dir / "config.json", R"({"auths":{")" + std::string(100000, 'k') + R"(":{"auth":"!!"}}})");
    asio::io_context ioc;
    berth::credential_options o;
    o.config_dir = dir.path;
    auto c = thrown<berth::credential_error>([&] { run_on_mock(ioc, berth::find_credentials("127.0.0.1:5000", o)); });
    CHECK(std::string(c.what()).size() < 600);
    // a 1 MB reply that is not JSON is quoted in 80 bytes
    auto p = thrown<berth::protocol_error>([] { berth::json_read::parse(std::string(1000000, '<'), "GET /info"); });
    CHECK(std::string(p.what()).size() < 200);
}

// ---- bad arguments: one type, one code, whatever the layer ----

// Every bad argument or option is a berth::invalid_argument_error (a berth::error) whose code() is the generic
// invalid_argument; what() still says what was wrong.
template <class F>
std::string bad_argument_text(F&& f) {
    auto e = thrown<berth::invalid_argument_error>(std::forward<F>(f));
    CHECK(e.code() == boost::system::errc::invalid_argument);
    CHECK(std::string_view(e.code().category().name()) == "generic");
    const berth::error& base = e;  // one catch for every bad input
    return base.what();
}

TEST_CASE("bad input: a bad command line, copy path, option or address is an invalid_argument_error") {
    // a command line split as a shell would
    CHECK(bad_argument_text([] { berth::split_command("echo 'unterminated"); }) ==
          "unterminated ' in command: echo 'unterminated");
    CHECK(bad_argument_text([] { berth::split_command("echo \"open"); }) == "unterminated \" in command: echo \"open");
    CHECK(bad_argument_text([] { berth::split_command("echo trailing\\"); }) ==
          "trailing backslash in command: echo trailing\\");

    // copy destinations and sources the engine is never asked about
    asio::io_context ioc;
    mock_engine engine(ioc.get_executor());
    mock_client client(engine);
    berth::basic_container<mock_engine> box{&client, "app", "app"};
    temp_dir t;
    write_file(t.path / "file.txt", "x");
    berth::copy_options quiet;
    quiet.verbose = false;
    CHECK(bad_argument_text([&] {
              run_on_mock(ioc, berth::copy_to_container(box, t.path / "file.txt", "tmp/file.txt", quiet));
          }) == "copy_to_container: dest must be an absolute container path, got 'tmp/file.txt'");
    CHECK(bad_argument_text([&] {
              run_on_mock(ioc, berth::copy_to_container(box, t.path / "file.txt", "/tmp/..", quiet));
          }) == "copy_to_container: dest must name a file or directory, not '/'");
    CHECK(bad_argument_text([&] {
              run_on_mock(ioc, berth::copy_from_container(box, std::string("/tmp/a\0b", 8), t.path / "out", quiet));
          }) == "copy_from_container: source contains a NUL byte");
    CHECK(engine.requests().empty());

    // options
    CHECK(contains(bad_argument_text([&] {
                       berth::client_options pinned;
                       pinned.api_version = "1.41/x";
                       (void)berth::client::at(ioc.get_executor(), "unix:///nonexistent.sock", pinned);
                   }),
                   "client_options.api_version"));
    CHECK(bad_argument_text([&] {
              berth::tar::extract_options o;
              o.keep_special_bits = true;
              o.permissions = berth::tar::permissions::data_filter;
              berth::tar::extractor x(t.path / "x", o);
          }) == "tar::extract_options: keep_special_bits needs permissions::exact");
    CHECK(bad_argument_text([&] {
              berth::past_events_query q;
              q.since = std::chrono::system_clock::now();
              q.until = q.since - std::chrono::hours(1);
              run_on_mock(ioc, berth::past_events(client.core(), q));
          }) == "berth::past_events: until is before since");
    berth::run_options both;
    both.exec.cmd = {"true"};
    both.verbose = false;
    CHECK(contains(bad_argument_text([&] { run_on_mock(ioc, berth::exec(box, berth::argv("true"), both)); }),
                   "run_options::exec.cmd must be empty"));
    CHECK(engine.requests().empty());

    // the older bad-input types are the same kind of error
    (void)bad_argument_text([] { berth::parse_docker_host("ftp://x"); });
    (void)bad_argument_text([] { berth::parse_image_reference("a//b"); });
}

TEST_CASE("bad input: a log file that cannot be opened is a berth::error with the system's code, naming the file") {
    temp_dir t;
    auto e = thrown<berth::error>([&] { berth::setup_logger(t.path); });  // a directory: open(2) says EISDIR
    CHECK(e.code() == boost::system::errc::is_a_directory);
    CHECK(std::string_view(e.code().category().name()) == "system");
    CHECK(std::string(e.what()) == "berth: cannot open log file " + t.path.string() + ": Is a directory");

    write_file(t.path / "plain", "x");
    auto nested = thrown<berth::error>([&] { berth::setup_logger(t.path / "plain" / "log.txt"); });
    CHECK(std::string_view(nested.code().category().name()) == "system");
    CHECK(contains(nested.what(), (t.path / "plain").string()));
}
