#pragma once
// Containers: create, start, stop, restart, kill, pause, unpause, rename, update, resize, remove, inspect, list,
// changes, prune, wait, logs, stats, export (the filesystem as a tar, to a callback or a file), attach (hijacked or
// over a websocket, with stdin).
#include <berth/detail/api_timestamp.hpp>
#include <berth/detail/detach_keys.hpp>
#include <berth/detail/url.hpp>
#include <berth/engine/archive.hpp>
#include <berth/engine/client_core.hpp>
#include <berth/engine/container_config.hpp>
#include <berth/engine/container_config_checks.hpp>
#include <berth/engine/json_progress.hpp>
#include <berth/engine/output_handler.hpp>
#include <berth/http/hijack.hpp>

#include <berth/http/file_body.hpp>

#include <boost/json/serialize.hpp>

#include <array>
#include <chrono>
#include <deque>
#include <filesystem>

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
    std::string name{};   // without the leading '/'
    std::string image{};  // image id
    container_state state;
    std::map<std::string, std::string> labels{};  // Config.Labels
    // NetworkSettings.Networks: each network the container is attached to, with its IPAddress (may be empty).
    std::map<std::string, std::string> network_addresses{};
    json::object raw{};
};

struct container_processes {                            // GET /containers/{id}/top
    std::vector<std::string> titles{};                  // Titles: the columns ("PID", "CMD", ...)
    std::vector<std::vector<std::string>> processes{};  // Processes: one row per process, in the columns' order
};

// The cgroup figures the engine reports for a running container (GET /containers/{id}/stats, one sample). All are
// the container's as a whole since it started, not one process's; the last group is what `docker stats` shows,
// computed as the docker CLI computes it (cli/command/container/stats_helpers.go).
struct container_stats {
    std::uint64_t cpu_total_ns = 0;                    // cpu_stats.cpu_usage.total_usage
    std::uint64_t memory_usage_bytes = 0;              // memory_stats.usage (the page cache included)
    std::optional<std::uint64_t> memory_peak_bytes{};  // memory_stats.max_usage: Docker on cgroup v1 only
    std::optional<std::uint64_t> memory_limit_bytes{};
    std::optional<std::uint64_t> memory_failcnt{};  // times the memory limit was hit: Docker on cgroup v1 only
    // When the engine took the sample ("read"); nothing when it gave no time (Docker's empty sample of a stopped
    // container says 0001-01-01).
    std::optional<std::chrono::system_clock::time_point> read{};

    std::uint64_t system_cpu_ns = 0;      // cpu_stats.system_cpu_usage: the host's CPU time
    std::uint64_t online_cpus = 0;        // cpu_stats.online_cpus, else the length of cpu_usage.percpu_usage
    std::uint64_t pre_cpu_total_ns = 0;   // precpu_stats.cpu_usage.total_usage: the sample before this one
    std::uint64_t pre_system_cpu_ns = 0;  // precpu_stats.system_cpu_usage
    // CPU % (100 per CPU): (cpu delta / system delta) * online CPUs * 100 against the previous sample
    // (precpu_stats); 0 when there is none (a one-shot sample, the first of a stream) or nothing changed.
    double cpu_percent = 0;
    // Memory in use without the inactive page cache: usage - total_inactive_file (cgroup v1), usage -
    // inactive_file (cgroup v2), usage when neither is below it.
    std::uint64_t memory_used_bytes = 0;
    double memory_percent = 0;            // memory_used_bytes / memory_limit_bytes * 100; 0 without a limit
    std::uint64_t network_rx_bytes = 0;   // networks.*.rx_bytes, summed over the interfaces
    std::uint64_t network_tx_bytes = 0;   // networks.*.tx_bytes
    std::uint64_t block_read_bytes = 0;   // blkio_stats.io_service_bytes_recursive, op "Read" ("read"), summed
    std::uint64_t block_write_bytes = 0;  // ... op "Write" ("write")
    std::uint64_t pids = 0;               // pids_stats.current
    json::object raw{};
};

struct container_stats_options {
    // one-shot (API 1.41+): answer at once, without waiting for a second sample. The sample then has no
    // previous one, so cpu_percent is 0 on Docker; false waits for Docker's next tick (up to about 2 s) and gives
    // a CPU % as `docker stats --no-stream` shows it.
    bool one_shot = true;
};

// One line of a container's logs (container_logs::lines).
struct container_log_line {
    output_stream stream = output_stream::stdout_;
    // With options.timestamps: the engine's time of the line (its prefix, taken off text).
    std::optional<std::chrono::system_clock::time_point> timestamp{};
    std::string text{};  // without its newline
};

// What logs() collected (when no on_output was given): stdout and stderr apart, as the engine sent them
// (timestamps included), and line by line in the order they came.
struct container_logs {
    std::string stdout_text{};
    std::string stderr_text{};
    std::vector<container_log_line> lines{};
    std::size_t bytes_dropped = 0;  // beyond options.max_collected_bytes
};

