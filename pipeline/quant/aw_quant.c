/* aw_quant.c - the methods' names, equalization (the folds at the family's
 * fold points), kept channels, INT8 and bias correction (see aw_quant.h);
 * coded schemes (weight-only, dynamic) and the searched methods are in
 * aw_quant_wo.c.
 *
 * Everything weight-sized runs through the ops table (aw_ops.h) on the
 * block in its memory; the host sees statistics-sized vectors only (column
 * and row ranges, factors, means, per-output corrections) and the
 * quantized block once, at the end. The host entries (aw_quantize_block,
 * aw_equalize_block, aw_fold_apply, ...) are the same code on aw_ops_cpu(),
 * whose device pointers are the host objects. */
#include "aw_quant.h"
#include "aw_quant_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_kernels.h"
#include "aw_quant_k.h"

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

aw_stats_level aw_method_stats_level(const aw_method *m)
{
    int dyn = m->scheme.act == AW_ACT_DYNAMIC;
    switch (m->kind) {
    case AW_METHOD_GPTQ: return AW_STATS_GRAM;
    /* with a dynamic scheme the search's objective runs on the token
     * sample; AWQ's factors still read the |x| sums */
    case AW_METHOD_AWQ: return dyn ? AW_STATS_ABSSUM : AW_STATS_GRAM;
    case AW_METHOD_AWEQ_SEARCH: return dyn ? AW_STATS_PLAIN : AW_STATS_GRAM;
    default: return AW_STATS_PLAIN;
    }
}

int aw_method_needs_gram(const aw_method *m) { return aw_method_stats_level(m) == AW_STATS_GRAM; }

aw_status aw_method_check_stats(const aw_method *m, const aw_stats *st, int layer)
{
    aw_stats_level need = aw_method_stats_level(m);
    int sample = aw_method_needs_sample(m) && (!st->with_sample || st->samp_rows < 1);
    if (aw_stats_level_of(st) >= need && !sample) return AW_OK;
    char where[32] = "";
    if (layer >= 0) snprintf(where, sizeof where, "layer %d: ", layer);
    if (aw_stats_level_of(st) < need)
        return AW_FAIL(AW_ERR_ARG, "%s--method %s needs the %s of the calibration statistics", where,
                       aw_method_names[m->kind], need == AW_STATS_GRAM ? "Gram matrices" : "|x| sums");
    return AW_FAIL(AW_ERR_ARG, "%s--method %s with dynamic activations needs a token sample of the calibration statistics",
                   where, aw_method_names[m->kind]);
}

int aw_method_needs_sample(const aw_method *m)
{
    return (m->kind == AW_METHOD_AWQ || m->kind == AW_METHOD_AWEQ_SEARCH) && m->scheme.act == AW_ACT_DYNAMIC;
}

int aw_scheme_same(const aw_scheme *a, const aw_scheme *b)
{
    return a->wbits == b->wbits && a->group == b->group && a->sym == b->sym && a->act == b->act &&
           a->abits == b->abits && a->agroup == b->agroup && a->keep_pct == b->keep_pct;
}

