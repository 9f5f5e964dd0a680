/*
 * test_quant_wo.c - the weight-only methods (aw_quant_wo.c) on small
 * generated models, OPT and LLaMA-shaped (grouped-query attention), with
 * the generator's outlier channels, for W4 g32 sym, W4 per-channel asym and
 * W3 g32 asym:
 *   (a) every method makes codes and zero points in range, finite positive
 *       steps, finite biases and factors, the same bytes twice;
 *   (b) GPTQ's output error on held-out activations (fp inputs) is below
 *       RTN's on every linear of every layer, with and without act-order;
 *   (c) the search objectives: awq's <= RTN's (alpha 0 is on its grid),
 *       aweq+search's <= AWEQ's, at every tap; the objective from the Gram
 *       matrix equals the one computed from the activations themselves;
 *   (d) the searched folds keep the fp model's function (logits);
 *   (e) wrong uses fail cleanly: W8A8 with a weight-only method, statistics
 *       without Gram matrices, NaN weights;
 *   (f) aw_quantize_block_ops on the staged table (the device data path:
 *       block, quantized block and scratch in "device" memory) gives the
 *       CPU's bytes for every method, with and without act-order, from F32
 *       and BF16 blocks; the device copy holds the same bytes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#define NL 3       /* layers of the generated models */
#define CALIB 40   /* calibration sequences */
#define HOLD 8     /* held-out sequences after them */
#define CHUNK 8    /* sequences per block of samples */

static const aw_scheme schemes[] = {
    {.wbits = 4, .group = 32, .sym = 1, .act = AW_ACT_FLOAT},
    {.wbits = 4, .group = 0, .sym = 0, .act = AW_ACT_FLOAT},
    {.wbits = 3, .group = 32, .sym = 0, .act = AW_ACT_FLOAT},
};
#define N_SCHEMES (int)(sizeof schemes / sizeof schemes[0])

/* One generated model, loaded, calibrated with Gram matrices, and its
 * held-out tap inputs. */
typedef struct {
    aw_model_config cfg;
    aw_model_files *mf;
    aw_tokens tok;
    aw_model_ends ends;
    aw_block fp[NL];          /* F32 */
    aw_stats st[NL];          /* calibration, with Gram */
    aw_stats sth[NL];         /* held-out, with Gram (objective cross-check) */
    float *xh[NL][AW_TAP_COUNT]; /* (HOLD * L, in) held-out inputs of each tap */
    aw_fwd_ws ws;
    float *gram_scratch;      /* the f32 Gram of one block of samples, shared */
} model;

typedef struct {
    char *dir;
    model opt, llama;
} fixture;

static char *join(const char *a, const char *b)
{
    char *p = aw_path_join(a, b);
    assert_non_null(p);
    return p;
}

static void synth(const char *out, const char *shape, int heads, int kv_heads, int ffn)
{
    aw_synth_opts o;
    aw_synth_defaults(&o, aw_shape_find(shape));
    o.cfg.name[0] = '\0';
    o.cfg.hidden_size = 128;
    o.cfg.word_embed_proj_dim = 128;
    o.cfg.num_hidden_layers = NL;
    o.cfg.num_attention_heads = heads;
    if (kv_heads) {
        o.cfg.num_key_value_heads = kv_heads;
        o.cfg.head_dim = 128 / heads;
    }
    o.cfg.ffn_dim = ffn;
    o.cfg.vocab_size = 2000;
    o.cfg.max_position_embeddings = 128;
    o.cfg.torch_dtype = AW_DT_F32;
    o.calib_seqs = CALIB + HOLD;
    o.calib_len = 64;
    o.max_shard_bytes = 400000;
    aw_assert_status(aw_synth_write(&o, out), AW_OK, NULL);
}

typedef struct {
    model *m;
    int layer;
} hold_ctx;

/* Tap observer of the held-out forward: keeps the inputs and their Gram. */
static aw_status keep_tap(void *ctx, aw_tap_id tap, const float *x, int T, int in)
{
    hold_ctx *h = ctx;
    memcpy(h->m->xh[h->layer][tap], x, (size_t)T * in * sizeof(float));
    return aw_stats_observe(&h->m->sth[h->layer], tap, x, T, in);
}

static void add_part(aw_stats *s)
{
    double *part = malloc(aw_stats_part_len(s) * sizeof(double));
    assert_non_null(part);
    aw_assert_status(aw_stats_take_part(s, part), AW_OK, NULL);
    aw_stats_add_part(s, part);
    free(part);
}

