#pragma once
// Networks: list, inspect, create, remove, connect and disconnect a container, prune.
// Fields newer than the engine's API version (EnableIPv4 1.48, an endpoint's MacAddress 1.44 and GwPriority 1.48)
// are refused before anything is sent (unsupported_api_version_error).
#include <berth/detail/url.hpp>
#include <berth/engine/client_core.hpp>
#include <berth/engine/endpoint_settings.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace berth {

struct network_ipam_config {  // one entry of IPAM.Config
    std::string subnet{};     // CIDR: "198.51.100.0/24"
    std::string ip_range{};   // IPRange: the part of the subnet containers' addresses are taken from (CIDR)
    std::string gateway{};
    std::map<std::string, std::string> auxiliary_addresses{};  // AuxiliaryAddresses: name -> address kept out
};

struct network_ipam {      // IPAM: a network's IP address management
    std::string driver{};  // empty: the engine's "default"
    std::vector<network_ipam_config> config{};
    std::map<std::string, std::string> options{};  // the IPAM driver's own options
};

struct network_endpoint {  // one value of a network's Containers (EndpointResource)
    std::string name{};    // the container's name
    std::string endpoint_id{};
    std::string mac_address{};
    std::string ipv4_address{};  // CIDR, as the engine wrote it: "172.19.0.2/16"
    std::string ipv6_address{};
};

struct network_info {  // GET /networks/{id}, and each network of GET /networks
    std::string name{};
    std::string id{};
    std::string created{};  // RFC 3339 as the engine wrote it
    std::string scope{};    // "local", "swarm" or "global"
    std::string driver{};   // "bridge", "macvlan", "overlay"... (Docker reports a config-only network as "null")
    std::optional<bool> enable_ipv4{};  // EnableIPv4: reported from API 1.48 on; absent on older engines
    bool enable_ipv6 = false;
    network_ipam ipam{};
    bool internal = false;
    bool attachable = false;
    bool ingress = false;
    bool config_only = false;
    std::string config_from{};  // ConfigFrom.Network: the config-only network it takes its configuration from
    // Containers: container id -> its endpoint (filled by inspect; GET /networks leaves it empty since API 1.28)
    std::map<std::string, network_endpoint> containers{};
    std::map<std::string, std::string> options{};  // the driver's options
    std::map<std::string, std::string> labels{};
    json::object raw{};  // the whole reply (Peers, Services, Status...), for what is not typed here
};

struct network_create_result {  // POST /networks/create
    std::string id{};
    std::string warning{};  // empty when the engine had none
};

struct network_prune_result {  // POST /networks/prune
    std::vector<std::string> networks_deleted{};
};

struct network_list_options {
    // The engine's filters: {"label": {"k=v"}}, {"name": {"part"}}, {"id": {...}}, {"driver": {"macvlan"}},
    // {"scope": {"local"}}, {"type": {"custom"}} or {"builtin"}, {"dangling": {"true"}}
    std::map<std::string, std::vector<std::string>> filters{};
};

struct network_inspect_options {
    bool verbose = false;  // verbose: a swarm network's services with all their tasks, not only the local ones
    std::string scope{};   // scope: only a network of this scope ("swarm", "global", "local"); empty: any
};

struct network_create_options {
    std::string name{};         // required
    std::string driver{};       // empty: the engine's default ("bridge")
    std::string scope{};        // "local", "swarm" or "global"; empty: the driver's
    bool internal = false;      // Internal: no access outside the network
    bool attachable = false;    // Attachable: a swarm network that plain containers may join
    bool ingress = false;       // Ingress: the swarm's routing-mesh network
    bool config_only = false;   // ConfigOnly: a placeholder holding configuration for other networks (no driver)
    std::string config_from{};  // ConfigFrom.Network: the config-only network to take the configuration from
    network_ipam ipam{};        // IPAM: sent when any part of it is set
    // EnableIPv4: sent when set. Needs Engine API 1.48 (refused before sending on an older one); false needs a
    // daemon with experimental features.
    std::optional<bool> enable_ipv4{};
    std::optional<bool> enable_ipv6{};             // EnableIPv6: sent when set
    std::map<std::string, std::string> options{};  // Options: the driver's ("parent" for macvlan and ipvlan)
    std::map<std::string, std::string> labels{};
};

