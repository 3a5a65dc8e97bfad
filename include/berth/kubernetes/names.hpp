#pragma once
// The shapes of Kubernetes names (DNS-1123), checked before a name goes into a request path: a name the caller
// gave is bad input (invalid_argument_error), a name from a reply (a pod, a node, a container) is a protocol_error,
// so that '/', '..', CR/LF or a NUL from a hostile server can never reach a request line.
#include <berth/detail/outside_text.hpp>
#include <berth/error.hpp>
#include <berth/http/error.hpp>

#include <string>
#include <string_view>

namespace berth::kubernetes {

// A DNS-1123 label: 1 to 63 of [a-z0-9-], starting and ending with an alphanumeric (container names, namespaces).
inline bool is_dns1123_label(std::string_view s) {
    if (s.empty() || s.size() > 63) return false;
    auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (!alnum(s.front()) || !alnum(s.back())) return false;
    for (char c : s)
        if (!alnum(c) && c != '-') return false;
    return true;
}

// A DNS-1123 subdomain: up to 253 bytes of labels joined by '.' (pod and node names).
inline bool is_dns1123_subdomain(std::string_view s) {
    if (s.empty() || s.size() > 253) return false;
    for (std::size_t from = 0;;) {
        auto dot = s.find('.', from);
        if (!is_dns1123_label(s.substr(from, dot == std::string_view::npos ? s.npos : dot - from))) return false;
        if (dot == std::string_view::npos) return true;
        from = dot + 1;
    }
}

namespace detail {

enum class name_shape { label, subdomain };

inline bool has_shape(std::string_view s, name_shape shape) {
    return shape == name_shape::label ? is_dns1123_label(s) : is_dns1123_subdomain(s);
}
inline const char* shape_text(name_shape shape) {
    return shape == name_shape::label ? "a DNS-1123 label (a-z, 0-9, '-', at most 63)"
                                      : "a DNS-1123 subdomain (a-z, 0-9, '-', '.', at most 253)";
}

// A name the caller gave: `what` says which ("pod name", "namespace").
inline void check_name_argument(std::string_view name, name_shape shape, std::string_view what) {
    if (!has_shape(name, shape))
        throw invalid_argument_error("berth: the " + std::string(what) + " " + berth::detail::quote_outside_text(name) +
                                     " is not " + shape_text(shape));
}

// A name from a reply, before anything uses it.
inline void check_reply_name(std::string_view name, name_shape shape, std::string_view what,
                             const std::string& endpoint) {
    if (!has_shape(name, shape))
        throw protocol_error(endpoint, "the reply's " + std::string(what) + " " +
                                           berth::detail::quote_outside_text(name) + " is not " + shape_text(shape));
}

}  // namespace detail
}  // namespace berth::kubernetes
