#pragma once
// client_core<Transport>: what every resource API is written on. It owns the transport and the keep-alive pool,
// negotiates the API version once (from /version, capped at a pinned maximum), knows which engine it talks to
// (Docker or Podman, from /version, never guessed), and turns every non-2xx reply into a typed engine_error.
// It lives at a fixed address (basic_client holds it on the heap), so the resource API objects it owns can be
// referred to by coroutine frames for as long as the client lives, however the client itself is moved.
#include <berth/engine/error.hpp>
#include <berth/engine/json.hpp>
#include <berth/http/exchange.hpp>
#include <berth/transport/socket_transport.hpp>
#include <berth/with_timeout.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace berth {

namespace json = boost::json;
using verb = boost::beast::http::verb;

enum class engine_kind { docker, podman };

struct engine_version {
    std::string version{};       // the engine's own version ("20.10.24+dfsg1", "4.3.1")
    std::string api_version{};   // the newest API version the engine speaks
    std::string min_api_version{};
    std::string os, arch, kernel_version{};
    engine_kind kind = engine_kind::docker;
    json::object raw{};
};

struct client_options {
    // API versions above this are never used, whatever the engine offers: berth is written against v1.41.
    std::string max_api_version = "1.41";
    std::size_t max_idle_connections = 16;
    // Time limit for each ordinary (non-streaming) request; zero means none. Streams (build output, archives,
    // exec output, logs) take theirs from the caller, through with_timeout or a cancellation slot.
    std::chrono::steady_clock::duration request_timeout{};
    http::exchange_options http;
};

template <transport Transport> class containers_api;
template <transport Transport> class images_api;
template <transport Transport> class exec_api;
template <transport Transport> class archive_api;
template <transport Transport> class system_api;

namespace detail {
// "1.41" < "1.9" must compare numerically.
inline bool api_version_less(std::string_view a, std::string_view b) {
    auto split = [](std::string_view v) {
        auto dot = v.find('.');
        auto num = [](std::string_view s) {
            int n = 0;
            for (char c : s) {
                if (c < '0' || c > '9') break;
                n = n * 10 + (c - '0');
            }
            return n;
        };
        return std::pair{num(v.substr(0, dot)), dot == std::string_view::npos ? 0 : num(v.substr(dot + 1))};
    };
    return split(a) < split(b);
}
} // namespace detail

template <transport Transport>
class client_core {
public:
    using transport_type = Transport;
    using response_type = http::response<Transport>;

    client_core(Transport transport, client_options options)
        : options_(std::move(options)),
          pool_(std::make_shared<http::connection_pool<Transport>>(std::move(transport), options_.max_idle_connections)),
          state_(std::make_shared<negotiated_state>()), containers_(*this), images_(*this), execs_(*this),
          archives_(*this), system_(*this) {}
    client_core(const client_core&) = delete;
    client_core& operator=(const client_core&) = delete;

    boost::asio::any_io_executor get_executor() { return pool_->transport().get_executor(); }
    Transport& transport() { return pool_->transport(); }
    const client_options& options() const { return options_; }

    containers_api<Transport>& containers() { return containers_; }
    images_api<Transport>& images() { return images_; }
    exec_api<Transport>& execs() { return execs_; }
    archive_api<Transport>& archives() { return archives_; }
    system_api<Transport>& system() { return system_; }

    // The engine's /version, fetched once and kept (it decides the API version and the engine kind).
    boost::asio::awaitable<engine_version> version() {
        {
            std::lock_guard lock(state_->mutex);
            if (state_->version) co_return *state_->version;
        }
        // Concurrent first callers may each ask; the answers are the same, and the first one stored wins.
        http::request req{.method = verb::get, .target = "/version"};
        auto body = co_await send_collect(std::move(req));
        const std::string endpoint = "GET /version";
        auto value = json_read::parse(body, endpoint);
        auto& o = json_read::as_object(value, endpoint);
        engine_version v;
        v.version = json_read::optional_string(o, "Version", endpoint);
        v.api_version = json_read::string_field(o, "ApiVersion", endpoint);
        v.min_api_version = json_read::optional_string(o, "MinAPIVersion", endpoint);
        v.os = json_read::optional_string(o, "Os", endpoint);
        v.arch = json_read::optional_string(o, "Arch", endpoint);
        v.kernel_version = json_read::optional_string(o, "KernelVersion", endpoint);
        v.kind = engine_kind::docker;
        if (auto* c = o.if_contains("Components"); c && c->is_array())
            for (auto& comp : c->get_array())
                if (comp.is_object())
                    if (auto* name = comp.get_object().if_contains("Name");
                        name && name->is_string() && std::string_view(name->get_string()).find("Podman") !=
                                                         std::string_view::npos)
                        v.kind = engine_kind::podman;
        v.raw = o;
        std::lock_guard lock(state_->mutex);
        if (!state_->version) state_->version = std::move(v);
        co_return *state_->version;
    }

