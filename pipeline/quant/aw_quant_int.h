/*
 * aw_quant_int.h - private to pipeline/quant/ (and its tests): the fold
 * machinery that aw_quant.c (W8A8, closed-form factors) and aw_quant_wo.c
 * (weight-only, searched factors) share, and the scale search.
 *
 * A fold at a tap is two steps: its factors s (one per tap channel), then
 * applying them (producer /= s, consumers' columns *= s). Factors are
 * computed on the block as it is at that moment (the earlier taps folded):
 * AWEQ's row-fold clamp reads the producer's rows, which an earlier fold
 * has scaled. A tap's consumers are changed only by its own fold (columns)
 * and by later row folds (v_proj, fc1 / up_proj rows), so a search at a tap
 * sees its consumers' original weights.
 *
 * The search (awq, aweq+search), per folded tap in tap order: candidates
 * s(alpha) for alpha = g / AW_SEARCH_GRID, g = 0 .. AW_SEARCH_GRID-1, in the
 * method's family, objective
 *   sum over the tap's consumers of || (Q(W diag s) diag(1/s) - W) X ||_F^2
 *   = sum_i dW_i^T G dW_i,  dW = Q(W diag s) diag(1/s) - W, G = X^T X,
 * exact from the tap's Gram matrix (aw_stats with_gram) in the tap's
 * original coordinates (a folded tap's input is x / s of its own fold
 * only); Q the scheme's group quantization with steps in the scale dtype.
 * With a dynamic scheme the objective has the activation quantizer inside
 * and is taken on the statistics' token sample instead (aw_samp_obj).
 * The smallest objective wins, ties to the smaller alpha.
 */
#ifndef AW_QUANT_INT_H
#define AW_QUANT_INT_H

#include "aw_quant.h"

/* Quantization on a backend: its table and the small scratch the folds and
 * corrections move between host and device (o's memory unless said). The
 * *_dev functions below take blocks in o's memory and host factors; the
 * host entries of this header and aw_quant.h are them on aw_ops_cpu(). */
typedef struct {
    const aw_ops *o;
    void *arena;
    size_t dim;        /* the widest tap, input or output of c's linears */
    double *mean;      /* (dim) E[x'] */
    double *delta;     /* (dim) bias corrections */
    double *acc;       /* (1) the search objective */
    float *s, *sr;     /* (dim) factors; a grouped row fold's producer-row factors */
    float *r;          /* (dim) column or row ranges */
    float *one;        /* (1) a tensor's range */
    float *deq;        /* (largest linear) dequantized weights, or NULL */
    float *h;          /* host (dim) floats */
    double *hd;        /* host (dim) doubles */
} aw_qdev;

/* with_deq: the dequantized-weights scratch (weight-only bias correction).
 * AW_ERR_NOMEM; destroy accepts a zeroed context. */
aw_status aw_qdev_create(const aw_ops *o, const aw_model_config *c, int with_deq, aw_qdev *qd);
void aw_qdev_destroy(aw_qdev *qd);
/* eq (F32, o's memory) = src (o's memory, any weight dtype), exact. */
aw_status aw_block_widen_dev(const aw_ops *o, const aw_block *src, aw_block *eq);
aw_status aw_fold_factors_aweq_dev(aw_qdev *qd, const aw_model_config *c, aw_tap_id tap, const aw_stats *st,
                                   float alpha, const aw_block *e, float *s);
aw_status aw_fold_apply_dev(aw_qdev *qd, const aw_model_config *c, aw_tap_id tap, aw_block *e, const float *s);
aw_status aw_equalize_block_dev(aw_qdev *qd, const aw_model_config *c, const aw_block *fp, const aw_stats *st,
                                const aw_method *m, aw_block *eq, float *const s[AW_TAP_COUNT]);
/* G: st->gram[tap] in o's memory. */
aw_status aw_search_objective_dev(aw_qdev *qd, const aw_model_config *c, const aw_block *e, const aw_stats *st,
                                  const aw_method *m, aw_tap_id tap, const float *s, const double *G, double *obj);
/* The quantized block's small parts from eq: norms rounded to the
 * parameter dtype, factors q->s (set by the caller) and out_s, into q and
 * dq; a linear's biases (delta: its corrections, or NULL) likewise. */
aw_status aw_qdev_put_small(aw_qdev *qd, const aw_model_config *c, const aw_block *eq, const aw_method *m,
                            aw_qblock *dq, aw_qblock *q);
aw_status aw_qdev_put_bias(aw_qdev *qd, const aw_linear *ln, const double *delta, const aw_method *m,
                           aw_qlinear *dql, aw_qlinear *ql);

/* 1 if two schemes are the same in every field. */
int aw_scheme_same(const aw_scheme *a, const aw_scheme *b);
/* AW_ERR_ARG (with the message) for kept channels with a method other
 * than rtn, smoothquant and aweq. */
aw_status aw_method_check_keep(const aw_method *m);
/* Kept channels of every tap with q->n_keep > 0, after the folds (q->s
 * set, eq folded in qd's memory): q and dq get keep_idx and keep_mask, each
 * consumer's wkeep (eq's columns rounded to m->param_dtype); the kept
 * columns of eq's weights become zero (before any step is computed).
 * AW_ERR_NOMEM, AW_ERR_ARG. */
aw_status aw_keep_channels_dev(aw_qdev *qd, const aw_model_config *c, const aw_stats *st, const aw_method *m,
                               aw_block *eq, aw_qblock *dq, aw_qblock *q);
