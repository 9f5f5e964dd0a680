/*
 * aw_plan.h - the plan a run (and `aweq-dist plan`, pipeline/cli/) makes: what one rank of a run pays for a
 * model (bytes from the same functions that allocate, FLOPs of the block
 * forward and of validation, split by phase for the cost models), the
 * planner's layout for a world and memory budget, and its printout. Nothing is read but config.json (or a built-in
 * shape): plans for OPT-175B are made without its weights.
 */
#ifndef AW_PLAN_H
#define AW_PLAN_H

#include <stdint.h>
#include <stdio.h>

#include "aw_config.h"
#include "aw_quant.h"
#include "aw_sched.h"
#include "aw_status.h"

/* Costs of a run of shape c with sequences of seq_len tokens in blocks of
 * batch sequences, calib_seqs calibration and holdout_seqs held-out
 * sequences (see aw_plan.c for each term). AW_ERR_ARG for a length
 * outside 1..max positions, batch or calib_seqs < 1. */
aw_status aw_plan_costs_for(const aw_model_config *c, int seq_len, int batch, uint32_t calib_seqs,
                            uint32_t holdout_seqs, aw_plan_costs *out);

/* The same for method m (its scheme's quantized blocks; for methods with
 * Gram matrices, their sums and scratch: see aw_plan.c). */
aw_status aw_plan_costs_method(const aw_model_config *c, const aw_method *m, int seq_len, int batch,
                               uint32_t calib_seqs, uint32_t holdout_seqs, aw_plan_costs *out);

/* Logit rows at a time on a GPU (aw_run.c): the fp and W8A8 chunks are
 * brought to the host for the log-softmax sums. */
#define AW_GPU_LOGIT_CHUNK 512

/* Device memory of one rank on the CUDA backend, the part of the plan the
 * GPU holds (see aw_plan.c for each term; aw_run checks it against
 * cudaMemGetInfo before loading). */
typedef struct {
    uint64_t block;   /* per decoder block: fp weights (F16, or F32 for BF16/F32 checkpoints), W8A8 block, sums */
    uint64_t fixed;   /* every rank: hand-off buffers, forward and validation workspaces, tokens */
    uint64_t ends;    /* first and last stage: embeddings, positions, final LN in f32 */
    uint64_t head;    /* last stage: LN output and two chunks of logits */
    uint64_t reserve; /* CUDA context, cuBLAS/cuBLASLt workspaces, kernel scratch, NCCL buffers */
} aw_gpu_costs;

aw_status aw_gpu_costs_for(const aw_model_config *c, const aw_plan_costs *k, aw_gpu_costs *out);
/* Bytes a rank of a stage holding n_layers blocks needs on its device. */
uint64_t aw_gpu_stage_bytes(const aw_gpu_costs *g, int n_layers, int first_stage, int last_stage);

/* Print plan p (made from costs k) for model_name/c and the budget on out:
 * memory, the layout, and the slowest stage's time by phase, each phase
 * labelled "measured" (k->timed: the CPU cost model fitted by
 * bench/fit_costs.sh, aw_cost_cpu) or "assumed" (FLOPs at the rates' GPU
 * TFLOP/s, file-system reads). AW_ERR_IO if out cannot be written. */
aw_status aw_plan_print(FILE *out, const char *model_name, const aw_model_config *c, const aw_plan *p,
                        const aw_plan_costs *k, uint64_t mem_per_rank);
/* AW_ERR_PLAN naming the first stage whose GPU memory exceeds gpu_mem. */
aw_status aw_plan_check_gpu(const aw_model_config *c, const aw_plan *p, const aw_plan_costs *k, uint64_t gpu_mem);


#endif
