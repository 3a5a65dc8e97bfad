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

}  // TEST_SUITE("mock engine: progress and output streams")
