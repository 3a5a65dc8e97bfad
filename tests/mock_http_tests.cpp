// The engine client against the mock engine: the exact requests berth sends, version negotiation, every fault the
// engine or the connection can produce (for a plain request, a streamed download and an exec), replays, default
// time limits and pool health.
#include "support/mock_fixture.hpp"

using namespace mock_test;

TEST_SUITE("mock engine: requests, versions, faults, limits, pool") {

// ------------------------------------------------------------------------------------------------------------
// The exact requests berth sends
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("a plain request goes to the versioned path and its JSON is decoded") {
    fixture f;
    f.plain();
    auto sent = f.engine.requests_to(verb::get, "/containers/app/json");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target == inspect_endpoint.substr(4));
    CHECK(sent[0].api_version == "1.41");
    CHECK(sent[0].body.empty());
    CHECK(sent[0].header("Host") == "docker");
    CHECK_FALSE(sent[0].has_header("Content-Type"));
}

TEST_CASE("an untagged image has no names on every API version (1.43 stopped listing <none>:<none>)") {
    fixture f;
    f.engine.on(verb::get, "/images/json",
                reply::json(200, R"([{"Id":"sha256:a","RepoTags":["<none>:<none>"],"Size":1},)"
                                 R"({"Id":"sha256:b","RepoTags":["app:latest","<none>:<none>"],"Size":2}])"));
    f.engine.on(verb::get, "/images/sha256:a/json",
                reply::json(200, R"({"Id":"sha256:a","RepoTags":["<none>:<none>"]})"));
    auto images = run_on_mock(f.ioc, f.client.images().list());
    REQUIRE(images.size() == 2);
    CHECK(images[0].repo_tags.empty());
    CHECK(images[1].repo_tags == std::vector<std::string>{"app:latest"});
    CHECK(run_on_mock(f.ioc, f.client.images().inspect("sha256:a")).repo_tags.empty());
}

TEST_CASE("container create sends the configuration as the engine's JSON") {
    fixture f;
    f.engine.on(verb::post, "/containers/create", reply::json(201, R"({"Id":"c0ffee","Warnings":["low memory"]})"));

    berth::container_config config;
    config.image = "python:3.11-slim";
    config.cmd = {"sleep", "infinity"};
    config.env = {"PYTHONUNBUFFERED=1", "LANG=C.UTF-8"};
    config.working_dir = "/workspace";
    config.labels = {{"berth.role", "eval"}, {"run", "42"}};
    config.tty = true;
    config.open_stdin = true;
    config.host.binds = {"/srv/data:/data:ro", "/tmp/out:/out"};
    config.host.network_mode = "none";
    config.host.init = true;
    berth::device_request gpus;
    gpus.count = -1;
    gpus.capabilities = {{"gpu"}};
    config.host.device_requests = {gpus};
    berth::device_mapping cdi;
    cdi.path_on_host = "nvidia.com/gpu=all";
    cdi.path_in_container = "nvidia.com/gpu=all";
    config.host.devices = {cdi};

    auto created = run_on_mock(f.ioc, f.client.containers().create(config, "eval é 1"));
    CHECK(created.id == "c0ffee");
    CHECK(created.warnings == std::vector<std::string>{"low memory"});

    auto sent = f.engine.requests_to(verb::post, "/containers/create");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target == "/v1.41/containers/create?name=eval%20%C3%A9%201");
    CHECK(sent[0].query("name") == "eval é 1");
    CHECK(sent[0].header("Content-Type") == "application/json");
    CHECK_FALSE(sent[0].chunked);
    auto expected = json::parse(R"({
        "Image": "python:3.11-slim",
        "Cmd": ["sleep", "infinity"],
        "Env": ["PYTHONUNBUFFERED=1", "LANG=C.UTF-8"],
        "WorkingDir": "/workspace",
        "Labels": {"berth.role": "eval", "run": "42"},
        "Tty": true,
        "OpenStdin": true,
        "HostConfig": {
            "Binds": ["/srv/data:/data:ro", "/tmp/out:/out"],
            "NetworkMode": "none",
            "Init": true,
            "DeviceRequests": [{"Driver": "", "Count": -1, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}],
            "Devices": [{"PathOnHost": "nvidia.com/gpu=all", "PathInContainer": "nvidia.com/gpu=all",
                         "CgroupPermissions": "rwm"}]
        }
    })");
    CHECK(sent[0].json() == expected);
}

TEST_CASE("an unset configuration leaves the engine's defaults alone") {
    fixture f;
    f.engine.on(verb::post, "/containers/create", reply::json(201, R"({"Id":"c1"})"));
    berth::container_config config;
    config.image = "alpine";
    run_on_mock(f.ioc, f.client.containers().create(config));
    auto sent = f.engine.requests_to(verb::post, "/containers/create");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target == "/v1.41/containers/create");
    CHECK(sent[0].json() == json::parse(R"({"Image":"alpine","HostConfig":{}})"));
}

// Every typed field of container_config set, none newer than API 1.41 (the mock engine's version by default).
static berth::container_config full_container_config() {
    using namespace std::chrono_literals;
    berth::container_config c{
        .image = "alpine:3.19",
        .platform = "linux/amd64",
        .cmd = {"sleep", "60"},
        .entrypoint = std::vector<std::string>{"/bin/sh", "-c"},
        .shell = std::vector<std::string>{"/bin/ash", "-c"},
        .env = {"A=1"},
        .working_dir = "/w",
        .user = "1000:1000",
        .hostname = "box",
        .domainname = "example.test",
        .labels = {{"k", "v"}},
        .exposed_ports = {"80/tcp", "53/udp", "9", "7000-7002/sctp"},
        .volumes = {"/data"},
        .tty = true,
        .open_stdin = true,
        .stdin_once = true,
        .attach_stdin = true,
        .attach_stdout = true,
        .attach_stderr = true,
        .network_disabled = true,
        .healthcheck =
            berth::health_config{
                .test = {"CMD-SHELL", "true"}, .interval = 2s, .timeout = 1s, .retries = 3, .start_period = 5s},
        .on_build = {"RUN true"},
        .mac_address = "02:42:ac:11:00:02",
        .stop_signal = "SIGINT",
        .stop_timeout = 7,
    };
    auto& h = c.host;
    h.binds = {"/srv:/srv:ro"};
    h.mounts = {{.type = "bind",
                 .source = "/srv",
                 .target = "/b",
                 .read_only = true,
                 .consistency = "cached",
                 .bind_options = {.propagation = "rslave", .non_recursive = true}},
                {.type = "volume",
                 .source = "vol",
                 .target = "/v",
                 .volume_options = {.no_copy = true,
                                    .labels = {{"l", "1"}},
                                    .driver_name = "local",
                                    .driver_options = {{"type", "tmpfs"}}}},
                {.type = "tmpfs", .target = "/t", .tmpfs_options = {.size_bytes = 1048576, .mode = 01777}}};
    h.network_mode = "none";
    h.port_bindings = {{"80/tcp", {{.host_ip = "127.0.0.1", .host_port = "8080"}, {.host_ip = "127.0.0.1"}}}};
    h.publish_all_ports = true;
    h.restart_policy = {.name = "on-failure", .maximum_retry_count = 2};
    h.volume_driver = "local";
    h.volumes_from = {"other:ro"};
    h.device_cgroup_rules = {"c 1:3 mr"};
    h.privileged = true;
    h.init = true;
    h.cap_add = {"NET_ADMIN"};
    h.cap_drop = {"MKNOD"};
    h.security_opt = {"no-new-privileges"};
    h.group_add = {"audio"};
    h.dns = {"192.0.2.53"};
    h.dns_options = {"ndots:2"};
    h.dns_search = {"example.test"};
    h.extra_hosts = {"db:192.0.2.10"};
    h.ipc_mode = "private";
    h.pid_mode = "host";
    h.uts_mode = "host";
    h.userns_mode = "host";
    h.cgroupns_mode = "private";
    h.cgroup_parent = "/berth";
    h.isolation = "default";
    h.runtime = "runc";
    h.readonly_rootfs = true;
    h.masked_paths = std::vector<std::string>{};
    h.readonly_paths = std::vector<std::string>{"/proc/sys"};
    h.storage_opt = {{"size", "10G"}};
    h.sysctls = {{"kernel.msgmax", "65536"}};
    h.tmpfs = {{"/run", "rw,size=64m"}};
    h.shm_size = 67108864;
    h.log_config = {.type = "json-file", .config = {{"max-size", "10m"}}};
    h.ulimits = {{.name = "nofile", .soft = 1024, .hard = 2048}, {.name = "memlock", .soft = -1, .hard = -1}};
    h.memory = 268435456;
    h.memory_reservation = 134217728;
    h.memory_swap = -1;
    h.memory_swappiness = 10;
    h.oom_kill_disable = false;
    h.oom_score_adj = 500;
    h.nano_cpus = 500000000;
    h.cpu_shares = 512;
    h.cpu_period = 100000;
    h.cpu_quota = 50000;
    h.cpu_realtime_period = 1000000;
    h.cpu_realtime_runtime = 950000;
    h.cpuset_cpus = "0";
    h.cpuset_mems = "0";
    h.pids_limit = 64;
    h.blkio_weight = 300;
    h.blkio_weight_device = {{.path = "/dev/sda", .weight = 200}};
    h.blkio_device_read_bps = {{.path = "/dev/sda", .rate = 1048576}};
    h.blkio_device_write_bps = {{.path = "/dev/sda", .rate = 2097152}};
    h.blkio_device_read_iops = {{.path = "/dev/sda", .rate = 100}};
    h.blkio_device_write_iops = {{.path = "/dev/sda", .rate = 200}};
    c.networking.endpoints_config = {
        {"isolated",
         {.ipam_config = {.ipv4_address = "198.51.100.7",
                          .ipv6_address = "2001:db8::7",
                          .link_local_ips = {"169.254.1.1"}},
          .links = {"db:database"},
          .aliases = {"web"},
          .driver_opts = {{"com.docker.network.endpoint.sysctls", "net.ipv4.conf.IFNAME.log_martians=1"}}}}};
    return c;
}

TEST_CASE("container create: a fully set configuration is written as the engine's JSON, field by field") {
    fixture f;
    f.engine.on(verb::post, "/containers/create", reply::json(201, R"({"Id":"c1","Warnings":null})"));
    auto config = full_container_config();
    run_on_mock(f.ioc, f.client.containers().create(config, "full"));
    auto sent = f.engine.requests_to(verb::post, "/containers/create");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].query("name") == "full");
    CHECK(sent[0].query("platform") == "linux/amd64");
    auto expected = json::parse(R"({
        "Image": "alpine:3.19", "Cmd": ["sleep", "60"], "Entrypoint": ["/bin/sh", "-c"], "Shell": ["/bin/ash", "-c"],
        "Env": ["A=1"], "WorkingDir": "/w", "User": "1000:1000", "Hostname": "box", "Domainname": "example.test",
        "Labels": {"k": "v"},
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}, "9": {}, "7000-7002/sctp": {}},
        "Volumes": {"/data": {}},
        "Tty": true, "OpenStdin": true, "StdinOnce": true, "AttachStdin": true, "AttachStdout": true,
        "AttachStderr": true, "NetworkDisabled": true,
        "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 2000000000, "Timeout": 1000000000, "Retries": 3,
                        "StartPeriod": 5000000000},
        "OnBuild": ["RUN true"], "MacAddress": "02:42:ac:11:00:02", "StopSignal": "SIGINT", "StopTimeout": 7,
        "HostConfig": {
            "Binds": ["/srv:/srv:ro"],
            "Mounts": [
                {"Type": "bind", "Source": "/srv", "Target": "/b", "ReadOnly": true, "Consistency": "cached",
                 "BindOptions": {"Propagation": "rslave", "NonRecursive": true}},
                {"Type": "volume", "Source": "vol", "Target": "/v", "ReadOnly": false,
                 "VolumeOptions": {"NoCopy": true, "Labels": {"l": "1"},
                                   "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs"}}}},
                {"Type": "tmpfs", "Source": "", "Target": "/t", "ReadOnly": false,
                 "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 1023}}],
            "NetworkMode": "none",
            "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"},
                                        {"HostIp": "127.0.0.1", "HostPort": ""}]},
            "PublishAllPorts": true,
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
            "VolumeDriver": "local", "VolumesFrom": ["other:ro"], "DeviceCgroupRules": ["c 1:3 mr"],
            "Privileged": true, "Init": true, "CapAdd": ["NET_ADMIN"], "CapDrop": ["MKNOD"],
            "SecurityOpt": ["no-new-privileges"], "GroupAdd": ["audio"],
            "Dns": ["192.0.2.53"], "DnsOptions": ["ndots:2"], "DnsSearch": ["example.test"],
            "ExtraHosts": ["db:192.0.2.10"],
            "IpcMode": "private", "PidMode": "host", "UTSMode": "host", "UsernsMode": "host",
            "CgroupnsMode": "private", "CgroupParent": "/berth", "Isolation": "default", "Runtime": "runc",
            "ReadonlyRootfs": true, "MaskedPaths": [], "ReadonlyPaths": ["/proc/sys"],
            "StorageOpt": {"size": "10G"}, "Sysctls": {"kernel.msgmax": "65536"}, "Tmpfs": {"/run": "rw,size=64m"},
            "ShmSize": 67108864,
            "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m"}},
            "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}, {"Name": "memlock", "Soft": -1, "Hard": -1}],
            "Memory": 268435456, "MemoryReservation": 134217728, "MemorySwap": -1, "MemorySwappiness": 10,
            "OomKillDisable": false, "OomScoreAdj": 500,
            "NanoCpus": 500000000, "CpuShares": 512, "CpuPeriod": 100000, "CpuQuota": 50000,
            "CpuRealtimePeriod": 1000000, "CpuRealtimeRuntime": 950000, "CpusetCpus": "0", "CpusetMems": "0",
            "PidsLimit": 64, "BlkioWeight": 300,
            "BlkioWeightDevice": [{"Path": "/dev/sda", "Weight": 200}],
            "BlkioDeviceReadBps": [{"Path": "/dev/sda", "Rate": 1048576}],
            "BlkioDeviceWriteBps": [{"Path": "/dev/sda", "Rate": 2097152}],
            "BlkioDeviceReadIOps": [{"Path": "/dev/sda", "Rate": 100}],
            "BlkioDeviceWriteIOps": [{"Path": "/dev/sda", "Rate": 200}]
        },
        "NetworkingConfig": {"EndpointsConfig": {"isolated": {
            "IPAMConfig": {"IPv4Address": "198.51.100.7", "IPv6Address": "2001:db8::7",
                           "LinkLocalIPs": ["169.254.1.1"]},
            "Links": ["db:database"], "Aliases": ["web"],
            "DriverOpts": {"com.docker.network.endpoint.sysctls": "net.ipv4.conf.IFNAME.log_martians=1"}}}}
    })");
    CHECK(sent[0].json() == expected);
}

TEST_CASE("container create: the newer fields at an engine recent enough for them") {
    using namespace std::chrono_literals;
    fixture f;
    f.engine.set_api_version("1.48");
    f.engine.on(verb::post, "/containers/create", reply::json(201, R"({"Id":"c1"})"));
    berth::container_config c{.image = "alpine"};
    c.healthcheck = berth::health_config{.test = {"NONE"}, .start_interval = 1s};
    c.host.console_size = std::pair{24u, 80u};
    c.host.annotations = {{"io.berth/a", "b"}};
    c.host.mounts = {{.type = "bind",
                      .source = "/srv",
                      .target = "/b",
                      .bind_options = {.create_mountpoint = true,
                                       .read_only_non_recursive = true,
                                       .read_only_force_recursive = true}},
                     {.type = "volume", .source = "v", .target = "/v", .volume_options = {.subpath = "sub/dir"}},
                     {.type = "tmpfs", .target = "/t", .tmpfs_options = {.options = {{"noexec"}, {"nr_inodes", "1k"}}}},
                     {.type = "image", .source = "busybox", .target = "/i", .image_options = {.subpath = "bin"}}};
    c.networking.endpoints_config = {{"a", {.mac_address = "02:42:ac:11:00:09", .gw_priority = 10}}, {"b", {}}};
    run_on_mock(f.ioc, f.client.containers().create(c));
    auto sent = f.engine.requests_to(verb::post, "/containers/create");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].api_version == "1.48");
    CHECK(sent[0].json() == json::parse(R"({"Image": "alpine",
        "Healthcheck": {"Test": ["NONE"], "StartInterval": 1000000000},
        "HostConfig": {
            "ConsoleSize": [24, 80], "Annotations": {"io.berth/a": "b"},
            "Mounts": [
                {"Type": "bind", "Source": "/srv", "Target": "/b", "ReadOnly": false,
                 "BindOptions": {"CreateMountpoint": true, "ReadOnlyNonRecursive": true,
                                 "ReadOnlyForceRecursive": true}},
                {"Type": "volume", "Source": "v", "Target": "/v", "ReadOnly": false,
                 "VolumeOptions": {"Subpath": "sub/dir"}},
                {"Type": "tmpfs", "Source": "", "Target": "/t", "ReadOnly": false,
                 "TmpfsOptions": {"Options": [["noexec"], ["nr_inodes", "1k"]]}},
                {"Type": "image", "Source": "busybox", "Target": "/i", "ReadOnly": false,
                 "ImageOptions": {"Subpath": "bin"}}]},
        "NetworkingConfig": {"EndpointsConfig": {"a": {"MacAddress": "02:42:ac:11:00:09", "GwPriority": 10},
                                                 "b": {}}}})"));
}

TEST_CASE("container create: a field newer than the engine's API version is refused and nothing is sent") {
    using namespace std::chrono_literals;
    fixture f;  // the mock engine reports API 1.41
    f.engine.on(verb::post, "/containers/create", reply::json(201, R"({"Id":"c1"})"));
    struct newer_field {
        const char* what;
        const char* version;
        std::function<void(berth::container_config&)> set;
    };
    const newer_field fields[] = {
        {"ConsoleSize", "1.42",
         [](auto& c) {
             c.host.console_size = std::pair{24u, 80u};
         }},
        {"CreateMountpoint", "1.42",
         [](auto& c) {
             c.host.mounts = {{.source = "/a", .target = "/a", .bind_options = {.create_mountpoint = true}}};
         }},
        {"Annotations", "1.43",
         [](auto& c) {
             c.host.annotations = {{"a", "b"}};
         }},
        {"StartInterval", "1.44", [](auto& c) { c.healthcheck = berth::health_config{.start_interval = 1s}; }},
        {"ReadOnlyNonRecursive", "1.44",
         [](auto& c) {
             c.host.mounts = {{.source = "/a", .target = "/a", .bind_options = {.read_only_non_recursive = true}}};
         }},
        {"more than one network", "1.44",
         [](auto& c) {
             c.networking.endpoints_config = {{"a", {}}, {"b", {}}};
         }},
        {"MacAddress", "1.44",
         [](auto& c) {
             c.networking.endpoints_config = {{"a", {.mac_address = "02:42:ac:11:00:09"}}};
         }},
        {"Subpath", "1.45",
         [](auto& c) {
             c.host.mounts = {{.type = "volume", .source = "v", .target = "/v", .volume_options = {.subpath = "s"}}};
         }},
        {"Options", "1.46",
         [](auto& c) {
             c.host.mounts = {{.type = "tmpfs", .target = "/t", .tmpfs_options = {.options = {{"noexec"}}}}};
         }},
        {"GwPriority", "1.48",
         [](auto& c) {
             c.networking.endpoints_config = {{"a", {.gw_priority = 1}}};
         }},
        {"type image", "1.48",
         [](auto& c) { c.host.mounts = {{.type = "image", .source = "busybox", .target = "/i"}}; }},
    };
    SUBCASE("1.41: each field newer than 1.41") {
        for (auto& field : fields) {
            CAPTURE(field.what);
            berth::container_config c{.image = "alpine"};
            field.set(c);
            auto e = thrown<berth::unsupported_api_version_error>(
                [&] { run_on_mock(f.ioc, f.client.containers().create(c, "gated")); });
            CHECK(e.code() == berth::engine_errc::unsupported_api_version);
            CHECK(e.endpoint() == "POST /containers/create?name=gated");
            CHECK(contains(e.what(), field.what));
            CHECK(contains(e.what(), field.version));
            CHECK(contains(e.what(), "1.41"));
        }
    }
    SUBCASE("1.40: CgroupnsMode and the platform query parameter (both 1.41) are refused too") {
        f.engine.set_api_version("1.40", "1.12");
        berth::container_config c{.image = "alpine", .platform = "linux/amd64"};
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.containers().create(c)), berth::unsupported_api_version_error);
        c.platform.clear();
        c.host.cgroupns_mode = "private";
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.containers().create(c)), berth::unsupported_api_version_error);
    }
    SUBCASE("1.52: the container-wide MacAddress was removed, refused; 1.51 still sends it") {
        f.engine.set_api_version("1.52");
        berth::container_config c{.image = "alpine", .mac_address = "02:42:ac:11:00:02"};
        auto e = thrown<berth::unsupported_api_version_error>(
            [&] { run_on_mock(f.ioc, f.client.containers().create(c)); });
        CHECK(contains(e.what(), "removed in Engine API 1.52"));
        CHECK(f.engine.requests_to(verb::post, "/containers/create").empty());
    }
    SUBCASE("1.51: the container-wide MacAddress is still sent (deprecated since 1.44)") {
        f.engine.set_api_version("1.51");
        berth::container_config c{.image = "alpine", .mac_address = "02:42:ac:11:00:02"};
        run_on_mock(f.ioc, f.client.containers().create(c));
        auto sent = f.engine.requests_to(verb::post, "/containers/create");
        REQUIRE(sent.size() == 1);
        CHECK(sent[0].json().at("MacAddress") == "02:42:ac:11:00:02");
        return;
    }
    CHECK(f.engine.requests_to(verb::post, "/containers/create").empty());
}

TEST_CASE("container create: obviously bad values are invalid_argument_error before anything is sent") {
    using namespace std::chrono_literals;
    fixture f;
    f.engine.on(verb::post, "/containers/create", reply::json(201, R"({"Id":"c1"})"));
    struct bad_value {
        const char* what;
        std::function<void(berth::container_config&)> set;
    };
    const bad_value values[] = {
        {"negative ulimit", [](auto& c) { c.host.ulimits = {{.name = "nofile", .soft = -5, .hard = 10}}; }},
        {"soft above hard", [](auto& c) { c.host.ulimits = {{.name = "nofile", .soft = 20, .hard = 10}}; }},
        {"unnamed ulimit", [](auto& c) { c.host.ulimits = {{.soft = 1, .hard = 1}}; }},
        {"port protocol",
         [](auto& c) {
             c.host.port_bindings = {{"80/icmp", {{.host_ip = "127.0.0.1"}}}};
         }},
        {"exposed port protocol", [](auto& c) { c.exposed_ports = {"80/http"}; }},
        {"port number", [](auto& c) { c.exposed_ports = {"70000/tcp"}; }},
        {"port range", [](auto& c) { c.exposed_ports = {"90-80/tcp"}; }},
        {"host port",
         [](auto& c) {
             c.host.port_bindings = {{"80/tcp", {{.host_port = "x"}}}};
         }},
        {"restart policy name", [](auto& c) { c.host.restart_policy = {.name = "sometimes"}; }},
        {"retries without on-failure",
         [](auto& c) { c.host.restart_policy = {.name = "always", .maximum_retry_count = 3}; }},
        {"negative retries",
         [](auto& c) { c.host.restart_policy = {.name = "on-failure", .maximum_retry_count = -1}; }},
        {"auto_remove with restart",
         [](auto& c) {
             c.host.auto_remove = true;
             c.host.restart_policy = {.name = "always"};
         }},
        {"mount type", [](auto& c) { c.host.mounts = {{.type = "nfs", .target = "/x"}}; }},
        {"mount target", [](auto& c) { c.host.mounts = {{.source = "/x"}}; }},
        {"tmpfs source", [](auto& c) { c.host.mounts = {{.type = "tmpfs", .source = "/x", .target = "/t"}}; }},
        {"options of another type",
         [](auto& c) { c.host.mounts = {{.type = "tmpfs", .target = "/t", .volume_options = {.no_copy = true}}}; }},
        {"tmpfs option shape",
         [](auto& c) { c.host.mounts = {{.type = "tmpfs", .target = "/t", .tmpfs_options = {.options = {{}}}}}; }},
        {"healthcheck test", [](auto& c) { c.healthcheck = berth::health_config{.test = {"true"}}; }},
        {"healthcheck interval", [](auto& c) { c.healthcheck = berth::health_config{.interval = 10us}; }},
        {"cgroupns mode", [](auto& c) { c.host.cgroupns_mode = "shared"; }},
        {"swappiness", [](auto& c) { c.host.memory_swappiness = 101; }},
        {"oom score", [](auto& c) { c.host.oom_score_adj = -1001; }},
        {"negative memory", [](auto& c) { c.host.memory = -1; }},
        {"blkio weight", [](auto& c) { c.host.blkio_weight = 5; }},
        {"unnamed network",
         [](auto& c) {
             c.networking.endpoints_config = {{"", {}}};
         }},
    };
    for (auto& value : values) {
        CAPTURE(value.what);
        berth::container_config c{.image = "alpine"};
        value.set(c);
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.containers().create(c)), berth::invalid_argument_error);
    }
    CHECK(f.engine.requests_to(verb::post, "/containers/create").empty());
    CHECK(f.engine.requests().empty());  // refused before even asking the engine's version
}

TEST_CASE("container create: extra merges into the body recursively; other values replace") {
    fixture f;
    f.engine.on(verb::post, "/containers/create", reply::json(201, R"({"Id":"c1"})"));
    berth::container_config c{.image = "alpine", .cmd = {"true"}, .labels = {{"a", "1"}}};
    c.host.network_mode = "none";
    c.host.memory = 1024;
    c.extra = json::parse(R"({"HostConfig": {"Foo": 1, "Memory": 2048, "LogConfig": {"Type": "none"}},
                              "Labels": {"b": "2"}, "Cmd": ["false"], "ArgsEscaped": false})")
                  .as_object();
    run_on_mock(f.ioc, f.client.containers().create(c));
    auto sent = f.engine.requests_to(verb::post, "/containers/create");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].json() == json::parse(R"({"Image": "alpine", "Cmd": ["false"], "Labels": {"a": "1", "b": "2"},
        "ArgsEscaped": false,
        "HostConfig": {"NetworkMode": "none", "Memory": 2048, "Foo": 1, "LogConfig": {"Type": "none"}}})"));
}

TEST_CASE("container create: extra loses nothing the typed fields wrote that it does not name") {
    fixture f;
    f.engine.on(verb::post, "/containers/create", reply::json(201, R"({"Id":"c1"})"));
    auto c = full_container_config();
    c.platform.clear();
    auto without_extra = json::value_from(c).as_object();
    c.extra =
        json::parse(R"({"HostConfig": {"Annotations2": {"x": "y"}}, "NetworkingConfig": {"Other": 1}})").as_object();
    run_on_mock(f.ioc, f.client.containers().create(c));
    auto sent = f.engine.requests_to(verb::post, "/containers/create");
    REQUIRE(sent.size() == 1);
    auto body = sent[0].json().as_object();
    // Every key the typed fields wrote is still there with its value, at every level.
    for (auto& [key, value] : without_extra) {
        const std::string name(key);
        CAPTURE(name);
        REQUIRE(body.contains(key));
        if (!value.is_object()) CHECK(body.at(key) == value);
    }
    for (auto& [key, value] : without_extra.at("HostConfig").as_object()) {
        const std::string name(key);
        CAPTURE(name);
        CHECK(body.at("HostConfig").at(key) == value);
    }
    CHECK(body.at("HostConfig").at("Annotations2") == json::parse(R"({"x":"y"})"));
    CHECK(body.at("NetworkingConfig").at("EndpointsConfig") ==
          without_extra.at("NetworkingConfig").at("EndpointsConfig"));
    CHECK(body.at("NetworkingConfig").at("Other") == 1);
    CHECK(body.size() == without_extra.size());
}

