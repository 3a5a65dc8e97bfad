#pragma once
// The Swarm endpoints of the Engine API (client.swarm()): the swarm itself (inspect, init, join, leave, update, the
// unlock key and unlock), services (create, inspect, list, update, remove, logs), tasks (list by filters, inspect,
// logs) and nodes (list, inspect, update: drain and undrain, remove). Replies are typed for what berth reads, with
// the raw JSON kept; every id a reply carries is checked before it can go into a request line, so a reply cannot
// steer a later request anywhere else. Join tokens and unlock keys are secrets: never quoted in an error message.
//
// An engine that is not in a swarm (or not a manager) refuses with an engine_error of status 503; Podman has no
// Swarm at all (GET /swarm: not_found_error, every other Swarm endpoint: an engine_error of status 503).
#include <berth/detail/url.hpp>
#include <berth/engine/client_core.hpp>
#include <berth/engine/output_handler.hpp>
#include <berth/engine/service_spec.hpp>

#include <boost/json/serialize.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
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
    json::object spec{};  // Spec as the manager sent it: an update sends it back changed
    json::object raw{};
};

struct swarm_task {  // GET /tasks, GET /tasks/{id}
    std::string id{};
    std::string service_id{};
    std::string node_id{};  // empty until the task is assigned
    std::string state{};    // Status.State: new, pending, assigned, ..., running, complete, failed, rejected...
    std::string desired_state{};
    std::string message{};       // Status.Message
    std::string err{};           // Status.Err: why a task is pending or failed ("no suitable node (...)")
    std::string container_id{};  // Status.ContainerStatus.ContainerID, once the node has made the container
    json::object raw{};
};

struct swarm_node {  // GET /nodes, GET /nodes/{id}
    std::string id{};
    std::uint64_t version = 0;
    std::string hostname{};                       // Description.Hostname
    std::string role{};                           // Spec.Role: manager, worker
    std::string availability{};                   // Spec.Availability: active, pause, drain
    std::string state{};                          // Status.State: ready, down, unknown, disconnected
    std::string addr{};                           // Status.Addr
    std::map<std::string, std::string> labels{};  // Spec.Labels
    json::object spec{};                          // Spec as the manager sent it: an update sends it back changed
    json::object raw{};
};

struct swarm_join_tokens {  // JoinTokens: secrets, whoever holds one can join the swarm
    std::string worker{};
    std::string manager{};
};

struct swarm_info {  // GET /swarm
    std::string id{};
    std::uint64_t version = 0;  // Version.Index: what an update must name
    std::string created_at{};   // RFC 3339 as the engine wrote it
    std::string updated_at{};
    std::string name{};                             // Spec.Name ("default")
    std::map<std::string, std::string> labels{};    // Spec.Labels
    bool autolock_managers = false;                 // Spec.EncryptionConfig.AutoLockManagers
    std::int64_t task_history_retention_limit = 0;  // Spec.Orchestration.TaskHistoryRetentionLimit
    json::object spec{};                            // Spec as the manager sent it: an update sends it back changed
    swarm_join_tokens join_tokens{};
    bool root_rotation_in_progress = false;
    std::uint32_t data_path_port = 0;  // the VXLAN port (API 1.40+; 0: not told)
    std::vector<std::string> default_addr_pool{};
    std::uint32_t subnet_size = 0;
    json::object raw{};  // the whole reply (with the join tokens)
};

struct swarm_init_options {
    // ListenAddr: where the manager listens for the other nodes ("127.0.0.1:2377", or an interface and a port);
    // the engine refuses an empty one (the docker CLI's default, 0.0.0.0:2377, listens on every interface).
    std::string listen_addr{};
    std::string advertise_addr{};      // empty: the engine picks from the listen address
    std::string data_path_addr{};      // address or interface for the data path traffic; empty: the advertise address
    std::uint32_t data_path_port = 0;  // the VXLAN UDP port (1024-49151); 0: the engine's (4789)
    std::vector<std::string> default_addr_pool{};  // subnets for global scope networks ("10.10.0.0/16")
    bool force_new_cluster = false;                // a new swarm from this node's state (disaster recovery)
    std::uint32_t subnet_size = 0;                 // prefix length of networks from the pool; 0: the engine's (24)
    json::object spec{};                           // Spec: a SwarmSpec as the engine's JSON; empty: its defaults
};

