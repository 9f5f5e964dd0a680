#!/usr/bin/env bash
# The distributed pipeline under mpirun: byte-identical checkpoints for 1-4
# ranks in stage and replica layouts, memory per rank falling with stages,
# and failures (a bad tensor on one rank, a killed rank) ending the whole job
# promptly with no checkpoint left behind.
. "$(dirname "$0")/lib.sh"
MPIRUN=(timeout 180 mpirun --oversubscribe)
TINY=(--hidden 64 --layers 8 --heads 4 --ffn 256 --vocab 1000 --max-pos 128 --calib-seqs 40 --calib-len 32 --quiet)
RUN=(--batch 4 --quiet)

"$EXE" synth "${TINY[@]}" --out "$WORK/m" || { bad synth; finish; exit 1; }
"$EXE" --model "$WORK/m" --out "$WORK/q1" "${RUN[@]}" >"$WORK/q1.txt" || bad "one rank"
# every file but the record of how the job ran (lib.sh: aweq_run.json, and
# report.html's run section) must be the same bytes whatever the layout
sums() { checkpoint_sums "$1"; }
sums "$WORK/q1" >"$WORK/q1.sha"
[ "$(wc -l <"$WORK/q1.sha")" -eq 13 ] && [ -f "$WORK/q1/aweq_run.json" ] \
    && ok "one rank: 13 files (9 safetensors, index, config, report, report.html) + aweq_run.json" \
    || bad "files: $(cat "$WORK/q1.sha")"
[ "$(grep -c '<!-- aweq-run: ' "$WORK/q1/report.html")" -eq 2 ] && ok "report.html: one run section, marked" \
    || bad "report.html: run section markers $(grep -c '<!-- aweq-run: ' "$WORK/q1/report.html")"
for layout in "1 1 1" "2 1 2" "2 2 1" "3 3 1" "3 1 3" "4 4 1" "4 2 2" "4 1 4"; do
    set -- $layout
    out="$WORK/q_${1}_${2}_${3}"
    if "${MPIRUN[@]}" -n "$1" "$EXE" --model "$WORK/m" --out "$out" "${RUN[@]}" --stages "$2" --replicas "$3" >"$out.txt" 2>&1; then
        if diff <(sums "$out") "$WORK/q1.sha" >/dev/null; then
            ok "mpirun -n $1 ($2 stages x $3 replicas): sha256 of every file equals one rank's"
        else
            bad "mpirun -n $1 ($2 x $3): files differ: $(diff <(sums "$out") "$WORK/q1.sha" | head -3)"
        fi
    else
        bad "mpirun -n $1 ($2 x $3) failed: $(tail -3 "$out.txt")"
    fi
done
ls "$WORK" | grep -qE '\.(work|partial)' && bad "shard or partial folders left behind" || ok "no shard or partial folder left after success"

# The GPU data path on the CPU kernels (--backend cpu-staged): weights,
# sums and activations live in separate "device" memory that starts as NaN
# bytes, reached only by the uploads and downloads the CUDA backend makes.
# A missing copy or a stale buffer changes the bytes; F16 and BF16 (widened
# to F32 on upload) models.
"$EXE" synth "${TINY[@]}" --dtype bf16 --out "$WORK/mb" || bad "synth bf16"
"$EXE" --model "$WORK/mb" --out "$WORK/qb1" "${RUN[@]}" >/dev/null || bad "bf16, one rank"
for case in "m 1 1 1" "m 3 3 1" "m 4 2 2" "mb 1 1 1" "mb 2 2 1"; do
    set -- $case
    ref="$WORK/q1"; [ "$1" = mb ] && ref="$WORK/qb1"
    out="$WORK/s_${1}_${2}_${3}_${4}"
    if "${MPIRUN[@]}" -n "$2" "$EXE" --model "$WORK/$1" --out "$out" "${RUN[@]}" --backend cpu-staged \
        --stages "$3" --replicas "$4" >"$out.txt" 2>&1; then
        if diff <(sums "$out") <(sums "$ref") >/dev/null && grep -q "cpu-staged" "$out.txt"; then
            ok "cpu-staged, $1, $2 rank(s) ($3 x $4): sha256 of every file equals the CPU run's"
        else
            bad "cpu-staged $1 $2 ($3 x $4): $(diff <(sums "$out") <(sums "$ref") | head -3)"
        fi
    else
        bad "cpu-staged $1 -n $2 failed: $(tail -3 "$out.txt")"
    fi
done
"$EXE" --model "$WORK/m" "${RUN[@]}" --backend cpu --handoff nccl >"$WORK/nccl.txt" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "handoff nccl: every rank needs a GPU" "$WORK/nccl.txt" && ok "--handoff nccl without GPUs: refused (exit $rc)" || bad "--handoff nccl on CPU: rc $rc $(tail -2 "$WORK/nccl.txt")"

# Memory: 24 blocks of OPT-125m width; 4 stages hold 6 blocks each.
"$EXE" synth --hidden 768 --layers 24 --heads 12 --ffn 3072 --vocab 2000 --max-pos 128 \
    --calib-seqs 20 --calib-len 64 --quiet --out "$WORK/big" || bad "synth big"
