// Streams against the mock engine: build progress, the demultiplexing of logs and exec output, and Podman's exec
// streams.
#include "support/mock_fixture.hpp"

using namespace mock_test;

TEST_SUITE("mock engine: progress and output streams") {

// ------------------------------------------------------------------------------------------------------------
// Build progress
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("build progress lines reach the callback, lines split across chunks included") {
    fixture f;
    f.engine.on(verb::post, "/build",
                reply::chunked(200,
                               {R"({"stream":"Step 1/2 : FROM scratch\n"})"
                                "\n"
                                R"({"stream":" ---> Running)",
                                R"( in 1f\n"})"
                                "\n",
                                R"({"aux":{"ID":"sha256:0d0e"}})"
                                "\n"
                                R"({"stream":"Successfully built 0d0e\n"})"},
                               "application/json"));
    std::string context = "ctx";
    berth::http::memory_source source{context};
    std::vector<std::string> lines;
    berth::build_options options;
    options.on_output = [&](berth::output_stream, std::string_view line) { lines.emplace_back(line); };
    auto image = run_on_mock(f.ioc, f.client.images().build(source, options));
    CHECK(image.id == "sha256:0d0e");
    CHECK(lines ==
          std::vector<std::string>{"Step 1/2 : FROM scratch\n", " ---> Running in 1f\n", "Successfully built 0d0e\n"});
    CHECK(image.log.empty());  // streamed to the callback, not also kept (issue 13, item 6)
    CHECK(image.log_bytes_dropped == 68);
}

TEST_CASE("build progress arrives while the build is still running") {
    fixture f;
    f.engine.on(verb::post, "/build",
                reply::chunked(200,
                               {R"({"stream":"Step 1/2 : FROM scratch\n"})"
                                "\n"},
                               "application/json")
                    .then_stall());
    std::string context = "ctx";
    berth::http::memory_source source{context};
    std::vector<std::string> lines;
    berth::build_options options;
    options.on_output = [&](berth::output_stream, std::string_view line) { lines.emplace_back(line); };
    auto e = thrown<boost::system::system_error>(
        [&] { run_on_mock(f.ioc, berth::with_timeout(f.client.images().build(source, options), 200ms)); });
    CHECK(e.code() == asio::error::timed_out);
    CHECK(lines == std::vector<std::string>{"Step 1/2 : FROM scratch\n"});
}

TEST_CASE("an error line in the build output is an engine_error with code build_failed") {
    fixture f;
    f.engine.on(
        verb::post, "/build",
        reply::chunked(
            200,
            {R"({"stream":"Step 1/2 : RUN false\n"})"
             "\n",
             R"({"errorDetail":{"code":1,"message":"The command '/bin/sh -c false' returned a non-zero code: 1"},)"
             R"("error":"The command '/bin/sh -c false' returned a non-zero code: 1"})"
             "\n"},
            "application/json"));
    std::string context = "ctx";
    berth::http::memory_source source{context};
    std::vector<std::string> lines;
    berth::build_options options;
    options.on_output = [&](berth::output_stream, std::string_view line) { lines.emplace_back(line); };
    options.tag = "broken";
    auto e = thrown<berth::engine_error>([&] { run_on_mock(f.ioc, f.client.images().build(source, options)); });
    CHECK(e.code() == berth::engine_errc::build_failed);
    CHECK(e.message() == "The command '/bin/sh -c false' returned a non-zero code: 1");
    CHECK(contains(e.endpoint(), "POST /v1.41/build?t=broken"));
    CHECK(lines == std::vector<std::string>{"Step 1/2 : RUN false\n"});
    f.check_recovers(&fixture::plain);
}

TEST_CASE("a build output line that is not JSON is a protocol_error") {
    fixture f;
    f.engine.on(verb::post, "/build",
                reply::chunked(200, {"{\"stream\":\"ok\"}\nthis is not json\n"}, "application/json"));
    std::string context = "ctx";
    berth::http::memory_source source{context};
    berth::build_options options;
    auto e = thrown<berth::protocol_error>([&] { run_on_mock(f.ioc, f.client.images().build(source, options)); });
    CHECK(contains(e.endpoint(), "POST /v1.41/build"));
}

