/*
 * aw_synth.h - generated checkpoints (OPT or LLaMA shaped): the built-in default model and
 * every test's fixture. Weights are seeded per tensor name, so the bytes do
 * not depend on generation order. They carry what makes real OPT models hard
 * to quantize: a few hidden channels whose norm outputs are 20-100x the
 * rest, the same channels in every block, with a non-zero mean; milder
 * outlier channels at the inputs of the output projection and the MLP's last linear.
 */
#ifndef AW_SYNTH_H
#define AW_SYNTH_H

#include <stdint.h>

#include "aw_config.h"
#include "aw_status.h"

typedef struct {
    aw_model_config cfg;     /* shape of the model; torch_dtype is the storage dtype */
    uint64_t seed;
    uint64_t max_shard_bytes; /* shard size limit (a tensor larger than it gets a shard alone) */
    uint32_t calib_seqs;   /* calibration sequences written to calibration.tokens */
    uint32_t calib_len;    /* tokens per sequence */
    int n_outliers;        /* outlier hidden channels; 0 picks max(2, d / 128) */
    int verbose;           /* progress lines on stderr */
} aw_synth_opts;

/* Defaults for a shape: seed 1234, F16, 100 MB shards, 80 x 128 tokens. */
void aw_synth_defaults(aw_synth_opts *o, const aw_model_config *shape);

/* Write the model folder out_dir (must not exist or be empty): config.json,
 * model-0000k-of-0000n.safetensors + model.safetensors.index.json (or a
 * single model.safetensors), calibration.tokens. Built in a temporary
 * folder and renamed, so a failure leaves nothing under out_dir. */
aw_status aw_synth_write(const aw_synth_opts *o, const char *out_dir);

/* The outlier channels the generator uses for a config (sorted, distinct):
 * writes up to cap indices into idx and returns how many there are. */
int aw_synth_outlier_channels(const aw_synth_opts *o, int *idx, int cap);

#endif
