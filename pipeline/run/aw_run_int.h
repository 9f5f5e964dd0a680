/*
 * aw_run_int.h - private to pipeline/run/: the state of one rank's run,
 * split by what each phase needs, and the phases' functions.
 *
 * Layout (from the plan): rank = stage * R + replica. Stage s holds layers
 * [first_layer[s], first_layer[s+1]). Blocks of B samples are numbered
 * b = 0..nb-1; replica j handles the blocks with b % R == j, and each block
 * streams through the stages of its replica chain. Every sum (statistics,
 * validation errors, end-to-end) is kept per block and added in block order
 * after an allgather among the replicas of a stage (mpi/aw_reduce.h), so the
 * result is the same bytes whatever the number of stages and replicas.
 *
 * Phases and their files:
 *   aw_run_inputs.c  options' defaults; rank 0 reads config, tokens, text,
 *                    plans; the job broadcast (run_inputs, run_topo)
 *   aw_run_model.c   the backend and this rank's layers in its memory (run_model)
 *   aw_run_stream.c  calibrate, validate, evaluate: blocks through the stages
 *                    (run_stream; transfers in mpi/aw_stream.h)
 *   aw_run_results.c metrics, layout and ranges gathered on rank 0; report files
 *   aw_run_output.c  shards (resume), quantization, the output folder (run_output)
 *   aw_run.c         aw_run_comm: the phases in order
 */
#ifndef AW_RUN_INT_H
#define AW_RUN_INT_H

#include "aw_forward.h"
#include "aw_model.h"
#include "aw_progress.h"
#include "aw_run.h"
#include "aw_sched.h"
#include "aw_reduce.h"
#include "aw_stream.h"
#include "aw_tokens.h"

#define AW_LOGIT_CHUNK 128

/* Where this rank sits. */
typedef struct {
    const aw_comm *w;
    aw_pipe pipe;                  /* stage and chain communicators */
    aw_plan plan;
    int stage, replica, S, R;
    int l0, nl;                    /* my layers: [l0, l0 + nl) */
    int is_first, is_last;
} run_topo;

/* The job: the same on every rank once rank 0 has read and broadcast it. */
typedef struct {
    aw_model_config cfg;
    aw_method method;
    aw_model_files *mf;
    aw_tokens tokens;              /* calibration, held-out, then eval windows */
    uint32_t n_calib, n_hold, n_eval;
    uint64_t eval_stream_tokens;   /* rank 0 */
    int L, B;                      /* tokens per sequence, sequences per block */
    /* what the calibration statistics collect (run_setup: from the method;
     * a sweep sets the union of its grid's needs) */
    aw_stats_level stats_level;    /* aw_method_stats_level */
    int stats_sample;              /* aw_method_needs_sample */
    int cpu_bf16;                  /* calibration's fp linears in bf16 (--cpu-precision bf16) */
} run_inputs;

/* This rank's slice of the model: host blocks and, on the backend, the
 * copies the kernels work on (the host objects themselves with the CPU
 * table). */
typedef struct {
    const aw_ops *ops;
    aw_ops *ops_owned;             /* the CUDA table, destroyed at the end */
    const aw_cuda_api *cuda;       /* the CUDA plugin, when this rank uses it */
    aw_block *fp, *dfp;            /* fp blocks, their backend copies */
    aw_qblock *q, *dq;             /* W8A8 blocks (dq from quantization on) */
    aw_model_ends ends, dends;
} run_model;

/* The streaming passes: hand-off buffers, workspaces, per-block sums. */
typedef struct {
    aw_fwd_ws ws;
    aw_val_ws vws;
    float *buf[2];                 /* hand-off buffers, 2 * B * L * d floats each */
    float *dbuf[2];                /* their backend copies */
    uint32_t *dtok;                /* one block of samples' tokens (device) */
    aw_stats *stats;               /* per layer */
    float *gram, *dgram;           /* methods with Gram matrices: one block's, shared by my layers */
    aw_layer_val *val;             /* per layer */
    double **parts;                /* per layer: my blocks' parts, n_my_max x part_len */
    aw_e2e *e2e_parts;             /* last stage: my held-out blocks' end-to-end sums */
    float *lx, *logits_fp, *logits_q;
    float *dlx, *dlogits_fp, *dlogits_q;
    int logit_chunk;
    int eval_q_only;               /* run_evaluate: the quantized stream only (fp sums left 0; sweep) */
    int nccl;                      /* 1: blocks move device to device over links */
    aw_nccl_links links;
} run_stream;

