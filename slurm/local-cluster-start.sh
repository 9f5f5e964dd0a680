#!/usr/bin/env bash
# local-cluster-start.sh [FOLDER] - a one-node Slurm cluster on this machine,
# for tests: its own munged (private key and socket), slurmctld and slurmd,
# every file (config, state, spool, logs, pids) under FOLDER (default
# /tmp/aweq-slurm). Apart from installing packages, nothing under /etc or
# /var is written, and a system munged or Slurm is neither used nor touched.
#
#   bash slurm/local-cluster-start.sh /tmp/c      # prints: export SLURM_CONF=/tmp/c/slurm.conf
#   export SLURM_CONF=/tmp/c/slurm.conf
#   srun --mpi=pmix -n 4 aweq-dist --model M --out OUT
#   bash slurm/local-cluster-stop.sh /tmp/c
#
# Needs root (slurmd runs jobs as their users; SlurmUser=root). Installs the
# Debian packages it needs when missing (slurm-wlm, munge; the PMIx plugin
# comes with slurm-wlm-basic-plugins and needs libpmix2, which Open MPI
# already pulls in). The node is declared with more CPUs than the machine has
# (AWEQ_SLURM_CPUS, default 8), so that multi-rank tests fit on a small VM.
#
# Environment:
#   AWEQ_SLURM_CPUS=8          CPUs of the node
#   AWEQ_SLURM_PORT=6817       first port tried for slurmctld (slurmd gets the
#                              next free one); a busy port moves both up
#   AWEQ_SLURM_NO_INSTALL=1    never run apt-get (fail if something is missing)
#   AWEQ_SLURM_WAIT=60         seconds to wait for the node to become idle
#   AWEQ_SLURM_CRED_EXPIRE=10  credential lifetime, also the delay before a
#                              requeued job starts again (Slurm's default: 120)
#
# On success it prints the SLURM_CONF line to export on stdout (also in
# FOLDER/env.sh) and records what it started, one "name pid" a line, in
# FOLDER/pids; local-cluster-stop.sh FOLDER stops exactly those. On failure it
# prints the reason and the daemons' log tails on stderr, stops whatever it
# started, and exits 1; 3 when a prerequisite is missing (not root, packages
# missing and not installable); 2 for a usage error.
set -uo pipefail

DIR=${1:-/tmp/aweq-slurm}
CPUS=${AWEQ_SLURM_CPUS:-8}
PORT0=${AWEQ_SLURM_PORT:-6817}
WAIT_S=${AWEQ_SLURM_WAIT:-60}
CRED_EXPIRE=${AWEQ_SLURM_CRED_EXPIRE:-10}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

say() { echo "local-cluster: $*" >&2; }
die() { say "error: $*"; exit 1; }
# a missing prerequisite (not root, packages not installable): exit 3, so that
# a test can tell "cannot run here" from "does not work"
unmet() { say "error: $*"; exit 3; }
[ $# -le 1 ] || { say "usage: local-cluster-start.sh [FOLDER]"; exit 2; }
case $CPUS in '' | *[!0-9]*) say "AWEQ_SLURM_CPUS must be a number"; exit 2 ;; esac

[ "$(id -u)" -eq 0 ] || unmet "needs root (slurmd runs as root; run as root or with sudo)"
DIR=$(realpath -m -- "$DIR")   # the same spelling local-cluster-stop.sh uses

