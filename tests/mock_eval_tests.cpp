// The evaluation layer against the mock engine: what only a mock can show (exact GPU requests, faults, creates whose
// outcome is unknown).
#include "support/mock_fixture.hpp"

using namespace mock_test;

// ---------------------------------------------------------------------------------------------------------------
// The evaluation layer against the mock engine: what only a mock can show (the exact GPU request on each engine
// kind without a GPU machine, an engine that lies about archives). Each feature is also tested on real engines.
namespace {

using mock_container = berth::basic_container<mock_engine>;

struct eval_fixture {
    asio::io_context ioc;
    mock_engine engine{ioc.get_executor()};
    mock_client client{engine};
    berth_test::temp_dir scratch{"berth-mock"};
    std::filesystem::path dir = scratch.path;
    std::shared_ptr<berth::logger> log;

    eval_fixture() {
        log = std::make_shared<berth::logger>(dir / "eval.log");
        engine.on(verb::get, "/images/app/json", reply::json(200, R"({"Id":"sha256:feed","RepoTags":["app:latest"]})"));
        engine.on(verb::delete_, "/containers/app-container", reply::error(404, "No such container: app-container"));
        engine.on(verb::post, "/containers/create", reply::json(201, R"({"Id":"c1","Warnings":[]})"));
        engine.on(verb::post, "/containers/c1/start", reply::no_content());
        engine.on(verb::delete_, "/containers/c1", reply::no_content());
    }
    berth::build_container_options with_gpus() const {
        berth::build_container_options o;
        o.repo_path = dir.string();
        o.request_gpus = true;
        o.log = log;
        return o;
    }
    std::string log_text() const { return berth_test::read_file(dir / "eval.log"); }
    json::object create_body(std::size_t i = 0) {
        return json::parse(engine.requests_to(verb::post, "/containers/create").at(i).body).as_object();
    }
};

}  // namespace

