#pragma once
// basic_client<Transport>: the Docker Engine API client. Resources are reached through containers(), images(),
// execs(), archives(), system(), swarm(), volumes(), networks(), secrets(), configs(), plugins(), distribution(),
// and raw() for any request without a typed call; the client itself answers version(), api_version() and kind().
// Movable: its state lives in a client_core at a fixed address, so operations in flight keep working when the
// handle moves.
#include <berth/version.hpp>  // first: the C++20 check
#include <berth/engine/archive.hpp>
#include <berth/engine/client_core.hpp>
#include <berth/engine/configs.hpp>
#include <berth/engine/containers.hpp>
#include <berth/engine/distribution.hpp>
#include <berth/engine/exec.hpp>
#include <berth/engine/images.hpp>
#include <berth/engine/networks.hpp>
#include <berth/engine/secrets.hpp>
#include <berth/engine/plugins.hpp>
#include <berth/engine/raw.hpp>
#include <berth/engine/swarm.hpp>
#include <berth/engine/system.hpp>
#include <berth/engine/volumes.hpp>
#include <berth/transport/docker_context.hpp>
#include <berth/transport/socket_transport.hpp>

namespace berth {

template <transport Transport>
class basic_client {
public:
    using transport_type = Transport;

    explicit basic_client(Transport transport) : basic_client(std::move(transport), client_options{}) {}
    basic_client(Transport transport, client_options options)
        : core_(std::make_unique<client_core<Transport>>(std::move(transport), std::move(options))) {}

    // The engine the docker CLI would use: DOCKER_HOST (with DOCKER_TLS_VERIFY / DOCKER_CERT_PATH), else the
    // context named by DOCKER_CONTEXT, else config.json's current context, else /var/run/docker.sock. Throws
    // invalid_host, context_error, or tls_error (TLS asked for without <berth/transport/tls.hpp>, unusable material).
    static basic_client from_env(boost::asio::any_io_executor ex,
                                 client_options options) requires std::same_as<Transport, socket_transport> {
        return at(std::move(ex), docker_endpoint_from_env(), std::move(options));
    }
    // An overload, not a defaulted argument: `from_env(co_await this_coro::executor)` would otherwise build the
    // default client_options as a temporary in the coroutine frame, which g++ 12 miscompiles (a freed pointer).
    static basic_client from_env(boost::asio::any_io_executor ex) requires std::same_as<Transport, socket_transport> {
        return from_env(std::move(ex), client_options{});
    }
    // The engine at an address in DOCKER_HOST syntax: unix://, tcp:// (plain) or ssh://. Throws invalid_host.
    static basic_client at(boost::asio::any_io_executor ex, std::string_view address,
                           client_options options) requires std::same_as<Transport, socket_transport> {
        return at(std::move(ex), engine_endpoint{.address = parse_docker_host(address)}, std::move(options));
    }
    static basic_client at(boost::asio::any_io_executor ex,
                           std::string_view address) requires std::same_as<Transport, socket_transport> {
        return at(std::move(ex), address, client_options{});
    }
    // The engine at an endpoint: an address with TLS material or ssh options. Throws tls_error as from_env.
    static basic_client at(boost::asio::any_io_executor ex, engine_endpoint endpoint,
                           client_options options) requires std::same_as<Transport, socket_transport> {
        return basic_client(socket_transport(std::move(ex), std::move(endpoint)), std::move(options));
    }
    static basic_client at(boost::asio::any_io_executor ex,
                           engine_endpoint endpoint) requires std::same_as<Transport, socket_transport> {
        return at(std::move(ex), std::move(endpoint), client_options{});
    }
    // The engine of a named Docker context ("default": the environment's). Throws context_error as well.
    static basic_client from_context(boost::asio::any_io_executor ex, std::string_view name,
                                     client_options options) requires std::same_as<Transport, socket_transport> {
        return at(std::move(ex), load_docker_context(name).endpoint, std::move(options));
    }
    static basic_client from_context(boost::asio::any_io_executor ex,
                                     std::string_view name) requires std::same_as<Transport, socket_transport> {
        return from_context(std::move(ex), name, client_options{});
    }

    containers_api<Transport>& containers() { return core_->containers(); }
    images_api<Transport>& images() { return core_->images(); }
    exec_api<Transport>& execs() { return core_->execs(); }
    archive_api<Transport>& archives() { return core_->archives(); }
    system_api<Transport>& system() { return core_->system(); }
    swarm_api<Transport>& swarm() { return core_->swarm(); }  // a Swarm manager's services, tasks and nodes
    volumes_api<Transport>& volumes() { return core_->volumes(); }
    networks_api<Transport>& networks() { return core_->networks(); }
    secrets_api<Transport>& secrets() { return core_->secrets(); }                 // a Swarm manager's secrets
    configs_api<Transport>& configs() { return core_->configs(); }                 // a Swarm manager's configs
    plugins_api<Transport>& plugins() { return core_->plugins(); }                 // Docker's managed plugins
    distribution_api<Transport>& distribution() { return core_->distribution(); }  // a registry's manifests
    // Any request, for what has no typed call (endpoints after Engine API 1.56): send, open (streamed), upgrade.
    raw_requests<Transport>& raw() { return core_->raw(); }

    // Engine API: GET /version
    boost::asio::awaitable<engine_version> version() { return core_->version(); }
    boost::asio::awaitable<std::string> api_version() { return core_->api_version(); }
    boost::asio::awaitable<engine_kind> kind() { return core_->kind(); }

    boost::asio::any_io_executor get_executor() { return core_->get_executor(); }
    Transport& transport() { return core_->transport(); }
    const client_options& options() const { return core_->options(); }
    // Connections open right now (idle and in use): for leak checks.
    std::size_t open_connections() const { return core_->open_connections(); }
    std::size_t idle_connections() const { return core_->idle_connections(); }
    void close_idle_connections() { core_->close_idle_connections(); }

    // The layer the resource APIs are written on, for endpoints berth has no typed call for.
    client_core<Transport>& core() { return *core_; }

private:
    std::unique_ptr<client_core<Transport>> core_;
};

using client = basic_client<socket_transport>;

}  // namespace berth
