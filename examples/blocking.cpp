// SPDX-License-Identifier: BSL-1.0
// The blocking facade: the same workflow as a plain sequential program, no coroutines in sight. Each call runs
// to completion on the facade's private io_context (so never call it from inside a coroutine).
//
//   blocking REPO_DIR      REPO_DIR holds a Dockerfile whose image has /bin/sh
#include <berth/eval/blocking.hpp>

#include <iostream>

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: blocking REPO_DIR\n";
        return 2;
    }
    berth::setup_logger("berth-blocking.log");  // this thread's logger, as in the Python module
    berth::blocking::client client;             // as the docker CLI: DOCKER_HOST, context, socket

    berth::build_container_options options;
    options.repo_path = argv[1];
    options.image_name = "berth-blocking";
    options.container_name = "berth-blocking-0";
    options.network_mode = "none";
    auto container = berth::blocking::build_container(client, options);
    if (!container) {
        std::cerr << "no container: " << container.failure()->message << "\n";
        return 1;
    }
    int status = 0;
    try {
        auto result = berth::blocking::exec(client, *container, "sh -c 'echo hello from $(hostname)'");
        berth::log_container_output(result);  // throws berth::script_failed on a non-zero exit
        std::cout << result.output;
    } catch (const std::exception& e) {  // engine_error, file_not_found, script_failed, system_error...
        std::cerr << "failed: " << e.what() << "\n";
        status = 1;
    }
    berth::blocking::cleanup_container(client, *container);
    return status;
}
