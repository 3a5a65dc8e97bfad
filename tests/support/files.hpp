#pragma once
// Scratch directories and whole files, for tests that put trees on disk.
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <system_error>

namespace berth_test {

// A fresh directory under the temporary directory, named <prefix>-XXXXXX, removed with all it holds at scope exit
// (directories a test made read-only included).
struct temp_dir {
    std::filesystem::path path;

    explicit temp_dir(std::string_view prefix = "berth-test") {
        std::string templ = (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
        if (::mkdtemp(templ.data()) == nullptr)
            throw std::system_error(errno, std::generic_category(), "mkdtemp " + templ);
        path = templ;
    }
    ~temp_dir() {
        std::error_code ec;
        // undo 0555 directories so that removal works
        for (auto& e : std::filesystem::recursive_directory_iterator(path, ec))
            if (e.is_directory(ec) && !e.is_symlink(ec))
                std::filesystem::permissions(e.path(), std::filesystem::perms::owner_all,
                                             std::filesystem::perm_options::add, ec);
        std::filesystem::remove_all(path, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    std::filesystem::path operator/(const std::filesystem::path& p) const { return path / p; }
};

// Writes `content` as the whole file, making its parent directories first.
inline void write_file(const std::filesystem::path& p, std::string_view content) {
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary | std::ios::trunc)
        .write(content.data(), static_cast<std::streamsize>(content.size()));
}

// A shell script (#!/bin/sh and `body`), executable.
inline void write_script(const std::filesystem::path& p, std::string_view body) {
    write_file(p, "#!/bin/sh\n" + std::string(body));
    ::chmod(p.c_str(), 0755);
}

// The whole file; empty when it cannot be read.
inline std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace berth_test
