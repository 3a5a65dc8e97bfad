// The soak run (benchmarks/soak/run, not part of CI): many evaluations at high parallelism while the engine is
// restarted underneath them. Every evaluation must end in exactly one of two ways: completed with the right
// result, or failed with one of berth's typed errors. Anything else (an untyped exception, a wrong result reported
// as success, an evaluation still running at the end) is "lost", and lost must be 0. The client's open file
// descriptors and RSS are sampled once a second and must stay flat.
//
//   soak                      settings from the environment:
//   DOCKER_HOST               the engine                           SOAK_IMAGE     a cached image with busybox
//   SOAK_EVALS (300)          evaluations in all                   SOAK_PARALLEL  at most this many at once (64)
//   SOAK_RESTART_CMD          run (by /bin/sh) every SOAK_RESTART_EVERY seconds (20) while evaluations remain
//   SOAK_STEP_LIMIT (120)     seconds any one step may take        SOAK_WORK      scratch directory
//   SOAK_LOG                  the evaluation log
#include <berth/berth.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string env_or(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}

struct settings {
    std::string image = env_or("SOAK_IMAGE", "berth-busybox");
    int evaluations = std::stoi(env_or("SOAK_EVALS", "300"));
    int parallel = std::stoi(env_or("SOAK_PARALLEL", "64"));
    std::string restart_cmd = env_or("SOAK_RESTART_CMD", "");
    int restart_every = std::stoi(env_or("SOAK_RESTART_EVERY", "20"));
    std::chrono::seconds step_limit{std::stoi(env_or("SOAK_STEP_LIMIT", "120"))};
    fs::path work = env_or("SOAK_WORK", "/var/tmp/berth-soak");
    std::string run_label = "berth-soak-" + std::to_string(::getpid());
};

// How an evaluation ended. Every typed berth error has its own bucket, so the report shows what the faults became.
struct tally {
    std::mutex mutex;
    int completed = 0;
    int in_flight = 0;
    std::map<std::string, int> failed;  // typed failures by kind
    std::map<std::string, int> lost;    // untyped exceptions, wrong results reported as success
    // Set when an evaluation found the engine unreachable: the feeder holds new evaluations back until then, as a
    // harness would, so that a restart costs the evaluations it interrupts rather than every one queued behind it.
    std::chrono::steady_clock::time_point engine_down_until{};
    void fail(const std::string& kind) {
        std::lock_guard l(mutex);
        ++failed[kind];
    }
    void lose(const std::string& why) {
        std::lock_guard l(mutex);
        ++lost[why];
    }
};

