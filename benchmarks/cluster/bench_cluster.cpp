// berth on a Swarm cluster versus one engine (built and run by benchmarks/cluster/run). An evaluation is what a
// harness does: build_container, `exec echo hi` (its output checked), cleanup_container.
//
//   bench_cluster one ROUNDS   ROUNDS evaluations one at a time, alternately on node 1's engine directly and
//                              through the cluster; one line per evaluation (seconds):
//                                direct start=S exec=S cleanup=S
//                                cluster start=S swarm=S ran=S queue=S exec=S cleanup=S node=HOSTNAME
//                              Swarm's own times, from the manager's timestamps, all from the service's creation:
//                              queue until its task was made, ran until the node says it runs (Status.Timestamp),
//                              swarm until the manager has recorded that (the task's UpdatedAt; the dispatcher
//                              batches status reports). start - swarm is what berth adds
//   bench_cluster spread N     N evaluations at once through the cluster, with one run label:
//                                spread ok=K seconds=S nodes=HOST:COUNT,... left=L
//                              left: services of the run still on the manager afterwards
//
// The cluster is scripts/swarm's, from its environment: BERTH_SWARM_MANAGER, BERTH_SWARM_NODE1, BERTH_SWARM_CERTS,
// BERTH_SWARM_REGISTRY. BENCH_REPO is the build context (a Dockerfile FROM the cluster's base image), BENCH_IMAGE
// the image's name, BENCH_LOG the evaluation log. Before the timed rounds one evaluation of each kind warms the
// image up (the cluster builds and pushes it once per image name).
#include <berth/berth.hpp>
#include <berth/cluster.hpp>
#include <berth/transport/tls.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>

namespace asio = boost::asio;
namespace json = boost::json;
using clock_type = std::chrono::steady_clock;

namespace {

std::string env(const char* name, const char* fallback = nullptr) {
    if (const char* v = std::getenv(name); v && *v) return v;
    if (fallback) return fallback;
    throw std::runtime_error(std::string("bench_cluster: ") + name + " is not set (run scripts/swarm start)");
}

void check(bool ok, const std::string& what) {
    if (!ok) throw std::runtime_error("bench_cluster: " + what);
}

double seconds_since(clock_type::time_point began) {
    return std::chrono::duration<double>(clock_type::now() - began).count();
}

// A Swarm timestamp ("2026-11-27T04:46:52.027634944Z", always UTC) in seconds since the epoch.
double swarm_time(const json::value* v) {
    check(v && v->is_string(), "a task or service reply without its timestamp");
    std::string s(v->as_string());
    std::tm tm{};
    int consumed = 0;
    check(std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                      &tm.tm_sec, &consumed) == 6,
          "unreadable timestamp " + s);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    double fraction = 0;
    if (s[static_cast<std::size_t>(consumed)] == '.')
        fraction = std::stod("0" + s.substr(static_cast<std::size_t>(consumed)));
    return static_cast<double>(timegm(&tm)) + fraction;
}

berth::engine_endpoint tls_endpoint(const std::string& address) {
    const std::string certs = env("BERTH_SWARM_CERTS");
    berth::engine_endpoint e;
    e.address = berth::parse_docker_host(address);
    e.tls.enabled = true;
    e.tls.ca_file = certs + "/ca.pem";
    e.tls.cert_file = certs + "/cert.pem";
    e.tls.key_file = certs + "/key.pem";
    return e;
}

berth::cluster_build_options evaluation(const std::string& name, const std::string& run) {
    berth::cluster_build_options o;
    o.repo_path = env("BENCH_REPO");
    o.image_name = env("BENCH_IMAGE", "berth-bench-cluster");
    o.container_name = name;
    o.network_mode = "none";
    o.labels["berth.run"] = run;
    return o;
}

std::string unique_name(const std::string& kind, int i) {
    static const auto stamp = std::to_string(std::time(nullptr));
    return "bench-" + kind + "-" + stamp + "-" + std::to_string(i);
}

// exec and cleanup of a started evaluation: their seconds.
template <class Container>
asio::awaitable<std::pair<double, double>> finish(Container c) {
    auto began = clock_type::now();
    auto cmd = berth::argv("echo", "hi");
    auto r = co_await berth::exec(c, cmd);
    check(r.exit_code == 0 && r.stdout_text == "hi\n", "exec in " + c.name + " gave '" + r.output + "'");
    double exec = seconds_since(began);
    began = clock_type::now();
    co_await berth::cleanup_container(c);
    co_return std::pair{exec, seconds_since(began)};
}

template <class Result>
void check_started(const Result& c, const std::string& name) {
    check(c.has_value(),
          "build_container " + name + " failed: " + (c.failure() ? c.failure()->message : std::string("?")));
}

asio::awaitable<void> direct_once(berth::client& engine, const std::string& name, bool print) {
    const berth::build_container_options o = evaluation(name, "direct");
    auto began = clock_type::now();
    auto c = co_await berth::build_container(engine, o);
    double start = seconds_since(began);
    check_started(c, name);
    auto [exec, cleanup] = co_await finish(*c);
    if (print) std::printf("direct start=%.4f exec=%.4f cleanup=%.4f\n", start, exec, cleanup);
}

