// Reaching engines the way users run them: TLS on tcp://, ssh://, and Docker contexts, against the private dockerd
// and sshd that scripts/remote starts on loopback (it prints the BERTH_TLS_* and BERTH_SSH_* variables read here).
// Also the transport's own failures that need no engine (a unix socket that is not there).
#include "support/engines.hpp"
#include "support/patterned_stream.hpp"
#include "support/shell.hpp"
#include "support/tcp_proxy.hpp"

#include <berth/transport/tls.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>

#include <sys/ioctl.h>

using namespace berth_test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {


// Sets environment variables for the length of a test, and puts back what was there.
struct env_guard {
    std::vector<std::pair<std::string, std::optional<std::string>>> saved;
    void remember(const std::string& name) {
        const char* v = std::getenv(name.c_str());
        saved.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
    }
    void set(const std::string& name, const std::string& value) {
        remember(name);
        ::setenv(name.c_str(), value.c_str(), 1);
    }
    void unset(const std::string& name) {
        remember(name);
        ::unsetenv(name.c_str());
    }
    ~env_guard() {
        for (auto it = saved.rbegin(); it != saved.rend(); ++it) {
            if (it->second)
                ::setenv(it->first.c_str(), it->second->c_str(), 1);
            else
                ::unsetenv(it->first.c_str());
        }
    }
    // A clean slate for the docker CLI's own variables.
    void clear_docker() {
        for (const char* v :
             {"DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_TLS_VERIFY", "DOCKER_TLS", "DOCKER_CERT_PATH"})
            unset(v);
    }
};

// What scripts/remote started; nullopt (skipped, or failed in CI) when it did not.
struct remote_setup {
    std::string tls_host;       // tcp://127.0.0.1:PORT, --tlsverify
    fs::path certs;             // ca.pem cert.pem key.pem, other/{ca,cert,key}.pem
    std::string engine_socket;  // unix://... of the same dockerd
    std::string ssh_host;       // ssh://root@127.0.0.1:PORT
    fs::path ssh_dir;           // id_good, id_nodocker, id_wrong, known_hosts
};

std::optional<remote_setup> remote() {
    auto get = [](const char* name) {
        const char* v = std::getenv(name);
        return std::string(v ? v : "");
    };
    remote_setup r{get("BERTH_TLS_HOST"), get("BERTH_TLS_CERTS"), get("BERTH_TLS_ENGINE_SOCKET"), get("BERTH_SSH_HOST"),
                   get("BERTH_SSH_DIR")};
    if (r.tls_host.empty() || r.ssh_host.empty() || r.engine_socket.empty()) {
        const std::string why = "no remote engines: run `eval \"$(scripts/remote start)\"` (scripts/test does)";
        if (in_ci()) FAIL(why);
        MESSAGE("SKIPPED: " << why);
        return std::nullopt;
    }
    return r;
}

berth::engine_endpoint tls_endpoint(const remote_setup& r, const fs::path& material, bool client_cert = true) {
    berth::engine_endpoint ep;
    ep.address = berth::parse_docker_host(r.tls_host);
    ep.tls.enabled = true;
    ep.tls.ca_file = (material / "ca.pem").string();
    if (client_cert) {
        ep.tls.cert_file = (material / "cert.pem").string();
        ep.tls.key_file = (material / "key.pem").string();
    }
    return ep;
}

berth::engine_endpoint ssh_endpoint(const remote_setup& r, const std::string& key) {
    berth::engine_endpoint ep;
    ep.address = berth::parse_docker_host(r.ssh_host);
    ep.ssh.identity_file = (r.ssh_dir / key).string();
    // Only this key, only this host's key, and none of the machine's ssh configuration.
    ep.ssh.extra_args = {
        "-F", "none", "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=" + (r.ssh_dir / "known_hosts").string()};
    return ep;
}

asio::awaitable<bool> ping_endpoint(berth::engine_endpoint ep) {
    auto c = berth::client::at(co_await asio::this_coro::executor, std::move(ep));
    // A hang would be a failure of its own: it shows up as timed_out, not as the typed error expected.
    co_return co_await berth::with_timeout(c.system().ping(), 60s);
}

template <class Error>
std::optional<Error> failure_of(berth::engine_endpoint ep) {
    try {
        run_to_completion(ping_endpoint(std::move(ep)));
        FAIL_CHECK("the connection succeeded");
    } catch (const Error& e) { return e; } catch (const std::exception& e) {
        FAIL_CHECK("another error: " << std::string(e.what()));
    }
    return std::nullopt;
}

// The evaluation workflow of the seed: build_container, copy in, exec, copy out, cleanup.
asio::awaitable<void> evaluation_workflow(berth::client& c, std::string cleanup_address) {
    co_await ensure_base_image(c);
    temp_dir t;
    write_busybox_context(t / "repo");
    write_file(t / "repo/marker.txt", "from the repository\n");
    write_file(t / "in/a.txt", "alpha\n");
    write_file(t / "in/sub/b.bin", std::string(1 << 20, 'b'));
    const auto name = unique_name("h4-remote");
    container_guard guard{cleanup_address, name};
    auto log = std::make_shared<berth::logger>(t / "run.log");

    berth::build_container_options o;
    o.repo_path = (t / "repo").string();
    o.image_name = base_image;
    o.container_name = name;
    o.network_mode = "none";
    o.log = log;
    auto box = co_await berth::build_container(c, o);
    REQUIRE(box.has_value());

    co_await berth::copy_to_container(*box, t / "in", "/work/in", {.verbose = false});
    auto cmd = berth::argv("sh", "-c",
                           "cat /repo/marker.txt /work/in/a.txt; wc -c < /work/in/sub/b.bin; "
                           "echo made > /work/in/out.txt; exit 3");
    auto r = co_await berth::exec(*box, cmd);
    CHECK(r.exit_code == 3);
    CHECK(r.output == "from the repository\nalpha\n1048576\n");
    co_await berth::copy_from_container(*box, "/work/in", t / "back/in", {.verbose = false});
    CHECK(read_file(t / "back/in/out.txt") == "made\n");
    CHECK(read_file(t / "back/in/a.txt") == "alpha\n");
    CHECK(fs::file_size(t / "back/in/sub/b.bin") == (1u << 20));

    berth::cleanup_options cleanup;
    cleanup.log = log;
    cleanup.stop_timeout_seconds = 1;
    co_await berth::cleanup_container(*box, cleanup);
    CHECK_THROWS_AS(co_await c.containers().inspect(name), berth::not_found_error);
}

// Children of this process running `ssh` (zombies included: a child not reaped is still listed).
std::vector<int> ssh_children() {
    std::vector<int> out;
    const int self = ::getpid();
    for (auto& entry : fs::directory_iterator("/proc")) {
        auto pid_text = entry.path().filename().string();
        if (!std::all_of(pid_text.begin(), pid_text.end(), ::isdigit)) continue;
        std::string stat = read_file(entry.path() / "stat");
        auto open = stat.find('('), close = stat.rfind(')');
        if (open == std::string::npos || close == std::string::npos || close + 4 >= stat.size()) continue;
        std::string comm = stat.substr(open + 1, close - open - 1);
        int ppid = std::atoi(stat.c_str() + close + 4);  // ") S PPID"
        if (ppid == self && comm == "ssh") out.push_back(std::stoi(pid_text));
    }
    return out;
}

// The docker CLI used as the reference for contexts (BERTH_DOCKER_CLI, else the first `docker` in PATH).
std::string docker_cli() {
    const char* v = std::getenv("BERTH_DOCKER_CLI");
    return v && *v ? v : "docker";
}

// Pings over TLS through the proxy, keeps the tls_error, and ends the proxy.
// `wc -c` fed stdin over the client's transport: it finishes, and counts every byte, only when the end of stdin
// (the half-close) reaches the engine through that transport. A hang would be the failure: a time limit makes it
// one that shows.
asio::awaitable<void> exec_stdin_word_count(berth::client& c, std::string cleanup_address) {
    const auto name = unique_name("stdin-wc");
    container_guard guard{cleanup_address, name};
    auto id = co_await start_idle_container(c, name);
    std::string input;
    for (int i = 0; i < 5000; ++i) input += static_cast<char>(i * 31);  // binary, NULs among it
    input = input + std::string(300000, 'z');
    berth::exec_options ex;
    ex.cmd = {"wc", "-c"};
    ex.stdin_ = berth::stdin_source::text(input);
    berth::collected_output out;
    ex.on_output = std::ref(out);
    CHECK(co_await berth::with_timeout(c.execs().run(id, ex), 120s) == 0);
    CHECK(out.stdout_text == std::to_string(input.size()) + "\n");
    // and back: `cat` returns the bytes exactly
    berth::exec_options echo;
    echo.cmd = {"cat"};
    echo.stdin_ = berth::stdin_source::text(input);
    berth::collected_output back;
    echo.on_output = std::ref(back);
    CHECK(co_await berth::with_timeout(c.execs().run(id, echo), 120s) == 0);
    CHECK(back.stdout_text == input);
}

asio::awaitable<void> tls_ping_through(berth::engine_endpoint ep, std::optional<berth::tls_error>& caught,
                                       asio::ip::tcp::acceptor& acceptor) {
    try {
        co_await ping_endpoint(ep);
    } catch (const berth::tls_error& e) { caught = e; } catch (const std::exception& e) {
        std::string what = e.what();
        FAIL_CHECK("another error: " << what);
    }
    acceptor.close();
}

}  // namespace

