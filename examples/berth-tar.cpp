// berth-tar: list, create and extract tar archives with berth's tar layer.
//
//   berth-tar list [--allow-missing-end] ARCHIVE   one JSON object per member and line (sha256 of file contents)
//   berth-tar create [--name NAME] [--dockerignore] [--gzip] DIR|FILE > ARCHIVE
//   berth-tar extract [--allow-devices] [--keep-owners] [--exact-modes] [--allow-missing-end] ARCHIVE DEST
//
// ARCHIVE may be "-" (stdin/stdout); gzip input is detected by its magic bytes. An archive without its
// end-of-archive marker (two zero blocks) is refused as truncated unless --allow-missing-end is given; extracted
// permissions follow PEP 706's `data` filter and the umask unless --exact-modes is given.
#include <berth/detail/sha256.hpp>
#include <berth/tar/extract.hpp>
#include <berth/tar/gzip.hpp>
#include <berth/tar/packer.hpp>
#include <berth/tar/reader.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

namespace tar = berth::tar;

namespace {

// Large enough to amortise syscalls, small enough that the copy in and out of the kernel stays in cache.
const std::size_t buffer_size = std::getenv("BERTH_TAR_BUFFER") ? std::stoul(std::getenv("BERTH_TAR_BUFFER"))
                                                                : 128 * 1024;

struct fatal : std::runtime_error {
    using std::runtime_error::runtime_error;
};

int open_input(const std::string& path) {
    if (path == "-") return 0;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw fatal("cannot open '" + path + "': " + std::strerror(errno));
    return fd;
}

void write_all(int fd, std::span<const char> bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw fatal(std::string("write failed: ") + std::strerror(errno));
        bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
}

// Reads the archive at `path`, gunzipping it when it starts with the gzip magic, and hands tar bytes to `sink`.
void read_archive(const std::string& path, const std::function<void(std::span<const char>)>& sink) {
    int fd = open_input(path);
    std::vector<char> buf(buffer_size);
    std::optional<tar::gunzip> gz;
    bool first = true;
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw fatal(std::string("read failed: ") + std::strerror(errno));
        if (n == 0) break;
        std::span<const char> in(buf.data(), static_cast<std::size_t>(n));
        if (first && tar::looks_gzipped(in)) gz.emplace(buffer_size);
        first = false;
        if (gz)
            gz->feed(in, sink);
        else
            sink(in);
    }
    if (gz) gz->finish();
    if (fd != 0) ::close(fd);
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\r': out += "\\r"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                char b[8];
                std::snprintf(b, sizeof b, "\\u%04x", c);
                out += b;
            } else {
                out += c;
            }
        }
    }
    return out + "\"";
}

const char* type_name(tar::entry_type t) {
    switch (t) {
    case tar::entry_type::file: return "file";
    case tar::entry_type::directory: return "dir";
    case tar::entry_type::symlink: return "symlink";
    case tar::entry_type::hardlink: return "hardlink";
    case tar::entry_type::char_device: return "char";
    case tar::entry_type::block_device: return "block";
    case tar::entry_type::fifo: return "fifo";
    }
    return "other";
}

int list(std::vector<std::string> args) {
    tar::reader_options o;
    if (!args.empty() && args[0] == "--allow-missing-end") {
        o.require_end_marker = false;
        args.erase(args.begin());
    }
    if (args.size() != 1) throw fatal("list: need ARCHIVE");
    const std::string& archive = args[0];
    tar::reader r(o);
    tar::entry cur;
    berth::detail::sha256 hash;
    std::string out;
    read_archive(archive, [&](std::span<const char> bytes) {
        r.feed(bytes);
        for (;;) {
            switch (r.next()) {
            case tar::reader::event::need_more: return;
            case tar::reader::event::entry:
                cur = r.current();
                hash = {};
                break;
            case tar::reader::event::data: hash.update(r.data()); break;
            case tar::reader::event::entry_end:
                out = "{\"name\":" + json_string(cur.name) + ",\"type\":\"" + type_name(cur.type) +
                      "\",\"size\":" + std::to_string(cur.size) + ",\"mode\":" + std::to_string(cur.mode) +
                      ",\"uid\":" + std::to_string(cur.uid) + ",\"gid\":" + std::to_string(cur.gid) +
                      ",\"mtime\":" + std::to_string(cur.mtime) + ",\"linkname\":" + json_string(cur.linkname);
                if (cur.type == tar::entry_type::file) out += ",\"sha256\":\"" + hash.hex_digest() + "\"";
                out += "}\n";
                write_all(1, out);
                break;
            case tar::reader::event::end: return;
            }
        }
    });
    r.finish();
    return 0;
}

int create(std::vector<std::string> args) {
    tar::pack_options o;
    std::string name;
    bool gzip = false;
    std::string source;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--name" && i + 1 < args.size())
            name = args[++i];
        else if (args[i] == "--dockerignore")
            o.use_dockerignore = true;
        else if (args[i] == "--gzip")
            gzip = true;
        else if (source.empty())
            source = args[i];
        else
            throw fatal("unexpected argument '" + args[i] + "'");
    }
    if (source.empty()) throw fatal("create: missing DIR");
    tar::packer p(source, name, o);
    std::vector<char> buf(buffer_size);
    auto to_stdout = [](std::span<const char> b) { write_all(1, b); };
    if (gzip) {
        tar::gzip_sink<decltype(to_stdout)> z(to_stdout, 6, buffer_size);
        while (std::size_t n = p.read(buf)) z(std::span<const char>(buf.data(), n));
        z.finish();
    } else {
        while (std::size_t n = p.read(buf)) write_all(1, std::span<const char>(buf.data(), n));
    }
    return 0;
}

int extract(std::vector<std::string> args) {
    tar::extract_options o;
    std::vector<std::string> pos;
    for (auto& a : args) {
        if (a == "--allow-devices")
            o.allow_devices = true;
        else if (a == "--keep-owners")
            o.keep_owners = true;
        else if (a == "--exact-modes")
            o.permissions = tar::permissions::exact;
        else if (a == "--allow-missing-end")
            o.reader.require_end_marker = false;
        else
            pos.push_back(a);
    }
    if (pos.size() != 2) throw fatal("extract: need ARCHIVE DEST");
    tar::unpacker u(pos[1], o);
    read_archive(pos[0], [&](std::span<const char> b) { u.feed(b); });
    u.finish();
    return 0;
}

int usage() {
    std::cerr << "usage: berth-tar list [--allow-missing-end] ARCHIVE\n"
                 "       berth-tar create [--name NAME] [--dockerignore] [--gzip] DIR|FILE > ARCHIVE\n"
                 "       berth-tar extract [--allow-devices] [--keep-owners] [--exact-modes] [--allow-missing-end] "
                 "ARCHIVE DEST\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) return usage();
    std::string cmd = args.front();
    args.erase(args.begin());
    try {
        if (cmd == "list") return list(args);
        if (cmd == "create") return create(args);
        if (cmd == "extract") return extract(args);
        return usage();
    } catch (const std::exception& e) {
        std::cerr << "berth-tar: " << e.what() << '\n';
        return 1;
    }
}
