#pragma once
// What Swarm secrets (secrets.hpp) and configs (configs.hpp) have in common: both are small named blobs a Swarm
// manager stores and hands to service tasks as files, with the same five endpoints (list, create, inspect, update,
// remove) and the same reply shape (ID, Version, CreatedAt, UpdatedAt, Spec). The two resources differ only in
// their spec (a secret may come from an external secrets driver; a config's data is returned by inspect, a
// secret's never is), so the requests and replies are written once here, for either spec.
#include <berth/detail/base64.hpp>
#include <berth/detail/url.hpp>
#include <berth/engine/client_core.hpp>
#include <berth/engine/swarm.hpp>

#include <boost/json/serialize.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace berth {

struct swarm_driver {  // Driver: a secrets driver or a templating driver
    std::string name{};
    std::map<std::string, std::string> options{};  // driver-specific
};

// GET /secrets/{id}, GET /configs/{id}, and each item of their lists.
template <class Spec>
struct swarm_object_info {
    std::string id{};
    std::uint64_t version = 0;  // Version.Index: an update must name it
    std::string created_at{};   // RFC 3339 as the engine wrote it
    std::string updated_at{};
    Spec spec{};
    json::object raw{};  // the whole reply, for what is not typed here
};

struct swarm_object_list_options {
    // The engine's filters: {"id": {id}}, {"label": {"k"}} or {"label": {"k=v"}}, {"name": {name}} (a prefix
    // match on Docker), {"names": {name}} (exact names; Docker 20.10 refuses it for configs with a 400)
    std::map<std::string, std::vector<std::string>> filters{};
};

template <class Spec>
struct swarm_object_update_options {
    // The object's Version.Index as inspect gave it (required: a stale one is refused, so a concurrent change is
    // never overwritten).
    std::uint64_t version = 0;
    // The whole spec. Swarm lets only the labels change: the name (and a config's data, a secret's driver and
    // templating) must be as inspect gave them; a secret's data must be empty (unchanged) or the same bytes.
    Spec spec{};
};

namespace detail {

// Spec <-> JSON, for a secret_spec or a config_spec: Name, Labels, Data (raw bytes here, standard base64 on the
// wire), Templating, and Driver where the spec has one.
template <class Spec>
json::object swarm_object_spec_json(const Spec& spec) {
    auto driver_json = [](const swarm_driver& d) {
        json::object o{{"Name", d.name}};
        if (!d.options.empty()) o["Options"] = to_json_map(d.options);
        return o;
    };
    json::object o{{"Name", spec.name}};
    if (!spec.labels.empty()) o["Labels"] = to_json_map(spec.labels);
    if (!spec.data.empty()) o["Data"] = base64_encode(spec.data);
    if constexpr (requires { spec.driver; }) {
        if (spec.driver) o["Driver"] = driver_json(*spec.driver);
    }
    if (spec.templating) o["Templating"] = driver_json(*spec.templating);
    return o;
}

template <class Spec>
Spec read_swarm_object_spec(const json::object& o, const std::string& endpoint) {
    auto driver = [&](std::string_view key) -> std::optional<swarm_driver> {
        auto* d = json_read::optional_object(o, key, endpoint);
        if (d == nullptr) return std::nullopt;
        return swarm_driver{json_read::optional_string(*d, "Name", endpoint),
                            json_read::optional_string_map(*d, "Options", endpoint)};
    };
    Spec spec{};
    spec.name = json_read::optional_string(o, "Name", endpoint);
    spec.labels = json_read::optional_string_map(o, "Labels", endpoint);
    if (auto data = json_read::optional_string(o, "Data", endpoint); !data.empty()) {
        auto bytes = base64_decode(data);
        if (!bytes) throw protocol_error(endpoint, "field 'Data' is not base64");
        spec.data = std::move(*bytes);
    }
    if constexpr (requires { spec.driver; }) spec.driver = driver("Driver");
    spec.templating = driver("Templating");
    return spec;
}

// The five operations on /secrets or /configs. `kind` ("secret", "config") names the resource in berth's own
// messages; `collection` ("/secrets", "/configs") is its path.
template <transport Transport, class Spec>
class swarm_object_endpoints {
public:
    using info = swarm_object_info<Spec>;
    using update_options = swarm_object_update_options<Spec>;

