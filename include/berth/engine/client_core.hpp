#pragma once
// client_core<Transport>: what every resource API is written on. It owns the transport and the keep-alive pool,
// negotiates the API version once (from /version, within berth's range and the engine's, or pinned), gives each
// request its default time limit, knows which engine it talks to
// (Docker or Podman, from /version, never guessed), and turns every non-2xx reply into a typed engine_error.
// It lives at a fixed address (basic_client holds it on the heap), so the resource API objects it owns can be
// referred to by coroutine frames for as long as the client lives, however the client itself is moved.
#include <berth/detail/outside_text.hpp>
#include <berth/engine/error.hpp>
#include <berth/engine/json.hpp>
#include <berth/engine/usage_feeds.hpp>
#include <berth/http/exchange.hpp>
#include <berth/http/hijack.hpp>
#include <berth/transport/socket_transport.hpp>
#include <berth/with_timeout.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace berth {

namespace json = boost::json;
using verb = boost::beast::http::verb;

enum class engine_kind { docker, podman };

struct engine_version {
    std::string version{};      // the engine's own version ("20.10.24+dfsg1", "4.3.1")
    std::string api_version{};  // the newest API version the engine speaks
    std::string min_api_version{};
    std::string os, arch, kernel_version{};
    engine_kind kind = engine_kind::docker;
    json::object raw{};
};

// The Engine API versions berth speaks: every request body and reply it uses is written for each version in this
// range (see docs/engine-api.md, "Supported engines").
inline constexpr std::string_view oldest_api_version = "1.40";
inline constexpr std::string_view newest_api_version = "1.56";

struct client_options {
    // Empty: the newest Engine API version both berth and the engine speak (from /version). "1.44": exactly this
    // one (it must lie within berth's range and the engine's); invalid_argument_error when it is not a version.
    std::string api_version{};
    std::size_t max_idle_connections = 16;
    // Time limit of each connect to the engine; zero means none.
    std::chrono::steady_clock::duration connect_timeout = std::chrono::seconds(30);
    // Time limit of each ordinary request (head and body of a reply that is not a stream), and of the wait for the
    // head of a stream's reply (exec start, archives, build after its upload); zero means none. Generous on
    // purpose: removing a large container or image takes a while. A container stop gets its grace period on top;
    // a wait and followed logs have no default limit (the caller asked to wait): give them one with with_timeout
    // or a cancellation slot, as any stream's own (idle) limit.
    std::chrono::steady_clock::duration request_timeout = std::chrono::minutes(5);
    http::exchange_options http;
};

// How long one ordinary request may take: the client's request_timeout, more, or no limit.
struct time_limit {
    std::chrono::steady_clock::duration extra{};  // added to the request_timeout (a stop's grace period)
    bool unlimited = false;                       // the caller asked to wait (a container wait)
};

template <transport Transport>
class containers_api;
template <transport Transport>
class images_api;
template <transport Transport>
class exec_api;
template <transport Transport>
class archive_api;
template <transport Transport>
class system_api;
template <transport Transport>
class swarm_api;
template <transport Transport>
class volumes_api;
template <transport Transport>
class networks_api;
template <transport Transport>
class secrets_api;
template <transport Transport>
class configs_api;
template <transport Transport>
class plugins_api;
template <transport Transport>
class distribution_api;
template <transport Transport>
class raw_requests;