TEST_CASE("container names and archive paths with spaces and UTF-8 are percent-encoded") {
    fixture f;
    f.engine.on(verb::get, "/containers/my app/archive", fixture::archive_reply());
    f.engine.on(verb::head, "/containers/my app/archive", fixture::archive_reply());
    f.engine.on(verb::put, "/containers/my app/archive", reply::no_content(200));

    std::string got;
    auto sink = [&](std::span<const char> bytes) { got.append(bytes.data(), bytes.size()); };
    run_on_mock(f.ioc, f.client.archives().get("my app", "/tmp/dir with space/é.txt", sink));
    auto stat = run_on_mock(f.ioc, f.client.archives().stat("my app", "/tmp/a&b=c?d"));
    CHECK(stat.size == 4096);
    std::string tar(3000, 'x');
    berth::http::memory_source source{tar};
    run_on_mock(f.ioc, f.client.archives().put("my app", "/dst dir", source));

    auto gets = f.engine.requests_to(verb::get, "/containers/my app/archive");
    REQUIRE(gets.size() == 1);
    CHECK(gets[0].target == "/v1.41/containers/my%20app/archive?path=%2Ftmp%2Fdir%20with%20space%2F%C3%A9.txt");
    CHECK(gets[0].query("path") == "/tmp/dir with space/é.txt");
    auto heads = f.engine.requests_to(verb::head, "/containers/my app/archive");
    REQUIRE(heads.size() == 1);
    CHECK(heads[0].target == "/v1.41/containers/my%20app/archive?path=%2Ftmp%2Fa%26b%3Dc%3Fd");
    CHECK(heads[0].query("path") == "/tmp/a&b=c?d");
    auto puts = f.engine.requests_to(verb::put, "/containers/my app/archive");
    REQUIRE(puts.size() == 1);
    CHECK(puts[0].target == "/v1.41/containers/my%20app/archive?path=%2Fdst%20dir");
    CHECK(puts[0].header("Content-Type") == "application/x-tar");
    CHECK(puts[0].chunked);
    CHECK(puts[0].body == tar);
}

TEST_CASE("a build uploads its context chunked as application/x-tar with its options in the query") {
    berth::client_options options;
    options.http.upload_chunk_size = 1000;  // several chunks for a small context
    fixture f(options);
    f.engine.on(verb::post, "/build",
                reply::chunked(200,
                               {R"({"stream":"Step 1/1 : FROM scratch\n"})"
                                "\n",
                                R"({"aux":{"ID":"sha256:b1"}})"
                                "\n"},
                               "application/json"));
    std::string context(4500, '\0');
    for (std::size_t i = 0; i < context.size(); ++i) context[i] = static_cast<char>(i * 7);
    berth::http::memory_source source{context};
    berth::build_options build;
    build.tag = "eval/app:1";
    build.network_mode = "none";
    build.build_args = {{"PY", "3.11"}};

    auto image = run_on_mock(f.ioc, f.client.images().build(source, build));
    CHECK(image.id == "sha256:b1");
    auto sent = f.engine.requests_to(verb::post, "/build");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].chunked);
    CHECK(sent[0].header("Content-Type") == "application/x-tar");
    CHECK_FALSE(sent[0].has_header("Content-Length"));
    CHECK(sent[0].body == context);
    CHECK(sent[0].query("t") == "eval/app:1");
    CHECK(sent[0].query("networkmode") == "none");
    CHECK(sent[0].query("buildargs") == R"({"PY":"3.11"})");
    CHECK(sent[0].query("rm") == "1");
    CHECK(sent[0].target.starts_with("/v1.41/build?t=eval%2Fapp%3A1&"));
}

TEST_CASE("an exec is created with its command and started on an upgraded connection") {
    fixture f;
    output_log log;
    berth::exec_options options;
    options.on_output = std::ref(log);
    options.cmd = {"python3", "-c", "print('ü')"};
    options.env = {"A=1"};
    options.working_dir = "/work dir";
    CHECK(run_on_mock(f.ioc, f.client.execs().run("app", options)) == 3);

    auto creates = f.engine.requests_to(verb::post, "/containers/app/exec");
    REQUIRE(creates.size() == 1);
    CHECK(creates[0].header("Content-Type") == "application/json");
    auto expected = json::parse(R"j({"AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,
                                    "Cmd":["python3","-c","print('ü')"],"Env":["A=1"],"WorkingDir":"/work dir"})j");
    CHECK(creates[0].json() == expected);
    auto starts = f.engine.requests_to(verb::post, "/exec/e1/start");
    REQUIRE(starts.size() == 1);
    CHECK(starts[0].target == exec_start_endpoint.substr(5));
    CHECK(starts[0].header("Connection") == "Upgrade");
    CHECK(starts[0].header("Upgrade") == "tcp");
    CHECK(starts[0].header("Content-Type") == "application/json");
    CHECK(starts[0].json() == json::parse(R"({"Detach":false,"Tty":false})"));
    CHECK(f.engine.requests_to(verb::get, "/exec/e1/json").size() >= 1);
}

TEST_CASE("the mock engine answers an unscripted request with a 404 naming it") {
    fixture f;
    auto e = thrown<berth::not_found_error>([&] { run_on_mock(f.ioc, f.client.containers().inspect("nope")); });
    CHECK(e.message() == "mock engine: no route for GET /v1.41/containers/nope/json");
    CHECK(run_on_mock(f.ioc, f.client.system().ping()));
}

TEST_CASE("an empty exec command is refused before anything is sent") {
    fixture f;
    output_log log;
    berth::exec_options options;
    options.on_output = std::ref(log);
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.execs().run("app", options)), berth::invalid_argument_error);
    CHECK(f.engine.requests_to(verb::post, "/containers/app/exec").empty());
}

// ------------------------------------------------------------------------------------------------------------
// API version negotiation
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("the API version is the newest both speak, and asked for once") {
    fixture f;
    std::string offered, expected;
    SUBCASE("an engine newer than berth is spoken to at berth's newest") {
        offered = "1.60";
        expected = "1.56";
    }
    SUBCASE("an older engine is spoken to at its own version") {
        offered = "1.43";
        expected = "1.43";
    }
    SUBCASE("berth's oldest") {
        offered = "1.40";
        expected = "1.40";
    }
    f.engine.set_api_version(offered);
    f.plain();
    f.plain();
    f.download();
    f.exec();
    CHECK(run_on_mock(f.ioc, f.client.api_version()) == expected);
    CHECK(run_on_mock(f.ioc, f.client.kind()) == berth::engine_kind::docker);
    CHECK(f.engine.requests_to(verb::get, "/version").size() == 1);
    for (auto& r : f.engine.requests())
        if (r.path != "/version") CHECK(r.api_version == expected);
}

// Docker 29.0 raised the minimum API version to 1.44 and refuses older clients with this 400.
TEST_CASE("an engine like Docker 29.0 (API 1.51, minimum 1.44) is spoken to at 1.51") {
    fixture f;
    f.engine.set_api_version("1.51", "1.44");
    f.plain();
    f.download();
    f.exec();
    for (auto& r : f.engine.requests())
        if (r.path != "/version") CHECK(r.api_version == "1.51");
    SUBCASE("a pinned version within its range is used as pinned") {
        berth::client_options options;
        options.api_version = "1.44";
        mock_client pinned(f.engine, options);
        CHECK(run_on_mock(f.ioc, pinned.containers().inspect("app")).id == "abc123");
        CHECK(f.engine.requests().back().api_version == "1.44");
    }
}

TEST_CASE("Docker's refusal of the client's version (an engine upgraded under a running client) is typed") {
    fixture f;
    f.plain();  // negotiated 1.41 with Docker 20.10
    f.engine.set_api_version("1.51", "1.44");
    auto e = thrown<berth::unsupported_api_version_error>([&] { f.plain(); });
    CHECK(e.status() == 400);
    CHECK(e.message() == "client version 1.41 is too old. Minimum supported API version is 1.44, please upgrade "
                         "your client to a newer version");
    CHECK(e.endpoint() == inspect_endpoint);
}

TEST_CASE("an engine like current Docker (API 1.56, minimum 1.40) is spoken to at 1.56") {
    fixture f;
    f.engine.set_api_version("1.56", "1.40");
    f.plain();
    f.exec();
    CHECK(run_on_mock(f.ioc, f.client.api_version()) == "1.56");
    CHECK(f.engine.requests_to(verb::get, "/containers/app/json").at(0).target == "/v1.56/containers/app/json");
}

TEST_CASE("no API version in common is an unsupported_api_version_error, and nothing but /version is sent") {
    fixture f;
    std::string expected_text;
    SUBCASE("an engine older than berth supports") {
        f.engine.set_api_version("1.39", "1.12");
        expected_text = "berth needs at least 1.40";
    }
    SUBCASE("an engine whose minimum is above berth's newest") {
        f.engine.set_api_version("1.70", "1.60");
        expected_text = "the engine speaks API 1.60 to 1.70";
    }
    SUBCASE("a pinned version below the engine's minimum (Docker 29.0)") {
        berth::client_options options;
        options.api_version = "1.41";
        fixture g(options);
        g.engine.set_api_version("1.51", "1.44");
        auto e = thrown<berth::unsupported_api_version_error>([&] { g.plain(); });
        CHECK(contains(e.what(), "pinned to 1.41"));
        CHECK(g.engine.requests().size() == 1);
        return;
    }
    SUBCASE("a pinned version above the engine's newest (Docker 20.10)") {
        berth::client_options options;
        options.api_version = "1.44";
        fixture g(options);
        auto e = thrown<berth::unsupported_api_version_error>([&] { g.exec(); });
        CHECK(contains(e.what(), "newer than the engine's"));
        CHECK(g.engine.requests().size() == 1);
        return;
    }
    auto e = thrown<berth::unsupported_api_version_error>([&] { f.plain(); });
    CHECK(e.code() == berth::engine_errc::unsupported_api_version);
    CHECK(e.endpoint() == "GET /version");
    CHECK(contains(e.what(), expected_text));
    CHECK_THROWS_AS(f.download(), berth::unsupported_api_version_error);  // every call, not just the first
    CHECK(f.engine.requests().size() == 1);
    CHECK(f.engine.requests()[0].path == "/version");
}

TEST_CASE("an engine's ApiVersion that is not digits.digits never reaches a request line") {
    fixture f;
    std::string version;
    SUBCASE("a path") { version = "1.40/../../evil"; }
    SUBCASE("a second request smuggled in with CRLF") {
        version = "1.41/containers/app/json HTTP/1.1\r\nHost: docker\r\n\r\nDELETE /v1.41/containers/app";
    }
    SUBCASE("a query") { version = "1.41?x="; }
    SUBCASE("not a number") { version = "latest"; }
    f.engine.set_api_version(version);
    auto e = thrown<berth::protocol_error>([&] { f.plain(); });
    CHECK(e.endpoint() == "GET /version");
    CHECK(contains(e.what(), "ApiVersion"));
    CHECK(f.engine.requests().size() == 1);
    CHECK(f.engine.requests()[0].path == "/version");
}

TEST_CASE("Podman is recognised from /version") {
    fixture f;
    f.engine.answer_as_podman();
    CHECK(run_on_mock(f.ioc, f.client.kind()) == berth::engine_kind::podman);
    auto v = run_on_mock(f.ioc, f.client.version());
    CHECK(v.version == "4.3.1");
    CHECK(v.api_version == "1.41");
}

TEST_CASE("a /version reply without ApiVersion is a protocol_error, and nothing else is sent") {
    fixture f;
    f.engine.on(verb::get, "/version", reply::json(200, R"({"Version":"1.0"})"));
    auto e = thrown<berth::protocol_error>([&] { f.plain(); });
    CHECK(e.endpoint() == "GET /version");
    CHECK(contains(e.what(), "ApiVersion"));
    CHECK(f.engine.requests().size() == 1);
}

// ------------------------------------------------------------------------------------------------------------
// Faults: each for a plain request, a streamed download and an exec; each must surface as a clear error, and the
// client must work again afterwards with no connection left behind.
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("a reply cut short in its body is a transport error naming the endpoint") {
    fixture f;
    SUBCASE("plain request") {
        f.engine.once(verb::get, "/containers/app/json", reply::reset_mid_body(200, R"({"Id":"abc123"})", 5));
        auto e = thrown<boost::system::system_error>([&] { f.plain(); });
        CHECK(contains(e.what(), inspect_endpoint));
        CHECK(e.code() == boost::beast::http::error::partial_message);
        f.check_recovers(&fixture::plain);
    }
    SUBCASE("streamed download: the slices before the cut reach the sink, then the error") {
        reply cut = fixture::archive_reply();
        cut.declared_length = 100;
        cut.then_close();
        f.engine.once(verb::get, "/containers/app/archive", cut);
        std::string got;
        auto sink = [&](std::span<const char> bytes) { got.append(bytes.data(), bytes.size()); };
        auto e = thrown<boost::system::system_error>(
            [&] { run_on_mock(f.ioc, f.client.archives().get("app", "/data", sink)); });
        CHECK(contains(e.what(), archive_endpoint));
        CHECK(got == "tar-bytes-part-2");
        f.check_recovers(&fixture::download);
    }
    SUBCASE("exec: the create reply is cut") {
        f.engine.once(verb::post, "/containers/app/exec", reply::reset_mid_body(201, R"({"Id":"e1"})", 3));
        auto e = thrown<boost::system::system_error>([&] { f.exec(); });
        CHECK(contains(e.what(), exec_create_endpoint));
        f.check_recovers(&fixture::exec);
    }
    SUBCASE("exec: the output stream ends inside a frame") {
        std::string frame = exec_frame(out, "hello\n");
        f.engine.once(verb::post, "/exec/e1/start", reply::upgrade({frame.substr(0, 10)}));
        auto e = thrown<berth::protocol_error>([&] { f.exec(); });
        CHECK(e.endpoint() == exec_start_endpoint);
        CHECK(contains(e.what(), "inside a frame"));
        f.check_recovers(&fixture::exec);
    }
}

TEST_CASE("a truncated reply head is a transport error naming the endpoint, and is not replayed") {
    fixture f;
    SUBCASE("plain request") {
        f.engine.once(verb::get, "/containers/app/json", reply::truncated_head());
        auto e = thrown<boost::system::system_error>([&] { f.plain(); });
        CHECK(contains(e.what(), inspect_endpoint));
        CHECK(contains(e.what(), "reply head"));
        CHECK(f.engine.requests_to(verb::get, "/containers/app/json").size() == 1);
        f.check_recovers(&fixture::plain);
    }
    SUBCASE("streamed download") {
        f.engine.once(verb::get, "/containers/app/archive", reply::truncated_head());
        auto e = thrown<boost::system::system_error>([&] { f.download(); });
        CHECK(contains(e.what(), archive_endpoint));
        f.check_recovers(&fixture::download);
    }
    SUBCASE("exec") {
        f.engine.once(verb::post, "/exec/e1/start", reply::raw("HTTP/1.1 101 UPGRADED\r\nConnection: Upgr"));
        auto e = thrown<boost::system::system_error>([&] { f.exec(); });
        CHECK(contains(e.what(), exec_start_endpoint));
        CHECK(f.engine.requests_to(verb::post, "/exec/e1/start").size() == 1);
        f.check_recovers(&fixture::exec);
    }
}

TEST_CASE("an engine that hangs up without a byte is a transport error") {
    fixture f;
    f.plain();  // the connection is now a reused one: the hang-up on the retry must not be retried again
    f.engine.close_idle_connections();
    f.engine.once(verb::get, "/containers/app/json", reply::hang_up());
    auto e = thrown<boost::system::system_error>([&] { f.plain(); });
    CHECK(contains(e.what(), inspect_endpoint));
    CHECK(f.engine.requests_to(verb::get, "/containers/app/json").size() == 2);  // the first, then one retry
    f.check_recovers(&fixture::plain);
}

TEST_CASE("a stalled engine is ended by a time limit") {
    fixture f;
    SUBCASE("plain request") {
        f.engine.once(verb::get, "/containers/app/json", reply::stall());
        auto e = thrown<boost::system::system_error>(
            [&] { run_on_mock(f.ioc, berth::with_timeout(f.client.containers().inspect("app"), 100ms)); });
        CHECK(e.code() == asio::error::timed_out);
        f.check_recovers(&fixture::plain);
    }
    SUBCASE("plain request, with the client's request_timeout") {
        berth::client_options options;
        options.request_timeout = 100ms;
        fixture g(options);
        g.engine.once(verb::get, "/containers/app/json", reply::stall());
        auto e = thrown<boost::system::system_error>([&] { g.plain(); });
        CHECK(e.code() == asio::error::timed_out);
        g.check_recovers(&fixture::plain);
    }
    SUBCASE("streamed download stalled in the middle of its body") {
        reply stalled = fixture::archive_reply();
        stalled.declared_length = 100;
        stalled.then_stall();
        f.engine.once(verb::get, "/containers/app/archive", stalled);
        std::string got;
        auto sink = [&](std::span<const char> bytes) { got.append(bytes.data(), bytes.size()); };
        auto e = thrown<boost::system::system_error>(
            [&] { run_on_mock(f.ioc, berth::with_timeout(f.client.archives().get("app", "/data", sink), 100ms)); });
        CHECK(e.code() == asio::error::timed_out);
        CHECK(got == "tar-bytes-part-2");
        f.check_recovers(&fixture::download);
    }
    SUBCASE("exec whose start is never answered") {
        f.engine.once(verb::post, "/exec/e1/start", reply::stall());
        output_log log;
        berth::exec_options options;
        options.on_output = std::ref(log);
        options.cmd = {"true"};
        auto e = thrown<boost::system::system_error>(
            [&] { run_on_mock(f.ioc, berth::with_timeout(f.client.execs().run("app", options), 100ms)); });
        CHECK(e.code() == asio::error::timed_out);
        f.check_recovers(&fixture::exec);
    }
    SUBCASE("exec whose output stream stays open on Docker") {
        f.engine.once(verb::post, "/exec/e1/start", reply::upgrade({exec_frame(out, "partial\n")}).then_stall());
        output_log log;
        berth::exec_options options;
        options.on_output = std::ref(log);
        options.cmd = {"sleep", "infinity"};
        auto e = thrown<boost::system::system_error>(
            [&] { run_on_mock(f.ioc, berth::with_timeout(f.client.execs().run("app", options), 100ms)); });
        CHECK(e.code() == asio::error::timed_out);
        CHECK(log.stdout_text == "partial\n");
        f.check_recovers(&fixture::exec);
    }
}

TEST_CASE("a stalled engine is ended by cancellation") {
    fixture f;
    SUBCASE("plain request") {
        f.engine.once(verb::get, "/containers/app/json", reply::stall());
        auto e = thrown<boost::system::system_error>(
            [&] { run_cancelled_after(f.ioc, f.client.containers().inspect("app"), 50ms); });
        CHECK(e.code() == asio::error::operation_aborted);
        f.check_recovers(&fixture::plain);
    }
    SUBCASE("streamed download") {
        reply stalled = fixture::archive_reply();
        stalled.declared_length = 100;
        stalled.then_stall();
        f.engine.once(verb::get, "/containers/app/archive", stalled);
        auto sink = [](std::span<const char>) {};
        auto e = thrown<boost::system::system_error>(
            [&] { run_cancelled_after(f.ioc, f.client.archives().get("app", "/data", sink), 50ms); });
        CHECK(e.code() == asio::error::operation_aborted);
        f.check_recovers(&fixture::download);
    }
    SUBCASE("exec") {
        f.engine.once(verb::post, "/exec/e1/start", reply::upgrade({exec_frame(out, "partial\n")}).then_stall());
        output_log log;
        berth::exec_options options;
        options.on_output = std::ref(log);
        options.cmd = {"sleep", "infinity"};
        auto e = thrown<boost::system::system_error>(
            [&] { run_cancelled_after(f.ioc, f.client.execs().run("app", options), 50ms); });
        CHECK(e.code() == asio::error::operation_aborted);
        f.check_recovers(&fixture::exec);
    }
}

TEST_CASE("an engine error carries the status and the engine's own message") {
    fixture f;
    SUBCASE("500 on a plain request") {
        f.engine.once(verb::get, "/containers/app/json", reply::error(500, "driver failed programming"));
        auto e = thrown<berth::engine_error>([&] { f.plain(); });
        CHECK(e.status() == 500);
        CHECK(e.code() == berth::engine_errc::server_error);
        CHECK(e.message() == "driver failed programming");
        CHECK(e.endpoint() == inspect_endpoint);
        CHECK(contains(e.what(), "500"));
        CHECK(contains(e.what(), "driver failed programming"));
        f.check_recovers(&fixture::plain);
    }
    SUBCASE("404 is a not_found_error") {
        f.engine.once(verb::get, "/containers/app/json", reply::error(404, "No such container: app"));
        auto e = thrown<berth::not_found_error>([&] { f.plain(); });
        CHECK(e.status() == 404);
        CHECK(e.message() == "No such container: app");
        f.check_recovers(&fixture::plain);
    }
    SUBCASE("409 is a conflict_error") {
        f.engine.on(verb::delete_, "/containers/app", reply::error(409, "container is running: stop it first"));
        auto e = thrown<berth::conflict_error>([&] { run_on_mock(f.ioc, f.client.containers().remove("app")); });
        CHECK(e.code() == berth::engine_errc::conflict);
        CHECK(e.message() == "container is running: stop it first");
        CHECK(e.endpoint() == "DELETE /v1.41/containers/app?force=0&v=0");
    }
    SUBCASE("an error body that is not JSON is the message as text") {
        f.engine.once(verb::get, "/containers/app/json", reply::text(502, "Bad Gateway\n"));
        auto e = thrown<berth::engine_error>([&] { f.plain(); });
        CHECK(e.status() == 502);
        CHECK(e.message() == "Bad Gateway");
    }
    SUBCASE("500 on a streamed download") {
        f.engine.once(verb::get, "/containers/app/archive", reply::error(500, "cannot read the container's files"));
        auto e = thrown<berth::engine_error>([&] { f.download(); });
        CHECK(e.status() == 500);
        CHECK(e.message() == "cannot read the container's files");
        CHECK(e.endpoint() == archive_endpoint);
        f.check_recovers(&fixture::download);
    }
    SUBCASE("404 on a download names the container and the path when the engine gives no message") {
        f.engine.once(verb::get, "/containers/app/archive", reply::no_content(404));
        auto e = thrown<berth::not_found_error>([&] { f.download(); });
        CHECK(contains(e.message(), "app:/data"));
        f.check_recovers(&fixture::download);
    }
    SUBCASE("500 on an exec start") {
        f.engine.once(verb::post, "/exec/e1/start", reply::error(500, "OCI runtime exec failed"));
        auto e = thrown<berth::engine_error>([&] { f.exec(); });
        CHECK(e.status() == 500);
        CHECK(e.message() == "OCI runtime exec failed");
        CHECK(e.endpoint() == exec_start_endpoint);
        f.check_recovers(&fixture::exec);
    }
    SUBCASE("409 on an exec create is a conflict_error") {
        f.engine.once(verb::post, "/containers/app/exec", reply::error(409, "container app is not running"));
        auto e = thrown<berth::conflict_error>([&] { f.exec(); });
        CHECK(e.message() == "container app is not running");
        f.check_recovers(&fixture::exec);
    }
}

TEST_CASE("garbage instead of HTTP is a protocol_error naming the endpoint") {
    fixture f;
    SUBCASE("plain request") {
        f.engine.once(verb::get, "/containers/app/json", reply::garbage());
        auto e = thrown<berth::protocol_error>([&] { f.plain(); });
        CHECK(e.endpoint() == inspect_endpoint);
        CHECK(contains(e.what(), "malformed HTTP"));
        f.check_recovers(&fixture::plain);
    }
    SUBCASE("streamed download") {
        f.engine.once(verb::get, "/containers/app/archive", reply::garbage());
        auto e = thrown<berth::protocol_error>([&] { f.download(); });
        CHECK(e.endpoint() == archive_endpoint);
        f.check_recovers(&fixture::download);
    }
    SUBCASE("garbage in a chunked body") {
        f.engine.once(verb::get, "/containers/app/archive",
                      reply::raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                 "X-Docker-Container-Path-Stat: e30=\r\n\r\nzz\r\nnot a chunk\r\n"));
        auto e = thrown<berth::protocol_error>([&] { f.download(); });
        CHECK(e.endpoint() == archive_endpoint);
        f.check_recovers(&fixture::download);
    }
    SUBCASE("exec") {
        f.engine.once(verb::post, "/exec/e1/start", reply::garbage());
        auto e = thrown<berth::protocol_error>([&] { f.exec(); });
        CHECK(e.endpoint() == exec_start_endpoint);
        f.check_recovers(&fixture::exec);
    }
}

TEST_CASE("a 200 whose body is not the JSON expected is a protocol_error naming the endpoint") {
    fixture f;
    SUBCASE("plain request: not JSON at all") {
        f.engine.once(verb::get, "/containers/app/json", reply::text(200, "<html>proxy login</html>"));
        auto e = thrown<berth::protocol_error>([&] { f.plain(); });
        CHECK(contains(e.endpoint(), "/containers/app/json"));
        CHECK(contains(e.what(), "not valid JSON"));
        CHECK(contains(e.what(), "<html>proxy login"));
        f.check_recovers(&fixture::plain);
    }
    SUBCASE("plain request: JSON of the wrong shape") {
        f.engine.once(verb::get, "/containers/app/json", reply::json(200, R"([{"Id":"abc123"}])"));
        auto e = thrown<berth::protocol_error>([&] { f.plain(); });
        CHECK(contains(e.endpoint(), "/containers/app/json"));
        CHECK(contains(e.what(), "JSON object"));
    }
    SUBCASE("plain request: a field of the wrong type") {
        f.engine.once(verb::get, "/containers/app/json",
                      reply::json(200, R"({"Id":"abc123","State":{"Running":"yes"}})"));
        auto e = thrown<berth::protocol_error>([&] { f.plain(); });
        CHECK(contains(e.what(), "Running"));
    }
    SUBCASE("streamed download: a stat header that is not base64 JSON") {
        reply bad = reply::streamed(200, {"tar"}, "application/x-tar");
        bad.header("X-Docker-Container-Path-Stat", "bm90IGpzb24=");  // "not json"
        f.engine.once(verb::get, "/containers/app/archive", bad);
        auto e = thrown<berth::protocol_error>([&] { f.download(); });
        CHECK(e.endpoint() == archive_endpoint);
        f.check_recovers(&fixture::download);
    }
    SUBCASE("streamed download: no stat header") {
        f.engine.once(verb::get, "/containers/app/archive", reply::streamed(200, {"tar"}, "application/x-tar"));
        auto e = thrown<berth::protocol_error>([&] { f.download(); });
        CHECK(contains(e.what(), "X-Docker-Container-Path-Stat"));
        f.check_recovers(&fixture::download);
    }
    SUBCASE("exec: the create reply has no Id") {
        f.engine.once(verb::post, "/containers/app/exec", reply::json(201, R"({"Id":42})"));
        auto e = thrown<berth::protocol_error>([&] { f.exec(); });
        CHECK(contains(e.endpoint(), "/containers/app/exec"));
        CHECK(contains(e.what(), "'Id'"));
        f.check_recovers(&fixture::exec);
    }
    SUBCASE("exec: the inspect reply is not JSON") {
        f.engine.once(verb::get, "/exec/e1/json", reply::text(200, "{"));
        auto e = thrown<berth::protocol_error>([&] { f.exec(); });
        CHECK(contains(e.endpoint(), "/exec/e1/json"));
        f.check_recovers(&fixture::exec);
    }
}

