#pragma once
// The default Transport, chosen at run time from an engine address: a unix socket, TCP, TCP with TLS, or an ssh
// child process. The unix socket and plain TCP are a bare socket (no indirection on the hot path); TLS and ssh go
// through connection_stream's layered interface. One type for all, so `berth::client` follows DOCKER_HOST or a
// Docker context wherever it points, as the docker CLI does.
#include <berth/detail/outside_text.hpp>
#include <berth/error.hpp>
#include <berth/transport/connection_stream.hpp>
#include <berth/transport/docker_host.hpp>
#include <berth/transport/endpoint.hpp>
#include <berth/transport/error.hpp>
#include <berth/transport/ping_probe.hpp>
#include <berth/transport/ssh.hpp>
#include <berth/transport/transport.hpp>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <vector>

namespace berth {

class socket_transport {
public:
    using stream_type = connection_stream;

    socket_transport(boost::asio::any_io_executor ex, host_address address)
        : socket_transport(std::move(ex), engine_endpoint{.address = std::move(address)}) {}

    // Throws tls_error when the endpoint wants TLS and the program was built without <berth/transport/tls.hpp>
    // (not_available), or when its CA, certificate or key cannot be loaded (bad_material).
    socket_transport(boost::asio::any_io_executor ex, engine_endpoint endpoint)
        : executor_(std::move(ex)), endpoint_(std::move(endpoint)) {
        const auto& probe = endpoint_.probe_path;  // it goes into a request line
        if (!probe.empty() && (probe.front() != '/' || std::any_of(probe.begin(), probe.end(), [](char c) {
                                   return static_cast<unsigned char>(c) <= ' ' || c == '\x7f';
                               })))
            throw invalid_argument_error("berth: engine_endpoint probe_path " + detail::quote_outside_text(probe) +
                                         " is not an absolute path of printable characters");
        if (endpoint_.uses_tls()) {
            auto factory = detail::tls_factory().load();
            if (factory == nullptr)
                throw tls_error(tls_errc::not_available, describe(),
                                "#include <berth/transport/tls.hpp> in the program and link OpenSSL "
                                "(-lssl -lcrypto; Debian: libssl-dev)");
            tls_ = factory(endpoint_);
        }
    }

    boost::asio::any_io_executor get_executor() const { return executor_; }
    const host_address& address() const { return endpoint_.address; }
    const engine_endpoint& endpoint() const { return endpoint_; }
    std::string describe() const { return endpoint_.to_string(); }
    // A new connection costs a TLS handshake: the connection pool keeps one ready after an exec stream takes one.
    // (Not for ssh: a spare there is an idle ssh login, a process the caller did not ask for.)
    bool costly_connect() const { return tls_ != nullptr && endpoint_.address.scheme == host_address::kind::tcp; }

    boost::asio::awaitable<stream_type> connect() {
        namespace asio = boost::asio;
        const auto& a = endpoint_.address;
        if (a.scheme == host_address::kind::ssh) co_return co_await detail::ssh_connect(executor_, endpoint_);
        if (a.scheme == host_address::kind::unix_socket) {
            connection_stream::socket_type socket(executor_);
            boost::system::error_code ec;
            co_await socket.async_connect(
                asio::generic::stream_protocol::endpoint(asio::local::stream_protocol::endpoint(a.path)),
                asio::redirect_error(asio::use_awaitable, ec));
            if (ec) throw boost::system::system_error(ec, "connect to " + describe());
            co_return connection_stream(std::move(socket));
        }
        // The first TCP connection of a transport is checked with GET /_ping (probe_path): a plain client at a TLS port, or a
        // client certificate refused after a TLS 1.3 handshake, is a tls_error here and not a confusing reply later.
        const bool check = !checked_->load() && !endpoint_.probe_path.empty();
        auto stream = co_await open_tcp();
        if (!check) co_return stream;
        auto outcome = co_await detail::ping_probe(stream, endpoint_.probe_path);
        if (detail::is_https_only_reply(outcome))
            throw tls_error(tls_errc::requires_tls, describe(),
                            "the server answered '" + outcome.body.substr(0, outcome.body.find('\n')) +
                                "': set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH, or tls_options");
        if (outcome.ec && tls_) tls_->throw_if_tls_failure(outcome.ec, stream);
        if (outcome.ec == asio::error::operation_aborted)
            throw boost::system::system_error(outcome.ec, "connect to " + describe());
        checked_->store(true);
        if (!outcome.ec && outcome.reusable) co_return stream;
        co_return co_await open_tcp();  // the probe's connection cannot carry more
    }

private:
    // A TCP connection, with TLS on top when the endpoint wants it.
    boost::asio::awaitable<connection_stream> open_tcp() {
        auto socket = co_await connect_tcp();
        if (tls_) co_return co_await tls_->handshake(std::move(socket));
        co_return connection_stream(std::move(socket));
    }

    boost::asio::awaitable<connection_stream::socket_type> connect_tcp() {
        namespace asio = boost::asio;
        const auto& a = endpoint_.address;
        connection_stream::socket_type socket(executor_);
        boost::system::error_code ec;
        std::vector<asio::ip::tcp::endpoint> candidates;
        // An IP address needs no resolver (whose lookups run on a thread of their own: a hand-off per connection).
        if (auto ip = asio::ip::make_address(a.host, ec); !ec) {
            candidates.emplace_back(ip, a.port);
        } else {
            asio::ip::tcp::resolver resolver(executor_);
            auto results = co_await resolver.async_resolve(a.host, std::to_string(a.port),
                                                           asio::redirect_error(asio::use_awaitable, ec));
            if (ec) throw boost::system::system_error(ec, "connect to " + describe() + ": resolving " + a.host);
            for (const auto& r : results) candidates.push_back(r.endpoint());
        }
        boost::system::error_code last = asio::error::host_not_found;
        for (const auto& candidate : candidates) {
            if (socket.is_open()) socket.close(ec);
            co_await socket.async_connect(asio::generic::stream_protocol::endpoint(candidate),
                                          asio::redirect_error(asio::use_awaitable, ec));
            if (!ec) {
                socket.set_option(asio::ip::tcp::no_delay(true), ec);  // request/response: no Nagle delay
                co_return socket;
            }
            if (ec == asio::error::operation_aborted) break;
            last = ec;
        }
        throw boost::system::system_error(ec == asio::error::operation_aborted ? ec : last, "connect to " + describe());
    }

    boost::asio::any_io_executor executor_;
    engine_endpoint endpoint_;
    std::shared_ptr<detail::tls_connector> tls_{};
    std::shared_ptr<std::atomic<bool>> checked_ = std::make_shared<std::atomic<bool>>(false);
};

static_assert(transport<socket_transport>);

}  // namespace berth
