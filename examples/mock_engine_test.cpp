// SPDX-License-Identifier: BSL-1.0
// Unit-testing your own harness code with berth::testing::mock_engine: the engine is scripted in memory and your
// code runs unchanged through berth's real HTTP and engine layers. Write the code under test as a template on the
// transport (berth::transport), use berth::client in the program and basic_client<mock_engine> in the tests.
// The mock shows what a real engine cannot (exact requests, faults); test the happy path on a real engine too.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <berth/berth.hpp>
#include <berth/testing/mock_engine.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/parse.hpp>
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <stdexcept>

namespace asio = boost::asio;
using berth::testing::exec_frame;
using berth::testing::mock_engine;
using berth::testing::reply;
using verb = boost::beast::http::verb;

// --- the code under test: runs a project's test suite in its container ---------------------------------------
template <berth::transport Transport>
asio::awaitable<bool> suite_passes(berth::basic_container<Transport> box) {
    berth::run_options run;
    run.verbose = false;
    auto result = co_await berth::exec(box, berth::argv("sh", "-c", "make test"), run);
    co_return result.exit_code == 0;
}

// --- the tests ----------------------------------------------------------------------------------------------
// Runs `op` until it completes. Not io.run(): the mock engine keeps serving the client's idle keep-alive
// connections, so the io_context never runs out of work. The deadline only keeps a broken test from hanging.
template <class T>
T run(asio::io_context& io, asio::awaitable<T> op) {
    auto result = asio::co_spawn(io, std::move(op), asio::use_future);
    io.restart();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    auto ready = [&] { return result.wait_for(std::chrono::seconds(0)) == std::future_status::ready; };
    while (!ready() && io.run_one_until(deadline) > 0) {}
    if (!ready()) throw std::runtime_error("the operation did not complete within 30 s");
    return result.get();
}

struct fixture {
    asio::io_context io;
    mock_engine engine{io.get_executor()};
    berth::basic_client<mock_engine> client{engine};
    berth::basic_container<mock_engine> box{&client, "c0ffee", "app"};
};

TEST_CASE_FIXTURE(fixture, "a suite that exits 0 passes, and the command goes to the engine as written") {
    engine.add_exec("c0ffee", "e1", {exec_frame(berth::output_stream::stdout_, "ok\n")}, 0);
    CHECK(run(io, suite_passes(box)));
    auto create = engine.requests_to(verb::post, "/containers/c0ffee/exec").at(0);
    CHECK(boost::json::parse(create.body).at("Cmd") == boost::json::parse(R"(["sh","-c","make test"])"));
}

TEST_CASE_FIXTURE(fixture, "a suite that exits 2 fails") {
    engine.add_exec("c0ffee", "e1", {exec_frame(berth::output_stream::stderr_, "1 test failed\n")}, 2);
    CHECK_FALSE(run(io, suite_passes(box)));
}

TEST_CASE_FIXTURE(fixture, "a container that is gone is an engine error, not a failed suite") {
    engine.on(verb::post, "/containers/c0ffee/exec", reply::error(404, "No such container: c0ffee"));
    CHECK_THROWS_AS(run(io, suite_passes(box)), berth::not_found_error);
}