TEST_CASE("an idle keep-alive connection closed by the engine is retried once on a fresh connection") {
    fixture f;
    SUBCASE("plain request") {
        f.plain();
        f.engine.close_idle_connections();
        f.plain();
        CHECK(f.engine.connections_opened() == 2);
        CHECK(f.engine.requests_to(verb::get, "/containers/app/json").size() == 2);
    }
    SUBCASE("plain request after a reply the engine closed the connection behind") {
        f.engine.once(verb::get, "/containers/app/json", container_json("abc123").then_close());
        f.plain();
        f.plain();
        CHECK(f.engine.connections_opened() == 2);
    }
    SUBCASE("streamed download") {
        f.download();
        f.engine.close_idle_connections();
        f.download();
        CHECK(f.engine.connections_opened() == 2);
    }
    SUBCASE("exec") {
        f.plain();
        f.engine.close_idle_connections();
        f.exec();
        CHECK(f.engine.requests_to(verb::post, "/containers/app/exec").size() == 1);
        CHECK(f.engine.requests_to(verb::post, "/exec/e1/start").size() == 1);
    }
    SUBCASE("a streamed upload never goes on a reused connection") {
        f.engine.on(verb::put, "/containers/app/archive", reply::no_content(200));
        f.plain();
        std::string tar(100, 't');
        berth::http::memory_source source{tar};
        run_on_mock(f.ioc, f.client.archives().put("app", "/", source));
        CHECK(f.engine.connections_opened() == 2);
        auto puts = f.engine.requests_to(verb::put, "/containers/app/archive");
        REQUIRE(puts.size() == 1);
        CHECK(puts[0].connection == 2);
        CHECK(puts[0].body == tar);
    }
    f.check_no_leak();
}

TEST_CASE("an engine that refuses connections is a system_error naming it, and the client recovers") {
    fixture f;
    f.engine.refuse_connections();
    auto e = thrown<boost::system::system_error>([&] { f.plain(); });
    CHECK(e.code() == asio::error::connection_refused);
    // The engine, the request and the operation; not the place in Asio's sources where the error code was made.
    CHECK(message_of<boost::system::system_error>([&] { f.plain(); }) ==
          "mock://engine: GET /version: connect: " +
              boost::system::error_code(asio::error::connection_refused).message());
    f.engine.refuse_connections(false);
    f.check_recovers(&fixture::plain);
}

// ------------------------------------------------------------------------------------------------------------
// Nothing replayed, nothing cut, nothing waited on forever (issue 13)
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("a request the engine may have received on a reused connection is not sent again unless replayable") {
    fixture f;
    f.plain();  // the pool now holds a keep-alive connection, which the next request reuses
    SUBCASE("a POST read by the engine, which then closes the connection without a reply, is an error") {
        f.engine.once(verb::post, "/containers/create", reply::hang_up());
        berth::container_config config;
        config.image = "busybox";
        config.host.network_mode = "none";
        auto text = message_of<boost::system::system_error>(
            [&] { run_on_mock(f.ioc, f.client.containers().create(config, "twice")); });
        CHECK(text.starts_with("mock://engine: POST /v1.41/containers/create?name=twice: reading the reply head: "));
        auto creates = f.engine.requests_to(verb::post, "/containers/create");
        CHECK(creates.size() == 1);  // the engine created the container once; berth must not ask again
        CHECK(creates.at(0).connection == 1);
    }
    SUBCASE("a DELETE likewise (replayed, it would report a removal that succeeded as 404)") {
        f.engine.once(verb::delete_, "/containers/app", reply::hang_up());
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.containers().remove("app")), boost::system::system_error);
        CHECK(f.engine.requests_to(verb::delete_, "/containers/app").size() == 1);
    }
    SUBCASE("a GET is sent again on a fresh connection") {
        f.engine.once(verb::get, "/containers/app/json", reply::hang_up());
        f.plain();
        auto inspects = f.engine.requests_to(verb::get, "/containers/app/json");
        REQUIRE(inspects.size() == 3);
        CHECK(inspects[1].connection == 1);
        CHECK(inspects[2].connection == 2);
    }
    SUBCASE("a POST whose write failed before its first byte (the engine had closed the idle connection) is sent") {
        f.engine.close_idle_connections();
        f.engine.on(verb::post, "/containers/app/start", reply::no_content());
        run_on_mock(f.ioc, f.client.containers().start("app"));
        auto starts = f.engine.requests_to(verb::post, "/containers/app/start");
        REQUIRE(starts.size() == 1);
        CHECK(starts[0].connection == 2);
    }
    f.check_recovers(&fixture::plain);
}

// A reply framed as the end of the connection: the head, then the body, then the engine closes.
reply unframed(reply r) {
    r.how = reply::framing::head_only;
    r.after = reply::then::close;
    return r;
}

TEST_CASE("a 2xx reply whose end is the connection closing (no length, not chunked) is a protocol_error") {
    fixture f;
    SUBCASE("an archive, cut at a member boundary, is not taken as complete") {
        f.engine.once(verb::get, "/containers/app/archive", unframed(fixture::archive_reply()));
        std::string got;
        auto sink = [&](std::span<const char> bytes) { got.append(bytes.data(), bytes.size()); };
        auto e = thrown<berth::protocol_error>(
            [&] { run_on_mock(f.ioc, f.client.archives().get("app", "/data", sink)); });
        CHECK(e.endpoint() == archive_endpoint);
        CHECK(contains(e.what(), "neither Content-Length nor chunked"));
        f.check_recovers(&fixture::download);
    }
    SUBCASE("a JSON reply") {
        f.engine.once(verb::get, "/containers/app/json", unframed(container_json("abc123")));
        auto e = thrown<berth::protocol_error>([&] { f.plain(); });
        CHECK(e.endpoint() == inspect_endpoint);
        f.check_recovers(&fixture::plain);
    }
    SUBCASE("an error reply so framed still carries the engine's status and message") {
        f.engine.once(verb::get, "/containers/app/json", unframed(reply::error(404, "No such container: app")));
        auto e = thrown<berth::not_found_error>([&] { f.plain(); });
        CHECK(e.message() == "No such container: app");
        f.check_recovers(&fixture::plain);
    }
}

TEST_CASE("an exec start answered without switching protocols is a protocol_error, not a wait forever") {
    fixture f;
    SUBCASE("200 with Content-Length: 0") { f.engine.once(verb::post, "/exec/e1/start", reply::no_content(200)); }
    SUBCASE("204") { f.engine.once(verb::post, "/exec/e1/start", reply::no_content(204)); }
    SUBCASE("200 with the output as a framed body") {
        f.engine.once(verb::post, "/exec/e1/start",
                      reply::streamed(200, {exec_frame(out, "hello\n")}, "application/vnd.docker.raw-stream"));
    }
    auto e = thrown<berth::protocol_error>([&] { f.exec(); });
    CHECK(e.endpoint() == exec_start_endpoint);
    CHECK(contains(e.what(), "instead of switching protocols (101)"));
    f.check_recovers(&fixture::exec);
}

TEST_CASE("interim 1xx replies before the real one are skipped") {
    fixture f;
    const std::string body = R"({"Id":"abc123","Name":"/app"})";
    f.engine.once(verb::get, "/containers/app/json",
                  reply::raw("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
                             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                             std::to_string(body.size()) + "\r\n\r\n" + body));
    f.plain();
    SUBCASE("but a 101 to a request that asked for no upgrade is a protocol_error") {
        f.engine.once(verb::get, "/containers/app/json", reply::upgrade({"raw bytes"}));
        auto e = thrown<berth::protocol_error>([&] { f.plain(); });
        CHECK(contains(e.what(), "switched protocols (101) unasked"));
    }
    f.check_recovers(&fixture::plain);
}

TEST_CASE("a number in a reply that does not fit its field is a protocol_error, not a wrong value") {
    fixture f;
    SUBCASE("exec inspect: ExitCode 1e400") {
        f.engine.on(verb::get, "/exec/e1/json", reply::json(200, R"({"ID":"e1","Running":false,"ExitCode":1e400})"));
        auto e = thrown<berth::protocol_error>([&] { f.exec(); });
        CHECK(contains(e.what(), "'ExitCode'"));
    }
    SUBCASE("container inspect: ExitCode 2^32") {
        f.engine.on(verb::get, "/containers/app/json",
                    reply::json(200, R"({"Id":"abc123","State":{"Running":false,"ExitCode":4294967296}})"));
        auto e = thrown<berth::protocol_error>([&] { f.plain(); });
        CHECK(contains(e.endpoint(), "/containers/app/json"));
    }
    SUBCASE("container wait: StatusCode 1e19") {
        f.engine.on(verb::post, "/containers/app/wait", reply::json(200, R"({"StatusCode":1e19})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.containers().wait("app")), berth::protocol_error);
    }
    SUBCASE("archive stat: a mode above 32 bits") {
        auto stat = fixture::data_stat();
        stat.as_object()["mode"] = 4294967296ull;
        f.engine.on(verb::get, "/containers/app/archive", reply::archive(stat, {"tar"}));
        CHECK_THROWS_AS(f.download(), berth::protocol_error);
    }
}

// ------------------------------------------------------------------------------------------------------------
// Default time limits
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("connecting and waiting for a reply are limited by default") {
    berth::client_options defaults;
    CHECK(defaults.connect_timeout > 0s);
    CHECK(defaults.request_timeout >= 60s);  // generous: removing a large container takes a while
}

// A fixture whose limits are short, and an outer limit that only a request without a limit of its own reaches.
// (Short, not tiny: the first request also negotiates the version, which a loaded machine may take 100 ms over.)
struct limited_fixture : fixture {
    static berth::client_options short_limits() {
        berth::client_options options;
        options.request_timeout = 250ms;
        options.connect_timeout = 250ms;
        return options;
    }
    limited_fixture() : fixture(short_limits()) {}

    // The text of the timed_out error `op` ends with.
    template <class T>
    std::string timed_out(asio::awaitable<T> op) {
        try {
            run_on_mock(ioc, berth::with_timeout(std::move(op), 1500ms, "the test's own limit"));
            FAIL_CHECK("no time limit ended it");
        } catch (const boost::system::system_error& e) {
            CHECK(e.code() == asio::error::timed_out);
            return e.what();
        }
        return {};
    }
};

TEST_CASE("a stalled engine is ended by the client's limits, with a typed error naming the engine and the request") {
    limited_fixture f;
    f.plain();
    SUBCASE("ping") {
        f.engine.once(verb::get, "/_ping", reply::stall());
        CHECK(f.timed_out(f.client.system().ping()) ==
              "mock://engine: GET /_ping: no complete reply within 250 ms" + timed_out_text);
    }
    SUBCASE("an ordinary request") {
        f.engine.once(verb::get, "/containers/app/json", reply::stall());
        CHECK(f.timed_out(f.client.containers().inspect("app")) ==
              "mock://engine: GET /v1.41/containers/app/json: no complete reply within 250 ms" + timed_out_text);
    }
    SUBCASE("an exec start whose reply head never comes") {
        f.engine.once(verb::post, "/exec/e1/start", reply::stall());
        output_log log;
        berth::exec_options options;
        options.on_output = std::ref(log);
        options.cmd = {"true"};
        auto text = f.timed_out(f.client.execs().run("app", options));
        CHECK(text == "mock://engine: POST /v1.41/exec/e1/start: no reply head within 250 ms" + timed_out_text);
    }
    SUBCASE("an archive download whose reply head never comes") {
        f.engine.once(verb::get, "/containers/app/archive", reply::stall());
        auto sink = [](std::span<const char>) {};
        CHECK(contains(f.timed_out(f.client.archives().get("app", "/data", sink)),
                       "mock://engine: " + std::string(archive_endpoint) + ": no reply head within 250 ms"));
    }
    f.check_recovers(&fixture::plain);
}

TEST_CASE("a connect that never completes is ended by the connect_timeout, named as such") {
    limited_fixture f;
    f.plain();
    f.engine.close_idle_connections();
    f.engine.stall_connections();
    // Under the request's own limit the connect's shows when the request has none.
    auto text = message_of<boost::system::system_error>([&] {
        run_on_mock(f.ioc, f.client.core().call(verb::get, "/containers/app/json", {}, berth::time_limit{{}, true}));
    });
    CHECK(text ==
          "mock://engine: GET /v1.41/containers/app/json: connect: no connection within 250 ms" + timed_out_text);
    f.engine.stall_connections(false);
    f.check_recovers(&fixture::plain);
}

TEST_CASE("requests whose reply legitimately comes late are not cut by the default limit") {
    limited_fixture f;
    f.plain();
    SUBCASE("a container wait has no limit of its own") {
        f.engine.once(verb::post, "/containers/app/wait", reply::stall());
        CHECK(f.timed_out(f.client.containers().wait("app")) == "the test's own limit" + timed_out_text);
    }
    SUBCASE("a container stop gets its grace period on top") {
        f.engine.once(verb::post, "/containers/app/stop", reply::stall());
        CHECK(f.timed_out(f.client.containers().stop("app", {.timeout = 3600})) ==
              "the test's own limit" + timed_out_text);
    }
    SUBCASE("a stop without a grace period gets the engine's default (10 s) on top") {
        f.engine.once(verb::post, "/containers/app/stop", reply::stall());
        CHECK(f.timed_out(f.client.containers().stop("app")) == "the test's own limit" + timed_out_text);
    }
    SUBCASE("followed logs, whose head Podman sends only with the first output") {
        f.engine.once(verb::get, "/containers/app/logs", reply::stall());
        output_log log;
        berth::container_logs_options follow;
        follow.follow = true;
        follow.on_output = std::ref(log);
        CHECK(f.timed_out(f.client.containers().logs("app", follow)) == "the test's own limit" + timed_out_text);
    }
    SUBCASE("but logs that are not followed are limited") {
        f.engine.once(verb::get, "/containers/app/logs", reply::stall());
        CHECK(contains(f.timed_out(f.client.containers().logs("app")), "no reply head within 250 ms"));
    }
    f.check_recovers(&fixture::plain);
}

TEST_CASE("a stop signal needs API 1.42: sent on a newer engine, refused before sending on an older one") {
    fixture f;
    f.engine.on(verb::post, "/containers/app/stop", reply::no_content());
    SUBCASE("API 1.41") {
        auto e = thrown<berth::unsupported_api_version_error>(
            [&] { run_on_mock(f.ioc, f.client.containers().stop("app", {.timeout = 5, .signal = "SIGINT"})); });
        CHECK(contains(e.what(), "needs Engine API 1.42"));
        CHECK(f.engine.requests_to(verb::post, "/containers/app/stop").empty());
    }
    SUBCASE("API 1.44") {
        f.engine.set_api_version("1.44", "1.24");
        run_on_mock(f.ioc, f.client.containers().stop("app", {.timeout = 5, .signal = "SIGINT"}));
        auto stops = f.engine.requests_to(verb::post, "/containers/app/stop");
        REQUIRE(stops.size() == 1);
        CHECK(stops[0].query("signal") == "SIGINT");
        CHECK(stops[0].query("t") == "5");
    }
}

TEST_CASE("an exec's console size needs API 1.42") {
    fixture f;
    output_log log;
    berth::exec_options options;
    options.cmd = {"stty", "size"};
    options.tty = true;
    options.console_size = std::pair{24u, 80u};
    SUBCASE("API 1.41: refused before anything is sent") {
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.execs().create("app", options)),
                        berth::unsupported_api_version_error);
        CHECK(f.engine.requests_to(verb::post, "/containers/app/exec").empty());
    }
    SUBCASE("API 1.56: sent as ConsoleSize [height, width]") {
        f.engine.set_api_version("1.56", "1.40");
        CHECK(run_on_mock(f.ioc, f.client.execs().create("app", options)) == "e1");
        auto body = f.engine.requests_to(verb::post, "/containers/app/exec").at(0).json();
        CHECK(body.at("ConsoleSize") == json::parse("[24,80]"));
    }
}

// ------------------------------------------------------------------------------------------------------------
// Pool health
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("sequential requests reuse one keep-alive connection") {
    fixture f;
    for (int i = 0; i < 10; ++i) f.plain();
    CHECK(f.engine.connections_opened() == 1);  // /version included
    CHECK(f.engine.requests().size() == 11);
    for (auto& r : f.engine.requests()) CHECK(r.connection == 1);
    CHECK(f.client.open_connections() == 1);
    CHECK(f.client.idle_connections() == 1);
}

TEST_CASE("concurrent requests each get a connection, which are all kept for reuse") {
    fixture f;
    f.plain();
    auto three = [](mock_client& c) -> asio::awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        co_await (c.containers().inspect("app") && c.containers().inspect("app") && c.containers().inspect("app"));
    };
    run_on_mock(f.ioc, three(f.client));
    CHECK(f.engine.connections_opened() == 3);
    CHECK(f.client.idle_connections() == 3);
    for (int i = 0; i < 5; ++i) f.plain();
    CHECK(f.engine.connections_opened() == 3);
}

TEST_CASE("faults, time limits and cancellations leave no connection behind") {
    fixture f;
    auto sink = [](std::span<const char>) {};
    // The stalls have a path of their own: a short limit may end the call before its request even arrives (the
    // first one negotiates the version too), and a stall left queued must not answer the next good request.
    f.engine.on(verb::get, "/containers/stalled/json", reply::stall());
    for (int round = 0; round < 4; ++round) {
        CHECK_THROWS_AS(run_on_mock(f.ioc, berth::with_timeout(f.client.containers().inspect("stalled"), 20ms)),
                        boost::system::system_error);
        CHECK_THROWS_AS(run_cancelled_after(f.ioc, f.client.containers().inspect("stalled"), 5ms),
                        boost::system::system_error);
        f.engine.once(verb::get, "/containers/app/json", reply::garbage());
        CHECK_THROWS_AS(f.plain(), berth::protocol_error);
        f.engine.once(verb::get, "/containers/app/json", reply::error(500, "x"));
        CHECK_THROWS_AS(f.plain(), berth::engine_error);
        f.engine.once(verb::get, "/containers/app/archive", reply::reset_mid_body(200, "0123456789", 3));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.archives().get("app", "/data", sink)), std::exception);
        f.plain();
        f.download();
        f.exec();
        f.check_no_leak();
    }
}

TEST_CASE("a reply body abandoned by its reader closes its connection instead of returning it to the pool") {
    fixture f;
    f.plain();
    struct sink_full : std::runtime_error {
        sink_full() : std::runtime_error("sink full") {}
    };
    auto refusing_sink = [](std::span<const char>) { throw sink_full(); };
    reply long_archive = fixture::archive_reply();  // the rest of the body never comes: it is not read to its end
    long_archive.declared_length = 1000;
    long_archive.then_stall();
    f.engine.once(verb::get, "/containers/app/archive", long_archive);
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.archives().get("app", "/data", refusing_sink)), sink_full);
    settle(f.ioc);
    CHECK(f.client.open_connections() == 0);
    CHECK(f.engine.connections_open() == 0);
    f.check_recovers(&fixture::plain);
    CHECK(f.engine.connections_opened() == 2);
}

TEST_CASE("an exec's upgraded connection is never returned to the pool") {
    fixture f;
    f.exec();
    f.exec();
    settle(f.ioc);
    // No request goes on a connection after an exec start on it.
    std::vector<std::size_t> hijacked;
    for (auto& r : f.engine.requests()) {
        for (auto c : hijacked) CHECK(r.connection != c);
        if (r.path == "/exec/e1/start") hijacked.push_back(r.connection);
    }
    CHECK(hijacked.size() == 2);
    f.check_no_leak();
}

TEST_CASE("with_timeout lets an operation's own error through at once") {
    SUBCASE("with_timeout around a call") {
        fixture f;
        f.engine.once(verb::get, "/containers/app/json", reply::error(404, "No such container: app"));
        auto e = thrown<berth::not_found_error>(
            [&] { run_on_mock(f.ioc, berth::with_timeout(f.client.containers().inspect("app"), 3s)); });
        CHECK(e.message() == "No such container: app");
    }
    SUBCASE("the client's request_timeout") {
        berth::client_options options;
        options.request_timeout = 3s;
        fixture f(options);
        f.engine.on(verb::get, "/images/ghost/json", reply::error(404, "No such image: ghost"));
        CHECK_FALSE(run_on_mock(f.ioc, f.client.images().exists("ghost")));
    }
    SUBCASE("a successful operation returns its value") {
        fixture f;
        CHECK(run_on_mock(f.ioc, berth::with_timeout(f.client.containers().inspect("app"), 3s)).id == "abc123");
    }
}

// ------------------------------------------------------------------------------------------------------------
// Volumes
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("volume create sends its options as the engine's JSON and reads the volume back typed") {
    fixture f;
    f.engine.on(verb::post, "/volumes/create",
                reply::json(201, R"({"Name":"data","Driver":"local","Mountpoint":"/var/lib/docker/volumes/data/_data",
                                   "CreatedAt":"2026-12-07T13:00:00Z","Labels":{"team":"eval"},"Scope":"local",
                                   "Options":{"type":"tmpfs","device":"tmpfs","o":"size=1m"},
                                   "Status":{"hello":{"world":1}},"UsageData":{"Size":4096,"RefCount":2}})"));
    berth::volume_create_options options{.name = "data",
                                         .driver = "local",
                                         .driver_opts = {{"type", "tmpfs"}, {"device", "tmpfs"}, {"o", "size=1m"}},
                                         .labels = {{"team", "eval"}}};
    auto v = run_on_mock(f.ioc, f.client.volumes().create(options));
    CHECK(v.name == "data");
    CHECK(v.driver == "local");
    CHECK(v.mountpoint == "/var/lib/docker/volumes/data/_data");
    CHECK(v.created_at == "2026-12-07T13:00:00Z");
    CHECK(v.scope == "local");
    CHECK(v.labels == std::map<std::string, std::string>{{"team", "eval"}});
    CHECK(v.options.at("o") == "size=1m");
    CHECK(v.status.at("hello").at("world") == 1);
    REQUIRE(v.usage_data);
    CHECK(v.usage_data->size == 4096);
    CHECK(v.usage_data->ref_count == 2);
    CHECK_FALSE(v.cluster_volume);
    CHECK(v.raw.contains("Mountpoint"));

    auto sent = f.engine.requests_to(verb::post, "/volumes/create");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target == "/v1.41/volumes/create");
    CHECK(sent[0].header("Content-Type") == "application/json");
    CHECK(sent[0].json() == json::parse(R"({"Name":"data","Driver":"local",
        "DriverOpts":{"device":"tmpfs","o":"size=1m","type":"tmpfs"},"Labels":{"team":"eval"}})"));

    SUBCASE("no options: an empty object, the engine names the volume") {
        f.engine.on(verb::post, "/volumes/create", reply::json(201, R"({"Name":"0123abcd","Labels":null})"));
        CHECK(run_on_mock(f.ioc, f.client.volumes().create()).name == "0123abcd");
        CHECK(f.engine.requests_to(verb::post, "/volumes/create").back().json() == json::object{});
    }
    SUBCASE("a cluster volume spec needs API 1.42: refused before sending on 1.41") {
        berth::volume_create_options cluster{.name = "shared", .cluster_volume_spec = {{"Group", "g"}}};
        auto e = thrown<berth::unsupported_api_version_error>(
            [&] { run_on_mock(f.ioc, f.client.volumes().create(cluster)); });
        CHECK(e.endpoint() == "POST /volumes/create");
        CHECK(f.engine.requests_to(verb::post, "/volumes/create").size() == 1);
    }
}

TEST_CASE("volume list encodes its filters as JSON and reads volumes and warnings") {
    fixture f;
    f.engine.on(verb::get, "/volumes", reply::json(200, R"({"Volumes":[{"Name":"a","Driver":"local","Labels":{"k":"v"}},
                                                 {"Name":"b","Driver":"local","Labels":null}],
                                     "Warnings":["one driver did not answer"]})"));
    berth::volume_list_options options{.filters = {{"label", {"k=v", "team"}}, {"dangling", {"true"}}}};
    auto listed = run_on_mock(f.ioc, f.client.volumes().list(options));
    REQUIRE(listed.volumes.size() == 2);
    CHECK(listed.volumes[0].name == "a");
    CHECK(listed.volumes[0].labels.at("k") == "v");
    CHECK(listed.volumes[1].labels.empty());
    CHECK(listed.warnings == std::vector<std::string>{"one driver did not answer"});
    auto sent = f.engine.requests_to(verb::get, "/volumes");
    REQUIRE(sent.size() == 1);
    REQUIRE(sent[0].query("filters"));
    CHECK(json::parse(*sent[0].query("filters")) == json::parse(R"({"dangling":["true"],"label":["k=v","team"]})"));

    SUBCASE("no filters: no query; Volumes null is an empty list") {
        f.engine.on(verb::get, "/volumes", reply::json(200, R"({"Volumes":null,"Warnings":null})"));
        auto none = run_on_mock(f.ioc, f.client.volumes().list());
        CHECK(none.volumes.empty());
        CHECK(f.engine.requests_to(verb::get, "/volumes").back().target == "/v1.41/volumes");
    }
}

TEST_CASE("volume remove sends force, percent-encodes the name and refuses an empty one") {
    fixture f;
    f.engine.on(verb::delete_, "/volumes/my data é", reply::no_content(204));
    run_on_mock(f.ioc, f.client.volumes().remove("my data é"));
    run_on_mock(f.ioc, f.client.volumes().remove("my data é", {.force = true}));
    auto sent = f.engine.requests_to(verb::delete_, "/volumes/my data é");
    REQUIRE(sent.size() == 2);
    CHECK(sent[0].target == "/v1.41/volumes/my%20data%20%C3%A9?force=0");
    CHECK(sent[1].query("force") == "1");

    const auto before = f.engine.requests().size();
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.volumes().remove("")), berth::invalid_argument_error);
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.volumes().inspect("")), berth::invalid_argument_error);
    berth::volume_update_options update{.version = 1};
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.volumes().update("", update)), berth::invalid_argument_error);
    CHECK(f.engine.requests().size() == before);

    f.engine.on(verb::delete_, "/volumes/used", reply::error(409, "remove used: volume is in use - [c0ffee]"));
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.volumes().remove("used")), berth::conflict_error);
    f.engine.on(verb::delete_, "/volumes/gone", reply::error(404, "get gone: no such volume"));
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.volumes().remove("gone")), berth::not_found_error);
}

TEST_CASE("volume prune sends its filters; all=true needs API 1.42 and is refused before sending on 1.41") {
    fixture f;
    f.engine.on(verb::post, "/volumes/prune",
                reply::json(200, R"({"VolumesDeleted":["old-1","old-2"],"SpaceReclaimed":8192})"));
    SUBCASE("a label filter") {
        berth::volume_prune_options options{.filters = {{"label", {"berth.test=1"}}, {"label!", {"keep"}}}};
        auto pruned = run_on_mock(f.ioc, f.client.volumes().prune(options));
        CHECK(pruned.volumes_deleted == std::vector<std::string>{"old-1", "old-2"});
        CHECK(pruned.space_reclaimed == 8192);
        auto sent = f.engine.requests_to(verb::post, "/volumes/prune");
        REQUIRE(sent.size() == 1);
        CHECK(json::parse(sent[0].query("filters").value()) ==
              json::parse(R"({"label":["berth.test=1"],"label!":["keep"]})"));
    }
    SUBCASE("nothing pruned: VolumesDeleted null, no query") {
        f.engine.on(verb::post, "/volumes/prune", reply::json(200, R"({"VolumesDeleted":null,"SpaceReclaimed":0})"));
        auto pruned = run_on_mock(f.ioc, f.client.volumes().prune());
        CHECK(pruned.volumes_deleted.empty());
        CHECK(f.engine.requests_to(verb::post, "/volumes/prune").at(0).target == "/v1.41/volumes/prune");
    }
    SUBCASE("all on 1.41: refused, nothing sent") {
        berth::volume_prune_options options{.all = true};
        auto e = thrown<berth::unsupported_api_version_error>(
            [&] { run_on_mock(f.ioc, f.client.volumes().prune(options)); });
        CHECK(contains(e.what(), "1.42"));
        CHECK(f.engine.requests_to(verb::post, "/volumes/prune").empty());
        berth::volume_prune_options spelled{.filters = {{"all", {"1"}}}};
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.volumes().prune(spelled)), berth::unsupported_api_version_error);
        CHECK(f.engine.requests_to(verb::post, "/volumes/prune").empty());
    }
    SUBCASE("all on 1.44: the filter all=true") {
        f.engine.set_api_version("1.44");
        berth::volume_prune_options options{.filters = {{"label", {"x"}}}, .all = true};
        run_on_mock(f.ioc, f.client.volumes().prune(options));
        auto sent = f.engine.requests_to(verb::post, "/volumes/prune");
        REQUIRE(sent.size() == 1);
        CHECK(sent[0].api_version == "1.44");
        CHECK(json::parse(sent[0].query("filters").value()) == json::parse(R"({"all":["true"],"label":["x"]})"));
    }
}