struct swarm_join_options {
    std::string listen_addr{};  // required by the engine ("127.0.0.2:2377")
    std::string advertise_addr{};
    std::string data_path_addr{};
    std::vector<std::string> remote_addrs{};  // managers of the swarm ("127.0.0.1:2377")
    std::string join_token{};                 // a worker or manager token (swarm_info.join_tokens): a secret
};

struct swarm_leave_options {
    bool force = false;  // leave even as the last manager (the swarm is lost) or when it breaks the quorum
};

struct swarm_update_options {
    std::uint64_t version = 0;  // the swarm's Version.Index as inspect gave it (required: a stale one is refused)
    json::object spec{};        // the whole SwarmSpec (inspect().spec, changed); what it leaves out is reset
    bool rotate_worker_token = false;
    bool rotate_manager_token = false;
    bool rotate_manager_unlock_key = false;
};

struct node_remove_options {
    bool force = false;  // remove a node that is not down (and a manager without demoting it first)
};

struct service_update_options {
    std::uint64_t version = 0;  // the service's Version.Index before the update (required: a stale one is refused)
    json::object spec{};        // the whole ServiceSpec (inspect_service().spec, changed); ignored by a rollback
    // registryAuthFrom, without registry_auth: where the manager finds the credentials to pull with, "spec" or
    // "previous-spec"; empty: the engine's default (spec)
    std::string registry_auth_from{};
    std::string rollback{};       // "previous": back to the service's previous spec (spec is then ignored)
    std::string registry_auth{};  // the X-Registry-Auth header (registry_auth_header); empty: none
};

struct service_update_result {  // POST /services/{id}/update
    std::vector<std::string> warnings{};
};

// GET /services/{id}/logs and GET /tasks/{id}/logs. The output is multiplexed (stdout and stderr apart) unless
// the service's containers have a tty (TaskTemplate.ContainerSpec.TTY): then all of it is stdout.
struct service_logs_options {
    bool details = false;  // the details the log driver adds (task, node and service ids) before each line
    bool follow = false;   // keep reading as the tasks log; the stream ends only when cancelled
    bool stdout_ = true;
    bool stderr_ = true;
    std::int64_t since = 0;  // only lines since this UNIX time (seconds); 0: all
    bool timestamps = false;
    std::string tail = "all";     // the last N lines ("10"), or "all"
    output_callback on_output{};  // each slice of the logs as it arrives; empty: read and dropped
};
using task_logs_options = service_logs_options;

// The engine's filters: {"label": {"berth.run=r1"}}, {"service": {id}}, {"desired-state": {"running"}}, ...
using swarm_filters = std::map<std::string, std::vector<std::string>>;

namespace detail {

// Swarm ids are lowercase base-36 (25 characters); container ids are 64 hex digits. Anything else from a reply
// is a protocol_error, never a path segment.
inline const std::string& checked_id(const std::string& id, std::string_view what, const std::string& endpoint) {
    bool ok = !id.empty() && id.size() <= 64;
    for (char c : id) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'));
    if (!ok)
        throw protocol_error(endpoint,
                             "the reply's " + std::string(what) + " " + quote_engine_text(id) + " is not an id");
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

}  // namespace detail

template <transport Transport>
class swarm_api {
public:
    explicit swarm_api(client_core<Transport>& c) : client_(c) {}

    // POST /services/create. registry_auth: the X-Registry-Auth header value (registry_auth_header), so the
    // nodes can pull a private image; empty: none.
    // Engine API: POST /services/create
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