aw_status aw_method_check_keep(const aw_method *m)
{
    AW_RETURN_IF(m->scheme.keep_pct > 0 && m->kind != AW_METHOD_RTN && m->kind != AW_METHOD_SMOOTHQUANT &&
                     m->kind != AW_METHOD_AWEQ,
                 AW_ERR_ARG,
                 "--keep-salient works with --method rtn, smoothquant or aweq, not %s (its search or sweep "
                 "would have to leave the kept channels out)",
                 aw_method_names[m->kind]);
    return AW_OK;
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

/* ---- the device context ------------------------------------------------------------ */

aw_status aw_qdev_create(const aw_ops *o, const aw_model_config *c, int with_deq, aw_qdev *qd)
{
    memset(qd, 0, sizeof *qd);
    qd->o = o;
    const aw_arch *a = aw_arch_of(c);
    size_t dim = (size_t)aw_arch_max_width(c);
    for (int l = 0; l < a->n_lin; l++) {
        size_t i = (size_t)aw_arch_dim(c, a->lin[l].in), u = (size_t)aw_arch_dim(c, a->lin[l].out);
        dim = i > dim ? i : dim;
        dim = u > dim ? u : dim;
    }
    qd->dim = dim;
    /* doubles first: mean, delta (dim), acc; then floats: s, sr, r (dim),
     * one, deq (the largest linear) */
    size_t n_deq = with_deq ? aw_arch_max_linear(c) : 0;
    size_t bytes = (2 * dim + 1) * sizeof(double) + (3 * dim + 1 + n_deq) * sizeof(float);
    void *arena = NULL;
    AW_TRY(o->vt->alloc(o, &arena, bytes, "quantization scratch"));
    qd->arena = arena;
    qd->mean = arena;
    qd->delta = qd->mean + dim;
    qd->acc = qd->delta + dim;
    qd->s = (float *)(qd->acc + 1);
    qd->sr = qd->s + dim;
    qd->r = qd->sr + dim;
    qd->one = qd->r + dim;
    qd->deq = with_deq ? qd->one + 1 : NULL;
    qd->h = malloc(dim * (sizeof(double) + sizeof(float)));
    if (!qd->h) {
        aw_qdev_destroy(qd);
        return AW_FAIL(AW_ERR_NOMEM, "out of memory for quantization scratch");
    }
    qd->hd = (double *)qd->h;
    qd->h = (float *)(qd->hd + dim);
    return AW_OK;
}

void aw_qdev_destroy(aw_qdev *qd)
{
    if (!qd) return;
    if (qd->arena) qd->o->vt->release(qd->o, qd->arena);
    free(qd->hd);
    memset(qd, 0, sizeof *qd);
}

/* ---- folds -------------------------------------------------------------------------- */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* See aw_fold_factors_aweq: s_r >= rowmax_r / M, M = max over live rows of
 * rowmax_r / s_r. rx (n) are the rows' ranges, s (n) the factors (host);
 * the producer p in qd's memory (its row ranges come to the host). */
static aw_status clamp_row_fold(aw_qdev *qd, const aw_linear *p, const float *rx, float *s, int n)
{
    float *tmp = malloc((size_t)n * sizeof *tmp);
    if (!tmp) return AW_OK; /* the fold stays exact without the clamp */
    memcpy(tmp, rx, (size_t)n * sizeof *tmp);
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_float);
    float live = tmp[n / 2] / 16.0f;
    /* rowmax_j: p has n rows */
    const aw_ops *o = qd->o;
    aw_status st = o->vt->row_absmax(o, (const float *)p->w, p->out, p->in, qd->r);
    if (st == AW_OK) st = o->vt->to_host(o, tmp, qd->r, (size_t)n * sizeof *tmp);
    if (st != AW_OK) {
        free(tmp);
        return st;
    }
    float m = 0.0f;
    for (int j = 0; j < n; j++)
        if (rx[j] >= live && tmp[j] / s[j] > m) m = tmp[j] / s[j];
    for (int j = 0; j < n && m > 0.0f; j++) {
        float floor_j = tmp[j] / m;
        s[j] = s[j] < floor_j ? floor_j : s[j];
    }
    free(tmp);
    return AW_OK;
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
    int in = n_cons > 0 ? consumers[0]->in : 0;
    for (int j = 0; j < in; j++) rw[j] = 0.0f;
    for (int k = 0; k < n_cons; k++) aw_k_col_absmax(consumers[k]->w, consumers[k]->out, in, rw);
    return AW_OK;
}

/* Factors of a row fold whose producer has fewer rows than the tap has
 * channels (grouped-query attention): one per producer row r, from the
 * largest range and column over the tap channels j that read row r, then
 * expanded to the tap channels (s). */
static aw_status factors_rows_grouped(aw_qdev *qd, const aw_model_config *c, aw_tap_id tap, const float *rx_tap,
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
    aw_status st = clamp_row_fold(qd, p, rx, sr, rows);
    if (st == AW_OK)
        for (int j = 0; j < in; j++) s[j] = sr[aw_arch_row_of(c, tap, j)];
    free(sr);
    free(rx);
    return st;
}

