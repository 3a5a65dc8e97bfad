#pragma once
// Plugins (Docker's managed plugins, "docker plugin ..."): list, inspect, the privileges a remote plugin asks for,
// pull, upgrade and push with a registry (X-Registry-Auth as images' pull and push build it, registry.hpp), create
// from a directory (its config.json and rootfs/, streamed as a tar by berth's packer), enable, disable, set and
// remove. Podman has no plugin API: every call is refused with Podman's own 404 (a not_found_error).
#include <berth/detail/url.hpp>
#include <berth/engine/client_core.hpp>
#include <berth/engine/registry.hpp>
#include <berth/tar/packer.hpp>
#include <berth/tar/writer.hpp>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace berth {

// A permission a plugin needs (GET /plugins/privileges), granted by sending it back with a pull or an upgrade.
struct plugin_privilege {
    std::string name{};  // "network", "mount", "device", "capabilities", "allow-all-devices", "host pid"...
    std::string description{};
    std::vector<std::string> value{};  // what exactly: ["host"], ["/dev/fuse"], ["CAP_SYS_ADMIN"]...
};

struct plugin_mount {  // Config.Mounts and Settings.Mounts
    std::string name{};
    std::string description{};
    std::vector<std::string> settable{};  // which of its fields `set` may change: "source", ...
    std::string source{};
    std::string destination{};
    std::string type{};
    std::vector<std::string> options{};
};

struct plugin_device {  // Config.Linux.Devices and Settings.Devices
    std::string name{};
    std::string description{};
    std::vector<std::string> settable{};
    std::string path{};
};

struct plugin_env {  // Config.Env: an environment variable the plugin declares
    std::string name{};
    std::string description{};
    std::vector<std::string> settable{};  // ["value"] when `set` may change it
    std::string value{};
};

struct plugin_settings {  // Settings: what `set` changes
    std::vector<plugin_mount> mounts{};
    std::vector<std::string> env{};  // "KEY=value"
    std::vector<std::string> args{};
    std::vector<plugin_device> devices{};
};

struct plugin_interface {              // Config.Interface
    std::vector<std::string> types{};  // "docker.volumedriver/1.0", "docker.networkdriver/1.0", ...
    std::string socket{};              // the socket's name in /run/docker/plugins inside the plugin
    std::string protocol_scheme{};     // "" or "moby.plugins.http/v1"
};

struct plugin_config {  // Config: the plugin's config.json, as the engine keeps it
    std::string description{};
    std::string documentation{};
    plugin_interface interface {};
    std::vector<std::string> entrypoint{};
    std::string work_dir{};
    std::string network_type{};  // Network.Type: "host", "none", ...
    std::vector<plugin_env> env{};
    std::vector<plugin_mount> mounts{};
    std::string propagated_mount{};
    bool ipc_host = false;
    bool pid_host = false;
    json::object raw{};  // the whole Config (Linux, Args, User, rootfs...)
};

struct plugin_info {  // GET /plugins/{name}/json, and each plugin of GET /plugins
    std::string id{};
    std::string name{};  // "repo/name:tag" (the engine adds ":latest" to a name without a tag)
    bool enabled = false;
    plugin_settings settings{};
    std::string plugin_reference{};  // the remote reference it was pulled from or is pushed to
    plugin_config config{};
    json::object raw{};  // the whole reply
};

struct plugin_list_options {
    // The engine's filters: {"capability": {"volumedriver"}}, {"enabled": {"true"}} (the spec spells it "enable",
    // which Docker refuses: 400 "Invalid filter 'enable'")
    std::map<std::string, std::vector<std::string>> filters{};
};

struct plugin_privileges_options : registry_request_options {};

struct plugin_pull_options : registry_request_options {
    std::string name{};  // the local name (the API's `name`); empty: the remote reference
    // The privileges granted: the engine refuses the pull unless they are exactly what the plugin asks for.
    std::vector<plugin_privilege> privileges{};
    // Asks the registry what the plugin needs (GET /plugins/privileges) and grants all of it, as the docker CLI's
    // --grant-all-permissions; `privileges` is then ignored.
    bool grant_all_privileges = false;
    progress_callback on_progress{};  // one step per layer
};

struct plugin_upgrade_options : registry_request_options {
    std::vector<plugin_privilege> privileges{};  // as for a pull: the new version's privileges
    bool grant_all_privileges = false;
    progress_callback on_progress{};
};

