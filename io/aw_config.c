/* aw_config.c - config.json reader and writer for the OPT and LLaMA
 * families, and the built-in shape table (see aw_config.h). */
#include "aw_config.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aw_fs.h"

/* A real config.json is about 1 KiB; anything near this cap is not one. */
#define AW_CONFIG_MAX_BYTES (1u << 20)

/* Caps well above OPT-175b (d 12288, 96 layers) that keep every product of
 * two sizes inside int64 and catch garbage before it reaches a planner. */
#define AW_CAP_HIDDEN 65536
#define AW_CAP_LAYERS 1024
#define AW_CAP_HEADS 65536
#define AW_CAP_FFN (1 << 20)
#define AW_CAP_VOCAB (1 << 22)
#define AW_CAP_MAX_POS (1 << 20)

/* ---- reading ------------------------------------------------------------ */

/* Copy the thread's error message before re-raising it under another status:
 * aw_err_set() formats into the very buffer aw_err_message() returns. */
static aw_status reraise(aw_status st)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", aw_err_message());
    return AW_FAIL(st, "%s", msg);
}

/* Required or optional integer key within [lo, hi]. *present tells absence
 * apart (NULL: the key is required). */
static aw_status get_int(const char *path, json_t *root, const char *key, long long lo,
                         long long hi, int *out, int *present)
{
    json_t *v = json_object_get(root, key);
    if (!v) {
        if (present) {
            *present = 0;
            return AW_OK;
        }
        return AW_FAIL(AW_ERR_CONFIG, "%s: required key \"%s\" is missing", path, key);
    }
    AW_RETURN_IF(!json_is_integer(v), AW_ERR_CONFIG, "%s: key \"%s\" must be an integer", path,
                 key);
    long long x = json_integer_value(v);
    AW_RETURN_IF(x < lo || x > hi, AW_ERR_CONFIG,
                 "%s: key \"%s\" is %lld, outside the sane range [%lld, %lld]", path, key, x, lo,
                 hi);
    *out = (int)x;
    if (present) *present = 1;
    return AW_OK;
}

/* Optional boolean key; absent keeps *out (the caller's default). */
static aw_status get_bool(const char *path, json_t *root, const char *key, int *out)
{
    json_t *v = json_object_get(root, key);
    if (!v) return AW_OK;
    AW_RETURN_IF(!json_is_boolean(v), AW_ERR_CONFIG, "%s: key \"%s\" must be true or false", path,
                 key);
    *out = json_is_true(v);
    return AW_OK;
}

/* Optional token id: null is kept as -1 (transformers allows None). */
static aw_status get_token_id(const char *path, json_t *root, const char *key, int vocab,
                              int *out)
{
    json_t *v = json_object_get(root, key);
    if (!v) return AW_OK;
    if (json_is_null(v)) {
        *out = -1;
        return AW_OK;
    }
    return get_int(path, root, key, 0, (long long)vocab - 1, out, NULL);
}

static aw_status parse_dtype(const char *path, const char *key, const char *s, aw_dtype *out)
{
    if (strcmp(s, "float16") == 0) *out = AW_DT_F16;
    else if (strcmp(s, "bfloat16") == 0) *out = AW_DT_BF16;
    else if (strcmp(s, "float32") == 0) *out = AW_DT_F32;
    else
        return AW_FAIL(AW_ERR_CONFIG,
                       "%s: %s '%s' is not one of float16, bfloat16, float32", path, key, s);
    return AW_OK;
}

/* Optional real key; absent keeps *out. */
static aw_status get_real(const char *path, json_t *root, const char *key, double lo, double hi,
                          double *out)
{
    json_t *v = json_object_get(root, key);
    if (!v) return AW_OK;
    AW_RETURN_IF(!json_is_number(v), AW_ERR_CONFIG, "%s: key \"%s\" must be a number", path, key);
    double x = json_number_value(v);
    AW_RETURN_IF(!(x >= lo && x <= hi), AW_ERR_CONFIG, "%s: key \"%s\" is %g, outside [%g, %g]", path,
                 key, x, lo, hi);
    *out = x;
    return AW_OK;
}

/* torch_dtype (or dtype) and the token ids every family has. */
static aw_status parse_common_tail(const char *path, json_t *root, aw_model_config *c);

static aw_status parse_opt(const char *path, json_t *root, aw_model_config *c);
static aw_status parse_llama(const char *path, json_t *root, aw_model_config *c);

