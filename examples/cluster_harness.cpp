// SPDX-License-Identifier: BSL-1.0
// N evaluations spread by Docker Swarm over a cluster: the same calls as on one engine (build_container, copies,
// exec, cleanup_container), given a berth::cluster instead of a client. The image is built once on the manager's
// engine, pushed to the registry with the repository inside it, and every service runs it by digest. Each handle
// is bound to the engine of the node that runs its task, so the copies and the exec go straight there. Every
// service carries the run's label, so a crashed run's leftovers are found and removed by it.
//
//   cluster_harness MANAGER CERT_DIR REGISTRY REPO_DIR [N]
//     MANAGER   tcp://127.0.0.1:2376 (a Swarm manager; every node carries the label berth.engine=tcp://...)
//     CERT_DIR  ca.pem cert.pem key.pem for the manager and the nodes (mutual TLS)
//     REGISTRY  host:port every node can pull from
//     REPO_DIR  holds a Dockerfile whose image has /bin/sh
#include <berth/berth.hpp>
#include <berth/cluster.hpp>
#include <berth/transport/tls.hpp>  // nodes and manager are reached over TLS (link OpenSSL)

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// One evaluation; true when the task ran and its result was copied out.
asio::awaitable<bool> evaluate(berth::cluster& cluster, fs::path repo, std::string run_id, int worker, fs::path work) {
    berth::cluster_build_options build;
    build.repo_path = repo.string();
    build.image_name = "harness";
    build.container_name = "harness-" + run_id + "-" + std::to_string(worker);  // the service's name
    build.labels["berth.run"] = run_id;  // how this run's evaluations are found again
    build.network_mode = "none";
    build.mount_name = "hyperagents";  // the repository at /hyperagents in the image (default: its directory's name)
    build.reserve_memory_bytes = 64 << 20;  // Swarm places the task on a node with this much to spare
    build.memory_bytes = 256 << 20;         // and the container may not use more
    auto container = co_await berth::build_container(cluster, build);
    if (!container) {  // Swarm's own reason: "no suitable node (insufficient resources on 3 nodes)", ...
        std::cerr << build.container_name << ": " << container.failure()->message << "\n";
        co_return false;
    }
    std::cout << build.container_name << " runs on " << container->engine().transport().describe() << "\n";

    bool ok = false;
    try {
        const auto task = work / build.container_name;
        fs::create_directories(task);
        std::ofstream(task / "run.sh") << "ls /hyperagents > /task/result.txt\n";  // the repository is in the image
        co_await berth::copy_to_container(*container, task, "/task");
        berth::run_options run;
        run.timeout = 60s;
        auto result = co_await berth::exec(*container, berth::argv("sh", "/task/run.sh"), run);
        berth::log_container_output(result);  // throws script_failed on a non-zero exit
        co_await berth::copy_from_container(*container, "/task/result.txt", task / "result.txt");
        ok = true;
    } catch (const berth::node_unreachable_error& e) {
        std::cerr << build.container_name << ": " << e.node().describe() << " is down: " << e.what() << "\n";
    } catch (const std::exception& e) { std::cerr << build.container_name << ": " << e.what() << "\n"; }
    co_await berth::cleanup_container(*container);  // removes the service; Swarm removes the container
    co_return ok;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 5) {
        std::cerr << "usage: cluster_harness MANAGER CERT_DIR REGISTRY REPO_DIR [N]\n";
        return 2;
    }
    const fs::path certs = argv[2];
    berth::engine_endpoint manager;
    manager.address = berth::parse_docker_host(argv[1]);
    manager.tls.enabled = true;
    manager.tls.ca_file = (certs / "ca.pem").string();
    manager.tls.cert_file = (certs / "cert.pem").string();
    manager.tls.key_file = (certs / "key.pem").string();
    berth::cluster_options options;
    options.registry = argv[3];
    const fs::path repo = argv[4];
    const int n = argc > 5 ? std::stoi(argv[5]) : 6;
    const std::string run_id = "run" + std::to_string(std::chrono::system_clock::now().time_since_epoch() / 1s);
    const fs::path work = fs::temp_directory_path() / ("berth-" + run_id);

    asio::io_context io;
    berth::cluster cluster = berth::cluster::at(io.get_executor(), manager, options);
    int passed = 0;
    for (int i = 0; i < n; ++i)
        asio::co_spawn(io, evaluate(cluster, repo, run_id, i, work), [&](std::exception_ptr e, bool ok) {
            if (e) std::rethrow_exception(e);
            passed += ok ? 1 : 0;
        });
    io.run();

    // Whatever a failure left behind (a node that died mid-run keeps its containers until it is back).
    asio::co_spawn(io, berth::cleanup_evaluations(cluster, "berth.run=" + run_id),
                   [](std::exception_ptr e, berth::evaluations_cleanup_report report) {
                       if (e) std::rethrow_exception(e);
                       for (auto& node : report.unreachable) std::cerr << "not cleaned: " << node.describe() << "\n";
                   });
    io.restart();
    io.run();
    std::cout << passed << " of " << n << " evaluations passed\n";
    return passed == n ? 0 : 1;
}
