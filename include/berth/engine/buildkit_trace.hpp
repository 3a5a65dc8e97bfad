#pragma once
// BuildKit's progress as the engine relays it: {"id":"moby.buildkit.trace","aux":"<base64>"} where the payload is
// a protobuf moby.buildkit.v1.StatusResponse (moby/buildkit api/services/control/control.proto). Decoded by hand
// from the wire format (no protobuf dependency), only the fields berth shows; unknown fields are skipped, so newer
// engines that add fields still decode. A malformed payload is a buildkit::trace_error with the byte offset; every
// length is checked against what is left before it is used, so no input can read out of bounds, and what one
// message decodes to is bounded (trace_limits), so no input can take more memory than that.
#include <berth/http/error.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace berth::buildkit {

struct timestamp {  // google.protobuf.Timestamp
    std::int64_t seconds = 0;
    std::int32_t nanos = 0;
    friend bool operator==(const timestamp&, const timestamp&) = default;
};

struct vertex {                            // a step of the build graph
    std::string digest{};                  // 1: identifies the vertex in statuses and logs
    std::vector<std::string> inputs{};     // 2
    std::string name{};                    // 3: "[2/4] RUN make"
    bool cached = false;                   // 4
    std::optional<timestamp> started{};    // 5
    std::optional<timestamp> completed{};  // 6
    std::string error{};                   // 7: set when the vertex failed
};

struct vertex_status {                     // a transfer or sub-task within a vertex
    std::string id{};                      // 1
    std::string vertex{};                  // 2
    std::string name{};                    // 3
    std::int64_t current = 0;              // 4
    std::int64_t total = 0;                // 5
    std::optional<timestamp> time{};       // 6
    std::optional<timestamp> started{};    // 7
    std::optional<timestamp> completed{};  // 8
};

struct vertex_log {
    std::string vertex{};             // 1
    std::optional<timestamp> time{};  // 2
    std::int64_t stream = 0;          // 3: 1 stdout, 2 stderr
    std::string msg{};                // 4: bytes, not necessarily whole lines
};

struct vertex_warning {                 // BuildKit 0.10+ (Docker 23+)
    std::string vertex{};               // 1
    std::int64_t level = 0;             // 2
    std::string short_text{};           // 3
    std::vector<std::string> detail{};  // 4
    std::string url{};                  // 5
};

struct status_response {
    std::vector<vertex> vertexes{};          // 1
    std::vector<vertex_status> statuses{};   // 2
    std::vector<vertex_log> logs{};          // 3
    std::vector<vertex_warning> warnings{};  // 4
};

// code() is protocol_errc::malformed: the engine's stream carried a trace berth cannot decode.
class trace_error : public error {
public:
    trace_error(std::size_t offset, const std::string& what)
        : error(protocol_errc::malformed, "malformed BuildKit trace at byte " + std::to_string(offset) + ": " + what),
          offset_(offset) {}
    std::size_t offset() const noexcept { return offset_; }

private:
    std::size_t offset_;
};

// Bounds on one decoded StatusResponse: a few wire bytes can make an entry of a few hundred bytes in memory (an
// empty vertex is 2 bytes on the wire), so the line bound alone would let one 16 MiB line become gigabytes.
// Exceeding either is a trace_error.
struct trace_limits {
    std::size_t max_entries = 10000;                // vertexes, statuses, logs, warnings, inputs, details, together
    std::size_t max_bytes = std::size_t{32} << 20;  // what the decoded message takes: its entries and their text
};

namespace detail {

// What one message has cost so far, against the limits.
class trace_budget {
public:
    explicit trace_budget(const trace_limits& limits) : limits_(limits) {}
    // One more entry of `size` bytes, found at `offset`.
    void entry(std::size_t offset, std::size_t size) {
        if (++entries_ > limits_.max_entries)
            throw trace_error(offset, "more than " + std::to_string(limits_.max_entries) + " entries in one message");
        bytes(offset, size);
    }
    void bytes(std::size_t offset, std::size_t size) {
        bytes_ += size;
        if (bytes_ > limits_.max_bytes)
            throw trace_error(offset,
                              "one message decodes to more than " + std::to_string(limits_.max_bytes) + " bytes");
    }

private:
    trace_limits limits_;
    std::size_t entries_ = 0, bytes_ = 0;
};

// A cursor over one message's bytes; `base` is the message's offset in the whole payload, for error messages.
class wire_reader {
public:
    wire_reader(std::string_view bytes, std::size_t base, trace_budget& budget)
        : bytes_(bytes), base_(base), budget_(budget) {}

