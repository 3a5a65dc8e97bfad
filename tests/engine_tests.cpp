// The Engine API client against real engines (Debian's dockerd, and Podman's compatible service where noted).
#include "support/engines.hpp"
#include "support/patterned_stream.hpp"
#include "support/tcp_proxy.hpp"

#include <berth/tar/reader.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <ctime>
#include <array>
#include <filesystem>
#include <optional>
#include <fstream>
#include <set>

using namespace berth_test;
namespace json = boost::json;
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

    berth::container_list_options by_label;
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
    ex.on_output = std::ref(out);
    int code = co_await c.execs().run(created.id, ex);
    CHECK(code == 7);
    CHECK(out.stdout_text == "out:hello there\n/bin\n");
    CHECK(out.stderr_text == "err\n");

    // logs: the container's own output, demultiplexed
    berth::collected_output logs;
    berth::container_logs_options to_logs;
    to_logs.on_output = std::ref(logs);
    for (int attempt = 0; attempt < 50 && logs.stderr_text.empty(); ++attempt) {
        logs = {};
        co_await c.containers().logs(created.id, to_logs);
    }
    CHECK(logs.stdout_text == "to-stdout\n");
    CHECK(logs.stderr_text == "to-stderr\n");

    berth::container_stop_options within_5s;  // named: g++ 12 and braced lists inside co_await (see berth::argv)
    within_5s.timeout = 5;
    co_await c.containers().stop(created.id, within_5s);
    co_await c.containers().stop(created.id, within_5s);  // already stopped: not an error
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
    // 400: a memory limit under Docker's 6 MB minimum is a bad configuration (a negative one berth refuses itself)
    if (e.name == "docker") {
        berth::container_config tiny = cfg;
        tiny.host.memory = 1 << 20;
        try {
            co_await c.containers().create(tiny, unique_name("tiny"));
            FAIL("a 1 MiB memory limit was accepted");
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
    options.on_output = [&](berth::output_stream, std::string_view line) { progress.emplace_back(line); };
    auto image = co_await c.images().build(packer, options);
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
    co_await c.images().remove(tag, {.force = true});
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
            if (ev == berth::tar::reader::event::data)
                files[current].append(reader.data().data(), reader.data().size());
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
    ex_opts.on_output = std::ref(out);
    CHECK(co_await c.execs().run(id, ex_opts) == 4);
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
    } catch (const boost::system::system_error& err) { CHECK(err.code() == asio::error::timed_out); }
    // cancellation through a slot, as a caller's own signal would do it
    asio::cancellation_signal signal;
    auto waited = asio::co_spawn(ex, c.containers().wait(id),
                                 asio::bind_cancellation_slot(signal.slot(), asio::use_future));
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
    berth::container_stop_options within_8s;
    within_8s.timeout = 8;
    int code = co_await (c.containers().wait(exits.id) && c.containers().stop(sleeps.id, within_8s));
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


// Removes volumes by name at scope exit, whatever the test did (declared before the containers using them, so
// those go first).
constexpr auto remove_volume = [](berth::client& c, std::string name) -> asio::awaitable<void> {
    co_await c.volumes().remove(name, {.force = true});
};
using volume_guard = removal_guard<decltype(remove_volume)>;

// Volumes: create with labels and local driver options, inspect, list by label, a volume in use refused, prune by
// label, remove, a missing one, and the cluster volume update refused before sending on API 1.41.
asio::awaitable<void> volume_operations(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    const auto name = unique_name("vol");
    const auto spare = unique_name("vol-spare");  // unused, with the test's label: pruned
    const auto other = unique_name("vol-other");  // unused, another label: kept by the prune
    const auto user = unique_name("vol-user");    // a container using `name`
    volume_guard volumes{e.address, {name, spare, other}};
    container_guard container{e.address, user};
    const std::string label = "berth.test.volume";

    // Podman's local driver refuses o=size=... without project quotas on its filesystem; nodev both accept.
    const std::map<std::string, std::string> driver_opts{{"type", "tmpfs"}, {"device", "tmpfs"}, {"o", "nodev"}};
    berth::volume_create_options options{
        .name = name, .driver = "local", .driver_opts = driver_opts, .labels = {{label, name}, {"berth.role", "data"}}};
    auto created = co_await c.volumes().create(options);
    CHECK(created.name == name);
    CHECK(created.driver == "local");
    CHECK(created.labels == std::map<std::string, std::string>{{label, name}, {"berth.role", "data"}});
    CHECK(created.options == driver_opts);

    auto info = co_await c.volumes().inspect(name);
    CHECK(info.name == name);
    CHECK(info.driver == "local");
    CHECK(info.scope == "local");
    CHECK_FALSE(info.mountpoint.empty());
    CHECK_FALSE(info.created_at.empty());
    CHECK(info.labels.at(label) == name);
    CHECK(info.options == driver_opts);
    CHECK_FALSE(info.cluster_volume);
    CHECK(info.raw.at("Name").as_string() == name);
    CHECK(co_await c.volumes().exists(name));

    berth::volume_create_options spare_options{.name = spare, .labels = {{label, name}}};
    co_await c.volumes().create(spare_options);
    berth::volume_create_options other_options{.name = other, .labels = {{label + ".other", name}}};
    co_await c.volumes().create(other_options);

    berth::volume_list_options by_label{.filters = {{"label", {label + "=" + name}}}};
    auto listed = co_await c.volumes().list(by_label);
    std::set<std::string> listed_names;
    for (auto& v : listed.volumes) listed_names.insert(v.name);
    CHECK(listed_names == std::set<std::string>{name, spare});
    berth::volume_list_options by_name{.filters = {{"name", {other}}}};
    listed = co_await c.volumes().list(by_name);
    REQUIRE(listed.volumes.size() == 1);
    CHECK(listed.volumes[0].name == other);
    CHECK(listed.volumes[0].labels.at(label + ".other") == name);

    // a container (created, never started: nothing is mounted) holds `name`
    berth::container_config cfg;
    cfg.image = base_image;
    cfg.cmd = {"true"};
    cfg.host.network_mode = "none";
    cfg.host.mounts = {{.type = "volume", .source = name, .target = "/data"}};
    co_await c.containers().create(cfg, user);
    try {
        co_await c.volumes().remove(name);
        FAIL("a volume in use was removed");
    } catch (const berth::conflict_error& err) {
        CHECK(err.status() == 409);
        CHECK(err.code() == berth::engine_errc::conflict);
        MESSAGE(e.name << " refuses removing a volume in use: " << err.message());
    }

    // pruning by label: only the unused labelled volume goes (on API 1.42+ named volumes need all=true)
    berth::volume_prune_options prune{.filters = {{"label", {label + "=" + name}}}};
    prune.all = co_await c.core().api_at_least("1.42");
    auto pruned = co_await c.volumes().prune(prune);
    MESSAGE(e.name << " pruned " << pruned.volumes_deleted.size() << " volume(s), " << pruned.space_reclaimed
                   << " bytes: " << (pruned.volumes_deleted.empty() ? std::string() : pruned.volumes_deleted[0]));
    CHECK(pruned.volumes_deleted == std::vector<std::string>{spare});
    CHECK_FALSE(co_await c.volumes().exists(spare));
    CHECK(co_await c.volumes().exists(name));
    CHECK(co_await c.volumes().exists(other));

    co_await c.containers().remove(user, {.force = true});
    co_await c.volumes().remove(name);
    CHECK_FALSE(co_await c.volumes().exists(name));
    try {
        co_await c.volumes().remove(name);
        FAIL("a missing volume was removed");
    } catch (const berth::not_found_error& err) {
        CHECK(err.status() == 404);
        CHECK(err.code() == berth::engine_errc::not_found);
    }
    CHECK_THROWS_AS(co_await c.volumes().inspect(name), berth::not_found_error);

    // a cluster volume update needs API 1.42; the test engines speak 1.41, so it is refused before sending
    berth::volume_update_options update{.version = 1, .spec = {{"AccessMode", {{"Availability", "drain"}}}}};
    if (!co_await c.core().api_at_least("1.42")) {
        try {
            co_await c.volumes().update(other, update);
            FAIL("a cluster volume update was sent on API < 1.42");
        } catch (const berth::unsupported_api_version_error& err) {
            CHECK(err.status() == 0);  // berth's own refusal, not the engine's
            CHECK(err.endpoint() == "PUT /volumes/" + other);
        }
    } else {
        // no Swarm here: the engine itself refuses (Docker: 503 not a swarm manager)
        CHECK_THROWS_AS(co_await c.volumes().update(other, update), berth::engine_error);
    }
    co_await c.volumes().remove(other);
}
// --- Networks (issue #18). No bridge is ever created and nothing leaves the host: on Docker a config-only network
// (no driver runs, no link is made), on Podman a macvlan network whose parent is the loopback device (Podman only
// writes its configuration; nothing joins it). Containers stay in network mode none. ---

// Removes networks by name at scope exit, whatever the test did.
constexpr auto remove_network = [](berth::client& c, std::string name) -> asio::awaitable<void> {
    co_await c.networks().remove(name);
};
using network_guard = removal_guard<decltype(remove_network)>;

// The host's network interfaces (the engines under test run on this machine): a network created here adds none.
std::set<std::string> host_interfaces() {
    std::set<std::string> out;
    for (auto& entry : fs::directory_iterator("/sys/class/net")) out.insert(entry.path().filename().string());
    return out;
}

// A network that creates no link and no bridge on either engine, with a full IPAM configuration in the
// documentation ranges (TEST-NET-2, 2001:db8::/32: routed nowhere, and not this host's own subnet).
berth::network_create_options linkless_network(const engine_under_test& e, const std::string& name,
                                               std::map<std::string, std::string> labels) {
    berth::network_create_options options{.name = name, .driver = "macvlan", .labels = std::move(labels)};
    options.options = {{"parent", "lo"}};
    options.config_only = e.name == "docker";  // Podman 4.3 does not know config-only networks
    options.enable_ipv6 = true;
    options.ipam.driver = "default";
    options.ipam.config = {{.subnet = "198.51.100.0/24", .ip_range = "198.51.100.128/25", .gateway = "198.51.100.1"},
                           {.subnet = "2001:db8:1::/64"}};
    if (e.name == "docker") {  // Podman's CNI backend keeps neither auxiliary addresses nor IPAM options
        options.ipam.config[0].auxiliary_addresses = {{"reserved", "198.51.100.2"}};
        options.ipam.options = {{"berth.ipam", "kept"}};
    }
    return options;
}

asio::awaitable<void> network_operations(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    const bool docker = e.name == "docker";
    const auto name = unique_name("net");
    const auto spare = unique_name("net-spare");  // only it carries the prune label
    const auto refused = unique_name("net-refused");
    const auto user = unique_name("net-user");  // a container in network mode none
    network_guard networks{e.address, {name, spare, refused}};
    container_guard container{e.address, user};
    const std::string label = "berth.test.network";
    const auto interfaces_before = host_interfaces();

    // the built-in networks: listed and inspected, nothing created
    auto all = co_await c.networks().list();
    std::set<std::string> all_names;
    for (auto& n : all) all_names.insert(n.name);
    const std::string builtin = docker ? "none" : "podman";
    auto none = co_await c.networks().inspect(builtin);
    CHECK(none.name == builtin);
    CHECK(none.id.size() == 64);
    CHECK(none.scope == "local");
    CHECK_FALSE(none.created.empty());
    if (docker) {
        CHECK(all_names.contains("none"));
        CHECK(all_names.contains("host"));
        CHECK(none.driver == "null");
    } else {
        // Podman lists its default network under Docker's name "bridge", and inspects it under its own name
        CHECK(all_names.contains("bridge"));
        CHECK(none.driver == "bridge");
        CHECK(std::any_of(all.begin(), all.end(), [&](auto& n) { return n.id == none.id; }));
    }

    // create, with every field both engines accept
    auto options = linkless_network(e, name, {{label, name}, {"berth.role", "main"}});
    auto created = co_await c.networks().create(options);
    CHECK(created.id.size() == 64);
    CHECK(created.warning.empty());
    auto spare_options = linkless_network(e, spare, {{label, name}, {label + ".prune", name}});
    co_await c.networks().create(spare_options);
    CHECK(host_interfaces() == interfaces_before);

    auto info = co_await c.networks().inspect(name);
    CHECK(info.name == name);
    CHECK(info.id == created.id);
    CHECK(info.scope == "local");
    CHECK_FALSE(info.created.empty());
    CHECK(info.enable_ipv6);
    CHECK_FALSE(info.enable_ipv4);  // reported from API 1.48 on
    CHECK_FALSE(info.internal);
    CHECK_FALSE(info.attachable);
    CHECK_FALSE(info.ingress);
    CHECK(info.config_from.empty());
    CHECK(info.containers.empty());
    CHECK(info.labels == std::map<std::string, std::string>{{label, name}, {"berth.role", "main"}});
    CHECK(info.ipam.driver == "default");
    REQUIRE(info.ipam.config.size() == 2);
    CHECK(info.ipam.config[0].subnet == "198.51.100.0/24");
    CHECK(info.ipam.config[0].gateway == "198.51.100.1");
    CHECK(info.ipam.config[1].subnet == "2001:db8:1::/64");
    CHECK(info.raw.at("Name").as_string() == name);
    if (docker) {
        CHECK(info.driver == "null");  // a config-only network runs no driver
        CHECK(info.config_only);
        CHECK(info.ipam.config[0].ip_range == "198.51.100.128/25");
        CHECK(info.ipam.config[0].auxiliary_addresses ==
              std::map<std::string, std::string>{{"reserved", "198.51.100.2"}});
        CHECK(info.ipam.options == std::map<std::string, std::string>{{"berth.ipam", "kept"}});
        CHECK(info.options == std::map<std::string, std::string>{{"parent", "lo"}});
    } else {
        CHECK(info.driver == "macvlan");
        CHECK_FALSE(info.config_only);
        CHECK(info.ipam.config[1].gateway == "2001:db8:1::1");  // Podman picks the first address
    }
    CHECK(co_await c.networks().exists(name));
    CHECK(co_await c.networks().exists(created.id));

    berth::network_inspect_options local{.verbose = true, .scope = "local"};
    CHECK((co_await c.networks().inspect(name, local)).id == created.id);
    berth::network_inspect_options swarm{.scope = "swarm"};
    if (docker) {
        CHECK_THROWS_AS(co_await c.networks().inspect(name, swarm), berth::not_found_error);
    } else {
        CHECK((co_await c.networks().inspect(name, swarm)).id == created.id);  // Podman ignores the scope
    }

    // list by label, by name, by driver
    berth::network_list_options by_label{.filters = {{"label", {label + "=" + name}}}};
    std::set<std::string> listed;
    for (auto& n : co_await c.networks().list(by_label)) listed.insert(n.name);
    CHECK(listed == std::set<std::string>{name, spare});
    berth::network_list_options by_name{.filters = {{"name", {spare}}}};
    auto named = co_await c.networks().list(by_name);
    REQUIRE(named.size() == 1);
    CHECK(named[0].name == spare);
    CHECK(named[0].labels.at(label + ".prune") == name);

    // refused creations: EnableIPv4 before sending on API 1.41; a second network of a taken name on Podman;
    // a network configured from the config-only one on Docker (ConfigFrom reaches the macvlan driver, which
    // refuses the loopback parent)
    if (!co_await c.core().api_at_least("1.48")) {
        berth::network_create_options ipv4{.name = refused, .driver = "macvlan", .enable_ipv4 = true};
        try {
            co_await c.networks().create(ipv4);
            FAIL("EnableIPv4 was sent on API < 1.48");
        } catch (const berth::unsupported_api_version_error& err) {
            CHECK(err.status() == 0);
            CHECK(err.endpoint() == "POST /networks/create");
        }
    }
    if (docker) {
        berth::network_create_options from{.name = refused, .driver = "macvlan", .config_from = name};
        try {
            co_await c.networks().create(from);
            FAIL("a macvlan network on the loopback device was created");
        } catch (const berth::engine_error& err) {
            MESSAGE("docker refuses ConfigFrom a loopback parent: " << err.status() << " " << err.message());
            CHECK(contains(err.message(), "loopback"));
        }
    } else {
        auto again = linkless_network(e, name, {});
        try {
            co_await c.networks().create(again);
            FAIL("a second network of the same name was created");
        } catch (const berth::engine_error& err) {
            MESSAGE("podman refuses a taken network name: " << err.status() << " " << err.message());
            CHECK(contains(err.message(), "already"));
        }
    }
    CHECK_FALSE(co_await c.networks().exists(refused));
    CHECK(host_interfaces() == interfaces_before);

    // connect and disconnect: a container in network mode none can join nothing, and the engines say so
    berth::container_config cfg;
    cfg.image = base_image;
    cfg.cmd = {"true"};
    cfg.host.network_mode = "none";
    co_await c.containers().create(cfg, user);
    berth::network_connect_options with_alias{};
    with_alias.endpoint_config.aliases = {"db"};
    try {
        co_await c.networks().connect(name, user, with_alias);
        FAIL("a container in network mode none was connected");
    } catch (const berth::not_found_error&) {
        FAIL("the refusal of a network-mode-none container is not a not-found");
    } catch (const berth::engine_error& err) {
        MESSAGE(e.name << " refuses connecting a container in network mode none: " << err.status() << " "
                       << err.message());
        CHECK(err.status() == (docker ? 400u : 500u));
        CHECK(err.endpoint() == "POST /v1.41/networks/" + name + "/connect");
    }
    try {
        co_await c.networks().disconnect(name, user);
        FAIL("a container never connected was disconnected");
    } catch (const berth::engine_error& err) {
        MESSAGE(e.name << " refuses disconnecting a container not connected: " << err.status() << " " << err.message());
        CHECK(err.status() == 500);
    }
    const auto missing = unique_name("net-no-such-container");
    CHECK_THROWS_AS(co_await c.networks().connect(name, missing), berth::not_found_error);
    berth::network_disconnect_options force{.force = true};
    CHECK_THROWS_AS(co_await c.networks().disconnect(name, missing, force), berth::not_found_error);
    // fields newer than the engine's API are refused before sending
    if (!co_await c.core().api_at_least("1.44")) {
        berth::network_connect_options mac{};
        mac.endpoint_config.mac_address = "02:42:ac:11:00:04";
        CHECK_THROWS_AS(co_await c.networks().connect(name, user, mac), berth::unsupported_api_version_error);
        berth::network_connect_options priority{};
        priority.endpoint_config.gw_priority = 10;
        CHECK_THROWS_AS(co_await c.networks().connect(name, user, priority), berth::unsupported_api_version_error);
    }
    auto user_info = co_await c.containers().inspect(user);
    CHECK(user_info.raw.at("HostConfig").at("NetworkMode").as_string() == "none");
    CHECK((co_await c.networks().inspect(name)).containers.empty());
    co_await c.containers().remove(user, {.force = true});

    // prune by label: Docker keeps config-only networks, Podman removes the unused labelled one
    berth::network_prune_options prune{.filters = {{"label", {label + ".prune=" + name}}}};
    auto pruned = co_await c.networks().prune(prune);
    MESSAGE(e.name << " pruned " << pruned.networks_deleted.size() << " network(s)");
    if (docker) {
        CHECK(pruned.networks_deleted.empty());
        CHECK(co_await c.networks().exists(spare));
        co_await c.networks().remove(spare);
    } else {
        CHECK(pruned.networks_deleted == std::vector<std::string>{spare});
    }
    CHECK_FALSE(co_await c.networks().exists(spare));
    CHECK(co_await c.networks().exists(name));

    // remove, by id; a missing one; a pre-defined one
    co_await c.networks().remove(created.id);
    CHECK_FALSE(co_await c.networks().exists(name));
    try {
        co_await c.networks().remove(name);
        FAIL("a missing network was removed");
    } catch (const berth::not_found_error& err) {
        CHECK(err.status() == 404);
        CHECK(err.code() == berth::engine_errc::not_found);
    }
    CHECK_THROWS_AS(co_await c.networks().inspect(name), berth::not_found_error);
    if (docker) {
        try {
            co_await c.networks().remove("none");
            FAIL("the pre-defined network none was removed");
        } catch (const berth::engine_error& err) {
            CHECK(err.status() == 403);
            CHECK(contains(err.message(), "pre-defined"));
        }
    }
    CHECK(host_interfaces() == interfaces_before);
}

// --- The container lifecycle operations of issue #18: restart, pause, rename, changes, prune, update, resize ---

// A field of the inspect reply's State or HostConfig, as the engine wrote it.
const boost::json::value* raw_field(const berth::container_info& info, std::string_view section, std::string_view key) {
    auto* s = info.raw.if_contains(section);
    return s && s->is_object() ? s->get_object().if_contains(key) : nullptr;
}
std::string started_at(const berth::container_info& info) {
    auto* v = raw_field(info, "State", "StartedAt");
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
}
bool paused(const berth::container_info& info) {
    auto* v = raw_field(info, "State", "Paused");
    return v && v->is_bool() && v->get_bool();
}

asio::awaitable<void> restart_pause_rename(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    const auto name = unique_name("restart");
    const auto renamed = name + "-renamed";
    container_guard guard{e.address, name};
    container_guard renamed_guard{e.address, renamed};

    // `sleep` as PID 1 ignores SIGTERM, so the restart has to kill it; t=0 only spares the 10 s grace period, which
    // is timing, not behaviour: the exact `t=0` query is asserted by the mock suite, this checks the restart itself
    berth::container_config cfg;
    cfg.image = base_image;
    cfg.cmd = {"sleep", "1000"};
    cfg.host.network_mode = "none";
    auto created = co_await c.containers().create(cfg, name);
    co_await c.containers().start(created.id);
    auto before = co_await c.containers().inspect(created.id);
    REQUIRE(before.state.running);
    berth::container_restart_options at_once;
    at_once.timeout = 0;
    co_await c.containers().restart(created.id, at_once);
    auto after = co_await c.containers().inspect(created.id);
    CHECK(after.state.running);
    CHECK(after.state.pid > 0);
    CHECK_FALSE(started_at(after).empty());
    CHECK(started_at(after) != started_at(before));

    // Both test engines speak API 1.41: a restart signal is refused before anything is sent
    berth::container_restart_options with_signal;
    with_signal.timeout = 0;
    with_signal.signal = "SIGKILL";
    if (co_await c.api_version() == "1.41")
        CHECK_THROWS_AS(co_await c.containers().restart(created.id, with_signal), berth::unsupported_api_version_error);

    // pause, pause again (refused), unpause, unpause again (refused)
    co_await c.containers().pause(created.id);
    auto frozen = co_await c.containers().inspect(created.id);
    CHECK(paused(frozen));
    CHECK(frozen.state.status == "paused");
    try {
        co_await c.containers().pause(created.id);
        FAIL("a paused container was paused again");
    } catch (const berth::engine_error& err) {
        CHECK(err.code() == berth::engine_errc::conflict);
        CHECK(err.status() == (e.name == "docker" ? 409u : 500u));  // Podman: "container state improper"
    }
    co_await c.containers().unpause(created.id);
    auto thawed = co_await c.containers().inspect(created.id);
    CHECK_FALSE(paused(thawed));
    CHECK(thawed.state.running);
    CHECK(thawed.state.status == "running");
    try {
        co_await c.containers().unpause(created.id);
        FAIL("a running container was unpaused");
    } catch (const berth::engine_error& err) {
        CHECK(err.code() == berth::engine_errc::conflict);
        CHECK(err.status() == 500u);  // Docker 20.10: "is not paused"; Podman: "container state improper"
    }

    // rename: the new name finds it, the old one no longer does
    co_await c.containers().rename(created.id, renamed);
    auto by_new_name = co_await c.containers().inspect(renamed);
    CHECK(by_new_name.id == created.id);
    CHECK(by_new_name.name == renamed);
    CHECK_THROWS_AS(co_await c.containers().inspect(name), berth::not_found_error);
    CHECK_THROWS_AS(co_await c.containers().rename(created.id, ""), berth::invalid_argument_error);
}

asio::awaitable<void> changes_prune_update_resize(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    const auto name = unique_name("changes");
    container_guard guard{e.address, name};
    auto id = co_await start_idle_container(c, name);

    // changes: a file written, a file of the image deleted
    berth::exec_options ex;
    ex.cmd = {"sh", "-c", "echo x > /tmp/x && rm /bin/cat"};
    CHECK(co_await c.execs().run(id, ex) == 0);
    auto changes = co_await c.containers().changes(id);
    std::map<std::string, berth::filesystem_change_kind> kinds;
    // Besides these, Docker lists /sbin and /sbin/docker-init (the init) as added, Podman /etc as modified
    for (auto& ch : changes) kinds[ch.path] = ch.kind;
    REQUIRE(kinds.contains("/tmp/x"));
    CHECK(kinds["/tmp/x"] == berth::filesystem_change_kind::added);
    REQUIRE(kinds.contains("/bin/cat"));
    CHECK(kinds["/bin/cat"] == berth::filesystem_change_kind::deleted);
    CHECK(kinds["/tmp"] == berth::filesystem_change_kind::modified);

    // update: memory and pids limit, then read back from HostConfig. Podman 4.3 has no such endpoint: 404.
    berth::container_update_options limits;
    limits.memory = 64 * 1024 * 1024;
    limits.memory_swap = 128 * 1024 * 1024;
    limits.pids_limit = 200;
    if (e.name == "podman") {
        try {
            co_await c.containers().update(id, limits);
            FAIL("Podman 4.3 updated a container (has it gained the endpoint? then test it as Docker's)");
        } catch (const berth::not_found_error& err) { CHECK(err.status() == 404); }
    } else {
        co_await c.containers().update(id, limits);  // warnings: Docker warns about IPv4 forwarding here
        auto info = co_await c.containers().inspect(id);
        auto* memory = raw_field(info, "HostConfig", "Memory");
        auto* pids = raw_field(info, "HostConfig", "PidsLimit");
        REQUIRE(memory != nullptr);
        REQUIRE(pids != nullptr);
        CHECK(memory->to_number<std::int64_t>() == 64 * 1024 * 1024);
        CHECK(pids->to_number<std::int64_t>() == 200);
    }

    // resize: a tty container takes it; a container without a tty
    const auto tty_name = unique_name("tty");
    container_guard tty_guard{e.address, tty_name};
    berth::container_config cfg;
    cfg.image = base_image;
    cfg.cmd = {"sleep", "1000"};
    cfg.host.network_mode = "none";
    cfg.tty = true;
    auto tty = co_await c.containers().create(cfg, tty_name);
    co_await c.containers().start(tty.id);
    co_await c.containers().resize(tty.id, 40, 100);
    co_await c.containers().resize(id, 40, 100);  // both engines accept it without a tty, and do nothing

    // prune with a label filter: only the stopped labelled container goes
    const auto label = "berth.test.prune=" + name;
    const auto stopped_name = unique_name("prune-stopped");
    const auto running_name = unique_name("prune-running");
    const auto other_name = unique_name("prune-other");
    container_guard stopped_guard{e.address, stopped_name}, running_guard{e.address, running_name},
        other_guard{e.address, other_name};
    berth::container_config labelled;
    labelled.image = base_image;
    labelled.cmd = {"true"};
    labelled.host.network_mode = "none";
    labelled.labels = {{"berth.test.prune", name}};
    auto stopped = co_await c.containers().create(labelled, stopped_name);
    co_await c.containers().start(stopped.id);
    CHECK(co_await c.containers().wait(stopped.id) == 0);
    labelled.cmd = {"sleep", "1000"};
    auto running = co_await c.containers().create(labelled, running_name);
    co_await c.containers().start(running.id);
    berth::container_config unlabelled = labelled;
    unlabelled.labels = {{"berth.test.prune", name + "-other"}};
    unlabelled.cmd = {"true"};
    auto other = co_await c.containers().create(unlabelled, other_name);
    berth::container_prune_options by_label;
    by_label.filters["label"] = {label};
    auto pruned = co_await c.containers().prune(by_label);
    CHECK(pruned.containers_deleted == std::vector<std::string>{stopped.id});
    CHECK_THROWS_AS(co_await c.containers().inspect(stopped.id), berth::not_found_error);
    CHECK((co_await c.containers().inspect(running.id)).state.running);
    CHECK((co_await c.containers().inspect(other.id)).id == other.id);
}

// --- Swarm: the swarm itself on private engines; refusals on engines in no swarm ---

// What `op` threw, when it threw an E; nullopt when it succeeded.
template <class E, class T>
asio::awaitable<std::optional<E>> refusal_of(asio::awaitable<T> op) {
    try {
        co_await std::move(op);
    } catch (const E& e) { co_return e; }
    co_return std::nullopt;
}

// Two private dockerds (scripts/engine) in a network namespace of their own with nothing but loopback, so that what
// a Swarm sets up (its listeners on 127.0.0.1-2:2377, gossip, docker_gwbridge, VXLAN) stays inside it and goes
// with it. Stopped, their state and the namespace removed, at scope exit. Never the shared engines or swarm.
struct private_swarm_engines {
    std::string netns = "berth-swarmtest-" + std::to_string(::getpid());
    std::array<std::string, 2> dirs{netns + "-1", netns + "-2"};
    std::array<std::string, 2> addresses{};
    std::string command(int i, const std::string& action) const {
        const auto script = fs::path(BERTH_TEST_DATA_DIR).parent_path().parent_path() / "scripts" / "engine";
        return "BERTH_ENGINE_NETNS=" + netns + " BERTH_ENGINE_DIR=/tmp/" + dirs[i] + " " + script.string() + " " +
               action + " docker";
    }
    bool start(int i) {
        const std::string out_file = "/tmp/" + dirs[i] + ".address";
        if (std::system((command(i, "start") + " > " + out_file).c_str()) != 0) return false;
        addresses[i] = read_file(out_file);
        fs::remove(out_file);
        while (!addresses[i].empty() && addresses[i].back() == '\n') addresses[i].pop_back();
        return !addresses[i].empty();
    }
    bool started = start(0) && start(1);
    bool restart(int i) const { return std::system((command(i, "restart") + " >/dev/null").c_str()) == 0; }
    ~private_swarm_engines() {
        for (int i : {0, 1}) (void)std::system((command(i, "stop") + " >/dev/null 2>&1").c_str());
    }
};

// The whole life of a swarm: init with every option, inspect, a second init refused, a worker joins (and cannot
// inspect), update (a label, autolock, a rotated worker token; a stale version refused), the unlock key and its
// rotation, a node that is not down refused removal and removed by force once it left, the manager restarted
// locked and unlocked (a wrong key refused), and a manager's leave refused unless forced.
asio::awaitable<void> swarm_lifecycle(const private_swarm_engines& engines) {
    auto ex = co_await asio::this_coro::executor;
    auto a = berth::client::at(ex, engines.addresses[0]);
    auto b = berth::client::at(ex, engines.addresses[1]);

    auto outside = co_await refusal_of<berth::engine_error>(a.swarm().inspect());
    REQUIRE(outside);
    CHECK(outside->status() == 503);
    CHECK(outside->code() == berth::engine_errc::server_error);
    CHECK(contains(outside->message(), "not a swarm manager"));

    berth::swarm_init_options init{
        .listen_addr = "127.0.0.1:2377",
        .advertise_addr = "127.0.0.1",
        .data_path_addr = "127.0.0.1",
        .data_path_port = 4790,
        .default_addr_pool = {"10.123.0.0/16"},
        .subnet_size = 26,
        .spec = {{"Labels", {{"berth.test", "swarm"}}}, {"Orchestration", {{"TaskHistoryRetentionLimit", 3}}}}};
    const std::string manager_id = co_await a.swarm().init(init);
    auto s = co_await a.swarm().inspect();
    CHECK_FALSE(s.id.empty());
    CHECK(s.version > 0);
    CHECK(s.name == "default");
    CHECK(s.labels == std::map<std::string, std::string>{{"berth.test", "swarm"}});
    CHECK(s.task_history_retention_limit == 3);
    CHECK_FALSE(s.autolock_managers);
    CHECK(s.data_path_port == 4790);
    CHECK(s.default_addr_pool == std::vector<std::string>{"10.123.0.0/16"});
    CHECK(s.subnet_size == 26);
    CHECK_FALSE(s.created_at.empty());
    CHECK_FALSE(s.updated_at.empty());
    CHECK(s.join_tokens.worker.starts_with("SWMTKN-1-"));
    CHECK(s.join_tokens.manager.starts_with("SWMTKN-1-"));
    CHECK(s.join_tokens.worker != s.join_tokens.manager);
    CHECK(s.raw.contains("TLSInfo"));
    auto nodes = co_await a.swarm().list_nodes();
    REQUIRE(nodes.size() == 1);
    CHECK(nodes[0].id == manager_id);
    CHECK(nodes[0].role == "manager");
    auto twice = co_await refusal_of<berth::engine_error>(a.swarm().init(init));
    REQUIRE(twice);
    CHECK(twice->status() == 503);
    CHECK(contains(twice->message(), "already part of a swarm"));
    CHECK((co_await a.swarm().unlock_key()).empty());  // no autolock: no key

    berth::swarm_join_options join{.listen_addr = "127.0.0.2:2377",
                                   .advertise_addr = "127.0.0.2",
                                   .data_path_addr = "127.0.0.2",
                                   .remote_addrs = {"127.0.0.1:2377"},
                                   .join_token = s.join_tokens.worker};
    co_await b.swarm().join(join);
    auto worker_view = co_await refusal_of<berth::engine_error>(b.swarm().inspect());
    REQUIRE(worker_view);
    CHECK(worker_view->status() == 503);
    nodes = co_await a.swarm().list_nodes();
    REQUIRE(nodes.size() == 2);
    const std::string worker_id = nodes[0].id == manager_id ? nodes[1].id : nodes[0].id;
    CHECK((co_await a.swarm().inspect_node(worker_id)).role == "worker");

    auto spec = s.spec;
    spec["Labels"].as_object()["berth.updated"] = "1";
    spec["EncryptionConfig"] = boost::json::object{{"AutoLockManagers", true}};
    berth::swarm_update_options update{.version = s.version, .spec = spec, .rotate_worker_token = true};
    co_await a.swarm().update(update);
    auto updated = co_await a.swarm().inspect();
    CHECK(updated.version > s.version);
    CHECK(updated.labels.at("berth.updated") == "1");
    CHECK(updated.autolock_managers);
    CHECK(updated.join_tokens.worker != s.join_tokens.worker);
    CHECK(updated.join_tokens.manager == s.join_tokens.manager);
    auto stale = co_await refusal_of<berth::engine_error>(a.swarm().update(update));
    REQUIRE(stale);
    CHECK(contains(stale->message(), "out of sequence"));
    const std::string first_key = co_await a.swarm().unlock_key();
    CHECK(first_key.starts_with("SWMKEY-1-"));
    berth::swarm_update_options rotate{
        .version = updated.version, .spec = updated.spec, .rotate_manager_unlock_key = true};
    co_await a.swarm().update(rotate);
    const std::string key = co_await a.swarm().unlock_key();
    CHECK(key.starts_with("SWMKEY-1-"));
    CHECK(key != first_key);

    auto not_down = co_await refusal_of<berth::engine_error>(a.swarm().remove_node(worker_id));
    REQUIRE(not_down);
    CHECK(not_down->status() == 400);
    CHECK(contains(not_down->message(), "is not down"));
    co_await b.swarm().leave();
    auto left = co_await refusal_of<berth::engine_error>(b.swarm().inspect());
    REQUIRE(left);
    CHECK(left->status() == 503);
    co_await a.swarm().remove_node(worker_id, {.force = true});
    nodes = co_await a.swarm().list_nodes();
    REQUIRE(nodes.size() == 1);
    CHECK(nodes[0].id == manager_id);
    CHECK_THROWS_AS(co_await a.swarm().remove_node(worker_id), berth::not_found_error);

    // Autolocked: after a restart the manager is locked until unlocked with the key.
    REQUIRE(engines.restart(0));
    auto restarted = berth::client::at(ex, engines.addresses[0]);
    auto locked = co_await refusal_of<berth::engine_error>(restarted.swarm().inspect());
    REQUIRE(locked);
    CHECK(locked->status() == 503);
    CHECK(contains(locked->message(), "unlocked"));
    auto wrong = co_await refusal_of<berth::engine_error>(restarted.swarm().unlock("SWMKEY-1-" + std::string(43, 'A')));
    REQUIRE(wrong);
    CHECK(wrong->code() == berth::engine_errc::unauthorized);
    co_await restarted.swarm().unlock(key);
    CHECK((co_await restarted.swarm().inspect()).id == s.id);

    auto last_manager = co_await refusal_of<berth::engine_error>(restarted.swarm().leave());
    REQUIRE(last_manager);
    CHECK(last_manager->status() == 503);
    CHECK(contains(last_manager->message(), "--force"));
    co_await restarted.swarm().leave({.force = true});
    auto gone = co_await refusal_of<berth::engine_error>(restarted.swarm().inspect());
    REQUIRE(gone);
    CHECK(gone->status() == 503);
}

// An engine in no swarm refuses every Swarm endpoint: Docker with 503 (only what changes nothing is asked of the
// shared engine), Podman, which has no Swarm, with 404 for GET /swarm and 503 for the others.
asio::awaitable<void> swarm_refused_outside_a_swarm(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const bool podman = e.name == "podman";
    auto expect_refused = [&](std::optional<berth::engine_error> r, std::string what) {
        CAPTURE(what);
        REQUIRE(r);
        CHECK(r->status() == 503);
        CHECK(contains(r->message(), podman ? "Podman does not support" : "not a swarm manager"));
    };
    if (podman) {
        CHECK_THROWS_AS(co_await c.swarm().inspect(), berth::not_found_error);
    } else {
        expect_refused(co_await refusal_of<berth::engine_error>(c.swarm().inspect()), "inspect");
    }
    expect_refused(co_await refusal_of<berth::engine_error>(c.swarm().unlock_key()), "unlock_key");
    expect_refused(co_await refusal_of<berth::engine_error>(c.swarm().inspect_task("nosuchtask")), "inspect_task");
    expect_refused(co_await refusal_of<berth::engine_error>(c.swarm().service_logs("nosuchservice")), "service_logs");
    expect_refused(co_await refusal_of<berth::engine_error>(c.swarm().task_logs("nosuchtask")), "task_logs");
    if (!podman) co_return;
    berth::swarm_init_options init{.listen_addr = "127.0.0.1:2377"};
    expect_refused(co_await refusal_of<berth::engine_error>(c.swarm().init(init)), "init");
    berth::swarm_join_options join{.listen_addr = "127.0.0.1:2377", .remote_addrs = {"127.0.0.1:2377"}};
    expect_refused(co_await refusal_of<berth::engine_error>(c.swarm().join(join)), "join");
    expect_refused(co_await refusal_of<berth::engine_error>(c.swarm().leave({.force = true})), "leave");
    berth::swarm_update_options update{.version = 1};
    expect_refused(co_await refusal_of<berth::engine_error>(c.swarm().update(update)), "update");
    expect_refused(co_await refusal_of<berth::engine_error>(c.swarm().unlock("SWMKEY-1-x")), "unlock");
    expect_refused(co_await refusal_of<berth::engine_error>(c.swarm().remove_node("nosuchnode")), "remove_node");
    berth::service_update_options service_update{.version = 1};
    expect_refused(co_await refusal_of<berth::engine_error>(c.swarm().update_service("nosuchservice", service_update)),
                   "update_service");
}

// Secrets and configs on the test engines, neither of them a Swarm manager. Docker refuses every call with its 503
// "not a swarm manager". Podman 4.3 has secrets of its own behind the same paths (its file driver, no update, no
// label filter, no labels in the list) and no configs at all.
asio::awaitable<void> secrets_configs_without_swarm(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const auto name = unique_name("secret");
    const std::string data("\xfb\xff\xfe secret\0bytes", 16);  // base64 with '+' and '/'
    berth::secret_spec spec{.name = name, .labels = {{"berth.test.secret", name}}, .data = data};
    berth::config_spec config{.name = name, .data = "x=1\n"};
    berth::secret_update_options update{.version = 1, .spec = {.name = name, .labels = {{"rotated", "1"}}}};
    berth::config_update_options config_update{.version = 1, .spec = config};

    if (e.name == "docker") {
        auto not_a_manager = [&](const berth::engine_error& err) {
            CHECK(err.status() == 503);
            CHECK(err.code() == berth::engine_errc::server_error);
            CHECK(contains(err.message(), "not a swarm manager"));
        };
        auto refused = [&](asio::awaitable<void> op) -> asio::awaitable<void> {
            try {
                co_await std::move(op);
                FAIL("a Swarm call succeeded on an engine that is not a Swarm manager");
            } catch (const berth::engine_error& err) { not_a_manager(err); }
        };
        auto ignore = [](auto op) -> asio::awaitable<void> { co_await std::move(op); };
        co_await refused(ignore(c.secrets().create(spec)));
        co_await refused(ignore(c.secrets().list()));
        co_await refused(ignore(c.secrets().inspect(name)));
        co_await refused(c.secrets().update(name, update));
        co_await refused(c.secrets().remove(name));
        co_await refused(ignore(c.configs().create(config)));
        co_await refused(ignore(c.configs().list()));
        co_await refused(ignore(c.configs().inspect(name)));
        co_await refused(c.configs().update(name, config_update));
        co_await refused(c.configs().remove(name));
        try {
            co_await c.secrets().exists(name);  // not a not_found: exists() does not hide it
            FAIL("exists() answered on an engine that is not a Swarm manager");
        } catch (const berth::engine_error& err) { not_a_manager(err); }
        co_return;
    }

    // Podman 4.3: its own secrets, in compat mode
    struct secret_guard {
        std::string address, name;
        ~secret_guard() {
            try {
                run_to_completion([](std::string a, std::string n) -> asio::awaitable<void> {
                    auto c = berth::client::at(co_await asio::this_coro::executor, a);
                    if (co_await c.secrets().exists(n)) co_await c.secrets().remove(n);
                }(address, name));
            } catch (const std::exception&) {}
        }
    } guard{e.address, name};
    auto id = co_await c.secrets().create(spec);
    CHECK(id.size() == 25);  // Podman's own ids: 25 hex digits
    auto info = co_await c.secrets().inspect(name);
    CHECK(info.id == id);
    CHECK(info.spec.name == name);
    CHECK(info.spec.labels == spec.labels);
    CHECK(info.spec.data.empty());  // never returned
    REQUIRE(info.spec.driver);
    CHECK(info.spec.driver->name == "file");  // Podman names its own driver
    CHECK(info.version == 1);
    CHECK_FALSE(info.created_at.empty());
    auto by_id = co_await c.secrets().inspect(id);
    CHECK(by_id.spec.name == name);

    try {
        co_await c.secrets().create(spec);
        FAIL("a second secret of the same name was created");
    } catch (const berth::conflict_error& err) { CHECK(contains(err.message(), "in use")); }

    berth::secret_list_options by_name{.filters = {{"name", {name}}}};
    auto listed = co_await c.secrets().list(by_name);
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].id == id);
    CHECK(listed[0].spec.labels.empty());  // Podman 4.3 lists secrets without their labels (inspect has them)
    berth::secret_list_options by_label{.filters = {{"label", {"berth.test.secret=" + name}}}};
    try {
        co_await c.secrets().list(by_label);
        FAIL("Podman 4.3 listed secrets by label");
    } catch (const berth::engine_error& err) {
        CHECK(err.status() == 500);
        CHECK(contains(err.message(), "invalid filter"));
    }
    try {
        co_await c.secrets().update(name, update);
        FAIL("Podman 4.3 updated a secret");
    } catch (const berth::engine_error& err) {
        CHECK(err.status() == 501);
        CHECK(contains(err.message(), "not supported"));
    }

    co_await c.secrets().remove(id);
    CHECK_FALSE(co_await c.secrets().exists(name));
    CHECK_THROWS_AS(co_await c.secrets().inspect(id), berth::not_found_error);
    CHECK_THROWS_AS(co_await c.secrets().remove(name), berth::not_found_error);

    // no configs: the list is a plain 404, the others Podman's 503 "does not support service"
    CHECK_THROWS_AS(co_await c.configs().list(), berth::not_found_error);
    for (auto op : {0, 1, 2, 3}) {
        try {
            if (op == 0) co_await c.configs().create(config);
            if (op == 1) co_await c.configs().inspect(name);
            if (op == 2) co_await c.configs().update(name, config_update);
            if (op == 3) co_await c.configs().remove(name);
            FAIL("Podman 4.3 answered a configs call");
        } catch (const berth::engine_error& err) {
            CAPTURE(op);
            CHECK(err.status() == 503);
            CHECK(contains(err.message(), "does not support"));
        }
    }
}

