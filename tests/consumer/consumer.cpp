// Compiles against an installed berth and checks a DOCKER_HOST parse and a tar header round trip: enough to show
// the package's include paths and links are complete.
#include <berth/berth.hpp>

#include <iostream>

int main() {
    auto address = berth::parse_docker_host("unix:///tmp/berth.sock");
    std::string block;
    berth::tar::entry e;
    e.name = "hello.txt";
    e.size = 5;
    berth::tar::encode_header(e, block);
    berth::tar::reader r;
    r.feed(block);
    bool ok = address.path == "/tmp/berth.sock" && r.next() == berth::tar::reader::event::entry && r.current().name == "hello.txt";
    std::cout << (ok ? "consumer: ok\n" : "consumer: FAILED\n");
    return ok ? 0 : 1;
}
