#pragma once
// Docker contexts, read from the docker CLI's own store so that berth connects where `docker` would:
//   the configuration directory   DOCKER_CONFIG, else ~/.docker
//   the current context           DOCKER_HOST set: "default"; else DOCKER_CONTEXT; else config.json's
//                                 "currentContext"; else "default"
//   a context's endpoint          contexts/meta/<sha256 of the name>/meta.json: Endpoints.docker.{Host,SkipTLSVerify}
//   its TLS material              contexts/tls/<sha256 of the name>/docker/{ca,cert,key}.pem, each optional
//   "default"                     DOCKER_HOST (else the default socket), with TLS from DOCKER_TLS_VERIFY/DOCKER_TLS
//                                 and DOCKER_CERT_PATH (else the configuration directory)
// As in the CLI, a tcp:// endpoint speaks TLS when it has TLS material or skips verification, and a client
// certificate is used only when both cert.pem and key.pem are there. The store's directory names are SHA-256
// digests of the context names, which is why berth/detail/sha256.hpp is part of the library.
#include <berth/detail/sha256.hpp>
#include <berth/transport/docker_host.hpp>
#include <berth/transport/endpoint.hpp>
#include <berth/transport/error.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace berth {

struct docker_context {
    std::string name{};
    std::string description{};
    engine_endpoint endpoint{};        // the address, and TLS as the CLI would use it
    bool skip_tls_verify = false;      // the endpoint's SkipTLSVerify
    std::filesystem::path meta_dir{};  // contexts/meta/<digest> (empty for "default", which lives in the environment)
    std::filesystem::path tls_dir{};   // contexts/tls/<digest> (empty for "default")
    std::vector<std::string> tls_files{};  // the TLS material found: a subset of ca.pem, cert.pem, key.pem
};

inline constexpr std::string_view default_context_name = "default";

namespace detail {

inline std::string env_or_empty(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

// A small JSON file of the docker CLI's; nullopt when it does not exist.
inline std::optional<boost::json::value> read_json_file(const std::filesystem::path& file, const std::string& context) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) return std::nullopt;
    std::ifstream in(file, std::ios::binary);
    if (!in) throw context_error(context_errc::unreadable, context, "cannot read " + file.string());
    std::string text;
    char buf[4096];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        text.append(buf, static_cast<std::size_t>(in.gcount()));
        if (text.size() > (std::size_t{1} << 20))
            throw context_error(context_errc::malformed, context, file.string() + " is larger than 1 MiB");
    }
    boost::system::error_code jec;
    auto v = boost::json::parse(text, jec);
    if (jec)
        throw context_error(context_errc::malformed, context, file.string() + " is not valid JSON: " + jec.message());
    return v;
}

// The store's directory name for a context: the hex SHA-256 of its name.
inline std::string context_digest(std::string_view name) {
    sha256 h;
    h.update(std::span<const char>(name.data(), name.size()));
    return h.hex_digest();
}

// The docker CLI's rule for context names.
inline bool valid_context_name(std::string_view name) {
    auto ok = [](char c, bool first) {
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        return alnum || (!first && (c == '_' || c == '.' || c == '+' || c == '-'));
    };
    if (name.size() < 2) return false;
    for (std::size_t i = 0; i < name.size(); ++i)
        if (!ok(name[i], i == 0)) return false;
    return true;
}

}  // namespace detail

// The docker CLI's configuration directory: DOCKER_CONFIG, else $HOME/.docker.
inline std::filesystem::path docker_config_dir() {
    if (auto dir = detail::env_or_empty("DOCKER_CONFIG"); !dir.empty()) return dir;
    auto home = detail::env_or_empty("HOME");
    return std::filesystem::path(home.empty() ? "/" : home) / ".docker";
}

// The default context's endpoint: DOCKER_HOST (else the default socket) with TLS as the environment says.
inline engine_endpoint endpoint_from_environment(const std::filesystem::path& config_dir = docker_config_dir()) {
    engine_endpoint ep;
    const bool verify = !detail::env_or_empty("DOCKER_TLS_VERIFY").empty();
    ep.tls.enabled = verify || !detail::env_or_empty("DOCKER_TLS").empty();
    ep.tls.verify_server = verify;
    auto host = detail::env_or_empty("DOCKER_HOST");
    ep.address = host.empty() ? host_address{.path = std::string(default_docker_socket)}
                              : parse_docker_host(host, ep.tls.enabled ? docker_tls_port : docker_plain_port);
    if (ep.tls.enabled) {
        auto cert_dir = detail::env_or_empty("DOCKER_CERT_PATH");
        std::filesystem::path dir = cert_dir.empty() ? config_dir : std::filesystem::path(cert_dir);
        // As the CLI: ca.pem is required (a missing one fails when TLS is set up); the client pair only if present.
        ep.tls.ca_file = (dir / "ca.pem").string();
        std::error_code ec;
        if (std::filesystem::exists(dir / "cert.pem", ec) && std::filesystem::exists(dir / "key.pem", ec)) {
            ep.tls.cert_file = (dir / "cert.pem").string();
            ep.tls.key_file = (dir / "key.pem").string();
        }
    }
    return ep;
}

