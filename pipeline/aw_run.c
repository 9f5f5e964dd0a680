/* aw_run.c - the quantization job over MPI ranks (see aw_run.h).
 *
 * Layout (from the plan): rank = stage * R + replica. Stage s holds layers
 * [first_layer[s], first_layer[s+1]). Blocks of B samples are numbered
 * b = 0..nb-1; replica j handles the blocks with b % R == j, and each block
 * streams through the stages of its replica chain. Every sum (statistics,
 * validation errors, end-to-end) is kept per block and added in block order
 * after an allgather among the replicas of a stage, so the result is the
 * same bytes whatever the number of stages and replicas. */
#include "aw_run.h"

#include <cblas.h>
#include <errno.h>
#include <sys/stat.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "aw_forward.h"
#include "aw_fs.h"
#include "aw_html.h"
#include "aw_inspect.h"
#include "aw_kernels.h"
#include "aw_model.h"
#include "aw_outdir.h"
#include "aw_plan_cmd.h"
#include "aw_progress.h"
#include "aw_sched.h"
#include "aw_textdata.h"
#include "aw_tokens.h"
#include "aw_writer.h"
#include "aw_cuda_api.h"

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
    o->method.scale_dtype = AW_DT_F16;
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

/* Where this rank sits. */
typedef struct {
    const aw_comm *w;
    MPI_Comm stage_comm, chain_comm;
    aw_plan plan;
    int stage, replica, S, R;
    int l0, nl; /* my layers: [l0, l0 + nl) */
    int is_first, is_last;
} topo;

/* Everything one rank holds. */
typedef struct {
    aw_model_config cfg;
    aw_method method;
    aw_model_files *mf;
    aw_tokens tokens;              /* calibration, held-out, then eval windows */
    uint32_t n_calib, n_hold, n_eval;
    uint64_t eval_stream_tokens;   /* rank 0 */
    int L, B;
    aw_model_ends ends;
    aw_block *fp;
    aw_qblock *q;
    aw_stats *stats;
    aw_layer_val *val;
    aw_fwd_ws ws;
    aw_val_ws vws;
    float *buf[2];                 /* hand-off buffers, 2 * B * L * d floats each */
    float *lx, *logits_fp, *logits_q;
    double **parts;                /* per layer: my blocks' parts, n_my_max x part_len */
    aw_e2e *e2e_parts;             /* last stage: my held-out blocks' end-to-end sums */
    int *done;                     /* per layer: quantized block taken from its shard */
    char *work;                    /* <out>.work: the shards, NULL without --out */
    char run_key[512];             /* what a shard must have been made from to be reused */
    /* the backend: kernels, and what they work on in its memory (the host
     * objects themselves with the CPU table) */
    const aw_ops *ops;
    aw_ops *ops_owned;             /* the CUDA table, destroyed at the end */
    aw_block *dfp;                 /* fp blocks */
    aw_qblock *dq;                 /* W8A8 blocks (from quantization on to the end) */
    aw_model_ends dends;
    float *dbuf[2];                /* hand-off blocks, as buf */
    uint32_t *dtok;                /* one block of samples' tokens */
    float *dlx, *dlogits_fp, *dlogits_q;
    int logit_chunk;
    /* NCCL hand-off: a two-rank communicator per link of the replica chain,
     * each driven from its own stream */
    int nccl;
    void *link_prev, *link_next;
    void *kc_recv, *kc_send;       /* CUDA contexts of the two links' streams */
    const aw_cuda_api *cuda;       /* the CUDA plugin, when this rank uses it */
    aw_progress *prog;             /* progress lines and log (rank 0; NULL elsewhere) */
    float *depth_mine;             /* (nl x AW_DEPTH_LEN) my layers' range summaries (replica 0) */
    float *detail_mine;            /* my shown layers' ranges, in layer order (replica 0) */
} run_state;

/* What the backend holds: before the host objects it may alias. */
static void dev_free(run_state *s, const topo *t, int failed)
{
    const aw_ops *o = s->ops;
    if (!o) return;
    const aw_cuda_api *cu = s->cuda;
    if (cu) {
        void (*end)(void *) = failed ? cu->nccl_abort : cu->nccl_destroy;
        if (s->link_prev) end(s->link_prev);
        if (s->link_next) end(s->link_next);
        if (s->kc_recv) cu->stream_destroy(s->kc_recv);
        if (s->kc_send) cu->stream_destroy(s->kc_send);
    }
    s->link_prev = s->link_next = s->kc_recv = s->kc_send = NULL;
    for (int l = 0; l < t->nl; l++) {
        if (s->dfp && s->fp) aw_block_dev_free(o, &s->dfp[l], &s->fp[l]);
        if (s->dq && s->q) aw_qblock_dev_free(o, &s->dq[l], &s->q[l]);
        /* sums mirrored in the backend's memory go back to the host */
        if (s->stats) aw_stats_destroy(&s->stats[l]);
        if (s->val) aw_layer_val_destroy(&s->val[l]);
    }
    free(s->dfp);
    free(s->dq);
    s->dfp = NULL;
    s->dq = NULL;
    aw_ends_dev_free(o, &s->dends, &s->ends);
    aw_fwd_ws_destroy(&s->ws);
    aw_val_ws_destroy(&s->vws);
    for (int i = 0; i < 2; i++) aw_ops_mirror_free(o, s->dbuf[i], s->buf[i]);
    aw_ops_mirror_free(o, s->dtok, NULL);
    aw_ops_mirror_free(o, s->dlx, s->lx);
    aw_ops_mirror_free(o, s->dlogits_fp, s->logits_fp);
    aw_ops_mirror_free(o, s->dlogits_q, s->logits_q);
    s->dbuf[0] = s->dbuf[1] = NULL;
    s->dtok = NULL;
    s->dlx = s->dlogits_fp = s->dlogits_q = NULL;
    if (cu && s->ops_owned) cu->ops_destroy(s->ops_owned);
    s->ops_owned = NULL;
    s->ops = NULL;
}

static void state_free(run_state *s, const topo *t)
{
    dev_free(s, t, 1);
    for (int l = 0; l < t->nl; l++) {
        if (s->fp) aw_block_destroy(&s->fp[l]);
        if (s->q) aw_qblock_destroy(&s->q[l]);
        if (s->stats) aw_stats_destroy(&s->stats[l]);
        if (s->val) aw_layer_val_destroy(&s->val[l]);
        if (s->parts) free(s->parts[l]);
    }
    free(s->parts);
    free(s->done);
    free(s->work);
    free(s->fp);
    free(s->q);
    free(s->stats);
    free(s->val);
    free(s->e2e_parts);
    free(s->depth_mine);
    free(s->detail_mine);
    aw_fwd_ws_destroy(&s->ws);
    aw_val_ws_destroy(&s->vws);
    aw_ends_destroy(&s->ends);
    aw_tokens_free(&s->tokens);
    aw_mf_close(s->mf);
    free(s->buf[0]);
    free(s->buf[1]);
    free(s->lx);
    free(s->logits_fp);
    free(s->logits_q);
    memset(s, 0, sizeof *s);
}


#define AW_LOGIT_CHUNK 128

/* ---- rank 0: read, check, plan; then everyone gets the same job ---------- */

static aw_status split(const aw_run_opts *o, run_state *s);

/* A tokenizer may know more ids than the model has rows (an added <pad>):
 * only the ids used must fit. The token set then counts the model's rows. */
static aw_status ids_fit(run_state *s, const uint32_t *ids, size_t n, const char *text)
{
    uint32_t V = (uint32_t)s->cfg.vocab_size;
    for (size_t i = 0; i < n; i++)
        AW_RETURN_IF(ids[i] >= V, AW_ERR_TOKENS,
                     "%s: id %u from the model folder's tokenizer is outside the %u rows of its config.json's "
                     "vocabulary",
                     text, ids[i], V);
    if (s->tokens.vocab_size > V) s->tokens.vocab_size = V;
    return AW_OK;
}

/* Calibration (and held-out) windows drawn from text with the model's
 * tokenizer; n_hold keeps the --holdout share of all windows. */
static aw_status load_calib_text(const aw_run_opts *o, const aw_tokenizer *tk, run_state *s)
{
    AW_RETURN_IF(!(o->holdout >= 0.0 && o->holdout < 1.0), AW_ERR_ARG,
                 "--holdout %g: expected a share in [0, 1)", o->holdout);
    int max_pos = s->cfg.max_position_embeddings;
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
    AW_TRY(aw_calib_from_text(tk, &co, &s->tokens, NULL));
    AW_TRY(ids_fit(s, s->tokens.ids, (size_t)s->tokens.n_seq * L, o->calib_texts[0]));
    s->n_calib = o->calib_samples;
    s->n_hold = (uint32_t)h;
    return AW_OK;
}

/* The eval text's windows of the calibration length, appended to the
 * token set (they stream after the held-out ones). */
static aw_status load_eval_text(const aw_run_opts *o, const aw_tokenizer *tk, run_state *s)
{
    aw_idvec ids = {0};
    AW_TRY(aw_eval_text_stream(tk, o->eval_text, o->text_field, &ids));
    aw_status st = AW_OK;
    size_t L = s->tokens.seq_len, n = ids.n / L;
    AW_GOTO_IF(n == 0, AW_ERR_CORPUS, "%s: %zu tokens are fewer than one window of %zu (the calibration length)",
               o->eval_text, ids.n, L);
    AW_CHECK(ids_fit(s, ids.v, n * L, o->eval_text));
    size_t have = (size_t)s->tokens.n_seq * L;
    uint32_t *all = realloc(s->tokens.ids, (have + n * L) * sizeof(uint32_t));
    AW_GOTO_IF(!all, AW_ERR_NOMEM, "out of memory for %zu eval windows", n);
    s->tokens.ids = all;
    memcpy(all + have, ids.v, n * L * sizeof(uint32_t));
    s->tokens.n_seq += n;
    s->n_eval = (uint32_t)n;
    s->eval_stream_tokens = ids.n;
fail:
    aw_idvec_free(&ids);
    return st;
}

