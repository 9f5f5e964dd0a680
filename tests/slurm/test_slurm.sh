#!/usr/bin/env bash
# Slurm on a one-node cluster of this machine (slurm/local-cluster-start.sh):
# `srun --mpi=pmix -n 4`, `mpirun -n 4`, one rank and `sbatch --wait
# slurm/aweq-small.sbatch` write the same checkpoint, byte for byte; the
# OPT-175B batch script parses and its requeue path works (with a stand-in
# program, on this GPU-less node). The cluster is stopped on exit, whatever
# happens. Exit 77 (skipped) where the cluster cannot run: not root, or
# slurm-wlm/munge missing and not installable; AWEQ_SKIP_SLURM=1 skips too.
. "$(dirname "$0")/../cli/lib.sh"
SRC=${AWEQ_SOURCE_DIR:?AWEQ_SOURCE_DIR is not set; run through ctest}
T0=$(date +%s)
TINY=(--hidden 64 --layers 8 --heads 4 --ffn 256 --vocab 1000 --max-pos 128 --calib-seqs 40 --calib-len 32 --quiet)
RUN=(--batch 4 --quiet)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Open MPI's components leak at MPI_Finalize (see tests/CMakeLists.txt)
export ASAN_OPTIONS=detect_leaks=0

skip() { echo "skipped: $*"; exit 77; }
[ "${AWEQ_SKIP_SLURM:-0}" = 1 ] && skip "AWEQ_SKIP_SLURM=1"
[ "$(id -u)" -eq 0 ] || skip "needs root to run slurmd and slurmctld"

# The cluster's folder must be reachable by the munge user: not under $WORK
# (mode 0700), nor under a private $TMPDIR.
CL=$(mktemp -d /tmp/aweq-slurm-XXXXXX)
chmod 755 "$CL"
show_logs() {
    local n f
    for n in slurmctld slurmd munged; do
        f=$CL/log/$n.log
        [ -s "$f" ] || f=$CL/log/$n.out
        [ -s "$f" ] && { echo "--- last lines of $f"; tail -40 "$f"; }
    done
}
on_exit() {
    local rc=$?
    if [ -f "$CL/pids" ]; then   # recorded by start, renamed by stop
        [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && show_logs
        bash "$SRC/slurm/local-cluster-stop.sh" "$CL" || echo "FAILED: stopping the cluster"
    fi
    rm -rf "$WORK" "$CL"
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

rc=0
timeout 900 bash "$SRC/slurm/local-cluster-start.sh" "$CL" >"$WORK/start.out" 2>"$WORK/start.err" || rc=$?
case $rc in
0) ;;
3) skip "$(grep 'error:' "$WORK/start.err" | tail -1 | sed 's/^local-cluster: error: //')" ;;
*)
    cat "$WORK/start.err"
    bad "local cluster did not start (exit $rc)"
    finish
    exit 1
    ;;
esac
cat "$WORK/start.err"
eval "$(grep '^export SLURM_CONF=' "$WORK/start.out")"
[ -n "${SLURM_CONF:-}" ] && [ -f "$SLURM_CONF" ] && ok "cluster up: $(sinfo -h -o '%P %D %T %c CPUs' 2>&1)" ||
    { bad "start printed no SLURM_CONF: $(cat "$WORK/start.out")"; finish; exit 1; }
echo "cluster started in $(( $(date +%s) - T0 )) s"

# wait_idle: the node idle again (jobs of an earlier step cleaned up)
wait_idle() {
    local s=""
    for _ in $(seq 1 120); do
        s=$(timeout 10 sinfo -h -N -o '%T' 2>/dev/null | head -1)
        [ "$s" = idle ] && return 0
        sleep 0.5
    done
    bad "node not idle after 60 s (state '$s')"
    return 1
}
sums() { checkpoint_sums "$1"; } # cli/lib.sh: less the record of how the job ran
# same NAME DIR REF: every file of DIR has the sha256 of REF's (and the same names)
same() {
    if [ ! -d "$2" ]; then bad "$1: no output folder $2"; return; fi
    if diff <(sums "$2") <(sums "$3") >"$WORK/diff.txt"; then
        ok "$1: sha256 of all $(ls "$2" | wc -l) files equal one rank's"
    else
        bad "$1: files differ from one rank's: $(head -4 "$WORK/diff.txt")"
    fi
}
# world NAME LOG N: the run was one MPI job of N ranks (not N one-rank jobs)
world() {
    grep -q "^ranks: $3 = " "$2" && ok "$1: one job of $3 ranks ($(grep '^ranks:' "$2" | head -1))" ||
        bad "$1: not one $3-rank job: $(grep '^ranks:' "$2" | tr '\n' ' ')"
}

