/*
 * test_eval.c - the independent checkpoint evaluator (pipeline/eval/):
 *   - on the checkpoint aw_run() wrote, with the same held-out sequences and
 *     blocks of samples, it reproduces the pipeline's W8A8 perplexity (F16
 *     and BF16 models), from config.json, the safetensors and the tokens only;
 *   - the same checkpoint rewritten as one file without the report, with the
 *     scales as F32 scalars, gives the very same number;
 *   - configs it cannot run (dynamic or per-channel activations, 4 bits,
 *     another method, no quantization_config) and tensors it cannot read (F16
 *     weight, missing input_scale, per-channel or zero scale, wrong shape)
 *     are refused with the status and a message naming what is wrong.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aw_eval.h"
#include "aw_fs.h"
#include "aw_model.h"
#include "aw_model_files.h"
#include "aw_run.h"
#include "aw_safetensors.h"
#include "aw_synth.h"
#include "testutil.h"

#define HOLDOUT 0.25
#define BATCH 8
#define N_SEQ 40  /* 10 held out: blocks of 8 + 2 sequences */
#define SEQ_LEN 48 /* 384 and 96 rows: full and partial logit chunks */

typedef struct {
    char *dir;    /* temporary folder */
    char *model;  /* generated F16 model (unquantized) */
    char *tokens; /* its calibration.tokens */
    char *out;    /* the checkpoint aw_run() wrote */
    aw_run_result r;
} fixture;

static char *join(const char *a, const char *b)
{
    char *p = aw_path_join(a, b);
    assert_non_null(p);
    return p;
}

static void synth_tiny(const char *out, aw_dtype dt)
{
    aw_synth_opts o;
    aw_synth_defaults(&o, aw_shape_find("opt-125m"));
    o.cfg.name[0] = '\0';
    o.cfg.hidden_size = 128;
    o.cfg.word_embed_proj_dim = 128;
    o.cfg.num_hidden_layers = 2;
    o.cfg.num_attention_heads = 4;
    o.cfg.ffn_dim = 512;
    o.cfg.vocab_size = 2000;
    o.cfg.max_position_embeddings = 128;
    o.cfg.torch_dtype = dt;
    o.calib_seqs = N_SEQ;
    o.calib_len = SEQ_LEN;
    o.max_shard_bytes = 400000;
    aw_assert_status(aw_synth_write(&o, out), AW_OK, NULL);
}

/* Quantize model into out as the pipeline does, validating on HOLDOUT. */
static void quantize(const char *model, const char *out, aw_run_result *r)
{
    aw_run_opts o;
    aw_run_defaults(&o);
    o.model_dir = model;
    o.out_dir = out;
    o.holdout = HOLDOUT;
    o.batch = BATCH;
    o.quiet = 1;
    aw_assert_status(aw_run(&o, r), AW_OK, NULL);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = aw_test_tmpdir();
    f->model = join(f->dir, "m16");
    f->tokens = join(f->model, "calibration.tokens");
    f->out = join(f->dir, "q16");
    synth_tiny(f->model, AW_DT_F16);
    quantize(f->model, f->out, &f->r);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    aw_run_result_free(&f->r);
    aw_test_rmtree(f->dir);
    free(f->dir);
    free(f->model);
    free(f->tokens);
    free(f->out);
    free(f);
    return 0;
}

/* The evaluator's number against the pipeline's: 1e-6 relative is the
 * contract; the same sums in the same order should make it exact. */
static void expect_same_ppl(const aw_eval_result *e, const aw_run_result *r, const char *what)
{
    double want = aw_e2e_ppl_q(&r->e2e);
    double rel = fabs(e->ppl - want) / want;
    printf("%s: pipeline W8A8 perplexity %.17g, eval %.17g (relative difference %.3g%s)\n", what,
           want, e->ppl, rel, e->ppl == want ? ", bit-exact" : "");
    assert_int_equal(e->n_pred, r->e2e.n_pred);
    assert_int_equal(e->n_seq, r->holdout_seqs);
    assert_int_equal(e->first_seq, r->calib_seqs);
    assert_true(isfinite(e->ppl));
    assert_true(rel <= 1e-6);
}

