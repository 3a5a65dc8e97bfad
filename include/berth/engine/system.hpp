#pragma once
// System endpoints: /_ping (GET, and HEAD for the headers alone), /version, /info, /system/df, /events.
#include <berth/engine/client_core.hpp>
#include <berth/engine/events.hpp>
#include <berth/engine/images.hpp>
#include <berth/engine/session.hpp>
#include <berth/engine/volumes.hpp>

#include <optional>
#include <string>
#include <vector>

namespace berth {

struct ping_info {                  // the headers of HEAD /_ping
    std::string api_version{};      // API-Version: the newest API version the engine speaks
    std::string builder_version{};  // Builder-Version: "1" (legacy) or "2" (BuildKit); empty: not said
    bool experimental = false;      // Docker-Experimental
    std::string swarm{};            // Swarm: "inactive", "pending", "error", "locked", "active/worker", ...
    std::string cache_control{};    // Cache-Control ("no-cache, no-store, must-revalidate")
    std::string os_type{};          // OSType: "linux", "windows"
};

struct disk_usage_totals {  // ImagesUsage, ContainersUsage, VolumesUsage, BuildCacheUsage (API 1.52+)
    std::int64_t active_count = 0;
    std::int64_t total_count = 0;
    std::int64_t reclaimable = 0;  // bytes
    std::int64_t total_size = 0;   // bytes
    json::object raw{};
};

struct container_disk_usage {  // one container of GET /system/df
    std::string id{};
    std::vector<std::string> names{};
    std::string image{};
    std::string image_id{};
    std::string state{};
    std::int64_t size_rw = -1;       // SizeRw: bytes written in its own layer; -1: not given
    std::int64_t size_root_fs = -1;  // SizeRootFs: its whole filesystem; -1: not given
    json::object raw{};
};

struct build_cache_record {  // one record of GET /system/df's build cache
    std::string id{};
    std::string type{};  // "internal", "frontend", "source.local", "regular", ...
    std::string description{};
    bool in_use = false;
    bool shared = false;
    std::int64_t size = 0;
    std::string created_at{};
    std::string last_used_at{};
    std::int64_t usage_count = 0;
    json::object raw{};
};

struct disk_usage {                // GET /system/df
    std::int64_t layers_size = 0;  // LayersSize (before API 1.53)
    std::vector<image_summary> images{};
    std::vector<container_disk_usage> containers{};
    std::vector<volume_info> volumes{};  // each with its usage_data
    std::vector<build_cache_record> build_cache{};
    // The totals of API 1.52+ (ImageUsage, ...; nothing before); from 1.53 on the lists above come only with options.verbose.
    std::optional<disk_usage_totals> images_usage{}, containers_usage{}, volumes_usage{}, build_cache_usage{};
    json::object raw{};
};

struct system_df_options {
    // Only these kinds: "container", "image", "volume", "build-cache" (one `type` parameter each; API 1.42+).
    std::vector<std::string> types{};
    bool verbose = false;  // the lists as well as the totals (API 1.52+)
};

template <transport Transport>
class system_api {
public:
    explicit system_api(client_core<Transport>& c) : client_(c) {}

    // True when the engine answers "OK" to /_ping (unversioned, so it works before negotiation).
    // Engine API: GET /_ping
    boost::asio::awaitable<bool> ping() {
        http::request req{.method = verb::get,
                          .target = "/_ping"};  // named: g++ 12 mis-copies aggregate temporaries in co_await
        auto body = co_await client_.send_collect(std::move(req));
        co_return body == "OK";
    }

    // What the engine says about itself in its /_ping headers, without a body (unversioned, so it works before
    // negotiation). A header the engine does not send is left empty (false).
    // Engine API: HEAD /_ping
    boost::asio::awaitable<ping_info> ping_head() {
        http::request req{.method = verb::head, .target = "/_ping"};
        auto headers = co_await client_.send_for_headers(std::move(req));
        auto get = [&](std::string_view name) {
            auto it = headers.find(boost::beast::string_view(name.data(), name.size()));
            return it == headers.end() ? std::string() : std::string(it->value());
        };
        ping_info out{};
        out.api_version = get("API-Version");
        out.builder_version = get("Builder-Version");
        out.experimental = get("Docker-Experimental") == "true";
        out.swarm = get("Swarm");
        out.cache_control = get("Cache-Control");
        out.os_type = get("OSType");
        if (!out.api_version.empty() && !detail::parse_api_version(out.api_version))
            throw protocol_error("HEAD /_ping", "the API-Version header " + detail::quote_engine_text(out.api_version) +
                                                    " is not an API version (digits.digits)");
        co_return out;
    }

    // A BuildKit session: the upgraded connection, on which the engine speaks HTTP/2 as the gRPC client (session.hpp).
    // Engine API: POST /session
    boost::asio::awaitable<session_connection<Transport>> session(session_open_options options = {}) {
        return open_session(client_, std::move(options));
    }

    // Engine API: GET /version
    boost::asio::awaitable<engine_version> version() { return client_.version(); }

    // Engine API: GET /info
    boost::asio::awaitable<json::object> info() {
        auto v = co_await client_.call_json(verb::get, "/info");
        co_return json_read::as_object(v, "GET /info");
    }

