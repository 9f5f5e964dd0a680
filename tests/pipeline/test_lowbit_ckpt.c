/*
 * test_lowbit_ckpt.c - weight-only checkpoints in compressed-tensors'
 * pack-quantized format (docs/checkpoint-format.md):
 *   - a weight-only block (codes from aw_k_group_params/quantize on random
 *     weights with outliers) survives the shard exactly (codes, steps, zero
 *     points, biases, factors) and the final checkpoint exactly as the
 *     evaluator reads it (codes, steps, zero points, biases, norms), for
 *     W4 g128 sym, W4 per-channel asym, W3 g32 sym, W8 per-channel, and on
 *     a LLaMA whose inputs are not a multiple of the group;
 *   - the written words are the library's layout, read here bit by bit;
 *   - config.json's quantization_config says pack-quantized with the
 *     scheme, and the W8A8 text is unchanged;
 *   - checkpoints written by compressed-tensors 0.20.1 itself
 *     (tests/data/ct020, tests/fixtures/make_ct020_fixture.py) decode to
 *     the values the library's own unpacking gave (pinned);
 *   - wrong dtypes, shapes, missing tensors, the older 3-bit packing and
 *     configs the program cannot run are refused naming file and tensor or
 *     key.
 * And schemes with dynamic activations, compressed-tensors' int-quantized
 * (I8 `weight` = code - 2^(b-1), `weight_scale` per group, I8
 * `weight_zero_point` when asymmetric, input_activations dynamic): the same
 * round trip with the signed values wq (W4A4 g128 per token and per group,
 * W4 asym A4, W4A8, W8 per-channel A8), checkpoints the library wrote
 * (tests/fixtures/make_ct020_dyn_fixture.py) decoded to its own values, and
 * the refusals.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_eval.h"
#include "aw_fs.h"
#include "aw_inspect.h"
#include "aw_lowbit.h"
#include "aw_model.h"
#include "aw_model_files.h"
#include "aw_quant.h"
#include "aw_safetensors.h"
#include "aw_synth.h"
#include "aw_writer.h"
#include "testutil.h"

static char *join(const char *a, const char *b)
{
    char *p = aw_path_join(a, b);
    assert_non_null(p);
    return p;
}

/* ---- random values with outliers ---------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rng_unit(uint64_t *s) { return (float)((rng_next(s) >> 40) * (1.0 / 16777216.0)); }

/* About N(0, 1): the sum of four uniforms, centred and scaled. */
static float rng_normal(uint64_t *s)
{
    return (rng_unit(s) + rng_unit(s) + rng_unit(s) + rng_unit(s) - 2.0f) * 1.7320508f;
}

/* w (out, in): 0.02 N(0,1), every 13th input channel 15x, a few single
 * weights 60x (what makes a group's step). */
static void random_weights(float *w, int out, int in, uint64_t *s)
{
    for (int r = 0; r < out; r++)
        for (int j = 0; j < in; j++) {
            float v = 0.02f * rng_normal(s);
            if (j % 13 == 5) v *= 15.0f;
            if (rng_next(s) % 997 == 0) v *= 60.0f;
            w[(size_t)r * in + j] = v;
        }
}

/* ---- models and blocks --------------------------------------------------- */

/* A generated model of one block: OPT (d 128, FFN 512: every input width a
 * multiple of 128) or LLaMA (d 128, grouped-query attention, FFN 344: the
 * down projection's inputs are no multiple of 32, 48 or 128). */
static void synth_model(const char *out, int llama, aw_dtype dt)
{
    aw_synth_opts o;
    aw_synth_defaults(&o, aw_shape_find(llama ? "llama-160m" : "opt-125m"));
    o.cfg.name[0] = '\0';
    o.cfg.hidden_size = 128;
    o.cfg.word_embed_proj_dim = 128;
    o.cfg.num_hidden_layers = 1;
    o.cfg.num_attention_heads = 8;
    o.cfg.num_key_value_heads = llama ? 2 : 8;
    o.cfg.head_dim = 16;
    o.cfg.ffn_dim = llama ? 344 : 512;
    o.cfg.vocab_size = 200;
    o.cfg.max_position_embeddings = 64;
    o.cfg.torch_dtype = dt;
    o.calib_seqs = 2;
    o.calib_len = 16;
    aw_assert_status(aw_synth_write(&o, out), AW_OK, NULL);
}

/* Every value of a weight-only block: codes, steps and zero points of
 * random weights, biases and norms already in the param dtype (as the
 * pipeline leaves them), factors > 0. */
static void fill_qblock(const aw_model_config *c, const aw_method *m, aw_qblock *q, uint64_t seed)
{
    uint64_t s = seed;
    const aw_scheme *sc = &q->scheme;
    for (int l = 0; l < q->n_lin; l++) {
        aw_qlinear *ql = &q->lin[l];
        float *w = malloc((size_t)ql->out * ql->in * sizeof *w);
        assert_non_null(w);
        random_weights(w, ql->out, ql->in, &s);
        aw_k_group_params(w, ql->out, ql->in, ql->group, sc->wbits, sc->sym, m->scale_dtype, ql->wstep, ql->wzero);
        aw_k_group_quantize(w, ql->out, ql->in, ql->group, sc->wbits, ql->wstep, ql->wzero, ql->codes);
        free(w);
        if (sc->act == AW_ACT_DYNAMIC) { /* the signed values of the integer product */
            int ng = aw_scheme_groups(sc, ql->in), glen = aw_scheme_group_len(sc, ql->in);
            for (int r = 0; r < ql->out; r++)
                for (int j = 0; j < ql->in; j++)
                    ql->wq[(size_t)r * ql->in + j] =
                        (int8_t)(ql->codes[(size_t)r * ql->in + j] - ql->wzero[(size_t)r * ng + j / glen]);
        }
        for (int i = 0; i < ql->out; i++) {
            ql->bias[i] = aw_round_to_dtype(0.1f * rng_normal(&s), m->param_dtype);
            ql->bias_plain[i] = 0.1f * rng_normal(&s);
        }
    }
    for (int n = 0; n < AW_NORM_COUNT; n++)
        for (int j = 0; j < c->hidden_size; j++) {
            q->norm_g[n][j] = aw_round_to_dtype(1.0f + 0.3f * rng_normal(&s), m->param_dtype);
            q->norm_b[n][j] = aw_arch_has_norm_bias(c) ? aw_round_to_dtype(0.1f * rng_normal(&s), m->param_dtype) : 0.0f;
        }
    for (int t = 0; t < AW_TAP_COUNT; t++)
        for (int j = 0; j < aw_arch_tap_width(c, (aw_tap_id)t); j++) q->s[t][j] = 0.25f + 4.0f * rng_unit(&s);
    aw_qblock_set_out_scales(c, q);
}

static size_t n_steps(const aw_qlinear *ql, const aw_scheme *sc)
{
    return (size_t)ql->out * (size_t)aw_scheme_groups(sc, ql->in);
}

/* The quantized values of two weight-only blocks, bit for bit. */
static void expect_same_codes(const aw_qblock *a, const aw_qblock *b)
{
    assert_int_equal(a->n_lin, b->n_lin);
    for (int l = 0; l < a->n_lin; l++) {
        const aw_qlinear *x = &a->lin[l], *y = &b->lin[l];
        assert_int_equal(x->out, y->out);
        assert_int_equal(x->in, y->in);
        assert_memory_equal(x->codes, y->codes, (size_t)x->out * x->in);
        assert_memory_equal(x->wstep, y->wstep, n_steps(x, &a->scheme) * sizeof(float));
        assert_memory_equal(x->wzero, y->wzero, n_steps(x, &a->scheme));
        assert_memory_equal(x->bias, y->bias, (size_t)x->out * sizeof(float));
        if (a->scheme.act == AW_ACT_DYNAMIC) assert_memory_equal(x->wq, y->wq, (size_t)x->out * x->in);
    }
}

static void expect_same_norms(const aw_model_config *c, const aw_qblock *a, const aw_qblock *b)
{
    for (int n = 0; n < AW_NORM_COUNT; n++) {
        assert_memory_equal(a->norm_g[n], b->norm_g[n], (size_t)c->hidden_size * sizeof(float));
        if (aw_arch_has_norm_bias(c))
            assert_memory_equal(a->norm_b[n], b->norm_b[n], (size_t)c->hidden_size * sizeof(float));
    }
}

/* ---- the written words, read bit by bit ---------------------------------- */

/* Code i of a little-endian word stream of b-bit codes (LSB first). */
static unsigned code_at(const uint32_t *w, size_t i, int b)
{
    unsigned v = 0;
    for (int k = 0; k < b; k++) {
        size_t bit = i * (size_t)b + (size_t)k;
        v |= ((w[bit / 32] >> (bit % 32)) & 1u) << k;
    }
    return v;
}

/* Linear l of q against its tensors in the final file (st): weight_packed
 * row by row, weight_zero_point column by column, unused bits zero. */
