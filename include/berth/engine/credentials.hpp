#pragma once
// Registry credentials found the way the docker CLI finds them, in $DOCKER_CONFIG/config.json (default
// ~/.docker/config.json):
//   1. "credHelpers": {"<registry>": "<name>"}  ->  docker-credential-<name> for that registry only
//   2. "credsStore": "<name>"                   ->  docker-credential-<name> for every other registry
//   3. "auths": {"<registry>": {"auth": base64("user:password"), "identitytoken": ...}}   when no helper applies
// A helper is run as `docker-credential-<name> get` with the server key on stdin and prints
// {"ServerURL","Username","Secret"} (Username "<token>": Secret is an identity token). Docker Hub's key is
// "https://index.docker.io/v1/". A helper runs as a child process with a time limit; when it fails, its own
// error text is kept; nothing a helper or config.json holds is ever quoted when it may be a secret.
#include <berth/detail/base64.hpp>
#include <berth/error.hpp>
#include <berth/detail/child_process.hpp>
#include <berth/detail/outside_text.hpp>
#include <berth/detail/poll.hpp>
#include <berth/engine/registry_auth.hpp>
#include <berth/with_timeout.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>

#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace berth {

enum class credential_errc {
    config_unreadable = 1,   // config.json exists but cannot be read
    config_too_large,        // config.json is over max_docker_config_bytes
    config_malformed,        // config.json is not what the docker CLI writes
    helper_not_found,        // no docker-credential-<name> in the search path
    helper_not_started,      // the helper could not be run
    helper_failed,           // the helper exited non-zero (its own words in what())
    helper_timed_out,        // the helper did not finish within credential_options::helper_timeout
    helper_reply_too_large,  // the helper printed more than berth reads
    helper_reply_malformed,  // the helper's reply is not the protocol's JSON
};

inline const char* errc_message(credential_errc e) noexcept {
    switch (e) {
    case credential_errc::config_unreadable: return "the docker config cannot be read";
    case credential_errc::config_too_large: return "the docker config is too large";
    case credential_errc::config_malformed: return "the docker config is malformed";
    case credential_errc::helper_not_found: return "credential helper not found";
    case credential_errc::helper_not_started: return "credential helper could not be run";
    case credential_errc::helper_failed: return "credential helper failed";
    case credential_errc::helper_timed_out: return "credential helper timed out";
    case credential_errc::helper_reply_too_large: return "credential helper reply too large";
    case credential_errc::helper_reply_malformed: return "credential helper reply malformed";
    }
    return "credential error";
}
inline const boost::system::error_category& credential_category() noexcept {
    static const detail::errc_category<credential_errc> category("berth.credential", errc_message);
    return category;
}
inline boost::system::error_code make_error_code(credential_errc e) noexcept {
    return {static_cast<int>(e), credential_category()};
}

}  // namespace berth

template <>
struct boost::system::is_error_code_enum<berth::credential_errc> : std::true_type {};

