#!/usr/bin/env bash
# What a sweep costs against one single-point run of the same model: the
# 12-point W4A4 grid (bench/grids/w4a4-groups.grid) with `aweq-dist sweep`
# against `aweq-dist run` of its first point (the same calibration draw and
# eval text), alternating A B A B ... PAIRS times for each rank count, wall
# time of the whole command (mpirun included for more than one rank).
# Prints a markdown table (medians, ratio) and the sweep's own line on where
# its time went.
#
#   bash bench/sweep_cost.sh MODEL_DIR CALIB_TEXT EVAL_TEXT
#
# Environment: AWEQ_EXE (build/aweq-dist), CALIB_SAMPLES (128), SEQ_LEN
# (512), RANKS ("1 2": the rank counts to try; more than one runs the points
# side by side), PAIRS (3), GRID (bench/grids/w4a4-groups.grid).
set -euo pipefail
cd "$(dirname "$0")/.."
EXE=${AWEQ_EXE:-build/aweq-dist}
MODEL=$1 CALIB=$2 EVAL=$3
N=${CALIB_SAMPLES:-128}
L=${SEQ_LEN:-512}
PAIRS=${PAIRS:-3}
GRID=${GRID:-bench/grids/w4a4-groups.grid}
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
DRAW=(--model "$MODEL" --calib-text "$CALIB" --calib-samples "$N" --calib-len "$L" --eval-text "$EVAL" --quiet)
read -r -a first < <(grep -v '^#' "$GRID" | grep . | head -1)
npts=$(grep -v '^#' "$GRID" | grep -c .)
now() { date +%s.%N; }
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "# sweep ($npts points) against one single-point run"
echo
echo "$(basename "$MODEL"); calibration $N x $L tokens of $(basename "$CALIB"); eval $(basename "$EVAL");" \
    "grid $GRID; single point: \`${first[*]}\`; $(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) cores," \
    "load $(cut -d' ' -f1-3 /proc/loadavg) at the start; $PAIRS alternating pairs per rank count."
echo
echo "| ranks | sweep (s) | one run (s) | median sweep / median run |"
echo "| ---: | --- | --- | ---: |"
lines=()
for R in ${RANKS:-1 2}; do
    LAUNCH=()
    [ "$R" -gt 1 ] && LAUNCH=(mpirun --oversubscribe -n "$R")
    S=() O=()
    for _ in $(seq "$PAIRS"); do
        rm -rf "$W/s"
        t0=$(now)
        "${LAUNCH[@]}" "$EXE" sweep "${DRAW[@]}" --grid "$GRID" --out "$W/s" >/dev/null 2>"$W/s.err" ||
            { tail -n 3 "$W/s.err" >&2; exit 1; }
        t1=$(now)
        "${LAUNCH[@]}" "$EXE" run "${DRAW[@]}" "${first[@]}" >/dev/null 2>"$W/r.err" ||
            { tail -n 3 "$W/r.err" >&2; exit 1; }
        t2=$(now)
        S+=("$(echo "$t1 - $t0" | bc)") O+=("$(echo "$t2 - $t1" | bc)")
    done
    ms=$(med "${S[@]}") mo=$(med "${O[@]}")
    printf '| %d | %s | %s | %.2f |\n' "$R" "$(printf '%.2f ' "${S[@]}")" "$(printf '%.2f ' "${O[@]}")" \
        "$(echo "$ms / $mo" | bc -l)"
    lines+=("$R rank(s): $(grep '^aweq-dist: sweep: ' "$W/s.err" | sed 's/^aweq-dist: //')")
done
echo
echo "The sweep's own account of its last run per rank count:"
echo
for l in "${lines[@]}"; do echo "- $l"; done
