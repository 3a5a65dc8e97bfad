#pragma once
// Containers: create, start, stop, kill, remove, inspect, list, wait, logs, stats.
#include <berth/detail/url.hpp>
#include <berth/engine/client_core.hpp>
#include <berth/engine/container_config.hpp>
#include <berth/engine/output_handler.hpp>

#include <boost/json/serialize.hpp>

namespace berth {

struct container_state {
    std::string status{};  // created, running, paused, restarting, removing, exited, dead
    bool running = false;
    int exit_code = 0;
    std::int64_t pid = 0;
    std::string error{};
};

struct container_info {  // GET /containers/{id}/json
    std::string id{};
    std::string name{};    // without the leading '/'
    std::string image{};   // image id
    container_state state;
    json::object raw{};
};

// The cgroup figures the engine reports for a running container (GET /containers/{id}/stats, one sample). All are
// the container's as a whole since it started, not one process's.
struct container_stats {
    std::uint64_t cpu_total_ns = 0;               // cpu_stats.cpu_usage.total_usage
    std::uint64_t memory_usage_bytes = 0;         // memory_stats.usage
    std::optional<std::uint64_t> memory_peak_bytes{};  // memory_stats.max_usage: Docker on cgroup v1 only
    std::optional<std::uint64_t> memory_limit_bytes{};
    std::optional<std::uint64_t> memory_failcnt{};     // times the memory limit was hit: Docker on cgroup v1 only
    json::object raw{};
};

struct container_summary {  // GET /containers/json
    std::string id{};
    std::vector<std::string> names{};
    std::string image{};
    std::string state{};
    std::string status{};
    std::map<std::string, std::string> labels{};
    json::object raw{};
};

struct created_container {
    std::string id{};
    std::vector<std::string> warnings{};
};

struct list_containers_options {
    bool all = false;
    // The engine's filters: {"name": {"^/app$"}}, {"label": {"k=v"}}, {"status": {"exited"}}, ...
    std::map<std::string, std::vector<std::string>> filters{};
};

struct logs_options {
    bool stdout_ = true;
    bool stderr_ = true;
    bool timestamps = false;
    std::string tail = "all";
    bool follow = false;
};

template <transport Transport>
class containers_api {
public:
    explicit containers_api(client_core<Transport>& c) : client_(c) {}

    boost::asio::awaitable<created_container> create(const container_config& config, std::string_view name = {}) {
        detail::query q;
        if (!name.empty()) q.add("name", name);
        std::string target = "/containers/create" + q.str();
        const auto kind = co_await client_.kind();
        json::value v;
        try {
            v = co_await client_.call_json(verb::post, target, json::serialize(json::value_from(config)));
        } catch (const engine_error& e) {
            // Podman reports a name in use as a 500; it is the same conflict Docker reports as 409.
            if (kind == engine_kind::podman && e.status() == 500 &&
                e.message().find("already in use") != std::string::npos)
                throw conflict_error(engine_errc::conflict, e.status(), e.message(), e.endpoint());
            throw;
        }
        const std::string endpoint = "POST " + target;
        auto& o = json_read::as_object(v, endpoint);
        co_return created_container{json_read::string_field(o, "Id", endpoint),
                                    json_read::optional_strings(o, "Warnings", endpoint)};
    }

    // Starting a running container is not an error (the engine answers 304).
    boost::asio::awaitable<void> start(std::string_view id) {
        co_await ignore_not_modified(verb::post, "/containers/" + detail::percent_encode(id) + "/start");
    }

    // SIGTERM (or the container's stop signal, or `signal` when given), then SIGKILL after timeout_seconds (the
    // container's own stop timeout when not given; -1 waits for the process however long it takes). Stopping a
    // stopped container is not an error. The request's time limit is the client's request_timeout plus the grace
    // period (10 s when not given: the engine's default), or none for -1. A signal needs Engine API 1.42.
    boost::asio::awaitable<void> stop(std::string_view id, std::optional<int> timeout_seconds = std::nullopt,
                                      std::string_view signal = {}) {
        detail::query q;
        if (timeout_seconds) q.add_number("t", *timeout_seconds);
        std::string target = "/containers/" + detail::percent_encode(id) + "/stop";
        if (!signal.empty()) {
            co_await client_.require_api("1.42", "stopping with a signal", "POST " + target);
            q.add("signal", signal);
        }
        time_limit limit;
        const int grace = timeout_seconds.value_or(default_stop_grace_seconds);
        if (grace < 0) limit.unlimited = true;
        else limit.extra = std::chrono::seconds(grace);
        co_await ignore_not_modified(verb::post, target + q.str(), limit);
    }

