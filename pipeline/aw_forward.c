/* aw_forward.c - the OPT block forward as kernel calls (see aw_forward.h). */
#include "aw_forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

uint64_t aw_fwd_ws_bytes(const aw_opt_config *c, int max_n_seq, int L)
{
    size_t T = (size_t)max_n_seq * (size_t)L, d = (size_t)c->hidden_size, f = (size_t)c->ffn_dim;
    size_t wide = f > d ? f : d;
    size_t att = aw_k_attention_workspace(L, pick_heads_per_chunk(c->num_attention_heads, L));
    size_t n_float = 5 * T * d + T * f + T * wide + att + d * f;
    return n_float * sizeof(float) + T * wide * sizeof(int32_t) + T * wide;
}

aw_status aw_fwd_ws_create(const aw_opt_config *c, int max_n_seq, int L, aw_fwd_ws *ws)
{
    memset(ws, 0, sizeof *ws);
    size_t T = (size_t)max_n_seq * (size_t)L, d = (size_t)c->hidden_size, f = (size_t)c->ffn_dim;
    size_t wide = f > d ? f : d;
    ws->heads_per_chunk = pick_heads_per_chunk(c->num_attention_heads, L);
    size_t att = aw_k_attention_workspace(L, ws->heads_per_chunk);
    size_t n_float = 5 * T * d + T * f + T * wide + att + d * f;
    size_t bytes = n_float * sizeof(float) + T * wide * sizeof(int32_t) + T * wide;
    ws->arena = malloc(bytes);
    AW_RETURN_IF(!ws->arena, AW_ERR_NOMEM, "out of memory for activations of %zu tokens (%zu bytes)",
                 T, bytes);
    float *p = ws->arena;
    ws->x = p, p += T * d;
    ws->q = p, p += T * d;
    ws->k = p, p += T * d;
    ws->v = p, p += T * d;
    ws->a = p, p += T * d;
    ws->f = p, p += T * f;
    ws->y = p, p += T * wide;
    ws->att_ws = p, p += att;
    ws->wconv = p, p += d * f;
    ws->acc = (int32_t *)p;
    ws->xq = (int8_t *)(ws->acc + T * wide);
    ws->max_T = (int)T;
    ws->L = L;
    return AW_OK;
}

void aw_fwd_ws_destroy(aw_fwd_ws *ws)
{
    if (!ws) return;
    free(ws->arena);
    memset(ws, 0, sizeof *ws);
}

void aw_linear_w8a8(const aw_qblock *q, aw_linear_id l, const float *x, float *y, int T,
                    int8_t *xq, int32_t *acc)
{
    const aw_qlinear *ql = &q->lin[l];
    aw_k_quantize_i8(x, (size_t)T * ql->in, ql->x_step, xq);
    aw_k_gemm_i8(xq, ql->wq, acc, T, ql->in, ql->out);
    aw_k_dequant_acc(acc, ql->bias, ql->x_step, ql->w_step, y, T, ql->out);
}

/* y = linear l of x: floating point from b, or W8A8 from q. */
static void linear(const aw_block *b, const aw_qblock *q, aw_linear_id l, const float *x, float *y,
                   int T, aw_fwd_ws *ws)
{
    if (q) {
        aw_linear_w8a8(q, l, x, y, T, ws->xq, ws->acc);
    } else {
        const aw_linear *ln = &b->lin[l];
        aw_k_linear(x, aw_linear_f32(b, l, ws->wconv), ln->b, y, T, ln->in, ln->out);
    }
}

static void add_into(float *h, const float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) h[i] += y[i];
}

void aw_block_forward(const aw_opt_config *c, const aw_block *b, const aw_qblock *q, float *h,
                      int n_seq, int L, aw_fwd_ws *ws, aw_tap_fn fn, void *ctx)
{
    /* LayerNorms: the folded ones of a quantized block */
    const float *ln1_g = q ? q->ln1_g : b->ln1_g, *ln1_b = q ? q->ln1_b : b->ln1_b;
    const float *ln2_g = q ? q->ln2_g : b->ln2_g, *ln2_b = q ? q->ln2_b : b->ln2_b;
    int T = n_seq * L, d = c->hidden_size, f = c->ffn_dim;
    int hd = d / c->num_attention_heads;
    size_t Td = (size_t)T * d;

    aw_k_layernorm(h, ln1_g, ln1_b, ws->x, T, d, AW_LN_EPS);
    if (fn) fn(ctx, AW_TAP_QKV, ws->x, T, d);
    linear(b, q, AW_LIN_Q, ws->x, ws->q, T, ws);
    linear(b, q, AW_LIN_K, ws->x, ws->k, T, ws);
    linear(b, q, AW_LIN_V, ws->x, ws->v, T, ws);
    aw_k_attention(ws->q, ws->k, ws->v, ws->a, n_seq, L, c->num_attention_heads, d,
                   1.0f / sqrtf((float)hd), ws->heads_per_chunk, ws->att_ws);
    if (fn) fn(ctx, AW_TAP_O, ws->a, T, d);
    linear(b, q, AW_LIN_O, ws->a, ws->y, T, ws);
    add_into(h, ws->y, Td);

    aw_k_layernorm(h, ln2_g, ln2_b, ws->x, T, d, AW_LN_EPS);
    if (fn) fn(ctx, AW_TAP_FC1, ws->x, T, d);
    linear(b, q, AW_LIN_FC1, ws->x, ws->f, T, ws);
    aw_k_relu(ws->f, (size_t)T * f);
    if (fn) fn(ctx, AW_TAP_FC2, ws->f, T, f);
    linear(b, q, AW_LIN_FC2, ws->f, ws->y, T, ws);
    add_into(h, ws->y, Td);
}

void aw_model_embed(const aw_opt_config *c, const aw_model_ends *e, const uint32_t *tokens,
                    int n_seq, int L, float *h)
{
    aw_k_embed(tokens, n_seq, L, e->embed, e->pos, c->hidden_size, h);
}

void aw_model_logits(const aw_opt_config *c, const aw_model_ends *e, const float *h, float *x,
                     float *logits, int T)
{
    aw_k_layernorm(h, e->lnf_g, e->lnf_b, x, T, c->hidden_size, AW_LN_EPS);
    aw_k_linear(x, e->embed, NULL, logits, T, c->hidden_size, c->vocab_size);
}