// Bytes that are not text: every byte value, NULs and CR/LF included.
std::string every_byte_value(std::size_t repeats) {
    std::string out;
    for (std::size_t r = 0; r < repeats; ++r)
        for (int b = 0; b < 256; ++b) out += static_cast<char>(b);
    return out;
}

// A pseudo-random file of `size` bytes (xorshift: reproducible, not compressible by accident).
std::string write_pseudo_random_file(const fs::path& path, std::size_t size) {
    std::string data(size, '\0');
    std::uint64_t x = 0x9E3779B97F4A7C15ull;
    for (auto& ch : data) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ch = static_cast<char>(x >> 56);
    }
    write_file(path, data);
    return data;
}

asio::awaitable<void> exec_stdin(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const auto name = unique_name("stdin");
    container_guard guard{e.address, name};
    auto id = co_await start_idle_container(c, name);

    // `cat` from a buffer: exactly the bytes sent, every byte value among them
    {
        const std::string input = every_byte_value(64) + "and the end, without a newline";
        berth::exec_options ex;
        ex.cmd = {"cat"};
        ex.stdin_ = berth::stdin_source::text(input);
        berth::collected_output out;
        ex.on_output = std::ref(out);
        CHECK(co_await c.execs().run(id, ex) == 0);
        CHECK(out.stdout_text.size() == input.size());
        CHECK(out.stdout_text == input);
        CHECK(out.stderr_text.empty());
    }
    // `cat` from a 3 MiB file, compared as it comes back (nothing of it kept here)
    temp_dir dir;
    const auto path = dir.path / "input.bin";
    const std::string data = write_pseudo_random_file(path, 3 * 1024 * 1024 + 17);
    {
        berth::exec_options ex;
        ex.cmd = {"cat"};
        ex.stdin_ = berth::stdin_source::file(path);
        std::size_t matched = 0;
        bool same = true;
        ex.on_output = [&](berth::output_stream s, std::string_view bytes) {
            if (s != berth::output_stream::stdout_ || matched + bytes.size() > data.size() ||
                data.compare(matched, bytes.size(), bytes) != 0)
                same = false;
            matched += bytes.size();
        };
        CHECK(co_await c.execs().run(id, ex) == 0);
        CHECK(same);
        CHECK(matched == data.size());
    }
    // `wc -c` finishes only when its stdin ends: the half-close; the file again, and a producer of chunks
    {
        berth::exec_options ex;
        ex.cmd = {"wc", "-c"};
        ex.stdin_ = berth::stdin_source::file(path);
        berth::collected_output out;
        ex.on_output = std::ref(out);
        CHECK(co_await c.execs().run(id, ex) == 0);
        CHECK(out.stdout_text == std::to_string(data.size()) + "\n");
    }
    {
        int produced = 0;
        berth::exec_options ex;
        ex.cmd = {"wc", "-c"};
        ex.stdin_ = berth::stdin_source::chunks([&produced]() -> asio::awaitable<std::string> {
            if (produced == 100) co_return std::string();
            ++produced;
            co_return std::string(1000, 'x');
        });
        berth::collected_output out;
        ex.on_output = std::ref(out);
        CHECK(co_await c.execs().run(id, ex) == 0);
        CHECK(produced == 100);
        CHECK(out.stdout_text == "100000\n");
    }
    // an empty stdin is an immediate end-of-file; create and start apart, the stdin given to start
    {
        berth::exec_options create;
        create.cmd = {"sh", "-c", "wc -c; echo done >&2"};
        create.attach_stdin = true;
        auto exec_id = co_await c.execs().create(id, create);
        berth::exec_start_options start;
        start.stdin_ = berth::stdin_source::text("");
        berth::collected_output out;
        start.on_output = std::ref(out);
        co_await c.execs().start(exec_id, start);
        CHECK(co_await c.execs().exit_code(exec_id) == 0);
        CHECK(out.stdout_text == "0\n");
        CHECK(out.stderr_text == "done\n");
    }
    // a process that exits without reading all of its stdin: the output decides, the unsent rest is dropped
    {
        berth::exec_options ex;
        ex.cmd = {"sh", "-c", "head -c 5; echo; exit 3"};
        ex.stdin_ = berth::stdin_source::file(path);
        berth::collected_output out;
        ex.on_output = std::ref(out);
        CHECK(co_await c.execs().run(id, ex) == 3);
        // Podman resets the connection, and the kernel drops what had arrived and was not yet read (all of the
        // output, on a loaded machine): what is kept is a beginning of the output, never anything else
        if (e.name == "podman")
            CHECK((data.substr(0, 5) + "\n").starts_with(out.stdout_text));
        else
            CHECK(out.stdout_text == data.substr(0, 5) + "\n");
    }
    // a stdin file that does not exist is refused before anything is sent
    {
        berth::exec_options ex;
        ex.cmd = {"cat"};
        ex.stdin_ = berth::stdin_source::file(dir.path / "missing");
        CHECK_THROWS_AS(co_await c.execs().run(id, ex), berth::invalid_argument_error);
    }
}

