#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages cosock's build, tests and examples need,
# only those missing. Uses sudo when not run as root.
set -euo pipefail

packages=(meson ninja-build g++ pkg-config doctest-dev liburing-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}"
