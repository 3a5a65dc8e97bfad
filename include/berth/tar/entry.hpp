#pragma once
// One archive member as the reader yields it and the writer takes it: the tar header's meaning, not its layout.
#include <cstdint>
#include <map>
#include <string>

namespace berth::tar {

enum class entry_type : char {
    file = '0',
    hardlink = '1',
    symlink = '2',
    char_device = '3',
    block_device = '4',
    directory = '5',
    fifo = '6',
};

struct entry {
    std::string name;  // full path inside the archive ('/'-separated, directories without a trailing '/')
    entry_type type = entry_type::file;
    // Files: the content bytes that follow. Other types: the size field the archive carries (normally 0), as Go
    // and Python report it; no content follows them whatever it says (GNU dumpdirs' listings are skipped).
    std::uint64_t size = 0;
    std::uint32_t mode = 0644;  // permission bits incl. setuid/setgid/sticky, without the file-type bits
    std::int64_t uid = 0;
    std::int64_t gid = 0;
    std::string uname;
    std::string gname;
    std::int64_t mtime = 0;        // seconds since the epoch (may be negative)
    std::uint32_t mtime_nsec = 0;  // sub-second part, from PAX mtime
    std::string linkname;          // target of a symlink or hard link
    std::uint32_t devmajor = 0;
    std::uint32_t devminor = 0;
    // PAX records berth does not interpret itself (xattrs, vendor keys), as read from the archive.
    std::map<std::string, std::string> pax_records;
};

}  // namespace berth::tar
