/* aw_run.c - the quantization job on one rank (see aw_run.h). */
#include "aw_run.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aw_forward.h"
#include "aw_fs.h"
#include "aw_inspect.h"
#include "aw_kernels.h"
#include "aw_model.h"
#include "aw_tokens.h"
#include "aw_writer.h"

double aw_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void aw_run_defaults(aw_run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->method.kind = AW_METHOD_AWEQ;
    o->method.alpha = 0.5f;
    o->method.bias_correction = 1;
    o->method.param_dtype = AW_DT_F16;
    o->method.scale_dtype = AW_DT_F32;
    o->holdout = 0.2;
    o->batch = 8;
    o->backend_want = -1;
}

void aw_run_result_free(aw_run_result *r)
{
    if (!r) return;
    free(r->layers);
    r->layers = NULL;
}

double aw_e2e_ppl_fp(const aw_e2e *e) { return e->n_pred ? exp(e->nll_fp / e->n_pred) : NAN; }
double aw_e2e_ppl_q(const aw_e2e *e) { return e->n_pred ? exp(e->nll_q / e->n_pred) : NAN; }
double aw_e2e_kl(const aw_e2e *e) { return e->n_pred ? e->kl / e->n_pred : NAN; }
double aw_e2e_top1(const aw_e2e *e) { return e->n_pred ? (double)e->top1_agree / e->n_pred : NAN; }

/* Everything one rank holds for its layers. */
typedef struct {
    aw_opt_config cfg;
    aw_model_files *mf;
    aw_tokens tokens;
    aw_model_ends ends;
    int n_layers;
    aw_block *fp;
    aw_qblock *q;
    aw_stats *stats;
    aw_layer_val *val;
    aw_fwd_ws ws;
    aw_val_ws vws;
    float *h_fp, *h_q;
    float *lx, *logits_fp, *logits_q;
} run_state;

static void state_free(run_state *s)
{
    for (int l = 0; l < s->n_layers; l++) {
        if (s->fp) aw_block_destroy(&s->fp[l]);
        if (s->q) aw_qblock_destroy(&s->q[l]);
        if (s->stats) aw_stats_destroy(&s->stats[l]);
        if (s->val) aw_layer_val_destroy(&s->val[l]);
    }
    free(s->fp);
    free(s->q);
    free(s->stats);
    free(s->val);
    aw_fwd_ws_destroy(&s->ws);
    aw_val_ws_destroy(&s->vws);
    aw_ends_destroy(&s->ends);
    aw_tokens_free(&s->tokens);
    aw_mf_close(s->mf);
    free(s->h_fp);
    free(s->h_q);
    free(s->lx);
    free(s->logits_fp);
    free(s->logits_q);
    memset(s, 0, sizeof *s);
}

