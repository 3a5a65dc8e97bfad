// build_container on Kubernetes and the evaluation calls on its handle (issue #21): on the real 1.20 cluster
// scripts/kubernetes starts (BERTH_K8S_*), with images built on the test dockerd (BERTH_TEST_DOCKER_HOST) and pushed to
// scripts/registry's open registry (BERTH_REGISTRY_OPEN), which the nodes' containerd pull from by digest. The mock
// API server shows what the real one cannot: the exact Pod sent, a create whose reply was a 5xx, options refused.
#include "support/checks.hpp"
#include "support/engines.hpp"

#include <berth/berth.hpp>
#include <berth/kubernetes.hpp>
#include <berth/testing/mock_engine.hpp>
#include <berth/transport/tls.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

using namespace berth_test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;
namespace k8s = berth::kubernetes;
using berth::testing::mock_engine;
using reply = berth::testing::reply;
using verb = boost::beast::http::verb;

namespace {

// --- the mock cluster: an API server and a builder engine, each a mock_engine ---

const std::string pushed_digest = "sha256:" + std::string(64, 'd');
const std::string pods_path = "/api/v1/namespaces/evals/pods";

json::object running_pod(const std::string& name, const std::string& token) {
    return json::object{{"kind", "Pod"},
                        {"metadata",
                         {{"name", name},
                          {"namespace", "evals"},
                          {"uid", "uid-1"},
                          {"resourceVersion", "12"},
                          {"labels", {{"berth.build-call", token}}}}},
                        {"spec", {{"nodeName", "node-b"}}},
                        {"status", {{"phase", "Running"}}}};
}

std::string list_of(json::array items) {
    return json::serialize(
        json::object{{"kind", "PodList"}, {"metadata", {{"resourceVersion", "12"}}}, {"items", items}});
}

std::string status_json(unsigned code, std::string reason, std::string message) {
    return json::serialize(json::object{
        {"kind", "Status"}, {"status", "Failure"}, {"code", code}, {"reason", reason}, {"message", message}});
}

struct mock_kube_cluster {
    asio::io_context ioc;
    mock_engine api_server{ioc.get_executor(), "mock://apiserver"};
    mock_engine builder_engine{ioc.get_executor(), "mock://builder"};
    std::optional<k8s::basic_kube_client<mock_engine>> api;
    std::optional<berth::basic_client<mock_engine>> builder;
    std::optional<k8s::basic_kube_cluster<mock_engine>> cluster;
    temp_dir repo;
    std::string token;  // the build-call label of the last create

    mock_kube_cluster() {
        write_file(repo.path / "Dockerfile", "FROM scratch\n");
        builder_engine.on(verb::get, "/images/app/json", reply::json(200, R"({"Id":"sha256:base"})"));
        builder_engine.on(verb::post, "/build",
                          reply::chunked(200, {"{\"aux\":{\"ID\":\"sha256:layer\"}}\n"}, "application/json"));
        builder_engine.on(verb::post, "/images/127.0.0.1:5000/app/push",
                          reply::chunked(200,
                                         {R"({"status":"latest: digest: )" + pushed_digest +
                                          R"( size: 527"})"
                                          "\n"},
                                         "application/json"));
        api_server.on(verb::get, pods_path + "/app-eval",
                      reply::json(404, status_json(404, "NotFound", "pods \"app-eval\" not found")));
        api_server.on(verb::post, pods_path, berth::testing::request_handler([this](const auto& r) {
                          token = std::string(json::parse(r.body)
                                                  .as_object()
                                                  .at("metadata")
                                                  .as_object()
                                                  .at("labels")
                                                  .as_object()
                                                  .at("berth.build-call")
                                                  .as_string());
                          return reply::json(201, json::serialize(running_pod("app-eval", token)));
                      }));
        api_server.on(verb::get, pods_path, berth::testing::request_handler([this](const auto&) {
                          return reply::json(200, list_of(json::array{running_pod("app-eval", token)}));
                      }));
        api_server.on(verb::delete_, pods_path + "/app-eval", reply::json(200, R"({"kind":"Status"})"));
        k8s::kube_connection c;
        c.address = berth::parse_docker_host("tcp://127.0.0.1:6443");
        c.namespace_name = "evals";
        api.emplace(api_server, c, k8s::kube_client_options{});
        builder.emplace(builder_engine);
        cluster.emplace(*api, *builder, k8s::kube_cluster_options{.registry = "127.0.0.1:5000"});
    }

    k8s::kube_build_options options() const {
        k8s::kube_build_options o;
        o.repo_path = repo.path.string();
        o.container_name = "app-eval";
        o.mount_name = "hyperagents";
        o.verbose = false;
        return o;
    }
    template <class T>
    T run(asio::awaitable<T> op) {
        return run_on_mock(ioc, std::move(op), 30s);
    }
    std::vector<berth::testing::recorded_request> creates() { return api_server.requests_to(verb::post, pods_path); }
};

}  // namespace

