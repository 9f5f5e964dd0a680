/*
 * test_quant_act.c - quantization of the schemes with integer activations
 * at run time (dynamic, aw_quant_wo.c) and of kept channels (aw_quant.c),
 * and the token sample of the statistics (aw_stats.c), on a small generated
 * OPT model with the generator's outlier channels:
 *   (a) the sample: rows are the tap inputs of tokens 0, stride, 2 stride,
 *       ... (global index), no negative zeros; two "replicas" that each saw
 *       every other block sum to the same bytes;
 *   (b) W4A4 g32 (agroup 32), W4A4 per-token, W4A8 g32 with rtn, aweq, awq,
 *       aweq+search, gptq: codes, zero points, wq = code - zero, finite
 *       steps; each layer's forward with the quantized block is close to the
 *       fp one on held-out inputs and the errors are ordered (W4A8 < W4A4);
 *   (c) aw_ops_cpu_staged (the device data path) gives the CPU's bytes, the
 *       device copy too, for dynamic schemes and kept channels;
 *   (d) kept channels (W4A4, W8A8, W4 weight-only; rtn, aweq): the kept ones
 *       are those of the largest range after the fold, ascending; their
 *       wkeep columns are the folded fp columns rounded to the parameter
 *       dtype, their quantized weights zero; keeping 10% of the channels
 *       (those with the outliers) brings the error down a lot;
 *   (e) awq and aweq+search on W4A4 search the sampled objective (with the
 *       activation quantizer inside): the chosen factors' objective is <=
 *       alpha = 0's, and equals a direct recomputation;
 *   (f) refusals: awq / aweq+search / gptq with kept channels, a dynamic
 *       search without a sample, a block of another scheme.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_actq.h"
#include "aw_forward.h"
#include "aw_fs.h"
#include "aw_kernels.h"
#include "aw_lowbit.h"
#include "aw_model_files.h"
#include "aw_quant.h"
#include "../../pipeline/quant/aw_quant_int.h"
#include "aw_synth.h"
#include "aw_tokens.h"
#include "testutil.h"

#define NL 2       /* layers of the generated model */
#define CALIB 40   /* calibration sequences */
#define HOLD 8     /* held-out sequences after them */
#define CHUNK 8    /* sequences per block of samples */

static const aw_scheme w4a4_g32 = {.wbits = 4, .group = 32, .sym = 1, .act = AW_ACT_DYNAMIC, .abits = 4,
                                   .agroup = 32};
static const aw_scheme w4a4_tok = {.wbits = 4, .group = 32, .sym = 1, .act = AW_ACT_DYNAMIC, .abits = 4,
                                   .agroup = 0};
static const aw_scheme w4a8_g32 = {.wbits = 4, .group = 32, .sym = 1, .act = AW_ACT_DYNAMIC, .abits = 8,
                                   .agroup = 32};
static const aw_scheme w4_g32 = {.wbits = 4, .group = 32, .sym = 1, .act = AW_ACT_FLOAT};

typedef struct {
    char *dir;
    aw_model_config cfg;
    aw_model_files *mf;
    aw_tokens tok;
    aw_model_ends ends;
    aw_block fp[NL];                /* F32 */
    aw_stats st[NL];                /* calibration: Gram and sample */
    aw_stats rep[2];                /* layer 0's sample as two replicas would take it */
    aw_stats abs0;                  /* layer 0 again: |x| sums and sample, no Gram */
    float *xin[NL];                 /* (HOLD * L, d) held-out input of each layer (fp stream) */
    float *xcal[AW_TAP_COUNT];      /* layer 0's tap inputs of the first calibration block */
    aw_fwd_ws ws;
    float *gram_scratch;
    int L;
} fixture;

static char *join(const char *a, const char *b)
{
    char *p = aw_path_join(a, b);
    assert_non_null(p);
    return p;
}

static void synth(const char *out)
{
    aw_synth_opts o;
    aw_synth_defaults(&o, aw_shape_find("opt-125m"));
    o.cfg.name[0] = '\0';
    o.cfg.hidden_size = 128;
    o.cfg.word_embed_proj_dim = 128;
    o.cfg.num_hidden_layers = NL;
    o.cfg.num_attention_heads = 4;
    o.cfg.ffn_dim = 512;
    o.cfg.vocab_size = 2000;
    o.cfg.max_position_embeddings = 128;
    o.cfg.torch_dtype = AW_DT_F32;
    o.calib_seqs = CALIB + HOLD;
    o.calib_len = 64;
    o.max_shard_bytes = 400000;
    aw_assert_status(aw_synth_write(&o, out), AW_OK, NULL);
}

typedef struct {
    fixture *f;
    int layer, block;
} obs_ctx;

/* The calibration observer: the statistics, layer 0's first block's tap
 * inputs, and layer 0's sample as replica block % 2 would take it. */
static aw_status observe(void *ctx, aw_tap_id tap, const float *x, int T, int in)
{
    obs_ctx *oc = ctx;
    fixture *f = oc->f;
    if (oc->layer == 0) {
        if (oc->block == 0) memcpy(f->xcal[tap], x, (size_t)T * in * sizeof(float));
        AW_TRY(aw_stats_observe(&f->rep[oc->block % 2], tap, x, T, in));
        AW_TRY(aw_stats_observe(&f->abs0, tap, x, T, in));
    }
    return aw_stats_observe(&f->st[oc->layer], tap, x, T, in);
}

