#pragma once
// Archive endpoints: stat a path in a container (HEAD), stream a tar of it out (GET), stream a tar into a
// directory (PUT). Bodies flow through in slices: neither direction holds an archive in memory.
#include <berth/detail/base64.hpp>
#include <berth/detail/url.hpp>
#include <berth/engine/client_core.hpp>

#include <concepts>
#include <span>

namespace berth {

struct path_stat {  // X-Docker-Container-Path-Stat
    std::string name{};
    std::int64_t size = 0;
    std::uint32_t mode = 0;  // Go os.FileMode: permission bits plus type bits (dir = 1<<31, symlink = 1<<27)
    std::string mtime{};
    std::string link_target{};

    static constexpr std::uint32_t go_mode_dir = 1u << 31;
    static constexpr std::uint32_t go_mode_symlink = 1u << 27;
    bool is_directory() const { return (mode & go_mode_dir) != 0; }
    bool is_symlink() const { return (mode & go_mode_symlink) != 0; }
    std::uint32_t permissions() const { return mode & 07777; }
};

template <class S>
concept byte_sink = std::invocable<S&, std::span<const char>>;

namespace detail {
// Streams a reply's body into `sink` slice by slice (an archive, an image save, a container export): memory stays
// at one buffer whatever the body's size.
template <class Reply, byte_sink Sink>
boost::asio::awaitable<void> read_body_into(Reply& reply, Sink& sink) {
    constexpr std::size_t buffer_size = 256 * 1024;
    std::unique_ptr<char[]> buffer(new char[buffer_size]);
    while (std::size_t n = co_await reply.read_some(std::span<char>(buffer.get(), buffer_size)))
        sink(std::span<const char>(buffer.get(), n));
}
}  // namespace detail

struct put_archive_options {
    bool no_overwrite_dir_non_dir = false;  // refuse to replace a directory by a non-directory or the reverse
    bool copy_uid_gid = false;              // take ownership from the archive (copyUIDGID)
};

template <transport Transport>
class archive_api {
public:
    explicit archive_api(client_core<Transport>& c) : client_(c) {}

    // A missing path is a not_found_error naming it.
    // Engine API: HEAD /containers/{id}/archive
    boost::asio::awaitable<path_stat> stat(std::string_view container, std::string_view path) {
        try {
            http::request req{.method = verb::head, .target = target(container, path)};
            auto reply = co_await client_.open(std::move(req));
            co_return decode_stat(reply.header("X-Docker-Container-Path-Stat"), reply.endpoint());
        } catch (const not_found_error& e) { throw_missing(e, container, path); }
    }

    // Streams the tar archive of `path` into sink, slice by slice; returns the path's stat.
    // Engine API: GET /containers/{id}/archive
    template <byte_sink Sink>
    boost::asio::awaitable<path_stat> get(std::string_view container, std::string_view path, Sink&& sink) {
        return get(
            container, path, [](const path_stat&) { return true; }, std::forward<Sink>(sink));
    }

    // The same, with the stat handed to `wanted` before any of the archive: when it returns false, the archive is
    // not read at all (its connection is closed rather than drained), e.g. for a path that turns out to be a link.
    template <class Wanted, byte_sink Sink>
    requires std::predicate<Wanted&, const path_stat&> boost::asio::awaitable<path_stat> get(std::string_view container,
                                                                                             std::string_view path,
                                                                                             Wanted&& wanted,
                                                                                             Sink&& sink) {
        std::optional<http::response<Transport>> reply{};
        try {
            http::request req{.method = verb::get, .target = target(container, path)};
            reply.emplace(co_await client_.open(std::move(req)));
        } catch (const not_found_error& e) { throw_missing(e, container, path); }
        auto stat = decode_stat(reply->header("X-Docker-Container-Path-Stat"), reply->endpoint());
        if (!wanted(stat)) co_return stat;
        co_await detail::read_body_into(*reply, sink);
        co_return stat;
    }

    // Extracts the tar streamed from `archive` into the directory `path` of the container (which must exist).
    // Engine API: PUT /containers/{id}/archive
    template <http::body_source Source>
    boost::asio::awaitable<void> put(std::string_view container, std::string_view path, Source& archive,
                                     const put_archive_options& options = {}) {
        std::string t = target(container, path);
        if (options.no_overwrite_dir_non_dir) t += "&noOverwriteDirNonDir=true";
        if (options.copy_uid_gid) t += "&copyUIDGID=true";
        try {
            http::request req{.method = verb::put, .target = std::move(t), .content_type = "application/x-tar"};
            auto reply = co_await client_.open(std::move(req), &archive);
            co_await reply.read_all();
        } catch (const not_found_error& e) { throw_missing(e, container, path); }
    }

private:
    static std::string target(std::string_view container, std::string_view path) {
        return "/containers/" + detail::percent_encode(container) + "/archive" +
               detail::query().add("path", path).str();
    }

    static path_stat decode_stat(const std::string& header, const std::string& endpoint) {
        if (header.empty()) throw protocol_error(endpoint, "reply lacks the X-Docker-Container-Path-Stat header");
        auto text = detail::base64_decode(header);
        if (!text) throw protocol_error(endpoint, "X-Docker-Container-Path-Stat is not base64");
        auto v = json_read::parse(*text, endpoint);
        auto& o = json_read::as_object(v, endpoint);
        path_stat s;
        s.name = json_read::optional_string(o, "name", endpoint);
        s.size = json_read::optional_int(o, "size", endpoint);
        s.mode = json_read::optional_int_as<std::uint32_t>(o, "mode", endpoint);
        s.mtime = json_read::optional_string(o, "mtime", endpoint);
        s.link_target = json_read::optional_string(o, "linkTarget", endpoint);
        return s;
    }

    // A HEAD reply has no body to carry the engine's message: say what is missing.
    [[noreturn]] static void throw_missing(const not_found_error& e, std::string_view container,
                                           std::string_view path) {
        std::string msg = e.message();
        if (msg.starts_with("HTTP status"))
            msg = "no such container or path: " + std::string(container) + ":" + std::string(path);
        throw not_found_error(e.status(), msg, e.endpoint());
    }

    client_core<Transport>& client_;
};

}  // namespace berth