TEST_SUITE("kubernetes build_container (mock API server)") {
TEST_CASE("the pod build_container creates: digest-pinned image, limits, requests, GPU, placement, init, labels") {
    mock_kube_cluster m;
    auto o = m.options();
    o.request_gpus = true;
    o.memory_bytes = 512 << 20;
    o.nano_cpus = 1'500'000'000;
    o.reserve_memory_bytes = 64 << 20;
    o.reserve_nano_cpus = 250'000'001;  // rounded up to whole millicores
    o.labels = {{"berth-run", "r1"}};
    o.env = {"MODE=eval", "EMPTY="};
    o.node_selector = {{"disk", "ssd"}};
    o.topology_spread = {k8s::topology_spread_constraint{}};
    o.network_mode = "none";
    auto r = m.run(berth::build_container(*m.cluster, o));
    REQUIRE_MESSAGE(r.has_value(), (r.failure() ? r.failure()->message : ""));
    CHECK(r->name == "app-eval");
    CHECK(r->namespace_name == "evals");
    CHECK(r->node == "node-b");
    CHECK(r->uid == "uid-1");
    auto sent = m.creates();
    REQUIRE(sent.size() == 1);
    auto pod = json::parse(sent[0].body).as_object();
    auto& meta = pod.at("metadata").as_object();
    CHECK(meta.at("name") == "app-eval");
    auto& labels = meta.at("labels").as_object();
    CHECK(labels.at("berth-run") == "r1");
    CHECK(labels.at("berth.network") == "none");
    CHECK(labels.at("berth.build-call").as_string().size() == 32);
    auto& spec = pod.at("spec").as_object();
    CHECK(spec.at("restartPolicy") == "Never");
    CHECK(spec.at("shareProcessNamespace") == true);
    CHECK(spec.at("terminationGracePeriodSeconds") == 1);
    CHECK(spec.at("nodeSelector") == json::parse(R"({"disk":"ssd"})"));
    auto& spread = spec.at("topologySpreadConstraints").as_array().at(0).as_object();
    CHECK(spread.at("labelSelector") == json::parse(R"({"matchLabels":{"berth-run":"r1"}})"));
    auto& main = spec.at("containers").as_array().at(0).as_object();
    CHECK(main.at("image").as_string() == "127.0.0.1:5000/app@" + pushed_digest);
    CHECK(main.at("imagePullPolicy") == "IfNotPresent");
    CHECK(main.at("command") == json::parse(R"(["tail","-f","/dev/null"])"));
    CHECK(main.at("env") == json::parse(R"([{"name":"MODE","value":"eval"},{"name":"EMPTY","value":""}])"));
    CHECK(main.at("resources") ==
          json::parse(R"({"requests":{"cpu":"251m","memory":"67108864"},)"
                      R"("limits":{"cpu":"1500m","memory":"536870912","nvidia.com/gpu":"1"}})"));
    // the repository layer was built FROM the evaluation image and pushed
    auto builds = m.builder_engine.requests_to(verb::post, "/build");
    REQUIRE(builds.size() == 1);
    CHECK(builds[0].query("t").value_or("") == "127.0.0.1:5000/app:latest");
}

TEST_CASE("options Kubernetes has no counterpart of are refused before any pod is created") {
    auto refused = [](auto change, std::string_view says) {
        mock_kube_cluster m;
        auto o = m.options();
        change(o);
        auto r = m.run(berth::build_container(*m.cluster, o));
        REQUIRE_FALSE(r.has_value());
        CHECK(r.failure()->reason == berth::build_failure_reason::invalid_options);
        CHECK_MESSAGE(contains(r.failure()->message, says), r.failure()->message);
        CHECK(m.creates().empty());
        CHECK(m.builder_engine.requests_to(verb::post, "/build").empty());
    };
    refused([](k8s::kube_build_options& o) { o.pids_limit = 64; }, "pids_limit");
    refused([](k8s::kube_build_options& o) { o.network_mode = "bridge"; }, "network_mode");
    refused([](k8s::kube_build_options& o) { o.container_name = "Eval_1"; }, "DNS-1123");
    refused([](k8s::kube_build_options& o) { o.env = {"NOVALUE"}; }, "KEY=value");
    refused([](k8s::kube_build_options& o) { o.memory_bytes = -1; }, "negative");
}

TEST_CASE("a pod create answered 500 after the API server made it: found by the call's label and removed") {
    mock_kube_cluster m;
    int listings = 0;
    m.api_server.on(verb::post, pods_path, berth::testing::request_handler([&](const auto& r) {
                        m.token = std::string(json::parse(r.body)
                                                  .as_object()
                                                  .at("metadata")
                                                  .as_object()
                                                  .at("labels")
                                                  .as_object()
                                                  .at("berth.build-call")
                                                  .as_string());
                        return reply::json(500, status_json(500, "InternalError", "etcdserver: request timed out"));
                    }));
    m.api_server.on(verb::get, pods_path, berth::testing::request_handler([&](const auto& r) {
                        auto selector = r.query("labelSelector").value_or("");
                        bool mine = !m.token.empty() && selector == "berth.build-call=" + m.token;
                        if (!mine || ++listings < 2) return reply::json(200, list_of({}));
                        return reply::json(200, list_of(json::array{running_pod("app-eval", m.token)}));
                    }));
    auto r = m.run(berth::build_container(*m.cluster, m.options()));
    REQUIRE_FALSE(r.has_value());
    CHECK(contains(r.failure()->message, "etcdserver: request timed out"));
    CHECK(r.failure()->reason == berth::build_failure_reason::engine_refused);
    CHECK(listings == 2);
    CHECK(m.creates().size() == 1);  // never sent twice
    auto deletes = m.api_server.requests_to(verb::delete_, pods_path + "/app-eval");
    REQUIRE(deletes.size() == 1);
    CHECK(contains(deletes[0].body, "\"gracePeriodSeconds\":0"));
}

TEST_CASE("a pod create refused with a 4xx is not looked up by label; 422 is invalid_options") {
    mock_kube_cluster m;
    m.api_server.on(verb::post, pods_path,
                    reply::json(422, status_json(422, "Invalid", "Pod \"app-eval\" is invalid: metadata.labels")));
    auto r = m.run(berth::build_container(*m.cluster, m.options()));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.failure()->reason == berth::build_failure_reason::invalid_options);
    for (auto& q : m.api_server.requests_to(verb::get, pods_path))
        CHECK_FALSE(contains(q.query("labelSelector").value_or(""), "berth.build-call"));
    CHECK(m.api_server.requests_to(verb::delete_, pods_path + "/app-eval").empty());
}

