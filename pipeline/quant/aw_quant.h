/*
 * aw_quant.h - calibration statistics of a block, and what the methods make
 * of them: AWEQ (equalization at all four fold points + bias correction),
 * SmoothQuant (the norm fold points only) and RTN (none), then per-tensor
 * symmetric INT8 of weights and static activation steps. The fold points are
 * the family's (aw_arch.h); this file names none.
 *
 * Equalization factor per input channel j of a tap (docs/design.md):
 *   s_j = rx_j^a / rw_j^(1-a), rx_j = max|x_j|, rw_j = max_i |W_ij|
 * (over every linear the tap feeds, e.g. q, k and v together), 1 for a dead
 * or non-finite channel, clamped to [1e-5, 1e5] so folded fp16 values stay
 * representable. At the row folds (v_proj -> out_proj, fc1 -> fc2, up ->
 * down) the producer's row j is divided by s_j; a nearly silent channel (a
 * ReLU that rarely fires) would get a tiny s_j and its row would set the
 * producer's whole INT8 range, so s_j >= rowmax_j / M, M the largest folded
 * row of the live channels. With grouped-query attention the factor of a v
 * row is taken over every query-head channel reading it (max of ranges and
 * columns). Folds, in tap order, all before any layer is quantized.
 * Bias correction: b' = b - (Q(W') - W') E[x'], E[x'] = mean(x) / s.
 */
#ifndef AW_QUANT_H
#define AW_QUANT_H

#include <stdint.h>

#include "aw_config.h"
#include "aw_dtype.h"
#include "aw_model.h"
#include "aw_scheme.h"

/* Statistics of one layer's four taps. Sums are kept per block of samples
 * (part) and added into the totals in block order (aw_stats_add_part), so
 * that one rank and many replicas add the same numbers in the same order:
 * the result never depends on the rank count. */
typedef struct {
    void *arena;
    int in[AW_TAP_COUNT];
    /* with_gram (AW_STATS_GRAM): per tap, X^T X (in, in), full symmetric
     * after aw_stats_finish; with_abssum (AW_STATS_ABSSUM, and with the
     * Gram): sum |x| per channel (in); NULL otherwise. A block's part
     * carries, per tap, the lower triangle (with the Gram) and the |x| sums
     * after the plain sums (n_gram doubles); the observer accumulates them
     * in f32 (d_gram, one block of samples) and in double (d_abssum). */
    int with_gram, with_abssum;
    double *gram[AW_TAP_COUNT];
    double *abssum[AW_TAP_COUNT];
    size_t n_gram;                /* doubles of that part: sum_t in(in+1)/2 (Gram) + in */
    float *d_gram;                /* sum_t in^2 floats: a block's Gram (the scratch) */
    double *d_abssum;             /* n_sum doubles: a block's |x| sums, backend memory */
    float *h_gram;                /* their host copies */
    double *h_abssum;
    float *d_gram_scratch;        /* the scratch's backend copy (aw_stats_use_gram_scratch) */
    size_t n_sum;                 /* 3d + ffn: all taps' channels side by side */
    float *absmax[AW_TAP_COUNT];  /* (in) running max |x| (order-free, exact) */
    double *sum[AW_TAP_COUNT];    /* (in) total sum of x, views into sum_all */
    double *sum_all;              /* (n_sum) */
    double *part;                 /* (n_sum + 1) this block's sums, then its token count */
    uint64_t tokens;              /* tokens observed (per tap) */
    unsigned long long nonfinite; /* non-finite activations seen (not counted) */
    /* where the observer accumulates: the arrays above (CPU), or their
     * mirrors in a backend's memory (aw_stats_attach) */
    const aw_ops *ops;
    /* with_sample (aw_stats_use_sample): a token sample of every tap's fp
     * inputs, sample[tap] (n_samp, in) row-major, views into sample_all
     * (n_samp x n_sum floats, host, outside the arena). Calibration token g
     * (global, block-major: block b's first token is b * B * L) is row
     * g / samp_stride when g % samp_stride == 0 and g / samp_stride <
     * n_samp, samp_stride = max(1, samp_total / n_samp); samp_rows rows are
     * filled, the rest stay zero. Values are stored as x + 0.0f (no
     * negative zeros): replicas that each wrote their own rows combine by a
     * sum into the bytes one rank writes. */
    int with_sample;
    int n_samp, samp_rows;
    uint64_t samp_total, samp_stride, samp_first; /* samp_first: the current block's first token */
    float *sample[AW_TAP_COUNT];
    float *sample_all;
    float *d_absmax;              /* (n_sum) all taps' ranges side by side */
    double *d_part;               /* (n_sum) the current block's sums */
    unsigned long long *d_nonfinite;
} aw_stats;

