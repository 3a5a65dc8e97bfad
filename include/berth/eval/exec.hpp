#pragma once
// exec: run a command in the container and collect (or stream to the log) what it prints; log_container_output:
// log that output and fail with "Script failed with exit code N" when the exit code is non-zero. Each result
// says how the command ended and what it used (eval/outcome.hpp).
#include <berth/detail/random_token.hpp>
#include <berth/detail/poll.hpp>
#include <berth/engine/events.hpp>
#include <berth/eval/container.hpp>
#include <berth/eval/errors.hpp>
#include <berth/eval/logger.hpp>
#include <berth/eval/outcome.hpp>
#include <berth/eval/usage_monitor.hpp>
#include <berth/with_timeout.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>

#include <boost/system/system_error.hpp>

#include <chrono>
#include <functional>

namespace berth {

struct exec_result {
    std::optional<int> exit_code;
    std::string output;  // stdout and stderr merged in the order they arrived
    std::string stdout_text;
    std::string stderr_text;
    bool streamed = false;  // the output was logged line by line while it ran
    // Output bytes not kept beyond run_options::max_output_bytes (the same bytes are missing from `output` and
    // from stdout_text + stderr_text: those keep the first max_output_bytes of the merged output between them).
    std::uint64_t dropped_bytes = 0;
    exec_outcome outcome{};  // how it ended: exited, signalled, OOM-killed (and, in exec_interrupted, the rest)
    exec_usage usage{};      // wall time always; the container's CPU and peak memory with run_options::measure_usage
};

// An exec whose end was not seen: the engine went away, run_options::timeout passed, or the call was cancelled.
// partial() is what the command had printed until then, and partial().outcome which of these it was (engine_lost,
// timed_out, cancelled). A berth::error, so that handlers of transport errors,
// time-outs and cancellation keep working: code() is the cause's own (timed_out, operation_aborted,
// connection_reset..., or a protocol_errc, which is also errc::protocol_error, when the output stream was cut inside
// a frame or otherwise unreadable), and errc::protocol_error for a cause that has no code; cause() is the original
// exception. (An error the engine itself reports, such as an
// exec its runtime could not start, stays an engine_error.)
class exec_interrupted : public error {
public:
    exec_interrupted(std::exception_ptr cause, exec_result partial)
        : error(code_of(cause), "exec interrupted after " +
                                    std::to_string(partial.output.size() + partial.dropped_bytes) +
                                    " bytes of output: " + message_of(cause)),
          partial_(std::move(partial)), cause_(std::move(cause)) {}

    const exec_result& partial() const noexcept { return partial_; }
    const std::exception_ptr& cause() const noexcept { return cause_; }

private:
    static boost::system::error_code code_of(const std::exception_ptr& cause) {
        try {
            std::rethrow_exception(cause);
        } catch (const boost::system::system_error& e) { return e.code(); } catch (...) {
            return boost::system::errc::make_error_code(boost::system::errc::protocol_error);
        }
    }
    static std::string message_of(const std::exception_ptr& cause) {
        try {
            std::rethrow_exception(cause);
        } catch (const std::exception& e) { return e.what(); } catch (...) {
            return "unknown error";
        }
    }

