#pragma once
// engine_endpoint: where an engine is (a host_address) and how to reach it (TLS material, ssh options), as
// DOCKER_HOST with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, or a Docker context, describes it.
#include <berth/transport/connection_stream.hpp>
#include <berth/transport/docker_host.hpp>

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace berth {

// Mutual TLS on a tcp:// address. Needs <berth/transport/tls.hpp> in the program (and OpenSSL at link time).
struct tls_options {
    bool enabled = false;
    // Check the server's certificate chain against the CA and that it names the host (DNS name or IP address).
    // false is the docker CLI's --tls without --tlsverify (a context's SkipTLSVerify): encrypted, not authenticated.
    bool verify_server = true;
    std::string ca_file{};    // PEM; empty: the system's trusted CAs
    std::string cert_file{};  // PEM client certificate; empty: none is sent
    std::string key_file{};   // PEM private key of cert_file (unencrypted, as the docker CLI requires)
    // The same material as PEM text in memory (a kubeconfig's *-data fields), used where the file is not given.
    std::string ca_pem{};
    std::string cert_pem{};
    std::string key_pem{};
};

// How an ssh:// address is reached: a child `ssh ... -- host docker system dial-stdio` per connection.
struct ssh_options {
    std::string program = "ssh";            // looked up in PATH unless it contains a '/'
    std::string identity_file{};            // ssh -i
    std::vector<std::string> extra_args{};  // given to ssh before the host, e.g. {"-o", "UserKnownHostsFile=..."}
    int connect_timeout_seconds = 30;       // ssh -o ConnectTimeout (the docker CLI's value)
};

struct engine_endpoint {
    host_address address{};
    tls_options tls{};
    ssh_options ssh{};
    // What the first TCP connection asks to prove it reaches the server it expects (a TLS refusal or a plain port
    // turned into a typed error before the first real request): Docker's GET /_ping; an API server's /version (what
    // kube_client sets); empty: no probe.
    std::string probe_path = "/_ping";

    bool uses_tls() const { return tls.enabled && address.scheme == host_address::kind::tcp; }
    std::string to_string() const { return address.to_string(); }
};

namespace detail {

// What <berth/transport/tls.hpp> provides once included: for one endpoint, with its material loaded, a maker of
// TLS sessions over connected TCP sockets. Reached through a function pointer that the header sets, so that a
// program that never includes tls.hpp never refers to OpenSSL.
class tls_connector {
public:
    virtual ~tls_connector() = default;
    // The TLS handshake over a connected TCP socket (SNI, server name or IP checked). Throws tls_error.
    virtual boost::asio::awaitable<connection_stream> handshake(
        boost::asio::generic::stream_protocol::socket socket) = 0;
    // Throws the tls_error an error of the first exchange on `stream` stands for, if it is a TLS one (a TLS 1.3
    // server refuses a client certificate only after the client has finished its handshake).
    virtual void throw_if_tls_failure(const boost::system::error_code& ec, connection_stream& stream) = 0;
};
using tls_connector_factory = std::shared_ptr<tls_connector> (*)(const engine_endpoint&);

inline std::atomic<tls_connector_factory>& tls_factory() {
    static std::atomic<tls_connector_factory> factory{nullptr};
    return factory;
}

}  // namespace detail
}  // namespace berth
