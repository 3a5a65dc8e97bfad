#pragma once
// build_container: the image (built only when its tag is missing, or without cache when asked), a fresh container
// of the given name (any old one force-removed), started detached with the repository bind-mounted read-write at
// /<mount_name> and `tail -f /dev/null` keeping it alive. PID 1 is an init process, so a stop ends it at once.
// On any failure: an empty result whose failure() says why (a typed reason and the engine's own message, also
// logged), and no half-made container left, even when the create request's reply never arrived or was a 5xx (the
// container is then found by a label carrying a token of this call). Cancellation (a cancellation slot,
// with_timeout) is not a failure: it propagates as the operation's exception, after the same cleanup.
#include <berth/detail/random_token.hpp>
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
    // An image in a registry to run instead of one built from repo_path (which is still mounted): pulled when
    // missing (or always, with force_rebuild), with pull.credentials or those the docker CLI would use.
    std::string pull_image;
    pull_options pull;
};

// Why build_container returned no container.
enum class build_failure_reason {
    engine_unreachable,  // connecting failed, the connection broke, or a time limit passed
    context_unreadable,  // the build context (repo_path) could not be read
    image_build_failed,  // the engine refused or failed the image build: message is its own
    image_pull_failed,   // pull_image could not be pulled (registry_error, credential_error): the message says why
    name_conflict,       // the container name is held by a container the engine would not remove or replace
    gpu_refused,         // GPUs were required (gpu_required) and the engine refused them
    engine_refused,      // the engine refused another request (e.g. the image's platform, a bind mount)
    protocol_error,      // the engine's reply was not what the Engine API promises
    invalid_options,     // the options themselves are unusable
    other,
};

struct build_failure {
    build_failure_reason reason = build_failure_reason::other;
    std::string message;       // what was logged, the engine's own message included
    std::exception_ptr error;  // the exception behind it, for callers who want its type (engine_error: status)
};

// build_container's result: a std::optional<container> as the seed's contract has it, plus failure() when empty.
template <transport Transport>
class basic_build_container_result : public std::optional<basic_container<Transport>> {
public:
    using std::optional<basic_container<Transport>>::optional;
    basic_build_container_result(build_failure failure) : failure_(std::move(failure)) {}

    // Why there is no container; nullptr when there is one.
    const build_failure* failure() const noexcept { return failure_ ? &*failure_ : nullptr; }

private:
    std::optional<build_failure> failure_;
};

using build_container_result = basic_build_container_result<socket_transport>;

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
    c.image = o.pull_image.empty() ? o.image_name : o.pull_image;
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

// The label marking the container one build_container call creates, with a token only that call knows.
inline constexpr const char* build_call_label = "berth.build-call";

// What this call has made so far, for the cleanup after a failure or cancellation.
struct made_container {
    std::string token;             // this call's build_call_label value
    std::string id;                // set once the create reply has arrived
    bool create_unanswered = false;  // a create was sent and its outcome is unknown: no reply, or a 5xx
};

// Whether a create the engine answered with this error may have made something all the same. A 4xx (and Podman's
// 500 for a name in use, a conflict_error) is a refusal: nothing was made. A 5xx is not: an engine failing after
// the object exists, a proxy timing out while the engine goes on, a Swarm manager whose raft proposal commits after
// its reply. Such an outcome is as unknown as no reply at all, and is reconciled the same way (by the call's label).
inline bool create_outcome_unknown(const engine_error& e) { return e.code() == engine_errc::server_error; }

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
    const std::string target = "/containers/" + detail::percent_encode(id) + "/top" +
                               (kind == engine_kind::podman ? "?ps_args=pid" : "");
    auto delay = std::chrono::milliseconds(1);
    for (int attempt = 0; attempt < 60; ++attempt) {  // at most about 2.5 s
        try {
            auto v = co_await client.core().call_json(verb::get, target);
            auto* processes = v.is_object() ? v.as_object().if_contains("Processes") : nullptr;
            if (!processes) co_return false;  // cannot tell
            if (processes->is_array() && processes->as_array().size() >= 2) co_return true;
        } catch (const engine_error&) {
            co_return false;  // not running (the command exited at once): nothing to wait for
        } catch (const berth::protocol_error&) {
            co_return false;  // an empty or broken body: the engine cannot list processes here
        }
        boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, delay);
        co_await t.async_wait(boost::asio::use_awaitable);
        delay = std::min(delay * 2, std::chrono::milliseconds(50));
    }
    co_return false;
}

