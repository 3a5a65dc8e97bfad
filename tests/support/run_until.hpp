#pragma once
// Runs one coroutine on an io_context that other work keeps busy (a mock engine's idle connections), until the
// coroutine completes or a time limit passes: a hang is reported as an error, not waited out.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>

namespace berth_test {

template <class T>
T run_until_done(boost::asio::io_context& ioc, boost::asio::awaitable<T> op, std::chrono::seconds limit) {
    std::exception_ptr error;
    std::optional<T> value;
    bool done = false;
    boost::asio::co_spawn(ioc, std::move(op), [&](std::exception_ptr e, T v) {
        error = e;
        if (!e) value.emplace(std::move(v));
        done = true;
    });
    ioc.restart();
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done && ioc.run_one_until(deadline) > 0) {}
    if (!done) throw std::runtime_error("the operation did not complete within " + std::to_string(limit.count()) + " s");
    if (error) std::rethrow_exception(error);
    return std::move(*value);
}

} // namespace berth_test
