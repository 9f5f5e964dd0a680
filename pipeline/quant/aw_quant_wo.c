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
 * Bias correction needs m->bias_correction (the command line sets it for
 * aweq and aweq+search); awq and gptq never correct. Everything here is
 * sequential or OpenBLAS with the process's fixed thread count: the same
 * bytes every run.
 */
#include "aw_quant.h"
#include "aw_quant_int.h"

#include <cblas.h>
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

/* Rows of a consumer the objective treats at a time: two (rows, in) double
 * arrays of about 32 MB each at most. */
static int objective_rows(int out, int in)
{
    int r = (int)((size_t)(1u << 22) / (size_t)in);
    return r < 1 ? 1 : r > out ? out : r;
}

aw_status aw_search_objective(const aw_model_config *c, const aw_block *e, const aw_stats *st,
                              const aw_method *m, aw_tap_id tap, const float *s, double *obj)
{
    const aw_scheme *sc = &m->scheme;
    AW_RETURN_IF(!st->with_gram || !st->gram[tap], AW_ERR_ARG,
                 "the scale search needs Gram matrices (aw_stats with_gram)");
    AW_RETURN_IF(!aw_scheme_weight_only(sc), AW_ERR_ARG, "the scale search needs a weight-only scheme");
    AW_RETURN_IF(e->wdt != AW_DT_F32, AW_ERR_DTYPE, "the scale search needs an F32 block");
    const aw_arch *a = aw_arch_of(c);
    const double *G = st->gram[tap]; /* (in, in) symmetric */
    int in = st->in[tap];
    /* scratch for the largest chunk of any consumer, carved from one block */
    size_t cap = 0, cap_g = 0;
    for (int l = 0; l < a->n_lin; l++) {
        if (a->lin[l].tap != tap) continue;
        const aw_linear *ln = &e->lin[l];
        size_t r = (size_t)objective_rows(ln->out, in);
        cap = r * in > cap ? r * in : cap;
        size_t g = r * (size_t)aw_scheme_groups(sc, in);
        cap_g = g > cap_g ? g : cap_g;
    }
    double *dw = malloc(cap * (2 * sizeof(double) + 2 * sizeof(float) + 1) + cap_g * (sizeof(float) + 1));
    AW_RETURN_IF(!dw, AW_ERR_NOMEM, "out of memory for the scale search");
    double *dwg = dw + cap;                  /* (rows, in) dW G */
    float *ws = (float *)(dwg + cap);        /* (rows, in) W diag(s) */
    float *deq = ws + cap;                   /* (rows, in) Q(W diag(s)) */
    float *step = deq + cap;                 /* (rows, ng) */
    uint8_t *codes = (uint8_t *)(step + cap_g); /* (rows, in) */
    uint8_t *zero = codes + cap;             /* (rows, ng) */
    int G_len = sc->group; /* 0: the whole row */
    double total = 0.0;
    for (int l = 0; l < a->n_lin; l++) {
        if (a->lin[l].tap != tap) continue;
        const aw_linear *ln = &e->lin[l];
        int R = objective_rows(ln->out, in);
        for (int r0 = 0; r0 < ln->out; r0 += R) {
            int rr = ln->out - r0 < R ? ln->out - r0 : R;
            const float *w = (const float *)ln->w + (size_t)r0 * in;
            size_t n = (size_t)rr * in;
            memcpy(ws, w, n * sizeof *ws);
            aw_k_scale_cols(ws, rr, in, s); /* the same bits the fold gives */
            aw_k_group_params(ws, rr, in, G_len, sc->wbits, sc->sym, m->scale_dtype, step, zero);
            aw_k_group_quantize(ws, rr, in, G_len, sc->wbits, step, zero, codes);
            aw_k_group_dequantize(codes, step, zero, rr, in, G_len, deq);
            for (int i = 0; i < rr; i++)
                for (int j = 0; j < in; j++) {
                    size_t k = (size_t)i * in + j;
                    dw[k] = (double)deq[k] / (double)s[j] - (double)w[k];
                }
            /* dwg (rr, in) = dw (rr, in) G (in, in) */
            cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, rr, in, 1.0, G, in, dw, in, 0.0, dwg, in);
            for (size_t k = 0; k < n; k++) total += dw[k] * dwg[k];
        }
    }
    free(dw);
    *obj = total;
    return AW_OK;
}

/* The searched fold of one tap of eq (as it is now): s gets the factors,
 * applied to eq; tr (or NULL) the objectives. */
