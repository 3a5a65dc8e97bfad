// SPDX-License-Identifier: BSL-1.0
// N evaluations on a Kubernetes cluster: the same calls as on one engine (build_container, copies, exec,
// cleanup_container), given a berth::kubernetes::kube_cluster instead of a client. The image is built once on the
// builder engine, pushed to the registry with the repository inside it, and every pod runs it by digest. The
// handle's copies and exec go through the API server (pods/exec over WebSocket). Every pod carries the run's
// label, so a crashed run's leftovers are found and removed by it.
//
//   kubernetes_harness KUBECONFIG BUILDER REGISTRY REPO_DIR [N]
//     KUBECONFIG  the cluster's kubeconfig (its current context and namespace)
//     BUILDER     the engine that builds and pushes the image (unix:///var/run/docker.sock)
//     REGISTRY    host:port the builder pushes to and every node pulls from
//     REPO_DIR    holds a Dockerfile whose image has sh and tar
#include <berth/berth.hpp>
#include <berth/kubernetes.hpp>
#include <berth/transport/tls.hpp>  // the API server is reached over TLS (link OpenSSL)

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace k8s = berth::kubernetes;
using namespace std::chrono_literals;

namespace {

// One evaluation; true when the pod ran and its result was copied out.
asio::awaitable<bool> evaluate(k8s::kube_cluster& cluster, fs::path repo, std::string run_id, int worker,
                               fs::path work) {
    k8s::kube_build_options build;
    build.repo_path = repo.string();
    build.image_name = "harness";
    build.container_name = "harness-" + run_id + "-" + std::to_string(worker);  // the pod's name
    build.labels["berth-run"] = run_id;     // how this run's evaluations are found again
    build.mount_name = "hyperagents";       // the repository at /hyperagents in the image
    build.reserve_memory_bytes = 64 << 20;  // the scheduler places the pod on a node with this much to spare
    build.memory_bytes = 256 << 20;         // and the container may not use more
    build.topology_spread = {k8s::topology_spread_constraint{}};  // spread the run over the nodes
    auto pod = co_await berth::build_container(cluster, build);
    if (!pod) {  // Kubernetes' own reason: "0/2 nodes are available: 2 Insufficient memory.", ...
        std::cerr << build.container_name << ": " << pod.failure()->message << "\n";
        co_return false;
    }
    std::cout << build.container_name << " runs on node " << pod->node << "\n";

    bool ok = false;
    try {
        const auto task = work / build.container_name;
        fs::create_directories(task);
        std::ofstream(task / "run.sh") << "ls /hyperagents > /task/result.txt\n";  // the repository is in the image
        co_await berth::copy_to_container(*pod, task, "/task");
        berth::run_options run;
        run.timeout = 60s;
        auto result = co_await berth::exec(*pod, berth::argv("sh", "/task/run.sh"), run);
        berth::log_container_output(result);  // throws script_failed on a non-zero exit
        co_await berth::copy_from_container(*pod, "/task/result.txt", task / "result.txt");
        ok = true;
    } catch (const berth::node_unreachable_error& e) {
        std::cerr << build.container_name << ": " << e.node().describe() << " is down: " << e.what() << "\n";
    } catch (const std::exception& e) { std::cerr << build.container_name << ": " << e.what() << "\n"; }
    co_await berth::cleanup_container(*pod);  // the pod stopped (confirmed by its node) and deleted
    co_return ok;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 5) {
        std::cerr << "usage: kubernetes_harness KUBECONFIG BUILDER REGISTRY REPO_DIR [N]\n";
        return 2;
    }
    const fs::path repo = argv[4];
    const int n = argc > 5 ? std::stoi(argv[5]) : 6;
    const std::string run_id = "run" + std::to_string(std::chrono::system_clock::now().time_since_epoch() / 1s);
    const fs::path work = fs::temp_directory_path() / ("berth-" + run_id);

    asio::io_context io;
    k8s::kubeconfig_load_options load;
    load.path = argv[1];
    auto api = k8s::kube_client::from_kubeconfig(io.get_executor(), load);
    auto builder = berth::client::at(io.get_executor(), argv[2]);
    k8s::kube_cluster_options options;
    options.registry = argv[3];
    k8s::kube_cluster cluster(api, builder, options);
    int passed = 0;
    for (int i = 0; i < n; ++i)
        asio::co_spawn(io, evaluate(cluster, repo, run_id, i, work), [&](std::exception_ptr e, bool ok) {
            if (e) std::rethrow_exception(e);
            passed += ok ? 1 : 0;
        });
    io.run();

    // Whatever a failure left behind (a node that died mid-run keeps its containers until it is back).
    asio::co_spawn(io, k8s::cleanup_evaluations(cluster, "berth-run=" + run_id),
                   [](std::exception_ptr e, k8s::kube_evaluations_cleanup_report report) {
                       if (e) std::rethrow_exception(e);
                       for (auto& node : report.unreachable) std::cerr << "not confirmed: " << node.describe() << "\n";
                   });
    io.restart();
    io.run();
    fs::remove_all(work);
    std::cout << passed << " of " << n << " evaluations passed\n";
    return passed == n ? 0 : 1;
}