TEST_SUITE("remote") {

// ------------------------------------------------------------------------------------------------------------
// No engine needed
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("a failed connect to a unix socket names the socket and keeps the system's error code") {
    temp_dir t;
    const std::string path = (t / "no-engine-here.sock").string();
    berth::socket_transport transport(asio::system_executor(), berth::parse_docker_host("unix://" + path));
    try {
        run_to_completion(transport.connect());
        FAIL("connected to a socket that does not exist");
    } catch (const boost::system::system_error& e) {
        CHECK(e.code() == boost::system::errc::no_such_file_or_directory);
        CHECK(contains(e.what(), path));
    }
    // and through a client request
    try {
        run_to_completion([](std::string address) -> asio::awaitable<void> {
            auto c = berth::client::at(co_await asio::this_coro::executor, address);
            co_await c.system().ping();
        }("unix://" + path));
        FAIL("pinged a socket that does not exist");
    } catch (const boost::system::system_error& e) { CHECK(contains(e.what(), path)); }
}

TEST_CASE("ssh addresses as the docker CLI reads them") {
    using berth::parse_docker_host;
    auto a = parse_docker_host("ssh://me@box.example:2222");
    CHECK(a.scheme == berth::host_address::kind::ssh);
    CHECK(a.user == "me");
    CHECK(a.host == "box.example");
    CHECK(a.port == 2222);
    CHECK(a.path.empty());
    CHECK(a.to_string() == "ssh://me@box.example:2222");
    auto b = parse_docker_host("ssh://box");
    CHECK(b.user.empty());
    CHECK(b.port == 0);
    CHECK(b.to_string() == "ssh://box");
    auto c = parse_docker_host("ssh://root@[::1]:22/run/user/1000/docker.sock");
    CHECK(c.host == "::1");
    CHECK(c.path == "/run/user/1000/docker.sock");
    CHECK(parse_docker_host(c.to_string()).to_string() == c.to_string());
    CHECK(parse_docker_host("ssh://box/").path.empty());
    for (std::string bad : {"ssh://", "ssh://me@", "ssh://@box", "ssh://me:secret@box", "ssh://box?x=1", "ssh://box#f",
                            "ssh://-oProxyCommand=x", "ssh://-l@box", "ssh://box:0", "ssh://box:abc", "ssh://a b"}) {
        CAPTURE(bad);
        CHECK_THROWS_AS(parse_docker_host(bad), berth::invalid_host);
    }
}

TEST_CASE("the ssh command line is the docker CLI's, with BatchMode, and options never read as the host") {
    berth::engine_endpoint ep;
    ep.address = berth::parse_docker_host("ssh://me@box:2222");
    std::vector<std::string> plain{
        "ssh",    "-o",     "ConnectTimeout=30", "-o", "BatchMode=yes", "-T", "-l", "me", "-p", "2222", "--", "box",
        "docker", "system", "dial-stdio"};
    CHECK(berth::ssh_command(ep) == plain);
    ep.address = berth::parse_docker_host("ssh://box/var/run/my docker.sock");
    ep.ssh.program = "/opt/ssh";
    ep.ssh.identity_file = "/keys/id";
    ep.ssh.extra_args = {"-o", "ConnectTimeout=5", "-v"};
    std::vector<std::string> custom{"/opt/ssh",
                                    "-o",
                                    "BatchMode=yes",
                                    "-T",
                                    "-i",
                                    "/keys/id",
                                    "-o",
                                    "ConnectTimeout=5",
                                    "-v",
                                    "--",
                                    "box",
                                    "docker",
                                    "'--host=unix:///var/run/my docker.sock'",
                                    "system",
                                    "dial-stdio"};
    CHECK(berth::ssh_command(ep) == custom);
}

TEST_CASE("the ssh program missing is an ssh_error naming it") {
    berth::engine_endpoint ep;
    ep.address = berth::parse_docker_host("ssh://127.0.0.1");
    ep.ssh.program = "/nonexistent/berth-ssh";
    auto e = failure_of<berth::ssh_error>(ep);
    REQUIRE(e);
    CHECK(e->code() == berth::ssh_errc::ssh_not_found);
    CHECK(contains(e->what(), "/nonexistent/berth-ssh"));
    CHECK(contains(e->what(), "ssh://127.0.0.1"));
}

TEST_CASE("TLS from the environment: DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, the TLS port by default") {
    env_guard env;
    env.clear_docker();
    temp_dir t;
    write_file(t / "ca.pem", "x");
    env.set("DOCKER_HOST", "tcp://10.1.2.3");
    CHECK(berth::docker_endpoint_from_env().address.port == 2375);
    CHECK_FALSE(berth::docker_endpoint_from_env().tls.enabled);
    env.set("DOCKER_TLS_VERIFY", "1");
    env.set("DOCKER_CERT_PATH", t.path.string());
    auto ep = berth::docker_endpoint_from_env();
    CHECK(ep.address.port == 2376);
    CHECK(ep.tls.enabled);
    CHECK(ep.tls.verify_server);
    CHECK(ep.tls.ca_file == (t / "ca.pem").string());
    CHECK(ep.tls.cert_file.empty());  // no cert.pem/key.pem there: no client certificate, as the CLI
    write_file(t / "cert.pem", "x");
    write_file(t / "key.pem", "x");
    ep = berth::docker_endpoint_from_env();
    CHECK(ep.tls.cert_file == (t / "cert.pem").string());
    CHECK(ep.tls.key_file == (t / "key.pem").string());
    env.unset("DOCKER_TLS_VERIFY");
    env.set("DOCKER_TLS", "1");
    ep = berth::docker_endpoint_from_env();
    CHECK(ep.tls.enabled);
    CHECK_FALSE(ep.tls.verify_server);
    env.unset("DOCKER_TLS");
    env.unset("DOCKER_CERT_PATH");
    env.set("DOCKER_TLS_VERIFY", "1");
    env.set("DOCKER_CONFIG", t.path.string());  // the certificates default to the configuration directory
    CHECK(berth::docker_endpoint_from_env().tls.ca_file == (t / "ca.pem").string());
}

TEST_CASE("TLS material that cannot be used is a tls_error naming the file, before any connection") {
    temp_dir t;
    write_file(t / "ca.pem", "not a certificate\n");
    berth::engine_endpoint ep;
    ep.address = berth::parse_docker_host("tcp://127.0.0.1:1", berth::docker_tls_port);
    ep.tls.enabled = true;
    ep.tls.ca_file = (t / "missing.pem").string();
    try {
        berth::socket_transport transport(asio::system_executor(), ep);
        FAIL("accepted a CA file that does not exist");
    } catch (const berth::tls_error& e) {
        CHECK(e.code() == berth::tls_errc::bad_material);
        CHECK(contains(e.what(), "missing.pem"));
    }
    ep.tls.ca_file = (t / "ca.pem").string();
    CHECK_THROWS_AS(berth::socket_transport(asio::system_executor(), ep), berth::tls_error);
    ep.tls.ca_file.clear();
    ep.tls.cert_file = (t / "ca.pem").string();  // a certificate without its key
    CHECK_THROWS_AS(berth::socket_transport(asio::system_executor(), ep), berth::tls_error);
}

TEST_CASE("without <berth/transport/tls.hpp>, a TLS endpoint says what to include and link") {
    auto& factory = berth::detail::tls_factory();
    auto registered = factory.exchange(nullptr);  // as in a program that never included tls.hpp
    berth::engine_endpoint ep;
    ep.address = berth::parse_docker_host("tcp://127.0.0.1:2376");
    ep.tls.enabled = true;
    try {
        berth::socket_transport transport(asio::system_executor(), ep);
        FAIL_CHECK("a TLS endpoint was accepted without TLS support");
    } catch (const berth::tls_error& e) {
        CHECK(e.code() == berth::tls_errc::not_available);
        CHECK(contains(e.what(), "berth/transport/tls.hpp"));
        CHECK(contains(e.what(), "-lssl"));
    }
    factory.store(registered);
}

TEST_CASE("an unknown or malformed context is a context_error") {
    env_guard env;
    env.clear_docker();
    temp_dir t;
    env.set("DOCKER_CONFIG", t.path.string());
    try {
        berth::load_docker_context("nowhere");
        FAIL("found a context that does not exist");
    } catch (const berth::context_error& e) {
        CHECK(e.code() == berth::context_errc::not_found);
        CHECK(contains(e.what(), "nowhere"));
    }
    CHECK_THROWS_AS(berth::load_docker_context("../x"), berth::context_error);
    env.set("DOCKER_CONTEXT", "nowhere");
    CHECK_THROWS_AS(berth::client::from_env(asio::system_executor()), berth::context_error);
    env.unset("DOCKER_CONTEXT");
    write_file(t / "config.json", "{\"currentContext\": 7}");
    CHECK_THROWS_AS(berth::current_docker_context_name(), berth::context_error);
    write_file(t / "config.json", "{\"auths\": {}}");
    CHECK(berth::current_docker_context_name() == "default");
}

// ------------------------------------------------------------------------------------------------------------
// TLS against the private dockerd
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("the evaluation workflow over TLS, from DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH") {
    auto r = remote();
    if (!r) return;
    env_guard env;
    env.clear_docker();
    env.set("DOCKER_HOST", r->tls_host);
    env.set("DOCKER_TLS_VERIFY", "1");
    env.set("DOCKER_CERT_PATH", r->certs.string());
    run_to_completion([](remote_setup r) -> asio::awaitable<void> {
        auto c = berth::client::from_env(co_await asio::this_coro::executor);
        CHECK(c.transport().endpoint().uses_tls());
        CHECK(co_await c.system().ping());
        co_await evaluation_workflow(c, r.engine_socket);
    }(*r));
}

TEST_CASE("exec: stdin over TLS: wc -c sees the end of stdin (close_notify and FIN)") {
    auto r = remote();
    if (!r) return;
    run_to_completion([](remote_setup r) -> asio::awaitable<void> {
        auto c = berth::client::at(co_await asio::this_coro::executor, tls_endpoint(r, r.certs));
        co_await exec_stdin_word_count(c, r.engine_socket);
    }(*r));
}

TEST_CASE("exec: 512 MiB of stdin through cat come back byte for byte over TLS") {
    auto r = remote();
    if (!r) return;
    run_to_completion([](remote_setup r) -> asio::awaitable<void> {
        auto c = berth::client::at(co_await asio::this_coro::executor, tls_endpoint(r, r.certs));
        const auto name = unique_name("stdin-512-tls");
        container_guard guard{r.engine_socket, name};
        auto id = co_await start_idle_container(c, name);
        co_await cat_round_trip(c, id);
    }(*r));
}

TEST_CASE("a raw request over TLS: GET /containers/json with a query and a header of the caller's") {
    auto r = remote();
    if (!r) return;
    run_to_completion([](remote_setup r) -> asio::awaitable<void> {
        auto c = berth::client::at(co_await asio::this_coro::executor, tls_endpoint(r, r.certs));
        berth::raw_request list_req{
            .path = "/containers/json", .query = {{"all", "1"}}, .headers = {{"X-Berth-Test", "tls"}}};
        auto list = co_await c.raw().send(list_req);
        CHECK(list.status == 200);
        CHECK(list.body_json().is_array());
        berth::raw_request ping_req{.path = "/_ping", .verbatim_path = true};
        auto ping = co_await c.raw().send(ping_req);
        CHECK(ping.body == "OK");
    }(*r));
}

TEST_CASE("TLS failures are typed, name the engine and do not hang") {
    auto r = remote();
    if (!r) return;
    SUBCASE("a CA that did not sign the server's certificate") {
        auto ep = tls_endpoint(*r, r->certs);
        ep.tls.ca_file = (r->certs / "other/ca.pem").string();
        auto e = failure_of<berth::tls_error>(ep);
        REQUIRE(e);
        CHECK(e->code() == berth::tls_errc::unknown_ca);
        CHECK(e->code() == berth::tls_errc::unknown_ca);
        CHECK(contains(e->what(), r->tls_host));
        CHECK(contains(e->message(), "certificate"));
    }
    SUBCASE("no client certificate") {
        auto e = failure_of<berth::tls_error>(tls_endpoint(*r, r->certs, false));
        REQUIRE(e);
        CHECK(e->code() == berth::tls_errc::certificate_rejected);
        CHECK(contains(e->what(), r->tls_host));
    }
    SUBCASE("a client certificate from a CA the server does not trust") {
        auto ep = tls_endpoint(*r, r->certs / "other");
        ep.tls.ca_file = (r->certs / "ca.pem").string();
        auto e = failure_of<berth::tls_error>(ep);
        REQUIRE(e);
        CHECK(e->code() == berth::tls_errc::certificate_rejected);
    }
    SUBCASE("a host name the server's certificate does not name") {
        auto ep = tls_endpoint(*r, r->certs);
        ep.address.host = "localhost";  // the certificate names IP 127.0.0.1 only
        auto e = failure_of<berth::tls_error>(ep);
        REQUIRE(e);
        CHECK(e->code() == berth::tls_errc::host_name_mismatch);
        CHECK(contains(e->what(), "tcp://localhost:"));
    }
    SUBCASE("plain HTTP to the TLS port") {
        berth::engine_endpoint ep;
        ep.address = berth::parse_docker_host(r->tls_host);
        auto e = failure_of<berth::tls_error>(ep);
        REQUIRE(e);
        CHECK(e->code() == berth::tls_errc::requires_tls);
        CHECK(contains(e->what(), "DOCKER_TLS_VERIFY"));
    }
    SUBCASE("TLS to a plain-HTTP port") {
        asio::io_context io;
        asio::ip::tcp::acceptor acceptor(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        auto port = acceptor.local_endpoint().port();
        asio::co_spawn(io, tcp_proxy(acceptor, berth::parse_docker_host(r->engine_socket).path), asio::detached);
        std::optional<berth::tls_error> caught;
        auto ep = tls_endpoint(*r, r->certs);
        ep.address.port = port;
        asio::co_spawn(io, tls_ping_through(ep, caught, acceptor), asio::detached);
        io.run();
        REQUIRE(caught);
        CHECK(caught->code() == berth::tls_errc::not_tls);
        CHECK(contains(caught->what(), std::to_string(port)));
    }
}

TEST_CASE("later TLS connections of a transport resume its session, and another transport's do not") {
    auto r = remote();
    if (!r) return;
    run_to_completion([](remote_setup r) -> asio::awaitable<void> {
        auto resumed = [](berth::connection_stream& s) {
            auto* tls = dynamic_cast<berth::detail::tls_stream*>(s.layered());
            REQUIRE(tls);
            return SSL_session_reused(tls->native_handle()) == 1;
        };
        auto ex = co_await asio::this_coro::executor;
        berth::socket_transport transport(ex, tls_endpoint(r, r.certs));
        auto first = co_await transport.connect();  // checked with GET /_ping: its reply brings the server's ticket
        CHECK_FALSE(resumed(first));
        auto second = co_await transport.connect();
        CHECK(resumed(second));
        auto outcome = co_await berth::detail::ping_probe(second);
        CHECK_FALSE(outcome.ec);
        CHECK(outcome.status == 200);
        berth::socket_transport other(ex, tls_endpoint(r, r.certs));
        auto elsewhere = co_await other.connect();
        CHECK_FALSE(resumed(elsewhere));
    }(*r));
}

TEST_CASE("a TLS connection taken for an exec stream is replaced in the background; a unix one is not") {
    auto r = remote();
    if (!r) return;
    run_to_completion([](remote_setup r) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        auto spare_after_release = [&](berth::socket_transport transport) -> asio::awaitable<std::size_t> {
            auto pool = std::make_shared<berth::http::connection_pool<berth::socket_transport>>(std::move(transport),
                                                                                                4);
            auto taken = co_await pool->acquire(pool);
            REQUIRE(pool->idle_connections() == 0);
            auto stream = taken.release();  // as an exec's upgraded stream is taken
            asio::steady_timer pause(ex);
            for (int i = 0; i < 500 && pool->idle_connections() == 0; ++i) {  // at most 5 s: a handshake on loopback
                pause.expires_after(10ms);
                co_await pause.async_wait(asio::use_awaitable);
            }
            CHECK(pool->open_connections() == 1 + pool->idle_connections());  // the taken one, and any spare
            co_return pool->idle_connections();
        };
        CHECK(co_await spare_after_release(berth::socket_transport(ex, tls_endpoint(r, r.certs))) == 1);
        CHECK(co_await spare_after_release(berth::socket_transport(ex, berth::parse_docker_host(r.engine_socket))) ==
              0);
    }(*r));
}

// A TLS server on loopback with the test's server certificate: sends `payload` as soon as the handshake is done
// (records of 16 KiB, as Asio's SSL stream writes them), then keeps what the client sends until it closes.
asio::awaitable<void> tls_server_once(asio::ip::tcp::acceptor& acceptor, asio::ssl::context& ctx,
                                      const std::string& payload, std::string& received) {
    auto tcp = co_await acceptor.async_accept(asio::use_awaitable);
    asio::ssl::stream<asio::ip::tcp::socket> tls(std::move(tcp), ctx);
    co_await tls.async_handshake(asio::ssl::stream_base::server, asio::use_awaitable);
    co_await asio::async_write(tls, asio::buffer(payload), asio::use_awaitable);
    std::array<char, 65536> buf;
    for (;;) {
        auto [ec, n] = co_await tls.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
        received.append(buf.data(), n);
        if (ec) break;
    }
}

TEST_CASE("a TLS read returns every record that has arrived, a large write and a gathered write are sent whole, and "
          "a read can be cancelled") {
    auto r = remote();
    if (!r) return;
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    asio::ssl::context server_ctx(asio::ssl::context::tls_server);
    server_ctx.use_certificate_chain_file((r->certs / "server-cert.pem").string());
    server_ctx.use_private_key_file((r->certs / "server-key.pem").string(), asio::ssl::context::pem);
    auto pattern = [](std::size_t size, unsigned seed) {
        std::string s(size, '\0');
        for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<char>((i * seed) % 251);
        return s;
    };
    const std::string payload = pattern(256 * 1024, 7), upload = pattern(1 << 20, 13);
    const std::array<std::string, 6> gathered_parts{
        "5\r\n", "ab", pattern(300 * 1024, 17), "\r\n", pattern(40 * 1024, 19), "0\r\n\r\n"};
    std::string received;
    asio::co_spawn(io, tls_server_once(acceptor, server_ctx, payload, received), asio::detached);
    auto ep = tls_endpoint(*r, r->certs);
    ep.address.port = acceptor.local_endpoint().port();
    std::optional<std::size_t> first_read;
    std::string got;
    std::optional<boost::system::error_code> cancelled_read;
    // A named closure: the coroutine reads its captures through it, so it must outlive io.run().
    auto client = [&]() -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        asio::generic::stream_protocol::socket socket(ex);
        co_await socket.async_connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), ep.address.port),
                                      asio::use_awaitable);
        auto stream = co_await berth::detail::make_openssl_connector(ep)->handshake(std::move(socket));
        auto* tls = dynamic_cast<berth::detail::tls_stream*>(stream.layered());
        REQUIRE(tls);
        // Until the kernel holds at least three records' worth of the payload (a condition, not a time).
        asio::steady_timer pause(ex);
        for (int queued = 0;
             ::ioctl(tls->lowest_layer().native_handle(), FIONREAD, &queued) == 0 && queued < 48 * 1024;) {
            pause.expires_after(1ms);
            co_await pause.async_wait(asio::use_awaitable);
        }
        got.resize(payload.size());
        first_read = co_await stream.async_read_some(asio::buffer(got), asio::use_awaitable);
        for (std::size_t total = *first_read; total < got.size();)
            total += co_await stream.async_read_some(asio::buffer(got.data() + total, got.size() - total),
                                                     asio::use_awaitable);

        const std::size_t wrote = co_await stream.async_write_some(asio::buffer(upload), asio::use_awaitable);
        CHECK(wrote == upload.size());
        // A write of several buffers takes them all, in order: small ones joined into a record with the start of
        // the next, large ones across the 256 KiB of records gathered per send (socket_bio.hpp).
        const std::array<asio::const_buffer, 6> pieces{
            asio::buffer(gathered_parts[0]), asio::buffer(gathered_parts[1]), asio::buffer(gathered_parts[2]),
            asio::buffer(gathered_parts[3]), asio::buffer(gathered_parts[4]), asio::buffer(gathered_parts[5])};
        const std::size_t wrote_gathered = co_await stream.async_write_some(pieces, asio::use_awaitable);
        CHECK(wrote_gathered == asio::buffer_size(pieces));

        // Nothing more will come: the read waits on the socket until its cancellation slot is signalled.
        asio::cancellation_signal cancel;
        std::array<char, 1024> buf;
        stream.async_read_some(asio::buffer(buf),
                               asio::bind_cancellation_slot(cancel.slot(), [&](boost::system::error_code ec,
                                                                               std::size_t) { cancelled_read = ec; }));
        co_await asio::post(ex, asio::use_awaitable);
        CHECK_FALSE(cancelled_read);
        cancel.emit(asio::cancellation_type::terminal);
        while (!cancelled_read) co_await asio::post(ex, asio::use_awaitable);
        boost::system::error_code ignored;
        stream.close(ignored);  // close_notify: the server's read ends
    };
    asio::co_spawn(io, client(), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    io.run();
    REQUIRE(first_read);
    CHECK(*first_read > 16 * 1024);  // more than one record: Asio's SSL stream returned at most one per read
    CHECK(got == payload);
    std::string sent = upload;
    for (const auto& part : gathered_parts) sent += part;
    CHECK(received.size() == sent.size());
    CHECK(received == sent);
    REQUIRE(cancelled_read);
    CHECK(*cancelled_read == asio::error::operation_aborted);
}