# --- packages -----------------------------------------------------------------
PLUGDIR=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/slurm-wlm
have_all() {
    local c
    for c in slurmctld slurmd srun sbatch sinfo scontrol scancel squeue munged setpriv; do
        command -v "$c" >/dev/null 2>&1 || return 1
    done
    [ -e "$PLUGDIR/mpi_pmix.so" ] || return 1
    ldconfig -p 2>/dev/null | grep 'libpmix\.so\.2' >/dev/null || return 1
    getent passwd munge >/dev/null || return 1
}
export PATH=$PATH:/usr/sbin:/sbin
if ! have_all; then
    [ "${AWEQ_SLURM_NO_INSTALL:-0}" = 1 ] && unmet "slurm-wlm / munge / libpmix2 missing and AWEQ_SLURM_NO_INSTALL=1"
    command -v apt-get >/dev/null || unmet "slurm-wlm / munge missing and there is no apt-get to install them"
    pkgs=(slurm-wlm slurm-wlm-basic-plugins munge libpmix2)
    say "installing ${pkgs[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    aptlog=$(mktemp)
    if ! apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${pkgs[@]}" >"$aptlog" 2>&1; then
        apt-get update -qq -o DPkg::Lock::Timeout=300 >>"$aptlog" 2>&1
        apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${pkgs[@]}" >>"$aptlog" 2>&1 ||
            { tail -5 "$aptlog" >&2; rm -f "$aptlog"; unmet "apt-get install ${pkgs[*]} failed"; }
    fi
    rm -f "$aptlog"
    have_all || unmet "still missing after install: slurm daemons/clients, munged, $PLUGDIR/mpi_pmix.so or libpmix.so.2"
fi

# --- folder -------------------------------------------------------------------
# A daemon of ours carries AWEQ_SLURM_CLUSTER=FOLDER in its environment (set
# below; a reused pid does not).
ours() { { tr '\0' '\n' <"/proc/$1/environ"; } 2>/dev/null | grep -xF "AWEQ_SLURM_CLUSTER=$DIR" >/dev/null; }
if [ -f "$DIR/pids" ]; then
    while read -r _ pid; do
        [ -n "$pid" ] && ours "$pid" &&
            die "a cluster from $DIR is still running (pid $pid); stop it with: bash $HERE/local-cluster-stop.sh $DIR"
    done <"$DIR/pids"
fi
mkdir -p "$DIR" || die "cannot create $DIR"
# munged runs as the munge user and must reach its own folder below this one
chmod 755 "$DIR" || die "cannot chmod $DIR"
setpriv --reuid=munge --regid=munge --clear-groups -- test -x "$DIR" ||
    die "the munge user cannot reach $DIR (a parent folder is not world-executable); use another folder"
rm -rf "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/run" "$DIR/munge" "$DIR/pmix" "$DIR/pids" "$DIR/pids.stopped" \
    "$DIR/env.sh" "$DIR/slurm.conf" "$DIR/mpi.conf"
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/run" "$DIR/munge" || die "cannot create folders in $DIR"
: >"$DIR/pids"

# running PID: alive and not a zombie (a daemon of ours that exited stays a
# zombie until this script ends, and kill -0 still reaches it)
running() {
    local st
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$st" ] && [ "$st" != Z ]
}
STARTED=0
cleanup_on_fail() {
    [ "$STARTED" -eq 1 ] || return 0
    say "stopping what was started"
    bash "$HERE/local-cluster-stop.sh" "$DIR" >&2 || true
}
fail() {
    say "error: $*"
    local n f
    for n in munged slurmctld slurmd; do   # the log file, or the daemon's stderr
        f=$DIR/log/$n.log
        [ -s "$f" ] || f=$DIR/log/$n.out
        [ -s "$f" ] && { echo "--- last lines of $f" >&2; tail -20 "$f" >&2; }
    done
    cleanup_on_fail
    exit 1
}

# start NAME EXE ARGS...: runs EXE in the foreground of its own session, in
# the background of this script, and records its pid (setsid execs without a
# fork here, since a non-interactive script's children lead no process group).
start() {
    local name=$1 exe=$2
    shift 2
    AWEQ_SLURM_CLUSTER=$DIR setsid "$exe" "$@" </dev/null >>"$DIR/log/$name.out" 2>&1 &
    local pid=$!
    echo "$name $pid" >>"$DIR/pids"
    STARTED=1
    sleep 0.3
    running "$pid" || fail "$name exited at once"
}

# --- munge: a private daemon, key and socket ----------------------------------
MUNGE_SOCK=$DIR/munge/munge.socket
if command -v mungekey >/dev/null; then
    mungekey --create --keyfile="$DIR/munge/munge.key" >/dev/null 2>&1 ||
        dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
