/* aw_ops_cuda.c - the CUDA table of aw_ops.h: each entry queues the
 * aw_kernels_cuda.h kernel of the same name on the table's context. */
#include <stdlib.h>

#include "aw_kc_lowbit.h"
#include "aw_kernels_cuda.h"
#include "aw_ops.h"

#define KC(o) ((aw_kc *)(o)->ctx)

static aw_status cu_alloc(const aw_ops *o, void **p, size_t bytes, const char *what)
{
    (void)o;
    return aw_kc_malloc(p, bytes, what);
}

static void cu_release(const aw_ops *o, void *p)
{
    (void)o;
    aw_kc_free(p);
}

/* Copies go through the context's stream (cudaMemcpyDefault: any direction).
 * A copy into pageable host memory returns once the bytes are there. */
static aw_status cu_copy(const aw_ops *o, void *dst, const void *src, size_t bytes)
{
    return aw_kc_copy(KC(o), dst, src, bytes);
}

static aw_status cu_to_host(const aw_ops *o, void *dst, const void *src, size_t bytes)
{
    AW_TRY(aw_kc_copy(KC(o), dst, src, bytes));
    /* the host reads dst next: wait for it (and report a fault queued before) */
    return aw_kc_sync(KC(o));
}

static aw_status cu_zero(const aw_ops *o, void *dst, size_t bytes) { return aw_kc_memset(KC(o), dst, 0, bytes); }
static aw_status cu_sync(const aw_ops *o) { return aw_kc_sync(KC(o)); }

static aw_status cu_linear(const aw_ops *o, const float *x, const void *w, aw_dtype wdt, const float *b, float *y,
                           int T, int in, int out, float *wscratch)
{
    (void)wscratch;
    if (wdt == AW_DT_F16) return aw_kc_linear_f16w(KC(o), x, w, b, y, T, in, out);
    AW_RETURN_IF(wdt != AW_DT_F32, AW_ERR_DTYPE, "CUDA linear: weights in %s (expected F16 or F32)",
                 aw_dtype_name(wdt));
    return aw_kc_linear(KC(o), x, w, b, y, T, in, out);
}

static aw_status cu_layernorm(const aw_ops *o, const float *x, const float *g, const float *beta, float *y, int T,
                              int d, float eps)
{
    return aw_kc_layernorm(KC(o), x, g, beta, y, T, d, eps);
}

static aw_status cu_rmsnorm(const aw_ops *o, const float *x, const float *g, float *y, int T, int d, float eps)
{
    return aw_kc_rmsnorm(KC(o), x, g, y, T, d, eps);
}

static aw_status cu_relu(const aw_ops *o, float *x, size_t n) { return aw_kc_relu(KC(o), x, n); }
static aw_status cu_add(const aw_ops *o, float *h, const float *y, size_t n) { return aw_kc_add(KC(o), h, y, n); }

static aw_status cu_swiglu(const aw_ops *o, const float *gate, const float *up, float *out, size_t n)
{
    return aw_kc_swiglu(KC(o), gate, up, out, n);
}

static aw_status cu_embed(const aw_ops *o, const uint32_t *tokens, int n_seq, int L, const float *E, const float *P,
                          int pos_offset, int d, float *h)
{
    return aw_kc_embed(KC(o), tokens, n_seq, L, E, P, pos_offset, d, h);
}

static aw_status cu_rope(const aw_ops *o, float *x, int n_seq, int L, int n_heads, int head_dim, float theta)
{
    return aw_kc_rope(KC(o), x, n_seq, L, n_heads, head_dim, theta);
}

static aw_status cu_attention(const aw_ops *o, const float *q, const float *k, const float *v, float *out,
                              int n_seq, int L, int n_heads, int n_kv_heads, int d, float scale,
                              int heads_per_chunk, float *workspace)
{
    return aw_kc_attention(KC(o), q, k, v, out, n_seq, L, n_heads, n_kv_heads, d, scale, heads_per_chunk,
                           workspace);
}

static aw_status cu_stats_accum(const aw_ops *o, const float *x, int T, int d, float *absmax, double *sum,
                                unsigned long long *nonfinite)
{
    return aw_kc_stats_accum(KC(o), x, T, d, absmax, sum, nonfinite);
}

