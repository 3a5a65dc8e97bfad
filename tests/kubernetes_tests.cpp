// The Kubernetes layer: kubeconfig reading (unit), the client against hostile scripted replies (mock), and pods,
// watches and logs on the real cluster (BERTH_K8S_KUBECONFIG; skipped with a message when unset, failed in CI).
#include <berth/kubernetes.hpp>
#include <berth/testing/mock_engine.hpp>
#include <berth/transport/tls.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <doctest/doctest.h>

#include "support/checks.hpp"
#include "support/run.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <unistd.h>

namespace {

namespace asio = boost::asio;
namespace json = boost::json;
namespace k8s = berth::kubernetes;
using berth::testing::mock_engine;
using berth::testing::reply;
using berth_test::contains;
using berth_test::message_of;
using berth_test::run_on_mock;
using berth_test::thrown;
using verb = boost::beast::http::verb;
using namespace std::chrono_literals;

// A directory of its own, removed at the end.
struct temp_dir {
    std::filesystem::path path;
    temp_dir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "berth-k8s-XXXXXX").string();
        path = ::mkdtemp(tmpl.data());
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string write(const std::string& name, const std::string& text) const {
        std::ofstream(path / name, std::ios::binary) << text;
        return (path / name).string();
    }
};

// Sets an environment variable for a scope.
struct scoped_env {
    std::string name;
    std::optional<std::string> old;
    scoped_env(std::string n, const std::string& value) : name(std::move(n)) {
        if (const char* v = std::getenv(name.c_str())) old = v;
        ::setenv(name.c_str(), value.c_str(), 1);
    }
    ~scoped_env() {
        if (old)
            ::setenv(name.c_str(), old->c_str(), 1);
        else
            ::unsetenv(name.c_str());
    }
};

std::string b64(std::string_view s) { return berth::detail::base64_encode(s); }

// The shape of the cluster script's admin.kubeconfig (certificates inline).
std::string admin_kubeconfig() {
    return "apiVersion: v1\n"
           "kind: Config\n"
           "clusters:\n"
           "- name: berth\n"
           "  cluster:\n"
           "    server: https://127.0.2.1:6443\n"
           "    certificate-authority-data: " +
           b64("CA PEM\n") +
           "\n"
           "users:\n"
           "- name: admin\n"
           "  user:\n"
           "    client-certificate-data: " +
           b64("CERT PEM\n") +
           "\n"
           "    client-key-data: " +
           b64("KEY PEM\n") +
           "\n"
           "contexts:\n"
           "- name: berth\n"
           "  context:\n"
           "    cluster: berth\n"
           "    user: admin\n"
           "current-context: berth\n";
}

// The shape kubectl writes (sorted keys, items at their key's indentation), with quotes and comments added.
const std::string kubectl_kubeconfig = R"(# written by kubectl config set-cluster ...
apiVersion: v1
clusters:
- cluster:
    certificate-authority: certs/ca.pem   # relative: to this file's directory
    server: "https://[::1]:6443/prefix/"
  name: 'prod'
- cluster:
    insecure-skip-tls-verify: true
    server: https://example.invalid
  name: loose
contexts:
- context:
    cluster: prod
    namespace: evals
    user: "bot"
  name: prod-ctx
- context:
    cluster: loose
  name: loose-ctx
current-context: "prod-ctx"
kind: Config
preferences: {}
users:
- name: bot
  user:
    token: 'abc''def#not-a-comment'
- name: plugin
  user:
    exec:
      command: get-token
)";

k8s::kube_connection resolve_text(const std::string& text, k8s::kubeconfig_load_options o = {}) {
    return k8s::resolve_kubeconfig(k8s::parse_kubeconfig(text, "test.kubeconfig", "/cfg"), o);
}

}  // namespace

