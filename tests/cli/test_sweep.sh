#!/usr/bin/env bash
# `aweq-dist sweep` on a tiny generated model with the GPT-2 tokenizer: one
# calibration, a grid of weight-only, dynamic-activation and kept-channel
# points (with GPTQ's Gram matrices and AWQ's token sample in the same
# calibration); sweep.md / sweep.json / sweep_run.json written, every
# perplexity finite and equal to what `run --eval-text` gives for the same
# options; the same table bytes on 2 and 3 ranks (stages and replicas); a bad
# grid line is a usage error naming FILE:line; the new options' rules.
. "$(dirname "$0")/lib.sh"

DATA=${AWEQ_SHARED_DATA:?AWEQ_SHARED_DATA is not set; run through ctest}
TOKDIR="$DATA/gpt2-tokenizer"
[ -f "$TOKDIR/encoder.json" ] || { bad "no $TOKDIR/encoder.json"; finish; exit 1; }
MPIRUN=(timeout 300 mpiexec --oversubscribe)

"$EXE" synth --hidden 64 --layers 4 --heads 4 --ffn 256 --vocab 50304 --max-pos 256 --max-shard-size 2M \
    --quiet --out "$WORK/m" || { bad "synth"; finish; exit 1; }
rm -f "$WORK/m/calibration.tokens"
gpt2_tokenizer "$WORK/m"
head -n 400 "$DATA/wikitext-2/wiki.test.raw" >"$WORK/calib.txt"
sed -n '2500,2530p' "$DATA/wikitext-2/wiki.test.raw" >"$WORK/eval.txt"

cat >"$WORK/grid.txt" <<'GRID'
# weight-only, integer activations, kept channels
--method rtn --wbits 4 --group 32
--method aweq --wbits 4 --group 32 --adynamic   # w4a8, one step per token

--method rtn --wbits 4 --group 32 --abits 4 --agroup 32 --adynamic
--method aweq --keep-salient 10
--method gptq --wbits 4 --group 32
--method awq --wbits 4 --group 32 --abits 4 --agroup 32 --adynamic
GRID
NPTS=6
DRAW=(--calib-text "$WORK/calib.txt" --calib-samples 16 --calib-len 64 --eval-text "$WORK/eval.txt" --batch 4)

# ---- one rank --------------------------------------------------------------
if "$EXE" sweep --model "$WORK/m" "${DRAW[@]}" --grid "$WORK/grid.txt" --out "$WORK/s1" >"$WORK/s1.out" \
        2>"$WORK/s1.err"; then
    ok "sweep on one rank"
else
    bad "sweep on one rank: $(tail -3 "$WORK/s1.err")"
fi
for f in sweep.json sweep.md sweep_run.json; do
    [ -f "$WORK/s1/$f" ] && ok "$f written" || bad "no $f"
done
ls "$WORK/s1" | grep -qv '^sweep\(\.json\|\.md\|_run\.json\)$' && bad "other files in the folder: $(ls "$WORK/s1")" \
    || ok "nothing else written"
cmp -s "$WORK/s1.out" "$WORK/s1/sweep.md" && ok "stdout is sweep.md" || bad "stdout differs from sweep.md"
python3 - "$WORK/s1/sweep.json" "$NPTS" <<'PY' && ok "sweep.json: $NPTS points, every perplexity finite" || bad "sweep.json: $(cat "$WORK/s1/sweep.json" | head -c 600)"
import json, math, sys
j = json.load(open(sys.argv[1]))
pts = j["points"]
assert len(pts) == int(sys.argv[2]), len(pts)
assert math.isfinite(j["fp"]["perplexity"]) and j["fp"]["perplexity"] > 1
assert [p["line"] for p in pts] == [2, 3, 5, 6, 7, 8], [p["line"] for p in pts]
for p in pts:
    assert math.isfinite(p["perplexity"]) and p["perplexity"] > 1, p
    assert p["predicted_tokens"] == j["eval"]["predicted_tokens"] > 0, p
    assert p["label"] and p["method"] and p["options"].startswith("--method"), p
