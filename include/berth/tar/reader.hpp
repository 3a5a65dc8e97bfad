#pragma once
// The streaming tar push parser: fed arbitrary slices of an archive, it yields members and their content as
// slices of the fed bytes (never copied). GNU long names, PAX (local and global), old GNU sparse and PAX sparse
// 0.0/0.1/1.0 are expanded, so the caller only ever sees plain members with their logical content.
// Memory is bounded by reader_options whatever the input.
#include <berth/tar/entry.hpp>
#include <berth/tar/error.hpp>
#include <berth/tar/header.hpp>
#include <berth/tar/pax.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace berth::tar {

struct reader_options {
    std::size_t max_pax_size = 1 << 20;  // bytes of one PAX/GNU long-name header payload (and of a sparse map)
    std::size_t max_path_length = 4096;
    std::uint64_t max_entries = 1'000'000;
    // The archive counts as complete only with its end-of-archive marker (two zero blocks): finish() fails
    // (errc::truncated) on a stream cut at a member boundary, and a lone zero block followed by a header is an
    // error. Docker, Podman, GNU tar, bsdtar, Go and Python all write the marker. Turn it off to read archives
    // the way GNU tar, Go and Python do: the first zero block, or the end of input between members, ends them.
    bool require_end_marker = true;
};

namespace detail {

// Holes of sparse files are handed out as slices of this.
inline constexpr std::array<char, 64 * 1024> zeros{};

inline constexpr std::uint64_t padding_of(std::uint64_t n) noexcept {
    return (block_size - n % block_size) % block_size;
}

struct sparse_segment {
    std::uint64_t offset, length;
};
inline constexpr std::uint64_t unset_length = ~std::uint64_t{0};

// PAX values that replace header fields. The global set ('g') persists; the local one ('x') covers one member.
struct pax_overrides {
    std::optional<std::string> path, linkpath, uname, gname;
    std::optional<std::uint64_t> size;
    std::optional<std::int64_t> uid, gid;
    std::optional<pax_time> mtime;
    std::map<std::string, std::string, std::less<>> other;

    void clear() { *this = pax_overrides{}; }
    std::size_t footprint() const {
        std::size_t n = 0;
        for (const auto& [k, v] : other) n += k.size() + v.size();
        for (const auto* s : {&path, &linkpath, &uname, &gname})
            if (*s) n += (*s)->size();
        return n;
    }
};

// GNU.sparse.* records of the pending 'x' header.
struct pax_sparse {
    bool seen = false;
    std::optional<std::int64_t> major, minor, numblocks, realsize;
    std::optional<std::string> name;
};

inline bool is_header_only(entry_type t) noexcept { return t != entry_type::file; }

}  // namespace detail

class reader {
public:
    enum class event { need_more, entry, data, entry_end, end };

    explicit reader(reader_options options = {}) : opt_(options) {
        max_segments_ = std::max<std::size_t>(opt_.max_pax_size / 16, 64);
    }

    // Hands the parser the next bytes. They must stay valid until next() returns need_more.
    void feed(std::span<const char> bytes) {
        if (state_ == state::end) return;  // trailing data after the end marker is ignored, like GNU tar
        if (!in_.empty()) throw invalid_argument_error("tar::reader::feed called before next() returned need_more");
        in_ = bytes;
    }

