/* aw_quant_wo.c - weight-only schemes (aw_quant.h, aw_quantize_block_wo)
 * and the searched folds of awq and aweq+search (aw_quant_int.h).
 *
 *   rtn          no fold; group quantization; bias as is
 *   smoothquant  its folds (norm taps, alpha); group quantization
 *   aweq         AWEQ's folds at every tap (alpha); group quantization; bias
 *                correction b' = b - (Q(W') - W') E[x'] with the dequantized
 *                weights
 *   awq          per tap, s = s_X^alpha normalized (AutoAWQ), alpha searched
 *                on the grid; group quantization; no bias correction
 *   aweq+search  per tap, AWEQ's factor with alpha searched on the grid;
 *                group quantization; bias correction as aweq
 *   gptq         no fold; GPTQ's sweep with the tap's Gram matrix; bias as is
 * Dynamic schemes (integer activations at run time) are the same, and
 * their searches (awq, aweq+search) use the sampled objective with the
 * activation quantizer inside (aw_samp_obj); each linear also gets its
 * signed values wq. Kept channels (rtn, smoothquant, aweq) are taken out
 * after the folds, before any step (aw_keep_channels_dev).
 * Bias correction needs m->bias_correction (the command line sets it for
 * aweq and aweq+search); awq and gptq never correct. The weights' work runs
 * through the ops table on the block in its memory (aw_quant.c); GPTQ's
 * plan (from the Gram matrix: statistics) is made on the host. On the CPU
 * everything is sequential or OpenBLAS with the process's fixed thread
 * count: the same bytes every run.
 */
#include "aw_quant.h"
#include "aw_quant_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_kernels.h"
#include "aw_lowbit.h"

void aw_awq_factors(const aw_model_config *c, aw_tap_id tap, const aw_stats *st, float alpha, float *s)
{
    int in = st->in[tap];
    const aw_arch_tap *at = &aw_arch_of(c)->tap[tap];
    if ((at->fold == AW_FOLD_ROWS && aw_arch_fold_rows(c, tap) != in) || st->tokens == 0 || !st->abssum[tap]) {
        for (int j = 0; j < in; j++) s[j] = 1.0f;
        return;
    }
    double lo = INFINITY, hi = 0.0;
    for (int j = 0; j < in; j++) {
        double sx = st->abssum[tap][j] / (double)st->tokens;
        double v = isfinite(sx) ? pow(sx, (double)alpha) : 1.0;
        if (!(v >= 1e-4)) v = 1e-4; /* AutoAWQ's clamp; a dead channel */
        if (!isfinite(v)) v = 1.0;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    double norm = sqrt(hi * lo);
    for (int j = 0; j < in; j++) {
        double sx = st->abssum[tap][j] / (double)st->tokens;
        double v = isfinite(sx) ? pow(sx, (double)alpha) : 1.0;
        if (!(v >= 1e-4)) v = 1e-4;
        if (!isfinite(v)) v = 1.0;
        v /= norm;
        v = v < 1e-5 ? 1e-5 : v > 1e5 ? 1e5 : v; /* folded values stay representable */
        s[j] = (float)v;
    }
}

aw_status aw_search_objective_dev(aw_qdev *qd, const aw_model_config *c, const aw_block *e, const aw_stats *st,
                                  const aw_method *m, aw_tap_id tap, const float *s, const double *G, double *obj)
{
    const aw_ops *o = qd->o;
    const aw_scheme *sc = &m->scheme;
    AW_RETURN_IF(!st->with_gram || !st->gram[tap], AW_ERR_ARG,
                 "the scale search needs Gram matrices (aw_stats with_gram)");
    AW_RETURN_IF(!aw_scheme_weight_only(sc), AW_ERR_ARG, "the scale search needs a weight-only scheme");
    AW_RETURN_IF(e->wdt != AW_DT_F32, AW_ERR_DTYPE, "the scale search needs an F32 block");
    const aw_arch *a = aw_arch_of(c);
    int in = st->in[tap];
    AW_TRY(o->vt->to_dev(o, qd->s, s, (size_t)in * sizeof *s));
    AW_TRY(o->vt->zero(o, qd->acc, sizeof(double)));
    for (int l = 0; l < a->n_lin; l++) {
        if (a->lin[l].tap != tap) continue;
        const aw_linear *ln = &e->lin[l];
        AW_TRY(o->vt->search_err(o, ln->w, ln->out, in, qd->s, G, sc->group, sc->wbits, sc->sym, m->scale_dtype,
                                 qd->acc));
    }
    return o->vt->to_host(o, obj, qd->acc, sizeof *obj);
}

void aw_samp_obj_destroy(aw_samp_obj *so)
{
    if (!so) return;
    if (so->arena) so->o->vt->release(so->o, so->arena);
    memset(so, 0, sizeof *so);
}

/* Bytes of a sampled objective's arena at tap: n rows, the consumers'
 * outputs summed (yref) and largest (maxo). */
static size_t samp_obj_bytes(int n, int in, size_t yref, size_t maxo, const aw_scheme *sc)
{
    size_t ng = (size_t)aw_scheme_groups(sc, in), nx = (size_t)n * in;
    /* doubles, then floats, then bytes */
    size_t nf = 2 * nx + yref + (size_t)n * maxo + maxo * in + (size_t)in + maxo * ng;
    return 2 * sizeof(double) + nf * sizeof(float) + maxo * ng + maxo * in;
}

uint64_t aw_search_sample_bytes(const aw_model_config *c, const aw_scheme *sc, int n_samp)
{
    const aw_arch *a = aw_arch_of(c);
    uint64_t most = 0;
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        size_t yref = 0, maxo = 0;
        for (int l = 0; l < a->n_lin; l++) {
            if ((int)a->lin[l].tap != t) continue;
            size_t out = (size_t)aw_arch_dim(c, a->lin[l].out);
            yref += (size_t)n_samp * out;
            maxo = out > maxo ? out : maxo;
        }
        uint64_t b = samp_obj_bytes(n_samp, aw_arch_tap_width(c, (aw_tap_id)t), yref, maxo, sc);
        most = b > most ? b : most;
    }
    return most;
}

