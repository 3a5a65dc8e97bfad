// One image build through berth, timed: bench_build ADDRESS CONTEXT_DIR legacy|buildkit nocache|cached TAG
// Prints the wall time of the build in seconds (context packing and upload included). benchmarks/build/run times
// the whole process instead, start-up and version check included, exactly as it times `docker build`.
#include <berth/berth.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

namespace asio = boost::asio;

asio::awaitable<void> build(std::string address, std::string context, berth::builder builder, bool no_cache,
                            std::string tag) {
    auto client = berth::client::at(co_await asio::this_coro::executor, address);
    co_await client.version();  // negotiation is not part of a build
    berth::build_options options;
    options.tag = tag;
    options.builder = builder;
    options.no_cache = no_cache;
    options.network_mode = "none";
    options.force_remove_intermediate = true;
    berth::tar::pack_options pack;
    pack.use_dockerignore = true;
    auto start = std::chrono::steady_clock::now();
    berth::tar::packer packer(context, "", pack);
    auto image = co_await client.images().build(packer, options);
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::printf("%.3f\n", took.count());
    if (image.id.empty()) throw std::runtime_error("no image id");
}

int main(int argc, char** argv) {
    if (argc != 6) {
        std::cerr << "usage: bench_build ADDRESS CONTEXT_DIR legacy|buildkit nocache|cached TAG\n";
        return 2;
    }
    std::string which = argv[3];
    auto builder = which == "buildkit" ? berth::builder::buildkit : berth::builder::legacy;
    asio::io_context io;
    std::exception_ptr failed;
    asio::co_spawn(io, build(argv[1], argv[2], builder, std::string(argv[4]) == "nocache", argv[5]),
                   [&](std::exception_ptr e) { failed = e; });
    io.run();
    if (failed) {
        try {
            std::rethrow_exception(failed);
        } catch (const std::exception& e) {
            std::cerr << "bench_build: " << e.what() << "\n";
            return 1;
        }
    }
    return 0;
}
