/* test_config.c - config.json reading and writing (OPT and LLaMA), the
 * refusals, the support check and the built-in shape table. io only: tensor
 * names, shapes and parameter counts belong to the family descriptor and are
 * tested in tests/pipeline/test_arch.c. */
#include <jansson.h>
#include <stdarg.h>
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

/* Every field but name (only table shapes carry one; a file read leaves it ""). */
static void assert_config_equal(const aw_model_config *a, const aw_model_config *b)
{
    assert_string_equal(a->model_type, b->model_type);
    assert_int_equal(a->family, b->family);
    assert_string_equal(a->activation_function, b->activation_function);
    assert_int_equal(a->hidden_size, b->hidden_size);
    assert_int_equal(a->num_hidden_layers, b->num_hidden_layers);
    assert_int_equal(a->num_attention_heads, b->num_attention_heads);
    assert_int_equal(a->num_key_value_heads, b->num_key_value_heads);
    assert_int_equal(a->head_dim, b->head_dim);
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
    assert_int_equal(a->tie_word_embeddings, b->tie_word_embeddings);
    /* exact: both are written with 10 significant digits, enough for these */
    assert_true(a->rms_norm_eps == b->rms_norm_eps);
    assert_true(a->rope_theta == b->rope_theta);
    assert_int_equal(a->attention_bias, b->attention_bias);
    assert_int_equal(a->mlp_bias, b->mlp_bias);
}

/* A LLaMA config.json in dir: the required keys, then (key, JSON value)
 * pairs ending with a NULL key; a pair replaces the key, a NULL value removes
 * it. Returns the malloc'd path. */
static char *write_llama(const char *dir, ...)
{
    json_t *root = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i}", "model_type", "llama",
                             "hidden_size", 64, "num_hidden_layers", 2, "num_attention_heads", 4,
                             "intermediate_size", 176, "vocab_size", 1000,
                             "max_position_embeddings", 128);
    assert_non_null(root);
    va_list ap;
    va_start(ap, dir);
    for (const char *key; (key = va_arg(ap, const char *)) != NULL;) {
        const char *value = va_arg(ap, const char *);
        if (!value) {
            json_object_del(root, key);
            continue;
        }
        json_error_t jerr;
        json_t *v = json_loads(value, JSON_DECODE_ANY, &jerr);
        if (!v) fail_msg("bad test JSON for %s: %s", key, value);
        assert_int_equal(json_object_set_new(root, key, v), 0);
    }
    va_end(ap);
    char *text = json_dumps(root, JSON_INDENT(2));
    assert_non_null(text);
    json_decref(root);
    char *p = write_config(dir, text);
    free(text);
    return p;
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
    /* family fields: no GQA, tied head, nothing LLaMA-only set */
    assert_int_equal(c.family, AW_FAMILY_OPT);
    assert_int_equal(c.num_key_value_heads, 12);
    assert_int_equal(c.head_dim, 64);
    assert_int_equal(c.tie_word_embeddings, 1);
    assert_true(c.rms_norm_eps == 0.0 && c.rope_theta == 0.0);
    assert_int_equal(c.attention_bias, 0);
    assert_int_equal(c.mlp_bias, 0);
    assert_int_equal(aw_config_check_supported(&c, "opt-125m.json"), AW_OK);
    /* the file and the table agree */
    assert_config_equal(&c, aw_shape_find("opt-125m"));
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

/* TinyLlama-1.1B's config.json: grouped-query attention, separate head. */
static void test_read_llama(void **state)
{
    (void)state;
    aw_model_config c;
    read_fixture("llama.json", &c);
    assert_string_equal(c.name, "");
    assert_string_equal(c.model_type, "llama");
    assert_int_equal(c.family, AW_FAMILY_LLAMA);
    assert_string_equal(aw_family_name(c.family), "llama");
    assert_string_equal(c.activation_function, "silu");
    assert_int_equal(c.hidden_size, 2048);
    assert_int_equal(c.num_hidden_layers, 22);
    assert_int_equal(c.num_attention_heads, 32);
    assert_int_equal(c.num_key_value_heads, 4);
    assert_int_equal(c.head_dim, 64);
    assert_int_equal(c.ffn_dim, 5632); /* intermediate_size */
    assert_int_equal(c.vocab_size, 32000);
    assert_int_equal(c.max_position_embeddings, 2048);
    assert_int_equal(c.word_embed_proj_dim, 2048);
    assert_int_equal(c.do_layer_norm_before, 1);
    assert_int_equal(c.enable_bias, 0);
    assert_int_equal(c.torch_dtype, AW_DT_BF16);
    assert_int_equal(c.pad_token_id, -1);
    assert_int_equal(c.bos_token_id, 1);
    assert_int_equal(c.eos_token_id, 2);
    assert_int_equal(c.tie_word_embeddings, 0);
    assert_true(c.rms_norm_eps == 1e-5);
    assert_true(c.rope_theta == 10000.0);
    assert_int_equal(c.attention_bias, 0);
    assert_int_equal(c.mlp_bias, 0);
    assert_int_equal(aw_config_check_supported(&c, "llama.json"), AW_OK);
}

