/* test_config.c - config.json reading and writing, the support check, the
 * built-in shape table, parameter counts and block tensor names/shapes. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aw_config.h"
#include "testutil.h"

static char *fixture(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/fixtures/opt-configs/%s", name);
    return aw_test_source_path(rel);
}

static void read_fixture(const char *name, aw_model_config *c)
{
    char *p = fixture(name);
    aw_status st = aw_config_read(p, c);
    if (st != AW_OK) fail_msg("%s: %s", name, aw_err_message());
    free(p);
}

/* Write text to dir/config.json; returns the malloc'd path. */
static char *write_config(const char *dir, const char *text)
{
    size_t n = strlen(dir) + 16;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/config.json", dir);
    aw_test_write_bytes(p, text, strlen(text));
    return p;
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void assert_config_equal(const aw_model_config *a, const aw_model_config *b)
{
    assert_string_equal(a->model_type, b->model_type);
    assert_string_equal(a->activation_function, b->activation_function);
    assert_int_equal(a->hidden_size, b->hidden_size);
    assert_int_equal(a->num_hidden_layers, b->num_hidden_layers);
    assert_int_equal(a->num_attention_heads, b->num_attention_heads);
    assert_int_equal(a->ffn_dim, b->ffn_dim);
    assert_int_equal(a->vocab_size, b->vocab_size);
    assert_int_equal(a->max_position_embeddings, b->max_position_embeddings);
    assert_int_equal(a->word_embed_proj_dim, b->word_embed_proj_dim);
    assert_int_equal(a->do_layer_norm_before, b->do_layer_norm_before);
    assert_int_equal(a->enable_bias, b->enable_bias);
    assert_int_equal(a->torch_dtype, b->torch_dtype);
    assert_int_equal(a->pad_token_id, b->pad_token_id);
    assert_int_equal(a->bos_token_id, b->bos_token_id);
    assert_int_equal(a->eos_token_id, b->eos_token_id);
}

/* ---- reading ------------------------------------------------------------- */

static void test_read_opt125m(void **state)
{
    (void)state;
    aw_model_config c;
    read_fixture("opt-125m.json", &c);
    assert_string_equal(c.name, ""); /* only table shapes carry a name */
    assert_string_equal(c.model_type, "opt");
    assert_string_equal(c.activation_function, "relu");
    assert_int_equal(c.hidden_size, 768);
    assert_int_equal(c.num_hidden_layers, 12);
    assert_int_equal(c.num_attention_heads, 12);
    assert_int_equal(c.ffn_dim, 3072);
    assert_int_equal(c.vocab_size, 50272);
    assert_int_equal(c.max_position_embeddings, 2048);
    assert_int_equal(c.word_embed_proj_dim, 768);
    assert_int_equal(c.do_layer_norm_before, 1);
    assert_int_equal(c.enable_bias, 1);
    assert_int_equal(c.torch_dtype, AW_DT_F16);
    assert_int_equal(c.pad_token_id, 1);
    assert_int_equal(c.bos_token_id, 2);
    assert_int_equal(c.eos_token_id, 2);
    assert_int_equal(aw_config_check_supported(&c, "opt-125m.json"), AW_OK);
    /* the file and the table agree */
    assert_config_equal(&c, aw_shape_find("opt-125m"));
    assert_int_equal(aw_config_param_count(&c), 125239296ull);
}

static void test_read_opt350m_unsupported(void **state)
{
    (void)state;
    aw_model_config c;
    read_fixture("opt-350m.json", &c);
    assert_int_equal(c.hidden_size, 1024);
    assert_int_equal(c.num_hidden_layers, 24);
    assert_int_equal(c.num_attention_heads, 16);
    assert_int_equal(c.ffn_dim, 4096);
    assert_int_equal(c.word_embed_proj_dim, 512);
    assert_int_equal(c.do_layer_norm_before, 0);
    assert_config_equal(&c, aw_shape_find("opt-350m"));

    /* both reasons in one message, naming the label */
    aw_status st = aw_config_check_supported(&c, "models/opt-350m");
    aw_assert_status(st, AW_ERR_UNSUPPORTED, "models/opt-350m");
    aw_assert_status(st, AW_ERR_UNSUPPORTED, "do_layer_norm_before=false");
    aw_assert_status(st, AW_ERR_UNSUPPORTED, "word_embed_proj_dim 512 != hidden_size 1024");
    aw_assert_status(st, AW_ERR_UNSUPPORTED, "project_in/project_out");
}

/* Keys absent: transformers' OPTConfig defaults. */
static void test_read_defaults(void **state)
{
    (void)state;
    aw_model_config c;
    read_fixture("minimal.json", &c);
    assert_int_equal(c.hidden_size, 64);
    assert_int_equal(c.word_embed_proj_dim, 64);
    assert_int_equal(c.do_layer_norm_before, 1);
    assert_int_equal(c.enable_bias, 1);
    assert_string_equal(c.activation_function, "relu");
    assert_int_equal(c.torch_dtype, AW_DT_F32);
    assert_int_equal(c.pad_token_id, 1);
    assert_int_equal(c.bos_token_id, 2);
    assert_int_equal(c.eos_token_id, 2);
    assert_int_equal(aw_config_check_supported(&c, "minimal"), AW_OK);
}

static void test_read_llama(void **state)
{
    (void)state;
    aw_model_config c;
    char *p = fixture("llama.json");
    char want[1024];
    snprintf(want, sizeof want,
             "%s: model_type 'llama' is not supported (this version quantizes OPT models only)", p);
    aw_status st = aw_config_read(p, &c);
    aw_assert_status(st, AW_ERR_UNSUPPORTED, NULL);
    assert_string_equal(aw_err_message(), want);
    free(p);
}

static void test_read_broken(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        aw_status want;
        const char *needle;
    } cases[] = {
        {"missing-hidden-size.json", AW_ERR_CONFIG, "\"hidden_size\" is missing"},
        {"hidden-size-string.json", AW_ERR_CONFIG, "\"hidden_size\" must be an integer"},
        {"hidden-not-divisible.json", AW_ERR_CONFIG,
         "hidden_size 768 is not divisible by num_attention_heads 10"},
        {"negative-layers.json", AW_ERR_CONFIG, "\"num_hidden_layers\" is -12"},
        {"negative-ffn.json", AW_ERR_CONFIG, "\"ffn_dim\" is -3072"},
        {"huge-vocab.json", AW_ERR_CONFIG, "\"vocab_size\" is 99999999999"},
        {"bad-dtype.json", AW_ERR_CONFIG, "torch_dtype 'int8'"},
        {"duplicate-key.json", AW_ERR_CONFIG, "invalid JSON"},
        {"bool-as-int.json", AW_ERR_CONFIG, "\"do_layer_norm_before\" must be true or false"},
        {"truncated-json.json", AW_ERR_CONFIG, "invalid JSON"},
        {"not-object.json", AW_ERR_CONFIG, "not a JSON object"},
        {"missing-model-type.json", AW_ERR_CONFIG, "\"model_type\" is missing"},
        {"no-such-file.json", AW_ERR_CONFIG, "no-such-file.json"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = fixture(cases[i].file);
        aw_model_config c;
        aw_err_clear();
        aw_status st = aw_config_read(p, &c);
        aw_assert_status(st, cases[i].want, cases[i].needle);
        aw_assert_status(st, cases[i].want, cases[i].file); /* names the file */
        free(p);
    }
}

static void test_read_variants(void **state)
{
    (void)state;
    char *dir = aw_test_tmpdir();
    aw_model_config c;
    const char *base = "{\"model_type\": \"opt\", \"hidden_size\": 64, \"num_hidden_layers\": 2,"
                       " \"num_attention_heads\": 4, \"ffn_dim\": 256, \"vocab_size\": 1000,"
                       " \"max_position_embeddings\": 128";
    char text[1024];

    snprintf(text, sizeof text, "%s, \"torch_dtype\": \"bfloat16\"}", base);
    char *p = write_config(dir, text);
    assert_int_equal(aw_config_read(p, &c), AW_OK);
    assert_int_equal(c.torch_dtype, AW_DT_BF16);
    free(p);

    snprintf(text, sizeof text, "%s, \"torch_dtype\": \"float32\"}", base);
    p = write_config(dir, text);
    assert_int_equal(aw_config_read(p, &c), AW_OK);
    assert_int_equal(c.torch_dtype, AW_DT_F32);
    free(p);

    /* newer transformers write "dtype" */
    snprintf(text, sizeof text, "%s, \"dtype\": \"float16\"}", base);
    p = write_config(dir, text);
    assert_int_equal(aw_config_read(p, &c), AW_OK);
    assert_int_equal(c.torch_dtype, AW_DT_F16);
    free(p);

    /* null token id is kept as -1 */
    snprintf(text, sizeof text, "%s, \"pad_token_id\": null}", base);
    p = write_config(dir, text);
    assert_int_equal(aw_config_read(p, &c), AW_OK);
    assert_int_equal(c.pad_token_id, -1);
    free(p);

    snprintf(text, sizeof text, "%s, \"eos_token_id\": 1000}", base);
    p = write_config(dir, text);
    aw_assert_status(aw_config_read(p, &c), AW_ERR_CONFIG, "\"eos_token_id\" is 1000");
    free(p);

    snprintf(text, sizeof text, "%s, \"activation_function\": \"gelu\"}", base);
    p = write_config(dir, text);
    assert_int_equal(aw_config_read(p, &c), AW_OK);
    aw_assert_status(aw_config_check_supported(&c, "gelu-model"), AW_ERR_UNSUPPORTED,
                     "activation_function 'gelu'");
    free(p);

    snprintf(text, sizeof text, "%s, \"activation_function\": \"gelu_pytorch_tanh_long\"}", base);
    p = write_config(dir, text);
    aw_assert_status(aw_config_read(p, &c), AW_ERR_UNSUPPORTED, "gelu_pytorch_tanh_long");
    free(p);

    snprintf(text, sizeof text, "%s, \"enable_bias\": false}", base);
    p = write_config(dir, text);
    assert_int_equal(aw_config_read(p, &c), AW_OK);
    assert_int_equal(c.enable_bias, 0);
    aw_assert_status(aw_config_check_supported(&c, "nobias"), AW_ERR_UNSUPPORTED,
                     "enable_bias=false");
    free(p);

    snprintf(text, sizeof text, "%s, \"layer_norm_elementwise_affine\": false}", base);
    p = write_config(dir, text);
    aw_assert_status(aw_config_read(p, &c), AW_ERR_UNSUPPORTED,
                     "layer_norm_elementwise_affine=false");
    free(p);

    snprintf(text, sizeof text, "%s, \"max_position_embeddings\": 0}", base);
    /* the key appears twice: duplicates are refused before the value is seen */
    p = write_config(dir, text);
    aw_assert_status(aw_config_read(p, &c), AW_ERR_CONFIG, "invalid JSON");
    free(p);

    p = write_config(dir, "{\"model_type\": \"opt\", \"hidden_size\": 64, \"num_hidden_layers\": 2,"
                          " \"num_attention_heads\": 4, \"ffn_dim\": 256, \"vocab_size\": 1000,"
                          " \"max_position_embeddings\": 0}");
    aw_assert_status(aw_config_read(p, &c), AW_ERR_CONFIG, "\"max_position_embeddings\" is 0");
    free(p);

    p = write_config(dir, "{\"model_type\": \"opt\", \"hidden_size\": 64.0, \"num_hidden_layers\": 2,"
                          " \"num_attention_heads\": 4, \"ffn_dim\": 256, \"vocab_size\": 1000,"
                          " \"max_position_embeddings\": 128}");
    aw_assert_status(aw_config_read(p, &c), AW_ERR_CONFIG, "\"hidden_size\" must be an integer");
    free(p);

    aw_test_rmtree(dir);
    free(dir);
}

/* ---- support check -------------------------------------------------------- */

static void test_check_supported(void **state)
{
    (void)state;
    for (size_t i = 0; i < aw_shape_count(); i++) {
        const aw_model_config *s = aw_shape_at(i);
        aw_status st = aw_config_check_supported(s, s->name);
        if (strcmp(s->name, "opt-350m") == 0)
            aw_assert_status(st, AW_ERR_UNSUPPORTED, "opt-350m");
        else
            assert_int_equal(st, AW_OK);
    }
    aw_model_config c = *aw_shape_find("opt-1.3b");
    snprintf(c.activation_function, sizeof c.activation_function, "gelu");
    c.enable_bias = 0;
    aw_status st = aw_config_check_supported(&c, "custom");
    aw_assert_status(st, AW_ERR_UNSUPPORTED, "custom: unsupported: ");
    aw_assert_status(st, AW_ERR_UNSUPPORTED, "activation_function 'gelu' (only relu); linear");
    aw_assert_status(st, AW_ERR_UNSUPPORTED, "enable_bias=false");
}

/* ---- writing ---------------------------------------------------------------- */

static void test_write_round_trip(void **state)
{
    (void)state;
    char *dir = aw_test_tmpdir();
    char *p = write_config(dir, "");
    aw_model_config back;

    for (size_t i = 0; i < aw_shape_count(); i++) {
        const aw_model_config *s = aw_shape_at(i);
        assert_int_equal(aw_config_write(p, s, NULL), AW_OK);
        assert_int_equal(aw_config_read(p, &back), AW_OK);
        assert_config_equal(&back, s);
    }

    aw_model_config c;
    read_fixture("minimal.json", &c);
    c.torch_dtype = AW_DT_BF16;
    c.pad_token_id = -1; /* written as null */
    c.enable_bias = 0;
    c.do_layer_norm_before = 0;
    c.word_embed_proj_dim = 32;
    assert_int_equal(aw_config_write(p, &c, NULL), AW_OK);
    assert_int_equal(aw_config_read(p, &back), AW_OK);
    assert_config_equal(&back, &c);

    /* the fixture, read, written and read again */
    read_fixture("opt-125m.json", &c);
    assert_int_equal(aw_config_write(p, &c, NULL), AW_OK);
    assert_int_equal(aw_config_read(p, &back), AW_OK);
    assert_config_equal(&back, &c);

    aw_test_rmtree(dir);
    free(dir);
    free(p);
}

static void test_write_shape(void **state)
{
    (void)state;
    char *dir = aw_test_tmpdir();
    char *p = write_config(dir, "");
    const char *q = "{\"quant_method\": \"aweq\", \"bits\": 4, \"group_size\": 128}";
    assert_int_equal(aw_config_write(p, aw_shape_find("opt-125m"), q), AW_OK);

    size_t n;
    uint8_t *text = aw_test_read_bytes(p, &n);
    text[n] = '\0';
    /* 2-space indent, sorted keys, final newline, as transformers writes it */
    assert_true(strncmp((char *)text, "{\n  \"_name_or_path\": \"opt-125m\",\n", 33) == 0);
    assert_non_null(strstr((char *)text, "\n  \"dropout\": 0.1,\n"));
    assert_non_null(strstr((char *)text, "\n  \"architectures\": [\n    \"OPTForCausalLM\"\n  ],\n"));
    assert_string_equal((char *)text + n - 3, "\n}\n");

    json_error_t jerr;
    json_t *root = json_loadb((char *)text, n, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "model_type")), "opt");
    assert_string_equal(json_string_value(json_object_get(root, "torch_dtype")), "float16");
    assert_string_equal(json_string_value(json_object_get(root, "activation_function")), "relu");
    assert_string_equal(json_string_value(json_object_get(root, "prefix")), "</s>");
    assert_true(json_is_true(json_object_get(root, "do_layer_norm_before")));
    assert_true(json_is_true(json_object_get(root, "enable_bias")));
    assert_int_equal(json_integer_value(json_object_get(root, "hidden_size")), 768);
    assert_int_equal(json_integer_value(json_object_get(root, "word_embed_proj_dim")), 768);
    json_t *arch = json_object_get(root, "architectures");
    assert_int_equal(json_array_size(arch), 1);
    assert_string_equal(json_string_value(json_array_get(arch, 0)), "OPTForCausalLM");
    json_t *qc = json_object_get(root, "quantization_config");
    assert_true(json_is_object(qc));
    assert_string_equal(json_string_value(json_object_get(qc, "quant_method")), "aweq");
    assert_int_equal(json_integer_value(json_object_get(qc, "bits")), 4);
    assert_int_equal(json_integer_value(json_object_get(qc, "group_size")), 128);
    json_decref(root);
    free(text);

    /* no leftover temporary beside it */
    char tmpname[512];
    snprintf(tmpname, sizeof tmpname, "rm -f '%s/config.json'; [ -z \"$(ls -A '%s')\" ]", dir,
             dir);
    assert_int_equal(system(tmpname), 0);

    aw_test_rmtree(dir);
    free(dir);
    free(p);
}

