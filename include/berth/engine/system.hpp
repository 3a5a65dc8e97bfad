#pragma once
// System endpoints: /_ping, /version, /info.
#include <berth/engine/client_core.hpp>

namespace berth {

template <transport Transport>
class system_api {
public:
    explicit system_api(client_core<Transport>& c) : client_(c) {}

    // True when the engine answers "OK" to /_ping (unversioned, so it works before negotiation).
    boost::asio::awaitable<bool> ping() {
        http::request req{.method = verb::get, .target = "/_ping"};  // named: g++ 12 mis-copies aggregate temporaries in co_await
        auto body = co_await client_.send_collect(std::move(req));
        co_return body == "OK";
    }

    boost::asio::awaitable<engine_version> version() { return client_.version(); }

    boost::asio::awaitable<json::object> info() {
        auto v = co_await client_.call_json(verb::get, "/info");
        co_return json_read::as_object(v, "GET /info");
    }

private:
    client_core<Transport>& client_;
};

} // namespace berth
