/*
 * aw_kernels.h - the math of the project, CPU backend (the reference every
 * other backend is tested against). Plain functions over row-major float
 * arrays; shapes are in the comments as (rows, cols). Matrix products go
 * through OpenBLAS; the per-element math that the CUDA backend shares sits in
 * aw_kernels_inline.h.
 *
 * Conventions:
 *   T = tokens in a block of samples (n_seq * L), d = hidden size.
 *   A linear layer is y = x W^T + b with W (out, in), x (T, in), y (T, out).
 *   Statistics sums are double. INT8 is symmetric per tensor:
 *     q = clamp(round_half_even(x / step), -127, 127),  x ~= q * step.
 * Functions that cannot fail return void; the caller owns every buffer.
 */
#ifndef AW_KERNELS_H
#define AW_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "aw_dtype.h"
#include "aw_status.h"

/* y (T, out) = x (T, in) W^T (W: out, in) + b (out, or NULL). */
void aw_k_linear(const float *x, const float *w, const float *b, float *y, int T, int in, int out);

/* y (T, d) = LayerNorm(x) * gamma + beta, over the last dim, mean and
 * variance accumulated in double (two passes, each row's sums in column
 * order). Rows are split over threads (the same count as aw_k_gemm_i8's);
 * the result does not depend on it. y may alias x. */
void aw_k_layernorm(const float *x, const float *gamma, const float *beta, float *y, int T, int d,
                    float eps);

/* y (T, d) = x / sqrt(mean(x^2) + eps) * gamma per row (LLaMA's RMSNorm),
 * the mean of squares accumulated in double; (float)(x * rstd) * gamma, as
 * aw_k_layernorm rounds. y may alias x. */
void aw_k_rmsnorm(const float *x, const float *gamma, float *y, int T, int d, float eps);

/* x = max(x, 0), in place. */
void aw_k_relu(float *x, size_t n);

/* out[i] = silu(gate[i]) * up[i] = gate * sigmoid(gate) * up (LLaMA's MLP
 * gate; aw_swiglu1 in aw_kernels_inline.h). out may alias gate or up. */
void aw_k_swiglu(const float *gate, const float *up, float *out, size_t n);

/* h (n_seq*L, d) = E[tokens] + P[pos + pos_offset] with pos 0..L-1 in each
 * sequence (OPT's learned positions: pos_offset 2, AW_OPT_POS_OFFSET), or
 * h = E[tokens] when P is NULL (LLaMA: positions come from RoPE).
 * tokens: n_seq*L ids, each < vocab, and P's rows (checked by the caller). */
void aw_k_embed(const uint32_t *tokens, int n_seq, int L, const float *E, const float *P,
                int pos_offset, int d, float *h);

/* Rotary position embedding in place, Hugging Face LLaMA form (rotate
 * halves). x (n_seq*L, n_heads*head_dim); the token in row s*L + p is at
 * position p. In each head, pair i < head_dim/2 is (x[i], x[i + head_dim/2]),
 * rotated by p * theta^(-2i/head_dim):
 *   (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin),
 * angle, cos and sin in double, the rotation in float (aw_rope_* in
 * aw_kernels_inline.h). head_dim even (the ops entry checks it). */
void aw_k_rope(float *x, int n_seq, int L, int n_heads, int head_dim, float theta);

/* Causal attention, multi-head or grouped-query. q, out: (n_seq*L, d) with
 * d = n_heads * head_dim, the heads side by side in each row; k, v:
 * (n_seq*L, n_kv_heads * head_dim). Query head h reads kv head
 * h / (n_heads / n_kv_heads). n_heads must divide d and n_kv_heads must
 * divide n_heads (else nothing is computed; the ops entry checks both);
 * n_kv_heads == n_heads is plain multi-head attention (the same arithmetic
 * as before grouped-query existed). scores = q k^T * scale, masked to
 * j <= i, softmax (max-subtracted, sums in float), out = p v. Heads are
 * processed heads_per_chunk at a time per sequence; the workspace holds
 * heads_per_chunk * L * L floats (aw_k_attention_workspace), never a
 * (n_seq, heads, L, L) tensor. The heads of a chunk are split over threads
 * (as aw_k_layernorm), each running OpenBLAS on one thread (the OpenBLAS
 * thread count is set to 1 for the call and restored: not to be called
 * while another thread of the process is inside OpenBLAS); the result does
 * not depend on the split. */
void aw_k_attention(const float *q, const float *k, const float *v, float *out, int n_seq, int L,
                    int n_heads, int n_kv_heads, int d, float scale, int heads_per_chunk,
                    float *workspace);
size_t aw_k_attention_workspace(int L, int heads_per_chunk);

