/*
 * aw_actq.h - dynamic activation quantization and the integer product of
 * a coded layer with quantized inputs (aw_scheme.h, AW_ACT_DYNAMIC), CPU
 * reference; the CUDA versions are tested against these, and
 * tests/kernels/actq_ref.py recomputes them in float64.
 *
 * x (T, in) row-major. A token's inputs are split into groups of A
 * consecutive channels (A = 0: the whole token), nga = ceil(in / A) steps
 * per token, (T, nga) row-major. With b bits (compressed-tensors' dynamic
 * symmetric int quantizer, checked against the library):
 *   step = max_j |x_j m_j| / ((2^b - 1) / 2)    (a float division; 1.1920929e-7,
 *                                                float epsilon, when zero)
 *   q_j  = clamp(rint(x_j m_j / step), -2^(b-1), 2^(b-1) - 1)
 * m the optional mask (in): 0 at a channel kept in floating point (it is
 * quantized as zero and does not count in the step), 1 elsewhere; a NaN
 * input gives a NaN step for its group (an Inf one an Inf step), codes 0
 * and fake-quantized values NaN for that group. rint rounds half to even;
 * the fake quantization is the integer code times the step (+0 for a zero
 * code). Rows are split over the OpenMP threads of aw_k_gemm_i8 (the same
 * values whatever the count).
 *
 * The product of codes xq (T, in) with steps xs (T, nga) and signed weights
 * wq (out, in) (q - z of the weight codes) with steps ws (out, ngw), weight
 * groups of W inputs (0: the row):
 *   y_ti = (float)( sum_k (double)acc_tik * (double)xs_t,g(k) * (double)ws_i,h(k) + (double)b_i )
 * acc_tik the exact int32 sum of xq * wq over product block k: the inputs
 * that share both steps, blocks of P = min(A, W) inputs (the smaller
 * nonzero group; in when both are 0), which the scheme check makes nest.
 * The sum over k runs in order, each term multiplied left to right; tiles
 * of y run on the OpenMP threads of aw_k_gemm_i8, every element seeing the
 * same operations in the same order whatever the tiling or thread count.
 */
#ifndef AW_ACTQ_H
#define AW_ACTQ_H

#include <stddef.h>
#include <stdint.h>

#include "aw_status.h"

/* Steps per token of a row `in` wide with groups of A inputs (0: one). */
static inline int aw_act_groups(int in, int A) { return A > 0 ? (in + A - 1) / A : 1; }
/* Inputs per product block (see above). */
static inline int aw_act_block(int in, int A, int W)
{
    if (A > 0 && W > 0) return A < W ? A : W;
    if (A > 0) return A;
    if (W > 0) return W;
    return in;
}

/* Codes q (T, in) and steps (T, nga) of x; mask NULL or (in). */
void aw_k_act_quant(const float *x, int T, int in, int bits, int A, const float *mask, int8_t *q, float *step);
/* y (T, in) = q * step of the same quantizer (fake quantization: what a
 * float forward of the quantized input sees); y may alias x. */
void aw_k_act_fakequant(const float *x, float *y, int T, int in, int bits, int A, const float *mask);

/* Bytes of scratch aw_k_gemm_groups needs for T tokens. */
size_t aw_k_gemm_groups_scratch(int T, int in, int out, int A, int W);
/* y (T, out) as above; b may be NULL (zeros). AW_ERR_ARG unless the
 * groups nest. The block products are exact int32: oneDNN's s8s8s32 gemm
 * on strided views where aw_k_gemm_i8 uses it, else its int16 loop on
 * blocks packed into scratch; tiles of y over aw_k_gemm_i8's threads. */
aw_status aw_k_gemm_groups(const int8_t *xq, const float *xs, int A, const int8_t *wq, const float *ws, int W,
                           const float *b, float *y, int T, int in, int out, void *scratch);

/* Kept channels: xk (T, n) = x (T, in) columns idx[0..n); y (T, out) +=
 * xk wk^T, wk (out, n) (f32 product, OpenBLAS). */
void aw_k_gather_cols(const float *x, int T, int in, const int32_t *idx, int n, float *xk);
void aw_k_add_linear(const float *xk, const float *wk, float *y, int T, int n, int out);

#endif
