#pragma once
// Kubeconfig files, read as kubectl reads them: KUBECONFIG (a ':'-separated list; for each named cluster, user and
// context, and for current-context, the first file that has it wins), else ~/.kube/config, or a path given. A
// context (the current one unless named) resolves to a kube_connection: the server's URL, the TLS material (CA
// and client certificate from files or inline data), a bearer token (inline or tokenFile) and the namespace.
// Refused with a kubeconfig_error: a file over 1 MiB, YAML outside the subset kubeconfigs use
// (detail/yaml_subset.hpp), insecure-skip-tls-verify unless asked for, a server that is not https:// (http:// only
// when asked for, for tests), and credentials berth cannot use (exec plugins, auth providers, passwords).
#include <berth/detail/base64.hpp>
#include <berth/detail/outside_text.hpp>
#include <berth/kubernetes/detail/yaml_subset.hpp>
#include <berth/kubernetes/error.hpp>
#include <berth/kubernetes/names.hpp>
#include <berth/transport/docker_host.hpp>
#include <berth/transport/endpoint.hpp>

#include <boost/json/value.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace berth::kubernetes {

struct kubeconfig_cluster {
    std::string server{};
    std::string certificate_authority{};       // a PEM file (made absolute against the kubeconfig's directory)
    std::string certificate_authority_data{};  // PEM, decoded from the file's base64
    bool insecure_skip_tls_verify = false;
    std::string tls_server_name{};  // not supported: refused when the context is used
    std::string proxy_url{};        // not supported: refused when the context is used
};

struct kubeconfig_user {
    std::string client_certificate{};  // PEM files (absolute), or the PEM itself in the *_data fields
    std::string client_certificate_data{};
    std::string client_key{};
    std::string client_key_data{};
    std::string token{};
    std::string token_file{};
    std::string unsupported{};  // "exec", "auth-provider", "username": credentials berth cannot use
};

struct kubeconfig_context {
    std::string cluster{};
    std::string user{};
    std::string namespace_name{};  // "namespace"; empty: "default"
};

// Where each entry came from is kept for the errors: "<file>:<line>" is not kept per entry, the file is.
struct kubeconfig {
    std::string current_context{};
    std::map<std::string, kubeconfig_cluster> clusters{};
    std::map<std::string, kubeconfig_user> users{};
    std::map<std::string, kubeconfig_context> contexts{};
    std::vector<std::string> files{};  // the files read, in order
};

struct kubeconfig_load_options {
    std::string path{};                           // one kubeconfig file; empty: KUBECONFIG, else ~/.kube/config
    std::string context{};                        // empty: current-context
    std::string namespace_name{};                 // overrides the context's namespace
    bool allow_insecure_skip_tls_verify = false;  // accept insecure-skip-tls-verify: true (no server check)
    bool allow_plain_http = false;                // accept an http:// server (tests against a local server)
};

// What a client needs to reach one cluster as one user.
struct kube_connection {
    std::string context{};
    std::string server{};  // as written in the kubeconfig
    bool https = true;
    host_address address{};     // tcp://host:port of the server
    std::string path_prefix{};  // a path after the server's port ("" for most), without a trailing '/'
    tls_options tls{};          // enabled for https
    std::string token{};        // sent as "Authorization: Bearer <token>" when not empty
    std::string namespace_name = "default";
};

inline constexpr std::uintmax_t max_kubeconfig_bytes = std::uintmax_t{1} << 20;
inline constexpr std::uintmax_t max_token_file_bytes = std::uintmax_t{64} << 10;

namespace detail {

inline std::string read_bounded_file(const std::filesystem::path& path, std::uintmax_t limit, const char* what) {
    const std::string name = path.string();
    std::error_code ec;
    auto size = std::filesystem::file_size(path, ec);
    if (ec) throw kubeconfig_error(name, 0, std::string("cannot read the ") + what + ": " + ec.message());
    if (size > limit)
        throw kubeconfig_error(name, 0,
                               std::string("the ") + what + " is larger than " + std::to_string(limit) + " bytes");
    std::ifstream in(path, std::ios::binary);
    std::string text;
    text.resize(static_cast<std::size_t>(size));
    if (!in.read(text.data(), static_cast<std::streamsize>(size)))
        throw kubeconfig_error(name, 0, std::string("cannot read the ") + what);
    char extra;
    if (in.read(&extra, 1)) throw kubeconfig_error(name, 0, std::string("the ") + what + " grew while being read");
    return text;
}

class kubeconfig_reader {
public:
    kubeconfig_reader(std::string file, std::filesystem::path base_dir)
        : file_(std::move(file)), base_(std::move(base_dir)) {}

