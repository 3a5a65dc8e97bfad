// Image builds: BuildKit and the legacy builder (and Buildah on Podman) against the real engines, the BuildKit
// trace decoder on payloads recorded from dockerd 20.10 (tests/data/buildkit, see its README), the JSON-lines
// progress reader, and what only the mock engine can show (errorDetail without error, bounded output, the builder
// each engine is asked for).
#include "support/engines.hpp"

#include <berth/testing/mock_engine.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <berth/detail/unique_fd.hpp>

#include <chrono>
#include <fcntl.h>
#include <csignal>
#include <optional>
#include <unistd.h>

namespace {

using namespace berth_test;
namespace json = boost::json;
using berth::progress_event;
using berth::progress_kind;
using berth::testing::mock_engine;
using berth::testing::reply;
using verb = boost::beast::http::verb;
using namespace std::chrono_literals;


// ---- recorded payloads ----

std::filesystem::path data_file(const std::string& name) {
    return std::filesystem::path(BERTH_TEST_DATA_DIR) / "buildkit" / name;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
        out.push_back(text.substr(start, nl - start));
    if (start < text.size()) out.push_back(text.substr(start));
    return out;
}

// The base64-decoded StatusResponse payloads of a recorded build stream.
std::vector<std::string> trace_payloads(const std::string& file) {
    std::vector<std::string> out;
    for (auto& line : lines_of(read_file(data_file(file)))) {
        auto v = json::parse(line);
        auto& o = v.as_object();
        if (o.contains("id") && o.at("id") == "moby.buildkit.trace") {
            auto payload = berth::detail::base64_decode(std::string_view(o.at("aux").as_string()));
            REQUIRE(payload.has_value());
            out.push_back(*payload);
        }
    }
    REQUIRE_FALSE(out.empty());
    return out;
}

struct decoded_build {
    std::map<std::string, berth::buildkit::vertex> vertexes;  // by digest, the last state reported
    std::vector<berth::buildkit::vertex_log> logs;
    std::size_t statuses = 0;
    const berth::buildkit::vertex* named(std::string_view part) const {
        for (auto& [d, v] : vertexes)
            if (contains(v.name, part)) return &v;
        return nullptr;
    }
    std::string log_of(const berth::buildkit::vertex* v) const {
        std::string out;
        for (auto& l : logs)
            if (v && l.vertex == v->digest) out += l.msg;
        return out;
    }
};

decoded_build decode_recorded(const std::string& file) {
    decoded_build out;
    for (auto& p : trace_payloads(file)) {
        auto s = berth::buildkit::decode_status_response(p);
        for (auto& v : s.vertexes) out.vertexes[v.digest] = v;
        out.logs.insert(out.logs.end(), s.logs.begin(), s.logs.end());
        out.statuses += s.statuses.size();
    }
    return out;
}

// ---- hand-made protobuf ----

std::string varint(std::uint64_t v) {
    std::string out;
    do {
        std::uint8_t b = v & 0x7F;
        v >>= 7;
        if (v) b |= 0x80;
        out += static_cast<char>(b);
    } while (v);
    return out;
}
std::string field_bytes(unsigned number, std::string_view bytes) {
    return varint(number << 3 | 2) + varint(bytes.size()) + std::string(bytes);
}
std::string field_varint(unsigned number, std::uint64_t v) { return varint(number << 3) + varint(v); }

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("BuildKit trace payloads recorded from dockerd decode to their steps, logs and statuses") {
    auto b = decode_recorded("build-ok.jsonl");
    auto* run_cache = b.named("RUN --mount=type=cache,target=/cache");
    REQUIRE(run_cache != nullptr);
    CHECK(run_cache->digest.starts_with("sha256:"));
    CHECK(run_cache->name.starts_with("[base 2/4] RUN --mount=type=cache"));
    CHECK(run_cache->started.has_value());
    CHECK(run_cache->completed.has_value());
    CHECK_FALSE(run_cache->cached);
    CHECK(run_cache->error.empty());
    CHECK(run_cache->inputs.size() == 1);
    CHECK(contains(b.log_of(run_cache), "cache run hi"));
    auto* copy = b.named("COPY --chmod=755 a.txt /a.txt");
    REQUIRE(copy != nullptr);
    CHECK(copy->completed.has_value());
    CHECK(contains(b.log_of(b.named("RUN ls -l /a.txt")), "-rwxr-xr-x"));
    CHECK(b.named("RUN echo final") == nullptr);  // --target base: the final stage is not built
    CHECK(b.statuses > 0);                        // exporting layers, writing image, naming
    auto* started = run_cache->started ? &*run_cache->started : nullptr;
    REQUIRE(started != nullptr);
    CHECK(started->seconds > 1'600'000'000);
    CHECK(*run_cache->completed != berth::buildkit::timestamp{});
}

TEST_CASE("a recorded cached rebuild reports its steps as cached") {
    auto b = decode_recorded("build-cached.jsonl");
    for (auto part : {"RUN --mount=type=cache", "COPY --chmod", "RUN ls -l /a.txt"}) {
        CAPTURE(part);
        auto* v = b.named(part);
        REQUIRE(v != nullptr);
        CHECK(v->cached);
    }
}

TEST_CASE("a recorded failed build names the failing step with its error and its stdout and stderr") {
    auto b = decode_recorded("build-failed.jsonl");
    auto* v = b.named("RUN echo before-fail");
    REQUIRE(v != nullptr);
    CHECK(contains(v->error, "exit code: 3"));
    bool out = false, err = false;
    for (auto& l : b.logs) {
        if (l.vertex != v->digest) continue;
        out = out || (l.stream == 1 && contains(l.msg, "before-fail"));
        err = err || (l.stream == 2 && contains(l.msg, "to-stderr"));
    }
    CHECK(out);
    CHECK(err);
}

TEST_CASE("every truncation of a recorded payload decodes or is a trace_error, never a crash") {
    std::size_t refused = 0, total = 0;
    for (auto& file : {"build-ok.jsonl", "build-failed.jsonl"})
        for (auto& p : trace_payloads(file))
            for (std::size_t n = 0; n < p.size(); ++n) {
                ++total;
                try {
                    berth::buildkit::decode_status_response(std::string_view(p).substr(0, n));
                } catch (const berth::buildkit::trace_error& e) {
                    ++refused;
                    CHECK(e.offset() <= n);
                }
            }
    CHECK(refused > total / 2);  // most cuts fall inside a field
}

TEST_CASE("every one-byte corruption of a recorded payload decodes or is a trace_error") {
    std::size_t refused = 0;
    auto payloads = trace_payloads("build-failed.jsonl");
    for (auto& p : payloads)
        for (std::size_t i = 0; i < p.size(); ++i)
            for (unsigned char x : {0x00, 0xFF, 0x80, 0x07, 0x0B}) {
                std::string bad = p;
                bad[i] = static_cast<char>(x);
                try {
                    berth::buildkit::decode_status_response(bad);
                } catch (const berth::buildkit::trace_error&) { ++refused; }
            }
    CHECK(refused > 0);
}

TEST_CASE("malformed trace payloads are trace_errors naming the offset") {
    using berth::buildkit::decode_status_response;
    using berth::buildkit::trace_error;
    // a length that runs past the end
    CHECK_THROWS_AS(decode_status_response(varint(1 << 3 | 2) + varint(1000) + "abc"), trace_error);
    // a length near 2^64 (no overflow of the bounds check)
    CHECK_THROWS_AS(decode_status_response(varint(1 << 3 | 2) + varint(~std::uint64_t{0})), trace_error);
    // an 11-byte varint
    CHECK_THROWS_AS(decode_status_response(std::string(10, '\xff') + "\x01"), trace_error);
    // the group wire types, field number 0
    CHECK_THROWS_AS(decode_status_response(varint(5 << 3 | 3)), trace_error);
    CHECK_THROWS_AS(decode_status_response(varint(0 << 3 | 0) + varint(1)), trace_error);
    // a known field with the wrong wire type (vertex.name as a varint)
    CHECK_THROWS_AS(decode_status_response(field_bytes(1, field_varint(3, 7))), trace_error);
    // a bad vertex inside a good response: the offset points into the nested message
    std::string good = field_bytes(1, field_bytes(1, "sha256:aa"));
    try {
        decode_status_response(good + field_bytes(1, varint(3 << 3 | 2) + varint(50)));
        FAIL("accepted");
    } catch (const trace_error& e) {
        CHECK(e.offset() > good.size());
        CHECK(contains(e.what(), "runs past the end"));
    }
}

TEST_CASE("unknown trace fields are skipped, known ones kept") {
    std::string vertex = field_bytes(1, "sha256:aa") + field_varint(50, 9) + field_bytes(3, "[1/2] RUN x") +
                         field_varint(4, 1) + varint(60 << 3 | 5) + "abcd" + varint(61 << 3 | 1) + "12345678" +
                         field_bytes(5, field_varint(1, 1700000000) + field_varint(2, 5) + field_varint(9, 1)) +
                         field_bytes(8, field_bytes(1, "group"));  // progressGroup: not decoded
    std::string log = field_bytes(1, "sha256:aa") + field_varint(3, 2) + field_bytes(4, "oops\n");
    std::string status = field_bytes(1, "id1") + field_bytes(2, "sha256:aa") + field_varint(4, 5) + field_varint(5, 10);
    auto s = berth::buildkit::decode_status_response(field_varint(99, 1) + field_bytes(1, vertex) +
                                                     field_bytes(2, status) + field_bytes(3, log) +
                                                     field_bytes(77, "future"));
    REQUIRE(s.vertexes.size() == 1);
    CHECK(s.vertexes[0].digest == "sha256:aa");
    CHECK(s.vertexes[0].name == "[1/2] RUN x");
    CHECK(s.vertexes[0].cached);
    REQUIRE(s.vertexes[0].started.has_value());
    CHECK(s.vertexes[0].started->seconds == 1700000000);
    CHECK(s.vertexes[0].started->nanos == 5);
    REQUIRE(s.statuses.size() == 1);
    CHECK(s.statuses[0].current == 5);
    CHECK(s.statuses[0].total == 10);
    REQUIRE(s.logs.size() == 1);
    CHECK(s.logs[0].stream == 2);
    CHECK(s.logs[0].msg == "oops\n");
    CHECK(berth::buildkit::decode_status_response("").vertexes.empty());
}

TEST_CASE("progress messages: stream, status with progressDetail, aux, and errors with errorDetail alone") {
    berth::progress_message m;
    berth::parse_progress_message(R"({"status":"Downloading","id":"a1","progressDetail":{"current":5,"total":9}})", "E",
                                  m);
    CHECK(m.status == "Downloading");
    CHECK(m.id == "a1");
    CHECK(m.current == 5);
    CHECK(m.total == 9);
    CHECK_FALSE(m.failed);
    berth::parse_progress_message(R"({"aux":{"ID":"sha256:1"}})", "E", m);
    REQUIRE(m.aux != nullptr);
    CHECK(m.aux->is_object());
    CHECK_FALSE(m.current.has_value());
    berth::parse_progress_message(R"({"errorDetail":{"code":3,"message":"step failed"}})", "E", m);
    CHECK(m.failed);
    CHECK(m.error == "step failed");
    CHECK(m.error_code == 3);
    berth::parse_progress_message(R"({"error":"plain"})", "E", m);
    CHECK(m.failed);
    CHECK(m.error == "plain");
    berth::parse_progress_message(R"({"errorDetail":{}})", "E", m);
    CHECK(m.failed);
    CHECK_FALSE(m.error.empty());
    CHECK_THROWS_AS(berth::parse_progress_message(R"({"errorDetail":"x"})", "E", m), berth::protocol_error);
    CHECK_THROWS_AS(berth::parse_progress_message(R"({"stream":5})", "E", m), berth::protocol_error);
    CHECK_THROWS_AS(berth::parse_progress_message(R"([1])", "E", m), berth::protocol_error);
}

TEST_CASE("the JSON-lines splitter joins lines across pieces and refuses a line over its bound") {
    berth::json_lines_splitter s(10);
    std::vector<std::string> got;
    auto on = [&](std::string_view l) { got.emplace_back(l); };
    s.feed("ab", "E", on);
    s.feed("c\n\nde\r\n", "E", on);
    s.feed("fg", "E", on);
    s.finish(on);
    CHECK(got == std::vector<std::string>{"abc", "de\r", "fg"});
    berth::json_lines_splitter tight(4);
    tight.feed("abc", "E", on);
    CHECK_THROWS_AS(tight.feed("de\n", "E", on), berth::protocol_error);
}

}  // TEST_SUITE("unit")

// ------------------------------------------------------------------------------------------------------------
// The mock engine: what a real engine cannot be made to send
// ------------------------------------------------------------------------------------------------------------

namespace {

struct mock_fixture {
    asio::io_context ioc;
    mock_engine engine{ioc.get_executor()};
    berth::basic_client<mock_engine> client{engine};

