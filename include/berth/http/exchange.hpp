#pragma once
// One HTTP/1.1 exchange with the engine over a pooled connection: the request (with a body given whole, or streamed
// from a pull source with chunked transfer encoding) goes out, the reply's head is read, and the body is handed
// out in slices on demand, so no reply has to fit in memory. When the body has been read to its end the connection
// goes back to the pool; an exchange dropped early closes its connection instead.
#include <berth/detail/outside_text.hpp>
#include <berth/http/connection_pool.hpp>
#include <berth/http/error.hpp>
#include <berth/http/header_check.hpp>
#include <berth/with_timeout.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/system/system_error.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <concepts>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace berth::http {

namespace beast_http = boost::beast::http;

struct request {
    beast_http::verb method = beast_http::verb::get;
    std::string target{};        // path and query, version prefix included
    std::string body{};          // sent with Content-Length (when no body source is given)
    std::string content_type{};  // for a body or a streamed body
    std::vector<std::pair<std::string, std::string>> headers{};
    bool upgrade = false;  // ask to hijack the connection (exec/attach): "Connection: Upgrade, Upgrade: tcp"
    std::string upgrade_protocol = "tcp";  // the Upgrade header's protocol ("h2c" for a BuildKit session)
    // How long to wait for the reply head once the request is sent; zero: no limit (a stream whose head comes
    // with its first output, such as followed logs on Podman).
    std::chrono::steady_clock::duration head_timeout{};
    // Values the request carries that no message may show (credentials in a header or the body): the engine may
    // echo them, so they are taken out of any text of the reply an error quotes (engine/client_core.hpp).
    std::vector<std::string> secrets{};
};

// A pull source of request-body bytes: fills the buffer, returns how many bytes it wrote, 0 at the end.
template <class S>
concept body_source = requires(S& s, std::span<char> buffer) {
    { s.read(buffer) } -> std::convertible_to<std::size_t>;
};

// A source whose next bytes may take a wait (a coroutine producer, stdin_source::reader in hijack.hpp): next() gives
// the next slice (valid until the following call), empty at the end.
template <class S>
concept async_body_source = requires(S& s) {
    { s.next() } -> std::same_as<boost::asio::awaitable<std::string_view>>;
};

// A body source over bytes already in memory.
struct memory_source {
    std::string_view bytes{};
    std::size_t read(std::span<char> buffer) {
        auto n = std::min(buffer.size(), bytes.size());
        std::copy_n(bytes.data(), n, buffer.data());
        bytes.remove_prefix(n);
        return n;
    }
};

namespace detail {

inline bool is_http_parse_error(const boost::system::error_code& ec) {
    static const auto& category = beast_http::make_error_code(beast_http::error::bad_version).category();
    return ec.category() == category && ec != beast_http::error::end_of_stream &&
           ec != beast_http::error::partial_message;
}

// Transport failures are connection_errors (typed by their code), with a text naming the engine's address, the
// request and what was under way; a reply that is not HTTP is a protocol_error.
[[noreturn]] inline void throw_exchange_error(const boost::system::error_code& ec, const std::string& address,
                                              const std::string& endpoint, const std::string& during) {
    if (is_http_parse_error(ec)) throw protocol_error(endpoint, std::string("malformed HTTP reply: ") + ec.message());
    throw connection_error(ec, address + ": " + endpoint + ": " + during);
}

// A transport's own words about a failed connect (an ssh error, say), without what the message says anyway: the
// address, the code's message, and the " [category:value at file:line]" Boost appends to system_error texts.
// Empty when nothing else is left.
inline std::string connect_failure_detail(const boost::system::system_error& e, const std::string& address) {
    std::string text = e.what();
    if (auto bracket = text.rfind(" ["); bracket != std::string::npos && text.ends_with(']')) text.erase(bracket);
    const std::string plain = e.code().message();
    for (const std::string& prefix : {"connect to " + address, address, std::string(":"), std::string(" ")})
        if (text.starts_with(prefix)) text.erase(0, prefix.size());
    if (text.ends_with(plain)) text.erase(text.size() - plain.size());
    while (!text.empty() && (text.back() == ' ' || text.back() == ':')) text.pop_back();
    return text;
}

inline bool is_stale_connection_error(const boost::system::error_code& ec) {
    namespace error = boost::asio::error;
    return ec == error::eof || ec == error::connection_reset || ec == error::broken_pipe ||
           ec == beast_http::error::end_of_stream || ec == error::not_connected;
}

// Requests that may be sent again when a reused connection closes before its reply: sending them twice has the
// effect of sending them once, and the same reply. (A DELETE replayed after the engine acted would answer 404 for a
// removal that succeeded; POSTs create, start, stop and exec.)
inline bool is_replayable(beast_http::verb method) {
    return method == beast_http::verb::get || method == beast_http::verb::head;
}

}  // namespace detail

