// The Engine API client against real engines (Debian's dockerd, and Podman's compatible service where noted).
#include "support/engines.hpp"

#include <berth/tar/reader.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <filesystem>
#include <set>

using namespace berth_test;
namespace fs = std::filesystem;

namespace {

std::size_t open_fd_count() {
    std::size_t n = 0;
    for ([[maybe_unused]] auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

asio::awaitable<void> ping_version(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    CHECK(co_await c.system().ping());
    auto v = co_await c.version();
    CHECK_FALSE(v.version.empty());
    CHECK(co_await c.api_version() == "1.41");
    CHECK((v.kind == berth::engine_kind::podman) == (e.name == "podman"));
}

asio::awaitable<void> container_lifecycle(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    const auto name = unique_name("life");
    container_guard guard{e.address, name};

    berth::container_config cfg;
    cfg.image = base_image;
    cfg.cmd = {"sh", "-c", "echo to-stdout; echo to-stderr >&2; exec tail -f /dev/null"};
    cfg.host.network_mode = "none";
    cfg.host.init = true;
    cfg.labels = {{"berth.test", name}};
    cfg.env = {"GREETING=hello there"};
    auto created = co_await c.containers().create(cfg, name);
    CHECK(created.id.size() == 64);

    auto info = co_await c.containers().inspect(name);
    CHECK(info.id == created.id);
    CHECK(info.name == name);
    CHECK_FALSE(info.state.running);

    co_await c.containers().start(created.id);
    co_await c.containers().start(created.id);  // already started: not an error
    info = co_await c.containers().inspect(created.id);
    CHECK(info.state.running);
    CHECK(info.state.pid > 0);

    berth::list_containers_options by_label;
    by_label.filters["label"] = {"berth.test=" + name};
    auto listed = co_await c.containers().list(by_label);
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].id == created.id);
    CHECK(listed[0].labels.at("berth.test") == name);

    // exec: exit code, stdout and stderr apart, environment and workdir
    berth::exec_options ex;
    ex.cmd = {"sh", "-c", "echo out:$GREETING; pwd; echo err >&2; exit 7"};
    ex.working_dir = "/bin";
    berth::collected_output out;
    int code = co_await c.execs().run(created.id, ex, out);
    CHECK(code == 7);
    CHECK(out.stdout_text == "out:hello there\n/bin\n");
    CHECK(out.stderr_text == "err\n");

    // logs: the container's own output, demultiplexed
    berth::collected_output logs;
    for (int attempt = 0; attempt < 50 && logs.stderr_text.empty(); ++attempt) {
        logs = {};
        co_await c.containers().logs(created.id, logs);
    }
    CHECK(logs.stdout_text == "to-stdout\n");
    CHECK(logs.stderr_text == "to-stderr\n");

    co_await c.containers().stop(created.id, 5);
    co_await c.containers().stop(created.id, 5);  // already stopped: not an error
    info = co_await c.containers().inspect(created.id);
    CHECK_FALSE(info.state.running);
    co_await c.containers().remove(created.id);
    CHECK_THROWS_AS(co_await c.containers().inspect(created.id), berth::not_found_error);
}

asio::awaitable<void> wait_and_kill(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    const auto name = unique_name("wait");
    container_guard guard{e.address, name};
    berth::container_config cfg;
    cfg.image = base_image;
    cfg.cmd = {"sh", "-c", "exit 42"};
    cfg.host.network_mode = "none";
    auto created = co_await c.containers().create(cfg, name);
    co_await c.containers().start(created.id);
    CHECK(co_await c.containers().wait(created.id) == 42);
    co_await c.containers().remove(created.id);

    auto id = co_await start_idle_container(c, name);
    co_await c.containers().kill(id, "SIGKILL");
    int code = co_await c.containers().wait(id);
    CHECK(code == 137);
}

asio::awaitable<void> engine_errors(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    // 404: unknown container, with the engine's own message
    try {
        co_await c.containers().inspect("berth-no-such-container");
        FAIL("inspect of a missing container succeeded");
    } catch (const berth::not_found_error& err) {
        CHECK(err.status() == 404);
        CHECK(err.code() == berth::engine_errc::not_found);
        CHECK(err.message().find("berth-no-such-container") != std::string::npos);
    }
    // 409: name conflict
    const auto name = unique_name("conflict");
    container_guard guard{e.address, name};
    berth::container_config cfg;
    cfg.image = base_image;
    cfg.cmd = {"true"};
    cfg.host.network_mode = "none";
    co_await c.containers().create(cfg, name);
    try {
        co_await c.containers().create(cfg, name);
        FAIL("a second container with the same name was created");
    } catch (const berth::conflict_error& err) {
        CHECK(err.code() == berth::engine_errc::conflict);
        CHECK(err.status() == (e.name == "docker" ? 409u : 500u));  // Podman says 500; berth still types it
        CHECK(err.message().find("already in use") != std::string::npos);
    }
    // 400 (or the engine's own refusal of a bad configuration): an invalid name
    berth::container_config bad = cfg;
    try {
        co_await c.containers().create(bad, "bad/name");
        FAIL("an invalid container name was accepted");
    } catch (const berth::engine_error& err) {
        CHECK(err.status() == (e.name == "docker" ? 400u : 500u));  // each engine's own status, and its message
        CHECK(err.message().find("name") != std::string::npos);
    }
    // 400: a negative memory limit is a bad configuration on Docker
    if (e.name == "docker") {
        berth::container_config negative = cfg;
        negative.host.memory = -5;
        try {
            co_await c.containers().create(negative, unique_name("neg"));
            FAIL("a negative memory limit was accepted");
        } catch (const berth::engine_error& err) {
            CHECK(err.status() == 400);
            CHECK(err.code() == berth::engine_errc::bad_request);
        }
    }
    CHECK_THROWS_AS(co_await c.images().inspect("berth-no-such-image:never"), berth::not_found_error);
    CHECK_FALSE(co_await c.images().exists("berth-no-such-image:never"));
}

asio::awaitable<void> build_from_stream(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    temp_dir ctx;
    write_busybox_context(ctx.path, "RUN echo built-by-berth > /marker\n");
    write_file(ctx / "ignored/big.bin", std::string(1 << 20, 'x'));
    write_file(ctx / ".dockerignore", "ignored\n");
    berth::tar::pack_options pack;
    pack.use_dockerignore = true;
    berth::tar::packer packer(ctx.path, "", pack);
    const auto tag = unique_name("img") + "-image";
    berth::build_options options;
    options.tag = tag;
    options.no_cache = true;
    std::vector<std::string> progress;
    auto image = co_await c.images().build(packer, options, [&](std::string_view line) { progress.emplace_back(line); });
    CHECK(image.id.starts_with("sha256:"));
    CHECK_FALSE(progress.empty());
    CHECK(co_await c.images().exists(tag));
    auto info = co_await c.images().inspect(tag);
    CHECK(info.id == image.id);
    // exact tag lookup: a prefix of the tag is not the image
    CHECK_FALSE(co_await c.images().exists(tag.substr(0, tag.size() - 1)));

    co_await c.images().tag(tag, tag + "-alias", "v1");
    CHECK(co_await c.images().exists(tag + "-alias:v1"));
    auto all = co_await c.images().list();
    bool listed = false;
    for (auto& img : all)
        for (auto& t : img.repo_tags) listed = listed || t.find(tag + "-alias:v1") != std::string::npos;
    CHECK(listed);

    // a failing build: the engine's error in the stream becomes build_failed with its message
    temp_dir bad;
    write_busybox_context(bad.path, "RUN exit 3\n");
    berth::tar::packer bad_packer(bad.path, "");
    berth::build_options bad_options;
    bad_options.tag = tag + "-bad";
    bad_options.force_remove_intermediate = true;  // a failed step's container is not left on the engine
    try {
        co_await c.images().build(bad_packer, bad_options);
        FAIL("a failing build succeeded");
    } catch (const berth::engine_error& err) {
        CHECK(err.code() == berth::engine_errc::build_failed);
        CHECK(err.message().find("3") != std::string::npos);
    }
    co_await c.images().remove(tag + "-alias:v1");
    co_await c.images().remove(tag, true);
    CHECK_FALSE(co_await c.images().exists(tag));
}

asio::awaitable<void> archive_endpoints(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const auto name = unique_name("archive");
    container_guard guard{e.address, name};
    auto id = co_await start_idle_container(c, name);

    temp_dir src;
    write_file(src / "payload/hello.txt", "hello, archive\n");
    write_file(src / "payload/nested/deep.txt", std::string(300000, 'z'));
    berth::tar::packer packer(src / "payload", "payload");
    co_await c.archives().put(id, "/tmp", packer);

    auto st = co_await c.archives().stat(id, "/tmp/payload/hello.txt");
    CHECK(st.name == "hello.txt");
    CHECK(st.size == 15);
    CHECK_FALSE(st.is_directory());
    auto dir = co_await c.archives().stat(id, "/tmp/payload");
    CHECK(dir.is_directory());
    CHECK_THROWS_AS(co_await c.archives().stat(id, "/tmp/none"), berth::not_found_error);

    // get streams a tar; read it with berth's reader
    berth::tar::reader reader;
    std::map<std::string, std::string> files;
    std::string current;
    auto sink = [&](std::span<const char> bytes) {
        reader.feed(bytes);
        for (;;) {
            auto ev = reader.next();
            if (ev == berth::tar::reader::event::need_more || ev == berth::tar::reader::event::end) break;
            if (ev == berth::tar::reader::event::entry) current = reader.current().name;
            if (ev == berth::tar::reader::event::data) files[current].append(reader.data().data(), reader.data().size());
        }
    };
    auto got = co_await c.archives().get(id, "/tmp/payload", sink);
    CHECK(got.is_directory());
    CHECK(files["payload/hello.txt"] == "hello, archive\n");
    CHECK(files["payload/nested/deep.txt"] == std::string(300000, 'z'));

    auto nothing = [](std::span<const char>) {};
    CHECK_THROWS_AS(co_await c.archives().get(id, "/tmp/none", nothing), berth::not_found_error);
    std::string empty_tar(1024, '\0');
    berth::http::memory_source source{empty_tar};
    if (e.name == "docker") {
        CHECK_THROWS_AS(co_await c.archives().put(id, "/no/such/dir", source), berth::not_found_error);
    } else {  // Podman's archive PUT creates missing parents
        co_await c.archives().put(id, "/no/such/dir", source);
        CHECK((co_await c.archives().stat(id, "/no/such/dir")).is_directory());
    }
}

asio::awaitable<void> many_requests(const engine_under_test& e) {
    using namespace asio::experimental::awaitable_operators;
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const auto name = unique_name("many");
    container_guard guard{e.address, name};
    auto id = co_await start_idle_container(c, name);
    const auto fds_before = open_fd_count();

    int ok = 0;
    for (int i = 0; i < 1000; ++i) ok += (co_await c.system().ping()) ? 1 : 0;
    CHECK(ok == 1000);
    CHECK(c.open_connections() <= 1);  // sequential requests reuse one keep-alive connection

    // 200 concurrent inspects on one io_context
    auto ex = co_await asio::this_coro::executor;
    std::atomic<int> done{0};
    std::atomic<int> failed{0};
    for (int i = 0; i < 200; ++i)
        asio::co_spawn(ex, c.containers().inspect(id), [&](std::exception_ptr err, berth::container_info info) {
            if (err || info.id != id) ++failed;
            ++done;
        });
    asio::steady_timer t(ex);
    while (done < 200) {
        t.expires_after(std::chrono::milliseconds(5));
        co_await t.async_wait(asio::use_awaitable);
    }
    CHECK(failed == 0);
    CHECK(c.open_connections() <= c.options().max_idle_connections);
    c.close_idle_connections();
    CHECK(c.open_connections() == 0);
    CHECK(open_fd_count() <= fds_before);
}

// Relays one TCP connection to the engine's unix socket, both ways, until either side closes.
asio::awaitable<void> relay(asio::generic::stream_protocol::socket& from, asio::generic::stream_protocol::socket& to) {
    std::array<char, 64 * 1024> buffer;
    for (;;) {
        auto [ec, n] = co_await from.async_read_some(asio::buffer(buffer), asio::as_tuple(asio::use_awaitable));
        if (n > 0) {
            auto [wec, wn] = co_await asio::async_write(to, asio::buffer(buffer.data(), n), asio::as_tuple(asio::use_awaitable));
            (void)wn;
            if (wec) break;
        }
        if (ec) break;
    }
    boost::system::error_code ignored;
    to.shutdown(asio::socket_base::shutdown_send, ignored);
}

asio::awaitable<void> proxy_connection(asio::ip::tcp::socket tcp, std::string unix_path) {
    using namespace asio::experimental::awaitable_operators;
    auto ex = co_await asio::this_coro::executor;
    asio::generic::stream_protocol::socket client_side(ex, asio::generic::stream_protocol(AF_INET, IPPROTO_TCP),
                                                       tcp.release());
    asio::generic::stream_protocol::socket engine_side(ex);
    co_await engine_side.async_connect(asio::local::stream_protocol::endpoint(unix_path), asio::use_awaitable);
    co_await (relay(client_side, engine_side) && relay(engine_side, client_side));
}

asio::awaitable<void> tcp_proxy(asio::ip::tcp::acceptor& acceptor, std::string unix_path) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
        asio::co_spawn(acceptor.get_executor(), proxy_connection(std::move(socket), unix_path), asio::detached);
    }
}