// ------------------------------------------------------------------------------------------------------------
// Logs and exec output: demultiplexing
// ------------------------------------------------------------------------------------------------------------

namespace {
const std::string mixed_stream = exec_frame(out, "hello ") + exec_frame(err, "oops\n") + exec_frame(out, "") +
                                 exec_frame(out, "world\n");

// Collects the output and counts the slices it came in.
struct counting_log {
    berth::collected_output text;
    int calls = 0;
    void operator()(berth::output_stream s, std::string_view data) {
        ++calls;
        text(s, data);
    }
};

berth::collected_output read_logs(fixture& f) {
    berth::collected_output collected;
    berth::container_logs_options to_collected;
    to_collected.on_output = std::ref(collected);
    run_on_mock(f.ioc, f.client.containers().logs("app", to_collected));
    return collected;
}
}  // namespace

TEST_CASE("logs: stdout and stderr are told apart") {
    fixture f;
    f.engine.add_container("app");
    f.engine.on(verb::get, "/containers/app/logs",
                reply::streamed(200, {mixed_stream}, "application/vnd.docker.raw-stream"));
    auto logs = read_logs(f);
    CHECK(logs.stdout_text == "hello world\n");
    CHECK(logs.stderr_text == "oops\n");
    CHECK(logs.merged == "hello oops\nworld\n");
    auto sent = f.engine.requests_to(verb::get, "/containers/app/logs");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].query("stdout") == "1");
    CHECK(sent[0].query("stderr") == "1");
    CHECK(sent[0].query("follow") == "0");
}

TEST_CASE("logs of a container with a tty are raw text") {
    fixture f;
    f.engine.add_container("app", true);
    f.engine.on(verb::get, "/containers/app/logs", reply::streamed(200, {"line 1\r\n", "line 2\r\n"}, "text/plain"));
    auto logs = read_logs(f);
    CHECK(logs.stdout_text == "line 1\r\nline 2\r\n");
    CHECK(logs.stderr_text.empty());
}

TEST_CASE("logs: frames split across reads at every byte position") {
    fixture f;
    f.engine.add_container("app");
    for (std::size_t at = 0; at <= mixed_stream.size(); ++at) {
        CAPTURE(at);
        f.engine.on(
            verb::get, "/containers/app/logs",
            reply::streamed(200, berth::testing::split_at(mixed_stream, {at}), "application/vnd.docker.raw-stream"));
        auto logs = read_logs(f);
        CHECK(logs.stdout_text == "hello world\n");
        CHECK(logs.stderr_text == "oops\n");
    }
    std::vector<std::size_t> every_byte;
    for (std::size_t at = 1; at < mixed_stream.size(); ++at) every_byte.push_back(at);
    f.engine.on(
        verb::get, "/containers/app/logs",
        reply::chunked(200, berth::testing::split_at(mixed_stream, every_byte), "application/vnd.docker.raw-stream"));
    counting_log logs;
    berth::container_logs_options to_logs;
    to_logs.on_output = std::ref(logs);
    run_on_mock(f.ioc, f.client.containers().logs("app", to_logs));
    CHECK(logs.text.merged == "hello oops\nworld\n");
    CHECK(logs.calls > 3);  // the payloads did arrive in several reads, not one per frame
}

