#pragma once
// Engine events (GET /events): the typed engine_event, the stream of them (system_events_stream, reached through
// client.system().events()), which resumes where it stopped when the connection drops, and past_events (since and
// until both given: the engine answers at once with what it recorded in that window instead of streaming), for
// questions such as "did the kernel OOM-kill a process in this container while the command ran" (Docker's "oom").
#include <berth/detail/api_timestamp.hpp>
#include <berth/detail/url.hpp>
#include <berth/engine/client_core.hpp>
#include <berth/engine/json_progress.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json/serialize.hpp>

#include <array>
#include <chrono>
#include <deque>
#include <exception>
#include <map>
#include <set>

namespace berth {

struct engine_event {
    std::string type{};      // Type: "container", "image", "volume", "network", "daemon", ...
    std::string action{};    // Action: "create", "die", "oom", "exec_die", ...
    std::string actor_id{};  // Actor.ID: the object's id (or name)
    std::map<std::string, std::string> actor_attributes{};  // Actor.Attributes: "name", "image", its labels, ...
    std::string scope{};                                    // scope: "local" or "swarm"
    std::int64_t time = 0;                                  // time: seconds since the epoch
    std::int64_t time_nano = 0;                             // timeNano: nanoseconds since the epoch
    json::object raw{};
};

struct past_events_query {
    std::chrono::system_clock::time_point since{};
    std::chrono::system_clock::time_point until{};  // must not be in the engine's future: it would stream until then
    // The engine's filters: {"container": {id}}, {"event": {"oom"}}, ...
    std::map<std::string, std::vector<std::string>> filters{};
};

// GET /events as a stream (client.system().events()).
struct system_events_options {
    // since: events from this time on (the engine keeps a few hundred past ones; Podman its journal); not set:
    // from now on.
    std::optional<std::chrono::system_clock::time_point> since{};
    // until: the stream ends (next() gives nothing) once the engine passed this time; not set: it never ends.
    std::optional<std::chrono::system_clock::time_point> until{};
    // The engine's filters: {"type": {"container"}}, {"container": {id}}, {"image": {...}}, {"label": {"k=v"}},
    // {"event": {"create", "die"}}, {"volume": ...}, {"network": ...}, {"daemon": ...}, {"scope": {"local"}}.
    std::map<std::string, std::vector<std::string>> filters{};
    // When the connection drops (the engine restarts, the link is cut, the reply stops mid-line), the stream asks
    // again from the last event's time and drops what it already delivered, so nothing is lost or repeated.
    // resume_attempts: tries in a row before the drop is thrown (0: never resume); each try waits
    // resume_backoff, doubled after each failed try up to resume_backoff_max (the first try goes at once).
    int resume_attempts = 8;
    std::chrono::milliseconds resume_backoff = std::chrono::milliseconds(100);
    std::chrono::milliseconds resume_backoff_max = std::chrono::seconds(2);
};

namespace detail {

// One event holds a few hundred bytes (a container's labels make it a few KiB): these bounds keep a broken
// engine from growing one.
inline constexpr std::size_t max_event_line_bytes = std::size_t{1} << 20;
inline constexpr std::size_t max_event_values = 10000;

// One line of GET /events. Not a JSON object, or fields of the wrong type: a protocol_error.
inline engine_event parse_engine_event(std::string_view line, const std::string& endpoint) {
    auto v = json_read::parse(line, endpoint, json_read::quoting::excerpt, max_event_values);
    auto& o = json_read::as_object(v, endpoint);
    engine_event e;
    e.type = json_read::optional_string(o, "Type", endpoint);
    e.action = json_read::optional_string(o, "Action", endpoint);
    if (auto* actor = json_read::optional_object(o, "Actor", endpoint)) {
        e.actor_id = json_read::optional_string(*actor, "ID", endpoint);
        e.actor_attributes = json_read::optional_string_map(*actor, "Attributes", endpoint);
    }
    e.scope = json_read::optional_string(o, "scope", endpoint);
    e.time = json_read::optional_int(o, "time", endpoint);
    e.time_nano = json_read::optional_int(o, "timeNano", endpoint);
    if (e.time_nano == 0) e.time_nano = e.time * 1000000000;
    e.raw = std::move(o);
    return e;
}

// What tells two events of the same timeNano apart, for dropping the ones a resumed stream sends again.
inline std::string event_identity(const engine_event& e) {
    std::string id = e.type + '\0' + e.action + '\0' + e.actor_id + '\0' + e.scope;
    for (auto& [k, v] : e.actor_attributes) id += '\0' + k + '=' + v;
    return id;
}

inline std::string events_target(const std::optional<std::int64_t>& since_nanos,
                                 const std::optional<std::chrono::system_clock::time_point>& until,
                                 const std::map<std::string, std::vector<std::string>>& filters) {
    detail::query query;
    if (since_nanos) query.add("since", api_timestamp_nanos(*since_nanos));
    if (until) query.add("until", api_timestamp(*until));
    if (!filters.empty()) {
        json::object f{};
        for (auto& [k, vals] : filters) f[k] = json::array(vals.begin(), vals.end());
        query.add("filters", json::serialize(f));
    }
    return "/events" + query.str();
}
}  // namespace detail

// The engine's events as they happen: next() gives each one, nothing once options.until has passed. A dropped
// connection is resumed (system_events_options); a reply cut mid-line is a drop too, never an end. Lines and
// their values are bounded (detail::max_event_line_bytes, detail::max_event_values): an oversized or malformed
// event is a protocol_error. Waits for events without a limit of its own (that is what a stream is for): give
// next() one with with_timeout or a cancellation slot.
template <transport Transport>
class system_events_stream {
public:
    system_events_stream(client_core<Transport>& core, system_events_options options)
        : core_(&core), options_(std::move(options)) {}