aw_status aw_fold_factors_aweq_dev(aw_qdev *qd, const aw_model_config *c, aw_tap_id tap, const aw_stats *st,
                                   float alpha, const aw_block *e, float *s)
{
    const aw_ops *o = qd->o;
    const aw_arch_tap *at = &aw_arch_of(c)->tap[tap];
    int in = st->in[tap];
    const aw_linear *consumers[AW_LIN_MAX];
    int n_cons = tap_consumers(c, e, tap, consumers);
    /* rw_j = max over the consumers' column j of |W| */
    AW_TRY(o->vt->zero(o, qd->r, (size_t)in * sizeof(float)));
    for (int k = 0; k < n_cons; k++)
        AW_TRY(o->vt->col_absmax(o, consumers[k]->w, consumers[k]->out, in, qd->r));
    AW_TRY(o->vt->to_host(o, s, qd->r, (size_t)in * sizeof(float))); /* s holds rw for now */
    if (at->fold == AW_FOLD_ROWS && aw_arch_fold_rows(c, tap) != in) {
        float *rw = malloc((size_t)in * sizeof *rw);
        AW_RETURN_IF(!rw, AW_ERR_NOMEM, "out of memory for a fold");
        memcpy(rw, s, (size_t)in * sizeof *rw);
        aw_status r = factors_rows_grouped(qd, c, tap, st->absmax[tap], rw, alpha, &e->lin[at->producer], s);
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
    if (at->fold == AW_FOLD_ROWS) AW_TRY(clamp_row_fold(qd, &e->lin[at->producer], st->absmax[tap], s, in));
    return AW_OK;
}

aw_status aw_fold_apply_dev(aw_qdev *qd, const aw_model_config *c, aw_tap_id tap, aw_block *e, const float *s)
{
    const aw_ops *o = qd->o;
    const aw_arch_tap *at = &aw_arch_of(c)->tap[tap];
    int in = aw_arch_tap_width(c, tap);
    AW_TRY(o->vt->to_dev(o, qd->s, s, (size_t)in * sizeof *s));
    if (at->fold == AW_FOLD_ROWS) {
        /* the producer's rows get 1/s: attention is linear in V, ReLU
         * positive-homogeneous, the SwiGLU product linear in up (s > 0) */
        aw_linear *p = &e->lin[at->producer];
        int rows = aw_arch_fold_rows(c, tap);
        if (rows != in) {
            float *sr = qd->h; /* rows <= dim */
            for (int j = 0; j < in; j++) sr[aw_arch_row_of(c, tap, j)] = s[j];
            AW_TRY(o->vt->to_dev(o, qd->sr, sr, (size_t)rows * sizeof *sr));
            /* to_dev may return before the bytes left qd->h: wait before it is reused */
            AW_TRY(o->vt->sync(o));
            AW_TRY(o->vt->div_rows(o, (float *)p->w, p->b, p->out, p->in, qd->sr));
        } else {
            AW_TRY(o->vt->div_rows(o, (float *)p->w, p->b, p->out, p->in, qd->s));
        }
    } else {
        /* v[i] /= s[i]: one row of a column division */
        AW_TRY(o->vt->div_cols(o, e->norm_g[at->producer], e->norm_g[at->producer], 1, in, qd->s));
        AW_TRY(o->vt->div_cols(o, e->norm_b[at->producer], e->norm_b[at->producer], 1, in, qd->s));
    }
    const aw_linear *consumers[AW_LIN_MAX];
    int n_cons = tap_consumers(c, e, tap, consumers);
    for (int k = 0; k < n_cons; k++) {
        aw_linear *l = (aw_linear *)consumers[k];
        AW_TRY(o->vt->scale_cols(o, (float *)l->w, l->out, l->in, qd->s));
    }
    return AW_OK;
}

aw_status aw_block_widen_dev(const aw_ops *o, const aw_block *src, aw_block *eq)
{
    AW_RETURN_IF(eq->wdt != AW_DT_F32, AW_ERR_DTYPE, "equalized block must be F32");
    /* biases and norms lead both arenas, in the same order */
    size_t small = (size_t)((const unsigned char *)src->lin[0].w - (const unsigned char *)src->arena);
    AW_TRY(o->vt->copy(o, eq->arena, src->arena, small));
    for (int l = 0; l < src->n_lin; l++)
        AW_TRY(o->vt->widen(o, src->lin[l].w, src->wdt, eq->lin[l].w, (size_t)src->lin[l].in * src->lin[l].out));
    return AW_OK;
}

aw_status aw_equalize_block_dev(aw_qdev *qd, const aw_model_config *c, const aw_block *fp, const aw_stats *st,
                                const aw_method *m, aw_block *eq, float *const s[AW_TAP_COUNT])
{
    if (m->kind == AW_METHOD_AWQ || m->kind == AW_METHOD_AWEQ_SEARCH)
        return aw_equalize_searched_dev(qd, c, fp, st, m, eq, s, NULL);
    AW_TRY(aw_block_widen_dev(qd->o, fp, eq));
    for (int t = 0; t < AW_TAP_COUNT; t++)
        for (int j = 0; j < st->in[t]; j++) s[t][j] = 1.0f;
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        if (!aw_method_uses_tap(m, c, (aw_tap_id)t)) continue;
        AW_TRY(aw_fold_factors_aweq_dev(qd, c, (aw_tap_id)t, st, m->alpha, eq, s[t]));
        AW_TRY(aw_fold_apply_dev(qd, c, (aw_tap_id)t, eq, s[t]));
    }
    return AW_OK;
}

