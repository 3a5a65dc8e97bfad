#pragma once
// exec_in_pod: a command in a pod's container through the API server's pods/exec, upgraded to a WebSocket (Beast,
// over any berth Transport's stream: TLS to the API server in practice). v5.channel.k8s.io is offered first and
// v4.channel.k8s.io second; the server's choice decides the framing (exec_channel.hpp). stdout and stderr arrive
// apart (one stream with a tty), stdin is streamed from a stdin_source, and the exit code comes from the status on
// channel 3: a stream that ends without one is an error, never a silent exit 0.
//
// Ending stdin. v5 sends the close message for stdin once the source ends: `cat` reads end-of-file and exits.
// v4 (every server before Kubernetes 1.29/1.30; 1.20 answers a v5-only offer with 403) has no way to end stdin
// but closing the connection, and then the status, hence the exit code, is lost. So on v4 berth sends the source
// and then waits for the process to end by itself: a program that stops reading at a size it knows (`head -c N`,
// copy.hpp's framed `tar x`) works as on v5. One that reads stdin to its end would wait forever: berth gives it
// stdin_eof_wait of silence after the last stdin byte, then ends the exec with kubernetes_errc::stdin_not_closable
// (output that keeps arriving shows the process is still at work and restarts that wait).
//
// Bounded: each message at most read_message_max bytes (a frame announcing more is a protocol_error before its
// payload is read), the status message at most status_message_max, the connection and handshake by
// connect_timeout, the whole exec by timeout (kubernetes_errc::timeout when either runs out).
#include <berth/detail/url.hpp>
#include <berth/engine/output_handler.hpp>
#include <berth/http/header_check.hpp>
#include <berth/http/hijack.hpp>
#include <berth/kubernetes/error.hpp>
#include <berth/kubernetes/exec_channel.hpp>
#include <berth/kubernetes/names.hpp>
#include <berth/transport/transport.hpp>
#include <berth/with_timeout.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <boost/json/parse.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace berth::kubernetes {

// Headers every request to the API server carries besides berth's own (Authorization: Bearer ... from a
// kubeconfig's token). Checked: a name or value with CR, LF or NUL is refused before anything is sent.
using request_headers = std::vector<std::pair<std::string, std::string>>;

// Where an exec or a copy runs.
struct pod_container {
    std::string namespace_ = "default";  // the pod's namespace (a DNS-1123 label)
    std::string pod{};                   // the pod's name (a DNS-1123 subdomain)
    std::string container{};             // empty: the pod's only container (the server refuses it when there are more)
};

struct pod_exec_options {
    std::vector<std::string> command{};  // argv, not a shell line
    stdin_source stdin_{};               // empty: the process gets no stdin
    bool tty = false;                    // one stream (stdout) instead of stdout and stderr apart
    output_callback on_output{};         // each slice as it arrives; empty: collected into the result
    // Offered in this order (Sec-WebSocket-Protocol); the server takes the first it speaks.
    std::vector<channel_protocol> protocols{channel_protocol::v5, channel_protocol::v4};
    std::size_t read_message_max = std::size_t{1} << 20;  // the largest message accepted from the server
    std::chrono::steady_clock::duration connect_timeout = std::chrono::seconds(30);  // connect and handshake
    std::chrono::steady_clock::duration timeout = std::chrono::hours(1);             // the whole exec; zero: no limit
    // v4 only (see above): silence allowed after the last stdin byte before stdin_not_closable; zero: no limit.
    std::chrono::steady_clock::duration stdin_eof_wait = std::chrono::seconds(30);
    std::string user_agent = "berth";
};

struct pod_exec_result {
    int exit_code = 0;
    std::string stdout_text{};                         // with on_output empty (with a tty: all the output)
    std::string stderr_text{};                         // with on_output empty
    channel_protocol protocol = channel_protocol::v4;  // what the server chose
};

