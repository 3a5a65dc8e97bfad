#pragma once
// copy_to_container / copy_from_container: files and directory trees through the engine's archive endpoints, as
// plain uncompressed tar streamed in both directions (memory stays flat whatever the size).
//  - to: `dest`'s last component names the copy (the file, or the top directory); missing parents of `dest` are
//    created with a tar of directory entries put into the deepest existing ancestor, so it works in images without
//    a shell, and directories that exist keep their mode and owner. Symlinks on the way to `dest` (and `dest`
//    itself) are followed as the engine follows them, so merged-/usr images (/lib -> usr/lib) work.
//  - from: the tar goes through the safe extractor into a temporary directory beside `dest`, then is renamed into
//    place: a file replaces a file atomically, a directory lands at `dest` (merged into an existing one, which
//    keeps what it had), and a failed copy leaves nothing half-written. Links pointing outside the copy follow
//    copy_options::outside_links.
#include <berth/eval/container.hpp>
#include <berth/eval/errors.hpp>
#include <berth/eval/logger.hpp>
#include <berth/tar/extract.hpp>
#include <berth/tar/packer.hpp>
#include <berth/tar/writer.hpp>

#include <chrono>
#include <filesystem>
#include <random>
#include <system_error>

namespace berth {

// A symlink left out of a copy out: where it was in the container and what it pointed to.
struct skipped_link {
    std::string path;    // absolute container path of the link
    std::string target;  // its target, as the link holds it
};

// What a copy out did besides copying.
struct copy_result {
    std::vector<skipped_link> skipped_links;  // links pointing outside the copy, left out (link_policy::skip)
};

// Symlinks in a copied-out tree whose target is outside the copy (a virtualenv's bin/python -> /usr/bin/python3).
// Whatever the policy, the extractor never follows a link while writing.
using link_policy = tar::outside_links;  // skip, keep (verbatim, as docker cp writes them), refuse (fail the copy)

struct copy_options {
    bool verbose = true;
    // copy_from_container: links pointing outside the copy are skipped (a warning each, and listed in the
    // copy_result) unless this says keep or refuse.
    link_policy outside_links = link_policy::skip;
    // copy_to_container: let a file replace a directory in the container, or a directory a file. Off, as with
    // `docker cp`: such a copy fails with tar::errc::type_conflict and the container keeps what it had.
    bool replace_directories = false;
    std::shared_ptr<logger> log{};  // default: the thread's logger
};

namespace detail {

namespace fs = std::filesystem;

// Container paths are POSIX and absolute; "." and ".." are resolved lexically as the engine would.
inline std::string container_path(std::string_view p, const char* what) {
    if (p.empty() || p.front() != '/')
        throw invalid_argument_error(std::string(what) + " must be an absolute container path, got '" + std::string(p) +
                                     "'");
    if (p.find('\0') != std::string_view::npos)
        throw invalid_argument_error(std::string(what) + " contains a NUL byte");
    auto normal = fs::path(std::string(p)).lexically_normal().string();
    while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
    return normal;
}

inline std::string parent_of(const std::string& p) {
    auto slash = p.rfind('/');
    return slash == 0 ? "/" : p.substr(0, slash);
}

inline std::string base_name(const std::string& p) { return p.substr(p.rfind('/') + 1); }

inline std::string child_of(const std::string& dir, const std::string& name) {
    return dir == "/" ? "/" + name : dir + "/" + name;
}

// As many symlinks as Linux follows in one path before ELOOP.
inline constexpr int max_link_hops = 40;

[[noreturn]] inline void throw_link_loop(const std::string& path) {
    const auto code = boost::system::errc::make_error_code(boost::system::errc::too_many_symbolic_link_levels);
    throw berth::error(code, "too many levels of symbolic links at '" + path + "' in the container: " + code.message());
}

// Where the link at `link` leads. The engines report the target fully resolved and absolute; a relative one is
// taken from the link's directory. It comes from the engine, so it is checked like any container path.
inline std::string link_destination(const std::string& link, const path_stat& st) {
    const auto& target = st.link_target;
    if (target.empty() || target.find('\0') != std::string::npos)
        throw protocol_error("HEAD archive " + link, "the engine reports a symlink without a usable target");
    return container_path(target.front() == '/' ? target : child_of(parent_of(link), target), "link target");
}

// A container path followed through symlinks as the engine resolves it: the path reached, and its stat (none
// when nothing exists there, e.g. at the end of a dangling link).
struct resolved_path {
    std::string path;
    std::optional<path_stat> stat;
};

template <transport Transport>
boost::asio::awaitable<std::optional<path_stat>> stat_if_exists(basic_container<Transport>& c,
                                                                const std::string& path) {
    std::optional<path_stat> st;
    try {
        st = co_await c.engine().archives().stat(c.id, path);
    } catch (const not_found_error&) {}
    co_return st;
}

template <transport Transport>
boost::asio::awaitable<resolved_path> resolve_container_path(basic_container<Transport>& c, std::string path) {
    for (int hops = 0;; ++hops) {
        auto st = co_await stat_if_exists(c, path);
        if (!st || !st->is_symlink()) co_return resolved_path{std::move(path), std::move(st)};
        if (hops == max_link_hops) throw_link_loop(path);
        path = link_destination(path, *st);
    }
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

// Makes `dir` exist in the container, like mkdir -p, without exec, and returns where it is once symlinks on the
// way are followed (as the engine follows them: /lib -> usr/lib, links in the middle, relative links).
template <transport Transport>
boost::asio::awaitable<std::string> ensure_container_directory(basic_container<Transport>& c, std::string dir) {
    std::vector<std::string> missing;  // deepest last, created beneath `at`
    std::string at = dir;
    for (int hops = 0;;) {
        auto st = co_await stat_if_exists(c, at);
        if (st && st->is_symlink()) {
            if (++hops > max_link_hops) throw_link_loop(at);
            at = link_destination(at, *st);  // what is missing goes beneath the link's target
            continue;
        }
        if (st) {
            if (!st->is_directory())
                throw invalid_argument_error("cannot create '" + dir + "' in the container: '" + at +
                                             "' is not a directory");
            break;
        }
        if (at == "/") throw protocol_error("", "the container reports no root directory");
        missing.insert(missing.begin(), base_name(at));
        at = parent_of(at);
    }
    if (missing.empty()) co_return at;
    auto chain = directory_chain_tar(missing);
    http::memory_source source{chain};
    co_await c.engine().archives().put(c.id, at, source);
    for (auto& component : missing) at = child_of(at, component);
    co_return at;
}

inline const char* kind_of(bool directory) { return directory ? "a directory" : "not a directory"; }

inline fs::path unique_sibling(const fs::path& dest) {
    std::random_device rd;
    std::mt19937_64 gen((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
    for (int i = 0; i < 100; ++i) {
        auto candidate = dest.parent_path() /
                         (".berth-" + dest.filename().string() + "-" + std::to_string(gen() % 1000000000));
        std::error_code ec;
        if (fs::create_directory(candidate, ec)) {
            fs::permissions(candidate, fs::perms::owner_all, ec);
            return candidate;
        }
    }
    throw tar::error(tar::errc::io_error, "cannot create a temporary directory beside " + dest.string());
}

// A directory and a non-directory meet: nothing is replaced. `existing` and `incoming` say where each one is.
[[noreturn]] inline void throw_type_conflict(const std::string& existing, bool existing_dir,
                                             const std::string& incoming, bool incoming_dir) {
    throw tar::error(tar::errc::type_conflict, existing + " is " + kind_of(existing_dir) +
                                                   " and cannot be replaced by " + incoming + ", which is " +
                                                   kind_of(incoming_dir));
}

// Moves the tree `from` into the existing directory `into`, keeping what `into` already holds: same-named files are
// replaced, directories merged. Conflicts (a directory against a non-directory) are checked before anything moves.
inline void check_merge(const fs::path& from, const fs::path& into, const std::string& container_dir) {
    for (auto& child : fs::directory_iterator(from)) {
        auto name = child.path().filename().string();
        auto target = into / name;
        auto target_status = fs::symlink_status(target);
        if (!fs::exists(target_status)) continue;
        bool src_dir = child.is_directory() && !child.is_symlink();
        bool dst_dir = fs::is_directory(target_status);
        auto in_container = child_of(container_dir, name);
        if (src_dir != dst_dir)
            throw_type_conflict("'" + target.string() + "' on the host", dst_dir,
                                "'" + in_container + "' from the container", src_dir);
        if (src_dir) check_merge(child.path(), target, in_container);
    }
}

// The extractor keeps a directory's restrictive mode (0500, 0555), but without owner write a non-root owner can
// neither move that directory to another parent (its ".." changes) nor move entries out of it. The staged tree is
// this copy's own: owner write is lent for the move and the mode restored at the destination.
inline void rename_staged(const fs::path& from, const fs::path& to) {
    // the system's code, and the text std::filesystem gives it (both paths named)
    auto fail = [&](const std::error_code& ec) {
        const fs::filesystem_error failure("cannot move the copied item into place", from, to, ec);
        throw berth::error(boost::system::error_code(ec.value(), boost::system::system_category()), failure.what());
    };
    std::error_code ec;
    fs::rename(from, to, ec);
    if (!ec) return;
    auto status = fs::symlink_status(from);
    if (ec != std::errc::permission_denied || !fs::is_directory(status) ||
        (status.permissions() & fs::perms::owner_write) != fs::perms::none)
        fail(ec);
    fs::permissions(from, fs::perms::owner_write, fs::perm_options::add);
    fs::rename(from, to, ec);
    fs::permissions(ec ? from : to, status.permissions());
    if (ec) fail(ec);
}

inline void merge_into(const fs::path& from, const fs::path& into) {
    // `from` is staged and dropped afterwards: its own mode need not survive entries leaving it
    if ((fs::status(from).permissions() & fs::perms::owner_write) == fs::perms::none)
        fs::permissions(from, fs::perms::owner_write, fs::perm_options::add);
    for (auto& child : fs::directory_iterator(from)) {
        auto target = into / child.path().filename();
        auto target_status = fs::symlink_status(target);
        if (fs::is_directory(target_status) && child.is_directory() && !child.is_symlink())
            merge_into(child.path(), target);
        else
            rename_staged(child.path(), target);  // replaces a non-directory atomically
    }
}

struct temporary_directory {
    fs::path path;
    ~temporary_directory() {
        std::error_code ec;
        if (path.empty() || fs::remove_all(path, ec) != static_cast<std::uintmax_t>(-1)) return;
        // a staged directory without owner write (0500) cannot be emptied by a non-root owner: lend it first
        for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
             it.increment(ec))
            if (it->is_directory(ec) && !it->is_symlink(ec))
                fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
        fs::remove_all(path, ec);
    }
};

// The one item a copy out staged (the archive holds the copied item and what is beneath it), if any.
inline std::optional<fs::path> staged_item(const fs::path& staging, const std::string& from) {
    std::optional<fs::path> item;
    for (auto& child : fs::directory_iterator(staging)) {
        if (item) throw protocol_error("GET archive " + from, "the archive holds more than the copied item");
        item = child.path();
    }
    return item;
}

inline void log_skipped_links(const std::vector<skipped_link>& links, logger& log) {
    constexpr std::size_t listed = 20;  // a tree full of them must not flood the log
    for (std::size_t i = 0; i < links.size() && i < listed; ++i)
        log.warning("Skipped symlink " + links[i].path + " -> " + links[i].target +
                    ": it points outside the copy (copy_options::outside_links)");
    if (links.size() > listed)
        log.warning("Skipped " + std::to_string(links.size() - listed) + " more symlinks pointing outside the copy");
}

}  // namespace detail

// `dest` names the copy; when it is a symlink, the copy goes where it leads (as with docker cp).
template <transport Transport>
boost::asio::awaitable<void> copy_to_container(basic_container<Transport> c, std::filesystem::path source,
                                               std::string dest, copy_options options) {
    namespace fs = std::filesystem;
    auto log = resolve_logger(options.log);
    std::error_code ec;
    auto source_status = fs::symlink_status(source, ec);
    if (!fs::exists(source_status)) throw file_not_found(file_not_found::side::host, source.string());
    auto target = detail::container_path(dest, "copy_to_container: dest");
    if (target == "/") throw invalid_argument_error("copy_to_container: dest must name a file or directory, not '/'");
    try {
        auto where = co_await detail::resolve_container_path(c, target);
        if (where.path == "/")
            throw invalid_argument_error("copy_to_container: dest '" + target +
                                         "' leads to '/', not to a file or directory");
        const bool source_dir = fs::is_directory(source_status);
        if (where.stat && !options.replace_directories && where.stat->is_directory() != source_dir)
            detail::throw_type_conflict("'" + where.path + "' in the container", where.stat->is_directory(),
                                        "'" + source.string() + "' from the host", source_dir);
        auto parent = co_await detail::ensure_container_directory(c, detail::parent_of(where.path));
        tar::packer archive(source, detail::base_name(where.path));
        put_archive_options put;
        put.no_overwrite_dir_non_dir = !options.replace_directories;
        co_await c.engine().archives().put(c.id, parent, archive, put);
    } catch (const std::exception& e) {
        if (options.verbose)
            log->error("Copy of " + source.string() + " to " + c.name + ":" + target + " failed: " + e.what());
        throw;
    }
    if (options.verbose) log->info("Copied " + source.string() + " to " + c.name + ":" + target);
}

// (Overloads, not a defaulted argument: g++ 12 double-destroys a defaulted options temporary in a co_await.)
template <transport Transport>
boost::asio::awaitable<void> copy_to_container(basic_container<Transport> c, std::filesystem::path source,
                                               std::string dest) {
    copy_options options;
    return copy_to_container(std::move(c), std::move(source), std::move(dest), std::move(options));
}

// A source that is itself a symlink is followed (as `docker cp -L` does, and as Podman always does): what lands at
// `dest` is what it points to. Links inside a copied tree follow options.outside_links.
template <transport Transport>
boost::asio::awaitable<copy_result> copy_from_container(basic_container<Transport> c, std::string source,
                                                        std::filesystem::path dest, copy_options options) {
    namespace fs = std::filesystem;
    auto log = resolve_logger(options.log);
    auto from = detail::container_path(source, "copy_from_container: source");
    if (from == "/") throw invalid_argument_error("copy_from_container: source must name a file or directory, not '/'");
    copy_result result;
    try {
        dest = fs::absolute(dest).lexically_normal();
        if (!dest.has_filename()) dest = dest.parent_path();
        fs::create_directories(dest.parent_path());
        detail::temporary_directory staging{detail::unique_sibling(dest)};
        // A source that is a symlink: its archive is not used (Docker's holds the link, Podman's the target under
        // the link's name); the target the engine resolved is fetched instead.
        std::string origin = from;
        for (int hops = 0;; ++hops) {
            tar::extract_options extract;
            extract.outside_links = options.outside_links;
            extract.links_within_top_member = true;  // the staged item is renamed to dest
            tar::unpacker unpack(staging.path, extract);
            bool is_link = false;
            auto wanted = [&is_link](const path_stat& st) {
                is_link = st.is_symlink();
                return !is_link;
            };
            auto sink = [&unpack](std::span<const char> bytes) { unpack.feed(bytes); };
            path_stat stat;
            try {
                stat = co_await c.engine().archives().get(c.id, origin, wanted, sink);
            } catch (const not_found_error& e) {
                throw file_not_found(file_not_found::side::container, from,
                                     origin == from ? e.message()
                                                    : "a symlink to '" + origin + "', which does not exist");
            }
            if (!is_link) {
                unpack.finish();
                // Member names start with the copied item's name, which sits in the source's directory.
                for (auto& link : unpack.sink().skipped_links())
                    result.skipped_links.push_back(
                        {detail::child_of(detail::parent_of(origin), link.name), link.target});
                break;
            }
            if (hops == detail::max_link_hops) detail::throw_link_loop(from);
            origin = detail::link_destination(origin, stat);
            if (origin == "/")
                throw invalid_argument_error("copy_from_container: source '" + from +
                                             "' leads to '/', not to a file or directory");
        }
        // The engines name the archive's top member differently (Podman after a link's target, Docker after the
        // link), so the copied item is found as the one thing staged rather than by the name the engine reports.
        auto staged = detail::staged_item(staging.path, origin);
        if (!staged) throw protocol_error("GET archive " + origin, "the archive holds nothing");
        auto staged_status = fs::symlink_status(*staged);
        auto dest_status = fs::symlink_status(dest);
        const bool staged_dir = fs::is_directory(staged_status);
        if (!fs::exists(dest_status)) {
            detail::rename_staged(*staged, dest);
        } else if (fs::is_directory(dest_status) != staged_dir) {
            detail::throw_type_conflict("'" + dest.string() + "' on the host", fs::is_directory(dest_status),
                                        "'" + from + "' from the container", staged_dir);
        } else if (staged_dir) {
            detail::check_merge(*staged, dest, origin);
            detail::merge_into(*staged, dest);
        } else {
            fs::rename(*staged, dest);  // atomic replacement of the old file
        }
    } catch (const std::exception& e) {
        if (options.verbose)
            log->error("Copy of " + c.name + ":" + from + " to " + dest.string() + " failed: " + e.what());
        throw;
    }
    detail::log_skipped_links(result.skipped_links, *log);
    if (options.verbose) log->info("Copied " + c.name + ":" + from + " to " + dest.string());
    co_return result;
}

template <transport Transport>
boost::asio::awaitable<copy_result> copy_from_container(basic_container<Transport> c, std::string source,
                                                        std::filesystem::path dest) {
    copy_options options;
    return copy_from_container(std::move(c), std::move(source), std::move(dest), std::move(options));
}

}  // namespace berth