static void test_reproduces_pipeline_ppl(void **state)
{
    fixture *f = *state;
    aw_eval_result e;
    aw_assert_status(aw_eval(f->out, f->tokens, HOLDOUT, BATCH, 1, &e), AW_OK, NULL);
    expect_same_ppl(&e, &f->r, "F16");
    assert_int_equal(e.n_seq, 10);
    assert_int_equal(e.n_pred, 10 * (SEQ_LEN - 1));
    assert_true(fabs(e.nll - f->r.e2e.nll_q) <= 1e-9 * fabs(f->r.e2e.nll_q));

    /* holdout 0 evaluates every sequence */
    aw_eval_result all;
    aw_assert_status(aw_eval(f->out, f->tokens, 0.0, BATCH, 1, &all), AW_OK, NULL);
    assert_int_equal(all.n_seq, N_SEQ);
    assert_int_equal(all.first_seq, 0);
    assert_int_equal(all.n_pred, (uint64_t)N_SEQ * (SEQ_LEN - 1));
    assert_true(isfinite(all.ppl) && all.ppl > 1.0);
}

static void test_bf16_reproduces_pipeline_ppl(void **state)
{
    fixture *f = *state;
    char *model = join(f->dir, "mbf16"), *out = join(f->dir, "qbf16"), *tok = join(model, "calibration.tokens");
    synth_tiny(model, AW_DT_BF16);
    aw_run_result r;
    quantize(model, out, &r);
    aw_eval_result e;
    aw_assert_status(aw_eval(out, tok, HOLDOUT, BATCH, 1, &e), AW_OK, NULL);
    expect_same_ppl(&e, &r, "BF16");
    aw_run_result_free(&r);
    free(model);
    free(out);
    free(tok);
}

/* What the loader makes of a block: the written steps, biases as bias_plain,
 * equalization factors of 1. */
static void test_qblock_load(void **state)
{
    fixture *f = *state;
    char *cfg_path = join(f->out, "config.json");
    aw_model_config c;
    aw_assert_status(aw_config_read(cfg_path, &c), AW_OK, NULL);
    aw_model_files *mf = NULL;
    aw_assert_status(aw_mf_open(f->out, &mf), AW_OK, NULL);
    aw_qblock q;
    aw_assert_status(aw_qblock_create(&c, &AW_SCHEME_W8A8, &q), AW_OK, NULL);
    aw_assert_status(aw_qblock_load(&c, mf, 1, &q), AW_OK, NULL);
    int n_lin = aw_arch_of(&c)->n_lin;
    assert_int_equal(q.n_lin, n_lin);
    for (int k = 0; k < n_lin; k++) {
        const aw_layer_metrics *m = &f->r.layers[1 * n_lin + k];
        assert_true(q.lin[k].w_step == m->w_step);
        assert_true(q.lin[k].x_step == m->x_step);
        assert_memory_equal(q.lin[k].bias, q.lin[k].bias_plain, (size_t)q.lin[k].out * sizeof(float));
    }
    for (int t = 0; t < AW_TAP_COUNT; t++)
        for (int j = 0; j < aw_arch_tap_width(&c, (aw_tap_id)t); j++) assert_true(q.s[t][j] == 1.0f);
    aw_qblock_destroy(&q);
    aw_mf_close(mf);
    free(cfg_path);
}

/* ---- hand-built copies of the checkpoint ------------------------------- */

typedef enum {
    ED_NONE,         /* every tensor as stored */
    ED_SCALES_F32,   /* every *_scale as an F32 scalar (shape []) */
    ED_WEIGHT_F16,   /* target: the INT8 values stored as F16 */
    ED_DROP,         /* target left out */
    ED_PER_CHANNEL,  /* target: 4 values */
    ED_ZERO,         /* target: all bytes 0 */
    ED_TRANSPOSE,    /* target: shape [in, out] */
} edit_kind;

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void copy_file(const char *src_dir, const char *dst_dir, const char *name)
{
    char *s = join(src_dir, name), *d = join(dst_dir, name);
    size_t n = 0;
    uint8_t *buf = aw_test_read_bytes(s, &n);
    aw_test_write_bytes(d, buf, n);
    free(buf);
    free(s);
    free(d);
}

/* dst (new folder) = src's tensors in one model.safetensors, one edited, and
 * src's config.json; nothing else (no index, no report). */
