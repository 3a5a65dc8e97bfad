// The evaluation layer (the Python module's docker_utils) against real engines: Docker and Podman.
#include "support/engines.hpp"

#include <berth/eval/blocking.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <regex>
#include <map>
#include <set>
#include <sys/stat.h>
#include <thread>

using namespace berth_test;
namespace fs = std::filesystem;

namespace {

// A repository to mount: the busybox base image's build context plus a marker file.
struct repo_fixture {
    temp_dir dir;
    fs::path path;
    repo_fixture() : path(dir / "repo") {
        write_busybox_context(path);
        write_file(path / "marker.txt", "from the repository\n");
    }
};

berth::build_container_options eval_options(const repo_fixture& repo, const std::string& name,
                                            std::shared_ptr<berth::logger> log) {
    berth::build_container_options o;
    o.repo_path = repo.path.string();
    o.image_name = base_image;  // built by ensure_base_image; build_container finds it
    o.container_name = name;
    o.network_mode = "none";
    o.mount_name = "hyperagents";  // as the Python module mounts it (the tests' scripts read /hyperagents)
    o.log = std::move(log);
    return o;
}

std::string slurp(const fs::path& p) { return read_file(p); }

// Both trees hold the same names, types, contents, link targets and permission bits.
void check_same_tree(const fs::path& a, const fs::path& b) {
    std::set<std::string> names_a, names_b;
    for (auto it = fs::recursive_directory_iterator(a); it != fs::recursive_directory_iterator(); ++it)
        names_a.insert(fs::relative(it->path(), a).string());
    for (auto it = fs::recursive_directory_iterator(b); it != fs::recursive_directory_iterator(); ++it)
        names_b.insert(fs::relative(it->path(), b).string());
    CHECK(names_a == names_b);
    for (auto& n : names_a) {
        CAPTURE(n);
        auto sa = fs::symlink_status(a / n), sb = fs::symlink_status(b / n);
        CHECK(sa.type() == sb.type());
        if (fs::is_symlink(sa)) {
            CHECK(fs::read_symlink(a / n) == fs::read_symlink(b / n));
            continue;
        }
        CHECK(static_cast<int>(sa.permissions()) == static_cast<int>(sb.permissions()));
        if (fs::is_regular_file(sa)) CHECK(slurp(a / n) == slurp(b / n));
    }
}

// A tree with everything the copy must carry: nesting, a symlink, an empty dir, a 300-byte path, UTF-8, modes.
void make_rich_tree(const fs::path& root) {
    write_file(root / "top.txt", "top\n");
    write_file(root / "nested/one/two/three.txt", "deep\n");
    write_file(root / "empty-file", "");
    fs::create_directories(root / "empty-dir");
    write_file(root / "ünïcødé/文件.txt", "utf-8 names\n");
    std::string long_path;
    for (int i = 0; i < 5; ++i) long_path += std::string(55, char('a' + i)) + "/";
    write_file(root / (long_path + "leaf.txt"), "300-byte path\n");
    REQUIRE((root / long_path).string().size() - root.string().size() >= 280);
    write_file(root / "script.sh", "#!/bin/sh\necho run\n");
    fs::permissions(root / "script.sh", fs::perms(0755));
    write_file(root / "private.txt", "secret\n");
    fs::permissions(root / "private.txt", fs::perms(0600));
    fs::create_symlink("nested/one/two/three.txt", root / "link-to-three");
}

asio::awaitable<void> lifecycle(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    repo_fixture repo;
    temp_dir logs;
    auto log = std::make_shared<berth::logger>(logs / "run.log");
    const auto name = unique_name("eval");
    container_guard guard{e.address, name};

    // a stale container of the same name is force-removed first
    auto stale = co_await start_idle_container(c, name);

    auto box = co_await berth::build_container(c, eval_options(repo, name, log));
    REQUIRE(box.has_value());
    CHECK(box->id != stale);
    CHECK_THROWS_AS(co_await c.containers().inspect(stale), berth::not_found_error);

    auto info = co_await c.containers().inspect(box->id);
    CHECK(info.state.running);
    auto& config = info.raw.at("Config").as_object();
    CHECK(config.at("Tty").as_bool());
    CHECK(config.at("OpenStdin").as_bool());
    CHECK(boost::json::serialize(config.at("Cmd")) == R"(["tail","-f","/dev/null"])");
    auto& host = info.raw.at("HostConfig").as_object();
    CHECK(host.at("NetworkMode").as_string() == "none");
    CHECK(host.at("Init").as_bool());

    // the repository is mounted read-write at /hyperagents
    auto r = co_await berth::exec(
        *box, berth::argv("sh", "-c", "cat /hyperagents/marker.txt && echo written > /hyperagents/from-container"));
    CHECK(r.exit_code == 0);
    CHECK(r.output == "from the repository\n");
    CHECK(slurp(repo.path / "from-container") == "written\n");

    // PID 1 is an init, not tail: a stop ends the container without waiting out the grace period
    auto pid1 = co_await berth::exec(*box, berth::argv("cat", "/proc/1/cmdline"));
    CHECK(pid1.output.find("tail") != 0);

    berth::cleanup_options cleanup;
    cleanup.log = log;
    cleanup.stop_timeout_seconds = 30;
    auto cleaned = co_await berth::cleanup_container(*box, cleanup);
    CHECK(cleaned.complete());
    CHECK(cleaned.problems.empty());
    CHECK_FALSE(cleaned.service_removed.has_value());
    CHECK_THROWS_AS(co_await c.containers().inspect(box->id), berth::not_found_error);
    // cleaning a container that is already gone is logged, not thrown, and reported as gone
    auto again = co_await berth::cleanup_container(*box, cleanup);
    CHECK(again.container_removed);

    auto text = slurp(logs / "run.log");
    CHECK(text.find("found; not rebuilding") != std::string::npos);
    CHECK(text.find("Removed existing container " + name) != std::string::npos);
    CHECK(text.find("Stopped container " + name) != std::string::npos);
    CHECK(text.find("was already gone when stopping") != std::string::npos);
    CHECK(text.find("was already gone when removing") != std::string::npos);
    // every line has the seed's format
    std::regex line(R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - MainThread - (INFO|WARNING|ERROR) - .*)");
    std::istringstream lines(text);
    for (std::string l; std::getline(lines, l);) CHECK(std::regex_match(l, line));
}

asio::awaitable<void> build_and_rebuild(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    repo_fixture repo;
    // the context honours .dockerignore: ignored-dir never reaches the engine
    write_file(repo.path / "Dockerfile",
               std::string(busybox_dockerfile) + "RUN echo built > /built\nCOPY marker.txt ignored-di[r] /ctx/\n");
    write_file(repo.path / "ignored-dir/data", "not sent");
    write_file(repo.path / ".dockerignore", "ignored-dir\n");
    temp_dir logs;
    auto log = std::make_shared<berth::logger>(logs / "build.log");
    const auto name = unique_name("build");
    const auto image = unique_name("image") + "-tag";
    container_guard guard{e.address, name};

    auto options = eval_options(repo, name, log);
    options.image_name = image;
    auto box = co_await berth::build_container(c, options);
    REQUIRE(box.has_value());
    auto built = co_await berth::exec(*box, berth::argv("sh", "-c", "cat /built; ls /ctx"));
    CHECK(built.output == "built\nmarker.txt\n");
    auto first_id = (co_await c.images().inspect(image)).id;

    // the tag exists: no build. Without a mount_name the general API mounts the repository at /<its directory name>
    auto general = options;
    general.mount_name.clear();
    auto again = co_await berth::build_container(c, general);
    REQUIRE(again.has_value());
    CHECK((co_await c.images().inspect(image)).id == first_id);
    auto mounted = co_await berth::exec(
        *again, berth::argv("sh", "-c", "cat /repo/marker.txt; ls -d /hyperagents 2>/dev/null"));
    CHECK(mounted.stdout_text == "from the repository\n");  // at /repo (the fixture's directory), not /hyperagents
    CHECK(mounted.exit_code != 0);

    // force_rebuild: built again without cache (a new image id, since the RUN layer is not reused)
    options.force_rebuild = true;
    auto forced = co_await berth::build_container(c, options);
    REQUIRE(forced.has_value());
    CHECK((co_await c.images().inspect(image)).id != first_id);
    co_await berth::cleanup_container(*forced, {.verbose = false});

    auto text = slurp(logs / "build.log");
    CHECK(text.find("Building image " + image + " from") != std::string::npos);
    CHECK(text.find("(no cache)") != std::string::npos);
    CHECK(text.find("found; not rebuilding") != std::string::npos);

    // a bad Dockerfile: empty result, the engine's message in the log, no container left
    write_file(repo.path / "Dockerfile", "FROM scratch\nTHIS-IS-NOT-AN-INSTRUCTION\n");
    options.image_name = image + "-broken";
    options.force_rebuild = false;
    auto broken = co_await berth::build_container(c, options);
    CHECK_FALSE(broken.has_value());
    text = slurp(logs / "build.log");
    CHECK(text.find("ERROR - build_container(" + name + ") failed") != std::string::npos);
    // the engine's own message names the bad instruction (Docker lower-cases it)
    bool names_instruction = text.find("this-is-not-an-instruction") != std::string::npos ||
                             text.find("THIS-IS-NOT-AN-INSTRUCTION") != std::string::npos;
    CHECK(names_instruction);
    CHECK_THROWS_AS(co_await c.containers().inspect(name), berth::not_found_error);
    co_await c.images().remove(image, {.force = true});
}

asio::awaitable<void> copy_round_trip(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    repo_fixture repo;
    const auto name = unique_name("copy");
    container_guard guard{e.address, name};
    auto box = co_await berth::build_container(c, eval_options(repo, name, nullptr));
    REQUIRE(box.has_value());
    temp_dir t;

    // a directory tree: dest's last component names the top directory
    make_rich_tree(t / "tree");
    co_await berth::copy_to_container(*box, t / "tree", "/work/deep/renamed", {.verbose = false});
    auto listed = co_await berth::exec(
        *box,
        berth::argv("sh", "-c",
                    "cat /work/deep/renamed/nested/one/two/three.txt; stat -c %a /work/deep/renamed/private.txt"));
    CHECK(listed.output == "deep\n600\n");
    co_await berth::copy_from_container(*box, "/work/deep/renamed", t / "back/tree", {.verbose = false});
    check_same_tree(t / "tree", t / "back/tree");

    // a file: dest's last component is its name; local parents are created
    write_file(t / "report.json", "{\"ok\": true}\n");
    co_await berth::copy_to_container(*box, t / "report.json", "/out/gen_3/result.json", {.verbose = false});
    co_await berth::copy_from_container(*box, "/out/gen_3/result.json", t / "runs/exp1/gen_3/report.json",
                                        {.verbose = false});
    CHECK(slurp(t / "runs/exp1/gen_3/report.json") == "{\"ok\": true}\n");

    // a file replaces a file; nothing else in the destination directory is touched
    write_file(t / "runs/exp1/gen_3/other.txt", "keep me");
    co_await berth::exec(*box, berth::argv("sh", "-c", "echo new > /out/gen_3/result.json"));
    co_await berth::copy_from_container(*box, "/out/gen_3/result.json", t / "runs/exp1/gen_3/report.json",
                                        {.verbose = false});
    CHECK(slurp(t / "runs/exp1/gen_3/report.json") == "new\n");
    CHECK(slurp(t / "runs/exp1/gen_3/other.txt") == "keep me");
    // no temporary left beside the destination
    for (auto& entry : fs::directory_iterator(t / "runs/exp1/gen_3"))
        CHECK(entry.path().filename().string().rfind(".berth-", 0) != 0);

    // a directory merged into an existing one keeps what was there
    write_file(t / "back/tree/local-only.txt", "mine");
    co_await berth::copy_from_container(*box, "/work/deep/renamed", t / "back/tree", {.verbose = false});
    CHECK(slurp(t / "back/tree/local-only.txt") == "mine");
    CHECK(slurp(t / "back/tree/top.txt") == "top\n");

    // a directory cannot replace a file (nothing is lost)
    CHECK_THROWS_AS(co_await berth::copy_from_container(*box, "/work/deep/renamed", t / "runs/exp1/gen_3/report.json",
                                                        {.verbose = false}),
                    berth::tar::error);
    CHECK(slurp(t / "runs/exp1/gen_3/report.json") == "new\n");

    // /tmp keeps its mode when a copy creates /tmp/x/y
    co_await berth::copy_to_container(*box, t / "report.json", "/tmp/x/y/report.json", {.verbose = false});
    auto modes = co_await berth::exec(*box, berth::argv("stat", "-c", "%a %n", "/tmp", "/tmp/x", "/tmp/x/y"));
    CHECK(modes.output == "1777 /tmp\n755 /tmp/x\n755 /tmp/x/y\n");

    // missing sources on both sides: not-found errors naming them
    try {
        co_await berth::copy_to_container(*box, t / "does-not-exist", "/x", {.verbose = false});
        FAIL("copy of a missing file succeeded");
    } catch (const berth::file_not_found& err) {
        CHECK(err.where() == berth::file_not_found::side::host);
        CHECK(std::string(err.what()).find("does-not-exist") != std::string::npos);
    }
    try {
        co_await berth::copy_from_container(*box, "/no/such/thing", t / "never", {.verbose = false});
        FAIL("copy of a missing container path succeeded");
    } catch (const berth::file_not_found& err) {
        CHECK(err.where() == berth::file_not_found::side::container);
        CHECK(std::string(err.what()).find("/no/such/thing") != std::string::npos);
    }
    CHECK_FALSE(fs::exists(t / "never"));
    co_await berth::cleanup_container(*box, {.verbose = false});
}

asio::awaitable<void> copy_into_scratch_image(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    // an image with no shell and no mkdir: one static file
    temp_dir ctx;
    fs::copy_file("/bin/busybox", ctx / "busybox");
    write_file(ctx / "Dockerfile", "FROM scratch\nCOPY busybox /busybox\n");
    const auto image = unique_name("scratch") + "-img";
    berth::tar::packer packer(ctx.path, "");
    berth::build_options bo;
    bo.tag = image;
    co_await c.images().build(packer, bo);
    const auto name = unique_name("scratch");
    container_guard guard{e.address, name};
    berth::container_config cfg;
    cfg.image = image;
    cfg.cmd = {"/busybox", "tail", "-f", "/dev/null"};
    cfg.host.network_mode = "none";
    cfg.host.init = true;
    auto created = co_await c.containers().create(cfg, name);
    co_await c.containers().start(created.id);
    berth::container box{&c, created.id, name};

    temp_dir t;
    write_file(t / "file.txt", "into scratch\n");
    co_await berth::copy_to_container(box, t / "file.txt", "/a/b/c/file.txt", {.verbose = false});
    co_await berth::copy_from_container(box, "/a/b/c", t / "back", {.verbose = false});
    CHECK(slurp(t / "back/file.txt") == "into scratch\n");
    co_await berth::cleanup_container(box, {.verbose = false});
    co_await c.images().remove(image, {.force = true});
}

asio::awaitable<void> big_file(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    repo_fixture repo;
    const auto name = unique_name("big");
    container_guard guard{e.address, name};
    auto box = co_await berth::build_container(c, eval_options(repo, name, nullptr));
    REQUIRE(box.has_value());
    temp_dir t;
    // 2 GiB: sparse on the host, with marks so that a shifted or truncated copy shows
    const std::uint64_t size = std::uint64_t{2} << 30;
    {
        std::ofstream f(t / "big.bin", std::ios::binary);
        for (std::uint64_t at : {std::uint64_t{0}, size / 3, size / 2 + 7, size - 16}) {
            f.seekp(static_cast<std::streamoff>(at));
            f << "mark@" << at;
        }
        f.seekp(static_cast<std::streamoff>(size - 1));
        f.put('!');
    }
    REQUIRE(fs::file_size(t / "big.bin") == size);
    std::ofstream("/proc/self/clear_refs") << "5";  // reset the peak RSS: measure this copy alone
    co_await berth::copy_to_container(*box, t / "big.bin", "/data/big.bin", {.verbose = false});
    co_await berth::copy_from_container(*box, "/data/big.bin", t / "back/big.bin", {.verbose = false});
    long peak = peak_rss_kib();
    MESSAGE("peak RSS during 2 GiB copy in and out: " << peak / 1024 << " MiB");
    CHECK(peak < rss_bound_kib(64 * 1024));
    REQUIRE(fs::file_size(t / "back/big.bin") == size);
    // compare in chunks (never holding either file)
    std::ifstream a(t / "big.bin", std::ios::binary), b(t / "back/big.bin", std::ios::binary);
    std::vector<char> ba(1 << 20), bb(1 << 20);
    bool same = true;
    while (same && a) {
        a.read(ba.data(), static_cast<std::streamsize>(ba.size()));
        b.read(bb.data(), static_cast<std::streamsize>(bb.size()));
        same = a.gcount() == b.gcount() && std::equal(ba.begin(), ba.begin() + a.gcount(), bb.begin());
    }
    CHECK(same);
    co_await berth::cleanup_container(*box, {.verbose = false});
}

asio::awaitable<void> exec_and_output(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    repo_fixture repo;
    temp_dir logs;
    auto log = std::make_shared<berth::logger>(logs / "exec.log");
    const auto name = unique_name("exec");
    container_guard guard{e.address, name};
    auto box = co_await berth::build_container(c, eval_options(repo, name, log));
    REQUIRE(box.has_value());

    berth::run_options opts;
    opts.exec.working_dir = "/hyperagents";
    opts.exec.env = {"LEVEL=3"};
    opts.exec.user = "1234";
    opts.log = log;
    auto r = co_await berth::exec(*box, berth::argv("sh", "-c", "pwd; id -u; echo level=$LEVEL; echo oops >&2; exit 5"),
                                  opts);
    CHECK(r.exit_code == 5);
    CHECK(r.stdout_text == "/hyperagents\n1234\nlevel=3\n");
    CHECK(r.stderr_text == "oops\n");
    CHECK(r.output.find("oops\n") != std::string::npos);
    try {
        berth::log_container_output(r, {.log = log});
        FAIL("a non-zero exit code did not throw");
    } catch (const berth::script_failed& err) {
        CHECK(std::string(err.what()) == "Script failed with exit code 5");
        CHECK(err.exit_code() == 5);
    }
    // the merged output is logged once (stdout and stderr may interleave either way: two pipes race)
    auto logged = slurp(logs / "exec.log");
    auto at = logged.find("INFO - Container output: ");
    REQUIRE(at != std::string::npos);
    for (auto piece : {"/hyperagents\n", "1234\n", "level=3", "oops"})
        CHECK(logged.find(piece, at) != std::string::npos);

    // verbose=false logs nothing, the exit-code check still applies
    auto before = slurp(logs / "exec.log");
    CHECK_THROWS_AS(berth::log_container_output(r, {.verbose = false, .log = log}), berth::script_failed);
    CHECK(slurp(logs / "exec.log") == before);

    // streamed: each line is logged as it arrives; exit 0 does not throw
    berth::run_options streamed;
    streamed.stream = true;
    streamed.log = log;
    std::vector<std::string> seen;
    streamed.exec.on_output = [&](berth::output_stream, std::string_view d) { seen.emplace_back(d); };
    auto ok = co_await berth::exec(*box, berth::argv("sh", "-c", "echo line-one; echo line-two"), streamed);
    CHECK(ok.exit_code == 0);
    CHECK_FALSE(seen.empty());
    berth::log_container_output(ok, {.log = log});
    auto text = slurp(logs / "exec.log");
    CHECK(text.find("INFO - line-one\n") != std::string::npos);
    CHECK(text.find("INFO - line-two\n") != std::string::npos);
    co_await berth::cleanup_container(*box, {.verbose = false});
}

asio::awaitable<void> gpu_attempted(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    repo_fixture repo;
    temp_dir logs;
    auto log = std::make_shared<berth::logger>(logs / "gpu.log");
    const auto name = unique_name("gpu");
    container_guard guard{e.address, name};
    auto options = eval_options(repo, name, log);
    options.request_gpus = true;
    options.check_gpu_devices = true;

    // default: the engine's refusal is logged as a warning and the container starts without GPU
    auto box = co_await berth::build_container(c, options);
    REQUIRE(box.has_value());
    auto text = slurp(logs / "gpu.log");
    CHECK(text.find("GPU passthrough requested") != std::string::npos);
    CHECK(text.find("WARNING - GPU request refused by the engine, starting without GPU: ") != std::string::npos);
    CHECK(text.find("No /dev/nvidia* devices in the container") != std::string::npos);
    auto info = co_await c.containers().inspect(box->id);
    CHECK(info.state.running);
    co_await berth::cleanup_container(*box, {.verbose = false});

    // gpu_required: the refusal fails the build, nothing is left behind
    options.gpu_required = true;
    auto none = co_await berth::build_container(c, options);
    CHECK_FALSE(none.has_value());
    text = slurp(logs / "gpu.log");
    CHECK(text.find("ERROR - build_container(" + name + ") failed") != std::string::npos);
    CHECK_THROWS_AS(co_await c.containers().inspect(name), berth::not_found_error);
}

// 16 evaluations at once on one io_context, each with its own log file; all cleaned up.
asio::awaitable<void> one_evaluation(berth::client& c, const repo_fixture& repo, fs::path log_file, int i,
                                     std::atomic<int>& ok) {
    auto log = std::make_shared<berth::logger>(log_file);
    auto name = unique_name("par" + std::to_string(i));
    auto box = co_await berth::build_container(c, eval_options(repo, name, log));
    if (!box) co_return;
    temp_dir t;
    write_file(t / "task.txt", "task " + std::to_string(i) + "\n");
    berth::copy_options copy;
    copy.log = log;
    co_await berth::copy_to_container(*box, t / "task.txt", "/task/input.txt", copy);
    berth::run_options run;
    run.log = log;
    auto r = co_await berth::exec(*box, berth::argv("sh", "-c", "cat /task/input.txt > /task/output.txt"), run);
    berth::log_container_output(r, {.log = log});
    co_await berth::copy_from_container(*box, "/task/output.txt", t / "output.txt", copy);
    berth::cleanup_options cleanup;
    cleanup.log = log;
    co_await berth::cleanup_container(*box, cleanup);
    if (read_file(t / "output.txt") == "task " + std::to_string(i) + "\n") ++ok;
}

void parallel_evaluations(const engine_under_test& e) {
    repo_fixture repo;
    temp_dir logs;
    asio::io_context io;
    auto c = berth::client::at(io.get_executor(), e.address);
    {
        auto f = asio::co_spawn(io, ensure_base_image(c), asio::use_future);
        io.run();
        f.get();
        io.restart();
    }
    std::atomic<int> ok{0};
    std::vector<std::future<void>> all;
    for (int i = 0; i < 16; ++i)
        all.push_back(asio::co_spawn(
            io, one_evaluation(c, repo, logs / ("worker_" + std::to_string(i) + ".log"), i, ok), asio::use_future));
    io.run();
    for (auto& f : all) CHECK_NOTHROW(f.get());
    CHECK(ok == 16);
    for (int i = 0; i < 16; ++i) {
        auto text = read_file(logs / ("worker_" + std::to_string(i) + ".log"));
        CHECK(text.find("Removed container berth-test-par" + std::to_string(i) + "-") != std::string::npos);
    }
    // every container is gone
    io.restart();
    berth::container_list_options mine;
    mine.all = true;
    mine.filters["name"] = {"berth-test-par"};
    auto f = asio::co_spawn(io, c.containers().list(mine), asio::use_future);
    io.run();
    CHECK(f.get().empty());
}

// Runs a shell command in the container and requires it to succeed.
asio::awaitable<void> sh(const berth::container& box, const std::string& script) {
    auto r = co_await berth::exec(box, berth::argv("sh", "-c", script));
    INFO(script << " -> " << r.output);
    REQUIRE(r.exit_code == 0);
}

asio::awaitable<std::string> sh_output(const berth::container& box, const std::string& script) {
    auto r = co_await berth::exec(box, berth::argv("sh", "-c", script));
    co_return r.output;
}

// A container with the kinds of symlinks real images hold: absolute and relative links to directories, a
// merged-/usr style /lib -> usr/lib, a link in the middle of paths, a link to a file.
asio::awaitable<void> plant_links(const berth::container& box) {
    co_await sh(box, "mkdir -p /data/dir /usr/lib && echo hi > /data/dir/f && ln -s /data/dir /linkdir && "
                     "ln -s data/dir /rel && ln -s usr/lib /lib && ln -s /data /mid && ln -s f /data/dir/flink");
}

asio::awaitable<void> copy_into_symlinked_directories(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    repo_fixture repo;
    const auto name = unique_name("h3-linkin");
    container_guard guard{e.address, name};
    auto box = co_await berth::build_container(c, eval_options(repo, name, nullptr));
    REQUIRE(box.has_value());
    co_await plant_links(*box);
    temp_dir t;
    write_file(t / "one.txt", "one\n");
    write_file(t / "tree/inner.txt", "inner\n");

    co_await berth::copy_to_container(*box, t / "one.txt", "/linkdir/abs.txt", {.verbose = false});  // absolute link
    co_await berth::copy_to_container(*box, t / "one.txt", "/rel/rel.txt", {.verbose = false});      // relative link
    co_await berth::copy_to_container(*box, t / "one.txt", "/lib/merged.txt", {.verbose = false});   // /lib -> usr/lib
    co_await berth::copy_to_container(*box, t / "one.txt", "/mid/new/deeper/mid.txt",
                                      {.verbose = false});  // link mid-path, parents missing
    co_await berth::copy_to_container(*box, t / "tree", "/linkdir/sub/tree",
                                      {.verbose = false});  // a tree, parents missing
    auto where = co_await sh_output(*box, "cat /data/dir/abs.txt /data/dir/rel.txt /usr/lib/merged.txt "
                                          "/data/new/deeper/mid.txt /data/dir/sub/tree/inner.txt; "
                                          "ls -ld /linkdir /rel /lib /mid | cut -c1");
    CHECK(where == "one\none\none\none\ninner\nl\nl\nl\nl\n");  // the links themselves are still links

    // dest itself a symlink: the copy goes where it leads (as docker cp does); the link stays
    write_file(t / "two.txt", "two\n");
    co_await berth::copy_to_container(*box, t / "two.txt", "/data/dir/flink", {.verbose = false});
    CHECK(co_await sh_output(*box, "cat /data/dir/f; readlink /data/dir/flink") == "two\nf\n");
    co_await berth::cleanup_container(*box, {.verbose = false});
}

asio::awaitable<void> copy_out_of_a_symlink(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    repo_fixture repo;
    const auto name = unique_name("h3-linkout");
    container_guard guard{e.address, name};
    auto box = co_await berth::build_container(c, eval_options(repo, name, nullptr));
    REQUIRE(box.has_value());
    co_await plant_links(*box);
    temp_dir t;
    // a link to a file: the file's content lands at dest, on both engines
    co_await berth::copy_from_container(*box, "/data/dir/flink", t / "flink.txt", {.verbose = false});
    CHECK_FALSE(fs::is_symlink(t / "flink.txt"));
    CHECK(slurp(t / "flink.txt") == "hi\n");
    // links to directories, absolute and relative, and a link in the middle of the path
    co_await berth::copy_from_container(*box, "/linkdir", t / "abs", {.verbose = false});
    co_await berth::copy_from_container(*box, "/rel", t / "rel", {.verbose = false});
    co_await berth::copy_from_container(*box, "/mid/dir/f", t / "mid.txt", {.verbose = false});
    CHECK(slurp(t / "abs/f") == "hi\n");
    CHECK(fs::read_symlink(t / "abs/flink") == "f");  // links inside the tree are copied as links
    CHECK(slurp(t / "rel/f") == "hi\n");
    CHECK(slurp(t / "mid.txt") == "hi\n");
    // a dangling link is a missing source, named as such
    co_await sh(*box, "ln -s /nowhere /dangling");
    try {
        co_await berth::copy_from_container(*box, "/dangling", t / "never", {.verbose = false});
        FAIL("copy of a dangling link succeeded");
    } catch (const berth::file_not_found& err) {
        CHECK(err.where() == berth::file_not_found::side::container);
        CHECK(err.path() == "/dangling");
        if (e.name == "docker") CHECK(std::string(err.what()).find("/nowhere") != std::string::npos);  // Podman: 404
    }
    CHECK_FALSE(fs::exists(fs::symlink_status(t / "never")));
    co_await berth::cleanup_container(*box, {.verbose = false});
}

// A virtualenv-like tree: links inside it, and links out of it (absolute, and climbing out).
asio::awaitable<void> links_pointing_outside(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    repo_fixture repo;
    temp_dir logs;
    auto log = std::make_shared<berth::logger>(logs / "links.log");
    const auto name = unique_name("h3-venv");
    container_guard guard{e.address, name};
    auto box = co_await berth::build_container(c, eval_options(repo, name, log));
    REQUIRE(box.has_value());
    co_await sh(*box, "mkdir -p /venv/bin /venv/lib && echo cfg > /venv/pyvenv.cfg && "
                      "ln -s /usr/bin/python3 /venv/bin/python && ln -s python /venv/bin/python3 && "
                      "ln -s ../../usr/lib /venv/lib/outside");
    temp_dir t;

    // default: skipped, each logged as a warning and listed in the result; the rest is copied
    berth::copy_options skip;
    skip.log = log;
    auto skipped = co_await berth::copy_from_container(*box, "/venv", t / "skip", skip);
    REQUIRE(skipped.skipped_links.size() == 2);
    CHECK(skipped.skipped_links[0].path == "/venv/bin/python");
    CHECK(skipped.skipped_links[0].target == "/usr/bin/python3");
    CHECK(skipped.skipped_links[1].path == "/venv/lib/outside");
    CHECK(skipped.skipped_links[1].target == "../../usr/lib");
    CHECK(slurp(t / "skip/pyvenv.cfg") == "cfg\n");
    CHECK(fs::read_symlink(t / "skip/bin/python3") == "python");
    CHECK_FALSE(fs::exists(fs::symlink_status(t / "skip/bin/python")));
    CHECK_FALSE(fs::exists(fs::symlink_status(t / "skip/lib/outside")));
    auto text = slurp(logs / "links.log");
    CHECK(text.find("WARNING - Skipped symlink /venv/bin/python -> /usr/bin/python3") != std::string::npos);
    CHECK(text.find("WARNING - Skipped symlink /venv/lib/outside -> ../../usr/lib") != std::string::npos);

    // keep: written verbatim, as docker cp does
    berth::copy_options keep;
    keep.verbose = false;
    keep.outside_links = berth::link_policy::keep;
    auto kept = co_await berth::copy_from_container(*box, "/venv", t / "keep", keep);
    CHECK(kept.skipped_links.empty());
    CHECK(fs::read_symlink(t / "keep/bin/python") == "/usr/bin/python3");
    CHECK(fs::read_symlink(t / "keep/lib/outside") == "../../usr/lib");
    CHECK(slurp(t / "keep/pyvenv.cfg") == "cfg\n");

    // refuse: the copy fails and nothing lands
    berth::copy_options refuse;
    refuse.verbose = false;
    refuse.outside_links = berth::link_policy::refuse;
    try {
        co_await berth::copy_from_container(*box, "/venv", t / "refuse", refuse);
        FAIL("a link out of the copy was accepted");
    } catch (const berth::tar::error& err) { CHECK(err.code() == berth::tar::errc::unsafe_link); }
    CHECK_FALSE(fs::exists(t / "refuse"));
    co_await berth::cleanup_container(*box, {.verbose = false});
}

// A file copied onto a directory of the container (or the reverse) replaces nothing unless asked.
asio::awaitable<void> directory_not_replaced(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    repo_fixture repo;
    const auto name = unique_name("h3-nooverwrite");
    container_guard guard{e.address, name};
    auto box = co_await berth::build_container(c, eval_options(repo, name, nullptr));
    REQUIRE(box.has_value());
    co_await sh(*box, "mkdir -p /data/dir /data/file-here && echo keep > /data/dir/f && rmdir /data/file-here && "
                      "echo plain > /data/plain");
    temp_dir t;
    write_file(t / "file", "a file\n");
    write_file(t / "tree/dir", "a file where the container has a directory\n");
    write_file(t / "dirtree/x", "x\n");

    // top level: refused before anything is sent
    try {
        co_await berth::copy_to_container(*box, t / "file", "/data/dir", {.verbose = false});
        FAIL("a file replaced a directory");
    } catch (const berth::tar::error& err) {
        CHECK(err.code() == berth::tar::errc::type_conflict);
        CHECK(std::string(err.what()).find("'/data/dir' in the container is a directory") != std::string::npos);
    }
    CHECK_THROWS_AS(co_await berth::copy_to_container(*box, t / "dirtree", "/data/plain", {.verbose = false}),
                    berth::tar::error);
    // inside a copied tree: the engine's own switch refuses
    CHECK_THROWS_AS(co_await berth::copy_to_container(*box, t / "tree", "/data", {.verbose = false}),
                    berth::engine_error);
    CHECK(co_await sh_output(*box, "cat /data/dir/f /data/plain") == "keep\nplain\n");

    // asked for: the directory is replaced
    berth::copy_options replace;
    replace.verbose = false;
    replace.replace_directories = true;
    co_await berth::copy_to_container(*box, t / "file", "/data/dir", replace);
    CHECK(co_await sh_output(*box, "cat /data/dir") == "a file\n");
    co_await berth::cleanup_container(*box, {.verbose = false});
}

// Failure reasons as values, next to the Python module's empty result.
asio::awaitable<void> failure_reasons(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    repo_fixture repo;
    temp_dir logs;
    auto log = std::make_shared<berth::logger>(logs / "reasons.log");
    const auto name = unique_name("h3-reasons");
    container_guard guard{e.address, name};

    auto ok = co_await berth::build_container(c, eval_options(repo, name, log));
    REQUIRE(ok.has_value());
    CHECK(ok.failure() == nullptr);
    std::optional<berth::container> as_optional = ok;  // the Python module's contract still holds
    CHECK(as_optional->id == ok->id);
    co_await berth::cleanup_container(*ok, {.verbose = false});

    // a broken Dockerfile: image_build_failed with the engine's message
    write_file(repo.path / "Dockerfile", "FROM scratch\nTHIS-IS-NOT-AN-INSTRUCTION\n");
    auto broken_options = eval_options(repo, name, log);
    broken_options.image_name = unique_name("h3-broken") + "-img";
    auto broken = co_await berth::build_container(c, broken_options);
    CHECK_FALSE(broken.has_value());
    REQUIRE(broken.failure() != nullptr);
    CHECK(broken.failure()->reason == berth::build_failure_reason::image_build_failed);
    auto lower = broken.failure()->message;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
    CHECK(lower.find("this-is-not-an-instruction") != std::string::npos);
    CHECK_THROWS_AS(std::rethrow_exception(broken.failure()->error), berth::engine_error);

    // GPUs required and refused
    auto gpu_options = eval_options(repo, name, log);
    gpu_options.request_gpus = true;
    gpu_options.gpu_required = true;
    auto gpu = co_await berth::build_container(c, gpu_options);
    CHECK_FALSE(gpu.has_value());
    REQUIRE(gpu.failure() != nullptr);
    CHECK(gpu.failure()->reason == berth::build_failure_reason::gpu_refused);

    // an image that is not there and cannot be built: the engine refused the create
    auto missing_options = eval_options(repo, name, log);
    missing_options.image_name = unique_name("h3-missing") + "-img";
    temp_dir empty_repo;
    missing_options.repo_path = empty_repo.path.string();  // no Dockerfile
    auto missing = co_await berth::build_container(c, missing_options);
    REQUIRE(missing.failure() != nullptr);
    CHECK(missing.failure()->reason == berth::build_failure_reason::image_build_failed);

    // no engine at all
    temp_dir nowhere;
    auto unreachable_client = berth::client::at(co_await asio::this_coro::executor,
                                                "unix://" + (nowhere / "none.sock").string());
    auto unreachable = co_await berth::build_container(unreachable_client, eval_options(repo, name, log));
    REQUIRE(unreachable.failure() != nullptr);
    CHECK(unreachable.failure()->reason == berth::build_failure_reason::engine_unreachable);
    CHECK_THROWS_AS(co_await c.containers().inspect(name), berth::not_found_error);
}

// exec keeps what it collected when it is interrupted, bounds what it keeps, and can keep nothing.
asio::awaitable<void> exec_interruptions_and_bounds(const engine_under_test& e) {
    auto ex = co_await asio::this_coro::executor;
    auto c = berth::client::at(ex, e.address);
    co_await ensure_base_image(c);
    repo_fixture repo;
    const auto name = unique_name("h3-exec");
    container_guard guard{e.address, name};
    auto box = co_await berth::build_container(c, eval_options(repo, name, nullptr));
    REQUIRE(box.has_value());

    // cancelled once the first line has arrived: the exception carries it
    asio::cancellation_signal cancel;
    berth::run_options watch;
    watch.verbose = false;
    watch.exec.on_output = [&](berth::output_stream, std::string_view d) {
        if (d.find("before") != std::string_view::npos)
            asio::post(ex, [&cancel] { cancel.emit(asio::cancellation_type::terminal); });
    };
    std::exception_ptr failure;
    auto done = asio::co_spawn(ex, berth::exec(*box, berth::argv("sh", "-c", "echo before; exec sleep 600"), watch),
                               asio::bind_cancellation_slot(cancel.slot(), asio::use_awaitable));
    try {
        co_await std::move(done);
    } catch (...) { failure = std::current_exception(); }
    REQUIRE(failure);
    try {
        std::rethrow_exception(failure);
    } catch (const berth::exec_interrupted& err) {
        CHECK(err.code() == asio::error::operation_aborted);
        CHECK(err.partial().output == "before\n");
        CHECK(err.partial().stdout_text == "before\n");
        CHECK_FALSE(err.partial().exit_code.has_value());
    } catch (const std::exception& err) { FAIL("not exec_interrupted: " << std::string(err.what())); }

    // a time limit: exec_interrupted with timed_out, still a system_error for callers that catch those
    berth::run_options limited;
    limited.timeout = std::chrono::milliseconds(300);
    CHECK_THROWS_AS(co_await berth::exec(*box, berth::argv("sleep", "600"), limited), boost::system::system_error);
    try {
        co_await berth::exec(*box, berth::argv("sleep", "600"), limited);
    } catch (const berth::exec_interrupted& err) { CHECK(err.code() == asio::error::timed_out); }

    // bounded: the first max_output_bytes kept, the rest counted; the callback sees everything
    berth::run_options bounded;
    bounded.max_output_bytes = 1 << 20;
    std::uint64_t seen = 0;
    bounded.exec.on_output = [&](berth::output_stream, std::string_view d) { seen += d.size(); };
    auto big = co_await berth::exec(*box, berth::argv("sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x"), bounded);
    CHECK(big.exit_code == 0);
    CHECK(seen == 3000000);
    CHECK(big.output.size() == (1u << 20));
    CHECK(big.stdout_text.size() == (1u << 20));
    CHECK(big.dropped_bytes == 3000000 - (1u << 20));
    // nothing kept: the callback alone takes the output
    bounded.max_output_bytes = 0;
    seen = 0;
    auto none = co_await berth::exec(
        *box, berth::argv("sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x; echo err >&2"), bounded);
    CHECK(seen == 3000004);
    CHECK(none.output.empty());
    CHECK(none.stdout_text.empty());
    CHECK(none.stderr_text.empty());
    CHECK(none.dropped_bytes == 3000004);

    // a 256 MiB line with the default bound: memory stays near the bound, not twice the output
    std::ofstream("/proc/self/clear_refs") << "5";
    const long before = current_rss_kib();
    berth::run_options defaults;
    defaults.stream = true;  // a line without newline must not grow the streamed-line buffer either
    defaults.verbose = false;
    auto huge = co_await berth::exec(*box, berth::argv("sh", "-c", "head -c 268435456 /dev/zero | tr '\\0' x"),
                                     defaults);
    CHECK(huge.output.size() == (std::size_t{64} << 20));
    CHECK(huge.dropped_bytes == (std::uint64_t{256} << 20) - (std::uint64_t{64} << 20));
    long growth = peak_rss_kib() - before;
    MESSAGE("RSS growth during a 256 MiB exec output: " << growth / 1024 << " MiB");
    // Kept: 64 MiB twice (merged, and by stream) plus the strings' growth; unbounded it was over 512 MiB.
    CHECK(growth < rss_bound_kib(320 * 1024));
    co_await berth::cleanup_container(*box, {.verbose = false});
}

// A proxy on a unix socket in front of an engine: passes everything through, except that the reply to the first
// container create is held back once the engine has sent it. The container exists; the client never hears of it.
class holding_proxy {
public:
    holding_proxy(asio::any_io_executor ex, std::string engine_address, fs::path socket, std::function<void()> on_held)
        : state_(std::make_shared<state>(ex, std::move(socket), std::move(engine_address), std::move(on_held))) {
        asio::co_spawn(ex, accept(state_), asio::detached);
    }
    ~holding_proxy() { state_->stop(); }
    std::string address() const { return "unix://" + state_->path.string(); }

private:
    using socket_t = asio::local::stream_protocol::socket;
    struct state {
        state(asio::any_io_executor ex, fs::path p, std::string engine, std::function<void()> held)
            : path(std::move(p)), upstream(engine.substr(engine.find("://") + 3)), acceptor(ex),
              on_held(std::move(held)) {
            acceptor.open();
            acceptor.bind(asio::local::stream_protocol::endpoint(path.string()));
            acceptor.listen();
        }
        void stop() {
            boost::system::error_code ec;
            acceptor.close(ec);
            for (auto& s : sockets)
                if (auto p = s.lock()) p->close(ec);
        }
        fs::path path;
        std::string upstream;
        asio::local::stream_protocol::acceptor acceptor;
        std::function<void()> on_held;
        std::vector<std::weak_ptr<socket_t>> sockets;
        bool held = false;
    };
    struct link {
        std::shared_ptr<socket_t> client, engine;
        bool hold_reply = false;
    };