    boost::asio::awaitable<void> kill(std::string_view id, std::string_view signal = "SIGKILL") {
        co_await client_.call(verb::post, "/containers/" + detail::percent_encode(id) + "/kill" +
                                              detail::query().add("signal", signal).str());
    }

    boost::asio::awaitable<void> remove(std::string_view id, bool force = false, bool volumes = false) {
        co_await client_.call(verb::delete_, "/containers/" + detail::percent_encode(id) +
                                                 detail::query().add_flag("force", force).add_flag("v", volumes).str());
    }

    boost::asio::awaitable<container_info> inspect(std::string_view id) {
        std::string target = "/containers/" + detail::percent_encode(id) + "/json";
        auto v = co_await client_.call_json(verb::get, target);
        const std::string endpoint = "GET " + target;
        auto& o = json_read::as_object(v, endpoint);
        container_info info;
        info.id = json_read::string_field(o, "Id", endpoint);
        info.name = json_read::optional_string(o, "Name", endpoint);
        if (info.name.starts_with('/')) info.name.erase(0, 1);
        info.image = json_read::optional_string(o, "Image", endpoint);
        if (auto* s = json_read::optional_object(o, "State", endpoint)) {
            info.state.status = json_read::optional_string(*s, "Status", endpoint);
            info.state.running = json_read::optional_bool(*s, "Running", endpoint);
            info.state.exit_code = json_read::optional_int_as<int>(*s, "ExitCode", endpoint);
            info.state.pid = json_read::optional_int(*s, "Pid", endpoint);
            info.state.error = json_read::optional_string(*s, "Error", endpoint);
        }
        info.raw = o;
        co_return info;
    }

    boost::asio::awaitable<std::vector<container_summary>> list() { return list(list_containers_options{}); }
    boost::asio::awaitable<std::vector<container_summary>> list(list_containers_options options) {
        detail::query q;
        q.add_flag("all", options.all);
        if (!options.filters.empty()) {
            json::object f{};
            for (auto& [k, vals] : options.filters) f[k] = json::array(vals.begin(), vals.end());
            q.add("filters", json::serialize(f));
        }
        std::string target = "/containers/json" + q.str();
        auto v = co_await client_.call_json(verb::get, target);
        const std::string endpoint = "GET " + target;
        std::vector<container_summary> out{};
        for (auto& item : json_read::as_array(v, endpoint)) {
            auto& o = json_read::as_object(item, endpoint);
            container_summary s;
            s.id = json_read::string_field(o, "Id", endpoint);
            s.names = json_read::optional_strings(o, "Names", endpoint);
            for (auto& n : s.names)
                if (n.starts_with('/')) n.erase(0, 1);
            s.image = json_read::optional_string(o, "Image", endpoint);
            s.state = json_read::optional_string(o, "State", endpoint);
            s.status = json_read::optional_string(o, "Status", endpoint);
            s.labels = json_read::optional_string_map(o, "Labels", endpoint);
            s.raw = o;
            out.push_back(std::move(s));
        }
        co_return out;
    }

    // Blocks until the container reaches the condition ("not-running", "next-exit", "removed"); its exit code.
    // No time limit of its own (that is what the caller asked for): use with_timeout or a cancellation slot.
    boost::asio::awaitable<int> wait(std::string_view id, std::string_view condition = "not-running") {
        std::string target = "/containers/" + detail::percent_encode(id) + "/wait" +
                             detail::query().add("condition", condition).str();
        time_limit unlimited;
        unlimited.unlimited = true;
        auto v = co_await client_.call_json(verb::post, target, std::string(), unlimited);
        const std::string endpoint = "POST " + target;
        auto& o = json_read::as_object(v, endpoint);
        if (auto* e = json_read::optional_object(o, "Error", endpoint))
            if (auto msg = json_read::optional_string(*e, "Message", endpoint); !msg.empty())
                throw engine_error(engine_errc::server_error, 200, berth::detail::bounded_outside_text(msg), endpoint);
        co_return json_read::optional_int_as<int>(o, "StatusCode", endpoint, -1);
    }