assert j["calibration"]["gram"] is True and j["calibration"]["sample"] is True, j["calibration"]
assert pts[3]["scheme"]["keep_pct"] == 10 and pts[2]["scheme"]["act"] == "dynamic" and pts[2]["scheme"]["abits"] == 4
PY
python3 - "$WORK/s1/sweep_run.json" <<'PY' && ok "sweep_run.json: times of calibration and of each point" || bad "sweep_run.json: $(head -c 400 "$WORK/s1/sweep_run.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["ranks"] == 1 and j["times_s"]["calibrate"] > 0 and len(j["points"]) == 6
assert all(p["evaluate_s"] > 0 for p in j["points"]) and j["points"][0]["fp_stream"]
PY
# the pivot: an fp row first, a row per scheme, a column per method
sed -n '/^| scheme |/,/^$/p' "$WORK/s1/sweep.md" >"$WORK/pivot.txt"
[ "$(sed -n 1p "$WORK/pivot.txt")" = "| scheme | rtn | aweq | gptq | awq |" ] \
    && [ "$(sed -n 3p "$WORK/pivot.txt" | cut -d'|' -f2)" = " FP16 " ] && [ "$(grep -c "^| " "$WORK/pivot.txt")" -eq 6 ] \
    && ok "sweep.md: schemes by methods, fp row first" || bad "sweep.md pivot: $(cat "$WORK/pivot.txt")"
grep -q "^aweq-dist: sweep: 6 points in .* calibration .* once; per point" "$WORK/s1.err" \
    && ok "timing: $(grep '^aweq-dist: sweep: ' "$WORK/s1.err" | head -c 400)" || bad "no timing line: $(tail -2 "$WORK/s1.err")"

