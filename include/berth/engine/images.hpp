#pragma once
// Images: build (from a streamed tar context; the build itself is in build.hpp), inspect, exists, list, remove, tag,
// and pull, push and check_auth with a registry (registry.hpp).
#include <berth/detail/url.hpp>
#include <berth/engine/build.hpp>
#include <berth/engine/client_core.hpp>
#include <berth/engine/registry.hpp>

namespace berth {

struct image_info {  // GET /images/{name}/json
    std::string id{};
    std::vector<std::string> repo_tags{};
    std::int64_t size = 0;
    json::object raw{};
};

struct image_summary {  // GET /images/json
    std::string id{};
    std::vector<std::string> repo_tags{};
    std::int64_t size = 0;
    json::object raw{};
};

template <transport Transport>
class images_api {
public:
    explicit images_api(client_core<Transport>& c) : client_(c) {}

    // Builds from a tar context streamed from `context` (any http::body_source: a tar::packer, memory, ...) with the
    // builder options.builder picks (build.hpp). Progress goes to `progress` as typed events (one per step as it
    // starts, is cached, completes or fails, and each step's output), or as text to a build_progress; without
    // either, the last options.max_log_bytes of the output are kept in the result. A failed build throws
    // build_error (an engine_error with code build_failed): the engine's message, the failed step, its last lines.
    template <http::body_source Source>
    boost::asio::awaitable<built_image> build(Source& context, build_options options) {
        return build_with(context, std::move(options), progress_callback{}, build_progress{});
    }
    template <http::body_source Source>
    boost::asio::awaitable<built_image> build(Source& context, build_options options, progress_callback progress) {
        return build_with(context, std::move(options), std::move(progress), build_progress{});
    }
    template <http::body_source Source>
    boost::asio::awaitable<built_image> build(Source& context, build_options options, build_progress progress) {
        return build_with(context, std::move(options), progress_callback{}, std::move(progress));
    }

    // Exact lookup of a name or tag ("app" means "app:latest"), never a substring match.
    boost::asio::awaitable<image_info> inspect(std::string_view name) {
        std::string target = "/images/" + detail::percent_encode(name) + "/json";
        auto v = co_await client_.call_json(verb::get, target);
        const std::string endpoint = "GET " + target;
        auto& o = json_read::as_object(v, endpoint);
        co_return image_info{json_read::string_field(o, "Id", endpoint), repo_tags(o, endpoint),
                             json_read::optional_int(o, "Size", endpoint), o};
    }

    boost::asio::awaitable<bool> exists(std::string_view name) {
        try {
            co_await inspect(name);
            co_return true;
        } catch (const not_found_error&) {
            co_return false;
        }
    }

    boost::asio::awaitable<std::vector<image_summary>> list(bool all = false) {
        std::string target = "/images/json" + detail::query().add_flag("all", all).str();
        auto v = co_await client_.call_json(verb::get, target);
        const std::string endpoint = "GET " + target;
        std::vector<image_summary> out{};
        for (auto& item : json_read::as_array(v, endpoint)) {
            auto& o = json_read::as_object(item, endpoint);
            out.push_back({json_read::string_field(o, "Id", endpoint), repo_tags(o, endpoint),
                           json_read::optional_int(o, "Size", endpoint), o});
        }
        co_return out;
    }

    boost::asio::awaitable<void> remove(std::string_view name, bool force = false, bool no_prune = false) {
        co_await client_.call(verb::delete_, "/images/" + detail::percent_encode(name) +
                                                 detail::query().add_flag("force", force).add_flag("noprune", no_prune).str());
    }

    // Adds repo:tag as a name of the image `name`.
    boost::asio::awaitable<void> tag(std::string_view name, std::string_view repo, std::string_view tag = "latest") {
        co_await client_.call(verb::post, "/images/" + detail::percent_encode(name) + "/tag" +
                                              detail::query().add("repo", repo).add("tag", tag).str());
    }

    // Pulls [registry/]repository[:tag|@digest] (no tag: "latest"), with the credentials in options or, by default,
    // those the docker CLI would use (credentials.hpp). Progress: one step per layer (started, its byte counts as
    // step_progress, cached or completed). Failures are registry_errors: unauthorized, not_found, unreachable.
    boost::asio::awaitable<pulled_image> pull(std::string_view reference, pull_options options = {},
                                              progress_callback progress = {}) {
        return detail::pull(client_, reference, std::move(options), std::move(progress));
    }

    // Pushes a local image (named with its registry: "127.0.0.1:5000/team/app:1") and returns the stored digest.
    boost::asio::awaitable<pushed_image> push(std::string_view reference, push_options options = {},
                                              progress_callback progress = {}) {
        return detail::push(client_, reference, std::move(options), std::move(progress));
    }

    // POST /auth: has the engine log in to credentials.server_address; a refusal is a registry_error.
    boost::asio::awaitable<auth_result> check_auth(registry_credentials credentials) {
        return detail::check_auth(client_, std::move(credentials));
    }

private:
    // An untagged image's names: API 1.43 stopped listing the placeholder "<none>:<none>"; berth drops it on every
    // version, so an untagged image reads the same whatever the engine speaks.
    static std::vector<std::string> repo_tags(const json::object& o, const std::string& endpoint) {
        auto tags = json_read::optional_strings(o, "RepoTags", endpoint);
        std::erase(tags, "<none>:<none>");
        return tags;
    }

    template <http::body_source Source>
    boost::asio::awaitable<built_image> build_with(Source& context, build_options options, progress_callback events,
                                                   build_progress text) {
        auto result = co_await detail::run_build(client_, context, options, std::move(events), std::move(text));
        if (result.id.empty() && !options.tag.empty()) {
            auto tagged = co_await inspect(options.tag); // not (co_await ...).id: g++ 12 rejects that in a template
            result.id = tagged.id;
        }
        if (result.id.empty()) throw protocol_error("POST /build", "the build reported no image id");
        co_return result;
    }

    client_core<Transport>& client_;
};

} // namespace berth