namespace berth {

// Reading config.json or running a credential helper failed. what() names the file or the helper and says why,
// with the helper's own error text; it never contains a secret. code() is a credential_errc (category
// "berth.credential").
class credential_error : public error {
public:
    credential_error(credential_errc code, const std::string& what) : error(code, what) {}
};

struct credential_options {
    std::filesystem::path config_dir{};  // empty: $DOCKER_CONFIG, else $HOME/.docker
    std::string helper_search_path{};    // where docker-credential-* are looked for; empty: $PATH (the helper
                                         // itself runs with this process's environment)
    std::chrono::steady_clock::duration helper_timeout = std::chrono::seconds(30);
};

namespace detail {

inline std::filesystem::path docker_config_dir(const credential_options& o) {
    if (!o.config_dir.empty()) return o.config_dir;
    if (const char* d = std::getenv("DOCKER_CONFIG"); d && *d) return d;
    if (const char* h = std::getenv("HOME"); h && *h) return std::filesystem::path(h) / ".docker";
    return {};
}

// "https://127.0.0.1:5000/v2/" -> "127.0.0.1:5000" (the docker CLI's ConvertToHostname).
inline std::string_view host_of_key(std::string_view key) {
    for (std::string_view scheme : {"http://", "https://"})
        if (key.starts_with(scheme)) key.remove_prefix(scheme.size());
    return key.substr(0, key.find('/'));
}

struct docker_config {
    std::filesystem::path file{};
    std::string creds_store{};
    std::map<std::string, std::string> cred_helpers{};
    std::map<std::string, registry_credentials> auths{};
};

inline std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
    return s;
}

// The largest config.json read (the docker CLI's own is a few KiB; contexts' files have the same bound).
inline constexpr std::size_t max_docker_config_bytes = std::size_t{1} << 20;

// A missing file is an empty configuration (as for the CLI); an unreadable, malformed or oversized one is a
// credential_error.
inline docker_config read_docker_config(const credential_options& o) {
    docker_config cfg;
    auto dir = docker_config_dir(o);
    if (dir.empty()) return cfg;
    cfg.file = dir / "config.json";
    std::error_code ec;
    if (!std::filesystem::exists(cfg.file, ec)) return cfg;
    const std::string where = cfg.file.string();
    std::ifstream in(cfg.file, std::ios::binary);
    if (!in) throw credential_error(credential_errc::config_unreadable, where + ": cannot be read");
    std::string text;
    char buf[4096];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        text.append(buf, static_cast<std::size_t>(in.gcount()));
        if (text.size() > max_docker_config_bytes)
            throw credential_error(credential_errc::config_too_large,
                                   where + ": larger than " + std::to_string(max_docker_config_bytes) + " bytes");
    }
    if (in.bad()) throw credential_error(credential_errc::config_unreadable, where + ": cannot be read");
    boost::system::error_code jec;
    auto value = boost::json::parse(text, jec);
    // the parser's message only, never an excerpt: the file holds passwords
    if (jec)
        throw credential_error(credential_errc::config_malformed, where + ": not valid JSON (" + jec.message() + ")");
    if (!value.is_object()) throw credential_error(credential_errc::config_malformed, where + ": not a JSON object");
    auto& root = value.get_object();
    auto string_of = [&](const boost::json::object& obj, std::string_view key, std::string_view what) -> std::string {
        auto* p = obj.if_contains(key);
        if (p == nullptr || p->is_null()) return {};
        if (!p->is_string())
            throw credential_error(credential_errc::config_malformed,
                                   where + ": " + std::string(what) + " is not a string");
        return std::string(p->get_string());
    };
    auto object_of = [&](std::string_view key) -> const boost::json::object* {
        auto* p = root.if_contains(key);
        if (p == nullptr || p->is_null()) return nullptr;
        if (!p->is_object())
            throw credential_error(credential_errc::config_malformed,
                                   where + ": \"" + std::string(key) + "\" is not an object");
        return &p->get_object();
    };
    cfg.creds_store = string_of(root, "credsStore", "\"credsStore\"");
    if (auto* helpers = object_of("credHelpers"))
        for (auto& [registry, name] : *helpers)
            cfg.cred_helpers[std::string(registry)] = string_of(*helpers, registry, "a \"credHelpers\" entry");
    if (auto* auths = object_of("auths"))
        for (auto& [key, entry] : *auths) {
            const std::string what = "the \"auths\" entry for " + quote_outside_text(key);
            if (!entry.is_object())
                throw credential_error(credential_errc::config_malformed, where + ": " + what + " is not an object");
            auto& e = entry.get_object();
            registry_credentials c;
            c.server_address = std::string(key);
            c.username = string_of(e, "username", what + ": \"username\"");
            c.password = string_of(e, "password", what + ": \"password\"");
            c.identity_token = string_of(e, "identitytoken", what + ": \"identitytoken\"");
            c.registry_token = string_of(e, "registrytoken", what + ": \"registrytoken\"");
            if (auto auth = string_of(e, "auth", what + ": \"auth\""); !auth.empty()) {
                auto decoded = base64_decode(auth);
                auto colon = decoded ? decoded->find(':') : std::string::npos;
                if (colon == std::string::npos)
                    throw credential_error(credential_errc::config_malformed,
                                           where + ": " + what + " has an invalid \"auth\" field");
                c.username = decoded->substr(0, colon);
                c.password = decoded->substr(colon + 1);
            }
            cfg.auths[std::string(key)] = std::move(c);
        }
    return cfg;
}

