#pragma once
// TLS for tcp:// engines (the docker CLI's --tlsverify, DOCKER_TLS_VERIFY, a context's TLS material): OpenSSL on
// the TCP socket itself, driven from Asio (tls_stream), with Asio's SSL context for the material. Including this header is what turns TLS on: it registers itself with socket_transport, so a
// program that never includes it never refers to OpenSSL and need not link it (-lssl -lcrypto). Without it, a TLS
// endpoint is refused with tls_error(not_available) saying so.
//
// The server is checked the way the docker CLI checks it: its chain against the CA given (else the system's), and
// its certificate against the host name or IP address in the address (OpenSSL's own host/IP check, so a mismatch
// is reported as one). The client certificate and key are sent when given. TLS 1.2 is the oldest version spoken.
// A failed check is a tls_error saying which: unknown CA, bad certificate, host-name mismatch, client certificate
// refused by the server, or a server that does not speak TLS.
//
// Later connections of a transport resume the TLS session of an earlier one (a ticket the server sent): every exec
// opens a connection of its own (its stream hijacks it), and a full handshake costs both sides a signature with
// their certificate's key and the server a check of the client's chain. A ticket serves only the transport whose
// connection received it: the same server, checked, and the same client certificate.
#include <berth/transport/connection_stream.hpp>
#include <berth/transport/endpoint.hpp>
#include <berth/transport/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace berth::detail {

// The socket under a TLS session, as OpenSSL's BIO: OpenSSL reads and writes the (non-blocking) TCP socket itself,
// so a read decrypts as many records as have arrived straight into the caller's buffer, and a write sends records
// from the caller's. (Asio's SSL stream goes through a 17 KiB memory BIO, one record per operation, three extra
// copies of every byte.) send() with MSG_NOSIGNAL: a peer that closed must be an EPIPE, not a SIGPIPE.
struct tls_socket_io {
    int fd = -1;
    int error = 0;     // errno of the last failed send/recv that was not "try again"
    bool eof = false;  // the peer closed its side (a clean TLS close_notify comes before this)

