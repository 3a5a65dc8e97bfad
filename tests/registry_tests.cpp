// Registries: the auth headers, image references, credentials as the docker CLI finds them (config.json, credsStore
// and credHelpers helpers run as child processes), and pull/push/check_auth against real registries on loopback
// (scripts/registry: one with htpasswd auth, one open, both TLS from a CA made at start) with Docker and Podman.
#include "support/engines.hpp"
#include "support/shell.hpp"

#include <berth/detail/sha256.hpp>
#include <berth/engine/credentials.hpp>
#include <berth/engine/registry.hpp>
#include <berth/testing/mock_engine.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/parse.hpp>

#include <csignal>
#include <cstdio>
#include <future>
#include <map>
#include <optional>
#include <set>
#include <sys/stat.h>
#include <sys/wait.h>

using namespace berth_test;
namespace fs = std::filesystem;

namespace {

// ---- the registries under test ----

struct registries {
    std::string auth, user, password, open;  // host:port of each; the auth registry's user and password
    std::string ca;                          // the CA certificate both are served with
    std::string started_dir;                 // set when this process started them (and stops them at exit)
};

std::string env_or_empty(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

// The state folder of registries this process started, for the exit handler (plain chars: no destructor runs
// before the handler does).
char own_registry_dir[256] = {};

void stop_own_registries() {
    const std::string cmd = "BERTH_REGISTRY_DIR=" + std::string(own_registry_dir) + " " +
                            std::string(BERTH_TEST_DATA_DIR) + "/../../scripts/registry stop";
    [[maybe_unused]] int rc = std::system(cmd.c_str());
}

// The registries named by BERTH_REGISTRY..., else ones started here with scripts/registry (stopped at exit).
const registries* registry_under_test() {
    static std::optional<registries> r = [] {
        registries out{env_or_empty("BERTH_REGISTRY"),          env_or_empty("BERTH_REGISTRY_USER"),
                       env_or_empty("BERTH_REGISTRY_PASSWORD"), env_or_empty("BERTH_REGISTRY_OPEN"),
                       env_or_empty("BERTH_REGISTRY_CA"),       {}};
        if (!out.auth.empty()) return std::optional<registries>(out);
        out.started_dir = "/tmp/berth-registry-test-" + std::to_string(::getpid());
        const std::string script = std::string(BERTH_TEST_DATA_DIR) + "/../../scripts/registry";
        const std::string cmd = "BERTH_REGISTRY_DIR=" + out.started_dir + " " + script + " start 2>&1";
        int rc = 0;
        const std::string text = shell_output(cmd, &rc);
        if (rc != 0) {
            MESSAGE("scripts/registry start failed: " << text);
            return std::optional<registries>();
        }
        std::snprintf(own_registry_dir, sizeof own_registry_dir, "%s", out.started_dir.c_str());
        std::atexit(stop_own_registries);
        std::map<std::string, std::string> vars;
        for (std::size_t at = 0, nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1) {
            auto line = text.substr(at, nl - at);
            if (line.starts_with("export ")) line.erase(0, 7);
            if (auto eq = line.find('='); eq != std::string::npos) vars[line.substr(0, eq)] = line.substr(eq + 1);
        }
        out.auth = vars["BERTH_REGISTRY"];
        out.user = vars["BERTH_REGISTRY_USER"];
        out.password = vars["BERTH_REGISTRY_PASSWORD"];
        out.open = vars["BERTH_REGISTRY_OPEN"];
        out.ca = vars["BERTH_REGISTRY_CA"];
        return std::optional<registries>(out);
    }();
    if (!r) {
        if (in_ci()) FAIL("no registry: scripts/registry could not start one");
        MESSAGE("SKIPPED: no registry (set BERTH_REGISTRY... from scripts/registry start)");
        return nullptr;
    }
    return &*r;
}

berth::registry_credentials good_credentials(const registries& r) {
    berth::registry_credentials c;
    c.username = r.user;
    c.password = r.password;
    c.server_address = r.auth;
    return c;
}

// ---- helpers for credential helpers ----

// Writes an executable docker-credential-<name> into dir.
void write_helper(const fs::path& dir, const std::string& name, const std::string& script) {
    write_script(dir / ("docker-credential-" + name), script);
}

// A helper that answers `get` for `key` with user/secret and writes what it was asked (and its pid) to dir/<name>.log.
std::string answering_helper(const fs::path& dir, const std::string& name, const std::string& key,
                             const std::string& user, const std::string& secret) {
    auto log = (dir / (name + ".log")).string();
    return "read -r url || true\n"
           "echo \"$1 $url $$\" >> '" +
           log +
           "'\n"
           "if [ \"$1\" = list ]; then printf '{\"%s\":\"%s\"}' '" +
           key + "' '" + user +
           "'; exit 0; fi\n"
           "if [ \"$url\" = '" +
           key +
           "' ]; then\n"
           "  printf '{\"ServerURL\":\"%s\",\"Username\":\"%s\",\"Secret\":\"%s\"}' \"$url\" '" +
           user + "' '" + secret +
           "'\n"
           "else echo 'credentials not found in native keychain'; exit 1; fi\n";
}

bool no_child_left() {
    int status = 0;
    return ::waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD;
}


}  // namespace

// ===================== no engine =====================

TEST_CASE("image references: registry, name, tag and digest as the docker CLI splits them") {
    auto r = berth::parse_image_reference("127.0.0.1:5000/team/app:1.2");
    CHECK(r.registry == "127.0.0.1:5000");
    CHECK(r.name == "127.0.0.1:5000/team/app");
    CHECK(r.tag == "1.2");
    CHECK(r.str() == "127.0.0.1:5000/team/app:1.2");
    r = berth::parse_image_reference("127.0.0.1:5000/app");  // the port is not a tag
    CHECK(r.tag.empty());
    CHECK(r.tag_or_latest() == "latest");
    r = berth::parse_image_reference("busybox");
    CHECK(r.registry == "docker.io");
    CHECK(berth::credential_key(r.registry) == "https://index.docker.io/v1/");
    CHECK(berth::parse_image_reference("library/busybox:1").registry == "docker.io");
    CHECK(berth::parse_image_reference("localhost/app").registry == "localhost");
    r = berth::parse_image_reference("h.example/app@sha256:abc");
    CHECK(r.digest == "sha256:abc");
    CHECK(r.tag_or_latest().empty());
    CHECK(r.str() == "h.example/app@sha256:abc");
    for (std::string bad : {"", "app:", "/app", "a//b", "app@sha256", "app name", "app\n:x", "app@:x"})
        CHECK_THROWS_AS(berth::parse_image_reference(bad), berth::invalid_reference);
}

TEST_CASE("X-Registry-Auth and X-Registry-Config are base64url JSON the engine decodes") {
    CHECK(berth::detail::base64url_encode("") == "");
    CHECK(berth::detail::base64url_encode("f") == "Zg==");
    CHECK(berth::detail::base64url_encode("fo") == "Zm8=");
    CHECK(berth::detail::base64url_encode("foo") == "Zm9v");
    CHECK(berth::detail::base64url_encode("\xfb\xff") == "-_8=");  // url alphabet, not + and /
    berth::registry_credentials c;
    c.username = "u";
    c.password = "p?>";
    c.server_address = "127.0.0.1:5000";
    auto decoded = berth::detail::base64_decode(berth::registry_auth_header(c));
    REQUIRE(decoded);
    auto o = boost::json::parse(*decoded).as_object();
    CHECK(o.at("username") == "u");
    CHECK(o.at("password") == "p?>");
    CHECK(o.at("serveraddress") == "127.0.0.1:5000");
    CHECK_FALSE(o.contains("identitytoken"));
    CHECK(*berth::detail::base64_decode(berth::registry_auth_header({})) == "{}");
    std::map<std::string, berth::registry_credentials> all{{"127.0.0.1:5000", c}};
    auto config = boost::json::parse(*berth::detail::base64_decode(berth::registry_config_header(all))).as_object();
    CHECK(config.at("127.0.0.1:5000").at("password") == "p?>");
}

TEST_CASE("redact removes every secret and the header made from it") {
    berth::registry_credentials c;
    c.username = "someone";
    c.password = "hunter22";
    c.identity_token = "tok-123";
    auto text = berth::redact("login hunter22 failed; token tok-123; header " + berth::registry_auth_header(c), c);
    CHECK(text.find("hunter22") == std::string::npos);
    CHECK(text.find("tok-123") == std::string::npos);
    CHECK(text.find(berth::registry_auth_header(c)) == std::string::npos);
    CHECK(text.find("someone") == std::string::npos);  // only inside the (redacted) header
    CHECK(text.find("<redacted>") != std::string::npos);
}

TEST_CASE("credentials from config.json auths: the auth field, scheme-and-path keys, Docker Hub's key") {
    temp_dir dir;
    write_file(
        dir / "config.json",
        R"({"auths":{"https://127.0.0.1:5999/v2/":{"auth":")" + berth::detail::base64url_encode("alice:s3cret:x") +
            R"("},"https://index.docker.io/v1/":{"username":"hub","password":"hubpw"},"other:1":{"identitytoken":"idt"}}})");
    berth::credential_options o;
    o.config_dir = dir.path;
    auto c = run_to_completion(berth::find_credentials("127.0.0.1:5999", o));
    REQUIRE(c);
    CHECK(c->username == "alice");
    CHECK(c->password == "s3cret:x");  // only the first colon separates
    auto hub = run_to_completion(berth::find_credentials("docker.io", o));
    REQUIRE(hub);
    CHECK(hub->username == "hub");
    CHECK(hub->server_address == "https://index.docker.io/v1/");
    CHECK(run_to_completion(berth::find_credentials("other:1", o))->identity_token == "idt");
    CHECK_FALSE(run_to_completion(berth::find_credentials("127.0.0.1:6000", o)));
    auto all = run_to_completion(berth::all_credentials(o));
    CHECK(all.size() == 3);

    // DOCKER_CONFIG moves the folder when none is given
    ::setenv("DOCKER_CONFIG", dir.path.c_str(), 1);
    CHECK(run_to_completion(berth::find_credentials("127.0.0.1:5999"))->username == "alice");
    ::unsetenv("DOCKER_CONFIG");

    // a broken file is an error that quotes none of it
    write_file(dir / "config.json", R"({"auths":{"x":{"auth":"s3cretpw"}})");
    try {
        run_to_completion(berth::find_credentials("x", o));
        FAIL("a truncated config.json was accepted");
    } catch (const berth::credential_error& e) {
        CHECK(std::string(e.what()).find("config.json") != std::string::npos);
        CHECK(std::string(e.what()).find("s3cretpw") == std::string::npos);
    }
    write_file(dir / "config.json", R"({"auths":{"x":{"auth":"bm9jb2xvbg=="}}})");  // "nocolon"
    CHECK_THROWS_AS(run_to_completion(berth::find_credentials("x", o)), berth::credential_error);
    fs::remove(dir / "config.json");
    CHECK_FALSE(run_to_completion(berth::find_credentials("x", o)));  // no file: no credentials, as for the CLI
}

