#pragma once
// What the mock-engine test programs share: the client type, a fixture whose engine serves a plain request, a
// streamed download and an exec (each fault case drives all three), and small helpers.
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

#include "checks.hpp"
#include "files.hpp"
#include "run.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace mock_test {

namespace asio = boost::asio;
namespace json = boost::json;
using berth::testing::exec_frame;
using berth::testing::mock_engine;
using berth::testing::reply;
using verb = boost::beast::http::verb;
using mock_client = berth::basic_client<mock_engine>;
using namespace std::chrono_literals;

inline constexpr auto out = berth::output_stream::stdout_;
inline constexpr auto err = berth::output_stream::stderr_;

// Lets the engine's side of the connections catch up (closes, drained bytes) after an operation returned.
inline void settle(asio::io_context& ioc) {
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
    return berth_test::run_on_mock(ioc, std::move(op), 5s, signal.slot());
}

// A container's inspect reply.
inline reply container_json(std::string_view id) {
    return reply::json(200, json::value{{"Id", id}, {"Name", "/" + std::string(id)}, {"State", {{"Running", true}}}});
}

// What a test's exec handler receives.
struct output_log {
    std::string stdout_text, stderr_text;
    void operator()(berth::output_stream s, std::string_view data) {
        (s == berth::output_stream::stderr_ ? stderr_text : stdout_text).append(data);
    }
};

using berth_test::run_on_mock;
using berth_test::thrown;

using berth_test::message_of;

// The text of a timed_out error.
inline const std::string timed_out_text = ": " + boost::system::error_code(boost::asio::error::timed_out).message();

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
        return json::value{{"name", "data"},
                           {"size", 4096},
                           {"mode", 2147484141u},
                           {"mtime", "2024-01-01T00:00:00Z"},
                           {"linkTarget", ""}};
    }
    static reply archive_reply() { return reply::archive(data_stat(), {"tar-bytes-", "part-2"}); }

    // The three kinds of operation every fault is tried on; each checks its good result.
    // (The operation runs outside CHECK, so that its exceptions reach the test.)
    void plain() {
        auto info = run_on_mock(ioc, client.containers().inspect("app"));
        CHECK(info.id == "abc123");
    }
    void download() {
        std::string got;
        auto sink = [&](std::span<const char> bytes) { got.append(bytes.data(), bytes.size()); };
        auto stat = run_on_mock(ioc, client.archives().get("app", "/data", sink));
        CHECK(stat.name == "data");
        CHECK(stat.is_directory());
        CHECK(got == "tar-bytes-part-2");
    }
    void exec() {
        output_log log;
        berth::exec_options options;
        options.on_output = std::ref(log);
        options.cmd = {"sh", "-c", "echo hello; echo warning >&2; exit 3"};
        int code = run_on_mock(ioc, client.execs().run("app", options));
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
inline constexpr std::string_view inspect_endpoint = "GET /v1.41/containers/app/json";
inline constexpr std::string_view archive_endpoint = "GET /v1.41/containers/app/archive?path=%2Fdata";
inline constexpr std::string_view exec_start_endpoint = "POST /v1.41/exec/e1/start";
inline constexpr std::string_view exec_create_endpoint = "POST /v1.41/containers/app/exec";

}  // namespace mock_test
