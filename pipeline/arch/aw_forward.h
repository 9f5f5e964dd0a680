/*
 * aw_forward.h - the decoder block forward over a block of samples: the
 * family's own sequence of kernel calls (aw_arch.h), with the four taps
 * where linear inputs are observed; the pieces every family's forward is
 * written with (a linear, a norm, attention); and the model's ends
 * (embedding with or without positions, final norm, head).
 *
 * With a quantized block, every linear is W8A8: its input is quantized with
 * the layer's static step, multiplied as int8 x int8 -> int32, dequantized,
 * and the corrected bias added; norms are the folded ones.
 */
#ifndef AW_FORWARD_H
#define AW_FORWARD_H

#include <stdint.h>

#include "aw_config.h"
#include "aw_model.h"

/* Called after each floating-point linear l of a forward with its input x
 * (T, in) and output y (T, out), in the forward's memory; a failure stops
 * the forward. */
typedef aw_status (*aw_lin_fn)(void *ctx, int l, const float *x, const float *y, int T);

/* Scratch of one quantized linear of T tokens (aw_qlinear_ops), in the
 * memory of the ops it runs with: xq (T, in) int8 and acc (T, out) int32
 * (W8A8 and dynamic codes); wdq (in * out floats: coded weights
 * dequantized); dynamic activations: xstep (T, steps per token) and
 * gscratch (the ops' gemm_groups_scratch); kept channels: xk (T, n_keep).
 * A member the scheme does not use may be NULL. */
typedef struct {
    int8_t *xq;
    int32_t *acc;
    float *wdq;
    float *xstep;
    void *gscratch;
    float *xk;
} aw_qlin_scratch;

/* Scratch for one block of up to max_T = n_seq * L tokens; one allocation
 * in the memory of ops (the backend every forward on it runs with). */
typedef struct aw_fwd_ws {
    const aw_ops *ops;
    void *arena;
    int max_T, L;
    float *x;      /* (T, d) LayerNorm output */
    float *q, *a;  /* (T, d) */
    float *k, *v;  /* (T, kv width) */
    float *f;      /* (T, ffn) */
    float *y;      /* (T, max(d, ffn)) a linear's output */
    float *att_ws; /* attention workspace */
    float *wconv;  /* (max in*out) a linear's weights widened to f32 (NULL when
                      ops multiplies stored weights itself) */
    float *wdq;    /* (max in*out) a weight-only linear's weights dequantized:
                      wconv, or from aw_fwd_ws_need_wdq; NULL until needed */
    void *wdq_own; /* wdq when allocated for it */
    float *xstep;  /* dynamic activations: (max_T, steps per token), from aw_fwd_ws_need_scheme */
    void *gscratch;/* dynamic activations: the grouped product's scratch */
    float *xk;     /* kept channels: (max_T, most kept of a tap) */
    void *extra_own; /* xstep, gscratch and xk: one allocation */
    int8_t *xq;    /* (T, max(d, ffn)) */
    int32_t *acc;  /* (T, max(d, ffn)) */
    int heads_per_chunk;
    /* --cpu-precision bf16 (aw_fwd_ws_need_bf16): with lin_bf16 set, the fp
     * linears run aw_k_linear_bf16 with bx (max_T, widest input) for their
     * inputs and wconv for their weights in bf16; a CPU table only */
    uint16_t *bx;
    int lin_bf16;
    aw_lin_fn lin_fn; /* NULL (as created), or called after every fp linear */
    void *lin_ctx;
} aw_fwd_ws;

aw_status aw_fwd_ws_create(const aw_model_config *c, int max_n_seq, int L, aw_fwd_ws *ws);
/* The same in the memory of ops. */
aw_status aw_fwd_ws_create_ops(const aw_ops *ops, const aw_model_config *c, int max_n_seq, int L,
                               aw_fwd_ws *ws);
/* Bytes aw_fwd_ws_create allocates (for plans); wconv: with the f32
 * weight buffer. */
uint64_t aw_fwd_ws_bytes(const aw_model_config *c, int max_n_seq, int L);
uint64_t aw_fwd_ws_bytes_ops(const aw_model_config *c, int max_n_seq, int L, int wconv);
void aw_fwd_ws_destroy(aw_fwd_ws *ws);
/* Make sure ws has what quantized blocks of scheme sc need (nothing more
 * for W8A8 without kept channels): wdq for coded weights (wconv, or one more
 * allocation of the largest linear in f32 in ops's memory), and xstep,
 * gscratch, xk. Call once per scheme; AW_ERR_NOMEM. */
