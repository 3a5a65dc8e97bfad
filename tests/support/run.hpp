#pragma once
// The two ways a test runs a coroutine: to completion on an io_context of its own (real engines: the context runs out
// of work when the coroutine is done), or on an io_context that other work keeps busy (a mock engine's idle
// connections), until the coroutine completes or a time limit passes: a hang is reported as an error, not waited out.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace berth_test {

// Runs op on a fresh io_context until it completes; returns its result or rethrows its exception.
template <class T>
T run_to_completion(boost::asio::awaitable<T> op) {
    boost::asio::io_context io;
    auto f = boost::asio::co_spawn(io, std::move(op), boost::asio::use_future);
    io.run();
    return f.get();
}

// Runs op on ioc, where a mock engine answers too, until op completes (at most `limit`); returns its result or
// rethrows its exception. `slot` reaches op's cancellation state (tests that cancel it half-way).
template <class T>
T run_on_mock(boost::asio::io_context& ioc, boost::asio::awaitable<T> op,
              std::chrono::seconds limit = std::chrono::seconds(5), boost::asio::cancellation_slot slot = {}) {
    std::exception_ptr error;
    [[maybe_unused]] std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> value;
    bool done = false;
    if constexpr (std::is_void_v<T>) {
        boost::asio::co_spawn(ioc, std::move(op), boost::asio::bind_cancellation_slot(slot, [&](std::exception_ptr e) {
                                  error = e;
                                  done = true;
                              }));
    } else {
        boost::asio::co_spawn(ioc, std::move(op),
                              boost::asio::bind_cancellation_slot(slot, [&](std::exception_ptr e, T v) {
                                  error = e;
                                  if (!e) value.emplace(std::move(v));
                                  done = true;
                              }));
    }
    ioc.restart();
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done && ioc.run_one_until(deadline) > 0) {}
    if (!done)
        throw std::runtime_error("the operation did not complete within " + std::to_string(limit.count()) + " s");
    if (error) std::rethrow_exception(error);
    if constexpr (!std::is_void_v<T>) return std::move(*value);
}

}  // namespace berth_test
