#pragma once
// The seed profile: the Python module's (utils/docker_utils.py) exact signatures and defaults, each written on top
// of the general API, so that a harness ported line by line reads and behaves as it did: positional arguments,
// `verbose` bools defaulting to true, image "app", container "app-container", the repository mounted at
// /hyperagents, and "a domain containing `genesis` asks for GPUs". The general API takes options structs instead
// (build_container_options, cleanup_options, copy_options, log_output_options) and has none of these constants.
#include <berth/eval/build_container.hpp>
#include <berth/eval/cleanup_container.hpp>
#include <berth/eval/copy.hpp>
#include <berth/eval/exec.hpp>

#include <string>
#include <vector>

namespace berth::seed {

// The Python module mounts the repository at /{REPO_NAME}, with REPO_NAME "hyperagents".
inline constexpr const char* repo_name = "hyperagents";

// Whether the Python module asks for GPUs for these domains: when any of them contains "genesis".
inline bool domains_want_gpus(const std::vector<std::string>& domains) {
    for (auto& d : domains)
        if (d.find("genesis") != std::string::npos) return true;
    return false;
}

// build_container(client, repo_path="./", image_name="app", container_name="app-container", force_rebuild=False,
// domains=None, verbose=True): the image (built when missing or force_rebuild), a fresh container of that name with
// the repository at /hyperagents, GPUs attempted for a genesis domain (then started without them if refused).
// Empty on failure, as the Python module returns None; failure() says why.
template <transport Transport>
boost::asio::awaitable<basic_build_container_result<Transport>> build_container(
    basic_client<Transport>& client, std::string repo_path = "./", std::string image_name = "app",
    std::string container_name = "app-container", bool force_rebuild = false, std::vector<std::string> domains = {},
    bool verbose = true) {
    build_container_options options;
    options.repo_path = std::move(repo_path);
    options.image_name = std::move(image_name);
    options.container_name = std::move(container_name);
    options.force_rebuild = force_rebuild;
    options.verbose = verbose;
    options.mount_name = repo_name;
    options.request_gpus = domains_want_gpus(domains);
    return berth::build_container(client, std::move(options));
}

// cleanup_container(container, verbose=True): stop, then remove; each step's failure is logged, none is thrown.
template <transport Transport>
boost::asio::awaitable<cleanup_report> cleanup_container(basic_container<Transport> c, bool verbose = true) {
    cleanup_options options;
    options.verbose = verbose;
    // Unqualified: argument-dependent lookup also finds a cluster handle's cleanup_container (cluster/cleanup.hpp).
    return cleanup_container(std::move(c), std::move(options));
}

// copy_to_container(container, source_path, dest_path, verbose=True).
template <transport Transport>
boost::asio::awaitable<void> copy_to_container(basic_container<Transport> c, std::filesystem::path source,
                                               std::string dest, bool verbose = true) {
    copy_options options;
    options.verbose = verbose;
    return berth::copy_to_container(std::move(c), std::move(source), std::move(dest), std::move(options));
}

// copy_from_container(container, source_path, dest_path, verbose=True).
template <transport Transport>
boost::asio::awaitable<copy_result> copy_from_container(basic_container<Transport> c, std::string source,
                                                        std::filesystem::path dest, bool verbose = true) {
    copy_options options;
    options.verbose = verbose;
    return berth::copy_from_container(std::move(c), std::move(source), std::move(dest), std::move(options));
}

// log_container_output(exec_result, verbose=True): raises "Script failed with exit code N" (script_failed).
inline void log_container_output(const exec_result& result, bool verbose = true) {
    log_output_options options;
    options.verbose = verbose;
    berth::log_container_output(result, std::move(options));
}

}  // namespace berth::seed