    static BIO* make_bio(tls_socket_io& io) {
        BIO* bio = BIO_new(method());
        if (bio == nullptr) return nullptr;
        BIO_set_data(bio, &io);
        BIO_set_init(bio, 1);
        return bio;
    }

private:
    static const BIO_METHOD* method() {
        static BIO_METHOD* const m = [] {
            BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "berth socket");
            if (made == nullptr) return made;
            BIO_meth_set_read_ex(made, &read);
            BIO_meth_set_write_ex(made, &write);
            BIO_meth_set_ctrl(made, &ctrl);
            return made;
        }();
        return m;
    }
    static tls_socket_io& of(BIO* bio) { return *static_cast<tls_socket_io*>(BIO_get_data(bio)); }
    static bool try_again(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }

    static int read(BIO* bio, char* data, std::size_t size, std::size_t* done) {
        auto& io = of(bio);
        BIO_clear_retry_flags(bio);
        const ssize_t n = ::recv(io.fd, data, size, 0);
        if (n > 0) {
            *done = static_cast<std::size_t>(n);
            return 1;
        }
        if (n == 0) io.eof = true;
        else if (try_again(errno)) BIO_set_retry_read(bio);
        else io.error = errno;
        return 0;
    }
    static int write(BIO* bio, const char* data, std::size_t size, std::size_t* done) {
        auto& io = of(bio);
        BIO_clear_retry_flags(bio);
        const ssize_t n = ::send(io.fd, data, size, MSG_NOSIGNAL);
        if (n >= 0) {
            *done = static_cast<std::size_t>(n);
            return 1;
        }
        if (try_again(errno)) BIO_set_retry_write(bio);
        else io.error = errno;
        return 0;
    }
    static long ctrl(BIO* bio, int cmd, long, void*) {
        switch (cmd) {
        case BIO_CTRL_FLUSH: return 1;  // nothing is held back
        case BIO_CTRL_EOF: return of(bio).eof ? 1 : 0;
        default: return 0;
        }
    }
};

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
            [this, step = std::move(step), state = phase::starting, done = tls_progress{}](
                auto& self, boost::system::error_code wait_ec = {}) mutable {
                if (state == phase::delivering) return self.complete(done.ec, done.bytes);
                if (state == phase::starting) self.reset_cancellation_state(boost::asio::enable_total_cancellation());
                else if (wait_ec) return self.complete(wait_ec, done.bytes);  // cancelled, or the socket failed
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

    void async_write_some(gathered_buffers buffers, handler_type handler) override {
        start(handler, [this, data = flatten(buffers), sent = std::size_t{0}]() mutable { return write_step(data, sent); });
    }

    template <class Token>
    auto async_handshake(Token&& token) {
        return start(token, [this] { return handshake_step(); });
    }

    // Sends close_notify when there is room for it, without waiting for the peer's (a silent peer cannot hold up a
    // close): one SSL_shutdown on the non-blocking socket.
    void close(boost::system::error_code& ec) override {
        if (!socket_.is_open()) return;
        if (SSL_is_init_finished(ssl_)) {
            SSL_shutdown(ssl_);
            ::ERR_clear_error();
        }
        socket_.close(ec);
    }

    // The TCP socket: bytes waiting there on an idle connection can only be the server's close_notify (the
    // session tickets of the handshake were read with the first reply), so readable means closed here too.
    int liveness_handle() const override { return const_cast<socket_type&>(socket_).native_handle(); }

    SSL* native_handle() { return ssl_; }
    socket_type& lowest_layer() { return socket_; }

private:
    static constexpr int read_buffer_size = 128 * 1024;  // 8 records: what a 64 KiB body read needs, and more
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

    tls_progress write_step(boost::asio::const_buffer data, std::size_t& sent) {
        const auto* bytes = static_cast<const char*>(data.data());
        while (sent < data.size()) {
            std::size_t n = 0;
            const int r = SSL_write_ex(ssl_, bytes + sent, data.size() - sent, &n);
            if (r != 1) {
                auto p = outcome(r);
                p.bytes = sent;
                return p;
            }
            sent += n;
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

    // The bytes of one write: the first buffer when it is large (no copy), else the first small buffers joined
    // into one record (a chunk header and its data: one record and one send, not two).
    boost::asio::const_buffer flatten(const gathered_buffers& buffers) {
        auto it = buffers.begin();
        if (it == buffers.end()) return {};
        if (it->size() >= small_write || it + 1 == buffers.end()) return *it;
        staging_.clear();
        for (; it != buffers.end() && staging_.size() < small_write; ++it) {
            const std::size_t take = std::min(it->size(), small_write - staging_.size());
            const auto* p = static_cast<const char*>(it->data());
            staging_.insert(staging_.end(), p, p + take);
        }
        return boost::asio::buffer(staging_);
    }

    socket_type socket_;
    SSL* ssl_;
    tls_socket_io io_{};
    boost::system::error_code deferred_{};  // an error met after a read had bytes to deliver
    std::vector<char> staging_{};
};

// What a failed handshake or first exchange means, from OpenSSL's verify result and the error's reason.
inline tls_error classify_tls_failure(const boost::system::error_code& ec, SSL* ssl, const std::string& endpoint) {
    const long verify = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    const bool ssl_error = ec.category() == boost::asio::error::get_ssl_category();
    const int reason = ssl_error ? ERR_GET_REASON(static_cast<unsigned long>(ec.value())) : 0;
    if (ssl_error && reason == SSL_R_CERTIFICATE_VERIFY_FAILED && verify != X509_V_OK) {
        std::string why = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
        switch (verify) {
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH:
        case X509_V_ERR_EMAIL_MISMATCH: return tls_error(tls_errc::host_name_mismatch, endpoint, why);
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        case X509_V_ERR_CERT_UNTRUSTED: return tls_error(tls_errc::unknown_ca, endpoint, why);
        default: return tls_error(tls_errc::bad_certificate, endpoint, why);
        }
    }
    if (ssl_error) {
        switch (reason) {
        case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
        case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
        case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
        case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
        case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
        case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
        case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
        case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
            return tls_error(tls_errc::certificate_rejected, endpoint, "the server sent: " + ec.message());
        case SSL_R_WRONG_VERSION_NUMBER:
        case SSL_R_HTTP_REQUEST:
        case SSL_R_HTTPS_PROXY_REQUEST:
        case SSL_R_PACKET_LENGTH_TOO_LONG:
        case SSL_R_UNKNOWN_PROTOCOL:
            return tls_error(tls_errc::not_tls, endpoint,
                             "its reply is not TLS (" + ec.message() + "); is this a plain-HTTP port?");
        default: break;
        }
    }
    if (ec == boost::asio::ssl::error::stream_truncated || ec == boost::asio::error::eof ||
        ec == boost::asio::error::connection_reset)
        return tls_error(tls_errc::handshake_failed, endpoint, "the server closed the connection: " + ec.message());
    return tls_error(tls_errc::handshake_failed, endpoint, ec.message());
}

// The last OpenSSL error as text, for material that fails to load.
inline std::string openssl_error_text(const boost::system::system_error& e) {
    return e.code().message();
}

// The newest resumable session (TLS 1.3: ticket) the server gave the connections of one SSL_CTX, which belongs to
// one transport: no cache is shared between contexts, and OpenSSL keeps none of its own. It lives exactly as long
// as the context, which each connection holds a reference to, so a ticket that arrives on a connection that
// outlived its transport still has a place to go.
class tls_session_store {
public:
    tls_session_store(const tls_session_store&) = delete;
    tls_session_store& operator=(const tls_session_store&) = delete;

    static void attach(SSL_CTX* ctx) {
        auto* store = new tls_session_store;
        if (index() < 0 || SSL_CTX_set_ex_data(ctx, index(), store) != 1) {
            delete store;  // no resumption, every handshake in full
            return;
        }
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx, &tls_session_store::on_new_session);
    }
    static tls_session_store* of(SSL_CTX* ctx) {
        return index() < 0 ? nullptr : static_cast<tls_session_store*>(SSL_CTX_get_ex_data(ctx, index()));
    }

    // Asks the server to resume the newest session on the connection `ssl` (it may decline: a full handshake).
    void offer(SSL* ssl) {
        std::lock_guard lock(mutex_);
        if (session_) SSL_set_session(ssl, session_);  // takes a reference of its own
    }
    void forget() { replace(nullptr); }

private:
    tls_session_store() = default;
    ~tls_session_store() { replace(nullptr); }

    void replace(SSL_SESSION* session) {
        std::lock_guard lock(mutex_);
        if (session_) SSL_SESSION_free(session_);
        session_ = session;
    }
    static int index() {
        static const int i = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_store);
        return i;
    }
    static void free_store(void*, void* store, CRYPTO_EX_DATA*, int, long, void*) {
        delete static_cast<tls_session_store*>(store);
    }
    // Returning 1 keeps the reference OpenSSL passes.
    static int on_new_session(SSL* ssl, SSL_SESSION* session) {
        auto* store = of(SSL_get_SSL_CTX(ssl));
        if (!store || !SSL_SESSION_is_resumable(session)) return 0;
        store->replace(session);
        return 1;
    }

    std::mutex mutex_;
    SSL_SESSION* session_ = nullptr;
};