namespace detail {

namespace websocket = boost::beast::websocket;

inline void check_header(const std::pair<std::string, std::string>& h) {
    if (auto problem = http::header_problem(h.first, h.second))
        throw invalid_argument_error("berth::kubernetes: the request header " +
                                     berth::detail::quote_outside_text(h.first) + " cannot be sent: " + *problem);
}

inline void check_target(const pod_container& where) {
    check_name_argument(where.namespace_, name_shape::label, "namespace");
    check_name_argument(where.pod, name_shape::subdomain, "pod name");
    if (!where.container.empty()) check_name_argument(where.container, name_shape::label, "container name");
}

// GET /api/v1/namespaces/NS/pods/NAME/exec?command=..&command=..&container=..&stdin=..&stdout=true&stderr=..&tty=..
inline std::string exec_target(const pod_container& where, const pod_exec_options& options) {
    berth::detail::query q;
    for (const auto& arg : options.command) q.add("command", arg);
    if (!where.container.empty()) q.add("container", where.container);
    q.add("stdin", options.stdin_.empty() ? "false" : "true");
    q.add("stdout", "true");
    q.add("stderr", options.tty ? "false" : "true");  // a tty has one stream
    q.add("tty", options.tty ? "true" : "false");
    return "/api/v1/namespaces/" + where.namespace_ + "/pods/" + where.pod + "/exec" + q.str();
}

// The Host header: the API server's host and port when the transport knows them.
template <class Transport>
std::string host_of(const Transport& t) {
    if constexpr (requires {
                      t.address().host;
                      t.address().port;
                  }) {
        if (!t.address().host.empty()) return t.address().host + ":" + std::to_string(t.address().port);
    }
    return "localhost";
}

// A refused upgrade: the API server's Status (401, 403, 404 for a pod that does not exist, 400 for a container the
// pod has not, ...), typed as its other replies are.
[[noreturn]] inline void throw_refused_upgrade(unsigned status, std::string_view body, const std::string& endpoint) {
    std::string reason, message;
    boost::system::error_code ec;
    boost::json::parse_options limits;
    limits.max_depth = 16;
    auto v = body.size() <= status_message_max ? boost::json::parse(body, ec, {}, limits) : boost::json::value();
    if (!ec && v.is_object()) {
        reason = berth::detail::bounded_outside_text(string_member(v, "reason"), 256);
        message = berth::detail::bounded_outside_text(string_member(v, "message"));
    }
    if (message.empty()) message = "the server refused the exec upgrade: " + berth::detail::quote_outside_text(body);
    throw kubernetes_error(kubernetes_errc_from(status, reason), status, reason, message, endpoint);
}

// One exec's connection, WebSocket and limits. A watchdog closes the connection when a limit runs out; whatever
// was waiting on it then fails, and the failure is reported as the limit that ran out.
template <class Stream>
struct exec_session {
    using clock = std::chrono::steady_clock;
    enum class limit { none, handshake, whole, stdin_eof };

    exec_session(Stream s, std::size_t read_message_max)
        : stream(std::move(s)), ws(http::detail::websocket_layer<Stream>(stream)), timer(stream.get_executor()) {
        ws.read_message_max(read_message_max);
        // One frame per message: Kubernetes' WebSocket server (golang.org/x/net/websocket in 1.20) takes each frame
        // for a message, so the continuation frames of a fragmented one would land on the wrong channels (seen: a
        // stdin message cut after Beast's 4 KiB fragments).
        ws.auto_fragment(false);
        // A client masks what it sends in this buffer, a write each time it fills: Beast's 4 KiB would cut a copy's
        // stdin into 4 KiB writes (and TLS records).
        ws.write_buffer_bytes(stdin_write_buffer);
    }
    static constexpr std::size_t stdin_write_buffer = 64 * 1024;