// The TCP transport against the real engine: a loopback TCP port relayed to the engine's unix socket.
asio::awaitable<void> over_tcp(const engine_under_test& e) {
    auto ex = co_await asio::this_coro::executor;
    asio::ip::tcp::acceptor acceptor(ex, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    auto port = acceptor.local_endpoint().port();
    asio::co_spawn(ex, tcp_proxy(acceptor, berth::parse_docker_host(e.address).path), asio::detached);
    auto c = berth::client::at(ex, "tcp://127.0.0.1:" + std::to_string(port));
    CHECK(c.transport().address().scheme == berth::host_address::kind::tcp);
    CHECK(co_await c.system().ping());
    auto v = co_await c.version();
    CHECK((v.kind == berth::engine_kind::podman) == (e.name == "podman"));
    const auto name = unique_name("tcp");
    container_guard guard{e.address, name};
    auto id = co_await start_idle_container(c, name);
    berth::exec_options ex_opts;
    ex_opts.cmd = {"sh", "-c", "echo over-tcp; exit 4"};
    berth::collected_output out;
    CHECK(co_await c.execs().run(id, ex_opts, out) == 4);
    CHECK(out.stdout_text == "over-tcp\n");
    acceptor.close();
}

// A time limit cancels an operation that would block (wait on a running container); the client stays usable.
asio::awaitable<void> timeout_and_cancel(const engine_under_test& e) {
    auto ex = co_await asio::this_coro::executor;
    auto c = berth::client::at(ex, e.address);
    const auto name = unique_name("cancel");
    container_guard guard{e.address, name};
    auto id = co_await start_idle_container(c, name);
    try {
        co_await berth::with_timeout(c.containers().wait(id), std::chrono::milliseconds(200));
        FAIL("wait on a running container returned");
    } catch (const boost::system::system_error& err) {
        CHECK(err.code() == asio::error::timed_out);
    }
    // cancellation through a slot, as a caller's own signal would do it
    asio::cancellation_signal signal;
    auto waited = asio::co_spawn(ex, c.containers().wait(id), asio::bind_cancellation_slot(signal.slot(), asio::use_future));
    asio::steady_timer t(ex, std::chrono::milliseconds(100));
    co_await t.async_wait(asio::use_awaitable);
    signal.emit(asio::cancellation_type::terminal);
    t.expires_after(std::chrono::milliseconds(50));
    co_await t.async_wait(asio::use_awaitable);
    CHECK_THROWS_AS(waited.get(), boost::system::system_error);
    // the pool is healthy: the interrupted connections were closed, not reused
    auto info = co_await c.containers().inspect(id);
    CHECK(info.state.running);
    CHECK(c.open_connections() <= 1);
}


// Requests whose reply legitimately comes late outlast a short request_timeout: a wait for a container that exits
// later, and a stop whose grace period runs out (PID 1 without a TERM handler ignores SIGTERM, so the engine waits
// the full grace period before SIGKILL). Without their allowances both would end in timed_out.
asio::awaitable<void> late_replies(const engine_under_test& e) {
    using namespace asio::experimental::awaitable_operators;
    auto ex = co_await asio::this_coro::executor;
    berth::client_options options;
    // short, yet long enough for an ordinary request on a loaded CI machine; the wait and the stop below take
    // longer than it on purpose
    options.request_timeout = std::chrono::seconds(5);
    auto c = berth::client::at(ex, e.address, options);
    co_await ensure_base_image(c);
    const auto waited = unique_name("late-wait");
    const auto stopped = unique_name("late-stop");
    container_guard guard_waited{e.address, waited};
    container_guard guard_stopped{e.address, stopped};
    berth::container_config cfg;
    cfg.image = base_image;
    cfg.host.network_mode = "none";
    cfg.cmd = {"sh", "-c", "sleep 8; exit 5"};
    auto exits = co_await c.containers().create(cfg, waited);
    cfg.cmd = {"sleep", "1000"};
    auto sleeps = co_await c.containers().create(cfg, stopped);
    co_await c.containers().start(exits.id);
    co_await c.containers().start(sleeps.id);
    // both at once, each on its own connection: the test takes one long reply's time, not two
    int code = co_await (c.containers().wait(exits.id) && c.containers().stop(sleeps.id, 8));
    CHECK(code == 5);
    auto info = co_await c.containers().inspect(sleeps.id);
    CHECK_FALSE(info.state.running);
    CHECK(info.state.exit_code == 137);  // killed after the grace period: the whole grace period was waited for
}

// The version berth negotiates with the test engines (both report API 1.41), a pinned one, and one the engine refuses.
asio::awaitable<void> pinned_versions(const engine_under_test& e) {
    auto ex = co_await asio::this_coro::executor;
    berth::client_options options;
    options.api_version = "1.40";
    auto c = berth::client::at(ex, e.address, options);
    CHECK(co_await c.api_version() == "1.40");
    auto listed = co_await c.containers().list();
    (void)listed;
    options.api_version = "1.44";
    auto too_new = berth::client::at(ex, e.address, options);
    try {
        co_await too_new.containers().list();
        FAIL("a version newer than the engine's was used");
    } catch (const berth::unsupported_api_version_error& err) {
        CHECK(err.status() == 0);  // found out from /version, before sending the request
        CHECK(std::string(err.what()).find("1.41") != std::string::npos);
    }
}

// A transport error names the engine, the request and the operation, and keeps its code.
asio::awaitable<void> connect_error_text(const engine_under_test&) {
    auto ex = co_await asio::this_coro::executor;
    temp_dir dir;
    const std::string address = "unix://" + (dir.path / "absent.sock").string();
    auto c = berth::client::at(ex, address);
    try {
        co_await c.system().ping();
        FAIL("ping to a missing socket succeeded");
    } catch (const boost::system::system_error& err) {
        std::string text = err.what();
        CHECK(text.starts_with(address + ": GET /_ping: connect: "));
        CHECK(text.find("/boost/") == std::string::npos);
        CHECK(err.code() == boost::system::errc::no_such_file_or_directory);
    }
}

} // namespace

