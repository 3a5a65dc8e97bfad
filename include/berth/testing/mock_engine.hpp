#pragma once
// berth::testing::mock_engine: a Transport model that serves scripted HTTP over in-memory connections, so tests
// drive the real HTTP and engine code of basic_client<mock_engine>.
//
//     boost::asio::io_context ioc;
//     berth::testing::mock_engine engine(ioc.get_executor());          // answers /version like Docker 20.10
//     engine.on(verb::get, "/containers/app/json", reply::json(200, R"({"Id":"abc"})"));
//     engine.on(verb::get, "/containers/gone/json", reply::error(404, "No such container: gone"));
//     engine.once(verb::get, "/containers/app/json", reply::stall());   // the next such request is never answered
//     berth::basic_client<berth::testing::mock_engine> client(engine);  // copies share the script and the log
//     ... run the client ...
//     CHECK(engine.requests_to(verb::get, "/containers/app/json").at(0).target == "/v1.41/containers/app/json");
//
// Unscripted requests get a 404 naming them; GET /version and /_ping have defaults (Docker 20.10, API 1.41).
//
// Each connection the client opens is served by a coroutine on the engine's executor: it parses requests with
// Beast (chunked uploads are de-chunked), records them, answers from the script, and keeps the connection alive
// for the next request unless the reply says otherwise. Replies are data (status, headers, body pieces sent with a
// pause between them, and what the engine does afterwards), so faults are replies too: a body cut short, a
// truncated head, garbage, a stall, a hang-up.
#include <berth/version.hpp>  // first: the C++20 check
#include <berth/detail/base64.hpp>
#include <berth/http/multiplexed_stream.hpp>
#include <berth/transport/transport.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/system/system_error.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace berth::testing {

namespace mock_detail {

inline std::string percent_decode(std::string_view s) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}


// Cancelling a read closes the in-memory connection (what a client does with a socket whose exchange it gave up).
struct close_on_cancel {
    std::weak_ptr<boost::beast::test::stream> stream;
    void operator()(boost::asio::cancellation_type type) {
        if (type == boost::asio::cancellation_type::none) return;
        if (auto s = stream.lock()) s->close();
    }
};

// Wraps a read handler: removes the cancellation handler from the slot before completing, so a later cancellation
// cannot reach a finished read. Keeps the handler's executor and allocator.
template <class Handler>
struct slot_clearing_handler {
    Handler handler;
    boost::asio::associated_cancellation_slot_t<Handler> slot;
    boost::asio::any_io_executor fallback;

    using executor_type = boost::asio::associated_executor_t<Handler, boost::asio::any_io_executor>;
    executor_type get_executor() const noexcept { return boost::asio::get_associated_executor(handler, fallback); }
    using allocator_type = boost::asio::associated_allocator_t<Handler>;
    allocator_type get_allocator() const noexcept { return boost::asio::get_associated_allocator(handler); }

    void operator()(boost::system::error_code ec, std::size_t n) {
        if (slot.is_connected()) slot.clear();
        std::move(handler)(ec, n);
    }
};

struct initiate_cancellable_read {
    template <class Handler, class Buffers>
    void operator()(Handler&& handler, const std::shared_ptr<boost::beast::test::stream>& stream,
                    const Buffers& buffers) const {
        using handler_type = std::decay_t<Handler>;
        auto slot = boost::asio::get_associated_cancellation_slot(handler);
        if (!slot.is_connected()) {
            stream->async_read_some(buffers, std::forward<Handler>(handler));
            return;
        }
        slot.template emplace<close_on_cancel>(close_on_cancel{stream});
        stream->async_read_some(
            buffers, slot_clearing_handler<handler_type>{std::forward<Handler>(handler), slot, stream->get_executor()});
    }
};

}  // namespace mock_detail

// The client end of an in-memory connection: a beast::test::stream that also honours per-operation cancellation
// of reads (test::stream does not), as a socket does, so time limits and cancellation slots work on it. Writes
// complete at once (the peer's buffer is unbounded), so they need none.
class mock_stream {
public:
    using executor_type = boost::asio::any_io_executor;

    explicit mock_stream(boost::beast::test::stream s)
        : stream_(std::make_shared<boost::beast::test::stream>(std::move(s))) {}

    executor_type get_executor() noexcept { return stream_->get_executor(); }

