#pragma once
// Image builds: the options, the builder choice, and the reading of the engine's build output into typed progress.
// images_api::build (images.hpp) is the entry point; this header holds what it is made of.
//
// Builders: Docker has the legacy builder and BuildKit (POST /build?version=2, no session needed: the uploaded tar
// is the context); BuildKit's progress comes as protobuf trace payloads (buildkit_trace.hpp). Podman builds with
// Buildah whatever is asked (Buildah understands RUN --mount, COPY --chmod, ...) and reports legacy-style text.
// builder::automatic picks BuildKit where the engine offers it, from what the engine says (/_ping), never guessed.
#include <berth/detail/base64.hpp>
#include <berth/detail/url.hpp>
#include <berth/engine/buildkit_trace.hpp>
#include <berth/engine/client_core.hpp>
#include <berth/engine/json_progress.hpp>
#include <berth/engine/registry_auth.hpp>

#include <boost/json/serialize.hpp>

#include <deque>
#include <functional>
#include <map>
#include <vector>

namespace berth {

enum class builder {
    automatic,  // BuildKit where the engine offers it (Docker unless its /_ping says Builder-Version 1), else legacy
    legacy,     // Docker's classic builder
    buildkit,   // BuildKit (version=2); Podman builds with Buildah whatever is asked
};

// What actually built the image.
enum class build_backend { legacy, buildkit, buildah };

struct build_options {
    std::string tag{};                 // t=
    std::string dockerfile{};          // path inside the context; empty: "Dockerfile"
    berth::builder builder = berth::builder::automatic;
    std::string target{};              // the stage to build in a multi-stage Dockerfile
    std::string platform{};            // "linux/amd64"
    bool no_cache = false;
    bool remove_intermediate = true;        // rm= (legacy builder)
    bool force_remove_intermediate = false; // forcerm= (legacy builder)
    // Look for newer base images in a registry. Off: FROM uses local images as they are (with BuildKit too).
    bool pull = false;
    // For RUN steps; "none" keeps builds off the network. Empty: the engine's default; with BuildKit on an engine
    // that has no default bridge (dockerd --bridge=none), "none", as the legacy builder does there.
    std::string network_mode{};
    std::map<std::string, std::string> build_args{};
    std::map<std::string, std::string> labels{};
    std::vector<std::string> cache_from{};  // images whose layers may serve as cache
    // The build output kept in built_image::log when no callback is given: the last max_log_bytes bytes.
    std::size_t max_log_bytes = std::size_t{1} << 20;
    // The longest line of the engine's output accepted (BuildKit sends a step's output in one line).
    std::size_t max_line_bytes = std::size_t{16} << 20;
    // Credentials for the registries FROM may pull from (X-Registry-Config), keyed by registry ("127.0.0.1:5000",
    // "https://index.docker.io/v1/"); all_credentials() (credentials.hpp) gives what the docker CLI would send.
    std::map<std::string, registry_credentials> registry_config{};
};

// Called with each piece of build output text, as the engine sent it (legacy, Buildah), or with one line per
// BuildKit event ("#3 [2/4] RUN make"). progress_callback (json_progress.hpp) gives the same as typed events.
using build_progress = std::function<void(std::string_view)>;

struct built_image {
    std::string id{};                    // sha256:...
    build_backend backend = build_backend::legacy;
    // The output (the legacy builder's text, BuildKit's events as lines), kept only when no callback was given,
    // and then only its last build_options::max_log_bytes; log_bytes_dropped says how much did not fit (with a
    // callback: all of it, since the callback had it).
    std::string log{};
    std::uint64_t log_bytes_dropped = 0;
};

// A failed build: the engine's message, and which step failed with the last lines it wrote.
class build_error : public stream_error {
public:
    build_error(const stream_error& e, std::string step, std::string step_log)
        : stream_error(e), step_(std::move(step)), step_log_(std::move(step_log)) {}
    const std::string& step() const noexcept { return step_; }          // "[2/3] RUN make", "RUN make"; may be empty
    const std::string& step_log() const noexcept { return step_log_; }  // the failed step's last output lines

private:
    std::string step_;
    std::string step_log_;
};

namespace detail {

// The last `limit` bytes of a text, and how many before them were dropped.
class bounded_tail {
public:
    explicit bounded_tail(std::size_t limit) : limit_(limit) {}
    void append(std::string_view s) {
        total_ += s.size();
        if (s.size() >= limit_) {
            text_.assign(s.substr(s.size() - limit_));
            return;
        }
        text_.append(s);
        if (text_.size() > 2 * limit_ || text_.size() > limit_ + (std::size_t{1} << 20)) trim();
    }
    std::string take() {
        trim();
        return std::move(text_);
    }
    const std::string& text() {
        trim();
        return text_;
    }
    std::uint64_t total() const { return total_; }

private:
    void trim() {
        if (text_.size() > limit_) text_.erase(0, text_.size() - limit_);
    }
    std::size_t limit_;
    std::string text_{};
    std::uint64_t total_ = 0;
};

// The last lines of a step's output, bounded, for the error a failed step becomes.
inline std::string last_lines(std::string_view text, std::size_t lines) {
    while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    std::size_t pos = text.size();
    for (std::size_t n = 0; n < lines && pos != std::string_view::npos && pos > 0; ++n) pos = text.rfind('\n', pos - 1);
    if (pos == std::string_view::npos) return std::string(text);
    return pos < text.size() ? std::string(text.substr(pos + 1)) : std::string();  // empty text: pos is 0
}

inline constexpr std::size_t step_log_tail_bytes = 8 * 1024;
inline constexpr std::size_t step_error_lines = 20;
inline constexpr std::size_t max_tracked_steps = 4096;

// Turns the engine's build output into progress events, the bounded log, the image id, and a build_error with the
// failed step. One per build; fed one progress_message at a time.
class build_output_reader {
public:
    build_output_reader(build_backend backend, const std::string& endpoint, progress_callback events, build_progress text,
                        std::size_t max_log_bytes)
        : backend_(backend), endpoint_(endpoint), events_(std::move(events)), text_(std::move(text)),
          collect_(!events_ && !text_), log_(collect_ ? max_log_bytes : 0) {}

