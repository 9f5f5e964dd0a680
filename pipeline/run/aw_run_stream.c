/* aw_run_stream.c - the streaming passes: calibration streams the fp
 * model; validation the fp and the W8A8 model side by side, observing
 * every layer; evaluation (--eval-text) the two side by side for their
 * end-to-end sums only. Blocks move between stages through mpi/aw_stream.h;
 * their sums are added in block order through mpi/aw_reduce.h (see
 * aw_run_int.h). */
#include "aw_run_int.h"

#include <stdlib.h>
#include <string.h>

#include "aw_kernels.h"
#include "aw_plan.h"

typedef enum { PASS_CALIB, PASS_VALID, PASS_EVAL } pass_kind;

static const char *const pass_names[] = {"calibrate", "validate", "evaluate"};

/* One pass over this rank's blocks: what the stream's callbacks need. */
typedef struct {
    const aw_run_opts *o;
    const run_inputs *in;
    const run_topo *t;
    run_model *m;
    run_stream *s;
    run_output *out;
    pass_kind pass;
    uint32_t first_seq, nseq;
    int width; /* 1: the fp stream; 2: the fp and the W8A8 stream */
} pass_ctx;

/* Sequences in block b of a pass of nseq sequences. */
static int block_seqs(uint32_t nseq, int B, int b)
{
    uint32_t left = nseq - (uint32_t)b * (uint32_t)B;
    return (int)(left < (uint32_t)B ? left : (uint32_t)B);
}

/* Block k of this replica: its number in the pass, its sequences. */
static int block_of(const pass_ctx *p, int k) { return p->t->replica + k * p->t->R; }

/* The quantized model's sums alone (run_evaluate with eval_q_only): its
 * logits once per chunk of rows, nll_q and n_pred as aw_e2e_accum_ops adds
 * them (the same log-probabilities, in the same order); the fp fields, KL
 * and agreement stay 0. */
static aw_status e2e_accum_q(const aw_ops *o, const aw_model_config *c, const aw_model_ends *e, const float *hq,
                             const uint32_t *tokens, int n_seq, int L, const run_stream *s, aw_e2e *acc)
{
    enum { ROWS = 64 };
    int T = n_seq * L, d = c->hidden_size, V = c->vocab_size, chunk = s->logit_chunk;
    uint32_t target[ROWS];
    uint8_t skip[ROWS];
    double lp_q[ROWS];
    for (int t0 = 0; t0 < T; t0 += chunk) {
        int n = T - t0 < chunk ? T - t0 : chunk;
        AW_TRY(aw_model_logits_ops(o, c, e, hq + (size_t)t0 * d, s->dlx, s->dlogits_q, n));
        AW_TRY(o->vt->to_host(o, s->logits_q, s->dlogits_q, (size_t)n * V * sizeof(float)));
        for (int r0 = 0; r0 < n; r0 += ROWS) {
            int nr = n - r0 < ROWS ? n - r0 : ROWS;
            for (int r = 0; r < nr; r++) {
                int t = t0 + r0 + r;
                skip[r] = t % L == L - 1; /* the last position predicts nothing we hold */
                target[r] = skip[r] ? 0 : tokens[t + 1];
            }
            aw_k_logprob_rows(s->logits_q + (size_t)r0 * V, V, nr, target, skip, lp_q);
            for (int r = 0; r < nr; r++) {
                if (skip[r]) continue;
                acc->nll_q -= lp_q[r];
                acc->n_pred++;
            }
        }
    }
    return AW_OK;
}

/* Compute one block of samples on this rank's layers: h (the fp stream,
 * then for validation the W8A8 stream) in the backend's memory. */
