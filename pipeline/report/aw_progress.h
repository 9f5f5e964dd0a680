/*
 * aw_progress.h - progress of a long job, printed by rank 0: per phase the
 * units done out of the total, the rate (tokens per second where a unit
 * carries tokens, else units per second) and the time left, at a steady
 * rate: one line when at least `every_s` seconds have passed since the
 * phase began or since its last line, and one line when it ends (so a
 * phase of T seconds prints at most floor(T / every_s) + 1 lines, however
 * many blocks it has). When the output is a terminal, a bar redrawn in
 * place instead. With a log path, every step and phase boundary (printed
 * or not) is also one JSON object per line, for batch systems.
 *
 * Time left = (total - done + lag) / rate, the rate the mean over the
 * phase so far; lag counts the units the rest of a pipeline still has to
 * finish after this rank's last one (stages - 1 blocks per replica).
 *
 * A NULL aw_progress is valid everywhere and does nothing: ranks other than
 * 0 pass NULL. Not thread-safe (the job calls it from its one thread).
 */
#ifndef AW_PROGRESS_H
#define AW_PROGRESS_H

#include <jansson.h>
#include <stdio.h>

#include "aw_status.h"

typedef struct aw_progress aw_progress;

typedef struct {
    int print;              /* 1: lines on out; 0: only the log (--quiet) */
    double every_s;         /* least seconds between two lines of a phase; 0: every step */
    FILE *out;              /* NULL: stderr */
    int bar;                /* -1: a bar when out is a terminal; 0: never; 1: always */
    const char *log_path;   /* NULL, or the JSON-lines log (created or truncated) */
    double (*clock)(void *ctx); /* NULL: aw_now(); tests pass a simulated clock */
    void *clock_ctx;
} aw_progress_opts;

/* Defaults: print, every 10 s, stderr, bar on a terminal, no log. */
void aw_progress_defaults(aw_progress_opts *o);
/* Create a reporter (time 0 is now). AW_ERR_IO naming the log file if it
 * cannot be created; *out is NULL then. */
aw_status aw_progress_create(const aw_progress_opts *o, aw_progress **out);
/* Close the log; accepts NULL. */
void aw_progress_destroy(aw_progress *p);

/* Begin a phase of `total` units named by `unit` (plural: "blocks of
 * samples"), each carrying tokens_per_unit tokens (0: rates in units per
 * second); lag as above. An unfinished phase is ended first. */
void aw_progress_begin(aw_progress *p, const char *phase, long total, const char *unit,
                       double tokens_per_unit, long lag);
/* `done` units of the phase are finished (monotonic, <= total). */
void aw_progress_step(aw_progress *p, long done);
/* The phase is over: its closing line (always printed) and event. */
void aw_progress_end(aw_progress *p);

/* A line of its own ("model ...", "wrote OUT") and a "note" event. */
void aw_progress_note(aw_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An event into the log only: {"event": name, "t": ..., <fields>}; fields
 * (an object, may be NULL) is consumed. */
void aw_progress_event(aw_progress *p, const char *name, json_t *fields);

/* Seconds since the reporter was created, on its clock. */
double aw_progress_elapsed(const aw_progress *p);
/* The time left the last step predicted for the current phase (seconds;
 * negative before the first step or outside a phase). */
double aw_progress_eta(const aw_progress *p);
/* Lines printed so far in the current (or last) phase. */
int aw_progress_lines(const aw_progress *p);

/* "42 s", "3 min 20 s", "2 h 05 min" into buf. */
const char *aw_progress_fmt_secs(double s, char *buf, size_t cap);

#endif
