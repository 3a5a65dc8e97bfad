#pragma once
// container_config as the engine's JSON (only what is set). The body's checks are in container_config_checks.hpp.
#include <berth/engine/container_config.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>

#include <string>
#include <vector>

namespace berth {

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

// Merges `from` into `into`: where both hold an object under a key the two merge, recursively; any other value
// of `from` replaces (or adds) the key's.
inline void merge_json(boost::json::object& into, const boost::json::object& from) {
    for (auto& [key, value] : from) {
        auto* mine = into.if_contains(key);
        if (mine != nullptr && mine->is_object() && value.is_object())
            merge_json(mine->get_object(), value.get_object());
        else
            into[key] = value;
    }
}

inline bool is_empty(const mount_bind_options& b) {
    return b.propagation.empty() && !b.non_recursive && !b.create_mountpoint && !b.read_only_non_recursive &&
           !b.read_only_force_recursive;
}
inline bool is_empty(const mount_volume_options& v) {
    return !v.no_copy && v.labels.empty() && v.driver_name.empty() && v.driver_options.empty() && v.subpath.empty();
}
inline bool is_empty(const mount_tmpfs_options& t) { return t.size_bytes == 0 && t.mode == 0 && t.options.empty(); }
inline bool is_empty(const mount_image_options& i) { return i.subpath.empty(); }

inline boost::json::array to_json(const std::vector<throttle_device>& devices) {
    boost::json::array a{};
    for (auto& d : devices) a.push_back(boost::json::object{{"Path", d.path}, {"Rate", d.rate}});
    return a;
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
    boost::json::object o{{"Type", m.type}, {"Source", m.source}, {"Target", m.target}, {"ReadOnly", m.read_only}};
    if (!m.consistency.empty()) o["Consistency"] = m.consistency;
    if (const auto& b = m.bind_options; !detail::is_empty(b)) {
        boost::json::object j{};
        if (!b.propagation.empty()) j["Propagation"] = b.propagation;
        if (b.non_recursive) j["NonRecursive"] = true;
        if (b.create_mountpoint) j["CreateMountpoint"] = true;
        if (b.read_only_non_recursive) j["ReadOnlyNonRecursive"] = true;
        if (b.read_only_force_recursive) j["ReadOnlyForceRecursive"] = true;
        o["BindOptions"] = std::move(j);
    }
    if (const auto& v = m.volume_options; !detail::is_empty(v)) {
        boost::json::object j{};
        if (v.no_copy) j["NoCopy"] = true;
        if (!v.labels.empty()) j["Labels"] = detail::to_json_map(v.labels);
        if (!v.driver_name.empty() || !v.driver_options.empty()) {
            boost::json::object driver{};
            if (!v.driver_name.empty()) driver["Name"] = v.driver_name;
            if (!v.driver_options.empty()) driver["Options"] = detail::to_json_map(v.driver_options);
            j["DriverConfig"] = std::move(driver);
        }
        if (!v.subpath.empty()) j["Subpath"] = v.subpath;
        o["VolumeOptions"] = std::move(j);
    }
    if (const auto& t = m.tmpfs_options; !detail::is_empty(t)) {
        boost::json::object j{};
        if (t.size_bytes != 0) j["SizeBytes"] = t.size_bytes;
        if (t.mode != 0) j["Mode"] = t.mode;
        if (!t.options.empty()) {
            boost::json::array options{};
            for (auto& option : t.options) options.push_back(detail::to_json_strings(option));
            j["Options"] = std::move(options);
        }
        o["TmpfsOptions"] = std::move(j);
    }
    if (!detail::is_empty(m.image_options))
        o["ImageOptions"] = boost::json::object{{"Subpath", m.image_options.subpath}};
    jv = std::move(o);
}

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, const host_config& h) {
    using detail::to_json_map, detail::to_json_strings;
    boost::json::object o{};
    if (!h.binds.empty()) o["Binds"] = to_json_strings(h.binds);
    if (!h.mounts.empty()) o["Mounts"] = boost::json::value_from(h.mounts);
    if (!h.network_mode.empty()) o["NetworkMode"] = h.network_mode;
    if (!h.port_bindings.empty()) {
        boost::json::object ports{};
        for (auto& [port, bindings] : h.port_bindings) {
            boost::json::array a{};
            for (auto& b : bindings) a.push_back(boost::json::object{{"HostIp", b.host_ip}, {"HostPort", b.host_port}});
            ports[port] = std::move(a);
        }
        o["PortBindings"] = std::move(ports);
    }
    if (h.publish_all_ports) o["PublishAllPorts"] = true;
    if (!h.restart_policy.name.empty())
        o["RestartPolicy"] = {{"Name", h.restart_policy.name},
                              {"MaximumRetryCount", h.restart_policy.maximum_retry_count}};
    if (h.auto_remove) o["AutoRemove"] = true;
    if (!h.volume_driver.empty()) o["VolumeDriver"] = h.volume_driver;
    if (!h.volumes_from.empty()) o["VolumesFrom"] = to_json_strings(h.volumes_from);
    if (h.console_size) o["ConsoleSize"] = boost::json::array{h.console_size->first, h.console_size->second};
    if (!h.annotations.empty()) o["Annotations"] = to_json_map(h.annotations);
    if (!h.device_requests.empty()) o["DeviceRequests"] = boost::json::value_from(h.device_requests);
    if (!h.devices.empty()) o["Devices"] = boost::json::value_from(h.devices);
    if (!h.device_cgroup_rules.empty()) o["DeviceCgroupRules"] = to_json_strings(h.device_cgroup_rules);
    if (h.privileged) o["Privileged"] = true;
    if (h.init) o["Init"] = *h.init;
    if (!h.cap_add.empty()) o["CapAdd"] = to_json_strings(h.cap_add);
    if (!h.cap_drop.empty()) o["CapDrop"] = to_json_strings(h.cap_drop);
    if (!h.security_opt.empty()) o["SecurityOpt"] = to_json_strings(h.security_opt);
    if (!h.group_add.empty()) o["GroupAdd"] = to_json_strings(h.group_add);
    if (!h.dns.empty()) o["Dns"] = to_json_strings(h.dns);
    if (!h.dns_options.empty()) o["DnsOptions"] = to_json_strings(h.dns_options);
    if (!h.dns_search.empty()) o["DnsSearch"] = to_json_strings(h.dns_search);
    if (!h.extra_hosts.empty()) o["ExtraHosts"] = to_json_strings(h.extra_hosts);
    if (!h.ipc_mode.empty()) o["IpcMode"] = h.ipc_mode;
    if (!h.pid_mode.empty()) o["PidMode"] = h.pid_mode;
    if (!h.uts_mode.empty()) o["UTSMode"] = h.uts_mode;
    if (!h.userns_mode.empty()) o["UsernsMode"] = h.userns_mode;
    if (!h.cgroupns_mode.empty()) o["CgroupnsMode"] = h.cgroupns_mode;
    if (!h.cgroup_parent.empty()) o["CgroupParent"] = h.cgroup_parent;
    if (!h.isolation.empty()) o["Isolation"] = h.isolation;
    if (!h.runtime.empty()) o["Runtime"] = h.runtime;
    if (h.readonly_rootfs) o["ReadonlyRootfs"] = true;
    if (h.masked_paths) o["MaskedPaths"] = to_json_strings(*h.masked_paths);
    if (h.readonly_paths) o["ReadonlyPaths"] = to_json_strings(*h.readonly_paths);
    if (!h.storage_opt.empty()) o["StorageOpt"] = to_json_map(h.storage_opt);
    if (!h.sysctls.empty()) o["Sysctls"] = to_json_map(h.sysctls);
    if (!h.tmpfs.empty()) o["Tmpfs"] = to_json_map(h.tmpfs);
    if (h.shm_size) o["ShmSize"] = *h.shm_size;
    if (!h.log_config.type.empty() || !h.log_config.config.empty()) {
        boost::json::object log{};
        if (!h.log_config.type.empty()) log["Type"] = h.log_config.type;
        if (!h.log_config.config.empty()) log["Config"] = to_json_map(h.log_config.config);
        o["LogConfig"] = std::move(log);
    }
    if (!h.ulimits.empty()) {
        boost::json::array a{};
        for (auto& u : h.ulimits)
            a.push_back(boost::json::object{{"Name", u.name}, {"Soft", u.soft}, {"Hard", u.hard}});
        o["Ulimits"] = std::move(a);
    }
    if (h.memory) o["Memory"] = h.memory;
    if (h.memory_reservation) o["MemoryReservation"] = h.memory_reservation;
    if (h.memory_swap) o["MemorySwap"] = *h.memory_swap;
    if (h.memory_swappiness) o["MemorySwappiness"] = *h.memory_swappiness;
    if (h.oom_kill_disable) o["OomKillDisable"] = *h.oom_kill_disable;
    if (h.oom_score_adj) o["OomScoreAdj"] = *h.oom_score_adj;
    if (h.nano_cpus) o["NanoCpus"] = h.nano_cpus;
    if (h.cpu_shares) o["CpuShares"] = h.cpu_shares;
    if (h.cpu_period) o["CpuPeriod"] = h.cpu_period;
    if (h.cpu_quota) o["CpuQuota"] = h.cpu_quota;
    if (h.cpu_realtime_period) o["CpuRealtimePeriod"] = h.cpu_realtime_period;
    if (h.cpu_realtime_runtime) o["CpuRealtimeRuntime"] = h.cpu_realtime_runtime;
    if (!h.cpuset_cpus.empty()) o["CpusetCpus"] = h.cpuset_cpus;
    if (!h.cpuset_mems.empty()) o["CpusetMems"] = h.cpuset_mems;
    if (h.pids_limit) o["PidsLimit"] = *h.pids_limit;
    if (h.blkio_weight) o["BlkioWeight"] = h.blkio_weight;
    if (!h.blkio_weight_device.empty()) {
        boost::json::array a{};
        for (auto& d : h.blkio_weight_device) a.push_back(boost::json::object{{"Path", d.path}, {"Weight", d.weight}});
        o["BlkioWeightDevice"] = std::move(a);
    }
    if (!h.blkio_device_read_bps.empty()) o["BlkioDeviceReadBps"] = detail::to_json(h.blkio_device_read_bps);
    if (!h.blkio_device_write_bps.empty()) o["BlkioDeviceWriteBps"] = detail::to_json(h.blkio_device_write_bps);
    if (!h.blkio_device_read_iops.empty()) o["BlkioDeviceReadIOps"] = detail::to_json(h.blkio_device_read_iops);
    if (!h.blkio_device_write_iops.empty()) o["BlkioDeviceWriteIOps"] = detail::to_json(h.blkio_device_write_iops);
    jv = std::move(o);
}

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, const health_config& h) {
    boost::json::object o{};
    if (!h.test.empty()) o["Test"] = detail::to_json_strings(h.test);
    if (h.interval.count()) o["Interval"] = h.interval.count();
    if (h.timeout.count()) o["Timeout"] = h.timeout.count();
    if (h.retries) o["Retries"] = h.retries;
    if (h.start_period.count()) o["StartPeriod"] = h.start_period.count();
    if (h.start_interval.count()) o["StartInterval"] = h.start_interval.count();
    jv = std::move(o);
}

