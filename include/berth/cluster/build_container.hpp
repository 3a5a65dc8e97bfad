#pragma once
// build_container on a cluster: the same call and options as on one engine, plus where and with what a task may
// run. The image is distributed once per image name (image_distribution.hpp); an existing service of the same
// name is removed (as one engine removes an old container); a service of one replica is created (restart
// condition none, network none, the repository in the image at /<mount_name>, `tail -f /dev/null` under an init);
// and the call waits, within start_timeout, until its task runs. The handle it returns is bound to the engine of
// the node that runs the task, so copies, exec and logs go straight there, and cleanup_container removes the
// service. A task Swarm cannot place (its own reason, e.g. "no suitable node (insufficient resources on 3
// nodes)") fails at once unless asked to wait; a task that fails, or does not run in time, fails too. Every
// failure is an empty result whose failure() holds Swarm's reason (and a task_failed_error as its error), with
// the service removed: nothing is left behind, even when the create's reply never came or was a 5xx. The steps
// common to every backend are in eval/build_pipeline.hpp; this is the Swarm backend.
#include <berth/cluster/cluster.hpp>
#include <berth/cluster/image_distribution.hpp>
#include <berth/detail/poll.hpp>
#include <berth/engine/registry_auth.hpp>
#include <berth/eval/build_container.hpp>

#include <chrono>

