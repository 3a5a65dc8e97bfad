#pragma once
// build_container on one engine: the image (built only when its tag is missing, or without cache when asked), a
// fresh container of the given name (any old one force-removed), started detached with the repository
// bind-mounted read-write at /<mount_name> and `tail -f /dev/null` keeping it alive. PID 1 is an init process, so
// a stop ends it at once. On any failure: an empty result whose failure() says why (a typed reason and the
// engine's own message, also logged), and no half-made container left, even when the create request's reply never
// arrived or was a 5xx (the container is then found by a label carrying a token of this call). Cancellation (a
// cancellation slot, with_timeout) is not a failure: it propagates as the operation's exception, after the same
// cleanup. The steps common to every backend are in build_pipeline.hpp; this is the one-engine backend.
#include <berth/detail/poll.hpp>
#include <berth/eval/build_pipeline.hpp>

namespace berth {

namespace detail {

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
        container_remove_options forced;
        forced.force = true;
        co_await client.containers().remove(id, forced);
    } catch (const std::exception&) {
        // already gone, or the engine refuses: the caller reports the original failure
    }
}

}  // namespace detail

// The container_config build_container creates (exposed so callers and tests can see exactly what is asked).
inline container_config evaluation_container_config(const build_container_options& o, engine_kind kind, bool gpu) {
    container_config c;
    c.image = o.pull_image.empty() ? o.image_name : o.pull_image;
    c.cmd = {"tail", "-f", "/dev/null"};
    c.tty = true;
    c.open_stdin = true;
    c.env = o.env;
    c.labels = o.labels;
    auto repo = std::filesystem::absolute(o.repo_path).lexically_normal().string();
    if (repo.size() > 1 && repo.back() == '/') repo.pop_back();
    c.host.binds = {repo + ":/" + detail::mount_name_of(o) + ":rw"};
    c.host.network_mode = o.network_mode;
    c.host.memory = o.memory_bytes;
    c.host.nano_cpus = o.nano_cpus;
    c.host.pids_limit = o.pids_limit;
    if (o.init) c.host.init = true;
    if (gpu) detail::request_gpus(c.host, kind);
    return c;
}

namespace detail {

// Waits (briefly, bounded) until the container's init process can take a stop signal. An init blocks signals
// before it starts the command, and until then the kernel drops a SIGTERM sent to it (PID 1 of a namespace gets
// only the signals it handles), so a stop sent in that window waits out its whole grace period; Podman's start
// returns early enough for that to happen now and then. A second process in the container means the init is ready.
// The process list must not need anything in the image: Docker runs ps on its host; Podman's default (ps -ef)
// runs ps inside the container, which a distroless image lacks (Podman 4.3 then answers 200 with an empty body),
// so Podman is asked for a descriptor its built-in psgo reads from /proc ("pid"). A reply that still says
// nothing usable means "cannot tell": the wait ends there rather than failing the container.
template <transport Transport>
boost::asio::awaitable<bool> wait_for_init(basic_client<Transport>& client, const std::string& id,
                                           engine_kind kind = engine_kind::docker) {
    const std::string ps_args = kind == engine_kind::podman ? "pid" : "";
    // nullopt: not yet; else the answer
    auto answer = [&client, &id, &ps_args]() -> boost::asio::awaitable<std::optional<bool>> {
        try {
            auto top = co_await client.containers().top(id, ps_args);
            if (top.processes.size() >= 2) co_return true;
        } catch (const engine_error&) {
            co_return false;  // not running (the command exited at once): nothing to wait for
        } catch (const berth::protocol_error&) {
            co_return false;  // an empty or broken body, no process list: the engine cannot list processes here
        }
        co_return std::nullopt;
    };
    // at most 60 checks, about 2.5 s
    const detail::poll_policy policy{
        .first = std::chrono::milliseconds(1), .max = std::chrono::milliseconds(50), .attempts = 60};
    auto started = co_await detail::poll_until(answer, policy);
    co_return started.value_or(false);
}

// build_container's steps on one engine: a container, created and started there (placement_backend).
template <transport Transport>
class engine_placement {
public:
    using handle_type = basic_container<Transport>;