/* ---- the host entries: the same code on aw_ops_cpu() ------------------------------------- */

aw_status aw_fold_factors_aweq(const aw_model_config *c, aw_tap_id tap, const aw_stats *st, float alpha,
                               const aw_block *e, float *s)
{
    aw_qdev qd;
    AW_TRY(aw_qdev_create(aw_ops_cpu(), c, 0, &qd));
    aw_status r = aw_fold_factors_aweq_dev(&qd, c, tap, st, alpha, e, s);
    aw_qdev_destroy(&qd);
    return r;
}

aw_status aw_fold_apply(const aw_model_config *c, aw_tap_id tap, aw_block *e, const float *s)
{
    aw_qdev qd;
    AW_TRY(aw_qdev_create(aw_ops_cpu(), c, 0, &qd));
    aw_status r = aw_fold_apply_dev(&qd, c, tap, e, s);
    aw_qdev_destroy(&qd);
    return r;
}

aw_status aw_equalize_block(const aw_model_config *c, const aw_block *fp, const aw_stats *st,
                            const aw_method *m, aw_block *eq, float *const s[AW_TAP_COUNT])
{
    aw_qdev qd;
    AW_TRY(aw_qdev_create(aw_ops_cpu(), c, 0, &qd));
    aw_status r = aw_equalize_block_dev(&qd, c, fp, st, m, eq, s);
    aw_qdev_destroy(&qd);
    return r;
}

aw_status aw_equalize_with_factors(const aw_model_config *c, const aw_block *fp, float *const s[AW_TAP_COUNT],
                                   aw_block *eq)
{
    AW_RETURN_IF(eq->wdt != AW_DT_F32, AW_ERR_DTYPE, "equalized block must be F32");
    aw_qdev qd;
    AW_TRY(aw_qdev_create(aw_ops_cpu(), c, 0, &qd));
    aw_status r = aw_block_widen_dev(qd.o, fp, eq);
    /* a tap the method left alone has factors 1: dividing and multiplying
     * by 1 is exact */
    for (int t = 0; t < AW_TAP_COUNT && r == AW_OK; t++) r = aw_fold_apply_dev(&qd, c, (aw_tap_id)t, eq, s[t]);
    aw_qdev_destroy(&qd);
    return r;
}

aw_status aw_quantize_block(const aw_model_config *c, int layer, const aw_block *fp,
                            const aw_stats *st, const aw_method *m, aw_qblock *q)
{
    return aw_quantize_block_ops(aw_ops_cpu(), c, layer, fp, st, m, q, q);
}

