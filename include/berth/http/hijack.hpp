#pragma once
// Interactive streams: a connection the engine hijacked (exec start, container attach: HTTP upgrade to a raw
// stream) or a websocket (container attach/ws), used both ways at once. What the caller sends comes from a
// stdin_source (bytes in memory, a file read in chunks, or a coroutine handing out chunks); once it ends the
// sending side is half-closed, so a program reading its stdin to end-of-file (`cat`, `wc -c`) finishes. The
// engine's side is read to its end meanwhile. This is the one place both directions of every such stream are run.
#include <berth/detail/unique_fd.hpp>
#include <berth/error.hpp>
#include <berth/http/exchange.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unistd.h>
#include <utility>
#include <variant>
#include <vector>

namespace berth {

// What an exec or an attach sends to the process's stdin. Empty (the default): stdin is not attached.
//     .stdin_ = berth::stdin_source::text("hello\n")
//     .stdin_ = berth::stdin_source::file("/data/input.bin")           // read in chunks: memory stays flat
//     .stdin_ = berth::stdin_source::chunks([&]() -> asio::awaitable<std::string> { ...; co_return ""; })
// A copyable description: each exec or attach that uses it reads it from its beginning (a chunks producer is
// called where the last use left it).
class stdin_source {
public:
    // The next chunk of stdin; an empty string is the end. May wait (for a user's input, another stream...).
    using producer = std::function<boost::asio::awaitable<std::string>()>;
    static constexpr std::size_t chunk_size = 256 * 1024;  // a file read per write: few, large writes (and records)

    stdin_source() = default;
    static stdin_source text(std::string bytes) {
        stdin_source s;
        s.what_ = std::move(bytes);
        return s;
    }
    // A missing or unreadable file is an invalid_argument_error (naming the file and the system's reason) before
    // anything is sent to the engine.
    static stdin_source file(std::filesystem::path path) {
        stdin_source s;
        s.what_ = std::move(path);
        return s;
    }
    static stdin_source chunks(producer next) {
        stdin_source s;
        if (!next) throw invalid_argument_error("berth::stdin_source::chunks: the producer is empty");
        s.what_ = std::move(next);
        return s;
    }

    bool empty() const { return std::holds_alternative<std::monostate>(what_); }
    explicit operator bool() const { return !empty(); }

private:
    std::variant<std::monostate, std::string, std::filesystem::path, producer> what_{};

public:
    // One use of a source, opened before the request goes out.
    class reader {
    public:
        explicit reader(const stdin_source& s) : what_(&s.what_) {
            if (auto* text = std::get_if<std::string>(what_)) rest_ = *text;
            if (auto* path = std::get_if<std::filesystem::path>(what_)) {
                int fd = ::open(path->c_str(), O_RDONLY | O_CLOEXEC);
                if (fd < 0) {
                    const int err = errno;
                    throw invalid_argument_error("berth: the stdin file " + path->string() + ": " + std::strerror(err));
                }
                file_.reset(fd);
                buffer_.resize(chunk_size);
            }
        }

        // The next bytes to send (valid until the next call); empty at the end.
        boost::asio::awaitable<std::string_view> next() {
            if (std::holds_alternative<std::string>(*what_)) {
                auto n = std::min(rest_.size(), chunk_size);
                auto out = rest_.substr(0, n);
                rest_.remove_prefix(n);
                co_return out;
            }
            if (auto* path = std::get_if<std::filesystem::path>(what_)) {
                for (;;) {
                    auto n = ::read(file_.get(), buffer_.data(), buffer_.size());
                    if (n < 0 && errno == EINTR) continue;
                    if (n < 0) {
                        const int err = errno;
                        throw invalid_argument_error("berth: reading the stdin file " + path->string() + ": " +
                                                     std::strerror(err));
                    }
                    co_return std::string_view(buffer_.data(), static_cast<std::size_t>(n));
                }
            }
            if (auto* next = std::get_if<producer>(what_)) {
                chunk_ = co_await (*next)();
                co_return std::string_view(chunk_);
            }
            co_return std::string_view();
        }