static void model_load(model *m, const char *dir)
{
    memset(m, 0, sizeof *m);
    char *cfg = join(dir, "config.json"), *tp = join(dir, "calibration.tokens");
    aw_assert_status(aw_config_read(cfg, &m->cfg), AW_OK, NULL);
    aw_assert_status(aw_mf_open(dir, &m->mf), AW_OK, NULL);
    aw_assert_status(aw_tokens_read(tp, &m->tok), AW_OK, NULL);
    aw_assert_status(aw_ends_load(&m->cfg, m->mf, &m->ends), AW_OK, NULL);
    assert_true(m->tok.n_seq >= CALIB + HOLD);
    int L = (int)m->tok.seq_len, d = m->cfg.hidden_size;
    aw_assert_status(aw_fwd_ws_create(&m->cfg, HOLD > CHUNK ? HOLD : CHUNK, L, &m->ws), AW_OK, NULL);
    m->gram_scratch = calloc(aw_stats_gram_scratch_floats(&m->cfg), sizeof(float));
    assert_non_null(m->gram_scratch);
    for (int l = 0; l < NL; l++) {
        aw_assert_status(aw_block_create(&m->cfg, AW_DT_F32, &m->fp[l]), AW_OK, NULL);
        aw_assert_status(aw_block_load(&m->cfg, m->mf, l, &m->fp[l]), AW_OK, NULL);
        aw_assert_status(aw_stats_create(&m->cfg, AW_STATS_GRAM, &m->st[l]), AW_OK, NULL);
        aw_assert_status(aw_stats_create(&m->cfg, AW_STATS_GRAM, &m->sth[l]), AW_OK, NULL);
        /* each layer's part is taken right after its forward */
        aw_stats_use_gram_scratch(&m->st[l], m->gram_scratch, m->gram_scratch);
        aw_stats_use_gram_scratch(&m->sth[l], m->gram_scratch, m->gram_scratch);
        for (int t = 0; t < AW_TAP_COUNT; t++) {
            m->xh[l][t] = malloc((size_t)HOLD * L * m->st[l].in[t] * sizeof(float));
            assert_non_null(m->xh[l][t]);
        }
    }
    float *hs = malloc((size_t)CHUNK * L * d * sizeof(float));
    assert_non_null(hs);
    /* calibration in blocks of CHUNK sequences, each block's sums a part */
    for (int b = 0; b < CALIB; b += CHUNK) {
        aw_model_embed(&m->cfg, &m->ends, m->tok.ids + (size_t)b * L, CHUNK, L, hs);
        for (int l = 0; l < NL; l++) {
            aw_assert_status(aw_block_forward(&m->cfg, &m->fp[l], NULL, hs, CHUNK, L, &m->ws, aw_stats_observe,
                                              &m->st[l]),
                             AW_OK, NULL);
            add_part(&m->st[l]);
        }
    }
    free(hs);
    hs = malloc((size_t)HOLD * L * d * sizeof(float));
    assert_non_null(hs);
    aw_model_embed(&m->cfg, &m->ends, m->tok.ids + (size_t)CALIB * L, HOLD, L, hs);
    for (int l = 0; l < NL; l++) {
        hold_ctx h = {m, l};
        aw_assert_status(aw_block_forward(&m->cfg, &m->fp[l], NULL, hs, HOLD, L, &m->ws, keep_tap, &h), AW_OK, NULL);
        add_part(&m->sth[l]);
        aw_stats_finish(&m->st[l]);
        aw_stats_finish(&m->sth[l]);
        assert_true(m->st[l].tokens == (uint64_t)CALIB * L);
        assert_true(m->sth[l].tokens == (uint64_t)HOLD * L);
    }
    free(hs);
    free(cfg);
    free(tp);
}

