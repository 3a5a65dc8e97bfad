#pragma once
// Image references as the docker CLI reads them: [registry/]repository[:tag][@digest]. The first path component
// is a registry when it has a '.' or a ':' or is "localhost"; otherwise the image is on Docker Hub.
#include <berth/error.hpp>

#include <boost/system/errc.hpp>

#include <string>
#include <string_view>

namespace berth {

// An image reference the docker CLI would not accept. code() is the generic errc::invalid_argument (bad input).
class invalid_reference : public invalid_argument_error {
public:
    invalid_reference(std::string_view reference, const std::string& why)
        : invalid_argument_error("invalid image reference '" + std::string(reference) + "': " + why) {}
};

inline constexpr std::string_view docker_hub_registry = "docker.io";

struct image_reference {
    std::string name{};      // everything before the tag or digest: "127.0.0.1:5000/team/app", "busybox"
    std::string tag{};       // empty when not given
    std::string digest{};    // "sha256:..." when given
    std::string registry{};  // "127.0.0.1:5000", or docker.io for Docker Hub names

    // The tag, or "latest" when neither a tag nor a digest was given (an empty tag would pull every tag).
    std::string tag_or_latest() const { return tag.empty() && digest.empty() ? "latest" : tag; }
    // name:tag or name@digest, as the engine names the pulled image.
    std::string str() const {
        if (!digest.empty()) return name + "@" + digest;
        return name + ":" + tag_or_latest();
    }
};

// Splits and checks a reference. The check is deliberately simple (the engine applies the full grammar), but it
// keeps anything that could break a request line or a query out: whitespace, controls, empty parts.
inline image_reference parse_image_reference(std::string_view text) {
    if (text.empty()) throw invalid_reference(text, "it is empty");
    for (const char ch : text)
        if (const auto c = static_cast<unsigned char>(ch); c <= ' ' || c >= 0x7f)
            throw invalid_reference(text, "it contains a space, a control or a non-ASCII character");
    image_reference r;
    std::string_view rest = text;
    if (auto at = rest.find('@'); at != std::string_view::npos) {
        r.digest = std::string(rest.substr(at + 1));
        rest = rest.substr(0, at);
        auto colon = r.digest.find(':');
        if (colon == std::string::npos || colon == 0 || colon + 1 == r.digest.size())
            throw invalid_reference(text, "the digest is not algorithm:hex");
    }
    auto slash = rest.rfind('/');
    auto colon = rest.rfind(':');
    if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
        r.tag = std::string(rest.substr(colon + 1));
        rest = rest.substr(0, colon);
        if (r.tag.empty()) throw invalid_reference(text, "the tag is empty");
    }
    if (rest.empty() || rest.front() == '/' || rest.back() == '/' || rest.find("//") != std::string_view::npos)
        throw invalid_reference(text, "the repository name is empty or has an empty component");
    r.name = std::string(rest);
    auto first = rest.substr(0, rest.find('/'));
    const bool has_registry = first.size() < rest.size() &&
                              (first.find_first_of(".:") != std::string_view::npos || first == "localhost");
    r.registry = has_registry ? std::string(first) : std::string(docker_hub_registry);
    return r;
}

}  // namespace berth
