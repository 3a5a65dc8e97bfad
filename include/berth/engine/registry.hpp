#pragma once
// Images to and from registries: pull (POST /images/create), push (POST /images/{name}/push) and the credential
// check (POST /auth), reached as images().pull/push/check_auth. The engine talks to the registry; berth hands it
// the credentials (X-Registry-Auth), reads its JSON-lines progress (json_progress.hpp) into typed progress_events,
// and turns every failure, whether the reply's status or an error inside the stream, into a registry_error that
// says what went wrong (unauthorized, not found, unreachable) with the engine's message, any secret taken out.
// A pull's digest is the one the engine names (Docker's stream; on Podman, the image's default manifest, see below).
#include <berth/detail/random_token.hpp>
#include <berth/detail/poll.hpp>
#include <berth/detail/url.hpp>
#include <berth/engine/client_core.hpp>
#include <berth/engine/credentials.hpp>
#include <berth/engine/image_reference.hpp>
#include <berth/engine/json_progress.hpp>
#include <berth/engine/registry_auth.hpp>

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <optional>
#include <set>

namespace berth {

enum class registry_errc {
    unauthorized = 1,  // wrong or missing credentials
    not_found,         // no such repository, tag or digest
    unreachable,       // the registry could not be reached (refused, no route, unknown host, timed out)
    other,             // anything else the engine or registry said (TLS trust, bad request, ...)
};

inline const char* errc_message(registry_errc e) noexcept {
    switch (e) {
    case registry_errc::unauthorized: return "the registry refused the credentials";
    case registry_errc::not_found: return "no such repository, tag or digest in the registry";
    case registry_errc::unreachable: return "the registry could not be reached";
    case registry_errc::other: return "the registry transfer failed";
    }
    return "registry error";
}
inline const boost::system::error_category& registry_category() noexcept {
    static const detail::errc_category<registry_errc> category("berth.registry", errc_message);
    return category;
}
inline boost::system::error_code make_error_code(registry_errc e) noexcept {
    return {static_cast<int>(e), registry_category()};
}

}  // namespace berth

template <>
struct boost::system::is_error_code_enum<berth::registry_errc> : std::true_type {};

namespace berth {

// A pull, push or credential check that failed. An engine_error (status(), message(), endpoint() are the
// engine's), whose code() is a registry_errc (category "berth.registry").
class registry_error : public engine_error {
public:
    registry_error(registry_errc code, unsigned status, std::string message, std::string endpoint)
        : engine_error(code, status, std::move(message), std::move(endpoint)) {}
};

// What a registry failure was, from the engine's message (Docker and Podman word them alike: both quote the
// registry's own error code) and the reply's status.
inline registry_errc classify_registry_failure(std::string_view message, unsigned status) {
    auto has = [&](std::string_view s) { return message.find(s) != std::string_view::npos; };
    if (status == 401 || status == 403 || has("unauthorized") || has("authentication required") || has("denied") ||
        has("no basic auth credentials") || has("401 Unauthorized"))
        return registry_errc::unauthorized;
    if (has("manifest unknown") || has("name unknown") || has("repository does not exist") ||
        has("not found: manifest") || (status == 404 && has("manifest")))
        return registry_errc::not_found;
    if (has("connection refused") || has("no such host") || has("no route to host") || has("network is unreachable") ||
        has("i/o timeout") || has("connection reset"))
        return registry_errc::unreachable;
    return status == 404 ? registry_errc::not_found : registry_errc::other;
}

struct registry_request_options {
    // Used as given when set; otherwise looked up as the docker CLI does (credentials.hpp) when lookup is on.
    std::optional<registry_credentials> credentials{};
    bool lookup_credentials = true;
    credential_options lookup{};
};

struct pull_options : registry_request_options {
    std::string platform{};           // "linux/amd64"; empty: the engine's own
    progress_callback on_progress{};  // one step per layer: started, byte counts, cached or completed
};
struct push_options : registry_request_options {
    progress_callback on_progress{};  // one step per layer: started, byte counts, completed
};

struct pulled_image {
    std::string reference{};  // name:tag or name@digest
    std::string id{};         // the local image id (sha256:...)
    // The digest of the manifest this pull fetched (sha256:...): the one the tag named in the registry. Empty only
    // on Podman before 4.3 for an image that has several digests (which one was fetched cannot be asked there).
    std::string digest{};
};

struct pushed_image {
    std::string reference{};
    std::string digest{};   // the manifest digest the registry stored
    std::int64_t size = 0;  // the manifest's size when the engine reports it
};

struct auth_result {
    std::string status{};          // "Login Succeeded"
    std::string identity_token{};  // when the registry issued one (use it instead of the password)
};

namespace detail {

// Engine progress messages of a pull or push as progress_events, one step per layer, and the digest they name.
class transfer_progress {
public:
    explicit transfer_progress(progress_callback callback) : callback_(std::move(callback)) {}

