#pragma once
// A harness's evaluations on Kubernetes, found by label: every pod build_container made carries the caller's labels,
// so a run label (`berth-run=<id>`) finds them all. cleanup_evaluations removes what a crashed run left behind: it
// deletes the pods by label selector with their grace period, waits (bounded) until their nodes report them
// stopped, removes those objects at once, then deletes at once what is left and names the nodes that did not report
// (their containers may run on until those nodes return).
#include <berth/detail/poll.hpp>
#include <berth/eval/logger.hpp>
#include <berth/kubernetes/cluster.hpp>
#include <berth/kubernetes/evaluation_errors.hpp>
#include <berth/kubernetes/pod_removal.hpp>
#include <berth/kubernetes/pods.hpp>

#include <chrono>
#include <set>

namespace berth::kubernetes {

// The pods carrying `label_selector` in the cluster's namespace ("berth-run=r1"; any selector the API takes).
template <transport Transport>
boost::asio::awaitable<std::vector<pod>> list_evaluations(basic_kube_cluster<Transport>& cluster,
                                                          std::string label_selector) {
    if (label_selector.empty()) throw invalid_argument_error("berth: list_evaluations needs a label selector");
    pod_list_all_options all;
    all.list.namespace_name = cluster.namespace_name();
    all.list.label_selector = std::move(label_selector);
    auto found = co_await cluster.api().pods().list_all(std::move(all));
    co_return std::move(found.items);
}

struct evaluations_cleanup_options {
    std::int64_t grace_period_seconds = 1;  // SIGTERM, then SIGKILL after this long
    // How long the nodes have to confirm their pods stopped before what is left is deleted at once.
    std::chrono::steady_clock::duration confirm_limit = std::chrono::seconds(20);
    std::shared_ptr<logger> log{};  // default: the thread's logger
};

struct kube_evaluations_cleanup_report {
    std::size_t pods_removed = 0;              // confirmed stopped by their nodes, then deleted
    std::vector<std::string> unconfirmed{};    // deleted at once: their node did not confirm in time
    std::vector<node_identity> unreachable{};  // the nodes of those pods
    bool complete() const noexcept { return unconfirmed.empty(); }
};

template <transport Transport>
boost::asio::awaitable<kube_evaluations_cleanup_report> cleanup_evaluations(basic_kube_cluster<Transport>& cluster,
                                                                            std::string label_selector,
                                                                            evaluations_cleanup_options options) {
    if (label_selector.empty())
        throw invalid_argument_error("berth: cleanup_evaluations needs a label selector (an empty one is every pod)");
    if (options.grace_period_seconds < 0)
        throw invalid_argument_error("berth: evaluations_cleanup_options grace_period_seconds is negative");
    auto log = resolve_logger(options.log);
    auto& pods = cluster.api().pods();
    const auto ns = cluster.namespace_name();
    kube_evaluations_cleanup_report report;
    co_await pods.remove_collection(
        label_selector, pod_delete_options{.namespace_name = ns, .grace_period_seconds = options.grace_period_seconds});
    // Each node reports its pods' containers ended; then the objects go at once (a 1.20 kubelet takes up to 10 s
    // more to remove them itself).
    std::vector<pod> running;
    auto all_ended = [&]() -> boost::asio::awaitable<bool> {
        running.clear();
        for (auto& p : co_await list_evaluations(cluster, label_selector)) {
            if (detail::has_ended(p)) {
                co_await detail::remove_at_once(pods, ns, p.name, p.uid);
                ++report.pods_removed;
            } else {
                running.push_back(std::move(p));
            }
        }
        co_return running.empty();
    };
    const auto deadline = std::chrono::steady_clock::now() + options.confirm_limit;
    const berth::detail::poll_policy policy{.first = std::chrono::milliseconds(20),
                                            .max = std::chrono::milliseconds(500)};
    co_await berth::detail::poll_until(all_ended, policy, deadline);
    std::set<std::string> nodes;
    for (auto& p : running) {
        co_await detail::remove_at_once(pods, ns, p.name, p.uid);
        report.unconfirmed.push_back(p.name);
        if (!p.node_name.empty() && nodes.insert(p.node_name).second)
            report.unreachable.push_back(kube_node(p.node_name));
        log->warning("Pod " + p.name + " deleted at once: " +
                     (p.node_name.empty() ? std::string("it was never scheduled")
                                          : kube_node(p.node_name).describe() + " did not report it stopped"));
    }
    log->info("Removed " + std::to_string(report.pods_removed + report.unconfirmed.size()) + " pods labelled " +
              label_selector);
    co_return report;
}

template <transport Transport>
boost::asio::awaitable<kube_evaluations_cleanup_report> cleanup_evaluations(basic_kube_cluster<Transport>& cluster,
                                                                            std::string label_selector) {
    return cleanup_evaluations(cluster, std::move(label_selector), evaluations_cleanup_options{});
}

}  // namespace berth::kubernetes
