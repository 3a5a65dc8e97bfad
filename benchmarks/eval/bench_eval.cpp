// berth's side of the evaluation benchmark (benchmarks/run): one step of the workflow per run, done with the
// evaluation API the way a harness would, printing "seconds=<wall time of the step>" (setup excluded) on stdout.
//
//   bench_eval w1 | w1a | w2-files | w2-big | w3-files | w3-big | w4 | w5 N | w-stdin | w-save | w-load | w4-usage [ROUNDS]
//
// w-stdin streams big.bin into `cat > /dev/null` in an exec (stdin_source::file), as
// `docker exec -i box sh -c 'cat > /dev/null' < big.bin` does. w-save saves BENCH_BIG_IMAGE to BENCH_OUT/image.tar
// (`docker save -o`), w-load loads BENCH_DATA/image.tar (`docker load -i`).
//
// w4-usage runs W4 with the engine's figures off and on (run_options::measure_usage), alternating for ROUNDS rounds
// (default 5) in one run, and prints the median of each and their ratio (on / off) instead of seconds=.
//
// The driver passes the shared setting in the environment (the peers read the same variables):
//   DOCKER_HOST    the engine
//   BENCH_IMAGE    the cached image (w1, w5)          BENCH_REPO   build context and bind mount
//   BENCH_DATA     files/, big.bin, one.bin to copy  BENCH_OUT    where copies out land
//   BENCH_BOX      a running container for w2/w3/w4  BENCH_NAME   this client's container name (prefix)
//   BENCH_GRACE    stop timeout in seconds; "default" keeps berth's own defaults (w1)
//   BENCH_LOG      the evaluation log file
#include <berth/berth.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

std::string env(const char* name, const char* fallback = nullptr) {
    if (const char* v = std::getenv(name); v && *v) return v;
    if (fallback) return fallback;
    throw std::runtime_error(std::string("bench_eval: ") + name + " is not set");
}

struct settings {
    std::string image = env("BENCH_IMAGE", "berth-bench");
    std::string repo = env("BENCH_REPO", ".");
    fs::path data = env("BENCH_DATA", ".");
    fs::path out = env("BENCH_OUT", ".");
    std::string box = env("BENCH_BOX", "bench-box");
    std::string name = env("BENCH_NAME", "bench-berth");
    std::string grace = env("BENCH_GRACE", "1");
};

void check(bool ok, const std::string& what) {
    if (!ok) throw std::runtime_error("bench_eval: " + what);
}

berth::build_container_options evaluation(const settings& s, std::string name) {
    berth::build_container_options o;
    o.repo_path = s.repo;
    o.image_name = s.image;
    o.container_name = std::move(name);
    o.network_mode = "none";       // no network on these machines
    o.mount_name = "hyperagents";  // where the Python peers mount it
    return o;
}

berth::cleanup_options cleanup(const settings& s) {
    berth::cleanup_options o;
    if (s.grace != "default") o.stop_timeout_seconds = std::stoi(s.grace);
    return o;
}

// W1: image check, same-name removal, create + start, exec exit 0, exec exit 3, stop + remove.
asio::awaitable<void> w1(berth::client& client, const settings& s) {
    auto options = evaluation(s, s.name);
    auto box = co_await berth::build_container(client, options);
    check(box.has_value(), "build_container failed (see BENCH_LOG)");
    auto ok = co_await berth::exec(*box, berth::argv("sh", "-c", "exit 0"));
    berth::log_container_output(ok);
    auto failing = co_await berth::exec(*box, berth::argv("sh", "-c", "exit 3"));
    try {
        berth::log_container_output(failing);
    } catch (const berth::script_failed&) {}
    check(failing.exit_code == 3, "exit 3 did not report 3");
    co_await berth::cleanup_container(*box, cleanup(s));
}

// W1a: the image built without cache, as build_container(force_rebuild) builds it.
asio::awaitable<void> w1a(berth::client& client, const settings& s) {
    berth::tar::pack_options pack;
    pack.use_dockerignore = true;
    berth::tar::packer context(s.repo, "", pack);
    berth::build_options build;
    build.tag = s.name;  // the driver removes it afterwards
    build.no_cache = true;
    build.force_remove_intermediate = true;
    auto log = berth::resolve_logger({});
    build.on_output = [&log](berth::output_stream, std::string_view line) {
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
        if (!line.empty()) log->info(line);
    };
    co_await client.images().build(context, build);
}

asio::awaitable<void> w4(berth::client& client, const settings& s, bool measure_usage = false) {
    berth::container box{&client, s.box, s.box};
    berth::run_options options;
    options.measure_usage = measure_usage;
    for (int i = 0; i < 50; ++i) {
        auto r = co_await berth::exec(box, berth::argv("echo", "hi"), options);
        if (measure_usage) check(r.usage.container_cpu_seconds.has_value(), "no CPU figure with measure_usage");
        berth::log_container_output(r);
        check(r.output == "hi\n", "echo hi printed '" + r.output + "'");
    }
}

