#pragma once
// basic_cluster<Transport>: a Docker Swarm cluster as berth drives it. The manager's client (Swarm's API: services,
// tasks, nodes) plus the way to reach each node's own engine, where a task's container runs and where copies,
// exec and logs go. A node's engine is found by its node label (default `berth.engine=tcp://127.0.0.2:2376`,
// reached with the manager's TLS material) or in an explicit map; its client is made on first use, kept, and
// shared by every handle on that node. The label comes from an engine reply: it is parsed as a tcp:// address
// (parse_docker_host) and nothing else is accepted, so a label can neither name a local socket nor start a program.
//
// The cluster also keeps what evaluations share: the images already distributed (built and pushed once per image
// name). It lives at a fixed address (neither copied nor moved): handles and coroutines refer to it, and it must
// outlive its handles.
#include <berth/cluster/container.hpp>
#include <berth/cluster/node_transport.hpp>
#include <berth/detail/single_flight.hpp>
#include <berth/engine/client.hpp>
#include <berth/engine/credentials.hpp>
#include <berth/eval/container.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

namespace berth {

struct cluster_options {
    // host:port of the registry every node pulls from (and this program's build engine pushes to). Needed by
    // build_container; the images' names are <registry>/<image_name>.
    std::string registry{};
    // Credentials for that registry: used for the push and handed to Swarm (X-Registry-Auth) for the nodes'
    // pulls. Empty: the push uses what the docker CLI would, the nodes their own.
    std::optional<registry_credentials> registry_auth{};
    // The node label holding the node's engine address.
    std::string engine_label = "berth.engine";
    // TLS material for the nodes' engines; empty: the manager's own (a socket_transport manager's endpoint).
    std::optional<tls_options> node_tls{};
    // Explicit engines by node id or hostname; a node found here does not need the label.
    std::map<std::string, engine_endpoint> node_endpoints{};
    // The options of each node's client.
    client_options node_client{};
};

template <transport Transport>
class basic_cluster {
public:
    using node_transport_type = cluster_node_transport<Transport>;
    using node_client_type = basic_client<node_transport_type>;
    using container_type = basic_container<node_transport_type>;  // cluster/container.hpp
    // Makes the transport to a node's engine from its endpoint (the default: a socket_transport to it).
    using node_connector = std::function<Transport(const engine_endpoint&, const swarm_node&)>;

    basic_cluster(basic_client<Transport> manager, cluster_options options, node_connector connect = {})
        : manager_(std::move(manager)), options_(std::move(options)),
          connect_(connect ? std::move(connect) : default_connector()) {}
    basic_cluster(const basic_cluster&) = delete;
    basic_cluster& operator=(const basic_cluster&) = delete;

    // The manager at `endpoint` (with TLS material: nodes are reached with the same unless options.node_tls).
    static basic_cluster at(boost::asio::any_io_executor ex, engine_endpoint endpoint,
                            cluster_options options) requires std::same_as<Transport, socket_transport> {
        return basic_cluster(basic_client<Transport>::at(std::move(ex), std::move(endpoint)), std::move(options));
    }

    basic_client<Transport>& manager() { return manager_; }
    swarm_api<Transport>& swarm() { return manager_.swarm(); }
    const cluster_options& options() const { return options_; }

    // The client of a node's own engine (never null), made on first use. Throws node_address_error when the node has no usable
    // engine address, and what inspecting the node on the manager throws (not_found_error for an unknown node).
    boost::asio::awaitable<node_client_type*> node(std::string node_id) {
        {
            std::lock_guard lock(mutex_);
            if (auto it = nodes_.find(node_id); it != nodes_.end()) co_return it->second.get();
        }
        auto n = co_await manager_.swarm().inspect_node(node_id);
        node_identity who{n.id, n.hostname, {}};
        auto endpoint = endpoint_for(n, who);
        who.address = endpoint.to_string();
        auto made = std::make_unique<node_client_type>(node_transport_type(connect_(endpoint, n), who),
                                                       options_.node_client);
        std::lock_guard lock(mutex_);
        auto [it, inserted] = nodes_.try_emplace(node_id, std::move(made));  // a concurrent first use may have won
        co_return it->second.get();
    }

    // Counts the build_container calls waiting for their task at this moment (they share the manager's time).
    class task_wait {
    public:
        explicit task_wait(std::atomic<std::size_t>& n) : n_(&n) { ++*n_; }
        task_wait(task_wait&& o) noexcept : n_(std::exchange(o.n_, nullptr)) {}
        task_wait& operator=(task_wait&&) = delete;
        ~task_wait() {
            if (n_) --*n_;
        }
        std::size_t count() const { return n_->load(); }

    private:
        std::atomic<std::size_t>* n_;
    };
    task_wait count_task_wait() { return task_wait(tasks_waited_for_); }

    // `make` run once per key while it succeeds: concurrent callers with the same key wait for the first one's
    // result (or its exception); after a failure the next caller tries again. For images built and pushed once.
    boost::asio::awaitable<std::string> once(const std::string& key,
                                             std::function<boost::asio::awaitable<std::string>()> make) {
        co_return co_await built_images_.once(key, std::move(make));
    }

private:
    engine_endpoint endpoint_for(const swarm_node& n, const node_identity& who) {
        for (const std::string* key : {&n.id, &n.hostname})
            if (auto it = options_.node_endpoints.find(*key); it != options_.node_endpoints.end()) return it->second;
        auto label = n.labels.find(options_.engine_label);
        if (label == n.labels.end())
            throw node_address_error(who, "no '" + options_.engine_label +
                                              "' node label and no entry in cluster_options.node_endpoints");
        engine_endpoint ep;
        try {
            ep.address = parse_docker_host(label->second, docker_tls_port);
        } catch (const invalid_host& e) {
            throw node_address_error(who, "the '" + options_.engine_label + "' label: " + e.what());
        }
        if (ep.address.scheme != host_address::kind::tcp)
            throw node_address_error(who, "the '" + options_.engine_label + "' label " +
                                              detail::quote_engine_text(label->second) + " is not a tcp:// address");
        if (options_.node_tls)
            ep.tls = *options_.node_tls;
        else if constexpr (std::same_as<Transport, socket_transport>)
            ep.tls = manager_.transport().endpoint().tls;
        return ep;
    }

    node_connector default_connector() {
        if constexpr (std::constructible_from<Transport, boost::asio::any_io_executor, engine_endpoint>) {
            auto ex = manager_.get_executor();
            return [ex](const engine_endpoint& ep, const swarm_node&) { return Transport(ex, ep); };
        } else {
            return [](const engine_endpoint&, const swarm_node& n) -> Transport {
                throw invalid_argument_error("berth: basic_cluster needs a node_connector to reach node " + n.id);
            };
        }
    }

    basic_client<Transport> manager_;
    cluster_options options_;
    node_connector connect_;
    mutable std::mutex mutex_{};
    std::map<std::string, std::unique_ptr<node_client_type>> nodes_{};
    detail::single_flight<std::string> built_images_{"waiting for an image"};
    std::atomic<std::size_t> tasks_waited_for_{0};
};

using cluster = basic_cluster<socket_transport>;

}  // namespace berth
