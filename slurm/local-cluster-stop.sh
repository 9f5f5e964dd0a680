#!/usr/bin/env bash
# local-cluster-stop.sh FOLDER - stop the one-node cluster that
# local-cluster-start.sh FOLDER started, and nothing else:
#   1. its jobs are cancelled through its own slurmctld (bounded wait);
#   2. any job step daemon (slurmstepd) still serving a socket in FOLDER/spool
#      (only if jobs could not be cancelled, e.g. slurmctld died) and the
#      processes below it (its tasks) get SIGTERM, then SIGKILL after 5 s;
#   3. the daemons recorded in FOLDER/pids - slurmd, slurmctld, munged - get
#      SIGTERM, then SIGKILL after 15 s.
# A recorded pid is signalled only while its environment still carries the
# marker AWEQ_SLURM_CLUSTER=FOLDER that start.sh gave it, so a reused pid is
# never hit. The folder (config, logs) is kept; FOLDER/pids becomes
# FOLDER/pids.stopped. Exit 0 when nothing of the cluster is left running.
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: local-cluster-stop.sh FOLDER" >&2; exit 2; }
DIR=$(realpath -m -- "$1")
say() { echo "local-cluster: $*" >&2; }
[ -f "$DIR/pids" ] || { say "nothing recorded in $DIR/pids; nothing to stop"; exit 0; }
export PATH=$PATH:/usr/sbin:/sbin

ours() { { tr '\0' '\n' <"/proc/$1/environ"; } 2>/dev/null | grep -xF "AWEQ_SLURM_CLUSTER=$DIR" >/dev/null; }
words() { tr '\n' ' ' <<<"$1" | sed 's/ *$//'; }
pid_of() { awk -v n="$1" '$1 == n {print $2}' "$DIR/pids" | tail -1; }
# pids of the slurmstepd processes that hold a socket under FOLDER/spool
stepds() {
    local inodes p f l
    inodes=$(awk -v d="$DIR/spool/" 'index($8, d) == 1 {print "socket:[" $7 "]"}' /proc/net/unix 2>/dev/null)
    [ -n "$inodes" ] || return 0
    for p in /proc/[0-9]*; do
        [ "$(cat "$p/comm" 2>/dev/null)" = slurmstepd ] || continue
        for f in "$p"/fd/*; do
            l=$(readlink "$f" 2>/dev/null) || continue
            if grep -qxF -- "$l" <<<"$inodes"; then echo "${p#/proc/}"; break; fi
        done
    done
}
# descendants PID...: the processes below these (a step daemon's tasks)
descendants() {
    ps -eo pid=,ppid= | awk -v roots=" $* " '
        { parent[$1] = $2 }
        END { n = split(roots, r, " "); for (i = 1; i <= n; i++) mark[r[i]] = 1
              do { more = 0
                   for (p in parent) if (!(p in mark) && (parent[p] in mark)) { mark[p] = 1; more = 1; print p } } while (more) }'
}
alive() {
    local st
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$st" ] && [ "$st" != Z ]
}
# stop CHECK SECONDS PID...: SIGTERM, wait up to SECONDS, then SIGKILL; CHECK
# (ours or alive) decides whether a pid is still the process meant
stop() {
    local check=$1 secs=$2 p left
    shift 2
    for p in "$@"; do $check "$p" && kill -TERM "$p" 2>/dev/null; done
    for _ in $(seq 1 $((secs * 10))); do
        left=""
        for p in "$@"; do $check "$p" && alive "$p" && left="$left $p"; done
        [ -z "$left" ] && return 0
        sleep 0.1
    done
    say "still running after $secs s, killing:$left"
    for p in $left; do $check "$p" && kill -KILL "$p" 2>/dev/null; done
    sleep 0.3
}

ctld=$(pid_of slurmctld)
if [ -n "$ctld" ] && ours "$ctld" && [ -f "$DIR/slurm.conf" ]; then
    export SLURM_CONF=$DIR/slurm.conf
    jobs=$(timeout 10 squeue -h -o '%i' 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
        say "cancelling jobs: $jobs"
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs 2>/dev/null
        for _ in $(seq 1 60); do
            [ -z "$(timeout 5 squeue -h -o '%i' 2>/dev/null)" ] && [ -z "$(stepds)" ] && break
            sleep 0.5
        done
    fi
fi

s=$(stepds)
if [ -n "$s" ]; then
    # shellcheck disable=SC2086
    t=$(descendants $s)
    say "stopping job step daemons: $(words "$s")${t:+ and their tasks: $(words "$t")}"
    # shellcheck disable=SC2086
    stop alive 5 $s $t
fi
for name in slurmd slurmctld munged; do
    p=$(pid_of "$name")
    [ -n "$p" ] && stop ours 15 "$p"
done

left=""
while read -r name p; do
    ours "$p" && alive "$p" && left="$left $name($p)"
done <"$DIR/pids"
s=$(stepds)
[ -n "$s" ] && left="$left slurmstepd($(words "$s"))"
if [ -n "$left" ]; then
    say "error: still running:$left"
    exit 1
fi
mv -f "$DIR/pids" "$DIR/pids.stopped"
say "stopped the cluster of $DIR"
