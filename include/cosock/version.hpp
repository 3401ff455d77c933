// cosock's version, for code that must tell releases apart. Each release
// changes it here and in meson.build's project(); the Meson build refuses to
// configure when the two differ, CMakeLists.txt reads it from this file, and
// scripts/consumers.sh checks every installed copy (cosock.pc,
// cosockConfigVersion.cmake) against it.
#pragma once

#define COSOCK_VERSION_MAJOR 0
#define COSOCK_VERSION_MINOR 2
#define COSOCK_VERSION_PATCH 0
#define COSOCK_VERSION_STRING "0.2.0"

/// One number that grows with each release: 10000 * major + 100 * minor + patch.
#define COSOCK_VERSION (COSOCK_VERSION_MAJOR * 10000 + COSOCK_VERSION_MINOR * 100 + COSOCK_VERSION_PATCH)