TEST_SUITE("eval (mock engine)") {
TEST_CASE("the seed profile's build_container: a genesis domain asks Docker for all GPUs with DeviceRequests") {
    eval_fixture f;
    const std::vector<std::string> domains{"search_arena", "genesis_humanoid"};
    auto box = run_on_mock(
        f.ioc, berth::seed::build_container(f.client, f.dir.string(), "app", "app-container", false, domains, false));
    REQUIRE(box.has_value());
    CHECK(box->id == "c1");
    CHECK(f.engine.requests_to(verb::post, "/build").empty());  // the tag exists: no build
    auto body = f.create_body();
    auto& host = body.at("HostConfig").as_object();
    CHECK(json::serialize(host.at("DeviceRequests")) ==
          R"([{"Driver":"","Count":-1,"DeviceIDs":[],"Capabilities":[["gpu"]],"Options":{}}])");
    CHECK_FALSE(host.contains("Devices"));
    CHECK(json::serialize(body.at("Cmd")) == R"(["tail","-f","/dev/null"])");
    CHECK(body.at("Tty").as_bool());
    CHECK(body.at("OpenStdin").as_bool());
    CHECK(host.at("Init").as_bool());
    auto binds = json::serialize(host.at("Binds"));
    CHECK(binds == "[\"" + std::filesystem::absolute(f.dir).lexically_normal().string() + ":/hyperagents:rw\"]");
    CHECK_FALSE(host.contains("NetworkMode"));  // unset: the engine's default network
    CHECK(f.engine.requests_to(verb::post, "/containers/create").at(0).query("name") == "app-container");
}

TEST_CASE("build_container asks Podman for the CDI device nvidia.com/gpu=all") {
    eval_fixture f;
    f.engine.answer_as_podman();
    auto box = run_on_mock(f.ioc, berth::build_container(f.client, f.with_gpus()));
    REQUIRE(box.has_value());
    auto body = f.create_body();
    auto& host = body.at("HostConfig").as_object();
    CHECK(json::serialize(host.at("Devices")) ==
          R"([{"PathOnHost":"nvidia.com/gpu=all","PathInContainer":"nvidia.com/gpu=all","CgroupPermissions":"rwm"}])");
    CHECK_FALSE(host.contains("DeviceRequests"));
}

TEST_CASE("the seed profile's build_container: the Python defaults, and no GPU request without a genesis domain") {
    eval_fixture f;
    // The Python module's defaults: repo "./", image "app", container "app-container", mount /hyperagents.
    auto box = run_on_mock(f.ioc, berth::seed::build_container(f.client));
    REQUIRE(box.has_value());
    CHECK(box->name == "app-container");
    CHECK(f.engine.requests_to(verb::post, "/containers/create").at(0).query("name") == "app-container");
    auto body = f.create_body();
    CHECK(body.at("Image").as_string() == "app");
    auto& host = body.at("HostConfig").as_object();
    CHECK(json::serialize(host.at("Binds")) ==
          "[\"" + std::filesystem::absolute(".").lexically_normal().parent_path().string() + ":/hyperagents:rw\"]");
    CHECK_FALSE(host.contains("DeviceRequests"));
    CHECK_FALSE(host.contains("Devices"));

    eval_fixture g;
    const std::vector<std::string> domains{"search_arena", "polyglot"};
    REQUIRE(run_on_mock(g.ioc, berth::seed::build_container(g.client, g.dir.string(), "app", "app-container", false,
                                                            domains, false))
                .has_value());
    auto other_body = g.create_body();
    auto& other = other_body.at("HostConfig").as_object();
    CHECK_FALSE(other.contains("DeviceRequests"));
    CHECK_FALSE(other.contains("Devices"));
    // The general API asks for GPUs only when told to.
    eval_fixture h;
    auto options = h.with_gpus();
    options.request_gpus = false;
    REQUIRE(run_on_mock(h.ioc, berth::build_container(h.client, options)).has_value());
    auto plain_body = h.create_body();
    CHECK_FALSE(plain_body.at("HostConfig").as_object().contains("DeviceRequests"));
}

TEST_CASE("a refused GPU request falls back without GPU, or fails when GPUs are required") {
    const char* refusal = "could not select device driver \"\" with capabilities: [[gpu]]";
    {
        eval_fixture f;
        f.engine.once(verb::post, "/containers/c1/start", reply::error(500, refusal));
        auto box = run_on_mock(f.ioc, berth::build_container(f.client, f.with_gpus()));
        REQUIRE(box.has_value());
        REQUIRE(f.engine.requests_to(verb::post, "/containers/create").size() == 2);
        CHECK(f.create_body(0).at("HostConfig").as_object().contains("DeviceRequests"));
        CHECK_FALSE(f.create_body(1).at("HostConfig").as_object().contains("DeviceRequests"));
        CHECK(f.engine.requests_to(verb::delete_, "/containers/c1").size() == 1);  // the half-made one
        CHECK(f.log_text().find(std::string("WARNING - GPU request refused by the engine, starting without GPU: ") +
                                refusal) != std::string::npos);
    }
    {
        eval_fixture f;
        f.engine.once(verb::post, "/containers/c1/start", reply::error(500, refusal));
        auto options = f.with_gpus();
        options.gpu_required = true;
        CHECK_FALSE(run_on_mock(f.ioc, berth::build_container(f.client, options)).has_value());
        CHECK(f.engine.requests_to(verb::post, "/containers/create").size() == 1);
        CHECK(f.engine.requests_to(verb::delete_, "/containers/c1").size() == 1);  // nothing left behind
        CHECK(f.log_text().find(refusal) != std::string::npos);
    }
}

TEST_CASE("a cancelled build_container propagates the cancellation and leaves no container") {
    eval_fixture f;
    f.engine.once(verb::post, "/containers/c1/start", reply::stall());
    auto e = thrown<boost::system::system_error>(
        [&] { run_on_mock(f.ioc, berth::with_timeout(berth::build_container(f.client, f.with_gpus()), 200ms)); });
    CHECK(e.code() == asio::error::timed_out);
    settle(f.ioc);
    CHECK(f.log_text().find("failed") == std::string::npos);                   // not reported as a failure
    CHECK(f.engine.requests_to(verb::delete_, "/containers/c1").size() == 1);  // the half-made one removed
}

TEST_CASE("build_container: a process list the engine cannot give ends the wait for the init, not the build") {
    // What Podman 4.3's compat top answers when ps cannot run in the container: 200 and an empty body. Podman
    // is asked for psgo's "pid" descriptor (no ps needed), so only an engine that still fails shows this.
    for (bool podman : {false, true}) {
        CAPTURE(podman);
        eval_fixture f;
        if (podman) f.engine.answer_as_podman();
        f.engine.on(verb::get, "/containers/c1/top", reply::chunked(200, {}, "application/json"));
        auto options = f.with_gpus();
        options.request_gpus = false;
        auto box = run_on_mock(f.ioc, berth::build_container(f.client, options));
        REQUIRE(box.has_value());
        auto asked = f.engine.requests_to(verb::get, "/containers/c1/top");
        REQUIRE(asked.size() == 1);  // "cannot tell" stops the wait at once
        CHECK((asked[0].target.find("ps_args=pid") != std::string::npos) == podman);
        CHECK(f.log_text().find("ERROR") == std::string::npos);
    }
}

TEST_CASE("copy_from_container for a non-root owner: a 0500 tree moves into place, merges, and is cleaned up") {
    // Root ignores modes, and the real-engine tests run as root; only an unprivileged owner shows whether a
    // directory without owner write can be moved to another parent or emptied. As root, a child process
    // switches to nobody (65534) for the copies.
    std::string tar;
    {
        berth::tar::writer w([&](std::span<const char> b) { tar.append(b.data(), b.size()); });
        auto add = [&](std::string name, berth::tar::entry_type type, std::uint32_t mode, std::string content) {
            berth::tar::entry e;
            e.name = std::move(name);
            e.type = type;
            e.mode = mode;
            e.size = content.size();
            e.mtime = 1'600'000'000;
            w.add(e);
            w.write(content);
        };
        add("x/", berth::tar::entry_type::directory, 0500, "");
        add("x/sub/", berth::tar::entry_type::directory, 0500, "");
        add("x/sub/f", berth::tar::entry_type::file, 0600, "data");
        add("x/g", berth::tar::entry_type::file, 0644, "g");
        w.finish();
    }
    berth_test::temp_dir scratch("berth-nonroot");
    const std::filesystem::path dir = scratch.path;
    const bool as_root = ::geteuid() == 0;
    if (as_root) REQUIRE(::chown(dir.c_str(), 65534, 65534) == 0);
    // What went wrong, as text (empty: all well); run in the child when switching users.
    auto copies = [&]() -> std::string {
        std::string wrong;
        auto mode_of = [](const std::filesystem::path& p) {
            struct stat st {};
            return ::lstat(p.c_str(), &st) == 0 ? static_cast<unsigned>(st.st_mode & 07777) : 010000u;
        };
        auto expect = [&](bool ok, const std::string& what) {
            if (!ok) wrong += what + "; ";
        };
        try {
            asio::io_context ioc;
            mock_engine engine{ioc.get_executor()};
            mock_client client{engine};
            engine.on(verb::get, "/containers/c1/archive",
                      reply::archive(json::value{{"name", "x"}, {"size", 0}, {"mode", 2147483648u + 0500u}}, {tar}));
            mock_container box{&client, "c1", "box"};
            run_on_mock(ioc, berth::copy_from_container(box, "/x", dir / "fresh/x", {.verbose = false}));
            expect(mode_of(dir / "fresh/x") == 0500 && mode_of(dir / "fresh/x/sub") == 0500, "fresh: modes");
            expect(mode_of(dir / "fresh/x/sub/f") == 0600 && mode_of(dir / "fresh/x/g") == 0644, "fresh: file modes");
            std::filesystem::create_directories(dir / "merge/x");
            std::ofstream(dir / "merge/x/other") << "mine";
            run_on_mock(ioc, berth::copy_from_container(box, "/x", dir / "merge/x", {.verbose = false}));
            expect(mode_of(dir / "merge/x") == 0755 && mode_of(dir / "merge/x/sub") == 0500, "merge: modes");
            expect(std::filesystem::exists(dir / "merge/x/sub/f") && std::filesystem::exists(dir / "merge/x/other"),
                   "merge: contents");
            std::ofstream(dir / "file") << "a file where the directory would go";
            try {
                run_on_mock(ioc, berth::copy_from_container(box, "/x", dir / "file", {.verbose = false}));
                wrong += "conflict: no error; ";
            } catch (const berth::tar::error&) {}
            for (auto sub : {"", "fresh", "merge"})
                for (auto& e : std::filesystem::directory_iterator(dir / sub))
                    expect(e.path().filename().string().rfind(".berth-", 0) != 0, "staging left: " + e.path().string());
        } catch (const std::exception& e) { wrong += std::string("threw: ") + e.what(); }
        return wrong;
    };
    std::string wrong;
    if (!as_root) {
        wrong = copies();
    } else {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            ::close(fds[0]);
            std::string out = ::setgid(65534) == 0 && ::setuid(65534) == 0 ? copies() : "cannot become nobody";
            [[maybe_unused]] auto n = ::write(fds[1], out.data(), out.size());
            ::_exit(0);
        }
        ::close(fds[1]);
        char buf[4096];
        for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) wrong.append(buf, static_cast<std::size_t>(n));
        ::close(fds[0]);
        int status = 0;
        ::waitpid(child, &status, 0);
        CHECK(WIFEXITED(status));
    }
    CHECK(wrong == "");
}