/* Keys absent: transformers' LlamaConfig defaults. */
static void test_read_llama_defaults(void **state)
{
    (void)state;
    char *dir = aw_test_tmpdir();
    aw_model_config c;
    char *p = write_llama(dir, NULL);
    assert_int_equal(aw_config_read(p, &c), AW_OK);
    free(p);
    assert_string_equal(c.model_type, "llama");
    assert_int_equal(c.family, AW_FAMILY_LLAMA);
    assert_string_equal(c.activation_function, "silu");
    assert_int_equal(c.hidden_size, 64);
    assert_int_equal(c.num_hidden_layers, 2);
    assert_int_equal(c.num_attention_heads, 4);
    assert_int_equal(c.num_key_value_heads, 4); /* no GQA */
    assert_int_equal(c.head_dim, 16);
    assert_int_equal(c.ffn_dim, 176);
    assert_int_equal(c.vocab_size, 1000);
    assert_int_equal(c.max_position_embeddings, 128);
    assert_int_equal(c.word_embed_proj_dim, 64);
    assert_int_equal(c.torch_dtype, AW_DT_F32);
    assert_int_equal(c.pad_token_id, -1);
    assert_int_equal(c.bos_token_id, 1);
    assert_int_equal(c.eos_token_id, 2);
    assert_int_equal(c.tie_word_embeddings, 0);
    assert_true(c.rms_norm_eps == 1e-6);
    assert_true(c.rope_theta == 10000.0);
    assert_int_equal(c.attention_bias, 0);
    assert_int_equal(c.mlp_bias, 0);
    assert_int_equal(aw_config_check_supported(&c, "llama-minimal"), AW_OK);

    aw_test_rmtree(dir);
    free(dir);
}

/* What a LLaMA config may say and still be read. */
static void test_read_llama_variants(void **state)
{
    (void)state;
    char *dir = aw_test_tmpdir();
    aw_model_config c;

    /* tied head, biases, GQA, LLaMA 3's theta, ids and dtype */
    char *p = write_llama(dir, "tie_word_embeddings", "true", "attention_bias", "true", "mlp_bias",
                          "true", "num_key_value_heads", "2", "rope_theta", "500000.0",
                          "rms_norm_eps", "1e-05", "bos_token_id", "0", "eos_token_id", "999",
                          "pad_token_id", "3", "torch_dtype", "\"float16\"", "hidden_act",
                          "\"silu\"", NULL);
    assert_int_equal(aw_config_read(p, &c), AW_OK);
    free(p);
    assert_int_equal(c.tie_word_embeddings, 1);
    assert_int_equal(c.attention_bias, 1);
    assert_int_equal(c.mlp_bias, 1);
    assert_int_equal(c.num_attention_heads, 4);
    assert_int_equal(c.num_key_value_heads, 2);
    assert_int_equal(c.head_dim, 16);
    assert_true(c.rope_theta == 500000.0);
    assert_true(c.rms_norm_eps == 1e-5);
    assert_int_equal(c.bos_token_id, 0);
    assert_int_equal(c.eos_token_id, 999);
    assert_int_equal(c.pad_token_id, 3);
    assert_int_equal(c.torch_dtype, AW_DT_F16);
    assert_int_equal(aw_config_check_supported(&c, "tied"), AW_OK);

    /* multi-query attention: one KV head */
    p = write_llama(dir, "num_key_value_heads", "1", NULL);
    assert_int_equal(aw_config_read(p, &c), AW_OK);
    free(p);
    assert_int_equal(c.num_key_value_heads, 1);

    /* explicit tie false, head_dim consistent or null, plain RoPE spelled
     * out, null ids, newer "dtype" */
    static const char *const ok[][2] = {
        {"tie_word_embeddings", "false"},
        {"head_dim", "16"},
        {"head_dim", "null"},
        {"num_key_value_heads", "4"},
        {"rope_scaling", "null"},
        {"rope_scaling", "{\"rope_type\": \"default\"}"},
        {"rope_scaling", "{\"type\": \"default\"}"},
        {"pad_token_id", "null"},
        {"dtype", "\"bfloat16\""},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        p = write_llama(dir, ok[i][0], ok[i][1], NULL);
        aw_status st = aw_config_read(p, &c);
        if (st != AW_OK) fail_msg("%s = %s: %s", ok[i][0], ok[i][1], aw_err_message());
        free(p);
        assert_int_equal(c.family, AW_FAMILY_LLAMA);
        assert_int_equal(c.num_key_value_heads, 4);
        assert_int_equal(c.head_dim, 16);
        assert_int_equal(c.tie_word_embeddings, 0);
    }
    assert_int_equal(c.torch_dtype, AW_DT_BF16); /* the last case */

    aw_test_rmtree(dir);
    free(dir);
}

