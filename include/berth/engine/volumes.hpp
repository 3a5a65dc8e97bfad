#pragma once
// Volumes: create, inspect, list, update (a Swarm cluster volume's spec, API 1.42+), remove and prune.
#include <berth/detail/url.hpp>
#include <berth/engine/client_core.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace berth {

struct volume_usage {             // Volume.UsageData (filled by GET /system/df, absent elsewhere)
    std::int64_t size = -1;       // bytes used; -1: not available (a driver other than "local")
    std::int64_t ref_count = -1;  // containers referring to it; -1: not available
};

struct volume_info {  // GET /volumes/{name}, and each volume of GET /volumes and POST /volumes/create
    std::string name{};
    std::string driver{};
    std::string mountpoint{};
    std::string created_at{};  // RFC 3339 as the engine wrote it; empty when the engine does not know
    std::string scope{};       // "local" or "global"
    std::map<std::string, std::string> labels{};
    std::map<std::string, std::string> options{};  // the driver options it was created with
    json::object status{};                         // the driver's own low-level details (any JSON), often empty
    std::optional<volume_usage> usage_data{};
    std::optional<json::object> cluster_volume{};  // ClusterVolume (Swarm cluster volumes only), as sent
    json::object raw{};                            // the whole reply, for what is not typed here
};

struct volume_list_result {  // GET /volumes
    std::vector<volume_info> volumes{};
    std::vector<std::string> warnings{};
};

struct volume_prune_result {  // POST /volumes/prune
    std::vector<std::string> volumes_deleted{};
    std::int64_t space_reclaimed = 0;  // bytes
};

struct volume_list_options {
    // The engine's filters: {"label": {"k=v"}}, {"name": {"part"}}, {"driver": {"local"}}, {"dangling": {"true"}}
    std::map<std::string, std::vector<std::string>> filters{};
};

struct volume_create_options {
    std::string name{};    // empty: the engine picks one
    std::string driver{};  // empty: the engine's default ("local")
    // DriverOpts: passed to the driver as they are (the local driver's "type", "device", "o")
    std::map<std::string, std::string> driver_opts{};
    std::map<std::string, std::string> labels{};
    // ClusterVolumeSpec, as the engine's JSON: a Swarm cluster volume (API 1.42+, on a Swarm manager); empty: none
    json::object cluster_volume_spec{};
};

struct volume_update_options {
    // version: the cluster volume's ClusterVolume.Version.Index, as inspect gave it (required: it guards against
    // conflicting writes)
    std::uint64_t version = 0;
    json::object spec{};  // Spec: the whole ClusterVolumeSpec; only its AccessMode.Availability may change
};

struct volume_remove_options {
    bool force = false;  // remove it even when its driver already lost it
};

struct volume_prune_options {
    // The engine's filters: {"label": {"k=v"}}, {"label!": {"k"}}
    std::map<std::string, std::vector<std::string>> filters{};
    // Named volumes too (the filter all=true), not only anonymous ones: API 1.42 made pruning keep named volumes
    // unless asked. Needs Engine API 1.42; an older engine prunes named volumes anyway.
    bool all = false;
};

namespace detail {
// One volume of a reply (GET /volumes/{name}, GET /volumes, POST /volumes/create, GET /system/df).
inline volume_info parse_volume_info(const json::value& v, const std::string& endpoint) {
    auto& o = json_read::as_object(v, endpoint);
    volume_info info{};
    info.name = json_read::string_field(o, "Name", endpoint);
    info.driver = json_read::optional_string(o, "Driver", endpoint);
    info.mountpoint = json_read::optional_string(o, "Mountpoint", endpoint);
    info.created_at = json_read::optional_string(o, "CreatedAt", endpoint);
    info.scope = json_read::optional_string(o, "Scope", endpoint);
    info.labels = json_read::optional_string_map(o, "Labels", endpoint);
    info.options = json_read::optional_string_map(o, "Options", endpoint);
    if (auto* s = json_read::optional_object(o, "Status", endpoint)) info.status = *s;
    if (auto* u = json_read::optional_object(o, "UsageData", endpoint))
        info.usage_data = volume_usage{json_read::optional_int(*u, "Size", endpoint, -1),
                                       json_read::optional_int(*u, "RefCount", endpoint, -1)};
    if (auto* cv = json_read::optional_object(o, "ClusterVolume", endpoint)) info.cluster_volume = *cv;
    info.raw = o;
    return info;
}
}  // namespace detail

template <transport Transport>
class volumes_api {
public:
    explicit volumes_api(client_core<Transport>& c) : client_(c) {}

    // (Overloads, not a defaulted argument, where the options hold strings: g++ 12 double-destroys a defaulted
    // options temporary in a co_await.)

