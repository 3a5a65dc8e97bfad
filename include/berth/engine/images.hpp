#pragma once
// Images: build (from a streamed tar context), inspect, exists, list, remove, tag.
#include <berth/detail/url.hpp>
#include <berth/engine/client_core.hpp>

#include <boost/json/serialize.hpp>

#include <functional>

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

struct build_options {
    std::string tag{};                 // t=
    std::string dockerfile{};          // path inside the context; empty: "Dockerfile"
    bool no_cache = false;
    bool remove_intermediate = true;        // rm=
    bool force_remove_intermediate = false; // forcerm=
    bool pull = false;
    std::string network_mode{};        // for RUN steps; "none" keeps builds off the network
    std::map<std::string, std::string> build_args{};
    std::map<std::string, std::string> labels{};
};

// Called with each line of build output the engine streams ("Step 1/3 : FROM scratch", ...).
using build_progress = std::function<void(std::string_view)>;

struct built_image {
    std::string id{};   // sha256:...
    std::string log{};  // the whole output, for callers that did not stream it
};

template <transport Transport>
class images_api {
public:
    explicit images_api(client_core<Transport>& c) : client_(c) {}

    // Builds from a tar context streamed from `context` (any http::body_source: a tar::packer, memory, ...).
    // A build error in the output stream is thrown as engine_error with code build_failed and the engine's message.
    template <http::body_source Source>
    boost::asio::awaitable<built_image> build(Source& context, build_options options) {
        return build(context, std::move(options), build_progress{});
    }
    template <http::body_source Source>
    boost::asio::awaitable<built_image> build(Source& context, build_options options, build_progress progress) {
        detail::query q;
        q.add_if(!options.tag.empty(), "t", options.tag);
        q.add_if(!options.dockerfile.empty(), "dockerfile", options.dockerfile);
        q.add_flag("nocache", options.no_cache).add_flag("rm", options.remove_intermediate);
        q.add_flag("forcerm", options.force_remove_intermediate).add_flag("pull", options.pull);
        q.add_if(!options.network_mode.empty(), "networkmode", options.network_mode);
        if (!options.build_args.empty())
            q.add("buildargs", json::serialize(json::value_from(options.build_args)));
        if (!options.labels.empty()) q.add("labels", json::serialize(json::value_from(options.labels)));
        http::request req{.method = verb::post, .target = "/build" + q.str(), .content_type = "application/x-tar"};
        auto reply = co_await client_.open(std::move(req), &context);
        const std::string endpoint = reply.endpoint();

        built_image result;
        std::string pending{};  // an unfinished line of the JSON-lines stream
        std::array<char, 16 * 1024> buffer;
        auto handle_line = [&](std::string_view line) {
            if (line.find_first_not_of(" \r\n\t") == std::string_view::npos) return;
            auto v = json_read::parse(line, endpoint);
            auto& o = json_read::as_object(v, endpoint);
            if (auto error = json_read::optional_string(o, "error", endpoint); !error.empty())
                throw engine_error(engine_errc::build_failed, reply.status(), error, endpoint);
            if (auto text = json_read::optional_string(o, "stream", endpoint); !text.empty()) {
                result.log += text;
                if (progress) progress(text);
            }
            if (auto* aux = json_read::optional_object(o, "aux", endpoint))
                if (auto id = json_read::optional_string(*aux, "ID", endpoint); !id.empty()) result.id = id;
        };
        while (std::size_t n = co_await reply.read_some(buffer)) {
            pending.append(buffer.data(), n);
            std::size_t start = 0;
            for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1)
                handle_line(std::string_view(pending).substr(start, nl - start));
            pending.erase(0, start);
            if (pending.size() > (std::size_t{16} << 20))
                throw protocol_error(endpoint, "build output line longer than 16 MiB");
        }
        handle_line(pending);
        if (result.id.empty() && !options.tag.empty()) {
            auto image = co_await inspect(options.tag);
            result.id = image.id;
        }
        if (result.id.empty()) throw protocol_error(endpoint, "the build reported no image id");
        co_return result;
    }

    // Exact lookup of a name or tag ("app" means "app:latest"), never a substring match.
    boost::asio::awaitable<image_info> inspect(std::string_view name) {
        std::string target = "/images/" + detail::percent_encode(name) + "/json";
        auto v = co_await client_.call_json(verb::get, target);
        const std::string endpoint = "GET " + target;
        auto& o = json_read::as_object(v, endpoint);
        co_return image_info{json_read::string_field(o, "Id", endpoint),
                             json_read::optional_strings(o, "RepoTags", endpoint),
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
            out.push_back({json_read::string_field(o, "Id", endpoint), json_read::optional_strings(o, "RepoTags", endpoint),
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

private:
    client_core<Transport>& client_;
};

} // namespace berth
