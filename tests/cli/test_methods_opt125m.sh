#!/usr/bin/env bash
# The single-rank AWEQ claims on the generated opt-125m-shaped model (all
# methods, side by side): AWEQ 5x below RTN on the outlier-fed layers, the
# lowest KL, bias correction measured on every layer. Minutes of CPU work:
# skipped (exit 77) in the sanitizer build, where the unit tests cover the
# same code on small models.
. "$(dirname "$0")/lib.sh"
if [ "${AWEQ_SANITIZED:-0}" = 1 ]; then
    echo "skipped: opt-125m quantization runs in the normal build only (sanitizer build is ~10x slower)"
    exit 77
fi
"$EXE" synth --shape opt-125m --out "$WORK/m" --quiet || { bad "synth"; finish; exit 1; }
python3 "$AWEQ_SOURCE_DIR/bench/compare_methods.py" "$EXE" "$WORK/m" "$WORK" --check