    // run_on_mock with this suite's time limit.
    template <class T>
    T run(asio::awaitable<T> op) {
        return run_on_mock(ioc, std::move(op), 20s);
    }
    berth::built_image build(berth::build_options options, berth::progress_callback events = {}) {
        std::string context = "ctx";
        berth::http::memory_source source{context};
        options.on_progress = std::move(events);
        return run(client.images().build(source, std::move(options)));
    }
};

std::string jsonl(std::initializer_list<std::string_view> lines) {
    std::string out;
    for (auto l : lines) (out += l) += '\n';
    return out;
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("a build stream with errorDetail and no error field is a failed build (issue 13, item 5)") {
    mock_fixture f;
    f.engine.on(
        verb::post, "/build",
        reply::chunked(200,
                       {jsonl({R"({"stream":"Step 1/2 : FROM scratch\n"})", R"({"stream":"Step 2/2 : RUN false\n"})",
                               R"({"stream":"partial output\n"})",
                               R"({"errorDetail":{"code":1,"message":"The command returned a non-zero code: 1"}})",
                               R"({"aux":{"ID":"sha256:feed"}})"})},
                       "application/json"));
    berth::build_options options;
    options.builder = berth::builder::legacy;
    try {
        f.build(options);
        FAIL("the build was reported as a success");
    } catch (const berth::build_error& e) {
        CHECK(e.code() == berth::engine_errc::build_failed);
        CHECK(e.message() == "The command returned a non-zero code: 1");
        CHECK(e.detail_code() == 1);
        CHECK(e.step() == "RUN false");
        CHECK(contains(e.step_log(), "partial output"));
    }
}

TEST_CASE(
    "build output kept without a callback is bounded, and the result says how much was dropped (issue 13, item 6)") {
    mock_fixture f;
    // 6 MiB of output in 4 KiB lines, 64 KiB per chunk
    const std::string line_text(4095, 'x');
    const std::string line = R"({"stream":")" + line_text +
                             R"(\n"})"
                             "\n";
    std::vector<std::string> chunks;
    std::uint64_t total = 0;
    for (int c = 0; c < 96; ++c) {
        std::string chunk;
        for (int i = 0; i < 16; ++i) chunk += line;
        total += 16 * 4096;
        chunks.push_back(std::move(chunk));
    }
    chunks.push_back(jsonl({R"({"stream":"the last line\n"})", R"({"aux":{"ID":"sha256:big"}})"}));
    total += 14;
    f.engine.on(verb::post, "/build", reply::chunked(200, chunks, "application/json"));

