#pragma once
// The engine's JSON-lines progress streams (build, image pull and push): one JSON object per line, such as
//     {"stream":"Step 1/2 : FROM scratch\n"}                                  text output
//     {"status":"Downloading","id":"a1b2","progressDetail":{"current":5,"total":9}}   a transfer
//     {"id":"moby.buildkit.trace","aux":"<base64>"}   {"aux":{"ID":"sha256:..."}}     side data
//     {"error":"...","errorDetail":{"code":1,"message":"..."}}                the operation failed
// Lines are split without keeping more than one (bounded) line in memory; each becomes a typed progress_message;
// a message carrying "error" or "errorDetail" (either alone is enough) ends the stream as a stream_error.
// progress_event is what callers see: the one typed callback builds (legacy, BuildKit, Buildah) and pulls share.
#include <berth/engine/error.hpp>
#include <berth/engine/json.hpp>

#include <boost/asio/awaitable.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <span>
#include <string_view>
#include <vector>

namespace berth {

namespace json = boost::json;

// ---- what callers see ----

enum class progress_kind {
    step_started,    // a step (build instruction, BuildKit vertex, pulled layer) began
    step_cached,     // the step's result came from the cache; no step_completed follows
    step_completed,  // the step finished
    step_failed,     // the step failed; text is its own error
    step_log,        // output the step wrote (text), in order, possibly in pieces that are not whole lines
    step_progress,   // a transfer within a step: current of total (total 0: unknown)
    message,         // anything else the engine said (text)
};

struct progress_event {
    progress_kind kind = progress_kind::message;
    std::string step{};                   // identifies the step: a BuildKit vertex digest, "2" for Step 2/5, a layer id
    std::string name{};                   // what the step does: "[2/4] RUN make", "RUN make", "Downloading"
    std::string text{};                   // step_log output, step_failed error, message text
    std::int64_t current = 0, total = 0;  // step_progress
    int stream = 0;                       // step_log: 1 stdout, 2 stderr, 0 not told
};

using progress_callback = std::function<void(const progress_event&)>;

// One line for a human, in the spirit of `docker build --progress=plain` ("#3 [2/4] RUN make", "#3 CACHED").
inline std::string describe(const progress_event& e) {
    const std::string tag = e.step.starts_with("sha256:") ? e.step.substr(7, 12)
                                                          : e.step;  // a vertex digest, shortened
    switch (e.kind) {
    case progress_kind::step_started: return "#" + tag + " " + e.name;
    case progress_kind::step_cached: return "#" + tag + " CACHED " + e.name;
    case progress_kind::step_completed: return "#" + tag + " DONE " + e.name;
    case progress_kind::step_failed: return "#" + tag + " ERROR " + e.name + ": " + e.text;
    case progress_kind::step_log: {  // each line of the output under the step's tag
        std::string out;
        for (std::size_t start = 0, nl; start < e.text.size(); start = nl + 1) {
            nl = std::min(e.text.find('\n', start), e.text.size());
            out += "#" + tag + " " + e.text.substr(start, nl - start) + (nl < e.text.size() ? "\n" : "");
        }
        return out;
    }
    case progress_kind::step_progress:
        return "#" + tag + " " + e.name + " " + std::to_string(e.current) +
               (e.total > 0 ? "/" + std::to_string(e.total) : std::string());
    case progress_kind::message: return e.text;
    }
    return e.text;
}

// ---- the wire format ----

// An error reported inside a progress stream (the HTTP reply itself was 200).
class stream_error : public engine_error {
public:
    stream_error(engine_errc code, unsigned status, std::string message, std::string endpoint, std::int64_t detail_code)
        : engine_error(code, status, std::move(message), std::move(endpoint)), detail_code_(detail_code) {}
    // errorDetail.code when the engine gave one (a failed RUN's exit code on Docker's legacy builder), else 0.
    std::int64_t detail_code() const noexcept { return detail_code_; }

private:
    std::int64_t detail_code_ = 0;
};

struct progress_message {
    std::string stream{};                            // "stream": text output
    std::string status{};                            // "status"
    std::string id{};                                // "id": a layer id, or what aux holds ("moby.buildkit.trace")
    std::string progress{};                          // "progress": the engine's own progress bar text
    std::optional<std::int64_t> current{}, total{};  // "progressDetail"
    const json::value* aux = nullptr;                // "aux", pointing into `value`
    bool failed = false;                             // "error" or "errorDetail" present
    std::string error{};                             // errorDetail.message, else error
    std::int64_t error_code = 0;                     // errorDetail.code
    json::value value{};                             // the whole line, for fields not typed here
    progress_message() = default;
    progress_message(const progress_message&) = delete;  // aux points into value
    progress_message& operator=(const progress_message&) = delete;
};

// The most JSON values one progress message may hold (a real one holds a dozen): parsing costs memory per value,
// so the line bound alone would let one line of "0,0,0,..." take hundreds of MiB.
inline constexpr std::size_t max_progress_message_values = 10000;

// Parses one line. Not JSON, or a typed field of the wrong type, is a protocol_error naming the endpoint. With
// secrets (the request carried credentials), the line is never quoted and the error text has them redacted.
// The error text is bounded (detail::engine_message_limit).
inline void parse_progress_message(std::string_view line, const std::string& endpoint, progress_message& m,
                                   std::span<const std::string> secrets = {}) {
    m.value = json_read::parse(line, endpoint, secrets.empty() ? json_read::quoting::excerpt : json_read::quoting::none,
                               max_progress_message_values);
    auto& o = json_read::as_object(m.value, endpoint);
    m.stream = json_read::optional_string(o, "stream", endpoint);
    m.status = json_read::optional_string(o, "status", endpoint);
    m.id = json_read::optional_string(o, "id", endpoint);
    m.progress = json_read::optional_string(o, "progress", endpoint);
    m.current.reset();
    m.total.reset();
    if (auto* d = json_read::optional_object(o, "progressDetail", endpoint)) {
        if (d->contains("current")) m.current = json_read::optional_int(*d, "current", endpoint);
        if (d->contains("total")) m.total = json_read::optional_int(*d, "total", endpoint);
    }
    m.aux = nullptr;
    if (auto* aux = o.if_contains("aux"); aux && !aux->is_null()) m.aux = aux;
    auto error = json_read::optional_string(o, "error", endpoint);
    auto* detail = o.if_contains("errorDetail");
    m.failed = !error.empty() || (detail != nullptr && !detail->is_null());
    m.error_code = 0;
    if (detail != nullptr && !detail->is_null()) {
        auto& d = json_read::as_object(*detail, endpoint + " errorDetail");
        if (auto message = json_read::optional_string(d, "message", endpoint); !message.empty()) error = message;
        m.error_code = json_read::optional_int(d, "code", endpoint);
    }
    if (m.failed && error.empty()) error = "the engine reported an error without a message";
    m.error = m.failed ? detail::bounded_outside_text(detail::redact_secrets(std::move(error), secrets))
                       : std::string();
}

// Splits a byte stream into lines, holding at most one unfinished line of at most max_line bytes.
class json_lines_splitter {
public:
    explicit json_lines_splitter(std::size_t max_line) : max_line_(max_line) {}