aw_status aw_quantize_block_wo(const aw_model_config *c, int layer, const aw_block *fp, const aw_stats *st,
                               const aw_method *m, aw_qblock *q)
{
    AW_RETURN_IF(st->tokens == 0, AW_ERR_VALIDATION, "layer %d: no calibration tokens observed", layer);
    return aw_quantize_block_wo_ops(aw_ops_cpu(), c, layer, fp, st, m, q, q);
}

/* ---- the quantized block's small parts ---------------------------------------------------- */

static void copy_rounded(float *dst, const float *src, int n, aw_dtype dt)
{
    for (int i = 0; i < n; i++) dst[i] = aw_round_to_dtype(src[i], dt);
}

aw_status aw_qdev_put_small(aw_qdev *qd, const aw_model_config *c, const aw_block *eq, const aw_method *m,
                            aw_qblock *dq, aw_qblock *q)
{
    const aw_ops *o = qd->o;
    /* norms are stored in the checkpoint dtype: validate what is written */
    int d = c->hidden_size;
    float *h = qd->h; /* d <= dim */
    for (int n = 0; n < AW_NORM_COUNT; n++) {
        AW_TRY(o->vt->to_host(o, h, eq->norm_g[n], (size_t)d * sizeof *h));
        copy_rounded(q->norm_g[n], h, d, m->param_dtype);
        AW_TRY(o->vt->to_host(o, h, eq->norm_b[n], (size_t)d * sizeof *h));
        copy_rounded(q->norm_b[n], h, d, m->param_dtype);
        AW_TRY(o->vt->to_dev(o, dq->norm_g[n], q->norm_g[n], (size_t)d * sizeof(float)));
        AW_TRY(o->vt->to_dev(o, dq->norm_b[n], q->norm_b[n], (size_t)d * sizeof(float)));
    }
    aw_qblock_set_out_scales(c, q);
    for (int t = 0; t < AW_TAP_COUNT; t++)
        AW_TRY(o->vt->to_dev(o, dq->s[t], q->s[t], (size_t)aw_arch_tap_width(c, (aw_tap_id)t) * sizeof(float)));
    for (int l = 0; l < q->n_lin; l++)
        if (q->out_s[l]) AW_TRY(o->vt->to_dev(o, dq->out_s[l], q->out_s[l], (size_t)q->lin[l].out * sizeof(float)));
    return AW_OK;
}

aw_status aw_qdev_put_bias(aw_qdev *qd, const aw_linear *ln, const double *delta, const aw_method *m,
                           aw_qlinear *dql, aw_qlinear *ql)
{
    const aw_ops *o = qd->o;
    float *b = qd->h; /* out <= dim */
    AW_TRY(o->vt->to_host(o, b, ln->b, (size_t)ln->out * sizeof *b));
    for (int i = 0; i < ln->out; i++) {
        ql->bias[i] = aw_round_to_dtype((float)((double)b[i] - (delta ? delta[i] : 0.0)), m->param_dtype);
        ql->bias_plain[i] = aw_round_to_dtype(b[i], m->param_dtype);
    }
    AW_TRY(o->vt->to_dev(o, dql->bias, ql->bias, (size_t)ln->out * sizeof(float)));
    return o->vt->to_dev(o, dql->bias_plain, ql->bias_plain, (size_t)ln->out * sizeof(float));
}

/* ---- kept channels ------------------------------------------------------------------- */

typedef struct {
    float key;
    int j;
} keep_key;

/* The larger range first, ties to the lower index. */
static int cmp_keep(const void *a, const void *b)
{
    const keep_key *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    return (x->j > y->j) - (x->j < y->j);
}

static int cmp_int32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

