#pragma once
// The Swarm endpoints of a manager's Engine API that a cluster of evaluations uses: services (create, inspect,
// list, remove), tasks (list by filters) and nodes (list, inspect, update: drain and undrain). Replies are typed
// for what berth reads, with the raw JSON kept; every id a reply carries is checked before it can go into a
// request line, so a reply cannot steer a later request anywhere else.
#include <berth/cluster/service_spec.hpp>
#include <berth/detail/url.hpp>
#include <berth/engine/client_core.hpp>

#include <boost/json/serialize.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace berth {

struct created_service {
    std::string id{};
    std::vector<std::string> warnings{};
};

struct swarm_service {  // GET /services/{id}, GET /services
    std::string id{};
    std::string name{};
    std::uint64_t version = 0;
    std::map<std::string, std::string> labels{};
    json::object raw{};
};

struct swarm_task {  // GET /tasks
    std::string id{};
    std::string service_id{};
    std::string node_id{};       // empty until the task is assigned
    std::string state{};         // Status.State: new, pending, assigned, ..., running, complete, failed, rejected...
    std::string desired_state{};
    std::string message{};       // Status.Message
    std::string err{};           // Status.Err: why a task is pending or failed ("no suitable node (...)")
    std::string container_id{};  // Status.ContainerStatus.ContainerID, once the node has made the container
    json::object raw{};
};

struct swarm_node {  // GET /nodes, GET /nodes/{id}
    std::string id{};
    std::uint64_t version = 0;
    std::string hostname{};      // Description.Hostname
    std::string role{};          // Spec.Role: manager, worker
    std::string availability{};  // Spec.Availability: active, pause, drain
    std::string state{};         // Status.State: ready, down, unknown, disconnected
    std::string addr{};          // Status.Addr
    std::map<std::string, std::string> labels{};  // Spec.Labels
    json::object spec{};         // Spec as the manager sent it: an update sends it back changed
    json::object raw{};
};

// The engine's filters: {"label": {"berth.run=r1"}}, {"service": {id}}, {"desired-state": {"running"}}, ...
using swarm_filters = std::map<std::string, std::vector<std::string>>;

namespace detail {

// Swarm ids are lowercase base-36 (25 characters); container ids are 64 hex digits. Anything else from a reply
// is a protocol_error, never a path segment.
inline const std::string& checked_id(const std::string& id, std::string_view what, const std::string& endpoint) {
    bool ok = !id.empty() && id.size() <= 64;
    for (char c : id) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'));
    if (!ok) throw protocol_error(endpoint, "the reply's " + std::string(what) + " " + quote_engine_text(id) +
                                                " is not an id");
    return id;
}

inline std::string filters_query(const swarm_filters& filters) {
    if (filters.empty()) return {};
    json::object f{};
    for (auto& [k, vals] : filters) f[k] = json::array(vals.begin(), vals.end());
    return query().add("filters", json::serialize(f)).str();
}

inline std::uint64_t version_index(const json::object& o, const std::string& endpoint) {
    auto* v = json_read::optional_object(o, "Version", endpoint);
    return v ? static_cast<std::uint64_t>(json_read::optional_int(*v, "Index", endpoint)) : 0;
}

} // namespace detail

template <transport Transport>
class swarm_api {
public:
    explicit swarm_api(client_core<Transport>& c) : client_(c) {}

    // POST /services/create. registry_auth: the X-Registry-Auth header value (registry_auth_header), so the
    // nodes can pull a private image; empty: none.
    boost::asio::awaitable<created_service> create_service(const service_spec& spec, std::string registry_auth = {}) {
        const std::string endpoint = "POST /services/create";
        if (spec.limits.pids) co_await client_.require_api("1.41", "a service's pids limit", endpoint);
        http::request req{.method = verb::post, .target = "/services/create"};
        req.body = json::serialize(json::value_from(spec));
        req.content_type = "application/json";
        if (!registry_auth.empty()) req.headers.emplace_back("X-Registry-Auth", std::move(registry_auth));
        auto body = co_await within_request_timeout(open_and_read(std::move(req)), endpoint);
        auto v = json_read::parse(body, endpoint);
        auto& o = json_read::as_object(v, endpoint);
        created_service created{json_read::string_field(o, "ID", endpoint), {}};
        detail::checked_id(created.id, "service ID", endpoint);
        if (auto w = json_read::optional_string(o, "Warning", endpoint); !w.empty()) created.warnings.push_back(w);
        for (auto& w : json_read::optional_strings(o, "Warnings", endpoint)) created.warnings.push_back(w);
        co_return created;
    }

    boost::asio::awaitable<swarm_service> inspect_service(std::string_view id_or_name) {
        std::string target = "/services/" + detail::percent_encode(id_or_name);
        auto v = co_await client_.call_json(verb::get, target);
        co_return read_service(v, "GET " + target);
    }

    boost::asio::awaitable<std::vector<swarm_service>> list_services(swarm_filters filters = {}) {
        return read_list<swarm_service>("/services" + detail::filters_query(filters), &read_service);
    }

    // Removing a service makes Swarm stop and remove its tasks' containers, on their nodes, afterwards.
    boost::asio::awaitable<void> remove_service(std::string_view id_or_name) {
        co_await client_.call(verb::delete_, "/services/" + detail::percent_encode(id_or_name));
    }

    boost::asio::awaitable<std::vector<swarm_task>> list_tasks(swarm_filters filters = {}) {
        return read_list<swarm_task>("/tasks" + detail::filters_query(filters), &read_task);
    }

