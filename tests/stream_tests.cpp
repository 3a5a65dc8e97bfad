// Real-engine tests of the streams: events (typed, filtered, resumed across an engine restart), stats (docker
// stats' figures of a busy container) and logs (tail, timestamps, since and until).
#include "support/engines.hpp"
#include "support/private_engine.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <future>
#include <set>

using namespace berth_test;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::system_clock;

// Polls `done` every 50 ms until it holds or `limit` has passed (then false).
template <class Done>
asio::awaitable<bool> eventually(Done done, std::chrono::seconds limit) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) co_return false;
        timer.expires_after(50ms);
        co_await timer.async_wait(asio::use_awaitable);
    }
    co_return true;
}

// Creates and removes a container of the base image labelled `label`, network mode none; its id.
asio::awaitable<std::string> create_and_remove(berth::client& c, const std::string& label) {
    berth::container_config cfg;
    cfg.image = base_image;
    cfg.cmd = {"true"};
    cfg.host.network_mode = "none";
    cfg.labels = {{"berth-events", label}};
    auto created = co_await c.containers().create(cfg);
    co_await c.containers().remove(created.id);
    co_return created.id;
}

std::vector<std::string> identities(const std::vector<berth::engine_event>& events) {
    std::vector<std::string> out;
    for (auto& e : events) out.push_back(e.action + " " + e.actor_id + " " + std::to_string(e.time_nano));
    return out;
}

// ----------------------------------------------------------------------------------------------------------------
// Events
// ----------------------------------------------------------------------------------------------------------------

// Typed events with filters (type, label, event) on a live stream, then the same window with until: the stream
// ends by itself and gives the same events.
asio::awaitable<void> typed_events(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    const auto label = unique_name("events");
    const auto since = clock_type::now() - 1s;
    berth::system_events_options options{
        .since = since,
        .filters = {{"type", {"container"}}, {"label", {"berth-events=" + label}}, {"event", {"create"}}}};
    auto stream = co_await c.system().events(options);
    std::vector<std::string> ids;
    for (int i = 0; i < 2; ++i) ids.push_back(co_await create_and_remove(c, label));
    std::vector<berth::engine_event> live;
    while (live.size() < 2) {
        auto ev = co_await berth::with_timeout(stream.next(), 60s, "waiting for the create events");
        REQUIRE(ev.has_value());
        live.push_back(std::move(*ev));
    }
    for (std::size_t i = 0; i < 2; ++i) {
        CAPTURE(i);
        CHECK(live[i].type == "container");
        CHECK(live[i].action == "create");
        CHECK(live[i].actor_id == ids[i]);
        CHECK(live[i].actor_attributes.at("berth-events") == label);
        CHECK(live[i].time_nano >= berth::detail::nanos_since_epoch(since));
        CHECK(live[i].time == live[i].time_nano / 1000000000);
    }
    // the window up to a moment from now, with until: the engine sends what it recorded, and the stream ends once
    // until has passed (Podman 4.3 answers an until in the past with nothing at all, so not now but soon)
    options.until = clock_type::now() + 2s;
    auto window = co_await c.system().events(options);
    std::vector<berth::engine_event> past;
    while (auto ev = co_await berth::with_timeout(window.next(), 60s, "reading the past events")) past.push_back(*ev);
    CHECK(identities(past) == identities(live));
    CHECK(window.resumes() == 0);
}

