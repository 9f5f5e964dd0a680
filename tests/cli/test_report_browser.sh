#!/usr/bin/env bash
# report.html in a real browser (headless Chromium): the report of a run and
# a two-method comparison (with WikiText-2 perplexities from --eval-text)
# load with no console message (no script error, no failed resource), every
# plot of the page as the browser parsed it has data marks, and the
# screenshots are not blank. A page with a script error is caught (the
# check of the checker). Skipped (exit 77) without chromium (Debian:
# apt-get install chromium).
#
# With AWEQ_SCREENSHOTS=DIR it instead runs the README's default job
# (opt-125m-shaped model, 2 ranks in 2 stages) and a two-method comparison
# on the same model with a WikiText-2 slice, and writes DIR/report-default.png
# and DIR/report-compare.png (the docs' screenshots; minutes of CPU):
#   AWEQ_EXE=build/aweq-dist AWEQ_SHARED_DATA=../shared/data AWEQ_SCREENSHOTS=docs \
#       bash tests/cli/test_report_browser.sh
. "$(dirname "$0")/lib.sh"
CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$CHROME" ]; then
    echo "skipped: no chromium (Debian: apt-get install chromium)"
    exit 77
fi
CHECK=(python3 "$(cd "$(dirname "$0")" && pwd)/report_check.py")
DATA=${AWEQ_SHARED_DATA:?AWEQ_SHARED_DATA is not set; run through ctest}
MPI=(timeout 600 mpirun --oversubscribe -n 2)
BROWSER=(timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run
         --disable-extensions --enable-logging=stderr --v=0)

# open NAME PAGE WIDTHxHEIGHT: screenshot NAME.png and the DOM as parsed,
# console messages in NAME.console
open_page() {
    local name=$1 page=$2 size=$3
    "${BROWSER[@]}" --window-size="$size" --screenshot="$WORK/$name.png" "file://$page" >/dev/null 2>"$WORK/$name.log1"
    "${BROWSER[@]}" --dump-dom "file://$page" >"$WORK/$name.dom.html" 2>"$WORK/$name.log2"
    grep -h ':CONSOLE' "$WORK/$name.log1" "$WORK/$name.log2" >"$WORK/$name.console" || true
}
# check_page NAME PAGE SIZE MIN_PLOTS
check_page() {
    open_page "$1" "$2" "$3"
    [ -s "$WORK/$1.png" ] || { bad "$1: no screenshot: $(tail -3 "$WORK/$1.log1")"; return; }
    [ ! -s "$WORK/$1.console" ] && ok "$1: no console message (no script error, no failed load)" \
        || bad "$1: console: $(head -3 "$WORK/$1.console")"
    "${CHECK[@]}" plots "$WORK/$1.dom.html" --min "$4" >"$WORK/$1.chk" \
        && ok "$1: $(head -1 "$WORK/$1.chk" | cut -c5-), none empty, as the browser parsed the page" \
        || bad "$1: $(grep FAILED "$WORK/$1.chk" | head -3)"
    "${CHECK[@]}" png "$WORK/$1.png" >"$WORK/$1.png.chk" && ok "$1: $(cut -c5- "$WORK/$1.png.chk")" \
        || bad "$1: $(cat "$WORK/$1.png.chk")"
}

# the checker catches a script error
printf '<!DOCTYPE html><html><body><svg class="plot"><circle class="mark" r="2"/></svg><script>no_such_function();</script></body></html>\n' \
    >"$WORK/broken.html"
open_page broken "$WORK/broken.html" 400,300
grep -q "Uncaught ReferenceError" "$WORK/broken.console" && ok "a page with a script error is caught" \
    || bad "the browser check missed a script error: $(cat "$WORK/broken.log2" | tail -3)"

