#pragma once
// The channel protocols of pods/exec and pods/attach over WebSocket (Kubernetes' remotecommand), as pure functions
// on whole messages: exec.hpp does the I/O. Each binary message starts with one channel byte: 0 stdin, 1 stdout,
// 2 stderr, 3 error (v4: the exec's metav1.Status as JSON, the exit code in it), 4 resize (client to server: the
// terminal size as JSON). v5.channel.k8s.io (Kubernetes 1.29/1.30) adds channel 255, "close", whose one data byte
// names a channel the client will not write again: the process reads end-of-file on its stdin. v4.channel.k8s.io
// (Kubernetes 1.4 to now; all 1.20 speaks) has no such thing. v1 to v3 (channel.k8s.io, v2, v3) and the base64
// variants are refused: their error channel carries free text, not an exit code.
#include <berth/detail/outside_text.hpp>
#include <berth/http/error.hpp>
#include <berth/kubernetes/error.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <climits>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace berth::kubernetes {

enum class channel_protocol { v4, v5 };

inline constexpr std::string_view v4_channel_protocol = "v4.channel.k8s.io";
inline constexpr std::string_view v5_channel_protocol = "v5.channel.k8s.io";

inline std::string_view protocol_name(channel_protocol p) noexcept {
    return p == channel_protocol::v5 ? v5_channel_protocol : v4_channel_protocol;
}

enum class exec_channel : std::uint8_t {
    stdin_ = 0,
    stdout_ = 1,
    stderr_ = 2,
    error = 3,    // the exec's status (v4, v5: metav1.Status JSON)
    resize = 4,   // client to server: {"Width":W,"Height":H}
    close = 255,  // v5, client to server: the one data byte is the channel closed
};

// The largest status message kept (a metav1.Status is some hundred bytes; its message quotes the command).
inline constexpr std::size_t status_message_max = 64 * 1024;

// The Sec-WebSocket-Protocol offer, in the caller's order of preference: the server takes the first it speaks.
inline std::string protocol_offer(std::span<const channel_protocol> offered) {
    if (offered.empty()) throw invalid_argument_error("berth::kubernetes: no channel protocol offered");
    std::string out;
    for (auto p : offered) {
        if (!out.empty()) out += ", ";
        out += protocol_name(p);
    }
    return out;
}

// The server's answer to the offer (its Sec-WebSocket-Protocol header) as the protocol whose framing the stream
// uses. No answer (the server would fall back to channel.k8s.io, v1), an older protocol, or one not offered: a
// protocol_error.
inline channel_protocol negotiated_protocol(std::string_view answer, std::span<const channel_protocol> offered,
                                            const std::string& endpoint) {
    for (auto p : offered)
        if (answer == protocol_name(p)) return p;
    if (answer.empty())
        throw protocol_error(endpoint, "the server chose no channel protocol (it would speak channel.k8s.io, v1, "
                                       "which berth does not: it needs v4.channel.k8s.io or newer)");
    throw protocol_error(endpoint, "the server chose the channel protocol " +
                                       berth::detail::quote_outside_text(answer) +
                                       ", which was not offered (offered: " + protocol_offer(offered) + ")");
}

// One message the server sent: its channel and its data.
struct channel_frame {
    exec_channel channel = exec_channel::stdout_;
    std::string_view data{};
};

// Splits a server message. A server writes stdout, stderr and the status only (an empty message on one of them
// says the stream is open); a message without a channel byte, or on stdin, resize, close or a channel no protocol
// has, is a protocol_error.
inline channel_frame decode_server_message(std::string_view message, const std::string& endpoint) {
    if (message.empty()) throw protocol_error(endpoint, "an exec stream message without a channel byte");
    const auto channel = static_cast<std::uint8_t>(message.front());
    if (channel < static_cast<std::uint8_t>(exec_channel::stdout_) ||
        channel > static_cast<std::uint8_t>(exec_channel::error))
        throw protocol_error(endpoint, "an exec stream message on channel " + std::to_string(channel) +
                                           ", which a server does not write (1 stdout, 2 stderr, 3 status)");
    return {static_cast<exec_channel>(channel), message.substr(1)};
}

// A client message: the channel byte, then the data. (exec.hpp sends stdin as two buffers, not through here.)
inline std::string encode_client_message(exec_channel channel, std::string_view data) {
    std::string out;
    out.reserve(data.size() + 1);
    out += static_cast<char>(channel);
    out += data;
    return out;
}

