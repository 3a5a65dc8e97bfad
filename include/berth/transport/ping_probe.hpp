#pragma once
// A first GET /_ping on a fresh connection, made by the transports that can only learn of a setup problem from the
// first exchange: a TLS 1.3 server refuses a client certificate after the client's handshake has completed, an ssh
// child fails its login or finds no `docker` only once bytes flow, and a plain-HTTP client learns that the port
// wants TLS only from the reply. The transport turns what the probe saw into a typed error naming the engine.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <string>

namespace berth::detail {

struct ping_outcome {
    boost::system::error_code ec{};  // the write or the read failed
    unsigned status = 0;
    std::string body{};
    // The connection can carry the next request: kept alive, and nothing read past the reply.
    bool reusable = false;
};

template <class Stream>
boost::asio::awaitable<ping_outcome> ping_probe(Stream& stream, const std::string& path = "/_ping") {
    namespace asio = boost::asio;
    namespace http = boost::beast::http;
    ping_outcome out;
    http::request<http::empty_body> req{http::verb::get, path, 11};
    req.set(http::field::host, "docker");
    auto [write_ec, written] = co_await http::async_write(stream, req, asio::as_tuple(asio::use_awaitable));
    (void)written;
    if (write_ec) {
        out.ec = write_ec;
        co_return out;
    }
    boost::beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024);  // "OK", or an error page
    auto [read_ec, read] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    (void)read;
    if (read_ec) {
        out.ec = read_ec;
        co_return out;
    }
    out.status = parser.get().result_int();
    out.body = parser.get().body();
    out.reusable = parser.get().keep_alive() && buffer.size() == 0;
    co_return out;
}

// The reply of a Go TLS server (dockerd's) to plain HTTP: "400 ... Client sent an HTTP request to an HTTPS server."
inline bool is_https_only_reply(const ping_outcome& o) {
    return o.status == 400 && o.body.find("HTTP request to an HTTPS server") != std::string::npos;
}

}  // namespace berth::detail