    kubeconfig read(const boost::json::value& doc) {
        kubeconfig out;
        if (doc.is_null()) return out;
        if (!doc.is_object()) fail("the top level is not a mapping");
        auto& top = doc.get_object();
        out.current_context = string_of(top, "current-context");
        for_each_named(top, "clusters", "cluster", [&](const std::string& name, const boost::json::object& c) {
            kubeconfig_cluster k;
            k.server = string_of(c, "server");
            k.certificate_authority = path_of(c, "certificate-authority");
            k.certificate_authority_data = data_of(c, "certificate-authority-data", name);
            k.insecure_skip_tls_verify = bool_of(c, "insecure-skip-tls-verify");
            k.tls_server_name = string_of(c, "tls-server-name");
            k.proxy_url = string_of(c, "proxy-url");
            out.clusters.emplace(name, std::move(k));
        });
        for_each_named(top, "users", "user", [&](const std::string& name, const boost::json::object& u) {
            kubeconfig_user k;
            k.client_certificate = path_of(u, "client-certificate");
            k.client_certificate_data = data_of(u, "client-certificate-data", name);
            k.client_key = path_of(u, "client-key");
            k.client_key_data = data_of(u, "client-key-data", name);
            k.token = string_of(u, "token");
            k.token_file = path_of(u, "tokenFile");
            for (const char* key : {"exec", "auth-provider", "username", "password"})
                if (auto* p = u.if_contains(key); p && !p->is_null() && k.unsupported.empty()) k.unsupported = key;
            out.users.emplace(name, std::move(k));
        });
        for_each_named(top, "contexts", "context", [&](const std::string& name, const boost::json::object& c) {
            out.contexts.emplace(name, kubeconfig_context{.cluster = string_of(c, "cluster"),
                                                          .user = string_of(c, "user"),
                                                          .namespace_name = string_of(c, "namespace")});
        });
        if (!file_.empty()) out.files.push_back(file_);
        return out;
    }

private:
    [[noreturn]] void fail(const std::string& what) const { throw kubeconfig_error(file_, 0, what); }

    template <class F>
    void for_each_named(const boost::json::object& top, const char* list, const char* inner, F f) {
        auto* p = top.if_contains(list);
        if (p == nullptr || p->is_null()) return;
        if (!p->is_array()) fail(std::string("'") + list + "' is not a list");
        for (auto& item : p->get_array()) {
            if (!item.is_object()) fail(std::string("an entry of '") + list + "' is not a mapping");
            auto& o = item.get_object();
            std::string name = string_of(o, "name");
            if (name.empty()) fail(std::string("an entry of '") + list + "' has no name");
            auto* body = o.if_contains(inner);
            static const boost::json::object empty;
            if (body != nullptr && !body->is_null() && !body->is_object())
                fail(std::string("'") + inner + "' of " + berth::detail::quote_outside_text(name) +
                     " is not a mapping");
            f(name, body && body->is_object() ? body->get_object() : empty);
        }
    }

    std::string string_of(const boost::json::object& o, const char* key) const {
        auto* p = o.if_contains(key);
        if (p == nullptr || p->is_null()) return {};
        if (!p->is_string()) fail(std::string("'") + key + "' is not a string");
        return std::string(p->get_string());
    }
    bool bool_of(const boost::json::object& o, const char* key) const {
        auto* p = o.if_contains(key);
        if (p == nullptr || p->is_null()) return false;
        if (p->is_bool()) return p->get_bool();
        if (p->is_string() && (p->get_string() == "true" || p->get_string() == "false"))
            return p->get_string() == "true";
        fail(std::string("'") + key + "' is not true or false");
    }
    std::string path_of(const boost::json::object& o, const char* key) const {
        std::string p = string_of(o, key);
        if (p.empty()) return p;
        std::filesystem::path path(p);
        if (path.is_relative() && !base_.empty()) path = base_ / path;
        return path.string();
    }
    std::string data_of(const boost::json::object& o, const char* key, const std::string& entry) const {
        std::string text = string_of(o, key);
        if (text.empty()) return text;
        std::string compact;
        for (char c : text)
            if (c != ' ' && c != '\n' && c != '\r' && c != '\t') compact += c;
        auto decoded = berth::detail::base64_decode(compact);
        if (!decoded)
            fail(std::string("'") + key + "' of " + berth::detail::quote_outside_text(entry) + " is not base64");
        return *decoded;
    }

