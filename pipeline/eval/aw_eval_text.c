/* aw_eval_text.c - `eval --text`: the WikiText-2 protocol over the ranks,
 * windows dealt round robin and summed in window order (see aw_eval.h). */
#include "aw_eval_int.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_backend.h"
#include "aw_cuda_api.h"
#include "aw_forward.h"
#include "aw_fs.h"
#include "aw_kernels.h"
#include "aw_reduce.h"
#include "aw_run.h"
#include "aw_textdata.h"
#include "aw_tokens.h"

/* ---- the WikiText-2 protocol on text (eval --text) ------------------------ */

/* 1 if config.json at path has a quantization_config (checked in full by
 * aw_check_quant_config), 0 if not. */
static aw_status config_is_quantized(const char *path, int *yes)
{
    char *text = NULL;
    size_t len = 0;
    AW_TRY(aw_read_file(path, AW_QCFG_MAX_BYTES, &text, &len));
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    AW_RETURN_IF(!root, AW_ERR_CONFIG, "%s: invalid JSON at line %d column %d: %s", path, jerr.line,
                 jerr.column, jerr.text);
    json_t *qc = json_is_object(root) ? json_object_get(root, "quantization_config") : NULL;
    *yes = qc && !json_is_null(qc);
    json_decref(root);
    return AW_OK;
}

typedef struct {
    aw_model_config cfg;
    int quantized;
    aw_model_files *mf;
    aw_model_ends ends, dends;
    int ends_dev;
    aw_block *fp, *dfp;  /* fp checkpoint: host blocks and their backend copies */
    aw_qblock *q, *dq;   /* quantized checkpoint (W8A8 or weight-only) */
    aw_scheme scheme;    /* its scheme */
    int n_host, n_dev;   /* blocks created, uploaded */
    const aw_ops *ops;
    aw_ops *ops_owned;
    const aw_cuda_api *cuda;
    aw_fwd_ws ws;
    float *h, *x, *logits;      /* host */
    float *dh, *dx, *dlogits;   /* their mirrors in the backend's memory */
    uint32_t *dtok;
    uint32_t *ids;              /* the text's tokens (every rank) */
    size_t n_ids;
    double *nll;                /* per window */
} text_state;

static void text_free(text_state *s)
{
    const aw_ops *o = s->ops;
    if (o) {
        for (int l = 0; l < s->n_dev; l++) {
            if (s->quantized) aw_qblock_dev_free(o, &s->dq[l], &s->q[l]);
            else aw_block_dev_free(o, &s->dfp[l], &s->fp[l]);
        }
        if (s->ends_dev) aw_ends_dev_free(o, &s->dends, &s->ends);
        aw_ops_mirror_free(o, s->dh, s->h);
        aw_ops_mirror_free(o, s->dx, s->x);
        aw_ops_mirror_free(o, s->dlogits, s->logits);
        if (s->dtok) o->vt->release(o, s->dtok);
        aw_fwd_ws_destroy(&s->ws);
    }
    for (int l = 0; l < s->n_host; l++) {
        if (s->quantized) aw_qblock_destroy(&s->q[l]);
        else aw_block_destroy(&s->fp[l]);
    }
    free(s->q);
    free(s->dq);
    free(s->fp);
    free(s->dfp);
    aw_ends_destroy(&s->ends);
    aw_mf_close(s->mf);
    if (s->cuda && s->ops_owned) s->cuda->ops_destroy(s->ops_owned);
    free(s->h);
    free(s->x);
    free(s->logits);
    free(s->ids);
    free(s->nll);
    memset(s, 0, sizeof *s);
}

/* Rank 0: the text's token stream (the protocol of aw_textdata.h). */
static aw_status text_tokens(const aw_eval_text_opts *o, uint32_t **ids, size_t *n, uint32_t *vocab)
{
    aw_tokenizer *tk = NULL;
    aw_idvec v = {0};
    AW_TRY(aw_tokenizer_open(o->model_dir, &tk));
    aw_eval_progress(o->quiet, "tokenizer: %s", aw_tokenizer_describe(tk));
    aw_status st = aw_eval_text_stream(tk, o->text_path, o->text_field, &v);
    *vocab = aw_tokenizer_vocab_size(tk);
    aw_tokenizer_close(tk);
    if (st != AW_OK) {
        aw_idvec_free(&v);
        return st;
    }
    *ids = v.v;
    *n = v.n;
    return AW_OK;
}