static void take_part(aw_stats *s)
{
    double *part = malloc(aw_stats_part_len(s) * sizeof(double));
    assert_non_null(part);
    aw_assert_status(aw_stats_take_part(s, part), AW_OK, NULL);
    aw_stats_add_part(s, part);
    free(part);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = aw_test_tmpdir();
    char *md = join(f->dir, "opt");
    synth(md);
    char *cfg = join(md, "config.json"), *tp = join(md, "calibration.tokens");
    aw_assert_status(aw_config_read(cfg, &f->cfg), AW_OK, NULL);
    aw_assert_status(aw_mf_open(md, &f->mf), AW_OK, NULL);
    aw_assert_status(aw_tokens_read(tp, &f->tok), AW_OK, NULL);
    aw_assert_status(aw_ends_load(&f->cfg, f->mf, &f->ends), AW_OK, NULL);
    free(cfg);
    free(tp);
    free(md);
    const aw_model_config *c = &f->cfg;
    int L = f->L = (int)f->tok.seq_len, d = c->hidden_size;
    uint64_t total = (uint64_t)CALIB * L;
    aw_assert_status(aw_fwd_ws_create(c, CHUNK, L, &f->ws), AW_OK, NULL);
    f->gram_scratch = calloc(aw_stats_gram_scratch_floats(c), sizeof(float));
    assert_non_null(f->gram_scratch);
    for (int l = 0; l < NL; l++) {
        aw_assert_status(aw_block_create(c, AW_DT_F32, &f->fp[l]), AW_OK, NULL);
        aw_assert_status(aw_block_load(c, f->mf, l, &f->fp[l]), AW_OK, NULL);
        aw_assert_status(aw_stats_create(c, AW_STATS_GRAM, &f->st[l]), AW_OK, NULL);
        aw_stats_use_gram_scratch(&f->st[l], f->gram_scratch, f->gram_scratch);
        aw_assert_status(aw_stats_use_sample(&f->st[l], AW_SAMPLE_TOKENS, total), AW_OK, NULL);
        f->xin[l] = malloc((size_t)HOLD * L * d * sizeof(float));
        assert_non_null(f->xin[l]);
    }
    for (int r = 0; r < 2; r++) {
        aw_assert_status(aw_stats_create(c, AW_STATS_PLAIN, &f->rep[r]), AW_OK, NULL);
        aw_assert_status(aw_stats_use_sample(&f->rep[r], AW_SAMPLE_TOKENS, total), AW_OK, NULL);
    }
    aw_assert_status(aw_stats_create(c, AW_STATS_ABSSUM, &f->abs0), AW_OK, NULL);
    aw_assert_status(aw_stats_use_sample(&f->abs0, AW_SAMPLE_TOKENS, total), AW_OK, NULL);
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        f->xcal[t] = malloc((size_t)CHUNK * L * f->st[0].in[t] * sizeof(float));
        assert_non_null(f->xcal[t]);
    }
    float *hs = malloc((size_t)CHUNK * L * d * sizeof(float));
    assert_non_null(hs);
    for (int b = 0; b < CALIB / CHUNK; b++) {
        uint64_t first = (uint64_t)b * CHUNK * L;
        aw_model_embed(c, &f->ends, f->tok.ids + first, CHUNK, L, hs);
        aw_stats_set_block(&f->rep[b % 2], first);
        aw_stats_set_block(&f->abs0, first);
        for (int l = 0; l < NL; l++) {
            obs_ctx oc = {f, l, b};
            aw_stats_set_block(&f->st[l], first);
            aw_assert_status(aw_block_forward(c, &f->fp[l], NULL, hs, CHUNK, L, &f->ws, observe, &oc), AW_OK, NULL);
            take_part(&f->st[l]);
            if (l == 0) take_part(&f->rep[b % 2]), take_part(&f->abs0);
        }
    }
    for (int l = 0; l < NL; l++) aw_stats_finish(&f->st[l]);
    /* the held-out inputs of each layer */
    aw_model_embed(c, &f->ends, f->tok.ids + (size_t)CALIB * L, HOLD, L, hs);
    for (int l = 0; l < NL; l++) {
        memcpy(f->xin[l], hs, (size_t)HOLD * L * d * sizeof(float));
        aw_assert_status(aw_block_forward(c, &f->fp[l], NULL, hs, HOLD, L, &f->ws, NULL, NULL), AW_OK, NULL);
    }
    free(hs);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int l = 0; l < NL; l++) {
        aw_block_destroy(&f->fp[l]);
        aw_stats_destroy(&f->st[l]);
        free(f->xin[l]);
    }
    for (int r = 0; r < 2; r++) aw_stats_destroy(&f->rep[r]);
    aw_stats_destroy(&f->abs0);
    for (int t = 0; t < AW_TAP_COUNT; t++) free(f->xcal[t]);
    aw_fwd_ws_destroy(&f->ws);
    free(f->gram_scratch);
    aw_ends_destroy(&f->ends);
    aw_tokens_free(&f->tok);
    aw_mf_close(f->mf);
    aw_test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static aw_method method(aw_method_kind k, const aw_scheme *sc)
{
    aw_method m = {.kind = k, .alpha = 0.5f, .bias_correction = k == AW_METHOD_AWEQ || k == AW_METHOD_AWEQ_SEARCH,
                   .param_dtype = AW_DT_F32, .scale_dtype = AW_DT_F16, .scheme = *sc};
    return m;
}

