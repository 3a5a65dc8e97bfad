#pragma once
// Shell commands a test compares berth with (the tar tools, Python's tarfile, the docker CLI, curl).
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace berth_test {

// The exit status of `command` run by /bin/sh (-1 when it did not exit normally); its output goes where the test's
// own output goes.
inline int shell_status(const std::string& command) {
    const int status = std::system(command.c_str());
    return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The standard output of `command` run by /bin/sh (append " 2>&1" for its errors too); its exit status, as
// shell_status gives it, in *status.
inline std::string shell_output(const std::string& command, int* status = nullptr) {
    std::string out;
    FILE* p = ::popen(command.c_str(), "r");
    if (p == nullptr) {
        if (status) *status = -1;
        return out;
    }
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    const int rc = ::pclose(p);
    if (status) *status = rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    return out;
}

}  // namespace berth_test
