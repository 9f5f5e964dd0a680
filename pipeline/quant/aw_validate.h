/*
 * aw_validate.h - the W8A8 error on held-out tokens.
 *
 * Per layer: the floating-point block runs on the held-out activations; at
 * each tap, every linear fed by it is computed twice from the same fp input,
 * in floating point (original weights) and as W8A8 (input divided by the
 * tap's s, real int8 x int8 -> int32 product, corrected bias). Sums give the
 * relative error ||y_q - y|| / ||y||, the SQNR, and the mean error per
 * output channel (what bias correction targets).
 * End to end: the fp and the W8A8 models run side by side; perplexity of
 * both on the next tokens, mean KL(p_fp || p_q) and top-1 agreement.
 */
#ifndef AW_VALIDATE_H
#define AW_VALIDATE_H

#include <stdint.h>

#include "aw_config.h"
#include "aw_forward.h"
#include "aw_model.h"

/* Validation sums of one layer, laid out in one vector so that a block of
 * samples' part can be moved between ranks and added in block order:
 * [sq_err, sq_ref of each linear][tokens][col_err of each linear (out
 * values)]. */
typedef struct {
    void *arena;
    size_t n;                      /* doubles in a part */
    double *total;                 /* (n) sums over all blocks, in block order */
    double *part;                  /* (n) the current block's sums */
    size_t col_off[AW_LIN_MAX];  /* offset of each linear's col_err */
    const aw_ops *ops;             /* where the observer accumulates (aw_layer_val_attach) */
    double *d_part;                /* part, or its mirror in ops's memory */
} aw_layer_val;

#define AW_VAL_SQ_ERR(l) (2 * (l))
#define AW_VAL_SQ_REF(l) (2 * (l) + 1)
#define AW_VAL_TOKENS (2 * AW_LIN_MAX)

aw_status aw_layer_val_create(const aw_model_config *c, aw_layer_val *v);
void aw_layer_val_destroy(aw_layer_val *v);
/* Accumulate in the memory of ops from now on (a zeroed mirror of part). */
aw_status aw_layer_val_attach(aw_layer_val *v, const aw_ops *ops);
/* Copy the current part to dst (n doubles) and clear it. */
aw_status aw_layer_val_take_part(aw_layer_val *v, double *dst);
/* total += part (call in block order). */
void aw_layer_val_add_part(aw_layer_val *v, const double *part);

/* Scratch for the per-layer comparison of up to max_T tokens, in the memory
 * of the forward's ops. */
typedef struct {
    const aw_ops *ops;
    void *arena;
    float *xs, *yf, *yq; /* (T, max(d, ffn)) */
    float *wconv;        /* (d * ffn) fp weights widened to f32 */
    int8_t *xq;
    int32_t *acc;
    /* shared with the forward's workspace (aw_fwd_ws_need_scheme): dynamic
     * activations' steps and product scratch, kept channels' inputs */
    float *xstep;
    void *gscratch;
    float *xk;
} aw_val_ws;

/* wconv: the forward workspace's f32 weight buffer to share (the taps run
 * between linears, never during one), or NULL to allocate one (if ops
 * needs one); fws (or NULL): the forward workspace whose scheme scratch
 * (aw_fwd_ws_need_scheme) the comparison shares the same way. */
aw_status aw_val_ws_create(const aw_ops *ops, const aw_model_config *c, int max_T, float *wconv,
                           const aw_fwd_ws *fws, aw_val_ws *w);
/* Bytes aw_val_ws_create allocates (for plans). */
uint64_t aw_val_ws_bytes(const aw_model_config *c, int max_T, int shares_wconv);
void aw_val_ws_destroy(aw_val_ws *w);

/* Context of the tap observer aw_validate_observe; fp and q in the memory
 * of ws->ops, q's steps and s as the host's. */
typedef struct {
    const aw_block *fp;
    const aw_qblock *q;
    aw_layer_val *val;
    aw_val_ws *ws;
    /* 0: the observer computes each fp linear itself at its tap; 1: it takes
     * the forward's own fp outputs through aw_validate_linear (the same
     * product, computed once) */
    int deferred;
    /* private: the tap whose input over s is in ws->xs, and that input */
    aw_tap_id xs_tap;
    const float *xs_of;
} aw_val_ctx;

/* An aw_tap_fn for the fp forward: ctx is an aw_val_ctx. */
aw_status aw_validate_observe(void *ctx, aw_tap_id tap, const float *x, int T, int in);
/* An aw_lin_fn (aw_forward.h) for the same fp forward, with the same ctx:
 * with ctx->deferred, compares fp linear l's output y (T, out) of input x
 * with its W8A8 counterpart; else nothing. */
aw_status aw_validate_linear(void *ctx, int l, const float *x, const float *y, int T);

/* End-to-end sums over predicted tokens (all doubles: a block's part is
 * moved and added like the others; counts stay exact below 2^53). */
typedef struct {
    double nll_fp, nll_q, kl;
    double n_pred, top1_agree;
} aw_e2e;
#define AW_E2E_LEN 5
/* a += b, field by field (call in block order). */
void aw_e2e_add(aw_e2e *a, const aw_e2e *b);

/* Add the next-token statistics of n_seq sequences of L tokens: logits of
 * the fp and W8A8 models are computed in row chunks from h_fp and h_q (T, d)
 * (final LN + tied head); x and the two logit buffers are scratch of
 * chunk*d and chunk*vocab floats. */
void aw_e2e_accum(const aw_model_config *c, const aw_model_ends *e, const float *h_fp,
                  const float *h_q, const uint32_t *tokens, int n_seq, int L, float *x,
                  float *logits_fp, float *logits_q, int chunk, aw_e2e *acc);
/* The same with the logits computed by ops from e, h_fp, h_q, x and d_lfp,
 * d_lq (chunk*vocab floats) in its memory, then brought to the host
 * buffers lfp, lq (the same pointers with a host table) for the sums. */
aw_status aw_e2e_accum_ops(const aw_ops *o, const aw_model_config *c, const aw_model_ends *e,
                           const float *h_fp, const float *h_q, const uint32_t *tokens, int n_seq,
                           int L, float *x, float *d_lfp, float *d_lq, float *lfp, float *lq,
                           int chunk, aw_e2e *acc);

#endif
