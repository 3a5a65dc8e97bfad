#pragma once
// Raw requests: an Engine API request berth has no typed call for (an endpoint newer than API 1.56, a query
// parameter or header the typed options lack), written without anything from berth::detail. The caller gives the
// method, path, query, headers and body; berth checks each (a path without spaces or control characters, headers
// that cannot smuggle another header or override the framing), percent-encodes the query, puts the negotiated
// "/v1.xx" before the path and applies the client's time limits, as for a typed call. Three shapes: send() (the
// whole reply, bounded), open() (the reply head, then its body slice by slice) and upgrade() (a hijacked
// connection used both ways, as exec start and attach use it).
//
// A non-2xx reply is, as from every typed call, the engine_error of its status (not_found_error, conflict_error,
// with the engine's message), so that a raw call and a typed call of the same endpoint fail alike and one catch
// covers both; `.throw_on_error = false` hands the status back as a value instead, for a caller who branches on it.
#include <berth/detail/url.hpp>
#include <berth/engine/client_core.hpp>
#include <berth/http/header_check.hpp>
#include <berth/http/hijack.hpp>

#include <boost/beast/http/fields.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace berth {

struct raw_request {
    verb method = verb::get;
    // The path without the API version ("/containers/json"); the negotiated "/v1.xx" is put before it unless
    // verbatim_path. Printable ASCII without spaces, '?' and '#' (the query goes in `query`); a name put into
    // the path goes through raw_path_segment().
    std::string path{};
    std::vector<std::pair<std::string, std::string>> query{};  // in this order; berth percent-encodes each part
    // Sent as given, after berth's own (a User-Agent here replaces berth's). Host, Content-Length,
    // Transfer-Encoding, Connection and Upgrade are berth's to set; a name that is not an HTTP token, or a value
    // with CR, LF or another control character but tab, is refused.
    std::vector<std::pair<std::string, std::string>> headers{};
    std::string body{};  // sent with Content-Length; give its Content-Type in `headers`
    // Or a body sent chunked while it is produced: text, a file read in 64 KiB slices, or a coroutine handing out
    // chunks (the same type as an exec's stdin); never held whole in memory, and never sent twice.
    stdin_source streamed_body{};
    // Send `path` as it is, without the version prefix: an unversioned endpoint, or a version of the caller's choice.
    bool verbatim_path = false;
    // False: a non-2xx reply is returned (send, open) rather than thrown.
    bool throw_on_error = true;
    // Unset: the client's request_timeout; zero: none. send(): the whole exchange; open() and upgrade(): the wait
    // for the reply head (the body after it, as any stream's, is limited by the caller: with_timeout, cancellation).
    std::optional<std::chrono::steady_clock::duration> timeout{};
    // send(): a longer reply body is a protocol_error (protocol_errc::oversized), and the connection is closed.
    std::size_t max_reply_bytes = std::size_t{64} << 20;
    // Values the request carries that no error message may show (a credential in a header): taken out of the
    // engine's text an engine_error quotes.
    std::vector<std::string> secrets{};
};

struct raw_response {
    unsigned status = 0;
    boost::beast::http::fields headers{};
    std::string body{};

    bool ok() const { return status >= 200 && status < 300; }
    // A header's value; empty when absent.
    std::string header(std::string_view name) const {
        auto it = headers.find(boost::beast::string_view(name.data(), name.size()));
        return it == headers.end() ? std::string() : std::string(it->value());
    }
    // The body as JSON; a protocol_error naming `endpoint` when it is not.
    json::value body_json(const std::string& endpoint = "raw request") const {
        return json_read::parse(body, endpoint);
    }
};

// What upgrade() sends and where the engine's bytes go.
struct raw_upgrade_options {
    // Sent on the hijacked connection; when it ends, berth's sending side is half-closed (see hijack.hpp).
    stdin_source input{};
    // The engine's bytes as they arrive, as sent: a multiplexed stdout/stderr stream is not split here.
    std::function<void(std::string_view)> on_bytes{};
};

