#pragma once
// pod_spec: the Pod of one evaluation, typed for what an evaluation needs (one container with its image, command,
// environment, resources (extended ones such as nvidia.com/gpu included), pull policy and basic security context;
// placement by node selector, required node affinity, topology spread and tolerations; emptyDir volumes), with
// restartPolicy Never always, and `extra` JSON merged into the Pod object last for anything else (as
// container_config's extra is). pod_manifest() checks what berth can check before the server does: names, the
// enumerations, an image.
#include <berth/detail/outside_text.hpp>
#include <berth/engine/container_config_json.hpp>
#include <berth/error.hpp>
#include <berth/kubernetes/names.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth::kubernetes {

struct env_var {
    std::string name{};
    std::string value{};
};

// "KEY=value" (the evaluation layer's form) as an env_var; invalid_argument_error without a '=' after a name.
inline env_var parse_env_entry(const std::string& entry) {
    const auto eq = entry.find('=');
    if (eq == std::string::npos || eq == 0)
        throw invalid_argument_error("berth: env entry " + berth::detail::quote_outside_text(entry) +
                                     " is not KEY=value");
    return env_var{entry.substr(0, eq), entry.substr(eq + 1)};
}

// Quantities as Kubernetes writes them: "500m", "2", "1Gi"; keys such as "cpu", "memory", "nvidia.com/gpu".
struct resource_requirements {
    std::map<std::string, std::string> requests{};
    std::map<std::string, std::string> limits{};
};

struct security_context {
    std::optional<std::int64_t> run_as_user{};
    std::optional<std::int64_t> run_as_group{};
    std::optional<bool> run_as_non_root{};
    std::optional<bool> read_only_root_filesystem{};
    std::optional<bool> allow_privilege_escalation{};
    std::optional<bool> privileged{};
    std::vector<std::string> add_capabilities{};
    std::vector<std::string> drop_capabilities{};  // {"ALL"} for the least
};

struct node_selector_requirement {
    std::string key{};
    std::string operator_name = "In";  // In, NotIn, Exists, DoesNotExist, Gt, Lt
    std::vector<std::string> values{};
};
// The requirements of one term all hold; a pod may go where any term holds.
struct node_selector_term {
    std::vector<node_selector_requirement> match_expressions{};
};

struct topology_spread_constraint {
    int max_skew = 1;
    std::string topology_key = "kubernetes.io/hostname";
    std::string when_unsatisfiable = "DoNotSchedule";  // or ScheduleAnyway
    std::map<std::string, std::string> match_labels{};
};

struct toleration {
    std::string key{};
    std::string operator_name = "Equal";  // Equal or Exists
    std::string value{};
    std::string effect{};  // "", NoSchedule, PreferNoSchedule, NoExecute
    std::optional<std::int64_t> toleration_seconds{};
};

struct empty_dir_volume {
    std::string name{};        // the volume's (a DNS-1123 label)
    std::string mount_path{};  // absolute, in the container
    std::string medium{};      // "" (node disk) or "Memory"
    std::string size_limit{};  // a quantity, or empty
};

struct pod_spec {
    std::string name{};           // the pod's name, or empty with generate_name
    std::string generate_name{};  // a prefix the server completes ("eval-" -> "eval-x7k2p")
    std::map<std::string, std::string> labels{};
    std::map<std::string, std::string> annotations{};

    std::string container_name = "main";
    std::string image{};
    std::vector<std::string> command{};  // the entrypoint (empty: the image's)
    std::vector<std::string> args{};
    std::vector<env_var> env{};
    std::string working_dir{};
    resource_requirements resources{};
    std::string image_pull_policy{};  // "", Always, IfNotPresent, Never
    security_context security{};

    std::optional<std::int64_t> termination_grace_period_seconds{};
    std::map<std::string, std::string> node_selector{};
    std::vector<node_selector_term> required_node_affinity{};
    std::vector<topology_spread_constraint> topology_spread{};
    std::vector<toleration> tolerations{};
    std::vector<empty_dir_volume> empty_dirs{};

    boost::json::object extra{};  // merged into the Pod object last (objects merge, other values replace)
};

