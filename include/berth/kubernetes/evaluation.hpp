#pragma once
// The handle build_container returns on Kubernetes: one pod of one evaluation, with the cluster it runs on. exec,
// copy_to_container, copy_from_container, evaluation_logs and cleanup_container take it as they take a container
// handle on one engine (kubernetes/evaluation_ops.hpp); they go through the API server (pods/exec over WebSocket,
// pods/log), and name the node when the API server cannot reach its kubelet.
#include <berth/kubernetes/cluster.hpp>
#include <berth/kubernetes/evaluation_errors.hpp>
#include <berth/kubernetes/exec.hpp>

#include <string>

namespace berth::kubernetes {

template <transport Transport>
struct basic_pod_evaluation {
    basic_kube_cluster<Transport>* owner = nullptr;  // the cluster it runs on (outlives the handle)
    std::string namespace_name{};
    std::string name{};              // the pod's (build_container_options::container_name)
    std::string container = "main";  // the pod's one container
    std::string node{};              // the node it runs on
    std::string uid{};               // the pod's uid: a later pod of the same name is another one

    basic_kube_cluster<Transport>& cluster() const {
        if (owner == nullptr) throw invalid_argument_error("berth: the pod_evaluation handle names no cluster (owner)");
        return *owner;
    }
    pod_container where() const { return pod_container{namespace_name, name, container}; }
};

using pod_evaluation = basic_pod_evaluation<socket_transport>;

namespace detail {

// Runs `op` (an exec or a copy through the API server); a refusal because the API server cannot reach the pod's
// kubelet becomes a node_unreachable_error naming the node.
template <transport Transport, class Op>
auto through_node(const basic_pod_evaluation<Transport>& e, Op op) -> decltype(op()) {
    std::optional<kubernetes_error> unreachable;
    try {
        co_return co_await op();
    } catch (const kubernetes_error& k) {
        if (!is_kubelet_unreachable(k)) throw;
        unreachable = k;
    }
    throw node_unreachable_error(kube_node(e.node), *unreachable);
}

}  // namespace detail
}  // namespace berth::kubernetes