// On a private Docker engine: events read while containers are created and removed, the engine restarted in the
// middle, more created after it; the stream resumes, and what it delivered is what the engine itself lists for the
// interval (before the restart, asked before it; after, asked at the end: Docker keeps its events in memory only).
void events_across_restart() {
    if (::geteuid() != 0) {
        if (in_ci()) FAIL("a private engine needs root");
        MESSAGE("SKIPPED: a private engine needs root");
        return;
    }
    private_engine engine("docker", "h18ev");
    REQUIRE_MESSAGE(!engine.address.empty(), "the private docker engine did not start");
    run_to_completion([&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        // What the reader (a coroutine of its own) shares with the test: kept alive by both, and the reader
        // cancelled when the test's coroutine ends however it ends.
        struct reader_state {
            explicit reader_state(berth::client client) : c(std::move(client)) {}
            berth::client c;
            std::optional<berth::system_events_stream<berth::socket_transport>> stream{};
            std::vector<berth::engine_event> delivered{};
            std::exception_ptr failure{};
            bool done = false;
            asio::cancellation_signal cancel{};
        };
        auto st = std::make_shared<reader_state>(berth::client::at(ex, engine.address));
        struct canceller {
            std::shared_ptr<reader_state> st;
            ~canceller() {
                if (!st->done) st->cancel.emit(asio::cancellation_type::terminal);
            }
        } stop_reader{st};
        auto& c = st->c;
        const auto label = unique_name("resume");
        const auto since = clock_type::now() - 1s;
        const std::map<std::string, std::vector<std::string>> filters{{"type", {"container"}},
                                                                      {"label", {"berth-events=" + label}}};
        // named, as every options struct given to a coroutine here: g++ 12 frees a braced temporary twice
        const berth::system_events_options options{.since = since,
                                                   .filters = filters,
                                                   .resume_attempts = 100,
                                                   .resume_backoff = 50ms,
                                                   .resume_backoff_max = 1s};
        st->stream.emplace(co_await c.system().events(options));
        constexpr std::size_t per_round = 3, expected = 4 * per_round;  // create and destroy, before and after
        asio::co_spawn(
            ex,
            [st]() -> asio::awaitable<void> {
                while (st->delivered.size() < expected) {
                    auto ev = co_await berth::with_timeout(st->stream->next(), 180s, "waiting for events");
                    if (!ev) break;
                    st->delivered.push_back(std::move(*ev));
                }
            },
            asio::bind_cancellation_slot(st->cancel.slot(), [st](std::exception_ptr failure) {
                st->failure = failure;
                st->done = true;
            }));
        auto& delivered = st->delivered;

        for (std::size_t i = 0; i < per_round; ++i) co_await create_and_remove(c, label);
        REQUIRE(co_await eventually([&] { return st->done || delivered.size() >= 2 * per_round; }, 60s));
        if (st->failure) std::rethrow_exception(st->failure);
        berth::past_events_query window{.since = since, .until = clock_type::now(), .filters = filters};
        auto before = co_await berth::past_events(c.core(), window);

        auto restarted = std::async(std::launch::async, [&] { return engine.restart(); });
        REQUIRE(co_await eventually([&] { return restarted.wait_for(0s) == std::future_status::ready; }, 180s));
        REQUIRE(restarted.get());
        c.close_idle_connections();  // they went with the old engine process
        for (std::size_t i = 0; i < per_round; ++i) co_await create_and_remove(c, label);
        REQUIRE(co_await eventually([&] { return st->done; }, 180s));
        if (st->failure) std::rethrow_exception(st->failure);
        window.until = clock_type::now();
        auto after = co_await berth::past_events(c.core(), window);
        auto& stream = *st->stream;

        CHECK(stream.resumes() >= 1);
        REQUIRE(before.size() == 2 * per_round);
        REQUIRE(after.size() == 2 * per_round);
        auto listed = identities(before);
        for (auto& id : identities(after)) listed.push_back(id);
        CHECK(identities(delivered) == listed);  // nothing lost, nothing repeated, in the engine's order
        std::set<std::string> unique(listed.begin(), listed.end());
        CHECK(unique.size() == listed.size());
    }());
}

// ----------------------------------------------------------------------------------------------------------------
// Stats
// ----------------------------------------------------------------------------------------------------------------

// A container burning CPU with a 64 MiB limit: CPU % above 0, memory in use above 0 and within the limit, one
// process or more; the same from the stream's second sample (its first has no previous one on Docker).
asio::awaitable<void> busy_container_stats(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    const auto name = unique_name("stats");
    container_guard guard{e.address, name};
    berth::container_config cfg;
    cfg.image = base_image;
    cfg.cmd = {"sh", "-c", "while :; do :; done"};
    cfg.host.network_mode = "none";
    cfg.host.memory = 64 << 20;
    auto created = co_await c.containers().create(cfg, name);
    co_await c.containers().start(created.id);

    auto check = [&](const berth::container_stats& s) {
        CAPTURE(berth::json::serialize(s.raw));
        CHECK(s.cpu_percent > 0.0);
        CHECK(s.online_cpus > 0);
        CHECK(s.memory_used_bytes > 0);
        REQUIRE(s.memory_limit_bytes.has_value());
        CHECK(*s.memory_limit_bytes == std::uint64_t{64} << 20);
        CHECK(s.memory_used_bytes <= *s.memory_limit_bytes);
        CHECK(s.memory_percent > 0.0);
        CHECK(s.memory_percent <= 100.0);
        CHECK(s.pids >= 1);
    };
    // not one-shot: the engine waits for its second sample, so there is a previous one to compare with
    const berth::container_stats_options two_samples{.one_shot = false};
    check(co_await c.containers().stats(created.id, two_samples));
    auto stream = co_await c.containers().stats_stream(created.id);
    std::optional<berth::container_stats> sample;
    for (int i = 0; i < 2; ++i) sample = co_await berth::with_timeout(stream.next(), 30s, "waiting for a sample");
    REQUIRE(sample.has_value());
    check(*sample);
}