    event next() {
        for (;;) {
            switch (state_) {
            case state::end: return event::end;
            case state::header: {
                const char* b = take_block();
                if (!b) return event::need_more;
                const block_view blk(b, block_size);
                if (is_zero_block(blk)) {
                    if (!opt_.require_end_marker) return end_archive();  // GNU tar stops here (a lone one warns)
                    if (pending_extensions())
                        throw error(errc::truncated, "end-of-archive marker right after an extension header", {},
                                    block_start_);
                    state_ = state::end_marker;
                    continue;
                }
                decode_header(blk, hdr_, block_start_);
                switch (hdr_.typeflag) {
                case 'x':
                case 'X':
                case 'g':
                case 'L':
                case 'K': begin_extension(); break;
                case 'V':  // volume label: not a member
                    skip_remaining_ = static_cast<std::uint64_t>(hdr_.size) +
                                      detail::padding_of(static_cast<std::uint64_t>(hdr_.size));
                    state_ = state::skip;
                    break;
                default: begin_member(blk); break;
                }
                continue;
            }
            case state::end_marker: {
                const char* b = take_block();
                if (!b) return event::need_more;
                // Like Go: a zero block then a header is no end marker, and reading on would guess.
                if (!is_zero_block(block_view(b, block_size)))
                    throw error(errc::bad_header_field, "a lone zero block before a header", {},
                                block_start_ - block_size);
                return end_archive();
            }
            case state::ext_payload: {
                const std::size_t n = std::min<std::uint64_t>(ext_size_ - ext_buf_.size(), in_.size());
                ext_buf_.append(in_.data(), n);
                consume(n);
                if (ext_buf_.size() < ext_size_) return event::need_more;
                end_extension();
                skip_remaining_ = detail::padding_of(ext_size_);
                state_ = state::skip;
                continue;
            }
            case state::skip: {
                const std::size_t n = std::min<std::uint64_t>(skip_remaining_, in_.size());
                consume(n);
                skip_remaining_ -= n;
                if (skip_remaining_ != 0) return event::need_more;
                if (in_member_) sparse_.clear();  // a later 'x' header starts its own map
                in_member_ = false;
                state_ = state::header;
                continue;
            }
            case state::gnu_sparse_ext: {
                const char* b = take_block();
                if (!b) return event::need_more;
                if (read_old_gnu_sparse(b + 0, detail::gnu_ext_entries, b[detail::gnu_ext_isextended] != 0)) {
                    start_sparse_content();
                }
                continue;
            }
            case state::sparse_map: {
                if (!read_sparse_map_1_0()) return event::need_more;
                continue;
            }
            case state::emit_entry: state_ = state::content; return event::entry;
            case state::content: {
                if (auto ev = next_content()) return *ev;
                return event::need_more;
            }
            }
        }
    }

    const entry& current() const noexcept { return entry_; }
    std::span<const char> data() const noexcept { return data_; }

    // End of input. An archive is complete at its end-of-archive marker; without require_end_marker, at a member
    // boundary too. Anything else is errc::truncated, at the offset where the input stopped.
    void finish() {
        if (state_ == state::end) return;
        const bool boundary = state_ == state::header && block_fill_ == 0 && !pending_extensions();
        if (boundary && !opt_.require_end_marker) return;
        const char* why = boundary ? "archive ends between members, without its end-of-archive marker"
                          : state_ == state::end_marker ? "archive ends inside its end-of-archive marker"
                                                        : "archive ends inside a header or member";
        throw error(errc::truncated, why, in_member_ ? entry_.name : "", offset_);
    }

    std::uint64_t offset() const noexcept { return offset_; }

private:
    enum class state : std::uint8_t {
        header,
        end_marker,
        ext_payload,
        skip,
        gnu_sparse_ext,
        sparse_map,
        emit_entry,
        content,
        end
    };

    event end_archive() noexcept {
        state_ = state::end;
        in_ = {};  // trailing data after the end marker is ignored, like GNU tar
        return event::end;
    }

    void consume(std::size_t n) noexcept {
        in_ = in_.subspan(n);
        offset_ += n;
    }

    // Next 512-byte block: straight out of the input when it is all there, else assembled in block_.
    const char* take_block() noexcept {
        if (block_fill_ == 0 && in_.size() >= block_size) {
            const char* p = in_.data();
            consume(block_size);
            block_start_ = offset_ - block_size;
            return p;
        }
        const std::size_t n = std::min(block_size - block_fill_, in_.size());
        if (n == 0) return nullptr;  // memcpy from an empty span's null data() is undefined even for 0 bytes
        std::memcpy(block_.data() + block_fill_, in_.data(), n);
        consume(n);
        block_fill_ += n;
        if (block_fill_ < block_size) return nullptr;
        block_fill_ = 0;
        block_start_ = offset_ - block_size;
        return block_.data();
    }

