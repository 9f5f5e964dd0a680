#!/usr/bin/env bash
# plan: OPT-175B laid out over ranks of 80 GB, every supported built-in
# shape on one rank, a model folder's config.json, forced layouts, and
# refusals as one error line that says what would fit; each phase's time
# says whether it is measured (cpu) or assumed (cuda).
. "$(dirname "$0")/lib.sh"

# the sum of the "blocks" column of a plan
blocks_sum() { awk '/^ *stage  ranks/ {t = 1; next} /^total:/ {t = 0} t {s += $4} END {print s + 0}' "$1"; }

"$EXE" plan --help | grep -q "aweq-dist plan --model" && ok "plan --help" || bad "plan --help"

for n in 8 16 64; do
    rc=0; "$EXE" plan --model opt-175b -n $n --mem-per-rank 80 >"$WORK/p$n.txt" 2>"$WORK/e$n.txt" || rc=$?
    if [ $rc -ne 0 ]; then bad "opt-175b on $n x 80 GB: exit $rc: $(cat "$WORK/e$n.txt")"; continue; fi
    [ -s "$WORK/e$n.txt" ] && bad "opt-175b on $n ranks: stderr not empty: $(cat "$WORK/e$n.txt")"
    grep -q "total: 96 layers over" "$WORK/p$n.txt" && [ "$(blocks_sum "$WORK/p$n.txt")" -eq 96 ] \
        && ok "opt-175b on $n x 80 GB: 96 layers across the stages" \
        || bad "opt-175b on $n ranks: layers: $(grep total "$WORK/p$n.txt")"
done
cat "$WORK/p8.txt" "$WORK/p16.txt"
grep -q "^world: 8 ranks = 8 stages x 1 replica" "$WORK/p8.txt" && ok "8 ranks: 8 stages of 12 blocks" || bad "8 ranks: $(grep world "$WORK/p8.txt")"
grep -q "^world: 16 ranks = 8 stages x 2 replicas" "$WORK/p16.txt" && ok "16 ranks: 8 stages x 2 replicas" || bad "16 ranks: $(grep world "$WORK/p16.txt")"
grep -q "^world: 64 ranks = 8 stages x 8 replicas" "$WORK/p64.txt" && ok "64 ranks: 8 stages x 8 replicas" || bad "64 ranks: $(grep world "$WORK/p64.txt")"

# The GPU side: 8 x 80 GB GPUs hold 12 blocks each at one sequence per block
# of samples; 8 sequences per block need 31 GB of activations more, and a
# plan that leaves 24 blocks on a stage is refused with the numbers.
"$EXE" plan --model opt-175b -n 8 --mem-per-rank 80 --gpu-mem 80 >"$WORK/g8.txt" 2>&1 \
    && grep -qE "^ +7 +7 +84-95 +12 .* 7[0-9]\.[0-9] GB" "$WORK/g8.txt" \
    && ok "opt-175b on 8 GPUs of 80 GB: $(grep -E '^ +7 ' "$WORK/g8.txt" | awk '{print $9, $10}') on the last stage" \
    || bad "GPU plan: $(cat "$WORK/g8.txt")"
expect_fail "opt-175b, 4 stages of 24 blocks on 80 GB GPUs refused" "stage 0 needs 166.1 GB of GPU memory per rank" \
    "$EXE" plan --model opt-175b -n 8 --mem-per-rank 200 --gpu-mem 80 --batch 8

# 8 ranks of 70 GB: 12 blocks (66 GB) plus 7.7 GB of buffers per rank do
# not fit; the refusal says how many ranks or GB would, and both work
expect_fail "opt-175b on 8 x 70 GB refused" "no layout of 8 ranks fits 70 GB per rank: the model needs at least 9 ranks" \
    "$EXE" plan --model opt-175b -n 8 --mem-per-rank 70
grep -q "(AW_ERR_PLAN)" "$WORK/err.txt" && ok "refusal names AW_ERR_PLAN" || bad "refusal: $(cat "$WORK/err.txt")"
need=$(sed -n 's/.*(or \([0-9]*\) GB per rank).*/\1/p' "$WORK/err.txt")
"$EXE" plan --model opt-175b -n 9 --mem-per-rank 70 >"$WORK/p9.txt" 2>&1 && ok "opt-175b on 9 x 70 GB" || bad "9 ranks: $(cat "$WORK/p9.txt")"
if [ -n "$need" ] && "$EXE" plan --model opt-175b -n 8 --mem-per-rank "${need}GB" >"$WORK/p8n.txt" 2>&1; then
    [ "$(blocks_sum "$WORK/p8n.txt")" -eq 96 ] && ok "opt-175b on 8 x $need GB: 96 layers" || bad "8 x $need GB: $(cat "$WORK/p8n.txt")"