    berth::build_options options;
    options.builder = berth::builder::legacy;
    options.max_log_bytes = 64 * 1024;
    auto image = f.build(options);
    CHECK(image.id == "sha256:big");
    CHECK(image.log.size() == 64 * 1024);
    CHECK(image.log.ends_with("the last line\n"));
    CHECK(image.log_bytes_dropped == total - 64 * 1024);

    // with a callback nothing is collected; the callback had it all
    std::uint64_t seen = 0;
    auto streamed = f.build(options, [&](const progress_event& e) {
        if (e.kind == progress_kind::message || e.kind == progress_kind::step_log) seen += e.text.size();
    });
    CHECK(streamed.log.empty());
    CHECK(streamed.log_bytes_dropped == total);
    CHECK(seen == total);
}

TEST_CASE("a recorded BuildKit stream becomes step events, and its failure a build_error with the step's own lines") {
    mock_fixture f;
    f.engine.on(verb::post, "/build",
                reply::chunked(200, {read_file(data_file("build-ok.jsonl"))}, "application/json"));
    std::vector<progress_event> events;
    berth::build_options options;
    options.tag = "h5-recorded";
    auto image = f.build(options, [&](const progress_event& e) { events.push_back(e); });
    CHECK(image.backend == berth::build_backend::buildkit);
    CHECK(image.id.starts_with("sha256:"));
    auto sent = f.engine.requests_to(verb::post, "/build").at(0);
    CHECK(sent.query("version") == "2");
    CHECK(sent.query("networkmode") == "none");  // the mock has no bridge network
    auto count = [&](progress_kind k, std::string_view name) {
        return std::count_if(events.begin(), events.end(),
                             [&](auto& e) { return e.kind == k && contains(e.name, name); });
    };
    CHECK(count(progress_kind::step_started, "[base 2/4] RUN --mount=type=cache") == 1);
    CHECK(count(progress_kind::step_completed, "[base 2/4] RUN --mount=type=cache") == 1);
    CHECK(count(progress_kind::step_started, "COPY --chmod") == 1);
    bool logged = false;
    for (auto& e : events) logged = logged || (e.kind == progress_kind::step_log && contains(e.text, "cache run hi"));
    CHECK(logged);

    mock_fixture g;
    g.engine.on(verb::post, "/build",
                reply::chunked(200, {read_file(data_file("build-failed.jsonl"))}, "application/json"));
    std::vector<progress_event> failed_events;
    try {
        g.build(berth::build_options{}, [&](const progress_event& e) { failed_events.push_back(e); });
        FAIL("the failed build succeeded");
    } catch (const berth::build_error& e) {
        CHECK(contains(e.message(), "exit code: 3"));
        CHECK(contains(e.step(), "RUN echo before-fail"));
        CHECK(contains(e.step_log(), "before-fail"));
        CHECK(contains(e.step_log(), "to-stderr"));
    }
    CHECK(std::count_if(failed_events.begin(), failed_events.end(),
                        [](auto& e) { return e.kind == progress_kind::step_failed; }) == 1);

    mock_fixture h;  // without a callback the events are in the log, as --progress=plain shows them
    h.engine.on(verb::post, "/build",
                reply::chunked(200, {read_file(data_file("build-cached.jsonl"))}, "application/json"));
    auto cached = h.build(berth::build_options{});
    CHECK(contains(cached.log, "CACHED [base 2/4] RUN --mount=type=cache"));
}

