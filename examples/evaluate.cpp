// The Python module's workflow end to end, as an evaluation harness runs it: build the image and start a container
// with the repository mounted, copy a task in, run it, copy the results out, log everything, clean up.
//
//   evaluate [REPO_DIR] [WORK_DIR]
//
// The engine comes from DOCKER_HOST (else /var/run/docker.sock). REPO_DIR defaults to a demo repository created in
// WORK_DIR: a FROM-scratch image with Debian's static busybox, since no registry is reachable.
#include <berth/berth.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>

namespace asio = boost::asio;
namespace fs = std::filesystem;

static void write(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
}

static fs::path demo_repository(const fs::path& work) {
    auto repo = work / "repo";
    fs::create_directories(repo);
    fs::copy_file("/bin/busybox", repo / "busybox", fs::copy_options::overwrite_existing);
    write(repo / "Dockerfile",
          "FROM scratch\nCOPY busybox /bin/busybox\n"
          "RUN [\"/bin/busybox\",\"sh\",\"-c\",\"/bin/busybox --install -s /bin && mkdir -m 1777 /tmp\"]\n");
    write(repo / ".dockerignore", "outputs\n");
    return repo;
}

static asio::awaitable<int> evaluate(fs::path repo, fs::path work) {
    auto log = berth::setup_logger(work / "runs/worker_0.log");
    auto client = berth::client::from_env(co_await asio::this_coro::executor);

    berth::build_container_options options;
    options.repo_path = repo.string();
    options.image_name = "berth-demo";
    options.container_name = "berth-demo-run-0";
    options.mount_name = "hyperagents";  // the repository at /hyperagents (default: its directory's name)
    options.network_mode = "none";
    auto container = co_await berth::build_container(client, options);
    if (!container) {
        std::cerr << "build_container failed; see " << (work / "runs/worker_0.log") << "\n";
        co_return 1;
    }

    // the task: a script and its input, copied in; it writes a report the harness copies back out
    write(work / "task/run.sh", "#!/bin/sh\nset -e\nmkdir -p /hyperagents/outputs\n"
                                "wc -w < /task/input.txt > /task/words\n"
                                "echo \"{\\\"words\\\": $(cat /task/words)}\" > /task/report.json\n"
                                "echo task done\n");
    write(work / "task/input.txt", "the quick brown fox jumps over the lazy dog\n");
    co_await berth::copy_to_container(*container, work / "task", "/task");

    auto result = co_await berth::exec(*container, berth::argv("sh", "/task/run.sh"));
    int status = 0;
    try {
        berth::log_container_output(result);
        co_await berth::copy_from_container(*container, "/task/report.json", work / "results/report.json");
        std::ifstream report(work / "results/report.json");
        std::cout << "report: " << std::string(std::istreambuf_iterator<char>(report), {});
    } catch (const std::exception& e) {
        std::cerr << "evaluation failed: " << e.what() << "\n";
        status = 1;
    }
    co_await berth::cleanup_container(*container);
    std::cout << "log: " << (work / "runs/worker_0.log").string() << "\n";
    co_return status;
}

int main(int argc, char** argv) {
    try {
        fs::path work = argc > 2 ? fs::path(argv[2]) : fs::temp_directory_path() / "berth-evaluate";
        fs::create_directories(work);
        fs::path repo = argc > 1 ? fs::path(argv[1]) : demo_repository(work);
        asio::io_context io;
        auto done = asio::co_spawn(io, evaluate(repo, work), asio::use_future);
        io.run();
        return done.get();
    } catch (const std::exception& e) {
        std::cerr << "evaluate: " << e.what() << "\n";
        return 2;
    }
}
