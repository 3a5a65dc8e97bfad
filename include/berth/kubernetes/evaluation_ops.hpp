#pragma once
// exec, copy_to_container, copy_from_container, evaluation_logs and cleanup_container for a pod_evaluation: the
// evaluation layer's calls (eval/exec.hpp, eval/copy.hpp, eval/cleanup_container.hpp) on a Kubernetes handle, so a
// harness written for one engine runs on a cluster unchanged. They go through the API server: exec and copies over
// pods/exec (kubernetes/exec.hpp, kubernetes/copy.hpp), logs through pods/log. A node whose kubelet the API server
// cannot reach is a node_unreachable_error naming the node.
//
// What Kubernetes' exec cannot do is refused, not dropped: a user, privileged, a console size, detach keys. env and
// working_dir are given to the command through `env` and `sh` in the image; a time limit kills the command's
// processes as on one engine (a second exec that kills every process carrying the command's token); the
// container's figures (measure_usage, and whether a SIGKILL was the OOM killer's) are read from its cgroup by one
// more exec, since there is no stats endpoint without a metrics server.
#include <berth/eval/cleanup_container.hpp>
#include <berth/eval/copy.hpp>
#include <berth/eval/exec.hpp>
#include <berth/kubernetes/copy.hpp>
#include <berth/kubernetes/evaluation.hpp>
#include <berth/kubernetes/pod_removal.hpp>
#include <berth/kubernetes/pods.hpp>

#include <chrono>

namespace berth::kubernetes::detail {

inline void refuse_for_pods(const run_options& o) {
    auto refuse = [](const char* what) {
        throw invalid_argument_error(std::string("berth::exec on a pod: ") + what +
                                     " has no counterpart in Kubernetes' pods/exec");
    };
    if (!o.exec.cmd.empty()) refuse("run_options::exec.cmd (the command is exec's argument)");
    if (!o.exec.user.empty()) refuse("exec.user (a pod's commands run as its container's user)");
    if (o.exec.privileged) refuse("exec.privileged");
    if (o.exec.console_size) refuse("exec.console_size");
    if (!o.exec.detach_keys.empty()) refuse("exec.detach_keys");
}

// The argv that gives the command its environment and directory (and the time limit's token), through the image's
// `env` and `sh`; the command itself when there is nothing to give.
inline std::vector<std::string> pod_command(std::vector<std::string> cmd, const exec_options& e,
                                            const std::string& token) {
    std::vector<std::string> env = e.env;
    if (!token.empty()) env.push_back("BERTH_EXEC_TOKEN=" + token);
    for (auto& kv : env) parse_env_entry(kv);  // checked: KEY=value
    std::vector<std::string> out;
    if (!e.working_dir.empty()) out = {"sh", "-c", "cd -- \"$1\" && shift && exec \"$@\"", "berth-cd", e.working_dir};
    if (!env.empty()) {
        out.push_back("env");
        out.insert(out.end(), env.begin(), env.end());
    }
    if (out.empty()) return cmd;
    if (!cmd.empty() && cmd.front().find('=') != std::string::npos && !env.empty())
        out.push_back("--");  // a program name with '=' is not taken for a variable
    out.insert(out.end(), cmd.begin(), cmd.end());
    return out;
}

// Prints the container's cgroup figures, v1 or v2, one "name value" line each: cpu_ns or cpu_us (CPU time since
// the container started), peak (the memory high-water mark), oom_kill (OOM kills since it started).
inline constexpr const char* cgroup_figures_script =
    "c=/sys/fs/cgroup; if [ -r $c/cpuacct/cpuacct.usage ]; then echo \"cpu_ns $(cat $c/cpuacct/cpuacct.usage)\"; "
    "elif [ -r $c/cpu.stat ]; then sed -n 's/^usage_usec /cpu_us /p' $c/cpu.stat; fi; "
    "for f in $c/memory/memory.max_usage_in_bytes $c/memory.peak; do "
    "if [ -r $f ]; then echo \"peak $(cat $f)\"; fi; done; "
    "for f in $c/memory/memory.oom_control $c/memory.events; do if [ -r $f ]; then grep '^oom_kill ' $f; fi; done";

struct cgroup_figures {
    std::optional<double> cpu_seconds{};
    std::optional<std::uint64_t> peak_memory_bytes{};
    bool oom_killed = false;
};

// Lines that are not "name digits" are ignored (the script's output is the pod's: bounded and checked here).
inline cgroup_figures parse_cgroup_figures(std::string_view text) {
    cgroup_figures f;
    while (!text.empty()) {
        auto nl = text.find('\n');
        auto line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        auto space = line.find(' ');
        if (space == std::string_view::npos) continue;
        auto name = line.substr(0, space), digits = line.substr(space + 1);
        if (digits.empty() || digits.size() > 19 || digits.find_first_not_of("0123456789") != std::string_view::npos)
            continue;
        const auto value = std::stoull(std::string(digits));
        if (name == "cpu_ns")
            f.cpu_seconds = static_cast<double>(value) / 1e9;
        else if (name == "cpu_us")
            f.cpu_seconds = static_cast<double>(value) / 1e6;
        else if (name == "peak" && !f.peak_memory_bytes)
            f.peak_memory_bytes = value;
        else if (name == "oom_kill" && value != 0)
            f.oom_killed = true;
    }
    return f;
}

// A short command of berth's own in the pod (the time limit's kill, the cgroup read).
inline pod_exec_options helper_exec(std::vector<std::string> cmd) {
    pod_exec_options o;
    o.command = std::move(cmd);
    o.timeout = std::chrono::seconds(30);
    return o;
}

template <transport Transport>
boost::asio::awaitable<pod_exec_result> run_in_pod(const basic_pod_evaluation<Transport>& e, pod_exec_options o) {
    auto& api = e.cluster().api();
    // named, not built inside the co_await: g++ 12 destroys such temporaries twice (docs/guide.md)
    auto headers = api.auth_headers();
    auto where = e.where();
    co_return co_await through_node(e, [&]() -> boost::asio::awaitable<pod_exec_result> {
        co_return co_await exec_in_pod(api.transport(), std::move(headers), std::move(where), std::move(o));
    });
}

}  // namespace berth::kubernetes::detail

