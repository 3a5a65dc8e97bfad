#pragma once
// kube_client_core<Transport>: what the Kubernetes resource APIs are written on. It owns the transport and the
// keep-alive pool, adds the bearer token and the server's path prefix to every request, gives each ordinary
// request its time limit and its reply a size bound, and turns a non-2xx reply's Status object (kind, code,
// reason, message, details) into a kubernetes_error. It lives at a fixed address (basic_kube_client holds it on
// the heap), so resource APIs and streams in flight keep working however the client is moved.
#include <berth/detail/outside_text.hpp>
#include <berth/engine/json.hpp>
#include <berth/http/exchange.hpp>
#include <berth/kubernetes/error.hpp>
#include <berth/kubernetes/kubeconfig.hpp>
#include <berth/with_timeout.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace berth::kubernetes {

namespace json = boost::json;
using verb = boost::beast::http::verb;

struct kube_client_options {
    // Time limit of each connect; zero means none.
    std::chrono::steady_clock::duration connect_timeout = std::chrono::seconds(30);
    // Time limit of each ordinary request (head and whole body); zero means none. A watch has its own idle limit,
    // followed logs none unless given (the caller asked to wait).
    std::chrono::steady_clock::duration request_timeout = std::chrono::seconds(60);
    std::size_t max_idle_connections = 8;
    // The largest body of an ordinary reply (a page of a list included): past it, a protocol_error (oversized)
    // and the connection is dropped, never the whole read into memory. A list's pages are bounded by their limit.
    std::size_t max_reply_bytes = std::size_t{32} << 20;
    std::string user_agent = "berth/0.1";
};

template <transport Transport>
class pods_api;

template <transport Transport>
class kube_client_core {
public:
    using transport_type = Transport;
    using response_type = http::response<Transport>;

    kube_client_core(Transport transport, kube_connection connection, kube_client_options options)
        : connection_(std::move(connection)), options_(std::move(options)),
          pool_(std::make_shared<http::connection_pool<Transport>>(std::move(transport), options_.max_idle_connections,
                                                                   options_.connect_timeout)),
          pods_(*this) {
        http_.host = host_header(connection_.address);
        http_.user_agent = options_.user_agent;
        check_namespace(connection_.namespace_name);
    }
    kube_client_core(const kube_client_core&) = delete;
    kube_client_core& operator=(const kube_client_core&) = delete;

    Transport& transport() { return pool_->transport(); }
    boost::asio::any_io_executor get_executor() { return pool_->transport().get_executor(); }
    const kube_connection& connection() const { return connection_; }
    const kube_client_options& options() const { return options_; }
    const http::exchange_options& http_options() const { return http_; }
    const std::string& namespace_name() const { return connection_.namespace_name; }
    pods_api<Transport>& pods() { return pods_; }

    // The headers every request carries for authentication ("Authorization: Bearer ..." with a token; none with a
    // client certificate, which the TLS transport presents): for streams opened outside this core (exec's
    // WebSocket). secrets() are the values no error message may show.
    std::vector<std::pair<std::string, std::string>> auth_headers() const {
        if (connection_.token.empty()) return {};
        return {{"Authorization", "Bearer " + connection_.token}};
    }
    std::vector<std::string> secrets() const {
        if (connection_.token.empty()) return {};
        return {connection_.token};
    }
    // An API path ("/api/v1/...") as sent: behind the server URL's path prefix.
    std::string target(std::string_view api_path) const { return connection_.path_prefix + std::string(api_path); }

    // Sends the request (its target an API path) and reads the reply head; a non-2xx reply throws its
    // kubernetes_error here. The head must come within head_timeout (zero: no limit; default the request_timeout).
    boost::asio::awaitable<response_type> open(http::request req,
                                               std::optional<std::chrono::steady_clock::duration> head_timeout = {}) {
        req.target = target(req.target);
        req.head_timeout = head_timeout.value_or(options_.request_timeout);
        for (auto& h : auth_headers()) req.headers.push_back(h);
        for (auto& s : secrets()) req.secrets.push_back(s);
        auto secret_copy = req.secrets;
        auto r = co_await http::exchange(pool_, std::move(req), http_);
        if (r.status() >= 300) co_await throw_reply_error(r, secret_copy);
        co_return r;
    }