namespace detail {
// "digits.digits" (each at most 4 digits) as numbers, so that "1.41" < "1.9" compares right; nullopt for anything
// else. An engine's version string goes into every request line, so nothing else may pass.
inline std::optional<std::pair<int, int>> parse_api_version(std::string_view v) {
    auto number = [](std::string_view digits) -> std::optional<int> {
        if (digits.empty() || digits.size() > 4) return std::nullopt;
        int n = 0;
        for (char c : digits) {
            if (c < '0' || c > '9') return std::nullopt;
            n = n * 10 + (c - '0');
        }
        return n;
    };
    auto dot = v.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    auto major = number(v.substr(0, dot)), minor = number(v.substr(dot + 1));
    if (!major || !minor) return std::nullopt;
    return std::pair{*major, *minor};
}

// For versions already checked by parse_api_version.
inline bool api_version_less(std::string_view a, std::string_view b) {
    return parse_api_version(a).value_or(std::pair{0, 0}) < parse_api_version(b).value_or(std::pair{0, 0});
}

// An engine's text quoted in an error message: bounded, control characters shown as '?' (the shared
// quote_outside_text with a short bound: what is quoted here is a version, an id or a digest).
inline std::string quote_engine_text(std::string_view text) { return quote_outside_text(text, 40); }

// The API version to speak with an engine whose /version gave engine_api (ApiVersion) and engine_min
// (MinAPIVersion, empty when it gave none), given the caller's pinned version (empty: none).
// A version field that is not digits.digits is a protocol_error; no version in common is an
// unsupported_api_version_error, before anything else is sent.
inline std::string negotiate_api_version(std::string_view engine_api, std::string_view engine_min,
                                         std::string_view pinned) {
    const std::string endpoint = "GET /version";
    if (!parse_api_version(engine_api))
        throw protocol_error(endpoint, "the engine's ApiVersion " + quote_engine_text(engine_api) +
                                           " is not an API version (digits.digits)");
    if (!engine_min.empty() && !parse_api_version(engine_min))
        throw protocol_error(endpoint, "the engine's MinAPIVersion " + quote_engine_text(engine_min) +
                                           " is not an API version (digits.digits)");
    const std::string engine_range = "the engine speaks API " +
                                     (engine_min.empty() ? std::string() : std::string(engine_min) + " to ") +
                                     std::string(engine_api);
    std::string chosen;
    if (!pinned.empty()) {
        if (api_version_less(engine_api, pinned))
            throw unsupported_api_version_error(
                0, "the pinned API version " + std::string(pinned) + " is newer than the engine's: " + engine_range,
                endpoint);
        chosen = pinned;
    } else {
        chosen = api_version_less(engine_api, newest_api_version) ? std::string(engine_api)
                                                                  : std::string(newest_api_version);
        if (api_version_less(chosen, oldest_api_version))
            throw unsupported_api_version_error(
                0, engine_range + ", berth needs at least " + std::string(oldest_api_version), endpoint);
    }
    if (!engine_min.empty() && api_version_less(chosen, engine_min))
        throw unsupported_api_version_error(0,
                                            engine_range + ", berth speaks " + std::string(oldest_api_version) +
                                                " to " + std::string(newest_api_version) +
                                                (pinned.empty() ? std::string() : ", pinned to " + std::string(pinned)),
                                            endpoint);
    return chosen;
}

// A pinned version must be one berth speaks.
inline void check_pinned_api_version(std::string_view pinned) {
    if (pinned.empty()) return;
    if (!parse_api_version(pinned) || api_version_less(pinned, oldest_api_version) ||
        api_version_less(newest_api_version, pinned))
        throw invalid_argument_error("berth: client_options.api_version " + quote_engine_text(pinned) +
                                     " is not an API version berth speaks (" + std::string(oldest_api_version) +
                                     " to " + std::string(newest_api_version) + ")");
}
}  // namespace detail

template <transport Transport>
class client_core {
public:
    using transport_type = Transport;
    using response_type = http::response<Transport>;