TEST_CASE("volume update needs API 1.42: refused before sending on 1.41, sent with version and Spec on 1.44") {
    fixture f;
    f.engine.on(verb::put, "/volumes/shared", reply::no_content(200));
    berth::volume_update_options options{.version = 42, .spec = {{"AccessMode", {{"Availability", "drain"}}}}};
    SUBCASE("1.41") {
        auto e = thrown<berth::unsupported_api_version_error>(
            [&] { run_on_mock(f.ioc, f.client.volumes().update("shared", options)); });
        CHECK(e.endpoint() == "PUT /volumes/shared");
        CHECK(contains(e.what(), "1.42"));
        CHECK(f.engine.requests_to(verb::put, "/volumes/shared").empty());
    }
    SUBCASE("1.44") {
        f.engine.set_api_version("1.44");
        run_on_mock(f.ioc, f.client.volumes().update("shared", options));
        auto sent = f.engine.requests_to(verb::put, "/volumes/shared");
        REQUIRE(sent.size() == 1);
        CHECK(sent[0].target == "/v1.44/volumes/shared?version=42");
        CHECK(sent[0].header("Content-Type") == "application/json");
        CHECK(sent[0].json() == json::parse(R"({"Spec":{"AccessMode":{"Availability":"drain"}}})"));
    }
    SUBCASE("1.44, not a Swarm manager: the engine's 503 is an engine_error") {
        f.engine.set_api_version("1.44");
        f.engine.on(verb::put, "/volumes/shared",
                    reply::error(503, "This node is not a swarm manager. Use \"docker swarm init\" or \"docker "
                                      "swarm join\" to connect this node to swarm and try again."));
        auto e = thrown<berth::engine_error>([&] { run_on_mock(f.ioc, f.client.volumes().update("shared", options)); });
        CHECK(e.status() == 503);
        CHECK(e.code() == berth::engine_errc::server_error);
        CHECK(contains(e.message(), "swarm manager"));
    }
}

TEST_CASE("a malformed volume reply is a protocol_error naming the endpoint") {
    fixture f;
    SUBCASE("inspect answering an array") {
        f.engine.on(verb::get, "/volumes/data", reply::json(200, R"([{"Name":"data"}])"));
        auto e = thrown<berth::protocol_error>([&] { run_on_mock(f.ioc, f.client.volumes().inspect("data")); });
        CHECK(contains(e.what(), "GET /volumes/data"));
    }
    SUBCASE("inspect without a Name") {
        f.engine.on(verb::get, "/volumes/data", reply::json(200, R"({"Driver":"local"})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.volumes().inspect("data")), berth::protocol_error);
    }
    SUBCASE("labels that are not an object") {
        f.engine.on(verb::get, "/volumes/data", reply::json(200, R"({"Name":"data","Labels":["k"]})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.volumes().inspect("data")), berth::protocol_error);
    }
    SUBCASE("a list whose Volumes is an object") {
        f.engine.on(verb::get, "/volumes", reply::json(200, R"({"Volumes":{"Name":"data"}})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.volumes().list()), berth::protocol_error);
    }
    SUBCASE("a prune whose SpaceReclaimed is text") {
        f.engine.on(verb::post, "/volumes/prune", reply::json(200, R"({"SpaceReclaimed":"lots"})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.volumes().prune()), berth::protocol_error);
    }
    SUBCASE("a usage count beyond int64") {
        f.engine.on(verb::get, "/volumes/data",
                    reply::json(200, R"({"Name":"data","UsageData":{"Size":1e400,"RefCount":1}})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.volumes().inspect("data")), berth::protocol_error);
    }
    CHECK(run_on_mock(f.ioc, f.client.system().ping()));
}

// ------------------------------------------------------------------------------------------------------------
// Secrets and configs
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("secrets: create sends the data base64-encoded (standard alphabet) and what is set, and returns the ID") {
    fixture f;
    f.engine.on(verb::post, "/secrets/create", reply::json(201, R"({"ID":"ktnbjxoalbkvbvedmg1urrz8h"})"));
    berth::secret_spec spec{.name = "db-password",
                            .labels = {{"team", "eval"}},
                            .data = std::string("\xfb\xff\xfe pass\0word", 13),
                            .templating = berth::swarm_driver{.name = "golang"}};
    CHECK(run_on_mock(f.ioc, f.client.secrets().create(spec)) == "ktnbjxoalbkvbvedmg1urrz8h");
    auto sent = f.engine.requests_to(verb::post, "/secrets/create");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target == "/v1.41/secrets/create");
    CHECK(sent[0].header("Content-Type") == "application/json");
    CHECK(sent[0].json() == json::parse(R"({"Name":"db-password","Labels":{"team":"eval"},
                                            "Data":"+//+IHBhc3MAd29yZA==","Templating":{"Name":"golang"}})"));

    SUBCASE("a secret from a secrets driver: Driver with its options, no Data") {
        berth::secret_spec external{.name = "from-vault",
                                    .driver = berth::swarm_driver{.name = "vault", .options = {{"path", "kv/x"}}}};
        run_on_mock(f.ioc, f.client.secrets().create(external));
        CHECK(f.engine.requests_to(verb::post, "/secrets/create").back().json() ==
              json::parse(R"({"Name":"from-vault","Driver":{"Name":"vault","Options":{"path":"kv/x"}}})"));
    }
    SUBCASE("a name in use: conflict_error; the engine's message never shows the data") {
        f.engine.on(verb::post, "/secrets/create",
                    reply::error(409, "secret db-password already exists (data +//+IHBhc3MAd29yZA==)"));
        auto e = thrown<berth::conflict_error>([&] { run_on_mock(f.ioc, f.client.secrets().create(spec)); });
        CHECK(contains(e.message(), "already exists"));
        CHECK_FALSE(contains(e.message(), "+//+IHBhc3MAd29yZA=="));
        CHECK(contains(e.message(), "<redacted>"));
    }
    SUBCASE("an ID that is no Swarm id is a protocol_error, never a later path") {
        f.engine.on(verb::post, "/secrets/create", reply::json(201, R"({"ID":"../../containers/x"})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.secrets().create(spec)), berth::protocol_error);
    }
}

TEST_CASE("configs: inspect reads the typed fields and decodes Data; a secret's inspect has no data") {
    fixture f;
    f.engine.on(verb::get, "/configs/app.conf",
                reply::json(200, R"({"ID":"cfg0123456789abcdefghijklm","Version":{"Index":85},
                                    "CreatedAt":"2026-12-07T13:55:28.678958722Z",
                                    "UpdatedAt":"2026-12-07T13:56:00Z",
                                    "Spec":{"Name":"app.conf","Labels":{"k":"v"},"Data":"aGVsbG8K",
                                            "Templating":{"Name":"golang","Options":{"a":"b"}}}})"));
    auto c = run_on_mock(f.ioc, f.client.configs().inspect("app.conf"));
    CHECK(c.id == "cfg0123456789abcdefghijklm");
    CHECK(c.version == 85);
    CHECK(c.created_at == "2026-12-07T13:55:28.678958722Z");
    CHECK(c.updated_at == "2026-12-07T13:56:00Z");
    CHECK(c.spec.name == "app.conf");
    CHECK(c.spec.labels == std::map<std::string, std::string>{{"k", "v"}});
    CHECK(c.spec.data == "hello\n");
    REQUIRE(c.spec.templating);
    CHECK(c.spec.templating->name == "golang");
    CHECK(c.spec.templating->options.at("a") == "b");
    CHECK(c.raw.contains("CreatedAt"));

    f.engine.on(verb::get, "/secrets/db", reply::json(200, R"({"ID":"blt1owaxmitz71s9v5zh81zun","Version":{"Index":11},
                                    "Spec":{"Name":"db","Labels":null,"Driver":{"Name":"vault"}}})"));
    auto s = run_on_mock(f.ioc, f.client.secrets().inspect("db"));
    CHECK(s.version == 11);
    CHECK(s.spec.data.empty());
    CHECK(s.spec.labels.empty());
    REQUIRE(s.spec.driver);
    CHECK(s.spec.driver->name == "vault");
    CHECK_FALSE(s.spec.templating);

    f.engine.on(verb::get, "/configs/gone", reply::error(404, "config gone not found"));
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.configs().inspect("gone")), berth::not_found_error);
    CHECK_FALSE(run_on_mock(f.ioc, f.client.configs().exists("gone")));
    CHECK(run_on_mock(f.ioc, f.client.configs().exists("app.conf")));
}

TEST_CASE("secrets and configs: list sends the filters as JSON; no filters, no query") {
    fixture f;
    f.engine.on(verb::get, "/configs",
                reply::json(200, R"([{"ID":"aaaaaaaaaaaaaaaaaaaaaaaaa","Version":{"Index":3},"Spec":{"Name":"a"}},
                                     {"ID":"bbbbbbbbbbbbbbbbbbbbbbbbb","Version":{"Index":4},"Spec":{"Name":"b","Data":""}}])"));
    berth::config_list_options options{.filters = {{"label", {"berth.test=1"}}, {"names", {"a", "b"}}}};
    auto listed = run_on_mock(f.ioc, f.client.configs().list(options));
    REQUIRE(listed.size() == 2);
    CHECK(listed[0].spec.name == "a");
    CHECK(listed[1].version == 4);
    CHECK(listed[1].spec.data.empty());
    auto sent = f.engine.requests_to(verb::get, "/configs");
    REQUIRE(sent.size() == 1);
    CHECK(json::parse(sent[0].query("filters").value()) ==
          json::parse(R"({"label":["berth.test=1"],"names":["a","b"]})"));

    f.engine.on(verb::get, "/secrets", reply::json(200, "[]"));
    CHECK(run_on_mock(f.ioc, f.client.secrets().list()).empty());
    CHECK(f.engine.requests_to(verb::get, "/secrets").at(0).target == "/v1.41/secrets");
}

TEST_CASE("secrets and configs: update sends the version and the whole spec; remove; an empty id is refused") {
    fixture f;
    f.engine.on(verb::post, "/secrets/db pass/update", reply::no_content(200));
    berth::secret_update_options update{.version = 42, .spec = {.name = "db pass", .labels = {{"rotated", "yes"}}}};
    run_on_mock(f.ioc, f.client.secrets().update("db pass", update));
    auto sent = f.engine.requests_to(verb::post, "/secrets/db pass/update");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target == "/v1.41/secrets/db%20pass/update?version=42");
    CHECK(sent[0].json() == json::parse(R"({"Name":"db pass","Labels":{"rotated":"yes"}})"));

    f.engine.on(verb::post, "/configs/app/update", reply::no_content(200));
    berth::config_update_options config_update{.version = 7, .spec = {.name = "app", .data = "x=1\n"}};
    run_on_mock(f.ioc, f.client.configs().update("app", config_update));
    CHECK(f.engine.requests_to(verb::post, "/configs/app/update").at(0).json() ==
          json::parse(R"({"Name":"app","Data":"eD0xCg=="})"));

    f.engine.on(verb::delete_, "/configs/app", reply::no_content(204));
    run_on_mock(f.ioc, f.client.configs().remove("app"));
    CHECK(f.engine.requests_to(verb::delete_, "/configs/app").size() == 1);
    f.engine.on(verb::delete_, "/secrets/used",
                reply::error(400, "rpc error: code = InvalidArgument desc = secret 'used' is in use by the following "
                                  "service: svc"));
    auto e = thrown<berth::engine_error>([&] { run_on_mock(f.ioc, f.client.secrets().remove("used")); });
    CHECK(e.status() == 400);
    CHECK(contains(e.message(), "in use"));

    const auto before = f.engine.requests().size();
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.secrets().remove("")), berth::invalid_argument_error);
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.secrets().inspect("")), berth::invalid_argument_error);
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.configs().update("", config_update)), berth::invalid_argument_error);
    CHECK(f.engine.requests().size() == before);
}

TEST_CASE("secrets and configs: a malformed reply is a protocol_error naming the endpoint") {
    fixture f;
    SUBCASE("a config whose Data is not base64") {
        f.engine.on(verb::get, "/configs/c",
                    reply::json(200, R"({"ID":"ccccccccccccccccccccccccc","Spec":{"Name":"c","Data":"no*base64"}})"));
        auto e = thrown<berth::protocol_error>([&] { run_on_mock(f.ioc, f.client.configs().inspect("c")); });
        CHECK(contains(e.what(), "GET /configs/c"));
    }
    SUBCASE("an ID that is no Swarm id") {
        f.engine.on(verb::get, "/secrets", reply::json(200, R"([{"ID":"Bad/Id","Spec":{"Name":"s"}}])"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.secrets().list()), berth::protocol_error);
    }
    SUBCASE("a list that is an object") {
        f.engine.on(verb::get, "/configs", reply::json(200, R"({"ID":"ccccccccccccccccccccccccc"})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.configs().list()), berth::protocol_error);
    }
    SUBCASE("labels that are not an object") {
        f.engine.on(verb::get, "/secrets/s",
                    reply::json(200, R"({"ID":"sssssssssssssssssssssssss","Spec":{"Name":"s","Labels":["k"]}})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.secrets().inspect("s")), berth::protocol_error);
    }
    SUBCASE("a create reply without an ID") {
        f.engine.on(verb::post, "/configs/create", reply::json(201, "{}"));
        berth::config_spec spec{.name = "c", .data = "x"};
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.configs().create(spec)), berth::protocol_error);
    }
    CHECK(run_on_mock(f.ioc, f.client.system().ping()));
}

TEST_CASE("secrets and configs: a service mounts them as ContainerSpec.Secrets and ContainerSpec.Configs") {
    fixture f;
    f.engine.on(verb::post, "/services/create", reply::json(201, R"({"ID":"svc1"})"));
    berth::service_spec spec;
    spec.name = "app";
    spec.container.image = "busybox";
    spec.container.secrets = {{.id = "sid", .name = "db", .file_name = "db-password", .uid = "33", .mode = 0400}};
    spec.container.configs = {{.id = "cid", .name = "app.conf", .file_name = "/etc/app.conf"}};
    run_on_mock(f.ioc, f.client.swarm().create_service(spec));
    auto body = f.engine.requests_to(verb::post, "/services/create").at(0).json();
    auto& container = body.at("TaskTemplate").at("ContainerSpec");
    CHECK(container.at("Secrets") == json::parse(R"([{"SecretID":"sid","SecretName":"db",
        "File":{"Name":"db-password","UID":"33","GID":"0","Mode":256}}])"));
    CHECK(container.at("Configs") == json::parse(R"([{"ConfigID":"cid","ConfigName":"app.conf",
        "File":{"Name":"/etc/app.conf","UID":"0","GID":"0","Mode":292}}])"));
}

TEST_CASE("container restart: t and signal as for stop (the signal needs API 1.42), the grace period on the limit") {
    SUBCASE("API 1.41: a signal is refused before sending; t alone is sent") {
        fixture f;
        f.engine.on(verb::post, "/containers/app/restart", reply::no_content());
        auto e = thrown<berth::unsupported_api_version_error>(
            [&] { run_on_mock(f.ioc, f.client.containers().restart("app", {.timeout = 5, .signal = "SIGINT"})); });
        CHECK(contains(e.what(), "restarting with a signal needs Engine API 1.42"));
        CHECK(f.engine.requests_to(verb::post, "/containers/app/restart").empty());
        run_on_mock(f.ioc, f.client.containers().restart("app", {.timeout = 0}));
        run_on_mock(f.ioc, f.client.containers().restart("app"));
        auto sent = f.engine.requests_to(verb::post, "/containers/app/restart");
        REQUIRE(sent.size() == 2);
        CHECK(sent[0].target == "/v1.41/containers/app/restart?t=0");
        CHECK(sent[1].target == "/v1.41/containers/app/restart");
    }
    SUBCASE("API 1.44: the signal is sent") {
        fixture f;
        f.engine.on(verb::post, "/containers/app/restart", reply::no_content());
        f.engine.set_api_version("1.44", "1.24");
        run_on_mock(f.ioc, f.client.containers().restart("app", {.timeout = 5, .signal = "SIGINT"}));
        auto sent = f.engine.requests_to(verb::post, "/containers/app/restart");
        REQUIRE(sent.size() == 1);
        CHECK(sent[0].target == "/v1.44/containers/app/restart?t=5&signal=SIGINT");
    }
    SUBCASE("the grace period is added to the request_timeout") {
        limited_fixture f;
        f.engine.once(verb::post, "/containers/app/restart", reply::stall());
        CHECK(f.timed_out(f.client.containers().restart("app", {.timeout = 3600})) ==
              "the test's own limit" + timed_out_text);
        f.check_recovers(&fixture::plain);
    }
    SUBCASE("a 404 is not_found_error") {
        fixture f;
        f.engine.on(verb::post, "/containers/ghost/restart", reply::error(404, "No such container: ghost"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.containers().restart("ghost")), berth::not_found_error);
    }
}

TEST_CASE("container pause and unpause: a 409 is conflict_error") {
    fixture f;
    f.engine.on(verb::post, "/containers/app/pause", reply::no_content());
    f.engine.on(verb::post, "/containers/app/unpause", reply::error(409, "Container abc123 is not paused"));
    run_on_mock(f.ioc, f.client.containers().pause("app"));
    CHECK(f.engine.requests_to(verb::post, "/containers/app/pause").at(0).target == "/v1.41/containers/app/pause");
    auto e = thrown<berth::conflict_error>([&] { run_on_mock(f.ioc, f.client.containers().unpause("app")); });
    CHECK(e.message() == "Container abc123 is not paused");
    SUBCASE("Docker 20.10's 500 for an unpause of a running container is the same conflict") {
        fixture g;
        g.engine.on(verb::post, "/containers/app/unpause", reply::error(500, "Container abc123 is not paused"));
        auto c = thrown<berth::conflict_error>([&] { run_on_mock(g.ioc, g.client.containers().unpause("app")); });
        CHECK(c.status() == 500);
    }
    SUBCASE("Podman's 500 for a container in the wrong state is the same conflict; its other 500s are not") {
        fixture g;
        g.engine.answer_as_podman();
        g.engine.on(verb::post, "/containers/app/pause",
                    reply::error(500, "\"abc123\" is already paused: container state improper"));
        g.engine.on(verb::post, "/containers/app/unpause", reply::error(500, "something else"));
        auto c = thrown<berth::conflict_error>([&] { run_on_mock(g.ioc, g.client.containers().pause("app")); });
        CHECK(c.status() == 500);
        auto other = thrown<berth::engine_error>([&] { run_on_mock(g.ioc, g.client.containers().unpause("app")); });
        CHECK(other.code() == berth::engine_errc::server_error);
    }
}

TEST_CASE("container rename: the name is percent-encoded; an empty one is refused before sending") {
    fixture f;
    f.engine.on(verb::post, "/containers/app/rename", reply::no_content());
    run_on_mock(f.ioc, f.client.containers().rename("app", "new name&x=1"));
    auto sent = f.engine.requests_to(verb::post, "/containers/app/rename");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target == "/v1.41/containers/app/rename?name=new%20name%26x%3D1");
    CHECK(sent[0].query("name") == "new name&x=1");
    CHECK_FALSE(sent[0].query("x"));
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.containers().rename("app", "")), berth::invalid_argument_error);
    CHECK(f.engine.requests_to(verb::post, "/containers/app/rename").size() == 1);
}

TEST_CASE("container changes: kinds 0, 1, 2; null is none; any other kind or shape is a protocol_error") {
    fixture f;
    SUBCASE("typed") {
        f.engine.on(verb::get, "/containers/app/changes",
                    reply::json(200, R"([{"Path":"/tmp","Kind":0},{"Path":"/tmp/x","Kind":1},)"
                                     R"({"Path":"/etc/motd","Kind":2}])"));
        auto changes = run_on_mock(f.ioc, f.client.containers().changes("app"));
        REQUIRE(changes.size() == 3);
        CHECK(changes[0].path == "/tmp");
        CHECK(changes[0].kind == berth::filesystem_change_kind::modified);
        CHECK(changes[1].path == "/tmp/x");
        CHECK(changes[1].kind == berth::filesystem_change_kind::added);
        CHECK(changes[2].kind == berth::filesystem_change_kind::deleted);
    }
    SUBCASE("null") {
        f.engine.on(verb::get, "/containers/app/changes", reply::json(200, "null"));
        CHECK(run_on_mock(f.ioc, f.client.containers().changes("app")).empty());
    }
    SUBCASE("malformed") {
        for (const char* bad :
             {R"([{"Path":"/tmp/x","Kind":3}])", R"([{"Path":"/tmp/x","Kind":-1}])",
              R"([{"Path":"/tmp/x","Kind":1e400}])", R"([{"Path":"/tmp/x"}])", R"([{"Path":"/tmp/x","Kind":null}])",
              R"([{"Path":"/tmp/x","Kind":"A"}])", R"([{"Kind":1}])", R"([1])", R"({})"}) {
            const std::string text = bad;
            CAPTURE(text);
            fixture g;
            g.engine.on(verb::get, "/containers/app/changes", reply::json(200, bad));
            auto e = thrown<berth::protocol_error>([&] { run_on_mock(g.ioc, g.client.containers().changes("app")); });
            CHECK(contains(e.what(), "GET /containers/app/changes"));
        }
    }
}

TEST_CASE("container prune: filters as JSON in the query; the ids and the space reclaimed") {
    fixture f;
    f.engine.on(verb::post, "/containers/prune",
                reply::json(200, R"({"ContainersDeleted":["c1","c2"],"SpaceReclaimed":4096})"));
    berth::container_prune_options options;
    options.filters["label"] = {"berth.test=a b"};
    options.filters["until"] = {"10m"};
    auto result = run_on_mock(f.ioc, f.client.containers().prune(options));
    CHECK(result.containers_deleted == std::vector<std::string>{"c1", "c2"});
    CHECK(result.space_reclaimed == 4096);
    auto sent = f.engine.requests_to(verb::post, "/containers/prune");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].query("filters") == R"({"label":["berth.test=a b"],"until":["10m"]})");
    f.engine.on(verb::post, "/containers/prune", reply::json(200, R"({"ContainersDeleted":null,"SpaceReclaimed":0})"));
    result = run_on_mock(f.ioc, f.client.containers().prune());
    CHECK(result.containers_deleted.empty());
    CHECK(f.engine.requests_to(verb::post, "/containers/prune").back().target == "/v1.41/containers/prune");
}

TEST_CASE("container update: only the fields set are sent; extra is merged and the typed fields win") {
    fixture f;
    f.engine.on(verb::post, "/containers/app/update", reply::json(200, R"({"Warnings":["no swap limit"]})"));
    berth::container_update_options options;
    options.memory = 64 * 1024 * 1024;
    options.pids_limit = 100;
    options.cpuset_cpus = "0";
    options.restart_policy = berth::restart_policy{.name = "on-failure", .maximum_retry_count = 3};
    options.extra = {{"BlkioWeight", 300}, {"Memory", 1}};
    auto warnings = run_on_mock(f.ioc, f.client.containers().update("app", options));
    CHECK(warnings == std::vector<std::string>{"no swap limit"});
    auto sent = f.engine.requests_to(verb::post, "/containers/app/update");
    REQUIRE(sent.size() == 1);
    CHECK(json::parse(sent[0].body) == json::parse(R"({"BlkioWeight":300,"Memory":67108864,"PidsLimit":100,)"
                                                   R"("CpusetCpus":"0",)"
                                                   R"("RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3}})"));
    berth::container_update_options nothing;
    f.engine.on(verb::post, "/containers/app/update", reply::json(200, R"({"Warnings":null})"));
    CHECK(run_on_mock(f.ioc, f.client.containers().update("app", nothing)).empty());
    CHECK(f.engine.requests_to(verb::post, "/containers/app/update").back().body == "{}");

    // The create body's rules hold for an update too, before anything is sent.
    std::vector<berth::container_update_options> bad(4);
    bad[0].restart_policy = berth::restart_policy{.name = "sometimes"};
    bad[1].restart_policy = berth::restart_policy{.name = "always", .maximum_retry_count = 2};
    bad[2].memory = -5;
    bad[3].memory_swap = -2;
    for (auto& options_ : bad) {
        auto e = thrown<berth::invalid_argument_error>(
            [&] { run_on_mock(f.ioc, f.client.containers().update("app", options_)); });
        CHECK(contains(e.what(), "containers().update"));
    }
    CHECK(f.engine.requests_to(verb::post, "/containers/app/update").size() == 2);
}

TEST_CASE("container and exec resize: h and w in the query") {
    fixture f;
    f.engine.on(verb::post, "/containers/app/resize", reply::no_content(200));
    f.engine.on(verb::post, "/exec/e1/resize", reply::no_content(201));
    run_on_mock(f.ioc, f.client.containers().resize("app", 24, 80));
    run_on_mock(f.ioc, f.client.execs().resize("e1", 50, 132));
    CHECK(f.engine.requests_to(verb::post, "/containers/app/resize").at(0).target ==
          "/v1.41/containers/app/resize?h=24&w=80");
    CHECK(f.engine.requests_to(verb::post, "/exec/e1/resize").at(0).target == "/v1.41/exec/e1/resize?h=50&w=132");
}

