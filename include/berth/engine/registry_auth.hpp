#pragma once
// Registry credentials and the two headers that carry them to the engine:
//   X-Registry-Auth    (pull, push): base64url of one JSON object {username, password | identitytoken, serveraddress}
//   X-Registry-Config  (build):      base64url of {server: {username, password | identitytoken}, ...} for every
//                                    registry the build may pull FROM
// The engine, not berth, talks to the registry. Credentials never go into a message berth makes: redact() takes them
// out of any text that came back from the engine or a credential helper before it is shown or thrown.
#include <berth/detail/base64.hpp>
#include <berth/detail/outside_text.hpp>
#include <berth/engine/image_reference.hpp>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace berth {

struct registry_credentials {
    std::string username{};
    std::string password{};
    std::string identity_token{};  // an OAuth refresh token instead of a password (Username "<token>" in helpers)
    std::string registry_token{};  // a bearer token for the registry itself
    std::string server_address{};  // the key it was found under ("https://index.docker.io/v1/", "127.0.0.1:5000")

    bool empty() const {
        return username.empty() && password.empty() && identity_token.empty() && registry_token.empty();
    }
};

// Docker Hub's credentials live under the old index URL, in config.json and in credential helpers alike.
inline constexpr std::string_view docker_hub_credential_key = "https://index.docker.io/v1/";

// The key the docker CLI stores a registry's credentials under: the index URL for Docker Hub, else the host[:port].
inline std::string credential_key(std::string_view registry) {
    if (registry == docker_hub_registry || registry == "index.docker.io" || registry == "registry-1.docker.io" ||
        registry == docker_hub_credential_key)
        return std::string(docker_hub_credential_key);
    return std::string(registry);
}

namespace detail {

// The engine's AuthConfig JSON (field names as moby's registry.AuthConfig spells them); empty fields left out.
inline boost::json::object auth_config_json(const registry_credentials& c, bool with_server) {
    boost::json::object o;
    auto put = [&](std::string_view key, const std::string& value) {
        if (!value.empty()) o[key] = value;
    };
    put("username", c.username);
    put("password", c.password);
    put("identitytoken", c.identity_token);
    put("registrytoken", c.registry_token);
    if (with_server) put("serveraddress", c.server_address);
    return o;
}

}  // namespace detail

// X-Registry-Auth. No credentials encode as "{}": Docker requires the header on push even for an open registry.
inline std::string registry_auth_header(const registry_credentials& c) {
    return detail::base64url_encode(boost::json::serialize(detail::auth_config_json(c, true)));
}

// X-Registry-Config: the credentials for each registry a build may pull from, keyed as the docker CLI keys them.
inline std::string registry_config_header(const std::map<std::string, registry_credentials>& by_registry) {
    boost::json::object o;
    for (auto& [registry, c] : by_registry) {
        auto entry = detail::auth_config_json(c, false);
        entry["serveraddress"] = registry;
        o[registry] = std::move(entry);
    }
    return detail::base64url_encode(boost::json::serialize(o));
}

// Every form in which `c`'s secrets may come back in an engine's reply: the password and tokens (also as JSON
// writes them), the "auth" field's base64("user:password"), and the X-Registry-Auth header made from them.
inline std::vector<std::string> registry_secrets(const registry_credentials& c) {
    std::vector<std::string> out;
    for (const std::string* secret : {&c.password, &c.identity_token, &c.registry_token}) {
        if (secret->empty()) continue;
        out.push_back(*secret);
        auto quoted = boost::json::serialize(boost::json::string(*secret));  // "a\"b" for a"b
        if (quoted.size() >= 2 && quoted.substr(1, quoted.size() - 2) != *secret)
            out.push_back(quoted.substr(1, quoted.size() - 2));
    }
    if (!c.password.empty()) out.push_back(detail::base64_encode(c.username + ":" + c.password));
    if (!c.empty()) out.push_back(registry_auth_header(c));
    return out;
}

// The secrets of every registry's credentials, and the X-Registry-Config header made from them.
inline std::vector<std::string> registry_secrets(const std::map<std::string, registry_credentials>& by_registry) {
    std::vector<std::string> out;
    for (auto& [registry, c] : by_registry) {
        auto some = registry_secrets(c);
        out.insert(out.end(), some.begin(), some.end());
    }
    if (!by_registry.empty()) out.push_back(registry_config_header(by_registry));
    return out;
}

// The text with every secret of `c` (and the header made from it) replaced by "<redacted>".
inline std::string redact(std::string text, const registry_credentials& c) {
    return detail::redact_secrets(std::move(text), registry_secrets(c));
}

}  // namespace berth