// Runs one step under the step limit; a step that outlives it ends with a typed time-out, never hangs.
template <class T>
asio::awaitable<T> step(asio::awaitable<T> op, const settings& s) {
    return berth::with_timeout(std::move(op), s.step_limit);
}

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// One evaluation: container, copy in, exec that transforms the input, copy out, check, cleanup.
asio::awaitable<void> evaluation(berth::client& client, const settings& s, int index, tally& t) {
    const std::string name = s.run_label + "-" + std::to_string(index);
    const fs::path dir = s.work / std::to_string(index);
    fs::create_directories(dir / "in");
    const std::string payload = "evaluation " + std::to_string(index) + "\n";
    std::ofstream(dir / "in" / "data.txt") << payload;

    berth::build_container_options options;
    options.repo_path = (s.work / "repo").string();
    options.image_name = s.image;
    options.container_name = name;
    options.network_mode = "none";
    options.labels = {{"berth.soak", s.run_label}};
    options.verbose = false;
    berth::build_container_result box;
    try {
        box = co_await step(berth::build_container(client, options), s);
        if (!box) {  // the seed's contract: an empty result, the reason logged and given as a value
            const auto* why = box.failure();
            const bool unreachable = why && why->reason == berth::build_failure_reason::engine_unreachable;
            t.fail(unreachable ? "build_container: engine unreachable" : "build_container: other reason");
            if (unreachable) {
                std::lock_guard l(t.mutex);
                t.engine_down_until = std::chrono::steady_clock::now() + 1s;
            }
            co_return;
        }
        co_await step(berth::copy_to_container(*box, dir / "in", "/work/in", {.verbose = false}), s);
        auto result = co_await step(
            berth::exec(*box,
                        berth::argv("sh", "-c", "mkdir -p /work/out && rev /work/in/data.txt > /work/out/data.txt")),
            s);
        berth::log_container_output(result, {.verbose = false});
        co_await step(berth::copy_from_container(*box, "/work/out", dir / "out", {.verbose = false}), s);
        std::string expected(payload.rbegin() + 1, payload.rend());  // rev keeps the newline at the end
        expected += "\n";
        if (slurp(dir / "out" / "data.txt") == expected) {
            std::lock_guard l(t.mutex);
            ++t.completed;
        } else {
            t.lose("copied-out result differs from what the exec wrote");
        }
    } catch (const berth::engine_error& e) {
        t.fail("engine_error " + std::to_string(e.status()));
    } catch (const berth::protocol_error&) { t.fail("protocol_error"); } catch (const berth::tar::error&) {
        t.fail("tar::error");
    } catch (const berth::file_not_found&) { t.fail("file_not_found"); } catch (const berth::script_failed&) {
        t.fail("script_failed");
    } catch (const boost::system::system_error& e) {
        t.fail("system_error: " + e.code().message());
        if (e.code() == boost::system::errc::no_such_file_or_directory ||
            e.code() == boost::system::errc::connection_refused) {
            std::lock_guard l(t.mutex);
            t.engine_down_until = std::chrono::steady_clock::now() + 1s;
        }
    } catch (const std::exception& e) { t.lose(std::string("untyped exception: ") + e.what()); }
    if (box) {
        berth::cleanup_options cleanup;
        cleanup.verbose = false;
        cleanup.stop_timeout_seconds = 1;
        try {
            co_await step(berth::cleanup_container(*box, cleanup), s);
        } catch (const std::exception&) {
            // cleanup logs and swallows engine errors; a time-out here leaves the container to the final sweep
        }
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
}

// Starts evaluations as slots free up, at most s.parallel at once.
asio::awaitable<void> feeder(berth::client& client, const settings& s, tally& t, std::atomic<int>& started) {
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer tick(ex);
    while (started < s.evaluations) {
        bool room;
        {
            std::lock_guard l(t.mutex);
            room = t.in_flight < s.parallel && std::chrono::steady_clock::now() >= t.engine_down_until;
            if (room) ++t.in_flight;
        }
        if (!room) {
            tick.expires_after(5ms);
            co_await tick.async_wait(asio::use_awaitable);
            continue;
        }
        int index = started++;
        asio::co_spawn(ex, evaluation(client, s, index, t), [&t](std::exception_ptr) {
            std::lock_guard l(t.mutex);
            --t.in_flight;
        });
    }
}

long proc_status_kib(const char* key) {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind(key, 0) == 0) return std::stol(line.substr(std::string_view(key).size()));
    return -1;
}

