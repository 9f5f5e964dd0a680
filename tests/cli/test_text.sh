#!/usr/bin/env bash
# Real text end to end on a tiny generated model with the GPT-2 tokenizer
# (OPT-style: BOS added): `tokenize` writes the windows a run given
# --calib-text draws (same checkpoint bytes), 1 and 2 ranks agree byte for
# byte, --eval-text's perplexities match `eval --text` on the fp model and on
# the written checkpoint, `eval --text` gives the same number on 1 and 2
# ranks and on the staged backend, and bad text is refused with the file named.
. "$(dirname "$0")/lib.sh"

DATA=${AWEQ_SHARED_DATA:?AWEQ_SHARED_DATA is not set; run through ctest}
TOKDIR="$DATA/gpt2-tokenizer"
[ -f "$TOKDIR/encoder.json" ] || { bad "no $TOKDIR/encoder.json"; finish; exit 1; }
MPI=(mpiexec --oversubscribe -n 2)

"$EXE" synth --hidden 64 --layers 2 --heads 4 --ffn 256 --vocab 50304 --max-pos 256 --max-shard-size 2M \
    --quiet --out "$WORK/m" && ok "synth tiny with a GPT-2 vocabulary" || bad "synth"
rm -f "$WORK/m/calibration.tokens"
gpt2_tokenizer "$WORK/m"
# a slice of WikiText-2 as calibration text and as evaluation text
head -n 400 "$DATA/wikitext-2/wiki.test.raw" >"$WORK/calib.txt"
sed -n '2500,2560p' "$DATA/wikitext-2/wiki.test.raw" >"$WORK/eval.txt"

expect_fail "no calibration tokens and no text" "pass --calib-text" \
    "$EXE" --model "$WORK/m" --quiet

DRAW=(--calib-samples 12 --calib-len 64 --seed 3 --holdout 0.25)
if "$EXE" tokenize --model "$WORK/m" --text "$WORK/calib.txt" --out "$WORK/calib.tok" "${DRAW[@]}" \
        >"$WORK/tok.out" 2>"$WORK/tok.err"; then
    ok "tokenize: $(cat "$WORK/tok.out")"
else
    bad "tokenize: $(cat "$WORK/tok.err")"
fi
grep -q "12 calibration + 4 held-out windows of 64 tokens" "$WORK/tok.out" \
    && ok "tokenize drew 12 + 4 windows" || bad "tokenize counts: $(cat "$WORK/tok.out")"

run() { # run NAME [args...]: quantize, keep stdout
    local name=$1; shift
    if "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; then ok "$name"; else bad "$name: $(tail -n 3 "$WORK/$name.err")"; fi
}
run q_text "$EXE" --model "$WORK/m" --calib-text "$WORK/calib.txt" "${DRAW[@]}" --batch 4 \
    --eval-text "$WORK/eval.txt" --out "$WORK/q1"
run q_tokfile "$EXE" --model "$WORK/m" --calib "$WORK/calib.tok" --holdout 0.25 --batch 4 --out "$WORK/q2"
run q_text_2ranks "${MPI[@]}" "$EXE" --model "$WORK/m" --calib-text "$WORK/calib.txt" "${DRAW[@]}" --batch 4 \
    --eval-text "$WORK/eval.txt" --out "$WORK/q3" --stages 2

same_files() { # same_files A B PATTERN...: every file matching in A equals B's
    local a=$1 b=$2 f n=0; shift 2
    for f in "$@"; do
        for p in "$a"/$f; do
            [ -f "$p" ] || continue
            cmp -s "$p" "$b/$(basename "$p")" || { echo "differs: $(basename "$p")"; return 1; }
            n=$((n + 1))
        done
    done
    [ "$n" -gt 0 ]
}
same_files "$WORK/q1" "$WORK/q2" '*.safetensors' 'model.safetensors.index.json' \
    && ok "--calib-text and the token file from 'tokenize' give the same checkpoint" \
    || bad "--calib-text and --calib differ"
# every file, less the record of how the job ran (lib.sh: checkpoint_sums)
diff <(checkpoint_sums "$WORK/q1") <(checkpoint_sums "$WORK/q3") >/dev/null \
    && ok "1 rank and 2 ranks: every file identical (but aweq_run.json, report.html's run section)" \
    || bad "1 rank and 2 ranks differ"
grep -q "^eval.txt: perplexity fp" "$WORK/q_text.out" && ok "eval-text line: $(grep '^eval.txt' "$WORK/q_text.out")" \
    || bad "no eval-text line: $(cat "$WORK/q_text.out")"

report() { python3 -c 'import json,sys; print(repr(json.load(open(sys.argv[1]))["eval_text"][sys.argv[2]]))' "$@"; }
PFP=$(report "$WORK/q1/aweq_report.json" perplexity_fp 2>/dev/null)
PQ=$(report "$WORK/q1/aweq_report.json" perplexity_w8a8 2>/dev/null)
NW=$(report "$WORK/q1/aweq_report.json" windows 2>/dev/null)
[ -n "$PFP" ] && [ -n "$PQ" ] && ok "report: eval_text fp $PFP, W8A8 $PQ, $NW windows" || bad "no eval_text in the report"