static aw_status parse_config(const char *path, json_t *root, aw_model_config *c)
{
    AW_RETURN_IF(!json_is_object(root), AW_ERR_CONFIG, "%s: top level is not a JSON object",
                 path);

    json_t *mt = json_object_get(root, "model_type");
    AW_RETURN_IF(!mt, AW_ERR_CONFIG, "%s: required key \"model_type\" is missing", path);
    AW_RETURN_IF(!json_is_string(mt), AW_ERR_CONFIG, "%s: key \"model_type\" must be a string",
                 path);
    const char *type = json_string_value(mt);
    if (strcmp(type, "opt") == 0) c->family = AW_FAMILY_OPT;
    else if (strcmp(type, "llama") == 0) c->family = AW_FAMILY_LLAMA;
    else
        return AW_FAIL(AW_ERR_UNSUPPORTED,
                       "%s: model_type '%s' is not supported (this version quantizes the opt and llama "
                       "families)",
                       path, type);
    snprintf(c->model_type, sizeof c->model_type, "%s", aw_family_name(c->family));

    AW_TRY(get_int(path, root, "hidden_size", 1, AW_CAP_HIDDEN, &c->hidden_size, NULL));
    AW_TRY(get_int(path, root, "num_hidden_layers", 1, AW_CAP_LAYERS, &c->num_hidden_layers,
                   NULL));
    AW_TRY(get_int(path, root, "num_attention_heads", 1, AW_CAP_HEADS, &c->num_attention_heads,
                   NULL));
    AW_TRY(get_int(path, root, "vocab_size", 1, AW_CAP_VOCAB, &c->vocab_size, NULL));
    AW_TRY(get_int(path, root, "max_position_embeddings", 1, AW_CAP_MAX_POS,
                   &c->max_position_embeddings, NULL));
    AW_RETURN_IF(c->hidden_size % c->num_attention_heads != 0, AW_ERR_CONFIG,
                 "%s: hidden_size %d is not divisible by num_attention_heads %d", path,
                 c->hidden_size, c->num_attention_heads);
    c->head_dim = c->hidden_size / c->num_attention_heads;
    c->num_key_value_heads = c->num_attention_heads;
    c->word_embed_proj_dim = c->hidden_size;
    c->do_layer_norm_before = 1;
    c->tie_word_embeddings = 1;
    AW_TRY(c->family == AW_FAMILY_LLAMA ? parse_llama(path, root, c) : parse_opt(path, root, c));
    return parse_common_tail(path, root, c);
}

static aw_status parse_llama(const char *path, json_t *root, aw_model_config *c)
{
    AW_TRY(get_int(path, root, "intermediate_size", 1, AW_CAP_FFN, &c->ffn_dim, NULL));
    int have = 0;
    AW_TRY(get_int(path, root, "num_key_value_heads", 1, AW_CAP_HEADS, &c->num_key_value_heads, &have));
    if (!have) c->num_key_value_heads = c->num_attention_heads;
    AW_RETURN_IF(c->num_attention_heads % c->num_key_value_heads != 0, AW_ERR_UNSUPPORTED,
                 "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d", path,
                 c->num_attention_heads, c->num_key_value_heads);
    json_t *hd = json_object_get(root, "head_dim");
    if (hd && !json_is_null(hd)) {
        int h = 0;
        AW_TRY(get_int(path, root, "head_dim", 1, AW_CAP_HIDDEN, &h, NULL));
        AW_RETURN_IF(h != c->head_dim, AW_ERR_UNSUPPORTED,
                     "%s: head_dim %d != hidden_size / num_attention_heads = %d is not supported", path,
                     h, c->head_dim);
    }
    snprintf(c->activation_function, sizeof c->activation_function, "silu");
    json_t *act = json_object_get(root, "hidden_act");
    if (act) {
        AW_RETURN_IF(!json_is_string(act), AW_ERR_CONFIG, "%s: key \"hidden_act\" must be a string", path);
        AW_RETURN_IF(strcmp(json_string_value(act), "silu") != 0, AW_ERR_UNSUPPORTED,
                     "%s: hidden_act '%s' is not supported (only silu)", path, json_string_value(act));
    }
    json_t *rs = json_object_get(root, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        json_t *ty = json_is_object(rs) ? json_object_get(rs, "rope_type") : NULL;
        if (!ty && json_is_object(rs)) ty = json_object_get(rs, "type");
        const char *t = ty && json_is_string(ty) ? json_string_value(ty) : "?";
        /* "default" is plain RoPE under another name */
        AW_RETURN_IF(strcmp(t, "default") != 0, AW_ERR_UNSUPPORTED,
                     "%s: rope_scaling of type '%s' is not supported (plain RoPE only)", path, t);
    }
    c->rope_theta = 10000.0;
    c->rms_norm_eps = 1e-6; /* transformers' LlamaConfig defaults */
    AW_TRY(get_real(path, root, "rope_theta", 1.0, 1e12, &c->rope_theta));
    AW_TRY(get_real(path, root, "rms_norm_eps", 0.0, 1.0, &c->rms_norm_eps));
    c->tie_word_embeddings = 0;
    AW_TRY(get_bool(path, root, "tie_word_embeddings", &c->tie_word_embeddings));
    AW_TRY(get_bool(path, root, "attention_bias", &c->attention_bias));
    AW_TRY(get_bool(path, root, "mlp_bias", &c->mlp_bias));
    c->pad_token_id = -1;
    c->bos_token_id = 1;
    c->eos_token_id = 2;
    return AW_OK;
}

