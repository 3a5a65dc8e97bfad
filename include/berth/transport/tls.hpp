#pragma once
// TLS for tcp:// engines (the docker CLI's --tlsverify, DOCKER_TLS_VERIFY, a context's TLS material): Asio's SSL
// stream over OpenSSL. Including this header is what turns TLS on: it registers itself with socket_transport, so a
// program that never includes it never refers to OpenSSL and need not link it (-lssl -lcrypto). Without it, a TLS
// endpoint is refused with tls_error(not_available) saying so.
//
// The server is checked the way the docker CLI checks it: its chain against the CA given (else the system's), and
// its certificate against the host name or IP address in the address (OpenSSL's own host/IP check, so a mismatch
// is reported as one). The client certificate and key are sent when given. TLS 1.2 is the oldest version spoken.
// A failed check is a tls_error saying which: unknown CA, bad certificate, host-name mismatch, client certificate
// refused by the server, or a server that does not speak TLS.
#include <berth/transport/connection_stream.hpp>
#include <berth/transport/endpoint.hpp>
#include <berth/transport/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

namespace berth::detail {

// A TLS session over a TCP socket. Writes of many small buffers are joined into records by Beast's flat_stream.
class tls_stream final : public layered_stream {
public:
    using socket_type = boost::asio::generic::stream_protocol::socket;
    tls_stream(socket_type socket, boost::asio::ssl::context& ctx) : stream_(std::move(socket), ctx) {}
    ~tls_stream() override {
        boost::system::error_code ec;
        close(ec);
    }

    boost::asio::any_io_executor get_executor() override { return stream_.get_executor(); }
    void async_read_some(boost::asio::mutable_buffer buffer, handler_type handler) override {
        stream_.async_read_some(buffer, std::move(handler));
    }
    void async_write_some(gathered_buffers buffers, handler_type handler) override {
        stream_.async_write_some(buffers, std::move(handler));
    }
    // Sends close_notify when there is room for it, without waiting for the peer's: the socket is made non-blocking
    // first, so the shutdown's wait for the reply fails at once instead of hanging on a silent peer.
    void close(boost::system::error_code& ec) override {
        auto& socket = lowest_layer();
        if (!socket.is_open()) return;
        boost::system::error_code ignored;
        if (SSL_is_init_finished(stream_.native_handle())) {
            socket.non_blocking(true, ignored);
            stream_.shutdown(ignored);
            ::ERR_clear_error();
        }
        socket.close(ec);
    }

    // The TCP socket: bytes waiting there on an idle connection can only be the server's close_notify (the
    // session tickets of the handshake were read with the first reply), so readable means closed here too.
    int liveness_handle() const override {
        return const_cast<tls_stream*>(this)->lowest_layer().native_handle();
    }

    SSL* native_handle() { return stream_.native_handle(); }
    boost::beast::ssl_stream<socket_type>& stream() { return stream_; }
    socket_type& lowest_layer() { return boost::beast::get_lowest_layer(stream_); }

private:
    boost::beast::ssl_stream<socket_type> stream_;
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

class openssl_connector final : public tls_connector {
public:
    explicit openssl_connector(const engine_endpoint& ep)
        : endpoint_(ep.to_string()), host_(ep.address.host), verify_(ep.tls.verify_server),
          ctx_(boost::asio::ssl::context::tls_client) {
        namespace ssl = boost::asio::ssl;
        const auto& o = ep.tls;
        SSL_CTX_set_min_proto_version(ctx_.native_handle(), TLS1_2_VERSION);
        auto load = [&](const char* what, const std::string& file, auto&& step) {
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
        auto layered = std::make_unique<tls_stream>(std::move(socket), ctx_);
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
        auto [hs_ec] = co_await layered->stream().async_handshake(asio::ssl::stream_base::client,
                                                                  asio::as_tuple(asio::use_awaitable));
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
