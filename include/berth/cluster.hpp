#pragma once
// berth on a Docker Swarm cluster: the cluster object, build_container and cleanup_container on it, listing and
// cleanup of a run's evaluations by label, and the typed Swarm API underneath.
#include <berth/version.hpp>  // first: the C++20 check
#include <berth/cluster/build_container.hpp>
#include <berth/cluster/cleanup.hpp>
#include <berth/cluster/cluster.hpp>
#include <berth/cluster/evaluations.hpp>
