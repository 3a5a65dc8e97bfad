#pragma once
// Images: build (from a streamed tar context; the build itself is in build.hpp), inspect, exists, list, remove, tag,
// history, prune, commit (a container's filesystem as a new image), save and load (tarballs streamed to and from a
// file or a callback), search, attestations, the build cache's prune, and pull, push and check_auth with a registry
// (registry.hpp).
#include <berth/detail/url.hpp>
#include <berth/engine/archive.hpp>
#include <berth/engine/build.hpp>
#include <berth/engine/client_core.hpp>
#include <berth/engine/container_config.hpp>
#include <berth/engine/containers.hpp>
#include <berth/engine/registry.hpp>
#include <berth/http/file_body.hpp>

#include <filesystem>
#include <optional>

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

struct image_list_options {
    bool all = false;  // also the intermediate images of builds
};

struct image_remove_options {
    bool force = false;     // remove it even when containers use it or it has several tags
    bool no_prune = false;  // noprune: keep its untagged parents
};

struct image_history_entry {   // one layer of GET /images/{name}/history, newest first
    std::string id{};          // the layer's image id, or "<missing>" for a layer built elsewhere
    std::int64_t created = 0;  // Unix time (seconds)
    std::string created_by{};  // the instruction or command that made the layer
    std::vector<std::string> tags{};
    std::int64_t size = 0;  // bytes the layer adds
    std::string comment{};
    json::object raw{};
};

struct image_history_options {
    // A JSON-encoded OCI platform ({"os":"linux","architecture":"arm64"}) choosing a variant of a multi-platform
    // image. Needs Engine API 1.48.
    std::string platform{};
};

struct image_search_result {  // one entry of GET /images/search
    std::string name{};
    std::string description{};
    std::int64_t star_count = 0;
    bool is_official = false;
    bool is_automated = false;  // deprecated by the API (always false since 1.44)
    json::object raw{};
};

struct image_search_options {
    std::optional<std::int64_t> limit{};  // the most results to return (the registry's default: 25)
    // The engine's filters: {"is-official": {"true"}}, {"stars": {"3"}}
    std::map<std::string, std::vector<std::string>> filters{};
};

struct image_delete_item {   // ImageDeleteResponseItem
    std::string untagged{};  // a name removed
    std::string deleted{};   // an image id removed
};

struct image_prune_result {  // POST /images/prune
    std::vector<image_delete_item> images_deleted{};
    std::int64_t space_reclaimed = 0;  // bytes
};

struct image_prune_options {
    // The engine's filters: {"label": {"k=v"}}, {"label!": {"k"}}, {"until": {"24h"}}
    std::map<std::string, std::vector<std::string>> filters{};
    // The filter dangling: true (the engine's default): only untagged unused images; false: every unused image.
    std::optional<bool> dangling{};
};

struct image_commit_options {
    std::string repo{};     // the new image's repository; empty: an untagged image
    std::string tag{};      // empty: "latest" when repo is given
    std::string comment{};  // the commit message (the image's Comment)
    std::string author{};   // "Name <mail>"
    bool pause = true;      // pause the container while its filesystem is read
    // Dockerfile instructions applied to the image's configuration ("CMD [\"sh\"]", "ENV K=v", "LABEL k=v"); one
    // `changes` query parameter each.
    std::vector<std::string> changes{};
    // The new image's configuration (ContainerConfig: Cmd, Env, Labels, ...); its image and host fields are not
    // sent. Nothing: the container's own.
    std::optional<container_config> config{};
};

struct image_save_options {
    // A JSON-encoded OCI platform choosing one variant of a multi-platform image (else all). Needs Engine API 1.48.
    std::string platform{};
};

struct image_load_options {
    bool quiet = false;  // no progress, only the names loaded
    // A JSON-encoded OCI platform choosing one variant of a multi-platform tarball. Needs Engine API 1.48.
    std::string platform{};
    // The engine's messages as text (always output_stream::stdout_), as they come.
    output_callback on_output{};
};

