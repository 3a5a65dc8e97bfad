// libFuzzer target: the DOCKER_HOST parser (berth/transport/docker_host.hpp). Invariants: only invalid_host
// escapes; an accepted address prints (to_string) as an address that parses back to the same thing.
#include <berth/transport/docker_host.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

bool same(const berth::host_address& a, const berth::host_address& b) {
    return a.scheme == b.scheme && a.path == b.path && a.host == b.host && a.port == b.port && a.user == b.user;
}

[[noreturn]] void fail(const char* why, const std::string& printed) {
    std::fprintf(stderr, "docker_host_fuzz: %s: '%s'\n", why, printed.c_str());
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view spec(reinterpret_cast<const char*>(data), size);
    // The first byte also picks the default tcp port, as a TLS-enabled caller would pass docker_tls_port.
    const std::uint16_t default_port = size && data[0] % 2 ? berth::docker_tls_port : berth::docker_plain_port;
    berth::host_address a;
    try {
        a = berth::parse_docker_host(spec, default_port);
    } catch (const berth::invalid_host&) { return 0; }
    const std::string printed = a.to_string();
    try {
        if (!same(berth::parse_docker_host(printed, default_port), a))
            fail("printed address parses differently", printed);
    } catch (const berth::invalid_host&) { fail("printed address does not parse", printed); }
    return 0;
}