    // The peer reads what was written so far, then end of stream.
    void close() { stream_->close(); }
    void close(boost::system::error_code& ec) {
        ec = {};
        stream_->close();
    }

    template <class MutableBufferSequence, class Token = boost::asio::default_completion_token_t<executor_type>>
    auto async_read_some(const MutableBufferSequence& buffers, Token&& token = {}) {
        return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
            mock_detail::initiate_cancellable_read{}, token, stream_, buffers);
    }

    template <class ConstBufferSequence, class Token = boost::asio::default_completion_token_t<executor_type>>
    auto async_write_some(const ConstBufferSequence& buffers, Token&& token = {}) {
        return stream_->async_write_some(buffers, std::forward<Token>(token));
    }

private:
    std::shared_ptr<boost::beast::test::stream> stream_;
};

static_assert(byte_stream<mock_stream>);

// One request as the engine received it.
struct recorded_request {
    boost::beast::http::verb method = boost::beast::http::verb::unknown;
    std::string target{};       // as sent: "/v1.41/containers/create?name=app"
    std::string path{};         // percent-decoded, without the version prefix and the query: "/containers/create"
    std::string api_version{};  // "1.41" from the "/v1.41" prefix, empty when unversioned
    boost::beast::http::fields headers{};
    std::string body{};          // de-chunked
    bool chunked = false;        // the body came with Transfer-Encoding: chunked
    std::size_t connection = 0;  // 1 for the first connection the engine accepted, 2 for the next, ...

    std::string header(std::string_view name) const {
        auto it = headers.find(boost::beast::string_view(name.data(), name.size()));
        return it == headers.end() ? std::string() : std::string(it->value());
    }
    bool has_header(std::string_view name) const {
        return headers.find(boost::beast::string_view(name.data(), name.size())) != headers.end();
    }
    // The decoded value of a query parameter; nullopt when absent.
    std::optional<std::string> query(std::string_view key) const {
        auto q = target.find('?');
        if (q == std::string::npos) return std::nullopt;
        std::string_view rest = std::string_view(target).substr(q + 1);
        while (!rest.empty()) {
            auto amp = rest.find('&');
            auto pair = rest.substr(0, amp);
            auto eq = pair.find('=');
            if (mock_detail::percent_decode(pair.substr(0, eq)) == key)
                return eq == std::string_view::npos ? std::string() : mock_detail::percent_decode(pair.substr(eq + 1));
            if (amp == std::string_view::npos) break;
            rest.remove_prefix(amp + 1);
        }
        return std::nullopt;
    }
    // The body parsed as JSON (throws boost::system::system_error when it is not).
    boost::json::value json() const { return boost::json::parse(body); }
};

// What the engine sends back for one request, and what it does with the connection afterwards.
struct reply {
    enum class framing {
        content_length,  // head with Content-Length, then the body pieces
        chunked,         // head with Transfer-Encoding: chunked, one chunk per body piece, then the last chunk
        head_only,       // head without a length (101 Switching Protocols, or a hijacking 200), then raw pieces
        raw,             // no head: the pieces verbatim (garbage, truncated heads)
    };
    enum class then {
        keep_alive,  // wait for the next request (unless the request or the reply said Connection: close)
        close,       // close the connection right after the reply, without announcing it
        stall,       // keep the connection open and never send another byte (until the client closes it); a
                     // chunked reply then lacks its last chunk, a Content-Length one may stop short of its length
    };

    unsigned status = 200;
    std::vector<std::pair<std::string, std::string>> headers{};
    std::vector<std::string> pieces{};  // written one by one, with a pause between them so each can be a read
    framing how = framing::content_length;
    std::optional<std::size_t> declared_length{};  // content_length: announce this instead of the real size
    then after = then::keep_alive;

    reply& header(std::string name, std::string value) {
        headers.emplace_back(std::move(name), std::move(value));
        return *this;
    }
    reply& then_close() {
        after = then::close;
        return *this;
    }
    reply& then_stall() {
        after = then::stall;
        return *this;
    }

    // --- ordinary replies ---

