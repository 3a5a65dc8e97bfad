// libFuzzer target: the push reader (through gunzip when the input is gzipped), fed in pseudo-random splits.
// Invariants: only tar::error escapes; data of a member adds up to its size; offsets never run ahead of input.
#include <berth/tar/gzip.hpp>
#include <berth/tar/reader.hpp>

#include <cstdint>
#include <cstdlib>
#include <span>

namespace {

namespace tar = berth::tar;

struct stop {};  // enough output looked at: sparse holes may describe terabytes of zeros

struct driver {
    tar::reader r{tar::reader_options{.max_pax_size = 64 * 1024, .max_path_length = 4096, .max_entries = 10'000}};
    std::uint64_t fed = 0, got = 0, budget = 64 << 20;
    bool in_entry = false, ended = false;

    // Only files have content; other types report the size field they carry.
    std::uint64_t content_size() const { return r.current().type == tar::entry_type::file ? r.current().size : 0; }

    void push(std::span<const char> bytes) {
        if (ended) return;
        r.feed(bytes);
        fed += bytes.size();
        for (;;) {
            const auto ev = r.next();
            if (r.offset() > fed) std::abort();
            switch (ev) {
            case tar::reader::event::need_more: return;
            case tar::reader::event::entry:
                if (in_entry) std::abort();
                in_entry = true;
                got = 0;
                break;
            case tar::reader::event::data:
                if (!in_entry || r.data().empty()) std::abort();
                got += r.data().size();
                if (got > content_size()) std::abort();
                if ((budget -= std::min<std::uint64_t>(budget, r.data().size())) == 0) throw stop{};
                break;
            case tar::reader::event::entry_end:
                if (!in_entry || got != content_size()) std::abort();
                in_entry = false;
                break;
            case tar::reader::event::end: ended = true; return;
            }
        }
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const char> in(reinterpret_cast<const char*>(data), size);
    // Split sizes come from a small PRNG seeded by the input itself, so corpus files stay valid archives.
    std::uint32_t x = 2166136261u ^ static_cast<std::uint32_t>(size);
    if (size) x ^= data[size - 1] * 16777619u;
    auto next_chunk = [&](std::size_t left) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        const std::size_t cap = (x & 3) == 0 ? 1 : (x & 3) == 1 ? 17 : (x & 3) == 2 ? 512 : 4096;
        return std::min<std::size_t>(left, 1 + (x >> 8) % cap);
    };
    driver d;
    try {
        if (tar::looks_gzipped(in)) {
            tar::gunzip g(1 + (x >> 4) % 4096);
            for (std::size_t pos = 0; pos < size;) {
                const std::size_t n = next_chunk(size - pos);
                g.feed(in.subspan(pos, n), [&](std::span<const char> b) { d.push(b); });
                pos += n;
            }
            g.finish();
        } else {
            for (std::size_t pos = 0; pos < size;) {
                const std::size_t n = next_chunk(size - pos);
                d.push(in.subspan(pos, n));
                pos += n;
            }
        }
        if (!d.ended) d.r.finish();
    } catch (const tar::error&) {
    } catch (const stop&) {}
    return 0;
}