aw_status aw_samp_obj_create(const aw_ops *o, const aw_model_config *c, const aw_block *e, const aw_stats *st,
                             const aw_method *m, aw_tap_id tap, aw_samp_obj *so)
{
    memset(so, 0, sizeof *so);
    const aw_scheme *sc = &m->scheme;
    AW_RETURN_IF(sc->act != AW_ACT_DYNAMIC, AW_ERR_ARG, "the sampled objective needs dynamic activations");
    AW_RETURN_IF(!st->with_sample || st->samp_rows < 1, AW_ERR_ARG,
                 "--method %s with dynamic activations needs a token sample of the calibration statistics",
                 aw_method_names[m->kind]);
    AW_RETURN_IF(e->wdt != AW_DT_F32, AW_ERR_DTYPE, "the scale search needs an F32 block");
    const aw_arch *a = aw_arch_of(c);
    int n = st->samp_rows, in = st->in[tap];
    size_t yref = 0, maxo = 0;
    so->o = o;
    so->tap = tap;
    so->n = n;
    so->in = in;
    for (int l = 0; l < a->n_lin; l++) {
        if (a->lin[l].tap != tap) continue;
        so->lin[so->n_cons] = l;
        so->yoff[so->n_cons++] = yref;
        yref += (size_t)n * e->lin[l].out;
        maxo = (size_t)e->lin[l].out > maxo ? (size_t)e->lin[l].out : maxo;
    }
    size_t ng = (size_t)aw_scheme_groups(sc, in), nx = (size_t)n * in;
    size_t bytes = samp_obj_bytes(n, in, yref, maxo, sc);
    void *arena = NULL;
    AW_TRY(o->vt->alloc(o, &arena, bytes, "the sampled search objective"));
    so->arena = arena;
    so->err = arena;
    so->x = (float *)(so->err + 2);
    so->xq = so->x + nx;
    so->yref = so->xq + nx;
    so->y = so->yref + yref;
    so->w = so->y + (size_t)n * maxo;
    so->s = so->w + maxo * in;
    so->step = so->s + in;
    so->zero = (uint8_t *)(so->step + maxo * ng);
    so->codes = so->zero + maxo * ng;
    aw_status r = o->vt->to_dev(o, so->x, st->sample[tap], nx * sizeof(float));
    /* X_s W^T of every consumer, once */
    for (int k = 0; k < so->n_cons && r == AW_OK; k++) {
        const aw_linear *ln = &e->lin[so->lin[k]];
        r = o->vt->linear(o, so->x, ln->w, AW_DT_F32, NULL, so->yref + so->yoff[k], n, in, ln->out, NULL);
    }
    if (r == AW_OK) r = o->vt->sync(o);
    if (r != AW_OK) aw_samp_obj_destroy(so);
    return r;
}