class openssl_connector final : public tls_connector {
public:
    // The largest CA, certificate or key file loaded.
    static constexpr std::uintmax_t max_tls_file_bytes = std::uintmax_t{4} << 20;

    explicit openssl_connector(const engine_endpoint& ep)
        : endpoint_(ep.to_string()), host_(ep.address.host), verify_(ep.tls.verify_server),
          ctx_(boost::asio::ssl::context::tls_client) {
        namespace ssl = boost::asio::ssl;
        const auto& o = ep.tls;
        SSL_CTX_set_min_proto_version(ctx_.native_handle(), TLS1_2_VERSION);
        auto load = [&](const char* what, const std::string& file, auto&& step) {
            // OpenSSL would read a file of any size whole: a CA bundle is some hundred KiB
            std::error_code size_ec;
            if (auto size = std::filesystem::file_size(file, size_ec); !size_ec && size > max_tls_file_bytes)
                throw tls_error(tls_errc::bad_material, endpoint_,
                                std::string("the ") + what + " " + detail::quote_outside_text(file) + " is larger than " +
                                    std::to_string(max_tls_file_bytes) + " bytes");
            try {
                step();
            } catch (const boost::system::system_error& e) {
                throw tls_error(tls_errc::bad_material, endpoint_,
                                std::string("cannot use the ") + what + " '" + file + "': " + openssl_error_text(e));
            }
        };
        if (verify_) {
            ctx_.set_verify_mode(ssl::verify_peer);
            if (o.ca_file.empty()) ctx_.set_default_verify_paths();
            else load("CA file", o.ca_file, [&] { ctx_.load_verify_file(o.ca_file); });
        } else {
            ctx_.set_verify_mode(ssl::verify_none);
        }
        if (o.cert_file.empty() != o.key_file.empty())
            throw tls_error(tls_errc::bad_material, endpoint_,
                            "a client certificate needs its key and a key its certificate (cert '" + o.cert_file +
                                "', key '" + o.key_file + "')");
        tls_session_store::attach(ctx_.native_handle());
        if (!o.cert_file.empty()) {
            load("client certificate", o.cert_file, [&] { ctx_.use_certificate_chain_file(o.cert_file); });
            load("client key", o.key_file, [&] { ctx_.use_private_key_file(o.key_file, ssl::context::pem); });
            if (SSL_CTX_check_private_key(ctx_.native_handle()) != 1) {
                ::ERR_clear_error();
                throw tls_error(tls_errc::bad_material, endpoint_,
                                "the key '" + o.key_file + "' does not belong to the certificate '" + o.cert_file + "'");
            }
        }
    }