static aw_status compute_block(const pass_ctx *p, int k, float *h, int ns, int b)
{
    const run_inputs *in = p->in;
    const run_topo *t = p->t;
    run_model *m = p->m;
    run_stream *s = p->s;
    pass_kind pass = p->pass;
    const aw_model_config *c = &in->cfg;
    const aw_ops *o = m->ops;
    int L = in->L, d = c->hidden_size, T = ns * L;
    int q_only = pass == PASS_EVAL && s->eval_q_only; /* one stream: the quantized one, in h */
    float *hq = q_only ? h : h + (size_t)T * d;
    const uint32_t *tok = in->tokens.ids + ((size_t)p->first_seq + (size_t)b * in->B) * L;
    if (t->is_first) {
        const uint32_t *dtok = tok;
        if (s->dtok) {
            AW_TRY(o->vt->to_dev(o, s->dtok, tok, (size_t)T * sizeof(uint32_t)));
            dtok = s->dtok;
        }
        AW_TRY(aw_model_embed_ops(o, c, &m->dends, dtok, ns, L, h));
        if (pass != PASS_CALIB && !q_only) AW_TRY(o->vt->copy(o, hq, h, (size_t)T * d * sizeof(float)));
    }
    for (int l = 0; l < t->nl; l++) {
        if (pass == PASS_CALIB) {
            /* every block's statistics, one reused from its shard too: the
             * report shows its ranges */
            aw_stats *st = &s->stats[l];
            /* the token sample is taken by global token index */
            aw_stats_set_block(st, (uint64_t)b * (uint64_t)in->B * (uint64_t)L);
            s->ws.lin_bf16 = in->cpu_bf16; /* --cpu-precision: calibration only */
            aw_status fs = aw_block_forward(c, &m->dfp[l], NULL, h, ns, L, &s->ws, aw_stats_observe, st);
            s->ws.lin_bf16 = 0;
            AW_TRY(fs);
            if (t->R == 1) {
                /* one replica sees every block, in order: add each part at
                 * once (the same sums in the same order as the reduction;
                 * with Gram matrices a part is large) */
                AW_TRY(aw_stats_take_part(st, s->parts[l]));
                aw_stats_add_part(st, s->parts[l]);
            } else {
                AW_TRY(aw_stats_take_part(st, s->parts[l] + (size_t)k * aw_stats_part_len(st)));
            }
        } else if (pass == PASS_EVAL) {
            if (!q_only) AW_TRY(aw_block_forward(c, &m->dfp[l], NULL, h, ns, L, &s->ws, NULL, NULL));
            AW_TRY(aw_block_forward(c, NULL, &m->dq[l], hq, ns, L, &s->ws, NULL, NULL));
        } else {
            /* on the CPU the observer takes the forward's own fp outputs (the
             * same OpenBLAS call it would repeat, so the same bits) instead
             * of computing every fp linear twice */
            aw_val_ctx vc = {.fp = &m->dfp[l], .q = &m->dq[l], .val = &s->val[l], .ws = &s->vws,
                             .deferred = o->wscratch};
            if (vc.deferred) s->ws.lin_fn = aw_validate_linear, s->ws.lin_ctx = &vc;
            aw_status st = aw_block_forward(c, &m->dfp[l], NULL, h, ns, L, &s->ws, aw_validate_observe, &vc);
            s->ws.lin_fn = NULL, s->ws.lin_ctx = NULL;
            AW_TRY(st);
            AW_TRY(aw_block_forward(c, NULL, &m->dq[l], hq, ns, L, &s->ws, NULL, NULL));
            AW_TRY(aw_layer_val_take_part(&s->val[l], s->parts[l] + (size_t)k * s->val[l].n));
        }
    }
    if (pass != PASS_CALIB && t->is_last) {
        aw_e2e e = {0};
        if (q_only)
            AW_TRY(e2e_accum_q(o, c, &m->dends, hq, tok, ns, L, s, &e));
        else
            AW_TRY(aw_e2e_accum_ops(o, c, &m->dends, h, hq, tok, ns, L, s->dlx, s->dlogits_fp, s->dlogits_q,
                                    s->logits_fp, s->logits_q, s->logit_chunk, &e));
        s->e2e_parts[k] = e;
    }
    return o->vt->sync(o);
}

/* The stream's callbacks. */
static size_t pass_count(void *ctx, int k)
{
    const pass_ctx *p = ctx;
    return (size_t)p->width * (size_t)block_seqs(p->nseq, p->in->B, block_of(p, k)) * (size_t)p->in->L *
           (size_t)p->in->cfg.hidden_size;
}

/* Compute block k where it arrived: from the host buffer buf through the
 * backend's copy dbuf (MPI; dbuf may be buf itself), or in dbuf (NCCL,
 * buf NULL). Then the fault hooks. */
static aw_status pass_compute(void *ctx, int k, float *buf, float *dbuf, size_t count)
{
    const pass_ctx *p = ctx;
    const aw_ops *o = p->m->ops;
    int b = block_of(p, k), ns = block_seqs(p->nseq, p->in->B, b);
    if (!buf) {
        AW_TRY(compute_block(p, k, dbuf, ns, b));
    } else {
        if (!p->t->is_first) AW_TRY(o->vt->to_dev(o, dbuf, buf, count * sizeof(float)));
        AW_TRY(compute_block(p, k, dbuf, ns, b));
        if (!p->t->is_last) AW_TRY(o->vt->to_host(o, buf, dbuf, count * sizeof(float)));
    }
    return aw_guard_step(pass_names[p->pass], &p->o->fail_at);
}

static void pass_done(void *ctx, int k)
{
    const pass_ctx *p = ctx;
    aw_progress_step(p->out->prog, block_of(p, k) + 1); /* rank 0: stage 0, replica 0 */
}

