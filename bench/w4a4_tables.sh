#!/usr/bin/env bash
# The W4A4 / mixed-precision study on one model folder: `aweq-dist sweep`
# over the three grids of bench/grids/ (group W4A4 by method; W4A4 with kept
# fp channels, without and with SmoothQuant or AWEQ first; W4A16 / W4A8 /
# W3A8 with kept channels), calibrated with --calib-text on a training text
# and judged by the WikiText-2 protocol's perplexity on held-out text.
# Then the sweep's cost against one single-point run of the same model:
# the 12-point group grid vs `aweq-dist run` of its first point.
#
#   bash bench/w4a4_tables.sh MODEL_DIR CALIB_TEXT EVAL_TEXT [WORK_DIR]
#
# Environment: AWEQ_EXE (build/aweq-dist), CALIB_SAMPLES (128), SEQ_LEN
# (512), RANKS (1: mpirun -n RANKS when above 1), GRIDS (the grid names to
# run, default all three), TIMING (1: also time the single-point run), KL
# (1: sweep --kl, KL and top-1 per point beside perplexity), EVAL_WINDOWS
# (sweep --eval-windows N: the first N windows only).
# Writes WORK_DIR/<grid>/sweep.{md,json} and WORK_DIR/tables.md.
set -euo pipefail
cd "$(dirname "$0")/.."
EXE=${AWEQ_EXE:-build/aweq-dist}
MODEL=$1 CALIB=$2 EVAL=$3
WORK=${4:-build/w4a4-$(basename "$MODEL")}
N=${CALIB_SAMPLES:-128}
L=${SEQ_LEN:-512}
RANKS=${RANKS:-1}
GRIDS=${GRIDS:-"w4a4-groups w4a4-keep lowbit-keep"}
TIMING=${TIMING:-1}
EXTRA=()
[ "${KL:-0}" = 1 ] && EXTRA+=(--kl)
[ -n "${EVAL_WINDOWS:-}" ] && EXTRA+=(--eval-windows "$EVAL_WINDOWS")
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$WORK"
LAUNCH=()
[ "$RANKS" -gt 1 ] && LAUNCH=(mpirun --oversubscribe -n "$RANKS")
now() { date +%s.%N; }
{
    echo "# $(basename "$MODEL"): W4A4 and mixed precision"
    echo
    echo "calibration: $N x $L tokens of $(basename "$CALIB"); perplexity: $(basename "$EVAL") in $L-token windows; $RANKS rank(s)"
} >"$WORK/tables.md"
for g in $GRIDS; do
    rm -rf "$WORK/$g"
    t0=$(now)
    "${LAUNCH[@]}" "$EXE" sweep --model "$MODEL" --calib-text "$CALIB" --calib-samples "$N" --calib-len "$L" \
        --eval-text "$EVAL" --grid "bench/grids/$g.grid" --out "$WORK/$g" --quiet "${EXTRA[@]}" >"$WORK/$g.txt" 2>&1 ||
        { tail -5 "$WORK/$g.txt"; exit 1; }
    t1=$(now)
    printf '%s: %.1f s\n' "$g" "$(echo "$t1 - $t0" | bc)" | tee -a "$WORK/times.txt"
    { echo; echo "## $g"; echo; cat "$WORK/$g/sweep.md"; } >>"$WORK/tables.md"
done
if [ "$TIMING" = 1 ]; then
    # one single-point run: the first point of the 12-point group grid
    read -r -a first < <(grep -v '^#' bench/grids/w4a4-groups.grid | grep . | head -1)
    t0=$(now)
    "${LAUNCH[@]}" "$EXE" run --model "$MODEL" --calib-text "$CALIB" --calib-samples "$N" --calib-len "$L" \
        --eval-text "$EVAL" --quiet "${first[@]}" >"$WORK/single.txt" 2>&1 || { tail -5 "$WORK/single.txt"; exit 1; }
    t1=$(now)
    printf 'single point (%s): %.1f s\n' "${first[*]}" "$(echo "$t1 - $t0" | bc)" | tee -a "$WORK/times.txt"
fi
cat "$WORK/tables.md"
