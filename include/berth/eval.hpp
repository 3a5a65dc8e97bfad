#pragma once
// The evaluation layer: the seed's docker_utils in C++.
#include <berth/version.hpp> // first: the C++20 check
#include <berth/eval/build_container.hpp>
#include <berth/eval/cleanup_container.hpp>
#include <berth/eval/copy.hpp>
#include <berth/eval/exec.hpp>
#include <berth/eval/logger.hpp>
