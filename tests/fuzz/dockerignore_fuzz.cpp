// libFuzzer target: .dockerignore files and patterns (berth/tar/dockerignore.hpp). The input is a .dockerignore
// file, then a NUL, then paths (one a line) to match against it. Invariants: reading the file fails only with
// tar::error(bad_pattern); matching never throws, never reads out of bounds, and ends (backtracking is bounded).
#include <berth/tar/dockerignore.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const auto nul = in.find('\0');
    const std::string_view file = in.substr(0, nul);
    std::string_view paths = nul == std::string_view::npos ? std::string_view() : in.substr(nul + 1);
    berth::tar::dockerignore ignore;
    try {
        ignore = berth::tar::dockerignore::parse(file);
    } catch (const berth::tar::error& e) {
        if (e.code() != berth::tar::errc::bad_pattern) std::abort();
        return 0;
    }
    for (int budget = 64; !paths.empty() && budget > 0; --budget) {
        const auto nl = paths.find('\n');
        const std::string_view path = paths.substr(0, nl);
        paths = nl == std::string_view::npos ? std::string_view() : paths.substr(nl + 1);
        (void)ignore.excluded(path);
        (void)ignore.may_reinclude_under(path);
    }
    return 0;
}
