#pragma once
// copy_to_container / copy_from_container: files and directory trees through the engine's archive endpoints, as
// plain uncompressed tar streamed in both directions (memory stays flat whatever the size).
//  - to: `dest`'s last component names the copy (the file, or the top directory); missing parents of `dest` are
//    created with a tar of directory entries put into the deepest existing ancestor, so it works in images without
//    a shell, and directories that exist keep their mode and owner.
//  - from: the tar goes through the safe extractor into a temporary directory beside `dest`, then is renamed into
//    place: a file replaces a file atomically, a directory lands at `dest` (merged into an existing one, which
//    keeps what it had), and a failed copy leaves nothing half-written.
#include <berth/eval/container.hpp>
#include <berth/eval/errors.hpp>
#include <berth/eval/logger.hpp>
#include <berth/tar/extract.hpp>
#include <berth/tar/packer.hpp>
#include <berth/tar/writer.hpp>

#include <chrono>
#include <filesystem>
#include <random>

namespace berth {

struct copy_options {
    bool verbose = true;
    std::shared_ptr<logger> log;  // default: the thread's logger
};

namespace detail {

namespace fs = std::filesystem;

// Container paths are POSIX and absolute; "." and ".." are resolved lexically as the engine would.
inline std::string container_path(std::string_view p, const char* what) {
    if (p.empty() || p.front() != '/')
        throw std::invalid_argument(std::string(what) + " must be an absolute container path, got '" + std::string(p) + "'");
    if (p.find('\0') != std::string_view::npos) throw std::invalid_argument(std::string(what) + " contains a NUL byte");
    auto normal = fs::path(std::string(p)).lexically_normal().string();
    while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
    return normal;
}

inline std::string parent_of(const std::string& p) {
    auto slash = p.rfind('/');
    return slash == 0 ? "/" : p.substr(0, slash);
}

// A tar holding just directory entries for `missing` (relative to the ancestor they are put into).
inline std::string directory_chain_tar(const std::vector<std::string>& missing) {
    std::string out;
    auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
    std::string name;
    for (auto& component : missing) {
        name += name.empty() ? component : "/" + component;
        tar::entry e;
        e.name = name;
        e.type = tar::entry_type::directory;
        e.mode = 0755;
        e.mtime = now.count();
        tar::encode_header(e, out);
    }
    out.append(tar::end_of_archive_size, '\0');
    return out;
}

// Makes `dir` exist in the container, like mkdir -p, without exec.
template <transport Transport>
boost::asio::awaitable<void> ensure_container_directory(basic_container<Transport>& c, std::string dir) {
    auto archives = c.engine().archives();
    std::vector<std::string> missing;  // deepest last
    std::string at = dir;
    for (;;) {
        std::optional<path_stat> st;
        try {
            st = co_await archives.stat(c.id, at);
        } catch (const not_found_error&) {
        }
        if (st) {
            if (!st->is_directory())
                throw std::invalid_argument("cannot create '" + dir + "' in the container: '" + at + "' is not a directory");
            break;
        }
        if (at == "/") throw protocol_error("", "the container reports no root directory");
        auto slash = at.rfind('/');
        missing.insert(missing.begin(), at.substr(slash + 1));
        at = parent_of(at);
    }
    if (missing.empty()) co_return;
    auto chain = directory_chain_tar(missing);
    http::memory_source source{chain};
    co_await archives.put(c.id, at, source);
}

inline fs::path unique_sibling(const fs::path& dest) {
    std::random_device rd;
    std::mt19937_64 gen((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
    for (int i = 0; i < 100; ++i) {
        auto candidate = dest.parent_path() / (".berth-" + dest.filename().string() + "-" + std::to_string(gen() % 1000000000));
        std::error_code ec;
        if (fs::create_directory(candidate, ec)) {
            fs::permissions(candidate, fs::perms::owner_all, ec);
            return candidate;
        }
    }
    throw tar::error(tar::errc::io_error, "cannot create a temporary directory beside " + dest.string());
}

// Moves the tree `from` into the existing directory `into`, keeping what `into` already holds: same-named files are
// replaced, directories merged. Conflicts (a directory against a non-directory) are checked before anything moves.
inline void check_merge(const fs::path& from, const fs::path& into) {
    for (auto& child : fs::directory_iterator(from)) {
        auto target = into / child.path().filename();
        auto target_status = fs::symlink_status(target);
        if (!fs::exists(target_status)) continue;
        bool src_dir = child.is_directory() && !child.is_symlink();
        bool dst_dir = fs::is_directory(target_status);
        if (src_dir != dst_dir)
            throw tar::error(tar::errc::type_conflict,
                             std::string("'") + target.string() + "' is a " + (dst_dir ? "directory" : "non-directory") +
                                 " on the host and a " + (src_dir ? "directory" : "non-directory") + " in the container");
        if (src_dir) check_merge(child.path(), target);
    }
}

inline void merge_into(const fs::path& from, const fs::path& into) {
    for (auto& child : fs::directory_iterator(from)) {
        auto target = into / child.path().filename();
        auto target_status = fs::symlink_status(target);
        if (fs::is_directory(target_status) && child.is_directory() && !child.is_symlink())
            merge_into(child.path(), target);
        else
            fs::rename(child.path(), target);  // replaces a non-directory atomically
    }
}

struct temporary_directory {
    fs::path path;
    ~temporary_directory() {
        std::error_code ec;
        if (!path.empty()) fs::remove_all(path, ec);
    }
};

} // namespace detail

template <transport Transport>
boost::asio::awaitable<void> copy_to_container(basic_container<Transport> c, std::filesystem::path source,
                                               std::string dest, copy_options options) {
    auto log = resolve_logger(options.log);
    std::error_code ec;
    if (!std::filesystem::exists(std::filesystem::symlink_status(source, ec)))
        throw file_not_found(file_not_found::side::host, source.string());
    auto target = detail::container_path(dest, "copy_to_container: dest");
    if (target == "/") throw std::invalid_argument("copy_to_container: dest must name a file or directory, not '/'");
    auto parent = detail::parent_of(target);
    auto name = target.substr(target.rfind('/') + 1);
    try {
        co_await detail::ensure_container_directory(c, parent);
        tar::packer archive(source, name);
        co_await c.engine().archives().put(c.id, parent, archive);
    } catch (const std::exception& e) {
        if (options.verbose) log->error("Copy of " + source.string() + " to " + c.name + ":" + target + " failed: " + e.what());
        throw;
    }
    if (options.verbose) log->info("Copied " + source.string() + " to " + c.name + ":" + target);
}

template <transport Transport>
boost::asio::awaitable<void> copy_to_container(basic_container<Transport> c, std::filesystem::path source,
                                               std::string dest, bool verbose = true) {
    copy_options options;
    options.verbose = verbose;
    return copy_to_container(std::move(c), std::move(source), std::move(dest), std::move(options));
}

template <transport Transport>
boost::asio::awaitable<void> copy_from_container(basic_container<Transport> c, std::string source,
                                                 std::filesystem::path dest, copy_options options) {
    namespace fs = std::filesystem;
    auto log = resolve_logger(options.log);
    auto from = detail::container_path(source, "copy_from_container: source");
    if (from == "/") throw std::invalid_argument("copy_from_container: source must name a file or directory, not '/'");
    try {
        dest = fs::absolute(dest).lexically_normal();
        if (!dest.has_filename()) dest = dest.parent_path();
        fs::create_directories(dest.parent_path());
        detail::temporary_directory staging{detail::unique_sibling(dest)};
        std::optional<path_stat> stat;
        {
            tar::unpacker unpack(staging.path);
            auto sink = [&unpack](std::span<const char> bytes) { unpack.feed(bytes); };
            try {
                stat = co_await c.engine().archives().get(c.id, from, sink);
            } catch (const not_found_error& e) {
                throw file_not_found(file_not_found::side::container, from, e.message());
            }
            unpack.finish();
        }
        // The engine names the archive's top member; it must be one plain name inside the staging directory.
        if (stat->name.empty() || stat->name == "." || stat->name == ".." || stat->name.find('/') != std::string::npos)
            throw protocol_error("GET archive " + from, "the engine named the copied item '" + stat->name + "'");
        auto staged = staging.path / stat->name;
        auto staged_status = fs::symlink_status(staged);
        if (!fs::exists(staged_status))
            throw protocol_error("GET archive " + from, "the archive does not hold '" + stat->name + "'");
        auto dest_status = fs::symlink_status(dest);
        const bool staged_dir = fs::is_directory(staged_status);
        if (!fs::exists(dest_status)) {
            fs::rename(staged, dest);
        } else if (fs::is_directory(dest_status) != staged_dir) {
            throw tar::error(tar::errc::type_conflict,
                             "'" + dest.string() + "' is a " + (staged_dir ? "non-directory" : "directory") +
                                 " and the container's '" + from + "' is not");
        } else if (staged_dir) {
            detail::check_merge(staged, dest);
            detail::merge_into(staged, dest);
        } else {
            fs::rename(staged, dest);  // atomic replacement of the old file
        }
    } catch (const std::exception& e) {
        if (options.verbose) log->error("Copy of " + c.name + ":" + from + " to " + dest.string() + " failed: " + e.what());
        throw;
    }
    if (options.verbose) log->info("Copied " + c.name + ":" + from + " to " + dest.string());
}

template <transport Transport>
boost::asio::awaitable<void> copy_from_container(basic_container<Transport> c, std::string source,
                                                 std::filesystem::path dest, bool verbose = true) {
    copy_options options;
    options.verbose = verbose;
    return copy_from_container(std::move(c), std::move(source), std::move(dest), std::move(options));
}

} // namespace berth