struct image_load_result {  // POST /images/load
    // What the engine reports loaded: "name:tag" for each tagged image ("Loaded image: name:tag"), the id for an
    // untagged one ("Loaded image ID: sha256:...").
    std::vector<std::string> loaded{};
    std::string log{};  // the engine's text messages (the last 1 MiB), when no on_output was given
};

struct image_attestation {                    // AttestationStatement of GET /images/{name}/attestations
    json::object descriptor{};                // Descriptor: the statement's OCI descriptor
    std::string predicate_type{};             // PredicateType: "https://slsa.dev/provenance/v0.2", ...
    std::optional<json::object> statement{};  // Statement: the in-toto statement, when asked for
    json::object raw{};
};

struct image_attestations_options {
    std::string platform{};            // JSON-encoded OCI platform (one); empty: the host's
    std::vector<std::string> types{};  // predicate type URIs to keep (one `type` parameter each); empty: all
    bool statement = false;            // include each statement's body
};

struct build_cache_prune_options {
    // Bytes of cache to keep: `reserved-space` on API 1.48+, `keep-storage` on an older one.
    std::optional<std::int64_t> reserved_space{};
    std::optional<std::int64_t> max_used_space{};  // max-used-space (API 1.48+)
    std::optional<std::int64_t> min_free_space{};  // min-free-space (API 1.48+)
    bool all = false;                              // also the cache that is in use or shared ("all")
    // The engine's filters: {"until": {"24h"}}, {"id": {...}}, {"type": {"regular"}}, ...
    std::map<std::string, std::vector<std::string>> filters{};
};

struct build_cache_prune_result {  // POST /build/prune
    std::vector<std::string> caches_deleted{};
    std::int64_t space_reclaimed = 0;  // bytes
};

namespace detail {
// An image id as "sha256:<hex>": Podman 4.3 answers a commit, a history and /system/df with the bare 64 hex digits, Docker with
// the algorithm; berth gives the same form for both (as inspect and list do on both).
inline std::string qualified_image_id(std::string id) {
    if (id.size() == 64 && id.find_first_not_of("0123456789abcdef") == std::string::npos) id.insert(0, "sha256:");
    return id;
}

// An untagged image's names: API 1.43 stopped listing the placeholder "<none>:<none>"; berth drops it on every
// version, so an untagged image reads the same whatever the engine speaks (and Podman's "<none>" in /system/df).
inline std::vector<std::string> image_repo_tags(const json::object& o, const std::string& endpoint) {
    auto tags = json_read::optional_strings(o, "RepoTags", endpoint);
    std::erase(tags, "<none>:<none>");
    std::erase(tags, "<none>");
    return tags;
}

// One image of GET /images/json (and of GET /system/df, where Podman 4.3 gives bare hex ids).
inline image_summary parse_image_summary(const json::value& v, const std::string& endpoint) {
    auto& o = json_read::as_object(v, endpoint);
    return image_summary{qualified_image_id(json_read::string_field(o, "Id", endpoint)), image_repo_tags(o, endpoint),
                         json_read::optional_int(o, "Size", endpoint), o};
}
}  // namespace detail

template <transport Transport>
class images_api {
public:
    explicit images_api(client_core<Transport>& c) : client_(c) {}

    // Builds from a tar context streamed from `context` (any http::body_source: a tar::packer, memory, ...) with the
    // builder options.builder picks (build.hpp). Progress goes to options.on_progress as typed events (one per step
    // as it starts, is cached, completes or fails, and each step's output), or as text to options.on_output; without
    // either, the last options.max_log_bytes of the output are kept in the result. A failed build throws
    // build_error (an engine_error with code build_failed): the engine's message, the failed step, its last lines.
    // Engine API: POST /build
    template <http::body_source Source>
    boost::asio::awaitable<built_image> build(Source& context, build_options options) {
        progress_callback events = std::move(options.on_progress);
        build_progress text;
        if (options.on_output)
            text = [on_output = std::move(options.on_output)](std::string_view s) {
                on_output(output_stream::stdout_, s);
            };
        options.on_progress = nullptr;
        options.on_output = nullptr;
        return build_with(context, std::move(options), std::move(events), std::move(text));
    }

