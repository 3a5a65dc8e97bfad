#pragma once
// basic_client<Transport>: the Docker Engine API client. Resources are reached through containers(), images(),
// execs(), archives() and system(); the client itself answers version(), api_version() and kind(). Movable: its
// state lives in a client_core at a fixed address, so operations in flight keep working when the handle moves.
#include <berth/engine/archive.hpp>
#include <berth/engine/client_core.hpp>
#include <berth/engine/containers.hpp>
#include <berth/engine/exec.hpp>
#include <berth/engine/images.hpp>
#include <berth/engine/system.hpp>

namespace berth {

template <transport Transport>
class basic_client {
public:
    using transport_type = Transport;

    explicit basic_client(Transport transport) : basic_client(std::move(transport), client_options{}) {}
    basic_client(Transport transport, client_options options)
        : core_(std::make_unique<client_core<Transport>>(std::move(transport), std::move(options))) {}

    // The engine named by DOCKER_HOST (unix:// or tcp://), else /var/run/docker.sock. Throws invalid_host.
    static basic_client from_env(boost::asio::any_io_executor ex)
        requires std::same_as<Transport, socket_transport>
    {
        return from_env(std::move(ex), client_options{});
    }
    static basic_client from_env(boost::asio::any_io_executor ex, client_options options)
        requires std::same_as<Transport, socket_transport>
    {
        return basic_client(socket_transport(std::move(ex), docker_host_from_env()), std::move(options));
    }
    // The engine at an address in DOCKER_HOST syntax. Throws invalid_host.
    static basic_client at(boost::asio::any_io_executor ex, std::string_view address)
        requires std::same_as<Transport, socket_transport>
    {
        return at(std::move(ex), address, client_options{});
    }
    static basic_client at(boost::asio::any_io_executor ex, std::string_view address, client_options options)
        requires std::same_as<Transport, socket_transport>
    {
        return basic_client(socket_transport(std::move(ex), parse_docker_host(address)), std::move(options));
    }

    containers_api<Transport>& containers() { return core_->containers(); }
    images_api<Transport>& images() { return core_->images(); }
    exec_api<Transport>& execs() { return core_->execs(); }
    archive_api<Transport>& archives() { return core_->archives(); }
    system_api<Transport>& system() { return core_->system(); }

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

} // namespace berth
