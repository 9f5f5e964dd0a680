#!/usr/bin/env bash
# Build and run every test: the normal build (CUDA backend compiled when nvcc
# is present) and the AddressSanitizer + UndefinedBehaviorSanitizer build.
# This is the README's test command; .ci/run runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
JOBS=$(nproc)

echo "== normal build (build/)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$JOBS"
(cd build && ctest --output-on-failure --timeout 900)

# The sanitizer build leaves the CUDA backend out: nvcc objects are not
# instrumented, and compiling them twice would only cost CI time.
echo "== sanitizer build (build-sanitize/: address + undefined)"
cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DAWEQ_SANITIZE=ON -DAWEQ_CUDA=OFF >/dev/null
cmake --build build-sanitize -j"$JOBS"
(cd build-sanitize && ctest --output-on-failure --timeout 1800)