static void test_write_bad_args(void **state)
{
    (void)state;
    char *dir = aw_test_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    const aw_model_config *s = aw_shape_find("opt-125m");
    aw_assert_status(aw_config_write(path, s, "[1, 2]"), AW_ERR_ARG, "JSON object");
    aw_assert_status(aw_config_write(path, s, "{\"bits\": "), AW_ERR_ARG, "not valid JSON");
    aw_assert_status(aw_config_write(path, s, "{\"a\": 1, \"a\": 2}"), AW_ERR_ARG, path);
    aw_model_config c = *s;
    c.torch_dtype = AW_DT_I8;
    aw_assert_status(aw_config_write(path, &c, NULL), AW_ERR_ARG, "torch_dtype");
    assert_false(file_exists(path)); /* nothing written on failure */
    aw_test_rmtree(dir);
    free(dir);
}

/* ---- shape table and parameter counts ------------------------------------- */

static void test_shape_table(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int d, layers, heads, ffn, wp, pre_ln;
        uint64_t block, total;
    } want[] = {
        /* totals match the Hugging Face checkpoints' parameter counts */
        {"opt-125m", 768, 12, 12, 3072, 768, 1, 7087872ull, 125239296ull},
        {"opt-350m", 1024, 24, 16, 4096, 512, 0, 12596224ull, 331196416ull},
        {"opt-1.3b", 2048, 24, 32, 8192, 2048, 1, 50358272ull, 1315758080ull},
        {"opt-2.7b", 2560, 32, 32, 10240, 2560, 1, 78676480ull, 2651596800ull},
        {"opt-6.7b", 4096, 32, 32, 16384, 4096, 1, 201379840ull, 6658473984ull},
        {"opt-13b", 5120, 40, 40, 20480, 5120, 1, 314639360ull, 12853473280ull},
        {"opt-30b", 7168, 48, 56, 28672, 7168, 1, 616655872ull, 29974540288ull},
        {"opt-66b", 9216, 64, 72, 36864, 9216, 1, 1019335680ull, 65719701504ull},
        {"opt-175b", 12288, 96, 96, 49152, 12288, 1, 1812099072ull, 174604468224ull},
    };
    assert_int_equal(aw_shape_count(), sizeof want / sizeof want[0]);
    for (size_t i = 0; i < aw_shape_count(); i++) {
        const aw_model_config *s = aw_shape_at(i);
        assert_non_null(s);
        assert_string_equal(s->name, want[i].name);
        assert_ptr_equal(aw_shape_find(want[i].name), s);
        assert_string_equal(s->model_type, "opt");
        assert_string_equal(s->activation_function, "relu");
        assert_int_equal(s->hidden_size, want[i].d);
        assert_int_equal(s->num_hidden_layers, want[i].layers);
        assert_int_equal(s->num_attention_heads, want[i].heads);
        assert_int_equal(s->ffn_dim, want[i].ffn);
        assert_int_equal(s->word_embed_proj_dim, want[i].wp);
        assert_int_equal(s->do_layer_norm_before, want[i].pre_ln);
        assert_int_equal(s->vocab_size, 50272);
        assert_int_equal(s->max_position_embeddings, 2048);
        assert_int_equal(s->enable_bias, 1);
        assert_int_equal(s->torch_dtype, AW_DT_F16);
        assert_int_equal(s->hidden_size % s->num_attention_heads, 0);
        assert_int_equal(aw_config_block_params(s), want[i].block);
        assert_int_equal(aw_config_param_count(s), want[i].total);
    }
    assert_null(aw_shape_at(aw_shape_count()));
}