    // Exact lookup of a name or tag ("app" means "app:latest"), never a substring match.
    // Engine API: GET /images/{name}/json
    boost::asio::awaitable<image_info> inspect(std::string_view name) {
        std::string target = "/images/" + detail::percent_encode(name) + "/json";
        auto v = co_await client_.call_json(verb::get, target);
        const std::string endpoint = "GET " + target;
        auto& o = json_read::as_object(v, endpoint);
        co_return image_info{json_read::string_field(o, "Id", endpoint), repo_tags(o, endpoint),
                             json_read::optional_int(o, "Size", endpoint), o};
    }

    // Engine API: GET /images/{name}/json
    boost::asio::awaitable<bool> exists(std::string_view name) {
        try {
            co_await inspect(name);
            co_return true;
        } catch (const not_found_error&) { co_return false; }
    }

    // Engine API: GET /images/json
    boost::asio::awaitable<std::vector<image_summary>> list(image_list_options options = {}) {
        std::string target = "/images/json" + detail::query().add_flag("all", options.all).str();
        auto v = co_await client_.call_json(verb::get, target);
        const std::string endpoint = "GET " + target;
        std::vector<image_summary> out{};
        for (auto& item : json_read::as_array(v, endpoint)) out.push_back(detail::parse_image_summary(item, endpoint));
        co_return out;
    }

    // Engine API: DELETE /images/{name}
    boost::asio::awaitable<void> remove(std::string_view name, image_remove_options options = {}) {
        co_await client_.call(
            verb::delete_,
            "/images/" + detail::percent_encode(name) +
                detail::query().add_flag("force", options.force).add_flag("noprune", options.no_prune).str());
    }

    // Adds repo:tag as a name of the image `name`.
    // Engine API: POST /images/{name}/tag
    boost::asio::awaitable<void> tag(std::string_view name, std::string_view repo, std::string_view tag = "latest") {
        co_await client_.call(verb::post, "/images/" + detail::percent_encode(name) + "/tag" +
                                              detail::query().add("repo", repo).add("tag", tag).str());
    }

    // Pulls [registry/]repository[:tag|@digest] (no tag: "latest"), with the credentials in options or, by default,
    // those the docker CLI would use (credentials.hpp). Progress (options.on_progress): one step per layer (started,
    // its byte counts as step_progress, cached or completed). Failures are registry_errors: unauthorized, not_found,
    // unreachable. (Overloads, not a defaulted argument: g++ 12 double-destroys a defaulted options temporary in a
    // co_await.)
    // Engine API: POST /images/create
    boost::asio::awaitable<pulled_image> pull(std::string_view reference, pull_options options) {
        return detail::pull(client_, reference, std::move(options));
    }
    boost::asio::awaitable<pulled_image> pull(std::string_view reference) { return pull(reference, pull_options{}); }

    // Pushes a local image (named with its registry: "127.0.0.1:5000/team/app:1") and returns the stored digest.
    // Engine API: POST /images/{name}/push
    boost::asio::awaitable<pushed_image> push(std::string_view reference, push_options options) {
        return detail::push(client_, reference, std::move(options));
    }
    boost::asio::awaitable<pushed_image> push(std::string_view reference) { return push(reference, push_options{}); }

    // POST /auth: has the engine log in to credentials.server_address; a refusal is a registry_error.
    // Engine API: POST /auth
    boost::asio::awaitable<auth_result> check_auth(registry_credentials credentials) {
        return detail::check_auth(client_, std::move(credentials));
    }

