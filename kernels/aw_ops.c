/* aw_ops.c - the CPU tables of aw_ops.h: plain and staged. */
#include "aw_ops.h"

#include <stdlib.h>
#include <string.h>

#include "aw_actq.h"
#include "aw_kernels.h"
#include "aw_lowbit.h"
#include "aw_quant_k.h"

/* ---- memory ------------------------------------------------------------------ */

static aw_status cpu_alloc(const aw_ops *o, void **p, size_t bytes, const char *what)
{
    *p = malloc(bytes ? bytes : 1);
    AW_RETURN_IF(!*p, AW_ERR_NOMEM, "out of memory for %s (%zu bytes)", what ? what : "a buffer", bytes);
    /* staged memory starts as NaN bytes, as device memory starts undefined:
     * a buffer used before it is written shows in the results */
    if (!o->host) memset(*p, 0xff, bytes);
    return AW_OK;
}

static void cpu_release(const aw_ops *o, void *p)
{
    (void)o;
    free(p);
}

static aw_status cpu_copy(const aw_ops *o, void *dst, const void *src, size_t bytes)
{
    (void)o;
    if (bytes && dst != src) memcpy(dst, src, bytes);
    return AW_OK;
}

static aw_status cpu_zero(const aw_ops *o, void *dst, size_t bytes)
{
    (void)o;
    memset(dst, 0, bytes);
    return AW_OK;
}

static aw_status cpu_sync(const aw_ops *o)
{
    (void)o;
    return AW_OK;
}

/* ---- kernels ------------------------------------------------------------------ */

static aw_status cpu_linear(const aw_ops *o, const float *x, const void *w, aw_dtype wdt, const float *b,
                            float *y, int T, int in, int out, float *wscratch)
{
    (void)o;
    const float *wf = w;
    size_t n = (size_t)in * out;
    if (wdt != AW_DT_F32) {
        /* the vectorised widening writes the same bits as aw_convert_to_f32 */
        if (wdt == AW_DT_F16) aw_k_f16_to_f32(w, wscratch, n);
        else if (wdt == AW_DT_BF16) aw_k_bf16_to_f32(w, wscratch, n);
        else AW_TRY(aw_convert_to_f32(wdt, w, wscratch, n));
        wf = wscratch;
    }
    aw_k_linear(x, wf, b, y, T, in, out);
    return AW_OK;
}

static aw_status cpu_layernorm(const aw_ops *o, const float *x, const float *g, const float *beta, float *y,
                               int T, int d, float eps)
{
    (void)o;
    aw_k_layernorm(x, g, beta, y, T, d, eps);
    return AW_OK;
}

static aw_status cpu_rmsnorm(const aw_ops *o, const float *x, const float *g, float *y, int T, int d,
                             float eps)
{
    (void)o;
    aw_k_rmsnorm(x, g, y, T, d, eps);
    return AW_OK;
}

static aw_status cpu_relu(const aw_ops *o, float *x, size_t n)
{
    (void)o;
    aw_k_relu(x, n);
    return AW_OK;
}

static aw_status cpu_swiglu(const aw_ops *o, const float *gate, const float *up, float *out, size_t n)
{
    (void)o;
    aw_k_swiglu(gate, up, out, n);
    return AW_OK;
}

static aw_status cpu_add(const aw_ops *o, float *h, const float *y, size_t n)
{
    (void)o;
    for (size_t i = 0; i < n; i++) h[i] += y[i];
    return AW_OK;
}

static aw_status cpu_embed(const aw_ops *o, const uint32_t *tokens, int n_seq, int L, const float *E,
                           const float *P, int pos_offset, int d, float *h)
{
    (void)o;
    aw_k_embed(tokens, n_seq, L, E, P, pos_offset, d, h);
    return AW_OK;
}

static aw_status cpu_rope(const aw_ops *o, float *x, int n_seq, int L, int n_heads, int head_dim,
                          float theta)
{
    (void)o;
    AW_RETURN_IF(head_dim % 2 != 0, AW_ERR_ARG, "rope: head_dim %d is odd", head_dim);
    aw_k_rope(x, n_seq, L, n_heads, head_dim, theta);
    return AW_OK;
}

static aw_status cpu_attention(const aw_ops *o, const float *q, const float *k, const float *v, float *out,
                               int n_seq, int L, int n_heads, int n_kv_heads, int d, float scale,
                               int heads_per_chunk, float *workspace)
{
    (void)o;
    AW_RETURN_IF(n_heads <= 0 || d % n_heads != 0 || n_kv_heads <= 0 || n_heads % n_kv_heads != 0,
                 AW_ERR_ARG, "attention: %d heads, %d kv heads, width %d (heads must divide the "
                 "width, kv heads the heads)", n_heads, n_kv_heads, d);
    aw_k_attention(q, k, v, out, n_seq, L, n_heads, n_kv_heads, d, scale, heads_per_chunk, workspace);
    return AW_OK;
}