TEST_CASE("exec output: frames split across reads at every byte position") {
    fixture f;
    for (std::size_t at = 0; at <= mixed_stream.size(); ++at) {
        CAPTURE(at);
        std::string id = "s" + std::to_string(at);
        f.engine.add_exec("app", id, berth::testing::split_at(mixed_stream, {at}), 0);
        output_log log;
        berth::exec_options options;
        options.on_output = std::ref(log);
        options.cmd = {"run"};
        CHECK(run_on_mock(f.ioc, f.client.execs().run("app", options)) == 0);
        CHECK(log.stdout_text == "hello world\n");
        CHECK(log.stderr_text == "oops\n");
    }
    std::vector<std::size_t> every_byte;
    for (std::size_t at = 1; at < mixed_stream.size(); ++at) every_byte.push_back(at);
    f.engine.add_exec("app", "bytes", berth::testing::split_at(mixed_stream, every_byte), 0);
    counting_log log;
    berth::exec_options options;
    options.on_output = std::ref(log);
    options.cmd = {"run"};
    run_on_mock(f.ioc, f.client.execs().run("app", options));
    CHECK(log.text.stdout_text == "hello world\n");
    CHECK(log.text.stderr_text == "oops\n");
    CHECK(log.calls > 3);  // the payloads did arrive in several reads, not one per frame
}

TEST_CASE("a frame header with a bad stream byte is a protocol_error naming the endpoint") {
    fixture f;
    std::string bad = exec_frame(out, "fine\n") + exec_frame(out, "bad");
    bad[bad.size() - 11] = 7;  // the second frame's stream byte
    SUBCASE("logs") {
        f.engine.add_container("app");
        f.engine.on(verb::get, "/containers/app/logs",
                    reply::streamed(200, {bad}, "application/vnd.docker.raw-stream"));
        auto e = thrown<berth::protocol_error>([&] { read_logs(f); });
        CHECK(contains(e.endpoint(), "GET /v1.41/containers/app/logs?"));
        CHECK(contains(e.what(), "stream byte 7"));
    }
    SUBCASE("exec") {
        f.engine.once(verb::post, "/exec/e1/start", reply::upgrade({bad}));
        auto e = thrown<berth::protocol_error>([&] { f.exec(); });
        CHECK(e.endpoint() == exec_start_endpoint);
        CHECK(contains(e.what(), "stream byte 7"));
        f.check_recovers(&fixture::exec);
    }
}

TEST_CASE("a stream that ends inside a frame is a protocol_error") {
    fixture f;
    std::string cut = exec_frame(out, "complete\n") + exec_frame(err, "incomplete").substr(0, 12);
    SUBCASE("logs, inside a payload") {
        f.engine.add_container("app");
        f.engine.on(verb::get, "/containers/app/logs",
                    reply::streamed(200, {cut}, "application/vnd.docker.raw-stream"));
        auto e = thrown<berth::protocol_error>([&] { read_logs(f); });
        CHECK(contains(e.endpoint(), "GET /v1.41/containers/app/logs?"));
        CHECK(contains(e.what(), "inside a frame"));
    }
    SUBCASE("logs, inside a header") {
        f.engine.add_container("app");
        f.engine.on(verb::get, "/containers/app/logs",
                    reply::streamed(200, {exec_frame(out, "x") + "\x01\0\0"}, "application/vnd.docker.raw-stream"));
        CHECK_THROWS_AS(read_logs(f), berth::protocol_error);
    }
    SUBCASE("exec") {
        f.engine.once(verb::post, "/exec/e1/start", reply::upgrade({cut}));
        output_log log;
        berth::exec_options options;
        options.on_output = std::ref(log);
        options.cmd = {"x"};
        auto e = thrown<berth::protocol_error>([&] { run_on_mock(f.ioc, f.client.execs().run("app", options)); });
        CHECK(e.endpoint() == exec_start_endpoint);
        CHECK(log.stdout_text == "complete\n");
    }
}

TEST_CASE("an exec with a tty streams raw output to stdout") {
    fixture f;
    f.engine.add_exec("app", "t1", {"raw \x01 bytes\r\n"}, 0);
    output_log log;
    berth::exec_options options;
    options.on_output = std::ref(log);
    options.cmd = {"sh"};
    options.tty = true;
    CHECK(run_on_mock(f.ioc, f.client.execs().run("app", options)) == 0);
    CHECK(log.stdout_text == "raw \x01 bytes\r\n");
    auto starts = f.engine.requests_to(verb::post, "/exec/t1/start");
    REQUIRE(starts.size() == 1);
    CHECK(starts[0].json() == json::parse(R"({"Detach":false,"Tty":true})"));
}