static void expect_library_layout(const aw_st_file *st, const char *base, const aw_qblock *q, int l)
{
    const aw_qlinear *ql = &q->lin[l];
    int b = q->scheme.wbits, ng = aw_scheme_groups(&q->scheme, ql->in);
    char name[160];
    snprintf(name, sizeof name, "%s.weight_packed", base);
    const aw_st_tensor *t = aw_st_find(st, name);
    assert_non_null(t);
    size_t wpr = ((size_t)ql->in * b + 31) / 32;
    assert_int_equal(t->dtype, AW_DT_I32);
    assert_int_equal(t->shape[0], ql->out);
    assert_int_equal(t->shape[1], (int64_t)wpr);
    uint32_t *w = malloc((size_t)ql->out * wpr * 4);
    assert_non_null(w);
    aw_assert_status(aw_st_read(st, t, w, (size_t)ql->out * wpr * 4), AW_OK, NULL);
    for (int r = 0; r < ql->out; r++) {
        const uint32_t *row = w + (size_t)r * wpr;
        for (int j = 0; j < ql->in; j++) assert_int_equal(code_at(row, (size_t)j, b), ql->codes[(size_t)r * ql->in + j]);
        size_t used = (size_t)ql->in * b;
        if (used % 32) assert_int_equal(row[wpr - 1] >> (used % 32), 0);
    }
    free(w);
    snprintf(name, sizeof name, "%s.weight_zero_point", base);
    t = aw_st_find(st, name);
    if (q->scheme.sym) {
        assert_null(t);
        return;
    }
    assert_non_null(t);
    size_t zr = ((size_t)ql->out * b + 31) / 32;
    assert_int_equal(t->dtype, AW_DT_I32);
    assert_int_equal(t->shape[0], (int64_t)zr);
    assert_int_equal(t->shape[1], ng);
    uint32_t *z = malloc(zr * (size_t)ng * 4), *col = malloc(zr * 4);
    assert_true(z && col);
    aw_assert_status(aw_st_read(st, t, z, zr * (size_t)ng * 4), AW_OK, NULL);
    for (int g = 0; g < ng; g++) {
        for (size_t k = 0; k < zr; k++) col[k] = z[k * (size_t)ng + (size_t)g];
        for (int r = 0; r < ql->out; r++) assert_int_equal(code_at(col, (size_t)r, b), ql->wzero[(size_t)r * ng + g]);
    }
    free(z);
    free(col);
}

/* Linear l of a dynamic scheme against its tensors in the final file:
 * `weight` I8 = code - 2^(b-1), `weight_zero_point` I8 [out, ng] = zero -
 * 2^(b-1) when asymmetric (none when symmetric), no weight_shape. */
static void expect_int_layout(const aw_st_file *st, const char *base, const aw_qblock *q, int l)
{
    const aw_qlinear *ql = &q->lin[l];
    int half = 1 << (q->scheme.wbits - 1), ng = aw_scheme_groups(&q->scheme, ql->in);
    char name[160];
    snprintf(name, sizeof name, "%s.weight", base);
    const aw_st_tensor *t = aw_st_find(st, name);
    assert_true(t && t->dtype == AW_DT_I8 && t->ndim == 2 && t->shape[0] == ql->out && t->shape[1] == ql->in);
    size_t n = (size_t)ql->out * ql->in;
    int8_t *w = malloc(n);
    assert_non_null(w);
    aw_assert_status(aw_st_read(st, t, w, n), AW_OK, NULL);
    for (size_t i = 0; i < n; i++) assert_int_equal(w[i], (int)ql->codes[i] - half);
    free(w);
    snprintf(name, sizeof name, "%s.weight_shape", base);
    assert_null(aw_st_find(st, name));
    snprintf(name, sizeof name, "%s.weight_packed", base);
    assert_null(aw_st_find(st, name));
    snprintf(name, sizeof name, "%s.weight_zero_point", base);
    t = aw_st_find(st, name);
    if (q->scheme.sym) {
        assert_null(t);
        return;
    }
    assert_true(t && t->dtype == AW_DT_I8 && t->ndim == 2 && t->shape[0] == ql->out && t->shape[1] == ng);
    int8_t *z = malloc((size_t)ql->out * ng);
    assert_non_null(z);
    aw_assert_status(aw_st_read(st, t, z, (size_t)ql->out * ng), AW_OK, NULL);
    for (size_t i = 0; i < (size_t)ql->out * ng; i++) assert_int_equal(z[i], (int)ql->wzero[i] - half);
    free(z);
}

/* ---- the round trip ------------------------------------------------------ */

typedef struct {
    aw_scheme scheme;
    int llama;
    aw_dtype dt;     /* model dtype = param dtype */
    aw_dtype sdt;    /* scale dtype */
    int act_order;
} rt_case;

static void roundtrip(const rt_case *k)
{
    char *dir = aw_test_tmpdir(), *model = join(dir, "model"), *work = join(dir, "work"), *out = join(dir, "out");
    synth_model(model, k->llama, k->dt);
    char *cfg_path = join(model, "config.json");
    aw_model_config c;
    aw_assert_status(aw_config_read(cfg_path, &c), AW_OK, NULL);
    aw_model_files *mf = NULL;
    aw_assert_status(aw_mf_open(model, &mf), AW_OK, NULL);
    aw_method m = {.kind = AW_METHOD_RTN, .alpha = 0.5f, .bias_correction = 1, .param_dtype = k->dt,
                   .scale_dtype = k->sdt, .scheme = k->scheme, .act_order = k->act_order};
    char label[48];
    printf("%s %s: %s, scales %s\n", k->llama ? "llama" : "opt", aw_dtype_name(k->dt),
           aw_scheme_label(&k->scheme, label, sizeof label), aw_dtype_name(k->sdt));

    aw_qblock q, q2, q3;
    aw_assert_status(aw_qblock_create(&c, &m.scheme, &q), AW_OK, NULL);
    fill_qblock(&c, &m, &q, 42 + (uint64_t)k->scheme.wbits * 7 + (uint64_t)k->scheme.group);

    /* the shard: every value back exactly */
    uint8_t *shard = NULL;
    size_t shard_len = 0;
    aw_assert_status(aw_block_serialize(&c, 0, &q, &m, "run-key", &shard, &shard_len), AW_OK, NULL);
    aw_assert_status(aw_qblock_create(&c, &m.scheme, &q2), AW_OK, NULL);
    aw_assert_status(aw_block_from_shard(&c, 0, shard, shard_len, "shard", "run-key", &q2), AW_OK, NULL);
    expect_same_codes(&q, &q2);
    expect_same_norms(&c, &q, &q2);
    for (int l = 0; l < q.n_lin; l++)
        assert_memory_equal(q.lin[l].bias_plain, q2.lin[l].bias_plain, (size_t)q.lin[l].out * sizeof(float));
    for (int t = 0; t < AW_TAP_COUNT; t++)
        assert_memory_equal(q.s[t], q2.s[t], (size_t)aw_arch_tap_width(&c, (aw_tap_id)t) * sizeof(float));

    /* the final checkpoint as a run writes it: shard, gather, ends, meta */
    aw_assert_status(aw_mkdir_p(work), AW_OK, NULL);
    aw_assert_status(aw_mkdir_p(out), AW_OK, NULL);
    aw_assert_status(aw_shard_write(work, 0, shard, shard_len), AW_OK, NULL);
    aw_assert_status(aw_gather_block(work, out, &c, 0), AW_OK, NULL);
    aw_assert_status(aw_write_ends(out, &c, mf), AW_OK, NULL);
    aw_assert_status(aw_write_meta(out, model, &c, mf, &m, NULL), AW_OK, NULL);
    /* the gathered file is the serialised block without the extras */
    uint8_t *final = NULL;
    size_t final_len = 0;
    aw_assert_status(aw_block_serialize(&c, 0, &q, &m, NULL, &final, &final_len), AW_OK, NULL);
    char fname[64];
    aw_out_file_name(&c, 1, fname, sizeof fname);
    char *fpath = join(out, fname);
    size_t got_len = 0;
    uint8_t *got = aw_test_read_bytes(fpath, &got_len);
    assert_int_equal(got_len, final_len);
    assert_memory_equal(got, final, final_len);
    free(got);

    /* what the evaluator reads: the scheme from config.json, then the block */
    char *ocfg = join(out, "config.json");
    aw_scheme sc;
    aw_assert_status(aw_check_quant_config(ocfg, &sc), AW_OK, NULL);
    assert_int_equal(sc.wbits, k->scheme.wbits);
    assert_int_equal(sc.group, k->scheme.group);
    assert_int_equal(sc.sym, k->scheme.sym);
    assert_int_equal(sc.act, k->scheme.act);
    assert_int_equal(sc.abits, k->scheme.act == AW_ACT_DYNAMIC ? k->scheme.abits : 0);
    assert_int_equal(sc.agroup, k->scheme.act == AW_ACT_DYNAMIC ? k->scheme.agroup : 0);
    aw_model_config oc;
    aw_assert_status(aw_config_read(ocfg, &oc), AW_OK, NULL);
    aw_model_files *omf = NULL;
    aw_assert_status(aw_mf_open(out, &omf), AW_OK, NULL);
    aw_assert_status(aw_qblock_create(&oc, &sc, &q3), AW_OK, NULL);
    aw_assert_status(aw_qblock_load(&oc, omf, 0, &q3), AW_OK, NULL);
    expect_same_codes(&q, &q3);
    expect_same_norms(&c, &q, &q3);

    /* the words, bit by bit */
    aw_st_file *st = NULL;
    aw_assert_status(aw_st_open(fpath, &st), AW_OK, NULL);
    for (int l = 0; l < q.n_lin; l++) {
        char base[128];
        int n = aw_arch_tensor_name(&c, 0, (aw_tensor_ref){AW_T_LIN_W, l}, base, sizeof base);
        base[n - 7] = '\0';
        char name[160];
        if (k->scheme.act == AW_ACT_DYNAMIC) {
            expect_int_layout(st, base, &q, l);
            snprintf(name, sizeof name, "%s.weight_scale", base);
            const aw_st_tensor *t = aw_st_find(st, name);
            assert_true(t && t->dtype == k->sdt && t->ndim == 2 && t->shape[0] == q.lin[l].out);
            assert_int_equal(t->shape[1], aw_scheme_groups(&k->scheme, q.lin[l].in));
            snprintf(name, sizeof name, "%s.input_scale", base);
            assert_null(aw_st_find(st, name));
            continue;
        }
        expect_library_layout(st, base, &q, l);
        snprintf(name, sizeof name, "%s.weight_shape", base);
        const aw_st_tensor *t = aw_st_find(st, name);
        int64_t shp[2];
        assert_true(t && t->dtype == AW_DT_I64 && t->ndim == 1 && t->shape[0] == 2);
        aw_assert_status(aw_st_read(st, t, shp, sizeof shp), AW_OK, NULL);
        assert_true(shp[0] == q.lin[l].out && shp[1] == q.lin[l].in);
        snprintf(name, sizeof name, "%s.weight_scale", base);
        t = aw_st_find(st, name);
        assert_true(t && t->dtype == k->sdt && t->ndim == 2);
        assert_int_equal(t->shape[1], aw_scheme_groups(&k->scheme, q.lin[l].in));
    }
    assert_int_equal(aw_st_count(st), (size_t)aw_block_out_tensors(&c, &m));
    aw_st_close(st);

    aw_qblock_destroy(&q);
    aw_qblock_destroy(&q2);
    aw_qblock_destroy(&q3);
    aw_mf_close(mf);
    aw_mf_close(omf);
    free(shard);
    free(final);
    free(fpath);
    free(ocfg);
    free(cfg_path);
    aw_test_rmtree(dir);
    free(dir);
    free(model);
    free(work);
    free(out);
}

