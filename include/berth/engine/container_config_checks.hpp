#pragma once
// What containers().create checks before sending anything: obviously bad values (invalid_argument_error), and the
// Engine API version each field newer than 1.40 needs (the create refuses it with require_api on an older engine).
#include <berth/engine/container_config.hpp>
#include <berth/error.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace berth {

namespace detail {

// One field the configuration sets that needs Engine API `version` or newer.
struct api_gate {
    std::string_view version{};
    std::string feature{};
};

// The newer-than-1.40 fields the configuration sets, each with the API version it needs (create refuses them,
// before sending, on an older engine). `extra` is the caller's to keep to the version.
inline std::vector<api_gate> container_config_gates(const container_config& c) {
    std::vector<api_gate> gates{};
    const auto& h = c.host;
    if (!c.platform.empty()) gates.push_back({"1.41", "the platform query parameter"});
    if (!h.cgroupns_mode.empty()) gates.push_back({"1.41", "HostConfig.CgroupnsMode"});
    if (h.console_size) gates.push_back({"1.42", "HostConfig.ConsoleSize"});
    if (!h.annotations.empty()) gates.push_back({"1.43", "HostConfig.Annotations"});
    if (c.healthcheck && c.healthcheck->start_interval.count()) gates.push_back({"1.44", "Healthcheck.StartInterval"});
    for (auto& m : h.mounts) {
        if (m.bind_options.create_mountpoint) gates.push_back({"1.42", "a bind mount's CreateMountpoint"});
        if (m.bind_options.read_only_non_recursive) gates.push_back({"1.44", "a bind mount's ReadOnlyNonRecursive"});
        if (m.bind_options.read_only_force_recursive)
            gates.push_back({"1.44", "a bind mount's ReadOnlyForceRecursive"});
        if (!m.volume_options.subpath.empty()) gates.push_back({"1.45", "a volume mount's Subpath"});
        if (!m.tmpfs_options.options.empty()) gates.push_back({"1.46", "a tmpfs mount's Options"});
        if (m.type == "image") gates.push_back({"1.48", "a mount of type image"});
    }
    if (c.networking.endpoints_config.size() > 1) gates.push_back({"1.44", "more than one network at create"});
    for (auto& [network, settings] : c.networking.endpoints_config) {
        if (!settings.mac_address.empty()) gates.push_back({"1.44", "an endpoint's MacAddress"});
        if (settings.gw_priority) gates.push_back({"1.48", "an endpoint's GwPriority"});
    }
    return gates;
}

// The container-wide MacAddress is gone from this API version on (use an endpoint's mac_address).
inline constexpr std::string_view container_mac_address_removed_in = "1.52";

// `call`: the containers() call whose options are refused (create, update).
[[noreturn]] inline void refuse_config(const std::string& what, std::string_view call = "create") {
    throw invalid_argument_error("berth::containers()." + std::string(call) + ": " + what);
}

inline bool parse_port(std::string_view text, int& port) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    return ec == std::errc{} && end == text.data() + text.size() && port >= 1 && port <= 65535;
}

// "80", "80/tcp", "8000-8010/udp": a port or an ascending range, and tcp, udp or sctp.
inline bool valid_port_spec(std::string_view spec, bool protocol_allowed = true) {
    std::string_view ports = spec;
    if (auto slash = spec.find('/'); slash != std::string_view::npos) {
        auto protocol = spec.substr(slash + 1);
        if (!protocol_allowed || (protocol != "tcp" && protocol != "udp" && protocol != "sctp")) return false;
        ports = spec.substr(0, slash);
    }
    int first = 0, last = 0;
    if (auto dash = ports.find('-'); dash != std::string_view::npos)
        return parse_port(ports.substr(0, dash), first) && parse_port(ports.substr(dash + 1), last) && first <= last;
    return parse_port(ports, first);
}

inline void validate_mount(const mount_point& m) {
    static constexpr std::string_view types[] = {"bind", "volume", "tmpfs", "npipe", "cluster", "image"};
    if (std::find(std::begin(types), std::end(types), m.type) == std::end(types))
        refuse_config("unknown mount type \"" + m.type + "\" (bind, volume, tmpfs, npipe, cluster or image)");
    if (m.target.empty()) refuse_config("a " + m.type + " mount without a target");
    if (m.type == "tmpfs" && !m.source.empty()) refuse_config("a tmpfs mount takes no source");
    if (!is_empty(m.bind_options) && m.type != "bind") refuse_config("bind_options on a " + m.type + " mount");
    if (!is_empty(m.volume_options) && m.type != "volume") refuse_config("volume_options on a " + m.type + " mount");
    if (!is_empty(m.tmpfs_options) && m.type != "tmpfs") refuse_config("tmpfs_options on a " + m.type + " mount");
    if (!is_empty(m.image_options) && m.type != "image") refuse_config("image_options on a " + m.type + " mount");
    if (m.tmpfs_options.size_bytes < 0) refuse_config("a negative tmpfs size");
    for (auto& option : m.tmpfs_options.options)
        if (option.empty() || option.size() > 2 || option[0].empty())
            refuse_config("a tmpfs option is {\"flag\"} or {\"key\", \"value\"}");
}

