/*
 * aw_guard.h - what keeps a long job from wasting a night: a SIGTERM
 * (Slurm preemption) is noted and turned into AW_ERR_INTERRUPTED at the next
 * safe point (between blocks of samples, between layers, between files:
 * every file is written atomically, so nothing half-written is left); a
 * watchdog thread ends this rank when it has made no progress for the hang
 * timeout (a peer that hangs or died leaves it blocked in a transfer), so
 * the launcher tears the whole job down; and the --fail-at test hook kills,
 * hangs or fails one rank at a chosen point.
 */
#ifndef AW_GUARD_H
#define AW_GUARD_H

#include "aw_status.h"

typedef enum { AW_FAIL_NONE = 0, AW_FAIL_KILL, AW_FAIL_HANG, AW_FAIL_ERROR } aw_fail_mode;

typedef struct {
    char phase[16];     /* "load", "calibrate", "quantize", "validate", "write" */
    int rank;
    aw_fail_mode mode;
} aw_fail_at;

/* Parse "PHASE:RANK[:kill|hang|error]". AW_ERR_ARG otherwise. */
aw_status aw_fail_at_parse(const char *s, aw_fail_at *out);

/* Install the SIGTERM handler and start the watchdog (hang_timeout_s > 0). */
void aw_guard_start(int rank, int size, double hang_timeout_s);
void aw_guard_stop(void);

/* A safe point in `phase`: records progress for the watchdog; returns
 * AW_ERR_INTERRUPTED once SIGTERM was received; and fires the --fail-at hook
 * on its second visit to the matching phase on the matching rank (mid-phase). */
aw_status aw_guard_step(const char *phase, const aw_fail_at *fail);

#endif
