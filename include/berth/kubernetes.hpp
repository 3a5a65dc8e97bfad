#pragma once
// The Kubernetes layer: kubeconfigs, the API-server client, typed pods, watches and logs; exec in a pod's container
// over WebSocket (v5/v4 channel protocols) and tar copies through it.
#include <berth/version.hpp>  // first: the C++20 check
#include <berth/kubernetes/client.hpp>
#include <berth/kubernetes/client_core.hpp>
#include <berth/kubernetes/copy.hpp>
#include <berth/kubernetes/error.hpp>
#include <berth/kubernetes/exec.hpp>
#include <berth/kubernetes/exec_channel.hpp>
#include <berth/kubernetes/kubeconfig.hpp>
#include <berth/kubernetes/names.hpp>
#include <berth/kubernetes/pod.hpp>
#include <berth/kubernetes/pod_spec.hpp>
#include <berth/kubernetes/pod_wait.hpp>
#include <berth/kubernetes/pods.hpp>
#include <berth/kubernetes/watch.hpp>