    engine_placement(basic_client<Transport>& client, const build_container_options& options, logger& log)
        : client_(client), options_(options), log_(log) {}

    boost::asio::awaitable<void> check_engine() {
        auto engine = co_await client_.version();  // named: g++ 12 has no (co_await x).member
        kind_ = engine.kind;
    }
    boost::asio::awaitable<std::string> prepare_image() {
        return ensure_image(client_, options_, log_, options_.network_mode);
    }
    boost::asio::awaitable<bool> remove_existing() {
        try {
            container_remove_options forced;
            forced.force = true;
            co_await client_.containers().remove(options_.container_name, forced);
            co_return true;
        } catch (const not_found_error&) { co_return false; }
    }
    std::string_view runnable_noun() const { return "container"; }

    boost::asio::awaitable<std::string> create(const std::string&, bool gpu, const std::string& token) {
        auto config = evaluation_container_config(options_, kind_, gpu);
        config.labels[build_call_label] = token;
        auto created = co_await client_.containers().create(config,
                                                            options_.container_name);  // g++ 12: no (co_await).id
        co_return created.id;
    }
    boost::asio::awaitable<void> wait_running(const std::string& id) {
        co_await client_.containers().start(id);
        if (options_.init) co_await wait_for_init(client_, id, kind_);
    }

    std::string gpu_request_text() const {
        return std::string("GPU passthrough requested (") +
               (kind_ == engine_kind::podman ? "CDI nvidia.com/gpu=all" : "DeviceRequests") + ")";
    }
    // Any refusal while creating or starting with GPUs: the engine has none, or no driver for them.
    std::optional<std::string> gpu_refusal(const std::exception& e) const {
        if (auto* refused = dynamic_cast<const engine_error*>(&e)) return refused->message();
        return std::nullopt;
    }
    std::string gpu_fallback_text(const std::string& refusal) const {
        return "GPU request refused by the engine, starting without GPU: " + refusal;
    }

    boost::asio::awaitable<handle_type> bind(const std::string& id) {
        if (options_.verbose) log_.info("Container " + options_.container_name + " started (" + id.substr(0, 12) + ")");
        handle_type result{&client_, id, options_.container_name};
        if (options_.request_gpus && options_.check_gpu_devices) {
            collected_output out;
            exec_options ls;
            ls.cmd = {"sh", "-c", "ls /dev/nvidia* 2>/dev/null"};
            ls.on_output = std::ref(out);
            co_await client_.execs().run(id, ls);
            log_.info(out.stdout_text.empty() ? std::string("No /dev/nvidia* devices in the container")
                                              : "GPU devices in the container: " + out.stdout_text);
        }
        co_return result;
    }

    boost::asio::awaitable<void> remove(const std::string& id) { return remove_quietly(client_, id); }
    boost::asio::awaitable<std::vector<std::string>> find_labelled(const std::string& label) {
        container_list_options mine;
        mine.all = true;
        mine.filters["label"] = {label};
        std::vector<std::string> ids;
        auto found = co_await client_.containers().list(mine);
        for (auto& c : found) ids.push_back(c.id);
        co_return ids;
    }

    build_failure classify(std::exception_ptr error, build_step step, std::string message) const {
        return classify_build_failure(error, step, std::move(message));
    }
    std::string failure_context() const { return ""; }

private:
    basic_client<Transport>& client_;
    const build_container_options& options_;
    logger& log_;
    engine_kind kind_ = engine_kind::docker;
};

}  // namespace detail

template <transport Transport>
boost::asio::awaitable<basic_build_container_result<Transport>> build_container(basic_client<Transport>& engine_client,
                                                                                build_container_options options) {
    auto log = resolve_logger(options.log);
    detail::engine_placement<Transport> backend(engine_client, options, *log);
    static_assert(placement_backend<detail::engine_placement<Transport>>);
    co_return co_await detail::run_build_pipeline(backend, options, *log);
}

}  // namespace berth
