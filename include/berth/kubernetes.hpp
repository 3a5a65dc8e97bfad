#pragma once
// The Kubernetes layer: kubeconfigs, the API-server client, typed pods, watches and logs; exec in a pod's container
// over WebSocket (v5/v4 channel protocols) and tar copies through it; and the evaluation backend on top:
// build_container on a kube_cluster, a pod_evaluation handle that exec, copies, logs and cleanup_container take,
// and the evaluations of a run listed and cleaned up by label.
#include <berth/version.hpp>  // first: the C++20 check
#include <berth/kubernetes/build_container.hpp>
#include <berth/kubernetes/client.hpp>
#include <berth/kubernetes/client_core.hpp>
#include <berth/kubernetes/cluster.hpp>
#include <berth/kubernetes/copy.hpp>
#include <berth/kubernetes/error.hpp>
#include <berth/kubernetes/evaluation.hpp>
#include <berth/kubernetes/evaluation_errors.hpp>
#include <berth/kubernetes/evaluation_ops.hpp>
#include <berth/kubernetes/evaluations.hpp>
#include <berth/kubernetes/exec.hpp>
#include <berth/kubernetes/exec_channel.hpp>
#include <berth/kubernetes/kubeconfig.hpp>
#include <berth/kubernetes/names.hpp>
#include <berth/kubernetes/pod.hpp>
#include <berth/kubernetes/pod_removal.hpp>
#include <berth/kubernetes/pod_spec.hpp>
#include <berth/kubernetes/pod_wait.hpp>
#include <berth/kubernetes/pods.hpp>
#include <berth/kubernetes/watch.hpp>
