#pragma once
// The safe extractor: writes archive members beneath a destination directory and nowhere else.
//
// Containment holds by construction: the destination is held open as a directory fd and every member's parent is
// reached from it with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), or, without openat2, by an O_NOFOLLOW walk
// one component at a time. The last component is then created with *at() calls that never follow it. Paths are
// never re-resolved as strings, so a symlink planted by the archive (or swapped in meanwhile) cannot redirect a
// write. Refusals follow moby's pkg/archive and Python's PEP 706 `data` filter: absolute names, `..` escapes,
// writes through symlinks, link targets outside the destination, device nodes (unless opted in), and a directory
// replaced by a non-directory or the reverse. Permission bits follow the PEP 706 `data` filter (but directory modes
// are narrowed, not reset) unless the caller asks for exact modes (see `permissions`).
#include <berth/detail/unique_fd.hpp>
#include <berth/tar/entry.hpp>
#include <berth/tar/error.hpp>
#include <berth/tar/reader.hpp>

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

namespace berth::tar {

// How the permission bits of extracted files and directories are chosen.
enum class permissions {
    // Python's PEP 706 `data` filter for files, then the umask: a file gets its archive mode without
    // setuid/setgid/sticky and group/other write, plus owner read+write, and no execute bit at all unless the
    // owner's is set. A directory the extractor creates gets its archive mode without special bits and
    // group/other write (0777 -> 0755, 0700 stays 0700: where PEP 706 ignores directory modes, a private directory
    // must not come out readable by all); an existing one keeps its mode. The process umask is applied to both, as
    // for any file the user creates. Nothing extracted is group- or world-writable.
    data_filter,
    // The archive's rwx bits exactly, umask ignored (setuid/setgid/sticky only with keep_special_bits), existing
    // directories included: for restoring a tree as it was.
    exact,
};

// What to do with a symlink whose target is outside the destination (absolute, or climbing out of it).
enum class outside_links {
    refuse,  // fail the extraction (unsafe_link)
    skip,    // leave it out; it is listed in extractor::skipped_links()
    keep,    // write it verbatim, as `docker cp` does; the extractor still never follows it
};

struct extract_options {
    bool allow_devices = false;  // character/block devices and fifos; refused (device_refused) unless set
    bool keep_owners = false;    // chown to the archive's uid/gid; only effective when running as root
    berth::tar::permissions permissions = berth::tar::permissions::data_filter;
    bool keep_special_bits = false;  // with permissions::exact: setuid/setgid/sticky kept (stripped unless set)
    std::uint64_t max_entries = 1'000'000;
    std::size_t max_path_length = 4096;  // for member names and link targets
    tar::outside_links outside_links = tar::outside_links::refuse;
    // Symlinks must also stay beneath their member's first component, not merely beneath the destination: for an
    // archive of one item that is renamed once extracted (a copy out of a container), where a link climbing to
    // the destination itself would leave the item.
    bool links_within_top_member = false;
    bool force_fallback = false;  // test hook: behave as if openat2 were unavailable
    reader_options reader{};      // passed to the unpacker's reader
};

namespace detail {

using berth::detail::unique_fd;

[[noreturn]] inline void throw_errno(errc code, const std::string& what, const std::string& name, int err = errno) {
    throw error(code, what + ": " + std::strerror(err), name);
}

// A member name made lexically safe: its components beneath the destination, without "", "." or "..".
// Throws `code` for names that are empty, absolute, contain NUL, or climb above the destination.
inline std::vector<std::string> split_beneath(std::string_view name, errc code, const std::string& entry_name,
                                              std::span<const std::string> base = {}) {
    if (name.empty()) throw error(code, "empty path", entry_name);
    if (name.find('\0') != std::string_view::npos) throw error(code, "path contains NUL", entry_name);
    if (name.front() == '/') throw error(code, "absolute path", entry_name);
    std::vector<std::string> parts(base.begin(), base.end());
    std::size_t i = 0;
    while (i <= name.size()) {
        std::size_t j = name.find('/', i);
        if (j == std::string_view::npos) j = name.size();
        std::string_view c = name.substr(i, j - i);
        i = j + 1;
        if (c.empty() || c == ".") continue;
        if (c == "..") {
            if (parts.empty()) throw error(code, "path escapes the destination", entry_name);
            parts.pop_back();
            continue;
        }
        parts.emplace_back(c);
    }
    return parts;
}

inline std::string join(std::span<const std::string> parts) {
    std::string s;
    for (auto& p : parts) {
        if (!s.empty()) s += '/';
        s += p;
    }
    return s;
}

inline long sys_openat2(int dirfd, const char* path, std::uint64_t flags, std::uint64_t resolve) {
    open_how how{};
    how.flags = flags;
    how.resolve = resolve;
    return ::syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

// The destination, held open, and the only way to reach directories beneath it.
class beneath {
public:
    beneath(const std::filesystem::path& root, bool force_fallback) {
        root_.reset(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!root_)
            throw_errno(errno == ENOENT ? errc::not_found : errc::io_error,
                        "cannot open destination '" + root.string() + "'", {});
        if (!force_fallback) {
            long fd = sys_openat2(root_.get(), ".", O_PATH | O_DIRECTORY | O_CLOEXEC, strict);
            if (fd >= 0) {
                ::close(static_cast<int>(fd));
                openat2_ = true;
            }  // ENOSYS (old kernel) or EPERM (seccomp): use the component walk
        }
    }

    bool openat2_available() const noexcept { return openat2_; }
    int root() const noexcept { return root_.get(); }

    // The directory at `parts` beneath the root, opened with `flags` (O_PATH or O_RDONLY). Missing directories
    // are created (0755, less the umask) when `create`. A symlink anywhere on the way is refused, never followed.
    unique_fd open_dir(std::span<const std::string> parts, int flags, bool create, const std::string& entry) const {
        flags |= O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW;
        if (parts.empty()) return unique_fd(::openat(root_.get(), ".", flags));
        if (openat2_) {
            std::string path = join(parts);
            for (int attempt = 0; attempt < 8; ++attempt) {
                long fd = sys_openat2(root_.get(), path.c_str(), static_cast<std::uint64_t>(flags), strict);
                if (fd >= 0) return unique_fd(static_cast<int>(fd));
                if (errno == EAGAIN) continue;  // a concurrent rename; the kernel asks to retry
                if (errno == ENOENT && create) break;
                classify(errno, parts, entry);
            }
        }
        // Component by component; also how missing parents get created under openat2.
        unique_fd cur;
        for (std::size_t i = 0; i < parts.size(); ++i) {
            int at = i == 0 ? root_.get() : cur.get();
            const bool last = i + 1 == parts.size();
            const int f = last ? flags : O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW;
            for (int attempt = 0;; ++attempt) {
                int fd = ::openat(at, parts[i].c_str(), f);
                if (fd >= 0) {
                    cur.reset(fd);
                    break;
                }
                int err = errno;
                if (err == ENOENT && create && attempt < 4) {
                    if (::mkdirat(at, parts[i].c_str(), 0755) == 0 || errno == EEXIST) continue;
                    throw_errno(errc::io_error, "cannot create directory '" + join(parts.first(i + 1)) + "'", entry);
                }
                classify_at(at, parts[i], err, parts.first(i + 1), entry);
            }
        }
        return cur;
    }

    // Whether `path` (relative to the root, symlinks allowed) would leave the root when resolved now. Only
    // answerable with openat2; the lexical check done by the caller is the rule without it.
    bool resolves_outside(const std::string& path) const {
        if (!openat2_) return false;
        for (int attempt = 0; attempt < 8; ++attempt) {
            long fd = sys_openat2(root_.get(), path.c_str(), O_PATH | O_CLOEXEC,
                                  RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
            if (fd >= 0) {
                ::close(static_cast<int>(fd));
                return false;
            }
            if (errno != EAGAIN) return errno == EXDEV;
        }
        return true;
    }

private:
    static constexpr std::uint64_t strict = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

    // openat2 says which rule broke only coarsely; walk to find the component and say what it is.
    [[noreturn]] void classify(int err, std::span<const std::string> parts, const std::string& entry) const {
        if (err != ELOOP && err != ENOTDIR && err != ENOENT)
            throw_errno(err == EXDEV ? errc::unsafe_path : errc::io_error, "cannot open '" + join(parts) + "'", entry,
                        err);
        unique_fd cur;
        for (std::size_t i = 0; i < parts.size(); ++i) {
            int at = i == 0 ? root_.get() : cur.get();
            int fd = ::openat(at, parts[i].c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
            if (fd < 0) classify_at(at, parts[i], errno, parts.first(i + 1), entry);
            cur.reset(fd);
        }
        throw_errno(errc::io_error, "cannot open '" + join(parts) + "'", entry, err);
    }

    [[noreturn]] static void classify_at(int at, const std::string& name, int err, std::span<const std::string> upto,
                                         const std::string& entry) {
        struct stat st;
        if ((err == ENOTDIR || err == ELOOP) && ::fstatat(at, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
            if (S_ISLNK(st.st_mode)) throw error(errc::through_symlink, "'" + join(upto) + "' is a symlink", entry);
            throw error(errc::type_conflict, "'" + join(upto) + "' is not a directory", entry);
        }
        throw_errno(err == ENOENT ? errc::not_found : errc::io_error, "cannot open '" + join(upto) + "'", entry, err);
    }

    unique_fd root_;
    bool openat2_ = false;
};

// The process umask, read without changing it (umask(2) can only be read by setting it, which races threads).
inline mode_t current_umask() {
    if (FILE* f = std::fopen("/proc/self/status", "re")) {
        char line[256];
        unsigned mask = 0;
        bool found = false;
        while (std::fgets(line, sizeof line, f))
            if (std::sscanf(line, "Umask: %o", &mask) == 1) {
                found = true;
                break;
            }
        std::fclose(f);
        if (found) return static_cast<mode_t>(mask);
    }
    return 0777;  // unknown: forces an explicit fchmod every time
}

}  // namespace detail

// Entry-level sink: begin() one member, write() its content, end() it; finish() after the last member.
// Not thread-safe. An error leaves earlier members in place and removes the member being written.
class extractor {
public:
    extractor(std::filesystem::path destination, extract_options opts = {})
        : opts_(checked(std::move(opts))), dest_(std::move(destination)), root_(dest_, opts_.force_fallback),
          umask_(detail::current_umask()), root_user_(::geteuid() == 0) {}

    extractor(const extractor&) = delete;
    extractor& operator=(const extractor&) = delete;
    ~extractor() { abort(); }

    // Whether openat2 resolution is in use (false on old kernels, under some seccomp profiles, or when forced).
    bool uses_openat2() const noexcept { return root_.openat2_available(); }

    // `offset` is the member's position in the archive, quoted in errors when known.
    void begin(const entry& e, std::uint64_t offset = error::no_offset) {
        abort();
        try {
            begin_impl(e);
        } catch (const error& err) {
            if (offset == error::no_offset || err.offset() != error::no_offset) throw;
            throw error(static_cast<errc>(err.code().value()), strip(err.what(), e.name), err.entry_name(), offset);
        }
    }

    void write(std::span<const char> bytes) {
        if (!cur_.fd) return;  // content of members that have none on disk (hard links with data) is dropped
        // A slice of nothing but zeros becomes a hole (seek past it; end() fixes the size): sparse members and
        // zero-filled files take no disk, so a small archive cannot fill a disk with zeros.
        if (all_zero(bytes)) {
            cur_.hole += bytes.size();
            return;
        }
        if (cur_.hole > 0) {
            if (::lseek(cur_.fd.get(), static_cast<off_t>(cur_.hole), SEEK_CUR) < 0) {
                int err = errno;
                std::string name = cur_.name;
                abort();
                detail::throw_errno(errc::io_error, "seek failed", name, err);
            }
            cur_.hole = 0;
        }
        while (!bytes.empty()) {
            ssize_t n = ::write(cur_.fd.get(), bytes.data(), bytes.size());
            if (n < 0) {
                if (errno == EINTR) continue;
                int err = errno;
                std::string name = cur_.name;
                abort();
                detail::throw_errno(errc::io_error, "write failed", name, err);
            }
            bytes = bytes.subspan(static_cast<std::size_t>(n));
        }
    }

    void end() {
        if (!cur_.fd) return;
        const int fd = cur_.fd.get();
        try {
            if (cur_.hole > 0) {  // trailing zeros: extend the file to its full size
                off_t at = ::lseek(fd, 0, SEEK_CUR);
                if (at < 0 || ::ftruncate(fd, at + static_cast<off_t>(cur_.hole)) != 0)
                    fail("extending the file failed");
            }
            if (chown_ && ::fchown(fd, static_cast<uid_t>(cur_.uid), static_cast<gid_t>(cur_.gid)) != 0)
                fail("chown failed");
            // Creation applied the umask; only chmod when that changed anything (or chown cleared special bits).
            if (cur_.mode != (cur_.mode & 0777 & ~umask_) || chown_)
                if (::fchmod(fd, cur_.mode) != 0) fail("chmod failed");
            if (::futimens(fd, cur_.times) != 0) fail("setting mtime failed");
            if (!cur_.tmp.empty()) {
                if (::renameat(cur_.dir.get(), cur_.tmp.c_str(), cur_.dir.get(), cur_.leaf.c_str()) != 0)
                    fail("rename into place failed");
                cur_.tmp.clear();
            }
            if (::close(cur_.fd.release()) != 0) fail("close failed");  // the fd is gone whatever close() says
        } catch (...) {
            abort();
            throw;
        }
        cur_ = {};
    }

    // Applies directory modes and mtimes, deepest first, now that nothing more will be written into them (so a
    // 0500 directory does not stop its own extraction). A directory that fails is reported after all the others
    // are done (the first error is thrown). Without finish() (an extraction that failed part way) the directories
    // made keep the owner-only 0700 they were created with: a partial tree is private, and removable by its owner.
    void finish() {
        abort();
        std::vector<const dir_meta*> order;
        order.reserve(dirs_.size());
        for (auto& [_, d] : dirs_) order.push_back(&d);
        std::sort(order.begin(), order.end(), [](auto* a, auto* b) {
            if (a->parts.size() != b->parts.size()) return a->parts.size() > b->parts.size();
            return a->parts < b->parts;
        });
        std::exception_ptr first_error;
        for (auto* d : order) {
            const std::string name = detail::join(d->parts);
            try {
                detail::unique_fd fd;
                try {
                    fd = root_.open_dir(d->parts, O_RDONLY, false, name);
                } catch (const error& e) {
                    if (e.code() != errc::io_error) throw;
                    fd = root_.open_dir(d->parts, O_PATH, false, name);  // unreadable dir: go through /proc
                }
                apply_dir(fd.get(), *d, name);
            } catch (const error&) {
                if (!first_error) first_error = std::current_exception();
            }
        }
        dirs_.clear();
        if (first_error) std::rethrow_exception(first_error);
    }

    // Drops the member being written: its temporary (or freshly created) file is removed.
    void abort() noexcept {
        if (!cur_.fd && cur_.tmp.empty() && !cur_.created) {
            cur_ = {};
            return;
        }
        cur_.fd.reset();
        if (cur_.dir) {
            if (!cur_.tmp.empty())
                ::unlinkat(cur_.dir.get(), cur_.tmp.c_str(), 0);
            else if (cur_.created)
                ::unlinkat(cur_.dir.get(), cur_.leaf.c_str(), 0);
        }
        cur_ = {};
    }

    std::uint64_t entries() const noexcept { return count_; }

    // Symlinks left out under outside_links::skip: the member's name and its target, in archive order.
    struct skipped_link {
        std::string name;
        std::string target;
    };
    const std::vector<skipped_link>& skipped_links() const noexcept { return skipped_links_; }

private:
    struct dir_meta {
        std::vector<std::string> parts;
        std::optional<std::uint32_t> mode;  // none: left as it is
        timespec times[2];
        std::int64_t uid, gid;
    };
    struct open_file {
        detail::unique_fd fd;
        detail::unique_fd dir;
        std::string name, leaf, tmp;
        bool created = false;    // leaf itself was created for this member (removed on abort)
        std::uint64_t hole = 0;  // zero bytes received but not yet written (seeked over at the next data)
        std::uint32_t mode = 0;
        std::int64_t uid = 0, gid = 0;
        timespec times[2]{};
    };

    static bool all_zero(std::span<const char> bytes) {
        static constexpr char zeros[4096]{};
        while (!bytes.empty()) {
            auto n = std::min(bytes.size(), sizeof zeros);
            if (std::memcmp(bytes.data(), zeros, n) != 0) return false;
            bytes = bytes.subspan(n);
        }
        return true;
    }

    static std::string strip(std::string_view what, const std::string& name) {
        // Recover the detail from error::what() so the offset can be added: "tar: DETAIL (entry 'NAME')".
        std::string s(what);
        if (s.starts_with("tar: ")) s.erase(0, 5);
        std::string tail = " (entry '" + name + "')";
        if (s.ends_with(tail)) s.erase(s.size() - tail.size());
        return s;
    }

    [[noreturn]] void fail(const std::string& what) const { detail::throw_errno(errc::io_error, what, cur_.name); }

    static extract_options checked(extract_options o) {
        if (o.keep_special_bits && o.permissions != permissions::exact)
            throw invalid_argument_error("tar::extract_options: keep_special_bits needs permissions::exact");
        return o;
    }

    bool exact_modes() const noexcept { return opts_.permissions == permissions::exact; }
    std::uint32_t exact_mode(std::uint32_t mode) const { return mode & (opts_.keep_special_bits ? 07777u : 0777u); }

    // Directories under data_filter: never wider than 0755 (no group/other write, no special bits), so a private
    // directory (0700, 0500, 0750) stays private; then the umask.
    std::uint32_t dir_mode(std::uint32_t mode) const { return mode & 0755 & ~static_cast<std::uint32_t>(umask_); }

    // Regular files (and device nodes when allowed): see permissions::data_filter.
    std::uint32_t file_mode(std::uint32_t mode) const {
        if (exact_modes()) return exact_mode(mode);
        mode &= 0755;
        if (!(mode & S_IXUSR)) mode &= ~0111u;
        return (mode | S_IRUSR | S_IWUSR) & ~static_cast<std::uint32_t>(umask_);
    }

    static void set_times(timespec* t, const entry& e) {
        t[0].tv_sec = 0;
        t[0].tv_nsec = UTIME_OMIT;
        t[1].tv_sec = static_cast<time_t>(e.mtime);
        t[1].tv_nsec = e.mtime_nsec < 1'000'000'000u ? static_cast<long>(e.mtime_nsec) : 0;
    }

    // The parent directory of a member, reusing the previous member's when it is the same (the common case).
    int parent_fd(std::span<const std::string> parent, const std::string& entry_name) {
        std::string key = detail::join(parent);
        if (!parent_fd_ || key != parent_key_) {
            parent_fd_ = root_.open_dir(parent, O_PATH, true, entry_name);
            parent_key_ = std::move(key);
        }
        return parent_fd_.get();
    }

    std::string temp_name() { return ".berth-tmp." + std::to_string(::getpid()) + "." + std::to_string(++tmp_seq_); }

    // An existing leaf may be replaced by a non-directory, never a directory by one or the reverse.
    void check_replace(int dir, const std::string& leaf, bool new_is_dir, const std::string& name) const {
        struct stat st;
        if (::fstatat(dir, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            detail::throw_errno(errc::io_error, "cannot stat existing '" + leaf + "'", name);
        if (S_ISDIR(st.st_mode) != new_is_dir)
            throw error(errc::type_conflict,
                        new_is_dir ? "a non-directory exists where a directory goes"
                                   : "a directory exists where a "
                                     "non-directory goes",
                        name);
    }

    // Creates the leaf with `make(dir, name)`; if it exists, makes it under a temporary name and renames it
    // over the old one, so the old one is replaced whole or not at all.
    template <class Make>
    void create_or_replace(int dir, const std::string& leaf, const std::string& name, const char* what, Make make) {
        if (make(dir, leaf.c_str()) == 0) return;
        if (errno != EEXIST) detail::throw_errno(errc::io_error, std::string("cannot create ") + what, name);
        check_replace(dir, leaf, false, name);
        std::string tmp = temp_name();
        if (make(dir, tmp.c_str()) != 0)
            detail::throw_errno(errc::io_error, std::string("cannot create ") + what, name);
        if (::renameat(dir, tmp.c_str(), dir, leaf.c_str()) != 0) {
            int err = errno;
            ::unlinkat(dir, tmp.c_str(), 0);
            detail::throw_errno(errc::io_error, "rename into place failed", name, err);
        }
        ::unlinkat(dir, tmp.c_str(), 0);  // still there only if both names were already the same inode
    }

    void begin_impl(const entry& e) {
        if (++count_ > opts_.max_entries)
            throw error(errc::limit_exceeded, "more than " + std::to_string(opts_.max_entries) + " entries", e.name);
        if (e.name.size() > opts_.max_path_length || e.linkname.size() > opts_.max_path_length)
            throw error(errc::limit_exceeded, "path longer than " + std::to_string(opts_.max_path_length), e.name);

        auto parts = detail::split_beneath(e.name, errc::unsafe_path, e.name);
        if (parts.empty()) {
            // "." or "./": the destination itself. Its metadata is left alone; anything but a directory is wrong.
            if (e.type != entry_type::directory)
                throw error(errc::type_conflict, "the destination itself is not a " + std::string("file"), e.name);
            return;
        }
        std::string leaf = std::move(parts.back());
        parts.pop_back();

        switch (e.type) {
        case entry_type::directory: return make_dir(e, std::move(parts), leaf);
        case entry_type::symlink: return make_symlink(e, parts, leaf);
        case entry_type::hardlink: return make_hardlink(e, parts, leaf);
        case entry_type::char_device:
        case entry_type::block_device:
        case entry_type::fifo: return make_node(e, parts, leaf);
        default:
            if (e.type == entry_type::file || static_cast<char>(e.type) == '7' || static_cast<char>(e.type) == '\0')
                return make_file(e, parts, leaf);
            throw error(errc::unsupported_type,
                        "unsupported member type '" + std::string(1, static_cast<char>(e.type)) + "'", e.name);
        }
    }

    void make_file(const entry& e, std::span<const std::string> parent, const std::string& leaf) {
        open_file f;
        f.name = e.name;
        f.leaf = leaf;
        f.mode = file_mode(e.mode);
        f.uid = e.uid;
        f.gid = e.gid;
        set_times(f.times, e);
        const int dir = parent_fd(parent, e.name);
        f.dir.reset(::dup(dir));
        if (!f.dir) detail::throw_errno(errc::io_error, "dup failed", e.name);
        const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
        const mode_t create_mode = f.mode & 0777;
        int fd = ::openat(dir, leaf.c_str(), flags, create_mode);
        if (fd >= 0) {
            f.created = true;
        } else {
            if (errno != EEXIST) detail::throw_errno(errc::io_error, "cannot create file", e.name);
            check_replace(dir, leaf, false, e.name);
            for (int i = 0; fd < 0 && i < 16; ++i) {
                f.tmp = temp_name();
                fd = ::openat(dir, f.tmp.c_str(), flags, create_mode);
                if (fd < 0 && errno != EEXIST)
                    detail::throw_errno(errc::io_error, "cannot create temporary file", e.name);
            }
            if (fd < 0) detail::throw_errno(errc::io_error, "cannot create temporary file", e.name);
        }
        f.fd.reset(fd);
        cur_ = std::move(f);
        extracted_.insert(detail::join(parent) + (parent.empty() ? "" : "/") + leaf);
        // Owner-only modes (e.g. 0400) still let us write: the fd was opened for writing at creation.
        if (opts_.keep_owners && root_user_)
            chown_ = true;
        else
            chown_ = false;
    }

    void make_dir(const entry& e, std::vector<std::string> parent, const std::string& leaf) {
        const int dir = parent_fd(parent, e.name);
        // 0700 until finish(): we must be able to write the contents whatever the final mode.
        const bool created = ::mkdirat(dir, leaf.c_str(), 0700) == 0;
        if (!created) {
            if (errno != EEXIST) detail::throw_errno(errc::io_error, "cannot create directory", e.name);
            check_replace(dir, leaf, true, e.name);
        }
        parent.push_back(leaf);
        std::string key = detail::join(parent);
        // data_filter: the archive's mode, narrowed, for a directory made here (or by an earlier member of this
        // archive, whose entry now says what it becomes); a directory that was already there keeps its own.
        std::optional<std::uint32_t> mode;
        if (exact_modes())
            mode = exact_mode(e.mode);
        else if (auto it = dirs_.find(key); created || (it != dirs_.end() && it->second.mode))
            mode = dir_mode(e.mode);
        dir_meta m{std::move(parent), mode, {}, e.uid, e.gid};
        set_times(m.times, e);
        dirs_.insert_or_assign(std::move(key), std::move(m));
    }

    // Why `target` (of a link in `parent`) leaves the destination, or empty when it does not.
    std::string outside_reason(const std::string& target, std::span<const std::string> parent,
                               const std::string& name) const {
        if (target.front() == '/') return "absolute symlink target '" + target + "'";
        std::vector<std::string> resolved;
        try {
            resolved = detail::split_beneath(target, errc::unsafe_link, name, parent);
        } catch (const error&) { return "symlink target '" + target + "' is outside the destination"; }
        if (opts_.links_within_top_member && (parent.empty() || resolved.empty() || resolved.front() != parent.front()))
            return "symlink target '" + target + "' is outside '" + (parent.empty() ? name : parent.front()) + "'";
        // What is on disk already may redirect the target (e.g. a pre-existing link to /); ask the kernel.
        std::string via = detail::join(parent);
        if (root_.resolves_outside(via.empty() ? target : via + "/" + target))
            return "symlink target '" + target + "' resolves outside the destination";
        return {};
    }

    void make_symlink(const entry& e, std::span<const std::string> parent, const std::string& leaf) {
        const std::string& target = e.linkname;
        if (target.empty() || target.find('\0') != std::string::npos)
            throw error(errc::unsafe_link, "empty or NUL-containing symlink target", e.name);
        if (auto why = outside_reason(target, parent, e.name); !why.empty()) {
            if (opts_.outside_links == outside_links::refuse) throw error(errc::unsafe_link, why, e.name);
            if (opts_.outside_links == outside_links::skip) {
                skipped_links_.push_back({e.name, target});
                return;
            }
        }
        std::string via = detail::join(parent);
        const int dir = parent_fd(parent, e.name);
        create_or_replace(dir, leaf, e.name, "symlink",
                          [&](int d, const char* n) { return ::symlinkat(target.c_str(), d, n); });
        finish_non_file(dir, leaf, e, false);
        extracted_.insert(via.empty() ? leaf : via + "/" + leaf);
    }

    void make_hardlink(const entry& e, std::span<const std::string> parent, const std::string& leaf) {
        std::vector<std::string> tparts;
        try {
            tparts = detail::split_beneath(e.linkname, errc::unsafe_link, e.name);
        } catch (const error&) {
            throw error(errc::unsafe_link, "hard link target '" + e.linkname + "' is outside the destination", e.name);
        }
        std::string tkey = detail::join(tparts);
        if (tparts.empty() || !extracted_.contains(tkey))
            throw error(errc::unsafe_link, "hard link target '" + e.linkname + "' is not a member extracted before it",
                        e.name);
        std::string key = detail::join(parent);
        key = key.empty() ? leaf : key + "/" + leaf;
        if (key == tkey) return;  // a link to itself: already there
        std::string tleaf = std::move(tparts.back());
        tparts.pop_back();
        detail::unique_fd tdir = root_.open_dir(tparts, O_PATH, false, e.name);
        const int dir = parent_fd(parent, e.name);
        create_or_replace(dir, leaf, e.name, "hard link",
                          [&](int d, const char* n) { return ::linkat(tdir.get(), tleaf.c_str(), d, n, 0); });
        extracted_.insert(std::move(key));
    }

    void make_node(const entry& e, std::span<const std::string> parent, const std::string& leaf) {
        if (!opts_.allow_devices) throw error(errc::device_refused, "device or fifo member refused", e.name);
        mode_t kind = e.type == entry_type::fifo ? S_IFIFO : e.type == entry_type::char_device ? S_IFCHR : S_IFBLK;
        dev_t dev = e.type == entry_type::fifo ? 0 : makedev(e.devmajor, e.devminor);
        const int dir = parent_fd(parent, e.name);
        create_or_replace(dir, leaf, e.name, "device node", [&](int d, const char* n) {
            return ::mknodat(d, n, kind | (file_mode(e.mode) & 0777), dev);
        });
        finish_non_file(dir, leaf, e, true);
        std::string via = detail::join(parent);
        extracted_.insert(via.empty() ? leaf : via + "/" + leaf);
    }

    // Owner, mode and mtime of a symlink or node, by name but without following it.
    void finish_non_file(int dir, const std::string& leaf, const entry& e, bool chmod) {
        if (opts_.keep_owners && root_user_ &&
            ::fchownat(dir, leaf.c_str(), static_cast<uid_t>(e.uid), static_cast<gid_t>(e.gid), AT_SYMLINK_NOFOLLOW) !=
                0)
            detail::throw_errno(errc::io_error, "chown failed", e.name);
        if (chmod && ::fchmodat(dir, leaf.c_str(), file_mode(e.mode), AT_SYMLINK_NOFOLLOW) != 0)
            detail::throw_errno(errc::io_error, "chmod failed", e.name);
        timespec t[2];
        set_times(t, e);
        if (::utimensat(dir, leaf.c_str(), t, AT_SYMLINK_NOFOLLOW) != 0)
            detail::throw_errno(errc::io_error, "setting mtime failed", e.name);
    }

    void apply_dir(int fd, const dir_meta& d, const std::string& name) {
        // An O_PATH fd cannot be chmod'ed directly; its /proc/self/fd link names the very same inode.
        char proc[64];
        std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        const bool path_only = (::fcntl(fd, F_GETFL) & O_PATH) != 0;
        if (opts_.keep_owners && root_user_) {
            int rc = path_only ? ::fchownat(fd, "", static_cast<uid_t>(d.uid), static_cast<gid_t>(d.gid), AT_EMPTY_PATH)
                               : ::fchown(fd, static_cast<uid_t>(d.uid), static_cast<gid_t>(d.gid));
            if (rc != 0) detail::throw_errno(errc::io_error, "chown failed", name);
        }
        if (d.mode && (path_only ? ::chmod(proc, *d.mode) : ::fchmod(fd, *d.mode)) != 0)
            detail::throw_errno(errc::io_error, "chmod failed", name);
        if ((path_only ? ::utimensat(AT_FDCWD, proc, d.times, 0) : ::futimens(fd, d.times)) != 0)
            detail::throw_errno(errc::io_error, "setting mtime failed", name);
    }

    extract_options opts_;
    std::filesystem::path dest_;
    detail::beneath root_;
    mode_t umask_;
    bool root_user_;
    bool chown_ = false;
    std::uint64_t count_ = 0;
    std::uint64_t tmp_seq_ = 0;
    open_file cur_;
    detail::unique_fd parent_fd_;
    std::string parent_key_;
    std::unordered_map<std::string, dir_meta> dirs_;
    std::unordered_set<std::string> extracted_;  // non-directories written by this extractor (hard link targets)
    std::vector<skipped_link> skipped_links_;
};

// A reader and an extractor glued together: feed raw archive bytes (uncompressed), then finish().
class unpacker {
public:
    unpacker(std::filesystem::path destination, extract_options opts = {})
        : reader_(opts.reader), extractor_(std::move(destination), opts) {}

    void feed(std::span<const char> bytes) {
        if (done_) return;  // bytes after the end-of-archive marker are padding
        try {
            reader_.feed(bytes);
            for (;;) {
                switch (reader_.next()) {
                case reader::event::need_more: return;
                case reader::event::entry: extractor_.begin(reader_.current(), reader_.offset()); break;
                case reader::event::data: extractor_.write(reader_.data()); break;
                case reader::event::entry_end: extractor_.end(); break;
                case reader::event::end: done_ = true; return;
                }
            }
        } catch (...) {
            extractor_.abort();
            throw;
        }
    }

    // At the end of the input: fails (errc::truncated, with the offset) unless the archive was complete, i.e. its
    // end-of-archive marker arrived (or, with reader.require_end_marker off, the input stopped between members);
    // then applies directory metadata.
    void finish() {
        try {
            if (!done_) reader_.finish();
        } catch (...) {
            extractor_.abort();
            throw;
        }
        extractor_.finish();
    }

    const extractor& sink() const noexcept { return extractor_; }

private:
    reader reader_;
    extractor extractor_;
    bool done_ = false;
};

}  // namespace berth::tar