TEST_CASE("credentials from a credsStore helper and a credHelpers entry, run as child processes") {
    temp_dir dir;
    const std::string key = "127.0.0.1:5999";
    write_helper(dir.path, "store", answering_helper(dir.path, "store", key, "from-store", "store-secret"));
    write_helper(dir.path, "per", answering_helper(dir.path, "per", key, "from-per", "per-secret"));
    write_helper(dir.path, "tok", answering_helper(dir.path, "tok", key, "<token>", "identity-xyz"));
    berth::credential_options o;
    o.config_dir = dir.path;
    o.helper_search_path = dir.path.string();  // the helpers are found here only, not on this process's PATH

    SUBCASE("credsStore answers for every registry; its `get` receives the server key on stdin") {
        write_file(dir / "config.json", R"({"credsStore":"store","auths":{"127.0.0.1:5999":{}}})");
        auto c = run_to_completion(berth::find_credentials(key, o));
        REQUIRE(c);
        CHECK(c->username == "from-store");
        CHECK(c->password == "store-secret");
        CHECK(read_file(dir / "store.log").starts_with("get " + key + " "));
        CHECK_FALSE(run_to_completion(berth::find_credentials("127.0.0.1:6000", o)));  // "credentials not found": none
        auto all = run_to_completion(berth::all_credentials(o));                       // `list`, then `get` for each
        REQUIRE(all.contains(key));
        CHECK(all[key].password == "store-secret");
    }
    SUBCASE("a credHelpers entry wins over credsStore for its registry") {
        write_file(dir / "config.json", R"({"credsStore":"store","credHelpers":{"127.0.0.1:5999":"per"}})");
        auto c = run_to_completion(berth::find_credentials(key, o));
        REQUIRE(c);
        CHECK(c->username == "from-per");
        CHECK_FALSE(fs::exists(dir / "store.log"));
    }
    SUBCASE("Username <token> means the secret is an identity token") {
        write_file(dir / "config.json", R"({"credHelpers":{"127.0.0.1:5999":"tok"}})");
        auto c = run_to_completion(berth::find_credentials(key, o));
        REQUIRE(c);
        CHECK(c->username.empty());
        CHECK(c->identity_token == "identity-xyz");
    }
    SUBCASE("Docker Hub is asked for under https://index.docker.io/v1/") {
        write_helper(dir.path, "hub", answering_helper(dir.path, "hub", "https://index.docker.io/v1/", "hu", "hp"));
        write_file(dir / "config.json", R"({"credHelpers":{"https://index.docker.io/v1/":"hub"}})");
        auto c = run_to_completion(berth::find_credentials("docker.io", o));
        REQUIRE(c);
        CHECK(c->username == "hu");
    }
    SUBCASE("a failing helper's own error text is kept") {
        write_helper(dir.path, "locked", "echo 'the keychain is locked' ; exit 3\n");
        write_file(dir / "config.json", R"({"credsStore":"locked"})");
        try {
            run_to_completion(berth::find_credentials(key, o));
            FAIL("a failing helper was not reported");
        } catch (const berth::credential_error& e) {
            CHECK(std::string(e.what()).find("the keychain is locked") != std::string::npos);
            CHECK(std::string(e.what()).find("exit code 3") != std::string::npos);
        }
    }
    SUBCASE("a helper whose output is not JSON is an error that does not quote it") {
        write_helper(dir.path, "garbled", "echo 'Secret=p4ssw0rd-leak'\n");
        write_file(dir / "config.json", R"({"credsStore":"garbled"})");
        try {
            run_to_completion(berth::find_credentials(key, o));
            FAIL("garbled helper output was accepted");
        } catch (const berth::credential_error& e) {
            CHECK(std::string(e.what()).find("p4ssw0rd-leak") == std::string::npos);
        }
    }
    SUBCASE("a missing helper is an error naming it") {
        write_file(dir / "config.json", R"({"credsStore":"absent"})");
        CHECK_THROWS_WITH_AS(run_to_completion(berth::find_credentials(key, o)),
                             doctest::Contains("docker-credential-absent"), berth::credential_error);
    }
    SUBCASE("a helper that does not answer in time is killed and reaped") {
        auto pidfile = (dir / "hang.pid").string();
        write_helper(dir.path, "hang", "echo $$ > '" + pidfile + "'\nexec sleep 60\n");
        write_file(dir / "config.json", R"({"credsStore":"hang"})");
        o.helper_timeout = std::chrono::milliseconds(300);
        CHECK_THROWS_WITH_AS(run_to_completion(berth::find_credentials(key, o)), doctest::Contains("did not finish"),
                             berth::credential_error);
        auto pid = std::stoi(read_file(pidfile));
        CHECK(::kill(pid, 0) == -1);  // gone, not a zombie either: reaped
        CHECK(no_child_left());
    }
    CHECK(no_child_left());
}

// ===================== a Podman pull's digest, on the mock engine =====================
// What the real Podman cannot show: the requests berth makes to learn the digest, and that the temporary manifest
// list goes away whatever happens to the reading of it (a malformed reply, a cancellation).

namespace {

using berth::verb;
using berth::testing::mock_engine;
using berth::testing::reply;

const std::string mock_image_id = "sha256:" + std::string(64, 'c');
const std::string digest_first = "sha256:" + std::string(64, 'a');
const std::string digest_second = "sha256:" + std::string(64, 'b');

// A Podman whose compat pull of 127.0.0.1:5000/app:v1 names no digest, the image listing `digests` under both of
// its names, and routes for the temporary manifest list (its inspection answered by `listed`).
struct podman_pull_fixture {
    asio::io_context ioc;
    mock_engine engine{ioc.get_executor()};
    berth::basic_client<mock_engine> client{engine};

    podman_pull_fixture(std::string version, std::vector<std::string> digests, reply listed) {
        engine.answer_as_podman(std::move(version));
        const std::string layer = R"({"status":"Pulling fs layer","progressDetail":{},"id":"d7bf7b907b55"})"
                                  "\n";
        const std::string done = R"({"status":"Download complete","progressDetail":{},"id":"bc10c115f6a9"})"
                                 "\n";
        engine.on(verb::post, "/images/create", reply::chunked(200, {layer, done}, "application/json"));
        boost::json::array repo_digests;
        for (const char* name : {"127.0.0.1:5000/app", "127.0.0.1:5000/other"})
            for (auto& d : digests) repo_digests.emplace_back(std::string(name) + "@" + d);
        engine.on(verb::get, "/images/127.0.0.1:5000/app:v1/json",
                  reply::json(200, boost::json::serialize(
                                       boost::json::object{{"Id", mock_image_id}, {"RepoDigests", repo_digests}})));
        const std::string list_id = R"({"Id":")" + std::string(64, 'e') + R"("})";
        engine.on(verb::post, "/libpod/manifests/create", reply::json(200, list_id));
        engine.on(verb::get, "/libpod/manifests/*", std::move(listed));
        engine.on(verb::delete_, "/libpod/images/*", reply::json(200, R"({"Deleted":["x"],"ExitCode":0})"));
    }
    static reply list_naming(const std::string& digest) {
        return reply::json(200, R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.docker.distribution.)"
                                R"(manifest.v2+json","size":588,"digest":")" +
                                    digest + R"("}]})");
    }

    // Runs the pull until it completes (the engine keeps its side of idle connections open, so the io_context never
    // runs out of work by itself); a pull that never completes fails the test instead of hanging it.
    berth::pulled_image pull(asio::cancellation_slot slot = {}) {
        berth::pull_options options;
        options.lookup_credentials = false;
        auto done = asio::co_spawn(ioc, client.images().pull("127.0.0.1:5000/app:v1", options),
                                   asio::bind_cancellation_slot(slot, asio::use_future));
        const auto hang_guard = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (done.wait_for(std::chrono::seconds(0)) != std::future_status::ready &&
               ioc.run_one_until(hang_guard) > 0) {}
        REQUIRE_MESSAGE(done.wait_for(std::chrono::seconds(0)) == std::future_status::ready, "the pull hung");
        return done.get();
    }
    std::vector<berth::testing::recorded_request> libpod_requests() const {
        std::vector<berth::testing::recorded_request> out;
        for (auto& r : engine.requests())
            if (r.path.starts_with("/libpod/")) out.push_back(r);
        return out;
    }
    // The list made, and the removal of that same list (with lookupManifest, or Podman would remove the image).
    void check_list_made_and_removed() const {
        auto requests = libpod_requests();
        REQUIRE(requests.size() >= 2);
        auto& create = requests.front();
        CHECK(create.path == "/libpod/manifests/create");
        CHECK(create.query("images") == "containers-storage:" + mock_image_id.substr(7));
        auto name = create.query("name").value_or("");
        CHECK(name.starts_with("localhost/berth-pull-digest-"));
        auto& removal = requests.back();
        CHECK(removal.method == verb::delete_);
        CHECK(removal.path == "/libpod/images/" + name);
        CHECK(removal.query("lookupManifest") == "1");
    }
};

}  // namespace