TEST_CASE("copy_from_container refuses an archive that escapes, and writes nothing outside") {
    eval_fixture f;
    mock_container box{&f.client, "c1", "box"};
    auto outside_before = std::distance(std::filesystem::directory_iterator(f.dir), {});
    // the engine names the item "../evil"
    f.engine.once(
        verb::get, "/containers/c1/archive",
        reply::archive(json::value{{"name", "../evil"}, {"size", 1}, {"mode", 420}}, {std::string(1024, '\0')}));
    CHECK_THROWS_AS(run_on_mock(f.ioc, berth::copy_from_container(box, "/x", f.dir / "out/evil", {.verbose = false})),
                    berth::protocol_error);
    // a member that climbs out of the copied item
    berth::tar::entry e;
    e.name = "x/../../../escaped.txt";
    e.size = 4;
    std::string tar;
    berth::tar::encode_header(e, tar);
    tar += "evil";
    tar.append(berth::tar::padding_after(4) + berth::tar::end_of_archive_size, '\0');
    f.engine.once(verb::get, "/containers/c1/archive",
                  reply::archive(json::value{{"name", "x"}, {"size", 0}, {"mode", 2147484141}}, {tar}));
    auto error = thrown<berth::tar::error>(
        [&] { run_on_mock(f.ioc, berth::copy_from_container(box, "/x", f.dir / "out/x", {.verbose = false})); });
    CHECK(error.code() == berth::tar::errc::unsafe_path);
    CHECK(error.entry_name() == "x/../../../escaped.txt");
    CHECK_FALSE(std::filesystem::exists(f.dir / "escaped.txt"));
    CHECK_FALSE(std::filesystem::exists(f.dir.parent_path() / "escaped.txt"));
    CHECK_FALSE(std::filesystem::exists(f.dir / "out/x"));
    for (auto& entry : std::filesystem::directory_iterator(f.dir / "out"))  // no staging directory left
        CHECK(entry.path().filename().string().rfind(".berth-", 0) != 0);
    CHECK(std::distance(std::filesystem::directory_iterator(f.dir), {}) == outside_before + 1);  // just out/
}