    void on_message(const progress_message& m) {
        if (m.aux != nullptr) on_aux(m);
        if (!m.stream.empty()) {
            write_text(m.stream);  // the engine's own text goes to the text callback and the log as it came
            if (backend_ == build_backend::buildkit) {
                progress_event e;
                e.text = m.stream;
                emit(e);
            } else {
                on_stream(m.stream);
            }
        }
        if (!m.status.empty() && m.aux == nullptr) {
            progress_event e;
            e.kind = m.current ? progress_kind::step_progress : progress_kind::message;
            e.step = m.id;
            e.name = m.status;
            e.text = m.status;
            e.current = m.current.value_or(0);
            e.total = m.total.value_or(0);
            emit(e);
        }
        if (m.failed) fail(m);
    }

    // The stream ended without an error: the step still open (legacy) is complete.
    void finish() {
        if (!line_.empty()) on_line(std::exchange(line_, {}));
        close_legacy_step();
    }

    const std::string& image_id() const { return image_id_; }
    std::string take_log() { return log_.take(); }
    std::uint64_t log_bytes_dropped() { return text_total_ - log_.text().size(); }

private:
    struct step_state {
        std::string name{};
        bool started = false, cached = false, completed = false, failed = false;
        bounded_tail tail{step_log_tail_bytes};
    };

    void write_text(std::string_view s) {
        text_total_ += s.size();
        if (text_) text_(s);
        if (collect_) log_.append(s);
    }

    void emit(const progress_event& e) {
        if (events_) events_(e);
        // BuildKit's events become text lines as `--progress=plain` shows them (its engine text went out as it came).
        if (backend_ == build_backend::buildkit && e.kind != progress_kind::step_progress && e.kind != progress_kind::message &&
            (text_ || collect_ || !events_)) {
            auto line = describe(e);
            if (line.empty() || line.back() != '\n') line += '\n';
            write_text(line);
        }
    }

