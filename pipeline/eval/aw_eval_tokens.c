/* aw_eval_tokens.c - `eval --tokens`: the perplexity of a quantized checkpoint
 * on a token file, its held-out sequences chosen, batched and summed as a
 * run validates them (see aw_eval.h). */
#include "aw_eval_int.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_clock.h"
#include "aw_forward.h"
#include "aw_fs.h"
#include "aw_kernels.h"
#include "aw_textdata.h"
#include "aw_tokens.h"

/* ---- evaluation ---------------------------------------------------------- */

typedef struct {
    aw_model_config cfg;
    aw_model_files *mf;
    aw_model_ends ends;
    aw_tokens tok;
    int n_layers; /* qblocks created */
    aw_qblock *q;
    aw_fwd_ws ws;
    float *h, *lx, *logits;
} eval_state;

static void eval_free(eval_state *s)
{
    for (int l = 0; l < s->n_layers; l++) aw_qblock_destroy(&s->q[l]);
    free(s->q);
    aw_fwd_ws_destroy(&s->ws);
    aw_ends_destroy(&s->ends);
    aw_tokens_free(&s->tok);
    aw_mf_close(s->mf);
    free(s->h);
    free(s->lx);
    free(s->logits);
    memset(s, 0, sizeof *s);
}

/* nll += -log p(tokens[t+1]) of the n_seq*L rows of h (T, d), in row chunks
 * and row order as aw_e2e_accum sums its quantized side. */
static void accum_nll(const aw_model_config *c, const aw_model_ends *e, const float *h,
                      const uint32_t *tokens, int n_seq, int L, float *x, float *logits, int chunk,
                      double *nll, uint64_t *n_pred)
{
    int T = n_seq * L, d = c->hidden_size, V = c->vocab_size;
    for (int t0 = 0; t0 < T; t0 += chunk) {
        int n = T - t0 < chunk ? T - t0 : chunk;
        aw_model_logits(c, e, h + (size_t)t0 * d, x, logits, n);
        for (int r = 0; r < n; r++) {
            int t = t0 + r;
            if (t % L == L - 1) continue; /* the last position predicts nothing we hold */
            *nll -= aw_k_logprob_row(logits + (size_t)r * V, NULL, V, tokens[t + 1], NULL, NULL);
            (*n_pred)++;
        }
    }
}

