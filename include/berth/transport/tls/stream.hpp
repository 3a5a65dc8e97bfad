#pragma once
// tls_stream: a TLS session over a TCP socket, OpenSSL driving the non-blocking socket itself (part of
// <berth/transport/tls.hpp>, which links OpenSSL).
#include <berth/transport/connection_stream.hpp>
#include <berth/transport/tls/socket_bio.hpp>

#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/system/error_code.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstddef>
#include <new>
#include <optional>
#include <utility>
#include <vector>

namespace berth::detail {

// One TLS operation (handshake, read, write) as far as the socket allows, then a wait for what OpenSSL asked for.
struct tls_progress {
    std::optional<boost::asio::socket_base::wait_type> wait{};  // set: wait for this and call the step again
    boost::system::error_code ec{};
    std::size_t bytes = 0;
};

// A TLS session over a TCP socket, OpenSSL driving the socket (tls_socket_io). One read and one write may be under
// way at once, as on a socket. A cancelled write leaves a record half sent: the connection cannot be used after it
// (the pool discards a connection whose exchange failed).
class tls_stream final : public layered_stream {
    enum class phase { starting, waiting, delivering };
    // Runs `step` until it needs the socket, waits for that (the wait honours the handler's cancellation slot), and
    // completes with its result. A result at once is delivered through a post, never inside the initiating call.
    template <class Token, class Step>
    auto start(Token& token, Step step) {
        return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
            [this, step = std::move(step), state = phase::starting,
             done = tls_progress{}](auto& self, boost::system::error_code wait_ec = {}) mutable {
                if (state == phase::delivering) return self.complete(done.ec, done.bytes);
                if (state == phase::starting)
                    self.reset_cancellation_state(boost::asio::enable_total_cancellation());
                else if (wait_ec)
                    return self.complete(wait_ec, done.bytes);  // cancelled, or the socket failed
                const bool first = state == phase::starting;
                state = phase::waiting;
                done = step();
                if (done.wait) return socket_.async_wait(*done.wait, std::move(self));
                if (!first) return self.complete(done.ec, done.bytes);
                state = phase::delivering;
                boost::asio::post(socket_.get_executor(), std::move(self));
            },
            token, socket_);
    }

public:
    using socket_type = boost::asio::generic::stream_protocol::socket;

    // Throws std::bad_alloc when OpenSSL cannot allocate the session.
    tls_stream(socket_type socket, SSL_CTX* ctx) : socket_(std::move(socket)), ssl_(SSL_new(ctx)) {
        io_.fd = socket_.native_handle();
        BIO* bio = ssl_ ? tls_socket_io::make_bio(io_) : nullptr;
        if (bio == nullptr) {
            if (ssl_) SSL_free(ssl_);
            ::ERR_clear_error();
            throw std::bad_alloc();
        }
        SSL_set_bio(ssl_, bio, bio);
        SSL_set_connect_state(ssl_);
        // A write returns after each record, so a write of many records can report what it sent; the record
        // pending after a "try again" may be retried from wherever the caller's bytes now are.
        SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        // Read ahead: one recv takes in as many records as have arrived (up to read_buffer_size), not one.
        SSL_set_read_ahead(ssl_, 1);
        SSL_set_default_read_buffer_len(ssl_, read_buffer_size);
        // OpenSSL calls this only when the server sends a CertificateRequest (whether or not we have one to send).
        SSL_set_cert_cb(
            ssl_,
            [](SSL*, void* self) {
                static_cast<tls_stream*>(self)->certificate_requested_ = true;
                return 1;
            },
            this);
        boost::system::error_code ignored;
        socket_.non_blocking(true, ignored);  // OpenSSL's recv/send must never block the thread
    }
    ~tls_stream() override {
        boost::system::error_code ec;
        close(ec);
        SSL_free(ssl_);
    }
    tls_stream(const tls_stream&) = delete;
    tls_stream& operator=(const tls_stream&) = delete;

    boost::asio::any_io_executor get_executor() override { return socket_.get_executor(); }

    // Fills as much of the buffer as the records already arrived allow; waits only while there is nothing at all.
    void async_read_some(boost::asio::mutable_buffer buffer, handler_type handler) override {
        start(handler, [this, buffer, got = std::size_t{0}]() mutable { return read_step(buffer, got); });
    }

    // Writes all the buffers (up to gathered_buffers::capacity of them): a chunk's header, its data and its CRLF go
    // out together, in large sends (socket_bio.hpp), not one small write each.
    void async_write_some(gathered_buffers buffers, handler_type handler) override {
        start(handler, [this, buffers, sent = std::size_t{0}]() mutable { return write_step(buffers, sent); });
    }

    template <class Token>
    auto async_handshake(Token&& token) {
        return start(token, [this] { return handshake_step(); });
    }

    // Sends close_notify when there is room for it, without waiting for the peer's (a silent peer cannot hold up a
    // close): one SSL_shutdown on the non-blocking socket.
    void close(boost::system::error_code& ec) override {
        if (!socket_.is_open()) return;
        if (SSL_is_init_finished(ssl_) && !send_shut_) {
            SSL_shutdown(ssl_);
            ::ERR_clear_error();
        }
        socket_.close(ec);
    }

