#pragma once
// build_container: the image (built only when its tag is missing, or without cache when asked), a fresh container
// of the given name (any old one force-removed), started detached with the repository bind-mounted read-write at
// /<mount_name> and `tail -f /dev/null` keeping it alive. PID 1 is an init process, so a stop ends it at once.
// On any failure: an empty result, the reason (the engine's own message) logged, and no half-made container left.
// Cancellation (a cancellation slot, with_timeout) is not a failure: it propagates as the operation's exception.
#include <berth/eval/container.hpp>
#include <berth/eval/logger.hpp>
#include <berth/tar/packer.hpp>

#include <filesystem>
#include <optional>

namespace berth {

struct build_container_options {
    std::string repo_path = "./";            // the build context, also bind-mounted into the container
    std::string image_name = "app";
    std::string container_name = "app-container";
    bool force_rebuild = false;              // build even when the tag exists, with no cache
    std::vector<std::string> domains;        // a domain containing "genesis" asks for GPUs
    bool verbose = true;
    std::string mount_name = "hyperagents";  // the repository appears at /<mount_name>
    std::string network_mode;                // empty: the engine's default network
    std::vector<std::string> env;            // "KEY=value"
    std::map<std::string, std::string> labels;
    std::int64_t memory_bytes = 0;           // 0: unlimited
    std::int64_t nano_cpus = 0;              // 1'000'000'000 = one CPU
    std::optional<std::int64_t> pids_limit;
    bool init = true;                        // an init process as PID 1 (Docker's Init; Podman's catatonit)
    bool gpu_required = false;               // a refused GPU request fails the build instead of falling back
    bool check_gpu_devices = false;          // after start, log which /dev/nvidia* the container sees
    std::shared_ptr<logger> log;             // default: the thread's logger
};

namespace detail {

inline bool wants_gpu(const std::vector<std::string>& domains) {
    for (auto& d : domains)
        if (d.find("genesis") != std::string::npos) return true;
    return false;
}

// The GPU request each engine understands: Docker's DeviceRequests, Podman's CDI device name.
inline void request_gpus(host_config& host, engine_kind kind) {
    if (kind == engine_kind::podman) {
        host.devices.push_back({.path_on_host = "nvidia.com/gpu=all", .path_in_container = "nvidia.com/gpu=all"});
    } else {
        host.device_requests.push_back({.driver = "", .count = -1, .capabilities = {{"gpu"}}});
    }
}

template <transport Transport>
boost::asio::awaitable<void> remove_quietly(basic_client<Transport>& client, std::string id) {
    try {
        co_await client.containers().remove(id, true);
    } catch (const std::exception&) {
        // already gone, or the engine refuses: the caller reports the original failure
    }
}

} // namespace detail

// The container_config build_container creates (exposed so callers and tests can see exactly what is asked).
inline container_config evaluation_container_config(const build_container_options& o, engine_kind kind, bool gpu) {
    container_config c;
    c.image = o.image_name;
    c.cmd = {"tail", "-f", "/dev/null"};
    c.tty = true;
    c.open_stdin = true;
    c.env = o.env;
    c.labels = o.labels;
    auto repo = std::filesystem::absolute(o.repo_path).lexically_normal().string();
    if (repo.size() > 1 && repo.back() == '/') repo.pop_back();
    c.host.binds = {repo + ":/" + o.mount_name + ":rw"};
    c.host.network_mode = o.network_mode;
    c.host.memory = o.memory_bytes;
    c.host.nano_cpus = o.nano_cpus;
    c.host.pids_limit = o.pids_limit;
    if (o.init) c.host.init = true;
    if (gpu) detail::request_gpus(c.host, kind);
    return c;
}

namespace detail {
// Creates and starts the container; created_id is set as soon as it exists, so a failed start can clean it up.
template <transport Transport>
boost::asio::awaitable<std::string> create_and_start(basic_client<Transport>& client,
                                                     const build_container_options& options, engine_kind kind,
                                                     bool with_gpu, std::string& created_id) {
    auto config = evaluation_container_config(options, kind, with_gpu);
    auto created = co_await client.containers().create(config, options.container_name);
    created_id = created.id;
    co_await client.containers().start(created.id);
    co_return created.id;
}
} // namespace detail

template <transport Transport>
boost::asio::awaitable<std::optional<basic_container<Transport>>> build_container(basic_client<Transport>& client,
                                                                                  build_container_options options) {
    auto log = resolve_logger(options.log);
    const bool verbose = options.verbose;
    auto say = [&](std::string_view m) {
        if (verbose) log->info(m);
    };
    std::string created_id;
    std::exception_ptr cancelled;
    try {
        auto engine = co_await client.version();

        bool exists = !options.force_rebuild && co_await client.images().exists(options.image_name);
        if (!exists) {
            say("Building image " + options.image_name + (options.force_rebuild ? " (no cache)" : "") + " from " +
                options.repo_path);
            tar::pack_options pack;
            pack.use_dockerignore = true;
            tar::packer context(options.repo_path, "", pack);
            build_options build;
            build.tag = options.image_name;
            build.no_cache = options.force_rebuild;
            build.force_remove_intermediate = true;
            build_progress progress;
            if (verbose)
                progress = [&log](std::string_view line) {
                    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
                    if (!line.empty()) log->info(line);
                };
            auto image = co_await client.images().build(context, build, progress);
            say("Image " + options.image_name + " built: " + image.id);
        } else {
            say("Image " + options.image_name + " found; not rebuilding");
        }

        try {
            co_await client.containers().remove(options.container_name, true);
            say("Removed existing container " + options.container_name);
        } catch (const not_found_error&) {
        }

        const bool gpu = detail::wants_gpu(options.domains);
        std::string id;
        if (gpu) {
            say(std::string("GPU passthrough requested (") +
                (engine.kind == engine_kind::podman ? "CDI nvidia.com/gpu=all" : "DeviceRequests") + ")");
            std::string refusal;  // co_await is not allowed inside a handler: note the refusal, act after it
            try {
                id = co_await detail::create_and_start(client, options, engine.kind, true, created_id);
            } catch (const engine_error& e) {
                if (options.gpu_required) throw;
                refusal = e.message();
            }
            if (!refusal.empty()) {
                log->warning("GPU request refused by the engine, starting without GPU: " + refusal);
                if (!created_id.empty()) co_await detail::remove_quietly(client, std::exchange(created_id, {}));
                id = co_await detail::create_and_start(client, options, engine.kind, false, created_id);
            }
        } else {
            id = co_await detail::create_and_start(client, options, engine.kind, false, created_id);
        }
        say("Container " + options.container_name + " started (" + id.substr(0, 12) + ")");
        basic_container<Transport> result{&client, id, options.container_name};
        if (gpu && options.check_gpu_devices) {
            collected_output out;
            exec_options ls;
            ls.cmd = {"sh", "-c", "ls /dev/nvidia* 2>/dev/null"};
            co_await client.execs().run(id, ls, out);
            log->info(out.stdout_text.empty() ? std::string("No /dev/nvidia* devices in the container")
                                              : "GPU devices in the container: " + out.stdout_text);
        }
        co_return result;
    } catch (const boost::system::system_error& e) {
        // Cancellation is the caller's decision, not a failure to report: it propagates (after the cleanup below).
        if (e.code() == boost::asio::error::operation_aborted) cancelled = std::current_exception();
        else log->error("build_container(" + options.container_name + ") failed: " + e.what());
    } catch (const std::exception& e) {
        log->error("build_container(" + options.container_name + ") failed: " + e.what());
    }
    // Reached only on failure or cancellation (co_await is not allowed in the handlers above). After a
    // cancellation the state is reset first, so the removal itself is not cancelled too.
    if (cancelled) co_await boost::asio::this_coro::reset_cancellation_state();
    if (!created_id.empty()) co_await detail::remove_quietly(client, created_id);
    if (cancelled) std::rethrow_exception(cancelled);
    co_return std::nullopt;
}

} // namespace berth