TEST_CASE("an exec whose exit code the engine records late is asked again") {
    fixture f;
    f.engine.on_sequence(verb::get, "/exec/e1/json",
                         {mock_engine::exec_state("e1", "app", true, 0), mock_engine::exec_state("e1", "app", true, 0),
                          mock_engine::exec_state("e1", "app", false, 3)});
    f.exec();
    CHECK(f.engine.requests_to(verb::get, "/exec/e1/json").size() == 3);
}

// ------------------------------------------------------------------------------------------------------------
// Podman
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("Podman: an exec whose upgraded stream the engine leaves open finishes once the exec has exited") {
    fixture f;
    f.engine.answer_as_podman();
    f.engine.on(verb::post, "/exec/e1/start",
                reply::upgrade({exec_frame(out, "hello\n"), exec_frame(err, "warning\n")}).then_stall());
    f.engine.on_sequence(
        verb::get, "/exec/e1/json",
        {mock_engine::exec_state("e1", "app", true, 0), mock_engine::exec_state("e1", "app", false, 3)});
    f.exec();
    f.check_no_leak();  // the upgraded connection, left open by the engine, was closed by the client
}

TEST_CASE("Podman: an exec whose stream the engine closes finishes at once") {
    fixture f;
    f.engine.answer_as_podman();
    f.exec();
}

TEST_CASE("Podman: a broken exec stream is an error even though the exec then exits") {
    fixture f;
    f.engine.answer_as_podman();
    std::string bad = exec_frame(out, "fine\n") + exec_frame(out, "bad");
    bad[bad.size() - 11] = 9;
    f.engine.on(verb::post, "/exec/e1/start", reply::upgrade({bad}).then_stall());
    auto e = thrown<berth::protocol_error>([&] { f.exec(); });
    CHECK(e.endpoint() == exec_start_endpoint);
    CHECK(contains(e.what(), "stream byte 9"));
}

// ------------------------------------------------------------------------------------------------------------
// Events: the typed stream, its resume after a drop, malformed and oversized events
// ------------------------------------------------------------------------------------------------------------

namespace {
std::string event_line(std::string_view action, std::string_view id, std::int64_t time_nano) {
    json::object o{{"status", action},
                   {"id", id},
                   {"Type", "container"},
                   {"Action", action},
                   {"Actor", {{"ID", id}, {"Attributes", {{"name", "n-" + std::string(id)}, {"image", "busybox"}}}}},
                   {"scope", "local"},
                   {"time", time_nano / 1000000000},
                   {"timeNano", time_nano}};
    return json::serialize(o) + "\n";
}

// A chunked reply head and these chunks, then the connection closes without the last chunk: a cut stream.
reply cut_events(const std::vector<std::string>& chunks) {
    std::string bytes = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (auto& c : chunks) {
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", c.size());
        bytes += size + c + "\r\n";
    }
    return reply::raw(bytes);
}

const auto t0 = std::chrono::system_clock::time_point(std::chrono::seconds(50));
const auto t_end = std::chrono::system_clock::time_point(std::chrono::seconds(300));

std::vector<berth::engine_event> drain(fixture& f, berth::system_events_options options,
                                       std::size_t* resumes = nullptr) {
    return run_on_mock(f.ioc, [&]() -> asio::awaitable<std::vector<berth::engine_event>> {
        auto stream = co_await f.client.system().events(options);
        std::vector<berth::engine_event> out;
        while (auto e = co_await stream.next()) out.push_back(std::move(*e));
        if (resumes) *resumes = stream.resumes();
        co_return out;
    }());
}

std::vector<std::string> actions_and_ids(const std::vector<berth::engine_event>& events) {
    std::vector<std::string> out;
    for (auto& e : events) out.push_back(e.action + ":" + e.actor_id + "@" + std::to_string(e.time_nano));
    return out;
}
}  // namespace

