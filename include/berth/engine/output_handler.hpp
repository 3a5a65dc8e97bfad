#pragma once
// How streamed output reaches the caller: an options struct's on_output, called with each slice as it arrives, and
// helpers that collect.
#include <berth/engine/error.hpp>
#include <berth/http/multiplexed_stream.hpp>

#include <array>
#include <concepts>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace berth {

// Where an operation's streamed output goes (the options' on_output): each slice, stdout or stderr, as it arrives.
using output_callback = std::function<void(output_stream, std::string_view)>;

template <class H>
concept output_handler = std::invocable<H&, output_stream, std::string_view>;

// stdout and stderr kept apart, and both merged in the order they arrived: `.on_output = std::ref(collected)`.
struct collected_output {
    std::string stdout_text{};
    std::string stderr_text{};
    std::string merged{};

    void operator()(output_stream s, std::string_view data) {
        (s == output_stream::stderr_ ? stderr_text : stdout_text).append(data);
        merged.append(data);
    }
};

namespace detail {
// Feeds bytes read from a stream to an output handler: demultiplexed, or all as stdout when the stream is a tty's.
template <output_handler Handler>
class output_dispatcher {
public:
    // endpoint: what a malformed stream is reported against ("POST /v1.41/exec/ID/start").
    output_dispatcher(Handler& handler, bool multiplexed, std::string endpoint = {})
        : handler_(handler), multiplexed_(multiplexed), endpoint_(std::move(endpoint)) {}
    void operator()(std::span<const char> bytes) {
        if (!multiplexed_) {
            if (!bytes.empty()) handler_(output_stream::stdout_, std::string_view(bytes.data(), bytes.size()));
            return;
        }
        demux_.feed(bytes);
        for (;;) {
            std::optional<output_chunk> c;
            try {
                c = demux_.next();
            } catch (const protocol_error& e) {  // the sans-I/O decoder does not know where its bytes came from
                throw protocol_error(endpoint_, e.what());
            }
            if (!c) break;
            // Stream 3 carries the engine's own error about the stream (Docker's stdcopy fails on it too).
            if (c->stream == output_stream::system_error)
                throw engine_error(engine_errc::server_error, 0, std::string(c->data.data(), c->data.size()),
                                   endpoint_);
            if (c->stream != output_stream::stdin_)
                handler_(c->stream, std::string_view(c->data.data(), c->data.size()));
        }
    }
    bool complete() const { return !multiplexed_ || demux_.at_frame_boundary(); }

private:
    Handler& handler_;
    bool multiplexed_;
    std::string endpoint_;
    demultiplexer demux_;
};
}  // namespace detail

}  // namespace berth
