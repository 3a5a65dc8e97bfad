#pragma once
// The tree packer: a directory (or a single file) as a tar stream, pulled a buffer at a time so an upload can
// stream it with flat memory. Names are sorted bytewise per directory, so the same tree gives the same archive.
// Modes, numeric owners, mtimes, symlinks, hard links (by dev/ino) and empty directories are kept; sockets are
// skipped. Files are opened O_NOFOLLOW and described from the opened fd, so header and content are one inode.
#include <berth/detail/unique_fd.hpp>
#include <berth/tar/dockerignore.hpp>
#include <berth/tar/entry.hpp>
#include <berth/tar/error.hpp>
#include <berth/tar/writer.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace berth::tar {

struct pack_options {
    bool use_dockerignore = false;          // apply <root>/.dockerignore (build contexts)
    std::string dockerfile = "Dockerfile";  // with use_dockerignore: always sent, like .dockerignore itself
    std::size_t chunk_size = 64 * 1024;     // buffer size write_to() uses (read() callers choose their own)
    bool preserve_subsecond = false;        // mtime nanoseconds in PAX records (a PAX header per member)
    bool follow_source_symlink = false;     // a symlink given as the source is packed as what it points to
};

namespace detail {

using berth::detail::unique_fd;

[[noreturn]] inline void pack_fail(const std::string& what, const std::string& name, int err = errno) {
    throw error(errc::io_error, what + ": " + std::strerror(err), name);
}

}  // namespace detail