TEST_CASE("a pod's cgroup figures: v1 and v2 read, anything else in the output ignored") {
    auto v1 = k8s::detail::parse_cgroup_figures("cpu_ns 2500000000\npeak 3035136\noom_kill 0\n");
    CHECK(v1.cpu_seconds == doctest::Approx(2.5));
    CHECK(v1.peak_memory_bytes == 3035136u);
    CHECK_FALSE(v1.oom_killed);
    auto v2 = k8s::detail::parse_cgroup_figures("cpu_us 1500000\npeak 42\noom_kill 2");
    CHECK(v2.cpu_seconds == doctest::Approx(1.5));
    CHECK(v2.oom_killed);
    auto hostile = k8s::detail::parse_cgroup_figures(
        "peak 99999999999999999999999\ncpu_ns -1\noom_kill x\npeak\n\n cpu_ns 5\npeak 7 8\n" + std::string(5000, 'z'));
    CHECK_FALSE(hostile.cpu_seconds);
    CHECK_FALSE(hostile.peak_memory_bytes);
    CHECK_FALSE(hostile.oom_killed);
}
}  // TEST_SUITE("kubernetes build_container (mock API server)")

// --- the real cluster ---

namespace {

struct real_cluster_setup {
    std::string kubeconfig, docker_host, registry;
    std::set<std::string> nodes;
    fs::path script;  // scripts/kubernetes
};

std::optional<real_cluster_setup> real_cluster() {
    auto get = [](const char* name) {
        const char* v = std::getenv(name);
        return std::string(v ? v : "");
    };
    real_cluster_setup s{get("BERTH_K8S_KUBECONFIG"),
                         get("BERTH_TEST_DOCKER_HOST"),
                         get("BERTH_REGISTRY_OPEN"),
                         {},
                         fs::path(BERTH_TEST_DATA_DIR) / "../../scripts/kubernetes"};
    if (s.docker_host.empty()) s.docker_host = get("DOCKER_HOST");
    std::istringstream nodes(get("BERTH_K8S_NODES"));
    for (std::string n; nodes >> n;) s.nodes.insert(n);
    if (s.kubeconfig.empty() || s.docker_host.empty() || s.registry.empty() || s.nodes.size() < 2) {
        if (in_ci())
            FAIL("no cluster: BERTH_K8S_KUBECONFIG, BERTH_K8S_NODES, BERTH_REGISTRY_OPEN and a dockerd are "
                 "needed (scripts/test sets them)");
        MESSAGE("SKIPPED: no cluster, registry or dockerd (BERTH_K8S_KUBECONFIG, BERTH_REGISTRY_OPEN, DOCKER_HOST)");
        return std::nullopt;
    }
    return s;
}

// A cluster object on the real cluster, the run label its evaluations carry, and an evaluation repository; the
// run's pods are removed at the end whatever the test did.
struct real_evaluations {
    explicit real_evaluations(real_cluster_setup s) : setup(std::move(s)) {}
    real_cluster_setup setup;
    std::string run_id = unique_name("k8s-run");
    temp_dir repo;