// 512 MiB through `cat` on the unix socket: every byte back in order, then cat's own exit after the half-close.
asio::awaitable<void> exec_stdin_round_trip(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const auto name = unique_name("stdin-512");
    container_guard guard{e.address, name};
    auto id = co_await start_idle_container(c, name);
    co_await cat_round_trip(c, id);
}

// A container running `cat` with its stdin open.
template <berth::transport T>
asio::awaitable<std::string> start_cat_container(berth::basic_client<T>& c, const std::string& name) {
    co_await ensure_base_image(c);
    berth::container_config cfg;
    cfg.image = base_image;
    cfg.cmd = {"cat"};
    cfg.host.network_mode = "none";
    cfg.open_stdin = true;
    auto created = co_await c.containers().create(cfg, name);
    co_await c.containers().start(created.id);
    co_return created.id;
}

// A stdin producer that sends `line`, then waits for it to come back before it ends (without StdinOnce, the
// engine ends an attach when its stdin ends, and would cut the echo short).
struct echo_until_seen {
    std::string line{};
    std::string seen{};
    std::shared_ptr<asio::steady_timer> arrived{};
    bool sent = false;

    berth::stdin_source source() {
        return berth::stdin_source::chunks([this]() -> asio::awaitable<std::string> {
            if (!sent) {
                sent = true;
                co_return line;
            }
            if (seen.find(line) == std::string::npos) {
                arrived = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor,
                                                               asio::steady_timer::time_point::max());
                co_await arrived->async_wait(asio::as_tuple(asio::use_awaitable));  // cancelled when it arrives
            }
            co_return std::string();
        });
    }
    void operator()(berth::output_stream, std::string_view bytes) {
        seen.append(bytes);
        if (arrived && seen.find(line) != std::string::npos) arrived->cancel();
    }
};

