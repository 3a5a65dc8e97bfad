#pragma once
// exec: run a command in the container and collect (or stream to the log) what it prints; log_container_output:
// log that output and fail with "Script failed with exit code N" when the exit code is non-zero.
#include <berth/eval/container.hpp>
#include <berth/eval/errors.hpp>
#include <berth/eval/logger.hpp>
#include <berth/with_timeout.hpp>

#include <boost/system/system_error.hpp>

#include <chrono>
#include <functional>

namespace berth {

struct exec_result {
    std::optional<int> exit_code;
    std::string output;       // stdout and stderr merged in the order they arrived
    std::string stdout_text;
    std::string stderr_text;
    bool streamed = false;    // the output was logged line by line while it ran
    // Output bytes not kept beyond run_options::max_output_bytes (the same bytes are missing from `output` and
    // from stdout_text + stderr_text: those keep the first max_output_bytes of the merged output between them).
    std::uint64_t dropped_bytes = 0;
};

// An exec whose end was not seen: the engine went away, run_options::timeout passed, or the call was cancelled.
// partial() is what the command had printed until then. A system_error, so that handlers of transport errors,
// time-outs and cancellation keep working: code() is the cause's own when the cause was one (timed_out,
// operation_aborted, connection_reset...), and errc::protocol_error when the output stream was cut inside a frame
// or otherwise unreadable; cause() is the original exception. (An error the engine itself reports, such as an
// exec its runtime could not start, stays an engine_error.)
class exec_interrupted : public boost::system::system_error {
public:
    exec_interrupted(std::exception_ptr cause, exec_result partial)
        : boost::system::system_error(code_of(cause)),
          message_("exec interrupted after " + std::to_string(partial.output.size() + partial.dropped_bytes) +
                   " bytes of output: " + message_of(cause)),
          partial_(std::move(partial)), cause_(std::move(cause)) {}

    const char* what() const noexcept override { return message_.c_str(); }
    const exec_result& partial() const noexcept { return partial_; }
    const std::exception_ptr& cause() const noexcept { return cause_; }

private:
    static boost::system::error_code code_of(const std::exception_ptr& cause) {
        try {
            std::rethrow_exception(cause);
        } catch (const boost::system::system_error& e) {
            return e.code();
        } catch (...) {
            return make_error_code(boost::system::errc::protocol_error);
        }
    }
    static std::string message_of(const std::exception_ptr& cause) {
        try {
            std::rethrow_exception(cause);
        } catch (const std::exception& e) {
            return e.what();
        } catch (...) {
            return "unknown error";
        }
    }

    std::string message_;
    exec_result partial_;
    std::exception_ptr cause_;
};

struct run_options {
    std::string working_dir;
    std::vector<std::string> env;  // "KEY=value"
    std::string user;
    bool tty = false;
    // Log the output line by line as it arrives (the seed's stream=True) instead of once at the end.
    bool stream = false;
    bool verbose = true;
    // Also called with each slice of output as it arrives (all of it, whatever max_output_bytes keeps).
    std::function<void(output_stream, std::string_view)> on_output;
    // How much output the result keeps: the first bytes, the rest counted in exec_result::dropped_bytes. 0 keeps
    // nothing, for callers that take the output through on_output (or the log, with stream) as it arrives.
    std::size_t max_output_bytes = std::size_t{64} << 20;
    // A time limit for the command (zero: none). When it passes, exec throws exec_interrupted (timed_out) with
    // the output so far. The engine has no way to stop an exec: the command itself runs on in the container.
    std::chrono::steady_clock::duration timeout{};
    std::shared_ptr<logger> log;  // default: the thread's logger
};

// An argument vector from its words: berth::argv("sh", "-c", "exit 3"). Unlike a braced list, it is safe inside a
// co_await expression on g++ 12 (whose coroutines cannot hold the array behind an initializer_list).
template <class... Words>
std::vector<std::string> argv(const Words&... words) {
    return std::vector<std::string>{std::string(words)...};
}

// Splits a command line the way POSIX shells (and Python's shlex.split) do: whitespace separates words, single
// quotes keep everything literal, double quotes allow \" \\ \$ \` escapes, a backslash escapes the next character.
// Throws std::invalid_argument on an unterminated quote or a trailing backslash.
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
            if (end == std::string_view::npos) throw std::invalid_argument("unterminated ' in command: " + std::string(line));
            word.append(line.substr(i + 1, end - i - 1));
            i = end;
            in_word = true;
        } else if (ch == '"') {
            std::size_t j = i + 1;
            for (;; ++j) {
                if (j >= line.size()) throw std::invalid_argument("unterminated \" in command: " + std::string(line));
                if (line[j] == '"') break;
                if (line[j] == '\\' && j + 1 < line.size() && std::string_view("\"\\$`").find(line[j + 1]) != std::string_view::npos)
                    ++j;
                word += line[j];
            }
            i = j;
            in_word = true;
        } else if (ch == '\\') {
            if (i + 1 >= line.size()) throw std::invalid_argument("trailing backslash in command: " + std::string(line));
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
        if (options.on_output) options.on_output(s, data);
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
} // namespace detail

namespace detail {
template <transport Transport>
boost::asio::awaitable<int> start_exec(exec_api<Transport>& execs, std::string id, exec_collector& collect, bool tty) {
    co_await execs.start(id, collect, tty);
    co_return co_await execs.exit_code(id);
}
} // namespace detail

// Runs the command. A transport failure, time-out, cancellation or unreadable stream once it has started is thrown
// as exec_interrupted with the output so far; the engine's own refusals (engine_error) are thrown as they are.
template <transport Transport>
boost::asio::awaitable<exec_result> exec(basic_container<Transport> c, std::vector<std::string> cmd,
                                         run_options options) {
    auto log = resolve_logger(options.log);
    exec_options e;
    e.cmd = std::move(cmd);
    e.env = options.env;
    e.working_dir = options.working_dir;
    e.user = options.user;
    e.tty = options.tty;
    exec_result result;
    result.streamed = options.stream;
    detail::exec_collector collect{result, options, *log, {}};
    auto& execs = c.engine().execs();
    auto id = co_await execs.create(c.id, e);
    std::exception_ptr failure;
    try {
        if (options.timeout > std::chrono::steady_clock::duration::zero())
            result.exit_code = co_await with_timeout(detail::start_exec(execs, id, collect, e.tty), options.timeout,
                                                     "the command ran longer than its time limit (" +
                                                         describe_duration(options.timeout) + ")");
        else
            result.exit_code = co_await detail::start_exec(execs, id, collect, e.tty);
    } catch (const boost::system::system_error&) {
        failure = std::current_exception();
    } catch (const protocol_error&) {
        failure = std::current_exception();
    }
    collect.flush();
    if (failure) throw exec_interrupted(failure, std::move(result));
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

// Logs the output (unless it was already streamed to the log), then throws script_failed for a non-zero exit code.
// With verbose=false nothing is logged; the exit-code check still applies.
inline void log_container_output(const exec_result& result, bool verbose = true, std::shared_ptr<logger> log = {}) {
    if (verbose && !result.streamed) {
        auto l = resolve_logger(std::move(log));
        std::string_view text = result.output;
        while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
        l->info("Container output: " + std::string(text));
    }
    if (result.exit_code && *result.exit_code != 0) throw script_failed(*result.exit_code);
}

} // namespace berth