    // --- the swarm ---

    // Engine API: GET /swarm
    // On a node in no swarm, or a worker: engine_error with status 503.
    boost::asio::awaitable<swarm_info> inspect() {
        const std::string endpoint = "GET /swarm";
        auto body = co_await client_.call(verb::get, "/swarm");
        // the reply holds the join tokens: a malformed one is never quoted
        auto v = json_read::parse(body, endpoint, json_read::quoting::none);
        co_return read_swarm(v, endpoint);
    }

    // Makes this engine the first manager of a new swarm; returns its node id. An engine already in a swarm
    // refuses (engine_error, status 503).
    // Engine API: POST /swarm/init
    boost::asio::awaitable<std::string> init(swarm_init_options options) {
        const std::string endpoint = "POST /swarm/init";
        json::object body{{"ListenAddr", options.listen_addr}};
        if (!options.advertise_addr.empty()) body["AdvertiseAddr"] = options.advertise_addr;
        if (!options.data_path_addr.empty()) body["DataPathAddr"] = options.data_path_addr;
        if (options.data_path_port != 0) body["DataPathPort"] = options.data_path_port;
        if (!options.default_addr_pool.empty())
            body["DefaultAddrPool"] = detail::to_json_strings(options.default_addr_pool);
        body["ForceNewCluster"] = options.force_new_cluster;
        if (options.subnet_size != 0) body["SubnetSize"] = options.subnet_size;
        if (!options.spec.empty()) body["Spec"] = options.spec;
        auto v = co_await client_.call_json(verb::post, "/swarm/init", json::serialize(body));
        if (!v.is_string()) throw protocol_error(endpoint, "the reply is not the node id as a JSON string");
        std::string id(v.get_string());
        detail::checked_id(id, "node id", endpoint);
        co_return id;
    }

    // Joins this engine to a swarm, as a worker or a manager (whichever the token is for).
    // Engine API: POST /swarm/join
    boost::asio::awaitable<void> join(swarm_join_options options) {
        json::object body{{"ListenAddr", options.listen_addr}};
        if (!options.advertise_addr.empty()) body["AdvertiseAddr"] = options.advertise_addr;
        if (!options.data_path_addr.empty()) body["DataPathAddr"] = options.data_path_addr;
        body["RemoteAddrs"] = detail::to_json_strings(options.remote_addrs);
        body["JoinToken"] = options.join_token;
        http::request req{.method = verb::post, .target = "/swarm/join"};
        req.body = json::serialize(body);
        req.content_type = "application/json";
        if (!options.join_token.empty()) req.secrets.push_back(options.join_token);
        co_await client_.call(std::move(req));
    }

    // A manager refuses to leave unless forced (engine_error, status 503); a node in no swarm too.
    // Engine API: POST /swarm/leave
    boost::asio::awaitable<void> leave(swarm_leave_options options = {}) {
        co_await client_.call(verb::post, "/swarm/leave" + detail::query().add_flag("force", options.force).str());
    }

    // Changes the swarm's spec and rotates tokens or the unlock key, at the version it was read at.
    // Engine API: POST /swarm/update
    boost::asio::awaitable<void> update(swarm_update_options options) {
        std::string target = "/swarm/update" +
                             detail::query()
                                 .add_number("version", static_cast<long long>(options.version))
                                 .add_flag("rotateWorkerToken", options.rotate_worker_token)
                                 .add_flag("rotateManagerToken", options.rotate_manager_token)
                                 .add_flag("rotateManagerUnlockKey", options.rotate_manager_unlock_key)
                                 .str();
        co_await client_.call(verb::post, std::move(target), json::serialize(options.spec));
    }

    // The key that unlocks a manager of an autolocked swarm after a restart (a secret).
    // Engine API: GET /swarm/unlockkey
    boost::asio::awaitable<std::string> unlock_key() {
        const std::string endpoint = "GET /swarm/unlockkey";
        auto body = co_await client_.call(verb::get, "/swarm/unlockkey");
        auto v = json_read::parse(body, endpoint, json_read::quoting::none);
        co_return json_read::optional_string(json_read::as_object(v, endpoint), "UnlockKey", endpoint);
    }

