// Workload generator for benchmarks/tar/run, plus an in-process pack/unpack timer for berth alone.
//
//   bench_tar gen-small DIR        20,000 files of 1-8 KiB in 3 directory levels (deterministic content)
//   bench_tar gen-big DIR BYTES    one file of BYTES pseudo-random bytes
//   bench_tar inproc DIR SCRATCH   packs DIR to memory-less /dev/null and unpacks it into SCRATCH, in-process
#include <berth/tar/extract.hpp>
#include <berth/tar/packer.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

void fill(std::vector<char>& buf, std::uint64_t& state) {
    for (std::size_t i = 0; i + 8 <= buf.size(); i += 8) {
        state ^= state << 13;  // xorshift64: cheap and incompressible enough
        state ^= state >> 7;
        state ^= state << 17;
        std::memcpy(buf.data() + i, &state, 8);
    }
}

void write_file(const fs::path& p, const std::vector<char>& buf, std::size_t n) {
    int fd = ::open(p.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ::write(fd, buf.data(), n) != static_cast<ssize_t>(n)) {
        std::perror(p.c_str());
        std::exit(1);
    }
    ::close(fd);
}

int gen_small(const fs::path& root) {
    std::uint64_t state = 88172645463325252ull;
    std::vector<char> buf(8192);
    int files = 0;
    for (int a = 0; a < 10; ++a)
        for (int b = 0; b < 10; ++b)
            for (int c = 0; c < 10; ++c) {
                // append(), not "d" + ...: g++ 12 at -O3 warns falsely (-Wrestrict) about operator+ (GCC PR 105329)
                fs::path d = root / std::string("d").append(std::to_string(a)) /
                             std::string("e").append(std::to_string(b)) / std::string("f").append(std::to_string(c));
                fs::create_directories(d);
                for (int i = 0; i < 20; ++i, ++files) {
                    fill(buf, state);
                    std::size_t n = 1024 + state % (7 * 1024 + 1);
                    write_file(d / ("file" + std::to_string(i) + ".dat"), buf, n);
                }
            }
    std::printf("%d files\n", files);
    return 0;
}

int gen_big(const fs::path& file, std::uint64_t bytes) {
    std::uint64_t state = 88172645463325252ull;
    std::vector<char> buf(1 << 20);
    int fd = ::open(file.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    for (std::uint64_t done = 0; done < bytes;) {
        fill(buf, state);
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), bytes - done));
        if (::write(fd, buf.data(), n) != static_cast<ssize_t>(n)) return std::perror("write"), 1;
        done += n;
    }
    ::close(fd);
    return 0;
}

int inproc(const fs::path& dir, const fs::path& scratch) {
    using clock = std::chrono::steady_clock;
    std::vector<char> buf(1 << 20);
    auto t0 = clock::now();
    berth::tar::packer p(dir, "");
    std::uint64_t total = 0;
    while (std::size_t n = p.read(buf)) total += n;
    auto t1 = clock::now();
    fs::remove_all(scratch);
    fs::create_directories(scratch);
    berth::tar::packer p2(dir, "");
    berth::tar::unpacker u(scratch);
    auto t2 = clock::now();
    while (std::size_t n = p2.read(buf)) u.feed({buf.data(), n});
    u.finish();
    auto t3 = clock::now();
    std::printf("pack %.3f s (%llu bytes), pack+unpack %.3f s\n", std::chrono::duration<double>(t1 - t0).count(),
                static_cast<unsigned long long>(total), std::chrono::duration<double>(t3 - t2).count());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> a(argv + 1, argv + argc);
    if (a.size() == 2 && a[0] == "gen-small") return gen_small(a[1]);
    if (a.size() == 3 && a[0] == "gen-big") return gen_big(a[1], std::stoull(a[2]));
    if (a.size() == 3 && a[0] == "inproc") return inproc(a[1], a[2]);
    std::fprintf(stderr, "usage: bench_tar gen-small DIR | gen-big FILE BYTES | inproc DIR SCRATCH\n");
    return 2;
}