// ---- running docker-credential-<name> ----

inline std::string find_in_path(const std::string& program, std::string_view path) {
    while (true) {
        auto colon = path.find(':');
        // A string_view for the directory: g++ 12 -O3 misreads assigning "." to a std::string (-Wrestrict).
        std::string_view dir = path.substr(0, colon);
        if (dir.empty()) dir = ".";
        std::string candidate;
        candidate.append(dir).append("/").append(program);
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
        if (colon == std::string_view::npos) return {};
        path.remove_prefix(colon + 1);
    }
}

// "credential helper 'docker-credential-<name>'": the name comes from config.json, so it is quoted, bounded.
inline std::string helper_label(const std::string& name) {
    return "credential helper " + quote_outside_text("docker-credential-" + name);
}

struct helper_result {
    int exit_code = 0;
    std::string out{}, err{};
};

// The largest reply of a credential helper read (a real one is a few hundred bytes).
inline constexpr std::size_t max_helper_reply_bytes = std::size_t{1} << 20;

// Runs `docker-credential-<name> <action>` with `input` on stdin; stdout (up to max_helper_reply_bytes, more is a
// credential_error) and the end of stderr collected. The child (child_process: stdin and stdout on one socket,
// its own process group) is killed with its whole group and reaped however this ends, and its group as soon as
// it exits, so an error, a time-out, a cancellation or a child of the helper holding stdout open never leaves a
// process behind or this waiting.
inline boost::asio::awaitable<helper_result> run_helper_once(const std::string& name, const std::string& action,
                                                             const std::string& input, const credential_options& o) {
    namespace asio = boost::asio;
    using socket = asio::local::stream_protocol::socket;
    const std::string program = "docker-credential-" + name;
    const char* env_path = std::getenv("PATH");
    std::string search = o.helper_search_path.empty() ? std::string(env_path ? env_path : "/usr/bin:/bin")
                                                      : o.helper_search_path;
    std::string path = find_in_path(program, search);
    if (path.empty())
        throw credential_error(credential_errc::helper_not_found, helper_label(name) + " not found in the search path");

    auto ex = co_await asio::this_coro::executor;
    socket ours(ex), theirs(ex);
    asio::local::connect_pair(ours, theirs);
    child_process child;
    std::vector<std::string> argv{path, action};
    if (int rc = child.spawn(ex, argv, theirs.native_handle()); rc != 0)
        throw credential_error(credential_errc::helper_not_started,
                               "cannot run " + helper_label(name) + ": " + std::strerror(rc));
    theirs.close();

    helper_result result;
    // a helper that exits without reading its input makes this fail (EPIPE): its exit status tells the story
    auto [write_error, written] = co_await asio::async_write(ours, asio::buffer(input),
                                                             asio::as_tuple(asio::use_awaitable));
    (void)written;
    boost::system::error_code ignored;
    if (!write_error) ours.shutdown(socket::shutdown_send, ignored);  // the end of the server key
    std::array<char, 4096> buffer;
    for (;;) {
        auto [ec, n] = co_await ours.async_read_some(asio::buffer(buffer), asio::as_tuple(asio::use_awaitable));
        if (result.out.size() + n > max_helper_reply_bytes)  // never quoted: it is where the secret would be
            throw credential_error(credential_errc::helper_reply_too_large,
                                   helper_label(name) + " " + action + " printed more than " +
                                       std::to_string(max_helper_reply_bytes >> 20) + " MiB");
        result.out.append(buffer.data(), n);
        // a helper that exits without reading its stdin resets the socket: also the end of what it wrote
        if (ec == asio::error::eof || ec == asio::error::connection_reset) break;
        if (ec)
            throw berth::error(ec, "reading the output of " + helper_label(name) + " " + action + ": " + ec.message());
    }
    // stdout closed: the helper is ending; wait for its status without blocking the thread (the caller's time
    // limit bounds this too)
    auto reap = [&child]() -> asio::awaitable<std::optional<int>> { co_return child.try_reap(); };
    const poll_policy policy{.first = std::chrono::milliseconds(1), .max = std::chrono::milliseconds(50)};
    std::optional<int> status = co_await poll_until(reap, policy);
    result.exit_code = WIFEXITED(*status) ? WEXITSTATUS(*status) : 128 + WTERMSIG(*status);
    result.err = child.stderr_text(1024);  // the end: where a helper's reason is, after whatever it printed
    co_return result;
}

