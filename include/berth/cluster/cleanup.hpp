#pragma once
// cleanup_container for a handle bound to a cluster node: removes the handle's service on the manager (so Swarm
// never starts it again), force-removes the task's container on its node, and waits, bounded, until the node's
// engine no longer has it. As on one engine, each step's failure is logged and none is thrown, and the report says
// what was and was not removed (a node that is down: the service is, the container is not, and the error is the
// node_unreachable_error naming the node). Chosen by overload resolution for
// basic_container<cluster_node_transport<T>>: the one-engine cleanup_container is untouched.
#include <berth/cluster/cluster.hpp>
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
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + limit;
    auto delay = std::chrono::milliseconds(5);
    for (;;) {
        try {
            co_await node.containers().inspect(id);
        } catch (const not_found_error&) {
            co_return true;
        }
        auto now = clock::now();
        if (now >= deadline) co_return false;
        boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, std::min<clock::duration>(delay, deadline - now));
        co_await t.async_wait(boost::asio::use_awaitable);
        delay = std::min(delay * 2, std::chrono::milliseconds(100));
    }
}

} // namespace detail

template <transport Transport>
boost::asio::awaitable<cleanup_report> cleanup_container(basic_container<cluster_node_transport<Transport>> c,
                                                         cleanup_options options) {
    auto log = resolve_logger(options.log);
    auto& swarm_cluster = c.engine().transport().cluster();
    const std::string label = c.name.empty() ? c.id.substr(0, 12) : c.name;
    const std::string where = c.engine().transport().describe();
    cleanup_report report;
    report.service_removed = false;
    auto service = swarm_cluster.service_of(c.id);
    if (!service) {
        std::string problem;
        std::exception_ptr error;
        try {
            auto info = co_await c.engine().containers().inspect(c.id);
            if (auto* cfg = info.raw.if_contains("Config"); cfg && cfg->is_object())
                if (auto* labels = cfg->get_object().if_contains("Labels"); labels && labels->is_object())
                    if (auto* s = labels->get_object().if_contains(detail::swarm_service_id_label); s && s->is_string())
                        service = detail::checked_id(std::string(s->get_string()), "service id label", "GET container");
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
            co_await c.engine().containers().remove(c.id, true);
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
    swarm_cluster.forget_service(c.id);
    co_return report;
}

template <transport Transport>
boost::asio::awaitable<cleanup_report> cleanup_container(basic_container<cluster_node_transport<Transport>> c,
                                                         bool verbose = true) {
    cleanup_options options;
    options.verbose = verbose;
    return cleanup_container(std::move(c), std::move(options));
}

} // namespace berth