    std::string file_;
    std::filesystem::path base_;
};

// Adds what `from` has and `into` lacks: the first file that names an entry (or the current context) wins.
inline void merge_kubeconfig(kubeconfig& into, kubeconfig from) {
    if (into.current_context.empty()) into.current_context = std::move(from.current_context);
    into.clusters.merge(from.clusters);
    into.users.merge(from.users);
    into.contexts.merge(from.contexts);
    for (auto& f : from.files) into.files.push_back(std::move(f));
}

// "https://host:port/prefix" into the connection's scheme, address and prefix.
inline void parse_server_url(kube_connection& c, const kubeconfig_load_options& options, const std::string& where) {
    std::string_view url = c.server;
    std::string_view rest;
    if (url.starts_with("https://")) {
        rest = url.substr(8);
    } else if (url.starts_with("http://")) {
        if (!options.allow_plain_http)
            throw kubeconfig_error(where, 0,
                                   "the server " + berth::detail::quote_outside_text(url) +
                                       " is plain http:// (allowed only with allow_plain_http, for tests)");
        c.https = false;
        rest = url.substr(7);
    } else {
        throw kubeconfig_error(where, 0,
                               "the server " + berth::detail::quote_outside_text(url) + " is not an https:// URL");
    }
    if (rest.find_first_of("?#@") != std::string_view::npos)
        throw kubeconfig_error(where, 0, "the server URL has a query, fragment or user part");
    auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    for (char ch : path) {
        const auto u = static_cast<unsigned char>(ch);
        if (u <= 0x20 || u >= 0x7f || ch == '%')
            throw kubeconfig_error(where, 0, "the server URL's path has a character berth does not send");
    }
    c.path_prefix = std::string(path);
    try {
        c.address = parse_docker_host("tcp://" + std::string(authority), c.https ? 443 : 80);
    } catch (const invalid_host& e) { throw kubeconfig_error(where, 0, std::string("the server URL: ") + e.what()); }
}

}  // namespace detail

// The kubeconfig in `text` (YAML or JSON); relative file names in it are taken against `base_dir`.
inline kubeconfig parse_kubeconfig(std::string_view text, std::string file = {}, std::filesystem::path base_dir = {}) {
    if (text.size() > max_kubeconfig_bytes)
        throw kubeconfig_error(file, 0, "larger than " + std::to_string(max_kubeconfig_bytes) + " bytes");
    auto doc = detail::parse_kubeconfig_text(text, file);
    return detail::kubeconfig_reader(file, std::move(base_dir)).read(doc);
}

inline kubeconfig read_kubeconfig_file(const std::filesystem::path& path) {
    auto text = detail::read_bounded_file(path, max_kubeconfig_bytes, "kubeconfig");
    auto dir = std::filesystem::absolute(path).parent_path();
    return parse_kubeconfig(text, path.string(), dir);
}

// The files to read: options.path, else KUBECONFIG's list (missing files skipped, as kubectl does), else
// ~/.kube/config.
inline std::vector<std::string> kubeconfig_files(const kubeconfig_load_options& options = {}) {
    if (!options.path.empty()) return {options.path};
    std::vector<std::string> out;
    if (const char* env = std::getenv("KUBECONFIG"); env != nullptr && *env != '\0') {
        std::string_view list = env;
        while (!list.empty()) {
            auto colon = list.find(':');
            std::string one(list.substr(0, colon));
            list = colon == std::string_view::npos ? std::string_view() : list.substr(colon + 1);
            std::error_code ec;
            if (!one.empty() && std::filesystem::exists(one, ec)) out.push_back(one);
        }
        if (out.empty()) throw kubeconfig_error(env, 0, "none of the files KUBECONFIG names exists");
        return out;
    }
    const char* home = std::getenv("HOME");
    if (home == nullptr || *home == '\0')
        throw kubeconfig_error("~/.kube/config", 0, "no KUBECONFIG and no HOME to find ~/.kube/config");
    return {std::string(home) + "/.kube/config"};
}

