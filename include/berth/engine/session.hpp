#pragma once
// BuildKit's interactive session (POST /session): the engine switches the connection to HTTP/2 ("Upgrade: h2c")
// and then acts as the gRPC *client* on it, calling back the services the caller named (file sync for a build
// context, registry auth, secrets, ssh forwarding). berth opens the session and hands the upgraded connection over
// as a byte stream; speaking HTTP/2 and gRPC on it is the caller's (berth carries no HTTP/2 or gRPC stack: its
// builds need no session, see docs/engine-api.md). Docker answers with the HTTP/2 client preface at once; Podman
// has no such endpoint (not_found_error).
#include <berth/detail/random_token.hpp>
#include <berth/engine/client_core.hpp>
#include <berth/error.hpp>
#include <berth/http/exchange.hpp>
#include <berth/http/hijack.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace berth {

// The X-Docker-Expose-Session-* headers of POST /session.
struct session_open_options {
    std::string id{};    // -Uuid: the session's id, which a build then names (buildid/session); empty: berth makes one
    std::string name{};  // -Name: a name the engine shows for the session
    std::string shared_key{};  // -Sharedkey: scopes what the session shares (BuildKit keys its file-sync cache by it)
    std::vector<std::string> grpc_methods{};  // -Grpc-Method, one header each: "/moby.filesync.v1.FileSync/DiffCopy"
};

namespace detail {

// A value for an X-Docker-Expose-Session-* header, or invalid_argument_error: printable ASCII only, so nothing
// can end the header early or add one.
inline void check_session_header(std::string_view what, std::string_view value) {
    for (char c : value) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f)
            throw invalid_argument_error("berth: session " + std::string(what) + " " + quote_outside_text(value, 80) +
                                         " may hold printable ASCII only (no control character)");
    }
}

}  // namespace detail

// The upgraded connection of a session, used both ways by the caller. It has no time limit of its own: a read
// waits for the engine's next bytes (bound it with berth::with_timeout or cancellation); dropping the object closes
// the connection, which ends the session on the engine.
template <transport Transport>
class session_connection {
public:
    using hijacked_stream = typename client_core<Transport>::hijacked_stream;

    session_connection() = default;  // holds no connection (a moved-from or not yet opened session)
    session_connection(std::string id, hijacked_stream stream) : id_(std::move(id)), stream_(std::move(stream)) {}

    const std::string& id() const { return id_; }
    const std::string& endpoint() const { return stream_.endpoint; }  // "POST /v1.41/session"

    // The engine's next bytes (at most 64 KiB; those that came with the 101 first); empty once the engine closed
    // its side. A transport failure is a connection_error naming the engine and the session.
    boost::asio::awaitable<std::string> read_some() {
        auto& c = *stream_.connection;
        if (c.buffer.size() > 0) {
            auto data = c.buffer.data();
            std::string out(static_cast<const char*>(data.data()), data.size());
            c.buffer.consume(c.buffer.size());
            co_return out;
        }
        std::string out(64 * 1024, '\0');
        auto [ec, n] = co_await c.stream.async_read_some(boost::asio::buffer(out.data(), out.size()),
                                                         boost::asio::as_tuple(boost::asio::use_awaitable));
        out.resize(n);
        if (ec && ec != boost::asio::error::eof)
            http::detail::throw_exchange_error(ec, stream_.address, stream_.endpoint, "reading the session");
        co_return out;
    }

    // Sends all of `bytes`.
    boost::asio::awaitable<void> write(std::string_view bytes) {
        auto [ec, n] = co_await boost::asio::async_write(stream_.connection->stream,
                                                         boost::asio::buffer(bytes.data(), bytes.size()),
                                                         boost::asio::as_tuple(boost::asio::use_awaitable));
        (void)n;
        if (ec) http::detail::throw_exchange_error(ec, stream_.address, stream_.endpoint, "writing to the session");
    }

    // Ends berth's sending side (a FIN, or TLS close_notify then FIN); the engine's side stays readable.
    void shutdown_send() { http::detail::shutdown_send(stream_.connection->stream); }

private:
    std::string id_{};
    hijacked_stream stream_{};
};

// Opens a session: POST /session with "Connection: Upgrade, Upgrade: h2c" and the options' headers. A reply
// other than 101 is the engine's error (404 on an engine without sessions) or a protocol_error. Called as
// client.system().session(options).
template <transport Transport>
boost::asio::awaitable<session_connection<Transport>> open_session(client_core<Transport>& client,
                                                                   session_open_options options) {
    if (options.id.empty()) options.id = detail::random_token();
    detail::check_session_header("id", options.id);
    detail::check_session_header("name", options.name);
    detail::check_session_header("shared key", options.shared_key);
    http::request req{.method = verb::post, .target = "/session", .upgrade = true, .upgrade_protocol = "h2c"};
    req.headers.emplace_back("X-Docker-Expose-Session-Uuid", options.id);
    if (!options.name.empty()) req.headers.emplace_back("X-Docker-Expose-Session-Name", options.name);
    if (!options.shared_key.empty()) req.headers.emplace_back("X-Docker-Expose-Session-Sharedkey", options.shared_key);
    for (auto& method : options.grpc_methods) {
        detail::check_session_header("gRPC method", method);
        if (method.empty() || method.front() != '/')
            throw invalid_argument_error("berth: session gRPC method " + detail::quote_outside_text(method, 80) +
                                         " must be a full method name (\"/package.Service/Method\")");
        req.headers.emplace_back("X-Docker-Expose-Session-Grpc-Method", method);
    }
    auto stream = co_await client.open_hijacked(std::move(req), "the session");
    co_return session_connection<Transport>(std::move(options.id), std::move(stream));
}

}  // namespace berth
