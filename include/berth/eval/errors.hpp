#pragma once
// The evaluation layer's own error contract (the Python module's FileNotFoundError and its exec failure).
#include <stdexcept>
#include <string>
#include <utility>

namespace berth {

// A copy source that does not exist, on the host or in the container; what() names it.
class file_not_found : public std::runtime_error {
public:
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow" // g++: the enumerator `container` shadows the alias berth::container
    enum class side { host, container };
#pragma GCC diagnostic pop
    file_not_found(side where, std::string path, const std::string& detail = {})
        : std::runtime_error(std::string("No such file or directory") +
                             (where == side::container ? " in the container" : "") + ": '" + path + "'" +
                             (detail.empty() ? "" : " (" + detail + ")")),
          where_(where), path_(std::move(path)) {}
    side where() const noexcept { return where_; }
    const std::string& path() const noexcept { return path_; }

private:
    side where_;
    std::string path_;
};

// A command run in the container exited with a non-zero code: "Script failed with exit code N".
class script_failed : public std::runtime_error {
public:
    explicit script_failed(int code)
        : std::runtime_error("Script failed with exit code " + std::to_string(code)), exit_code_(code) {}
    int exit_code() const noexcept { return exit_code_; }

private:
    int exit_code_;
};

} // namespace berth
