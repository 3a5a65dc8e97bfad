// berth on a Docker Swarm cluster: evaluations placed by Swarm across the three private dockerds scripts/swarm starts
// on 127.0.0.1-3 (it prints the BERTH_SWARM_* variables read here), each node reached over mutual TLS at the
// address of its `berth.engine` label. The mock engine only shows what a real cluster cannot: the exact service
// body, a malformed task reply, a node label that is no address.
#include "support/engines.hpp"

#include <berth/cluster.hpp>
#include <berth/detail/poll.hpp>
#include <berth/testing/mock_engine.hpp>
#include <berth/transport/tls.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <type_traits>

using namespace berth_test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;
using berth::testing::mock_engine;
using reply = berth::testing::reply;
using verb = boost::beast::http::verb;

namespace {

// --- the mock cluster: a manager and one node engine, each a mock_engine ---

const std::string container_id(64, 'c');
const std::string pushed_digest = "sha256:" + std::string(64, 'd');

struct mock_cluster {
    asio::io_context ioc;
    mock_engine manager{ioc.get_executor(), "mock://manager"};
    mock_engine node{ioc.get_executor(), "mock://node2"};
    std::vector<std::string> connected;  // the endpoints the cluster asked to reach
    std::optional<berth::basic_cluster<mock_engine>> cluster;
    temp_dir repo;

    explicit mock_cluster(std::string engine_label = "tcp://127.0.0.2:2376") {
        write_file(repo / "Dockerfile", "FROM scratch\n");
        manager.on(verb::get, "/images/app/json", reply::json(200, R"({"Id":"sha256:base"})"));
        manager.on(verb::post, "/build",
                   reply::chunked(200,
                                  {R"({"aux":{"ID":"sha256:layer"}})"
                                   "\n"},
                                  "application/json"));
        manager.on(verb::post, "/images/127.0.0.1:5000/app/push",
                   reply::chunked(200,
                                  {R"({"status":"latest: digest: )" + pushed_digest +
                                   R"( size: 527"})"
                                   "\n"},
                                  "application/json"));
        manager.on(verb::delete_, "/services/app-eval", reply::error(404, "service app-eval not found"));
        manager.on(verb::post, "/services/create", reply::json(201, R"({"ID":"svc1"})"));
        manager.on(verb::delete_, "/services/svc1", reply::no_content(200));
        manager.on(verb::get, "/tasks", running_task(container_id));
        json::object node2{
            {"ID", "node2"},
            {"Version", {{"Index", 7}}},
            {"Spec", {{"Role", "worker"}, {"Availability", "active"}, {"Labels", {{"berth.engine", engine_label}}}}},
            {"Description", {{"Hostname", "n2"}}},
            {"Status", {{"State", "ready"}}}};
        manager.on(verb::get, "/nodes/node2", reply::json(200, json::value(node2)));
        node.add_container(container_id);
        node.on(verb::get, "/containers/" + container_id + "/top", reply::json(200, R"({"Processes":[["1"],["2"]]})"));
        berth::cluster_options options;
        options.registry = "127.0.0.1:5000";
        cluster.emplace(berth::basic_client<mock_engine>(manager), options,
                        [this](const berth::engine_endpoint& ep, const berth::swarm_node&) {
                            connected.push_back(ep.to_string());
                            return node;
                        });
    }

    static reply running_task(const std::string& container) {
        json::array tasks{json::object{
            {"ID", "task1"},
            {"ServiceID", "svc1"},
            {"NodeID", "node2"},
            {"DesiredState", "running"},
            {"Status",
             {{"State", "running"}, {"Message", "started"}, {"ContainerStatus", {{"ContainerID", container}}}}}}};
        return reply::json(200, json::value(tasks));
    }

    berth::cluster_build_options options() const {
        berth::cluster_build_options o;
        o.repo_path = repo.path.string();
        o.container_name = "app-eval";
        o.mount_name = "hyperagents";
        o.verbose = false;
        return o;
    }

    // run_on_mock with this suite's time limit.
    template <class T>
    T run(asio::awaitable<T> op) {
        return berth_test::run_on_mock(ioc, std::move(op), 30s);
    }

    json::object create_body() {
        auto sent = manager.requests_to(verb::post, "/services/create");
        REQUIRE(sent.size() == 1);
        return json::parse(sent[0].body).as_object();
    }
    bool service_removed() { return !manager.requests_to(verb::delete_, "/services/svc1").empty(); }
};

}  // namespace

TEST_SUITE("cluster (mock engine)") {
TEST_CASE("the service build_container creates: digest-pinned image, GPU as a generic resource, placement, limits") {
    mock_cluster m;
    auto o = m.options();
    o.request_gpus = true;
    o.memory_bytes = 512 << 20;
    o.nano_cpus = 500'000'000;
    o.pids_limit = 64;
    o.reserve_memory_bytes = 256 << 20;
    o.reserve_nano_cpus = 250'000'000;
    o.constraints = {"node.labels.zone==a"};
    o.spread = {"node.labels.rack"};
    o.labels = {{"berth.run", "r1"}};
    o.env = {"A=1"};
    auto box = m.run(berth::build_container(*m.cluster, o));
    REQUIRE(box.has_value());
    CHECK(box->id == container_id);
    CHECK(box->node.id == "node2");
    CHECK(box->node.hostname == "n2");
    CHECK(box->node.address == "tcp://127.0.0.2:2376");
    CHECK(box->owner == &*m.cluster);
    CHECK(box->service_id == "svc1");
    CHECK(m.connected == std::vector<std::string>{"tcp://127.0.0.2:2376"});

    auto expected = json::parse(R"({
          "Name": "app-eval",
          "Labels": {"berth.run": "r1", "berth.build-call": "TOKEN"},
          "TaskTemplate": {
            "ContainerSpec": {"Image": "127.0.0.1:5000/app@)" +
                                pushed_digest + R"(",
                              "Command": ["tail", "-f", "/dev/null"], "Env": ["A=1"], "Labels": {"berth.run": "r1"},
                              "Init": true, "TTY": true, "OpenStdin": true},
            "Resources": {"Limits": {"NanoCPUs": 500000000, "MemoryBytes": 536870912, "Pids": 64},
                          "Reservations": {"NanoCPUs": 250000000, "MemoryBytes": 268435456,
                                           "GenericResources": [{"DiscreteResourceSpec": {"Kind": "NVIDIA-GPU", "Value": 1}}]}},
            "RestartPolicy": {"Condition": "none"},
            "Placement": {"Constraints": ["node.labels.zone==a"],
                          "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.rack"}}]}},
          "Mode": {"Replicated": {"Replicas": 1}}})")
                        .as_object();
    auto body = m.create_body();
    REQUIRE(body.contains("Labels"));
    CHECK(body["Labels"].as_object()["berth.build-call"].as_string().size() == 32);
    expected["Labels"].as_object()["berth.build-call"] = body["Labels"].as_object()["berth.build-call"];
    CHECK_MESSAGE(body == expected, json::serialize(body));  // (object equality: key order aside)

    // The repository layer: FROM the evaluation image, the tree copied to /<mount_name>, pushed to the registry.
    auto builds = m.manager.requests_to(verb::post, "/build");
    REQUIRE(builds.size() == 1);
    CHECK(builds[0].query("t") == "127.0.0.1:5000/app:latest");
    CHECK(builds[0].query("dockerfile") == ".berth-cluster.Dockerfile");
    CHECK(contains(builds[0].body, "FROM app\nCOPY repo /hyperagents\n"));
    CHECK(m.manager.requests_to(verb::post, "/images/127.0.0.1:5000/app/push").size() == 1);
}