struct network_connect_options {
    endpoint_settings endpoint_config{};  // EndpointConfig: sent when any part of it is set
};

struct network_disconnect_options {
    bool force = false;  // Force: disconnect even when the container's endpoint is in a bad state
};

struct network_prune_options {
    // The engine's filters: {"until": {"24h"}}, {"label": {"k=v"}}, {"label!": {"k"}}
    std::map<std::string, std::vector<std::string>> filters{};
};

namespace detail {

inline json::object string_object(const std::map<std::string, std::string>& m) {
    json::object o{};
    for (auto& [k, v] : m) o[k] = v;
    return o;
}

inline bool ipam_is_empty(const network_ipam& ipam) {
    return ipam.driver.empty() && ipam.config.empty() && ipam.options.empty();
}

inline json::object to_json(const network_ipam& ipam) {
    json::object o{};
    if (!ipam.driver.empty()) o["Driver"] = ipam.driver;
    if (!ipam.config.empty()) {
        json::array configs{};
        for (auto& c : ipam.config) {
            json::object entry{};
            if (!c.subnet.empty()) entry["Subnet"] = c.subnet;
            if (!c.ip_range.empty()) entry["IPRange"] = c.ip_range;
            if (!c.gateway.empty()) entry["Gateway"] = c.gateway;
            if (!c.auxiliary_addresses.empty()) entry["AuxiliaryAddresses"] = string_object(c.auxiliary_addresses);
            configs.push_back(std::move(entry));
        }
        o["Config"] = std::move(configs);
    }
    if (!ipam.options.empty()) o["Options"] = string_object(ipam.options);
    return o;
}

}  // namespace detail

template <transport Transport>
class networks_api {
public:
    explicit networks_api(client_core<Transport>& c) : client_(c) {}

    // (Overloads, not a defaulted argument, where the options hold strings: g++ 12 double-destroys a defaulted
    // options temporary in a co_await.)

    // Engine API: GET /networks
    boost::asio::awaitable<std::vector<network_info>> list() { return list(network_list_options{}); }
    // Engine API: GET /networks
    // Each network as the list gives it: without its containers (inspect gives those).
    boost::asio::awaitable<std::vector<network_info>> list(network_list_options options) {
        detail::query q;
        add_filters(q, options.filters);
        std::string target = "/networks" + q.str();
        auto v = co_await client_.call_json(verb::get, target);
        const std::string endpoint = "GET " + target;
        std::vector<network_info> out{};
        if (v.is_null()) co_return out;
        for (auto& item : json_read::as_array(v, endpoint)) out.push_back(parse_network(item, endpoint));
        co_return out;
    }

    // Engine API: GET /networks/{id}
    boost::asio::awaitable<network_info> inspect(std::string_view id) { return inspect(id, network_inspect_options{}); }
    // Engine API: GET /networks/{id}
    // By id or name; a missing one (or one of another scope than options.scope) is a not_found_error.
    boost::asio::awaitable<network_info> inspect(std::string_view id, network_inspect_options options) {
        detail::query q;
        if (options.verbose) q.add("verbose", "true");
        q.add_if(!options.scope.empty(), "scope", options.scope);
        std::string target = path(id, "inspect") + q.str();
        auto v = co_await client_.call_json(verb::get, target);
        co_return parse_network(v, "GET " + target);
    }

    // Engine API: GET /networks/{id}
    // False when there is no such network.
    boost::asio::awaitable<bool> exists(std::string_view id) {
        try {
            co_await inspect(id);
            co_return true;
        } catch (const not_found_error&) { co_return false; }
    }

