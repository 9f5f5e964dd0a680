/*
 * aw_arch_opt.c - OPT (pre-LayerNorm blocks, learned positions offset by 2,
 * ReLU MLP, tied head):
 *
 *   x1 = LN1(h)                      tap ATTN_IN  (input of q/k/v_proj)
 *   a  = attn(q_proj(x1), k_proj(x1), v_proj(x1))
 *                                    tap ATTN_OUT (input of out_proj)
 *   h  = h + out_proj(a)
 *   x2 = LN2(h)                      tap MLP_IN   (input of fc1)
 *   f  = relu(fc1(x2))               tap MLP_MID  (input of fc2)
 *   h  = h + fc2(f)
 *
 * Folds: LN1 -> q/k/v; v_proj rows -> out_proj (attention is linear in V);
 * LN2 -> fc1; fc1 rows -> fc2 (ReLU is positive-homogeneous).
 */
#include <math.h>

#include "aw_arch.h"
#include "aw_forward.h"

enum { Q = 0, K, V, O, FC1, FC2, N_LIN };

static aw_status opt_forward(const aw_model_config *c, const aw_block *b, const aw_qblock *q, float *h,
                             int n_seq, int L, aw_fwd_ws *ws, aw_tap_fn fn, void *ctx)
{
    const aw_ops *o = ws->ops;
    int T = n_seq * L, d = c->hidden_size, f = c->ffn_dim;
    size_t Td = (size_t)T * d;

    AW_TRY(aw_fwd_attention_half(c, b, q, h, n_seq, L, ws, fn, ctx));
    AW_TRY(aw_fwd_norm(c, b, q, 1, h, ws->x, T, ws));
    if (fn) AW_TRY(fn(ctx, AW_TAP_MLP_IN, ws->x, T, d));
    AW_TRY(aw_fwd_linear(b, q, FC1, ws->x, ws->f, T, ws));
    AW_TRY(o->vt->relu(o, ws->f, (size_t)T * f));
    if (fn) AW_TRY(fn(ctx, AW_TAP_MLP_MID, ws->f, T, f));
    AW_TRY(aw_fwd_linear(b, q, FC2, ws->f, ws->y, T, ws));
    return o->vt->add(o, h, ws->y, Td);
}

#define W(i) {AW_T_LIN_W, i}
#define B(i) {AW_T_LIN_B, i}

const aw_arch aw_arch_opt = {
    .family = AW_FAMILY_OPT,
    .label = "OPT",
    .layers_prefix = "model.decoder.layers",
    .n_lin = N_LIN,
    .lin = {
        [Q] = {"self_attn.q_proj", AW_DIM_MODEL, AW_DIM_MODEL, AW_TAP_ATTN_IN},
        [K] = {"self_attn.k_proj", AW_DIM_MODEL, AW_DIM_MODEL, AW_TAP_ATTN_IN},
        [V] = {"self_attn.v_proj", AW_DIM_MODEL, AW_DIM_MODEL, AW_TAP_ATTN_IN},
        [O] = {"self_attn.out_proj", AW_DIM_MODEL, AW_DIM_MODEL, AW_TAP_ATTN_OUT},
        [FC1] = {"fc1", AW_DIM_MODEL, AW_DIM_FFN, AW_TAP_MLP_IN},
        [FC2] = {"fc2", AW_DIM_FFN, AW_DIM_MODEL, AW_TAP_MLP_MID},
    },
    .tap = {
        [AW_TAP_ATTN_IN] = {"ln1->qkv", "q_proj, k_proj, v_proj", AW_DIM_MODEL, AW_FOLD_NORM, 0, 1},
        [AW_TAP_ATTN_OUT] = {"v->out_proj", "out_proj", AW_DIM_MODEL, AW_FOLD_ROWS, V, 0},
        [AW_TAP_MLP_IN] = {"ln2->fc1", "fc1", AW_DIM_MODEL, AW_FOLD_NORM, 1, 1},
        [AW_TAP_MLP_MID] = {"fc1->fc2", "fc2", AW_DIM_FFN, AW_FOLD_ROWS, FC1, 0},
    },
    .norm = AW_NORM_LAYER,
    /* HF OPT names the block's second LayerNorm final_layer_norm */
    .norm_name = {"self_attn_layer_norm", "final_layer_norm"},
    .n_block_tensors = 16,
    .block_tensors = {W(Q), B(Q), W(K), B(K), W(V), B(V), W(O), B(O), {AW_T_NORM_W, 0}, {AW_T_NORM_B, 0},
                      W(FC1), B(FC1), W(FC2), B(FC2), {AW_T_NORM_W, 1}, {AW_T_NORM_B, 1}},
    .n_end_tensors = 4,
    .end_tensors = {{AW_T_EMBED, 0}, {AW_T_POS, 0}, {AW_T_FINAL_W, 0}, {AW_T_FINAL_B, 0}},
    .end_name = {
        [AW_T_EMBED] = "model.decoder.embed_tokens.weight",
        [AW_T_POS] = "model.decoder.embed_positions.weight",
        [AW_T_FINAL_W] = "model.decoder.final_layer_norm.weight",
        [AW_T_FINAL_B] = "model.decoder.final_layer_norm.bias",
    },
    .pos_offset = AW_OPT_POS_OFFSET,
    .forward = opt_forward,
};
