#!/usr/bin/env bash
# fp32 against bf16 calibration (--cpu-precision) on one model: the
# calibration phase's time, alternating runs, and what the rounding changes
# in the output (scales, INT8 weights, biases: bench/ckpt_diff.py) and in
# the report's end-to-end numbers (validation KL, perplexities; the eval
# text's perplexity when given).
#
#   bash bench/cpu_precision.sh MODEL [RUN OPTIONS...]
#   PAIRS=3 THREADS=2 AWEQ_EXE=build/aweq-dist PYTHON=python3 (defaults)
#
# Markdown on stdout; the runs' folders under build/cpu-precision/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EXE=${AWEQ_EXE:-$ROOT/build/aweq-dist}
PY=${PYTHON:-python3}
PAIRS=${PAIRS:-3}
T=${THREADS:-2}
MODEL=${1:?usage: cpu_precision.sh MODEL [RUN OPTIONS...]}
shift
WORK=$ROOT/build/cpu-precision/$(basename "$MODEL")
mkdir -p "$WORK"
export OPENBLAS_NUM_THREADS=$T OMP_NUM_THREADS=$T
phase() { sed -n "s/.*\"$2\": *\([0-9.eE+-]*\).*/\1/p" "$1/aweq_run.json" | head -1; }
field() { "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$1/aweq_report.json" "$2"; }
declare -A TIMES
for i in $(seq "$PAIRS"); do
    for p in fp32 bf16; do
        rm -rf "$WORK/$p"
        "$EXE" --model "$MODEL" --out "$WORK/$p" --quiet --cpu-precision "$p" "$@" >"$WORK/$p.log" 2>&1 \
            || { echo "run failed: $(tail -3 "$WORK/$p.log")" >&2; exit 1; }
        TIMES[$p]="${TIMES[$p]:-} $(printf '%.2f' "$(phase "$WORK/$p" calibrate)")"
    done
done
med() { printf '%s\n' $1 | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
m32=$(med "${TIMES[fp32]}") m16=$(med "${TIMES[bf16]}")
echo "## $(basename "$MODEL"): fp32 against bf16 calibration, $T thread(s)"
echo
echo "Run $(date -u '+%Y-%m-%d %H:%M') UTC: \`bash bench/cpu_precision.sh $MODEL $*\` ($PAIRS alternating pairs;"
echo "aweq-dist at $(git -C "$ROOT" rev-parse --short HEAD), \`$(grep -o 'cpu: [^"]*' "$WORK/fp32/aweq_run.json" | head -1)\`)."
echo
echo "| calibration | runs (s) | median (s) |"
echo "| --- | --- | --- |"
echo "| fp32 (sgemm) |${TIMES[fp32]} | $m32 |"
echo "| bf16 (oneDNN) |${TIMES[bf16]} | $m16 |"
echo
echo "fp32 / bf16 = **$(awk -v a="$m32" -v b="$m16" 'BEGIN { printf "%.2f", a / b }')**"
echo
echo "| report | fp32 calibration | bf16 calibration |"
echo "| --- | --- | --- |"
for k in perplexity_fp perplexity_w8a8 kl_divergence top1_agreement; do
    a=$(field "$WORK/fp32" "d['end_to_end'].get('$k')" 2>/dev/null || echo -)
    b=$(field "$WORK/bf16" "d['end_to_end'].get('$k')" 2>/dev/null || echo -)
    echo "| validation $k | $a | $b |"
done
if grep -q '"eval_text"' "$WORK/fp32/aweq_report.json"; then
    for k in perplexity_fp perplexity_w8a8 kl_divergence top1_agreement; do
        echo "| eval text $k | $(field "$WORK/fp32" "d['eval_text'].get('$k')") | $(field "$WORK/bf16" "d['eval_text'].get('$k')") |"
    done
fi
echo
echo "What moved in the checkpoint (\`bench/ckpt_diff.py\`):"
echo
"$PY" "$ROOT/bench/ckpt_diff.py" "$WORK/fp32" "$WORK/bf16" | sed 's/^/- /'
