// SPDX-License-Identifier: BSL-1.0
// README's complete program: build an image from a directory holding a Dockerfile, start a container, run a
// command, copy a file out, remove the container. scripts/consumers checks that README shows this file verbatim.
//
//   quickstart REPO_DIR
#include <berth/berth.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <iostream>

namespace asio = boost::asio;

asio::awaitable<int> run(std::string repo) {
    auto client = berth::client::from_env(co_await asio::this_coro::executor);  // DOCKER_HOST or the default socket

    berth::build_container_options options;  // build option structs as named variables (see "Notes for g++ 12")
    options.repo_path = repo;
    options.image_name = "my-tool";
    options.container_name = "my-tool-run";
    options.network_mode = "none";
    auto container = co_await berth::build_container(client, options);
    if (!container) {  // build_container reports failure as a value, and logs it
        std::cerr << "no container: " << container.failure()->message << "\n";
        co_return 1;
    }
    int status = 0;
    try {
        auto result = co_await berth::exec(*container, berth::argv("sh", "-c", "uname -a > /tmp/uname.txt"));
        berth::log_container_output(result);  // throws berth::script_failed on a non-zero exit code
        co_await berth::copy_from_container(*container, "/tmp/uname.txt", "uname.txt");
    } catch (const std::exception& e) {
        std::cerr << "failed: " << e.what() << "\n";
        status = 1;
    }
    co_await berth::cleanup_container(*container);  // stop and remove
    co_return status;
}

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: quickstart REPO_DIR\n";
        return 2;
    }
    asio::io_context io;
    auto status = asio::co_spawn(io, run(argv[1]), asio::use_future);
    io.run();
    return status.get();  // rethrows what escaped the coroutine
}