# eval --text: "eval: DIR: fp wikitext2 ppl X on N windows x L tokens ..."
ev() { # ev NAME [launcher...] -- args: the perplexity printed
    local name=$1; shift
    if "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; then
        sed -n 's/^eval: .* wikitext2 ppl \([^ ]*\) on \([0-9]*\) windows.*/\1 \2/p' "$WORK/$name.out"
    else
        echo "FAILED $(tail -n 2 "$WORK/$name.err")"
    fi
}
E1=$(ev e1 "$EXE" eval --model "$WORK/m" --text "$WORK/eval.txt" --seq-len 64 --quiet)
E2=$(ev e2 "${MPI[@]}" "$EXE" eval --model "$WORK/m" --text "$WORK/eval.txt" --seq-len 64 --quiet)
E3=$(ev e3 "$EXE" eval --model "$WORK/m" --text "$WORK/eval.txt" --seq-len 64 --backend cpu-staged --quiet)
EQ=$(ev eq "$EXE" eval --model "$WORK/q1" --text "$WORK/eval.txt" --seq-len 64 --quiet)
case "$E1" in FAILED*|"") bad "eval --text fp: $E1 $(cat "$WORK/e1.out")" ;; *) ok "eval --text fp: $E1" ;; esac
[ "$E1" = "$E2" ] && ok "eval --text: 1 rank == 2 ranks ($E2)" || bad "eval --text: 1 rank '$E1' != 2 ranks '$E2'"
[ "$E1" = "$E3" ] && ok "eval --text: cpu == cpu-staged" || bad "eval --text: cpu '$E1' != cpu-staged '$E3'"
close() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-5 * a) }'; }
set -- $E1
if [ -n "${1:-}" ] && [ -n "$PFP" ] && close "$1" "$PFP" && [ "${2:-}" = "$NW" ]; then
    ok "run's --eval-text fp $PFP == eval --text $1 ($NW windows)"
else
    bad "run's --eval-text fp $PFP ($NW windows) != eval --text '$E1'"
fi
set -- $EQ
if [ -n "${1:-}" ] && [ -n "$PQ" ] && close "$1" "$PQ"; then
    ok "run's --eval-text W8A8 $PQ == eval --text on the checkpoint $1"
else
    bad "run's --eval-text W8A8 $PQ != eval --text on the checkpoint '$EQ'"
fi

# the protocol's rows: a .jsonl document is a row (empty ones too), a .txt
# row of whitespace alone is "" (Hugging Face's wikitext rows): the same text
python3 - "$WORK/eval.txt" "$WORK/rows.txt" "$WORK/rows.jsonl" <<'PY'
import json, sys
rows = open(sys.argv[1], encoding="utf-8", newline="").read().split("\n")
rows = [r + "\n" for r in rows[:-1]]
mixed = []
for i, r in enumerate(rows):
    mixed.append(r)
    if i % 3 == 0:
        mixed.append(" \t \n" if i % 2 else "\u3000\n")   # whitespace-only rows
with open(sys.argv[2], "w", encoding="utf-8", newline="") as f:
    f.write("".join(mixed))
with open(sys.argv[3], "w", encoding="utf-8") as f:
    for r in mixed:
        f.write(json.dumps({"text": r if r.strip() else ""}) + "\n")
PY
R1=$(ev r1 "$EXE" eval --model "$WORK/m" --text "$WORK/rows.txt" --seq-len 64 --quiet)
R2=$(ev r2 "$EXE" eval --model "$WORK/m" --text "$WORK/rows.jsonl" --seq-len 64 --quiet)
case "$R1" in FAILED*|"") bad "eval --text rows.txt: $R1" ;; *)
    [ "$R1" = "$R2" ] && ok "whitespace rows of a .txt == empty documents of a .jsonl ($R1)" \
        || bad "rows.txt '$R1' != rows.jsonl '$R2'" ;; esac
[ "$R1" != "$E1" ] && ok "the blank rows count (ppl differs from eval.txt's)" || bad "blank rows changed nothing"

# bad text, each named in one error line
: >"$WORK/empty.txt"
expect_fail "empty corpus" "empty.txt" "$EXE" tokenize --model "$WORK/m" --text "$WORK/empty.txt" --out "$WORK/x.tok"
echo "Just a few words." >"$WORK/short.txt"
expect_fail "corpus shorter than a window" "short.txt" \
    "$EXE" tokenize --model "$WORK/m" --text "$WORK/short.txt" --calib-len 64 --out "$WORK/x.tok"
printf '{"text": "fine"}\n{"text": oops}\n' >"$WORK/bad.jsonl"
expect_fail "jsonl line that is not JSON" "bad.jsonl" \
    "$EXE" tokenize --model "$WORK/m" --text "$WORK/bad.jsonl" --out "$WORK/x.tok"
printf '{"body": "no text field"}\n' >"$WORK/nofield.jsonl"
expect_fail "jsonl without the field" "nofield.jsonl" \
    "$EXE" tokenize --model "$WORK/m" --text "$WORK/nofield.jsonl" --out "$WORK/x.tok"
printf 'caf\xc3 au lait\n' >"$WORK/badutf8.txt"
expect_fail "invalid UTF-8" "badutf8.txt" \
    "$EXE" tokenize --model "$WORK/m" --text "$WORK/badutf8.txt" --out "$WORK/x.tok"
expect_fail "eval text shorter than a window" "short.txt" \
    "$EXE" eval --model "$WORK/m" --text "$WORK/short.txt" --seq-len 64 --quiet
[ ! -e "$WORK/x.tok" ] && ok "no token file left by the failures" || bad "a failed tokenize left $WORK/x.tok"
finish
