#!/usr/bin/env bash
# The real-folder check, as a user runs it: a trained OPT's Hugging Face
# folder (config.json, model.safetensors, tokenizer files; no token file)
# quantized from text with --calib-text and judged by the WikiText-2
# protocol with --eval-text, for rtn, smoothquant and aweq; aweq again on 2
# ranks (every output byte must match); the fp perplexity of `eval --text`
# beside transformers' (bench/hf_ppl.py) on the same windows; and whether
# transformers loads the quantized folder and its tokenizer.
#
#   bash bench/real_folder.sh [MODEL_DIR] [WORK_DIR]
#
# MODEL_DIR defaults to build/trained-opt (made by bench/train_opt_wikitext.py);
# the text is WikiText-2's test file cut as that script cuts it: the first
# 85% (the training part) calibrates, the held-out rest evaluates.
# Environment: AWEQ_EXE (build/aweq-dist), PYTHON (build/venv/bin/python,
# with torch + transformers; compressed-tensors for loading the output),
# AWEQ_SHARED_DATA (../shared/data), CALIB_SAMPLES (128), SEQ_LEN (512).
set -euo pipefail
cd "$(dirname "$0")/.."
EXE=${AWEQ_EXE:-build/aweq-dist}
MODEL=${1:-build/trained-opt}
WORK=${2:-build/real-folder}
DATA=${AWEQ_SHARED_DATA:-../shared/data}
PY=${PYTHON:-build/venv/bin/python}
N=${CALIB_SAMPLES:-128}
L=${SEQ_LEN:-512}
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$WORK"
# the training script's cut: after the first line ending at or after 85% of the bytes
python3 - "$DATA/wikitext-2/wiki.test.raw" "$WORK" <<'PY'
import sys
b = open(sys.argv[1], "rb").read()
cut = b.index(b"\n", int(len(b) * 0.85)) + 1
open(sys.argv[2] + "/train.txt", "wb").write(b[:cut])
open(sys.argv[2] + "/heldout.txt", "wb").write(b[cut:])
print(f"text: {cut} bytes calibrate (train part), {len(b) - cut} bytes held out")
PY
RES="$WORK/results.md"
{
    echo "# Real folder: $(basename "$MODEL"), calibrated on the training text, WikiText-2 protocol on the held-out text"
    echo
    echo "$(date -u +%Y-%m-%d), $(nproc) cores, $("$EXE" --version); command: bash bench/real_folder.sh $MODEL $WORK"
    echo
} >"$RES"

# fp: the program's eval against transformers on the same windows
"$EXE" eval --model "$MODEL" --text "$WORK/heldout.txt" --seq-len "$L" --quiet | tee "$WORK/eval-fp.txt"
"$PY" bench/hf_ppl.py --model "$MODEL" --text "$WORK/heldout.txt" --seq-len "$L" | tee "$WORK/hf-fp.txt"
OURS=$(sed -n 's/.*wikitext2 ppl \([^ ]*\) .*/\1/p' "$WORK/eval-fp.txt")
THEIRS=$(sed -n 's/.*wikitext2 ppl \([^ ]*\) .*/\1/p' "$WORK/hf-fp.txt")
REL=$(awk -v a="$OURS" -v b="$THEIRS" 'BEGIN { d = (a - b) / b; if (d < 0) d = -d; printf "%.2e", d }')
{
    echo "fp perplexity at $L tokens: aweq-dist eval --text $OURS, transformers OPTForCausalLM $THEIRS (relative difference $REL)"
    echo
    echo "| method | W8A8 ppl | fp ppl | W8A8 / fp | KL(fp‖W8A8) | top-1 agreement | calibrate s | 1 vs 2 ranks |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
} >>"$RES"

for m in rtn smoothquant aweq; do
    rm -rf "$WORK/q-$m"
    "$EXE" --model "$MODEL" --calib-text "$WORK/train.txt" --calib-samples "$N" --calib-len "$L" \
        --eval-text "$WORK/heldout.txt" --method "$m" --out "$WORK/q-$m" --quiet | tee "$WORK/run-$m.txt"
    same="-"
    if [ "$m" = aweq ]; then
        rm -rf "$WORK/q-$m-2"
        mpirun -n 2 --oversubscribe "$EXE" --model "$MODEL" --calib-text "$WORK/train.txt" --calib-samples "$N" \
            --calib-len "$L" --eval-text "$WORK/heldout.txt" --method "$m" --out "$WORK/q-$m-2" --stages 2 --quiet \
            >"$WORK/run-$m-2.txt"
        # every file but the record of how the job ran (aweq_run.json, and
        # report.html's run section): tests/cli/lib.sh's checkpoint_sums
        sums() { (cd "$1" && for f in *; do case "$f" in
            aweq_run.json) ;;
            report.html) echo "$(sed '/<!-- aweq-run: begin/,/<!-- aweq-run: end/d' "$f" | sha256sum | cut -d' ' -f1)  $f" ;;
            *) sha256sum -- "$f" ;; esac; done | sort -k2); }
        sums "$WORK/q-$m" >"$WORK/sha1.txt"
        sums "$WORK/q-$m-2" >"$WORK/sha2.txt"
        if cmp -s "$WORK/sha1.txt" "$WORK/sha2.txt"; then
            same="identical ($(wc -l <"$WORK/sha1.txt") files)"
        else
            same="DIFFER"
        fi
    fi
    python3 - "$WORK/q-$m/aweq_report.json" "$m" "$WORK/run-$m.txt" "$same" >>"$RES" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))["eval_text"]
t = re.search(r"calibrate ([0-9.]+) s", open(sys.argv[3]).read())
print(f"| {sys.argv[2]} | {r['perplexity_w8a8']:.4f} | {r['perplexity_fp']:.4f} | "
      f"{r['perplexity_w8a8'] / r['perplexity_fp']:.4f} | {r['kl_divergence']:.5f} | "
      f"{100 * r['top1_agreement']:.2f}% | {t.group(1) if t else '?'} | {sys.argv[4]} |")
PY
done

# transformers on the output folder: the tokenizer, and the model when compressed-tensors is there
if "$PY" - "$WORK/q-aweq" "$MODEL" >"$WORK/hf-load.txt" 2>&1 <<'PY'
import sys
from transformers import AutoTokenizer
a, b = AutoTokenizer.from_pretrained(sys.argv[1]), AutoTokenizer.from_pretrained(sys.argv[2])
s = "AutoTokenizer.from_pretrained(out) works: " + repr(a("Hello world")["input_ids"])
assert a("Hello world")["input_ids"] == b("Hello world")["input_ids"]
print(s)
PY
then cat "$WORK/hf-load.txt" | tee -a "$RES"; else echo "AutoTokenizer on the output FAILED: $(tail -n 2 "$WORK/hf-load.txt")" | tee -a "$RES"; fi
if "$PY" -c "import compressed_tensors" 2>/dev/null; then
    if "$PY" bench/hf_ppl.py --model "$WORK/q-aweq" --text "$WORK/heldout.txt" --seq-len "$L" >"$WORK/hf-q.txt" 2>&1; then
        echo "" >>"$RES"
        echo "transformers loads the aweq W8A8 output (compressed-tensors): $(grep 'wikitext2 ppl' "$WORK/hf-q.txt")" | tee -a "$RES"
    else
        echo "transformers could not load the output: $(tail -n 2 "$WORK/hf-q.txt")" | tee -a "$RES"
    fi
fi
echo
cat "$RES"