static const char *label(const aw_scheme *sc)
{
    static char buf[64];
    return aw_scheme_label(sc, buf, sizeof buf);
}

/* ---- (a) the sample ------------------------------------------------------------------------ */

static void test_sample(void **state)
{
    fixture *f = *state;
    const aw_stats *st = &f->st[0];
    int T0 = CHUNK * f->L;
    uint64_t total = (uint64_t)CALIB * f->L;
    assert_int_equal(st->n_samp, AW_SAMPLE_TOKENS);
    assert_int_equal((int)st->samp_stride, (int)(total / AW_SAMPLE_TOKENS));
    assert_int_equal(st->samp_rows, AW_SAMPLE_TOKENS);
    int checked = 0;
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        int in = st->in[t];
        for (int r = 0; r < st->samp_rows; r++) {
            const float *row = st->sample[t] + (size_t)r * in;
            for (int j = 0; j < in; j++) assert_false(row[j] == 0.0f && signbit(row[j]));
            uint64_t g = (uint64_t)r * st->samp_stride;
            if (g >= (uint64_t)T0) continue;
            /* a token of the first block: its input as the forward saw it */
            for (int j = 0; j < in; j++) assert_true(row[j] == f->xcal[t][g * in + j]);
            checked++;
        }
        /* not all zero: the last row too */
        float mx = 0.0f;
        for (int j = 0; j < in; j++) mx = fmaxf(mx, fabsf(st->sample[t][(size_t)(st->samp_rows - 1) * in + j]));
        assert_true(mx > 0.0f);
    }
    assert_true(checked > 0);
    /* two replicas, each with every other block: their sum is the bytes */
    size_t n = (size_t)st->n_samp * st->n_sum;
    float *sum = malloc(n * sizeof *sum);
    assert_non_null(sum);
    for (size_t i = 0; i < n; i++) sum[i] = f->rep[0].sample_all[i] + f->rep[1].sample_all[i];
    assert_memory_equal(sum, st->sample_all, n * sizeof *sum);
    size_t nz0 = 0;
    for (size_t i = 0; i < n; i++) nz0 += f->rep[0].sample_all[i] != 0.0f;
    assert_true(nz0 > 0 && nz0 < n);
    free(sum);
    /* a short calibration: stride 1, fewer rows */
    aw_stats s;
    aw_assert_status(aw_stats_create(&f->cfg, AW_STATS_PLAIN, &s), AW_OK, NULL);
    aw_assert_status(aw_stats_use_sample(&s, 512, 100), AW_OK, NULL);
    assert_int_equal((int)s.samp_stride, 1);
    assert_int_equal(s.samp_rows, 100);
    aw_assert_status(aw_stats_use_sample(&s, 0, 100), AW_ERR_ARG, "row");
    aw_stats_destroy(&s);
    printf("sample: %d rows of every tap, stride %d; %d rows checked against the forward's inputs\n", st->samp_rows,
           (int)st->samp_stride, checked);
}

/* ---- helpers: a layer's error on held-out inputs ------------------------------------------- */

/* ||block_q(x) - block_fp(x)||^2 / ||block_fp(x) - x||^2 over the held-out
 * input of layer l. */
static double layer_err(fixture *f, int l, const aw_qblock *q)
{
    const aw_model_config *c = &f->cfg;
    int L = f->L, d = c->hidden_size;
    size_t n = (size_t)HOLD * L * d;
    float *hf = malloc(n * sizeof *hf), *hq = malloc(n * sizeof *hq);
    assert_true(hf && hq);
    aw_fwd_ws ws;
    aw_assert_status(aw_fwd_ws_create(c, HOLD, L, &ws), AW_OK, NULL);
    aw_assert_status(aw_fwd_ws_need_scheme(&ws, c, &q->scheme), AW_OK, NULL);
    memcpy(hf, f->xin[l], n * sizeof *hf);
    memcpy(hq, f->xin[l], n * sizeof *hq);
    aw_assert_status(aw_block_forward(c, &f->fp[l], NULL, hf, HOLD, L, &ws, NULL, NULL), AW_OK, NULL);
    aw_assert_status(aw_block_forward(c, NULL, q, hq, HOLD, L, &ws, NULL, NULL), AW_OK, NULL);
    double e = 0.0, r = 0.0;
    for (size_t i = 0; i < n; i++) {
        double dq = (double)hq[i] - hf[i], dr = (double)hf[i] - f->xin[l][i];
        e += dq * dq;
        r += dr * dr;
    }
    aw_fwd_ws_destroy(&ws);
    free(hf);
    free(hq);
    assert_true(isfinite(e) && r > 0.0);
    return e / r;
}

/* Quantize layer l with m into a new q (created); returns the status. */
static aw_status quantize(fixture *f, int l, const aw_method *m, const aw_stats *st, aw_qblock *q)
{
    aw_assert_status(aw_qblock_create(&f->cfg, &m->scheme, q), AW_OK, NULL);
    return aw_quantize_block(&f->cfg, l, &f->fp[l], st ? st : &f->st[l], m, q);
}

