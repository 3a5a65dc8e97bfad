#pragma once
// detail::poll_until: berth's one poll/backoff loop. It asks `check` again and again, pausing between asks with
// pauses that grow (first, first*factor, ... up to max), until check answers, the attempts run out or the deadline
// passes. The last pause before the deadline is cut short to end at it, so a deadline is never overshot by a pause.
// The pauses are timer waits on the caller's coroutine: its cancellation ends the poll (operation_aborted), and
// what check throws passes through.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <utility>

namespace berth::detail {

struct poll_policy {
    using duration = std::chrono::steady_clock::duration;
    duration first = std::chrono::milliseconds(20);  // the first pause
    duration max = std::chrono::milliseconds(500);   // no pause is longer
    int factor = 2;                                  // each pause is the one before times this (1: all alike)
    std::size_t attempts = 0;                        // checks at most; 0: no limit
    bool pause_first = false;                        // pause before the first check as well
    // When set, the pause after the `checks`-th check, from how long the poll has run (first, max and factor then
    // do not apply): for a pace that depends on more than the number of checks.
    std::function<duration(std::size_t checks, duration waited)> pause{};
};

// The pause after `previous` under `policy`'s growth.
inline poll_policy::duration next_pause(const poll_policy& policy, poll_policy::duration previous) {
    return std::min(previous * policy.factor, policy.max);
}

// `check` is called with no arguments and returns an awaitable of bool (done or not yet) or of std::optional<T>
// (the value, or not yet). poll_until answers the same type: the answer that ended the poll, or false / nullopt
// when the attempts ran out or the deadline passed (checked after each check that did not answer).
template <class Check>
auto poll_until(Check check, poll_policy policy,
                std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt)
    -> boost::asio::awaitable<typename decltype(check())::value_type> {
    using clock = std::chrono::steady_clock;
    using answer = typename decltype(check())::value_type;
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    const auto began = clock::now();
    auto pause = policy.first;
    if (policy.pause_first) {
        auto first = pause;
        if (deadline) first = std::min<clock::duration>(first, std::max<clock::duration>(*deadline - began, {}));
        timer.expires_after(first);
        co_await timer.async_wait(boost::asio::use_awaitable);
        pause = next_pause(policy, pause);
    }
    for (std::size_t checks = 1;; ++checks) {
        answer a = co_await check();
        if (a) co_return a;
        if (policy.attempts != 0 && checks >= policy.attempts) co_return answer{};
        const auto now = clock::now();
        if (deadline && now >= *deadline) co_return answer{};
        auto wait = policy.pause ? policy.pause(checks, now - began) : pause;
        if (deadline) wait = std::min<clock::duration>(wait, *deadline - now);
        timer.expires_after(wait);
        co_await timer.async_wait(boost::asio::use_awaitable);
        if (!policy.pause) pause = next_pause(policy, pause);
    }
}

}  // namespace berth::detail