/* What calibration collects beyond the ranges and plain sums, by what the
 * method reads (aw_method_stats_level): AWQ's factors read the |x| sums
 * alone; GPTQ and the weight-only searches read the Gram matrices, which
 * come with the |x| sums. */
typedef enum { AW_STATS_PLAIN = 0, AW_STATS_ABSSUM = 1, AW_STATS_GRAM = 2 } aw_stats_level;
aw_status aw_stats_create(const aw_model_config *c, aw_stats_level level, aw_stats *s);
/* The level s was created with. */
aw_stats_level aw_stats_level_of(const aw_stats *s);
/* A block's f32 Gram matrices live in one scratch per rank, shared by its
 * layers (each layer's part is taken right after its forward): host and
 * backend copies (the same pointer for a host table) of
 * aw_stats_gram_scratch_floats(c) zeroed floats, owned by the caller. */
size_t aw_stats_gram_scratch_floats(const aw_model_config *c);
void aw_stats_use_gram_scratch(aw_stats *s, float *host, float *dev);
/* After the last part was added: the Gram matrices made symmetric. */
void aw_stats_finish(aw_stats *s);
/* Doubles of a block's part beyond the plain sums and the token count
 * (n_gram of statistics at that level, for plans). */
size_t aw_stats_extra_part_len(const aw_model_config *c, aw_stats_level level);
/* Bytes aw_stats_create allocates on the host (for plans), without the
 * backend's mirrors; AW_STATS_ABSSUM adds 2 n_sum doubles, AW_STATS_GRAM
 * sum_t in^2 more. A token sample (aw_stats_use_sample) is apart:
 * aw_stats_sample_bytes more. */
uint64_t aw_stats_bytes(const aw_model_config *c, aw_stats_level level);
/* Default rows of the token sample (methods that search with a dynamic
 * activation quantizer, aw_method_needs_sample). */
#define AW_SAMPLE_TOKENS 512
/* Candidates of the scale searches (awq, aweq+search): alpha = g /
 * AW_SEARCH_GRID, g = 0 .. AW_SEARCH_GRID - 1 (aw_quant_int.h). */
#define AW_SEARCH_GRID 20
/* Bytes (in the quantizing table's memory) the sampled search of a dynamic
 * scheme adds while it searches a tap, the largest tap's: the sample and
 * its quantized fold, every consumer's X_s W^T, one product, one
 * consumer's weights in f32 and codes (for plans). */
uint64_t aw_search_sample_bytes(const aw_model_config *c, const aw_scheme *sc, int n_samp);
/* Host bytes of a token sample of n_samp rows of every tap. */
uint64_t aw_stats_sample_bytes(const aw_model_config *c, int n_samp);
/* Keep a sample of n_samp tokens (see with_sample) out of total_tokens
 * calibration tokens: zeroed host rows; AW_ERR_NOMEM, AW_ERR_ARG for
 * n_samp < 1. Call before the first block is observed. */
aw_status aw_stats_use_sample(aw_stats *s, int n_samp, uint64_t total_tokens);
/* The global index of the first token of the block observed next. */
void aw_stats_set_block(aw_stats *s, uint64_t first_token);
void aw_stats_destroy(aw_stats *s);
/* Accumulate in the memory of ops from now on (zeroed mirrors; the host
 * arrays are brought up to date by aw_stats_take_part and aw_stats_fetch). */
