#pragma once
// A pod as the API server reports it: typed metadata and status (phase, node, IP, conditions, each container's
// state), with the object's JSON kept in `raw`. The names a later request may carry (the pod's, its namespace's,
// its node's, its containers') are checked here, as they are read: a reply with '/', CR/LF or other characters a
// name cannot have is a protocol_error before anything reuses it.
#include <berth/engine/json.hpp>
#include <berth/kubernetes/names.hpp>

#include <boost/json/object.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth::kubernetes {

struct pod_condition {
    std::string type{};    // PodScheduled, Initialized, ContainersReady, Ready
    std::string status{};  // "True", "False", "Unknown"
    std::string reason{};  // Unschedulable, ...
    std::string message{};
};

// One of waiting, running, terminated (as the API: at most one is set).
struct container_state {
    enum class kind { unknown, waiting, running, terminated };
    kind state = kind::unknown;
    std::string reason{};  // waiting: ContainerCreating, ErrImageNeverPull...; terminated: Completed, Error, OOMKilled
    std::string message{};
    int exit_code = 0;  // terminated
    int signal = 0;     // terminated by a signal (0: none reported)
    std::string started_at{}, finished_at{};
};

struct container_status {
    std::string name{};
    bool ready = false;
    int restart_count = 0;
    std::string image{}, image_id{}, container_id{};
    container_state state{};
};

struct pod {
    std::string name{};
    std::string namespace_name{};
    std::string uid{};
    std::string resource_version{};
    std::map<std::string, std::string> labels{};
    std::map<std::string, std::string> annotations{};
    bool deleting = false;  // metadata.deletionTimestamp is set

    std::string phase{};      // Pending, Running, Succeeded, Failed, Unknown
    std::string node_name{};  // spec.nodeName: empty until scheduled
    std::string pod_ip{}, host_ip{};
    std::string reason{}, message{};  // status.reason / status.message (Evicted, ...)
    std::vector<pod_condition> conditions{};
    std::vector<container_status> container_statuses{};
    boost::json::object raw{};

    const pod_condition* condition(std::string_view type) const {
        for (auto& c : conditions)
            if (c.type == type) return &c;
        return nullptr;
    }
    // The scheduler could not place it: PodScheduled=False with reason Unschedulable (its message says why).
    const pod_condition* unschedulable() const {
        auto* c = condition("PodScheduled");
        return c && c->status == "False" && c->reason == "Unschedulable" ? c : nullptr;
    }
};

struct pod_list {
    std::vector<pod> items{};
    std::string resource_version{};  // of the list: where a watch after it starts
    std::string continue_token{};    // metadata.continue: more pages follow when not empty
};

namespace detail {

using berth::json_read::optional_int_as;
using berth::json_read::optional_object;
using berth::json_read::optional_string;
using berth::json_read::optional_string_map;

// A resourceVersion or continue token goes into a query, percent-encoded; bounded so that no reply can make it huge.
inline std::string bounded_token(const boost::json::object& o, std::string_view key, const std::string& endpoint) {
    auto s = optional_string(o, key, endpoint);
    if (s.size() > 4096) throw protocol_error(endpoint, "the reply's " + std::string(key) + " is over 4096 bytes");
    return s;
}

inline container_state parse_container_state(const boost::json::object* o, const std::string& endpoint) {
    container_state s;
    if (o == nullptr) return s;
    if (auto* w = optional_object(*o, "waiting", endpoint)) {
        s.state = container_state::kind::waiting;
        s.reason = optional_string(*w, "reason", endpoint);
        s.message = optional_string(*w, "message", endpoint);
    } else if (auto* r = optional_object(*o, "running", endpoint)) {
        s.state = container_state::kind::running;
        s.started_at = optional_string(*r, "startedAt", endpoint);
    } else if (auto* t = optional_object(*o, "terminated", endpoint)) {
        s.state = container_state::kind::terminated;
        s.reason = optional_string(*t, "reason", endpoint);
        s.message = optional_string(*t, "message", endpoint);
        s.exit_code = optional_int_as<int>(*t, "exitCode", endpoint);
        s.signal = optional_int_as<int>(*t, "signal", endpoint);
        s.started_at = optional_string(*t, "startedAt", endpoint);
        s.finished_at = optional_string(*t, "finishedAt", endpoint);
    }
    return s;
}

}  // namespace detail