    bool pending_extensions() const noexcept {
        return local_ext_bytes_ != 0 || long_name_ || long_link_ || have_local_;
    }

    [[noreturn]] void fail(errc code, const std::string& why, std::uint64_t at) const {
        throw error(code, why, entry_.name, at);
    }

    // ---- extension headers: 'x'/'X' (PAX), 'g' (PAX global), 'L'/'K' (GNU long name / link name) ----

    void begin_extension() {
        entry_.name.clear();
        const auto size = static_cast<std::uint64_t>(hdr_.size);
        if (size > opt_.max_pax_size)
            throw error(errc::limit_exceeded, "extension header larger than max_pax_size", hdr_.name, block_start_);
        if (hdr_.typeflag != 'g') {
            // Many small local headers in a row must not add up past the limit either.
            local_ext_bytes_ += size;
            if (local_ext_bytes_ > opt_.max_pax_size)
                throw error(errc::limit_exceeded, "extension headers of one member larger than max_pax_size", hdr_.name,
                            block_start_);
            have_local_ = true;
        }
        ext_type_ = hdr_.typeflag;
        ext_size_ = size;
        ext_start_ = block_start_ + block_size;
        ext_buf_.clear();
        state_ = state::ext_payload;
    }

    void end_extension() {
        const std::string_view payload = ext_buf_;
        switch (ext_type_) {
        case 'L': long_name_.emplace(detail::c_string(payload)); break;
        case 'K': long_link_.emplace(detail::c_string(payload)); break;
        case 'g': {
            parse_pax_records(
                payload, [&](std::string_view k, std::string_view v) { apply_pax(global_, k, v, false); }, ext_start_);
            if (global_.footprint() > opt_.max_pax_size)
                throw error(errc::limit_exceeded, "global PAX records larger than max_pax_size", {}, ext_start_);
            break;
        }
        default:
            // A later 'x' header for the same member replaces an earlier one whole, as Go and GNU tar read it.
            local_.clear();
            psparse_ = {};
            sparse_.clear();
            parse_pax_records(
                payload, [&](std::string_view k, std::string_view v) { apply_pax(local_, k, v, true); }, ext_start_);
            break;
        }
    }

    std::uint64_t record_offset(std::string_view key) const noexcept {
        return ext_start_ + static_cast<std::uint64_t>(key.data() - ext_buf_.data());
    }

    void apply_pax(detail::pax_overrides& o, std::string_view key, std::string_view value, bool local) {
        auto bad = [&](const char* why) { throw error(errc::bad_pax_record, why, {}, record_offset(key)); };
        auto text = [&](std::optional<std::string>& dst) {
            if (value.find('\0') != std::string_view::npos) bad("PAX path or name value contains NUL");
            if (value.empty())
                dst.reset();  // an empty value removes the override
            else
                dst.emplace(value);
        };
        auto integer = [&](std::optional<std::int64_t>& dst, bool non_negative) {
            if (value.empty()) return dst.reset();
            const auto v = parse_pax_integer(value);
            if (!v || (non_negative && *v < 0)) bad("invalid PAX numeric value");
            dst = *v;
        };
        if (key.starts_with(pax_key::sparse_prefix)) {
            if (local) apply_pax_sparse(key.substr(pax_key::sparse_prefix.size()), value, key);
            return;  // meaningless in a global header
        }
        if (key == pax_key::path) return text(o.path);
        if (key == pax_key::linkpath) return text(o.linkpath);
        if (key == pax_key::uname) return text(o.uname);
        if (key == pax_key::gname) return text(o.gname);
        if (key == pax_key::uid) return integer(o.uid, false);
        if (key == pax_key::gid) return integer(o.gid, false);
        if (key == pax_key::size) {
            if (!local) return;  // a size for every later member cannot be meant
            std::optional<std::int64_t> v;
            integer(v, true);
            if (v)
                o.size = static_cast<std::uint64_t>(*v);
            else
                o.size.reset();
            return;
        }
        if (key == pax_key::mtime) {
            if (value.empty()) return o.mtime.reset();
            const auto t = parse_pax_time(value);
            if (!t) bad("invalid PAX time value");
            o.mtime = *t;
            return;
        }
        if (value.empty()) {
            if (auto it = o.other.find(key); it != o.other.end()) o.other.erase(it);
            return;
        }
        o.other.insert_or_assign(std::string(key), std::string(value));
    }

