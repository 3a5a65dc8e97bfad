#pragma once
// The typed request of POST /containers/create: field names follow the engine's JSON (Engine API v1.41,
// ContainerConfig + HostConfig); only what is set is sent, so the engine's defaults stay the defaults.
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace berth {

struct device_request {    // HostConfig.DeviceRequests[]: GPUs on Docker
    std::string driver{};  // "" lets the engine pick ("nvidia")
    int count = 0;         // -1: all devices
    std::vector<std::string> device_ids{};
    std::vector<std::vector<std::string>> capabilities{};  // e.g. {{"gpu"}}
    std::map<std::string, std::string> options{};
};

struct device_mapping {  // HostConfig.Devices[]: a host device, or a CDI name ("nvidia.com/gpu=all") on Podman
    std::string path_on_host{};
    std::string path_in_container{};
    std::string cgroup_permissions = "rwm";
};

struct mount_point {            // HostConfig.Mounts[]
    std::string type = "bind";  // bind, volume, tmpfs
    std::string source{};
    std::string target{};
    bool read_only = false;
};

struct host_config {
    std::vector<std::string> binds{};  // "host:container[:ro|rw]"
    std::vector<mount_point> mounts{};
    std::string network_mode{};  // "none", "host", a network name; empty: the engine's default
    std::vector<device_request> device_requests{};
    std::vector<device_mapping> devices{};
    bool privileged = false;
    std::optional<bool> init{};  // run an init process as PID 1 (forwards signals, reaps zombies)
    bool auto_remove = false;
    std::int64_t memory = 0;     // bytes; 0: unlimited
    std::int64_t nano_cpus = 0;  // 1e9 = one CPU
    std::optional<std::int64_t> pids_limit{};
    std::optional<std::int64_t> shm_size{};
    std::vector<std::string> cap_add, cap_drop{};
    std::vector<std::string> security_opt{};
    std::map<std::string, std::string> tmpfs{};
};

struct container_config {
    std::string image{};
    std::vector<std::string> cmd{};
    std::optional<std::vector<std::string>> entrypoint{};
    std::vector<std::string> env{};  // "KEY=value"
    std::string working_dir{};
    std::string user{};
    std::string hostname{};
    std::map<std::string, std::string> labels{};
    bool tty = false;
    bool open_stdin = false;
    std::optional<std::string> stop_signal{};
    std::optional<int> stop_timeout{};
    host_config host;
    // Anything else of ContainerConfig, merged last (it wins over the typed fields).
    boost::json::object extra{};
};

namespace detail {
template <class Map>
boost::json::object to_json_map(const Map& m) {
    boost::json::object o{};
    for (auto& [k, v] : m) o[k] = v;
    return o;
}
inline boost::json::array to_json_strings(const std::vector<std::string>& v) {
    return boost::json::array(v.begin(), v.end());
}
}  // namespace detail

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, const device_request& r) {
    boost::json::object o{};
    o["Driver"] = r.driver;
    o["Count"] = r.count;
    o["DeviceIDs"] = detail::to_json_strings(r.device_ids);
    boost::json::array caps{};
    for (auto& c : r.capabilities) caps.push_back(detail::to_json_strings(c));
    o["Capabilities"] = std::move(caps);
    o["Options"] = detail::to_json_map(r.options);
    jv = std::move(o);
}

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, const device_mapping& d) {
    jv = {{"PathOnHost", d.path_on_host},
          {"PathInContainer", d.path_in_container},
          {"CgroupPermissions", d.cgroup_permissions}};
}

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, const mount_point& m) {
    jv = {{"Type", m.type}, {"Source", m.source}, {"Target", m.target}, {"ReadOnly", m.read_only}};
}

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, const host_config& h) {
    boost::json::object o{};
    if (!h.binds.empty()) o["Binds"] = detail::to_json_strings(h.binds);
    if (!h.mounts.empty()) o["Mounts"] = boost::json::value_from(h.mounts);
    if (!h.network_mode.empty()) o["NetworkMode"] = h.network_mode;
    if (!h.device_requests.empty()) o["DeviceRequests"] = boost::json::value_from(h.device_requests);
    if (!h.devices.empty()) o["Devices"] = boost::json::value_from(h.devices);
    if (h.privileged) o["Privileged"] = true;
    if (h.init) o["Init"] = *h.init;
    if (h.auto_remove) o["AutoRemove"] = true;
    if (h.memory) o["Memory"] = h.memory;
    if (h.nano_cpus) o["NanoCpus"] = h.nano_cpus;
    if (h.pids_limit) o["PidsLimit"] = *h.pids_limit;
    if (h.shm_size) o["ShmSize"] = *h.shm_size;
    if (!h.cap_add.empty()) o["CapAdd"] = detail::to_json_strings(h.cap_add);
    if (!h.cap_drop.empty()) o["CapDrop"] = detail::to_json_strings(h.cap_drop);
    if (!h.security_opt.empty()) o["SecurityOpt"] = detail::to_json_strings(h.security_opt);
    if (!h.tmpfs.empty()) o["Tmpfs"] = detail::to_json_map(h.tmpfs);
    jv = std::move(o);
}

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, const container_config& c) {
    boost::json::object o{};
    o["Image"] = c.image;
    if (!c.cmd.empty()) o["Cmd"] = detail::to_json_strings(c.cmd);
    if (c.entrypoint) o["Entrypoint"] = detail::to_json_strings(*c.entrypoint);
    if (!c.env.empty()) o["Env"] = detail::to_json_strings(c.env);
    if (!c.working_dir.empty()) o["WorkingDir"] = c.working_dir;
    if (!c.user.empty()) o["User"] = c.user;
    if (!c.hostname.empty()) o["Hostname"] = c.hostname;
    if (!c.labels.empty()) o["Labels"] = detail::to_json_map(c.labels);
    if (c.tty) o["Tty"] = true;
    if (c.open_stdin) o["OpenStdin"] = true;
    if (c.stop_signal) o["StopSignal"] = *c.stop_signal;
    if (c.stop_timeout) o["StopTimeout"] = *c.stop_timeout;
    o["HostConfig"] = boost::json::value_from(c.host);
    for (auto& [k, v] : c.extra) o[k] = v;
    jv = std::move(o);
}

}  // namespace berth