inline void validate_health(const health_config& h) {
    if (!h.test.empty() && h.test[0] != "NONE" && h.test[0] != "CMD" && h.test[0] != "CMD-SHELL")
        refuse_config("a healthcheck test starts with NONE, CMD or CMD-SHELL, not \"" + h.test[0] + "\"");
    const std::pair<std::chrono::nanoseconds, const char*> durations[] = {{h.interval, "interval"},
                                                                          {h.timeout, "timeout"},
                                                                          {h.start_period, "start_period"},
                                                                          {h.start_interval, "start_interval"}};
    for (auto& [d, name] : durations)
        if (d.count() < 0 || (d.count() > 0 && d < std::chrono::milliseconds(1)))
            refuse_config(std::string("the healthcheck's ") + name + " is 0 or at least 1 ms");
    if (h.retries < 0) refuse_config("negative healthcheck retries");
}

// A restart policy, at create as at update.
inline void validate_restart_policy(const restart_policy& r, std::string_view call = "create") {
    if (r.name != "" && r.name != "no" && r.name != "always" && r.name != "unless-stopped" && r.name != "on-failure")
        refuse_config("unknown restart policy \"" + r.name + "\" (no, always, unless-stopped, on-failure)", call);
    if (r.maximum_retry_count < 0) refuse_config("a negative maximum_retry_count", call);
    if (r.maximum_retry_count != 0 && r.name != "on-failure")
        refuse_config("maximum_retry_count is for the on-failure restart policy only", call);
}

inline void validate_host(const host_config& h) {
    for (auto& [port, bindings] : h.port_bindings) {
        if (!valid_port_spec(port)) refuse_config("bad port \"" + port + "\" (\"80\", \"80/tcp\", \"8000-8010/udp\")");
        for (auto& b : bindings)
            if (!b.host_port.empty() && !valid_port_spec(b.host_port, false))
                refuse_config("bad host port \"" + b.host_port + "\" for " + port);
    }
    const auto& r = h.restart_policy;
    validate_restart_policy(r);
    if (h.auto_remove && r.name != "" && r.name != "no") refuse_config("auto_remove with a restart policy");
    for (auto& u : h.ulimits) {
        if (u.name.empty()) refuse_config("a ulimit without a name");
        if (u.soft < -1 || u.hard < -1) refuse_config("ulimit " + u.name + ": negative (only -1, unlimited)");
        if (u.hard != -1 && (u.soft == -1 || u.soft > u.hard))
            refuse_config("ulimit " + u.name + ": the soft limit is above the hard one");
    }
    if (h.cgroupns_mode != "" && h.cgroupns_mode != "private" && h.cgroupns_mode != "host")
        refuse_config("cgroupns_mode is \"private\" or \"host\", not \"" + h.cgroupns_mode + "\"");
    if (h.memory < 0 || h.memory_reservation < 0 || h.nano_cpus < 0 || h.cpu_shares < 0 || h.cpu_period < 0 ||
        h.cpu_realtime_period < 0 || h.cpu_realtime_runtime < 0 || (h.shm_size && *h.shm_size < 0))
        refuse_config("a negative memory or CPU limit");
    if (h.memory_swap && *h.memory_swap < -1) refuse_config("memory_swap is -1 (unlimited) or a size");
    if (h.memory_swappiness && (*h.memory_swappiness < 0 || *h.memory_swappiness > 100))
        refuse_config("memory_swappiness is 0 to 100");
    if (h.oom_score_adj && (*h.oom_score_adj < -1000 || *h.oom_score_adj > 1000))
        refuse_config("oom_score_adj is -1000 to 1000");
    auto bad_weight = [](int w) { return w != 0 && (w < 10 || w > 1000); };
    if (bad_weight(h.blkio_weight)) refuse_config("blkio_weight is 10 to 1000");
    for (auto& d : h.blkio_weight_device)
        if (bad_weight(d.weight) || d.path.empty()) refuse_config("a blkio_weight_device is a path and 10 to 1000");
    for (auto* list :
         {&h.blkio_device_read_bps, &h.blkio_device_write_bps, &h.blkio_device_read_iops, &h.blkio_device_write_iops})
        for (auto& d : *list)
            if (d.path.empty() || d.rate < 0) refuse_config("a blkio throttle is a path and a rate of 0 or more");
    for (auto& m : h.mounts) validate_mount(m);
}

// Refuses (invalid_argument_error) what no engine would take, before anything is sent.
inline void validate_container_config(const container_config& c) {
    for (auto& p : c.exposed_ports)
        if (!valid_port_spec(p)) refuse_config("bad exposed port \"" + p + "\" (\"80\", \"80/tcp\", \"53/udp\")");
    if (c.healthcheck) validate_health(*c.healthcheck);
    if (c.stop_timeout && *c.stop_timeout < -1) refuse_config("stop_timeout is -1 (none) or seconds");
    validate_host(c.host);
    for (auto& [network, settings] : c.networking.endpoints_config)
        if (network.empty()) refuse_config("an endpoints_config entry without a network name");
}

}  // namespace detail
}  // namespace berth