struct plugin_push_options : registry_request_options {
    progress_callback on_progress{};
};

struct plugin_push_result {  // POST /plugins/{name}/push
    std::string name{};
    std::string digest{};   // the manifest digest the registry stored (when the engine names it)
    std::int64_t size = 0;  // the manifest's size when the engine reports it
};

struct plugin_remove_options {
    bool force = false;  // remove it even while it is enabled
};

struct plugin_enable_options {
    // Seconds the engine gives the plugin to answer on its socket (the API's `timeout`; the docker CLI's default).
    int timeout = 30;
};

struct plugin_disable_options {
    bool force = false;  // disable it even while something uses it
};

namespace detail {

// The body of POST /plugins/create made from a config.json given as JSON and a rootfs directory: the config.json
// member first (from memory), then the tree under "rootfs/" as the packer streams it (ending the archive).
class plugin_context_source {
public:
    plugin_context_source(const json::object& config, std::filesystem::path rootfs)
        : rootfs_(std::move(rootfs), "rootfs") {
        const std::string text = json::serialize(config);
        tar::entry e{};
        e.name = "config.json";
        e.size = text.size();
        e.mode = 0644;
        e.mtime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                      .count();
        tar::encode_header(e, head_);
        head_ += text;
        head_.append(tar::padding_after(text.size()), '\0');
    }
    std::size_t read(std::span<char> buf) {
        std::size_t n = 0;
        if (at_ < head_.size()) {
            n = std::min(buf.size(), head_.size() - at_);
            std::memcpy(buf.data(), head_.data() + at_, n);
            at_ += n;
        }
        if (n < buf.size()) n += rootfs_.read(buf.subspan(n));
        return n;
    }

private:
    std::string head_{};
    std::size_t at_ = 0;
    tar::packer rootfs_;
};

}  // namespace detail

template <transport Transport>
class plugins_api {
public:
    explicit plugins_api(client_core<Transport>& c) : client_(c) {}

    // (Overloads, not a defaulted argument, where the options hold strings: g++ 12 double-destroys a defaulted
    // options temporary in a co_await.)

    // Engine API: GET /plugins
    boost::asio::awaitable<std::vector<plugin_info>> list() { return list(plugin_list_options{}); }
    // Engine API: GET /plugins
    boost::asio::awaitable<std::vector<plugin_info>> list(plugin_list_options options) {
        detail::query q;
        if (!options.filters.empty()) {
            json::object f{};
            for (auto& [k, vals] : options.filters) f[k] = json::array(vals.begin(), vals.end());
            q.add("filters", json::serialize(f));
        }
        const std::string target = "/plugins" + q.str();
        auto v = co_await client_.call_json(verb::get, target);
        const std::string endpoint = "GET " + target;
        std::vector<plugin_info> out{};
        if (v.is_null()) co_return out;
        for (auto& item : json_read::as_array(v, endpoint)) out.push_back(parse_plugin(item, endpoint));
        co_return out;
    }

    // A missing plugin is a not_found_error.
    // Engine API: GET /plugins/{name}/json
    boost::asio::awaitable<plugin_info> inspect(std::string_view name) {
        const std::string target = path(name, "inspect") + "/json";
        auto v = co_await client_.call_json(verb::get, target);
        co_return parse_plugin(v, "GET " + target);
    }

    // Engine API: GET /plugins/{name}/json
    // False when there is no such plugin.
    boost::asio::awaitable<bool> exists(std::string_view name) {
        try {
            co_await inspect(name);
            co_return true;
        } catch (const not_found_error&) { co_return false; }
    }

    // What the plugin at `remote` (a registry reference) asks to be granted, read from the registry by the engine.
    // Registry failures are registry_errors (unauthorized, not_found, unreachable).
    // Engine API: GET /plugins/privileges
    boost::asio::awaitable<std::vector<plugin_privilege>> privileges(std::string_view remote) {
        return privileges(remote, plugin_privileges_options{});
    }
    // Engine API: GET /plugins/privileges
    boost::asio::awaitable<std::vector<plugin_privilege>> privileges(std::string_view remote,
                                                                     plugin_privileges_options options) {
        auto ref = checked_remote(remote, "privileges");
        auto credentials = co_await detail::credentials_for(ref, options);
        http::request req{.method = verb::get,
                          .target = "/plugins/privileges" + detail::query().add("remote", remote).str()};
        add_auth(req, credentials);
        // Podman's own 404 says it has no plugin API, nothing about the registry: kept as a not_found_error
        const bool podman = (co_await client_.kind()) == engine_kind::podman;
        std::string text;
        try {
            text = co_await client_.call(std::move(req));
        } catch (const engine_error& e) {
            if (podman && e.code() == engine_errc::not_found) throw;
            throw_registry_error(e, credentials);
        }
        const std::string endpoint = "GET /plugins/privileges";
        auto v = json_read::parse(text, endpoint);
        std::vector<plugin_privilege> out{};
        if (v.is_null()) co_return out;
        for (auto& item : json_read::as_array(v, endpoint)) {
            auto& o = json_read::as_object(item, endpoint);
            out.push_back(plugin_privilege{json_read::optional_string(o, "Name", endpoint),
                                           json_read::optional_string(o, "Description", endpoint),
                                           json_read::optional_strings(o, "Value", endpoint)});
        }
        co_return out;
    }

