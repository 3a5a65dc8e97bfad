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
//
// The parts, one concept each: tls/socket_bio.hpp (the socket as OpenSSL's BIO), tls/stream.hpp (the session as
// a stream), tls/failure.hpp (what a failure means), tls/session_store.hpp (resumption), tls/connector.hpp (the
// material and the handshake). This header is the one to include: it is what registers TLS.
#include <berth/transport/endpoint.hpp>
#include <berth/transport/tls/connector.hpp>
#include <berth/transport/tls/failure.hpp>
#include <berth/transport/tls/session_store.hpp>
#include <berth/transport/tls/socket_bio.hpp>
#include <berth/transport/tls/stream.hpp>

namespace berth::detail {

// Registers TLS when this header is part of the program (before main, as every namespace-scope initializer).
inline const bool tls_registered = (tls_factory().store(&make_openssl_connector), true);

}  // namespace berth::detail
