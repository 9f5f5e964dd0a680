#!/usr/bin/env bash
# transformers against the program on weight-only outputs: for each output
# folder, `aweq-dist eval --text` and bench/hf_lowbit_check.py (the default
# load for symmetric files, dequantize=True for asymmetric ones) on the same
# windows; a markdown row per folder with both perplexities.
#
#   bash bench/lowbit_hf.sh TEXT SEQ_LEN OUT_DIR...
#
# Environment: AWEQ_EXE (build/aweq-dist), PYTHON (with torch, transformers
# and compressed-tensors 0.20).
set -euo pipefail
cd "$(dirname "$0")/.."
EXE=${AWEQ_EXE:-build/aweq-dist}
PY=${PYTHON:-build/venv/bin/python}
TEXT=$1 L=$2
shift 2
echo "| checkpoint | scheme | aweq-dist eval ppl | transformers ppl | relative difference | loading |"
echo "| --- | --- | --- | --- | --- | --- |"
for out in "$@"; do
    E=$("$EXE" eval --model "$out" --text "$TEXT" --seq-len "$L" --quiet)
    P=$(echo "$E" | sed -n 's/.* wikitext2 ppl \([^ ]*\) .*/\1/p')
    S=$(echo "$E" | sed -n 's/^eval: [^:]*: \(.*\) wikitext2 ppl .*/\1/p')
    if H=$("$PY" bench/hf_lowbit_check.py --q "$out" --text "$TEXT" --seq-len "$L" --eval-ppl "$P" --ppl-tol 0.01 2>&1); then
        how=ok
    else
        how="FAILED: $(echo "$H" | tail -1)"
    fi
    T=$(echo "$H" | sed -n 's/.*wikitext2 ppl \([^ ]*\) .*/\1/p' | tail -1)
    D=$(awk -v a="$P" -v b="$T" 'BEGIN { if (b == "") { print "-"; exit } d = (b - a) / a; printf "%+.2e", d }')
    L2=$(echo "$H" | grep -o 'dequantize=True\|default load' | head -1)
    echo "| $(basename "$out") | $S | $P | ${T:--} | $D | ${L2:-?} $how |"
done