    static reply text(unsigned status, std::string body, std::string content_type = "text/plain; charset=utf-8") {
        reply r;
        r.status = status;
        r.header("Content-Type", std::move(content_type));
        r.pieces.push_back(std::move(body));
        return r;
    }
    static reply json(unsigned status, std::string_view json_text) {
        return text(status, std::string(json_text) + "\n", "application/json");
    }
    static reply json(unsigned status, const char* json_text) { return json(status, std::string_view(json_text)); }
    static reply json(unsigned status, const std::string& json_text) {
        return json(status, std::string_view(json_text));
    }
    static reply json(unsigned status, const boost::json::value& v) { return json(status, boost::json::serialize(v)); }
    static reply no_content(unsigned status = 204) {
        reply r;
        r.status = status;
        return r;
    }
    // An engine error: {"message": "..."} with the status.
    static reply error(unsigned status, std::string_view message) {
        return json(status, boost::json::value{{"message", message}});
    }
    // A body with Content-Length, sent in pieces (logs, archives).
    static reply streamed(unsigned status, std::vector<std::string> body_pieces, std::string content_type) {
        reply r;
        r.status = status;
        r.header("Content-Type", std::move(content_type));
        r.pieces = std::move(body_pieces);
        return r;
    }
    // A chunked body, one chunk per piece (streams: build progress, logs, pulls). With then_stall() the last
    // chunk is never sent: the stream stays open, as a long build's does.
    static reply chunked(unsigned status, std::vector<std::string> chunks, std::string content_type) {
        reply r;
        r.status = status;
        r.how = framing::chunked;
        r.header("Content-Type", std::move(content_type));
        r.pieces = std::move(chunks);
        return r;
    }
    // GET /containers/{id}/archive: the stat header (base64 of the JSON) and a tar body sent in pieces.
    static reply archive(const boost::json::value& stat, std::vector<std::string> body_pieces) {
        reply r;
        r.header("Content-Type", "application/x-tar");
        r.header("X-Docker-Container-Path-Stat", berth::detail::base64_encode(boost::json::serialize(stat)));
        r.pieces = std::move(body_pieces);
        return r;
    }
    // 101 UPGRADED, then the raw (multiplexed) stream in pieces, then the engine closes the connection.
    static reply upgrade(std::vector<std::string> stream_pieces) {
        reply r;
        r.status = 101;
        r.how = framing::head_only;
        r.header("Content-Type", "application/vnd.docker.raw-stream");
        r.header("Connection", "Upgrade");
        r.header("Upgrade", "tcp");
        r.pieces = std::move(stream_pieces);
        r.after = then::close;
        return r;
    }
    // Bytes written verbatim, then the connection is closed.
    static reply raw(std::string bytes) {
        reply r;
        r.how = framing::raw;
        r.pieces.push_back(std::move(bytes));
        r.after = then::close;
        return r;
    }

    // --- faults ---

    // The head announces the whole body, `sent` bytes of it follow, then the connection is reset.
    static reply reset_mid_body(unsigned status, std::string body, std::size_t sent,
                                std::string content_type = "application/json") {
        reply r = text(status, body.substr(0, sent), std::move(content_type));
        r.declared_length = body.size();
        r.after = then::close;
        return r;
    }
    // The reply head stops in the middle of a header line; then the connection closes.
    static reply truncated_head() { return raw("HTTP/1.1 200 OK\r\nContent-Type: applic"); }
    // Bytes that are not HTTP at all.
    static reply garbage() { return raw("\x16\x03\x01 this is not HTTP \x00\xff\r\n\r\n"); }
    // The engine reads the request and never answers.
    static reply stall() {
        reply r;
        r.how = framing::raw;
        r.after = then::stall;
        return r;
    }
    // The engine closes the connection without a byte of reply.
    static reply hang_up() { return raw(std::string()); }
};

// One frame of the engine's multiplexed stdout/stderr stream: [stream, 0, 0, 0, size (big-endian u32)] + payload.
inline std::string exec_frame(output_stream stream, std::string_view payload) {
    std::string f(8, '\0');
    f[0] = static_cast<char>(stream);
    auto n = static_cast<std::uint32_t>(payload.size());
    f[4] = static_cast<char>((n >> 24) & 0xFF);
    f[5] = static_cast<char>((n >> 16) & 0xFF);
    f[6] = static_cast<char>((n >> 8) & 0xFF);
    f[7] = static_cast<char>(n & 0xFF);
    f.append(payload);
    return f;
}