TEST_CASE("events: typed fields, and the end once until has passed") {
    fixture f;
    f.engine.on(verb::get, "/events",
                reply::chunked(200, {event_line("create", "c1", 100000000005), event_line("start", "c1", 100000000009)},
                               "application/json"));
    auto events = drain(f, {.since = t0, .until = t_end, .filters = {{"type", {"container"}}, {"label", {"a=b"}}}});
    REQUIRE(events.size() == 2);
    CHECK(events[0].type == "container");
    CHECK(events[0].action == "create");
    CHECK(events[0].actor_id == "c1");
    CHECK(events[0].actor_attributes == std::map<std::string, std::string>{{"image", "busybox"}, {"name", "n-c1"}});
    CHECK(events[0].scope == "local");
    CHECK(events[0].time == 100);
    CHECK(events[0].time_nano == 100000000005);
    CHECK(events[1].raw.at("status") == "start");
    auto sent = f.engine.requests_to(verb::get, "/events");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].query("since") == "50.000000000");
    CHECK(sent[0].query("until") == "300.000000000");
    CHECK(json::parse(*sent[0].query("filters")) == json::parse(R"({"label":["a=b"],"type":["container"]})"));
}

TEST_CASE("events: a reply cut mid-line is resumed from the last event's time, without duplicates") {
    fixture f;
    const std::string b = event_line("create", "c2", 100000000007), c = event_line("create", "c3", 100000000007);
    f.engine.on_sequence(verb::get, "/events",
                         {cut_events({event_line("create", "c1", 100000000005), b, c.substr(0, 30)}),
                          reply::chunked(200, {b, c, event_line("destroy", "c1", 100000000008)}, "application/json")});
    std::size_t resumes = 0;
    auto events = drain(f, {.since = t0, .until = t_end}, &resumes);
    CHECK(actions_and_ids(events) == std::vector<std::string>{"create:c1@100000000005", "create:c2@100000000007",
                                                              "create:c3@100000000007", "destroy:c1@100000000008"});
    CHECK(resumes == 1);
    auto sent = f.engine.requests_to(verb::get, "/events");
    REQUIRE(sent.size() == 2);
    CHECK(sent[0].query("since") == "50.000000000");
    CHECK(sent[1].query("since") == "100.000000007");  // the last event's timeNano, at nanosecond precision
    CHECK(sent[1].query("until") == "300.000000000");
}

TEST_CASE("events: the boundary events delivered before a cut are not delivered again") {
    fixture f;
    const std::string b = event_line("create", "c2", 100000000007), c = event_line("create", "c3", 100000000007);
    // the cut falls between two events of the same timeNano: only the first was delivered
    f.engine.on_sequence(verb::get, "/events", {cut_events({b}), reply::chunked(200, {b, c}, "application/json")});
    auto events = drain(f, {.since = t0, .until = t_end});
    CHECK(actions_and_ids(events) == std::vector<std::string>{"create:c2@100000000007", "create:c3@100000000007"});
}

TEST_CASE("events: without resume attempts a drop is the connection_error; a refused resume the engine_error") {
    fixture f;
    f.engine.on(verb::get, "/events", cut_events({event_line("create", "c1", 100000000005)}));
    auto drop = thrown<berth::connection_error>([&] { drain(f, {.since = t0, .resume_attempts = 0}); });
    CHECK(contains(drop.what(), "GET /v1.41/events?since=50.000000000"));

    fixture g;
    g.engine.on_sequence(
        verb::get, "/events",
        {cut_events({event_line("create", "c1", 100000000005)}), reply::error(500, "no events today")});
    auto refused = thrown<berth::engine_error>([&] { drain(g, {.since = t0}); });
    CHECK(refused.message() == "no events today");
    CHECK(g.engine.requests_to(verb::get, "/events").size() == 2);  // not retried after a refusal
}

