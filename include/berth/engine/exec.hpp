#pragma once
// Exec: create, start (attached: output streamed to a handler, stdout and stderr apart), inspect, and run (all
// three, returning the exit code). The start request hijacks its connection (HTTP upgrade); that connection is
// never returned to the pool.
#include <berth/detail/url.hpp>
#include <berth/engine/client_core.hpp>
#include <berth/engine/output_handler.hpp>

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

    boost::asio::awaitable<std::string> create(std::string_view container, exec_options options) {
        if (options.cmd.empty()) throw std::invalid_argument("berth::exec: the command is empty");
        json::object body{{"AttachStdin", false}, {"AttachStdout", true}, {"AttachStderr", true},
                          {"Tty", options.tty}, {"Cmd", json::array(options.cmd.begin(), options.cmd.end())}};
        if (!options.env.empty()) body["Env"] = json::array(options.env.begin(), options.env.end());
        if (!options.working_dir.empty()) body["WorkingDir"] = options.working_dir;
        if (!options.user.empty()) body["User"] = options.user;
        if (options.privileged) body["Privileged"] = true;
        std::string target = "/containers/" + detail::percent_encode(container) + "/exec";
        if (options.console_size) {
            co_await client_.require_api("1.42", "an exec's ConsoleSize", "POST " + target);
            body["ConsoleSize"] = json::array{options.console_size->first, options.console_size->second};
        }
        auto v = co_await client_.call_json(verb::post, target, json::serialize(body));
        co_return json_read::string_field(json_read::as_object(v, "POST " + target), "Id", "POST " + target);
    }

    // Starts the exec attached and streams its output to the handler until the process's output ends.
    template <output_handler Handler>
    boost::asio::awaitable<void> start(std::string_view exec_id, Handler& handler, bool tty = false) {
        namespace asio = boost::asio;
        std::string target = "/exec/" + detail::percent_encode(exec_id) + "/start";
        http::request req{.method = verb::post,
                          .target = target,
                          .body = json::serialize(json::object{{"Detach", false}, {"Tty", tty}}),
                          .content_type = "application/json",
                          .upgrade = true};
        auto reply = co_await client_.open(std::move(req));
        auto endpoint = reply.endpoint();
        auto address = reply.address();
        // Docker and Podman both switch protocols when asked to; any other success would leave berth reading a
        // connection that carries no stream (a 200 with Content-Length: 0 would be waited on forever).
        if (reply.status() != 101)
            throw protocol_error(endpoint, "the engine answered " + std::to_string(reply.status()) +
                                               " instead of switching protocols (101) for the exec's stream");
        auto connection = reply.take_connection();
        detail::output_dispatcher<std::remove_reference_t<Handler>> dispatch(handler, !tty, endpoint);
        read_state state;
        if (co_await client_.kind() == engine_kind::podman) {
            // Podman does not always close the upgraded connection when the process ends: also watch the
            // exec's state, and stop reading once it has exited and the stream has gone quiet.
            // The first to finish decides, error or not, and the other is cancelled. (The operator || would wait
            // for the first *success*: a broken stream would be ignored until the exec exits.)
            auto ex = co_await asio::this_coro::executor;
            std::string id(exec_id);
            auto group = asio::experimental::make_parallel_group(
                asio::co_spawn(ex, pump(*connection, dispatch, state, address, endpoint), asio::deferred),
                asio::co_spawn(ex, watch_exit(std::move(id), state), asio::deferred));
            auto [order, pump_error, watch_error] =
                co_await group.async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
            if (auto first_error = order[0] == 0 ? pump_error : watch_error) std::rethrow_exception(first_error);
        } else {
            co_await pump(*connection, dispatch, state, address, endpoint);
        }
        if (!dispatch.complete()) throw protocol_error(endpoint, "exec output ended inside a frame");
    }

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

    // The exit code of a finished exec. The engine records it a moment after the output stream ends, so a
    // "still running" answer is asked again, briefly.
    boost::asio::awaitable<int> exit_code(std::string_view exec_id) {
        namespace asio = boost::asio;
        auto delay = std::chrono::milliseconds(1);
        for (int attempt = 0;; ++attempt) {
            auto info = co_await inspect(exec_id);
            if (info.exit_code) co_return *info.exit_code;
            if (attempt == 200)
                throw protocol_error("GET /exec/" + std::string(exec_id) + "/json",
                                     "the exec still reports no exit code after its output ended");
            asio::steady_timer t(co_await asio::this_coro::executor, delay);
            co_await t.async_wait(asio::use_awaitable);
            delay = std::min(delay * 2, std::chrono::milliseconds(50));
        }
    }

    // create + start + exit code.
    template <output_handler Handler>
    boost::asio::awaitable<int> run(std::string_view container, exec_options options, Handler& handler) {
        auto id = co_await create(container, options);
        co_await start(id, handler, options.tty);
        co_return co_await exit_code(id);
    }

private:
    struct read_state {
        std::chrono::steady_clock::time_point last_data = std::chrono::steady_clock::now();
    };

    template <class Connection, class Dispatch>
    static boost::asio::awaitable<void> pump(Connection& c, Dispatch& dispatch, read_state& state,
                                             const std::string& address, const std::string& endpoint) {
        namespace asio = boost::asio;
        // Bytes that arrived with the reply head belong to the stream.
        if (c.buffer.size() > 0) {
            auto data = c.buffer.data();
            dispatch(std::span<const char>(static_cast<const char*>(data.data()), data.size()));
            c.buffer.consume(c.buffer.size());
        }
        std::array<char, 16 * 1024> buffer;
        for (;;) {
            auto [ec, n] = co_await c.stream.async_read_some(asio::buffer(buffer), asio::as_tuple(asio::use_awaitable));
            if (n > 0) {
                state.last_data = std::chrono::steady_clock::now();
                dispatch(std::span<const char>(buffer.data(), n));
            }
            if (ec == asio::error::eof) co_return;
            if (ec) http::detail::throw_exchange_error(ec, address, endpoint, "reading exec output");
        }
    }

    boost::asio::awaitable<void> watch_exit(std::string exec_id, read_state& state) {
        namespace asio = boost::asio;
        using clock = std::chrono::steady_clock;
        asio::steady_timer t(co_await asio::this_coro::executor);
        auto poll = std::chrono::milliseconds(20);
        for (;;) {
            t.expires_after(poll);
            co_await t.async_wait(asio::use_awaitable);
            poll = std::min(poll * 2, std::chrono::milliseconds(500));
            auto info = co_await inspect(exec_id);
            if (info.running) continue;
            // Exited: let the stream drain until it has been quiet for a moment.
            const auto quiet = std::chrono::milliseconds(100);
            while (clock::now() - state.last_data < quiet) {
                t.expires_at(state.last_data + quiet);
                co_await t.async_wait(asio::use_awaitable);
            }
            co_return;
        }
    }

    client_core<Transport>& client_;
};

} // namespace berth