aw_status aw_samp_objective_dev(aw_samp_obj *so, const aw_block *e, const aw_method *m, const float *s,
                                double *obj)
{
    const aw_ops *o = so->o;
    const aw_scheme *sc = &m->scheme;
    int n = so->n, in = so->in;
    AW_TRY(o->vt->to_dev(o, so->s, s, (size_t)in * sizeof *s));
    /* Q_a(X_s / s) */
    AW_TRY(o->vt->div_cols(o, so->x, so->xq, n, in, so->s));
    AW_TRY(o->vt->act_fakequant(o, so->xq, so->xq, n, in, sc->abits, sc->agroup, NULL));
    double sum = 0.0;
    for (int k = 0; k < so->n_cons; k++) {
        const aw_linear *ln = &e->lin[so->lin[k]];
        int out = ln->out;
        /* Q(W diag s), dequantized */
        AW_TRY(o->vt->copy(o, so->w, ln->w, (size_t)out * in * sizeof(float)));
        AW_TRY(o->vt->scale_cols(o, so->w, out, in, so->s));
        AW_TRY(o->vt->group_params(o, so->w, out, in, sc->group, sc->wbits, sc->sym, m->scale_dtype, so->step,
                                   so->zero));
        AW_TRY(o->vt->group_quantize(o, so->w, out, in, sc->group, sc->wbits, so->step, so->zero, so->codes));
        AW_TRY(o->vt->dequant_groups(o, so->codes, so->step, so->zero, out, in, sc->group, so->w));
        AW_TRY(o->vt->linear(o, so->xq, so->w, AW_DT_F32, NULL, so->y, n, in, out, NULL));
        AW_TRY(o->vt->err_sums(o, so->yref + so->yoff[k], so->y, (size_t)n * out, so->err));
        double e2[2];
        AW_TRY(o->vt->to_host(o, e2, so->err, sizeof e2));
        sum += e2[0];
    }
    *obj = sum;
    return AW_OK;
}

aw_status aw_search_objective(const aw_model_config *c, const aw_block *e, const aw_stats *st,
                              const aw_method *m, aw_tap_id tap, const float *s, double *obj)
{
    if (m->scheme.act == AW_ACT_DYNAMIC) {
        aw_samp_obj so;
        AW_TRY(aw_samp_obj_create(aw_ops_cpu(), c, e, st, m, tap, &so));
        aw_status r = aw_samp_objective_dev(&so, e, m, s, obj);
        aw_samp_obj_destroy(&so);
        return r;
    }
    aw_qdev qd;
    AW_TRY(aw_qdev_create(aw_ops_cpu(), c, 0, &qd));
    aw_status r = aw_search_objective_dev(&qd, c, e, st, m, tap, s, st->gram[tap], obj);
    aw_qdev_destroy(&qd);
    return r;
}

/* The searched fold of one tap of eq (as it is now, in qd's memory): s gets
 * the factors, applied to eq; tr (or NULL) the objectives; G the tap's Gram
 * matrix in qd's memory (weight-only), or so the sampled objective
 * (dynamic). */