namespace detail {
// An RFC 3339 time as the engines write it ("2026-12-07T03:50:00.123456789Z", or with a +hh:mm offset); nothing
// when it is not one or lies before 1970 (Go's zero time).
inline std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view t) {
    auto number = [&](std::size_t pos, std::size_t len) -> std::optional<int> {
        if (pos + len > t.size()) return std::nullopt;
        int v = 0;
        for (std::size_t i = pos; i < pos + len; ++i) {
            if (t[i] < '0' || t[i] > '9') return std::nullopt;
            v = v * 10 + (t[i] - '0');
        }
        return v;
    };
    auto y = number(0, 4), mo = number(5, 2), d = number(8, 2), h = number(11, 2), mi = number(14, 2),
         s = number(17, 2);
    if (!y || !mo || !d || !h || !mi || !s || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't') ||
        t[13] != ':' || t[16] != ':' || *y < 1970)
        return std::nullopt;
    const std::chrono::year_month_day date{std::chrono::year(*y), std::chrono::month(static_cast<unsigned>(*mo)),
                                           std::chrono::day(static_cast<unsigned>(*d))};
    if (!date.ok() || *h > 23 || *mi > 59 || *s > 60) return std::nullopt;
    std::chrono::nanoseconds fraction{};
    std::size_t pos = 19;
    if (pos < t.size() && t[pos] == '.') {
        long long ns = 0, scale = 100000000;
        for (++pos; pos < t.size() && t[pos] >= '0' && t[pos] <= '9'; ++pos, scale /= 10)
            if (scale > 0) ns += (t[pos] - '0') * scale;
        fraction = std::chrono::nanoseconds(ns);
    }
    std::chrono::minutes offset{};
    if (pos < t.size() && (t[pos] == 'Z' || t[pos] == 'z')) {
        ++pos;
    } else if (pos < t.size() && (t[pos] == '+' || t[pos] == '-')) {
        auto oh = number(pos + 1, 2), om = number(pos + 4, 2);
        if (!oh || !om || pos + 3 >= t.size() || t[pos + 3] != ':') return std::nullopt;
        offset = std::chrono::minutes((*oh * 60 + *om) * (t[pos] == '-' ? -1 : 1));
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != t.size()) return std::nullopt;
    auto local = std::chrono::sys_days(date) + std::chrono::hours(*h) + std::chrono::minutes(*mi) +
                 std::chrono::seconds(*s) + fraction;
    return std::chrono::time_point_cast<std::chrono::system_clock::duration>(local - offset);
}

// One stats sample (a one-shot reply, or one line of a stream).
inline container_stats parse_container_stats(const json::value& v, const std::string& endpoint) {
    using json_read::optional_int_as;
    using json_read::optional_object;
    auto& o = json_read::as_object(v, endpoint);
    container_stats s;
    auto array_of = [&](const json::object& in, std::string_view key) -> const json::array* {
        auto* p = in.if_contains(key);
        if (p == nullptr || p->is_null()) return nullptr;
        if (!p->is_array()) throw protocol_error(endpoint, "field '" + std::string(key) + "' is not an array");
        return &p->get_array();
    };
    if (auto* cpu = optional_object(o, "cpu_stats", endpoint)) {
        if (auto* usage = optional_object(*cpu, "cpu_usage", endpoint)) {
            s.cpu_total_ns = optional_int_as<std::uint64_t>(*usage, "total_usage", endpoint);
            if (auto* per_cpu = array_of(*usage, "percpu_usage")) s.online_cpus = per_cpu->size();
        }
        s.system_cpu_ns = optional_int_as<std::uint64_t>(*cpu, "system_cpu_usage", endpoint);
        if (auto n = optional_int_as<std::uint64_t>(*cpu, "online_cpus", endpoint); n != 0) s.online_cpus = n;
    }
    if (auto* pre = optional_object(o, "precpu_stats", endpoint)) {
        if (auto* usage = optional_object(*pre, "cpu_usage", endpoint))
            s.pre_cpu_total_ns = optional_int_as<std::uint64_t>(*usage, "total_usage", endpoint);
        s.pre_system_cpu_ns = optional_int_as<std::uint64_t>(*pre, "system_cpu_usage", endpoint);
    }
    // As doubles, as the CLI: a counter that went back (a restarted container) gives a negative delta, so 0.
    const double cpu_delta = static_cast<double>(s.cpu_total_ns) - static_cast<double>(s.pre_cpu_total_ns);
    const double system_delta = static_cast<double>(s.system_cpu_ns) - static_cast<double>(s.pre_system_cpu_ns);
    if (cpu_delta > 0 && system_delta > 0)
        s.cpu_percent = cpu_delta / system_delta * static_cast<double>(s.online_cpus) * 100.0;
    if (auto* mem = optional_object(o, "memory_stats", endpoint)) {
        s.memory_usage_bytes = optional_int_as<std::uint64_t>(*mem, "usage", endpoint);
        auto present = [&](const json::object& in, std::string_view key) -> std::optional<std::uint64_t> {
            auto* p = in.if_contains(key);
            if (p == nullptr || p->is_null()) return std::nullopt;
            return optional_int_as<std::uint64_t>(in, key, endpoint);
        };
        s.memory_peak_bytes = present(*mem, "max_usage");
        s.memory_limit_bytes = present(*mem, "limit");
        s.memory_failcnt = present(*mem, "failcnt");
        s.memory_used_bytes = s.memory_usage_bytes;
        if (auto* figures = optional_object(*mem, "stats", endpoint)) {
            auto v1 = present(*figures, "total_inactive_file");
            auto v2 = present(*figures, "inactive_file");
            if (v1 && *v1 < s.memory_usage_bytes)
                s.memory_used_bytes = s.memory_usage_bytes - *v1;
            else if (v2.value_or(0) < s.memory_usage_bytes)
                s.memory_used_bytes = s.memory_usage_bytes - v2.value_or(0);
        }
        if (s.memory_limit_bytes.value_or(0) != 0)
            s.memory_percent = static_cast<double>(s.memory_used_bytes) / static_cast<double>(*s.memory_limit_bytes) *
                               100.0;
    }
    if (auto* networks = optional_object(o, "networks", endpoint))
        for (auto& [name, value] : *networks) {
            auto& n = json_read::as_object(value, endpoint);
            s.network_rx_bytes += optional_int_as<std::uint64_t>(n, "rx_bytes", endpoint);
            s.network_tx_bytes += optional_int_as<std::uint64_t>(n, "tx_bytes", endpoint);
        }
    if (auto* blkio = optional_object(o, "blkio_stats", endpoint))
        if (auto* entries = array_of(*blkio, "io_service_bytes_recursive"))
            for (auto& entry : *entries) {
                auto& e = json_read::as_object(entry, endpoint);
                auto op = json_read::optional_string(e, "op", endpoint);
                auto value = optional_int_as<std::uint64_t>(e, "value", endpoint);
                if (op.starts_with('r') || op.starts_with('R')) s.block_read_bytes += value;
                if (op.starts_with('w') || op.starts_with('W')) s.block_write_bytes += value;
            }
    if (auto* pids = optional_object(o, "pids_stats", endpoint))
        s.pids = optional_int_as<std::uint64_t>(*pids, "current", endpoint);
    s.read = parse_rfc3339(json_read::optional_string(o, "read", endpoint));
    s.raw = o;
    return s;
}