    client_core(Transport transport, client_options options)
        : options_(checked(std::move(options))),
          pool_(std::make_shared<http::connection_pool<Transport>>(std::move(transport), options_.max_idle_connections,
                                                                   options_.connect_timeout)),
          state_(std::make_shared<negotiated_state>()), containers_(*this), images_(*this), execs_(*this),
          archives_(*this), system_(*this), swarm_(*this), volumes_(*this), networks_(*this), secrets_(*this),
          configs_(*this), plugins_(*this), distribution_(*this), raw_(*this) {}
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
    swarm_api<Transport>& swarm() { return swarm_; }
    volumes_api<Transport>& volumes() { return volumes_; }
    networks_api<Transport>& networks() { return networks_; }
    secrets_api<Transport>& secrets() { return secrets_; }
    configs_api<Transport>& configs() { return configs_; }
    plugins_api<Transport>& plugins() { return plugins_; }
    distribution_api<Transport>& distribution() { return distribution_; }
    raw_requests<Transport>& raw() { return raw_; }

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
                        name && name->is_string() &&
                        std::string_view(name->get_string()).find("Podman") != std::string_view::npos)
                        v.kind = engine_kind::podman;
        v.raw = o;
        std::lock_guard lock(state_->mutex);
        if (!state_->version) state_->version = std::move(v);
        co_return *state_->version;
    }

    // The API version requests are sent with: the pinned one, else the newest both berth and the engine speak.
    // Throws unsupported_api_version_error when they share none (see detail::negotiate_api_version).
    boost::asio::awaitable<std::string> api_version() {
        auto v = co_await version();
        co_return detail::negotiate_api_version(v.api_version, v.min_api_version, options_.api_version);
    }

    // True when the negotiated API version is `version` or newer.
    boost::asio::awaitable<bool> api_at_least(std::string_view version) {
        auto current = co_await api_version();
        co_return !detail::api_version_less(current, version);
    }

    // Refuses a feature the negotiated API version lacks (unsupported_api_version_error naming the endpoint).
    boost::asio::awaitable<void> require_api(std::string_view version, std::string feature, std::string endpoint) {
        auto current = co_await api_version();
        if (detail::api_version_less(current, version))
            throw unsupported_api_version_error(0,
                                                feature + " needs Engine API " + std::string(version) +
                                                    ", and this engine is spoken to at " + current,
                                                std::move(endpoint));
    }

    boost::asio::awaitable<engine_kind> kind() {
        auto v = co_await version();
        co_return v.kind;
    }

    // --- the layer the resource APIs are written on ---

    // Opens an exchange on the versioned path ("/containers/json" -> "/v1.41/containers/json"); the reply's body
    // is left to the caller. A non-2xx reply throws its engine_error here (its body holds the message).
    // The reply head must come within the request_timeout after the request (and its streamed body) went out,
    // unless the request says otherwise (head_timeout, with a zero duration for none).
    template <class Source = http::detail::no_body>
    boost::asio::awaitable<response_type> open(http::request req, Source* source = nullptr,
                                               std::optional<std::chrono::steady_clock::duration> head_timeout = {}) {
        req.target = "/v" + (co_await api_version()) + req.target;
        req.head_timeout = head_timeout.value_or(options_.request_timeout);
        auto secrets = req.secrets;
        auto r = co_await http::exchange(pool_, std::move(req), options_.http, source);
        if (r.status() >= 300) co_await throw_reply_error(r, secrets);
        co_return r;
    }

    // A stream hijacked from its HTTP exchange (after a 101), with the names its errors give.
    struct hijacked_stream {
        std::unique_ptr<typename http::connection_pool<Transport>::connection> connection;
        std::string endpoint, address;
    };

    // Sends an upgrade request (exec start, attach) and takes its connection (hijacked_from).
    boost::asio::awaitable<hijacked_stream> open_hijacked(http::request req, std::string_view what) {
        req.upgrade = true;
        auto reply = co_await open(std::move(req));
        co_return hijacked_from(reply, what);
    }

    // The connection of an upgrade's reply. Docker and Podman both switch protocols when asked to; any other
    // success would leave berth reading a connection that carries no stream (a 200 with Content-Length: 0 would be
    // waited on forever). `what` names the stream in that error.
    static hijacked_stream hijacked_from(response_type& reply, std::string_view what) {
        if (reply.status() != 101)
            throw protocol_error(reply.endpoint(), "the engine answered " + std::to_string(reply.status()) +
                                                       " instead of switching protocols (101) for " +
                                                       std::string(what));
        std::string endpoint = reply.endpoint(), address = reply.address();
        return hijacked_stream{reply.take_connection(), std::move(endpoint), std::move(address)};
    }

    // The exchange as given: `req.target` is sent as it is (no version prefix), the reply returned whatever its
    // status. For raw requests (engine/raw.hpp), which check the caller's request and decide about the status.
    template <class Source = http::detail::no_body>
    boost::asio::awaitable<response_type> exchange_as_given(http::request req, Source* source = nullptr) {
        co_return co_await http::exchange(pool_, std::move(req), options_.http, source);
    }

    // A websocket to the versioned `target` (GET, Upgrade: websocket) on a connection of its own; a refusal is
    // the engine_error of its status (404: not_found_error), with the engine's message.
    boost::asio::awaitable<
        std::unique_ptr<http::websocket_connection<typename http::connection_pool<Transport>::connection>>>
    open_websocket(std::string target) {
        target = "/v" + (co_await api_version()) + target;
        auto opening = co_await http::open_websocket(pool_, target, options_.http);
        if (!opening.socket)
            throw_engine_error(opening.status, error_message(opening.body, opening.status), "GET " + target);
        co_return std::move(opening.socket);
    }

    // An ordinary request: the whole reply body as text, after the status check; within the request_timeout
    // (a system_error timed_out naming the engine and the request).
    boost::asio::awaitable<std::string> call(verb method, std::string target, std::string json_body = {},
                                             time_limit limit = {}) {
        http::request req{.method = method, .target = std::move(target)};
        if (!json_body.empty()) {
            req.body = std::move(json_body);
            req.content_type = "application/json";
        }
        co_return co_await call(std::move(req), limit);
    }

    // call() with a request made by the caller (with headers, or secrets to keep out of error messages).
    boost::asio::awaitable<std::string> call(http::request req, time_limit limit = {}) {
        const verb method = req.method;
        if (limit.unlimited || options_.request_timeout.count() <= 0) co_return co_await open_and_read(std::move(req));
        std::string endpoint = std::string(boost::beast::http::to_string(method)) + " /v" + (co_await api_version()) +
                               req.target;
        co_return co_await within(open_and_read(std::move(req)), options_.request_timeout + limit.extra, endpoint);
    }

    // call() whose reply must be JSON.
    boost::asio::awaitable<json::value> call_json(verb method, std::string target, std::string json_body = {},
                                                  time_limit limit = {}) {
        std::string endpoint = std::string(boost::beast::http::to_string(method)) + " " + target;
        auto body = co_await call(method, std::move(target), std::move(json_body), limit);
        co_return json_read::parse(body, endpoint);
    }

    // Connections open right now (idle and in use): for leak checks.
    std::size_t open_connections() const { return pool_->open_connections(); }
    std::size_t idle_connections() const { return pool_->idle_connections(); }
    void close_idle_connections() { pool_->close_idle(); }

    // The containers' stats streams open for exec's figures (eval/usage_monitor.hpp), stopped with the client.
    detail::usage_feeds& usage_feeds() { return usage_feeds_; }

    // Reads the error reply's body (its first error_body_limit bytes: a larger one is cut, and its connection
    // closed) and throws the matching engine_error with the engine's own message, `secrets` taken out of it.
    static boost::asio::awaitable<void> throw_reply_error(response_type& r, std::span<const std::string> secrets = {}) {
        std::string body{};
        try {
            body = co_await r.read_prefix(error_body_limit);
        } catch (const boost::system::system_error&) {
            // a cut connection or a malformed body (a protocol_error): the status alone still says what happened
        }
        throw_engine_error(r.status(), error_message(body, r.status(), secrets), r.endpoint());
    }

    static constexpr std::size_t error_body_limit = std::size_t{1} << 20;

    // The engine's {"message": "..."} when there is one, else the body text (trimmed), else the status; bounded
    // (detail::engine_message_limit), with `secrets` redacted before it is cut.
    static std::string error_message(std::string_view body, unsigned status,
                                     std::span<const std::string> secrets = {}) {
        boost::system::error_code ec;
        auto v = json::parse(body, ec);
        std::string message;
        if (!ec && v.is_object())
            if (auto* m = v.get_object().if_contains("message"); m && m->is_string())
                message = std::string(m->get_string());
        return detail::reply_error_message(std::move(message), body, status, secrets);
    }

