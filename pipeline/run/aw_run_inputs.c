/* aw_run_inputs.c - a run's options and inputs: defaults, rank 0 reading
 * the model's config, tokens and text and planning, and the job broadcast
 * that leaves every rank with the same inputs, plan and communicators
 * (see aw_run_int.h). */
#include "aw_run_int.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aw_fs.h"
#include "aw_inspect.h"
#include "aw_plan.h"
#include "aw_textdata.h"

/* ---- options ----------------------------------------------------------------- */

void aw_run_defaults(aw_run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->method.kind = AW_METHOD_AWEQ;
    o->method.alpha = 0.5f;
    o->method.bias_correction = 1;
    o->method.param_dtype = AW_DT_F16;
    o->method.scale_dtype = AW_DT_F16;
    o->method.scheme = AW_SCHEME_W8A8;
    o->holdout = 0.2;
    o->batch = 8;
    o->backend_want = -1;
    o->hang_timeout_s = 1800;
    o->calib_samples = 128;
    o->progress_every_s = 10.0;
}

void aw_run_result_free(aw_run_result *r)
{
    if (!r) return;
    free(r->layers);
    free(r->rank_first_layer);
    free(r->rank_last_layer);
    free(r->rank_peak_mb);
    free(r->rank_device);
    free(r->depth);
    free(r->detail);
    r->depth = r->detail = NULL;
    r->layers = NULL;
    r->rank_first_layer = r->rank_last_layer = NULL;
    r->rank_peak_mb = NULL;
    r->rank_device = NULL;
}

double aw_e2e_ppl_fp(const aw_e2e *e) { return e->n_pred > 0 ? exp(e->nll_fp / e->n_pred) : NAN; }
double aw_e2e_ppl_q(const aw_e2e *e) { return e->n_pred > 0 ? exp(e->nll_q / e->n_pred) : NAN; }
double aw_e2e_kl(const aw_e2e *e) { return e->n_pred > 0 ? e->kl / e->n_pred : NAN; }
double aw_e2e_top1(const aw_e2e *e) { return e->n_pred > 0 ? e->top1_agree / e->n_pred : NAN; }

void aw_set_blas_threads(int local)
{
    /* the user's choice wins */
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    if (env && *env) return;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int n = (int)(cpus / local);
    /* ranks sharing a node share its cores; OpenBLAS would otherwise start
     * a thread per core in every rank and spin against the others */
    openblas_set_num_threads(n > 0 ? n : 1);
}

/* ---- rank 0: read, check, plan; then everyone gets the same job ---------- */

static aw_status split(const aw_run_opts *o, run_inputs *in);

/* A tokenizer may know more ids than the model has rows (an added <pad>):
 * only the ids used must fit. The token set then counts the model's rows. */
static aw_status ids_fit(run_inputs *in, const uint32_t *ids, size_t n, const char *text)
{
    uint32_t V = (uint32_t)in->cfg.vocab_size;
    for (size_t i = 0; i < n; i++)
        AW_RETURN_IF(ids[i] >= V, AW_ERR_TOKENS,
                     "%s: id %u from the model folder's tokenizer is outside the %u rows of its config.json's "
                     "vocabulary",
                     text, ids[i], V);
    if (in->tokens.vocab_size > V) in->tokens.vocab_size = V;
    return AW_OK;
}

/* Calibration (and held-out) windows drawn from text with the model's
 * tokenizer; n_hold keeps the --holdout share of all windows. */