    // Engine API: POST /networks/create
    // An empty name is refused before sending (invalid_argument_error). EnableIPv4 needs Engine API 1.48.
    // Docker before API 1.44 creates a second network of a name already taken (CheckDuplicate, which berth does
    // not send, was off by default); from 1.44 on, and on Podman, that is a conflict_error.
    boost::asio::awaitable<network_create_result> create(network_create_options options) {
        const std::string target = "/networks/create";
        const std::string endpoint = "POST " + target;
        if (options.name.empty()) throw invalid_argument_error("berth::networks().create: the network name is empty");
        if (options.enable_ipv4) co_await client_.require_api("1.48", "EnableIPv4", endpoint);
        json::object body{{"Name", options.name}};
        if (!options.driver.empty()) body["Driver"] = options.driver;
        if (!options.scope.empty()) body["Scope"] = options.scope;
        if (options.internal) body["Internal"] = true;
        if (options.attachable) body["Attachable"] = true;
        if (options.ingress) body["Ingress"] = true;
        if (options.config_only) body["ConfigOnly"] = true;
        if (!options.config_from.empty()) body["ConfigFrom"] = json::object{{"Network", options.config_from}};
        if (!detail::ipam_is_empty(options.ipam)) body["IPAM"] = detail::to_json(options.ipam);
        if (options.enable_ipv4) body["EnableIPv4"] = *options.enable_ipv4;
        if (options.enable_ipv6) body["EnableIPv6"] = *options.enable_ipv6;
        if (!options.options.empty()) body["Options"] = detail::string_object(options.options);
        if (!options.labels.empty()) body["Labels"] = detail::string_object(options.labels);
        auto v = co_await client_.call_json(verb::post, target, json::serialize(body));
        auto& o = json_read::as_object(v, endpoint);
        co_return network_create_result{json_read::string_field(o, "Id", endpoint),
                                        json_read::optional_string(o, "Warning", endpoint)};
    }

    // Engine API: DELETE /networks/{id}
    // A missing network is a not_found_error; a pre-defined one ("none", "host") an engine_error (Docker: 403).
    boost::asio::awaitable<void> remove(std::string_view id) {
        std::string target = path(id, "remove");
        co_await client_.call(verb::delete_, target);
    }

    // Engine API: POST /networks/{id}/connect
    boost::asio::awaitable<void> connect(std::string_view id, std::string_view container) {
        return connect(id, container, network_connect_options{});
    }
    // Engine API: POST /networks/{id}/connect
    // Joins a container to the network. A container in network mode "none" cannot join any other network: Docker
    // refuses with 400, Podman with 500 (both engine_error). A missing container or network is a not_found_error.
    boost::asio::awaitable<void> connect(std::string_view id, std::string_view container,
                                         network_connect_options options) {
        const std::string target = path(id, "connect") + "/connect";
        const std::string endpoint = "POST " + target;
        if (container.empty()) throw invalid_argument_error("berth::networks().connect: the container name is empty");
        const auto& settings = options.endpoint_config;
        if (!settings.mac_address.empty())
            co_await client_.require_api("1.44", "an endpoint's MacAddress on connect", endpoint);
        if (settings.gw_priority) co_await client_.require_api("1.48", "an endpoint's GwPriority", endpoint);
        json::object body{{"Container", container}};
        if (!detail::endpoint_is_empty(settings)) body["EndpointConfig"] = detail::to_json(settings);
        co_await client_.call(verb::post, target, json::serialize(body));
    }

    // Engine API: POST /networks/{id}/disconnect
    boost::asio::awaitable<void> disconnect(std::string_view id, std::string_view container,
                                            network_disconnect_options options = {}) {
        const std::string target = path(id, "disconnect") + "/disconnect";
        if (container.empty())
            throw invalid_argument_error("berth::networks().disconnect: the container name is empty");
        json::object body{{"Container", container}, {"Force", options.force}};
        co_await client_.call(verb::post, target, json::serialize(body));
    }

    // Engine API: POST /networks/prune
    // Removes the networks no container uses (Docker keeps config-only networks).
    boost::asio::awaitable<network_prune_result> prune() { return prune(network_prune_options{}); }
    // Engine API: POST /networks/prune
    boost::asio::awaitable<network_prune_result> prune(network_prune_options options) {
        detail::query q;
        add_filters(q, options.filters);
        std::string target = "/networks/prune" + q.str();
        auto v = co_await client_.call_json(verb::post, target);
        const std::string endpoint = "POST " + target;
        auto& o = json_read::as_object(v, endpoint);
        co_return network_prune_result{json_read::optional_strings(o, "NetworksDeleted", endpoint)};
    }

private:
    // The path of one network; an empty id would address the collection instead, so it is refused.
    static std::string path(std::string_view id, std::string_view operation) {
        if (id.empty())
            throw invalid_argument_error("berth::networks()." + std::string(operation) + ": the network id is empty");
        return "/networks/" + detail::percent_encode(id);
    }