/* Stream this replica's blocks of one pass through the stages. */
static aw_status stream(const aw_run_opts *o, const run_inputs *in, const run_topo *t, run_model *m, run_stream *s,
                        run_output *out, pass_kind pass)
{
    pass_ctx p = {.o = o, .in = in, .t = t, .m = m, .s = s, .out = out, .pass = pass};
    p.first_seq = pass == PASS_CALIB ? 0 : pass == PASS_VALID ? in->n_calib : in->n_calib + in->n_hold;
    p.nseq = pass == PASS_CALIB ? in->n_calib : pass == PASS_VALID ? in->n_hold : in->n_eval;
    /* later passes carry the fp and the quantized stream (a sweep's later
     * evaluations the quantized one only) */
    p.width = pass == PASS_CALIB || (pass == PASS_EVAL && s->eval_q_only) ? 1 : 2;
    /* one tag per pass: blocks between two ranks of a chain match in order
     * (MPI's non-overtaking rule), and small tags stay under every MPI's
     * tag bound (UCX's is 2^23 - 1) */
    aw_stream_pass sp = {.n = run_n_mine(run_n_blocks(p.nseq, in->B), t), .tag = (int)pass,
                         .buf = {s->buf[0], s->buf[1]}, .dbuf = {s->dbuf[0], s->dbuf[1]},
                         .count = pass_count, .compute = pass_compute, .done = pass_done, .ctx = &p};
    if (s->nccl) return aw_stream_nccl(&t->pipe, &s->links, m->ops->ctx, &sp);
    return aw_stream_mpi(&t->pipe, &sp);
}

static void add_stats(void *ctx, const double *p) { aw_stats_add_part(ctx, p); }
static void add_val(void *ctx, const double *p) { aw_layer_val_add_part(ctx, p); }
static void add_e2e(void *ctx, const double *p)
{
    aw_e2e e;
    memcpy(&e, p, sizeof e);
    aw_e2e_add(ctx, &e);
}

static aw_status alloc_parts(run_stream *s, const run_topo *t, int nb, int valid)
{
    /* calibration on one replica adds each block's part as it comes */
    int max_mine = !valid && t->R == 1 ? 1 : (nb + t->R - 1) / t->R;
    for (int l = 0; l < t->nl; l++) {
        size_t n = valid ? s->val[l].n : aw_stats_part_len(&s->stats[l]);
        free(s->parts[l]);
        s->parts[l] = calloc((size_t)(max_mine ? max_mine : 1) * n, sizeof(double));
        AW_RETURN_IF(!s->parts[l], AW_ERR_NOMEM, "out of memory for per-block sums");
    }
    return AW_OK;
}

aw_status run_calibrate(const aw_run_opts *o, const run_inputs *in, const run_topo *t, run_model *m,
                        run_stream *s, run_output *out)
{
    int nb = run_n_blocks(in->n_calib, in->B);
    AW_TRY(alloc_parts(s, t, nb, 0));
    AW_TRY(stream(o, in, t, m, s, out, PASS_CALIB));
    for (int l = 0; l < t->nl; l++) {
        aw_stats *st = &s->stats[l];
        AW_TRY(aw_stats_fetch(st));
        /* max is exact in any order; sums go in block order */
        AW_TRY(aw_reduce_max_f32(&t->pipe, st->absmax[0], st->n_sum));
        AW_TRY(aw_reduce_sum_u64(&t->pipe, &st->nonfinite, 1));
        if (t->R > 1) AW_TRY(aw_reduce_parts(&t->pipe, s->parts[l], aw_stats_part_len(st), nb, add_stats, st));
        /* each sample row was written by the one replica that saw its
         * token (+0.0f elsewhere): the sum is that replica's bytes */
        if (t->R > 1 && st->with_sample)
            AW_TRY(aw_reduce_sum_f32(&t->pipe, st->sample_all, (size_t)st->n_samp * st->n_sum));
        aw_stats_finish(st);
        AW_RETURN_IF(st->nonfinite > 0, AW_ERR_NONFINITE, "layer %d: %llu non-finite activations during calibration",
                     t->l0 + l, (unsigned long long)st->nonfinite);
    }
    /* the Gram scratch of a block is no longer needed */
    for (int l = 0; l < t->nl; l++) aw_stats_use_gram_scratch(&s->stats[l], NULL, NULL);
    aw_ops_mirror_free(m->ops, s->dgram, s->gram);
    free(s->gram);
    s->gram = s->dgram = NULL;
    return AW_OK;
}

/* The last stage's logit buffers (once): row chunks on the backend, their
 * sums on the host; a GPU takes bigger chunks (the host kernels keep the
 * CPU's 128 rows so that a staged run adds the same numbers). */