asio::awaitable<void> attach_echo(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const auto name = unique_name("attach");
    container_guard guard{e.address, name};
    auto id = co_await start_cat_container(c, name);
    CHECK_THROWS_AS(co_await c.containers().attach(unique_name("absent")), berth::not_found_error);

    echo_until_seen echo{.line = "hello through attach\n"};
    berth::container_attach_options options;
    options.stdin_ = echo.source();
    options.on_output = std::ref(echo);
    co_await c.containers().attach(id, options);
    CHECK(echo.seen == "hello through attach\n");
    if (e.name == "podman") {
        // Podman closes the container's stdin when the attach's stdin ends (as Docker does only for a container
        // created with StdinOnce): cat reads end-of-file and exits.
        CHECK(co_await c.containers().wait(id) == 0);
        co_return;
    }

    // Docker keeps the container's stdin open (no StdinOnce): cat still runs. logs=1, stream=0: the output so far, then the end (no stdin)
    berth::collected_output out;
    berth::container_attach_options logs_only;
    logs_only.stream = false;
    logs_only.logs = true;
    logs_only.on_output = std::ref(out);
    co_await c.containers().attach(id, logs_only);
    CHECK(out.stdout_text == "hello through attach\n");
    CHECK((co_await c.containers().inspect(id)).state.running);
}