static aw_status cpu_stats_accum(const aw_ops *o, const float *x, int T, int d, float *absmax, double *sum,
                                 unsigned long long *nonfinite)
{
    (void)o;
    size_t bad = aw_k_stats_accum(x, T, d, absmax, sum);
    if (nonfinite) *nonfinite += bad;
    return AW_OK;
}

static aw_status cpu_div_cols(const aw_ops *o, const float *x, float *y, int T, int d, const float *s)
{
    (void)o;
    aw_k_div_cols(x, y, T, d, s);
    return AW_OK;
}

static aw_status cpu_scale_cols(const aw_ops *o, float *x, int T, int d, const float *s)
{
    (void)o;
    aw_k_scale_cols(x, T, d, s);
    return AW_OK;
}

static aw_status cpu_quantize_i8(const aw_ops *o, const float *x, size_t n, float step, int8_t *q)
{
    (void)o;
    aw_k_quantize_i8(x, n, step, q);
    return AW_OK;
}

static aw_status cpu_gemm_i8(const aw_ops *o, const int8_t *xq, const int8_t *wq, int32_t *acc, int T, int in,
                             int out)
{
    (void)o;
    aw_k_gemm_i8(xq, wq, acc, T, in, out);
    return AW_OK;
}

static aw_status cpu_dequant_acc(const aw_ops *o, const int32_t *acc, const float *b, float x_step,
                                 float w_step, float *y, int T, int out)
{
    (void)o;
    aw_k_dequant_acc(acc, b, x_step, w_step, y, T, out);
    return AW_OK;
}

static aw_status cpu_err_sums(const aw_ops *o, const float *yr, const float *y, size_t n, double *out)
{
    (void)o;
    aw_k_err_sums(yr, y, n, &out[0], &out[1]);
    return AW_OK;
}

static aw_status cpu_col_err_accum(const aw_ops *o, const float *yr, const float *y, int T, int out,
                                   double *col_err)
{
    (void)o;
    aw_k_col_err_accum(yr, y, T, out, col_err);
    return AW_OK;
}

static aw_status cpu_gram_accum(const aw_ops *o, const float *x, int T, int in, float *h, double *abssum)
{
    (void)o;
    aw_k_gram_accum(x, T, in, h, abssum);
    return AW_OK;
}

static aw_status cpu_dequant_groups(const aw_ops *o, const uint8_t *q, const float *step, const uint8_t *zero,
                                    int out, int in, int G, float *w)
{
    (void)o;
    aw_k_group_dequantize(q, step, zero, out, in, G, w);
    return AW_OK;
}

static aw_status cpu_widen(const aw_ops *o, const void *src, aw_dtype sdt, float *dst, size_t n)
{
    (void)o;
    /* aw_block_convert's conversion: a copy, or aw_convert_to_f32 */
    if (sdt == AW_DT_F32) return cpu_copy(o, dst, src, n * sizeof(float));
    return aw_convert_to_f32(sdt, src, dst, n);
}

static aw_status cpu_absmax(const aw_ops *o, const float *x, size_t n, float *out)
{
    (void)o;
    *out = aw_k_absmax(x, n);
    return AW_OK;
}

static aw_status cpu_row_absmax(const aw_ops *o, const float *w, int rows, int cols, float *rmax)
{
    (void)o;
    aw_k_row_absmax(w, rows, cols, rmax);
    return AW_OK;
}

static aw_status cpu_col_absmax(const aw_ops *o, const float *w, int rows, int cols, float *rw)
{
    (void)o;
    aw_k_col_absmax(w, rows, cols, rw);
    return AW_OK;
}

static aw_status cpu_div_rows(const aw_ops *o, float *w, float *b, int rows, int cols, const float *s)
{
    (void)o;
    aw_k_div_rows(w, b, rows, cols, s);
    return AW_OK;
}

static aw_status cpu_bias_delta_i8(const aw_ops *o, const float *w, const int8_t *wq, float step,
                                   const double *mean, int rows, int cols, double *delta)
{
    (void)o;
    aw_k_bias_delta_i8(w, wq, step, mean, rows, cols, delta);
    return AW_OK;
}

static aw_status cpu_bias_delta(const aw_ops *o, const float *w, const float *deq, const double *mean, int rows,
                                int cols, double *delta)
{
    (void)o;
    aw_k_bias_delta(w, deq, mean, rows, cols, delta);
    return AW_OK;
}

static aw_status cpu_group_params(const aw_ops *o, const float *w, int out, int in, int G, int bits, int sym,
                                  aw_dtype sdt, float *step, uint8_t *zero)
{
    (void)o;
    aw_k_group_params(w, out, in, G, bits, sym, sdt, step, zero);
    return AW_OK;
}

static aw_status cpu_group_quantize(const aw_ops *o, const float *w, int out, int in, int G, int bits,
                                    const float *step, const uint8_t *zero, uint8_t *q)
{
    (void)o;
    aw_k_group_quantize(w, out, in, G, bits, step, zero, q);
    return AW_OK;
}

static aw_status cpu_search_err(const aw_ops *o, const float *w, int out, int in, const float *s, const double *G,
                                int group, int bits, int sym, aw_dtype sdt, double *acc)
{
    (void)o;
    return aw_k_search_err(w, out, in, s, G, group, bits, sym, sdt, acc);
}