static void test_w4_g128_sym(void **state)
{
    (void)state;
    roundtrip(&(rt_case){{.wbits = 4, .group = 128, .sym = 1, .act = AW_ACT_FLOAT}, 0, AW_DT_F16, AW_DT_F16, 0});
}

static void test_w4_channel_asym(void **state)
{
    (void)state;
    roundtrip(&(rt_case){{.wbits = 4, .group = 0, .sym = 0, .act = AW_ACT_FLOAT}, 0, AW_DT_F16, AW_DT_F16, 0});
}

static void test_w3_g32_sym(void **state)
{
    (void)state;
    roundtrip(&(rt_case){{.wbits = 3, .group = 32, .sym = 1, .act = AW_ACT_FLOAT}, 0, AW_DT_BF16, AW_DT_BF16, 1});
}

/* Dynamic activations (int-quantized): W4A4 g128 per token, per group of
 * 128 and of 64 (nested in the weights' 128), asymmetric weights, W4A8,
 * W8A8 per channel with per-token inputs, a LLaMA whose down projection
 * has a shorter last group. */
static void test_dyn_w4a4(void **state)
{
    (void)state;
    roundtrip(&(rt_case){{.wbits = 4, .group = 128, .sym = 1, .act = AW_ACT_DYNAMIC, .abits = 4, .agroup = 0},
                         0, AW_DT_F16, AW_DT_F16, 0});
    roundtrip(&(rt_case){{.wbits = 4, .group = 128, .sym = 1, .act = AW_ACT_DYNAMIC, .abits = 4, .agroup = 128},
                         0, AW_DT_BF16, AW_DT_BF16, 0});
    roundtrip(&(rt_case){{.wbits = 4, .group = 128, .sym = 1, .act = AW_ACT_DYNAMIC, .abits = 4, .agroup = 64},
                         0, AW_DT_F16, AW_DT_F32, 1});
}

static void test_dyn_asym_w4a8(void **state)
{
    (void)state;
    roundtrip(&(rt_case){{.wbits = 4, .group = 128, .sym = 0, .act = AW_ACT_DYNAMIC, .abits = 4, .agroup = 0},
                         0, AW_DT_F16, AW_DT_F16, 0});
    roundtrip(&(rt_case){{.wbits = 4, .group = 128, .sym = 1, .act = AW_ACT_DYNAMIC, .abits = 8, .agroup = 0},
                         0, AW_DT_F16, AW_DT_F16, 0});
    roundtrip(&(rt_case){{.wbits = 8, .group = 0, .sym = 1, .act = AW_ACT_DYNAMIC, .abits = 8, .agroup = 0},
                         0, AW_DT_BF16, AW_DT_BF16, 0});
    roundtrip(&(rt_case){{.wbits = 4, .group = 128, .sym = 0, .act = AW_ACT_DYNAMIC, .abits = 6, .agroup = 0},
                         1, AW_DT_BF16, AW_DT_BF16, 0});
    roundtrip(&(rt_case){{.wbits = 3, .group = 0, .sym = 0, .act = AW_ACT_DYNAMIC, .abits = 4, .agroup = 32},
                         1, AW_DT_F16, AW_DT_F16, 0});
}

static void test_w8_channel(void **state)
{
    (void)state;
    roundtrip(&(rt_case){{.wbits = 8, .group = 0, .sym = 1, .act = AW_ACT_FLOAT}, 0, AW_DT_F16, AW_DT_F32, 0});
}

/* LLaMA (no biases of its own: bias correction adds them) whose down
 * projection has 344 inputs: the last group is shorter. Asymmetric, so
 * that zero points of 344-row columns fill part of a word too. */
static void test_partial_last_group(void **state)
{
    (void)state;
    roundtrip(&(rt_case){{.wbits = 4, .group = 128, .sym = 0, .act = AW_ACT_FLOAT}, 1, AW_DT_BF16, AW_DT_BF16, 0});
    roundtrip(&(rt_case){{.wbits = 3, .group = 48, .sym = 0, .act = AW_ACT_FLOAT}, 1, AW_DT_F16, AW_DT_F16, 0});
}

/* ---- quantization_config ------------------------------------------------- */