TEST_CASE("an engine error frame (stream 3) in exec output is an engine_error") {
    eval_fixture f;
    f.engine.add_exec("c1", "e1",
                      {exec_frame(out, "partial\n"),
                       exec_frame(berth::output_stream::system_error, "exec failed: oci runtime error")},
                      0);
    mock_container box{&f.client, "c1", "box"};
    auto error = thrown<berth::engine_error>([&] { run_on_mock(f.ioc, berth::exec(box, berth::argv("true"))); });
    CHECK(std::string(error.what()).find("oci runtime error") != std::string::npos);
}
}  // TEST_SUITE("eval (mock engine)")

// ------------------------------------------------------------------------------------------------------------
// The evaluation layer against the mock engine, also for what a real engine cannot be made to do on demand: an exec
// stream cut by an engine that goes away, a name taken between the removal and the create, and the exact requests
// behind a copy out of a symlink.
// ------------------------------------------------------------------------------------------------------------

namespace eval_on_mock {
namespace fs = std::filesystem;
using mock_container = berth::basic_container<mock_engine>;

struct fixture {
    asio::io_context ioc;
    mock_engine engine{ioc.get_executor()};
    mock_client client{engine};
    berth_test::temp_dir scratch{"berth-h3-mock"};
    fs::path dir = scratch.path;
};
}  // namespace eval_on_mock

