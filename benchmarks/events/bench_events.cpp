// The events benchmark's berth reader: GET /events as a system_events_stream from `since` (Unix seconds), for the
// containers labelled berth-bench-events=LABEL, one line per event on stdout ("action id timeNano"), until killed.
//   bench_events SINCE LABEL        (the engine: DOCKER_HOST, as the docker CLI finds it)
#include <berth/berth.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

namespace asio = boost::asio;

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: bench_events SINCE LABEL\n";
        return 2;
    }
    const auto since = std::chrono::system_clock::time_point(std::chrono::seconds(std::atoll(argv[1])));
    const std::string label = argv[2];
    asio::io_context ioc;
    int status = 0;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            auto c = berth::client::from_env(co_await asio::this_coro::executor);
            berth::system_events_options options{
                .since = since, .filters = {{"type", {"container"}}, {"label", {"berth-bench-events=" + label}}}};
            auto stream = co_await c.system().events(options);
            std::string line;
            while (auto e = co_await stream.next()) {
                line = e->action + " " + e->actor_id + " " + std::to_string(e->time_nano) + "\n";
                std::fwrite(line.data(), 1, line.size(), stdout);
                std::fflush(stdout);  // the driver counts lines as they come
            }
        },
        [&](std::exception_ptr failure) {
            if (!failure) return;
            try {
                std::rethrow_exception(failure);
            } catch (const std::exception& e) {
                std::cerr << "bench_events: " << e.what() << "\n";
                status = 1;
            }
        });
    ioc.run();
    return status;
}
