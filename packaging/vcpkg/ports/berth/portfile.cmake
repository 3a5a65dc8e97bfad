# An overlay port: vcpkg install berth --overlay-ports=packaging/vcpkg/ports (from a checkout), or point
# SOURCE_PATH at a release archive with vcpkg_from_git/vcpkg_from_github in a registry.
set(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../../../..")
vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS -DBERTH_BUILD_TESTS=OFF -DBERTH_BUILD_EXAMPLES=OFF -DBERTH_BUILD_BENCHMARKS=OFF)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(CONFIG_PATH lib/cmake/berth)
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug" "${CURRENT_PACKAGES_DIR}/lib")
set(VCPKG_POLICY_EMPTY_PACKAGE enabled)
file(INSTALL "${SOURCE_PATH}/README.md" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}" RENAME copyright)
