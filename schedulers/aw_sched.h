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
#define AW_PLAN_MAX_SHOWN 8 /* layers the report draws channel by channel */

/* The phases of a run whose time a plan estimates (aweq_run.json's
 * times_s; "write" is not estimated). */
typedef enum {
    AW_PHASE_LOAD = 0, /* reading the stage's weights */
    AW_PHASE_CALIBRATE,
    AW_PHASE_QUANTIZE,
    AW_PHASE_VALIDATE, /* held-out tokens through fp and W8A8 blocks, and the head */
    AW_PHASE_COUNT
} aw_phase;

/* The work of one decoder block in each phase, and of the head, from the
 * model's shape and the run's tokens (pipeline/run/aw_plan.c fills it);
 * a cost model turns it into seconds. */
typedef struct {
    double calib_flops;  /* the fp block forward over the calibration tokens */
    double calib_values; /* calibration tokens x the taps' channels: element-wise work and statistics */
    double params;       /* weights of the block's linears: what quantization folds, rounds, corrects */
    double params_root_d; /* params x sqrt(hidden size): a weight costs more as the matrices outgrow the caches */
    double valid_flops;  /* fp and W8A8 forwards and the per-layer checks over the held-out tokens */
    double valid_values; /* held-out tokens x the taps' channels */
    double head_flops;   /* the fp and W8A8 logits of the held-out tokens (last stage) */
    double head_values;  /* those logits: held-out tokens x vocabulary x 2 (log-softmax, agreement) */
    /* the method's own quantization work, once per block (the layers the
     * report draws only fold again): its matrix products (the scale
     * searches' candidate errors, GPTQ's factorizations and sweep; 0 for
     * W8A8 and the methods without them), costed at the calibration's rate
     * per FLOP, and the weights its search candidates round, at
     * quantization's rate per weight */
    double quant_flops, quant_params;
    /* validation's linear FLOPs that a weight-only scheme runs in fp32 on
     * dequantized weights where W8A8 runs INT8 products (its quantized
     * stream and per-layer checks); 0 otherwise */
    double valid_fp_flops;
    /* bytes of the block's shard (its quantized weights), serialised,
     * zstd-compressed and written in the quantize phase of a run with --out */
    double shard_bytes;
} aw_block_work;

/* INT8 products against fp32 sgemm on the CPU (bench_kernels: 3.4-4.4x on
 * OPT shapes with VNNI), for the validation of weight-only schemes. */
#define AW_COST_INT8_SPEEDUP 4.0
/* A shard's serialisation, zstd level 3 and write on one CPU thread:
 * opt-125m W8A8 (85 MB of INT8 weights), quantize with --out 0.70 s
 * against 0.39 s without (bench/plan_methods.sh prints both). */
#define AW_COST_SHARD_S_PER_BYTE 3.6e-9

/* Seconds of one decoder block in each phase on one rank (no replicas),
 * and of the head in validation. */
typedef struct {
    double calibrate, quantize, validate, head;
    double quant_method; /* the method's own quantization work (quant_flops, quant_params), once per block */
    double shard;        /* writing the block's shard, in the quantize phase once per block */
} aw_block_seconds;

/* A cost model fitted from runs on one machine (bench/fit_costs.sh):
 *   calibrate = calib_flops * calib_s_per_flop + calib_values * calib_s_per_value
 *   quantize  = params * quant_s_per_param + params_root_d * quant_s_per_param_root_d
 *   quant_method = quant_flops * calib_s_per_flop (at calibration's parallel share)
 *                  + quant_params * quant_s_per_param
 *   shard     = shard_bytes * AW_COST_SHARD_S_PER_BYTE (one thread, any backend)
 *   validate += valid_fp_flops * calib_s_per_flop * (1 - 1 / AW_COST_INT8_SPEEDUP)
 *   validate  = valid_flops * valid_s_per_flop + valid_values * valid_s_per_value
 *   head      = head_flops * head_s_per_flop + head_values * head_s_per_value
 * each at fit_threads threads; at N threads a phase's time is scaled by
 * Amdahl's law, (1 - p) + p * fit_threads / N, with p its measured parallel
 * share (from runs at 1 and fit_threads threads). */
typedef struct {
    const char *machine; /* the CPU's model name (lscpu) */
    int fit_threads;     /* threads of the fitted runs */
    double calib_s_per_flop, calib_s_per_value;
    double quant_s_per_param, quant_s_per_param_root_d;
    double valid_s_per_flop, valid_s_per_value;
    double head_s_per_flop, head_s_per_value;
    double parallel[AW_PHASE_COUNT]; /* parallel share of each phase, 0..1 (load: unused) */
} aw_cost_model;

/* The CPU backend's model, fitted on this project's bench machine
 * (constants in the generated schedulers/aw_cost_cpu.h). */
extern const aw_cost_model aw_cost_cpu;

/* Seconds of one block's work w under model m with `threads` threads.
 * AW_ERR_ARG for NULL arguments, threads < 1 or negative/non-finite work. */
aw_status aw_cost_block_seconds(const aw_cost_model *m, const aw_block_work *w, int threads, aw_block_seconds *out);

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
    aw_block_work work;          /* block_flops and head_flops split by phase, for cost models */
    /* Measured seconds instead of FLOPs: when timed is 1 the planner's times
     * come from block_s (a fitted cost model, aw_cost_block_seconds) and
     * the rates' flops_per_s is not used; 0 (what aw_plan_costs_for sets):
     * FLOPs at flops_per_s. Replicas divide calibration, validation and the
     * head; each replica quantizes its stage's blocks. */
    int timed;
    aw_block_seconds block_s;
    /* Layers whose channel ranges the report draws: quantization examines
     * each once more (a quantize block's time again, on the stage that
     * holds it; timed plans only, not balanced by the partition). */
    int n_shown, shown[AW_PLAN_MAX_SHOWN];
    int sample_blocks;           /* blocks of calibration samples (replicas split these) */
    /* What the costs were computed from, for printed plans only (the
     * planner does not read them; 0 where unknown). */
    int seq_len, batch;
    /* on a GPU, the largest scratch of the phases that are not validation's
     * (the pipeline fills them; aw_gpu_costs_for compares): quantization
     * (the f32 equalized block and the method's buffers) and, for methods
     * with Gram matrices, calibration's extra (a block's f32 Gram) */
    uint64_t gpu_quant_bytes, gpu_calib_extra;
    int stats_abssum; /* the statistics carry |x| sums (a method with them) */
    /* on a GPU, what the scheme's quantized forward adds to validation's
     * workspaces (aw_fwd_ws_scheme_bytes; 0 for W8A8) */
    uint64_t gpu_valid_extra;
    uint32_t calib_seqs, holdout_seqs;
    int threads; /* per rank, when timed */
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
    int phase_stage;                         /* the slowest stage, whose phases follow */
    double phase_seconds[AW_PHASE_COUNT];    /* its time by phase (pipeline fill not included) */
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