    static void add_filters(detail::query& q, const std::map<std::string, std::vector<std::string>>& filters) {
        if (filters.empty()) return;
        json::object f{};
        for (auto& [k, vals] : filters) f[k] = json::array(vals.begin(), vals.end());
        q.add("filters", json::serialize(f));
    }

    static network_ipam parse_ipam(const json::object& o, const std::string& endpoint) {
        network_ipam ipam{};
        ipam.driver = json_read::optional_string(o, "Driver", endpoint);
        ipam.options = json_read::optional_string_map(o, "Options", endpoint);
        if (auto* p = o.if_contains("Config"); p != nullptr && !p->is_null()) {
            if (!p->is_array()) throw protocol_error(endpoint, "field 'IPAM.Config' is not an array");
            for (auto& item : p->get_array()) {
                if (!item.is_object()) throw protocol_error(endpoint, "field 'IPAM.Config' holds a non-object");
                auto& c = item.get_object();
                ipam.config.push_back(
                    network_ipam_config{json_read::optional_string(c, "Subnet", endpoint),
                                        json_read::optional_string(c, "IPRange", endpoint),
                                        json_read::optional_string(c, "Gateway", endpoint),
                                        json_read::optional_string_map(c, "AuxiliaryAddresses", endpoint)});
            }
        }
        return ipam;
    }

    static network_info parse_network(const json::value& v, const std::string& endpoint) {
        auto& o = json_read::as_object(v, endpoint);
        network_info info{};
        info.name = json_read::string_field(o, "Name", endpoint);
        info.id = json_read::string_field(o, "Id", endpoint);
        info.created = json_read::optional_string(o, "Created", endpoint);
        info.scope = json_read::optional_string(o, "Scope", endpoint);
        info.driver = json_read::optional_string(o, "Driver", endpoint);
        if (auto* p = o.if_contains("EnableIPv4"); p != nullptr && !p->is_null())
            info.enable_ipv4 = json_read::optional_bool(o, "EnableIPv4", endpoint);
        info.enable_ipv6 = json_read::optional_bool(o, "EnableIPv6", endpoint);
        if (auto* ipam = json_read::optional_object(o, "IPAM", endpoint)) info.ipam = parse_ipam(*ipam, endpoint);
        info.internal = json_read::optional_bool(o, "Internal", endpoint);
        info.attachable = json_read::optional_bool(o, "Attachable", endpoint);
        info.ingress = json_read::optional_bool(o, "Ingress", endpoint);
        info.config_only = json_read::optional_bool(o, "ConfigOnly", endpoint);
        if (auto* from = json_read::optional_object(o, "ConfigFrom", endpoint))
            info.config_from = json_read::optional_string(*from, "Network", endpoint);
        if (auto* containers = json_read::optional_object(o, "Containers", endpoint)) {
            for (auto& [cid, ep] : *containers) {
                if (!ep.is_object()) throw protocol_error(endpoint, "field 'Containers' holds a non-object");
                auto& e = ep.get_object();
                info.containers.emplace(std::string(cid),
                                        network_endpoint{json_read::optional_string(e, "Name", endpoint),
                                                         json_read::optional_string(e, "EndpointID", endpoint),
                                                         json_read::optional_string(e, "MacAddress", endpoint),
                                                         json_read::optional_string(e, "IPv4Address", endpoint),
                                                         json_read::optional_string(e, "IPv6Address", endpoint)});
            }
        }
        info.options = json_read::optional_string_map(o, "Options", endpoint);
        info.labels = json_read::optional_string_map(o, "Labels", endpoint);
        info.raw = o;
        return info;
    }

    client_core<Transport>& client_;
};

}  // namespace berth
