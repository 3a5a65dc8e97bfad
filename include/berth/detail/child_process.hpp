#pragma once
// A child process that talks to berth over one socket (its stdin and stdout) and keeps its stderr in an anonymous
// file: what the ssh transport runs per connection and what credential helpers run per lookup. It is ended
// (SIGKILL) and reaped when dropped, so no child outlives its use and none is left a zombie.
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <optional>
#include <spawn.h>
#include <string>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

extern char** environ;

namespace berth::detail {

// A child process whose stdin and stdout are one socket, and whose stderr is kept in an anonymous file.
class child_process {
public:
    child_process() = default;
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    child_process(child_process&& o) noexcept
        : pid_(std::exchange(o.pid_, -1)), stderr_fd_(std::exchange(o.stderr_fd_, -1)), status_(o.status_) {}
    ~child_process() {
        end();
        if (stderr_fd_ >= 0) ::close(stderr_fd_);
    }

    // Starts argv[0] (searched in PATH unless it names a path) with `stdio` as its stdin and stdout, in a session
    // of its own (a Ctrl-C meant for the program's terminal does not cut its connections short) and with default
    // signal dispositions. Returns the errno of a failed start, 0 on success.
    int spawn(const std::vector<std::string>& argv, int stdio) {
        stderr_fd_ = ::memfd_create("berth-child-stderr", MFD_CLOEXEC);
        if (stderr_fd_ < 0) return errno;
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawnattr_t attr;
        ::posix_spawn_file_actions_init(&actions);
        ::posix_spawnattr_init(&attr);
        ::posix_spawn_file_actions_adddup2(&actions, stdio, 0);
        ::posix_spawn_file_actions_adddup2(&actions, stdio, 1);
        ::posix_spawn_file_actions_adddup2(&actions, stderr_fd_, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
        // The program's other descriptors (Asio opens sockets without O_CLOEXEC) stay out of the child.
        ::posix_spawn_file_actions_addclosefrom_np(&actions, 3);
#endif
        sigset_t none, defaults;
        sigemptyset(&none);
        sigemptyset(&defaults);
        for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&defaults, s);
        ::posix_spawnattr_setsigmask(&attr, &none);
        ::posix_spawnattr_setsigdefault(&attr, &defaults);
        short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
#ifdef POSIX_SPAWN_SETSID
        flags |= POSIX_SPAWN_SETSID;
#endif
        ::posix_spawnattr_setflags(&attr, flags);
        pid_t pid = -1;
        int rc = ::posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
        ::posix_spawn_file_actions_destroy(&actions);
        ::posix_spawnattr_destroy(&attr);
        if (rc != 0) return rc;
        pid_ = pid;
        return 0;
    }

    pid_t pid() const { return pid_; }
    bool running() const { return pid_ > 0 && !status_; }

    // The wait status once the child has exited (reaping it), else nullopt. Never blocks.
    std::optional<int> try_reap() {
        if (pid_ > 0 && !status_) {
            int st = 0;
            pid_t r = ::waitpid(pid_, &st, WNOHANG);
            if (r == pid_) status_ = st;
            else if (r < 0 && errno == ECHILD) status_ = 0;  // reaped by someone else (a SIGCHLD handler)
        }
        return status_;
    }

    // Ends the child now and reaps it. SIGKILL, not SIGTERM: the connection is over, and waiting on the child's
    // goodwill could block the caller (this runs from destructors). The remote sshd ends the remote command when
    // the TCP connection drops.
    void end() {
        if (pid_ <= 0 || status_) return;
        if (try_reap()) return;
        ::kill(pid_, SIGKILL);
        int st = 0;
        pid_t r;
        do r = ::waitpid(pid_, &st, 0);
        while (r < 0 && errno == EINTR);
        status_ = r == pid_ ? st : 0;
    }

    // What the child wrote to stderr: the last `limit` bytes, without trailing blank lines.
    std::string stderr_text(std::size_t limit = 4096) const {
        std::string out;
        if (stderr_fd_ < 0) return out;
        off_t size = ::lseek(stderr_fd_, 0, SEEK_END);
        if (size <= 0) return out;
        off_t from = size > static_cast<off_t>(limit) ? size - static_cast<off_t>(limit) : 0;
        out.resize(static_cast<std::size_t>(size - from));
        ssize_t n = ::pread(stderr_fd_, out.data(), out.size(), from);
        out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
        while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) out.pop_back();
        return out;
    }

private:
    pid_t pid_ = -1;
    int stderr_fd_ = -1;
    std::optional<int> status_{};
};

// Waits (briefly, never forever) for a child whose output has ended to exit, and reaps it.
inline boost::asio::awaitable<std::optional<int>> await_exit(child_process& child) {
    namespace asio = boost::asio;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    auto delay = std::chrono::milliseconds(1);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!child.try_reap() && std::chrono::steady_clock::now() < give_up) {
        timer.expires_after(delay);
        co_await timer.async_wait(asio::use_awaitable);
        delay = std::min(delay * 2, std::chrono::milliseconds(50));
    }
    co_return child.try_reap();
}

} // namespace berth::detail