static aw_status parse_opt(const char *path, json_t *root, aw_model_config *c)
{
    AW_TRY(get_int(path, root, "ffn_dim", 1, AW_CAP_FFN, &c->ffn_dim, NULL));

    /* Defaults below are those of transformers' OPTConfig. */
    int have_wp = 0;
    AW_TRY(get_int(path, root, "word_embed_proj_dim", 1, AW_CAP_HIDDEN, &c->word_embed_proj_dim,
                   &have_wp));
    if (!have_wp) c->word_embed_proj_dim = c->hidden_size;
    c->enable_bias = 1;
    AW_TRY(get_bool(path, root, "do_layer_norm_before", &c->do_layer_norm_before));
    AW_TRY(get_bool(path, root, "enable_bias", &c->enable_bias));

    /* The struct has no field for these two; refuse here rather than drop them. */
    int affine = 1, remove_final_ln = 0;
    AW_TRY(get_bool(path, root, "layer_norm_elementwise_affine", &affine));
    AW_RETURN_IF(!affine, AW_ERR_UNSUPPORTED,
                 "%s: layer_norm_elementwise_affine=false (LayerNorm without weight and bias) "
                 "is not supported",
                 path);
    AW_TRY(get_bool(path, root, "_remove_final_layer_norm", &remove_final_ln));
    AW_RETURN_IF(remove_final_ln, AW_ERR_UNSUPPORTED,
                 "%s: _remove_final_layer_norm=true is not supported", path);

    json_t *act = json_object_get(root, "activation_function");
    snprintf(c->activation_function, sizeof c->activation_function, "relu");
    if (act) {
        AW_RETURN_IF(!json_is_string(act), AW_ERR_CONFIG,
                     "%s: key \"activation_function\" must be a string", path);
        const char *s = json_string_value(act);
        /* Too long for the struct means it is not relu, which is all we run. */
        AW_RETURN_IF(strlen(s) >= sizeof c->activation_function, AW_ERR_UNSUPPORTED,
                     "%s: activation_function '%s' is not supported (only relu)", path, s);
        snprintf(c->activation_function, sizeof c->activation_function, "%s", s);
    }
    c->pad_token_id = 1;
    c->bos_token_id = 2;
    c->eos_token_id = 2;
    return AW_OK;
}

static aw_status parse_common_tail(const char *path, json_t *root, aw_model_config *c)
{
    /* transformers >= 4.56 writes "dtype"; older versions "torch_dtype". */
    c->torch_dtype = AW_DT_F32;
    const char *dkey = "torch_dtype";
    json_t *dt = json_object_get(root, dkey);
    if (!dt || json_is_null(dt)) {
        dkey = "dtype";
        dt = json_object_get(root, dkey);
    }
    if (dt && !json_is_null(dt)) {
        AW_RETURN_IF(!json_is_string(dt), AW_ERR_CONFIG, "%s: key \"%s\" must be a string", path,
                     dkey);
        AW_TRY(parse_dtype(path, dkey, json_string_value(dt), &c->torch_dtype));
    }

    AW_TRY(get_token_id(path, root, "pad_token_id", c->vocab_size, &c->pad_token_id));
    AW_TRY(get_token_id(path, root, "bos_token_id", c->vocab_size, &c->bos_token_id));
    AW_TRY(get_token_id(path, root, "eos_token_id", c->vocab_size, &c->eos_token_id));
    return AW_OK;
}

