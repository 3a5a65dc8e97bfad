#pragma once
// pods_api<Transport>: the Pods of one namespace (the client's, or the one an options struct names): create, get,
// list (selectors, pages), remove, remove_collection by label selector, logs (collected, bounded; or streamed),
// watch, and wait_for: a watch (not a poll) after a list, until the pod runs, finishes, fails or cannot be
// scheduled, with Kubernetes' own reason and message in the result.
#include <berth/detail/url.hpp>
#include <berth/engine/output_handler.hpp>
#include <berth/kubernetes/client_core.hpp>
#include <berth/kubernetes/pod.hpp>
#include <berth/kubernetes/pod_wait.hpp>
#include <berth/kubernetes/pod_spec.hpp>
#include <berth/kubernetes/watch.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace berth::kubernetes {

struct pod_create_options {
    std::string namespace_name{};  // empty: the client's
};

struct pod_get_options {
    std::string namespace_name{};
};

struct pod_list_options {
    std::string namespace_name{};
    std::string label_selector{};  // "berth-run=r1,app!=x"
    std::string field_selector{};  // "metadata.name=eval-1", "status.phase=Running"
    std::int64_t limit = 0;        // the most items in one page (0: the server's choice, all)
    std::string continue_token{};  // the previous page's continue_token
};

struct pod_list_all_options {
    pod_list_options list{};        // its limit is the page size (default 500)
    std::size_t max_items = 10000;  // more pods than this: protocol_error (oversized), nothing more is read
};

struct pod_delete_options {
    std::string namespace_name{};
    std::optional<std::int64_t> grace_period_seconds{};  // 0: at once; empty: the pod's own
    std::string propagation_policy{};                    // "", Foreground, Background, Orphan
};

struct pod_logs_options {
    std::string namespace_name{};
    std::string container{};  // empty: the pod's one container
    std::optional<std::int64_t> tail_lines{};
    std::optional<std::int64_t> since_seconds{};
    bool timestamps = false;
    // stream_logs only: until the container ends (no time limit: the caller asked to wait). Without it a log
    // streams within the request_timeout.
    bool follow = false;
    // logs(): the most bytes collected; also sent as limitBytes, so the server stops there. More is a
    // protocol_error (oversized).
    std::size_t max_bytes = std::size_t{16} << 20;
    output_callback on_output{};  // stream_logs: each slice as it arrives (as output_stream::stdout_)
};

template <transport Transport>
class pods_api {
public:
    explicit pods_api(kube_client_core<Transport>& core) : core_(core) {}

    // Kubernetes API: POST /api/v1/namespaces/{namespace}/pods. Never sent twice (a create whose reply was lost may
    // have happened: look for it by name or label).
    boost::asio::awaitable<pod> create(pod_spec spec) {
        pod_create_options options{};
        co_return co_await create(std::move(spec), std::move(options));
    }
    boost::asio::awaitable<pod> create(pod_spec spec, pod_create_options options) {
        auto body = json::serialize(pod_manifest(spec));
        auto path = collection(options.namespace_name);
        auto v = co_await core_.call_json(verb::post, path, std::move(body));
        co_return parse_pod(v, "POST " + path);
    }

    // Kubernetes API: GET /api/v1/namespaces/{namespace}/pods/{name}
    boost::asio::awaitable<pod> get(std::string name) {
        pod_get_options options{};
        co_return co_await get(std::move(name), std::move(options));
    }
    boost::asio::awaitable<pod> get(std::string name, pod_get_options options) {
        auto path = item(options.namespace_name, name);
        auto v = co_await core_.call_json(verb::get, path);
        co_return parse_pod(v, "GET " + path);
    }

    // Kubernetes API: GET /api/v1/namespaces/{namespace}/pods (one page)
    boost::asio::awaitable<pod_list> list() {
        pod_list_options options{};
        co_return co_await list(std::move(options));
    }
    boost::asio::awaitable<pod_list> list(pod_list_options options) {
        berth::detail::query q;
        q.add_if(!options.label_selector.empty(), "labelSelector", options.label_selector);
        q.add_if(!options.field_selector.empty(), "fieldSelector", options.field_selector);
        if (options.limit < 0) throw invalid_argument_error("berth: pod_list_options limit is negative");
        if (options.limit > 0) q.add_number("limit", options.limit);
        q.add_if(!options.continue_token.empty(), "continue", options.continue_token);
        auto path = collection(options.namespace_name) + q.str();
        auto v = co_await core_.call_json(verb::get, path);
        co_return parse_pod_list(v, "GET " + path);
    }