    // One sample of the container's cgroup figures. Docker answers at its stats collector's next tick (it samples
    // once a second), so this takes up to a second there; Podman reads the cgroup at once.
    boost::asio::awaitable<container_stats> stats(std::string_view id) {
        std::string target = "/containers/" + detail::percent_encode(id) + "/stats" +
                             detail::query().add("stream", "false").add("one-shot", "true").str();
        auto v = co_await client_.call_json(verb::get, target);
        const std::string endpoint = "GET " + target;
        auto& o = json_read::as_object(v, endpoint);
        container_stats s;
        if (auto* cpu = json_read::optional_object(o, "cpu_stats", endpoint))
            if (auto* usage = json_read::optional_object(*cpu, "cpu_usage", endpoint))
                s.cpu_total_ns = json_read::optional_int_as<std::uint64_t>(*usage, "total_usage", endpoint);
        if (auto* mem = json_read::optional_object(o, "memory_stats", endpoint)) {
            s.memory_usage_bytes = json_read::optional_int_as<std::uint64_t>(*mem, "usage", endpoint);
            auto present = [&](std::string_view key) -> std::optional<std::uint64_t> {
                auto* p = mem->if_contains(key);
                if (p == nullptr || p->is_null()) return std::nullopt;
                return json_read::optional_int_as<std::uint64_t>(*mem, key, endpoint);
            };
            s.memory_peak_bytes = present("max_usage");
            s.memory_limit_bytes = present("limit");
            s.memory_failcnt = present("failcnt");
        }
        s.raw = o;
        co_return s;
    }

    // Streams the container's logs to the handler (stdout and stderr apart unless the container has a tty).
    template <output_handler Handler>
    boost::asio::awaitable<void> logs(std::string_view id, Handler& handler) {
        return logs(id, handler, logs_options{});
    }
    template <output_handler Handler>
    boost::asio::awaitable<void> logs(std::string_view id, Handler& handler, logs_options options) {
        auto info = co_await inspect(id);
        bool tty = false;
        if (auto* cfg = info.raw.if_contains("Config"); cfg && cfg->is_object())
            if (auto* t = cfg->get_object().if_contains("Tty"); t && t->is_bool()) tty = t->get_bool();
        std::string target = "/containers/" + detail::percent_encode(id) + "/logs" +
                             detail::query()
                                 .add_flag("stdout", options.stdout_)
                                 .add_flag("stderr", options.stderr_)
                                 .add_flag("timestamps", options.timestamps)
                                 .add_flag("follow", options.follow)
                                 .add("tail", options.tail)
                                 .str();
        http::request req{.method = verb::get, .target = target};  // named: g++ 12 mis-copies aggregate temporaries in co_await
        // Followed logs of a quiet container: Podman sends the reply head only with the first output.
        std::optional<std::chrono::steady_clock::duration> head_timeout{};
        if (options.follow) head_timeout = std::chrono::steady_clock::duration::zero();
        auto reply = co_await client_.open(std::move(req), static_cast<http::detail::no_body*>(nullptr), head_timeout);
        detail::output_dispatcher<std::remove_reference_t<Handler>> dispatch(handler, !tty, reply.endpoint());
        std::array<char, 16 * 1024> buffer;
        while (std::size_t n = co_await reply.read_some(buffer)) dispatch(std::span<const char>(buffer.data(), n));
        if (!dispatch.complete()) throw protocol_error(reply.endpoint(), "log stream ended inside a frame");
    }

private:
    static constexpr int default_stop_grace_seconds = 10;  // the engine's, for a container created without StopTimeout

    boost::asio::awaitable<void> ignore_not_modified(verb method, std::string target, time_limit limit = {}) {
        try {
            co_await client_.call(method, std::move(target), std::string(), limit);
        } catch (const engine_error& e) {
            if (e.code() != engine_errc::not_modified) throw;
        }
    }

    client_core<Transport>& client_;
};

} // namespace berth
