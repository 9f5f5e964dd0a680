/* aw_quant.c - equalization, INT8 and bias correction (see aw_quant.h). */
#include "aw_quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aw_kernels.h"

const char *const aw_method_names[AW_METHOD_COUNT] = {"rtn", "smoothquant", "aweq"};

aw_status aw_method_parse(const char *s, aw_method_kind *out)
{
    for (int i = 0; i < AW_METHOD_COUNT; i++) {
        if (strcmp(s, aw_method_names[i]) == 0) {
            *out = (aw_method_kind)i;
            return AW_OK;
        }
    }
    return AW_FAIL(AW_ERR_ARG, "--method '%s': expected aweq, smoothquant or rtn", s);
}

int aw_method_uses_tap(const aw_method *m, const aw_model_config *c, aw_tap_id t)
{
    switch (m->kind) {
    case AW_METHOD_AWEQ: return 1;
    case AW_METHOD_SMOOTHQUANT: return aw_arch_of(c)->tap[t].smoothquant;
    default: return 0;
    }
}

/* The observer's targets: the host arrays themselves. */
static void stats_on_host(aw_stats *s)
{
    s->ops = aw_ops_cpu();
    s->d_absmax = s->absmax[0];
    s->d_part = s->part;
    s->d_nonfinite = &s->nonfinite;
}

aw_status aw_stats_create(const aw_model_config *c, aw_stats *s)
{
    memset(s, 0, sizeof *s);
    int in[AW_TAP_COUNT];
    size_t n = 0;
    for (int t = 0; t < AW_TAP_COUNT; t++) n += (size_t)(in[t] = aw_arch_tap_width(c, (aw_tap_id)t));
    s->arena = calloc(1, (2 * n + 1) * sizeof(double) + n * sizeof(float));
    AW_RETURN_IF(!s->arena, AW_ERR_NOMEM, "out of memory for statistics");
    s->n_sum = n;
    s->sum_all = s->arena;
    s->part = s->sum_all + n;
    double *pd = s->sum_all;
    float *pf = (float *)(s->part + n + 1);
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        s->in[t] = in[t];
        s->sum[t] = pd, pd += in[t];
        s->absmax[t] = pf, pf += in[t];
    }
    stats_on_host(s);
    return AW_OK;
}

static void stats_detach(aw_stats *s)
{
    if (s->ops && !s->ops->host) {
        s->ops->vt->release(s->ops, s->d_absmax);
        s->ops->vt->release(s->ops, s->d_part);
        s->ops->vt->release(s->ops, s->d_nonfinite);
    }
    stats_on_host(s);
}

void aw_stats_destroy(aw_stats *s)
{
    if (!s) return;
    if (s->arena) stats_detach(s);
    free(s->arena);
    memset(s, 0, sizeof *s);
}

aw_status aw_stats_attach(aw_stats *s, const aw_ops *o)
{
    stats_detach(s);
    if (o->host) return AW_OK;
    s->d_absmax = NULL, s->d_part = NULL, s->d_nonfinite = NULL;
    s->ops = o;
    AW_TRY(o->vt->alloc(o, (void **)&s->d_absmax, s->n_sum * sizeof(float), "activation ranges"));
    AW_TRY(o->vt->alloc(o, (void **)&s->d_part, s->n_sum * sizeof(double), "activation sums"));
    AW_TRY(o->vt->alloc(o, (void **)&s->d_nonfinite, sizeof(unsigned long long), "a counter"));
    AW_TRY(o->vt->to_dev(o, s->d_absmax, s->absmax[0], s->n_sum * sizeof(float)));
    AW_TRY(o->vt->zero(o, s->d_part, s->n_sum * sizeof(double)));
    return o->vt->to_dev(o, s->d_nonfinite, &s->nonfinite, sizeof(unsigned long long));
}

aw_status aw_stats_fetch(aw_stats *s)
{
    const aw_ops *o = s->ops;
    AW_TRY(o->vt->to_host(o, s->absmax[0], s->d_absmax, s->n_sum * sizeof(float)));
    return o->vt->to_host(o, &s->nonfinite, s->d_nonfinite, sizeof(unsigned long long));
}