    // Half-close, as the docker CLI does on a hijacked TLS connection (its CloseWrite): close_notify (Go's TLS
    // reader, dockerd's, reads it as end-of-file), then the TCP FIN (the older CLI's CloseWrite on the raw
    // connection, which a Go reader also takes as end-of-file at a record boundary). Records keep arriving and are
    // read as before: OpenSSL reads after sending close_notify until the peer's own.
    void shutdown_send(boost::system::error_code& ec) override {
        ec = {};
        if (!socket_.is_open()) {
            ec = boost::asio::error::not_connected;
            return;
        }
        if (send_shut_) return;
        send_shut_ = true;
        if (SSL_is_init_finished(ssl_)) {
            SSL_shutdown(ssl_);  // one non-blocking try: the alert is a few bytes, a socket has room for it
            ::ERR_clear_error();
        }
        socket_.shutdown(socket_type::shutdown_send, ec);
    }

    // The TCP socket: bytes waiting there on an idle connection can only be the server's close_notify (the
    // session tickets of the handshake were read with the first reply), so readable means closed here too.
    int liveness_handle() const override { return const_cast<socket_type&>(socket_).native_handle(); }

    SSL* native_handle() { return ssl_; }
    // The handshake had the server ask for a client certificate: under TLS 1.3 it checks ours only after the
    // handshake ended, so a connection it then closes (or resets, before its alert arrives) is that refusal.
    bool server_asked_for_certificate() const { return certificate_requested_; }
    socket_type& lowest_layer() { return socket_; }

private:
    static constexpr int read_buffer_size = 128 * 1024;    // 8 records: what a 64 KiB body read needs, and more
    static constexpr std::size_t small_write = 16 * 1024;  // one record: smaller pieces are joined first


    tls_progress read_step(boost::asio::mutable_buffer buffer, std::size_t& got) {
        if (buffer.size() == 0) return {};
        if (deferred_) return {.ec = std::exchange(deferred_, {})};
        auto* data = static_cast<char*>(buffer.data());
        while (got < buffer.size()) {
            std::size_t n = 0;
            const int r = SSL_read_ex(ssl_, data + got, buffer.size() - got, &n);
            if (r == 1) {
                got += n;
                continue;
            }
            auto p = outcome(r);
            if (got == 0) return p;
            // Deliver what arrived first; an error after it is the next read's.
            if (!p.wait) deferred_ = p.ec;
            break;
        }
        return {.bytes = got};
    }

    tls_progress write_step(const gathered_buffers& buffers, std::size_t& sent) {
        for (;;) {
            const auto piece = piece_at(buffers, sent);
            if (piece.size() == 0) break;
            std::size_t n = 0;
            const int r = SSL_write_ex(ssl_, piece.data(), piece.size(), &n);
            if (r != 1) {
                auto p = outcome(r);
                p.bytes = sent;
                return p;
            }
            sent += n;
        }
        // The records are in io_.out (socket_bio.hpp): the write is done when they have all gone.
        if (!io_.flush()) {
            if (io_.error != 0)
                return {.ec = {std::exchange(io_.error, 0), boost::system::system_category()}, .bytes = sent};
            return {.wait = boost::asio::socket_base::wait_write, .bytes = sent};
        }
        return {.bytes = sent};
    }

    tls_progress handshake_step() {
        const int r = SSL_do_handshake(ssl_);
        return r == 1 ? tls_progress{} : outcome(r);
    }

    // What OpenSSL's answer `r` means: a wait, or an error in the categories Asio's SSL stream used (the ssl
    // category with OpenSSL's error code, stream_truncated for a close without close_notify, eof after one).
    tls_progress outcome(int r) {
        namespace asio = boost::asio;
        const int e = SSL_get_error(ssl_, r);
        if (e == SSL_ERROR_WANT_READ) return {.wait = asio::socket_base::wait_read};
        if (e == SSL_ERROR_WANT_WRITE) return {.wait = asio::socket_base::wait_write};
        if (e == SSL_ERROR_ZERO_RETURN) return {.ec = asio::error::eof};
        const unsigned long code = ::ERR_get_error();
        ::ERR_clear_error();
        if (e == SSL_ERROR_SSL && code != 0 && ERR_GET_REASON(code) != SSL_R_UNEXPECTED_EOF_WHILE_READING)
            return {.ec = {static_cast<int>(code), asio::error::get_ssl_category()}};
        if (io_.error != 0) return {.ec = {std::exchange(io_.error, 0), boost::system::system_category()}};
        if (io_.eof || e == SSL_ERROR_SSL) return {.ec = asio::ssl::error::stream_truncated};
        return {.ec = asio::ssl::error::unspecified_system_error};
    }

    // The bytes from `offset` on that the next record takes: the rest of the current buffer when it is large (no
    // copy), else the small buffers from there joined up to one record (a chunk header and its data: one record,
    // not two). The same offset gives the same bytes, as OpenSSL needs for a write it asked to be retried.
    boost::asio::const_buffer piece_at(const gathered_buffers& buffers, std::size_t offset) {
        auto it = buffers.begin();
        for (; it != buffers.end() && offset >= it->size(); ++it) offset -= it->size();
        if (it == buffers.end()) return {};
        const auto rest = *it + offset;
        if (rest.size() >= small_write || it + 1 == buffers.end()) return rest;
        staging_.clear();
        for (auto b = rest; staging_.size() < small_write;) {
            const std::size_t take = std::min(b.size(), small_write - staging_.size());
            const auto* p = static_cast<const char*>(b.data());
            staging_.insert(staging_.end(), p, p + take);
            if (++it == buffers.end()) break;
            b = *it;
        }
        return boost::asio::buffer(staging_);
    }

    socket_type socket_;
    SSL* ssl_;
    tls_socket_io io_{};
    boost::system::error_code deferred_{};  // an error met after a read had bytes to deliver
    std::vector<char> staging_{};
    bool certificate_requested_ = false;
    bool send_shut_ = false;  // shutdown_send() done: nothing more may be written
};

}  // namespace berth::detail