template <transport Transport>
class response {
public:
    using pool_type = connection_pool<Transport>;
    using lease_type = typename pool_type::lease;
    using parser_type = beast_http::response_parser<beast_http::buffer_body>;

    // hijacked: the engine switched protocols (101), so the connection is never handed back to the pool.
    // address: the engine's (transport's) address, for the text of transport errors.
    response(lease_type lease, std::unique_ptr<parser_type> parser, std::string endpoint, std::string address,
             bool hijacked = false)
        : lease_(std::move(lease)), parser_(std::move(parser)), endpoint_(std::move(endpoint)),
          address_(std::move(address)), hijacked_(hijacked) {
        if (parser_->is_done() && !hijacked_) finish();
    }

    unsigned status() const { return parser_->get().result_int(); }
    const beast_http::fields& headers() const { return parser_->get().base(); }
    std::string header(std::string_view name) const {
        auto it = headers().find(boost::beast::string_view(name.data(), name.size()));
        return it == headers().end() ? std::string() : std::string(it->value());
    }
    const std::string& endpoint() const { return endpoint_; }
    const std::string& address() const { return address_; }
    bool done() const { return parser_->is_done(); }

    // Up to buffer.size() bytes of the body, as soon as some have arrived; 0 once the body is complete.
    boost::asio::awaitable<std::size_t> read_some(std::span<char> buffer) {
        namespace asio = boost::asio;
        // Beast reads the body through the connection's buffer, each read as large as that buffer's free capacity
        // (at least 512 bytes, at most 64 KiB): without room there, a 512 MiB archive takes a million reads.
        if (lease_) lease_->buffer.reserve(std::min(buffer.size(), body_read_size));
        while (!parser_->is_done()) {
            if (!lease_) throw protocol_error(endpoint_, "the rest of the reply body was dropped");  // read_prefix
            auto& body = parser_->get().body();
            body.data = buffer.data();
            body.size = buffer.size();
            // async_read_some, not async_read: the latter returns only once the buffer is full or the body ends,
            // which would hold back a stream's output (build progress, followed logs) until then.
            auto [ec, n] = co_await beast_http::async_read_some(lease_->stream, lease_->buffer, *parser_,
                                                                asio::as_tuple(asio::use_awaitable));
            (void)n;
            if (ec && ec != beast_http::error::need_buffer) {
                lease_ = {};  // the connection is in an unknown state: close it
                detail::throw_exchange_error(ec, address_, endpoint_, "reading the reply body");
            }
            std::size_t got = buffer.size() - body.size;
            if (parser_->is_done()) finish();
            if (got > 0) co_return got;
        }
        co_return 0;
    }

    // The whole body; a body over `limit` bytes is a protocol_error (replies of this kind are small).
    boost::asio::awaitable<std::string> read_all(std::size_t limit = std::size_t{64} << 20) {
        std::string out{};
        std::array<char, 16 * 1024> chunk;
        while (std::size_t n = co_await read_some(chunk)) {
            if (out.size() + n > limit)
                throw protocol_error(protocol_errc::oversized, endpoint_,
                                     "reply body larger than " + std::to_string(limit) + " bytes");
            out.append(chunk.data(), n);
        }
        co_return out;
    }

    // At most `limit` bytes of the body (an error reply's, kept for its message); the rest is left unread and the
    // connection closed, never reused, so a huge error reply costs neither memory nor time and keeps its status.
    boost::asio::awaitable<std::string> read_prefix(std::size_t limit) {
        std::string out{};
        std::array<char, 16 * 1024> chunk;
        while (out.size() < limit) {
            std::size_t n = co_await read_some(
                std::span<char>(chunk.data(), std::min(chunk.size(), limit - out.size())));
            if (n == 0) co_return out;
            out.append(chunk.data(), n);
        }
        if (!parser_->is_done()) lease_ = {};
        co_return out;
    }

    // After a 101: the raw connection, with any bytes already read kept in its buffer.
    std::unique_ptr<typename pool_type::connection> take_connection() { return lease_.release(); }

private:
    void finish() {
        if (lease_ && !hijacked_ && parser_->get().keep_alive()) lease_.recycle();
        lease_ = {};
    }