aw_status aw_config_read(const char *path, aw_model_config *out)
{
    if (!path || !out) return AW_FAIL(AW_ERR_ARG, "aw_config_read: NULL argument");
    char *text = NULL;
    size_t len = 0;
    /* A config that cannot be opened or is too large is a config problem to
     * the caller (AW_ERR_CONFIG: "config.json missing or malformed"); keep
     * the text, which names the file. Out of memory stays what it is. */
    aw_status rst = aw_read_file(path, AW_CONFIG_MAX_BYTES, &text, &len);
    if (rst == AW_ERR_IO) return reraise(AW_ERR_CONFIG);
    if (rst != AW_OK) return rst;

    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    AW_RETURN_IF(!root, AW_ERR_CONFIG, "%s: invalid JSON at line %d column %d: %s", path,
                 jerr.line, jerr.column, jerr.text);

    aw_model_config c;
    memset(&c, 0, sizeof c);
    aw_status st = parse_config(path, root, &c);
    json_decref(root);
    if (st == AW_OK) *out = c;
    return st;
}

/* ---- support check ------------------------------------------------------ */

aw_status aw_config_check_supported(const aw_model_config *c, const char *label)
{
    if (!c) return AW_FAIL(AW_ERR_ARG, "aw_config_check_supported: NULL config");
    if (!label) label = "model";
    char why[768];
    size_t n = 0;
    why[0] = '\0';
#define AW_WHY(...)                                                                        \
    do {                                                                                   \
        if (n < sizeof why) {                                                              \
            int k = snprintf(why + n, sizeof why - n, "%s", n ? "; " : "");                \
            if (k > 0) n += (size_t)k;                                                     \
        }                                                                                  \
        if (n < sizeof why) {                                                              \
            int k = snprintf(why + n, sizeof why - n, __VA_ARGS__);                        \
            if (k > 0) n += (size_t)k;                                                     \
        }                                                                                  \
    } while (0)
    if (c->family != AW_FAMILY_OPT && c->family != AW_FAMILY_LLAMA)
        AW_WHY("model family %d (only opt and llama)", (int)c->family);
    if (c->family == AW_FAMILY_LLAMA && strcmp(c->activation_function, "silu") != 0)
        AW_WHY("hidden_act '%s' (only silu)", c->activation_function);
    if (c->num_key_value_heads <= 0 || c->num_attention_heads % c->num_key_value_heads != 0)
        AW_WHY("%d attention heads over %d key/value heads", c->num_attention_heads,
               c->num_key_value_heads);
    if (c->family == AW_FAMILY_LLAMA) goto dtype_check;
    if (!c->do_layer_norm_before)
        AW_WHY("post-LayerNorm blocks (do_layer_norm_before=false, as in OPT-350m)");
    if (c->word_embed_proj_dim != c->hidden_size)
        AW_WHY("word_embed_proj_dim %d != hidden_size %d (project_in/project_out layers, as in "
               "OPT-350m)",
               c->word_embed_proj_dim, c->hidden_size);
    if (strcmp(c->activation_function, "relu") != 0)
        AW_WHY("activation_function '%s' (only relu)", c->activation_function);
    if (!c->enable_bias) AW_WHY("linear layers without bias (enable_bias=false)");
dtype_check:
    if (c->torch_dtype != AW_DT_F16 && c->torch_dtype != AW_DT_BF16 &&
        c->torch_dtype != AW_DT_F32)
        AW_WHY("torch_dtype %s (only float16, bfloat16, float32)",
               (unsigned)c->torch_dtype < AW_DT_COUNT ? aw_dtype_name(c->torch_dtype) : "?");
    if (c->hidden_size <= 0 || c->num_attention_heads <= 0 ||
        c->hidden_size % c->num_attention_heads != 0 ||
        c->head_dim * c->num_attention_heads != c->hidden_size)
        AW_WHY("hidden_size %d with %d attention heads of %d", c->hidden_size,
               c->num_attention_heads, c->head_dim);
#undef AW_WHY
    AW_RETURN_IF(n > 0, AW_ERR_UNSUPPORTED, "%s: unsupported: %s", label, why);
    return AW_OK;
}

