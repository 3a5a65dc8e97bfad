#pragma once
// basic_kube_client<Transport>: a Kubernetes API server client. kube_client (on socket_transport) is built from a
// kubeconfig: TLS with the cluster's CA and the user's client certificate (files or inline data), or a bearer
// token; the context's namespace is the default of every call. Resources: pods(). transport(), auth_headers() and
// core() serve streams opened outside the typed calls (exec's WebSocket). Movable: the state lives in a
// kube_client_core at a fixed address.
//
// A kube_client needs TLS for an https:// server: #include <berth/transport/tls.hpp> in the program and link
// OpenSSL (-lssl -lcrypto), as for a TLS engine.
#include <berth/version.hpp>  // first: the C++20 check
#include <berth/kubernetes/client_core.hpp>
#include <berth/kubernetes/kubeconfig.hpp>
#include <berth/kubernetes/pods.hpp>
#include <berth/transport/socket_transport.hpp>

#include <memory>

namespace berth::kubernetes {

template <transport Transport>
class basic_kube_client {
public:
    using transport_type = Transport;

    basic_kube_client(Transport transport, kube_connection connection, kube_client_options options)
        : core_(std::make_unique<kube_client_core<Transport>>(std::move(transport), std::move(connection),
                                                              std::move(options))) {}
    basic_kube_client(Transport transport, kube_connection connection)
        : basic_kube_client(std::move(transport), std::move(connection), kube_client_options{}) {}

    // The cluster of a resolved kubeconfig context. Throws tls_error when TLS material cannot be used (or the
    // program lacks <berth/transport/tls.hpp>).
    static basic_kube_client at(boost::asio::any_io_executor ex, kube_connection connection,
                                kube_client_options options) requires std::same_as<Transport, socket_transport> {
        engine_endpoint endpoint{.address = connection.address, .tls = connection.tls};
        endpoint.probe_path = connection.path_prefix + "/version";  // an API server's; /_ping would be a 404
        return basic_kube_client(socket_transport(std::move(ex), std::move(endpoint)), std::move(connection),
                                 std::move(options));
    }
    static basic_kube_client at(boost::asio::any_io_executor ex,
                                kube_connection connection) requires std::same_as<Transport, socket_transport> {
        return at(std::move(ex), std::move(connection), kube_client_options{});
    }
    // The kubeconfig's context (KUBECONFIG, ~/.kube/config or options.path; the current context unless named).
    // Throws kubeconfig_error as well.
    static basic_kube_client from_kubeconfig(
        boost::asio::any_io_executor ex, kubeconfig_load_options load,
        kube_client_options options) requires std::same_as<Transport, socket_transport> {
        return at(std::move(ex), kube_connection_from_kubeconfig(load), std::move(options));
    }
    static basic_kube_client from_kubeconfig(boost::asio::any_io_executor ex, kubeconfig_load_options load) requires
        std::same_as<Transport, socket_transport> {
        return from_kubeconfig(std::move(ex), std::move(load), kube_client_options{});
    }

    pods_api<Transport>& pods() { return core_->pods(); }

    const std::string& namespace_name() const { return core_->namespace_name(); }
    const kube_connection& connection() const { return core_->connection(); }
    Transport& transport() { return core_->transport(); }
    boost::asio::any_io_executor get_executor() { return core_->get_executor(); }
    std::vector<std::pair<std::string, std::string>> auth_headers() const { return core_->auth_headers(); }
    std::size_t open_connections() const { return core_->open_connections(); }
    std::size_t idle_connections() const { return core_->idle_connections(); }
    void close_idle_connections() { core_->close_idle_connections(); }

    // The layer the resource APIs are written on (requests with the auth headers, Status errors typed).
    kube_client_core<Transport>& core() { return *core_; }

private:
    std::unique_ptr<kube_client_core<Transport>> core_;
};

using kube_client = basic_kube_client<socket_transport>;

}  // namespace berth::kubernetes