// The pieces of a stream cut at the given byte offsets (ascending): split("abcdef", {2, 3}) == {"ab", "c", "def"}.
inline std::vector<std::string> split_at(std::string_view bytes, std::vector<std::size_t> offsets) {
    std::vector<std::string> out;
    std::size_t from = 0;
    for (auto at : offsets) {
        out.emplace_back(bytes.substr(from, at - from));
        from = at;
    }
    out.emplace_back(bytes.substr(from));
    return out;
}

using request_handler = std::function<reply(const recorded_request&)>;

class mock_engine {
public:
    using stream_type = mock_stream;
    using verb = boost::beast::http::verb;

    explicit mock_engine(boost::asio::any_io_executor ex, std::string name = "mock://engine")
        : executor_(std::move(ex)), state_(std::make_shared<state>()) {
        state_->name = std::move(name);
    }

    // --- the Transport model ---

    boost::asio::any_io_executor get_executor() const { return executor_; }
    std::string describe() const { return state_->name; }

    boost::asio::awaitable<mock_stream> connect() {
        std::size_t index = 0;
        bool stall = false;
        {
            std::lock_guard lock(state_->mutex);
            if (state_->refuse_connections)
                throw boost::system::system_error(boost::asio::error::connection_refused, "connect to " + state_->name);
            stall = state_->stall_connections;
            if (!stall) index = ++state_->connections_opened;
        }
        if (stall) {
            boost::asio::steady_timer never(executor_, boost::asio::steady_timer::time_point::max());
            co_await never.async_wait(boost::asio::use_awaitable);  // ends only by cancellation
            throw boost::system::system_error(boost::asio::error::timed_out, "connect to " + state_->name);
        }
        boost::beast::test::stream client_end(executor_), server_end(executor_);
        client_end.connect(server_end);
        boost::asio::co_spawn(executor_, serve(state_, std::move(server_end), index), boost::asio::detached);
        co_return mock_stream(std::move(client_end));
    }

    // --- the script ---

    // Answers method + path (percent-decoded, without the version prefix and the query; a trailing '*' matches
    // any rest). The newest matching route answers, so a test can override the defaults.
    mock_engine& on(verb method, std::string path, reply r) {
        return on(method, std::move(path), request_handler([r = std::move(r)](const recorded_request&) { return r; }));
    }
    mock_engine& on(verb method, std::string path, request_handler handler) {
        std::lock_guard lock(state_->mutex);
        state_->routes.push_back(route{method, std::move(path), std::move(handler), false});
        return *this;
    }
    // Like on(), for the next matching request only; then the route before it answers again.
    mock_engine& once(verb method, std::string path, reply r) {
        std::lock_guard lock(state_->mutex);
        state_->routes.push_back(
            route{method, std::move(path), [r = std::move(r)](const recorded_request&) { return r; }, true});
        return *this;
    }
    // Answers each request in turn with the next reply; the last one repeats.
    mock_engine& on_sequence(verb method, std::string path, std::vector<reply> replies) {
        if (replies.empty()) throw invalid_argument_error("mock_engine::on_sequence: no replies");
        auto shared = std::make_shared<std::vector<reply>>(std::move(replies));
        auto next = std::make_shared<std::size_t>(0);
        return on(method, std::move(path), request_handler([shared, next](const recorded_request&) {
                      auto i = std::min(*next, shared->size() - 1);
                      ++*next;
                      return (*shared)[i];
                  }));
    }

    // GET /version answers like Docker 20.10 (API 1.41) until told otherwise.
    void answer_as_podman(std::string version = "4.3.1") {
        std::lock_guard lock(state_->mutex);
        state_->podman = true;
        state_->engine_version = std::move(version);
    }
    // What /version reports as ApiVersion and MinAPIVersion (empty: the field is left out). Like Docker (and
    // unlike Podman), the engine then refuses a request at a version outside that range with a 400
    // "client version X is too old. Minimum supported API version is Y, ..." (or "is too new").
    void set_api_version(std::string api_version, std::string min_api_version = "1.12") {
        std::lock_guard lock(state_->mutex);
        state_->api_version = std::move(api_version);
        state_->min_api_version = std::move(min_api_version);
    }

