#pragma once
// Errors of an evaluation on Kubernetes that a harness acts on: a pod that never came to run (Kubernetes' own reason:
// Unschedulable, OOMKilled, ErrImagePull..., and the node it was on), and a node whose kubelet the API server cannot
// reach (berth's node_unreachable_error, naming the node, as on Swarm).
#include <berth/cluster/errors.hpp>
#include <berth/kubernetes/error.hpp>

#include <string>

namespace berth::kubernetes {

// A node as the messages name it: its name (kubelets register by hostname or address) and its kubelet's address.
inline node_identity kube_node(const std::string& node_name) { return node_identity{node_name, node_name, {}}; }

// A pod build_container made did not come to run. code(): kubernetes_errc::unschedulable (the scheduler's reason,
// at once unless the options ask to wait), pod_failed (it ended, or can never start: ErrImagePull,
// ErrImageNeverPull, ...), timeout (still not running when the time allowed was up), not_found (deleted meanwhile).
class pod_start_error : public error {
public:
    pod_start_error(kubernetes_errc code, std::string pod, std::string phase, std::string reason, std::string message,
                    std::string node)
        : error(code, format(code, pod, phase, reason, message, node)), pod_(std::move(pod)), phase_(std::move(phase)),
          reason_(std::move(reason)), message_(std::move(message)), node_(std::move(node)) {}

    const std::string& pod() const noexcept { return pod_; }
    const std::string& phase() const noexcept { return phase_; }      // Pending, Failed, ...
    const std::string& reason() const noexcept { return reason_; }    // Kubernetes' word
    const std::string& message() const noexcept { return message_; }  // Kubernetes' text
    const std::string& node() const noexcept { return node_; }        // empty when never scheduled

private:
    static std::string format(kubernetes_errc code, const std::string& pod, const std::string& phase,
                              const std::string& reason, const std::string& message, const std::string& node) {
        std::string what = "pod " + pod + ": ";
        what += code == kubernetes_errc::unschedulable ? "Kubernetes cannot schedule it"
                : code == kubernetes_errc::timeout     ? "still " + (phase.empty() ? std::string("not created") : phase)
                : code == kubernetes_errc::not_found
                    ? "deleted before it ran"
                    : "it failed" + (phase.empty() ? std::string() : " (" + phase + ")");
        if (!node.empty()) what += " on " + kube_node(node).describe();
        if (!reason.empty()) what += ": " + reason;
        return what + (message.empty() ? std::string() : (reason.empty() ? ": " : ", ") + message);
    }
    std::string pod_, phase_, reason_, message_, node_;
};

namespace detail {

// The API server's text when it cannot open a stream to a node's kubelet (exec, attach, port-forward, logs): the
// kubelet is down or unreachable (k8s.io/apimachinery's proxy: "error dialing backend: dial tcp ...").
inline bool is_kubelet_unreachable(const kubernetes_error& e) {
    return e.status() >= 500 && e.message().find("error dialing backend") != std::string::npos;
}

}  // namespace detail
}  // namespace berth::kubernetes