// Collects logs() output: each stream's text, and its lines (a line may come in several slices), with the
// timestamp prefix taken off when the engine was asked for one. Bounded: what is over the limit is counted.
class log_collector {
public:
    log_collector(bool timestamps, std::size_t limit) : timestamps_(timestamps), limit_(limit) {}
    void operator()(output_stream s, std::string_view data) {
        if (kept_ + data.size() > limit_) {
            auto room = limit_ - kept_;
            out_.bytes_dropped += data.size() - room;
            data = data.substr(0, room);
        }
        kept_ += data.size();
        const bool err = s == output_stream::stderr_;
        (err ? out_.stderr_text : out_.stdout_text).append(data);
        auto& pending = err ? pending_err_ : pending_out_;
        while (!data.empty()) {
            auto nl = data.find('\n');
            pending.append(data.substr(0, nl));
            if (nl == std::string_view::npos) break;
            line(s, pending);
            pending.clear();
            data.remove_prefix(nl + 1);
        }
    }
    container_logs finish() {
        if (!pending_out_.empty()) line(output_stream::stdout_, pending_out_);
        if (!pending_err_.empty()) line(output_stream::stderr_, pending_err_);
        return std::move(out_);
    }

private:
    void line(output_stream s, std::string_view text) {
        container_log_line l{.stream = s};
        if (timestamps_) {
            auto space = text.find(' ');
            if (auto t = parse_rfc3339(text.substr(0, space))) {
                l.timestamp = t;
                text = space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);
            }
        }
        if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
        l.text = std::string(text);
        out_.lines.push_back(std::move(l));
    }
    bool timestamps_;
    std::size_t limit_;
    std::size_t kept_ = 0;
    std::string pending_out_{}, pending_err_{};
    container_logs out_{};
};

// One stats line holds a few KiB and a few hundred values: these bounds keep a broken engine from growing one.
inline constexpr std::size_t max_stats_line_bytes = std::size_t{1} << 20;
inline constexpr std::size_t max_stats_values = 20000;

}  // namespace detail

// A container's stats as the engine streams them (GET /containers/{id}/stats?stream=true, one sample a second):
// next() gives each sample as it comes, nothing once the engine ended the stream. Lines are bounded
// (detail::max_stats_line_bytes, detail::max_stats_values): a broken engine cannot grow one.
template <class Reply>
class container_stats_stream {
public:
    explicit container_stats_stream(Reply reply) : reply_(std::move(reply)), endpoint_(reply_.endpoint()) {}

