// SPDX-License-Identifier: BSL-1.0
// The downstream program every consumer check builds (scripts/consumers): CMake find_package, add_subdirectory and
// FetchContent, pkg-config, Meson as a subproject and installed, Conan's test_package. It uses each library berth's
// package must put on the link line (Boost.JSON, zlib) and stays away from Asio, so each build takes seconds
// (scripts/consumers checks every header under strict warnings separately).
#include <berth/engine/json.hpp>
#include <berth/tar/gzip.hpp>
#include <berth/tar/reader.hpp>
#include <berth/tar/writer.hpp>
#include <berth/version.hpp>

#include <iostream>
#include <string>

int main() {
    // A one-member .tar.gz written and read back: the tar codec and zlib.
    std::string gz;
    auto append = [&](std::span<const char> bytes) { gz.append(bytes.data(), bytes.size()); };
    berth::tar::gzip_sink<decltype(append)> compress(append);
    {
        berth::tar::writer tar(std::ref(compress));
        berth::tar::entry e;
        e.name = "hello.txt";
        e.size = 5;
        tar.add(e);
        tar.write(std::string_view("hello"));
        tar.finish();
    }
    compress.finish();

    berth::tar::gunzip decompress;
    berth::tar::reader reader;
    std::string name, content;
    decompress.feed(gz, [&](std::span<const char> bytes) {
        reader.feed(bytes);
        for (auto ev = reader.next(); ev != berth::tar::reader::event::need_more; ev = reader.next()) {
            if (ev == berth::tar::reader::event::end) break;
            if (ev == berth::tar::reader::event::entry) name = reader.current().name;
            if (ev == berth::tar::reader::event::data) content.append(reader.data().data(), reader.data().size());
        }
    });
    decompress.finish();

    // An engine-style reply through berth's JSON reader: Boost.JSON.
    const auto reply = berth::json_read::parse(R"({"ApiVersion":"1.41"})", "/version");

    const bool ok = name == "hello.txt" && content == "hello" && reply.at("ApiVersion").as_string() == "1.41";
    std::cout << "consumer of berth " << BERTH_VERSION_STRING << ": " << (ok ? "ok" : "FAILED") << '\n';
    return ok ? 0 : 1;
}
