#!/usr/bin/env bash
# Weight-only low-bit perplexity table, as in the README: one model folder,
# calibrated with --calib-text on a training text and judged with
# --eval-text on held-out text (the WikiText-2 protocol), for schemes
# W4 g128, W4 per-channel and W3 g128 (symmetric) and methods rtn, awq,
# aweq, aweq+search, gptq and gptq --act-order; the fp perplexity first.
#
#   bash bench/lowbit_table.sh MODEL_DIR CALIB_TEXT EVAL_TEXT [WORK_DIR]
#
# Environment: AWEQ_EXE (build/aweq-dist), CALIB_SAMPLES (128), SEQ_LEN
# (512), RANKS (1: mpirun -n RANKS when above 1), SCHEMES, METHODS (space-
# separated, to run a subset). Writes WORK_DIR/lowbit.md and lowbit.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
EXE=${AWEQ_EXE:-build/aweq-dist}
MODEL=$1 CALIB=$2 EVAL=$3
WORK=${4:-build/lowbit-$(basename "$MODEL")}
N=${CALIB_SAMPLES:-128}
L=${SEQ_LEN:-512}
RANKS=${RANKS:-1}
SCHEMES=${SCHEMES:-"4:128 4:0 3:128"}
METHODS=${METHODS:-"rtn awq aweq aweq+search gptq gptq-ao"}
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$WORK"
LAUNCH=()
[ "$RANKS" -gt 1 ] && LAUNCH=(mpirun --oversubscribe -n "$RANKS")

"$EXE" eval --model "$MODEL" --text "$EVAL" --seq-len "$L" --quiet | tee "$WORK/fp.txt"
FP=$(sed -n 's/.*wikitext2 ppl \([^ ]*\) .*/\1/p' "$WORK/fp.txt")
: >"$WORK/lowbit.jsonl"
for s in $SCHEMES; do
    bits=${s%%:*} group=${s#*:}
    for m in $METHODS; do
        opts=(--method "${m%-ao}" --wbits "$bits" --group "$group")
        [ "$m" = gptq-ao ] && opts+=(--act-order)
        out="$WORK/q-w$bits-g$group-$m"
        rm -rf "$out"
        t0=$(date +%s.%N)
        "${LAUNCH[@]}" "$EXE" --model "$MODEL" --calib-text "$CALIB" --calib-samples "$N" --calib-len "$L" \
            --eval-text "$EVAL" --out "$out" --quiet "${opts[@]}" >"$out.txt" 2>&1 || { tail -3 "$out.txt"; exit 1; }
        t1=$(date +%s.%N)
        P=$(sed -n "s/^$(basename "$EVAL"): perplexity fp [0-9.]*, .* \([0-9.]*\); KL.*/\1/p" "$out.txt")
        K=$(sed -n "s/^$(basename "$EVAL"): .*KL(fp||[^)]*) \([0-9.e+-]*\);.*/\1/p" "$out.txt")
        printf '{"bits": %s, "group": %s, "method": "%s", "ppl": %s, "kl": %s, "seconds": %.1f}\n' \
            "$bits" "$group" "$m" "$P" "$K" "$(echo "$t1 - $t0" | bc)" | tee -a "$WORK/lowbit.jsonl"
    done
done
python3 - "$WORK/lowbit.jsonl" "$FP" "$METHODS" "$(basename "$MODEL")" "$WORK/lowbit.md" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
fp, methods, name, out = sys.argv[2], sys.argv[3].split(), sys.argv[4], sys.argv[5]
names = {"gptq-ao": "gptq act-order"}
lines = [f"{name}: fp perplexity {fp}", "",
         "| scheme | " + " | ".join(names.get(m, m) for m in methods) + " |",
         "| --- |" + " --- |" * len(methods)]
seen = []
for r in rows:
    k = (r["bits"], r["group"])
    if k not in seen: seen.append(k)
for b, g in seen:
    label = f"W{b} " + (f"g{g}" if g else "per-channel")
    cells = []
    for m in methods:
        v = [r for r in rows if (r["bits"], r["group"], r["method"]) == (b, g, m)]
        cells.append(f"{v[0]['ppl']:.4f}" if v else "")
    lines.append(f"| {label} | " + " | ".join(cells) + " |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
