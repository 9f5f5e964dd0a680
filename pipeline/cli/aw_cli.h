/*
 * aw_cli.h - the command line: one table of commands, one help text, and
 * the program's voice on stderr. Every command is `int f(int argc, char
 * **argv)` with argv[0] its name, returning the exit code: 0 success, 1
 * failure (after one error line), 2 usage error (after one usage line), 143
 * interrupted.
 */
#ifndef AW_CLI_H
#define AW_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "aw_quant.h"
#include "aw_run.h"
#include "aw_status.h"

#define AW_VERSION "0.1.0"

/* The one-line error a user sees, on stderr:
 *   aweq-dist: [rank R of N: ]error: <what> (<STATUS>) [src.c:line]
 * (the rank part when size > 1). */
void aw_print_error(aw_status st, int rank, int size);
/* The preemption line: stopped after SIGTERM, rerun with --resume (out_dir
 * NULL: a job that writes no shards, nothing to resume). */
void aw_print_interrupted(int rank, int size, const char *out_dir);
/* How a job's command ends after a failure (st != AW_OK), as its exit
 * code: a failure every rank learned in a collective step (AW_ERR_REMOTE
 * on the others) is printed once, by the rank that had it, and those
 * others leave without MPI's finalize (it waits for every peer, and an
 * aborting or blocked peer would keep it waiting; leaving makes the
 * launcher end the job at once); SIGTERM is the preemption line (out_dir:
 * where a rerun resumes, or NULL), exit 143; any other failure is printed
 * with the rank and brings the job down (aw_comm_abort), exit 1. */
int aw_cli_end_job(const aw_comm *w, aw_status st, const char *out_dir);
/* The failure line of st (the preemption line for AW_ERR_INTERRUPTED,
 * with out_dir) with w's rank, then, with more than one rank, the job
 * brought down (aw_comm_abort); returns the exit code, 143 or 1. */
int aw_cli_fail_job(const aw_comm *w, aw_status st, const char *out_dir);
/* An option parser's message: fmt into msg (cap bytes); returns -1, the
 * parsers' "refused" (aw_cli_method_apply, aw_cli_job_apply ...). */
