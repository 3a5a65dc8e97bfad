// libFuzzer target: the safe extractor (berth/tar/extract.hpp) unpacking arbitrary input into a fresh directory.
// Invariants: only tar::error escapes, and nothing appears next to the destination (no escape by name or link).
#include <berth/tar/extract.hpp>
#include <berth/tar/reader.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>
#include <unistd.h>

namespace {

namespace tar = berth::tar;
namespace fs = std::filesystem;

// Sparse members may describe huge files; extracting those is not what this target is about.
bool small_enough(std::span<const char> in) {
    tar::reader r;
    std::uint64_t total = 0;
    try {
        r.feed(in);
        for (auto ev = r.next(); ev != tar::reader::event::need_more && ev != tar::reader::event::end; ev = r.next())
            if (ev == tar::reader::event::entry && (total += r.current().size) > (16u << 20)) return false;
    } catch (const tar::error&) {}
    return true;
}

const fs::path& jail() {
    static const fs::path p = [] {
        std::string t = (fs::temp_directory_path() / "berth-extract-fuzz-XXXXXX").string();
        if (!mkdtemp(t.data())) std::abort();
        return fs::path(t);
    }();
    return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const char> in(reinterpret_cast<const char*>(data), size);
    if (!small_enough(in)) return 0;
    const fs::path dest = jail() / "dest";
    std::error_code ec;
    fs::remove_all(dest, ec);
    fs::create_directory(dest);
    const std::size_t split = size ? data[size - 1] % 700 + 1 : 1;
    try {
        // Both permission policies and both end-of-archive rules, chosen by the input's size.
        tar::extract_options o;
        o.permissions = size % 2 ? tar::permissions::exact : tar::permissions::data_filter;
        o.reader.require_end_marker = size % 4 < 2;
        tar::unpacker u(dest, o);
        for (std::size_t pos = 0; pos < size; pos += split) u.feed(in.subspan(pos, std::min(split, size - pos)));
        u.finish();
    } catch (const tar::error&) {}
    for (const auto& e : fs::directory_iterator(jail()))
        if (e.path().filename() != "dest") std::abort();  // something escaped the destination
    fs::permissions(dest, fs::perms::owner_all, fs::perm_options::add, ec);
    for (auto it = fs::recursive_directory_iterator(dest, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
        if (it->is_directory(ec) && !it->is_symlink(ec))
            fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dest, ec);
    return 0;
}
