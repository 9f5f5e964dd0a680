#!/usr/bin/env bash
# transformers against the program on outputs with dynamic activations
# (W4A4, W4A8: compressed-tensors int-quantized): for each output folder,
# bench/hf_w4a4_check.py with --exe (the program's `eval --text` on the same
# windows) and --also-float64 (transformers in float32 and in float64); a
# markdown row per folder.
#
#   bash bench/w4a4_hf.sh TEXT SEQ_LEN OUT_DIR...
#
# Environment: AWEQ_EXE (build/aweq-dist), PYTHON (with torch, transformers
# and compressed-tensors 0.20), TOKENIZER (auto, or json for a folder with
# tokenizer.json only).
set -euo pipefail
cd "$(dirname "$0")/.."
EXE=${AWEQ_EXE:-build/aweq-dist}
PY=${PYTHON:-build/venv/bin/python}
TEXT=$1 L=$2
shift 2
echo "| checkpoint | aweq-dist eval ppl | transformers float32 | float64 | float32 vs eval | float64 vs eval | check |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for out in "$@"; do
    if H=$("$PY" bench/hf_w4a4_check.py --q "$out" --text "$TEXT" --seq-len "$L" --exe "$EXE" \
             --tokenizer "${TOKENIZER:-auto}" --also-float64 --quiet 2>&1); then
        how=ok
    else
        how="FAILED: $(echo "$H" | grep FAIL | head -1)"
    fi
    E=$(echo "$H" | sed -n 's/^aweq-dist eval ppl \([^;]*\);.*/\1/p')
    T=$(echo "$H" | sed -n 's/^transformers ppl \([^ ]*\) on.*/\1/p')
    T64=$(echo "$H" | sed -n 's/^transformers float64 ppl \([^;]*\);.*/\1/p')
    R=$(echo "$H" | sed -n 's/.*transformers \/ eval - 1 = \(.*\)$/\1/p')
    R64=$(echo "$H" | sed -n 's/^transformers float64 \/ eval - 1 = \(.*\)$/\1/p')
    echo "| $(basename "$out") | $E | $T | $T64 | $R | $R64 | $how |"
done
