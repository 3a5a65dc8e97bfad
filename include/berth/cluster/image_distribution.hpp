#pragma once
// How an evaluation image reaches every node: built once on one engine, pushed to the cluster's registry, and
// named by its digest (`127.0.0.1:5000/app@sha256:...`) so every node runs the same bytes, whatever a tag points
// to by the time it pulls.
//
// The repository travels inside the image. One engine bind-mounts it at /<mount_name>; a bind mount cannot span
// machines, so the pushed image is the evaluation image (built from the repository's Dockerfile as on one engine,
// or pull_image) plus one layer holding the repository at /<mount_name>: `FROM <image>` + `COPY repo
// /<mount_name>`, built from a context of that Dockerfile and the repository's whole tree (no .dockerignore: it
// shapes the image build, and the mount showed everything). Every node pulls that layer once, however many
// evaluations it runs, where copying the repository into each container at start would send it once per
// evaluation.
#include <berth/engine/client.hpp>
#include <berth/engine/image_reference.hpp>
#include <berth/eval/build_pipeline.hpp>
#include <berth/tar/packer.hpp>
#include <berth/tar/writer.hpp>

#include <functional>
#include <optional>
#include <span>
#include <string>

namespace berth {
namespace detail {

// A build context: a generated Dockerfile at the root, then a packed tree (whose end-of-archive ends it too).
template <class Rest>
class context_with_dockerfile {
public:
    context_with_dockerfile(std::string_view dockerfile_name, std::string_view dockerfile, Rest& rest) : rest_(rest) {
        tar::entry e;
        e.name = std::string(dockerfile_name);
        e.size = dockerfile.size();
        e.mode = 0644;
        tar::encode_header(e, head_);
        head_ += dockerfile;
        head_.append(tar::padding_after(dockerfile.size()), '\0');
    }
    std::size_t read(std::span<char> out) {
        if (pos_ < head_.size()) {
            auto n = std::min(out.size(), head_.size() - pos_);
            std::copy_n(head_.data() + pos_, n, out.data());
            pos_ += n;
            return n;
        }
        return rest_.read(out);
    }

private:
    std::string head_{};
    std::size_t pos_ = 0;
    Rest& rest_;
};

// The registry name of an evaluation image: <registry>/<image_name>.
inline std::string cluster_image_name(const std::string& registry, const std::string& image_name) {
    return registry + "/" + image_name;
}

}  // namespace detail

// Builds (when needed) and pushes the image an evaluation of `options` runs on a cluster, on `builder`'s engine;
// returns its digest reference. The evaluation image itself follows the one-engine rules (detail::ensure_image:
// built from repo_path only when its tag is missing or force_rebuild; pull_image as given); the repository layer
// is always built (the engine's build cache makes an unchanged tree cheap) and pushed (layers the registry has are
// not sent again).
template <transport Transport>
boost::asio::awaitable<std::string> distribute_image(basic_client<Transport>& builder,
                                                     const build_container_options& options,
                                                     const std::string& registry, push_options push, logger& log) {
    const bool verbose = options.verbose;
    std::string base = options.pull_image;  // the layer's FROM pulls it, with pull_image_options.credentials
    if (base.empty()) {
        // a named string: g++ 12 destroys a conditional's temporary passed by value to a coroutine twice
        std::string build_network = options.network_mode.empty() ? "none" : options.network_mode;
        base = co_await detail::ensure_image(builder, options, log, std::move(build_network));
    }
    const std::string mount_name = detail::mount_name_of(options);
    const auto target = parse_image_reference(detail::cluster_image_name(registry, options.image_name));
    tar::packer tree(options.repo_path, "repo");
    const std::string dockerfile = "FROM " + base + "\nCOPY repo /" + mount_name + "\n";
    detail::context_with_dockerfile<tar::packer> context(".berth-cluster.Dockerfile", dockerfile, tree);
    build_options layer;
    layer.tag = target.str();
    layer.dockerfile = ".berth-cluster.Dockerfile";
    layer.force_remove_intermediate = true;
    layer.network_mode = "none";
    if (!options.pull_image.empty() && options.pull_image_options.credentials) {
        auto from = parse_image_reference(options.pull_image);
        layer.registry_config[from.registry] = *options.pull_image_options.credentials;
    }
    auto built = co_await builder.images().build(context, layer);
    if (verbose) log.info("Image " + target.str() + " with the repository at /" + mount_name + " built: " + built.id);
    auto pushed = co_await builder.images().push(target.str(), push);
    if (!detail::is_sha256_digest(pushed.digest))
        throw protocol_error("POST /images/" + target.name + "/push",
                             "the pushed digest " + detail::quote_engine_text(pushed.digest) + " is not sha256:<hex>");
    auto pinned = target.name + "@" + pushed.digest;
    if (verbose) log.info("Image pushed: " + pinned);
    co_return pinned;
}

// distribute_image once per image (name, repository, pull_image, mount, rebuild) among the callers of one cluster:
// `images_of.once(key, make)` (a cluster) shares one flight between concurrent evaluations and keeps its result.
template <class Cluster, transport Transport>
boost::asio::awaitable<std::string> distribute_image_once(Cluster& images_of, basic_client<Transport>& builder,
                                                          const build_container_options& options,
                                                          const std::string& registry,
                                                          const std::optional<registry_credentials>& registry_auth,
                                                          logger& log) {
    push_options push;
    if (registry_auth) push.credentials = registry_auth;
    const std::string key = options.image_name + "\n" + options.repo_path + "\n" + options.pull_image + "\n" +
                            detail::mount_name_of(options) + (options.force_rebuild ? "\nno-cache" : "");
    std::function<boost::asio::awaitable<std::string>()> distribute = [&builder, &options, &registry, push, &log] {
        return distribute_image(builder, options, registry, push, log);  // named: g++ 12 (docs/guide.md)
    };
    co_return co_await images_of.once(key, std::move(distribute));
}

}  // namespace berth