TEST_SUITE("eval on the mock engine: faults a real engine cannot be made to show") {
TEST_CASE("exec: an output stream cut inside a frame is exec_interrupted, with the output before it") {
    eval_on_mock::fixture f;
    std::string second = exec_frame(berth::output_stream::stdout_, "never complete\n");
    f.engine.add_exec("c1", "e1",
                      {exec_frame(berth::output_stream::stdout_, "first\n"),
                       exec_frame(berth::output_stream::stderr_, "warn\n"), second.substr(0, 11)},
                      0);
    eval_on_mock::mock_container box{&f.client, "c1", "box"};
    berth::run_options quiet;
    quiet.verbose = false;
    try {
        run_on_mock(f.ioc, berth::exec(box, berth::argv("sh", "-c", "work"), quiet));
        FAIL("a cut stream was taken as the end of the output");
    } catch (const berth::exec_interrupted& e) {
        CHECK(e.code() == boost::system::errc::protocol_error);
        // everything that arrived, the start of the cut frame's payload included
        CHECK(e.partial().stdout_text == "first\nnev");
        CHECK(e.partial().stderr_text == "warn\n");
        CHECK(e.partial().output == "first\nwarn\nnev");
        CHECK_FALSE(e.partial().exit_code.has_value());
        CHECK_THROWS_AS(std::rethrow_exception(e.cause()), berth::protocol_error);
        CHECK(std::string(e.what()).find("inside a frame") != std::string::npos);
    }
}

TEST_CASE("build_container: a name taken between the removal and the create is name_conflict") {
    eval_on_mock::fixture f;
    f.engine.on(verb::get, "/images/app/json", reply::json(200, R"({"Id":"sha256:feed","RepoTags":["app:latest"]})"));
    f.engine.on(verb::delete_, "/containers/app-container", reply::error(404, "No such container: app-container"));
    f.engine.on(verb::post, "/containers/create",
                reply::error(409, "Conflict. The container name \"/app-container\" is already in use"));
    berth::build_container_options options;
    options.repo_path = f.dir.string();
    options.log = std::make_shared<berth::logger>(f.dir / "build.log");
    auto result = run_on_mock(f.ioc, berth::build_container(f.client, options));
    CHECK_FALSE(result.has_value());
    REQUIRE(result.failure() != nullptr);
    CHECK(result.failure()->reason == berth::build_failure_reason::name_conflict);
    CHECK(result.failure()->message.find("already in use") != std::string::npos);
    // the create was answered: nothing is searched for or removed by label
    CHECK(f.engine.requests_to(verb::get, "/containers/json").empty());
    // the container it asked for carries this call's token
    auto body = boost::json::parse(f.engine.requests_to(verb::post, "/containers/create").at(0).body).as_object();
    auto token = body.at("Labels").as_object().at("berth.build-call").as_string();
    CHECK(token.size() == 32);
}

TEST_CASE("build_container: the failure value gives the error's code and text without a rethrow") {
    eval_on_mock::fixture f;
    f.engine.on(verb::get, "/images/app/json", reply::json(200, R"({"Id":"sha256:feed","RepoTags":["app:latest"]})"));
    f.engine.on(verb::delete_, "/containers/app-container", reply::error(404, "No such container: app-container"));
    f.engine.on(verb::post, "/containers/create",
                reply::error(409, "Conflict. The container name \"/app-container\" is already in use"));
    berth::build_container_options options;
    options.repo_path = f.dir.string();
    options.log = std::make_shared<berth::logger>(f.dir / "build.log");
    auto result = run_on_mock(f.ioc, berth::build_container(f.client, options));
    REQUIRE(result.failure() != nullptr);
    const berth::build_failure& failure = *result.failure();
    CHECK(failure.code() == berth::engine_errc::conflict);
    CHECK(failure.code().category().name() == std::string("berth.engine"));
    CHECK(failure.what().find("already in use") != std::string::npos);
    CHECK(failure.what().find("409") != std::string::npos);
    CHECK_THROWS_AS(std::rethrow_exception(failure.error), berth::conflict_error);  // the exception is kept too

    // an engine that refuses the connection: the connection's own code
    eval_on_mock::fixture g;
    g.engine.refuse_connections();
    options.repo_path = g.dir.string();
    options.log = std::make_shared<berth::logger>(g.dir / "build.log");
    auto unreachable = run_on_mock(g.ioc, berth::build_container(g.client, options));
    REQUIRE(unreachable.failure() != nullptr);
    CHECK(unreachable.failure()->reason == berth::build_failure_reason::engine_unreachable);
    CHECK(unreachable.failure()->code() == asio::error::connection_refused);
    CHECK_THROWS_AS(std::rethrow_exception(unreachable.failure()->error), berth::connection_error);
}

TEST_CASE("copy_from_container of a symlink: the link's archive is not read, its resolved target is fetched") {
    eval_on_mock::fixture f;
    eval_on_mock::mock_container box{&f.client, "c1", "box"};
    std::string link_tar;
    berth::tar::entry link;
    link.name = "latest";
    link.type = berth::tar::entry_type::symlink;
    link.linkname = "/runs/7";
    berth::tar::encode_header(link, link_tar);
    link_tar.append(berth::tar::end_of_archive_size, '\0');
    std::string dir_tar;
    berth::tar::entry d;
    d.name = "7";
    d.type = berth::tar::entry_type::directory;
    d.mode = 0755;
    berth::tar::encode_header(d, dir_tar);
    berth::tar::entry file;
    file.name = "7/report.json";
    file.size = 3;
    file.mode = 0644;
    berth::tar::encode_header(file, dir_tar);
    dir_tar += "{}\n";
    dir_tar.append(berth::tar::padding_after(3) + berth::tar::end_of_archive_size, '\0');
    f.engine.on_sequence(
        verb::get, "/containers/c1/archive",
        {reply::archive(
             boost::json::value{{"name", "latest"}, {"size", 7}, {"mode", 134218239}, {"linkTarget", "/runs/7"}},
             {link_tar}),
         reply::archive(boost::json::value{{"name", "7"}, {"size", 4096}, {"mode", 2147484141}}, {dir_tar})});
    auto result = run_on_mock(f.ioc,
                              berth::copy_from_container(box, "/runs/latest", f.dir / "out", {.verbose = false}));
    CHECK(result.skipped_links.empty());
    auto gets = f.engine.requests_to(verb::get, "/containers/c1/archive");
    REQUIRE(gets.size() == 2);
    CHECK(gets[0].query("path") == "/runs/latest");
    CHECK(gets[1].query("path") == "/runs/7");
    CHECK_FALSE(std::filesystem::is_symlink(f.dir / "out"));
    CHECK(berth_test::read_file(f.dir / "out/report.json") == "{}\n");
}
}  // TEST_SUITE("eval on the mock engine: faults a real engine cannot be made to show")