// W5: one evaluation of the parallel batch: create + start, an exec, 1 MiB in, cleanup.
asio::awaitable<void> w5_worker(berth::client& client, const settings& s, int i, int& failures) {
    try {
        auto options = evaluation(s, s.name + "-" + std::to_string(i));
        auto box = co_await berth::build_container(client, options);
        check(box.has_value(), "build_container failed (see BENCH_LOG)");
        auto r = co_await berth::exec(*box, berth::argv("echo", "hi"));
        berth::log_container_output(r);
        fs::path one = s.data / "one.bin";
        co_await berth::copy_to_container(*box, one, "/tmp/one.bin");
        co_await berth::cleanup_container(*box, cleanup(s));
    } catch (const std::exception& e) {
        std::cerr << "worker " << i << ": " << e.what() << "\n";
        ++failures;
    }
}

asio::awaitable<void> w5(berth::client& client, const settings& s, int n) {
    auto ex = co_await asio::this_coro::executor;
    int failures = 0;
    int running = n;
    asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
    for (int i = 0; i < n; ++i)
        asio::co_spawn(ex, w5_worker(client, s, i, failures), [&](std::exception_ptr) {
            if (--running == 0) all_done.cancel();
        });
    boost::system::error_code ec;
    co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    check(failures == 0, std::to_string(failures) + " of " + std::to_string(n) + " evaluations failed");
}

// After w5: every connection is back in the pool (none leaked), and no container of the batch is left.
asio::awaitable<void> w5_check(berth::client& client, const settings& s) {
    berth::container_list_options list;
    list.all = true;
    list.filters["name"] = {s.name + "-"};
    auto left = co_await client.containers().list(list);
    std::cout << "open_connections=" << client.open_connections() << " idle_connections=" << client.idle_connections()
              << " containers_left=" << left.size() << "\n";
    check(left.empty(), "containers left behind");
    check(client.open_connections() == client.idle_connections(), "connections still leased after the batch");
}

// W4 with the figures off and on, alternating (the order swaps each round), medians and their ratio.
asio::awaitable<void> w4_usage(berth::client& client, const settings& s, int rounds) {
    std::vector<double> off, on;
    co_await w4(client, s, false);  // warm-up: the connection pool and the engine's caches
    co_await w4(client, s, true);
    for (int round = 0; round < rounds; ++round)
        for (int k = 0; k < 2; ++k) {
            const bool measure = (k == 0) == (round % 2 == 1);
            auto started = std::chrono::steady_clock::now();
            co_await w4(client, s, measure);
            std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
            (measure ? on : off).push_back(took.count());
        }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    };
    const double m_off = median(off), m_on = median(on);
    std::printf("w4_figures_off_seconds=%.6f\nw4_figures_on_seconds=%.6f\nratio_on_off=%.3f\nrounds=%d\n", m_off, m_on,
                m_on / m_off, rounds);
    std::fflush(stdout);
}

asio::awaitable<void> run_step(std::string step, int n) {
    settings s;
    auto client = berth::client::from_env(co_await asio::this_coro::executor);
    if (step == "w4-usage") {
        co_await w4_usage(client, s, n);
        co_return;
    }
    auto started = std::chrono::steady_clock::now();
    if (step == "w1") {
        co_await w1(client, s);
    } else if (step == "w1a") {
        co_await w1a(client, s);
    } else if (step == "w2-files" || step == "w2-big") {
        berth::container box{&client, s.box, s.box};
        auto what = step == "w2-files" ? std::string("files") : std::string("big.bin");
        fs::path from = s.data / what;
        std::string to = "/dst/" + s.name + "/" + what;
        co_await berth::copy_to_container(box, from, to);
    } else if (step == "w3-files" || step == "w3-big") {
        berth::container box{&client, s.box, s.box};
        auto what = step == "w3-files" ? std::string("files") : std::string("big.bin");
        std::string from = "/src/" + what;
        fs::path to = s.out / what;
        co_await berth::copy_from_container(box, from, to);
    } else if (step == "w4") {
        co_await w4(client, s);
    } else if (step == "w-save") {
        co_await client.images().save_to_file(env("BENCH_BIG_IMAGE", "berth-bench-200"), s.out / "image.tar");
    } else if (step == "w-load") {
        berth::image_load_options quiet{.quiet = true};
        auto loaded = co_await client.images().load_from_file(s.data / "image.tar", std::move(quiet));
        check(!loaded.loaded.empty(), "the engine reported no image loaded");
    } else if (step == "w-stdin") {
        berth::exec_options options{.cmd = {"sh", "-c", "cat > /dev/null"},
                                    .stdin_ = berth::stdin_source::file(s.data / "big.bin")};
        const int code = co_await client.execs().run(s.box, std::move(options));
        check(code == 0, "cat exited with " + std::to_string(code));
    } else if (step == "w5") {
        co_await w5(client, s, n);
    } else {
        throw std::invalid_argument("bench_eval: unknown step '" + step + "'");
    }
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
    std::printf("seconds=%.6f\n", took.count());
    std::fflush(stdout);
    if (step == "w5") co_await w5_check(client, s);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr
            << "usage: bench_eval w1|w1a|w2-files|w2-big|w3-files|w3-big|w4|w5 N|w-stdin|w-save|w-load|w4-usage [ROUNDS]\n";
        return 2;
    }
    try {
        berth::setup_logger(env("BENCH_LOG", "/tmp/bench_eval.log"));
        int n = argc > 2 ? std::stoi(argv[2]) : std::string_view(argv[1]) == "w4-usage" ? 5 : 16;
        asio::io_context io;
        auto done = asio::co_spawn(io, run_step(argv[1], n), asio::use_future);
        io.run();
        done.get();
        return 0;
    } catch (const std::exception& e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
}
