#pragma once
// A private engine for a test that restarts it: started from scripts/engine in its own directory, stopped (and its
// state removed) at scope exit, whatever the test did. Never the shared engines.
#include "files.hpp"

#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

namespace berth_test {

struct private_engine {
    std::string kind;
    std::string dir;
    std::string address;  // empty: it did not start (or its base image could not be built)
    static std::filesystem::path script() {
        return std::filesystem::path(BERTH_TEST_DATA_DIR).parent_path().parent_path() / "scripts" / "engine";
    }
    std::string command(const std::string& action) const {
        return "BERTH_ENGINE_DIR=" + dir + " " + script().string() + " " + action + " " + kind;
    }
    // tag: part of the state directory's name (/tmp/berth-TAG-KIND-PID), one per test program that starts one.
    explicit private_engine(std::string k, const std::string& tag = "h22o")
        : kind(std::move(k)), dir("/tmp/berth-" + tag + "-" + kind + "-" + std::to_string(::getpid())) {
        std::string out_file = dir + ".address";
        if (std::system((command("start") + " > " + out_file).c_str()) != 0) return;
        address = read_file(out_file);
        std::filesystem::remove(out_file);
        while (!address.empty() && address.back() == '\n') address.pop_back();
        if (std::system((command("image") + " >/dev/null").c_str()) != 0) address.clear();
    }
    private_engine(const private_engine&) = delete;
    private_engine& operator=(const private_engine&) = delete;
    bool restart() const { return std::system((command("restart") + " >/dev/null").c_str()) == 0; }
    ~private_engine() { (void)std::system((command("stop") + " >/dev/null 2>&1").c_str()); }
};

}  // namespace berth_test
