#pragma once
// The typed request of POST /containers/create (Engine API v1.56: ContainerConfig, HostConfig, NetworkingConfig).
// Members are the engine's JSON names in snake_case; only what is set is sent, so the engine's defaults stay the
// defaults. Fields newer than API 1.40 are refused before sending when the engine is spoken to at an older
// version, and obviously bad values are refused before sending (invalid_argument_error): see
// container_config_json.hpp and docs/engine-api.md#container-configuration.
#include <berth/engine/endpoint_settings.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
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

struct mount_bind_options {                  // Mount.BindOptions: type bind only
    std::string propagation{};               // private, rprivate, shared, rshared, slave, rslave
    bool non_recursive = false;              // NonRecursive: submounts are not bound
    bool create_mountpoint = false;          // CreateMountpoint (API 1.42): create a missing source on the host
    bool read_only_non_recursive = false;    // ReadOnlyNonRecursive (API 1.44): read-only, submounts not made so
    bool read_only_force_recursive = false;  // ReadOnlyForceRecursive (API 1.44): fail if not recursively read-only
};

struct mount_volume_options {  // Mount.VolumeOptions: type volume only
    bool no_copy = false;      // NoCopy: do not copy the image's files at the target into a new volume
    std::map<std::string, std::string> labels{};          // the labels of a volume it creates
    std::string driver_name{};                            // DriverConfig.Name
    std::map<std::string, std::string> driver_options{};  // DriverConfig.Options
    std::string subpath{};  // Subpath (API 1.45): mount this path inside the volume instead of its root
};

struct mount_tmpfs_options {      // Mount.TmpfsOptions: type tmpfs only
    std::int64_t size_bytes = 0;  // SizeBytes; 0: the engine's default (unlimited)
    std::uint32_t mode = 0;       // Mode: permission bits (0755 = 493); 0: the engine's default (1777)
    // Options (API 1.46): mount options, {"noexec"} for a flag, {"key", "value"} otherwise
    std::vector<std::vector<std::string>> options{};
};

struct mount_image_options {  // Mount.ImageOptions: type image only (API 1.48)
    std::string subpath{};
};

struct mount_point {            // HostConfig.Mounts[]
    std::string type = "bind";  // bind, volume, tmpfs; npipe (Windows), cluster (Swarm), image (API 1.48)
    std::string source{};       // the host path, volume name or image; empty for tmpfs
    std::string target{};
    bool read_only = false;
    std::string consistency{};  // default, consistent, cached, delegated (macOS only); empty: not sent
    // Each sent when any part of it is set, and only for a mount of its type (else invalid_argument_error).
    mount_bind_options bind_options{};
    mount_volume_options volume_options{};
    mount_tmpfs_options tmpfs_options{};
    mount_image_options image_options{};
};

struct port_binding {         // one entry of HostConfig.PortBindings["80/tcp"]
    std::string host_ip{};    // empty: every address. Tests in this repository bind 127.0.0.1 only
    std::string host_port{};  // "8080", "8080-8090"; empty: the engine picks one
};

struct restart_policy {           // HostConfig.RestartPolicy
    std::string name{};           // "", "no", "always", "unless-stopped", "on-failure"; empty: not sent
    int maximum_retry_count = 0;  // MaximumRetryCount: on-failure only
};

struct ulimit {             // HostConfig.Ulimits[]
    std::string name{};     // "nofile", "nproc", "memlock"... (no "RLIMIT_" prefix)
    std::int64_t soft = 0;  // -1: unlimited
    std::int64_t hard = 0;  // -1: unlimited
};

struct log_config {      // HostConfig.LogConfig
    std::string type{};  // json-file, local, journald, syslog, none...; empty: the engine's default driver
    std::map<std::string, std::string> config{};  // the driver's options: {"max-size", "10m"}
};

struct throttle_device {  // HostConfig.BlkioDevice{Read,Write}{Bps,IOps}[]
    std::string path{};
    std::int64_t rate = 0;  // bytes or operations per second
};