/* (b) one quantized block of a dynamic scheme. */
static void check_dynamic_block(const aw_qblock *q)
{
    const aw_scheme *sc = &q->scheme;
    int maxq = (1 << sc->wbits) - 1;
    for (int l = 0; l < q->n_lin; l++) {
        const aw_qlinear *ql = &q->lin[l];
        assert_non_null(ql->codes);
        assert_non_null(ql->wq);
        int in = ql->in, ng = aw_scheme_groups(sc, in), G = aw_scheme_group_len(sc, in);
        for (int i = 0; i < ql->out; i++)
            for (int j = 0; j < in; j++) {
                size_t k = (size_t)i * in + j;
                int z = ql->wzero[(size_t)i * ng + j / G];
                assert_true(ql->codes[k] <= maxq);
                assert_int_equal(ql->wq[k], (int)ql->codes[k] - z);
            }
        for (size_t k = 0; k < (size_t)ql->out * ng; k++) assert_true(isfinite(ql->wstep[k]) && ql->wstep[k] > 0.0f);
        for (int i = 0; i < ql->out; i++) assert_true(isfinite(ql->bias[i]));
    }
}

/* ---- (b) dynamic schemes ------------------------------------------------------------------- */

static void test_dynamic(void **state)
{
    fixture *f = *state;
    const aw_scheme *scs[] = {&w4a4_g32, &w4a4_tok, &w4a8_g32, &w4_g32};
    const aw_method_kind kinds[] = {AW_METHOD_RTN, AW_METHOD_AWEQ, AW_METHOD_AWQ, AW_METHOD_AWEQ_SEARCH,
                                    AW_METHOD_GPTQ};
    double err[4][5];
    for (int si = 0; si < 4; si++) {
        for (int k = 0; k < 5; k++) {
            aw_method m = method(kinds[k], scs[si]);
            double e = 0.0;
            for (int l = 0; l < NL; l++) {
                aw_qblock q;
                aw_assert_status(quantize(f, l, &m, NULL, &q), AW_OK, NULL);
                if (scs[si]->act == AW_ACT_DYNAMIC) check_dynamic_block(&q);
                if (l == 1 && k == 0) { /* the same bytes again */
                    aw_qblock q2;
                    aw_assert_status(quantize(f, l, &m, NULL, &q2), AW_OK, NULL);
                    assert_memory_equal(q.arena, q2.arena, aw_qblock_bytes(&f->cfg, scs[si]));
                    aw_qblock_destroy(&q2);
                }
                e += layer_err(f, l, &q) / NL;
                aw_qblock_destroy(&q);
            }
            err[si][k] = e;
        }
        printf("%-24s layer error / fp change: rtn %.4g aweq %.4g awq %.4g aweq+search %.4g gptq %.4g\n",
               label(scs[si]), err[si][0], err[si][1], err[si][2], err[si][3], err[si][4]);
    }
    for (int k = 0; k < 5; k++) {
        /* close to fp (the folds: much closer than rtn), and ordered: more
         * activation bits, less error */
        assert_true(err[0][k] < 1.0 && err[1][k] < 1.0);
        if (kinds[k] != AW_METHOD_RTN && kinds[k] != AW_METHOD_GPTQ)
            assert_true(err[0][k] < 0.1 && err[1][k] < 0.1 && err[0][k] < 0.25 * err[0][0]);
        assert_true(err[2][k] < err[0][k]);
        assert_true(err[2][k] < err[1][k]);
        assert_true(err[3][k] < err[0][k]);
    }
}

/* AWQ with a dynamic scheme reads the |x| sums and the sample, not the Gram
 * matrices: statistics without them give the same sums and the same
 * blocks; each method is refused the statistics it cannot use. */