namespace berth {

struct cluster_build_options : build_container_options {
    std::vector<std::string> constraints{};  // placement constraints: "node.hostname==n2", "node.labels.zone==a"
    std::vector<std::string> spread{};       // placement preferences: spread over "node.labels.rack"
    std::int64_t reserve_memory_bytes = 0;   // reservations: what the scheduler sets aside on the chosen node
    std::int64_t reserve_nano_cpus = 0;      // (memory_bytes, nano_cpus and pids_limit are the limits)
    std::vector<generic_resource> generic_resources{};  // reserved too (nodes advertise them)
    generic_resource gpu_resource{"NVIDIA-GPU", 1};     // reserved when request_gpus
    bool wait_for_resources = false;  // an unplaceable task waits (for others to end) instead of failing
    std::chrono::steady_clock::duration start_timeout = std::chrono::minutes(2);  // until the task runs
};

// What build_container on a berth::cluster returns (a handle bound to a node's engine, or why there is none).
using cluster_build_container_result = basic_build_container_result<cluster_node_transport<socket_transport>>;

// The service build_container creates for `o` running `image` (exposed so callers and tests can see exactly what is
// asked of Swarm).
inline service_spec evaluation_service_spec(const cluster_build_options& o, const std::string& image, bool gpu) {
    service_spec s;
    s.name = o.container_name;
    s.labels = o.labels;
    s.container.image = image;
    s.container.command = {"tail", "-f", "/dev/null"};
    s.container.env = o.env;
    s.container.labels = o.labels;  // on the containers too: a node's engine finds them by the same label
    if (o.init) s.container.init = true;
    s.container.tty = true;
    s.container.open_stdin = true;
    s.limits.memory_bytes = o.memory_bytes;
    s.limits.nano_cpus = o.nano_cpus;
    s.limits.pids = o.pids_limit.value_or(0);
    s.reservations.memory_bytes = o.reserve_memory_bytes;
    s.reservations.nano_cpus = o.reserve_nano_cpus;
    s.reservations.generic = o.generic_resources;
    if (gpu) s.reservations.generic.push_back(o.gpu_resource);
    s.restart_condition = "none";
    s.constraints = o.constraints;
    s.spread = o.spread;
    // Swarm has no "none" network to attach a task to (its node-local targets are "host" and "bridge"): a task
    // given no network gets the node's default one, which is loopback only on nodes run with --bridge=none.
    // build_container checks the container it gets (detail::check_no_network).
    if (!o.network_mode.empty() && o.network_mode != "none") s.networks = {o.network_mode};
    return s;
}

namespace detail {

struct placed_task {
    std::string task_id, node_id, container_id;
};

// Swarm task states after which a task never runs.
inline bool task_ended(std::string_view state) {
    return state == "complete" || state == "shutdown" || state == "failed" || state == "rejected" ||
           state == "remove" || state == "orphaned";
}

template <transport Transport>
boost::asio::awaitable<node_identity> describe_node(basic_cluster<Transport>& swarm_cluster, const std::string& id) {
    node_identity who{id, {}, {}};
    if (id.empty()) co_return who;
    try {
        auto n = co_await swarm_cluster.swarm().inspect_node(id);
        who.hostname = n.hostname;
    } catch (const std::exception&) {
        // the id alone still names it
    }
    co_return who;
}

// How long to wait before asking for a task's state again. Swarm starts a task in a few hundred ms, and every ms
// between that and berth noticing is berth's own overhead: so every 10 ms at first. Many evaluations waiting at
// once share the manager: together they ask about 200 times a second, not 100 times each. A task still not
// running after two seconds is pulling an image or queued for resources: then every 100 ms (or less often).
inline std::chrono::milliseconds task_poll_interval(std::size_t waiting, std::chrono::steady_clock::duration waited) {
    using std::chrono::milliseconds;
    const auto shared = milliseconds(5 * static_cast<long>(waiting));
    const auto floor = waited < std::chrono::seconds(2) ? milliseconds(10) : milliseconds(100);
    return std::min(std::max(floor, shared), milliseconds(500));
}

// Polls the service's task until it runs, fails, cannot be placed, or `timeout` passes (task_failed_error).
template <transport Transport>
boost::asio::awaitable<placed_task> wait_for_task(basic_cluster<Transport>& swarm_cluster,
                                                  const std::string& service_id, const std::string& service_name,
                                                  bool wait_for_resources,
                                                  std::chrono::steady_clock::duration timeout) {
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + timeout;
    swarm_filters mine{{"service", {service_id}}};
    auto waiting = swarm_cluster.count_task_wait();
    swarm_task last;
    auto placed_or_failed = [&]() -> boost::asio::awaitable<std::optional<placed_task>> {
        auto tasks = co_await swarm_cluster.swarm().list_tasks(mine);
        for (auto& t : tasks) {
            last = t;
            const std::string& why = t.err.empty() ? t.message : t.err;
            if (t.state == "running" && !t.container_id.empty() && !t.node_id.empty()) {
                placed_task placed{t.id, t.node_id, t.container_id};
                co_return placed;
            }
            if (task_ended(t.state)) {
                auto node = co_await describe_node(swarm_cluster, t.node_id);
                throw task_failed_error(cluster_errc::task_failed, service_name, t.id, t.state, why, node);
            }
            if (t.state == "pending" && !t.err.empty() && !wait_for_resources)
                throw task_failed_error(cluster_errc::task_unplaceable, service_name, t.id, t.state, t.err);
        }
        co_return std::nullopt;
    };
    detail::poll_policy policy;
    policy.pause = [&waiting](std::size_t, clock::duration waited) -> clock::duration {
        return task_poll_interval(waiting.count(), waited);
    };
    auto placed = co_await detail::poll_until(placed_or_failed, policy, deadline);
    if (placed) co_return *placed;
    throw task_failed_error(cluster_errc::task_timed_out, service_name, last.id, last.state,
                            (last.err.empty() ? last.message : last.err) + " (waited " + describe_duration(timeout) +
                                ")");
}

// Network mode none on a cluster: the task's container must have no network address. A node whose default
// network gives it one (a dockerd with a bridge) is refused, rather than running an evaluation on a network.
template <transport Transport>
boost::asio::awaitable<void> check_no_network(basic_client<Transport>& node, const std::string& container_id) {
    auto info = co_await node.containers().inspect(container_id);
    const std::string endpoint = "GET /containers/" + container_id + "/json";
    for (auto& [name, address] : info.network_addresses) {
        if (!address.empty())
            throw engine_error(engine_errc::bad_request, 0,
                               "the task's container has address " + address + " on network '" + name + "' of " +
                                   node.transport().describe() +
                                   ": Swarm cannot attach a task to network 'none', so network isolation needs nodes "
                                   "whose default network is none (dockerd --bridge=none)",
                               endpoint);
    }
}

inline build_failure classify_cluster_failure(std::exception_ptr error, build_step step, std::string message) {
    auto f = classify_build_failure(error, step, std::move(message));
    try {
        std::rethrow_exception(error);
    } catch (const task_failed_error& e) {
        f.reason = e.code() == cluster_errc::task_timed_out ? build_failure_reason::engine_unreachable
                                                            : build_failure_reason::engine_refused;
    } catch (const node_address_error&) { f.reason = build_failure_reason::engine_unreachable; } catch (...) {
    }
    return f;
}

// build_container's steps on a Swarm cluster: a service of one replica, whose task runs on a node (placement_backend).
template <transport Transport>
class swarm_placement {
public:
    using handle_type = basic_container<cluster_node_transport<Transport>>;

    swarm_placement(basic_cluster<Transport>& swarm_cluster, const cluster_build_options& options, logger& log)
        : cluster_(swarm_cluster), options_(options), log_(log) {}

