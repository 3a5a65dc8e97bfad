// The child processes berth starts (credential helpers, and `ssh ... docker system dial-stdio`) when they are
// hostile or clumsy: a wrapper script whose own child outlives it or never lets go of the pipes, and a child that
// prints without end on stderr or stdout. Fake helpers and a fake `ssh` are shell scripts written into a temp dir;
// no engine and no sshd is needed.
#include "support/engines.hpp"

#include <berth/engine/credentials.hpp>

#include <cerrno>
#include <csignal>
#include <optional>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>

using namespace berth_test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {


// The pid a script wrote into `file`.
pid_t pid_in(const fs::path& file) {
    REQUIRE(fs::exists(file));
    return static_cast<pid_t>(std::stoi(read_file(file)));
}

// Whether the process has ended: gone (ESRCH), or a zombie waiting for init to reap it. An ended process is
// reparented to init, which reaps it when it gets to it: polled for a while, not timed.
bool ended(pid_t pid) {
    for (int i = 0; i < 1000; ++i) {
        if (::kill(pid, 0) == -1 && errno == ESRCH) return true;
        std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
        std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
        auto close = text.rfind(')');
        if (close != std::string::npos && close + 2 < text.size() && text[close + 2] == 'Z') return true;
        std::this_thread::sleep_for(10ms);
    }
    return false;
}

bool no_child_left() {
    int status = 0;
    return ::waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD;
}

// This process's peak resident memory (VmHWM), in bytes.
std::size_t peak_memory() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.starts_with("VmHWM:")) return std::stoull(line.substr(6)) * 1024;
    FAIL("no VmHWM in /proc/self/status");
    return 0;
}

// A script's lines that print 512 MiB to stderr, then note in `size_file` how big what its stderr goes to has
// grown (a file berth keeps would be 512 MiB; a pipe berth drains holds nothing).
std::string flood_stderr(const fs::path& size_file) {
    return "yes 'noise noise noise noise noise noise noise' | head -c 536870912 >&2\n"
           "stat -L -c %s /proc/$$/fd/2 > '" +
           size_file.string() + "'\n";
}

constexpr std::size_t memory_bound = 64u << 20;

// PATH with `dir` first, for the length of a test.
struct path_first {
    std::string saved;
    explicit path_first(const fs::path& dir) {
        const char* p = std::getenv("PATH");
        saved = p ? p : "/usr/bin:/bin";
        ::setenv("PATH", (dir.string() + ":" + saved).c_str(), 1);
    }
    ~path_first() { ::setenv("PATH", saved.c_str(), 1); }
};

// An ssh:// endpoint reached through the `ssh` first on PATH.
berth::engine_endpoint fake_ssh_endpoint() {
    berth::engine_endpoint ep;
    ep.address = berth::parse_docker_host("ssh://berth-test-host");
    return ep;
}

asio::awaitable<void> ping_within(berth::engine_endpoint ep, std::chrono::steady_clock::duration limit) {
    auto c = berth::client::at(co_await asio::this_coro::executor, std::move(ep));
    co_await berth::with_timeout(c.system().ping(), limit);
}

}  // namespace

