#pragma once
// What a failed TLS handshake or exchange means, as a tls_error saying which check failed (part of
// <berth/transport/tls.hpp>, which links OpenSSL).
#include <berth/transport/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <string>

namespace berth::detail {

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
inline std::string openssl_error_text(const boost::system::system_error& e) { return e.code().message(); }

}  // namespace berth::detail
