#pragma once
// The container's CPU time and peak memory for exec's figures (run_options::measure_usage) without slowing it.
// Docker answers a stats request only at its collector's next once-a-second sample; so on Docker berth keeps one
// stats stream per container open (watch_usage: on the first measured exec, or explicitly), reads its samples in
// the background (one a second, each a few KiB, bounded), and an exec takes the newest sample at once, with the
// sample's own time (exec_usage::sampled_at). The figures are cumulative (CPU time since the container started,
// the memory high-water mark), so a newer sample is never smaller; usage_after waits for one taken after a given
// moment. Podman reads its cgroup at once: there, every call asks the engine directly.
// The stream ends with cleanup_container, the container's removal, the engine closing it (figures are then absent
// until the next exec opens another, never stale), or the client's destruction (engine/usage_feeds.hpp).
#include <berth/engine/client.hpp>
#include <berth/detail/poll.hpp>
#include <berth/eval/container.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <optional>

namespace berth {

namespace detail {

inline usage_sample to_usage_sample(const container_stats& s) {
    usage_sample u;
    u.cpu_total_ns = s.cpu_total_ns;
    u.memory_peak_bytes = s.memory_peak_bytes;
    u.read = s.read.value_or(std::chrono::system_clock::time_point{});
    return u;
}

// Lives in the reader's frame (a parameter, so also when the frame is destroyed before it ever ran): the feed
// knows when no reader is left to cancel.
struct usage_reader_guard {
    std::shared_ptr<usage_feed> feed;
    explicit usage_reader_guard(std::shared_ptr<usage_feed> f) : feed(std::move(f)) { feed->reader_started(); }
    usage_reader_guard(usage_reader_guard&&) = default;
    usage_reader_guard& operator=(usage_reader_guard&&) = delete;
    ~usage_reader_guard() {
        if (feed) feed->reader_done();
    }
};

// Reads the stream until it ends, fails or the feed is stopped; every sample goes to the feed. A failure ends the
// feed quietly: the figures are best-effort.
template <class Stream>
boost::asio::awaitable<void> read_usage_stream(usage_reader_guard guard, Stream stream) {
    auto& feed = *guard.feed;
    try {
        while (!feed.ended()) {
            auto sample = co_await stream.next();
            if (!sample) break;
            feed.offer(to_usage_sample(*sample));
        }
    } catch (const std::exception&) {
        // cut by the engine, cancelled by stop(), or unreadable: the feed ends (the guard says so)
    }
}

}  // namespace detail

// Opens the container's stats stream unless one is open (Docker only; Podman needs none: false). True when a
// stream is open. The engine may refuse (no such container) or be unreachable: false, never an error.
template <transport Transport>
boost::asio::awaitable<bool> watch_usage(basic_container<Transport> c) {
    namespace asio = boost::asio;
    auto& engine = c.engine();
    try {
        if (co_await engine.kind() != engine_kind::docker) co_return false;
        auto& feeds = engine.core().usage_feeds();
        if (feeds.find(c.id)) co_return true;
        // Docker sends the reply head at once (the samples follow): a short limit keeps an exec from waiting long
        auto stream = co_await engine.containers().stats_stream(c.id, std::chrono::seconds(10));
        auto fresh = std::make_shared<detail::usage_feed>(asio::make_strand(engine.get_executor()));
        auto kept = feeds.insert(c.id, fresh);
        if (kept != fresh) co_return true;  // another call opened one meanwhile: this stream is dropped (closed)
        detail::usage_reader_guard guard(fresh);
        asio::co_spawn(fresh->strand(), detail::read_usage_stream(std::move(guard), std::move(stream)),
                       asio::bind_cancellation_slot(fresh->stop_slot(), [](std::exception_ptr) {}));
        co_return true;
    } catch (const std::exception&) { co_return false; }
}

// Stops the container's stats stream, if one is open (cleanup_container does).
template <transport Transport>
void stop_watching_usage(basic_container<Transport>& c) {
    if (c.client != nullptr) c.engine().core().usage_feeds().stop(c.id);
}

// The newest sample of the container's open stream, at once; nothing when none is open or none came yet.
template <transport Transport>
std::optional<usage_sample> newest_usage(basic_container<Transport>& c) {
    auto feed = c.engine().core().usage_feeds().find(c.id);
    if (!feed) return std::nullopt;
    return feed->latest();
}

namespace detail {
// The newest sample that satisfies `good`, waiting up to `limit` for one (the stream sends one a second).
template <transport Transport, class Good>
boost::asio::awaitable<std::optional<usage_sample>> wait_for_sample(basic_container<Transport> c, Good good,
                                                                    std::chrono::steady_clock::duration limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    std::optional<usage_sample> found;
    auto looked = [&c, &good, &found]() -> boost::asio::awaitable<bool> {
        auto feed = c.engine().core().usage_feeds().find(c.id);
        if (!feed) co_return true;  // no stream: nothing will come
        if (auto s = feed->latest(); s && good(*s)) found = s;
        co_return found.has_value();
    };
    // a sample comes once a second: looking every 20 ms costs nothing and needs no signal between threads
    const poll_policy policy{.first = std::chrono::milliseconds(20), .max = std::chrono::milliseconds(20), .factor = 1};
    co_await poll_until(looked, policy, deadline);
    co_return found;
}
}  // namespace detail

// The container's figures taken at or after `since` (engine time), waiting up to `limit` for such a sample (on
// Docker the next one comes within about a second); nothing when none came in time or the engine gave none.
// On Podman, the engine is asked at once (its answer is taken now, after `since`).
template <transport Transport>
boost::asio::awaitable<std::optional<usage_sample>> usage_after(basic_container<Transport> c,
                                                                std::chrono::system_clock::time_point since,
                                                                std::chrono::steady_clock::duration limit) {
    try {
        if (co_await c.engine().kind() != engine_kind::docker) {
            auto s = co_await c.engine().containers().stats(c.id);
            co_return detail::to_usage_sample(s);
        }
    } catch (const std::exception&) { co_return std::nullopt; }
    if (!co_await watch_usage(c)) co_return std::nullopt;
    co_return co_await detail::wait_for_sample(
        c, [since](const usage_sample& s) { return s.read >= since; }, limit);
}
template <transport Transport>
boost::asio::awaitable<std::optional<usage_sample>> usage_after(basic_container<Transport> c,
                                                                std::chrono::system_clock::time_point since) {
    return usage_after(std::move(c), since, std::chrono::seconds(5));
}

}  // namespace berth
