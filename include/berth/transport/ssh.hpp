#pragma once
// ssh:// engines, the way the docker CLI reaches them: each connection is a child
//   ssh -o ConnectTimeout=30 -o BatchMode=yes -T [-i key] [extra args] [-l user] [-p port] -- host docker system dial-stdio
// whose stdin and stdout carry the HTTP bytes. Both are one end of a socket pair rather than two pipes: a write
// to a pipe whose reader (a dead ssh) is gone raises SIGPIPE, which would kill a program that does not ignore it,
// while a socket write reports EPIPE. The end of ssh's stderr is kept (child_process drains it) and becomes the
// text of the error when the connection fails. The child's whole process group is ended and the child reaped when
// its connection closes (or is dropped on cancellation), and the group as soon as ssh exits, so nothing outlives
// its connection (a wrapper script's children included) and none is left a zombie.
#include <berth/detail/child_process.hpp>
#include <berth/transport/connection_stream.hpp>
#include <berth/transport/endpoint.hpp>
#include <berth/transport/error.hpp>
#include <berth/transport/ping_probe.hpp>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <cstring>
#include <optional>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <vector>

namespace berth {
namespace detail {

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
    // ssh reads end-of-file on its stdin and passes it on as the channel's EOF; the remote `docker system
    // dial-stdio` then half-closes its own connection to the engine (CloseWrite), so the engine reads the end too.
    void shutdown_send(boost::system::error_code& ec) override {
        socket_.shutdown(boost::asio::local::stream_protocol::socket::shutdown_send, ec);
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

}  // namespace detail

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
    if (has("Permission denied") || has("Too many authentication failures"))
        kind = ssh_errc::authentication_refused;
    else if (has("Host key verification failed") || has("REMOTE HOST IDENTIFICATION HAS CHANGED"))
        kind = ssh_errc::host_key_rejected;
    else if (code == 127 || has("docker: command not found") || has("docker: not found"))
        kind = ssh_errc::remote_docker_missing;
    else if (code == 255 || !exited)
        kind = ssh_errc::connection_failed;
    else
        kind = ssh_errc::remote_dial_failed;
    std::string reason;
    if (!status)
        reason = "ssh did not exit after its output ended";
    else if (exited)
        reason = "ssh exited with status " + std::to_string(code);
    else
        reason = "ssh was ended by signal " + std::to_string(WTERMSIG(*status));
    reason += stderr_text.empty() ? std::string(", printing nothing") : ": " + stderr_text;
    return ssh_error(kind, ep.to_string(), std::move(reason), code, stderr_text);
}

// Starts one ssh child for `ep` and checks it end to end with GET /_ping: a refused key, an unknown host key or a
// missing remote `docker` is an ssh_error carrying ssh's own words, here rather than as a cut reply later.
inline boost::asio::awaitable<connection_stream> ssh_connect(boost::asio::any_io_executor ex,
                                                             const engine_endpoint& ep) {
    namespace asio = boost::asio;
    for (bool check = true;; check = false) {
        int pair[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
            throw connection_error(boost::system::error_code(errno, boost::system::system_category()), ep.to_string(),
                                   "socketpair");
        asio::local::stream_protocol::socket ours(ex, asio::local::stream_protocol(), pair[0]);
        child_process child;
        auto argv = ssh_command(ep);
        int err = child.spawn(ex, argv, pair[1]);
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

}  // namespace detail
}  // namespace berth