static void test_abssum_only(void **state)
{
    fixture *f = *state;
    const aw_stats *a = &f->abs0, *g = &f->st[0];
    assert_int_equal(aw_stats_level_of(a), AW_STATS_ABSSUM);
    assert_int_equal(aw_stats_level_of(g), AW_STATS_GRAM);
    assert_int_equal((int)aw_stats_part_len(a), (int)(2 * a->n_sum + 1));
    assert_int_equal((int)a->tokens, (int)g->tokens);
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        assert_null(a->gram[t]);
        assert_memory_equal(a->abssum[t], g->abssum[t], (size_t)a->in[t] * sizeof(double));
        assert_memory_equal(a->sum[t], g->sum[t], (size_t)a->in[t] * sizeof(double));
    }
    assert_memory_equal(a->sample_all, g->sample_all, (size_t)a->n_samp * a->n_sum * sizeof(float));
    const aw_scheme *dyn[] = {&w4a4_g32, &w4a4_tok, &w4a8_g32};
    for (int si = 0; si < 3; si++) {
        aw_method m = method(AW_METHOD_AWQ, dyn[si]);
        assert_int_equal(aw_method_stats_level(&m), AW_STATS_ABSSUM);
        aw_qblock qa, qg;
        aw_assert_status(quantize(f, 0, &m, a, &qa), AW_OK, NULL);
        aw_assert_status(quantize(f, 0, &m, g, &qg), AW_OK, NULL);
        if (memcmp(qa.arena, qg.arena, aw_qblock_bytes(&f->cfg, dyn[si])) != 0)
            fail_msg("awq %s: the block differs without the Gram matrices", label(dyn[si]));
        aw_qblock_destroy(&qa);
        aw_qblock_destroy(&qg);
        /* and without the |x| sums: refused (rep[0] has a sample) */
        aw_assert_status(quantize(f, 0, &m, &f->rep[0], &qa), AW_ERR_ARG, "|x| sums");
        aw_qblock_destroy(&qa);
        aw_method ms = method(AW_METHOD_AWEQ_SEARCH, dyn[si]);
        assert_int_equal(aw_method_stats_level(&ms), AW_STATS_PLAIN);
    }
    /* the weight-only searches and GPTQ need the Gram matrices */
    const aw_method_kind gk[] = {AW_METHOD_AWQ, AW_METHOD_AWEQ_SEARCH, AW_METHOD_GPTQ};
    for (int k = 0; k < 3; k++) {
        aw_method m = method(gk[k], &w4_g32);
        assert_int_equal(aw_method_stats_level(&m), AW_STATS_GRAM);
        aw_qblock q;
        aw_assert_status(quantize(f, 0, &m, a, &q), AW_ERR_ARG, "Gram matrices");
        aw_qblock_destroy(&q);
    }
    aw_method g4 = method(AW_METHOD_GPTQ, &w4a4_g32);
    assert_int_equal(aw_method_stats_level(&g4), AW_STATS_GRAM);
}

/* ---- (c) staged = CPU ---------------------------------------------------------------------- */

static void check_staged(fixture *f, const aw_method *m)
{
    const aw_ops *o = aw_ops_cpu_staged();
    const aw_model_config *c = &f->cfg;
    const aw_scheme *sc = &m->scheme;
    uint64_t qb = aw_qblock_bytes(c, sc);
    aw_block b16;
    aw_assert_status(aw_block_create(c, AW_DT_BF16, &b16), AW_OK, NULL);
    aw_assert_status(aw_block_convert(&b16, &f->fp[1]), AW_OK, NULL);
    for (int l = 0; l <= NL; l++) {
        const aw_block *fp = l < NL ? &f->fp[l] : &b16;
        int layer = l < NL ? l : 1;
        aw_qblock q, qs, dq;
        aw_block dfp;
        aw_assert_status(aw_qblock_create(c, sc, &q), AW_OK, NULL);
        aw_assert_status(aw_quantize_block(c, layer, fp, &f->st[layer], m, &q), AW_OK, NULL);
        aw_assert_status(aw_block_to_dev(o, c, fp, &dfp), AW_OK, NULL);
        aw_assert_status(aw_qblock_create(c, sc, &qs), AW_OK, NULL);
        aw_assert_status(aw_qblock_dev_create(o, c, &qs, &dq), AW_OK, NULL);
        assert_true(dq.arena != qs.arena);
        aw_assert_status(aw_quantize_block_ops(o, c, layer, &dfp, &f->st[layer], m, &dq, &qs), AW_OK, NULL);
        if (memcmp(q.arena, qs.arena, qb) != 0)
            fail_msg("%s %s layer %d%s: staged bytes differ from the CPU's", aw_method_names[m->kind], label(sc),
                     layer, l == NL ? " (bf16)" : "");
        unsigned char *back = malloc(qb);
        assert_non_null(back);
        aw_assert_status(o->vt->to_host(o, back, dq.arena, qb), AW_OK, NULL);
        assert_memory_equal(back, q.arena, qb);
        free(back);
        aw_qblock_dev_free(o, &dq, &qs);
        aw_block_dev_free(o, &dfp, fp);
        aw_qblock_destroy(&qs);
        aw_qblock_destroy(&q);
    }
    aw_block_destroy(&b16);
}

static void test_staged_equals_cpu(void **state)
{
    fixture *f = *state;
    aw_scheme w4a4k = w4a4_g32, w8a8k = AW_SCHEME_W8A8, w4k = w4_g32;
    w4a4k.keep_pct = w8a8k.keep_pct = w4k.keep_pct = 10.0;
    for (int k = 0; k < AW_METHOD_COUNT; k++) {
        aw_method m = method((aw_method_kind)k, &w4a4_g32);
        check_staged(f, &m);
        m = method((aw_method_kind)k, &w4a4_tok);
        check_staged(f, &m);
    }
    const aw_scheme *keeps[] = {&w4a4k, &w8a8k, &w4k};
    for (int si = 0; si < 3; si++)
        for (int k = AW_METHOD_RTN; k <= AW_METHOD_AWEQ; k++) {
            aw_method m = method((aw_method_kind)k, keeps[si]);
            m.param_dtype = AW_DT_F16; /* wkeep rounded */
            check_staged(f, &m);
        }
}

/* ---- (d) kept channels --------------------------------------------------------------------- */

