#pragma once
// berth on Kubernetes: exec in a pod's container over WebSocket (v5/v4 channel protocols) and tar copies through it.
#include <berth/version.hpp>  // first: the C++20 check
#include <berth/kubernetes/copy.hpp>
#include <berth/kubernetes/error.hpp>
#include <berth/kubernetes/exec.hpp>
#include <berth/kubernetes/exec_channel.hpp>
#include <berth/kubernetes/names.hpp>
