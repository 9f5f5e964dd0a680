#!/usr/bin/env bash
# The report on the generated opt-125m-shaped model (its outlier channels
# are those of real OPT: max(2, d/128) = 6 hidden channels with 20-100x
# the others' LayerNorm gain): at ln1->qkv the 6 channels of largest input
# range are those outliers, each falls by the factor equalization applied
# (x_after = x_before / s, in the JSON and on the page's log axis), and the
# largest / median range ratio drops. Progress: the calibration phase's
# time left, from the end of its first quarter on, predicts the phase's end
# within 20% of its duration (--log-json). About 20 s of CPU work: skipped
# (exit 77) in the sanitizer build, where test_report.sh covers the same
# code on tiny models.
. "$(dirname "$0")/lib.sh"
if [ "${AWEQ_SANITIZED:-0}" = 1 ]; then
    echo "skipped: opt-125m quantization runs in the normal build only (sanitizer build is ~10x slower)"
    exit 77
fi
CHECK=(python3 "$(dirname "$0")/report_check.py")
# 40 x 64 calibration tokens: 36 calibrate in 9 blocks of 4, 4 validate
"$EXE" synth --shape opt-125m --calib-seqs 40 --calib-len 64 --out "$WORK/m" --quiet || { bad synth; finish; exit 1; }
if "$EXE" --model "$WORK/m" --out "$WORK/q" --batch 4 --holdout 0.1 --log-json "$WORK/log.jsonl" \
        >"$WORK/q.out" 2>"$WORK/q.err"; then
    ok "quantize opt-125m ($(grep '^time:' "$WORK/q.out"))"
else
    bad "quantize: $(tail -3 "$WORK/q.err")"; finish; exit 1
fi
"${CHECK[@]}" equalization "$WORK/q/report.html" "$WORK/q/aweq_report.json" --outliers 6 --min-factor 4 >"$WORK/chk.txt"
rc=$?
sed 's/^/  /' "$WORK/chk.txt"
[ $rc -eq 0 ] && ok "equalization figure of opt-125m checked against the JSON" || bad "equalization: $(grep FAILED "$WORK/chk.txt" | head -3)"
"${CHECK[@]}" plots "$WORK/q/report.html" --min 20 >"$WORK/chk.txt" && ok "no empty plot" || bad "plots: $(grep FAILED "$WORK/chk.txt")"

python3 - "$WORK/log.jsonl" >"$WORK/eta.txt" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
b = [e for e in ev if e["event"] == "phase_begin" and e["phase"] == "calibrate"][0]
end = [e for e in ev if e["event"] == "phase_end" and e["phase"] == "calibrate"][0]
t0, t1 = b["t"], end["t"]
worst_total, worst_left = 0.0, 0.0
for e in ev:
    if e["event"] != "progress" or e["phase"] != "calibrate":
        continue
    left = t1 - e["t"]
    err_total = abs(e["t"] + e["eta_s"] - t1) / (t1 - t0)
    err_left = abs(e["eta_s"] - left) / left if left > 0 else 0.0
    after = 4 * e["done"] >= e["total"]
    if after and e["done"] < e["total"]:
        worst_total, worst_left = max(worst_total, err_total), max(worst_left, err_left)
    print("  block %d/%d at %5.2f s: %5.2f s left predicted, %5.2f s actual: end off by %4.1f%% of the phase%s"
          % (e["done"], e["total"], e["t"] - t0, e["eta_s"], left, 100 * err_total, "" if after else " (first quarter)"))
# how steady the machine was: the slowest block over the fastest
ts = [t0] + [e["t"] for e in ev if e["event"] == "progress" and e["phase"] == "calibrate"]
d = [b - a for a, b in zip(ts, ts[1:])]
print("RESULT %.3f %.3f %.2f %.2f %.2f" % (worst_total, worst_left, t1 - t0, min(d), max(d)))
PY
cat "$WORK/eta.txt" | grep -v RESULT
set -- $(sed -n 's/^RESULT //p' "$WORK/eta.txt")
# The time left can be no better than the blocks are steady: on a node
# where other work slowed some blocks by over 30% (shared CI runners), the
# 20% bound is reported, not enforced.
if [ -n "${1:-}" ] && awk -v a="$4" -v b="$5" 'BEGIN { exit !(b > 1.3 * a) }'; then
    echo "note: blocks took $4-$5 s (other load on this machine): ETA off by up to $(awk -v w="$1" 'BEGIN { printf "%.1f", 100 * w }')% of the phase, bound not enforced"
elif [ -n "${1:-}" ] && awk -v w="$1" 'BEGIN { exit !(w <= 0.20) }'; then
    ok "calibration ETA after the first quarter: predicted end within $(awk -v w="$1" 'BEGIN { printf "%.1f", 100 * w }')% of the $3 s phase (time left within $(awk -v w="$2" 'BEGIN { printf "%.0f", 100 * w }')%)"
else
    bad "calibration ETA off by ${1:-?} of the phase"
fi
finish
