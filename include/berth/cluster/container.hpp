#pragma once
// The handle of a container on a cluster node: what build_container on a cluster returns. Besides what a one-engine
// handle has (the client of the engine it runs on, its id and name, so copies, exec and logs are the single-engine
// code, unchanged), it knows its Swarm service and node, and the cluster whose manager removes that service
// (cleanup_container). Cheap to copy; the cluster must outlive it.
#include <berth/cluster/errors.hpp>
#include <berth/cluster/node_transport.hpp>
#include <berth/eval/container.hpp>

#include <string>

namespace berth {

template <transport Transport>
class basic_cluster;

template <transport Transport>
struct basic_container<cluster_node_transport<Transport>> {
    basic_client<cluster_node_transport<Transport>>* client = nullptr;  // the engine of the node the task runs on
    std::string id;                                                     // the task's container there
    std::string name;                                                   // used only in logs
    std::string service_id;                     // the task's service; empty: read from the container's label
    node_identity node{};                       // the node the task runs on
    basic_cluster<Transport>* owner = nullptr;  // the cluster whose manager runs the service

    basic_client<cluster_node_transport<Transport>>& engine() const { return *client; }
};

}  // namespace berth
