#pragma once
// ssh:// engines, the way the docker CLI reaches them: each connection is a child
//   ssh -o ConnectTimeout=30 -o BatchMode=yes -T [-i key] [extra args] [-l user] [-p port] -- host docker system dial-stdio
// whose stdin and stdout carry the HTTP bytes. Both are one end of a socket pair rather than two pipes: a write
// to a pipe whose reader (a dead ssh) is gone raises SIGPIPE, which would kill a program that does not ignore it,
// while a socket write reports EPIPE. ssh's stderr goes to an anonymous file and becomes the text of the error
// when the connection fails. The child is ended and reaped when its connection closes (or is dropped on
// cancellation), so none outlives its connection and none is left a zombie.
#include <berth/transport/connection_stream.hpp>
#include <berth/transport/endpoint.hpp>
#include <berth/transport/error.hpp>
#include <berth/transport/ping_probe.hpp>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <optional>
#include <spawn.h>
#include <string>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace berth {
namespace detail {

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
        stderr_fd_ = ::memfd_create("berth-ssh-stderr", MFD_CLOEXEC);
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

// The connection: our end of the socket pair, and the child on the other end.
class ssh_stream final : public layered_stream {
public:
    ssh_stream(boost::asio::local::stream_protocol::socket socket, child_process child)
        : socket_(std::move(socket)), child_(std::move(child)) {}
    ~ssh_stream() override {
        boost::system::error_code ec;
        close(ec);
    }
    boost::asio::any_io_executor get_executor() override { return socket_.get_executor(); }
    void async_read_some(boost::asio::mutable_buffer buffer, handler_type handler) override {
        socket_.async_read_some(buffer, std::move(handler));
    }
    void async_write_some(gathered_buffers buffers, handler_type handler) override {
        socket_.async_write_some(buffers, std::move(handler));
    }
    void close(boost::system::error_code& ec) override {
        if (socket_.is_open()) socket_.close(ec);
        child_.end();
    }
    int liveness_handle() const override {
        return const_cast<boost::asio::local::stream_protocol::socket&>(socket_).native_handle();
    }
    child_process& child() { return child_; }

private:
    boost::asio::local::stream_protocol::socket socket_;
    child_process child_;
};

// A word for the remote shell: the remote command line is joined by ssh and parsed by the login shell.
inline std::string shell_quote(const std::string& s) {
    bool plain = !s.empty();
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' || c == '.' ||
              c == '_' || c == '-' || c == ':' || c == '='))
            plain = false;
    if (plain) return s;
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

inline bool mentions_option(const std::vector<std::string>& args, std::string_view option) {
    for (auto& a : args)
        if (a.find(option) != std::string::npos) return true;
    return false;
}

} // namespace detail

// The ssh command line for one connection to `ep` (argv[0] is the ssh program).
inline std::vector<std::string> ssh_command(const engine_endpoint& ep) {
    const auto& o = ep.ssh;
    std::vector<std::string> argv{o.program};
    if (!detail::mentions_option(o.extra_args, "ConnectTimeout"))
        argv.insert(argv.end(), {"-o", "ConnectTimeout=" + std::to_string(o.connect_timeout_seconds)});
    // Never prompt: a password or passphrase prompt would wait for a user who is not there.
    if (!detail::mentions_option(o.extra_args, "BatchMode")) argv.insert(argv.end(), {"-o", "BatchMode=yes"});
    argv.push_back("-T");  // no pseudo-terminal: the bytes must pass unchanged
    if (!o.identity_file.empty()) argv.insert(argv.end(), {"-i", o.identity_file});
    argv.insert(argv.end(), o.extra_args.begin(), o.extra_args.end());
    const auto& a = ep.address;
    if (!a.user.empty()) argv.insert(argv.end(), {"-l", a.user});
    if (a.port != 0) argv.insert(argv.end(), {"-p", std::to_string(a.port)});
    argv.insert(argv.end(), {"--", a.host, "docker"});
    if (!a.path.empty()) argv.push_back(detail::shell_quote("--host=unix://" + a.path));
    argv.insert(argv.end(), {"system", "dial-stdio"});
    return argv;
}

namespace detail {

// The typed error for a child that ended before its connection could carry a reply.
inline ssh_error ssh_failure(const engine_endpoint& ep, std::optional<int> status, const std::string& stderr_text) {
    const bool exited = status && WIFEXITED(*status);
    const int code = exited ? WEXITSTATUS(*status) : -1;
    auto has = [&](std::string_view s) { return stderr_text.find(s) != std::string::npos; };
    ssh_errc kind;
    if (has("Permission denied") || has("Too many authentication failures")) kind = ssh_errc::authentication_refused;
    else if (has("Host key verification failed") || has("REMOTE HOST IDENTIFICATION HAS CHANGED"))
        kind = ssh_errc::host_key_rejected;
    else if (code == 127 || has("docker: command not found") || has("docker: not found"))
        kind = ssh_errc::remote_docker_missing;
    else if (code == 255 || !exited) kind = ssh_errc::connection_failed;
    else kind = ssh_errc::remote_dial_failed;
    std::string reason;
    if (!status) reason = "ssh did not exit after its output ended";
    else if (exited) reason = "ssh exited with status " + std::to_string(code);
    else reason = "ssh was ended by signal " + std::to_string(WTERMSIG(*status));
    reason += stderr_text.empty() ? std::string(", printing nothing") : ": " + stderr_text;
    return ssh_error(kind, ep.to_string(), std::move(reason), code, stderr_text);
}

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

// Starts one ssh child for `ep` and checks it end to end with GET /_ping: a refused key, an unknown host key or a
// missing remote `docker` is an ssh_error carrying ssh's own words, here rather than as a cut reply later.
inline boost::asio::awaitable<connection_stream> ssh_connect(boost::asio::any_io_executor ex,
                                                             const engine_endpoint& ep) {
    namespace asio = boost::asio;
    for (bool check = true;; check = false) {
        int pair[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
            throw connection_error(boost::system::error_code(errno, boost::system::system_category()),
                                   ep.to_string(), "socketpair");
        asio::local::stream_protocol::socket ours(ex, asio::local::stream_protocol(), pair[0]);
        child_process child;
        auto argv = ssh_command(ep);
        int err = child.spawn(argv, pair[1]);
        ::close(pair[1]);
        if (err != 0)
            throw ssh_error(ssh_errc::ssh_not_found, ep.to_string(),
                            "cannot run '" + ep.ssh.program + "': " + std::strerror(err), -1, "");
        auto layered = std::make_unique<ssh_stream>(std::move(ours), std::move(child));
        auto* raw = layered.get();
        connection_stream stream(std::move(layered));
        if (!check) co_return stream;
        auto outcome = co_await ping_probe(stream);
        if (!outcome.ec && outcome.reusable) co_return stream;
        if (!outcome.ec) continue;  // answered, then closed (Connection: close): a second child carries requests
        if (outcome.ec == asio::error::operation_aborted)
            throw boost::system::system_error(outcome.ec, ep.to_string() + ": ssh connect");
        auto status = co_await await_exit(raw->child());
        auto text = raw->child().stderr_text();
        throw ssh_failure(ep, status, text);
    }
}

} // namespace detail
} // namespace berth
