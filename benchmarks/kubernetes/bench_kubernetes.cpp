// berth on a Kubernetes cluster (built and run by benchmarks/kubernetes/run). One process per measured copy, so
// that its peak RSS is the copy's alone:
//
//   bench_kubernetes copy-in POD SOURCE DEST    copy_to_pod of SOURCE (a host file) to DEST in POD's container
//   bench_kubernetes copy-out POD SOURCE DEST   copy_from_pod of SOURCE in the pod to DEST on the host
//                                               each prints: copy seconds=S rss_kib=K
//                                               (S the copy alone, K getrusage's ru_maxrss of this process;
//                                               BENCH_K8S_FRAME_KIB tries another copy_to_pod frame size)
//
// and the overhead of placing one evaluation, each way ROUNDS times after a warm-up, the three interleaved:
//
//   bench_kubernetes place ROUNDS
//     kube start=S created=S running=S api_running=N api_ready=N node=NODE
//         berth::build_container(kube_cluster, ...) until it returns (start: it returns once the pod is Running),
//         then cleanup_container. A watch on the round's label, opened before by a client of its own, sees the pod
//         appear in the API server (created) and reach phase Running (running), in seconds from the call (the
//         client's clock, millisecond resolution). api_*: the API server's own record, from creationTimestamp to the container's
//         state.running.startedAt and to the Ready condition's lastTransitionTime: whole seconds in 1.20.
//     kubectl start=S
//         `kubectl run --restart=Never` of the same image and command, then `kubectl wait --for=condition=Ready`
//     swarm start=S swarm=S node=HOST
//         berth::build_container(swarm cluster, ...) as benchmarks/cluster does; swarm: the manager's own time
//         from the service's creation to its task recorded as running
//
// The Kubernetes cluster is the kubeconfig's at BERTH_K8S_KUBECONFIG (its current context and namespace). place
// also takes BENCH_REPO and BENCH_SWARM_REPO (the build contexts: a Dockerfile FROM an image the builder, and the
// Swarm's nodes, have), BENCH_IMAGE (the image's name), BENCH_RUN (the label value berth-bench=RUN every pod gets), BENCH_BUILDER (the engine that builds and
// pushes for Kubernetes), BENCH_REGISTRY (host:port, reached by that engine and by the nodes), BENCH_LOG, and the
// Swarm's environment (BERTH_SWARM_MANAGER, BERTH_SWARM_CERTS, BERTH_SWARM_REGISTRY).
#include <berth/berth.hpp>
#include <berth/cluster.hpp>
#include <berth/kubernetes.hpp>
#include <berth/transport/tls.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

namespace asio = boost::asio;
namespace json = boost::json;
namespace k8s = berth::kubernetes;
using clock_type = std::chrono::steady_clock;

namespace {

std::string env(const char* name, const char* fallback = nullptr) {
    if (const char* v = std::getenv(name); v && *v) return v;
    if (fallback) return fallback;
    throw std::runtime_error(std::string("bench_kubernetes: ") + name + " is not set");
}

void check(bool ok, const std::string& what) {
    if (!ok) throw std::runtime_error("bench_kubernetes: " + what);
}

double seconds_since(clock_type::time_point began) {
    return std::chrono::duration<double>(clock_type::now() - began).count();
}

long peak_rss_kib() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss;  // KiB on Linux
}

k8s::kube_client cluster_client(asio::any_io_executor ex) {
    k8s::kubeconfig_load_options load{.path = env("BERTH_K8S_KUBECONFIG")};
    return k8s::kube_client::from_kubeconfig(std::move(ex), load);
}

asio::awaitable<void> copy(std::string mode, std::string pod, std::string source, std::string dest) {
    auto api = cluster_client(co_await asio::this_coro::executor);
    const k8s::pod_container where{.namespace_ = api.namespace_name(), .pod = pod};
    const k8s::request_headers headers = api.auth_headers();
    k8s::pod_copy_options quiet;
    quiet.verbose = false;
    if (const char* kib = std::getenv("BENCH_K8S_FRAME_KIB"); kib && std::atoi(kib) > 0)
        quiet.frame_size = std::size_t(std::atoi(kib)) << 10;  // to try other frame sizes (default 1 MiB)
    auto began = clock_type::now();
    if (mode == "copy-in")
        co_await k8s::copy_to_pod(api.transport(), headers, where, source, dest, quiet);
    else
        co_await k8s::copy_from_pod(api.transport(), headers, where, source, dest, quiet);
    const double took = seconds_since(began);
    std::printf("copy seconds=%.4f rss_kib=%ld\n", took, peak_rss_kib());
}