TEST_CASE("Podman: a pull's digest among several is the one of the manifest the pull stored") {
    podman_pull_fixture f("4.3.1", {digest_first, digest_second}, podman_pull_fixture::list_naming(digest_first));
    auto pulled = f.pull();
    CHECK(pulled.digest == digest_first);  // not the last of RepoDigests
    CHECK(pulled.id == mock_image_id);
    f.check_list_made_and_removed();
    CHECK(f.libpod_requests().size() == 3);
}

TEST_CASE("Podman: a pull's only digest is taken as it is, without asking") {
    podman_pull_fixture f("4.3.1", {digest_second}, podman_pull_fixture::list_naming(digest_first));
    CHECK(f.pull().digest == digest_second);
    CHECK(f.libpod_requests().empty());
}

TEST_CASE("Podman before 4.3: several digests leave the pull's digest empty, and nothing is asked") {
    podman_pull_fixture f("4.2.0", {digest_first, digest_second}, podman_pull_fixture::list_naming(digest_first));
    CHECK(f.pull().digest.empty());
    CHECK(f.libpod_requests().empty());
}

TEST_CASE("Podman: a manifest list that names no usable digest is a protocol_error, and the list is removed") {
    SUBCASE("no manifests field") {
        podman_pull_fixture f("4.3.1", {digest_first, digest_second}, reply::json(200, R"({"schemaVersion":2})"));
        CHECK_THROWS_AS(f.pull(), berth::protocol_error);
        f.check_list_made_and_removed();
    }
    SUBCASE("a digest that is not one of the image's") {
        podman_pull_fixture f("4.3.1", {digest_first, digest_second},
                              podman_pull_fixture::list_naming("sha256:" + std::string(64, 'f')));
        CHECK_THROWS_WITH_AS(f.pull(), doctest::Contains("not among the image's digests"), berth::protocol_error);
        f.check_list_made_and_removed();
    }
    SUBCASE("not a digest at all, which must not reach a request line") {
        podman_pull_fixture f("4.3.1", {digest_first, digest_second},
                              podman_pull_fixture::list_naming("sha256:../../x y"));
        CHECK_THROWS_AS(f.pull(), berth::protocol_error);
        f.check_list_made_and_removed();
    }
}

TEST_CASE("Podman: a pull cancelled while the manifest list is read still removes the list") {
    asio::cancellation_signal stop;
    podman_pull_fixture f("4.3.1", {digest_first, digest_second}, reply::stall());
    // the cancellation comes once the list's inspection has reached the engine, which never answers it
    auto cancel_then_stall = [&](const berth::testing::recorded_request&) {
        asio::post(f.ioc, [&] { stop.emit(asio::cancellation_type::terminal); });
        return reply::stall();
    };
    f.engine.on(verb::get, "/libpod/manifests/*", berth::testing::request_handler(cancel_then_stall));
    try {
        f.pull(stop.slot());
        FAIL("the cancelled pull completed");
    } catch (const boost::system::system_error& e) { CHECK(e.code() == asio::error::operation_aborted); }
    f.check_list_made_and_removed();
}

// ===================== real engines and registries =====================