    // An exec that prints `output` (raw multiplexed bytes, sent in the given pieces) and exits with exit_code:
    // POST /containers/{container}/exec, POST /exec/{id}/start (101, the stream, close), GET /exec/{id}/json.
    void add_exec(const std::string& container, const std::string& exec_id, std::vector<std::string> output,
                  int exit_code) {
        on(verb::post, "/containers/" + container + "/exec", reply::json(201, boost::json::value{{"Id", exec_id}}));
        on(verb::post, "/exec/" + exec_id + "/start", reply::upgrade(std::move(output)));
        on(verb::get, "/exec/" + exec_id + "/json", exec_state(exec_id, container, false, exit_code));
    }
    static reply exec_state(const std::string& exec_id, const std::string& container, bool running, int exit_code) {
        boost::json::object o{{"ID", exec_id}, {"ContainerID", container}, {"Running", running}, {"Pid", 42}};
        o["ExitCode"] = running ? boost::json::value(nullptr) : boost::json::value(exit_code);
        return reply::json(200, boost::json::value(std::move(o)));
    }
    // GET /containers/{id}/json for a container created with or without a tty.
    void add_container(const std::string& id, bool tty = false) {
        boost::json::object o{{"Id", id},
                              {"Name", "/" + id},
                              {"Image", "sha256:feed"},
                              {"Config", {{"Tty", tty}}},
                              {"State", {{"Status", "running"}, {"Running", true}, {"ExitCode", 0}, {"Pid", 7}}}};
        on(verb::get, "/containers/" + id + "/json", reply::json(200, boost::json::value(std::move(o))));
    }

    // --- faults outside a reply ---

    // Every connect() fails with connection_refused while set.
    void refuse_connections(bool refuse = true) {
        std::lock_guard lock(state_->mutex);
        state_->refuse_connections = refuse;
    }
    // Every connect() waits, until cancelled, while set (an engine address whose listener never accepts).
    void stall_connections(bool stall = true) {
        std::lock_guard lock(state_->mutex);
        state_->stall_connections = stall;
    }
    // The engine closes every connection that waits for a request (its idle keep-alive timeout).
    void close_idle_connections() {
        // Under the lock: a connection leaves the list (under the lock) before its stream is destroyed. close()
        // only posts completions, so nothing re-enters the engine's state from here.
        std::lock_guard lock(state_->mutex);
        for (auto& c : state_->live)
            if (c.idle) c.stream->close();
    }

    // --- what happened ---

    std::vector<recorded_request> requests() const {
        std::lock_guard lock(state_->mutex);
        return state_->log;
    }
    // The requests for method + path (as routes match them), in order.
    std::vector<recorded_request> requests_to(verb method, std::string_view path) const {
        std::lock_guard lock(state_->mutex);
        std::vector<recorded_request> out;
        for (auto& r : state_->log)
            if (r.method == method && matches(path, r.path)) out.push_back(r);
        return out;
    }
    // Connections accepted so far.
    std::size_t connections_opened() const {
        std::lock_guard lock(state_->mutex);
        return state_->connections_opened;
    }
    // Connections the engine still serves (it drops one when the client closes it or after a closing reply).
    std::size_t connections_open() const {
        std::lock_guard lock(state_->mutex);
        return state_->live.size();
    }

private:
    struct route {
        verb method;
        std::string path;
        request_handler respond;
        bool once;
    };
    struct live_connection {
        std::size_t index;
        boost::beast::test::stream* stream;
        bool idle;
    };
    struct state {
        mutable std::mutex mutex{};
        std::string name{};
        std::vector<route> routes{};
        std::vector<recorded_request> log{};
        std::vector<live_connection> live{};
        std::size_t connections_opened = 0;
        bool refuse_connections = false;
        bool stall_connections = false;
        bool podman = false;
        std::string engine_version = "20.10.24";
        std::string api_version = "1.41";
        std::string min_api_version = "1.12";
    };

    static bool matches(std::string_view pattern, std::string_view path) {
        if (pattern.ends_with('*')) return path.starts_with(pattern.substr(0, pattern.size() - 1));
        return pattern == path;
    }