static aw_status search_tap(aw_qdev *qd, const aw_model_config *c, const aw_stats *st, const aw_method *m,
                            aw_tap_id tap, const double *G, aw_samp_obj *so, aw_block *eq, float *s,
                            aw_search_tap *tr)
{
    int in = st->in[tap];
    float *cand = malloc(2 * (size_t)in * sizeof *cand), *best = cand + in;
    AW_RETURN_IF(!cand, AW_ERR_NOMEM, "out of memory for the scale search");
    double best_obj = INFINITY;
    int chosen = -1;
    aw_status r = AW_OK;
    for (int g = 0; g < AW_SEARCH_GRID && r == AW_OK; g++) {
        float alpha = (float)g / (float)AW_SEARCH_GRID; /* 10/20 is exactly 0.5f, AWEQ's own */
        if (m->kind == AW_METHOD_AWQ) aw_awq_factors(c, tap, st, alpha, cand);
        else r = aw_fold_factors_aweq_dev(qd, c, tap, st, alpha, eq, cand);
        double obj = NAN;
        if (r == AW_OK)
            r = so ? aw_samp_objective_dev(so, eq, m, cand, &obj)
                   : aw_search_objective_dev(qd, c, eq, st, m, tap, cand, G, &obj);
        if (tr) tr->obj[g] = obj;
        if (r == AW_OK && isfinite(obj) && obj < best_obj) { /* ties: the smaller alpha */
            best_obj = obj;
            chosen = g;
            memcpy(best, cand, (size_t)in * sizeof *best);
        }
    }
    if (r == AW_OK && chosen < 0)
        r = AW_FAIL(AW_ERR_NONFINITE, "%s: the scale search's objective is not finite for any alpha",
                    aw_arch_of(c)->tap[tap].name);
    if (r == AW_OK) {
        memcpy(s, best, (size_t)in * sizeof *s);
        r = aw_fold_apply_dev(qd, c, tap, eq, s);
    }
    if (tr) tr->chosen = chosen;
    free(cand);
    return r;
}

aw_status aw_equalize_searched_dev(aw_qdev *qd, const aw_model_config *c, const aw_block *fp, const aw_stats *st,
                                   const aw_method *m, aw_block *eq, float *const s[AW_TAP_COUNT],
                                   aw_search_tap trace[AW_TAP_COUNT])
{
    const aw_ops *o = qd->o;
    AW_RETURN_IF(m->kind != AW_METHOD_AWQ && m->kind != AW_METHOD_AWEQ_SEARCH, AW_ERR_ARG,
                 "--method %s does not search its scales", aw_method_names[m->kind]);
    AW_RETURN_IF(!aw_scheme_coded(&m->scheme), AW_ERR_ARG,
                 "--method %s needs a weight-only scheme (--wbits) or dynamic activations (--adynamic)",
                 aw_method_names[m->kind]);
    AW_TRY(aw_scheme_check(&m->scheme));
    AW_TRY(aw_method_check_keep(m));
    int dyn = m->scheme.act == AW_ACT_DYNAMIC;
    AW_TRY(aw_method_check_stats(m, st, -1));
    AW_RETURN_IF(st->tokens == 0, AW_ERR_VALIDATION, "no calibration tokens observed");
    AW_RETURN_IF(eq->wdt != AW_DT_F32, AW_ERR_DTYPE, "equalized block must be F32");
    AW_TRY(aw_block_widen_dev(o, fp, eq));
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        for (int j = 0; j < st->in[t]; j++) s[t][j] = 1.0f;
        if (trace) {
            trace[t].chosen = -1;
            for (int g = 0; g < AW_SEARCH_GRID; g++) trace[t].obj[g] = NAN;
        }
    }
    /* in tap order, each search on the block with the earlier taps folded;
     * the tap's Gram matrix (statistics) in o's memory while it is searched */
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        if (!aw_method_uses_tap(m, c, (aw_tap_id)t)) continue;
        if (dyn) {
            /* X_s W^T from eq now: the tap's consumers are the original ones */
            aw_samp_obj so;
            AW_TRY(aw_samp_obj_create(o, c, eq, st, m, (aw_tap_id)t, &so));
            aw_status r = search_tap(qd, c, st, m, (aw_tap_id)t, NULL, &so, eq, s[t], trace ? &trace[t] : NULL);
            aw_samp_obj_destroy(&so);
            AW_TRY(r);
            continue;
        }
        AW_RETURN_IF(!st->gram[t], AW_ERR_ARG, "the scale search needs Gram matrices (aw_stats with_gram)");
        size_t in = (size_t)st->in[t];
        void *G = NULL;
        AW_TRY(aw_ops_mirror(o, &G, st->gram[t], in * in * sizeof(double), "a Gram matrix"));
        aw_status r = G != st->gram[t] ? o->vt->to_dev(o, G, st->gram[t], in * in * sizeof(double)) : AW_OK;
        if (r == AW_OK) r = search_tap(qd, c, st, m, (aw_tap_id)t, G, NULL, eq, s[t], trace ? &trace[t] : NULL);
        aw_ops_mirror_free(o, G, st->gram[t]);
        AW_TRY(r);
    }
    return AW_OK;
}