static void model_free(model *m)
{
    for (int l = 0; l < NL; l++) {
        aw_block_destroy(&m->fp[l]);
        aw_stats_destroy(&m->st[l]);
        aw_stats_destroy(&m->sth[l]);
        for (int t = 0; t < AW_TAP_COUNT; t++) free(m->xh[l][t]);
    }
    aw_fwd_ws_destroy(&m->ws);
    free(m->gram_scratch);
    aw_ends_destroy(&m->ends);
    aw_tokens_free(&m->tok);
    aw_mf_close(m->mf);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = aw_test_tmpdir();
    char *opt = join(f->dir, "opt"), *ll = join(f->dir, "llama");
    synth(opt, "opt-125m", 4, 0, 512);
    /* grouped-query: 8 heads, 4 KV heads (v -> o is a grouped row fold) and
     * an FFN width that is not a multiple of the group */
    synth(ll, "llama-160m", 8, 4, 344);
    model_load(&f->opt, opt);
    model_load(&f->llama, ll);
    assert_int_equal(f->llama.cfg.family, AW_FAMILY_LLAMA);
    assert_true(aw_arch_fold_rows(&f->llama.cfg, AW_TAP_ATTN_OUT) != aw_arch_tap_width(&f->llama.cfg, AW_TAP_ATTN_OUT));
    free(opt);
    free(ll);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    model_free(&f->opt);
    model_free(&f->llama);
    aw_test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static aw_method method(aw_method_kind k, const aw_scheme *sc, int act_order)
{
    aw_method m = {.kind = k, .alpha = 0.5f,
                   .bias_correction = k == AW_METHOD_AWEQ || k == AW_METHOD_AWEQ_SEARCH,
                   .param_dtype = AW_DT_F32, .scale_dtype = AW_DT_F16, .scheme = *sc, .act_order = act_order};
    return m;
}

static const char *label(const aw_scheme *sc)
{
    static char buf[64];
    return aw_scheme_label(sc, buf, sizeof buf);
}

/* (a) for one block quantized with m into q. */
static void check_ranges(const model *md, const aw_method *m, const aw_qblock *q)
{
    const aw_scheme *sc = &m->scheme;
    int maxq = (1 << sc->wbits) - 1;
    for (int l = 0; l < q->n_lin; l++) {
        const aw_qlinear *ql = &q->lin[l];
        assert_non_null(ql->codes);
        assert_null(ql->wq);
        assert_int_equal(ql->group, sc->group);
        int ng = aw_scheme_groups(sc, ql->in);
        int used = 0;
        for (size_t k = 0; k < (size_t)ql->in * ql->out; k++) {
            assert_true(ql->codes[k] <= maxq);
            used |= 1 << (ql->codes[k] & 7);
        }
        assert_true(used != 1); /* not all codes zero */
        for (size_t k = 0; k < (size_t)ql->out * ng; k++) {
            assert_true(isfinite(ql->wstep[k]) && ql->wstep[k] > 0.0f);
            assert_true(ql->wzero[k] <= maxq);
            if (sc->sym) assert_int_equal(ql->wzero[k], 1 << (sc->wbits - 1));
        }
        for (int i = 0; i < ql->out; i++) assert_true(isfinite(ql->bias[i]) && isfinite(ql->bias_plain[i]));
    }
    for (int t = 0; t < AW_TAP_COUNT; t++)
        for (int j = 0; j < md->st[0].in[t]; j++) assert_true(isfinite(q->s[t][j]) && q->s[t][j] > 0.0f);
}

static void check_all_ranges(model *md)
{
    uint64_t qb = 0;
    for (int si = 0; si < N_SCHEMES; si++) {
        const aw_scheme *sc = &schemes[si];
        qb = aw_qblock_bytes(&md->cfg, sc);
        for (int k = 0; k < AW_METHOD_COUNT; k++) {
            aw_method m = method((aw_method_kind)k, sc, 0);
            for (int l = 0; l < NL; l++) {
                aw_qblock q, q2;
                aw_assert_status(aw_qblock_create(&md->cfg, sc, &q), AW_OK, NULL);
                aw_assert_status(aw_quantize_block(&md->cfg, l, &md->fp[l], &md->st[l], &m, &q), AW_OK, NULL);
                check_ranges(md, &m, &q);
                if (k == AW_METHOD_RTN || k == AW_METHOD_GPTQ)
                    for (int t = 0; t < AW_TAP_COUNT; t++)
                        for (int j = 0; j < md->st[l].in[t]; j++) assert_true(q.s[t][j] == 1.0f);
                if (l == 1) { /* the same bytes again */
                    aw_assert_status(aw_qblock_create(&md->cfg, sc, &q2), AW_OK, NULL);
                    aw_assert_status(aw_quantize_block(&md->cfg, l, &md->fp[l], &md->st[l], &m, &q2), AW_OK, NULL);
                    assert_memory_equal(q.arena, q2.arena, qb);
                    aw_qblock_destroy(&q2);
                }
                aw_qblock_destroy(&q);
            }
        }
    }
}

static void test_codes_in_range(void **state)
{
    fixture *f = *state;
    check_all_ranges(&f->opt);
    check_all_ranges(&f->llama);
}

/* sum over the held-out tokens of ||(Wq - W) x||^2 for linear l. */
static double heldout_err(const model *md, int layer, int l, const aw_qlinear *ql, float *dw, float *y)
{
    const aw_linear *ln = &md->fp[layer].lin[l];
    int T = HOLD * (int)md->tok.seq_len;
    aw_k_group_dequantize(ql->codes, ql->wstep, ql->wzero, ln->out, ln->in, ql->group, dw);
    const float *w = ln->w;
    for (size_t k = 0; k < (size_t)ln->in * ln->out; k++) dw[k] -= w[k];
    aw_k_linear(md->xh[layer][aw_linear_tap(&md->cfg, l)], dw, NULL, y, T, ln->in, ln->out);
    double e = 0.0;
    for (size_t k = 0; k < (size_t)T * ln->out; k++) e += (double)y[k] * y[k];
    return e;
}

static void check_gptq(model *md)
{
    const aw_arch *a = aw_arch_of(&md->cfg);
    int T = HOLD * (int)md->tok.seq_len;
    float *dw = malloc(aw_arch_max_linear(&md->cfg) * sizeof(float));
    float *y = malloc((size_t)T * aw_arch_max_width(&md->cfg) * sizeof(float));
    assert_true(dw && y);
    for (int si = 0; si < N_SCHEMES; si++) {
        const aw_scheme *sc = &schemes[si];
        for (int ao = 0; ao < 2; ao++) {
            aw_method mr = method(AW_METHOD_RTN, sc, 0), mg = method(AW_METHOD_GPTQ, sc, ao);
            double worst = 0.0;
            for (int l = 0; l < NL; l++) {
                aw_qblock qr, qg;
                aw_assert_status(aw_qblock_create(&md->cfg, sc, &qr), AW_OK, NULL);
                aw_assert_status(aw_qblock_create(&md->cfg, sc, &qg), AW_OK, NULL);
                aw_assert_status(aw_quantize_block(&md->cfg, l, &md->fp[l], &md->st[l], &mr, &qr), AW_OK, NULL);
                aw_assert_status(aw_quantize_block(&md->cfg, l, &md->fp[l], &md->st[l], &mg, &qg), AW_OK, NULL);
                for (int k = 0; k < a->n_lin; k++) {
                    double er = heldout_err(md, l, k, &qr.lin[k], dw, y);
                    double eg = heldout_err(md, l, k, &qg.lin[k], dw, y);
                    if (eg / er > worst) worst = eg / er;
                    if (!(eg < er))
                        printf("%s %s%s layer %d %s: gptq %.4g rtn %.4g\n", aw_family_name(md->cfg.family), label(sc),
                               ao ? " act-order" : "", l, a->lin[k].name, eg, er);
                    assert_true(eg < er);
                }
                aw_qblock_destroy(&qr);
                aw_qblock_destroy(&qg);
            }
            printf("%s %-20s gptq%s held-out error / rtn's: at most %.3f over every linear\n",
                   aw_family_name(md->cfg.family), label(sc), ao ? " act-order" : "          ", worst);
        }
    }
    free(dw);
    free(y);
}

static void test_gptq_beats_rtn(void **state)
{
    fixture *f = *state;
    check_gptq(&f->opt);
    check_gptq(&f->llama);
}

/* The objective of factors s at tap computed from the activations: sum over
 * consumers of ||(Q(W diag s) diag(1/s) - W) x||^2 over the held-out x. */
static double direct_objective(const model *md, int layer, const aw_method *m, aw_tap_id tap, const float *s)
{
    const aw_arch *a = aw_arch_of(&md->cfg);
    const aw_scheme *sc = &m->scheme;
    int T = HOLD * (int)md->tok.seq_len;
    double e = 0.0;
    for (int l = 0; l < a->n_lin; l++) {
        if (a->lin[l].tap != tap) continue;
        const aw_linear *ln = &md->fp[layer].lin[l];
        int in = ln->in, out = ln->out, ng = aw_scheme_groups(sc, in);
        size_t n = (size_t)in * out;
        float *w = malloc(n * sizeof *w), *step = malloc((size_t)out * ng * sizeof *step);
        float *y = malloc((size_t)T * out * sizeof *y);
        uint8_t *q = malloc(n), *z = malloc((size_t)out * ng);
        assert_true(w && step && y && q && z);
        memcpy(w, ln->w, n * sizeof *w);
        aw_k_scale_cols(w, out, in, s);
        aw_k_group_params(w, out, in, sc->group, sc->wbits, sc->sym, m->scale_dtype, step, z);
        aw_k_group_quantize(w, out, in, sc->group, sc->wbits, step, z, q);
        aw_k_group_dequantize(q, step, z, out, in, sc->group, w);
        const float *w0 = ln->w;
        for (int i = 0; i < out; i++)
            for (int j = 0; j < in; j++) {
                size_t k = (size_t)i * in + j;
                w[k] = (float)((double)w[k] / s[j] - w0[k]);
            }
        aw_k_linear(md->xh[layer][tap], w, NULL, y, T, in, out);
        for (size_t k = 0; k < (size_t)T * out; k++) e += (double)y[k] * y[k];
        free(w);
        free(step);
        free(y);
        free(q);
        free(z);
    }
    return e;
}

static void check_search(model *md)
{
    const aw_model_config *c = &md->cfg;
    const aw_arch *a = aw_arch_of(c);
    aw_block eq, fp32;
    float *s_aweq[AW_TAP_COUNT], *s_aq[AW_TAP_COUNT], *s_as[AW_TAP_COUNT], *ones;
    size_t n_s = 0;
    for (int t = 0; t < AW_TAP_COUNT; t++) n_s += (size_t)md->st[0].in[t];
    float *s_all = malloc(3 * n_s * sizeof(float));
    ones = malloc((size_t)aw_arch_max_width(c) * sizeof(float));
    assert_true(s_all && ones);
    for (int j = 0; j < aw_arch_max_width(c); j++) ones[j] = 1.0f;
    float *p = s_all;
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        s_aweq[t] = p, p += md->st[0].in[t];
        s_aq[t] = p, p += md->st[0].in[t];
        s_as[t] = p, p += md->st[0].in[t];
    }
    aw_assert_status(aw_block_create(c, AW_DT_F32, &eq), AW_OK, NULL);
    aw_assert_status(aw_block_create(c, AW_DT_F32, &fp32), AW_OK, NULL);
    for (int si = 0; si < N_SCHEMES; si++) {
        const aw_scheme *sc = &schemes[si];
        aw_method maw = method(AW_METHOD_AWEQ, sc, 0), maq = method(AW_METHOD_AWQ, sc, 0),
                  mas = method(AW_METHOD_AWEQ_SEARCH, sc, 0);
        double sum_rtn = 0, sum_aq = 0, sum_aw = 0, sum_as = 0, gram_vs_direct = 0;
        for (int l = 0; l < NL; l++) {
            aw_search_tap tq[AW_TAP_COUNT], ts[AW_TAP_COUNT];
            aw_assert_status(aw_block_convert(&fp32, &md->fp[l]), AW_OK, NULL);
            aw_assert_status(aw_equalize_block(c, &md->fp[l], &md->st[l], &maw, &eq, s_aweq), AW_OK, NULL);
            aw_assert_status(aw_equalize_searched(c, &md->fp[l], &md->st[l], &maq, &eq, s_aq, tq), AW_OK, NULL);
            aw_assert_status(aw_equalize_searched(c, &md->fp[l], &md->st[l], &mas, &eq, s_as, ts), AW_OK, NULL);
            for (int t = 0; t < AW_TAP_COUNT; t++) {
                aw_tap_id tap = (aw_tap_id)t;
                double o_rtn, o_aw, o_aq, o_as;
                aw_assert_status(aw_search_objective(c, &fp32, &md->st[l], &maq, tap, ones, &o_rtn), AW_OK, NULL);
                aw_assert_status(aw_search_objective(c, &fp32, &md->st[l], &maq, tap, s_aweq[t], &o_aw), AW_OK, NULL);
                aw_assert_status(aw_search_objective(c, &fp32, &md->st[l], &maq, tap, s_aq[t], &o_aq), AW_OK, NULL);
                aw_assert_status(aw_search_objective(c, &fp32, &md->st[l], &maq, tap, s_as[t], &o_as), AW_OK, NULL);
                assert_true(o_rtn > 0.0 && isfinite(o_rtn));
                int grouped = a->tap[t].fold == AW_FOLD_ROWS && aw_arch_fold_rows(c, tap) != md->st[l].in[t];
                /* awq: searched everywhere but at a grouped-query v -> o */
                assert_int_equal(tq[t].chosen < 0, grouped);
                assert_true(ts[t].chosen >= 0);
                if (tq[t].chosen >= 0) {
                    /* a tap's consumers are the original ones when it is
                     * searched: the objective it saw is the one recomputed */
                    assert_true(tq[t].obj[tq[t].chosen] == o_aq);
                    assert_true(tq[t].obj[0] == o_rtn); /* alpha 0: s = 1 */
                    for (int g = 0; g < AW_SEARCH_GRID; g++) assert_true(o_aq <= tq[t].obj[g]);
                } else {
                    for (int j = 0; j < md->st[l].in[t]; j++) assert_true(s_aq[t][j] == 1.0f);
                    assert_true(o_aq == o_rtn);
                }
                assert_true(ts[t].obj[ts[t].chosen] == o_as);
                for (int g = 0; g < AW_SEARCH_GRID; g++) assert_true(o_as <= ts[t].obj[g]);
                /* grid value 10 is AWEQ's alpha 0.5 on the block the search
                 * saw: at the norm taps that is AWEQ's own factor, so
                 * aweq+search <= aweq by construction; at the row folds the
                 * clamp reads the producer's rows, which the earlier taps'
                 * (different) factors scaled, so there it is <= the grid's
                 * 0.5 by construction and <= AWEQ's own on these models */
                if (a->tap[t].fold == AW_FOLD_NORM) assert_true(ts[t].obj[AW_SEARCH_GRID / 2] == o_aw);
                if (o_as > o_aw)
                    printf("%s %s layer %d %s: aweq+search %.6g above aweq %.6g\n", aw_family_name(c->family),
                           label(sc), l, a->tap[t].name, o_as, o_aw);
                assert_true(o_aq <= o_rtn);
                assert_true(o_as <= o_aw);
                sum_rtn += o_rtn, sum_aq += o_aq, sum_aw += o_aw, sum_as += o_as;
                /* the Gram form is the activations' sum of squares */
                if (si == 0) {
                    double og, od = direct_objective(md, l, &maq, tap, s_aq[t]);
                    aw_assert_status(aw_search_objective(c, &fp32, &md->sth[l], &maq, tap, s_aq[t], &og), AW_OK, NULL);
                    double rel = fabs(og - od) / od;
                    gram_vs_direct = rel > gram_vs_direct ? rel : gram_vs_direct;
                    assert_true(rel < 1e-3);
                }
            }
        }
        printf("%s %-20s search objective over all taps: rtn %.4g awq %.4g aweq %.4g aweq+search %.4g",
               aw_family_name(c->family), label(sc), sum_rtn, sum_aq, sum_aw, sum_as);
        if (si == 0) printf(" (Gram vs activations: %.2g)", gram_vs_direct);
        printf("\n");
        assert_true(sum_aq < sum_rtn); /* the search found something better than no scaling */
    }
    aw_block_destroy(&eq);
    aw_block_destroy(&fp32);
    free(s_all);
    free(ones);
}