/* dst[i] = the f32 value of binary16 (F16) or bfloat16 (BF16) src[i]; exact
 * (the same bits as aw_dtype.h's aw_f16_to_f32 / aw_bf16_to_f32, NaN
 * payloads kept), vectorised. */
void aw_k_f16_to_f32(const uint16_t *src, float *dst, size_t n);
void aw_k_bf16_to_f32(const uint16_t *src, float *dst, size_t n);
/* dst[i] = src[i] (f32, or the f32 value of binary16) rounded to bfloat16,
 * nearest with ties to even; NaN stays a quiet NaN (the bits of aw_dtype.h's
 * conversion), vectorised. */
void aw_k_f32_to_bf16(const float *src, uint16_t *dst, size_t n);
void aw_k_f16_to_bf16(const uint16_t *src, uint16_t *dst, size_t n);

/* The fp linear of a bf16 calibration (aw_gemm_bf16.c): y = bf16(x)
 * bf16(W)^T + b, the rounded inputs multiplied with fp32 accumulation by
 * oneDNN's matmul (about twice the sgemm rate with AVX512-BF16), b added
 * after in f32. w (out, in) is F32, F16 (rounded to bf16) or BF16 (used as
 * stored); xb (T * in) and wb (in * out, unused for BF16 weights) are
 * scratch. AW_ERR_UNSUPPORTED when oneDNN cannot run it on this CPU (it
 * needs AVX-512), AW_ERR_DTYPE for other weights, AW_ERR_NOMEM. */
aw_status aw_k_linear_bf16(const float *x, const void *w, aw_dtype wdt, const float *b, float *y, int T, int in,
                           int out, uint16_t *xb, uint16_t *wb);
/* AW_OK when aw_k_linear_bf16 runs here and multiplies a small product of
 * integers exactly; else its error. */
aw_status aw_k_bf16_check(void);

/* Per-channel running statistics over x (T, d): absmax[j] = max(absmax[j],
 * max_t |x[t,j]|), sum[j] += sum_t x[t,j] (double, rows in order t = 0..T-1,
 * so the result is deterministic). Returns the number of non-finite values
 * seen (they are not counted in either statistic). */
size_t aw_k_stats_accum(const float *x, int T, int d, float *absmax, double *sum);

/* W (rows, cols): column j multiplied by s[j]. */
void aw_k_scale_cols(float *w, int rows, int cols, const float *s);
/* W (rows, cols) row i and b[i] (b may be NULL) divided by s[i]. */
void aw_k_div_rows(float *w, float *b, int rows, int cols, const float *s);
/* y (rows, cols) = x / s per column (y may alias x). */
void aw_k_div_cols(const float *x, float *y, int rows, int cols, const float *s);
/* v[i] /= s[i]. */
void aw_k_div_vec(float *v, int n, const float *s);

/* max |x| over n values (non-finite values make the result non-finite). */
float aw_k_absmax(const float *x, size_t n);
/* Step of a symmetric INT8 grid for a range: absmax / 127, and 1 for a zero
 * or non-finite range (a dead tensor quantizes to zeros, never NaN). */
float aw_k_int8_step(float absmax);
/* q[i] = clamp(round_half_even(x[i] / step), -127, 127). */
void aw_k_quantize_i8(const float *x, size_t n, float step, int8_t *q);
/* x[i] = q[i] * step. */
void aw_k_dequantize_i8(const int8_t *q, size_t n, float step, float *x);

/* acc (T, out) = xq (T, in) . wq (out, in)^T in exact int32 arithmetic
 * (|acc| <= 127*127*in with this project's codes, fits int32 for
 * in < 133000; with -128 too, in < 131072). Both paths give the same bits;
 * aw_gemm_i8.c picks one on first use, thread-safely:
 *   1. oneDNN's s8s8s32 gemm, where it passes a self-test (a few small
 *      products with -128/127 extremes against an int64 reference); it fails
 *      on CPUs without VNNI, whose kernels saturate 16-bit partial sums;
 *   2. else aw_k_gemm_i8_fallback.
 * Both run on OpenMP threads: OMP_NUM_THREADS if set, else as many as
 * OpenBLAS uses (openblas_get_num_threads()), so that several ranks on a
 * node do not oversubscribe it. Cannot fail (a failing oneDNN call falls
 * back too). */
void aw_k_gemm_i8(const int8_t *xq, const int8_t *wq, int32_t *acc, int T, int in, int out);
/* The path aw_k_gemm_i8 uses, for the run's report: "oneDNN 2.6.3 s8s8s32
 * gemm on avx512_core_bf16 with VNNI, self-test passed" or "int16 loop
 * (oneDNN 2.6.3 s8s8s32 gemm on avx2 without VNNI failed its self-test:
 * <which values>)". Runs the self-test if it has not run yet. Static string,
 * valid for the process's life. */
