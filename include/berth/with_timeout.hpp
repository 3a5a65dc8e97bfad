#pragma once
// Gives any berth operation a time limit. The operation is cancelled (terminal cancellation) when the time is up;
// a cancelled request closes its connection instead of returning it to the pool, so the pool stays healthy.
// The operation's own outcome, value or exception, is passed through as soon as it has one.
#include <berth/http/error.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>  // kept for code that used || through this header
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <exception>
#include <string>
#include <type_traits>

namespace berth {

// "300 s", "1.5 s", "100 ms": for messages that say which limit ran out.
inline std::string describe_duration(std::chrono::steady_clock::duration d) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    if (ms < 1000) return std::to_string(ms) + " ms";
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
    return std::to_string(ms / 1000) + "." + std::to_string(ms % 1000 / 100) + " s";
}

// When the limit runs out: a connection_error with code asio::error::timed_out whose text is `what`
// (say which request waited for what, so that the error names its endpoint).
template <class T>
boost::asio::awaitable<T> with_timeout(boost::asio::awaitable<T> operation, std::chrono::steady_clock::duration limit,
                                       std::string what = "berth operation timed out") {
    namespace asio = boost::asio;
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer timer(ex, limit);
    // wait_for_one: whichever finishes first, successfully or not, ends the race and cancels the other. (The
    // awaitable operator || waits for the first *success*, which would turn the operation's errors into time-outs.)
    auto group = asio::experimental::make_parallel_group(asio::co_spawn(ex, std::move(operation), asio::deferred),
                                                         timer.async_wait(asio::deferred));
    if constexpr (std::is_void_v<T>) {
        auto [order, error, timer_ec] = co_await group.async_wait(asio::experimental::wait_for_one(),
                                                                  asio::use_awaitable);
        (void)timer_ec;
        if (order[0] == 1) throw connection_error(asio::error::timed_out, std::move(what));
        if (error) std::rethrow_exception(error);
    } else {
        auto [order, error, value, timer_ec] = co_await group.async_wait(asio::experimental::wait_for_one(),
                                                                         asio::use_awaitable);
        (void)timer_ec;
        if (order[0] == 1) throw connection_error(asio::error::timed_out, std::move(what));
        if (error) std::rethrow_exception(error);
        co_return std::move(value);
    }
}

}  // namespace berth
