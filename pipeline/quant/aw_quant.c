/* aw_quant.c - the methods' names, equalization (the folds at the family's
 * fold points), INT8 and bias correction (see aw_quant.h); weight-only
 * schemes and the searched methods are in aw_quant_wo.c. */
#include "aw_quant.h"
#include "aw_quant_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aw_kernels.h"

const char *const aw_method_names[AW_METHOD_COUNT] = {"rtn", "smoothquant", "aweq", "awq", "aweq+search", "gptq"};

aw_status aw_method_parse(const char *s, aw_method_kind *out)
{
    for (int i = 0; i < AW_METHOD_COUNT; i++) {
        if (strcmp(s, aw_method_names[i]) == 0) {
            *out = (aw_method_kind)i;
            return AW_OK;
        }
    }
    return AW_FAIL(AW_ERR_ARG, "--method '%s': expected aweq, smoothquant, rtn, awq, aweq+search or gptq", s);
}

int aw_method_needs_gram(const aw_method *m)
{
    return m->kind == AW_METHOD_AWQ || m->kind == AW_METHOD_AWEQ_SEARCH || m->kind == AW_METHOD_GPTQ;
}

int aw_method_uses_tap(const aw_method *m, const aw_model_config *c, aw_tap_id t)
{
    switch (m->kind) {
    case AW_METHOD_AWEQ:
    case AW_METHOD_AWEQ_SEARCH: return 1;
    case AW_METHOD_SMOOTHQUANT: return aw_arch_of(c)->tap[t].smoothquant;
    /* AutoAWQ scales v -> o only when v has as many rows as o has inputs */
    case AW_METHOD_AWQ:
        return aw_arch_of(c)->tap[t].fold != AW_FOLD_ROWS || aw_arch_fold_rows(c, t) == aw_arch_tap_width(c, t);
    default: return 0;
    }
}

float aw_eq_factor(float rx, float rw, float alpha)
{
    if (!(rx > 0.0f) || !(rw > 0.0f) || !isfinite(rx) || !isfinite(rw)) return 1.0f;
    double s = pow((double)rx, alpha) / pow((double)rw, 1.0 - alpha);
    if (!(s > 1e-5)) s = 1e-5; /* also catches NaN */
    if (s > 1e5) s = 1e5;
    return (float)s;
}

float aw_round_to_dtype(float v, aw_dtype dt)
{
    switch (dt) {
    case AW_DT_F16: return aw_f16_to_f32(aw_f32_to_f16(v));
    case AW_DT_BF16: return aw_bf16_to_f32(aw_f32_to_bf16(v));
    default: return v;
    }
}

/* rw_j = max over the given layers' column j of |W|. */
static void col_absmax(const aw_linear *const *lins, int n_lins, float *rw)
{
    int in = lins[0]->in;
    for (int j = 0; j < in; j++) rw[j] = 0.0f;
    for (int k = 0; k < n_lins; k++) {
        const aw_linear *l = lins[k];
        for (int i = 0; i < l->out; i++) {
            const float *row = (const float *)l->w + (size_t)i * in;
            for (int j = 0; j < in; j++) {
                float a = fabsf(row[j]);
                rw[j] = a > rw[j] ? a : rw[j];
            }
        }
    }
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* See aw_fold_factors_aweq: s_r >= rowmax_r / M, M = max over live rows of
 * rowmax_r / s_r. rx (n) are the rows' ranges, s (n) the factors. */
static void clamp_row_fold(const aw_linear *p, const float *rx, float *s, int n)
{
    float *tmp = malloc((size_t)n * sizeof *tmp);
    if (!tmp) return; /* the fold stays exact without the clamp */
    memcpy(tmp, rx, (size_t)n * sizeof *tmp);
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_float);
    float live = tmp[n / 2] / 16.0f;
    float m = 0.0f;
    for (int j = 0; j < n; j++) {
        tmp[j] = aw_k_absmax((const float *)p->w + (size_t)j * p->in, (size_t)p->in); /* rowmax_j */
        if (rx[j] >= live && tmp[j] / s[j] > m) m = tmp[j] / s[j];
    }
    for (int j = 0; j < n && m > 0.0f; j++) {
        float floor_j = tmp[j] / m;
        s[j] = s[j] < floor_j ? floor_j : s[j];
    }
    free(tmp);
}

