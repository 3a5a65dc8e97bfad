#pragma once
// Gives any berth operation a time limit. The operation is cancelled (terminal cancellation) when the time is up;
// a cancelled request closes its connection instead of returning it to the pool, so the pool stays healthy.
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <type_traits>
#include <variant>

namespace berth {

template <class T>
boost::asio::awaitable<T> with_timeout(boost::asio::awaitable<T> operation, std::chrono::steady_clock::duration limit) {
    namespace asio = boost::asio;
    using namespace asio::experimental::awaitable_operators;
    asio::steady_timer timer(co_await asio::this_coro::executor, limit);
    auto result = co_await (std::move(operation) || timer.async_wait(asio::use_awaitable));
    if (result.index() == 1) throw boost::system::system_error(asio::error::timed_out, "berth operation timed out");
    if constexpr (!std::is_void_v<T>) co_return std::get<0>(std::move(result));
}

} // namespace berth
