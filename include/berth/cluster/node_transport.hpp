#pragma once
// cluster_node_transport<Transport>: how a cluster reaches one node's own engine. It wraps the transport that
// actually connects (TLS to tcp://127.0.0.N:2376, or a mock), names the node in every connect failure
// (node_unreachable_error: its id, hostname and address). Copies, exec and logs see an ordinary transport: they
// are the single-engine code, unchanged.
#include <berth/cluster/errors.hpp>
#include <berth/transport/transport.hpp>

#include <boost/asio/error.hpp>

namespace berth {

template <transport Transport>
class cluster_node_transport {
public:
    using stream_type = typename Transport::stream_type;

    cluster_node_transport(Transport inner, node_identity node) : inner_(std::move(inner)), node_(std::move(node)) {}

    boost::asio::any_io_executor get_executor() { return inner_.get_executor(); }
    std::string describe() const { return node_.describe(); }
    bool costly_connect() const requires requires(const Transport& t) { t.costly_connect(); }
    { return inner_.costly_connect(); }

    // A failure to connect is a node_unreachable_error naming the node; cancellation stays what it is.
    boost::asio::awaitable<stream_type> connect() {
        try {
            co_return co_await inner_.connect();
        } catch (const connection_error& e) {
            if (e.code() == boost::asio::error::operation_aborted) throw;
            throw node_unreachable_error(node_, e);
        } catch (const berth::error&) {
            throw;                                        // not a connection failure (bad input, say)
        } catch (const boost::system::system_error& e) {  // a transport's untyped connect failure
            if (e.code() == boost::asio::error::operation_aborted) throw;
            throw node_unreachable_error(node_, e);
        }
    }

    const node_identity& node() const noexcept { return node_; }
    Transport& inner() noexcept { return inner_; }

private:
    Transport inner_;
    node_identity node_;
};

}  // namespace berth