/* This rank's kernels (as a run picks them). */
static aw_status text_backend(const aw_eval_text_opts *o, text_state *s, aw_eval_text_result *r)
{
    aw_backend_info info;
    AW_TRY(aw_backend_select(o->staged ? AW_BACKEND_CPU : o->backend_want, aw_local_rank_from_env(), &info));
    if (o->staged) {
        s->ops = aw_ops_cpu_staged();
    } else if (info.kind == AW_BACKEND_CUDA) {
        s->cuda = aw_cuda_api_get(NULL);
        AW_RETURN_IF(!s->cuda, AW_ERR_NO_DEVICE, "the CUDA plugin could not be loaded");
        AW_TRY(s->cuda->ops_create(&s->ops_owned));
        s->ops = s->ops_owned;
    } else {
        s->ops = aw_ops_cpu();
    }
    if (info.kind == AW_BACKEND_CUDA)
        snprintf(r->backend, sizeof r->backend, "cuda device %d: %.120s", info.device, info.device_name);
    else
        snprintf(r->backend, sizeof r->backend, "%.16s: %.120s", s->ops->name, info.device_name);
    return AW_OK;
}

/* Every rank: the whole model in the backend's memory, and the scratch of
 * one window. */
static aw_status text_load(const aw_eval_text_opts *o, text_state *s)
{
    const aw_model_config *c = &s->cfg;
    const aw_ops *ops = s->ops;
    int nl = c->num_hidden_layers, L = o->seq_len, d = c->hidden_size, V = c->vocab_size;
    AW_TRY(aw_mf_open(o->model_dir, &s->mf));
    AW_TRY(aw_ends_load(c, s->mf, &s->ends));
    AW_TRY(aw_ends_to_dev(ops, c, &s->ends, &s->dends));
    s->ends_dev = 1;
    if (s->quantized) {
        s->q = calloc((size_t)nl, sizeof *s->q);
        s->dq = calloc((size_t)nl, sizeof *s->dq);
        AW_RETURN_IF(!s->q || !s->dq, AW_ERR_NOMEM, "out of memory");
    } else {
        s->fp = calloc((size_t)nl, sizeof *s->fp);
        s->dfp = calloc((size_t)nl, sizeof *s->dfp);
        AW_RETURN_IF(!s->fp || !s->dfp, AW_ERR_NOMEM, "out of memory");
    }
    for (int l = 0; l < nl; l++) {
        if (s->quantized) {
            AW_TRY(aw_qblock_create(c, &s->scheme, &s->q[l]));
            s->n_host = l + 1;
            AW_TRY(aw_qblock_load(c, s->mf, l, &s->q[l]));
            AW_TRY(aw_qblock_to_dev(ops, c, &s->q[l], &s->dq[l]));
        } else {
            AW_TRY(aw_block_create(c, c->torch_dtype, &s->fp[l]));
            s->n_host = l + 1;
            AW_TRY(aw_block_load(c, s->mf, l, &s->fp[l]));
            AW_TRY(aw_block_to_dev(ops, c, &s->fp[l], &s->dfp[l]));
        }
        s->n_dev = l + 1;
    }
    AW_TRY(aw_fwd_ws_create_ops(ops, c, 1, L, &s->ws));
    /* weight-only blocks multiply their dequantized weights */
    if (s->quantized) AW_TRY(aw_fwd_ws_need_scheme(&s->ws, c, &s->scheme));
    size_t hb = (size_t)L * d * sizeof(float), xb = (size_t)AW_EVAL_LOGIT_CHUNK * d * sizeof(float);
    size_t lb = (size_t)AW_EVAL_LOGIT_CHUNK * V * sizeof(float);
    s->h = malloc(hb);
    s->x = malloc(xb);
    s->logits = malloc(lb);
    AW_RETURN_IF(!s->h || !s->x || !s->logits, AW_ERR_NOMEM, "out of memory for a window of %d tokens", L);
    AW_TRY(aw_ops_mirror(ops, (void **)&s->dh, s->h, hb, "hidden states"));
    AW_TRY(aw_ops_mirror(ops, (void **)&s->dx, s->x, xb, "logits"));
    AW_TRY(aw_ops_mirror(ops, (void **)&s->dlogits, s->logits, lb, "logits"));
    if (!ops->host) AW_TRY(ops->vt->alloc(ops, (void **)&s->dtok, (size_t)L * sizeof(uint32_t), "tokens"));
    return AW_OK;
}

