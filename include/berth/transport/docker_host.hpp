#pragma once
// Parsing of engine addresses in the DOCKER_HOST syntax: unix:///path and tcp://host:port.
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

namespace berth {

// A DOCKER_HOST (or an address passed by the caller) that is malformed or names a scheme berth does not speak.
class invalid_host : public std::invalid_argument {
public:
    explicit invalid_host(const std::string& what) : std::invalid_argument(what) {}
};

struct host_address {
    enum class kind { unix_socket, tcp } scheme = kind::unix_socket;
    std::string path{};          // unix socket path
    std::string host{};          // tcp host name or address
    std::uint16_t port = 0;    // tcp port

    std::string to_string() const {
        if (scheme == kind::unix_socket) return "unix://" + path;
        bool ipv6 = host.find(':') != std::string::npos;  // in brackets, or its colons would read as a port
        return "tcp://" + (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
    }
};

inline constexpr std::string_view default_docker_socket = "/var/run/docker.sock";

inline host_address parse_docker_host(std::string_view spec) {
    auto fail = [&](std::string_view why) {
        std::string shown;  // control characters escaped: a NUL would cut what() short before the reason
        for (char c : spec) {
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
                static constexpr char hex[] = "0123456789abcdef";
                shown += "\\x";
                shown += hex[(static_cast<unsigned char>(c) >> 4) & 15];
                shown += hex[c & 15];
            } else {
                shown += c;
            }
        }
        throw invalid_host("invalid engine address '" + shown + "': " + std::string(why));
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
        a.host = std::string(host);
        if (port.empty()) {
            a.port = 2375;  // the engine's conventional plain-TCP port, as the docker CLI assumes
        } else {
            unsigned long v = 0;
            for (char c : port) {
                if (c < '0' || c > '9') fail("the port is not a number");
                v = v * 10 + static_cast<unsigned long>(c - '0');
                if (v > 65535) fail("the port is out of range");
            }
            if (v == 0) fail("the port is out of range");
            a.port = static_cast<std::uint16_t>(v);
        }
        return a;
    }
    auto sep = spec.find("://");
    if (sep == std::string_view::npos) fail("expected unix:///path or tcp://host:port");
    fail("the scheme '" + std::string(spec.substr(0, sep)) + "' is not supported (use unix:// or tcp://)");
    return a;  // unreachable
}

// DOCKER_HOST when set and non-empty, else the default unix socket.
inline host_address docker_host_from_env(const char* variable = "DOCKER_HOST") {
    const char* v = std::getenv(variable);
    if (v == nullptr || *v == '\0') return host_address{.path = std::string(default_docker_socket)};
    return parse_docker_host(v);
}

} // namespace berth