    // Unlocks a manager of an autolocked swarm that restarted. A wrong key: engine_error.
    // Engine API: POST /swarm/unlock
    boost::asio::awaitable<void> unlock(std::string unlock_key) {
        http::request req{.method = verb::post, .target = "/swarm/unlock"};
        req.body = json::serialize(json::object{{"UnlockKey", unlock_key}});
        req.content_type = "application/json";
        if (!unlock_key.empty()) req.secrets.push_back(std::move(unlock_key));
        co_await client_.call(std::move(req));
    }

    // --- services ---

    // Engine API: GET /services/{id}
    boost::asio::awaitable<swarm_service> inspect_service(std::string_view id_or_name) {
        std::string target = "/services/" + detail::percent_encode(id_or_name);
        auto v = co_await client_.call_json(verb::get, target);
        co_return read_service(v, "GET " + target);
    }

    // Engine API: GET /services
    boost::asio::awaitable<std::vector<swarm_service>> list_services(swarm_filters filters = {}) {
        return read_list<swarm_service>("/services" + detail::filters_query(filters), &read_service);
    }

    // Removing a service makes Swarm stop and remove its tasks' containers, on their nodes, afterwards.
    // Engine API: DELETE /services/{id}
    boost::asio::awaitable<void> remove_service(std::string_view id_or_name) {
        co_await client_.call(verb::delete_, "/services/" + detail::percent_encode(id_or_name));
    }

    // Updates a service to options.spec (or rolls it back) at the version it was read at; the manager then
    // replaces its tasks. Returns the engine's warnings (an image it could not pin to a digest...).
    // Engine API: POST /services/{id}/update
    boost::asio::awaitable<service_update_result> update_service(std::string_view id_or_name,
                                                                 service_update_options options) {
        std::string target = service_path(id_or_name, "update_service") + "/update" +
                             detail::query()
                                 .add_number("version", static_cast<long long>(options.version))
                                 .add_if(!options.registry_auth_from.empty(), "registryAuthFrom",
                                         options.registry_auth_from)
                                 .add_if(!options.rollback.empty(), "rollback", options.rollback)
                                 .str();
        const std::string endpoint = "POST " + target;
        http::request req{.method = verb::post, .target = std::move(target)};
        req.body = json::serialize(options.spec);
        req.content_type = "application/json";
        if (!options.registry_auth.empty()) {
            req.headers.emplace_back("X-Registry-Auth", options.registry_auth);
            req.secrets.push_back(options.registry_auth);
        }
        auto body = co_await client_.call(std::move(req));
        service_update_result out{};
        if (body.find_first_not_of(" \r\n\t") == std::string::npos) co_return out;
        auto v = json_read::parse(body, endpoint);
        out.warnings = json_read::optional_strings(json_read::as_object(v, endpoint), "Warnings", endpoint);
        co_return out;
    }

    // Streams the logs of the service's tasks to options.on_output (stdout and stderr apart unless the service's
    // containers have a tty). Works for the local, json-file and journald log drivers.
    // Engine API: GET /services/{id}
    // Engine API: GET /services/{id}/logs
    boost::asio::awaitable<void> service_logs(std::string_view id_or_name) {
        return service_logs(id_or_name, service_logs_options{});
    }
    // Engine API: GET /services/{id}
    // Engine API: GET /services/{id}/logs
    boost::asio::awaitable<void> service_logs(std::string_view id_or_name, service_logs_options options) {
        auto service = co_await inspect_service(id_or_name);
        bool tty = false;
        if (auto* task = service.spec.if_contains("TaskTemplate"); task && task->is_object())
            tty = container_spec_tty(task->get_object());
        co_await stream_logs("/services/" + service.id + "/logs", !tty, options);
    }