// ------------------------------------------------------------------------------------------------------------
// Networks
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("networks: create sends every field of the spec as the engine's JSON; EnableIPv4 needs API 1.48") {
    fixture f;
    f.engine.on(verb::post, "/networks/create",
                reply::json(201, R"({"Id":"0123456789abcdef","Warning":"a word from the driver"})"));
    berth::network_create_options options{.name = "isolated é",
                                          .driver = "macvlan",
                                          .scope = "local",
                                          .internal = true,
                                          .attachable = true,
                                          .ingress = true,
                                          .config_only = true,
                                          .config_from = "template",
                                          .enable_ipv6 = true,
                                          .options = {{"parent", "lo"}},
                                          .labels = {{"team", "eval"}}};
    options.ipam.driver = "default";
    options.ipam.config = {{.subnet = "198.51.100.0/24",
                            .ip_range = "198.51.100.128/25",
                            .gateway = "198.51.100.1",
                            .auxiliary_addresses = {{"router", "198.51.100.2"}}},
                           {.subnet = "2001:db8::/64"}};
    options.ipam.options = {{"foo", "bar"}};
    SUBCASE("1.41: every field but EnableIPv4") {
        auto created = run_on_mock(f.ioc, f.client.networks().create(options));
        CHECK(created.id == "0123456789abcdef");
        CHECK(created.warning == "a word from the driver");
        auto sent = f.engine.requests_to(verb::post, "/networks/create");
        REQUIRE(sent.size() == 1);
        CHECK(sent[0].target == "/v1.41/networks/create");
        CHECK(sent[0].header("Content-Type") == "application/json");
        CHECK(sent[0].json() == json::parse(R"({"Name":"isolated é","Driver":"macvlan","Scope":"local",
            "Internal":true,"Attachable":true,"Ingress":true,"ConfigOnly":true,"ConfigFrom":{"Network":"template"},
            "IPAM":{"Driver":"default","Config":[{"Subnet":"198.51.100.0/24","IPRange":"198.51.100.128/25",
                "Gateway":"198.51.100.1","AuxiliaryAddresses":{"router":"198.51.100.2"}},{"Subnet":"2001:db8::/64"}],
                "Options":{"foo":"bar"}},
            "EnableIPv6":true,"Options":{"parent":"lo"},"Labels":{"team":"eval"}})"));
    }
    SUBCASE("1.41: EnableIPv4 refused, nothing sent") {
        options.enable_ipv4 = false;
        auto e = thrown<berth::unsupported_api_version_error>(
            [&] { run_on_mock(f.ioc, f.client.networks().create(options)); });
        CHECK(e.status() == 0);
        CHECK(e.endpoint() == "POST /networks/create");
        CHECK(contains(e.what(), "1.48"));
        CHECK(f.engine.requests_to(verb::post, "/networks/create").empty());
    }
    SUBCASE("1.48: EnableIPv4 sent") {
        f.engine.set_api_version("1.48");
        options.enable_ipv4 = false;
        run_on_mock(f.ioc, f.client.networks().create(options));
        auto sent = f.engine.requests_to(verb::post, "/networks/create");
        REQUIRE(sent.size() == 1);
        CHECK(sent[0].api_version == "1.48");
        CHECK(sent[0].json().at("EnableIPv4") == false);
        CHECK(sent[0].json().at("EnableIPv6") == true);
    }
    SUBCASE("only the name: nothing else is sent; an empty name is refused") {
        berth::network_create_options bare{.name = "n"};
        run_on_mock(f.ioc, f.client.networks().create(bare));
        CHECK(f.engine.requests_to(verb::post, "/networks/create").back().json() == json::parse(R"({"Name":"n"})"));
        berth::network_create_options unnamed{.driver = "macvlan"};
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.networks().create(unnamed)), berth::invalid_argument_error);
        CHECK(f.engine.requests_to(verb::post, "/networks/create").size() == 1);
    }
    SUBCASE("a reply without Id is a protocol_error") {
        f.engine.on(verb::post, "/networks/create", reply::json(201, R"({"Warning":""})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.networks().create(options)), berth::protocol_error);
    }
    SUBCASE("a taken name (Docker 1.44+: 409) is a conflict_error") {
        f.engine.on(verb::post, "/networks/create", reply::error(409, "network with name isolated already exists"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.networks().create(options)), berth::conflict_error);
    }
}

TEST_CASE("networks: inspect reads every typed field, sends verbose and scope, percent-encodes the id") {
    fixture f;
    f.engine.on(verb::get, "/networks/my net",
                reply::json(200, R"({"Name":"my net","Id":"7d86d31b","Created":"2016-10-19T04:33:30.360899459Z",
        "Scope":"local","Driver":"macvlan","EnableIPv4":true,"EnableIPv6":true,
        "IPAM":{"Driver":"default","Config":[{"Subnet":"198.51.100.0/24","IPRange":"198.51.100.128/25",
            "Gateway":"198.51.100.1","AuxiliaryAddresses":{"r":"198.51.100.2"}}],"Options":{"foo":"bar"}},
        "Internal":true,"Attachable":true,"Ingress":false,"ConfigFrom":{"Network":"template"},"ConfigOnly":false,
        "Containers":{"19a4d5d6":{"Name":"test","EndpointID":"628cadb8","MacAddress":"02:42:ac:13:00:02",
            "IPv4Address":"198.51.100.130/24","IPv6Address":""}},
        "Options":{"parent":"lo"},"Labels":{"team":"eval"},"Status":{"IPAM":{"Subnets":{}}}})"));
    berth::network_inspect_options options{.verbose = true, .scope = "local"};
    auto n = run_on_mock(f.ioc, f.client.networks().inspect("my net", options));
    CHECK(n.name == "my net");
    CHECK(n.id == "7d86d31b");
    CHECK(n.created == "2016-10-19T04:33:30.360899459Z");
    CHECK(n.scope == "local");
    CHECK(n.driver == "macvlan");
    CHECK(n.enable_ipv4 == std::optional<bool>(true));
    CHECK(n.enable_ipv6);
    CHECK(n.ipam.driver == "default");
    REQUIRE(n.ipam.config.size() == 1);
    CHECK(n.ipam.config[0].subnet == "198.51.100.0/24");
    CHECK(n.ipam.config[0].ip_range == "198.51.100.128/25");
    CHECK(n.ipam.config[0].gateway == "198.51.100.1");
    CHECK(n.ipam.config[0].auxiliary_addresses.at("r") == "198.51.100.2");
    CHECK(n.ipam.options.at("foo") == "bar");
    CHECK(n.internal);
    CHECK(n.attachable);
    CHECK_FALSE(n.ingress);
    CHECK_FALSE(n.config_only);
    CHECK(n.config_from == "template");
    REQUIRE(n.containers.size() == 1);
    auto& ep = n.containers.at("19a4d5d6");
    CHECK(ep.name == "test");
    CHECK(ep.endpoint_id == "628cadb8");
    CHECK(ep.mac_address == "02:42:ac:13:00:02");
    CHECK(ep.ipv4_address == "198.51.100.130/24");
    CHECK(ep.ipv6_address.empty());
    CHECK(n.options.at("parent") == "lo");
    CHECK(n.labels.at("team") == "eval");
    CHECK(n.raw.contains("Status"));
    auto sent = f.engine.requests_to(verb::get, "/networks/my net");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target == "/v1.41/networks/my%20net?verbose=true&scope=local");

    SUBCASE("no options: no query; an engine before 1.48 gives no EnableIPv4") {
        f.engine.on(verb::get, "/networks/n", reply::json(200, R"({"Name":"n","Id":"i","Containers":null})"));
        auto plain = run_on_mock(f.ioc, f.client.networks().inspect("n"));
        CHECK_FALSE(plain.enable_ipv4);
        CHECK(plain.containers.empty());
        CHECK(f.engine.requests_to(verb::get, "/networks/n").at(0).target == "/v1.41/networks/n");
    }
    SUBCASE("a missing network: not_found_error, and exists() false") {
        f.engine.on(verb::get, "/networks/gone", reply::error(404, "network gone not found"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.networks().inspect("gone")), berth::not_found_error);
        CHECK_FALSE(run_on_mock(f.ioc, f.client.networks().exists("gone")));
        CHECK(run_on_mock(f.ioc, f.client.networks().exists("my net")));
    }
    SUBCASE("an empty id is refused before sending, for every operation on one network") {
        const auto before = f.engine.requests().size();
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.networks().inspect("")), berth::invalid_argument_error);
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.networks().remove("")), berth::invalid_argument_error);
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.networks().connect("", "c")), berth::invalid_argument_error);
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.networks().disconnect("", "c")), berth::invalid_argument_error);
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.networks().connect("n", "")), berth::invalid_argument_error);
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.networks().disconnect("n", "")), berth::invalid_argument_error);
        CHECK(f.engine.requests().size() == before);
    }
}

TEST_CASE("networks: list encodes its filters as JSON; remove sends DELETE; prune sends its filters") {
    fixture f;
    f.engine.on(verb::get, "/networks", reply::json(200, R"([{"Name":"none","Id":"e086","Driver":"null",
        "IPAM":{"Driver":"default","Config":[]},"Containers":{},"Options":{},"Labels":null},
        {"Name":"host","Id":"13e8","Driver":"host","IPAM":{"Config":null}}])"));
    berth::network_list_options options{.filters = {{"label", {"k=v"}}, {"type", {"builtin"}}}};
    auto listed = run_on_mock(f.ioc, f.client.networks().list(options));
    REQUIRE(listed.size() == 2);
    CHECK(listed[0].name == "none");
    CHECK(listed[0].driver == "null");
    CHECK(listed[0].ipam.config.empty());
    CHECK(listed[0].labels.empty());
    CHECK(listed[1].id == "13e8");
    auto sent = f.engine.requests_to(verb::get, "/networks");
    REQUIRE(sent.size() == 1);
    CHECK(json::parse(sent[0].query("filters").value()) == json::parse(R"({"label":["k=v"],"type":["builtin"]})"));

    SUBCASE("no filters: no query; null is an empty list") {
        f.engine.on(verb::get, "/networks", reply::json(200, "null"));
        CHECK(run_on_mock(f.ioc, f.client.networks().list()).empty());
        CHECK(f.engine.requests_to(verb::get, "/networks").back().target == "/v1.41/networks");
    }
    SUBCASE("remove") {
        f.engine.on(verb::delete_, "/networks/n é", reply::no_content(204));
        run_on_mock(f.ioc, f.client.networks().remove("n é"));
        CHECK(f.engine.requests_to(verb::delete_, "/networks/n é").at(0).target == "/v1.41/networks/n%20%C3%A9");
        f.engine.on(verb::delete_, "/networks/none",
                    reply::error(403, "none is a pre-defined network and cannot "
                                      "be removed"));
        auto e = thrown<berth::engine_error>([&] { run_on_mock(f.ioc, f.client.networks().remove("none")); });
        CHECK(e.status() == 403);
        CHECK(e.code() == berth::engine_errc::unauthorized);
    }
    SUBCASE("prune") {
        f.engine.on(verb::post, "/networks/prune", reply::json(200, R"({"NetworksDeleted":["old-1","old-2"]})"));
        berth::network_prune_options prune{.filters = {{"label", {"berth.test=1"}}, {"until", {"24h"}}}};
        auto pruned = run_on_mock(f.ioc, f.client.networks().prune(prune));
        CHECK(pruned.networks_deleted == std::vector<std::string>{"old-1", "old-2"});
        auto p = f.engine.requests_to(verb::post, "/networks/prune");
        REQUIRE(p.size() == 1);
        CHECK(json::parse(p[0].query("filters").value()) ==
              json::parse(R"({"label":["berth.test=1"],"until":["24h"]})"));
        CHECK(p[0].body.empty());
        f.engine.on(verb::post, "/networks/prune", reply::json(200, R"({"NetworksDeleted":null})"));
        CHECK(run_on_mock(f.ioc, f.client.networks().prune()).networks_deleted.empty());
        CHECK(f.engine.requests_to(verb::post, "/networks/prune").back().target == "/v1.41/networks/prune");
    }
}

TEST_CASE("networks: connect sends Container and EndpointConfig; MacAddress needs 1.44, GwPriority 1.48") {
    fixture f;
    f.engine.on(verb::post, "/networks/net/connect", reply::no_content(200));
    f.engine.on(verb::post, "/networks/net/disconnect", reply::no_content(200));
    berth::network_connect_options options{};
    auto& ep = options.endpoint_config;
    ep.ipam_config = {
        .ipv4_address = "198.51.100.130", .ipv6_address = "2001:db8::30", .link_local_ips = {"169.254.1.1", "fe80::1"}};
    ep.links = {"db:database"};
    ep.aliases = {"server_x", "server_y"};
    ep.driver_opts = {{"com.example.opt", "1"}};
    SUBCASE("1.41: the endpoint settings, nothing newer") {
        run_on_mock(f.ioc, f.client.networks().connect("net", "app", options));
        auto sent = f.engine.requests_to(verb::post, "/networks/net/connect");
        REQUIRE(sent.size() == 1);
        CHECK(sent[0].target == "/v1.41/networks/net/connect");
        CHECK(sent[0].header("Content-Type") == "application/json");
        CHECK(sent[0].json() == json::parse(R"({"Container":"app","EndpointConfig":{
            "IPAMConfig":{"IPv4Address":"198.51.100.130","IPv6Address":"2001:db8::30",
                "LinkLocalIPs":["169.254.1.1","fe80::1"]},
            "Links":["db:database"],"Aliases":["server_x","server_y"],"DriverOpts":{"com.example.opt":"1"}}})"));
    }
    SUBCASE("no options: only the container") {
        run_on_mock(f.ioc, f.client.networks().connect("net", "app"));
        CHECK(f.engine.requests_to(verb::post, "/networks/net/connect").at(0).json() ==
              json::parse(R"({"Container":"app"})"));
    }
    SUBCASE("1.41: MacAddress and GwPriority refused, nothing sent") {
        berth::network_connect_options mac{};
        mac.endpoint_config.mac_address = "02:42:ac:11:00:04";
        auto e = thrown<berth::unsupported_api_version_error>(
            [&] { run_on_mock(f.ioc, f.client.networks().connect("net", "app", mac)); });
        CHECK(e.endpoint() == "POST /networks/net/connect");
        CHECK(contains(e.what(), "1.44"));
        berth::network_connect_options priority{};
        priority.endpoint_config.gw_priority = 10;
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.networks().connect("net", "app", priority)),
                        berth::unsupported_api_version_error);
        CHECK(f.engine.requests_to(verb::post, "/networks/net/connect").empty());
    }
    SUBCASE("1.44: MacAddress sent, GwPriority still refused") {
        f.engine.set_api_version("1.44");
        ep.mac_address = "02:42:ac:11:00:04";
        run_on_mock(f.ioc, f.client.networks().connect("net", "app", options));
        auto sent = f.engine.requests_to(verb::post, "/networks/net/connect");
        REQUIRE(sent.size() == 1);
        CHECK(sent[0].json().at("EndpointConfig").at("MacAddress") == "02:42:ac:11:00:04");
        ep.gw_priority = 10;
        auto e = thrown<berth::unsupported_api_version_error>(
            [&] { run_on_mock(f.ioc, f.client.networks().connect("net", "app", options)); });
        CHECK(contains(e.what(), "1.48"));
        CHECK(f.engine.requests_to(verb::post, "/networks/net/connect").size() == 1);
    }
    SUBCASE("1.48: GwPriority sent") {
        f.engine.set_api_version("1.48");
        berth::network_connect_options priority{};
        priority.endpoint_config.gw_priority = -5;
        run_on_mock(f.ioc, f.client.networks().connect("net", "app", priority));
        CHECK(f.engine.requests_to(verb::post, "/networks/net/connect").at(0).json() ==
              json::parse(R"({"Container":"app","EndpointConfig":{"GwPriority":-5}})"));
    }
    SUBCASE("the engine's refusals are typed") {
        f.engine.on(verb::post, "/networks/net/connect",
                    reply::error(400, "container cannot be connected to multiple networks with one of the networks "
                                      "in private (none) mode"));
        auto e = thrown<berth::engine_error>([&] { run_on_mock(f.ioc, f.client.networks().connect("net", "app")); });
        CHECK(e.status() == 400);
        CHECK(e.code() == berth::engine_errc::bad_request);
        f.engine.on(verb::post, "/networks/net/connect", reply::error(404, "No such container: ghost"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.networks().connect("net", "ghost")), berth::not_found_error);
    }
    SUBCASE("disconnect sends Container and Force") {
        run_on_mock(f.ioc, f.client.networks().disconnect("net", "app"));
        run_on_mock(f.ioc, f.client.networks().disconnect("net", "app", {.force = true}));
        auto sent = f.engine.requests_to(verb::post, "/networks/net/disconnect");
        REQUIRE(sent.size() == 2);
        CHECK(sent[0].target == "/v1.41/networks/net/disconnect");
        CHECK(sent[0].header("Content-Type") == "application/json");
        CHECK(sent[0].json() == json::parse(R"({"Container":"app","Force":false})"));
        CHECK(sent[1].json() == json::parse(R"({"Container":"app","Force":true})"));
    }
}

TEST_CASE("networks: a malformed reply is a protocol_error naming the endpoint") {
    fixture f;
    SUBCASE("list answering an object") {
        f.engine.on(verb::get, "/networks", reply::json(200, R"({"Name":"n"})"));
        auto e = thrown<berth::protocol_error>([&] { run_on_mock(f.ioc, f.client.networks().list()); });
        CHECK(contains(e.what(), "GET /networks"));
    }
    SUBCASE("inspect without an Id") {
        f.engine.on(verb::get, "/networks/n", reply::json(200, R"({"Name":"n"})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.networks().inspect("n")), berth::protocol_error);
    }
    SUBCASE("IPAM.Config not an array") {
        f.engine.on(verb::get, "/networks/n", reply::json(200, R"({"Name":"n","Id":"i","IPAM":{"Config":{}}})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.networks().inspect("n")), berth::protocol_error);
    }
    SUBCASE("a Containers entry not an object") {
        f.engine.on(verb::get, "/networks/n", reply::json(200, R"({"Name":"n","Id":"i","Containers":{"c":"x"}})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.networks().inspect("n")), berth::protocol_error);
    }
    SUBCASE("EnableIPv6 not a boolean") {
        f.engine.on(verb::get, "/networks/n", reply::json(200, R"({"Name":"n","Id":"i","EnableIPv6":"yes"})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.networks().inspect("n")), berth::protocol_error);
    }
    SUBCASE("prune's NetworksDeleted not an array") {
        f.engine.on(verb::post, "/networks/prune", reply::json(200, R"({"NetworksDeleted":"n"})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.networks().prune()), berth::protocol_error);
    }
    SUBCASE("a reply that is not JSON") {
        f.engine.on(verb::get, "/networks/n", reply::json(200, "<html>"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.networks().inspect("n")), berth::protocol_error);
    }
}

// ------------------------------------------------------------------------------------------------------------
// Swarm: the swarm itself, service update and logs, task inspect and logs, node remove
// ------------------------------------------------------------------------------------------------------------

namespace {
const std::string swarm_node_id = "7v2t30z9blmxuhnyo6s4cpenp";
const std::string worker_token =
    "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-7p73s1dx5in4tatdymyhg9hu2";
const std::string unlock_secret = "SWMKEY-1-7c37Cc8654o6p38HnroywCi19pllOnGtbdZEgtKxZu8";

json::value swarm_json() {
    return json::parse(R"({"ID":"abajmipo7b4xz5ip2nrla6b11","Version":{"Index":373531},
        "CreatedAt":"2016-08-18T10:44:24.496525531Z","UpdatedAt":"2017-08-09T07:09:37.632105588Z",
        "Spec":{"Name":"default","Labels":{"team":"eval"},"Orchestration":{"TaskHistoryRetentionLimit":10},
                "Raft":{"SnapshotInterval":10000},"EncryptionConfig":{"AutoLockManagers":true}},
        "TLSInfo":{"TrustRoot":"-----BEGIN CERTIFICATE-----"},"RootRotationInProgress":false,"DataPathPort":4789,
        "DefaultAddrPool":["10.10.0.0/16"],"SubnetSize":24,
        "JoinTokens":{"Worker":")" +
                       worker_token + R"(","Manager":"SWMTKN-1-manager"}})");
}

reply service_json(bool tty) {
    return reply::json(
        200,
        json::value{
            {"ID", "svc1"},
            {"Version", {{"Index", 11}}},
            {"Spec", {{"Name", "web"}, {"TaskTemplate", {{"ContainerSpec", {{"Image", "busybox"}, {"TTY", tty}}}}}}}});
}

reply task_json(bool tty) {
    return reply::json(200, json::value{{"ID", "task1"},
                                        {"ServiceID", "svc1"},
                                        {"NodeID", "node1"},
                                        {"DesiredState", "running"},
                                        {"Spec", {{"ContainerSpec", {{"Image", "busybox"}, {"TTY", tty}}}}},
                                        {"Status", {{"State", "running"}, {"Message", "started"}}}});
}
}  // namespace

TEST_CASE("swarm: init sends its options as the engine's JSON and returns the node id, checked") {
    fixture f;
    f.engine.on(verb::post, "/swarm/init", reply::json(200, "\"" + swarm_node_id + "\""));
    berth::swarm_init_options options{.listen_addr = "127.0.0.1:4567",
                                      .advertise_addr = "127.0.0.1",
                                      .data_path_addr = "127.0.0.1",
                                      .data_path_port = 4790,
                                      .default_addr_pool = {"10.10.0.0/16"},
                                      .force_new_cluster = true,
                                      .subnet_size = 26,
                                      .spec = {{"EncryptionConfig", {{"AutoLockManagers", true}}}}};
    CHECK(run_on_mock(f.ioc, f.client.swarm().init(options)) == swarm_node_id);
    auto sent = f.engine.requests_to(verb::post, "/swarm/init");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].header("Content-Type") == "application/json");
    CHECK(sent[0].json() == json::parse(R"({"ListenAddr":"127.0.0.1:4567","AdvertiseAddr":"127.0.0.1",
        "DataPathAddr":"127.0.0.1","DataPathPort":4790,"DefaultAddrPool":["10.10.0.0/16"],"ForceNewCluster":true,
        "SubnetSize":26,"Spec":{"EncryptionConfig":{"AutoLockManagers":true}}})"));

    SUBCASE("only the listen address: the engine's defaults for the rest") {
        berth::swarm_init_options minimal{.listen_addr = "127.0.0.1:4567"};
        run_on_mock(f.ioc, f.client.swarm().init(minimal));
        CHECK(f.engine.requests_to(verb::post, "/swarm/init").back().json() ==
              json::parse(R"({"ListenAddr":"127.0.0.1:4567","ForceNewCluster":false})"));
    }
    SUBCASE("a reply that is not an id is a protocol error") {
        f.engine.on(verb::post, "/swarm/init", reply::json(200, R"("../../containers/x")"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.swarm().init(options)), berth::protocol_error);
        f.engine.on(verb::post, "/swarm/init", reply::json(200, R"({"ID":"abc"})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.swarm().init(options)), berth::protocol_error);
    }
    SUBCASE("already in a swarm: the engine's 503") {
        f.engine.on(verb::post, "/swarm/init",
                    reply::error(503, "This node is already part of a swarm. Use \"docker swarm leave\" ..."));
        auto e = thrown<berth::engine_error>([&] { run_on_mock(f.ioc, f.client.swarm().init(options)); });
        CHECK(e.status() == 503);
        CHECK(e.code() == berth::engine_errc::server_error);
    }
}

TEST_CASE("swarm: inspect reads the swarm typed; a malformed reply is not quoted (it holds the join tokens)") {
    fixture f;
    f.engine.on(verb::get, "/swarm", reply::json(200, swarm_json()));
    auto s = run_on_mock(f.ioc, f.client.swarm().inspect());
    CHECK(s.id == "abajmipo7b4xz5ip2nrla6b11");
    CHECK(s.version == 373531);
    CHECK(s.created_at == "2016-08-18T10:44:24.496525531Z");
    CHECK(s.updated_at == "2017-08-09T07:09:37.632105588Z");
    CHECK(s.name == "default");
    CHECK(s.labels == std::map<std::string, std::string>{{"team", "eval"}});
    CHECK(s.autolock_managers);
    CHECK(s.task_history_retention_limit == 10);
    CHECK(s.spec.at("Raft").at("SnapshotInterval") == 10000);
    CHECK(s.join_tokens.worker == worker_token);
    CHECK(s.join_tokens.manager == "SWMTKN-1-manager");
    CHECK_FALSE(s.root_rotation_in_progress);
    CHECK(s.data_path_port == 4789);
    CHECK(s.default_addr_pool == std::vector<std::string>{"10.10.0.0/16"});
    CHECK(s.subnet_size == 24);
    CHECK(s.raw.contains("TLSInfo"));

    f.engine.on(verb::get, "/swarm", reply::json(200, R"({"ID":"x","JoinTokens":{"Worker":")" + worker_token + "\"}"));
    auto e = thrown<berth::protocol_error>([&] { run_on_mock(f.ioc, f.client.swarm().inspect()); });
    CHECK_FALSE(contains(e.what(), "SWMTKN"));
    f.engine.on(verb::get, "/swarm", reply::json(200, R"({"ID":"x","DataPathPort":-1})"));
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.swarm().inspect()), berth::protocol_error);
    f.engine.on(verb::get, "/swarm", reply::error(503, "This node is not a swarm manager."));
    CHECK(thrown<berth::engine_error>([&] { run_on_mock(f.ioc, f.client.swarm().inspect()); }).status() == 503);
}

TEST_CASE("swarm: join and unlock send their bodies; the token and the key stay out of error messages") {
    fixture f;
    f.engine.on(verb::post, "/swarm/join", reply::no_content(200));
    f.engine.on(verb::post, "/swarm/unlock", reply::no_content(200));
    berth::swarm_join_options join{.listen_addr = "127.0.0.2:4567",
                                   .advertise_addr = "127.0.0.2",
                                   .data_path_addr = "127.0.0.2",
                                   .remote_addrs = {"127.0.0.1:4567"},
                                   .join_token = worker_token};
    run_on_mock(f.ioc, f.client.swarm().join(join));
    run_on_mock(f.ioc, f.client.swarm().unlock(unlock_secret));
    CHECK(f.engine.requests_to(verb::post, "/swarm/join").at(0).json() ==
          json::parse(R"({"ListenAddr":"127.0.0.2:4567","AdvertiseAddr":"127.0.0.2","DataPathAddr":"127.0.0.2",
              "RemoteAddrs":["127.0.0.1:4567"],"JoinToken":")" +
                      worker_token + "\"}"));
    CHECK(f.engine.requests_to(verb::post, "/swarm/unlock").at(0).json() == json::value{{"UnlockKey", unlock_secret}});

    f.engine.on(verb::post, "/swarm/join", reply::error(500, "invalid join token " + worker_token));
    auto e = thrown<berth::engine_error>([&] { run_on_mock(f.ioc, f.client.swarm().join(join)); });
    CHECK(contains(e.what(), "invalid join token"));
    CHECK_FALSE(contains(e.what(), worker_token));
    f.engine.on(verb::post, "/swarm/unlock", reply::error(500, "invalid key " + unlock_secret));
    auto u = thrown<berth::engine_error>([&] { run_on_mock(f.ioc, f.client.swarm().unlock(unlock_secret)); });
    CHECK_FALSE(contains(u.what(), unlock_secret));
    CHECK_FALSE(contains(u.message(), unlock_secret));
}

TEST_CASE("swarm: update, leave, unlock key and node remove send their queries") {
    fixture f;
    f.engine.on(verb::post, "/swarm/update", reply::no_content(200));
    f.engine.on(verb::post, "/swarm/leave", reply::no_content(200));
    f.engine.on(verb::get, "/swarm/unlockkey", reply::json(200, json::value{{"UnlockKey", unlock_secret}}));
    f.engine.on(verb::delete_, "/nodes/node 2", reply::no_content(200));
    berth::swarm_update_options update{
        .version = 42, .spec = {{"Name", "default"}}, .rotate_worker_token = true, .rotate_manager_unlock_key = true};
    run_on_mock(f.ioc, f.client.swarm().update(update));
    auto sent = f.engine.requests_to(verb::post, "/swarm/update");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target ==
          "/v1.41/swarm/update?version=42&rotateWorkerToken=1&rotateManagerToken=0&rotateManagerUnlockKey=1");
    CHECK(sent[0].json() == json::value{{"Name", "default"}});

    run_on_mock(f.ioc, f.client.swarm().leave());
    run_on_mock(f.ioc, f.client.swarm().leave({.force = true}));
    CHECK(f.engine.requests_to(verb::post, "/swarm/leave").at(0).target == "/v1.41/swarm/leave?force=0");
    CHECK(f.engine.requests_to(verb::post, "/swarm/leave").at(1).target == "/v1.41/swarm/leave?force=1");

    CHECK(run_on_mock(f.ioc, f.client.swarm().unlock_key()) == unlock_secret);
    f.engine.on(verb::get, "/swarm/unlockkey", reply::json(200, R"({"UnlockKey":")" + unlock_secret + "\""));
    auto e = thrown<berth::protocol_error>([&] { run_on_mock(f.ioc, f.client.swarm().unlock_key()); });
    CHECK_FALSE(contains(e.what(), "SWMKEY"));

    run_on_mock(f.ioc, f.client.swarm().remove_node("node 2"));
    run_on_mock(f.ioc, f.client.swarm().remove_node("node 2", {.force = true}));
    auto removed = f.engine.requests_to(verb::delete_, "/nodes/node 2");
    REQUIRE(removed.size() == 2);
    CHECK(removed[0].target == "/v1.41/nodes/node%202?force=0");
    CHECK(removed[1].query("force") == "1");
    const auto before = f.engine.requests().size();
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.swarm().remove_node("")), berth::invalid_argument_error);
    CHECK(f.engine.requests().size() == before);
    f.engine.on(verb::delete_, "/nodes/ghost", reply::error(404, "node ghost not found"));
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.swarm().remove_node("ghost")), berth::not_found_error);
}

