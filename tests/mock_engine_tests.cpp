// The engine client against the mock engine: the exact requests berth sends, version negotiation, every fault the
// engine or the connection can produce (for a plain request, a streamed download and an exec), pool health,
// build progress, and the demultiplexing of logs and exec output.
#include <berth/berth.hpp>
#include <berth/testing/mock_engine.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/steady_timer.hpp>

#include <doctest/doctest.h>

#include "support/checks.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using berth::testing::exec_frame;
using berth::testing::mock_engine;
using berth::testing::reply;
using verb = boost::beast::http::verb;
using mock_client = berth::basic_client<mock_engine>;
using namespace std::chrono_literals;

constexpr auto out = berth::output_stream::stdout_;
constexpr auto err = berth::output_stream::stderr_;

// Thrown when an operation neither completes nor fails in time: a hang is a failure, never a stuck test run.
struct hang : std::runtime_error {
    hang() : std::runtime_error("the operation did not complete within 5 s") {}
};

// Runs the io_context until `op` completes; returns its value or rethrows its exception.
template <class T>
T run(asio::io_context& ioc, asio::awaitable<T> op, asio::cancellation_slot slot = {}) {
    std::exception_ptr error;
    std::optional<T> value;
    bool done = false;
    auto handler = [&](std::exception_ptr e, T v) {
        error = e;
        if (!e) value.emplace(std::move(v));
        done = true;
    };
    asio::co_spawn(ioc, std::move(op), asio::bind_cancellation_slot(slot, handler));
    ioc.restart();
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!done && ioc.run_one_until(deadline) > 0) {}
    if (!done) throw hang();
    if (error) std::rethrow_exception(error);
    return std::move(*value);
}

inline void run(asio::io_context& ioc, asio::awaitable<void> op, asio::cancellation_slot slot = {}) {
    std::exception_ptr error;
    bool done = false;
    auto handler = [&](std::exception_ptr e) {
        error = e;
        done = true;
    };
    asio::co_spawn(ioc, std::move(op), asio::bind_cancellation_slot(slot, handler));
    ioc.restart();
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!done && ioc.run_one_until(deadline) > 0) {}
    if (!done) throw hang();
    if (error) std::rethrow_exception(error);
}

// Lets the engine's side of the connections catch up (closes, drained bytes) after an operation returned.
void settle(asio::io_context& ioc) {
    ioc.restart();
    ioc.poll();
}

// Runs `op` and emits a terminal cancellation on its slot after `delay`.
template <class T>
T run_cancelled_after(asio::io_context& ioc, asio::awaitable<T> op, std::chrono::milliseconds delay) {
    asio::cancellation_signal signal;
    asio::steady_timer timer(ioc, delay);
    timer.async_wait([&](boost::system::error_code ec) {
        if (!ec) signal.emit(asio::cancellation_type::terminal);
    });
    return run(ioc, std::move(op), signal.slot());
}

// A container's inspect reply.
reply container_json(std::string_view id) {
    return reply::json(200, json::value{{"Id", id}, {"Name", "/" + std::string(id)}, {"State", {{"Running", true}}}});
}

// What a test's exec handler receives.
struct output_log {
    std::string stdout_text, stderr_text;
    void operator()(berth::output_stream s, std::string_view data) {
        (s == berth::output_stream::stderr_ ? stderr_text : stdout_text).append(data);
    }
};

using berth_test::thrown;

using berth_test::message_of;

// The text of a timed_out error.
const std::string timed_out_text = ": " + boost::system::error_code(boost::asio::error::timed_out).message();

using berth_test::contains;

// A client on a mock engine, with the resources every fault test uses: a container "app" that inspects as
// "abc123", an archive of /data in it, and an exec "e1" printing to stdout and stderr that exits with 3.
struct fixture {
    asio::io_context ioc;
    mock_engine engine{ioc.get_executor()};
    mock_client client;

    fixture() : fixture(berth::client_options{}) {}
    explicit fixture(berth::client_options options) : client(engine, std::move(options)) {
        engine.on(verb::get, "/containers/app/json", container_json("abc123"));
        engine.on(verb::get, "/containers/app/archive", archive_reply());
        engine.add_exec("app", "e1", {exec_frame(out, "hello\n"), exec_frame(err, "warning\n")}, 3);
    }

    static json::value data_stat() {
        return json::value{{"name", "data"}, {"size", 4096}, {"mode", 2147484141u}, {"mtime", "2024-01-01T00:00:00Z"},
                           {"linkTarget", ""}};
    }
    static reply archive_reply() { return reply::archive(data_stat(), {"tar-bytes-", "part-2"}); }

    // The three kinds of operation every fault is tried on; each checks its good result.
    // (The operation runs outside CHECK, so that its exceptions reach the test.)
    void plain() {
        auto info = run(ioc, client.containers().inspect("app"));
        CHECK(info.id == "abc123");
    }
    void download() {
        std::string got;
        auto sink = [&](std::span<const char> bytes) { got.append(bytes.data(), bytes.size()); };
        auto stat = run(ioc, client.archives().get("app", "/data", sink));
        CHECK(stat.name == "data");
        CHECK(stat.is_directory());
        CHECK(got == "tar-bytes-part-2");
    }
    void exec() {
        output_log log;
        berth::exec_options options;
        options.cmd = {"sh", "-c", "echo hello; echo warning >&2; exit 3"};
        int code = run(ioc, client.execs().run("app", options, log));
        CHECK(code == 3);
        CHECK(log.stdout_text == "hello\n");
        CHECK(log.stderr_text == "warning\n");
    }

    // After a fault: the same client works again, and neither side keeps connections it should have closed.
    void check_recovers(void (fixture::*operation)()) {
        (this->*operation)();
        check_no_leak();
    }
    // Every connection the client still has is idle in its pool (none is held by a finished operation), their
    // number stays small, and the engine serves exactly those (none was dropped by one side only).
    void check_no_leak() {
        settle(ioc);
        CHECK(client.open_connections() == client.idle_connections());
        CHECK(client.open_connections() <= 2);
        CHECK(engine.connections_open() == client.open_connections());
    }
};

// The endpoint each operation's errors must name.
constexpr std::string_view inspect_endpoint = "GET /v1.41/containers/app/json";
constexpr std::string_view archive_endpoint = "GET /v1.41/containers/app/archive?path=%2Fdata";
constexpr std::string_view exec_start_endpoint = "POST /v1.41/exec/e1/start";
constexpr std::string_view exec_create_endpoint = "POST /v1.41/containers/app/exec";

} // namespace

TEST_SUITE("mock engine") {

// ------------------------------------------------------------------------------------------------------------
// The exact requests berth sends
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("a plain request goes to the versioned path and its JSON is decoded") {
    fixture f;
    f.plain();
    auto sent = f.engine.requests_to(verb::get, "/containers/app/json");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target == inspect_endpoint.substr(4));
    CHECK(sent[0].api_version == "1.41");
    CHECK(sent[0].body.empty());
    CHECK(sent[0].header("Host") == "docker");
    CHECK_FALSE(sent[0].has_header("Content-Type"));
}

TEST_CASE("an untagged image has no names on every API version (1.43 stopped listing <none>:<none>)") {
    fixture f;
    f.engine.on(verb::get, "/images/json",
                reply::json(200, R"([{"Id":"sha256:a","RepoTags":["<none>:<none>"],"Size":1},)"
                                 R"({"Id":"sha256:b","RepoTags":["app:latest","<none>:<none>"],"Size":2}])"));
    f.engine.on(verb::get, "/images/sha256:a/json", reply::json(200, R"({"Id":"sha256:a","RepoTags":["<none>:<none>"]})"));
    auto images = run(f.ioc, f.client.images().list());
    REQUIRE(images.size() == 2);
    CHECK(images[0].repo_tags.empty());
    CHECK(images[1].repo_tags == std::vector<std::string>{"app:latest"});
    CHECK(run(f.ioc, f.client.images().inspect("sha256:a")).repo_tags.empty());
}

TEST_CASE("container create sends the configuration as the engine's JSON") {
    fixture f;
    f.engine.on(verb::post, "/containers/create", reply::json(201, R"({"Id":"c0ffee","Warnings":["low memory"]})"));

    berth::container_config config;
    config.image = "python:3.11-slim";
    config.cmd = {"sleep", "infinity"};
    config.env = {"PYTHONUNBUFFERED=1", "LANG=C.UTF-8"};
    config.working_dir = "/workspace";
    config.labels = {{"berth.role", "eval"}, {"run", "42"}};
    config.tty = true;
    config.open_stdin = true;
    config.host.binds = {"/srv/data:/data:ro", "/tmp/out:/out"};
    config.host.network_mode = "none";
    config.host.init = true;
    berth::device_request gpus;
    gpus.count = -1;
    gpus.capabilities = {{"gpu"}};
    config.host.device_requests = {gpus};
    berth::device_mapping cdi;
    cdi.path_on_host = "nvidia.com/gpu=all";
    cdi.path_in_container = "nvidia.com/gpu=all";
    config.host.devices = {cdi};

    auto created = run(f.ioc, f.client.containers().create(config, "eval é 1"));
    CHECK(created.id == "c0ffee");
    CHECK(created.warnings == std::vector<std::string>{"low memory"});

    auto sent = f.engine.requests_to(verb::post, "/containers/create");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target == "/v1.41/containers/create?name=eval%20%C3%A9%201");
    CHECK(sent[0].query("name") == "eval é 1");
    CHECK(sent[0].header("Content-Type") == "application/json");
    CHECK_FALSE(sent[0].chunked);
    auto expected = json::parse(R"({
        "Image": "python:3.11-slim",
        "Cmd": ["sleep", "infinity"],
        "Env": ["PYTHONUNBUFFERED=1", "LANG=C.UTF-8"],
        "WorkingDir": "/workspace",
        "Labels": {"berth.role": "eval", "run": "42"},
        "Tty": true,
        "OpenStdin": true,
        "HostConfig": {
            "Binds": ["/srv/data:/data:ro", "/tmp/out:/out"],
            "NetworkMode": "none",
            "Init": true,
            "DeviceRequests": [{"Driver": "", "Count": -1, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}],
            "Devices": [{"PathOnHost": "nvidia.com/gpu=all", "PathInContainer": "nvidia.com/gpu=all",
                         "CgroupPermissions": "rwm"}]
        }
    })");
    CHECK(sent[0].json() == expected);
}

TEST_CASE("an unset configuration leaves the engine's defaults alone") {
    fixture f;
    f.engine.on(verb::post, "/containers/create", reply::json(201, R"({"Id":"c1"})"));
    berth::container_config config;
    config.image = "alpine";
    run(f.ioc, f.client.containers().create(config));
    auto sent = f.engine.requests_to(verb::post, "/containers/create");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target == "/v1.41/containers/create");
    CHECK(sent[0].json() == json::parse(R"({"Image":"alpine","HostConfig":{}})"));
}

TEST_CASE("container names and archive paths with spaces and UTF-8 are percent-encoded") {
    fixture f;
    f.engine.on(verb::get, "/containers/my app/archive", fixture::archive_reply());
    f.engine.on(verb::head, "/containers/my app/archive", fixture::archive_reply());
    f.engine.on(verb::put, "/containers/my app/archive", reply::no_content(200));

    std::string got;
    auto sink = [&](std::span<const char> bytes) { got.append(bytes.data(), bytes.size()); };
    run(f.ioc, f.client.archives().get("my app", "/tmp/dir with space/é.txt", sink));
    auto stat = run(f.ioc, f.client.archives().stat("my app", "/tmp/a&b=c?d"));
    CHECK(stat.size == 4096);
    std::string tar(3000, 'x');
    berth::http::memory_source source{tar};
    run(f.ioc, f.client.archives().put("my app", "/dst dir", source));

    auto gets = f.engine.requests_to(verb::get, "/containers/my app/archive");
    REQUIRE(gets.size() == 1);
    CHECK(gets[0].target == "/v1.41/containers/my%20app/archive?path=%2Ftmp%2Fdir%20with%20space%2F%C3%A9.txt");
    CHECK(gets[0].query("path") == "/tmp/dir with space/é.txt");
    auto heads = f.engine.requests_to(verb::head, "/containers/my app/archive");
    REQUIRE(heads.size() == 1);
    CHECK(heads[0].target == "/v1.41/containers/my%20app/archive?path=%2Ftmp%2Fa%26b%3Dc%3Fd");
    CHECK(heads[0].query("path") == "/tmp/a&b=c?d");
    auto puts = f.engine.requests_to(verb::put, "/containers/my app/archive");
    REQUIRE(puts.size() == 1);
    CHECK(puts[0].target == "/v1.41/containers/my%20app/archive?path=%2Fdst%20dir");
    CHECK(puts[0].header("Content-Type") == "application/x-tar");
    CHECK(puts[0].chunked);
    CHECK(puts[0].body == tar);
}