    std::string run_label() const { return "berth-run=" + run_id; }
    k8s::kube_build_options options(std::string name) const {
        k8s::kube_build_options o;
        o.repo_path = repo.path.string();
        o.image_name = "berth-k8s-eval";
        o.container_name = std::move(name);
        o.mount_name = "work";
        o.labels = {{"berth-run", run_id}};
        o.reserve_memory_bytes = 16 << 20;
        o.reserve_nano_cpus = 10'000'000;
        o.verbose = std::getenv("BERTH_K8S_VERBOSE") != nullptr;
        return o;
    }

    template <class F>
    void run(F body) {
        write_file(repo.path / "Dockerfile", std::string("FROM ") + base_image + "\n");
        write_file(repo.path / "task.txt", "the task\n");
        run_to_completion([](real_evaluations& self, F f) -> asio::awaitable<void> {
            auto ex = co_await asio::this_coro::executor;
            k8s::kubeconfig_load_options load{.path = self.setup.kubeconfig};
            auto api = k8s::kube_client::from_kubeconfig(ex, load);
            auto builder = berth::client::at(ex, self.setup.docker_host);
            co_await ensure_base_image(builder);
            k8s::kube_cluster cluster(api, builder, k8s::kube_cluster_options{.registry = self.setup.registry});
            std::exception_ptr failure;
            try {
                co_await f(cluster);
            } catch (...) { failure = std::current_exception(); }
            const k8s::pod_delete_options now{.grace_period_seconds = 0};  // named: g++ 12 (docs/guide.md)
            co_await api.pods().remove_collection(self.run_label(), now);
            if (failure) std::rethrow_exception(failure);
        }(*this, std::move(body)));
    }
};

// Options named once: g++ 12 destroys an options struct built inside a co_await expression twice (docs/guide.md).
const berth::run_options quiet_run{.verbose = false};
const berth::copy_options quiet_copy{.verbose = false};
const berth::cleanup_options quiet_cleanup{.verbose = false};

void kubernetes_script(const real_cluster_setup& s, const std::string& args) {
    const std::string cmd = s.script.string() + " " + args + " 2>&1";
    REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, cmd);
}

}  // namespace