static aw_status load_calib_text(const aw_run_opts *o, const aw_tokenizer *tk, run_inputs *in)
{
    AW_RETURN_IF(!(o->holdout >= 0.0 && o->holdout < 1.0), AW_ERR_ARG,
                 "--holdout %g: expected a share in [0, 1)", o->holdout);
    int max_pos = in->cfg.max_position_embeddings;
    uint32_t L = o->calib_len ? o->calib_len : (uint32_t)(max_pos < 2048 ? max_pos : 2048);
    AW_RETURN_IF(L > (uint32_t)max_pos, AW_ERR_ARG,
                 "--calib-len %u: longer than the model's %d positions", L, max_pos);
    uint64_t h = aw_holdout_windows(o->calib_samples, o->holdout);
    AW_RETURN_IF(h > AW_MAX_HOLDOUT_WINDOWS, AW_ERR_ARG,
                 "--holdout %g with %u calibration windows: more than %u held-out windows", o->holdout,
                 o->calib_samples, AW_MAX_HOLDOUT_WINDOWS);
    aw_calib_text_opts co = {.files = o->calib_texts, .n_files = o->n_calib_texts,
                             .text_field = o->text_field, .n_calib = o->calib_samples,
                             .n_hold = (uint32_t)h, .seq_len = L, .seed = o->seed, .quiet = o->quiet};
    AW_TRY(aw_calib_from_text(tk, &co, &in->tokens, NULL));
    AW_TRY(ids_fit(in, in->tokens.ids, (size_t)in->tokens.n_seq * L, o->calib_texts[0]));
    in->n_calib = o->calib_samples;
    in->n_hold = (uint32_t)h;
    return AW_OK;
}

/* The eval text's windows of the calibration length, appended to the
 * token set (they stream after the held-out ones). */
static aw_status load_eval_text(const aw_run_opts *o, const aw_tokenizer *tk, run_inputs *in)
{
    aw_idvec ids = {0};
    AW_TRY(aw_eval_text_stream(tk, o->eval_text, o->text_field, &ids));
    aw_status st = AW_OK;
    size_t L = in->tokens.seq_len, n = ids.n / L;
    AW_GOTO_IF(n == 0, AW_ERR_CORPUS, "%s: %zu tokens are fewer than one window of %zu (the calibration length)",
               o->eval_text, ids.n, L);
    AW_CHECK(ids_fit(in, ids.v, n * L, o->eval_text));
    size_t have = (size_t)in->tokens.n_seq * L;
    uint32_t *all = realloc(in->tokens.ids, (have + n * L) * sizeof(uint32_t));
    AW_GOTO_IF(!all, AW_ERR_NOMEM, "out of memory for %zu eval windows", n);
    in->tokens.ids = all;
    memcpy(all + have, ids.v, n * L * sizeof(uint32_t));
    in->tokens.n_seq += n;
    in->n_eval = (uint32_t)n;
    in->eval_stream_tokens = ids.n;
fail:
    aw_idvec_free(&ids);
    return st;
}

static aw_status load_root(const aw_run_opts *o, run_inputs *in)
{
    char *cfg_path = aw_path_join(o->model_dir, "config.json");
    char *tok_path = o->calib_path ? NULL : aw_path_join(o->model_dir, "calibration.tokens");
    AW_RETURN_IF(!cfg_path || (!o->calib_path && !tok_path), AW_ERR_NOMEM, "out of memory");
    const char *calib = o->calib_path ? o->calib_path : tok_path;
    aw_tokenizer *tk = NULL;
    int text = o->n_calib_texts > 0;
    aw_status st = aw_config_read(cfg_path, &in->cfg);
    if (st == AW_OK) st = aw_config_check_supported(&in->cfg, cfg_path);
    free(cfg_path);
    if (st == AW_OK) st = aw_mf_open(o->model_dir, &in->mf);
    if (st == AW_OK) st = aw_checkpoint_check(&in->cfg, in->mf);
    if (st == AW_OK && !text && !o->calib_path && access(tok_path, F_OK) != 0)
        st = AW_FAIL(AW_ERR_ARG,
                     "%s: no calibration.tokens in the model folder: pass --calib-text FILE (.txt, .jsonl, "
                     "optionally .zst; tokenized with the model's tokenizer) or --calib FILE (a token file "
                     "from 'aweq-dist tokenize')",
                     o->model_dir);
    if (st == AW_OK && (text || o->eval_text)) st = aw_tokenizer_open(o->model_dir, &tk);
    if (st == AW_OK && text) {
        st = load_calib_text(o, tk, in);
        calib = o->calib_texts[0];
    } else if (st == AW_OK) {
        st = aw_tokens_read(calib, &in->tokens);
    }
    if (st == AW_OK && in->tokens.vocab_size > (uint32_t)in->cfg.vocab_size)
        st = AW_FAIL(AW_ERR_TOKENS, "%s: token vocabulary of %u is larger than the model's %d", calib,
                     in->tokens.vocab_size, in->cfg.vocab_size);
    if (st == AW_OK && in->tokens.seq_len > (uint32_t)in->cfg.max_position_embeddings)
        st = AW_FAIL(AW_ERR_TOKENS, "%s: sequences of %u tokens are longer than the model's %d positions",
                     calib, in->tokens.seq_len, in->cfg.max_position_embeddings);
    if (st == AW_OK && !text) st = split(o, in);
    if (st == AW_OK && o->eval_text) st = load_eval_text(o, tk, in);
    aw_tokenizer_close(tk);
    free(tok_path);
    return st;
}