    trace_budget& budget() const { return budget_; }

    bool done() const { return pos_ == bytes_.size(); }
    std::size_t offset() const { return base_ + pos_; }

    std::uint64_t varint() {
        std::uint64_t value = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos_ == bytes_.size()) fail("truncated varint");
            auto byte = static_cast<std::uint8_t>(bytes_[pos_++]);
            if (shift == 63 && byte > 1) fail("varint overflows 64 bits");
            value |= std::uint64_t{byte & 0x7Fu} << shift;
            if ((byte & 0x80u) == 0) return value;
        }
        fail("varint longer than 10 bytes");
    }

    // The next field's number and wire type; throws on field number 0 and on the deprecated group types.
    std::pair<std::uint32_t, unsigned> tag() {
        auto key = varint();
        auto number = key >> 3;
        auto type = static_cast<unsigned>(key & 7u);
        if (number == 0 || number > 0x1FFFFFFFu) fail("invalid field number");
        if (type != 0 && type != 1 && type != 2 && type != 5) fail("unsupported wire type " + std::to_string(type));
        return {static_cast<std::uint32_t>(number), type};
    }

    // A length-delimited field's bytes (the length checked against what is left), and where they start.
    std::pair<std::string_view, std::size_t> delimited() {
        auto length = varint();
        if (length > bytes_.size() - pos_) fail("length " + std::to_string(length) + " runs past the end");
        auto start = pos_;
        pos_ += static_cast<std::size_t>(length);
        return {bytes_.substr(start, static_cast<std::size_t>(length)), base_ + start};
    }

    void skip(unsigned type) {
        switch (type) {
        case 0: varint(); return;
        case 1: advance(8); return;
        case 2: delimited(); return;
        case 5: advance(4); return;
        default: fail("unsupported wire type");
        }
    }

    // Checks the wire type a known field must have; a mismatch is malformed, not skipped.
    void expect(unsigned type, unsigned wanted) const {
        if (type != wanted)
            fail("field has wire type " + std::to_string(type) + ", expected " + std::to_string(wanted));
    }

    [[noreturn]] void fail(const std::string& what) const { throw trace_error(base_ + pos_, what); }

private:
    void advance(std::size_t n) {
        if (n > bytes_.size() - pos_) fail("fixed-size field runs past the end");
        pos_ += n;
    }
    std::string_view bytes_;
    std::size_t base_;
    trace_budget& budget_;
    std::size_t pos_ = 0;
};

// Calls on_field(reader, number, type) for each field of the message; on_field consumes the field or returns
// false to have it skipped.
template <class OnField>
void for_each_field(std::string_view bytes, std::size_t base, trace_budget& budget, OnField&& on_field) {
    wire_reader r(bytes, base, budget);
    while (!r.done()) {
        auto [number, type] = r.tag();
        if (!on_field(r, number, type)) r.skip(type);
    }
}

inline std::string string_field(wire_reader& r, unsigned type) {
    r.expect(type, 2);
    auto [bytes, base] = r.delimited();
    r.budget().bytes(base, bytes.size());
    return std::string(bytes);
}

// A repeated string field's next element: an entry of its own.
inline void append_string_field(std::vector<std::string>& to, wire_reader& r, unsigned type) {
    r.budget().entry(r.offset(), sizeof(std::string));
    to.push_back(string_field(r, type));
}

inline std::int64_t int_field(wire_reader& r, unsigned type) {
    r.expect(type, 0);
    return static_cast<std::int64_t>(r.varint());  // int64 is two's complement on the wire
}