TEST_CASE("a build uploads its context chunked as application/x-tar with its options in the query") {
    berth::client_options options;
    options.http.upload_chunk_size = 1000;  // several chunks for a small context
    fixture f(options);
    f.engine.on(verb::post, "/build",
                reply::chunked(200, {R"({"stream":"Step 1/1 : FROM scratch\n"})" "\n", R"({"aux":{"ID":"sha256:b1"}})" "\n"},
                               "application/json"));
    std::string context(4500, '\0');
    for (std::size_t i = 0; i < context.size(); ++i) context[i] = static_cast<char>(i * 7);
    berth::http::memory_source source{context};
    berth::build_options build;
    build.tag = "eval/app:1";
    build.network_mode = "none";
    build.build_args = {{"PY", "3.11"}};

    auto image = run(f.ioc, f.client.images().build(source, build));
    CHECK(image.id == "sha256:b1");
    auto sent = f.engine.requests_to(verb::post, "/build");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].chunked);
    CHECK(sent[0].header("Content-Type") == "application/x-tar");
    CHECK_FALSE(sent[0].has_header("Content-Length"));
    CHECK(sent[0].body == context);
    CHECK(sent[0].query("t") == "eval/app:1");
    CHECK(sent[0].query("networkmode") == "none");
    CHECK(sent[0].query("buildargs") == R"({"PY":"3.11"})");
    CHECK(sent[0].query("rm") == "1");
    CHECK(sent[0].target.starts_with("/v1.41/build?t=eval%2Fapp%3A1&"));
}

TEST_CASE("an exec is created with its command and started on an upgraded connection") {
    fixture f;
    output_log log;
    berth::exec_options options;
    options.cmd = {"python3", "-c", "print('ü')"};
    options.env = {"A=1"};
    options.working_dir = "/work dir";
    CHECK(run(f.ioc, f.client.execs().run("app", options, log)) == 3);

    auto creates = f.engine.requests_to(verb::post, "/containers/app/exec");
    REQUIRE(creates.size() == 1);
    CHECK(creates[0].header("Content-Type") == "application/json");
    auto expected = json::parse(R"j({"AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,
                                    "Cmd":["python3","-c","print('ü')"],"Env":["A=1"],"WorkingDir":"/work dir"})j");
    CHECK(creates[0].json() == expected);
    auto starts = f.engine.requests_to(verb::post, "/exec/e1/start");
    REQUIRE(starts.size() == 1);
    CHECK(starts[0].target == exec_start_endpoint.substr(5));
    CHECK(starts[0].header("Connection") == "Upgrade");
    CHECK(starts[0].header("Upgrade") == "tcp");
    CHECK(starts[0].header("Content-Type") == "application/json");
    CHECK(starts[0].json() == json::parse(R"({"Detach":false,"Tty":false})"));
    CHECK(f.engine.requests_to(verb::get, "/exec/e1/json").size() >= 1);
}

TEST_CASE("the mock engine answers an unscripted request with a 404 naming it") {
    fixture f;
    auto e = thrown<berth::not_found_error>([&] { run(f.ioc, f.client.containers().inspect("nope")); });
    CHECK(e.message() == "mock engine: no route for GET /v1.41/containers/nope/json");
    CHECK(run(f.ioc, f.client.system().ping()));
}

TEST_CASE("an empty exec command is refused before anything is sent") {
    fixture f;
    output_log log;
    berth::exec_options options;
    CHECK_THROWS_AS(run(f.ioc, f.client.execs().run("app", options, log)), std::invalid_argument);
    CHECK(f.engine.requests_to(verb::post, "/containers/app/exec").empty());
}

// ------------------------------------------------------------------------------------------------------------
// API version negotiation
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("the API version is the newest both speak, and asked for once") {
    fixture f;
    std::string offered, expected;
    SUBCASE("an engine newer than berth is spoken to at berth's newest") {
        offered = "1.60";
        expected = "1.56";
    }
    SUBCASE("an older engine is spoken to at its own version") {
        offered = "1.43";
        expected = "1.43";
    }
    SUBCASE("berth's oldest") {
        offered = "1.40";
        expected = "1.40";
    }
    f.engine.set_api_version(offered);
    f.plain();
    f.plain();
    f.download();
    f.exec();
    CHECK(run(f.ioc, f.client.api_version()) == expected);
    CHECK(run(f.ioc, f.client.kind()) == berth::engine_kind::docker);
    CHECK(f.engine.requests_to(verb::get, "/version").size() == 1);
    for (auto& r : f.engine.requests())
        if (r.path != "/version") CHECK(r.api_version == expected);
}

// Docker 29.0 raised the minimum API version to 1.44 and refuses older clients with this 400.
TEST_CASE("an engine like Docker 29.0 (API 1.51, minimum 1.44) is spoken to at 1.51") {
    fixture f;
    f.engine.set_api_version("1.51", "1.44");
    f.plain();
    f.download();
    f.exec();
    for (auto& r : f.engine.requests())
        if (r.path != "/version") CHECK(r.api_version == "1.51");
    SUBCASE("a pinned version within its range is used as pinned") {
        berth::client_options options;
        options.api_version = "1.44";
        mock_client pinned(f.engine, options);
        CHECK(run(f.ioc, pinned.containers().inspect("app")).id == "abc123");
        CHECK(f.engine.requests().back().api_version == "1.44");
    }
}

TEST_CASE("Docker's refusal of the client's version (an engine upgraded under a running client) is typed") {
    fixture f;
    f.plain();  // negotiated 1.41 with Docker 20.10
    f.engine.set_api_version("1.51", "1.44");
    auto e = thrown<berth::unsupported_api_version_error>([&] { f.plain(); });
    CHECK(e.status() == 400);
    CHECK(e.message() == "client version 1.41 is too old. Minimum supported API version is 1.44, please upgrade "
                         "your client to a newer version");
    CHECK(e.endpoint() == inspect_endpoint);
}

TEST_CASE("an engine like current Docker (API 1.56, minimum 1.40) is spoken to at 1.56") {
    fixture f;
    f.engine.set_api_version("1.56", "1.40");
    f.plain();
    f.exec();
    CHECK(run(f.ioc, f.client.api_version()) == "1.56");
    CHECK(f.engine.requests_to(verb::get, "/containers/app/json").at(0).target == "/v1.56/containers/app/json");
}

TEST_CASE("no API version in common is an unsupported_api_version_error, and nothing but /version is sent") {
    fixture f;
    std::string expected_text;
    SUBCASE("an engine older than berth supports") {
        f.engine.set_api_version("1.39", "1.12");
        expected_text = "berth needs at least 1.40";
    }
    SUBCASE("an engine whose minimum is above berth's newest") {
        f.engine.set_api_version("1.70", "1.60");
        expected_text = "the engine speaks API 1.60 to 1.70";
    }
    SUBCASE("a pinned version below the engine's minimum (Docker 29.0)") {
        berth::client_options options;
        options.api_version = "1.41";
        fixture g(options);
        g.engine.set_api_version("1.51", "1.44");
        auto e = thrown<berth::unsupported_api_version_error>([&] { g.plain(); });
        CHECK(contains(e.what(), "pinned to 1.41"));
        CHECK(g.engine.requests().size() == 1);
        return;
    }
    SUBCASE("a pinned version above the engine's newest (Docker 20.10)") {
        berth::client_options options;
        options.api_version = "1.44";
        fixture g(options);
        auto e = thrown<berth::unsupported_api_version_error>([&] { g.exec(); });
        CHECK(contains(e.what(), "newer than the engine's"));
        CHECK(g.engine.requests().size() == 1);
        return;
    }
    auto e = thrown<berth::unsupported_api_version_error>([&] { f.plain(); });
    CHECK(e.code() == berth::engine_errc::unsupported_api_version);
    CHECK(e.endpoint() == "GET /version");
    CHECK(contains(e.what(), expected_text));
    CHECK_THROWS_AS(f.download(), berth::unsupported_api_version_error);  // every call, not just the first
    CHECK(f.engine.requests().size() == 1);
    CHECK(f.engine.requests()[0].path == "/version");
}

TEST_CASE("an engine's ApiVersion that is not digits.digits never reaches a request line") {
    fixture f;
    std::string version;
    SUBCASE("a path") { version = "1.40/../../evil"; }
    SUBCASE("a second request smuggled in with CRLF") {
        version = "1.41/containers/app/json HTTP/1.1\r\nHost: docker\r\n\r\nDELETE /v1.41/containers/app";
    }
    SUBCASE("a query") { version = "1.41?x="; }
    SUBCASE("not a number") { version = "latest"; }
    f.engine.set_api_version(version);
    auto e = thrown<berth::protocol_error>([&] { f.plain(); });
    CHECK(e.endpoint() == "GET /version");
    CHECK(contains(e.what(), "ApiVersion"));
    CHECK(f.engine.requests().size() == 1);
    CHECK(f.engine.requests()[0].path == "/version");
}

TEST_CASE("Podman is recognised from /version") {
    fixture f;
    f.engine.answer_as_podman();
    CHECK(run(f.ioc, f.client.kind()) == berth::engine_kind::podman);
    auto v = run(f.ioc, f.client.version());
    CHECK(v.version == "4.3.1");
    CHECK(v.api_version == "1.41");
}

TEST_CASE("a /version reply without ApiVersion is a protocol_error, and nothing else is sent") {
    fixture f;
    f.engine.on(verb::get, "/version", reply::json(200, R"({"Version":"1.0"})"));
    auto e = thrown<berth::protocol_error>([&] { f.plain(); });
    CHECK(e.endpoint() == "GET /version");
    CHECK(contains(e.what(), "ApiVersion"));
    CHECK(f.engine.requests().size() == 1);
}

// ------------------------------------------------------------------------------------------------------------
// Faults: each for a plain request, a streamed download and an exec; each must surface as a clear error, and the
// client must work again afterwards with no connection left behind.
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("a reply cut short in its body is a transport error naming the endpoint") {
    fixture f;
    SUBCASE("plain request") {
        f.engine.once(verb::get, "/containers/app/json", reply::reset_mid_body(200, R"({"Id":"abc123"})", 5));
        auto e = thrown<boost::system::system_error>([&] { f.plain(); });
        CHECK(contains(e.what(), inspect_endpoint));
        CHECK(e.code() == boost::beast::http::error::partial_message);
        f.check_recovers(&fixture::plain);
    }
    SUBCASE("streamed download: the slices before the cut reach the sink, then the error") {
        reply cut = fixture::archive_reply();
        cut.declared_length = 100;
        cut.then_close();
        f.engine.once(verb::get, "/containers/app/archive", cut);
        std::string got;
        auto sink = [&](std::span<const char> bytes) { got.append(bytes.data(), bytes.size()); };
        auto e = thrown<boost::system::system_error>([&] { run(f.ioc, f.client.archives().get("app", "/data", sink)); });
        CHECK(contains(e.what(), archive_endpoint));
        CHECK(got == "tar-bytes-part-2");
        f.check_recovers(&fixture::download);
    }
    SUBCASE("exec: the create reply is cut") {
        f.engine.once(verb::post, "/containers/app/exec", reply::reset_mid_body(201, R"({"Id":"e1"})", 3));
        auto e = thrown<boost::system::system_error>([&] { f.exec(); });
        CHECK(contains(e.what(), exec_create_endpoint));
        f.check_recovers(&fixture::exec);
    }
    SUBCASE("exec: the output stream ends inside a frame") {
        std::string frame = exec_frame(out, "hello\n");
        f.engine.once(verb::post, "/exec/e1/start", reply::upgrade({frame.substr(0, 10)}));
        auto e = thrown<berth::protocol_error>([&] { f.exec(); });
        CHECK(e.endpoint() == exec_start_endpoint);
        CHECK(contains(e.what(), "inside a frame"));
        f.check_recovers(&fixture::exec);
    }
}

TEST_CASE("a truncated reply head is a transport error naming the endpoint, and is not replayed") {
    fixture f;
    SUBCASE("plain request") {
        f.engine.once(verb::get, "/containers/app/json", reply::truncated_head());
        auto e = thrown<boost::system::system_error>([&] { f.plain(); });
        CHECK(contains(e.what(), inspect_endpoint));
        CHECK(contains(e.what(), "reply head"));
        CHECK(f.engine.requests_to(verb::get, "/containers/app/json").size() == 1);
        f.check_recovers(&fixture::plain);
    }
    SUBCASE("streamed download") {
        f.engine.once(verb::get, "/containers/app/archive", reply::truncated_head());
        auto e = thrown<boost::system::system_error>([&] { f.download(); });
        CHECK(contains(e.what(), archive_endpoint));
        f.check_recovers(&fixture::download);
    }
    SUBCASE("exec") {
        f.engine.once(verb::post, "/exec/e1/start", reply::raw("HTTP/1.1 101 UPGRADED\r\nConnection: Upgr"));
        auto e = thrown<boost::system::system_error>([&] { f.exec(); });
        CHECK(contains(e.what(), exec_start_endpoint));
        CHECK(f.engine.requests_to(verb::post, "/exec/e1/start").size() == 1);
        f.check_recovers(&fixture::exec);
    }
}