    // Installs the plugin at `remote` (disabled), granting options.privileges, and returns it as inspected.
    // The engine refuses privileges that are not exactly what the plugin asks for. Registry failures are
    // registry_errors.
    // Engine API: POST /plugins/pull
    boost::asio::awaitable<plugin_info> pull(std::string_view remote) { return pull(remote, plugin_pull_options{}); }
    // Engine API: POST /plugins/pull
    boost::asio::awaitable<plugin_info> pull(std::string_view remote, plugin_pull_options options) {
        detail::query q;
        q.add("remote", remote);
        q.add_if(!options.name.empty(), "name", options.name);
        co_await install("/plugins/pull" + q.str(), remote, "pull", options);
        co_return co_await inspect(options.name.empty() ? remote : std::string_view(options.name));
    }

    // Replaces the disabled plugin `name` by the one at `remote`, keeping its settings; an enabled plugin is
    // refused by the engine. Privileges as for a pull.
    // Engine API: POST /plugins/{name}/upgrade
    boost::asio::awaitable<void> upgrade(std::string_view name, std::string_view remote) {
        return upgrade(name, remote, plugin_upgrade_options{});
    }
    // Engine API: POST /plugins/{name}/upgrade
    boost::asio::awaitable<void> upgrade(std::string_view name, std::string_view remote,
                                         plugin_upgrade_options options) {
        const std::string base = path(name, "upgrade") + "/upgrade";
        co_await install(base + detail::query().add("remote", remote).str(), remote, "upgrade", options);
    }

    // Pushes the plugin `name` (named with its registry: "127.0.0.1:5000/team/plugin:1") to its registry.
    // Engine API: POST /plugins/{name}/push
    boost::asio::awaitable<plugin_push_result> push(std::string_view name) { return push(name, plugin_push_options{}); }
    // Engine API: POST /plugins/{name}/push
    boost::asio::awaitable<plugin_push_result> push(std::string_view name, plugin_push_options options) {
        const std::string target = path(name, "push") + "/push";
        auto ref = checked_remote(name, "push");
        auto credentials = co_await detail::credentials_for(ref, options);
        http::request req{.method = verb::post, .target = target};
        // as for an image push, Docker wants the header even for an open registry: "{}" says "no credentials"
        req.headers.emplace_back("X-Registry-Auth",
                                 registry_auth_header(credentials ? *credentials : registry_credentials{}));
        detail::transfer_progress progress(std::move(options.on_progress));
        co_await detail::run_transfer(client_, std::move(req), credentials, progress);
        co_return plugin_push_result{std::string(name), progress.digest(), progress.size()};
    }

    // Creates the plugin `name` (disabled) from `plugin_dir`, a directory holding config.json and rootfs/ (as
    // `docker plugin create` takes it), streamed as a tar.
    // Engine API: POST /plugins/create
    boost::asio::awaitable<void> create(std::string_view name, std::filesystem::path plugin_dir) {
        check_create_name(name);
        tar::packer packer(std::move(plugin_dir), "");
        co_await upload(name, packer);
    }

    // The same from the plugin's config.json given as JSON and its root filesystem's directory.
    // Engine API: POST /plugins/create
    boost::asio::awaitable<void> create(std::string_view name, json::object config, std::filesystem::path rootfs) {
        check_create_name(name);
        detail::plugin_context_source source(config, std::move(rootfs));
        co_await upload(name, source);
    }