/* The linears a tap feeds; returns their count. */
static int tap_consumers(const aw_model_config *c, const aw_block *e, aw_tap_id tap,
                         const aw_linear *consumers[AW_LIN_MAX])
{
    const aw_arch *a = aw_arch_of(c);
    int n_cons = 0;
    for (int l = 0; l < a->n_lin; l++)
        if (a->lin[l].tap == tap) consumers[n_cons++] = &e->lin[l];
    return n_cons;
}

aw_status aw_tap_col_absmax(const aw_model_config *c, const aw_block *b, aw_tap_id tap, float *rw)
{
    AW_RETURN_IF(b->wdt != AW_DT_F32, AW_ERR_DTYPE, "column ranges need an F32 block");
    const aw_linear *consumers[AW_LIN_MAX];
    int n_cons = tap_consumers(c, b, tap, consumers);
    col_absmax(consumers, n_cons, rw);
    return AW_OK;
}

/* Factors of a row fold whose producer has fewer rows than the tap has
 * channels (grouped-query attention): one per producer row r, from the
 * largest range and column over the tap channels j that read row r, then
 * expanded to the tap channels (s). */
static aw_status factors_rows_grouped(const aw_model_config *c, aw_tap_id tap, const float *rx_tap,
                                      const float *rw_tap, float alpha, const aw_linear *p, float *s)
{
    int in = aw_arch_tap_width(c, tap), rows = aw_arch_fold_rows(c, tap);
    float *rx = calloc(2 * (size_t)rows, sizeof *rx), *rw = rx + rows;
    AW_RETURN_IF(!rx, AW_ERR_NOMEM, "out of memory for a fold");
    for (int j = 0; j < in; j++) {
        int r = aw_arch_row_of(c, tap, j);
        rx[r] = rx_tap[j] > rx[r] ? rx_tap[j] : rx[r];
        rw[r] = rw_tap[j] > rw[r] ? rw_tap[j] : rw[r];
    }
    float *sr = malloc((size_t)rows * sizeof *sr);
    if (!sr) {
        free(rx);
        return AW_FAIL(AW_ERR_NOMEM, "out of memory for a fold");
    }
    for (int r = 0; r < rows; r++) sr[r] = aw_eq_factor(rx[r], rw[r], alpha);
    clamp_row_fold(p, rx, sr, rows);
    for (int j = 0; j < in; j++) s[j] = sr[aw_arch_row_of(c, tap, j)];
    free(sr);
    free(rx);
    return AW_OK;
}

aw_status aw_fold_factors_aweq(const aw_model_config *c, aw_tap_id tap, const aw_stats *st, float alpha,
                               const aw_block *e, float *s)
{
    const aw_arch_tap *at = &aw_arch_of(c)->tap[tap];
    int in = st->in[tap];
    const aw_linear *consumers[AW_LIN_MAX];
    int n_cons = tap_consumers(c, e, tap, consumers);
    col_absmax(consumers, n_cons, s); /* s holds rw for now */
    if (at->fold == AW_FOLD_ROWS && aw_arch_fold_rows(c, tap) != in) {
        float *rw = malloc((size_t)in * sizeof *rw);
        AW_RETURN_IF(!rw, AW_ERR_NOMEM, "out of memory for a fold");
        memcpy(rw, s, (size_t)in * sizeof *rw);
        aw_status r = factors_rows_grouped(c, tap, st->absmax[tap], rw, alpha, &e->lin[at->producer], s);
        free(rw);
        return r;
    }
    for (int j = 0; j < in; j++) s[j] = aw_eq_factor(st->absmax[tap][j], s[j], alpha);
    /* The producer of a row fold is a quantized linear whose row j is
     * divided by s_j. A nearly silent channel (a ReLU that rarely fires)
     * gets a tiny s_j, and its row would become the largest of the producer
     * and set its per-tensor INT8 step for every other row. So no row may
     * end up larger than the largest row of the live channels after the
     * fold (live: range at least 1/16 of the median channel's). */
    if (at->fold == AW_FOLD_ROWS) clamp_row_fold(&e->lin[at->producer], st->absmax[tap], s, in);
    return AW_OK;
}