TEST_CASE("an engine that hangs up without a byte is a transport error") {
    fixture f;
    f.plain();  // the connection is now a reused one: the hang-up on the retry must not be retried again
    f.engine.close_idle_connections();
    f.engine.once(verb::get, "/containers/app/json", reply::hang_up());
    auto e = thrown<boost::system::system_error>([&] { f.plain(); });
    CHECK(contains(e.what(), inspect_endpoint));
    CHECK(f.engine.requests_to(verb::get, "/containers/app/json").size() == 2);  // the first, then one retry
    f.check_recovers(&fixture::plain);
}

TEST_CASE("a stalled engine is ended by a time limit") {
    fixture f;
    SUBCASE("plain request") {
        f.engine.once(verb::get, "/containers/app/json", reply::stall());
        auto e = thrown<boost::system::system_error>(
            [&] { run(f.ioc, berth::with_timeout(f.client.containers().inspect("app"), 100ms)); });
        CHECK(e.code() == asio::error::timed_out);
        f.check_recovers(&fixture::plain);
    }
    SUBCASE("plain request, with the client's request_timeout") {
        berth::client_options options;
        options.request_timeout = 100ms;
        fixture g(options);
        g.engine.once(verb::get, "/containers/app/json", reply::stall());
        auto e = thrown<boost::system::system_error>([&] { g.plain(); });
        CHECK(e.code() == asio::error::timed_out);
        g.check_recovers(&fixture::plain);
    }
    SUBCASE("streamed download stalled in the middle of its body") {
        reply stalled = fixture::archive_reply();
        stalled.declared_length = 100;
        stalled.then_stall();
        f.engine.once(verb::get, "/containers/app/archive", stalled);
        std::string got;
        auto sink = [&](std::span<const char> bytes) { got.append(bytes.data(), bytes.size()); };
        auto e = thrown<boost::system::system_error>(
            [&] { run(f.ioc, berth::with_timeout(f.client.archives().get("app", "/data", sink), 100ms)); });
        CHECK(e.code() == asio::error::timed_out);
        CHECK(got == "tar-bytes-part-2");
        f.check_recovers(&fixture::download);
    }
    SUBCASE("exec whose start is never answered") {
        f.engine.once(verb::post, "/exec/e1/start", reply::stall());
        output_log log;
        berth::exec_options options;
        options.cmd = {"true"};
        auto e = thrown<boost::system::system_error>(
            [&] { run(f.ioc, berth::with_timeout(f.client.execs().run("app", options, log), 100ms)); });
        CHECK(e.code() == asio::error::timed_out);
        f.check_recovers(&fixture::exec);
    }
    SUBCASE("exec whose output stream stays open on Docker") {
        f.engine.once(verb::post, "/exec/e1/start", reply::upgrade({exec_frame(out, "partial\n")}).then_stall());
        output_log log;
        berth::exec_options options;
        options.cmd = {"sleep", "infinity"};
        auto e = thrown<boost::system::system_error>(
            [&] { run(f.ioc, berth::with_timeout(f.client.execs().run("app", options, log), 100ms)); });
        CHECK(e.code() == asio::error::timed_out);
        CHECK(log.stdout_text == "partial\n");
        f.check_recovers(&fixture::exec);
    }
}

TEST_CASE("a stalled engine is ended by cancellation") {
    fixture f;
    SUBCASE("plain request") {
        f.engine.once(verb::get, "/containers/app/json", reply::stall());
        auto e = thrown<boost::system::system_error>(
            [&] { run_cancelled_after(f.ioc, f.client.containers().inspect("app"), 50ms); });
        CHECK(e.code() == asio::error::operation_aborted);
        f.check_recovers(&fixture::plain);
    }
    SUBCASE("streamed download") {
        reply stalled = fixture::archive_reply();
        stalled.declared_length = 100;
        stalled.then_stall();
        f.engine.once(verb::get, "/containers/app/archive", stalled);
        auto sink = [](std::span<const char>) {};
        auto e = thrown<boost::system::system_error>(
            [&] { run_cancelled_after(f.ioc, f.client.archives().get("app", "/data", sink), 50ms); });
        CHECK(e.code() == asio::error::operation_aborted);
        f.check_recovers(&fixture::download);
    }
    SUBCASE("exec") {
        f.engine.once(verb::post, "/exec/e1/start", reply::upgrade({exec_frame(out, "partial\n")}).then_stall());
        output_log log;
        berth::exec_options options;
        options.cmd = {"sleep", "infinity"};
        auto e = thrown<boost::system::system_error>(
            [&] { run_cancelled_after(f.ioc, f.client.execs().run("app", options, log), 50ms); });
        CHECK(e.code() == asio::error::operation_aborted);
        f.check_recovers(&fixture::exec);
    }
}

TEST_CASE("an engine error carries the status and the engine's own message") {
    fixture f;
    SUBCASE("500 on a plain request") {
        f.engine.once(verb::get, "/containers/app/json", reply::error(500, "driver failed programming"));
        auto e = thrown<berth::engine_error>([&] { f.plain(); });
        CHECK(e.status() == 500);
        CHECK(e.code() == berth::engine_errc::server_error);
        CHECK(e.message() == "driver failed programming");
        CHECK(e.endpoint() == inspect_endpoint);
        CHECK(contains(e.what(), "500"));
        CHECK(contains(e.what(), "driver failed programming"));
        f.check_recovers(&fixture::plain);
    }
    SUBCASE("404 is a not_found_error") {
        f.engine.once(verb::get, "/containers/app/json", reply::error(404, "No such container: app"));
        auto e = thrown<berth::not_found_error>([&] { f.plain(); });
        CHECK(e.status() == 404);
        CHECK(e.message() == "No such container: app");
        f.check_recovers(&fixture::plain);
    }
    SUBCASE("409 is a conflict_error") {
        f.engine.on(verb::delete_, "/containers/app", reply::error(409, "container is running: stop it first"));
        auto e = thrown<berth::conflict_error>([&] { run(f.ioc, f.client.containers().remove("app")); });
        CHECK(e.code() == berth::engine_errc::conflict);
        CHECK(e.message() == "container is running: stop it first");
        CHECK(e.endpoint() == "DELETE /v1.41/containers/app?force=0&v=0");
    }
    SUBCASE("an error body that is not JSON is the message as text") {
        f.engine.once(verb::get, "/containers/app/json", reply::text(502, "Bad Gateway\n"));
        auto e = thrown<berth::engine_error>([&] { f.plain(); });
        CHECK(e.status() == 502);
        CHECK(e.message() == "Bad Gateway");
    }
    SUBCASE("500 on a streamed download") {
        f.engine.once(verb::get, "/containers/app/archive", reply::error(500, "cannot read the container's files"));
        auto e = thrown<berth::engine_error>([&] { f.download(); });
        CHECK(e.status() == 500);
        CHECK(e.message() == "cannot read the container's files");
        CHECK(e.endpoint() == archive_endpoint);
        f.check_recovers(&fixture::download);
    }
    SUBCASE("404 on a download names the container and the path when the engine gives no message") {
        f.engine.once(verb::get, "/containers/app/archive", reply::no_content(404));
        auto e = thrown<berth::not_found_error>([&] { f.download(); });
        CHECK(contains(e.message(), "app:/data"));
        f.check_recovers(&fixture::download);
    }
    SUBCASE("500 on an exec start") {
        f.engine.once(verb::post, "/exec/e1/start", reply::error(500, "OCI runtime exec failed"));
        auto e = thrown<berth::engine_error>([&] { f.exec(); });
        CHECK(e.status() == 500);
        CHECK(e.message() == "OCI runtime exec failed");
        CHECK(e.endpoint() == exec_start_endpoint);
        f.check_recovers(&fixture::exec);
    }
    SUBCASE("409 on an exec create is a conflict_error") {
        f.engine.once(verb::post, "/containers/app/exec", reply::error(409, "container app is not running"));
        auto e = thrown<berth::conflict_error>([&] { f.exec(); });
        CHECK(e.message() == "container app is not running");
        f.check_recovers(&fixture::exec);
    }
}

TEST_CASE("garbage instead of HTTP is a protocol_error naming the endpoint") {
    fixture f;
    SUBCASE("plain request") {
        f.engine.once(verb::get, "/containers/app/json", reply::garbage());
        auto e = thrown<berth::protocol_error>([&] { f.plain(); });
        CHECK(e.endpoint() == inspect_endpoint);
        CHECK(contains(e.what(), "malformed HTTP"));
        f.check_recovers(&fixture::plain);
    }
    SUBCASE("streamed download") {
        f.engine.once(verb::get, "/containers/app/archive", reply::garbage());
        auto e = thrown<berth::protocol_error>([&] { f.download(); });
        CHECK(e.endpoint() == archive_endpoint);
        f.check_recovers(&fixture::download);
    }
    SUBCASE("garbage in a chunked body") {
        f.engine.once(verb::get, "/containers/app/archive",
                      reply::raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                 "X-Docker-Container-Path-Stat: e30=\r\n\r\nzz\r\nnot a chunk\r\n"));
        auto e = thrown<berth::protocol_error>([&] { f.download(); });
        CHECK(e.endpoint() == archive_endpoint);
        f.check_recovers(&fixture::download);
    }
    SUBCASE("exec") {
        f.engine.once(verb::post, "/exec/e1/start", reply::garbage());
        auto e = thrown<berth::protocol_error>([&] { f.exec(); });
        CHECK(e.endpoint() == exec_start_endpoint);
        f.check_recovers(&fixture::exec);
    }
}

TEST_CASE("a 200 whose body is not the JSON expected is a protocol_error naming the endpoint") {
    fixture f;
    SUBCASE("plain request: not JSON at all") {
        f.engine.once(verb::get, "/containers/app/json", reply::text(200, "<html>proxy login</html>"));
        auto e = thrown<berth::protocol_error>([&] { f.plain(); });
        CHECK(contains(e.endpoint(), "/containers/app/json"));
        CHECK(contains(e.what(), "not valid JSON"));
        CHECK(contains(e.what(), "<html>proxy login"));
        f.check_recovers(&fixture::plain);
    }
    SUBCASE("plain request: JSON of the wrong shape") {
        f.engine.once(verb::get, "/containers/app/json", reply::json(200, R"([{"Id":"abc123"}])"));
        auto e = thrown<berth::protocol_error>([&] { f.plain(); });
        CHECK(contains(e.endpoint(), "/containers/app/json"));
        CHECK(contains(e.what(), "JSON object"));
    }
    SUBCASE("plain request: a field of the wrong type") {
        f.engine.once(verb::get, "/containers/app/json", reply::json(200, R"({"Id":"abc123","State":{"Running":"yes"}})"));
        auto e = thrown<berth::protocol_error>([&] { f.plain(); });
        CHECK(contains(e.what(), "Running"));
    }
    SUBCASE("streamed download: a stat header that is not base64 JSON") {
        reply bad = reply::streamed(200, {"tar"}, "application/x-tar");
        bad.header("X-Docker-Container-Path-Stat", "bm90IGpzb24=");  // "not json"
        f.engine.once(verb::get, "/containers/app/archive", bad);
        auto e = thrown<berth::protocol_error>([&] { f.download(); });
        CHECK(e.endpoint() == archive_endpoint);
        f.check_recovers(&fixture::download);
    }
    SUBCASE("streamed download: no stat header") {
        f.engine.once(verb::get, "/containers/app/archive", reply::streamed(200, {"tar"}, "application/x-tar"));
        auto e = thrown<berth::protocol_error>([&] { f.download(); });
        CHECK(contains(e.what(), "X-Docker-Container-Path-Stat"));
        f.check_recovers(&fixture::download);
    }
    SUBCASE("exec: the create reply has no Id") {
        f.engine.once(verb::post, "/containers/app/exec", reply::json(201, R"({"Id":42})"));
        auto e = thrown<berth::protocol_error>([&] { f.exec(); });
        CHECK(contains(e.endpoint(), "/containers/app/exec"));
        CHECK(contains(e.what(), "'Id'"));
        f.check_recovers(&fixture::exec);
    }
    SUBCASE("exec: the inspect reply is not JSON") {
        f.engine.once(verb::get, "/exec/e1/json", reply::text(200, "{"));
        auto e = thrown<berth::protocol_error>([&] { f.exec(); });
        CHECK(contains(e.endpoint(), "/exec/e1/json"));
        f.check_recovers(&fixture::exec);
    }
}

