#pragma once
// The two kinds of failure below the engine's own errors: a reply that is not the HTTP (or the JSON) the client
// expected (protocol_error), and a failed or timed-out connection (transport_error). Both name where they happened.
#include <boost/system/system_error.hpp>

#include <stdexcept>
#include <string>

namespace berth {

class protocol_error : public std::runtime_error {
public:
    protocol_error(std::string endpoint, const std::string& what)
        : std::runtime_error(endpoint.empty() ? what : endpoint + ": " + what), endpoint_(std::move(endpoint)) {}
    const std::string& endpoint() const noexcept { return endpoint_; }

private:
    std::string endpoint_;
};

// A boost::system::system_error (callers test its code(): connection_refused, timed_out, operation_aborted, ...)
// whose text is `context` (the engine, the request and the operation) and the code's message, e.g.
// "unix:///run/docker.sock: POST /v1.41/containers/create: connect: Connection refused". Boost's own what() would
// end with the source location inside Asio where the error code was made, which tells a user nothing; the code is
// kept without it.
class transport_error : public boost::system::system_error {
public:
    transport_error(const boost::system::error_code& ec, const std::string& context)
        : boost::system::system_error(boost::system::error_code(ec.value(), ec.category()), context),
          message_(context + ": " + ec.message()) {}
    const char* what() const noexcept override { return message_.c_str(); }

private:
    std::string message_;
};

} // namespace berth