    exec_result partial_;
    std::exception_ptr cause_;
};

struct run_options {
    // The exec itself: working_dir, env, user, tty, privileged, console_size, and on_output (also called with each
    // slice of output as it arrives: all of it, whatever max_output_bytes keeps). Its cmd stays empty: the command
    // is exec's argument.
    exec_options exec{};
    // Log the output line by line as it arrives (the Python module's stream=True) instead of once at the end.
    bool stream = false;
    bool verbose = true;
    // How much output the result keeps: the first bytes, the rest counted in exec_result::dropped_bytes. 0 keeps
    // nothing, for callers that take the output through exec.on_output (or the log, with stream) as it arrives.
    std::size_t max_output_bytes = std::size_t{64} << 20;
    // A time limit for the command (zero: none). When it passes, berth kills the command's processes and exec
    // throws exec_interrupted (timed_out) with the output so far and outcome timed_out. The Engine API cannot
    // stop an exec, so berth gives the command a token in its environment (BERTH_EXEC_TOKEN) and runs a second
    // exec that SIGKILLs every process whose environment holds it; that needs sh and grep in the image (without
    // them, outcome.process_killed is false and outcome.detail says why). A process that clears its environment
    // escapes.
    std::chrono::steady_clock::duration timeout{};
    // Also take the container's CPU time and peak memory from the engine (exec_usage). Podman's are read in
    // parallel with the exit code. Docker answers a stats request only at its next once-a-second sample, so there
    // the container's stats stream is kept open (eval/usage_monitor.hpp) and the newest sample taken at once: up
    // to about a second old (exec_usage::sampled_at; berth::usage_after waits for a later one). The first measured
    // exec on a container waits for the stream's first sample (up to about a second, once).
    bool measure_usage = false;
    std::shared_ptr<logger> log{};  // default: the thread's logger
};

// An argument vector from its words: berth::argv("sh", "-c", "exit 3"). Unlike a braced list, it is safe inside a
// co_await expression on g++ 12 (whose coroutines cannot hold the array behind an initializer_list).
template <class... Words>
std::vector<std::string> argv(const Words&... words) {
    return std::vector<std::string>{std::string(words)...};
}

// Splits a command line the way POSIX shells (and Python's shlex.split) do: whitespace separates words, single
// quotes keep everything literal, double quotes allow \" \\ \$ \` escapes, a backslash escapes the next character.
// Throws invalid_argument_error on an unterminated quote or a trailing backslash.
inline std::vector<std::string> split_command(std::string_view line) {
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
        char ch = line[i];
        if (ch == ' ' || ch == '\t' || ch == '\n') {
            if (in_word) words.push_back(std::exchange(word, {}));
            in_word = false;
        } else if (ch == '\'') {
            auto end = line.find('\'', i + 1);
            if (end == std::string_view::npos)
                throw invalid_argument_error("unterminated ' in command: " + std::string(line));
            word.append(line.substr(i + 1, end - i - 1));
            i = end;
            in_word = true;
        } else if (ch == '"') {
            std::size_t j = i + 1;
            for (;; ++j) {
                if (j >= line.size()) throw invalid_argument_error("unterminated \" in command: " + std::string(line));
                if (line[j] == '"') break;
                if (line[j] == '\\' && j + 1 < line.size() &&
                    std::string_view("\"\\$`").find(line[j + 1]) != std::string_view::npos)
                    ++j;
                word += line[j];
            }
            i = j;
            in_word = true;
        } else if (ch == '\\') {
            if (i + 1 >= line.size())
                throw invalid_argument_error("trailing backslash in command: " + std::string(line));
            word += line[++i];
            in_word = true;
        } else {
            word += ch;
            in_word = true;
        }
    }
    if (in_word) words.push_back(std::move(word));
    return words;
}

namespace detail {
// Collects output (up to max_output_bytes) and, when streaming, logs each complete line as it arrives.
struct exec_collector {
    exec_result& result;
    const run_options& options;
    logger& log;
    std::string pending;  // a streamed line not yet ended

    // A streamed line this long is logged as it is, so that output without newlines cannot grow `pending` unbounded.
    static constexpr std::size_t max_line = 64 * 1024;

    void operator()(output_stream s, std::string_view data) {
        const std::size_t room = options.max_output_bytes - std::min(options.max_output_bytes, result.output.size());
        const auto kept = data.substr(0, room);
        (s == output_stream::stderr_ ? result.stderr_text : result.stdout_text).append(kept);
        result.output.append(kept);
        result.dropped_bytes += data.size() - kept.size();
        if (options.exec.on_output) options.exec.on_output(s, data);
        if (!options.stream || !options.verbose) return;
        pending.append(data);
        std::size_t start = 0;
        for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1)
            log.info(std::string_view(pending).substr(start, nl - start));
        pending.erase(0, start);
        if (pending.size() >= max_line) flush();
    }
    void flush() {
        if (options.stream && options.verbose && !pending.empty()) log.info(pending);
        pending.clear();
    }
};
}  // namespace detail