/* Refusals of what this project cannot run or what is not a config: the
 * status, and a message naming the file and the key. */
static void test_read_llama_refused(void **state)
{
    (void)state;
    static const struct {
        const char *key, *value; /* value NULL: the key removed */
        aw_status want;
        const char *needle;
    } cases[] = {
        {"model_type", "\"gpt2\"", AW_ERR_UNSUPPORTED, "model_type 'gpt2' is not supported"},
        {"model_type", "\"mistral\"", AW_ERR_UNSUPPORTED, "model_type 'mistral'"},
        /* LLaMA 3.1's scaled RoPE */
        {"rope_scaling",
         "{\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0,"
         " \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}",
         AW_ERR_UNSUPPORTED, "rope_scaling of type 'llama3'"},
        {"rope_scaling", "{\"type\": \"linear\", \"factor\": 2.0}", AW_ERR_UNSUPPORTED,
         "rope_scaling of type 'linear'"},
        {"rope_scaling", "{\"factor\": 2.0}", AW_ERR_UNSUPPORTED, "rope_scaling"},
        {"hidden_act", "\"gelu\"", AW_ERR_UNSUPPORTED, "hidden_act 'gelu'"},
        {"hidden_act", "7", AW_ERR_CONFIG, "\"hidden_act\" must be a string"},
        {"num_key_value_heads", "3", AW_ERR_UNSUPPORTED,
         "num_attention_heads 4 is not a multiple of num_key_value_heads 3"},
        {"num_key_value_heads", "8", AW_ERR_UNSUPPORTED,
         "num_attention_heads 4 is not a multiple of num_key_value_heads 8"},
        {"num_key_value_heads", "0", AW_ERR_CONFIG, "\"num_key_value_heads\" is 0"},
        {"num_attention_heads", "5", AW_ERR_CONFIG,
         "hidden_size 64 is not divisible by num_attention_heads 5"},
        {"head_dim", "32", AW_ERR_UNSUPPORTED, "head_dim 32"},
        {"head_dim", "\"16\"", AW_ERR_CONFIG, "\"head_dim\" must be an integer"},
        {"intermediate_size", NULL, AW_ERR_CONFIG, "\"intermediate_size\" is missing"},
        {"intermediate_size", "-1", AW_ERR_CONFIG, "\"intermediate_size\" is -1"},
        {"tie_word_embeddings", "1", AW_ERR_CONFIG,
         "\"tie_word_embeddings\" must be true or false"},
        {"attention_bias", "\"no\"", AW_ERR_CONFIG, "\"attention_bias\" must be true or false"},
        {"mlp_bias", "0", AW_ERR_CONFIG, "\"mlp_bias\" must be true or false"},
        {"rms_norm_eps", "\"1e-5\"", AW_ERR_CONFIG, "\"rms_norm_eps\" must be a number"},
        {"rms_norm_eps", "2.0", AW_ERR_CONFIG, "\"rms_norm_eps\" is 2"},
        {"rope_theta", "0", AW_ERR_CONFIG, "\"rope_theta\" is 0"},
        {"eos_token_id", "1000", AW_ERR_CONFIG, "\"eos_token_id\" is 1000"},
        {"torch_dtype", "\"int8\"", AW_ERR_CONFIG, "torch_dtype 'int8'"},
    };
    char *dir = aw_test_tmpdir();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = write_llama(dir, cases[i].key, cases[i].value, NULL);
        aw_model_config c;
        aw_err_clear();
        aw_status st = aw_config_read(p, &c);
        if (st != cases[i].want)
            fail_msg("%s = %s: status %s, want %s (%s)", cases[i].key,
                     cases[i].value ? cases[i].value : "(absent)", aw_status_name(st),
                     aw_status_name(cases[i].want), aw_err_message());
        aw_assert_status(st, cases[i].want, cases[i].needle);
        aw_assert_status(st, cases[i].want, p);            /* names the file */
        aw_assert_status(st, cases[i].want, cases[i].key); /* and the key */
        free(p);
    }
    aw_test_rmtree(dir);
    free(dir);
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

    /* LLaMA: no biases and no OPT-only keys is its normal; the activation and
     * the head layout are checked */
    c = *aw_shape_find("llama-3-8b");
    assert_int_equal(c.enable_bias, 0);
    assert_int_equal(aw_config_check_supported(&c, "llama-3-8b"), AW_OK);
    snprintf(c.activation_function, sizeof c.activation_function, "gelu");
    c.num_key_value_heads = 5;
    st = aw_config_check_supported(&c, "custom-llama");
    aw_assert_status(st, AW_ERR_UNSUPPORTED, "custom-llama: unsupported: ");
    aw_assert_status(st, AW_ERR_UNSUPPORTED, "hidden_act 'gelu' (only silu)");
    aw_assert_status(st, AW_ERR_UNSUPPORTED, "32 attention heads over 5 key/value heads");
    c = *aw_shape_find("llama-3-8b");
    c.num_key_value_heads = 0;
    aw_assert_status(aw_config_check_supported(&c, "kv0"), AW_ERR_UNSUPPORTED,
                     "32 attention heads over 0 key/value heads");
    c = *aw_shape_find("llama-3-8b");
    c.head_dim = 64;
    aw_assert_status(aw_config_check_supported(&c, "hd"), AW_ERR_UNSUPPORTED,
                     "hidden_size 4096 with 32 attention heads of 64");
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

    /* the fixtures, read, written and read again */
    read_fixture("opt-125m.json", &c);
    assert_int_equal(aw_config_write(p, &c, NULL), AW_OK);
    assert_int_equal(aw_config_read(p, &back), AW_OK);
    assert_config_equal(&back, &c);
    read_fixture("llama.json", &c);
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