// The body of POST /containers/create. `platform` is a query parameter, not written here.
inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, const container_config& c) {
    using detail::to_json_strings;
    boost::json::object o{};
    o["Image"] = c.image;
    if (!c.cmd.empty()) o["Cmd"] = to_json_strings(c.cmd);
    if (c.entrypoint) o["Entrypoint"] = to_json_strings(*c.entrypoint);
    if (c.shell) o["Shell"] = to_json_strings(*c.shell);
    if (!c.env.empty()) o["Env"] = to_json_strings(c.env);
    if (!c.working_dir.empty()) o["WorkingDir"] = c.working_dir;
    if (!c.user.empty()) o["User"] = c.user;
    if (!c.hostname.empty()) o["Hostname"] = c.hostname;
    if (!c.domainname.empty()) o["Domainname"] = c.domainname;
    if (!c.labels.empty()) o["Labels"] = detail::to_json_map(c.labels);
    if (!c.exposed_ports.empty()) {
        boost::json::object ports{};
        for (auto& p : c.exposed_ports) ports[p] = boost::json::object{};
        o["ExposedPorts"] = std::move(ports);
    }
    if (!c.volumes.empty()) {
        boost::json::object volumes{};
        for (auto& v : c.volumes) volumes[v] = boost::json::object{};
        o["Volumes"] = std::move(volumes);
    }
    if (c.tty) o["Tty"] = true;
    if (c.open_stdin) o["OpenStdin"] = true;
    if (c.stdin_once) o["StdinOnce"] = true;
    if (c.attach_stdin) o["AttachStdin"] = true;
    if (c.attach_stdout) o["AttachStdout"] = true;
    if (c.attach_stderr) o["AttachStderr"] = true;
    if (c.network_disabled) o["NetworkDisabled"] = true;
    if (c.healthcheck) o["Healthcheck"] = boost::json::value_from(*c.healthcheck);
    if (!c.on_build.empty()) o["OnBuild"] = to_json_strings(c.on_build);
    if (!c.mac_address.empty()) o["MacAddress"] = c.mac_address;
    if (c.stop_signal) o["StopSignal"] = *c.stop_signal;
    if (c.stop_timeout) o["StopTimeout"] = *c.stop_timeout;
    o["HostConfig"] = boost::json::value_from(c.host);
    if (!c.networking.endpoints_config.empty()) {
        boost::json::object endpoints{};
        for (auto& [network, settings] : c.networking.endpoints_config) endpoints[network] = detail::to_json(settings);
        o["NetworkingConfig"] = boost::json::object{{"EndpointsConfig", std::move(endpoints)}};
    }
    detail::merge_json(o, c.extra);
    jv = std::move(o);
}

}  // namespace berth