TEST_CASE("a task's state is asked often while one waits, less often when many wait or the wait is long") {
    using berth::detail::task_poll_interval;
    CHECK(task_poll_interval(1, 0s) == 10ms);
    CHECK(task_poll_interval(1, 1500ms) == 10ms);
    CHECK(task_poll_interval(1, 3s) == 100ms);
    CHECK(task_poll_interval(40, 0s) == 200ms);  // 40 waiting: about 200 lists a second in all
    CHECK(task_poll_interval(1000, 0s) == 500ms);
}

TEST_CASE("cleanup_evaluations: a container Swarm is already removing (409) is left to Swarm, not an error") {
    mock_cluster m;
    m.manager.on(verb::get, "/services", reply::json(200, "[]"));
    json::object node2{{"ID", "node2"},
                       {"Spec", {{"Role", "worker"}, {"Availability", "active"}}},
                       {"Description", {{"Hostname", "n2"}}},
                       {"Status", {{"State", "ready"}}}};
    m.manager.on(verb::get, "/nodes", reply::json(200, json::value(json::array{node2})));
    json::array left{
        json::object{{"Id", container_id}, {"Names", {"/app-eval.1.task1"}}, {"Labels", {{"berth.run", "r1"}}}}};
    m.node.on(verb::get, "/containers/json", reply::json(200, json::value(left)));
    m.node.on(verb::delete_, "/containers/" + container_id,
              reply::error(409, "removal of container " + container_id + " is already in progress"));
    auto report = m.run(berth::cleanup_evaluations(*m.cluster, "berth.run=r1"));
    CHECK(m.node.requests_to(verb::delete_, "/containers/" + container_id).size() == 1);
    CHECK(report.containers_removed == 0);
    CHECK(report.services_removed == 0);
    CHECK(report.unreachable.empty());
}

TEST_CASE("a GPU no node offers: the evaluation starts without one, unless GPUs are required") {
    for (bool required : {false, true}) {
        CAPTURE(required);
        mock_cluster m;
        json::array pending{json::object{{"ID", "task0"},
                                         {"ServiceID", "svc1"},
                                         {"DesiredState", "running"},
                                         {"Status",
                                          {{"State", "pending"},
                                           {"Message", "pending task scheduling"},
                                           {"Err", "no suitable node (insufficient resources on 3 nodes)"}}}}};
        m.manager.once(verb::get, "/tasks", reply::json(200, json::value(pending)));
        auto o = m.options();
        o.request_gpus = true;
        o.gpu_required = required;
        auto box = m.run(berth::build_container(*m.cluster, o));
        auto creates = m.manager.requests_to(verb::post, "/services/create");
        if (required) {
            REQUIRE_FALSE(box.has_value());
            CHECK(contains(box.failure()->message, "insufficient resources on 3 nodes"));
            CHECK(creates.size() == 1);
        } else {
            REQUIRE(box.has_value());
            REQUIRE(creates.size() == 2);
            CHECK(contains(creates[0].body, "NVIDIA-GPU"));
            CHECK_FALSE(contains(creates[1].body, "NVIDIA-GPU"));
        }
        CHECK(m.service_removed());  // the refused service (and, when required, the only one) is gone
    }
}

TEST_CASE("a malformed task reply is a protocol error, and the service is removed") {
    SUBCASE("a container id that is not an id") {
        mock_cluster m;
        m.manager.on(verb::get, "/tasks", mock_cluster::running_task("../../images/x"));
        auto box = m.run(berth::build_container(*m.cluster, m.options()));
        REQUIRE_FALSE(box.has_value());
        CHECK(box.failure()->reason == berth::build_failure_reason::protocol_error);
        CHECK(contains(box.failure()->message, "ContainerID"));
        CHECK(m.service_removed());
        CHECK(m.connected.empty());  // nothing from the reply was used to reach anything
    }
    SUBCASE("a task without a status") {
        mock_cluster m;
        m.manager.on(verb::get, "/tasks", reply::json(200, R"([{"ID":"task1","ServiceID":"svc1"}])"));
        auto box = m.run(berth::build_container(*m.cluster, m.options()));
        REQUIRE_FALSE(box.has_value());
        CHECK(box.failure()->reason == berth::build_failure_reason::protocol_error);
        CHECK(m.service_removed());
    }
}

TEST_CASE("a node label that is not a tcp:// address is refused, naming the node; nothing is reached") {
    for (std::string label :
         {"unix:///var/run/docker.sock", "ssh://-oProxyCommand=x", "tcp://evil host:1", "127.0.0.2:2376"}) {
        CAPTURE(label);
        mock_cluster m(label);
        auto box = m.run(berth::build_container(*m.cluster, m.options()));
        REQUIRE_FALSE(box.has_value());
        auto* e = failure_error<berth::node_address_error>(box.failure());
        REQUIRE(e != nullptr);
        CHECK(e->node().id == "node2");
        CHECK(contains(e->what(), "n2"));
        CHECK(m.connected.empty());
        CHECK(m.service_removed());
    }
}

TEST_CASE("a node that refuses connections: operations on its handle fail with an error naming the node") {
    mock_cluster m;
    auto box = m.run(berth::build_container(*m.cluster, m.options()));
    REQUIRE(box.has_value());
    m.node.refuse_connections();
    box->engine().close_idle_connections();
    try {
        m.run(berth::exec(*box, berth::argv("true")));
        FAIL("the exec succeeded");
    } catch (const berth::node_unreachable_error& e) {
        CHECK(e.node().id == "node2");
        CHECK(e.node().hostname == "n2");
        CHECK(e.node().address == "tcp://127.0.0.2:2376");
        CHECK(e.code() == asio::error::connection_refused);
    }
}

TEST_CASE(
    "cleanup_container removes the handle's service, then its container on its node, and waits until it is gone") {
    mock_cluster m;
    auto box = m.run(berth::build_container(*m.cluster, m.options()));
    REQUIRE(box.has_value());
    std::string json_path = "/containers/" + container_id + "/json";
    auto inspected = m.node.requests_to(verb::get, json_path).size();
    m.node.once(verb::get, json_path, reply::error(404, "No such container"));
    auto report = m.run(berth::cleanup_container(*box, {.verbose = false}));
    CHECK(m.service_removed());
    CHECK(m.node.requests_to(verb::get, json_path).size() == inspected + 1);
    CHECK(m.node.requests_to(verb::delete_, "/containers/" + container_id).size() == 1);
    CHECK(report.service_removed == true);
    CHECK(report.container_removed);
    CHECK(report.complete());
    CHECK(report.problems.empty());
}

