/*
 * aw_model.h - an OPT model's parameters in memory (f32), block by block,
 * and what quantization makes of a block. One allocation per block's
 * tensors, carved into views. A rank holds only the blocks it owns.
 */
#ifndef AW_MODEL_H
#define AW_MODEL_H

#include <stdint.h>

#include "aw_config.h"
#include "aw_model_files.h"
#include "aw_status.h"

/* The six linear layers of an OPT block. */
typedef enum { AW_LIN_Q = 0, AW_LIN_K, AW_LIN_V, AW_LIN_O, AW_LIN_FC1, AW_LIN_FC2, AW_LIN_COUNT } aw_linear_id;
/* The four places where linear inputs are observed (and equalized). */
typedef enum { AW_TAP_QKV = 0, AW_TAP_O, AW_TAP_FC1, AW_TAP_FC2, AW_TAP_COUNT } aw_tap_id;

extern const char *const aw_linear_names[AW_LIN_COUNT]; /* "self_attn.q_proj", ... "fc2" */
extern const char *const aw_tap_names[AW_TAP_COUNT];    /* "ln1->qkv", ... */
/* The tap that feeds a linear layer. */
aw_tap_id aw_linear_tap(aw_linear_id l);

typedef struct {
    float *w; /* (out, in) */
    float *b; /* (out) */
    int in, out;
} aw_linear;

/* f32 parameters of one decoder block (views into arena). */
typedef struct {
    float *arena;
    aw_linear lin[AW_LIN_COUNT];
    float *ln1_g, *ln1_b, *ln2_g, *ln2_b; /* (d) */
} aw_block;

/* A block after equalization and INT8: the folded LayerNorms (and folded
 * fp weights, kept for reference), INT8 weights, steps and corrected biases.
 * Non-quantized values are rounded to the checkpoint dtype, so that what is
 * validated is exactly what is written. */
typedef struct {
    aw_block eq;                    /* equalized, not quantized */
    void *arena;
    int8_t *wq[AW_LIN_COUNT];       /* (out, in) */
    float *bias[AW_LIN_COUNT];      /* (out) corrected bias */
    float w_step[AW_LIN_COUNT];
    float x_step[AW_LIN_COUNT];     /* static activation step of the layer's input */
    float *s[AW_TAP_COUNT];         /* equalization factors (in) per tap; 1 where none */
} aw_qblock;

/* Model-level parameters: embeddings (the head is tied) and the final LN. */
typedef struct {
    float *arena;
    float *embed;      /* (vocab, d) */
    float *pos;        /* (max_pos + 2, d) */
    float *lnf_g, *lnf_b;
} aw_model_ends;

/* The equalization factors a layer's output rows were divided by (the fold
 * into v_proj and fc1 of the next tap), or NULL: multiplying the W8A8
 * output by them gives the layer's output in the model's own coordinates. */
const float *aw_qblock_out_scale(const aw_qblock *q, aw_linear_id l);

/* Allocate a block for shape c (values uninitialised); destroy accepts NULL members. */
aw_status aw_block_create(const aw_opt_config *c, aw_block *b);
void aw_block_destroy(aw_block *b);
/* Deep copy src into dst (same shape, created). */
void aw_block_copy(const aw_opt_config *c, aw_block *dst, const aw_block *src);
/* Read block `layer` from a checkpoint (converted to f32); AW_ERR_NONFINITE
 * naming file and tensor if a value is NaN or Inf. */
aw_status aw_block_load(const aw_opt_config *c, const aw_model_files *mf, int layer, aw_block *b);

aw_status aw_qblock_create(const aw_opt_config *c, aw_qblock *q);
void aw_qblock_destroy(aw_qblock *q);

aw_status aw_ends_load(const aw_opt_config *c, const aw_model_files *mf, aw_model_ends *e);
void aw_ends_destroy(aw_model_ends *e);

#endif
