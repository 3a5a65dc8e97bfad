#pragma once
// Keep-alive connections to one engine. Idle connections are kept up to a bound and handed out again; a lease that
// is dropped without being recycled closes its connection, so an interrupted exchange can never leave a
// half-read reply on a pooled connection. Thread-safe: a client may be shared by coroutines on a thread pool.
#include <berth/transport/transport.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>

namespace berth::http {

template <transport Transport>
class connection_pool {
public:
    using stream_type = typename Transport::stream_type;

    struct connection {
        connection(stream_type s, std::shared_ptr<std::atomic<std::size_t>> counter)
            : stream(std::move(s)), open_counter(std::move(counter)) {
            ++*open_counter;
        }
        connection(const connection&) = delete;
        connection& operator=(const connection&) = delete;
        ~connection() {
            boost::system::error_code ec;
            stream.close(ec);
            --*open_counter;
        }
        stream_type stream;
        boost::beast::flat_buffer buffer;  // bytes read past the last message stay with their connection
        bool reused = false;               // handed out before: it may have been closed by the engine meanwhile
        std::shared_ptr<std::atomic<std::size_t>> open_counter;
    };

    class lease {
    public:
        lease() = default;
        lease(std::weak_ptr<connection_pool> pool, std::unique_ptr<connection> c)
            : pool_(std::move(pool)), connection_(std::move(c)) {}
        connection& operator*() const { return *connection_; }
        connection* operator->() const { return connection_.get(); }
        explicit operator bool() const { return connection_ != nullptr; }
        // The exchange completed cleanly and the engine keeps the connection open: make it available again.
        void recycle() {
            if (auto pool = pool_.lock(); pool && connection_) pool->put_back(std::move(connection_));
            connection_.reset();
        }
        // Detaches the connection for good (an upgraded exec stream); it is closed when the caller drops it.
        std::unique_ptr<connection> release() { return std::move(connection_); }

    private:
        std::weak_ptr<connection_pool> pool_;
        std::unique_ptr<connection> connection_;
    };

    connection_pool(Transport transport, std::size_t max_idle)
        : transport_(std::move(transport)), max_idle_(max_idle) {}

    // A connection from the idle list, or a new one. fresh=true always connects anew (for request bodies that
    // cannot be replayed if a reused connection turns out to be closed).
    static boost::asio::awaitable<lease> acquire(std::shared_ptr<connection_pool> self, bool fresh = false) {
        if (!fresh) {
            std::unique_lock lock(self->mutex_);
            if (!self->idle_.empty()) {
                auto c = std::move(self->idle_.back());
                self->idle_.pop_back();
                lock.unlock();
                c->reused = true;
                co_return lease(self, std::move(c));
            }
        }
        auto stream = co_await self->transport_.connect();
        co_return lease(self, std::make_unique<connection>(std::move(stream), self->open_));
    }

    Transport& transport() { return transport_; }
    // Connections currently open, idle or leased (upgraded exec streams included): the leak check of the tests.
    std::size_t open_connections() const { return open_->load(); }
    std::size_t idle_connections() const {
        std::lock_guard lock(mutex_);
        return idle_.size();
    }
    // Closes every idle connection (leased ones close when their exchange ends).
    void close_idle() {
        std::deque<std::unique_ptr<connection>> doomed;
        std::lock_guard lock(mutex_);
        doomed.swap(idle_);
    }

private:
    void put_back(std::unique_ptr<connection> c) {
        if (c->buffer.size() != 0) return;  // bytes past the reply: the connection is out of step, drop it
        std::lock_guard lock(mutex_);
        if (idle_.size() < max_idle_) idle_.push_back(std::move(c));
    }

    Transport transport_;
    std::size_t max_idle_;
    mutable std::mutex mutex_;
    std::deque<std::unique_ptr<connection>> idle_;
    std::shared_ptr<std::atomic<std::size_t>> open_ = std::make_shared<std::atomic<std::size_t>>(0);
};

} // namespace berth::http