static aw_status cu_div_cols(const aw_ops *o, const float *x, float *y, int T, int d, const float *s)
{
    return aw_kc_div_cols(KC(o), x, y, T, d, s);
}

static aw_status cu_scale_cols(const aw_ops *o, float *x, int T, int d, const float *s)
{
    return aw_kc_scale_cols(KC(o), x, T, d, s);
}

static aw_status cu_quantize_i8(const aw_ops *o, const float *x, size_t n, float step, int8_t *q)
{
    return aw_kc_quantize_i8(KC(o), x, n, step, q);
}

static aw_status cu_gemm_i8(const aw_ops *o, const int8_t *xq, const int8_t *wq, int32_t *acc, int T, int in,
                            int out)
{
    return aw_kc_gemm_i8(KC(o), xq, wq, acc, T, in, out);
}

static aw_status cu_dequant_acc(const aw_ops *o, const int32_t *acc, const float *b, float x_step, float w_step,
                                float *y, int T, int out)
{
    return aw_kc_dequant_acc(KC(o), acc, b, x_step, w_step, y, T, out);
}

static aw_status cu_err_sums(const aw_ops *o, const float *yr, const float *y, size_t n, double *out)
{
    return aw_kc_err_sums(KC(o), yr, y, n, out);
}

static aw_status cu_col_err_accum(const aw_ops *o, const float *yr, const float *y, int T, int out,
                                  double *col_err)
{
    return aw_kc_col_err_accum(KC(o), yr, y, T, out, col_err);
}

static aw_status cu_gram_accum(const aw_ops *o, const float *x, int T, int in, float *h, double *abssum)
{
    return aw_kc_gram_accum(KC(o), x, T, in, h, abssum);
}

static aw_status cu_dequant_groups(const aw_ops *o, const uint8_t *q, const float *step, const uint8_t *zero,
                                   int out, int in, int G, float *w)
{
    return aw_kc_dequant_groups(KC(o), q, step, zero, out, in, G, w);
}

static aw_status cu_widen(const aw_ops *o, const void *src, aw_dtype sdt, float *dst, size_t n)
{
    return aw_kc_widen(KC(o), src, sdt, dst, n);
}

static aw_status cu_absmax(const aw_ops *o, const float *x, size_t n, float *out)
{
    return aw_kc_absmax(KC(o), x, n, out);
}

static aw_status cu_row_absmax(const aw_ops *o, const float *w, int rows, int cols, float *rmax)
{
    return aw_kc_row_absmax(KC(o), w, rows, cols, rmax);
}

static aw_status cu_col_absmax(const aw_ops *o, const float *w, int rows, int cols, float *rw)
{
    return aw_kc_col_absmax(KC(o), w, rows, cols, rw);
}

static aw_status cu_div_rows(const aw_ops *o, float *w, float *b, int rows, int cols, const float *s)
{
    return aw_kc_div_rows(KC(o), w, b, rows, cols, s);
}

static aw_status cu_bias_delta_i8(const aw_ops *o, const float *w, const int8_t *wq, float step, const double *mean,
                                  int rows, int cols, double *delta)
{
    return aw_kc_bias_delta_i8(KC(o), w, wq, step, mean, rows, cols, delta);
}

static aw_status cu_bias_delta(const aw_ops *o, const float *w, const float *deq, const double *mean, int rows,
                               int cols, double *delta)
{
    return aw_kc_bias_delta(KC(o), w, deq, mean, rows, cols, delta);
}

static aw_status cu_group_params(const aw_ops *o, const float *w, int out, int in, int G, int bits, int sym,
                                 aw_dtype sdt, float *step, uint8_t *zero)
{
    return aw_kc_group_params(KC(o), w, out, in, G, bits, sym, sdt, step, zero);
}

static aw_status cu_group_quantize(const aw_ops *o, const float *w, int out, int in, int G, int bits,
                                   const float *step, const uint8_t *zero, uint8_t *q)
{
    return aw_kc_group_quantize(KC(o), w, out, in, G, bits, step, zero, q);
}

static aw_status cu_search_err(const aw_ops *o, const float *w, int out, int in, const float *s, const double *G,
                               int group, int bits, int sym, aw_dtype sdt, double *acc)
{
    return aw_kc_search_err(KC(o), w, out, in, s, G, group, bits, sym, sdt, acc);
}