M=$WORK/m
"$EXE" synth "${TINY[@]}" --out "$M" || { bad synth; finish; exit 1; }

# C: one rank
"$EXE" --model "$M" --out "$WORK/C" "${RUN[@]}" >"$WORK/C.txt" 2>&1 || bad "one rank: $(tail -3 "$WORK/C.txt")"
[ "$(ls "$WORK/C" 2>/dev/null | wc -l)" -ge 10 ] && ok "one rank: $(ls "$WORK/C" | wc -l) files" || bad "one rank: files $(ls "$WORK/C" 2>&1)"

# A: srun, 4 tasks through PMIx
wait_idle
t=$(date +%s)
rc=0
timeout 300 srun --mpi=pmix -n 4 "$EXE" --model "$M" --out "$WORK/A" "${RUN[@]}" >"$WORK/A.txt" 2>&1 || rc=$?
if [ $rc -eq 0 ]; then
    ok "srun --mpi=pmix -n 4: exit 0 in $(( $(date +%s) - t )) s"
    world "srun" "$WORK/A.txt" 4
    same "srun -n 4" "$WORK/A" "$WORK/C"
else
    bad "srun --mpi=pmix -n 4: exit $rc$([ $rc -eq 124 ] && echo ' (timeout)'): $(tail -5 "$WORK/A.txt")"
fi

# B: mpirun, 4 ranks
rc=0
timeout 300 mpirun -n 4 --oversubscribe "$EXE" --model "$M" --out "$WORK/B" "${RUN[@]}" >"$WORK/B.txt" 2>&1 || rc=$?
if [ $rc -eq 0 ]; then
    world "mpirun" "$WORK/B.txt" 4
    same "mpirun -n 4" "$WORK/B" "$WORK/C"
else
    bad "mpirun -n 4: exit $rc: $(tail -5 "$WORK/B.txt")"
fi

# D: the batch script, submitted and waited for
wait_idle
t=$(date +%s)
rc=0
(cd "$WORK" && AWEQ_EXE=$EXE timeout 300 sbatch --wait --output="$WORK/D.log" \
    "$SRC/slurm/aweq-small.sbatch" "$M" "$WORK/D" >"$WORK/D.sbatch.txt" 2>&1) || rc=$?
if [ $rc -eq 0 ]; then
    ok "sbatch --wait aweq-small.sbatch: exit 0 in $(( $(date +%s) - t )) s ($(head -1 "$WORK/D.sbatch.txt"))"
    world "sbatch" "$WORK/D.log" 4
    same "sbatch aweq-small.sbatch" "$WORK/D" "$WORK/C"
else
    bad "sbatch --wait aweq-small.sbatch: exit $rc$([ $rc -eq 124 ] && echo ' (timeout)'): $(cat "$WORK/D.sbatch.txt"; tail -8 "$WORK/D.log" 2>/dev/null)"
fi

# The OPT-175B script on this node: its #SBATCH lines with the node-size
# options overridden (no GPUs here) pass sbatch --test-only; submitted with a
# stand-in for aweq-dist, USR1 to the batch shell (what --signal=B:USR1@120
# sends before the time limit) requeues it, and the rerun runs the same
# command (with --resume) and appends to the same log.
BIG=("$SRC/slurm/aweq-opt175b.sbatch")
SMALL=(--nodes=1 --ntasks-per-node=2 --gpus-per-node=0 --cpus-per-task=1 --time=10)
bash -n "${BIG[0]}" && ok "aweq-opt175b.sbatch: bash -n" || bad "aweq-opt175b.sbatch: syntax"
out=$(timeout 30 sbatch --test-only "${SMALL[@]}" "${BIG[@]}" 2>&1) &&
    ok "aweq-opt175b.sbatch: sbatch --test-only: $out" || bad "aweq-opt175b.sbatch: sbatch --test-only: $out"