else
    bad "opt-175b on 8 x '$need' GB: $(cat "$WORK/p8n.txt" 2>/dev/null)"
fi
expect_fail "opt-175b on 8 x 40 GB refused" "no layout of 8 ranks fits 40 GB per rank: the model needs at least" \
    "$EXE" plan --model opt-175b -n 8 --mem-per-rank 40

# every supported built-in shape on one rank with a large budget: 1 stage, all layers
"$EXE" shapes >"$WORK/shapes.txt" || bad "shapes"
n_shapes=0
while read -r name d layers rest; do
    case "$rest" in *" yes") ;; *) continue ;; esac
    n_shapes=$((n_shapes + 1))
    if "$EXE" plan --model "$name" -n 1 --mem-per-rank 10000 >"$WORK/s.txt" 2>&1 \
        && grep -q "total: $layers layers over 1 stage;" "$WORK/s.txt"; then
        ok "$name on one rank: $layers layers"
    else
        bad "$name on one rank: $(cat "$WORK/s.txt")"
    fi
done < <(tail -n +2 "$WORK/shapes.txt")
[ $n_shapes -ge 8 ] && ok "$n_shapes supported shapes planned" || bad "only $n_shapes supported shapes"
expect_fail "unsupported shape refused" "do_layer_norm_before" "$EXE" plan --model opt-350m -n 1 --mem-per-rank 80

# a model folder: its config.json is read
mkdir -p "$WORK/m"
cp "$AWEQ_SOURCE_DIR/tests/fixtures/opt-configs/opt-125m.json" "$WORK/m/config.json"
"$EXE" plan --model "$WORK/m" -n 2 --mem-per-rank 80GB >"$WORK/m.txt" 2>&1 \
    && grep -q "world: 2 ranks = 1 stage x 2 replicas" "$WORK/m.txt" && ok "model folder: 1 stage x 2 replicas" \
    || bad "model folder: $(cat "$WORK/m.txt")"
mkdir -p "$WORK/empty"
expect_fail "folder without config.json" "config.json" "$EXE" plan --model "$WORK/empty" -n 1 --mem-per-rank 80

# 80, 80G and 80GB are the same budget
"$EXE" plan --model opt-13b -n 4 --mem-per-rank 80 >"$WORK/g1.txt" 2>&1
"$EXE" plan --model opt-13b -n 4 --mem-per-rank 80G >"$WORK/g2.txt" 2>&1
"$EXE" plan --model opt-13b -n 4 --mem-per-rank 80GB >"$WORK/g3.txt" 2>&1
cmp -s "$WORK/g1.txt" "$WORK/g2.txt" && cmp -s "$WORK/g1.txt" "$WORK/g3.txt" && ok "80 = 80G = 80GB" || bad "budget spellings differ"

# forced layouts
"$EXE" plan --model opt-13b -n 8 --mem-per-rank 80 --stages 4 >"$WORK/f.txt" 2>&1 \
    && grep -q "world: 8 ranks = 4 stages x 2 replicas" "$WORK/f.txt" && ok "--stages 4 on 8 ranks" || bad "--stages 4: $(cat "$WORK/f.txt")"
"$EXE" plan --model opt-13b -n 8 --mem-per-rank 80 --replicas 8 >"$WORK/f.txt" 2>&1 \
    && grep -q "world: 8 ranks = 1 stage x 8 replicas" "$WORK/f.txt" && ok "--replicas 8 on 8 ranks" || bad "--replicas 8: $(cat "$WORK/f.txt")"
expect_fail "world not stages x replicas" "world of 6 ranks is not stages x replicas with --stages 4" \
    "$EXE" plan --model opt-13b -n 6 --mem-per-rank 80 --stages 4
expect_fail "more stages than blocks" "50 stages for 40 decoder blocks: at most 40 stages" \
    "$EXE" plan --model opt-13b -n 50 --mem-per-rank 80 --stages 50
expect_fail "block larger than the budget" "one decoder block needs" "$EXE" plan --model opt-175b -n 96 --mem-per-rank 8

# LLaMA shapes plan like OPT's: every layer placed, the head counted
for case in "llama-3-8b 8 32" "llama-3-70b 8 80" "llama-3-405b 32 126"; do
    set -- $case
    if "$EXE" plan --model "$1" -n "$2" --mem-per-rank 80 >"$WORK/l.txt" 2>"$WORK/le.txt"; then
        grep -q "LLaMA" "$WORK/l.txt" && grep -q "total .*$3 layers\|$3 layers\|layers=$3" "$WORK/l.txt" \
            && ok "$1 on $2 x 80 GB: $(head -1 "$WORK/l.txt")" || bad "$1: $(head -3 "$WORK/l.txt")"
    else
        bad "$1 on $2 ranks: $(cat "$WORK/le.txt")"
    fi
