#pragma once
// build_container's steps, written once for every backend (one engine, a Swarm cluster; later Kubernetes): check
// the engine, have the image (present, pulled or built; force_rebuild builds it again without cache), remove an old
// runnable of the same name, create the runnable (with GPUs when asked, then without them if the backend's refusal
// allows the fallback), wait until it runs, and bind the handle. What the call made is recorded as it goes; on a
// failure or a cancellation it is removed, by id, or, when a create's outcome is unknown (no reply, or a 5xx), by
// a label carrying a token only this call knows. A failure is an empty result whose failure() holds a typed reason,
// the message that was logged and the exception behind it; a cancellation propagates after the same cleanup.
//
// The backend-specific steps sit behind placement_backend (below): a backend creates its runnable (a container on
// one engine, a service on Swarm), waits until it runs, binds the handle, and removes what it made.
#include <berth/detail/poll.hpp>
#include <berth/detail/random_token.hpp>
#include <berth/eval/container.hpp>
#include <berth/eval/logger.hpp>
#include <berth/tar/packer.hpp>

#include <concepts>
#include <filesystem>
#include <optional>

namespace berth {

struct build_container_options {
    std::string repo_path = "./";  // the build context, also bind-mounted into the container
    std::string image_name = "app";
    std::string container_name = "app-container";
    bool force_rebuild = false;  // build even when the tag exists, with no cache
    bool verbose = true;
    std::string mount_name;          // the repository appears at /<mount_name>; empty: repo_path's directory name
    bool request_gpus = false;       // GPUs for the container (Docker: DeviceRequests; Podman: CDI nvidia.com/gpu=all)
    bool gpu_required = false;       // a refused GPU request fails the build instead of falling back
    bool check_gpu_devices = false;  // after start, log which /dev/nvidia* the container sees
    std::string network_mode;        // empty: the engine's default network
    std::vector<std::string> env;    // "KEY=value"
    std::map<std::string, std::string> labels;
    std::int64_t memory_bytes = 0;  // 0: unlimited
    std::int64_t nano_cpus = 0;     // 1'000'000'000 = one CPU
    std::optional<std::int64_t> pids_limit;
    bool init = true;               // an init process as PID 1 (Docker's Init; Podman's catatonit)
    std::shared_ptr<logger> log{};  // default: the thread's logger
    // An image in a registry to run instead of one built from repo_path (which is still mounted): pulled when
    // missing (or always, with force_rebuild), with pull_image_options.credentials or those the docker CLI would use.
    std::string pull_image;
    pull_options pull_image_options;
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
    // The error's code (engine_errc::conflict, tar::errc::io_error, asio::error::connection_refused, ...), without
    // a rethrow by the caller; empty when there is none.
    boost::system::error_code code() const noexcept { return code_of(error); }
    // The error's own what() (message is what was logged, which may say more).
    std::string what() const { return what_of(error); }
};

// What a build_container call returns: the handle (a std::optional, as the Python module's contract has it: None
// on failure), plus failure() when empty.
template <class Handle>
class basic_build_result : public std::optional<Handle> {
public:
    using std::optional<Handle>::optional;
    basic_build_result(build_failure failure) : failure_(std::move(failure)) {}

