/* aw_forward.c - the pieces of a block forward, and the model ends (see aw_forward.h). */
#include "aw_forward.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_actq.h"
#include "aw_kernels.h"

/* Heads per attention chunk: bound the score workspace to ~64 MB. */
static int pick_heads_per_chunk(int heads, int L)
{
    size_t per_head = (size_t)L * (size_t)L * sizeof(float);
    size_t budget = 64u << 20;
    int h = (int)(budget / (per_head ? per_head : 1));
    if (h < 1) h = 1;
    return h < heads ? h : heads;
}

/* Floats, int32 and bytes of the workspace, in arena order. */
static void ws_sizes(const aw_model_config *c, int max_n_seq, int L, size_t att, int wconv, size_t *n_float,
                     size_t *n_i32, size_t *n_i8)
{
    size_t T = (size_t)max_n_seq * (size_t)L, d = (size_t)c->hidden_size, f = (size_t)c->ffn_dim;
    size_t wide = f > d ? f : d, kv = (size_t)aw_arch_dim(c, AW_DIM_KV);
    *n_float = 3 * T * d + 2 * T * kv + T * f + T * wide + att + (wconv ? aw_arch_max_linear(c) : 0);
    *n_i32 = T * wide;
    *n_i8 = T * wide;
}

uint64_t aw_fwd_ws_bytes_ops(const aw_model_config *c, int max_n_seq, int L, int wconv)
{
    size_t nf, ni, nb;
    size_t att = aw_k_attention_workspace(L, pick_heads_per_chunk(c->num_attention_heads, L));
    ws_sizes(c, max_n_seq, L, att, wconv, &nf, &ni, &nb);
    return nf * sizeof(float) + ni * sizeof(int32_t) + nb;
}

uint64_t aw_fwd_ws_bytes(const aw_model_config *c, int max_n_seq, int L)
{
    return aw_fwd_ws_bytes_ops(c, max_n_seq, L, 1);
}

aw_status aw_fwd_ws_create_ops(const aw_ops *ops, const aw_model_config *c, int max_n_seq, int L,
                               aw_fwd_ws *ws)
{
    memset(ws, 0, sizeof *ws);
    size_t T = (size_t)max_n_seq * (size_t)L, d = (size_t)c->hidden_size, f = (size_t)c->ffn_dim;
    size_t wide = f > d ? f : d, kv = (size_t)aw_arch_dim(c, AW_DIM_KV);
    ws->heads_per_chunk = pick_heads_per_chunk(c->num_attention_heads, L);
    size_t att = ops->vt->attention_workspace(L, ws->heads_per_chunk);
    size_t nf, ni, nb;
    ws_sizes(c, max_n_seq, L, att, ops->wscratch, &nf, &ni, &nb);
    size_t bytes = nf * sizeof(float) + ni * sizeof(int32_t) + nb;
    char what[96];
    snprintf(what, sizeof what, "activations of %zu tokens", T);
    AW_TRY(ops->vt->alloc(ops, &ws->arena, bytes, what));
    ws->ops = ops;
    float *p = ws->arena;
    ws->x = p, p += T * d;
    ws->q = p, p += T * d;
    ws->k = p, p += T * kv;
    ws->v = p, p += T * kv;
    ws->a = p, p += T * d;
    ws->f = p, p += T * f;
    ws->y = p, p += T * wide;
    ws->att_ws = p, p += att;
    if (ops->wscratch) ws->wconv = p, p += aw_arch_max_linear(c);
    ws->acc = (int32_t *)p;
    ws->xq = (int8_t *)(ws->acc + T * wide);
    ws->max_T = (int)T;
    ws->L = L;
    return AW_OK;
}

aw_status aw_fwd_ws_create(const aw_model_config *c, int max_n_seq, int L, aw_fwd_ws *ws)
{
    return aw_fwd_ws_create_ops(aw_ops_cpu(), c, max_n_seq, L, ws);
}

void aw_fwd_ws_destroy(aw_fwd_ws *ws)
{
    if (!ws) return;
    if (ws->ops && ws->arena) ws->ops->vt->release(ws->ops, ws->arena);
    if (ws->ops && ws->wdq_own) ws->ops->vt->release(ws->ops, ws->wdq_own);
    if (ws->ops && ws->extra_own) ws->ops->vt->release(ws->ops, ws->extra_own);
    free(ws->bx);
    memset(ws, 0, sizeof *ws);
}

