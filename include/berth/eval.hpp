#pragma once
// The evaluation layer: the Python module's docker_utils in C++ (its exact signatures: the seed profile, seed.hpp).
#include <berth/version.hpp>  // first: the C++20 check
#include <berth/eval/build_container.hpp>
#include <berth/eval/cleanup_container.hpp>
#include <berth/eval/copy.hpp>
#include <berth/eval/exec.hpp>
#include <berth/eval/logger.hpp>
#include <berth/eval/seed.hpp>