aw_status aw_keep_channels_dev(aw_qdev *qd, const aw_model_config *c, const aw_stats *st, const aw_method *m,
                               aw_block *eq, aw_qblock *dq, aw_qblock *q)
{
    const aw_ops *o = qd->o;
    const aw_arch *a = aw_arch_of(c);
    int same = dq->arena == q->arena;
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        int in = st->in[t], nk = q->n_keep[t];
        if (!q->keep_mask[t]) continue;
        AW_RETURN_IF(nk > in || (nk > 0 && !q->keep_idx[t]), AW_ERR_ARG,
                     "%s: %d kept channels of %d, or a block without room for them", a->tap[t].name, nk, in);
        if (nk <= 0) {
            /* a share that rounds to no channel: nothing kept, all quantized */
            for (int j = 0; j < in; j++) q->keep_mask[t][j] = 1.0f;
            if (!same) AW_TRY(o->vt->to_dev(o, dq->keep_mask[t], q->keep_mask[t], (size_t)in * sizeof(float)));
            continue;
        }
        keep_key *k = malloc((size_t)in * sizeof *k);
        AW_RETURN_IF(!k, AW_ERR_NOMEM, "out of memory for the kept channels");
        for (int j = 0; j < in; j++) {
            k[j].key = st->absmax[t][j] / q->s[t][j];
            if (k[j].key != k[j].key) k[j].key = INFINITY; /* a NaN range is kept (never happens: checked) */
            k[j].j = j;
        }
        qsort(k, (size_t)in, sizeof *k, cmp_keep);
        for (int i = 0; i < nk; i++) q->keep_idx[t][i] = k[i].j;
        free(k);
        qsort(q->keep_idx[t], (size_t)nk, sizeof(int32_t), cmp_int32);
        for (int j = 0; j < in; j++) q->keep_mask[t][j] = 1.0f;
        for (int i = 0; i < nk; i++) q->keep_mask[t][q->keep_idx[t][i]] = 0.0f;
        if (!same) {
            AW_TRY(o->vt->to_dev(o, dq->keep_idx[t], q->keep_idx[t], (size_t)nk * sizeof(int32_t)));
            AW_TRY(o->vt->to_dev(o, dq->keep_mask[t], q->keep_mask[t], (size_t)in * sizeof(float)));
        }
        for (int l = 0; l < eq->n_lin; l++) {
            if ((int)a->lin[l].tap != t) continue;
            aw_linear *ln = &eq->lin[l];
            aw_qlinear *dql = &dq->lin[l], *ql = &q->lin[l];
            /* the kept columns (rows of W are its outputs), then rounded
             * to the dtype they are written in */
            AW_TRY(o->vt->gather_cols(o, ln->w, ln->out, ln->in, dq->keep_idx[t], nk, dql->wkeep));
            if (m->param_dtype != AW_DT_F32) {
                size_t n = (size_t)ln->out * nk;
                if (!same) AW_TRY(o->vt->to_host(o, ql->wkeep, dql->wkeep, n * sizeof(float)));
                for (size_t i = 0; i < n; i++) ql->wkeep[i] = aw_round_to_dtype(ql->wkeep[i], m->param_dtype);
                if (!same) AW_TRY(o->vt->to_dev(o, dql->wkeep, ql->wkeep, n * sizeof(float)));
            }
            /* and zero in the weights that are quantized */
            AW_TRY(o->vt->scale_cols(o, (float *)ln->w, ln->out, ln->in, dq->keep_mask[t]));
        }
    }
    /* to_dev may return before the bytes left the host arrays */
    return o->vt->sync(o);
}

void aw_keep_mean(const aw_qblock *q, aw_tap_id tap, double *mean, int in)
{
    if (q->n_keep[tap] <= 0) return;
    for (int j = 0; j < in; j++)
        if (q->keep_mask[tap][j] == 0.0f) mean[j] = 0.0;
}

/* ---- W8A8 ----------------------------------------------------------------------------- */