    // --- tasks ---

    // Engine API: GET /tasks
    boost::asio::awaitable<std::vector<swarm_task>> list_tasks(swarm_filters filters = {}) {
        return read_list<swarm_task>("/tasks" + detail::filters_query(filters), &read_task);
    }

    // Engine API: GET /tasks/{id}
    boost::asio::awaitable<swarm_task> inspect_task(std::string_view id) {
        std::string target = task_path(id, "inspect_task");
        auto v = co_await client_.call_json(verb::get, target);
        co_return read_task(v, "GET " + target);
    }

    // The logs of one task, as service_logs (a tty when the task's ContainerSpec has one).
    // Engine API: GET /tasks/{id}
    // Engine API: GET /tasks/{id}/logs
    boost::asio::awaitable<void> task_logs(std::string_view id) { return task_logs(id, task_logs_options{}); }
    // Engine API: GET /tasks/{id}
    // Engine API: GET /tasks/{id}/logs
    boost::asio::awaitable<void> task_logs(std::string_view id, task_logs_options options) {
        auto task = co_await inspect_task(id);
        bool tty = false;
        if (auto* spec = task.raw.if_contains("Spec"); spec && spec->is_object())
            tty = container_spec_tty(spec->get_object());
        co_await stream_logs("/tasks/" + task.id + "/logs", !tty, options);
    }

    // --- nodes ---

    // Engine API: GET /nodes
    boost::asio::awaitable<std::vector<swarm_node>> list_nodes(swarm_filters filters = {}) {
        return read_list<swarm_node>("/nodes" + detail::filters_query(filters), &read_node);
    }

    // Engine API: GET /nodes/{id}
    boost::asio::awaitable<swarm_node> inspect_node(std::string_view id) {
        std::string target = "/nodes/" + detail::percent_encode(id);
        auto v = co_await client_.call_json(verb::get, target);
        co_return read_node(v, "GET " + target);
    }

    // POST /nodes/{id}/update: the whole Spec, at the version it was read at (a stale version is a conflict the
    // manager refuses, so a concurrent change is never overwritten).
    // Engine API: POST /nodes/{id}/update
    boost::asio::awaitable<void> update_node(std::string_view id, std::uint64_t version, const json::object& spec) {
        co_await client_.call(verb::post,
                              "/nodes/" + detail::percent_encode(id) + "/update" +
                                  detail::query().add_number("version", static_cast<long long>(version)).str(),
                              json::serialize(spec));
    }

    // Drain ("drain": its tasks move elsewhere and it gets no new ones), pause, or make active again.
    // Engine API: GET /nodes/{id}
    // Engine API: POST /nodes/{id}/update
    boost::asio::awaitable<void> set_node_availability(std::string_view id, std::string availability) {
        auto node = co_await inspect_node(id);
        node.spec["Availability"] = availability;
        co_await update_node(node.id, node.version, node.spec);
    }

    // A node that is not down is refused unless forced (engine_error); a missing one is a not_found_error.
    // Engine API: DELETE /nodes/{id}
    boost::asio::awaitable<void> remove_node(std::string_view id, node_remove_options options = {}) {
        if (id.empty()) throw invalid_argument_error("berth::swarm().remove_node: the node id is empty");
        co_await client_.call(verb::delete_, "/nodes/" + detail::percent_encode(id) +
                                                 detail::query().add_flag("force", options.force).str());
    }

private:
    // An empty id would address the collection instead: refused.
    static std::string service_path(std::string_view id, std::string_view operation) {
        if (id.empty())
            throw invalid_argument_error("berth::swarm()." + std::string(operation) + ": the service id is empty");
        return "/services/" + detail::percent_encode(id);
    }
    static std::string task_path(std::string_view id, std::string_view operation) {
        if (id.empty())
            throw invalid_argument_error("berth::swarm()." + std::string(operation) + ": the task id is empty");
        return "/tasks/" + detail::percent_encode(id);
    }