    swarm_object_endpoints(client_core<Transport>& c, std::string_view kind, std::string_view collection)
        : client_(c), kind_(kind), collection_(collection) {}

    boost::asio::awaitable<std::vector<info>> list(swarm_object_list_options options) {
        std::string target = collection_ + filters_query(options.filters);
        auto v = co_await client_.call_json(verb::get, target);
        const std::string endpoint = "GET " + target;
        std::vector<info> out{};
        for (auto& item : json_read::as_array(v, endpoint)) out.push_back(read(item, endpoint));
        co_return out;
    }

    // The new object's ID. The data (and its base64) is kept out of error messages.
    boost::asio::awaitable<std::string> create(Spec spec) {
        http::request req{.method = verb::post, .target = collection_ + "/create"};
        req.body = json::serialize(swarm_object_spec_json(spec));
        req.content_type = "application/json";
        if (!spec.data.empty()) req.secrets = {spec.data, base64_encode(spec.data)};
        const std::string endpoint = "POST " + req.target;
        auto body = co_await client_.call(std::move(req));
        auto v = json_read::parse(body, endpoint);
        co_return checked_id(json_read::string_field(json_read::as_object(v, endpoint), "ID", endpoint), kind_ + " ID",
                             endpoint);
    }

    boost::asio::awaitable<info> inspect(std::string_view id_or_name) {
        std::string target = path(id_or_name, "inspect");
        auto v = co_await client_.call_json(verb::get, target);
        co_return read(v, "GET " + target);
    }

    boost::asio::awaitable<bool> exists(std::string_view id_or_name) {
        try {
            co_await inspect(id_or_name);
            co_return true;
        } catch (const not_found_error&) { co_return false; }
    }

    boost::asio::awaitable<void> update(std::string_view id_or_name, update_options options) {
        http::request req{.method = verb::post,
                          .target = path(id_or_name, "update") + "/update" +
                                    query().add("version", std::to_string(options.version)).str()};
        req.body = json::serialize(swarm_object_spec_json(options.spec));
        req.content_type = "application/json";
        if (!options.spec.data.empty()) req.secrets = {options.spec.data, base64_encode(options.spec.data)};
        co_await client_.call(std::move(req));
    }

    boost::asio::awaitable<void> remove(std::string_view id_or_name) {
        co_await client_.call(verb::delete_, path(id_or_name, "remove"));
    }

private:
    // The path of one object; an empty id would address the collection instead, so it is refused.
    std::string path(std::string_view id_or_name, std::string_view operation) const {
        if (id_or_name.empty())
            throw invalid_argument_error("berth::" + kind_ + "s()." + std::string(operation) + ": the " + kind_ +
                                         " id is empty");
        return collection_ + "/" + percent_encode(id_or_name);
    }

    info read(const json::value& v, const std::string& endpoint) const {
        auto& o = json_read::as_object(v, endpoint);
        info out{};
        out.id = checked_id(json_read::string_field(o, "ID", endpoint), kind_ + " ID", endpoint);
        out.version = version_index(o, endpoint);
        out.created_at = json_read::optional_string(o, "CreatedAt", endpoint);
        out.updated_at = json_read::optional_string(o, "UpdatedAt", endpoint);
        if (auto* spec = json_read::optional_object(o, "Spec", endpoint))
            out.spec = read_swarm_object_spec<Spec>(*spec, endpoint);
        out.raw = o;
        return out;
    }

    client_core<Transport>& client_;
    std::string kind_;
    std::string collection_;
};

}  // namespace detail
}  // namespace berth