/* The first n_calib sequences calibrate, the rest validate. */
static aw_status split(const aw_run_opts *o, run_inputs *in)
{
    const aw_tokens *t = &in->tokens;
    AW_RETURN_IF(!(o->holdout >= 0.0 && o->holdout < 1.0), AW_ERR_ARG,
                 "--holdout %g: expected a share in [0, 1)", o->holdout);
    AW_RETURN_IF(t->n_seq > UINT32_MAX, AW_ERR_TOKENS, "too many sequences");
    uint64_t h = aw_holdout_count(t->n_seq, o->holdout);
    AW_RETURN_IF(h >= t->n_seq, AW_ERR_ARG,
                 "%llu calibration sequences leave none for calibration after holding out %llu",
                 (unsigned long long)t->n_seq, (unsigned long long)h);
    in->n_hold = (uint32_t)h;
    in->n_calib = (uint32_t)(t->n_seq - h);
    return AW_OK;
}


/* This node's memory shared by the ranks on it: the default budget. */
static uint64_t default_mem_per_rank(int local)
{
    uint64_t phys = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGE_SIZE);
    return phys / (uint64_t)local;
}

static aw_status make_plan(const aw_run_opts *o, const run_inputs *in, int world, uint64_t mem, aw_plan *p)
{
    aw_plan_costs k;
    AW_TRY(aw_plan_costs_method(&in->cfg, &o->method, (int)in->tokens.seq_len, o->batch, in->n_calib,
                                in->n_hold + in->n_eval, &k));
    /* --cpu-precision bf16: a block of samples' linear inputs in bf16 */
    if (o->cpu_bf16) k.rank_fixed_bytes += aw_fwd_ws_bf16_bytes(&in->cfg, o->batch * (int)in->tokens.seq_len);
    /* CPU ranks: a modest sustained rate; only the balance matters here */
    aw_plan_rates rates = {.flops_per_s = 50e9, .read_bytes_per_s = 1e9};
    return aw_plan_make(&k, &rates, world, mem, o->stages, o->replicas, p);
}

/* Job wire format: plan | cfg | n_calib | n_hold | n_eval | tokens header | ids | tensor table. */
static aw_status pack_job(const run_inputs *in, const aw_plan *p, uint8_t **out, size_t *len)
{
    uint8_t *mfb = NULL;
    size_t mfl = 0;
    AW_TRY(aw_mf_export(in->mf, &mfb, &mfl));
    size_t ids = (size_t)in->tokens.n_seq * in->tokens.seq_len * sizeof(uint32_t);
    size_t n = sizeof *p + sizeof in->cfg + 3 * sizeof(uint32_t) + 2 * sizeof(uint32_t) + sizeof(uint64_t) + ids + mfl;
    uint8_t *b = malloc(n), *q = b;
    if (!b) {
        free(mfb);
        return AW_FAIL(AW_ERR_NOMEM, "out of memory packing the job");
    }
#define PUT(src, sz) (memcpy(q, (src), (sz)), q += (sz))
    PUT(p, sizeof *p);
    PUT(&in->cfg, sizeof in->cfg);
    PUT(&in->n_calib, sizeof(uint32_t));
    PUT(&in->n_hold, sizeof(uint32_t));
    PUT(&in->n_eval, sizeof(uint32_t));
    PUT(&in->tokens.vocab_size, sizeof(uint32_t));
    PUT(&in->tokens.seq_len, sizeof(uint32_t));
    PUT(&in->tokens.n_seq, sizeof(uint64_t));
    PUT(in->tokens.ids, ids);
    PUT(mfb, mfl);
#undef PUT
    free(mfb);
    *out = b;
    *len = n;
    return AW_OK;
}

