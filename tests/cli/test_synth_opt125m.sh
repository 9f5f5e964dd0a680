#!/usr/bin/env bash
# The built-in default: an opt-125m-shaped checkpoint in under a minute, and
# inspect reports the real model's parameter count (125,239,296 with the tied head).
. "$(dirname "$0")/lib.sh"

start=$(date +%s%N)
"$EXE" synth --shape opt-125m --out "$WORK/m" && ok "synth opt-125m" || bad "synth opt-125m"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
secs="$((ms / 1000)).$(printf %03d $((ms % 1000)))"
echo "synth opt-125m took $secs s"
if [ "$ms" -lt 60000 ]; then ok "under a minute ($secs s)"; else bad "took $secs s"; fi
"$EXE" inspect "$WORK/m" >"$WORK/inspect.txt" 2>&1 || bad "inspect: $(tail -2 "$WORK/inspect.txt")"
tail -5 "$WORK/inspect.txt"
grep -q "parameters: 125,239,296 (125.2M" "$WORK/inspect.txt" && ok "125.2M parameters" || bad "parameter count: $(grep parameters "$WORK/inspect.txt")"
grep -q "d=768, layers=12, heads=12, ffn=3072, vocab=50272" "$WORK/inspect.txt" && ok "shape" || bad "shape line"
grep -q "calibration.tokens: 80 sequences x 128 tokens" "$WORK/inspect.txt" && ok "calibration tokens" || bad "calibration tokens"
finish
