/*
 * aw_run.h - the quantization job: load, calibrate, quantize, validate,
 * write. Phases are functions over the layers a rank holds (pipeline/run/,
 * aw_run_int.h); aw_run_comm() runs them all over the ranks of a world.
 */
#ifndef AW_RUN_H
#define AW_RUN_H

#include <stdint.h>
#include <stdio.h>

#include "aw_backend.h"
#include "aw_clock.h"
#include "aw_comm.h"
#include "aw_guard.h"
#include "aw_config.h"
#include "aw_quant.h"
#include "aw_ranges.h"
#include "aw_validate.h"

/* Hand-off of activation blocks between stages: MPI from host buffers
 * (device blocks staged through them), or NCCL between the GPUs directly
 * (auto: when every rank has its own GPU). */
enum { AW_HANDOFF_AUTO = 0, AW_HANDOFF_MPI, AW_HANDOFF_NCCL };

typedef struct {
    const char *model_dir;
    const char *calib_path;   /* NULL: <model_dir>/calibration.tokens (or calib_texts) */
    const char *const *calib_texts; /* text to draw calibration windows from (aw_textdata.h) */
    int n_calib_texts;
    const char *text_field;   /* jsonl member of the documents (NULL: "text") */
    uint32_t calib_samples;   /* calibration windows drawn from calib_texts */
    uint32_t calib_len;       /* tokens per window; 0: min(2048, the model's positions) */
    uint64_t seed;            /* window draw */
    const char *eval_text;    /* NULL, or text whose perplexity (the WikiText-2 protocol
                                 at the calibration window length) joins the report */
    const char *out_dir;      /* NULL: validate only, write nothing */
    aw_method method;
    double holdout;           /* share of sequences held out for validation */
    int batch;                /* sequences per block of samples */
    double max_rel_error;     /* > 0: fail if a layer's relative error exceeds it */
    int backend_want;         /* -1 auto, or aw_backend_kind */
    int staged;               /* CPU kernels through the device data path (--backend cpu-staged) */
    int cpu_bf16;             /* --cpu-precision bf16: calibration's fp linears in bf16 (CPU backends) */
    int handoff;              /* AW_HANDOFF_*: how activation blocks move between stages */
    int quiet;
    int stages, replicas;     /* 0: chosen by the plan */
    double mem_per_rank_gb;   /* 0: this node's memory / ranks on it */
    int resume;               /* reuse every block whose shard in <out>.work passes its checksum */
    double hang_timeout_s;    /* a rank with no progress for this long ends the job (0: off) */
    aw_fail_at fail_at;       /* test hook */
    double progress_every_s;  /* least seconds between two progress lines of a phase (0: every block) */
    const char *log_json;     /* NULL, or a file for the progress events as JSON lines (rank 0) */
    int report_layers[AW_RANGE_MAX_LAYERS]; /* layers whose per-channel ranges the report shows */
    int n_report_layers;      /* 0: the first, the middle and the last */
} aw_run_opts;

void aw_run_defaults(aw_run_opts *o);

/* Metrics of one linear layer. */
typedef struct {
    double rel_err, sqnr_db;
    double bias_err;          /* RMS over output channels of the mean output error */
    double bias_err_nobc;     /* the same had the bias not been corrected */
    float w_step, x_step;
} aw_layer_metrics;

typedef struct {
    aw_model_config cfg;
    aw_backend_info backend;
    int n_layers;
    aw_layer_metrics *layers;  /* n_layers * the family's linears */
    aw_e2e e2e;
    aw_e2e eval_e2e;          /* over the eval_text windows (n_pred 0 without it) */
    uint32_t eval_windows;
    uint64_t eval_stream_tokens;  /* tokens of the whole eval text */
    uint64_t calib_tokens, holdout_tokens;
    uint32_t calib_seqs, holdout_seqs, seq_len;
    double t_load, t_calib, t_quant, t_valid, t_write; /* seconds (rank 0) */
    char worst_layer[96];
    double worst_rel_err;
    int world, stages, replicas;
    int reused_blocks;                        /* blocks taken from shards (--resume) */
    int *rank_first_layer, *rank_last_layer; /* (world) layers held by each rank, [first, last) */
    double *rank_peak_mb;                     /* (world) peak resident memory of each rank */
    char (*rank_device)[160];                 /* (world) backend and device of each rank */
    int nccl;                                 /* 1: stages handed blocks over with NCCL */
    /* equalization as the report shows it (aw_ranges.h), rank 0 */
    float *depth;                             /* (n_layers x AW_DEPTH_LEN) every layer's summary */
    int n_shown, shown[AW_RANGE_MAX_LAYERS];  /* the layers shown channel by channel */
    float *detail;                            /* (n_shown x aw_range_detail_len) */
} aw_run_result;

void aw_run_result_free(aw_run_result *r);

