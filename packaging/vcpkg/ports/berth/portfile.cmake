# SPDX-License-Identifier: BSL-1.0
# Overlay port, from a checkout: vcpkg install berth --overlay-ports=packaging/vcpkg/ports
# For a registry, SOURCE_PATH comes from vcpkg_from_github(OUT_SOURCE_PATH SOURCE_PATH REPO ... REF v${VERSION}
# SHA512 ...) instead. packaging/vcpkg/check holds this port to the maintainer guide's rules.
set(VCPKG_BUILD_TYPE release) # header-only: one configuration is all there is
get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../../../.." ABSOLUTE)

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        -DBERTH_BUILD_TESTS=OFF
        -DBERTH_BUILD_EXAMPLES=OFF
        -DBERTH_BUILD_BENCHMARKS=OFF
        -DBERTH_INSTALL=ON
        -DBERTH_INSTALL_CMAKEDIR=share/${PORT}
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup()
vcpkg_fixup_pkgconfig()

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/share/doc") # the licence goes to copyright below
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
