#pragma once
// The check of a detach-key sequence before it is sent (an exec's DetachKeys, an attach's detachKeys). The engines
// refuse a malformed one inconsistently: Docker 20.10 with a 500 at exec create and a 400 at attach, Podman 4.3 with
// a 500 at attach and not at all at exec create (the exec then detaches on nothing). Checked here, it is one
// invalid_argument_error everywhere, before any request.
#include <berth/error.hpp>

#include <string>
#include <string_view>

namespace berth::detail {

// The grammar both engines parse (moby/term ToBytes, which Podman uses too): keys separated by commas, each a single
// character or "ctrl-" followed by one of a-z @ [ \ ] ^ _ (lower case). Empty: the engine's default, not checked.
inline void check_detach_keys(std::string_view keys, std::string_view where) {
    if (keys.empty()) return;
    std::string_view rest = keys;
    for (;;) {
        const auto comma = rest.find(',');
        const std::string_view key = rest.substr(0, comma);
        const bool single = key.size() == 1;
        const bool control = key.size() == 6 && key.starts_with("ctrl-") &&
                             ((key[5] >= 'a' && key[5] <= 'z') ||
                              std::string_view("@[\\]^_").find(key[5]) != std::string_view::npos);
        if (!single && !control)
            throw invalid_argument_error(std::string(where) + ": the detach keys \"" + std::string(keys) +
                                         "\" are not a comma-separated list of single characters and ctrl-<a-z@[\\]^_> "
                                         "(\"" +
                                         std::string(key) + "\" is neither)");
        if (comma == std::string_view::npos) return;
        rest.remove_prefix(comma + 1);
    }
}

}  // namespace berth::detail