done
expect_fail "llama-3-405b does not fit 8 ranks" "needs at least 22 ranks" \
    "$EXE" plan --model meta-llama/llama-3-405b -n 8 --mem-per-rank 80


# time by phase: cuda (the default) is assumed, cpu measured; memory is the same
"$EXE" plan --model opt-125m -n 1 --mem-per-rank 80 >"$WORK/bc.txt" 2>&1 || bad "default backend: $(cat "$WORK/bc.txt")"
"$EXE" plan --model opt-125m -n 1 --mem-per-rank 80 --backend cuda >"$WORK/bc2.txt" 2>&1
cmp -s "$WORK/bc.txt" "$WORK/bc2.txt" && ok "cuda is the default backend" || bad "default differs from --backend cuda"
n=$(grep -cE "^  (calibrate|validate) .*\(assumed: 400 TFLOP/s per GPU, not yet measured\)$" "$WORK/bc.txt")
[ "$n" -eq 2 ] && grep -qE "^  quantize .*\(assumed: the shards' zstd on one CPU thread; the quantization on the GPU not counted, not yet measured\)$" "$WORK/bc.txt" \
    && grep -qE "^  load .*\(assumed: 2 GB/s file-system read, not yet measured\)$" "$WORK/bc.txt" \
    && ! grep -q "measured: fitted" "$WORK/bc.txt" \
    && ok "cuda: every phase labelled assumed" || bad "cuda phases: $(cat "$WORK/bc.txt")"
"$EXE" plan --model opt-125m -n 1 --mem-per-rank 80 --backend cpu --seq-len 128 --batch 8 --calib-seqs 64 \
    --holdout-seqs 16 --threads 2 >"$WORK/bp.txt" 2>&1 || bad "cpu backend: $(cat "$WORK/bp.txt")"
n=$(grep -cE "^  (calibrate|quantize|validate) +[0-9].*\(measured: fitted on .+, [0-9]+ threads?(;.*)?\)$" "$WORK/bp.txt")
[ "$n" -eq 3 ] && grep -qE "^  load .*\(assumed: " "$WORK/bp.txt" && ! grep -q "TFLOP/s" "$WORK/bp.txt" \
    && grep -q "cpu backend, 2 threads per rank" "$WORK/bp.txt" \
    && ok "cpu: calibrate, quantize, validate labelled measured: $(grep '^  calibrate' "$WORK/bp.txt")" \
    || bad "cpu phases ($n measured): $(cat "$WORK/bp.txt")"
"$EXE" plan --model opt-125m -n 1 --mem-per-rank 80 --seq-len 128 --batch 8 --calib-seqs 64 --holdout-seqs 16 \
    >"$WORK/bg.txt" 2>&1
mem_of() {
    grep -E "GB per decoder block|GB on every rank|GB on the first|GB on the last stage|^GPU memory per rank" "$1"
    awk '/^ *stage  ranks/ {t = 1; next} /^total:/ {t = 0} t {print $1, $2, $3, $4, $5, $6, $7, $8, $9, $10}' "$1"
}
[ "$(mem_of "$WORK/bg.txt" | wc -l)" -ge 6 ] && diff <(mem_of "$WORK/bg.txt") <(mem_of "$WORK/bp.txt") >/dev/null \
    && ok "cpu and cuda plans: the same memory" || bad "memory differs by backend: $(diff <(mem_of "$WORK/bg.txt") <(mem_of "$WORK/bp.txt"))"
# a method's own work: Gram matrices in calibration, searches and GPTQ in
# quantization, fp32 products in a weight-only validation
# phase_of PLAN PHASE: seconds of the phase's "  quantize   1m 20s  (...)"
phase_of() {
    sed -n "s/^  $2 *\(.*\)  (.*/\1/p" "$1" | head -1 | sed 's/ s$/s/' |
        awk '{ s = 0; for (i = 1; i <= NF; i++) { v = $i; u = substr(v, length(v)); v = substr(v, 1, length(v) - 1);
               s += u == "h" ? v * 3600 : u == "m" ? v * 60 : v } print s }'
}
for m in "w8|--method aweq" "gptq|--method gptq --wbits 4 --group 128" "awq|--method awq --wbits 4 --group 128" \
         "awqdyn|--method awq --wbits 4 --group 128 --abits 4 --agroup 128 --adynamic"; do
    read -r -a opts <<<"${m#*|}"
    "$EXE" plan --model opt-125m -n 1 --mem-per-rank 80 --backend cpu --seq-len 128 --batch 8 --calib-seqs 64 \
        --holdout-seqs 16 --threads 2 "${opts[@]}" >"$WORK/pm-${m%%|*}.txt" 2>&1 || bad "plan ${m#*|}: $(cat "$WORK/pm-${m%%|*}.txt")"