static void progress(const aw_run_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(const aw_run_opts *o, const char *fmt, ...)
{
    if (o->quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("aweq-dist: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

#define AW_LOGIT_CHUNK 128

static aw_status load(const aw_run_opts *o, run_state *s)
{
    char *cfg_path = aw_path_join(o->model_dir, "config.json");
    char *tok_path = o->calib_path ? NULL : aw_path_join(o->model_dir, "calibration.tokens");
    AW_RETURN_IF(!cfg_path || (!o->calib_path && !tok_path), AW_ERR_NOMEM, "out of memory");
    const char *calib = o->calib_path ? o->calib_path : tok_path;
    aw_status st = aw_config_read(cfg_path, &s->cfg);
    if (st == AW_OK) st = aw_config_check_supported(&s->cfg, cfg_path);
    free(cfg_path);
    if (st == AW_OK) st = aw_mf_open(o->model_dir, &s->mf);
    if (st == AW_OK) st = aw_checkpoint_check(&s->cfg, s->mf);
    if (st == AW_OK) st = aw_tokens_read(calib, &s->tokens);
    if (st == AW_OK && s->tokens.vocab_size > (uint32_t)s->cfg.vocab_size)
        st = AW_FAIL(AW_ERR_TOKENS, "%s: token vocabulary of %u is larger than the model's %d", calib,
                     s->tokens.vocab_size, s->cfg.vocab_size);
    if (st == AW_OK && s->tokens.seq_len > (uint32_t)s->cfg.max_position_embeddings)
        st = AW_FAIL(AW_ERR_TOKENS, "%s: sequences of %u tokens are longer than the model's %d positions",
                     calib, s->tokens.seq_len, s->cfg.max_position_embeddings);
    free(tok_path);
    return st;
}

/* Sequence split: the first n_calib sequences calibrate, the rest validate. */
static aw_status split(const aw_run_opts *o, const aw_tokens *t, uint32_t *n_calib, uint32_t *n_hold)
{
    AW_RETURN_IF(!(o->holdout >= 0.0 && o->holdout < 1.0), AW_ERR_ARG,
                 "--holdout %g: expected a share in [0, 1)", o->holdout);
    uint64_t h = (uint64_t)llround(o->holdout * (double)t->n_seq);
    if (o->holdout > 0 && h == 0) h = 1;
    AW_RETURN_IF(h >= t->n_seq, AW_ERR_ARG,
                 "%llu calibration sequences leave none for calibration after holding out %llu",
                 (unsigned long long)t->n_seq, (unsigned long long)h);
    AW_RETURN_IF(t->n_seq > UINT32_MAX, AW_ERR_TOKENS, "too many sequences");
    *n_hold = (uint32_t)h;
    *n_calib = (uint32_t)(t->n_seq - h);
    return AW_OK;
}

static aw_status alloc_layers(run_state *s)
{
    int n = s->cfg.num_hidden_layers;
    s->fp = calloc((size_t)n, sizeof *s->fp);
    s->q = calloc((size_t)n, sizeof *s->q);
    s->stats = calloc((size_t)n, sizeof *s->stats);
    s->val = calloc((size_t)n, sizeof *s->val);
    AW_RETURN_IF(!s->fp || !s->q || !s->stats || !s->val, AW_ERR_NOMEM, "out of memory");
    s->n_layers = n;
    for (int l = 0; l < n; l++) {
        AW_TRY(aw_block_create(&s->cfg, s->cfg.torch_dtype, &s->fp[l]));
        AW_TRY(aw_stats_create(&s->cfg, &s->stats[l]));
    }
    return AW_OK;
}

static void fill_metrics(const run_state *s, aw_run_result *r)
{
    r->worst_rel_err = 0;
    for (int l = 0; l < s->n_layers; l++) {
        const aw_layer_val *v = &s->val[l];
        for (int k = 0; k < AW_LIN_COUNT; k++) {
            aw_layer_metrics *lm = &r->layers[l * AW_LIN_COUNT + k];
            const aw_qlinear *ql = &s->q[l].lin[k];
            lm->rel_err = v->sq_ref[k] > 0 ? sqrt(v->sq_err[k] / v->sq_ref[k]) : 0.0;
            lm->sqnr_db = v->sq_err[k] > 0 ? 10.0 * log10(v->sq_ref[k] / v->sq_err[k]) : INFINITY;
            lm->w_step = ql->w_step;
            lm->x_step = ql->x_step;
            /* mean output error per channel, with the bias written and with
             * the bias the layer would have had without correction */
            const float *so = aw_qblock_out_scale(&s->q[l], (aw_linear_id)k);
            double bc = 0, nobc = 0;
            for (int i = 0; i < ql->out; i++) {
                double e = v->tokens ? v->col_err[k][i] / (double)v->tokens : 0.0;
                double e0 = e + ((double)ql->bias_plain[i] - ql->bias[i]) * (so ? so[i] : 1.0);
                bc += e * e;
                nobc += e0 * e0;
            }
            lm->bias_err = sqrt(bc / ql->out);
            lm->bias_err_nobc = sqrt(nobc / ql->out);
            if (lm->rel_err > r->worst_rel_err) {
                r->worst_rel_err = lm->rel_err;
                snprintf(r->worst_layer, sizeof r->worst_layer, "layers.%d.%s", l, aw_linear_names[k]);
            }
        }
    }
}

aw_status aw_run(const aw_run_opts *o, aw_run_result *r)
{
    memset(r, 0, sizeof *r);
    run_state s;
    memset(&s, 0, sizeof s);
    aw_status st = AW_OK;
    double t0 = aw_now();
    AW_CHECK(aw_backend_select(o->backend_want, aw_local_rank_from_env(), &r->backend));
    AW_GOTO_IF(r->backend.kind != AW_BACKEND_CPU, AW_ERR_UNSUPPORTED,
               "backend %s: this version runs the quantization on the CPU backend only; use --backend cpu",
               aw_backend_name(r->backend.kind));
    AW_CHECK(load(o, &s));
    const aw_opt_config *c = &s.cfg;
    /* non-quantized tensors are written (and validated) in the model's dtype */
    aw_method method = o->method;
    method.param_dtype = c->torch_dtype;
    /* compressed-tensors keeps scales in the weight's dtype; the INT8 codes are
     * computed from the rounded scale, so stored codes and scale agree */
    method.scale_dtype = c->torch_dtype;
    r->cfg = s.cfg;
    uint32_t n_calib = 0, n_hold = 0;
    AW_CHECK(split(o, &s.tokens, &n_calib, &n_hold));
    int L = (int)s.tokens.seq_len, B = o->batch, d = c->hidden_size;
    AW_GOTO_IF(B < 1, AW_ERR_ARG, "--batch %d: expected at least 1", B);
    r->calib_seqs = n_calib;
    r->holdout_seqs = n_hold;
    r->seq_len = (uint32_t)L;
    r->calib_tokens = (uint64_t)n_calib * L;
    r->holdout_tokens = (uint64_t)n_hold * L;
    progress(o, "model %s: OPT d=%d layers=%d; %u calibration + %u held-out sequences of %d tokens; method %s; backend %s",
             o->model_dir, d, c->num_hidden_layers, n_calib, n_hold, L, aw_method_names[o->method.kind],
             aw_backend_name(r->backend.kind));

    AW_CHECK(aw_ends_load(c, s.mf, &s.ends));
    AW_CHECK(alloc_layers(&s));
    for (int l = 0; l < s.n_layers; l++) AW_CHECK(aw_block_load(c, s.mf, l, &s.fp[l]));
    size_t maxT = (size_t)B * L;
    AW_CHECK(aw_fwd_ws_create(c, B, L, &s.ws));
    s.h_fp = malloc(maxT * d * sizeof(float));
    s.h_q = malloc(maxT * d * sizeof(float));
    AW_GOTO_IF(!s.h_fp || !s.h_q, AW_ERR_NOMEM, "out of memory for hidden states of %zu tokens", maxT);
    r->t_load = aw_now() - t0;

    /* calibration: blocks of samples stream through every layer */
    t0 = aw_now();
    int n_batches = (int)((n_calib + B - 1) / B);
    for (int bi = 0; bi < n_batches; bi++) {
        int ns = (int)(n_calib - (uint32_t)bi * B < (uint32_t)B ? n_calib - (uint32_t)bi * B : (uint32_t)B);
        const uint32_t *tok = s.tokens.ids + (size_t)bi * B * L;
        aw_model_embed(c, &s.ends, tok, ns, L, s.h_fp);
        for (int l = 0; l < s.n_layers; l++)
            aw_block_forward(c, &s.fp[l], NULL, s.h_fp, ns, L, &s.ws, aw_stats_observe, &s.stats[l]);
        progress(o, "calibrate: block %d/%d of samples", bi + 1, n_batches);
    }
    for (int l = 0; l < s.n_layers; l++)
        AW_GOTO_IF(s.stats[l].nonfinite > 0, AW_ERR_NONFINITE,
                   "layer %d: %llu non-finite activations during calibration", l,
                   (unsigned long long)s.stats[l].nonfinite);
    r->t_calib = aw_now() - t0;

    /* equalize, quantize, correct */
    t0 = aw_now();
    for (int l = 0; l < s.n_layers; l++) {
        AW_CHECK(aw_qblock_create(c, &s.q[l]));
        AW_CHECK(aw_quantize_block(c, l, &s.fp[l], &s.stats[l], &method, &s.q[l]));
    }
    progress(o, "quantize: %d layers", s.n_layers);
    r->t_quant = aw_now() - t0;

    /* validation on the held-out sequences */
    t0 = aw_now();
    for (int l = 0; l < s.n_layers; l++) AW_CHECK(aw_layer_val_create(c, &s.val[l]));
    AW_CHECK(aw_val_ws_create(c, (int)maxT, &s.vws));
    s.lx = malloc((size_t)AW_LOGIT_CHUNK * d * sizeof(float));
    s.logits_fp = malloc((size_t)AW_LOGIT_CHUNK * c->vocab_size * sizeof(float));
    s.logits_q = malloc((size_t)AW_LOGIT_CHUNK * c->vocab_size * sizeof(float));
    AW_GOTO_IF(!s.lx || !s.logits_fp || !s.logits_q, AW_ERR_NOMEM, "out of memory for logits");
    n_batches = (int)((n_hold + B - 1) / B);
    for (int bi = 0; bi < n_batches; bi++) {
        int ns = (int)(n_hold - (uint32_t)bi * B < (uint32_t)B ? n_hold - (uint32_t)bi * B : (uint32_t)B);
        const uint32_t *tok = s.tokens.ids + ((size_t)n_calib + (size_t)bi * B) * L;
        aw_model_embed(c, &s.ends, tok, ns, L, s.h_fp);
        memcpy(s.h_q, s.h_fp, (size_t)ns * L * d * sizeof(float));
        for (int l = 0; l < s.n_layers; l++) {
            aw_val_ctx vc = {.fp = &s.fp[l], .q = &s.q[l], .val = &s.val[l], .ws = &s.vws};
            aw_block_forward(c, &s.fp[l], NULL, s.h_fp, ns, L, &s.ws, aw_validate_observe, &vc);
            aw_block_forward(c, NULL, &s.q[l], s.h_q, ns, L, &s.ws, NULL, NULL);
        }
        aw_e2e_accum(c, &s.ends, s.h_fp, s.h_q, tok, ns, L, s.lx, s.logits_fp, s.logits_q,
                     AW_LOGIT_CHUNK, &r->e2e);
        progress(o, "validate: block %d/%d of held-out samples", bi + 1, n_batches);
    }
    r->n_layers = s.n_layers;
    r->layers = calloc((size_t)s.n_layers * AW_LIN_COUNT, sizeof *r->layers);
    AW_GOTO_IF(!r->layers, AW_ERR_NOMEM, "out of memory");
    fill_metrics(&s, r);
    r->t_valid = aw_now() - t0;
    AW_GOTO_IF(o->max_rel_error > 0 && r->worst_rel_err > o->max_rel_error, AW_ERR_VALIDATION,
               "%s: relative error %.4g exceeds --max-rel-error %g", r->worst_layer, r->worst_rel_err,
               o->max_rel_error);

    if (o->out_dir) {
        t0 = aw_now();
        char *json = NULL;
        AW_CHECK(aw_report_json(o, r, &json));
        st = aw_write_checkpoint(o->out_dir, o->model_dir, c, s.mf, s.q, s.n_layers, &method, json);
        free(json);
        if (st != AW_OK) goto fail;
        r->t_write = aw_now() - t0;
        progress(o, "wrote %s", o->out_dir);
    }
fail:
    state_free(&s);
    return st;
}