    // The image's layers, newest first.
    // Engine API: GET /images/{name}/history
    boost::asio::awaitable<std::vector<image_history_entry>> history(std::string_view name) {
        return history(name, image_history_options{});
    }
    // Engine API: GET /images/{name}/history
    boost::asio::awaitable<std::vector<image_history_entry>> history(std::string_view name,
                                                                     image_history_options options) {
        std::string base = path(name, "history") + "/history";
        if (!options.platform.empty())
            co_await client_.require_api("1.48", "the history of one platform", "GET " + base);
        std::string target = base +
                             detail::query().add_if(!options.platform.empty(), "platform", options.platform).str();
        auto v = co_await client_.call_json(verb::get, target);
        const std::string endpoint = "GET " + target;
        std::vector<image_history_entry> out{};
        for (auto& item : json_read::as_array(v, endpoint)) {
            auto& o = json_read::as_object(item, endpoint);
            image_history_entry h{};
            h.id = detail::qualified_image_id(json_read::optional_string(o, "Id", endpoint));
            h.created = json_read::optional_int(o, "Created", endpoint);
            h.created_by = json_read::optional_string(o, "CreatedBy", endpoint);
            h.tags = json_read::optional_strings(o, "Tags", endpoint);
            h.size = json_read::optional_int(o, "Size", endpoint);
            h.comment = json_read::optional_string(o, "Comment", endpoint);
            h.raw = o;
            out.push_back(std::move(h));
        }
        co_return out;
    }

    // Searches the registry a term names ("127.0.0.1:5000/team/app"; no registry: Docker Hub) through the engine.
    // A registry without a search endpoint is the engine's error (an engine_error).
    // Engine API: GET /images/search
    boost::asio::awaitable<std::vector<image_search_result>> search(std::string_view term) {
        return search(term, image_search_options{});
    }
    // Engine API: GET /images/search
    boost::asio::awaitable<std::vector<image_search_result>> search(std::string_view term,
                                                                    image_search_options options) {
        if (term.empty()) throw invalid_argument_error("berth::images().search: the term is empty");
        detail::query q;
        q.add("term", term);
        if (options.limit) q.add_number("limit", *options.limit);
        detail::add_filters(q, options.filters);
        std::string target = "/images/search" + q.str();
        auto v = co_await client_.call_json(verb::get, target);
        const std::string endpoint = "GET " + target;
        std::vector<image_search_result> out{};
        for (auto& item : json_read::as_array(v, endpoint)) {
            auto& o = json_read::as_object(item, endpoint);
            image_search_result r{};
            r.name = json_read::string_field(o, "name", endpoint);
            r.description = json_read::optional_string(o, "description", endpoint);
            r.star_count = json_read::optional_int(o, "star_count", endpoint);
            r.is_official = json_read::optional_bool(o, "is_official", endpoint);
            r.is_automated = json_read::optional_bool(o, "is_automated", endpoint);
            r.raw = o;
            out.push_back(std::move(r));
        }
        co_return out;
    }

    // Removes unused images: by default only dangling (untagged) ones.
    // Engine API: POST /images/prune
    boost::asio::awaitable<image_prune_result> prune() { return prune(image_prune_options{}); }
    // Engine API: POST /images/prune
    boost::asio::awaitable<image_prune_result> prune(image_prune_options options) {
        if (options.dangling) options.filters["dangling"] = {*options.dangling ? "true" : "false"};
        detail::query q;
        detail::add_filters(q, options.filters);
        std::string target = "/images/prune" + q.str();
        auto v = co_await client_.call_json(verb::post, target);
        const std::string endpoint = "POST " + target;
        auto& o = json_read::as_object(v, endpoint);
        image_prune_result out{};
        if (auto* p = o.if_contains("ImagesDeleted"); p != nullptr && !p->is_null()) {
            for (auto& item : json_read::as_array(*p, endpoint)) {
                auto& d = json_read::as_object(item, endpoint);
                out.images_deleted.push_back(
                    {json_read::optional_string(d, "Untagged", endpoint),
                     detail::qualified_image_id(json_read::optional_string(d, "Deleted", endpoint))});
            }
        }
        out.space_reclaimed = json_read::optional_int(o, "SpaceReclaimed", endpoint);
        co_return out;
    }