namespace {

// A local image FROM the busybox base with one layer of `bytes` random bytes (unique, so a pull downloads it).
template <berth::transport T>
asio::awaitable<std::string> build_unique_image(berth::basic_client<T>& c, const std::string& tag, std::size_t bytes) {
    co_await ensure_base_image(c);
    temp_dir ctx;
    write_file(ctx / "Dockerfile", std::string("FROM ") + base_image + "\nRUN head -c " + std::to_string(bytes) +
                                       " /dev/urandom > /h7-data\n");
    berth::tar::packer packer(ctx.path, "");
    berth::build_options options;
    options.tag = tag;
    options.network_mode = "none";
    // Docker's classic builder: removing the image then removes its layers (BuildKit's cache would keep them, and
    // the pull would find them "Already exists")
    options.builder = berth::builder::legacy;
    auto built = co_await c.images().build(packer, options);
    co_return built.id;
}

template <berth::transport T>
asio::awaitable<void> remove_quietly(berth::basic_client<T>& c, std::string name) {
    try {
        co_await c.images().remove(name, {.force = true});
    } catch (const berth::engine_error&) {}
}

struct recorded_progress {
    std::vector<berth::progress_event> events;
    berth::progress_callback callback() {
        return [this](const berth::progress_event& e) { events.push_back(e); };
    }
    std::set<std::string> steps(berth::progress_kind kind) const {
        std::set<std::string> out;
        for (auto& e : events)
            if (e.kind == kind) out.insert(e.step);
        return out;
    }
};

asio::awaitable<void> push_and_pull_back(const engine_under_test& e) {
    auto* r = registry_under_test();
    if (!r) co_return;
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const std::string repo = r->auth + "/berth/h7-" + e.name + "-" + std::to_string(::getpid());
    const std::string local = unique_name("h7-push");
    auto id = co_await build_unique_image(c, local, 1 << 20);
    co_await c.images().tag(local, repo, "v1");

    berth::push_options push;
    push.credentials = good_credentials(*r);
    recorded_progress pushing;
    push.on_progress = pushing.callback();
    auto pushed = co_await c.images().push(repo + ":v1", push);
    push.on_progress = nullptr;
    CHECK(pushed.digest.starts_with("sha256:"));
    CHECK(pushed.reference == repo + ":v1");
    if (e.name == "docker") {  // Podman's compatible push reports no layers, only the digest
        // the base layer and ours: each pushed, or mounted from another repository of the registry
        CHECK(pushing.steps(berth::progress_kind::step_completed).size() +
                  pushing.steps(berth::progress_kind::step_cached).size() >=
              2);
        CHECK(pushed.size > 0);
    }

    co_await remove_quietly(c, repo + ":v1");
    co_await remove_quietly(c, local);
    CHECK_FALSE(co_await c.images().exists(repo + ":v1"));

    // by tag
    berth::pull_options pull;
    pull.credentials = good_credentials(*r);
    recorded_progress pulling;
    pull.on_progress = pulling.callback();
    auto pulled = co_await c.images().pull(repo + ":v1", pull);
    pull.on_progress = nullptr;
    CHECK(pulled.digest == pushed.digest);
    CHECK(pulled.id == id);
    CHECK(pulled.reference == repo + ":v1");
    auto started = pulling.steps(berth::progress_kind::step_started);
    auto finished = pulling.steps(berth::progress_kind::step_completed);
    auto cached = pulling.steps(berth::progress_kind::step_cached);
    CHECK_FALSE(started.empty());  // our layer was not there: it was fetched
    for (auto& layer : started) CHECK_MESSAGE(finished.contains(layer), "layer " << layer << " never completed");
    for (auto& layer : cached) CHECK_FALSE(started.contains(layer));
    if (e.name == "docker") {
        // Docker counts the bytes of each download: our layer of 1 MiB of random bytes (gzip cannot shrink it)
        std::map<std::string, std::pair<std::int64_t, std::int64_t>> last;
        for (auto& ev : pulling.events)
            if (ev.kind == berth::progress_kind::step_progress && ev.name == "Downloading")
                last[ev.step] = {ev.current, ev.total};
        // Docker hands a watcher only a transfer's newest progress (moby's xfer broadcast), so a 1 MiB layer on
        // loopback can reach "Download complete" before any count is read (seen once in CI under ASan): the counts
        // that do arrive are checked; none arriving is said, not failed.
        bool our_layer_counted = false;
        for (auto& [layer, counts] : last) {
            CHECK(counts.second > 0);
            CHECK(counts.first <= counts.second);
            if (counts.first > 0 && counts.second >= (1 << 20)) our_layer_counted = true;
        }
        if (!our_layer_counted)
            MESSAGE("Docker's newest progress for our layer was not a Downloading count (" << last.size()
                                                                                           << " layers counted)");
        bool digest_message = false;
        for (auto& ev : pulling.events)
            if (ev.kind == berth::progress_kind::message && ev.text == "Digest: " + pushed.digest)
                digest_message = true;
        CHECK(digest_message);
    }

    // by digest
    co_await remove_quietly(c, repo + ":v1");
    auto by_digest = co_await c.images().pull(repo + "@" + pushed.digest, pull);
    CHECK(by_digest.digest == pushed.digest);
    CHECK(by_digest.id == id);
    CHECK(by_digest.reference == repo + "@" + pushed.digest);
    CHECK(co_await c.images().exists(repo + "@" + pushed.digest));

    // the open registry needs no credentials at all (and berth finds none to send)
    const std::string open_repo = r->open + "/berth/h7-open-" + e.name + "-" + std::to_string(::getpid());
    co_await c.images().tag(by_digest.id, open_repo, "v1");
    berth::push_options anonymous;
    anonymous.lookup_credentials = false;
    auto open_pushed = co_await c.images().push(open_repo + ":v1", anonymous);
    CHECK(open_pushed.digest.starts_with("sha256:"));
    co_await remove_quietly(c, open_repo + ":v1");
    berth::pull_options open_pull;
    open_pull.lookup_credentials = false;
    CHECK((co_await c.images().pull(open_repo + ":v1", open_pull)).digest == open_pushed.digest);

    co_await remove_quietly(c, open_repo + ":v1");
    co_await remove_quietly(c, repo + "@" + pushed.digest);
    co_await remove_quietly(c, repo + ":v1");
    co_await remove_quietly(c, id);
}

TEST_CASE("push an image to a private registry, pull it back by tag and by digest, with progress") {
    for_each_engine(push_and_pull_back);
}

// Stores the manifest of <path>:<from> in the open registry again as <path>:<to>, one newline longer: the registry
// keeps a manifest's bytes as given, so the new tag names the same image (config and layers) under another digest.
// Returns that digest. Talks to the registry with curl, as a second client would.
std::string store_manifest_again(const registries& r, const std::string& path, const std::string& from,
                                 const std::string& to) {
    temp_dir dir;
    const std::string url = "https://" + r.open + "/v2/" + path + "/manifests/";
    const std::string curl = "curl -sSf --cacert '" + r.ca + "' ";
    int status = 0;
    auto type = shell_output(curl +
                                 "-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "
                                 "-H 'Accept: application/vnd.oci.image.manifest.v1+json' -o '" +
                                 (dir / "m").string() + "' -w '%{content_type}' " + url + from,
                             &status);
    REQUIRE(status == 0);
    auto manifest = read_file(dir / "m") + "\n";
    write_file(dir / "m2", manifest);
    REQUIRE(shell_status(curl + "-o /dev/null -X PUT -H 'Content-Type: " + type + "' --data-binary @'" +
                         (dir / "m2").string() + "' " + url + to) == 0);
    berth::detail::sha256 hash;
    hash.update(manifest);
    return "sha256:" + hash.hex_digest();
}

// The digests Podman lists for the image named `reference` (every name's, so the same set for each name).
template <berth::transport T>
asio::awaitable<std::set<std::string>> digests_of(berth::basic_client<T>& c, const std::string& reference) {
    auto image = co_await c.images().inspect(reference);
    std::set<std::string> out;
    if (auto* digests = image.raw.if_contains("RepoDigests"); digests && digests->is_array())
        for (auto& d : digests->get_array())
            if (d.is_string()) out.insert(std::string(d.get_string()).substr(d.get_string().find('@') + 1));
    co_return out;
}

// Names of every image Podman stores, manifest lists included (its compat list leaves those out).
template <berth::transport T>
asio::awaitable<std::vector<std::string>> podman_image_names(berth::basic_client<T>& c) {
    auto v = co_await c.core().call_json(berth::verb::get, "/libpod/images/json?all=true");
    std::vector<std::string> out;
    for (auto& image : v.as_array())
        if (auto* names = image.as_object().if_contains("Names"); names && names->is_array())
            for (auto& n : names->get_array()) out.emplace_back(n.get_string());
    co_return out;
}

// One image under two digests in one repository (tags a and b): each pull reports the digest its tag names, in
// whatever order they are pulled. On Podman the image then lists both digests under every name, so they cannot
// tell which one a pull fetched; berth asks Podman for the manifest the pull stored (and leaves nothing behind).
asio::awaitable<void> pull_digest_among_several(const engine_under_test& e) {
    auto* r = registry_under_test();
    if (!r) co_return;
    if (r->ca.empty()) {
        if (in_ci()) FAIL("BERTH_REGISTRY_CA is not set");
        MESSAGE("SKIPPED: BERTH_REGISTRY_CA is not set");
        co_return;
    }
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const std::string path = "berth/rb-digests-" + e.name + "-" + std::to_string(::getpid());
    const std::string repo = r->open + "/" + path;
    co_await ensure_base_image(c);
    co_await c.images().tag(base_image, repo, "a");
    berth::push_options anonymous;
    anonymous.lookup_credentials = false;
    auto pushed = co_await c.images().push(repo + ":a", anonymous);
    const std::string digest_a = pushed.digest;
    const std::string digest_b = store_manifest_again(*r, path, "a", "b");
    REQUIRE(digest_a != digest_b);
    co_await remove_quietly(c, repo + ":a");

    berth::pull_options pull;
    pull.lookup_credentials = false;
    const std::vector<std::pair<std::string, std::string>> order{
        {"a", digest_a}, {"b", digest_b}, {"a", digest_a}, {"b", digest_b}};
    for (auto& [tag, digest] : order) {
        const std::string reference = repo + ":" + tag;
        auto pulled = co_await c.images().pull(reference, pull);
        CHECK_MESSAGE(pulled.digest == digest, "pull of " << reference);
    }
    if (e.name == "podman") {
        auto digests = co_await digests_of(c, repo + ":a");
        CHECK(digests.contains(digest_a));  // the case under test arose: both digests under each name
        CHECK(digests.contains(digest_b));
        auto names = co_await podman_image_names(c);
        for (auto& name : names)
            CHECK_MESSAGE(name.find("berth-pull-digest-") == std::string::npos, "left behind: " << name);
    }
    co_await remove_quietly(c, repo + ":a");
    co_await remove_quietly(c, repo + ":b");
}

TEST_CASE("a pull reports the digest its tag names when the image has several digests") {
    for_each_engine(pull_digest_among_several);
}

// Runs op and returns the registry_error it must throw.
asio::awaitable<berth::registry_error> expect_registry_error(asio::awaitable<berth::pulled_image> op) {
    try {
        co_await std::move(op);
    } catch (const berth::registry_error& e) { co_return e; }
    FAIL("no registry_error");
    throw std::logic_error("unreachable");
}

asio::awaitable<void> pull_failures(const engine_under_test& e) {
    auto* r = registry_under_test();
    if (!r) co_return;
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    // something to find in the registry: push the base image
    const std::string repo = r->auth + "/berth/h7-fail-" + e.name + "-" + std::to_string(::getpid());
    co_await ensure_base_image(c);
    co_await c.images().tag(base_image, repo, "present");
    berth::push_options push;
    push.credentials = good_credentials(*r);
    co_await c.images().push(repo + ":present", push);
    co_await remove_quietly(c, repo + ":present");

    berth::pull_options wrong;
    wrong.credentials = good_credentials(*r);
    wrong.credentials->password = "h7-wrong-password-xyz";
    auto denied = co_await expect_registry_error(c.images().pull(repo + ":present", wrong));
    CHECK(denied.code() == berth::registry_errc::unauthorized);
    CHECK(denied.message().find("unauthorized") != std::string::npos);  // the registry's own word
    CHECK(std::string(denied.what()).find("h7-wrong-password-xyz") == std::string::npos);
    CHECK(std::string(denied.what()).find(r->password) == std::string::npos);

    berth::pull_options right;
    right.credentials = good_credentials(*r);
    auto no_repo = co_await expect_registry_error(c.images().pull(r->auth + "/berth/h7-no-such-repo:v1", right));
    CHECK(no_repo.code() == berth::registry_errc::not_found);
    CHECK(no_repo.message().find("manifest unknown") != std::string::npos);
    auto no_tag = co_await expect_registry_error(c.images().pull(repo + ":no-such-tag", right));
    CHECK(no_tag.code() == berth::registry_errc::not_found);
    CHECK(no_tag.message().find("no-such-tag") != std::string::npos);
    CHECK(std::string(no_tag.what()).find(r->password) == std::string::npos);

    // a port nothing listens on: bind one, note it, close it
    asio::ip::tcp::acceptor probe(co_await asio::this_coro::executor, {asio::ip::make_address("127.0.0.1"), 0});
    auto port = probe.local_endpoint().port();
    probe.close();
    berth::pull_options none;
    none.lookup_credentials = false;
    auto unreachable = co_await expect_registry_error(
        c.images().pull("127.0.0.1:" + std::to_string(port) + "/berth/nothing:v1", none));
    CHECK(unreachable.code() == berth::registry_errc::unreachable);
    CHECK(unreachable.message().find("connection refused") != std::string::npos);

    // POST /auth
    auto ok = co_await c.images().check_auth(good_credentials(*r));
    CHECK(ok.status == "Login Succeeded");
    try {
        co_await c.images().check_auth(*wrong.credentials);
        FAIL("a wrong password logged in");
    } catch (const berth::registry_error& err) {
        CHECK(err.code() == berth::registry_errc::unauthorized);
        CHECK(std::string(err.what()).find("h7-wrong-password-xyz") == std::string::npos);
    }
}

TEST_CASE("wrong password, unknown repository or tag, unreachable registry: typed errors with the registry's message") {
    for_each_engine(pull_failures);
}

asio::awaitable<void> pull_with_docker_config(const engine_under_test& e) {
    auto* r = registry_under_test();
    if (!r) co_return;
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const std::string repo = r->auth + "/berth/h7-cfg-" + e.name + "-" + std::to_string(::getpid());
    co_await ensure_base_image(c);
    co_await c.images().tag(base_image, repo, "v1");
    temp_dir dir;
    berth::push_options push;
    push.lookup.config_dir = dir.path;
    push.lookup.helper_search_path = dir.path.string();

    // 1. config.json auths
    write_file(dir / "config.json", R"({"auths":{")" + r->auth + R"(":{"auth":")" +
                                        berth::detail::base64url_encode(r->user + ":" + r->password) + R"("}}})");
    auto pushed = co_await c.images().push(repo + ":v1", push);
    co_await remove_quietly(c, repo + ":v1");
    berth::pull_options pull;
    pull.lookup = push.lookup;
    {
        const std::string reference = repo + ":v1";
        auto pulled = co_await c.images().pull(reference, pull);
        CHECK(pulled.digest == pushed.digest);
    }

    // 2. a credsStore helper
    write_helper(dir.path, "h7store", answering_helper(dir.path, "h7store", r->auth, r->user, r->password));
    write_file(dir / "config.json", R"({"credsStore":"h7store"})");
    co_await remove_quietly(c, repo + ":v1");
    {
        const std::string reference = repo + ":v1";
        auto pulled = co_await c.images().pull(reference, pull);
        CHECK(pulled.digest == pushed.digest);
    }
    CHECK(read_file(dir / "h7store.log").starts_with("get " + r->auth));

    // 3. a credHelpers entry, over a credsStore that would give a wrong password
    write_helper(dir.path, "h7wrong", answering_helper(dir.path, "h7wrong", r->auth, r->user, "not-it"));
    write_helper(dir.path, "h7per", answering_helper(dir.path, "h7per", r->auth, r->user, r->password));
    write_file(dir / "config.json", R"({"credsStore":"h7wrong","credHelpers":{")" + r->auth + R"(":"h7per"}})");
    co_await remove_quietly(c, repo + ":v1");
    {
        const std::string reference = repo + ":v1";
        auto pulled = co_await c.images().pull(reference, pull);
        CHECK(pulled.digest == pushed.digest);
    }
    CHECK(fs::exists(dir / "h7per.log"));
    CHECK_FALSE(fs::exists(dir / "h7wrong.log"));

    // and without any: the registry refuses
    write_file(dir / "config.json", "{}");
    co_await remove_quietly(c, repo + ":v1");
    auto refused = co_await expect_registry_error(c.images().pull(repo + ":v1", pull));
    CAPTURE(refused.message());
    CHECK_FALSE(refused.message().empty());
    // Docker treats 127.0.0.0/8 as an insecure registry: refused over TLS, it retries in plain HTTP on the TLS port
    // and reports that attempt's failure (a reset connection) instead of the refusal
    if (e.name == "podman") CHECK(refused.code() == berth::registry_errc::unauthorized);
    CHECK(no_child_left());
    co_await remove_quietly(c, repo + ":v1");
}