TEST_CASE("events: an engine that stays away ends the stream after the resume attempts") {
    fixture f;
    f.engine.on_sequence(verb::get, "/events",
                         {cut_events({event_line("create", "c1", 100000000005)}), reply::hang_up()});
    auto e = thrown<berth::connection_error>([&] {
        drain(f, {.since = t0,
                  .resume_attempts = 3,
                  .resume_backoff = std::chrono::milliseconds(1),
                  .resume_backoff_max = std::chrono::milliseconds(2)});
    });
    CHECK(contains(e.what(), "/events?since=100.000000005"));
    CHECK(f.engine.requests_to(verb::get, "/events").size() >= 4);  // the first, then three tries (each may replay)
}

TEST_CASE("events: a malformed event is a protocol_error") {
    for (std::string bad : {std::string("this is not json\n"), std::string("[1,2]\n"),
                            std::string(R"({"Type":"container","Action":7})") + "\n",
                            std::string(R"({"Type":"container","timeNano":"soon"})") + "\n"}) {
        CAPTURE(bad);
        fixture f;
        f.engine.on(verb::get, "/events",
                    reply::chunked(200, {event_line("create", "c1", 100000000005), bad}, "application/json"));
        auto e = thrown<berth::protocol_error>([&] { drain(f, {.since = t0, .until = t_end}); });
        CHECK(e.code() == berth::protocol_errc::malformed);
        CHECK(contains(e.endpoint(), "GET /v1.41/events"));
    }
}

TEST_CASE("events: an oversized line and an event of too many values are protocol_errors") {
    fixture f;
    f.engine.on(verb::get, "/events",
                reply::chunked(200, {"{\"Type\":\"" + std::string(berth::detail::max_event_line_bytes, 'x')},
                               "application/json")
                    .then_stall());
    auto e = thrown<berth::protocol_error>([&] { drain(f, {.since = t0}); });
    CHECK(e.code() == berth::protocol_errc::oversized);

    fixture g;
    std::string many = R"({"Type":"container","Actor":{"Attributes":{)";
    for (std::size_t i = 0; i <= berth::detail::max_event_values; ++i) {
        if (i > 0) many += ',';
        many.append("\"k").append(std::to_string(i)).append("\":\"v\"");  // appends: g++ 12 -O3 -Wrestrict misreads +
    }
    many += "}}}\n";
    g.engine.on(verb::get, "/events", reply::chunked(200, {many}, "application/json"));
    auto values = thrown<berth::protocol_error>([&] { drain(g, {.since = t0, .until = t_end}); });
    CHECK(contains(values.what(), "JSON values"));
}

