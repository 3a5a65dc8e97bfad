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
// the service removed: nothing is left behind, even when the create's reply never came or was a 5xx.
#include <berth/cluster/cluster.hpp>
#include <berth/cluster/image_distribution.hpp>
#include <berth/engine/registry_auth.hpp>
#include <berth/eval/build_container.hpp>

#include <chrono>

namespace berth {

struct cluster_build_options : build_container_options {
    std::vector<std::string> constraints{};    // placement constraints: "node.hostname==n2", "node.labels.zone==a"
    std::vector<std::string> spread{};         // placement preferences: spread over "node.labels.rack"
    std::int64_t reserve_memory_bytes = 0;     // reservations: what the scheduler sets aside on the chosen node
    std::int64_t reserve_nano_cpus = 0;        // (memory_bytes, nano_cpus and pids_limit are the limits)
    std::vector<generic_resource> generic_resources{};  // reserved too (nodes advertise them)
    generic_resource gpu{"NVIDIA-GPU", 1};     // reserved when a domain contains "genesis"
    bool wait_for_resources = false;           // an unplaceable task waits (for others to end) instead of failing
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
    if (gpu) s.reservations.generic.push_back(o.gpu);
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
boost::asio::awaitable<placed_task> wait_for_task(basic_cluster<Transport>& swarm_cluster, const std::string& service_id,
                                                  const std::string& service_name, bool wait_for_resources,
                                                  std::chrono::steady_clock::duration timeout) {
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + timeout;
    const auto began = clock::now();
    swarm_filters mine{{"service", {service_id}}};
    auto waiting = swarm_cluster.count_task_wait();
    swarm_task last;
    for (;;) {
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
                throw task_failed_error(task_failed_error::kind::failed, service_name, t.id, t.state, why, node);
            }
            if (t.state == "pending" && !t.err.empty() && !wait_for_resources)
                throw task_failed_error(task_failed_error::kind::unplaceable, service_name, t.id, t.state, t.err);
        }
        auto now = clock::now();
        if (now >= deadline)
            throw task_failed_error(task_failed_error::kind::timed_out, service_name, last.id, last.state,
                                    (last.err.empty() ? last.message : last.err) + " (waited " +
                                        describe_duration(timeout) + ")");
        const auto delay = task_poll_interval(waiting.count(), now - began);
        boost::asio::steady_timer t(co_await boost::asio::this_coro::executor,
                                    std::min<clock::duration>(delay, deadline - now));
        co_await t.async_wait(boost::asio::use_awaitable);
    }
}

// What one build_container call has made so far on the manager, for the cleanup after a failure.
struct made_service {
    std::string token;               // this call's build_call_label value
    std::string id;                  // set once the create reply has arrived
    bool create_unanswered = false;  // a create was sent and its outcome is unknown: no reply, or a 5xx
};

template <transport Transport>
boost::asio::awaitable<placed_task> start_service(basic_cluster<Transport>& swarm_cluster, const cluster_build_options& o,
                                                  const std::string& image, bool gpu, made_service& made) {
    auto spec = evaluation_service_spec(o, image, gpu);
    spec.labels[build_call_label] = made.token;
    std::string auth;
    if (swarm_cluster.options().registry_auth) auth = registry_auth_header(*swarm_cluster.options().registry_auth);
    made.create_unanswered = true;
    try {
        auto created = co_await swarm_cluster.swarm().create_service(spec, auth);
        made.id = created.id;
    } catch (const engine_error& e) {
        made.create_unanswered = create_outcome_unknown(e);  // a refusal made nothing; a 5xx may have
        throw;
    }
    made.create_unanswered = false;
    co_return co_await wait_for_task(swarm_cluster, made.id, o.container_name, o.wait_for_resources, o.start_timeout);
}

// Removes what the call made: the service by id, or, when the create's outcome is unknown (no reply, or a 5xx: a
// raft proposal may commit after the manager answered), whatever service carries this call's label (asked a few
// times, as the manager may finish the create after we gave up).
template <transport Transport>
boost::asio::awaitable<void> remove_made_service(basic_cluster<Transport>& swarm_cluster, const made_service& made) {
    try {
        if (!made.id.empty()) {
            co_await swarm_cluster.swarm().remove_service(made.id);
            co_return;
        }
        if (!made.create_unanswered) co_return;
        swarm_filters mine{{"label", {std::string(build_call_label) + "=" + made.token}}};
        auto delay = std::chrono::milliseconds(50);
        for (int attempt = 0; attempt < 6; ++attempt, delay *= 2) {
            auto found = co_await swarm_cluster.swarm().list_services(mine);
            for (auto& s : found) co_await swarm_cluster.swarm().remove_service(s.id);
            if (!found.empty()) co_return;
            boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, delay);
            co_await t.async_wait(boost::asio::use_awaitable);
        }
    } catch (const std::exception&) {
        // the manager is gone too: the caller reports the original failure
    }
}

