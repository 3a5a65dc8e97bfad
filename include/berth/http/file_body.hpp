#pragma once
// Files as streamed bodies: file_source reads a file in slices as a request body (an image tarball to load, an
// archive to put); file_sink writes a reply body (an image save, a container export) to a temporary file beside the
// destination and renames it into place only when the whole body arrived, so a failed transfer never leaves a
// half-written file where a good one was. Neither holds more than one slice in memory.
#include <berth/detail/random_token.hpp>
#include <berth/detail/unique_fd.hpp>
#include <berth/error.hpp>

#include <boost/system/error_code.hpp>

#include <cerrno>
#include <filesystem>
#include <span>
#include <string>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace berth::http {

namespace file_body_detail {
[[noreturn]] inline void throw_errno(int err, const std::string& what) {
    throw berth::error(boost::system::error_code(err, boost::system::system_category()),
                       what + ": " + boost::system::error_code(err, boost::system::system_category()).message());
}
}  // namespace file_body_detail

// A body_source (exchange.hpp) over a file: read() fills the buffer from the file, 0 at its end. A file that cannot
// be opened or read is a berth::error with the system's code (no_such_file_or_directory, ...) naming the file.
class file_source {
public:
    explicit file_source(const std::filesystem::path& path) : path_(path.string()) {
        fd_.reset(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd_) file_body_detail::throw_errno(errno, "cannot open " + path_);
    }
    std::size_t read(std::span<char> buffer) {
        for (;;) {
            auto n = ::read(fd_.get(), buffer.data(), buffer.size());
            if (n >= 0) return static_cast<std::size_t>(n);
            if (errno != EINTR) file_body_detail::throw_errno(errno, "cannot read " + path_);
        }
    }

private:
    std::string path_;
    berth::detail::unique_fd fd_{};
};

// A byte sink (archive.hpp's byte_sink) writing to `path` through a temporary file in the same directory
// (".berth-<name>-<token>", mode 0666 less the umask). commit() flushes it and renames it onto `path` (replacing a
// file that was there); without commit() the destructor removes the temporary and `path` is left as it was.
class file_sink {
public:
    explicit file_sink(const std::filesystem::path& path) : path_(path) {
        auto dir = path_.parent_path();
        temp_ = dir / (".berth-" + path_.filename().string() + "-" + berth::detail::random_token());
        fd_.reset(::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
        if (!fd_) file_body_detail::throw_errno(errno, "cannot create a temporary file beside " + path_.string());
    }
    file_sink(const file_sink&) = delete;
    file_sink& operator=(const file_sink&) = delete;
    ~file_sink() {
        if (!committed_) ::unlink(temp_.c_str());
    }

    void operator()(std::span<const char> bytes) {
        while (!bytes.empty()) {
            auto n = ::write(fd_.get(), bytes.data(), bytes.size());
            if (n < 0) {
                if (errno == EINTR) continue;
                file_body_detail::throw_errno(errno, "cannot write " + temp_.string());
            }
            bytes = bytes.subspan(static_cast<std::size_t>(n));
        }
    }

    // The whole body is written: the file takes its place at `path`.
    void commit() {
        if (::fsync(fd_.get()) != 0) file_body_detail::throw_errno(errno, "cannot write " + temp_.string());
        if (::close(fd_.release()) != 0) file_body_detail::throw_errno(errno, "cannot write " + temp_.string());
        if (::rename(temp_.c_str(), path_.c_str()) != 0)
            file_body_detail::throw_errno(errno, "cannot move " + temp_.string() + " to " + path_.string());
        committed_ = true;
    }

    const std::filesystem::path& temporary_path() const { return temp_; }

private:
    std::filesystem::path path_;
    std::filesystem::path temp_{};
    berth::detail::unique_fd fd_{};
    bool committed_ = false;
};

}  // namespace berth::http