TEST_SUITE("kubernetes build_container (real cluster)") {
TEST_CASE("20 evaluations on two nodes: exit codes, stdout and stderr apart, copies, logs; cleanup leaves no pod") {
    auto setup = real_cluster();
    if (!setup) return;
    real_evaluations evals(*setup);
    evals.run([&](k8s::kube_cluster& cluster) -> asio::awaitable<void> {
        constexpr int count = 20;
        std::vector<std::optional<k8s::pod_evaluation>> handles(count);
        std::vector<std::string> failures;
        auto ex = co_await asio::this_coro::executor;
        // all at once: the image is built and pushed once, the pods placed by the scheduler, spread by the run label
        int pending = count;
        asio::steady_timer all_started(ex, asio::steady_timer::time_point::max());
        auto start_one = [](k8s::kube_cluster& c, k8s::kube_build_options o, std::optional<k8s::pod_evaluation>& slot,
                            std::vector<std::string>& failed, int& left,
                            asio::steady_timer& done) -> asio::awaitable<void> {
            auto r = co_await berth::build_container(c, std::move(o));
            if (r)
                slot = *r;
            else
                failed.push_back(r.failure()->message);
            if (--left == 0) done.cancel();
        };
        for (int i = 0; i < count; ++i) {
            auto o = evals.options("eval-" + evals.run_id + "-" + std::to_string(i));
            o.topology_spread = {k8s::topology_spread_constraint{}};
            asio::co_spawn(ex, start_one(cluster, std::move(o), handles[i], failures, pending, all_started),
                           asio::detached);
        }
        boost::system::error_code woken;
        co_await all_started.async_wait(asio::redirect_error(asio::use_awaitable, woken));
        REQUIRE_MESSAGE(failures.empty(), failures.front());
        std::set<std::string> nodes_used;
        for (auto& h : handles) nodes_used.insert(h->node);
        CHECK(nodes_used == evals.setup.nodes);

        temp_dir out;
        for (int i = 0; i < count; ++i) {
            auto& h = *handles[i];
            auto r = co_await berth::exec(
                h, berth::argv("sh", "-c", "cat /work/task.txt; echo err-$0 >&2; exit $(($0 % 3))", std::to_string(i)),
                quiet_run);
            CHECK(r.exit_code == i % 3);
            CHECK(r.stdout_text == "the task\n");
            CHECK(r.stderr_text == "err-" + std::to_string(i) + "\n");
            if (i % 3 != 0) CHECK_THROWS_AS(berth::log_container_output(r, {.verbose = false}), berth::script_failed);
            if (i % 5 == 0) {  // copies: in, changed in the pod, out
                write_file(out.path / "in.txt", "payload " + std::to_string(i));
                co_await berth::copy_to_container(h, out.path / "in.txt", "/tmp/deep/dir/in.txt", quiet_copy);
                auto moved = co_await berth::exec(h, berth::argv("sh", "-c", "cd /tmp/deep/dir && cp in.txt out.txt"),
                                                  quiet_run);
                CHECK(moved.exit_code == 0);
                auto dest = out.path / ("out-" + std::to_string(i) + ".txt");
                co_await berth::copy_from_container(h, "/tmp/deep/dir/out.txt", dest, quiet_copy);
                CHECK(read_file(dest) == "payload " + std::to_string(i));
                bool not_found = false;
                try {
                    co_await berth::copy_from_container(h, "/tmp/none", out.path / "none", quiet_copy);
                } catch (const berth::file_not_found&) { not_found = true; }
                CHECK(not_found);
            }
        }
        // env and working directory, through the image's env and sh
        berth::run_options in_dir{.verbose = false};
        in_dir.exec.env = {"GREETING=hi there"};
        in_dir.exec.working_dir = "/work";
        auto where = co_await berth::exec(*handles[0], berth::argv("sh", "-c", "echo \"$GREETING\" $(pwd)"), in_dir);
        CHECK(where.stdout_text == "hi there /work\n");
        CHECK((co_await k8s::evaluation_logs(*handles[0])).empty());  // tail -f /dev/null printed nothing

        // all at once, as a harness ends its evaluations
        std::vector<berth::cleanup_report> reports(count);
        pending = count;
        asio::steady_timer all_clean(ex, asio::steady_timer::time_point::max());
        auto clean_one = [](k8s::pod_evaluation h, berth::cleanup_report& out, int& left,
                            asio::steady_timer& done) -> asio::awaitable<void> {
            const berth::cleanup_options cleanup{.verbose = std::getenv("BERTH_K8S_VERBOSE") != nullptr};
            out = co_await berth::cleanup_container(h, cleanup);
            if (--left == 0) done.cancel();
        };
        for (int i = 0; i < count; ++i)
            asio::co_spawn(ex, clean_one(*handles[i], reports[i], pending, all_clean), asio::detached);
        co_await all_clean.async_wait(asio::redirect_error(asio::use_awaitable, woken));
        for (auto& report : reports)
            CHECK_MESSAGE(report.complete(), (report.problems.empty() ? "" : report.problems.front()));
        CHECK((co_await k8s::list_evaluations(cluster, evals.run_label())).empty());
    });
}

TEST_CASE("more memory than any node has: fails at once with Kubernetes' reason, nothing left") {
    auto setup = real_cluster();
    if (!setup) return;
    real_evaluations evals(*setup);
    evals.run([&](k8s::kube_cluster& cluster) -> asio::awaitable<void> {
        auto o = evals.options("too-big-" + evals.run_id);
        o.reserve_memory_bytes = std::int64_t{1} << 40;  // 1 TiB
        auto r = co_await berth::build_container(cluster, o);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.failure()->reason == berth::build_failure_reason::engine_refused);
        auto* e = failure_error<k8s::pod_start_error>(r.failure());
        REQUIRE(e != nullptr);
        CHECK(e->code() == k8s::kubernetes_errc::unschedulable);
        CHECK(e->reason() == "Unschedulable");
        CHECK_MESSAGE(contains(e->message(), "Insufficient memory"), e->message());
        CHECK(contains(r.failure()->message, "Insufficient memory"));
        CHECK((co_await k8s::list_evaluations(cluster, evals.run_label())).empty());
    });
}

