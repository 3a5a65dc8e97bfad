#pragma once
// A random hex token (128 bits) for names berth gives to things it makes on an engine, such as temporary objects,
// so that no other caller's name can collide with them.
#include <cstdio>
#include <random>
#include <string>

namespace berth::detail {

inline std::string random_token() {
    std::random_device source;
    std::string token;
    for (int word = 0; word < 4; ++word) {
        char hex[9];
        std::snprintf(hex, sizeof hex, "%08x", static_cast<unsigned>(source()));
        token += hex;
    }
    return token;
}

}  // namespace berth::detail
