#pragma once
// Exec: create, start (attached: output streamed to on_output, stdout and stderr apart; stdin fed from a
// stdin_source), inspect, resize, and run (all three, returning the exit code). The start request hijacks its connection (HTTP upgrade); that connection is
// never returned to the pool.
#include <berth/detail/detach_keys.hpp>
#include <berth/detail/url.hpp>
#include <berth/detail/poll.hpp>
#include <berth/engine/client_core.hpp>
#include <berth/engine/output_handler.hpp>
#include <berth/http/hijack.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>

namespace berth {

struct exec_options {
    std::vector<std::string> cmd{};
    std::vector<std::string> env{};  // "KEY=value"
    std::string working_dir{};
    std::string user{};
    bool tty = false;
    bool privileged = false;
    // The tty's size from the start, {height, width} (Engine API 1.42 and newer; with tty only).
    std::optional<std::pair<unsigned, unsigned>> console_size{};
    // Where run() sends the output as it arrives (create() does not use it). Empty: the output is read and dropped.
    output_callback on_output{};
    // What run() sends to the process's stdin; once it ends, stdin is closed (the process reads end-of-file).
    // Set, it also has create() ask for AttachStdin.
    stdin_source stdin_{};
    bool attach_stdin = false;  // AttachStdin without a stdin_ here (create() now, start() with its stdin_ later)
    // DetachKeys: the key sequence that detaches from the process ("ctrl-p,ctrl-q" is the engine's default);
    // empty: the engine's. Comma-separated single characters and ctrl-<a-z@[\]^_>; anything else is an
    // invalid_argument_error before the create. Docker 20.10 and Podman 4.3 do not detach an exec cleanly: see
    // docs/engine-api.md.
    std::string detach_keys{};
};

// POST /exec/{id}/start, attached.
struct exec_start_options {
    bool tty = false;             // Tty: as the exec was created (one stream, not stdout and stderr apart)
    output_callback on_output{};  // each slice of output as it arrives; empty: read and dropped
    // Sent to the process's stdin (the exec created with attach_stdin), then stdin is closed: a half-close of the
    // connection, so `cat` or `wc -c` see end-of-file and finish. Empty: nothing is sent.
    stdin_source stdin_{};
};

struct exec_info {  // GET /exec/{id}/json
    std::string id{};
    std::string container_id{};
    bool running = false;
    std::optional<int> exit_code{};  // absent while running
    std::int64_t pid = 0;
    json::object raw{};
};

template <transport Transport>
class exec_api {
public:
    explicit exec_api(client_core<Transport>& c) : client_(c) {}

    // Engine API: POST /containers/{id}/exec
    boost::asio::awaitable<std::string> create(std::string_view container, exec_options options) {
        if (options.cmd.empty()) throw invalid_argument_error("berth::exec: the command is empty");
        detail::check_detach_keys(options.detach_keys, "berth::exec_options");
        json::object body{{"AttachStdin", options.attach_stdin || !options.stdin_.empty()},
                          {"AttachStdout", true},
                          {"AttachStderr", true},
                          {"Tty", options.tty},
                          {"Cmd", json::array(options.cmd.begin(), options.cmd.end())}};
        if (!options.env.empty()) body["Env"] = json::array(options.env.begin(), options.env.end());
        if (!options.working_dir.empty()) body["WorkingDir"] = options.working_dir;
        if (!options.user.empty()) body["User"] = options.user;
        if (options.privileged) body["Privileged"] = true;
        if (!options.detach_keys.empty()) body["DetachKeys"] = options.detach_keys;
        std::string target = "/containers/" + detail::percent_encode(container) + "/exec";
        if (options.console_size) {
            co_await client_.require_api("1.42", "an exec's ConsoleSize", "POST " + target);
            body["ConsoleSize"] = json::array{options.console_size->first, options.console_size->second};
        }
        auto v = co_await client_.call_json(verb::post, target, json::serialize(body));
        co_return json_read::string_field(json_read::as_object(v, "POST " + target), "Id", "POST " + target);
    }

