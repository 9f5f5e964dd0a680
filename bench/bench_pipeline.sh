#!/usr/bin/env bash
# Time the single-rank job on the generated opt-125m-shaped model with
# 64 x 128 calibration tokens (+16 held-out sequences for validation), then
# the kernel bench (GB/s against memcpy, GFLOP/s against bare sgemm).
# usage: bench/bench_pipeline.sh [BUILD_DIR]
set -euo pipefail
B=${1:-build}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$B/aweq-dist" synth --shape opt-125m --out "$W/m" --quiet
/usr/bin/time -f "aweq-dist wall %e s, peak RSS %M KB" "$B/aweq-dist" --model "$W/m" --quiet | tail -n 3
"$B/bench/bench_kernels"
"$B/bench/bench_block"