static void test_shape_find(void **state)
{
    (void)state;
    const aw_model_config *s = aw_shape_find("opt-125m");
    assert_non_null(s);
    assert_ptr_equal(aw_shape_find("facebook/opt-125m"), s);
    assert_ptr_equal(aw_shape_find("OPT-125M"), s);
    assert_ptr_equal(aw_shape_find("Facebook/OPT-125m"), s);
    assert_non_null(aw_shape_find("opt-1.3b"));
    assert_non_null(aw_shape_find("facebook/opt-175b"));
    assert_null(aw_shape_find("opt-7b"));
    assert_null(aw_shape_find("facebook/"));
    assert_null(aw_shape_find("opt-125"));
    assert_null(aw_shape_find(""));
    assert_null(aw_shape_find(NULL));
}

static void test_param_count(void **state)
{
    (void)state;
    const aw_model_config *s = aw_shape_find("opt-125m");
    /* 4*768*768 + 4*768 + 2*768*3072 + 3072 + 768 + 4*768 */
    assert_int_equal(aw_config_block_params(s), 7087872ull);
    /* 50272*768 + 2050*768 + 12*7,087,872 + 1536 */
    assert_int_equal(aw_config_param_count(s), 125239296ull);

    s = aw_shape_find("opt-175b");
    /* block: 4*12288^2 = 603,979,776; 2*12288*49152 = 1,207,959,552;
     * 4d + ffn + d + 4d = 49,152 + 49,152 + 12,288 + 49,152 = 159,744;
     * sum 1,812,099,072 */
    assert_int_equal(aw_config_block_params(s), 1812099072ull);
    /* 50272*12288 = 617,742,336; 2050*12288 = 25,190,400;
     * 96 * 1,812,099,072 = 173,961,510,912; final LN 24,576 */
    assert_int_equal(aw_config_param_count(s), 174604468224ull);
    assert_true(aw_config_param_count(s) > 174000000000ull &&
                aw_config_param_count(s) < 176000000000ull);

    /* opt-350m: no final LN (post-LN), project_in/out 2*1024*512 */
    s = aw_shape_find("opt-350m");
    assert_int_equal(aw_config_param_count(s),
                     50272ull * 512 + 2050ull * 1024 + 24ull * 12596224 + 2ull * 1024 * 512);
}