TEST_SUITE("child processes") {

// ------------------------------------------------------------------------------------------------------------
// credential helpers
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("credential helpers: a wrapper script's own children end with it, and its output is bounded") {
    temp_dir dir;
    const std::string key = "127.0.0.1:5999";
    berth::credential_options o;
    o.config_dir = dir.path;
    o.helper_search_path = dir.path.string();
    const auto child_pid = dir / "child.pid", grandchild_pid = dir / "grandchild.pid";
    const std::string record_pids = "sleep 60 &\necho $! > '" + grandchild_pid.string() + "'\necho $$ > '" +
                                    child_pid.string() + "'\n";

    SUBCASE("stopped at the time limit: its whole process group ends") {
        write_script(dir / "docker-credential-hang", record_pids + "exec sleep 60\n");
        write_file(dir / "config.json", R"({"credsStore":"hang"})");
        o.helper_timeout = 1s;
        CHECK_THROWS_WITH_AS(run_to_completion(berth::find_credentials(key, o)), doctest::Contains("did not finish"),
                             berth::credential_error);
        CHECK(ended(pid_in(child_pid)));
        CHECK(ended(pid_in(grandchild_pid)));
    }
    SUBCASE("it answers and exits while its child keeps stdout open: the answer is read, the child ended") {
        write_script(dir / "docker-credential-leaky",
                     "read -r url\n" + record_pids + "printf '{\"Username\":\"u\",\"Secret\":\"s\"}'\nexit 0\n");
        write_file(dir / "config.json", R"({"credsStore":"leaky"})");
        o.helper_timeout = 20s;  // waiting for the end of stdout would run into this (an error), not into success
        auto c = run_to_completion(berth::find_credentials(key, o));
        REQUIRE(c);
        CHECK(c->username == "u");
        CHECK(ended(pid_in(grandchild_pid)));
    }
    SUBCASE("512 MiB on stderr, then a failure: the end of stderr is in the error, and memory stays bounded") {
        const auto size_file = dir / "stderr.size";
        write_script(dir / "docker-credential-noisy",
                     flood_stderr(size_file) + "echo 'the keychain is locked' >&2\nexit 3\n");
        write_file(dir / "config.json", R"({"credsStore":"noisy"})");
        o.helper_timeout = 10min;  // 512 MiB through a pipe on a loaded machine may take longer than the default 30 s
        const auto before = peak_memory();
        try {
            run_to_completion(berth::find_credentials(key, o));
            FAIL("a failing helper was not reported");
        } catch (const berth::credential_error& e) {
            const std::string what = e.what();
            CHECK(contains(what, "exit code 3"));
            CHECK(contains(what, "the keychain is locked"));
            CHECK(what.size() < 8 * 1024);
        }
        CHECK(peak_memory() - before < memory_bound);
        CHECK(std::stoull(read_file(size_file)) < memory_bound);
    }
    SUBCASE("more than 1 MiB on stdout is a credential_error that does not quote it") {
        write_script(dir / "docker-credential-chatty",
                     "read -r url\nyes '{\"Secret\":\"p4ssw0rd-leak\"}' | head -c 3000000\nexit 0\n");
        write_file(dir / "config.json", R"({"credsStore":"chatty"})");
        try {
            run_to_completion(berth::find_credentials(key, o));
            FAIL("3 MB of output was accepted");
        } catch (const berth::credential_error& e) {
            CHECK(contains(e.what(), "printed more than 1 MiB"));
            CHECK_FALSE(contains(e.what(), "p4ssw0rd-leak"));
        }
    }
    CHECK(no_child_left());
}

// ------------------------------------------------------------------------------------------------------------
// ssh
// ------------------------------------------------------------------------------------------------------------

TEST_CASE("ssh: a wrapper script's own children end with it, and its stderr is bounded") {
    temp_dir dir;
    path_first path(dir.path);
    const auto child_pid = dir / "child.pid", grandchild_pid = dir / "grandchild.pid";
    const std::string record_pids = "sleep 60 &\necho $! > '" + grandchild_pid.string() + "'\necho $$ > '" +
                                    child_pid.string() + "'\n";

    SUBCASE("a connect cancelled (time limit) ends the whole process group") {
        write_script(dir / "ssh", record_pids + "exec sleep 60\n");
        CHECK_THROWS_AS(run_to_completion(ping_within(fake_ssh_endpoint(), 1s)), boost::system::system_error);
        CHECK(ended(pid_in(child_pid)));
        CHECK(ended(pid_in(grandchild_pid)));
    }
    SUBCASE("a connection dropped ends the whole process group") {
        // answers GET /_ping once, keeping the connection open
        write_script(dir / "ssh", record_pids + "cr=$(printf '\\r')\n"
                                                "while IFS= read -r line; do [ \"$line\" = \"$cr\" ] && break; done\n"
                                                "printf 'HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nOK'\n"
                                                "exec sleep 60\n");
        run_to_completion([]() -> asio::awaitable<void> {
            berth::socket_transport transport(co_await asio::this_coro::executor, fake_ssh_endpoint());
            auto stream = co_await berth::with_timeout(transport.connect(), 20s);
        }());
        CHECK(ended(pid_in(child_pid)));
        CHECK(ended(pid_in(grandchild_pid)));
    }
    SUBCASE("ssh exits while its child keeps the socket open: the failure is reported, the child ended") {
        write_script(dir / "ssh", record_pids + "echo 'ssh: connect to host berth-test-host: refused' >&2\nexit 255\n");
        try {
            run_to_completion(
                ping_within(fake_ssh_endpoint(), 20s));  // waiting for the end of output would run into this
            FAIL("the connection succeeded");
        } catch (const berth::ssh_error& e) {
            CHECK(e.code() == berth::ssh_errc::connection_failed);
            CHECK(contains(e.ssh_stderr(), "refused"));
        }
        CHECK(ended(pid_in(grandchild_pid)));
    }
    SUBCASE("512 MiB on stderr, then a failure: the end of stderr is in the error, and memory stays bounded") {
        const auto size_file = dir / "stderr.size";
        write_script(dir / "ssh", flood_stderr(size_file) + "echo 'Permission denied (publickey).' >&2\nexit 255\n");
        const auto before = peak_memory();
        try {
            run_to_completion(ping_within(fake_ssh_endpoint(), 60s));
            FAIL("the connection succeeded");
        } catch (const berth::ssh_error& e) {
            CHECK(e.code() == berth::ssh_errc::authentication_refused);
            CHECK(e.exit_status() == 255);
            CHECK(contains(e.ssh_stderr(), "Permission denied (publickey)."));
            CHECK(e.ssh_stderr().size() <= 8 * 1024);
            CHECK(std::string(e.what()).size() < 16 * 1024);
        }
        CHECK(peak_memory() - before < memory_bound);
        CHECK(std::stoull(read_file(size_file)) < memory_bound);
    }
    CHECK(no_child_left());
}

}  // TEST_SUITE("child processes")