    static asio::awaitable<void> accept(std::shared_ptr<state> st) {
        for (;;) {
            auto [ec, s] = co_await st->acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            auto l = std::make_shared<link>();
            l->client = std::make_shared<socket_t>(std::move(s));
            l->engine = std::make_shared<socket_t>(st->acceptor.get_executor());
            st->sockets.push_back(l->client);
            st->sockets.push_back(l->engine);
            auto [cec] = co_await l->engine->async_connect(asio::local::stream_protocol::endpoint(st->upstream),
                                                           asio::as_tuple(asio::use_awaitable));
            if (cec) co_return;
            asio::co_spawn(st->acceptor.get_executor(), requests(st, l), asio::detached);
            asio::co_spawn(st->acceptor.get_executor(), replies(st, l), asio::detached);
        }
    }
    static asio::awaitable<void> requests(std::shared_ptr<state> st, std::shared_ptr<link> l) {
        std::array<char, 16384> buf;
        std::string seen;
        for (;;) {
            auto [ec, n] = co_await l->client->async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            seen.append(buf.data(), n);
            if (!st->held && seen.find("POST ") != std::string::npos &&
                seen.find("/containers/create") != std::string::npos)
                st->held = l->hold_reply = true;
            if (seen.size() > 65536) seen.erase(0, seen.size() - 1024);
            auto [wec, w] = co_await asio::async_write(*l->engine, asio::buffer(buf.data(), n),
                                                       asio::as_tuple(asio::use_awaitable));
            if (wec) co_return;
        }
    }
    static asio::awaitable<void> replies(std::shared_ptr<state> st, std::shared_ptr<link> l) {
        std::array<char, 16384> buf;
        for (;;) {
            auto [ec, n] = co_await l->engine->async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;
            if (l->hold_reply) {
                st->on_held();  // the engine has answered the create; the client is left waiting
                co_return;
            }
            auto [wec, w] = co_await asio::async_write(*l->client, asio::buffer(buf.data(), n),
                                                       asio::as_tuple(asio::use_awaitable));
            if (wec) co_return;
        }
    }
    std::shared_ptr<state> state_;
};

// build_container cancelled after the engine created the container but before its reply arrived: the container is
// found by this call's label and removed.
asio::awaitable<void> cancelled_before_create_reply(const engine_under_test& e) {
    auto ex = co_await asio::this_coro::executor;
    auto direct = berth::client::at(ex, e.address);
    co_await ensure_base_image(direct);
    repo_fixture repo;
    temp_dir sockets;
    asio::cancellation_signal cancel;
    bool held = false;
    holding_proxy proxy(ex, e.address, sockets / "engine.sock", [&] {
        held = true;
        asio::post(ex, [&cancel] { cancel.emit(asio::cancellation_type::terminal); });
    });
    auto c = berth::client::at(ex, proxy.address());
    const auto name = unique_name("h3-cancelled");
    container_guard guard{e.address, name};
    // a container of another call (another token) is never touched
    const auto bystander = unique_name("h3-bystander");
    container_guard bystander_guard{e.address, bystander};
    berth::container_config other;
    other.image = base_image;
    other.cmd = {"true"};
    other.host.network_mode = "none";
    other.labels["berth.build-call"] = "someone-else";
    co_await direct.containers().create(other, bystander);

    std::exception_ptr outcome;
    try {
        co_await asio::co_spawn(ex, berth::build_container(c, eval_options(repo, name, nullptr)),
                                asio::bind_cancellation_slot(cancel.slot(), asio::use_awaitable));
    } catch (...) { outcome = std::current_exception(); }
    CHECK(held);
    REQUIRE(outcome);
    try {
        std::rethrow_exception(outcome);
    } catch (const boost::system::system_error& err) { CHECK(err.code() == asio::error::operation_aborted); }
    CHECK_THROWS_AS(co_await direct.containers().inspect(name), berth::not_found_error);
    CHECK_NOTHROW(co_await direct.containers().inspect(bystander));
}

// A stop right after build_container ends the container by the signal (exit code 128+15 from the init), never by
// the SIGKILL after the grace period (137): the init was ready for it.
asio::awaitable<void> stop_right_after_start(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    repo_fixture repo;
    // A race (a SIGTERM lost before catatonit execs the command): each start is one more chance to lose it.
    for (int i = 0; i < 8; ++i) {
        CAPTURE(i);
        const auto name = unique_name("h3-stop");
        container_guard guard{e.address, name};
        auto options = eval_options(repo, name, nullptr);
        options.verbose = false;
        auto box = co_await berth::build_container(c, options);
        REQUIRE(box.has_value());
        berth::container_stop_options within_30s;
        within_30s.timeout = 30;
        co_await c.containers().stop(box->id, within_30s);
        auto info = co_await c.containers().inspect(box->id);
        CHECK_FALSE(info.state.running);
        CHECK(info.raw.at("State").as_object().at("ExitCode").as_int64() == 143);
        co_await c.containers().remove(box->id, {.force = true});
    }
}


}  // namespace