    // ContainerSpec.TTY of a TaskTemplate (or a task's Spec).
    static bool container_spec_tty(const json::object& task_spec) {
        if (auto* cs = task_spec.if_contains("ContainerSpec"); cs && cs->is_object())
            if (auto* t = cs->get_object().if_contains("TTY"); t && t->is_bool()) return t->get_bool();
        return false;
    }

    // GET base (a checked id's logs path) with the options' query: its stream to options.on_output.
    boost::asio::awaitable<void> stream_logs(std::string base, bool multiplexed, const service_logs_options& options) {
        detail::query q;
        q.add_flag("details", options.details)
            .add_flag("follow", options.follow)
            .add_flag("stdout", options.stdout_)
            .add_flag("stderr", options.stderr_);
        if (options.since != 0) q.add_number("since", options.since);
        q.add_flag("timestamps", options.timestamps).add("tail", options.tail);
        http::request req{.method = verb::get, .target = base + q.str()};
        // Followed logs of quiet tasks: the head may come only with the first output.
        std::optional<std::chrono::steady_clock::duration> head_timeout{};
        if (options.follow) head_timeout = std::chrono::steady_clock::duration::zero();
        auto reply = co_await client_.open(std::move(req), static_cast<http::detail::no_body*>(nullptr), head_timeout);
        auto forward = [&options](output_stream s, std::string_view data) {
            if (options.on_output) options.on_output(s, data);
        };
        detail::output_dispatcher<decltype(forward)> dispatch(forward, multiplexed, reply.endpoint());
        std::array<char, 16 * 1024> buffer;
        while (std::size_t n = co_await reply.read_some(buffer)) dispatch(std::span<const char>(buffer.data(), n));
        if (!dispatch.complete())
            throw protocol_error(protocol_errc::truncated, reply.endpoint(), "log stream ended inside a frame");
    }

    static swarm_info read_swarm(const json::value& v, const std::string& endpoint) {
        auto& o = json_read::as_object(v, endpoint);
        swarm_info s{};
        s.id = json_read::string_field(o, "ID", endpoint);
        s.version = detail::version_index(o, endpoint);
        s.created_at = json_read::optional_string(o, "CreatedAt", endpoint);
        s.updated_at = json_read::optional_string(o, "UpdatedAt", endpoint);
        if (auto* spec = json_read::optional_object(o, "Spec", endpoint)) {
            s.name = json_read::optional_string(*spec, "Name", endpoint);
            s.labels = json_read::optional_string_map(*spec, "Labels", endpoint);
            if (auto* e = json_read::optional_object(*spec, "EncryptionConfig", endpoint))
                s.autolock_managers = json_read::optional_bool(*e, "AutoLockManagers", endpoint);
            if (auto* orch = json_read::optional_object(*spec, "Orchestration", endpoint))
                s.task_history_retention_limit = json_read::optional_int(*orch, "TaskHistoryRetentionLimit", endpoint);
            s.spec = *spec;
        }
        if (auto* t = json_read::optional_object(o, "JoinTokens", endpoint)) {
            s.join_tokens.worker = json_read::optional_string(*t, "Worker", endpoint);
            s.join_tokens.manager = json_read::optional_string(*t, "Manager", endpoint);
        }
        s.root_rotation_in_progress = json_read::optional_bool(o, "RootRotationInProgress", endpoint);
        s.data_path_port = json_read::optional_int_as<std::uint32_t>(o, "DataPathPort", endpoint);
        s.default_addr_pool = json_read::optional_strings(o, "DefaultAddrPool", endpoint);
        s.subnet_size = json_read::optional_int_as<std::uint32_t>(o, "SubnetSize", endpoint);
        s.raw = o;
        return s;
    }

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
        co_return co_await with_timeout(std::move(op), limit,
                                        client_.transport().describe() + ": " + endpoint +
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
            s.spec = *spec;
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

}  // namespace berth
