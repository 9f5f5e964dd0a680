/*
 * aw_kernels_cuda.h - the CUDA backend of the kernels: the functions of
 * aw_kernels.h (the CPU reference) on device pointers, C-callable. Compiled
 * only when nvcc was found (AWEQ_HAVE_CUDA); tests/cuda/test_cuda_kernels
 * checks each one against its CPU counterpart, docs/cuda-backend.md gives
 * the design and the tolerances.
 *
 * A context (aw_kc) owns what the kernels share: the stream every call is
 * queued on, the cuBLAS and cuBLASLt handles bound to it, the cuBLASLt
 * workspace and a scratch buffer for two-stage reductions. One context per
 * stream; a context is not thread-safe. Calls are asynchronous: they return
 * once queued, and a fault inside a kernel is reported by the next
 * aw_kc_sync(). Every pointer argument of a kernel is a device pointer
 * unless its comment says host; the caller owns every buffer.
 *
 * Shapes and conventions are those of aw_kernels.h: row-major, T tokens, a
 * linear is y (T, out) = x (T, in) W^T + b with W (out, in). Statistics and
 * error sums are double. Every function returns AW_OK or AW_ERR_CUDA (the
 * failed call and CUDA's / cuBLAS's text in aw_err_message()), AW_ERR_NOMEM
 * (device memory, requested vs free bytes) or AW_ERR_ARG.
 *
 * Results against the CPU (see docs/cuda-backend.md):
 *   bit-identical: relu, add, embed, folds (scale_cols, div_rows, div_vec,
 *     div_cols),
 *     absmax, quantize_i8, dequantize_i8, gemm_i8, dequant_acc,
 *     col_err_accum, stats max;
 *   1e-12 relative: stats sums, err_sums (double, another summation order);
 *   1e-6 relative: rope, swiglu (the shared formulas of aw_kernels_inline.h;
 *     the device's double pow/cos/sin/exp may round to a neighbouring float
 *     where glibc's does not, one ulp, rarely);
 *   1e-5 relative: linear, layernorm, rmsnorm, attention (float, other order);
 *   2e-3 relative: linear_f16w (x rounded to fp16 for the tensor cores).
 * No float atomics anywhere: every result is the same run after run.
 */
#ifndef AW_KERNELS_CUDA_H
#define AW_KERNELS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "aw_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- context -------------------------------------------------------------- */

typedef struct aw_kc aw_kc;

/* Create a context on the current device (aw_cuda_use_device first) that
 * queues its work on stream (a cudaStream_t; NULL: the context creates and
 * owns a non-blocking stream). *out is NULL on failure. */
aw_status aw_kc_create(void *stream, aw_kc **out);
/* Synchronise and free the context (and its stream if it owns it); NULL ok. */
void aw_kc_destroy(aw_kc *k);
/* The cudaStream_t the context queues on. */
void *aw_kc_stream(const aw_kc *k);
/* Wait for the context's queued work; reports a fault raised inside it. */
aw_status aw_kc_sync(aw_kc *k);
/* Order two contexts' streams without blocking the host: aw_kc_record
 * marks the point the work queued so far on k has reached, in one of
 * AW_KC_EVENTS slots; aw_kc_wait makes waiter's later work wait for the
 * latest mark of that slot of producer. */
#define AW_KC_EVENTS 4
aw_status aw_kc_record(aw_kc *k, int slot);
aw_status aw_kc_wait(aw_kc *waiter, aw_kc *producer, int slot);
/* Grow the scratch buffer to at least bytes now (it grows on demand
 * otherwise, which synchronises the stream: reserve before a timed loop). */
aw_status aw_kc_reserve(aw_kc *k, size_t bytes);
/* Scratch bytes that stats_accum, absmax, err_sums and linear_f16w need. */
size_t aw_kc_scratch_bytes_stats(int T, int d);
size_t aw_kc_scratch_bytes_f16w(int T, int in);

/* ---- device buffers -------------------------------------------------------- */

