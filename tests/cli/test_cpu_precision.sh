#!/usr/bin/env bash
# --cpu-precision bf16: calibration's fp linears with bf16 inputs and weights
# (oneDNN, fp32 sums). The statistics change a little, so the checkpoint
# differs from the fp32 run's, but stays close to it; it is the same bytes
# for any layout, on cpu-staged, and for F16 and BF16 models; shards of one
# precision are not resumed by the other; a bad value is a usage error.
# Skipped (77) on a CPU where oneDNN has no bf16 product (no AVX-512).
. "$(dirname "$0")/lib.sh"
MPIRUN=(timeout 180 mpirun --oversubscribe)
TINY=(--hidden 64 --layers 6 --heads 4 --ffn 256 --vocab 1000 --max-pos 128 --calib-seqs 40 --calib-len 32 --quiet)
RUN=(--batch 4 --quiet)
sums() { checkpoint_sums "$1"; }
# kl DIR: the report's KL(fp || W8A8)
kl() { sed -n 's/.*"kl_divergence": *\([0-9.eE+-]*\).*/\1/p' "$1/aweq_report.json" | head -1; }

"$EXE" synth "${TINY[@]}" --out "$WORK/m" || { bad synth; finish; exit 1; }
"$EXE" synth "${TINY[@]}" --dtype bf16 --out "$WORK/mb" || { bad "synth bf16"; finish; exit 1; }
"$EXE" --model "$WORK/m" --out "$WORK/f32" "${RUN[@]}" || bad "fp32 run"
rc=0
"$EXE" --model "$WORK/m" --out "$WORK/b1" "${RUN[@]}" --cpu-precision bf16 >"$WORK/b1.txt" 2>&1 || rc=$?
if [ $rc -ne 0 ] && grep -q "unimplemented on this CPU" "$WORK/b1.txt"; then
    echo "skipped: $(cat "$WORK/b1.txt")"
    exit 77
fi
[ $rc -eq 0 ] && ok "bf16 calibration, one rank" || bad "bf16 run: $(tail -3 "$WORK/b1.txt")"
grep -q '"precision": "bf16 products, fp32 sums"' "$WORK/b1/aweq_report.json" && ok "the report names the precision" \
    || bad "report: $(grep -o '"calibration": {[^}]*}' "$WORK/b1/aweq_report.json")"
grep -q '"precision"' "$WORK/f32/aweq_report.json" && bad "fp32 report names a precision" || ok "fp32 report as before"
# the statistics moved: scales and folded weights differ; the result did not
k32=$(kl "$WORK/f32") kb=$(kl "$WORK/b1")
[ "$(diff <(sums "$WORK/f32") <(sums "$WORK/b1") | grep -c safetensors)" -gt 0 ] && ok "the weights' files differ from fp32's" \
    || bad "bf16 calibration changed no weight file"
awk -v a="$k32" -v b="$kb" 'BEGIN { exit !(a > 0 && b > 0 && b < 1.5 * a && b > a / 1.5) }' \
    && ok "KL(fp||W8A8) $kb against fp32 calibration's $k32" || bad "KL $kb against fp32's $k32"

# same bytes for any layout, on cpu-staged, for a BF16 model
sums "$WORK/b1" >"$WORK/b1.sha"
for layout in "2 1 2" "2 2 1" "3 3 1"; do
    set -- $layout
    out="$WORK/b_${1}_${2}_${3}"
    if "${MPIRUN[@]}" -n "$1" "$EXE" --model "$WORK/m" --out "$out" "${RUN[@]}" --cpu-precision bf16 \
        --stages "$2" --replicas "$3" >"$out.txt" 2>&1; then
        diff <(sums "$out") "$WORK/b1.sha" >/dev/null && ok "bf16, mpirun -n $1 ($2 x $3): the same bytes as one rank" \
            || bad "bf16 -n $1 ($2 x $3): $(diff <(sums "$out") "$WORK/b1.sha" | head -3)"
    else
        bad "bf16 -n $1 ($2 x $3) failed: $(tail -3 "$out.txt")"
    fi
done
"$EXE" --model "$WORK/m" --out "$WORK/bs" "${RUN[@]}" --cpu-precision bf16 --backend cpu-staged >/dev/null 2>&1 \
    && diff <(sums "$WORK/bs") "$WORK/b1.sha" >/dev/null && ok "bf16 on cpu-staged: the same bytes" \
    || bad "bf16 cpu-staged: $(diff <(sums "$WORK/bs") "$WORK/b1.sha" | head -3)"
"$EXE" --model "$WORK/mb" --out "$WORK/bb1" "${RUN[@]}" --cpu-precision bf16 >/dev/null 2>&1 || bad "BF16 model, one rank"
"${MPIRUN[@]}" -n 2 "$EXE" --model "$WORK/mb" --out "$WORK/bb2" "${RUN[@]}" --cpu-precision bf16 --stages 2 \
    >"$WORK/bb2.txt" 2>&1 && diff <(sums "$WORK/bb2") <(sums "$WORK/bb1") >/dev/null \
    && ok "BF16 model (weights used as stored): 2 stages equal one rank" || bad "BF16 model: $(tail -3 "$WORK/bb2.txt")"

# shards of a bf16 run are not resumed by an fp32 run
"${MPIRUN[@]}" -n 2 "$EXE" --model "$WORK/m" --out "$WORK/r" "${RUN[@]}" --cpu-precision bf16 --stages 2 \
    --fail-at write:1 >"$WORK/kill.txt" 2>&1 && bad "the killed run exited 0"
[ "$(ls "$WORK/r.work" 2>/dev/null | grep -c '\.zst$')" -gt 0 ] && ok "shards kept after the kill" || bad "no shards kept"
"${MPIRUN[@]}" -n 2 "$EXE" --model "$WORK/m" --out "$WORK/r" "${RUN[@]}" --stages 2 --resume >"$WORK/res.txt" 2>&1 \
    || bad "fp32 resume failed: $(tail -3 "$WORK/res.txt")"
grep -q "resume: reusing 0 of 6 blocks" "$WORK/res.txt" && ok "bf16 shards not reused at fp32" \
    || bad "resume: $(grep resume "$WORK/res.txt")"
diff <(sums "$WORK/r") <(sums "$WORK/f32") >/dev/null && ok "the resumed fp32 run equals the fp32 run" \
    || bad "resumed: $(diff <(sums "$WORK/r") <(sums "$WORK/f32") | head -3)"

# oneDNN held to AVX2 has no bf16 product: refused before the job streams
expect_fail "bf16 without AVX-512" "unimplemented on this CPU" env ONEDNN_MAX_CPU_ISA=AVX2 "$EXE" --model "$WORK/m" \
    "${RUN[@]}" --cpu-precision bf16
expect_usage "--cpu-precision fp16" "--cpu-precision 'fp16': expected fp32 or bf16" "$EXE" --model "$WORK/m" \
    --cpu-precision fp16
finish
