#pragma once
// The one base of every exception berth throws on purpose. A boost::system::system_error, so code() says what
// happened: an enum of the layer that found it (engine_errc, tar::errc, tls_errc, ...: compare
// `e.code() == berth::engine_errc::not_found`), or the system's / Asio's own code for a connection failure
// (connection_refused, timed_out, operation_aborted). what() is berth's own text, without the source location
// Boost appends to a system_error's.
#include <boost/system/errc.hpp>
#include <boost/system/error_category.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
#include <string>
#include <system_error>
#include <utility>

namespace berth {

class error : public boost::system::system_error {
public:
    // The code is kept without a source location: it would name a line inside Asio, which tells a user nothing.
    error(const boost::system::error_code& code, std::string what)
        : boost::system::system_error(boost::system::error_code(code.value(), code.category()), what),
          what_(std::move(what)) {}
    const char* what() const noexcept override { return what_.c_str(); }

private:
    std::string what_;
};

// Bad input: an argument or option berth cannot use (a malformed command line, a container path that is not
// absolute, an option that contradicts another, a call out of order). code() is the generic errc::invalid_argument;
// invalid_host, invalid_reference and the like derive from it, so one catch takes every bad-input error.
class invalid_argument_error : public error {
public:
    explicit invalid_argument_error(std::string what)
        : error(boost::system::errc::make_error_code(boost::system::errc::invalid_argument), std::move(what)) {}

protected:
    // For a derived error whose code says more (cluster_errc::node_address).
    invalid_argument_error(const boost::system::error_code& code, std::string what) : error(code, std::move(what)) {}
};

// What a stored exception was, for failure values that keep one (build_failure::error, cleanup_report::error):
// its code (a berth::error's or any system_error's; empty for an exception without one) and its what(), so a
// caller branches on the code without std::rethrow_exception.
inline boost::system::error_code code_of(const std::exception_ptr& e) noexcept {
    if (!e) return {};
    try {
        std::rethrow_exception(e);
    } catch (const boost::system::system_error& x) { return x.code(); } catch (const std::system_error& x) {
        return boost::system::error_code(x.code());
    } catch (...) { return {}; }
}
inline std::string what_of(const std::exception_ptr& e) {
    if (!e) return {};
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) { return x.what(); } catch (...) {
        return "unknown error";
    }
}

namespace detail {

// What a refused request's error says, for engines and API servers alike: "POST /x -> 409: the server's message".
inline std::string reply_error_text(unsigned status, const std::string& message, const std::string& endpoint) {
    std::string s = endpoint;
    if (status != 0) s += " -> " + std::to_string(status);
    return s + ": " + message;
}

// The category of one layer's code enum: its name ("berth.<layer>") and the text of each value.
template <class Enum>
class errc_category final : public boost::system::error_category {
public:
    using describe_fn = const char* (*)(Enum) noexcept;
    errc_category(const char* name, describe_fn describe) noexcept : name_(name), describe_(describe) {}
    const char* name() const noexcept override { return name_; }
    std::string message(int value) const override { return describe_(static_cast<Enum>(value)); }

private:
    const char* name_;
    describe_fn describe_;
};

}  // namespace detail
}  // namespace berth
