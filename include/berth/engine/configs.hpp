#pragma once
// Swarm configs (client.configs()), on a Swarm manager: create, inspect, list, update (labels only) and remove.
// Unlike a secret's, a config's data comes back in inspect and list. Services mount a config by reference
// (ContainerSpec.Configs). The requests are shared with secrets (swarm_object.hpp). An engine that is not a Swarm
// manager refuses every call (Docker: an engine_error with status 503).
#include <berth/engine/swarm_object.hpp>

namespace berth {

struct config_spec {  // ConfigSpec
    std::string name{};
    std::map<std::string, std::string> labels{};
    std::string data{};                        // the config, as bytes (berth base64-encodes it; at most 1000 KB)
    std::optional<swarm_driver> templating{};  // a templating driver ("golang"); none: the data is used as it is
};

using config_info = swarm_object_info<config_spec>;
using config_list_options = swarm_object_list_options;
using config_update_options = swarm_object_update_options<config_spec>;

template <transport Transport>
class configs_api {
public:
    explicit configs_api(client_core<Transport>& c) : impl_(c, "config", "/configs") {}

    // Engine API: GET /configs
    boost::asio::awaitable<std::vector<config_info>> list() { return impl_.list({}); }
    // Engine API: GET /configs
    boost::asio::awaitable<std::vector<config_info>> list(config_list_options options) {
        return impl_.list(std::move(options));
    }

    // Engine API: POST /configs/create
    // The new config's ID. A name in use is a conflict_error.
    boost::asio::awaitable<std::string> create(config_spec spec) { return impl_.create(std::move(spec)); }

    // Engine API: GET /configs/{id}
    boost::asio::awaitable<config_info> inspect(std::string_view id_or_name) { return impl_.inspect(id_or_name); }

    // Engine API: GET /configs/{id}
    // False when there is no such config.
    boost::asio::awaitable<bool> exists(std::string_view id_or_name) { return impl_.exists(id_or_name); }

    // Engine API: POST /configs/{id}/update
    // Only the labels may change (see config_update_options): Docker refuses anything else with a 400.
    boost::asio::awaitable<void> update(std::string_view id_or_name, config_update_options options) {
        return impl_.update(id_or_name, std::move(options));
    }

    // Engine API: DELETE /configs/{id}
    // A missing config is a not_found_error; one a service uses is refused (Docker: 400).
    boost::asio::awaitable<void> remove(std::string_view id_or_name) { return impl_.remove(id_or_name); }

private:
    detail::swarm_object_endpoints<Transport, config_spec> impl_;
};

}  // namespace berth