// What a build_container call caught: a cancellation (the caller's decision, propagated after the cleanup) or a
// failure (reported in the result). Called from a catch handler, since co_await is not allowed there.
struct caught_failure {
    std::exception_ptr cancelled{}, failed{};
    std::string message{};
    void take_current() {
        try {
            throw;
        } catch (const boost::system::system_error& e) {
            if (e.code() == boost::asio::error::operation_aborted) {
                cancelled = std::current_exception();
                return;
            }
            failed = std::current_exception();
            message = e.what();
        } catch (const std::exception& e) {
            failed = std::current_exception();
            message = e.what();
        }
    }
};

// Creates and starts the container; made.id is set as soon as it exists, so a failed start can clean it up.
template <transport Transport>
boost::asio::awaitable<std::string> create_and_start(basic_client<Transport>& client,
                                                     const build_container_options& options, engine_kind kind,
                                                     bool with_gpu, made_container& made) {
    auto config = evaluation_container_config(options, kind, with_gpu);
    config.labels[build_call_label] = made.token;
    made.create_unanswered = true;
    try {
        auto created = co_await client.containers().create(config, options.container_name); // g++ 12: no (co_await).id
        made.id = created.id;
    } catch (const engine_error& e) {
        made.create_unanswered = create_outcome_unknown(e);  // a refusal made nothing; a 5xx may have
        throw;
    }
    made.create_unanswered = false;
    co_await client.containers().start(made.id);
    if (options.init) co_await wait_for_init(client, made.id, kind);
    co_return made.id;
}

// After a create whose reply never came (cancelled, connection lost) or was a 5xx: the engine may have made the
// container anyway, or may still be making it. It is found by this call's label, so nothing another call made is
// touched; asked a few times over about a second and a half, since the engine may finish the create after we gave up.
template <transport Transport>
boost::asio::awaitable<void> remove_unanswered_create(basic_client<Transport>& client, const made_container& made) {
    list_containers_options mine;
    mine.all = true;
    mine.filters["label"] = {std::string(build_call_label) + "=" + made.token};
    auto delay = std::chrono::milliseconds(50);
    try {
        for (int attempt = 0; attempt < 6; ++attempt, delay *= 2) {
            auto found = co_await client.containers().list(mine);
            for (auto& c : found) co_await remove_quietly(client, c.id);
            if (!found.empty()) co_return;
            boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, delay);
            co_await t.async_wait(boost::asio::use_awaitable);
        }
    } catch (const std::exception&) {
        // the engine is gone too: the caller reports the original failure
    }
}

enum class build_step { engine, image, container, gpu_container };

inline build_failure classify_build_failure(std::exception_ptr error, build_step step, std::string message) {
    using enum build_failure_reason;
    build_failure f{other, std::move(message), error};
    try {
        std::rethrow_exception(error);
    } catch (const registry_error&) {
        f.reason = image_pull_failed;
    } catch (const credential_error&) {
        f.reason = image_pull_failed;
    } catch (const conflict_error&) {
        f.reason = step == build_step::image ? image_build_failed : name_conflict;
    } catch (const engine_error&) {
        f.reason = step == build_step::image           ? image_build_failed
                   : step == build_step::gpu_container ? gpu_refused
                                                       : engine_refused;
    } catch (const berth::protocol_error&) {
        f.reason = protocol_error;
    } catch (const boost::system::system_error&) {
        f.reason = engine_unreachable;
    } catch (const tar::error&) {
        f.reason = step == build_step::image ? context_unreadable : other;
    } catch (const std::filesystem::filesystem_error&) {
        f.reason = step == build_step::image ? context_unreadable : other;
    } catch (const std::invalid_argument&) {
        f.reason = invalid_options;
    } catch (...) {
    }
    return f;
}

} // namespace detail

