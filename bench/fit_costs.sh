#!/usr/bin/env bash
# Fit the CPU cost model `aweq-dist plan --backend cpu` uses, then check it.
#
# 1. Time single-rank runs of generated models (d = 768, 2048, 4096, and
#    12288 for one block when memory allows), REPEATS times each at this
#    machine's threads, once at 1 thread for the parallel shares.
# 2. Fit the constants by least squares on relative error
#    (bench/fit_costs.py) and write schedulers/aw_cost_cpu.h and
#    bench/results/cost-model.md (measurements, fit, residuals).
# 3. Rebuild BUILD_DIR and check `plan` against measured runs of the
#    generated opt-125m and a d = 2048 model that the fit did not see:
#    every phase within 25% (a bench check, not a test: timings vary).
#
# usage: bash bench/fit_costs.sh BUILD_DIR
#   REPEATS=3        runs per fitted model (medians)
#   CHECK_REPEATS=3  runs per checked model (medians)
#   FIT_XL=auto      the d = 12288 block: auto (if plan's memory fits in
#                    MemAvailable), 1 or 0
#   CHECK_ONLY=1     skip 1-2: check the compiled-in constants
#   REFIT=1          skip 1: fit again the runs saved by the last
#                    measurement (bench/results/cost-model-{runs,models}.jsonl),
#                    with work counts from the current planner (a new model form)
#   CHECK=0          skip 3
# Exit status: 0 if every checked phase is within 25%, 1 if not, 2 on error.
set -euo pipefail
B=${1:?usage: bash bench/fit_costs.sh BUILD_DIR}
REPEATS=${REPEATS:-3}
CHECK_REPEATS=${CHECK_REPEATS:-3}
FIT_XL=${FIT_XL:-auto}
SRC=$(cd "$(dirname "$0")/.." && pwd)
EXE=$(cd "$B" && pwd)/aweq-dist
[ -x "$EXE" ] || { echo "fit_costs: $EXE not built" >&2; exit 2; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
THREADS=$(nproc)
MACHINE=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
MACHINE=${MACHINE:-unknown CPU}
RUNS=$W/runs.jsonl    # one line per timed run
MODELS=$W/models.jsonl # one line per model: its work counts from plan
SEQ_LEN=128           # tokens per sequence of every run
BATCH=8               # the run's default sequences per block of samples

log() { echo "fit_costs: $*" >&2; }

# synth NAME CALIB_SEQS [synth options...]: a generated model in $W/NAME
synth() {
    local name=$1 seqs=$2
    shift 2
    "$EXE" synth --out "$W/$name" --quiet --calib-seqs "$seqs" --calib-len $SEQ_LEN "$@" >/dev/null
}

# work NAME: the plan's work counts of NAME's run (the numbers the planner
# multiplies by the constants), from the run's own split of its sequences
work() {
    local name=$1 cal=$2 hold=$3
    "$EXE" plan --model "$W/$name" -n 1 --mem-per-rank 1000 --backend cpu --seq-len $SEQ_LEN --batch $BATCH \
        --calib-seqs "$cal" --holdout-seqs "$hold" >"$W/$name.plan"
    python3 "$SRC/bench/fit_costs.py" work "$name" "$W/$name.plan" "$W/$name/config.json" >>"$MODELS"
}

# run NAME THREADS REPEATS: time the single-rank run; the first run also
# records the model's work counts
run() {
    local name=$1 th=$2 n=$3 cpus=$(($2 - 1))
    for ((i = 0; i < n; i++)); do
        # the check's runs write their checkpoint, as the plan assumes (its
        # shard term); the fit's do not (the term is apart from the fit)
        local out=()
        [ "${WITH_OUT:-0}" = 1 ] && rm -rf "$W/ckpt" && out=(--out "$W/ckpt")
        taskset -c "0-$cpus" env OPENBLAS_NUM_THREADS="$th" OMP_NUM_THREADS="$th" \
            "$EXE" --model "$W/$name" "${out[@]}" --progress-every 1000 >"$W/out.txt" 2>"$W/err.txt" \
            || { cat "$W/err.txt" >&2; exit 2; }
        if ! grep -q "\"name\": \"$name\"" "$MODELS" 2>/dev/null; then
            # "...; 64 calibration + 16 held-out sequences of 128 tokens; ..."
            read -r cal hold < <(sed -n 's/.*; \([0-9]*\) calibration + \([0-9]*\) held-out sequences.*/\1 \2/p' "$W/err.txt" | head -n 1)
            work "$name" "$cal" "$hold"
        fi
        python3 "$SRC/bench/fit_costs.py" time "$name" "$th" "$W/out.txt" >>"$RUNS"
        log "$name, $th thread(s): $(grep '^time:' "$W/out.txt")"
    done
}

# xl_fits: 1 if the d = 12288 block fits this machine's free memory now
xl_fits() {
    [ "$FIT_XL" = 1 ] && return 0
    [ "$FIT_XL" = 0 ] && return 1
    local need avail
    # one d = 12288 block (opt-175b's) and the every-rank buffers at these
    # tokens; its small vocabulary's ends are noise next to them
    need=$("$EXE" plan --model opt-175b -n 96 --mem-per-rank 1000 --seq-len $SEQ_LEN --batch $BATCH \
        --calib-seqs 8 --holdout-seqs 2 2>/dev/null |
        awk '/GB per decoder block/ {b = $1} /GB on every rank/ {f = $1} END {print (b + f) * 1e9}')
    avail=$(awk '/MemAvailable/ {print $2 * 1024}' /proc/meminfo)
    [ -n "$need" ] && awk -v n="$need" -v a="$avail" 'BEGIN {exit !(n * 1.25 < a)}'
}

SAVED=$SRC/bench/results/cost-model
if [ -n "${REFIT:-}" ]; then
    cp "$SAVED-runs.jsonl" "$RUNS"
    while read -r name cal hold; do work "$name" "$cal" "$hold"; done \
        < <(python3 "$SRC/bench/fit_costs.py" configs "$SAVED-models.jsonl" "$W")
    MACHINE=$(sed -n 's/^#define AW_COST_CPU_MACHINE "\(.*\)"$/\1/p' "$SRC/schedulers/aw_cost_cpu.h")
    THREADS=$(sed -n 's/^#define AW_COST_CPU_THREADS //p' "$SRC/schedulers/aw_cost_cpu.h")
    python3 "$SRC/bench/fit_costs.py" fit "$RUNS" "$MODELS" "$MACHINE" "$THREADS" \
        "$SRC/schedulers/aw_cost_cpu.h" "$SRC/bench/results/cost-model.md"
    log "rebuilding $B with the new constants"
    cmake --build "$B" --target aweq-dist -j "$(nproc)" >/dev/null
elif [ -z "${CHECK_ONLY:-}" ]; then
    log "$MACHINE, $THREADS threads; $REPEATS runs per model"
    # the fitted models: hidden sizes, layers (blocks vs the once-per-run
    # head) and vocabularies (the head) varied; none is a checked model
    synth f768-v8k 80 --hidden 768 --layers 4 --heads 12 --ffn 3072 --vocab 8192
    synth f768-v50k 40 --hidden 768 --layers 2 --heads 12 --ffn 3072 --vocab 50272
    synth f2048 40 --hidden 2048 --layers 2 --heads 32 --ffn 8192 --vocab 8192
    synth f4096 20 --hidden 4096 --layers 1 --heads 32 --ffn 16384 --vocab 8192
    run f768-v8k "$THREADS" "$REPEATS"
    run f768-v50k "$THREADS" "$REPEATS"
    run f2048 "$THREADS" "$REPEATS"
    run f4096 "$THREADS" "$REPEATS"
    if [ "$THREADS" -gt 1 ]; then
        run f768-v8k 1 1
        run f2048 1 1
    fi
    rm -rf "$W"/f768-* "$W"/f2048 "$W"/f4096
    if xl_fits; then
        synth f12288 10 --hidden 12288 --layers 1 --heads 96 --ffn 49152 --vocab 2048
        run f12288 "$THREADS" 1
        rm -rf "$W/f12288"
    else
        log "d = 12288 skipped: its block does not fit the free memory (FIT_XL=1 forces it)"
    fi
    # the raw measurements, for REFIT=1
    cp "$RUNS" "$SAVED-runs.jsonl"
    cp "$MODELS" "$SAVED-models.jsonl"
    python3 "$SRC/bench/fit_costs.py" fit "$RUNS" "$MODELS" "$MACHINE" "$THREADS" \
        "$SRC/schedulers/aw_cost_cpu.h" "$SRC/bench/results/cost-model.md"
    log "rebuilding $B with the new constants"
    cmake --build "$B" --target aweq-dist -j "$THREADS" >/dev/null
fi
[ "${CHECK:-1}" = 0 ] && exit 0

# the check: plan against runs the fit did not see, with --out
WITH_OUT=1
: >"$RUNS"
: >"$MODELS"
synth opt-125m 80 --shape opt-125m
synth d2048 80 --hidden 2048 --layers 4 --heads 32 --ffn 8192 --vocab 50272
run opt-125m "$THREADS" "$CHECK_REPEATS"
run d2048 "$THREADS" "$CHECK_REPEATS"
python3 "$SRC/bench/fit_costs.py" check "$RUNS" "$MODELS" "$SRC/bench/results/cost-model.md" 0.25
