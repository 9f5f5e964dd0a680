#!/usr/bin/env bash
# Build aweq-dist and run the main job on the built-in default: a generated
# opt-125m-shaped checkpoint (with real OPT's activation outliers), quantized
# with AWEQ W8A8 by 2 MPI ranks (2 pipeline stages), ending with the
# validation table; then the independent reader re-computes the W8A8
# perplexity from the written checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
RANKS=${AWEQ_RANKS:-2}
MODEL=${AWEQ_DEFAULT_MODEL:-runs/opt-125m-synth}
OUT=${AWEQ_DEFAULT_OUT:-runs/opt-125m-aweq-w8a8}
if [ ! -f "$MODEL/config.json" ]; then
    mkdir -p "$(dirname "$MODEL")"
    ./build/aweq-dist synth --shape opt-125m --out "$MODEL"
fi
./build/aweq-dist inspect "$MODEL" | tail -n 4
./build/aweq-dist backend
# this script owns its output folder: a rerun replaces it
rm -rf "$OUT"
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
mpirun -n "$RANKS" --oversubscribe ./build/aweq-dist --model "$MODEL" --out "$OUT" --stages "$RANKS"
./build/aweq-dist eval --model "$OUT" --tokens "$MODEL/calibration.tokens" --holdout 0.2 --quiet
