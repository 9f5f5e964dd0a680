/*
 * lowbit_ref.h - float64 scalar references of the low-bit weight kernels
 * (aw_lowbit.h), written for clarity, not speed: naive loops in double, no
 * BLAS, no LAPACK, rounding written out with floor (aw_round_half_even_ref)
 * and the storage dtypes' rounding computed from frexp / ldexp rather than
 * from bit patterns. Test code only.
 */
#ifndef AW_LOWBIT_REF_H
#define AW_LOWBIT_REF_H

#include <stddef.h>
#include <stdint.h>

#include "aw_dtype.h"

/* v rounded to the nearest value of sdt (F32, F16 or BF16), ties to even,
 * subnormals kept, beyond the largest finite value +-Inf. v must already be
 * a float value. */
double aw_round_sdt_ref(double v, aw_dtype sdt);

/* The step and zero point of one group of n values (aw_lowbit.h's
 * definition): lo = min(min v, 0), hi = max(max v, 0); symmetric step =
 * max(-lo, hi) / (maxq / 2), asymmetric (hi - lo) / maxq, in double,
 * rounded to float then to sdt, 1 if that is 0 or not finite; z = 2^(b-1)
 * or clamp(rint(-lo / step), 0, maxq) with the quotient rounded to float
 * first (the kernel divides in float). */
void aw_group_step_ref(const double *v, int n, int bits, int sym, aw_dtype sdt, float *step,
                       uint8_t *zero);
/* aw_k_group_params, aw_k_group_quantize, aw_k_group_dequantize. A code is
 * clamp(rint(w / step) + z, 0, maxq) with the quotient rounded to float
 * (the kernel's float division), NaN as 0. */
void aw_group_params_ref(const float *w, int out, int in, int G, int bits, int sym, aw_dtype sdt,
                         float *step, uint8_t *zero);
uint8_t aw_code_ref(double w, float step, uint8_t zero, int bits);
void aw_group_quantize_ref(const float *w, int out, int in, int G, int bits, const float *step,
                           const uint8_t *zero, uint8_t *q);
void aw_group_dequantize_ref(const uint8_t *q, const float *step, const uint8_t *zero, int out,
                             int in, int G, double *w);

/* Bit by bit: bit b of code i is bit (i*bits + b) % 32 of word
 * (i*bits + b) / 32; unused bits 0. */
void aw_pack_bits_ref(const uint8_t *q, size_t n, int bits, uint32_t *words);
void aw_unpack_bits_ref(const uint32_t *words, size_t n, int bits, uint8_t *q);

/* h (in, in), every entry, = x^T x; abssum[j] = sum_t |x_tj|, rows in order
 * (both set, not accumulated). */
void aw_gram_ref(const float *x, int T, int in, double *h, double *abssum);

/* GPTQ unblocked in double, the textbook loop: dead columns, act_order
 * (decreasing diag, ties by index), damp, U = the upper Cholesky factor of
 * (H + damp I)^-1 (plain Cholesky, inverse from triangular solves), then
 * column by column: code, dequantized value, error / U_kk spread over every
 * later column at once. Group parameters as aw_k_gptq defines them.
 * wq (out, in): the dequantized weights; step/zero (out, ng), q (out, in).
 * Returns 0, or -1 when H + damp I is not positive definite. */
int aw_gptq_ref(const float *w, const double *H, int out, int in, int bits, int G, int sym,
                int act_order, double damp_frac, aw_dtype sdt, double *wq, float *step,
                uint8_t *zero, uint8_t *q);

/* tr(dW H dW^T) = sum over rows of dw H dw^T, dW = wq - w, in double. */
double aw_output_err_ref(const float *w, const double *wq, const double *H, int out, int in);

#endif