// Creates whose outcome is unknown, and what cleanup_container reports: against an engine that keeps its containers
// (by name, with their labels), so what a call leaves behind is seen, and a second create of a name still held is
// refused as a real engine refuses it.
namespace unknown_outcome {

using berth::testing::recorded_request;
using berth::testing::request_handler;

struct kept_container {
    std::string id, name;
    json::object labels;
};

struct container_keeping_engine {
    eval_on_mock::fixture f;
    std::vector<kept_container> containers;
    int made = 0;
    int creates_failing_after_making = 0;  // so many creates make their container, then answer 500
    std::optional<reply> refusal;          // creates are refused with this, nothing made

    container_keeping_engine() {
        f.engine.on(verb::get, "/images/app/json",
                    reply::json(200, R"({"Id":"sha256:feed","RepoTags":["app:latest"]})"));
        f.engine.on(verb::post, "/containers/*", request_handler([this](const recorded_request& r) {
                        return find(r.path.substr(12, r.path.rfind('/') - 12)) ? reply::no_content()
                                                                               : reply::error(404, "No such container");
                    }));
        f.engine.on(verb::delete_, "/containers/*", request_handler([this](const recorded_request& r) {
                        auto* c = find(r.path.substr(12));
                        if (c == nullptr) return reply::error(404, "No such container: " + r.path.substr(12));
                        containers.erase(containers.begin() + (c - containers.data()));
                        return reply::no_content();
                    }));
        f.engine.on(
            verb::get, "/containers/json", request_handler([this](const recorded_request& r) {
                auto filters = json::parse(r.query("filters").value_or("{}")).as_object();
                json::array out;
                for (auto& c : containers) {
                    bool all = true;
                    for (auto& want : filters["label"].as_array()) {
                        std::string kv(want.as_string());
                        auto eq = kv.find('=');
                        auto* v = c.labels.if_contains(kv.substr(0, eq));
                        all = all && v != nullptr && (eq == std::string::npos || v->as_string() == kv.substr(eq + 1));
                    }
                    if (all) out.push_back(json::object{{"Id", c.id}, {"Names", {"/" + c.name}}, {"Labels", c.labels}});
                }
                return reply::json(200, json::value(out));
            }));
        f.engine.on(verb::post, "/containers/create", request_handler([this](const recorded_request& r) {
                        if (refusal) return *refusal;
                        auto name = r.query("name").value_or("");
                        if (find(name))
                            return reply::error(409,
                                                "Conflict. The container name \"/" + name + "\" is already in use");
                        auto body = json::parse(r.body).as_object();
                        containers.push_back({"c" + std::to_string(++made), name, body["Labels"].as_object()});
                        if (creates_failing_after_making > 0) {
                            --creates_failing_after_making;
                            return reply::error(500, "mock engine: failed after making the container");
                        }
                        return reply::json(201, json::value{{"Id", containers.back().id}, {"Warnings", json::array()}});
                    }));
    }
    kept_container* find(const std::string& id_or_name) {
        for (auto& c : containers)
            if (c.id == id_or_name || c.name == id_or_name) return &c;
        return nullptr;
    }
    berth::build_container_options options(bool gpu = false) const {
        berth::build_container_options o;
        o.repo_path = f.dir.string();
        o.verbose = false;
        o.log = std::make_shared<berth::logger>(f.dir / "build.log");
        o.request_gpus = gpu;
        return o;
    }
    // The token of the n-th create's label, and whether a lookup by that label was made.
    std::string token(std::size_t n = 0) const {
        auto body = json::parse(f.engine.requests_to(verb::post, "/containers/create").at(n).body).as_object();
        return std::string(body.at("Labels").as_object().at("berth.build-call").as_string());
    }
    std::size_t lookups_of(const std::string& token) const {
        std::size_t n = 0;
        for (auto& r : f.engine.requests_to(verb::get, "/containers/json"))
            n += r.query("filters").value_or("").find("berth.build-call=" + token) != std::string::npos;
        return n;
    }
};

}  // namespace unknown_outcome

