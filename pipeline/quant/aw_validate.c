/* aw_validate.c - W8A8 error on held-out tokens (see aw_validate.h). */
#include "aw_validate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_kernels.h"

aw_status aw_layer_val_create(const aw_model_config *c, aw_layer_val *v)
{
    memset(v, 0, sizeof *v);
    const aw_arch *a = aw_arch_of(c);
    size_t n = AW_VAL_TOKENS + 1;
    for (int l = 0; l < a->n_lin; l++) {
        v->col_off[l] = n;
        n += (size_t)aw_arch_dim(c, a->lin[l].out);
    }
    v->arena = calloc(2 * n, sizeof(double));
    AW_RETURN_IF(!v->arena, AW_ERR_NOMEM, "out of memory for validation sums");
    v->n = n;
    v->total = v->arena;
    v->part = v->total + n;
    v->ops = aw_ops_cpu();
    v->d_part = v->part;
    return AW_OK;
}

static void val_detach(aw_layer_val *v)
{
    aw_ops_mirror_free(v->ops, v->d_part, v->part);
    v->ops = aw_ops_cpu();
    v->d_part = v->part;
}

void aw_layer_val_destroy(aw_layer_val *v)
{
    if (!v) return;
    if (v->arena) val_detach(v);
    free(v->arena);
    memset(v, 0, sizeof *v);
}

aw_status aw_layer_val_attach(aw_layer_val *v, const aw_ops *o)
{
    val_detach(v);
    double *d = NULL;
    AW_TRY(aw_ops_mirror(o, (void **)&d, v->part, v->n * sizeof(double), "validation sums"));
    v->ops = o;
    v->d_part = d;
    return o->vt->zero(o, d, v->n * sizeof(double));
}

aw_status aw_layer_val_take_part(aw_layer_val *v, double *dst)
{
    const aw_ops *o = v->ops;
    /* the token count is kept on the host */
    double tokens = v->part[AW_VAL_TOKENS];
    AW_TRY(o->vt->to_host(o, dst, v->d_part, v->n * sizeof(double)));
    dst[AW_VAL_TOKENS] = tokens;
    v->part[AW_VAL_TOKENS] = 0.0;
    return o->vt->zero(o, v->d_part, v->n * sizeof(double));
}

void aw_layer_val_add_part(aw_layer_val *v, const double *part)
{
    for (size_t i = 0; i < v->n; i++) v->total[i] += part[i];
}

void aw_e2e_add(aw_e2e *a, const aw_e2e *b)
{
    a->nll_fp += b->nll_fp;
    a->nll_q += b->nll_q;
    a->kl += b->kl;
    a->n_pred += b->n_pred;
    a->top1_agree += b->top1_agree;
}

uint64_t aw_val_ws_bytes(const aw_model_config *c, int max_T, int shares_wconv)
{
    size_t wide = (size_t)aw_arch_max_width(c);
    size_t n = (size_t)max_T * wide, nw = shares_wconv ? 0 : aw_arch_max_linear(c);
    return n * (3 * sizeof(float) + sizeof(int32_t) + 1) + nw * sizeof(float);
}

aw_status aw_val_ws_create(const aw_ops *ops, const aw_model_config *c, int max_T, float *wconv,
                           const aw_fwd_ws *fws, aw_val_ws *w)
{
    memset(w, 0, sizeof *w);
    size_t wide = (size_t)aw_arch_max_width(c);
    size_t n = (size_t)max_T * wide;
    size_t nw = wconv || !ops->wscratch ? 0 : aw_arch_max_linear(c);
    char what[96];
    snprintf(what, sizeof what, "validation scratch (%zu values)", n);
    AW_TRY(ops->vt->alloc(ops, &w->arena, n * (3 * sizeof(float) + sizeof(int32_t) + 1) + nw * sizeof(float),
                          what));
    w->ops = ops;
    float *p = w->arena;
    w->xs = p, p += n;
    w->yf = p, p += n;
    w->yq = p, p += n;
    w->wconv = wconv ? wconv : nw ? p : NULL;
    p += nw;
    w->acc = (int32_t *)p;
    w->xq = (int8_t *)(w->acc + n);
    if (fws) {
        w->xstep = fws->xstep;
        w->gscratch = fws->gscratch;
        w->xk = fws->xk;
    }
    return AW_OK;
}

void aw_val_ws_destroy(aw_val_ws *w)
{
    if (!w) return;
    if (w->ops && w->arena) w->ops->vt->release(w->ops, w->arena);
    memset(w, 0, sizeof *w);
}

/* The W8A8 side of linear l from v->ws->xs (its tap's input over s),
 * compared with the fp output yf (T, out). */
static aw_status compare_linear(aw_val_ctx *v, int l, const float *yf, int T)
{
    const aw_ops *o = v->ws->ops;
    const aw_linear *ln = &v->fp->lin[l];
    aw_qlin_scratch qs = {v->ws->xq, v->ws->acc, v->ws->wconv, v->ws->xstep, v->ws->gscratch, v->ws->xk};
    AW_TRY(aw_qlinear_ops(o, v->q, l, v->ws->xs, v->ws->yq, T, &qs));
    const float *so = aw_qblock_out_scale(v->q, l);
    if (so) /* back to the model's coordinates */
        AW_TRY(o->vt->scale_cols(o, v->ws->yq, T, ln->out, so));
    size_t n = (size_t)T * ln->out;
    double *part = v->val->d_part;
    AW_TRY(o->vt->err_sums(o, yf, v->ws->yq, n, &part[AW_VAL_SQ_ERR(l)]));
    return o->vt->col_err_accum(o, yf, v->ws->yq, T, ln->out, part + v->val->col_off[l]);
}