int aw_cli_say(char *msg, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A usage error of command cmd (NULL: the program's own options):
 *   aweq-dist: [cmd: ]<fmt with arg>
 *   Try 'aweq-dist [cmd ]--help'.
 * Returns 2, the exit code of a usage error. */
int aw_usage_error(const char *cmd, const char *fmt, const char *arg);

/* The program's help (every command in one page). */
void aw_cli_help(FILE *out);

/* main(): the command named by argv[1] (a run when argv[1] is an option). */
int aw_cli_main(int argc, char **argv);

/* The commands (each in its own file of pipeline/cli/ unless noted). */
int aw_cmd_run(int argc, char **argv);
int aw_cmd_synth(int argc, char **argv);
int aw_cmd_inspect(int argc, char **argv);
int aw_cmd_shapes(int argc, char **argv);
int aw_cmd_backend(int argc, char **argv);
int aw_cmd_eval(int argc, char **argv);
int aw_cmd_report(int argc, char **argv);
int aw_cmd_tokenize(int argc, char **argv);
int aw_cmd_plan(int argc, char **argv);
int aw_cmd_sweep(int argc, char **argv);

/* Option values: "100M", "512K", "2G", "12345" -> bytes (decimal units);
 * a decimal integer in [lo, hi]. 0 on success, -1 if malformed. */
int aw_cli_parse_size(const char *s, uint64_t *out);
int aw_cli_parse_int(const char *s, long lo, long hi, long *out);

/* ---- the method and scheme options (aw_cli_method.c) ----------------------
 * One parser for `run`, `plan` and the lines of a sweep's grid file: the
 * options go into aw_cli_method_opts as given (apply), and finish checks
 * their combination and makes the method. Rules: --abits below 8 needs
 * --adynamic; --agroup needs --adynamic; --adynamic without --wbits means
 * 8-bit symmetric weights with one step per output channel; without
 * --wbits and --adynamic the scheme is W8A8; --keep-salient refuses awq,
 * aweq+search and gptq; then aw_scheme_check. Messages are one line, for
 * aw_usage_error. */
enum {
    AW_MO_METHOD = 3000, AW_MO_ALPHA, AW_MO_NOBC, AW_MO_WBITS, AW_MO_GROUP, AW_MO_SYM, AW_MO_ASYM,
    AW_MO_ACTORDER, AW_MO_ABITS, AW_MO_AGROUP, AW_MO_ADYNAMIC, AW_MO_KEEP, AW_MO_END
};
/* The getopt_long entries of these options (include <getopt.h>). */
#define AW_CLI_METHOD_LONGOPTS                                                                              \
    {"method", required_argument, 0, AW_MO_METHOD}, {"alpha", required_argument, 0, AW_MO_ALPHA},          \
    {"no-bias-correction", no_argument, 0, AW_MO_NOBC}, {"wbits", required_argument, 0, AW_MO_WBITS},      \
    {"group", required_argument, 0, AW_MO_GROUP}, {"sym", no_argument, 0, AW_MO_SYM},                      \
    {"asym", no_argument, 0, AW_MO_ASYM}, {"act-order", no_argument, 0, AW_MO_ACTORDER},                   \
    {"abits", required_argument, 0, AW_MO_ABITS}, {"agroup", required_argument, 0, AW_MO_AGROUP},          \
    {"adynamic", no_argument, 0, AW_MO_ADYNAMIC}, {"keep-salient", required_argument, 0, AW_MO_KEEP}

typedef struct {
    aw_method_kind kind;
    float alpha;
    int alpha_set, nobc, act_order;
    int wbits, group, group_set, sym; /* wbits 0: not given; sym -1: not given */
    int abits, agroup, agroup_set, adynamic;
    double keep_pct;
    int keep_set;
} aw_cli_method_opts;

void aw_cli_method_init(aw_cli_method_opts *mo);
/* Take option code (AW_MO_*) with its value (NULL for a flag): 0, or -1
 * with the message in msg. */
int aw_cli_method_apply(aw_cli_method_opts *mo, int code, const char *arg, char *msg, size_t cap);
/* The method the options make into m (kind, alpha, bias correction,
 * scheme, act order; the dtypes are left as they are): 0, or -1 with msg. */
int aw_cli_method_finish(const aw_cli_method_opts *mo, aw_method *m, char *msg, size_t cap);
/* A grid line ("--method awq --wbits 4 --group 128", also --opt=value)
 * through apply and finish: 0, or -1 with msg. */
int aw_cli_method_parse_line(const char *line, aw_method *m, char *msg, size_t cap);

/* ---- the job's options shared by `run` and `sweep` (aw_cli_job.c) ----------
 * The model, the calibration draw, the eval text, the layout and the
 * job's control (batch, backend, hand-off, stages, replicas, memory, hang
 * timeout, progress, JSON log, quiet, fail-at): applied into an
 * aw_run_opts, then finish checks their combination. Messages are one line,
 * for aw_usage_error. */
enum {
    AW_JO_MODEL = 4000, AW_JO_CALIB, AW_JO_CTEXT, AW_JO_TFIELD, AW_JO_CSAMPLES, AW_JO_CLEN, AW_JO_SEED,
    AW_JO_ETEXT, AW_JO_BATCH, AW_JO_BACKEND, AW_JO_HANDOFF, AW_JO_STAGES, AW_JO_REPLICAS, AW_JO_MEM,
    AW_JO_HANG, AW_JO_PEVERY, AW_JO_LOGJSON, AW_JO_QUIET, AW_JO_FAILAT, AW_JO_CPREC, AW_JO_END
};
#define AW_CLI_JOB_MAX_TEXTS 64
#define AW_CLI_JOB_LONGOPTS                                                                                 \
    {"model", required_argument, 0, AW_JO_MODEL}, {"calib", required_argument, 0, AW_JO_CALIB},            \
    {"calib-text", required_argument, 0, AW_JO_CTEXT}, {"text-field", required_argument, 0, AW_JO_TFIELD}, \
    {"calib-samples", required_argument, 0, AW_JO_CSAMPLES},                                               \
    {"calib-len", required_argument, 0, AW_JO_CLEN}, {"seed", required_argument, 0, AW_JO_SEED},           \
    {"eval-text", required_argument, 0, AW_JO_ETEXT}, {"batch", required_argument, 0, AW_JO_BATCH},        \
    {"backend", required_argument, 0, AW_JO_BACKEND}, {"handoff", required_argument, 0, AW_JO_HANDOFF},    \
    {"stages", required_argument, 0, AW_JO_STAGES}, {"replicas", required_argument, 0, AW_JO_REPLICAS},    \
    {"mem-per-rank", required_argument, 0, AW_JO_MEM}, {"hang-timeout", required_argument, 0, AW_JO_HANG}, \
    {"progress-every", required_argument, 0, AW_JO_PEVERY},                                                \
    {"log-json", required_argument, 0, AW_JO_LOGJSON}, {"quiet", no_argument, 0, AW_JO_QUIET},             \
    {"fail-at", required_argument, 0, AW_JO_FAILAT}, {"cpu-precision", required_argument, 0, AW_JO_CPREC}

typedef struct {
    const char *texts[AW_CLI_JOB_MAX_TEXTS]; /* the --calib-text files (o->calib_texts points here) */
    int draw_set;                            /* --calib-samples or --calib-len given */
} aw_cli_job_opts;

/* jo empty, o->calib_texts pointing into it. */
void aw_cli_job_init(aw_cli_job_opts *jo, aw_run_opts *o);
/* Take option code (AW_JO_*) with its value into o: 0, or -1 with msg. */
int aw_cli_job_apply(aw_cli_job_opts *jo, aw_run_opts *o, int code, const char *arg, char *msg, size_t cap);
/* The options' combination (--calib or --calib-text; the draw and
 * --text-field need a text): 0, or -1 with msg. */
int aw_cli_job_finish(const aw_cli_job_opts *jo, const aw_run_opts *o, char *msg, size_t cap);

#endif
