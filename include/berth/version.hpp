#pragma once
// SPDX-License-Identifier: BSL-1.0
// berth's version: the one place it is written. CMake, Meson, the Conan recipe and the vcpkg port read it from here
// or are checked against it (scripts/consumers). Also the C++20 gate: every umbrella header includes this first, so
// an older language mode gets one clear message instead of errors deep inside the library.
#if (defined(_MSVC_LANG) ? _MSVC_LANG : __cplusplus) < 202002L
#error "berth needs C++20 (coroutines and concepts): compile with -std=c++20 or later"
#endif

#define BERTH_VERSION_MAJOR 0
#define BERTH_VERSION_MINOR 1
#define BERTH_VERSION_PATCH 0
#define BERTH_VERSION_STRING "0.1.0"
// One comparable number: major * 10000 + minor * 100 + patch.
#define BERTH_VERSION (BERTH_VERSION_MAJOR * 10000 + BERTH_VERSION_MINOR * 100 + BERTH_VERSION_PATCH)