TEST_CASE("credentials for a pull from config.json auths, a credsStore helper and a credHelpers entry") {
    for_each_engine(pull_with_docker_config);
}

asio::awaitable<void> cancelled_pull(const engine_under_test& e) {
    auto* r = registry_under_test();
    if (!r) co_return;
    auto ex = co_await asio::this_coro::executor;
    auto c = berth::client::at(ex, e.address);
    const std::string repo = r->auth + "/berth/h7-cancel-" + e.name + "-" + std::to_string(::getpid());
    const std::string local = unique_name("h7-big");
    co_await build_unique_image(c, local, 48 << 20);
    co_await c.images().tag(local, repo, "v1");
    berth::push_options push;
    push.credentials = good_credentials(*r);
    co_await c.images().push(repo + ":v1", push);
    co_await remove_quietly(c, repo + ":v1");
    co_await remove_quietly(c, local);

    temp_dir dir;
    {  // cancelled while the credential helper runs: the helper is killed and reaped, the engine never asked
        const auto pidfile = dir / "hang.pid";
        write_helper(dir.path, "h7hang", "echo $$ > '" + pidfile.string() + "'\nexec sleep 60\n");
        write_file(dir / "config.json", R"({"credsStore":"h7hang"})");
        berth::pull_options hanging;
        hanging.lookup.config_dir = dir.path;
        hanging.lookup.helper_search_path = dir.path.string();
        asio::cancellation_signal stop;
        auto waiting = asio::co_spawn(ex, c.images().pull(repo + ":v1", hanging),
                                      asio::bind_cancellation_slot(stop.slot(), asio::use_future));
        asio::steady_timer poll(ex);
        while (read_file(pidfile).empty()) {  // the helper has started (and written its pid)
            poll.expires_after(std::chrono::milliseconds(10));
            co_await poll.async_wait(asio::use_awaitable);
        }
        stop.emit(asio::cancellation_type::terminal);
        while (waiting.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
            poll.expires_after(std::chrono::milliseconds(10));
            co_await poll.async_wait(asio::use_awaitable);
        }
        CHECK_THROWS_AS(waiting.get(), boost::system::system_error);
        CHECK(::kill(std::stoi(read_file(pidfile)), 0) == -1);  // killed and reaped: not even a zombie
        CHECK(no_child_left());
        CHECK_FALSE(co_await c.images().exists(repo + ":v1"));
    }

    // the credentials come from a helper (a child process), the pull is cancelled at its first layer event
    write_helper(dir.path, "h7c", answering_helper(dir.path, "h7c", r->auth, r->user, r->password));
    write_file(dir / "config.json", R"({"credsStore":"h7c"})");
    berth::pull_options pull;
    pull.lookup.config_dir = dir.path;
    pull.lookup.helper_search_path = dir.path.string();
    asio::cancellation_signal signal;
    bool requested = false;
    pull.on_progress = [&](const berth::progress_event& ev) {
        if (requested || ev.step.empty()) return;
        requested = true;  // emitted once the pull is back waiting on the engine's stream
        asio::post(ex, [&] { signal.emit(asio::cancellation_type::terminal); });
    };
    auto outcome = co_await asio::co_spawn(
        ex, c.images().pull(repo + ":v1", pull),
        asio::bind_cancellation_slot(signal.slot(), asio::as_tuple(asio::use_awaitable)));
    auto error = std::get<0>(outcome);
    REQUIRE(requested);
    REQUIRE(error);
    try {
        std::rethrow_exception(error);
    } catch (const boost::system::system_error& err) { CHECK(err.code() == asio::error::operation_aborted); }
    c.close_idle_connections();
    CHECK(c.open_connections() == 0);  // the cancelled stream's connection was closed, not left in use
    CHECK(no_child_left());            // the helper ran and was reaped
    // the helper's pid is in its log: it is gone
    auto log = read_file(dir / "h7c.log");
    auto pid = std::stoi(log.substr(log.rfind(' ') + 1));
    CHECK(::kill(pid, 0) == -1);
    co_await remove_quietly(c, repo + ":v1");
}