# each point quantizes as `run` does: the same perplexity from run --eval-text
# (its calibration windows are the first 16 of the same draw)
ppl_of() { python3 -c "import json,sys; print('%.4f' % json.load(open(sys.argv[1]))['points'][int(sys.argv[2])]['perplexity'])" "$WORK/s1/sweep.json" "$1"; }
i=0
while read -r line; do
    line=${line%%#*}
    [ -n "${line// /}" ] || continue
    read -r -a opts <<<"$line"
    if "$EXE" --model "$WORK/m" "${DRAW[@]}" --quiet "${opts[@]}" >"$WORK/r$i.out" 2>"$WORK/r$i.err"; then
        R=$(sed -n 's/^eval.txt: perplexity fp [0-9.]*, .* \([0-9.]*\); KL.*/\1/p' "$WORK/r$i.out")
        S=$(ppl_of $i)
        [ -n "$R" ] && [ "$R" = "$S" ] && ok "point $i ($line): run --eval-text gives the same perplexity $S" \
            || bad "point $i ($line): sweep $S, run '$R'"
    else
        bad "run $line: $(tail -2 "$WORK/r$i.err")"
    fi
    i=$((i + 1))
done <"$WORK/grid.txt"

# ---- the same bytes for any layout -----------------------------------------
# (the staged device path too: the CPU kernels through the GPU's copies)
# (4 replicas: 6 points on 4 groups, two of them idle in the second round)
for layout in "2 2 1 cpu" "2 1 2 cpu" "3 3 1 cpu" "3 1 3 cpu" "4 1 4 cpu" "2 2 1 cpu-staged"; do
    set -- $layout
    out="$WORK/s_$1_$2_$3_$4"
    if "${MPIRUN[@]}" -n "$1" "$EXE" sweep --model "$WORK/m" "${DRAW[@]}" --grid "$WORK/grid.txt" --out "$out" \
            --stages "$2" --replicas "$3" --backend "$4" --quiet >"$out.out" 2>"$out.err"; then
        par=false
        [ "$2" = 1 ] && par=true # one stage: the points side by side, a rank each
        cmp -s "$out/sweep.json" "$WORK/s1/sweep.json" && cmp -s "$out/sweep.md" "$WORK/s1/sweep.md" \
            && grep -q "\"ranks\": $1" "$out/sweep_run.json" \
            && grep -q "\"points_in_parallel\": $par" "$out/sweep_run.json" \
            && ok "mpiexec -n $1 ($2 stages x $3 replicas, $4; points side by side: $par): the same sweep.json and sweep.md bytes" \
            || bad "mpiexec -n $1 ($2 x $3, $4): tables differ: $(diff "$out/sweep.md" "$WORK/s1/sweep.md" | head -5)"
    else
        bad "mpiexec -n $1 ($2 x $3, $4) failed: $(tail -3 "$out.err")"
    fi
done

# --eval-windows: the first N windows only, the same bytes on replicas
head -3 "$WORK/grid.txt" >"$WORK/grid3.txt"
if "$EXE" sweep --model "$WORK/m" "${DRAW[@]}" --grid "$WORK/grid3.txt" --out "$WORK/w1" --eval-windows 5 --quiet \
        >/dev/null 2>"$WORK/w1.err" \
    && "${MPIRUN[@]}" -n 2 "$EXE" sweep --model "$WORK/m" "${DRAW[@]}" --grid "$WORK/grid3.txt" --out "$WORK/w2" \
        --eval-windows 5 --replicas 2 --quiet >/dev/null 2>"$WORK/w2.err"; then
    grep -q '"windows": 5, "windows_in_text": [0-9]*, .*"predicted_tokens": 315}' "$WORK/w1/sweep.json" \
        && grep -q "the first 5 of" "$WORK/w1/sweep.md" && cmp -s "$WORK/w1/sweep.json" "$WORK/w2/sweep.json" \
        && ok "--eval-windows 5: 5 x 63 predicted tokens, the same bytes on 2 replicas" \
        || bad "--eval-windows: $(grep '"eval"' "$WORK/w1/sweep.json") / $(grep '"eval"' "$WORK/w2/sweep.json")"
else
    bad "--eval-windows: $(tail -n 2 "$WORK/w1.err" "$WORK/w2.err")"
fi

# --kl: the fp model beside every point; KL as run --eval-text reports it,
# the same bytes on 3 ranks: the 2 points side by side, one on a group of
# two ranks (0 and 2) that split its windows, one on rank 1 alone
if "$EXE" sweep --model "$WORK/m" "${DRAW[@]}" --grid "$WORK/grid3.txt" --out "$WORK/k1" --kl --quiet \
        >/dev/null 2>"$WORK/k1.err" \
    && "${MPIRUN[@]}" -n 3 "$EXE" sweep --model "$WORK/m" "${DRAW[@]}" --grid "$WORK/grid3.txt" --out "$WORK/k2" \
        --kl --replicas 3 --quiet >/dev/null 2>"$WORK/k2.err" \
    && grep -q '"point_groups": 2' "$WORK/k2/sweep_run.json"; then
    K0=$(sed -n 's/^eval.txt: .*KL(fp||[^)]*) \([0-9.e+-]*\);.*/\1/p' "$WORK/r0.out")
    python3 - "$WORK/k1/sweep.json" "$WORK/s1/sweep.json" "$K0" <<'PY' && cmp -s "$WORK/k1/sweep.json" "$WORK/k2/sweep.json" \
        && grep -q "^KL(fp || quantized) per predicted token" "$WORK/k1/sweep.md" \
        && ok "--kl: KL and top-1 per point, point 0's KL as run's ($K0), the same bytes on groups of 2 ranks and 1" \
        || bad "--kl: $(grep -o '"kl": [^,]*' "$WORK/k1/sweep.json" | head -3) run $K0"
import json, sys
k, s, k0 = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), float(sys.argv[3])
for a, b in zip(k["points"], s["points"]):
    assert a["perplexity"] == b["perplexity"], (a, b)
    assert a["kl"] > 0 and 0 < a["top1"] <= 1, a
assert abs(k["points"][0]["kl"] - k0) <= 5e-7, (k["points"][0]["kl"], k0)
PY
else
    bad "--kl: $(tail -n 2 "$WORK/k1.err" "$WORK/k2.err")"
fi

