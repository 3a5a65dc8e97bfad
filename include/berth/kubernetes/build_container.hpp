#pragma once
// build_container on a Kubernetes cluster: the image built once on the cluster's builder engine, with the
// repository as a layer at /<mount_name>, pushed to the cluster's registry and named by its digest (as on Swarm:
// cluster/image_distribution.hpp); then one Pod per evaluation (restartPolicy Never, requests and limits, node
// selector, affinity, topology spread, tolerations, nvidia.com/gpu with the one-engine fallback rule, the caller's
// labels, a one-second grace period, `tail -f /dev/null` with the pod's pause process as its init), watched (not
// polled) until it runs, cannot be scheduled (Kubernetes' reason, at once unless wait_for_resources), or fails.
// Every failure is an empty result whose failure() holds the reason (a pod_start_error, or the API server's
// kubernetes_error), with the pod removed: also when the create's reply never came (found by the call's label).
// The steps common to every backend are eval/build_pipeline.hpp's; this is the Kubernetes backend.
#include <berth/cluster/image_distribution.hpp>
#include <berth/detail/poll.hpp>
#include <berth/eval/build_pipeline.hpp>
#include <berth/kubernetes/evaluation.hpp>
#include <berth/kubernetes/pods.hpp>

#include <chrono>

namespace berth::kubernetes {

struct kube_build_options : build_container_options {
    // Where it may run: the counterparts of the Swarm options' constraints and spread preferences.
    std::map<std::string, std::string> node_selector{};         // {"kubernetes.io/hostname", "node-2"}, node labels
    std::vector<node_selector_term> required_node_affinity{};   // requiredDuringScheduling...
    std::vector<topology_spread_constraint> topology_spread{};  // match_labels empty: the pod's own labels
    std::vector<toleration> tolerations{};
    // Requests: what the scheduler sets aside (memory_bytes and nano_cpus are the limits; a limit without a
    // request makes Kubernetes request as much).
    std::int64_t reserve_memory_bytes = 0;
    std::int64_t reserve_nano_cpus = 0;
    std::map<std::string, std::string> extended_resources{};  // requested and limited: {"example.com/fpga", "1"}
    std::string gpu_resource = "nvidia.com/gpu";              // with request_gpus: gpu_count of it
    int gpu_count = 1;
    bool wait_for_resources = false;  // an unschedulable pod waits (for others to end) instead of failing at once
    std::chrono::steady_clock::duration start_timeout = std::chrono::minutes(2);  // until the pod runs
    std::int64_t termination_grace_period_seconds = 1;
    std::string image_pull_policy = "IfNotPresent";  // the image is named by its digest: present means the same
};

// The label a network_mode "none" evaluation carries, for a NetworkPolicy that denies it all traffic (Kubernetes has
// no per-pod "no network"; the policy is the cluster's, and needs a network plugin that enforces policies).
inline constexpr const char* network_none_label = "berth.network";

// CPU as Kubernetes quantities: nano-CPUs rounded up to millicores.
inline std::string cpu_quantity(std::int64_t nano_cpus) {
    return std::to_string((nano_cpus + 999'999) / 1'000'000) + "m";
}

// The Pod build_container creates for `o` running `image` (exposed so callers and tests can see exactly what is
// asked of Kubernetes). Throws invalid_argument_error for options Kubernetes has no counterpart of.
inline pod_spec evaluation_pod_spec(const kube_build_options& o, const std::string& image, bool gpu,
                                    const std::vector<std::string>& image_pull_secrets = {}) {
    detail::check_name_argument(o.container_name, detail::name_shape::subdomain, "container_name (the pod's name)");
    if (o.pids_limit)
        throw invalid_argument_error("berth: pids_limit has no per-pod counterpart on Kubernetes (the kubelet's "
                                     "podPidsLimit sets it per node)");
    if (!o.network_mode.empty() && o.network_mode != "none")
        throw invalid_argument_error("berth: network_mode " + berth::detail::quote_outside_text(o.network_mode) +
                                     " has no counterpart on Kubernetes (a pod is on the cluster's network; \"none\" "
                                     "labels it for a deny-all NetworkPolicy)");
    if (o.memory_bytes < 0 || o.nano_cpus < 0 || o.reserve_memory_bytes < 0 || o.reserve_nano_cpus < 0)
        throw invalid_argument_error("berth: memory and CPU limits and reservations cannot be negative");
    if (gpu && o.gpu_count < 1) throw invalid_argument_error("berth: gpu_count must be at least 1");
    if (o.termination_grace_period_seconds < 0)
        throw invalid_argument_error("berth: termination_grace_period_seconds is negative");
    pod_spec s;
    s.name = o.container_name;
    s.labels = o.labels;
    if (o.network_mode == "none") s.labels[network_none_label] = "none";
    s.image = image;
    s.command = {"tail", "-f", "/dev/null"};
    for (auto& kv : o.env) s.env.push_back(parse_env_entry(kv));
    if (o.memory_bytes > 0) s.resources.limits["memory"] = std::to_string(o.memory_bytes);
    if (o.nano_cpus > 0) s.resources.limits["cpu"] = cpu_quantity(o.nano_cpus);
    if (o.reserve_memory_bytes > 0) s.resources.requests["memory"] = std::to_string(o.reserve_memory_bytes);
    if (o.reserve_nano_cpus > 0) s.resources.requests["cpu"] = cpu_quantity(o.reserve_nano_cpus);
    for (auto& [name, count] : o.extended_resources) s.resources.limits[name] = count;  // requests follow limits
    if (gpu) s.resources.limits[o.gpu_resource] = std::to_string(o.gpu_count);
    s.image_pull_policy = o.image_pull_policy;
    s.termination_grace_period_seconds = o.termination_grace_period_seconds;
    s.node_selector = o.node_selector;
    s.required_node_affinity = o.required_node_affinity;
    s.topology_spread = o.topology_spread;
    for (auto& t : s.topology_spread)
        if (t.match_labels.empty()) t.match_labels = o.labels;
    s.tolerations = o.tolerations;
    // The pause process is PID 1 of a pod sharing its process namespace: it reaps what the evaluation orphans.
    if (o.init) s.extra["spec"] = boost::json::object{{"shareProcessNamespace", true}};
    if (!image_pull_secrets.empty()) {
        boost::json::array secrets;
        for (auto& name : image_pull_secrets) secrets.push_back(boost::json::object{{"name", name}});
        auto& spec = s.extra["spec"];
        if (!spec.is_object()) spec = boost::json::object{};
        spec.as_object()["imagePullSecrets"] = std::move(secrets);
    }
    return s;
}

namespace detail {

using berth::detail::build_call_label;
using berth::detail::build_step;
using berth::detail::classify_build_failure;

inline kubernetes_errc start_error_code(pod_wait_outcome outcome) {
    switch (outcome) {
    case pod_wait_outcome::unschedulable: return kubernetes_errc::unschedulable;
    case pod_wait_outcome::deleted: return kubernetes_errc::not_found;
    default: return kubernetes_errc::pod_failed;
    }
}

// What a pending pod is waiting for, from its container's state (ContainerCreating, ImagePullBackOff: ...).
inline std::string waiting_text(const pod& p) {
    for (auto& c : p.container_statuses)
        if (c.state.state == container_state::kind::waiting && !c.state.reason.empty())
            return c.state.reason + (c.state.message.empty() ? std::string() : ": " + c.state.message);
    return {};
}

inline build_failure classify_kube_failure(std::exception_ptr error, build_step step, std::string message) {
    auto f = classify_build_failure(error, step, std::move(message));
    using enum build_failure_reason;
    try {
        std::rethrow_exception(error);
    } catch (const pod_start_error& e) {
        f.reason = e.code() == kubernetes_errc::timeout ? engine_unreachable : engine_refused;
    } catch (const kubernetes_error& e) {
        f.reason = e.code() == kubernetes_errc::invalid          ? invalid_options
                   : e.code() == kubernetes_errc::already_exists ? name_conflict
                   : e.code() == kubernetes_errc::timeout        ? engine_unreachable
                   : step == build_step::image                   ? image_build_failed
                                                                 : engine_refused;
    } catch (...) {}
    return f;
}

// build_container's steps on Kubernetes: one Pod per evaluation (placement_backend).
template <transport Transport>
class kube_placement {
public:
    using handle_type = basic_pod_evaluation<Transport>;

    kube_placement(basic_kube_cluster<Transport>& cluster, const kube_build_options& options, logger& log)
        : cluster_(cluster), options_(options), log_(log), namespace_(cluster.namespace_name()) {}

    boost::asio::awaitable<void> check_engine() {
        if (cluster_.options().registry.empty())
            throw invalid_argument_error("kube_cluster_options.registry is empty: the nodes pull the image from there");
        evaluation_pod_spec(options_, "image", options_.request_gpus, cluster_.options().image_pull_secrets);
        // the API server answers and lets us list pods here, before an image is built for nothing
        const pod_list_options one{.namespace_name = namespace_, .limit = 1};  // named: g++ 12 (docs/guide.md)
        co_await cluster_.api().pods().list(one);
        co_await cluster_.builder().version();
    }
    // Built and pushed once per image (and repository, mount, rebuild), however many evaluations ask at once.
    boost::asio::awaitable<std::string> prepare_image() {
        co_return co_await distribute_image_once(cluster_, cluster_.builder(), options_, cluster_.options().registry,
                                                 cluster_.options().registry_auth, log_);
    }
    boost::asio::awaitable<bool> remove_existing() {
        try {
            co_await cluster_.api().pods().get(options_.container_name, in_namespace_);
        } catch (const kubernetes_error& e) {
            if (e.code() != kubernetes_errc::not_found) throw;
            co_return false;
        }
        co_await remove(options_.container_name);
        co_return true;
    }
    std::string_view runnable_noun() const { return "pod"; }

    boost::asio::awaitable<std::string> create(const std::string& image, bool gpu, const std::string& token) {
        auto spec = evaluation_pod_spec(options_, image, gpu, cluster_.options().image_pull_secrets);
        spec.labels[build_call_label] = token;
        const pod_create_options in_namespace{.namespace_name = namespace_};
        auto created = co_await cluster_.api().pods().create(spec, in_namespace);
        co_return created.name;
    }
    // A refusal (4xx) made nothing; a 5xx or no reply may have made the pod (the pipeline then looks by label).
    bool create_outcome_unknown(const std::exception& e) const {
        auto* k = dynamic_cast<const kubernetes_error*>(&e);
        return k == nullptr || k->status() == 0 || k->status() >= 500;
    }
    boost::asio::awaitable<void> wait_running(const std::string& name) {
        pod_wait_options wait;
        wait.namespace_name = namespace_;
        wait.limit = options_.start_timeout;
        wait.wait_while_unschedulable = options_.wait_for_resources;
        try {
            auto r = co_await cluster_.api().pods().wait_for(name, wait);
            if (r.ok()) {
                running_ = std::move(r.current);
                co_return;
            }
            throw pod_start_error(start_error_code(r.outcome), name, r.current.phase, r.reason, r.message,
                                  r.current.node_name);
        } catch (const kubernetes_error& e) {
            if (e.code() != kubernetes_errc::timeout) throw;
        }
        // Still not running: say where it is and what it waits for (an image pull, a node that is gone).
        auto last = co_await cluster_.api().pods().get(name, in_namespace_);
        throw pod_start_error(kubernetes_errc::timeout, name, last.phase, waiting_text(last),
                              "not running after " + describe_duration(options_.start_timeout), last.node_name);
    }

    std::string gpu_request_text() const {
        return "GPU requested: " + options_.gpu_resource + "=" + std::to_string(options_.gpu_count);
    }
    // Only a pod no node can take for want of the GPU resource.
    std::optional<std::string> gpu_refusal(const std::exception& e) const {
        if (auto* p = dynamic_cast<const pod_start_error*>(&e);
            p && p->code() == kubernetes_errc::unschedulable &&
            p->message().find(options_.gpu_resource) != std::string::npos)
            return p->message();
        return std::nullopt;
    }
    std::string gpu_fallback_text(const std::string& refusal) const {
        return "No node offers " + options_.gpu_resource + ", starting without GPU: " + refusal;
    }

    boost::asio::awaitable<handle_type> bind(const std::string& name) {
        if (options_.verbose) log_.info("Pod " + name + " running on " + kube_node(running_.node_name).describe());
        handle_type h;
        h.owner = &cluster_;
        h.namespace_name = namespace_;
        h.name = name;
        h.node = running_.node_name;
        h.uid = running_.uid;
        co_return h;
    }

    // At once (grace period 0): what the call made never ran an evaluation. Bounded wait until the name is free.
    boost::asio::awaitable<void> remove(const std::string& name) {
        auto& pods = cluster_.api().pods();
        try {
            const pod_delete_options now{.namespace_name = namespace_, .grace_period_seconds = 0};
            co_await pods.remove(name, now);
        } catch (const kubernetes_error& e) {
            if (e.code() != kubernetes_errc::not_found) throw;
            co_return;
        }
        auto gone = [&]() -> boost::asio::awaitable<bool> {
            try {
                co_await pods.get(name, in_namespace_);
            } catch (const kubernetes_error& e) {
                if (e.code() == kubernetes_errc::not_found) co_return true;
                throw;
            }
            co_return false;
        };
        const berth::detail::poll_policy policy{
            .first = std::chrono::milliseconds(5), .max = std::chrono::milliseconds(200), .attempts = 60};
        co_await berth::detail::poll_until(gone, policy);
    }
    boost::asio::awaitable<std::vector<std::string>> find_labelled(const std::string& label) {
        const pod_list_options labelled{.namespace_name = namespace_, .label_selector = label};
        auto found = co_await cluster_.api().pods().list(labelled);
        std::vector<std::string> names;
        for (auto& p : found.items) names.push_back(p.name);
        co_return names;
    }

    // A GPU refusal (gpu_required) is gpu_refused; any other failure while asking for GPUs is what it would be
    // without them.
    build_failure classify(std::exception_ptr error, build_step step, std::string message) const {
        const bool asked_gpus = step == build_step::gpu_container;
        auto f = classify_kube_failure(error, asked_gpus ? build_step::container : step, std::move(message));
        if (asked_gpus) try {
                std::rethrow_exception(error);
            } catch (const std::exception& e) {
                if (gpu_refusal(e)) f.reason = build_failure_reason::gpu_refused;
            }
        return f;
    }
    std::string failure_context() const { return " on Kubernetes"; }

private:
    basic_kube_cluster<Transport>& cluster_;
    const kube_build_options& options_;
    logger& log_;
    std::string namespace_;
    // Options are named, never built inside a co_await expression: g++ 12 destroys such a temporary twice.
    pod_get_options in_namespace_{.namespace_name = namespace_};
    pod running_{};
};

}  // namespace detail
}  // namespace berth::kubernetes

namespace berth {

template <transport Transport>
boost::asio::awaitable<basic_build_result<kubernetes::basic_pod_evaluation<Transport>>> build_container(
    kubernetes::basic_kube_cluster<Transport>& kube_cluster, kubernetes::kube_build_options options) {
    auto log = resolve_logger(options.log);
    kubernetes::detail::kube_placement<Transport> backend(kube_cluster, options, *log);
    static_assert(placement_backend<kubernetes::detail::kube_placement<Transport>>);
    co_return co_await detail::run_build_pipeline(backend, options, *log);
}

}  // namespace berth