namespace detail {

inline void check_one_of(std::string_view value, std::initializer_list<std::string_view> allowed,
                         std::string_view what) {
    for (auto a : allowed)
        if (value == a) return;
    std::string list;
    for (auto a : allowed) list += (list.empty() ? "" : ", ") + (a.empty() ? std::string("\"\"") : std::string(a));
    throw invalid_argument_error("berth: pod_spec " + std::string(what) + " " +
                                 berth::detail::quote_outside_text(value) + " is not one of " + list);
}

inline boost::json::array strings_json(const std::vector<std::string>& v) {
    boost::json::array a;
    for (auto& s : v) a.emplace_back(s);
    return a;
}
inline boost::json::object map_json(const std::map<std::string, std::string>& m) {
    boost::json::object o;
    for (auto& [k, v] : m) o[k] = v;
    return o;
}

}  // namespace detail

// The Pod object to create. Throws invalid_argument_error for what is wrong before the server sees it.
inline boost::json::object pod_manifest(const pod_spec& s) {
    using namespace detail;
    if (s.name.empty() == s.generate_name.empty())
        throw invalid_argument_error("berth: pod_spec needs exactly one of name and generate_name");
    if (!s.name.empty()) check_name_argument(s.name, name_shape::subdomain, "pod name");
    // the server appends 5 characters to the prefix, and the result must be a name
    if (!s.generate_name.empty() && (s.generate_name.size() > 58 || !is_dns1123_subdomain(s.generate_name + "x")))
        throw invalid_argument_error("berth: pod_spec generate_name " +
                                     berth::detail::quote_outside_text(s.generate_name) +
                                     " does not make a DNS-1123 subdomain with 5 characters added");
    check_name_argument(s.container_name, name_shape::label, "container name");
    if (s.image.empty()) throw invalid_argument_error("berth: pod_spec has no image");
    check_one_of(s.image_pull_policy, {"", "Always", "IfNotPresent", "Never"}, "image_pull_policy");

    boost::json::object meta;
    if (!s.name.empty()) meta["name"] = s.name;
    if (!s.generate_name.empty()) meta["generateName"] = s.generate_name;
    if (!s.labels.empty()) meta["labels"] = map_json(s.labels);
    if (!s.annotations.empty()) meta["annotations"] = map_json(s.annotations);

    boost::json::object c;
    c["name"] = s.container_name;
    c["image"] = s.image;
    if (!s.command.empty()) c["command"] = strings_json(s.command);
    if (!s.args.empty()) c["args"] = strings_json(s.args);
    if (!s.env.empty()) {
        boost::json::array env;
        for (auto& e : s.env) {
            if (e.name.empty()) throw invalid_argument_error("berth: pod_spec env has an empty name");
            env.push_back(boost::json::object{{"name", e.name}, {"value", e.value}});
        }
        c["env"] = std::move(env);
    }
    if (!s.working_dir.empty()) c["workingDir"] = s.working_dir;
    if (!s.resources.requests.empty() || !s.resources.limits.empty()) {
        boost::json::object r;
        if (!s.resources.requests.empty()) r["requests"] = map_json(s.resources.requests);
        if (!s.resources.limits.empty()) r["limits"] = map_json(s.resources.limits);
        c["resources"] = std::move(r);
    }
    if (!s.image_pull_policy.empty()) c["imagePullPolicy"] = s.image_pull_policy;
    {
        const auto& sc = s.security;
        boost::json::object o;
        if (sc.run_as_user) o["runAsUser"] = *sc.run_as_user;
        if (sc.run_as_group) o["runAsGroup"] = *sc.run_as_group;
        if (sc.run_as_non_root) o["runAsNonRoot"] = *sc.run_as_non_root;
        if (sc.read_only_root_filesystem) o["readOnlyRootFilesystem"] = *sc.read_only_root_filesystem;
        if (sc.allow_privilege_escalation) o["allowPrivilegeEscalation"] = *sc.allow_privilege_escalation;
        if (sc.privileged) o["privileged"] = *sc.privileged;
        if (!sc.add_capabilities.empty() || !sc.drop_capabilities.empty()) {
            boost::json::object caps;
            if (!sc.add_capabilities.empty()) caps["add"] = strings_json(sc.add_capabilities);
            if (!sc.drop_capabilities.empty()) caps["drop"] = strings_json(sc.drop_capabilities);
            o["capabilities"] = std::move(caps);
        }
        if (!o.empty()) c["securityContext"] = std::move(o);
    }

    boost::json::object spec;
    spec["restartPolicy"] = "Never";
    if (s.termination_grace_period_seconds) {
        if (*s.termination_grace_period_seconds < 0)
            throw invalid_argument_error("berth: pod_spec termination_grace_period_seconds is negative");
        spec["terminationGracePeriodSeconds"] = *s.termination_grace_period_seconds;
    }
    if (!s.node_selector.empty()) spec["nodeSelector"] = map_json(s.node_selector);
    if (!s.required_node_affinity.empty()) {
        boost::json::array terms;
        for (auto& t : s.required_node_affinity) {
            boost::json::array exprs;
            for (auto& r : t.match_expressions) {
                check_one_of(r.operator_name, {"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"},
                             "node affinity operator");
                boost::json::object e{{"key", r.key}, {"operator", r.operator_name}};
                if (!r.values.empty()) e["values"] = strings_json(r.values);
                exprs.push_back(std::move(e));
            }
            terms.push_back(boost::json::object{{"matchExpressions", std::move(exprs)}});
        }
        spec["affinity"] = boost::json::object{
            {"nodeAffinity", boost::json::object{{"requiredDuringSchedulingIgnoredDuringExecution",
                                                  boost::json::object{{"nodeSelectorTerms", std::move(terms)}}}}}};
    }
    if (!s.topology_spread.empty()) {
        boost::json::array a;
        for (auto& t : s.topology_spread) {
            check_one_of(t.when_unsatisfiable, {"DoNotSchedule", "ScheduleAnyway"}, "when_unsatisfiable");
            if (t.max_skew < 1) throw invalid_argument_error("berth: pod_spec topology spread max_skew is below 1");
            boost::json::object o{
                {"maxSkew", t.max_skew}, {"topologyKey", t.topology_key}, {"whenUnsatisfiable", t.when_unsatisfiable}};
            if (!t.match_labels.empty())
                o["labelSelector"] = boost::json::object{{"matchLabels", map_json(t.match_labels)}};
            a.push_back(std::move(o));
        }
        spec["topologySpreadConstraints"] = std::move(a);
    }
    if (!s.tolerations.empty()) {
        boost::json::array a;
        for (auto& t : s.tolerations) {
            check_one_of(t.operator_name, {"Equal", "Exists"}, "toleration operator");
            check_one_of(t.effect, {"", "NoSchedule", "PreferNoSchedule", "NoExecute"}, "toleration effect");
            boost::json::object o{{"operator", t.operator_name}};
            if (!t.key.empty()) o["key"] = t.key;
            if (!t.value.empty()) o["value"] = t.value;
            if (!t.effect.empty()) o["effect"] = t.effect;
            if (t.toleration_seconds) o["tolerationSeconds"] = *t.toleration_seconds;
            a.push_back(std::move(o));
        }
        spec["tolerations"] = std::move(a);
    }
    if (!s.empty_dirs.empty()) {
        boost::json::array volumes, mounts;
        for (auto& v : s.empty_dirs) {
            check_name_argument(v.name, name_shape::label, "volume name");
            if (!v.mount_path.starts_with('/'))
                throw invalid_argument_error("berth: pod_spec volume mount path " +
                                             berth::detail::quote_outside_text(v.mount_path) + " is not absolute");
            check_one_of(v.medium, {"", "Memory"}, "emptyDir medium");
            boost::json::object dir;
            if (!v.medium.empty()) dir["medium"] = v.medium;
            if (!v.size_limit.empty()) dir["sizeLimit"] = v.size_limit;
            volumes.push_back(boost::json::object{{"name", v.name}, {"emptyDir", std::move(dir)}});
            mounts.push_back(boost::json::object{{"name", v.name}, {"mountPath", v.mount_path}});
        }
        spec["volumes"] = std::move(volumes);
        c["volumeMounts"] = std::move(mounts);
    }
    spec["containers"] = boost::json::array{std::move(c)};

    boost::json::object pod{
        {"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", std::move(meta)}, {"spec", std::move(spec)}};
    berth::detail::merge_json(pod, s.extra);
    return pod;
}

}  // namespace berth::kubernetes