namespace berth {

// Runs the command in the evaluation's pod: the same result, outcome and errors as on one engine (exec_interrupted
// with the output so far when the stream breaks or the time limit passes; script_failed from log_container_output).
template <transport Transport>
boost::asio::awaitable<exec_result> exec(kubernetes::basic_pod_evaluation<Transport> e, std::vector<std::string> cmd,
                                         run_options options) {
    namespace asio = boost::asio;
    namespace k8s = kubernetes;
    using clock = std::chrono::steady_clock;
    k8s::detail::refuse_for_pods(options);
    auto log = resolve_logger(options.log);
    const bool limited = options.timeout > clock::duration::zero();
    const std::string token = limited ? detail::random_token() : std::string();
    exec_result result;
    result.streamed = options.stream;
    detail::exec_collector collect{result, options, *log, {}};
    k8s::pod_exec_options run;
    run.command = k8s::detail::pod_command(std::move(cmd), options.exec, token);
    run.stdin_ = options.exec.stdin_;
    run.tty = options.exec.tty;
    run.on_output = std::ref(collect);
    run.timeout = limited ? options.timeout : clock::duration::zero();
    const auto started = clock::now();
    std::exception_ptr failure;
    bool timed_out = false;
    int exit_code = 0;
    try {
        auto done = co_await k8s::detail::run_in_pod(e, std::move(run));
        exit_code = done.exit_code;
    } catch (const node_unreachable_error&) {
        throw;  // before the command started: nothing ran
    } catch (const k8s::kubernetes_error& k) {
        if (k.code() != k8s::kubernetes_errc::timeout) throw;  // the API server's refusal stays what it is
        timed_out = true;
        failure = std::make_exception_ptr(
            connection_error(asio::error::timed_out, "the command ran longer than its time limit (" +
                                                         describe_duration(options.timeout) + ")"));
    } catch (const connection_error&) { failure = std::current_exception(); } catch (const protocol_error&) {
        failure = std::current_exception();
    } catch (const berth::error&) { throw; } catch (const boost::system::system_error&) {
        failure = std::current_exception();  // Asio's own: a read that failed, a cancellation
    }
    collect.flush();
    result.usage.wall_time = std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - started);
    if (failure) {
        if (timed_out) {
            result.outcome.end = exec_end::timed_out;
            try {
                auto kill = k8s::detail::helper_exec(
                    argv("sh", "-c", detail::kill_by_token_script, "berth-kill", token));
                auto killed = co_await k8s::detail::run_in_pod(e, std::move(kill));
                result.outcome.process_killed = killed.exit_code == 0 && detail::killed_any(killed.stdout_text);
                if (!result.outcome.process_killed)
                    result.outcome.detail = killed.exit_code != 0 ? "the kill in the pod failed (exit code " +
                                                                        std::to_string(killed.exit_code) + ")"
                                                                  : "no process of the command was left to kill";
            } catch (const std::exception& k) {
                result.outcome.detail = std::string("the kill could not run: ") + k.what();
            }
            if (!result.outcome.process_killed && options.verbose)
                log->warning("The command timed out and berth could not kill it: " + result.outcome.detail);
        } else {
            detail::note_interruption(result.outcome, failure);
        }
        throw exec_interrupted(failure, std::move(result));
    }
    result.exit_code = exit_code;
    // 128+N is a death by signal N; SIGKILL may be the kernel's OOM killer, which the memory cgroup counts.
    const bool killed = exit_code == 128 + 9;
    detail::note_signal(result.outcome, exit_code);
    if (killed || options.measure_usage) {
        try {
            auto read = k8s::detail::helper_exec(argv("sh", "-c", k8s::detail::cgroup_figures_script));
            auto out = co_await k8s::detail::run_in_pod(e, std::move(read));
            auto figures = k8s::detail::parse_cgroup_figures(out.stdout_text);
            if (killed && figures.oom_killed) result.outcome.end = exec_end::oom_killed;
            if (options.measure_usage || result.outcome.end == exec_end::oom_killed)
                result.usage.container_peak_memory_bytes = figures.peak_memory_bytes;
            if (options.measure_usage) {
                result.usage.container_cpu_seconds = figures.cpu_seconds;
                result.usage.sampled_at = std::chrono::system_clock::now();
            }
        } catch (const std::exception& k) {
            result.outcome.detail = std::string("could not read the pod's cgroup: ") + k.what();
        }
    }
    co_return result;
}

