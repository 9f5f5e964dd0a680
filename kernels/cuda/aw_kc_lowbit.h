/*
 * aw_kc_lowbit.h - the CUDA backend of the low-bit weight kernels of
 * aw_lowbit.h that the streaming phases need (the ops table's gram_accum
 * and dequant_groups), C-callable, on device pointers, queued on the
 * context's stream (aw_kernels_cuda.h for contexts and conventions).
 * tests/cuda/test_lowbit_cuda.c checks both against the CPU.
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

#include <stdint.h>

#include "aw_kernels_cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The lower triangle (j <= i) of h (in, in), row-major, += x^T x over the T
 * rows of x (T, in); abssum[j] += sum_t |x_tj| (double, rows in order). The
 * upper triangle is not touched. */
aw_status aw_kc_gram_accum(aw_kc *k, const float *x, int T, int in, float *h, double *abssum);
/* w (out, in) = (q - z) * step, groups of G inputs (0: the whole row), the
 * last one possibly shorter; step, zero (out, ceil(in / G)). */
aw_status aw_kc_dequant_groups(aw_kc *k, const uint8_t *q, const float *step, const uint8_t *zero,
                               int out, int in, int G, float *w);

#ifdef __cplusplus
}
#endif

#endif