inline timestamp timestamp_field(wire_reader& r, unsigned type) {
    r.expect(type, 2);
    auto [bytes, base] = r.delimited();
    timestamp t;
    for_each_field(bytes, base, r.budget(), [&](wire_reader& f, std::uint32_t number, unsigned t_type) {
        if (number == 1)
            t.seconds = int_field(f, t_type);
        else if (number == 2)
            t.nanos = static_cast<std::int32_t>(int_field(f, t_type));
        else
            return false;
        return true;
    });
    return t;
}

// Decodes the message in the next length-delimited field with decode_fields(message, reader, number, type) and
// appends it to `to` (an entry of the budget).
template <class Message, class DecodeField>
void append_message_field(std::vector<Message>& to, wire_reader& r, unsigned type, DecodeField decode_field) {
    r.expect(type, 2);
    r.budget().entry(r.offset(), sizeof(Message));
    auto [bytes, base] = r.delimited();
    Message m{};
    for_each_field(bytes, base, r.budget(),
                   [&](wire_reader& f, std::uint32_t number, unsigned t) { return decode_field(m, f, number, t); });
    to.push_back(std::move(m));
}

inline bool vertex_field(vertex& v, wire_reader& r, std::uint32_t number, unsigned type) {
    switch (number) {
    case 1: v.digest = string_field(r, type); return true;
    case 2: append_string_field(v.inputs, r, type); return true;
    case 3: v.name = string_field(r, type); return true;
    case 4: v.cached = int_field(r, type) != 0; return true;
    case 5: v.started = timestamp_field(r, type); return true;
    case 6: v.completed = timestamp_field(r, type); return true;
    case 7: v.error = string_field(r, type); return true;
    default: return false;
    }
}

inline bool status_field(vertex_status& s, wire_reader& r, std::uint32_t number, unsigned type) {
    switch (number) {
    case 1: s.id = string_field(r, type); return true;
    case 2: s.vertex = string_field(r, type); return true;
    case 3: s.name = string_field(r, type); return true;
    case 4: s.current = int_field(r, type); return true;
    case 5: s.total = int_field(r, type); return true;
    case 6: s.time = timestamp_field(r, type); return true;
    case 7: s.started = timestamp_field(r, type); return true;
    case 8: s.completed = timestamp_field(r, type); return true;
    default: return false;
    }
}

inline bool log_field(vertex_log& l, wire_reader& r, std::uint32_t number, unsigned type) {
    switch (number) {
    case 1: l.vertex = string_field(r, type); return true;
    case 2: l.time = timestamp_field(r, type); return true;
    case 3: l.stream = int_field(r, type); return true;
    case 4: l.msg = string_field(r, type); return true;
    default: return false;
    }
}

inline bool warning_field(vertex_warning& w, wire_reader& r, std::uint32_t number, unsigned type) {
    switch (number) {
    case 1: w.vertex = string_field(r, type); return true;
    case 2: w.level = int_field(r, type); return true;
    case 3: w.short_text = string_field(r, type); return true;
    case 4: append_string_field(w.detail, r, type); return true;
    case 5: w.url = string_field(r, type); return true;
    default: return false;
    }
}

}  // namespace detail

// Decodes one StatusResponse payload (the base64-decoded aux). Throws trace_error when it is malformed or exceeds
// the limits.
inline status_response decode_status_response(std::string_view payload, const trace_limits& limits = {}) {
    status_response out;
    detail::trace_budget budget(limits);
    budget.bytes(0, payload.size() > limits.max_bytes ? payload.size() : 0);  // refused before any decoding
    detail::for_each_field(payload, 0, budget, [&](detail::wire_reader& r, std::uint32_t number, unsigned type) {
        switch (number) {
        case 1: detail::append_message_field(out.vertexes, r, type, detail::vertex_field); return true;
        case 2: detail::append_message_field(out.statuses, r, type, detail::status_field); return true;
        case 3: detail::append_message_field(out.logs, r, type, detail::log_field); return true;
        case 4: detail::append_message_field(out.warnings, r, type, detail::warning_field); return true;
        default: return false;
        }
    });
    return out;
}

}  // namespace berth::buildkit
