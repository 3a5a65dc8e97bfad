#pragma once
// Image builds: the options, the builder choice, and the build request; the reading of the engine's build output
// into typed progress is build_output.hpp. images_api::build (images.hpp) is the entry point.
//
// Builders: Docker has the legacy builder and BuildKit (POST /build?version=2, no session needed: the uploaded tar
// is the context); BuildKit's progress comes as protobuf trace payloads (buildkit_trace.hpp). Podman builds with
// Buildah whatever is asked (Buildah understands RUN --mount, COPY --chmod, ...) and reports legacy-style text.
// builder::automatic picks BuildKit where the engine offers it, from what the engine says (/_ping), never guessed.
#include <berth/detail/url.hpp>
#include <berth/engine/build_output.hpp>
#include <berth/engine/client_core.hpp>
#include <berth/engine/json_progress.hpp>
#include <berth/engine/output_handler.hpp>
#include <berth/engine/registry_auth.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/value_from.hpp>

#include <deque>
#include <functional>
#include <map>
#include <vector>

namespace berth {

enum class builder {
    automatic,  // BuildKit where the engine offers it (Docker unless its /_ping says Builder-Version 1), else legacy
    legacy,     // Docker's classic builder
    buildkit,   // BuildKit (version=2); Podman builds with Buildah whatever is asked
};

struct build_options {
    std::string tag{};         // t=
    std::string dockerfile{};  // path inside the context; empty: "Dockerfile"
    berth::builder builder = berth::builder::automatic;
    std::string target{};    // the stage to build in a multi-stage Dockerfile
    std::string platform{};  // "linux/amd64"
    bool no_cache = false;
    bool remove_intermediate = true;         // rm= (legacy builder)
    bool force_remove_intermediate = false;  // forcerm= (legacy builder)
    // Look for newer base images in a registry. Off: FROM uses local images as they are (with BuildKit too).
    bool pull_base_images = false;  // pull= (the Engine API: "always attempt to pull" the FROM images)
    // For RUN steps; "none" keeps builds off the network. Empty: the engine's default; with BuildKit on an engine
    // that has no default bridge (dockerd --bridge=none), "none", as the legacy builder does there.
    std::string network_mode{};
    std::map<std::string, std::string> build_args{};
    std::map<std::string, std::string> labels{};
    std::vector<std::string> cache_from{};  // images whose layers may serve as cache
    // The build output kept in built_image::log when no callback is given: the last max_log_bytes bytes.
    std::size_t max_log_bytes = std::size_t{1} << 20;
    // The longest line of the engine's output accepted (BuildKit sends a step's output in one line).
    std::size_t max_line_bytes = std::size_t{16} << 20;
    // Credentials for the registries FROM may pull from (X-Registry-Config), keyed by registry ("127.0.0.1:5000",
    // "https://index.docker.io/v1/"); all_credentials() (credentials.hpp) gives what the docker CLI would send.
    std::map<std::string, registry_credentials> registry_config{};
    // The build's progress as typed events: one per step as it starts, is cached, completes or fails, and each
    // step's output.
    progress_callback on_progress{};
    // The same as text (always output_stream::stdout_): each piece of build output as the engine sent it (legacy,
    // Buildah), or one line per BuildKit event ("#3 [2/4] RUN make").
    output_callback on_output{};
};

struct built_image {
    std::string id{};  // sha256:...
    build_backend backend = build_backend::legacy;
    // The output (the legacy builder's text, BuildKit's events as lines), kept only when no callback was given,
    // and then only its last build_options::max_log_bytes; log_bytes_dropped says how much did not fit (with a
    // callback: all of it, since the callback had it).
    std::string log{};
    std::uint64_t log_bytes_dropped = 0;
};

namespace detail {

// The /build query for the chosen backend.
inline std::string build_query(const build_options& options, build_backend backend, bool network_none_default) {
    detail::query q;
    q.add_if(!options.tag.empty(), "t", options.tag);
    q.add_if(!options.dockerfile.empty(), "dockerfile", options.dockerfile);
    q.add_flag("nocache", options.no_cache).add_flag("rm", options.remove_intermediate);
    q.add_flag("forcerm", options.force_remove_intermediate).add_flag("pull", options.pull_base_images);
    std::string network = options.network_mode.empty() && network_none_default ? "none" : options.network_mode;
    q.add_if(!network.empty(), "networkmode", network);
    if (!options.build_args.empty()) q.add("buildargs", json::serialize(json::value_from(options.build_args)));
    if (!options.labels.empty()) q.add("labels", json::serialize(json::value_from(options.labels)));
    q.add_if(!options.target.empty(), "target", options.target);
    q.add_if(!options.platform.empty(), "platform", options.platform);
    if (!options.cache_from.empty()) q.add("cachefrom", json::serialize(json::value_from(options.cache_from)));
    if (backend == build_backend::buildkit) q.add("version", "2");
    return q.str();
}

// Which backend will build: Podman always builds with Buildah; Docker as asked, or for builder::automatic as its
// /_ping says (Builder-Version "2" or absent on a Linux engine: BuildKit is built in since 18.09; "1": the
// operator turned it off). BuildKit ignores X-Registry-Config (it asks the client over a session berth does not
// open), so an automatic build that carries registry credentials goes to the legacy builder, which uses them.
template <transport Transport>
boost::asio::awaitable<build_backend> choose_backend(client_core<Transport>& client, builder wanted,
                                                     bool carries_registry_credentials) {
    if (co_await client.kind() == engine_kind::podman) co_return build_backend::buildah;
    if (wanted == builder::legacy) co_return build_backend::legacy;
    if (wanted == builder::automatic && carries_registry_credentials) co_return build_backend::legacy;
    if (wanted == builder::buildkit) co_return build_backend::buildkit;
    http::request ping{.method = verb::get, .target = "/_ping"};
    auto reply = co_await client.open(std::move(ping));
    auto version = reply.header("Builder-Version");
    auto os = reply.header("Ostype");
    co_await reply.read_all(4096);
    if (version == "2") co_return build_backend::buildkit;
    if (version == "1" || os == "windows") co_return build_backend::legacy;
    co_return build_backend::buildkit;
}

// BuildKit runs RUN steps on the engine's default bridge unless told otherwise; an engine started without one
// (dockerd --bridge=none) fails every RUN with "network bridge not found", where the legacy builder runs the step
// without a network. Detected from the engine's networks, so the same Dockerfile builds with either builder.
template <transport Transport>
boost::asio::awaitable<bool> lacks_default_bridge(client_core<Transport>& client) {
    try {
        co_await client.call(verb::get, "/networks/bridge");
        co_return false;
    } catch (const not_found_error&) { co_return true; }
}

// Runs a build and reads its output; the image id is empty when the engine named none.
template <transport Transport, http::body_source Source>
boost::asio::awaitable<built_image> run_build(client_core<Transport>& client, Source& context, build_options options,
                                              progress_callback events, build_progress text) {
    built_image result;
    result.backend = co_await choose_backend(client, options.builder, !options.registry_config.empty());
    bool network_none = false;
    if (result.backend == build_backend::buildkit && options.network_mode.empty())
        network_none = co_await lacks_default_bridge(client);
    http::request req{.method = verb::post,
                      .target = "/build" + build_query(options, result.backend, network_none),
                      .content_type = "application/x-tar"};
    json_progress_options stream_options;
    if (!options.registry_config.empty()) {
        req.headers.emplace_back("X-Registry-Config", registry_config_header(options.registry_config));
        req.secrets = stream_options.secrets = registry_secrets(options.registry_config);
    }
    auto reply = co_await client.open(std::move(req), &context);

    build_output_reader reader(result.backend, reply.endpoint(), std::move(events), std::move(text),
                               options.max_log_bytes);
    stream_options.max_line_bytes = options.max_line_bytes;
    stream_options.error_code = engine_errc::build_failed;
    co_await read_progress_stream(
        reply, [&reader](const progress_message& m) { reader.on_message(m); }, stream_options);
    reader.finish();
    result.id = reader.image_id();
    result.log_bytes_dropped = reader.log_bytes_dropped();
    result.log = reader.take_log();
    co_return result;
}

}  // namespace detail
}  // namespace berth
