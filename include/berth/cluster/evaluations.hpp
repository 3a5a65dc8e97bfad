#pragma once
// A harness's evaluations on a cluster, found by label: every service build_container made carries the caller's
// labels, on the service and on its container, so a run label (`berth.run=<id>`) finds them all on the manager
// and on each node's engine. cleanup_evaluations removes what a crashed run left behind: its services (Swarm
// then removes their containers) and any container with the label still on a node it can reach; the nodes it
// cannot reach are reported, not skipped silently.
#include <berth/cluster/cluster.hpp>
#include <berth/eval/logger.hpp>

namespace berth {

struct cluster_evaluation {
    swarm_service service;
    std::vector<swarm_task> tasks;  // its tasks as the manager knows them (node, state, container)
};

// The services carrying `label` ("key=value", or "key" for any value), with their tasks.
template <transport Transport>
boost::asio::awaitable<std::vector<cluster_evaluation>> list_evaluations(basic_cluster<Transport>& swarm_cluster,
                                                                         std::string label) {
    swarm_filters by_label{{"label", {label}}};
    auto services = co_await swarm_cluster.swarm().list_services(by_label);
    std::vector<cluster_evaluation> out;
    for (auto& s : services) {
        swarm_filters of_service{{"service", {s.id}}};
        auto tasks = co_await swarm_cluster.swarm().list_tasks(of_service);
        out.push_back(cluster_evaluation{std::move(s), std::move(tasks)});
    }
    co_return out;
}

struct evaluations_cleanup_report {
    std::size_t services_removed = 0;
    std::size_t containers_removed = 0;        // removed directly on a node (Swarm had not yet)
    std::vector<node_identity> unreachable{};  // nodes whose engine could not be asked (down, or no address)
};

template <transport Transport>
boost::asio::awaitable<evaluations_cleanup_report> cleanup_evaluations(basic_cluster<Transport>& swarm_cluster,
                                                                       std::string label,
                                                                       std::shared_ptr<logger> log = {}) {
    log = resolve_logger(std::move(log));
    evaluations_cleanup_report report;
    swarm_filters by_label{{"label", {label}}};
    auto services = co_await swarm_cluster.swarm().list_services(by_label);
    for (auto& s : services) {
        try {
            co_await swarm_cluster.swarm().remove_service(s.id);
            ++report.services_removed;
            log->info("Removed service " + s.name);
        } catch (const not_found_error&) {
            // removed meanwhile
        }
    }
    container_list_options mine;
    mine.all = true;
    mine.filters["label"] = {label};
    auto nodes = co_await swarm_cluster.swarm().list_nodes();
    for (auto& n : nodes) {
        if (n.state != "ready") {
            report.unreachable.push_back(node_identity{n.id, n.hostname, {}});
            continue;
        }
        std::optional<node_identity> failed;
        try {
            auto* node = co_await swarm_cluster.node(n.id);
            auto left = co_await node->containers().list(mine);
            for (auto& c : left) {
                try {
                    container_remove_options forced;
                    forced.force = true;
                    co_await node->containers().remove(c.id, forced);
                    ++report.containers_removed;
                } catch (const not_found_error&) {
                    // Swarm removed it meanwhile
                } catch (const conflict_error&) {
                    // 409 "removal of container ... is already in progress": Swarm is removing it right now
                }
            }
        } catch (const node_unreachable_error& e) { failed = e.node(); } catch (const node_address_error& e) {
            failed = e.node();
        }
        if (failed) {
            log->warning("Cannot clean up on " + failed->describe());
            report.unreachable.push_back(*failed);
        }
    }
    co_return report;
}

}  // namespace berth
