#pragma once
// One HTTP/1.1 exchange with the engine over a pooled connection: the request (with a body given whole, or streamed
// from a pull source with chunked transfer encoding) goes out, the reply's head is read, and the body is handed
// out in slices on demand, so no reply has to fit in memory. When the body has been read to its end the connection
// goes back to the pool; an exchange dropped early closes its connection instead.
#include <berth/http/connection_pool.hpp>
#include <berth/http/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/buffer.hpp>
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
#include <concepts>
#include <memory>
#include <span>
#include <string>
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
    bool upgrade = false;      // ask to hijack the connection (exec/attach): "Connection: Upgrade, Upgrade: tcp"
};

// A pull source of request-body bytes: fills the buffer, returns how many bytes it wrote, 0 at the end.
template <class S>
concept body_source = requires(S& s, std::span<char> buffer) {
    { s.read(buffer) } -> std::convertible_to<std::size_t>;
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

// Transport failures stay system_errors (with the endpoint in the text); a reply that is not HTTP is a
// protocol_error.
[[noreturn]] inline void throw_exchange_error(const boost::system::error_code& ec, const std::string& endpoint,
                                              const char* during) {
    if (is_http_parse_error(ec)) throw protocol_error(endpoint, std::string("malformed HTTP reply: ") + ec.message());
    throw boost::system::system_error(ec, endpoint + ": " + during);
}

inline bool is_stale_connection_error(const boost::system::error_code& ec) {
    namespace error = boost::asio::error;
    return ec == error::eof || ec == error::connection_reset || ec == error::broken_pipe ||
           ec == beast_http::error::end_of_stream || ec == error::not_connected;
}

} // namespace detail

template <transport Transport>
class response {
public:
    using pool_type = connection_pool<Transport>;
    using lease_type = typename pool_type::lease;
    using parser_type = beast_http::response_parser<beast_http::buffer_body>;

    // hijacked: the request asked for an upgrade, so the connection is never handed back to the pool.
    response(lease_type lease, std::unique_ptr<parser_type> parser, std::string endpoint, bool hijacked = false)
        : lease_(std::move(lease)), parser_(std::move(parser)), endpoint_(std::move(endpoint)), hijacked_(hijacked) {
        if (parser_->is_done() && !hijacked_) finish();
    }

    unsigned status() const { return parser_->get().result_int(); }
    const beast_http::fields& headers() const { return parser_->get().base(); }
    std::string header(std::string_view name) const {
        auto it = headers().find(boost::beast::string_view(name.data(), name.size()));
        return it == headers().end() ? std::string() : std::string(it->value());
    }
    const std::string& endpoint() const { return endpoint_; }
    bool done() const { return parser_->is_done(); }

    // Up to buffer.size() bytes of the body, as soon as some have arrived; 0 once the body is complete.
    boost::asio::awaitable<std::size_t> read_some(std::span<char> buffer) {
        namespace asio = boost::asio;
        // Beast reads the body through the connection's buffer, each read as large as that buffer's free capacity
        // (at least 512 bytes, at most 64 KiB): without room there, a 512 MiB archive takes a million reads.
        if (lease_) lease_->buffer.reserve(std::min(buffer.size(), body_read_size));
        while (!parser_->is_done()) {
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
                detail::throw_exchange_error(ec, endpoint_, "reading the reply body");
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
                throw protocol_error(endpoint_, "reply body larger than " + std::to_string(limit) + " bytes");
            out.append(chunk.data(), n);
        }
        co_return out;
    }

    // After a 101 (or a hijacking 200): the raw connection, with any bytes already read kept in its buffer.
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
    bool hijacked_ = false;
};

namespace detail {

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

} // namespace detail

struct exchange_options {
    std::string host = "docker";                 // the Host header; the engine ignores it on a unix socket
    std::string user_agent = "berth/0.1";
    std::size_t upload_chunk_size = 256 * 1024;  // bytes per chunk of a streamed request body
};

// Sends `req` and reads the reply head. With a body source the body is streamed chunked, on a fresh connection (a
// streamed body cannot be replayed); otherwise a reused connection that the engine closed meanwhile is retried
// once on a new one, as long as nothing of a reply was read.
template <transport Transport, class Source = detail::no_body>
boost::asio::awaitable<response<Transport>> exchange(std::shared_ptr<connection_pool<Transport>> pool, request req,
                                                     const exchange_options& options, Source* source = nullptr) {
    namespace asio = boost::asio;
    using pool_type = connection_pool<Transport>;
    std::string endpoint = std::string(beast_http::to_string(req.method)) + " " + req.target;

    beast_http::request<beast_http::string_body> head{req.method, req.target, 11};
    head.set(beast_http::field::host, options.host);
    head.set(beast_http::field::user_agent, options.user_agent);
    for (auto& [name, value] : req.headers) head.set(name, value);
    if (req.upgrade) {
        head.set(beast_http::field::connection, "Upgrade");
        head.set(beast_http::field::upgrade, "tcp");
    }
    if (!req.content_type.empty()) head.set(beast_http::field::content_type, req.content_type);
    const bool streamed = source != nullptr;
    if (streamed) {
        head.chunked(true);
    } else {
        head.body() = std::move(req.body);
        head.prepare_payload();
    }

    for (int attempt = 0;; ++attempt) {
        auto lease = co_await pool_type::acquire(pool, streamed || attempt > 0);
        bool reused = lease->reused;
        boost::system::error_code write_ec;
        if (streamed) {
            beast_http::request_serializer<beast_http::string_body> sr(head);
            auto [ec, n] = co_await beast_http::async_write_header(lease->stream, sr, asio::as_tuple(asio::use_awaitable));
            (void)n;
            write_ec = ec;
            if (!write_ec) {
                try {
                    co_await detail::write_chunked_body(lease->stream, *source, options.upload_chunk_size);
                } catch (const boost::system::system_error& e) {
                    if (e.code() == asio::error::operation_aborted) throw;
                    write_ec = e.code();  // the engine may have answered early (e.g. 404): read its reply below
                }
            }
        } else {
            auto [ec, n] = co_await beast_http::async_write(lease->stream, head, asio::as_tuple(asio::use_awaitable));
            (void)n;
            write_ec = ec;
        }
        if (write_ec == asio::error::operation_aborted) detail::throw_exchange_error(write_ec, endpoint, "sending the request");
        if (write_ec && reused && attempt == 0 && detail::is_stale_connection_error(write_ec)) continue;

        auto parser = std::make_unique<typename response<Transport>::parser_type>();
        parser->body_limit(boost::none);
        if (req.method == beast_http::verb::head) parser->skip(true);
        auto [ec, n] = co_await beast_http::async_read_header(lease->stream, lease->buffer, *parser,
                                                              asio::as_tuple(asio::use_awaitable));
        (void)n;
        if (ec) {
            if (reused && attempt == 0 && !streamed && detail::is_stale_connection_error(ec) && lease->buffer.size() == 0)
                continue;
            detail::throw_exchange_error(write_ec ? write_ec : ec, endpoint,
                                         write_ec ? "sending the request" : "reading the reply head");
        }
        co_return response<Transport>(std::move(lease), std::move(parser), std::move(endpoint), req.upgrade);
    }
}

} // namespace berth::http
