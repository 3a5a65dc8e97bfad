#pragma once
// cleanup_container: stop (with a grace period), then force-remove. Each step's error is caught and logged on its
// own, and neither prevents the other; a container that is already gone is logged, not thrown.
#include <berth/eval/container.hpp>
#include <berth/eval/logger.hpp>

namespace berth {

struct cleanup_options {
    bool verbose = true;
    int stop_timeout_seconds = 10;  // SIGTERM, then SIGKILL after this long
    std::shared_ptr<logger> log;    // default: the thread's logger
};

template <transport Transport>
boost::asio::awaitable<void> cleanup_container(basic_container<Transport> c, cleanup_options options) {
    auto log = resolve_logger(options.log);
    auto containers = c.engine().containers();
    std::string label = c.name.empty() ? c.id.substr(0, 12) : c.name;
    try {
        co_await containers.stop(c.id, options.stop_timeout_seconds);
        if (options.verbose) log->info("Stopped container " + label);
    } catch (const not_found_error& e) {
        if (options.verbose) log->info("Container " + label + " was already gone when stopping: " + e.message());
    } catch (const std::exception& e) {
        if (options.verbose) log->error("Error stopping container " + label + ": " + e.what());
    }
    try {
        co_await containers.remove(c.id, true);
        if (options.verbose) log->info("Removed container " + label);
    } catch (const not_found_error& e) {
        if (options.verbose) log->info("Container " + label + " was already gone when removing: " + e.message());
    } catch (const std::exception& e) {
        if (options.verbose) log->error("Error removing container " + label + ": " + e.what());
    }
}

template <transport Transport>
boost::asio::awaitable<void> cleanup_container(basic_container<Transport> c, bool verbose = true) {
    cleanup_options options;
    options.verbose = verbose;
    return cleanup_container(std::move(c), std::move(options));
}

} // namespace berth