static void test_search_objectives(void **state)
{
    fixture *f = *state;
    check_search(&f->opt);
    check_search(&f->llama);
}

/* Logits of the held-out sequences through blocks. */
static float *logits_of(model *md, const aw_block *blocks)
{
    int L = (int)md->tok.seq_len, d = md->cfg.hidden_size, V = md->cfg.vocab_size, T = HOLD * L;
    float *hs = malloc((size_t)T * d * sizeof(float)), *x = malloc((size_t)T * d * sizeof(float));
    float *lg = malloc((size_t)T * V * sizeof(float));
    assert_true(hs && x && lg);
    aw_model_embed(&md->cfg, &md->ends, md->tok.ids + (size_t)CALIB * L, HOLD, L, hs);
    for (int l = 0; l < NL; l++)
        aw_assert_status(aw_block_forward(&md->cfg, &blocks[l], NULL, hs, HOLD, L, &md->ws, NULL, NULL), AW_OK, NULL);
    aw_model_logits(&md->cfg, &md->ends, hs, x, lg, T);
    free(hs);
    free(x);
    return lg;
}

static void check_folds_exact(model *md)
{
    const aw_model_config *c = &md->cfg;
    float *ref = logits_of(md, md->fp);
    size_t n = (size_t)HOLD * md->tok.seq_len * c->vocab_size;
    aw_qblock q;
    aw_assert_status(aw_qblock_create(c, &schemes[0], &q), AW_OK, NULL);
    for (int k = AW_METHOD_AWQ; k <= AW_METHOD_AWEQ_SEARCH; k++) {
        aw_method m = method((aw_method_kind)k, &schemes[0], 0);
        aw_block eq[NL];
        float lo = INFINITY, hi = 0.0f;
        for (int l = 0; l < NL; l++) {
            aw_assert_status(aw_block_create(c, AW_DT_F32, &eq[l]), AW_OK, NULL);
            aw_assert_status(aw_equalize_block(c, &md->fp[l], &md->st[l], &m, &eq[l], q.s), AW_OK, NULL);
            for (int t = 0; t < AW_TAP_COUNT; t++)
                for (int j = 0; j < md->st[l].in[t]; j++) lo = fminf(lo, q.s[t][j]), hi = fmaxf(hi, q.s[t][j]);
        }
        float *lg = logits_of(md, eq);
        double err = 0, r = 0;
        aw_k_err_sums(ref, lg, n, &err, &r);
        double rel = sqrt(err / r);
        printf("%s %-11s searched folds vs original logits: relative difference %.3g (factors %.3g .. %.3g)\n",
               aw_family_name(c->family), aw_method_names[k], rel, lo, hi);
        assert_true(rel < 1e-4);
        assert_true(hi > 1.5f * lo); /* the folds moved the weights */
        free(lg);
        for (int l = 0; l < NL; l++) aw_block_destroy(&eq[l]);
    }
    aw_qblock_destroy(&q);
    free(ref);
}