template <transport Transport>
boost::asio::awaitable<basic_build_container_result<Transport>>
build_container(basic_client<Transport>& engine_client, build_container_options options) {
    auto log = resolve_logger(options.log);
    const bool verbose = options.verbose;
    auto say = [&](std::string_view m) {
        if (verbose) log->info(m);
    };
    detail::made_container made{detail::random_token(), {}, false};
    auto step = detail::build_step::engine;
    detail::caught_failure caught;
    try {
        auto engine = co_await engine_client.version();

        const std::string& image = options.pull_image.empty() ? options.image_name : options.pull_image;
        bool exists = !options.force_rebuild && co_await engine_client.images().exists(image);
        progress_callback progress;  // each build step or pulled layer logged as it goes, without byte counts
        if (verbose)
            progress = [&log](const progress_event& e) {
                if (e.kind == progress_kind::step_progress) return;
                // one log record per line, as the seed logs build output (a step's output may hold several)
                auto text = describe(e);
                for (std::size_t start = 0, nl; start < text.size(); start = nl + 1) {
                    nl = std::min(text.find('\n', start), text.size());
                    auto line = std::string_view(text).substr(start, nl - start);
                    while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
                    if (!line.empty()) log->info(line);
                }
            };
        if (!exists && !options.pull_image.empty()) {
            step = detail::build_step::image;
            say("Pulling image " + options.pull_image);
            auto pulled = co_await engine_client.images().pull(options.pull_image, options.pull, progress);
            say("Image " + options.pull_image + " pulled: " + pulled.id + " (" + pulled.digest + ")");
        } else if (!exists) {
            step = detail::build_step::image;
            say("Building image " + options.image_name + (options.force_rebuild ? " (no cache)" : "") + " from " +
                options.repo_path);
            tar::pack_options pack;
            pack.use_dockerignore = true;
            tar::packer context(options.repo_path, "", pack);
            build_options build;
            build.tag = options.image_name;
            build.no_cache = options.force_rebuild;
            build.force_remove_intermediate = true;
            build.network_mode = options.network_mode;
            auto built = co_await engine_client.images().build(context, build, progress);
            say("Image " + options.image_name + " built: " + built.id);
        } else {
            say("Image " + image + " found; not " + (options.pull_image.empty() ? "rebuilding" : "pulling"));
        }

        step = detail::build_step::container;
        try {
            co_await engine_client.containers().remove(options.container_name, true);
            say("Removed existing container " + options.container_name);
        } catch (const not_found_error&) {
        }

        const bool gpu = detail::wants_gpu(options.domains);
        std::string id;
        if (gpu) {
            say(std::string("GPU passthrough requested (") +
                (engine.kind == engine_kind::podman ? "CDI nvidia.com/gpu=all" : "DeviceRequests") + ")");
            std::string refusal;  // co_await is not allowed inside a handler: note the refusal, act after it
            step = detail::build_step::gpu_container;
            try {
                id = co_await detail::create_and_start(engine_client, options, engine.kind, true, made);
            } catch (const engine_error& e) {
                if (options.gpu_required) throw;
                refusal = e.message();
            }
            step = detail::build_step::container;
            if (!refusal.empty()) {
                log->warning("GPU request refused by the engine, starting without GPU: " + refusal);
                if (!made.id.empty()) co_await detail::remove_quietly(engine_client, std::exchange(made.id, {}));
                else if (made.create_unanswered) co_await detail::remove_unanswered_create(engine_client, made);
                id = co_await detail::create_and_start(engine_client, options, engine.kind, false, made);
            }
        } else {
            id = co_await detail::create_and_start(engine_client, options, engine.kind, false, made);
        }
        say("Container " + options.container_name + " started (" + id.substr(0, 12) + ")");
        basic_container<Transport> result{&engine_client, id, options.container_name};
        if (gpu && options.check_gpu_devices) {
            collected_output out;
            exec_options ls;
            ls.cmd = {"sh", "-c", "ls /dev/nvidia* 2>/dev/null"};
            co_await engine_client.execs().run(id, ls, out);
            log->info(out.stdout_text.empty() ? std::string("No /dev/nvidia* devices in the container")
                                              : "GPU devices in the container: " + out.stdout_text);
        }
        co_return result;
    } catch (const build_error& e) {
        // The failing step's own error and its last lines, not only the engine's summary.
        caught.failed = std::current_exception();
        std::string last_lines = e.step_log();  // on one line: the log keeps one record per line
        for (auto& ch : last_lines)
            if (ch == '\n') ch = '|';
        caught.message = (e.step().empty() ? std::string() : "at step " + e.step() + ": ") + e.message() +
                          (last_lines.empty() ? std::string() : " (last output: " + last_lines + ")");
    } catch (const std::exception&) {
        caught.take_current();
    }
    // Reached only on failure or cancellation (co_await is not allowed in the handlers above). After a
    // cancellation the state is reset first, so the removal itself is not cancelled too.
    if (caught.failed) log->error("build_container(" + options.container_name + ") failed" +
                           (caught.message.starts_with("at step ") ? " " : ": ") + caught.message);
    if (caught.cancelled) co_await boost::asio::this_coro::reset_cancellation_state();
    if (!made.id.empty()) co_await detail::remove_quietly(engine_client, made.id);
    else if (made.create_unanswered) co_await detail::remove_unanswered_create(engine_client, made);
    if (caught.cancelled) std::rethrow_exception(caught.cancelled);
    co_return detail::classify_build_failure(caught.failed, step, std::move(caught.message));
}

} // namespace berth