template <transport Transport>
boost::asio::awaitable<exec_result> exec(kubernetes::basic_pod_evaluation<Transport> e, std::vector<std::string> cmd) {
    return exec(std::move(e), std::move(cmd), run_options{});
}
template <transport Transport>
boost::asio::awaitable<exec_result> exec(kubernetes::basic_pod_evaluation<Transport> e, std::string_view command_line,
                                         run_options options) {
    return exec(std::move(e), split_command(command_line), std::move(options));
}
template <transport Transport>
boost::asio::awaitable<exec_result> exec(kubernetes::basic_pod_evaluation<Transport> e, std::string_view command_line) {
    return exec(std::move(e), split_command(command_line), run_options{});
}

namespace kubernetes::detail {
inline pod_copy_options pod_copy_of(const copy_options& o) {
    pod_copy_options p;
    p.verbose = o.verbose;
    p.outside_links = o.outside_links;
    p.replace_directories = o.replace_directories;
    p.log = o.log;
    return p;
}
}  // namespace kubernetes::detail

// The one-engine copy rules (eval/copy.hpp), as tar streams through exec (kubernetes/copy.hpp).
template <transport Transport>
boost::asio::awaitable<void> copy_to_container(kubernetes::basic_pod_evaluation<Transport> e,
                                               std::filesystem::path source, std::string dest, copy_options options) {
    auto& api = e.cluster().api();
    auto headers = api.auth_headers();  // named: g++ 12 (docs/guide.md)
    auto where = e.where();
    auto copy = kubernetes::detail::pod_copy_of(options);
    co_await kubernetes::detail::through_node(e, [&]() -> boost::asio::awaitable<void> {
        co_await kubernetes::copy_to_pod(api.transport(), std::move(headers), std::move(where), std::move(source),
                                         std::move(dest), std::move(copy));
    });
}
template <transport Transport>
boost::asio::awaitable<void> copy_to_container(kubernetes::basic_pod_evaluation<Transport> e,
                                               std::filesystem::path source, std::string dest) {
    return copy_to_container(std::move(e), std::move(source), std::move(dest), copy_options{});
}

template <transport Transport>
boost::asio::awaitable<copy_result> copy_from_container(kubernetes::basic_pod_evaluation<Transport> e,
                                                        std::string source, std::filesystem::path dest,
                                                        copy_options options) {
    auto& api = e.cluster().api();
    auto headers = api.auth_headers();  // named: g++ 12 (docs/guide.md)
    auto where = e.where();
    auto copy = kubernetes::detail::pod_copy_of(options);
    co_return co_await kubernetes::detail::through_node(e, [&]() -> boost::asio::awaitable<copy_result> {
        co_return co_await kubernetes::copy_from_pod(api.transport(), std::move(headers), std::move(where),
                                                     std::move(source), std::move(dest), std::move(copy));
    });
}
template <transport Transport>
boost::asio::awaitable<copy_result> copy_from_container(kubernetes::basic_pod_evaluation<Transport> e,
                                                        std::string source, std::filesystem::path dest) {
    return copy_from_container(std::move(e), std::move(source), std::move(dest), copy_options{});
}

