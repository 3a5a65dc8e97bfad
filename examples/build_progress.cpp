// SPDX-License-Identifier: BSL-1.0
// A progress display for an image build: one line per step as it starts, is cached, finishes or fails, with the
// step's own output indented under it. The same typed progress_event callback serves pulls (see pull_progress).
//
//   build_progress CONTEXT_DIR [TAG]      CONTEXT_DIR holds a Dockerfile; .dockerignore is honoured
//
// The engine comes from DOCKER_HOST (else /var/run/docker.sock).
#include <berth/berth.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <iostream>
#include <string>

namespace asio = boost::asio;

namespace {

class build_display {
public:
    void operator()(const berth::progress_event& e) {
        switch (e.kind) {
        case berth::progress_kind::step_progress:  // byte counts of a transfer: too chatty for a line each
            return;
        case berth::progress_kind::step_log:  // the step's output, indented; pieces need not be whole lines
            for (char c : e.text) {
                if (at_line_start_) std::cout << "    ";
                std::cout << c;
                at_line_start_ = c == '\n';
            }
            return;
        default:
            if (!at_line_start_) std::cout << '\n';
            at_line_start_ = true;
            std::cout << berth::describe(e) << '\n';  // "#2 [2/3] RUN make", "#2 CACHED ...", "#2 DONE ..."
        }
    }

private:
    bool at_line_start_ = true;
};

asio::awaitable<int> build(std::string dir, std::string tag) {
    auto client = berth::client::from_env(co_await asio::this_coro::executor);
    berth::tar::pack_options pack;
    pack.use_dockerignore = true;
    berth::tar::packer context(dir, "", pack);  // streamed to the engine as it is read, never held in memory
    berth::build_options options;
    options.tag = tag;
    options.network_mode = "none";  // RUN steps stay off the network
    try {
        options.on_progress = build_display();
        auto image = co_await client.images().build(context, options);
        std::cout << "built " << image.id << " as " << tag << "\n";
        co_return 0;
    } catch (const berth::engine_error& e) {  // a failed step: the engine's own message (stream_error)
        std::cerr << "build failed: " << e.message() << "\n";
        co_return 1;
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: build_progress CONTEXT_DIR [TAG]\n";
        return 2;
    }
    asio::io_context io;
    auto status = asio::co_spawn(io, build(argv[1], argc > 2 ? argv[2] : "berth-build-progress"), asio::use_future);
    io.run();
    return status.get();
}