// A stdin producer for a detach: `line`, then, once `marker` has come back (the engine has read the line), the
// detach keys' bytes in a write of their own, then never an end: only the engine's detach can end the attach (the end
// of stdin would end it too, on Docker). Podman applies a sequence only when each key arrives in a read of its own, as
// typed at a terminal: a single key sent after the echo is one.
struct detach_after_echo {
    std::string line{};
    std::string marker{};
    std::string keys{};
    std::string seen{};
    std::shared_ptr<asio::steady_timer> arrived{};
    int sent = 0;

    berth::stdin_source source() {
        return berth::stdin_source::chunks([this]() -> asio::awaitable<std::string> {
            auto ex = co_await asio::this_coro::executor;
            if (sent++ == 0) co_return line;
            while (sent == 2 && seen.find(marker) == std::string::npos) {
                arrived = std::make_shared<asio::steady_timer>(ex, asio::steady_timer::time_point::max());
                co_await arrived->async_wait(asio::as_tuple(asio::use_awaitable));  // cancelled when it arrives
            }
            if (sent == 2) co_return keys;
            asio::steady_timer forever(ex, asio::steady_timer::time_point::max());
            co_await forever.async_wait(asio::use_awaitable);  // cancelled when the attach ends
            co_return std::string();
        });
    }
    void operator()(berth::output_stream, std::string_view bytes) {
        seen.append(bytes);
        if (arrived && seen.find(marker) != std::string::npos) arrived->cancel();
    }
};

// A container for the detach tests: `cat`, then (once its stdin is closed) a silent idle wait, so that it keeps running
// after a detach whether or not the engine closed its stdin. Silent: output written while Podman 4.3 writes its detach
// note can interleave with the note's frame (seen once: a stdout frame's header, then the note's frame inside its
// payload), which berth rightly reports as a malformed multiplexed stream.
template <berth::transport T>
asio::awaitable<std::string> start_stdin_reader(berth::basic_client<T>& c, const std::string& name, bool tty) {
    co_await ensure_base_image(c);
    berth::container_config cfg;
    cfg.image = base_image;
    cfg.cmd = {"sh", "-c", "cat; exec tail -f /dev/null"};
    cfg.host.network_mode = "none";
    cfg.open_stdin = true;
    cfg.tty = tty;
    auto created = co_await c.containers().create(cfg, name);
    co_await c.containers().start(created.id);
    co_return created.id;
}

// Detach keys on an attach: the engine ends the stream (attach() returns normally) and the container keeps running.
// Docker applies them only with a tty (without one they reach the process as any other bytes); Podman 4.3 with or
// without one, writes "Error: detached from container" into the stream, and without a tty closes the container's
// stdin. A malformed sequence is refused by berth before any request.
asio::awaitable<void> attach_detach_keys(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const bool podman = e.name == "podman";
    {
        const auto name = unique_name("detach-tty");
        container_guard guard{e.address, name};
        auto id = co_await start_stdin_reader(c, name, true);
        // the tty echoes the line and cat writes it back (both seen before the keys are sent); Docker applies a
        // two-key sequence in one write, Podman needs each key in a read of its own
        detach_after_echo detach{.line = "hello\n", .marker = "hello\r\nhello\r\n", .keys = podman ? "\x18" : "\x18x"};
        berth::container_attach_options options;
        options.detach_keys = podman ? "ctrl-x" : "ctrl-x,x";
        options.stdin_ = detach.source();
        options.on_output = std::ref(detach);
        co_await berth::with_timeout(c.containers().attach(id, options), std::chrono::seconds(120));
        // the keys never reach the process
        CHECK(detach.seen == (podman ? "hello\r\nhello\r\nError: detached from container\n" : "hello\r\nhello\r\n"));
        CHECK((co_await c.containers().inspect(id)).state.running);
    }
    {
        const auto name = unique_name("detach-notty");
        container_guard guard{e.address, name};
        auto id = co_await start_stdin_reader(c, name, false);
        berth::container_attach_options options;
        options.detach_keys = "ctrl-x";
        if (podman) {
            detach_after_echo detach{.line = "hello\n", .marker = "hello\n", .keys = "\x18"};
            berth::collected_output out;
            options.stdin_ = detach.source();
            options.on_output = [&](berth::output_stream s, std::string_view bytes) {
                detach(s, bytes);
                out(s, bytes);
            };
            co_await berth::with_timeout(c.containers().attach(id, options), std::chrono::seconds(120));
            CHECK(out.stdout_text.starts_with("hello\n"));
            CHECK(out.stderr_text == "Error: detached from container\n");
        } else {
            // passed through: cat echoes the key's byte, and the end of stdin ends the attach
            echo_until_seen echo{.line = "before \x18 after\n"};
            options.stdin_ = echo.source();
            options.on_output = std::ref(echo);
            co_await berth::with_timeout(c.containers().attach(id, options), std::chrono::seconds(120));
            CHECK(echo.seen == "before \x18 after\n");
        }
        CHECK((co_await c.containers().inspect(id)).state.running);
        // malformed: refused before any request, whatever the engine would have said
        options.detach_keys = "ctrl-";
        options.stdin_ = berth::stdin_source::text("x");
        CHECK_THROWS_AS(co_await c.containers().attach(id, options), berth::invalid_argument_error);
        berth::exec_options ex;
        ex.cmd = {"cat"};
        ex.detach_keys = "notakey";
        CHECK_THROWS_AS(co_await c.execs().create(id, ex), berth::invalid_argument_error);
    }
}

// Detach keys on an exec, as each engine really treats them (neither cleanly: docs/engine-api.md). Docker 20.10
// (tty only) ends the stream with its own error text in it and records exit code 126; Podman 4.3 (without a tty; with
// one it swallows the key and keeps the stream open) detaches, writes its note on stderr and closes the process's
// stdin, so `cat` exits 0.
asio::awaitable<void> exec_detach_keys(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const bool podman = e.name == "podman";
    const auto name = unique_name("exec-detach");
    container_guard guard{e.address, name};
    auto id = co_await start_idle_container(c, name);
    detach_after_echo detach{.line = "hello\n", .marker = podman ? "hello\n" : "hello\r\nhello\r\n", .keys = "\x18"};
    berth::collected_output out;
    berth::exec_options ex;
    ex.cmd = {"cat"};
    ex.tty = !podman;
    ex.detach_keys = "ctrl-x";
    ex.stdin_ = detach.source();
    ex.on_output = [&](berth::output_stream s, std::string_view bytes) {
        detach(s, bytes);
        out(s, bytes);
    };
    const int code = co_await berth::with_timeout(c.execs().run(id, ex), std::chrono::seconds(120));
    if (podman) {
        CHECK(code == 0);
        CHECK(out.stdout_text == "hello\n");
        CHECK(out.stderr_text == "Error: detached from container\n");
    } else {
        CHECK(code == 126);
        CHECK(out.stdout_text ==
              "hello\r\nhello\r\nexec attach failed: error on attach stdin: read escape sequence\r\n");
    }
}