else
    dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
fi
[ -s "$DIR/munge/munge.key" ] || fail "cannot create a munge key in $DIR/munge"
if ! { chown -R munge: "$DIR/munge" && chmod 711 "$DIR/munge" && chmod 400 "$DIR/munge/munge.key"; }; then
    fail "cannot hand $DIR/munge to the munge user"
fi
# munged also checks the folders of its log file; give it one it owns
touch "$DIR/log/munged.log" && chown munge: "$DIR/log/munged.log"
start munged "$(command -v setpriv)" --reuid=munge --regid=munge --init-groups -- \
    "$(command -v munged)" --foreground --socket="$MUNGE_SOCK" --key-file="$DIR/munge/munge.key" \
    --pid-file="$DIR/munge/munged.pid" --seed-file="$DIR/munge/munged.seed" \
    --log-file="$DIR/log/munged.log"
for _ in $(seq 1 50); do [ -S "$MUNGE_SOCK" ] && break; sleep 0.1; done
[ -S "$MUNGE_SOCK" ] || fail "munged did not create its socket $MUNGE_SOCK"
munge --socket="$MUNGE_SOCK" -n 2>/dev/null | unmunge --socket="$MUNGE_SOCK" >/dev/null 2>&1 ||
    fail "munge/unmunge through $MUNGE_SOCK failed"

# --- ports and config ---------------------------------------------------------
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
p=$PORT0
while port_busy "$p" || port_busy $((p + 1)); do
    p=$((p + 2))
    [ $p -lt $((PORT0 + 200)) ] || fail "no two free ports in $PORT0-$((PORT0 + 200))"
done
CTLD_PORT=$p
SLURMD_PORT=$((p + 1))
NODE=$(hostname -s)
[ -n "$NODE" ] || fail "hostname -s is empty"

cat >"$DIR/slurm.conf" <<EOF
# one-node test cluster written by slurm/local-cluster-start.sh
ClusterName=aweq-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire also sets how long a requeued job waits before it may start
# again (default 120 s); short here so that tests of requeueing are quick
AuthInfo=socket=$MUNGE_SOCK,cred_expire=$CRED_EXPIRE
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
# quick passes: a requeued job (pending on its begin time) starts within seconds
SchedulerParameters=bf_interval=2,sched_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=pmix
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
SlurmctldTimeout=60
SlurmdTimeout=60
InactiveLimit=0
KillWait=10
MinJobAge=300
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=local Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
# The PMIx plugin makes a folder per job step for its clients, by default
# /tmp/spmix_appdir_<uid>_<job>.<step>; a step killed hard leaves it behind,
# and job ids start again at 1 in a fresh cluster, so a later cluster's step
# would fail ("Cannot create client cli tmpdir ... File exists"). Keep them in
# this cluster's folder (mpi.conf is read from slurm.conf's folder).
mkdir -p "$DIR/pmix" && chmod 1777 "$DIR/pmix"
echo "PMIxCliTmpDirBase=$DIR/pmix" >"$DIR/mpi.conf"
export SLURM_CONF=$DIR/slurm.conf

# --- daemons ------------------------------------------------------------------
start slurmctld "$(command -v slurmctld)" -D -c -f "$SLURM_CONF"
start slurmd "$(command -v slurmd)" -D -f "$SLURM_CONF" -N "$NODE"

state=""
for _ in $(seq 1 $((WAIT_S * 2))); do
    state=$(sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -1)
    case $state in idle) break ;; esac
    while read -r name pid; do
        running "$pid" || fail "$name (pid $pid) exited"
    done <"$DIR/pids"
    sleep 0.5
done
[ "$state" = idle ] || fail "node $NODE not idle after ${WAIT_S} s (state: '${state:-no answer from slurmctld}')"

echo "export SLURM_CONF=$SLURM_CONF" >"$DIR/env.sh"
say "node $NODE idle ($CPUS CPUs, slurmctld port $CTLD_PORT, slurmd port $SLURMD_PORT); pids in $DIR/pids"
echo "export SLURM_CONF=$SLURM_CONF"