// A TLS server on loopback that resets every connection once the client's first request has arrived (as a server
// closing on its refusal of a client certificate may: its alert is lost to the reset).
asio::awaitable<void> tls_server_resetting(asio::ip::tcp::acceptor& acceptor, asio::ssl::context& ctx) {
    for (;;) {
        auto tcp = co_await acceptor.async_accept(asio::use_awaitable);
        asio::ssl::stream<asio::ip::tcp::socket> tls(std::move(tcp), ctx);
        co_await tls.async_handshake(asio::ssl::stream_base::server, asio::use_awaitable);
        char first = 0;  // the request may already sit in the TLS layer's buffer, read with the handshake's end
        co_await tls.async_read_some(asio::buffer(&first, 1), asio::use_awaitable);
        tls.next_layer().set_option(asio::socket_base::linger(true, 0));  // close at once: a reset
        tls.next_layer().close();
    }
}

TEST_CASE("a TLS server that asked for a client certificate and then resets the connection refused the certificate") {
    auto r = remote();
    if (!r) return;
    for (const bool asks : {true, false}) {
        CAPTURE(asks);
        asio::io_context io;
        asio::ip::tcp::acceptor acceptor(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        asio::ssl::context server_ctx(asio::ssl::context::tls_server);
        server_ctx.use_certificate_chain_file((r->certs / "server-cert.pem").string());
        server_ctx.use_private_key_file((r->certs / "server-key.pem").string(), asio::ssl::context::pem);
        if (asks) {
            server_ctx.set_verify_mode(asio::ssl::verify_peer);  // asks; the handshake takes any answer
            server_ctx.set_verify_callback([](bool, asio::ssl::verify_context&) { return true; });
        }
        asio::co_spawn(io, tls_server_resetting(acceptor, server_ctx), asio::detached);
        auto ep = tls_endpoint(*r, r->certs);
        ep.address.port = acceptor.local_endpoint().port();
        std::exception_ptr failure;
        asio::co_spawn(io, ping_endpoint(ep), [&](std::exception_ptr e, bool) {
            failure = e;
            io.stop();
        });
        io.run();
        REQUIRE(failure);
        try {
            std::rethrow_exception(failure);
        } catch (const berth::tls_error& e) {
            CHECK(asks);
            CHECK(e.code() == berth::tls_errc::certificate_rejected);
            CHECK(contains(e.what(), "asking for a client certificate"));
        } catch (const berth::error& e) {
            CHECK_FALSE(asks);  // a reset from a server that asked for nothing is the connection's failure
            CHECK(e.code() != boost::asio::error::timed_out);
        }
    }
}

// ------------------------------------------------------------------------------------------------------------
// ssh against the private sshd
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("the evaluation workflow over ssh://, and no ssh child outlives its connection") {
    auto r = remote();
    if (!r) return;
    REQUIRE(ssh_children().empty());
    run_to_completion([](remote_setup r) -> asio::awaitable<void> {
        auto c = berth::client::at(co_await asio::this_coro::executor, ssh_endpoint(r, "id_good"));
        co_await evaluation_workflow(c, r.engine_socket);
        // idle keep-alive connections are ssh children still running: the check below can see them
        CHECK(c.idle_connections() > 0);
        CHECK(ssh_children().size() == c.open_connections());
        c.close_idle_connections();
        CHECK(c.open_connections() == 0);
        CHECK(ssh_children().empty());
        // a connection cancelled while it is being made ends its child too
        CHECK_THROWS_AS(co_await berth::with_timeout(c.system().ping(), 1ns), boost::system::system_error);
        c.close_idle_connections();
        CHECK(ssh_children().empty());
    }(*r));
    CHECK(ssh_children().empty());
}

TEST_CASE("exec: stdin over ssh: wc -c sees the end of stdin (through ssh and docker system dial-stdio)") {
    auto r = remote();
    if (!r) return;
    run_to_completion([](remote_setup r) -> asio::awaitable<void> {
        auto c = berth::client::at(co_await asio::this_coro::executor, ssh_endpoint(r, "id_good"));
        co_await exec_stdin_word_count(c, r.engine_socket);
        c.close_idle_connections();
    }(*r));
    CHECK(ssh_children().empty());
}

TEST_CASE("exec: 512 MiB of stdin through cat come back byte for byte over ssh") {
    auto r = remote();
    if (!r) return;
    run_to_completion([](remote_setup r) -> asio::awaitable<void> {
        auto c = berth::client::at(co_await asio::this_coro::executor, ssh_endpoint(r, "id_good"));
        const auto name = unique_name("stdin-512-ssh");
        container_guard guard{r.engine_socket, name};
        auto id = co_await start_idle_container(c, name);
        co_await cat_round_trip(c, id);
        c.close_idle_connections();
    }(*r));
    CHECK(ssh_children().empty());
}

TEST_CASE("ssh failures are typed and carry ssh's own message") {
    auto r = remote();
    if (!r) return;
    SUBCASE("a key the server does not accept") {
        auto e = failure_of<berth::ssh_error>(ssh_endpoint(*r, "id_wrong"));
        REQUIRE(e);
        CHECK(e->code() == berth::ssh_errc::authentication_refused);
        CHECK(e->exit_status() == 255);
        CHECK(contains(e->ssh_stderr(), "Permission denied"));
        CHECK(contains(e->what(), "Permission denied"));
        CHECK(contains(e->what(), r->ssh_host));
    }
    SUBCASE("no docker on the remote side") {
        auto e = failure_of<berth::ssh_error>(ssh_endpoint(*r, "id_nodocker"));
        REQUIRE(e);
        CHECK(e->code() == berth::ssh_errc::remote_docker_missing);
        CHECK(e->exit_status() == 127);
        CHECK(contains(e->what(), "docker"));
    }
    SUBCASE("a host key that is not known") {
        auto ep = ssh_endpoint(*r, "id_good");
        ep.ssh.extra_args.back() = "UserKnownHostsFile=/dev/null";
        auto e = failure_of<berth::ssh_error>(ep);
        REQUIRE(e);
        CHECK(e->code() == berth::ssh_errc::host_key_rejected);
        CHECK(contains(e->what(), "Host key verification failed"));
    }
    CHECK(ssh_children().empty());
}

// ------------------------------------------------------------------------------------------------------------
// Docker contexts made by the docker CLI
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("contexts made with `docker context create` resolve as `docker context inspect` shows them") {
    auto r = remote();
    if (!r) return;
    env_guard env;
    env.clear_docker();
    temp_dir config;
    env.set("DOCKER_CONFIG", config.path.string());
    const auto cli = docker_cli();
    const auto certs = r->certs.string();
    struct made {
        std::string name, docker_option;
    };
    std::vector<made> contexts{
        {"berth-tls",
         "host=" + r->tls_host + ",ca=" + certs + "/ca.pem,cert=" + certs + "/cert.pem,key=" + certs + "/key.pem"},
        {"berth-ca-only", "host=" + r->tls_host + ",ca=" + certs + "/ca.pem"},
        {"berth-skip", "host=" + r->tls_host + ",skip-tls-verify=true"},
        {"berth-unix", "host=" + r->engine_socket},
        {"berth.ssh", "host=" + r->ssh_host},
        {"berth-plain", "host=tcp://127.0.0.1:2375"},
    };
    for (auto& m : contexts) {
        int status = 0;
        auto out = shell_output(cli + " context create " + m.name + " --docker '" + m.docker_option + "' 2>&1",
                                &status);
        INFO(out);
        REQUIRE(status == 0);
    }
    for (auto& m : contexts) {
        CAPTURE(m.name);
        int status = 0;
        auto text = shell_output(cli + " context inspect " + m.name + " 2>&1", &status);
        INFO(text);
        REQUIRE(status == 0);
        auto inspected = boost::json::parse(text).as_array().at(0).as_object();
        auto& docker = inspected.at("Endpoints").as_object().at("docker").as_object();
        auto c = berth::load_docker_context(m.name);
        CHECK(c.name == m.name);
        auto host = std::string(docker.at("Host").as_string());
        CHECK(c.endpoint.address.to_string() ==
              berth::parse_docker_host(host, c.endpoint.tls.enabled ? berth::docker_tls_port : berth::docker_plain_port)
                  .to_string());
        CHECK(c.skip_tls_verify == docker.at("SkipTLSVerify").as_bool());
        auto& storage = inspected.at("Storage").as_object();
        CHECK(c.meta_dir.string() == std::string(storage.at("MetadataPath").as_string()));
        CHECK(c.tls_dir.string() == std::string(storage.at("TLSPath").as_string()));
        std::vector<std::string> material;
        if (auto* tls = inspected.at("TLSMaterial").as_object().if_contains("docker"))
            for (auto& f : tls->as_array()) material.emplace_back(f.as_string());
        std::sort(material.begin(), material.end());
        CHECK(c.tls_files == material);
        // what the CLI would do with it: TLS for tcp:// with material or skip-tls-verify, verification unless skipped
        const bool tcp = c.endpoint.address.scheme == berth::host_address::kind::tcp;
        CHECK(c.endpoint.uses_tls() == (tcp && (!material.empty() || c.skip_tls_verify)));
        CHECK(c.endpoint.tls.verify_server == !c.skip_tls_verify);
        if (!material.empty()) CHECK(c.endpoint.tls.ca_file == (c.tls_dir / "docker/ca.pem").string());
    }

    SUBCASE("a client from a named context reaches the engine over TLS") {
        run_to_completion([]() -> asio::awaitable<void> {
            auto c = berth::client::from_context(co_await asio::this_coro::executor, "berth-tls");
            CHECK(c.transport().endpoint().uses_tls());
            CHECK(co_await c.system().ping());
            auto v = co_await c.version();
            CHECK(!v.version.empty());
        }());
        // the CA alone checks the server; without a client certificate the server refuses
        try {
            run_to_completion([]() -> asio::awaitable<void> {
                auto c = berth::client::from_context(co_await asio::this_coro::executor, "berth-ca-only");
                co_await berth::with_timeout(c.system().ping(), 60s);
            }());
            FAIL("the server accepted a client without a certificate");
        } catch (const berth::tls_error& e) { CHECK(e.code() == berth::tls_errc::certificate_rejected); }
    }
    SUBCASE("the current context, as the CLI names it: DOCKER_HOST over DOCKER_CONTEXT over currentContext") {
        auto show = [&] {
            int status = 0;
            // (`docker context show` is newer than Debian's CLI 20.10; inspect without a name shows the current one)
            auto out = shell_output(cli + " context inspect --format '{{.Name}}' 2>&1", &status);
            while (!out.empty() && out.back() == '\n') out.pop_back();
            INFO(out);
            CHECK(status == 0);
            return out;
        };
        CHECK(berth::current_docker_context_name() == "default");
        CHECK(show() == "default");
        REQUIRE(std::system((cli + " context use berth-tls >/dev/null 2>&1").c_str()) == 0);
        CHECK(berth::current_docker_context_name() == "berth-tls");
        CHECK(show() == "berth-tls");
        run_to_completion([]() -> asio::awaitable<void> {
            auto c = berth::client::from_env(co_await asio::this_coro::executor);
            CHECK(c.transport().endpoint().uses_tls());
            CHECK(co_await c.system().ping());
        }());
        env.set("DOCKER_CONTEXT", "berth-unix");
        CHECK(berth::current_docker_context_name() == "berth-unix");
        CHECK(show() == "berth-unix");
        CHECK(berth::docker_endpoint_from_env().address.to_string() == r->engine_socket);
        env.set("DOCKER_HOST", r->engine_socket);
        CHECK(berth::current_docker_context_name() == "default");
        CHECK(show() == "default");
        env.unset("DOCKER_HOST");
        env.set("DOCKER_CONTEXT", "berth-missing");
        CHECK_THROWS_AS(berth::client::from_env(asio::system_executor()), berth::context_error);
    }
}

}  // TEST_SUITE("remote")