    clock::time_point next_deadline() const {
        auto next = deadline;
        if (stdin_eof_armed && last_activity + stdin_eof_wait < next) next = last_activity + stdin_eof_wait;
        return next;
    }
    void reschedule() { timer.expires_at(next_deadline()); }  // the watchdog wakes and waits again
    void stop() {
        done = true;
        timer.cancel();
    }
    void close() {
        boost::system::error_code ignored;
        stream.close(ignored);
    }

    boost::asio::awaitable<void> watchdog() {
        namespace asio = boost::asio;
        for (;;) {
            co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));  // expired, or moved (aborted)
            if (done) co_return;
            const auto now = clock::now();
            if (next_deadline() > now) {
                reschedule();
                continue;
            }
            expired = stdin_eof_armed && last_activity + stdin_eof_wait <= now && !(deadline <= now)
                          ? limit::stdin_eof
                          : (handshaking ? limit::handshake : limit::whole);
            close();
            co_return;
        }
    }

    Stream stream;
    websocket::stream<http::detail::websocket_layer<Stream>> ws;
    boost::asio::steady_timer timer;
    clock::time_point deadline = clock::time_point::max();
    clock::time_point last_activity{};
    clock::duration stdin_eof_wait{};
    bool stdin_eof_armed = false;
    bool handshaking = true;
    bool done = false;
    limit expired = limit::none;
};

}  // namespace detail

