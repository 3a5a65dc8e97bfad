#pragma once
// The one error type of the tar layer: what went wrong, where in the stream, and which member it concerned.
#include <berth/detail/outside_text.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace berth::tar {

enum class errc {
    bad_checksum,
    bad_header_field,   // a numeric field or name that cannot be decoded
    bad_pax_record,
    bad_sparse_map,
    truncated,          // the stream ended inside a header or a member's content
    limit_exceeded,     // an entry count, path length or PAX size over the caller's limit
    unsafe_path,        // absolute, '..' escape, empty or NUL-containing name
    unsafe_link,        // a symlink or hard link target outside the destination
    through_symlink,    // a write that would pass through a symlink
    type_conflict,      // a directory replaced by a non-directory or the reverse
    device_refused,     // a device node when the caller did not opt in
    io_error,           // the filesystem refused (carries errno text)
    not_found,          // a source that does not exist
    size_mismatch,      // writer: a member's content was shorter or longer than the size in its header
    bad_compressed_data,// gzip: corrupt or not gzip at all
    bad_pattern,        // .dockerignore: a pattern Go's filepath.Match would reject
    unsupported_type,   // extractor: a member type it does not create (sockets, vendor types)
};

class error : public std::runtime_error {
public:
    error(errc code, std::string detail, std::string entry_name = {}, std::uint64_t offset = no_offset)
        : std::runtime_error(format(detail, entry_name, offset)), code_(code), entry_name_(std::move(entry_name)),
          offset_(offset) {}

    static constexpr std::uint64_t no_offset = ~std::uint64_t{0};

    errc code() const noexcept { return code_; }
    const std::string& entry_name() const noexcept { return entry_name_; }
    // Byte offset in the archive stream where the problem was found; no_offset when it is not about a stream.
    std::uint64_t offset() const noexcept { return offset_; }

private:
    static std::string format(const std::string& detail, const std::string& name, std::uint64_t offset) {
        std::string s = "tar: " + detail;
        if (!name.empty()) s += " (entry " + berth::detail::quote_outside_text(name, 1024) + ")";  // from the archive
        if (offset != no_offset) s += " at byte " + std::to_string(offset);
        return s;
    }
    errc code_;
    std::string entry_name_;
    std::uint64_t offset_;
};

} // namespace berth::tar
