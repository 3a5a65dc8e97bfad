#pragma once
// The typed request of POST /services/create (Engine API v1.41 ServiceSpec), for what an evaluation service uses:
// one replicated task of a container, its resources, placement, restart policy and networks. Field names follow
// the engine's JSON; only what is set is sent, so Swarm's defaults stay the defaults.
#include <berth/engine/container_config.hpp>

#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth {

// A countable resource nodes advertise (dockerd --node-generic-resource "NVIDIA-GPU=2"), reserved by a task.
struct generic_resource {
    std::string kind{};  // "NVIDIA-GPU", "gpu", "SSD"
    std::int64_t value = 1;
};

struct service_resources {
    std::int64_t nano_cpus = 0;               // 0: not set
    std::int64_t memory_bytes = 0;            // 0: not set
    std::int64_t pids = 0;                    // Limits only, Engine API 1.41+; 0: not set
    std::vector<generic_resource> generic{};  // Reservations only
};

// A secret or config a task sees as a file: an item of ContainerSpec.Secrets or ContainerSpec.Configs.
struct service_file_reference {
    std::string id{};           // SecretID / ConfigID (secrets().create or configs().create gave it)
    std::string name{};         // SecretName / ConfigName
    std::string file_name{};    // File.Name: a secret's relative to /run/secrets/; a config's absolute ("/app.conf")
    std::string uid = "0";      // File.UID
    std::string gid = "0";      // File.GID
    std::uint32_t mode = 0444;  // File.Mode
};

struct service_container_spec {  // TaskTemplate.ContainerSpec
    std::string image{};
    std::vector<std::string> command{};
    std::vector<std::string> env{};
    std::map<std::string, std::string> labels{};
    std::optional<bool> init{};
    bool tty = false;
    bool open_stdin = false;
    std::optional<std::int64_t> stop_grace_period_ns{};
    std::vector<service_file_reference> secrets{};  // Secrets
    std::vector<service_file_reference> configs{};  // Configs
};

struct service_spec {
    std::string name{};
    std::map<std::string, std::string> labels{};
    service_container_spec container{};
    service_resources limits{};
    service_resources reservations{};
    std::string restart_condition = "none";  // none, on-failure, any
    std::vector<std::string> constraints{};  // "node.hostname==n2", "node.labels.zone==a"
    std::vector<std::string> spread{};       // placement preferences: spread over "node.labels.rack"
    std::vector<std::string> networks{};     // TaskTemplate.Networks targets ("none")
    std::uint64_t replicas = 1;
};

namespace detail {

// ContainerSpec.Secrets or .Configs (`kind`: "Secret" or "Config").
inline boost::json::array service_file_references_json(const std::vector<service_file_reference>& refs,
                                                       std::string_view kind) {
    boost::json::array out{};
    for (auto& r : refs) {
        boost::json::object o{};
        o[std::string(kind) + "ID"] = r.id;
        o[std::string(kind) + "Name"] = r.name;
        o["File"] = {{"Name", r.file_name}, {"UID", r.uid}, {"GID", r.gid}, {"Mode", r.mode}};
        out.push_back(std::move(o));
    }
    return out;
}

inline boost::json::object service_resources_json(const service_resources& r, bool limits) {
    boost::json::object o{};
    if (r.nano_cpus) o["NanoCPUs"] = r.nano_cpus;
    if (r.memory_bytes) o["MemoryBytes"] = r.memory_bytes;
    if (limits && r.pids) o["Pids"] = r.pids;
    if (!limits && !r.generic.empty()) {
        boost::json::array g{};
        for (auto& res : r.generic)
            g.push_back(boost::json::object{{"DiscreteResourceSpec", {{"Kind", res.kind}, {"Value", res.value}}}});
        o["GenericResources"] = std::move(g);
    }
    return o;
}

}  // namespace detail

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, const service_spec& s) {
    using boost::json::object;
    object container_spec{{"Image", s.container.image}};
    if (!s.container.command.empty()) container_spec["Command"] = detail::to_json_strings(s.container.command);
    if (!s.container.env.empty()) container_spec["Env"] = detail::to_json_strings(s.container.env);
    if (!s.container.labels.empty()) container_spec["Labels"] = detail::to_json_map(s.container.labels);
    if (s.container.init) container_spec["Init"] = *s.container.init;
    if (s.container.tty) container_spec["TTY"] = true;
    if (s.container.open_stdin) container_spec["OpenStdin"] = true;
    if (s.container.stop_grace_period_ns) container_spec["StopGracePeriod"] = *s.container.stop_grace_period_ns;
    if (!s.container.secrets.empty())
        container_spec["Secrets"] = detail::service_file_references_json(s.container.secrets, "Secret");
    if (!s.container.configs.empty())
        container_spec["Configs"] = detail::service_file_references_json(s.container.configs, "Config");

    object task{{"ContainerSpec", std::move(container_spec)}};
    object resources{};
    if (auto l = detail::service_resources_json(s.limits, true); !l.empty()) resources["Limits"] = std::move(l);
    if (auto r = detail::service_resources_json(s.reservations, false); !r.empty())
        resources["Reservations"] = std::move(r);
    if (!resources.empty()) task["Resources"] = std::move(resources);
    task["RestartPolicy"] = object{{"Condition", s.restart_condition}};
    object placement{};
    if (!s.constraints.empty()) placement["Constraints"] = detail::to_json_strings(s.constraints);
    if (!s.spread.empty()) {
        boost::json::array prefs{};
        for (auto& d : s.spread) prefs.push_back(object{{"Spread", {{"SpreadDescriptor", d}}}});
        placement["Preferences"] = std::move(prefs);
    }
    if (!placement.empty()) task["Placement"] = std::move(placement);
    if (!s.networks.empty()) {
        boost::json::array nets{};
        for (auto& n : s.networks) nets.push_back(object{{"Target", n}});
        task["Networks"] = std::move(nets);  // TaskTemplate.Networks: the top-level field is deprecated since 1.44
    }

    object o{{"Name", s.name}};
    if (!s.labels.empty()) o["Labels"] = detail::to_json_map(s.labels);
    o["TaskTemplate"] = std::move(task);
    o["Mode"] = object{{"Replicated", {{"Replicas", s.replicas}}}};
    jv = std::move(o);
}

}  // namespace berth