uint64_t aw_fwd_ws_bf16_bytes(const aw_model_config *c, int max_T)
{
    return (uint64_t)max_T * (uint64_t)aw_arch_max_width(c) * sizeof(uint16_t);
}

aw_status aw_fwd_ws_need_bf16(aw_fwd_ws *ws, const aw_model_config *c)
{
    if (ws->bx) return AW_OK;
    AW_RETURN_IF(!ws->ops->wscratch || !ws->wconv, AW_ERR_UNSUPPORTED,
                 "--cpu-precision bf16 is for the cpu backends (the %s backend multiplies in its own precision)",
                 ws->ops->name);
    AW_TRY(aw_k_bf16_check()); /* refused here, before the job streams */
    size_t bytes = (size_t)aw_fwd_ws_bf16_bytes(c, ws->max_T);
    ws->bx = malloc(bytes);
    AW_RETURN_IF(!ws->bx, AW_ERR_NOMEM, "out of memory for the bf16 inputs of a linear (%zu bytes)", bytes);
    return AW_OK;
}

static aw_status need_wdq(aw_fwd_ws *ws, const aw_model_config *c)
{
    if (ws->wdq) return AW_OK;
    if (ws->wconv) {
        ws->wdq = ws->wconv; /* the widening and the dequantization never overlap */
        return AW_OK;
    }
    AW_TRY(ws->ops->vt->alloc(ws->ops, &ws->wdq_own, aw_arch_max_linear(c) * sizeof(float),
                              "dequantized weights of a linear"));
    ws->wdq = ws->wdq_own;
    return AW_OK;
}

/* Floats of xstep and xk, and bytes of gscratch, for T tokens of scheme sc
 * (using the CPU's scratch size when ops is NULL). */
static void scheme_extra(const aw_ops *ops, const aw_model_config *c, int T, const aw_scheme *sc, size_t *n_step,
                         size_t *g_bytes, size_t *n_keep)
{
    const aw_arch *a = aw_arch_of(c);
    *n_step = *g_bytes = *n_keep = 0;
    for (int l = 0; l < a->n_lin; l++) {
        int in = aw_arch_dim(c, a->lin[l].in), out = aw_arch_dim(c, a->lin[l].out);
        if (sc->act == AW_ACT_DYNAMIC) {
            size_t ns = (size_t)T * aw_act_groups(in, sc->agroup);
            size_t gb = ops ? ops->vt->gemm_groups_scratch(T, in, out, sc->agroup, sc->group)
                            : aw_k_gemm_groups_scratch(T, in, out, sc->agroup, sc->group);
            *n_step = ns > *n_step ? ns : *n_step;
            *g_bytes = gb > *g_bytes ? gb : *g_bytes;
        }
        size_t nk = (size_t)T * aw_scheme_n_keep(sc, in);
        *n_keep = nk > *n_keep ? nk : *n_keep;
    }
}

uint64_t aw_fwd_ws_scheme_bytes(const aw_model_config *c, int max_T, const aw_scheme *sc, int has_wconv)
{
    size_t ns, gb, nk;
    scheme_extra(NULL, c, max_T, sc, &ns, &gb, &nk);
    uint64_t wdq = aw_scheme_coded(sc) && !has_wconv ? aw_arch_max_linear(c) * sizeof(float) : 0;
    return wdq + (ns + nk) * sizeof(float) + gb + (gb ? 16 : 0);
}

aw_status aw_fwd_ws_need_scheme(aw_fwd_ws *ws, const aw_model_config *c, const aw_scheme *sc)
{
    if (aw_scheme_coded(sc)) AW_TRY(need_wdq(ws, c));
    size_t ns, gb, nk;
    scheme_extra(ws->ops, c, ws->max_T, sc, &ns, &gb, &nk);
    if (ns + gb + nk == 0) return AW_OK;
    if (ws->extra_own) ws->ops->vt->release(ws->ops, ws->extra_own);
    ws->extra_own = NULL;
    ws->xstep = ws->xk = NULL;
    ws->gscratch = NULL;
    size_t gb_al = (gb + 15) & ~(size_t)15;
    AW_TRY(ws->ops->vt->alloc(ws->ops, &ws->extra_own, gb_al + (ns + nk) * sizeof(float) + 16,
                              "quantized activations' scratch"));
    char *p = ws->extra_own;
    if (gb) ws->gscratch = p;
    p += gb_al;
    if (ns) ws->xstep = (float *)p;
    p += ns * sizeof(float);
    if (nk) ws->xk = (float *)p;
    return AW_OK;
}

