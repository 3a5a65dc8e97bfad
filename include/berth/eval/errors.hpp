#pragma once
// The evaluation layer's own error contract (the Python module's FileNotFoundError and its exec failure).
#include <berth/error.hpp>

#include <string>
#include <type_traits>
#include <utility>

namespace berth {

enum class eval_errc {
    file_not_found = 1,  // a copy source that does not exist (file_not_found)
    script_failed,       // a command exited with a non-zero code (script_failed)
};

inline const char* errc_message(eval_errc e) noexcept {
    switch (e) {
    case eval_errc::file_not_found: return "No such file or directory";
    case eval_errc::script_failed: return "Script failed";
    }
    return "evaluation error";
}
inline const boost::system::error_category& eval_category() noexcept {
    static const detail::errc_category<eval_errc> category("berth.eval", errc_message);
    return category;
}
inline boost::system::error_code make_error_code(eval_errc e) noexcept {
    return {static_cast<int>(e), eval_category()};
}

}  // namespace berth

template <>
struct boost::system::is_error_code_enum<berth::eval_errc> : std::true_type {};

namespace berth {

// A copy source that does not exist, on the host or in the container; what() names it. code() is
// eval_errc::file_not_found.
class file_not_found : public error {
public:
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"  // g++: the enumerator `container` shadows the alias berth::container
    enum class side { host, container };
#pragma GCC diagnostic pop
    file_not_found(side where, std::string path, const std::string& detail = {})
        : error(eval_errc::file_not_found, std::string("No such file or directory") +
                                               (where == side::container ? " in the container" : "") + ": '" + path +
                                               "'" + (detail.empty() ? "" : " (" + detail + ")")),
          where_(where), path_(std::move(path)) {}
    side where() const noexcept { return where_; }
    const std::string& path() const noexcept { return path_; }

private:
    side where_;
    std::string path_;
};

// A command run in the container exited with a non-zero code: "Script failed with exit code N". code() is
// eval_errc::script_failed.
class script_failed : public error {
public:
    explicit script_failed(int code)
        : error(eval_errc::script_failed, "Script failed with exit code " + std::to_string(code)), exit_code_(code) {}
    int exit_code() const noexcept { return exit_code_; }

private:
    int exit_code_;
};

}  // namespace berth
