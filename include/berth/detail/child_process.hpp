#pragma once
// A child process that talks to berth over one socket (its stdin and stdout): what the ssh transport runs per
// connection and what credential helpers run per lookup. It runs in a process group of its own, and the whole
// group is ended (SIGKILL) when the child is dropped, and also as soon as the child itself exits: a wrapper
// script's own children would otherwise hold the socket and the stderr pipe open, and berth would wait for an end
// of output that never comes. Its stderr is a pipe berth drains as it comes, keeping only the last few KiB: a
// child that prints without end costs no memory and never blocks on a full pipe. So no process of the group
// outlives its use and none is left a zombie (one that leaves the group with setsid, a daemon, is its own).
#include <berth/detail/poll.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <memory>
#include <mutex>
#include <optional>
#include <spawn.h>
#include <string>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

extern char** environ;

namespace berth::detail {

// A child process whose stdin and stdout are one socket, and whose stderr's last bytes are kept.
class child_process {
public:
    // How much of the end of stderr is kept (what error messages quote).
    static constexpr std::size_t stderr_tail_bytes = 8 * 1024;

    child_process() = default;
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    child_process(child_process&& o) noexcept : s_(std::move(o.s_)) {}
    ~child_process() { end(); }

    // Starts argv[0] (searched in PATH unless it names a path) with `stdio` as its stdin and stdout, in a session
    // of its own (a Ctrl-C meant for the program's terminal does not cut its connections short; its group is what
    // end() kills) and with default signal dispositions. Its stderr and its exit are watched on `ex`. Returns the
    // errno of a failed start, 0 on success.
    int spawn(const boost::asio::any_io_executor& ex, const std::vector<std::string>& argv, int stdio) {
        int err_pipe[2];
        if (::pipe2(err_pipe, O_CLOEXEC) != 0) return errno;
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawnattr_t attr;
        ::posix_spawn_file_actions_init(&actions);
        ::posix_spawnattr_init(&attr);
        ::posix_spawn_file_actions_adddup2(&actions, stdio, 0);
        ::posix_spawn_file_actions_adddup2(&actions, stdio, 1);
        ::posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
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
#else
        flags |= POSIX_SPAWN_SETPGROUP;  // a group of its own at least (pgroup 0: the child's pid)
        ::posix_spawnattr_setpgroup(&attr, 0);
#endif
        ::posix_spawnattr_setflags(&attr, flags);
        pid_t pid = -1;
        int rc = ::posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
        ::posix_spawn_file_actions_destroy(&actions);
        ::posix_spawnattr_destroy(&attr);
        ::close(err_pipe[1]);
        if (rc != 0) {
            ::close(err_pipe[0]);
            return rc;
        }
        // our end never blocks: drain() reads what there is
        ::fcntl(err_pipe[0], F_SETFL, ::fcntl(err_pipe[0], F_GETFL) | O_NONBLOCK);
        s_ = std::make_shared<state>();
        std::lock_guard lock(s_->mutex);
        s_->pid = pid;
        s_->stderr_pipe.emplace(ex, err_pipe[0]);
        wait_for_stderr(s_);
        int pidfd = open_pidfd(pid);
        if (pidfd >= 0) {
            s_->exit_watch.emplace(ex, pidfd);
            wait_for_exit(s_);
        } else {
            s_->exit_poll.emplace(ex);
            poll_for_exit(s_);
        }
        return 0;
    }

    pid_t pid() const { return s_ ? s_->pid : -1; }
    bool running() const {
        if (!s_) return false;
        std::lock_guard lock(s_->mutex);
        return s_->pid > 0 && !s_->status;
    }

    // The wait status once the child has exited (reaping it, and ending what is left of its group), else nullopt.
    // Never blocks.
    std::optional<int> try_reap() {
        if (!s_) return std::nullopt;
        std::lock_guard lock(s_->mutex);
        s_->reap(false);
        return s_->status;
    }

    // Ends the child's whole group now and reaps the child. SIGKILL, not SIGTERM: the connection is over, and
    // waiting on the child's goodwill could block the caller (this runs from destructors). The remote sshd ends
    // the remote command when the TCP connection drops.
    void end() {
        if (!s_) return;
        std::lock_guard lock(s_->mutex);
        if (s_->pid > 0 && !s_->status) {
            ::kill(-s_->pid, SIGKILL);  // the group: a wrapper script's children too
            ::kill(s_->pid, SIGKILL);   // and the child, should it have left its group
            s_->reap(true);
        }
        s_->drain();  // what the group wrote before it ended
        boost::system::error_code ignored;
        if (s_->stderr_pipe) s_->stderr_pipe->close(ignored);
        if (s_->exit_watch) s_->exit_watch->close(ignored);
        if (s_->exit_poll) s_->exit_poll->cancel();
    }