// ------------------------------------------------------------------------------------------------------------
// Stats: docker stats' arithmetic
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("stats: the Engine API spec's example gives the docker CLI's figures") {
    // The example reply of GET /containers/{id}/stats in the Engine API 1.41 spec.
    const char* example = R"({"read":"2015-01-08T22:57:31.547920715Z","pids_stats":{"current":3},
      "networks":{"eth0":{"rx_bytes":5338,"rx_dropped":0,"rx_errors":0,"rx_packets":36,"tx_bytes":648,"tx_dropped":0,
      "tx_errors":0,"tx_packets":8},"eth5":{"rx_bytes":4641,"rx_dropped":0,"rx_errors":0,"rx_packets":26,
      "tx_bytes":690,"tx_dropped":0,"tx_errors":0,"tx_packets":9}},
      "memory_stats":{"stats":{"total_pgmajfault":0,"cache":0,"mapped_file":0,"total_inactive_file":0,"pgpgout":414,
      "rss":6537216,"total_mapped_file":0,"writeback":0,"unevictable":0,"pgpgin":477,"total_unevictable":0,
      "pgmajfault":0,"total_rss":6537216,"total_rss_huge":6291456,"total_writeback":0,"total_inactive_anon":0,
      "rss_huge":6291456,"hierarchical_memory_limit":67108864,"total_pgfault":964,"total_active_file":0,
      "active_anon":6537216,"total_active_anon":6537216,"total_pgpgout":414,"total_cache":0,"inactive_anon":0,
      "active_file":0,"pgfault":964,"inactive_file":0,"total_pgpgin":477},"max_usage":6651904,"usage":6537216,
      "failcnt":0,"limit":67108864},"blkio_stats":{},
      "cpu_stats":{"cpu_usage":{"percpu_usage":[8646879,24472255,36438778,30657443],"usage_in_usermode":50000000,
      "total_usage":100215355,"usage_in_kernelmode":30000000},"system_cpu_usage":739306590000000,"online_cpus":4,
      "throttling_data":{"periods":0,"throttled_periods":0,"throttled_time":0}},
      "precpu_stats":{"cpu_usage":{"percpu_usage":[8646879,24350896,36438778,30657443],"usage_in_usermode":50000000,
      "total_usage":100093996,"usage_in_kernelmode":30000000},"system_cpu_usage":9492140000000,"online_cpus":4,
      "throttling_data":{"periods":0,"throttled_periods":0,"throttled_time":0}}})";
    fixture f;
    f.engine.on(verb::get, "/containers/app/stats", reply::json(200, example));
    auto s = run_on_mock(f.ioc, f.client.containers().stats("app"));
    CHECK(s.cpu_total_ns == 100215355);
    CHECK(s.pre_cpu_total_ns == 100093996);
    CHECK(s.system_cpu_ns == 739306590000000);
    CHECK(s.pre_system_cpu_ns == 9492140000000);
    CHECK(s.online_cpus == 4);
    // (100215355 - 100093996) / (739306590000000 - 9492140000000) * 4 * 100, as the CLI computes it in doubles
    CHECK(s.cpu_percent == 121359.0 / 729814450000000.0 * 4.0 * 100.0);
    CHECK(s.memory_usage_bytes == 6537216);
    CHECK(s.memory_used_bytes == 6537216);  // total_inactive_file is 0
    CHECK(s.memory_limit_bytes == 67108864);
    CHECK(s.memory_percent == 9.7412109375);  // 6537216 / 2^26 * 100: exact in binary
    CHECK(s.network_rx_bytes == 5338 + 4641);
    CHECK(s.network_tx_bytes == 648 + 690);
    CHECK(s.block_read_bytes == 0);
    CHECK(s.block_write_bytes == 0);
    CHECK(s.pids == 3);
    auto sent = f.engine.requests_to(verb::get, "/containers/app/stats");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].query("stream") == "false");
    CHECK(sent[0].query("one-shot") == "true");
}

TEST_CASE("stats: cgroup v2 memory, block I/O, CPUs from percpu_usage, and the one-shot gate") {
    const char* sample = R"({"cpu_stats":{"cpu_usage":{"total_usage":3000,"percpu_usage":[1,2]},
      "system_cpu_usage":20000},
      "precpu_stats":{"cpu_usage":{"total_usage":1000},"system_cpu_usage":10000},
      "memory_stats":{"usage":1000,"limit":4000,"stats":{"inactive_file":200,"anon":700}},
      "blkio_stats":{"io_service_bytes_recursive":[{"major":8,"minor":0,"op":"read","value":4096},
        {"major":8,"minor":0,"op":"write","value":512},{"major":8,"minor":16,"op":"Read","value":1},
        {"major":8,"minor":0,"op":"sync","value":99},{"major":8,"minor":0,"op":"","value":5}]}})";
    fixture f;
    f.engine.set_api_version("1.40", "1.12");
    f.engine.on(verb::get, "/containers/app/stats", reply::json(200, sample));
    auto s = run_on_mock(f.ioc, f.client.containers().stats("app"));
    CHECK(s.online_cpus == 2);
    CHECK(s.cpu_percent == 2000.0 / 10000.0 * 2.0 * 100.0);
    CHECK(s.memory_used_bytes == 800);
    CHECK(s.memory_percent == 20.0);
    CHECK(s.block_read_bytes == 4097);
    CHECK(s.block_write_bytes == 512);
    CHECK(s.pids == 0);
    auto sent = f.engine.requests_to(verb::get, "/containers/app/stats");
    REQUIRE(sent.size() == 1);
    CHECK_FALSE(sent[0].query("one-shot").has_value());  // API 1.41's

    fixture g;
    g.engine.on(verb::get, "/containers/app/stats", reply::json(200, R"({"memory_stats":{"usage":10,
      "stats":{"total_inactive_file":50,"inactive_file":4}},"cpu_stats":{"cpu_usage":{"total_usage":5}}})"));
    auto t = run_on_mock(g.ioc, g.client.containers().stats("app", {.one_shot = false}));
    CHECK(t.memory_used_bytes == 6);  // total_inactive_file not below usage: the cgroup v2 figure, as the CLI
    CHECK(t.cpu_percent == 0.0);      // no previous sample
    CHECK(t.memory_percent == 0.0);   // no limit
    CHECK_FALSE(g.engine.requests_to(verb::get, "/containers/app/stats").at(0).query("one-shot").has_value());
}

