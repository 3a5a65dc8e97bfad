#pragma once
// Errors of reaching an engine: connection_error, for every "could not reach the engine" whatever the transport
// (its code() the system's or Asio's own for an ordinary connect, read or write failure or a time-out), and the
// cases a user can act on: a TLS peer that cannot be trusted or does not trust us (tls_error), an ssh login or
// remote `docker` that fails (ssh_error), a Docker context that does not exist (context_error). Each names the
// engine's address and carries the underlying words (OpenSSL's verdict, ssh's own stderr).
#include <berth/detail/outside_text.hpp>
#include <berth/error.hpp>

#include <boost/system/error_code.hpp>

#include <string>
#include <type_traits>

namespace berth {

enum class tls_errc {
    unknown_ca = 1,        // the server's certificate is not signed by a CA we trust
    bad_certificate,       // the server's certificate is invalid (expired, not yet valid, bad signature, ...)
    host_name_mismatch,    // the server's certificate is not for the host name or IP address we connected to
    certificate_rejected,  // the server refused our client certificate (or that we sent none)
    not_tls,               // the server answered, but not in TLS (a plain-HTTP port)
    requires_tls,          // we spoke plain HTTP to a server that only speaks TLS
    bad_material,          // a CA, certificate or key file is missing, unreadable or not PEM
    handshake_failed,      // any other handshake failure (see the reason)
    not_available,         // TLS was asked for but <berth/transport/tls.hpp> is not compiled into the program
};

enum class ssh_errc {
    ssh_not_found = 1,       // the ssh program could not be started
    connection_failed,       // ssh could not reach the host (exit status 255 without a more specific reason)
    host_key_rejected,       // the host key is unknown or changed, and BatchMode forbids asking
    authentication_refused,  // the server refused every key offered
    remote_docker_missing,   // the remote shell has no `docker` command (exit status 127)
    remote_dial_failed,      // `docker system dial-stdio` ran but could not reach the remote engine
};

namespace detail {

class tls_category_impl : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "berth.tls"; }
    std::string message(int v) const override {
        switch (static_cast<tls_errc>(v)) {
        case tls_errc::unknown_ca: return "the server's certificate is not signed by a trusted CA";
        case tls_errc::bad_certificate: return "the server's certificate is not valid";
        case tls_errc::host_name_mismatch: return "the server's certificate does not name the host";
        case tls_errc::certificate_rejected: return "the server refused the client certificate";
        case tls_errc::not_tls: return "the server does not speak TLS";
        case tls_errc::requires_tls: return "the server requires TLS";
        case tls_errc::bad_material: return "TLS certificate or key material is unusable";
        case tls_errc::handshake_failed: return "TLS handshake failed";
        case tls_errc::not_available: return "TLS support is not compiled in";
        }
        return "TLS error";
    }
};

class ssh_category_impl : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "berth.ssh"; }
    std::string message(int v) const override {
        switch (static_cast<ssh_errc>(v)) {
        case ssh_errc::ssh_not_found: return "the ssh program could not be started";
        case ssh_errc::connection_failed: return "ssh could not connect";
        case ssh_errc::host_key_rejected: return "ssh rejected the host key";
        case ssh_errc::authentication_refused: return "ssh authentication was refused";
        case ssh_errc::remote_docker_missing: return "the remote host has no docker command";
        case ssh_errc::remote_dial_failed: return "docker system dial-stdio failed on the remote host";
        }
        return "ssh error";
    }
};

}  // namespace detail

inline const boost::system::error_category& tls_category() {
    static const detail::tls_category_impl c;
    return c;
}
inline const boost::system::error_category& ssh_category() {
    static const detail::ssh_category_impl c;
    return c;
}
inline boost::system::error_code make_error_code(tls_errc e) { return {static_cast<int>(e), tls_category()}; }
inline boost::system::error_code make_error_code(ssh_errc e) { return {static_cast<int>(e), ssh_category()}; }

}  // namespace berth