    void apply_pax_sparse(std::string_view k, std::string_view value, std::string_view key) {
        auto bad = [&](const char* why) { throw error(errc::bad_sparse_map, why, {}, record_offset(key)); };
        auto number = [&]() -> std::int64_t {
            const auto v = parse_pax_integer(value);
            if (!v || *v < 0) bad("invalid GNU.sparse number");
            return *v;
        };
        auto push = [&](std::uint64_t off) {
            if (sparse_.size() >= max_segments_)
                throw error(errc::limit_exceeded, "sparse map has too many entries", {}, record_offset(key));
            sparse_.push_back({off, detail::unset_length});
        };
        psparse_.seen = true;
        if (k == "major")
            psparse_.major = number();
        else if (k == "minor")
            psparse_.minor = number();
        else if (k == "numblocks")
            psparse_.numblocks = number();
        else if (k == "size" || k == "realsize")
            psparse_.realsize = number();
        else if (k == "name") {
            if (value.find('\0') != std::string_view::npos) bad("GNU.sparse.name contains NUL");
            psparse_.name.emplace(value);
        } else if (k == "offset") {  // format 0.0: offset/numbytes pairs as repeated records
            push(static_cast<std::uint64_t>(number()));
        } else if (k == "numbytes") {
            if (sparse_.empty() || sparse_.back().length != detail::unset_length)
                bad("GNU.sparse.numbytes without a preceding GNU.sparse.offset");
            sparse_.back().length = static_cast<std::uint64_t>(number());
        } else if (k == "map") {  // format 0.1: "offset,size,offset,size,..."
            sparse_.clear();
            bool want_offset = true;
            std::size_t pos = 0;
            while (!value.empty() && pos <= value.size()) {
                const auto comma = value.find(',', pos);
                const auto item = value.substr(pos, comma == std::string_view::npos ? value.npos : comma - pos);
                const auto v = parse_pax_integer(item);
                if (!v || *v < 0) bad("invalid GNU.sparse.map");
                if (want_offset)
                    push(static_cast<std::uint64_t>(*v));
                else
                    sparse_.back().length = static_cast<std::uint64_t>(*v);
                want_offset = !want_offset;
                if (comma == std::string_view::npos) break;
                pos = comma + 1;
            }
            if (!want_offset) bad("GNU.sparse.map has an odd number of values");
        }
    }

    // ---- members ----