    // Why there is no handle; nullptr when there is one.
    const build_failure* failure() const noexcept { return failure_ ? &*failure_ : nullptr; }

private:
    std::optional<build_failure> failure_;
};

template <transport Transport>
using basic_build_container_result = basic_build_result<basic_container<Transport>>;

using build_container_result = basic_build_container_result<socket_transport>;

namespace detail {

// The directory the repository is mounted at: mount_name, or repo_path's own directory name.
inline std::string mount_name_of(const build_container_options& o) {
    if (!o.mount_name.empty()) return o.mount_name;
    auto repo = std::filesystem::absolute(o.repo_path).lexically_normal();
    auto name = (repo.has_filename() ? repo.filename() : repo.parent_path().filename()).string();
    if (name.empty() || name == "." || name == "..")
        throw invalid_argument_error("build_container: repo_path " + o.repo_path +
                                     " has no directory name to mount it at: set mount_name");
    return name;
}

// The label marking what one build_container call creates, with a token only that call knows.
inline constexpr const char* build_call_label = "berth.build-call";

// What this call has made so far, for the cleanup after a failure or cancellation.
struct made_object {
    std::string token;               // this call's build_call_label value
    std::string id;                  // set once the create reply has arrived
    bool create_unanswered = false;  // a create was sent and its outcome is unknown: no reply, or a 5xx
};

// Whether a create the engine answered with this error may have made something all the same. A 4xx (and Podman's
// 500 for a name in use, a conflict_error) is a refusal: nothing was made. A 5xx is not: an engine failing after
// the object exists, a proxy timing out while the engine goes on, a Swarm manager whose raft proposal commits after
// its reply. Such an outcome is as unknown as no reply at all, and is reconciled the same way (by the call's label).
inline bool create_outcome_unknown(const engine_error& e) { return e.code() == engine_errc::server_error; }

// What a build_container call caught: a cancellation (the caller's decision, propagated after the cleanup) or a
// failure (reported in the result). Called from a catch handler, since co_await is not allowed there.
struct caught_failure {
    std::exception_ptr cancelled{}, failed{};
    std::string message{};
    void take_current() {
        try {
            throw;
        } catch (const build_error& e) {
            // The failing step's own error and its last lines, not only the engine's summary.
            failed = std::current_exception();
            std::string last_lines = e.step_log();  // on one line: the log keeps one record per line
            for (auto& ch : last_lines)
                if (ch == '\n') ch = '|';
            message = (e.step().empty() ? std::string() : "at step " + e.step() + ": ") + e.message() +
                      (last_lines.empty() ? std::string() : " (last output: " + last_lines + ")");
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

enum class build_step { engine, image, container, gpu_container };

inline build_failure classify_build_failure(std::exception_ptr error, build_step step, std::string message) {
    using enum build_failure_reason;
    build_failure f{other, std::move(message), error};
    try {
        std::rethrow_exception(error);
    } catch (const registry_error&) { f.reason = image_pull_failed; } catch (const credential_error&) {
        f.reason = image_pull_failed;
    } catch (const conflict_error&) {
        f.reason = step == build_step::image ? image_build_failed : name_conflict;
    } catch (const engine_error&) {
        f.reason = step == build_step::image           ? image_build_failed
                   : step == build_step::gpu_container ? gpu_refused
                                                       : engine_refused;
    } catch (const berth::protocol_error&) { f.reason = protocol_error; } catch (const connection_error&) {
        f.reason = engine_unreachable;
    } catch (const tar::error&) {
        f.reason = step == build_step::image ? context_unreadable : other;
    } catch (const invalid_argument_error&) {  // bad input: invalid_host, invalid_reference, a bad option
        f.reason = invalid_options;
    } catch (const context_error&) { f.reason = invalid_options; } catch (const berth::error& e) {
        // berth's other errors (file_not_found, trace_error, ...) are not the connection's; one carrying the
        // system's or Asio's code (exec_interrupted) is
        f.reason = std::string_view(e.code().category().name()).starts_with("berth.") ? other : engine_unreachable;
    } catch (const boost::system::system_error&) {
        f.reason = engine_unreachable;  // Asio's own: the connection failed
    } catch (const std::filesystem::filesystem_error&) {
        f.reason = step == build_step::image ? context_unreadable : other;
    } catch (const std::invalid_argument&) {  // the standard library's (std::stoi and the like)
        f.reason = invalid_options;
    } catch (...) {}
    return f;
}

// The evaluation image on `engine_client`: found by its tag (unless force_rebuild), else pulled (pull_image) or
// built from repo_path (without cache when force_rebuild; RUN steps on `build_network`). Each build step or
// pulled layer is logged as it goes (when verbose), without byte counts. Returns the image to run.
template <transport Transport>
boost::asio::awaitable<std::string> ensure_image(basic_client<Transport>& engine_client,
                                                 const build_container_options& options, logger& log,
                                                 std::string build_network) {
    const bool verbose = options.verbose;
    auto say = [&](std::string_view m) {
        if (verbose) log.info(m);
    };
    const std::string image = options.pull_image.empty() ? options.image_name : options.pull_image;
    bool exists = !options.force_rebuild && co_await engine_client.images().exists(image);
    progress_callback progress;
    if (verbose)
        progress = [&log](const progress_event& e) {
            if (e.kind == progress_kind::step_progress) return;
            // one log record per line, as the Python module logs build output (a step's output may hold several)
            auto text = describe(e);
            for (std::size_t start = 0, nl; start < text.size(); start = nl + 1) {
                nl = std::min(text.find('\n', start), text.size());
                auto line = std::string_view(text).substr(start, nl - start);
                while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
                if (!line.empty()) log.info(line);
            }
        };
    if (!exists && !options.pull_image.empty()) {
        say("Pulling image " + options.pull_image);
        pull_options pull = options.pull_image_options;
        if (progress)  // the log's, after the caller's own
            pull.on_progress = [mine = std::move(pull.on_progress), progress](const progress_event& e) {
                if (mine) mine(e);
                progress(e);
            };
        auto pulled = co_await engine_client.images().pull(options.pull_image, pull);
        say("Image " + options.pull_image + " pulled: " + pulled.id + " (" + pulled.digest + ")");
    } else if (!exists) {
        say("Building image " + options.image_name + (options.force_rebuild ? " (no cache)" : "") + " from " +
            options.repo_path);
        tar::pack_options pack;
        pack.use_dockerignore = true;
        tar::packer context(options.repo_path, "", pack);
        build_options build;
        build.tag = options.image_name;
        build.no_cache = options.force_rebuild;
        build.force_remove_intermediate = true;
        build.network_mode = std::move(build_network);
        build.on_progress = progress;
        auto built = co_await engine_client.images().build(context, build);
        say("Image " + options.image_name + " built: " + built.id);
    } else {
        say("Image " + image + " found; not " + (options.pull_image.empty() ? "rebuilding" : "pulling"));
    }
    co_return image;
}

}  // namespace detail

// What a build_container backend does that the pipeline cannot: one object per call, which may keep what it
// learns between the steps (the node a task landed on). Every awaitable may throw; the pipeline classifies it
// (classify) and removes what was made (remove, find_labelled).
template <class B>
concept placement_backend = requires(B& b, const std::string& text, bool gpu, const std::exception& e,
                                     std::exception_ptr error, detail::build_step step) {
    typename B::handle_type;
    // Reaches the engine and checks it can run an evaluation at all (a Swarm manager, a registry set).
    { b.check_engine() } -> std::same_as<boost::asio::awaitable<void>>;
    // The image the runnable runs (built, pulled or distributed as the backend needs).
    { b.prepare_image() } -> std::same_as<boost::asio::awaitable<std::string>>;
    // Removes a runnable of the options' name left by an earlier run; true when there was one.
    { b.remove_existing() } -> std::same_as<boost::asio::awaitable<bool>>;
    { b.runnable_noun() } -> std::convertible_to<std::string_view>;  // "container", "service": for the log
    // Creates the runnable running `image` (with GPUs when `gpu`), labelled build_call_label=`token`; its id. (A
    // backend whose errors are not engine_errors also has `bool create_outcome_unknown(const std::exception&)`.)
    { b.create(text, gpu, text) } -> std::same_as<boost::asio::awaitable<std::string>>;
    // Starts it if it needs starting, and returns once it runs (or throws why it never will).
    { b.wait_running(text) } -> std::same_as<boost::asio::awaitable<void>>;
    // What the log says when GPUs are asked for; the refusal's text when `e` means "no GPUs here" (the
    // pipeline then starts again without them unless gpu_required), nothing for any other error.
    { b.gpu_request_text() } -> std::convertible_to<std::string>;
    { b.gpu_refusal(e) } -> std::same_as<std::optional<std::string>>;
    { b.gpu_fallback_text(text) } -> std::convertible_to<std::string>;
    // The handle on the running runnable (logged as started by the backend).
    { b.bind(text) } -> std::same_as<boost::asio::awaitable<typename B::handle_type>>;
    // Removal for the cleanup: by id; and the ids of what carries a label ("key=value").
    { b.remove(text) } -> std::same_as<boost::asio::awaitable<void>>;
    { b.find_labelled(text) } -> std::same_as<boost::asio::awaitable<std::vector<std::string>>>;
    // The failure value of an error caught at a step (classify_build_failure, refined by the backend).
    { b.classify(error, step, text) } -> std::same_as<build_failure>;
    // Where, in the failure's log line: "" on one engine, " on the cluster".
    { b.failure_context() } -> std::convertible_to<std::string>;
};

namespace detail {

// Removes what a call made: by id; or, after a create whose reply never came (cancelled, connection lost) or was a
// 5xx, whatever carries the call's label (the engine may have made it anyway, or may still be making it), so
// nothing another call made is touched; asked a few times over about a second and a half, since the engine may
// finish the create after we gave up. Errors are swallowed: the caller reports the original failure.
template <placement_backend Backend>
boost::asio::awaitable<void> remove_made(Backend& backend, made_object& made) {
    const auto id = std::exchange(made.id, {});
    const bool unanswered = std::exchange(made.create_unanswered, false);
    try {
        if (!id.empty()) {
            co_await backend.remove(id);
            co_return;
        }
        if (!unanswered) co_return;
        auto removed = [&backend, &made]() -> boost::asio::awaitable<bool> {
            auto found = co_await backend.find_labelled(std::string(build_call_label) + "=" + made.token);
            for (auto& f : found) {
                try {
                    co_await backend.remove(f);
                } catch (const std::exception&) {
                    // already gone, or refused: the others are still tried
                }
            }
            co_return !found.empty();
        };
        const poll_policy policy{
            .first = std::chrono::milliseconds(50), .max = std::chrono::milliseconds(800), .attempts = 6};
        co_await poll_until(removed, policy);
    } catch (const std::exception&) {
        // the engine is gone too
    }
}

// Creates the runnable and waits until it runs, keeping `made` up to date for the cleanup.
template <placement_backend Backend>
boost::asio::awaitable<void> create_and_wait(Backend& backend, const std::string& image, bool gpu, made_object& made) {
    made.create_unanswered = true;
    try {
        made.id = co_await backend.create(image, gpu, made.token);
    } catch (const std::exception& e) {
        // a refusal made nothing; a 5xx or no reply may have (a backend whose errors are not the Engine API's says)
        if constexpr (requires {
                          { backend.create_outcome_unknown(e) } -> std::same_as<bool>;
                      })
            made.create_unanswered = backend.create_outcome_unknown(e);
        else if (auto* refused = dynamic_cast<const engine_error*>(&e))
            made.create_unanswered = create_outcome_unknown(*refused);
        throw;
    }
    made.create_unanswered = false;
    co_await backend.wait_running(made.id);
}

// build_container with `backend`'s steps.
template <placement_backend Backend>
boost::asio::awaitable<basic_build_result<typename Backend::handle_type>> run_build_pipeline(
    Backend& backend, const build_container_options& options, logger& log) {
    using result_type = basic_build_result<typename Backend::handle_type>;
    auto say = [&](std::string_view m) {
        if (options.verbose) log.info(m);
    };
    made_object made{random_token(), {}, false};
    auto step = build_step::engine;
    caught_failure caught;
    try {
        co_await backend.check_engine();
        step = build_step::image;
        auto image = co_await backend.prepare_image();

        step = build_step::container;
        if (co_await backend.remove_existing())
            say("Removed existing " + std::string(backend.runnable_noun()) + " " + options.container_name);

        if (options.request_gpus) {
            say(backend.gpu_request_text());
            std::optional<std::string> refusal;  // co_await is not allowed inside a handler: note it, act after it
            step = build_step::gpu_container;
            try {
                co_await create_and_wait(backend, image, true, made);
            } catch (const std::exception& e) {
                refusal = backend.gpu_refusal(e);
                if (!refusal || options.gpu_required) throw;
            }
            step = build_step::container;
            if (refusal) {
                log.warning(backend.gpu_fallback_text(*refusal));
                co_await remove_made(backend, made);
                co_await create_and_wait(backend, image, false, made);
            }
        } else {
            co_await create_and_wait(backend, image, false, made);
        }
        co_return co_await backend.bind(made.id);
    } catch (const std::exception&) { caught.take_current(); }
    // Reached only on failure or cancellation (co_await is not allowed in the handler above). After a
    // cancellation the state is reset first, so the removal itself is not cancelled too.
    if (caught.failed)
        log.error("build_container(" + options.container_name + ")" + std::string(backend.failure_context()) +
                  " failed" + (caught.message.starts_with("at step ") ? " " : ": ") + caught.message);
    if (caught.cancelled) co_await boost::asio::this_coro::reset_cancellation_state();
    co_await remove_made(backend, made);
    if (caught.cancelled) std::rethrow_exception(caught.cancelled);
    co_return result_type(backend.classify(caught.failed, step, std::move(caught.message)));
}

}  // namespace detail

}  // namespace berth