/* -log p of the L - 1 next tokens of one window, summed in position order. */
static aw_status text_window(const aw_eval_text_opts *o, text_state *s, const uint32_t *tok, double *nll)
{
    const aw_model_config *c = &s->cfg;
    const aw_ops *ops = s->ops;
    int L = o->seq_len, d = c->hidden_size, V = c->vocab_size;
    const uint32_t *dtok = tok;
    if (s->dtok) {
        AW_TRY(ops->vt->to_dev(ops, s->dtok, tok, (size_t)L * sizeof(uint32_t)));
        dtok = s->dtok;
    }
    AW_TRY(aw_model_embed_ops(ops, c, &s->dends, dtok, 1, L, s->dh));
    for (int l = 0; l < c->num_hidden_layers; l++)
        AW_TRY(aw_block_forward(c, s->quantized ? NULL : &s->dfp[l], s->quantized ? &s->dq[l] : NULL, s->dh, 1,
                                L, &s->ws, NULL, NULL));
    double part = 0.0;
    for (int t0 = 0; t0 < L; t0 += AW_EVAL_LOGIT_CHUNK) {
        int n = L - t0 < AW_EVAL_LOGIT_CHUNK ? L - t0 : AW_EVAL_LOGIT_CHUNK;
        AW_TRY(aw_model_logits_ops(ops, c, &s->dends, s->dh + (size_t)t0 * d, s->dx, s->dlogits, n));
        if (!ops->host) AW_TRY(ops->vt->to_host(ops, s->logits, s->dlogits, (size_t)n * V * sizeof(float)));
        for (int r = 0; r < n; r++) {
            int t = t0 + r;
            if (t == L - 1) continue; /* the last position predicts nothing we hold */
            part -= aw_k_logprob_row(s->logits + (size_t)r * V, NULL, V, tok[t + 1], NULL, NULL);
        }
    }
    *nll = part;
    return AW_OK;
}