    static constexpr std::size_t body_read_size = 64 * 1024;  // Beast's own cap on one read of a message

    lease_type lease_;
    std::unique_ptr<parser_type> parser_{};
    std::string endpoint_{};
    std::string address_{};
    bool hijacked_ = false;
};

namespace detail {

template <class Stream, async_body_source Source>
boost::asio::awaitable<void> write_chunked_body(Stream& stream, Source& source, std::size_t) {
    namespace asio = boost::asio;
    for (;;) {
        std::string_view bytes = co_await source.next();
        if (bytes.empty()) break;
        co_await asio::async_write(stream, beast_http::make_chunk(asio::buffer(bytes.data(), bytes.size())),
                                   asio::use_awaitable);
    }
    co_await asio::async_write(stream, beast_http::make_chunk_last(), asio::use_awaitable);
}

template <class Stream>
boost::asio::awaitable<void> write_chunked_body(Stream& stream, body_source auto& source, std::size_t chunk_size) {
    namespace asio = boost::asio;
    std::unique_ptr<char[]> chunk(new char[chunk_size]);
    for (;;) {
        std::size_t n = source.read(std::span<char>(chunk.get(), chunk_size));
        if (n == 0) break;
        co_await asio::async_write(stream, beast_http::make_chunk(asio::buffer(chunk.get(), n)), asio::use_awaitable);
    }
    co_await asio::async_write(stream, beast_http::make_chunk_last(), asio::use_awaitable);
}

struct no_body {
    std::size_t read(std::span<char>) { return 0; }
};

}  // namespace detail

struct exchange_options {
    std::string host = "docker";  // the Host header; the engine ignores it on a unix socket
    std::string user_agent = "berth/0.1";
    std::size_t upload_chunk_size = 256 * 1024;  // bytes per chunk of a streamed request body
};

namespace detail {

// Reads a reply head, within `deadline` when there is one (asio::error::timed_out after it).
template <class Stream, class Parser>
boost::asio::awaitable<boost::system::error_code> read_head(
    Stream& stream, boost::beast::flat_buffer& buffer, Parser& parser,
    std::optional<std::chrono::steady_clock::time_point> deadline) {
    namespace asio = boost::asio;
    if (!deadline) {
        auto [ec, n] = co_await beast_http::async_read_header(stream, buffer, parser,
                                                              asio::as_tuple(asio::use_awaitable));
        (void)n;
        co_return ec;
    }
    asio::steady_timer timer(stream.get_executor(), *deadline);
    auto [order, ec, n, timer_ec] = co_await asio::experimental::make_parallel_group(
                                        beast_http::async_read_header(stream, buffer, parser, asio::deferred),
                                        timer.async_wait(asio::deferred))
                                        .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
    (void)n;
    (void)timer_ec;
    if (order[0] == 1) co_return asio::error::timed_out;
    co_return ec;
}

}  // namespace detail