# a model folder with the GPT-2 tokenizer, so that --eval-text can run
with_tokenizer() {
    cp "$DATA/gpt2-tokenizer/encoder.json" "$1/vocab.json"
    cp "$DATA/gpt2-tokenizer/vocab.bpe" "$1/merges.txt"
    printf '{"tokenizer_class": "GPT2Tokenizer", "add_bos_token": true, "bos_token": "</s>", "eos_token": "</s>"}\n' \
        >"$1/tokenizer_config.json"
}

if [ -n "${AWEQ_SCREENSHOTS:-}" ]; then
    # the README's default job (paths as scripts/run-default.sh has them),
    # then AWEQ and RTN on the same model with a WikiText-2 slice (windows of
    # the calibration length, 128 tokens)
    SHOTS=$(cd "$AWEQ_SCREENSHOTS" && pwd) || { bad "no folder $AWEQ_SCREENSHOTS"; finish; exit 1; }
    cd "$WORK" && mkdir -p runs
    M=runs/opt-125m-synth
    "$EXE" synth --shape opt-125m --out "$M" --quiet || { bad synth; finish; exit 1; }
    "${MPI[@]}" "$EXE" --model "$M" --out runs/opt-125m-aweq-w8a8 --stages 2 >"$WORK/default.txt" 2>&1 \
        && ok "default job: $(grep '^time:' "$WORK/default.txt")" || bad "default job: $(tail -3 "$WORK/default.txt")"
    cat "$WORK/default.txt"
    with_tokenizer "$M"
    sed -n '1,60p' "$DATA/wikitext-2/wiki.test.raw" >wiki-test-head.txt
    for method in aweq rtn; do
        "${MPI[@]}" "$EXE" --model "$M" --out "runs/opt-125m-$method" --stages 2 --method "$method" \
            --eval-text wiki-test-head.txt --quiet >"$WORK/$method.txt" 2>&1 \
            && ok "$method with --eval-text" || bad "$method: $(tail -3 "$WORK/$method.txt")"
    done
    "$EXE" report runs/opt-125m-aweq runs/opt-125m-rtn --out "$WORK/compare.html" >/dev/null || bad "report of two"
    check_page default "$WORK/runs/opt-125m-aweq-w8a8/report.html" 1280,2700 20
    check_page compare "$WORK/compare.html" 1280,720 40
    cp "$WORK/default.png" "$SHOTS/report-default.png"
    cp "$WORK/compare.png" "$SHOTS/report-compare.png"
    ls -la "$SHOTS"/report-*.png
    cd /
    finish
    exit $?
fi

# tiny models: one with the GPT-2 vocabulary for a WikiText-2 slice
TINY=(--hidden 64 --layers 4 --heads 4 --ffn 256 --vocab 50304 --max-pos 256 --calib-seqs 24 --calib-len 64 --quiet)
"$EXE" synth "${TINY[@]}" --out "$WORK/m" || { bad synth; finish; exit 1; }
with_tokenizer "$WORK/m"
sed -n '2500,2540p' "$DATA/wikitext-2/wiki.test.raw" >"$WORK/wiki-slice.txt"
"${MPI[@]}" "$EXE" --model "$WORK/m" --out "$WORK/q" --batch 4 --stages 2 --quiet >"$WORK/q.txt" 2>&1 \
    && ok "quantize, 2 ranks" || bad "quantize: $(tail -3 "$WORK/q.txt")"
for method in aweq smoothquant; do
    "$EXE" --model "$WORK/m" --out "$WORK/$method" --batch 4 --method "$method" --eval-text "$WORK/wiki-slice.txt" \
        --quiet >"$WORK/$method.txt" 2>&1 && ok "$method with --eval-text" || bad "$method: $(tail -3 "$WORK/$method.txt")"
done
"$EXE" report "$WORK/aweq" "$WORK/smoothquant" --out "$WORK/compare.html" >/dev/null || bad "report of two"
grep -q "wiki-slice.txt" "$WORK/compare.html" && ok "the comparison shows the eval text's perplexities" \
    || bad "no eval text in the comparison"
check_page default "$WORK/q/report.html" 1280,2300 20
check_page compare "$WORK/compare.html" 1280,1150 40
finish