    // Starts the plugin; the engine waits for its socket (options.timeout seconds, at least, for Docker 20.10
    // about 12 s whatever the timeout) and refuses (an engine_error, status 500) when it never appears.
    // Engine API: POST /plugins/{name}/enable
    boost::asio::awaitable<void> enable(std::string_view name, plugin_enable_options options = {}) {
        const std::string target = path(name, "enable") + "/enable" +
                                   detail::query().add_number("timeout", options.timeout).str();
        co_await client_.call(verb::post, target, {}, time_limit{.extra = std::chrono::seconds(options.timeout)});
    }

    // Engine API: POST /plugins/{name}/disable
    boost::asio::awaitable<void> disable(std::string_view name, plugin_disable_options options = {}) {
        co_await client_.call(verb::post, path(name, "disable") + "/disable" +
                                              detail::query().add_flag("force", options.force).str());
    }

    // Changes settings of a disabled plugin: "KEY=value" for an env variable, "mount.source=/path",
    // "device.path=/dev/x", "args=a b" (only what the plugin declares settable).
    // Engine API: POST /plugins/{name}/set
    boost::asio::awaitable<void> set(std::string_view name, std::vector<std::string> settings) {
        const std::string target = path(name, "set") + "/set";
        co_await client_.call(verb::post, target, json::serialize(json::array(settings.begin(), settings.end())));
    }

    // An enabled plugin is refused unless options.force; a missing one is a not_found_error.
    // Engine API: DELETE /plugins/{name}
    boost::asio::awaitable<void> remove(std::string_view name, plugin_remove_options options = {}) {
        co_await client_.call(verb::delete_,
                              path(name, "remove") + detail::query().add_flag("force", options.force).str());
    }

private:
    // pull and upgrade: the privileges granted (all the plugin asks for, when told so), the registry's
    // credentials, and the transfer with its progress.
    template <class Options>
    boost::asio::awaitable<void> install(std::string target, std::string_view remote, const char* what,
                                         Options& options) {
        auto ref = checked_remote(remote, what);
        auto credentials = co_await detail::credentials_for(ref, options);
        if (options.grant_all_privileges) {
            plugin_privileges_options asked{};
            static_cast<registry_request_options&>(asked) = options;
            asked.credentials = credentials;
            asked.lookup_credentials = false;
            options.privileges = co_await privileges(remote, std::move(asked));
        }
        http::request req{.method = verb::post,
                          .target = std::move(target),
                          .body = privileges_body(options.privileges),
                          .content_type = "application/json"};
        add_auth(req, credentials);
        detail::transfer_progress progress(std::move(options.on_progress));
        co_await detail::run_transfer(client_, std::move(req), credentials, progress);
    }

    // The path of one plugin; an empty name would address the collection instead, so it is refused.
    static std::string path(std::string_view name, std::string_view operation) {
        if (name.empty())
            throw invalid_argument_error("berth::plugins()." + std::string(operation) + ": the plugin name is empty");
        return "/plugins/" + detail::percent_encode(name);
    }

    static image_reference checked_remote(std::string_view remote, std::string_view operation) {
        if (remote.empty())
            throw invalid_argument_error("berth::plugins()." + std::string(operation) +
                                         ": the remote reference is empty");
        return parse_image_reference(remote);
    }

    static void add_auth(http::request& req, const std::optional<registry_credentials>& credentials) {
        if (!credentials) return;
        req.headers.emplace_back("X-Registry-Auth", registry_auth_header(*credentials));
        req.secrets = registry_secrets(*credentials);
    }

    [[noreturn]] static void throw_registry_error(const engine_error& e,
                                                  const std::optional<registry_credentials>& credentials) {
        auto message = credentials ? redact(e.message(), *credentials) : e.message();
        throw registry_error(classify_registry_failure(message, e.status()), e.status(), message, e.endpoint());
    }

    static std::string privileges_body(const std::vector<plugin_privilege>& privileges) {
        json::array a{};
        for (auto& p : privileges)
            a.push_back(json::object{{"Name", p.name},
                                     {"Description", p.description},
                                     {"Value", json::array(p.value.begin(), p.value.end())}});
        return json::serialize(a);
    }

    static void check_create_name(std::string_view name) {
        if (name.empty()) throw invalid_argument_error("berth::plugins().create: the plugin name is empty");
    }

    template <class Source>
    boost::asio::awaitable<void> upload(std::string_view name, Source& source) {
        http::request req{.method = verb::post,
                          .target = "/plugins/create" + detail::query().add("name", name).str(),
                          .content_type = "application/x-tar"};
        auto reply = co_await client_.open(std::move(req), &source);
        co_await reply.read_all();
    }