// A name (container, image, volume...) as one path segment: everything but unreserved characters
// percent-encoded, '/' included ("my vol" -> "my%20vol").
inline std::string raw_path_segment(std::string_view name) { return detail::percent_encode(name); }

namespace detail {

inline bool iequals_ascii(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

// The request target of a raw request (path and query, without the version prefix), or invalid_argument_error
// saying what is wrong; nothing is sent before this passed.
inline std::string raw_target(const raw_request& req) {
    auto refuse = [&](const std::string& why) -> void {
        throw invalid_argument_error("berth: raw request " + quote_outside_text(req.path, 80) + ": " + why);
    };
    if (req.method == verb::unknown) refuse("the method is unknown");
    if (req.path.empty() || req.path.front() != '/') refuse("the path must start with '/'");
    for (char c : req.path) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f)
            refuse("the path may hold printable ASCII only (no space or control character; percent-encode the "
                   "rest, see raw_path_segment)");
        if (c == '?' || c == '#') refuse("the path may hold no '?' or '#': give the query in `query`");
    }
    if (!req.verbatim_path && req.path.size() > 2 && req.path[1] == 'v') {
        auto end = req.path.find('/', 1);
        if (parse_api_version(std::string_view(req.path).substr(2, end == std::string::npos ? end : end - 2)))
            refuse("the path already names an API version: give it without, or set verbatim_path");
    }
    if (!req.body.empty() && req.streamed_body) refuse("both a body and a streamed body");
    for (auto& [name, value] : req.headers) {
        if (auto problem = http::header_problem(name, value))
            refuse("the header " + quote_outside_text(name, 40) + " cannot be sent: " + *problem);
        for (std::string_view reserved : {"Host", "Content-Length", "Transfer-Encoding", "Connection", "Upgrade"})
            if (iequals_ascii(name, reserved)) refuse("the header " + name + " is set by berth");
    }
    std::string target = req.path;
    char separator = '?';
    for (auto& [key, value] : req.query) {
        if (key.empty()) refuse("a query parameter without a name");
        target += separator;
        target += percent_encode(key);
        target += '=';
        target += percent_encode(value);
        separator = '&';
    }
    return target;
}

}  // namespace detail

// A reply whose body is read as it arrives (open()): the status and headers first, then next_chunk() until it
// gives an empty string. Dropped before the end, it closes its connection.
template <transport Transport>
class raw_stream {
public:
    explicit raw_stream(http::response<Transport> reply) : reply_(std::move(reply)) {}

    unsigned status() const { return reply_.status(); }
    bool ok() const { return status() >= 200 && status() < 300; }
    const boost::beast::http::fields& headers() const { return reply_.headers(); }
    std::string header(std::string_view name) const { return reply_.header(name); }
    const std::string& endpoint() const { return reply_.endpoint(); }  // "GET /v1.41/events?since=..."

    // The next bytes of the body as soon as some arrived (at most 64 KiB); empty once the body is complete. A
    // connection cut before the end is a connection_error (or a protocol_error for a malformed chunk).
    boost::asio::awaitable<std::string> next_chunk() {
        std::string chunk(chunk_size, '\0');
        auto n = co_await reply_.read_some(std::span<char>(chunk.data(), chunk.size()));
        chunk.resize(n);
        co_return chunk;
    }

    static constexpr std::size_t chunk_size = 64 * 1024;

private:
    http::response<Transport> reply_;
};

template <transport Transport>
class raw_requests {
public:
    explicit raw_requests(client_core<Transport>& c) : client_(c) {}

    // The request, and its whole reply (at most max_reply_bytes of body).
    boost::asio::awaitable<raw_response> send(raw_request req) {
        auto limit = req.timeout.value_or(client_.options().request_timeout);
        if (limit.count() <= 0) co_return co_await send_unlimited(std::move(req));
        auto target = co_await versioned_target(req);  // checked before anything is sent
        std::string what = client_.transport().describe() + ": " +
                           std::string(boost::beast::http::to_string(req.method)) + " " + target +
                           ": no complete reply within " + describe_duration(limit);
        co_return co_await with_timeout(send_unlimited(std::move(req)), limit, std::move(what));
    }