const char *aw_k_gemm_i8_path(void);
/* The OpenMP threads of the integer products (oneDNN's and the loops'):
 * OpenBLAS's count unless OMP_NUM_THREADS was set, set on the calling
 * thread (per call: the setting belongs to it) and returned. */
int aw_k_product_threads(void);
/* Call first thing in main (before MPI starts). Two thread pools share a
 * rank's cores: OpenMP's (oneDNN's INT8 products, the kernels' loops) and
 * OpenBLAS's, and by default the idle threads of each spin for a while
 * after every parallel region (libgomp some 300000 rounds, OpenBLAS 2^28
 * cycles) on the cores where the other pool works. Idle threads that sleep
 * at once (OMP_WAIT_POLICY=passive, OPENBLAS_THREAD_TIMEOUT=4) made every
 * phase faster on a 2-core machine (opt-125m, 2 threads: calibration 10.4
 * -> 7.8 s, validation 8.2 -> 6.1 s; a 12-point stories260K sweep 8.2-9.1
 * -> 3.9 s; the same output bytes). Both libraries read the variables once,
 * in their initializers, before main (and glibc resets the environment
 * after a pre-initializer): so when neither is set this sets both and
 * executes the program again (the same process). A user's own setting of
 * either wins (and is the way to opt out); nothing is done under valgrind
 * or when the running file is not the one argv[0] names (a loader, an
 * emulator, a link of another name). Returns only when nothing is done. */
void aw_k_threads_sleep_when_idle(char **argv);
/* 1 when aw_k_gemm_i8 uses oneDNN, 0 when the fallback. */
int aw_k_gemm_i8_uses_onednn(void);
/* The fallback, callable directly (tests, benchmarks): aw_k_gemm_i8_loop on
 * slices of rows, one per thread (same threads as above), no allocation. */
void aw_k_gemm_i8_fallback(const int8_t *xq, const int8_t *wq, int32_t *acc, int T, int in,
                           int out);
/* The product on the calling thread alone: an int16-widening loop (pmaddwd),
 * no allocation. */
void aw_k_gemm_i8_loop(const int8_t *xq, const int8_t *wq, int32_t *acc, int T, int in, int out);
/* y (T, out) = acc * (x_step * w_step) + b (b may be NULL). */
void aw_k_dequant_acc(const int32_t *acc, const float *b, float x_step, float w_step, float *y,
                      int T, int out);

/* Error sums of y against a reference yr over n values: sum (y - yr)^2 and
 * sum yr^2, in double. */
void aw_k_err_sums(const float *yr, const float *y, size_t n, double *sq_err, double *sq_ref);
/* Per-column sums of (y - yr) over T rows (double, added to col_err[out]). */
void aw_k_col_err_accum(const float *yr, const float *y, int T, int out, double *col_err);

/* Log-softmax statistics of one row of logits (V values) against a reference
 * row: returns log p(target) under logits; *kl += KL(p_ref || p), *argmax
 * set to the row's argmax (lowest index on ties). lref_logsumexp etc. are
 * computed in double. Either ref or kl may be NULL. */
double aw_k_logprob_row(const float *logits, const float *ref, int V, uint32_t target, double *kl,
                        int *argmax);
/* n rows of the W8A8 logits and their fp reference rows ref (n, V): per row
 * r not skipped (skip may be NULL), exactly the results of
 *   lp_fp[r] = aw_k_logprob_row(ref_r, NULL, V, targets[r], NULL, &am_fp[r]);
 *   kl[r] = 0; lp_q[r] = aw_k_logprob_row(l_r, ref_r, V, targets[r], &kl[r], &am_q[r]);
 * with the ref row's log-sum-exp computed once instead of twice. Rows are
 * split over threads (as aw_k_layernorm); the caller adds the per-row
 * results in row order. Skipped rows are left unwritten. */
void aw_k_logprob_pairs(const float *logits, const float *ref, int V, int n, const uint32_t *targets,
                        const uint8_t *skip, double *lp_fp, double *lp_q, double *kl, int *am_fp,
                        int *am_q);
/* n rows of logits alone (n, V): per row r not skipped (skip may be NULL),
 * exactly lp[r] = aw_k_logprob_row(l_r, NULL, V, targets[r], NULL, &argmax)
 * (the lp_q of aw_k_logprob_pairs, without a reference row's max,
 * log-sum-exp and KL: a quarter of its exponentials). Rows split over
 * threads as there; skipped rows are left unwritten. */
void aw_k_logprob_rows(const float *logits, int V, int n, const uint32_t *targets, const uint8_t *skip, double *lp);

#endif
