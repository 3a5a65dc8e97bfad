// How an evaluation's command ended and what it used, on the real engines: an exit code with its CPU time, a
// death by signal, an OOM kill with the peak memory, a time-out whose processes are killed, and an engine restart
// mid-command reported as lost (on a private engine this test starts and stops itself).
#include "support/engines.hpp"
#include "support/private_engine.hpp"

#include <berth/eval/blocking.hpp>

#include <chrono>
#include <cstdlib>
#include <future>
#include <thread>

using namespace berth_test;
namespace fs = std::filesystem;

namespace {

struct evaluation_fixture {
    temp_dir dir;
    fs::path repo;
    std::shared_ptr<berth::logger> log;
    evaluation_fixture() : repo(dir / "repo") {
        write_busybox_context(repo);
        log = std::make_shared<berth::logger>(dir / "eval.log");
    }
    berth::build_container_options options(const std::string& name) const {
        berth::build_container_options o;
        o.repo_path = repo.string();
        o.image_name = base_image;
        o.container_name = name;
        o.network_mode = "none";
        o.log = log;
        return o;
    }
    std::string logged() const { return read_file(dir / "eval.log"); }
};

asio::awaitable<void> exit_code_and_cpu(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    evaluation_fixture f;
    const auto name = unique_name("outcome-exit");
    container_guard guard{e.address, name};
    auto box = co_await berth::build_container(c, f.options(name));
    REQUIRE(box.has_value());

    berth::run_options measured;
    measured.measure_usage = true;
    measured.log = f.log;
    auto r = co_await berth::exec(
        *box, berth::argv("sh", "-c", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; exit 3"), measured);
    CHECK(r.exit_code == 3);
    CHECK(r.outcome.end == berth::exec_end::exited);
    CHECK_FALSE(r.outcome.signal.has_value());
    CHECK(r.usage.wall_time > std::chrono::nanoseconds::zero());
    REQUIRE(r.usage.container_cpu_seconds.has_value());
    CHECK(*r.usage.container_cpu_seconds > 0.0);
    // Docker reports the memory cgroup's high-water mark (cgroup v1); Podman's stats have none
    if (e.name == "docker") CHECK(r.usage.container_peak_memory_bytes.value_or(0) > 0);
    try {
        berth::log_container_output(r, {.log = f.log});
        FAIL("exit code 3 did not throw");
    } catch (const berth::script_failed& err) { CHECK(std::string(err.what()) == "Script failed with exit code 3"); }
    CHECK(f.logged().find("INFO - Command ended: exit code 3; wall ") != std::string::npos);
    CHECK(f.logged().find("container CPU ") != std::string::npos);

    // the container's CPU time only grows; without measure_usage there are no figures but the wall time
    auto again = co_await berth::exec(*box, berth::argv("true"), measured);
    REQUIRE(again.usage.container_cpu_seconds.has_value());
    CHECK(*again.usage.container_cpu_seconds >= *r.usage.container_cpu_seconds);
    berth::run_options plain;
    plain.log = f.log;
    auto quick = co_await berth::exec(*box, berth::argv("sh", "-c", "exit 0"), plain);
    CHECK(quick.exit_code == 0);
    CHECK(quick.outcome.end == berth::exec_end::exited);
    CHECK(quick.usage.wall_time > std::chrono::nanoseconds::zero());
    CHECK_FALSE(quick.usage.container_cpu_seconds.has_value());
    CHECK_FALSE(quick.usage.container_peak_memory_bytes.has_value());
    co_await berth::cleanup_container(*box, {.verbose = false});
}

asio::awaitable<void> signals_and_oom(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    evaluation_fixture f;
    const auto name = unique_name("outcome-oom");
    container_guard guard{e.address, name};
    auto options = f.options(name);
    options.memory_bytes = std::int64_t{64} << 20;
    auto box = co_await berth::build_container(c, options);
    REQUIRE(box.has_value());
    berth::run_options quiet;
    quiet.log = f.log;

    // killed by a signal, before any OOM kill in this container: signalled, not out of memory
    auto killed = co_await berth::exec(*box, berth::argv("sh", "-c", "kill -9 $$"), quiet);
    CHECK(killed.exit_code == 137);
    CHECK(killed.outcome.end == berth::exec_end::signalled);
    CHECK(killed.outcome.signal == 9);
    auto segv = co_await berth::exec(*box, berth::argv("sh", "-c", "kill -SEGV $$"), quiet);
    CHECK(segv.exit_code == 139);
    CHECK(segv.outcome.end == berth::exec_end::signalled);
    CHECK(segv.outcome.signal == 11);
    CHECK_THROWS_AS(berth::log_container_output(segv, {.log = f.log}), berth::script_failed);

    // the shell holds 300 MiB in a variable: more than the limit and its swap allowance
    auto r = co_await berth::exec(*box, berth::argv("sh", "-c", "x=$(head -c 300m /dev/zero | tr '\\0' a); echo ${#x}"),
                                  quiet);
    CHECK(r.exit_code == 137);
    CHECK(r.outcome.end == berth::exec_end::oom_killed);
    CHECK(r.outcome.signal == 9);
    REQUIRE(r.usage.container_peak_memory_bytes.has_value());
    // the high-water mark of a cgroup that ran out: near its limit, never above it
    CHECK(*r.usage.container_peak_memory_bytes > (std::uint64_t{32} << 20));
    CHECK(*r.usage.container_peak_memory_bytes <= (std::uint64_t{64} << 20));
    CHECK_THROWS_AS(berth::log_container_output(r, {.log = f.log}), berth::script_failed);
    CHECK(f.logged().find("INFO - Command ended: OOM-killed (out of memory); wall ") != std::string::npos);
    CHECK(f.logged().find("INFO - Command ended: killed by signal 11") != std::string::npos);
    co_await berth::cleanup_container(*box, {.verbose = false});
}

asio::awaitable<void> time_out_kills(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    evaluation_fixture f;
    const auto name = unique_name("outcome-timeout");
    container_guard guard{e.address, name};
    auto box = co_await berth::build_container(c, f.options(name));
    REQUIRE(box.has_value());

    berth::run_options limited;
    limited.log = f.log;
    // long enough for the command to have started on a loaded machine before the limit passes
    limited.timeout = std::chrono::seconds(3);
    // a spinning shell with a child of its own: both must be gone afterwards
    bool thrown = false;
    try {
        co_await berth::exec(*box, berth::argv("sh", "-c", "echo spinning; sleep 3600 & while :; do :; done"), limited);
    } catch (const berth::exec_interrupted& err) {
        thrown = true;
        CHECK(err.code() == asio::error::timed_out);
        CHECK(err.partial().outcome.end == berth::exec_end::timed_out);
        CHECK(err.partial().outcome.process_killed);
        CHECK(std::string_view("spinning\n").starts_with(err.partial().output));  // what had arrived
        CHECK_FALSE(err.partial().exit_code.has_value());
        CHECK_NOTHROW(berth::log_container_output(err.partial(), {.log = f.log}));
    }
    CHECK(thrown);
    CHECK(f.logged().find("INFO - Command ended: timed out (its processes killed)") != std::string::npos);
    berth::run_options unlimited;
    unlimited.log = f.log;
    auto ps = co_await berth::exec(*box, berth::argv("ps", "-o", "pid,args"), unlimited);
    CAPTURE(ps.output);
    CHECK(ps.exit_code == 0);
    CHECK(ps.output.find("while") == std::string::npos);
    CHECK(ps.output.find("sleep 3600") == std::string::npos);
    CHECK(ps.output.find("tail -f /dev/null") != std::string::npos);  // the container's own process is untouched
    co_await berth::cleanup_container(*box, {.verbose = false});
}


// Runs `sh -c 'echo started; exec sleep 600'` on the engine in a thread of its own, restarts the engine once the
// command has started, and returns how the exec ended.
void engine_restart_is_lost(const std::string& kind) {
    if (::geteuid() != 0) {
        if (in_ci()) FAIL("a private engine needs root");
        MESSAGE("SKIPPED: a private engine needs root");
        return;
    }
    // declared first, so joined last: a failed REQUIRE stops the engine first, which ends the exec in the thread
    std::thread runner;
    struct joiner {
        std::thread& t;
        ~joiner() {
            if (t.joinable()) t.join();
        }
    } join{runner};
    private_engine engine(kind);
    REQUIRE_MESSAGE(!engine.address.empty(), "the private " << kind << " engine did not start");
    std::promise<void> started;
    auto started_seen = started.get_future();
    std::promise<berth::exec_result> ended;
    auto outcome = ended.get_future();
    runner = std::thread([&] {
        try {
            run_to_completion([&]() -> asio::awaitable<void> {
                auto c = berth::client::at(co_await asio::this_coro::executor, engine.address);
                auto id = co_await start_idle_container(c, unique_name("outcome-lost"));
                berth::container box{&c, id, "lost"};
                berth::run_options watch;
                watch.verbose = false;
                watch.measure_usage = true;  // on Docker, the container's stats stream is cut as well: it ends quietly
                bool told = false;
                watch.exec.on_output = [&](berth::output_stream, std::string_view d) {
                    if (!told && d.find("started") != std::string_view::npos) {
                        told = true;
                        started.set_value();
                    }
                };
                try {
                    auto r = co_await berth::exec(box, berth::argv("sh", "-c", "echo started; exec sleep 600"), watch);
                    ended.set_value(std::move(r));
                } catch (const berth::exec_interrupted& err) { ended.set_value(err.partial()); }
            }());
        } catch (...) {
            try {
                started.set_exception(std::current_exception());
            } catch (const std::future_error&) {}
            try {
                ended.set_exception(std::current_exception());
            } catch (const std::future_error&) {}
        }
    });
    REQUIRE(started_seen.wait_for(std::chrono::seconds(120)) == std::future_status::ready);
    started_seen.get();
    REQUIRE(engine.restart());
    REQUIRE(outcome.wait_for(std::chrono::seconds(180)) == std::future_status::ready);
    auto r = outcome.get();
    CAPTURE(r.outcome.detail);
    CHECK(r.outcome.end == berth::exec_end::engine_lost);
    CHECK_FALSE(r.exit_code.has_value());
    CHECK(r.output == "started\n");
}

// The figures without a wait (on Docker from the container's stats stream, opened by the first measured exec; on
// Podman from one request each): a command that burns about 1.5 s of CPU shows it, in its own figures or in a
// sample taken after it (usage_after); the figures never decrease; cleanup_container ends the stream, so the
// io_context runs out of work with the client still alive and no connection is left in use.
void background_figures(const engine_under_test& e) {
    asio::io_context ioc;
    auto c = berth::client::at(ioc.get_executor(), e.address);
    std::exception_ptr failure;
    auto body = [&]() -> asio::awaitable<void> {  // named: the coroutine refers to its captures until it ends
        co_await ensure_base_image(c);
        evaluation_fixture f;
        const auto name = unique_name("outcome-figures");
        container_guard guard{e.address, name};
        auto box = co_await berth::build_container(c, f.options(name));
        REQUIRE(box.has_value());
        berth::run_options measured;
        measured.measure_usage = true;
        measured.log = f.log;
        auto first = co_await berth::exec(*box, berth::argv("true"), measured);
        REQUIRE(first.usage.container_cpu_seconds.has_value());
        const bool docker = e.name == "docker";
        CHECK(c.core().usage_feeds().running() == (docker ? 1u : 0u));
        if (docker) CHECK(first.usage.sampled_at.has_value());

        // md5 of 250 MiB of zeros: about 1.5 s of CPU, whatever else the machine is doing
        auto burn = co_await berth::exec(*box, berth::argv("sh", "-c", "head -c 250m /dev/zero | md5sum"), measured);
        CHECK(burn.exit_code == 0);
        REQUIRE(burn.usage.container_cpu_seconds.has_value());
        CHECK(*burn.usage.container_cpu_seconds >= *first.usage.container_cpu_seconds);
        const auto ended = std::chrono::system_clock::now();
        auto after = co_await berth::usage_after(*box, ended);
        REQUIRE(after.has_value());
        if (docker) CHECK(after->read >= ended);
        const double cpu_after = static_cast<double>(after->cpu_total_ns) / 1e9;
        CHECK(cpu_after >= *burn.usage.container_cpu_seconds);
        CHECK(cpu_after - *first.usage.container_cpu_seconds >= 1.0);
        auto last = co_await berth::exec(*box, berth::argv("true"), measured);
        REQUIRE(last.usage.container_cpu_seconds.has_value());
        CHECK(*last.usage.container_cpu_seconds >= *burn.usage.container_cpu_seconds);
        if (first.usage.container_peak_memory_bytes && last.usage.container_peak_memory_bytes)
            CHECK(*last.usage.container_peak_memory_bytes >= *first.usage.container_peak_memory_bytes);

        co_await berth::cleanup_container(*box, {.verbose = false});
        CHECK(c.core().usage_feeds().running() == 0);
    };
    asio::co_spawn(ioc, body(), [&](std::exception_ptr ep) { failure = ep; });
    // Nothing is left running once the body is done: the stream's reader ended with cleanup_container.
    ioc.run_for(std::chrono::minutes(3));
    if (failure) std::rethrow_exception(failure);
    CHECK(ioc.stopped());
    CHECK(c.open_connections() == c.idle_connections());
}

}  // namespace

TEST_SUITE("evaluation outcome on real engines") {
TEST_CASE("an exit code comes with the container's CPU time") { for_each_engine(exit_code_and_cpu); }
TEST_CASE("figures without a wait: a CPU burn shows, they never decrease, cleanup_container ends the stream") {
    for (auto& e : engines(true, true)) {
        CAPTURE(e.name);
        background_figures(e);
    }
}
TEST_CASE("a death by signal and an OOM kill are told apart, the OOM kill with its peak memory") {
    for_each_engine(signals_and_oom);
}
TEST_CASE("a command past its time limit is reported timed out and its processes are gone") {
    for_each_engine(time_out_kills);
}
TEST_CASE("an engine restart mid-exec is reported as lost (private Docker engine)") {
    engine_restart_is_lost("docker");
}
TEST_CASE("an engine restart mid-exec is reported as lost (private Podman service)") {
    engine_restart_is_lost("podman");
}
}  // TEST_SUITE("evaluation outcome on real engines")