private:
    static client_options checked(client_options options) {
        detail::check_pinned_api_version(options.api_version);
        return options;
    }

    // `operation` within `limit`: a system_error timed_out whose text names the engine and the request.
    template <class T>
    boost::asio::awaitable<T> within(boost::asio::awaitable<T> operation, std::chrono::steady_clock::duration limit,
                                     const std::string& endpoint) {
        std::string what = transport().describe() + ": " + endpoint + ": no complete reply within " +
                           describe_duration(limit);
        co_return co_await with_timeout(std::move(operation), limit, std::move(what));
    }

    // The whole request is under call()'s limit (or deliberately none): no separate one for the head.
    boost::asio::awaitable<std::string> open_and_read(http::request req) {
        auto reply = co_await open(std::move(req), static_cast<http::detail::no_body*>(nullptr),
                                   std::chrono::steady_clock::duration::zero());
        co_return co_await reply.read_all();
    }

    struct negotiated_state {
        std::mutex mutex{};
        std::optional<engine_version> version{};
    };

    // An unversioned request (/version, /_ping) with the whole body read, within the request_timeout.
    boost::asio::awaitable<std::string> send_collect(http::request req) {
        if (options_.request_timeout.count() <= 0) co_return co_await exchange_and_read(std::move(req));
        std::string endpoint = std::string(boost::beast::http::to_string(req.method)) + " " + req.target;
        co_return co_await within(exchange_and_read(std::move(req)), options_.request_timeout, endpoint);
    }
    // An unversioned request whose reply head is the answer (HEAD /_ping): the reply's headers, within the
    // request_timeout.
    boost::asio::awaitable<boost::beast::http::fields> send_for_headers(http::request req) {
        if (options_.request_timeout.count() <= 0) co_return co_await exchange_for_headers(std::move(req));
        std::string endpoint = std::string(boost::beast::http::to_string(req.method)) + " " + req.target;
        co_return co_await within(exchange_for_headers(std::move(req)), options_.request_timeout, endpoint);
    }
    boost::asio::awaitable<boost::beast::http::fields> exchange_for_headers(http::request req) {
        auto r = co_await http::exchange(pool_, std::move(req), options_.http);
        if (r.status() >= 300) co_await throw_reply_error(r);
        boost::beast::http::fields headers = r.headers();
        co_await r.read_all(4096);
        co_return headers;
    }
    boost::asio::awaitable<std::string> exchange_and_read(http::request req) {
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
    swarm_api<Transport> swarm_;
    volumes_api<Transport> volumes_;
    networks_api<Transport> networks_;
    secrets_api<Transport> secrets_;
    configs_api<Transport> configs_;
    plugins_api<Transport> plugins_;
    distribution_api<Transport> distribution_;
    raw_requests<Transport> raw_;
    detail::usage_feeds usage_feeds_{};

    friend class system_api<Transport>;
};

}  // namespace berth