    // Every page of a list, up to max_items pods.
    boost::asio::awaitable<pod_list> list_all(pod_list_all_options options) {
        auto page_options = options.list;
        if (page_options.limit == 0) page_options.limit = 500;
        pod_list all;
        for (;;) {
            auto page = co_await list(page_options);
            if (all.items.size() + page.items.size() > options.max_items)
                throw protocol_error(protocol_errc::oversized, "GET " + collection(options.list.namespace_name),
                                     "more than " + std::to_string(options.max_items) + " pods");
            for (auto& p : page.items) all.items.push_back(std::move(p));
            all.resource_version = page.resource_version;
            if (page.continue_token.empty()) co_return all;
            page_options.continue_token = page.continue_token;
        }
    }

    // Kubernetes API: DELETE /api/v1/namespaces/{namespace}/pods/{name}
    boost::asio::awaitable<void> remove(std::string name) {
        pod_delete_options options{};
        co_await remove(std::move(name), std::move(options));
    }
    boost::asio::awaitable<void> remove(std::string name, pod_delete_options options) {
        auto path = item(options.namespace_name, name);
        co_await core_.call_json(verb::delete_, path, delete_body(options));
    }

    // Kubernetes API: DELETE /api/v1/namespaces/{namespace}/pods?labelSelector=... (deletecollection). An empty
    // selector is refused: it would remove every pod of the namespace. Returns the pods it removed.
    boost::asio::awaitable<pod_list> remove_collection(std::string label_selector) {
        pod_delete_options options{};
        co_return co_await remove_collection(std::move(label_selector), std::move(options));
    }
    boost::asio::awaitable<pod_list> remove_collection(std::string label_selector, pod_delete_options options) {
        if (label_selector.empty())
            throw invalid_argument_error("berth: remove_collection needs a label selector (an empty one names every "
                                         "pod of the namespace)");
        auto path = collection(options.namespace_name) +
                    berth::detail::query().add("labelSelector", label_selector).str();
        auto v = co_await core_.call_json(verb::delete_, path, delete_body(options));
        co_return parse_pod_list(v, "DELETE " + path);
    }

    // Kubernetes API: GET /api/v1/namespaces/{namespace}/pods/{name}/log. The whole log (not followed), at most
    // max_bytes of it, within the request_timeout.
    boost::asio::awaitable<std::string> logs(std::string name) {
        pod_logs_options options{};
        co_return co_await logs(std::move(name), std::move(options));
    }
    boost::asio::awaitable<std::string> logs(std::string name, pod_logs_options options) {
        if (options.follow) throw invalid_argument_error("berth: logs() collects; use stream_logs() to follow");
        auto req = logs_request(name, options, static_cast<std::int64_t>(options.max_bytes));
        auto limit = core_.options().request_timeout;
        if (limit.count() <= 0) co_return co_await collect(std::move(req), options.max_bytes);
        std::string what = core_.transport().describe() + ": GET " + core_.target(req.target) +
                           ": no complete reply within " + describe_duration(limit);
        co_return co_await with_timeout(collect(std::move(req), options.max_bytes), limit, std::move(what));
    }

    // The log as it comes, to options.on_output; with follow, until the container ends (no time limit).
    boost::asio::awaitable<void> stream_logs(std::string name, pod_logs_options options) {
        if (!options.on_output) throw invalid_argument_error("berth: stream_logs needs on_output");
        auto req = logs_request(name, options, 0);
        auto limit = core_.options().request_timeout;
        if (options.follow || limit.count() <= 0) co_return co_await relay_logs(std::move(req), options.on_output);
        std::string what = core_.transport().describe() + ": GET " + core_.target(req.target) +
                           ": no complete reply within " + describe_duration(limit);
        co_await with_timeout(relay_logs(std::move(req), options.on_output), limit, std::move(what));
    }