static aw_status unpack_job(const uint8_t *b, size_t len, run_inputs *in, aw_plan *p)
{
    size_t fixed = sizeof *p + sizeof in->cfg + 5 * sizeof(uint32_t) + sizeof(uint64_t);
    AW_RETURN_IF(len < fixed, AW_ERR_MPI, "job message truncated");
    const uint8_t *q = b;
#define GET(dst, sz) (memcpy((dst), q, (sz)), q += (sz))
    GET(p, sizeof *p);
    GET(&in->cfg, sizeof in->cfg);
    GET(&in->n_calib, sizeof(uint32_t));
    GET(&in->n_hold, sizeof(uint32_t));
    GET(&in->n_eval, sizeof(uint32_t));
    GET(&in->tokens.vocab_size, sizeof(uint32_t));
    GET(&in->tokens.seq_len, sizeof(uint32_t));
    GET(&in->tokens.n_seq, sizeof(uint64_t));
    size_t ids = (size_t)in->tokens.n_seq * in->tokens.seq_len * sizeof(uint32_t);
    AW_RETURN_IF(len - fixed < ids, AW_ERR_MPI, "job message truncated");
    in->tokens.ids = malloc(ids ? ids : 1);
    AW_RETURN_IF(!in->tokens.ids, AW_ERR_NOMEM, "out of memory for the tokens");
    GET(in->tokens.ids, ids);
#undef GET
    return aw_mf_import(q, len - (size_t)(q - b), &in->mf);
}

aw_status run_setup(const aw_run_opts *o, run_inputs *in, run_topo *t, int local)
{
    const aw_comm *w = t->w;
    uint8_t *job = NULL;
    size_t len = 0;
    aw_status st = AW_OK;
    uint64_t node_mem = default_mem_per_rank(local);
    if (w->rank == 0) {
        uint64_t mem = o->mem_per_rank_gb > 0 ? (uint64_t)(o->mem_per_rank_gb * 1e9) : node_mem;
        st = load_root(o, in);
        if (st == AW_OK) st = make_plan(o, in, w->size, mem, &t->plan);
        if (st == AW_OK) st = pack_job(in, &t->plan, &job, &len);
    }
    void *buf = job;
    st = aw_comm_bcast_bytes(w, 0, st, &buf, &len);
    if (st == AW_OK && w->rank != 0) {
        st = unpack_job(buf, len, in, &t->plan);
        free(buf);
    }
    free(job);
    st = aw_comm_agree(w, st);
    if (st != AW_OK) return st;
    t->S = t->plan.stages;
    t->R = t->plan.replicas;
    t->stage = aw_plan_stage_of(&t->plan, w->rank);
    t->replica = aw_plan_replica_of(&t->plan, w->rank);
    t->l0 = t->plan.first_layer[t->stage];
    t->nl = t->plan.first_layer[t->stage + 1] - t->l0;
    t->is_first = t->stage == 0;
    t->is_last = t->stage == t->S - 1;
    in->L = (int)in->tokens.seq_len;
    in->B = o->batch;
    in->stats_level = aw_method_stats_level(&o->method);
    in->stats_sample = aw_method_needs_sample(&o->method);
    in->cpu_bf16 = o->cpu_bf16;
    return aw_pipe_open(w, t->stage, t->replica, t->S, t->R, &t->pipe);
}