// The text of a failure (empty when there was none), for a CHECK to show.
std::string text_of(std::exception_ptr failure) {
    if (!failure) return {};
    try {
        std::rethrow_exception(failure);
    } catch (const std::exception& e) { return e.what(); }
}

asio::awaitable<void> attach_over_websocket(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const auto name = unique_name("attach-ws");
    container_guard guard{e.address, name};
    auto id = co_await start_cat_container(c, name);
    echo_until_seen echo{.line = "hello through a websocket\n"};
    berth::container_attach_options options;
    options.stdin_ = echo.source();
    options.on_output = std::ref(echo);
    if (e.name == "podman") {
        // Podman 4.3 serves no attach/ws route
        CHECK_THROWS_AS(co_await c.containers().attach_websocket(id, options), berth::not_found_error);
        co_return;
    }
    // A websocket has no half-close: the end of stdin does not end the stream; the container's exit does.
    auto ex = co_await asio::this_coro::executor;
    auto stop_when_echoed = [&]() -> asio::awaitable<void> {
        asio::steady_timer t(ex);
        while (echo.seen.find(echo.line) == std::string::npos) {
            t.expires_after(std::chrono::milliseconds(20));
            co_await t.async_wait(asio::use_awaitable);
        }
        co_await c.containers().kill(id);
    };
    auto [order, attach_error, stop_error] = co_await asio::experimental::make_parallel_group(
                                                 asio::co_spawn(ex, c.containers().attach_websocket(id, options),
                                                                asio::deferred),
                                                 asio::co_spawn(ex, stop_when_echoed(), asio::deferred))
                                                 .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    (void)order;
    CHECK(text_of(attach_error) == "");
    CHECK(text_of(stop_error) == "");
    CHECK(echo.seen == "hello through a websocket\n");
}
// Raw requests (client.raw()) against a real engine: GET /_ping with a header of the caller's, the container list
// with a query, a JSON body posted, an error as a value, an event stream read slice by slice until `until`, and
// an exec started on an upgraded connection fed stdin.
asio::awaitable<void> raw_requests(const engine_under_test& e) {
    // (Each request a named variable: g++ 12 miscompiles a braced temporary with a nested list in a co_await.)
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    berth::raw_request ping_req{.path = "/_ping", .headers = {{"X-Berth-Test", "raw"}}};
    auto ping = co_await c.raw().send(ping_req);
    CHECK(ping.status == 200);
    CHECK(ping.body == "OK");
    CHECK_FALSE(ping.header("Api-Version").empty());
    berth::raw_request unversioned_req{.path = "/_ping", .verbatim_path = true};
    auto unversioned = co_await c.raw().send(unversioned_req);
    CHECK(unversioned.body == "OK");

    const auto name = unique_name("raw");
    container_guard guard{e.address, name};
    auto id = co_await start_idle_container(c, name);
    berth::raw_request list_req{.path = "/containers/json", .query = {{"all", "1"}}};
    auto list = co_await c.raw().send(list_req);
    bool listed = false;
    auto containers = list.body_json();
    for (auto& item : containers.as_array())
        if (item.at("Id").as_string() == id) listed = true;
    CHECK(listed);

    const auto volume = unique_name("raw-vol");
    volume_guard volumes{e.address, {volume}};
    const auto since = std::to_string(std::time(nullptr) - 1);
    berth::raw_request create{.method = berth::verb::post,
                              .path = "/volumes/create",
                              .headers = {{"Content-Type", "application/json"}},
                              .body = json::serialize(json::value{{"Name", volume}, {"Labels", {{"berth.raw", "1"}}}})};
    auto created = co_await c.raw().send(create);
    CHECK(created.status == 201);
    CHECK(created.body_json().at("Name").as_string() == volume);
    berth::raw_request inspect_req{.path = "/volumes/" + berth::raw_path_segment(volume)};
    auto inspected = co_await c.raw().send(inspect_req);
    CHECK(inspected.body_json().at("Labels").at("berth.raw") == "1");

    // the volume's create event, from a stream that the engine ends at `until`
    berth::raw_request events_req{
        .path = "/events",
        .query = {{"since", since},
                  {"until", std::to_string(std::time(nullptr) + 1)},
                  {"filters", json::serialize(json::value{{"type", json::array{"volume"}}})}}};
    auto events = co_await c.raw().open(events_req);
    CHECK(events.status() == 200);
    std::string event_text;
    for (auto chunk = co_await events.next_chunk(); !chunk.empty(); chunk = co_await events.next_chunk())
        event_text += chunk;
    CHECK_MESSAGE(event_text.find(volume) != std::string::npos, event_text);

    berth::raw_request remove_req{.method = berth::verb::delete_, .path = "/volumes/" + volume};
    auto removed = co_await c.raw().send(remove_req);
    CHECK(removed.status == 204);
    berth::raw_request gone_req{.path = "/volumes/" + volume, .throw_on_error = false};
    auto gone = co_await c.raw().send(gone_req);
    CHECK(gone.status == 404);
    gone_req.throw_on_error = true;
    CHECK_THROWS_AS(co_await c.raw().send(gone_req), berth::not_found_error);

    // an exec through raw calls: created with a JSON body, started on an upgraded connection, stdin sent to `cat`
    berth::raw_request exec_create{
        .method = berth::verb::post,
        .path = "/containers/" + id + "/exec",
        .headers = {{"Content-Type", "application/json"}},
        .body = R"({"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"Tty":false,"Cmd":["cat"]})"};
    auto exec = co_await c.raw().send(exec_create);
    const std::string exec_id(exec.body_json().at("Id").as_string());
    std::string output;
    berth::raw_upgrade_options streams;
    streams.input = berth::stdin_source::text("through raw\n");
    streams.on_bytes = [&output](std::string_view bytes) { output += bytes; };
    berth::raw_request exec_start{.method = berth::verb::post,
                                  .path = "/exec/" + exec_id + "/start",
                                  .headers = {{"Content-Type", "application/json"}},
                                  .body = R"({"Detach":false,"Tty":false})"};
    auto head = co_await berth::with_timeout(c.raw().upgrade(exec_start, streams), std::chrono::minutes(2));
    CHECK(head.status == 101);
    // one frame: stdout (1), three zero bytes, the length (12) big-endian, the line
    CHECK(output == std::string("\x01\0\0\0\0\0\0\x0c", 8) + "through raw\n");
}
// Removes images by name or id at scope exit, whatever the test did.
constexpr auto remove_image = [](berth::client& c, std::string name) -> asio::awaitable<void> {
    co_await c.images().remove(name, {.force = true});
};
using image_guard = removal_guard<decltype(remove_image)>;

// The members of a tar stream (name -> content), read with berth's own reader as the bytes come.
struct tar_collector {
    berth::tar::reader reader;
    std::map<std::string, std::string> files;
    std::string current;
    std::size_t bytes = 0;
    void operator()(std::span<const char> data) {
        bytes += data.size();
        reader.feed(data);
        for (;;) {
            auto ev = reader.next();
            if (ev == berth::tar::reader::event::need_more || ev == berth::tar::reader::event::end) break;
            if (ev == berth::tar::reader::event::entry) current = reader.current().name;
            if (ev == berth::tar::reader::event::data)
                files[current].append(reader.data().data(), reader.data().size());
        }
    }
};

// A container that wrote a marker file and exited (network none), for commit and export.
asio::awaitable<std::string> container_with_marker(berth::client& c, const std::string& name,
                                                   const std::string& marker) {
    co_await ensure_base_image(c);
    berth::container_config cfg;
    cfg.image = base_image;
    cfg.cmd = {"sh", "-c", "echo " + marker + " > /marker.txt"};
    cfg.host.network_mode = "none";
    auto created = co_await c.containers().create(cfg, name);
    co_await c.containers().start(created.id);
    CHECK(co_await c.containers().wait(created.id) == 0);
    co_return created.id;
}

// Commit a container (with a comment, an author, a change and a config), read its history, save it to a file (and
// a failed save leaves the file as it was), remove it, load it back from the file, inspect it.
asio::awaitable<void> image_round_trip(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const auto name = unique_name("commit");
    const auto repo = "berth-test-commit-" + std::to_string(::getpid()) + "-" + name.substr(name.rfind('-') + 1);
    const std::string reference = repo + ":v1";
    container_guard container{e.address, name};
    image_guard images{e.address, {reference}};
    co_await container_with_marker(c, name, "committed-" + name);

    berth::container_config config;
    config.cmd = {"cat", "/marker.txt"};
    config.env = {"BERTH_COMMITTED=1"};
    config.labels = {{"berth.test.commit", name}};
    berth::image_commit_options commit{.repo = repo,
                                       .tag = "v1",
                                       .comment = "berth commit " + name,
                                       .author = "berth <berth@example.invalid>",
                                       .pause = false,
                                       .changes = {"WORKDIR /tmp"},
                                       .config = config};
    auto id = co_await c.images().commit(name, commit);
    CHECK(id.starts_with("sha256:"));
    auto info = co_await c.images().inspect(reference);
    CHECK(info.id == id);
    auto& image_config = info.raw.at("Config").as_object();
    MESSAGE(e.name << " commit: Config " << json::serialize(image_config) << ", Author " << info.raw.at("Author")
                   << ", Comment " << info.raw.at("Comment"));
    CHECK(info.raw.at("Comment").as_string() == "berth commit " + name);
    CHECK(info.raw.at("Author").as_string() == "berth <berth@example.invalid>");
    CHECK(image_config.at("WorkingDir").as_string() == "/tmp");  // the change
    if (e.name == "docker") {
        CHECK(image_config.at("Cmd") == json::array{"cat", "/marker.txt"});  // the config body
        CHECK(image_config.at("Labels").at("berth.test.commit").as_string() == name);
    } else {  // Podman 4.3 ignores the config body: the container's command stays
        CHECK(image_config.at("Cmd").as_array().back().as_string() == "echo committed-" + name + " > /marker.txt");
    }

    auto history = co_await c.images().history(reference);
    REQUIRE(history.size() >= 2);  // the commit on top of the base image's layers
    MESSAGE(e.name << " history[0]: id " << history[0].id << ", created_by " << history[0].created_by << ", comment "
                   << history[0].comment << ", size " << history[0].size);
    CHECK(history[0].id == id);
    CHECK(history[0].created > 0);
    CHECK(history[1].id != id);
    if (e.name == "docker") {
        CHECK(history[0].comment == "berth commit " + name);
        CHECK(history[0].tags == std::vector<std::string>{reference});
    } else {  // Podman 4.3: the layer's comment names its base, and no tags
        CHECK(contains(history[0].comment, base_image));
    }
    CHECK_THROWS_AS(co_await c.images().history("berth-test-no-such-image:none"), berth::not_found_error);

    temp_dir dir;
    const auto file = dir.path / "image.tar";
    co_await c.images().save_to_file(reference, file);
    REQUIRE(fs::exists(file));
    tar_collector saved;
    {
        std::ifstream in(file, std::ios::binary);
        std::vector<char> buffer(65536);
        while (in.read(buffer.data(), buffer.size()) || in.gcount() > 0)
            saved(std::span<const char>(buffer.data(), static_cast<std::size_t>(in.gcount())));
    }
    CHECK(saved.files.contains("manifest.json"));
    CHECK(fs::file_size(file) == saved.bytes);

    // a failed save (no such image) leaves the good file as it was, and no temporary beside it
    const auto size_before = fs::file_size(file);
    CHECK_THROWS_AS(co_await c.images().save_to_file("berth-test-no-such-image:none", file), berth::engine_error);
    CHECK(fs::file_size(file) == size_before);
    CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);

    // save_all into a callback: one tarball with the image
    tar_collector all;
    const std::vector<std::string> names{reference};
    co_await c.images().save_all(names, all);
    CHECK(all.files.contains("manifest.json"));
    CHECK(all.files["manifest.json"].find(repo) != std::string::npos);

    co_await c.images().remove(reference);
    CHECK_FALSE(co_await c.images().exists(reference));
    berth::image_load_options quiet{.quiet = true};
    auto loaded = co_await c.images().load_from_file(file, quiet);
    MESSAGE(e.name << " load: " << loaded.log);
    CHECK(std::any_of(loaded.loaded.begin(), loaded.loaded.end(),
                      [&](const std::string& n) { return n.ends_with(reference); }));
    auto back = co_await c.images().inspect(reference);
    CHECK(back.id == id);
    CHECK(back.raw.at("Comment").as_string() == "berth commit " + name);

    // a tarball the engine cannot read is its error
    std::string garbage(4096, 'x');
    berth::http::memory_source not_a_tar{garbage};
    CHECK_THROWS_AS(co_await c.images().load(not_a_tar), berth::engine_error);
    CHECK_THROWS_AS(co_await c.images().load_from_file(dir.path / "missing.tar"), berth::error);
}