cat >"$WORK/stand-in.sh" <<'EOF'
#!/bin/bash
# stands in for aweq-dist: the plan passes; the first run waits until SIGTERM
# (and says so), the rerun after the requeue succeeds
[ "$1" = plan ] && { echo "stand-in: plan $*"; exit 0; }
echo "stand-in: rank ${SLURM_PROCID:-?} restart ${SLURM_RESTART_COUNT:-0}: $*"
[ "${SLURM_RESTART_COUNT:-0}" -ge 1 ] && exit 0
(exec -a "stand-in-sleep $0" sleep 300) &   # named after this file: found if left over
s=$!
trap 'echo "stand-in: rank ${SLURM_PROCID:-?} got SIGTERM"; kill $s 2>/dev/null; exit 143' TERM
wait
EOF
chmod +x "$WORK/stand-in.sh"
wait_idle
t=$(date +%s)
job=$(cd "$WORK" && AWEQ_EXE=$WORK/stand-in.sh AWEQ_MODEL=$M AWEQ_OUT=$WORK/E AWEQ_ARGS="--batch 4" \
      timeout 30 sbatch --parsable --output="$WORK/E.log" "${SMALL[@]}" "${BIG[@]}" 2>"$WORK/E.err")
if [ -z "$job" ]; then
    bad "aweq-opt175b.sbatch: submit: $(cat "$WORK/E.err")"
else
    for _ in $(seq 1 120); do
        n=$(grep -c 'restart 0:' "$WORK/E.log" 2>/dev/null)
        [ "${n:-0}" -ge 2 ] && break
        sleep 0.5
    done
    timeout 10 scancel --batch --signal=USR1 "$job"
    state=""
    for _ in $(seq 1 240); do
        state=$(timeout 10 scontrol show job "$job" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
        case $state in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) break ;; esac
        sleep 0.5
    done
    restarts=$(timeout 10 scontrol show job "$job" 2>/dev/null | grep -o 'Restarts=[0-9]*' | cut -d= -f2)
    # Both ranks get SIGTERM, but once the first exits (143) the step is
    # cancelled, and under load slurmstepd may kill both before either trap
    # prints: the script's own line says it sent SIGTERM, then the requeued
    # rerun of both ranks.
    if [ "$state" = COMPLETED ] && [ "${restarts:-0}" -eq 1 ] &&
       [ "$(grep -c 'restart 1: --model .* --out .* --resume' "$WORK/E.log")" -eq 2 ] &&
       grep -q 'stopping the ranks (SIGTERM)' "$WORK/E.log" && grep -q 'requeueing job' "$WORK/E.log"; then
        ok "aweq-opt175b.sbatch: USR1 stopped both ranks with SIGTERM and requeued job $job; the rerun ran the same command with --resume and appended to the log ($(( $(date +%s) - t )) s)"
    else
        bad "aweq-opt175b.sbatch: requeue: state '$state', restarts '$restarts'; log: $(cat "$WORK/E.log")"
    fi
fi

# Stop the cluster here (the exit trap would too) to check nothing is left.
[ "$FAILED" -gt 0 ] && show_logs
if bash "$SRC/slurm/local-cluster-stop.sh" "$CL" 2>"$WORK/stop.err"; then
    ok "cluster stopped: $(tail -1 "$WORK/stop.err")"
else
    bad "stopping the cluster: $(cat "$WORK/stop.err")"
fi
left=""
# the daemons (and slurmctld's slurmscriptd) carry AWEQ_SLURM_CLUSTER=$CL;
# munged, slurmctld, slurmd, jobs and the stand-in name $CL or $WORK
marked=$(for p in /proc/[0-9]*; do
    { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -xF "AWEQ_SLURM_CLUSTER=$CL" >/dev/null && echo "${p#/proc/}"
done)
for p in $(pgrep -f -- "$CL/"; pgrep -f -- "$WORK/"; echo $marked); do
    [ "$p" = $$ ] && continue
    [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" = Z ] && continue   # exited, not yet reaped by init
    left="$left $p($(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | head -c 80))"
done
[ -z "$left" ] && ok "no process of the cluster or its jobs left" || bad "left running:$left"
echo "slurm test took $(( $(date +%s) - T0 )) s"
finish