/* ---- writing ------------------------------------------------------------ */

static const char *dtype_torch_name(aw_dtype dt)
{
    switch (dt) {
    case AW_DT_F16: return "float16";
    case AW_DT_BF16: return "bfloat16";
    case AW_DT_F32: return "float32";
    default: return NULL;
    }
}

/* json_object_set_new() steals v even on failure, so a NULL v just fails. */
static int set(json_t *o, const char *key, json_t *v)
{
    return json_object_set_new(o, key, v) == 0;
}

static json_t *token_id(int id)
{
    return id < 0 ? json_null() : json_integer(id);
}

aw_status aw_config_write(const char *path, const aw_model_config *c, const char *quant_json)
{
    if (!path || !c) return AW_FAIL(AW_ERR_ARG, "aw_config_write: NULL argument");
    const char *dt = dtype_torch_name(c->torch_dtype);
    AW_RETURN_IF(!dt, AW_ERR_ARG, "%s: torch_dtype must be F16, BF16 or F32", path);

    aw_status st = AW_OK;
    json_t *root = NULL, *quant = NULL, *arch = NULL;
    char *text = NULL;
    if (quant_json) {
        json_error_t jerr;
        quant = json_loads(quant_json, JSON_REJECT_DUPLICATES, &jerr);
        AW_GOTO_IF(!quant, AW_ERR_ARG, "%s: quantization_config is not valid JSON: %s", path,
                   jerr.text);
        AW_GOTO_IF(!json_is_object(quant), AW_ERR_ARG,
                   "%s: quantization_config must be a JSON object", path);
    }

    root = json_object();
    arch = json_array();
    int llama = c->family == AW_FAMILY_LLAMA;
    AW_GOTO_IF(!root || !arch ||
                   json_array_append_new(arch, json_string(llama ? "LlamaForCausalLM" : "OPTForCausalLM")) != 0,
               AW_ERR_NOMEM, "%s: out of memory building config", path);
    int ok = 1;
    if (llama) {
        /* Same keys and fixed values as transformers' LlamaConfig.save_pretrained. */
        if (c->name[0]) ok &= set(root, "_name_or_path", json_string(c->name));
        ok &= set(root, "architectures", arch);
        arch = NULL;
        ok &= set(root, "attention_bias", json_boolean(c->attention_bias));
        ok &= set(root, "attention_dropout", json_real(0.0));
        ok &= set(root, "bos_token_id", token_id(c->bos_token_id));
        ok &= set(root, "eos_token_id", token_id(c->eos_token_id));
        ok &= set(root, "head_dim", json_integer(c->head_dim));
        ok &= set(root, "hidden_act", json_string(c->activation_function));
        ok &= set(root, "hidden_size", json_integer(c->hidden_size));
        ok &= set(root, "initializer_range", json_real(0.02));
        ok &= set(root, "intermediate_size", json_integer(c->ffn_dim));
        ok &= set(root, "max_position_embeddings", json_integer(c->max_position_embeddings));
        ok &= set(root, "mlp_bias", json_boolean(c->mlp_bias));
        ok &= set(root, "model_type", json_string("llama"));
        ok &= set(root, "num_attention_heads", json_integer(c->num_attention_heads));
        ok &= set(root, "num_hidden_layers", json_integer(c->num_hidden_layers));
        ok &= set(root, "num_key_value_heads", json_integer(c->num_key_value_heads));
        if (c->pad_token_id >= 0) ok &= set(root, "pad_token_id", json_integer(c->pad_token_id));
        ok &= set(root, "pretraining_tp", json_integer(1));
        if (quant) {
            ok &= set(root, "quantization_config", quant);
            quant = NULL;
        }
        ok &= set(root, "rms_norm_eps", json_real(c->rms_norm_eps));
        ok &= set(root, "rope_scaling", json_null());
        ok &= set(root, "rope_theta", json_real(c->rope_theta));
        ok &= set(root, "tie_word_embeddings", json_boolean(c->tie_word_embeddings));
        ok &= set(root, "torch_dtype", json_string(dt));
        ok &= set(root, "use_cache", json_true());
        ok &= set(root, "vocab_size", json_integer(c->vocab_size));
        goto serialise;
    }
    /* Same keys and fixed values as transformers' OPTConfig.save_pretrained. */
    if (c->name[0]) ok &= set(root, "_name_or_path", json_string(c->name));
    ok &= set(root, "activation_dropout", json_real(0.0));
    ok &= set(root, "activation_function", json_string(c->activation_function));
    ok &= set(root, "architectures", arch);
    arch = NULL;
    ok &= set(root, "attention_dropout", json_real(0.0));
    ok &= set(root, "bos_token_id", token_id(c->bos_token_id));
    ok &= set(root, "do_layer_norm_before", json_boolean(c->do_layer_norm_before));
    ok &= set(root, "dropout", json_real(0.1));
    ok &= set(root, "enable_bias", json_boolean(c->enable_bias));
    ok &= set(root, "eos_token_id", token_id(c->eos_token_id));
    ok &= set(root, "ffn_dim", json_integer(c->ffn_dim));
    ok &= set(root, "hidden_size", json_integer(c->hidden_size));
    ok &= set(root, "init_std", json_real(0.02));
    ok &= set(root, "layer_norm_elementwise_affine", json_true());
    ok &= set(root, "layerdrop", json_real(0.0));
    ok &= set(root, "max_position_embeddings", json_integer(c->max_position_embeddings));
    ok &= set(root, "model_type", json_string(c->model_type[0] ? c->model_type : "opt"));
    ok &= set(root, "num_attention_heads", json_integer(c->num_attention_heads));
    ok &= set(root, "num_hidden_layers", json_integer(c->num_hidden_layers));
    ok &= set(root, "pad_token_id", token_id(c->pad_token_id));
    ok &= set(root, "prefix", json_string("</s>"));
    if (quant) {
        ok &= set(root, "quantization_config", quant);
        quant = NULL;
    }
    ok &= set(root, "torch_dtype", json_string(dt));
    ok &= set(root, "use_cache", json_true());
    ok &= set(root, "vocab_size", json_integer(c->vocab_size));
    ok &= set(root, "word_embed_proj_dim", json_integer(c->word_embed_proj_dim));
serialise:
    /* json_string() also fails on a string that is not UTF-8. */
    AW_GOTO_IF(!ok, AW_ERR_NOMEM, "%s: cannot build config (out of memory or a name not UTF-8)",
               path);

    /* transformers: json.dumps(indent=2, sort_keys=True) + "\n". Precision 10
     * prints 0.1 as 0.1 rather than 0.10000000000000001. */
    text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(10));
    AW_GOTO_IF(!text, AW_ERR_NOMEM, "%s: out of memory serialising config", path);
    size_t len = strlen(text);
    char *grown = realloc(text, len + 2);
    AW_GOTO_IF(!grown, AW_ERR_NOMEM, "%s: out of memory serialising config", path);
    text = grown;
    text[len++] = '\n';
    text[len] = '\0';
    AW_CHECK(aw_write_file_atomic(path, text, len));