asio::awaitable<void> cluster_once(berth::cluster& cluster, const std::string& name, bool print) {
    const auto o = evaluation(name, "one");
    auto began = clock_type::now();
    auto c = co_await berth::build_container(cluster, o);
    double start = seconds_since(began);
    check_started(c, name);
    // Swarm's own account, from the manager's timestamps: service created, task created, task running.
    const std::string service_id = c->service_id;
    check(!service_id.empty(), "no service recorded for " + name);
    auto service = co_await cluster.swarm().inspect_service(service_id);
    berth::swarm_filters of_service{{"service", {service_id}}};
    auto tasks = co_await cluster.swarm().list_tasks(of_service);
    check(tasks.size() == 1 && tasks[0].state == "running", "the task of " + name + " is not running alone");
    const auto& task = tasks[0].raw;
    const double created = swarm_time(service.raw.if_contains("CreatedAt"));
    const double queued = swarm_time(task.if_contains("CreatedAt")) - created;
    const auto* status = task.if_contains("Status");
    check(status && status->is_object(), "a task without Status");
    const double ran = swarm_time(status->as_object().if_contains("Timestamp")) - created;
    const double recorded = swarm_time(task.if_contains("UpdatedAt")) - created;
    const std::string node = c->node.hostname;
    auto [exec, cleanup] = co_await finish(*c);
    if (print)
        std::printf("cluster start=%.4f swarm=%.4f ran=%.4f queue=%.4f exec=%.4f cleanup=%.4f node=%s\n", start,
                    recorded, ran, queued, exec, cleanup, node.c_str());
}

asio::awaitable<void> one(int rounds) {
    auto ex = co_await asio::this_coro::executor;
    auto engine = berth::client::at(ex, tls_endpoint(env("BERTH_SWARM_NODE1")));
    berth::cluster_options options;
    options.registry = env("BERTH_SWARM_REGISTRY");
    auto cluster = berth::cluster::at(ex, tls_endpoint(env("BERTH_SWARM_MANAGER")), options);
    co_await cluster_once(cluster, unique_name("warm-cluster", 0), false);  // builds and pushes the image
    co_await direct_once(engine, unique_name("warm-direct", 0), false);
    for (int i = 1; i <= rounds; ++i) {
        co_await direct_once(engine, unique_name("direct", i), true);
        co_await cluster_once(cluster, unique_name("cluster", i), true);
        std::fflush(stdout);
    }
}

asio::awaitable<void> spread_one(berth::cluster& cluster, std::string name, std::string run,
                                 std::map<std::string, int>& per_node, int& ok) {
    const auto o = evaluation(name, run);
    auto c = co_await berth::build_container(cluster, o);
    check_started(c, name);
    const std::string node = c->node.hostname;
    co_await finish(*c);
    ++per_node[node];
    ++ok;
}

asio::awaitable<void> spread(int n) {
    auto ex = co_await asio::this_coro::executor;
    berth::cluster_options options;
    options.registry = env("BERTH_SWARM_REGISTRY");
    auto cluster = berth::cluster::at(ex, tls_endpoint(env("BERTH_SWARM_MANAGER")), options);
    const std::string run = unique_name("spread", n);
    co_await cluster_once(cluster, unique_name("warm-spread", 0), false);  // the image, built and pushed once
    std::map<std::string, int> per_node;
    int ok = 0, running = n;
    asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
    auto began = clock_type::now();
    for (int i = 0; i < n; ++i)
        asio::co_spawn(ex, spread_one(cluster, run + "-" + std::to_string(i), run, per_node, ok),
                       [&](std::exception_ptr e) {
                           if (e) {
                               try {
                                   std::rethrow_exception(e);
                               } catch (const std::exception& what) { std::cerr << what.what() << "\n"; }
                           }
                           if (--running == 0) all_done.cancel();
                       });
    boost::system::error_code ec;
    co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    double took = seconds_since(began);
    auto left = co_await berth::list_evaluations(cluster, "berth.run=" + run);
    std::string nodes;
    for (auto& [host, count] : per_node) nodes += (nodes.empty() ? "" : ",") + host + ":" + std::to_string(count);
    std::printf("spread ok=%d seconds=%.4f nodes=%s left=%zu\n", ok, took, nodes.c_str(), left.size());
}

}  // namespace

int main(int argc, char** argv) {
    const std::string mode = argc == 3 ? argv[1] : "";
    if (mode != "one" && mode != "spread") {
        std::cerr << "usage: bench_cluster one ROUNDS | spread N\n";
        return 2;
    }
    try {
        berth::setup_logger(env("BENCH_LOG", "/tmp/bench_cluster.log"));
        const int n = std::stoi(argv[2]);
        asio::io_context io;
        std::exception_ptr failed;
        asio::co_spawn(io, mode == "one" ? one(n) : spread(n), [&](std::exception_ptr e) { failed = e; });
        io.run();
        if (failed) std::rethrow_exception(failed);
    } catch (const std::exception& e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
    return 0;
}
