#pragma once
// Decoder for the engine's multiplexed stdout/stderr framing (exec/attach/logs without a tty): each frame is an
// 8-byte header [stream, 0, 0, 0, size (big-endian u32)] followed by size payload bytes. Sans-I/O: it is fed bytes
// and hands back slices of them, so it works with any read loop and never buffers a frame's payload.
#include <berth/http/error.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <span>

namespace berth {

enum class output_stream : std::uint8_t { stdin_ = 0, stdout_ = 1, stderr_ = 2, system_error = 3 };

struct output_chunk {
    output_stream stream;
    std::span<const char> data;
};

class demultiplexer {
public:
    // The bytes must stay valid until next() returns nullopt.
    void feed(std::span<const char> bytes) { input_ = bytes; }

    // The next payload slice, or nullopt when the fed bytes are used up. Throws protocol_error on a bad header.
    std::optional<output_chunk> next() {
        while (!input_.empty()) {
            if (remaining_ > 0) {
                auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, input_.size()));
                output_chunk c{stream_, input_.first(n)};
                input_ = input_.subspan(n);
                remaining_ -= n;
                return c;
            }
            auto n = std::min(header_.size() - header_fill_, input_.size());
            for (std::size_t i = 0; i < n; ++i) header_[header_fill_ + i] = static_cast<std::uint8_t>(input_[i]);
            header_fill_ += n;
            input_ = input_.subspan(n);
            if (header_fill_ < header_.size()) return std::nullopt;
            header_fill_ = 0;
            if (header_[0] > 3 || header_[1] != 0 || header_[2] != 0 || header_[3] != 0)
                throw protocol_error("", "malformed multiplexed stream header (stream byte " +
                                             std::to_string(header_[0]) + ")");
            stream_ = static_cast<output_stream>(header_[0]);
            remaining_ = (std::uint32_t{header_[4]} << 24) | (std::uint32_t{header_[5]} << 16) |
                         (std::uint32_t{header_[6]} << 8) | std::uint32_t{header_[7]};
        }
        return std::nullopt;
    }

    // True when the stream may end here: not inside a frame header or payload.
    bool at_frame_boundary() const { return header_fill_ == 0 && remaining_ == 0; }

private:
    std::span<const char> input_;
    std::array<std::uint8_t, 8> header_{};
    std::size_t header_fill_ = 0;
    std::uint64_t remaining_ = 0;
    output_stream stream_ = output_stream::stdout_;
};

}  // namespace berth