    // An ordinary request whose reply is JSON: within the request_timeout, the body bounded by max_reply_bytes.
    // Two overloads, not a defaulted body: g++ 12 destroys a defaulted string argument twice inside a co_await.
    boost::asio::awaitable<json::value> call_json(verb method, std::string api_path) {
        co_return co_await call_json(method, std::move(api_path), std::string());
    }
    boost::asio::awaitable<json::value> call_json(verb method, std::string api_path, std::string json_body) {
        http::request req{.method = method, .target = std::move(api_path)};
        if (!json_body.empty()) {
            req.body = std::move(json_body);
            req.content_type = "application/json";
        }
        req.headers.emplace_back("Accept", "application/json");
        std::string endpoint = std::string(boost::beast::http::to_string(method)) + " " + target(req.target);
        std::string body;
        if (options_.request_timeout.count() <= 0) {
            body = co_await open_and_read(std::move(req));
        } else {
            std::string what = transport().describe() + ": " + endpoint + ": no complete reply within " +
                               describe_duration(options_.request_timeout);
            body = co_await with_timeout(open_and_read(std::move(req)), options_.request_timeout, std::move(what));
        }
        co_return json_read::parse(body, endpoint,
                                   connection_.token.empty() ? json_read::quoting::excerpt : json_read::quoting::none);
    }

    // Reads an error reply (its first error_body_limit bytes) and throws its kubernetes_error.
    static boost::asio::awaitable<void> throw_reply_error(response_type& r, std::span<const std::string> secrets = {}) {
        std::string body{};
        try {
            body = co_await r.read_prefix(error_body_limit);
        } catch (const boost::system::system_error&) {
            // a cut connection or a malformed body: the status alone still says what happened
        }
        throw error_from_reply(r.status(), body, r.endpoint(), secrets);
    }

    static constexpr std::size_t error_body_limit = std::size_t{1} << 20;
    static constexpr std::size_t max_status_values = 10000;  // a Status has a few; its causes some more

    // The kubernetes_error of a Status object (or of a body that is not one: its text, bounded).
    static kubernetes_error error_from_reply(unsigned status, std::string_view body, std::string endpoint,
                                             std::span<const std::string> secrets = {}) {
        boost::system::error_code ec;
        json::value v;
        if (json_read::count_values(body) <= max_status_values) v = json::parse(body, ec);
        std::string reason, message;
        json::object details;
        if (!ec && v.is_object()) {
            auto& o = v.get_object();
            auto text = [&](const char* key) {
                auto* p = o.if_contains(key);
                return p && p->is_string() ? std::string(p->get_string()) : std::string();
            };
            reason = text("reason");
            message = text("message");
            if (auto* d = o.if_contains("details"); d && d->is_object()) details = d->get_object();
        }
        message = berth::detail::reply_error_message(std::move(message), body, status, secrets);
        reason = berth::detail::bounded_outside_text(reason, 64);
        const auto code = kubernetes_errc_from(status, reason);  // before `reason` is moved into the error
        return kubernetes_error(code, status, std::move(reason), std::move(message), std::move(endpoint),
                                std::move(details));
    }

    std::size_t open_connections() const { return pool_->open_connections(); }
    std::size_t idle_connections() const { return pool_->idle_connections(); }
    void close_idle_connections() { pool_->close_idle(); }

    // A namespace the caller gave (or the kubeconfig's), before it goes into a path.
    static void check_namespace(std::string_view ns) {
        detail::check_name_argument(ns, detail::name_shape::label, "namespace");
    }

private:
    static std::string host_header(const host_address& a) {
        const bool ipv6 = a.host.find(':') != std::string::npos;
        return (ipv6 ? "[" + a.host + "]" : a.host) + (a.port ? ":" + std::to_string(a.port) : std::string());
    }

    boost::asio::awaitable<std::string> open_and_read(http::request req) {
        auto reply = co_await open(std::move(req), std::chrono::steady_clock::duration::zero());
        co_return co_await reply.read_all(options_.max_reply_bytes);
    }

    kube_connection connection_;
    kube_client_options options_;
    http::exchange_options http_{};
    std::shared_ptr<http::connection_pool<Transport>> pool_{};
    pods_api<Transport> pods_;
};

}  // namespace berth::kubernetes