TEST_CASE("a pull cancelled midway leaves no connection and no child process behind") {
    for_each_engine(cancelled_pull);
}
}  // namespace

namespace {

// Pushes the base image to the auth registry as <repo>:v1 and removes the local copy of that name.
template <berth::transport T>
asio::awaitable<std::string> push_base_image(berth::basic_client<T>& c, const registries& r, const std::string& repo) {
    co_await ensure_base_image(c);
    co_await c.images().tag(base_image, repo, "v1");
    berth::push_options push;
    push.credentials = good_credentials(r);
    auto pushed = co_await c.images().push(repo + ":v1", push);
    co_await remove_quietly(c, repo + ":v1");
    co_return pushed.digest;
}

asio::awaitable<void> build_from_private_image(const engine_under_test& e) {
    auto* r = registry_under_test();
    if (!r) co_return;
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const std::string repo = r->auth + "/berth/h7-from-" + e.name + "-" + std::to_string(::getpid());
    co_await push_base_image(c, *r, repo);
    temp_dir ctx;
    write_file(ctx / "Dockerfile", "FROM " + repo + ":v1\nRUN echo built-on-pulled > /h7-marker\n");
    const std::string tag = unique_name("h7-from");
    berth::build_options options;
    options.tag = tag;
    options.network_mode = "none";
    // X-Registry-Config is for the classic builder (and Podman's); BuildKit asks the client over its session, so
    // the automatic choice must take the classic builder once credentials are given

    // without credentials the registry refuses the FROM pull: the header is what makes the next build work
    {
        berth::tar::packer packer(ctx.path, "");
        std::string refusal;
        try {
            co_await c.images().build(packer, options);
        } catch (const berth::engine_error& err) { refusal = err.message(); }
        CHECK_MESSAGE(!refusal.empty(), "a FROM from the private registry built without credentials");
    }
    options.registry_config[r->auth] = good_credentials(*r);
    berth::tar::packer packer(ctx.path, "");
    auto built = co_await c.images().build(packer, options);
    CHECK(built.id.starts_with("sha256:"));
    CHECK(built.backend != berth::build_backend::buildkit);
    CHECK(co_await c.images().exists(repo + ":v1"));  // FROM pulled it
    co_await remove_quietly(c, tag);
    co_await remove_quietly(c, repo + ":v1");
}

TEST_CASE("a build FROM an image in a private registry, with X-Registry-Config") {
    for_each_engine(build_from_private_image);
}

asio::awaitable<void> build_container_pulls(const engine_under_test& e) {
    auto* r = registry_under_test();
    if (!r) co_return;
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const std::string repo = r->auth + "/berth/h7-eval-" + e.name + "-" + std::to_string(::getpid());
    auto digest = co_await push_base_image(c, *r, repo);
    temp_dir repo_dir, logs;
    write_file(repo_dir / "README", "mounted\n");
    auto log = std::make_shared<berth::logger>(logs / "run.log");
    const auto name = unique_name("h7-eval");
    container_guard guard{e.address, name};

    berth::build_container_options options;
    options.repo_path = repo_dir.path.string();
    options.container_name = name;
    options.network_mode = "none";
    options.log = log;
    options.pull_image = repo + ":v1";

    // a wrong password: no container, a typed reason, no password in the log
    options.pull_image_options.credentials = good_credentials(*r);
    options.pull_image_options.credentials->password = "h7-not-the-password";
    auto refused = co_await berth::build_container(c, options);
    CHECK_FALSE(refused.has_value());
    REQUIRE(refused.failure());
    CHECK(refused.failure()->reason == berth::build_failure_reason::image_pull_failed);
    CHECK(read_file(logs / "run.log").find("h7-not-the-password") == std::string::npos);

    options.pull_image_options.credentials = good_credentials(*r);
    auto box = co_await berth::build_container(c, options);
    REQUIRE(box.has_value());
    auto info = co_await c.containers().inspect(box->id);
    auto image = co_await c.images().inspect(repo + ":v1");
    CHECK(info.image == image.id);
    auto text = read_file(logs / "run.log");
    CHECK(text.find("Pulling image " + repo + ":v1") != std::string::npos);
    CHECK(text.find(digest) != std::string::npos);  // "Image ... pulled: <id> (<digest>)"
    CHECK(text.find(r->password) == std::string::npos);

    // present now: not pulled again
    auto again = co_await berth::build_container(c, options);
    REQUIRE(again.has_value());
    CHECK(read_file(logs / "run.log").find("found; not pulling") != std::string::npos);
    co_await c.containers().remove(name, {.force = true});
    co_await remove_quietly(c, repo + ":v1");
}

TEST_CASE("build_container runs an image from a registry, pulled when missing") {
    for_each_engine(build_container_pulls);
}


// ===================== plugins and distribution =====================

namespace json = boost::json;

// (Built outside the coroutines: g++ 12 miscompiles a braced list of std::string inside one.)
template <class... S>
std::vector<std::string> strings(S... s) {
    return std::vector<std::string>{std::string(s)...};
}
berth::plugin_list_options filter(const char* key, const char* value) {
    return berth::plugin_list_options{.filters = {{key, {value}}}};
}

// Runs op and returns the E it must throw.
template <class E, class R>
asio::awaitable<E> expect_error(asio::awaitable<R> op) {
    try {
        co_await std::move(op);
    } catch (const E& e) { co_return e; } catch (const std::exception& other) {
        FAIL("another exception: " << other.what());
    }
    FAIL("no exception");
    throw std::logic_error("unreachable");
}

// A plugin's config.json: a volume driver that never serves its socket (busybox cannot listen on a unix socket),
// in a network namespace of its own with no network ("none"), with one settable environment variable.
json::object test_plugin_config(const std::string& description) {
    return json::object{
        {"description", description},
        {"documentation", "https://example.invalid/berth"},
        {"entrypoint", json::array{"/bin/busybox", "sleep", "3600"}},
        {"interface", json::object{{"types", json::array{"docker.volumedriver/1.0"}}, {"socket", "berth.sock"}}},
        {"network", json::object{{"type", "none"}}},
        {"env", json::array{json::object{{"name", "BERTH_MODE"},
                                         {"description", "a setting for the tests"},
                                         {"settable", json::array{"value"}},
                                         {"value", "one"}}}}};
}

// The plugin's root filesystem: Debian's static busybox as /bin/busybox.
void write_plugin_rootfs(const fs::path& rootfs) {
    fs::create_directories(rootfs / "bin");
    fs::copy_file("/bin/busybox", rootfs / "bin" / "busybox", fs::copy_options::overwrite_existing);
}

template <berth::transport T>
asio::awaitable<void> remove_plugin_quietly(berth::basic_client<T>& c, std::string name) {
    try {
        co_await c.plugins().remove(name, {.force = true});
    } catch (const berth::engine_error&) {}
}

// Removes a plugin by name at scope exit, whatever the test did.
struct plugin_guard {
    std::string address;
    std::string name;
    static asio::awaitable<void> remove(std::string address, std::string name) {
        auto c = berth::client::at(co_await asio::this_coro::executor, address);
        co_await remove_plugin_quietly(c, name);
    }
    ~plugin_guard() {
        try {
            run_to_completion(remove(address, name));
        } catch (const std::exception&) {}
    }
};

bool listed(const std::vector<berth::plugin_info>& plugins, const std::string& name) {
    for (auto& p : plugins)
        if (p.name == name) return true;
    return false;
}

asio::awaitable<void> plugin_lifecycle(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const std::string name = unique_name("plugin") + ":v1";
    plugin_guard guard{e.address, name};
    temp_dir rootfs;
    write_plugin_rootfs(rootfs.path);
    co_await c.plugins().create(name, test_plugin_config("berth test plugin"), rootfs.path);

    auto p = co_await c.plugins().inspect(name);
    CHECK(p.name == name);
    CHECK(p.id.size() == 64);
    CHECK_FALSE(p.enabled);
    CHECK(p.config.description == "berth test plugin");
    CHECK(p.config.documentation == "https://example.invalid/berth");
    CHECK(p.config.interface.types == strings("docker.volumedriver/1.0"));
    CHECK(p.config.interface.socket == "berth.sock");
    CHECK(p.config.entrypoint == strings("/bin/busybox", "sleep", "3600"));
    CHECK(p.config.network_type == "none");
    REQUIRE(p.config.env.size() == 1);
    CHECK(p.config.env[0].name == "BERTH_MODE");
    CHECK(p.config.env[0].settable == strings("value"));
    CHECK(p.settings.env == strings("BERTH_MODE=one"));
    CHECK(co_await c.plugins().exists(p.id.substr(0, 12)));  // by a prefix of its id, as the engine allows

    CHECK(listed(co_await c.plugins().list(), name));
    auto volume_drivers = filter("capability", "volumedriver");
    CHECK(listed(co_await c.plugins().list(volume_drivers), name));
    auto network_drivers = filter("capability", "networkdriver");
    CHECK_FALSE(listed(co_await c.plugins().list(network_drivers), name));
    auto enabled = filter("enabled", "true");  // the spec says "enable"; Docker 20.10 refuses that: 400
    CHECK_FALSE(listed(co_await c.plugins().list(enabled), name));
    auto disabled = filter("enabled", "false");
    CHECK(listed(co_await c.plugins().list(disabled), name));

    // settings: a declared variable changes; one the plugin does not declare is refused
    co_await c.plugins().set(name, strings("BERTH_MODE=two"));
    CHECK((co_await c.plugins().inspect(name)).settings.env == strings("BERTH_MODE=two"));
    std::optional<berth::engine_error> undeclared;
    try {
        co_await c.plugins().set(name, strings("NOT_DECLARED=x"));
    } catch (const berth::engine_error& err) { undeclared = err; }
    REQUIRE(undeclared);
    MESSAGE("set of an undeclared variable: " << undeclared->status() << " " << undeclared->message());
    CHECK(undeclared->code() == berth::engine_errc::server_error);  // Docker 20.10 says 500
    CHECK(contains(undeclared->message(), "NOT_DECLARED"));

    // enable: the plugin starts but never serves its socket, so the engine gives up and leaves it disabled
    std::optional<berth::engine_error> not_serving;
    try {
        co_await c.plugins().enable(name, {.timeout = 1});
    } catch (const berth::engine_error& err) { not_serving = err; }
    REQUIRE(not_serving);
    MESSAGE("enable of a plugin that serves no socket: " << not_serving->status() << " " << not_serving->message());
    CHECK(not_serving->code() == berth::engine_errc::server_error);
    CHECK(contains(not_serving->message(), "berth.sock"));
    CHECK_FALSE((co_await c.plugins().inspect(name)).enabled);
    std::optional<berth::engine_error> already;
    try {
        co_await c.plugins().disable(name);
    } catch (const berth::engine_error& err) { already = err; }
    REQUIRE(already);
    MESSAGE("disable of a disabled plugin: " << already->status() << " " << already->message());
    CHECK(contains(already->message(), "already disabled"));

    co_await c.plugins().remove(name);
    CHECK_FALSE(co_await c.plugins().exists(name));
    co_await expect_error<berth::not_found_error>(c.plugins().remove(name));
    co_await expect_error<berth::not_found_error>(c.plugins().inspect(name));

    // from a directory as `docker plugin create` takes it: config.json beside rootfs/
    temp_dir dir;
    write_plugin_rootfs(dir / "rootfs");
    write_file(dir / "config.json", json::serialize(test_plugin_config("from a directory")));
    const std::string second = unique_name("plugin-dir");
    plugin_guard second_guard{e.address, second};
    co_await c.plugins().create(second, dir.path);
    auto made = co_await c.plugins().inspect(second);
    CHECK(made.name == second + ":latest");  // the engine names it with the tag "latest"
    CHECK(made.config.description == "from a directory");
    co_await c.plugins().remove(second);
    CHECK_FALSE(co_await c.plugins().exists(second));
}

TEST_CASE("plugins: create from a busybox rootfs, inspect, list with filters, set, enable refused, remove") {
    for_each_engine(plugin_lifecycle, true, false);
}

asio::awaitable<void> plugins_refused_by_podman(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    // Podman answers every /plugins path with 404 "Path ... is not supported"
    auto e1 = co_await expect_error<berth::not_found_error>(c.plugins().list());
    CHECK(contains(e1.message(), "not supported"));
    // other paths under /plugins: a plain "Not Found"
    co_await expect_error<berth::not_found_error>(c.plugins().inspect("berth-no-plugin"));
    berth::plugin_privileges_options no_lookup;
    no_lookup.lookup_credentials = false;
    co_await expect_error<berth::not_found_error>(c.plugins().privileges("127.0.0.1:1/berth/x:v1", no_lookup));
    berth::distribution_inspect_options anonymous{};
    anonymous.lookup_credentials = false;
    auto e4 = co_await expect_error<berth::not_found_error>(
        c.distribution().inspect("127.0.0.1:1/berth/none:v1", anonymous));
    CHECK(contains(e4.message(), "not supported"));
}

TEST_CASE("plugins: Podman has no plugin API (nor /distribution): a not_found_error with its own words") {
    for_each_engine(plugins_refused_by_podman, false, true);
}

asio::awaitable<void> plugin_through_registry(const engine_under_test& e) {
    auto* r = registry_under_test();
    if (!r) co_return;
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const std::string repo = r->auth + "/berth/plug-" + e.name + "-" + std::to_string(::getpid());
    plugin_guard v1_guard{e.address, repo + ":v1"}, v2_guard{e.address, repo + ":v2"};
    // two root filesystems that differ: Docker 20.10 refuses (409) a plugin whose rootfs layer it already stores
    temp_dir rootfs1, rootfs2;
    write_plugin_rootfs(rootfs1.path);
    write_file(rootfs1 / "version", "1\n");
    write_plugin_rootfs(rootfs2.path);
    write_file(rootfs2 / "version", "2\n");
    co_await c.plugins().create(repo + ":v1", test_plugin_config("version one"), rootfs1.path);
    co_await c.plugins().create(repo + ":v2", test_plugin_config("version two"), rootfs2.path);

    berth::plugin_push_options push;
    push.credentials = good_credentials(*r);
    recorded_progress pushing;
    push.on_progress = pushing.callback();
    auto pushed = co_await c.plugins().push(repo + ":v1", push);
    push.on_progress = nullptr;
    CHECK(pushed.name == repo + ":v1");
    CHECK(pushed.digest.starts_with("sha256:"));
    CHECK_FALSE(pushing.events.empty());
    co_await c.plugins().push(repo + ":v2", push);
    co_await c.plugins().remove(repo + ":v1");
    co_await c.plugins().remove(repo + ":v2");

    // what the plugin asks for, from the registry: its network
    berth::plugin_privileges_options asking;
    asking.credentials = good_credentials(*r);
    auto privileges = co_await c.plugins().privileges(repo + ":v1", asking);
    bool network = false;
    for (auto& p : privileges)
        if (p.name == "network" && p.value == strings("none")) network = true;
    CHECK(network);

    // Docker 20.10 answers an empty list (200) when the registry refuses or does not know the plugin (moby's
    // Privileges drops the fetch error); the pull that follows reports it
    berth::plugin_privileges_options anonymous;
    anonymous.lookup_credentials = false;
    CHECK((co_await c.plugins().privileges(repo + ":v1", anonymous)).empty());
    CHECK((co_await c.plugins().privileges(repo + ":nope", asking)).empty());
    berth::plugin_pull_options wrong;
    wrong.credentials = good_credentials(*r);
    wrong.credentials->password = "plug-not-the-password";
    wrong.privileges = privileges;
    auto denied = co_await expect_error<berth::registry_error>(c.plugins().pull(repo + ":v1", wrong));
    MESSAGE("pull with a wrong password: " << denied.status() << " " << denied.message());
    CHECK(denied.code() == berth::registry_errc::unauthorized);
    CHECK_FALSE(contains(denied.what(), "plug-not-the-password"));
    berth::plugin_pull_options right;
    right.credentials = good_credentials(*r);
    right.privileges = privileges;
    auto unknown = co_await expect_error<berth::registry_error>(c.plugins().pull(repo + ":nope", right));
    MESSAGE("pull of an unknown tag: " << unknown.status() << " " << unknown.message());
    // the registry answers containerd's HEAD of an unknown plugin tag with 400, which Docker 20.10 reports as such
    CHECK(contains(unknown.message(), "manifests nope"));
    CHECK(unknown.code() != berth::registry_errc::unauthorized);

    // a pull that grants less than the plugin asks for is refused, and installs nothing
    const std::string alias = unique_name("plugin-pulled");
    plugin_guard alias_guard{e.address, alias};
    berth::plugin_pull_options pull;
    pull.credentials = good_credentials(*r);
    pull.name = alias;
    std::optional<berth::engine_error> ungranted;
    try {
        co_await c.plugins().pull(repo + ":v1", pull);
    } catch (const berth::engine_error& err) { ungranted = err; }
    REQUIRE(ungranted);
    MESSAGE("pull without its privileges: " << ungranted->status() << " " << ungranted->message());
    CHECK(contains(ungranted->message(), "privileges"));
    CHECK_FALSE(co_await c.plugins().exists(alias));

    // granted: installed (disabled) under the alias, with the settings of the pushed plugin
    pull.privileges = privileges;
    recorded_progress pulling;
    pull.on_progress = pulling.callback();
    auto pulled = co_await c.plugins().pull(repo + ":v1", pull);
    pull.on_progress = nullptr;
    CHECK(pulled.name == alias + ":latest");
    CHECK(pulled.plugin_reference == repo + ":v1");
    CHECK_FALSE(pulled.enabled);
    CHECK(pulled.config.description == "version one");
    CHECK(pulled.settings.env == strings("BERTH_MODE=one"));
    CHECK_FALSE(pulling.events.empty());

    // upgrade to v2, granting what v2 asks (asked by berth): the config changes, the settings stay
    co_await c.plugins().set(alias, strings("BERTH_MODE=kept"));
    berth::plugin_upgrade_options upgrade;
    upgrade.credentials = good_credentials(*r);
    upgrade.grant_all_privileges = true;
    co_await c.plugins().upgrade(alias, repo + ":v2", upgrade);
    auto upgraded = co_await c.plugins().inspect(alias);
    CHECK(upgraded.config.description == "version two");
    CHECK(upgraded.plugin_reference == repo + ":v2");
    CHECK(upgraded.settings.env == strings("BERTH_MODE=kept"));
    CHECK(upgraded.id == pulled.id);

    co_await c.plugins().remove(alias);
    CHECK_FALSE(co_await c.plugins().exists(alias));

    // grant_all_privileges on a pull under the remote's own name
    berth::plugin_pull_options all;
    all.credentials = good_credentials(*r);
    all.grant_all_privileges = true;
    auto direct = co_await c.plugins().pull(repo + ":v2", all);
    CHECK(direct.name == repo + ":v2");
    CHECK(direct.config.description == "version two");
    co_await c.plugins().remove(repo + ":v2");
}

TEST_CASE("plugins: push to a private registry, privileges, pull granting them, upgrade, remove") {
    for_each_engine(plugin_through_registry, true, false);
}

asio::awaitable<void> distribution_of_pushed_image(const engine_under_test& e) {
    auto* r = registry_under_test();
    if (!r) co_return;
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    const std::string repo = r->auth + "/berth/dist-" + e.name + "-" + std::to_string(::getpid());
    auto digest = co_await push_base_image(c, *r, repo);

    berth::distribution_inspect_options options;
    options.credentials = good_credentials(*r);
    auto info = co_await c.distribution().inspect(repo + ":v1", options);
    CHECK(info.descriptor.digest == digest);
    CHECK(info.descriptor.size > 0);
    CHECK(contains(info.descriptor.media_type, "manifest"));
    auto engine = co_await c.version();
    bool ours = false;
    for (auto& p : info.platforms)
        if (p.os == "linux" && p.architecture == engine.arch) ours = true;
    CHECK(ours);
    // by digest: the same descriptor
    CHECK((co_await c.distribution().inspect(repo + "@" + digest, options)).descriptor.digest == digest);

    auto unknown = co_await expect_error<berth::registry_error>(c.distribution().inspect(repo + ":nope", options));
    MESSAGE("distribution inspect of an unknown tag: " << unknown.status() << " " << unknown.message());
    CHECK(unknown.code() == berth::registry_errc::not_found);
    auto unknown_repo = co_await expect_error<berth::registry_error>(
        c.distribution().inspect(r->auth + "/berth/dist-never-pushed-" + std::to_string(::getpid()) + ":v1", options));
    CHECK(unknown_repo.code() == berth::registry_errc::not_found);
    berth::distribution_inspect_options wrong = options;
    wrong.credentials->password = "dist-not-the-password";
    auto refused = co_await expect_error<berth::registry_error>(c.distribution().inspect(repo + ":v1", wrong));
    CHECK(refused.code() == berth::registry_errc::unauthorized);
    CHECK_FALSE(contains(refused.what(), "dist-not-the-password"));
}

TEST_CASE("distribution: a pushed image's descriptor names the pushed digest; unknown names are typed errors") {
    for_each_engine(distribution_of_pushed_image, true, false);
}

}  // namespace
