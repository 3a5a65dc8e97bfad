#pragma once
// What the evaluation layer hands around: a running container and the client that reaches it (the Python
// module's Container object). Cheap to copy; the client must outlive it. A container build_container did not make
// is wrapped the same way, by id (or name): berth::container{&client, id, name}; the name is only used in logs.
#include <berth/engine/client.hpp>

#include <string>

namespace berth {

template <transport Transport>
struct basic_container {
    basic_client<Transport>* client = nullptr;
    std::string id;
    std::string name;

    basic_client<Transport>& engine() const { return *client; }
};

using container = basic_container<socket_transport>;

}  // namespace berth
