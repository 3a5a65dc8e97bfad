#pragma once
// copy_to_pod / copy_from_pod: files and directory trees as tar streams through exec_in_pod, with berth's own tar
// codec on this side (the packer in, the safe extractor out) and the pod's `sh` and `tar` on the other (busybox or
// coreutils: sh, tar, dd, mkdir, readlink, dirname, basename). The rules are those of one engine's copies
// (eval/copy.hpp): `dest` names the copy, a symlink at `dest` is followed, missing parents are made, a directory
// and a non-directory never replace each other unless asked (replace_directories), a copy out lands through a
// temporary directory beside `dest` (a failed copy leaves nothing half-written), links pointing outside the copy
// follow outside_links, and a source that does not exist is a file_not_found.
//
// An archive into a pod must end by itself on v4.channel.k8s.io, which cannot end the process's stdin
// (exec.hpp): `tar x` reads on to end-of-file even after the archive's end-of-archive blocks. So the archive goes
// in framed: a line with a length, then that many bytes, and a line "0" at the end. In the pod a shell loop reads
// each length with `read` (byte by byte: nothing read ahead) and copies exactly that many bytes with
// `dd bs=N count=1 iflag=fullblock` into `tar x`; after the "0" the loop ends, `tar` reads end-of-file and the
// process exits with nothing more from berth. The same command serves v5.
#include <berth/eval/copy.hpp>
#include <berth/kubernetes/exec.hpp>
#include <berth/tar/extract.hpp>
#include <berth/tar/packer.hpp>

#include <filesystem>
#include <memory>
#include <string>