// A Pod object from a reply (a get, a list's item, a watch event's object).
inline pod parse_pod(const boost::json::value& v, const std::string& endpoint) {
    using namespace detail;
    auto& o = berth::json_read::as_object(v, endpoint);
    pod p;
    auto* meta = optional_object(o, "metadata", endpoint);
    if (meta == nullptr) throw protocol_error(endpoint, "the pod has no metadata");
    p.name = optional_string(*meta, "name", endpoint);
    check_reply_name(p.name, name_shape::subdomain, "pod name", endpoint);
    p.namespace_name = optional_string(*meta, "namespace", endpoint);
    if (!p.namespace_name.empty()) check_reply_name(p.namespace_name, name_shape::label, "namespace", endpoint);
    p.uid = optional_string(*meta, "uid", endpoint);
    p.resource_version = bounded_token(*meta, "resourceVersion", endpoint);
    p.labels = optional_string_map(*meta, "labels", endpoint);
    p.annotations = optional_string_map(*meta, "annotations", endpoint);
    if (auto* d = meta->if_contains("deletionTimestamp"); d && !d->is_null()) p.deleting = true;
    if (auto* spec = optional_object(o, "spec", endpoint)) {
        p.node_name = optional_string(*spec, "nodeName", endpoint);
        if (!p.node_name.empty()) check_reply_name(p.node_name, name_shape::subdomain, "node name", endpoint);
    }
    if (auto* st = optional_object(o, "status", endpoint)) {
        p.phase = optional_string(*st, "phase", endpoint);
        p.pod_ip = optional_string(*st, "podIP", endpoint);
        p.host_ip = optional_string(*st, "hostIP", endpoint);
        p.reason = optional_string(*st, "reason", endpoint);
        p.message = optional_string(*st, "message", endpoint);
        if (auto* cs = st->if_contains("conditions"); cs && cs->is_array())
            for (auto& c : cs->get_array()) {
                auto& co = berth::json_read::as_object(c, endpoint);
                p.conditions.push_back({.type = optional_string(co, "type", endpoint),
                                        .status = optional_string(co, "status", endpoint),
                                        .reason = optional_string(co, "reason", endpoint),
                                        .message = optional_string(co, "message", endpoint)});
            }
        if (auto* cs = st->if_contains("containerStatuses"); cs && cs->is_array())
            for (auto& c : cs->get_array()) {
                auto& co = berth::json_read::as_object(c, endpoint);
                container_status s;
                s.name = optional_string(co, "name", endpoint);
                check_reply_name(s.name, name_shape::label, "container name", endpoint);
                s.ready = berth::json_read::optional_bool(co, "ready", endpoint);
                s.restart_count = optional_int_as<int>(co, "restartCount", endpoint);
                s.image = optional_string(co, "image", endpoint);
                s.image_id = optional_string(co, "imageID", endpoint);
                s.container_id = optional_string(co, "containerID", endpoint);
                s.state = parse_container_state(optional_object(co, "state", endpoint), endpoint);
                p.container_statuses.push_back(std::move(s));
            }
    }
    p.raw = o;
    return p;
}

inline pod_list parse_pod_list(const boost::json::value& v, const std::string& endpoint) {
    auto& o = berth::json_read::as_object(v, endpoint);
    pod_list out;
    if (auto* meta = detail::optional_object(o, "metadata", endpoint)) {
        out.resource_version = detail::bounded_token(*meta, "resourceVersion", endpoint);
        out.continue_token = detail::bounded_token(*meta, "continue", endpoint);
    }
    if (auto* items = o.if_contains("items"); items && !items->is_null())
        for (auto& item : berth::json_read::as_array(*items, endpoint)) out.items.push_back(parse_pod(item, endpoint));
    return out;
}

}  // namespace berth::kubernetes
