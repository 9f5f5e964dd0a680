/*
 * aw_kc_lowbit.h - the CUDA backend of the low-bit weight kernels of
 * aw_lowbit.h that the streaming phases need (the ops table's gram_accum
 * and dequant_groups) and of the quantization steps (aw_quant_k.h,
 * aw_lowbit.h: the ops widen .. gptq), C-callable, on device pointers,
 * queued on the context's stream (aw_kernels_cuda.h for contexts and
 * conventions), and of the dynamic activation kernels (aw_actq.h: the ops
 * act_quant .. add_linear). tests/cuda/test_lowbit_cuda.c and
 * tests/cuda/test_actq_cuda.c check them against the CPU.
 *
 * Against the CPU (aw_k_gram_accum, aw_k_group_dequantize):
 *   gram_accum's h: fp32 cuBLAS ssyrk (no TF32), another summation order:
 *     within 1e-5 of sum_t |x_ti x_tj| per entry;
 *   gram_accum's |x| sums and dequant_groups: bit-identical (the same
 *     double additions in row order; one rounded product per weight).
 * Every function returns AW_OK or AW_ERR_CUDA (the call and cuBLAS's /
 * CUDA's text in aw_err_message()).
 */
#ifndef AW_KC_LOWBIT_H
#define AW_KC_LOWBIT_H

#include <stddef.h>
#include <stdint.h>

#include "aw_kernels_cuda.h"
#include "aw_lowbit.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The lower triangle (j <= i) of h (in, in), row-major, += x^T x over the T
 * rows of x (T, in); abssum[j] += sum_t |x_tj| (double, rows in order). The
 * upper triangle is not touched; h NULL: the |x| sums alone. */
aw_status aw_kc_gram_accum(aw_kc *k, const float *x, int T, int in, float *h, double *abssum);
/* w (out, in) = (q - z) * step, groups of G inputs (0: the whole row), the
 * last one possibly shorter; step, zero (out, ceil(in / G)). */
aw_status aw_kc_dequant_groups(aw_kc *k, const uint8_t *q, const float *step, const uint8_t *zero,
                               int out, int in, int G, float *w);

/* ---- quantization of a block (the ops table's widen .. gptq) ----------------------
 * Against the CPU (aw_ops.h, aw_quant_k.h, aw_lowbit.h):
 *   widen, row_absmax, col_absmax, group_params, group_quantize: bit-identical
 *     (exact conversions and maxima; the same IEEE operations in the same
 *     order per value; steps rounded to F16 / BF16 by round-to-nearest-even);
 *   bias_delta(_i8): one warp per row, double partials in a fixed tree:
 *     deterministic, within 1e-12 relative of the CPU's sequential sum;
 *   search_err: cuBLAS dsymm and a two-stage fixed-shape sum: close (1e-9
 *     relative), deterministic;
 *   gptq: the sweep in float as the CPU, another blocking (each column's
 *     error reaches its block at once, one sgemm per block): codes may
 *     differ where a value sits on a rounding boundary; close.
 * Shapes and meanings as the ops of the same name. */
aw_status aw_kc_widen(aw_kc *k, const void *src, aw_dtype sdt, float *dst, size_t n);
aw_status aw_kc_row_absmax(aw_kc *k, const float *w, int rows, int cols, float *rmax);
aw_status aw_kc_col_absmax(aw_kc *k, const float *w, int rows, int cols, float *rw);
aw_status aw_kc_bias_delta_i8(aw_kc *k, const float *w, const int8_t *wq, float step, const double *mean,
                              int rows, int cols, double *delta);
aw_status aw_kc_bias_delta(aw_kc *k, const float *w, const float *deq, const double *mean, int rows, int cols,
                           double *delta);
aw_status aw_kc_group_params(aw_kc *k, const float *w, int out, int in, int G, int bits, int sym, aw_dtype sdt,
                             float *step, uint8_t *zero);
aw_status aw_kc_group_quantize(aw_kc *k, const float *w, int out, int in, int G, int bits, const float *step,
                               const uint8_t *zero, uint8_t *q);
/* Uses the context's scratch: dw and dW G for a chunk of rows in double. */
aw_status aw_kc_search_err(aw_kc *k, const float *w, int out, int in, const float *s, const double *G, int G_len,
                           int bits, int sym, aw_dtype sdt, double *acc);
/* The plan (host) is uploaded into the context's scratch with the sweep's
 * buffers (U^T in floats, w's columns in sweep order, codes); returns after
 * the sweep has run (synchronises). */
aw_status aw_kc_gptq(aw_kc *k, float *w, const aw_gptq_plan *p, int out, const aw_gptq_opts *opt, float *step,
                     uint8_t *zero, uint8_t *q);

/* ---- dynamic activations and kept channels (aw_actq.h, the ops act_quant ..
 * add_linear) ----------------------------------------------------------------------
 * Against the CPU (aw_k_act_quant .. aw_k_add_linear):
 *   act_quant, act_fakequant, gather_cols: bit-identical (one block per
 *     (token, group): the same max, the same IEEE divisions and rint; codes
 *     0 and fake values NaN for a group with a NaN or Inf input);
 *   gemm_groups: bit-identical (exact int32 block sums by dp4a, the double
 *     sum acc * sx * sw in block order without fma contraction, + bias,
 *     rounded once); it needs no scratch (gemm_groups_scratch gives a
 *     token 256 bytes);
 *   add_linear: cuBLAS sgemm with beta 1 (no TF32), another order: 1e-5.
 * Shapes and meanings as the ops of the same name. */
aw_status aw_kc_act_quant(aw_kc *k, const float *x, int T, int in, int bits, int A, const float *mask, int8_t *q,
                          float *step);
aw_status aw_kc_act_fakequant(aw_kc *k, const float *x, float *y, int T, int in, int bits, int A,
                              const float *mask);
size_t aw_kc_gemm_groups_scratch(int T, int in, int out, int A, int W);
aw_status aw_kc_gemm_groups(aw_kc *k, const int8_t *xq, const float *xs, int A, const int8_t *wq, const float *ws,
                            int W, const float *b, float *y, int T, int in, int out, void *scratch);
aw_status aw_kc_gather_cols(aw_kc *k, const float *x, int T, int in, const int32_t *idx, int n, float *xk);
aw_status aw_kc_add_linear(aw_kc *k, const float *xk, const float *wk, float *y, int T, int n, int out);

#ifdef __cplusplus
}
#endif

#endif