/* ---- tensor names and shapes -------------------------------------------------- */

static void test_block_tensors(void **state)
{
    (void)state;
    static const char *const names[AW_BT_COUNT] = {
        "model.decoder.layers.11.self_attn.q_proj.weight",
        "model.decoder.layers.11.self_attn.q_proj.bias",
        "model.decoder.layers.11.self_attn.k_proj.weight",
        "model.decoder.layers.11.self_attn.k_proj.bias",
        "model.decoder.layers.11.self_attn.v_proj.weight",
        "model.decoder.layers.11.self_attn.v_proj.bias",
        "model.decoder.layers.11.self_attn.out_proj.weight",
        "model.decoder.layers.11.self_attn.out_proj.bias",
        "model.decoder.layers.11.self_attn_layer_norm.weight",
        "model.decoder.layers.11.self_attn_layer_norm.bias",
        "model.decoder.layers.11.fc1.weight",
        "model.decoder.layers.11.fc1.bias",
        "model.decoder.layers.11.fc2.weight",
        "model.decoder.layers.11.fc2.bias",
        "model.decoder.layers.11.final_layer_norm.weight",
        "model.decoder.layers.11.final_layer_norm.bias",
    };
    static const struct {
        int ndim;
        int64_t s0, s1;
    } shapes[AW_BT_COUNT] = {
        {2, 768, 768}, {1, 768, 0}, {2, 768, 768}, {1, 768, 0},
        {2, 768, 768}, {1, 768, 0}, {2, 768, 768}, {1, 768, 0},
        {1, 768, 0},   {1, 768, 0}, {2, 3072, 768}, {1, 3072, 0},
        {2, 768, 3072}, {1, 768, 0}, {1, 768, 0},  {1, 768, 0},
    };
    const aw_model_config *c = aw_shape_find("opt-125m");
    char buf[128];
    uint64_t sum = 0;
    for (int i = 0; i < AW_BT_COUNT; i++) {
        int n = aw_block_tensor_name(11, (aw_block_tensor)i, buf, sizeof buf);
        assert_int_equal(n, (int)strlen(names[i]));
        assert_string_equal(buf, names[i]);
        int ndim;
        int64_t shape[2];
        aw_block_tensor_shape(c, (aw_block_tensor)i, &ndim, shape);
        assert_int_equal(ndim, shapes[i].ndim);
        assert_int_equal(shape[0], shapes[i].s0);
        if (ndim == 2) assert_int_equal(shape[1], shapes[i].s1);
        sum += (uint64_t)shape[0] * (uint64_t)(ndim == 2 ? shape[1] : 1);
    }
    /* the 16 tensors add up to the block count */
    assert_int_equal(sum, aw_config_block_params(c));

    assert_int_equal(aw_block_tensor_name(0, AW_BT_Q_W, buf, sizeof buf),
                     (int)strlen("model.decoder.layers.0.self_attn.q_proj.weight"));
    assert_string_equal(buf, "model.decoder.layers.0.self_attn.q_proj.weight");
    /* does not fit: -1, never a truncated name */
    assert_int_equal(aw_block_tensor_name(0, AW_BT_Q_W, buf, 20), -1);
    assert_int_equal(aw_block_tensor_name(0, AW_BT_Q_W, buf,
                                          strlen("model.decoder.layers.0.self_attn.q_proj.weight")),
                     -1);
    assert_int_equal(aw_block_tensor_name(-1, AW_BT_Q_W, buf, sizeof buf), -1);
    assert_int_equal(aw_block_tensor_name(0, AW_BT_COUNT, buf, sizeof buf), -1);

    /* fc1/fc2 of a model where ffn != 4d would catch a swapped shape */
    aw_model_config odd = *c;
    odd.ffn_dim = 1000;
    int ndim;
    int64_t shape[2];
    aw_block_tensor_shape(&odd, AW_BT_FC1_W, &ndim, shape);
    assert_true(ndim == 2 && shape[0] == 1000 && shape[1] == 768);
    aw_block_tensor_shape(&odd, AW_BT_FC2_W, &ndim, shape);
    assert_true(ndim == 2 && shape[0] == 768 && shape[1] == 1000);
}