aw_status aw_eval(const char *model_dir, const char *tokens_path, double holdout, int batch,
                  int quiet, aw_eval_result *r)
{
    AW_RETURN_IF(!model_dir || !tokens_path || !r, AW_ERR_ARG, "aw_eval: NULL argument");
    memset(r, 0, sizeof *r);
    AW_RETURN_IF(!(holdout >= 0.0 && holdout < 1.0), AW_ERR_ARG,
                 "--holdout %g: expected a share in [0, 1)", holdout);
    AW_RETURN_IF(batch < 1, AW_ERR_ARG, "--batch %d: expected at least 1", batch);
    eval_state s;
    memset(&s, 0, sizeof s);
    aw_status st = AW_OK;
    double t_start = aw_now();
    char *cfg_path = aw_path_join(model_dir, "config.json");
    AW_GOTO_IF(!cfg_path, AW_ERR_NOMEM, "out of memory");
    AW_CHECK(aw_config_read(cfg_path, &s.cfg));
    AW_CHECK(aw_config_check_supported(&s.cfg, cfg_path));
    AW_CHECK(aw_check_quant_config(cfg_path, &r->scheme));
    const aw_model_config *c = &s.cfg;
    AW_CHECK(aw_mf_open(model_dir, &s.mf));
    AW_CHECK(aw_ends_load(c, s.mf, &s.ends));
    s.q = calloc((size_t)c->num_hidden_layers, sizeof *s.q);
    AW_GOTO_IF(!s.q, AW_ERR_NOMEM, "out of memory");
    for (int l = 0; l < c->num_hidden_layers; l++) {
        AW_CHECK(aw_qblock_create(c, &r->scheme, &s.q[l]));
        s.n_layers = l + 1;
        AW_CHECK(aw_qblock_load(c, s.mf, l, &s.q[l]));
    }

    AW_CHECK(aw_tokens_read(tokens_path, &s.tok));
    AW_GOTO_IF(s.tok.vocab_size > (uint32_t)c->vocab_size, AW_ERR_TOKENS,
               "%s: token vocabulary of %u is larger than the model's %d", tokens_path,
               s.tok.vocab_size, c->vocab_size);
    AW_GOTO_IF(s.tok.seq_len > (uint32_t)c->max_position_embeddings, AW_ERR_TOKENS,
               "%s: sequences of %u tokens are longer than the model's %d positions", tokens_path,
               s.tok.seq_len, c->max_position_embeddings);
    AW_GOTO_IF(s.tok.seq_len < 2, AW_ERR_TOKENS,
               "%s: sequences of %u token predict nothing; perplexity needs at least 2", tokens_path,
               s.tok.seq_len);
    AW_GOTO_IF(s.tok.n_seq == 0 || s.tok.n_seq > UINT32_MAX, AW_ERR_TOKENS,
               "%s: %llu sequences: expected 1 to %u", tokens_path,
               (unsigned long long)s.tok.n_seq, UINT32_MAX);

    /* the pipeline's split: the last llround(holdout * n) sequences, at least one */
    uint64_t n_eval = holdout > 0 ? aw_holdout_count(s.tok.n_seq, holdout) : s.tok.n_seq;
    uint32_t n_seq = (uint32_t)n_eval, first = (uint32_t)(s.tok.n_seq - n_eval);
    int L = (int)s.tok.seq_len, d = c->hidden_size, B = batch;
    int B_alloc = (uint32_t)B < n_seq ? B : (int)n_seq; /* no scratch beyond what is evaluated */
    AW_GOTO_IF((uint64_t)B_alloc * (uint64_t)L > (uint64_t)INT32_MAX, AW_ERR_ARG,
               "--batch %d: %d sequences of %d tokens are too many for one block", B, B_alloc, L);
    r->n_seq = n_seq;
    r->first_seq = first;
    r->seq_len = (uint32_t)L;
    char label[48];
    aw_eval_progress(quiet, "model %s: %s d=%d layers=%d, %s; %u sequences of %d tokens (%u..%u of %s)",
             model_dir, aw_arch_of(c)->label, d, c->num_hidden_layers, aw_scheme_label(&r->scheme, label, sizeof label),
             n_seq, L, first, first + n_seq - 1, tokens_path);

    size_t maxT = (size_t)B_alloc * (size_t)L;
    AW_CHECK(aw_fwd_ws_create(c, B_alloc, L, &s.ws));
    /* what the scheme's blocks need besides the forward's scratch */
    AW_CHECK(aw_fwd_ws_need_scheme(&s.ws, c, &r->scheme));
    s.h = malloc(maxT * (size_t)d * sizeof(float));
    s.lx = malloc((size_t)AW_EVAL_LOGIT_CHUNK * (size_t)d * sizeof(float));
    s.logits = malloc((size_t)AW_EVAL_LOGIT_CHUNK * (size_t)c->vocab_size * sizeof(float));
    AW_GOTO_IF(!s.h || !s.lx || !s.logits, AW_ERR_NOMEM,
               "out of memory for hidden states of %zu tokens and logits", maxT);

    /* blocks of samples in order, as aw_run() validates: the same sums in
     * the same order give the same perplexity */
    int n_batches = (int)((n_seq + (uint32_t)B - 1) / (uint32_t)B);
    for (int bi = 0; bi < n_batches; bi++) {
        uint32_t done = (uint32_t)bi * (uint32_t)B;
        int ns = (int)(n_seq - done < (uint32_t)B ? n_seq - done : (uint32_t)B);
        const uint32_t *tok = s.tok.ids + ((size_t)first + done) * (size_t)L;
        aw_model_embed(c, &s.ends, tok, ns, L, s.h);
        for (int l = 0; l < s.n_layers; l++)
            aw_block_forward(c, NULL, &s.q[l], s.h, ns, L, &s.ws, NULL, NULL);
        /* a block's sum from zero, then added to the total in block order:
         * the pipeline's per-block parts (aw_e2e_add), whatever its rank count */
        double part = 0.0;
        accum_nll(c, &s.ends, s.h, tok, ns, L, s.lx, s.logits, AW_EVAL_LOGIT_CHUNK, &part, &r->n_pred);
        r->nll += part;
        AW_GOTO_IF(!isfinite(r->nll), AW_ERR_NONFINITE,
                   "%s: the log-likelihood is not finite after block %d of samples (sequences %u..%u)",
                   model_dir, bi + 1, first + done, first + done + (uint32_t)ns - 1);
        aw_eval_progress(quiet, "block %d/%d of samples", bi + 1, n_batches);
    }
    r->ppl = exp(r->nll / (double)r->n_pred);
    r->seconds = aw_now() - t_start;
fail:
    free(cfg_path);
    eval_free(&s);
    return st;
}