    boost::asio::awaitable<connection_stream> handshake(boost::asio::generic::stream_protocol::socket socket) override {
        namespace asio = boost::asio;
        auto layered = std::make_unique<tls_stream>(std::move(socket), ctx_.native_handle());
        SSL* ssl = layered->native_handle();
        boost::system::error_code ec;
        asio::ip::make_address(host_, ec);
        const bool is_ip = !ec;
        if (!is_ip) SSL_set_tlsext_host_name(ssl, host_.c_str());  // SNI takes names only
        if (verify_) {
            X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
            X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host_.c_str())
                           : X509_VERIFY_PARAM_set1_host(param, host_.c_str(), host_.size());
            if (ok != 1) {
                ::ERR_clear_error();
                throw tls_error(tls_errc::handshake_failed, endpoint_, "cannot check the server against '" + host_ + "'");
            }
        }
        auto* sessions = tls_session_store::of(ctx_.native_handle());
        if (sessions) sessions->offer(ssl);
        auto [hs_ec, ignored] = co_await layered->async_handshake(asio::as_tuple(asio::use_awaitable));
        if (hs_ec && sessions) sessions->forget();  // it may be what the server refused: the next one starts afresh
        if (hs_ec == asio::error::operation_aborted)
            throw boost::system::system_error(hs_ec, "connect to " + endpoint_ + ": TLS handshake");
        if (hs_ec) throw classify_tls_failure(hs_ec, ssl, endpoint_);
        co_return connection_stream(std::move(layered));
    }

    void throw_if_tls_failure(const boost::system::error_code& ec, connection_stream& stream) override {
        if (ec.category() != boost::asio::error::get_ssl_category() && ec != boost::asio::ssl::error::stream_truncated)
            return;
        auto* tls = dynamic_cast<tls_stream*>(stream.layered());
        throw classify_tls_failure(ec, tls ? tls->native_handle() : nullptr, endpoint_);
    }

private:
    std::string endpoint_;
    std::string host_;
    bool verify_;
    boost::asio::ssl::context ctx_;
};

inline std::shared_ptr<tls_connector> make_openssl_connector(const engine_endpoint& ep) {
    return std::make_shared<openssl_connector>(ep);
}

// Registers TLS when this header is part of the program (before main, as every namespace-scope initializer).
inline const bool tls_registered = (tls_factory().store(&make_openssl_connector), true);

} // namespace berth::detail