static void test_model_tensors(void **state)
{
    (void)state;
    assert_string_equal(aw_model_tensor_name(AW_MT_EMBED_TOKENS),
                        "model.decoder.embed_tokens.weight");
    assert_string_equal(aw_model_tensor_name(AW_MT_EMBED_POSITIONS),
                        "model.decoder.embed_positions.weight");
    assert_string_equal(aw_model_tensor_name(AW_MT_FINAL_LN_W),
                        "model.decoder.final_layer_norm.weight");
    assert_string_equal(aw_model_tensor_name(AW_MT_FINAL_LN_B),
                        "model.decoder.final_layer_norm.bias");
    assert_null(aw_model_tensor_name(AW_MT_COUNT));

    int ndim;
    int64_t shape[2];
    const aw_model_config *c = aw_shape_find("opt-125m");
    aw_model_tensor_shape(c, AW_MT_EMBED_TOKENS, &ndim, shape);
    assert_true(ndim == 2 && shape[0] == 50272 && shape[1] == 768);
    aw_model_tensor_shape(c, AW_MT_EMBED_POSITIONS, &ndim, shape);
    assert_true(ndim == 2 && shape[0] == 2050 && shape[1] == 768);
    aw_model_tensor_shape(c, AW_MT_FINAL_LN_W, &ndim, shape);
    assert_true(ndim == 1 && shape[0] == 768);
    aw_model_tensor_shape(c, AW_MT_FINAL_LN_B, &ndim, shape);
    assert_true(ndim == 1 && shape[0] == 768);

    /* embed_tokens is [vocab, word_embed_proj_dim], positions use d */
    c = aw_shape_find("opt-350m");
    aw_model_tensor_shape(c, AW_MT_EMBED_TOKENS, &ndim, shape);
    assert_true(ndim == 2 && shape[0] == 50272 && shape[1] == 512);
    aw_model_tensor_shape(c, AW_MT_EMBED_POSITIONS, &ndim, shape);
    assert_true(ndim == 2 && shape[0] == 2050 && shape[1] == 1024);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_opt125m),
        cmocka_unit_test(test_read_opt350m_unsupported),
        cmocka_unit_test(test_read_defaults),
        cmocka_unit_test(test_read_llama),
        cmocka_unit_test(test_read_broken),
        cmocka_unit_test(test_read_variants),
        cmocka_unit_test(test_check_supported),
        cmocka_unit_test(test_write_round_trip),
        cmocka_unit_test(test_write_shape),
        cmocka_unit_test(test_write_bad_args),
        cmocka_unit_test(test_shape_table),
        cmocka_unit_test(test_shape_find),
        cmocka_unit_test(test_param_count),
        cmocka_unit_test(test_block_tensors),
        cmocka_unit_test(test_model_tensors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