TEST_SUITE("logger") {
TEST_CASE("format, levels, thread names, per-thread storage") {
    temp_dir t;
    CHECK(berth::get_thread_logger() == nullptr);
    auto log = berth::setup_logger(t / "nested/dir/worker_0.log");
    CHECK(berth::get_thread_logger() == log);
    log->info("hello");
    log->debug("below INFO: dropped");
    log->warning("careful");
    std::thread([&] {
        CHECK(berth::get_thread_logger() == nullptr);  // storage is per thread
        auto mine = berth::setup_logger(t / "nested/dir/worker_0.log");
        mine->error("from a worker");
        berth::set_thread_name("eval-worker-7");
        mine->info("named");
    }).join();
    auto text = read_file(t / "nested/dir/worker_0.log");
    std::regex first(R"(^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - MainThread - INFO - hello\n)");
    CHECK(std::regex_search(text, first));
    CHECK(text.find("dropped") == std::string::npos);
    CHECK(text.find(" - MainThread - WARNING - careful\n") != std::string::npos);
    CHECK(std::regex_search(text, std::regex(R"( - Thread-\d+ - ERROR - from a worker\n)")));
    CHECK(text.find(" - eval-worker-7 - INFO - named\n") != std::string::npos);
    // appends, never truncates
    berth::setup_logger(t / "nested/dir/worker_0.log")->info("again");
    CHECK(read_file(t / "nested/dir/worker_0.log").starts_with(text));
}
TEST_CASE("many threads on one file never interleave within a line") {
    temp_dir t;
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i)
        threads.emplace_back([&, i] {
            auto log = berth::setup_logger(t / "shared.log");
            berth::set_thread_name("T" + std::to_string(i));
            for (int k = 0; k < 500; ++k) log->info(std::string(200, char('a' + i)));
        });
    for (auto& th : threads) th.join();
    std::istringstream in(read_file(t / "shared.log"));
    int lines = 0;
    std::regex line(R"(.* - T(\d) - INFO - ([a-h])\2{199})");
    for (std::string l; std::getline(in, l); ++lines) {
        std::smatch m;
        REQUIRE(std::regex_match(l, m, line));
        CHECK(m[2].str()[0] == char('a' + std::stoi(m[1].str())));
    }
    CHECK(lines == 8 * 500);
}
TEST_CASE("an unwritable log path is a clear error") {
    CHECK_THROWS_AS(berth::setup_logger("/proc/berth-cannot/log.txt"), berth::error);
    CHECK_THROWS_AS(berth::setup_logger("/proc/version/log.txt"), berth::error);
}
}  // TEST_SUITE("logger")