template <>
struct boost::system::is_error_code_enum<berth::tls_errc> : std::true_type {};
template <>
struct boost::system::is_error_code_enum<berth::ssh_errc> : std::true_type {};

namespace berth {

// Could not reach the engine, or lost it. Two texts: "<endpoint>: <the code's message>: <message>" for a failure
// the layer below explained (TLS, ssh), and "<context>: <the code's message>" for one met during an exchange, where
// the context names the engine, the request and the operation ("unix:///run/docker.sock: POST
// /v1.41/containers/create: connect"). code() is the system's / Asio's (connection_refused, timed_out,
// operation_aborted, ...), or a tls_errc / ssh_errc.
class connection_error : public error {
public:
    connection_error(const boost::system::error_code& ec, std::string endpoint, std::string message)
        : error(ec, endpoint + ": " + ec.message() + (message.empty() ? "" : ": " + message)),
          endpoint_(std::move(endpoint)), message_(std::move(message)) {}
    connection_error(const boost::system::error_code& ec, std::string context)
        : error(ec, context + ": " + ec.message()), endpoint_(std::move(context)) {}
    // Where: the engine's address ("tcp://10.0.0.2:2376", "ssh://me@box"), with the request and the operation
    // when the failure was met during an exchange.
    const std::string& endpoint() const noexcept { return endpoint_; }
    // What the layer below said (OpenSSL's verify result, ssh's stderr, the system's message); may be empty.
    const std::string& message() const noexcept { return message_; }

private:
    std::string endpoint_, message_;
};

// code() is a tls_errc (category "berth.tls").
class tls_error : public connection_error {
public:
    tls_error(tls_errc code, std::string endpoint, std::string message)
        : connection_error(make_error_code(code), std::move(endpoint), std::move(message)) {}
};

// code() is an ssh_errc (category "berth.ssh").
class ssh_error : public connection_error {
public:
    // exit_status: ssh's exit status, -1 when it did not exit normally or was not started. ssh_stderr: what ssh
    // (and the remote command through it) wrote to stderr, also part of message().
    ssh_error(ssh_errc code, std::string endpoint, std::string message, int exit_status, std::string ssh_stderr)
        : connection_error(make_error_code(code), std::move(endpoint), std::move(message)), exit_status_(exit_status),
          stderr_(std::move(ssh_stderr)) {}
    int exit_status() const noexcept { return exit_status_; }
    const std::string& ssh_stderr() const noexcept { return stderr_; }

private:
    int exit_status_;
    std::string stderr_;
};

enum class context_errc {
    not_found = 1,  // no context of that name in the store
    invalid_name,   // not a name the docker CLI accepts (and so not one the store can hold)
    unreadable,     // config.json, meta.json or a TLS file exists but cannot be read
    malformed,      // config.json or meta.json is not what the docker CLI writes
};

inline const char* errc_message(context_errc e) noexcept {
    switch (e) {
    case context_errc::not_found: return "no such Docker context";
    case context_errc::invalid_name: return "not a valid Docker context name";
    case context_errc::unreadable: return "the Docker context cannot be read";
    case context_errc::malformed: return "the Docker context is malformed";
    }
    return "Docker context error";
}
inline const boost::system::error_category& context_category() noexcept {
    static const detail::errc_category<context_errc> category("berth.context", errc_message);
    return category;
}
inline boost::system::error_code make_error_code(context_errc e) noexcept {
    return {static_cast<int>(e), context_category()};
}

}  // namespace berth

template <>
struct boost::system::is_error_code_enum<berth::context_errc> : std::true_type {};

namespace berth {

// A Docker context that does not exist, or whose files cannot be read or parsed. code() is a context_errc
// (category "berth.context").
class context_error : public error {
public:
    context_error(context_errc code, std::string context, const std::string& what)
        : error(code, "docker context " + detail::quote_outside_text(context) + ": " + what),
          context_(std::move(context)) {}
    const std::string& context() const noexcept { return context_; }

private:
    std::string context_;
};

}  // namespace berth