    void begin_member(block_view blk) {
        if (++entries_ > opt_.max_entries)
            throw error(errc::limit_exceeded, "more entries than max_entries", hdr_.name, block_start_);
        entry& e = entry_;
        in_member_ = true;
        e.name = long_name_ ? std::move(*long_name_) : hdr_.name;
        e.linkname = long_link_ ? std::move(*long_link_) : hdr_.linkname;
        e.mode = hdr_.mode;
        e.uid = hdr_.uid;
        e.gid = hdr_.gid;
        e.uname = hdr_.uname;
        e.gname = hdr_.gname;
        e.mtime = hdr_.mtime;
        e.mtime_nsec = 0;
        e.devmajor = hdr_.devmajor;
        e.devminor = hdr_.devminor;
        e.pax_records.clear();
        std::uint64_t stored = static_cast<std::uint64_t>(hdr_.size);
        for (const detail::pax_overrides* o : {&global_, &local_}) {
            if (o->path) e.name = *o->path;
            if (o->linkpath) e.linkname = *o->linkpath;
            if (o->uname) e.uname = *o->uname;
            if (o->gname) e.gname = *o->gname;
            if (o->uid) e.uid = *o->uid;
            if (o->gid) e.gid = *o->gid;
            if (o->mtime) e.mtime = o->mtime->sec, e.mtime_nsec = o->mtime->nsec;
            if (o->size) stored = *o->size;
            for (const auto& [k, v] : o->other) e.pax_records.insert_or_assign(k, v);
        }

        const char t = hdr_.typeflag;
        switch (t) {
        case '1': e.type = entry_type::hardlink; break;
        case '2': e.type = entry_type::symlink; break;
        case '3': e.type = entry_type::char_device; break;
        case '4': e.type = entry_type::block_device; break;
        case '5':
        case 'D': e.type = entry_type::directory; break;  // 'D': GNU dumpdir, content is a listing
        case '6': e.type = entry_type::fifo; break;
        case '\0':  // old regular file; a trailing '/' made it a directory before typeflag '5' existed
            e.type = e.name.ends_with('/') ? entry_type::directory : entry_type::file;
            break;
        case '0':
            e.type = hdr_.format == header_format::v7 && e.name.ends_with('/') ? entry_type::directory
                                                                               : entry_type::file;
            break;
        default: e.type = entry_type::file; break;  // '7' contiguous, 'S' sparse, unknown: content as a file
        }
        // Header-only types carry no data whatever their size field says: the next header follows at once, as Go
        // and Python read it. Their entry still reports the size they carry. GNU dumpdirs ('D') do have data.
        const std::uint64_t carried = stored;
        if (detail::is_header_only(e.type) && t != 'D') stored = 0;
        if (e.type == entry_type::directory)
            while (e.name.size() > 1 && e.name.back() == '/') e.name.pop_back();

        stored_remaining_ = stored;
        pad_ = detail::padding_of(stored);
        content_remaining_ = e.type == entry_type::file ? stored : 0;
        e.size = e.type == entry_type::file ? stored : carried;
        sparse_active_ = false;

        const bool pax_sparse = psparse_.seen && e.type == entry_type::file;
        if (pax_sparse && psparse_.name) e.name = *psparse_.name;
        if (e.name.size() > opt_.max_path_length || e.linkname.size() > opt_.max_path_length)
            fail(errc::limit_exceeded, "path longer than max_path_length", block_start_);

        const bool old_sparse = t == 'S';
        std::optional<std::int64_t> realsize = psparse_.realsize;
        const bool pax_1_0 = pax_sparse && psparse_.major == 1 && psparse_.minor == 0;
        clear_local();
        if (old_sparse) {
            sparse_.clear();
            realsize = parse_numeric(detail::raw(blk, {detail::gnu_realsize, 12}));
            if (!realsize || *realsize < 0)
                fail(errc::bad_sparse_map, "invalid old GNU sparse real size", block_start_);
            realsize_ = static_cast<std::uint64_t>(*realsize);
            if (read_old_gnu_sparse(blk.data() + detail::gnu_sparse_offset, detail::gnu_sparse_entries,
                                    blk[detail::gnu_isextended] != 0))
                start_sparse_content();
            return;
        }
        if (pax_sparse) {
            if (psparse_.major && !pax_1_0)
                fail(errc::bad_sparse_map, "unsupported GNU sparse format version", block_start_);
            if (!realsize) fail(errc::bad_sparse_map, "GNU sparse file without its real size", block_start_);
            realsize_ = static_cast<std::uint64_t>(*realsize);
            if (pax_1_0) {
                sparse_.clear();
                map_numbers_ = map_digits_ = 0;
                map_value_ = 0;
                map_count_ = 0;
                map_bytes_ = 0;
                map_pad_ = detail::unset_length;
                state_ = state::sparse_map;
                return;
            }
            if (psparse_.numblocks && static_cast<std::uint64_t>(*psparse_.numblocks) != sparse_.size())
                fail(errc::bad_sparse_map, "GNU.sparse.numblocks does not match the map", block_start_);
            start_sparse_content();
            return;
        }
        state_ = state::emit_entry;
    }