// Reads a context from the store ("default": the environment). Throws context_error (not_found for a name the
// store does not hold), invalid_host for a malformed Host.
inline docker_context load_docker_context(std::string_view name,
                                          const std::filesystem::path& config_dir = docker_config_dir()) {
    docker_context c;
    c.name = std::string(name);
    if (name == default_context_name) {
        c.description = "Current DOCKER_HOST based configuration";
        c.endpoint = endpoint_from_environment(config_dir);
        c.skip_tls_verify = c.endpoint.tls.enabled && !c.endpoint.tls.verify_server;
        return c;
    }
    if (!detail::valid_context_name(name))
        throw context_error(context_errc::invalid_name, c.name,
                            "not a valid context name (letters, digits and _.+-, at least two characters)");
    const auto digest = detail::context_digest(name);
    c.meta_dir = config_dir / "contexts" / "meta" / digest;
    auto meta = detail::read_json_file(c.meta_dir / "meta.json", c.name);
    if (!meta)
        throw context_error(context_errc::not_found, c.name,
                            "not found (no " + (c.meta_dir / "meta.json").string() + ")");
    auto bad = [&](const std::string& why) {
        return context_error(context_errc::malformed, c.name, (c.meta_dir / "meta.json").string() + ": " + why);
    };
    if (!meta->is_object()) throw bad("not a JSON object");
    auto& o = meta->get_object();
    if (auto* n = o.if_contains("Name"); !n || !n->is_string() || n->get_string() != name)
        throw bad("its Name is not the context's name");
    if (auto* m = o.if_contains("Metadata"); m && m->is_object())
        if (auto* d = m->get_object().if_contains("Description"); d && d->is_string())
            c.description = std::string(d->get_string());
    auto* endpoints = o.if_contains("Endpoints");
    auto* docker = endpoints && endpoints->is_object() ? endpoints->get_object().if_contains("docker") : nullptr;
    if (!docker || !docker->is_object()) throw bad("no docker endpoint");
    auto& d = docker->get_object();
    std::string host;
    if (auto* h = d.if_contains("Host"); h && !h->is_null()) {
        if (!h->is_string()) throw bad("Endpoints.docker.Host is not a string");
        host = std::string(h->get_string());
    }
    if (auto* s = d.if_contains("SkipTLSVerify"); s && !s->is_null()) {
        if (!s->is_bool()) throw bad("Endpoints.docker.SkipTLSVerify is not a boolean");
        c.skip_tls_verify = s->get_bool();
    }

    c.tls_dir = config_dir / "contexts" / "tls" / digest;
    const auto material = c.tls_dir / "docker";
    std::error_code ec;
    for (const char* f : {"ca.pem", "cert.pem", "key.pem"})
        if (std::filesystem::is_regular_file(material / f, ec)) c.tls_files.push_back(f);
    auto has = [&](std::string_view f) {
        return std::find(c.tls_files.begin(), c.tls_files.end(), f) != c.tls_files.end();
    };

    auto& ep = c.endpoint;
    ep.tls.enabled = !c.tls_files.empty() || c.skip_tls_verify;
    ep.tls.verify_server = !c.skip_tls_verify;
    if (has("ca.pem")) ep.tls.ca_file = (material / "ca.pem").string();
    if (has("cert.pem") && has("key.pem")) {
        ep.tls.cert_file = (material / "cert.pem").string();
        ep.tls.key_file = (material / "key.pem").string();
    }
    ep.address = host.empty() ? host_address{.path = std::string(default_docker_socket)}
                              : parse_docker_host(host, ep.tls.enabled ? docker_tls_port : docker_plain_port);
    return c;
}

// The name of the context the docker CLI would use now (see the top of this header).
inline std::string current_docker_context_name(const std::filesystem::path& config_dir = docker_config_dir()) {
    if (!detail::env_or_empty("DOCKER_HOST").empty()) return std::string(default_context_name);
    if (auto name = detail::env_or_empty("DOCKER_CONTEXT"); !name.empty()) return name;
    auto config = detail::read_json_file(config_dir / "config.json", "(current)");
    if (config) {
        if (!config->is_object())
            throw context_error(context_errc::malformed, "(current)",
                                (config_dir / "config.json").string() + " is not a JSON object");
        if (auto* cur = config->get_object().if_contains("currentContext"); cur && !cur->is_null()) {
            if (!cur->is_string())
                throw context_error(context_errc::malformed, "(current)",
                                    (config_dir / "config.json").string() + ": currentContext is not a string");
            if (!cur->get_string().empty()) return std::string(cur->get_string());
        }
    }
    return std::string(default_context_name);
}

// The endpoint the docker CLI would connect to, with its precedence: DOCKER_HOST, DOCKER_CONTEXT, currentContext,
// the default socket.
inline engine_endpoint docker_endpoint_from_env() {
    auto dir = docker_config_dir();
    return load_docker_context(current_docker_context_name(dir), dir).endpoint;
}

}  // namespace berth
