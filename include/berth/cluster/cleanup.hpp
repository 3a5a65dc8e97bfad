#pragma once
// cleanup_container for a handle bound to a cluster node: removes the handle's service (its service_id, or the
// service its container's label names) on the manager of the handle's cluster (so Swarm never starts it again),
// force-removes the task's container on its node, and waits, bounded, until the node's engine no longer has it. As on one engine, each step's failure is logged and none is thrown, and the report says
// what was and was not removed (a node that is down: the service is, the container is not, and the error is the
// node_unreachable_error naming the node). Chosen by overload resolution for
// basic_container<cluster_node_transport<T>>: the one-engine cleanup_container is untouched.
#include <berth/cluster/cluster.hpp>
#include <berth/detail/poll.hpp>
#include <berth/eval/cleanup_container.hpp>

#include <chrono>

namespace berth {

namespace detail {

// The service a task's container belongs to, from the label Swarm gives it (for a handle the cluster did not make).
inline constexpr const char* swarm_service_id_label = "com.docker.swarm.service.id";

// Polls the node's engine until the container is gone; false when `limit` passed first. Throws what the node's
// client throws (node_unreachable_error).
template <transport Transport>
boost::asio::awaitable<bool> wait_until_gone(basic_client<Transport>& node, const std::string& id,
                                             std::chrono::steady_clock::duration limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    auto gone = [&node, &id]() -> boost::asio::awaitable<bool> {
        try {
            co_await node.containers().inspect(id);
        } catch (const not_found_error&) { co_return true; }
        co_return false;
    };
    const poll_policy policy{.first = std::chrono::milliseconds(5), .max = std::chrono::milliseconds(100)};
    co_return co_await poll_until(gone, policy, deadline);
}

}  // namespace detail

template <transport Transport>
boost::asio::awaitable<cleanup_report> cleanup_container(basic_container<cluster_node_transport<Transport>> c,
                                                         cleanup_options options) {
    auto log = resolve_logger(options.log);
    const std::string label = c.name.empty() ? c.id.substr(0, 12) : c.name;
    const std::string where = c.engine().transport().describe();
    cleanup_report report;
    report.service_removed = false;
    if (c.owner == nullptr) {
        std::string problem = "Cannot clean up container " + label + " on " + where +
                              ": the handle names no cluster (owner) whose manager runs its service";
        auto error = std::make_exception_ptr(invalid_argument_error(problem));
        detail::note_cleanup_problem(report, options, *log, std::move(problem), error);
        co_return report;
    }
    auto& swarm_cluster = *c.owner;
    std::optional<std::string> service;
    if (!c.service_id.empty()) service = c.service_id;
    if (!service) {
        std::string problem;
        std::exception_ptr error;
        try {
            auto info = co_await c.engine().containers().inspect(c.id);
            if (auto s = info.labels.find(detail::swarm_service_id_label); s != info.labels.end())
                service = detail::checked_id(s->second, "service id label", "GET container");
            if (!service) problem = "it belongs to no Swarm service";
        } catch (const std::exception& e) {
            problem = e.what();
            error = std::current_exception();
        }
        if (!service) {
            detail::note_cleanup_problem(report, options, *log,
                                         "Cannot clean up container " + label + " on " + where + ": " + problem, error);
            co_return report;
        }
    }
    try {
        co_await swarm_cluster.swarm().remove_service(*service);
        report.service_removed = true;
        if (options.verbose) log->info("Removed service of container " + label);
    } catch (const not_found_error& e) {
        report.service_removed = true;
        if (options.verbose) log->info("Service of container " + label + " was already gone: " + e.message());
    } catch (const std::exception& e) {
        detail::note_cleanup_problem(report, options, *log,
                                     "Error removing the service of container " + label + ": " + e.what(),
                                     std::current_exception());
    }
    // Swarm would stop the task's container and remove it in its own time (a second or two); removing it on the
    // node now, as one engine's cleanup does, is what makes a cluster's cleanup as quick. Swarm finds it gone.
    const auto limit = std::chrono::seconds(std::max(options.stop_timeout_seconds, 0) + 30);
    std::string problem;
    std::exception_ptr error;
    try {
        try {
            container_remove_options forced;
            forced.force = true;
            co_await c.engine().containers().remove(c.id, forced);
        } catch (const engine_error&) {
            // already gone, or Swarm is removing it: the wait below tells
        }
        report.container_removed = co_await detail::wait_until_gone(c.engine(), c.id, limit);
        if (!report.container_removed) problem = "still there after " + describe_duration(limit);
    } catch (const std::exception& e) {
        problem = e.what();
        error = std::current_exception();
    }
    if (report.container_removed) {
        if (options.verbose) log->info("Container " + label + " removed from " + where);
    } else {
        detail::note_cleanup_problem(report, options, *log,
                                     "Cannot confirm container " + label + " is gone from " + where + ": " + problem,
                                     error);
    }
    co_return report;
}

template <transport Transport>
boost::asio::awaitable<cleanup_report> cleanup_container(basic_container<cluster_node_transport<Transport>> c) {
    cleanup_options options;
    return cleanup_container(std::move(c), std::move(options));
}

}  // namespace berth