namespace detail {

// What was seen at the end of a command: its exit code and, when asked for, the container's figures.
struct exec_end_seen {
    int exit_code = 0;
    std::optional<container_stats> stats{};
};

// The exit code of an exec whose output has ended. An exec the engine no longer knows (404) was lost with the
// engine's state (a restart): that is a protocol_error here, so that exec reports it as engine_lost.
template <transport Transport>
boost::asio::awaitable<int> exec_exit_code(exec_api<Transport>& execs, std::string id) {
    try {
        co_return co_await execs.exit_code(id);
    } catch (const not_found_error& e) {
        throw protocol_error(e.endpoint(), "the engine no longer knows the exec (was it restarted?): " + e.message());
    }
}

// The container's figures, or nothing: figures are best-effort and never fail the command they describe.
template <transport Transport>
boost::asio::awaitable<std::optional<container_stats>> try_stats(basic_client<Transport>& client, std::string id) {
    try {
        co_return co_await client.containers().stats(id);
    } catch (const std::exception&) { co_return std::nullopt; }
}

template <transport Transport>
boost::asio::awaitable<exec_end_seen> run_exec(basic_client<Transport>& client, std::string container_id,
                                               std::string id, exec_collector& collect, bool tty, bool measure) {
    namespace asio = boost::asio;
    auto& execs = client.execs();
    exec_start_options start;
    start.tty = tty;
    start.on_output = std::ref(collect);
    co_await execs.start(id, std::move(start));
    exec_end_seen seen;
    if (!measure) {
        seen.exit_code = co_await exec_exit_code(execs, id);
        co_return seen;
    }
    // The figures are read alongside the exit code, so they cost no more than the slower of the two requests.
    auto ex = co_await asio::this_coro::executor;
    auto group = asio::experimental::make_parallel_group(
        asio::co_spawn(ex, exec_exit_code(execs, id), asio::deferred),
        asio::co_spawn(ex, try_stats(client, std::move(container_id)), asio::deferred));
    auto [order, code_error, code, stats_error, stats] = co_await group.async_wait(asio::experimental::wait_for_all(),
                                                                                   asio::use_awaitable);
    (void)order;
    (void)stats_error;
    if (code_error) std::rethrow_exception(code_error);
    seen.exit_code = code;
    seen.stats = std::move(stats);
    co_return seen;
}

// The operation's value, or nothing when the limit ran out first (the operation is then cancelled). Its own
// exception passes through.
template <class T>
boost::asio::awaitable<std::optional<T>> unless_time_runs_out(boost::asio::awaitable<T> op,
                                                              std::chrono::steady_clock::duration limit) {
    namespace asio = boost::asio;
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer timer(ex, limit);
    auto group = asio::experimental::make_parallel_group(asio::co_spawn(ex, std::move(op), asio::deferred),
                                                         timer.async_wait(asio::deferred));
    auto [order, error, value, timer_ec] = co_await group.async_wait(asio::experimental::wait_for_one(),
                                                                     asio::use_awaitable);
    (void)timer_ec;
    if (order[0] == 1) co_return std::nullopt;
    if (error) std::rethrow_exception(error);
    co_return std::optional<T>(std::move(value));
}

// Output of a helper exec, kept small.
struct small_output {
    std::string text;
    void operator()(output_stream, std::string_view d) {
        if (text.size() < 4096) text.append(d.substr(0, 4096 - text.size()));
    }
};

// Kills (SIGKILL) every process in the container whose environment holds BERTH_EXEC_TOKEN=<token>, three passes
// so that children forked meanwhile are caught too, and prints how many it killed. Its own processes do not
// carry the token (it is an argument here, not in their environment).
inline constexpr const char* kill_by_token_script =
    "t=\"BERTH_EXEC_TOKEN=$1\"; n=0; for pass in 1 2 3; do for d in /proc/[0-9]*; do "
    "if grep -q \"$t\" \"$d/environ\" 2>/dev/null && kill -9 \"${d#/proc/}\" 2>/dev/null; then n=$((n+1)); fi; "
    "done; done; echo \"$n\"";

// Whether kill_by_token_script's output (its last line: how many it killed) says it killed anything.
inline bool killed_any(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    const auto nl = text.find_last_of('\n');
    const std::string count = nl == std::string::npos ? text : text.substr(nl + 1);
    return !count.empty() && count != "0";
}

// How a command whose end was not seen ended, from what broke it: the caller cancelled (nothing more to say), or
// the engine was lost (why, in detail).
inline void note_interruption(exec_outcome& outcome, const std::exception_ptr& failure) {
    bool cancelled = false;
    try {
        std::rethrow_exception(failure);
    } catch (const boost::system::system_error& s) {
        cancelled = s.code() == boost::asio::error::operation_aborted;
        outcome.detail = s.what();
    } catch (const std::exception& s) { outcome.detail = s.what(); }
    outcome.end = cancelled ? exec_end::cancelled : exec_end::engine_lost;
    if (cancelled) outcome.detail.clear();
}

// The engines report a death by signal N as 128+N.
inline void note_signal(exec_outcome& outcome, int exit_code) {
    if (exit_code > 128 && exit_code <= 128 + 64) {
        outcome.end = exec_end::signalled;
        outcome.signal = exit_code - 128;
    }
}

// After a time-out: kill the command's processes, then wait until the engine has seen the exec end (its
// processes reaped). Runs as the command's user, which may read its processes' environments without privileges.
// True when done (whether anything was killed is in outcome).
template <transport Transport>
boost::asio::awaitable<bool> kill_timed_out(basic_container<Transport> c, std::string exec_id, std::string token,
                                            std::string user, exec_outcome& outcome) {
    namespace asio = boost::asio;
    auto& execs = c.engine().execs();
    exec_options killer;
    killer.cmd = argv("sh", "-c", kill_by_token_script, "berth-kill", token);
    killer.user = std::move(user);
    // A process the engine started late (a slow start racing the time limit) is caught by another round.
    for (;;) {
        small_output out;
        killer.on_output = std::ref(out);
        const int code = co_await execs.run(c.id, killer);
        while (!out.text.empty() && (out.text.back() == '\n' || out.text.back() == '\r')) out.text.pop_back();
        if (code != 0) {
            outcome.detail = "the kill in the container failed (exit code " + std::to_string(code) + ": " + out.text +
                             ")";
            co_return true;
        }
        if (killed_any(out.text)) outcome.process_killed = true;
        outcome.detail = outcome.process_killed ? "" : "no process of the command was left to kill";
        auto ended = [&execs, &exec_id]() -> asio::awaitable<bool> {
            auto info = co_await execs.inspect(exec_id);
            co_return !info.running;
        };
        // 14 checks, the pauses 5, 10, ... 200 ms between them: about 2 s
        const detail::poll_policy policy{
            .first = std::chrono::milliseconds(5), .max = std::chrono::milliseconds(200), .attempts = 14};
        if (co_await detail::poll_until(ended, policy)) co_return true;
    }
}

struct oom_verdict {
    bool oom_killed = false;
    std::optional<std::uint64_t> peak_memory_bytes{};
};

// "oom_kill N" lines (cgroup v1 memory.oom_control, v2 memory.events) and bare numbers (v1
// memory.max_usage_in_bytes, v2 memory.peak) from the cgroup files cat printed.
inline oom_verdict parse_memory_cgroup(std::string_view text) {
    oom_verdict v;
    while (!text.empty()) {
        auto nl = text.find('\n');
        auto line = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        auto digits = [](std::string_view d) {
            return !d.empty() && d.find_first_not_of("0123456789") == std::string_view::npos && d.size() < 20;
        };
        if (line.starts_with("oom_kill ") && digits(line.substr(9))) {
            if (line.substr(9) != "0") v.oom_killed = true;
        } else if (digits(line) && !v.peak_memory_bytes) {
            v.peak_memory_bytes = std::stoull(std::string(line));
        }
    }
    return v;
}

// Whether the kernel OOM-killed a process in the container while the command ran (asked only when the command
// died of SIGKILL). Docker records an "oom" container event: berth asks for those between the command's start and
// a second after its end (the event may trail the exit a little; the engine answers when that second has passed).
// Podman records none for an exec: berth reads the memory cgroup's OOM-kill count (and high-water mark) in the
// container with cat, which counts the container's OOM kills since it started.
template <transport Transport>
boost::asio::awaitable<oom_verdict> check_oom(basic_container<Transport> c,
                                              std::chrono::system_clock::time_point since) {
    auto& engine = c.engine();
    if (co_await engine.kind() == engine_kind::podman) {
        exec_options read;
        read.cmd = argv("cat", "/sys/fs/cgroup/memory/memory.oom_control",
                        "/sys/fs/cgroup/memory/memory.max_usage_in_bytes", "/sys/fs/cgroup/memory.events",
                        "/sys/fs/cgroup/memory.peak");
        small_output out;
        read.on_output = std::ref(out);
        co_await engine.execs().run(c.id, read);  // exit code 1: the other cgroup version's files are missing
        co_return parse_memory_cgroup(out.text);
    }
    past_events_query q;
    q.since = since - std::chrono::seconds(1);
    q.until = std::chrono::system_clock::now() + std::chrono::seconds(1);
    q.filters["container"].push_back(c.id);
    q.filters["event"].push_back("oom");
    auto events = co_await past_events(engine.core(), std::move(q));
    oom_verdict v;
    v.oom_killed = !events.empty();
    co_return v;
}

}  // namespace detail

