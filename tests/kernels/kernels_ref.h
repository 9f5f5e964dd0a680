/*
 * kernels_ref.h - float64 scalar references of the kernels in aw_kernels.h,
 * written for clarity, not speed: naive loops, sums in double (or long
 * double, or int64 for INT8), no BLAS. The tests compare the production
 * kernels against these. Outputs are double unless the kernel's result is
 * defined exactly (INT8 codes, int32 products), so that the tests measure
 * the kernel's error against the exact-ish value. Test code only.
 */
#ifndef AW_KERNELS_REF_H
#define AW_KERNELS_REF_H

#include <stddef.h>
#include <stdint.h>

/* y (T, out) = x (T, in) W^T + b (b may be NULL). */
void aw_linear_ref(const float *x, const float *w, const float *b, double *y, int T, int in,
                   int out);
/* y (T, d) = (x - mean) / sqrt(var + eps) * gamma + beta, biased variance. */
void aw_layernorm_ref(const float *x, const float *gamma, const float *beta, double *y, int T,
                      int d, float eps);
/* y (T, d) = x / sqrt(mean(x^2) + eps) * gamma, in long double. */
void aw_rmsnorm_ref(const float *x, const float *gamma, double *y, int T, int d, float eps);
/* y = silu(gate) * up = gate / (1 + exp(-gate)) * up, in long double. */
void aw_swiglu_ref(const float *gate, const float *up, double *y, size_t n);
/* HF LLaMA RoPE of x (n_seq*L, n_heads*head_dim) into y, in long double:
 * y[i] = x[i] cos - x[i+hd/2] sin, y[i+hd/2] = x[i+hd/2] cos + x[i] sin,
 * angle = p * theta^(-2i/hd) with p the row's position in its sequence. */
void aw_rope_ref(const float *x, double *y, int n_seq, int L, int n_heads, int head_dim,
                 float theta);
/* Naive causal attention per sequence and head: the full (L, L) score matrix
 * in double, masked j > i, softmax, times v. q, out (n_seq*L, d); k, v
 * (n_seq*L, n_kv_heads * d/n_heads), query head h on kv head
 * h * n_kv_heads / n_heads. */
void aw_attention_ref(const float *q, const float *k, const float *v, double *out, int n_seq, int L,
                      int n_heads, int n_kv_heads, int d, float scale);
/* h (n_seq*L, d) = E[tok] + P[pos + pos_offset] in double, or E[tok] when P
 * is NULL. */
void aw_embed_ref(const uint32_t *tokens, int n_seq, int L, const float *E, const float *P,
                  int pos_offset, int d, double *h);
/* Column statistics, finite values only; returns the count of non-finite
 * ones. absmax/sum are updated like the kernel's (running). */
size_t aw_stats_ref(const float *x, int T, int d, float *absmax, double *sum);
/* max |x|; NaN if any NaN, else Inf if any Inf. */
float aw_absmax_ref(const float *x, size_t n);
/* Round half to even of a double, written out with floor (no rint). */
double aw_round_half_even_ref(double v);
/* One code: the quotient x / step rounded once to float (the kernel's
 * definition), then round half even in double, clamp +-127, NaN -> 0. */
int8_t aw_quant_i8_ref(float x, float step);
/* acc (T, out) = xq (T, in) wq (out, in)^T in int64. */
void aw_gemm_i8_ref(const int8_t *xq, const int8_t *wq, int64_t *acc, int T, int in, int out);
/* log softmax statistics in long double: returns log p(target); *kl (if
 * ref) = KL(p_ref || p); *argmax lowest index of the max. */
double aw_logprob_row_ref(const float *logits, const float *ref, int V, uint32_t target, double *kl,
                          int *argmax);

/* Test data: x (rows, cols) normal values; about one column in 10 (at least
 * one when cols >= 3) scaled 50-100x; every 29th value an exact +0 or -0.
 * Seeded by (seed, key): the same values in every test that asks. */
void aw_ref_fill_outliers(float *x, int rows, int cols, uint64_t seed, const char *key);

#endif