aw_status aw_equalize_searched(const aw_model_config *c, const aw_block *fp, const aw_stats *st,
                               const aw_method *m, aw_block *eq, float *const s[AW_TAP_COUNT],
                               aw_search_tap trace[AW_TAP_COUNT])
{
    aw_qdev qd;
    AW_TRY(aw_qdev_create(aw_ops_cpu(), c, 0, &qd));
    aw_status r = aw_equalize_searched_dev(&qd, c, fp, st, m, eq, s, trace);
    aw_qdev_destroy(&qd);
    return r;
}

/* st with the context of a failure below: "layer L[ name]: message". */
static aw_status in_layer(aw_status st, int layer, const char *lin)
{
    char msg[768];
    snprintf(msg, sizeof msg, "%s", aw_err_message());
    return AW_FAIL(st, "layer %d%s%s: %s", layer, lin ? " " : "", lin ? lin : "", msg);
}

/* Quantize linear l of eq (F32, folded, in qd's memory) into dql (qd's
 * memory), its steps also into ql (host) to be checked; w may be
 * overwritten (GPTQ leaves its dequantized weights there). */
static aw_status quantize_linear(aw_qdev *qd, const aw_model_config *c, int layer, const aw_stats *st,
                                 const aw_method *m, aw_block *eq, int l, const float *s, aw_qlinear *dql,
                                 aw_qlinear *ql)
{
    const aw_ops *o = qd->o;
    const aw_scheme *sc = &m->scheme;
    const char *name = aw_arch_of(c)->lin[l].name;
    aw_linear *ln = &eq->lin[l];
    float *w = ln->w;
    aw_tap_id tap = aw_linear_tap(c, l);
    int in = ln->in, out = ln->out, ng = aw_scheme_groups(sc, in);
    size_t n = (size_t)in * out;
    float wmax = 0.0f;
    AW_TRY(o->vt->absmax(o, w, n, qd->one));
    AW_TRY(o->vt->to_host(o, &wmax, qd->one, sizeof wmax));
    AW_RETURN_IF(!isfinite(wmax), AW_ERR_NONFINITE, "layer %d %s: the weights to quantize are not finite", layer,
                 name);
    if (m->kind == AW_METHOD_GPTQ) {
        aw_gptq_opts go = {.bits = sc->wbits, .group = sc->group, .sym = sc->sym, .act_order = m->act_order,
                           .block = 128, .damp_frac = 0.01, .sdt = m->scale_dtype};
        aw_gptq_plan plan;
        /* the plan is statistics: made on the host from the Gram matrix */
        aw_status r = aw_k_gptq_plan(st->gram[tap], in, &go, &plan);
        if (r == AW_OK) r = o->vt->gptq(o, w, &plan, out, &go, dql->wstep, dql->wzero, dql->codes);
        aw_k_gptq_plan_free(&plan);
        if (r != AW_OK) return in_layer(r, layer, name);
    } else {
        AW_TRY(o->vt->group_params(o, w, out, in, sc->group, sc->wbits, sc->sym, m->scale_dtype, dql->wstep,
                                   dql->wzero));
        AW_TRY(o->vt->group_quantize(o, w, out, in, sc->group, sc->wbits, dql->wstep, dql->wzero, dql->codes));
    }
    /* the steps (out x ng: statistics-sized) checked on the host */
    AW_TRY(o->vt->to_host(o, ql->wstep, dql->wstep, (size_t)out * ng * sizeof(float)));
    for (size_t k = 0; k < (size_t)out * ng; k++) {
        float d = ql->wstep[k];
        AW_RETURN_IF(!isfinite(d) || d <= 0.0f, AW_ERR_NONFINITE,
                     "layer %d %s: quantization step %zu of row %zu is not finite and positive (%g)", layer, name,
                     k % (size_t)ng, k / (size_t)ng, d);
    }
    int correct = m->bias_correction && m->kind != AW_METHOD_AWQ && m->kind != AW_METHOD_GPTQ;
    const double *delta = NULL;
    if (correct) {
        double *mean = qd->hd;
        for (int j = 0; j < in; j++) {
            mean[j] = st->sum[tap][j] / (double)st->tokens / (double)s[j];
            if (ql->keep_mask && ql->keep_mask[j] == 0.0f) mean[j] = 0.0; /* kept: exact columns */
        }
        /* (Q(W') - W') E[x'] per output, with the dequantized weights */
        AW_TRY(o->vt->dequant_groups(o, dql->codes, dql->wstep, dql->wzero, out, in, sc->group, qd->deq));
        AW_TRY(o->vt->to_dev(o, qd->mean, mean, (size_t)in * sizeof *mean));
        AW_TRY(o->vt->bias_delta(o, w, qd->deq, qd->mean, out, in, qd->delta));
        AW_TRY(o->vt->to_host(o, mean, qd->delta, (size_t)out * sizeof *mean)); /* mean is free now */
        delta = mean;
    }
    return aw_qdev_put_bias(qd, ln, delta, m, dql, ql);
}