aw_qlin_scratch aw_fwd_ws_qlin(const aw_fwd_ws *ws)
{
    aw_qlin_scratch s = {ws->xq, ws->acc, ws->wdq, ws->xstep, ws->gscratch, ws->xk};
    return s;
}

aw_status aw_qlinear_ops(const aw_ops *o, const aw_qblock *q, int l, const float *x, float *y, int T,
                         const aw_qlin_scratch *s)
{
    const aw_qlinear *ql = &q->lin[l];
    const aw_scheme *sc = &q->scheme;
    if (sc->act == AW_ACT_DYNAMIC) {
        AW_RETURN_IF(!s->xq || !s->xstep || !s->gscratch, AW_ERR_ARG,
                     "a layer with dynamic activations needs its scratch (aw_fwd_ws_need_scheme)");
        AW_TRY(o->vt->act_quant(o, x, T, ql->in, sc->abits, sc->agroup, ql->keep_mask, s->xq, s->xstep));
        AW_TRY(o->vt->gemm_groups(o, s->xq, s->xstep, sc->agroup, ql->wq, ql->wstep, ql->group, ql->bias, y, T,
                                  ql->in, ql->out, s->gscratch));
    } else if (ql->codes) {
        AW_RETURN_IF(!s->wdq, AW_ERR_ARG, "a weight-only layer needs a dequantization buffer");
        AW_TRY(o->vt->dequant_groups(o, ql->codes, ql->wstep, ql->wzero, ql->out, ql->in, ql->group, s->wdq));
        AW_TRY(o->vt->linear(o, x, s->wdq, AW_DT_F32, ql->bias, y, T, ql->in, ql->out, NULL));
    } else {
        AW_TRY(o->vt->quantize_i8(o, x, (size_t)T * ql->in, ql->x_step, s->xq));
        AW_TRY(o->vt->gemm_i8(o, s->xq, ql->wq, s->acc, T, ql->in, ql->out));
        AW_TRY(o->vt->dequant_acc(o, s->acc, ql->bias, ql->x_step, ql->w_step, y, T, ql->out));
    }
    if (ql->n_keep == 0) return AW_OK;
    AW_RETURN_IF(!s->xk, AW_ERR_ARG, "a layer with kept channels needs its scratch (aw_fwd_ws_need_scheme)");
    AW_TRY(o->vt->gather_cols(o, x, T, ql->in, ql->keep_idx, ql->n_keep, s->xk));
    return o->vt->add_linear(o, s->xk, ql->wkeep, y, T, ql->n_keep, ql->out);
}

aw_status aw_fwd_linear(const aw_block *b, const aw_qblock *q, int l, const float *x, float *y, int T,
                        aw_fwd_ws *ws)
{
    const aw_ops *o = ws->ops;
    if (q) {
        aw_qlin_scratch qs = aw_fwd_ws_qlin(ws);
        return aw_qlinear_ops(o, q, l, x, y, T, &qs);
    }
    const aw_linear *ln = &b->lin[l];
    if (ws->lin_bf16) { /* the weights' bf16 copy in the f32 buffer (half of it) */
        AW_RETURN_IF(!ws->bx, AW_ERR_ARG, "lin_bf16 without aw_fwd_ws_need_bf16");
        AW_TRY(aw_k_linear_bf16(x, ln->w, b->wdt, ln->b, y, T, ln->in, ln->out, ws->bx, (uint16_t *)(void *)ws->wconv));
    } else
        AW_TRY(o->vt->linear(o, x, ln->w, b->wdt, ln->b, y, T, ln->in, ln->out, ws->wconv));
    return ws->lin_fn ? ws->lin_fn(ws->lin_ctx, l, x, y, T) : AW_OK;
}

/* The family's norm of x with gain g (and bias beta for LayerNorm). */
static aw_status norm(const aw_ops *o, const aw_model_config *c, const float *g, const float *beta,
                      const float *x, float *y, int T)
{
    if (aw_arch_of(c)->norm == AW_NORM_RMS) return o->vt->rmsnorm(o, x, g, y, T, c->hidden_size, (float)c->rms_norm_eps);
    return o->vt->layernorm(o, x, g, beta, y, T, c->hidden_size, AW_LN_EPS);
}

