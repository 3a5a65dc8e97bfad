#pragma once
// openssl_connector: one endpoint's TLS material loaded into an SSL context, and the handshake of each new
// connection with the server checked the docker CLI's way (part of <berth/transport/tls.hpp>, which links OpenSSL
// and registers it).
#include <berth/detail/outside_text.hpp>
#include <berth/transport/connection_stream.hpp>
#include <berth/transport/endpoint.hpp>
#include <berth/transport/error.hpp>
#include <berth/transport/tls/failure.hpp>
#include <berth/transport/tls/session_store.hpp>
#include <berth/transport/tls/stream.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

namespace berth::detail {

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
                                std::string("the ") + what + " " + detail::quote_outside_text(file) +
                                    " is larger than " + std::to_string(max_tls_file_bytes) + " bytes");
            try {
                step();
            } catch (const boost::system::system_error& e) {
                throw tls_error(tls_errc::bad_material, endpoint_,
                                std::string("cannot use the ") + what + " '" + file + "': " + openssl_error_text(e));
            }
        };
        // PEM text in memory (too large, or not PEM) is refused as the files are.
        auto load_pem = [&](const char* what, const std::string& pem, auto&& step) {
            if (pem.size() > max_tls_file_bytes)
                throw tls_error(tls_errc::bad_material, endpoint_,
                                std::string("the ") + what + " is larger than " + std::to_string(max_tls_file_bytes) +
                                    " bytes");
            try {
                step(boost::asio::buffer(pem));
            } catch (const boost::system::system_error& e) {
                throw tls_error(tls_errc::bad_material, endpoint_,
                                std::string("cannot use the ") + what + " given in memory: " + openssl_error_text(e));
            }
        };
        if (verify_) {
            ctx_.set_verify_mode(ssl::verify_peer);
            if (!o.ca_file.empty())
                load("CA file", o.ca_file, [&] { ctx_.load_verify_file(o.ca_file); });
            else if (!o.ca_pem.empty())
                load_pem("CA", o.ca_pem, [&](auto b) { ctx_.add_certificate_authority(b); });
            else
                ctx_.set_default_verify_paths();
        } else {
            ctx_.set_verify_mode(ssl::verify_none);
        }
        const bool has_cert = !o.cert_file.empty() || !o.cert_pem.empty();
        const bool has_key = !o.key_file.empty() || !o.key_pem.empty();
        if (has_cert != has_key)
            throw tls_error(tls_errc::bad_material, endpoint_,
                            "a client certificate needs its key and a key its certificate (cert '" + o.cert_file +
                                "', key '" + o.key_file + "')");
        tls_session_store::attach(ctx_.native_handle());
        if (has_cert) {
            if (!o.cert_file.empty())
                load("client certificate", o.cert_file, [&] { ctx_.use_certificate_chain_file(o.cert_file); });
            else
                load_pem("client certificate", o.cert_pem, [&](auto b) { ctx_.use_certificate_chain(b); });
            if (!o.key_file.empty())
                load("client key", o.key_file, [&] { ctx_.use_private_key_file(o.key_file, ssl::context::pem); });
            else
                load_pem("client key", o.key_pem, [&](auto b) { ctx_.use_private_key(b, ssl::context::pem); });
            if (SSL_CTX_check_private_key(ctx_.native_handle()) != 1) {
                ::ERR_clear_error();
                throw tls_error(tls_errc::bad_material, endpoint_,
                                "the key '" + (o.key_file.empty() ? std::string("(in memory)") : o.key_file) +
                                    "' does not belong to the certificate '" +
                                    (o.cert_file.empty() ? std::string("(in memory)") : o.cert_file) + "'");
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
                throw tls_error(tls_errc::handshake_failed, endpoint_,
                                "cannot check the server against '" + host_ + "'");
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
        namespace asio = boost::asio;
        auto* tls = dynamic_cast<tls_stream*>(stream.layered());
        const bool closed = ec == asio::error::eof || ec == asio::error::connection_reset ||
                            ec == asio::ssl::error::stream_truncated;
        // A server closing on its alert may reset the connection before the alert is read (our request arrived
        // after its close): the refusal is then known only from its asking for a certificate.
        if (closed && tls && tls->server_asked_for_certificate())
            throw tls_error(tls_errc::certificate_rejected, endpoint_,
                            "the server closed the connection after asking for a client certificate (" + ec.message() +
                                "): it refused the one sent, or that none was sent");
        if (ec.category() != asio::error::get_ssl_category() && ec != asio::ssl::error::stream_truncated) return;
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

}  // namespace berth::detail