    // Starts the exec attached and streams its output to options.on_output until the process's output ends.
    // (Overloads, not a defaulted argument: g++ 12 double-destroys a defaulted options temporary in a co_await.)
    // Engine API: POST /exec/{id}/start
    boost::asio::awaitable<void> start(std::string_view exec_id, exec_start_options options) {
        // A stdin file is opened before anything is sent: a missing one refuses the start, not half of it.
        std::optional<stdin_source::reader> source;
        if (options.stdin_) source.emplace(options.stdin_);
        output_forwarder forward{std::move(options.on_output)};
        co_await start_with(exec_id, forward, options.tty, source ? &*source : nullptr);
    }
    boost::asio::awaitable<void> start(std::string_view exec_id) {
        exec_start_options options;
        return start(exec_id, std::move(options));
    }

private:
    struct read_state {
        std::chrono::steady_clock::time_point last_data = std::chrono::steady_clock::now();
    };

    template <output_handler Handler>
    boost::asio::awaitable<void> start_with(std::string_view exec_id, Handler& handler, bool tty,
                                            stdin_source::reader* source) {
        std::string target = "/exec/" + detail::percent_encode(exec_id) + "/start";
        http::request req{.method = verb::post,
                          .target = target,
                          .body = json::serialize(json::object{{"Detach", false}, {"Tty", tty}}),
                          .content_type = "application/json"};
        auto stream = co_await client_.open_hijacked(std::move(req), "the exec's stream");
        const std::string& endpoint = stream.endpoint;
        detail::output_dispatcher<std::remove_reference_t<Handler>> dispatch(handler, !tty, endpoint);
        read_state state;
        auto on_bytes = [&dispatch, &state](std::span<const char> bytes) {
            state.last_data = std::chrono::steady_clock::now();
            dispatch(bytes);
        };
        co_await http::read_beside_stdin(
            read_output(exec_id, *stream.connection, on_bytes, state, stream.address, endpoint), *stream.connection,
            source, still_running(exec_id));
        if (!dispatch.complete())
            throw protocol_error(protocol_errc::truncated, endpoint, "exec output ended inside a frame");
    }

    // For http::reset_after_exit_is_end: whether the exec's process still runs (Podman resets the connection when
    // it exits while stdin bytes it never read are still arriving, e.g. `head -c 5` fed a large file).
    auto still_running(std::string_view exec_id) {
        return [this, id = std::string(exec_id)]() -> boost::asio::awaitable<bool> {
            auto info = co_await inspect(id);
            co_return info.running;
        };
    }

    template <class Connection, class OnBytes>
    boost::asio::awaitable<void> read_output(std::string_view exec_id, Connection& connection, OnBytes& on_bytes,
                                             read_state& state, const std::string& address,
                                             const std::string& endpoint) {
        namespace asio = boost::asio;
        if (co_await client_.kind() == engine_kind::podman) {
            // Podman does not always close the upgraded connection when the process ends: also watch the
            // exec's state, and stop reading once it has exited and the stream has gone quiet.
            // The first to finish decides, error or not, and the other is cancelled. (The operator || would wait
            // for the first *success*: a broken stream would be ignored until the exec exits.)
            auto ex = co_await asio::this_coro::executor;
            std::string id(exec_id);
            auto group = asio::experimental::make_parallel_group(
                asio::co_spawn(ex, http::read_hijacked(connection, on_bytes, address, endpoint, "reading exec output"),
                               asio::deferred),
                asio::co_spawn(ex, watch_exit(std::move(id), state), asio::deferred));
            auto [order, pump_error, watch_error] = co_await group.async_wait(asio::experimental::wait_for_one(),
                                                                              asio::use_awaitable);
            if (auto first_error = order[0] == 0 ? pump_error : watch_error) std::rethrow_exception(first_error);
        } else {
            co_await http::read_hijacked(connection, on_bytes, address, endpoint, "reading exec output");
        }
    }

public:
    // Engine API: GET /exec/{id}/json
    boost::asio::awaitable<exec_info> inspect(std::string_view exec_id) {
        std::string target = "/exec/" + detail::percent_encode(exec_id) + "/json";
        auto v = co_await client_.call_json(verb::get, target);
        const std::string endpoint = "GET " + target;
        auto& o = json_read::as_object(v, endpoint);
        exec_info info;
        info.id = json_read::optional_string(o, "ID", endpoint);
        info.container_id = json_read::optional_string(o, "ContainerID", endpoint);
        info.running = json_read::optional_bool(o, "Running", endpoint);
        if (auto* code = o.if_contains("ExitCode"); code && !code->is_null() && !info.running)
            info.exit_code = json_read::optional_int_as<int>(o, "ExitCode", endpoint);
        info.pid = json_read::optional_int(o, "Pid", endpoint);
        info.raw = o;
        co_return info;
    }