/* *p = cudaMalloc(bytes) (NULL for 0 bytes). Requests of 64 MiB or more are
 * checked against cudaMemGetInfo first: AW_ERR_NOMEM names what, the
 * requested and the free bytes. Free with aw_kc_free. */
aw_status aw_kc_malloc(void **p, size_t bytes, const char *what);
/* cudaFree; NULL ok. Synchronises the device (cudaFree does). */
void aw_kc_free(void *p);
/* Copy bytes in any direction (host or device pointers, unified
 * addressing), queued on the stream; host memory must stay valid until the
 * next aw_kc_sync (pageable memory is copied before the call returns). */
aw_status aw_kc_copy(aw_kc *k, void *dst, const void *src, size_t bytes);
/* Set bytes of device memory to byte, queued on the stream. */
aw_status aw_kc_memset(aw_kc *k, void *dst, int byte, size_t bytes);

/* ---- forward ---------------------------------------------------------------- */

/* y (T, out) = x (T, in) W^T + b (out, or NULL), fp32 cuBLAS sgemm (no TF32). */
aw_status aw_kc_linear(aw_kc *k, const float *x, const float *w, const float *b, float *y, int T,
                       int in, int out);
/* The same with W (out, in) stored as IEEE half bits (the model's storage
 * dtype): x is rounded to half in scratch and the product runs on the
 * tensor cores with fp32 accumulation and fp32 output. |x| must stay below
 * 65504 (fp16 range), else the row turns Inf. */
aw_status aw_kc_linear_f16w(aw_kc *k, const float *x, const uint16_t *w_f16, const float *b,
                            float *y, int T, int in, int out);
/* y (T, d) = LayerNorm(x) * gamma + beta; mean and variance in double (one
 * block per row). y may alias x. */
aw_status aw_kc_layernorm(aw_kc *k, const float *x, const float *gamma, const float *beta,
                          float *y, int T, int d, float eps);
/* y (T, d) = x / sqrt(mean(x^2) + eps) * gamma (RMSNorm); mean of squares
 * in double (one block per row). y may alias x. */
aw_status aw_kc_rmsnorm(aw_kc *k, const float *x, const float *gamma, float *y, int T, int d,
                        float eps);
/* x = max(x, 0) in place; NaN stays NaN. */
aw_status aw_kc_relu(aw_kc *k, float *x, size_t n);
/* out = silu(gate) * up (aw_swiglu1); out may alias gate or up. */
aw_status aw_kc_swiglu(aw_kc *k, const float *gate, const float *up, float *out, size_t n);
/* h += y (the residual connection; the CPU pipeline does it inline). */
aw_status aw_kc_add(aw_kc *k, float *h, const float *y, size_t n);
/* h (n_seq*L, d) = E[tokens] + P[pos + pos_offset], or E[tokens] when P is
 * NULL; tokens (device) each < vocab, checked by the caller as on the CPU. */
aw_status aw_kc_embed(aw_kc *k, const uint32_t *tokens, int n_seq, int L, const float *E,
                      const float *P, int pos_offset, int d, float *h);
/* RoPE in place as aw_k_rope: x (n_seq*L, n_heads*head_dim), row s*L + p at
 * position p. One thread per (position, pair) and sequence computes cos and
 * sin once and rotates that pair in every head. AW_ERR_ARG for an odd
 * head_dim. */
aw_status aw_kc_rope(aw_kc *k, float *x, int n_seq, int L, int n_heads, int head_dim,
                     float theta);
/* Causal attention, multi-head or grouped-query, as aw_k_attention: q, out
 * (n_seq*L, d), kk, v (n_seq*L, n_kv_heads * d/n_heads), query head h on kv
 * head h / (n_heads / n_kv_heads). Per sequence, per chunk of
 * heads_per_chunk heads, by blocks of query rows: strided-batched sgemm for
 * q k^T (one call per chunk for multi-head; per kv head of the chunk with a
 * kv batch stride of 0 for grouped-query), a masked softmax kernel,
 * strided-batched sgemm for p v likewise. workspace:
 * aw_kc_attention_workspace(L, heads_per_chunk) floats (device). AW_ERR_ARG
 * unless n_heads divides d and n_kv_heads divides n_heads. */