    step_state& step(const std::string& id) {
        auto it = steps_.find(id);
        if (it != steps_.end()) return it->second;
        if (steps_.size() >= max_tracked_steps)
            throw protocol_error(endpoint_, "the build reported more than " + std::to_string(max_tracked_steps) + " steps");
        return steps_[id];
    }

    // ---- BuildKit ----
    void on_aux(const progress_message& m) {
        if (m.aux->is_object()) {
            if (auto id = json_read::optional_string(m.aux->get_object(), "ID", endpoint_); !id.empty()) image_id_ = id;
            return;
        }
        if (m.id != "moby.buildkit.trace") return;  // other side data is not for berth
        if (!m.aux->is_string()) throw protocol_error(endpoint_, "moby.buildkit.trace aux is not a base64 string");
        auto payload = berth::detail::base64_decode(std::string_view(m.aux->get_string()));
        if (!payload) throw protocol_error(endpoint_, "moby.buildkit.trace aux is not base64");
        buildkit::status_response status;
        try {
            status = buildkit::decode_status_response(*payload);
        } catch (const buildkit::trace_error& e) {
            throw protocol_error(endpoint_, e.what());
        }
        on_trace(status);
    }

    void on_trace(const buildkit::status_response& status) {
        for (auto& v : status.vertexes) {
            auto& s = step(v.digest);
            if (!v.name.empty()) s.name = v.name;
            progress_event e;
            e.step = v.digest;
            e.name = s.name;
            if (v.cached && !s.cached) {
                s.cached = true;
                e.kind = progress_kind::step_cached;
                emit(e);
                continue;
            }
            if (v.started && !s.started && !s.cached) {
                s.started = true;
                e.kind = progress_kind::step_started;
                emit(e);
            }
            if (!v.error.empty() && !s.failed) {
                s.failed = true;
                failed_step_ = v.digest;
                e.kind = progress_kind::step_failed;
                e.text = v.error;
                emit(e);
            } else if (v.completed && !s.completed && !s.cached && !s.failed) {
                s.completed = true;
                e.kind = progress_kind::step_completed;
                emit(e);
            }
        }
        for (auto& st : status.statuses) {
            progress_event e;
            e.kind = progress_kind::step_progress;
            e.step = st.vertex;
            e.name = st.name.empty() ? st.id : st.name;
            e.current = st.current;
            e.total = st.total;
            emit(e);
        }
        for (auto& l : status.logs) {
            auto& s = step(l.vertex);
            s.tail.append(l.msg);
            progress_event e;
            e.kind = progress_kind::step_log;
            e.step = l.vertex;
            e.name = s.name;
            e.text = l.msg;
            e.stream = static_cast<int>(l.stream);
            emit(e);
        }
        for (auto& w : status.warnings) {
            progress_event e;
            e.step = w.vertex;
            e.text = "WARNING: " + w.short_text;
            emit(e);
        }
    }

    // ---- the legacy builder's and Buildah's text ----
    void on_stream(std::string_view text) {
        // Text arrives in pieces that are not lines ("Step 2/2 : RUN x" then "\n"): assemble lines, bounded.
        while (!text.empty()) {
            auto nl = text.find('\n');
            auto piece = text.substr(0, nl == std::string_view::npos ? text.size() : nl + 1);
            line_.append(piece);
            text.remove_prefix(piece.size());
            if (nl != std::string_view::npos || line_.size() > step_log_tail_bytes) {
                on_line(line_);
                line_.clear();
            }
        }
    }

    static bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

    // "Step 2/5 : RUN make" (Docker) or "STEP 2/5: RUN make" (Buildah): the step number and the instruction.
    static bool parse_step_line(std::string_view line, std::string& number, std::string& instruction) {
        if (!starts_with(line, "Step ") && !starts_with(line, "STEP ")) return false;
        line.remove_prefix(5);
        auto slash = line.find('/');
        auto colon = line.find(':');
        if (slash == std::string_view::npos || colon == std::string_view::npos || slash == 0 || slash > colon) return false;
        for (char c : line.substr(0, slash))
            if (c < '0' || c > '9') return false;
        number = std::string(line.substr(0, slash));
        auto rest = line.substr(colon + 1);
        while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
        while (!rest.empty() && (rest.back() == '\n' || rest.back() == '\r')) rest.remove_suffix(1);
        instruction = std::string(rest);
        return true;
    }