namespace kubernetes {

// What the evaluation's main process printed (pods/log), at most `options.max_bytes`.
template <transport Transport>
boost::asio::awaitable<std::string> evaluation_logs(basic_pod_evaluation<Transport> e, pod_logs_options options) {
    options.namespace_name = e.namespace_name;
    options.container = e.container;
    auto& pods = e.cluster().api().pods();
    co_return co_await detail::through_node(
        e, [&]() -> boost::asio::awaitable<std::string> { co_return co_await pods.logs(e.name, std::move(options)); });
}
template <transport Transport>
boost::asio::awaitable<std::string> evaluation_logs(basic_pod_evaluation<Transport> e) {
    return evaluation_logs(std::move(e), pod_logs_options{});
}

}  // namespace kubernetes

// Deletes the evaluation's pod with its grace period (stop_timeout_seconds: SIGTERM, then SIGKILL; the kubelet
// makes it at least 2 s), watches until its node reports every container of it ended, then deletes the object at
// once: a pod confirmed stopped, without the up to 10 s a 1.20 kubelet takes to remove a stopped pod's object
// itself. A pod whose node does not report in time is deleted at once all the same, and the report says its
// containers may run on until the node returns (a node_unreachable_error naming it). Errors are logged and
// reported, never thrown (as on one engine).
template <transport Transport>
boost::asio::awaitable<cleanup_report> cleanup_container(kubernetes::basic_pod_evaluation<Transport> e,
                                                         cleanup_options options) {
    namespace k8s = kubernetes;
    auto log = resolve_logger(options.log);
    cleanup_report report;
    if (e.owner == nullptr) {
        std::string problem = "Cannot clean up pod " + e.name + ": the handle names no cluster (owner)";
        detail::note_cleanup_problem(report, options, *log, problem,
                                     std::make_exception_ptr(invalid_argument_error(problem)));
        co_return report;
    }
    auto& pods = e.cluster().api().pods();
    const auto grace = std::max(options.stop_timeout_seconds, 0);
    const auto limit = std::chrono::seconds(grace + 15);
    std::string problem;
    std::exception_ptr error;
    try {
        bool gone = false;
        try {
            const k8s::pod_delete_options graceful{.namespace_name = e.namespace_name, .grace_period_seconds = grace};
            co_await pods.remove(e.name, graceful);  // named: g++ 12 (docs/guide.md)
        } catch (const k8s::kubernetes_error& k) {
            if (k.code() != k8s::kubernetes_errc::not_found) throw;
            gone = true;
        }
        if (!gone) {
            k8s::pod_wait_options ended;
            ended.namespace_name = e.namespace_name;
            ended.limit = limit;
            ended.until = [uid = e.uid](const k8s::pod& p) { return p.uid != uid || k8s::detail::has_ended(p); };
            try {
                co_await pods.wait_for(e.name, std::move(ended));  // condition met, failed, succeeded or deleted
                gone = true;
            } catch (const k8s::kubernetes_error& k) {
                if (k.code() != k8s::kubernetes_errc::timeout) throw;
                problem = "its node did not report it stopped within " + describe_duration(limit) +
                          "; deleted at once: its containers may run on " + k8s::kube_node(e.node).describe() +
                          " until the node returns";
                error = std::make_exception_ptr(node_unreachable_error(k8s::kube_node(e.node), k));
            }
            co_await k8s::detail::remove_at_once(pods, e.namespace_name, e.name, e.uid);
        }
        report.container_removed = gone;
    } catch (const std::exception& x) {
        problem = x.what();
        error = std::current_exception();
    }
    if (report.container_removed) {
        if (options.verbose) log->info("Pod " + e.name + " removed from " + k8s::kube_node(e.node).describe());
    } else {
        detail::note_cleanup_problem(report, options, *log, "Cannot confirm pod " + e.name + " stopped: " + problem,
                                     error);
    }
    co_return report;
}

template <transport Transport>
boost::asio::awaitable<cleanup_report> cleanup_container(kubernetes::basic_pod_evaluation<Transport> e) {
    return cleanup_container(std::move(e), cleanup_options{});
}

}  // namespace berth
