#pragma once
// Past engine events (GET /events with both since and until, which the engine answers at once with what it
// recorded in that window instead of streaming): for questions such as "did the kernel OOM-kill a process in
// this container while the command ran" (Docker's "oom" container event).
#include <berth/detail/url.hpp>
#include <berth/engine/client_core.hpp>

#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdio>

namespace berth {

struct engine_event {
    std::string type{};    // "container", "image", ...
    std::string action{};  // "oom", "die", "exec_die", ...
    std::string actor_id{};
    std::int64_t time_nano = 0;
    json::object raw{};
};

struct past_events_query {
    std::chrono::system_clock::time_point since{};
    std::chrono::system_clock::time_point until{};  // must not be in the engine's future: it would stream until then
    // The engine's filters: {"container": {id}}, {"event": {"oom"}}, ...
    std::map<std::string, std::vector<std::string>> filters{};
};

namespace detail {
// "seconds.nanoseconds", the form the engine accepts for since and until.
inline std::string event_timestamp(std::chrono::system_clock::time_point t) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    if (ns < 0) ns = 0;
    char buf[48];
    std::snprintf(buf, sizeof buf, "%lld.%09lld", static_cast<long long>(ns / 1000000000),
                  static_cast<long long>(ns % 1000000000));
    return buf;
}
}  // namespace detail

// The events the engine recorded between since and until, oldest first. The reply is a sequence of JSON
// objects (not an array); a line that is not one is a protocol_error.
// Engine API: GET /events
template <transport Transport>
boost::asio::awaitable<std::vector<engine_event>> past_events(client_core<Transport>& core, past_events_query q) {
    if (q.until < q.since) throw invalid_argument_error("berth::past_events: until is before since");
    detail::query query;
    query.add("since", detail::event_timestamp(q.since)).add("until", detail::event_timestamp(q.until));
    if (!q.filters.empty()) {
        json::object f{};
        for (auto& [k, vals] : q.filters) f[k] = json::array(vals.begin(), vals.end());
        query.add("filters", json::serialize(f));
    }
    std::string target = "/events" + query.str();
    const std::string endpoint = "GET " + target;
    auto body = co_await core.call(verb::get, target);
    std::vector<engine_event> out;
    std::string_view rest = body;
    while (!rest.empty()) {
        auto nl = rest.find('\n');
        auto line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
        if (line.empty()) continue;
        auto v = json_read::parse(line, endpoint);
        auto& o = json_read::as_object(v, endpoint);
        engine_event e;
        e.type = json_read::optional_string(o, "Type", endpoint);
        e.action = json_read::optional_string(o, "Action", endpoint);
        if (auto* actor = json_read::optional_object(o, "Actor", endpoint))
            e.actor_id = json_read::optional_string(*actor, "ID", endpoint);
        e.time_nano = json_read::optional_int(o, "timeNano", endpoint);
        e.raw = o;
        out.push_back(std::move(e));
    }
    co_return out;
}

}  // namespace berth
