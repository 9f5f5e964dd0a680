/*
 * aw_lowbit.h - weight-only low-bit quantization kernels, CPU reference
 * (the CUDA backend's versions are tested against these): group steps,
 * quantize / dequantize, bit packing in the compressed-tensors 0.20 layout,
 * the Gram matrix of a layer's inputs, and the GPTQ column sweep.
 *
 * Weights are row-major (out, in). A row's inputs are split into groups of
 * G consecutive channels (G = 0: the whole row is one group), ng =
 * ceil(in / G) per row, the last one possibly shorter. Steps and zero
 * points are (out, ng) row-major. Codes are unsigned (aw_scheme.h):
 *   q = clamp(rint(w / step) + z, 0, 2^b - 1),   w ~= (q - z) * step
 * rint rounds half to even (the default rounding mode).
 * Steps of a group (b bits, maxq = 2^b - 1):
 *   symmetric:  step = max|w| / (maxq / 2), z = 2^(b-1)
 *   asymmetric: lo = min(min w, 0), hi = max(max w, 0),
 *               step = (hi - lo) / maxq, z = clamp(rint(-lo / step), 0, maxq)
 * each step rounded to the dtype the checkpoint stores it in (sdt: F32, F16
 * or BF16) before z and the codes are computed, so that dequantizing the
 * written values gives exactly what was validated; a step that is zero or
 * not finite after rounding becomes 1 (an all-zero group).
 * Exactly (tests/kernels/lowbit_ref.c recomputes it in double, bit for
 * bit): min / max over the group's values skip NaN; the step is computed in
 * double from those float extremes and rounded once to float, then to sdt;
 * w / step and -lo / step are float divisions; NaN weights get code z;
 * (q - z) * step is one float product.
 */
#ifndef AW_LOWBIT_H
#define AW_LOWBIT_H

#include <stddef.h>
#include <stdint.h>

#include "aw_dtype.h"
#include "aw_status.h"

/* Steps and zero points of every (row, group) of w (out, in). */
void aw_k_group_params(const float *w, int out, int in, int G, int bits, int sym, aw_dtype sdt,
                       float *step, uint8_t *zero);
/* Codes of w with the given steps and zero points. */
void aw_k_group_quantize(const float *w, int out, int in, int G, int bits, const float *step,
                         const uint8_t *zero, uint8_t *q);
/* w (out, in) = (q - z) * step. */
void aw_k_group_dequantize(const uint8_t *q, const float *step, const uint8_t *zero, int out, int in,
                           int G, float *w);

/* Pack n codes of b bits (1..8) into ceil(n * b / 32) little-endian 32-bit
 * words, LSB first: code i occupies bits [i*b, i*b + b) of the word stream
 * (a code may straddle two words): compressed-tensors 0.20's pack_to_int32.
 * Unused high bits of the last word are zero; bits of a code above b are
 * ignored. compressed-tensors packs each row of a weight on its own (its
 * weight_packed is (out, ceil(in * b / 32)) int32): call once per row. Its
 * int32 is the same 32 bits (a word with bit 31 set reads negative). */
size_t aw_k_packed_words(size_t n, int bits);
void aw_k_pack_bits(const uint8_t *q, size_t n, int bits, uint32_t *words);
void aw_k_unpack_bits(const uint32_t *words, size_t n, int bits, uint8_t *q);

/* The lower triangle (j <= i) of h (in, in), row-major, += x^T x over the
 * T rows of x (T, in) (OpenBLAS ssyrk: the same bits for the same inputs
 * and thread count); abssum[j] += sum_t |x_tj| in double. The upper
 * triangle is not touched; h NULL: the |x| sums alone. */
void aw_k_gram_accum(const float *x, int T, int in, float *h, double *abssum);

/* GPTQ (Frantar et al. 2022) on one linear: w (out, in) is quantized
 * column by column in order (or in decreasing diag(H) with act_order),
 * each column's rounding error spread over the columns not yet quantized
 * through the upper Cholesky factor of (H + damp I)^-1, lazily in column
 * blocks of `block` columns (128 in the paper).
 *   H (in, in): the full symmetric X^T X of the layer's inputs (double).
 *   A column with H_jj == 0 (a dead input) is set to zero and H_jj to 1.
 *   damp = damp_frac * mean(diag H) (0.01 in the paper).
 *   Group steps: without act_order, a group's step and zero point come
 *   from the updated weights when the sweep reaches its first column (as
 *   GPTQ does); with act_order, every group's parameters come from the
 *   weights before the sweep (dead columns zeroed), groups contiguous in
 *   the original column order (compressed-tensors' actorder "weight": no
 *   index tensor is needed).
 *   Blocks: a group that would start inside a block and run past its end
 *   (without act_order) starts the next block instead, so that its
 *   parameters see every earlier column's update: the result is the
 *   unblocked algorithm's whatever `block` is, up to float rounding.
 *   act_order sorts by decreasing diag(H) (dead inputs count as 1), ties
 *   by increasing index.
 * The factorization in double through LAPACK (OpenBLAS's dpotrf and
 * dtrtri: the upper Cholesky factor of the inverse as the inverse of the
 * reversed-order Cholesky factor, 2n^3/3 flops); the sweep in float, with
 * cblas_sgemm for the lazy block updates (OpenBLAS's threads).
 * On return w holds the dequantized weights (dead inputs 0), step/zero
 * (out, ng) and q (out, in, original column order) the result.
 * AW_ERR_NONFINITE if diag(H) has a non-finite value or H + damp is not
 * positive definite even after raising damp_frac tenfold twice (x10, x100),
 * AW_ERR_ARG for bad options, AW_ERR_NOMEM. Memory: one allocation of
 * in^2 doubles plus (in + block) * out floats, freed before returning. */
typedef struct {
    int bits, group, sym;
    int act_order;
    int block;        /* columns per lazy block (128) */
    double damp_frac; /* 0.01 */
    aw_dtype sdt;     /* step dtype, as aw_k_group_params */
} aw_gptq_opts;

aw_status aw_k_gptq(float *w, const double *H, int out, int in, const aw_gptq_opts *opt, float *step,
                    uint8_t *zero, uint8_t *q);

/* aw_k_gptq in two parts, for backends that run the sweep on the device:
 * the plan is statistics (from H alone, on the host): the sweep order, the
 * dead inputs and U^T in floats; the sweep is the weights' part.
 * aw_k_gptq = plan, sweep, free: the same bits. The plan's errors are
 * aw_k_gptq's for H and the options (AW_ERR_ARG, AW_ERR_NONFINITE,
 * AW_ERR_NOMEM); free accepts a zeroed plan. */
typedef struct {
    int in;
    const int *perm;     /* (in) sweep position -> column */
    const uint8_t *dead; /* (in) 1 where H_jj == 0: the column is zeroed */
    const float *ut;     /* (in, in) U^T, row-major, lower triangle meaningful */
    void *arena;
} aw_gptq_plan;

aw_status aw_k_gptq_plan(const double *H, int in, const aw_gptq_opts *opt, aw_gptq_plan *p);
void aw_k_gptq_plan_free(aw_gptq_plan *p);
/* The sweep of w (out, p->in) with plan p; results as aw_k_gptq.
 * AW_ERR_ARG for an empty weight, AW_ERR_NOMEM ((in + block) * out floats
 * and in * out bytes). */
aw_status aw_k_gptq_sweep(float *w, const aw_gptq_plan *p, int out, const aw_gptq_opts *opt, float *step,
                          uint8_t *zero, uint8_t *q);

#endif
