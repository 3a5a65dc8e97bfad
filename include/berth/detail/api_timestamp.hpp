#pragma once
// The engine's form of a point in time for since/until query parameters (events, logs): "seconds.nanoseconds".
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace berth::detail {

inline std::int64_t nanos_since_epoch(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// "seconds.nanoseconds" (both engines take the fraction); a time before the epoch is the epoch.
inline std::string api_timestamp_nanos(std::int64_t ns) {
    if (ns < 0) ns = 0;
    char buf[48];
    std::snprintf(buf, sizeof buf, "%lld.%09lld", static_cast<long long>(ns / 1000000000),
                  static_cast<long long>(ns % 1000000000));
    return buf;
}

inline std::string api_timestamp(std::chrono::system_clock::time_point t) {
    return api_timestamp_nanos(nanos_since_epoch(t));
}

}  // namespace berth::detail