/* A LLaMA config with every field off its default survives write + read;
 * the file has LlamaConfig's keys and none of OPT's. */
static void test_write_llama(void **state)
{
    (void)state;
    char *dir = aw_test_tmpdir();
    char *p = write_config(dir, "");
    aw_model_config c = *aw_shape_find("llama-160m"), back;
    assert_int_equal(c.family, AW_FAMILY_LLAMA);
    c.num_key_value_heads = 2;
    c.tie_word_embeddings = 1;
    c.attention_bias = 1;
    c.mlp_bias = 1;
    c.rms_norm_eps = 1e-6;
    c.rope_theta = 1000000.0;
    c.pad_token_id = 0;
    c.bos_token_id = 31999;
    c.eos_token_id = 5;
    c.torch_dtype = AW_DT_BF16;
    const char *q = "{\"quant_method\": \"aweq\", \"bits\": 4}";
    assert_int_equal(aw_config_write(p, &c, q), AW_OK);
    assert_int_equal(aw_config_read(p, &back), AW_OK);
    assert_config_equal(&back, &c);
    assert_string_equal(back.name, "");

    size_t n;
    uint8_t *text = aw_test_read_bytes(p, &n);
    assert_true(strncmp((char *)text, "{\n  \"_name_or_path\": \"llama-160m\",\n", 35) == 0);
    assert_true(n >= 3 && memcmp(text + n - 3, "\n}\n", 3) == 0);
    json_error_t jerr;
    json_t *root = json_loadb((char *)text, n, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(root);
    json_t *arch = json_object_get(root, "architectures");
    assert_int_equal(json_array_size(arch), 1);
    assert_string_equal(json_string_value(json_array_get(arch, 0)), "LlamaForCausalLM");
    assert_string_equal(json_string_value(json_object_get(root, "model_type")), "llama");
    assert_string_equal(json_string_value(json_object_get(root, "hidden_act")), "silu");
    assert_string_equal(json_string_value(json_object_get(root, "torch_dtype")), "bfloat16");
    assert_int_equal(json_integer_value(json_object_get(root, "intermediate_size")), 2048);
    assert_int_equal(json_integer_value(json_object_get(root, "num_key_value_heads")), 2);
    assert_int_equal(json_integer_value(json_object_get(root, "head_dim")), 64);
    assert_int_equal(json_integer_value(json_object_get(root, "pad_token_id")), 0);
    assert_true(json_is_null(json_object_get(root, "rope_scaling")));
    assert_true(json_real_value(json_object_get(root, "rope_theta")) == 1000000.0);
    assert_true(json_real_value(json_object_get(root, "rms_norm_eps")) == 1e-6);
    assert_true(json_is_true(json_object_get(root, "tie_word_embeddings")));
    assert_true(json_is_true(json_object_get(root, "attention_bias")));
    assert_true(json_is_true(json_object_get(root, "mlp_bias")));
    assert_true(json_is_object(json_object_get(root, "quantization_config")));
    static const char *const opt_only[] = {"ffn_dim", "word_embed_proj_dim", "enable_bias",
                                           "do_layer_norm_before", "activation_function", "prefix"};
    for (size_t i = 0; i < sizeof opt_only / sizeof opt_only[0]; i++)
        if (json_object_get(root, opt_only[i])) fail_msg("LLaMA config has OPT key %s", opt_only[i]);
    json_decref(root);
    free(text);

    /* no pad token: the key is left out, and read back as -1 */
    c.pad_token_id = -1;
    c.tie_word_embeddings = 0;
    c.num_key_value_heads = c.num_attention_heads;
    assert_int_equal(aw_config_write(p, &c, NULL), AW_OK);
    text = aw_test_read_bytes(p, &n);
    root = json_loadb((char *)text, n, JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(root);
    assert_null(json_object_get(root, "pad_token_id"));
    assert_null(json_object_get(root, "quantization_config"));
    assert_true(json_is_false(json_object_get(root, "tie_word_embeddings")));
    json_decref(root);
    free(text);
    assert_int_equal(aw_config_read(p, &back), AW_OK);
    assert_config_equal(&back, &c);

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

/* ---- shape table ------------------------------------------------------------ */

static void test_shape_table(void **state)
{
    (void)state;
    /* The published facebook/opt-* and meta-llama configs (LLaMA 3 70b/8b at
     * 8192 positions, 3.1 405b at 131072); llama-160m is the generated one. */
    static const struct {
        const char *name;
        aw_family family;
        int d, layers, heads, kv, ffn, vocab, max_pos, wp, pre_ln, tie;
        aw_dtype dt;
    } want[] = {
        {"opt-125m", AW_FAMILY_OPT, 768, 12, 12, 12, 3072, 50272, 2048, 768, 1, 1, AW_DT_F16},
        {"opt-350m", AW_FAMILY_OPT, 1024, 24, 16, 16, 4096, 50272, 2048, 512, 0, 1, AW_DT_F16},
        {"opt-1.3b", AW_FAMILY_OPT, 2048, 24, 32, 32, 8192, 50272, 2048, 2048, 1, 1, AW_DT_F16},
        {"opt-2.7b", AW_FAMILY_OPT, 2560, 32, 32, 32, 10240, 50272, 2048, 2560, 1, 1, AW_DT_F16},
        {"opt-6.7b", AW_FAMILY_OPT, 4096, 32, 32, 32, 16384, 50272, 2048, 4096, 1, 1, AW_DT_F16},
        {"opt-13b", AW_FAMILY_OPT, 5120, 40, 40, 40, 20480, 50272, 2048, 5120, 1, 1, AW_DT_F16},
        {"opt-30b", AW_FAMILY_OPT, 7168, 48, 56, 56, 28672, 50272, 2048, 7168, 1, 1, AW_DT_F16},
        {"opt-66b", AW_FAMILY_OPT, 9216, 64, 72, 72, 36864, 50272, 2048, 9216, 1, 1, AW_DT_F16},
        {"opt-175b", AW_FAMILY_OPT, 12288, 96, 96, 96, 49152, 50272, 2048, 12288, 1, 1, AW_DT_F16},
        {"llama-3-8b", AW_FAMILY_LLAMA, 4096, 32, 32, 8, 14336, 128256, 8192, 4096, 1, 0,
         AW_DT_BF16},
        {"llama-3-70b", AW_FAMILY_LLAMA, 8192, 80, 64, 8, 28672, 128256, 8192, 8192, 1, 0,
         AW_DT_BF16},
        {"llama-3-405b", AW_FAMILY_LLAMA, 16384, 126, 128, 8, 53248, 128256, 131072, 16384, 1, 0,
         AW_DT_BF16},
        {"llama-2-7b", AW_FAMILY_LLAMA, 4096, 32, 32, 32, 11008, 32000, 4096, 4096, 1, 0,
         AW_DT_F16},
        {"llama-160m", AW_FAMILY_LLAMA, 768, 12, 12, 4, 2048, 32000, 2048, 768, 1, 0, AW_DT_F16},
    };
    assert_int_equal(aw_shape_count(), sizeof want / sizeof want[0]);
    for (size_t i = 0; i < aw_shape_count(); i++) {
        const aw_model_config *s = aw_shape_at(i);
        assert_non_null(s);
        assert_string_equal(s->name, want[i].name);
        assert_ptr_equal(aw_shape_find(want[i].name), s);
        assert_int_equal(s->family, want[i].family);
        assert_string_equal(s->model_type, aw_family_name(want[i].family));
        assert_string_equal(s->activation_function,
                            want[i].family == AW_FAMILY_OPT ? "relu" : "silu");
        assert_int_equal(s->hidden_size, want[i].d);
        assert_int_equal(s->num_hidden_layers, want[i].layers);
        assert_int_equal(s->num_attention_heads, want[i].heads);
        assert_int_equal(s->num_key_value_heads, want[i].kv);
        assert_int_equal(s->head_dim * s->num_attention_heads, s->hidden_size);
        assert_int_equal(s->ffn_dim, want[i].ffn);
        assert_int_equal(s->vocab_size, want[i].vocab);
        assert_int_equal(s->max_position_embeddings, want[i].max_pos);
        assert_int_equal(s->word_embed_proj_dim, want[i].wp);
        assert_int_equal(s->do_layer_norm_before, want[i].pre_ln);
        assert_int_equal(s->tie_word_embeddings, want[i].tie);
        assert_int_equal(s->torch_dtype, want[i].dt);
        assert_int_equal(s->hidden_size % s->num_attention_heads, 0);
        assert_int_equal(s->num_attention_heads % s->num_key_value_heads, 0);
        if (want[i].family == AW_FAMILY_OPT) {
            assert_int_equal(s->enable_bias, 1);
            assert_int_equal(s->pad_token_id, 1);
            assert_int_equal(s->bos_token_id, 2);
            assert_int_equal(s->eos_token_id, 2);
        } else {
            assert_int_equal(s->attention_bias, 0);
            assert_int_equal(s->mlp_bias, 0);
            assert_true(s->rms_norm_eps == 1e-5);
            assert_int_equal(s->pad_token_id, -1);
        }
    }
    /* LLaMA 3's tokenizer and RoPE base; LLaMA 2's */
    for (size_t i = 0; i < 3; i++) {
        const aw_model_config *s = aw_shape_find(want[9 + i].name);
        assert_true(s->rope_theta == 500000.0);
        assert_int_equal(s->bos_token_id, 128000);
        assert_int_equal(s->eos_token_id, 128001);
    }
    const aw_model_config *l2 = aw_shape_find("llama-2-7b");
    assert_true(l2->rope_theta == 10000.0);
    assert_int_equal(l2->bos_token_id, 1);
    assert_int_equal(l2->eos_token_id, 2);
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

    s = aw_shape_find("llama-3-8b");
    assert_non_null(s);
    assert_ptr_equal(aw_shape_find("meta-llama/llama-3-8b"), s);
    assert_ptr_equal(aw_shape_find("Meta-Llama/Llama-3-8B"), s);
    assert_non_null(aw_shape_find("meta-llama/llama-3-70b"));
    assert_non_null(aw_shape_find("llama-3-405b"));
    assert_non_null(aw_shape_find("meta-llama/llama-2-7b"));
    assert_non_null(aw_shape_find("llama-160m"));
    assert_null(aw_shape_find("llama-3"));
    assert_null(aw_shape_find("meta-llama/"));
    assert_null(aw_shape_find("llama-3-8b-instruct"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_opt125m),
        cmocka_unit_test(test_read_opt350m_unsupported),
        cmocka_unit_test(test_read_defaults),
        cmocka_unit_test(test_read_llama),
        cmocka_unit_test(test_read_llama_defaults),
        cmocka_unit_test(test_read_llama_variants),
        cmocka_unit_test(test_read_llama_refused),
        cmocka_unit_test(test_read_broken),
        cmocka_unit_test(test_read_variants),
        cmocka_unit_test(test_check_supported),
        cmocka_unit_test(test_write_round_trip),
        cmocka_unit_test(test_write_shape),
        cmocka_unit_test(test_write_llama),
        cmocka_unit_test(test_write_bad_args),
        cmocka_unit_test(test_shape_table),
        cmocka_unit_test(test_shape_find),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