// Pruning with a label filter removes the test's own dangling image (a commit without a name) and nothing else.
asio::awaitable<void> image_prune_by_label(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const auto name = unique_name("prune");
    container_guard container{e.address, name};
    co_await container_with_marker(c, name, name);
    const std::string label = "berth.test.prune";
    berth::image_commit_options dangling{.changes = {"LABEL " + label + "=" + name}};
    auto id = co_await c.images().commit(name, dangling);
    image_guard images{e.address, {id}};
    berth::image_commit_options other{.changes = {"LABEL " + label + "=other-" + name}};
    auto kept = co_await c.images().commit(name, other);
    image_guard kept_guard{e.address, {kept}};
    CHECK((co_await c.images().inspect(id)).repo_tags.empty());

    berth::image_prune_options prune{.filters = {{"label", {label + "=" + name}}}, .dangling = true};
    auto pruned = co_await c.images().prune(prune);
    std::vector<std::string> deleted;
    for (auto& d : pruned.images_deleted)
        if (!d.deleted.empty()) deleted.push_back(d.deleted);
    MESSAGE(e.name << " pruned " << deleted.size() << " image(s), " << pruned.space_reclaimed << " bytes");
    CHECK(std::find(deleted.begin(), deleted.end(), id) != deleted.end());
    CHECK(std::find(deleted.begin(), deleted.end(), kept) == deleted.end());
    CHECK_FALSE(co_await c.images().exists(id));
    CHECK(co_await c.images().exists(kept));
    CHECK(co_await c.images().exists(base_image));
}

// No Docker Hub here: searching the local registry (which has no search endpoint) is the engine's error; the
// engines differ in how they fail (reported).
asio::awaitable<void> image_search_refused(const engine_under_test& e) {
    const char* registry = std::getenv("BERTH_REGISTRY_OPEN");
    if (registry == nullptr || *registry == '\0') {
        if (in_ci()) FAIL("BERTH_REGISTRY_OPEN is not set");
        MESSAGE("SKIPPED: no local registry (BERTH_REGISTRY_OPEN)");
        co_return;
    }
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    berth::image_search_options options{.limit = 5, .filters = {{"stars", {"0"}}}};
    const std::string term = std::string(registry) + "/berth-test-search";
    // Docker asks the registry's v1 search endpoint, which a registry v2 lacks: a 500 quoting the registry's 404.
    // Podman 4.3 answers 404 "image not known".
    try {
        co_await c.images().search(term, options);
        FAIL("searching a registry without a search endpoint succeeded");
    } catch (const berth::engine_error& err) {
        MESSAGE(e.name << " refuses searching " << std::string(registry) << ": " << err.status() << " "
                       << err.message());
        if (e.name == "docker") {
            CHECK(err.status() == 500);
            CHECK(contains(err.message(), "404"));
        } else {
            CHECK(err.status() == 404);
            CHECK(err.code() == berth::engine_errc::not_found);
        }
        CHECK(err.endpoint().find("/images/search?term=") != std::string::npos);
    }
    CHECK_THROWS_AS(co_await c.images().search(""), berth::invalid_argument_error);
}

// Attestations need API 1.55: refused before sending on 1.41. The build cache prune with an `until` of a century
// removes nothing, on each engine.
asio::awaitable<void> attestations_and_build_cache(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    REQUIRE_FALSE(co_await c.core().api_at_least("1.55"));
    try {
        co_await c.images().attestations(base_image);
        FAIL("attestations were asked on API < 1.55");
    } catch (const berth::unsupported_api_version_error& err) {
        CHECK(err.status() == 0);  // berth's own refusal: nothing was sent
        CHECK(err.endpoint() == std::string("GET /images/") + base_image + "/attestations");
    }
    berth::build_cache_prune_options prune{.filters = {{"until", {"876000h"}}}};
    if (e.name == "docker") {
        auto pruned = co_await c.images().prune_build_cache(prune);
        CHECK(pruned.caches_deleted.empty());
        CHECK(pruned.space_reclaimed == 0);
    } else {  // Podman 4.3 has no POST /build/prune
        CHECK_THROWS_AS(co_await c.images().prune_build_cache(prune), berth::not_found_error);
    }
}

// Export streams the container's filesystem: read by berth's tar reader as it comes, and into a file.
asio::awaitable<void> container_export(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const auto name = unique_name("export");
    container_guard container{e.address, name};
    co_await container_with_marker(c, name, "exported-" + name);

    tar_collector tar;
    co_await c.containers().export_(name, tar);
    tar.reader.finish();
    CHECK(tar.files["marker.txt"] == "exported-" + name + "\n");
    CHECK(tar.files.contains("bin/busybox"));

    temp_dir dir;
    const auto file = dir.path / "rootfs.tar";
    co_await c.containers().export_to_file(name, file);
    CHECK(fs::file_size(file) == tar.bytes);
    write_file(dir.path / "kept.tar", "old contents");
    CHECK_THROWS_AS(co_await c.containers().export_to_file("berth-test-no-such-container", dir.path / "kept.tar"),
                    berth::not_found_error);
    CHECK(read_file(dir.path / "kept.tar") == "old contents");
    CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 2);
}

// df lists the test's image (with its size) and the totals; HEAD /_ping gives the engine's headers.
asio::awaitable<void> system_df_and_ping_head(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const auto name = unique_name("df");
    container_guard container{e.address, name};
    co_await container_with_marker(c, name, name);
    berth::image_commit_options commit{.changes = {"LABEL berth.test.df=" + name}};
    auto id = co_await c.images().commit(name, commit);
    image_guard images{e.address, {id}};

    auto df = co_await c.system().df();
    auto image = std::find_if(df.images.begin(), df.images.end(), [&](auto& i) { return i.id == id; });
    REQUIRE(image != df.images.end());
    CHECK(image->size > 0);
    auto mine = std::find_if(df.containers.begin(), df.containers.end(), [&](auto& ctr) {
        return std::find(ctr.names.begin(), ctr.names.end(), name) != ctr.names.end();
    });
    REQUIRE(mine != df.containers.end());
    CHECK(mine->state == "exited");
    MESSAGE(e.name << " df: layers " << df.layers_size << ", " << df.images.size() << " images, "
                   << df.containers.size() << " containers, " << df.volumes.size() << " volumes, "
                   << df.build_cache.size() << " cache records; container SizeRw " << mine->size_rw);
    CHECK_FALSE(df.images_usage);  // API 1.41: the lists only
    if (e.name == "docker") CHECK(df.layers_size > 0);

    berth::system_df_options by_type{.types = {"image"}};
    CHECK_THROWS_AS(co_await c.system().df(by_type), berth::unsupported_api_version_error);  // type: API 1.42

    auto ping = co_await c.system().ping_head();
    MESSAGE(e.name << " HEAD /_ping: API-Version " << ping.api_version << ", Builder-Version " << ping.builder_version
                   << ", Swarm " << ping.swarm << ", Cache-Control " << ping.cache_control << ", OSType "
                   << ping.os_type);
    CHECK(ping.api_version == "1.41");
    CHECK(ping.cache_control.starts_with("no-cache"));
    if (e.name == "docker") {  // Docker 20.10 sends neither Swarm nor Builder-Version
        CHECK(ping.os_type == "linux");
        CHECK_FALSE(ping.experimental);
    } else {  // Podman 4.3: Docker-Experimental true, no OSType
        CHECK(ping.experimental);
        CHECK(ping.os_type.empty());
    }
}
// The JSON under a path of the inspect reply ("HostConfig", "RestartPolicy", ...), or null when any step is missing.
boost::json::value raw_at(const berth::container_info& info, std::initializer_list<std::string_view> path) {
    const boost::json::value* v = nullptr;
    for (auto key : path) {
        const auto* o = v == nullptr ? &info.raw : (v->is_object() ? &v->get_object() : nullptr);
        v = o != nullptr ? o->if_contains(key) : nullptr;
        if (v == nullptr) return nullptr;
    }
    return *v;
}

