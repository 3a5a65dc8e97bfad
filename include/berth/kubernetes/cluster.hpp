#pragma once
// A Kubernetes cluster as build_container's target: the API server (a kube_client), the engine that builds the
// evaluation images and pushes them (the nodes cannot build), and the registry the nodes pull from. It also keeps
// what evaluations share: the images already distributed (built and pushed once per image, however many
// evaluations ask at once). The cluster objects of Swarm and Kubernetes are apart: what they share is the pipeline
// (eval/build_pipeline.hpp) and the image distribution (cluster/image_distribution.hpp).
#include <berth/detail/single_flight.hpp>
#include <berth/engine/client.hpp>
#include <berth/engine/credentials.hpp>
#include <berth/kubernetes/client.hpp>
#include <berth/kubernetes/names.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace berth::kubernetes {

struct kube_cluster_options {
    // host[:port] of the registry the builder pushes to and the nodes pull from (their container runtime must
    // trust it: scripts/registry and scripts/kubernetes set that up for the tests).
    std::string registry{};
    std::optional<registry_credentials> registry_auth{};  // for the push; the nodes pull with image_pull_secrets
    std::vector<std::string> image_pull_secrets{};        // Secrets (in the namespace) the nodes pull with
    std::string namespace_name{};                         // where evaluations run; empty: the client's
};

template <transport Transport>
class basic_kube_cluster {
public:
    basic_kube_cluster(basic_kube_client<Transport>& api, basic_client<Transport>& builder,
                       kube_cluster_options options)
        : api_(api), builder_(builder), options_(std::move(options)) {
        using detail::name_shape;
        if (!options_.namespace_name.empty())
            detail::check_name_argument(options_.namespace_name, name_shape::label, "kube_cluster_options namespace");
        for (auto& secret : options_.image_pull_secrets)
            detail::check_name_argument(secret, name_shape::subdomain, "kube_cluster_options image pull secret");
    }
    basic_kube_cluster(const basic_kube_cluster&) = delete;
    basic_kube_cluster& operator=(const basic_kube_cluster&) = delete;

    basic_kube_client<Transport>& api() noexcept { return api_; }
    basic_client<Transport>& builder() noexcept { return builder_; }
    const kube_cluster_options& options() const noexcept { return options_; }
    // The namespace evaluations run in.
    std::string namespace_name() const {
        return options_.namespace_name.empty() ? api_.connection().namespace_name : options_.namespace_name;
    }

    // `make` run once per key while it succeeds (concurrent callers wait for the first one's result); after a
    // failure the next caller tries again. For images built and pushed once.
    boost::asio::awaitable<std::string> once(const std::string& key,
                                             std::function<boost::asio::awaitable<std::string>()> make) {
        co_return co_await built_images_.once(key, std::move(make));
    }

private:
    basic_kube_client<Transport>& api_;
    basic_client<Transport>& builder_;
    kube_cluster_options options_;
    berth::detail::single_flight<std::string> built_images_{"waiting for an image"};
};

using kube_cluster = basic_kube_cluster<socket_transport>;

}  // namespace berth::kubernetes