aw_status aw_fwd_norm(const aw_model_config *c, const aw_block *b, const aw_qblock *q, int n, const float *x,
                      float *y, int T, aw_fwd_ws *ws)
{
    const float *g = q ? q->norm_g[n] : b->norm_g[n], *beta = q ? q->norm_b[n] : b->norm_b[n];
    return norm(ws->ops, c, g, beta, x, y, T);
}

aw_status aw_fwd_attention(const aw_model_config *c, int n_seq, int L, aw_fwd_ws *ws)
{
    const aw_ops *o = ws->ops;
    return o->vt->attention(o, ws->q, ws->k, ws->v, ws->a, n_seq, L, c->num_attention_heads,
                            c->num_key_value_heads, c->hidden_size, 1.0f / sqrtf((float)c->head_dim),
                            ws->heads_per_chunk, ws->att_ws);
}

aw_status aw_fwd_attention_half(const aw_model_config *c, const aw_block *b, const aw_qblock *q, float *h,
                                int n_seq, int L, aw_fwd_ws *ws, aw_tap_fn fn, void *ctx)
{
    enum { Q = 0, K, V, O };
    const aw_ops *o = ws->ops;
    int T = n_seq * L, d = c->hidden_size;
    AW_TRY(aw_fwd_norm(c, b, q, 0, h, ws->x, T, ws));
    if (fn) AW_TRY(fn(ctx, AW_TAP_ATTN_IN, ws->x, T, d));
    AW_TRY(aw_fwd_linear(b, q, Q, ws->x, ws->q, T, ws));
    AW_TRY(aw_fwd_linear(b, q, K, ws->x, ws->k, T, ws));
    AW_TRY(aw_fwd_linear(b, q, V, ws->x, ws->v, T, ws));
    if (aw_arch_of(c)->rope) {
        float theta = (float)c->rope_theta;
        AW_TRY(o->vt->rope(o, ws->q, n_seq, L, c->num_attention_heads, c->head_dim, theta));
        AW_TRY(o->vt->rope(o, ws->k, n_seq, L, c->num_key_value_heads, c->head_dim, theta));
    }
    AW_TRY(aw_fwd_attention(c, n_seq, L, ws));
    if (fn) AW_TRY(fn(ctx, AW_TAP_ATTN_OUT, ws->a, T, d));
    AW_TRY(aw_fwd_linear(b, q, O, ws->a, ws->y, T, ws));
    return o->vt->add(o, h, ws->y, (size_t)T * d);
}

aw_status aw_block_forward(const aw_model_config *c, const aw_block *b, const aw_qblock *q, float *h,
                           int n_seq, int L, aw_fwd_ws *ws, aw_tap_fn fn, void *ctx)
{
    return aw_arch_of(c)->forward(c, b, q, h, n_seq, L, ws, fn, ctx);
}

aw_status aw_model_embed_ops(const aw_ops *o, const aw_model_config *c, const aw_model_ends *e,
                             const uint32_t *tokens, int n_seq, int L, float *h)
{
    return o->vt->embed(o, tokens, n_seq, L, e->embed, e->pos, aw_arch_of(c)->pos_offset, c->hidden_size, h);
}

void aw_model_embed(const aw_model_config *c, const aw_model_ends *e, const uint32_t *tokens,
                    int n_seq, int L, float *h)
{
    (void)aw_model_embed_ops(aw_ops_cpu(), c, e, tokens, n_seq, L, h);
}

aw_status aw_model_logits_ops(const aw_ops *o, const aw_model_config *c, const aw_model_ends *e,
                              const float *h, float *x, float *logits, int T)
{
    AW_TRY(norm(o, c, e->lnf_g, e->lnf_b, h, x, T));
    return o->vt->linear(o, x, e->head, AW_DT_F32, NULL, logits, T, c->hidden_size, c->vocab_size, NULL);
}

void aw_model_logits(const aw_model_config *c, const aw_model_ends *e, const float *h, float *x,
                     float *logits, int T)
{
    (void)aw_model_logits_ops(aw_ops_cpu(), c, e, h, x, logits, T);
}
