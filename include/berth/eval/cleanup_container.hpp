#pragma once
// cleanup_container: stop (with a grace period), then force-remove. Each step's error is caught and logged on its
// own, and neither prevents the other; a container that is already gone is logged, not thrown. What was and was not
// removed is returned (a caller that ignores it loses nothing).
#include <berth/eval/container.hpp>
#include <berth/eval/logger.hpp>
#include <berth/eval/usage_monitor.hpp>

#include <exception>
#include <optional>
#include <vector>

namespace berth {

struct cleanup_options {
    bool verbose = true;
    int stop_timeout_seconds = 10;  // SIGTERM, then SIGKILL after this long
    std::shared_ptr<logger> log{};  // default: the thread's logger
};

// What cleanup_container did, so a caller can tell a container that is gone from one that may still run (its
// engine unreachable or refusing). The same for a handle on one engine and one on a cluster node.
struct cleanup_report {
    bool container_removed = false;         // the container is gone from its engine: removed now, or already gone
    std::optional<bool> service_removed{};  // a cluster handle's service is gone from the manager (empty on one engine)
    std::vector<std::string> problems{};    // each step that failed and why, as logged
    // The first failed step's exception, for its type (a cluster node that is down: a node_unreachable_error
    // naming the node); null when none threw.
    std::exception_ptr error{};
    // That exception's code (a node_unreachable_error: the connection's, e.g. connection_refused) and what(),
    // without a rethrow by the caller; empty when none threw.
    boost::system::error_code code() const noexcept { return code_of(error); }
    std::string what() const { return what_of(error); }
    // Nothing is left: the container is gone, and so is its service on a cluster.
    bool complete() const noexcept { return container_removed && service_removed.value_or(true); }
};

namespace detail {

// Notes a failed cleanup step in the report, and logs it when verbose.
inline void note_cleanup_problem(cleanup_report& report, const cleanup_options& options, logger& log,
                                 std::string problem, std::exception_ptr error) {
    if (options.verbose) log.error(problem);
    if (!report.error) report.error = std::move(error);
    report.problems.push_back(std::move(problem));
}

}  // namespace detail

template <transport Transport>
boost::asio::awaitable<cleanup_report> cleanup_container(basic_container<Transport> c, cleanup_options options) {
    auto log = resolve_logger(options.log);
    stop_watching_usage(c);  // exec's figures: the container's stats stream, if one is open
    auto containers = c.engine().containers();
    std::string label = c.name.empty() ? c.id.substr(0, 12) : c.name;
    cleanup_report report;
    try {
        container_stop_options stopping;
        stopping.timeout = options.stop_timeout_seconds;
        co_await containers.stop(c.id, std::move(stopping));
        if (options.verbose) log->info("Stopped container " + label);
    } catch (const not_found_error& e) {
        if (options.verbose) log->info("Container " + label + " was already gone when stopping: " + e.message());
    } catch (const std::exception& e) {
        detail::note_cleanup_problem(report, options, *log, "Error stopping container " + label + ": " + e.what(),
                                     std::current_exception());
    }
    try {
        container_remove_options forced;
        forced.force = true;
        co_await containers.remove(c.id, forced);
        report.container_removed = true;
        if (options.verbose) log->info("Removed container " + label);
    } catch (const not_found_error& e) {
        report.container_removed = true;
        if (options.verbose) log->info("Container " + label + " was already gone when removing: " + e.message());
    } catch (const std::exception& e) {
        detail::note_cleanup_problem(report, options, *log, "Error removing container " + label + ": " + e.what(),
                                     std::current_exception());
    }
    co_return report;
}

// (Overloads, not a defaulted argument: g++ 12 double-destroys a defaulted options temporary in a co_await.)
template <transport Transport>
boost::asio::awaitable<cleanup_report> cleanup_container(basic_container<Transport> c) {
    cleanup_options options;
    return cleanup_container(std::move(c), std::move(options));
}

}  // namespace berth
