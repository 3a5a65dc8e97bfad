# Conan 2 recipe for berth (header-only). From a checkout: conan create packaging/conan --build=missing
import os
from conan import ConanFile
from conan.tools.files import copy


class BerthConan(ConanFile):
    name = "berth"
    version = "0.1.0"
    license = "BSL-1.0"
    description = ("Header-only C++20 client for Docker and Podman engines on Boost.Asio coroutines, "
                   "with a streaming tar codec and evaluation-container helpers")
    topics = ("docker", "podman", "asio", "coroutines", "tar", "header-only")
    settings = "os", "compiler", "build_type", "arch"
    package_type = "header-library"
    no_copy_source = True
    exports_sources = "../../include/*"

    def requirements(self):
        # Boost.JSON and Boost.Iostreams are compiled libraries; Asio and Beast are headers of the same package.
        self.requires("boost/[>=1.81.0]", transitive_headers=True, transitive_libs=True)

    def layout(self):
        self.folders.source = "../.."

    def package(self):
        copy(self, "*", src=os.path.join(self.source_folder, "include"), dst=os.path.join(self.package_folder, "include"))

    def package_info(self):
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        self.cpp_info.set_property("cmake_file_name", "berth")
        self.cpp_info.set_property("cmake_target_name", "berth::berth")
        self.cpp_info.requires = ["boost::json", "boost::iostreams", "boost::headers"]
        self.cpp_info.system_libs = ["pthread"]

    def package_id(self):
        self.info.clear()
