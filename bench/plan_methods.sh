#!/usr/bin/env bash
# The plan's phase estimates against measured runs, method by method: each
# method of the list runs once on MODEL (its calibration.tokens, the
# default 64 + 16 sequences for a generated model) and `plan --backend cpu`
# is asked for the same tokens, batch and threads.
#
#   bash bench/plan_methods.sh MODEL      (AWEQ_EXE, THREADS=2)
#
# Markdown on stdout: plan / measured per phase, and the difference.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EXE=${AWEQ_EXE:-$ROOT/build/aweq-dist}
T=${THREADS:-2}
MODEL=${1:?usage: plan_methods.sh MODEL}
WORK=$ROOT/build/plan-methods
mkdir -p "$WORK"
export OPENBLAS_NUM_THREADS=$T OMP_NUM_THREADS=$T
# phases NAME: "plan measured" seconds per phase, calibrate quantize
# validate, one line each (plan's printout read by fit_costs.py's parser)
phases() {
    python3 - "$ROOT/bench" "$WORK/$1.plan" "$WORK/$1/aweq_run.json" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
import fit_costs
rec = {}
fit_costs.add_planned(rec, open(sys.argv[2]).read())
run = json.load(open(sys.argv[3]))["times_s"]
for ph in fit_costs.PHASES:
    print(rec["planned"][ph], run[ph])
PY
}
# the shard's cost (AW_COST_SHARD_S_PER_BYTE): W8A8's quantize phase without --out
"$EXE" --model "$MODEL" --quiet >"$WORK/noout.log" 2>&1 || { echo "run without --out failed" >&2; exit 1; }
echo "W8A8 without --out (no shards): $(grep '^time:' "$WORK/noout.log")"
echo
echo "| method | calibrate plan / measured | quantize | validate |"
echo "| --- | --- | --- | --- |"
while IFS='|' read -r name opts; do
    read -r -a o <<<"$opts"
    rm -rf "$WORK/$name"
    "$EXE" --model "$MODEL" --out "$WORK/$name" --quiet "${o[@]}" >"$WORK/$name.log" 2>&1 \
        || { echo "run $name failed: $(tail -3 "$WORK/$name.log")" >&2; exit 1; }
    L=$(sed -n 's/.*"seq_len": *\([0-9]*\).*/\1/p' "$WORK/$name/aweq_report.json" | head -1)
    C=$(sed -n 's/.*"sequences": *\([0-9]*\).*/\1/p' "$WORK/$name/aweq_report.json" | head -1)
    H=$(sed -n 's/.*"heldout_sequences": *\([0-9]*\).*/\1/p' "$WORK/$name/aweq_report.json" | head -1)
    "$EXE" plan --model "$MODEL" -n 1 --mem-per-rank 80 --backend cpu --threads "$T" --seq-len "$L" --batch 8 \
        --calib-seqs "$C" --holdout-seqs "$H" "${o[@]}" >"$WORK/$name.plan" 2>&1
    echo "| $name |$(phases "$name" |
        awk '{ printf " %.1f / %.2f s (%+.0f%%) |", $1, $2, 100 * ($1 / $2 - 1) }')"
done <<'L'
aweq W8A8|--method aweq
rtn W4 g128|--method rtn --wbits 4 --group 128
awq W4 g128|--method awq --wbits 4 --group 128
aweq+search W4 g128|--method aweq+search --wbits 4 --group 128
gptq W4 g128|--method gptq --wbits 4 --group 128
awq W4A4 g128|--method awq --wbits 4 --group 128 --abits 4 --agroup 128 --adynamic
aweq+search W4A8|--method aweq+search --wbits 4 --group 128 --adynamic
L