static void rewrite(const char *src, const char *dst, edit_kind ed, const char *target)
{
    aw_model_files *mf = NULL;
    aw_assert_status(aw_mf_open(src, &mf), AW_OK, NULL);
    size_t n = aw_mf_count(mf);
    aw_st_entry *e = calloc(n, sizeof *e);
    void **bufs = calloc(n, sizeof *bufs);
    assert_true(e && bufs);
    size_t k = 0;
    int hit = 0;
    for (size_t i = 0; i < n; i++) {
        const aw_st_file *sf = NULL;
        const aw_st_tensor *t = aw_mf_at(mf, i, &sf);
        size_t bytes = (size_t)(t->end - t->begin);
        bufs[i] = malloc(bytes + 16);
        assert_non_null(bufs[i]);
        aw_assert_status(aw_st_read(sf, t, bufs[i], bytes), AW_OK, NULL);
        aw_st_entry x = {.name = t->name, .dtype = t->dtype, .ndim = t->ndim, .data = bufs[i]};
        memcpy(x.shape, t->shape, sizeof x.shape);
        int is_target = target && strcmp(t->name, target) == 0;
        hit |= is_target;
        if (ed == ED_SCALES_F32 && ends_with(t->name, "_scale")) {
            float v;
            aw_assert_status(aw_st_read_f32(sf, t, &v, 1), AW_OK, NULL);
            memcpy(bufs[i], &v, sizeof v);
            x.dtype = AW_DT_F32;
            x.ndim = 0;
            hit = 1;
        } else if (is_target && ed == ED_DROP) {
            continue;
        } else if (is_target && ed == ED_WEIGHT_F16) {
            size_t m = (size_t)aw_st_numel(t);
            float *fv = malloc(m * sizeof *fv);
            void *h = malloc(m * 2);
            assert_true(fv && h && t->dtype == AW_DT_I8);
            for (size_t j = 0; j < m; j++) fv[j] = ((const int8_t *)bufs[i])[j];
            aw_assert_status(aw_convert_from_f32(AW_DT_F16, fv, h, m), AW_OK, NULL);
            free(fv);
            free(bufs[i]);
            bufs[i] = h;
            x.data = h;
            x.dtype = AW_DT_F16;
        } else if (is_target && ed == ED_PER_CHANNEL) {
            float v;
            aw_assert_status(aw_st_read_f32(sf, t, &v, 1), AW_OK, NULL);
            free(bufs[i]);
            float *pc = malloc(4 * sizeof *pc);
            assert_non_null(pc);
            for (int j = 0; j < 4; j++) pc[j] = v;
            bufs[i] = pc;
            x = (aw_st_entry){.name = t->name, .dtype = AW_DT_F32, .ndim = 1, .shape = {4}, .data = pc};
        } else if (is_target && ed == ED_ZERO) {
            memset(bufs[i], 0, bytes);
        } else if (is_target && ed == ED_TRANSPOSE) {
            assert_int_equal(t->ndim, 2);
            x.shape[0] = t->shape[1];
            x.shape[1] = t->shape[0];
        }
        e[k++] = x;
    }
    assert_true(ed == ED_NONE || hit);
    aw_assert_status(aw_mkdir_p(dst), AW_OK, NULL);
    char *path = join(dst, AW_SINGLE_NAME);
    const aw_st_meta meta[] = {{"format", "pt"}};
    aw_assert_status(aw_st_write_file(path, e, k, meta, 1), AW_OK, NULL);
    copy_file(src, dst, "config.json");
    for (size_t i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    free(e);
    free(path);
    aw_mf_close(mf);
}

static void test_rewritten_checkpoint_same_ppl(void **state)
{
    fixture *f = *state;
    char *one = join(f->dir, "one-file"), *f32 = join(f->dir, "scales-f32");
    rewrite(f->out, one, ED_NONE, NULL);
    rewrite(f->out, f32, ED_SCALES_F32, NULL);
    aw_eval_result a, b, c;
    aw_assert_status(aw_eval(f->out, f->tokens, HOLDOUT, BATCH, 1, &a), AW_OK, NULL);
    /* no report, no index, one file: the evaluator never needed them */
    aw_assert_status(aw_eval(one, f->tokens, HOLDOUT, BATCH, 1, &b), AW_OK, NULL);
    /* F16 steps are exact in F32; shape [] is a single value as [1] is */
    aw_assert_status(aw_eval(f32, f->tokens, HOLDOUT, BATCH, 1, &c), AW_OK, NULL);
    assert_true(a.ppl == b.ppl);
    assert_true(a.ppl == c.ppl);
    aw_test_rmtree(one);
    aw_test_rmtree(f32);
    free(one);
    free(f32);
}

/* A copy of the checkpoint whose config.json has quantization_config.<group
 * path>.<key> = value (value stolen; NULL deletes the key). */
static char *patched(const fixture *f, const char *name, const char *obj_path, const char *key, json_t *value)
{
    char *dst = join(f->dir, name);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", dst, f->out, dst);
    assert_int_equal(system(cmd), 0);
    char *cfg = join(dst, "config.json");
    json_error_t jerr;
    json_t *root = json_load_file(cfg, 0, &jerr);
    assert_non_null(root);
    json_t *o = json_object_get(root, "quantization_config");
    assert_non_null(o);
    char pathbuf[256];
    snprintf(pathbuf, sizeof pathbuf, "%s", obj_path);
    for (char *tok = strtok(pathbuf, "."); tok; tok = strtok(NULL, ".")) {
        o = json_object_get(o, tok);
        assert_non_null(o);
    }
    if (value) assert_int_equal(json_object_set_new(o, key, value), 0);
    else assert_int_equal(json_object_del(o, key), 0);
    assert_int_equal(json_dump_file(root, cfg, JSON_INDENT(2) | JSON_SORT_KEYS), 0);
    json_decref(root);
    free(cfg);
    return dst;
}

/* config.json of dir is refused by the check and by the evaluation. */
static void expect_config_refused(const fixture *f, const char *dir, aw_status want, const char *needle)
{
    char *cfg = join(dir, "config.json");
    aw_assert_status(aw_check_quant_config(cfg, NULL), want, needle);
    aw_eval_result e;
    aw_assert_status(aw_eval(dir, f->tokens, HOLDOUT, BATCH, 1, &e), want, needle);
    printf("refused: %s\n", aw_err_message());
    free(cfg);
}

static void test_config_refusals(void **state)
{
    fixture *f = *state;
    char *cfg = join(f->out, "config.json");
    aw_assert_status(aw_check_quant_config(cfg, NULL), AW_OK, NULL);
    free(cfg);
    const struct {
        const char *name, *path, *key;
        json_t *value;
        const char *needle;
    } cases[] = {
        {"dyn", "config_groups.group_0.input_activations", "dynamic", json_true(), "input activations are dynamic"},
        {"dynlocal", "config_groups.group_0.input_activations", "dynamic", json_string("local"), "dynamic"},
        {"chan", "config_groups.group_0.weights", "strategy", json_string("channel"), "per-tensor scales only"},
        {"tok", "config_groups.group_0.input_activations", "strategy", json_string("token"), "per-tensor scales only"},
        {"grp", "config_groups.group_0.weights", "group_size", json_integer(128), "per-tensor scales only"},
        {"w4", "config_groups.group_0.weights", "num_bits", json_integer(4), "4-bit"},
        {"asym", "config_groups.group_0.input_activations", "symmetric", json_false(), "asymmetric"},
        {"fp8", "config_groups.group_0.weights", "type", json_string("float"), "type \"float\""},
        {"w8a16", "config_groups.group_0", "input_activations", json_null(), "input activations are not quantized"},
        {"gptq", "", "quant_method", json_string("gptq"), "quant_method \"gptq\""},
        {"packed", "", "format", json_string("pack-quantized"), "format \"pack-quantized\""},
        {"frozen", "", "quantization_status", json_string("frozen"), "quantization_status \"frozen\""},
        {"kv", "", "kv_cache_scheme", json_object(), "KV-cache"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = patched(f, cases[i].name, cases[i].path, cases[i].key, cases[i].value);
        expect_config_refused(f, dir, AW_ERR_UNSUPPORTED, cases[i].needle);
        aw_test_rmtree(dir);
        free(dir);
    }
    /* naive-quantized also stores INT8 weights: accepted */
    char *dir = patched(f, "naive", "", "format", json_string("naive-quantized"));
    char *c2 = join(dir, "config.json");
    aw_assert_status(aw_check_quant_config(c2, NULL), AW_OK, NULL);
    aw_test_rmtree(dir);
    free(c2);
    free(dir);
    /* no quantization_config at all */
    dir = join(f->dir, "noqc");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", f->out, dir);
    assert_int_equal(system(cmd), 0);
    c2 = join(dir, "config.json");
    json_error_t jerr;
    json_t *root = json_load_file(c2, 0, &jerr);
    assert_non_null(root);
    assert_int_equal(json_object_del(root, "quantization_config"), 0);
    assert_int_equal(json_dump_file(root, c2, JSON_INDENT(2)), 0);
    json_decref(root);
    expect_config_refused(f, dir, AW_ERR_UNSUPPORTED, "not a quantized checkpoint");
    aw_test_rmtree(dir);
    free(c2);
    free(dir);
    /* an unreadable config is a config error naming the file */
    char *missing = join(f->dir, "no-such/config.json");
    aw_assert_status(aw_check_quant_config(missing, NULL), AW_ERR_CONFIG, "no-such/config.json");
    free(missing);
}

static void test_unquantized_model_refused(void **state)
{
    fixture *f = *state;
    aw_eval_result e;
    aw_assert_status(aw_eval(f->model, f->tokens, HOLDOUT, BATCH, 1, &e), AW_ERR_UNSUPPORTED,
                     "not a quantized checkpoint");
}

static void test_tensor_refusals(void **state)
{
    fixture *f = *state;
    const struct {
        edit_kind ed;
        const char *tensor;
        aw_status want;
        const char *needle; /* besides the tensor's name */
    } cases[] = {
        {ED_WEIGHT_F16, "model.decoder.layers.1.fc1.weight", AW_ERR_DTYPE, "has dtype F16; a quantized weight must be I8"},
        {ED_DROP, "model.decoder.layers.0.self_attn.k_proj.input_scale", AW_ERR_MISSING_TENSOR, NULL},
        {ED_PER_CHANNEL, "model.decoder.layers.1.fc2.weight_scale", AW_ERR_UNSUPPORTED, "per-tensor scales only"},
        {ED_ZERO, "model.decoder.layers.0.self_attn.out_proj.input_scale", AW_ERR_NONFINITE, "finite and positive"},
        {ED_TRANSPOSE, "model.decoder.layers.1.fc1.weight", AW_ERR_ST_SHAPE, "[128, 512]; config.json implies [512, 128]"},
        {ED_DROP, "model.decoder.layers.1.final_layer_norm.bias", AW_ERR_MISSING_TENSOR, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "edit%zu", i);
        char *dir = join(f->dir, name);
        rewrite(f->out, dir, cases[i].ed, cases[i].tensor);
        aw_eval_result e;
        aw_assert_status(aw_eval(dir, f->tokens, HOLDOUT, BATCH, 1, &e), cases[i].want, cases[i].tensor);
        if (cases[i].needle) assert_non_null(strstr(aw_err_message(), cases[i].needle));
        printf("refused: %s\n", aw_err_message());
        aw_test_rmtree(dir);
        free(dir);
    }
}

static void test_bad_arguments(void **state)
{
    fixture *f = *state;
    aw_eval_result e;
    aw_assert_status(aw_eval(f->out, f->tokens, 1.0, BATCH, 1, &e), AW_ERR_ARG, "--holdout");
    aw_assert_status(aw_eval(f->out, f->tokens, -0.1, BATCH, 1, &e), AW_ERR_ARG, "--holdout");
    aw_assert_status(aw_eval(f->out, f->tokens, HOLDOUT, 0, 1, &e), AW_ERR_ARG, "--batch");
    char *none = join(f->dir, "none.tokens");
    aw_assert_status(aw_eval(f->out, none, HOLDOUT, BATCH, 1, &e), AW_ERR_IO, "none.tokens");
    free(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reproduces_pipeline_ppl),
        cmocka_unit_test(test_bf16_reproduces_pipeline_ppl),
        cmocka_unit_test(test_qblock_load),
        cmocka_unit_test(test_rewritten_checkpoint_same_ppl),
        cmocka_unit_test(test_config_refusals),
        cmocka_unit_test(test_unquantized_model_refused),
        cmocka_unit_test(test_tensor_refusals),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
