// libFuzzer target: the parsers of a credential helper's replies (docker-credential-* get and list), pure functions
// of the helper's stdout. Invariants: only credential_error escapes, its text is bounded and never quotes the reply;
// decoded credentials hold no more than the reply did.
#include <berth/engine/credentials.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "credential_helper_fuzz: %s\n", what);
        std::abort();
    }
}

void check_error(const berth::credential_error& e) {
    check(std::string_view(e.what()).size() < 512, "an error text is not bounded");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    try {
        if (auto c = berth::detail::parse_helper_get_reply(input, "fuzz", "127.0.0.1:5000"))
            check(c->username.size() + c->password.size() + c->identity_token.size() <= size, "more than the reply");
    } catch (const berth::credential_error& e) { check_error(e); }
    try {
        std::size_t n = 0;
        for (auto& key : berth::detail::parse_helper_list_reply(input, "fuzz")) n += key.size();
        check(n <= size, "keys longer than the reply");
    } catch (const berth::credential_error& e) { check_error(e); }
    return 0;
}
