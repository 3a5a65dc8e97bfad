// libFuzzer target: the engine's reply to one client call, as berth reads it. The real client
// (basic_client<mock_engine>) makes the call the first input byte chooses; the mock engine answers it with the
// rest of the input, verbatim (HTTP status line, headers, body framing, JSON, multiplexed or progress streams),
// cut into a few pieces, then closes the connection. Everything else the call needs (/version, ...) is answered
// normally, so the fuzzed bytes reach the HTTP parser and then the call's own decoding.
// Invariants: every failure is one of berth's typed errors, and every call ends (bounded here by a deadline).
#include <berth/engine/client.hpp>
#include <berth/tar/error.hpp>
#include <berth/testing/mock_engine.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

namespace {

namespace asio = boost::asio;
using berth::testing::mock_engine;
using berth::testing::reply;
using verb = boost::beast::http::verb;
using mock_client = berth::basic_client<mock_engine>;

// Output handlers and sinks only count: what matters is that decoding them does not misbehave.
struct counter {
    std::size_t bytes = 0;
    void operator()(berth::output_stream, std::string_view data) { bytes += data.size(); }
    void operator()(std::span<const char> data) { bytes += data.size(); }
};

struct call {
    verb method;
    const char* path;  // the route the fuzzed reply answers (as mock_engine matches it)
    std::function<asio::awaitable<void>(mock_client&, counter&)> run;
};

// One entry per call whose reply berth decodes; add new ones at the end (the selector is the first byte modulo
// the count, so existing corpus files keep their meaning).
const std::vector<call>& calls() {
    static const std::vector<call> all = {
        {verb::get, "/version", [](mock_client& c, counter&) -> asio::awaitable<void> { co_await c.version(); }},
        {verb::get, "/containers/app/json",
         [](mock_client& c, counter&) -> asio::awaitable<void> { co_await c.containers().inspect("app"); }},
        {verb::get, "/containers/json",
         [](mock_client& c, counter&) -> asio::awaitable<void> { co_await c.containers().list(); }},
        {verb::post, "/containers/create",
         [](mock_client& c, counter&) -> asio::awaitable<void> {
             berth::container_config config;
             config.image = "busybox";
             co_await c.containers().create(config, "app");
         }},
        {verb::get, "/exec/e1/json",
         [](mock_client& c, counter&) -> asio::awaitable<void> { co_await c.execs().inspect("e1"); }},
        {verb::get, "/images/img/json",
         [](mock_client& c, counter&) -> asio::awaitable<void> { co_await c.images().inspect("img"); }},
        {verb::get, "/images/json",
         [](mock_client& c, counter&) -> asio::awaitable<void> { co_await c.images().list(); }},
        {verb::head, "/containers/app/archive",
         [](mock_client& c, counter&) -> asio::awaitable<void> { co_await c.archives().stat("app", "/data"); }},
        {verb::get, "/containers/app/archive",
         [](mock_client& c, counter& n) -> asio::awaitable<void> { co_await c.archives().get("app", "/data", n); }},
        {verb::post, "/exec/e1/start",
         [](mock_client& c, counter& n) -> asio::awaitable<void> {
             berth::exec_start_options options;
             options.on_output = std::ref(n);
             co_await c.execs().start("e1", options);
         }},
        {verb::post, "/build",
         [](mock_client& c, counter& n) -> asio::awaitable<void> {
             berth::build_options options;
             options.builder = n.bytes % 2 ? berth::builder::buildkit : berth::builder::legacy;
             options.network_mode = "none";
             berth::http::memory_source context{std::string_view("not really a tar context")};
             options.on_output = [&n](berth::output_stream, std::string_view s) { n.bytes += s.size(); };
             co_await c.images().build(context, options);
         }},
        {verb::get, "/containers/app/logs",
         [](mock_client& c, counter& n) -> asio::awaitable<void> {
             berth::container_logs_options options;
             options.on_output = std::ref(n);
             co_await c.containers().logs("app", options);
         }},
        {verb::get, "/info", [](mock_client& c, counter&) -> asio::awaitable<void> { co_await c.system().info(); }},
        {verb::get, "/_ping", [](mock_client& c, counter&) -> asio::awaitable<void> { co_await c.system().ping(); }},
        {verb::post, "/containers/app/wait",
         [](mock_client& c, counter&) -> asio::awaitable<void> { co_await c.containers().wait("app"); }},
    };
    return all;
}

// The reply bytes cut at up to three points chosen by a small PRNG seeded by the input, so that each piece can
// arrive in a read of its own.
std::vector<std::string> pieces_of(std::string_view bytes, std::uint32_t seed) {
    std::vector<std::size_t> cuts;
    std::uint32_t x = seed | 1;
    for (int i = 0; i < 3 && !bytes.empty(); ++i) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        cuts.push_back(x % (bytes.size() + 1));
    }
    std::sort(cuts.begin(), cuts.end());
    return berth::testing::split_at(bytes, cuts);
}

[[noreturn]] void untyped(const char* what) {
    std::fprintf(stderr, "engine_reply_fuzz: an untyped failure escaped: %s\n", what);
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const auto& table = calls();
    const call& chosen = table[data[0] % table.size()];
    const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);

    asio::io_context ioc;
    mock_engine engine(ioc.get_executor());
    if (data[0] & 0x80) engine.answer_as_podman();  // Podman's exec start also watches the exec's state
    engine.add_container("app");
    engine.on(verb::get, "/exec/e1/json", mock_engine::exec_state("e1", "app", false, 0));
    reply fuzzed = reply::raw({});
    fuzzed.pieces = pieces_of(body, static_cast<std::uint32_t>(size) * 2654435761u ^ data[size - 1]);
    engine.on(chosen.method, chosen.path, fuzzed);
    {
        mock_client client(engine);
        counter n{data[size - 1]};
        std::exception_ptr error;
        bool done = false;
        asio::co_spawn(ioc, chosen.run(client, n), [&](std::exception_ptr e) {
            error = e;
            done = true;
        });
        // Nothing in a run waits on real time: a call still going after this long waits for nothing to happen.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!done && ioc.run_one_until(deadline) > 0) {}
        if (!done) {
            std::fprintf(stderr, "engine_reply_fuzz: the call did not end (selector %u)\n", data[0]);
            std::abort();
        }
        try {
            if (error) std::rethrow_exception(error);
        } catch (const berth::protocol_error&) {
        } catch (const berth::engine_error&) {
        } catch (const berth::tar::error&) {
        } catch (const boost::system::system_error&) {  // connection_error, end of stream, JSON syntax
        } catch (const std::invalid_argument&) {
        } catch (const std::exception& e) { untyped(e.what()); } catch (...) {
            untyped("(not a std::exception)");
        }
        client.close_idle_connections();
        ioc.restart();
        ioc.poll();  // the engine's side sees the client's closes and ends
    }
    ioc.restart();
    ioc.poll();
    return 0;
}