static aw_status need_logits(const aw_ops *ops, const aw_model_config *c, run_stream *s)
{
    if (s->logits_q) return AW_OK;
    int ch = s->logit_chunk = ops->wscratch ? AW_LOGIT_CHUNK : AW_GPU_LOGIT_CHUNK;
    size_t lg = (size_t)ch * c->vocab_size * sizeof(float);
    s->lx = malloc((size_t)ch * c->hidden_size * sizeof(float));
    s->logits_fp = malloc(lg);
    s->logits_q = malloc(lg);
    AW_RETURN_IF(!s->lx || !s->logits_fp || !s->logits_q, AW_ERR_NOMEM, "out of memory for logits");
    AW_TRY(aw_ops_mirror(ops, (void **)&s->dlx, s->lx, (size_t)ch * c->hidden_size * sizeof(float), "logits"));
    AW_TRY(aw_ops_mirror(ops, (void **)&s->dlogits_fp, s->logits_fp, lg, "logits"));
    return aw_ops_mirror(ops, (void **)&s->dlogits_q, s->logits_q, lg, "logits");
}

aw_status run_validate(const aw_run_opts *o, const run_inputs *in, const run_topo *t, run_model *m,
                       run_stream *s, run_output *out, aw_e2e *e2e)
{
    const aw_model_config *c = &in->cfg;
    int nb = run_n_blocks(in->n_hold, in->B), max_mine = (nb + t->R - 1) / t->R;
    const aw_ops *ops = m->ops;
    for (int l = 0; l < t->nl; l++) {
        AW_TRY(aw_layer_val_create(c, &s->val[l]));
        AW_TRY(aw_layer_val_attach(&s->val[l], ops));
    }
    AW_TRY(alloc_parts(s, t, nb, 1));
    /* the forward workspace was dropped while quantizing (see aw_run_comm) */
    AW_TRY(aw_fwd_ws_create_ops(ops, c, in->B, in->L, &s->ws));
    AW_TRY(aw_fwd_ws_need_scheme(&s->ws, c, &in->method.scheme));
    /* the validation's own products share the forward's f32 weight buffer
     * (widening on the CPU, dequantizing weight-only layers anywhere) */
    AW_TRY(aw_val_ws_create(ops, c, in->B * in->L, s->ws.wdq ? s->ws.wdq : s->ws.wconv, &s->ws, &s->vws));
    if (t->is_last) {
        AW_TRY(need_logits(ops, c, s));
        s->e2e_parts = calloc((size_t)(max_mine ? max_mine : 1), sizeof *s->e2e_parts);
        AW_RETURN_IF(!s->e2e_parts, AW_ERR_NOMEM, "out of memory for logits");
    }
    AW_TRY(stream(o, in, t, m, s, out, PASS_VALID));
    for (int l = 0; l < t->nl; l++)
        AW_TRY(aw_reduce_parts(&t->pipe, s->parts[l], s->val[l].n, nb, add_val, &s->val[l]));
    memset(e2e, 0, sizeof *e2e);
    if (t->is_last)
        AW_TRY(aw_reduce_parts(&t->pipe, (const double *)s->e2e_parts, AW_E2E_LEN, nb, add_e2e, e2e));
    /* everyone (rank 0 for the report) gets the last stage's sums */
    return aw_bcast_f64(t->w, (double *)e2e, AW_E2E_LEN, (t->S - 1) * t->R);
}

/* --eval-text: its windows through the fp and the quantized model (or the
 * quantized one only, s->eval_q_only), their sums in block order on every
 * rank. The forward workspace must be ready for the scheme
 * (aw_fwd_ws_need_scheme); the logit buffers are run_validate()'s, or made
 * here the first time. */
aw_status run_evaluate(const aw_run_opts *o, const run_inputs *in, const run_topo *t, run_model *m,
                       run_stream *s, run_output *out, aw_e2e *e2e)
{
    int nb = run_n_blocks(in->n_eval, in->B), max_mine = (nb + t->R - 1) / t->R;
    memset(e2e, 0, sizeof *e2e);
    if (t->is_last) {
        AW_TRY(need_logits(m->ops, &in->cfg, s));
        free(s->e2e_parts);
        s->e2e_parts = calloc((size_t)(max_mine ? max_mine : 1), sizeof *s->e2e_parts);
        AW_RETURN_IF(!s->e2e_parts, AW_ERR_NOMEM, "out of memory");
    }
    AW_TRY(stream(o, in, t, m, s, out, PASS_EVAL));
    if (t->is_last)
        AW_TRY(aw_reduce_parts(&t->pipe, (const double *)s->e2e_parts, AW_E2E_LEN, nb, add_e2e, e2e));
    return aw_bcast_f64(t->w, (double *)e2e, AW_E2E_LEN, (t->S - 1) * t->R);
}