    // Makes an image of a container's filesystem and returns its id ("sha256:...", on Podman too). Podman 4.3
    // ignores options.config (only `changes` alter its image's configuration).
    // Engine API: POST /commit
    boost::asio::awaitable<std::string> commit(std::string_view container) {
        return commit(container, image_commit_options{});
    }
    // Engine API: POST /commit
    boost::asio::awaitable<std::string> commit(std::string_view container, image_commit_options options) {
        if (container.empty()) throw invalid_argument_error("berth::images().commit: the container is empty");
        detail::query q;
        q.add("container", container);
        q.add_if(!options.repo.empty(), "repo", options.repo).add_if(!options.tag.empty(), "tag", options.tag);
        q.add_if(!options.comment.empty(), "comment", options.comment);
        q.add_if(!options.author.empty(), "author", options.author);
        q.add_flag("pause", options.pause);
        for (auto& change : options.changes) q.add("changes", change);
        std::string body = "{}";
        if (options.config) {
            auto config = json::value_from(*options.config).as_object();
            config.erase("HostConfig");
            config.erase("NetworkingConfig");
            if (options.config->image.empty()) config.erase("Image");
            body = json::serialize(config);
        }
        std::string target = "/commit" + q.str();
        auto v = co_await client_.call_json(verb::post, target, std::move(body));
        const std::string endpoint = "POST " + target;
        co_return detail::qualified_image_id(
            json_read::string_field(json_read::as_object(v, endpoint), "Id", endpoint));
    }

    // Streams the image's tarball (docker save) into `sink` slice by slice.
    // Engine API: GET /images/{name}/get
    template <byte_sink Sink>
    boost::asio::awaitable<void> save(std::string_view name, Sink&& sink) {
        return save(name, std::forward<Sink>(sink), image_save_options{});
    }
    // Engine API: GET /images/{name}/get
    template <byte_sink Sink>
    boost::asio::awaitable<void> save(std::string_view name, Sink&& sink, image_save_options options) {
        std::string base = path(name, "save") + "/get";
        if (!options.platform.empty()) co_await client_.require_api("1.48", "saving one platform", "GET " + base);
        detail::query q;
        q.add_if(!options.platform.empty(), "platform", options.platform);
        co_await stream_out(base + q.str(), sink);
    }
    // Saves the image's tarball to `file` (written under a temporary name beside it, renamed into place once
    // complete: a failed save leaves `file` as it was).
    // Engine API: GET /images/{name}/get
    boost::asio::awaitable<void> save_to_file(std::string_view name, std::filesystem::path file) {
        return save_to_file(name, std::move(file), image_save_options{});
    }
    // Engine API: GET /images/{name}/get
    boost::asio::awaitable<void> save_to_file(std::string_view name, std::filesystem::path file,
                                              image_save_options options) {
        http::file_sink sink(file);
        co_await save(name, sink, std::move(options));
        sink.commit();
    }

    // Streams one tarball of several images (and their names) into `sink`.
    // Engine API: GET /images/get
    template <byte_sink Sink>
    boost::asio::awaitable<void> save_all(std::vector<std::string> names, Sink&& sink) {
        return save_all(std::move(names), std::forward<Sink>(sink), image_save_options{});
    }
    // Engine API: GET /images/get
    template <byte_sink Sink>
    boost::asio::awaitable<void> save_all(std::vector<std::string> names, Sink&& sink, image_save_options options) {
        if (names.empty()) throw invalid_argument_error("berth::images().save_all: no image names");
        if (!options.platform.empty()) co_await client_.require_api("1.48", "saving one platform", "GET /images/get");
        detail::query q;
        for (auto& n : names) {
            if (n.empty()) throw invalid_argument_error("berth::images().save_all: an image name is empty");
            q.add("names", n);
        }
        q.add_if(!options.platform.empty(), "platform", options.platform);
        co_await stream_out("/images/get" + q.str(), sink);
    }
    // Engine API: GET /images/get
    boost::asio::awaitable<void> save_all_to_file(std::vector<std::string> names, std::filesystem::path file) {
        return save_all_to_file(std::move(names), std::move(file), image_save_options{});
    }
    // Engine API: GET /images/get
    boost::asio::awaitable<void> save_all_to_file(std::vector<std::string> names, std::filesystem::path file,
                                                  image_save_options options) {
        http::file_sink sink(file);
        co_await save_all(std::move(names), sink, std::move(options));
        sink.commit();
    }