    boost::asio::awaitable<void> check_engine() {
        auto engine = co_await cluster_.manager().version();
        if (engine.kind == engine_kind::podman)
            throw invalid_argument_error("a cluster's manager must be a Docker engine in Swarm mode (Podman has none)");
        if (cluster_.options().registry.empty())
            throw invalid_argument_error("cluster_options.registry is empty: the nodes pull the image from there");
    }
    // Built and pushed once per image (and repository, mount, rebuild), however many evaluations ask at once.
    boost::asio::awaitable<std::string> prepare_image() {
        co_return co_await distribute_image_once(cluster_, cluster_.manager(), options_, cluster_.options().registry,
                                                 cluster_.options().registry_auth, log_);
    }
    boost::asio::awaitable<bool> remove_existing() {
        try {
            co_await cluster_.swarm().remove_service(options_.container_name);
            co_return true;
        } catch (const not_found_error&) { co_return false; }
    }
    std::string_view runnable_noun() const { return "service"; }

    boost::asio::awaitable<std::string> create(const std::string& image, bool gpu, const std::string& token) {
        auto spec = evaluation_service_spec(options_, image, gpu);
        spec.labels[build_call_label] = token;
        std::string auth;
        if (cluster_.options().registry_auth) auth = registry_auth_header(*cluster_.options().registry_auth);
        auto created = co_await cluster_.swarm().create_service(spec, auth);
        co_return created.id;
    }
    boost::asio::awaitable<void> wait_running(const std::string& service_id) {
        placed_ = co_await wait_for_task(cluster_, service_id, options_.container_name, options_.wait_for_resources,
                                         options_.start_timeout);
    }

    std::string gpu_request_text() const {
        return "GPU requested: reserving generic resource " + options_.gpu_resource.kind + "=" +
               std::to_string(options_.gpu_resource.value);
    }
    // Only a task no node can take: a failed or timed-out task is not a matter of GPUs.
    std::optional<std::string> gpu_refusal(const std::exception& e) const {
        if (auto* t = dynamic_cast<const task_failed_error*>(&e); t && t->code() == cluster_errc::task_unplaceable)
            return t->message();
        return std::nullopt;
    }
    std::string gpu_fallback_text(const std::string& refusal) const {
        return "No node offers " + options_.gpu_resource.kind + ", starting without GPU: " + refusal;
    }

    boost::asio::awaitable<handle_type> bind(const std::string& service_id) {
        auto* node = co_await cluster_.node(placed_.node_id);
        if (options_.network_mode.empty() || options_.network_mode == "none")
            co_await check_no_network(*node, placed_.container_id);
        if (options_.init) co_await wait_for_init(*node, placed_.container_id);
        if (options_.verbose)
            log_.info("Service " + options_.container_name + " running on " + node->transport().describe() +
                      " (container " + placed_.container_id.substr(0, 12) + ")");
        handle_type result{node,       placed_.container_id,     options_.container_name,
                           service_id, node->transport().node(), &cluster_};
        co_return result;
    }

    boost::asio::awaitable<void> remove(const std::string& service_id) {
        return cluster_.swarm().remove_service(service_id);
    }
    boost::asio::awaitable<std::vector<std::string>> find_labelled(const std::string& label) {
        swarm_filters mine{{"label", {label}}};
        auto found = co_await cluster_.swarm().list_services(mine);
        std::vector<std::string> ids;
        for (auto& f : found) ids.push_back(f.id);
        co_return ids;
    }

    // On Swarm a GPU refusal is an unplaceable task (a task_failed_error, classified as such); an engine error
    // while asking for GPUs is the manager refusing the spec, as it would without them.
    build_failure classify(std::exception_ptr error, build_step step, std::string message) const {
        if (step == build_step::gpu_container) step = build_step::container;
        return classify_cluster_failure(error, step, std::move(message));
    }
    std::string failure_context() const { return " on the cluster"; }

private:
    basic_cluster<Transport>& cluster_;
    const cluster_build_options& options_;
    logger& log_;
    placed_task placed_{};
};

}  // namespace detail

template <transport Transport>
boost::asio::awaitable<basic_build_container_result<cluster_node_transport<Transport>>> build_container(
    basic_cluster<Transport>& swarm_cluster, cluster_build_options options) {
    auto log = resolve_logger(options.log);
    detail::swarm_placement<Transport> backend(swarm_cluster, options, *log);
    static_assert(placement_backend<detail::swarm_placement<Transport>>);
    co_return co_await detail::run_build_pipeline(backend, options, *log);
}

}  // namespace berth