static aw_status search_tap(const aw_model_config *c, const aw_stats *st, const aw_method *m, aw_tap_id tap,
                            aw_block *eq, float *s, aw_search_tap *tr)
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
        else r = aw_fold_factors_aweq(c, tap, st, alpha, eq, cand);
        double obj = NAN;
        if (r == AW_OK) r = aw_search_objective(c, eq, st, m, tap, cand, &obj);
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
        r = aw_fold_apply(c, tap, eq, s);
    }
    if (tr) tr->chosen = chosen;
    free(cand);
    return r;
}

aw_status aw_equalize_searched(const aw_model_config *c, const aw_block *fp, const aw_stats *st,
                               const aw_method *m, aw_block *eq, float *const s[AW_TAP_COUNT],
                               aw_search_tap trace[AW_TAP_COUNT])
{
    AW_RETURN_IF(m->kind != AW_METHOD_AWQ && m->kind != AW_METHOD_AWEQ_SEARCH, AW_ERR_ARG,
                 "--method %s does not search its scales", aw_method_names[m->kind]);
    AW_RETURN_IF(!aw_scheme_weight_only(&m->scheme), AW_ERR_ARG, "--method %s needs a weight-only scheme (--wbits)",
                 aw_method_names[m->kind]);
    AW_TRY(aw_scheme_check(&m->scheme));
    AW_RETURN_IF(!st->with_gram, AW_ERR_ARG, "--method %s needs the Gram matrices of the calibration statistics",
                 aw_method_names[m->kind]);
    AW_RETURN_IF(st->tokens == 0, AW_ERR_VALIDATION, "no calibration tokens observed");
    AW_RETURN_IF(eq->wdt != AW_DT_F32, AW_ERR_DTYPE, "equalized block must be F32");
    AW_TRY(aw_block_convert(eq, fp));
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        for (int j = 0; j < st->in[t]; j++) s[t][j] = 1.0f;
        if (trace) {
            trace[t].chosen = -1;
            for (int g = 0; g < AW_SEARCH_GRID; g++) trace[t].obj[g] = NAN;
        }
    }
    /* in tap order, each search on the block with the earlier taps folded */
    for (int t = 0; t < AW_TAP_COUNT; t++)
        if (aw_method_uses_tap(m, c, (aw_tap_id)t))
            AW_TRY(search_tap(c, st, m, (aw_tap_id)t, eq, s[t], trace ? &trace[t] : NULL));
    return AW_OK;
}

/* st with the context of a failure below: "layer L[ name]: message". */
static aw_status in_layer(aw_status st, int layer, const char *lin)
{
    char msg[768];
    snprintf(msg, sizeof msg, "%s", aw_err_message());
    return AW_FAIL(st, "layer %d%s%s: %s", layer, lin ? " " : "", lin ? lin : "", msg);
}

static void copy_rounded(float *dst, const float *src, int n, aw_dtype dt)
{
    for (int i = 0; i < n; i++) dst[i] = aw_round_to_dtype(src[i], dt);
}

/* Quantize linear l of eq (F32, folded) into ql; w may be overwritten
 * (GPTQ leaves its dequantized weights there). */