TEST_CASE("swarm: service update sends version, registryAuthFrom, rollback, X-Registry-Auth and the spec") {
    fixture f;
    f.engine.on(verb::post, "/services/web/update",
                reply::json(200, R"({"Warnings":["image busybox could not be accessed on a registry"]})"));
    berth::service_update_options options{.version = 11,
                                          .spec = {{"Name", "web"}, {"Labels", {{"k", "v"}}}},
                                          .registry_auth_from = "previous-spec",
                                          .rollback = "previous",
                                          .registry_auth = "eyJ1c2VybmFtZSI6ImEifQ=="};
    auto r = run_on_mock(f.ioc, f.client.swarm().update_service("web", options));
    CHECK(r.warnings == std::vector<std::string>{"image busybox could not be accessed on a registry"});
    auto sent = f.engine.requests_to(verb::post, "/services/web/update");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target == "/v1.41/services/web/update?version=11&registryAuthFrom=previous-spec&rollback=previous");
    CHECK(sent[0].header("X-Registry-Auth") == "eyJ1c2VybmFtZSI6ImEifQ==");
    CHECK(sent[0].header("Content-Type") == "application/json");
    CHECK(sent[0].json() == json::parse(R"({"Name":"web","Labels":{"k":"v"}})"));

    SUBCASE("only the version: no other query, no header; Warnings null or an empty body: none") {
        berth::service_update_options plain{.version = 12, .spec = {{"Name", "web"}}};
        f.engine.on(verb::post, "/services/web/update", reply::json(200, R"({"Warnings":null})"));
        CHECK(run_on_mock(f.ioc, f.client.swarm().update_service("web", plain)).warnings.empty());
        auto last = f.engine.requests_to(verb::post, "/services/web/update").back();
        CHECK(last.target == "/v1.41/services/web/update?version=12");
        CHECK_FALSE(last.has_header("X-Registry-Auth"));
        f.engine.on(verb::post, "/services/web/update", reply::no_content(200));
        CHECK(run_on_mock(f.ioc, f.client.swarm().update_service("web", plain)).warnings.empty());
    }
    SUBCASE("refusals: a stale version, a missing service, an empty id") {
        f.engine.on(verb::post, "/services/web/update", reply::error(500, "update out of sequence"));
        CHECK(thrown<berth::engine_error>([&] {
                  run_on_mock(f.ioc, f.client.swarm().update_service("web", options));
              }).status() == 500);
        f.engine.on(verb::post, "/services/ghost/update", reply::error(404, "service ghost not found"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.swarm().update_service("ghost", options)), berth::not_found_error);
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.swarm().update_service("", options)),
                        berth::invalid_argument_error);
    }
}

TEST_CASE("swarm: service and task logs are multiplexed unless the spec has a tty; the query is the options'") {
    fixture f;
    output_log log;
    berth::service_logs_options options;
    options.on_output = std::ref(log);
    SUBCASE("service logs, multiplexed, every option") {
        f.engine.on(verb::get, "/services/web", service_json(false));
        f.engine.on(verb::get, "/services/svc1/logs",
                    reply::streamed(200, {exec_frame(out, "hello\n"), exec_frame(err, "oops\n")},
                                    "application/vnd.docker.multiplexed-stream"));
        options.details = true;
        options.since = 1700000000;
        options.timestamps = true;
        options.tail = "10";
        run_on_mock(f.ioc, f.client.swarm().service_logs("web", options));
        CHECK(log.stdout_text == "hello\n");
        CHECK(log.stderr_text == "oops\n");
        auto sent = f.engine.requests_to(verb::get, "/services/svc1/logs");
        REQUIRE(sent.size() == 1);
        CHECK(sent[0].target ==
              "/v1.41/services/svc1/logs?details=1&follow=0&stdout=1&stderr=1&since=1700000000&timestamps=1&tail=10");
    }
    SUBCASE("service logs of a tty service: raw, all stdout") {
        f.engine.on(verb::get, "/services/web", service_json(true));
        f.engine.on(verb::get, "/services/svc1/logs",
                    reply::streamed(200, {std::string("raw bytes\x01\x00", 11), "more\n"},
                                    "application/vnd.docker.raw-stream"));
        run_on_mock(f.ioc, f.client.swarm().service_logs("web", options));
        CHECK(log.stdout_text == std::string("raw bytes\x01\x00more\n", 16));
        CHECK(f.engine.requests_to(verb::get, "/services/svc1/logs").at(0).target ==
              "/v1.41/services/svc1/logs?details=0&follow=0&stdout=1&stderr=1&timestamps=0&tail=all");
    }
    SUBCASE("task logs: multiplexed, or raw with a tty") {
        f.engine.on(verb::get, "/tasks/task1", task_json(false));
        f.engine.on(verb::get, "/tasks/task1/logs",
                    reply::streamed(200, {exec_frame(err, "e\n")}, "application/vnd.docker.multiplexed-stream"));
        run_on_mock(f.ioc, f.client.swarm().task_logs("task1", options));
        CHECK(log.stderr_text == "e\n");
        f.engine.on(verb::get, "/tasks/task1", task_json(true));
        f.engine.on(verb::get, "/tasks/task1/logs", reply::streamed(200, {"t\n"}, "application/vnd.docker.raw-stream"));
        run_on_mock(f.ioc, f.client.swarm().task_logs("task1", options));
        CHECK(log.stdout_text == "t\n");
    }
    SUBCASE("a stream cut inside a frame is truncated; a service id that is not an id is never a path") {
        f.engine.on(verb::get, "/services/web", service_json(false));
        std::string frame = exec_frame(out, "hello\n");
        f.engine.on(verb::get, "/services/svc1/logs",
                    reply::streamed(200, {frame.substr(0, 10)}, "application/vnd.docker.multiplexed-stream"));
        auto e = thrown<berth::protocol_error>(
            [&] { run_on_mock(f.ioc, f.client.swarm().service_logs("web", options)); });
        CHECK(e.code() == berth::protocol_errc::truncated);
        f.engine.on(verb::get, "/services/evil",
                    reply::json(200, json::value{{"ID", "../containers/x"}, {"Spec", json::object{}}}));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.swarm().service_logs("evil", options)), berth::protocol_error);
        CHECK(f.engine.requests_to(verb::get, "/containers/x/logs").empty());
    }
    SUBCASE("followed logs have no head limit") {
        limited_fixture lf;
        lf.engine.on(verb::get, "/services/web", service_json(false));
        lf.engine.once(verb::get, "/services/svc1/logs", reply::stall());
        options.follow = true;
        CHECK(lf.timed_out(lf.client.swarm().service_logs("web", options)) == "the test's own limit" + timed_out_text);
    }
}

TEST_CASE("swarm: task inspect reads the task typed; an id that is not an id is refused") {
    fixture f;
    f.engine.on(verb::get, "/tasks/task1", task_json(false));
    auto t = run_on_mock(f.ioc, f.client.swarm().inspect_task("task1"));
    CHECK(t.id == "task1");
    CHECK(t.service_id == "svc1");
    CHECK(t.node_id == "node1");
    CHECK(t.state == "running");
    CHECK(t.desired_state == "running");
    CHECK(t.raw.contains("Spec"));
    f.engine.on(verb::get, "/tasks/bad", reply::json(200, R"({"ID":"a/b","Status":{"State":"new"}})"));
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.swarm().inspect_task("bad")), berth::protocol_error);
    f.engine.on(verb::get, "/tasks/ghost", reply::error(404, "task ghost not found"));
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.swarm().inspect_task("ghost")), berth::not_found_error);
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.swarm().inspect_task("")), berth::invalid_argument_error);
}

// ------------------------------------------------------------------------------------------------------------
// Plugins and distribution
// ------------------------------------------------------------------------------------------------------------

namespace {

using berth_test::temp_dir;
using berth_test::write_file;

// The members of a tar archive, name -> content, read with berth's reader.
std::vector<std::pair<std::string, std::string>> tar_members(const std::string& archive) {
    berth::tar::reader reader;
    reader.feed(std::span<const char>(archive.data(), archive.size()));
    std::vector<std::pair<std::string, std::string>> out;
    for (;;) {
        auto ev = reader.next();
        if (ev == berth::tar::reader::event::need_more) {
            reader.finish();
            continue;
        }
        if (ev == berth::tar::reader::event::end) break;
        if (ev == berth::tar::reader::event::entry) out.emplace_back(reader.current().name, "");
        if (ev == berth::tar::reader::event::data) out.back().second.append(reader.data().data(), reader.data().size());
    }
    return out;
}

const char* plugin_json = R"({"Id":"5724e2c8652da337ab2eedd19fc6fc0ec908e4bd907c7421bf6a8dfc70c4c078",
    "Name":"127.0.0.1:5000/team/vol:1","Enabled":true,"PluginReference":"127.0.0.1:5000/team/vol:1",
    "Settings":{"Mounts":[{"Name":"data","Settable":["source"],"Source":"/var/lib/vol","Destination":"/data",
                           "Type":"bind","Options":["rbind"]}],
                "Env":["DEBUG=0"],"Args":["-v"],"Devices":[{"Name":"fuse","Path":"/dev/fuse","Settable":null}]},
    "Config":{"Description":"A volume plugin","Documentation":"https://example.invalid",
              "Interface":{"Types":["docker.volumedriver/1.0"],"Socket":"vol.sock","ProtocolScheme":""},
              "Entrypoint":["/bin/vol","--serve"],"WorkDir":"/","Network":{"Type":"host"},
              "Env":[{"Name":"DEBUG","Description":"debug","Settable":["value"],"Value":"0"}],
              "Mounts":[],"PropagatedMount":"/data","IpcHost":false,"PidHost":true,
              "Linux":{"Capabilities":["CAP_SYS_ADMIN"]}}})";

}  // namespace

TEST_CASE("plugin inspect and list read the plugin typed; list encodes its filters; names are percent-encoded") {
    fixture f;
    f.engine.on(verb::get, "/plugins/127.0.0.1:5000/team/vol:1/json", reply::json(200, plugin_json));
    auto p = run_on_mock(f.ioc, f.client.plugins().inspect("127.0.0.1:5000/team/vol:1"));
    CHECK(f.engine.requests().back().target == "/v1.41/plugins/127.0.0.1%3A5000%2Fteam%2Fvol%3A1/json");
    CHECK(p.id.size() == 64);
    CHECK(p.name == "127.0.0.1:5000/team/vol:1");
    CHECK(p.enabled);
    CHECK(p.plugin_reference == "127.0.0.1:5000/team/vol:1");
    REQUIRE(p.settings.mounts.size() == 1);
    CHECK(p.settings.mounts[0].settable == std::vector<std::string>{"source"});
    CHECK(p.settings.mounts[0].options == std::vector<std::string>{"rbind"});
    CHECK(p.settings.env == std::vector<std::string>{"DEBUG=0"});
    CHECK(p.settings.args == std::vector<std::string>{"-v"});
    REQUIRE(p.settings.devices.size() == 1);
    CHECK(p.settings.devices[0].path == "/dev/fuse");
    CHECK(p.settings.devices[0].settable.empty());
    CHECK(p.config.description == "A volume plugin");
    CHECK(p.config.interface.types == std::vector<std::string>{"docker.volumedriver/1.0"});
    CHECK(p.config.interface.socket == "vol.sock");
    CHECK(p.config.entrypoint == std::vector<std::string>{"/bin/vol", "--serve"});
    CHECK(p.config.network_type == "host");
    REQUIRE(p.config.env.size() == 1);
    CHECK(p.config.env[0].value == "0");
    CHECK(p.config.propagated_mount == "/data");
    CHECK(p.config.pid_host);
    CHECK_FALSE(p.config.ipc_host);
    CHECK(p.config.raw.at("Linux").at("Capabilities").at(0) == "CAP_SYS_ADMIN");
    CHECK(p.raw.contains("Settings"));

    f.engine.on(verb::get, "/plugins", reply::json(200, std::string("[") + plugin_json + "]"));
    berth::plugin_list_options options{.filters = {{"capability", {"volumedriver"}}, {"enabled", {"true"}}}};
    auto listed = run_on_mock(f.ioc, f.client.plugins().list(options));
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].name == "127.0.0.1:5000/team/vol:1");
    auto sent = f.engine.requests_to(verb::get, "/plugins");
    REQUIRE(sent.size() == 1);
    CHECK(json::parse(sent[0].query("filters").value()) ==
          json::parse(R"({"capability":["volumedriver"],"enabled":["true"]})"));
    f.engine.on(verb::get, "/plugins", reply::json(200, "null"));
    CHECK(run_on_mock(f.ioc, f.client.plugins().list()).empty());
    CHECK(f.engine.requests_to(verb::get, "/plugins").back().target == "/v1.41/plugins");

    f.engine.on(verb::get, "/plugins/gone/json", reply::error(404, "plugin \"gone\" not found"));
    CHECK_FALSE(run_on_mock(f.ioc, f.client.plugins().exists("gone")));
    const auto before = f.engine.requests().size();
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.plugins().inspect("")), berth::invalid_argument_error);
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.plugins().remove("")), berth::invalid_argument_error);
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.plugins().set("", {})), berth::invalid_argument_error);
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.plugins().create("", json::object{}, "/nonexistent")),
                    berth::invalid_argument_error);
    CHECK(f.engine.requests().size() == before);
}

TEST_CASE("plugin enable, disable, set and remove send their queries and bodies") {
    fixture f;
    for (auto what : {"enable", "disable", "set"})
        f.engine.on(verb::post, std::string("/plugins/vol/") + what, reply::no_content(200));
    f.engine.on(verb::delete_, "/plugins/vol", reply::json(200, plugin_json));
    run_on_mock(f.ioc, f.client.plugins().enable("vol"));
    run_on_mock(f.ioc, f.client.plugins().enable("vol", {.timeout = 5}));
    auto enabled = f.engine.requests_to(verb::post, "/plugins/vol/enable");
    REQUIRE(enabled.size() == 2);
    CHECK(enabled[0].target == "/v1.41/plugins/vol/enable?timeout=30");  // Docker refuses a request without it
    CHECK(enabled[1].query("timeout") == "5");
    run_on_mock(f.ioc, f.client.plugins().disable("vol", {.force = true}));
    CHECK(f.engine.requests_to(verb::post, "/plugins/vol/disable").at(0).query("force") == "1");
    run_on_mock(f.ioc, f.client.plugins().set("vol", {"DEBUG=1", "data.source=/srv"}));
    auto set = f.engine.requests_to(verb::post, "/plugins/vol/set");
    REQUIRE(set.size() == 1);
    CHECK(set[0].header("Content-Type") == "application/json");
    CHECK(set[0].json() == json::parse(R"(["DEBUG=1","data.source=/srv"])"));
    run_on_mock(f.ioc, f.client.plugins().remove("vol"));
    run_on_mock(f.ioc, f.client.plugins().remove("vol", {.force = true}));
    auto removed = f.engine.requests_to(verb::delete_, "/plugins/vol");
    REQUIRE(removed.size() == 2);
    CHECK(removed[0].query("force") == "0");
    CHECK(removed[1].query("force") == "1");

    f.engine.on(verb::post, "/plugins/vol/enable",
                reply::error(500, "dial unix /run/docker/plugins/x/vol.sock: connect: no such file or directory"));
    auto e = thrown<berth::engine_error>([&] { run_on_mock(f.ioc, f.client.plugins().enable("vol")); });
    CHECK(e.code() == berth::engine_errc::server_error);
    CHECK(contains(e.message(), "vol.sock"));
}

TEST_CASE("plugin create streams a tar: config.json from the given JSON, then the rootfs under rootfs/") {
    temp_dir rootfs;
    std::filesystem::create_directories(rootfs / "bin");
    write_file(rootfs / "bin" / "tool", "#!/bin/sh\n");
    fixture f;
    f.engine.on(verb::post, "/plugins/create", reply::no_content(204));
    json::object config{{"description", "made here"}, {"entrypoint", json::array{"/bin/tool"}}};
    run_on_mock(f.ioc, f.client.plugins().create("team/vol:1", config, rootfs.path));
    auto sent = f.engine.requests_to(verb::post, "/plugins/create");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target == "/v1.41/plugins/create?name=team%2Fvol%3A1");
    CHECK(sent[0].header("Content-Type") == "application/x-tar");
    CHECK(sent[0].chunked);  // streamed
    auto members = tar_members(sent[0].body);
    REQUIRE(members.size() == 4);
    CHECK(members[0].first == "config.json");
    CHECK(json::parse(members[0].second) == config);
    CHECK(members[1].first == "rootfs");
    CHECK(members[2].first == "rootfs/bin");
    CHECK(members[3].first == "rootfs/bin/tool");
    CHECK(members[3].second == "#!/bin/sh\n");

    SUBCASE("from a directory holding config.json and rootfs/") {
        temp_dir dir;
        std::filesystem::create_directories(dir / "rootfs");
        write_file(dir / "rootfs" / "marker", "m");
        write_file(dir / "config.json", "{}");
        run_on_mock(f.ioc, f.client.plugins().create("vol", dir.path));
        auto again = tar_members(f.engine.requests_to(verb::post, "/plugins/create").back().body);
        REQUIRE(again.size() == 3);
        CHECK(again[0].first == "config.json");
        CHECK(again[1].first == "rootfs");
        CHECK(again[2].first == "rootfs/marker");
    }
    SUBCASE("a missing rootfs: a tar::error before anything is sent") {
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.plugins().create("vol", config, rootfs / "none")),
                        berth::tar::error);
        CHECK(f.engine.requests_to(verb::post, "/plugins/create").size() == 1);
    }
}

TEST_CASE("plugin privileges, pull, upgrade and push carry X-Registry-Auth and the granted privileges") {
    fixture f;
    berth::registry_credentials credentials{.username = "u", .password = "plug-secret", .server_address = "r:5000"};
    const std::string auth = berth::registry_auth_header(credentials);
    f.engine.on(verb::get, "/plugins/privileges",
                reply::json(200, R"([{"Name":"network","Description":"permissions to access a network",
                                      "Value":["host"]},{"Name":"mount","Description":"","Value":["/data"]}])"));
    f.engine.on(verb::post, "/plugins/pull",
                reply::chunked(200,
                               {R"({"status":"Pulling from team/vol","id":"1"})"
                                "\n",
                                R"({"status":"Download complete","id":"abc"})"
                                "\n"},
                               "application/json"));
    f.engine.on(verb::get, "/plugins/local:latest/json", reply::json(200, plugin_json));

    berth::plugin_privileges_options asking;
    asking.credentials = credentials;
    auto privileges = run_on_mock(f.ioc, f.client.plugins().privileges("r:5000/team/vol:1", asking));
    REQUIRE(privileges.size() == 2);
    CHECK(privileges[0].name == "network");
    CHECK(privileges[0].value == std::vector<std::string>{"host"});
    auto asked = f.engine.requests_to(verb::get, "/plugins/privileges");
    REQUIRE(asked.size() == 1);
    CHECK(asked[0].query("remote") == "r:5000/team/vol:1");
    CHECK(asked[0].header("X-Registry-Auth") == auth);

    berth::plugin_pull_options pull;
    pull.credentials = credentials;
    pull.name = "local:latest";
    pull.grant_all_privileges = true;
    std::vector<berth::progress_event> events;
    pull.on_progress = [&](const berth::progress_event& e) { events.push_back(e); };
    auto pulled = run_on_mock(f.ioc, f.client.plugins().pull("r:5000/team/vol:1", pull));
    CHECK(pulled.name == "127.0.0.1:5000/team/vol:1");  // as the engine's inspect says
    CHECK_FALSE(events.empty());
    auto pulls = f.engine.requests_to(verb::post, "/plugins/pull");
    REQUIRE(pulls.size() == 1);
    CHECK(pulls[0].query("remote") == "r:5000/team/vol:1");
    CHECK(pulls[0].query("name") == "local:latest");
    CHECK(pulls[0].header("X-Registry-Auth") == auth);
    CHECK(pulls[0].header("Content-Type") == "application/json");
    CHECK(pulls[0].json() == json::parse(R"([{"Name":"network","Description":"permissions to access a network",
                                              "Value":["host"]},{"Name":"mount","Description":"","Value":["/data"]}])"));
    CHECK(f.engine.requests_to(verb::get, "/plugins/privileges").size() == 2);  // asked again for the pull

    SUBCASE("privileges given: sent as they are, not asked for; no name: none in the query") {
        berth::plugin_pull_options given;
        given.credentials = credentials;
        given.privileges = {berth::plugin_privilege{.name = "network", .value = {"none"}}};
        f.engine.on(verb::get, "/plugins/r:5000/team/vol:1/json", reply::json(200, plugin_json));
        run_on_mock(f.ioc, f.client.plugins().pull("r:5000/team/vol:1", given));
        auto last = f.engine.requests_to(verb::post, "/plugins/pull").back();
        CHECK_FALSE(last.query("name"));
        CHECK(last.json() == json::parse(R"([{"Name":"network","Description":"","Value":["none"]}])"));
        CHECK(f.engine.requests_to(verb::get, "/plugins/privileges").size() == 2);
    }
    SUBCASE("upgrade: the remote in the query, the privileges in the body") {
        f.engine.on(verb::post, "/plugins/local:latest/upgrade",
                    reply::chunked(200, {R"({"status":"Digest: sha256:)" + std::string(64, 'a') + "\"}\n"},
                                   "application/json"));
        berth::plugin_upgrade_options upgrade;
        upgrade.credentials = credentials;
        upgrade.privileges = privileges;
        run_on_mock(f.ioc, f.client.plugins().upgrade("local:latest", "r:5000/team/vol:2", upgrade));
        auto up = f.engine.requests_to(verb::post, "/plugins/local:latest/upgrade");
        REQUIRE(up.size() == 1);
        CHECK(up[0].query("remote") == "r:5000/team/vol:2");
        CHECK(up[0].header("X-Registry-Auth") == auth);
        CHECK(up[0].json().as_array().size() == 2);
    }
    SUBCASE("push: the header even without credentials, the digest from the stream's aux") {
        f.engine.on(
            verb::post, "/plugins/r:5000/team/vol:1/push",
            reply::chunked(200,
                           {R"({"status":"Pushed","id":"abc"})"
                            "\n",
                            R"({"status":"1: digest: sha256:)" + std::string(64, 'b') + " size: 528\"}\n",
                            R"({"progressDetail":{},"aux":{"Tag":"1","Digest":"sha256:)" + std::string(64, 'b') +
                                R"(","Size":528}})"
                                "\n"},
                           "application/json"));
        berth::plugin_push_options push;
        push.lookup_credentials = false;
        auto pushed = run_on_mock(f.ioc, f.client.plugins().push("r:5000/team/vol:1", push));
        CHECK(pushed.digest == "sha256:" + std::string(64, 'b'));
        CHECK(pushed.size == 528);
        CHECK(f.engine.requests_to(verb::post, "/plugins/r:5000/team/vol:1/push").at(0).header("X-Registry-Auth") ==
              berth::registry_auth_header(berth::registry_credentials{}));
    }
    SUBCASE("failures are registry_errors without the password: in the reply's status and inside the stream") {
        f.engine.on(verb::get, "/plugins/privileges",
                    reply::error(500, "Head https://r:5000/v2/team/vol/manifests/1: unauthorized: plug-secret"));
        auto e = thrown<berth::registry_error>(
            [&] { run_on_mock(f.ioc, f.client.plugins().privileges("r:5000/team/vol:1", asking)); });
        CHECK(e.code() == berth::registry_errc::unauthorized);
        CHECK_FALSE(contains(e.what(), "plug-secret"));
        f.engine.on(
            verb::post, "/plugins/pull",
            reply::chunked(200,
                           {R"({"error":"incorrect privileges","errorDetail":{"message":"incorrect privileges"}})"
                            "\n"},
                           "application/json"));
        berth::plugin_pull_options refused;
        refused.credentials = credentials;
        auto stream_error = thrown<berth::registry_error>(
            [&] { run_on_mock(f.ioc, f.client.plugins().pull("r:5000/team/vol:1", refused)); });
        CHECK(contains(stream_error.message(), "incorrect privileges"));
    }
}

TEST_CASE("distribution inspect: the descriptor and platforms typed, X-Registry-Auth sent, failures typed") {
    fixture f;
    const std::string digest = "sha256:" + std::string(64, 'c');
    f.engine.on(verb::get, "/distribution/r:5000/team/app:1/json",
                reply::json(200, R"({"Descriptor":{"mediaType":"application/vnd.oci.image.index.v1+json",
                    "digest":")" + digest +
                                     R"(","size":1609,"urls":["https://mirror.invalid/x"],
                    "annotations":{"k":"v"},"platform":{"architecture":"amd64","os":"linux"}},
                    "Platforms":[{"architecture":"amd64","os":"linux"},
                                 {"architecture":"arm64","os":"linux","variant":"v8","os.version":"1",
                                  "os.features":["f"]}]})"));
    berth::distribution_inspect_options options;
    options.credentials = berth::registry_credentials{.username = "u", .password = "dist-secret"};
    auto d = run_on_mock(f.ioc, f.client.distribution().inspect("r:5000/team/app:1", options));
    CHECK(d.descriptor.media_type == "application/vnd.oci.image.index.v1+json");
    CHECK(d.descriptor.digest == digest);
    CHECK(d.descriptor.size == 1609);
    CHECK(d.descriptor.urls == std::vector<std::string>{"https://mirror.invalid/x"});
    CHECK(d.descriptor.annotations.at("k") == "v");
    REQUIRE(d.descriptor.platform);
    CHECK(d.descriptor.platform->architecture == "amd64");
    REQUIRE(d.platforms.size() == 2);
    CHECK(d.platforms[1].variant == "v8");
    CHECK(d.platforms[1].os_version == "1");
    CHECK(d.platforms[1].os_features == std::vector<std::string>{"f"});
    auto sent = f.engine.requests_to(verb::get, "/distribution/r:5000/team/app:1/json");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target == "/v1.41/distribution/r%3A5000%2Fteam%2Fapp%3A1/json");
    CHECK(sent[0].header("X-Registry-Auth") == berth::registry_auth_header(*options.credentials));

    SUBCASE("unknown: a registry_error not_found; a wrong password: unauthorized, the password taken out") {
        f.engine.on(verb::get, "/distribution/r:5000/team/app:1/json",
                    reply::error(404, "manifest unknown: manifest unknown"));
        auto e = thrown<berth::registry_error>(
            [&] { run_on_mock(f.ioc, f.client.distribution().inspect("r:5000/team/app:1", options)); });
        CHECK(e.code() == berth::registry_errc::not_found);
        f.engine.on(verb::get, "/distribution/r:5000/team/app:1/json",
                    reply::error(500, "Head https://r:5000/v2/team/app/manifests/1: unauthorized dist-secret"));
        auto u = thrown<berth::registry_error>(
            [&] { run_on_mock(f.ioc, f.client.distribution().inspect("r:5000/team/app:1", options)); });
        CHECK(u.code() == berth::registry_errc::unauthorized);
        CHECK_FALSE(contains(u.what(), "dist-secret"));
    }
    SUBCASE("malformed: no Descriptor, a digest that is a number, Platforms an object") {
        for (auto body : {R"({"Platforms":[]})", R"({"Descriptor":{"digest":5}})",
                          R"({"Descriptor":{"digest":"sha256:x"},"Platforms":{}})"}) {
            f.engine.on(verb::get, "/distribution/r:5000/team/app:1/json", reply::json(200, body));
            auto e = thrown<berth::protocol_error>(
                [&] { run_on_mock(f.ioc, f.client.distribution().inspect("r:5000/team/app:1", options)); });
            CHECK(contains(e.what(), "/distribution/"));
        }
    }
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.distribution().inspect("")), berth::invalid_argument_error);
}