fail:
    free(text);
    json_decref(root);
    json_decref(quant);
    json_decref(arch);
    return st;
}

/* ---- built-in shapes ------------------------------------------------------ */

#define AW_OPT_SHAPE(nm, d, layers, heads, ffn, wp, pre_ln)                                \
    {                                                                                      \
        .name = nm, .model_type = "opt", .activation_function = "relu", .hidden_size = d, \
        .num_hidden_layers = layers, .num_attention_heads = heads, .ffn_dim = ffn,         \
        .vocab_size = 50272, .max_position_embeddings = 2048, .word_embed_proj_dim = wp,   \
        .do_layer_norm_before = pre_ln, .enable_bias = 1, .torch_dtype = AW_DT_F16,        \
        .pad_token_id = 1, .bos_token_id = 2, .eos_token_id = 2,                           \
        .num_key_value_heads = heads, .head_dim = (d) / (heads), .tie_word_embeddings = 1,  \
    }

#define AW_LLAMA_SHAPE(nm, d, layers, heads, kv, ffn, vocab, max_pos, theta, tie, bos, eos, dt) \
    {                                                                                            \
        .name = nm, .model_type = "llama", .family = AW_FAMILY_LLAMA,                            \
        .activation_function = "silu", .hidden_size = d, .num_hidden_layers = layers,           \
        .num_attention_heads = heads, .num_key_value_heads = kv, .head_dim = (d) / (heads),     \
        .ffn_dim = ffn, .vocab_size = vocab, .max_position_embeddings = max_pos,                 \
        .word_embed_proj_dim = d, .do_layer_norm_before = 1, .torch_dtype = dt,                  \
        .pad_token_id = -1, .bos_token_id = bos, .eos_token_id = eos,                            \
        .tie_word_embeddings = tie, .rms_norm_eps = 1e-5, .rope_theta = theta,                   \
    }