class packer {
public:
    // Throws tar::error(not_found) naming `source` when it does not exist. An empty `entry_name` packs a
    // directory's contents at the archive root (a build context) or a file under its own name.
    packer(std::filesystem::path source, std::string entry_name, pack_options opts = {})
        : opts_(std::move(opts)), wopts_{opts_.preserve_subsecond} {
        while (entry_name.size() > 1 && entry_name.back() == '/') entry_name.pop_back();
        struct stat st;
        int rc = opts_.follow_source_symlink ? ::stat(source.c_str(), &st) : ::lstat(source.c_str(), &st);
        if (rc != 0) {
            if (errno == ENOENT || errno == ENOTDIR)
                throw error(errc::not_found, "no such file or directory '" + source.string() + "'", source.string());
            detail::pack_fail("cannot stat '" + source.string() + "'", source.string());
        }
        if (S_ISDIR(st.st_mode)) {
            int fl = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (opts_.follow_source_symlink ? 0 : O_NOFOLLOW);
            detail::unique_fd fd(::open(source.c_str(), fl));
            if (!fd) detail::pack_fail("cannot open '" + source.string() + "'", source.string());
            if (opts_.use_dockerignore) load_dockerignore(fd.get());
            std::string prefix = entry_name.empty() ? std::string{} : entry_name + "/";
            if (!entry_name.empty()) {
                entry e = describe(st, entry_name, entry_type::directory);
                encode_header(e, pending_, wopts_);
            }
            push_dir(std::move(fd), std::move(prefix), {}, entry_name.empty() ? source.string() : entry_name);
        } else {
            if (entry_name.empty()) entry_name = source.filename().string();
            // The single member is described relative to its parent directory, like any other.
            std::filesystem::path parent = source.parent_path();
            if (parent.empty()) parent = ".";
            detail::unique_fd pfd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!pfd) detail::pack_fail("cannot open '" + parent.string() + "'", source.string());
            if (S_ISLNK(st.st_mode) && opts_.follow_source_symlink) {
                // Resolve through the kernel once; the member is what the link pointed to at open time.
                detail::unique_fd f(::open(source.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
                if (!f) detail::pack_fail("cannot open '" + source.string() + "'", source.string());
                emit_open_file(std::move(f), entry_name);
            } else {
                emit_member(pfd.get(), source.filename().string(), DT_UNKNOWN, entry_name);
            }
        }
    }

    packer(const packer&) = delete;
    packer& operator=(const packer&) = delete;

    // Fills `buf` with the next bytes of the archive and returns how many; 0 only once the archive (with its two
    // zero blocks) is complete. File contents are read straight into `buf`, so a large buffer means large reads.
    std::size_t read(std::span<char> buf) {
        std::size_t n = 0;
        while (n < buf.size()) {
            if (pending_pos_ < pending_.size()) {
                std::size_t k = std::min(buf.size() - n, pending_.size() - pending_pos_);
                std::memcpy(buf.data() + n, pending_.data() + pending_pos_, k);
                pending_pos_ += k;
                n += k;
                continue;
            }
            pending_.clear();
            pending_pos_ = 0;
            if (remaining_ > 0) {
                n += read_content(buf.subspan(n));
                continue;
            }
            if (finished_) break;
            if (!next_member()) {
                pending_.append(end_of_archive_size, '\0');
                finished_ = true;
            }
        }
        produced_ += n;
        return n;
    }

    std::uint64_t bytes_produced() const noexcept { return produced_; }
    bool done() const noexcept { return finished_ && pending_pos_ >= pending_.size(); }

    // Pulls the whole archive into `sink(std::span<const char>)` using a chunk_size buffer.
    template <class Sink>
    void write_to(Sink&& sink) {
        std::vector<char> buf(opts_.chunk_size);
        while (std::size_t n = read(buf)) sink(std::span<const char>(buf.data(), n));
    }

private:
    struct child {
        std::string name;
        unsigned char d_type;
    };
    struct level {
        detail::unique_fd dir;
        std::string prefix;  // archive name prefix of children ("data/sub/" or "")
        std::string rel;     // path relative to the source root, for .dockerignore ("sub/" or "")
        std::vector<child> children;
        std::size_t next = 0;
    };

    static constexpr std::size_t max_dockerignore_bytes = std::size_t{1} << 20;  // the docker CLI's are a few KiB

    void load_dockerignore(int dirfd) {
        detail::unique_fd fd(::openat(dirfd, ".dockerignore", O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
        if (!fd) {
            if (errno == ENOENT) return;
            detail::pack_fail("cannot open .dockerignore", ".dockerignore");
        }
        std::string text;
        char buf[16384];
        for (;;) {
            ssize_t n = ::read(fd.get(), buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) detail::pack_fail("cannot read .dockerignore", ".dockerignore");
            if (n == 0) break;
            text.append(buf, static_cast<std::size_t>(n));
            if (text.size() > max_dockerignore_bytes)
                throw error(errc::limit_exceeded,
                            ".dockerignore is larger than " + std::to_string(max_dockerignore_bytes) + " bytes",
                            ".dockerignore");
        }
        auto patterns = dockerignore::read_patterns(text);
        // The builder needs these two whatever the file says (the docker CLI adds the same exceptions).
        dockerignore probe(patterns);
        if (probe.excluded(".dockerignore")) patterns.push_back("!.dockerignore");
        std::string df = detail::clean_path(opts_.dockerfile);
        if (!df.empty() && df != "." && probe.excluded(df)) patterns.push_back("!" + df);
        ignore_ = dockerignore(patterns);
        use_ignore_ = !ignore_.empty();
    }

    void push_dir(detail::unique_fd fd, std::string prefix, std::string rel, const std::string& name) {
        level L;
        int dup = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0);
        if (dup < 0) detail::pack_fail("dup failed", name);
        DIR* d = ::fdopendir(dup);
        if (!d) {
            ::close(dup);
            detail::pack_fail("cannot list directory", name);
        }
        errno = 0;
        while (dirent* de = ::readdir(d)) {
            std::string_view n = de->d_name;
            if (n == "." || n == "..") continue;
            L.children.push_back({std::string(n), de->d_type});
        }
        int err = errno;
        ::closedir(d);
        if (err) detail::pack_fail("cannot list directory", name, err);
        std::sort(L.children.begin(), L.children.end(), [](const child& a, const child& b) { return a.name < b.name; });
        L.dir = std::move(fd);
        L.prefix = std::move(prefix);
        L.rel = std::move(rel);
        stack_.push_back(std::move(L));
    }

    // Appends the next member's header to pending_; false when the walk is over.
    bool next_member() {
        while (!stack_.empty()) {
            level& L = stack_.back();
            if (L.next == L.children.size()) {
                stack_.pop_back();
                continue;
            }
            const child& c = L.children[L.next++];
            if (use_ignore_) {
                std::string rel = L.rel + c.name;
                if (ignore_.excluded(rel)) {
                    // moby's walker: an excluded directory is still entered if an exception may re-include below.
                    if (ignore_.may_reinclude_under(rel) && is_dir_at(L.dir.get(), c)) {
                        detail::unique_fd fd(open_dir_at(L.dir.get(), c.name, L.prefix + c.name));
                        if (fd) push_dir(std::move(fd), L.prefix + c.name + "/", rel + "/", L.prefix + c.name);
                    }
                    continue;
                }
            }
            if (emit_member(L.dir.get(), c.name, c.d_type, L.prefix + c.name)) return true;
        }
        return false;
    }

    static bool is_dir_at(int dirfd, const child& c) {
        if (c.d_type != DT_UNKNOWN) return c.d_type == DT_DIR;
        struct stat st;
        return ::fstatat(dirfd, c.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    }

    static int open_dir_at(int dirfd, const std::string& name, const std::string& member) {
        int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno != ENOENT) detail::pack_fail("cannot open directory", member);
        return fd;
    }

    int open_file_at(int dirfd, const std::string& name) {
        // O_NONBLOCK: if a fifo was swapped in since the listing, opening it must not hang.
        int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | noatime_);
        if (fd < 0 && errno == EPERM && noatime_) {  // O_NOATIME needs ownership or CAP_FOWNER
            noatime_ = 0;
            fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        }
        return fd;
    }

    entry describe(const struct stat& st, std::string name, entry_type type) const {
        entry e;
        e.name = std::move(name);
        e.type = type;
        e.mode = st.st_mode & 07777;
        e.uid = st.st_uid;
        e.gid = st.st_gid;
        e.mtime = st.st_mtim.tv_sec;
        e.mtime_nsec = opts_.preserve_subsecond ? static_cast<std::uint32_t>(st.st_mtim.tv_nsec) : 0;
        return e;
    }

    // Header of one member (and, for directories, pushes its listing). False if it was skipped (socket,
    // vanished since the listing).
    bool emit_member(int dirfd, const std::string& name, unsigned char d_type, const std::string& member) {
        if (d_type == DT_REG) {
            // Open first and describe the opened file: header and content then come from the same inode.
            int fd = open_file_at(dirfd, name);
            if (fd >= 0) {
                struct stat st;
                if (::fstat(fd, &st) != 0) {
                    ::close(fd);
                    detail::pack_fail("cannot stat", member);
                }
                if (S_ISREG(st.st_mode)) return emit_open_file(detail::unique_fd(fd), member, &st);
                ::close(fd);  // replaced since the listing: describe it below as what it is now
            } else if (errno == ENOENT) {
                return false;  // removed since the listing
            } else if (errno != ELOOP) {
                detail::pack_fail("cannot open", member);
            }
        }
        struct stat st;
        if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) return false;
            detail::pack_fail("cannot stat", member);
        }
        switch (st.st_mode & S_IFMT) {
        case S_IFDIR: return emit_dir(dirfd, name, st, member);
        case S_IFREG: {
            detail::unique_fd f(open_file_at(dirfd, name));
            if (!f) {
                if (errno == ENOENT) return false;
                detail::pack_fail("cannot open", member);
            }
            return emit_open_file(std::move(f), member);  // described from the fd, not from the stat above
        }
        case S_IFLNK: {
            entry e = describe(st, member, entry_type::symlink);
            std::string target(static_cast<std::size_t>(st.st_size > 0 ? st.st_size : 255), '\0');
            for (;;) {
                ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
                if (n < 0) detail::pack_fail("cannot read symlink", member);
                if (static_cast<std::size_t>(n) < target.size()) {
                    target.resize(static_cast<std::size_t>(n));
                    break;
                }
                target.resize(target.size() * 2);  // grew since lstat
            }
            e.linkname = std::move(target);
            if (hardlinked(st, e)) return true;
            encode_header(e, pending_, wopts_);
            return true;
        }
        case S_IFCHR:
        case S_IFBLK:
        case S_IFIFO: {
            entry_type t = S_ISCHR(st.st_mode)   ? entry_type::char_device
                           : S_ISBLK(st.st_mode) ? entry_type::block_device
                                                 : entry_type::fifo;
            entry e = describe(st, member, t);
            if (t != entry_type::fifo) {
                e.devmajor = major(st.st_rdev);
                e.devminor = minor(st.st_rdev);
            }
            if (hardlinked(st, e)) return true;
            encode_header(e, pending_, wopts_);
            return true;
        }
        default: return false;  // sockets (and anything else) cannot be archived
        }
    }

    bool emit_dir(int dirfd, const std::string& name, const struct stat& st, const std::string& member) {
        detail::unique_fd fd(open_dir_at(dirfd, name, member));
        if (!fd) return false;
        encode_header(describe(st, member, entry_type::directory), pending_, wopts_);
        const std::string& parent_rel = stack_.empty() ? std::string{} : stack_.back().rel;
        push_dir(std::move(fd), member + "/", parent_rel + name + "/", member);
        return true;
    }

    bool emit_open_file(detail::unique_fd fd, const std::string& member, const struct stat* known = nullptr) {
        struct stat st;
        if (known)
            st = *known;
        else if (::fstat(fd.get(), &st) != 0)
            detail::pack_fail("cannot stat", member);
        if (!S_ISREG(st.st_mode)) throw error(errc::io_error, "changed type while being packed", member);
        entry e = describe(st, member, entry_type::file);
        if (hardlinked(st, e)) return true;
        e.size = static_cast<std::uint64_t>(st.st_size);
        encode_header(e, pending_, wopts_);
        if (e.size == 0) return true;
        if (e.size >= (1u << 20)) ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
        file_ = std::move(fd);
        file_name_ = member;
        remaining_ = e.size;
        padding_ = padding_after(e.size);
        return true;
    }

    // A second name for an inode already in the archive becomes a hard link to the first name.
    bool hardlinked(const struct stat& st, entry& e) {
        if (st.st_nlink < 2 || S_ISDIR(st.st_mode)) return false;
        auto [it, inserted] = links_.try_emplace({st.st_dev, st.st_ino}, e.name);
        if (inserted) return false;
        e.type = entry_type::hardlink;
        e.linkname = it->second;
        e.size = 0;
        encode_header(e, pending_, wopts_);
        return true;
    }

    // Content goes straight from the file into the caller's buffer. The header promised st_size bytes: a file
    // that grew is cut there (the archive holds it as it was when opened); one that shrank cannot be completed
    // truthfully, so that fails (io_error) rather than padding with zeros as GNU tar does with a warning.
    std::size_t read_content(std::span<char> out) {
        std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, out.size()));
        ssize_t n;
        do n = ::read(file_.get(), out.data(), want);
        while (n < 0 && errno == EINTR);
        if (n < 0) detail::pack_fail("read failed", file_name_);
        if (n == 0) throw error(errc::io_error, "file shrank while being read", file_name_);
        remaining_ -= static_cast<std::uint64_t>(n);
        if (remaining_ == 0) {
            file_.reset();
            pending_.append(padding_, '\0');
        }
        return static_cast<std::size_t>(n);
    }

    pack_options opts_;
    writer_options wopts_;
    dockerignore ignore_;
    bool use_ignore_ = false;
    int noatime_ = O_NOATIME;
    std::vector<level> stack_;
    std::map<std::pair<dev_t, ino_t>, std::string> links_;
    std::string pending_;  // header/padding bytes not yet handed out
    std::size_t pending_pos_ = 0;
    detail::unique_fd file_;
    std::string file_name_;
    std::uint64_t remaining_ = 0;
    std::size_t padding_ = 0;
    std::uint64_t produced_ = 0;
    bool finished_ = false;
};

}  // namespace berth::tar
