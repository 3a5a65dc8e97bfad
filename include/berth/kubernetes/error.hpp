#pragma once
// The Kubernetes layer's errors: kubernetes_errc (category "berth.kubernetes") for what the API server refused or
// reported (its Status object: code, reason, message), a watch that went quiet or expired, and a kubeconfig that
// cannot be used. Malformed or oversized replies stay protocol_errors, and failed connections connection_errors,
// as everywhere in berth.
#include <berth/error.hpp>

#include <boost/json/object.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>

namespace berth::kubernetes {

enum class kubernetes_errc {
    bad_request = 1,    // 400 BadRequest
    unauthorized,       // 401: no credentials, or ones the server does not accept
    forbidden,          // 403: authenticated, not allowed (RBAC, admission)
    not_found,          // 404 NotFound
    already_exists,     // 409 AlreadyExists: a create whose name is taken
    conflict,           // 409 Conflict: a write against an old resourceVersion
    gone,               // 410 Gone / Expired: a watch's or a list's resourceVersion is too old; list again
    invalid,            // 422 Invalid: the object failed validation (details name the fields)
    too_many_requests,  // 429: the server asks the client to slow down
    server_error,       // 5xx
    timeout,            // a watch that sent nothing within its idle limit, a wait that ran out, or 504
    unschedulable,      // the scheduler cannot place the pod (PodScheduled=False, reason Unschedulable)
    pod_failed,         // the pod failed (phase Failed, or a container that cannot start)
    bad_kubeconfig,     // a kubeconfig that cannot be read or used
    other,
    // An exec over v4.channel.k8s.io (Kubernetes before 1.29/1.30), which has no way to end the process's stdin
    // but closing the connection: the process kept running, silent, after all its stdin was sent (exec.hpp).
    stdin_not_closable,
};

inline const char* errc_message(kubernetes_errc e) noexcept {
    switch (e) {
    case kubernetes_errc::bad_request: return "the API server refused the request as malformed";
    case kubernetes_errc::unauthorized: return "the API server did not accept the credentials";
    case kubernetes_errc::forbidden: return "the API server forbade the request";
    case kubernetes_errc::not_found: return "not found";
    case kubernetes_errc::already_exists: return "already exists";
    case kubernetes_errc::conflict: return "conflict";
    case kubernetes_errc::gone: return "the resource version is too old (gone)";
    case kubernetes_errc::invalid: return "the object is invalid";
    case kubernetes_errc::too_many_requests: return "too many requests";
    case kubernetes_errc::server_error: return "the API server failed";
    case kubernetes_errc::timeout: return "timed out";
    case kubernetes_errc::unschedulable: return "the pod cannot be scheduled";
    case kubernetes_errc::pod_failed: return "the pod failed";
    case kubernetes_errc::bad_kubeconfig: return "unusable kubeconfig";
    case kubernetes_errc::other: return "the API server reported an error";
    case kubernetes_errc::stdin_not_closable: return "the exec's stdin cannot be closed on v4.channel.k8s.io";
    }
    return "kubernetes error";
}

namespace detail {
// timeout is also the generic errc::timed_out, so one check covers it and berth's other time limits.
class kubernetes_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "berth.kubernetes"; }
    std::string message(int value) const override { return errc_message(static_cast<kubernetes_errc>(value)); }
    boost::system::error_condition default_error_condition(int value) const noexcept override {
        if (static_cast<kubernetes_errc>(value) == kubernetes_errc::timeout)
            return boost::system::errc::make_error_condition(boost::system::errc::timed_out);
        return {value, *this};
    }
};
}  // namespace detail

inline const boost::system::error_category& kubernetes_category() noexcept {
    static const detail::kubernetes_category_impl category;
    return category;
}
inline boost::system::error_code make_error_code(kubernetes_errc e) noexcept {
    return {static_cast<int>(e), kubernetes_category()};
}

}  // namespace berth::kubernetes

template <>
struct boost::system::is_error_code_enum<berth::kubernetes::kubernetes_errc> : std::true_type {};

namespace berth::kubernetes {

// What the API server said (its Status object), or what berth found (a watch gone quiet, a pod that cannot be
// placed). status() is the HTTP status (0 when berth found it), reason() Kubernetes' own word ("NotFound",
// "Invalid", "Unschedulable", "Expired"), message() its text, endpoint() the request.
class kubernetes_error : public error {
public:
    kubernetes_error(kubernetes_errc code, unsigned status, std::string reason, std::string message,
                     std::string endpoint, boost::json::object details = {})
        : error(code, berth::detail::reply_error_text(status, message, endpoint)), status_(status),
          reason_(std::move(reason)), message_(std::move(message)), endpoint_(std::move(endpoint)),
          details_(std::move(details)) {}

    unsigned status() const noexcept { return status_; }
    const std::string& reason() const noexcept { return reason_; }
    const std::string& message() const noexcept { return message_; }
    const std::string& endpoint() const noexcept { return endpoint_; }
    // The Status object's details (name, kind, causes: the fields an Invalid object failed on), when it had any.
    const boost::json::object& details() const noexcept { return details_; }

private:
    unsigned status_;
    std::string reason_{};
    std::string message_{};
    std::string endpoint_{};
    boost::json::object details_{};
};

// A kubeconfig that cannot be read or used: file() and line() say where (line 0: the file as a whole).
class kubeconfig_error : public error {
public:
    kubeconfig_error(std::string file, std::size_t line, const std::string& what)
        : error(kubernetes_errc::bad_kubeconfig, "kubeconfig " + (file.empty() ? std::string("(text)") : file) +
                                                     (line ? ":" + std::to_string(line) : std::string()) + ": " + what),
          file_(std::move(file)), line_(line) {}
    const std::string& file() const noexcept { return file_; }
    std::size_t line() const noexcept { return line_; }

private:
    std::string file_;
    std::size_t line_;
};

// The code for an HTTP status and a Status reason.
inline kubernetes_errc kubernetes_errc_from(unsigned status, std::string_view reason) {
    if (reason == "AlreadyExists") return kubernetes_errc::already_exists;
    if (reason == "Expired" || reason == "Gone") return kubernetes_errc::gone;
    switch (status) {
    case 400: return kubernetes_errc::bad_request;
    case 401: return kubernetes_errc::unauthorized;
    case 403: return kubernetes_errc::forbidden;
    case 404: return kubernetes_errc::not_found;
    case 409: return kubernetes_errc::conflict;
    case 410: return kubernetes_errc::gone;
    case 422: return kubernetes_errc::invalid;
    case 429: return kubernetes_errc::too_many_requests;
    case 504: return kubernetes_errc::timeout;
    default: return status >= 500 ? kubernetes_errc::server_error : kubernetes_errc::other;
    }
}

}  // namespace berth::kubernetes
