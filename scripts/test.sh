#!/usr/bin/env bash
# Build and run every test: the normal build (CUDA backend compiled when nvcc
# is present), a Release build (compiled only) and the AddressSanitizer +
# UndefinedBehaviorSanitizer build, all with warnings as errors.
# This is the README's test command; .ci/run runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
JOBS=$(nproc)

# -DAWEQ_WERROR=ON: warnings fail the developer and CI builds (users'
# builds only warn).
echo "== normal build (build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAWEQ_WERROR=ON >/dev/null
cmake --build build -j"$JOBS"
(cd build && ctest --output-on-failure --timeout 900)

# The build users type (-O3 warns where -O2 does not, e.g. maybe-uninitialized):
# compiled and started, not tested again. -DAWEQ_CUDA=OFF to save CI time:
# build/ already compiles the CUDA backend, and nvcc for two architectures is
# most of a build's time; the backend's C files (aw_ops_cuda.c, the plugin)
# are then not compiled at -O3 here.
echo "== release build (build-release/)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DAWEQ_WERROR=ON -DAWEQ_CUDA=OFF >/dev/null
cmake --build build-release -j"$JOBS"
./build-release/aweq-dist --help >/dev/null

# The sanitizer build leaves the CUDA backend out: nvcc objects are not
# instrumented, and compiling them twice would only cost CI time.
echo "== sanitizer build (build-sanitize/: address + undefined)"
cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DAWEQ_SANITIZE=ON -DAWEQ_CUDA=OFF \
      -DAWEQ_WERROR=ON >/dev/null
cmake --build build-sanitize -j"$JOBS"
(cd build-sanitize && ctest --output-on-failure --timeout 1800)