// Network mode none on a cluster: the task's container must have no network address. A node whose default
// network gives it one (a dockerd with a bridge) is refused, rather than running an evaluation on a network.
template <transport Transport>
boost::asio::awaitable<void> check_no_network(basic_client<Transport>& node, const std::string& container_id) {
    auto info = co_await node.containers().inspect(container_id);
    const std::string endpoint = "GET /containers/" + container_id + "/json";
    auto* settings = json_read::optional_object(info.raw, "NetworkSettings", endpoint);
    auto* networks = settings ? json_read::optional_object(*settings, "Networks", endpoint) : nullptr;
    if (networks == nullptr) co_return;
    for (auto& [name, net] : *networks) {
        if (!net.is_object()) continue;
        auto address = json_read::optional_string(net.get_object(), "IPAddress", endpoint);
        if (!address.empty())
            throw engine_error(engine_errc::bad_request, 0,
                               "the task's container has address " + address + " on network '" + std::string(name) +
                                   "' of " + node.transport().describe() +
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
        f.reason = e.reason() == task_failed_error::kind::timed_out ? build_failure_reason::engine_unreachable
                                                                    : build_failure_reason::engine_refused;
    } catch (const node_address_error&) {
        f.reason = build_failure_reason::engine_unreachable;
    } catch (...) {
    }
    return f;
}

} // namespace detail

template <transport Transport>
boost::asio::awaitable<basic_build_container_result<cluster_node_transport<Transport>>>
build_container(basic_cluster<Transport>& swarm_cluster, cluster_build_options options) {
    using result_type = basic_build_container_result<cluster_node_transport<Transport>>;
    auto log = resolve_logger(options.log);
    const bool verbose = options.verbose;
    auto say = [&](std::string_view m) {
        if (verbose) log->info(m);
    };
    detail::made_service made{detail::random_token(), {}, false};
    auto step = detail::build_step::engine;
    detail::caught_failure caught;
    try {
        auto engine = co_await swarm_cluster.manager().version();
        if (engine.kind == engine_kind::podman)
            throw std::invalid_argument("a cluster's manager must be a Docker engine in Swarm mode (Podman has none)");
        if (swarm_cluster.options().registry.empty())
            throw std::invalid_argument("cluster_options.registry is empty: the nodes pull the image from there");

        step = detail::build_step::image;
        push_options push;
        if (swarm_cluster.options().registry_auth) push.credentials = swarm_cluster.options().registry_auth;
        const std::string key = options.image_name + "\n" + options.repo_path + "\n" + options.pull_image + "\n" +
                                options.mount_name + (options.force_rebuild ? "\nno-cache" : "");
        std::function<boost::asio::awaitable<std::string>()> distribute = [&] {  // named: g++ 12 (see README)
            return distribute_image(swarm_cluster.manager(), options, swarm_cluster.options().registry, push, *log);
        };
        auto image = co_await swarm_cluster.once(key, std::move(distribute));

        step = detail::build_step::container;
        try {
            co_await swarm_cluster.swarm().remove_service(options.container_name);
            say("Removed existing service " + options.container_name);
        } catch (const not_found_error&) {
        }

        const bool gpu = detail::wants_gpu(options.domains);
        detail::placed_task placed;
        if (gpu) {
            say("GPU requested: reserving generic resource " + options.gpu.kind + "=" + std::to_string(options.gpu.value));
            std::string refusal;  // co_await is not allowed inside a handler: note the refusal, act after it
            try {
                placed = co_await detail::start_service(swarm_cluster, options, image, true, made);
            } catch (const task_failed_error& e) {
                if (options.gpu_required || e.reason() != task_failed_error::kind::unplaceable) throw;
                refusal = e.message();
            }
            if (!refusal.empty()) {
                log->warning("No node offers " + options.gpu.kind + ", starting without GPU: " + refusal);
                detail::made_service refused{made.token, std::exchange(made.id, {}), false};
                co_await detail::remove_made_service(swarm_cluster, refused);
                placed = co_await detail::start_service(swarm_cluster, options, image, false, made);
            }
        } else {
            placed = co_await detail::start_service(swarm_cluster, options, image, false, made);
        }
        auto* node = co_await swarm_cluster.node(placed.node_id);
        if (options.network_mode.empty() || options.network_mode == "none")
            co_await detail::check_no_network(*node, placed.container_id);
        if (options.init) co_await detail::wait_for_init(*node, placed.container_id);
        swarm_cluster.remember_service(placed.container_id, made.id);
        say("Service " + options.container_name + " running on " + node->transport().describe() + " (container " +
            placed.container_id.substr(0, 12) + ")");
        typename basic_cluster<Transport>::container_type result{node, placed.container_id, options.container_name};
        co_return result;
    } catch (const std::exception&) {
        caught.take_current();
    }
    if (caught.failed) log->error("build_container(" + options.container_name + ") on the cluster failed: " + caught.message);
    if (caught.cancelled) co_await boost::asio::this_coro::reset_cancellation_state();
    co_await detail::remove_made_service(swarm_cluster, made);
    if (caught.cancelled) std::rethrow_exception(caught.cancelled);
    co_return result_type(detail::classify_cluster_failure(caught.failed, step, std::move(caught.message)));
}

} // namespace berth