    boost::asio::awaitable<std::optional<container_stats>> next() {
        for (;;) {
            if (!samples_.empty()) {
                auto s = std::move(samples_.front());
                samples_.pop_front();
                co_return s;
            }
            if (ended_) co_return std::nullopt;
            const std::size_t n = co_await reply_.read_some(buffer_);
            if (n == 0) {
                ended_ = true;
                lines_.finish([this](std::string_view line) { take(line); });
                continue;
            }
            lines_.feed(std::string_view(buffer_.data(), n), endpoint_, [this](std::string_view line) { take(line); });
        }
    }
    const std::string& endpoint() const noexcept { return endpoint_; }

private:
    void take(std::string_view line) {
        auto v = json_read::parse(line, endpoint_, json_read::quoting::excerpt, detail::max_stats_values);
        samples_.push_back(detail::parse_container_stats(v, endpoint_));
    }
    Reply reply_;
    std::string endpoint_;
    json_lines_splitter lines_{detail::max_stats_line_bytes};
    std::deque<container_stats> samples_{};
    std::array<char, 16 * 1024> buffer_{};
    bool ended_ = false;
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

struct container_list_options {
    bool all = false;
    // The engine's filters: {"name": {"^/app$"}}, {"label": {"k=v"}}, {"status": {"exited"}}, ...
    std::map<std::string, std::vector<std::string>> filters{};
};

struct container_logs_options {
    bool stdout_ = true;       // stdout: the container's stdout
    bool stderr_ = true;       // stderr: the container's stderr
    bool timestamps = false;   // timestamps: each line begins with its RFC 3339 time (nanoseconds) and a space
    std::string tail = "all";  // tail: the last N lines only ("all": every line)
    bool follow = false;       // follow: keep the stream open for new output until the container exits
    // Each slice of the logs as it arrives; empty: collected into the container_logs logs() returns instead.
    output_callback on_output{};
    std::optional<std::chrono::system_clock::time_point> since{};  // since: only lines written at or after
    std::optional<std::chrono::system_clock::time_point> until{};  // until: only lines written before
    // What logs() collects (without on_output) is bounded: bytes beyond this are counted, not kept.
    std::size_t max_collected_bytes = std::size_t{16} << 20;
};


// POST /containers/{id}/attach and GET /containers/{id}/attach/ws: the container's stdio, both ways.
struct container_attach_options {
    bool stream = true;     // stream: the output from now on, until the container exits (or stdin is closed)
    bool logs = false;      // logs: the output so far first
    bool stdout_ = true;    // stdout
    bool stderr_ = true;    // stderr
    stdin_source stdin_{};  // stdin: sent to the container's stdin (it must have been created with OpenStdin)
    // detachKeys: the key sequence that detaches (the engine's default "ctrl-p,ctrl-q" when empty): comma-separated
    // single characters and ctrl-<a-z@[\]^_>; anything else is an invalid_argument_error before any request. Once
    // the engine reads it on stdin it ends the stream (attach() returns) and the container keeps running. Docker
    // applies it only with a tty; Podman also without one, but only to keys that each arrive in a read of their
    // own, as typed at a terminal (docs/engine-api.md).
    std::string detach_keys{};
    output_callback on_output{};  // each slice of output as it arrives (all stdout on a tty, and on a websocket)
};

struct container_stop_options {
    // t: seconds between the stop signal and SIGKILL; not set: the container's own stop timeout (10 s unless it
    // was created with StopTimeout); -1 waits for the process however long it takes.
    std::optional<int> timeout{};
    std::string signal{};  // sent instead of the container's stop signal (SIGTERM unless set); needs Engine API 1.42
};

// POST /containers/{id}/restart takes the same two parameters as the stop, with the same meaning (the restart is a
// stop with them, then a start): one definition, so that they cannot drift apart.
using container_restart_options = container_stop_options;

// GET /containers/{id}/changes: what changed in the container's filesystem against its image.
enum class filesystem_change_kind {
    modified = 0,  // Kind 0 ("C")
    added = 1,     // Kind 1 ("A")
    deleted = 2,   // Kind 2 ("D")
};

struct filesystem_change {
    std::string path{};  // Path
    filesystem_change_kind kind = filesystem_change_kind::modified;
};

struct container_prune_options {
    // The engine's filters: {"until": {"24h"}}, {"label": {"k=v"}}, {"label!": {"k"}}.
    std::map<std::string, std::vector<std::string>> filters{};
};

struct container_prune_result {                     // POST /containers/prune
    std::vector<std::string> containers_deleted{};  // ContainersDeleted: the ids removed
    std::uint64_t space_reclaimed = 0;              // SpaceReclaimed: bytes
};

// POST /containers/{id}/update: only the fields set are sent; the engine keeps the others as they are.
struct container_update_options {
    std::optional<std::int64_t> memory{};                   // Memory: bytes
    std::optional<std::int64_t> memory_swap{};              // MemorySwap: memory + swap, bytes; -1 unlimited swap
    std::optional<std::int64_t> memory_reservation{};       // MemoryReservation: the soft limit, bytes
    std::optional<std::int64_t> cpu_shares{};               // CpuShares: relative weight
    std::optional<std::int64_t> nano_cpus{};                // NanoCpus: 1e9 = one CPU
    std::optional<std::int64_t> cpu_quota{};                // CpuQuota: microseconds per cpu_period
    std::optional<std::int64_t> cpu_period{};               // CpuPeriod: microseconds
    std::optional<std::string> cpuset_cpus{};               // CpusetCpus: "0-3", "0,1"
    std::optional<std::int64_t> pids_limit{};               // PidsLimit: 0 or -1 unlimited
    std::optional<berth::restart_policy> restart_policy{};  // RestartPolicy
    // Any other field of the request body (Resources' BlkioWeight, Ulimits, ...), as the API names it. A field also
    // set above is the typed one's: the typed value wins.
    json::object extra{};
};

struct container_remove_options {
    bool force = false;    // remove a running container too (killed first)
    bool volumes = false;  // v: also remove its anonymous volumes
};

namespace detail {
// An update's values under the rules a create's have (container_config_checks.hpp).
inline void validate_update(const container_update_options& o) {
    for (auto* v : {&o.memory, &o.memory_reservation, &o.cpu_shares, &o.nano_cpus, &o.cpu_quota, &o.cpu_period})
        if (*v && **v < 0 && !(v == &o.cpu_quota && **v == -1))
            refuse_config("a negative memory or CPU limit", "update");
    if (o.memory_swap && *o.memory_swap < -1) refuse_config("memory_swap is -1 (unlimited) or a size", "update");
    if (o.restart_policy) validate_restart_policy(*o.restart_policy, "update");
}

// Adds the engine's filters to a query: {"label": {"k=v"}} -> filters={"label":["k=v"]}; nothing when there are
// none.
inline query& add_filters(query& q, const std::map<std::string, std::vector<std::string>>& filters) {
    if (!filters.empty()) {
        json::object f{};
        for (auto& [k, vals] : filters) f[k] = json::array(vals.begin(), vals.end());
        q.add("filters", json::serialize(f));
    }
    return q;
}
}  // namespace detail

template <transport Transport>
class containers_api {
public:
    explicit containers_api(client_core<Transport>& c) : client_(c) {}