aw_status aw_fold_apply(const aw_model_config *c, aw_tap_id tap, aw_block *e, const float *s)
{
    const aw_arch_tap *at = &aw_arch_of(c)->tap[tap];
    int in = aw_arch_tap_width(c, tap);
    if (at->fold == AW_FOLD_ROWS) {
        /* the producer's rows get 1/s: attention is linear in V, ReLU
         * positive-homogeneous, the SwiGLU product linear in up (s > 0) */
        aw_linear *p = &e->lin[at->producer];
        int rows = aw_arch_fold_rows(c, tap);
        if (rows != in) {
            float *sr = malloc((size_t)rows * sizeof *sr);
            AW_RETURN_IF(!sr, AW_ERR_NOMEM, "out of memory for a fold");
            for (int j = 0; j < in; j++) sr[aw_arch_row_of(c, tap, j)] = s[j];
            aw_k_div_rows((float *)p->w, p->b, p->out, p->in, sr);
            free(sr);
        } else {
            aw_k_div_rows((float *)p->w, p->b, p->out, p->in, s);
        }
    } else {
        aw_k_div_vec(e->norm_g[at->producer], in, s);
        aw_k_div_vec(e->norm_b[at->producer], in, s);
    }
    const aw_linear *consumers[AW_LIN_MAX];
    int n_cons = tap_consumers(c, e, tap, consumers);
    for (int k = 0; k < n_cons; k++) {
        aw_linear *l = (aw_linear *)consumers[k];
        aw_k_scale_cols((float *)l->w, l->out, l->in, s);
    }
    return AW_OK;
}

aw_status aw_equalize_block(const aw_model_config *c, const aw_block *fp, const aw_stats *st,
                            const aw_method *m, aw_block *eq, float *const s[AW_TAP_COUNT])
{
    if (m->kind == AW_METHOD_AWQ || m->kind == AW_METHOD_AWEQ_SEARCH)
        return aw_equalize_searched(c, fp, st, m, eq, s, NULL);
    AW_RETURN_IF(eq->wdt != AW_DT_F32, AW_ERR_DTYPE, "equalized block must be F32");
    AW_TRY(aw_block_convert(eq, fp));
    for (int t = 0; t < AW_TAP_COUNT; t++)
        for (int j = 0; j < st->in[t]; j++) s[t][j] = 1.0f;
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        if (!aw_method_uses_tap(m, c, (aw_tap_id)t)) continue;
        AW_TRY(aw_fold_factors_aweq(c, (aw_tap_id)t, st, m->alpha, eq, s[t]));
        AW_TRY(aw_fold_apply(c, (aw_tap_id)t, eq, s[t]));
    }
    return AW_OK;
}

aw_status aw_equalize_with_factors(const aw_model_config *c, const aw_block *fp, float *const s[AW_TAP_COUNT],
                                   aw_block *eq)
{
    AW_RETURN_IF(eq->wdt != AW_DT_F32, AW_ERR_DTYPE, "equalized block must be F32");
    AW_TRY(aw_block_convert(eq, fp));
    /* a tap the method left alone has factors 1: dividing and multiplying
     * by 1 is exact */
    for (int t = 0; t < AW_TAP_COUNT; t++) AW_TRY(aw_fold_apply(c, (aw_tap_id)t, eq, s[t]));
    return AW_OK;
}

static void copy_rounded(float *dst, const float *src, int n, aw_dtype dt)
{
    for (int i = 0; i < n; i++) dst[i] = aw_round_to_dtype(src[i], dt);
}

