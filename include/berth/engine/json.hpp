#pragma once
// Reading the engine's JSON: a reply that is not the JSON expected is a protocol_error naming the endpoint.
#include <berth/detail/outside_text.hpp>
#include <berth/http/error.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace berth::json_read {

namespace json = boost::json;

// Whether a protocol_error about a reply may quote it: not when the request carried credentials (the engine may
// echo them in any form).
enum class quoting { excerpt, none };

// The most JSON values one reply may hold: parsing costs up to ~50 bytes per value whatever the text's size, so a
// reply of a million "0," would take far more memory than its bytes. Generous for any real list.
inline constexpr std::size_t max_reply_values = std::size_t{1} << 21;

// An upper bound of the values in a JSON text (each one but the first follows a ',', ':', '[' or '{'), counted
// outside strings; cheap, so a reply is refused before it is parsed.
inline std::size_t count_values(std::string_view text) {
    std::size_t n = 1;
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == ',' || c == ':' || c == '[' || c == '{') {
            ++n;
        }
    }
    return n;
}

inline json::value parse(std::string_view text, const std::string& endpoint, quoting quote = quoting::excerpt,
                         std::size_t max_values = max_reply_values) {
    if (count_values(text) > max_values)
        throw protocol_error(protocol_errc::oversized, endpoint,
                             "reply holds more than " + std::to_string(max_values) + " JSON values");
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec) {
        std::string what = "reply is not valid JSON (" + ec.message() + ")";
        if (quote == quoting::excerpt) what += ": " + detail::quote_outside_text(text, 80);
        throw protocol_error(endpoint, what);
    }
    return v;
}

inline const json::object& as_object(const json::value& v, const std::string& endpoint) {
    if (!v.is_object()) throw protocol_error(endpoint, "expected a JSON object in the reply");
    return v.get_object();
}

inline const json::array& as_array(const json::value& v, const std::string& endpoint) {
    if (!v.is_array()) throw protocol_error(endpoint, "expected a JSON array in the reply");
    return v.get_array();
}

// A required string field.
inline std::string string_field(const json::object& o, std::string_view key, const std::string& endpoint) {
    auto* p = o.if_contains(key);
    if (p == nullptr || !p->is_string())
        throw protocol_error(endpoint, "reply lacks the string field '" + std::string(key) + "'");
    return std::string(p->get_string());
}

// Optional fields: the fallback when absent or null; a present field of the wrong type is a protocol_error.
inline std::string optional_string(const json::object& o, std::string_view key, const std::string& endpoint) {
    auto* p = o.if_contains(key);
    if (p == nullptr || p->is_null()) return {};
    if (!p->is_string()) throw protocol_error(endpoint, "field '" + std::string(key) + "' is not a string");
    return std::string(p->get_string());
}

// An integer field as T. A number that is not a whole number or does not fit T (ExitCode 1e400, a PID of 2^64) is
// a protocol_error: casting it would be undefined behaviour or a silently wrong value.
template <std::integral T>
T optional_int_as(const json::object& o, std::string_view key, const std::string& endpoint, T fallback = 0) {
    auto* p = o.if_contains(key);
    if (p == nullptr || p->is_null()) return fallback;
    auto out_of_range = [&] {
        return protocol_error(endpoint, "field '" + std::string(key) + "' is " + json::serialize(*p) +
                                            ", not an integer in the range expected");
    };
    if (p->is_int64()) {
        if (!std::in_range<T>(p->get_int64())) throw out_of_range();
        return static_cast<T>(p->get_int64());
    }
    if (p->is_uint64()) {
        if (!std::in_range<T>(p->get_uint64())) throw out_of_range();
        return static_cast<T>(p->get_uint64());
    }
    if (p->is_double()) {
        // Bounds as doubles: min() is a power of two (or 0) and max() + 1 one too, so both are exact.
        const double d = p->get_double();
        const double low = static_cast<double>(std::numeric_limits<T>::min());
        const double high = static_cast<double>(std::numeric_limits<T>::max()) + 1.0;
        if (!std::isfinite(d) || d != std::trunc(d) || d < low || d >= high) throw out_of_range();
        return static_cast<T>(d);
    }
    throw protocol_error(endpoint, "field '" + std::string(key) + "' is not a number");
}

inline std::int64_t optional_int(const json::object& o, std::string_view key, const std::string& endpoint,
                                 std::int64_t fallback = 0) {
    return optional_int_as<std::int64_t>(o, key, endpoint, fallback);
}

inline bool optional_bool(const json::object& o, std::string_view key, const std::string& endpoint,
                          bool fallback = false) {
    auto* p = o.if_contains(key);
    if (p == nullptr || p->is_null()) return fallback;
    if (!p->is_bool()) throw protocol_error(endpoint, "field '" + std::string(key) + "' is not a boolean");
    return p->get_bool();
}

inline const json::object* optional_object(const json::object& o, std::string_view key, const std::string& endpoint) {
    auto* p = o.if_contains(key);
    if (p == nullptr || p->is_null()) return nullptr;
    if (!p->is_object()) throw protocol_error(endpoint, "field '" + std::string(key) + "' is not an object");
    return &p->get_object();
}

inline std::vector<std::string> optional_strings(const json::object& o, std::string_view key,
                                                 const std::string& endpoint) {
    std::vector<std::string> out{};
    auto* p = o.if_contains(key);
    if (p == nullptr || p->is_null()) return out;
    if (!p->is_array()) throw protocol_error(endpoint, "field '" + std::string(key) + "' is not an array");
    for (auto& e : p->get_array()) {
        if (!e.is_string()) throw protocol_error(endpoint, "field '" + std::string(key) + "' holds a non-string");
        out.emplace_back(e.get_string());
    }
    return out;
}

inline std::map<std::string, std::string> optional_string_map(const json::object& o, std::string_view key,
                                                              const std::string& endpoint) {
    std::map<std::string, std::string> out{};
    if (auto* m = optional_object(o, key, endpoint))
        for (auto& [k, v] : *m)
            if (v.is_string()) out.emplace(std::string(k), std::string(v.get_string()));
    return out;
}

}  // namespace berth::json_read