    // Engine API: POST /containers/create
    // Before anything is sent: obviously bad values are an invalid_argument_error, and a field newer than the
    // engine's API version (or the container-wide MacAddress from 1.52 on) an unsupported_api_version_error.
    boost::asio::awaitable<created_container> create(const container_config& config, std::string_view name = {}) {
        detail::query q;
        if (!name.empty()) q.add("name", name);
        if (!config.platform.empty()) q.add("platform", config.platform);
        std::string target = "/containers/create" + q.str();
        detail::validate_container_config(config);
        for (auto& gate : detail::container_config_gates(config))
            co_await client_.require_api(gate.version, std::move(gate.feature), "POST " + target);
        if (!config.mac_address.empty()) {
            const auto current = co_await client_.api_version();
            const auto removed_in = detail::container_mac_address_removed_in;
            if (!detail::api_version_less(current, removed_in))
                throw unsupported_api_version_error(0,
                                                    "the container-wide MacAddress was removed in Engine API " +
                                                        std::string(removed_in) +
                                                        " (set an endpoint's mac_address), and this engine is "
                                                        "spoken to at " +
                                                        current,
                                                    "POST " + target);
        }
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
    // Engine API: POST /containers/{id}/start
    boost::asio::awaitable<void> start(std::string_view id) {
        co_await ignore_not_modified(verb::post, "/containers/" + detail::percent_encode(id) + "/start");
    }

    // SIGTERM (or the container's stop signal, or options.signal when given), then SIGKILL after options.timeout
    // seconds (the container's own stop timeout when not given; -1 waits for the process however long it takes).
    // Stopping a stopped container is not an error. The request's time limit is the client's request_timeout plus
    // the grace period (10 s when not given: the engine's default), or none for -1. A signal needs Engine API 1.42.
    // (Overloads, not a defaulted argument: g++ 12 double-destroys a defaulted options temporary in a co_await.)
    // Engine API: POST /containers/{id}/stop
    boost::asio::awaitable<void> stop(std::string_view id) { return stop(id, container_stop_options{}); }
    boost::asio::awaitable<void> stop(std::string_view id, container_stop_options options) {
        std::string target = "/containers/" + detail::percent_encode(id) + "/stop";
        auto q = co_await stop_query(options, "stopping with a signal", target);
        co_await ignore_not_modified(verb::post, target + q.str(), stop_time_limit(options));
    }

    // Stops the container as stop() does (options.timeout, options.signal: the same meaning and the same API 1.42
    // gate for the signal), then starts it; a stopped container is just started. The request's time limit is the
    // client's request_timeout plus the grace period (none for -1).
    // Engine API: POST /containers/{id}/restart
    boost::asio::awaitable<void> restart(std::string_view id) { return restart(id, container_restart_options{}); }
    // Engine API: POST /containers/{id}/restart
    boost::asio::awaitable<void> restart(std::string_view id, container_restart_options options) {
        std::string target = "/containers/" + detail::percent_encode(id) + "/restart";
        auto q = co_await stop_query(options, "restarting with a signal", target);
        co_await client_.call(verb::post, target + q.str(), std::string(), stop_time_limit(options));
    }

    // Freezes the container's processes (the cgroup freezer). Pausing a paused container, or one not running, is
    // a conflict_error (Docker's 409; Podman's 500 "container state improper", typed the same).
    // Engine API: POST /containers/{id}/pause
    boost::asio::awaitable<void> pause(std::string_view id) {
        co_await change_state("/containers/" + detail::percent_encode(id) + "/pause");
    }

    // Unpausing a container that is not paused is a conflict_error, as for pause (Docker 20.10 says 500, Podman 500:
    // both typed as the conflict they are).
    // Engine API: POST /containers/{id}/unpause
    boost::asio::awaitable<void> unpause(std::string_view id) {
        co_await change_state("/containers/" + detail::percent_encode(id) + "/unpause");
    }

    // A name in use is a conflict_error; an empty one is an invalid_argument_error, before anything is sent.
    // Engine API: POST /containers/{id}/rename
    boost::asio::awaitable<void> rename(std::string_view id, std::string_view new_name) {
        if (new_name.empty()) throw invalid_argument_error("berth::containers().rename: the new name is empty");
        co_await client_.call(verb::post, "/containers/" + detail::percent_encode(id) + "/rename" +
                                              detail::query().add("name", new_name).str());
    }

    // The container's filesystem changes against its image (a null reply: none). A Kind other than 0, 1 or 2 is a
    // protocol_error.
    // Engine API: GET /containers/{id}/changes
    boost::asio::awaitable<std::vector<filesystem_change>> changes(std::string_view id) {
        std::string target = "/containers/" + detail::percent_encode(id) + "/changes";
        auto v = co_await client_.call_json(verb::get, target);
        const std::string endpoint = "GET " + target;
        std::vector<filesystem_change> out{};
        if (v.is_null()) co_return out;
        for (auto& item : json_read::as_array(v, endpoint)) {
            auto& o = json_read::as_object(item, endpoint);
            filesystem_change change;
            change.path = json_read::string_field(o, "Path", endpoint);
            if (auto* k = o.if_contains("Kind"); k == nullptr || k->is_null())
                throw protocol_error(endpoint, "reply lacks the field 'Kind'");
            const int kind = json_read::optional_int_as<int>(o, "Kind", endpoint);
            if (kind < 0 || kind > 2)
                throw protocol_error(endpoint, "field 'Kind' is " + std::to_string(kind) + ", not 0, 1 or 2");
            change.kind = static_cast<filesystem_change_kind>(kind);
            out.push_back(std::move(change));
        }
        co_return out;
    }

    // Removes the stopped containers that match options.filters (all stopped containers when none).
    // Engine API: POST /containers/prune
    boost::asio::awaitable<container_prune_result> prune() { return prune(container_prune_options{}); }
    // Engine API: POST /containers/prune
    boost::asio::awaitable<container_prune_result> prune(container_prune_options options) {
        detail::query q;
        std::string target = "/containers/prune" + detail::add_filters(q, options.filters).str();
        auto v = co_await client_.call_json(verb::post, target);
        const std::string endpoint = "POST " + target;
        auto& o = json_read::as_object(v, endpoint);
        co_return container_prune_result{json_read::optional_strings(o, "ContainersDeleted", endpoint),
                                         json_read::optional_int_as<std::uint64_t>(o, "SpaceReclaimed", endpoint)};
    }

    // Changes the container's resources and restart policy (only the fields set); the engine's Warnings. Podman 4.3
    // has no such endpoint (a 404, not_found_error).
    // Engine API: POST /containers/{id}/update
    boost::asio::awaitable<std::vector<std::string>> update(std::string_view id, container_update_options options) {
        detail::validate_update(options);  // the create body's rules, before anything is sent
        json::object body = std::move(options.extra);
        auto set = [&body](std::string_view key, const auto& field) {
            if (field) body[key] = *field;
        };
        set("Memory", options.memory);
        set("MemorySwap", options.memory_swap);
        set("MemoryReservation", options.memory_reservation);
        set("CpuShares", options.cpu_shares);
        set("NanoCpus", options.nano_cpus);
        set("CpuQuota", options.cpu_quota);
        set("CpuPeriod", options.cpu_period);
        set("CpusetCpus", options.cpuset_cpus);
        set("PidsLimit", options.pids_limit);
        if (options.restart_policy)
            body["RestartPolicy"] = json::object{{"Name", options.restart_policy->name},
                                                 {"MaximumRetryCount", options.restart_policy->maximum_retry_count}};
        std::string target = "/containers/" + detail::percent_encode(id) + "/update";
        auto v = co_await client_.call_json(verb::post, target, json::serialize(body));
        const std::string endpoint = "POST " + target;
        co_return json_read::optional_strings(json_read::as_object(v, endpoint), "Warnings", endpoint);
    }

    // The container's tty size, in characters (meaningful for a container created with Tty).
    // Engine API: POST /containers/{id}/resize
    boost::asio::awaitable<void> resize(std::string_view id, unsigned height, unsigned width) {
        co_await client_.call(verb::post, "/containers/" + detail::percent_encode(id) + "/resize" +
                                              detail::query().add_number("h", height).add_number("w", width).str());
    }

    // Engine API: POST /containers/{id}/kill
    boost::asio::awaitable<void> kill(std::string_view id, std::string_view signal = "SIGKILL") {
        co_await client_.call(verb::post, "/containers/" + detail::percent_encode(id) + "/kill" +
                                              detail::query().add("signal", signal).str());
    }

    // Engine API: DELETE /containers/{id}
    boost::asio::awaitable<void> remove(std::string_view id, container_remove_options options = {}) {
        co_await client_.call(
            verb::delete_, "/containers/" + detail::percent_encode(id) +
                               detail::query().add_flag("force", options.force).add_flag("v", options.volumes).str());
    }

    // Streams the container's whole filesystem as a tar (docker export) into `sink`, slice by slice. ("export" is
    // a C++ keyword, hence the underscore.) A missing container is a not_found_error.
    // Engine API: GET /containers/{id}/export
    template <byte_sink Sink>
    boost::asio::awaitable<void> export_(std::string_view id, Sink&& sink) {
        if (id.empty()) throw invalid_argument_error("berth::containers().export_: the container is empty");
        http::request req{.method = verb::get, .target = "/containers/" + detail::percent_encode(id) + "/export"};
        auto reply = co_await client_.open(std::move(req));
        co_await detail::read_body_into(reply, sink);
    }

    // The same into `file`, written under a temporary name beside it and renamed into place once complete: a failed
    // export leaves `file` as it was.
    // Engine API: GET /containers/{id}/export
    boost::asio::awaitable<void> export_to_file(std::string_view id, std::filesystem::path file) {
        http::file_sink sink(file);
        co_await export_(id, sink);
        sink.commit();
    }

    // Engine API: GET /containers/{id}/json
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
        if (auto* cfg = json_read::optional_object(o, "Config", endpoint))
            info.labels = json_read::optional_string_map(*cfg, "Labels", endpoint);
        if (auto* settings = json_read::optional_object(o, "NetworkSettings", endpoint))
            if (auto* networks = json_read::optional_object(*settings, "Networks", endpoint))
                for (auto& [net_name, net] : *networks)
                    if (net.is_object())
                        info.network_addresses[std::string(net_name)] = json_read::optional_string(
                            net.get_object(), "IPAddress", endpoint);
        info.raw = o;
        co_return info;
    }