static void test_config_json(void **state)
{
    (void)state;
    aw_method m = {.kind = AW_METHOD_AWEQ, .alpha = 0.5f, .bias_correction = 1, .param_dtype = AW_DT_F16,
                   .scale_dtype = AW_DT_F16, .scheme = AW_SCHEME_W8A8};
    /* W8A8: the text every earlier checkpoint has */
    char *s = aw_quant_config_json(&m);
    assert_non_null(s);
    assert_string_equal(
        s, "{\"config_groups\":{\"group_0\":{\"input_activations\":{\"actorder\":null,\"block_structure\":null,"
           "\"dynamic\":false,\"group_size\":null,\"num_bits\":8,\"observer\":\"minmax\",\"observer_kwargs\":{},"
           "\"strategy\":\"tensor\",\"symmetric\":true,\"type\":\"int\"},\"output_activations\":null,\"targets\":["
           "\"Linear\"],\"weights\":{\"actorder\":null,\"block_structure\":null,\"dynamic\":false,\"group_size\":"
           "null,\"num_bits\":8,\"observer\":\"minmax\",\"observer_kwargs\":{},\"strategy\":\"tensor\","
           "\"symmetric\":true,\"type\":\"int\"}}},\"format\":\"int-quantized\",\"global_compression_ratio\":null,"
           "\"ignore\":[\"lm_head\"],\"kv_cache_scheme\":null,\"quant_method\":\"compressed-tensors\","
           "\"quantization_status\":\"compressed\",\"sparsity_config\":{}}");
    free(s);
    /* GPTQ W4 g128 with act-order */
    m.kind = AW_METHOD_GPTQ;
    m.scheme = (aw_scheme){.wbits = 4, .group = 128, .sym = 1, .act = AW_ACT_FLOAT};
    m.act_order = 1;
    s = aw_quant_config_json(&m);
    json_error_t jerr;
    json_t *qc = json_loads(s, 0, &jerr);
    assert_non_null(qc);
    assert_string_equal(json_string_value(json_object_get(qc, "format")), "pack-quantized");
    assert_string_equal(json_string_value(json_object_get(qc, "version")), "0.20.1");
    json_t *g = json_object_get(json_object_get(qc, "config_groups"), "group_0");
    assert_string_equal(json_string_value(json_object_get(g, "format")), "pack-quantized");
    assert_true(json_is_null(json_object_get(g, "input_activations")));
    json_t *w = json_object_get(g, "weights");
    assert_int_equal(json_integer_value(json_object_get(w, "num_bits")), 4);
    assert_string_equal(json_string_value(json_object_get(w, "strategy")), "group");
    assert_int_equal(json_integer_value(json_object_get(w, "group_size")), 128);
    assert_true(json_is_true(json_object_get(w, "symmetric")));
    assert_string_equal(json_string_value(json_object_get(w, "actorder")), "weight");
    json_decref(qc);
    free(s);
    /* per channel, asymmetric, no act-order */
    m.scheme = (aw_scheme){.wbits = 3, .group = 0, .sym = 0, .act = AW_ACT_FLOAT};
    m.act_order = 0;
    s = aw_quant_config_json(&m);
    qc = json_loads(s, 0, &jerr);
    assert_non_null(qc);
    w = json_object_get(json_object_get(json_object_get(qc, "config_groups"), "group_0"), "weights");
    assert_int_equal(json_integer_value(json_object_get(w, "num_bits")), 3);
    assert_string_equal(json_string_value(json_object_get(w, "strategy")), "channel");
    assert_true(json_is_null(json_object_get(w, "group_size")));
    assert_true(json_is_false(json_object_get(w, "symmetric")));
    assert_true(json_is_null(json_object_get(w, "actorder")));
    json_decref(qc);
    free(s);
    /* dynamic: int-quantized, the weights as weight-only, the inputs as the
     * library's W4A4 preset writes them */
    m.scheme = (aw_scheme){.wbits = 4, .group = 128, .sym = 1, .act = AW_ACT_DYNAMIC, .abits = 4, .agroup = 0};
    s = aw_quant_config_json(&m);
    assert_string_equal(
        s, "{\"config_groups\":{\"group_0\":{\"format\":\"int-quantized\",\"input_activations\":{\"actorder\":null,"
           "\"block_structure\":null,\"dynamic\":true,\"group_size\":null,\"num_bits\":4,\"observer\":null,"
           "\"observer_kwargs\":{},\"strategy\":\"token\",\"symmetric\":true,\"type\":\"int\"},"
           "\"output_activations\":null,\"targets\":[\"Linear\"],\"weights\":{\"actorder\":null,"
           "\"block_structure\":null,\"dynamic\":false,\"group_size\":128,\"num_bits\":4,\"observer\":\"minmax\","
           "\"observer_kwargs\":{},\"strategy\":\"group\",\"symmetric\":true,\"type\":\"int\"}}},"
           "\"format\":\"int-quantized\",\"global_compression_ratio\":null,\"ignore\":[\"lm_head\"],"
           "\"kv_cache_scheme\":null,\"quant_method\":\"compressed-tensors\",\"quantization_status\":"
           "\"compressed\",\"sparsity_config\":{},\"version\":\"0.20.1\"}");
    free(s);
    m.scheme = (aw_scheme){.wbits = 4, .group = 0, .sym = 0, .act = AW_ACT_DYNAMIC, .abits = 8, .agroup = 64};
    s = aw_quant_config_json(&m);
    qc = json_loads(s, 0, &jerr);
    assert_non_null(qc);
    g = json_object_get(json_object_get(qc, "config_groups"), "group_0");
    json_t *in = json_object_get(g, "input_activations");
    assert_int_equal(json_integer_value(json_object_get(in, "num_bits")), 8);
    assert_string_equal(json_string_value(json_object_get(in, "strategy")), "group");
    assert_int_equal(json_integer_value(json_object_get(in, "group_size")), 64);
    assert_true(json_is_true(json_object_get(in, "dynamic")));
    w = json_object_get(g, "weights");
    assert_string_equal(json_string_value(json_object_get(w, "strategy")), "channel");
    assert_true(json_is_false(json_object_get(w, "symmetric")));
    json_decref(qc);
    free(s);
}

/* ---- checkpoints written by compressed-tensors 0.20.1 -------------------- */

/* What tests/fixtures/make_ct020_fixture.py printed: per linear, FNV-1a 64
 * of the codes (out x in), of the zero points (out x ng) and of the steps
 * as float32 bits, decoded with the library's unpack_from_int32. */
typedef struct {
    const char *linear;
    int out, in, ng;
    uint64_t codes, zeros, steps;
} ct_pin;

static const ct_pin w3_pins[] = {
    {"self_attn.q_proj", 48, 48, 3, 0x61513312ec81caaaull, 0xb1b720e3a2b2e0a5ull, 0x030d648b20a67e97ull},
    {"self_attn.k_proj", 12, 48, 3, 0x90d242f55d4e9263ull, 0x27eb23fcef590985ull, 0xb7f13185e9b6c6c6ull},
    {"self_attn.v_proj", 12, 48, 3, 0xcb285b79228d9274ull, 0x27eb23fcef590985ull, 0xe8a3d5273d9b5851ull},
    {"self_attn.o_proj", 48, 48, 3, 0xf8561eb51c68153full, 0xb1b720e3a2b2e0a5ull, 0x164d331c0ebb224full},
    {"mlp.gate_proj", 64, 48, 3, 0x1d343352cb469865ull, 0xc8b5dc49967f3525ull, 0x294511651a5a817eull},
    {"mlp.up_proj", 64, 48, 3, 0xf022ee3f9e2ab04eull, 0xc8b5dc49967f3525ull, 0x0fce1440a51e6cc6ull},
    {"mlp.down_proj", 48, 64, 4, 0x76f3c69c6c616edbull, 0xc8b5dc49967f3525ull, 0x3746def80af66f0aull},
};
static const uint8_t w3_k_row0[48] = {2, 4, 3, 4, 4, 4, 4, 0, 5, 4, 4, 4, 4, 4, 5, 5, 5, 5, 3, 3, 3, 0, 5, 4,
                                      5, 4, 3, 3, 5, 4, 5, 3, 4, 4, 5, 4, 4, 4, 5, 4, 4, 4, 7, 4, 4, 4, 4, 4};

static const ct_pin w4_pins[] = {
    {"self_attn.q_proj", 48, 48, 3, 0x0661c4273b9cc4f3ull, 0x1ac656c772138815ull, 0xc54e4c7a609ff0f5ull},
    {"self_attn.k_proj", 12, 48, 3, 0xd724cc87031c045cull, 0xef424b369915926eull, 0xc40fcad92e5fbdaaull},
    {"self_attn.v_proj", 12, 48, 3, 0x36b5823686cee761ull, 0x2df2c8916b0d16a1ull, 0x020b365c033991f4ull},
    {"self_attn.o_proj", 48, 48, 3, 0xbcaff481a4506156ull, 0x7f13b8c1f571f0e9ull, 0x011cf570d18972d4ull},
    {"mlp.gate_proj", 64, 48, 3, 0xe1b294c2be91d9b7ull, 0x011890777126657bull, 0x84ea39c4e81f0cb6ull},
    {"mlp.up_proj", 64, 48, 3, 0xabb749c0d4e5a048ull, 0xb5b85bcd2e27b78aull, 0x055042976ad09d35ull},
    {"mlp.down_proj", 48, 64, 4, 0x35ccc96a880f8fe9ull, 0x8658b607cab5ae9aull, 0xc38eeb156894e1d6ull},
};
static const uint8_t w4_k_row0[48] = {11, 12, 5, 5, 2,  8,  0,  13, 7, 5, 9, 10, 7, 6, 15, 3,
                                      8,  8,  15, 4, 9, 0,  12, 14, 3, 10, 15, 6, 6, 10, 12, 13,
                                      3,  8,  7,  0, 8, 5,  5,  8,  5, 8, 15, 2, 5, 8,  10, 8};