    // The request; the reply's head, its body to be read with next_chunk().
    boost::asio::awaitable<raw_stream<Transport>> open(raw_request req) {
        auto reply = co_await exchange(req, false);
        if (!is_success(reply.status()) && req.throw_on_error)
            co_await client_core<Transport>::throw_reply_error(reply, req.secrets);
        co_return raw_stream<Transport>(std::move(reply));
    }

    // The request with "Connection: Upgrade, Upgrade: tcp" (an exec start, an attach, a future endpoint of that
    // kind); once the engine switched protocols (101), options.input is sent on the connection while the engine's
    // bytes go to options.on_bytes, until the engine ends the stream. Returns the reply head (status 101 and its
    // headers). Any other status is an error whatever throw_on_error says: a non-2xx its engine_error, a 2xx a
    // protocol_error (there is no stream to use). The stream has no time limit of its own.
    boost::asio::awaitable<raw_response> upgrade(raw_request req, raw_upgrade_options options) {
        std::optional<stdin_source::reader> input;
        if (options.input) input.emplace(options.input);  // an unreadable file: refused before sending
        auto reply = co_await exchange(req, true);
        if (reply.status() >= 300) co_await client_core<Transport>::throw_reply_error(reply, req.secrets);
        raw_response head{.status = reply.status(), .headers = reply.headers()};
        auto stream = client_core<Transport>::hijacked_from(reply, "the upgraded stream");
        auto& connection = stream.connection;
        const std::string& endpoint = stream.endpoint;
        const std::string& address = stream.address;
        auto on_bytes = [&options](std::span<const char> bytes) {
            if (options.on_bytes && !bytes.empty()) options.on_bytes(std::string_view(bytes.data(), bytes.size()));
        };
        auto reading = http::read_hijacked(*connection, on_bytes, address, endpoint, "reading the upgraded stream");
        if (input)
            co_await http::run_interactive(std::move(reading), http::send_hijacked(*connection, *input));
        else
            co_await std::move(reading);
        co_return head;
    }
    boost::asio::awaitable<raw_response> upgrade(raw_request req) {
        return upgrade(std::move(req), raw_upgrade_options{});
    }

private:
    static bool is_success(unsigned status) { return status >= 200 && status < 300; }

    boost::asio::awaitable<std::string> versioned_target(const raw_request& req) {
        auto target = detail::raw_target(req);
        if (!req.verbatim_path) target = "/v" + (co_await client_.api_version()) + target;
        co_return target;
    }

    boost::asio::awaitable<http::response<Transport>> exchange(const raw_request& req, bool upgrade) {
        std::string target = co_await versioned_target(req);  // a named local: no co_await inside the braces (g++ 12)
        http::request out{.method = req.method,
                          .target = std::move(target),
                          .body = req.body,
                          .headers = req.headers,
                          .upgrade = upgrade,
                          .head_timeout = req.timeout.value_or(client_.options().request_timeout),
                          .secrets = req.secrets};
        if (out.head_timeout.count() < 0) out.head_timeout = {};
        if (req.streamed_body) {
            stdin_source::reader body(req.streamed_body);
            co_return co_await client_.exchange_as_given(std::move(out), &body);
        }
        co_return co_await client_.exchange_as_given(std::move(out));
    }

    boost::asio::awaitable<raw_response> send_unlimited(raw_request req) {
        auto reply = co_await exchange(req, false);
        if (!is_success(reply.status()) && req.throw_on_error)
            co_await client_core<Transport>::throw_reply_error(reply, req.secrets);
        raw_response out{.status = reply.status(), .headers = reply.headers()};
        out.body = co_await reply.read_all(req.max_reply_bytes);
        co_return out;
    }

    client_core<Transport>& client_;
};

}  // namespace berth