TEST_CASE("a malformed plugin reply is a protocol_error") {
    fixture f;
    SUBCASE("list answering an object") {
        f.engine.on(verb::get, "/plugins", reply::json(200, R"({"Name":"x"})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.plugins().list()), berth::protocol_error);
    }
    SUBCASE("inspect without a Name") {
        f.engine.on(verb::get, "/plugins/vol/json", reply::json(200, R"({"Id":"x"})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.plugins().inspect("vol")), berth::protocol_error);
    }
    SUBCASE("Enabled as text") {
        f.engine.on(verb::get, "/plugins/vol/json", reply::json(200, R"({"Name":"vol","Enabled":"yes"})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.plugins().inspect("vol")), berth::protocol_error);
    }
    SUBCASE("Settings.Env holding a number") {
        f.engine.on(verb::get, "/plugins/vol/json", reply::json(200, R"({"Name":"vol","Settings":{"Env":[1]}})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.plugins().inspect("vol")), berth::protocol_error);
    }
    SUBCASE("Config.Mounts an object") {
        f.engine.on(verb::get, "/plugins/vol/json", reply::json(200, R"({"Name":"vol","Config":{"Mounts":{}}})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.plugins().inspect("vol")), berth::protocol_error);
    }
    SUBCASE("privileges holding a string") {
        f.engine.on(verb::get, "/plugins/privileges", reply::json(200, R"(["network"])"));
        berth::plugin_privileges_options none;
        none.lookup_credentials = false;
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.plugins().privileges("r:5000/x:1", none)), berth::protocol_error);
    }
    CHECK(run_on_mock(f.ioc, f.client.system().ping()));
}

// ------------------------------------------------------------------------------------------------------------
// Images: history, search, prune, commit, save, load, attestations, the build cache; container export; system
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("images: history reads each layer typed; a platform needs API 1.48") {
    fixture f;
    f.engine.on(verb::get, "/images/app:1/history",
                reply::json(200, R"([{"Id":"sha256:top","Created":1765100000,"CreatedBy":"/bin/sh -c make",
                                     "Tags":["app:1"],"Size":4096,"Comment":"built"},
                                    {"Id":"<missing>","Created":1765000000,"CreatedBy":"COPY busybox /bin",
                                     "Tags":null,"Size":0,"Comment":""}])"));
    auto history = run_on_mock(f.ioc, f.client.images().history("app:1"));
    REQUIRE(history.size() == 2);
    CHECK(history[0].id == "sha256:top");
    CHECK(history[0].created == 1765100000);
    CHECK(history[0].created_by == "/bin/sh -c make");
    CHECK(history[0].tags == std::vector<std::string>{"app:1"});
    CHECK(history[0].size == 4096);
    CHECK(history[0].comment == "built");
    CHECK(history[1].id == "<missing>");
    CHECK(history[1].tags.empty());
    CHECK(f.engine.requests_to(verb::get, "/images/app:1/history").at(0).target == "/v1.41/images/app%3A1/history");

    berth::image_history_options arm{.platform = R"({"os":"linux","architecture":"arm64"})"};
    SUBCASE("a platform on 1.41: refused, nothing sent") {
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.images().history("app:1", arm)),
                        berth::unsupported_api_version_error);
        CHECK(f.engine.requests_to(verb::get, "/images/app:1/history").size() == 1);
    }
    SUBCASE("a platform on 1.48: sent as given") {
        fixture g;  // an engine speaking 1.48 from the start
        g.engine.set_api_version("1.48");
        g.engine.on(verb::get, "/images/app:1/history", reply::json(200, "[]"));
        run_on_mock(g.ioc, g.client.images().history("app:1", arm));
        CHECK(g.engine.requests_to(verb::get, "/images/app:1/history").back().query("platform") == arm.platform);
    }
    SUBCASE("malformed: not an array, a Size as text") {
        f.engine.on(verb::get, "/images/app:1/history", reply::json(200, R"({"Id":"x"})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.images().history("app:1")), berth::protocol_error);
        f.engine.on(verb::get, "/images/app:1/history", reply::json(200, R"([{"Id":"x","Size":"big"}])"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.images().history("app:1")), berth::protocol_error);
    }
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.images().history("")), berth::invalid_argument_error);
}

TEST_CASE("images: search sends term, limit and filters and reads the results") {
    fixture f;
    f.engine.on(verb::get, "/images/search",
                reply::json(200, R"([{"name":"team/app","description":"the app","star_count":12,
                                     "is_official":true,"is_automated":false},
                                    {"name":"team/tool","description":"","star_count":0,"is_official":false}])"));
    berth::image_search_options options{.limit = 2, .filters = {{"is-official", {"true"}}, {"stars", {"3"}}}};
    auto found = run_on_mock(f.ioc, f.client.images().search("team app", options));
    REQUIRE(found.size() == 2);
    CHECK(found[0].name == "team/app");
    CHECK(found[0].description == "the app");
    CHECK(found[0].star_count == 12);
    CHECK(found[0].is_official);
    CHECK_FALSE(found[0].is_automated);
    CHECK(found[1].name == "team/tool");
    CHECK(found[1].raw.contains("star_count"));
    auto sent = f.engine.requests_to(verb::get, "/images/search");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].query("term") == "team app");
    CHECK(sent[0].query("limit") == "2");
    CHECK(json::parse(sent[0].query("filters").value()) == json::parse(R"({"is-official":["true"],"stars":["3"]})"));

    SUBCASE("no options: the term alone") {
        run_on_mock(f.ioc, f.client.images().search("app"));
        CHECK(f.engine.requests_to(verb::get, "/images/search").back().target == "/v1.41/images/search?term=app");
    }
    SUBCASE("the engine's refusal is an engine_error with its message") {
        f.engine.on(verb::get, "/images/search", reply::error(500, "Unexpected status code 404"));
        auto e = thrown<berth::engine_error>([&] { run_on_mock(f.ioc, f.client.images().search("127.0.0.1:5000/x")); });
        CHECK(e.status() == 500);
        CHECK(contains(e.message(), "404"));
    }
    SUBCASE("a result without a name is a protocol_error") {
        f.engine.on(verb::get, "/images/search", reply::json(200, R"([{"description":"x"}])"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.images().search("app")), berth::protocol_error);
    }
}

TEST_CASE("images: prune sends filters with dangling and reads what was deleted") {
    fixture f;
    f.engine.on(verb::post, "/images/prune",
                reply::json(200, R"({"ImagesDeleted":[{"Untagged":"app:old"},{"Deleted":"sha256:a"},
                                                     {"Deleted":"sha256:b"}],"SpaceReclaimed":1024})"));
    berth::image_prune_options options{.filters = {{"label", {"team=eval"}}, {"until", {"24h"}}}, .dangling = false};
    auto pruned = run_on_mock(f.ioc, f.client.images().prune(options));
    REQUIRE(pruned.images_deleted.size() == 3);
    CHECK(pruned.images_deleted[0].untagged == "app:old");
    CHECK(pruned.images_deleted[0].deleted.empty());
    CHECK(pruned.images_deleted[2].deleted == "sha256:b");
    CHECK(pruned.space_reclaimed == 1024);
    auto sent = f.engine.requests_to(verb::post, "/images/prune");
    REQUIRE(sent.size() == 1);
    CHECK(json::parse(sent[0].query("filters").value()) ==
          json::parse(R"({"dangling":["false"],"label":["team=eval"],"until":["24h"]})"));
    SUBCASE("nothing pruned: ImagesDeleted null; no options, no query") {
        f.engine.on(verb::post, "/images/prune", reply::json(200, R"({"ImagesDeleted":null,"SpaceReclaimed":0})"));
        CHECK(run_on_mock(f.ioc, f.client.images().prune()).images_deleted.empty());
        CHECK(f.engine.requests_to(verb::post, "/images/prune").back().target == "/v1.41/images/prune");
    }
}

TEST_CASE("images: commit sends its query and the config without host fields, and returns the id") {
    fixture f;
    f.engine.on(verb::post, "/commit", reply::json(201, R"({"Id":"sha256:c0ffee"})"));
    berth::container_config config;
    config.cmd = {"serve", "--port", "80"};
    config.env = {"MODE=prod"};
    config.labels = {{"team", "eval"}};
    config.host.network_mode = "none";  // not part of an image: not sent
    berth::image_commit_options options{.repo = "team/app",
                                        .tag = "v2",
                                        .comment = "a fix & more",
                                        .author = "Jo <jo@example.invalid>",
                                        .pause = false,
                                        .changes = {"ENV DEBUG=0", "EXPOSE 80"},
                                        .config = config};
    CHECK(run_on_mock(f.ioc, f.client.images().commit("builder 1", options)) == "sha256:c0ffee");
    auto sent = f.engine.requests_to(verb::post, "/commit");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].query("container") == "builder 1");
    CHECK(sent[0].query("repo") == "team/app");
    CHECK(sent[0].query("tag") == "v2");
    CHECK(sent[0].query("comment") == "a fix & more");
    CHECK(sent[0].query("author") == "Jo <jo@example.invalid>");
    CHECK(sent[0].query("pause") == "0");
    CHECK(contains(sent[0].target, "changes=ENV%20DEBUG%3D0&changes=EXPOSE%2080"));
    CHECK(sent[0].header("Content-Type") == "application/json");
    CHECK(sent[0].json() == json::parse(R"({"Cmd":["serve","--port","80"],"Env":["MODE=prod"],
                                           "Labels":{"team":"eval"}})"));

    SUBCASE("no options: the container alone, pause on, an empty config") {
        run_on_mock(f.ioc, f.client.images().commit("c1"));
        auto last = f.engine.requests_to(verb::post, "/commit").back();
        CHECK(last.target == "/v1.41/commit?container=c1&pause=1");
        CHECK(last.json() == json::object{});
    }
    SUBCASE("a missing container is a not_found_error; a reply without Id a protocol_error") {
        f.engine.on(verb::post, "/commit", reply::error(404, "No such container: gone"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.images().commit("gone")), berth::not_found_error);
        f.engine.on(verb::post, "/commit", reply::json(201, R"({"Warnings":[]})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.images().commit("c1")), berth::protocol_error);
    }
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.images().commit("")), berth::invalid_argument_error);
}

TEST_CASE("images: save streams the tarball to a callback or a file; a cut save leaves no file") {
    fixture f;
    const std::string tarball = std::string(300000, 't') + "end";
    f.engine.on(verb::get, "/images/app:1/get",
                reply::streamed(200, berth::testing::split_at(tarball, {1000, 150000}), "application/x-tar"));
    f.engine.on(verb::get, "/images/get",
                reply::streamed(200, berth::testing::split_at(tarball, {7}), "application/x-tar"));
    std::string got;
    std::size_t slices = 0;
    auto sink = [&](std::span<const char> bytes) {
        got.append(bytes.data(), bytes.size());
        ++slices;
    };
    run_on_mock(f.ioc, f.client.images().save("app:1", sink));
    CHECK(got == tarball);
    CHECK(slices >= 2);

    berth_test::temp_dir dir;
    run_on_mock(f.ioc, f.client.images().save_to_file("app:1", dir.path / "app.tar"));
    CHECK(berth_test::read_file(dir.path / "app.tar") == tarball);

    got.clear();
    run_on_mock(f.ioc, f.client.images().save_all({"app:1", "tool:2"}, sink));
    CHECK(got == tarball);
    auto sent = f.engine.requests_to(verb::get, "/images/get");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target == "/v1.41/images/get?names=app%3A1&names=tool%3A2");
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.images().save_all({}, sink)), berth::invalid_argument_error);

    SUBCASE("reset mid-body: the file keeps its old contents, no temporary is left") {
        berth_test::write_file(dir.path / "app.tar", "the good one");
        f.engine.on(verb::get, "/images/app:1/get", reply::reset_mid_body(200, tarball, 5000, "application/x-tar"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.images().save_to_file("app:1", dir.path / "app.tar")),
                        berth::connection_error);
        CHECK(berth_test::read_file(dir.path / "app.tar") == "the good one");
        CHECK(std::distance(std::filesystem::directory_iterator(dir.path), std::filesystem::directory_iterator()) == 1);
    }
    SUBCASE("a 404 leaves no file") {
        f.engine.on(verb::get, "/images/gone/get", reply::error(404, "reference does not exist"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.images().save_to_file("gone", dir.path / "gone.tar")),
                        berth::not_found_error);
        CHECK_FALSE(std::filesystem::exists(dir.path / "gone.tar"));
        CHECK(std::distance(std::filesystem::directory_iterator(dir.path), std::filesystem::directory_iterator()) == 1);
    }
    SUBCASE("a platform needs API 1.48") {
        berth::image_save_options arm{.platform = R"({"os":"linux","architecture":"arm64"})"};
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.images().save("app:1", sink, arm)),
                        berth::unsupported_api_version_error);
        fixture g;  // an engine speaking 1.48 from the start
        g.engine.set_api_version("1.48");
        g.engine.on(verb::get, "/images/app:1/get", reply::streamed(200, {"tar"}, "application/x-tar"));
        run_on_mock(g.ioc, g.client.images().save("app:1", sink, arm));
        CHECK(g.engine.requests_to(verb::get, "/images/app:1/get").back().query("platform") == arm.platform);
    }
}

TEST_CASE("images: load streams the tarball (chunked) and reads the names loaded; an error message fails it") {
    fixture f;
    const std::string tarball = std::string(600000, 'l');
    f.engine.on(verb::post, "/images/load",
                reply::chunked(200,
                               {R"({"stream":"Loaded image: team/app:v1\n"})"
                                "\n",
                                R"({"stream":"Loaded image ID: sha256:0123\n"})"
                                "\n"},
                               "application/json"));
    berth_test::temp_dir dir;
    berth_test::write_file(dir.path / "in.tar", tarball);
    berth::image_load_options quiet{.quiet = true};
    auto loaded = run_on_mock(f.ioc, f.client.images().load_from_file(dir.path / "in.tar", quiet));
    CHECK(loaded.loaded == std::vector<std::string>{"team/app:v1", "sha256:0123"});
    CHECK(loaded.log == "Loaded image: team/app:v1\nLoaded image ID: sha256:0123\n");
    auto sent = f.engine.requests_to(verb::post, "/images/load");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target == "/v1.41/images/load?quiet=1");
    CHECK(sent[0].header("Content-Type") == "application/x-tar");
    CHECK(sent[0].chunked);
    CHECK(sent[0].body == tarball);

    SUBCASE("from memory, with on_output") {
        berth::http::memory_source source{tarball};
        std::string text;
        berth::image_load_options to_callback{
            .on_output = [&](berth::output_stream, std::string_view s) { text.append(s); }};
        auto r = run_on_mock(f.ioc, f.client.images().load(source, to_callback));
        CHECK(r.log.empty());
        CHECK(text == "Loaded image: team/app:v1\nLoaded image ID: sha256:0123\n");
        CHECK(f.engine.requests_to(verb::post, "/images/load").back().query("quiet") == "0");
    }
    SUBCASE("an error in the stream is an engine_error") {
        f.engine.on(verb::post, "/images/load",
                    reply::chunked(200, {R"({"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"})"},
                                   "application/json"));
        berth::http::memory_source source{tarball};
        auto e = thrown<berth::engine_error>([&] { run_on_mock(f.ioc, f.client.images().load(source)); });
        CHECK(contains(e.message(), "unexpected EOF"));
    }
    SUBCASE("a missing file is refused before anything is sent") {
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.images().load_from_file(dir.path / "none.tar")), berth::error);
        CHECK(f.engine.requests_to(verb::post, "/images/load").size() == 1);
    }
}

TEST_CASE("images: attestations need API 1.55 (refused before sending on 1.41) and are read typed") {
    fixture f;
    f.engine.on(verb::get, "/images/app:1/attestations",
                reply::json(200, R"([{"Descriptor":{"mediaType":"application/vnd.in-toto+json",
                                     "digest":"sha256:abc","size":1234},
                                     "PredicateType":"https://slsa.dev/provenance/v0.2",
                                     "Statement":{"_type":"https://in-toto.io/Statement/v0.1"}},
                                    {"Descriptor":{"digest":"sha256:def"},"PredicateType":"https://spdx.dev/Document"}])"));
    SUBCASE("1.41") {
        auto e = thrown<berth::unsupported_api_version_error>(
            [&] { run_on_mock(f.ioc, f.client.images().attestations("app:1")); });
        CHECK(e.endpoint() == "GET /images/app%3A1/attestations");
        CHECK(contains(e.what(), "1.55"));
        CHECK(f.engine.requests_to(verb::get, "/images/app:1/attestations").empty());
    }
    SUBCASE("1.56") {
        f.engine.set_api_version("1.56");
        berth::image_attestations_options options{
            .types = {"https://slsa.dev/provenance/v0.2", "https://spdx.dev/Document"}, .statement = true};
        auto list = run_on_mock(f.ioc, f.client.images().attestations("app:1", options));
        REQUIRE(list.size() == 2);
        CHECK(list[0].predicate_type == "https://slsa.dev/provenance/v0.2");
        CHECK(list[0].descriptor.at("digest") == "sha256:abc");
        REQUIRE(list[0].statement);
        CHECK(list[0].statement->at("_type") == "https://in-toto.io/Statement/v0.1");
        CHECK_FALSE(list[1].statement);
        auto sent = f.engine.requests_to(verb::get, "/images/app:1/attestations");
        REQUIRE(sent.size() == 1);
        CHECK(sent[0].target == "/v1.56/images/app%3A1/attestations?type=https%3A%2F%2Fslsa.dev%2Fprovenance%2Fv0.2&"
                                "type=https%3A%2F%2Fspdx.dev%2FDocument&statement=true");
        f.engine.on(verb::get, "/images/app:1/attestations", reply::json(200, R"([{"PredicateType":"x"}])"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.images().attestations("app:1")), berth::protocol_error);
    }
}

TEST_CASE("images: build cache prune sends keep-storage on 1.41, reserved-space and the new limits on 1.48") {
    fixture f;
    f.engine.on(verb::post, "/build/prune",
                reply::json(200, R"({"CachesDeleted":["abc","def"],"SpaceReclaimed":2048})"));
    berth::build_cache_prune_options options{.reserved_space = 1000000, .all = true, .filters = {{"until", {"24h"}}}};
    SUBCASE("1.41") {
        auto pruned = run_on_mock(f.ioc, f.client.images().prune_build_cache(options));
        CHECK(pruned.caches_deleted == std::vector<std::string>{"abc", "def"});
        CHECK(pruned.space_reclaimed == 2048);
        auto sent = f.engine.requests_to(verb::post, "/build/prune");
        REQUIRE(sent.size() == 1);
        CHECK(sent[0].query("keep-storage") == "1000000");
        CHECK_FALSE(sent[0].query("reserved-space"));
        CHECK(sent[0].query("all") == "true");
        CHECK(json::parse(sent[0].query("filters").value()) == json::parse(R"({"until":["24h"]})"));
        berth::build_cache_prune_options limits{.max_used_space = 5};
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.images().prune_build_cache(limits)),
                        berth::unsupported_api_version_error);
        CHECK(f.engine.requests_to(verb::post, "/build/prune").size() == 1);
    }
    SUBCASE("1.48") {
        f.engine.set_api_version("1.48");
        options.max_used_space = 5000000;
        options.min_free_space = 7000000;
        run_on_mock(f.ioc, f.client.images().prune_build_cache(options));
        auto sent = f.engine.requests_to(verb::post, "/build/prune");
        REQUIRE(sent.size() == 1);
        CHECK(sent[0].query("reserved-space") == "1000000");
        CHECK_FALSE(sent[0].query("keep-storage"));
        CHECK(sent[0].query("max-used-space") == "5000000");
        CHECK(sent[0].query("min-free-space") == "7000000");
    }
    SUBCASE("nothing deleted: CachesDeleted null") {
        f.engine.on(verb::post, "/build/prune", reply::json(200, R"({"CachesDeleted":null,"SpaceReclaimed":0})"));
        auto pruned = run_on_mock(f.ioc, f.client.images().prune_build_cache());
        CHECK(pruned.caches_deleted.empty());
        CHECK(f.engine.requests_to(verb::post, "/build/prune").back().target == "/v1.41/build/prune");
    }
}

TEST_CASE("containers: export streams the filesystem to a callback or a file; a cut export leaves no file") {
    fixture f;
    const std::string tar = std::string(200000, 'e');
    f.engine.on(verb::get, "/containers/app/export",
                reply::streamed(200, berth::testing::split_at(tar, {512, 100000}), "application/x-tar"));
    std::string got;
    run_on_mock(f.ioc,
                f.client.containers().export_("app", [&](std::span<const char> b) { got.append(b.data(), b.size()); }));
    CHECK(got == tar);
    CHECK(f.engine.requests_to(verb::get, "/containers/app/export").at(0).target == "/v1.41/containers/app/export");
    berth_test::temp_dir dir;
    run_on_mock(f.ioc, f.client.containers().export_to_file("app", dir.path / "rootfs.tar"));
    CHECK(berth_test::read_file(dir.path / "rootfs.tar") == tar);

    f.engine.on(verb::get, "/containers/app/export", reply::reset_mid_body(200, tar, 70000, "application/x-tar"));
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.containers().export_to_file("app", dir.path / "cut.tar")),
                    berth::connection_error);
    CHECK_FALSE(std::filesystem::exists(dir.path / "cut.tar"));
    CHECK(std::distance(std::filesystem::directory_iterator(dir.path), std::filesystem::directory_iterator()) == 1);
    f.engine.on(verb::get, "/containers/gone/export", reply::error(404, "No such container: gone"));
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.containers().export_to_file("gone", dir.path / "gone.tar")),
                    berth::not_found_error);
    CHECK_FALSE(std::filesystem::exists(dir.path / "gone.tar"));
}

TEST_CASE("system: df reads the 1.41 lists and the 1.52+ totals with their items") {
    fixture f;
    SUBCASE("the lists of API 1.41") {
        f.engine.on(verb::get, "/system/df", reply::json(200, R"({"LayersSize":123456,
            "Images":[{"Id":"sha256:i1","RepoTags":["app:1"],"Size":1000,"Containers":1}],
            "Containers":[{"Id":"c1","Names":["/web"],"Image":"app:1","ImageID":"sha256:i1","State":"running",
                           "SizeRw":10,"SizeRootFs":1010}],
            "Volumes":[{"Name":"data","Driver":"local","Mountpoint":"/m","UsageData":{"Size":4096,"RefCount":1}}],
            "BuildCache":[{"ID":"bc1","Type":"regular","Description":"RUN make","InUse":false,"Shared":true,
                           "Size":77,"CreatedAt":"2026-12-07T10:00:00Z","LastUsedAt":"2026-12-07T11:00:00Z",
                           "UsageCount":3}]})"));
        auto df = run_on_mock(f.ioc, f.client.system().df());
        CHECK(df.layers_size == 123456);
        REQUIRE(df.images.size() == 1);
        CHECK(df.images[0].id == "sha256:i1");
        CHECK(df.images[0].repo_tags == std::vector<std::string>{"app:1"});
        REQUIRE(df.containers.size() == 1);
        CHECK(df.containers[0].names == std::vector<std::string>{"web"});
        CHECK(df.containers[0].image_id == "sha256:i1");
        CHECK(df.containers[0].size_rw == 10);
        CHECK(df.containers[0].size_root_fs == 1010);
        REQUIRE(df.volumes.size() == 1);
        REQUIRE(df.volumes[0].usage_data);
        CHECK(df.volumes[0].usage_data->size == 4096);
        CHECK(df.volumes[0].usage_data->ref_count == 1);
        REQUIRE(df.build_cache.size() == 1);
        CHECK(df.build_cache[0].id == "bc1");
        CHECK(df.build_cache[0].shared);
        CHECK(df.build_cache[0].size == 77);
        CHECK(df.build_cache[0].usage_count == 3);
        CHECK_FALSE(df.images_usage);
        CHECK(f.engine.requests_to(verb::get, "/system/df").at(0).target == "/v1.41/system/df");
        berth::system_df_options images_only{.types = {"image"}};
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.system().df(images_only)), berth::unsupported_api_version_error);
        berth::system_df_options verbose{.verbose = true};
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.system().df(verbose)), berth::unsupported_api_version_error);
        CHECK(f.engine.requests_to(verb::get, "/system/df").size() == 1);
    }
    SUBCASE("the totals of API 1.53, with items when verbose") {
        f.engine.set_api_version("1.53");
        f.engine.on(verb::get, "/system/df", reply::json(200, R"({
            "ImageUsage":{"ActiveCount":1,"TotalCount":4,"Reclaimable":300,"TotalSize":900,
                          "Items":[{"Id":"sha256:i1","RepoTags":[],"Size":900}]},
            "ContainerUsage":{"ActiveCount":1,"TotalCount":1,"Reclaimable":0,"TotalSize":10},
            "VolumeUsage":{"ActiveCount":0,"TotalCount":0,"Reclaimable":0,"TotalSize":0,"Items":null},
            "BuildCacheUsage":{"ActiveCount":0,"TotalCount":2,"Reclaimable":50,"TotalSize":50}})"));
        berth::system_df_options options{.types = {"image", "container", "volume", "build-cache"}, .verbose = true};
        auto df = run_on_mock(f.ioc, f.client.system().df(options));
        REQUIRE(df.images_usage);
        CHECK(df.images_usage->total_count == 4);
        CHECK(df.images_usage->reclaimable == 300);
        CHECK(df.images_usage->total_size == 900);
        REQUIRE(df.images.size() == 1);
        CHECK(df.images[0].id == "sha256:i1");
        REQUIRE(df.containers_usage);
        CHECK(df.containers_usage->total_size == 10);
        CHECK(df.containers.empty());
        REQUIRE(df.build_cache_usage);
        CHECK(df.build_cache_usage->total_count == 2);
        CHECK(df.layers_size == 0);
        auto sent = f.engine.requests_to(verb::get, "/system/df");
        REQUIRE(sent.size() == 1);
        CHECK(sent[0].target == "/v1.53/system/df?type=image&type=container&type=volume&type=build-cache&verbose=1");
    }
    SUBCASE("malformed: Images an object, a container without Id") {
        f.engine.on(verb::get, "/system/df", reply::json(200, R"({"Images":{"Id":"x"}})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.system().df()), berth::protocol_error);
        f.engine.on(verb::get, "/system/df", reply::json(200, R"({"Containers":[{"Names":["/x"]}]})"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.system().df()), berth::protocol_error);
    }
}

TEST_CASE("system: HEAD /_ping reads the headers alone, unversioned") {
    fixture f;
    f.engine.on(verb::head, "/_ping",
                reply::no_content(200)
                    .header("API-Version", "1.41")
                    .header("Builder-Version", "2")
                    .header("Docker-Experimental", "true")
                    .header("Swarm", "active/manager")
                    .header("Cache-Control", "no-cache, no-store, must-revalidate")
                    .header("OSType", "linux"));
    auto ping = run_on_mock(f.ioc, f.client.system().ping_head());
    CHECK(ping.api_version == "1.41");
    CHECK(ping.builder_version == "2");
    CHECK(ping.experimental);
    CHECK(ping.swarm == "active/manager");
    CHECK(ping.cache_control == "no-cache, no-store, must-revalidate");
    CHECK(ping.os_type == "linux");
    auto sent = f.engine.requests_to(verb::head, "/_ping");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target == "/_ping");
    CHECK(f.engine.requests_to(verb::get, "/version").empty());  // no negotiation needed

    SUBCASE("an engine that sends none of them: all empty") {
        f.engine.on(verb::head, "/_ping", reply::no_content(200));
        auto bare = run_on_mock(f.ioc, f.client.system().ping_head());
        CHECK(bare.api_version.empty());
        CHECK_FALSE(bare.experimental);
    }
    SUBCASE("an API-Version that is not a version is a protocol_error") {
        f.engine.on(verb::head, "/_ping", reply::no_content(200).header("API-Version", "latest"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.system().ping_head()), berth::protocol_error);
    }
    SUBCASE("a 500 is an engine_error") {
        f.engine.on(verb::head, "/_ping", reply::error(500, "daemon is shutting down"));
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.system().ping_head()), berth::engine_error);
    }
}

