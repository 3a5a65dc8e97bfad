#pragma once
// The one error type of the tar layer: what went wrong, where in the stream, and which member it concerned.
#include <berth/detail/outside_text.hpp>
#include <berth/error.hpp>

#include <cstdint>
#include <string>
#include <type_traits>

namespace berth::tar {

enum class errc {
    bad_checksum = 1,
    bad_header_field,  // a numeric field or name that cannot be decoded
    bad_pax_record,
    bad_sparse_map,
    truncated,            // the stream ended inside a header or a member's content
    limit_exceeded,       // an entry count, path length or PAX size over the caller's limit
    unsafe_path,          // absolute, '..' escape, empty or NUL-containing name
    unsafe_link,          // a symlink or hard link target outside the destination
    through_symlink,      // a write that would pass through a symlink
    type_conflict,        // a directory replaced by a non-directory or the reverse
    device_refused,       // a device node when the caller did not opt in
    io_error,             // the filesystem refused (carries errno text)
    not_found,            // a source that does not exist
    size_mismatch,        // writer: a member's content was shorter or longer than the size in its header
    bad_compressed_data,  // gzip: corrupt or not gzip at all
    bad_pattern,          // .dockerignore: a pattern Go's filepath.Match would reject
    unsupported_type,     // extractor: a member type it does not create (sockets, vendor types)
};

inline const char* errc_message(errc e) noexcept {
    switch (e) {
    case errc::bad_checksum: return "bad header checksum";
    case errc::bad_header_field: return "bad header field";
    case errc::bad_pax_record: return "bad PAX record";
    case errc::bad_sparse_map: return "bad sparse map";
    case errc::truncated: return "truncated archive";
    case errc::limit_exceeded: return "limit exceeded";
    case errc::unsafe_path: return "unsafe path";
    case errc::unsafe_link: return "unsafe link target";
    case errc::through_symlink: return "write through a symlink";
    case errc::type_conflict: return "file type conflict";
    case errc::device_refused: return "device node refused";
    case errc::io_error: return "I/O error";
    case errc::not_found: return "no such file";
    case errc::size_mismatch: return "member size mismatch";
    case errc::bad_compressed_data: return "bad compressed data";
    case errc::bad_pattern: return "bad .dockerignore pattern";
    case errc::unsupported_type: return "unsupported member type";
    }
    return "tar error";
}

inline const boost::system::error_category& tar_category() noexcept {
    static const berth::detail::errc_category<errc> category("berth.tar", errc_message);
    return category;
}
inline boost::system::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), tar_category()}; }

}  // namespace berth::tar

template <>
struct boost::system::is_error_code_enum<berth::tar::errc> : std::true_type {};

namespace berth::tar {

// code() is a tar::errc (category "berth.tar").
class error : public berth::error {
public:
    error(errc code, std::string detail, std::string entry_name = {}, std::uint64_t offset = no_offset)
        : berth::error(code, format(detail, entry_name, offset)), entry_name_(std::move(entry_name)), offset_(offset) {}

    static constexpr std::uint64_t no_offset = ~std::uint64_t{0};

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
    std::string entry_name_;
    std::uint64_t offset_;
};

}  // namespace berth::tar