TEST_SUITE("kubeconfig") {
TEST_CASE("the cluster's admin kubeconfig: server, inline CA and client certificate, default namespace") {
    auto c = resolve_text(admin_kubeconfig());
    CHECK(c.context == "berth");
    CHECK(c.https);
    CHECK(c.address.host == "127.0.2.1");
    CHECK(c.address.port == 6443);
    CHECK(c.path_prefix.empty());
    CHECK(c.tls.enabled);
    CHECK(c.tls.verify_server);
    CHECK(c.tls.ca_pem == "CA PEM\n");
    CHECK(c.tls.cert_pem == "CERT PEM\n");
    CHECK(c.tls.key_pem == "KEY PEM\n");
    CHECK(c.tls.ca_file.empty());
    CHECK(c.token.empty());
    CHECK(c.namespace_name == "default");
}

TEST_CASE("kubectl's shape: quoted scalars, comments, relative files, a path prefix, the context's namespace") {
    auto c = resolve_text(kubectl_kubeconfig);
    CHECK(c.context == "prod-ctx");
    CHECK(c.address.host == "::1");
    CHECK(c.path_prefix == "/prefix");
    CHECK(c.tls.ca_file == "/cfg/certs/ca.pem");
    CHECK(c.token == "abc'def#not-a-comment");
    CHECK(c.namespace_name == "evals");
    k8s::kubeconfig_load_options o{.context = "prod-ctx", .namespace_name = "other"};
    CHECK(resolve_text(kubectl_kubeconfig, o).namespace_name == "other");
}

TEST_CASE("refused unless asked: insecure-skip-tls-verify, plain http; never: exec credentials") {
    k8s::kubeconfig_load_options loose{.context = "loose-ctx"};
    auto e = thrown<k8s::kubeconfig_error>([&] { resolve_text(kubectl_kubeconfig, loose); });
    CHECK(e.code() == k8s::kubernetes_errc::bad_kubeconfig);
    CHECK(contains(e.what(), "insecure-skip-tls-verify"));
    loose.allow_insecure_skip_tls_verify = true;
    auto c = resolve_text(kubectl_kubeconfig, loose);
    CHECK_FALSE(c.tls.verify_server);
    CHECK(c.address.port == 443);

    std::string http = admin_kubeconfig();
    http.replace(http.find("https://"), 8, "http://");
    CHECK(contains(thrown<k8s::kubeconfig_error>([&] { resolve_text(http); }).what(), "plain http://"));
    std::string http_token = "clusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:8080\n"
                             "contexts:\n- name: x\n  context:\n    cluster: c\n"
                             "current-context: x\n";
    auto plain = resolve_text(http_token, {.allow_plain_http = true});
    CHECK_FALSE(plain.https);
    CHECK_FALSE(plain.tls.enabled);
    CHECK(plain.address.port == 8080);

    std::string with_plugin = kubectl_kubeconfig + "- context:\n    cluster: prod\n    user: plugin\n  name: p\n";
    // the added context sits after users: kubectl's order does not matter to the reader
    auto parsed = k8s::parse_kubeconfig(kubectl_kubeconfig, "f", "/cfg");
    parsed.contexts["p"] = {.cluster = "prod", .user = "plugin"};
    auto pe = thrown<k8s::kubeconfig_error>([&] { k8s::resolve_kubeconfig(parsed, {.context = "p"}); });
    CHECK(contains(pe.what(), "'exec'"));
    (void)with_plugin;
}

TEST_CASE("the YAML subset: nesting, items at their key's indentation, quotes only where a scalar starts") {
    auto v = k8s::detail::parse_kubeconfig_text("---\n"
                                                "a:\n"
                                                "  b: a 'quoted' word, it's plain # comment\n"
                                                "  c: \"x: y # not a comment \\u00e9\"\n"
                                                "  'd e': ''\n"
                                                "list:\n"
                                                "- - 1\n"
                                                "  - two\n"
                                                "-\n"
                                                "  k: v\n"
                                                "- ~\n"
                                                "flags: []\n"
                                                "yes: true\n"
                                                "empty:\n",
                                                "t")
                 .as_object();
    CHECK(v.at("a").at("b") == "a 'quoted' word, it's plain");
    CHECK(v.at("a").at("c") == "x: y # not a comment \u00e9");
    CHECK(v.at("a").at("d e") == "");
    CHECK(v.at("list").at(0).at(1) == "two");
    CHECK(v.at("list").at(1).at("k") == "v");
    CHECK(v.at("list").at(2).is_null());
    CHECK(v.at("flags").as_array().empty());
    CHECK(v.at("yes") == true);
    CHECK(v.at("empty").is_null());
}

TEST_CASE("JSON is read as JSON") {
    json::value v = {{"current-context", "j"},
                     {"clusters", json::array{{{"name", "c"}, {"cluster", {{"server", "https://h:1"}}}}}},
                     {"contexts", json::array{{{"name", "j"}, {"context", {{"cluster", "c"}, {"user", "u"}}}}}},
                     {"users", json::array{{{"name", "u"}, {"user", {{"token", "t0k"}}}}}}};
    auto c = resolve_text(json::serialize(v));
    CHECK(c.address.host == "h");
    CHECK(c.address.port == 1);
    CHECK(c.token == "t0k");
}

TEST_CASE("KUBECONFIG: a list, the first file wins per entry and for current-context; missing files skipped") {
    temp_dir dir;
    auto first = dir.write("a", "current-context: one\n"
                                "contexts:\n- name: one\n  context:\n    cluster: c1\n"
                                "clusters:\n- name: c1\n  cluster:\n    server: https://first:1\n");
    auto second = dir.write("b", "current-context: two\n"
                                 "contexts:\n- name: one\n  context:\n    cluster: c2\n"
                                 "- name: two\n  context:\n    cluster: c1\n    namespace: ns2\n"
                                 "clusters:\n- name: c1\n  cluster:\n    server: https://second:2\n"
                                 "- name: c2\n  cluster:\n    server: https://other:3\n");
    auto token = dir.write("token", "from-file\n");
    scoped_env env("KUBECONFIG", first + ":" + (dir.path / "missing").string() + ":" + second);
    auto merged = k8s::load_kubeconfig();
    CHECK(merged.files.size() == 2);
    auto c = k8s::resolve_kubeconfig(merged);
    CHECK(c.context == "one");
    CHECK(c.address.host == "first");  // context one from a, cluster c1 from a
    auto two = k8s::resolve_kubeconfig(merged, {.context = "two"});
    CHECK(two.address.host == "first");
    CHECK(two.namespace_name == "ns2");
    // a path given wins over KUBECONFIG; tokenFile relative to its file
    auto own = dir.write("own", "current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: c\n"
                                "    user: u\nclusters:\n- name: c\n  cluster:\n    server: https://own:4\n"
                                "users:\n- name: u\n  user:\n    tokenFile: token\n");
    auto o = k8s::kube_connection_from_kubeconfig({.path = own});
    CHECK(o.address.host == "own");
    CHECK(o.token == "from-file");
}

TEST_CASE("outside the subset: a kubeconfig_error naming the file and the line") {
    struct bad {
        std::string text;
        std::size_t line;
        std::string says;
    };
    const std::vector<bad> cases = {
        {"clusters:\n- name: &a c\n", 2, "anchor"},
        {"a: 1\nb: *a\n", 2, "alias"},
        {"a: !!str x\n", 1, "tag"},
        {"a: |\n  text\n", 1, "block scalar"},
        {"a: [x, y]\n", 1, "flow collections"},
        {"a: {b: c, d: e}\n", 1, "flow collections"},
        {"a: 1\n---\nb: 2\n", 2, "several documents"},
        {"a:\n\tb: 1\n", 2, "tab"},
        {"a: 'open\n", 1, "does not end"},
        {"a: 1\na: 2\n", 2, "repeats"},
        {"a:\n  b: 1\n c: 2\n", 3, "indentation"},
        {"a: \"bad \\q escape\"\n", 1, "escape"},
        {"a: x\x01y\n", 1, "control character"},
    };
    for (auto& b : cases) {
        CAPTURE(b.text);
        auto e = thrown<k8s::kubeconfig_error>([&] { k8s::parse_kubeconfig(b.text, "bad.yaml"); });
        CHECK(e.file() == "bad.yaml");
        CHECK(e.line() == b.line);
        CHECK(contains(e.what(), b.says));
        CHECK(contains(e.what(), "bad.yaml:" + std::to_string(b.line)));
    }
    // JSON that is not, and a file over 1 MiB
    CHECK(contains(thrown<k8s::kubeconfig_error>([] { k8s::parse_kubeconfig("{\"a\": ", "j"); }).what(), "JSON"));
    std::string many = "[";
    for (int i = 0; i < 200000; ++i) many += "0,";
    many += "0]";
    CHECK(contains(thrown<k8s::kubeconfig_error>([&] { k8s::parse_kubeconfig(many, "j"); }).what(), "values"));
    temp_dir dir;
    auto huge = dir.write("huge", "a: " + std::string(std::size_t{1} << 20, 'x') + "\n");
    CHECK(contains(thrown<k8s::kubeconfig_error>([&] { k8s::read_kubeconfig_file(huge); }).what(), "larger than"));
    // a token with CR/LF would split the request's header
    std::string crlf = "current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n"
                       "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
                       "users:\n- name: u\n  user:\n    token: \"a\\r\\nX-Evil: 1\"\n";
    CHECK(contains(thrown<k8s::kubeconfig_error>([&] { resolve_text(crlf); }).what(), "control character"));
}
}

// ---------------------------------------------------------------------------------------------------------------
// The client against scripted replies: requests as sent, Status errors typed, hostile replies refused.

namespace {

using mock_kube_client = k8s::basic_kube_client<mock_engine>;

const std::string pods_path = "/api/v1/namespaces/default/pods";

json::object pod_json(std::string name, std::string phase = "Pending", std::string rv = "10") {
    return json::object{
        {"kind", "Pod"},
        {"metadata", {{"name", name}, {"namespace", "default"}, {"uid", "u-" + name}, {"resourceVersion", rv}}},
        {"spec", {{"nodeName", "127.0.2.2"}, {"containers", json::array{{{"name", "main"}}}}}},
        {"status", {{"phase", phase}}}};
}

std::string status_json(unsigned code, std::string reason, std::string message) {
    return json::serialize(json::object{{"kind", "Status"},
                                        {"apiVersion", "v1"},
                                        {"status", "Failure"},
                                        {"code", code},
                                        {"reason", reason},
                                        {"message", message}});
}

std::string event_line(std::string type, const json::object& object) {
    return json::serialize(json::object{{"type", type}, {"object", object}}) + "\n";
}

struct kube_fixture {
    asio::io_context ioc;
    mock_engine engine{ioc.get_executor(), "mock://apiserver"};
    mock_kube_client client;

