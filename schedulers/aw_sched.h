/*
 * aw_sched.h - plans: which ranks hold which decoder blocks. Pure functions
 * (no MPI, no I/O): from the costs of one block (measured by the code that
 * allocates, passed in by pipeline/), the world size and a per-rank memory
 * budget, to a partition of the blocks into contiguous pipeline stages,
 * balanced by cost, with replicas per stage (world = stages x replicas) that
 * split the blocks of calibration samples between them.
 *
 * Rank layout: rank = stage * replicas + replica. Stage s owns layers
 * [first_layer[s], first_layer[s+1]); stage 0 also embeds, the last stage
 * also holds the final LayerNorm and the tied head.
 */
#ifndef AW_SCHED_H
#define AW_SCHED_H

#include <stdint.h>

#include "aw_status.h"

#define AW_PLAN_MAX_STAGES 1024

/* What one rank pays, from the model and the run's options. */
typedef struct {
    int n_layers;
    uint64_t block_bytes;        /* resident bytes of one block (fp weights + quantized block + stats) */
    uint64_t ends_bytes;         /* embeddings + final LN (first and last stage each hold them) */
    uint64_t head_ws_bytes;      /* logits scratch on the last stage */
    uint64_t rank_fixed_bytes;   /* activations, workspaces, hand-off buffers: every rank */
    uint64_t block_read_bytes;   /* bytes of one block in the input checkpoint */
    uint64_t ends_read_bytes;    /* bytes of the ends in the input checkpoint (first and last stage read them; 0: not counted) */
    double block_flops;          /* FLOPs of one block over the whole run (calibration + validation) */
    double head_flops;           /* FLOPs of the LM head over the validation */
    int sample_blocks;           /* blocks of calibration samples (replicas split these) */
    /* What the costs were computed from, for printed plans only (the
     * planner does not read them; 0 where unknown). */
    int seq_len, batch;
    uint32_t calib_seqs, holdout_seqs;
} aw_plan_costs;

/* Rates used for time estimates. */
typedef struct {
    double flops_per_s;          /* sustained per rank */
    double read_bytes_per_s;     /* file-system read per rank */
} aw_plan_rates;

typedef struct {
    int world, stages, replicas;
    int first_layer[AW_PLAN_MAX_STAGES + 1];
    uint64_t mem_bytes[AW_PLAN_MAX_STAGES];  /* estimated peak per rank of the stage */
    double seconds[AW_PLAN_MAX_STAGES];      /* estimated time of the stage's ranks */
    double total_seconds;                    /* the slowest stage, plus pipeline fill */
    double fill_seconds;                     /* the pipeline fill part of total_seconds */
    aw_plan_rates rates;                     /* the rates the estimates used */
} aw_plan;

/* Make a plan. stages_req / replicas_req: 0 to choose (fewest stages whose
 * ranks fit mem_per_rank; the rest become replicas), or forced values (their
 * product must be the world). AW_ERR_PLAN with a message saying what would
 * fit (a block larger than the budget, more stages than blocks, world not a
 * multiple of the stages, no layout under the budget). */
aw_status aw_plan_make(const aw_plan_costs *c, const aw_plan_rates *r, int world,
                       uint64_t mem_per_rank, int stages_req, int replicas_req, aw_plan *out);

/* The smallest per-rank budget (bytes) under which `stages` stages hold the
 * model: the memory-balanced partition's largest rank. AW_ERR_ARG if stages
 * is not in 1..min(n_layers, AW_PLAN_MAX_STAGES). */
aw_status aw_plan_min_mem(const aw_plan_costs *c, int stages, uint64_t *out);

static inline int aw_plan_stage_of(const aw_plan *p, int rank) { return rank / p->replicas; }
static inline int aw_plan_replica_of(const aw_plan *p, int rank) { return rank % p->replicas; }
/* The stage that owns a layer; -1 if the layer is out of range. */
int aw_plan_stage_of_layer(const aw_plan *p, int layer);

#endif
