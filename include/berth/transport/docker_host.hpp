#pragma once
// Parsing of engine addresses in the DOCKER_HOST syntax: unix:///path, tcp://host:port and ssh://[user@]host[:port].
#include <berth/detail/outside_text.hpp>
#include <berth/error.hpp>

#include <boost/system/errc.hpp>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

namespace berth {

// A DOCKER_HOST (or an address passed by the caller) that is malformed or names a scheme berth does not speak.
// code() is the generic errc::invalid_argument (bad input, not a transport failure).
class invalid_host : public invalid_argument_error {
public:
    explicit invalid_host(const std::string& what) : invalid_argument_error(what) {}

protected:
    invalid_host(const boost::system::error_code& code, const std::string& what) : invalid_argument_error(code, what) {}
};

struct host_address {
    enum class kind { unix_socket, tcp, ssh } scheme = kind::unix_socket;
    std::string path{};      // unix socket path; for ssh, the engine's socket on the remote host (may be empty)
    std::string host{};      // tcp or ssh host name or address
    std::uint16_t port = 0;  // tcp port; ssh port, 0 for ssh's own default
    std::string user{};      // ssh login name (may be empty: ssh's own default)

    std::string to_string() const {
        if (scheme == kind::unix_socket) return "unix://" + path;
        bool ipv6 = host.find(':') != std::string::npos;  // in brackets, or its colons would read as a port
        std::string h = ipv6 ? "[" + host + "]" : host;
        if (scheme == kind::tcp) return "tcp://" + h + ":" + std::to_string(port);
        return "ssh://" + (user.empty() ? "" : user + "@") + h + (port ? ":" + std::to_string(port) : "") + path;
    }
};

inline constexpr std::string_view default_docker_socket = "/var/run/docker.sock";
// The engine's conventional ports, which the docker CLI assumes when a tcp:// address has none.
inline constexpr std::uint16_t docker_plain_port = 2375;
inline constexpr std::uint16_t docker_tls_port = 2376;

// default_tcp_port: the port of a tcp:// address without one (docker_tls_port when TLS will be used).
inline host_address parse_docker_host(std::string_view spec, std::uint16_t default_tcp_port = docker_plain_port) {
    // The address quoted once, bounded, control characters escaped (a NUL would cut what() short).
    auto fail = [&](std::string_view why) {
        throw invalid_host("invalid engine address " + detail::quote_outside_text(spec) + ": " + std::string(why));
    };
    // host[:port] or [ipv6][:port]; the port is left 0 when absent.
    auto host_and_port = [&](std::string_view rest, host_address& a) {
        std::string_view host = rest, port;
        if (rest.starts_with("[")) {  // [ipv6]:port
            auto close = rest.find(']');
            if (close == std::string_view::npos) fail("unterminated '[' in an IPv6 address");
            host = rest.substr(1, close - 1);
            auto after = rest.substr(close + 1);
            if (!after.empty()) {
                if (after.front() != ':') fail("expected ':' after ']'");
                port = after.substr(1);
            }
        } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
            host = rest.substr(0, colon);
            port = rest.substr(colon + 1);
            if (host.find(':') != std::string_view::npos)
                fail("an IPv6 address must be in brackets (tcp://[::1]:2375)");
        }
        if (host.empty()) fail("no host");
        if (host.size() > 255) fail("the host name is longer than 255 bytes");  // DNS names have at most 253
        for (char c : host)
            if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '@' || c == '/' || c == '?' || c == '#' ||
                c == '[' || c == ']')  // brackets only around an IPv6 address, never in it
                fail("the host name contains " + detail::quote_outside_text(std::string(1, c)));
        a.host = std::string(host);
        unsigned long v = 0;
        for (char c : port) {
            if (c < '0' || c > '9') fail("the port is not a number");
            v = v * 10 + static_cast<unsigned long>(c - '0');
            if (v > 65535) fail("the port is out of range");
        }
        if (!port.empty() && v == 0) fail("the port is out of range");
        a.port = static_cast<std::uint16_t>(v);
    };
    host_address a;
    if (spec.starts_with("unix://")) {
        a.path = std::string(spec.substr(7));
        if (a.path.empty() || a.path.front() != '/') fail("a unix socket path must be absolute (unix:///path)");
        if (a.path.find('\0') != std::string::npos) fail("the path contains a NUL byte");
        return a;
    }
    if (spec.starts_with("tcp://")) {
        a.scheme = host_address::kind::tcp;
        std::string_view rest = spec.substr(6);
        while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
        if (rest.find('/') != std::string_view::npos) fail("a path after the port is not supported");
        host_and_port(rest, a);
        if (a.port == 0) a.port = default_tcp_port;
        return a;
    }
    if (spec.starts_with("ssh://")) {  // ssh://[user@]host[:port][/remote/socket], as the docker CLI reads it
        a.scheme = host_address::kind::ssh;
        std::string_view rest = spec.substr(6);
        if (rest.find_first_of("?#") != std::string_view::npos) fail("a query or fragment is not allowed");
        if (auto slash = rest.find('/'); slash != std::string_view::npos) {
            std::string_view path = rest.substr(slash);
            rest = rest.substr(0, slash);
            while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
            if (path != "/") a.path = std::string(path);
            for (char c : a.path)
                if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) fail("the path contains a control character");
        }
        if (auto at = rest.rfind('@'); at != std::string_view::npos) {
            std::string_view user = rest.substr(0, at);
            rest = rest.substr(at + 1);
            if (user.empty()) fail("an empty user name before '@'");
            if (user.size() > 255) fail("the user name is longer than 255 bytes");
            if (user.find(':') != std::string_view::npos)  // the address is not shown: it holds the password
                throw invalid_host("invalid engine address: a password in the address is not supported");
            for (char c : user)
                if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '@')
                    fail("the user name contains " + detail::quote_outside_text(std::string(1, c)));
            if (user.front() == '-') fail("a user name cannot start with '-'");
            a.user = std::string(user);
        }
        host_and_port(rest, a);
        if (a.host.front() == '-') fail("a host name cannot start with '-'");
        return a;
    }
    auto sep = spec.find("://");
    if (sep == std::string_view::npos) fail("expected unix:///path or tcp://host:port (or ssh://[user@]host[:port])");
    fail("the scheme " + detail::quote_outside_text(spec.substr(0, sep), 16) +
         " is not supported (use unix://, tcp:// or ssh://)");
    return a;  // unreachable
}

// DOCKER_HOST when set and non-empty, else the default unix socket.
inline host_address docker_host_from_env(const char* variable = "DOCKER_HOST") {
    const char* v = std::getenv(variable);
    if (v == nullptr || *v == '\0') return host_address{.path = std::string(default_docker_socket)};
    return parse_docker_host(v);
}

}  // namespace berth