aw_status aw_stats_observe(void *ctx, aw_tap_id tap, const float *x, int T, int in)
{
    aw_stats *s = ctx;
    const aw_ops *o = s->ops;
    size_t off = (size_t)(s->sum[tap] - s->sum_all);
    if (tap == AW_TAP_ATTN_IN) s->part[s->n_sum] += (double)T; /* the token count stays on the host */
    return o->vt->stats_accum(o, x, T, in, s->d_absmax + off, s->d_part + off, s->d_nonfinite);
}

aw_status aw_stats_take_part(aw_stats *s, double *dst)
{
    const aw_ops *o = s->ops;
    AW_TRY(o->vt->to_host(o, dst, s->d_part, s->n_sum * sizeof(double)));
    dst[s->n_sum] = s->part[s->n_sum];
    s->part[s->n_sum] = 0.0;
    return o->vt->zero(o, s->d_part, s->n_sum * sizeof(double));
}

void aw_stats_add_part(aw_stats *s, const double *part)
{
    for (size_t i = 0; i < s->n_sum; i++) s->sum_all[i] += part[i];
    s->tokens += (uint64_t)part[s->n_sum];
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

/* See fold_tap: s_r >= rowmax_r / M, M = max over live rows of
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
 * largest range and column over the tap channels j that read row r. */
static aw_status fold_rows_grouped(const aw_model_config *c, aw_tap_id tap, const float *rx_tap,
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
    aw_k_div_rows((float *)p->w, p->b, p->out, p->in, sr);
    free(sr);
    free(rx);
    return AW_OK;
}

/* Compute and apply the fold of one tap to the f32 block e; s gets the factors. */
static aw_status fold_tap(const aw_model_config *c, aw_tap_id tap, const aw_stats *st, float alpha,
                          aw_block *e, float *s)
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
        aw_status r = fold_rows_grouped(c, tap, st->absmax[tap], rw, alpha, &e->lin[at->producer], s);
        free(rw);
        AW_TRY(r);
    } else {
        for (int j = 0; j < in; j++) s[j] = aw_eq_factor(st->absmax[tap][j], s[j], alpha);
        if (at->fold == AW_FOLD_ROWS) {
            /* The producer here is a quantized linear whose row j is divided by
             * s_j. A nearly silent channel (a ReLU that rarely fires) gets a
             * tiny s_j, and its row would become the largest of the producer
             * and set its per-tensor INT8 step for every other row. So no row
             * may end up larger than the largest row of the live channels after
             * the fold (live: range at least 1/16 of the median channel's). */
            aw_linear *p = &e->lin[at->producer];
            clamp_row_fold(p, st->absmax[tap], s, in);
            /* the producer's rows get 1/s: attention is linear in V, ReLU
             * positive-homogeneous, the SwiGLU product linear in up (s > 0) */
            aw_k_div_rows((float *)p->w, p->b, p->out, p->in, s);
        } else {
            aw_k_div_vec(e->norm_g[at->producer], in, s);
            aw_k_div_vec(e->norm_b[at->producer], in, s);
        }
    }
    for (int k = 0; k < n_cons; k++) {
        aw_linear *l = (aw_linear *)consumers[k];
        aw_k_scale_cols((float *)l->w, l->out, l->in, s);
    }
    return AW_OK;
}

aw_status aw_equalize_block(const aw_model_config *c, const aw_block *fp, const aw_stats *st,
                            const aw_method *m, aw_block *eq, float *const s[AW_TAP_COUNT])
{
    AW_RETURN_IF(eq->wdt != AW_DT_F32, AW_ERR_DTYPE, "equalized block must be F32");
    AW_TRY(aw_block_convert(eq, fp));
    for (int t = 0; t < AW_TAP_COUNT; t++)
        for (int j = 0; j < st->in[t]; j++) s[t][j] = 1.0f;
    for (int t = 0; t < AW_TAP_COUNT; t++)
        if (aw_method_uses_tap(m, c, (aw_tap_id)t)) AW_TRY(fold_tap(c, (aw_tap_id)t, st, m->alpha, eq, s[t]));
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