// run_helper_once within the time limit; a time-out kills the helper.
inline boost::asio::awaitable<helper_result> run_helper(const std::string& name, const std::string& action,
                                                        const std::string& input, const credential_options& o) {
    try {
        co_return co_await with_timeout(run_helper_once(name, action, input, o), o.helper_timeout);
    } catch (const boost::system::system_error& e) {
        if (e.code() != boost::asio::error::timed_out) throw;
    }
    auto seconds = static_cast<double>(
                       std::chrono::duration_cast<std::chrono::milliseconds>(o.helper_timeout).count()) /
                   1000.0;
    throw credential_error(credential_errc::helper_timed_out, helper_label(name) + " did not finish within " +
                                                                  std::to_string(seconds) + " s; it was stopped");
}

// The helper's own explanation: its stdout (the protocol's error channel), else its stderr.
inline std::string helper_failure(const std::string& name, const std::string& action, const helper_result& r) {
    auto text = trim(r.out.empty() ? r.err : r.out);
    return helper_label(name) + " " + action + " failed (exit code " + std::to_string(r.exit_code) + ")" +
           (text.empty() ? std::string() : ": " + bounded_outside_text(text, 1024));
}

// A helper's reply to `action` as a JSON object; anything larger than max_helper_reply_bytes or not an object is a
// credential_error naming the helper and never quoting the reply.
inline boost::json::value parse_helper_reply_object(std::string_view out, const std::string& name, const char* action) {
    if (out.size() > max_helper_reply_bytes)
        throw credential_error(credential_errc::helper_reply_too_large,
                               helper_label(name) + " " + action + " printed more than " +
                                   std::to_string(max_helper_reply_bytes) + " bytes");
    boost::system::error_code ec;
    auto v = boost::json::parse(out, ec);
    if (ec || !v.is_object())
        throw credential_error(credential_errc::helper_reply_malformed,
                               helper_label(name) + " " + action + " printed something that is not a JSON object");
    return v;
}

// A helper's reply to `get` ({"ServerURL","Username","Secret"}) as credentials for `key`; nullopt when it names
// none. Anything else is a credential_error naming the helper, never quoting the reply (it is where the secret
// would be). A pure function of its input, so it is fuzzed (tests/fuzz/credential_helper_fuzz.cpp).
inline std::optional<registry_credentials> parse_helper_get_reply(std::string_view out, const std::string& name,
                                                                  const std::string& key) {
    auto v = parse_helper_reply_object(out, name, "get");
    auto& obj = v.get_object();
    auto field = [&](std::string_view k) -> std::string {
        auto* p = obj.if_contains(k);
        return p && p->is_string() ? std::string(p->get_string()) : std::string();
    };
    registry_credentials c;
    c.server_address = key;
    c.username = field("Username");
    if (c.username == "<token>") {
        c.username.clear();
        c.identity_token = field("Secret");
    } else {
        c.password = field("Secret");
    }
    if (c.empty()) return std::nullopt;
    return c;
}