    static recorded_request record(const boost::beast::http::request<boost::beast::http::string_body>& m, bool chunked,
                                   std::size_t connection) {
        recorded_request r;
        r.method = m.method();
        r.target = std::string(m.target());
        r.headers = m.base();
        r.body = m.body();
        r.chunked = chunked;
        r.connection = connection;
        std::string_view path = r.target;
        path = path.substr(0, path.find('?'));
        if (path.size() > 2 && path[0] == '/' && path[1] == 'v' && path[2] >= '0' && path[2] <= '9') {
            auto slash = path.find('/', 1);
            r.api_version = std::string(path.substr(2, slash == std::string_view::npos ? path.npos : slash - 2));
            path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
        }
        r.path = mock_detail::percent_decode(path);
        return r;
    }

    static reply answer(state& st, const recorded_request& req) {
        request_handler handler;
        {
            std::lock_guard lock(st.mutex);
            st.log.push_back(req);
            for (auto it = st.routes.rbegin(); it != st.routes.rend(); ++it) {
                if (it->method != req.method || !matches(it->path, req.path)) continue;
                handler = it->respond;
                if (it->once) st.routes.erase(std::next(it).base());
                break;
            }
            if (auto refusal = version_refusal(st, req)) return *refusal;
            if (!handler) {
                if (req.method == verb::get && req.path == "/version") return version_reply(st);
                if (req.method == verb::get && req.path == "/_ping") return reply::text(200, "OK");
                return reply::error(404, "mock engine: no route for " + std::string(to_string(req.method)) + " " +
                                             req.target);
            }
        }
        try {
            return handler(req);
        } catch (const std::exception& e) {
            return reply::error(500, std::string("mock engine: the handler threw: ") + e.what());
        }
    }

    static reply version_reply(const state& st) {
        boost::json::array components;
        components.push_back(
            boost::json::object{{"Name", st.podman ? "Podman Engine" : "Engine"}, {"Version", st.engine_version}});
        boost::json::object o{
            {"Version", st.engine_version}, {"ApiVersion", st.api_version},       {"Os", "linux"}, {"Arch", "amd64"},
            {"KernelVersion", "6.1.0"},     {"Components", std::move(components)}};
        if (!st.min_api_version.empty()) o["MinAPIVersion"] = st.min_api_version;
        return reply::json(200, boost::json::value(std::move(o)));
    }

    // Docker's 400 for a request at a version outside its range (Podman serves any).
    static std::optional<reply> version_refusal(const state& st, const recorded_request& req) {
        if (st.podman || req.api_version.empty()) return std::nullopt;
        auto number = [](std::string_view v) {
            auto dot = v.find('.');
            auto part = [](std::string_view d) {
                int n = 0;
                for (char c : d) n = (c >= '0' && c <= '9') ? n * 10 + (c - '0') : n;
                return n;
            };
            return std::pair{part(v.substr(0, dot)), dot == v.npos ? 0 : part(v.substr(dot + 1))};
        };
        if (!st.min_api_version.empty() && number(req.api_version) < number(st.min_api_version))
            return reply::error(400, "client version " + req.api_version +
                                         " is too old. Minimum supported API version is " + st.min_api_version +
                                         ", please upgrade your client to a newer version");
        if (number(st.api_version) < number(req.api_version))
            return reply::error(400, "client version " + req.api_version +
                                         " is too new. Maximum supported API version is " + st.api_version);
        return std::nullopt;
    }