static void check_keep_block(fixture *f, int layer, const aw_method *m, const aw_qblock *q)
{
    const aw_model_config *c = &f->cfg;
    const aw_stats *st = &f->st[layer];
    const aw_arch *a = aw_arch_of(c);
    aw_block eq;
    float *s[AW_TAP_COUNT];
    aw_assert_status(aw_block_create(c, AW_DT_F32, &eq), AW_OK, NULL);
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        s[t] = malloc((size_t)st->in[t] * sizeof(float));
        assert_non_null(s[t]);
    }
    aw_assert_status(aw_equalize_block(c, &f->fp[layer], st, m, &eq, s), AW_OK, NULL);
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        int in = st->in[t], nk = q->n_keep[t];
        assert_int_equal(nk, aw_scheme_n_keep(&m->scheme, in));
        assert_true(nk > 0);
        for (int j = 0; j < in; j++) assert_true(s[t][j] == q->s[t][j]);
        /* ascending, the mask agrees, and every kept channel's range is >=
         * every other's (ties to the lower index) */
        char *kept = calloc(in > 0 ? (size_t)in : 1, 1);
        assert_non_null(kept);
        for (int i = 0; i < nk; i++) {
            if (i > 0) assert_true(q->keep_idx[t][i] > q->keep_idx[t][i - 1]);
            kept[q->keep_idx[t][i]] = 1;
        }
        for (int j = 0; j < in; j++) assert_true(q->keep_mask[t][j] == (kept[j] ? 0.0f : 1.0f));
        float lo = INFINITY, hi = 0.0f;
        int lo_j = -1, hi_j = in;
        for (int j = 0; j < in; j++) {
            float r = st->absmax[t][j] / q->s[t][j];
            if (kept[j] && (r < lo || (r == lo && j > lo_j))) lo = r, lo_j = j;
            if (!kept[j] && (r > hi || (r == hi && j < hi_j))) hi = r, hi_j = j;
        }
        assert_true(lo > hi || (lo == hi && lo_j < hi_j));
        for (int l = 0; l < q->n_lin; l++) {
            if (a->lin[l].tap != (aw_tap_id)t) continue;
            const aw_qlinear *ql = &q->lin[l];
            const float *w = eq.lin[l].w;
            assert_int_equal(ql->n_keep, nk);
            int ng = aw_scheme_groups(&m->scheme, in), G = aw_scheme_group_len(&m->scheme, in);
            for (int i = 0; i < ql->out; i++)
                for (int k = 0; k < nk; k++) {
                    int j = q->keep_idx[t][k];
                    size_t wi = (size_t)i * in + j;
                    assert_true(ql->wkeep[(size_t)i * nk + k] == aw_round_to_dtype(w[wi], m->param_dtype));
                    if (ql->codes) assert_int_equal(ql->codes[wi], ql->wzero[(size_t)i * ng + j / G]);
                    if (ql->wq) assert_int_equal(ql->wq[wi], 0);
                }
        }
        free(kept);
    }
    for (int t = 0; t < AW_TAP_COUNT; t++) free(s[t]);
    aw_block_destroy(&eq);
}

static void test_keep(void **state)
{
    fixture *f = *state;
    aw_scheme w8a8 = AW_SCHEME_W8A8;
    const aw_scheme *base[] = {&w4a4_g32, &w8a8, &w4_g32};
    for (int si = 0; si < 3; si++) {
        for (int k = AW_METHOD_RTN; k <= AW_METHOD_AWEQ; k += AW_METHOD_AWEQ - AW_METHOD_RTN) {
            double e[3];
            const double pct[] = {0.0, 1.0, 10.0};
            for (int p = 0; p < 3; p++) {
                aw_scheme sc = *base[si];
                sc.keep_pct = pct[p];
                aw_method m = method((aw_method_kind)k, &sc);
                m.param_dtype = AW_DT_F16;
                e[p] = 0.0;
                for (int l = 0; l < NL; l++) {
                    aw_qblock q;
                    aw_assert_status(quantize(f, l, &m, NULL, &q), AW_OK, NULL);
                    if (pct[p] > 0) check_keep_block(f, l, &m, &q);
                    if (sc.act == AW_ACT_DYNAMIC) check_dynamic_block(&q);
                    e[p] += layer_err(f, l, &q) / NL;
                    aw_qblock_destroy(&q);
                }
            }
            if (k == AW_METHOD_RTN) {
                /* a share that rounds to no channel: the same layer as keep 0 */
                aw_scheme sc0 = *base[si], sct = *base[si];
                sct.keep_pct = 0.05;
                aw_method m0 = method(AW_METHOD_RTN, &sc0), mt = method(AW_METHOD_RTN, &sct);
                m0.param_dtype = mt.param_dtype = AW_DT_F16;
                aw_qblock q0, qt;
                aw_assert_status(quantize(f, 0, &m0, NULL, &q0), AW_OK, NULL);
                aw_assert_status(quantize(f, 0, &mt, NULL, &qt), AW_OK, NULL);
                for (int t = 0; t < AW_TAP_COUNT; t++) assert_int_equal(qt.n_keep[t], 0);
                double et = layer_err(f, 0, &qt), e0 = layer_err(f, 0, &q0);
                if (et != e0) printf("%s keep 0.05%%: %.17g vs %.17g\n", label(base[si]), et, e0);
                assert_true(et == e0);
                aw_qblock_destroy(&q0);
                aw_qblock_destroy(&qt);
            }
            printf("%-22s %-5s layer error / fp change: keep 0%% %.4g, 1%% %.4g, 10%% %.4g (x%.3g)\n",
                   label(base[si]), aw_method_names[k], e[0], e[1], e[2], e[0] / e[2]);
            assert_true(e[1] < e[0]);
            /* the outlier channels in fp: much less error without a fold,
             * less after AWEQ's (which already tames them) */
            assert_true(e[2] < (k == AW_METHOD_RTN ? 0.25 : 0.75) * e[0]);
        }
    }
}

