/*
 * aw_arch_llama.c - LLaMA (LLaMA 2/3, Mistral-shaped): RMSNorm, RoPE,
 * grouped-query attention, SwiGLU MLP, no biases, tied or separate head:
 *
 *   x1 = RMS1(h)                     tap ATTN_IN  (input of q/k/v_proj)
 *   a  = attn(rope(q_proj(x1)), rope(k_proj(x1)), v_proj(x1))
 *                                    tap ATTN_OUT (input of o_proj)
 *   h  = h + o_proj(a)
 *   x2 = RMS2(h)                     tap MLP_IN   (input of gate/up_proj)
 *   f  = silu(gate_proj(x2)) * up_proj(x2)
 *                                    tap MLP_MID  (input of down_proj)
 *   h  = h + down_proj(f)
 *
 * Folds: input_layernorm -> q/k/v; v_proj rows -> o_proj, one factor per
 * KV-group channel (attention is linear in V; every query head of a group
 * reads the same V rows); post_attention_layernorm -> gate/up; up_proj rows
 * -> down_proj (the SwiGLU product is linear in up).
 */
#include "aw_arch.h"
#include "aw_forward.h"

enum { Q = 0, K, V, O, GATE, UP, DOWN, N_LIN };

static aw_status llama_forward(const aw_model_config *c, const aw_block *b, const aw_qblock *q, float *h,
                               int n_seq, int L, aw_fwd_ws *ws, aw_tap_fn fn, void *ctx)
{
    const aw_ops *o = ws->ops;
    int T = n_seq * L, d = c->hidden_size, f = c->ffn_dim;
    size_t Td = (size_t)T * d;

    AW_TRY(aw_fwd_attention_half(c, b, q, h, n_seq, L, ws, fn, ctx));
    AW_TRY(aw_fwd_norm(c, b, q, 1, h, ws->x, T, ws));
    if (fn) AW_TRY(fn(ctx, AW_TAP_MLP_IN, ws->x, T, d));
    AW_TRY(aw_fwd_linear(b, q, GATE, ws->x, ws->f, T, ws));
    AW_TRY(aw_fwd_linear(b, q, UP, ws->x, ws->y, T, ws));
    AW_TRY(o->vt->swiglu(o, ws->f, ws->y, ws->f, (size_t)T * f));
    if (fn) AW_TRY(fn(ctx, AW_TAP_MLP_MID, ws->f, T, f));
    AW_TRY(aw_fwd_linear(b, q, DOWN, ws->f, ws->y, T, ws));
    return o->vt->add(o, h, ws->y, Td);
}

#define W(i) {AW_T_LIN_W, i}
#define B(i) {AW_T_LIN_B, i}

const aw_arch aw_arch_llama = {
    .family = AW_FAMILY_LLAMA,
    .label = "LLaMA",
    .layers_prefix = "model.layers",
    .n_lin = N_LIN,
    .lin = {
        [Q] = {"self_attn.q_proj", AW_DIM_MODEL, AW_DIM_MODEL, AW_TAP_ATTN_IN},
        [K] = {"self_attn.k_proj", AW_DIM_MODEL, AW_DIM_KV, AW_TAP_ATTN_IN},
        [V] = {"self_attn.v_proj", AW_DIM_MODEL, AW_DIM_KV, AW_TAP_ATTN_IN},
        [O] = {"self_attn.o_proj", AW_DIM_MODEL, AW_DIM_MODEL, AW_TAP_ATTN_OUT},
        [GATE] = {"mlp.gate_proj", AW_DIM_MODEL, AW_DIM_FFN, AW_TAP_MLP_IN},
        [UP] = {"mlp.up_proj", AW_DIM_MODEL, AW_DIM_FFN, AW_TAP_MLP_IN},
        [DOWN] = {"mlp.down_proj", AW_DIM_FFN, AW_DIM_MODEL, AW_TAP_MLP_MID},
    },
    .tap = {
        [AW_TAP_ATTN_IN] = {"input_norm->qkv", "q_proj, k_proj, v_proj", AW_DIM_MODEL, AW_FOLD_NORM, 0, 1},
        [AW_TAP_ATTN_OUT] = {"v->o_proj", "o_proj", AW_DIM_MODEL, AW_FOLD_ROWS, V, 0},
        [AW_TAP_MLP_IN] = {"post_attn_norm->gate/up", "gate_proj, up_proj", AW_DIM_MODEL, AW_FOLD_NORM, 1, 1},
        [AW_TAP_MLP_MID] = {"up->down", "down_proj", AW_DIM_FFN, AW_FOLD_ROWS, UP, 0},
    },
    .grouped_kv = 1,
    .rope = 1,
    .norm = AW_NORM_RMS,
    .norm_name = {"input_layernorm", "post_attention_layernorm"},
    .n_block_tensors = 16,
    .block_tensors = {{AW_T_NORM_W, 0}, W(Q), B(Q), W(K), B(K), W(V), B(V), W(O), B(O), {AW_T_NORM_W, 1},
                      W(GATE), B(GATE), W(UP), B(UP), W(DOWN), B(DOWN)},
    .n_end_tensors = 3,
    .end_tensors = {{AW_T_EMBED, 0}, {AW_T_FINAL_W, 0}, {AW_T_HEAD, 0}},
    .end_name = {
        [AW_T_EMBED] = "model.embed_tokens.weight",
        [AW_T_FINAL_W] = "model.norm.weight",
        [AW_T_HEAD] = "lm_head.weight",
    },
    .pos_offset = 0,
    .forward = llama_forward,
};