// Runs `options.command` in the container and returns its exit code (and its output, when on_output is empty).
// Throws kubernetes_error for what the API server refused (not_found for a pod that does not exist, forbidden,
// unauthorized, bad_request for a container the pod has not) and for an exec that failed to run (its Status),
// protocol_error for a stream that breaks the channel protocol, connection_error when the connection fails.
// `transport` must outlive the call.
template <transport Transport>
boost::asio::awaitable<pod_exec_result> exec_in_pod(Transport& transport, request_headers headers, pod_container where,
                                                    pod_exec_options options) {
    namespace asio = boost::asio;
    namespace websocket = boost::beast::websocket;
    using session_type = detail::exec_session<typename Transport::stream_type>;
    using clock = std::chrono::steady_clock;

    if (options.command.empty()) throw invalid_argument_error("berth::kubernetes::exec_in_pod: the command is empty");
    detail::check_target(where);
    for (const auto& h : headers) detail::check_header(h);
    const std::string offer = protocol_offer(options.protocols);
    const std::string target = detail::exec_target(where, options);
    const std::string endpoint = transport.describe() + ": GET /api/v1/namespaces/" + where.namespace_ + "/pods/" +
                                 where.pod + "/exec";
    std::optional<stdin_source::reader> source;  // opened first: a stdin file that cannot be read refuses at once
    if (!options.stdin_.empty()) source.emplace(options.stdin_);

    auto timed_out = [&](typename session_type::limit which) {
        switch (which) {
        case session_type::limit::handshake:
            return kubernetes_error(kubernetes_errc::timeout, 0, "",
                                    "no WebSocket handshake within " + describe_duration(options.connect_timeout),
                                    endpoint);
        case session_type::limit::stdin_eof:
            return kubernetes_error(
                kubernetes_errc::stdin_not_closable, 0, "",
                "the server speaks v4.channel.k8s.io, which cannot end the process's stdin, and the process stayed "
                "silent for " +
                    describe_duration(options.stdin_eof_wait) +
                    " after all its stdin was sent: a program that reads stdin to its end (cat) never ends on v4; "
                    "give it input it stops at by itself (head -c N), or use a server with v5.channel.k8s.io "
                    "(Kubernetes 1.30)",
                endpoint);
        default:
            return kubernetes_error(kubernetes_errc::timeout, 0, "",
                                    "the exec did not end within " + describe_duration(options.timeout), endpoint);
        }
    };

    auto stream = co_await with_timeout(transport.connect(), options.connect_timeout,
                                        endpoint + ": connect: no connection within " +
                                            describe_duration(options.connect_timeout));
    session_type s(std::move(stream), options.read_message_max);
    s.deadline = clock::now() + options.connect_timeout;
    s.stdin_eof_wait = options.stdin_eof_wait;
    s.reschedule();

    pod_exec_result result;
    collected_output collected;
    auto deliver = [&](output_stream which, std::string_view data) {
        if (options.on_output)
            options.on_output(which, data);
        else
            collected(which, data);
    };

    // The handshake, then the stream read to its end beside stdin. Stops the watchdog however it ends.
    auto exchange = [&]() -> asio::awaitable<void> {
        struct stop_watchdog {
            session_type& s;
            ~stop_watchdog() { s.stop(); }
        } guard{s};
        // What a failed read, write or handshake means: a limit that ran out (the watchdog closed the connection), a
        // message over the limit, a reply that is not HTTP, or the connection lost.
        auto failure = [&](const boost::system::error_code& ec, const char* during) -> std::exception_ptr {
            if (s.expired != session_type::limit::none) return std::make_exception_ptr(timed_out(s.expired));
            if (ec == websocket::error::message_too_big)
                return std::make_exception_ptr(protocol_error(protocol_errc::oversized, endpoint,
                                                              "an exec stream message over read_message_max (" +
                                                                  std::to_string(options.read_message_max) +
                                                                  " bytes)"));
            if (http::detail::is_http_parse_error(ec))
                return std::make_exception_ptr(
                    protocol_error(endpoint, std::string("malformed reply to the upgrade: ") + ec.message()));
            return std::make_exception_ptr(connection_error(ec, endpoint + ": " + during));
        };

        s.ws.set_option(websocket::stream_base::decorator(
            [agent = options.user_agent, offer, headers](websocket::request_type& req) {
                req.set(boost::beast::http::field::user_agent, agent);
                req.set(boost::beast::http::field::sec_websocket_protocol, offer);
                for (const auto& [name, value] : headers) req.set(name, value);
            }));
        websocket::response_type reply;
        auto [hs_ec] = co_await s.ws.async_handshake(reply, detail::host_of(transport), target,
                                                     asio::as_tuple(asio::use_awaitable));
        if (hs_ec == websocket::error::upgrade_declined && s.expired == session_type::limit::none)
            detail::throw_refused_upgrade(reply.result_int(), reply.body(), endpoint);
        if (hs_ec) std::rethrow_exception(failure(hs_ec, "the WebSocket handshake"));
        auto chosen = reply.find(boost::beast::http::field::sec_websocket_protocol);
        const auto protocol = negotiated_protocol(
            chosen == reply.end() ? std::string_view()
                                  : std::string_view(chosen->value().data(), chosen->value().size()),
            options.protocols, endpoint);
        result.protocol = protocol;
        s.handshaking = false;
        s.deadline = options.timeout > clock::duration::zero() ? clock::now() + options.timeout
                                                               : clock::time_point::max();
        s.reschedule();
        s.ws.binary(true);

        std::string status;
        bool status_seen = false;
        auto reading = [&]() -> asio::awaitable<void> {
            boost::beast::flat_buffer buffer;
            for (;;) {
                buffer.clear();
                auto [ec, n] = co_await s.ws.async_read(buffer, asio::as_tuple(asio::use_awaitable));
                (void)n;
                if (ec) {
                    if (s.expired != session_type::limit::none || ec == websocket::error::message_too_big)
                        std::rethrow_exception(failure(ec, "reading the exec stream"));
                    // The status came and the server closed, with a close frame or without: the end. A close
                    // before the status is checked below; a cut connection without one is a truncated stream.
                    if (status_seen || ec == websocket::error::closed ||
                        s.ws.reason().code != websocket::close_code::none)
                        co_return;
                    if (ec == asio::error::eof)
                        throw protocol_error(protocol_errc::truncated, endpoint,
                                             "the connection closed without the exec's status: its exit code is "
                                             "unknown");
                    std::rethrow_exception(failure(ec, "reading the exec stream"));
                }
                if (!s.ws.got_binary())
                    throw protocol_error(endpoint, "a text message on a binary channel protocol (" +
                                                       std::string(protocol_name(protocol)) + ")");
                auto bytes = buffer.cdata();
                auto frame = decode_server_message(
                    std::string_view(static_cast<const char*>(bytes.data()), bytes.size()), endpoint);
                if (frame.channel == exec_channel::error) {
                    if (status.size() + frame.data.size() > status_message_max)
                        throw protocol_error(protocol_errc::oversized, endpoint,
                                             "the exec's status message is over " + std::to_string(status_message_max) +
                                                 " bytes");
                    status += frame.data;
                    status_seen = status_seen || !frame.data.empty();
                    continue;
                }
                if (frame.data.empty()) continue;  // the server's "stream open" message
                s.last_activity = clock::now();
                deliver(frame.channel == exec_channel::stderr_ ? output_stream::stderr_ : output_stream::stdout_,
                        frame.data);
            }
        };
        auto sending = [&]() -> asio::awaitable<void> {
            try {
                const char stdin_channel = static_cast<char>(exec_channel::stdin_);
                bool open = true;
                for (;;) {
                    auto bytes = co_await source->next();
                    if (bytes.empty()) break;
                    std::array<asio::const_buffer, 2> message{asio::buffer(&stdin_channel, 1),
                                                              asio::buffer(bytes.data(), bytes.size())};
                    auto [ec, n] = co_await s.ws.async_write(message, asio::as_tuple(asio::use_awaitable));
                    (void)n;
                    if (ec) {  // the connection is gone: the reading says why (or the process exited early)
                        open = false;
                        break;
                    }
                }
                if (open && protocol == channel_protocol::v5) {
                    auto closing = encode_close(protocol, exec_channel::stdin_);
                    co_await s.ws.async_write(asio::buffer(closing), asio::as_tuple(asio::use_awaitable));
                } else if (open && s.stdin_eof_wait > clock::duration::zero()) {
                    s.last_activity = clock::now();
                    s.stdin_eof_armed = true;
                    s.reschedule();
                }
            } catch (...) {
                s.close();  // the reading then ends, and the source's own failure is what is thrown
                throw;
            }
            asio::steady_timer park(co_await asio::this_coro::executor, asio::steady_timer::time_point::max());
            co_await park.async_wait(asio::as_tuple(asio::use_awaitable));  // cancelled when the reading ends
        };
        if (source)
            co_await http::run_interactive(reading(), sending());
        else
            co_await reading();
        if (!status_seen)
            throw protocol_error(protocol_errc::truncated, endpoint,
                                 "the exec stream ended without the exec's status: its exit code is unknown");
        result.exit_code = exit_code_from_status(status, endpoint);
    };

    auto ex = co_await asio::this_coro::executor;
    auto [order, watchdog_error, exchange_error] = co_await asio::experimental::make_parallel_group(
                                                       asio::co_spawn(ex, s.watchdog(), asio::deferred),
                                                       asio::co_spawn(ex, exchange(), asio::deferred))
                                                       .async_wait(asio::experimental::wait_for_all(),
                                                                   asio::use_awaitable);
    (void)order;
    (void)watchdog_error;
    s.close();
    if (exchange_error) std::rethrow_exception(exchange_error);
    result.stdout_text = std::move(collected.stdout_text);
    result.stderr_text = std::move(collected.stderr_text);
    co_return result;
}

// (Overloads, not a defaulted argument: g++ 12 double-destroys a defaulted options temporary in a co_await.)
template <transport Transport>
boost::asio::awaitable<pod_exec_result> exec_in_pod(Transport& transport, request_headers headers, pod_container where,
                                                    std::vector<std::string> command) {
    pod_exec_options options;
    options.command = std::move(command);
    return exec_in_pod(transport, std::move(headers), std::move(where), std::move(options));
}

}  // namespace berth::kubernetes