aw_status aw_validate_observe(void *ctx, aw_tap_id tap, const float *x, int T, int in)
{
    aw_val_ctx *v = ctx;
    const aw_ops *o = v->ws->ops;
    /* x' = x / s: the input the equalized W8A8 layer sees */
    AW_TRY(o->vt->div_cols(o, x, v->ws->xs, T, in, v->q->s[tap]));
    v->xs_tap = tap;
    v->xs_of = x;
    if (!v->deferred) {
        for (int l = 0; l < v->q->n_lin; l++) {
            if (v->q->lin[l].tap != tap) continue;
            const aw_linear *ln = &v->fp->lin[l];
            AW_TRY(o->vt->linear(o, x, ln->w, v->fp->wdt, ln->b, v->ws->yf, T, ln->in, ln->out, v->ws->wconv));
            AW_TRY(compare_linear(v, l, v->ws->yf, T));
        }
    }
    if (tap == AW_TAP_ATTN_IN) v->val->part[AW_VAL_TOKENS] += (double)T;
    return AW_OK;
}

aw_status aw_validate_linear(void *ctx, int l, const float *x, const float *y, int T)
{
    aw_val_ctx *v = ctx;
    if (!v->deferred) return AW_OK;
    aw_tap_id tap = v->q->lin[l].tap;
    if (v->xs_of != x || v->xs_tap != tap) {
        /* not the input the tap saw (a family whose linear reads another
         * buffer): divide this one */
        const aw_ops *o = v->ws->ops;
        AW_TRY(o->vt->div_cols(o, x, v->ws->xs, T, v->fp->lin[l].in, v->q->s[tap]));
        v->xs_tap = tap;
        v->xs_of = x;
    }
    return compare_linear(v, l, y, T);
}

/* Sums of one chunk of rows t0.. of logits already on the host: the rows'
 * statistics side by side (aw_k_logprob_pairs), added in row order. */
static void e2e_rows(const uint32_t *tokens, int L, int V, int t0, int n, const float *logits_fp,
                     const float *logits_q, aw_e2e *acc)
{
    enum { ROWS = 64 };
    uint32_t target[ROWS];
    uint8_t skip[ROWS];
    double lp_fp[ROWS], lp_q[ROWS], kl[ROWS];
    int am_fp[ROWS], am_q[ROWS];
    for (int r0 = 0; r0 < n; r0 += ROWS) {
        int nr = n - r0 < ROWS ? n - r0 : ROWS;
        for (int r = 0; r < nr; r++) {
            int t = t0 + r0 + r;
            /* the last position predicts nothing we hold */
            skip[r] = t % L == L - 1;
            target[r] = skip[r] ? 0 : tokens[t + 1];
        }
        size_t off = (size_t)r0 * V;
        aw_k_logprob_pairs(logits_q + off, logits_fp + off, V, nr, target, skip, lp_fp, lp_q, kl, am_fp,
                           am_q);
        for (int r = 0; r < nr; r++) {
            if (skip[r]) continue;
            acc->nll_fp -= lp_fp[r];
            acc->nll_q -= lp_q[r];
            acc->kl += kl[r];
            acc->top1_agree += am_fp[r] == am_q[r];
            acc->n_pred++;
        }
    }
}

aw_status aw_e2e_accum_ops(const aw_ops *o, const aw_model_config *c, const aw_model_ends *e,
                           const float *h_fp, const float *h_q, const uint32_t *tokens, int n_seq,
                           int L, float *x, float *d_lfp, float *d_lq, float *lfp, float *lq,
                           int chunk, aw_e2e *acc)
{
    int T = n_seq * L, d = c->hidden_size, V = c->vocab_size;
    for (int t0 = 0; t0 < T; t0 += chunk) {
        int n = T - t0 < chunk ? T - t0 : chunk;
        size_t bytes = (size_t)n * V * sizeof(float);
        AW_TRY(aw_model_logits_ops(o, c, e, h_fp + (size_t)t0 * d, x, d_lfp, n));
        AW_TRY(aw_model_logits_ops(o, c, e, h_q + (size_t)t0 * d, x, d_lq, n));
        AW_TRY(o->vt->to_host(o, lfp, d_lfp, bytes));
        AW_TRY(o->vt->to_host(o, lq, d_lq, bytes));
        e2e_rows(tokens, L, V, t0, n, lfp, lq, acc);
    }
    return AW_OK;
}

void aw_e2e_accum(const aw_model_config *c, const aw_model_ends *e, const float *h_fp,
                  const float *h_q, const uint32_t *tokens, int n_seq, int L, float *x,
                  float *logits_fp, float *logits_q, int chunk, aw_e2e *acc)
{
    /* cannot fail on the CPU */
    (void)aw_e2e_accum_ops(aw_ops_cpu(), c, e, h_fp, h_q, tokens, n_seq, L, x, logits_fp, logits_q,
                           logits_fp, logits_q, chunk, acc);
}