/* The published facebook/opt-* configs. */
static const aw_model_config aw_shapes[] = {
    AW_OPT_SHAPE("opt-125m", 768, 12, 12, 3072, 768, 1),
    AW_OPT_SHAPE("opt-350m", 1024, 24, 16, 4096, 512, 0),
    AW_OPT_SHAPE("opt-1.3b", 2048, 24, 32, 8192, 2048, 1),
    AW_OPT_SHAPE("opt-2.7b", 2560, 32, 32, 10240, 2560, 1),
    AW_OPT_SHAPE("opt-6.7b", 4096, 32, 32, 16384, 4096, 1),
    AW_OPT_SHAPE("opt-13b", 5120, 40, 40, 20480, 5120, 1),
    AW_OPT_SHAPE("opt-30b", 7168, 48, 56, 28672, 7168, 1),
    AW_OPT_SHAPE("opt-66b", 9216, 64, 72, 36864, 9216, 1),
    AW_OPT_SHAPE("opt-175b", 12288, 96, 96, 49152, 12288, 1),
    /* The published meta-llama configs (LLaMA 3 and 3.1: their llama3
     * rope_scaling is not part of a shape; a folder with it is refused). */
    AW_LLAMA_SHAPE("llama-3-8b", 4096, 32, 32, 8, 14336, 128256, 8192, 500000.0, 0, 128000, 128001, AW_DT_BF16),
    AW_LLAMA_SHAPE("llama-3-70b", 8192, 80, 64, 8, 28672, 128256, 8192, 500000.0, 0, 128000, 128001, AW_DT_BF16),
    AW_LLAMA_SHAPE("llama-3-405b", 16384, 126, 128, 8, 53248, 128256, 131072, 500000.0, 0, 128000, 128001,
                   AW_DT_BF16),
    AW_LLAMA_SHAPE("llama-2-7b", 4096, 32, 32, 32, 11008, 32000, 4096, 10000.0, 0, 1, 2, AW_DT_F16),
    /* generated models: a LLaMA of OPT-125m's width, grouped-query attention */
    AW_LLAMA_SHAPE("llama-160m", 768, 12, 12, 4, 2048, 32000, 2048, 10000.0, 0, 1, 2, AW_DT_F16),
};
#undef AW_OPT_SHAPE
#undef AW_LLAMA_SHAPE

/* The Hub's names of the LLaMA shapes. */
static const struct {
    const char *hub, *shape;
} aw_shape_alias[] = {
    {"Meta-Llama-3-8B", "llama-3-8b"},   {"Meta-Llama-3-70B", "llama-3-70b"},
    {"Llama-3.1-8B", "llama-3-8b"},      {"Llama-3.1-70B", "llama-3-70b"},
    {"Llama-3.1-405B", "llama-3-405b"},  {"Llama-2-7b-hf", "llama-2-7b"},
};

const aw_model_config *aw_shape_find(const char *name)
{
    if (!name) return NULL;
    if (strncasecmp(name, "facebook/", 9) == 0) name += 9;
    if (strncasecmp(name, "meta-llama/", 11) == 0) name += 11;
    for (size_t i = 0; i < sizeof aw_shape_alias / sizeof aw_shape_alias[0]; i++)
        if (strcasecmp(name, aw_shape_alias[i].hub) == 0) name = aw_shape_alias[i].shape;
    for (size_t i = 0; i < aw_shape_count(); i++)
        if (strcasecmp(name, aw_shapes[i].name) == 0) return &aw_shapes[i];
    return NULL;
}

size_t aw_shape_count(void)
{
    return sizeof aw_shapes / sizeof aw_shapes[0];
}

const aw_model_config *aw_shape_at(size_t i)
{
    return i < aw_shape_count() ? &aw_shapes[i] : NULL;
}

const char *aw_family_name(aw_family f)
{
    return f == AW_FAMILY_LLAMA ? "llama" : "opt";
}
