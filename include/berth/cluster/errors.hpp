#pragma once
// Errors of a cluster that a harness can act on: a node whose engine cannot be reached or whose address cannot be
// used (each names the node: its Swarm id, hostname and engine address), and a task Swarm could not place or run
// (Swarm's own reason, verbatim).
#include <berth/transport/docker_host.hpp>
#include <berth/transport/error.hpp>

#include <berth/error.hpp>

#include <string>
#include <type_traits>

namespace berth {

enum class cluster_errc {
    task_unplaceable = 1,  // Swarm cannot place the task (no node has the resources or meets the constraints)
    task_failed,           // the node rejected or failed the task
    task_timed_out,        // the task did not run within the time allowed
    node_address,          // a node's engine address is missing or unusable
};

inline const char* errc_message(cluster_errc e) noexcept {
    switch (e) {
    case cluster_errc::task_unplaceable: return "Swarm cannot place the task";
    case cluster_errc::task_failed: return "the task failed";
    case cluster_errc::task_timed_out: return "the task did not run in time";
    case cluster_errc::node_address: return "the node's engine address is unusable";
    }
    return "cluster error";
}
inline const boost::system::error_category& cluster_category() noexcept {
    static const detail::errc_category<cluster_errc> category("berth.cluster", errc_message);
    return category;
}
inline boost::system::error_code make_error_code(cluster_errc e) noexcept {
    return {static_cast<int>(e), cluster_category()};
}

}  // namespace berth

template <>
struct boost::system::is_error_code_enum<berth::cluster_errc> : std::true_type {};

namespace berth {

// Who a node is, for messages: "node worker-2 (id 7xk2...) at tcp://127.0.0.2:2376".
struct node_identity {
    std::string id{};        // the Swarm node id
    std::string hostname{};  // Description.Hostname
    std::string address{};   // the engine address the node is reached at (may be empty before it is known)

    std::string describe() const {
        return "node " + (hostname.empty() ? std::string("?") : hostname) + " (id " + id + ")" +
               (address.empty() ? std::string() : " at " + address);
    }
};

// The engine of a node could not be reached (refused, reset, timed out, TLS refused). A connection_error, so code
// that handles transport failures by their error_code keeps working; what() starts with the node's identity.
class node_unreachable_error : public connection_error {
public:
    node_unreachable_error(node_identity node, const boost::system::system_error& cause)
        : connection_error(cause.code(), node.describe(), cause.what()), node_(std::move(node)) {}
    const node_identity& node() const noexcept { return node_; }

private:
    node_identity node_;
};

// A node's engine address is missing or unusable: no engine label, a label that is not a tcp:// address, no
// entry in the explicit map. An invalid_host, as a bad DOCKER_HOST is; code() is cluster_errc::node_address.
class node_address_error : public invalid_host {
public:
    node_address_error(node_identity node, const std::string& why)
        : invalid_host(cluster_errc::node_address, node.describe() + ": " + why), node_(std::move(node)) {}
    const node_identity& node() const noexcept { return node_; }

private:
    node_identity node_;
};

// A service's task did not come to run: Swarm could not place it (no node has the resources, no node meets the
// constraints), the node rejected or failed it, or it did not run within the time allowed. message() is
// Swarm's own (the task's Status.Err, else Status.Message). code() is cluster_errc::task_unplaceable, task_failed
// or task_timed_out.
class task_failed_error : public error {
public:
    task_failed_error(cluster_errc code, std::string service, std::string task_id, std::string state,
                      std::string message, node_identity node = {})
        : error(code, format(code, service, task_id, state, message, node)), service_(std::move(service)),
          task_id_(std::move(task_id)), state_(std::move(state)), message_(std::move(message)), node_(std::move(node)) {
    }
    const std::string& service() const noexcept { return service_; }
    const std::string& task_id() const noexcept { return task_id_; }
    const std::string& state() const noexcept { return state_; }  // Swarm's task state: pending, rejected, failed...
    const std::string& message() const noexcept { return message_; }
    const node_identity& node() const noexcept { return node_; }  // empty id when the task was never placed

private:
    static std::string format(cluster_errc code, const std::string& service, const std::string& task,
                              const std::string& state, const std::string& message, const node_identity& node) {
        std::string what = "service " + service + (task.empty() ? std::string() : ", task " + task) + ": ";
        what += code == cluster_errc::task_unplaceable ? "Swarm cannot place the task"
                : code == cluster_errc::task_failed
                    ? "the task " + state
                    : "the task is still " + (state.empty() ? std::string("not created") : state);
        if (!node.id.empty()) what += " on " + node.describe();
        return what + (message.empty() ? std::string() : ": " + message);
    }
    std::string service_, task_id_, state_, message_;
    node_identity node_;
};

}  // namespace berth