TEST_CASE("GPUs: nvidia.com/gpu asked for, no node has it: the pod starts without (or fails when required)") {
    auto setup = real_cluster();
    if (!setup) return;
    real_evaluations evals(*setup);
    evals.run([&](k8s::kube_cluster& cluster) -> asio::awaitable<void> {
        temp_dir logs;
        auto log = berth::setup_logger(logs.path / "gpu.log");
        auto o = evals.options("genesis-" + evals.run_id);
        o.request_gpus = true;
        o.log = log;
        o.verbose = true;
        auto r = co_await berth::build_container(cluster, o);
        REQUIRE_MESSAGE(r.has_value(), (r.failure() ? r.failure()->message : ""));
        auto text = read_file(logs.path / "gpu.log");
        CHECK(contains(text, "GPU requested: nvidia.com/gpu=1"));
        CHECK_MESSAGE(contains(text, "No node offers nvidia.com/gpu, starting without GPU"), text);
        CHECK(contains(text, "Insufficient nvidia.com/gpu"));
        auto running = co_await cluster.api().pods().get(r->name);
        CHECK_FALSE(contains(json::serialize(running.raw), "nvidia.com/gpu"));
        auto cleaned = co_await berth::cleanup_container(*r, quiet_cleanup);
        CHECK(cleaned.complete());

        o.gpu_required = true;
        o.container_name = "genesis-required-" + evals.run_id;
        auto refused = co_await berth::build_container(cluster, o);
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.failure()->reason == berth::build_failure_reason::gpu_refused);
        CHECK(contains(refused.failure()->message, "Insufficient nvidia.com/gpu"));
        CHECK((co_await k8s::list_evaluations(cluster, evals.run_label())).empty());
    });
}