static void test_searched_folds_are_exact(void **state)
{
    fixture *f = *state;
    check_folds_exact(&f->opt);
    check_folds_exact(&f->llama);
}

static void test_refused(void **state)
{
    fixture *f = *state;
    model *md = &f->opt;
    const aw_model_config *c = &md->cfg;
    aw_qblock q8, q4;
    aw_scheme w8a8 = AW_SCHEME_W8A8;
    aw_assert_status(aw_qblock_create(c, &w8a8, &q8), AW_OK, NULL);
    aw_assert_status(aw_qblock_create(c, &schemes[0], &q4), AW_OK, NULL);
    for (int k = AW_METHOD_AWQ; k < AW_METHOD_COUNT; k++) {
        aw_method m = method((aw_method_kind)k, &w8a8, 0);
        assert_true(aw_method_needs_gram(&m));
        aw_assert_status(aw_quantize_block(c, 0, &md->fp[0], &md->st[0], &m, &q8), AW_ERR_ARG, "weight-only");
    }
    for (int k = AW_METHOD_RTN; k < AW_METHOD_AWQ; k++) {
        aw_method m = method((aw_method_kind)k, &w8a8, 0);
        assert_false(aw_method_needs_gram(&m));
    }
    /* a W8A8 block for a weight-only scheme, and the reverse */
    aw_method m4 = method(AW_METHOD_RTN, &schemes[0], 0);
    aw_assert_status(aw_quantize_block(c, 0, &md->fp[0], &md->st[0], &m4, &q8), AW_ERR_ARG, "scheme");
    /* statistics without Gram matrices */
    aw_stats plain;
    aw_assert_status(aw_stats_create(c, AW_STATS_PLAIN, &plain), AW_OK, NULL);
    plain.tokens = md->st[0].tokens;
    for (int t = 0; t < AW_TAP_COUNT; t++)
        for (int j = 0; j < plain.in[t]; j++) {
            plain.absmax[t][j] = md->st[0].absmax[t][j];
            plain.sum[t][j] = md->st[0].sum[t][j];
        }
    for (int k = AW_METHOD_AWQ; k < AW_METHOD_COUNT; k++) {
        aw_method m = method((aw_method_kind)k, &schemes[0], 0);
        aw_assert_status(aw_quantize_block(c, 0, &md->fp[0], &plain, &m, &q4), AW_ERR_ARG, "Gram");
    }
    /* rtn, smoothquant and aweq do not need them */
    for (int k = AW_METHOD_RTN; k < AW_METHOD_AWQ; k++) {
        aw_method m = method((aw_method_kind)k, &schemes[0], 0);
        aw_assert_status(aw_quantize_block(c, 0, &md->fp[0], &plain, &m, &q4), AW_OK, NULL);
    }
    aw_stats_destroy(&plain);
    /* a NaN weight: named by layer and linear */
    aw_block bad;
    aw_assert_status(aw_block_create(c, AW_DT_F32, &bad), AW_OK, NULL);
    aw_assert_status(aw_block_convert(&bad, &md->fp[1]), AW_OK, NULL);
    ((float *)bad.lin[4].w)[7] = NAN;
    const char *name = aw_arch_of(c)->lin[4].name;
    for (int k = 0; k < AW_METHOD_COUNT; k++) {
        aw_method m = method((aw_method_kind)k, &schemes[0], 0);
        aw_status st = aw_quantize_block(c, 1, &bad, &md->st[1], &m, &q4);
        assert_int_equal(st, AW_ERR_NONFINITE);
        assert_non_null(strstr(aw_err_message(), "layer 1"));
        /* the searches fail at the tap that feeds it, the others at the linear */
        if (k != AW_METHOD_AWQ && k != AW_METHOD_AWEQ_SEARCH) assert_non_null(strstr(aw_err_message(), name));
    }
    /* method names */
    aw_method_kind kind;
    aw_assert_status(aw_method_parse("aweq+search", &kind), AW_OK, NULL);
    assert_int_equal(kind, AW_METHOD_AWEQ_SEARCH);
    aw_assert_status(aw_method_parse("gptq", &kind), AW_OK, NULL);
    assert_int_equal(kind, AW_METHOD_GPTQ);
    aw_assert_status(aw_method_parse("awq", &kind), AW_OK, NULL);
    assert_int_equal(kind, AW_METHOD_AWQ);
    aw_assert_status(aw_method_parse("gtpq", &kind), AW_ERR_ARG, "aweq+search");
    aw_block_destroy(&bad);
    aw_qblock_destroy(&q8);
    aw_qblock_destroy(&q4);
}