    // Loads the images of a tarball (as save writes it) streamed from `tarball` (any http::body_source: an
    // http::file_source, memory, ...). A tarball the engine cannot read is an engine_error.
    // Engine API: POST /images/load
    template <http::body_source Source>
    boost::asio::awaitable<image_load_result> load(Source& tarball) {
        return load(tarball, image_load_options{});
    }
    // Engine API: POST /images/load
    template <http::body_source Source>
    boost::asio::awaitable<image_load_result> load(Source& tarball, image_load_options options) {
        const std::string base = "/images/load";
        if (!options.platform.empty()) co_await client_.require_api("1.48", "loading one platform", "POST " + base);
        detail::query q;
        q.add_flag("quiet", options.quiet).add_if(!options.platform.empty(), "platform", options.platform);
        http::request req{.method = verb::post, .target = base + q.str(), .content_type = "application/x-tar"};
        auto reply = co_await client_.open(std::move(req), &tarball);
        image_load_result out{};
        constexpr std::size_t log_limit = std::size_t{1} << 20;
        auto on_text = [&](std::string_view text) {
            if (text.empty()) return;
            if (options.on_output) {
                options.on_output(output_stream::stdout_, text);
            } else {
                out.log.append(text);
                if (out.log.size() > log_limit) out.log.erase(0, out.log.size() - log_limit);
            }
            for (std::string_view prefix : {"Loaded image: ", "Loaded image ID: "}) {
                std::string_view rest = text;
                while (!rest.empty()) {
                    auto nl = rest.find('\n');
                    auto line = rest.substr(0, nl);
                    if (line.starts_with(prefix)) out.loaded.emplace_back(line.substr(prefix.size()));
                    if (nl == std::string_view::npos) break;
                    rest.remove_prefix(nl + 1);
                }
            }
        };
        if (reply.header("Content-Type").starts_with("application/json")) {
            co_await read_progress_stream(reply, [&](const progress_message& m) {
                if (!m.stream.empty())
                    on_text(m.stream);
                else if (!m.status.empty())
                    on_text(m.status + "\n");
            });
        } else {
            on_text(co_await reply.read_all(log_limit));  // an engine that answers in plain text
        }
        co_return out;
    }
    // Loads a tarball file (streamed, never read whole).
    // Engine API: POST /images/load
    boost::asio::awaitable<image_load_result> load_from_file(std::filesystem::path file) {
        return load_from_file(std::move(file), image_load_options{});
    }
    // Engine API: POST /images/load
    boost::asio::awaitable<image_load_result> load_from_file(std::filesystem::path file, image_load_options options) {
        http::file_source source(file);
        co_return co_await load(source, std::move(options));
    }

