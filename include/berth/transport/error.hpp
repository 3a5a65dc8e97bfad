#pragma once
// Errors of reaching an engine that a user can act on: a TLS peer that cannot be trusted or does not trust us, an
// ssh login or remote `docker` that fails, a Docker context that does not exist. Each names the engine's address
// and carries the underlying reason (OpenSSL's verdict, ssh's own stderr). connection_error is a
// boost::system::system_error, so code that handles transport failures by their error_code keeps working; its
// code() is one of tls_errc / ssh_errc below, or the system's code for an ordinary connect failure.
#include <berth/detail/outside_text.hpp>

#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <stdexcept>
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

} // namespace detail

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

// Could not connect to the engine at endpoint(): what() reads "<endpoint>: <summary>: <reason>".
class connection_error : public boost::system::system_error {
public:
    connection_error(boost::system::error_code ec, std::string endpoint, std::string reason)
        : boost::system::system_error(ec), endpoint_(std::move(endpoint)), reason_(std::move(reason)),
          text_(endpoint_ + ": " + ec.message() + (reason_.empty() ? "" : ": " + reason_)) {}
    // The engine's address ("tcp://10.0.0.2:2376", "ssh://me@box").
    const std::string& endpoint() const noexcept { return endpoint_; }
    // What the layer below said (OpenSSL's verify result, ssh's stderr, the system's message).
    const std::string& reason() const noexcept { return reason_; }
    const char* what() const noexcept override { return text_.c_str(); }

private:
    std::string endpoint_, reason_, text_;
};

class tls_error : public connection_error {
public:
    tls_error(tls_errc code, std::string endpoint, std::string reason)
        : connection_error(make_error_code(code), std::move(endpoint), std::move(reason)), kind_(code) {}
    tls_errc kind() const noexcept { return kind_; }

private:
    tls_errc kind_;
};

class ssh_error : public connection_error {
public:
    // exit_status: ssh's exit status, -1 when it did not exit normally or was not started. ssh_stderr: what ssh
    // (and the remote command through it) wrote to stderr, also part of reason().
    ssh_error(ssh_errc code, std::string endpoint, std::string reason, int exit_status, std::string ssh_stderr)
        : connection_error(make_error_code(code), std::move(endpoint), std::move(reason)), kind_(code),
          exit_status_(exit_status), stderr_(std::move(ssh_stderr)) {}
    ssh_errc kind() const noexcept { return kind_; }
    int exit_status() const noexcept { return exit_status_; }
    const std::string& ssh_stderr() const noexcept { return stderr_; }

private:
    ssh_errc kind_;
    int exit_status_;
    std::string stderr_;
};

enum class context_errc {
    not_found = 1,  // no context of that name in the store
    invalid_name,   // not a name the docker CLI accepts (and so not one the store can hold)
    unreadable,     // config.json, meta.json or a TLS file exists but cannot be read
    malformed,      // config.json or meta.json is not what the docker CLI writes
};

// A Docker context that does not exist, or whose files cannot be read or parsed.
class context_error : public std::invalid_argument {
public:
    context_error(context_errc kind, std::string context, const std::string& what)
        : std::invalid_argument("docker context " + detail::quote_outside_text(context) + ": " + what), kind_(kind),
          context_(std::move(context)) {}
    context_errc kind() const noexcept { return kind_; }
    const std::string& context() const noexcept { return context_; }

private:
    context_errc kind_;
    std::string context_;
};

} // namespace berth

template <>
struct boost::system::is_error_code_enum<berth::tls_errc> : std::true_type {};
template <>
struct boost::system::is_error_code_enum<berth::ssh_errc> : std::true_type {};
