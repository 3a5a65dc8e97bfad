#pragma once
// Errors the engine itself reported: the HTTP status, the engine's own message, and the endpoint that answered.
// Catch engine_error for all of them, or one of the derived types for the cases callers act on; code() is an
// engine_errc (category "berth.engine").
#include <berth/error.hpp>

#include <string>
#include <string_view>
#include <type_traits>

namespace berth {

enum class engine_errc {
    bad_request = 1,          // 400: invalid parameters or configuration
    unauthorized,             // 401/403
    not_found,                // 404: no such container, image, exec or path
    not_acceptable,           // 406: e.g. the container is not running
    conflict,                 // 409: name in use, container running, ...
    not_modified,             // 304: already started/stopped (reported only where the caller asked for it)
    server_error,             // 500 and other 5xx
    build_failed,             // an error message inside a build's progress stream
    unsupported_api_version,  // the engine and berth share no Engine API version, or a feature needs a newer one
    other,
};

inline const char* errc_message(engine_errc e) noexcept {
    switch (e) {
    case engine_errc::bad_request: return "the engine refused the request as invalid";
    case engine_errc::unauthorized: return "the engine refused the request as unauthorized";
    case engine_errc::not_found: return "not found";
    case engine_errc::not_acceptable: return "not acceptable in the object's state";
    case engine_errc::conflict: return "conflict";
    case engine_errc::not_modified: return "not modified";
    case engine_errc::server_error: return "the engine failed";
    case engine_errc::build_failed: return "the build failed";
    case engine_errc::unsupported_api_version: return "no Engine API version in common";
    case engine_errc::other: return "the engine reported an error";
    }
    return "engine error";
}

inline const boost::system::error_category& engine_category() noexcept {
    static const detail::errc_category<engine_errc> category("berth.engine", errc_message);
    return category;
}
inline boost::system::error_code make_error_code(engine_errc e) noexcept {
    return {static_cast<int>(e), engine_category()};
}

}  // namespace berth

template <>
struct boost::system::is_error_code_enum<berth::engine_errc> : std::true_type {};

namespace berth {

inline engine_errc engine_errc_from_status(unsigned status) {
    switch (status) {
    case 304: return engine_errc::not_modified;
    case 400: return engine_errc::bad_request;
    case 401:
    case 403: return engine_errc::unauthorized;
    case 404: return engine_errc::not_found;
    case 406: return engine_errc::not_acceptable;
    case 409: return engine_errc::conflict;
    default: return status >= 500 ? engine_errc::server_error : engine_errc::other;
    }
}

class engine_error : public error {
public:
    engine_error(unsigned status, std::string message, std::string endpoint)
        : engine_error(engine_errc_from_status(status), status, std::move(message), std::move(endpoint)) {}
    // code: an engine_errc, or a more specific layer's (registry_errc for a registry_error).
    engine_error(const boost::system::error_code& code, unsigned status, std::string message, std::string endpoint)
        : error(code, detail::reply_error_text(status, message, endpoint)), status_(status),
          message_(std::move(message)), endpoint_(std::move(endpoint)) {}

    unsigned status() const noexcept { return status_; }
    // The engine's message as it sent it (the JSON "message" field, or the raw body).
    const std::string& message() const noexcept { return message_; }
    const std::string& endpoint() const noexcept { return endpoint_; }

private:
    unsigned status_;
    std::string message_{};
    std::string endpoint_{};
};

struct not_found_error : engine_error {
    using engine_error::engine_error;
};
struct conflict_error : engine_error {
    using engine_error::engine_error;
};
// No Engine API version both berth and the engine speak (the engine is too old, or its minimum is above berth's
// newest), a pinned version the engine refuses, or a feature the negotiated version lacks. Status 0 when berth
// found it out from /version before sending anything; 400 when the engine refused the version itself.
struct unsupported_api_version_error : engine_error {
    unsupported_api_version_error(unsigned status, std::string message, std::string endpoint)
        : engine_error(engine_errc::unsupported_api_version, status, std::move(message), std::move(endpoint)) {}
};

// Docker's answer to a request at a version it does not speak: "client version 1.41 is too old. Minimum supported
// API version is 1.44, ..." or "client version 1.56 is too new. Maximum supported API version is 1.41".
inline bool is_api_version_refusal(unsigned status, std::string_view message) {
    return status == 400 && message.starts_with("client version ") &&
           (message.find(" is too old") != std::string_view::npos ||
            message.find(" is too new") != std::string_view::npos);
}

// Throws the most specific engine_error type for a status.
[[noreturn]] inline void throw_engine_error(unsigned status, std::string message, std::string endpoint) {
    if (is_api_version_refusal(status, message))
        throw unsupported_api_version_error(status, std::move(message), std::move(endpoint));
    switch (engine_errc_from_status(status)) {
    case engine_errc::not_found: throw not_found_error(status, std::move(message), std::move(endpoint));
    case engine_errc::conflict: throw conflict_error(status, std::move(message), std::move(endpoint));
    default: throw engine_error(status, std::move(message), std::move(endpoint));
    }
}

}  // namespace berth
