// libFuzzer target: the engine's JSON-lines progress reader (build, pull, push): json_lines_splitter and
// parse_progress_message, once without and once with a secret the request carried. Invariants: only
// protocol_error escapes; with the secret, no error text and no decoded error message contains it; every error
// text is bounded; an error message is bounded.
#include <berth/engine/json_progress.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <span>
#include <string_view>
#include <vector>

namespace {

const std::vector<std::string> secrets = {"hunter2secret"};

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "json_progress_fuzz: %s\n", what);
        std::abort();
    }
}

// The bytes as a stream split where the first byte says, with a small line bound.
void read_lines(std::string_view input, std::span<const std::string> carried) {
    if (input.empty()) return;
    std::size_t split = static_cast<unsigned char>(input[0]) % input.size();
    input.remove_prefix(1);
    split = std::min(split, input.size());
    berth::json_lines_splitter splitter(4096);
    berth::progress_message m;
    auto on_line = [&](std::string_view line) {
        berth::parse_progress_message(line, "fuzz", m, carried);
        check(m.error.size() <= berth::detail::engine_message_limit + 64, "an error message is not bounded");
        if (!carried.empty()) check(m.error.find(carried[0]) == std::string::npos, "a secret in an error message");
    };
    try {
        splitter.feed(input.substr(0, split), "fuzz", on_line);
        splitter.feed(input.substr(split), "fuzz", on_line);
        splitter.finish(on_line);
    } catch (const berth::protocol_error& e) {
        const std::string_view what = e.what();
        check(what.size() < 512, "an error text is not bounded");
        if (!carried.empty()) check(what.find(carried[0]) == std::string_view::npos, "a secret in an error text");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    read_lines(input, {});
    read_lines(input, secrets);
    return 0;
}
