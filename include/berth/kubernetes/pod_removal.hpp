#pragma once
// Removing an evaluation's pod without the wait a kubelet adds: once its node reports every container ended, the
// object is deleted at once (grace period 0); a 1.20 kubelet would take up to 10 s more (its status manager's
// sync period) to remove it itself. For cleanup_container and cleanup_evaluations.
#include <berth/kubernetes/pods.hpp>

#include <string>

namespace berth::kubernetes::detail {

// Every container of the pod has ended (or the pod has): what the node reports once it has stopped them.
inline bool has_ended(const pod& p) {
    if (p.phase == "Succeeded" || p.phase == "Failed") return true;
    if (p.container_statuses.empty()) return false;
    for (auto& c : p.container_statuses)
        if (c.state.state != container_state::kind::terminated) return false;
    return true;
}

// Deletes the pod's object at once (grace period 0), unless it is gone or is another pod of the same name by now.
template <transport Transport>
boost::asio::awaitable<void> remove_at_once(pods_api<Transport>& pods, const std::string& ns, const std::string& name,
                                            const std::string& uid) {
    try {
        auto now = co_await pods.get(name, pod_get_options{.namespace_name = ns});
        if (!uid.empty() && now.uid != uid) co_return;
        co_await pods.remove(name, pod_delete_options{.namespace_name = ns, .grace_period_seconds = 0});
    } catch (const kubernetes_error& k) {
        if (k.code() != kubernetes_errc::not_found) throw;
    }
}

}  // namespace berth::kubernetes::detail