    boost::asio::awaitable<std::optional<engine_event>> next() {
        for (;;) {
            if (!ready_.empty()) {
                auto e = std::move(ready_.front());
                ready_.pop_front();
                co_return e;
            }
            if (ended_) co_return std::nullopt;
            if (!reply_) {
                co_await open();
                continue;
            }
            std::exception_ptr drop;
            std::size_t n = 0;
            try {
                n = co_await reply_->read_some(buffer_);
            } catch (const connection_error&) { drop = std::current_exception(); }
            if (!drop && n > 0) {
                lines_.feed(std::string_view(buffer_.data(), n), endpoint_,
                            [this](std::string_view line) { take(line); });
                continue;
            }
            if (!drop) {  // the engine ended the reply
                lines_.finish([this](std::string_view line) { take(line); });
                if (options_.until && std::chrono::system_clock::now() >= *options_.until) {
                    ended_ = true;
                    continue;
                }
                drop = std::make_exception_ptr(connection_error(boost::asio::error::eof,
                                                                core_->transport().describe() + ": " + endpoint_,
                                                                "the engine ended the event stream"));
            }
            co_await resume(drop);
        }
    }

    // The request of the connection open now (or last): "GET /events?since=...".
    const std::string& endpoint() const noexcept { return endpoint_; }
    // How many times the stream reconnected after a drop.
    std::size_t resumes() const noexcept { return resumes_; }

private:
    friend class system_api<Transport>;  // opens the first reply, so that a refused request fails at once

    // Opens the reply: from options.since at first, from the last delivered event's time after a drop.
    boost::asio::awaitable<void> open() {
        std::optional<std::int64_t> since;
        if (last_nano_ >= 0)
            since = floor_nano_ = last_nano_;
        else if (options_.since)
            since = detail::nanos_since_epoch(*options_.since);
        else if (opened_once_)
            since = first_open_nano_;  // nothing delivered yet: what happened since the first request
        if (!opened_once_) {
            if (options_.until && options_.since && *options_.until < *options_.since)
                throw invalid_argument_error("berth::system_events_options: until is before since");
            first_open_nano_ = detail::nanos_since_epoch(std::chrono::system_clock::now());
            opened_once_ = true;
        }
        std::string target = detail::events_target(since, options_.until, options_.filters);
        http::request req{.method = verb::get, .target = target};
        endpoint_ = "GET " + target;
        auto reply = co_await core_->open(std::move(req));
        endpoint_ = reply.endpoint();  // with the API version
        reply_.emplace(std::move(reply));
        lines_ = json_lines_splitter(detail::max_event_line_bytes);
    }