aw_status aw_stats_attach(aw_stats *s, const aw_ops *ops);
/* absmax and nonfinite from the mirrors (after the last block). */
aw_status aw_stats_fetch(aw_stats *s);
/* An aw_tap_fn: ctx is an aw_stats; sums go to the current block's part. */
aw_status aw_stats_observe(void *ctx, aw_tap_id tap, const float *x, int T, int in);
/* Doubles in a block's part (sums, then the token count). */
static inline size_t aw_stats_part_len(const aw_stats *s) { return s->n_sum + 1 + s->n_gram; }
/* Copy the current block's part to dst (part_len doubles) and clear it. */
aw_status aw_stats_take_part(aw_stats *s, double *dst);
/* totals += a block's part (call in block order). */
void aw_stats_add_part(aw_stats *s, const double *part);

/* Methods. AWQ, AWEQ+search and GPTQ make coded schemes only (weight-only,
 * and for AWQ and AWEQ+search dynamic ones: their objectives are those of
 * the layer's error); GPTQ and the weight-only searches need the Gram
 * matrix of each tap's inputs (aw_stats with_gram), the dynamic searches a
 * token sample. Kept channels (scheme keep_pct > 0) work with rtn,
 * smoothquant and aweq only. */
typedef enum {
    AW_METHOD_RTN = 0,
    AW_METHOD_SMOOTHQUANT,
    AW_METHOD_AWEQ,
    AW_METHOD_AWQ,         /* s = s_X^alpha, alpha searched on a grid of 20 */
    AW_METHOD_AWEQ_SEARCH, /* AWEQ's factor with alpha searched, then bias correction */
    AW_METHOD_GPTQ,
    AW_METHOD_COUNT
} aw_method_kind;

typedef struct {
    aw_method_kind kind;
    float alpha;            /* migration strength; 0.5 is AWEQ's square root */
    int bias_correction;
    aw_dtype param_dtype;   /* dtype non-quantized tensors are written in */
    aw_dtype scale_dtype;   /* dtype of weight_scale / input_scale */
    aw_scheme scheme;       /* what the quantized linears store (aw_scheme.h) */
    int act_order;          /* GPTQ: columns in decreasing Hessian diagonal */
} aw_method;

/* "rtn", "smoothquant", "aweq", "awq", "aweq+search", "gptq" */
extern const char *const aw_method_names[AW_METHOD_COUNT];
/* What the method reads of the calibration statistics: the Gram matrices
 * X^T X (GPTQ's Hessian, the weight-only searches' objective), the |x|
 * sums alone (AWQ's factors with a dynamic scheme, whose search reads the
 * token sample), or neither. */
aw_stats_level aw_method_stats_level(const aw_method *m);
/* 1 if the method needs each tap's Gram matrix (AW_STATS_GRAM). */
int aw_method_needs_gram(const aw_method *m);
/* AW_ERR_ARG naming the method when st lacks what it reads, the |x| sums
 * or Gram matrices first, then the token sample (layer < 0: no layer in
 * the message). */
aw_status aw_method_check_stats(const aw_method *m, const aw_stats *st, int layer);
/* 1 if the method needs the token sample of each tap (aw_stats_use_sample):
 * awq and aweq+search with a dynamic scheme (their objective runs the
 * activation quantizer on the sample). */
int aw_method_needs_sample(const aw_method *m);
/* A method name -> kind; AW_ERR_ARG otherwise. */
aw_status aw_method_parse(const char *s, aw_method_kind *out);
/* 1 if the method equalizes at this tap of c's family. */
int aw_method_uses_tap(const aw_method *m, const aw_model_config *c, aw_tap_id t);

/* Equalization factor of one channel (see above). */
float aw_eq_factor(float rx, float rw, float alpha);

/* The equalized (folded, not quantized) block: eq (created with wdt F32)
 * gets fp with the method's folds applied, s[tap] the factors. Exact in
 * floating point: the block computes the same function. */
aw_status aw_equalize_block(const aw_model_config *c, const aw_block *fp, const aw_stats *st,
                            const aw_method *m, aw_block *eq, float *const s[AW_TAP_COUNT]);