// A broad container_config created (network mode none; the port binding is written, never published: the
// container is not started) and read back from inspect. Where Podman 4.3 reports (or applies) a field its own way,
// both behaviours are checked (docs/engine-api.md#container-configuration lists them).
asio::awaitable<void> create_with_broad_config(const engine_under_test& e) {
    using namespace std::chrono_literals;
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    const auto name = unique_name("config");
    const auto volume = unique_name("config-vol");
    volume_guard volumes{e.address, {volume}};
    container_guard guard{e.address, name};
    temp_dir bind_source("berth-config-bind");
    const bool podman = e.name == "podman";

    berth::container_config cfg{
        .image = base_image,
        .cmd = {"sleep", "1000"},
        .hostname = "box",
        .domainname = "example.test",
        .labels = {{"berth.test", "config"}},
        .exposed_ports = {"80/tcp"},
        .healthcheck =
            berth::health_config{
                .test = {"CMD-SHELL", "true"}, .interval = 2s, .timeout = 1s, .retries = 3, .start_period = 5s},
        .stop_signal = "SIGINT",
        .stop_timeout = 7,
    };
    auto& h = cfg.host;
    h.network_mode = "none";
    h.port_bindings = {{"80/tcp", {{.host_ip = "127.0.0.1", .host_port = "18080"}}}};
    h.restart_policy = {.name = "on-failure", .maximum_retry_count = 3};
    h.ulimits = {{.name = "nofile", .soft = 1024, .hard = 2048}};
    h.dns = {"192.0.2.53"};
    h.dns_options = {"ndots:2"};
    h.dns_search = {"example.test"};
    h.extra_hosts = {"db:192.0.2.10"};
    h.sysctls = {{"kernel.msgmax", "65536"}};  // an IPC-namespace sysctl: no network namespace needed
    h.readonly_rootfs = true;
    h.log_config = {.type = "json-file", .config = {{"max-size", "10m"}}};
    h.memory = 64 * 1024 * 1024;
    h.memory_reservation = 32 * 1024 * 1024;
    h.cpu_shares = 512;
    h.cpu_period = 100000;
    h.cpu_quota = 50000;
    h.pids_limit = 64;
    h.oom_score_adj = 100;
    h.cap_drop = {"MKNOD"};
    h.group_add = {"audio"};
    h.shm_size = 32 * 1024 * 1024;
    h.mounts = {{.type = "tmpfs", .target = "/scratch", .tmpfs_options = {.size_bytes = 1048576, .mode = 0700}},
                {.type = "bind",
                 .source = bind_source.path.string(),
                 .target = "/b",
                 .read_only = true,
                 .bind_options = {.propagation = "rprivate"}},
                {.type = "volume",
                 .source = volume,
                 .target = "/v",
                 .volume_options = {.no_copy = true, .labels = {{"berth.test", "config"}}}}};
    auto created = co_await c.containers().create(cfg, name);
    auto info = co_await c.containers().inspect(created.id);
    auto host = [&](std::string_view key) { return raw_at(info, {"HostConfig", key}); };
    auto config = [&](std::string_view key) { return raw_at(info, {"Config", key}); };
    namespace json = boost::json;

    CHECK(host("RestartPolicy") == json::parse(R"({"Name":"on-failure","MaximumRetryCount":3})"));
    // Podman names the limit after the kernel's RLIMIT_ and adds its own default RLIMIT_NPROC.
    const json::value nofile = {{"Name", podman ? "RLIMIT_NOFILE" : "nofile"}, {"Soft", 1024}, {"Hard", 2048}};
    REQUIRE(host("Ulimits").is_array());
    CHECK(host("Ulimits").get_array().at(0) == nofile);
    CHECK(host("Ulimits").get_array().size() == (podman ? 2u : 1u));
    CHECK(host("Dns") == json::array{"192.0.2.53"});
    CHECK(host("DnsOptions") == json::array{"ndots:2"});
    CHECK(host("DnsSearch") == json::array{"example.test"});
    CHECK(host("ExtraHosts") == json::array{"db:192.0.2.10"});
    CHECK(host("ReadonlyRootfs") == true);
    CHECK(host("Memory") == 64 * 1024 * 1024);
    CHECK(host("MemoryReservation") == 32 * 1024 * 1024);
    CHECK(host("CpuShares") == 512);
    CHECK(host("CpuPeriod") == 100000);
    CHECK(host("CpuQuota") == 50000);
    CHECK(host("PidsLimit") == 64);
    CHECK(host("OomScoreAdj") == 100);
    CHECK(host("CapDrop") == json::array{"MKNOD"});
    CHECK(host("GroupAdd") == json::array{"audio"});
    CHECK(host("ShmSize") == 32 * 1024 * 1024);
    CHECK(config("Hostname") == "box");
    CHECK(config("Labels").at("berth.test") == "config");
    CHECK(config("StopTimeout") == 7);
    CHECK(config("Healthcheck") == json::parse(R"({"Test":["CMD-SHELL","true"],"Interval":2000000000,
        "Timeout":1000000000,"StartPeriod":5000000000,"Retries":3})"));
    if (!podman) {
        CHECK(host("Sysctls") == json::parse(R"({"kernel.msgmax":"65536"})"));
        CHECK(host("LogConfig") == json::parse(R"({"Type":"json-file","Config":{"max-size":"10m"}})"));
        CHECK(host("PortBindings") == json::parse(R"({"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"18080"}]})"));
        CHECK(config("Domainname") == "example.test");
        CHECK(config("ExposedPorts") == json::parse(R"({"80/tcp":{}})"));
        CHECK(config("StopSignal") == "SIGINT");
        // HostConfig.Mounts as sent (the engine fills nothing in)
        const auto mounts = host("Mounts");
        REQUIRE(mounts.is_array());
        REQUIRE(mounts.get_array().size() == 3);
        CHECK(mounts.get_array()[0] == json::parse(R"({"Type":"tmpfs","Target":"/scratch",
            "TmpfsOptions":{"SizeBytes":1048576,"Mode":448}})"));
        CHECK(mounts.get_array()[1].at("BindOptions") == json::parse(R"({"Propagation":"rprivate"})"));
        CHECK(mounts.get_array()[1].at("ReadOnly") == true);
        CHECK(mounts.get_array()[2].at("VolumeOptions") ==
              json::parse(R"({"NoCopy":true,"Labels":{"berth.test":"config"}})"));
    } else {
        // Podman 4.3 applies the sysctl (checked when started, below) but reports none; keeps the log driver but
        // not its options; drops the domain name; with network mode none, drops the exposed port and the port
        // binding; reports the stop signal as a number; and reports the mounts as Tmpfs and Binds.
        CHECK(host("Sysctls").is_null());
        CHECK(host("LogConfig").at("Type") == "json-file");
        CHECK(host("PortBindings") == json::object{});
        CHECK(config("Domainname") == "");
        CHECK(config("ExposedPorts").is_null());
        CHECK(config("StopSignal") == "2");
        CHECK(host("Mounts").is_null());
        CHECK(std::string_view(host("Tmpfs").at("/scratch").as_string()).starts_with("size=1048576,mode=700,"));
        CHECK(host("Binds") == json::array{bind_source.path.string() + ":/b:ro,rprivate,bind",
                                           volume + ":/v:rw,rprivate,nosuid,nodev,rbind"});
    }
    // The mount points as the engine made them
    std::map<std::string, json::value> by_destination;
    const auto mount_points = raw_at(info, {"Mounts"});  // a named local: the loop below refers into it
    REQUIRE(mount_points.is_array());
    for (auto& m : mount_points.get_array()) by_destination[std::string(m.at("Destination").as_string())] = m;
    REQUIRE(by_destination.contains("/b"));
    CHECK(by_destination["/b"].at("RW") == false);
    CHECK(by_destination["/b"].at("Propagation") == "rprivate");
    REQUIRE(by_destination.contains("/v"));
    CHECK(by_destination["/v"].at("Name") == boost::json::value(volume));
    // The volume the mount created: Docker labels it as asked, Podman 4.3 ignores VolumeOptions.Labels
    auto made = co_await c.volumes().inspect(volume);
    if (podman)
        CHECK(made.labels.empty());
    else
        CHECK(made.labels == std::map<std::string, std::string>{{"berth.test", "config"}});
}

// A read-only root filesystem with a tmpfs mount: writing / fails, the tmpfs is writable with the mode asked, and
// an IPC-namespace sysctl is applied (both engines, whatever inspect reports).
asio::awaitable<void> readonly_rootfs_with_tmpfs(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    const auto name = unique_name("readonly");
    container_guard guard{e.address, name};
    berth::container_config cfg{.image = base_image, .cmd = {"sleep", "1000"}};
    cfg.host.network_mode = "none";
    cfg.host.readonly_rootfs = true;
    cfg.host.sysctls = {{"kernel.msgmax", "65536"}};
    cfg.host.mounts = {{.type = "tmpfs", .target = "/scratch", .tmpfs_options = {.size_bytes = 1048576, .mode = 0700}}};
    auto created = co_await c.containers().create(cfg, name);
    co_await c.containers().start(created.id);

    // (Each command a named vector: g++ 12 miscompiles a braced list passed straight into a co_await.)
    auto run = [&](const std::vector<std::string>& cmd) -> asio::awaitable<std::pair<int, std::string>> {
        std::string out;
        berth::exec_options ex;
        ex.cmd = cmd;
        ex.on_output = [&](berth::output_stream, std::string_view data) { out.append(data); };
        int code = co_await c.execs().run(created.id, ex);
        co_return std::pair{code, out};
    };
    const std::vector<std::string> touch_root{"touch", "/x"};
    auto root = co_await run(touch_root);
    CHECK(root.first != 0);
    CHECK(contains(root.second, "Read-only file system"));
    const std::vector<std::string> write_scratch{"sh", "-c",
                                                 "echo hi > /scratch/y && cat /scratch/y && stat -c %a /scratch"};
    auto scratch = co_await run(write_scratch);
    CHECK(scratch.first == 0);
    CHECK(scratch.second == "hi\n700\n");
    const std::vector<std::string> read_mounts{"grep", " /scratch ", "/proc/mounts"};
    auto mounts = co_await run(read_mounts);
    CHECK(contains(mounts.second, "size=1024k"));
    const std::vector<std::string> read_sysctl{"cat", "/proc/sys/kernel/msgmax"};
    auto sysctl = co_await run(read_sysctl);
    CHECK(sysctl.second == "65536\n");
}

}  // namespace

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
TEST_CASE("volumes: create, inspect, list by label, in use, prune by label, remove, update refused on 1.41") {
    for_each_engine(volume_operations);
}
TEST_CASE("networks: list and inspect built-ins, create (no bridge, no link), filters, connect refused for network "
          "mode none, prune by label, remove") {
    for_each_engine(network_operations);
}
TEST_CASE("container restart, pause and unpause, rename") { for_each_engine(restart_pause_rename); }
TEST_CASE("container changes, update, resize and prune") { for_each_engine(changes_prune_update_resize); }
TEST_CASE("container config: a broad configuration read back from inspect (network none, not started)") {
    for_each_engine(create_with_broad_config);
}
TEST_CASE("container config: a read-only root filesystem with a writable tmpfs mount") {
    for_each_engine(readonly_rootfs_with_tmpfs);
}
TEST_CASE("swarm: init, inspect, join, update, unlock key, node remove, unlock, leave (private Docker engines)") {
    if (::geteuid() != 0) {
        if (in_ci()) FAIL("private engines in a network namespace need root");
        MESSAGE("SKIPPED: private engines in a network namespace need root");
        return;
    }
    private_swarm_engines engines;
    REQUIRE_MESSAGE(engines.started,
                    "the private Docker engines did not start (scripts/engine with BERTH_ENGINE_NETNS)");
    run_to_completion(swarm_lifecycle(engines));
}
TEST_CASE("swarm: an engine in no swarm refuses with 503; Podman has no Swarm (GET /swarm: 404)") {
    for_each_engine(swarm_refused_outside_a_swarm);
}
TEST_CASE("secrets: without a Swarm, Docker refuses every call (503); Podman 4.3 has its own secrets and no configs") {
    for_each_engine(secrets_configs_without_swarm);
}
TEST_CASE("images: commit, history, save to a file, remove, load back, inspect") { for_each_engine(image_round_trip); }
TEST_CASE("images: prune with a label filter removes only the test's dangling image") {
    for_each_engine(image_prune_by_label);
}
TEST_CASE("images: search of the local registry is the engine's refusal") { for_each_engine(image_search_refused); }
TEST_CASE("images: attestations refused on 1.41, build cache prune") { for_each_engine(attestations_and_build_cache); }
TEST_CASE("containers: export to berth's tar reader and to a file") { for_each_engine(container_export); }
// A BuildKit session: Docker switches to HTTP/2 and, as the gRPC client, sends its connection preface and a
// SETTINGS frame at once; Podman 4.3 has no session endpoint.
asio::awaitable<void> session_opens_http2(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    berth::session_open_options options{.name = "berth-test", .grpc_methods = {"/moby.filesync.v1.FileSync/DiffCopy"}};
    if (e.name == "podman") {
        CHECK_THROWS_AS(co_await c.system().session(options), berth::not_found_error);
        co_return;
    }
    auto session = co_await c.system().session(options);
    CHECK(session.id().size() == 32);  // berth made one
    CHECK(session.endpoint() == "POST /v1.41/session");
    const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    std::string got;
    while (got.size() < preface.size() + 9) {
        auto bytes = co_await berth::with_timeout(session.read_some(), std::chrono::seconds(10),
                                                  "the engine's HTTP/2 preface");
        REQUIRE_FALSE(bytes.empty());
        got += bytes;
    }
    CHECK(got.substr(0, preface.size()) == preface);
    CHECK(static_cast<unsigned char>(got[preface.size() + 3]) == 0x4);  // the frame after it: SETTINGS
    // Our own (empty) SETTINGS frame is accepted: the engine keeps the connection and talks on.
    co_await session.write(std::string("\0\0\0\x04\0\0\0\0\0", 9));
    session.shutdown_send();
}

TEST_CASE("system: a BuildKit session switches to HTTP/2 (Podman 4.3: not found)") {
    for_each_engine(session_opens_http2);
}
TEST_CASE("system: df reports the test's image and container, HEAD /_ping headers") {
    for_each_engine(system_df_and_ping_head);
}
TEST_CASE("exec: stdin from a buffer, a file and a producer, then end-of-file") { for_each_engine(exec_stdin); }
TEST_CASE("exec: 512 MiB of stdin through cat come back byte for byte (unix socket)") {
    for_each_engine(exec_stdin_round_trip);
}
TEST_CASE("attach: a line written to a container running cat comes back") { for_each_engine(attach_echo); }
TEST_CASE("attach: over a websocket (Podman 4.3: refused as not found)") { for_each_engine(attach_over_websocket); }
TEST_CASE("attach: detach keys end the stream and the container keeps running (Docker: with a tty only)") {
    for_each_engine(attach_detach_keys);
}
TEST_CASE("exec: detach keys as each engine treats them (Docker 20.10: exit code 126; Podman 4.3: stdin closed)") {
    for_each_engine(exec_detach_keys);
}
TEST_CASE("raw requests: ping with a header, a list, a JSON body, events streamed, an exec upgraded") {
    for_each_engine(raw_requests);
}
}  // TEST_SUITE("engine")