// Every file of kubeconfig_files(options), merged as kubectl merges them.
inline kubeconfig load_kubeconfig(const kubeconfig_load_options& options = {}) {
    kubeconfig merged;
    for (auto& file : kubeconfig_files(options)) detail::merge_kubeconfig(merged, read_kubeconfig_file(file));
    return merged;
}

// The context `options.context` (else the current one) as a connection.
inline kube_connection resolve_kubeconfig(const kubeconfig& config, const kubeconfig_load_options& options = {}) {
    const std::string where = config.files.empty() ? std::string() : config.files.front();
    auto fail = [&](const std::string& what) -> void { throw kubeconfig_error(where, 0, what); };
    kube_connection c;
    c.context = options.context.empty() ? config.current_context : options.context;
    if (c.context.empty()) fail("no context named and no current-context");
    auto ctx = config.contexts.find(c.context);
    if (ctx == config.contexts.end()) fail("no context " + berth::detail::quote_outside_text(c.context));
    auto cluster = config.clusters.find(ctx->second.cluster);
    if (cluster == config.clusters.end())
        fail("the context " + berth::detail::quote_outside_text(c.context) + " names no known cluster (" +
             berth::detail::quote_outside_text(ctx->second.cluster) + ")");
    const auto& k = cluster->second;
    if (k.server.empty()) fail("the cluster " + berth::detail::quote_outside_text(cluster->first) + " has no server");
    if (!k.tls_server_name.empty()) fail("tls-server-name is not supported");
    if (!k.proxy_url.empty()) fail("proxy-url is not supported");
    c.server = k.server;
    detail::parse_server_url(c, options, where);
    if (c.https) {
        c.tls.enabled = true;
        if (k.insecure_skip_tls_verify) {
            if (!options.allow_insecure_skip_tls_verify)
                fail("the cluster " + berth::detail::quote_outside_text(cluster->first) +
                     " sets insecure-skip-tls-verify (the server would not be checked); refused unless "
                     "allow_insecure_skip_tls_verify is set");
            c.tls.verify_server = false;
        }
        c.tls.ca_file = k.certificate_authority;
        c.tls.ca_pem = k.certificate_authority_data;
    }
    if (!ctx->second.user.empty()) {
        auto user = config.users.find(ctx->second.user);
        if (user == config.users.end())
            fail("the context " + berth::detail::quote_outside_text(c.context) + " names no known user (" +
                 berth::detail::quote_outside_text(ctx->second.user) + ")");
        const auto& u = user->second;
        if (!u.unsupported.empty())
            fail("the user " + berth::detail::quote_outside_text(user->first) + " authenticates with '" +
                 u.unsupported + "', which berth does not support (client certificates and tokens only)");
        if (c.https) {
            c.tls.cert_file = u.client_certificate;
            c.tls.cert_pem = u.client_certificate_data;
            c.tls.key_file = u.client_key;
            c.tls.key_pem = u.client_key_data;
        } else if (!u.client_certificate.empty() || !u.client_certificate_data.empty()) {
            fail("a client certificate needs an https:// server");
        }
        c.token = u.token;
        if (c.token.empty() && !u.token_file.empty()) {
            c.token = detail::read_bounded_file(u.token_file, max_token_file_bytes, "token file");
            while (!c.token.empty() && (c.token.back() == '\n' || c.token.back() == '\r' || c.token.back() == ' '))
                c.token.pop_back();
        }
        for (char ch : c.token)
            if (static_cast<unsigned char>(ch) < 0x21 || ch == 0x7f)
                fail("the token of the user " + berth::detail::quote_outside_text(user->first) +
                     " holds a blank or control character");
    }
    c.namespace_name = !options.namespace_name.empty()       ? options.namespace_name
                       : !ctx->second.namespace_name.empty() ? ctx->second.namespace_name
                                                             : std::string("default");
    if (!is_dns1123_label(c.namespace_name))
        fail("the namespace " + berth::detail::quote_outside_text(c.namespace_name) + " is not a DNS-1123 label");
    return c;
}

// load_kubeconfig and resolve_kubeconfig in one.
inline kube_connection kube_connection_from_kubeconfig(const kubeconfig_load_options& options = {}) {
    return resolve_kubeconfig(load_kubeconfig(options), options);
}

}  // namespace berth::kubernetes
