// The one doctest main shared by every test executable.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BERTH_TEST_MAIN_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(BERTH_TEST_MAIN_ASAN)
// A smaller quarantine than ASan's 256 MiB, so the memory tests' bounds (tests/support/engines.hpp, rss_bound_kib)
// can allow for it and still tell flat memory from memory that grows with the data. ASAN_OPTIONS still overrides.
extern "C" const char* __asan_default_options() { return "quarantine_size_mb=64"; }
#endif