TEST_SUITE("eval") {
TEST_CASE("build_container, exec, cleanup_container: the lifecycle") { for_each_engine(lifecycle); }
TEST_CASE("build only when missing, force_rebuild without cache, build failure") { for_each_engine(build_and_rebuild); }
TEST_CASE("copy to and from a container: trees, files, naming, parents, modes, missing sources") {
    for_each_engine(copy_round_trip);
}
TEST_CASE("copy into /a/b/c of an image without a shell") { for_each_engine(copy_into_scratch_image); }
TEST_CASE("exec options, log_container_output, streamed output") { for_each_engine(exec_and_output); }
TEST_CASE("GPU passthrough is attempted, and fails only when required") { for_each_engine(gpu_attempted); }
TEST_CASE("a 2 GiB file in and out with flat memory") { for_each_engine(big_file); }
TEST_CASE("copy into directories reached through symlinks: absolute, relative, /lib -> usr/lib, mid-path") {
    for_each_engine(copy_into_symlinked_directories);
}
TEST_CASE("copy out of a path that is a symlink") { for_each_engine(copy_out_of_a_symlink); }
TEST_CASE("links pointing outside a copy out: skip (default), keep, refuse") {
    for_each_engine(links_pointing_outside);
}
TEST_CASE("a copy in does not replace a directory with a file unless asked") {
    for_each_engine(directory_not_replaced);
}
TEST_CASE("build_container failure reasons as values") { for_each_engine(failure_reasons); }
TEST_CASE("exec: output kept when interrupted, bounded, or not collected") {
    for_each_engine(exec_interruptions_and_bounds);
}
TEST_CASE("build_container cancelled before the create reply leaves no container") {
    for_each_engine(cancelled_before_create_reply);
}
TEST_CASE("a stop right after build_container is ended by the signal, not the grace period") {
    for_each_engine(stop_right_after_start);
}
TEST_CASE("16 evaluations in parallel on one io_context") {
    for (auto& e : engines()) {
        CAPTURE(e.name);
        parallel_evaluations(e);
    }
}
TEST_CASE("the blocking facade") {
    for (auto& e : engines()) {
        CAPTURE(e.name);
        berth::blocking::client c(e.address);
        c.run(ensure_base_image(c.async()));
        repo_fixture repo;
        auto name = unique_name("blocking");
        container_guard guard{e.address, name};
        auto box = berth::blocking::build_container(c, eval_options(repo, name, nullptr));
        REQUIRE(box.has_value());
        auto r = berth::blocking::exec(c, *box, {"sh", "-c", "exit 9"});
        CHECK_THROWS_WITH_AS(berth::log_container_output(r, {.verbose = false}), "Script failed with exit code 9",
                             berth::script_failed);
        // a command line, split as a shell would
        auto line = berth::blocking::exec(c, *box, "sh -c 'echo \"two words\"; exit 4'");
        CHECK(line.exit_code == 4);
        CHECK(line.output == "two words\n");
        // the figures: on Docker a stats stream stays open in the background between calls, and each call
        // still returns once its own operation is done
        berth::run_options measured;
        measured.measure_usage = true;
        measured.verbose = false;
        auto first = berth::blocking::exec(c, *box, "true", measured);
        REQUIRE(first.usage.container_cpu_seconds.has_value());
        auto second = berth::blocking::exec(c, *box, "true", measured);
        REQUIRE(second.usage.container_cpu_seconds.has_value());
        CHECK(*second.usage.container_cpu_seconds >= *first.usage.container_cpu_seconds);
        // copies take copy_options: their own logger, the link policy; copy_from reports skipped links
        temp_dir t;
        auto log = std::make_shared<berth::logger>(t / "blocking.log");
        berth::copy_options copy;
        copy.log = log;
        write_file(t / "in.txt", "blocking\n");
        berth::blocking::copy_to_container(c, *box, t / "in.txt", "/task/in.txt", copy);
        berth::blocking::exec(c, *box, "ln -s /etc/passwd /task/outside");
        auto copied = berth::blocking::copy_from_container(c, *box, "/task", t / "out", copy);
        CHECK(slurp(t / "out/in.txt") == "blocking\n");
        REQUIRE(copied.skipped_links.size() == 1);
        CHECK(copied.skipped_links[0].path == "/task/outside");
        auto text = slurp(t / "blocking.log");
        CHECK(text.find("INFO - Copied " + t.path.string() + "/in.txt to " + name + ":/task/in.txt") !=
              std::string::npos);
        CHECK(text.find("WARNING - Skipped symlink /task/outside -> /etc/passwd") != std::string::npos);
        // a container build_container did not make, wrapped by id
        berth::container wrapped{&c.async(), box->id, "wrapped"};
        CHECK(berth::blocking::exec(c, wrapped, "cat /task/in.txt").output == "blocking\n");
        CHECK(berth::blocking::cleanup_container(c, *box, {.verbose = false}).complete());
    }
}
TEST_CASE("cleanup_container on an engine that is not there reports the container not removed, and why") {
    temp_dir t;
    const std::string address = "unix://" + (t.path / "no-engine.sock").string();
    auto report = run_to_completion([&]() -> asio::awaitable<berth::cleanup_report> {
        auto c = berth::client::at(co_await asio::this_coro::executor, address);
        berth::container gone{&c, std::string(64, 'a'), "gone"};
        co_return co_await berth::cleanup_container(gone, {.verbose = false});
    }());
    CHECK_FALSE(report.container_removed);
    CHECK_FALSE(report.complete());
    REQUIRE(report.problems.size() == 2);  // the stop and the removal
    CHECK(report.problems[1].find("Error removing container gone") != std::string::npos);
    REQUIRE(report.error);
    CHECK_THROWS_AS(std::rethrow_exception(report.error), boost::system::system_error);
}
}  // TEST_SUITE("eval")

