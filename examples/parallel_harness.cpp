// SPDX-License-Identifier: BSL-1.0
// N evaluations at once on one io_context and one thread: each worker builds its container (the image is built
// once, the others find it), copies a task in, runs it under a time limit, copies the result out and cleans up,
// logging to its own file. One client serves them all; its connection pool keeps idle connections for reuse.
//
//   parallel_harness REPO_DIR [N] [WORK_DIR]      REPO_DIR holds a Dockerfile whose image has /bin/sh
//
// The engine comes from DOCKER_HOST (else /var/run/docker.sock). Containers get network mode "none".
#include <berth/berth.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// One evaluation; true when the task ran and its result was copied out.
asio::awaitable<bool> evaluate(berth::client& client, fs::path repo, fs::path work, int worker) {
    const auto name = "berth-harness-" + std::to_string(worker);
    // A logger per worker, passed explicitly: coroutines on one thread cannot use a per-thread logger.
    auto log = std::make_shared<berth::logger>(work / "logs" / (name + ".log"));

    berth::build_container_options build;
    build.repo_path = repo.string();
    build.image_name = "berth-harness";
    build.container_name = name;
    build.network_mode = "none";
    build.log = log;
    auto container = co_await berth::build_container(client, build);
    if (!container) {
        std::cerr << name << ": no container: " << container.failure()->message << "\n";
        co_return false;
    }

    bool ok = false;
    try {
        const auto task = work / ("task-" + std::to_string(worker));
        fs::create_directories(task);
        std::ofstream(task / "run.sh") << "echo worker " << worker << " > /task/result.txt\n";

        berth::copy_options copy;
        copy.log = log;
        co_await berth::copy_to_container(*container, task, "/task", copy);

        berth::run_options run;
        run.log = log;
        run.timeout = 60s;  // exec_interrupted (timed_out) with the output so far when it passes
        auto result = co_await berth::exec(*container, berth::argv("sh", "/task/run.sh"), run);
        berth::log_container_output(result, {.log = log});  // throws script_failed on a non-zero exit

        co_await berth::copy_from_container(*container, "/task/result.txt", work / "results" / (name + ".txt"), copy);
        ok = true;
    } catch (const std::exception& e) { log->error(std::string("evaluation failed: ") + e.what()); }
    berth::cleanup_options cleanup;
    cleanup.log = log;
    co_await berth::cleanup_container(*container, cleanup);
    co_return ok;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: parallel_harness REPO_DIR [N] [WORK_DIR]\n";
        return 2;
    }
    const fs::path repo = argv[1];
    const int n = argc > 2 ? std::stoi(argv[2]) : 4;
    const fs::path work = argc > 3 ? fs::path(argv[3]) : fs::temp_directory_path() / "berth-harness";

    asio::io_context io;
    auto client = berth::client::from_env(io.get_executor());
    int passed = 0;
    for (int i = 0; i < n; ++i) {
        // detached with a completion handler: each worker reports when done; an exception escaping a worker
        // (there should be none: evaluate catches them) would be rethrown here.
        asio::co_spawn(io, evaluate(client, repo, work, i), [&](std::exception_ptr e, bool ok) {
            if (e) std::rethrow_exception(e);
            passed += ok ? 1 : 0;
        });
    }
    io.run();
    std::cout << passed << " of " << n << " evaluations passed; logs in " << (work / "logs").string() << "\n";
    return passed == n ? 0 : 1;
}