TEST_CASE(
    "cleanup_container on a handle whose node is down reports the service removed, the container not, and the node") {
    mock_cluster m;
    auto box = m.run(berth::build_container(*m.cluster, m.options()));
    REQUIRE(box.has_value());
    m.node.refuse_connections();
    box->engine().close_idle_connections();
    auto report = m.run(berth::cleanup_container(*box, {.verbose = false}));
    CHECK(m.service_removed());
    CHECK(report.service_removed == true);
    CHECK_FALSE(report.container_removed);
    CHECK_FALSE(report.complete());
    REQUIRE(report.problems.size() == 1);
    CHECK(contains(report.problems[0], "n2"));
    REQUIRE(report.error);
    try {
        std::rethrow_exception(report.error);
    } catch (const berth::node_unreachable_error& e) {
        CHECK(e.node().id == "node2");
        CHECK(e.node().hostname == "n2");
        CHECK(e.code() == asio::error::connection_refused);
    } catch (const std::exception& e) { FAIL("not a node_unreachable_error: " << std::string(e.what())); }
}

TEST_CASE(
    "a service create answered 500 after the manager made it: the service is found by the call's label and removed") {
    // Swarm answers 500 when its raft proposal times out, and may commit the proposal afterwards: here the
    // service appears only on the second listing.
    mock_cluster m;
    std::string token;
    m.manager.on(verb::post, "/services/create", berth::testing::request_handler([&](const auto& r) {
                     token = std::string(
                         json::parse(r.body).as_object().at("Labels").as_object().at("berth.build-call").as_string());
                     return reply::error(500, "rpc error: code = DeadlineExceeded desc = context deadline exceeded");
                 }));
    int listings = 0;
    m.manager.on(verb::get, "/services", berth::testing::request_handler([&](const auto& r) {
                     auto filters = r.query("filters").value_or("");
                     bool mine = !token.empty() && contains(filters, "berth.build-call=" + token);
                     if (!mine || ++listings < 2) return reply::json(200, "[]");
                     json::object svc{{"ID", "svc7"},
                                      {"Spec", {{"Name", "app-eval"}, {"Labels", {{"berth.build-call", token}}}}}};
                     return reply::json(200, json::value(json::array{svc}));
                 }));
    m.manager.on(verb::delete_, "/services/svc7", reply::no_content(200));
    auto box = m.run(berth::build_container(*m.cluster, m.options()));
    REQUIRE_FALSE(box.has_value());
    CHECK(contains(box.failure()->message, "context deadline exceeded"));
    CHECK(listings == 2);
    CHECK(m.manager.requests_to(verb::delete_, "/services/svc7").size() == 1);
}

TEST_CASE("a service create refused with a 4xx is not looked up by label") {
    mock_cluster m;
    m.manager.on(verb::post, "/services/create",
                 reply::error(400, "rpc error: code = InvalidArgument desc = bad spec"));
    auto box = m.run(berth::build_container(*m.cluster, m.options()));
    REQUIRE_FALSE(box.has_value());
    CHECK(box.failure()->reason == berth::build_failure_reason::engine_refused);
    CHECK(m.manager.requests_to(verb::get, "/services").empty());
    CHECK(m.manager.requests_to(verb::delete_, "/services/*").size() == 1);  // only the old-name removal
}
}  // TEST_SUITE("cluster (mock engine)")

// --- the real cluster ---