struct weight_device {  // HostConfig.BlkioWeightDevice[]
    std::string path{};
    int weight = 0;  // 10 to 1000, or 0 to take the device out
};

struct health_config {  // Config.Healthcheck; a zero duration or count inherits the image's
    // {} inherits the image's test, {"NONE"} disables it, {"CMD", args...}, {"CMD-SHELL", "command"}
    std::vector<std::string> test{};
    std::chrono::nanoseconds interval{};
    std::chrono::nanoseconds timeout{};
    int retries = 0;
    std::chrono::nanoseconds start_period{};
    std::chrono::nanoseconds start_interval{};  // StartInterval (API 1.44): between checks in the start period
};

struct host_config {
    std::vector<std::string> binds{};  // "host:container[:ro|rw]"
    std::vector<mount_point> mounts{};
    std::string network_mode{};  // "none", "host", a network name; empty: the engine's default
    // PortBindings: "80/tcp" (or "80", "8000-8010/udp") -> where on the host; needs the port exposed or published
    std::map<std::string, std::vector<port_binding>> port_bindings{};
    bool publish_all_ports = false;
    berth::restart_policy restart_policy{};
    bool auto_remove = false;
    std::string volume_driver{};
    std::vector<std::string> volumes_from{};  // "container[:ro|rw]"
    // ConsoleSize (API 1.42): the tty's size from the start, {height, width}
    std::optional<std::pair<unsigned, unsigned>> console_size{};
    std::map<std::string, std::string> annotations{};  // Annotations (API 1.43): passed to the OCI runtime
    std::vector<device_request> device_requests{};
    std::vector<device_mapping> devices{};
    std::vector<std::string> device_cgroup_rules{};  // "c 1:3 mr"
    bool privileged = false;
    std::optional<bool> init{};  // run an init process as PID 1 (forwards signals, reaps zombies)
    std::vector<std::string> cap_add{}, cap_drop{};
    std::vector<std::string> security_opt{};
    std::vector<std::string> group_add{};  // GroupAdd: more groups for the container's process
    // Dns, DnsOptions, DnsSearch: the container's resolv.conf
    std::vector<std::string> dns{}, dns_options{}, dns_search{};
    std::vector<std::string> extra_hosts{};  // ExtraHosts: "name:address" lines of /etc/hosts
    // Links (legacy container links of the default bridge) are not typed: they need a bridge network, which
    // berth's tests never use; `extra` can still send them.
    std::string ipc_mode{};       // IpcMode: "private", "shareable", "host", "container:<id>", "none"
    std::string pid_mode{};       // PidMode: "host", "container:<id>"
    std::string uts_mode{};       // UTSMode: "host"
    std::string userns_mode{};    // UsernsMode: "host"
    std::string cgroupns_mode{};  // CgroupnsMode (API 1.41): "private" or "host"
    std::string cgroup_parent{};
    std::string isolation{};       // Isolation (Windows): "default", "process", "hyperv"
    std::string runtime{};         // Runtime: an OCI runtime the engine knows ("runc", "crun")
    bool readonly_rootfs = false;  // ReadonlyRootfs
    std::optional<std::vector<std::string>> masked_paths{};    // MaskedPaths: {} unmasks the engine's defaults
    std::optional<std::vector<std::string>> readonly_paths{};  // ReadonlyPaths: likewise
    std::map<std::string, std::string> storage_opt{};          // StorageOpt: {"size", "10G"} where the driver allows it
    std::map<std::string, std::string> sysctls{};  // namespaced ones only ("net.*" needs a network namespace)
    std::map<std::string, std::string> tmpfs{};    // Tmpfs: target -> mount options ("rw,size=64m")
    std::optional<std::int64_t> shm_size{};
    berth::log_config log_config{};  // sent when its type or options are set
    std::vector<ulimit> ulimits{};
    // Resources. 0 (or empty) is "not set": the engine's default.
    std::int64_t memory = 0;                    // bytes; 0: unlimited
    std::int64_t memory_reservation = 0;        // MemoryReservation: a soft limit, bytes
    std::optional<std::int64_t> memory_swap{};  // MemorySwap: memory plus swap, bytes; -1: unlimited swap
    std::optional<int> memory_swappiness{};     // MemorySwappiness: 0 to 100
    std::optional<bool> oom_kill_disable{};     // OomKillDisable
    std::optional<int> oom_score_adj{};         // OomScoreAdj: -1000 to 1000
    std::int64_t nano_cpus = 0;                 // 1e9 = one CPU
    std::int64_t cpu_shares = 0;                // CpuShares: relative weight
    std::int64_t cpu_period = 0;                // CpuPeriod: CFS period, microseconds
    std::int64_t cpu_quota = 0;                 // CpuQuota: CFS quota per period, microseconds
    std::int64_t cpu_realtime_period = 0;       // CpuRealtimePeriod: microseconds (cgroup v1)
    std::int64_t cpu_realtime_runtime = 0;      // CpuRealtimeRuntime: microseconds (cgroup v1)
    std::string cpuset_cpus{};                  // CpusetCpus: "0-3", "0,1"
    std::string cpuset_mems{};                  // CpusetMems: NUMA nodes
    std::optional<std::int64_t> pids_limit{};
    int blkio_weight = 0;  // BlkioWeight: 10 to 1000
    std::vector<weight_device> blkio_weight_device{};
    std::vector<throttle_device> blkio_device_read_bps{}, blkio_device_write_bps{};
    std::vector<throttle_device> blkio_device_read_iops{}, blkio_device_write_iops{};
    // Not typed: KernelMemory (removed in API 1.42), and the Windows-only CpuCount, CpuPercent, IOMaximumIOps,
    // IOMaximumBandwidth, ContainerIDFile and Cgroup; `extra` can send them.
};