    static std::vector<std::string> strings(const json::object& o, std::string_view key, const std::string& endpoint) {
        return json_read::optional_strings(o, key, endpoint);
    }

    static const json::array* optional_array(const json::object& o, std::string_view key, const std::string& endpoint) {
        auto* p = o.if_contains(key);
        if (p == nullptr || p->is_null()) return nullptr;
        if (!p->is_array()) throw protocol_error(endpoint, "field '" + std::string(key) + "' is not an array");
        return &p->get_array();
    }

    static std::vector<plugin_mount> parse_mounts(const json::object& o, const std::string& endpoint) {
        std::vector<plugin_mount> out{};
        if (auto* a = optional_array(o, "Mounts", endpoint))
            for (auto& item : *a) {
                auto& m = json_read::as_object(item, endpoint);
                out.push_back(
                    plugin_mount{json_read::optional_string(m, "Name", endpoint),
                                 json_read::optional_string(m, "Description", endpoint),
                                 strings(m, "Settable", endpoint), json_read::optional_string(m, "Source", endpoint),
                                 json_read::optional_string(m, "Destination", endpoint),
                                 json_read::optional_string(m, "Type", endpoint), strings(m, "Options", endpoint)});
            }
        return out;
    }

    static std::vector<plugin_device> parse_devices(const json::object& o, const std::string& endpoint) {
        std::vector<plugin_device> out{};
        if (auto* a = optional_array(o, "Devices", endpoint))
            for (auto& item : *a) {
                auto& d = json_read::as_object(item, endpoint);
                out.push_back(plugin_device{json_read::optional_string(d, "Name", endpoint),
                                            json_read::optional_string(d, "Description", endpoint),
                                            strings(d, "Settable", endpoint),
                                            json_read::optional_string(d, "Path", endpoint)});
            }
        return out;
    }

    static plugin_info parse_plugin(const json::value& v, const std::string& endpoint) {
        auto& o = json_read::as_object(v, endpoint);
        plugin_info info{};
        info.id = json_read::optional_string(o, "Id", endpoint);
        info.name = json_read::string_field(o, "Name", endpoint);
        info.enabled = json_read::optional_bool(o, "Enabled", endpoint);
        info.plugin_reference = json_read::optional_string(o, "PluginReference", endpoint);
        if (auto* s = json_read::optional_object(o, "Settings", endpoint)) {
            info.settings.mounts = parse_mounts(*s, endpoint);
            info.settings.env = strings(*s, "Env", endpoint);
            info.settings.args = strings(*s, "Args", endpoint);
            info.settings.devices = parse_devices(*s, endpoint);
        }
        if (auto* c = json_read::optional_object(o, "Config", endpoint)) {
            auto& config = info.config;
            config.description = json_read::optional_string(*c, "Description", endpoint);
            config.documentation = json_read::optional_string(*c, "Documentation", endpoint);
            if (auto* i = json_read::optional_object(*c, "Interface", endpoint))
                config.interface = plugin_interface{strings(*i, "Types", endpoint),
                                                    json_read::optional_string(*i, "Socket", endpoint),
                                                    json_read::optional_string(*i, "ProtocolScheme", endpoint)};
            config.entrypoint = strings(*c, "Entrypoint", endpoint);
            config.work_dir = json_read::optional_string(*c, "WorkDir", endpoint);
            if (auto* n = json_read::optional_object(*c, "Network", endpoint))
                config.network_type = json_read::optional_string(*n, "Type", endpoint);
            if (auto* a = optional_array(*c, "Env", endpoint))
                for (auto& item : *a) {
                    auto& e = json_read::as_object(item, endpoint);
                    config.env.push_back(plugin_env{json_read::optional_string(e, "Name", endpoint),
                                                    json_read::optional_string(e, "Description", endpoint),
                                                    strings(e, "Settable", endpoint),
                                                    json_read::optional_string(e, "Value", endpoint)});
                }
            config.mounts = parse_mounts(*c, endpoint);
            config.propagated_mount = json_read::optional_string(*c, "PropagatedMount", endpoint);
            config.ipc_host = json_read::optional_bool(*c, "IpcHost", endpoint);
            config.pid_host = json_read::optional_bool(*c, "PidHost", endpoint);
            config.raw = *c;
        }
        info.raw = o;
        return info;
    }

    client_core<Transport>& client_;
};

}  // namespace berth
