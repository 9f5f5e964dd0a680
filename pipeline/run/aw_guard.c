/* aw_guard.c - see aw_guard.h. */
#include "aw_guard.h"

#include "aw_clock.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t aw_sigterm;
static _Atomic double aw_last_progress;
static _Atomic int aw_watch_on;
static pthread_t aw_watch_thread;
static int aw_guard_rank, aw_guard_size;
static double aw_hang_timeout;
static char aw_phase_now[16] = "start";
static int aw_fail_visits;

static void on_sigterm(int sig)
{
    (void)sig;
    aw_sigterm = 1;
}

aw_status aw_fail_at_parse(const char *s, aw_fail_at *out)
{
    memset(out, 0, sizeof *out);
    char mode[16] = "kill";
    int n = sscanf(s, "%15[a-z]:%d:%15[a-z]", out->phase, &out->rank, mode);
    static const char *const phases[] = {"load", "calibrate", "quantize", "validate", "evaluate", "write"};
    int ok = n >= 2 && out->rank >= 0;
    int known = 0;
    for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++) known |= strcmp(out->phase, phases[i]) == 0;
    if (!strcmp(mode, "kill")) out->mode = AW_FAIL_KILL;
    else if (!strcmp(mode, "hang")) out->mode = AW_FAIL_HANG;
    else if (!strcmp(mode, "error")) out->mode = AW_FAIL_ERROR;
    else ok = 0;
    AW_RETURN_IF(!ok || !known, AW_ERR_ARG,
                 "--fail-at '%s': expected PHASE:RANK[:kill|hang|error], PHASE one of load, calibrate, "
                 "quantize, validate, evaluate, write", s);
    return AW_OK;
}

static void *watch(void *arg)
{
    (void)arg;
    while (atomic_load(&aw_watch_on)) {
        usleep(200 * 1000);
        double idle = aw_now() - atomic_load(&aw_last_progress);
        if (idle > aw_hang_timeout) {
            /* A peer is hung or dead and this rank waits on it: end this
             * process; the launcher (mpirun, srun) then ends the job. */
            fprintf(stderr,
                    "aweq-dist: rank %d of %d: error: no progress for %.0f s during %s: a rank is hung or "
                    "has died; ending the job (completed blocks are kept: rerun with --resume)\n",
                    aw_guard_rank, aw_guard_size, idle, aw_phase_now);
            fflush(stderr);
            _exit(3);
        }
    }
    return NULL;
}

void aw_guard_start(int rank, int size, double hang_timeout_s)
{
    aw_guard_rank = rank;
    aw_guard_size = size;
    aw_hang_timeout = hang_timeout_s;
    aw_fail_visits = 0;
    atomic_store(&aw_last_progress, aw_now());
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigterm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    if (hang_timeout_s > 0 && !atomic_load(&aw_watch_on)) {
        atomic_store(&aw_watch_on, 1);
        if (pthread_create(&aw_watch_thread, NULL, watch, NULL) != 0) atomic_store(&aw_watch_on, 0);
    }
}

void aw_guard_stop(void)
{
    if (atomic_load(&aw_watch_on)) {
        atomic_store(&aw_watch_on, 0);
        pthread_join(aw_watch_thread, NULL);
    }
}

aw_status aw_guard_step(const char *phase, const aw_fail_at *fail)
{
    atomic_store(&aw_last_progress, aw_now());
    snprintf(aw_phase_now, sizeof aw_phase_now, "%s", phase);
    if (fail && fail->mode != AW_FAIL_NONE && fail->rank == aw_guard_rank && !strcmp(fail->phase, phase) &&
        ++aw_fail_visits == 2) {
        fprintf(stderr, "aweq-dist: rank %d: --fail-at %s:%d: %s here (test hook)\n", aw_guard_rank, phase,
                fail->rank, fail->mode == AW_FAIL_KILL ? "killing this rank" :
                fail->mode == AW_FAIL_HANG ? "hanging" : "failing");
        fflush(stderr);
        if (fail->mode == AW_FAIL_KILL) raise(SIGKILL);
        if (fail->mode == AW_FAIL_HANG) {
            /* a hung rank does not notice itself: its peers' watchdogs must */
            atomic_store(&aw_watch_on, 0);
            for (;;) pause();
        }
        return AW_FAIL(AW_ERR_IO, "--fail-at %s:%d: injected failure (test hook)", phase, fail->rank);
    }
    AW_RETURN_IF(aw_sigterm, AW_ERR_INTERRUPTED, "stopped at a safe point during %s after SIGTERM", phase);
    return AW_OK;
}
