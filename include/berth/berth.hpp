#pragma once
// berth: a header-only C++20 client for Docker and Podman engines, and the evaluation-container toolkit on top.
#include <berth/version.hpp>  // first: the C++20 check
#include <berth/engine/client.hpp>
#include <berth/transport/socket_transport.hpp>
#include <berth/eval.hpp>
#include <berth/cluster.hpp>
#include <berth/tar/tar.hpp>
#include <berth/with_timeout.hpp>
