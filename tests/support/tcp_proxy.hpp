#pragma once
// A loopback TCP port relayed to an engine's unix socket: the engine reached over TCP.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <string>
#include <sys/socket.h>

namespace berth_test {

// Copies one direction of a relayed connection until either side closes, then passes the close on.
inline boost::asio::awaitable<void> proxy_relay(boost::asio::generic::stream_protocol::socket& from,
                                                boost::asio::generic::stream_protocol::socket& to) {
    namespace asio = boost::asio;
    std::array<char, 64 * 1024> buffer;
    for (;;) {
        auto [ec, n] = co_await from.async_read_some(asio::buffer(buffer), asio::as_tuple(asio::use_awaitable));
        if (n > 0) {
            auto [wec, wn] = co_await asio::async_write(to, asio::buffer(buffer.data(), n),
                                                        asio::as_tuple(asio::use_awaitable));
            (void)wn;
            if (wec) break;
        }
        if (ec) break;
    }
    boost::system::error_code ignored;
    to.shutdown(boost::asio::socket_base::shutdown_send, ignored);
}

// Relays one accepted TCP connection to the unix socket at unix_path, both ways, until both sides are done.
inline boost::asio::awaitable<void> proxy_connection(boost::asio::ip::tcp::socket tcp, std::string unix_path) {
    namespace asio = boost::asio;
    using namespace asio::experimental::awaitable_operators;
    auto ex = co_await asio::this_coro::executor;
    asio::generic::stream_protocol::socket client_side(ex, asio::generic::stream_protocol(AF_INET, IPPROTO_TCP),
                                                       tcp.release());
    asio::generic::stream_protocol::socket engine_side(ex);
    co_await engine_side.async_connect(asio::local::stream_protocol::endpoint(unix_path), asio::use_awaitable);
    co_await (proxy_relay(client_side, engine_side) && proxy_relay(engine_side, client_side));
}

// Accepts connections on `acceptor` and relays each to the unix socket at unix_path, until the acceptor is closed.
inline boost::asio::awaitable<void> tcp_proxy(boost::asio::ip::tcp::acceptor& acceptor, std::string unix_path) {
    namespace asio = boost::asio;
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        asio::co_spawn(acceptor.get_executor(), proxy_connection(std::move(socket), unix_path), asio::detached);
    }
}

}  // namespace berth_test