    void clear_local() {
        local_.clear();
        long_name_.reset();
        long_link_.reset();
        local_ext_bytes_ = 0;
        have_local_ = false;
        psparse_ = {};
    }

    // Old GNU sparse entries (24 bytes each) at p; true when the map is complete (no extension block follows).
    bool read_old_gnu_sparse(const char* p, std::size_t count, bool extended) {
        for (std::size_t i = 0; i < count; ++i, p += 24) {
            if (p[0] == '\0') break;  // an empty slot ends the list, like GNU and BSD tar read it
            const auto off = parse_numeric({p, 12});
            const auto len = parse_numeric({p + 12, 12});
            if (!off || !len || *off < 0 || *len < 0)
                fail(errc::bad_sparse_map, "invalid old GNU sparse entry", block_start_);
            if (sparse_.size() >= max_segments_)
                fail(errc::limit_exceeded, "sparse map has too many entries", block_start_);
            sparse_.push_back({static_cast<std::uint64_t>(*off), static_cast<std::uint64_t>(*len)});
        }
        state_ = extended ? state::gnu_sparse_ext : state::emit_entry;
        return !extended;
    }

    // PAX sparse 1.0: the map is decimal text ("count\n" then "offset\nsize\n" pairs) at the start of the data,
    // padded to a block. True when the map has been read and content can start.
    bool read_sparse_map_1_0() {
        if (map_pad_ == detail::unset_length && stored_remaining_ == 0)
            fail(errc::bad_sparse_map, "sparse map runs past the member data", offset_);
        while (!in_.empty()) {
            if (map_pad_ != detail::unset_length) break;
            if (stored_remaining_ == 0) fail(errc::bad_sparse_map, "sparse map runs past the member data", offset_);
            if (++map_bytes_ > opt_.max_pax_size)
                fail(errc::limit_exceeded, "sparse map larger than max_pax_size", offset_);
            const char c = in_[0];
            consume(1);
            --stored_remaining_;
            if (c >= '0' && c <= '9') {
                ++map_digits_;  // leading zeros are fine, the value is what is range-checked
                if (map_value_ > (std::uint64_t{INT64_MAX} - 9) / 10)
                    fail(errc::bad_sparse_map, "sparse map number out of range", offset_ - 1);
                map_value_ = map_value_ * 10 + static_cast<std::uint64_t>(c - '0');
                continue;
            }
            if (c != '\n' || map_digits_ == 0) fail(errc::bad_sparse_map, "malformed sparse map", offset_ - 1);
            const std::uint64_t v = map_value_;
            map_value_ = 0;
            map_digits_ = 0;
            if (map_numbers_ == 0) {
                if (v > max_segments_) fail(errc::limit_exceeded, "sparse map has too many entries", offset_ - 1);
                map_count_ = v;
                sparse_.reserve(static_cast<std::size_t>(v));
            } else if (map_numbers_ % 2 == 1) {
                sparse_.push_back({v, detail::unset_length});
            } else {
                sparse_.back().length = v;
            }
            ++map_numbers_;
            if (map_numbers_ == 1 + 2 * map_count_) map_pad_ = detail::padding_of(map_bytes_);
        }
        if (map_pad_ == detail::unset_length) return false;
        // Skip the NUL padding of the map's last block; it belongs to the member data.
        const std::size_t n = std::min<std::uint64_t>({map_pad_, in_.size(), stored_remaining_});
        consume(n);
        stored_remaining_ -= n;
        map_pad_ -= n;
        if (map_pad_ != 0 && stored_remaining_ == 0)
            fail(errc::bad_sparse_map, "sparse map runs past the member data", offset_);
        if (map_pad_ != 0) return false;
        start_sparse_content();
        return true;
    }

