#pragma once
// The default Transport: a stream socket to a unix-socket or TCP engine address, chosen at run time. Asio's generic
// stream protocol carries both, so one client type serves DOCKER_HOST=unix://... and tcp://... alike.
#include <berth/transport/docker_host.hpp>
#include <berth/transport/transport.hpp>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

namespace berth {

class socket_transport {
public:
    using stream_type = boost::asio::generic::stream_protocol::socket;

    socket_transport(boost::asio::any_io_executor ex, host_address address)
        : executor_(std::move(ex)), address_(std::move(address)) {}

    boost::asio::any_io_executor get_executor() const { return executor_; }
    const host_address& address() const { return address_; }
    std::string describe() const { return address_.to_string(); }

    boost::asio::awaitable<stream_type> connect() {
        namespace asio = boost::asio;
        stream_type socket(executor_);
        if (address_.scheme == host_address::kind::unix_socket) {
            asio::local::stream_protocol::endpoint ep(address_.path);
            co_await socket.async_connect(asio::generic::stream_protocol::endpoint(ep), asio::use_awaitable);
            co_return socket;
        }
        asio::ip::tcp::resolver resolver(executor_);
        auto results = co_await resolver.async_resolve(address_.host, std::to_string(address_.port),
                                                       asio::use_awaitable);
        boost::system::error_code last = asio::error::host_not_found;
        for (const auto& r : results) {
            boost::system::error_code ec;
            if (socket.is_open()) socket.close(ec);
            co_await socket.async_connect(asio::generic::stream_protocol::endpoint(r.endpoint()),
                                          asio::redirect_error(asio::use_awaitable, ec));
            if (!ec) {
                socket.set_option(asio::ip::tcp::no_delay(true), ec);  // request/response: no Nagle delay
                co_return socket;
            }
            last = ec;
        }
        throw boost::system::system_error(last, "connect to " + describe());
    }

private:
    boost::asio::any_io_executor executor_;
    host_address address_;
};

static_assert(transport<socket_transport>);

} // namespace berth
