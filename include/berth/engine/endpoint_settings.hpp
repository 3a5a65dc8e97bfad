#pragma once
// EndpointSettings: how a container joins one network, as POST /networks/{id}/connect and the NetworkingConfig of
// POST /containers/create both take it. Only what is set is written; the version gates are the caller's.
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace berth {

struct endpoint_ipam_config {  // EndpointSettings.IPAMConfig: static addresses
    std::string ipv4_address{};
    std::string ipv6_address{};
    std::vector<std::string> link_local_ips{};  // LinkLocalIPs
};

struct endpoint_settings {               // EndpointSettings: how a container joins a network
    endpoint_ipam_config ipam_config{};  // IPAMConfig: sent when any address is set
    std::vector<std::string> links{};    // "container:alias"
    std::vector<std::string> aliases{};
    // MacAddress: needs Engine API 1.44 (refused before sending on an older one). Docker applies it on connect
    // only from API 1.54 on: 1.44 to 1.53 accept and ignore it.
    std::string mac_address{};
    std::map<std::string, std::string> driver_opts{};  // DriverOpts: passed to the driver as they are
    std::optional<std::int64_t> gw_priority{};  // GwPriority (API 1.48): the highest provides the default gateway
};

namespace detail {

inline bool endpoint_is_empty(const endpoint_settings& s) {
    return s.ipam_config.ipv4_address.empty() && s.ipam_config.ipv6_address.empty() &&
           s.ipam_config.link_local_ips.empty() && s.links.empty() && s.aliases.empty() && s.mac_address.empty() &&
           s.driver_opts.empty() && !s.gw_priority;
}

// EndpointSettings as the engine's JSON (only what is set); the version gates are the caller's.
inline boost::json::object to_json(const endpoint_settings& s) {
    boost::json::object o{};
    const auto& ipam = s.ipam_config;
    if (!ipam.ipv4_address.empty() || !ipam.ipv6_address.empty() || !ipam.link_local_ips.empty()) {
        boost::json::object a{};
        if (!ipam.ipv4_address.empty()) a["IPv4Address"] = ipam.ipv4_address;
        if (!ipam.ipv6_address.empty()) a["IPv6Address"] = ipam.ipv6_address;
        if (!ipam.link_local_ips.empty())
            a["LinkLocalIPs"] = boost::json::array(ipam.link_local_ips.begin(), ipam.link_local_ips.end());
        o["IPAMConfig"] = std::move(a);
    }
    if (!s.links.empty()) o["Links"] = boost::json::array(s.links.begin(), s.links.end());
    if (!s.aliases.empty()) o["Aliases"] = boost::json::array(s.aliases.begin(), s.aliases.end());
    if (!s.mac_address.empty()) o["MacAddress"] = s.mac_address;
    if (!s.driver_opts.empty()) {
        boost::json::object opts{};
        for (auto& [k, v] : s.driver_opts) opts[k] = v;
        o["DriverOpts"] = std::move(opts);
    }
    if (s.gw_priority) o["GwPriority"] = *s.gw_priority;
    return o;
}

}  // namespace detail
}  // namespace berth