namespace berth::kubernetes {

struct pod_copy_options {
    bool verbose = true;
    // copy_from_pod: links pointing outside the copy are skipped (a warning each, listed in the copy_result) unless
    // this says keep or refuse.
    link_policy outside_links = link_policy::skip;
    // copy_to_pod: let a file replace a directory in the pod, or a directory a file (off: tar::errc::type_conflict).
    bool replace_directories = false;
    std::size_t frame_size = std::size_t{1} << 20;  // copy_to_pod: the archive's bytes per frame (and per dd)
    // The exec's limits and protocols (command, stdin_, tty and on_output are the copy's own).
    pod_exec_options exec{};
    std::shared_ptr<logger> log{};  // default: the thread's logger
};

namespace detail {

// Prints "d PATH", "f PATH" or "n PATH" for $1 followed through symlinks (PATH is where it leads).
inline constexpr const char* probe_script =
    "p=$1; if [ -L \"$p\" ]; then p=$(readlink -f -- \"$p\") || exit 70; fi; "
    "if [ -d \"$p\" ]; then k=d; elif [ -e \"$p\" ] || [ -L \"$p\" ]; then k=f; else k=n; fi; "
    "printf '%s %s' \"$k\" \"$p\"";

// $1 the directory (made when missing), $2 the member's name, $3 1 to remove what is there first; stdin: framed tar.
inline constexpr const char* extract_script =
    "mkdir -p -- \"$1\" || exit; "
    "if [ \"$3\" = 1 ]; then rm -rf -- \"$1/$2\" || exit; fi; "
    "while read -r n && [ \"$n\" -gt 0 ]; do dd bs=\"$n\" count=1 iflag=fullblock 2>/dev/null || exit; done "
    "| tar xf - -C \"$1\"";

// The exit code and stderr text by which the archive script says its source does not exist, or is '/'.
inline constexpr int missing_source_exit = 66;
inline constexpr std::string_view missing_source_text = "berth: no such file or directory";
inline constexpr int root_source_exit = 67;

// $1 the source, followed when it is a symlink; stdout: a tar of it, under its own name.
inline constexpr const char* archive_script =
    "p=$1; if [ -L \"$p\" ]; then p=$(readlink -f -- \"$p\"); fi; "
    "if [ -z \"$p\" ] || { [ ! -e \"$p\" ] && [ ! -L \"$p\" ]; }; then echo 'berth: no such file or directory' >&2; "
    "exit 66; fi; "
    "if [ \"$p\" = / ]; then exit 67; fi; "
    "cd -- \"$(dirname -- \"$p\")\" && exec tar cf - -- \"$(basename -- \"$p\")\"";

inline constexpr std::size_t max_command_stderr = 64 * 1024;  // kept of a copy command's stderr, for its error

// The copy's exec: no output handler of the caller's, no stdin unless given.
inline pod_exec_options copy_exec(const pod_copy_options& options, std::vector<std::string> command) {
    pod_exec_options exec = options.exec;
    exec.command = std::move(command);
    exec.tty = false;
    exec.stdin_ = {};
    exec.on_output = {};
    return exec;
}

[[noreturn]] inline void throw_command_failed(const char* what, int exit_code, std::string_view stderr_text,
                                              const std::string& endpoint) {
    throw kubernetes_error(
        kubernetes_errc::other, 0, "",
        std::string(what) + " exited with code " + std::to_string(exit_code) +
            (stderr_text.empty() ? std::string() : ": " + berth::detail::quote_outside_text(stderr_text, 1024)),
        endpoint);
}

struct pod_path {
    char kind = 'n';  // 'd' a directory, 'f' anything else, 'n' nothing
    std::string path{};
};

// `path` followed through symlinks in the pod, and what is there. The path printed comes from the pod: it is
// checked as any container path before it goes into a request.
template <transport Transport>
boost::asio::awaitable<pod_path> probe_pod_path(Transport& transport, const request_headers& headers,
                                                const pod_container& where, const pod_copy_options& options,
                                                const std::string& path) {
    auto exec = copy_exec(options, {"sh", "-c", probe_script, "berth", path});
    auto probe = co_await exec_in_pod(transport, headers, where, std::move(exec));
    const std::string endpoint = "probe of " + path + " in pod " + where.pod;
    if (probe.exit_code != 0)
        throw_command_failed("sh (checking the destination)", probe.exit_code, probe.stderr_text, endpoint);
    const auto& out = probe.stdout_text;
    if (out.size() < 3 || out.size() > 4096 + 2 || (out[0] != 'd' && out[0] != 'f' && out[0] != 'n') || out[1] != ' ')
        throw protocol_error(endpoint, "unexpected answer " + berth::detail::quote_outside_text(out));
    co_return pod_path{out[0], berth::detail::container_path(out.substr(2), "the resolved destination")};
}

}  // namespace detail

// `dest` names the copy in the pod (absolute); when it is a symlink, the copy goes where it leads.
template <transport Transport>
boost::asio::awaitable<void> copy_to_pod(Transport& transport, request_headers headers, pod_container where,
                                         std::filesystem::path source, std::string dest, pod_copy_options options) {
    namespace fs = std::filesystem;
    auto log = resolve_logger(options.log);
    std::error_code ec;
    auto source_status = fs::symlink_status(source, ec);
    if (!fs::exists(source_status)) throw file_not_found(file_not_found::side::host, source.string());
    auto target = berth::detail::container_path(dest, "copy_to_pod: dest");
    if (target == "/") throw invalid_argument_error("copy_to_pod: dest must name a file or directory, not '/'");
    if (options.frame_size == 0) throw invalid_argument_error("copy_to_pod: frame_size is zero");
    const std::string shown = where.pod + ":" + target;
    try {
        auto there = co_await detail::probe_pod_path(transport, headers, where, options, target);
        if (there.path == "/")
            throw invalid_argument_error("copy_to_pod: dest '" + target + "' leads to '/', not to a file or directory");
        const bool source_dir = fs::is_directory(source_status);
        const bool differs = there.kind != 'n' && (there.kind == 'd') != source_dir;
        if (differs && !options.replace_directories)
            berth::detail::throw_type_conflict("'" + there.path + "' in the pod", there.kind == 'd',
                                               "'" + source.string() + "' from the host", source_dir);
        const auto name = berth::detail::base_name(there.path);
        auto archive = std::make_shared<tar::packer>(source, name);
        auto frame_size = options.frame_size;
        auto framed = [archive, frame_size, ended = false]() mutable -> boost::asio::awaitable<std::string> {
            if (ended) co_return std::string();
            std::string frame(frame_size, '\0');
            const auto n = archive->read(std::span<char>(frame.data(), frame.size()));
            frame.resize(n);
            frame.insert(0, std::to_string(n) + "\n");  // "0\n" once the archive is complete
            ended = n == 0;
            co_return frame;
        };
        auto exec = detail::copy_exec(options, {"sh", "-c", detail::extract_script, "berth",
                                                berth::detail::parent_of(there.path), name, differs ? "1" : "0"});
        exec.stdin_ = stdin_source::chunks(std::move(framed));
        exec.stdin_eof_wait = {};  // the framed archive ends by itself: the process exits once it has it
        auto run = co_await exec_in_pod(transport, headers, where, std::move(exec));
        if (run.exit_code != 0) detail::throw_command_failed("tar x in the pod", run.exit_code, run.stderr_text, shown);
    } catch (const std::exception& e) {
        if (options.verbose) log->error("Copy of " + source.string() + " to " + shown + " failed: " + e.what());
        throw;
    }
    if (options.verbose) log->info("Copied " + source.string() + " to " + shown);
}

template <transport Transport>
boost::asio::awaitable<void> copy_to_pod(Transport& transport, request_headers headers, pod_container where,
                                         std::filesystem::path source, std::string dest) {
    pod_copy_options options;
    return copy_to_pod(transport, std::move(headers), std::move(where), std::move(source), std::move(dest),
                       std::move(options));
}

// `source` (absolute, in the pod) lands at `dest` on the host; a source that is a symlink is followed.
template <transport Transport>
boost::asio::awaitable<copy_result> copy_from_pod(Transport& transport, request_headers headers, pod_container where,
                                                  std::string source, std::filesystem::path dest,
                                                  pod_copy_options options) {
    namespace fs = std::filesystem;
    auto log = resolve_logger(options.log);
    auto from = berth::detail::container_path(source, "copy_from_pod: source");
    if (from == "/") throw invalid_argument_error("copy_from_pod: source must name a file or directory, not '/'");
    const std::string shown = where.pod + ":" + from;
    copy_result result;
    try {
        dest = fs::absolute(dest).lexically_normal();
        if (!dest.has_filename()) dest = dest.parent_path();
        fs::create_directories(dest.parent_path());
        berth::detail::temporary_directory staging{berth::detail::unique_sibling(dest)};
        tar::extract_options extract;
        extract.outside_links = options.outside_links;
        extract.links_within_top_member = true;  // the staged item is renamed to dest
        tar::unpacker unpack(staging.path, extract);
        std::string stderr_text;
        auto exec = detail::copy_exec(options, {"sh", "-c", detail::archive_script, "berth", from});
        exec.on_output = [&](output_stream which, std::string_view bytes) {
            if (which == output_stream::stdout_)
                unpack.feed(std::span<const char>(bytes.data(), bytes.size()));
            else if (stderr_text.size() < detail::max_command_stderr)
                stderr_text.append(bytes.substr(0, detail::max_command_stderr - stderr_text.size()));
        };
        auto run = co_await exec_in_pod(transport, headers, where, std::move(exec));
        if (run.exit_code == detail::missing_source_exit &&
            stderr_text.find(detail::missing_source_text) != std::string::npos)
            throw file_not_found(file_not_found::side::container, from);
        if (run.exit_code == detail::root_source_exit)
            throw invalid_argument_error("copy_from_pod: source '" + from +
                                         "' leads to '/', not to a file or "
                                         "directory");
        if (run.exit_code != 0) detail::throw_command_failed("tar c in the pod", run.exit_code, stderr_text, shown);
        unpack.finish();
        auto staged = berth::detail::staged_item(staging.path, from);
        if (!staged) throw protocol_error(shown, "the archive holds nothing");
        // Member names start with the copied item's name, which sits in the source's directory.
        for (auto& link : unpack.sink().skipped_links())
            result.skipped_links.push_back(
                {berth::detail::child_of(berth::detail::parent_of(from), link.name), link.target});
        auto staged_status = fs::symlink_status(*staged);
        auto dest_status = fs::symlink_status(dest);
        const bool staged_dir = fs::is_directory(staged_status);
        if (!fs::exists(dest_status)) {
            berth::detail::rename_staged(*staged, dest);
        } else if (fs::is_directory(dest_status) != staged_dir) {
            berth::detail::throw_type_conflict("'" + dest.string() + "' on the host", fs::is_directory(dest_status),
                                               "'" + from + "' from the pod", staged_dir);
        } else if (staged_dir) {
            berth::detail::check_merge(*staged, dest, from);
            berth::detail::merge_into(*staged, dest);
        } else {
            fs::rename(*staged, dest);  // atomic replacement of the old file
        }
    } catch (const std::exception& e) {
        if (options.verbose) log->error("Copy of " + shown + " to " + dest.string() + " failed: " + e.what());
        throw;
    }
    berth::detail::log_skipped_links(result.skipped_links, *log);
    if (options.verbose) log->info("Copied " + shown + " to " + dest.string());
    co_return result;
}

template <transport Transport>
boost::asio::awaitable<copy_result> copy_from_pod(Transport& transport, request_headers headers, pod_container where,
                                                  std::string source, std::filesystem::path dest) {
    pod_copy_options options;
    return copy_from_pod(transport, std::move(headers), std::move(where), std::move(source), std::move(dest),
                         std::move(options));
}

}  // namespace berth::kubernetes