"${MPIRUN[@]}" -n 1 "$EXE" --model "$WORK/big" "${RUN[@]}" >"$WORK/mem1.txt" 2>&1 || bad "big, 1 rank"
"${MPIRUN[@]}" -n 4 "$EXE" --model "$WORK/big" "${RUN[@]}" --stages 4 >"$WORK/mem4.txt" 2>&1 || bad "big, 4 stages"
peak() { sed -n "s/.*rank $1: stage.*peak memory \([0-9.]*\) MB.*/\1/p" "$2"; }
one=$(peak 0 "$WORK/mem1.txt")
worst=$(peak "[0-9]*" "$WORK/mem4.txt" | sort -n | tail -1)
echo "peak memory: 1 rank $one MB; 4 stages, largest rank $worst MB"
grep -E "rank [0-9]+: stage" "$WORK/mem1.txt" "$WORK/mem4.txt"
if [ "${AWEQ_SANITIZED:-0}" = 1 ]; then
    echo "note: peak-memory comparison not checked in the sanitizer build (ASan's shadow memory and quarantine dominate)"
elif [ -n "$one" ] && [ -n "$worst" ] && awk -v a="$worst" -v b="$one" 'BEGIN{exit !(a < 0.40 * b)}'; then
    ok "each of 4 stages peaks under 40% of one rank ($worst of $one MB)"
else
    bad "4-stage peak $worst MB not under 40% of $one MB"
fi

# A bad tensor on the last stage's rank: everyone stops, the rank is named.
cp -r "$WORK/m" "$WORK/nan"
python3 - "$WORK/nan" <<'PY'
import json, struct, sys, os
d = sys.argv[1]
name = "model.decoder.layers.7.fc2.weight"
ip = os.path.join(d, "model.safetensors.index.json")
p = os.path.join(d, json.load(open(ip))["weight_map"][name] if os.path.exists(ip) else "model.safetensors")
with open(p, "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    b, e = json.loads(f.read(n))[name]["data_offsets"]
    f.seek(8 + n + b + 2 * 3)
    f.write(struct.pack("<H", 0x7e00))  # an F16 NaN
PY
[ $? -eq 0 ] || bad "could not poison the tensor"
start=$(date +%s)
rc=0
"${MPIRUN[@]}" -n 4 "$EXE" --model "$WORK/nan" --out "$WORK/qnan" "${RUN[@]}" --stages 4 >"$WORK/nan.txt" 2>&1 || rc=$?
secs=$(( $(date +%s) - start ))
[ $rc -ne 0 ] && ok "bad tensor: job exits $rc" || bad "bad tensor: job exited 0"
grep -q "rank 3 of 4: error: .*layers.7.fc2.weight.*NaN" "$WORK/nan.txt" && ok "message names rank 3 and the tensor" || bad "message: $(grep error "$WORK/nan.txt" | head -2)"
[ $secs -lt 30 ] && ok "ended in $secs s" || bad "took $secs s"
ls "$WORK" | grep -q qnan && bad "a checkpoint folder appeared" || ok "no checkpoint folder"

# A rank killed mid-run: the job ends within seconds, non-zero, no checkpoint.
# (--progress-every 0: a progress line per block, to see calibration start)
"$EXE" synth --hidden 256 --layers 8 --heads 4 --ffn 1024 --vocab 2000 --max-pos 256 \
    --calib-seqs 200 --calib-len 256 --quiet --out "$WORK/slow" || bad "synth slow"
"${MPIRUN[@]}" -n 4 "$EXE" --model "$WORK/slow" --out "$WORK/qkill" --batch 4 --stages 4 --progress-every 0 \
    >"$WORK/kill.txt" 2>&1 &
job=$!
victim=""
for _ in $(seq 1 100); do
    sleep 0.2
    # a rank (not the launcher): processes named aweq-dist running this model
    victim=$(for p in $(pgrep -x aweq-dist); do tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "--model $WORK/slow" && echo "$p"; done | sort -n | sed -n 3p)
    [ -n "$victim" ] && grep -q "calibrate: [0-9]*/" "$WORK/kill.txt" && break
done
if [ -n "$victim" ]; then
    kill -9 "$victim"
    start=$(date +%s)
    rc=0
    timeout 60 tail --pid=$job -f /dev/null || true
    wait $job || rc=$?
    secs=$(( $(date +%s) - start ))
    [ $rc -ne 0 ] && ok "killed rank: job exits $rc" || bad "killed rank: job exited 0"
    [ $secs -lt 30 ] && ok "killed rank: job ended $secs s after the kill" || bad "killed rank: $secs s"
    ls "$WORK" | grep -q "^qkill$" && bad "a checkpoint appeared after the kill" || ok "no checkpoint after the kill"
else
    bad "could not find a rank to kill"; kill $job 2>/dev/null; wait $job 2>/dev/null
fi
pgrep -f "aweq-dist --model $WORK" >/dev/null && { bad "processes left running"; pkill -9 -f "aweq-dist --model $WORK"; } || ok "no process left running"
finish