done
awk -v w="$(phase_of "$WORK/pm-w8.txt" calibrate)" -v g="$(phase_of "$WORK/pm-gptq.txt" calibrate)" \
    -v d="$(phase_of "$WORK/pm-awqdyn.txt" calibrate)" -v qw="$(phase_of "$WORK/pm-w8.txt" quantize)" \
    -v qg="$(phase_of "$WORK/pm-gptq.txt" quantize)" -v qa="$(phase_of "$WORK/pm-awq.txt" quantize)" \
    -v qd="$(phase_of "$WORK/pm-awqdyn.txt" quantize)" -v vw="$(phase_of "$WORK/pm-w8.txt" validate)" \
    -v vg="$(phase_of "$WORK/pm-gptq.txt" validate)" -v vd="$(phase_of "$WORK/pm-awqdyn.txt" validate)" \
    'BEGIN { exit !(g > 1.5 * w && d == w && qg > 5 * qw && qd > 10 * qw && qa > 3 * qd && vg > 1.2 * vw && vd == vw) }' \
    && ok "methods: Gram calibration, search and GPTQ quantization, weight-only validation counted" \
    || bad "method costs: $(grep -h -E '^  (calibrate|quantize|validate)' "$WORK"/pm-*.txt | tr '\n' ' ')"
# threads other than the fit's are scaled, and said to be
"$EXE" plan --model opt-125m -n 1 --mem-per-rank 80 --backend cpu --threads 64 >"$WORK/bt.txt" 2>&1 \
    && grep -q "cpu backend, 64 threads per rank" "$WORK/bt.txt" && grep -q "scaled to 64 by the measured parallel share" "$WORK/bt.txt" \
    && ok "--threads 64: scaled from the fit's threads" || bad "--threads 64: $(cat "$WORK/bt.txt")"
# seconds under a minute print as "12.3 s": few enough tokens for that
"$EXE" plan --model opt-125m -n 1 --mem-per-rank 80 --backend cpu --seq-len 128 --batch 8 --calib-seqs 16 \
    --holdout-seqs 16 --threads 2 >"$WORK/bp1.txt" 2>&1
t2=$(awk '/^  calibrate/ {print $2}' "$WORK/bp1.txt")
"$EXE" plan --model opt-125m -n 1 --mem-per-rank 80 --backend cpu --seq-len 128 --batch 8 --calib-seqs 32 \
    --holdout-seqs 16 --threads 2 >"$WORK/bp2.txt" 2>&1
t4=$(awk '/^  calibrate/ {print $2}' "$WORK/bp2.txt")
awk -v a="$t2" -v b="$t4" 'BEGIN {exit !(b > 1.9 * a && b < 2.1 * a)}' \
    && ok "cpu: twice the calibration tokens, twice the calibration time ($t2 -> $t4 s)" \
    || bad "calibration time does not scale with tokens: $t2 -> $t4"

# usage errors exit 2
for args in "--model opt-175b -n 8" "-n 8 --mem-per-rank 80" "--model opt-175b --mem-per-rank 80" \
            "--model opt-175b -n 8 --mem-per-rank 80X" "--model opt-175b -n 0 --mem-per-rank 80" \
            "--model no-such-model -n 1 --mem-per-rank 80" "--model opt-175b -n 1 --mem-per-rank 80 --seq-len 4096" \
            "--model opt-175b -n 1 --mem-per-rank 80 --frobnicate" "--model opt-175b -n 1 --mem-per-rank 80 extra" \
            "--model opt-175b -n 1 --mem-per-rank 80 --backend tpu" "--model opt-175b -n 1 --mem-per-rank 80 --threads 4" \
            "--model opt-175b -n 1 --mem-per-rank 80 --backend cpu --tflops 100" \
            "--model opt-175b -n 1 --mem-per-rank 80 --backend cpu --threads 0"; do
    rc=0
    # shellcheck disable=SC2086
    "$EXE" plan $args >/dev/null 2>"$WORK/u.txt" || rc=$?
    [ $rc -eq 2 ] && grep -q "aweq-dist plan --help" "$WORK/u.txt" && ok "usage error ($args): $(head -1 "$WORK/u.txt")" \
        || bad "plan $args: exit $rc: $(cat "$WORK/u.txt")"
done

finish
