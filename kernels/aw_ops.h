/*
 * aw_ops.h - the kernels the pipeline's streaming phases and its
 * quantization use, behind one table, so that one forward, one statistics
 * observer, one validation observer and one quantizer (aw_quantize_block_ops:
 * the weights stay in the table's memory) run on any backend:
 *
 *   aw_ops_cpu()         the CPU kernels (aw_kernels.h) on host memory; the
 *                        reference, and the plain CPU pipeline.
 *   aw_ops_cpu_staged()  the same kernels, but "device" memory is a separate
 *                        host allocation reached only through to_dev/to_host:
 *                        the CUDA backend's data path (uploads, downloads,
 *                        device mirrors) checked on a machine without a GPU,
 *                        byte for byte against aw_ops_cpu().
 *   aw_ops_cuda_create() the CUDA kernels (aw_kernels_cuda.h) on one stream
 *                        (built with AWEQ_HAVE_CUDA only).
 *
 * Pointers given to a kernel are "device" pointers of that table: from its
 * alloc, or views into them. For aw_ops_cpu() every host pointer is one
 * (host = 1: callers may skip their mirrors and alias host memory).
 * Kernels are queued in order; a fault inside one may be reported by a
 * later call or by sync. Every function returns AW_OK or the backend's error
 * (AW_ERR_CUDA naming the call, AW_ERR_NOMEM naming what).
 *
 * Weights of a linear come in the storage dtype wdt: F32, or F16 (the CUDA
 * backend multiplies F16 weights on the tensor cores with fp32 accumulation,
 * the CPU widens them to f32 in wscratch first). BF16 weights are widened to
 * F32 when uploaded (aw_ops_dev_wdt).
 */
#ifndef AW_OPS_H
#define AW_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "aw_dtype.h"
#include "aw_lowbit.h"
#include "aw_status.h"

typedef struct aw_ops aw_ops;