TEST_CASE("an idle keep-alive connection closed by the engine is retried once on a fresh connection") {
    fixture f;
    SUBCASE("plain request") {
        f.plain();
        f.engine.close_idle_connections();
        f.plain();
        CHECK(f.engine.connections_opened() == 2);
        CHECK(f.engine.requests_to(verb::get, "/containers/app/json").size() == 2);
    }
    SUBCASE("plain request after a reply the engine closed the connection behind") {
        f.engine.once(verb::get, "/containers/app/json", container_json("abc123").then_close());
        f.plain();
        f.plain();
        CHECK(f.engine.connections_opened() == 2);
    }
    SUBCASE("streamed download") {
        f.download();
        f.engine.close_idle_connections();
        f.download();
        CHECK(f.engine.connections_opened() == 2);
    }
    SUBCASE("exec") {
        f.plain();
        f.engine.close_idle_connections();
        f.exec();
        CHECK(f.engine.requests_to(verb::post, "/containers/app/exec").size() == 1);
        CHECK(f.engine.requests_to(verb::post, "/exec/e1/start").size() == 1);
    }
    SUBCASE("a streamed upload never goes on a reused connection") {
        f.engine.on(verb::put, "/containers/app/archive", reply::no_content(200));
        f.plain();
        std::string tar(100, 't');
        berth::http::memory_source source{tar};
        run(f.ioc, f.client.archives().put("app", "/", source));
        CHECK(f.engine.connections_opened() == 2);
        auto puts = f.engine.requests_to(verb::put, "/containers/app/archive");
        REQUIRE(puts.size() == 1);
        CHECK(puts[0].connection == 2);
        CHECK(puts[0].body == tar);
    }
    f.check_no_leak();
}

TEST_CASE("an engine that refuses connections is a system_error naming it, and the client recovers") {
    fixture f;
    f.engine.refuse_connections();
    auto e = thrown<boost::system::system_error>([&] { f.plain(); });
    CHECK(e.code() == asio::error::connection_refused);
    // The engine, the request and the operation; not the place in Asio's sources where the error code was made.
    CHECK(message_of<boost::system::system_error>([&] { f.plain(); }) ==
          "mock://engine: GET /version: connect: " + boost::system::error_code(asio::error::connection_refused).message());
    f.engine.refuse_connections(false);
    f.check_recovers(&fixture::plain);
}

// ------------------------------------------------------------------------------------------------------------
// Nothing replayed, nothing cut, nothing waited on forever (issue 13)
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("a request the engine may have received on a reused connection is not sent again unless replayable") {
    fixture f;
    f.plain();  // the pool now holds a keep-alive connection, which the next request reuses
    SUBCASE("a POST read by the engine, which then closes the connection without a reply, is an error") {
        f.engine.once(verb::post, "/containers/create", reply::hang_up());
        berth::container_config config;
        config.image = "busybox";
        config.host.network_mode = "none";
        auto text = message_of<boost::system::system_error>([&] { run(f.ioc, f.client.containers().create(config, "twice")); });
        CHECK(text.starts_with("mock://engine: POST /v1.41/containers/create?name=twice: reading the reply head: "));
        auto creates = f.engine.requests_to(verb::post, "/containers/create");
        CHECK(creates.size() == 1);  // the engine created the container once; berth must not ask again
        CHECK(creates.at(0).connection == 1);
    }
    SUBCASE("a DELETE likewise (replayed, it would report a removal that succeeded as 404)") {
        f.engine.once(verb::delete_, "/containers/app", reply::hang_up());
        CHECK_THROWS_AS(run(f.ioc, f.client.containers().remove("app")), boost::system::system_error);
        CHECK(f.engine.requests_to(verb::delete_, "/containers/app").size() == 1);
    }
    SUBCASE("a GET is sent again on a fresh connection") {
        f.engine.once(verb::get, "/containers/app/json", reply::hang_up());
        f.plain();
        auto inspects = f.engine.requests_to(verb::get, "/containers/app/json");
        REQUIRE(inspects.size() == 3);
        CHECK(inspects[1].connection == 1);
        CHECK(inspects[2].connection == 2);
    }
    SUBCASE("a POST whose write failed before its first byte (the engine had closed the idle connection) is sent") {
        f.engine.close_idle_connections();
        f.engine.on(verb::post, "/containers/app/start", reply::no_content());
        run(f.ioc, f.client.containers().start("app"));
        auto starts = f.engine.requests_to(verb::post, "/containers/app/start");
        REQUIRE(starts.size() == 1);
        CHECK(starts[0].connection == 2);
    }
    f.check_recovers(&fixture::plain);
}

// A reply framed as the end of the connection: the head, then the body, then the engine closes.
reply unframed(reply r) {
    r.how = reply::framing::head_only;
    r.after = reply::then::close;
    return r;
}

TEST_CASE("a 2xx reply whose end is the connection closing (no length, not chunked) is a protocol_error") {
    fixture f;
    SUBCASE("an archive, cut at a member boundary, is not taken as complete") {
        f.engine.once(verb::get, "/containers/app/archive", unframed(fixture::archive_reply()));
        std::string got;
        auto sink = [&](std::span<const char> bytes) { got.append(bytes.data(), bytes.size()); };
        auto e = thrown<berth::protocol_error>([&] { run(f.ioc, f.client.archives().get("app", "/data", sink)); });
        CHECK(e.endpoint() == archive_endpoint);
        CHECK(contains(e.what(), "neither Content-Length nor chunked"));
        f.check_recovers(&fixture::download);
    }
    SUBCASE("a JSON reply") {
        f.engine.once(verb::get, "/containers/app/json", unframed(container_json("abc123")));
        auto e = thrown<berth::protocol_error>([&] { f.plain(); });
        CHECK(e.endpoint() == inspect_endpoint);
        f.check_recovers(&fixture::plain);
    }
    SUBCASE("an error reply so framed still carries the engine's status and message") {
        f.engine.once(verb::get, "/containers/app/json", unframed(reply::error(404, "No such container: app")));
        auto e = thrown<berth::not_found_error>([&] { f.plain(); });
        CHECK(e.message() == "No such container: app");
        f.check_recovers(&fixture::plain);
    }
}

TEST_CASE("an exec start answered without switching protocols is a protocol_error, not a wait forever") {
    fixture f;
    SUBCASE("200 with Content-Length: 0") { f.engine.once(verb::post, "/exec/e1/start", reply::no_content(200)); }
    SUBCASE("204") { f.engine.once(verb::post, "/exec/e1/start", reply::no_content(204)); }
    SUBCASE("200 with the output as a framed body") {
        f.engine.once(verb::post, "/exec/e1/start",
                      reply::streamed(200, {exec_frame(out, "hello\n")}, "application/vnd.docker.raw-stream"));
    }
    auto e = thrown<berth::protocol_error>([&] { f.exec(); });
    CHECK(e.endpoint() == exec_start_endpoint);
    CHECK(contains(e.what(), "instead of switching protocols (101)"));
    f.check_recovers(&fixture::exec);
}

TEST_CASE("interim 1xx replies before the real one are skipped") {
    fixture f;
    const std::string body = R"({"Id":"abc123","Name":"/app"})";
    f.engine.once(verb::get, "/containers/app/json",
                  reply::raw("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
                             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                             std::to_string(body.size()) + "\r\n\r\n" + body));
    f.plain();
    SUBCASE("but a 101 to a request that asked for no upgrade is a protocol_error") {
        f.engine.once(verb::get, "/containers/app/json", reply::upgrade({"raw bytes"}));
        auto e = thrown<berth::protocol_error>([&] { f.plain(); });
        CHECK(contains(e.what(), "switched protocols (101) unasked"));
    }
    f.check_recovers(&fixture::plain);
}

TEST_CASE("a number in a reply that does not fit its field is a protocol_error, not a wrong value") {
    fixture f;
    SUBCASE("exec inspect: ExitCode 1e400") {
        f.engine.on(verb::get, "/exec/e1/json", reply::json(200, R"({"ID":"e1","Running":false,"ExitCode":1e400})"));
        auto e = thrown<berth::protocol_error>([&] { f.exec(); });
        CHECK(contains(e.what(), "'ExitCode'"));
    }
    SUBCASE("container inspect: ExitCode 2^32") {
        f.engine.on(verb::get, "/containers/app/json",
                    reply::json(200, R"({"Id":"abc123","State":{"Running":false,"ExitCode":4294967296}})"));
        auto e = thrown<berth::protocol_error>([&] { f.plain(); });
        CHECK(contains(e.endpoint(), "/containers/app/json"));
    }
    SUBCASE("container wait: StatusCode 1e19") {
        f.engine.on(verb::post, "/containers/app/wait", reply::json(200, R"({"StatusCode":1e19})"));
        CHECK_THROWS_AS(run(f.ioc, f.client.containers().wait("app")), berth::protocol_error);
    }
    SUBCASE("archive stat: a mode above 32 bits") {
        auto stat = fixture::data_stat();
        stat.as_object()["mode"] = 4294967296ull;
        f.engine.on(verb::get, "/containers/app/archive", reply::archive(stat, {"tar"}));
        CHECK_THROWS_AS(f.download(), berth::protocol_error);
    }
}

// ------------------------------------------------------------------------------------------------------------
// Default time limits
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("connecting and waiting for a reply are limited by default") {
    berth::client_options defaults;
    CHECK(defaults.connect_timeout > 0s);
    CHECK(defaults.request_timeout >= 60s);  // generous: removing a large container takes a while
}

// A fixture whose limits are short, and an outer limit that only a request without a limit of its own reaches.
struct limited_fixture : fixture {
    static berth::client_options short_limits() {
        berth::client_options options;
        options.request_timeout = 50ms;
        options.connect_timeout = 50ms;
        return options;
    }
    limited_fixture() : fixture(short_limits()) {}

    // The text of the timed_out error `op` ends with.
    template <class T>
    std::string timed_out(asio::awaitable<T> op) {
        try {
            run(ioc, berth::with_timeout(std::move(op), 400ms, "the test's own limit"));
            FAIL_CHECK("no time limit ended it");
        } catch (const boost::system::system_error& e) {
            CHECK(e.code() == asio::error::timed_out);
            return e.what();
        }
        return {};
    }
};

TEST_CASE("a stalled engine is ended by the client's limits, with a typed error naming the engine and the request") {
    limited_fixture f;
    f.plain();
    SUBCASE("ping") {
        f.engine.once(verb::get, "/_ping", reply::stall());
        CHECK(f.timed_out(f.client.system().ping()) ==
              "mock://engine: GET /_ping: no complete reply within 50 ms" + timed_out_text);
    }
    SUBCASE("an ordinary request") {
        f.engine.once(verb::get, "/containers/app/json", reply::stall());
        CHECK(f.timed_out(f.client.containers().inspect("app")) ==
              "mock://engine: GET /v1.41/containers/app/json: no complete reply within 50 ms" + timed_out_text);
    }
    SUBCASE("an exec start whose reply head never comes") {
        f.engine.once(verb::post, "/exec/e1/start", reply::stall());
        output_log log;
        berth::exec_options options;
        options.cmd = {"true"};
        auto text = f.timed_out(f.client.execs().run("app", options, log));
        CHECK(text == "mock://engine: POST /v1.41/exec/e1/start: no reply head within 50 ms" + timed_out_text);
    }
    SUBCASE("an archive download whose reply head never comes") {
        f.engine.once(verb::get, "/containers/app/archive", reply::stall());
        auto sink = [](std::span<const char>) {};
        CHECK(contains(f.timed_out(f.client.archives().get("app", "/data", sink)),
                       "mock://engine: " + std::string(archive_endpoint) + ": no reply head within 50 ms"));
    }
    f.check_recovers(&fixture::plain);
}

TEST_CASE("a connect that never completes is ended by the connect_timeout, named as such") {
    limited_fixture f;
    f.plain();
    f.engine.close_idle_connections();
    f.engine.stall_connections();
    // Under the request's own limit the connect's shows when the request has none.
    auto text = message_of<boost::system::system_error>(
        [&] { run(f.ioc, f.client.core().call(verb::get, "/containers/app/json", {}, berth::time_limit{{}, true})); });
    CHECK(text == "mock://engine: GET /v1.41/containers/app/json: connect: no connection within 50 ms" + timed_out_text);
    f.engine.stall_connections(false);
    f.check_recovers(&fixture::plain);
}

