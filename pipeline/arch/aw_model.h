/*
 * aw_model.h - a model's parameters in memory (f32), block by block,
 * and what quantization makes of a block. One allocation per block's
 * tensors, carved into views. A rank holds only the blocks it owns.
 */
#ifndef AW_MODEL_H
#define AW_MODEL_H

#include <stdint.h>

#include "aw_arch.h"
#include "aw_config.h"
#include "aw_model_files.h"
#include "aw_ops.h"
#include "aw_scheme.h"
#include "aw_status.h"

/* A linear is an index into its family's descriptor (aw_arch.h); taps are
 * aw_tap_id. Every block has AW_NORM_COUNT norms. */
/* The tap that feeds linear l of c's family. */
aw_tap_id aw_linear_tap(const aw_model_config *c, int l);

typedef struct {
    void *w;      /* (out, in) in the block's weight dtype */
    float *b;     /* (out); zeros where the checkpoint has no bias */
    int in, out;
} aw_linear;

/* Parameters of one decoder block (views into arena): linear weights in
 * wdt (the checkpoint's dtype, 2 bytes a value for F16/BF16; F32 for the
 * equalized block that exists only while its layer is quantized), biases
 * and norms in f32 (a norm bias is zeros where the family has none). */
typedef struct aw_block {
    void *arena;
    aw_dtype wdt;
    int n_lin;
    aw_linear lin[AW_LIN_MAX];
    float *norm_g[AW_NORM_COUNT], *norm_b[AW_NORM_COUNT]; /* (d) */
} aw_block;

/* One quantized linear of a quantized block (aw_scheme.h): W8A8 (wq,
 * w_step, x_step), or coded low-bit weights (codes, wstep, wzero) with the
 * input in floating point (weight-only) or quantized at run time (dynamic:
 * wq holds the signed values q - z of the codes for the integer product).
 * With kept channels (scheme keep_pct > 0), the weights of the tap's kept
 * input channels are zero in wq / dequantize to zero from codes, and their
 * fp columns are in wkeep. */
typedef struct {
    int8_t *wq;        /* W8A8 and dynamic: (out, in); NULL for weight-only */
    uint8_t *codes;    /* coded: (out, in) codes; NULL for W8A8 */
    float *wstep;      /* coded: (out, ng) steps, as written */
    uint8_t *wzero;    /* coded: (out, ng) zero points */
    int group;         /* coded: inputs per step (0: the whole row) */
    int n_keep;        /* kept input channels (those of the tap) */
    const int32_t *keep_idx; /* (n_keep) the tap's kept channels, ascending (views into the block) */
    const float *keep_mask;  /* (in) 0 at a kept channel, 1 elsewhere; NULL without kept channels */
    float *wkeep;      /* (out, n_keep) the kept columns, rounded to the parameter dtype */
    float *bias;       /* (out) corrected bias, as written */
    float *bias_plain; /* (out) the bias without correction, as it would be written */
    float w_step, x_step; /* W8A8: weight step, static input step */
    int in, out;
    aw_tap_id tap;     /* the tap feeding it */
} aw_qlinear;

/* A block after equalization and quantization: folded norms, quantized
 * weights, steps, corrected biases and the equalization factors. Non-
 * quantized values are rounded to the checkpoint dtype, so that what is
 * validated is exactly what is written. About 1 byte per weight. */
typedef struct aw_qblock {
    void *arena;
    aw_scheme scheme;
    int n_lin;
    aw_qlinear lin[AW_LIN_MAX];
    float *norm_g[AW_NORM_COUNT], *norm_b[AW_NORM_COUNT]; /* (d) folded */
    float *s[AW_TAP_COUNT];   /* equalization factors (in) per tap; 1 where none */
    float *out_s[AW_LIN_MAX]; /* (out) the factors a row-fold producer's rows were
                                 divided by (from s, aw_qblock_set_out_scales); NULL
                                 for the other linears */
    int n_keep[AW_TAP_COUNT];        /* kept channels per tap (aw_scheme_n_keep) */
    int32_t *keep_idx[AW_TAP_COUNT]; /* (n_keep) ascending; NULL without kept channels */
    float *keep_mask[AW_TAP_COUNT];  /* (in) 0 kept, 1 quantized; NULL without */
} aw_qblock;

/* Model-level parameters: embeddings, positions (where the family has a
 * table), the final norm and the head (the embedding when tied). */