aw_status aw_kc_attention(aw_kc *k, const float *q, const float *kk, const float *v, float *out,
                          int n_seq, int L, int n_heads, int n_kv_heads, int d, float scale,
                          int heads_per_chunk, float *workspace);
size_t aw_kc_attention_workspace(int L, int heads_per_chunk);

/* ---- calibration statistics --------------------------------------------------- */

/* Per-channel statistics of x (T, d): absmax[j] = max(absmax[j], max_t
 * |x[t,j]|), sum[j] += sum_t x[t,j] (double). Non-finite values are skipped
 * and counted into *nonfinite (device; may be NULL). One pass over x in
 * tiles of rows, per-tile partials summed in tile order by a second kernel:
 * deterministic, no float atomics. */
aw_status aw_kc_stats_accum(aw_kc *k, const float *x, int T, int d, float *absmax, double *sum,
                            unsigned long long *nonfinite);

/* ---- equalization folds (bit-identical to the CPU) ------------------------------ */

/* W (rows, cols): column j times s[j]. */
aw_status aw_kc_scale_cols(aw_kc *k, float *w, int rows, int cols, const float *s);
/* W (rows, cols) row i and b[i] (b may be NULL) divided by s[i]. */
aw_status aw_kc_div_rows(aw_kc *k, float *w, float *b, int rows, int cols, const float *s);
/* y (rows, cols) = x / s per column (true division; y may alias x): an
 * activation in an equalized layer's coordinates. */
aw_status aw_kc_div_cols(aw_kc *k, const float *x, float *y, int rows, int cols, const float *s);
/* v[i] /= s[i]. */
aw_status aw_kc_div_vec(aw_kc *k, float *v, int n, const float *s);

/* ---- INT8 --------------------------------------------------------------------- */

/* *out (device float) = max |x| over n values, NaN if any is NaN (the same
 * bits as aw_k_absmax). Two-stage integer max: exact. */
aw_status aw_kc_absmax(aw_kc *k, const float *x, size_t n, float *out);
/* q[i] = aw_quant_i8(x[i], step) (step on the host, as aw_k_quantize_i8). */
aw_status aw_kc_quantize_i8(aw_kc *k, const float *x, size_t n, float step, int8_t *q);
/* x[i] = q[i] * step. */
aw_status aw_kc_dequantize_i8(aw_kc *k, const int8_t *q, size_t n, float step, float *x);
/* acc (T, out) = xq (T, in) . wq (out, in)^T, exact int32: cuBLASLt
 * (CUBLAS_COMPUTE_32I) where it takes the shape (in and out multiples of 4,
 * 16-byte aligned pointers), else aw_kc_gemm_i8_simt. */
aw_status aw_kc_gemm_i8(aw_kc *k, const int8_t *xq, const int8_t *wq, int32_t *acc, int T, int in,
                        int out);
/* The fallback: tiled kernel, dp4a on packed bytes. Exact; slower. */
aw_status aw_kc_gemm_i8_simt(aw_kc *k, const int8_t *xq, const int8_t *wq, int32_t *acc, int T,
                             int in, int out);
/* y (T, out) = acc * (x_step * w_step) + b (b may be NULL). */
aw_status aw_kc_dequant_acc(aw_kc *k, const int32_t *acc, const float *b, float x_step,
                            float w_step, float *y, int T, int out);

/* ---- validation ------------------------------------------------------------------ */

/* out[0] = sum (y - yr)^2, out[1] = sum yr^2 over n values (device doubles,
 * overwritten). Two-stage reduction shaped by n alone: deterministic. */
aw_status aw_kc_err_sums(aw_kc *k, const float *yr, const float *y, size_t n, double *out);
/* col_err[j] += sum_t (y[t,j] - yr[t,j]) (double, rows in order: the same
 * bits as aw_k_col_err_accum). */
aw_status aw_kc_col_err_accum(aw_kc *k, const float *yr, const float *y, int T, int out,
                              double *col_err);

#ifdef __cplusplus
}
#endif

#endif
