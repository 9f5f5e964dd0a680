#!/usr/bin/env bash
# Install the Debian 12 packages aweq-dist builds and tests with, when any is
# missing. Needs root (or sudo) only if something has to be installed.
set -euo pipefail
# libdnnl-dev: oneDNN for the INT8 product; its CMake config also looks for
# OpenCL (the package's GPU runtime), which is only a Recommends of it
PKGS=(build-essential cmake pkg-config git python3
      openmpi-bin libopenmpi-dev libzstd-dev libcmocka-dev libopenblas-dev libjansson-dev
      libdnnl-dev ocl-icd-opencl-dev
      time)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1; }
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