/* mean[j] = 0 at the kept channels of tap (bias correction: their
 * columns are exact). */
void aw_keep_mean(const aw_qblock *q, aw_tap_id tap, double *mean, int in);

/* AWEQ's factors (aw_quant.h) at tap for block e (F32) as it is now, with
 * the row-fold clamp and the grouped-query aggregation: s (in[tap]) gets
 * them, e is not changed. AW_ERR_NOMEM. */
aw_status aw_fold_factors_aweq(const aw_model_config *c, aw_tap_id tap, const aw_stats *st, float alpha,
                               const aw_block *e, float *s);
/* Apply factors s (in[tap], > 0) at tap to e (F32): the producer (norm gain
 * and bias, or rows; at a grouped-query fold every channel of a producer
 * row must carry the same factor) divided, the consumers' columns
 * multiplied. Exact in floating point. AW_ERR_NOMEM. */
aw_status aw_fold_apply(const aw_model_config *c, aw_tap_id tap, aw_block *e, const float *s);

/* AWQ's factors at tap for grid value alpha: s_X = abssum / tokens,
 * v = max(s_X^alpha, 1e-4), s = v / sqrt(max v * min v) (AutoAWQ), clamped
 * to [1e-5, 1e5]; all 1 at a grouped-query row fold (AutoAWQ does not scale
 * there). Needs st's |x| sums. */
void aw_awq_factors(const aw_model_config *c, aw_tap_id tap, const aw_stats *st, float alpha, float *s);

/* The search objective (above) of factors s at tap, consumers' weights from
 * e (F32), Q with m->scheme and m->scale_dtype; G = st->gram[tap] for a
 * weight-only scheme, the sampled objective (aw_samp_obj, X_s W^T from e)
 * for a dynamic one. AW_ERR_ARG without a Gram matrix (weight-only), a
 * sample (dynamic) or a coded scheme, AW_ERR_NOMEM. */
aw_status aw_search_objective(const aw_model_config *c, const aw_block *e, const aw_stats *st,
                              const aw_method *m, aw_tap_id tap, const float *s, double *obj);

/* The search objective of a dynamic scheme at one tap, on the token
 * sample X_s (st->sample[tap], st->samp_rows rows) of the tap's fp inputs:
 *   sum over the tap's consumers of || Q_a(X_s / s) Q(W diag s)^T - X_s W^T ||_F^2
 * Q_a the scheme's activation quantizer (act_fakequant: abits, agroup),
 * Q its weight quantizer (group steps in m->scale_dtype, dequantized); the
 * products with the table's linear, their errors with err_sums, added in
 * double on the host in consumer order. The context holds X_s and each
 * consumer's X_s W^T (from e's weights when it is made: a tap's consumers
 * are the original ones while it is searched) in o's memory, and the
 * scratch of one candidate. AW_ERR_ARG without a sample, AW_ERR_NOMEM. */
typedef struct {
    const aw_ops *o;
    aw_tap_id tap;
    int n, in, n_cons;
    int lin[AW_LIN_MAX];
    size_t yoff[AW_LIN_MAX];   /* consumer k's X_s W^T at yref + yoff[k] */
    void *arena;
    double *err;               /* (2) err_sums' output */
    float *x, *xq;             /* (n, in) the sample, its quantized fold */
    float *yref, *y;           /* every consumer's (n, out); one (n, out) */
    float *w, *s, *step;       /* (out, in) of the largest consumer; (in); (out, ng) */
    uint8_t *zero, *codes;     /* (out, ng); (out, in) */
} aw_samp_obj;

aw_status aw_samp_obj_create(const aw_ops *o, const aw_model_config *c, const aw_block *e, const aw_stats *st,
                             const aw_method *m, aw_tap_id tap, aw_samp_obj *so);
/* The objective of factors s (host, in) with the consumers' weights of e
 * (F32, o's memory). */
aw_status aw_samp_objective_dev(aw_samp_obj *so, const aw_block *e, const aw_method *m, const float *s,
                                double *obj);
/* Accepts a zeroed context. */
void aw_samp_obj_destroy(aw_samp_obj *so);

/* What the search did at one tap: obj[g] for alpha = g / AW_SEARCH_GRID
 * and the chosen g; chosen = -1 where the method does not fold the tap. */
typedef struct {
    int chosen;
    double obj[AW_SEARCH_GRID];
} aw_search_tap;

/* aw_equalize_block for awq and aweq+search (it calls this): eq (F32) = fp
 * folded with the searched factors, s[tap] the factors (1 where none),
 * trace (or NULL) what the search saw (the Gram objective for weight-only
 * schemes, the sampled one for dynamic schemes). AW_ERR_ARG for another
 * method, a scheme that is not coded or statistics without what the
 * method needs (aw_method_check_stats, aw_method_needs_sample);
 * AW_ERR_VALIDATION without tokens; AW_ERR_NONFINITE if no candidate of a
 * tap has a finite objective; AW_ERR_NOMEM. */
aw_status aw_equalize_searched(const aw_model_config *c, const aw_block *fp, const aw_stats *st,
                               const aw_method *m, aw_block *eq, float *const s[AW_TAP_COUNT],
                               aw_search_tap trace[AW_TAP_COUNT]);
aw_status aw_equalize_searched_dev(aw_qdev *qd, const aw_model_config *c, const aw_block *fp, const aw_stats *st,
                                   const aw_method *m, aw_block *eq, float *const s[AW_TAP_COUNT],
                                   aw_search_tap trace[AW_TAP_COUNT]);

#endif