    // The container's processes, as `ps` shows them (ps_args: the ps options; empty: the engine's default, which on
    // Podman runs ps inside the container). The Processes field is required; null means no rows.
    // Engine API: GET /containers/{id}/top
    boost::asio::awaitable<container_processes> top(std::string_view id, std::string_view ps_args = {}) {
        std::string target = "/containers/" + detail::percent_encode(id) + "/top" +
                             detail::query().add_if(!ps_args.empty(), "ps_args", ps_args).str();
        auto v = co_await client_.call_json(verb::get, target);
        const std::string endpoint = "GET " + target;
        auto& o = json_read::as_object(v, endpoint);
        if (!o.contains("Processes")) throw protocol_error(endpoint, "reply lacks the field 'Processes'");
        container_processes top;
        top.titles = json_read::optional_strings(o, "Titles", endpoint);
        auto* rows = o.if_contains("Processes");
        if (rows->is_null()) co_return top;
        if (!rows->is_array()) throw protocol_error(endpoint, "field 'Processes' is not an array");
        for (auto& row : rows->get_array()) {
            if (!row.is_array()) throw protocol_error(endpoint, "field 'Processes' holds a non-array");
            auto& columns = top.processes.emplace_back();
            for (auto& cell : row.get_array()) {
                if (!cell.is_string()) throw protocol_error(endpoint, "field 'Processes' holds a non-string");
                columns.emplace_back(cell.get_string());
            }
        }
        co_return top;
    }

