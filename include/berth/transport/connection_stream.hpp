#pragma once
// connection_stream: the byte stream socket_transport hands out. Most connections are a plain socket (a unix socket
// or TCP), read and written directly, with no indirection; a connection that needs a layer on top (TLS, or an ssh
// child process) goes through a small virtual interface instead. One stream type for every kind of address keeps
// `berth::client` a single type chosen at run time from DOCKER_HOST or a context, as the docker CLI does.
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <cstddef>
#include <memory>
#include <optional>

namespace berth {

// Up to `capacity` buffers of a sequence, gathered for one write: a write_some may write fewer bytes than asked.
class gathered_buffers {
public:
    static constexpr std::size_t capacity = 16;
    template <class ConstBufferSequence>
    explicit gathered_buffers(const ConstBufferSequence& buffers) {
        for (auto it = boost::asio::buffer_sequence_begin(buffers), end = boost::asio::buffer_sequence_end(buffers);
             it != end && count_ < capacity; ++it)
            if (boost::asio::const_buffer b(*it); b.size() > 0) buffers_[count_++] = b;
    }
    const boost::asio::const_buffer* begin() const { return buffers_.data(); }
    const boost::asio::const_buffer* end() const { return buffers_.data() + count_; }

private:
    std::array<boost::asio::const_buffer, capacity> buffers_{};
    std::size_t count_ = 0;
};

// A stream behind an indirection: TLS over TCP, an ssh child's stdin/stdout. Completion handlers keep their
// associated executor and cancellation slot (any_completion_handler forwards them), so per-operation cancellation
// and time limits work as on a socket.
class layered_stream {
public:
    using handler_type = boost::asio::any_completion_handler<void(boost::system::error_code, std::size_t)>;
    virtual ~layered_stream() = default;
    virtual boost::asio::any_io_executor get_executor() = 0;
    virtual void async_read_some(boost::asio::mutable_buffer buffer, handler_type handler) = 0;
    virtual void async_write_some(gathered_buffers buffers, handler_type handler) = 0;
    // Ends the connection at once and never blocks on the peer (TLS: no wait for its close_notify; ssh: the child
    // is ended and reaped).
    virtual void close(boost::system::error_code& ec) = 0;
    // Ends the sending direction only (the peer reads end-of-file; replies still arrive): what a hijacked exec or
    // attach stream does once its stdin has been sent. operation_not_supported where the layer has no such thing.
    virtual void shutdown_send(boost::system::error_code& ec) { ec = boost::asio::error::operation_not_supported; }
    // A descriptor whose readability means the peer closed an idle connection, or -1 when there is none.
    virtual int liveness_handle() const { return -1; }
};

class connection_stream {
public:
    using executor_type = boost::asio::any_io_executor;
    using socket_type = boost::asio::generic::stream_protocol::socket;

    // Not connected (a placeholder: Asio's co_spawn needs a result it can default-construct).
    connection_stream() = default;
    explicit connection_stream(socket_type socket) : socket_(std::move(socket)) {}
    explicit connection_stream(std::unique_ptr<layered_stream> layered) : layered_(std::move(layered)) {}

    executor_type get_executor() { return layered_ ? layered_->get_executor() : socket_->get_executor(); }

    template <class MutableBufferSequence, class Token>
    auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
        return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
            [this](auto handler, const MutableBufferSequence& b) {
                if (!layered_) return socket_->async_read_some(b, std::move(handler));
                // One buffer per read is enough for a read_some: the first that has room.
                boost::asio::mutable_buffer first;
                for (auto it = boost::asio::buffer_sequence_begin(b), end = boost::asio::buffer_sequence_end(b);
                     it != end; ++it)
                    if (boost::asio::mutable_buffer m(*it); m.size() > 0) {
                        first = m;
                        break;
                    }
                layered_->async_read_some(first, std::move(handler));
            },
            token, buffers);
    }

    template <class ConstBufferSequence, class Token>
    auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
        return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
            [this](auto handler, const ConstBufferSequence& b) {
                if (!layered_) return socket_->async_write_some(b, std::move(handler));
                layered_->async_write_some(gathered_buffers(b), std::move(handler));
            },
            token, buffers);
    }

    void close(boost::system::error_code& ec) {
        if (layered_)
            layered_->close(ec);
        else if (socket_)
            socket_->close(ec);
    }

    // Half-close: the engine reads end-of-file, and its reply keeps coming (shutdown(SHUT_WR) on a socket; the
    // layer's equivalent on TLS and ssh).
    void shutdown_send(boost::system::error_code& ec) {
        if (layered_)
            layered_->shutdown_send(ec);
        else if (socket_)
            socket_->shutdown(socket_type::shutdown_send, ec);
        else
            ec = boost::asio::error::not_connected;
    }

    // The descriptor the connection pool peeks at to see whether the engine closed an idle connection.
    int native_handle() { return layered_ ? layered_->liveness_handle() : socket_ ? socket_->native_handle() : -1; }

    // The plain socket, or nullptr when the connection is layered (TLS, ssh).
    socket_type* socket() { return socket_ ? &*socket_ : nullptr; }
    layered_stream* layered() { return layered_.get(); }

private:
    std::optional<socket_type> socket_{};  // the connection itself, unless it is layered
    std::unique_ptr<layered_stream> layered_{};
};

}  // namespace berth