typedef struct {
    float *arena;
    float *embed;      /* (vocab, d) */
    float *pos;        /* (max_pos + pos_offset, d), or NULL */
    float *lnf_g, *lnf_b; /* lnf_b zeros where the family has none */
    float *head;       /* (vocab, d): embed when tied */
} aw_model_ends;

/* The equalization factors a layer's output rows were divided by (the row
 * folds), or NULL: multiplying the W8A8 output by them gives the layer's
 * output in the model's own coordinates. */
const float *aw_qblock_out_scale(const aw_qblock *q, int l);
/* Fill q->out_s from q->s (after quantizing, or reading s from a file). */
void aw_qblock_set_out_scales(const aw_model_config *c, aw_qblock *q);


/* Allocate a block for shape c with weights in wdt (F32, F16 or BF16;
 * values uninitialised); destroy accepts a zeroed block. */
aw_status aw_block_create(const aw_model_config *c, aw_dtype wdt, aw_block *b);
void aw_block_destroy(aw_block *b);
/* dst (created, any wdt) = src, weights converted to dst's dtype. */
aw_status aw_block_convert(aw_block *dst, const aw_block *src);
/* Linear l's weights as f32: the block's own array when wdt is F32, else
 * converted into scratch (in * out floats). */
const float *aw_linear_f32(const aw_block *b, int l, float *scratch);
/* Bytes a block of shape c takes with weights in wdt (for plans). */
uint64_t aw_block_bytes(const aw_model_config *c, aw_dtype wdt);
uint64_t aw_qblock_bytes(const aw_model_config *c, const aw_scheme *sc);
/* Read block `layer` from a checkpoint (weights converted to the block's
 * wdt); AW_ERR_NONFINITE naming file and tensor if a value is NaN or Inf. */
aw_status aw_block_load(const aw_model_config *c, const aw_model_files *mf, int layer, aw_block *b);

/* A dynamic scheme's linear: wq = code - zero of its group, on the host. */
void aw_qlinear_set_signed(aw_qlinear *ql);

/* A zeroed quantized block of scheme sc. */
aw_status aw_qblock_create(const aw_model_config *c, const aw_scheme *sc, aw_qblock *q);
void aw_qblock_destroy(aw_qblock *q);

aw_status aw_ends_load(const aw_model_config *c, const aw_model_files *mf, aw_model_ends *e);
void aw_ends_destroy(aw_model_ends *e);
uint64_t aw_ends_bytes(const aw_model_config *c);

/* Copies in the memory of a backend (aw_ops.h) of a block (weights in
 * aw_ops_dev_wdt), a quantized block and the model ends, for the streaming
 * phases; with a host table (aw_ops_cpu) the copy is the host object itself.
 * Free with the matching _dev_free and the same host object. */
aw_status aw_block_to_dev(const aw_ops *o, const aw_model_config *c, const aw_block *host, aw_block *dev);
void aw_block_dev_free(const aw_ops *o, aw_block *dev, const aw_block *host);
aw_status aw_qblock_to_dev(const aw_ops *o, const aw_model_config *c, const aw_qblock *host, aw_qblock *dev);
void aw_qblock_dev_free(const aw_ops *o, aw_qblock *dev, const aw_qblock *host);
/* An uninitialised block in o's memory (weights in wdt, biases and norms
 * zeroed; a new allocation even for a host table): quantization's equalized
 * block. Destroy accepts a zeroed block. AW_ERR_DTYPE, AW_ERR_NOMEM. */
aw_status aw_block_dev_create(const aw_ops *o, const aw_model_config *c, aw_dtype wdt, aw_block *dev);
void aw_block_dev_destroy(const aw_ops *o, aw_block *dev);
/* dev: a zeroed quantized block of host's scheme in o's memory (host itself
 * with a host table), for quantization to write on the device; free with
 * aw_qblock_dev_free. aw_qblock_to_host: host = dev (one download, nothing
 * when they are the same memory), steps included. */
aw_status aw_qblock_dev_create(const aw_ops *o, const aw_model_config *c, const aw_qblock *host, aw_qblock *dev);
aw_status aw_qblock_to_host(const aw_ops *o, const aw_model_config *c, const aw_qblock *dev, aw_qblock *host);
aw_status aw_ends_to_dev(const aw_ops *o, const aw_model_config *c, const aw_model_ends *host, aw_model_ends *dev);
void aw_ends_dev_free(const aw_ops *o, aw_model_ends *dev, const aw_model_ends *host);

#endif