    // The in-toto attestations (provenance, SBOM) attached to an image. Needs Engine API 1.55: refused before
    // sending on an older one (unsupported_api_version_error).
    // Engine API: GET /images/{name}/attestations
    boost::asio::awaitable<std::vector<image_attestation>> attestations(std::string_view name) {
        return attestations(name, image_attestations_options{});
    }
    // Engine API: GET /images/{name}/attestations
    boost::asio::awaitable<std::vector<image_attestation>> attestations(std::string_view name,
                                                                        image_attestations_options options) {
        std::string base = path(name, "attestations") + "/attestations";
        co_await client_.require_api("1.55", "image attestations", "GET " + base);
        detail::query q;
        q.add_if(!options.platform.empty(), "platform", options.platform);
        for (auto& t : options.types) q.add("type", t);
        if (options.statement) q.add("statement", "true");
        std::string target = base + q.str();
        auto v = co_await client_.call_json(verb::get, target);
        const std::string endpoint = "GET " + target;
        std::vector<image_attestation> out{};
        for (auto& item : json_read::as_array(v, endpoint)) {
            auto& o = json_read::as_object(item, endpoint);
            image_attestation a{};
            auto* d = json_read::optional_object(o, "Descriptor", endpoint);
            if (d == nullptr) throw protocol_error(endpoint, "an attestation lacks its Descriptor");
            a.descriptor = *d;
            a.predicate_type = json_read::string_field(o, "PredicateType", endpoint);
            if (auto* st = json_read::optional_object(o, "Statement", endpoint)) a.statement = *st;
            a.raw = o;
            out.push_back(std::move(a));
        }
        co_return out;
    }

    // Removes build cache (by default what no build uses).
    // Engine API: POST /build/prune
    boost::asio::awaitable<build_cache_prune_result> prune_build_cache() {
        return prune_build_cache(build_cache_prune_options{});
    }
    // Engine API: POST /build/prune
    boost::asio::awaitable<build_cache_prune_result> prune_build_cache(build_cache_prune_options options) {
        const std::string base = "/build/prune";
        if (options.max_used_space || options.min_free_space)
            co_await client_.require_api("1.48", "max-used-space and min-free-space", "POST " + base);
        const bool reserved = co_await client_.api_at_least("1.48");
        detail::query q;
        if (options.reserved_space) q.add_number(reserved ? "reserved-space" : "keep-storage", *options.reserved_space);
        if (options.max_used_space) q.add_number("max-used-space", *options.max_used_space);
        if (options.min_free_space) q.add_number("min-free-space", *options.min_free_space);
        if (options.all) q.add("all", "true");
        detail::add_filters(q, options.filters);
        std::string target = base + q.str();
        auto v = co_await client_.call_json(verb::post, target);
        const std::string endpoint = "POST " + target;
        auto& o = json_read::as_object(v, endpoint);
        co_return build_cache_prune_result{json_read::optional_strings(o, "CachesDeleted", endpoint),
                                           json_read::optional_int(o, "SpaceReclaimed", endpoint)};
    }

private:
    // The path of one image; an empty name would address another endpoint, so it is refused.
    static std::string path(std::string_view name, std::string_view operation) {
        if (name.empty())
            throw invalid_argument_error("berth::images()." + std::string(operation) + ": the image name is empty");
        return "/images/" + detail::percent_encode(name);
    }

    // A GET whose body (a tarball) goes to `sink` as it arrives.
    template <class Sink>
    boost::asio::awaitable<void> stream_out(std::string target, Sink& sink) {
        http::request req{.method = verb::get, .target = std::move(target)};
        auto reply = co_await client_.open(std::move(req));
        co_await detail::read_body_into(reply, sink);
    }

    static std::vector<std::string> repo_tags(const json::object& o, const std::string& endpoint) {
        return detail::image_repo_tags(o, endpoint);
    }

    template <http::body_source Source>
    boost::asio::awaitable<built_image> build_with(Source& context, build_options options, progress_callback events,
                                                   build_progress text) {
        auto result = co_await detail::run_build(client_, context, options, std::move(events), std::move(text));
        if (result.id.empty() && !options.tag.empty()) {
            auto tagged = co_await inspect(options.tag);  // not (co_await ...).id: g++ 12 rejects that in a template
            result.id = tagged.id;
        }
        if (result.id.empty()) throw protocol_error("POST /build", "the build reported no image id");
        co_return result;
    }

    client_core<Transport>& client_;
};

}  // namespace berth