/* ---- (e) the sampled objective ------------------------------------------------------------- */

/* The sampled objective of factors s at tap recomputed here from the host
 * sample: sum over consumers of ||Q_a(X/s) Q(W diag s)^T - X W^T||^2. */
static double direct_sampled(fixture *f, int layer, const aw_method *m, aw_tap_id tap, const float *s)
{
    const aw_stats *st = &f->st[layer];
    const aw_arch *a = aw_arch_of(&f->cfg);
    const aw_scheme *sc = &m->scheme;
    int n = st->samp_rows, in = st->in[tap];
    float *xq = malloc((size_t)n * in * sizeof *xq);
    assert_non_null(xq);
    for (int r = 0; r < n; r++)
        for (int j = 0; j < in; j++) xq[(size_t)r * in + j] = st->sample[tap][(size_t)r * in + j] / s[j];
    aw_k_act_fakequant(xq, xq, n, in, sc->abits, sc->agroup, NULL);
    double e = 0.0;
    for (int l = 0; l < a->n_lin; l++) {
        if (a->lin[l].tap != tap) continue;
        const aw_linear *ln = &f->fp[layer].lin[l];
        int out = ln->out, ng = aw_scheme_groups(sc, in);
        float *w = malloc((size_t)out * in * sizeof *w), *step = malloc((size_t)out * ng * sizeof *step);
        float *y = malloc((size_t)n * out * sizeof *y), *yr = malloc((size_t)n * out * sizeof *yr);
        uint8_t *q = malloc((size_t)out * in), *z = malloc((size_t)out * ng);
        assert_true(w && step && y && yr && q && z);
        memcpy(w, ln->w, (size_t)out * in * sizeof *w);
        aw_k_scale_cols(w, out, in, s);
        aw_k_group_params(w, out, in, sc->group, sc->wbits, sc->sym, m->scale_dtype, step, z);
        aw_k_group_quantize(w, out, in, sc->group, sc->wbits, step, z, q);
        aw_k_group_dequantize(q, step, z, out, in, sc->group, w);
        aw_k_linear(xq, w, NULL, y, n, in, out);
        aw_k_linear(st->sample[tap], ln->w, NULL, yr, n, in, out);
        double se = 0.0, sr = 0.0;
        aw_k_err_sums(yr, y, (size_t)n * out, &se, &sr);
        e += se;
        free(w);
        free(step);
        free(y);
        free(yr);
        free(q);
        free(z);
    }
    free(xq);
    return e;
}

static void test_sampled_search(void **state)
{
    fixture *f = *state;
    const aw_model_config *c = &f->cfg;
    aw_block eq, fp32;
    float *sv[AW_TAP_COUNT], *ones = malloc((size_t)aw_arch_max_width(c) * sizeof(float));
    assert_non_null(ones);
    for (int j = 0; j < aw_arch_max_width(c); j++) ones[j] = 1.0f;
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        sv[t] = malloc((size_t)f->st[0].in[t] * sizeof(float));
        assert_non_null(sv[t]);
    }
    aw_assert_status(aw_block_create(c, AW_DT_F32, &eq), AW_OK, NULL);
    aw_assert_status(aw_block_create(c, AW_DT_F32, &fp32), AW_OK, NULL);
    const aw_scheme *scs[] = {&w4a4_g32, &w4a4_tok};
    for (int si = 0; si < 2; si++)
        for (int k = AW_METHOD_AWQ; k <= AW_METHOD_AWEQ_SEARCH; k++) {
            aw_method m = method((aw_method_kind)k, scs[si]);
            double sum0 = 0.0, sumc = 0.0, worst = 0.0;
            for (int l = 0; l < NL; l++) {
                aw_search_tap tr[AW_TAP_COUNT];
                aw_assert_status(aw_block_convert(&fp32, &f->fp[l]), AW_OK, NULL);
                aw_assert_status(aw_equalize_searched(c, &f->fp[l], &f->st[l], &m, &eq, sv, tr), AW_OK, NULL);
                for (int t = 0; t < AW_TAP_COUNT; t++) {
                    aw_tap_id tap = (aw_tap_id)t;
                    if (tr[t].chosen < 0) continue;
                    double o_c, o_1;
                    aw_assert_status(aw_search_objective(c, &fp32, &f->st[l], &m, tap, sv[t], &o_c), AW_OK, NULL);
                    aw_assert_status(aw_search_objective(c, &fp32, &f->st[l], &m, tap, ones, &o_1), AW_OK, NULL);
                    /* what the search saw is the sampled objective */
                    assert_true(tr[t].obj[tr[t].chosen] == o_c);
                    for (int g = 0; g < AW_SEARCH_GRID; g++) assert_true(o_c <= tr[t].obj[g]);
                    if (k == AW_METHOD_AWQ) {
                        assert_true(tr[t].obj[0] == o_1); /* alpha 0: s = 1 */
                        assert_true(o_c <= o_1);
                    }
                    double od = direct_sampled(f, l, &m, tap, sv[t]);
                    double rel = fabs(od - o_c) / od;
                    worst = rel > worst ? rel : worst;
                    assert_true(rel < 1e-6);
                    sum0 += tr[t].obj[0], sumc += o_c;
                }
            }
            printf("%-24s %-11s sampled objective over the searched taps: alpha 0 %.4g, chosen %.4g "
                   "(direct recomputation within %.2g)\n",
                   label(scs[si]), aw_method_names[k], sum0, sumc, worst);
            assert_true(sumc <= sum0);
        }
    /* for plans: at least the widest tap's sample and its fold */
    assert_true(aw_search_sample_bytes(c, &w4a4_g32, AW_SAMPLE_TOKENS) >
                2 * (uint64_t)AW_SAMPLE_TOKENS * aw_arch_max_width(c) * sizeof(float));
    /* aweq+search on a dynamic scheme needs the sample, not the Gram */
    aw_method m = method(AW_METHOD_AWEQ_SEARCH, &w4a4_g32);
    assert_false(aw_method_needs_gram(&m));
    assert_true(aw_method_needs_sample(&m));
    m.kind = AW_METHOD_AWQ; /* the sample and the |x| sums */
    assert_true(!aw_method_needs_gram(&m) && aw_method_needs_sample(&m));
    m.scheme = w4_g32;
    assert_false(aw_method_needs_sample(&m));
    assert_true(aw_method_needs_gram(&m));
    aw_block_destroy(&eq);
    aw_block_destroy(&fp32);
    for (int t = 0; t < AW_TAP_COUNT; t++) free(sv[t]);
    free(ones);
}