struct networking_config {  // NetworkingConfig
    // EndpointsConfig: network name -> how the container joins it. More than one needs API 1.44.
    std::map<std::string, endpoint_settings> endpoints_config{};
};

struct container_config {
    std::string image{};
    // The `platform` query parameter of create (API 1.41), "os[/arch[/variant]]": the image variant to use.
    // Not part of the body.
    std::string platform{};
    std::vector<std::string> cmd{};
    std::optional<std::vector<std::string>> entrypoint{};
    std::optional<std::vector<std::string>> shell{};  // Shell: for the image's shell-form instructions
    std::vector<std::string> env{};                   // "KEY=value"
    std::string working_dir{};
    std::string user{};
    std::string hostname{};
    std::string domainname{};
    std::map<std::string, std::string> labels{};
    std::vector<std::string> exposed_ports{};  // ExposedPorts: "80/tcp", "53/udp", "9/sctp", "80" (tcp)
    std::vector<std::string> volumes{};        // Volumes: container paths that get an anonymous volume
    bool tty = false;
    bool open_stdin = false;
    bool stdin_once = false;  // StdinOnce: close stdin after the first attach ends
    bool attach_stdin = false, attach_stdout = false, attach_stderr = false;
    bool network_disabled = false;
    std::optional<health_config> healthcheck{};
    std::vector<std::string> on_build{};  // OnBuild: ONBUILD instructions (for an image committed from it)
    // MacAddress of the whole container: deprecated in API 1.44 (use the endpoint's mac_address) and removed in
    // 1.52, where it is refused before sending.
    std::string mac_address{};
    std::optional<std::string> stop_signal{};
    std::optional<int> stop_timeout{};
    host_config host{};
    networking_config networking{};  // NetworkingConfig: sent when it names a network
    // Anything else, merged into the body last: objects merge key by key, recursively (so {"HostConfig": {"Foo":
    // 1}} adds to HostConfig); any other value replaces what the typed fields wrote. Sent as given, whatever the
    // API version.
    boost::json::object extra{};
};

}  // namespace berth

#include <berth/engine/container_config_json.hpp>