static aw_status cu_gptq(const aw_ops *o, float *w, const aw_gptq_plan *plan, int out, const aw_gptq_opts *opt,
                         float *step, uint8_t *zero, uint8_t *q)
{
    return aw_kc_gptq(KC(o), w, plan, out, opt, step, zero, q);
}

static aw_status cu_act_quant(const aw_ops *o, const float *x, int T, int in, int bits, int A, const float *mask,
                              int8_t *q, float *step)
{
    return aw_kc_act_quant(KC(o), x, T, in, bits, A, mask, q, step);
}

static aw_status cu_act_fakequant(const aw_ops *o, const float *x, float *y, int T, int in, int bits, int A,
                                  const float *mask)
{
    return aw_kc_act_fakequant(KC(o), x, y, T, in, bits, A, mask);
}

static aw_status cu_gemm_groups(const aw_ops *o, const int8_t *xq, const float *xs, int A, const int8_t *wq,
                                const float *ws, int W, const float *b, float *y, int T, int in, int out,
                                void *scratch)
{
    return aw_kc_gemm_groups(KC(o), xq, xs, A, wq, ws, W, b, y, T, in, out, scratch);
}

static aw_status cu_gather_cols(const aw_ops *o, const float *x, int T, int in, const int32_t *idx, int n, float *xk)
{
    return aw_kc_gather_cols(KC(o), x, T, in, idx, n, xk);
}

static aw_status cu_add_linear(const aw_ops *o, const float *xk, const float *wk, float *y, int T, int n, int out)
{
    return aw_kc_add_linear(KC(o), xk, wk, y, T, n, out);
}

static const aw_ops_vt cuda_vt = {
    .alloc = cu_alloc,
    .release = cu_release,
    .to_dev = cu_copy,
    .to_host = cu_to_host,
    .copy = cu_copy,
    .zero = cu_zero,
    .sync = cu_sync,
    .linear = cu_linear,
    .layernorm = cu_layernorm,
    .rmsnorm = cu_rmsnorm,
    .relu = cu_relu,
    .swiglu = cu_swiglu,
    .add = cu_add,
    .embed = cu_embed,
    .rope = cu_rope,
    .attention = cu_attention,
    .attention_workspace = aw_kc_attention_workspace,
    .stats_accum = cu_stats_accum,
    .div_cols = cu_div_cols,
    .scale_cols = cu_scale_cols,
    .quantize_i8 = cu_quantize_i8,
    .gemm_i8 = cu_gemm_i8,
    .dequant_acc = cu_dequant_acc,
    .err_sums = cu_err_sums,
    .col_err_accum = cu_col_err_accum,
    .gram_accum = cu_gram_accum,
    .dequant_groups = cu_dequant_groups,
    .widen = cu_widen,
    .absmax = cu_absmax,
    .row_absmax = cu_row_absmax,
    .col_absmax = cu_col_absmax,
    .div_rows = cu_div_rows,
    .bias_delta_i8 = cu_bias_delta_i8,
    .bias_delta = cu_bias_delta,
    .group_params = cu_group_params,
    .group_quantize = cu_group_quantize,
    .search_err = cu_search_err,
    .gptq = cu_gptq,
    .act_quant = cu_act_quant,
    .act_fakequant = cu_act_fakequant,
    .gemm_groups_scratch = aw_kc_gemm_groups_scratch,
    .gemm_groups = cu_gemm_groups,
    .gather_cols = cu_gather_cols,
    .add_linear = cu_add_linear,
};

aw_status aw_ops_cuda_create(aw_ops **out)
{
    *out = NULL;
    aw_ops *o = calloc(1, sizeof *o);
    AW_RETURN_IF(!o, AW_ERR_NOMEM, "out of memory");
    aw_kc *k = NULL;
    aw_status st = aw_kc_create(NULL, &k);
    if (st != AW_OK) {
        free(o);
        return st;
    }
    o->vt = &cuda_vt;
    o->ctx = k;
    o->host = 0;
    o->wscratch = 0;
    o->name = "cuda";
    *out = o;
    return AW_OK;
}

void aw_ops_cuda_destroy(aw_ops *o)
{
    if (!o) return;
    aw_kc_destroy(o->ctx);
    free(o);
}