    // Engine API: GET /containers/json
    boost::asio::awaitable<std::vector<container_summary>> list() { return list(container_list_options{}); }
    boost::asio::awaitable<std::vector<container_summary>> list(container_list_options options) {
        detail::query q;
        q.add_flag("all", options.all);
        std::string target = "/containers/json" + detail::add_filters(q, options.filters).str();
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
    // Engine API: POST /containers/{id}/wait
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
    // once a second), so this takes up to a second there (two with options.one_shot false); Podman reads the
    // cgroup at once. (exec's figures on Docker come from a stream instead: eval/usage_monitor.hpp.)
    // Engine API: GET /containers/{id}/stats
    boost::asio::awaitable<container_stats> stats(std::string_view id) { return stats(id, container_stats_options{}); }
    boost::asio::awaitable<container_stats> stats(std::string_view id, container_stats_options options) {
        detail::query q;
        q.add("stream", "false");
        // one-shot is API 1.41's; an older engine always waits for its second sample
        if (options.one_shot && co_await client_.api_at_least("1.41")) q.add("one-shot", "true");
        std::string target = "/containers/" + detail::percent_encode(id) + "/stats" + q.str();
        auto v = co_await client_.call_json(verb::get, target);
        co_return detail::parse_container_stats(v, "GET " + target);
    }

    // The container's stats stream (container_stats_stream). The reply head must come within `head_timeout` (Docker
    // sends it at once; the samples follow); the samples then come without a limit, until the stream is dropped.
    // Engine API: GET /containers/{id}/stats
    boost::asio::awaitable<container_stats_stream<http::response<Transport>>> stats_stream(
        std::string_view id, std::chrono::steady_clock::duration head_timeout = std::chrono::seconds(10)) {
        http::request req{.method = verb::get,
                          .target = "/containers/" + detail::percent_encode(id) + "/stats" +
                                    detail::query().add("stream", "true").str()};
        auto reply = co_await client_.open(std::move(req), static_cast<http::detail::no_body*>(nullptr), head_timeout);
        co_return container_stats_stream<http::response<Transport>>(std::move(reply));
    }

    // The container's logs (stdout and stderr apart unless the container has a tty): to options.on_output as
    // they arrive, or, without it, collected into the container_logs returned (bounded by
    // options.max_collected_bytes). A stream that ends inside a frame is a protocol_error (truncated).
    // Engine API: GET /containers/{id}/logs
    boost::asio::awaitable<container_logs> logs(std::string_view id) { return logs(id, container_logs_options{}); }
    boost::asio::awaitable<container_logs> logs(std::string_view id, container_logs_options options) {
        auto info = co_await inspect(id);
        bool tty = false;
        if (auto* cfg = info.raw.if_contains("Config"); cfg && cfg->is_object())
            if (auto* t = cfg->get_object().if_contains("Tty"); t && t->is_bool()) tty = t->get_bool();
        if (options.since && options.until && *options.until < *options.since)
            throw invalid_argument_error("berth::container_logs_options: until is before since");
        detail::query q;
        q.add_flag("stdout", options.stdout_)
            .add_flag("stderr", options.stderr_)
            .add_flag("timestamps", options.timestamps)
            .add_flag("follow", options.follow)
            .add("tail", options.tail);
        if (options.since) q.add("since", detail::api_timestamp(*options.since));
        if (options.until) q.add("until", detail::api_timestamp(*options.until));
        std::string target = "/containers/" + detail::percent_encode(id) + "/logs" + q.str();
        http::request req{.method = verb::get,
                          .target = target};  // named: g++ 12 mis-copies aggregate temporaries in co_await
        // Followed logs of a quiet container: Podman sends the reply head only with the first output.
        std::optional<std::chrono::steady_clock::duration> head_timeout{};
        if (options.follow) head_timeout = std::chrono::steady_clock::duration::zero();
        auto reply = co_await client_.open(std::move(req), static_cast<http::detail::no_body*>(nullptr), head_timeout);
        detail::log_collector collector(options.timestamps, options.max_collected_bytes);
        auto forward = [&options, &collector](output_stream s, std::string_view data) {
            if (options.on_output)
                options.on_output(s, data);
            else
                collector(s, data);
        };
        detail::output_dispatcher<decltype(forward)> dispatch(forward, !tty, reply.endpoint());
        std::array<char, 16 * 1024> buffer;
        while (std::size_t n = co_await reply.read_some(buffer)) dispatch(std::span<const char>(buffer.data(), n));
        if (!dispatch.complete())
            throw protocol_error(protocol_errc::truncated, reply.endpoint(), "log stream ended inside a frame");
        co_return collector.finish();
    }

    // Attaches to the container's stdio on a hijacked connection: its output goes to options.on_output (stdout and
    // stderr apart unless the container has a tty) until the engine ends the stream (the container exits; or,
    // with stdin attached, the engine ends the attach when stdin is closed, unless the container was created
    // with StdinOnce, which closes the container's stdin instead). options.stdin_ is sent, then the sending side is
    // half-closed.
    // Engine API: POST /containers/{id}/attach
    boost::asio::awaitable<void> attach(std::string_view id) { return attach(id, container_attach_options{}); }
    boost::asio::awaitable<void> attach(std::string_view id, container_attach_options options) {
        detail::check_detach_keys(options.detach_keys, "berth::container_attach_options");
        std::optional<stdin_source::reader> source;
        if (options.stdin_) source.emplace(options.stdin_);
        auto info = co_await inspect(id);
        bool tty = false;
        if (auto* cfg = info.raw.if_contains("Config"); cfg && cfg->is_object())
            if (auto* t = cfg->get_object().if_contains("Tty"); t && t->is_bool()) tty = t->get_bool();
        http::request req{.method = verb::post,
                          .target = "/containers/" + detail::percent_encode(id) + "/attach" + attach_query(options)};
        auto stream = co_await client_.open_hijacked(std::move(req), "the attach stream");
        const std::string& endpoint = stream.endpoint;
        auto forward = [&options](output_stream s, std::string_view data) {
            if (options.on_output) options.on_output(s, data);
        };
        detail::output_dispatcher<decltype(forward)> dispatch(forward, !tty, endpoint);
        co_await http::read_beside_stdin(
            http::read_hijacked(*stream.connection, dispatch, stream.address, endpoint, "reading the attach stream"),
            *stream.connection, source ? &*source : nullptr, still_running(id));
        if (!dispatch.complete())
            throw protocol_error(protocol_errc::truncated, endpoint, "attach stream ended inside a frame");
    }

    // attach() over a websocket: the same options; the output is not multiplexed (all of it reaches on_output as
    // stdout), and a websocket has no half-close, so the end of stdin_ is not passed on: the stream lasts until
    // the engine closes it (the container exits) or the caller cancels. Before Engine API 1.42 the engine ignores
    // stdin/stdout/stderr here and attaches all three. Podman 4.3 has no such endpoint (not_found_error).
    // Engine API: GET /containers/{id}/attach/ws
    boost::asio::awaitable<void> attach_websocket(std::string_view id) {
        return attach_websocket(id, container_attach_options{});
    }
    boost::asio::awaitable<void> attach_websocket(std::string_view id, container_attach_options options) {
        detail::check_detach_keys(options.detach_keys, "berth::container_attach_options");
        std::optional<stdin_source::reader> source;
        if (options.stdin_) source.emplace(options.stdin_);
        std::string target = "/containers/" + detail::percent_encode(id) + "/attach/ws" + attach_query(options);
        auto socket = co_await client_.open_websocket(target);
        const std::string endpoint = "GET /v" + (co_await client_.api_version()) + target;
        const std::string address = client_.transport().describe();
        auto forward = [&options](std::span<const char> bytes) {
            if (options.on_output && !bytes.empty())
                options.on_output(output_stream::stdout_, std::string_view(bytes.data(), bytes.size()));
        };
        auto reading = http::read_websocket(socket->ws, forward, address, endpoint);
        if (source)
            co_await http::run_interactive(std::move(reading), http::send_websocket(socket->ws, *source));
        else
            co_await std::move(reading);
    }

private:
    // For http::reset_after_exit_is_end: whether the container still runs.
    auto still_running(std::string_view id) {
        return [this, id = std::string(id)]() -> boost::asio::awaitable<bool> {
            auto info = co_await inspect(id);
            co_return info.state.running;
        };
    }

    static std::string attach_query(const container_attach_options& options) {
        return detail::query()
            .add_flag("stream", options.stream)
            .add_flag("logs", options.logs)
            .add_flag("stdin", !options.stdin_.empty())
            .add_flag("stdout", options.stdout_)
            .add_flag("stderr", options.stderr_)
            .add_if(!options.detach_keys.empty(), "detachKeys", options.detach_keys)
            .str();
    }

    static constexpr int default_stop_grace_seconds = 10;  // the engine's, for a container created without StopTimeout

    // The query of a stop or a restart: t, and the signal (Engine API 1.42; refused before sending on an older one).
    boost::asio::awaitable<detail::query> stop_query(const container_stop_options& options, std::string feature,
                                                     const std::string& target) {
        detail::query q;
        if (options.timeout) q.add_number("t", *options.timeout);
        if (!options.signal.empty()) {
            co_await client_.require_api("1.42", std::move(feature), "POST " + target);
            q.add("signal", options.signal);
        }
        co_return q;
    }

    // A stop's or a restart's time limit: the client's request_timeout plus the grace period, none for -1.
    static time_limit stop_time_limit(const container_stop_options& options) {
        time_limit limit;
        const int grace = options.timeout.value_or(default_stop_grace_seconds);
        if (grace < 0)
            limit.unlimited = true;
        else
            limit.extra = std::chrono::seconds(grace);
        return limit;
    }

    // Pause and unpause. A container in the wrong state (already paused, not paused) is a conflict: Docker says
    // 409, except that Docker 20.10 answers an unpause of a running container with a 500 "Container <id> is not
    // paused"; Podman says 500 "container state improper". Those 500s are typed as the conflict they are.
    boost::asio::awaitable<void> change_state(std::string target) {
        const auto kind = co_await client_.kind();
        try {
            co_await client_.call(verb::post, std::move(target));
        } catch (const engine_error& e) {
            const bool wrong_state = kind == engine_kind::podman
                                         ? e.message().find("container state improper") != std::string::npos
                                         : e.message().find("is not paused") != std::string::npos;
            if (e.status() == 500 && wrong_state)
                throw conflict_error(engine_errc::conflict, e.status(), e.message(), e.endpoint());
            throw;
        }
    }

    boost::asio::awaitable<void> ignore_not_modified(verb method, std::string target, time_limit limit = {}) {
        try {
            co_await client_.call(method, std::move(target), std::string(), limit);
        } catch (const engine_error& e) {
            if (e.code() != engine_errc::not_modified) throw;
        }
    }

    client_core<Transport>& client_;
};

}  // namespace berth
