# SPDX-License-Identifier: BSL-1.0
# Conan 2 recipe for berth, a header-only library. From a checkout: conan create packaging/conan
# (scripts/consumers runs it with test_package; docs/guide.md shows a profile using the system's Boost and zlib).
import os
import re

from conan import ConanFile
from conan.errors import ConanInvalidConfiguration
from conan.tools.build import check_min_cppstd
from conan.tools.files import copy, load
from conan.tools.layout import basic_layout

required_conan_version = ">=2.0"


class BerthConan(ConanFile):
    name = "berth"
    license = "BSL-1.0"
    description = ("Header-only C++20 client for Docker and Podman engines on Boost.Asio coroutines, "
                   "with a streaming tar codec and evaluation-container helpers")
    topics = ("docker", "podman", "asio", "coroutines", "tar", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    no_copy_source = True

    @property
    def _checkout(self):
        return os.path.join(self.recipe_folder, "..", "..")

    def set_version(self):
        # The version is written once, in include/berth/version.hpp.
        header = load(self, os.path.join(self._checkout, "include", "berth", "version.hpp"))
        self.version = re.search(r'#define BERTH_VERSION_STRING "([0-9.]+)"', header).group(1)

    def export_sources(self):
        copy(self, "*.hpp", os.path.join(self._checkout, "include"), os.path.join(self.export_sources_folder, "include"))
        copy(self, "LICENSE", self._checkout, self.export_sources_folder)

    def layout(self):
        basic_layout(self, src_folder=".")

    def requirements(self):
        # Boost.JSON is a compiled library; Asio and Beast are headers of the same package. zlib for .tar.gz.
        self.requires("boost/[>=1.81.0]", transitive_headers=True, transitive_libs=True)
        self.requires("zlib/[>=1.2.11 <2]", transitive_headers=True, transitive_libs=True)

    def validate(self):
        check_min_cppstd(self, 20)
        if self.settings.os != "Linux":
            raise ConanInvalidConfiguration("berth supports Linux only (unix sockets, openat2, Linux engines)")
        # A Boost from [platform_requires] (the system's) is not in the graph and has no options to check.
        if "boost" in self.dependencies:
            boost = self.dependencies["boost"]
            if boost.options.get_safe("header_only"):
                raise ConanInvalidConfiguration("berth needs Boost.JSON compiled: boost/*:header_only=False")
            if boost.options.get_safe("without_json"):
                raise ConanInvalidConfiguration("berth needs Boost.JSON: boost/*:without_json=False")

    def package_id(self):
        self.info.clear()

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        copy(self, "*.hpp", os.path.join(self.source_folder, "include"), os.path.join(self.package_folder, "include"))

    def package_info(self):
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        self.cpp_info.set_property("cmake_file_name", "berth")
        self.cpp_info.set_property("cmake_target_name", "berth::berth")
        self.cpp_info.set_property("pkg_config_name", "berth")
        self.cpp_info.system_libs = ["pthread"]
        # A dependency from [platform_requires] (the system's Boost or zlib) is not in the graph, so generators
        # have no targets for it: berth then names its libraries itself, as system libraries.
        self.cpp_info.requires = ["boost::headers", "boost::json"] if "boost" in self.dependencies else []
        if "boost" not in self.dependencies:
            self.cpp_info.system_libs.append("boost_json")
        if "zlib" in self.dependencies:
            self.cpp_info.requires.append("zlib::zlib")
        else:
            self.cpp_info.system_libs.append("z")
