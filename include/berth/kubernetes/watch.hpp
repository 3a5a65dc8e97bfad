#pragma once
// pod_watch: a watch on pods (GET ...?watch=1) read as the API server sends it, one JSON event per line: ADDED,
// MODIFIED, DELETED, BOOKMARK, ERROR. Each line is bounded (max_line_bytes); a stream that sends nothing within
// the caller's idle limit ends with a kubernetes_error (timeout); an ERROR event is the kubernetes_error of its
// Status, 410 Gone / Expired as `gone` (the caller lists again and watches from the list's resourceVersion); a
// line that is not an event is a protocol_error saying what was wrong with it.
#include <berth/engine/json.hpp>
#include <berth/http/exchange.hpp>
#include <berth/kubernetes/error.hpp>
#include <berth/kubernetes/pod.hpp>
#include <berth/with_timeout.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>

namespace berth::kubernetes {

struct pod_watch_options {
    std::string namespace_name{};  // empty: the client's
    std::string label_selector{};
    std::string field_selector{};    // "metadata.name=eval-1"
    std::string resource_version{};  // start after this version; empty: the current pods first, as ADDED events
    std::optional<std::int64_t> timeout_seconds{};  // the server ends the watch after this (cleanly)
    bool allow_bookmarks = false;                   // BOOKMARK events carry newer resourceVersions
    // The longest the stream may stay silent (the reply head included); zero: no limit (the caller asked to wait).
    std::chrono::steady_clock::duration idle_limit = std::chrono::minutes(5);
    std::size_t max_line_bytes = std::size_t{4} << 20;  // one event
};

struct watch_event {
    enum class kind { added, modified, deleted, bookmark };
    kind type = kind::added;
    pod object{};                    // for a bookmark only its resource_version is set
    std::string resource_version{};  // the object's: where a later watch resumes
};

namespace detail {

// One line of a watch as its event; throws the ERROR event's kubernetes_error.
inline watch_event parse_watch_line(std::string_view line, const std::string& endpoint) {
    auto v = json_read::parse(line, endpoint);
    if (!v.is_object()) throw protocol_error(endpoint, "a watch event is not a JSON object");
    auto& o = v.get_object();
    auto* type = o.if_contains("type");
    if (type == nullptr || !type->is_string()) throw protocol_error(endpoint, "a watch event has no type");
    auto* object = o.if_contains("object");
    if (object == nullptr || !object->is_object()) throw protocol_error(endpoint, "a watch event has no object");
    const std::string_view t = type->get_string();
    watch_event e;
    if (t == "ERROR") {
        auto& s = object->get_object();
        const auto code = json_read::optional_int_as<unsigned>(s, "code", endpoint);
        auto reason = json_read::optional_string(s, "reason", endpoint);
        auto message = berth::detail::bounded_outside_text(json_read::optional_string(s, "message", endpoint));
        if (message.empty()) message = "the watch reported an error (code " + std::to_string(code) + ")";
        throw kubernetes_error(kubernetes_errc_from(code, reason), code,
                               berth::detail::bounded_outside_text(reason, 64), std::move(message), endpoint);
    }
    if (t == "BOOKMARK") {
        e.type = watch_event::kind::bookmark;
        if (auto* meta = json_read::optional_object(object->get_object(), "metadata", endpoint))
            e.resource_version = bounded_token(*meta, "resourceVersion", endpoint);
        e.object.resource_version = e.resource_version;
        return e;
    }
    if (t == "ADDED")
        e.type = watch_event::kind::added;
    else if (t == "MODIFIED")
        e.type = watch_event::kind::modified;
    else if (t == "DELETED")
        e.type = watch_event::kind::deleted;
    else
        throw protocol_error(endpoint, "unknown watch event type " + berth::detail::quote_outside_text(t, 40));
    e.object = parse_pod(*object, endpoint);
    e.resource_version = e.object.resource_version;
    return e;
}

}  // namespace detail

template <transport Transport>
class pod_watch {
public:
    using response_type = http::response<Transport>;

    // Not open (Asio's co_spawn needs a result it can default-construct); next() on it is a logic_error.
    pod_watch() = default;
    pod_watch(response_type reply, std::chrono::steady_clock::duration idle_limit, std::size_t max_line_bytes)
        : reply_(std::make_unique<response_type>(std::move(reply))), idle_limit_(idle_limit),
          max_line_(max_line_bytes) {}

    // The next event; nullopt once the server ended the watch (its timeoutSeconds, or its own end). The stream's
    // connection is closed when the watch is dropped before its end.
    boost::asio::awaitable<std::optional<watch_event>> next() {
        if (!reply_) throw std::logic_error("berth: next() on a pod_watch that is not open");
        for (;;) {
            if (auto nl = buffer_.find('\n', scanned_); nl != std::string::npos) {
                std::string line = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                scanned_ = 0;
                if (is_blank(line)) continue;
                co_return detail::parse_watch_line(line, reply_->endpoint());
            }
            scanned_ = buffer_.size();
            if (buffer_.size() > max_line_)
                throw protocol_error(protocol_errc::oversized, reply_->endpoint(),
                                     "a watch event is longer than " + std::to_string(max_line_) + " bytes");
            if (ended_) {
                if (!is_blank(buffer_))
                    throw protocol_error(protocol_errc::truncated, reply_->endpoint(),
                                         "the watch ended inside an event");
                co_return std::nullopt;
            }
            const std::size_t n = co_await read_some();
            if (n == 0)
                ended_ = true;
            else
                buffer_.append(chunk_.data(), n);
        }
    }

    const std::string& endpoint() const { return reply_->endpoint(); }
    // The idle limit of the reads from now on (a caller with a deadline of its own shortens it as time passes).
    void set_idle_limit(std::chrono::steady_clock::duration limit) { idle_limit_ = limit; }

private:
    static bool is_blank(std::string_view s) { return s.find_first_not_of(" \r\n\t") == std::string_view::npos; }

    boost::asio::awaitable<std::size_t> read_some() {
        std::span<char> room(chunk_.data(), chunk_.size());
        if (idle_limit_.count() <= 0) co_return co_await reply_->read_some(room);
        const std::string what = reply_->endpoint() + ": the watch sent nothing within " +
                                 describe_duration(idle_limit_);
        try {
            co_return co_await with_timeout(reply_->read_some(room), idle_limit_, what);
        } catch (const connection_error& e) {
            if (e.code() != boost::asio::error::timed_out || e.endpoint() != what) throw;
        }
        throw kubernetes_error(kubernetes_errc::timeout, 0, "Timeout", what, reply_->endpoint());
    }

    std::unique_ptr<response_type> reply_{};
    std::chrono::steady_clock::duration idle_limit_{};
    std::size_t max_line_ = 0;
    std::string buffer_{};
    std::size_t scanned_ = 0;  // bytes of buffer_ known to hold no newline
    bool ended_ = false;
    std::array<char, 64 * 1024> chunk_{};
};

}  // namespace berth::kubernetes