// Minimal images and directory modes (issue #22).
namespace {
// A distroless-like image: FROM scratch with Debian's static busybox at /app/busybox (only under that name does it
// run the applet its first argument names) and a copy of it named tail (busybox picks its applet from argv[0]) for
// build_container's `tail -f /dev/null`. No shell, no ps, no tar anywhere.
struct minimal_repo {
    temp_dir dir;
    fs::path path;
    minimal_repo() : path(dir / "repo") {
        fs::create_directories(path);
        fs::copy_file("/bin/busybox", path / "bb");
        write_file(path / "Dockerfile", "FROM scratch\nCOPY bb /app/busybox\nCOPY bb /bin/tail\n");
    }
};

// Modes of the names under `root` (relative), symlinks left out: what a round trip must keep.
std::map<std::string, unsigned> modes_under(const fs::path& root) {
    std::map<std::string, unsigned> out;
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
        struct stat st {};
        REQUIRE(::lstat(it->path().c_str(), &st) == 0);
        if (!S_ISLNK(st.st_mode)) out[fs::relative(it->path(), root).string()] = st.st_mode & 07777;
    }
    return out;
}

asio::awaitable<void> minimal_image(const engine_under_test& e) {
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    minimal_repo repo;
    temp_dir logs;
    auto log = std::make_shared<berth::logger>(logs / "minimal.log");
    const auto image = unique_name("minimal") + "-img";
    const auto name = unique_name("minimal");
    container_guard guard{e.address, name};
    berth::build_container_options options;
    options.repo_path = repo.path.string();
    options.image_name = image;
    options.container_name = name;
    options.network_mode = "none";
    options.log = log;

    // built (through berth) and started, although the engine cannot run ps in it
    auto box = co_await berth::build_container(c, options);
    REQUIRE_MESSAGE(box.has_value(), (box.failure() ? box.failure()->message : std::string()));
    CHECK((co_await c.containers().inspect(box->id)).state.running);
    // really minimal: no sh, ps or tar on PATH or anywhere on its filesystem
    for (const char* missing : {"sh", "ps", "tar"}) {
        CAPTURE(missing);
        bool ran = false;
        try {
            auto r = co_await berth::exec(*box, berth::argv(missing, "--help"));
            ran = r.exit_code == 0;
        } catch (const std::exception&) {}
        CHECK_FALSE(ran);
    }
    auto found = co_await berth::exec(*box, berth::argv("/app/busybox", "find", "/", "-xdev", "(", "-name", "sh", "-o",
                                                        "-name", "ps", "-o", "-name", "tar", ")"));
    CHECK(found.exit_code == 0);
    CHECK(found.output == "");

    // exec of the static binary: output and exit codes
    auto hi = co_await berth::exec(*box, berth::argv("/app/busybox", "echo", "hello from scratch"));
    CHECK(hi.exit_code == 0);
    CHECK(hi.stdout_text == "hello from scratch\n");
    auto missing = co_await berth::exec(*box, berth::argv("/app/busybox", "cat", "/no/such/file"));
    CHECK(missing.exit_code == 1);
    CHECK(missing.stdout_text == "");
    CHECK(missing.stderr_text.find("/no/such/file") != std::string::npos);

    // copies both ways, a file and a directory, through the archive endpoints (no tar in the container)
    temp_dir t;
    write_file(t / "in.txt", "a file into scratch\n");
    make_rich_tree(t / "tree");
    co_await berth::copy_to_container(*box, t / "in.txt", "/data/files/in.txt", {.verbose = false});
    co_await berth::copy_to_container(*box, t / "tree", "/data/tree", {.verbose = false});
    auto cat = co_await berth::exec(
        *box, berth::argv("/app/busybox", "cat", "/data/files/in.txt", "/data/tree/nested/one/two/three.txt"));
    CHECK(cat.output == "a file into scratch\ndeep\n");
    co_await berth::copy_from_container(*box, "/data/files/in.txt", t / "back/in.txt", {.verbose = false});
    CHECK(slurp(t / "back/in.txt") == "a file into scratch\n");
    co_await berth::copy_from_container(*box, "/data/tree", t / "back/tree", {.verbose = false});
    check_same_tree(t / "tree", t / "back/tree");

    // a stop is ended by the signal the init forwards (143), not by the grace period's SIGKILL (137); each fresh
    // container is one more chance for a SIGTERM sent before the init was ready to be lost
    for (int i = 0; i < 3; ++i) {
        CAPTURE(i);
        const auto other = unique_name("minimal-stop");
        container_guard other_guard{e.address, other};
        auto stop_options = options;
        stop_options.container_name = other;
        stop_options.verbose = false;
        auto quick = co_await berth::build_container(c, stop_options);
        REQUIRE(quick.has_value());
        berth::container_stop_options within_30s;
        within_30s.timeout = 30;
        co_await c.containers().stop(quick->id, within_30s);
        auto info = co_await c.containers().inspect(quick->id);
        CHECK_FALSE(info.state.running);
        CHECK(info.raw.at("State").as_object().at("ExitCode").as_int64() == 143);
        co_await c.containers().remove(quick->id, {.force = true});
    }

    berth::cleanup_options cleanup;
    cleanup.log = log;
    cleanup.stop_timeout_seconds = 30;
    co_await berth::cleanup_container(*box, cleanup);
    CHECK_THROWS_AS(co_await c.containers().inspect(box->id), berth::not_found_error);
    auto text = slurp(logs / "minimal.log");
    CHECK(text.find("Stopped container " + name) != std::string::npos);
    CHECK(text.find("Removed container " + name) != std::string::npos);
    CHECK(text.find("ERROR") == std::string::npos);
    co_await c.images().remove(image, {.force = true});
}