TEST_CASE("requests whose reply legitimately comes late are not cut by the default limit") {
    limited_fixture f;
    f.plain();
    SUBCASE("a container wait has no limit of its own") {
        f.engine.once(verb::post, "/containers/app/wait", reply::stall());
        CHECK(f.timed_out(f.client.containers().wait("app")) == "the test's own limit" + timed_out_text);
    }
    SUBCASE("a container stop gets its grace period on top") {
        f.engine.once(verb::post, "/containers/app/stop", reply::stall());
        CHECK(f.timed_out(f.client.containers().stop("app", 3600)) == "the test's own limit" + timed_out_text);
    }
    SUBCASE("a stop without a grace period gets the engine's default (10 s) on top") {
        f.engine.once(verb::post, "/containers/app/stop", reply::stall());
        CHECK(f.timed_out(f.client.containers().stop("app")) == "the test's own limit" + timed_out_text);
    }
    SUBCASE("followed logs, whose head Podman sends only with the first output") {
        f.engine.once(verb::get, "/containers/app/logs", reply::stall());
        output_log log;
        berth::logs_options follow;
        follow.follow = true;
        CHECK(f.timed_out(f.client.containers().logs("app", log, follow)) == "the test's own limit" + timed_out_text);
    }
    SUBCASE("but logs that are not followed are limited") {
        f.engine.once(verb::get, "/containers/app/logs", reply::stall());
        output_log log;
        CHECK(contains(f.timed_out(f.client.containers().logs("app", log)), "no reply head within 50 ms"));
    }
    f.check_recovers(&fixture::plain);
}

TEST_CASE("a stop signal needs API 1.42: sent on a newer engine, refused before sending on an older one") {
    fixture f;
    f.engine.on(verb::post, "/containers/app/stop", reply::no_content());
    SUBCASE("API 1.41") {
        auto e = thrown<berth::unsupported_api_version_error>(
            [&] { run(f.ioc, f.client.containers().stop("app", 5, "SIGINT")); });
        CHECK(contains(e.what(), "needs Engine API 1.42"));
        CHECK(f.engine.requests_to(verb::post, "/containers/app/stop").empty());
    }
    SUBCASE("API 1.44") {
        f.engine.set_api_version("1.44", "1.24");
        run(f.ioc, f.client.containers().stop("app", 5, "SIGINT"));
        auto stops = f.engine.requests_to(verb::post, "/containers/app/stop");
        REQUIRE(stops.size() == 1);
        CHECK(stops[0].query("signal") == "SIGINT");
        CHECK(stops[0].query("t") == "5");
    }
}

TEST_CASE("an exec's console size needs API 1.42") {
    fixture f;
    output_log log;
    berth::exec_options options;
    options.cmd = {"stty", "size"};
    options.tty = true;
    options.console_size = std::pair{24u, 80u};
    SUBCASE("API 1.41: refused before anything is sent") {
        CHECK_THROWS_AS(run(f.ioc, f.client.execs().create("app", options)), berth::unsupported_api_version_error);
        CHECK(f.engine.requests_to(verb::post, "/containers/app/exec").empty());
    }
    SUBCASE("API 1.56: sent as ConsoleSize [height, width]") {
        f.engine.set_api_version("1.56", "1.40");
        CHECK(run(f.ioc, f.client.execs().create("app", options)) == "e1");
        auto body = f.engine.requests_to(verb::post, "/containers/app/exec").at(0).json();
        CHECK(body.at("ConsoleSize") == json::parse("[24,80]"));
    }
}

// ------------------------------------------------------------------------------------------------------------
// Pool health
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("sequential requests reuse one keep-alive connection") {
    fixture f;
    for (int i = 0; i < 10; ++i) f.plain();
    CHECK(f.engine.connections_opened() == 1);  // /version included
    CHECK(f.engine.requests().size() == 11);
    for (auto& r : f.engine.requests()) CHECK(r.connection == 1);
    CHECK(f.client.open_connections() == 1);
    CHECK(f.client.idle_connections() == 1);
}

TEST_CASE("concurrent requests each get a connection, which are all kept for reuse") {
    fixture f;
    f.plain();
    auto three = [](mock_client& c) -> asio::awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        co_await (c.containers().inspect("app") && c.containers().inspect("app") && c.containers().inspect("app"));
    };
    run(f.ioc, three(f.client));
    CHECK(f.engine.connections_opened() == 3);
    CHECK(f.client.idle_connections() == 3);
    for (int i = 0; i < 5; ++i) f.plain();
    CHECK(f.engine.connections_opened() == 3);
}

TEST_CASE("faults, time limits and cancellations leave no connection behind") {
    fixture f;
    auto sink = [](std::span<const char>) {};
    for (int round = 0; round < 4; ++round) {
        f.engine.once(verb::get, "/containers/app/json", reply::stall());
        CHECK_THROWS_AS(run(f.ioc, berth::with_timeout(f.client.containers().inspect("app"), 20ms)),
                        boost::system::system_error);
        f.engine.once(verb::get, "/containers/app/json", reply::stall());
        CHECK_THROWS_AS(run_cancelled_after(f.ioc, f.client.containers().inspect("app"), 5ms),
                        boost::system::system_error);
        f.engine.once(verb::get, "/containers/app/json", reply::garbage());
        CHECK_THROWS_AS(f.plain(), berth::protocol_error);
        f.engine.once(verb::get, "/containers/app/json", reply::error(500, "x"));
        CHECK_THROWS_AS(f.plain(), berth::engine_error);
        f.engine.once(verb::get, "/containers/app/archive", reply::reset_mid_body(200, "0123456789", 3));
        CHECK_THROWS_AS(run(f.ioc, f.client.archives().get("app", "/data", sink)), std::exception);
        f.plain();
        f.download();
        f.exec();
        f.check_no_leak();
    }
}

TEST_CASE("a reply body abandoned by its reader closes its connection instead of returning it to the pool") {
    fixture f;
    f.plain();
    struct sink_full : std::runtime_error {
        sink_full() : std::runtime_error("sink full") {}
    };
    auto refusing_sink = [](std::span<const char>) { throw sink_full(); };
    reply long_archive = fixture::archive_reply();  // the rest of the body never comes: it is not read to its end
    long_archive.declared_length = 1000;
    long_archive.then_stall();
    f.engine.once(verb::get, "/containers/app/archive", long_archive);
    CHECK_THROWS_AS(run(f.ioc, f.client.archives().get("app", "/data", refusing_sink)), sink_full);
    settle(f.ioc);
    CHECK(f.client.open_connections() == 0);
    CHECK(f.engine.connections_open() == 0);
    f.check_recovers(&fixture::plain);
    CHECK(f.engine.connections_opened() == 2);
}

TEST_CASE("an exec's upgraded connection is never returned to the pool") {
    fixture f;
    f.exec();
    f.exec();
    settle(f.ioc);
    // No request goes on a connection after an exec start on it.
    std::vector<std::size_t> hijacked;
    for (auto& r : f.engine.requests()) {
        for (auto c : hijacked) CHECK(r.connection != c);
        if (r.path == "/exec/e1/start") hijacked.push_back(r.connection);
    }
    CHECK(hijacked.size() == 2);
    f.check_no_leak();
}

TEST_CASE("with_timeout lets an operation's own error through at once") {
    SUBCASE("with_timeout around a call") {
        fixture f;
        f.engine.once(verb::get, "/containers/app/json", reply::error(404, "No such container: app"));
        auto e = thrown<berth::not_found_error>(
            [&] { run(f.ioc, berth::with_timeout(f.client.containers().inspect("app"), 3s)); });
        CHECK(e.message() == "No such container: app");
    }
    SUBCASE("the client's request_timeout") {
        berth::client_options options;
        options.request_timeout = 3s;
        fixture f(options);
        f.engine.on(verb::get, "/images/ghost/json", reply::error(404, "No such image: ghost"));
        CHECK_FALSE(run(f.ioc, f.client.images().exists("ghost")));
    }
    SUBCASE("a successful operation returns its value") {
        fixture f;
        CHECK(run(f.ioc, berth::with_timeout(f.client.containers().inspect("app"), 3s)).id == "abc123");
    }
}

// ------------------------------------------------------------------------------------------------------------
// Build progress
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("build progress lines reach the callback, lines split across chunks included") {
    fixture f;
    f.engine.on(verb::post, "/build",
                reply::chunked(200,
                               {R"({"stream":"Step 1/2 : FROM scratch\n"})" "\n" R"({"stream":" ---> Running)",
                                R"( in 1f\n"})" "\n",
                                R"({"aux":{"ID":"sha256:0d0e"}})" "\n" R"({"stream":"Successfully built 0d0e\n"})"},
                               "application/json"));
    std::string context = "ctx";
    berth::http::memory_source source{context};
    std::vector<std::string> lines;
    berth::build_progress progress = [&](std::string_view line) { lines.emplace_back(line); };
    berth::build_options options;
    auto image = run(f.ioc, f.client.images().build(source, options, progress));
    CHECK(image.id == "sha256:0d0e");
    CHECK(lines == std::vector<std::string>{"Step 1/2 : FROM scratch\n", " ---> Running in 1f\n",
                                            "Successfully built 0d0e\n"});
    CHECK(image.log.empty());  // streamed to the callback, not also kept (issue 13, item 6)
    CHECK(image.log_bytes_dropped == 68);
}

TEST_CASE("build progress arrives while the build is still running") {
    fixture f;
    f.engine.on(verb::post, "/build",
                reply::chunked(200, {R"({"stream":"Step 1/2 : FROM scratch\n"})" "\n"}, "application/json").then_stall());
    std::string context = "ctx";
    berth::http::memory_source source{context};
    std::vector<std::string> lines;
    berth::build_progress progress = [&](std::string_view line) { lines.emplace_back(line); };
    berth::build_options options;
    auto e = thrown<boost::system::system_error>(
        [&] { run(f.ioc, berth::with_timeout(f.client.images().build(source, options, progress), 200ms)); });
    CHECK(e.code() == asio::error::timed_out);
    CHECK(lines == std::vector<std::string>{"Step 1/2 : FROM scratch\n"});
}

TEST_CASE("an error line in the build output is an engine_error with code build_failed") {
    fixture f;
    f.engine.on(verb::post, "/build",
                reply::chunked(200,
                               {R"({"stream":"Step 1/2 : RUN false\n"})" "\n",
                                R"({"errorDetail":{"code":1,"message":"The command '/bin/sh -c false' returned a non-zero code: 1"},)"
                                R"("error":"The command '/bin/sh -c false' returned a non-zero code: 1"})" "\n"},
                               "application/json"));
    std::string context = "ctx";
    berth::http::memory_source source{context};
    std::vector<std::string> lines;
    berth::build_progress progress = [&](std::string_view line) { lines.emplace_back(line); };
    berth::build_options options;
    options.tag = "broken";
    auto e = thrown<berth::engine_error>([&] { run(f.ioc, f.client.images().build(source, options, progress)); });
    CHECK(e.code() == berth::engine_errc::build_failed);
    CHECK(e.message() == "The command '/bin/sh -c false' returned a non-zero code: 1");
    CHECK(contains(e.endpoint(), "POST /v1.41/build?t=broken"));
    CHECK(lines == std::vector<std::string>{"Step 1/2 : RUN false\n"});
    f.check_recovers(&fixture::plain);
}

TEST_CASE("a build output line that is not JSON is a protocol_error") {
    fixture f;
    f.engine.on(verb::post, "/build", reply::chunked(200, {"{\"stream\":\"ok\"}\nthis is not json\n"}, "application/json"));
    std::string context = "ctx";
    berth::http::memory_source source{context};
    berth::build_options options;
    auto e = thrown<berth::protocol_error>([&] { run(f.ioc, f.client.images().build(source, options)); });
    CHECK(contains(e.endpoint(), "POST /v1.41/build"));
}

// ------------------------------------------------------------------------------------------------------------
// Logs and exec output: demultiplexing
// ------------------------------------------------------------------------------------------------------------

namespace {
const std::string mixed_stream =
    exec_frame(out, "hello ") + exec_frame(err, "oops\n") + exec_frame(out, "") + exec_frame(out, "world\n");

// Collects the output and counts the slices it came in.
struct counting_log {
    berth::collected_output text;
    int calls = 0;
    void operator()(berth::output_stream s, std::string_view data) {
        ++calls;
        text(s, data);
    }
};

berth::collected_output read_logs(fixture& f) {
    berth::collected_output collected;
    run(f.ioc, f.client.containers().logs("app", collected));
    return collected;
}
} // namespace

TEST_CASE("logs: stdout and stderr are told apart") {
    fixture f;
    f.engine.add_container("app");
    f.engine.on(verb::get, "/containers/app/logs",
                reply::streamed(200, {mixed_stream}, "application/vnd.docker.raw-stream"));
    auto logs = read_logs(f);
    CHECK(logs.stdout_text == "hello world\n");
    CHECK(logs.stderr_text == "oops\n");
    CHECK(logs.merged == "hello oops\nworld\n");
    auto sent = f.engine.requests_to(verb::get, "/containers/app/logs");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].query("stdout") == "1");
    CHECK(sent[0].query("stderr") == "1");
    CHECK(sent[0].query("follow") == "0");
}