/* eq (created with wdt F32) = fp folded with the given factors s[tap] at
 * every tap, in tap order: the block aw_equalize_block made when it chose
 * s (bit for bit), without recomputing or searching. AW_ERR_NOMEM. */
aw_status aw_equalize_with_factors(const aw_model_config *c, const aw_block *fp, float *const s[AW_TAP_COUNT],
                                   aw_block *eq);

/* Equalize, quantize and bias-correct block `layer` (fp, untouched) with
 * its statistics into q (created with m->scheme: every field must match).
 * Kept channels, after the folds, per tap: the n_keep channels with the
 * largest absmax / s (ties to the lower index), ascending in keep_idx,
 * keep_mask 0 there; every consumer's columns there go to wkeep (rounded to
 * the parameter dtype) and are zero in the weights that are quantized; the
 * W8A8 input step is the max over the other channels; bias correction's
 * E[x'] is 0 at kept channels. AW_ERR_VALIDATION if no token was observed;
 * AW_ERR_NONFINITE (naming the layer) if a step is not finite; AW_ERR_ARG
 * for a block of another scheme, kept channels with awq, aweq+search or
 * gptq, or statistics without what the method needs. */
aw_status aw_quantize_block(const aw_model_config *c, int layer, const aw_block *fp,
                            const aw_stats *st, const aw_method *m, aw_qblock *q);

/* aw_quantize_block on a backend (aw_ops.h): every weight-sized step (the
 * F32 equalized block widened from dfp, the folds' ranges and divisions,
 * INT8 or group steps, rounding, bias correction's products, the search's
 * objectives, GPTQ's sweep) is an op of o on o's memory; the host moves only
 * statistics-sized vectors (ranges, factors, means, corrections, steps).
 *   dfp: block `layer` in o's memory (aw_block_to_dev: weights in
 *        aw_ops_dev_wdt), untouched;
 *   st:  its statistics (host);
 *   dq:  a quantized block of m->scheme in o's memory (aw_qblock_dev_create
 *        over q): gets the result, for validation;
 *   q:   its host block: gets the same bytes, downloaded once at the end.
 * With aw_ops_cpu() (dfp the host block, dq = q) this is aw_quantize_block;
 * aw_ops_cpu_staged() gives the same bytes. Errors as aw_quantize_block,
 * and the backend's (AW_ERR_CUDA, AW_ERR_NOMEM). */
aw_status aw_quantize_block_ops(const aw_ops *o, const aw_model_config *c, int layer, const aw_block *dfp,
                                const aw_stats *st, const aw_method *m, aw_qblock *dq, aw_qblock *q);
/* Its coded part (weight-only and dynamic schemes; aw_quantize_block_wo on
 * a backend). For a dynamic scheme each linear's wq (the signed values
 * code - zero) is made on the host from the downloaded codes and uploaded
 * to dq: weight-sized, once per block. */
aw_status aw_quantize_block_wo_ops(const aw_ops *o, const aw_model_config *c, int layer, const aw_block *dfp,
                                   const aw_stats *st, const aw_method *m, aw_qblock *dq, aw_qblock *q);

/* Coded schemes (aw_quant_wo.c), called by aw_quantize_block when
 * m->scheme is weight-only or dynamic: the method's folds (none for rtn and gptq,
 * AWEQ's for aweq, searched for awq and aweq+search), group quantization
 * (GPTQ's sweep for gptq), bias correction where the method has it; into q
 * created with m->scheme. Errors as aw_quantize_block. */
aw_status aw_quantize_block_wo(const aw_model_config *c, int layer, const aw_block *fp, const aw_stats *st,
                               const aw_method *m, aw_qblock *q);

/* For the report: rw_j = max |W_ij| over column j of every linear the tap
 * feeds (q, k and v together at the LN1 tap), of an F32 block (the
 * equalized one, or an F32 copy of the loaded one); rw has in[tap] floats.
 * AW_ERR_DTYPE unless b is F32. */
aw_status aw_tap_col_absmax(const aw_model_config *c, const aw_block *b, aw_tap_id tap, float *rw);

/* aw_round_to_dtype (round a value to what a dtype holds) is in aw_dtype.h. */

#endif
