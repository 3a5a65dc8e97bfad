#pragma once
// The tar layer: format codec (header, PAX, reader, writer, gzip) and, on top of it, the filesystem side.
#include <berth/version.hpp>  // first: the C++20 check
#include <berth/tar/dockerignore.hpp>
#include <berth/tar/entry.hpp>
#include <berth/tar/error.hpp>
#include <berth/tar/extract.hpp>
#include <berth/tar/gzip.hpp>
#include <berth/tar/header.hpp>
#include <berth/tar/packer.hpp>
#include <berth/tar/pax.hpp>
#include <berth/tar/reader.hpp>
#include <berth/tar/writer.hpp>