/* Run the whole job over the ranks of world (one rank is the plain case):
 * rank 0 plans and broadcasts the model's tables, each rank loads only its
 * blocks, calibration and validation stream stage to stage, each stage
 * writes its blocks' shards, rank 0 the rest. Metrics and the report are
 * complete on rank 0. On failure nothing is left under out_dir.
 * Collective: every rank of world must call it. */
aw_status aw_run_comm(const aw_run_opts *o, const aw_comm *world, aw_run_result *r);
/* aw_run_comm over the process's world (MPI initialised on first use). */
aw_status aw_run(const aw_run_opts *o, aw_run_result *r);

/* Perplexity, KL and agreement from the sums. */
double aw_e2e_ppl_fp(const aw_e2e *e);
double aw_e2e_ppl_q(const aw_e2e *e);
double aw_e2e_kl(const aw_e2e *e);
double aw_e2e_top1(const aw_e2e *e);

/* aweq_report.json text (malloc'd): deterministic (no timings, no layout),
 * so the checkpoint's bytes do not depend on the rank count; and the
 * readable table (with timings and memory per rank) on out. */
aw_status aw_report_json(const aw_run_opts *o, const aw_run_result *r, char **json);
/* aweq_run.json text (malloc'd): how this job ran (ranks, layout, backend,
 * times per phase, peak memory per rank), kept apart from the report so
 * that the report's bytes stay independent of the layout. */
aw_status aw_run_json(const aw_run_opts *o, const aw_run_result *r, char **json);
void aw_report_print(const aw_run_opts *o, const aw_run_result *r, FILE *out);
/* {"load": s, "calibrate": s, ...}: the phase times, for aweq_run.json and
 * the --log-json end event (a new jansson object, owned by the caller). */
struct json_t;
struct json_t *aw_report_times_json(const aw_run_result *r);

/* ---- sweep (aw_sweep.c): one calibration, many methods and schemes ---- */

#define AW_SWEEP_TEXT_MAX 256

/* One point of a grid file: its line and options, and the method they make
 * (dtypes are taken from the model when the point runs). */
typedef struct {
    int line;
    char text[AW_SWEEP_TEXT_MAX];
    aw_method method;
} aw_sweep_point;

typedef struct {
    aw_model_config cfg;
    aw_backend_info backend;
    uint32_t calib_seqs, seq_len, eval_windows, eval_windows_all; /* evaluated, and in the text */
    uint64_t eval_stream_tokens;
    aw_stats_level stats_level;     /* what calibration collected (the union of the points' needs) */
    int stats_sample;
    aw_e2e fp;                      /* the fp model's sums (nll_fp, n_pred) */
    int n_points;
    aw_e2e *q;                      /* (n_points) each point's sums (nll_q, n_pred; kl, top1_agree with_kl) */
    int with_kl;
    double *t_quant, *t_eval;       /* (n_points) seconds, on the rank that ran the point */
    double t_load, t_calib, t_total;
    int world, stages, replicas;
    int groups;                     /* how many groups (1: every point over all ranks; more: side by side) */
} aw_sweep_result;

/* Calibrate once (statistics with what any point needs), then for each
 * point: quantize every block and evaluate o->eval_text's perplexity (the
 * fp model's with the first point only). With one stage (every rank holds
 * every layer and, after calibration, every statistic) the points run side
 * by side: the ranks split into k = min(points, ranks) groups (rank % k),
 * point i runs on group i % k, whose ranks split its eval windows. With
 * more stages the points run one after the other over every rank (stages
 * hold their layers, replicas split the eval windows). Either way the sums
 * are added in window order: the same bytes for any layout.
 * Nothing is written but, on rank 0, o->out_dir's sweep.json, sweep.md
 * (atomically) and sweep_run.json. o->method is ignored; o->out_dir and
 * o->eval_text are required; o->holdout should be 0 (nothing is
 * validated). eval_windows > 0: only the eval text's first eval_windows
 * windows (a quicker sweep; the table says how many). with_kl: the fp
 * model beside every point, for KL(fp || quantized) and top-1 agreement
 * (the evaluation's cost about doubles). Collective over world; r complete
 * on rank 0. */
aw_status aw_sweep_comm(const aw_run_opts *o, const aw_sweep_point *pts, int n_pts, uint32_t eval_windows,
                        int with_kl, const aw_comm *world, aw_sweep_result *r);
void aw_sweep_result_free(aw_sweep_result *r);
/* The deterministic table (no times, no layout) as JSON and as markdown
 * (malloc'd texts), and how the sweep ran (times, layout) as JSON. */
aw_status aw_sweep_json(const aw_run_opts *o, const aw_sweep_point *pts, const aw_sweep_result *r, char **out);
aw_status aw_sweep_markdown(const aw_run_opts *o, const aw_sweep_point *pts, const aw_sweep_result *r, char **out);
aw_status aw_sweep_run_json(const aw_run_opts *o, const aw_sweep_point *pts, const aw_sweep_result *r, char **out);

/* OpenBLAS threads: this node's cores shared by its `local` ranks, unless
 * OPENBLAS_NUM_THREADS says otherwise. */
void aw_set_blas_threads(int local);

#endif