// An RFC 3339 timestamp as the API server and the Swarm manager write it ("2026-12-08T01:30:00Z", with a fraction
// in Swarm's; always UTC) in seconds since the epoch.
double utc_time(const json::value* v) {
    check(v && v->is_string(), "a reply without its timestamp");
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

const json::value* at_path(const json::object& o, std::initializer_list<const char*> keys) {
    const json::value* v = nullptr;
    const json::object* here = &o;
    for (const char* k : keys) {
        if (!here) return nullptr;
        v = here->if_contains(k);
        here = v && v->is_object() ? &v->as_object() : nullptr;
    }
    return v;
}

std::string unique_name(const std::string& kind, int i) {
    static const auto stamp = std::to_string(std::time(nullptr));
    return "bench-" + kind + "-" + stamp + "-" + std::to_string(i);
}

// A shell word: single-quoted.
std::string quoted(const std::string& word) {
    std::string q = "'";
    for (char c : word) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

template <class Result>
void check_started(const Result& c, const std::string& name) {
    check(c.has_value(),
          "build_container " + name + " failed: " + (c.failure() ? c.failure()->message : std::string("?")));
}

// What a watch on the round's label saw, in seconds from `began` (negative: not seen). Shared with the watch, which
// may outlive its round.
struct pod_seen {
    clock_type::time_point began{};
    double created = -1, running = -1;
    bool ended = false;
};

// Until the pod is Running (build_container's own end), its deletion or the watch's end.
asio::awaitable<void> watch_pod(k8s::pod_watch<berth::socket_transport> watch, std::shared_ptr<pod_seen> seen) {
    while (auto event = co_await watch.next()) {
        const double t = seconds_since(seen->began);
        if (event->type == k8s::watch_event::kind::deleted) break;
        if (event->type == k8s::watch_event::kind::bookmark) continue;
        if (seen->created < 0) seen->created = t;
        if (event->object.phase == "Running") {
            seen->running = t;
            break;
        }
    }
}

struct placement {
    k8s::kube_client& api;
    k8s::kube_client& watcher;  // the rounds' watches: a client of their own, apart from berth's requests
    k8s::kube_cluster& kube;
    berth::cluster& swarm;
    std::string run;
    // From berth's warm-up pod: kubectl runs the same image and command, in a pod of the same shape.
    std::string kubectl_image{}, kubectl_command{}, kubectl_overrides{};
};

asio::awaitable<void> kube_once(placement& p, const std::string& name, bool print) {
    k8s::kube_build_options o;
    o.repo_path = env("BENCH_REPO");
    o.image_name = env("BENCH_IMAGE", "berth-bench-k8s");
    o.container_name = name;
    o.verbose = false;
    o.labels["berth-bench"] = p.run;
    o.labels["berth-bench-round"] = name;
    // The watch is open before the evaluation starts, so that it sees the pod's first state.
    k8s::pod_watch_options w{.label_selector = "berth-bench-round=" + name, .timeout_seconds = 150};
    w.idle_limit = std::chrono::seconds(150);
    auto watch = co_await p.watcher.pods().watch(w);
    auto ex = co_await asio::this_coro::executor;
    auto seen = std::make_shared<pod_seen>();
    seen->began = clock_type::now();
    asio::co_spawn(ex, watch_pod(std::move(watch), seen), [seen, name](std::exception_ptr e) {
        seen->ended = true;
        if (!e || seen->running >= 0) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& what) { std::cerr << "watch of " << name << ": " << what.what() << "\n"; }
    });
    auto r = co_await berth::build_container(p.kube, o);
    const double start = seconds_since(seen->began);
    check_started(r, name);
    // The watch's Running event arrives about when build_container's own watch sees it: wait for it, bounded.
    asio::steady_timer pause(ex);
    for (int i = 0; i < 1000 && seen->running < 0 && !seen->ended; ++i) {
        pause.expires_after(std::chrono::milliseconds(5));
        co_await pause.async_wait(asio::use_awaitable);
    }
    check(seen->created >= 0 && seen->running >= 0, "the watch did not see " + name + " created and running");
    // The API server's own record of the pod (whole seconds in 1.20).
    k8s::pod_list_options of_round{.label_selector = "berth-bench-round=" + name};
    auto pods = co_await p.api.pods().list(of_round);
    check(pods.items.size() == 1, "not one pod for " + name);
    const auto& pod = pods.items[0];
    const auto& raw = pod.raw;
    const double created = utc_time(at_path(raw, {"metadata", "creationTimestamp"}));
    double started = -1, ready = -1;
    if (auto* statuses = at_path(raw, {"status", "containerStatuses"}); statuses && statuses->is_array())
        for (auto& s : statuses->as_array())
            if (s.is_object())
                if (auto* t = at_path(s.as_object(), {"state", "running", "startedAt"}))
                    started = utc_time(t) - created;
    if (auto* conditions = at_path(raw, {"status", "conditions"}); conditions && conditions->is_array())
        for (auto& c : conditions->as_array())
            if (c.is_object() && at_path(c.as_object(), {"type"}) && *at_path(c.as_object(), {"type"}) == "Ready")
                ready = utc_time(at_path(c.as_object(), {"lastTransitionTime"})) - created;
    if (p.kubectl_image.empty()) {  // the warm-up: what kubectl is to run
        const auto* container = at_path(raw, {"spec", "containers"});
        check(container && container->is_array() && !container->as_array().empty(), "a pod without containers");
        const auto& c = container->as_array()[0].as_object();
        const auto* image = c.if_contains("image");
        check(image && image->is_string(), "a pod container without its image");
        p.kubectl_image = std::string(image->as_string());
        for (const char* key : {"command", "args"})
            if (auto* words = c.if_contains(key); words && words->is_array())
                for (auto& word : words->as_array())
                    if (word.is_string()) p.kubectl_command += " " + quoted(std::string(word.as_string()));
        // the rest of the pod's shape: the pause process as PID 1 (shareProcessNamespace), the grace period
        json::object spec{{"terminationGracePeriodSeconds", 0}};
        if (auto* shared = at_path(raw, {"spec", "shareProcessNamespace"})) spec["shareProcessNamespace"] = *shared;
        p.kubectl_overrides = json::serialize(json::object{{"spec", std::move(spec)}});
    }
    const std::string node = pod.node_name;
    co_await berth::cleanup_container(*r);
    if (print)
        std::printf("kube start=%.4f created=%.4f running=%.4f api_running=%.0f api_ready=%.0f node=%s\n", start,
                    seen->created, seen->running, started, ready, node.c_str());
}

// `kubectl run` of the same image and command, then `kubectl wait` until it is Ready (the pod removed afterwards,
// outside the time).
void kubectl_once(const placement& p, const std::string& name, bool print) {
    const std::string kubectl = "kubectl --kubeconfig " + quoted(env("BERTH_K8S_KUBECONFIG"));
    const std::string run = kubectl + " run " + name + " --image=" + quoted(p.kubectl_image) +
                            " --restart=Never --labels=berth-bench=" + p.run +
                            " --overrides=" + quoted(p.kubectl_overrides) + " --command --" + p.kubectl_command +
                            " >/dev/null && " + kubectl + " wait --for=condition=Ready --timeout=120s pod/" + name +
                            " >/dev/null";
    auto began = clock_type::now();
    const int status = std::system(run.c_str());
    const double start = seconds_since(began);
    const std::string remove = kubectl + " delete pod " + name + " --grace-period=0 >/dev/null";
    const int removed = std::system(remove.c_str());
    check(status == 0, "kubectl run or wait of " + name + " failed");
    check(removed == 0, "kubectl delete of " + name + " failed");
    if (print) std::printf("kubectl start=%.4f\n", start);
}

berth::engine_endpoint swarm_endpoint(const std::string& address) {
    const std::string certs = env("BERTH_SWARM_CERTS");
    berth::engine_endpoint e;
    e.address = berth::parse_docker_host(address);
    e.tls.enabled = true;
    e.tls.ca_file = certs + "/ca.pem";
    e.tls.cert_file = certs + "/cert.pem";
    e.tls.key_file = certs + "/key.pem";
    return e;
}

asio::awaitable<void> swarm_once(placement& p, const std::string& name, bool print) {
    berth::cluster_build_options o;
    o.repo_path = env("BENCH_SWARM_REPO");
    o.image_name = env("BENCH_IMAGE", "berth-bench-k8s") + "-swarm";
    o.container_name = name;
    o.network_mode = "none";
    o.verbose = false;
    o.labels["berth-bench"] = p.run;
    auto began = clock_type::now();
    auto c = co_await berth::build_container(p.swarm, o);
    const double start = seconds_since(began);
    check_started(c, name);
    // Swarm's own time, from the manager's timestamps: service created to task recorded as running.
    const std::string service_id = c->service_id;
    auto service = co_await p.swarm.swarm().inspect_service(service_id);
    berth::swarm_filters of_service{{"service", {service_id}}};
    auto tasks = co_await p.swarm.swarm().list_tasks(of_service);
    check(tasks.size() == 1 && tasks[0].state == "running", "the task of " + name + " is not running alone");
    const double recorded = utc_time(tasks[0].raw.if_contains("UpdatedAt")) -
                            utc_time(service.raw.if_contains("CreatedAt"));
    const std::string node = c->node.hostname;
    co_await berth::cleanup_container(*c);
    if (print) std::printf("swarm start=%.4f swarm=%.4f node=%s\n", start, recorded, node.c_str());
}

asio::awaitable<void> place(int rounds) {
    auto ex = co_await asio::this_coro::executor;
    auto api = cluster_client(ex);
    berth::client builder = berth::client::at(
        ex, berth::engine_endpoint{.address = berth::parse_docker_host(env("BENCH_BUILDER"))});
    k8s::kube_cluster kube(api, builder, {.registry = env("BENCH_REGISTRY")});
    berth::cluster_options swarm_options;
    swarm_options.registry = env("BERTH_SWARM_REGISTRY");
    auto swarm = berth::cluster::at(ex, swarm_endpoint(env("BERTH_SWARM_MANAGER")), swarm_options);
    auto watcher = cluster_client(ex);
    placement p{.api = api, .watcher = watcher, .kube = kube, .swarm = swarm, .run = env("BENCH_RUN")};
    // Warm-ups: each cluster's first evaluation builds and pushes its image; kubectl's first run learns berth's
    // image and command.
    co_await kube_once(p, unique_name("warm-kube", 0), false);
    kubectl_once(p, unique_name("warm-kubectl", 0), false);
    co_await swarm_once(p, unique_name("warm-swarm", 0), false);
    for (int i = 1; i <= rounds; ++i) {
        co_await kube_once(p, unique_name("kube", i), true);
        kubectl_once(p, unique_name("kubectl", i), true);
        co_await swarm_once(p, unique_name("swarm", i), true);
        std::fflush(stdout);
    }
}

}  // namespace

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "";
    const bool copying = (mode == "copy-in" || mode == "copy-out") && argc == 5;
    if (!copying && !(mode == "place" && argc == 3)) {
        std::cerr << "usage: bench_kubernetes copy-in|copy-out POD SOURCE DEST | place ROUNDS\n";
        return 2;
    }
    try {
        if (!copying) berth::setup_logger(env("BENCH_LOG", "/tmp/bench_kubernetes.log"));
        asio::io_context io;
        std::exception_ptr failed;
        auto done = [&](std::exception_ptr e) {
            failed = e;
            io.stop();  // a round's watch may still be open
        };
        if (copying) {  // named arguments, not temporaries made in a conditional (g++ 12's coroutine bug)
            const std::string pod = argv[2], source = argv[3], dest = argv[4];
            asio::co_spawn(io, copy(mode, pod, source, dest), done);
        } else {
            asio::co_spawn(io, place(std::stoi(argv[2])), done);
        }
        io.run();
        if (failed) std::rethrow_exception(failed);
    } catch (const std::exception& e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
    return 0;
}