    // Kubernetes API: GET /api/v1/namespaces/{namespace}/pods?watch=1
    boost::asio::awaitable<pod_watch<Transport>> watch(pod_watch_options options) {
        berth::detail::query q;
        q.add("watch", "1");
        q.add_if(!options.label_selector.empty(), "labelSelector", options.label_selector);
        q.add_if(!options.field_selector.empty(), "fieldSelector", options.field_selector);
        q.add_if(!options.resource_version.empty(), "resourceVersion", options.resource_version);
        if (options.timeout_seconds) {
            if (*options.timeout_seconds <= 0)
                throw invalid_argument_error("berth: pod_watch_options timeout_seconds must be positive");
            q.add_number("timeoutSeconds", *options.timeout_seconds);
        }
        if (options.allow_bookmarks) q.add("allowWatchBookmarks", "true");
        http::request req{.method = verb::get, .target = collection(options.namespace_name) + q.str()};
        req.headers.emplace_back("Accept", "application/json");
        auto reply = co_await core_.open(std::move(req), options.idle_limit.count() > 0
                                                             ? std::optional(options.idle_limit)
                                                             : std::optional(std::chrono::steady_clock::duration{}));
        co_return pod_watch<Transport>(std::move(reply), options.idle_limit, options.max_line_bytes);
    }

    // Waits for the pod `name`: lists it (for its state and a resourceVersion), then watches it from there until a
    // state ends the wait (pod_wait_outcome); a watch that expires (410) lists again; past options.limit, a
    // kubernetes_error (timeout) saying where the pod was.
    boost::asio::awaitable<pod_wait_result> wait_for(std::string name, pod_wait_options options) {
        using clock = std::chrono::steady_clock;
        detail::check_name_argument(name, detail::name_shape::subdomain, "pod name");
        const bool limited = options.limit.count() > 0;
        const auto deadline = limited ? clock::now() + options.limit : clock::time_point::max();
        const std::string selector = "metadata.name=" + name;
        std::string last_phase = "not seen";
        auto timed_out = [&] {
            return kubernetes_error(kubernetes_errc::timeout, 0, "Timeout",
                                    "the pod " + name + " did not reach the state waited for within " +
                                        describe_duration(options.limit) + " (last phase: " + last_phase + ")",
                                    "watch " + collection(options.namespace_name) + "/" + name);
        };
        for (;;) {
            pod_list_options by_name{.namespace_name = options.namespace_name, .field_selector = selector};
            auto listed = co_await list(std::move(by_name));
            if (listed.items.empty())
                co_return pod_wait_result{.outcome = pod_wait_outcome::deleted,
                                          .current = {},
                                          .reason = "NotFound",
                                          .message = "there is no pod " + name};
            last_phase = listed.items.front().phase;
            if (auto r = detail::judge_pod(listed.items.front(), options)) co_return std::move(*r);
            std::string version = listed.resource_version;
            bool relist = false;
            int empty_watches = 0;  // in a row: a server that ends every watch at once is not asked in a tight loop
            while (!relist) {
                if (empty_watches > 0) {
                    const auto backoff = std::chrono::milliseconds(50 * (1 << std::min(empty_watches, 6)));
                    boost::asio::steady_timer pause(core_.get_executor(), backoff);
                    co_await pause.async_wait(boost::asio::use_awaitable);
                }
                const auto now = clock::now();
                if (now >= deadline) throw timed_out();
                const auto remaining = deadline - now;
                pod_watch_options w{.namespace_name = options.namespace_name,
                                    .field_selector = selector,
                                    .resource_version = version,
                                    .timeout_seconds = 300,
                                    .allow_bookmarks = true,
                                    .idle_limit = limited ? remaining : clock::duration::zero()};
                if (limited)
                    w.timeout_seconds = std::clamp<std::int64_t>(
                        std::chrono::duration_cast<std::chrono::seconds>(remaining).count() + 1, 1, 300);
                try {
                    auto stream = co_await watch(w);
                    for (;;) {
                        if (limited) {
                            if (clock::now() >= deadline) throw timed_out();
                            stream.set_idle_limit(deadline - clock::now());
                        }
                        auto event = co_await stream.next();
                        if (!event) {
                            ++empty_watches;
                            break;
                        }
                        empty_watches = 0;
                        if (!event->resource_version.empty()) version = event->resource_version;
                        if (event->type == watch_event::kind::bookmark) continue;
                        if (event->object.name != name) continue;
                        if (event->type == watch_event::kind::deleted)
                            co_return pod_wait_result{.outcome = pod_wait_outcome::deleted,
                                                      .current = std::move(event->object),
                                                      .reason = "Deleted",
                                                      .message = "the pod " + name + " was deleted"};
                        last_phase = event->object.phase;
                        if (auto r = detail::judge_pod(event->object, options)) co_return std::move(*r);
                    }
                } catch (const kubernetes_error& e) {
                    if (e.code() == kubernetes_errc::gone)
                        relist = true;
                    else if (e.code() == kubernetes_errc::timeout && e.status() == 0)
                        throw timed_out();
                    else
                        throw;
                } catch (const connection_error& e) {
                    // the watch's head did not come before the deadline (its head timeout is the time left)
                    if (e.code() == boost::asio::error::timed_out && limited && clock::now() >= deadline)
                        throw timed_out();
                    throw;
                }
            }
        }
    }
    boost::asio::awaitable<pod_wait_result> wait_for(std::string name) {
        pod_wait_options options{};
        co_return co_await wait_for(std::move(name), std::move(options));
    }

private:
    std::string namespace_of(const std::string& given) const {
        if (given.empty()) return core_.namespace_name();
        kube_client_core<Transport>::check_namespace(given);
        return given;
    }
    std::string collection(const std::string& ns) const { return "/api/v1/namespaces/" + namespace_of(ns) + "/pods"; }
    std::string item(const std::string& ns, const std::string& name) const {
        detail::check_name_argument(name, detail::name_shape::subdomain, "pod name");
        return collection(ns) + "/" + name;
    }