    void on_message(const progress_message& m) {
        if (m.failed) return;  // thrown by the caller
        if (auto d = digest_in(m.status); !d.empty()) digest_ = d;
        if (m.aux && m.aux->is_object())
            if (auto* d = m.aux->get_object().if_contains("Digest"); d && d->is_string()) {
                digest_ = std::string(d->get_string());
                if (auto* s = m.aux->get_object().if_contains("Size"); s && s->is_int64()) size_ = s->get_int64();
            }
        if (!callback_) return;
        progress_event e;
        // "Pulling from repo" carries the tag as its id: a heading, not a layer
        if (m.id.empty() || m.status.starts_with("Pulling from ")) {
            if (m.status.empty()) return;
            e.kind = progress_kind::message;
            e.text = m.id.empty() ? m.status : m.status + " " + m.id;
            callback_(e);
            return;
        }
        e.step = m.id;
        e.name = m.status;
        const bool first = seen_.insert(m.id).second;
        if (is_cached(m.status)) {
            e.kind = progress_kind::step_cached;
        } else if (is_done(m.status)) {
            if (first) emit_started(m);
            e.kind = progress_kind::step_completed;
        } else if (first) {
            e.kind = progress_kind::step_started;
        } else {
            e.kind = progress_kind::step_progress;
            e.current = m.current.value_or(0);
            e.total = m.total.value_or(0);
        }
        callback_(e);
        if (first && e.kind == progress_kind::step_started && (m.current || m.total)) {
            e.kind = progress_kind::step_progress;  // a layer's first message may already count bytes
            e.current = m.current.value_or(0);
            e.total = m.total.value_or(0);
            callback_(e);
        }
    }
    const std::string& digest() const { return digest_; }
    std::int64_t size() const { return size_; }

private:
    static bool is_cached(std::string_view s) {
        return s == "Already exists" || s == "Layer already exists" || s.starts_with("Mounted from");
    }
    static bool is_done(std::string_view s) {
        return s == "Pull complete" || s == "Pushed" || s == "Download complete";
    }
    // "Digest: sha256:..." (pull), "TAG: digest: sha256:... size: N" (push)
    static std::string digest_in(std::string_view status) {
        for (std::string_view marker : {"Digest: ", "digest: "}) {
            auto at = status.find(marker);
            if (at == std::string_view::npos) continue;
            auto d = status.substr(at + marker.size());
            d = d.substr(0, d.find(' '));
            if (d.find(':') != std::string_view::npos) return std::string(d);
        }
        return {};
    }
    void emit_started(const progress_message& m) {
        progress_event s;
        s.kind = progress_kind::step_started;
        s.step = m.id;
        s.name = m.status;
        callback_(s);
    }
    progress_callback callback_;
    std::set<std::string> seen_{};
    std::string digest_{};
    std::int64_t size_ = 0;
};

// The credentials given, else those the docker CLI would use, else none.
inline boost::asio::awaitable<std::optional<registry_credentials>> credentials_for(const image_reference& ref,
                                                                                   const registry_request_options& o) {
    if (o.credentials) co_return o.credentials;
    if (!o.lookup_credentials) co_return std::nullopt;
    co_return co_await find_credentials(ref.registry, o.lookup);
}

// Opens a registry request and reads its progress to the end; any failure becomes a registry_error without secrets.
template <transport Transport>
boost::asio::awaitable<void> run_transfer(client_core<Transport>& client, http::request req,
                                          const std::optional<registry_credentials>& credentials,
                                          transfer_progress& progress) {
    const registry_credentials no_credentials{};
    const auto& secrets = credentials ? *credentials : no_credentials;
    auto fail = [&](const engine_error& e) -> registry_error {
        auto message = redact(e.message(), secrets);
        return registry_error(classify_registry_failure(message, e.status()), e.status(), message, e.endpoint());
    };
    json_progress_options stream_options;
    stream_options.secrets = registry_secrets(secrets);
    req.secrets = stream_options.secrets;
    try {
        auto reply = co_await client.open(std::move(req));
        co_await read_progress_stream(
            reply, [&](const progress_message& m) { progress.on_message(m); }, stream_options);
    } catch (const engine_error& e) { throw fail(e); }
}

// ---- which manifest a Podman pull fetched ----
// Podman's compat pull stream names no digest, and its RepoDigests pair each of the image's names with every digest
// the image has (from every name it was pulled or pushed as), so with several they cannot say which this pull
// fetched. What Podman keeps is the manifest of the latest pull into the image (containers/storage's default
// manifest), and a manifest list made from the local image (containers-storage:<id>) names that manifest's digest:
// berth makes one under a random name, reads it and removes it at once. Exact unless another pull into the same
// image ran in between.

// "sha256:" and 64 lowercase hex digits: an id or digest from a reply, checked before it goes into a request line.
inline bool is_sha256_digest(std::string_view s) {
    if (!s.starts_with("sha256:") || s.size() != 7 + 64) return false;
    for (char ch : s.substr(7))
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
    return true;
}

// "4.3.1" (Podman's own version) is at least major.minor.
inline bool version_at_least(std::string_view version, int major, int minor) {
    int got_major = 0, got_minor = 0;
    if (std::sscanf(std::string(version).c_str(), "%d.%d", &got_major, &got_minor) != 2) return false;
    return got_major > major || (got_major == major && got_minor >= minor);
}

// The digest of the image's default manifest, through a temporary manifest list.
template <transport Transport>
boost::asio::awaitable<std::string> podman_default_manifest_digest(client_core<Transport>& client,
                                                                   const std::string& image_id) {
    const std::string list = "localhost/berth-pull-digest-" + random_token();
    const std::string source = "containers-storage:" + image_id.substr(7);
    const std::string create = "/libpod/manifests/create" +
                               detail::query().add("name", list).add("images", source).str();
    const std::string inspect = "/libpod/manifests/" + percent_encode(list) + "/json";
    std::string digest;
    std::exception_ptr failed;
    bool cancelled = false;
    bool create_outcome_unknown = true;  // until the create is answered: a 5xx (or no reply) may still make the list
    try {
        try {
            co_await client.call(verb::post, create);
        } catch (const engine_error& e) {
            create_outcome_unknown = e.code() == engine_errc::server_error;
            throw;
        }
        create_outcome_unknown = false;
        auto v = co_await client.call_json(verb::get, inspect);
        const std::string endpoint = "GET " + inspect;
        auto* listed = json_read::as_object(v, endpoint).if_contains("manifests");
        if (listed == nullptr) throw protocol_error(endpoint, "reply lacks the field 'manifests'");
        auto& manifests = json_read::as_array(*listed, endpoint);
        if (manifests.size() != 1)
            throw protocol_error(endpoint, "the list made from one image holds " + std::to_string(manifests.size()) +
                                               " manifests");
        digest = json_read::string_field(json_read::as_object(manifests[0], endpoint), "digest", endpoint);
        if (!is_sha256_digest(digest))
            throw protocol_error(endpoint, "not a sha256 digest: " + quote_engine_text(digest));
    } catch (const boost::system::system_error& e) {
        cancelled = e.code() == boost::asio::error::operation_aborted;
        failed = std::current_exception();
    } catch (...) { failed = std::current_exception(); }
    // The list goes whatever happened (a cancelled create may have made it). lookupManifest makes Podman remove the
    // list itself: without it, Podman resolves a list's name to the image inside it. After a create whose outcome is
    // unknown, a list not found may still be in the making: asked again a few times, over about a second and a half.
    if (cancelled) co_await boost::asio::this_coro::reset_cancellation_state();
    auto removed = [&]() -> boost::asio::awaitable<bool> {
        try {
            co_await client.call(verb::delete_, "/libpod/images/" + percent_encode(list) +
                                                    detail::query().add_flag("lookupManifest", true).str());
        } catch (const not_found_error&) {
            co_return !create_outcome_unknown;  // never made
        } catch (...) {
            if (!failed) throw;
        }
        co_return true;
    };
    const poll_policy policy{
        .first = std::chrono::milliseconds(50), .max = std::chrono::milliseconds(800), .attempts = 6};
    co_await poll_until(removed, policy);
    if (failed) std::rethrow_exception(failed);
    co_return digest;
}

// The digest a Podman pull fetched: the image's only digest, else the one its default manifest has (Podman 4.3 and
// later: the removal above needs lookupManifest), else none.
template <transport Transport>
boost::asio::awaitable<std::string> podman_pulled_digest(client_core<Transport>& client, const json::object& image,
                                                         const std::string& endpoint) {
    std::set<std::string> digests;
    for (auto& rd : json_read::optional_strings(image, "RepoDigests", endpoint))
        if (auto at = rd.rfind('@'); at != std::string::npos) digests.insert(rd.substr(at + 1));
    if (digests.empty()) throw protocol_error(endpoint, "the pulled image has no digest");
    if (digests.size() == 1) co_return *digests.begin();
    auto engine = co_await client.version();
    if (!version_at_least(engine.version, 4, 3)) co_return std::string();
    auto id = json_read::string_field(image, "Id", endpoint);
    if (!is_sha256_digest(id))
        throw protocol_error(endpoint, "the image id is not a sha256 digest: " + quote_engine_text(id));
    auto digest = co_await podman_default_manifest_digest(client, id);
    if (!digests.contains(digest))
        throw protocol_error(endpoint, "Podman names " + digest +
                                           " as the pulled manifest, which is not among the image's digests");
    co_return digest;
}

template <transport Transport>
boost::asio::awaitable<pulled_image> pull(client_core<Transport>& client, std::string_view reference,
                                          pull_options options) {
    auto ref = parse_image_reference(reference);
    auto credentials = co_await credentials_for(ref, options);
    detail::query q;
    q.add("fromImage", ref.name);
    // a tag or a digest always: an empty tag would pull every tag of the repository
    q.add("tag", ref.digest.empty() ? ref.tag_or_latest() : ref.digest);
    q.add_if(!options.platform.empty(), "platform", options.platform);
    http::request req{.method = verb::post, .target = "/images/create" + q.str()};
    if (credentials) req.headers.emplace_back("X-Registry-Auth", registry_auth_header(*credentials));
    transfer_progress progress(std::move(options.on_progress));
    co_await run_transfer(client, std::move(req), credentials, progress);

    pulled_image result;
    result.reference = ref.str();
    const std::string target = "/images/" + percent_encode(result.reference) + "/json";
    auto v = co_await client.call_json(verb::get, target);
    const std::string endpoint = "GET " + target;
    auto& o = json_read::as_object(v, endpoint);
    result.id = json_read::string_field(o, "Id", endpoint);
    result.digest = !ref.digest.empty() ? ref.digest : progress.digest();
    if (result.digest.empty() && (co_await client.kind()) == engine_kind::podman) {
        result.digest = co_await podman_pulled_digest(client, o, endpoint);
        co_return result;
    }
    if (result.digest.empty()) throw protocol_error(endpoint, "the pull stream named no digest for " + ref.name);
    co_return result;
}

template <transport Transport>
boost::asio::awaitable<pushed_image> push(client_core<Transport>& client, std::string_view reference,
                                          push_options options) {
    auto ref = parse_image_reference(reference);
    if (!ref.digest.empty()) throw invalid_reference(reference, "a push names a tag, not a digest");
    auto credentials = co_await credentials_for(ref, options);
    auto q = detail::query().add("tag", ref.tag_or_latest());
    http::request req{.method = verb::post, .target = "/images/" + percent_encode(ref.name) + "/push" + q.str()};
    // Docker refuses a push without the header, even to an open registry: "{}" says "no credentials"
    req.headers.emplace_back("X-Registry-Auth",
                             registry_auth_header(credentials ? *credentials : registry_credentials{}));
    transfer_progress progress(std::move(options.on_progress));
    co_await run_transfer(client, std::move(req), credentials, progress);
    if (progress.digest().empty())
        throw protocol_error("POST /images/" + ref.name + "/push", "the push ended without naming the pushed digest");
    co_return pushed_image{ref.str(), progress.digest(), progress.size()};
}

template <transport Transport>
boost::asio::awaitable<auth_result> check_auth(client_core<Transport>& client, registry_credentials credentials) {
    http::request req{.method = verb::post,
                      .target = "/auth",
                      .body = json::serialize(auth_config_json(credentials, true)),
                      .content_type = "application/json"};
    req.secrets = registry_secrets(credentials);
    std::string text;
    try {
        text = co_await client.call(std::move(req));
    } catch (const engine_error& e) {
        auto message = redact(e.message(), credentials);
        throw registry_error(classify_registry_failure(message, e.status()), e.status(), message, e.endpoint());
    }
    // never quoted: the engine may have echoed the password
    auto v = json_read::parse(text, "POST /auth", json_read::quoting::none);
    auto& o = json_read::as_object(v, "POST /auth");
    co_return auth_result{json_read::optional_string(o, "Status", "POST /auth"),
                          json_read::optional_string(o, "IdentityToken", "POST /auth")};
}

}  // namespace detail
}  // namespace berth