static aw_status load_root(const aw_run_opts *o, run_state *s)
{
    char *cfg_path = aw_path_join(o->model_dir, "config.json");
    char *tok_path = o->calib_path ? NULL : aw_path_join(o->model_dir, "calibration.tokens");
    AW_RETURN_IF(!cfg_path || (!o->calib_path && !tok_path), AW_ERR_NOMEM, "out of memory");
    const char *calib = o->calib_path ? o->calib_path : tok_path;
    aw_tokenizer *tk = NULL;
    int text = o->n_calib_texts > 0;
    aw_status st = aw_config_read(cfg_path, &s->cfg);
    if (st == AW_OK) st = aw_config_check_supported(&s->cfg, cfg_path);
    free(cfg_path);
    if (st == AW_OK) st = aw_mf_open(o->model_dir, &s->mf);
    if (st == AW_OK) st = aw_checkpoint_check(&s->cfg, s->mf);
    if (st == AW_OK && !text && !o->calib_path && access(tok_path, F_OK) != 0)
        st = AW_FAIL(AW_ERR_ARG,
                     "%s: no calibration.tokens in the model folder: pass --calib-text FILE (.txt, .jsonl, "
                     "optionally .zst; tokenized with the model's tokenizer) or --calib FILE (a token file "
                     "from 'aweq-dist tokenize')",
                     o->model_dir);
    if (st == AW_OK && (text || o->eval_text)) st = aw_tokenizer_open(o->model_dir, &tk);
    if (st == AW_OK && text) {
        st = load_calib_text(o, tk, s);
        calib = o->calib_texts[0];
    } else if (st == AW_OK) {
        st = aw_tokens_read(calib, &s->tokens);
    }
    if (st == AW_OK && s->tokens.vocab_size > (uint32_t)s->cfg.vocab_size)
        st = AW_FAIL(AW_ERR_TOKENS, "%s: token vocabulary of %u is larger than the model's %d", calib,
                     s->tokens.vocab_size, s->cfg.vocab_size);
    if (st == AW_OK && s->tokens.seq_len > (uint32_t)s->cfg.max_position_embeddings)
        st = AW_FAIL(AW_ERR_TOKENS, "%s: sequences of %u tokens are longer than the model's %d positions",
                     calib, s->tokens.seq_len, s->cfg.max_position_embeddings);
    if (st == AW_OK && !text) st = split(o, s);
    if (st == AW_OK && o->eval_text) st = load_eval_text(o, tk, s);
    aw_tokenizer_close(tk);
    free(tok_path);
    return st;
}

/* The first n_calib sequences calibrate, the rest validate. */
static aw_status split(const aw_run_opts *o, run_state *s)
{
    const aw_tokens *t = &s->tokens;
    AW_RETURN_IF(!(o->holdout >= 0.0 && o->holdout < 1.0), AW_ERR_ARG,
                 "--holdout %g: expected a share in [0, 1)", o->holdout);
    AW_RETURN_IF(t->n_seq > UINT32_MAX, AW_ERR_TOKENS, "too many sequences");
    uint64_t h = (uint64_t)llround(o->holdout * (double)t->n_seq);
    if (o->holdout > 0 && h == 0) h = 1;
    AW_RETURN_IF(h >= t->n_seq, AW_ERR_ARG,
                 "%llu calibration sequences leave none for calibration after holding out %llu",
                 (unsigned long long)t->n_seq, (unsigned long long)h);
    s->n_hold = (uint32_t)h;
    s->n_calib = (uint32_t)(t->n_seq - h);
    return AW_OK;
}

/* Collective: how many ranks share this rank's node (1 if MPI cannot say). */
int aw_node_ranks(const aw_comm *w)
{
    MPI_Comm node;
    int local = 1;
    if (MPI_Comm_split_type(w->world, MPI_COMM_TYPE_SHARED, w->rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &local);
        MPI_Comm_free(&node);
    }
    return local > 0 ? local : 1;
}

/* This node's memory shared by the ranks on it: the default budget. */
static uint64_t default_mem_per_rank(int local)
{
    uint64_t phys = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGE_SIZE);
    return phys / (uint64_t)local;
}

static aw_status make_plan(const aw_run_opts *o, const run_state *s, int world, uint64_t mem, aw_plan *p)
{
    aw_plan_costs k;
    AW_TRY(aw_plan_costs_for(&s->cfg, (int)s->tokens.seq_len, o->batch, s->n_calib, s->n_hold + s->n_eval, &k));
    /* CPU ranks: a modest sustained rate; only the balance matters here */
    aw_plan_rates rates = {.flops_per_s = 50e9, .read_bytes_per_s = 1e9};
    return aw_plan_make(&k, &rates, world, mem, o->stages, o->replicas, p);
}

/* Job wire format: plan | cfg | n_calib | n_hold | n_eval | tokens header | ids | tensor table. */
static aw_status pack_job(const run_state *s, const aw_plan *p, uint8_t **out, size_t *len)
{
    uint8_t *mfb = NULL;
    size_t mfl = 0;
    AW_TRY(aw_mf_export(s->mf, &mfb, &mfl));
    size_t ids = (size_t)s->tokens.n_seq * s->tokens.seq_len * sizeof(uint32_t);
    size_t n = sizeof *p + sizeof s->cfg + 3 * sizeof(uint32_t) + 2 * sizeof(uint32_t) + sizeof(uint64_t) + ids + mfl;
    uint8_t *b = malloc(n), *q = b;
    if (!b) {
        free(mfb);
        return AW_FAIL(AW_ERR_NOMEM, "out of memory packing the job");
    }
#define PUT(src, sz) (memcpy(q, (src), (sz)), q += (sz))
    PUT(p, sizeof *p);
    PUT(&s->cfg, sizeof s->cfg);
    PUT(&s->n_calib, sizeof(uint32_t));
    PUT(&s->n_hold, sizeof(uint32_t));
    PUT(&s->n_eval, sizeof(uint32_t));
    PUT(&s->tokens.vocab_size, sizeof(uint32_t));
    PUT(&s->tokens.seq_len, sizeof(uint32_t));
    PUT(&s->tokens.n_seq, sizeof(uint64_t));
    PUT(s->tokens.ids, ids);
    PUT(mfb, mfl);
#undef PUT
    free(mfb);
    *out = b;
    *len = n;
    return AW_OK;
}

static aw_status unpack_job(const uint8_t *b, size_t len, run_state *s, aw_plan *p)
{
    size_t fixed = sizeof *p + sizeof s->cfg + 5 * sizeof(uint32_t) + sizeof(uint64_t);
    AW_RETURN_IF(len < fixed, AW_ERR_MPI, "job message truncated");
    const uint8_t *q = b;
#define GET(dst, sz) (memcpy((dst), q, (sz)), q += (sz))
    GET(p, sizeof *p);
    GET(&s->cfg, sizeof s->cfg);
    GET(&s->n_calib, sizeof(uint32_t));
    GET(&s->n_hold, sizeof(uint32_t));
    GET(&s->n_eval, sizeof(uint32_t));
    GET(&s->tokens.vocab_size, sizeof(uint32_t));
    GET(&s->tokens.seq_len, sizeof(uint32_t));
    GET(&s->tokens.n_seq, sizeof(uint64_t));
    size_t ids = (size_t)s->tokens.n_seq * s->tokens.seq_len * sizeof(uint32_t);
    AW_RETURN_IF(len - fixed < ids, AW_ERR_MPI, "job message truncated");
    s->tokens.ids = malloc(ids ? ids : 1);
    AW_RETURN_IF(!s->tokens.ids, AW_ERR_NOMEM, "out of memory for the tokens");
    GET(s->tokens.ids, ids);
#undef GET
    return aw_mf_import(q, len - (size_t)(q - b), &s->mf);
}