# ---- failures: one line, the job ends, nothing left behind ---------------------
# one rank failing (--fail-at PHASE:RANK:error) under a layout
failing_rank() {
    local name=$1 n=$2 layout=$3 grid=$4 phase=$5 rank=$6 what=$7 rc=0
    # shellcheck disable=SC2086
    "${MPIRUN[@]}" -n "$n" "$EXE" sweep --model "$WORK/m" "${DRAW[@]}" --grid "$grid" --out "$WORK/$name" \
        $layout --quiet --fail-at "$phase:$rank:error" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
    [ "$rc" -ne 0 ] && grep -q "rank $rank of $n: error: --fail-at $phase:$rank: injected failure" "$WORK/$name.err" \
        && [ ! -e "$WORK/$name" ] && ok "$what ends the sweep (exit $rc), no folder left" \
        || bad "$what: exit $rc, folder $(ls -d "$WORK/$name" 2>&1), $(grep aweq-dist "$WORK/$name.err" | head -3)"
}
failing_rank sf 2 "--stages 2 --eval-windows 8" "$WORK/grid.txt" evaluate 1 "a rank failing while evaluating"
# points side by side: a rank alone fails its point (the job ends after the
# round); a rank of a group of two (ranks 1 and 3) fails while streaming,
# at once, named by its rank in the world (the hook fires on its second
# block: with 2 windows a block, rank 1 has the group's blocks 0 and 2)
failing_rank sg 2 "--replicas 2 --eval-windows 8" "$WORK/grid.txt" quantize 1 "a rank failing its point (points side by side)"
failing_rank sh 4 "--replicas 4 --batch 2" "$WORK/grid3.txt" evaluate 1 "a rank of a group failing while evaluating"
expect_fail "--out under a missing folder" "is not a writable folder" \
    "$EXE" sweep --model "$WORK/m" "${DRAW[@]}" --grid "$WORK/grid.txt" --out "$WORK/no/such" --quiet
expect_fail "--out is a file" "exists and is not a folder" \
    "$EXE" sweep --model "$WORK/m" "${DRAW[@]}" --grid "$WORK/grid.txt" --out "$WORK/grid.txt" --quiet

# ---- usage errors -----------------------------------------------------------
printf '%s\n' "--method rtn --wbits 4" "# fine so far" "--method rtn --abits 4" >"$WORK/bad1.txt"
expect_usage "grid: --abits 4 without --adynamic" "bad1.txt:3: --abits 4 needs --adynamic" \
    "$EXE" sweep --model "$WORK/m" "${DRAW[@]}" --grid "$WORK/bad1.txt" --out "$WORK/sb"
printf '%s\n' "--method rtn --wbits 4" "--method rtn --frobnicate" >"$WORK/bad2.txt"
expect_usage "grid: unknown option" "bad2.txt:2: unknown option '--frobnicate'" \
    "$EXE" sweep --model "$WORK/m" "${DRAW[@]}" --grid "$WORK/bad2.txt" --out "$WORK/sb"
printf '%s\n' "--method awq --wbits 4 --keep-salient 1" >"$WORK/bad3.txt"
expect_usage "grid: keep with awq" "bad3.txt:1: --keep-salient does not go with --method awq" \
    "$EXE" sweep --model "$WORK/m" "${DRAW[@]}" --grid "$WORK/bad3.txt" --out "$WORK/sb"
printf '# nothing\n\n' >"$WORK/bad4.txt"
expect_usage "grid: no points" "no points" \
    "$EXE" sweep --model "$WORK/m" "${DRAW[@]}" --grid "$WORK/bad4.txt" --out "$WORK/sb"
printf '%s\n' "--method rtn --wbits 4 --group" >"$WORK/bad5.txt"
expect_usage "grid: a value missing" "bad5.txt:1: --group needs a value" \
    "$EXE" sweep --model "$WORK/m" "${DRAW[@]}" --grid "$WORK/bad5.txt" --out "$WORK/sb"
[ -e "$WORK/sb" ] && bad "a refused sweep created its folder" || ok "a refused sweep writes nothing"
expect_usage "sweep without --grid" "--grid FILE is required" \
    "$EXE" sweep --model "$WORK/m" "${DRAW[@]}" --out "$WORK/sb"
expect_usage "sweep: method options go in the grid" "go in the --grid file" \
    "$EXE" sweep --model "$WORK/m" "${DRAW[@]}" --grid "$WORK/grid.txt" --out "$WORK/sb" --wbits 4
expect_usage "run --keep-salient with --out" "compressed-tensors has no form for fp channels" \
    "$EXE" --model "$WORK/m" "${DRAW[@]}" --keep-salient 1 --out "$WORK/q"
for h in "--help" "sweep --help" "plan --help"; do
    # shellcheck disable=SC2086
    "$EXE" $h | awk 'length($0) > 80 {print; bad = 1} END {exit bad}' >"$WORK/wide.txt" \
        && ok "'aweq-dist $h' fits 80 columns" || bad "'aweq-dist $h' wider than 80 columns: $(head -3 "$WORK/wide.txt")"
done
finish