    // The exec's tty size, in characters (for an exec created with tty, once started).
    // Engine API: POST /exec/{id}/resize
    boost::asio::awaitable<void> resize(std::string_view exec_id, unsigned height, unsigned width) {
        co_await client_.call(verb::post, "/exec/" + detail::percent_encode(exec_id) + "/resize" +
                                              detail::query().add_number("h", height).add_number("w", width).str());
    }

    // The exit code of a finished exec. The engine records it a moment after the output stream ends, so a
    // "still running" answer is asked again, briefly.
    // Engine API: GET /exec/{id}/json
    boost::asio::awaitable<int> exit_code(std::string_view exec_id) {
        auto ask = [this, exec_id]() -> boost::asio::awaitable<std::optional<int>> {
            auto info = co_await inspect(exec_id);
            co_return info.exit_code;
        };
        const detail::poll_policy policy{
            .first = std::chrono::milliseconds(1), .max = std::chrono::milliseconds(50), .attempts = 201};
        auto code = co_await detail::poll_until(ask, policy);
        if (!code)
            throw protocol_error("GET /exec/" + std::string(exec_id) + "/json",
                                 "the exec still reports no exit code after its output ended");
        co_return *code;
    }

    // create + start + exit code; the output goes to options.on_output.
    // Engine API: POST /containers/{id}/exec
    // Engine API: POST /exec/{id}/start
    // Engine API: GET /exec/{id}/json
    boost::asio::awaitable<int> run(std::string_view container, exec_options options) {
        std::optional<stdin_source::reader> source;  // opened first: a missing file refuses before the create
        if (options.stdin_) source.emplace(options.stdin_);
        auto id = co_await create(container, options);
        output_forwarder forward{std::move(options.on_output)};
        co_await start_with(id, forward, options.tty, source ? &*source : nullptr);
        co_return co_await exit_code(id);
    }

private:
    // An output_callback as an output handler: an empty one drops the output.
    struct output_forwarder {
        output_callback on_output;
        void operator()(output_stream s, std::string_view data) {
            if (on_output) on_output(s, data);
        }
    };

    boost::asio::awaitable<void> watch_exit(std::string exec_id, read_state& state) {
        namespace asio = boost::asio;
        using clock = std::chrono::steady_clock;
        auto exited = [this, &exec_id]() -> asio::awaitable<bool> {
            auto info = co_await inspect(exec_id);
            co_return !info.running;
        };
        const detail::poll_policy policy{
            .first = std::chrono::milliseconds(20), .max = std::chrono::milliseconds(500), .pause_first = true};
        co_await detail::poll_until(exited, policy);
        // Exited: let the stream drain until it has been quiet for a moment.
        asio::steady_timer t(co_await asio::this_coro::executor);
        const auto quiet = std::chrono::milliseconds(100);
        while (clock::now() - state.last_data < quiet) {
            t.expires_at(state.last_data + quiet);
            co_await t.async_wait(asio::use_awaitable);
        }
    }

    client_core<Transport>& client_;
};

}  // namespace berth