TEST_CASE("a corrupted BuildKit trace in the stream is a protocol_error, not a crash") {
    mock_fixture f;
    f.engine.on(
        verb::post, "/build",
        reply::chunked(200,
                       {jsonl({R"({"id":"moby.buildkit.trace","aux":"CgUKAWE="})",  // vertex: length past the end
                               R"({"aux":{"ID":"sha256:1"}})"})},
                       "application/json"));
    CHECK_THROWS_AS(f.build(berth::build_options{}), berth::protocol_error);
    mock_fixture g;
    g.engine.on(
        verb::post, "/build",
        reply::chunked(200, {jsonl({R"({"id":"moby.buildkit.trace","aux":"not base64!"})"})}, "application/json"));
    CHECK_THROWS_AS(g.build(berth::build_options{}), berth::protocol_error);
}

TEST_CASE(
    "the builder asked for: BuildKit by default on Docker, legacy when /_ping says 1 or when asked, Buildah on Podman") {
    const std::string ok = jsonl({R"({"aux":{"ID":"sha256:1"}})"});
    {
        mock_fixture f;
        f.engine.on(verb::post, "/build", reply::chunked(200, {ok}, "application/json"));
        f.engine.on(verb::get, "/networks/bridge", reply::json(200, R"({"Name":"bridge"})"));
        auto image = f.build(berth::build_options{});
        CHECK(image.backend == berth::build_backend::buildkit);
        auto sent = f.engine.requests_to(verb::post, "/build").at(0);
        CHECK(sent.query("version") == "2");
        CHECK_FALSE(sent.query("networkmode").has_value());  // the engine has its bridge: its default is kept
        CHECK(sent.query("pull") == "0");
    }
    {
        mock_fixture f;
        f.engine.on(verb::post, "/build", reply::chunked(200, {ok}, "application/json"));
        auto pong = reply::text(200, "OK");
        pong.header("Builder-Version", "1");
        f.engine.on(verb::get, "/_ping", pong);
        auto image = f.build(berth::build_options{});
        CHECK(image.backend == berth::build_backend::legacy);
        CHECK_FALSE(f.engine.requests_to(verb::post, "/build").at(0).query("version").has_value());
    }
    {
        mock_fixture f;
        f.engine.on(verb::post, "/build", reply::chunked(200, {ok}, "application/json"));
        berth::build_options options;
        options.builder = berth::builder::legacy;
        options.target = "base";
        options.platform = "linux/amd64";
        options.cache_from = {"app:1"};
        CHECK(f.build(options).backend == berth::build_backend::legacy);
        auto sent = f.engine.requests_to(verb::post, "/build").at(0);
        CHECK_FALSE(sent.query("version").has_value());
        CHECK(sent.query("target") == "base");
        CHECK(sent.query("platform") == "linux/amd64");
        CHECK(sent.query("cachefrom") == R"(["app:1"])");
        CHECK(f.engine.requests_to(verb::get, "/_ping").empty());  // nothing to detect
    }
    {
        mock_fixture f;
        f.engine.answer_as_podman();
        f.engine.on(verb::post, "/build", reply::chunked(200, {ok}, "application/json"));
        berth::build_options options;
        options.builder = berth::builder::buildkit;
        CHECK(f.build(options).backend == berth::build_backend::buildah);
        CHECK_FALSE(f.engine.requests_to(verb::post, "/build").at(0).query("version").has_value());
    }
}