    static k8s::kube_connection connection() {
        k8s::kube_connection c;
        c.address = berth::parse_docker_host("tcp://127.0.0.1:6443");
        c.token = "s3cret-token";
        return c;
    }
    explicit kube_fixture(k8s::kube_client_options options = {}) : client(engine, connection(), std::move(options)) {}

    template <class T>
    T run(asio::awaitable<T> op) {
        return run_on_mock(ioc, std::move(op), 10s);
    }
};

}  // namespace

TEST_SUITE("kubernetes mock") {
TEST_CASE("create sends the pod as JSON with the bearer token; get reads the typed status") {
    kube_fixture f;
    f.engine.on(verb::post, pods_path, reply::json(201, pod_json("eval-1")));
    auto running = pod_json("eval-1", "Running");
    running["status"].as_object()["podIP"] = "10.244.1.5";
    running["status"].as_object()["conditions"] = json::array{{{"type", "PodScheduled"}, {"status", "True"}},
                                                              {{"type", "Ready"}, {"status", "True"}}};
    running["status"].as_object()["containerStatuses"] = json::array{
        {{"name", "main"},
         {"ready", false},
         {"restartCount", 0},
         {"state", {{"terminated", {{"exitCode", 137}, {"reason", "OOMKilled"}, {"signal", 9}}}}}}};
    f.engine.on(verb::get, pods_path + "/eval-1", reply::json(200, running));

    k8s::pod_spec spec{.name = "eval-1",
                       .labels = {{"berth-test", "h21-api"}},
                       .image = "busybox",
                       .command = {"sleep", "3600"},
                       .env = {{"A", "1"}},
                       .resources = {.requests = {{"cpu", "100m"}}, .limits = {{"nvidia.com/gpu", "1"}}},
                       .image_pull_policy = "Never",
                       .termination_grace_period_seconds = 1,
                       .node_selector = {{"disk", "ssd"}},
                       .required_node_affinity = {{.match_expressions = {{.key = "zone", .values = {"a"}}}}},
                       .topology_spread = {{.match_labels = {{"berth-run", "r1"}}}},
                       .tolerations = {{.key = "gpu", .operator_name = "Exists", .effect = "NoSchedule"}},
                       .empty_dirs = {{.name = "work", .mount_path = "/work"}},
                       .extra = {{"spec", {{"priorityClassName", "evals"}}}}};
    auto created = f.run(f.client.pods().create(spec));
    CHECK(created.name == "eval-1");
    auto sent = f.engine.requests_to(verb::post, pods_path).at(0);
    CHECK(sent.header("Authorization") == "Bearer s3cret-token");
    CHECK(sent.header("Content-Type") == "application/json");
    CHECK(sent.header("Host") == "127.0.0.1:6443");
    auto body = sent.json().as_object();
    CHECK(body.at("kind") == "Pod");
    auto& s = body.at("spec").as_object();
    CHECK(s.at("restartPolicy") == "Never");
    CHECK(s.at("priorityClassName") == "evals");  // extra merged into spec, the rest kept
    CHECK(s.at("terminationGracePeriodSeconds") == 1);
    CHECK(s.at("nodeSelector").at("disk") == "ssd");
    CHECK(s.at("affinity")
              .at("nodeAffinity")
              .at("requiredDuringSchedulingIgnoredDuringExecution")
              .at("nodeSelectorTerms")
              .at(0)
              .at("matchExpressions")
              .at(0)
              .at("operator") == "In");
    CHECK(s.at("topologySpreadConstraints").at(0).at("topologyKey") == "kubernetes.io/hostname");
    CHECK(s.at("tolerations").at(0).at("operator") == "Exists");
    CHECK(s.at("volumes").at(0).at("emptyDir").as_object().empty());
    auto& c = s.at("containers").at(0).as_object();
    CHECK(c.at("imagePullPolicy") == "Never");
    CHECK(c.at("resources").at("limits").at("nvidia.com/gpu") == "1");
    CHECK(c.at("volumeMounts").at(0).at("mountPath") == "/work");
    CHECK(c.at("env").at(0).at("name") == "A");

    auto got = f.run(f.client.pods().get("eval-1"));
    CHECK(got.phase == "Running");
    CHECK(got.node_name == "127.0.2.2");
    CHECK(got.pod_ip == "10.244.1.5");
    REQUIRE(got.condition("Ready") != nullptr);
    CHECK(got.unschedulable() == nullptr);
    REQUIRE(got.container_statuses.size() == 1);
    auto& st = got.container_statuses[0].state;
    CHECK(st.state == k8s::container_state::kind::terminated);
    CHECK(st.exit_code == 137);
    CHECK(st.reason == "OOMKilled");
    CHECK(st.signal == 9);
    CHECK(got.raw.at("status").at("podIP") == "10.244.1.5");
}

namespace {
// A plain-HTTP API server on 127.0.0.1 (an http:// kubeconfig, as tests use): answers each request with `answer`,
// records what it received.
struct local_http_server {
    asio::io_context& ioc;
    asio::ip::tcp::acceptor acceptor{ioc, {asio::ip::make_address("127.0.0.1"), 0}};
    std::vector<boost::beast::http::request<boost::beast::http::string_body>> received{};
    std::function<std::pair<unsigned, std::string>(const std::string& target)> answer{};

    explicit local_http_server(asio::io_context& io) : ioc(io) { asio::co_spawn(ioc, accept(), asio::detached); }
    std::uint16_t port() const { return acceptor.local_endpoint().port(); }

    asio::awaitable<void> accept() {
        for (;;) {
            auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            asio::co_spawn(ioc, serve(std::move(socket)), asio::detached);
        }
    }
    asio::awaitable<void> serve(asio::ip::tcp::socket socket) {
        namespace http = boost::beast::http;
        boost::beast::flat_buffer buffer;
        for (;;) {
            http::request<http::string_body> req;
            auto [ec, n] = co_await http::async_read(socket, buffer, req, asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            received.push_back(req);
            auto [status, body] = answer(std::string(req.target()));
            http::response<http::string_body> res{static_cast<http::status>(status), 11};
            res.set(http::field::content_type, "application/json");
            res.body() = body;
            res.prepare_payload();
            auto [wec, wn] = co_await http::async_write(socket, res, asio::as_tuple(asio::use_awaitable));
            if (wec) co_return;
        }
    }
};
}  // namespace

TEST_CASE("an http:// kubeconfig reaches a local server: Host header, path prefix, namespace, bearer token") {
    asio::io_context ioc;
    local_http_server server(ioc);
    server.answer = [](const std::string& target) -> std::pair<unsigned, std::string> {
        if (target == "/k8s/api/v1/namespaces/evals/pods/p") {
            auto p = pod_json("p", "Running");
            p["metadata"].as_object()["namespace"] = "evals";
            return {200, json::serialize(p)};
        }
        return {404, status_json(404, "NotFound", "no route " + target)};
    };
    temp_dir dir;
    auto file = dir.write("config", "current-context: local\n"
                                    "contexts:\n- name: local\n  context:\n    cluster: c\n    user: u\n"
                                    "    namespace: evals\n"
                                    "clusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:" +
                                        std::to_string(server.port()) +
                                        "/k8s/\n"
                                        "users:\n- name: u\n  user:\n    token: t0ken\n");
    k8s::kubeconfig_load_options load{.path = file};
    CHECK_THROWS_AS(k8s::kube_connection_from_kubeconfig(load), k8s::kubeconfig_error);  // http:// not asked for
    load.allow_plain_http = true;
    auto client = k8s::kube_client::at(ioc.get_executor(), k8s::kube_connection_from_kubeconfig(load));
    CHECK(client.namespace_name() == "evals");
    auto got = run_on_mock(ioc, client.pods().get("p"), 10s);
    CHECK(got.namespace_name == "evals");
    auto missing = thrown<k8s::kubernetes_error>([&] { run_on_mock(ioc, client.pods().get("q"), 10s); });
    CHECK(missing.code() == k8s::kubernetes_errc::not_found);
    // the first connection's probe asks the API server's /version, not Docker's /_ping
    CHECK(server.received.front().target() == "/k8s/version");
    auto& last = server.received.back();
    CHECK(last.target() == "/k8s/api/v1/namespaces/evals/pods/q");
    CHECK(last[boost::beast::http::field::host] == "127.0.0.1:" + std::to_string(server.port()));
    CHECK(last[boost::beast::http::field::authorization] == "Bearer t0ken");
    server.acceptor.close();
}

TEST_CASE("engine_endpoint probe_path: CR/LF or a relative path refused before connecting; empty: no probe") {
    asio::io_context ioc;
    auto with_probe = [&](std::string probe) {
        berth::engine_endpoint ep{.address = berth::parse_docker_host("tcp://127.0.0.1:1")};
        ep.probe_path = std::move(probe);
        return berth::socket_transport(ioc.get_executor(), ep);
    };
    CHECK_THROWS_AS(with_probe("/version\r\nX-Evil: 1"), berth::invalid_argument_error);
    CHECK_THROWS_AS(with_probe("version"), berth::invalid_argument_error);
    CHECK_THROWS_AS(with_probe("/a b"), berth::invalid_argument_error);
    local_http_server server(ioc);
    server.answer = [](const std::string& target) -> std::pair<unsigned, std::string> {
        if (target == "/api/v1/namespaces/default/pods/p") return {200, json::serialize(pod_json("p", "Running"))};
        return {404, status_json(404, "NotFound", "no route " + target)};
    };
    berth::engine_endpoint ep{.address = berth::parse_docker_host("tcp://127.0.0.1:" + std::to_string(server.port()))};
    ep.probe_path.clear();
    k8s::kube_connection c;
    c.address = ep.address;
    k8s::basic_kube_client<berth::socket_transport> client(berth::socket_transport(ioc.get_executor(), ep), c);
    CHECK(run_on_mock(ioc, client.pods().get("p"), 10s).name == "p");
    REQUIRE(server.received.size() == 1);  // the request itself, no probe before it
    CHECK(server.received.front().target() == "/api/v1/namespaces/default/pods/p");
    server.acceptor.close();
}

TEST_CASE("a header that would end early is refused where every request is sent, not written") {
    // a token given in code, not read from a kubeconfig (whose reader refuses it first)
    kube_fixture f;
    auto c = kube_fixture::connection();
    c.token = "t0ken\r\nX-Evil: 1";
    mock_kube_client client(f.engine, c, {});
    auto refused = thrown<berth::invalid_argument_error>([&] { f.run(client.pods().get("p")); });
    CHECK(contains(refused.what(), "control character"));
    CHECK_FALSE(contains(refused.what(), "X-Evil"));  // the secret's text is not repeated
    CHECK(f.engine.requests().empty());
}

TEST_CASE("TLS material in memory that is not PEM, or half of it, is a tls_error before any connection") {
    asio::io_context ioc;
    k8s::kube_connection c;
    c.address = berth::parse_docker_host("tcp://127.0.0.1:6443");
    c.tls.enabled = true;
    c.tls.ca_pem = "not a certificate";
    auto e = thrown<berth::tls_error>([&] { k8s::kube_client::at(ioc.get_executor(), c); });
    CHECK(e.code() == berth::tls_errc::bad_material);
    CHECK(contains(e.what(), "CA given in memory"));
    c.tls.ca_pem.clear();
    c.tls.cert_pem = "-----BEGIN CERTIFICATE-----\n";
    CHECK(contains(thrown<berth::tls_error>([&] { k8s::kube_client::at(ioc.get_executor(), c); }).what(),
                   "needs its key"));
}

TEST_CASE("bad specs are refused before anything is sent") {
    kube_fixture f;
    k8s::pod_spec none{.image = "x"};
    CHECK_THROWS_AS(f.run(f.client.pods().create(none)), berth::invalid_argument_error);
    k8s::pod_spec bad_name{.name = "Eval_1", .image = "x"};
    CHECK_THROWS_AS(f.run(f.client.pods().create(bad_name)), berth::invalid_argument_error);
    k8s::pod_spec bad_policy{.name = "e", .image = "x", .image_pull_policy = "Sometimes"};
    CHECK(contains(message_of<berth::invalid_argument_error>([&] { f.run(f.client.pods().create(bad_policy)); }),
                   "Sometimes"));
    CHECK_THROWS_AS(f.run(f.client.pods().get("../../secrets")), berth::invalid_argument_error);
    CHECK_THROWS_AS(f.run(f.client.pods().remove_collection("")), berth::invalid_argument_error);
    k8s::pod_get_options other_ns{.namespace_name = "a/b"};
    CHECK_THROWS_AS(f.run(f.client.pods().get("x", other_ns)), berth::invalid_argument_error);
    CHECK(f.engine.requests_to(verb::post, pods_path).empty());
}

TEST_CASE("Status replies are typed: not_found, already_exists, invalid, unauthorized, forbidden, gone") {
    kube_fixture f;
    struct one {
        unsigned code;
        std::string reason;
        k8s::kubernetes_errc expected;
    };
    for (auto& c : std::vector<one>{{404, "NotFound", k8s::kubernetes_errc::not_found},
                                    {409, "AlreadyExists", k8s::kubernetes_errc::already_exists},
                                    {409, "Conflict", k8s::kubernetes_errc::conflict},
                                    {422, "Invalid", k8s::kubernetes_errc::invalid},
                                    {401, "Unauthorized", k8s::kubernetes_errc::unauthorized},
                                    {403, "Forbidden", k8s::kubernetes_errc::forbidden},
                                    {410, "Expired", k8s::kubernetes_errc::gone},
                                    {500, "InternalError", k8s::kubernetes_errc::server_error}}) {
        CAPTURE(c.code);
        f.engine.once(verb::get, pods_path + "/p",
                      reply::json(c.code, status_json(c.code, c.reason, "it said no to s3cret-token")));
        auto e = thrown<k8s::kubernetes_error>([&] { f.run(f.client.pods().get("p")); });
        CHECK(e.code() == c.expected);
        CHECK(e.status() == c.code);
        CHECK(e.reason() == c.reason);
        CHECK(contains(e.message(), "it said no"));
        CHECK_FALSE(contains(e.what(), "s3cret-token"));  // the token never reaches a message
        CHECK(e.endpoint() == "GET " + pods_path + "/p");
    }
    // a body that is not a Status: its text, bounded
    f.engine.once(verb::get, pods_path + "/p", reply::text(403, "forbidden: " + std::string(10000, 'x')));
    auto e = thrown<k8s::kubernetes_error>([&] { f.run(f.client.pods().get("p")); });
    CHECK(e.code() == k8s::kubernetes_errc::forbidden);
    CHECK(e.message().size() < 5000);
}

TEST_CASE("names with '/' or CR/LF in replies are refused before anything reuses them") {
    kube_fixture f;
    for (const std::string& hostile :
         std::vector<std::string>{"../x", "a/b", "a\r\nHost: evil", "UPPER", std::string("nul\0x", 5)}) {
        CAPTURE(hostile);
        auto p = pod_json("p");
        p["metadata"].as_object()["name"] = hostile;
        f.engine.once(verb::get, pods_path + "/p", reply::json(200, p));
        CHECK(contains(message_of<berth::protocol_error>([&] { f.run(f.client.pods().get("p")); }), "pod name"));
        auto node = pod_json("p");
        node["spec"].as_object()["nodeName"] = hostile;
        f.engine.once(verb::get, pods_path, reply::json(200, json::object{{"items", json::array{node}}}));
        CHECK(contains(message_of<berth::protocol_error>([&] { f.run(f.client.pods().list()); }), "node name"));
    }
    auto p = pod_json("p");
    p["status"].as_object()["containerStatuses"] = json::array{{{"name", "main/../x"}}};
    f.engine.once(verb::get, pods_path + "/p", reply::json(200, p));
    CHECK(contains(message_of<berth::protocol_error>([&] { f.run(f.client.pods().get("p")); }), "container"));
}

TEST_CASE("a huge pod list is refused at its bound, not read whole; list_all stops at max_items") {
    kube_fixture f({.max_reply_bytes = 256 * 1024});
    // 4 MiB of list in 64 KiB chunks: the client stops after the bound
    std::vector<std::string> pieces{"{\"kind\":\"PodList\",\"items\":["};
    auto item = json::serialize(pod_json("p")) + ",";
    std::string chunk;
    while (chunk.size() < 64 * 1024) chunk += item;
    for (int i = 0; i < 64; ++i) pieces.push_back(chunk);
    f.engine.once(verb::get, pods_path, reply::chunked(200, pieces, "application/json"));
    auto e = thrown<berth::protocol_error>([&] { f.run(f.client.pods().list()); });
    CHECK(e.code() == berth::protocol_errc::oversized);

    // pages: 3 of 2 items each, then the bound of 5 items
    auto page = [](int n, std::string next) {
        json::array items{pod_json("p" + std::to_string(n)), pod_json("p" + std::to_string(n + 1))};
        return reply::json(
            200, json::object{{"items", items}, {"metadata", {{"resourceVersion", "7"}, {"continue", next}}}});
    };
    f.engine.on(verb::get, pods_path, [&](const berth::testing::recorded_request& r) {
        auto token = r.query("continue").value_or("");
        return token.empty() ? page(0, "c1") : token == "c1" ? page(2, "c2") : page(4, "");
    });
    k8s::pod_list_all_options all{.list = {.label_selector = "a=b", .limit = 2}};
    auto listed = f.run(f.client.pods().list_all(all));
    CHECK(listed.items.size() == 6);
    CHECK(listed.resource_version == "7");
    CHECK(f.engine.requests_to(verb::get, pods_path).back().query("labelSelector") == "a=b");
    CHECK(f.engine.requests_to(verb::get, pods_path).back().query("limit") == "2");
    all.max_items = 5;
    CHECK(thrown<berth::protocol_error>([&] { f.run(f.client.pods().list_all(all)); }).code() ==
          berth::protocol_errc::oversized);
}

TEST_CASE("a chunked reply cut short is an error, and so is a reply that never ends its body") {
    kube_fixture f({.request_timeout = 300ms});
    auto text = json::serialize(pod_json("p"));
    f.engine.once(verb::get, pods_path + "/p",
                  reply::chunked(200, {text.substr(0, 40), text.substr(40, 20)}, "application/json").then_close());
    CHECK_THROWS_AS(f.run(f.client.pods().get("p")), berth::error);
    f.engine.once(verb::get, pods_path + "/p",
                  reply::chunked(200, {text.substr(0, 40)}, "application/json").then_stall());
    auto e = thrown<berth::connection_error>([&] { f.run(f.client.pods().get("p")); });
    CHECK(e.code() == asio::error::timed_out);
    f.engine.on(verb::get, pods_path + "/p", reply::json(200, pod_json("p")));
    CHECK(f.run(f.client.pods().get("p")).name == "p");  // the client recovers
}

TEST_CASE("delete and delete_collection send DeleteOptions; logs send their parameters and are bounded") {
    kube_fixture f;
    f.engine.on(verb::delete_, pods_path + "/p", reply::json(200, pod_json("p")));
    k8s::pod_delete_options now{.grace_period_seconds = 0, .propagation_policy = "Background"};
    f.run(f.client.pods().remove("p", now));
    auto body = f.engine.requests_to(verb::delete_, pods_path + "/p").at(0).json();
    CHECK(body.at("gracePeriodSeconds") == 0);
    CHECK(body.at("propagationPolicy") == "Background");

    f.engine.on(verb::delete_, pods_path,
                reply::json(200, json::object{{"items", json::array{pod_json("a"), pod_json("b")}}}));
    auto gone = f.run(f.client.pods().remove_collection("berth-test=h21-api", now));
    CHECK(gone.items.size() == 2);
    CHECK(f.engine.requests_to(verb::delete_, pods_path).at(0).query("labelSelector") == "berth-test=h21-api");

    f.engine.on(verb::get, pods_path + "/p/log", reply::text(200, "line 1\nline 2\n"));
    k8s::pod_logs_options lo{.container = "main", .tail_lines = 2, .timestamps = true, .max_bytes = 1000};
    CHECK(f.run(f.client.pods().logs("p", lo)) == "line 1\nline 2\n");
    auto sent = f.engine.requests_to(verb::get, pods_path + "/p/log").at(0);
    CHECK(sent.query("container") == "main");
    CHECK(sent.query("tailLines") == "2");
    CHECK(sent.query("timestamps") == "true");
    CHECK(sent.query("limitBytes") == "1000");
    lo.max_bytes = 4;  // a server that ignores limitBytes: the client's own bound
    CHECK(thrown<berth::protocol_error>([&] { f.run(f.client.pods().logs("p", lo)); }).code() ==
          berth::protocol_errc::oversized);

    std::string streamed;
    f.engine.on(verb::get, pods_path + "/q/log", reply::chunked(200, {"a\n", "b\n"}, "text/plain"));
    k8s::pod_logs_options follow{.follow = true,
                                 .on_output = [&](berth::output_stream, std::string_view s) { streamed += s; }};
    f.run(f.client.pods().stream_logs("q", follow));
    CHECK(streamed == "a\nb\n");
    CHECK(f.engine.requests_to(verb::get, pods_path + "/q/log").at(0).query("follow") == "true");
}

TEST_CASE("watch: events typed, malformed lines named, ERROR 410 is gone, a silent watch ends at its idle limit") {
    kube_fixture f;
    auto read_all = [&](std::vector<std::string> pieces, k8s::pod_watch_options o = {}) {
        f.engine.once(verb::get, pods_path, reply::chunked(200, std::move(pieces), "application/json"));
        return f.run(
            [](mock_kube_client& c, k8s::pod_watch_options opts) -> asio::awaitable<std::vector<k8s::watch_event>> {
                auto w = co_await c.pods().watch(opts);
                std::vector<k8s::watch_event> out;
                while (auto e = co_await w.next()) out.push_back(std::move(*e));
                co_return out;
            }(f.client, o));
    };
    // events split across chunks, a line in pieces, bookmarks
    auto added = event_line("ADDED", pod_json("p", "Pending", "11"));
    auto modified = event_line("MODIFIED", pod_json("p", "Running", "12"));
    auto bookmark = event_line("BOOKMARK", json::object{{"metadata", {{"resourceVersion", "13"}}}});
    auto events = read_all({added.substr(0, 10), added.substr(10) + modified, bookmark,
                            event_line("DELETED", pod_json("p", "Running", "14"))},
                           {.label_selector = "a=b", .resource_version = "10", .allow_bookmarks = true});
    REQUIRE(events.size() == 4);
    CHECK(events[0].type == k8s::watch_event::kind::added);
    CHECK(events[1].object.phase == "Running");
    CHECK(events[2].type == k8s::watch_event::kind::bookmark);
    CHECK(events[2].resource_version == "13");
    CHECK(events[3].type == k8s::watch_event::kind::deleted);
    auto sent = f.engine.requests_to(verb::get, pods_path).back();
    CHECK(sent.query("watch") == "1");
    CHECK(sent.query("resourceVersion") == "10");
    CHECK(sent.query("allowWatchBookmarks") == "true");

    struct malformed {
        std::string line;
        std::string says;
    };
    for (auto& m : std::vector<malformed>{
             {"not json\n", "not valid JSON"},
             {"[1,2]\n", "not a JSON object"},
             {"{\"object\":{}}\n", "no type"},
             {"{\"type\":\"ADDED\",\"object\":\"x\"}\n", "no object"},
             {"{\"type\":\"EXPLODED\",\"object\":{}}\n", "unknown watch event type"},
             {"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a/b\"}}}\n", "pod name"},
             {added.substr(0, 30), "ended inside an event"},
         }) {
        CAPTURE(m.line);
        CHECK(contains(message_of<berth::protocol_error>([&] { read_all({m.line}); }), m.says));
    }
    // a line over the bound
    k8s::pod_watch_options small{.max_line_bytes = 1024};
    auto e = thrown<berth::protocol_error>([&] { read_all({std::string(4096, ' ') + "x"}, small); });
    CHECK(e.code() == berth::protocol_errc::oversized);

    auto expired = event_line("ERROR",
                              json::parse(status_json(410, "Expired", "too old resource version")).as_object());
    auto gone = thrown<k8s::kubernetes_error>([&] { read_all({added, expired}); });
    CHECK(gone.code() == k8s::kubernetes_errc::gone);
    CHECK(gone.status() == 410);
    CHECK(contains(gone.message(), "too old"));

    // a watch whose head came and then nothing: the idle limit ends it, typed
    f.engine.once(verb::get, pods_path, reply::chunked(200, {}, "application/json").then_stall());
    k8s::pod_watch_options quiet{.idle_limit = 200ms};
    auto silent = thrown<k8s::kubernetes_error>([&] {
        f.run([](mock_kube_client& c, k8s::pod_watch_options o) -> asio::awaitable<void> {
            auto w = co_await c.pods().watch(o);
            co_await w.next();
        }(f.client, quiet));
    });
    CHECK(silent.code() == k8s::kubernetes_errc::timeout);
    CHECK(silent.code() == boost::system::errc::timed_out);
    // and one that never sends its head
    f.engine.once(verb::get, pods_path, reply::stall());
    CHECK(thrown<berth::connection_error>([&] { f.run(f.client.pods().watch(quiet)); }).code() ==
          asio::error::timed_out);
}

TEST_CASE("wait_for: list, then watch from the list's version; unschedulable at once; 410 lists again") {
    kube_fixture f;
    auto list_of = [](json::object p, std::string rv) {
        return reply::json(200,
                           json::object{{"items", json::array{std::move(p)}}, {"metadata", {{"resourceVersion", rv}}}});
    };
    f.engine.on(verb::get, pods_path, [&](const berth::testing::recorded_request& r) {
        if (r.query("watch"))
            return reply::chunked(200,
                                  {event_line("MODIFIED", pod_json("p", "Pending", "21")),
                                   event_line("MODIFIED", pod_json("p", "Running", "22"))},
                                  "application/json");
        return list_of(pod_json("p", "Pending", "20"), "20");
    });
    auto r = f.run(f.client.pods().wait_for("p"));
    CHECK(r.outcome == k8s::pod_wait_outcome::running);
    CHECK(r.ok());
    auto requests = f.engine.requests_to(verb::get, pods_path);
    REQUIRE(requests.size() == 2);
    CHECK(requests[0].query("fieldSelector") == "metadata.name=p");
    CHECK(requests[1].query("resourceVersion") == "20");
    CHECK(requests[1].query("fieldSelector") == "metadata.name=p");

    auto unschedulable = pod_json("q", "Pending", "31");
    unschedulable["status"].as_object()["conditions"] = json::array{
        {{"type", "PodScheduled"},
         {"status", "False"},
         {"reason", "Unschedulable"},
         {"message", "0/2 nodes are available: 2 Insufficient memory."}}};
    int lists = 0;
    f.engine.on(verb::get, pods_path, [&](const berth::testing::recorded_request& r) {
        if (r.query("watch")) {
            if (lists == 1)  // the first watch expires
                return reply::chunked(
                    200, {event_line("ERROR", json::parse(status_json(410, "Expired", "old")).as_object())},
                    "application/json");
            return reply::chunked(200, {event_line("MODIFIED", unschedulable)}, "application/json");
        }
        ++lists;
        return list_of(pod_json("q", "Pending", std::to_string(30 + lists)), std::to_string(30 + lists));
    });
    auto u = f.run(f.client.pods().wait_for("q"));
    CHECK(lists == 2);
    CHECK(u.outcome == k8s::pod_wait_outcome::unschedulable);
    CHECK(u.reason == "Unschedulable");
    CHECK(contains(u.message, "Insufficient memory"));
    CHECK_FALSE(u.ok());

    // a container that can never start, and a failed pod: values with Kubernetes' reason
    auto never = pod_json("n", "Pending");
    never["status"].as_object()["containerStatuses"] = json::array{
        {{"name", "main"}, {"state", {{"waiting", {{"reason", "ErrImageNeverPull"}, {"message", "no image"}}}}}}};
    f.engine.on(verb::get, pods_path, list_of(never, "40"));
    auto n = f.run(f.client.pods().wait_for("n"));
    CHECK(n.outcome == k8s::pod_wait_outcome::failed);
    CHECK(n.reason == "ErrImageNeverPull");

    k8s::pod_wait_options short_wait{.limit = 300ms};
    // a server that ends every watch at once, empty: asked again after a pause, not in a tight loop
    f.engine.on(verb::get, pods_path, [&](const berth::testing::recorded_request& r) {
        if (r.query("watch")) return reply::chunked(200, {}, "application/json");
        return list_of(pod_json("e", "Pending", "60"), "60");
    });
    CHECK(thrown<k8s::kubernetes_error>([&] { f.run(f.client.pods().wait_for("e", short_wait)); }).code() ==
          k8s::kubernetes_errc::timeout);
    CHECK(f.engine.requests_to(verb::get, pods_path).size() < 100);
    // a watch that stays silent: the wait's limit, typed
    f.engine.on(verb::get, pods_path, [&](const berth::testing::recorded_request& r) {
        if (r.query("watch")) return reply::chunked(200, {}, "application/json").then_stall();
        return list_of(pod_json("s", "Pending", "50"), "50");
    });
    auto t = thrown<k8s::kubernetes_error>([&] { f.run(f.client.pods().wait_for("s", short_wait)); });
    CHECK(t.code() == k8s::kubernetes_errc::timeout);
    CHECK(contains(t.message(), "last phase: Pending"));
}
}

// ---------------------------------------------------------------------------------------------------------------
// The real cluster.

namespace {

const char* const test_label = "berth-test=h21-api";

// The kubeconfig of the cluster under test, or nullopt (a skip message; a failure in CI).
std::optional<std::string> cluster_kubeconfig() {
    const char* path = std::getenv("BERTH_K8S_KUBECONFIG");
    if (path == nullptr || *path == '\0') {
        const char* ci = std::getenv("CI");
        if (ci != nullptr && std::string(ci) == "true")
            FAIL("no cluster: set BERTH_K8S_KUBECONFIG (scripts/test does)");
        MESSAGE("SKIPPED: no cluster: set BERTH_K8S_KUBECONFIG");
        return std::nullopt;
    }
    return std::string(path);
}

std::string cluster_image() {
    const char* v = std::getenv("BERTH_K8S_IMAGE");
    return v && *v ? v : "berth.local/busybox:1";
}

std::set<std::string> cluster_nodes() {
    std::set<std::string> out;
    const char* v = std::getenv("BERTH_K8S_NODES");
    std::istringstream in(v ? v : "");
    for (std::string n; in >> n;) out.insert(n);
    return out;
}

std::string unique_name(std::string_view stem) {
    static int counter = 0;
    return std::string(stem) + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

k8s::pod_spec test_pod(std::string name, std::vector<std::string> command) {
    return k8s::pod_spec{.name = std::move(name),
                         .labels = {{"berth-test", "h21-api"}},
                         .image = cluster_image(),
                         .command = std::move(command),
                         .resources = {.requests = {{"cpu", "10m"}, {"memory", "16Mi"}}},
                         .image_pull_policy = "Never",
                         .termination_grace_period_seconds = 0};
}

// Removes every pod this suite made, at the end of a test (also when it failed).
asio::awaitable<void> remove_test_pods(k8s::kube_client& c) {
    k8s::pod_delete_options now{.grace_period_seconds = 0};
    co_await c.pods().remove_collection(test_label, now);
}

template <class F>
void with_cluster(F body) {
    auto kubeconfig = cluster_kubeconfig();
    if (!kubeconfig) return;
    berth_test::run_to_completion([](std::string path, F f) -> asio::awaitable<void> {
        k8s::kubeconfig_load_options load{.path = path};
        auto c = k8s::kube_client::from_kubeconfig(co_await asio::this_coro::executor, load);
        std::exception_ptr failure;
        try {
            co_await f(c);
        } catch (...) { failure = std::current_exception(); }
        co_await remove_test_pods(c);
        if (failure) std::rethrow_exception(failure);
    }(*kubeconfig, std::move(body)));
}

}  // namespace

TEST_SUITE("kubernetes cluster") {
TEST_CASE("a pod runs: created, watched to Running, placed on a node of the cluster, removed") {
    with_cluster([](k8s::kube_client& c) -> asio::awaitable<void> {
        auto name = unique_name("sleeper");
        auto sleeper = test_pod(name, {"sleep", "3600"});
        auto created = co_await c.pods().create(sleeper);
        CHECK(created.name == name);
        CHECK(created.namespace_name == "default");
        CHECK(created.labels.at("berth-test") == "h21-api");
        k8s::pod_wait_options wait{.limit = 120s};
        auto r = co_await c.pods().wait_for(name, wait);
        CHECK(r.outcome == k8s::pod_wait_outcome::running);
        auto got = co_await c.pods().get(name);
        CHECK(got.phase == "Running");
        CHECK(cluster_nodes().count(got.node_name) == 1);
        CHECK_FALSE(got.pod_ip.empty());
        REQUIRE(got.container_statuses.size() == 1);
        CHECK(got.container_statuses[0].state.state == k8s::container_state::kind::running);
        // a second create of the same name
        auto again = test_pod(name, {"sleep", "1"});
        try {
            co_await c.pods().create(again);
            FAIL("a second pod of the same name was created");
        } catch (const k8s::kubernetes_error& e) {
            CHECK(e.code() == k8s::kubernetes_errc::already_exists);
            CHECK(e.reason() == "AlreadyExists");
        }
        k8s::pod_delete_options now{.grace_period_seconds = 0};
        co_await c.pods().remove(name, now);
        k8s::pod_wait_options until_gone{.limit = 120s};
        auto after = co_await c.pods().wait_for(name, until_gone);
        CHECK(after.outcome == k8s::pod_wait_outcome::deleted);
    });
}

TEST_CASE("logs of a pod that echoes: whole, tail, streamed") {
    with_cluster([](k8s::kube_client& c) -> asio::awaitable<void> {
        auto name = unique_name("echo");
        auto echo = test_pod(name, {"sh", "-c", "echo hello; echo world; echo bye"});
        co_await c.pods().create(echo);
        k8s::pod_wait_options wait{.target = k8s::pod_wait_target::finished, .limit = 120s};
        auto r = co_await c.pods().wait_for(name, wait);
        CHECK(r.outcome == k8s::pod_wait_outcome::succeeded);
        CHECK(co_await c.pods().logs(name) == "hello\nworld\nbye\n");
        k8s::pod_logs_options tail{.tail_lines = 1};
        CHECK(co_await c.pods().logs(name, tail) == "bye\n");
        std::string streamed;
        k8s::pod_logs_options follow{.follow = true,
                                     .on_output = [&](berth::output_stream, std::string_view s) { streamed += s; }};
        co_await c.pods().stream_logs(name, follow);
        CHECK(streamed == "hello\nworld\nbye\n");
        // a failing command: a value with the container's reason
        auto failing = unique_name("fails");
        auto failing_spec = test_pod(failing, {"sh", "-c", "exit 3"});
        co_await c.pods().create(failing_spec);
        auto f = co_await c.pods().wait_for(failing, wait);
        CHECK(f.outcome == k8s::pod_wait_outcome::failed);
        CHECK(f.reason == "Error");
        CHECK(contains(f.message, "exited with 3"));
    });
}

TEST_CASE("a pod asking for 1000 GiB is unschedulable, with the scheduler's message") {
    with_cluster([](k8s::kube_client& c) -> asio::awaitable<void> {
        auto name = unique_name("huge");
        auto spec = test_pod(name, {"sleep", "3600"});
        spec.resources.requests["memory"] = "1000Gi";
        co_await c.pods().create(spec);
        k8s::pod_wait_options wait{.limit = 120s};
        auto r = co_await c.pods().wait_for(name, wait);
        CHECK(r.outcome == k8s::pod_wait_outcome::unschedulable);
        CHECK(r.reason == "Unschedulable");
        CHECK(contains(r.message, "Insufficient memory"));
        CHECK(r.current.node_name.empty());
    });
}

TEST_CASE("remove_collection by label leaves none; Status errors typed (not_found, invalid, forbidden)") {
    with_cluster([](k8s::kube_client& c) -> asio::awaitable<void> {
        for (int i = 0; i < 3; ++i) {
            auto spec = test_pod(unique_name("batch"), {"sleep", "3600"});
            co_await c.pods().create(spec);
        }
        k8s::pod_list_options mine{.label_selector = test_label};
        CHECK((co_await c.pods().list(mine)).items.size() == 3);
        k8s::pod_delete_options now{.grace_period_seconds = 0};
        auto removed = co_await c.pods().remove_collection(test_label, now);
        CHECK(removed.items.size() == 3);
        CHECK((co_await c.pods().list(mine)).items.empty());

        try {
            co_await c.pods().get("no-such-pod-h21");
            FAIL("a missing pod was found");
        } catch (const k8s::kubernetes_error& e) {
            CHECK(e.code() == k8s::kubernetes_errc::not_found);
            CHECK(e.reason() == "NotFound");
            CHECK(e.details().at("name") == "no-such-pod-h21");
        }
        auto invalid = test_pod(unique_name("invalid"), {"true"});
        invalid.labels["bad"] = "not a label value!";
        try {
            co_await c.pods().create(invalid);
            FAIL("an invalid pod was created");
        } catch (const k8s::kubernetes_error& e) {
            CHECK(e.code() == k8s::kubernetes_errc::invalid);
            CHECK(e.status() == 422);
            CHECK(contains(e.message(), "metadata.labels"));
        }
        // the same server without the client certificate: anonymous, refused
        auto anonymous = c.connection();
        anonymous.tls.cert_pem.clear();
        anonymous.tls.key_pem.clear();
        anonymous.tls.cert_file.clear();
        anonymous.tls.key_file.clear();
        auto stranger = k8s::kube_client::at(co_await asio::this_coro::executor, anonymous);
        try {
            co_await stranger.pods().list();
            FAIL("an anonymous client listed pods");
        } catch (const k8s::kubernetes_error& e) {
            CHECK((e.code() == k8s::kubernetes_errc::forbidden || e.code() == k8s::kubernetes_errc::unauthorized));
            CHECK((e.status() == 401 || e.status() == 403));
        }
    });
}
TEST_CASE("placement: node selector and required node affinity choose the node; spread and tolerations accepted") {
    with_cluster([](k8s::kube_client& c) -> asio::awaitable<void> {
        auto nodes = cluster_nodes();
        REQUIRE(nodes.size() >= 2);
        const std::string first = *nodes.begin(), last = *nodes.rbegin();
        auto by_selector = test_pod(unique_name("selector"), {"sleep", "3600"});
        by_selector.node_selector = {{"kubernetes.io/hostname", last}};
        auto by_affinity = test_pod(unique_name("affinity"), {"sleep", "3600"});
        by_affinity.required_node_affinity = {
            {.match_expressions = {{.key = "kubernetes.io/hostname", .operator_name = "NotIn", .values = {last}}}}};
        by_affinity.topology_spread = {{.match_labels = {{"berth-test", "h21-api"}}}};
        by_affinity.tolerations = {{.key = "berth.test/none", .operator_name = "Exists", .effect = "NoSchedule"}};
        by_affinity.security.drop_capabilities = {"NET_RAW"};
        by_affinity.empty_dirs = {{.name = "work", .mount_path = "/work"}};
        co_await c.pods().create(by_selector);
        co_await c.pods().create(by_affinity);
        k8s::pod_wait_options wait{.limit = 120s};
        auto a = co_await c.pods().wait_for(by_selector.name, wait);
        auto b = co_await c.pods().wait_for(by_affinity.name, wait);
        CHECK(a.outcome == k8s::pod_wait_outcome::running);
        CHECK(b.outcome == k8s::pod_wait_outcome::running);
        CHECK(a.current.node_name == last);
        CHECK(b.current.node_name == first);
        // no node is left for a pod that asks for both
        auto impossible = test_pod(unique_name("nowhere"), {"sleep", "3600"});
        impossible.node_selector = {{"kubernetes.io/hostname", last}};
        impossible.required_node_affinity = by_affinity.required_node_affinity;
        co_await c.pods().create(impossible);
        auto u = co_await c.pods().wait_for(impossible.name, wait);
        CHECK(u.outcome == k8s::pod_wait_outcome::unschedulable);
        CHECK_FALSE(u.message.empty());
    });
}

TEST_CASE("a container over its memory limit: failed, reason OOMKilled, exit code 137") {
    with_cluster([](k8s::kube_client& c) -> asio::awaitable<void> {
        auto spec = test_pod(unique_name("oom"),
                             {"sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' x); echo done"});
        spec.resources.limits = {{"memory", "32Mi"}};
        spec.resources.requests["memory"] = "32Mi";
        co_await c.pods().create(spec);
        k8s::pod_wait_options wait{.target = k8s::pod_wait_target::finished, .limit = 120s};
        auto r = co_await c.pods().wait_for(spec.name, wait);
        CHECK(r.outcome == k8s::pod_wait_outcome::failed);
        CHECK(r.reason == "OOMKilled");
        REQUIRE(r.current.container_statuses.size() == 1);
        CHECK(r.current.container_statuses[0].state.exit_code == 137);
    });
}

TEST_CASE("the cluster's own kubeconfigs read; TLS material from files as from memory") {
    auto kubeconfig = cluster_kubeconfig();
    if (!kubeconfig) return;
    auto dir = std::filesystem::path(*kubeconfig).parent_path();
    int read = 0;
    for (auto& entry : std::filesystem::directory_iterator(dir))
        if (entry.path().extension() == ".kubeconfig") {
            CAPTURE(entry.path().string());
            auto c = k8s::kube_connection_from_kubeconfig({.path = entry.path().string()});
            CHECK(c.https);
            CHECK(c.tls.verify_server);
            CHECK((!c.tls.ca_pem.empty() || !c.tls.ca_file.empty()));
            ++read;
        }
    CHECK(read >= 2);
    auto files = k8s::kube_connection_from_kubeconfig({.path = *kubeconfig});
    files.tls.ca_pem.clear();
    files.tls.cert_pem.clear();
    files.tls.key_pem.clear();
    files.tls.ca_file = (dir / "certs" / "ca.pem").string();
    files.tls.cert_file = (dir / "certs" / "admin-cert.pem").string();
    files.tls.key_file = (dir / "certs" / "admin-key.pem").string();
    auto listed = berth_test::run_to_completion([](k8s::kube_connection conn) -> asio::awaitable<std::size_t> {
        auto c = k8s::kube_client::at(co_await asio::this_coro::executor, conn);
        k8s::pod_list_options mine{.label_selector = test_label};
        co_return (co_await c.pods().list(mine)).items.size();
    }(files));
    CHECK(listed == 0);
    // the wrong CA: the server is not trusted, a tls_error before any request
    files.tls.ca_file = (dir / "certs" / "admin-cert.pem").string();
    auto e = thrown<berth::tls_error>([&] {
        berth_test::run_to_completion([](k8s::kube_connection conn) -> asio::awaitable<void> {
            auto c = k8s::kube_client::at(co_await asio::this_coro::executor, conn);
            co_await c.pods().list();
        }(files));
    });
    CHECK(e.code() == berth::tls_errc::unknown_ca);
}
}