    boost::asio::awaitable<std::vector<swarm_node>> list_nodes(swarm_filters filters = {}) {
        return read_list<swarm_node>("/nodes" + detail::filters_query(filters), &read_node);
    }

    boost::asio::awaitable<swarm_node> inspect_node(std::string_view id) {
        std::string target = "/nodes/" + detail::percent_encode(id);
        auto v = co_await client_.call_json(verb::get, target);
        co_return read_node(v, "GET " + target);
    }

    // POST /nodes/{id}/update: the whole Spec, at the version it was read at (a stale version is a conflict the
    // manager refuses, so a concurrent change is never overwritten).
    boost::asio::awaitable<void> update_node(std::string_view id, std::uint64_t version, const json::object& spec) {
        co_await client_.call(verb::post, "/nodes/" + detail::percent_encode(id) + "/update" +
                                              detail::query().add_number("version", static_cast<long long>(version)).str(),
                              json::serialize(spec));
    }

    // Drain ("drain": its tasks move elsewhere and it gets no new ones), pause, or make active again.
    boost::asio::awaitable<void> set_node_availability(std::string_view id, std::string availability) {
        auto node = co_await inspect_node(id);
        node.spec["Availability"] = availability;
        co_await update_node(node.id, node.version, node.spec);
    }

private:
    // call() cannot send a header; this is its time limit for a request that does.
    boost::asio::awaitable<std::string> open_and_read(http::request req) {
        auto reply = co_await client_.open(std::move(req), static_cast<http::detail::no_body*>(nullptr),
                                           std::chrono::steady_clock::duration::zero());
        co_return co_await reply.read_all();
    }
    boost::asio::awaitable<std::string> within_request_timeout(boost::asio::awaitable<std::string> op,
                                                               const std::string& endpoint) {
        auto limit = client_.options().request_timeout;
        if (limit.count() <= 0) co_return co_await std::move(op);
        co_return co_await with_timeout(std::move(op), limit, client_.transport().describe() + ": " + endpoint +
                                                                  ": no complete reply within " + describe_duration(limit));
    }

    // GET target: a JSON array, each item read by `read`.
    template <class Item>
    boost::asio::awaitable<std::vector<Item>> read_list(std::string target,
                                                        Item (*read)(const json::value&, const std::string&)) {
        auto v = co_await client_.call_json(verb::get, target);
        const std::string endpoint = "GET " + target;
        std::vector<Item> out{};
        for (auto& item : json_read::as_array(v, endpoint)) out.push_back(read(item, endpoint));
        co_return out;
    }

    static swarm_task read_task(const json::value& v, const std::string& endpoint) {
        auto& o = json_read::as_object(v, endpoint);
        swarm_task t;
        t.id = detail::checked_id(json_read::string_field(o, "ID", endpoint), "task ID", endpoint);
        t.service_id = json_read::optional_string(o, "ServiceID", endpoint);
        t.node_id = json_read::optional_string(o, "NodeID", endpoint);
        if (!t.node_id.empty()) detail::checked_id(t.node_id, "NodeID", endpoint);
        t.desired_state = json_read::optional_string(o, "DesiredState", endpoint);
        auto* status = json_read::optional_object(o, "Status", endpoint);
        if (status == nullptr) throw protocol_error(endpoint, "task " + t.id + " has no Status");
        t.state = json_read::string_field(*status, "State", endpoint);
        t.message = json_read::optional_string(*status, "Message", endpoint);
        t.err = json_read::optional_string(*status, "Err", endpoint);
        if (auto* cs = json_read::optional_object(*status, "ContainerStatus", endpoint)) {
            t.container_id = json_read::optional_string(*cs, "ContainerID", endpoint);
            if (!t.container_id.empty()) detail::checked_id(t.container_id, "ContainerID", endpoint);
        }
        t.raw = o;
        return t;
    }

    static swarm_service read_service(const json::value& v, const std::string& endpoint) {
        auto& o = json_read::as_object(v, endpoint);
        swarm_service s;
        s.id = detail::checked_id(json_read::string_field(o, "ID", endpoint), "service ID", endpoint);
        s.version = detail::version_index(o, endpoint);
        if (auto* spec = json_read::optional_object(o, "Spec", endpoint)) {
            s.name = json_read::optional_string(*spec, "Name", endpoint);
            s.labels = json_read::optional_string_map(*spec, "Labels", endpoint);
        }
        s.raw = o;
        return s;
    }

    static swarm_node read_node(const json::value& v, const std::string& endpoint) {
        auto& o = json_read::as_object(v, endpoint);
        swarm_node n;
        n.id = detail::checked_id(json_read::string_field(o, "ID", endpoint), "node ID", endpoint);
        n.version = detail::version_index(o, endpoint);
        if (auto* spec = json_read::optional_object(o, "Spec", endpoint)) {
            n.role = json_read::optional_string(*spec, "Role", endpoint);
            n.availability = json_read::optional_string(*spec, "Availability", endpoint);
            n.labels = json_read::optional_string_map(*spec, "Labels", endpoint);
            n.spec = *spec;
        }
        if (auto* d = json_read::optional_object(o, "Description", endpoint))
            n.hostname = json_read::optional_string(*d, "Hostname", endpoint);
        if (auto* st = json_read::optional_object(o, "Status", endpoint)) {
            n.state = json_read::optional_string(*st, "State", endpoint);
            n.addr = json_read::optional_string(*st, "Addr", endpoint);
        }
        n.raw = o;
        return n;
    }

    client_core<Transport>& client_;
};

} // namespace berth