    // Calls on_line for each complete line in `bytes` (blank lines skipped), keeping the unfinished rest.
    template <class OnLine>
    void feed(std::string_view bytes, const std::string& endpoint, OnLine&& on_line) {
        while (!bytes.empty()) {
            auto nl = bytes.find('\n');
            auto piece = bytes.substr(0, nl);
            if (pending_.size() + piece.size() > max_line_)
                throw protocol_error(protocol_errc::oversized, endpoint,
                                     "progress line longer than " + std::to_string(max_line_) + " bytes");
            if (nl == std::string_view::npos) {
                pending_.append(piece);
                return;
            }
            if (pending_.empty()) {
                deliver(piece, on_line);  // the common case: no copy
            } else {
                pending_.append(piece);
                deliver(pending_, on_line);
                pending_.clear();
            }
            bytes.remove_prefix(nl + 1);
        }
    }
    // The stream ended: a last line without its newline still counts.
    template <class OnLine>
    void finish(OnLine&& on_line) {
        std::string last = std::move(pending_);
        pending_.clear();
        deliver(last, on_line);
    }

private:
    template <class OnLine>
    static void deliver(std::string_view line, OnLine& on_line) {
        if (line.find_first_not_of(" \r\t") != std::string_view::npos) on_line(line);
    }
    std::size_t max_line_;
    std::string pending_{};
};

struct json_progress_options {
    std::size_t max_line_bytes = std::size_t{16} << 20;
    engine_errc error_code = engine_errc::other;  // the code of the stream_error an error message becomes
    std::vector<std::string> secrets{};           // what the request carried (credentials): never in an error's text
};

// Reads a progress reply (anything with read_some(span<char>), status() and endpoint(), such as http::response)
// to its end, calling on_message(const progress_message&) for each message. A failed message is shown to
// on_message first (it may throw an error of its own), then thrown as a stream_error.
template <class Reply, class OnMessage>
boost::asio::awaitable<void> read_progress_stream(Reply& reply, OnMessage on_message,
                                                  json_progress_options options = {}) {
    const std::string endpoint = reply.endpoint();
    json_lines_splitter splitter(options.max_line_bytes);
    progress_message message;
    auto handle = [&](std::string_view line) {
        parse_progress_message(line, endpoint, message, options.secrets);
        on_message(static_cast<const progress_message&>(message));
        if (message.failed)
            throw stream_error(options.error_code, reply.status(), message.error, endpoint, message.error_code);
    };
    std::array<char, 16 * 1024> buffer;
    while (std::size_t n = co_await reply.read_some(buffer))
        splitter.feed(std::string_view(buffer.data(), n), endpoint, handle);
    splitter.finish(handle);
}

}  // namespace berth
