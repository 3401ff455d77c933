#!/usr/bin/env bash
# Installs what is missing, builds cosock's examples and runs the echo demo.
# Arguments go to the demo, e.g. scripts/demo.sh --backend select --clients 5
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
build=${BUILD_DIR:-build}
[ -f "$build/build.ninja" ] || meson setup "$build" -Dtests=disabled
ninja -C "$build" examples/echo
"$build/examples/echo" "$@"