aw_status aw_fwd_ws_need_scheme(aw_fwd_ws *ws, const aw_model_config *c, const aw_scheme *sc);
/* Bytes aw_fwd_ws_need_scheme adds for ws of max_T tokens (plans). */
uint64_t aw_fwd_ws_scheme_bytes(const aw_model_config *c, int max_T, const aw_scheme *sc, int has_wconv);
/* Make sure ws can run its fp linears in bf16 (ws->bx, on the host): a CPU
 * table with its f32 weight buffer, else AW_ERR_UNSUPPORTED; AW_ERR_NOMEM.
 * lin_bf16 stays as it is. */
aw_status aw_fwd_ws_need_bf16(aw_fwd_ws *ws, const aw_model_config *c);
/* Bytes aw_fwd_ws_need_bf16 adds for ws of max_T tokens (plans). */
uint64_t aw_fwd_ws_bf16_bytes(const aw_model_config *c, int max_T);
/* The scratch of ws for aw_qlinear_ops. */
aw_qlin_scratch aw_fwd_ws_qlin(const aw_fwd_ws *ws);

/* aw_tap_fn (aw_arch.h) is called at each tap with the tap's input x
 * (T, in), in the block's own coordinates (equalized ones for a quantized
 * block), in the memory of the forward's ops. A failure stops the forward. */

/* h (n_seq*L, d) <- block(h), with ws->ops; b, q and h in its memory
 * (aw_block_to_dev). q NULL: floating point with b; else W8A8 with q (b is
 * then unused and may be NULL). fn may be NULL. Cannot fail on the CPU. */
aw_status aw_block_forward(const aw_model_config *c, const aw_block *b, const aw_qblock *q, float *h,
                           int n_seq, int L, aw_fwd_ws *ws, aw_tap_fn fn, void *ctx);

/* The pieces of a family's forward, with ws->ops: y = linear l (floating
 * point from b, or W8A8 from q when q is not NULL); y = norm n of x (the
 * folded one of q); ws->a = causal attention of ws->q, ws->k, ws->v (grouped
 * when c has fewer KV heads). */
aw_status aw_fwd_linear(const aw_block *b, const aw_qblock *q, int l, const float *x, float *y, int T,
                        aw_fwd_ws *ws);
aw_status aw_fwd_norm(const aw_model_config *c, const aw_block *b, const aw_qblock *q, int n, const float *x,
                      float *y, int T, aw_fwd_ws *ws);
aw_status aw_fwd_attention(const aw_model_config *c, int n_seq, int L, aw_fwd_ws *ws);
/* The attention half every family's block shares (linears 0-3 are q, k, v,
 * the output projection: aw_arch.h):
 *   x = norm 0 (h)                     tap ATTN_IN
 *   a = attn(q(x), k(x), v(x))         RoPE on q and k where the family has it
 *                                      tap ATTN_OUT
 *   h = h + o(a) */
aw_status aw_fwd_attention_half(const aw_model_config *c, const aw_block *b, const aw_qblock *q, float *h,
                                int n_seq, int L, aw_fwd_ws *ws, aw_tap_fn fn, void *ctx);

/* One quantized linear: y (T, out) from x (T, in) with layer l of q.
 * W8A8: x quantized to INT8 with the static step, integer product, scaled
 * back. Weight-only: the codes dequantized into wdq, then a float product.
 * Dynamic: x quantized per token or group (aw_actq.h; kept channels masked
 * out), the grouped integer product with the signed weights. Kept
 * channels: y += x[:, kept] wkeep^T (f32). AW_ERR_ARG when the scratch the
 * scheme needs is missing. */
aw_status aw_qlinear_ops(const aw_ops *o, const aw_qblock *q, int l, const float *x, float *y, int T,
                         const aw_qlin_scratch *s);

/* h (n_seq*L, d) = token (+ position, where the family has a table)
 * embeddings of tokens (n_seq*L ids). */
aw_status aw_model_embed_ops(const aw_ops *o, const aw_model_config *c, const aw_model_ends *e,
                             const uint32_t *tokens, int n_seq, int L, float *h);
void aw_model_embed(const aw_model_config *c, const aw_model_ends *e, const uint32_t *tokens,
                    int n_seq, int L, float *h);
/* logits (T, vocab) = norm_f(h) head^T; x (T, d) is scratch. */
aw_status aw_model_logits_ops(const aw_ops *o, const aw_model_config *c, const aw_model_ends *e,
                              const float *h, float *x, float *logits, int T);
void aw_model_logits(const aw_model_config *c, const aw_model_ends *e, const float *h, float *x,
                     float *logits, int T);

#define AW_LN_EPS 1e-5f

#endif
