#pragma once
// What pods_api::wait_for waits for and what it found: the target (running, finished, or the caller's condition),
// the outcome with Kubernetes' own reason and message, and judge_pod, which decides from one view of the pod.
#include <berth/kubernetes/pod.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace berth::kubernetes {

enum class pod_wait_outcome {
    running,        // phase Running (the default target)
    succeeded,      // phase Succeeded
    condition_met,  // the caller's `until` held
    failed,         // phase Failed, or a container that cannot start (ErrImageNeverPull, InvalidImageName, ...)
    unschedulable,  // PodScheduled=False, reason Unschedulable
    deleted,        // the pod is gone
};

// What a wait waits for (failures end it whatever the target).
enum class pod_wait_target {
    running,   // phase Running (or already Succeeded)
    finished,  // phase Succeeded (Failed ends it as a failure)
};

struct pod_wait_options {
    std::string namespace_name{};
    pod_wait_target target = pod_wait_target::running;
    // The longest the wait may take; zero: no limit (the caller asked to wait). Past it: kubernetes_error timeout.
    std::chrono::steady_clock::duration limit = std::chrono::minutes(5);
    // When set, the wait ends when it holds (condition_met) instead of at the target; failures end it all the same.
    std::function<bool(const pod&)> until{};
    // Keep waiting while the scheduler cannot place the pod (the cluster may grow); else that ends it at once.
    bool wait_while_unschedulable = false;
};

struct pod_wait_result {
    pod_wait_outcome outcome = pod_wait_outcome::running;
    pod current{};          // the pod as last seen
    std::string reason{};   // Kubernetes' own: Unschedulable, OOMKilled, Error, ErrImageNeverPull, ...
    std::string message{};  // and its text ("0/2 nodes are available: 2 Insufficient memory.")
    bool ok() const {
        return outcome == pod_wait_outcome::running || outcome == pod_wait_outcome::succeeded ||
               outcome == pod_wait_outcome::condition_met;
    }
};

namespace detail {

// Waiting reasons after which a restartPolicy Never container will not start by itself.
inline bool is_final_waiting_reason(std::string_view r) {
    return r == "ErrImageNeverPull" || r == "InvalidImageName" || r == "CreateContainerConfigError";
}

// Whether `p` ends the wait, and how.
inline std::optional<pod_wait_result> judge_pod(const pod& p, const pod_wait_options& o) {
    auto result = [&](pod_wait_outcome outcome, std::string reason, std::string message) {
        return pod_wait_result{
            .outcome = outcome, .current = p, .reason = std::move(reason), .message = std::move(message)};
    };
    if (o.until && o.until(p)) return result(pod_wait_outcome::condition_met, {}, {});
    if (p.phase == "Failed") {
        std::string reason = p.reason, message = p.message;
        for (auto& c : p.container_statuses)
            if (c.state.state == container_state::kind::terminated && reason.empty()) {
                reason = c.state.reason;
                if (message.empty())
                    message = "container " + c.name + " exited with " + std::to_string(c.state.exit_code) +
                              (c.state.message.empty() ? std::string() : ": " + c.state.message);
            }
        return result(pod_wait_outcome::failed, reason, message);
    }
    if (p.phase == "Succeeded") return result(pod_wait_outcome::succeeded, {}, {});
    if (auto* u = p.unschedulable(); u && !o.wait_while_unschedulable)
        return result(pod_wait_outcome::unschedulable, u->reason, u->message);
    for (auto& c : p.container_statuses)
        if (c.state.state == container_state::kind::waiting && is_final_waiting_reason(c.state.reason))
            return result(pod_wait_outcome::failed, c.state.reason, c.state.message);
    if (!o.until && o.target == pod_wait_target::running && p.phase == "Running")
        return result(pod_wait_outcome::running, {}, {});
    return std::nullopt;
}

}  // namespace detail

}  // namespace berth::kubernetes