    // Validates the map against the real size and the stored data, then content starts.
    void start_sparse_content() {
        std::uint64_t prev_end = 0, stored = 0;
        for (const auto& s : sparse_) {
            if (s.length == detail::unset_length)
                fail(errc::bad_sparse_map, "sparse entry without a size", block_start_);
            if (s.offset > static_cast<std::uint64_t>(INT64_MAX) ||
                s.length > static_cast<std::uint64_t>(INT64_MAX) - s.offset)
                fail(errc::bad_sparse_map, "sparse entry out of range", block_start_);
            const std::uint64_t end = s.offset + s.length;
            if (s.offset < prev_end || end > realsize_)
                fail(errc::bad_sparse_map, "sparse entries overlap, are unsorted or pass the real size", block_start_);
            prev_end = end;
            stored += s.length;
        }
        if (stored != stored_remaining_)
            fail(errc::bad_sparse_map, "sparse map does not match the stored data size", block_start_);
        sparse_active_ = true;
        seg_index_ = 0;
        logical_pos_ = 0;
        entry_.size = realsize_;
        content_remaining_ = realsize_;
        state_ = state::emit_entry;
    }

    std::optional<event> next_content() {
        if (content_remaining_ == 0) {
            skip_remaining_ = stored_remaining_ + pad_;
            state_ = state::skip;
            return event::entry_end;
        }
        if (!sparse_active_) {
            if (in_.empty()) return std::nullopt;
            const std::size_t n = std::min<std::uint64_t>(content_remaining_, in_.size());
            return emit(in_.first(n), true);
        }
        // Sparse: holes as zeros, segments from the stored data, in logical order.
        while (seg_index_ < sparse_.size() && logical_pos_ >= sparse_[seg_index_].offset + sparse_[seg_index_].length)
            ++seg_index_;
        const std::uint64_t next_data = seg_index_ < sparse_.size() ? sparse_[seg_index_].offset : realsize_;
        if (logical_pos_ < next_data) {
            const std::size_t n = std::min<std::uint64_t>(next_data - logical_pos_, detail::zeros.size());
            return emit({detail::zeros.data(), n}, false);
        }
        if (in_.empty()) return std::nullopt;
        const auto& s = sparse_[seg_index_];
        const std::size_t n = std::min<std::uint64_t>(s.offset + s.length - logical_pos_, in_.size());
        return emit(in_.first(n), true);
    }

    event emit(std::span<const char> slice, bool from_input) noexcept {
        data_ = slice;
        if (from_input) {
            consume(slice.size());
            stored_remaining_ -= slice.size();
        }
        content_remaining_ -= slice.size();
        logical_pos_ += slice.size();
        return event::data;
    }

    reader_options opt_;
    std::size_t max_segments_;
    state state_ = state::header;
    std::span<const char> in_;
    std::span<const char> data_;
    std::uint64_t offset_ = 0;
    std::array<char, block_size> block_{};
    std::size_t block_fill_ = 0;
    std::uint64_t block_start_ = 0;  // offset of the last header block taken
    header hdr_;
    entry entry_;
    std::uint64_t entries_ = 0;
    bool in_member_ = false;

    // Extension headers waiting for their member.
    char ext_type_ = 0;
    std::string ext_buf_;
    std::uint64_t ext_size_ = 0, ext_start_ = 0;
    std::size_t local_ext_bytes_ = 0;
    bool have_local_ = false;
    std::optional<std::string> long_name_, long_link_;
    detail::pax_overrides global_, local_;
    detail::pax_sparse psparse_;

    // Current member's data area.
    std::uint64_t stored_remaining_ = 0, content_remaining_ = 0, pad_ = 0, skip_remaining_ = 0;
    bool sparse_active_ = false;
    std::vector<detail::sparse_segment> sparse_;
    std::uint64_t realsize_ = 0, logical_pos_ = 0;
    std::size_t seg_index_ = 0;
    std::uint64_t map_numbers_ = 0, map_count_ = 0, map_value_ = 0, map_bytes_ = 0, map_pad_ = 0;
    std::size_t map_digits_ = 0;
};

}  // namespace berth::tar
