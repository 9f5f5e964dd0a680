#!/usr/bin/env bash
# Build aweq-dist and run the main job on the built-in default: a generated
# opt-125m-shaped checkpoint (with real OPT's activation outliers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
MODEL=${AWEQ_DEFAULT_MODEL:-runs/opt-125m-synth}
if [ ! -f "$MODEL/config.json" ]; then
    mkdir -p "$(dirname "$MODEL")"
    ./build/aweq-dist synth --shape opt-125m --out "$MODEL"
fi
./build/aweq-dist backend
./build/aweq-dist inspect "$MODEL" | tail -n 6
