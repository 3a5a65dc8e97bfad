#pragma once
// Checks every test program uses: substring search, and the exception a call throws (its type and message).
#include <doctest/doctest.h>

#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace berth_test {

inline bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

// The exception `f` throws, which must be an E: checks that look at the message too, since the type alone does not
// say the error is clear.
template <class E, class F>
E thrown(F&& f) {
    try {
        f();
    } catch (const E& e) { return e; } catch (const std::exception& e) {
        FAIL_CHECK("expected another exception type, got: " << std::string(e.what()));
        throw;
    }
    FAIL_CHECK("no exception");
    throw std::logic_error("no exception");
}

// The text of the exception of type E that f throws, read from the exception itself (a copy sliced to E might say
// less).
template <class E, class F>
std::string message_of(F&& f) {
    try {
        f();
    } catch (const E& e) { return e.what(); } catch (const std::exception& e) {
        FAIL_CHECK("expected another exception type, got: " << std::string(e.what()));
        return {};
    }
    FAIL_CHECK("no exception");
    return {};
}

// The exception of type E behind a build_container failure (failure()->error), or nullptr: kept per thread, so the
// pointer stays valid until the next call.
template <class E, class Failure>
const E* failure_error(const Failure* f) {
    if (f == nullptr || !f->error) return nullptr;
    try {
        std::rethrow_exception(f->error);
    } catch (const E& e) {
        static thread_local std::optional<E> kept;
        kept.emplace(e);
        return &*kept;
    } catch (...) {}
    return nullptr;
}

}  // namespace berth_test