TEST_CASE("legacy and Buildah text becomes step events: started, cached, completed, the step's own output") {
    mock_fixture f;
    f.engine.answer_as_podman();
    f.engine.on(verb::post, "/build",
                reply::chunked(
                    200,
                    {jsonl({R"({"stream":"STEP 1/3: FROM base\n"})", R"({"stream":"STEP 2/3: RUN echo a\n"})",
                            R"({"stream":"--\u003e Using cache 8768fc\n"})", R"({"stream":"--\u003e 8768fc5edf6\n"})",
                            R"({"stream":"STEP 3/3: RUN echo b"})", R"({"stream":"\n"})", R"({"stream":"b\n"})",
                            R"({"stream":"COMMIT x\n"})", R"({"stream":"--\u003e 2863e0cffd5\n"})",
                            R"({"stream":"2863e0cffd51\n"})", R"({"aux":{"ID":"sha256:2863"}})"})},
                    "application/json"));
    std::vector<std::string> seen;
    auto image = f.build(berth::build_options{}, [&](const progress_event& e) {
        if (e.kind != progress_kind::message) seen.push_back(berth::describe(e));
    });
    CHECK(image.id == "sha256:2863");
    CHECK(seen == std::vector<std::string>{"#1 FROM base", "#1 DONE FROM base", "#2 RUN echo a", "#2 CACHED RUN echo a",
                                           "#3 RUN echo b", "#3 b\n", "#3 DONE RUN echo b"});
}

}  // TEST_SUITE("unit")

