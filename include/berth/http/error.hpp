#pragma once
// A reply that is not the HTTP (or the JSON) the client expected: named by the endpoint it came from.
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

} // namespace berth