    // After a drop: tries to open again (options.resume_attempts, with the backoff); the drop, or the last try's
    // connection failure, is thrown when none succeeds. An engine that answers with an error is not retried.
    boost::asio::awaitable<void> resume(std::exception_ptr drop) {
        reply_.reset();
        lines_ = json_lines_splitter(detail::max_event_line_bytes);
        auto delay = options_.resume_backoff;
        for (int attempt = 1; attempt <= options_.resume_attempts; ++attempt) {
            if (attempt > 1) {
                boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, delay);
                co_await timer.async_wait(boost::asio::use_awaitable);
                delay = std::min(delay * 2, options_.resume_backoff_max);
            }
            try {
                co_await open();
                ++resumes_;
                co_return;
            } catch (const connection_error&) {
                drop = std::current_exception();
            } catch (const boost::system::system_error& e) {  // the connect's or the head's time limit
                if (e.code() != boost::asio::error::timed_out) throw;
                drop = std::current_exception();
            }
        }
        std::rethrow_exception(drop);
    }

    void take(std::string_view line) {
        auto e = detail::parse_engine_event(line, endpoint_);
        // A resumed reply starts at the last delivered event's timeNano: what was delivered with that time comes
        // again, and is dropped here (anything older would come from an engine that ignored since).
        if (e.time_nano < floor_nano_) return;
        auto identity = detail::event_identity(e);
        if (e.time_nano == last_nano_ && boundary_.contains(identity)) return;
        if (e.time_nano > last_nano_) {
            boundary_.clear();
            last_nano_ = e.time_nano;
        }
        if (e.time_nano == last_nano_ && boundary_.size() < max_boundary_events) boundary_.insert(std::move(identity));
        ready_.push_back(std::move(e));
    }

    static constexpr std::size_t max_boundary_events = 4096;

    client_core<Transport>* core_;
    system_events_options options_;
    std::optional<typename client_core<Transport>::response_type> reply_{};
    std::string endpoint_{};
    json_lines_splitter lines_{detail::max_event_line_bytes};
    std::deque<engine_event> ready_{};
    std::int64_t last_nano_ = -1;       // the timeNano of the newest event taken
    std::int64_t floor_nano_ = -1;      // the since of the resumed reply being read
    std::set<std::string> boundary_{};  // the identities of the events taken with that timeNano
    std::int64_t first_open_nano_ = 0;
    bool opened_once_ = false;
    bool ended_ = false;
    std::size_t resumes_ = 0;
    std::array<char, 16 * 1024> buffer_{};
};

// The events the engine recorded between since and until, oldest first. The reply is a sequence of JSON
// objects (not an array); a line that is not one is a protocol_error.
// Engine API: GET /events
template <transport Transport>
boost::asio::awaitable<std::vector<engine_event>> past_events(client_core<Transport>& core, past_events_query q) {
    if (q.until < q.since) throw invalid_argument_error("berth::past_events: until is before since");
    std::string target = detail::events_target(detail::nanos_since_epoch(q.since), std::optional(q.until), q.filters);
    const std::string endpoint = "GET " + target;
    auto body = co_await core.call(verb::get, target);
    std::vector<engine_event> out;
    json_lines_splitter lines(detail::max_event_line_bytes);
    auto take = [&](std::string_view line) { out.push_back(detail::parse_engine_event(line, endpoint)); };
    lines.feed(body, endpoint, take);
    lines.finish(take);
    co_return out;
}

}  // namespace berth