// ------------------------------------------------------------------------------------------------------------
// Real engines
// ------------------------------------------------------------------------------------------------------------

namespace {

// Removes an image by name at scope exit, whatever the test did.
struct image_guard {
    std::string address, name;
    static asio::awaitable<void> remove(std::string address, std::string name) {
        auto c = berth::client::at(co_await asio::this_coro::executor, address);
        co_await c.images().remove(name, {.force = true});
    }
    ~image_guard() {
        try {
            run_to_completion(remove(address, name));
        } catch (const std::exception&) {}
    }
};

struct recorded_events {
    std::vector<progress_event> all;
    void operator()(const progress_event& e) { all.push_back(e); }
    long count(progress_kind k, std::string_view name_part) const {
        return std::count_if(all.begin(), all.end(),
                             [&](auto& e) { return e.kind == k && contains(e.name, name_part); });
    }
    std::string log_of(std::string_view name_part) const {
        std::string out;
        for (auto& e : all)
            if (e.kind == progress_kind::step_log && contains(e.name, name_part)) out += e.text;
        return out;
    }
};

// BuildKit syntax: a cache mount shared by two steps, COPY --chmod, a build argument, and a final stage that
// fails, so only a build honouring --target succeeds.
constexpr std::string_view buildkit_dockerfile =
    "FROM berth-busybox AS base\n"
    "ARG GREETING=unset\n"
    "RUN --mount=type=cache,target=/cache,id=berth-h5 echo \"greeting=$GREETING\" && touch /cache/written-$GREETING\n"
    "RUN --mount=type=cache,target=/cache,id=berth-h5 test -f /cache/written-$GREETING && echo cache-shared\n"
    "COPY --chmod=750 tool.sh /tool.sh\n"
    "RUN test \"$(stat -c %a /tool.sh)\" = 750 && /tool.sh\n"
    "FROM base AS final\n"
    "RUN echo the final stage must not be built && exit 9\n";

void write_buildkit_context(const std::filesystem::path& dir) {
    write_file(dir / "Dockerfile", buildkit_dockerfile);
    write_file(dir / "tool.sh", "#!/bin/sh\necho tool-ran\n");
    std::filesystem::permissions(dir / "tool.sh",
                                 std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

asio::awaitable<void> buildkit_syntax(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    temp_dir ctx;
    write_buildkit_context(ctx.path);
    const auto tag = unique_name("h5-bk");
    image_guard guard{e.address, tag};
    const auto greeting = unique_name("hi");  // unique: the cache mount must be shared within this build
    berth::build_options options;
    options.tag = tag;
    options.target = "base";
    options.build_args = {{"GREETING", greeting}};
    options.network_mode = "none";
    options.labels = {{"berth.test", "h5"}};
    options.no_cache = true;                   // every step runs, so its output is there to check
    options.force_remove_intermediate = true;  // the failing build below leaves no container (Buildah's included)
    recorded_events events;
    berth::tar::packer packer(ctx.path, "");
    options.on_progress = std::ref(events);
    auto image = co_await c.images().build(packer, options);
    CHECK(image.id.starts_with("sha256:"));
    CHECK(image.backend == (e.name == "podman" ? berth::build_backend::buildah : berth::build_backend::buildkit));
    CHECK(contains(events.log_of("RUN --mount=type=cache"), "greeting=" + greeting));
    CHECK(contains(events.log_of("test -f /cache/written-"), "cache-shared"));
    CHECK(contains(events.log_of("stat -c %a /tool.sh"), "tool-ran"));
    CHECK(events.count(progress_kind::step_started, "COPY --chmod=750") == 1);
    CHECK(events.count(progress_kind::step_completed, "COPY --chmod=750") == 1);
    CHECK(events.count(progress_kind::step_started, "the final stage") == 0);
    CHECK(events.count(progress_kind::step_failed, "") == 0);
    auto info = co_await c.images().inspect(tag);
    CHECK(info.id == image.id);
    auto* config = info.raw.if_contains("Config");
    REQUIRE(config != nullptr);
    CHECK(config->at("Labels").at("berth.test") == "h5");

    // the same context without --target reaches the failing final stage
    berth::tar::packer again(ctx.path, "");
    berth::build_options whole = options;
    whole.target.clear();
    whole.tag = tag + "-whole";
    CHECK_THROWS_AS(co_await c.images().build(again, whole), berth::build_error);
}

asio::awaitable<void> failing_step(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    temp_dir ctx;
    write_file(
        ctx / "Dockerfile",
        "FROM berth-busybox\nRUN echo fine\nRUN echo before-fail && echo to-stderr >&2 && exit 3\nRUN echo never\n");
    for (auto builder : {berth::builder::automatic, berth::builder::legacy}) {
        CAPTURE(static_cast<int>(builder));
        berth::build_options options;
        options.tag = unique_name("h5-fail");
        options.builder = builder;
        options.network_mode = "none";
        options.no_cache = true;
        options.force_remove_intermediate = true;
        recorded_events events;
        berth::tar::packer packer(ctx.path, "");
        options.on_progress = std::ref(events);
        try {
            co_await c.images().build(packer, options);
            FAIL("a failing build succeeded");
        } catch (const berth::build_error& err) {
            CHECK(err.code() == berth::engine_errc::build_failed);
            CHECK(contains(err.message(), "3"));
            CHECK(contains(err.step(), "echo before-fail"));
            CHECK(contains(err.step_log(), "before-fail"));
            CHECK(contains(err.step_log(), "to-stderr"));
            CHECK_FALSE(contains(err.step_log(), "fine"));  // the failed step's own lines, not the build's
        }
        CHECK(events.count(progress_kind::step_failed, "echo before-fail") == 1);
        CHECK(events.count(progress_kind::step_completed, "RUN echo fine") == 1);
        CHECK(events.count(progress_kind::step_started, "echo never") == 0);
        CHECK_FALSE(co_await c.images().exists(options.tag));
    }
}

asio::awaitable<void> cached_rebuild(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    temp_dir ctx;
    const auto marker = unique_name("cached");
    write_file(ctx / "Dockerfile", "FROM berth-busybox\nRUN echo " + marker + " > /m\nCOPY data.txt /data.txt\n");
    write_file(ctx / "data.txt", "data\n");
    const auto tag = unique_name("h5-cache");
    image_guard guard{e.address, tag};
    berth::build_options options;
    options.tag = tag;
    options.network_mode = "none";
    recorded_events first, second;
    berth::tar::packer p1(ctx.path, "");
    options.on_progress = std::ref(first);
    auto a = co_await c.images().build(p1, options);
    CHECK(first.count(progress_kind::step_cached, "RUN echo " + marker) == 0);
    CHECK(first.count(progress_kind::step_completed, "RUN echo " + marker) == 1);
    berth::tar::packer p2(ctx.path, "");
    options.on_progress = std::ref(second);
    auto b = co_await c.images().build(p2, options);
    CHECK(a.id == b.id);
    CHECK(second.count(progress_kind::step_cached, "RUN echo " + marker) == 1);
    CHECK(second.count(progress_kind::step_cached, "COPY data.txt") == 1);
    CHECK(second.count(progress_kind::step_completed, "RUN echo " + marker) == 0);
    CHECK(second.log_of("RUN echo").empty());
}

// The processes whose command line holds `marker` (a build step's shell), seen through /proc: the engines run on
// this host.
std::vector<int> processes_with(const std::string& marker) {
    std::vector<int> found;
    for (auto& entry : std::filesystem::directory_iterator("/proc")) {
        auto name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        // read with POSIX calls: a process may exit while it is read, which iostreams turn into exceptions
        berth::detail::unique_fd fd(::open((entry.path() / "cmdline").c_str(), O_RDONLY | O_CLOEXEC));
        if (fd.get() < 0) continue;
        std::string cmdline(4096, '\0');
        auto got = ::read(fd.get(), cmdline.data(), cmdline.size());
        cmdline.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
        std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
        if (contains(cmdline, marker) && !contains(cmdline, "berth-engine-tests")) found.push_back(std::stoi(name));
    }
    return found;
}

// Waits until no process holds `marker`, or `limit` passes (a bound, so the test cannot hang); true when none.
asio::awaitable<bool> processes_gone(const std::string& marker, std::chrono::seconds limit) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!processes_with(marker).empty() && std::chrono::steady_clock::now() < deadline) {
        t.expires_after(200ms);
        co_await t.async_wait(asio::use_awaitable);
    }
    co_return processes_with(marker).empty();
}

// Step 1 prints "started" and sleeps; step 2 would sleep for an hour. The build is cancelled as soon as step 1's
// output arrives. Docker stops the running step at once. Podman 4.3 (Buildah) lets a running RUN step finish but
// runs no further step, so there step 1 sleeps only a few seconds.
asio::awaitable<void> cancelled_build(const engine_under_test& e) {
    auto ex = co_await asio::this_coro::executor;
    auto c = berth::client::at(ex, e.address);
    co_await ensure_base_image(c);
    const bool podman = e.name == "podman";
    std::vector<berth::builder> builders{berth::builder::automatic};
    if (!podman) builders.push_back(berth::builder::legacy);  // Podman builds with Buildah either way
    for (auto builder : builders) {
        CAPTURE(static_cast<int>(builder));
        temp_dir ctx;
        const auto step1 = unique_name("h5-cancel-step1");
        const auto step2 = unique_name("h5-cancel-step2");
        write_file(ctx / "Dockerfile", "FROM berth-busybox\nRUN echo started && sleep " +
                                           std::string(podman ? "6" : "3600") + " && echo " + step1 + "\nRUN echo " +
                                           step2 + " && sleep 3600\n");
        berth::build_options options;
        options.tag = unique_name("h5-cancel");
        options.builder = builder;
        options.no_cache = true;
        options.network_mode = "none";
        options.force_remove_intermediate = true;
        asio::cancellation_signal cancel;
        std::size_t running_when_cancelled = 0;
        options.on_progress = [&](const progress_event& ev) {
            // Step 1 runs once its output arrives: note its process, then cancel (posted, so the signal reaches the
            // build while it waits for the engine).
            if (ev.kind == progress_kind::step_log && contains(ev.text, "started") && running_when_cancelled == 0) {
                running_when_cancelled = processes_with(step1).size();
                asio::post(ex, [&cancel] { cancel.emit(asio::cancellation_type::terminal); });
            }
        };
        berth::tar::packer packer(ctx.path, "");
        std::exception_ptr outcome;
        asio::steady_timer done(ex, std::chrono::steady_clock::time_point::max());
        asio::co_spawn(ex, c.images().build(packer, options),
                       asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr ep, berth::built_image) {
                           outcome = ep;
                           done.cancel();
                       }));
        co_await done.async_wait(asio::as_tuple(asio::use_awaitable));
        REQUIRE(outcome);
        try {
            std::rethrow_exception(outcome);
        } catch (const boost::system::system_error& err) { CHECK(err.code() == asio::error::operation_aborted); }
        CHECK(running_when_cancelled >= 1);  // the checks below can see a step's process
        CHECK(co_await processes_gone(step1, 120s));
        // Had the build gone on, step 2 would have started right after step 1 and would hold its process for an
        // hour: watch for it for a while after step 1 ended (both engines start the next step within a second).
        CHECK(co_await processes_gone(step2, 0s));
        asio::steady_timer watch(ex);
        for (int i = 0; i < 20 && processes_with(step2).empty(); ++i) {
            watch.expires_after(200ms);
            co_await watch.async_wait(asio::use_awaitable);
        }
        auto leftover = processes_with(step2);
        CHECK(leftover.empty());
        for (int pid : leftover) ::kill(pid, SIGKILL);  // this test's own process, should the check fail
        CHECK_FALSE(co_await c.images().exists(options.tag));
    }
}

}  // namespace

TEST_SUITE("engine") {
TEST_CASE("BuildKit syntax builds on both engines: cache mounts, COPY --chmod, --target, build args, labels") {
    for_each_engine(buildkit_syntax);
}
TEST_CASE("a failing RUN step's error and its own output reach the caller, with BuildKit and the legacy builder") {
    for_each_engine(failing_step);
}
TEST_CASE("a rebuild reports its steps as cached") { for_each_engine(cached_rebuild); }
TEST_CASE("a cancelled build leaves no build step running on the engine") { for_each_engine(cancelled_build); }
}  // TEST_SUITE("engine")