TEST_CASE("a node's kubelet killed mid-run: its evaluations fail naming the node, the others finish, cleanup says so") {
    auto setup = real_cluster();
    if (!setup) return;
    real_evaluations evals(*setup);
    const std::string lost = *setup->nodes.rbegin(), kept = *setup->nodes.begin();
    struct restart_kubelet {  // the node comes back whatever the test did
        const real_cluster_setup& s;
        std::string node;
        ~restart_kubelet() { std::system((s.script.string() + " kubelet-start " + node + " 2>&1").c_str()); }
    };
    evals.run([&](k8s::kube_cluster& cluster) -> asio::awaitable<void> {
        std::vector<k8s::pod_evaluation> on_lost, on_kept;
        for (int i = 0; i < 4; ++i) {
            const auto& node = i % 2 ? lost : kept;
            auto o = evals.options("node-loss-" + evals.run_id + "-" + std::to_string(i));
            o.node_selector = {{"kubernetes.io/hostname", node}};
            auto r = co_await berth::build_container(cluster, o);
            REQUIRE_MESSAGE(r.has_value(), (r.failure() ? r.failure()->message : ""));
            CHECK(r->node == node);
            (i % 2 ? on_lost : on_kept).push_back(*r);
        }
        restart_kubelet guard{evals.setup, lost};
        kubernetes_script(evals.setup, "kubelet-stop " + lost);
        for (auto& h : on_kept) {
            auto r = co_await berth::exec(h, berth::argv("sh", "-c", "echo fine"), quiet_run);
            CHECK(r.exit_code == 0);
            CHECK(r.stdout_text == "fine\n");
        }
        for (auto& h : on_lost) {
            std::optional<berth::node_identity> named;
            try {
                co_await berth::exec(h, berth::argv("true"), quiet_run);
            } catch (const berth::node_unreachable_error& e) {
                named = e.node();
                CHECK_MESSAGE(contains(e.what(), "error dialing backend"), e.what());
            }
            REQUIRE(named);
            CHECK(named->hostname == lost);
            temp_dir t;
            write_file(t.path / "f", "x");
            bool copy_named = false;
            try {
                co_await berth::copy_to_container(h, t.path / "f", "/tmp/f", quiet_copy);
            } catch (const berth::node_unreachable_error& e) { copy_named = e.node().hostname == lost; }
            CHECK(copy_named);
        }
        // the run's cleanup: the kept node confirms its pods stopped, the lost one cannot
        k8s::evaluations_cleanup_options quick;
        quick.confirm_limit = std::chrono::seconds(8);
        auto report = co_await k8s::cleanup_evaluations(cluster, evals.run_label(), quick);
        CHECK(report.pods_removed == on_kept.size());
        CHECK(report.unconfirmed.size() == on_lost.size());
        REQUIRE(report.unreachable.size() == 1);
        CHECK(report.unreachable[0].hostname == lost);
        CHECK_FALSE(report.complete());
        CHECK((co_await k8s::list_evaluations(cluster, evals.run_label())).empty());
    });
}

TEST_CASE("exec on a pod: a time limit kills the command, an OOM kill is told from a SIGKILL, figures read") {
    auto setup = real_cluster();
    if (!setup) return;
    real_evaluations evals(*setup);
    evals.run([&](k8s::kube_cluster& cluster) -> asio::awaitable<void> {
        auto o = evals.options("outcomes-" + evals.run_id);
        o.memory_bytes = 48 << 20;
        auto r = co_await berth::build_container(cluster, o);
        REQUIRE_MESSAGE(r.has_value(), (r.failure() ? r.failure()->message : ""));

        berth::run_options limited{.verbose = false};
        limited.timeout = std::chrono::seconds(1);
        std::optional<berth::exec_result> partial;
        try {
            co_await berth::exec(*r, berth::argv("sh", "-c", "echo started; sleep 60"), limited);
        } catch (const berth::exec_interrupted& e) { partial = e.partial(); }
        REQUIRE(partial);
        CHECK(partial->outcome.end == berth::exec_end::timed_out);
        CHECK_MESSAGE(partial->outcome.process_killed, partial->outcome.detail);
        CHECK(partial->output == "started\n");
        auto left = co_await berth::exec(*r, berth::argv("sh", "-c", "ps | grep -c 'sleep 6[0]' || true"), quiet_run);
        CHECK(left.stdout_text == "0\n");

        auto killed = co_await berth::exec(*r, berth::argv("sh", "-c", "kill -9 $$"), quiet_run);
        CHECK(killed.exit_code == 137);
        CHECK(killed.outcome.end == berth::exec_end::signalled);
        CHECK(killed.outcome.signal == 9);

        berth::run_options measured{.verbose = false};
        measured.measure_usage = true;
        auto hog = co_await berth::exec(*r, berth::argv("sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a)"),
                                        measured);
        CHECK(hog.exit_code == 137);
        CHECK(hog.outcome.end == berth::exec_end::oom_killed);
        REQUIRE(hog.usage.container_peak_memory_bytes);
        CHECK(*hog.usage.container_peak_memory_bytes > (32u << 20));
        CHECK(*hog.usage.container_peak_memory_bytes <= (48u << 20));
        REQUIRE(hog.usage.container_cpu_seconds);
        CHECK(*hog.usage.container_cpu_seconds > 0);
    });
}
}  // TEST_SUITE("kubernetes build_container (real cluster)")
