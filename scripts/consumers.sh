#!/usr/bin/env bash
# Consumer checks: cosock used the four ways README.md describes, each with
# and without io_uring, by the tiny projects in tests/consumers (every one
# builds tests/consumers/main.cpp: a scheduler, a socket pair, an echo, the
# backend and COSOCK_VERSION_STRING; it checks it got io_uring or not):
#   meson-*     a Meson project with cosock as a subproject: a link to this
#               tree (-Dcosock:io_uring=enabled) and a [wrap-file] of an
#               archive of it (-Dcosock:io_uring=disabled)
#   pkgconfig-* g++ -std=c++23 with pkg-config --cflags --libs cosock(-tls),
#               from a meson install with -Dio_uring=enabled or =disabled
#   cmake-find-* find_package(cosock 0.2 CONFIG) from the first install,
#               COSOCK_IO_URING ON (with cosock::tls) or OFF; and what
#               find_package must refuse (other versions, io_uring from the
#               install without it)
#   cmake-sub-*, cmake-fetch-*  add_subdirectory of this tree (AUTO, OFF) and
#               FetchContent of the archive (ON, OFF); and ON without liburing
#               must stop the configure with a clear message
# plus a check that meson.build, version.hpp, CMakeLists.txt, cosock.pc and
# cosockConfigVersion.cmake carry the same version. Programs are built at -O0,
# CONSUMER_JOBS (default: the number of cores) at a time, in a temporary
# directory (kept with KEEP=1). The last line is "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
consumers=$root/tests/consumers
jobs=${CONSUMER_JOBS:-$(nproc)}
work=$(mktemp -d "${TMPDIR:-/tmp}/cosock-consumers.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then echo "work directory: $work"; else trap 'rm -rf "$work"' EXIT; fi
mkdir -p "$work/log"
version=$(sed -nE "s/^ *version: '([^']*)',.*/\1/p" meson.build | head -1)
start_time=$SECONDS

# ---------------------------------------------------------------- setup
# Two installs (with and without io_uring) and an archive of this tree as it
# is now (tracked and untracked files, what .gitignore leaves out excepted).
setup_failed=""
install_cosock() { # NAME MESON-ARGS...
    local name=$1; shift
    meson setup "$work/build-$name" --prefix="$work/prefix-$name" -Dtests=disabled -Dexamples=false "$@" &&
        meson install -C "$work/build-$name" --quiet
}
for v in uring:-Dio_uring=enabled nouring:-Dio_uring=disabled; do
    if ! install_cosock "${v%%:*}" "${v#*:}" >"$work/log/install-${v%%:*}" 2>&1; then
        setup_failed+=" install-${v%%:*}"
        tail -20 "$work/log/install-${v%%:*}"
    fi
done
pc_dir() { dirname "$(find "$work/prefix-$1" -name cosock.pc | head -1)"; }
archive=$work/cosock-$version.tar.gz
git ls-files -co --exclude-standard -z | tar -czf "$archive" --null -T - --transform "s,^,cosock-$version/," ||
    setup_failed+=" archive"
archive_hash=$(sha256sum "$archive" | cut -d' ' -f1)

# ---------------------------------------------------------------- helpers
# run_consumer EXE io_uring=yes|no [tls]: runs it, checks the version it prints.
run_consumer() {
    local out
    out=$("$@" 2>&1)
    local status=$?
    echo "$out"
    [ $status -eq 0 ] || { echo "exit status $status"; return 1; }
    grep -qx "cosock $version, backend .*" <<<"$out" || { echo "no line \"cosock $version, backend ...\""; return 1; }
}
# configured_version LOG: the version the consumer's build system saw must be ours.
configured_version() {
    grep -q "consumer: cosock version $version\$" "$1" ||
        { echo "the build system saw another version:"; grep "consumer: cosock version" "$1"; return 1; }
}
copy_project() { # KIND DIR
    mkdir -p "$2" && cp -r "$consumers/$1/." "$2/" && cp "$consumers/main.cpp" "$2/"
}

# ---------------------------------------------------------------- cases
versions() {
    local h_major h_minor h_patch h_string pc cmake_version cmakelists
    h_major=$(sed -nE 's/^#define COSOCK_VERSION_MAJOR ([0-9]+)$/\1/p' include/cosock/version.hpp)
    h_minor=$(sed -nE 's/^#define COSOCK_VERSION_MINOR ([0-9]+)$/\1/p' include/cosock/version.hpp)
    h_patch=$(sed -nE 's/^#define COSOCK_VERSION_PATCH ([0-9]+)$/\1/p' include/cosock/version.hpp)
    h_string=$(sed -nE 's/^#define COSOCK_VERSION_STRING "([^"]*)"$/\1/p' include/cosock/version.hpp)
    pc=$(PKG_CONFIG_PATH=$(pc_dir uring) pkg-config --modversion cosock)
    cmake_version=$(sed -nE 's/^set\(PACKAGE_VERSION "([^"]*)"\)$/\1/p' \
        "$(find "$work/prefix-uring" -name cosockConfigVersion.cmake | head -1)")
    # CMakeLists.txt takes its version from version.hpp; configured, it says which.
    cmakelists=$(cmake -S . -B "$work/build-cmakelists" 2>&1 | sed -nE 's/^-- cosock ([0-9.]+): .*/\1/p')
    echo "meson.build $version; version.hpp $h_major.$h_minor.$h_patch and \"$h_string\";" \
        "CMakeLists.txt $cmakelists; cosock.pc $pc; cosockConfigVersion.cmake $cmake_version"
    for v in "$h_major.$h_minor.$h_patch" "$h_string" "$cmakelists" "$pc" "$cmake_version"; do
        [ "$v" = "$version" ] || { echo "they differ"; return 1; }
    done
}

meson_subproject() { # uring|nouring
    local d=$work/meson-$1 opts=() want=io_uring=yes
    copy_project meson "$d" && mkdir -p "$d/subprojects" || return 1
    if [ "$1" = uring ]; then
        ln -s "$root" "$d/subprojects/cosock"
        opts=(-Dcosock:io_uring=enabled)
    else
        cat >"$d/subprojects/cosock.wrap" <<EOF
[wrap-file]
directory = cosock-$version
source_url = file://$archive
source_filename = cosock-$version.tar.gz
source_hash = $archive_hash
EOF
        opts=(-Dcosock:io_uring=disabled) want=io_uring=no
    fi
    # forcefallback: the subproject even if a cosock.pc is installed here
    (cd "$d" && meson setup build --force-fallback-for=cosock "${opts[@]}") >"$d/setup.log" 2>&1 ||
        { cat "$d/setup.log"; return 1; }
    grep -E "Subproject cosock|Dependency cosock|doctest" "$d/setup.log"
    configured_version "$d/setup.log" && ninja -C "$d/build" >/dev/null &&
        run_consumer "$d/build/consumer" "$want"
}

pkgconfig_consumer() { # uring|nouring
    local d=$work/pkgconfig-$1 pkg=cosock extra=() args=() flags
    mkdir -p "$d"
    if [ "$1" = uring ]; then pkg=cosock-tls extra=(-DCONSUMER_TLS) args=(io_uring=yes tls); else args=(io_uring=no); fi
    flags=$(PKG_CONFIG_PATH=$(pc_dir "$1") pkg-config --cflags --libs "$pkg") || return 1
    echo "pkg-config --cflags --libs $pkg: $flags"
    if grep -q -- "-std=" <<<"$flags"; then echo "the flags force a language standard"; return 1; fi
    # shellcheck disable=SC2086 # the flags are words
    g++ -std=c++23 -O0 "${extra[@]}" "$consumers/main.cpp" -o "$d/consumer" $flags &&
        run_consumer "$d/consumer" "${args[@]}"
}

cmake_find() { # uring|nouring
    local d=$work/cmake-find-$1 opts=() args=()
    copy_project cmake-find "$d" || return 1
    if [ "$1" = uring ]; then opts=(-DCOSOCK_IO_URING=ON -DCONSUMER_TLS=ON) args=(io_uring=yes tls)
    else opts=(-DCOSOCK_IO_URING=OFF) args=(io_uring=no); fi
    cmake -S "$d" -B "$d/build" -DCMAKE_PREFIX_PATH="$work/prefix-uring" "${opts[@]}" >"$d/setup.log" 2>&1 ||
        { cat "$d/setup.log"; return 1; }
    grep -E "cosock" "$d/setup.log"
    configured_version "$d/setup.log" && cmake --build "$d/build" >/dev/null &&
        run_consumer "$d/build/consumer" "${args[@]}"
}

# What find_package must refuse, and what it must accept: one configure per
# install (the first find_package in a directory makes the targets).
cmake_find_refusals() {
    local d=$work/cmake-find-refusals status=0
    mkdir -p "$d"
    cat >"$d/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.14)
project(refusals LANGUAGES CXX)
set(CMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY ON)
function(expect found)
  unset(cosock_DIR CACHE)
  find_package(cosock ${ARGN} CONFIG QUIET)
  set(call "find_package(cosock ${ARGN})")
  if(DEFINED COSOCK_IO_URING)
    set(call "COSOCK_IO_URING ${COSOCK_IO_URING}, ${call}")
  endif()
  if(found AND NOT cosock_FOUND OR NOT found AND cosock_FOUND)
    message(SEND_ERROR "${call} found: ${cosock_FOUND}, expected ${found}")
  else()
    message(STATUS "as expected: ${call} found: ${cosock_FOUND}")
  endif()
endfunction()
if(PREFIX MATCHES "nouring$")
  expect(FALSE 0.2 COMPONENTS io_uring)
  set(COSOCK_IO_URING ON)
  expect(FALSE 0.2)
  unset(COSOCK_IO_URING)
  expect(TRUE 0.2)
  if(TARGET cosock::cosock)
    get_target_property(defs cosock::cosock INTERFACE_COMPILE_DEFINITIONS)
    if(defs)
      message(SEND_ERROR "cosock::cosock from the install without io_uring has ${defs}")
    endif()
  endif()
else()
  expect(FALSE 0.1)
  expect(FALSE 0.3)
  expect(FALSE 1.0)
  expect(FALSE 0.2 COMPONENTS nonsense)
  expect(TRUE 0.2)
  expect(TRUE 0.2.0 EXACT)
  expect(TRUE 0)
  expect(TRUE 0.1...0.5)
endif()
EOF
    for prefix in uring nouring; do
        cmake -S "$d" -B "$d/build-$prefix" -DCMAKE_PREFIX_PATH="$work/prefix-$prefix" -DPREFIX="prefix-$prefix" \
            >"$d/$prefix.log" 2>&1 || status=1
        grep -E "expected|Error|error" "$d/$prefix.log" | sed "s/^/$prefix: /"
    done
    return $status
}

cmake_source() { # sub|fetch AUTO|ON|OFF
    local d=$work/cmake-$1-$2 opts=(-DCOSOCK_IO_URING="$2") want=io_uring=yes args=()
    copy_project cmake-sub "$d" || return 1
    if [ "$1" = sub ]; then opts+=(-DCOSOCK_SOURCE="$root"); else opts+=(-DCOSOCK_URL="file://$archive"); fi
    [ "$2" = OFF ] && want=io_uring=no
    args=("$want")
    if [ "$1-$2" = sub-AUTO ]; then opts+=(-DCONSUMER_TLS=ON) args+=(tls); fi
    cmake -S "$d" -B "$d/build" "${opts[@]}" >"$d/setup.log" 2>&1 || { cat "$d/setup.log"; return 1; }
    grep -E "cosock" "$d/setup.log"
    configured_version "$d/setup.log" && cmake --build "$d/build" >/dev/null &&
        run_consumer "$d/build/consumer" "${args[@]}"
}

# COSOCK_IO_URING=ON where pkg-config finds no liburing: a clear error.
cmake_source_missing_liburing() {
    local d=$work/cmake-sub-missing
    copy_project cmake-sub "$d" || return 1
    if PKG_CONFIG_LIBDIR=$d/none cmake -S "$d" -B "$d/build" -DCOSOCK_SOURCE="$root" -DCOSOCK_IO_URING=ON \
        >"$d/setup.log" 2>&1; then
        echo "configured, though liburing cannot be found"; return 1
    fi
    grep -A2 "COSOCK_IO_URING is ON" "$d/setup.log" || { cat "$d/setup.log"; return 1; }
}

# ---------------------------------------------------------------- run
names=() pids=()
start() { # NAME FUNCTION ARGS...: in the background, at most $jobs at once
    local name=$1; shift
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    names+=("$name")
    ("$@") >"$work/log/$name" 2>&1 &
    pids+=($!)
}
if [ -n "$setup_failed" ]; then
    echo "setup failed:$setup_failed"
    echo "0 passed, 1 failed"
    exit 1
fi
start versions versions
start meson-uring meson_subproject uring
start meson-nouring meson_subproject nouring
start pkgconfig-uring-tls pkgconfig_consumer uring
start pkgconfig-nouring pkgconfig_consumer nouring
start cmake-find-uring-tls cmake_find uring
start cmake-find-nouring cmake_find nouring
start cmake-find-refusals cmake_find_refusals
start cmake-sub-auto-tls cmake_source sub AUTO
start cmake-sub-off cmake_source sub OFF
start cmake-fetch-on cmake_source fetch ON
start cmake-fetch-off cmake_source fetch OFF
start cmake-sub-missing-liburing cmake_source_missing_liburing

passed=0 failed=0
for i in "${!names[@]}"; do
    if wait "${pids[$i]}"; then
        passed=$((passed + 1))
        echo "ok    ${names[$i]}"
        grep -E "^(echo over|io_uring compiled|tls:|meson.build|pkg-config)|as expected|COSOCK_IO_URING is ON|Subproject cosock|Found cosock|-- cosock [0-9]" \
            "$work/log/${names[$i]}" | sed 's/^/        /'
    else
        failed=$((failed + 1))
        echo "FAIL  ${names[$i]}:"
        tail -40 "$work/log/${names[$i]}" | sed 's/^/        /'
    fi
done
echo "($((SECONDS - start_time)) s, $jobs at a time)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
