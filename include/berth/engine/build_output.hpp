#pragma once
// What a build's output means: build_output_reader turns the engine's build stream (the legacy builder's and
// Buildah's text, BuildKit's trace) into typed progress, the bounded log, the image id, and a build_error naming
// the failed step. run_build (build.hpp) feeds it.
#include <berth/detail/base64.hpp>
#include <berth/engine/buildkit_trace.hpp>
#include <berth/engine/error.hpp>
#include <berth/engine/json.hpp>
#include <berth/engine/json_progress.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>

namespace berth {

// What actually built the image.
enum class build_backend { legacy, buildkit, buildah };

// The text form of a build's progress inside berth (build_options::on_output without the stream).
using build_progress = std::function<void(std::string_view)>;

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
    build_output_reader(build_backend backend, const std::string& endpoint, progress_callback events,
                        build_progress text, std::size_t max_log_bytes)
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
        if (backend_ == build_backend::buildkit && e.kind != progress_kind::step_progress &&
            e.kind != progress_kind::message && (text_ || collect_ || !events_)) {
            auto line = describe(e);
            if (line.empty() || line.back() != '\n') line += '\n';
            write_text(line);
        }
    }

    step_state& step(const std::string& id) {
        auto it = steps_.find(id);
        if (it != steps_.end()) return it->second;
        if (steps_.size() >= max_tracked_steps)
            throw protocol_error(protocol_errc::oversized, endpoint_,
                                 "the build reported more than " + std::to_string(max_tracked_steps) + " steps");
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
        } catch (const buildkit::trace_error& e) { throw protocol_error(endpoint_, e.what()); }
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
        if (slash == std::string_view::npos || colon == std::string_view::npos || slash == 0 || slash > colon)
            return false;
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
        if (starts_with(line, "Successfully built") || starts_with(line, "Successfully tagged") ||
            starts_with(line, "COMMIT"))
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
    std::string failed_step_{};     // BuildKit: the vertex that reported an error
    std::string legacy_step_{};     // legacy/Buildah: the step in progress ("2")
    std::string line_{};            // legacy text: the unfinished line
    std::uint64_t text_total_ = 0;  // all the text output, kept or not
};

}  // namespace detail
}  // namespace berth