TEST_CASE("logs of a container with a tty are raw text") {
    fixture f;
    f.engine.add_container("app", true);
    f.engine.on(verb::get, "/containers/app/logs", reply::streamed(200, {"line 1\r\n", "line 2\r\n"}, "text/plain"));
    auto logs = read_logs(f);
    CHECK(logs.stdout_text == "line 1\r\nline 2\r\n");
    CHECK(logs.stderr_text.empty());
}

TEST_CASE("logs: frames split across reads at every byte position") {
    fixture f;
    f.engine.add_container("app");
    for (std::size_t at = 0; at <= mixed_stream.size(); ++at) {
        CAPTURE(at);
        f.engine.on(verb::get, "/containers/app/logs",
                    reply::streamed(200, berth::testing::split_at(mixed_stream, {at}), "application/vnd.docker.raw-stream"));
        auto logs = read_logs(f);
        CHECK(logs.stdout_text == "hello world\n");
        CHECK(logs.stderr_text == "oops\n");
    }
    std::vector<std::size_t> every_byte;
    for (std::size_t at = 1; at < mixed_stream.size(); ++at) every_byte.push_back(at);
    f.engine.on(verb::get, "/containers/app/logs",
                reply::chunked(200, berth::testing::split_at(mixed_stream, every_byte), "application/vnd.docker.raw-stream"));
    counting_log logs;
    run(f.ioc, f.client.containers().logs("app", logs));
    CHECK(logs.text.merged == "hello oops\nworld\n");
    CHECK(logs.calls > 3);  // the payloads did arrive in several reads, not one per frame
}

TEST_CASE("exec output: frames split across reads at every byte position") {
    fixture f;
    for (std::size_t at = 0; at <= mixed_stream.size(); ++at) {
        CAPTURE(at);
        std::string id = "s" + std::to_string(at);
        f.engine.add_exec("app", id, berth::testing::split_at(mixed_stream, {at}), 0);
        output_log log;
        berth::exec_options options;
        options.cmd = {"run"};
        CHECK(run(f.ioc, f.client.execs().run("app", options, log)) == 0);
        CHECK(log.stdout_text == "hello world\n");
        CHECK(log.stderr_text == "oops\n");
    }
    std::vector<std::size_t> every_byte;
    for (std::size_t at = 1; at < mixed_stream.size(); ++at) every_byte.push_back(at);
    f.engine.add_exec("app", "bytes", berth::testing::split_at(mixed_stream, every_byte), 0);
    counting_log log;
    berth::exec_options options;
    options.cmd = {"run"};
    run(f.ioc, f.client.execs().run("app", options, log));
    CHECK(log.text.stdout_text == "hello world\n");
    CHECK(log.text.stderr_text == "oops\n");
    CHECK(log.calls > 3);  // the payloads did arrive in several reads, not one per frame
}

TEST_CASE("a frame header with a bad stream byte is a protocol_error naming the endpoint") {
    fixture f;
    std::string bad = exec_frame(out, "fine\n") + exec_frame(out, "bad");
    bad[bad.size() - 11] = 7;  // the second frame's stream byte
    SUBCASE("logs") {
        f.engine.add_container("app");
        f.engine.on(verb::get, "/containers/app/logs", reply::streamed(200, {bad}, "application/vnd.docker.raw-stream"));
        auto e = thrown<berth::protocol_error>([&] { read_logs(f); });
        CHECK(contains(e.endpoint(), "GET /v1.41/containers/app/logs?"));
        CHECK(contains(e.what(), "stream byte 7"));
    }
    SUBCASE("exec") {
        f.engine.once(verb::post, "/exec/e1/start", reply::upgrade({bad}));
        auto e = thrown<berth::protocol_error>([&] { f.exec(); });
        CHECK(e.endpoint() == exec_start_endpoint);
        CHECK(contains(e.what(), "stream byte 7"));
        f.check_recovers(&fixture::exec);
    }
}

TEST_CASE("a stream that ends inside a frame is a protocol_error") {
    fixture f;
    std::string cut = exec_frame(out, "complete\n") + exec_frame(err, "incomplete").substr(0, 12);
    SUBCASE("logs, inside a payload") {
        f.engine.add_container("app");
        f.engine.on(verb::get, "/containers/app/logs", reply::streamed(200, {cut}, "application/vnd.docker.raw-stream"));
        auto e = thrown<berth::protocol_error>([&] { read_logs(f); });
        CHECK(contains(e.endpoint(), "GET /v1.41/containers/app/logs?"));
        CHECK(contains(e.what(), "inside a frame"));
    }
    SUBCASE("logs, inside a header") {
        f.engine.add_container("app");
        f.engine.on(verb::get, "/containers/app/logs",
                    reply::streamed(200, {exec_frame(out, "x") + "\x01\0\0"}, "application/vnd.docker.raw-stream"));
        CHECK_THROWS_AS(read_logs(f), berth::protocol_error);
    }
    SUBCASE("exec") {
        f.engine.once(verb::post, "/exec/e1/start", reply::upgrade({cut}));
        output_log log;
        berth::exec_options options;
        options.cmd = {"x"};
        auto e = thrown<berth::protocol_error>([&] { run(f.ioc, f.client.execs().run("app", options, log)); });
        CHECK(e.endpoint() == exec_start_endpoint);
        CHECK(log.stdout_text == "complete\n");
    }
}

TEST_CASE("an exec with a tty streams raw output to stdout") {
    fixture f;
    f.engine.add_exec("app", "t1", {"raw \x01 bytes\r\n"}, 0);
    output_log log;
    berth::exec_options options;
    options.cmd = {"sh"};
    options.tty = true;
    CHECK(run(f.ioc, f.client.execs().run("app", options, log)) == 0);
    CHECK(log.stdout_text == "raw \x01 bytes\r\n");
    auto starts = f.engine.requests_to(verb::post, "/exec/t1/start");
    REQUIRE(starts.size() == 1);
    CHECK(starts[0].json() == json::parse(R"({"Detach":false,"Tty":true})"));
}

TEST_CASE("an exec whose exit code the engine records late is asked again") {
    fixture f;
    f.engine.on_sequence(verb::get, "/exec/e1/json",
                         {mock_engine::exec_state("e1", "app", true, 0), mock_engine::exec_state("e1", "app", true, 0),
                          mock_engine::exec_state("e1", "app", false, 3)});
    f.exec();
    CHECK(f.engine.requests_to(verb::get, "/exec/e1/json").size() == 3);
}

// ------------------------------------------------------------------------------------------------------------
// Podman
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("Podman: an exec whose upgraded stream the engine leaves open finishes once the exec has exited") {
    fixture f;
    f.engine.answer_as_podman();
    f.engine.on(verb::post, "/exec/e1/start",
                reply::upgrade({exec_frame(out, "hello\n"), exec_frame(err, "warning\n")}).then_stall());
    f.engine.on_sequence(verb::get, "/exec/e1/json",
                         {mock_engine::exec_state("e1", "app", true, 0), mock_engine::exec_state("e1", "app", false, 3)});
    f.exec();
    f.check_no_leak();  // the upgraded connection, left open by the engine, was closed by the client
}

TEST_CASE("Podman: an exec whose stream the engine closes finishes at once") {
    fixture f;
    f.engine.answer_as_podman();
    f.exec();
}

TEST_CASE("Podman: a broken exec stream is an error even though the exec then exits") {
    fixture f;
    f.engine.answer_as_podman();
    std::string bad = exec_frame(out, "fine\n") + exec_frame(out, "bad");
    bad[bad.size() - 11] = 9;
    f.engine.on(verb::post, "/exec/e1/start", reply::upgrade({bad}).then_stall());
    auto e = thrown<berth::protocol_error>([&] { f.exec(); });
    CHECK(e.endpoint() == exec_start_endpoint);
    CHECK(contains(e.what(), "stream byte 9"));
}

} // TEST_SUITE

// ---------------------------------------------------------------------------------------------------------------
// The evaluation layer against the mock engine: what only a mock can show (the exact GPU request on each engine
// kind without a GPU machine, an engine that lies about archives). Each feature is also tested on real engines.
namespace {

using mock_container = berth::basic_container<mock_engine>;

struct eval_fixture {
    asio::io_context ioc;
    mock_engine engine{ioc.get_executor()};
    mock_client client{engine};
    std::filesystem::path dir;
    std::shared_ptr<berth::logger> log;

