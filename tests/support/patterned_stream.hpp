#pragma once
// A large deterministic byte stream for stdin round trips (issue #18: 512 MiB through `cat`), never held in memory:
// the sender generates it chunk by chunk, and the receiver regenerates it from the same seed and compares what comes
// back position by position as it arrives. Shared by every transport's test (unix, TLS, ssh).
#include <berth/berth.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace berth_test {

// The stream: xorshift64 words, little-endian, in blocks of block_size bytes (the last one cut at `total`). Eight
// bytes per step keeps the generation cheap under ASan at -O0; blocks make the sender's chunks and the receiver's
// regeneration line up whatever sizes the output arrives in.
class byte_pattern {
public:
    static constexpr std::size_t block_size = 256 * 1024;

    explicit byte_pattern(std::uint64_t total, std::uint64_t seed = 0x9E3779B97F4A7C15ull)
        : total_(total), state_(seed) {}

    // The next block (empty at the end); valid until the next call.
    std::string_view next_block() {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(block_size, total_ - produced_));
        block_.resize(block_size);
        for (std::size_t i = 0; i < block_size; i += 8) {
            state_ ^= state_ << 13;
            state_ ^= state_ >> 7;
            state_ ^= state_ << 17;
            for (std::size_t b = 0; b < 8; ++b) block_[i + b] = static_cast<char>(state_ >> (8 * b));
        }
        produced_ += n;
        return std::string_view(block_.data(), n);
    }
    std::uint64_t total() const { return total_; }

private:
    std::uint64_t total_;
    std::uint64_t state_;
    std::uint64_t produced_ = 0;
    std::string block_{};
};

// What a process's stdin receives: the pattern, as a producer of chunks.
inline berth::stdin_source patterned_stdin(std::uint64_t total) {
    auto pattern = std::make_shared<byte_pattern>(total);
    return berth::stdin_source::chunks(
        [pattern]() -> boost::asio::awaitable<std::string> { co_return std::string(pattern->next_block()); });
}

// The receiving side, an output callback: stdout compared with the regenerated pattern as it arrives (the first
// differing offset kept), stderr kept up to a bound for the message of a failure.
class pattern_checker {
public:
    explicit pattern_checker(std::uint64_t total) : expected_(total) {}

    void operator()(berth::output_stream s, std::string_view bytes) {
        if (s == berth::output_stream::stderr_) {
            stderr_text_.append(bytes.substr(0, std::min(bytes.size(), max_stderr - stderr_text_.size())));
            return;
        }
        while (!bytes.empty()) {
            if (pending_.empty()) {
                pending_ = expected_.next_block();
                if (pending_.empty()) {  // more than the pattern: the first extra byte is the difference
                    if (!first_difference_) first_difference_ = received_;
                    received_ += bytes.size();
                    return;
                }
            }
            const auto n = std::min(bytes.size(), pending_.size());
            if (!first_difference_ && std::memcmp(bytes.data(), pending_.data(), n) != 0) {
                auto at = std::mismatch(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n),
                                        pending_.begin());
                first_difference_ = received_ + static_cast<std::uint64_t>(at.first - bytes.begin());
            }
            received_ += n;
            bytes.remove_prefix(n);
            pending_.remove_prefix(n);
        }
    }

    std::uint64_t received() const { return received_; }
    std::optional<std::uint64_t> first_difference() const { return first_difference_; }
    const std::string& stderr_text() const { return stderr_text_; }

private:
    static constexpr std::size_t max_stderr = 4096;
    byte_pattern expected_;
    std::string_view pending_{};
    std::uint64_t received_ = 0;
    std::optional<std::uint64_t> first_difference_{};
    std::string stderr_text_{};
};

inline constexpr std::uint64_t round_trip_bytes = std::uint64_t{512} << 20;

// `total` bytes of the pattern through `cat` in an exec of `container`, over the client's transport: every byte comes
// back in order, cat exits 0 after the half-close and writes nothing to stderr. A hang fails after `limit`. The
// wall time is printed (doctest MESSAGE) for the CI budget.
template <berth::transport T>
boost::asio::awaitable<void> cat_round_trip(berth::basic_client<T>& c, std::string container,
                                            std::uint64_t total = round_trip_bytes,
                                            std::chrono::seconds limit = std::chrono::seconds(1800)) {
    pattern_checker checker(total);
    berth::exec_options ex;
    ex.cmd = {"cat"};
    ex.stdin_ = patterned_stdin(total);
    ex.on_output = std::ref(checker);
    const auto began = std::chrono::steady_clock::now();
    const int code = co_await berth::with_timeout(c.execs().run(container, ex), limit);
    const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    MESSAGE("cat round trip of " << total << " bytes over " << c.transport().describe() << ": " << seconds << " s");
    CHECK(code == 0);
    CHECK(checker.received() == total);
    CHECK_MESSAGE(!checker.first_difference(), "first difference at offset " << checker.first_difference().value_or(0));
    CHECK(checker.stderr_text() == "");
}

}  // namespace berth_test