// Sets the process umask for a scope (the extractor reads it), so the expected modes do not depend on the caller's.
struct umask_scope {
    mode_t old;
    explicit umask_scope(mode_t m) : old(::umask(m)) {}
    ~umask_scope() { ::umask(old); }
};

asio::awaitable<void> directory_modes_round_trip(const engine_under_test& e) {
    umask_scope mask(022);
    auto c = berth::client::at(co_await asio::this_coro::executor, e.address);
    co_await ensure_base_image(c);
    repo_fixture repo;
    const auto name = unique_name("modes");
    container_guard guard{e.address, name};
    auto box = co_await berth::build_container(c, eval_options(repo, name, nullptr));
    REQUIRE(box.has_value());
    temp_dir t;
    const auto src = t / "secret-tree";
    write_file(src / "private-700/key", "k");
    write_file(src / "private-700/tool", "t");
    write_file(src / "read-only-500/inner/notes", "n");
    write_file(src / "group-750/shared", "s");
    fs::permissions(src / "private-700/key", fs::perms(0600));
    fs::permissions(src / "private-700/tool", fs::perms(0755));
    fs::permissions(src / "read-only-500/inner/notes", fs::perms(0600));
    fs::permissions(src / "group-750/shared", fs::perms(0755));
    fs::permissions(src / "private-700", fs::perms(0700));
    fs::permissions(src / "read-only-500/inner", fs::perms(0500));
    fs::permissions(src / "read-only-500", fs::perms(0500));
    fs::permissions(src / "group-750", fs::perms(0750));
    fs::permissions(src, fs::perms(0700));
    const std::map<std::string, unsigned> want = {{"private-700", 0700},         {"private-700/key", 0600},
                                                  {"private-700/tool", 0755},    {"read-only-500", 0500},
                                                  {"read-only-500/inner", 0500}, {"read-only-500/inner/notes", 0600},
                                                  {"group-750", 0750},           {"group-750/shared", 0755}};
    REQUIRE(modes_under(src) == want);

    // the packer carries the modes into the archive, and the engine keeps them
    co_await berth::copy_to_container(*box, src, "/work/secret-tree", {.verbose = false});
    auto in_container = co_await berth::exec(
        *box, berth::argv("sh", "-c", "cd /work && find secret-tree | sort | xargs stat -c '%a %n'"));
    CHECK(in_container.output ==
          "700 secret-tree\n750 secret-tree/group-750\n755 secret-tree/group-750/shared\n700 secret-tree/private-700\n"
          "600 secret-tree/private-700/key\n755 secret-tree/private-700/tool\n500 secret-tree/read-only-500\n"
          "500 secret-tree/read-only-500/inner\n600 secret-tree/read-only-500/inner/notes\n");

    // and back out: the same modes (stat, not access: the tests may run as root, which ignores modes)
    co_await berth::copy_from_container(*box, "/work/secret-tree", t / "back/secret-tree", {.verbose = false});
    CHECK(modes_under(t / "back/secret-tree") == want);
    struct stat top {};
    REQUIRE(::stat((t / "back/secret-tree").c_str(), &top) == 0);
    CHECK((top.st_mode & 07777) == 0700);
    CHECK(slurp(t / "back/secret-tree/read-only-500/inner/notes") == "n");

    // merged into an existing directory: what was there keeps its mode, what arrives keeps the archive's
    fs::create_directories(t / "merge/secret-tree/group-750");
    fs::permissions(t / "merge/secret-tree/group-750", fs::perms(0711));
    co_await berth::copy_from_container(*box, "/work/secret-tree", t / "merge/secret-tree", {.verbose = false});
    auto merged = modes_under(t / "merge/secret-tree");
    CHECK(merged.at("group-750") == 0711);
    CHECK(merged.at("read-only-500") == 0500);
    CHECK(merged.at("private-700") == 0700);
    CHECK(merged.at("private-700/key") == 0600);

    // a world-writable directory comes back 0755, never wider
    co_await berth::exec(
        *box,
        berth::argv("sh", "-c", "mkdir -p /work/open/inner && chmod 0777 /work/open && chmod 0775 /work/open/inner"));
    co_await berth::copy_from_container(*box, "/work/open", t / "open", {.verbose = false});
    CHECK(modes_under(t / "open") == std::map<std::string, unsigned>{{"inner", 0755}});
    struct stat open_top {};
    REQUIRE(::stat((t / "open").c_str(), &open_top) == 0);
    CHECK((open_top.st_mode & 07777) == 0755);
    co_await berth::cleanup_container(*box, {.verbose = false});
}


}  // namespace

TEST_SUITE("eval") {
TEST_CASE("a minimal image (no shell, ps or tar): build_container, exec, copies both ways, a quick stop") {
    for_each_engine(minimal_image);
}
TEST_CASE("restrictive directory modes survive a copy in and back out; wide ones come back 0755") {
    for_each_engine(directory_modes_round_trip);
}
}  // TEST_SUITE("eval")