TEST_SUITE("creates whose outcome is unknown (mock engine)") {
TEST_CASE(
    "build_container: a create answered 500 after the container was made: it is found by the call's label and removed") {
    unknown_outcome::container_keeping_engine e;
    e.creates_failing_after_making = 1;
    auto result = run_on_mock(e.f.ioc, berth::build_container(e.f.client, e.options()));
    REQUIRE_FALSE(result.has_value());
    CHECK(result.failure()->reason == berth::build_failure_reason::engine_refused);
    CHECK(result.failure()->message.find("failed after making the container") != std::string::npos);
    CHECK(e.lookups_of(e.token()) >= 1);
    CHECK(e.f.engine.requests_to(verb::delete_, "/containers/c1").size() == 1);
    CHECK(e.containers.empty());  // nothing left behind
}

TEST_CASE(
    "build_container: a GPU create answered 500 after making the container: reconciled before the retry without GPU") {
    unknown_outcome::container_keeping_engine e;
    e.creates_failing_after_making = 1;
    auto result = run_on_mock(e.f.ioc, berth::build_container(e.f.client, e.options(true)));
    REQUIRE_MESSAGE(result.has_value(), (result.failure() ? result.failure()->message : ""));
    CHECK(result->id == "c2");
    REQUIRE(e.f.engine.requests_to(verb::post, "/containers/create").size() == 2);
    CHECK(e.lookups_of(e.token(0)) >= 1);
    REQUIRE(e.containers.size() == 1);  // the one the GPU create made is gone
    CHECK(e.containers[0].id == "c2");
}

TEST_CASE("build_container: a create refused (400, 409, Podman's 500 for a name in use) is not looked up by label") {
    for (int kind = 0; kind < 3; ++kind) {
        CAPTURE(kind);
        unknown_outcome::container_keeping_engine e;
        if (kind == 0) e.refusal = reply::error(400, "invalid reference format");
        if (kind == 1)
            e.refusal = reply::error(409, "Conflict. The container name \"/app-container\" is already in use");
        if (kind == 2) {
            e.f.engine.answer_as_podman();
            e.refusal = reply::error(500, "the container name \"app-container\" is already in use by 1234");
        }
        auto result = run_on_mock(e.f.ioc, berth::build_container(e.f.client, e.options()));
        REQUIRE_FALSE(result.has_value());
        CHECK(result.failure()->reason ==
              (kind == 0 ? berth::build_failure_reason::engine_refused : berth::build_failure_reason::name_conflict));
        CHECK(e.f.engine.requests_to(verb::get, "/containers/json").empty());
        CHECK(e.f.engine.requests_to(verb::delete_, "/containers/c1").empty());
    }
}

TEST_CASE("cleanup_container reports the container removed, or already gone") {
    unknown_outcome::container_keeping_engine e;
    auto made = run_on_mock(e.f.ioc, berth::build_container(e.f.client, e.options()));
    REQUIRE(made.has_value());
    auto report = run_on_mock(e.f.ioc, berth::cleanup_container(*made, {.verbose = false}));
    CHECK(report.container_removed);
    CHECK_FALSE(report.service_removed.has_value());  // one engine: no service
    CHECK(report.complete());
    CHECK(report.problems.empty());
    CHECK_FALSE(report.error);
    CHECK(e.containers.empty());
    report = run_on_mock(e.f.ioc, berth::cleanup_container(*made, {.verbose = false}));  // again: already gone is gone
    CHECK(report.complete());
}

TEST_CASE("cleanup_container on an engine that is down reports the container not removed, and why") {
    unknown_outcome::container_keeping_engine e;
    auto made = run_on_mock(e.f.ioc, berth::build_container(e.f.client, e.options()));
    REQUIRE(made.has_value());
    e.f.engine.refuse_connections();
    e.f.client.close_idle_connections();
    auto report = run_on_mock(e.f.ioc, berth::cleanup_container(*made, {.verbose = false}));
    CHECK_FALSE(report.container_removed);
    CHECK_FALSE(report.complete());
    REQUIRE(report.problems.size() == 2);  // the stop and the removal, each with its error
    CHECK(report.problems[1].find("Error removing container app-container") != std::string::npos);
    REQUIRE(report.error);
    try {
        std::rethrow_exception(report.error);
    } catch (const boost::system::system_error& error) { CHECK(error.code() == asio::error::connection_refused); }
    // the same without a rethrow
    CHECK(report.code() == asio::error::connection_refused);
    CHECK(report.what().find("Connection refused") != std::string::npos);
    CHECK(e.containers.size() == 1);
}

// Podman's temporary manifest list (a pull's digest, registry.hpp): a create answered 500 may make the list
// after the first removal was tried, so a list not found is asked for again; after a refusal it is not.
TEST_CASE("Podman: a manifest list create answered 500 is removed even when it appears late") {
    for (unsigned status : {500u, 400u}) {
        CAPTURE(status);
        asio::io_context ioc;
        mock_engine engine(ioc.get_executor());
        mock_client client(engine);
        engine.answer_as_podman("4.3.1");
        engine.on(verb::post, "/images/create",
                  reply::chunked(200,
                                 {R"({"status":"Download complete","progressDetail":{},"id":"bc10c115f6a9"})"
                                  "\n"},
                                 "application/json"));
        const std::string id = "sha256:" + std::string(64, 'c');
        json::array digests{"127.0.0.1:5000/app@sha256:" + std::string(64, 'a'),
                            "127.0.0.1:5000/app@sha256:" + std::string(64, 'b')};
        engine.on(verb::get, "/images/127.0.0.1:5000/app:v1/json",
                  reply::json(200, json::value{{"Id", id}, {"RepoDigests", digests}}));
        engine.on(verb::post, "/libpod/manifests/create", reply::error(status, "mock engine: list failed"));
        engine.on_sequence(verb::delete_, "/libpod/images/*",
                           {reply::error(404, "image not known"), reply::json(200, R"({"Deleted":["x"]})")});
        berth::pull_options options;
        options.lookup_credentials = false;
        try {
            run_on_mock(ioc, client.images().pull("127.0.0.1:5000/app:v1", options));
            FAIL("the pull succeeded");
        } catch (const berth::engine_error& e) { CHECK(e.status() == status); }
        auto removals = engine.requests_to(verb::delete_, "/libpod/images/*");
        CHECK(removals.size() == (status == 500 ? 2u : 1u));
        for (auto& r : removals) CHECK(r.path.starts_with("/libpod/images/localhost/berth-pull-digest-"));
    }
}
}  // TEST_SUITE("creates whose outcome is unknown (mock engine)")