    // Engine API: GET /volumes
    boost::asio::awaitable<volume_list_result> list() { return list(volume_list_options{}); }
    // Engine API: GET /volumes
    boost::asio::awaitable<volume_list_result> list(volume_list_options options) {
        detail::query q;
        add_filters(q, options.filters);
        std::string target = "/volumes" + q.str();
        auto v = co_await client_.call_json(verb::get, target);
        const std::string endpoint = "GET " + target;
        auto& o = json_read::as_object(v, endpoint);
        volume_list_result out{};
        if (auto* p = o.if_contains("Volumes"); p != nullptr && !p->is_null()) {
            if (!p->is_array()) throw protocol_error(endpoint, "field 'Volumes' is not an array");
            for (auto& item : p->get_array()) out.volumes.push_back(parse_volume(item, endpoint));
        }
        out.warnings = json_read::optional_strings(o, "Warnings", endpoint);
        co_return out;
    }

    // Engine API: POST /volumes/create
    boost::asio::awaitable<volume_info> create() { return create(volume_create_options{}); }
    // Engine API: POST /volumes/create
    // A cluster volume spec needs Engine API 1.42 (and a Swarm manager, else the engine refuses).
    boost::asio::awaitable<volume_info> create(volume_create_options options) {
        const std::string target = "/volumes/create";
        json::object body{};
        if (!options.name.empty()) body["Name"] = options.name;
        if (!options.driver.empty()) body["Driver"] = options.driver;
        if (!options.driver_opts.empty()) body["DriverOpts"] = string_map(options.driver_opts);
        if (!options.labels.empty()) body["Labels"] = string_map(options.labels);
        if (!options.cluster_volume_spec.empty()) {
            co_await client_.require_api("1.42", "a cluster volume", "POST " + target);
            body["ClusterVolumeSpec"] = options.cluster_volume_spec;
        }
        auto v = co_await client_.call_json(verb::post, target, json::serialize(body));
        co_return parse_volume(v, "POST " + target);
    }

    // Engine API: GET /volumes/{name}
    boost::asio::awaitable<volume_info> inspect(std::string_view name) {
        std::string target = path(name, "inspect");
        auto v = co_await client_.call_json(verb::get, target);
        co_return parse_volume(v, "GET " + target);
    }

    // Engine API: GET /volumes/{name}
    // False when there is no such volume.
    boost::asio::awaitable<bool> exists(std::string_view name) {
        try {
            co_await inspect(name);
            co_return true;
        } catch (const not_found_error&) { co_return false; }
    }

    // Engine API: PUT /volumes/{name}
    // Updates a Swarm cluster volume (only its availability may change). Needs Engine API 1.42: refused before
    // sending on an older one (unsupported_api_version_error). An engine that is not a Swarm manager refuses it
    // (Docker: an engine_error with status 503).
    boost::asio::awaitable<void> update(std::string_view name, volume_update_options options) {
        std::string target = path(name, "update");
        co_await client_.require_api("1.42", "updating a cluster volume", "PUT " + target);
        json::object body{{"Spec", options.spec}};
        co_await client_.call(verb::put, target + detail::query().add("version", std::to_string(options.version)).str(),
                              json::serialize(body));
    }

    // Engine API: DELETE /volumes/{name}
    // A volume in use by a container is a conflict_error; a missing one a not_found_error.
    boost::asio::awaitable<void> remove(std::string_view name, volume_remove_options options = {}) {
        std::string target = path(name, "remove");
        co_await client_.call(verb::delete_, target + detail::query().add_flag("force", options.force).str());
    }

    // Engine API: POST /volumes/prune
    // Removes the volumes no container uses (on API 1.42+ only anonymous ones unless options.all).
    boost::asio::awaitable<volume_prune_result> prune() { return prune(volume_prune_options{}); }
    // Engine API: POST /volumes/prune
    boost::asio::awaitable<volume_prune_result> prune(volume_prune_options options) {
        const std::string base = "/volumes/prune";
        if (options.all || options.filters.contains("all"))
            co_await client_.require_api("1.42", "pruning named volumes (the filter all)", "POST " + base);
        if (options.all) options.filters["all"] = {"true"};
        detail::query q;
        add_filters(q, options.filters);
        std::string target = base + q.str();
        auto v = co_await client_.call_json(verb::post, target);
        const std::string endpoint = "POST " + target;
        auto& o = json_read::as_object(v, endpoint);
        co_return volume_prune_result{json_read::optional_strings(o, "VolumesDeleted", endpoint),
                                      json_read::optional_int(o, "SpaceReclaimed", endpoint)};
    }

private:
    // The path of one volume; an empty name would address the collection instead, so it is refused.
    static std::string path(std::string_view name, std::string_view operation) {
        if (name.empty())
            throw invalid_argument_error("berth::volumes()." + std::string(operation) + ": the volume name is empty");
        return "/volumes/" + detail::percent_encode(name);
    }

    static json::object string_map(const std::map<std::string, std::string>& m) {
        json::object o{};
        for (auto& [k, v] : m) o[k] = v;
        return o;
    }

    static void add_filters(detail::query& q, const std::map<std::string, std::vector<std::string>>& filters) {
        if (filters.empty()) return;
        json::object f{};
        for (auto& [k, vals] : filters) f[k] = json::array(vals.begin(), vals.end());
        q.add("filters", json::serialize(f));
    }

    static volume_info parse_volume(const json::value& v, const std::string& endpoint) {
        return detail::parse_volume_info(v, endpoint);
    }

    client_core<Transport>& client_;
};

}  // namespace berth