    eval_fixture() {
        std::string templ = (std::filesystem::temp_directory_path() / "berth-mock-XXXXXX").string();
        dir = ::mkdtemp(templ.data());
        log = std::make_shared<berth::logger>(dir / "eval.log");
        engine.on(verb::get, "/images/app/json", reply::json(200, R"({"Id":"sha256:feed","RepoTags":["app:latest"]})"));
        engine.on(verb::delete_, "/containers/app-container", reply::error(404, "No such container: app-container"));
        engine.on(verb::post, "/containers/create", reply::json(201, R"({"Id":"c1","Warnings":[]})"));
        engine.on(verb::post, "/containers/c1/start", reply::no_content());
        engine.on(verb::delete_, "/containers/c1", reply::no_content());
    }
    ~eval_fixture() {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    berth::build_container_options genesis() const {
        berth::build_container_options o;
        o.repo_path = dir.string();
        o.domains = {"search_arena", "genesis_humanoid"};
        o.log = log;
        return o;
    }
    std::string log_text() const {
        std::ifstream in(dir / "eval.log");
        return std::string(std::istreambuf_iterator<char>(in), {});
    }
    json::object create_body(std::size_t i = 0) {
        return json::parse(engine.requests_to(verb::post, "/containers/create").at(i).body).as_object();
    }
};

} // namespace

TEST_SUITE("eval (mock engine)") {
    TEST_CASE("build_container asks Docker for all GPUs with DeviceRequests") {
        eval_fixture f;
        auto box = run(f.ioc, berth::build_container(f.client, f.genesis()));
        REQUIRE(box.has_value());
        CHECK(box->id == "c1");
        CHECK(f.engine.requests_to(verb::post, "/build").empty());  // the tag exists: no build
        auto body = f.create_body();
        auto& host = body.at("HostConfig").as_object();
        CHECK(json::serialize(host.at("DeviceRequests")) ==
              R"([{"Driver":"","Count":-1,"DeviceIDs":[],"Capabilities":[["gpu"]],"Options":{}}])");
        CHECK_FALSE(host.contains("Devices"));
        CHECK(json::serialize(body.at("Cmd")) == R"(["tail","-f","/dev/null"])");
        CHECK(body.at("Tty").as_bool());
        CHECK(body.at("OpenStdin").as_bool());
        CHECK(host.at("Init").as_bool());
        auto binds = json::serialize(host.at("Binds"));
        CHECK(binds == "[\"" + std::filesystem::absolute(f.dir).lexically_normal().string() + ":/hyperagents:rw\"]");
        CHECK_FALSE(host.contains("NetworkMode"));  // unset: the engine's default network
        CHECK(f.engine.requests_to(verb::post, "/containers/create").at(0).query("name") == "app-container");
    }

    TEST_CASE("build_container asks Podman for the CDI device nvidia.com/gpu=all") {
        eval_fixture f;
        f.engine.answer_as_podman();
        auto box = run(f.ioc, berth::build_container(f.client, f.genesis()));
        REQUIRE(box.has_value());
        auto body = f.create_body();
        auto& host = body.at("HostConfig").as_object();
        CHECK(json::serialize(host.at("Devices")) ==
              R"([{"PathOnHost":"nvidia.com/gpu=all","PathInContainer":"nvidia.com/gpu=all","CgroupPermissions":"rwm"}])");
        CHECK_FALSE(host.contains("DeviceRequests"));
    }

    TEST_CASE("no genesis domain: no GPU request at all") {
        eval_fixture f;
        auto options = f.genesis();
        options.domains = {"search_arena", "polyglot"};
        REQUIRE(run(f.ioc, berth::build_container(f.client, options)).has_value());
        auto body = f.create_body();
        auto& host = body.at("HostConfig").as_object();
        CHECK_FALSE(host.contains("DeviceRequests"));
        CHECK_FALSE(host.contains("Devices"));
    }

    TEST_CASE("a refused GPU request falls back without GPU, or fails when GPUs are required") {
        const char* refusal = "could not select device driver \"\" with capabilities: [[gpu]]";
        {
            eval_fixture f;
            f.engine.once(verb::post, "/containers/c1/start", reply::error(500, refusal));
            auto box = run(f.ioc, berth::build_container(f.client, f.genesis()));
            REQUIRE(box.has_value());
            REQUIRE(f.engine.requests_to(verb::post, "/containers/create").size() == 2);
            CHECK(f.create_body(0).at("HostConfig").as_object().contains("DeviceRequests"));
            CHECK_FALSE(f.create_body(1).at("HostConfig").as_object().contains("DeviceRequests"));
            CHECK(f.engine.requests_to(verb::delete_, "/containers/c1").size() == 1);  // the half-made one
            CHECK(f.log_text().find(std::string("WARNING - GPU request refused by the engine, starting without GPU: ") +
                                    refusal) != std::string::npos);
        }
        {
            eval_fixture f;
            f.engine.once(verb::post, "/containers/c1/start", reply::error(500, refusal));
            auto options = f.genesis();
            options.gpu_required = true;
            CHECK_FALSE(run(f.ioc, berth::build_container(f.client, options)).has_value());
            CHECK(f.engine.requests_to(verb::post, "/containers/create").size() == 1);
            CHECK(f.engine.requests_to(verb::delete_, "/containers/c1").size() == 1);  // nothing left behind
            CHECK(f.log_text().find(refusal) != std::string::npos);
        }
    }

    TEST_CASE("a cancelled build_container propagates the cancellation and leaves no container") {
        eval_fixture f;
        f.engine.once(verb::post, "/containers/c1/start", reply::stall());
        auto e = thrown<boost::system::system_error>(
            [&] { run(f.ioc, berth::with_timeout(berth::build_container(f.client, f.genesis()), 200ms)); });
        CHECK(e.code() == asio::error::timed_out);
        settle(f.ioc);
        CHECK(f.log_text().find("failed") == std::string::npos);  // not reported as a failure
        CHECK(f.engine.requests_to(verb::delete_, "/containers/c1").size() == 1);  // the half-made one removed
    }

    TEST_CASE("build_container: a process list the engine cannot give ends the wait for the init, not the build") {
        // What Podman 4.3's compat top answers when ps cannot run in the container: 200 and an empty body. Podman
        // is asked for psgo's "pid" descriptor (no ps needed), so only an engine that still fails shows this.
        for (bool podman : {false, true}) {
            CAPTURE(podman);
            eval_fixture f;
            if (podman) f.engine.answer_as_podman();
            f.engine.on(verb::get, "/containers/c1/top", reply::chunked(200, {}, "application/json"));
            auto options = f.genesis();
            options.domains = {};
            auto box = run(f.ioc, berth::build_container(f.client, options));
            REQUIRE(box.has_value());
            auto asked = f.engine.requests_to(verb::get, "/containers/c1/top");
            REQUIRE(asked.size() == 1);  // "cannot tell" stops the wait at once
            CHECK((asked[0].target.find("ps_args=pid") != std::string::npos) == podman);
            CHECK(f.log_text().find("ERROR") == std::string::npos);
        }
    }

    TEST_CASE("copy_from_container for a non-root owner: a 0500 tree moves into place, merges, and is cleaned up") {
        // Root ignores modes, and the real-engine tests run as root; only an unprivileged owner shows whether a
        // directory without owner write can be moved to another parent or emptied. As root, a child process
        // switches to nobody (65534) for the copies.
        std::string tar;
        {
            berth::tar::writer w([&](std::span<const char> b) { tar.append(b.data(), b.size()); });
            auto add = [&](std::string name, berth::tar::entry_type type, std::uint32_t mode, std::string content) {
                berth::tar::entry e;
                e.name = std::move(name);
                e.type = type;
                e.mode = mode;
                e.size = content.size();
                e.mtime = 1'600'000'000;
                w.add(e);
                w.write(content);
            };
            add("x/", berth::tar::entry_type::directory, 0500, "");
            add("x/sub/", berth::tar::entry_type::directory, 0500, "");
            add("x/sub/f", berth::tar::entry_type::file, 0600, "data");
            add("x/g", berth::tar::entry_type::file, 0644, "g");
            w.finish();
        }
        std::string templ = (std::filesystem::temp_directory_path() / "berth-nonroot-XXXXXX").string();
        REQUIRE(::mkdtemp(templ.data()) != nullptr);
        const std::filesystem::path dir = templ;
        const bool as_root = ::geteuid() == 0;
        if (as_root) REQUIRE(::chown(dir.c_str(), 65534, 65534) == 0);
        // What went wrong, as text (empty: all well); run in the child when switching users.
        auto copies = [&]() -> std::string {
            std::string wrong;
            auto mode_of = [](const std::filesystem::path& p) {
                struct stat st{};
                return ::lstat(p.c_str(), &st) == 0 ? static_cast<unsigned>(st.st_mode & 07777) : 010000u;
            };
            auto expect = [&](bool ok, const std::string& what) {
                if (!ok) wrong += what + "; ";
            };
            try {
                asio::io_context ioc;
                mock_engine engine{ioc.get_executor()};
                mock_client client{engine};
                engine.on(verb::get, "/containers/c1/archive",
                          reply::archive(json::value{{"name", "x"}, {"size", 0}, {"mode", 2147483648u + 0500u}}, {tar}));
                mock_container box{&client, "c1", "box"};
                run(ioc, berth::copy_from_container(box, "/x", dir / "fresh/x", false));
                expect(mode_of(dir / "fresh/x") == 0500 && mode_of(dir / "fresh/x/sub") == 0500, "fresh: modes");
                expect(mode_of(dir / "fresh/x/sub/f") == 0600 && mode_of(dir / "fresh/x/g") == 0644, "fresh: file modes");
                std::filesystem::create_directories(dir / "merge/x");
                std::ofstream(dir / "merge/x/other") << "mine";
                run(ioc, berth::copy_from_container(box, "/x", dir / "merge/x", false));
                expect(mode_of(dir / "merge/x") == 0755 && mode_of(dir / "merge/x/sub") == 0500, "merge: modes");
                expect(std::filesystem::exists(dir / "merge/x/sub/f") && std::filesystem::exists(dir / "merge/x/other"),
                       "merge: contents");
                std::ofstream(dir / "file") << "a file where the directory would go";
                try {
                    run(ioc, berth::copy_from_container(box, "/x", dir / "file", false));
                    wrong += "conflict: no error; ";
                } catch (const berth::tar::error&) {
                }
                for (auto sub : {"", "fresh", "merge"})
                    for (auto& e : std::filesystem::directory_iterator(dir / sub))
                        expect(e.path().filename().string().rfind(".berth-", 0) != 0, "staging left: " + e.path().string());
            } catch (const std::exception& e) {
                wrong += std::string("threw: ") + e.what();
            }
            return wrong;
        };
        std::string wrong;
        if (!as_root) {
            wrong = copies();
        } else {
            int fds[2];
            REQUIRE(::pipe(fds) == 0);
            pid_t child = ::fork();
            REQUIRE(child >= 0);
            if (child == 0) {
                ::close(fds[0]);
                std::string out = ::setgid(65534) == 0 && ::setuid(65534) == 0 ? copies() : "cannot become nobody";
                [[maybe_unused]] auto n = ::write(fds[1], out.data(), out.size());
                ::_exit(0);
            }
            ::close(fds[1]);
            char buf[4096];
            for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) wrong.append(buf, static_cast<std::size_t>(n));
            ::close(fds[0]);
            int status = 0;
            ::waitpid(child, &status, 0);
            CHECK(WIFEXITED(status));
        }
        CHECK(wrong == "");
        std::error_code ec;
        for (auto& e : std::filesystem::recursive_directory_iterator(dir, ec))
            if (e.is_directory(ec) && !e.is_symlink(ec))
                std::filesystem::permissions(e.path(), std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
        std::filesystem::remove_all(dir, ec);
    }

    TEST_CASE("copy_from_container refuses an archive that escapes, and writes nothing outside") {
        eval_fixture f;
        mock_container box{&f.client, "c1", "box"};
        auto outside_before = std::distance(std::filesystem::directory_iterator(f.dir), {});
        // the engine names the item "../evil"
        f.engine.once(verb::get, "/containers/c1/archive", reply::archive(json::value{{"name", "../evil"}, {"size", 1}, {"mode", 420}}, {std::string(1024, '\0')}));
        CHECK_THROWS_AS(run(f.ioc, berth::copy_from_container(box, "/x", f.dir / "out/evil", false)), berth::protocol_error);
        // a member that climbs out of the copied item
        berth::tar::entry e;
        e.name = "x/../../../escaped.txt";
        e.size = 4;
        std::string tar;
        berth::tar::encode_header(e, tar);
        tar += "evil";
        tar.append(berth::tar::padding_after(4) + berth::tar::end_of_archive_size, '\0');
        f.engine.once(verb::get, "/containers/c1/archive", reply::archive(json::value{{"name", "x"}, {"size", 0}, {"mode", 2147484141}}, {tar}));
        auto error = thrown<berth::tar::error>([&] { run(f.ioc, berth::copy_from_container(box, "/x", f.dir / "out/x", false)); });
        CHECK(error.code() == berth::tar::errc::unsafe_path);
        CHECK(error.entry_name() == "x/../../../escaped.txt");
        CHECK_FALSE(std::filesystem::exists(f.dir / "escaped.txt"));
        CHECK_FALSE(std::filesystem::exists(f.dir.parent_path() / "escaped.txt"));
        CHECK_FALSE(std::filesystem::exists(f.dir / "out/x"));
        for (auto& entry : std::filesystem::directory_iterator(f.dir / "out"))  // no staging directory left
            CHECK(entry.path().filename().string().rfind(".berth-", 0) != 0);
        CHECK(std::distance(std::filesystem::directory_iterator(f.dir), {}) == outside_before + 1);  // just out/
    }

    TEST_CASE("an engine error frame (stream 3) in exec output is an engine_error") {
        eval_fixture f;
        f.engine.add_exec("c1", "e1", {exec_frame(out, "partial\n"), exec_frame(berth::output_stream::system_error, "exec failed: oci runtime error")}, 0);
        mock_container box{&f.client, "c1", "box"};
        auto error = thrown<berth::engine_error>([&] { run(f.ioc, berth::exec(box, berth::argv("true"))); });
        CHECK(std::string(error.what()).find("oci runtime error") != std::string::npos);
    }
}

// ------------------------------------------------------------------------------------------------------------
// The evaluation layer against the mock engine, also for what a real engine cannot be made to do on demand: an exec
// stream cut by an engine that goes away, a name taken between the removal and the create, and the exact requests
// behind a copy out of a symlink.
// ------------------------------------------------------------------------------------------------------------

namespace eval_on_mock {
namespace fs = std::filesystem;
using mock_container = berth::basic_container<mock_engine>;

struct fixture {
    asio::io_context ioc;
    mock_engine engine{ioc.get_executor()};
    mock_client client{engine};
    fs::path dir;

