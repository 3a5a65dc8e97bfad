#pragma once
// A blocking facade for programs that do not use coroutines: the same operations, each run to completion on the
// facade's private io_context, so a Python harness can be ported line by line. Not for use from inside a
// coroutine (it would block that coroutine's thread).
#include <berth/version.hpp>  // first: the C++20 check
#include <berth/eval.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <concepts>
#include <future>
#include <string_view>

namespace berth::blocking {

class client {
public:
    // The engine the docker CLI would use (client::from_env: DOCKER_HOST, a Docker context, or the default socket).
    client() : client_(berth::client::from_env(io_.get_executor())) {}
    explicit client(std::string_view address) : client_(berth::client::at(io_.get_executor(), address)) {}

    // Runs one operation to completion and returns its result (or throws its exception). Work that outlives an
    // operation (exec's stats stream on Docker, run_options::measure_usage) is not waited for: it goes on during
    // the next call, which first takes what arrived meanwhile.
    template <class T>
    T run(boost::asio::awaitable<T> op) {
        io_.restart();
        io_.poll();
        auto future = boost::asio::co_spawn(io_, std::move(op), boost::asio::use_future);
        while (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
            if (io_.stopped()) io_.restart();
            io_.run_one();
        }
        return future.get();
    }

    berth::client& async() { return client_; }

private:
    boost::asio::io_context io_;
    berth::client client_;
};

// Empty on failure, with failure() saying why (see build_container).
inline build_container_result build_container(client& c, build_container_options options) {
    return c.run(berth::build_container(c.async(), std::move(options)));
}
// What was and was not removed (see cleanup_report); never throws for a failed step.
inline cleanup_report cleanup_container(client& c, const container& box, cleanup_options options = {}) {
    return c.run(berth::cleanup_container(box, std::move(options)));
}
inline void copy_to_container(client& c, const container& box, const std::filesystem::path& source,
                              const std::string& dest, copy_options options = {}) {
    c.run(berth::copy_to_container(box, source, dest, std::move(options)));
}
inline copy_result copy_from_container(client& c, const container& box, const std::string& source,
                                       const std::filesystem::path& dest, copy_options options = {}) {
    return c.run(berth::copy_from_container(box, source, dest, std::move(options)));
}
// The result's outcome and usage, and exec_interrupted, as with the coroutine exec.
inline exec_result exec(client& c, const container& box, std::vector<std::string> cmd, run_options options = {}) {
    return c.run(berth::exec(box, std::move(cmd), std::move(options)));
}
// A command line split as a shell would: exec(c, box, "git status"). A template, so that a braced list
// (exec(c, box, {"ls", "/"})) still picks the argument-vector form above.
template <class Line>
requires std::convertible_to<const Line&, std::string_view> exec_result exec(client& c, const container& box,
                                                                             const Line& command_line,
                                                                             run_options options = {}) {
    return exec(c, box, split_command(command_line), std::move(options));
}

}  // namespace berth::blocking
