#pragma once
// How a command run with exec ended (exec_outcome) and what it used (exec_usage), as the engine reports them; a
// harness tells "the program failed" from "it ran out of memory", "it hit its time limit" and "the engine lost it".
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace berth {

enum class exec_end {
    exited,       // ended by itself with exit_code (0 or not)
    signalled,    // killed by a signal (exit_code 128+N; see exec_outcome::signal)
    oom_killed,   // killed by the kernel's OOM killer in the container's memory cgroup
    timed_out,    // ran past run_options::timeout; berth killed it (exec_outcome::process_killed)
    engine_lost,  // the engine went away or forgot the exec before its end was seen (restart, crash, cut stream)
    cancelled,    // the call was cancelled; the command was left running
};

inline const char* to_string(exec_end e) {
    switch (e) {
    case exec_end::exited: return "exited";
    case exec_end::signalled: return "signalled";
    case exec_end::oom_killed: return "oom_killed";
    case exec_end::timed_out: return "timed_out";
    case exec_end::engine_lost: return "engine_lost";
    case exec_end::cancelled: return "cancelled";
    }
    return "exited";
}

struct exec_outcome {
    exec_end end = exec_end::exited;
    // The signal that ended the process. The engines report a death by signal N as exit code 128+N (as a shell
    // does), so a program that calls exit(137) reads the same as one killed by SIGKILL: nothing tells them apart.
    std::optional<int> signal{};
    // timed_out: berth found the command's processes after the time limit and killed them (SIGKILL). False when
    // none was left, or the kill could not run (the image has no sh and grep); `detail` then says why.
    bool process_killed = false;
    std::string detail{};  // what the engine or berth said, when there is more to say (why the engine was lost)
};

// What a command used, from the engine's cgroup figures. The cgroup is the container's, not the command's: CPU
// time and peak memory are the container's since it started, which for an evaluation container (one evaluation,
// one container) is what the evaluation used; subtract two results' CPU times for one command of several.
// On Docker the figures are the newest sample of the container's stats stream (one a second), so they may be up to
// about a second older than the command's end: sampled_at says when the engine took them (berth::usage_after
// waits for a sample taken after a given moment). Being cumulative, a later sample is never smaller.
struct exec_usage {
    std::chrono::nanoseconds wall_time{};                               // from the exec's start to its end being seen
    std::optional<double> container_cpu_seconds{};                      // cpuacct total at sampled_at
    std::optional<std::uint64_t> container_peak_memory_bytes{};         // the memory cgroup's high-water mark
    std::optional<std::chrono::system_clock::time_point> sampled_at{};  // the engine's time of the figures' sample
};

namespace detail {
inline std::string format_seconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f s", s);
    return buf;
}
inline std::string format_bytes(std::uint64_t b) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1024.0 * 1024.0));
    return buf;
}
}  // namespace detail

// "exit code 3", "killed by signal 11", "OOM-killed", "timed out (killed)", "engine lost: ...", "cancelled".
inline std::string describe(const exec_outcome& o, std::optional<int> exit_code) {
    switch (o.end) {
    case exec_end::exited: return exit_code ? "exit code " + std::to_string(*exit_code) : std::string("exited");
    case exec_end::signalled: return "killed by signal " + std::to_string(o.signal.value_or(0));
    case exec_end::oom_killed: return "OOM-killed (out of memory)";
    case exec_end::timed_out:
        return std::string("timed out (") + (o.process_killed ? "its processes killed" : "nothing killed") +
               (o.detail.empty() ? "" : ": " + o.detail) + ")";
    case exec_end::engine_lost: return "engine lost" + (o.detail.empty() ? std::string() : ": " + o.detail);
    case exec_end::cancelled: return "cancelled";
    }
    return "exited";
}

// "wall 0.312 s, container CPU 0.120 s, container peak memory 3.5 MiB".
inline std::string describe(const exec_usage& u) {
    std::string s = "wall " + detail::format_seconds(std::chrono::duration<double>(u.wall_time).count());
    if (u.container_cpu_seconds) s += ", container CPU " + detail::format_seconds(*u.container_cpu_seconds);
    if (u.container_peak_memory_bytes)
        s += ", container peak memory " + detail::format_bytes(*u.container_peak_memory_bytes);
    return s;
}

}  // namespace berth