// ------------------------------------------------------------------------------------------------------------
// Interactive streams: exec with stdin, attach (hijacked and websocket)
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("exec: stdin asks for AttachStdin and DetachKeys at create, and starts on an upgraded connection") {
    fixture f;
    output_log log;
    berth::exec_options options;
    options.on_output = std::ref(log);
    options.cmd = {"cat"};
    options.detach_keys = "ctrl-x,x";
    options.stdin_ = berth::stdin_source::text(std::string(100000, 'a'));  // more than the stream's pieces
    CHECK(run_on_mock(f.ioc, f.client.execs().run("app", options)) == 3);
    CHECK(log.stdout_text == "hello\n");
    CHECK(log.stderr_text == "warning\n");
    auto creates = f.engine.requests_to(verb::post, "/containers/app/exec");
    REQUIRE(creates.size() == 1);
    CHECK(creates[0].json() == json::parse(R"({"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,
                                               "Tty":false,"Cmd":["cat"],"DetachKeys":"ctrl-x,x"})"));
    auto starts = f.engine.requests_to(verb::post, "/exec/e1/start");
    REQUIRE(starts.size() == 1);
    CHECK(starts[0].header("Connection") == "Upgrade");
    CHECK(starts[0].header("Upgrade") == "tcp");
    CHECK(starts[0].json() == json::parse(R"({"Detach":false,"Tty":false})"));
    f.check_no_leak();
}

TEST_CASE("system: a session asks for h2c with its headers; bad header values are refused before sending") {
    fixture f;
    auto r = reply::upgrade({"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"});
    for (auto& [name, value] : r.headers)
        if (name == "Upgrade") value = "h2c";
    f.engine.on(verb::post, "/session", std::move(r));
    berth::session_open_options options{
        .id = "s1",
        .name = "ctx",
        .shared_key = "key",
        .grpc_methods = {"/moby.filesync.v1.FileSync/DiffCopy", "/moby.filesync.v1.Auth/Credentials"}};
    auto read_all = [&]() -> asio::awaitable<std::string> {
        auto session = co_await f.client.system().session(options);
        CHECK(session.id() == "s1");
        std::string all;
        for (;;) {
            auto bytes = co_await session.read_some();
            if (bytes.empty()) break;
            all += bytes;
        }
        co_return all;
    };
    CHECK(run_on_mock(f.ioc, read_all()) == "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    auto sent = f.engine.requests_to(verb::post, "/session");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].header("Connection") == "Upgrade");
    CHECK(sent[0].header("Upgrade") == "h2c");
    CHECK(sent[0].header("X-Docker-Expose-Session-Uuid") == "s1");
    CHECK(sent[0].header("X-Docker-Expose-Session-Name") == "ctx");
    CHECK(sent[0].header("X-Docker-Expose-Session-Sharedkey") == "key");

    for (auto bad : {berth::session_open_options{.name = "a\r\nX-Evil: 1"},
                     berth::session_open_options{.grpc_methods = {"no-slash"}},
                     berth::session_open_options{.id = std::string("a\0b", 3)}}) {
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.system().session(bad)), berth::invalid_argument_error);
    }
    CHECK(f.engine.requests_to(verb::post, "/session").size() == 1);  // the refused ones sent nothing
    // An engine that answers 200 instead of switching protocols leaves no stream to use.
    f.engine.on(verb::post, "/session", reply::json(200, "{}"));
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.system().session()), berth::protocol_error);
    f.check_no_leak();
}

TEST_CASE("exec: stdin from a missing file is refused before the exec is created") {
    fixture f;
    berth::exec_options options;
    options.cmd = {"cat"};
    options.stdin_ = berth::stdin_source::file("/nonexistent/berth-stdin");
    auto e = thrown<berth::invalid_argument_error>([&] { run_on_mock(f.ioc, f.client.execs().run("app", options)); });
    CHECK(contains(e.what(), "/nonexistent/berth-stdin"));
    CHECK(f.engine.requests_to(verb::post, "/containers/app/exec").empty());
}

TEST_CASE("exec: stdin: output cut inside a frame is a protocol_error, and a producer's failure is thrown") {
    fixture f;
    berth::exec_options options;
    options.cmd = {"cat"};
    SUBCASE("cut inside a frame") {
        std::string frame = exec_frame(out, "hello\n");
        f.engine.once(verb::post, "/exec/e1/start", reply::upgrade({frame.substr(0, 10)}));
        options.stdin_ = berth::stdin_source::text("some input");
        auto e = thrown<berth::protocol_error>([&] { run_on_mock(f.ioc, f.client.execs().run("app", options)); });
        CHECK(e.endpoint() == exec_start_endpoint);
        CHECK(contains(e.what(), "inside a frame"));
    }
    SUBCASE("the producer throws while the stream is open") {
        f.engine.once(verb::post, "/exec/e1/start", reply::upgrade({exec_frame(out, "partial\n")}).then_stall());
        options.stdin_ = berth::stdin_source::chunks([]() -> asio::awaitable<std::string> {
            throw std::runtime_error("the producer gave up");
            co_return std::string();
        });
        auto e = thrown<std::runtime_error>([&] { run_on_mock(f.ioc, f.client.execs().run("app", options)); });
        CHECK(std::string(e.what()) == "the producer gave up");
    }
    f.check_recovers(&fixture::exec);
}

TEST_CASE("attach: the query and Upgrade headers, the output demultiplexed, the stdin sent") {
    fixture f;
    f.engine.on(verb::post, "/containers/app/attach",
                reply::upgrade({exec_frame(out, "echoed\n"), exec_frame(err, "and this\n")}));
    output_log log;
    berth::container_attach_options options;
    options.logs = true;
    options.stderr_ = false;
    options.detach_keys = "ctrl-p,ctrl-q";
    options.stdin_ = berth::stdin_source::text("echoed\n");
    options.on_output = std::ref(log);
    run_on_mock(f.ioc, f.client.containers().attach("app", options));
    CHECK(log.stdout_text == "echoed\n");
    CHECK(log.stderr_text == "and this\n");
    auto sent = f.engine.requests_to(verb::post, "/containers/app/attach");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target ==
          "/v1.41/containers/app/attach?stream=1&logs=1&stdin=1&stdout=1&stderr=0&detachKeys=ctrl-p%2Cctrl-q");
    CHECK(sent[0].header("Connection") == "Upgrade");
    CHECK(sent[0].header("Upgrade") == "tcp");
    CHECK(sent[0].body.empty());

    SUBCASE("without stdin, stdin=0; a tty container's output is one raw stream") {
        f.engine.add_container("tty1", true);
        f.engine.on(verb::post, "/containers/tty1/attach", reply::upgrade({"raw ", "tty bytes"}));
        output_log tty_log;
        berth::container_attach_options plain;
        plain.on_output = std::ref(tty_log);
        run_on_mock(f.ioc, f.client.containers().attach("tty1", plain));
        CHECK(tty_log.stdout_text == "raw tty bytes");
        auto tty_sent = f.engine.requests_to(verb::post, "/containers/tty1/attach");
        REQUIRE(tty_sent.size() == 1);
        CHECK(tty_sent[0].query("stdin") == "0");
        CHECK(tty_sent[0].query("stream") == "1");
        CHECK_FALSE(tty_sent[0].query("detachKeys"));
    }
    f.check_no_leak();
}

TEST_CASE("detach keys the engines would not parse are refused before anything is sent; the ones they parse are sent") {
    fixture f;
    for (std::string keys : {"ctrl-", "ctrl-X", "ctrl-1", "ctrl-xx", "notakey", "ctrl-x,,x", ",", "ctrl-x,", "DEL"}) {
        CAPTURE(keys);
        berth::exec_options ex;
        ex.cmd = {"cat"};
        ex.detach_keys = keys;
        const auto e = thrown<berth::invalid_argument_error>(
            [&] { run_on_mock(f.ioc, f.client.execs().create("app", ex)); });
        CHECK(std::string(e.what()).find("\"" + keys + "\"") != std::string::npos);
        berth::container_attach_options attach;
        attach.detach_keys = keys;
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.containers().attach("app", attach)), berth::invalid_argument_error);
        CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.containers().attach_websocket("app", attach)),
                        berth::invalid_argument_error);
    }
    CHECK(f.engine.requests().empty());

    f.engine.on(verb::post, "/containers/app/attach", reply::upgrade({}));
    for (std::string keys : {"ctrl-p,ctrl-q", "x", "ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", "ctrl-a,b,ctrl-z"}) {
        CAPTURE(keys);
        berth::container_attach_options attach;
        attach.detach_keys = keys;
        run_on_mock(f.ioc, f.client.containers().attach("app", attach));
        CHECK(f.engine.requests_to(verb::post, "/containers/app/attach").back().query("detachKeys") == keys);
    }
    f.check_no_leak();
}

TEST_CASE("attach: a stream cut inside a frame, a refusal and a reply that does not switch protocols are errors") {
    fixture f;
    output_log log;
    berth::container_attach_options options;
    options.on_output = std::ref(log);
    const std::string endpoint = "POST /v1.41/containers/app/attach?stream=1&logs=0&stdin=0&stdout=1&stderr=1";
    SUBCASE("cut inside a frame") {
        std::string frame = exec_frame(out, "hello\n");
        f.engine.once(verb::post, "/containers/app/attach", reply::upgrade({frame.substr(0, 12)}));
        auto e = thrown<berth::protocol_error>(
            [&] { run_on_mock(f.ioc, f.client.containers().attach("app", options)); });
        CHECK(e.code() == berth::protocol_errc::truncated);
        CHECK(e.endpoint() == endpoint);
    }
    SUBCASE("cut inside a frame, with stdin being sent") {
        std::string frame = exec_frame(out, "hello\n");
        f.engine.once(verb::post, "/containers/app/attach", reply::upgrade({frame.substr(0, 3)}));
        options.stdin_ = berth::stdin_source::text(std::string(300000, 'i'));
        auto e = thrown<berth::protocol_error>(
            [&] { run_on_mock(f.ioc, f.client.containers().attach("app", options)); });
        CHECK(e.code() == berth::protocol_errc::truncated);
    }
    SUBCASE("a 200 instead of 101") {
        f.engine.once(verb::post, "/containers/app/attach", reply::json(200, "{}"));
        auto e = thrown<berth::protocol_error>(
            [&] { run_on_mock(f.ioc, f.client.containers().attach("app", options)); });
        CHECK(contains(e.what(), "instead of switching protocols (101)"));
    }
    SUBCASE("the engine's 409") {
        f.engine.once(verb::post, "/containers/app/attach", reply::error(409, "container app is not running"));
        auto e = thrown<berth::conflict_error>(
            [&] { run_on_mock(f.ioc, f.client.containers().attach("app", options)); });
        CHECK(e.message() == "container app is not running");
    }
    SUBCASE("an absent container") {
        auto e = thrown<berth::not_found_error>([&] { run_on_mock(f.ioc, f.client.containers().attach("gone")); });
        CHECK(f.engine.requests_to(verb::post, "/containers/gone/attach").empty());
    }
    f.check_recovers(&fixture::plain);
}

TEST_CASE("attach: the websocket request (GET, Upgrade: websocket, the query) and its refusal typed") {
    fixture f;
    f.engine.on(verb::get, "/containers/app/attach/ws", reply::error(404, "page not found"));
    berth::container_attach_options options;
    options.stdin_ = berth::stdin_source::text("x");
    options.detach_keys = "ctrl-e";
    auto e = thrown<berth::not_found_error>(
        [&] { run_on_mock(f.ioc, f.client.containers().attach_websocket("app", options)); });
    CHECK(e.message() == "page not found");
    CHECK(e.endpoint() ==
          "GET /v1.41/containers/app/attach/ws?stream=1&logs=0&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-e");
    auto sent = f.engine.requests_to(verb::get, "/containers/app/attach/ws");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target ==
          "/v1.41/containers/app/attach/ws?stream=1&logs=0&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-e");
    CHECK(contains(sent[0].header("Connection"), "upgrade"));
    CHECK(sent[0].header("Upgrade") == "websocket");
    CHECK(sent[0].header("Sec-WebSocket-Version") == "13");
    CHECK(sent[0].header("Sec-WebSocket-Key").size() == 24);
    CHECK(sent[0].header("User-Agent") == "berth/0.1");
    f.check_recovers(&fixture::plain);
}

}  // TEST_SUITE("mock engine: requests, versions, faults, limits, pool")

// ------------------------------------------------------------------------------------------------------------
// Raw requests (client.raw()): what is sent exactly, what is refused before sending, streams both ways
// ------------------------------------------------------------------------------------------------------------

TEST_SUITE("mock engine: raw requests") {

TEST_CASE("raw send: the versioned path, the query percent-encoded in order, the caller's headers and body") {
    fixture f;
    f.engine.on(verb::post, "/future/thing", reply::json(201, R"({"Id":"t1"})").header("X-Reply", "yes"));
    berth::raw_request req{.method = verb::post,
                           .path = "/future/thing",
                           .query = {{"name", "my thing/1"}, {"labels", R"({"a":"b c"})"}, {"flag", ""}},
                           .headers = {{"Content-Type", "application/json"}, {"X-Custom", "v 1"}},
                           .body = R"({"Spec":{}})"};
    auto r = run_on_mock(f.ioc, f.client.raw().send(req));
    CHECK(r.status == 201);
    CHECK(r.ok());
    CHECK(r.header("X-Reply") == "yes");
    CHECK(r.body_json().at("Id") == "t1");
    auto sent = f.engine.requests_to(verb::post, "/future/thing");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target == "/v1.41/future/thing?name=my%20thing%2F1&labels=%7B%22a%22%3A%22b%20c%22%7D&flag=");
    CHECK(sent[0].query("labels") == R"({"a":"b c"})");
    CHECK(sent[0].header("X-Custom") == "v 1");
    CHECK(sent[0].header("Content-Type") == "application/json");
    CHECK(sent[0].header("Content-Length") == "11");
    CHECK(sent[0].header("Host") == "docker");
    CHECK(sent[0].body == R"({"Spec":{}})");
    CHECK_FALSE(sent[0].chunked);
    f.check_no_leak();
}

TEST_CASE("raw send: verbatim_path sends the path as it is, without the version prefix") {
    fixture f;
    f.engine.on(verb::get, "/_ping", reply::text(200, "OK"));
    auto r = run_on_mock(f.ioc, f.client.raw().send({.path = "/_ping", .verbatim_path = true}));
    CHECK(r.body == "OK");
    auto sent = f.engine.requests_to(verb::get, "/_ping");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].target == "/_ping");
    CHECK(sent[0].api_version.empty());
}

TEST_CASE("raw send: a non-2xx reply is its typed engine_error, or a value with throw_on_error = false") {
    fixture f;
    f.engine.on(verb::get, "/things/nope", reply::error(404, "no such thing: nope"));
    auto e = thrown<berth::not_found_error>([&] { run_on_mock(f.ioc, f.client.raw().send({.path = "/things/nope"})); });
    CHECK(e.status() == 404);
    CHECK(e.message() == "no such thing: nope");
    CHECK(e.endpoint() == "GET /v1.41/things/nope");
    auto r = run_on_mock(f.ioc, f.client.raw().send({.path = "/things/nope", .throw_on_error = false}));
    CHECK(r.status == 404);
    CHECK_FALSE(r.ok());
    CHECK(r.body_json().at("message") == "no such thing: nope");
    f.check_no_leak();
}

TEST_CASE("raw send: a reply body over max_reply_bytes is a protocol_error, and the client recovers") {
    fixture f;
    f.engine.on(verb::get, "/big", reply::text(200, std::string(5000, 'x')));
    auto e = thrown<berth::protocol_error>(
        [&] { run_on_mock(f.ioc, f.client.raw().send({.path = "/big", .max_reply_bytes = 4096})); });
    CHECK(e.code() == berth::protocol_errc::oversized);
    f.check_recovers(&fixture::plain);
}

TEST_CASE("raw send: a streamed body goes out chunked as the producer hands it out") {
    fixture f;
    f.engine.on(verb::post, "/upload", reply::no_content());
    auto pieces = std::make_shared<std::vector<std::string>>(std::vector<std::string>{"first,", "second,", "third"});
    auto next = [pieces]() -> asio::awaitable<std::string> {
        if (pieces->empty()) co_return std::string();
        auto piece = pieces->front();
        pieces->erase(pieces->begin());
        co_return piece;
    };
    berth::raw_request req{.method = verb::post,
                           .path = "/upload",
                           .headers = {{"Content-Type", "application/octet-stream"}},
                           .streamed_body = berth::stdin_source::chunks(next)};
    auto r = run_on_mock(f.ioc, f.client.raw().send(req));
    CHECK(r.status == 204);
    auto sent = f.engine.requests_to(verb::post, "/upload");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].chunked);
    CHECK_FALSE(sent[0].has_header("Content-Length"));
    CHECK(sent[0].body == "first,second,third");
    CHECK(sent[0].header("Content-Type") == "application/octet-stream");
}

TEST_CASE("raw send: a streamed body from a file missing is refused before anything is sent") {
    fixture f;
    berth::raw_request req{.method = verb::post,
                           .path = "/upload",
                           .streamed_body = berth::stdin_source::file("/nonexistent/berth-raw-body")};
    thrown<berth::invalid_argument_error>([&] { run_on_mock(f.ioc, f.client.raw().send(req)); });
    CHECK(f.engine.requests_to(verb::post, "/upload").empty());
}

TEST_CASE("raw open: the head first, then a chunked body slice by slice, then the end") {
    fixture f;
    f.engine.on(verb::get, "/events",
                reply::chunked(200, {"{\"a\":1}\n", "{\"b\":2}\n", "{\"c\":3}\n"}, "application/json"));
    auto op = [&]() -> asio::awaitable<std::vector<std::string>> {
        berth::raw_request req{.path = "/events", .query = {{"since", "0"}}};  // named: g++ 12 and a nested list
        auto stream = co_await f.client.raw().open(req);
        CHECK(stream.status() == 200);
        CHECK(stream.header("Content-Type") == "application/json");
        CHECK(stream.endpoint() == "GET /v1.41/events?since=0");
        std::vector<std::string> chunks;
        for (;;) {
            auto chunk = co_await stream.next_chunk();
            if (chunk.empty()) break;
            chunks.push_back(std::move(chunk));
        }
        co_return chunks;
    };
    auto chunks = run_on_mock(f.ioc, op());
    std::string all;
    for (auto& c : chunks) all += c;
    CHECK(all == "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
    CHECK(chunks.size() >= 2);  // pieces the engine paused between are not held back until the end
    f.check_no_leak();
}

TEST_CASE("raw open: a reply cut short is an error naming the request, after the bytes that came") {
    fixture f;
    reply cut = reply::text(200, "partial", "text/plain");
    cut.declared_length = 100;
    cut.then_close();
    f.engine.on(verb::get, "/stream", cut);
    std::string got;
    auto op = [&]() -> asio::awaitable<void> {
        berth::raw_request req{.path = "/stream"};
        auto stream = co_await f.client.raw().open(req);
        for (;;) {
            auto chunk = co_await stream.next_chunk();
            if (chunk.empty()) break;
            got += chunk;
        }
    };
    auto e = thrown<boost::system::system_error>([&] { run_on_mock(f.ioc, op()); });
    CHECK(contains(e.what(), "GET /v1.41/stream"));
    CHECK(got == "partial");
    f.check_recovers(&fixture::plain);
}

TEST_CASE("raw open: an error reply is thrown typed, or its stream handed out with throw_on_error = false") {
    fixture f;
    f.engine.on(verb::get, "/stream", reply::error(409, "busy"));
    auto open_status = [&]() -> asio::awaitable<unsigned> {
        berth::raw_request req{.path = "/stream"};
        auto stream = co_await f.client.raw().open(req);
        co_return stream.status();
    };
    thrown<berth::conflict_error>([&] { run_on_mock(f.ioc, open_status()); });
    auto op = [&]() -> asio::awaitable<std::string> {
        berth::raw_request req{.path = "/stream", .throw_on_error = false};
        auto stream = co_await f.client.raw().open(req);
        CHECK(stream.status() == 409);
        std::string body;
        for (auto chunk = co_await stream.next_chunk(); !chunk.empty(); chunk = co_await stream.next_chunk())
            body += chunk;
        co_return body;
    };
    CHECK(json::parse(run_on_mock(f.ioc, op())).at("message") == "busy");
}

TEST_CASE("raw upgrade: the request asks to switch protocols, and the engine's bytes reach on_bytes") {
    fixture f;
    f.engine.on(verb::post, "/exec/e9/start", reply::upgrade({"raw ", "bytes"}));
    std::string got;
    berth::raw_upgrade_options options;
    options.on_bytes = [&](std::string_view bytes) { got += bytes; };
    berth::raw_request req{.method = verb::post,
                           .path = "/exec/e9/start",
                           .headers = {{"Content-Type", "application/json"}},
                           .body = R"({"Detach":false,"Tty":true})"};
    auto head = run_on_mock(f.ioc, f.client.raw().upgrade(req, options));
    CHECK(head.status == 101);
    CHECK(got == "raw bytes");
    auto sent = f.engine.requests_to(verb::post, "/exec/e9/start");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].header("Connection") == "Upgrade");
    CHECK(sent[0].header("Upgrade") == "tcp");
    CHECK(sent[0].body == R"({"Detach":false,"Tty":true})");
}

TEST_CASE("raw upgrade: a refusal is its engine_error, a 200 without a stream a protocol_error") {
    fixture f;
    f.engine.on(verb::post, "/exec/gone/start", reply::error(404, "no such exec"));
    f.engine.on(verb::post, "/exec/plain/start", reply::json(200, "{}"));
    thrown<berth::not_found_error>(
        [&] { run_on_mock(f.ioc, f.client.raw().upgrade({.method = verb::post, .path = "/exec/gone/start"})); });
    thrown<berth::protocol_error>(
        [&] { run_on_mock(f.ioc, f.client.raw().upgrade({.method = verb::post, .path = "/exec/plain/start"})); });
    f.check_recovers(&fixture::plain);
}

TEST_CASE("raw: the time limit is the request's own, else the client's request_timeout") {
    SUBCASE("send: the whole exchange within .timeout") {
        fixture f;
        reply stalled = reply::text(200, "part", "text/plain");
        stalled.declared_length = 100;
        stalled.then_stall();
        f.engine.once(verb::get, "/slow", stalled);
        auto e = thrown<boost::system::system_error>(
            [&] { run_on_mock(f.ioc, f.client.raw().send({.path = "/slow", .timeout = 100ms})); });
        CHECK(e.code() == asio::error::timed_out);
        CHECK(contains(e.what(), "GET /v1.41/slow"));
        f.check_recovers(&fixture::plain);
    }
    SUBCASE("open: the wait for the head within the client's request_timeout") {
        berth::client_options options;
        options.request_timeout = 100ms;
        fixture f(options);
        f.engine.once(verb::get, "/slow", reply::stall());
        auto open_status = [&]() -> asio::awaitable<unsigned> {
            berth::raw_request req{.path = "/slow"};
            auto stream = co_await f.client.raw().open(req);
            co_return stream.status();
        };
        auto e = thrown<boost::system::system_error>([&] { run_on_mock(f.ioc, open_status()); });
        CHECK(e.code() == asio::error::timed_out);
        f.check_recovers(&fixture::plain);
    }
}

TEST_CASE("raw: secrets in the request are taken out of the engine's message") {
    fixture f;
    f.engine.on(verb::post, "/auth-thing", reply::error(401, "bad credential token-123 for you"));
    auto e = thrown<berth::engine_error>([&] {
        run_on_mock(f.ioc, f.client.raw().send({.method = verb::post,
                                                .path = "/auth-thing",
                                                .headers = {{"X-Registry-Auth", "token-123"}},
                                                .secrets = {"token-123"}}));
    });
    CHECK(e.status() == 401);
    CHECK_FALSE(contains(e.message(), "token-123"));
}

TEST_CASE("raw: what cannot be sent safely is refused before anything is sent") {
    fixture f;
    auto refused = [&](berth::raw_request req, std::string_view why) {
        auto e = thrown<berth::invalid_argument_error>([&] { run_on_mock(f.ioc, f.client.raw().send(req)); });
        CHECK_MESSAGE(contains(e.what(), why), e.what());
    };
    refused({.path = "/x", .headers = {{"X-A", "1\r\nX-Injected: 2"}}}, "control character");
    refused({.path = "/x", .headers = {{"X-A", std::string("a\0b", 3)}}}, "control character");
    refused({.path = "/x", .headers = {{"X-A", "1\nX-B: 2"}}}, "control character");
    refused({.path = "/x", .headers = {{"X-A\r\nX-B", "1"}}}, "not an HTTP token");
    refused({.path = "/x", .headers = {{"", "1"}}}, "not an HTTP token");
    refused({.path = "/x", .headers = {{"host", "evil"}}}, "set by berth");
    refused({.path = "/x", .headers = {{"Content-Length", "0"}}}, "set by berth");
    refused({.path = "/x", .headers = {{"Transfer-Encoding", "chunked"}}}, "set by berth");
    refused({.path = "/x", .headers = {{"Connection", "close"}}}, "set by berth");
    refused({.path = "x"}, "must start with '/'");
    refused({.path = ""}, "must start with '/'");
    refused({.path = "/x HTTP/1.1\r\nX-B: 1\r\n\r\nGET /y"}, "printable ASCII");
    refused({.path = "/a b"}, "printable ASCII");
    refused({.path = "/caf\xc3\xa9"}, "printable ASCII");
    refused({.path = "/x?all=1"}, "'?'");
    refused({.path = "/x#frag"}, "'?'");
    refused({.path = "/v1.41/containers/json"}, "already names an API version");
    refused({.path = "/x", .query = {{"", "v"}}}, "without a name");
    refused({.method = verb::unknown, .path = "/x"}, "method");
    refused({.method = verb::post, .path = "/x", .body = "a", .streamed_body = berth::stdin_source::text("b")},
            "both a body and a streamed body");
    for (auto& r : f.engine.requests()) CHECK_MESSAGE(r.path == "/version", r.target);
    // what looks close but is fine: a path segment encoded, a header value with a tab
    f.engine.on(verb::get, "/volumes/my vol", reply::json(200, "{}"));
    auto ok = run_on_mock(f.ioc, f.client.raw().send({.path = "/volumes/" + berth::raw_path_segment("my vol"),
                                                      .headers = {{"X-Tab", "a\tb"}}}));
    CHECK(ok.status == 200);
    CHECK(f.engine.requests_to(verb::get, "/volumes/my vol").at(0).target == "/v1.41/volumes/my%20vol");
}

}  // TEST_SUITE("mock engine: raw requests")