TEST_CASE("stats: a field of the wrong type is a protocol_error") {
    fixture f;
    f.engine.on(verb::get, "/containers/app/stats",
                reply::json(200, R"({"blkio_stats":{"io_service_bytes_recursive":{"op":"read"}}})"));
    auto e = thrown<berth::protocol_error>([&] { run_on_mock(f.ioc, f.client.containers().stats("app")); });
    CHECK(contains(e.what(), "io_service_bytes_recursive"));
}

// ------------------------------------------------------------------------------------------------------------
// Logs: since, until, and the collected result
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("logs: since and until at nanosecond precision, and the lines with their timestamps") {
    fixture f;
    f.engine.add_container("app");
    f.engine.on(verb::get, "/containers/app/logs",
                reply::streamed(200,
                                {exec_frame(out, "2026-12-07T10:00:00.123456789Z one\n2026-12-07T10:00:01"),
                                 exec_frame(out, ".5Z two\n"), exec_frame(err, "2026-12-07T10:00:02Z oops\n"),
                                 exec_frame(out, "2026-12-07T10:00:03Z no newline")},
                                "application/vnd.docker.raw-stream"));
    using namespace std::chrono;
    auto since = system_clock::time_point(seconds(1796637600) + nanoseconds(5));
    auto until = system_clock::time_point(seconds(1796637700));
    auto logs = run_on_mock(
        f.ioc, f.client.containers().logs("app", {.timestamps = true, .tail = "2", .since = since, .until = until}));
    auto sent = f.engine.requests_to(verb::get, "/containers/app/logs");
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].query("since") == "1796637600.000000005");
    CHECK(sent[0].query("until") == "1796637700.000000000");
    CHECK(sent[0].query("tail") == "2");
    CHECK(sent[0].query("timestamps") == "1");
    CHECK(logs.stderr_text == "2026-12-07T10:00:02Z oops\n");
    REQUIRE(logs.lines.size() == 4);
    CHECK(logs.lines[0].text == "one");
    CHECK(logs.lines[0].timestamp == berth::detail::parse_rfc3339("2026-12-07T10:00:00.123456789Z"));
    CHECK(logs.lines[1].text == "two");
    CHECK(logs.lines[1].stream == out);
    CHECK(logs.lines[2].text == "oops");
    CHECK(logs.lines[2].stream == err);
    CHECK(logs.lines[3].text == "no newline");
    CHECK(logs.bytes_dropped == 0);

    auto bounded = run_on_mock(f.ioc, f.client.containers().logs("app", {.max_collected_bytes = 10}));
    CHECK(bounded.stdout_text == "2026-12-07");
    CHECK(bounded.bytes_dropped > 0);
    CHECK_THROWS_AS(run_on_mock(f.ioc, f.client.containers().logs("app", {.since = until, .until = since})),
                    berth::invalid_argument_error);
}

}  // TEST_SUITE("mock engine: progress and output streams")
