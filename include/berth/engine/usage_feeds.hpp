#pragma once
// The newest cgroup figures of containers whose stats the engine streams (GET /containers/{id}/stats?stream=true).
// Docker answers a one-shot stats request only at its collector's next once-a-second sample, so a caller that wants
// figures at the end of each exec keeps one stream per container open instead and takes its newest sample at once.
// The client keeps the feeds (client_core::usage_feeds), keyed by container id: copies of a container handle, and
// handles made again from its id, share one. A feed ends with cleanup_container, the container's removal (the
// engine ends the stream), the engine closing it (a restart), or the client's destruction; no reader outlives it.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace berth {

// One stats sample: the container's cumulative figures (CPU time since it started, the memory cgroup's high-water
// mark) at the engine's time `read`.
struct usage_sample {
    std::uint64_t cpu_total_ns = 0;
    std::optional<std::uint64_t> memory_peak_bytes{};
    std::chrono::system_clock::time_point read{};
};

namespace detail {

// One container's stream: the newest sample, and how to stop its reader. Shared by the registry and the reader.
class usage_feed : public std::enable_shared_from_this<usage_feed> {
public:
    using strand_type = boost::asio::strand<boost::asio::any_io_executor>;

    explicit usage_feed(strand_type strand) : strand_(std::move(strand)) {}

    // A new sample. One without a time (Docker's empty sample of a stopped container) or whose CPU time went back
    // (not this container's cgroup any more) is no figure of the container: it is dropped, and the feed ends.
    void offer(const usage_sample& s) {
        std::lock_guard lock(mutex_);
        if (ended_) return;
        if (s.read.time_since_epoch().count() <= 0 || (latest_ && s.cpu_total_ns < latest_->cpu_total_ns)) {
            end_locked();
            return;
        }
        usage_sample kept = s;
        // the high-water mark never falls; a sample without one keeps the last one seen
        if (latest_ && latest_->memory_peak_bytes)
            kept.memory_peak_bytes = std::max(kept.memory_peak_bytes.value_or(0), *latest_->memory_peak_bytes);
        latest_ = kept;
    }

    // The newest sample (nothing before the first one, and nothing once the feed ended: never a stale value).
    std::optional<usage_sample> latest() const {
        std::lock_guard lock(mutex_);
        return ended_ ? std::nullopt : latest_;
    }
    bool ended() const {
        std::lock_guard lock(mutex_);
        return ended_;
    }

    // Ends the feed; a reader still running is cancelled on its strand (its connection is then closed).
    void stop() {
        std::lock_guard lock(mutex_);
        end_locked();
    }

    // For the reader: it binds stop_slot() to itself, calls reader_started() before it runs and reader_done() when
    // its frame goes (also when its io_context is destroyed first: then there is nothing left to cancel).
    boost::asio::cancellation_slot stop_slot() { return signal_.slot(); }
    strand_type strand() const {
        std::lock_guard lock(mutex_);
        return *strand_;
    }
    void reader_started() {
        std::lock_guard lock(mutex_);
        reading_ = true;
    }
    void reader_done() {
        std::lock_guard lock(mutex_);
        reading_ = false;
        ended_ = true;
        latest_.reset();
        strand_.reset();  // a strand must not outlive its io_context, which may go first
    }

private:
    void end_locked() {
        ended_ = true;
        latest_.reset();
        if (!reading_ || stop_posted_ || !strand_) return;
        stop_posted_ = true;
        boost::asio::post(
            *strand_, [self = shared_from_this()] { self->signal_.emit(boost::asio::cancellation_type::terminal); });
    }

    mutable std::mutex mutex_{};
    std::optional<strand_type> strand_;          // the reader's, while it runs
    boost::asio::cancellation_signal signal_{};  // touched only on strand_
    std::optional<usage_sample> latest_{};
    bool ended_ = false;
    bool reading_ = false;
    bool stop_posted_ = false;
};

// The client's feeds by container id.
class usage_feeds {
public:
    usage_feeds() = default;
    usage_feeds(const usage_feeds&) = delete;
    usage_feeds& operator=(const usage_feeds&) = delete;
    ~usage_feeds() { stop_all(); }

    // The container's feed while it runs, else null.
    std::shared_ptr<usage_feed> find(const std::string& id) {
        std::lock_guard lock(mutex_);
        auto it = feeds_.find(id);
        if (it == feeds_.end()) return nullptr;
        if (it->second->ended()) {
            feeds_.erase(it);
            return nullptr;
        }
        return it->second;
    }
    // Keeps `feed` for the container unless a running one is already kept (two execs opened one each): returns the
    // one kept; the caller drops the other.
    std::shared_ptr<usage_feed> insert(const std::string& id, std::shared_ptr<usage_feed> feed) {
        std::lock_guard lock(mutex_);
        auto& slot = feeds_[id];
        if (slot && !slot->ended()) return slot;
        slot = std::move(feed);
        return slot;
    }
    void stop(const std::string& id) {
        std::shared_ptr<usage_feed> feed;
        {
            std::lock_guard lock(mutex_);
            auto it = feeds_.find(id);
            if (it == feeds_.end()) return;
            feed = std::move(it->second);
            feeds_.erase(it);
        }
        feed->stop();
    }
    void stop_all() {
        std::map<std::string, std::shared_ptr<usage_feed>> feeds;
        {
            std::lock_guard lock(mutex_);
            feeds.swap(feeds_);
        }
        for (auto& [id, feed] : feeds) feed->stop();
    }
    // Feeds still running, for leak checks.
    std::size_t running() const {
        std::lock_guard lock(mutex_);
        std::size_t n = 0;
        for (auto& [id, feed] : feeds_) n += feed->ended() ? 0u : 1u;
        return n;
    }

private:
    mutable std::mutex mutex_{};
    std::map<std::string, std::shared_ptr<usage_feed>> feeds_{};
};

}  // namespace detail
}  // namespace berth