long open_fds() {
    long n = 0;
    for ([[maybe_unused]] auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

// Removes what failed evaluations left behind (labelled with this run), and says how much that was.
asio::awaitable<int> sweep(berth::client& client, const settings& s) {
    berth::container_list_options mine;
    mine.all = true;
    mine.filters["label"] = {"berth.soak=" + s.run_label};
    int left = 0;
    for (auto& c : co_await client.containers().list(mine)) {
        ++left;
        try {
            co_await client.containers().remove(c.id, {.force = true});
        } catch (const std::exception&) {}
    }
    co_return left;
}

}  // namespace

int main() {
    settings s;
    fs::create_directories(s.work / "repo");
    if (const char* log = std::getenv("SOAK_LOG"))
        berth::setup_logger(log);
    else
        berth::setup_logger((s.work / "soak.log").string());

    asio::io_context io;
    auto client = berth::client::from_env(io.get_executor());
    tally t;
    std::atomic<int> started{0};
    std::atomic<bool> done{false};
    auto begin = std::chrono::steady_clock::now();
    auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count(); };

    // Samples of the client's fds and RSS, one a second, in one thread; restarts injected from another (a restart
    // blocks until the engine answers again, and the sampling must go on meanwhile).
    std::mutex samples_mutex;
    std::vector<std::tuple<double, long, long, int>> samples;  // time, fds, RSS KiB, completed
    std::thread monitor([&] {
        while (!done) {
            std::this_thread::sleep_for(1s);
            int completed;
            {
                std::lock_guard l(t.mutex);
                completed = t.completed;
            }
            std::lock_guard l(samples_mutex);
            samples.emplace_back(seconds(), open_fds(), proc_status_kib("VmRSS:"), completed);
        }
    });
    std::thread restarter([&] {
        int restarts = 0;
        auto next_restart = std::chrono::steady_clock::now() + std::chrono::seconds(s.restart_every);
        while (!done && !s.restart_cmd.empty()) {
            std::this_thread::sleep_for(200ms);
            if (std::chrono::steady_clock::now() < next_restart || started >= s.evaluations) continue;
            std::fprintf(stderr, "[%6.1f s] restarting the engine (%d)\n", seconds(), ++restarts);
            if (std::system(s.restart_cmd.c_str()) != 0) std::fprintf(stderr, "restart command failed\n");
            std::fprintf(stderr, "[%6.1f s] the engine answers again\n", seconds());
            next_restart = std::chrono::steady_clock::now() + std::chrono::seconds(s.restart_every);
        }
    });

    asio::co_spawn(io, feeder(client, s, t, started), asio::detached);
    io.run();  // returns when every evaluation has ended: each step is time-limited, so this cannot hang
    done = true;
    monitor.join();
    restarter.join();

    int leftovers = 0;
    try {
        leftovers = [&] {
            asio::io_context sweep_io;
            auto c = berth::client::from_env(sweep_io.get_executor());
            auto f = asio::co_spawn(sweep_io, sweep(c, s), asio::use_future);
            sweep_io.run();
            return f.get();
        }();
    } catch (const std::exception& e) { std::fprintf(stderr, "final sweep failed: %s\n", e.what()); }

    int failed = 0, lost = 0;
    for (auto& [kind, n] : t.failed) failed += n;
    for (auto& [kind, n] : t.lost) lost += n;
    lost += s.evaluations - (t.completed + failed + lost);  // never ended at all (cannot happen: io.run returned)
    std::printf("evaluations=%d completed=%d failed_typed=%d lost=%d leftover_containers=%d seconds=%.1f\n",
                s.evaluations, t.completed, failed, lost, leftovers, seconds());
    for (auto& [kind, n] : t.failed) std::printf("  failed  %4d  %s\n", n, kind.c_str());
    for (auto& [kind, n] : t.lost) std::printf("  LOST    %4d  %s\n", n, kind.c_str());
    // fds and RSS over time: a few evenly spaced samples, and the extremes after the first quarter (warm-up)
    std::printf("  time_s  fds  rss_mib  completed\n");
    for (std::size_t i = 0; i < samples.size(); i += std::max<std::size_t>(1, samples.size() / 12)) {
        auto [at, fds, rss, done_count] = samples[i];
        std::printf("  %6.1f %4ld %8.1f %10d\n", at, fds, static_cast<double>(rss) / 1024, done_count);
    }
    if (!samples.empty()) {
        auto [at, fds, rss, done_count] = samples.back();
        std::printf("  %6.1f %4ld %8.1f %10d  (last)\n", at, fds, static_cast<double>(rss) / 1024, done_count);
    }
    return lost == 0 ? 0 : 1;
}