static aw_status cpu_gptq(const aw_ops *o, float *w, const aw_gptq_plan *plan, int out, const aw_gptq_opts *opt,
                          float *step, uint8_t *zero, uint8_t *q)
{
    (void)o;
    return aw_k_gptq_sweep(w, plan, out, opt, step, zero, q);
}

static aw_status cpu_act_quant(const aw_ops *o, const float *x, int T, int in, int bits, int A, const float *mask,
                               int8_t *q, float *step)
{
    (void)o;
    aw_k_act_quant(x, T, in, bits, A, mask, q, step);
    return AW_OK;
}

static aw_status cpu_act_fakequant(const aw_ops *o, const float *x, float *y, int T, int in, int bits, int A,
                                   const float *mask)
{
    (void)o;
    aw_k_act_fakequant(x, y, T, in, bits, A, mask);
    return AW_OK;
}

static aw_status cpu_gemm_groups(const aw_ops *o, const int8_t *xq, const float *xs, int A, const int8_t *wq,
                                 const float *ws, int W, const float *b, float *y, int T, int in, int out,
                                 void *scratch)
{
    (void)o;
    return aw_k_gemm_groups(xq, xs, A, wq, ws, W, b, y, T, in, out, scratch);
}

static aw_status cpu_gather_cols(const aw_ops *o, const float *x, int T, int in, const int32_t *idx, int n, float *xk)
{
    (void)o;
    aw_k_gather_cols(x, T, in, idx, n, xk);
    return AW_OK;
}

static aw_status cpu_add_linear(const aw_ops *o, const float *xk, const float *wk, float *y, int T, int n, int out)
{
    (void)o;
    aw_k_add_linear(xk, wk, y, T, n, out);
    return AW_OK;
}

static const aw_ops_vt cpu_vt = {
    .alloc = cpu_alloc,
    .release = cpu_release,
    .to_dev = cpu_copy,
    .to_host = cpu_copy,
    .copy = cpu_copy,
    .zero = cpu_zero,
    .sync = cpu_sync,
    .linear = cpu_linear,
    .layernorm = cpu_layernorm,
    .rmsnorm = cpu_rmsnorm,
    .relu = cpu_relu,
    .swiglu = cpu_swiglu,
    .add = cpu_add,
    .embed = cpu_embed,
    .rope = cpu_rope,
    .attention = cpu_attention,
    .attention_workspace = aw_k_attention_workspace,
    .stats_accum = cpu_stats_accum,
    .div_cols = cpu_div_cols,
    .scale_cols = cpu_scale_cols,
    .quantize_i8 = cpu_quantize_i8,
    .gemm_i8 = cpu_gemm_i8,
    .dequant_acc = cpu_dequant_acc,
    .err_sums = cpu_err_sums,
    .col_err_accum = cpu_col_err_accum,
    .gram_accum = cpu_gram_accum,
    .dequant_groups = cpu_dequant_groups,
    .widen = cpu_widen,
    .absmax = cpu_absmax,
    .row_absmax = cpu_row_absmax,
    .col_absmax = cpu_col_absmax,
    .div_rows = cpu_div_rows,
    .bias_delta_i8 = cpu_bias_delta_i8,
    .bias_delta = cpu_bias_delta,
    .group_params = cpu_group_params,
    .group_quantize = cpu_group_quantize,
    .search_err = cpu_search_err,
    .gptq = cpu_gptq,
    .act_quant = cpu_act_quant,
    .act_fakequant = cpu_act_fakequant,
    .gemm_groups_scratch = aw_k_gemm_groups_scratch,
    .gemm_groups = cpu_gemm_groups,
    .gather_cols = cpu_gather_cols,
    .add_linear = cpu_add_linear,
};

const aw_ops *aw_ops_cpu(void)
{
    static const aw_ops o = {.vt = &cpu_vt, .ctx = NULL, .host = 1, .wscratch = 1, .name = "cpu"};
    return &o;
}

const aw_ops *aw_ops_cpu_staged(void)
{
    static const aw_ops o = {.vt = &cpu_vt, .ctx = NULL, .host = 0, .wscratch = 1, .name = "cpu-staged"};
    return &o;
}

/* ---- helpers -------------------------------------------------------------------- */

aw_dtype aw_ops_dev_wdt(const aw_ops *o, aw_dtype wdt)
{
    /* the host widens any dtype itself; a device keeps F16 for the tensor
     * cores and F32, and gets BF16 widened */
    if (o->host) return wdt;
    return wdt == AW_DT_BF16 ? AW_DT_F32 : wdt;
}

aw_status aw_ops_mirror(const aw_ops *o, void **dev, void *host, size_t bytes, const char *what)
{
    if (o->host) {
        *dev = host;
        return AW_OK;
    }
    return o->vt->alloc(o, dev, bytes, what);
}

void aw_ops_mirror_free(const aw_ops *o, void *dev, const void *host)
{
    if (dev && dev != host) o->vt->release(o, dev);
}