/* Shards, the report's ranges, progress. */
typedef struct {
    int *done;                     /* per layer: quantized block taken from its shard */
    char *work;                    /* <out>.work: the shards, NULL without --out */
    char run_key[512];             /* what a shard must have been made from to be reused */
    float *depth_mine;             /* (nl x AW_DEPTH_LEN) my layers' range summaries (replica 0) */
    float *detail_mine;            /* my shown layers' ranges, in layer order (replica 0) */
    aw_progress *prog;             /* progress lines and log (rank 0; NULL elsewhere) */
} run_output;

/* Blocks of B sequences in a pass of n_seqs; those of this replica. */
static inline int run_n_blocks(uint32_t n_seqs, int B) { return (int)((n_seqs + (uint32_t)B - 1) / (uint32_t)B); }
static inline int run_n_mine(int nb, const run_topo *t)
{
    return nb > t->replica ? (nb - t->replica + t->R - 1) / t->R : 0;
}

/* aw_run.c: a failure inside a streaming phase cannot go through a
 * collective step (the peers of this rank may be waiting in a transfer for
 * a block it will never send): say what happened, with the rank, and end
 * the job now (aw_comm_abort; out_dir: where a rerun resumes, or NULL);
 * with one rank, just return st. */
aw_status run_end_job_if_failed(const aw_comm *w, const char *out_dir, aw_status st);
/* Rank 0's progress lines and events as o asks (*prog NULL elsewhere). */
aw_status run_progress_start(const aw_comm *w, const aw_run_opts *o, aw_progress **prog);
/* The job's last event ("end": status, message, times when given; times is
 * taken over) and *prog destroyed; nothing when *prog is NULL. */
void run_progress_finish(aw_progress **prog, aw_status st, json_t *times);

/* aw_run_inputs.c: rank 0 reads and plans; every rank leaves with the same
 * job, plan and communicators. Collective. */
aw_status run_setup(const aw_run_opts *o, run_inputs *in, run_topo *t, int local);

/* aw_run_model.c */
/* This rank's kernels and the hand-off (NCCL or MPI). Collective. */
aw_status run_start_backend(const aw_run_opts *o, const run_inputs *in, const run_topo *t, run_model *m,
                            run_stream *s, run_output *out, aw_run_result *r);
/* My layers: host blocks, their backend copies, statistics, buffers. */
aw_status run_load_local(const run_inputs *in, const run_topo *t, run_model *m, run_stream *s, run_output *out);
/* What the backend holds (links aborted if failed), then everything. */
void run_dev_free(const run_topo *t, run_model *m, run_stream *s, int failed);
void run_free(const run_topo *t, run_inputs *in, run_model *m, run_stream *s, run_output *out);

/* aw_run_stream.c: the passes; collective over the stages and replicas. */
aw_status run_calibrate(const aw_run_opts *o, const run_inputs *in, const run_topo *t, run_model *m,
                        run_stream *s, run_output *out);
aw_status run_validate(const aw_run_opts *o, const run_inputs *in, const run_topo *t, run_model *m,
                       run_stream *s, run_output *out, aw_e2e *e2e);
aw_status run_evaluate(const aw_run_opts *o, const run_inputs *in, const run_topo *t, run_model *m,
                       run_stream *s, run_output *out, aw_e2e *e2e);

/* aw_run_results.c */
aw_status run_gather_metrics(const run_inputs *in, const run_topo *t, const run_model *m, const run_stream *s,
                             aw_run_result *r);
aw_status run_gather_layout(const run_topo *t, const run_model *m, aw_run_result *r);
/* Replica 0: layer l's range summary (and channel ranges when shown). */
aw_status run_layer_ranges(const run_inputs *in, const run_topo *t, const run_model *m, const run_stream *s,
                           run_output *out, const aw_run_result *r, int l);
aw_status run_gather_ranges(const run_inputs *in, const run_topo *t, const run_output *out, aw_run_result *r);
/* report.html and aweq_run.json in dir (rank 0). */
aw_status run_write_report_files(const aw_run_opts *o, const aw_run_result *r, const char *dir,
                                 const char *report_json);

/* aw_run_output.c */
aw_status run_prepare_shards(const aw_run_opts *o, const run_inputs *in, const run_topo *t, run_model *m,
                             run_output *out, aw_run_result *r);
/* Quantize my layers (or take them from shards), write their shards, take
 * their ranges; the W8A8 blocks to the backend. Local. */
aw_status run_quantize(const aw_run_opts *o, const run_inputs *in, const run_topo *t, run_model *m,
                       const run_stream *s, run_output *out, const aw_run_result *r);
aw_status run_write_output(const aw_run_opts *o, const run_inputs *in, const run_topo *t, const run_model *m,
                           const run_output *out, aw_run_result *r, double t0);

#endif