    // The disk space images, containers, volumes and the build cache take.
    // Engine API: GET /system/df
    boost::asio::awaitable<disk_usage> df() { return df(system_df_options{}); }
    // Engine API: GET /system/df
    boost::asio::awaitable<disk_usage> df(system_df_options options) {
        const std::string base = "/system/df";
        if (!options.types.empty()) co_await client_.require_api("1.42", "the df type filter", "GET " + base);
        if (options.verbose) co_await client_.require_api("1.52", "verbose df", "GET " + base);
        detail::query q;
        for (auto& t : options.types) q.add("type", t);
        if (options.verbose) q.add("verbose", "1");
        std::string target = base + q.str();
        auto v = co_await client_.call_json(verb::get, target);
        const std::string endpoint = "GET " + target;
        co_return parse_df(json_read::as_object(v, endpoint), endpoint);
    }

    // The engine's events as they happen, from options.since (or now) until options.until (or for ever), as a
    // system_events_stream that resumes after a dropped connection. The first reply is open when this returns:
    // a refused request (a bad filter) is the engine_error at once.
    // Engine API: GET /events
    boost::asio::awaitable<system_events_stream<Transport>> events() { return events(system_events_options{}); }
    boost::asio::awaitable<system_events_stream<Transport>> events(system_events_options options) {
        system_events_stream<Transport> stream(client_, std::move(options));
        co_await stream.open();
        co_return stream;
    }

private:
    static const json::array* list(const json::object& o, std::string_view key, const std::string& endpoint) {
        auto* p = o.if_contains(key);
        if (p == nullptr || p->is_null()) return nullptr;
        if (!p->is_array()) throw protocol_error(endpoint, "field '" + std::string(key) + "' is not an array");
        return &p->get_array();
    }

    static container_disk_usage parse_container(const json::value& v, const std::string& endpoint) {
        auto& o = json_read::as_object(v, endpoint);
        container_disk_usage c{};
        c.id = json_read::string_field(o, "Id", endpoint);
        c.names = json_read::optional_strings(o, "Names", endpoint);
        for (auto& n : c.names)
            if (n.starts_with('/')) n.erase(0, 1);
        c.image = json_read::optional_string(o, "Image", endpoint);
        c.image_id = json_read::optional_string(o, "ImageID", endpoint);
        c.state = json_read::optional_string(o, "State", endpoint);
        c.size_rw = json_read::optional_int(o, "SizeRw", endpoint, -1);
        c.size_root_fs = json_read::optional_int(o, "SizeRootFs", endpoint, -1);
        c.raw = o;
        return c;
    }

    static build_cache_record parse_cache(const json::value& v, const std::string& endpoint) {
        auto& o = json_read::as_object(v, endpoint);
        build_cache_record r{};
        r.id = json_read::string_field(o, "ID", endpoint);
        r.type = json_read::optional_string(o, "Type", endpoint);
        r.description = json_read::optional_string(o, "Description", endpoint);
        r.in_use = json_read::optional_bool(o, "InUse", endpoint);
        r.shared = json_read::optional_bool(o, "Shared", endpoint);
        r.size = json_read::optional_int(o, "Size", endpoint);
        r.created_at = json_read::optional_string(o, "CreatedAt", endpoint);
        r.last_used_at = json_read::optional_string(o, "LastUsedAt", endpoint);
        r.usage_count = json_read::optional_int(o, "UsageCount", endpoint);
        r.raw = o;
        return r;
    }

    // The legacy lists (Images, Containers, Volumes, BuildCache: before API 1.53) or the totals of 1.52+ with
    // their Items (verbose): whichever the engine sent.
    static disk_usage parse_df(const json::object& o, const std::string& endpoint) {
        disk_usage out{};
        out.layers_size = json_read::optional_int(o, "LayersSize", endpoint);
        auto fill = [&](const json::array* items, auto& into, auto parse) {
            if (items == nullptr) return;
            for (auto& item : *items) into.push_back(parse(item, endpoint));
        };
        // The spec names them ImageUsage, ContainerUsage, VolumeUsage; the version history ImagesUsage, ...
        auto totals = [&](std::string_view key, std::optional<disk_usage_totals>& into) -> const json::object* {
            auto* u = json_read::optional_object(o, key, endpoint);
            if (u == nullptr && key != "BuildCacheUsage") {
                std::string plural(key);
                plural.insert(plural.find("Usage"), "s");
                u = json_read::optional_object(o, plural, endpoint);
            }
            if (u == nullptr) return nullptr;
            into = disk_usage_totals{json_read::optional_int(*u, "ActiveCount", endpoint),
                                     json_read::optional_int(*u, "TotalCount", endpoint),
                                     json_read::optional_int(*u, "Reclaimable", endpoint),
                                     json_read::optional_int(*u, "TotalSize", endpoint), *u};
            return u;
        };
        const auto* images = list(o, "Images", endpoint);
        const auto* containers = list(o, "Containers", endpoint);
        const auto* volumes = list(o, "Volumes", endpoint);
        const auto* cache = list(o, "BuildCache", endpoint);
        if (auto* u = totals("ImageUsage", out.images_usage); u != nullptr && images == nullptr)
            images = list(*u, "Items", endpoint);
        if (auto* u = totals("ContainerUsage", out.containers_usage); u != nullptr && containers == nullptr)
            containers = list(*u, "Items", endpoint);
        if (auto* u = totals("VolumeUsage", out.volumes_usage); u != nullptr && volumes == nullptr)
            volumes = list(*u, "Items", endpoint);
        if (auto* u = totals("BuildCacheUsage", out.build_cache_usage); u != nullptr && cache == nullptr)
            cache = list(*u, "Items", endpoint);
        fill(images, out.images, detail::parse_image_summary);
        fill(containers, out.containers, parse_container);
        fill(volumes, out.volumes, detail::parse_volume_info);
        fill(cache, out.build_cache, parse_cache);
        out.raw = o;
        return out;
    }

    client_core<Transport>& client_;
};

}  // namespace berth
