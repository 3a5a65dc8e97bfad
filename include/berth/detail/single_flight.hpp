#pragma once
// single_flight<T>: a value made once per key while making it succeeds, for callers that would otherwise make the
// same thing at the same time (the cluster's images, built and pushed once). A waiter is woken on its own
// executor, and its cancellation ends its wait (operation_aborted).
#include <berth/error.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace berth::detail {

template <class T>
class single_flight {
public:
    // `waiting`: what a waiter whose wait is cancelled was doing ("waiting for an image"), for its error.
    explicit single_flight(std::string waiting) : waiting_(std::move(waiting)) {}
    single_flight(const single_flight&) = delete;
    single_flight& operator=(const single_flight&) = delete;

    // `make` run once per key while it succeeds: concurrent callers with the same key wait for the first one's
    // result (or its exception); after a failure the next caller tries again.
    boost::asio::awaitable<T> once(const std::string& key, std::function<boost::asio::awaitable<T>()> make) {
        std::shared_ptr<flight> f;
        bool mine = false;
        {
            std::lock_guard lock(mutex_);
            auto& slot = flights_[key];
            if (!slot) {
                slot = std::make_shared<flight>();
                mine = true;
            }
            f = slot;
        }
        if (mine) co_return co_await fly(key, f, std::move(make));
        co_return co_await await_flight(f);
    }

private:
    struct flight {
        bool done = false;
        T value{};
        std::exception_ptr error{};
        std::vector<std::shared_ptr<boost::asio::steady_timer>> waiters{};
    };

    boost::asio::awaitable<T> fly(const std::string& key, std::shared_ptr<flight> f,
                                  std::function<boost::asio::awaitable<T>()> make) {
        std::exception_ptr error;
        T value{};
        try {
            value = co_await make();
        } catch (...) { error = std::current_exception(); }
        std::vector<std::shared_ptr<boost::asio::steady_timer>> waiters;
        {
            std::lock_guard lock(mutex_);
            f->done = true;
            f->value = value;
            f->error = error;
            waiters.swap(f->waiters);
            if (error) flights_.erase(key);  // the next caller tries again
        }
        // Each waiter's timer is cancelled on its own executor: a timer is not safe to touch from another thread.
        for (auto& t : waiters) boost::asio::post(t->get_executor(), [t] { t->cancel(); });
        if (error) std::rethrow_exception(error);
        co_return value;
    }

    boost::asio::awaitable<T> await_flight(std::shared_ptr<flight> f) {
        for (;;) {
            auto timer = std::make_shared<boost::asio::steady_timer>(co_await boost::asio::this_coro::executor,
                                                                     boost::asio::steady_timer::time_point::max());
            {
                std::lock_guard lock(mutex_);
                if (f->done) {
                    if (f->error) std::rethrow_exception(f->error);
                    co_return f->value;
                }
                f->waiters.push_back(timer);
            }
            boost::system::error_code ec;
            co_await timer->async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            auto cs = co_await boost::asio::this_coro::cancellation_state;
            if (cs.cancelled() != boost::asio::cancellation_type::none) {
                const boost::system::error_code aborted = boost::asio::error::operation_aborted;
                throw berth::error(aborted, waiting_ + ": " + aborted.message());
            }
        }
    }

    std::string waiting_;
    std::mutex mutex_{};
    std::map<std::string, std::shared_ptr<flight>> flights_{};
};

}  // namespace berth::detail