static aw_status quantize_linear(const aw_model_config *c, int layer, const aw_stats *st, const aw_method *m,
                                 aw_block *eq, int l, const float *s, double *mean, float *deq, aw_qlinear *ql)
{
    const aw_scheme *sc = &m->scheme;
    const char *name = aw_arch_of(c)->lin[l].name;
    aw_linear *ln = &eq->lin[l];
    float *w = ln->w;
    aw_tap_id tap = aw_linear_tap(c, l);
    int in = ln->in, out = ln->out, ng = aw_scheme_groups(sc, in);
    size_t n = (size_t)in * out;
    float wmax = aw_k_absmax(w, n);
    AW_RETURN_IF(!isfinite(wmax), AW_ERR_NONFINITE, "layer %d %s: the weights to quantize are not finite", layer,
                 name);
    if (m->kind == AW_METHOD_GPTQ) {
        aw_gptq_opts o = {.bits = sc->wbits, .group = sc->group, .sym = sc->sym, .act_order = m->act_order,
                          .block = 128, .damp_frac = 0.01, .sdt = m->scale_dtype};
        aw_status r = aw_k_gptq(w, st->gram[tap], out, in, &o, ql->wstep, ql->wzero, ql->codes);
        if (r != AW_OK) return in_layer(r, layer, name);
    } else {
        aw_k_group_params(w, out, in, sc->group, sc->wbits, sc->sym, m->scale_dtype, ql->wstep, ql->wzero);
        aw_k_group_quantize(w, out, in, sc->group, sc->wbits, ql->wstep, ql->wzero, ql->codes);
    }
    for (size_t k = 0; k < (size_t)out * ng; k++) {
        float d = ql->wstep[k];
        AW_RETURN_IF(!isfinite(d) || d <= 0.0f, AW_ERR_NONFINITE,
                     "layer %d %s: quantization step %zu of row %zu is not finite and positive (%g)", layer, name,
                     k % (size_t)ng, k / (size_t)ng, d);
    }
    int correct = m->bias_correction && m->kind != AW_METHOD_AWQ && m->kind != AW_METHOD_GPTQ;
    if (correct) {
        aw_k_group_dequantize(ql->codes, ql->wstep, ql->wzero, out, in, sc->group, deq);
        for (int j = 0; j < in; j++) mean[j] = st->sum[tap][j] / (double)st->tokens / (double)s[j];
    }
    for (int i = 0; i < out; i++) {
        double delta = 0.0;
        if (correct) {
            /* (Q(W') - W') E[x'] for output i */
            const float *wr = w + (size_t)i * in, *qr = deq + (size_t)i * in;
            for (int j = 0; j < in; j++) delta += ((double)qr[j] - (double)wr[j]) * mean[j];
        }
        ql->bias[i] = aw_round_to_dtype((float)((double)ln->b[i] - delta), m->param_dtype);
        ql->bias_plain[i] = aw_round_to_dtype(ln->b[i], m->param_dtype);
    }
    return AW_OK;
}

aw_status aw_quantize_block_wo(const aw_model_config *c, int layer, const aw_block *fp, const aw_stats *st,
                               const aw_method *m, aw_qblock *q)
{
    const aw_scheme *sc = &m->scheme;
    AW_RETURN_IF(st->tokens == 0, AW_ERR_VALIDATION, "layer %d: no calibration tokens observed", layer);
    AW_RETURN_IF(!aw_scheme_weight_only(sc), AW_ERR_ARG, "layer %d: aw_quantize_block_wo needs a weight-only scheme",
                 layer);
    AW_TRY(aw_scheme_check(sc));
    AW_RETURN_IF(q->scheme.wbits != sc->wbits || q->scheme.group != sc->group || q->scheme.sym != sc->sym ||
                     q->scheme.act != sc->act || !q->lin[0].codes,
                 AW_ERR_ARG, "layer %d: the quantized block was made for another scheme", layer);
    AW_RETURN_IF(aw_method_needs_gram(m) && !st->with_gram, AW_ERR_ARG,
                 "layer %d: --method %s needs the Gram matrices of the calibration statistics", layer,
                 aw_method_names[m->kind]);
    aw_block eq;
    AW_TRY(aw_block_create(c, AW_DT_F32, &eq));
    size_t max_in = (size_t)aw_arch_max_width(c);
    /* scratch: E[x'] (max_in doubles), then dequantized weights (largest linear) */
    double *mean = malloc(max_in * sizeof *mean + aw_arch_max_linear(c) * sizeof(float));
    aw_status status = mean ? AW_OK : AW_FAIL(AW_ERR_NOMEM, "layer %d: out of memory", layer);
    float *deq = mean ? (float *)(mean + max_in) : NULL;
    if (status == AW_OK) {
        status = aw_equalize_block(c, fp, st, m, &eq, q->s);
        if (status != AW_OK && status != AW_ERR_NOMEM) status = in_layer(status, layer, NULL);
    }
    if (status == AW_OK) {
        /* norms are stored in the checkpoint dtype: validate what is written */
        int d = c->hidden_size;
        for (int n = 0; n < AW_NORM_COUNT; n++) {
            copy_rounded(q->norm_g[n], eq.norm_g[n], d, m->param_dtype);
            copy_rounded(q->norm_b[n], eq.norm_b[n], d, m->param_dtype);
        }
        aw_qblock_set_out_scales(c, q);
    }
    for (int l = 0; l < eq.n_lin && status == AW_OK; l++) {
        aw_qlinear *ql = &q->lin[l];
        ql->group = sc->group;
        status = quantize_linear(c, layer, st, m, &eq, l, q->s[aw_linear_tap(c, l)], mean, deq, ql);
    }
    free(mean);
    aw_block_destroy(&eq);
    return status;
}