    fixture() {
        std::string templ = (fs::temp_directory_path() / "berth-h3-mock-XXXXXX").string();
        dir = ::mkdtemp(templ.data());
    }
    ~fixture() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    // Runs op to completion on the fixture's io_context, where the mock engine answers too (and keeps idle
    // connections waiting, so the context never runs out of work: run until op is done, 5 s at most).
    template <class T>
    T run(asio::awaitable<T> op) {
        auto f = asio::co_spawn(ioc, std::move(op), asio::use_future);
        ioc.restart();
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready && ioc.run_one_until(deadline) > 0) {}
        REQUIRE(f.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
        return f.get();
    }
};
} // namespace eval_on_mock

TEST_SUITE("eval on the mock engine: faults a real engine cannot be made to show") {
    TEST_CASE("exec: an output stream cut inside a frame is exec_interrupted, with the output before it") {
        eval_on_mock::fixture f;
        std::string second = exec_frame(berth::output_stream::stdout_, "never complete\n");
        f.engine.add_exec("c1", "e1", {exec_frame(berth::output_stream::stdout_, "first\n"),
                                       exec_frame(berth::output_stream::stderr_, "warn\n"), second.substr(0, 11)}, 0);
        eval_on_mock::mock_container box{&f.client, "c1", "box"};
        berth::run_options quiet;
        quiet.verbose = false;
        try {
            f.run(berth::exec(box, berth::argv("sh", "-c", "work"), quiet));
            FAIL("a cut stream was taken as the end of the output");
        } catch (const berth::exec_interrupted& e) {
            CHECK(e.code() == boost::system::errc::protocol_error);
            // everything that arrived, the start of the cut frame's payload included
            CHECK(e.partial().stdout_text == "first\nnev");
            CHECK(e.partial().stderr_text == "warn\n");
            CHECK(e.partial().output == "first\nwarn\nnev");
            CHECK_FALSE(e.partial().exit_code.has_value());
            CHECK_THROWS_AS(std::rethrow_exception(e.cause()), berth::protocol_error);
            CHECK(std::string(e.what()).find("inside a frame") != std::string::npos);
        }
    }

    TEST_CASE("build_container: a name taken between the removal and the create is name_conflict") {
        eval_on_mock::fixture f;
        f.engine.on(verb::get, "/images/app/json", reply::json(200, R"({"Id":"sha256:feed","RepoTags":["app:latest"]})"));
        f.engine.on(verb::delete_, "/containers/app-container", reply::error(404, "No such container: app-container"));
        f.engine.on(verb::post, "/containers/create",
                    reply::error(409, "Conflict. The container name \"/app-container\" is already in use"));
        berth::build_container_options options;
        options.repo_path = f.dir.string();
        options.log = std::make_shared<berth::logger>(f.dir / "build.log");
        auto result = f.run(berth::build_container(f.client, options));
        CHECK_FALSE(result.has_value());
        REQUIRE(result.failure() != nullptr);
        CHECK(result.failure()->reason == berth::build_failure_reason::name_conflict);
        CHECK(result.failure()->message.find("already in use") != std::string::npos);
        // the create was answered: nothing is searched for or removed by label
        CHECK(f.engine.requests_to(verb::get, "/containers/json").empty());
        // the container it asked for carries this call's token
        auto body = boost::json::parse(f.engine.requests_to(verb::post, "/containers/create").at(0).body).as_object();
        auto token = body.at("Labels").as_object().at("berth.build-call").as_string();
        CHECK(token.size() == 32);
    }

    TEST_CASE("copy_from_container of a symlink: the link's archive is not read, its resolved target is fetched") {
        eval_on_mock::fixture f;
        eval_on_mock::mock_container box{&f.client, "c1", "box"};
        std::string link_tar;
        berth::tar::entry link;
        link.name = "latest";
        link.type = berth::tar::entry_type::symlink;
        link.linkname = "/runs/7";
        berth::tar::encode_header(link, link_tar);
        link_tar.append(berth::tar::end_of_archive_size, '\0');
        std::string dir_tar;
        berth::tar::entry d;
        d.name = "7";
        d.type = berth::tar::entry_type::directory;
        d.mode = 0755;
        berth::tar::encode_header(d, dir_tar);
        berth::tar::entry file;
        file.name = "7/report.json";
        file.size = 3;
        file.mode = 0644;
        berth::tar::encode_header(file, dir_tar);
        dir_tar += "{}\n";
        dir_tar.append(berth::tar::padding_after(3) + berth::tar::end_of_archive_size, '\0');
        f.engine.on_sequence(verb::get, "/containers/c1/archive",
                             {reply::archive(boost::json::value{{"name", "latest"}, {"size", 7}, {"mode", 134218239},
                                                                {"linkTarget", "/runs/7"}}, {link_tar}),
                              reply::archive(boost::json::value{{"name", "7"}, {"size", 4096}, {"mode", 2147484141}},
                                             {dir_tar})});
        auto result = f.run(berth::copy_from_container(box, "/runs/latest", f.dir / "out", false));
        CHECK(result.skipped_links.empty());
        auto gets = f.engine.requests_to(verb::get, "/containers/c1/archive");
        REQUIRE(gets.size() == 2);
        CHECK(gets[0].query("path") == "/runs/latest");
        CHECK(gets[1].query("path") == "/runs/7");
        CHECK_FALSE(std::filesystem::is_symlink(f.dir / "out"));
        std::ifstream in(f.dir / "out/report.json");
        CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "{}\n");
    }
}

// Creates whose outcome is unknown, and what cleanup_container reports: against an engine that keeps its containers
// (by name, with their labels), so what a call leaves behind is seen, and a second create of a name still held is
// refused as a real engine refuses it.
namespace unknown_outcome {

using berth::testing::recorded_request;
using berth::testing::request_handler;

struct kept_container {
    std::string id, name;
    json::object labels;
};

struct container_keeping_engine {
    eval_on_mock::fixture f;
    std::vector<kept_container> containers;
    int made = 0;
    int creates_failing_after_making = 0;  // so many creates make their container, then answer 500
    std::optional<reply> refusal;          // creates are refused with this, nothing made

    container_keeping_engine() {
        f.engine.on(verb::get, "/images/app/json", reply::json(200, R"({"Id":"sha256:feed","RepoTags":["app:latest"]})"));
        f.engine.on(verb::post, "/containers/*", request_handler([this](const recorded_request& r) {
            return find(r.path.substr(12, r.path.rfind('/') - 12)) ? reply::no_content() : reply::error(404, "No such container");
        }));
        f.engine.on(verb::delete_, "/containers/*", request_handler([this](const recorded_request& r) {
            auto* c = find(r.path.substr(12));
            if (c == nullptr) return reply::error(404, "No such container: " + r.path.substr(12));
            containers.erase(containers.begin() + (c - containers.data()));
            return reply::no_content();
        }));
        f.engine.on(verb::get, "/containers/json", request_handler([this](const recorded_request& r) {
            auto filters = json::parse(r.query("filters").value_or("{}")).as_object();
            json::array out;
            for (auto& c : containers) {
                bool all = true;
                for (auto& want : filters["label"].as_array()) {
                    std::string kv(want.as_string());
                    auto eq = kv.find('=');
                    auto* v = c.labels.if_contains(kv.substr(0, eq));
                    all = all && v != nullptr && (eq == std::string::npos || v->as_string() == kv.substr(eq + 1));
                }
                if (all) out.push_back(json::object{{"Id", c.id}, {"Names", {"/" + c.name}}, {"Labels", c.labels}});
            }
            return reply::json(200, json::value(out));
        }));
        f.engine.on(verb::post, "/containers/create", request_handler([this](const recorded_request& r) {
            if (refusal) return *refusal;
            auto name = r.query("name").value_or("");
            if (find(name)) return reply::error(409, "Conflict. The container name \"/" + name + "\" is already in use");
            auto body = json::parse(r.body).as_object();
            containers.push_back({"c" + std::to_string(++made), name, body["Labels"].as_object()});
            if (creates_failing_after_making > 0) {
                --creates_failing_after_making;
                return reply::error(500, "mock engine: failed after making the container");
            }
            return reply::json(201, json::value{{"Id", containers.back().id}, {"Warnings", json::array()}});
        }));
    }
    kept_container* find(const std::string& id_or_name) {
        for (auto& c : containers)
            if (c.id == id_or_name || c.name == id_or_name) return &c;
        return nullptr;
    }
    berth::build_container_options options(bool gpu = false) const {
        berth::build_container_options o;
        o.repo_path = f.dir.string();
        o.verbose = false;
        o.log = std::make_shared<berth::logger>(f.dir / "build.log");
        if (gpu) o.domains = {"genesis"};
        return o;
    }
    // The token of the n-th create's label, and whether a lookup by that label was made.
    std::string token(std::size_t n = 0) const {
        auto body = json::parse(f.engine.requests_to(verb::post, "/containers/create").at(n).body).as_object();
        return std::string(body.at("Labels").as_object().at("berth.build-call").as_string());
    }
    std::size_t lookups_of(const std::string& token) const {
        std::size_t n = 0;
        for (auto& r : f.engine.requests_to(verb::get, "/containers/json"))
            n += r.query("filters").value_or("").find("berth.build-call=" + token) != std::string::npos;
        return n;
    }
};

} // namespace unknown_outcome

TEST_SUITE("creates whose outcome is unknown (mock engine)") {
    TEST_CASE("build_container: a create answered 500 after the container was made: it is found by the call's label and removed") {
        unknown_outcome::container_keeping_engine e;
        e.creates_failing_after_making = 1;
        auto result = e.f.run(berth::build_container(e.f.client, e.options()));
        REQUIRE_FALSE(result.has_value());
        CHECK(result.failure()->reason == berth::build_failure_reason::engine_refused);
        CHECK(result.failure()->message.find("failed after making the container") != std::string::npos);
        CHECK(e.lookups_of(e.token()) >= 1);
        CHECK(e.f.engine.requests_to(verb::delete_, "/containers/c1").size() == 1);
        CHECK(e.containers.empty());  // nothing left behind
    }

    TEST_CASE("build_container: a GPU create answered 500 after making the container: reconciled before the retry without GPU") {
        unknown_outcome::container_keeping_engine e;
        e.creates_failing_after_making = 1;
        auto result = e.f.run(berth::build_container(e.f.client, e.options(true)));
        REQUIRE_MESSAGE(result.has_value(), (result.failure() ? result.failure()->message : ""));
        CHECK(result->id == "c2");
        REQUIRE(e.f.engine.requests_to(verb::post, "/containers/create").size() == 2);
        CHECK(e.lookups_of(e.token(0)) >= 1);
        REQUIRE(e.containers.size() == 1);  // the one the GPU create made is gone
        CHECK(e.containers[0].id == "c2");
    }

    TEST_CASE("build_container: a create refused (400, 409, Podman's 500 for a name in use) is not looked up by label") {
        for (int kind = 0; kind < 3; ++kind) {
            CAPTURE(kind);
            unknown_outcome::container_keeping_engine e;
            if (kind == 0) e.refusal = reply::error(400, "invalid reference format");
            if (kind == 1) e.refusal = reply::error(409, "Conflict. The container name \"/app-container\" is already in use");
            if (kind == 2) {
                e.f.engine.answer_as_podman();
                e.refusal = reply::error(500, "the container name \"app-container\" is already in use by 1234");
            }
            auto result = e.f.run(berth::build_container(e.f.client, e.options()));
            REQUIRE_FALSE(result.has_value());
            CHECK(result.failure()->reason == (kind == 0 ? berth::build_failure_reason::engine_refused
                                                         : berth::build_failure_reason::name_conflict));
            CHECK(e.f.engine.requests_to(verb::get, "/containers/json").empty());
            CHECK(e.f.engine.requests_to(verb::delete_, "/containers/c1").empty());
        }
    }

    TEST_CASE("cleanup_container reports the container removed, or already gone") {
        unknown_outcome::container_keeping_engine e;
        auto made = e.f.run(berth::build_container(e.f.client, e.options()));
        REQUIRE(made.has_value());
        auto report = e.f.run(berth::cleanup_container(*made, false));
        CHECK(report.container_removed);
        CHECK_FALSE(report.service_removed.has_value());  // one engine: no service
        CHECK(report.complete());
        CHECK(report.problems.empty());
        CHECK_FALSE(report.error);
        CHECK(e.containers.empty());
        report = e.f.run(berth::cleanup_container(*made, false));  // again: already gone is gone
        CHECK(report.complete());
    }

    TEST_CASE("cleanup_container on an engine that is down reports the container not removed, and why") {
        unknown_outcome::container_keeping_engine e;
        auto made = e.f.run(berth::build_container(e.f.client, e.options()));
        REQUIRE(made.has_value());
        e.f.engine.refuse_connections();
        e.f.client.close_idle_connections();
        auto report = e.f.run(berth::cleanup_container(*made, false));
        CHECK_FALSE(report.container_removed);
        CHECK_FALSE(report.complete());
        REQUIRE(report.problems.size() == 2);  // the stop and the removal, each with its error
        CHECK(report.problems[1].find("Error removing container app-container") != std::string::npos);
        REQUIRE(report.error);
        try {
            std::rethrow_exception(report.error);
        } catch (const boost::system::system_error& error) {
            CHECK(error.code() == asio::error::connection_refused);
        }
        CHECK(e.containers.size() == 1);
    }

    // Podman's temporary manifest list (a pull's digest, registry.hpp): a create answered 500 may make the list
    // after the first removal was tried, so a list not found is asked for again; after a refusal it is not.
    TEST_CASE("Podman: a manifest list create answered 500 is removed even when it appears late") {
        for (unsigned status : {500u, 400u}) {
            CAPTURE(status);
            asio::io_context ioc;
            mock_engine engine(ioc.get_executor());
            mock_client client(engine);
            engine.answer_as_podman("4.3.1");
            engine.on(verb::post, "/images/create",
                      reply::chunked(200, {R"({"status":"Download complete","progressDetail":{},"id":"bc10c115f6a9"})" "\n"},
                                     "application/json"));
            const std::string id = "sha256:" + std::string(64, 'c');
            json::array digests{"127.0.0.1:5000/app@sha256:" + std::string(64, 'a'),
                                "127.0.0.1:5000/app@sha256:" + std::string(64, 'b')};
            engine.on(verb::get, "/images/127.0.0.1:5000/app:v1/json",
                      reply::json(200, json::value{{"Id", id}, {"RepoDigests", digests}}));
            engine.on(verb::post, "/libpod/manifests/create", reply::error(status, "mock engine: list failed"));
            engine.on_sequence(verb::delete_, "/libpod/images/*",
                               {reply::error(404, "image not known"), reply::json(200, R"({"Deleted":["x"]})")});
            berth::pull_options options;
            options.lookup_credentials = false;
            try {
                run(ioc, client.images().pull("127.0.0.1:5000/app:v1", options));
                FAIL("the pull succeeded");
            } catch (const berth::engine_error& e) {
                CHECK(e.status() == status);
            }
            auto removals = engine.requests_to(verb::delete_, "/libpod/images/*");
            CHECK(removals.size() == (status == 500 ? 2u : 1u));
            for (auto& r : removals) CHECK(r.path.starts_with("/libpod/images/localhost/berth-pull-digest-"));
        }
    }
}