aw_status aw_eval_text(const aw_eval_text_opts *o, const aw_comm *w, aw_eval_text_result *r)
{
    AW_RETURN_IF(!o || !o->model_dir || !o->text_path || !w || !r, AW_ERR_ARG, "aw_eval_text: NULL argument");
    memset(r, 0, sizeof *r);
    AW_RETURN_IF(o->seq_len < 2, AW_ERR_ARG, "--seq-len %d: a window needs at least 2 tokens", o->seq_len);
    text_state s;
    memset(&s, 0, sizeof s);
    aw_status st = AW_OK;
    double t_start = aw_now();
    aw_set_blas_threads(aw_comm_node_size(w));
    char *cfg_path = aw_path_join(o->model_dir, "config.json");
    AW_GOTO_IF(!cfg_path, AW_ERR_NOMEM, "out of memory");
    st = aw_config_read(cfg_path, &s.cfg);
    if (st == AW_OK) st = aw_config_check_supported(&s.cfg, cfg_path);
    if (st == AW_OK) st = config_is_quantized(cfg_path, &s.quantized);
    if (st == AW_OK && s.quantized) st = aw_check_quant_config(cfg_path, &s.scheme);
    if (st == AW_OK && o->seq_len > s.cfg.max_position_embeddings)
        st = AW_FAIL(AW_ERR_ARG, "--seq-len %d: longer than the %d positions of %s", o->seq_len,
                     s.cfg.max_position_embeddings, cfg_path);
    AW_CHECK(aw_comm_agree(w, st));
    r->quantized = s.quantized;
    if (s.quantized) r->scheme = s.scheme;
    r->seq_len = (uint32_t)o->seq_len;

    /* rank 0 tokenizes, everyone gets the ids */
    void *buf = NULL;
    size_t len = 0;
    if (w->rank == 0) {
        uint32_t vocab = 0;
        st = text_tokens(o, &s.ids, &s.n_ids, &vocab);
        /* a tokenizer may know more ids than the model has rows (an added
         * <pad>): only the ids of this text must fit */
        for (size_t i = 0; st == AW_OK && vocab > (uint32_t)s.cfg.vocab_size && i < s.n_ids; i++)
            if (s.ids[i] >= (uint32_t)s.cfg.vocab_size)
                st = AW_FAIL(AW_ERR_TOKENS,
                             "%s: token %zu of %s is id %u from the folder's tokenizer, outside the %d rows of "
                             "config.json's vocabulary",
                             o->model_dir, i, o->text_path, s.ids[i], s.cfg.vocab_size);
        if (st == AW_OK && s.n_ids < (size_t)o->seq_len)
            st = AW_FAIL(AW_ERR_CORPUS, "%s: %zu tokens are fewer than one window of %d (--seq-len)",
                         o->text_path, s.n_ids, o->seq_len);
        buf = s.ids;
        len = s.n_ids * sizeof(uint32_t);
    }
    AW_CHECK(aw_comm_bcast_bytes(w, 0, st, &buf, &len));
    if (w->rank != 0) {
        s.ids = buf;
        s.n_ids = len / sizeof(uint32_t);
    }
    r->text_tokens = s.n_ids;
    uint64_t n = s.n_ids / (size_t)o->seq_len;
    if (o->max_windows > 0 && n > (uint64_t)o->max_windows) n = (uint64_t)o->max_windows;
    AW_GOTO_IF(n > INT32_MAX, AW_ERR_ARG, "%llu windows are too many", (unsigned long long)n);
    r->n_windows = (uint32_t)n;
    char label[48];
    aw_eval_progress(o->quiet || w->rank != 0, "%s: %zu tokens, %u windows of %d; %s model %s (%s d=%d layers=%d) on %d rank(s)",
             o->text_path, s.n_ids, r->n_windows, o->seq_len, s.quantized ? aw_scheme_label(&s.scheme, label, sizeof label) : "fp", o->model_dir,
             aw_arch_of(&s.cfg)->label, s.cfg.hidden_size, s.cfg.num_hidden_layers, w->size);

    st = text_backend(o, &s, r);
    if (st == AW_OK) st = text_load(o, &s);
    if (st == AW_OK) {
        s.nll = calloc(n ? n : 1, sizeof(double));
        if (!s.nll) st = AW_FAIL(AW_ERR_NOMEM, "out of memory");
    }
    AW_CHECK(aw_comm_agree(w, st));

    /* windows round robin over the ranks; no collective inside the loop */
    double t_loop = aw_now(), t_said = t_loop;
    uint64_t mine = 0, n_mine = n > (uint64_t)w->rank ? (n - (uint64_t)w->rank + (uint64_t)w->size - 1) / (uint64_t)w->size : 0;
    for (uint64_t k = (uint64_t)w->rank; k < n && st == AW_OK; k += (uint64_t)w->size) {
        st = text_window(o, &s, s.ids + k * (size_t)o->seq_len, &s.nll[k]);
        if (st == AW_OK && !isfinite(s.nll[k]))
            st = AW_FAIL(AW_ERR_NONFINITE, "%s: window %llu (tokens %llu..%llu of %s): the log-likelihood is not finite",
                         o->model_dir, (unsigned long long)k, (unsigned long long)(k * (uint64_t)o->seq_len),
                         (unsigned long long)((k + 1) * (uint64_t)o->seq_len - 1), o->text_path);
        mine++;
        double now = aw_now();
        if (w->rank == 0 && !o->quiet && (now - t_said >= 10.0 || mine == n_mine)) {
            double rate = (double)mine * o->seq_len / (now - t_loop);
            fprintf(stderr, "aweq-dist: eval: window %llu/%llu on rank 0, %.0f tokens/s, about %.0f s left\n",
                    (unsigned long long)mine, (unsigned long long)n_mine, rate,
                    (double)(n_mine - mine) * o->seq_len / (rate > 0 ? rate : 1));
            t_said = now;
        }
    }
    AW_CHECK(aw_comm_agree(w, st));
    /* each window's sum comes from one rank, zeros from the others: exact */
    if (n > 0) AW_CHECK(aw_reduce_world_sum_f64(w, s.nll, (size_t)n));
    for (uint64_t k = 0; k < n; k++) r->nll += s.nll[k];
    r->n_pred = n * (uint64_t)(o->seq_len - 1);
    r->ppl = r->n_pred ? exp(r->nll / (double)r->n_pred) : NAN;
    r->seconds = aw_now() - t_start;
fail:
    free(cfg_path);
    text_free(&s);
    return st;
}

