// Pulls an image and shows one progress bar per layer on the terminal, redrawn in place, from the same typed
// progress_event callback that builds use (one display serves both). Not a terminal: one line per layer change.
//
//   pull_progress REFERENCE        e.g. pull_progress 127.0.0.1:5000/team/app:1
//
// The engine comes from DOCKER_HOST (else /var/run/docker.sock); credentials from ~/.docker/config.json
// ($DOCKER_CONFIG), its credsStore or credHelpers, as the docker CLI finds them.
#include <berth/berth.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <cstdio>
#include <iostream>
#include <string>
#include <unistd.h>
#include <vector>

namespace asio = boost::asio;

namespace {

// The state of each layer, in the order the engine first named them.
class layer_display {
public:
    explicit layer_display(bool tty) : tty_(tty) {}

    void operator()(const berth::progress_event& e) {
        if (e.step.empty()) {  // "Pulling from ...", "Digest: ...": a line of its own, above the bars
            clear();
            std::cout << e.text << "\n";
            draw();
            return;
        }
        auto& l = layer(e.step);
        l.status = e.name;
        if (e.kind == berth::progress_kind::step_progress && e.total > 0) {
            l.current = e.current;
            l.total = e.total;
        }
        if (e.kind == berth::progress_kind::step_completed || e.kind == berth::progress_kind::step_cached)
            l.current = l.total;
        if (!tty_) {
            if (e.kind != berth::progress_kind::step_progress) std::cout << line(l) << "\n";
            return;
        }
        clear();
        draw();
    }

private:
    struct layer_state {
        std::string id, status;
        std::int64_t current = 0, total = 0;
    };

    layer_state& layer(const std::string& id) {
        for (auto& l : layers_)
            if (l.id == id) return l;
        layers_.push_back({id, {}, 0, 0});
        return layers_.back();
    }

    static std::string line(const layer_state& l) {
        std::string out = l.id.substr(0, 12) + ": " + l.status;
        out.resize(std::max<std::size_t>(out.size(), 36), ' ');
        if (l.total > 0) {
            constexpr std::int64_t width = 30;
            auto filled = static_cast<std::size_t>(width * std::min(l.current, l.total) / l.total);
            out += "[" + std::string(filled, '=') + std::string(static_cast<std::size_t>(width) - filled, ' ') + "] ";
            char sizes[64];
            std::snprintf(sizes, sizeof sizes, "%.1f/%.1f MB", static_cast<double>(l.current) / 1e6,
                          static_cast<double>(l.total) / 1e6);
            out += sizes;
        }
        return out;
    }

    // Moves the cursor back over the bars drawn last time, so the next draw overwrites them.
    void clear() {
        if (!tty_ || drawn_ == 0) return;
        std::cout << "\x1b[" << drawn_ << "F";
        for (std::size_t i = 0; i < drawn_; ++i) std::cout << "\x1b[2K\n";
        std::cout << "\x1b[" << drawn_ << "F";
        drawn_ = 0;
    }
    void draw() {
        if (!tty_) return;
        for (auto& l : layers_) std::cout << line(l) << "\n";
        drawn_ = layers_.size();
        std::cout.flush();
    }

    bool tty_;
    std::vector<layer_state> layers_;
    std::size_t drawn_ = 0;
};

asio::awaitable<int> pull(std::string reference) {
    auto client = berth::client::from_env(co_await asio::this_coro::executor);
    layer_display display(::isatty(STDOUT_FILENO) != 0);
    berth::pull_options options;  // credentials: as the docker CLI finds them
    options.on_progress = std::ref(display);
    auto pulled = co_await client.images().pull(reference, options);
    std::cout << pulled.reference << "\n  id     " << pulled.id << "\n  digest " << pulled.digest << "\n";
    co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: pull_progress REFERENCE\n";
        return 2;
    }
    asio::io_context io;
    auto result = asio::co_spawn(io, pull(argv[1]), asio::use_future);
    io.run();
    try {
        return result.get();
    } catch (const berth::registry_error& e) {  // unauthorized, not found, unreachable: the engine's message
        std::cerr << "pull failed: " << e.message() << "\n";
    } catch (const std::exception& e) { std::cerr << "pull failed: " << e.what() << "\n"; }
    return 1;
}
