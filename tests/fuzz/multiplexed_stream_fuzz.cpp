// libFuzzer target: the multiplexed stdout/stderr decoder (berth/http/multiplexed_stream.hpp), fed in pseudo-random
// pieces. Invariants: only protocol_error escapes, and what it hands out (bytes and the stream of each) is exactly
// what a whole-input reference decoding of the same frames gives, up to the first bad header.
#include <berth/http/multiplexed_stream.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>

namespace {

struct decoded {
    std::string bytes, streams;  // payload bytes, and for each the stream number as a char
    bool bad_header = false;
    bool at_boundary = true;
};

// The framing written out plainly: an 8-byte header [stream 0..3, 0, 0, 0, size (big-endian)], then the payload.
decoded reference(std::span<const unsigned char> in) {
    decoded d;
    std::size_t pos = 0;
    while (pos < in.size()) {
        if (in.size() - pos < 8) {
            d.at_boundary = false;
            break;
        }
        const unsigned char* h = in.data() + pos;
        if (h[0] > 3 || h[1] || h[2] || h[3]) {
            d.bad_header = true;
            break;
        }
        const std::uint64_t size = (std::uint64_t{h[4]} << 24) | (h[5] << 16) | (h[6] << 8) | h[7];
        pos += 8;
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size, in.size() - pos));
        d.bytes.append(reinterpret_cast<const char*>(in.data() + pos), n);
        d.streams.append(n, static_cast<char>('0' + h[0]));
        pos += n;
        if (n < size) d.at_boundary = false;
    }
    return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const unsigned char> in(data, size);
    const decoded want = reference(in);
    decoded got;
    berth::demultiplexer demux;
    std::uint32_t x = 2166136261u ^ static_cast<std::uint32_t>(size);
    try {
        for (std::size_t pos = 0; pos < size;) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            const std::size_t n = std::min<std::size_t>(size - pos, 1 + x % ((x >> 8) % 2 ? 9 : 300));
            demux.feed({reinterpret_cast<const char*>(data) + pos, n});
            pos += n;
            while (auto chunk = demux.next()) {
                if (chunk->data.empty()) std::abort();  // an empty slice is no progress
                got.bytes.append(chunk->data.data(), chunk->data.size());
                got.streams.append(chunk->data.size(), static_cast<char>('0' + static_cast<int>(chunk->stream)));
            }
        }
        got.at_boundary = demux.at_frame_boundary();
    } catch (const berth::protocol_error&) { got.bad_header = true; }
    if (got.bad_header != want.bad_header || got.bytes != want.bytes || got.streams != want.streams ||
        (!want.bad_header && got.at_boundary != want.at_boundary)) {
        std::fprintf(stderr, "multiplexed_stream_fuzz: the decoder disagrees with the reference decoding\n");
        std::abort();
    }
    return 0;
}