// ----------------------------------------------------------------------------------------------------------------
// Logs
// ----------------------------------------------------------------------------------------------------------------

// A container printing "one", "two", "three" a second apart and "four" on stderr: tail=2 gives the last two
// lines, timestamps prefix each with its RFC 3339 time, and since/until around "two" select it alone.
asio::awaitable<void> logs_window(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    const auto name = unique_name("logs");
    container_guard guard{e.address, name};
    berth::container_config cfg;
    cfg.image = base_image;
    cfg.cmd = {"sh", "-c", "echo one; sleep 1; echo two; sleep 1; echo three; echo four >&2"};
    cfg.host.network_mode = "none";
    auto created = co_await c.containers().create(cfg, name);
    co_await c.containers().start(created.id);
    CHECK(co_await c.containers().wait(created.id) == 0);

    const berth::container_logs_options with_times{.timestamps = true};  // named: g++ 12 frees a braced temporary twice
    auto all = co_await c.containers().logs(created.id, with_times);
    CAPTURE(all.stdout_text);
    CAPTURE(all.stderr_text);
    REQUIRE(all.lines.size() == 4);
    std::map<std::string, clock_type::time_point> at;
    for (auto& l : all.lines) {
        REQUIRE(l.timestamp.has_value());
        at[l.text] = *l.timestamp;
    }
    REQUIRE(at.size() == 4);
    CHECK(at["one"] < at["two"]);
    CHECK(at["two"] < at["three"]);
    // each line as the engine sent it: "2026-12-07T10:00:00.123456789Z one"
    auto first = all.stdout_text.substr(0, all.stdout_text.find('\n'));
    CHECK(first.ends_with(" one"));
    CHECK(berth::detail::parse_rfc3339(first.substr(0, first.find(' '))) == at["one"]);
    if (e.name == "docker") CHECK(first.find('.') == 19);  // nanoseconds; Podman 4.3 writes whole seconds
    CHECK(all.stderr_text.ends_with(" four\n"));

    const berth::container_logs_options last_two_lines{.tail = "2"};
    auto tail = co_await c.containers().logs(created.id, last_two_lines);
    std::multiset<std::string> last_two;
    for (auto& l : tail.lines) last_two.insert(l.text);
    CHECK(last_two == std::multiset<std::string>{"three", "four"});
    CHECK(tail.lines.size() == 2);

    // "one", "two" and "three" are a second apart or more: [two's time, a second later) holds "two" alone, also
    // when the engine's timestamps are whole seconds (Podman 4.3: at or before the true time)
    const berth::container_logs_options around_two{.since = at["two"], .until = at["two"] + 1s - 1ns};
    auto window = co_await c.containers().logs(created.id, around_two);
    REQUIRE(window.lines.size() == 1);
    CHECK(window.lines[0].text == "two");
    CHECK(window.stdout_text == "two\n");
    CHECK(window.stderr_text.empty());

    const berth::container_logs_options no_stdout{.stdout_ = false};
    auto stderr_only = co_await c.containers().logs(created.id, no_stdout);
    CHECK(stderr_only.stdout_text.empty());
    CHECK(stderr_only.stderr_text == "four\n");
    co_await c.containers().remove(created.id);
}

}  // namespace

TEST_CASE("events: typed, filtered, live and up to until") { for_each_engine(typed_events); }
TEST_CASE("events: the stream resumes across an engine restart, nothing lost or repeated (private Docker engine)") {
    events_across_restart();
}
TEST_CASE("stats: a busy container's CPU %, memory against its limit, pids (one sample and the stream)") {
    for_each_engine(busy_container_stats);
}
TEST_CASE("logs: tail, timestamps, since and until, stdout and stderr apart") { for_each_engine(logs_window); }