    static std::string delete_body(const pod_delete_options& o) {
        json::object body{{"kind", "DeleteOptions"}, {"apiVersion", "v1"}};
        if (o.grace_period_seconds) {
            if (*o.grace_period_seconds < 0)
                throw invalid_argument_error("berth: pod_delete_options grace_period_seconds is negative");
            body["gracePeriodSeconds"] = *o.grace_period_seconds;
        }
        if (!o.propagation_policy.empty()) {
            detail::check_one_of(o.propagation_policy, {"Foreground", "Background", "Orphan"}, "propagation_policy");
            body["propagationPolicy"] = o.propagation_policy;
        }
        return json::serialize(body);
    }

    http::request logs_request(const std::string& name, const pod_logs_options& o, std::int64_t limit_bytes) const {
        berth::detail::query q;
        if (!o.container.empty()) {
            detail::check_name_argument(o.container, detail::name_shape::label, "container name");
            q.add("container", o.container);
        }
        if (o.follow) q.add("follow", "true");
        if (o.tail_lines) q.add_number("tailLines", *o.tail_lines);
        if (o.since_seconds) q.add_number("sinceSeconds", *o.since_seconds);
        if (o.timestamps) q.add("timestamps", "true");
        if (limit_bytes > 0) q.add_number("limitBytes", limit_bytes);
        return http::request{.method = verb::get, .target = item(o.namespace_name, name) + "/log" + q.str()};
    }

    boost::asio::awaitable<void> relay_logs(http::request req, output_callback on_output) {
        auto reply = co_await core_.open(std::move(req));
        std::array<char, 16 * 1024> chunk;
        while (std::size_t n = co_await reply.read_some(chunk))
            on_output(output_stream::stdout_, std::string_view(chunk.data(), n));
    }

    boost::asio::awaitable<std::string> collect(http::request req, std::size_t max_bytes) {
        auto reply = co_await core_.open(std::move(req), std::chrono::steady_clock::duration::zero());
        co_return co_await reply.read_all(max_bytes);
    }

    kube_client_core<Transport>& core_;
};

}  // namespace berth::kubernetes