// A helper's reply to `list` ({"<server key>": "<username>", ...}): the server keys. Errors as for get.
inline std::vector<std::string> parse_helper_list_reply(std::string_view out, const std::string& name) {
    auto v = parse_helper_reply_object(out, name, "list");
    std::vector<std::string> keys;
    for (auto& [k, user] : v.get_object()) keys.emplace_back(k);
    return keys;
}

// `get` for one server key; nullopt when the helper has nothing for it.
inline boost::asio::awaitable<std::optional<registry_credentials>> helper_get(const std::string& name,
                                                                              const std::string& key,
                                                                              const credential_options& o) {
    auto r = co_await run_helper(name, "get", key, o);
    if (r.exit_code != 0) {
        // the helpers' shared "not found" text (docker-credential-helpers' credentials.errCredentialsNotFound)
        if (r.out.find("credentials not found") != std::string::npos) co_return std::nullopt;
        throw credential_error(credential_errc::helper_failed, helper_failure(name, "get", r));
    }
    co_return parse_helper_get_reply(r.out, name, key);
}

// The helper that applies to a key: its credHelpers entry, else credsStore, else none.
inline std::string helper_for(const docker_config& cfg, const std::string& key) {
    if (auto it = cfg.cred_helpers.find(key); it != cfg.cred_helpers.end()) return it->second;
    return cfg.creds_store;
}

inline std::optional<registry_credentials> from_auths(const docker_config& cfg, const std::string& key) {
    if (auto it = cfg.auths.find(key); it != cfg.auths.end()) return it->second;
    // keys written with a scheme or a path ("https://127.0.0.1:5000/v2/") still name their host
    for (auto& [k, c] : cfg.auths)
        if (host_of_key(k) == host_of_key(key)) return c;
    return std::nullopt;
}

}  // namespace detail

// The credentials for a registry ("127.0.0.1:5000", "docker.io", or a server key such as
// "https://index.docker.io/v1/"), or nullopt when there are none. Throws credential_error.
inline boost::asio::awaitable<std::optional<registry_credentials>> find_credentials(std::string_view registry,
                                                                                    credential_options options = {}) {
    auto cfg = detail::read_docker_config(options);
    const std::string key = credential_key(registry);
    if (auto helper = detail::helper_for(cfg, key); !helper.empty())
        co_return co_await detail::helper_get(helper, key, options);
    auto c = detail::from_auths(cfg, key);
    if (c && c->empty()) c.reset();
    co_return c;
}

// Every registry's credentials the configuration knows of (what a build needs for X-Registry-Config): the
// "auths" entries, each credHelpers registry, and what the credsStore lists. Keyed by server key.
inline boost::asio::awaitable<std::map<std::string, registry_credentials>> all_credentials(
    credential_options options = {}) {
    auto cfg = detail::read_docker_config(options);
    std::map<std::string, registry_credentials> out;
    std::vector<std::string> keys;
    for (auto& [k, c] : cfg.auths) keys.push_back(k);
    for (auto& [k, helper] : cfg.cred_helpers) keys.push_back(k);
    if (!cfg.creds_store.empty()) {
        auto r = co_await detail::run_helper(cfg.creds_store, "list", "", options);
        if (r.exit_code != 0)
            throw credential_error(credential_errc::helper_failed, detail::helper_failure(cfg.creds_store, "list", r));
        for (auto& k : detail::parse_helper_list_reply(r.out, cfg.creds_store)) keys.push_back(std::move(k));
    }
    for (auto& key : keys) {
        if (out.contains(key)) continue;
        std::optional<registry_credentials> c;
        if (auto helper = detail::helper_for(cfg, key); !helper.empty())
            c = co_await detail::helper_get(helper, key, options);
        else
            c = detail::from_auths(cfg, key);
        if (c && !c->empty()) out[key] = std::move(*c);
    }
    co_return out;
}

}  // namespace berth