/* Dynamic schemes: every linear's signed values wq = code - zero (per
 * group) from the downloaded codes, on the host, then uploaded to dq. */
static aw_status put_signed(const aw_ops *o, aw_qblock *dq, aw_qblock *q)
{
    for (int l = 0; l < q->n_lin; l++) {
        aw_qlinear *ql = &q->lin[l];
        aw_qlinear_set_signed(ql);
        if (dq->arena != q->arena)
            AW_TRY(o->vt->to_dev(o, dq->lin[l].wq, ql->wq, (size_t)ql->in * ql->out * sizeof(int8_t)));
    }
    return o->vt->sync(o);
}

aw_status aw_quantize_block_wo_ops(const aw_ops *o, const aw_model_config *c, int layer, const aw_block *dfp,
                                   const aw_stats *st, const aw_method *m, aw_qblock *dq, aw_qblock *q)
{
    const aw_scheme *sc = &m->scheme;
    int dyn = sc->act == AW_ACT_DYNAMIC;
    AW_RETURN_IF(st->tokens == 0, AW_ERR_VALIDATION, "layer %d: no calibration tokens observed", layer);
    AW_RETURN_IF(!aw_scheme_coded(sc), AW_ERR_ARG,
                 "layer %d: aw_quantize_block_wo needs a weight-only or dynamic scheme", layer);
    AW_TRY(aw_scheme_check(sc));
    AW_TRY(aw_method_check_keep(m));
    AW_RETURN_IF(!aw_scheme_same(&q->scheme, sc) || !q->lin[0].codes || (dyn && !q->lin[0].wq), AW_ERR_ARG,
                 "layer %d: the quantized block was made for another scheme", layer);
    AW_TRY(aw_method_check_stats(m, st, layer));
    aw_qdev qd;
    AW_TRY(aw_qdev_create(o, c, 1, &qd));
    aw_block eq;
    aw_status status = aw_block_dev_create(o, c, AW_DT_F32, &eq);
    if (status == AW_OK) {
        status = aw_equalize_block_dev(&qd, c, dfp, st, m, &eq, q->s);
        if (status != AW_OK && status != AW_ERR_NOMEM) status = in_layer(status, layer, NULL);
    }
    if (status == AW_OK) status = aw_qdev_put_small(&qd, c, &eq, m, dq, q);
    if (status == AW_OK) status = aw_keep_channels_dev(&qd, c, st, m, &eq, dq, q);
    for (int l = 0; l < eq.n_lin && status == AW_OK; l++) {
        q->lin[l].group = sc->group;
        dq->lin[l].group = sc->group;
        status = quantize_linear(&qd, c, layer, st, m, &eq, l, q->s[aw_linear_tap(c, l)], &dq->lin[l], &q->lin[l]);
    }
    /* the result to the host, once */
    if (status == AW_OK) status = aw_qblock_to_host(o, c, dq, q);
    if (status == AW_OK && dyn) status = put_signed(o, dq, q);
    aw_block_dev_destroy(o, &eq);
    aw_qdev_destroy(&qd);
    return status;
}