/* ---- (f) refusals -------------------------------------------------------------------------- */

static void test_refused(void **state)
{
    fixture *f = *state;
    const aw_model_config *c = &f->cfg;
    aw_scheme k4 = w4a4_g32, k8 = AW_SCHEME_W8A8, kw = w4_g32;
    k4.keep_pct = k8.keep_pct = kw.keep_pct = 5.0;
    const aw_scheme *keeps[] = {&k4, &kw};
    for (int si = 0; si < 2; si++)
        for (int k = AW_METHOD_AWQ; k < AW_METHOD_COUNT; k++) {
            aw_method m = method((aw_method_kind)k, keeps[si]);
            aw_qblock q;
            aw_assert_status(quantize(f, 0, &m, NULL, &q), AW_ERR_ARG, "--keep-salient");
            aw_qblock_destroy(&q);
        }
    /* a dynamic search without a sample */
    aw_stats plain;
    aw_assert_status(aw_stats_create(c, AW_STATS_GRAM, &plain), AW_OK, NULL);
    plain.tokens = f->st[0].tokens;
    for (int t = 0; t < AW_TAP_COUNT; t++)
        for (int j = 0; j < plain.in[t]; j++) {
            plain.absmax[t][j] = f->st[0].absmax[t][j];
            plain.sum[t][j] = f->st[0].sum[t][j];
            plain.abssum[t][j] = f->st[0].abssum[t][j];
        }
    for (int k = AW_METHOD_AWQ; k <= AW_METHOD_AWEQ_SEARCH; k++) {
        aw_method m = method((aw_method_kind)k, &w4a4_g32);
        aw_qblock q;
        aw_assert_status(quantize(f, 0, &m, &plain, &q), AW_ERR_ARG, "sample");
        aw_qblock_destroy(&q);
    }
    /* rtn and aweq need neither */
    for (int k = AW_METHOD_RTN; k <= AW_METHOD_AWEQ; k++) {
        aw_method m = method((aw_method_kind)k, &w4a4_g32);
        aw_qblock q;
        aw_assert_status(quantize(f, 0, &m, &plain, &q), AW_OK, NULL);
        aw_qblock_destroy(&q);
    }
    aw_stats_destroy(&plain);
    /* a block of another scheme: every field counts */
    aw_scheme other[] = {w4a4_tok, w4a8_g32, w4_g32, k4, AW_SCHEME_W8A8};
    for (int i = 0; i < 5; i++) {
        aw_method m = method(AW_METHOD_RTN, i < 4 ? &w4a4_g32 : &k8);
        aw_qblock q;
        aw_assert_status(aw_qblock_create(c, &other[i], &q), AW_OK, NULL);
        aw_assert_status(aw_quantize_block(c, 0, &f->fp[0], &f->st[0], &m, &q), AW_ERR_ARG, "another scheme");
        aw_qblock_destroy(&q);
    }
    /* W8A8 with a search method */
    aw_scheme w8 = AW_SCHEME_W8A8;
    aw_method m = method(AW_METHOD_AWQ, &w8);
    aw_qblock q;
    aw_assert_status(quantize(f, 0, &m, NULL, &q), AW_ERR_ARG, "dynamic");
    aw_qblock_destroy(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample),
        cmocka_unit_test(test_dynamic),
        cmocka_unit_test(test_abssum_only),
        cmocka_unit_test(test_staged_equals_cpu),
        cmocka_unit_test(test_keep),
        cmocka_unit_test(test_sampled_search),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
