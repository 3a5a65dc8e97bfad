#pragma once
// Shared by the real-engine tests: which engines to run against, unique names, and the FROM-scratch busybox image
// (built through berth itself when missing).
#include "checks.hpp"
#include "files.hpp"
#include "run.hpp"

#include <berth/berth.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace berth_test {

namespace asio = boost::asio;

struct engine_under_test {
    std::string name;     // "docker" or "podman"
    std::string address;  // unix:///...
};

inline bool in_ci() {
    const char* ci = std::getenv("CI");
    return ci != nullptr && std::string(ci) == "true";
}

inline asio::awaitable<bool> ping(std::string address) {
    auto c = berth::client::at(co_await asio::this_coro::executor, address);
    co_return co_await c.system().ping();
}

inline bool reachable(const std::string& address) {
    try {
        return run_to_completion(ping(address));
    } catch (const std::exception&) { return false; }
}

// The engines named by the environment: BERTH_TEST_DOCKER_HOST (else DOCKER_HOST) and BERTH_PODMAN_HOST. An engine
// that is named but unreachable, or none at all, fails in CI and is reported as skipped elsewhere.
inline std::vector<engine_under_test> engines(bool want_docker = true, bool want_podman = true) {
    std::vector<engine_under_test> out;
    auto consider = [&](const char* kind, const char* var, const char* fallback_var) {
        const char* v = std::getenv(var);
        if ((v == nullptr || *v == '\0') && fallback_var) v = std::getenv(fallback_var);
        if (v == nullptr || *v == '\0') {
            std::string why = std::string("no ") + kind + " engine: set " + var + " (scripts/test does)";
            if (in_ci()) FAIL(why);
            MESSAGE("SKIPPED: " << why);
            return;
        }
        if (!reachable(v)) {
            std::string why = std::string(kind) + " engine at " + v + " does not answer /_ping";
            if (in_ci()) FAIL(why);
            MESSAGE("SKIPPED: " << why);
            return;
        }
        out.push_back({kind, v});
    };
    if (want_docker) consider("docker", "BERTH_TEST_DOCKER_HOST", "DOCKER_HOST");
    if (want_podman) consider("podman", "BERTH_PODMAN_HOST", nullptr);
    return out;
}

// Runs a test body (a coroutine taking the engine) once per engine under test.
template <class F>
void for_each_engine(F body, bool docker = true, bool podman = true) {
    for (auto& e : engines(docker, podman)) {
        CAPTURE(e.name);
        run_to_completion(body(e));
    }
}

inline std::string unique_name(std::string_view what) {
    static std::atomic<int> counter{0};
    return "berth-test-" + std::string(what) + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

inline constexpr const char* base_image = "berth-busybox";

// The base image: busybox's applets and a world-writable sticky /tmp, as in a real distribution image.
inline constexpr std::string_view busybox_dockerfile =
    "FROM scratch\nCOPY busybox /bin/busybox\n"
    "RUN [\"/bin/busybox\",\"sh\",\"-c\",\"/bin/busybox --install -s /bin && mkdir -m 1777 /tmp\"]\n";

// A build context for the busybox base image: FROM scratch, Debian's static busybox, its applets installed.
inline void write_busybox_context(const std::filesystem::path& dir, std::string_view extra_dockerfile = {}) {
    std::filesystem::create_directories(dir);
    std::filesystem::copy_file("/bin/busybox", dir / "busybox", std::filesystem::copy_options::overwrite_existing);
    write_file(dir / "Dockerfile", std::string(busybox_dockerfile) + std::string(extra_dockerfile));
}

// Makes sure the engine has the base image (built from the context above through berth's own build).
template <berth::transport T>
asio::awaitable<void> ensure_base_image(berth::basic_client<T>& c) {
    if (co_await c.images().exists(base_image)) co_return;
    temp_dir ctx;
    write_busybox_context(ctx.path);
    berth::tar::packer packer(ctx.path, "");
    berth::build_options options;
    options.tag = base_image;
    co_await c.images().build(packer, options);
}

// A container of the base image running `tail -f /dev/null` with network mode none and an init, removed by the
// destructor of the guard (the test's own cleanup is what is being tested elsewhere).
template <berth::transport T>
asio::awaitable<std::string> start_idle_container(berth::basic_client<T>& c, const std::string& name) {
    co_await ensure_base_image(c);
    berth::container_config cfg;
    cfg.image = base_image;
    cfg.cmd = {"tail", "-f", "/dev/null"};
    cfg.host.network_mode = "none";
    cfg.host.init = true;
    auto created = co_await c.containers().create(cfg, name);
    co_await c.containers().start(created.id);
    co_return created.id;
}

// Removes a container by name at scope exit, whatever the test did.
struct container_guard {
    std::string address;
    std::string name;
    static asio::awaitable<void> remove(std::string address, std::string name) {
        auto c = berth::client::at(co_await asio::this_coro::executor, address);
        co_await c.containers().remove(name, {.force = true});
    }
    ~container_guard() {
        try {
            run_to_completion(remove(address, name));
        } catch (const std::exception&) {}
    }
};

// Removes what a test made, by name, at scope exit whatever the test did: `remove_one(client, name)` (a coroutine)
// for each name on a client of `address`; a name already gone is skipped.
template <class RemoveOne>
struct removal_guard {
    std::string address;
    std::vector<std::string> names;
    RemoveOne remove_one{};
    static asio::awaitable<void> remove(std::string address, std::vector<std::string> names, RemoveOne remove_one) {
        auto c = berth::client::at(co_await asio::this_coro::executor, address);
        for (auto& n : names) {
            try {
                co_await remove_one(c, n);
            } catch (const berth::error&) {}  // already gone
        }
    }
    ~removal_guard() {
        try {
            run_to_completion(remove(address, names, remove_one));
        } catch (const std::exception&) {}
    }
};

// This process's resident set from /proc/self/status, in KiB: "VmHWM:" (the peak) or "VmRSS:" (now).
inline long status_kib(std::string_view key) {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.starts_with(key)) return std::stol(line.substr(key.size()));
    return -1;
}
inline long peak_rss_kib() { return status_kib("VmHWM:"); }
inline long current_rss_kib() { return status_kib("VmRSS:"); }

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BERTH_TEST_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define BERTH_TEST_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define BERTH_TEST_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define BERTH_TEST_TSAN 1
#endif

// An RSS bound written for a plain build, scaled for the sanitizer the tests run under, so that a memory test
// still tells "flat" from "grows with the data" there instead of being skipped. ASan shadows every byte with 1/8
// more, pads blocks with redzones and keeps freed blocks in a quarantine (64 MiB in the test programs, set in
// tests/main.cpp); TSan shadows application memory several times over.
inline long rss_bound_kib(long plain_kib) {
#if defined(BERTH_TEST_TSAN)
    return plain_kib * 6 + 64 * 1024;
#elif defined(BERTH_TEST_ASAN)
    return plain_kib * 5 / 4 + 64 * 1024 + 128 * 1024;  // + quarantine + the allocator's own caches
#else
    return plain_kib;
#endif
}

}  // namespace berth_test
