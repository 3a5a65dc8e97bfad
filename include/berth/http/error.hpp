#pragma once
// A reply that is not the HTTP (or the JSON) the client expected: protocol_error, naming where it happened. (A
// failed or timed-out connection is a connection_error, <berth/transport/error.hpp>.)
#include <berth/error.hpp>
#include <berth/transport/error.hpp>

#include <boost/system/errc.hpp>

#include <string>
#include <type_traits>

namespace berth {

enum class protocol_errc {
    malformed = 1,  // not the HTTP, JSON or stream framing expected
    oversized,      // over a size limit berth keeps (a reply body, a line, a field)
    truncated,      // cut short: the stream ended inside a frame or before what it must name
};

namespace detail {

// Every protocol_errc is also the generic errc::protocol_error, so `code() == boost::system::errc::protocol_error`
// holds for all of them.
class protocol_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "berth.protocol"; }
    std::string message(int value) const override {
        switch (static_cast<protocol_errc>(value)) {
        case protocol_errc::malformed: return "malformed reply";
        case protocol_errc::oversized: return "reply over a size limit";
        case protocol_errc::truncated: return "reply cut short";
        }
        return "protocol error";
    }
    boost::system::error_condition default_error_condition(int) const noexcept override {
        return boost::system::errc::make_error_condition(boost::system::errc::protocol_error);
    }
};

}  // namespace detail

inline const boost::system::error_category& protocol_category() noexcept {
    static const detail::protocol_category_impl category;
    return category;
}
inline boost::system::error_code make_error_code(protocol_errc e) noexcept {
    return {static_cast<int>(e), protocol_category()};
}

}  // namespace berth

template <>
struct boost::system::is_error_code_enum<berth::protocol_errc> : std::true_type {};

namespace berth {

// code() is a protocol_errc (category "berth.protocol"); what() reads "<endpoint>: <what>".
class protocol_error : public error {
public:
    protocol_error(std::string endpoint, const std::string& what)
        : protocol_error(protocol_errc::malformed, std::move(endpoint), what) {}
    protocol_error(protocol_errc code, std::string endpoint, const std::string& what)
        : error(code, endpoint.empty() ? what : endpoint + ": " + what), endpoint_(std::move(endpoint)) {}
    const std::string& endpoint() const noexcept { return endpoint_; }

private:
    std::string endpoint_;
};

}  // namespace berth
