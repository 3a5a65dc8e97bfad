#pragma once
// Keep-alive connections to one engine. Idle connections are kept up to a bound and handed out again; a lease that
// is dropped without being recycled closes its connection, so an interrupted exchange can never leave a
// half-read reply on a pooled connection. Thread-safe: a client may be shared by coroutines on a thread pool.
#include <berth/transport/transport.hpp>
#include <berth/with_timeout.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace berth::http {

namespace detail {
// True when the engine has closed an idle socket (or sent bytes nobody asked for). Such a connection must not carry
// a request: a POST written to it could not be told apart from one the engine received and then dropped, and so
// could not be retried. Streams without a socket descriptor (the mock engine's, pipes) are taken as alive; the
// exchange's retry rules cover them.
template <class Stream>
bool idle_peer_gone(Stream& s) {
    if constexpr (requires {
                      { s.native_handle() } -> std::convertible_to<int>;
                  }) {
        char byte;
        auto n = ::recv(s.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        return n >= 0 || errno == ECONNRESET;
    } else {
        (void)s;
        return false;
    }
}
}  // namespace detail

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
        std::unique_ptr<connection> release() {
            if (auto pool = pool_.lock()) replenish(std::move(pool));
            return std::move(connection_);
        }

    private:
        std::weak_ptr<connection_pool> pool_;
        std::unique_ptr<connection> connection_;
    };

    // connect_timeout: the time limit of each connect; zero means none.
    connection_pool(Transport transport, std::size_t max_idle,
                    std::chrono::steady_clock::duration connect_timeout = std::chrono::steady_clock::duration::zero())
        : transport_(std::move(transport)), max_idle_(max_idle), connect_timeout_(connect_timeout) {}

    // A connection from the idle list, or a new one. fresh=true always connects anew (for request bodies that
    // cannot be replayed if a reused connection turns out to be closed). A connect that takes longer than the
    // connect timeout fails with asio::error::timed_out.
    static boost::asio::awaitable<lease> acquire(std::shared_ptr<connection_pool> self, bool fresh = false) {
        while (!fresh) {
            std::unique_lock lock(self->mutex_);
            if (self->idle_.empty()) break;
            auto c = std::move(self->idle_.back());
            self->idle_.pop_back();
            lock.unlock();
            if (detail::idle_peer_gone(c->stream)) continue;  // closed by the engine meanwhile: dropped here
            c->reused = true;
            co_return lease(self, std::move(c));
        }
        if (self->connect_timeout_.count() <= 0) {
            auto stream = co_await self->transport_.connect();
            co_return lease(self, std::make_unique<connection>(std::move(stream), self->open_));
        }
        const std::string what = "no connection within " + describe_duration(self->connect_timeout_);
        std::optional<stream_type> stream;
        try {
            stream = co_await with_timeout(connect_optional(self), self->connect_timeout_, what);
        } catch (const connection_error& e) {
            if (e.endpoint() != what) throw;  // the transport's own, naming the engine
            // the pool's own limit ran out: an untyped system_error, as a transport's connect failure is, which the
            // exchange turns into a connection_error naming the engine and the request
            throw boost::system::system_error(e.code(), what);
        }
        co_return lease(self, std::make_unique<connection>(std::move(*stream), self->open_));
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
    // After a connection is taken for good (an exec stream), opens one in the background for the idle list when
    // the transport's connections are costly to open (it says so: a TLS handshake) and none is idle or being
    // opened. The exec's next request, reading its exit code when the stream ends, then finds a connection ready
    // instead of waiting for a handshake. A failure is left to the next request, which connects and reports it.
    static void replenish(std::shared_ptr<connection_pool> self) {
        if constexpr (requires(const Transport& t) {
                          { t.costly_connect() } -> std::convertible_to<bool>;
                      }) {
            if (!self->transport_.costly_connect()) return;
            {
                std::lock_guard lock(self->mutex_);
                if (!self->idle_.empty() || self->replenishing_) return;
                self->replenishing_ = true;
            }
            auto ex = self->transport_.get_executor();
            boost::asio::co_spawn(ex, open_spare(std::move(self)), boost::asio::detached);
        }
    }

    static boost::asio::awaitable<void> open_spare(std::shared_ptr<connection_pool> self) {
        try {
            auto spare = co_await acquire(self, true);  // within the connect timeout
            spare.recycle();
        } catch (const std::exception&) {}
        std::lock_guard lock(self->mutex_);
        self->replenishing_ = false;
    }

    // with_timeout hands out a default-constructed value on failure; streams have none.
    static boost::asio::awaitable<std::optional<stream_type>> connect_optional(std::shared_ptr<connection_pool> self) {
        co_return co_await self->transport_.connect();
    }

    void put_back(std::unique_ptr<connection> c) {
        if (c->buffer.size() != 0) return;  // bytes past the reply: the connection is out of step, drop it
        std::lock_guard lock(mutex_);
        if (idle_.size() < max_idle_) idle_.push_back(std::move(c));
    }

    Transport transport_;
    std::size_t max_idle_;
    std::chrono::steady_clock::duration connect_timeout_;
    mutable std::mutex mutex_;
    std::deque<std::unique_ptr<connection>> idle_;
    bool replenishing_ = false;  // a spare connection is being opened (replenish)
    std::shared_ptr<std::atomic<std::size_t>> open_ = std::make_shared<std::atomic<std::size_t>>(0);
};

}  // namespace berth::http