    void close_legacy_step() {
        if (legacy_step_.empty()) return;
        auto& s = step(legacy_step_);
        if (!s.cached && !s.failed && !s.completed) {
            s.completed = true;
            progress_event e;
            e.kind = progress_kind::step_completed;
            e.step = legacy_step_;
            e.name = s.name;
            emit(e);
        }
        legacy_step_.clear();
    }

    void on_line(std::string_view line) {
        std::string number, instruction;
        progress_event e;
        if (parse_step_line(line, number, instruction)) {
            close_legacy_step();
            legacy_step_ = number;
            auto& s = step(number);
            s.name = instruction;
            s.started = true;
            e.kind = progress_kind::step_started;
            e.step = number;
            e.name = instruction;
            emit(e);
            return;
        }
        std::string_view chatter = line;
        while (!chatter.empty() && chatter.front() == ' ') chatter.remove_prefix(1);
        const bool builder_note = starts_with(chatter, "---> ") || starts_with(chatter, "--> ");
        if (builder_note && chatter.find("Using cache") != std::string_view::npos && !legacy_step_.empty()) {
            auto& s = step(legacy_step_);
            if (!s.cached) {
                s.cached = true;
                e.kind = progress_kind::step_cached;
                e.step = legacy_step_;
                e.name = s.name;
                emit(e);
            }
        }
        if (starts_with(line, "Successfully built") || starts_with(line, "Successfully tagged") || starts_with(line, "COMMIT"))
            close_legacy_step();
        e = progress_event{};
        if (builder_note || legacy_step_.empty() || starts_with(line, "Removing intermediate container")) {
            e.kind = progress_kind::message;
            e.text = std::string(line);
        } else {
            auto& s = step(legacy_step_);
            e.kind = progress_kind::step_log;
            e.step = legacy_step_;
            e.name = s.name;
            e.text = strip_stderr_colour(line);
            s.tail.append(e.text);
        }
        emit(e);
    }

    // Docker's legacy builder wraps a RUN step's stderr in "\x1b[91m" ... "\x1b[0m".
    static std::string strip_stderr_colour(std::string_view line) {
        std::string out(line);
        for (std::string_view code : {std::string_view("\x1b[91m"), std::string_view("\x1b[0m")})
            for (auto p = out.find(code); p != std::string::npos; p = out.find(code, p)) out.erase(p, code.size());
        return out;
    }

    [[noreturn]] void fail(const progress_message& m) {
        if (!line_.empty()) on_line(std::exchange(line_, {}));
        std::string failed = failed_step_.empty() ? legacy_step_ : failed_step_;
        std::string name, tail;
        if (auto it = steps_.find(failed); it != steps_.end()) {
            name = it->second.name;
            tail = last_lines(it->second.tail.text(), step_error_lines);
            if (!it->second.failed) {
                it->second.failed = true;
                progress_event e;
                e.kind = progress_kind::step_failed;
                e.step = failed;
                e.name = name;
                e.text = m.error;
                emit(e);
            }
        }
        stream_error base(engine_errc::build_failed, 200, m.error, endpoint_, m.error_code);
        throw build_error(base, std::move(name), std::move(tail));
    }

