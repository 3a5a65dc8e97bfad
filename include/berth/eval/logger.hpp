#pragma once
// The Python module's file logger: INFO level, lines formatted as Python's
// "%(asctime)s - %(threadName)s - %(levelname)s - %(message)s" ("2026-11-26 09:07:53,123 - MainThread - INFO - ...").
// setup_logger() creates or appends to the file and stores the logger for the calling thread, where
// get_thread_logger() finds it again. A file (or its directory) that cannot be created is a berth::error with the
// system's code, naming the file. Loggers of one file share one sink: every line is one write(2) on an O_APPEND
// descriptor under one mutex, so lines from many threads never interleave.

#include <berth/error.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fcntl.h>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unistd.h>

namespace berth {

enum class log_level { debug = 10, info = 20, warning = 30, error = 40 };

inline std::string_view level_name(log_level l) {
    switch (l) {
    case log_level::debug: return "DEBUG";
    case log_level::info: return "INFO";
    case log_level::warning: return "WARNING";
    case log_level::error: return "ERROR";
    }
    return "INFO";
}

namespace detail {

inline std::string& thread_name_storage() {
    thread_local std::string name;
    return name;
}

// Initialised during static initialisation, which runs on the main thread.
inline const std::thread::id main_thread = std::this_thread::get_id();
inline std::thread::id main_thread_id() { return main_thread; }

// One open file per path, shared by every logger of that file.
class log_sink {
public:
    explicit log_sink(const std::filesystem::path& path) {
        if (path.has_parent_path()) {
            std::error_code ec;
            std::filesystem::create_directories(path.parent_path(), ec);
            if (ec) fail(ec.value(), "berth: cannot create the directory of log file " + path.string());
        }
        fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd_ < 0) fail(errno, "berth: cannot open log file " + path.string());
    }
    [[noreturn]] static void fail(int err, const std::string& what) {
        const boost::system::error_code code(err, boost::system::system_category());
        throw berth::error(code, what + ": " + code.message());
    }
    log_sink(const log_sink&) = delete;
    log_sink& operator=(const log_sink&) = delete;
    ~log_sink() { ::close(fd_); }

    void write_line(std::string_view line) {
        std::lock_guard lock(mutex_);
        while (!line.empty()) {
            auto n = ::write(fd_, line.data(), line.size());
            if (n < 0) {
                if (errno == EINTR) continue;
                return;  // a logger never throws into the work it reports on
            }
            line.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    static std::shared_ptr<log_sink> for_path(const std::filesystem::path& path) {
        static std::mutex registry_mutex;
        static std::map<std::filesystem::path, std::weak_ptr<log_sink>> registry;
        auto key = std::filesystem::weakly_canonical(std::filesystem::absolute(path));
        std::lock_guard lock(registry_mutex);
        if (auto existing = registry[key].lock()) return existing;
        auto sink = std::make_shared<log_sink>(key);
        registry[key] = sink;
        return sink;
    }

private:
    std::mutex mutex_;
    int fd_ = -1;
};

}  // namespace detail

// The name %(threadName)s prints for the calling thread. Defaults follow Python: "MainThread" for the main thread,
// "Thread-N" for the others in the order they first log.
inline void set_thread_name(std::string name) { detail::thread_name_storage() = std::move(name); }

inline const std::string& current_thread_name() {
    auto& name = detail::thread_name_storage();
    if (name.empty()) {
        static std::atomic<int> counter{0};
        name = std::this_thread::get_id() == detail::main_thread_id() ? "MainThread"
                                                                      : "Thread-" + std::to_string(++counter);
    }
    return name;
}

// Python's asctime: local time, "YYYY-MM-DD HH:MM:SS,mmm".
inline std::string format_asctime(std::chrono::system_clock::time_point t) {
    auto since = t.time_since_epoch();
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
    auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since - secs).count();
    std::time_t tt = static_cast<std::time_t>(secs.count());
    std::tm tm{};
    ::localtime_r(&tt, &tm);
    char buf[96];  // room for any int the compiler can imagine in the fields
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d,%03d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(millis));
    return buf;
}

class logger {
public:
    // Logs to `file` (created or appended to); level INFO like the Python module's.
    explicit logger(const std::filesystem::path& file, log_level threshold = log_level::info)
        : sink_(detail::log_sink::for_path(file)), threshold_(threshold) {}

    void log(log_level level, std::string_view message) const {
        if (level < threshold_) return;
        std::string line = format_asctime(std::chrono::system_clock::now());
        line += " - ";
        line += current_thread_name();
        line += " - ";
        line += level_name(level);
        line += " - ";
        line += message;
        line += '\n';
        if (sink_)
            sink_->write_line(line);
        else
            std::clog << line << std::flush;
    }
    void debug(std::string_view m) const { log(log_level::debug, m); }
    void info(std::string_view m) const { log(log_level::info, m); }
    void warning(std::string_view m) const { log(log_level::warning, m); }
    void error(std::string_view m) const { log(log_level::error, m); }

    void set_level(log_level l) { threshold_ = l; }
    log_level level() const { return threshold_; }

    // Where operations log when they were given no logger and the thread has none: standard error.
    static std::shared_ptr<logger> to_stderr() {
        static auto fallback = std::shared_ptr<logger>(new logger());
        return fallback;
    }

private:
    logger() = default;
    std::shared_ptr<detail::log_sink> sink_;
    log_level threshold_ = log_level::info;
};

namespace detail {
inline std::shared_ptr<logger>& thread_logger_slot() {
    thread_local std::shared_ptr<logger> slot;
    return slot;
}
}  // namespace detail

// Creates the logger for `log_file` and stores it for the calling thread.
inline std::shared_ptr<logger> setup_logger(const std::filesystem::path& log_file) {
    auto l = std::make_shared<logger>(log_file);
    detail::thread_logger_slot() = l;
    return l;
}

// The calling thread's logger from setup_logger(), or nullptr.
inline std::shared_ptr<logger> get_thread_logger() { return detail::thread_logger_slot(); }

// What an operation logs to: the logger it was given, else the thread's, else standard error.
inline std::shared_ptr<logger> resolve_logger(std::shared_ptr<logger> given) {
    if (given) return given;
    if (auto l = get_thread_logger()) return l;
    return logger::to_stderr();
}

}  // namespace berth