TEST_SUITE("engine") {
    TEST_CASE("ping and version negotiation") { for_each_engine(ping_version); }
    TEST_CASE("container lifecycle: create, start, inspect, list, exec, logs, stop, remove") {
        for_each_engine(container_lifecycle);
    }
    TEST_CASE("wait and kill") { for_each_engine(wait_and_kill); }
    TEST_CASE("engine error replies: 404, 409, 400") { for_each_engine(engine_errors); }
    TEST_CASE("image build from a streamed context, tag, list, remove, build failure") {
        for_each_engine(build_from_stream);
    }
    TEST_CASE("archive stat, get and put") { for_each_engine(archive_endpoints); }
    TEST_CASE("the TCP transport (tcp://127.0.0.1 relayed to the engine)") { for_each_engine(over_tcp); }
    TEST_CASE("time limits and cancellation leave the client healthy") { for_each_engine(timeout_and_cancel); }
    TEST_CASE("a wait and a stop outlast a short request_timeout") { for_each_engine(late_replies); }
    TEST_CASE("a pinned API version is used, or refused when the engine does not speak it") {
        for_each_engine(pinned_versions);
    }
    TEST_CASE("a failed connect names the socket, the request and the operation") {
        for_each_engine(connect_error_text, true, false);
    }
    TEST_CASE("1000 sequential pings and 200 concurrent inspects, no leaked sockets") {
        for_each_engine(many_requests, true, false);
    }
}