aw_status aw_quantize_block(const aw_model_config *c, int layer, const aw_block *fp,
                            const aw_stats *st, const aw_method *m, aw_qblock *q)
{
    AW_RETURN_IF(st->tokens == 0, AW_ERR_VALIDATION, "layer %d: no calibration tokens observed", layer);
    if (aw_scheme_weight_only(&m->scheme)) return aw_quantize_block_wo(c, layer, fp, st, m, q);
    AW_RETURN_IF(aw_method_needs_gram(m), AW_ERR_ARG, "--method %s needs a weight-only scheme (--wbits)",
                 aw_method_names[m->kind]);
    AW_RETURN_IF(aw_scheme_weight_only(&q->scheme) || !q->lin[0].wq, AW_ERR_ARG,
                 "layer %d: the quantized block was made for a weight-only scheme, the method is W8A8", layer);
    aw_block eq;
    AW_TRY(aw_block_create(c, AW_DT_F32, &eq));
    size_t max_in = (size_t)aw_arch_max_width(c);
    double *mean = malloc(max_in * sizeof *mean);
    aw_status status = mean ? AW_OK : AW_FAIL(AW_ERR_NOMEM, "layer %d: out of memory", layer);
    if (status == AW_OK) status = aw_equalize_block(c, fp, st, m, &eq, q->s);
    if (status == AW_OK) {
        /* LayerNorms are stored in the checkpoint dtype: validate what is written */
        int d = c->hidden_size;
        for (int n = 0; n < AW_NORM_COUNT; n++) {
            copy_rounded(q->norm_g[n], eq.norm_g[n], d, m->param_dtype);
            copy_rounded(q->norm_b[n], eq.norm_b[n], d, m->param_dtype);
        }
        aw_qblock_set_out_scales(c, q);
    }
    for (int l = 0; l < eq.n_lin && status == AW_OK; l++) {
        const aw_linear *ln = &eq.lin[l];
        const float *w = ln->w;
        aw_qlinear *ql = &q->lin[l];
        aw_tap_id tap = aw_linear_tap(c, l);
        const float *s = q->s[tap];
        /* activation range and mean after the fold */
        float rx = 0.0f;
        for (int j = 0; j < ln->in; j++) {
            float r = st->absmax[tap][j] / s[j];
            rx = r > rx ? r : rx;
            mean[j] = st->sum[tap][j] / (double)st->tokens / (double)s[j];
        }
        ql->x_step = aw_round_to_dtype(aw_k_int8_step(rx), m->scale_dtype);
        ql->w_step = aw_round_to_dtype(aw_k_int8_step(aw_k_absmax(w, (size_t)ln->in * ln->out)), m->scale_dtype);
        if (!isfinite(ql->x_step) || !isfinite(ql->w_step) || ql->x_step <= 0 || ql->w_step <= 0) {
            status = AW_FAIL(AW_ERR_NONFINITE, "layer %d %s: quantization step is not finite (weights %g, input %g)",
                             layer, aw_arch_of(c)->lin[l].name, ql->w_step, ql->x_step);
            break;
        }
        aw_k_quantize_i8(w, (size_t)ln->in * ln->out, ql->w_step, ql->wq);
        for (int i = 0; i < ln->out; i++) {
            double delta = 0.0;
            if (m->bias_correction) {
                /* (Q(W') - W') E[x'] for output i */
                const float *wr = w + (size_t)i * ln->in;
                const int8_t *wq = ql->wq + (size_t)i * ln->in;
                for (int j = 0; j < ln->in; j++)
                    delta += ((double)wq[j] * ql->w_step - (double)wr[j]) * mean[j];
            }
            ql->bias[i] = aw_round_to_dtype((float)((double)ln->b[i] - delta), m->param_dtype);
            ql->bias_plain[i] = aw_round_to_dtype(ln->b[i], m->param_dtype);
        }
    }
    free(mean);
    aw_block_destroy(&eq);
    return status;
}