typedef struct {
    /* memory */
    aw_status (*alloc)(const aw_ops *o, void **p, size_t bytes, const char *what);
    void (*release)(const aw_ops *o, void *p);
    aw_status (*to_dev)(const aw_ops *o, void *dst, const void *src, size_t bytes);
    aw_status (*to_host)(const aw_ops *o, void *dst, const void *src, size_t bytes);
    aw_status (*copy)(const aw_ops *o, void *dst, const void *src, size_t bytes); /* device to device */
    aw_status (*zero)(const aw_ops *o, void *dst, size_t bytes);
    aw_status (*sync)(const aw_ops *o);
    /* forward */
    aw_status (*linear)(const aw_ops *o, const float *x, const void *w, aw_dtype wdt, const float *b,
                        float *y, int T, int in, int out, float *wscratch);
    aw_status (*layernorm)(const aw_ops *o, const float *x, const float *g, const float *beta, float *y,
                           int T, int d, float eps);
    /* y (T, d) = x / sqrt(mean(x^2) + eps) * g; y may alias x */
    aw_status (*rmsnorm)(const aw_ops *o, const float *x, const float *g, float *y, int T, int d,
                         float eps);
    aw_status (*relu)(const aw_ops *o, float *x, size_t n);
    /* out = silu(gate) * up; out may alias gate or up */
    aw_status (*swiglu)(const aw_ops *o, const float *gate, const float *up, float *out, size_t n);
    aw_status (*add)(const aw_ops *o, float *h, const float *y, size_t n);
    /* h = E[tok] + P[pos + pos_offset], or E[tok] when P is NULL */
    aw_status (*embed)(const aw_ops *o, const uint32_t *tokens, int n_seq, int L, const float *E,
                       const float *P, int pos_offset, int d, float *h);
    /* x (n_seq*L, n_heads*head_dim) rotated in place by position (HF LLaMA
     * RoPE); AW_ERR_ARG for an odd head_dim */
    aw_status (*rope)(const aw_ops *o, float *x, int n_seq, int L, int n_heads, int head_dim,
                      float theta);
    /* q, out (n_seq*L, d), k, v (n_seq*L, n_kv_heads * d/n_heads); AW_ERR_ARG
     * unless n_heads divides d and n_kv_heads divides n_heads */
    aw_status (*attention)(const aw_ops *o, const float *q, const float *k, const float *v, float *out,
                           int n_seq, int L, int n_heads, int n_kv_heads, int d, float scale,
                           int heads_per_chunk, float *workspace);
    size_t (*attention_workspace)(int L, int heads_per_chunk); /* floats */
    /* statistics: absmax, sum (+=) and *nonfinite (+=) are device memory */
    aw_status (*stats_accum)(const aw_ops *o, const float *x, int T, int d, float *absmax, double *sum,
                             unsigned long long *nonfinite);
    /* y (T, d) = x / s per column (y may alias x); x (T, d) *= s per column */
    aw_status (*div_cols)(const aw_ops *o, const float *x, float *y, int T, int d, const float *s);
    aw_status (*scale_cols)(const aw_ops *o, float *x, int T, int d, const float *s);
    /* INT8 */
    aw_status (*quantize_i8)(const aw_ops *o, const float *x, size_t n, float step, int8_t *q);
    aw_status (*gemm_i8)(const aw_ops *o, const int8_t *xq, const int8_t *wq, int32_t *acc, int T, int in,
                         int out);
    aw_status (*dequant_acc)(const aw_ops *o, const int32_t *acc, const float *b, float x_step,
                             float w_step, float *y, int T, int out);
    /* validation: out[0] = sum (y - yr)^2, out[1] = sum yr^2 (set, device);
     * col_err[j] += sum_t (y - yr) */
    aw_status (*err_sums)(const aw_ops *o, const float *yr, const float *y, size_t n, double *out);
    aw_status (*col_err_accum)(const aw_ops *o, const float *yr, const float *y, int T, int out,
                               double *col_err);
    /* low-bit weights (aw_lowbit.h): h (in, in) lower triangle += x^T x
     * (h NULL: skipped), abssum (in) += |x| per column; w (out, in) = (q - z) * step with
     * groups of G inputs (0: the whole row) */
    aw_status (*gram_accum)(const aw_ops *o, const float *x, int T, int in, float *h, double *abssum);
    aw_status (*dequant_groups)(const aw_ops *o, const uint8_t *q, const float *step, const uint8_t *zero,
                                int out, int in, int G, float *w);
    /* quantization of a block (pipeline/quant/, aw_quant_k.h, aw_lowbit.h),
     * on the F32 equalized block in this table's memory:
     * dst (n) = src (n values of dtype sdt: F32, F16, BF16) widened, exact */
    aw_status (*widen)(const aw_ops *o, const void *src, aw_dtype sdt, float *dst, size_t n);
    /* *out (one float) = max |x| over n values, NaN if one is NaN (aw_k_absmax) */
    aw_status (*absmax)(const aw_ops *o, const float *x, size_t n, float *out);
    /* rmax[i] = max |w_ij| of row i; rw[j] = max(rw[j], max_i |w_ij|)
     * (running: zero rw first), w (rows, cols) */
    aw_status (*row_absmax)(const aw_ops *o, const float *w, int rows, int cols, float *rmax);
    aw_status (*col_absmax)(const aw_ops *o, const float *w, int rows, int cols, float *rw);
    /* w (rows, cols) row i and b[i] (b may be NULL) /= s[i] (a row fold) */
    aw_status (*div_rows)(const aw_ops *o, float *w, float *b, int rows, int cols, const float *s);
    /* bias correction: delta[i] = sum_j (Q(w)_ij - w_ij) mean_j (double),
     * Q(w) = wq * step (INT8) or deq */
    aw_status (*bias_delta_i8)(const aw_ops *o, const float *w, const int8_t *wq, float step, const double *mean,
                               int rows, int cols, double *delta);
    aw_status (*bias_delta)(const aw_ops *o, const float *w, const float *deq, const double *mean, int rows,
                            int cols, double *delta);
    /* group steps / zero points (out, ng) of w (out, in), and its codes */
    aw_status (*group_params)(const aw_ops *o, const float *w, int out, int in, int G, int bits, int sym,
                              aw_dtype sdt, float *step, uint8_t *zero);
    aw_status (*group_quantize)(const aw_ops *o, const float *w, int out, int in, int G, int bits,
                                const float *step, const uint8_t *zero, uint8_t *q);
    /* the scale search: *acc (one double) += the objective of consumer w
     * (out, in) for factors s (in), G (in, in) symmetric (aw_k_search_err) */
    aw_status (*search_err)(const aw_ops *o, const float *w, int out, int in, const float *s, const double *G,
                            int group, int bits, int sym, aw_dtype sdt, double *acc);
    /* GPTQ's sweep of w (out, plan->in) with a host plan (aw_k_gptq_sweep):
     * w gets the dequantized weights, step/zero (out, ng) and q (out, in) */
    aw_status (*gptq)(const aw_ops *o, float *w, const aw_gptq_plan *plan, int out, const aw_gptq_opts *opt,
                      float *step, uint8_t *zero, uint8_t *q);
    /* dynamic activations (aw_actq.h): codes q (T, in) and steps (T, nga)
     * of x with groups of A inputs, mask NULL or (in); the same as a float
     * fake quantization into y (may alias x) */
    aw_status (*act_quant)(const aw_ops *o, const float *x, int T, int in, int bits, int A, const float *mask,
                           int8_t *q, float *step);
    aw_status (*act_fakequant)(const aw_ops *o, const float *x, float *y, int T, int in, int bits, int A,
                               const float *mask);
    /* y (T, out) = the grouped integer product of codes xq (steps xs, groups
     * of A) and signed weights wq (out, in) (steps ws, groups of W), + b;
     * scratch: gemm_groups_scratch bytes in this table's memory */
    size_t (*gemm_groups_scratch)(int T, int in, int out, int A, int W);
    aw_status (*gemm_groups)(const aw_ops *o, const int8_t *xq, const float *xs, int A, const int8_t *wq,
                             const float *ws, int W, const float *b, float *y, int T, int in, int out,
                             void *scratch);
    /* kept channels: xk (T, n) = columns idx of x (T, in); y (T, out) += xk wk^T */
    aw_status (*gather_cols)(const aw_ops *o, const float *x, int T, int in, const int32_t *idx, int n, float *xk);
    aw_status (*add_linear)(const aw_ops *o, const float *xk, const float *wk, float *y, int T, int n, int out);
} aw_ops_vt;

struct aw_ops {
    const aw_ops_vt *vt;
    void *ctx;         /* the backend's context (aw_kc * for CUDA) */
    int host;          /* 1: device pointers are host pointers */
    int wscratch;      /* 1: linear widens non-F32 weights into wscratch */
    const char *name;  /* "cpu", "cpu-staged", "cuda" */
};

const aw_ops *aw_ops_cpu(void);
const aw_ops *aw_ops_cpu_staged(void);

#ifdef AWEQ_HAVE_CUDA
/* The CUDA table on the current device (aw_backend_select made it so), with
 * its own context and stream (o->ctx is the aw_kc). */
aw_status aw_ops_cuda_create(aw_ops **out);
void aw_ops_cuda_destroy(aw_ops *o);
#endif

/* The dtype linear weights of storage dtype wdt have in this table's memory. */
aw_dtype aw_ops_dev_wdt(const aw_ops *o, aw_dtype wdt);

/* Allocate n bytes in o's memory, or alias host when o->host (no copy, not
 * to be released: aw_ops_mirror_free knows). */
aw_status aw_ops_mirror(const aw_ops *o, void **dev, void *host, size_t bytes, const char *what);
void aw_ops_mirror_free(const aw_ops *o, void *dev, const void *host);

#endif