static aw_status quantize_w8a8(aw_qdev *qd, const aw_model_config *c, int layer, const aw_block *dfp,
                               const aw_stats *st, const aw_method *m, aw_block *eq, aw_qblock *dq, aw_qblock *q)
{
    const aw_ops *o = qd->o;
    double *mean = qd->hd;
    AW_TRY(aw_equalize_block_dev(qd, c, dfp, st, m, eq, q->s));
    AW_TRY(aw_qdev_put_small(qd, c, eq, m, dq, q));
    AW_TRY(aw_keep_channels_dev(qd, c, st, m, eq, dq, q));
    for (int l = 0; l < eq->n_lin; l++) {
        const aw_linear *ln = &eq->lin[l];
        const float *w = ln->w;
        aw_qlinear *ql = &q->lin[l], *dql = &dq->lin[l];
        aw_tap_id tap = aw_linear_tap(c, l);
        const float *s = q->s[tap];
        /* activation range and mean after the fold (the kept channels'
         * columns are exact: neither counts there) */
        const float *mask = q->keep_mask[tap];
        float rx = 0.0f;
        for (int j = 0; j < ln->in; j++) {
            float r = st->absmax[tap][j] / s[j];
            if (!mask || mask[j] != 0.0f) rx = r > rx ? r : rx;
            mean[j] = st->sum[tap][j] / (double)st->tokens / (double)s[j];
        }
        aw_keep_mean(q, tap, mean, ln->in);
        float wmax = 0.0f;
        AW_TRY(o->vt->absmax(o, w, (size_t)ln->in * ln->out, qd->one));
        AW_TRY(o->vt->to_host(o, &wmax, qd->one, sizeof wmax));
        ql->x_step = aw_round_to_dtype(aw_k_int8_step(rx), m->scale_dtype);
        ql->w_step = aw_round_to_dtype(aw_k_int8_step(wmax), m->scale_dtype);
        dql->x_step = ql->x_step;
        dql->w_step = ql->w_step;
        AW_RETURN_IF(!isfinite(ql->x_step) || !isfinite(ql->w_step) || ql->x_step <= 0 || ql->w_step <= 0,
                     AW_ERR_NONFINITE, "layer %d %s: quantization step is not finite (weights %g, input %g)", layer,
                     aw_arch_of(c)->lin[l].name, ql->w_step, ql->x_step);
        AW_TRY(o->vt->quantize_i8(o, w, (size_t)ln->in * ln->out, ql->w_step, dql->wq));
        const double *delta = NULL;
        if (m->bias_correction) {
            /* (Q(W') - W') E[x'] per output */
            AW_TRY(o->vt->to_dev(o, qd->mean, mean, (size_t)ln->in * sizeof *mean));
            AW_TRY(o->vt->bias_delta_i8(o, w, dql->wq, ql->w_step, qd->mean, ln->out, ln->in, qd->delta));
            AW_TRY(o->vt->to_host(o, mean, qd->delta, (size_t)ln->out * sizeof *mean)); /* mean is free now */
            delta = mean;
        }
        AW_TRY(aw_qdev_put_bias(qd, ln, delta, m, dql, ql));
    }
    return AW_OK;
}

aw_status aw_quantize_block_ops(const aw_ops *o, const aw_model_config *c, int layer, const aw_block *dfp,
                                const aw_stats *st, const aw_method *m, aw_qblock *dq, aw_qblock *q)
{
    AW_RETURN_IF(st->tokens == 0, AW_ERR_VALIDATION, "layer %d: no calibration tokens observed", layer);
    if (aw_scheme_coded(&m->scheme)) return aw_quantize_block_wo_ops(o, c, layer, dfp, st, m, dq, q);
    AW_RETURN_IF(aw_method_needs_gram(m) || aw_method_needs_sample(m), AW_ERR_ARG,
                 "--method %s needs a weight-only scheme (--wbits) or dynamic activations (--adynamic)",
                 aw_method_names[m->kind]);
    AW_TRY(aw_scheme_check(&m->scheme));
    AW_TRY(aw_method_check_keep(m));
    AW_RETURN_IF(!aw_scheme_same(&q->scheme, &m->scheme) || aw_scheme_coded(&q->scheme) || !q->lin[0].wq,
                 AW_ERR_ARG, "layer %d: the quantized block was made for another scheme than the method's W8A8",
                 layer);
    aw_qdev qd;
    AW_TRY(aw_qdev_create(o, c, 0, &qd));
    aw_block eq;
    aw_status status = aw_block_dev_create(o, c, AW_DT_F32, &eq);
    if (status == AW_OK) status = quantize_w8a8(&qd, c, layer, dfp, st, m, &eq, dq, q);
    /* the result to the host, once */
    if (status == AW_OK) status = aw_qblock_to_host(o, c, dq, q);
    aw_block_dev_destroy(o, &eq);
    aw_qdev_destroy(&qd);
    return status;
}
