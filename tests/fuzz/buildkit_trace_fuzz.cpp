// libFuzzer target: the BuildKit trace decoder (moby.buildkit.trace StatusResponse payloads) and the JSON-lines
// progress reader. Invariants: the decoder lets only buildkit::trace_error escape, with an offset inside the input,
// and what it decodes is never larger than the input nor over its per-message limits (also run with small limits,
// which fuzzing-size inputs reach); the reader lets only protocol_error escape.
#include <berth/engine/buildkit_trace.hpp>
#include <berth/engine/json_progress.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

std::size_t decoded_bytes(const berth::buildkit::status_response& s) {
    std::size_t n = 0;
    for (auto& v : s.vertexes) {
        n += v.digest.size() + v.name.size() + v.error.size();
        for (auto& i : v.inputs) n += i.size();
    }
    for (auto& st : s.statuses) n += st.id.size() + st.vertex.size() + st.name.size();
    for (auto& l : s.logs) n += l.vertex.size() + l.msg.size();
    for (auto& w : s.warnings) {
        n += w.vertex.size() + w.short_text.size() + w.url.size();
        for (auto& d : w.detail) n += d.size();
    }
    return n;
}

std::size_t entries(const berth::buildkit::status_response& s) {
    std::size_t n = s.vertexes.size() + s.statuses.size() + s.logs.size() + s.warnings.size();
    for (auto& v : s.vertexes) n += v.inputs.size();
    for (auto& w : s.warnings) n += w.detail.size();
    return n;
}

// With the default limits and with small ones, so that inputs of fuzzing size reach the per-message bounds.
void decode(std::string_view input, const berth::buildkit::trace_limits& limits) {
    try {
        auto s = berth::buildkit::decode_status_response(input, limits);
        if (decoded_bytes(s) > input.size()) std::abort();
        if (entries(s) > limits.max_entries || decoded_bytes(s) > limits.max_bytes) std::abort();
    } catch (const berth::buildkit::trace_error& e) {
        if (e.offset() > input.size()) std::abort();
    }
}

// The same bytes as a progress stream, split where the first byte says, with a small line bound.
void read_lines(std::string_view input) {
    if (input.empty()) return;
    std::size_t split = static_cast<unsigned char>(input[0]) % (input.size());
    input.remove_prefix(1);
    split = std::min(split, input.size());
    berth::json_lines_splitter splitter(256);
    berth::progress_message m;
    auto on_line = [&](std::string_view line) { berth::parse_progress_message(line, "fuzz", m); };
    try {
        splitter.feed(input.substr(0, split), "fuzz", on_line);
        splitter.feed(input.substr(split), "fuzz", on_line);
        splitter.finish(on_line);
    } catch (const berth::protocol_error&) {}
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    decode(input, {});
    decode(input, berth::buildkit::trace_limits{.max_entries = 16, .max_bytes = 2048});
    read_lines(input);
    return 0;
}