    build_backend backend_;
    std::string endpoint_;
    progress_callback events_;
    build_progress text_;
    bool collect_;
    bounded_tail log_;
    std::string image_id_{};
    std::map<std::string, step_state> steps_{};
    std::string failed_step_{};   // BuildKit: the vertex that reported an error
    std::string legacy_step_{};   // legacy/Buildah: the step in progress ("2")
    std::string line_{};          // legacy text: the unfinished line
    std::uint64_t text_total_ = 0;  // all the text output, kept or not
};

// The /build query for the chosen backend.
inline std::string build_query(const build_options& options, build_backend backend, bool network_none_default) {
    detail::query q;
    q.add_if(!options.tag.empty(), "t", options.tag);
    q.add_if(!options.dockerfile.empty(), "dockerfile", options.dockerfile);
    q.add_flag("nocache", options.no_cache).add_flag("rm", options.remove_intermediate);
    q.add_flag("forcerm", options.force_remove_intermediate).add_flag("pull", options.pull);
    std::string network = options.network_mode.empty() && network_none_default ? "none" : options.network_mode;
    q.add_if(!network.empty(), "networkmode", network);
    if (!options.build_args.empty()) q.add("buildargs", json::serialize(json::value_from(options.build_args)));
    if (!options.labels.empty()) q.add("labels", json::serialize(json::value_from(options.labels)));
    q.add_if(!options.target.empty(), "target", options.target);
    q.add_if(!options.platform.empty(), "platform", options.platform);
    if (!options.cache_from.empty()) q.add("cachefrom", json::serialize(json::value_from(options.cache_from)));
    if (backend == build_backend::buildkit) q.add("version", "2");
    return q.str();
}

// Which backend will build: Podman always builds with Buildah; Docker as asked, or for builder::automatic as its
// /_ping says (Builder-Version "2" or absent on a Linux engine: BuildKit is built in since 18.09; "1": the
// operator turned it off). BuildKit ignores X-Registry-Config (it asks the client over a session berth does not
// open), so an automatic build that carries registry credentials goes to the legacy builder, which uses them.
template <transport Transport>
boost::asio::awaitable<build_backend> choose_backend(client_core<Transport>& client, builder wanted,
                                                     bool carries_registry_credentials) {
    if (co_await client.kind() == engine_kind::podman) co_return build_backend::buildah;
    if (wanted == builder::legacy) co_return build_backend::legacy;
    if (wanted == builder::automatic && carries_registry_credentials) co_return build_backend::legacy;
    if (wanted == builder::buildkit) co_return build_backend::buildkit;
    http::request ping{.method = verb::get, .target = "/_ping"};
    auto reply = co_await client.open(std::move(ping));
    auto version = reply.header("Builder-Version");
    auto os = reply.header("Ostype");
    co_await reply.read_all(4096);
    if (version == "2") co_return build_backend::buildkit;
    if (version == "1" || os == "windows") co_return build_backend::legacy;
    co_return build_backend::buildkit;
}

// BuildKit runs RUN steps on the engine's default bridge unless told otherwise; an engine started without one
// (dockerd --bridge=none) fails every RUN with "network bridge not found", where the legacy builder runs the step
// without a network. Detected from the engine's networks, so the same Dockerfile builds with either builder.
template <transport Transport>
boost::asio::awaitable<bool> lacks_default_bridge(client_core<Transport>& client) {
    try {
        co_await client.call(verb::get, "/networks/bridge");
        co_return false;
    } catch (const not_found_error&) {
        co_return true;
    }
}

// Runs a build and reads its output; the image id is empty when the engine named none.
template <transport Transport, http::body_source Source>
boost::asio::awaitable<built_image> run_build(client_core<Transport>& client, Source& context, build_options options,
                                              progress_callback events, build_progress text) {
    built_image result;
    result.backend = co_await choose_backend(client, options.builder, !options.registry_config.empty());
    bool network_none = false;
    if (result.backend == build_backend::buildkit && options.network_mode.empty())
        network_none = co_await lacks_default_bridge(client);
    http::request req{.method = verb::post, .target = "/build" + build_query(options, result.backend, network_none),
                      .content_type = "application/x-tar"};
    json_progress_options stream_options;
    if (!options.registry_config.empty()) {
        req.headers.emplace_back("X-Registry-Config", registry_config_header(options.registry_config));
        req.secrets = stream_options.secrets = registry_secrets(options.registry_config);
    }
    auto reply = co_await client.open(std::move(req), &context);

    build_output_reader reader(result.backend, reply.endpoint(), std::move(events), std::move(text), options.max_log_bytes);
    stream_options.max_line_bytes = options.max_line_bytes;
    stream_options.error_code = engine_errc::build_failed;
    co_await read_progress_stream(reply, [&reader](const progress_message& m) { reader.on_message(m); }, stream_options);
    reader.finish();
    result.id = reader.image_id();
    result.log_bytes_dropped = reader.log_bytes_dropped();
    result.log = reader.take_log();
    co_return result;
}

} // namespace detail
} // namespace berth