static uint64_t fnv1a64(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

/* Load the library's checkpoint dir (scheme from its config) into q. */
static void load_ct(const char *dir, aw_model_config *c, aw_qblock *q, aw_scheme *sc)
{
    char *cfg = join(dir, "config.json");
    aw_assert_status(aw_check_quant_config(cfg, sc), AW_OK, NULL);
    aw_assert_status(aw_config_read(cfg, c), AW_OK, NULL);
    aw_assert_status(aw_config_check_supported(c, cfg), AW_OK, NULL);
    aw_model_files *mf = NULL;
    aw_assert_status(aw_mf_open(dir, &mf), AW_OK, NULL);
    aw_assert_status(aw_qblock_create(c, sc, q), AW_OK, NULL);
    aw_assert_status(aw_qblock_load(c, mf, 0, q), AW_OK, NULL);
    aw_mf_close(mf);
    free(cfg);
}

static void expect_pins(const char *rel, int bits, int sym, const ct_pin *pins, const uint8_t *k_row0,
                        float k_step00, const uint8_t k_zero0[3])
{
    char *dir = aw_test_source_path(rel);
    aw_model_config c;
    aw_qblock q;
    aw_scheme sc;
    load_ct(dir, &c, &q, &sc);
    assert_int_equal(sc.wbits, bits);
    assert_int_equal(sc.group, 16);
    assert_int_equal(sc.sym, sym);
    const aw_arch *a = aw_arch_of(&c);
    assert_int_equal(q.n_lin, 7);
    for (int l = 0; l < q.n_lin; l++) {
        const ct_pin *p = NULL;
        for (int i = 0; i < 7; i++)
            if (strcmp(pins[i].linear, a->lin[l].name) == 0) p = &pins[i];
        assert_non_null(p);
        const aw_qlinear *ql = &q.lin[l];
        assert_int_equal(ql->out, p->out);
        assert_int_equal(ql->in, p->in);
        assert_int_equal(aw_scheme_groups(&sc, ql->in), p->ng);
        size_t ns = (size_t)p->out * p->ng;
        printf("%s %s: codes %016llx zeros %016llx steps %016llx\n", rel, p->linear,
               (unsigned long long)fnv1a64(ql->codes, (size_t)p->out * p->in),
               (unsigned long long)fnv1a64(ql->wzero, ns), (unsigned long long)fnv1a64(ql->wstep, ns * 4));
        assert_true(fnv1a64(ql->codes, (size_t)p->out * p->in) == p->codes);
        assert_true(fnv1a64(ql->wzero, ns) == p->zeros);
        assert_true(fnv1a64(ql->wstep, ns * 4) == p->steps);
        if (strcmp(p->linear, "self_attn.k_proj") == 0) {
            assert_memory_equal(ql->codes, k_row0, 48);
            assert_true(ql->wstep[0] == k_step00);
            assert_memory_equal(ql->wzero, k_zero0, 3);
        }
        for (int i = 0; i < ql->out; i++) assert_true(ql->bias[i] == 0.0f); /* LLaMA: none */
    }
    aw_qblock_destroy(&q);
    free(dir);
}

static void test_ct020_w3_sym(void **state)
{
    (void)state;
    /* step 0.0941162109 is an F16 value: 0x1.818p-4 */
    expect_pins("tests/data/ct020/w3g16-sym", 3, 1, w3_pins, w3_k_row0, 0x1.818p-4f, (const uint8_t[]){4, 4, 4});
}

static void test_ct020_w4_asym(void **state)
{
    (void)state;
    expect_pins("tests/data/ct020/w4g16-asym", 4, 0, w4_pins, w4_k_row0, 0x1.a68p-7f, (const uint8_t[]){7, 10, 6});
}

/* What tests/fixtures/make_ct020_dyn_fixture.py printed: per linear, FNV-1a
 * 64 of our codes (stored + 2^(b-1)), zero points, steps (float32 bits)
 * and of the weights the library's own decompressor gave ((q_s - z_s) *
 * step in float32, exact). */
typedef struct {
    const char *linear;
    int out, in, ng;
    uint64_t codes, zeros, steps, weights;
} ct_dyn_pin;

static const ct_dyn_pin a4tok_pins[] = {
    {"self_attn.q_proj", 48, 48, 3, 0xb003c458a550b568ull, 0x265c550bc50afa65ull, 0x97aa283de28b2cfdull, 0x0cbe3c24a54e0ce3ull},
    {"self_attn.k_proj", 12, 48, 3, 0xd1267950360ff3c5ull, 0x1e16e33c36e45975ull, 0x470fcb409529166full, 0x13701809c7d0da18ull},
    {"self_attn.v_proj", 12, 48, 3, 0x3bed56a47644ad7aull, 0x1e16e33c36e45975ull, 0xefff6bb6edb2000eull, 0xd1495ac0c3b6ed38ull},
    {"self_attn.o_proj", 48, 48, 3, 0x06c768eed9f7c440ull, 0x265c550bc50afa65ull, 0x0afd233e745fc955ull, 0x7dbd150342fa40a7ull},
    {"mlp.gate_proj", 64, 48, 3, 0x7c050ae4a82321e6ull, 0x3d9031836a1ae225ull, 0x51185b378e37c340ull, 0xb1061d9b14b4f25aull},
    {"mlp.up_proj", 64, 48, 3, 0x73bfcfd44305ff2bull, 0x3d9031836a1ae225ull, 0xf58bd886865ef1ffull, 0xf037ff87a61e8d0bull},
    {"mlp.down_proj", 48, 64, 4, 0x29644deb2b4b3c3cull, 0x3d9031836a1ae225ull, 0x85762fc36f3817e4ull, 0xb8846df2ab35accdull},
};
static const ct_dyn_pin asym_a8g16_pins[] = {
    {"self_attn.q_proj", 48, 48, 3, 0x4886a59cdda4b883ull, 0xe6fd810f3b57b3d4ull, 0x2eb36b3b829ebf05ull, 0x947fb0a8ee8c32f2ull},
    {"self_attn.k_proj", 12, 48, 3, 0xc51789ce49ac9317ull, 0xdf21f6883816d49eull, 0x9136e735440345c7ull, 0x25e2103ef553a59aull},
    {"self_attn.v_proj", 12, 48, 3, 0x4dbf00bd3faa9907ull, 0xc0ed1a4fb777b12full, 0xf6cf491b6d8b2b23ull, 0x44b5dd96648f42a6ull},
    {"self_attn.o_proj", 48, 48, 3, 0xb2b0d22eaca5c0f2ull, 0x35d88bf616fa0bb2ull, 0x1d22f4c60b1ec450ull, 0x59521007ac153d97ull},
    {"mlp.gate_proj", 64, 48, 3, 0x7d3aa2603df7be60ull, 0xeeb8864d9e0d485cull, 0x33015bec49772150ull, 0x92c6cc4ae20c8d0bull},
    {"mlp.up_proj", 64, 48, 3, 0x6f10aefb31a7c87eull, 0x7782b941ca1914dfull, 0x4e75fdf1d6c717bcull, 0xb159d6a953907617ull},
    {"mlp.down_proj", 48, 64, 4, 0xd46bb0ce67777ce4ull, 0x5882147c8d1aa1f2ull, 0xfedca9f9e1c33d16ull, 0x9bc7f5173e3ee660ull},
};
static const ct_dyn_pin w8a8tok_pins[] = {
    {"self_attn.q_proj", 48, 48, 1, 0x7600621621376065ull, 0xb2b348cf0c15eae5ull, 0xf50f8d8db0059fbeull, 0x54700cb4c9fc0371ull},
    {"self_attn.k_proj", 12, 48, 1, 0x9624c53ff742e9b0ull, 0x872c0aff5571c995ull, 0xe0df3554b52313a9ull, 0x3a17932522933c8bull},
    {"self_attn.v_proj", 12, 48, 1, 0xdfae484bd9b6cd1eull, 0x872c0aff5571c995ull, 0xe601b4f462e150fdull, 0x4fef7147b8b8bb0eull},
    {"self_attn.o_proj", 48, 48, 1, 0x79314135305ff5d8ull, 0xb2b348cf0c15eae5ull, 0xad644950dcad950bull, 0x9743768fbcccd45bull},
    {"mlp.gate_proj", 64, 48, 1, 0x51be4ea86c1b5236ull, 0xf906f6dd67750825ull, 0x036a66e061618011ull, 0xd4f1e5986f286c4bull},
    {"mlp.up_proj", 64, 48, 1, 0xbcd2a0fc997503caull, 0xf906f6dd67750825ull, 0xe770945ea65c048dull, 0x84e0658c73b0dadcull},
    {"mlp.down_proj", 48, 64, 1, 0x72fd95a43fc066faull, 0xb2b348cf0c15eae5ull, 0x8ebf37c564049159ull, 0x509aed8545453fc9ull},
};

/* A library-written dynamic checkpoint read by the evaluator's reader: the
 * scheme from config.json, and per linear the codes, zero points, steps
 * and wq * step (the weights the forward multiplies) equal to the library's
 * own decoding; wq = code - zero. */
static void expect_dyn_pins(const char *rel, aw_scheme want, const ct_dyn_pin *pins)
{
    char *dir = aw_test_source_path(rel);
    aw_model_config c;
    aw_qblock q;
    aw_scheme sc;
    load_ct(dir, &c, &q, &sc);
    assert_int_equal(sc.wbits, want.wbits);
    assert_int_equal(sc.group, want.group);
    assert_int_equal(sc.sym, want.sym);
    assert_int_equal(sc.act, AW_ACT_DYNAMIC);
    assert_int_equal(sc.abits, want.abits);
    assert_int_equal(sc.agroup, want.agroup);
    const aw_arch *a = aw_arch_of(&c);
    assert_int_equal(q.n_lin, 7);
    for (int l = 0; l < q.n_lin; l++) {
        const ct_dyn_pin *p = NULL;
        for (int i = 0; i < 7; i++)
            if (strcmp(pins[i].linear, a->lin[l].name) == 0) p = &pins[i];
        assert_non_null(p);
        const aw_qlinear *ql = &q.lin[l];
        assert_int_equal(ql->out, p->out);
        assert_int_equal(ql->in, p->in);
        int ng = aw_scheme_groups(&sc, ql->in), glen = aw_scheme_group_len(&sc, ql->in);
        assert_int_equal(ng, p->ng);
        size_t ns = (size_t)p->out * p->ng, nw = (size_t)p->out * p->in;
        float *w = malloc(nw * sizeof *w);
        assert_non_null(w);
        for (int r = 0; r < ql->out; r++)
            for (int j = 0; j < ql->in; j++) {
                size_t i = (size_t)r * ql->in + j;
                assert_int_equal(ql->wq[i], (int)ql->codes[i] - (int)ql->wzero[(size_t)r * ng + j / glen]);
                w[i] = (float)ql->wq[i] * ql->wstep[(size_t)r * ng + j / glen];
            }
        printf("%s %s: codes %016llx zeros %016llx steps %016llx weights %016llx\n", rel, p->linear,
               (unsigned long long)fnv1a64(ql->codes, nw), (unsigned long long)fnv1a64(ql->wzero, ns),
               (unsigned long long)fnv1a64(ql->wstep, ns * 4), (unsigned long long)fnv1a64(w, nw * 4));
        assert_true(fnv1a64(ql->codes, nw) == p->codes);
        assert_true(fnv1a64(ql->wzero, ns) == p->zeros);
        assert_true(fnv1a64(ql->wstep, ns * 4) == p->steps);
        assert_true(fnv1a64(w, nw * 4) == p->weights);
        free(w);
        for (int i = 0; i < ql->out; i++) assert_true(ql->bias[i] == 0.0f); /* LLaMA: none */
    }
    aw_qblock_destroy(&q);
    free(dir);
}

static void test_ct020_dynamic(void **state)
{
    (void)state;
    expect_dyn_pins("tests/data/ct020/w4g16-a4tok",
                    (aw_scheme){.wbits = 4, .group = 16, .sym = 1, .act = AW_ACT_DYNAMIC, .abits = 4, .agroup = 0},
                    a4tok_pins);
    expect_dyn_pins("tests/data/ct020/w4g16asym-a8g16",
                    (aw_scheme){.wbits = 4, .group = 16, .sym = 0, .act = AW_ACT_DYNAMIC, .abits = 8, .agroup = 16},
                    asym_a8g16_pins);
    expect_dyn_pins("tests/data/ct020/w8ch-a8tok",
                    (aw_scheme){.wbits = 8, .group = 0, .sym = 1, .act = AW_ACT_DYNAMIC, .abits = 8, .agroup = 0},
                    w8a8tok_pins);
}

/* inspect on the library's dynamic checkpoints: the table reads them, and
 * the runtime lines say what each runtime does with them. */
static void expect_inspect(const char *rel, const char *const *needles)
{
    char *dir = aw_test_source_path(rel);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    aw_assert_status(aw_inspect(dir, f, 1), AW_OK, NULL);
    fclose(f);
    for (const char *const *n = needles; *n; n++) {
        if (!strstr(text, *n)) printf("inspect %s: no '%s' in:\n%s\n", rel, *n, text);
        assert_non_null(strstr(text, *n));
    }
    free(text);
    free(dir);
}

static void test_inspect_dynamic(void **state)
{
    (void)state;
    expect_inspect("tests/data/ct020/w4g16-a4tok",
                   (const char *const[]){"vLLM: no: no scheme serves int-quantized integer W4A4",
                                         "inputs fake-quantized at run time per token (4-bit steps absmax / 7.5",
                                         "dequantize=True): weights dequantized on load, the activation quantization "
                                         "dropped without a warning",
                                         "aweq-dist eval: yes", "k_proj    W4A4    I8     4/4   group 16",
                                         "dynamic\n", "checkpoint: OK (quantized)", NULL});
    expect_inspect("tests/data/ct020/w8ch-a8tok",
                   (const char *const[]){"vLLM: yes: CompressedTensorsW8A8Int8 (dynamic per-token input scales)",
                                         "aweq-dist eval: yes", "W8A8    I8     8/8   channel", NULL});
    expect_inspect("tests/data/ct020/w4g16asym-a8g16",
                   (const char *const[]){"per group of inputs (8-bit steps absmax / 127.5", "W4A8", NULL});
}

/* ---- refusals ------------------------------------------------------------ */

typedef enum {
    ED_DROP,      /* target left out */
    ED_AS_I8,     /* target's bytes as I8 (4x the columns) */
    ED_TRANSPOSE, /* shape [cols, rows] */
    ED_ZERO,      /* every byte 0 */
    ED_SWAP2,     /* a [2] tensor with its values swapped (I64) */
    ED_OLD3,      /* 3-bit weight_packed of 64 inputs as older compressed-tensors shaped it:
                     ceil(64 / 10) = 7 words a row, not ceil(64 * 3 / 32) = 6 */
    ED_AS_U8,     /* same bytes and shape, dtype U8 */
    ED_BIG,       /* byte 5 set to 100 (outside 4 bits) */
} edit_kind;

/* dst (new folder) = src's model.safetensors with target edited, and its
 * config.json. */
static void rewrite(const char *src, const char *dst, const char *target, edit_kind ed)
{
    aw_model_files *mf = NULL;
    aw_assert_status(aw_mf_open(src, &mf), AW_OK, NULL);
    size_t n = aw_mf_count(mf), k = 0;
    aw_st_entry *e = calloc(n, sizeof *e);
    void **bufs = calloc(n, sizeof *bufs);
    assert_true(e && bufs);
    int hit = 0;
    for (size_t i = 0; i < n; i++) {
        const aw_st_file *sf = NULL;
        const aw_st_tensor *t = aw_mf_at(mf, i, &sf);
        size_t bytes = (size_t)(t->end - t->begin);
        bufs[i] = calloc(1, bytes + 4096);
        assert_non_null(bufs[i]);
        aw_assert_status(aw_st_read(sf, t, bufs[i], bytes), AW_OK, NULL);
        aw_st_entry x = {.name = t->name, .dtype = t->dtype, .ndim = t->ndim, .data = bufs[i]};
        memcpy(x.shape, t->shape, sizeof x.shape);
        if (strcmp(t->name, target) == 0) {
            hit = 1;
            if (ed == ED_DROP) continue;
            if (ed == ED_AS_I8) x.dtype = AW_DT_I8, x.shape[1] *= 4;
            if (ed == ED_TRANSPOSE) x.shape[0] = t->shape[1], x.shape[1] = t->shape[0];
            if (ed == ED_ZERO) memset(bufs[i], 0, bytes);
            if (ed == ED_SWAP2) {
                int64_t *v = bufs[i], tmp = v[0];
                v[0] = v[1], v[1] = tmp;
            }
            if (ed == ED_OLD3) x.shape[1] = 7; /* zeros past the data */
            if (ed == ED_AS_U8) x.dtype = AW_DT_U8;
            if (ed == ED_BIG) ((int8_t *)bufs[i])[5] = 100;
        }
        e[k++] = x;
    }
    assert_true(hit);
    aw_assert_status(aw_mkdir_p(dst), AW_OK, NULL);
    char *path = join(dst, AW_SINGLE_NAME), *cs = join(src, "config.json"), *cd = join(dst, "config.json");
    const aw_st_meta meta[] = {{"format", "pt"}};
    aw_assert_status(aw_st_write_file(path, e, k, meta, 1), AW_OK, NULL);
    size_t cl = 0;
    uint8_t *cb = aw_test_read_bytes(cs, &cl);
    aw_test_write_bytes(cd, cb, cl);
    free(cb);
    for (size_t i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    free(e);
    free(path);
    free(cs);
    free(cd);
    aw_mf_close(mf);
}

/* Loading dir's block fails with want, the message naming needle and the
 * file (or folder). */
static void expect_load_refused(const char *dir, aw_status want, const char *needle)
{
    char *cfg = join(dir, "config.json");
    aw_model_config c;
    aw_scheme sc;
    aw_assert_status(aw_check_quant_config(cfg, &sc), AW_OK, NULL);
    aw_assert_status(aw_config_read(cfg, &c), AW_OK, NULL);
    aw_model_files *mf = NULL;
    aw_assert_status(aw_mf_open(dir, &mf), AW_OK, NULL);
    aw_qblock q;
    aw_assert_status(aw_qblock_create(&c, &sc, &q), AW_OK, NULL);
    aw_assert_status(aw_qblock_load(&c, mf, 0, &q), want, needle);
    printf("refused: %s\n", aw_err_message());
    assert_non_null(strstr(aw_err_message(), dir));
    aw_qblock_destroy(&q);
    aw_mf_close(mf);
    free(cfg);
}

static void test_tensor_refusals(void **state)
{
    (void)state;
    char *w3 = aw_test_source_path("tests/data/ct020/w3g16-sym");
    char *w4 = aw_test_source_path("tests/data/ct020/w4g16-asym");
    char *a4 = aw_test_source_path("tests/data/ct020/w4g16-a4tok");
    char *a8 = aw_test_source_path("tests/data/ct020/w4g16asym-a8g16");
    char *tmp = aw_test_tmpdir();
    const struct {
        char **src;
        const char *name, *target;
        edit_kind ed;
        aw_status want;
        const char *needle;
    } cases[] = {
        {&w3, "packed-shape", "model.layers.0.self_attn.q_proj.weight_packed", ED_TRANSPOSE, AW_ERR_ST_SHAPE,
         "'model.layers.0.self_attn.q_proj.weight_packed' has shape [5, 48]; config.json implies [48, 5]"},
        {&w3, "packed-dtype", "model.layers.0.mlp.down_proj.weight_packed", ED_AS_I8, AW_ERR_DTYPE,
         "'model.layers.0.mlp.down_proj.weight_packed' has dtype I8"},
        {&w3, "packed-old", "model.layers.0.mlp.down_proj.weight_packed", ED_OLD3, AW_ERR_UNSUPPORTED,
         "10 3-bit codes a word"},
        {&w3, "no-packed", "model.layers.0.mlp.up_proj.weight_packed", ED_DROP, AW_ERR_MISSING_TENSOR,
         "'model.layers.0.mlp.up_proj.weight_packed'"},
        {&w3, "no-scale", "model.layers.0.self_attn.k_proj.weight_scale", ED_DROP, AW_ERR_MISSING_TENSOR,
         "'model.layers.0.self_attn.k_proj.weight_scale'"},
        {&w3, "scale-shape", "model.layers.0.self_attn.v_proj.weight_scale", ED_TRANSPOSE, AW_ERR_ST_SHAPE,
         "'model.layers.0.self_attn.v_proj.weight_scale' has shape [3, 12]"},
        {&w3, "scale-zero", "model.layers.0.mlp.gate_proj.weight_scale", ED_ZERO, AW_ERR_NONFINITE,
         "finite and positive"},
        {&w3, "no-shape", "model.layers.0.self_attn.q_proj.weight_shape", ED_DROP, AW_ERR_MISSING_TENSOR,
         "'model.layers.0.self_attn.q_proj.weight_shape'"},
        {&w3, "shape-values", "model.layers.0.mlp.down_proj.weight_shape", ED_SWAP2, AW_ERR_ST_SHAPE,
         "says [64, 48]; config.json implies [48, 64]"},
        {&w4, "no-zero", "model.layers.0.self_attn.k_proj.weight_zero_point", ED_DROP, AW_ERR_MISSING_TENSOR,
         "'model.layers.0.self_attn.k_proj.weight_zero_point'"},
        {&w4, "zero-shape", "model.layers.0.self_attn.k_proj.weight_zero_point", ED_TRANSPOSE, AW_ERR_ST_SHAPE,
         "'model.layers.0.self_attn.k_proj.weight_zero_point' has shape [3, 2]; config.json implies [2, 3]"},
        {&w4, "zero-dtype", "model.layers.0.mlp.down_proj.weight_zero_point", ED_AS_I8, AW_ERR_DTYPE,
         "packed zero points must be I32"},
        /* int-quantized with dynamic activations */
        {&a4, "int-dtype", "model.layers.0.mlp.up_proj.weight", ED_AS_U8, AW_ERR_DTYPE,
         "'model.layers.0.mlp.up_proj.weight' has dtype U8; a quantized weight must be I8"},
        {&a4, "int-shape", "model.layers.0.self_attn.k_proj.weight", ED_TRANSPOSE, AW_ERR_ST_SHAPE,
         "'model.layers.0.self_attn.k_proj.weight' has shape [48, 12]; config.json implies [12, 48]"},
        {&a4, "int-range", "model.layers.0.self_attn.q_proj.weight", ED_BIG, AW_ERR_UNSUPPORTED,
         "'model.layers.0.self_attn.q_proj.weight': element 5 is 100, outside the 4-bit range [-8, 7]"},
        {&a4, "int-no-weight", "model.layers.0.mlp.gate_proj.weight", ED_DROP, AW_ERR_MISSING_TENSOR,
         "'model.layers.0.mlp.gate_proj.weight'"},
        {&a4, "int-scale-shape", "model.layers.0.mlp.down_proj.weight_scale", ED_TRANSPOSE, AW_ERR_ST_SHAPE,
         "'model.layers.0.mlp.down_proj.weight_scale' has shape [4, 48]"},
        {&a8, "int-no-zero", "model.layers.0.self_attn.v_proj.weight_zero_point", ED_DROP, AW_ERR_MISSING_TENSOR,
         "'model.layers.0.self_attn.v_proj.weight_zero_point'"},
        {&a8, "int-zero-dtype", "model.layers.0.self_attn.o_proj.weight_zero_point", ED_AS_U8, AW_ERR_DTYPE,
         "'model.layers.0.self_attn.o_proj.weight_zero_point' has dtype U8; a zero point must be I8"},
        {&a8, "int-zero-shape", "model.layers.0.mlp.up_proj.weight_zero_point", ED_TRANSPOSE, AW_ERR_ST_SHAPE,
         "'model.layers.0.mlp.up_proj.weight_zero_point' has shape [3, 64]; config.json implies [64, 3]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dst = join(tmp, cases[i].name);
        rewrite(*cases[i].src, dst, cases[i].target, cases[i].ed);
        expect_load_refused(dst, cases[i].want, cases[i].needle);
        free(dst);
    }
    aw_test_rmtree(tmp);
    free(tmp);
    free(w3);
    free(w4);
    free(a4);
    free(a8);
}

/* A copy of fixture rel's config.json with quantization_config.<path>.key
 * = value (stolen; NULL deletes), checked refused with want and needle. */
static void expect_config_refused_in(const char *rel, const char *tmp, const char *path, const char *key,
                                     json_t *value, aw_status want, const char *needle)
{
    char *src = aw_test_source_path(rel);
    char *dst = join(tmp, "config.json");
    json_error_t jerr;
    json_t *root = json_load_file(src, 0, &jerr);
    assert_non_null(root);
    json_t *o = json_object_get(root, "quantization_config");
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *tok = strtok(buf, "."); tok; tok = strtok(NULL, ".")) {
        o = json_object_get(o, tok);
        assert_non_null(o);
    }
    if (value) assert_int_equal(json_object_set_new(o, key, value), 0);
    else assert_int_equal(json_object_del(o, key), 0);
    assert_int_equal(json_dump_file(root, dst, JSON_INDENT(2)), 0);
    json_decref(root);
    aw_scheme sc;
    aw_assert_status(aw_check_quant_config(dst, &sc), want, needle);
    printf("refused: %s\n", aw_err_message());
    assert_non_null(strstr(aw_err_message(), dst));
    free(src);
    free(dst);
}

/* The same on the w4 fixture's config.json. */
static void expect_config_refused(const char *tmp, const char *path, const char *key, json_t *value, aw_status want,
                                  const char *needle)
{
    expect_config_refused_in("tests/data/ct020/w4g16-asym/config.json", tmp, path, key, value, want, needle);
}

/* int-quantized configs with dynamic activations that the program does not
 * make or the forward does not run. */
static void test_dyn_config_refusals(void **state)
{
    (void)state;
    char *tmp = aw_test_tmpdir();
    const char *cfg = "tests/data/ct020/w4g16-a4tok/config.json", *in = "config_groups.group_0.input_activations";
    const char *w = "config_groups.group_0.weights";
    expect_config_refused_in(cfg, tmp, in, "dynamic", json_false(), AW_ERR_UNSUPPORTED,
                             "input_activations: 4-bit quantization");
    expect_config_refused_in(cfg, tmp, in, "symmetric", json_false(), AW_ERR_UNSUPPORTED,
                             "asymmetric dynamic activations");
    expect_config_refused_in(cfg, tmp, in, "strategy", json_string("tensor"), AW_ERR_UNSUPPORTED,
                             "input activations are dynamic with strategy \"tensor\"");
    expect_config_refused_in(cfg, tmp, in, "dynamic", json_string("local"), AW_ERR_UNSUPPORTED,
                             "input activations are dynamic \"local\"");
    expect_config_refused_in(cfg, tmp, in, "num_bits", json_integer(3), AW_ERR_UNSUPPORTED, "3-bit activations");
    expect_config_refused_in(cfg, tmp, in, "type", json_string("float"), AW_ERR_UNSUPPORTED, "type \"float\"");
    expect_config_refused_in(cfg, tmp, in, "block_structure", json_pack("[i,i]", 1, 16), AW_ERR_UNSUPPORTED,
                             "block_structure");
    expect_config_refused_in(cfg, tmp, w, "strategy", json_string("tensor"), AW_ERR_UNSUPPORTED,
                             "weights with strategy \"tensor\" and input activations dynamic with strategy "
                             "\"token\"");
    expect_config_refused_in(cfg, tmp, w, "num_bits", json_integer(5), AW_ERR_UNSUPPORTED, "5-bit weights");
    /* weights and activations in groups that do not nest */
    char *dst = join(tmp, "grp");
    aw_assert_status(aw_mkdir_p(dst), AW_OK, NULL);
    expect_config_refused_in(cfg, dst, in, "strategy", json_string("group"), AW_ERR_CONFIG,
                             "strategy \"group\" needs a positive group size");
    free(dst);
    expect_config_refused_in("tests/data/ct020/w4g16asym-a8g16/config.json", tmp, in, "group_size", json_integer(24),
                             AW_ERR_UNSUPPORTED, "one must divide the other");
    /* 8-bit asymmetric weights: their signed values do not fit INT8 */
    expect_config_refused_in("tests/data/ct020/w8ch-a8tok/config.json", tmp, w, "symmetric", json_false(),
                             AW_ERR_UNSUPPORTED, "do not fit INT8");
    aw_test_rmtree(tmp);
    free(tmp);
}

static void test_config_refusals(void **state)
{
    (void)state;
    char *tmp = aw_test_tmpdir();
    const char *w = "config_groups.group_0.weights";
    expect_config_refused(tmp, w, "actorder", json_string("group"), AW_ERR_UNSUPPORTED, "g_idx");
    expect_config_refused(tmp, w, "actorder", json_true(), AW_ERR_UNSUPPORTED, "g_idx");
    expect_config_refused(tmp, w, "num_bits", json_integer(2), AW_ERR_UNSUPPORTED, "weights.num_bits: 2-bit");
    expect_config_refused(tmp, w, "strategy", json_string("tensor"), AW_ERR_UNSUPPORTED, "strategy \"tensor\"");
    expect_config_refused(tmp, w, "group_size", json_integer(4), AW_ERR_UNSUPPORTED,
                          "group_size 4; this evaluator runs groups of at least 8");
    expect_config_refused(tmp, w, "type", json_string("float"), AW_ERR_UNSUPPORTED, "type \"float\"");
    expect_config_refused(tmp, w, "dynamic", json_true(), AW_ERR_UNSUPPORTED, "dynamic");
    expect_config_refused(tmp, "config_groups.group_0", "input_activations", json_pack("{s:i}", "num_bits", 8),
                          AW_ERR_UNSUPPORTED, "input_activations");
    expect_config_refused(tmp, "config_groups.group_0", "format", json_string("int-quantized"), AW_ERR_UNSUPPORTED,
                          "config_groups.group_0.format \"int-quantized\"");
    expect_config_refused(tmp, "config_groups", "group_1",
                          json_pack("{s:[s],s:{s:i,s:b,s:s,s:i}}", "targets", "Linear", "weights", "num_bits", 4,
                                    "symmetric", 1, "strategy", "group", "group_size", 16),
                          AW_ERR_UNSUPPORTED, "one scheme for every linear");
    expect_config_refused(tmp, "", "transform_config", json_pack("{s:{}}", "spinquant"), AW_ERR_UNSUPPORTED,
                          "transform_config");
    expect_config_refused(tmp, "", "format", json_string("marlin-24"), AW_ERR_UNSUPPORTED, "format \"marlin-24\"");
    /* absent optional keys take the library's defaults: accepted */
    char *src = aw_test_source_path("tests/data/ct020/w4g16-asym/config.json");
    aw_scheme sc;
    aw_assert_status(aw_check_quant_config(src, &sc), AW_OK, NULL);
    aw_assert_status(aw_check_quant_config(src, NULL), AW_OK, NULL);
    free(src);
    aw_test_rmtree(tmp);
    free(tmp);
}

/* Blocks the writer refuses, because they would not come back as they are. */
static void test_serialize_refusals(void **state)
{
    (void)state;
    char *dir = aw_test_tmpdir(), *model = join(dir, "model");
    synth_model(model, 0, AW_DT_F16);
    char *cfg_path = join(model, "config.json");
    aw_model_config c;
    aw_assert_status(aw_config_read(cfg_path, &c), AW_OK, NULL);
    aw_method m = {.kind = AW_METHOD_RTN, .bias_correction = 1, .param_dtype = AW_DT_F16, .scale_dtype = AW_DT_F16,
                   .scheme = {.wbits = 4, .group = 32, .sym = 1, .act = AW_ACT_FLOAT}};
    aw_qblock q, q2;
    aw_assert_status(aw_qblock_create(&c, &m.scheme, &q), AW_OK, NULL);
    fill_qblock(&c, &m, &q, 7);
    uint8_t *bytes = NULL;
    size_t len = 0;
    q.lin[2].wzero[5] = 7;
    aw_assert_status(aw_block_serialize(&c, 0, &q, &m, "k", &bytes, &len), AW_ERR_ARG, "zero point 7");
    q.lin[2].wzero[5] = 8;
    float keep = q.lin[1].wstep[3];
    q.lin[1].wstep[3] = keep * (1.0f + 1e-6f);
    aw_assert_status(aw_block_serialize(&c, 0, &q, &m, "k", &bytes, &len), AW_ERR_ARG, "not a F16 value");
    q.lin[1].wstep[3] = keep;
    aw_method other = m;
    other.scheme.group = 64;
    aw_assert_status(aw_block_serialize(&c, 0, &q, &other, "k", &bytes, &len), AW_ERR_ARG, "scheme");
    /* a shard read into a block of another scheme: shapes differ */
    aw_assert_status(aw_block_serialize(&c, 0, &q, &m, "k", &bytes, &len), AW_OK, NULL);
    aw_assert_status(aw_qblock_create(&c, &other.scheme, &q2), AW_OK, NULL);
    aw_assert_status(aw_block_from_shard(&c, 0, bytes, len, "shard-x", "k", &q2), AW_ERR_ST_SHAPE, "weight_scale");
    aw_qblock_destroy(&q2);
    aw_assert_status(aw_qblock_create(&c, &AW_SCHEME_W8A8, &q2), AW_OK, NULL);
    aw_assert_status(aw_block_from_shard(&c, 0, bytes, len, "shard-y", "k", &q2), AW_ERR_ST_SHAPE, "shard-y");
    aw_qblock_destroy(&q2);
    free(bytes);
    aw_qblock_destroy(&q);
    /* dynamic: wq must be code - zero; kept fp channels have no form; a
     * shard of another activation scheme is another scheme */
    m.scheme = (aw_scheme){.wbits = 4, .group = 32, .sym = 0, .act = AW_ACT_DYNAMIC, .abits = 4, .agroup = 0};
    aw_assert_status(aw_qblock_create(&c, &m.scheme, &q), AW_OK, NULL);
    fill_qblock(&c, &m, &q, 9);
    q.lin[3].wq[17]++;
    aw_assert_status(aw_block_serialize(&c, 0, &q, &m, "k", &bytes, &len), AW_ERR_ARG, "linear 3: signed weight [0, 17]");
    q.lin[3].wq[17]--;
    other = m;
    other.scheme.abits = 8;
    aw_assert_status(aw_block_serialize(&c, 0, &q, &other, "k", &bytes, &len), AW_ERR_ARG, "scheme");
    aw_assert_status(aw_block_serialize(&c, 0, &q, &m, "k", &bytes, &len), AW_OK, NULL);
    /* a dynamic shard read as weight-only: weight_packed is missing */
    aw_method wo = m;
    wo.scheme.act = AW_ACT_FLOAT, wo.scheme.abits = 0;
    aw_assert_status(aw_qblock_create(&c, &wo.scheme, &q2), AW_OK, NULL);
    aw_assert_status(aw_block_from_shard(&c, 0, bytes, len, "shard-z", "k", &q2), AW_ERR_ST_SHAPE, "weight_packed");
    aw_qblock_destroy(&q2);
    free(bytes);
    aw_qblock_destroy(&q);
    m.scheme.keep_pct = 1.0;
    aw_assert_status(aw_qblock_create(&c, &m.scheme, &q), AW_OK, NULL);
    fill_qblock(&c, &m, &q, 9);
    aw_assert_status(aw_block_serialize(&c, 0, &q, &m, "k", &bytes, &len), AW_ERR_ARG, "kept fp channels");
    aw_qblock_destroy(&q);
    free(cfg_path);
    aw_test_rmtree(dir);
    free(dir);
    free(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_w4_g128_sym),      cmocka_unit_test(test_w4_channel_asym),
        cmocka_unit_test(test_w3_g32_sym),       cmocka_unit_test(test_w8_channel),
        cmocka_unit_test(test_partial_last_group), cmocka_unit_test(test_config_json),
        cmocka_unit_test(test_ct020_w3_sym),     cmocka_unit_test(test_ct020_w4_asym),
        cmocka_unit_test(test_tensor_refusals),  cmocka_unit_test(test_config_refusals),
        cmocka_unit_test(test_serialize_refusals),
        cmocka_unit_test(test_dyn_w4a4),         cmocka_unit_test(test_dyn_asym_w4a8),
        cmocka_unit_test(test_ct020_dynamic),    cmocka_unit_test(test_dyn_config_refusals),
        cmocka_unit_test(test_inspect_dynamic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