    // The API version requests are sent with: the engine's, capped at options().max_api_version.
    boost::asio::awaitable<std::string> api_version() {
        auto v = co_await version();
        co_return detail::api_version_less(v.api_version, options_.max_api_version) ? v.api_version
                                                                                     : options_.max_api_version;
    }

    boost::asio::awaitable<engine_kind> kind() {
        auto v = co_await version();
        co_return v.kind;
    }

    // --- the layer the resource APIs are written on ---

    // Opens an exchange on the versioned path ("/containers/json" -> "/v1.41/containers/json"); the reply's body
    // is left to the caller. A non-2xx reply throws its engine_error here (its body holds the message).
    template <class Source = http::detail::no_body>
    boost::asio::awaitable<response_type> open(http::request req, Source* source = nullptr) {
        req.target = "/v" + (co_await api_version()) + req.target;
        auto r = co_await http::exchange(pool_, std::move(req), options_.http, source);
        if (r.status() >= 300) co_await throw_reply_error(r);
        co_return r;
    }

    // An ordinary request: the whole reply body as text, after the status check; honours request_timeout.
    boost::asio::awaitable<std::string> call(verb method, std::string target, std::string json_body = {}) {
        http::request req{.method = method, .target = std::move(target)};
        if (!json_body.empty()) {
            req.body = std::move(json_body);
            req.content_type = "application/json";
        }
        auto op = open_and_read(std::move(req));
        if (options_.request_timeout.count() > 0) co_return co_await with_timeout(std::move(op), options_.request_timeout);
        co_return co_await std::move(op);
    }

    // call() whose reply must be JSON.
    boost::asio::awaitable<json::value> call_json(verb method, std::string target, std::string json_body = {}) {
        std::string endpoint = std::string(boost::beast::http::to_string(method)) + " " + target;
        auto body = co_await call(method, std::move(target), std::move(json_body));
        co_return json_read::parse(body, endpoint);
    }

    // Connections open right now (idle and in use): for leak checks.
    std::size_t open_connections() const { return pool_->open_connections(); }
    std::size_t idle_connections() const { return pool_->idle_connections(); }
    void close_idle_connections() { pool_->close_idle(); }

    // Reads the error reply's body and throws the matching engine_error with the engine's own message.
    static boost::asio::awaitable<void> throw_reply_error(response_type& r) {
        std::string body{};
        try {
            body = co_await r.read_all(std::size_t{1} << 20);
        } catch (const boost::system::system_error&) {
            // the status alone still says what happened
        }
        throw_engine_error(r.status(), error_message(body, r.status()), r.endpoint());
    }

    // The engine's {"message": "..."} when there is one, else the body text (trimmed), else the status.
    static std::string error_message(std::string_view body, unsigned status) {
        boost::system::error_code ec;
        auto v = json::parse(body, ec);
        if (!ec && v.is_object())
            if (auto* m = v.get_object().if_contains("message"); m && m->is_string()) return std::string(m->get_string());
        while (!body.empty() && (body.back() == '\n' || body.back() == '\r' || body.back() == ' ')) body.remove_suffix(1);
        if (!body.empty()) return std::string(body.substr(0, 4096));
        return "HTTP status " + std::to_string(status);
    }

private:
    boost::asio::awaitable<std::string> open_and_read(http::request req) {
        auto reply = co_await open(std::move(req));
        co_return co_await reply.read_all();
    }

    struct negotiated_state {
        std::mutex mutex{};
        std::optional<engine_version> version{};
    };

    // An unversioned request (/version, /_ping) with the whole body read.
    boost::asio::awaitable<std::string> send_collect(http::request req) {
        auto r = co_await http::exchange(pool_, std::move(req), options_.http);
        if (r.status() >= 300) co_await throw_reply_error(r);
        co_return co_await r.read_all();
    }

    client_options options_;
    std::shared_ptr<http::connection_pool<Transport>> pool_{};
    std::shared_ptr<negotiated_state> state_{};
    containers_api<Transport> containers_;
    images_api<Transport> images_;
    exec_api<Transport> execs_;
    archive_api<Transport> archives_;
    system_api<Transport> system_;

    friend class system_api<Transport>;
};

} // namespace berth
