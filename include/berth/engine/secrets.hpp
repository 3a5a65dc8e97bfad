#pragma once
// Swarm secrets (client.secrets()), on a Swarm manager: create, inspect, list, update (labels only) and remove.
// A secret's data is given as bytes and never comes back: inspect and list return its spec without it. Services
// mount a secret by reference (ContainerSpec.Secrets). The requests are shared with configs (swarm_object.hpp).
// An engine that is not a Swarm manager refuses every call (Docker: an engine_error with status 503).
#include <berth/engine/swarm_object.hpp>

namespace berth {

struct secret_spec {  // SecretSpec
    std::string name{};
    std::map<std::string, std::string> labels{};
    // The secret itself, as bytes (berth base64-encodes it; at most 500 KB). Only sent: a secret read back has it
    // empty. Must be empty when `driver` is set.
    std::string data{};
    std::optional<swarm_driver> driver{};      // a secrets driver that fetches the data from an external store
    std::optional<swarm_driver> templating{};  // a templating driver ("golang"); none: the data is used as it is
};

using secret_info = swarm_object_info<secret_spec>;
using secret_list_options = swarm_object_list_options;
using secret_update_options = swarm_object_update_options<secret_spec>;

template <transport Transport>
class secrets_api {
public:
    explicit secrets_api(client_core<Transport>& c) : impl_(c, "secret", "/secrets") {}

    // Engine API: GET /secrets
    boost::asio::awaitable<std::vector<secret_info>> list() { return impl_.list({}); }
    // Engine API: GET /secrets
    boost::asio::awaitable<std::vector<secret_info>> list(secret_list_options options) {
        return impl_.list(std::move(options));
    }

    // Engine API: POST /secrets/create
    // The new secret's ID. A name in use is a conflict_error. The data is kept out of error messages.
    boost::asio::awaitable<std::string> create(secret_spec spec) { return impl_.create(std::move(spec)); }

    // Engine API: GET /secrets/{id}
    boost::asio::awaitable<secret_info> inspect(std::string_view id_or_name) { return impl_.inspect(id_or_name); }

    // Engine API: GET /secrets/{id}
    // False when there is no such secret.
    boost::asio::awaitable<bool> exists(std::string_view id_or_name) { return impl_.exists(id_or_name); }

    // Engine API: POST /secrets/{id}/update
    // Only the labels may change (see secret_update_options): Docker refuses anything else with a 400.
    boost::asio::awaitable<void> update(std::string_view id_or_name, secret_update_options options) {
        return impl_.update(id_or_name, std::move(options));
    }

    // Engine API: DELETE /secrets/{id}
    // A missing secret is a not_found_error; one a service uses is refused (Docker: 400).
    boost::asio::awaitable<void> remove(std::string_view id_or_name) { return impl_.remove(id_or_name); }

private:
    detail::swarm_object_endpoints<Transport, secret_spec> impl_;
};

}  // namespace berth