namespace {

struct swarm_setup {
    std::string manager;
    fs::path certs;
    std::string registry;
    std::string base_image;
    std::map<std::string, std::string> socket_of;  // node engine address (tcp://...) -> its unix socket
    fs::path script;
};

std::optional<swarm_setup> swarm() {
    auto get = [](const std::string& name) {
        const char* v = std::getenv(name.c_str());
        return std::string(v ? v : "");
    };
    swarm_setup s{get("BERTH_SWARM_MANAGER"),
                  get("BERTH_SWARM_CERTS"),
                  get("BERTH_SWARM_REGISTRY"),
                  get("BERTH_SWARM_BASE_IMAGE"),
                  {},
                  fs::path(BERTH_TEST_DATA_DIR) / ".." / ".." / "scripts" / "swarm"};
    if (s.manager.empty() || s.registry.empty()) {
        const std::string why = "no swarm: run `eval \"$(scripts/swarm start)\"`";
        if (in_ci()) FAIL(why);
        MESSAGE("SKIPPED: " << why);
        return std::nullopt;
    }
    for (int n = 1; n <= 3; ++n)
        s.socket_of[get("BERTH_SWARM_NODE" + std::to_string(n))] = get("BERTH_SWARM_NODE" + std::to_string(n) +
                                                                       "_SOCKET");
    return s;
}

berth::engine_endpoint manager_endpoint(const swarm_setup& s) {
    berth::engine_endpoint ep;
    ep.address = berth::parse_docker_host(s.manager);
    ep.tls.enabled = true;
    ep.tls.ca_file = (s.certs / "ca.pem").string();
    ep.tls.cert_file = (s.certs / "cert.pem").string();
    ep.tls.key_file = (s.certs / "key.pem").string();
    return ep;
}

berth::cluster_options cluster_options(const swarm_setup& s) {
    berth::cluster_options o;
    o.registry = s.registry;
    return o;
}

// A repository: its Dockerfile builds on the cluster's base image; marker.txt tells it apart inside a container.
struct eval_repo {
    temp_dir dir;
    std::string marker;
    eval_repo(const swarm_setup& s, std::string m) : marker(std::move(m)) {
        write_file(dir / "Dockerfile", "FROM " + s.base_image + "\n");
        write_file(dir / "marker.txt", marker);
    }
};

// One evaluation's outcome, as the test sees it.
struct outcome {
    bool ok = false;
    std::string node_id, node_hostname, node_address, container_id, error;
    std::chrono::milliseconds build_time{}, cleanup_time{};
    std::optional<berth::node_identity> unreachable;  // set when an operation failed with node_unreachable_error
    std::optional<berth::cleanup_report> cleanup;     // what cleanup_container reported, when it ran
};

struct evaluation_plan {
    const swarm_setup* setup;
    const eval_repo* repo;
    std::string run_label;  // berth.run=<value>
    std::string name;
    std::vector<std::string> constraints;
    fs::path work;
};

// Checks through the node's unix socket (not the TLS client berth used) that the container is there, on that node.
asio::awaitable<std::string> check_on_node_socket(std::string socket, std::string id) {
    auto direct = berth::client::at(co_await asio::this_coro::executor, socket);
    auto info = co_await direct.containers().inspect(id);
    co_return info.id;
}

// Build, copy in, exec, copy out. Cleanup is left to the caller (so it can look at the container first).
asio::awaitable<outcome> evaluate(berth::cluster& cluster, const evaluation_plan& plan,
                                  std::optional<berth::cluster::container_type>& handle) {
    outcome out;
    berth::cluster_build_options o;
    o.repo_path = plan.repo->dir.path.string();
    o.image_name = "berth-test-cluster-" + std::to_string(::getpid());
    o.container_name = plan.name;
    o.labels = {{"berth.run", plan.run_label}};
    o.constraints = plan.constraints;
    o.network_mode = "none";
    o.mount_name = "hyperagents";
    o.verbose = false;
    auto started = std::chrono::steady_clock::now();
    auto built = co_await berth::build_container(cluster, o);
    out.build_time = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    if (!built) {
        out.error = built.failure()->message;
        co_return out;
    }
    handle = *built;
    auto& node = built->node;
    out.node_id = node.id;
    out.node_hostname = node.hostname;
    out.node_address = node.address;
    out.container_id = built->id;
    try {
        const auto task = plan.work / plan.name;
        write_file(task / "run.sh", "cat /hyperagents/marker.txt > /task/result.txt; echo " + plan.name +
                                        " >> /task/result.txt; cat /proc/net/dev | tail -n +3 | cut -d: -f1\n");
        berth::copy_options copy;
        copy.verbose = false;
        co_await berth::copy_to_container(*built, task, "/task", copy);
        berth::run_options run;
        run.timeout = 60s;
        auto r = co_await berth::exec(*built, berth::argv("sh", "/task/run.sh"), run);
        if (r.exit_code != 0)
            throw std::runtime_error("exit " + std::to_string(r.exit_code.value_or(-1)) + ": " + r.output);
        if (r.stdout_text.find_first_not_of(" \r\n") == std::string::npos || contains(r.stdout_text, "eth"))
            throw std::runtime_error("network interfaces other than lo: " + r.stdout_text);
        co_await berth::copy_from_container(*built, "/task/result.txt", plan.work / (plan.name + ".txt"), copy);
        auto result = read_file(plan.work / (plan.name + ".txt"));
        if (result != plan.repo->marker + plan.name + "\n") throw std::runtime_error("result: " + result);
        out.ok = true;
    } catch (const berth::node_unreachable_error& e) {
        out.unreachable = e.node();
        out.error = e.what();
    } catch (const std::exception& e) { out.error = e.what(); }
    co_return out;
}

// Runs the plans `concurrency` at a time on one io_context; each evaluation is checked on its node's own socket
// before cleanup_container when `check_socket`.
std::vector<outcome> run_evaluations(const swarm_setup& s, std::vector<evaluation_plan> plans, int concurrency,
                                     bool check_socket = true) {
    asio::io_context io;
    berth::cluster cluster = berth::cluster::at(io.get_executor(), manager_endpoint(s), cluster_options(s));
    std::vector<outcome> outcomes(plans.size());
    std::size_t next = 0;
    auto worker = [&]() -> asio::awaitable<void> {
        while (next < plans.size()) {
            auto i = next++;
            std::optional<berth::cluster::container_type> handle;
            outcomes[i] = co_await evaluate(cluster, plans[i], handle);
            if (outcomes[i].ok && check_socket) {
                try {
                    auto found = co_await check_on_node_socket(s.socket_of.at(outcomes[i].node_address), handle->id);
                    if (found != handle->id) throw std::runtime_error("another container");
                } catch (const std::exception& e) {
                    outcomes[i].ok = false;
                    outcomes[i].error = std::string("not on its node's own engine: ") + e.what();
                }
            }
            auto started = std::chrono::steady_clock::now();
            if (handle) outcomes[i].cleanup = co_await berth::cleanup_container(*handle, {.verbose = false});
            outcomes[i].cleanup_time = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - started);
        }
    };
    for (int w = 0; w < concurrency; ++w)
        asio::co_spawn(io, worker(), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    io.run();
    return outcomes;
}

std::vector<evaluation_plan> plans(const swarm_setup& s, const eval_repo& repo, const std::string& run, int n,
                                   const fs::path& work, std::vector<std::string> constraints = {}) {
    std::vector<evaluation_plan> out;
    for (int i = 0; i < n; ++i)
        out.push_back({&s, &repo, run, unique_name("cluster-" + std::to_string(i)), constraints, work});
    return out;
}

// Nothing of the run left: no service with its label on the manager, no task of it, no container with its label
// on any node's engine (asked through each node's unix socket). Polled, within a bound, because Swarm removes
// containers after their services.
asio::awaitable<std::string> leftovers(const swarm_setup& s, std::string run_label) {
    auto ex = co_await asio::this_coro::executor;
    auto manager = berth::client::at(ex, manager_endpoint(s));
    auto& swarm_calls = manager.swarm();
    std::string found;
    for (int attempt = 0; attempt < 300; ++attempt) {
        found.clear();
        berth::swarm_filters by_label{{"label", {"berth.run=" + run_label}}};
        auto services = co_await swarm_calls.list_services(by_label);
        for (auto& svc : services) found += "service " + svc.name + "; ";
        auto tasks = co_await swarm_calls.list_tasks();  // a task carries its container's labels in its spec
        for (auto& t : tasks) {
            auto* labels = t.raw.if_contains("Spec") ? t.raw.at("Spec").as_object().if_contains("ContainerSpec")
                                                     : nullptr;
            labels = labels ? labels->as_object().if_contains("Labels") : nullptr;
            auto* run = labels ? labels->as_object().if_contains("berth.run") : nullptr;
            if (run && run->is_string() && run->as_string() == run_label)
                found += "task " + t.id + " " + t.state + "; ";
        }
        for (auto& [address, socket] : s.socket_of) {
            auto node = berth::client::at(ex, socket);
            berth::container_list_options mine;
            mine.all = true;
            mine.filters["label"] = {"berth.run=" + run_label};
            auto left = co_await node.containers().list(mine);
            for (auto& c : left) found += "container " + c.id.substr(0, 12) + " on " + address + "; ";
        }
        if (found.empty()) co_return found;
        asio::steady_timer t(ex, 200ms);
        co_await t.async_wait(asio::use_awaitable);
    }
    co_return found;
}

// The images a test made (the evaluation image on the manager, its registry name on every node that ran a task),
// removed through each node's socket when the test ends.
struct image_guard {
    const swarm_setup& s;
    ~image_guard() {
        const std::string name = "berth-test-cluster-" + std::to_string(::getpid());
        for (auto& node_socket : s.socket_of)
            for (const std::string& image : {name, s.registry + "/" + name}) {
                const std::string& socket = node_socket.second;
                try {
                    run_to_completion([&]() -> asio::awaitable<void> {
                        auto node = berth::client::at(co_await asio::this_coro::executor, socket);
                        co_await node.images().remove(image, {.force = true});
                    }());
                } catch (const std::exception&) {
                    // not on this node
                }
            }
    }
};

std::string node_id_of_host(const swarm_setup& s, const std::string& hostname) {
    return run_to_completion([&]() -> asio::awaitable<std::string> {
        auto manager = berth::client::at(co_await asio::this_coro::executor, manager_endpoint(s));
        auto nodes = co_await manager.swarm().list_nodes();
        for (auto& n : nodes)
            if (n.hostname == hostname) co_return n.id;
        co_return std::string();
    }());
}

void set_availability(const swarm_setup& s, const std::string& node_id, const std::string& availability) {
    run_to_completion([&]() -> asio::awaitable<void> {
        auto manager = berth::client::at(co_await asio::this_coro::executor, manager_endpoint(s));
        co_await manager.swarm().set_node_availability(node_id, availability);
    }());
}

// Removes a service by name through the manager at scope exit, whatever the test did.
struct service_guard {
    const swarm_setup& s;
    std::string name;
    ~service_guard() {
        try {
            run_to_completion([&]() -> asio::awaitable<void> {
                auto manager = berth::client::at(co_await asio::this_coro::executor, manager_endpoint(s));
                co_await manager.swarm().remove_service(name);
            }());
        } catch (const std::exception&) {
            // removed by the test already
        }
    }
};

// A service of the test's own on the shared swarm: its running task inspected, the service's logs (stdout and
// stderr apart), the task's logs with details, an update of the service's labels (a stale version refused) and a
// rollback to the spec before it.
asio::awaitable<void> service_update_and_logs(const swarm_setup& s, const std::string& name) {
    auto manager = berth::client::at(co_await asio::this_coro::executor, manager_endpoint(s));
    berth::service_spec spec;
    spec.name = name;
    spec.labels = {{"berth.test", name}};
    spec.container.image = s.base_image;
    spec.container.command = {"sh", "-c", "echo to-stdout; echo to-stderr >&2; exec sleep 3600"};
    auto created = co_await manager.swarm().create_service(spec);

    const berth::swarm_filters of_service{{"service", {created.id}}};
    const berth::detail::poll_policy every_second{.max = 1s};
    auto running = co_await berth::detail::poll_until(
        [&]() -> asio::awaitable<std::optional<berth::swarm_task>> {
            for (auto& t : co_await manager.swarm().list_tasks(of_service))
                if (t.state == "running") co_return t;
            co_return std::nullopt;
        },
        every_second, std::chrono::steady_clock::now() + 180s);
    REQUIRE_MESSAGE(running, "the service's task did not run");
    auto task = co_await manager.swarm().inspect_task(running->id);
    CHECK(task.id == running->id);
    CHECK(task.service_id == created.id);
    CHECK(task.node_id == running->node_id);
    CHECK(task.state == "running");
    CHECK(task.desired_state == "running");
    CHECK(task.container_id == running->container_id);

    // The lines reach the node's log driver once the task runs: asked again until both are there.
    berth::collected_output service_output;
    const bool both = co_await berth::detail::poll_until(
        [&]() -> asio::awaitable<bool> {
            berth::collected_output got;
            berth::service_logs_options options;
            options.on_output = std::ref(got);
            co_await manager.swarm().service_logs(name, options);
            service_output = got;
            co_return contains(got.stdout_text, "to-stdout") && contains(got.stderr_text, "to-stderr");
        },
        every_second, std::chrono::steady_clock::now() + 120s);
    CAPTURE(service_output.merged);
    CHECK(both);
    CHECK(service_output.stdout_text == "to-stdout\n");
    CHECK(service_output.stderr_text == "to-stderr\n");

    berth::collected_output task_output;
    berth::task_logs_options detailed;
    detailed.details = true;
    detailed.stderr_ = false;
    detailed.on_output = std::ref(task_output);
    co_await manager.swarm().task_logs(task.id, detailed);
    CAPTURE(task_output.merged);
    CHECK(contains(task_output.stdout_text, "com.docker.swarm.task.id=" + task.id));
    CHECK(contains(task_output.stdout_text, "to-stdout"));
    CHECK_FALSE(contains(task_output.merged, "to-stderr"));
    CHECK(task_output.stderr_text.empty());

    auto before = co_await manager.swarm().inspect_service(created.id);
    auto changed = before.spec;
    changed["Labels"].as_object()["berth.updated"] = "1";
    berth::service_update_options update{.version = before.version, .spec = changed, .registry_auth_from = "spec"};
    auto result = co_await manager.swarm().update_service(created.id, update);
    CAPTURE(result.warnings.size());
    CHECK(result.warnings.empty());
    auto after = co_await manager.swarm().inspect_service(created.id);
    CHECK(after.version > before.version);
    CHECK(after.labels.at("berth.updated") == "1");
    try {
        co_await manager.swarm().update_service(created.id, update);
        FAIL_CHECK("an update at a stale version was accepted");
    } catch (const berth::engine_error& e) { CHECK(contains(e.message(), "out of sequence")); }

    berth::service_update_options rollback{
        .version = after.version, .spec = after.spec, .registry_auth_from = "previous-spec", .rollback = "previous"};
    co_await manager.swarm().update_service(created.id, rollback);
    auto rolled_back = co_await manager.swarm().inspect_service(created.id);
    CHECK(rolled_back.version > after.version);
    CHECK_FALSE(rolled_back.labels.contains("berth.updated"));
    CHECK(rolled_back.labels.at("berth.test") == name);
    co_await manager.swarm().remove_service(created.id);
}


// Removes a secret or config by name when the test ends, whatever it did.
template <class Api>
struct swarm_object_guard {
    const swarm_setup& s;
    std::string name;
    Api& (berth::client::*api)();
    ~swarm_object_guard() {
        try {
            run_to_completion([&]() -> asio::awaitable<void> {
                auto manager = berth::client::at(co_await asio::this_coro::executor, manager_endpoint(s));
                auto& objects = (manager.*api)();
                if (co_await objects.exists(name)) co_await objects.remove(name);
            }());
        } catch (const std::exception& e) { MESSAGE("could not remove " << name << ": " << std::string(e.what())); }
    }
};
using secret_guard = swarm_object_guard<berth::secrets_api<berth::socket_transport>>;
using config_guard = swarm_object_guard<berth::configs_api<berth::socket_transport>>;

// The life of a secret or a config on the manager (Spec: berth::secret_spec or berth::config_spec; `objects`: the
// client's secrets() or configs()): create, inspect, list by label and by exact name, a name in use refused,
// update the labels, a data change refused, a stale version refused, remove, not_found after.
template <class Spec, class Api>
asio::awaitable<void> swarm_object_lifecycle(Api& objects, const std::string& name) {
    constexpr bool is_secret = std::is_same_v<Spec, berth::secret_spec>;
    const std::string label = "berth.test.swarm-object";
    const std::string data("\xfb\xff\xfe bytes\0and text\n", 20);  // base64 with '+' and '/', a NUL
    Spec spec{.name = name, .labels = {{label, name}, {"role", "first"}}, .data = data};
    auto id = co_await objects.create(spec);
    CHECK(id.size() == 25);

    auto info = co_await objects.inspect(name);
    CHECK(info.id == id);
    CHECK(info.spec.name == name);
    CHECK(info.spec.labels == spec.labels);
    CHECK(info.spec.data == (is_secret ? std::string() : data));  // a secret's data never comes back
    CHECK_FALSE(info.spec.templating);
    CHECK(info.version > 0);
    CHECK_FALSE(info.created_at.empty());
    CHECK(info.created_at == info.updated_at);
    CHECK(info.raw.at("ID").as_string() == id);
    auto by_id = co_await objects.inspect(id);
    CHECK(by_id.spec.name == name);
    CHECK(co_await objects.exists(id));

    try {
        co_await objects.create(spec);
        FAIL("a second object of the same name was created");
    } catch (const berth::conflict_error& e) { CHECK(contains(e.message(), "already exists")); }

    berth::swarm_object_list_options by_label{.filters = {{"label", {label + "=" + name}}}};
    auto listed = co_await objects.list(by_label);
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].id == id);
    CHECK(listed[0].spec.labels == spec.labels);
    CHECK(listed[0].spec.data == info.spec.data);
    berth::swarm_object_list_options by_prefix{.filters = {{"names", {name.substr(0, name.size() - 1)}}}};
    if constexpr (is_secret) {
        auto none = co_await objects.list(by_prefix);
        CHECK(none.empty());  // names: exact names only
    } else {
        try {
            co_await objects.list(by_prefix);
            FAIL("Docker 20.10 listed configs by the filter names");
        } catch (const berth::engine_error& e) {  // Docker 20.10 has the filter names for secrets only
            CHECK(e.status() == 400);
            CHECK(contains(e.message(), "Invalid filter 'names'"));
        }
    }
    berth::swarm_object_list_options by_name{.filters = {{"name", {name}}}};
    auto named = co_await objects.list(by_name);
    REQUIRE(named.size() == 1);
    CHECK(named[0].id == id);

    // labels may change: the spec as inspect gave it, with other labels
    auto changed = info.spec;
    changed.labels = {{label, name}, {"role", "second"}};
    berth::swarm_object_update_options<Spec> update{.version = info.version, .spec = changed};
    co_await objects.update(id, update);
    auto after = co_await objects.inspect(id);
    CHECK(after.spec.labels == changed.labels);
    CHECK(after.version > info.version);
    CHECK(after.spec.data == info.spec.data);

    // other data: refused (400), nothing changed
    auto other_data = after.spec;
    other_data.data = "other bytes";
    berth::swarm_object_update_options<Spec> data_change{.version = after.version, .spec = other_data};
    try {
        co_await objects.update(id, data_change);
        FAIL("a data change was accepted");
    } catch (const berth::engine_error& e) {
        CHECK(e.status() == 400);
        CHECK(e.code() == berth::engine_errc::bad_request);
        CHECK(contains(e.message(), "only updates to Labels are allowed"));
        CHECK_FALSE(contains(e.message(), "b3RoZXIgYnl0ZXM="));
    }
    // the version inspect gave before the update: refused, not overwritten
    try {
        co_await objects.update(id, update);
        FAIL("an update at a stale version was accepted");
    } catch (const berth::engine_error& e) {
        CHECK(e.status() == 500);  // swarmkit's "update out of sequence", passed on by Docker as a 500
        CHECK(contains(e.message(), "out of sequence"));
    }
    auto unchanged = co_await objects.inspect(id);
    CHECK(unchanged.version == after.version);
    CHECK(unchanged.spec.labels == changed.labels);

    co_await objects.remove(id);
    CHECK_FALSE(co_await objects.exists(name));
    try {
        co_await objects.inspect(id);
        FAIL("a removed object was inspected");
    } catch (const berth::not_found_error& e) {
        CHECK(e.status() == 404);
        CHECK(e.code() == berth::engine_errc::not_found);
    }
    CHECK_THROWS_AS(co_await objects.remove(name), berth::not_found_error);
    auto gone = co_await objects.list(by_label);
    CHECK(gone.empty());
}