/* Rank 0 reads and plans; every rank leaves with the same job and plan. */
static aw_status setup(const aw_run_opts *o, run_state *s, topo *t, int local)
{
    const aw_comm *w = t->w;
    uint8_t *job = NULL;
    size_t len = 0;
    aw_status st = AW_OK;
    uint64_t node_mem = default_mem_per_rank(local);
    if (w->rank == 0) {
        uint64_t mem = o->mem_per_rank_gb > 0 ? (uint64_t)(o->mem_per_rank_gb * 1e9) : node_mem;
        st = load_root(o, s);
        if (st == AW_OK) st = make_plan(o, s, w->size, mem, &t->plan);
        if (st == AW_OK) st = pack_job(s, &t->plan, &job, &len);
    }
    void *buf = job;
    st = aw_comm_bcast_bytes(w, 0, st, &buf, &len);
    if (st == AW_OK && w->rank != 0) {
        st = unpack_job(buf, len, s, &t->plan);
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
    s->L = (int)s->tokens.seq_len;
    s->B = o->batch;
    AW_TRY(aw_comm_split(w, t->stage, t->replica, &t->stage_comm));
    AW_TRY(aw_comm_split(w, t->replica, t->stage, &t->chain_comm));
    return AW_OK;
}

/* ---- loading this rank's layers ------------------------------------------ */

/* Sequences in block b of a pass of nseq sequences. */
static int block_seqs(uint32_t nseq, int B, int b)
{
    uint32_t left = nseq - (uint32_t)b * (uint32_t)B;
    return (int)(left < (uint32_t)B ? left : (uint32_t)B);
}

static int n_blocks(uint32_t n_seqs, int B) { return (int)((n_seqs + (uint32_t)B - 1) / (uint32_t)B); }
static int n_mine(int nb, const topo *t) { return nb > t->replica ? (nb - t->replica + t->R - 1) / t->R : 0; }

static aw_status load_local(run_state *s, const topo *t)
{
    const aw_model_config *c = &s->cfg;
    int d = c->hidden_size, nl = t->nl;
    size_t maxT = (size_t)s->B * s->L;
    s->fp = calloc((size_t)nl, sizeof *s->fp);
    s->q = calloc((size_t)nl, sizeof *s->q);
    s->stats = calloc((size_t)nl, sizeof *s->stats);
    s->val = calloc((size_t)nl, sizeof *s->val);
    s->parts = calloc((size_t)nl, sizeof *s->parts);
    AW_RETURN_IF(!s->fp || !s->q || !s->stats || !s->val || !s->parts, AW_ERR_NOMEM, "out of memory");
    for (int l = 0; l < nl; l++) {
        AW_TRY(aw_block_create(c, c->torch_dtype, &s->fp[l]));
        AW_TRY(aw_block_load(c, s->mf, t->l0 + l, &s->fp[l]));
        AW_TRY(aw_stats_create(c, &s->stats[l]));
        aw_progress_step(s->prog, l + 1);
    }
    if (t->is_first || t->is_last) AW_TRY(aw_ends_load(c, s->mf, &s->ends));
    for (int i = 0; i < 2; i++) {
        s->buf[i] = malloc(2 * maxT * d * sizeof(float));
        AW_RETURN_IF(!s->buf[i], AW_ERR_NOMEM, "out of memory for hand-off buffers of %zu tokens", maxT);
    }
    /* the backend's copies: weights, sums, workspace, hand-off blocks */
    const aw_ops *o = s->ops;
    s->dfp = calloc((size_t)nl, sizeof *s->dfp);
    s->dq = calloc((size_t)nl, sizeof *s->dq);
    AW_RETURN_IF(!s->dfp || !s->dq, AW_ERR_NOMEM, "out of memory");
    for (int l = 0; l < nl; l++) {
        AW_TRY(aw_block_to_dev(o, c, &s->fp[l], &s->dfp[l]));
        AW_TRY(aw_stats_attach(&s->stats[l], o));
    }
    if (t->is_first || t->is_last) AW_TRY(aw_ends_to_dev(o, c, &s->ends, &s->dends));
    AW_TRY(aw_fwd_ws_create_ops(o, c, s->B, s->L, &s->ws));
    for (int i = 0; i < 2; i++)
        AW_TRY(aw_ops_mirror(o, (void **)&s->dbuf[i], s->buf[i], 2 * maxT * d * sizeof(float), "hand-off blocks"));
    if (!o->host) AW_TRY(o->vt->alloc(o, (void **)&s->dtok, maxT * sizeof(uint32_t), "tokens"));
    return o->vt->sync(o);
}

/* ---- streaming blocks of samples through the stages ----------------------- */

/* Calibration streams the fp model; validation the fp and the W8A8 model
 * side by side, observing every layer; evaluation (--eval-text) the two
 * side by side for their end-to-end sums only. */
typedef enum { PASS_CALIB, PASS_VALID, PASS_EVAL } pass_kind;

static const char *const pass_names[] = {"calibrate", "validate", "evaluate"};

/* Compute one block of samples on this rank's layers: h (the fp stream,
 * then for validation the W8A8 stream) in the backend's memory. */
static aw_status compute_block(run_state *s, const topo *t, pass_kind pass, int k, float *h, int ns, int b,
                               uint32_t first_seq)
{
    const aw_model_config *c = &s->cfg;
    const aw_ops *o = s->ops;
    int L = s->L, d = c->hidden_size, T = ns * L;
    float *hq = h + (size_t)T * d;
    const uint32_t *tok = s->tokens.ids + ((size_t)first_seq + (size_t)b * s->B) * L;
    if (t->is_first) {
        const uint32_t *dtok = tok;
        if (s->dtok) {
            AW_TRY(o->vt->to_dev(o, s->dtok, tok, (size_t)T * sizeof(uint32_t)));
            dtok = s->dtok;
        }
        AW_TRY(aw_model_embed_ops(o, c, &s->dends, dtok, ns, L, h));
        if (pass != PASS_CALIB) AW_TRY(o->vt->copy(o, hq, h, (size_t)T * d * sizeof(float)));
    }
    for (int l = 0; l < t->nl; l++) {
        if (pass == PASS_CALIB) {
            /* every block's statistics, one reused from its shard too: the
             * report shows its ranges */
            AW_TRY(aw_block_forward(c, &s->dfp[l], NULL, h, ns, L, &s->ws, aw_stats_observe, &s->stats[l]));
            AW_TRY(aw_stats_take_part(&s->stats[l], s->parts[l] + (size_t)k * aw_stats_part_len(&s->stats[l])));
        } else if (pass == PASS_EVAL) {
            AW_TRY(aw_block_forward(c, &s->dfp[l], NULL, h, ns, L, &s->ws, NULL, NULL));
            AW_TRY(aw_block_forward(c, NULL, &s->dq[l], hq, ns, L, &s->ws, NULL, NULL));
        } else {
            aw_val_ctx vc = {.fp = &s->dfp[l], .q = &s->dq[l], .val = &s->val[l], .ws = &s->vws};
            AW_TRY(aw_block_forward(c, &s->dfp[l], NULL, h, ns, L, &s->ws, aw_validate_observe, &vc));
            AW_TRY(aw_block_forward(c, NULL, &s->dq[l], hq, ns, L, &s->ws, NULL, NULL));
            AW_TRY(aw_layer_val_take_part(&s->val[l], s->parts[l] + (size_t)k * s->val[l].n));
        }
    }
    if (pass != PASS_CALIB && t->is_last) {
        aw_e2e e = {0};
        AW_TRY(aw_e2e_accum_ops(o, c, &s->dends, h, hq, tok, ns, L, s->dlx, s->dlogits_fp, s->dlogits_q,
                                s->logits_fp, s->logits_q, s->logit_chunk, &e));
        s->e2e_parts[k] = e;
    }
    return o->vt->sync(o);
}

/* Compute block k from the host buffer buf: through the backend's copy
 * dbuf unless that is buf itself. */
static aw_status compute_staged(run_state *s, const topo *t, pass_kind pass, int k, float *buf, float *dbuf,
                                size_t count, int ns, int b, uint32_t first_seq)
{
    const aw_ops *o = s->ops;
    if (!t->is_first) AW_TRY(o->vt->to_dev(o, dbuf, buf, count * sizeof(float)));
    AW_TRY(compute_block(s, t, pass, k, dbuf, ns, b, first_seq));
    return t->is_last ? AW_OK : o->vt->to_host(o, buf, dbuf, count * sizeof(float));
}

/* The NCCL hand-off (every rank has its own GPU): blocks go device to
 * device over the two-rank link communicators, each link driven from its
 * own stream, ordered by events, never by the host:
 *   recv of block k+1 into dbuf[(k+1)%2]: after compute k-1 and send k-1
 *     left that buffer (queued before compute k, so it overlaps it);
 *   compute of block k: after its recv (or, on the first stage, after send
 *     k-2 left its buffer);
 *   send of block k: after compute k (it overlaps compute k+1).
 * Slots 0/1 of each context's events mark the two buffers. */
static aw_status stream_nccl(const aw_run_opts *o, run_state *s, const topo *t, pass_kind pass, uint32_t first_seq,
                             uint32_t nseq, int width)
{
    int nb = n_blocks(nseq, s->B), nm = n_mine(nb, t);
    size_t d = (size_t)s->cfg.hidden_size;
    const aw_cuda_api *cu = s->cuda;
    void *kc = s->ops->ctx, *kr = s->kc_recv, *ks = s->kc_send;
#define BYTES(kk) ((size_t)width * (size_t)block_seqs(nseq, s->B, t->replica + (kk) * t->R) * (size_t)s->L * d * sizeof(float))
    if (!t->is_first && nm > 0) {
        AW_TRY(cu->nccl_recv(s->dbuf[0], BYTES(0), 0, s->link_prev, cu->stream_of(kr)));
        AW_TRY(cu->record(kr, 0));
    }
    for (int k = 0; k < nm; k++) {
        int b = t->replica + k * t->R, cur = k % 2, nxt = (k + 1) % 2;
        if (t->is_first) {
            if (k >= 2 && !t->is_last) AW_TRY(cu->wait(kc, ks, cur)); /* send k-2 left dbuf[cur] */
        } else {
            AW_TRY(cu->wait(kc, kr, cur)); /* block k has arrived */
            if (k + 1 < nm) {
                AW_TRY(cu->wait(kr, kc, nxt)); /* compute k-1 is done with dbuf[nxt] */
                if (!t->is_last) AW_TRY(cu->wait(kr, ks, nxt)); /* and send k-1 */
                AW_TRY(cu->nccl_recv(s->dbuf[nxt], BYTES(k + 1), 0, s->link_prev, cu->stream_of(kr)));
                AW_TRY(cu->record(kr, nxt));
            }
        }
        AW_TRY(compute_block(s, t, pass, k, s->dbuf[cur], block_seqs(nseq, s->B, b), b, first_seq));
        AW_TRY(cu->record(kc, cur));
        AW_TRY(aw_guard_step(pass_names[pass], &o->fail_at));
        if (!t->is_last) {
            AW_TRY(cu->wait(ks, kc, cur));
            AW_TRY(cu->nccl_send(s->dbuf[cur], BYTES(k), 1, s->link_next, cu->stream_of(ks)));
            AW_TRY(cu->record(ks, cur));
        }
        aw_progress_step(s->prog, b + 1); /* rank 0: stage 0, replica 0 */
    }
#undef BYTES
    AW_TRY(cu->sync(ks));
    return cu->sync(kr);
}

/* Join the link communicators of this rank's replica chain: stage s makes
 * the id of link (s, s+1) and sends it over MPI; a link's two ranks join
 * it together (stage s as its rank 0), the chain in stage order. */
static aw_status nccl_links(run_state *s, const topo *t)
{
    const aw_cuda_api *cu = s->cuda;
    uint8_t id_next[AW_CUDA_NCCL_ID_BYTES], id_prev[AW_CUDA_NCCL_ID_BYTES];
    AW_TRY(cu->stream_create(&s->kc_recv));
    AW_TRY(cu->stream_create(&s->kc_send));
    if (!t->is_last) {
        AW_TRY(cu->nccl_get_id(id_next, sizeof id_next));
        AW_TRY(AW_MPI(MPI_Send(id_next, AW_CUDA_NCCL_ID_BYTES, MPI_BYTE, t->stage + 1, 0, t->chain_comm)));
    }
    if (!t->is_first) {
        AW_TRY(AW_MPI(MPI_Recv(id_prev, AW_CUDA_NCCL_ID_BYTES, MPI_BYTE, t->stage - 1, 0, t->chain_comm,
                               MPI_STATUS_IGNORE)));
        AW_TRY(cu->nccl_init(2, 1, id_prev, &s->link_prev));
    }
    if (!t->is_last) AW_TRY(cu->nccl_init(2, 0, id_next, &s->link_next));
    return AW_OK;
}

/* Stream this replica's blocks of one pass: receive from the previous stage
 * (non-blocking, the next block's receive posted before computing), compute,
 * send to the next stage (non-blocking, double-buffered). */
static aw_status stream(const aw_run_opts *o, run_state *s, const topo *t, pass_kind pass)
{
    uint32_t first_seq = pass == PASS_CALIB ? 0 : pass == PASS_VALID ? s->n_calib : s->n_calib + s->n_hold;
    uint32_t nseq = pass == PASS_CALIB ? s->n_calib : pass == PASS_VALID ? s->n_hold : s->n_eval;
    int nb = n_blocks(nseq, s->B), nm = n_mine(nb, t);
    int width = pass == PASS_CALIB ? 1 : 2; /* later passes carry the fp and the W8A8 stream */
    size_t d = (size_t)s->cfg.hidden_size;
    MPI_Request rreq[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
    MPI_Request sreq[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
    aw_status st = AW_OK;
    /* one tag per pass: blocks between two ranks of a chain match in order
     * (MPI's non-overtaking rule), and small tags stay under every MPI's
     * MPI_TAG_UB (UCX's is 2^23 - 1) */
    int tag = (int)pass;
    if (s->nccl) return stream_nccl(o, s, t, pass, first_seq, nseq, width);
#define SEQS(kk) block_seqs(nseq, s->B, t->replica + (kk) * t->R)
#define COUNT(kk) ((int)((size_t)width * (size_t)SEQS(kk) * (size_t)s->L * d))
    if (!t->is_first && nm > 0)
        AW_CHECK(AW_MPI(MPI_Irecv(s->buf[0], COUNT(0), MPI_FLOAT, t->stage - 1, tag,
                                  t->chain_comm, &rreq[0])));
    for (int k = 0; k < nm; k++) {
        int b = t->replica + k * t->R, cur = k % 2, nxt = (k + 1) % 2;
        if (t->is_first) {
            AW_CHECK(AW_MPI(MPI_Wait(&sreq[cur], MPI_STATUS_IGNORE))); /* block k-2 left this buffer */
        } else {
            AW_CHECK(AW_MPI(MPI_Wait(&rreq[cur], MPI_STATUS_IGNORE)));
            if (k + 1 < nm) {
                AW_CHECK(AW_MPI(MPI_Wait(&sreq[nxt], MPI_STATUS_IGNORE)));
                AW_CHECK(AW_MPI(MPI_Irecv(s->buf[nxt], COUNT(k + 1), MPI_FLOAT, t->stage - 1,
                                          tag, t->chain_comm, &rreq[nxt])));
            }
        }
        AW_CHECK(compute_staged(s, t, pass, k, s->buf[cur], s->dbuf[cur], (size_t)COUNT(k), SEQS(k), b, first_seq));
        AW_CHECK(aw_guard_step(pass_names[pass], &o->fail_at));
        if (!t->is_last)
            AW_CHECK(AW_MPI(MPI_Isend(s->buf[cur], COUNT(k), MPI_FLOAT, t->stage + 1, tag,
                                      t->chain_comm, &sreq[cur])));
        aw_progress_step(s->prog, b + 1); /* rank 0: stage 0, replica 0 */
    }
    AW_CHECK(AW_MPI(MPI_Waitall(2, sreq, MPI_STATUSES_IGNORE)));
#undef COUNT
#undef SEQS
fail:
    return st;
}

/* Gather the replicas' per-block parts of one layer (n doubles each) and
 * hand them to add() in block order. */
static aw_status reduce_parts(const topo *t, const double *mine, size_t n, int nb,
                              void (*add)(void *, const double *), void *ctx)
{
    int max_mine = (nb + t->R - 1) / t->R;
    size_t per = (size_t)max_mine * n;
    if (per == 0) return AW_OK;
    AW_RETURN_IF(per > (size_t)INT32_MAX, AW_ERR_MPI, "statistics message too large");
    double *all = malloc(per * (size_t)t->R * sizeof(double));
    AW_RETURN_IF(!all, AW_ERR_NOMEM, "out of memory reducing statistics");
    aw_status st = AW_MPI(MPI_Allgather(mine, (int)per, MPI_DOUBLE, all, (int)per, MPI_DOUBLE, t->stage_comm));
    for (int b = 0; b < nb && st == AW_OK; b++) add(ctx, all + (size_t)(b % t->R) * per + (size_t)(b / t->R) * n);
    free(all);
    return st;
}

static void add_stats(void *ctx, const double *p) { aw_stats_add_part(ctx, p); }
static void add_val(void *ctx, const double *p) { aw_layer_val_add_part(ctx, p); }
static void add_e2e(void *ctx, const double *p)
{
    aw_e2e e;
    memcpy(&e, p, sizeof e);
    aw_e2e_add(ctx, &e);
}

static aw_status alloc_parts(run_state *s, const topo *t, int nb, int valid)
{
    int max_mine = (nb + t->R - 1) / t->R;
    for (int l = 0; l < t->nl; l++) {
        size_t n = valid ? s->val[l].n : aw_stats_part_len(&s->stats[l]);
        free(s->parts[l]);
        s->parts[l] = calloc((size_t)(max_mine ? max_mine : 1) * n, sizeof(double));
        AW_RETURN_IF(!s->parts[l], AW_ERR_NOMEM, "out of memory for per-block sums");
    }
    return AW_OK;
}

static aw_status calibrate(const aw_run_opts *o, run_state *s, const topo *t)
{
    int nb = n_blocks(s->n_calib, s->B);
    AW_TRY(alloc_parts(s, t, nb, 0));
    AW_TRY(stream(o, s, t, PASS_CALIB));
    for (int l = 0; l < t->nl; l++) {
        aw_stats *st = &s->stats[l];
        AW_TRY(aw_stats_fetch(st));
        /* max is exact in any order; sums go in block order */
        AW_TRY(AW_MPI(MPI_Allreduce(MPI_IN_PLACE, st->absmax[0], (int)st->n_sum, MPI_FLOAT, MPI_MAX, t->stage_comm)));
        AW_TRY(AW_MPI(MPI_Allreduce(MPI_IN_PLACE, &st->nonfinite, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, t->stage_comm)));
        AW_TRY(reduce_parts(t, s->parts[l], aw_stats_part_len(st), nb, add_stats, st));
        AW_RETURN_IF(st->nonfinite > 0, AW_ERR_NONFINITE, "layer %d: %llu non-finite activations during calibration",
                     t->l0 + l, (unsigned long long)st->nonfinite);
    }
    return AW_OK;
}

static aw_status validate(const aw_run_opts *o, run_state *s, const topo *t, aw_e2e *e2e)
{
    const aw_model_config *c = &s->cfg;
    int nb = n_blocks(s->n_hold, s->B), max_mine = (nb + t->R - 1) / t->R;
    const aw_ops *ops = s->ops;
    for (int l = 0; l < t->nl; l++) {
        AW_TRY(aw_layer_val_create(c, &s->val[l]));
        AW_TRY(aw_layer_val_attach(&s->val[l], ops));
    }
    AW_TRY(alloc_parts(s, t, nb, 1));
    /* the forward workspace was dropped while quantizing (see aw_run_comm) */
    AW_TRY(aw_fwd_ws_create_ops(ops, c, s->B, s->L, &s->ws));
    AW_TRY(aw_val_ws_create(ops, c, s->B * s->L, s->ws.wconv, &s->vws));
    if (t->is_last) {
        /* logits: row chunks on the backend, their sums on the host; a GPU
         * takes bigger chunks (the host kernels keep the CPU's 128 rows so
         * that a staged run adds the same numbers) */
        int ch = s->logit_chunk = ops->wscratch ? AW_LOGIT_CHUNK : AW_GPU_LOGIT_CHUNK;
        size_t lg = (size_t)ch * c->vocab_size * sizeof(float);
        s->lx = malloc((size_t)ch * c->hidden_size * sizeof(float));
        s->logits_fp = malloc(lg);
        s->logits_q = malloc(lg);
        s->e2e_parts = calloc((size_t)(max_mine ? max_mine : 1), sizeof *s->e2e_parts);
        AW_RETURN_IF(!s->lx || !s->logits_fp || !s->logits_q || !s->e2e_parts, AW_ERR_NOMEM,
                     "out of memory for logits");
        AW_TRY(aw_ops_mirror(ops, (void **)&s->dlx, s->lx, (size_t)ch * c->hidden_size * sizeof(float), "logits"));
        AW_TRY(aw_ops_mirror(ops, (void **)&s->dlogits_fp, s->logits_fp, lg, "logits"));
        AW_TRY(aw_ops_mirror(ops, (void **)&s->dlogits_q, s->logits_q, lg, "logits"));
    }
    AW_TRY(stream(o, s, t, PASS_VALID));
    for (int l = 0; l < t->nl; l++) AW_TRY(reduce_parts(t, s->parts[l], s->val[l].n, nb, add_val, &s->val[l]));
    memset(e2e, 0, sizeof *e2e);
    if (t->is_last) AW_TRY(reduce_parts(t, (const double *)s->e2e_parts, AW_E2E_LEN, nb, add_e2e, e2e));
    /* everyone (rank 0 for the report) gets the last stage's sums */
    return AW_MPI(MPI_Bcast(e2e, AW_E2E_LEN, MPI_DOUBLE, (t->S - 1) * t->R, t->w->world));
}

/* --eval-text: its windows through the fp and the W8A8 model (after
 * validate(), whose workspaces and logit buffers it reuses), their sums in
 * block order on every rank. */
static aw_status evaluate(const aw_run_opts *o, run_state *s, const topo *t, aw_e2e *e2e)
{
    int nb = n_blocks(s->n_eval, s->B), max_mine = (nb + t->R - 1) / t->R;
    memset(e2e, 0, sizeof *e2e);
    if (t->is_last) {
        free(s->e2e_parts);
        s->e2e_parts = calloc((size_t)(max_mine ? max_mine : 1), sizeof *s->e2e_parts);
        AW_RETURN_IF(!s->e2e_parts, AW_ERR_NOMEM, "out of memory");
    }
    AW_TRY(stream(o, s, t, PASS_EVAL));
    if (t->is_last) AW_TRY(reduce_parts(t, (const double *)s->e2e_parts, AW_E2E_LEN, nb, add_e2e, e2e));
    return AW_MPI(MPI_Bcast(e2e, AW_E2E_LEN, MPI_DOUBLE, (t->S - 1) * t->R, t->w->world));
}

/* ---- metrics, gathered on rank 0 ------------------------------------------ */

static void layer_metrics(const run_state *s, int l, aw_layer_metrics *out)
{
    const aw_layer_val *v = &s->val[l];
    double tokens = v->total[AW_VAL_TOKENS];
    for (int k = 0; k < s->q[l].n_lin; k++) {
        aw_layer_metrics *lm = &out[k];
        const aw_qlinear *ql = &s->q[l].lin[k];
        double se = v->total[AW_VAL_SQ_ERR(k)], sr = v->total[AW_VAL_SQ_REF(k)];
        lm->rel_err = sr > 0 ? sqrt(se / sr) : 0.0;
        lm->sqnr_db = se > 0 ? 10.0 * log10(sr / se) : INFINITY;
        lm->w_step = ql->w_step;
        lm->x_step = ql->x_step;
        /* mean output error per channel, with the bias written and with the
         * bias the layer would have had without correction */
        const float *so = aw_qblock_out_scale(&s->q[l], k);
        const double *col = v->total + v->col_off[k];
        double bc = 0, nobc = 0;
        for (int i = 0; i < ql->out; i++) {
            double e = tokens > 0 ? col[i] / tokens : 0.0;
            double e0 = e + ((double)ql->bias_plain[i] - ql->bias[i]) * (so ? so[i] : 1.0);
            bc += e * e;
            nobc += e0 * e0;
        }
        lm->bias_err = sqrt(bc / ql->out);
        lm->bias_err_nobc = sqrt(nobc / ql->out);
    }
}

static aw_status gather_metrics(const run_state *s, const topo *t, aw_run_result *r)
{
    const aw_comm *w = t->w;
    int n_layers = s->cfg.num_hidden_layers, n_lin = aw_arch_of(&s->cfg)->n_lin;
    size_t per = (size_t)n_lin * sizeof(aw_layer_metrics);
    aw_layer_metrics *mine = calloc((size_t)(t->nl ? t->nl : 1) * (size_t)n_lin, sizeof *mine);
    int *counts = calloc((size_t)w->size, sizeof(int)), *displs = calloc((size_t)w->size, sizeof(int));
    r->layers = calloc((size_t)n_layers * (size_t)n_lin, sizeof *r->layers);
    if (!mine || !counts || !displs || !r->layers) {
        free(mine);
        free(counts);
        free(displs);
        return AW_FAIL(AW_ERR_NOMEM, "out of memory"); /* r->layers: aw_run_result_free */
    }
    for (int l = 0; l < t->nl; l++) layer_metrics(s, l, mine + (size_t)l * (size_t)n_lin);
    /* replica 0 of each stage speaks for it */
    for (int rk = 0; rk < w->size; rk++) {
        int sg = aw_plan_stage_of(&t->plan, rk);
        int nl = aw_plan_replica_of(&t->plan, rk) == 0 ? t->plan.first_layer[sg + 1] - t->plan.first_layer[sg] : 0;
        counts[rk] = (int)(nl * per);
        displs[rk] = (int)(t->plan.first_layer[sg] * per);
    }
    aw_status st = AW_MPI(MPI_Gatherv(mine, counts[w->rank], MPI_BYTE, r->layers, counts, displs, MPI_BYTE, 0, w->world));
    free(mine);
    free(counts);
    free(displs);
    r->n_layers = n_layers;
    r->worst_rel_err = 0;
    for (int l = 0; l < n_layers; l++)
        for (int k = 0; k < n_lin; k++)
            if (r->layers[l * n_lin + k].rel_err > r->worst_rel_err) {
                r->worst_rel_err = r->layers[l * n_lin + k].rel_err;
                snprintf(r->worst_layer, sizeof r->worst_layer, "layers.%d.%s", l,
                         aw_arch_of(&s->cfg)->lin[k].name);
            }
    return st;
}

static aw_status gather_layout(const run_state *s, const topo *t, aw_run_result *r)
{
    const aw_comm *w = t->w;
    r->world = w->size;
    r->stages = t->S;
    r->replicas = t->R;
    r->rank_first_layer = calloc((size_t)w->size, sizeof(int));
    r->rank_last_layer = calloc((size_t)w->size, sizeof(int));
    r->rank_peak_mb = calloc((size_t)w->size, sizeof(double));
    AW_RETURN_IF(!r->rank_first_layer || !r->rank_last_layer || !r->rank_peak_mb, AW_ERR_NOMEM, "out of memory");
    for (int rk = 0; rk < w->size; rk++) {
        int sg = aw_plan_stage_of(&t->plan, rk);
        r->rank_first_layer[rk] = t->plan.first_layer[sg];
        r->rank_last_layer[rk] = t->plan.first_layer[sg + 1];
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double mb = (double)ru.ru_maxrss / 1024.0; /* Linux reports KB */
    AW_TRY(AW_MPI(MPI_Gather(&mb, 1, MPI_DOUBLE, r->rank_peak_mb, 1, MPI_DOUBLE, 0, w->world)));
    /* which backend and device each rank used */
    char mine[160];
    if (r->backend.kind == AW_BACKEND_CUDA)
        snprintf(mine, sizeof mine, "cuda device %d: %.120s", r->backend.device, r->backend.device_name);
    else
        snprintf(mine, sizeof mine, "%.16s: %.120s", s->ops ? s->ops->name : "cpu", r->backend.device_name);
    r->rank_device = calloc((size_t)w->size, sizeof *r->rank_device);
    AW_RETURN_IF(!r->rank_device, AW_ERR_NOMEM, "out of memory");
    return AW_MPI(MPI_Gather(mine, sizeof mine, MPI_CHAR, r->rank_device, sizeof mine, MPI_CHAR, 0, w->world));
}

/* ---- equalization ranges for the report (aw_ranges.h) ------------------------ */

/* Stage of the plan holding layer l. */
static int stage_of_layer(const aw_plan *p, int l)
{
    int sg = 0;
    while (sg + 1 < p->stages && p->first_layer[sg + 1] <= l) sg++;
    return sg;
}

/* Index of layer in r->shown, or -1. */
static int shown_index(const aw_run_result *r, int layer)
{
    for (int i = 0; i < r->n_shown; i++)
        if (r->shown[i] == layer) return i;
    return -1;
}

/* Replica 0 of a stage: my layer l's range summary, and its channel ranges
 * when the report shows it (while its statistics are still here). */
static aw_status layer_ranges(run_state *s, const topo *t, const aw_run_result *r, int l)
{
    const aw_model_config *c = &s->cfg;
    if (!s->depth_mine) {
        int mine = 0;
        for (int i = 0; i < r->n_shown; i++) mine += r->shown[i] >= t->l0 && r->shown[i] < t->l0 + t->nl;
        s->depth_mine = malloc((size_t)(t->nl ? t->nl : 1) * AW_DEPTH_LEN * sizeof(float));
        s->detail_mine = malloc((size_t)(mine ? mine : 1) * aw_range_detail_len(c) * sizeof(float));
        AW_RETURN_IF(!s->depth_mine || !s->detail_mine, AW_ERR_NOMEM, "out of memory for the report's ranges");
    }
    int layer = t->l0 + l, k = 0;
    AW_TRY(aw_range_depth(&s->stats[l], s->q[l].s, s->depth_mine + (size_t)l * AW_DEPTH_LEN));
    if (shown_index(r, layer) < 0) return AW_OK;
    for (int i = 0; i < r->n_shown; i++) k += r->shown[i] >= t->l0 && r->shown[i] < layer;
    return aw_range_detail(c, &s->fp[l], &s->stats[l], &s->method, s->detail_mine + (size_t)k * aw_range_detail_len(c));
}

/* Collective: every layer's summary and the shown layers' ranges on rank 0
 * (from each stage's first replica). */
static aw_status gather_ranges(const run_state *s, const topo *t, aw_run_result *r)
{
    const aw_comm *w = t->w;
    int n_layers = s->cfg.num_hidden_layers;
    size_t per = aw_range_detail_len(&s->cfg);
    int *counts = calloc((size_t)w->size, sizeof(int)), *displs = calloc((size_t)w->size, sizeof(int));
    if (w->rank == 0) {
        r->depth = malloc((size_t)n_layers * AW_DEPTH_LEN * sizeof(float));
        r->detail = malloc((size_t)(r->n_shown ? r->n_shown : 1) * per * sizeof(float));
    }
    aw_status st = AW_OK;
    if (!counts || !displs || (w->rank == 0 && (!r->depth || !r->detail)))
        st = AW_FAIL(AW_ERR_NOMEM, "out of memory for the report's ranges");
    st = aw_comm_agree(w, st);
    for (int rk = 0; rk < w->size && st == AW_OK; rk++) {
        int sg = aw_plan_stage_of(&t->plan, rk);
        int nl = aw_plan_replica_of(&t->plan, rk) == 0 ? t->plan.first_layer[sg + 1] - t->plan.first_layer[sg] : 0;
        counts[rk] = nl * AW_DEPTH_LEN;
        displs[rk] = t->plan.first_layer[sg] * AW_DEPTH_LEN;
    }
    if (st == AW_OK)
        st = AW_MPI(MPI_Gatherv(s->depth_mine, counts[w->rank], MPI_FLOAT, r->depth, counts, displs, MPI_FLOAT, 0,
                                w->world));
    /* the shown layers, one message each, in layer order */
    for (int i = 0, k = 0; i < r->n_shown && st == AW_OK; i++) {
        int owner = stage_of_layer(&t->plan, r->shown[i]) * t->R;
        if (w->rank == owner && owner == 0)
            memcpy(r->detail + (size_t)i * per, s->detail_mine + (size_t)k * per, per * sizeof(float));
        else if (w->rank == owner)
            st = AW_MPI(MPI_Send(s->detail_mine + (size_t)k * per, (int)per, MPI_FLOAT, 0, 7, w->world));
        else if (w->rank == 0)
            st = AW_MPI(MPI_Recv(r->detail + (size_t)i * per, (int)per, MPI_FLOAT, owner, 7, w->world,
                                 MPI_STATUS_IGNORE));
        if (w->rank == owner) k++;
    }
    free(counts);
    free(displs);
    return st;
}

/* ---- writing ----------------------------------------------------------------- */

/* report.html and aweq_run.json next to the report (rank 0), rendered
 * from the two JSON texts exactly as `aweq-dist report OUT` renders them. */
static aw_status write_report_files(const aw_run_opts *o, const aw_run_result *r, const char *dir,
                                    const char *report_json)
{
    char *run_text = NULL, *html = NULL, *path = NULL;
    json_t *rep = NULL, *run = NULL;
    json_error_t je;
    aw_status st = aw_run_json(o, r, &run_text);
    if (st == AW_OK) {
        rep = json_loads(report_json, 0, &je);
        run = json_loads(run_text, 0, &je);
        if (!rep || !run) st = AW_FAIL(AW_ERR_NOMEM, "out of memory for the report");
    }
    if (st == AW_OK) st = aw_html_render(&rep, &run, NULL, 1, &html);
    if (st == AW_OK) st = (path = aw_path_join(dir, "aweq_run.json")) ? AW_OK : AW_FAIL(AW_ERR_NOMEM, "out of memory");
    if (st == AW_OK) st = aw_write_file_atomic(path, run_text, strlen(run_text));
    free(path);
    path = NULL;
    if (st == AW_OK) st = (path = aw_path_join(dir, "report.html")) ? AW_OK : AW_FAIL(AW_ERR_NOMEM, "out of memory");
    if (st == AW_OK) st = aw_write_file_atomic(path, html, strlen(html));
    free(path);
    free(html);
    free(run_text);
    json_decref(rep);
    json_decref(run);
    return st;
}

static aw_status write_output(const aw_run_opts *o, run_state *s, const topo *t, aw_run_result *r, double t0)
{
    const aw_comm *w = t->w;
    aw_outdir od;
    memset(&od, 0, sizeof od);
    char *json = NULL;
    const char *work = s->work;
    aw_status st = AW_OK;
    /* rank 0 makes the partial folder and the shard folder; all write into them */
    void *path = NULL;
    size_t pl = 0;
    if (w->rank == 0) {
        aw_outdir_clean_stale(o->out_dir);
        st = aw_outdir_begin(o->out_dir, &od);
        if (st == AW_OK) {
            path = od.tmp_path;
            pl = strlen(od.tmp_path) + 1;
        }
    }
    st = aw_comm_bcast_bytes(w, 0, st, &path, &pl);
    if (st != AW_OK) goto fail;
    const char *partial = path;
    /* each stage's first replica gathers its blocks' shards into final files */
    if (t->replica == 0) {
        for (int l = 0; l < t->nl && st == AW_OK; l++) {
            st = aw_gather_block(work, partial, &s->cfg, t->l0 + l);
            if (st == AW_OK) st = aw_guard_step("write", &o->fail_at);
            aw_progress_step(s->prog, l + 1);
        }
    }
    if (st == AW_OK && w->rank == 0) st = aw_write_ends(partial, &s->cfg, s->mf);
    st = aw_comm_agree(w, st);
    /* how the job ran (peak memory so far, devices), for aweq_run.json and
     * the report's run section: the write time is counted up to here */
    if (st == AW_OK) st = aw_comm_agree(w, gather_layout(s, t, r));
    if (st == AW_OK && w->rank == 0) {
        r->t_write = aw_now() - t0;
        st = aw_report_json(o, r, &json);
        if (st == AW_OK) st = aw_write_meta(partial, o->model_dir, &s->cfg, s->mf, &s->method, json);
        if (st == AW_OK) st = write_report_files(o, r, partial, json);
        if (st == AW_OK) st = aw_outdir_commit(&od);
        if (st == AW_OK) {
            /* the checkpoint is complete: the shards are no longer needed */
            aw_shard_remove_all(work, s->cfg.num_hidden_layers);
            rmdir(work);
        }
    }
    st = aw_comm_agree(w, st);
fail:
    if (w->rank != 0) free(path);
    if (w->rank == 0) aw_outdir_abort(&od);
    free(json);
    return st;
}

/* A failure inside a streaming phase (calibration, validation) cannot go
 * through a collective step: the peers of this rank may be waiting in a
 * transfer for a block it will never send. Say what happened, with the
 * rank, and end the job now (MPI_Abort); with one rank, just return. */
static aw_status end_job_if_failed(const aw_comm *w, const aw_run_opts *o, aw_status st)
{
    if (st == AW_OK || w->size == 1) return st;
    if (st == AW_ERR_INTERRUPTED) aw_print_interrupted(w->rank, w->size, o->out_dir);
    else aw_print_error(st, w->rank, w->size);
    MPI_Abort(w->world, st == AW_ERR_INTERRUPTED ? 143 : 1);
    return st;
}

/* ---- shards: where a run resumes ------------------------------------------------ */

/* What a block's shard depends on: the method and its options, the
 * calibration split and batching, the token ids and the model. */
static void make_run_key(const aw_run_opts *o, run_state *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    const uint8_t *p = (const uint8_t *)s->tokens.ids;
    /* the eval windows (after these) do not change a block */
    size_t n = ((size_t)s->n_calib + s->n_hold) * s->tokens.seq_len * sizeof(uint32_t);
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    snprintf(s->run_key, sizeof s->run_key,
             "method=%s alpha=%.9g bias_correction=%d dtype=%s calib=%u holdout=%u seq_len=%d batch=%d "
             "tokens=%016llx model=%s layers=%d d=%d",
             aw_method_names[s->method.kind], s->method.alpha, s->method.bias_correction,
             aw_dtype_name(s->method.param_dtype), s->n_calib, s->n_hold, s->L, s->B, (unsigned long long)h,
             o->model_dir, s->cfg.num_hidden_layers, s->cfg.hidden_size);
}

/* With --out: make <out>.work (emptied unless --resume). With --resume:
 * each stage's first replica checks its blocks' shards (zstd checksum, the
 * tensors, the run key); a damaged or stale shard is reported and removed,
 * and its block recomputed. Every replica of the stage then loads the good
 * ones. */
static aw_status prepare_shards(const aw_run_opts *o, run_state *s, const topo *t, aw_run_result *r)
{
    const aw_comm *w = t->w;
    s->done = calloc((size_t)(t->nl ? t->nl : 1), sizeof(int));
    AW_RETURN_IF(!s->done, AW_ERR_NOMEM, "out of memory");
    if (!o->out_dir) return AW_OK;
    size_t wl = strlen(o->out_dir) + 8;
    s->work = malloc(wl);
    AW_RETURN_IF(!s->work, AW_ERR_NOMEM, "out of memory");
    snprintf(s->work, wl, "%s.work", o->out_dir);
    make_run_key(o, s);
    aw_status st = AW_OK;
    if (w->rank == 0) {
        /* the output's parent must exist: refuse an unwritable --out before
         * any work, rather than create folders the user did not name */
        if (mkdir(s->work, 0755) != 0 && errno != EEXIST)
            st = AW_FAIL(AW_ERR_IO, "%s: cannot create the shard folder: %s", s->work, strerror(errno));
        if (st == AW_OK && !o->resume) aw_shard_remove_all(s->work, s->cfg.num_hidden_layers);
    }
    AW_TRY(aw_comm_agree(w, st));
    if (!o->resume) return AW_OK;
    if (t->replica == 0) {
        for (int l = 0; l < t->nl; l++) {
            int layer = t->l0 + l;
            uint8_t *bytes = NULL;
            size_t len = 0;
            char *path = aw_shard_path(s->work, layer);
            AW_RETURN_IF(!path, AW_ERR_NOMEM, "out of memory");
            if (access(path, F_OK) != 0) {
                free(path);
                continue;
            }
            aw_status rs = aw_shard_read(s->work, layer, &bytes, &len);
            if (rs == AW_OK) rs = aw_qblock_create(&s->cfg, &s->q[l]);
            if (rs == AW_OK) rs = aw_block_from_shard(&s->cfg, layer, bytes, len, path, s->run_key, &s->q[l]);
            free(bytes);
            if (rs == AW_OK) {
                s->done[l] = 1;
            } else {
                fprintf(stderr, "aweq-dist: rank %d: resume: %s; block %d will be recomputed\n", w->rank,
                        aw_err_message(), layer);
                aw_qblock_destroy(&s->q[l]);
                unlink(path);
            }
            free(path);
        }
    }
    AW_TRY(AW_MPI(MPI_Bcast(s->done, t->nl, MPI_INT, 0, t->stage_comm)));
    st = AW_OK;
    if (t->replica != 0) {
        for (int l = 0; l < t->nl && st == AW_OK; l++) {
            if (!s->done[l]) continue;
            uint8_t *bytes = NULL;
            size_t len = 0;
            st = aw_shard_read(s->work, t->l0 + l, &bytes, &len);
            if (st == AW_OK) st = aw_qblock_create(&s->cfg, &s->q[l]);
            if (st == AW_OK) st = aw_block_from_shard(&s->cfg, t->l0 + l, bytes, len, s->work, s->run_key, &s->q[l]);
            free(bytes);
        }
    }
    AW_TRY(aw_comm_agree(w, st));
    int mine = 0, total = 0;
    if (t->replica == 0)
        for (int l = 0; l < t->nl; l++) mine += s->done[l];
    AW_TRY(AW_MPI(MPI_Allreduce(&mine, &total, 1, MPI_INT, MPI_SUM, w->world)));
    r->reused_blocks = total;
    if (w->rank == 0)
        fprintf(stderr, "aweq-dist: resume: reusing %d of %d blocks from %s; computing %d\n", total,
                s->cfg.num_hidden_layers, s->work, s->cfg.num_hidden_layers - total);
    return AW_OK;
}

/* ---- the job ------------------------------------------------------------------- */

/* Collective: how many ranks of this node use this rank's GPU (by its PCI
 * ids, right whatever CUDA_VISIBLE_DEVICES or the local-rank variables
 * say); 1 on the CPU. */
static aw_status gpu_sharing(const aw_comm *w, const aw_backend_info *b, int *sharing)
{
    MPI_Comm node;
    int n = 1;
    *sharing = 1;
    AW_TRY(AW_MPI(MPI_Comm_split_type(w->world, MPI_COMM_TYPE_SHARED, w->rank, MPI_INFO_NULL, &node)));
    MPI_Comm_size(node, &n);
    unsigned long long *keys = malloc((size_t)n * sizeof *keys);
    aw_status st = keys ? AW_OK : AW_FAIL(AW_ERR_NOMEM, "out of memory");
    if (st == AW_OK)
        st = AW_MPI(MPI_Allgather(&b->device_key, 1, MPI_UNSIGNED_LONG_LONG, keys, 1, MPI_UNSIGNED_LONG_LONG, node));
    if (st == AW_OK && b->device_key) {
        *sharing = 0;
        for (int i = 0; i < n; i++) *sharing += keys[i] == b->device_key;
    }
    free(keys);
    MPI_Comm_free(&node);
    return st;
}

/* This rank's kernels: the CUDA table (after checking that the plan's GPU
 * part fits the device's free memory), the staged CPU table, or the CPU's.
 * Then the hand-off: NCCL when every rank has a GPU of its own and the
 * pipeline has more than one stage (or --handoff nccl insists). */
static aw_status start_backend(const aw_run_opts *o, run_state *s, const topo *t, aw_run_result *r)
{
    aw_status st = AW_OK;
    const aw_comm *w = t->w;
    int sharing = 1;
    AW_TRY(gpu_sharing(w, &r->backend, &sharing));
    if (o->staged) {
        s->ops = aw_ops_cpu_staged();
    } else if (r->backend.kind == AW_BACKEND_CUDA) {
        aw_gpu_costs g;
        size_t free_b = 0, total_b = 0;
        st = aw_gpu_costs_for(&s->cfg, s->L, s->B, &g);
        if (st == AW_OK) st = aw_backend_mem_info(&r->backend, &free_b, &total_b);
        if (st == AW_OK) {
            /* ranks on the same GPU share what is free now: each checks
             * against its share */
            uint64_t share = (uint64_t)free_b / (uint64_t)sharing;
            uint64_t need = aw_gpu_stage_bytes(&g, t->nl, t->is_first, t->is_last);
            if (need > share)
                st = AW_FAIL(AW_ERR_NOMEM,
                             "GPU %d (%s): stage %d needs %.1f GB (%d blocks x %.2f GB + %.1f GB activations for "
                             "--batch %d + %.1f GB reserve), %.1f GB free of %.1f GB shared by %d rank(s): use more "
                             "ranks (stages), fewer ranks per GPU or a smaller --batch",
                             r->backend.device, r->backend.device_name, t->stage, (double)need / 1e9, t->nl,
                             (double)g.block / 1e9, (double)g.fixed / 1e9, s->B, (double)g.reserve / 1e9,
                             (double)free_b / 1e9, (double)total_b / 1e9, sharing);
        }
        s->cuda = aw_cuda_api_get(NULL); /* loaded: aw_backend_select chose CUDA through it */
        if (st == AW_OK) st = s->cuda->ops_create(&s->ops_owned);
        s->ops = s->ops_owned;
    } else {
        s->ops = aw_ops_cpu();
    }
    AW_TRY(aw_comm_agree(w, st));
    /* NCCL needs every rank on a GPU of its own */
    int own_gpu = r->backend.kind == AW_BACKEND_CUDA && sharing == 1, all_own = 0;
    AW_TRY(AW_MPI(MPI_Allreduce(&own_gpu, &all_own, 1, MPI_INT, MPI_MIN, w->world)));
    int want = o->handoff;
    AW_RETURN_IF(want == AW_HANDOFF_NCCL && !all_own, AW_ERR_ARG,
                 "--handoff nccl: every rank needs a GPU of its own (ranks on a node <= its GPUs)");
    s->nccl = t->S > 1 && all_own && want != AW_HANDOFF_MPI;
    r->nccl = s->nccl;
    if (s->nccl) aw_progress_note(s->prog, "hand-off between stages: NCCL, device to device");
    return AW_OK;
}

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

aw_status aw_run_comm(const aw_run_opts *o, const aw_comm *world, aw_run_result *r)
{
    memset(r, 0, sizeof *r);
    run_state s;
    memset(&s, 0, sizeof s);
    topo t;
    memset(&t, 0, sizeof t);
    t.w = world;
    t.stage_comm = t.chain_comm = MPI_COMM_NULL;
    aw_status st = AW_OK;
    double t0 = aw_now();
    int local = aw_node_ranks(world); /* collective, once */
    aw_set_blas_threads(local);
    AW_GOTO_IF(o->batch < 1, AW_ERR_ARG, "--batch %d: expected at least 1", o->batch);
    if (world->rank == 0 && (!o->quiet || o->log_json)) {
        /* progress lines and events come from rank 0 (stage 0, replica 0) */
        aw_progress_opts po;
        aw_progress_defaults(&po);
        po.print = !o->quiet;
        po.every_s = o->progress_every_s;
        po.log_path = o->log_json;
        st = aw_progress_create(&po, &s.prog);
    }
    AW_CHECK(aw_comm_agree(world, st));
    aw_guard_start(world->rank, world->size, o->hang_timeout_s);
    st = aw_backend_select(o->staged ? AW_BACKEND_CPU : o->backend_want, aw_local_rank_from_env(), &r->backend);
    AW_CHECK(aw_comm_agree(world, st));
    AW_CHECK(setup(o, &s, &t, local));
    const aw_model_config *c = &s.cfg;
    AW_CHECK(aw_comm_agree(world, start_backend(o, &s, &t, r)));
    r->cfg = s.cfg;
    s.method = o->method;
    /* non-quantized tensors and scales are written (and validated) in the
     * model's dtype; INT8 codes come from the rounded scale */
    s.method.param_dtype = c->torch_dtype;
    s.method.scale_dtype = c->torch_dtype;
    r->calib_seqs = s.n_calib;
    r->holdout_seqs = s.n_hold;
    r->seq_len = (uint32_t)s.L;
    r->calib_tokens = (uint64_t)s.n_calib * s.L;
    r->holdout_tokens = (uint64_t)s.n_hold * s.L;
    aw_progress_note(s.prog, "model %s: OPT d=%d layers=%d; %u calibration + %u held-out sequences of %d tokens; "
                     "method %s; %d rank(s) = %d stage(s) x %d replica(s)",
                     o->model_dir, c->hidden_size, c->num_hidden_layers, s.n_calib, s.n_hold, s.L,
                     aw_method_names[o->method.kind], world->size, t.S, t.R);
    if (s.prog) {
        /* for batch systems: what this job is, before its phases */
        json_t *pe = json_object();
        json_object_set_new(pe, "model", json_string(o->model_dir));
        json_object_set_new(pe, "method", json_string(aw_method_names[o->method.kind]));
        json_object_set_new(pe, "layers", json_integer(c->num_hidden_layers));
        json_object_set_new(pe, "ranks", json_integer(world->size));
        json_object_set_new(pe, "stages", json_integer(t.S));
        json_object_set_new(pe, "replicas", json_integer(t.R));
        json_object_set_new(pe, "calibration_sequences", json_integer(s.n_calib));
        json_object_set_new(pe, "heldout_sequences", json_integer(s.n_hold));
        json_object_set_new(pe, "eval_windows", json_integer(s.n_eval));
        json_object_set_new(pe, "seq_len", json_integer(s.L));
        json_object_set_new(pe, "batch", json_integer(s.B));
        aw_progress_event(s.prog, "plan", pe);
    }
    /* the layers the report shows channel by channel */
    if (o->n_report_layers > 0) {
        /* the same answer on every rank: rank 0 says it, the others follow */
        AW_CHECK(aw_comm_agree(world, world->rank == 0 ? aw_range_check_layers(o->report_layers, o->n_report_layers,
                                                                                c->num_hidden_layers)
                                                       : AW_OK));
        r->n_shown = o->n_report_layers;
        memcpy(r->shown, o->report_layers, (size_t)r->n_shown * sizeof(int));
    } else {
        r->n_shown = aw_range_default_layers(c->num_hidden_layers, r->shown);
    }
    /* blocks of samples the pipeline still computes after rank 0's last:
     * the other stages' lag behind stage 0 */
    long lag = (long)(t.S - 1) * t.R;
    double block_tokens = (double)s.B * s.L;
    aw_progress_begin(s.prog, "load", t.nl, t.S > 1 ? "blocks of stage 0" : "blocks", 0, 0);
    /* the links first: NCCL's buffers are taken before the blocks fill the
     * device; a rank failing here may leave its neighbour inside an init
     * that only it could complete, so the job ends at once */
    if (s.nccl) AW_CHECK(aw_comm_agree(world, end_job_if_failed(world, o, nccl_links(&s, &t))));
    AW_CHECK(aw_comm_agree(world, load_local(&s, &t)));
    AW_CHECK(aw_comm_agree(world, aw_guard_step("load", &o->fail_at)));
    AW_CHECK(prepare_shards(o, &s, &t, r));
    r->t_load = aw_now() - t0;
    aw_progress_end(s.prog);

    t0 = aw_now();
    aw_progress_begin(s.prog, "calibrate", n_blocks(s.n_calib, s.B), "blocks of samples", block_tokens, lag);
    AW_CHECK(aw_comm_agree(world, end_job_if_failed(world, o, calibrate(o, &s, &t))));
    r->t_calib = aw_now() - t0;
    aw_progress_end(s.prog);

    t0 = aw_now();
    /* Peak memory is the largest phase, not their sum: the forward
     * workspace is not needed while quantizing, when the f32 equalized block
     * takes its place (the plan counts memory this way). */
    aw_fwd_ws_destroy(&s.ws);
    st = AW_OK;
    aw_progress_begin(s.prog, "quantize", t.nl, t.S > 1 ? "blocks of stage 0" : "blocks", 0, 0);
    for (int l = 0; l < t.nl && st == AW_OK; l++) {
        if (!s.done[l]) {
            st = aw_qblock_create(c, &s.q[l]);
            if (st == AW_OK) st = aw_quantize_block(c, t.l0 + l, &s.fp[l], &s.stats[l], &s.method, &s.q[l]);
            /* the shard is the resume point: written as soon as the block exists */
            if (st == AW_OK && s.work && t.replica == 0) {
                uint8_t *bytes = NULL;
                size_t len = 0;
                st = aw_block_serialize(c, t.l0 + l, &s.q[l], &s.method, s.run_key, &bytes, &len);
                if (st == AW_OK) st = aw_shard_write(s.work, t.l0 + l, bytes, len);
                free(bytes);
            }
        }
        /* what the report shows of this block's equalization (a reused
         * block too: its statistics were gathered all the same) */
        if (st == AW_OK && t.replica == 0) st = layer_ranges(&s, &t, r, l);
        if (st == AW_OK) st = aw_guard_step("quantize", &o->fail_at);
        aw_progress_step(s.prog, l + 1);
    }
    /* the W8A8 blocks where validation runs (the host ones on the CPU) */
    for (int l = 0; l < t.nl && st == AW_OK; l++) st = aw_qblock_to_dev(s.ops, c, &s.q[l], &s.dq[l]);
    AW_CHECK(aw_comm_agree(world, st));
    AW_CHECK(aw_comm_agree(world, gather_ranges(&s, &t, r)));
    /* statistics are spent once a layer is quantized */
    for (int l = 0; l < t.nl; l++) {
        aw_stats_destroy(&s.stats[l]);
        free(s.parts[l]);
        s.parts[l] = NULL;
    }
    r->t_quant = aw_now() - t0;
    aw_progress_end(s.prog);

    t0 = aw_now();
    aw_progress_begin(s.prog, "validate", n_blocks(s.n_hold, s.B), "blocks of samples", block_tokens, lag);
    AW_CHECK(aw_comm_agree(world, end_job_if_failed(world, o, validate(o, &s, &t, &r->e2e))));
    AW_CHECK(gather_metrics(&s, &t, r));
    aw_progress_end(s.prog);
    if (s.n_eval > 0) {
        aw_progress_begin(s.prog, "evaluate", n_blocks(s.n_eval, s.B), "blocks of windows", block_tokens, lag);
        AW_CHECK(aw_comm_agree(world, end_job_if_failed(world, o, evaluate(o, &s, &t, &r->eval_e2e))));
        aw_progress_end(s.prog);
        r->eval_windows = s.n_eval;
        r->eval_stream_tokens = s.eval_stream_tokens;
        aw_progress_note(s.prog, "evaluate: %s: perplexity fp %.4f, W8A8 %.4f on %u windows of %d tokens",
                         o->eval_text, aw_e2e_ppl_fp(&r->eval_e2e), aw_e2e_ppl_q(&r->eval_e2e), s.n_eval, s.L);
    }
    r->t_valid = aw_now() - t0;
    st = AW_OK;
    if (world->rank == 0 && o->max_rel_error > 0 && r->worst_rel_err > o->max_rel_error)
        st = AW_FAIL(AW_ERR_VALIDATION, "%s: relative error %.4g exceeds --max-rel-error %g", r->worst_layer,
                     r->worst_rel_err, o->max_rel_error);
    AW_CHECK(aw_comm_agree(world, st));

    if (o->out_dir) {
        t0 = aw_now();
        aw_progress_begin(s.prog, "write", t.nl, t.S > 1 ? "blocks of stage 0" : "blocks", 0, 0);
        AW_CHECK(write_output(o, &s, &t, r, t0));
        r->t_write = aw_now() - t0;
        aw_progress_end(s.prog);
        aw_progress_note(s.prog, "wrote %s (report: %s/report.html)", o->out_dir, o->out_dir);
    }
    /* with --out, gathered before the report was written */
    if (!r->rank_peak_mb) AW_CHECK(gather_layout(&s, &t, r));
fail:
    if (s.prog) {
        /* the last event, for batch systems: how the job ended */
        json_t *f = json_object();
        json_object_set_new(f, "status", json_string(st == AW_OK ? "ok" : aw_status_name(st)));
        if (st != AW_OK) json_object_set_new(f, "message", json_string(aw_err_message()));
        json_object_set_new(f, "times_s", aw_report_times_json(r));
        aw_progress_event(s.prog, "end", f);
        aw_progress_destroy(s.prog);
        s.prog = NULL;
    }
    aw_guard_stop();
    dev_free(&s, &t, st != AW_OK);
    if (t.stage_comm != MPI_COMM_NULL) MPI_Comm_free(&t.stage_comm);
    if (t.chain_comm != MPI_COMM_NULL) MPI_Comm_free(&t.chain_comm);
    state_free(&s, &t);
    return st;
}

aw_status aw_run(const aw_run_opts *o, aw_run_result *r)
{
    const aw_comm *w = aw_comm_world();
    if (!w) {
        memset(r, 0, sizeof *r);
        return AW_FAIL(AW_ERR_MPI, "MPI could not start: %s", aw_err_message());
    }
    return aw_run_comm(o, w, r);
}