    static std::vector<std::string> wire_pieces(const reply& r) {
        if (r.how == reply::framing::raw) return r.pieces;
        std::string head = "HTTP/1.1 " + std::to_string(r.status) + " ";
        auto reason = boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(r.status));
        head.append(reason.data(), reason.size());
        head += "\r\n";
        for (auto& [name, value] : r.headers) head += name + ": " + value + "\r\n";
        std::vector<std::string> out;
        switch (r.how) {
        case reply::framing::content_length: {
            std::size_t size = 0;
            for (auto& p : r.pieces) size += p.size();
            head += "Content-Length: " + std::to_string(r.declared_length.value_or(size)) + "\r\n\r\n";
            out.push_back(std::move(head));
            for (auto& p : r.pieces)
                if (!p.empty()) out.push_back(p);
            break;
        }
        case reply::framing::chunked: {
            head += "Transfer-Encoding: chunked\r\n\r\n";
            out.push_back(std::move(head));
            static constexpr char hex[] = "0123456789abcdef";
            for (auto& p : r.pieces) {
                if (p.empty()) continue;
                std::string size;
                for (std::size_t n = p.size(); n > 0; n /= 16) size.insert(size.begin(), hex[n % 16]);
                out.push_back(size + "\r\n" + p + "\r\n");
            }
            if (r.after != reply::then::stall) out.push_back("0\r\n\r\n");
            break;
        }
        case reply::framing::head_only:
        case reply::framing::raw:
            out.push_back(head + "\r\n");
            for (auto& p : r.pieces)
                if (!p.empty()) out.push_back(p);
            break;
        }
        return out;
    }

    // Keeps the connection in the engine's list while its coroutine runs.
    struct live_entry {
        std::shared_ptr<state> st;
        std::size_t index;
        live_entry(std::shared_ptr<state> s, std::size_t i, boost::beast::test::stream* stream)
            : st(std::move(s)), index(i) {
            std::lock_guard lock(st->mutex);
            st->live.push_back(live_connection{index, stream, false});
        }
        live_entry(const live_entry&) = delete;
        live_entry& operator=(const live_entry&) = delete;
        ~live_entry() {
            std::lock_guard lock(st->mutex);
            std::erase_if(st->live, [&](const live_connection& c) { return c.index == index; });
        }
        void set_idle(bool idle) {
            std::lock_guard lock(st->mutex);
            for (auto& c : st->live)
                if (c.index == index) c.idle = idle;
        }
    };

    static boost::asio::awaitable<void> pause(boost::asio::any_io_executor ex) {
        // A few turns of the executor: enough for the client to read what was written before the next piece.
        for (int i = 0; i < 8; ++i) co_await boost::asio::post(ex, boost::asio::use_awaitable);
    }

    static bool announces_close(const reply& r) {
        for (auto& [name, value] : r.headers)
            if (boost::beast::iequals(name, "Connection") && boost::beast::iequals(value, "close")) return true;
        return false;
    }

    // Waits until the client closes the connection, ignoring whatever it sends.
    static boost::asio::awaitable<void> drain_until_closed(boost::beast::test::stream& stream) {
        namespace asio = boost::asio;
        std::array<char, 4096> scratch;
        for (;;) {
            auto [ec, n] = co_await stream.async_read_some(asio::buffer(scratch), asio::as_tuple(asio::use_awaitable));
            (void)n;
            if (ec) co_return;
        }
    }

    // The engine's side of one connection.
    static boost::asio::awaitable<void> serve(std::shared_ptr<state> st, boost::beast::test::stream stream,
                                              std::size_t index) {
        namespace asio = boost::asio;
        namespace http = boost::beast::http;
        live_entry entry(st, index, &stream);
        auto ex = stream.get_executor();
        boost::beast::flat_buffer buffer;
        for (;;) {
            http::request_parser<http::string_body> parser;
            parser.body_limit(boost::none);
            entry.set_idle(buffer.size() == 0);
            auto [ec, n] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
            (void)n;
            entry.set_idle(false);
            if (ec) co_return;  // the client closed the connection (or the engine closed it as idle)
            auto request = record(parser.get(), parser.chunked(), index);
            reply r = answer(*st, request);
            const bool keeps_alive = r.after == reply::then::keep_alive && r.status != 101 &&
                                     parser.get().keep_alive() && !announces_close(r);
            auto pieces = wire_pieces(r);
            // A reply to HEAD is its head alone (with the length the GET's body would have), as an engine sends it.
            if (request.method == verb::head && r.how != reply::framing::raw && pieces.size() > 1) pieces.resize(1);
            for (std::size_t i = 0; i < pieces.size(); ++i) {
                if (i > 0) co_await pause(ex);
                auto& piece = pieces[i];
                // Once the last bytes of a keep-alive reply are handed over the connection waits for a request.
                if (i + 1 == pieces.size() && keeps_alive) entry.set_idle(buffer.size() == 0);
                if (piece.empty()) continue;
                auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(piece),
                                                            asio::as_tuple(asio::use_awaitable));
                (void)wn;
                if (wec) co_return;
            }
            if (r.after == reply::then::stall) {
                co_await drain_until_closed(stream);
                co_return;
            }
            if (!keeps_alive) {
                co_await pause(ex);  // let the client take the bytes before the end of stream
                stream.close();
                co_return;
            }
        }
    }

    boost::asio::any_io_executor executor_;
    std::shared_ptr<state> state_;
};

static_assert(transport<mock_engine>);

}  // namespace berth::testing