/* (f) for one model: every scheme, method (gptq also with act-order), from
 * its F32 blocks and a BF16 copy of layer 1. */
static void check_staged(model *md)
{
    const aw_ops *o = aw_ops_cpu_staged();
    const aw_model_config *c = &md->cfg;
    aw_block b16;
    aw_assert_status(aw_block_create(c, AW_DT_BF16, &b16), AW_OK, NULL);
    aw_assert_status(aw_block_convert(&b16, &md->fp[1]), AW_OK, NULL);
    for (int si = 0; si < N_SCHEMES; si++) {
        const aw_scheme *sc = &schemes[si];
        uint64_t qb = aw_qblock_bytes(c, sc);
        for (int k = 0; k <= AW_METHOD_COUNT; k++) {
            aw_method m = method(k == AW_METHOD_COUNT ? AW_METHOD_GPTQ : (aw_method_kind)k, sc, k == AW_METHOD_COUNT);
            for (int l = 0; l <= NL; l++) {
                const aw_block *fp = l < NL ? &md->fp[l] : &b16;
                int layer = l < NL ? l : 1;
                aw_qblock q, qs, dq;
                aw_block dfp;
                aw_assert_status(aw_qblock_create(c, sc, &q), AW_OK, NULL);
                aw_assert_status(aw_quantize_block(c, layer, fp, &md->st[layer], &m, &q), AW_OK, NULL);
                aw_assert_status(aw_block_to_dev(o, c, fp, &dfp), AW_OK, NULL);
                aw_assert_status(aw_qblock_create(c, sc, &qs), AW_OK, NULL);
                aw_assert_status(aw_qblock_dev_create(o, c, &qs, &dq), AW_OK, NULL);
                assert_true(dq.arena != qs.arena);
                aw_assert_status(aw_quantize_block_ops(o, c, layer, &dfp, &md->st[layer], &m, &dq, &qs), AW_OK,
                                 NULL);
                if (memcmp(q.arena, qs.arena, qb) != 0)
                    fail_msg("%s %s layer %d%s: staged bytes differ from the CPU's", aw_method_names[m.kind],
                             label(sc), layer, l == NL ? " (bf16)" : "");
                unsigned char *back = malloc(qb);
                assert_non_null(back);
                aw_assert_status(o->vt->to_host(o, back, dq.arena, qb), AW_OK, NULL);
                assert_memory_equal(back, q.arena, qb);
                free(back);
                for (int i = 0; i < q.n_lin; i++) assert_int_equal(qs.lin[i].group, q.lin[i].group);
                aw_qblock_dev_free(o, &dq, &qs);
                aw_block_dev_free(o, &dfp, fp);
                aw_qblock_destroy(&qs);
                aw_qblock_destroy(&q);
            }
        }
    }
    aw_block_destroy(&b16);
}

static void test_staged_equals_cpu(void **state)
{
    fixture *f = *state;
    check_staged(&f->opt);
    check_staged(&f->llama);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes_in_range),
        cmocka_unit_test(test_gptq_beats_rtn),
        cmocka_unit_test(test_search_objectives),
        cmocka_unit_test(test_searched_folds_are_exact),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_staged_equals_cpu),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