    // What the child wrote to stderr: the last `limit` bytes (at most stderr_tail_bytes), without trailing blank
    // lines.
    std::string stderr_text(std::size_t limit = 4096) const {
        if (!s_) return {};
        std::lock_guard lock(s_->mutex);
        s_->drain();
        const auto& tail = s_->tail;
        std::string out = tail.substr(tail.size() > limit ? tail.size() - limit : 0);
        while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) out.pop_back();
        return out;
    }

private:
    // Shared with the handlers that drain stderr and watch for the exit; every field is guarded by `mutex`.
    struct state {
        std::mutex mutex;
        pid_t pid = -1;
        std::optional<int> status{};
        std::string tail{};  // the end of stderr: between stderr_tail_bytes and twice that once that much came
        std::optional<boost::asio::posix::stream_descriptor> stderr_pipe{};
        std::optional<boost::asio::posix::stream_descriptor> exit_watch{};  // a pidfd, readable once it exits
        std::optional<boost::asio::steady_timer> exit_poll{};               // where there are no pidfds
        std::chrono::milliseconds poll_delay{1};

        // Reads what is in the stderr pipe now (at most 1 MiB: a writer that left the group cannot hold this up);
        // true while the pipe is open.
        bool drain() {
            if (!stderr_pipe || !stderr_pipe->is_open()) return false;
            std::array<char, 16 * 1024> buffer;
            for (std::size_t total = 0; total < (std::size_t{1} << 20);) {
                ssize_t n = ::read(stderr_pipe->native_handle(), buffer.data(), buffer.size());
                if (n < 0 && errno == EINTR) continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
                if (n <= 0) {  // the end: every writer is gone
                    boost::system::error_code ignored;
                    stderr_pipe->close(ignored);
                    return false;
                }
                keep(buffer.data(), static_cast<std::size_t>(n));
                total += static_cast<std::size_t>(n);
            }
            return true;
        }
        void keep(const char* data, std::size_t n) {
            if (n >= stderr_tail_bytes) {
                tail.assign(data + n - stderr_tail_bytes, stderr_tail_bytes);
                return;
            }
            tail.append(data, n);
            if (tail.size() > 2 * stderr_tail_bytes) tail.erase(0, tail.size() - stderr_tail_bytes);
        }

        // Reaps the child if it has exited (or waits for that), ending the rest of its group first: while the
        // child is an unreaped zombie its pid, and so its group's id, cannot be taken by another process.
        void reap(bool block) {
            if (status || pid <= 0) return;
            siginfo_t info{};
            int r;
            do r = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT | (block ? 0 : WNOHANG));
            while (r < 0 && errno == EINTR);
            if (r < 0) {  // reaped by someone else (SIGCHLD ignored, or a handler): its group id is not ours now
                status = 0;
                return;
            }
            if (info.si_pid != pid) return;  // still running
            ::kill(-pid, SIGKILL);
            int st = 0;
            pid_t w;
            do w = ::waitpid(pid, &st, 0);
            while (w < 0 && errno == EINTR);
            status = w == pid ? st : 0;
        }
    };

    static int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
        int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
        if (fd >= 0) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        return fd;
#else
        (void)pid;
        return -1;
#endif
    }

    // Each of these is called with s->mutex held, and their handlers take it.
    static void wait_for_stderr(const std::shared_ptr<state>& s) {
        s->stderr_pipe->async_wait(boost::asio::posix::descriptor_base::wait_read, [s](boost::system::error_code ec) {
            std::lock_guard lock(s->mutex);
            if (!ec && s->drain()) wait_for_stderr(s);
        });
    }
    static void wait_for_exit(const std::shared_ptr<state>& s) {
        s->exit_watch->async_wait(boost::asio::posix::descriptor_base::wait_read, [s](boost::system::error_code ec) {
            std::lock_guard lock(s->mutex);
            if (ec || !s->exit_watch->is_open()) return;
            s->reap(false);
            if (!s->status) wait_for_exit(s);  // cannot happen: readable means exited
        });
    }
    static void poll_for_exit(const std::shared_ptr<state>& s) {
        s->exit_poll->expires_after(s->poll_delay);
        s->poll_delay = std::min(s->poll_delay * 2, std::chrono::milliseconds(200));
        s->exit_poll->async_wait([s](boost::system::error_code ec) {
            std::lock_guard lock(s->mutex);
            if (ec) return;
            s->reap(false);
            if (!s->status) poll_for_exit(s);
        });
    }

    std::shared_ptr<state> s_;
};

// Waits (briefly, never forever) for a child whose output has ended to exit, and reaps it.
inline boost::asio::awaitable<std::optional<int>> await_exit(child_process& child) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    auto reap = [&child]() -> boost::asio::awaitable<std::optional<int>> { co_return child.try_reap(); };
    const poll_policy policy{.first = std::chrono::milliseconds(1), .max = std::chrono::milliseconds(50)};
    auto status = co_await poll_until(reap, policy, give_up);
    if (status) co_return status;
    co_return child.try_reap();
}

}  // namespace berth::detail
