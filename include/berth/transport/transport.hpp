#pragma once
// The Transport concept: anything that hands out connected byte streams to an engine. basic_client<Transport> is
// written once against it, so the unix socket, TCP and the in-memory mock engine all run the same HTTP code.
#include <berth/transport/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>
#include <concepts>
#include <string>

namespace berth {

// Closed with an error_code (never throwing): the connection pool closes streams from destructors.
template <class T>
concept byte_stream = requires(T& s, boost::system::error_code& ec) {
    typename T::executor_type;
    { s.get_executor() } -> std::convertible_to<boost::asio::any_io_executor>;
    s.close(ec);
};

template <class T>
concept transport = std::move_constructible<T> && requires(T& t) {
    typename T::stream_type;
    requires byte_stream<typename T::stream_type>;
    { t.get_executor() } -> std::convertible_to<boost::asio::any_io_executor>;
    { t.connect() } -> std::same_as<boost::asio::awaitable<typename T::stream_type>>;
    // A short human-readable address ("unix:///run/docker.sock") for error messages.
    { t.describe() } -> std::convertible_to<std::string>;
};

}  // namespace berth
