#!/usr/bin/env bash
# eval on a tiny generated model: the quantizer's end-to-end W8A8 perplexity
# is reproduced by `aweq-dist eval` from the written checkpoint alone, with the
# same held-out sequences and blocks of samples; an unquantized model and bad
# usage are refused.
. "$(dirname "$0")/lib.sh"

TINY=(--hidden 64 --layers 3 --heads 4 --ffn 256 --vocab 1000 --max-pos 256
      --calib-seqs 20 --calib-len 32 --max-shard-size 60K --quiet)

"$EXE" synth "${TINY[@]}" --out "$WORK/m" && ok "synth tiny" || bad "synth tiny"
if "$EXE" --model "$WORK/m" --out "$WORK/q" --holdout 0.25 --quiet >"$WORK/run.txt" 2>"$WORK/run.err"; then
    ok "quantize"
else
    bad "quantize: $(cat "$WORK/run.err")"
fi
# "end to end: perplexity fp X, W8A8 Y; ..."
Y=$(sed -n 's/^end to end: perplexity fp [^,]*, W8A8 \([^;]*\);.*/\1/p' "$WORK/run.txt")
[ -n "$Y" ] && ok "pipeline W8A8 perplexity $Y" || bad "no 'end to end' line: $(cat "$WORK/run.txt")"
# the same number in full precision, from the report (the test reads it; eval must not)
YJ=$(python3 -c 'import json,sys; print(repr(json.load(open(sys.argv[1]))["end_to_end"]["perplexity_w8a8"]))' \
     "$WORK/q/aweq_report.json" 2>/dev/null || true)

# the report and everything but config.json and the safetensors are hidden
# from eval: move them out of the folder
mkdir -p "$WORK/aside"
for f in "$WORK/q"/*; do
    case "$(basename "$f")" in config.json|*.safetensors|model.safetensors.index.json) ;; *) mv "$f" "$WORK/aside/" ;; esac
done

if "$EXE" eval --model "$WORK/q" --tokens "$WORK/m/calibration.tokens" --holdout 0.25 \
        >"$WORK/eval.txt" 2>"$WORK/eval.err"; then
    ok "eval"
else
    bad "eval: $(cat "$WORK/eval.err")"
fi
grep -q "^aweq-dist: eval: block 1/" "$WORK/eval.err" && ok "progress on stderr" || bad "no progress lines on stderr"
# "eval: DIR: W8A8 perplexity E on 5 sequences x 32 tokens (155 predicted tokens)"
E=$(sed -n 's/^eval: .*: W8A8 perplexity \([^ ]*\) on .*/\1/p' "$WORK/eval.txt")
[ -n "$E" ] && ok "eval W8A8 perplexity $E" || bad "no perplexity line: $(cat "$WORK/eval.txt")"
grep -q "on 5 sequences x 32 tokens (155 predicted tokens)" "$WORK/eval.txt" \
    && ok "5 held-out sequences, 155 predicted tokens" || bad "counts: $(cat "$WORK/eval.txt")"

# agreement: 1e-6 relative (the table prints 4 decimals: allow their rounding)
if [ -n "$Y" ] && [ -n "$E" ] && awk -v y="$Y" -v e="$E" 'BEGIN {
        d = y - e; if (d < 0) d = -d; tol = 1e-6 * y; if (tol < 5e-5) tol = 5e-5; exit !(d <= tol) }'; then
    ok "eval $E == pipeline $Y (table)"
else
    bad "eval $E != pipeline $Y (table)"
fi
if [ -z "$YJ" ]; then
    bad "no perplexity_w8a8 in aweq_report.json"
elif awk -v y="$YJ" -v e="$E" 'BEGIN { d = y - e; if (d < 0) d = -d; exit !(d <= 1e-6 * y) }'; then
    ok "eval $E == pipeline $YJ (report) to 1e-6"
else
    bad "eval $E != pipeline $YJ (report)"
fi

# --quiet: the one line on stdout, nothing on stderr
"$EXE" eval --model "$WORK/q" --tokens "$WORK/m/calibration.tokens" --holdout 0.25 --quiet \
    >"$WORK/quiet.txt" 2>"$WORK/quiet.err" || bad "eval --quiet failed"
[ ! -s "$WORK/quiet.err" ] && [ "$(wc -l <"$WORK/quiet.txt")" -eq 1 ] && ok "--quiet" || bad "--quiet: $(cat "$WORK/quiet.err")"

# refusals
expect_fail "unquantized model" "not a quantized checkpoint" \
    "$EXE" eval --model "$WORK/m" --tokens "$WORK/m/calibration.tokens"
cp -r "$WORK/q" "$WORK/dyn"
python3 - "$WORK/dyn/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["quantization_config"]["config_groups"]["group_0"]["input_activations"]["dynamic"] = True
json.dump(c, open(p, "w"), indent=2)
PY
expect_fail "dynamic activations" "input activations are dynamic" \
    "$EXE" eval --model "$WORK/dyn" --tokens "$WORK/m/calibration.tokens"
expect_fail "missing token file" "nope.tokens" "$EXE" eval --model "$WORK/q" --tokens "$WORK/nope.tokens"

# usage
"$EXE" eval --help | grep -q "aweq-dist eval --model DIR --tokens FILE" && ok "eval --help" || bad "eval --help"
rc=0; "$EXE" eval --model "$WORK/q" 2>/dev/null || rc=$?
[ $rc -eq 2 ] && ok "no --tokens exits 2" || bad "no --tokens exit $rc"
rc=0; "$EXE" eval --model "$WORK/q" --tokens "$WORK/m/calibration.tokens" --holdout 1 2>/dev/null || rc=$?
[ $rc -eq 2 ] && ok "--holdout 1 exits 2" || bad "--holdout 1 exit $rc"
rc=0; "$EXE" eval --model "$WORK/q" --tokens "$WORK/m/calibration.tokens" --batch 0 2>/dev/null || rc=$?
[ $rc -eq 2 ] && ok "--batch 0 exits 2" || bad "--batch 0 exit $rc"

finish