// Sends `req` and reads the reply head (interim 1xx replies skipped). With a body source the body is streamed
// chunked, on a fresh connection (a streamed body cannot be replayed). A reused connection that the engine closed
// meanwhile is retried once on a new one when nothing of the request can have reached the engine (its write failed
// before the first byte), or when the request is replayable (GET, HEAD) and nothing of a reply was read: a POST the
// engine may have received is never sent twice.
// A 2xx reply whose body has neither Content-Length nor chunked encoding is refused (protocol_error): its end could
// not be told from a cut connection. A 101 is accepted only for a request that asked for an upgrade.
template <transport Transport, class Source = detail::no_body>
boost::asio::awaitable<response<Transport>> exchange(std::shared_ptr<connection_pool<Transport>> pool, request req,
                                                     const exchange_options& options, Source* source = nullptr) {
    namespace asio = boost::asio;
    using pool_type = connection_pool<Transport>;
    using parser_type = typename response<Transport>::parser_type;
    std::string endpoint = std::string(beast_http::to_string(req.method)) + " " + req.target;
    const std::string address = pool->transport().describe();

    beast_http::request<beast_http::string_body> head{req.method, req.target, 11};
    head.set(beast_http::field::host, options.host);
    head.set(beast_http::field::user_agent, options.user_agent);
    for (auto& [name, value] : req.headers) {
        if (auto problem = header_problem(name, value))  // each API has refused it already, in its own words
            throw invalid_argument_error(endpoint + ": the header " + berth::detail::quote_outside_text(name, 40) +
                                         " cannot be sent: " + *problem);
        head.set(name, value);
    }
    if (req.upgrade) {
        head.set(beast_http::field::connection, "Upgrade");
        head.set(beast_http::field::upgrade, req.upgrade_protocol);
    }
    if (!req.content_type.empty()) head.set(beast_http::field::content_type, req.content_type);
    const bool streamed = source != nullptr;
    if (streamed) {
        head.chunked(true);
    } else {
        head.body() = std::move(req.body);
        head.prepare_payload();
    }
    const std::string waiting_for_head = req.head_timeout.count() > 0
                                             ? "no reply head within " + describe_duration(req.head_timeout)
                                             : std::string("reading the reply head");

    for (int attempt = 0;; ++attempt) {
        std::optional<typename pool_type::lease> acquired;
        try {
            acquired.emplace(co_await pool_type::acquire(pool, streamed || attempt > 0));
        } catch (const connection_error&) {
            throw;  // already typed (TLS, ssh) and naming the engine: callers catch it as what it is
        } catch (const berth::error&) {
            throw;  // not a connection failure (bad input, say): callers catch it as what it is
        } catch (const boost::system::system_error& e) {
            auto words = detail::connect_failure_detail(e, address);
            throw connection_error(e.code(),
                                   address + ": " + endpoint + ": connect" + (words.empty() ? "" : ": " + words));
        }
        auto lease = std::move(*acquired);
        const bool reused = lease->reused;
        boost::system::error_code write_ec;
        std::size_t written = 0;
        if (streamed) {
            beast_http::request_serializer<beast_http::string_body> sr(head);
            auto [ec, n] = co_await beast_http::async_write_header(lease->stream, sr,
                                                                   asio::as_tuple(asio::use_awaitable));
            write_ec = ec;
            written = n;
            if (!write_ec) {
                try {
                    co_await detail::write_chunked_body(lease->stream, *source, options.upload_chunk_size);
                } catch (const berth::error&) {
                    throw;  // the body's own failure (a tar::error from the packer): not the connection's
                } catch (const boost::system::system_error& e) {
                    if (e.code() == asio::error::operation_aborted) throw;
                    write_ec = e.code();  // the engine may have answered early (e.g. 404): read its reply below
                }
            }
        } else {
            auto [ec, n] = co_await beast_http::async_write(lease->stream, head, asio::as_tuple(asio::use_awaitable));
            write_ec = ec;
            written = n;
        }
        if (write_ec == asio::error::operation_aborted)
            detail::throw_exchange_error(write_ec, address, endpoint, "sending the request");
        const bool first_try_on_reused = reused && attempt == 0 && !streamed;
        if (write_ec && first_try_on_reused && written == 0 && detail::is_stale_connection_error(write_ec)) continue;

        std::optional<std::chrono::steady_clock::time_point> deadline{};
        if (req.head_timeout.count() > 0) deadline = std::chrono::steady_clock::now() + req.head_timeout;
        auto parser = std::make_unique<parser_type>();
        bool retry = false;
        for (;;) {
            parser->body_limit(boost::none);
            if (req.method == beast_http::verb::head) parser->skip(true);
            auto ec = co_await detail::read_head(lease->stream, lease->buffer, *parser, deadline);
            if (ec) {
                if (first_try_on_reused && detail::is_replayable(req.method) && !parser->got_some() &&
                    detail::is_stale_connection_error(ec) && lease->buffer.size() == 0) {
                    retry = true;
                    break;
                }
                if (ec == asio::error::timed_out) detail::throw_exchange_error(ec, address, endpoint, waiting_for_head);
                detail::throw_exchange_error(write_ec ? write_ec : ec, address, endpoint,
                                             write_ec ? "sending the request" : "reading the reply head");
            }
            const unsigned status = parser->get().result_int();
            // 100 Continue, 102 Processing, 103 Early Hints: the real reply follows on the same connection.
            if (status / 100 != 1 || (status == 101 && req.upgrade)) break;
            if (status == 101) throw protocol_error(endpoint, "the engine switched protocols (101) unasked");
            parser = std::make_unique<parser_type>();
        }
        if (retry) continue;
        const unsigned status = parser->get().result_int();
        if (parser->need_eof() && status >= 200 && status < 300)
            throw protocol_error(endpoint, "the reply body has neither Content-Length nor chunked encoding, so a "
                                           "connection cut short could not be told from its end");
        co_return response<Transport>(std::move(lease), std::move(parser), std::move(endpoint), address,
                                      req.upgrade && status == 101);
    }
}

}  // namespace berth::http