    private:
        const decltype(stdin_source::what_)* what_;
        std::string_view rest_{};
        detail::unique_fd file_{};
        std::vector<char> buffer_{};
        std::string chunk_{};
    };
};

namespace http {
namespace detail {

// Half-closes a stream that can (a socket, TLS, ssh: connection_stream); others (the mock engine's in-memory
// stream) have no such thing and are left as they are.
template <class Stream>
void shutdown_send(Stream& s) {
    if constexpr (requires(boost::system::error_code & ec) { s.shutdown_send(ec); }) {
        boost::system::error_code ignored;  // a connection already gone: the reading side reports it
        s.shutdown_send(ignored);
    }
}

// Sends the source's bytes with write(bytes) -> error_code, then end_of_input(). A failed write ends the sending
// quietly: the connection is gone, and the reading side reports that (or the engine's own end, when the process
// exited without reading all of its stdin, as `cat` in the docker CLI would see). A source's own failure (a file
// that cannot be read, a producer that throws) is thrown. Then waits until cancelled: the reading side decides when
// the exchange is over.
template <class Write, class EndOfInput>
boost::asio::awaitable<void> send_stdin(stdin_source::reader& source, Write write, EndOfInput end_of_input) {
    namespace asio = boost::asio;
    for (;;) {
        auto bytes = co_await source.next();
        if (bytes.empty()) {
            end_of_input();
            break;
        }
        boost::system::error_code ec = co_await write(bytes);
        if (ec) break;
    }
    asio::steady_timer park(co_await asio::this_coro::executor, asio::steady_timer::time_point::max());
    co_await park.async_wait(asio::use_awaitable);  // cancelled when the reading ends
}

}  // namespace detail

// Runs `reading` (which reads the engine's side to its end) and `sending` (detail::send_stdin) together. The
// exchange is over when the reading ends (its error, if any, is thrown; the sending is then abandoned), or when the
// sending fails on its own (a stdin file that cannot be read: thrown, and the reading is cancelled).
inline boost::asio::awaitable<void> run_interactive(boost::asio::awaitable<void> reading,
                                                    boost::asio::awaitable<void> sending) {
    namespace asio = boost::asio;
    auto ex = co_await asio::this_coro::executor;
    auto [order, read_error, send_error] = co_await asio::experimental::make_parallel_group(
                                               asio::co_spawn(ex, std::move(reading), asio::deferred),
                                               asio::co_spawn(ex, std::move(sending), asio::deferred))
                                               .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
    if (order[0] == 0) {
        if (read_error) std::rethrow_exception(read_error);
    } else {
        if (send_error) std::rethrow_exception(send_error);
    }
}

// An engine may reset the connection when the process exits with stdin bytes it never read still arriving (Podman
// does): a reset is the stream's end once `still_running()` (an awaitable<bool>) says the process stopped, and a
// failure otherwise.
template <class StillRunning>
boost::asio::awaitable<void> reset_after_exit_is_end(boost::asio::awaitable<void> reading, StillRunning still_running) {
    std::exception_ptr failure;
    try {
        co_await std::move(reading);
        co_return;
    } catch (const connection_error& e) {
        if (e.code() != boost::asio::error::connection_reset) throw;
        failure = std::current_exception();
    }
    const bool running = co_await still_running();
    if (running) std::rethrow_exception(failure);
}

// A hijacked raw stream (after a 101): reads its bytes to the end (those that came with the reply head first),
// each slice to on_bytes; a transport error is a connection_error naming the engine and the request.
template <class Connection, class OnBytes>
boost::asio::awaitable<void> read_hijacked(Connection& c, OnBytes& on_bytes, const std::string& address,
                                           const std::string& endpoint, const char* what) {
    namespace asio = boost::asio;
    if (c.buffer.size() > 0) {
        auto data = c.buffer.data();
        on_bytes(std::span<const char>(static_cast<const char*>(data.data()), data.size()));
        c.buffer.consume(c.buffer.size());
    }
    std::array<char, 16 * 1024> buffer;
    for (;;) {
        auto [ec, n] = co_await c.stream.async_read_some(asio::buffer(buffer), asio::as_tuple(asio::use_awaitable));
        if (n > 0) on_bytes(std::span<const char>(buffer.data(), n));
        if (ec == asio::error::eof) co_return;
        if (ec) detail::throw_exchange_error(ec, address, endpoint, what);
    }
}

// Sends the source on a hijacked raw stream, then half-closes it (see send_stdin).
template <class Connection>
boost::asio::awaitable<void> send_hijacked(Connection& c, stdin_source::reader& source) {
    namespace asio = boost::asio;
    auto write = [&c](std::string_view bytes) -> asio::awaitable<boost::system::error_code> {
        auto [ec, n] = co_await asio::async_write(c.stream, asio::buffer(bytes.data(), bytes.size()),
                                                  asio::as_tuple(asio::use_awaitable));
        (void)n;
        co_return ec;
    };
    co_await detail::send_stdin(source, write, [&c] { detail::shutdown_send(c.stream); });
}

// Runs `reading` of a hijacked stream to its end, with `source` (when there is one) sent beside it and then
// half-closed; a reset once the process stopped is the end (reset_after_exit_is_end).
template <class Connection, class StillRunning>
boost::asio::awaitable<void> read_beside_stdin(boost::asio::awaitable<void> reading, Connection& c,
                                               stdin_source::reader* source, StillRunning still_running) {
    if (!source) {
        co_await std::move(reading);
        co_return;
    }
    co_await run_interactive(reset_after_exit_is_end(std::move(reading), std::move(still_running)),
                             send_hijacked(c, *source));
}

namespace detail {

// The websocket's view of a pooled connection's stream: Beast finds teardown and async_teardown for it here.
template <class Stream>
class websocket_layer {
public:
    using executor_type = typename Stream::executor_type;
    explicit websocket_layer(Stream& s) : stream_(&s) {}
    executor_type get_executor() { return stream_->get_executor(); }
    template <class Buffers, class Token>
    auto async_read_some(const Buffers& b, Token&& token) {
        return stream_->async_read_some(b, std::forward<Token>(token));
    }
    template <class Buffers, class Token>
    auto async_write_some(const Buffers& b, Token&& token) {
        return stream_->async_write_some(b, std::forward<Token>(token));
    }
    Stream& stream() { return *stream_; }

private:
    Stream* stream_;
};

// After the closing handshake: the connection is closed (without waiting on the peer; the pool's connection owns
// it and closes it again harmlessly).
template <class Stream>
void beast_close_socket(websocket_layer<Stream>& s) {  // Beast's closing on a time-out or a failed close
    boost::system::error_code ignored;
    s.stream().close(ignored);
}
template <class Stream>
void teardown(boost::beast::role_type, websocket_layer<Stream>& s, boost::system::error_code& ec) {
    s.stream().close(ec);
}
template <class Stream, class Handler>
void async_teardown(boost::beast::role_type, websocket_layer<Stream>& s, Handler&& handler) {
    boost::system::error_code ec;
    s.stream().close(ec);
    boost::asio::post(s.get_executor(), boost::beast::bind_front_handler(std::forward<Handler>(handler), ec));
}

}  // namespace detail

// A websocket on a connection taken from the pool for good (never returned to it).
template <class Connection>
struct websocket_connection {
    using layer_type = detail::websocket_layer<decltype(std::declval<Connection&>().stream)>;
    explicit websocket_connection(std::unique_ptr<Connection> c)
        : connection(std::move(c)), ws(layer_type(connection->stream)) {}
    std::unique_ptr<Connection> connection;
    boost::beast::websocket::stream<layer_type> ws;
};

// The opening handshake of a websocket (GET target with Upgrade: websocket), on a fresh connection that is
// never returned to the pool. On success `socket` is set; a refusal (any status but 101) leaves it empty and gives
// the status and the engine's body, for the engine layer to type.
template <transport Transport>
struct websocket_opening {
    std::unique_ptr<websocket_connection<typename connection_pool<Transport>::connection>> socket{};
    unsigned status = 0;
    std::string body{};
};

template <transport Transport>
boost::asio::awaitable<websocket_opening<Transport>> open_websocket(std::shared_ptr<connection_pool<Transport>> pool,
                                                                    std::string target,
                                                                    const exchange_options& options) {
    namespace asio = boost::asio;
    namespace websocket = boost::beast::websocket;
    const std::string endpoint = "GET " + target;
    const std::string address = pool->transport().describe();
    std::optional<typename connection_pool<Transport>::lease> acquired;
    try {
        acquired.emplace(co_await connection_pool<Transport>::acquire(pool, true));
    } catch (const berth::error&) {
        throw;  // typed already (TLS, ssh)
    } catch (const boost::system::system_error& e) {
        auto words = detail::connect_failure_detail(e, address);
        throw connection_error(e.code(), address + ": " + endpoint + ": connect" + (words.empty() ? "" : ": " + words));
    }
    websocket_opening<Transport> out;
    auto socket = std::make_unique<websocket_connection<typename connection_pool<Transport>::connection>>(
        acquired->release());
    socket->ws.set_option(websocket::stream_base::decorator(
        [agent = options.user_agent](websocket::request_type& req) { req.set(beast_http::field::user_agent, agent); }));
    websocket::response_type reply;
    auto [ec] = co_await socket->ws.async_handshake(reply, options.host, target, asio::as_tuple(asio::use_awaitable));
    if (ec == websocket::error::upgrade_declined) {
        out.status = reply.result_int();
        out.body = std::move(reply.body());
        co_return out;
    }
    if (ec) detail::throw_exchange_error(ec, address, endpoint, "the websocket handshake");
    out.status = 101;
    out.socket = std::move(socket);
    co_return out;
}

// Reads a websocket's messages to the engine's close frame, each slice to on_bytes; a connection that ends without
// one is a connection_error.
template <class Websocket, class OnBytes>
boost::asio::awaitable<void> read_websocket(Websocket& ws, OnBytes& on_bytes, const std::string& address,
                                            const std::string& endpoint) {
    namespace asio = boost::asio;
    std::array<char, 16 * 1024> buffer;
    for (;;) {
        auto [ec, n] = co_await ws.async_read_some(asio::buffer(buffer), asio::as_tuple(asio::use_awaitable));
        if (n > 0) on_bytes(std::span<const char>(buffer.data(), n));
        if (ec == boost::beast::websocket::error::closed) co_return;
        // The engine's close frame arrived, and it closed the connection before Beast's answer to it could be
        // written (dockerd does): the end all the same. Without a close frame, an end is a cut.
        if (ec && ws.reason().code != boost::beast::websocket::close_code::none) co_return;
        if (ec) detail::throw_exchange_error(ec, address, endpoint, "reading the websocket");
    }
}

// Sends the source as binary messages. A websocket has no half-close: when the source ends nothing more is sent,
// and the stream lasts as long as the engine keeps it (until the container exits, or the caller cancels).
template <class Websocket>
boost::asio::awaitable<void> send_websocket(Websocket& ws, stdin_source::reader& source) {
    namespace asio = boost::asio;
    auto write = [&ws](std::string_view bytes) -> asio::awaitable<boost::system::error_code> {
        ws.binary(true);
        auto [ec, n] = co_await ws.async_write(asio::buffer(bytes.data(), bytes.size()),
                                               asio::as_tuple(asio::use_awaitable));
        (void)n;
        co_return ec;
    };
    co_await detail::send_stdin(source, write, [] {});
}

}  // namespace http
}  // namespace berth
