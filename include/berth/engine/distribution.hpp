#pragma once
// Distribution: what a registry holds under an image reference (its manifest's descriptor and the platforms it
// serves), asked through the engine, with the registry credentials images' pull and push use (registry.hpp).
// Podman 4.3 has no such endpoint: it answers 404 (a not_found_error).
#include <berth/detail/url.hpp>
#include <berth/engine/client_core.hpp>
#include <berth/engine/registry.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace berth {

struct oci_platform {            // an OCI platform: which machine an image runs on
    std::string architecture{};  // "amd64", "arm64"...
    std::string os{};            // "linux"
    std::string os_version{};    // os.version
    std::vector<std::string> os_features{};
    std::string variant{};  // "v7", "v8"
};

struct oci_descriptor {        // an OCI content descriptor
    std::string media_type{};  // "application/vnd.docker.distribution.manifest.v2+json", an OCI index...
    std::string digest{};      // "sha256:..."
    std::int64_t size = 0;     // bytes
    std::vector<std::string> urls{};
    std::map<std::string, std::string> annotations{};
    std::optional<oci_platform> platform{};
    std::string artifact_type{};
};

struct distribution_info {  // GET /distribution/{name}/json
    oci_descriptor descriptor{};
    std::vector<oci_platform> platforms{};  // every platform the manifest (or index) serves
    json::object raw{};
};

struct distribution_inspect_options : registry_request_options {};

template <transport Transport>
class distribution_api {
public:
    explicit distribution_api(client_core<Transport>& c) : client_(c) {}

    // The registry's descriptor of `reference` ([registry/]repository[:tag|@digest]) and its platforms, with the
    // credentials in options or, by default, those the docker CLI would use. Failures are registry_errors:
    // unauthorized, not_found (Docker 20.10 answers an unknown repository or tag with 401 or 404 as the registry
    // does), unreachable.
    // Engine API: GET /distribution/{name}/json
    boost::asio::awaitable<distribution_info> inspect(std::string_view reference) {
        return inspect(reference, distribution_inspect_options{});
    }
    // Engine API: GET /distribution/{name}/json
    boost::asio::awaitable<distribution_info> inspect(std::string_view reference,
                                                      distribution_inspect_options options) {
        if (reference.empty())
            throw invalid_argument_error("berth::distribution().inspect: the image reference is empty");
        auto ref = parse_image_reference(reference);
        auto credentials = co_await detail::credentials_for(ref, options);
        const std::string target = "/distribution/" + detail::percent_encode(reference) + "/json";
        http::request req{.method = verb::get, .target = target};
        if (credentials) {
            req.headers.emplace_back("X-Registry-Auth", registry_auth_header(*credentials));
            req.secrets = registry_secrets(*credentials);
        }
        // Podman's own 404 says it has no such endpoint, nothing about the registry: kept as a not_found_error
        const bool podman = (co_await client_.kind()) == engine_kind::podman;
        std::string text;
        try {
            text = co_await client_.call(std::move(req));
        } catch (const engine_error& e) {
            if (podman && e.code() == engine_errc::not_found) throw;
            auto message = credentials ? redact(e.message(), *credentials) : e.message();
            throw registry_error(classify_registry_failure(message, e.status()), e.status(), message, e.endpoint());
        }
        const std::string endpoint = "GET " + target;
        auto v = json_read::parse(text, endpoint);
        auto& o = json_read::as_object(v, endpoint);
        distribution_info out{};
        auto* d = json_read::optional_object(o, "Descriptor", endpoint);
        if (d == nullptr) throw protocol_error(endpoint, "reply lacks the object 'Descriptor'");
        out.descriptor.media_type = json_read::optional_string(*d, "mediaType", endpoint);
        out.descriptor.digest = json_read::string_field(*d, "digest", endpoint);
        out.descriptor.size = json_read::optional_int(*d, "size", endpoint);
        out.descriptor.urls = json_read::optional_strings(*d, "urls", endpoint);
        out.descriptor.annotations = json_read::optional_string_map(*d, "annotations", endpoint);
        if (auto* p = json_read::optional_object(*d, "platform", endpoint))
            out.descriptor.platform = parse_platform(*p, endpoint);
        out.descriptor.artifact_type = json_read::optional_string(*d, "artifactType", endpoint);
        if (auto* ps = o.if_contains("Platforms"); ps != nullptr && !ps->is_null())
            for (auto& item : json_read::as_array(*ps, endpoint))
                out.platforms.push_back(parse_platform(json_read::as_object(item, endpoint), endpoint));
        out.raw = o;
        co_return out;
    }

private:
    static oci_platform parse_platform(const json::object& p, const std::string& endpoint) {
        return oci_platform{json_read::optional_string(p, "architecture", endpoint),
                            json_read::optional_string(p, "os", endpoint),
                            json_read::optional_string(p, "os.version", endpoint),
                            json_read::optional_strings(p, "os.features", endpoint),
                            json_read::optional_string(p, "variant", endpoint)};
    }

    client_core<Transport>& client_;
};

}  // namespace berth