// v5's "this channel is closed" (for stdin: the process reads end-of-file). v4 has no such message: asking for it
// there is a bug in the caller, an invalid_argument_error.
inline std::string encode_close(channel_protocol protocol, exec_channel closed) {
    if (protocol != channel_protocol::v5)
        throw invalid_argument_error("berth::kubernetes: " + std::string(protocol_name(protocol)) +
                                     " cannot close a channel (v5.channel.k8s.io can)");
    const char data = static_cast<char>(closed);
    return encode_client_message(exec_channel::close, std::string_view(&data, 1));
}

// The terminal size (tty execs) as the resize channel's message.
inline std::string encode_resize(unsigned width, unsigned height) {
    return encode_client_message(exec_channel::resize,
                                 "{\"Width\":" + std::to_string(width) + ",\"Height\":" + std::to_string(height) + "}");
}

namespace detail {

inline const boost::json::value* member(const boost::json::value& v, std::string_view key) {
    auto* o = v.if_object();
    return o ? o->if_contains(key) : nullptr;
}

inline std::string_view string_member(const boost::json::value& v, std::string_view key) {
    auto* m = member(v, key);
    auto* s = m ? m->if_string() : nullptr;
    return s ? std::string_view(*s) : std::string_view();
}

// "3" -> 3: decimal digits only (no sign, space or leading zero), 1 to INT_MAX; anything else is nullopt.
inline std::optional<int> exit_code_text(std::string_view text) {
    if (text.empty() || text.size() > 10 || text.front() == '0') return std::nullopt;
    long long value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < 1 || value > INT_MAX) return std::nullopt;
    return static_cast<int>(value);
}

}  // namespace detail

// The exit code the status message (channel 3, v4 and v5) reports: 0 for {"status":"Success"}; N for
// {"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"N"}]}}.
// Any other Failure (the command could not be started, the container is gone) is a kubernetes_error with the
// Status's code, reason and message. Text that is not such a Status, or is larger than status_message_max, is a
// protocol_error.
inline int exit_code_from_status(std::string_view text, const std::string& endpoint) {
    if (text.size() > status_message_max)
        throw protocol_error(protocol_errc::oversized, endpoint,
                             "the exec's status message has " + std::to_string(text.size()) + " bytes (at most " +
                                 std::to_string(status_message_max) + ")");
    auto malformed = [&](const std::string& why) {
        return protocol_error(endpoint, "the exec's status message " + berth::detail::quote_outside_text(text) +
                                            " is not a usable metav1.Status: " + why);
    };
    boost::system::error_code ec;
    boost::json::parse_options limits;
    limits.max_depth = 16;
    auto status = boost::json::parse(text, ec, {}, limits);
    if (ec) throw malformed(ec.message());
    if (!status.is_object()) throw malformed("not a JSON object");
    const auto outcome = detail::string_member(status, "status");
    if (outcome == "Success") return 0;
    if (outcome != "Failure") throw malformed("its status is neither Success nor Failure");
    const std::string reason = berth::detail::bounded_outside_text(detail::string_member(status, "reason"), 256);
    if (reason == "NonZeroExitCode") {
        const auto* details = detail::member(status, "details");
        const auto* causes = details ? detail::member(*details, "causes") : nullptr;
        if (causes && causes->is_array())
            for (const auto& cause : causes->get_array())
                if (detail::string_member(cause, "reason") == "ExitCode") {
                    if (auto code = detail::exit_code_text(detail::string_member(cause, "message"))) return *code;
                    throw malformed("its ExitCode cause is not a number from 1 to " + std::to_string(INT_MAX));
                }
        throw malformed("NonZeroExitCode without an ExitCode cause");
    }
    unsigned code = 0;
    if (const auto* c = detail::member(status, "code");
        c && c->is_int64() && c->get_int64() >= 100 && c->get_int64() <= 599)
        code = static_cast<unsigned>(c->get_int64());
    const auto message = berth::detail::bounded_outside_text(detail::string_member(status, "message"));
    throw kubernetes_error(code ? kubernetes_errc_from(code, reason) : kubernetes_errc::other, code, reason,
                           "the exec failed: " + (message.empty() ? std::string("(no message)") : message), endpoint);
}

}  // namespace berth::kubernetes