// The logs of a (finished) container on whichever node's engine has it, through each node's unix socket.
asio::awaitable<std::string> logs_on_any_node(const swarm_setup& s, std::string container_id) {
    for (auto& [address, socket] : s.socket_of) {
        auto node = berth::client::at(co_await asio::this_coro::executor, socket);
        try {
            co_await node.containers().inspect(container_id);
        } catch (const berth::not_found_error&) { continue; }
        std::string text;
        berth::container_logs_options options;
        options.on_output = [&](berth::output_stream, std::string_view slice) { text += slice; };
        co_await node.containers().logs(container_id, options);
        co_return text;
    }
    co_return "(no node has container " + container_id + ")";
}
}  // namespace

TEST_SUITE("cluster (real swarm)") {
TEST_CASE("a plain client reaches the manager's Swarm API through client.swarm(): its nodes, each inspectable") {
    auto s = swarm();
    if (!s) return;
    run_to_completion([&]() -> asio::awaitable<void> {
        auto manager = berth::client::at(co_await asio::this_coro::executor, manager_endpoint(*s));
        auto nodes = co_await manager.swarm().list_nodes();
        std::set<std::string> hostnames;
        for (auto& n : nodes) {
            hostnames.insert(n.hostname);
            auto inspected = co_await manager.swarm().inspect_node(n.id);
            CHECK(inspected.id == n.id);
            CHECK(inspected.hostname == n.hostname);
        }
        CHECK(hostnames == std::set<std::string>{"berth-swarm-1", "berth-swarm-2", "berth-swarm-3"});
        berth::swarm_filters managers{{"role", {"manager"}}};
        auto listed = co_await manager.swarm().list_nodes(managers);
        REQUIRE(listed.size() == 1);
        CHECK(listed[0].role == "manager");
        CHECK(listed[0].hostname == "berth-swarm-1");
    }());
}

TEST_CASE("swarm: service update and rollback, service and task logs, task inspect (a service of the test's own)") {
    auto s = swarm();
    if (!s) return;
    const std::string name = unique_name("svc-logs");
    service_guard guard{*s, name};
    run_to_completion(service_update_and_logs(*s, name));
}

TEST_CASE("30 evaluations through the cluster: all succeed, spread over nodes, each on its task's node") {
    auto s = swarm();
    if (!s) return;
    image_guard images{*s};
    eval_repo repo(*s, "marker-" + unique_name("repo") + "\n");
    temp_dir work;
    const std::string run_label = unique_name("run30");
    auto start = std::chrono::steady_clock::now();
    auto outcomes = run_evaluations(*s, plans(*s, repo, run_label, 30, work.path), 6);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    std::set<std::string> nodes;
    int ok = 0;
    for (auto& o : outcomes) {
        CAPTURE(o.error);
        CHECK(o.ok);
        CHECK((o.cleanup && o.cleanup->complete()));  // service and container reported gone
        ok += o.ok;
        nodes.insert(o.node_id);
    }
    // Medians: the first evaluations also wait for the image's build and push.
    auto median = [&](auto field) {
        std::vector<long long> v;
        for (auto& o : outcomes) v.push_back((o.*field).count());
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    MESSAGE(ok << " of 30 evaluations in " << took.count() << " ms on " << nodes.size() << " nodes; median "
               << "build_container " << median(&outcome::build_time) << " ms, cleanup_container "
               << median(&outcome::cleanup_time) << " ms");
    CHECK(nodes.size() >= 2);
    CHECK(run_to_completion(leftovers(*s, run_label)) == "");
}

TEST_CASE("an exec on a cluster handle: exit code 3 is outcome exited, with its wall time and the figures") {
    auto s = swarm();
    if (!s) return;
    image_guard images{*s};
    eval_repo repo(*s, "figures\n");
    const std::string run_label = unique_name("figures");
    const std::string name = unique_name("cluster-figures");
    run_to_completion([&]() -> asio::awaitable<void> {
        berth::cluster cluster = berth::cluster::at(co_await asio::this_coro::executor, manager_endpoint(*s),
                                                    cluster_options(*s));
        berth::cluster_build_options o;
        o.repo_path = repo.dir.path.string();
        o.image_name = "berth-test-cluster-" + std::to_string(::getpid());
        o.container_name = name;
        o.labels = {{"berth.run", run_label}};
        o.network_mode = "none";
        o.mount_name = "hyperagents";
        o.verbose = false;
        auto built = co_await berth::build_container(cluster, o);
        REQUIRE(built.has_value());
        auto box = *built;
        // The handle knows its service and node: the manager's one task of that service, on that node.
        CHECK(box.owner == &cluster);
        berth::swarm_filters of_service{{"service", {box.service_id}}};
        auto tasks = co_await cluster.swarm().list_tasks(of_service);
        REQUIRE(tasks.size() == 1);
        CHECK(tasks[0].service_id == box.service_id);
        CHECK(tasks[0].container_id == box.id);
        CHECK(tasks[0].node_id == box.node.id);
        auto node = co_await cluster.swarm().inspect_node(box.node.id);
        CHECK(box.node.hostname == node.hostname);
        CHECK(box.node.address == box.engine().transport().node().address);
        berth::run_options measured;
        measured.measure_usage = true;
        measured.verbose = false;
        std::optional<berth::exec_result> r;
        try {
            r = co_await berth::exec(box, berth::argv("sh", "-c", "exit 3"), measured);
        } catch (const std::exception& e) { FAIL_CHECK("exec failed: " << std::string(e.what())); }
        if (r) {
            CHECK(r->exit_code == 3);
            CHECK(r->outcome.end == berth::exec_end::exited);
            CHECK_FALSE(r->outcome.signal.has_value());
            CHECK(berth::describe(r->outcome, r->exit_code) == "exit code 3");
            CHECK(r->usage.wall_time > std::chrono::nanoseconds::zero());
            // the nodes are Docker engines: the figures come from the container's stats stream, with its time
            CHECK(r->usage.container_cpu_seconds.value_or(0.0) > 0.0);
            CHECK(r->usage.sampled_at.has_value());
        }
        // the container's removal ends its stats stream (run_to_completion() returns only once nothing is left running)
        auto report = co_await berth::cleanup_container(box, {.verbose = false});
        CHECK(report.complete());
    }());
    CHECK(run_to_completion(leftovers(*s, run_label)) == "");
}

TEST_CASE("placement: a constraint pins evaluations to one node; a reservation no node has fails at once") {
    auto s = swarm();
    if (!s) return;
    image_guard images{*s};
    eval_repo repo(*s, "pinned\n");
    temp_dir work;
    const std::string run_label = unique_name("pin");
    auto outcomes = run_evaluations(*s, plans(*s, repo, run_label, 3, work.path, {"node.hostname==berth-swarm-2"}), 3);
    for (auto& o : outcomes) {
        CAPTURE(o.error);
        CHECK(o.ok);
        CHECK(o.node_hostname == "berth-swarm-2");
    }

    // More memory than any node has: Swarm's reason, at once (not after start_timeout), nothing left.
    std::string name = unique_name("too-big");
    auto result = run_to_completion([&]() -> asio::awaitable<berth::cluster_build_container_result> {
        berth::cluster cluster = berth::cluster::at(co_await asio::this_coro::executor, manager_endpoint(*s),
                                                    cluster_options(*s));
        berth::cluster_build_options o;
        o.repo_path = repo.dir.path.string();
        o.image_name = "berth-test-cluster-" + std::to_string(::getpid());
        o.container_name = name;
        o.labels = {{"berth.run", run_label}};
        o.reserve_memory_bytes = std::int64_t{1} << 50;  // 1 PiB
        o.start_timeout = 10min;
        o.mount_name = "hyperagents";
        o.verbose = false;
        co_return co_await berth::build_container(cluster, o);
    }());
    REQUIRE_FALSE(result.has_value());
    CHECK(result.failure()->reason == berth::build_failure_reason::engine_refused);
    CHECK(contains(result.failure()->message, "insufficient resources"));
    auto* e = failure_error<berth::task_failed_error>(result.failure());
    REQUIRE(e != nullptr);
    CHECK(e->code() == berth::cluster_errc::task_unplaceable);
    CHECK(run_to_completion(leftovers(*s, run_label)) == "");
}

TEST_CASE("a drained node gets no evaluation") {
    auto s = swarm();
    if (!s) return;
    image_guard images{*s};
    auto drained = node_id_of_host(*s, "berth-swarm-3");
    REQUIRE_FALSE(drained.empty());
    set_availability(*s, drained, "drain");
    struct undrain {
        const swarm_setup& s;
        std::string id;
        ~undrain() {
            try {
                set_availability(s, id, "active");
            } catch (const std::exception& e) {
                MESSAGE("could not make node 3 active again: " << std::string(e.what()));
            }
        }
    } guard{*s, drained};
    eval_repo repo(*s, "drained\n");
    temp_dir work;
    const std::string run_label = unique_name("drain");
    auto outcomes = run_evaluations(*s, plans(*s, repo, run_label, 6, work.path), 6);
    for (auto& o : outcomes) {
        CAPTURE(o.error);
        CHECK(o.ok);
        CHECK(o.node_id != drained);
    }
    CHECK(run_to_completion(leftovers(*s, run_label)) == "");
}

TEST_CASE("a worker whose dockerd dies mid-run: its evaluations fail naming it, the others finish, nothing is left") {
    auto s = swarm();
    if (!s) return;
    image_guard images{*s};
    eval_repo repo(*s, "killed\n");
    temp_dir work;
    const std::string run_label = unique_name("kill");
    auto doomed = plans(*s, repo, run_label, 2, work.path, {"node.hostname==berth-swarm-3"});
    auto spared = plans(*s, repo, run_label, 2, work.path, {"node.hostname!=berth-swarm-3"});

    asio::io_context io;
    berth::cluster cluster = berth::cluster::at(io.get_executor(), manager_endpoint(*s), cluster_options(*s));
    std::vector<std::optional<berth::cluster::container_type>> handles(4);
    std::vector<outcome> outcomes(4);
    std::vector<berth::cleanup_report> cleanups(4);
    auto all = doomed;
    all.insert(all.end(), spared.begin(), spared.end());
    // Phase 1: every evaluation has its container; then node 3's dockerd is killed; phase 2 runs the rest.
    auto phase = [&](bool build) -> asio::awaitable<void> {
        for (std::size_t i = 0; i < all.size(); ++i) {
            if (build) {
                berth::cluster_build_options o;
                o.repo_path = repo.dir.path.string();
                o.image_name = "berth-test-cluster-" + std::to_string(::getpid());
                o.container_name = all[i].name;
                o.labels = {{"berth.run", run_label}};
                o.constraints = all[i].constraints;
                o.mount_name = "hyperagents";
                o.verbose = false;
                auto built = co_await berth::build_container(cluster, o);
                if (built)
                    handles[i] = *built;
                else
                    outcomes[i].error = built.failure()->message;
                continue;
            }
            if (!handles[i]) continue;
            outcomes[i].node_hostname = handles[i]->node.hostname;
            try {
                auto r = co_await berth::exec(*handles[i], berth::argv("cat", "/hyperagents/marker.txt"));
                outcomes[i].ok = r.stdout_text == repo.marker;
            } catch (const berth::node_unreachable_error& e) {
                outcomes[i].unreachable = e.node();
                outcomes[i].error = e.what();
            }
            cleanups[i] = co_await berth::cleanup_container(*handles[i], {.verbose = false});
        }
    };
    asio::co_spawn(io, phase(true), asio::use_future);
    io.run();
    for (auto& h : handles) REQUIRE(h.has_value());
    REQUIRE(std::system((s->script.string() + " kill-node 3 >/dev/null").c_str()) == 0);
    io.restart();
    auto done = asio::co_spawn(io, phase(false), asio::use_future);
    io.run();
    done.get();
    const bool revived = std::system((s->script.string() + " revive-node 3 >/dev/null").c_str()) == 0;
    for (std::size_t i = 0; i < 4; ++i) {
        CAPTURE(i);
        CAPTURE(outcomes[i].error);
        if (i < 2) {
            CHECK_FALSE(outcomes[i].ok);
            REQUIRE(outcomes[i].unreachable.has_value());
            CHECK(outcomes[i].unreachable->hostname == "berth-swarm-3");
            CHECK(outcomes[i].unreachable->id == node_id_of_host(*s, "berth-swarm-3"));
            CHECK(contains(outcomes[i].error, "berth-swarm-3"));
            // the cleanup says so: the service is gone from the manager, the container is not, and where
            CHECK(cleanups[i].service_removed == true);
            CHECK_FALSE(cleanups[i].container_removed);
            try {
                if (cleanups[i].error) std::rethrow_exception(cleanups[i].error);
                FAIL("no error in the cleanup report");
            } catch (const berth::node_unreachable_error& e) {
                CHECK(e.node().hostname == "berth-swarm-3");
            } catch (const std::exception& e) { FAIL("not a node_unreachable_error: " << std::string(e.what())); }
        } else {
            CHECK(outcomes[i].ok);
            CHECK(outcomes[i].node_hostname != "berth-swarm-3");
            CHECK(cleanups[i].complete());
        }
    }
    REQUIRE(revived);
    // What the crashed node kept is removed by the run's label, once it is back.
    auto report = run_to_completion([&]() -> asio::awaitable<berth::evaluations_cleanup_report> {
        berth::cluster again = berth::cluster::at(co_await asio::this_coro::executor, manager_endpoint(*s),
                                                  cluster_options(*s));
        co_return co_await berth::cleanup_evaluations(again, "berth.run=" + run_label);
    }());
    MESSAGE("after revival: " << report.services_removed << " services and " << report.containers_removed
                              << " containers removed; " << report.unreachable.size() << " nodes unreachable");
    CHECK(run_to_completion(leftovers(*s, run_label)) == "");
}
TEST_CASE("secrets: create, inspect, list by label, update labels, a data change refused, remove, not_found after") {
    auto s = swarm();
    if (!s) return;
    const auto name = unique_name("secret");
    secret_guard guard{*s, name, &berth::client::secrets};
    run_to_completion([&]() -> asio::awaitable<void> {
        auto manager = berth::client::at(co_await asio::this_coro::executor, manager_endpoint(*s));
        co_await swarm_object_lifecycle<berth::secret_spec>(manager.secrets(), name);
    }());
}

TEST_CASE("configs: create, inspect (with its data), list by label, update labels, a data change refused, remove") {
    auto s = swarm();
    if (!s) return;
    const auto name = unique_name("config");
    config_guard guard{*s, name, &berth::client::configs};
    run_to_completion([&]() -> asio::awaitable<void> {
        auto manager = berth::client::at(co_await asio::this_coro::executor, manager_endpoint(*s));
        co_await swarm_object_lifecycle<berth::config_spec>(manager.configs(), name);
    }());
}

TEST_CASE("secrets: a service's task reads the secret and the config it mounts; neither is removable while used") {
    auto s = swarm();
    if (!s) return;
    const auto secret_name = unique_name("svc-secret");
    const auto config_name = unique_name("svc-config");
    const auto service_name = unique_name("svc-files");
    const auto run_label = unique_name("files");
    secret_guard secret_left{*s, secret_name, &berth::client::secrets};
    config_guard config_left{*s, config_name, &berth::client::configs};
    struct service_guard {  // destroyed first: the secret and config can go only once the service has
        const swarm_setup& s;
        std::string name;
        ~service_guard() {
            try {
                run_to_completion([&]() -> asio::awaitable<void> {
                    auto manager = berth::client::at(co_await asio::this_coro::executor, manager_endpoint(s));
                    co_await manager.swarm().remove_service(name);
                }());
            } catch (const berth::not_found_error&) {
            } catch (const std::exception& e) { MESSAGE("could not remove " << name << ": " << std::string(e.what())); }
        }
    } service_left{*s, service_name};
    const std::string secret_data = "s3cret " + secret_name;
    const std::string config_data = "setting=" + config_name;

    run_to_completion([&]() -> asio::awaitable<void> {
        auto manager = berth::client::at(co_await asio::this_coro::executor, manager_endpoint(*s));
        berth::secret_spec secret{.name = secret_name, .data = secret_data};
        berth::config_spec config{.name = config_name, .data = config_data};
        auto secret_id = co_await manager.secrets().create(secret);
        auto config_id = co_await manager.configs().create(config);

        berth::service_spec spec;
        spec.name = service_name;
        spec.labels = {{"berth.run", run_label}};
        spec.container.image = s->base_image;
        spec.container.labels = spec.labels;
        // the files' contents and modes, then the exit code says whether they were what was stored
        spec.container.command = {
            "sh", "-c",
            "cat /run/secrets/app-secret; echo; cat /etc/app.conf; echo; stat -c %a /run/secrets/app-secret "
            "/etc/app.conf; test \"$(cat /run/secrets/app-secret)\" = \"" +
                secret_data + "\" && test \"$(cat /etc/app.conf)\" = \"" + config_data + "\""};
        spec.container.secrets = {{.id = secret_id, .name = secret_name, .file_name = "app-secret", .mode = 0400}};
        spec.container.configs = {{.id = config_id, .name = config_name, .file_name = "/etc/app.conf"}};
        spec.restart_condition = "none";
        auto created = co_await manager.swarm().create_service(spec);

        // the task runs once and ends: complete (exit 0) or failed
        berth::swarm_filters of_service{{"service", {created.id}}};
        auto ended = co_await berth::detail::poll_until(
            [&]() -> asio::awaitable<std::optional<berth::swarm_task>> {
                auto tasks = co_await manager.swarm().list_tasks(of_service);
                for (auto& t : tasks)
                    if (t.state == "complete" || t.state == "failed" || t.state == "rejected") co_return t;
                co_return std::nullopt;
            },
            {.max = 500ms}, std::chrono::steady_clock::now() + 3min);

        // while the service uses them, neither can be removed
        for (bool is_secret : {true, false}) {
            try {
                if (is_secret)
                    co_await manager.secrets().remove(secret_id);
                else
                    co_await manager.configs().remove(config_id);
                FAIL("removed while a service uses it");
            } catch (const berth::engine_error& e) {
                CAPTURE(is_secret);
                CHECK(e.status() == 400);
                CHECK(contains(e.message(), "is in use by the following service"));
                CHECK(contains(e.message(), service_name));
            }
        }

        REQUIRE(ended);
        CAPTURE(ended->err);
        CHECK(ended->state == "complete");
        REQUIRE_FALSE(ended->container_id.empty());
        auto logs = co_await logs_on_any_node(*s, ended->container_id);
        CHECK(logs == secret_data + "\n" + config_data + "\n400\n444\n");

        co_await manager.swarm().remove_service(created.id);
        co_await manager.secrets().remove(secret_id);
        co_await manager.configs().remove(config_id);
        CHECK_FALSE(co_await manager.secrets().exists(secret_id));
        CHECK_FALSE(co_await manager.configs().exists(config_id));
    }());
    CHECK(run_to_completion(leftovers(*s, run_label)) == "");
}
}  // TEST_SUITE("cluster (real swarm)")