// Runs the command. A transport failure, time-out, cancellation or unreadable stream once it has started is thrown
// as exec_interrupted with the output so far (and partial().outcome saying which); the engine's own refusals
// (engine_error) are thrown as they are.
template <transport Transport>
boost::asio::awaitable<exec_result> exec(basic_container<Transport> c, std::vector<std::string> cmd,
                                         run_options options) {
    namespace asio = boost::asio;
    using clock = std::chrono::steady_clock;
    auto log = resolve_logger(options.log);
    if (!options.exec.cmd.empty())
        throw invalid_argument_error(
            "berth::exec: the command is exec's argument; run_options::exec.cmd must be empty");
    exec_options e = options.exec;
    e.cmd = std::move(cmd);
    e.on_output = nullptr;  // the collector calls it
    const bool limited = options.timeout > clock::duration::zero();
    std::string token;
    if (limited) {
        token = detail::random_token();
        e.env.push_back("BERTH_EXEC_TOKEN=" + token);
    }
    exec_result result;
    result.streamed = options.stream;
    detail::exec_collector collect{result, options, *log, {}};
    // Docker: figures from the container's stats stream (opened by the first measured exec); else one request.
    const bool streamed_figures = options.measure_usage && co_await watch_usage(c);
    auto& execs = c.engine().execs();
    auto id = co_await execs.create(c.id, e);
    const auto started = clock::now();
    const auto started_wall = std::chrono::system_clock::now();
    std::exception_ptr failure;
    bool timed_out = false;
    detail::exec_end_seen seen;
    try {
        auto run = detail::run_exec(c.engine(), c.id, id, collect, e.tty, options.measure_usage && !streamed_figures);
        if (limited) {
            auto done = co_await detail::unless_time_runs_out(std::move(run), options.timeout);
            if (done) {
                seen = std::move(*done);
            } else {
                timed_out = true;
                failure = std::make_exception_ptr(
                    connection_error(asio::error::timed_out, "the command ran longer than its time limit (" +
                                                                 describe_duration(options.timeout) + ")"));
            }
        } else {
            seen = co_await std::move(run);
        }
    } catch (const connection_error&) { failure = std::current_exception(); } catch (const protocol_error&) {
        failure = std::current_exception();
    } catch (const berth::error&) {
        throw;  // the engine's own refusal (an engine_error) stays what it is
    } catch (const boost::system::system_error&) {
        failure = std::current_exception();  // Asio's own: a stream read that failed, a cancellation
    }
    collect.flush();
    result.usage.wall_time = std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - started);
    if (failure) {
        if (timed_out) {
            result.outcome.end = exec_end::timed_out;
            try {
                auto killed = co_await detail::unless_time_runs_out(
                    detail::kill_timed_out(c, id, token, options.exec.user, result.outcome), std::chrono::seconds(30));
                if (!killed) result.outcome.detail = "the kill did not finish within 30 s";
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
    result.exit_code = seen.exit_code;
    std::optional<usage_sample> sample;
    if (seen.stats) sample = detail::to_usage_sample(*seen.stats);
    if (streamed_figures) {
        sample = newest_usage(c);
        if (!sample)  // the stream's first sample is yet to come (the first measured exec on this container)
            sample = co_await detail::wait_for_sample(
                c, [](const usage_sample&) { return true; }, std::chrono::seconds(3));
    }
    if (sample) {
        result.usage.container_cpu_seconds = static_cast<double>(sample->cpu_total_ns) / 1e9;
        result.usage.container_peak_memory_bytes = sample->memory_peak_bytes;
        if (sample->read.time_since_epoch().count() > 0) result.usage.sampled_at = sample->read;
    }
    // SIGKILL may be the kernel's OOM killer.
    detail::note_signal(result.outcome, seen.exit_code);
    if (result.outcome.end == exec_end::signalled) {
        if (seen.exit_code == 128 + 9) {
            try {
                auto verdict = co_await detail::check_oom(c, started_wall);
                if (verdict.oom_killed) {
                    result.outcome.end = exec_end::oom_killed;
                    if (verdict.peak_memory_bytes) result.usage.container_peak_memory_bytes = verdict.peak_memory_bytes;
                    if (!result.usage.container_peak_memory_bytes)
                        if (auto stats = co_await detail::try_stats(c.engine(), c.id))
                            result.usage.container_peak_memory_bytes = stats->memory_peak_bytes;
                }
            } catch (const std::exception& k) {
                result.outcome.detail = std::string("could not ask the engine whether it was out of memory: ") +
                                        k.what();
            }
        }
    }
    co_return result;
}

template <transport Transport>
boost::asio::awaitable<exec_result> exec(basic_container<Transport> c, std::vector<std::string> cmd) {
    return exec(std::move(c), std::move(cmd), run_options{});
}

// A command line split like a shell would (as docker-py's exec_run does with a string): exec(box, "git status").
template <transport Transport>
boost::asio::awaitable<exec_result> exec(basic_container<Transport> c, std::string_view command_line,
                                         run_options options) {
    return exec(std::move(c), split_command(command_line), std::move(options));
}
template <transport Transport>
boost::asio::awaitable<exec_result> exec(basic_container<Transport> c, std::string_view command_line) {
    return exec(std::move(c), split_command(command_line), run_options{});
}

struct log_output_options {
    bool verbose = true;            // false: nothing is logged; the exit-code check still applies
    std::shared_ptr<logger> log{};  // default: the thread's logger
};

// Logs the output (unless it was already streamed to the log), then throws script_failed for a non-zero exit code.
inline void log_container_output(const exec_result& result, log_output_options options = {}) {
    const bool verbose = options.verbose;
    auto& log = options.log;
    if (verbose && !result.streamed) {
        std::string_view text = result.output;
        while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
        resolve_logger(log)->info("Container output: " + std::string(text));
    }
    // How it ended and what it used, when there is more to say than the exit code (no extra line for a plain
    // exit without figures, so that the Python module's log stays as it was).
    const bool measured = result.usage.container_cpu_seconds || result.usage.container_peak_memory_bytes;
    if (verbose && (measured || result.outcome.end != exec_end::exited))
        resolve_logger(log)->info("Command ended: " + describe(result.outcome, result.exit_code) + "; " +
                                  describe(result.usage));
    if (result.exit_code && *result.exit_code != 0) throw script_failed(*result.exit_code);
}

}  // namespace berth
