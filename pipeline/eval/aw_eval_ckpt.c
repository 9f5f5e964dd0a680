/* aw_eval_ckpt.c - reading a compressed-tensors W8A8 checkpoint as the
 * evaluator needs it: a quantized block's tensors, and the check of
 * config.json's quantization_config (see aw_eval.h). */
#include "aw_eval_int.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_fs.h"

/* ---- tensors of a quantized block --------------------------------------- */

/* "[a, b]" of a tensor's shape into buf. */
static const char *shape_text(const aw_st_tensor *t, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < t->ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
    return buf;
}

/* A float vector of exactly n values, shape [n], into dst, checked finite. */
static aw_status load_vec(const aw_model_files *mf, const char *name, float *dst, int n)
{
    const aw_st_file *f = NULL;
    const aw_st_tensor *t = NULL;
    char sb[96];
    AW_TRY(aw_mf_find(mf, name, &f, &t));
    AW_RETURN_IF(t->ndim != 1 || t->shape[0] != n, AW_ERR_ST_SHAPE,
                 "%s: tensor '%s' has shape %s; config.json implies [%d]", aw_st_label(f), name,
                 shape_text(t, sb, sizeof sb), n);
    AW_TRY(aw_st_read_f32(f, t, dst, (size_t)n));
    for (int i = 0; i < n; i++)
        AW_RETURN_IF(!isfinite(dst[i]), AW_ERR_NONFINITE, "%s: tensor '%s': element %d is %s",
                     aw_st_label(f), name, i, isnan(dst[i]) ? "NaN" : "Inf");
    return AW_OK;
}

/* A per-tensor scale: one value (shape [1] or [], or any shape holding one
 * element, which is still a single value), finite and > 0. */
static aw_status load_scale(const aw_model_files *mf, const char *name, float *out)
{
    const aw_st_file *f = NULL;
    const aw_st_tensor *t = NULL;
    char sb[96];
    AW_TRY(aw_mf_find(mf, name, &f, &t));
    uint64_t n = aw_st_numel(t);
    AW_RETURN_IF(n > 1, AW_ERR_UNSUPPORTED,
                 "%s: tensor '%s' has shape %s (%llu values): per-tensor scales only, not "
                 "per-channel or group scales",
                 aw_st_label(f), name, shape_text(t, sb, sizeof sb), (unsigned long long)n);
    AW_RETURN_IF(n == 0, AW_ERR_ST_SHAPE, "%s: tensor '%s' has shape %s: a scale needs one value",
                 aw_st_label(f), name, shape_text(t, sb, sizeof sb));
    AW_RETURN_IF(t->dtype != AW_DT_F16 && t->dtype != AW_DT_BF16 && t->dtype != AW_DT_F32,
                 AW_ERR_DTYPE, "%s: tensor '%s' has dtype %s; a scale must be F16, BF16 or F32",
                 aw_st_label(f), name, aw_dtype_name(t->dtype));
    AW_TRY(aw_st_read_f32(f, t, out, 1));
    /* a zero or negative step is as unusable as NaN: every activation would
     * quantize to +-127 or the division would blow up */
    AW_RETURN_IF(!isfinite(*out) || !(*out > 0.0f), AW_ERR_NONFINITE,
                 "%s: tensor '%s' is %g: a scale must be finite and positive", aw_st_label(f), name,
                 (double)*out);
    return AW_OK;
}

/* The INT8 weight (out, in) of a linear, as stored. */
static aw_status load_weight(const aw_model_files *mf, const char *name, aw_qlinear *ql)
{
    const aw_st_file *f = NULL;
    const aw_st_tensor *t = NULL;
    char sb[96];
    AW_TRY(aw_mf_find(mf, name, &f, &t));
    AW_RETURN_IF(t->dtype != AW_DT_I8, AW_ERR_DTYPE,
                 "%s: tensor '%s' has dtype %s; a quantized weight must be I8", aw_st_label(f), name,
                 aw_dtype_name(t->dtype));
    AW_RETURN_IF(t->ndim != 2 || t->shape[0] != ql->out || t->shape[1] != ql->in, AW_ERR_ST_SHAPE,
                 "%s: tensor '%s' has shape %s; config.json implies [%d, %d]", aw_st_label(f), name,
                 shape_text(t, sb, sizeof sb), ql->out, ql->in);
    return aw_st_read(f, t, ql->wq, (size_t)ql->out * (size_t)ql->in);
}

aw_status aw_qblock_load(const aw_model_config *c, const aw_model_files *mf, int layer, aw_qblock *q)
{
    char name[160], base[128];
    for (int l = 0; l < q->n_lin; l++) {
        aw_qlinear *ql = &q->lin[l];
        /* "<module>" of "<module>.weight" */
        int n = aw_arch_tensor_name(c, layer, (aw_tensor_ref){AW_T_LIN_W, l}, base, sizeof base);
        AW_RETURN_IF(n < 0, AW_ERR_ARG, "layer %d: tensor name too long", layer);
        base[n - (int)strlen(".weight")] = '\0';
        snprintf(name, sizeof name, "%s.weight", base);
        AW_TRY(load_weight(mf, name, ql));
        snprintf(name, sizeof name, "%s.weight_scale", base);
        AW_TRY(load_scale(mf, name, &ql->w_step));
        snprintf(name, sizeof name, "%s.input_scale", base);
        AW_TRY(load_scale(mf, name, &ql->x_step));
        snprintf(name, sizeof name, "%s.bias", base);
        if (aw_arch_has_linear_bias(c, l)) AW_TRY(load_vec(mf, name, ql->bias, ql->out));
        else memset(ql->bias, 0, (size_t)ql->out * sizeof(float));
        /* no uncorrected bias is known from a checkpoint; the forward uses bias */
        memcpy(ql->bias_plain, ql->bias, (size_t)ql->out * sizeof(float));
    }
    for (int i = 0; i < 2 * AW_NORM_COUNT; i++) {
        if (i % 2 && !aw_arch_has_norm_bias(c)) continue;
        aw_arch_tensor_name(c, layer, (aw_tensor_ref){i % 2 ? AW_T_NORM_B : AW_T_NORM_W, i / 2}, name, sizeof name);
        AW_TRY(load_vec(mf, name, i % 2 ? q->norm_b[i / 2] : q->norm_g[i / 2], c->hidden_size));
    }
    /* equalization is folded into norms and weights of the checkpoint:
     * factors of 1 say the stored coordinates are the model's own */
    for (int t = 0; t < AW_TAP_COUNT; t++)
        for (int j = 0; j < aw_arch_tap_width(c, (aw_tap_id)t); j++) q->s[t][j] = 1.0f;
    aw_qblock_set_out_scales(c, q);
    return AW_OK;
}

/* ---- quantization_config ------------------------------------------------ */

/* A string member, or dflt when absent or null; NULL (and *bad set) when
 * present with another type. */
static const char *member_str(json_t *o, const char *key, const char *dflt, int *bad)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return dflt;
    if (!json_is_string(v)) {
        *bad = 1;
        return NULL;
    }
    return json_string_value(v);
}

/* One QuantizationArgs object (weights or input_activations of group g).
 * Absent fields take compressed-tensors' defaults: num_bits 8, type int,
 * symmetric true, dynamic false, strategy tensor unless group_size is set. */
static aw_status check_args(const char *path, const char *g, const char *what, json_t *a, int is_input)
{
    AW_RETURN_IF(!json_is_object(a), AW_ERR_CONFIG,
                 "%s: quantization_config.config_groups.%s.%s must be an object", path, g, what);
    json_t *v = json_object_get(a, "num_bits");
    long long bits = 8;
    if (v && !json_is_null(v)) {
        AW_RETURN_IF(!json_is_integer(v), AW_ERR_CONFIG,
                     "%s: quantization_config.config_groups.%s.%s.num_bits must be an integer", path, g, what);
        bits = json_integer_value(v);
    }
    AW_RETURN_IF(bits != 8, AW_ERR_UNSUPPORTED,
                 "%s: config_groups.%s.%s: %lld-bit quantization; this evaluator runs INT8 only", path,
                 g, what, bits);
    int bad = 0;
    const char *type = member_str(a, "type", "int", &bad);
    AW_RETURN_IF(bad, AW_ERR_CONFIG, "%s: config_groups.%s.%s.type must be a string", path, g, what);
    AW_RETURN_IF(strcmp(type, "int") != 0, AW_ERR_UNSUPPORTED,
                 "%s: config_groups.%s.%s: type \"%s\"; this evaluator runs int quantization only", path,
                 g, what, type);
    v = json_object_get(a, "symmetric");
    AW_RETURN_IF(v && !json_is_null(v) && !json_is_boolean(v), AW_ERR_CONFIG,
                 "%s: config_groups.%s.%s.symmetric must be true or false", path, g, what);
    AW_RETURN_IF(v && json_is_false(v), AW_ERR_UNSUPPORTED,
                 "%s: config_groups.%s.%s: asymmetric quantization (zero points); this evaluator runs "
                 "symmetric INT8 only",
                 path, g, what);
    v = json_object_get(a, "group_size");
    int grouped = v && !json_is_null(v);
    const char *strategy = member_str(a, "strategy", grouped ? "group" : "tensor", &bad);
    AW_RETURN_IF(bad, AW_ERR_CONFIG, "%s: config_groups.%s.%s.strategy must be a string", path, g, what);
    AW_RETURN_IF(strcmp(strategy, "tensor") != 0, AW_ERR_UNSUPPORTED,
                 "%s: config_groups.%s.%s: strategy \"%s\"; per-tensor scales only", path, g, what,
                 strategy);
    AW_RETURN_IF(grouped, AW_ERR_UNSUPPORTED,
                 "%s: config_groups.%s.%s: group_size is set; per-tensor scales only", path, g, what);
    v = json_object_get(a, "block_structure");
    AW_RETURN_IF(v && !json_is_null(v), AW_ERR_UNSUPPORTED,
                 "%s: config_groups.%s.%s: block_structure is set; per-tensor scales only", path, g, what);
    /* dynamic: false, true or (newer versions) the string "local" */
    v = json_object_get(a, "dynamic");
    int dynamic = v && !json_is_null(v) && !json_is_false(v);
    AW_RETURN_IF(dynamic && is_input, AW_ERR_UNSUPPORTED,
                 "%s: config_groups.%s: input activations are dynamic: this evaluator runs static "
                 "per-tensor INT8 only",
                 path, g);
    AW_RETURN_IF(dynamic, AW_ERR_UNSUPPORTED,
                 "%s: config_groups.%s.%s are dynamic: this evaluator runs static per-tensor INT8 only",
                 path, g, what);
    return AW_OK;
}

/* Does a group's "targets" list hold "Linear"? */
static int targets_linear(json_t *grp)
{
    json_t *t = json_object_get(grp, "targets"), *e;
    size_t i;
    if (!json_is_array(t)) return 0;
    json_array_foreach(t, i, e)
    {
        if (json_is_string(e) && strcmp(json_string_value(e), "Linear") == 0) return 1;
    }
    return 0;
}

static aw_status check_qc(const char *path, json_t *root)
{
    AW_RETURN_IF(!json_is_object(root), AW_ERR_CONFIG, "%s: top level is not a JSON object", path);
    json_t *qc = json_object_get(root, "quantization_config");
    AW_RETURN_IF(!qc || json_is_null(qc), AW_ERR_UNSUPPORTED,
                 "%s: no quantization_config: not a quantized checkpoint", path);
    AW_RETURN_IF(!json_is_object(qc), AW_ERR_CONFIG, "%s: quantization_config must be an object", path);
    int bad = 0;
    const char *method = member_str(qc, "quant_method", NULL, &bad);
    AW_RETURN_IF(bad || !method, AW_ERR_UNSUPPORTED,
                 "%s: quantization_config has no quant_method string; expected compressed-tensors", path);
    AW_RETURN_IF(strcmp(method, "compressed-tensors") != 0, AW_ERR_UNSUPPORTED,
                 "%s: quant_method \"%s\"; this evaluator reads compressed-tensors checkpoints only", path,
                 method);
    const char *format = member_str(qc, "format", NULL, &bad);
    AW_RETURN_IF(bad || !format, AW_ERR_UNSUPPORTED,
                 "%s: quantization_config has no format string; expected int-quantized", path);
    AW_RETURN_IF(strcmp(format, "int-quantized") != 0 && strcmp(format, "naive-quantized") != 0,
                 AW_ERR_UNSUPPORTED, "%s: format \"%s\"; expected int-quantized or naive-quantized",
                 path, format);
    /* other states keep float weights that only mimic INT8 */
    const char *status = member_str(qc, "quantization_status", "compressed", &bad);
    AW_RETURN_IF(bad || strcmp(status, "compressed") != 0, AW_ERR_UNSUPPORTED,
                 "%s: quantization_status \"%s\"; expected compressed (weights stored as INT8)", path,
                 bad ? "?" : status);
    json_t *v = json_object_get(qc, "kv_cache_scheme");
    AW_RETURN_IF(v && !json_is_null(v), AW_ERR_UNSUPPORTED,
                 "%s: kv_cache_scheme is set: KV-cache quantization is not supported", path);
    v = json_object_get(qc, "sparsity_config");
    if (json_is_object(v) && json_object_size(v) > 0) {
        const char *sf = member_str(v, "format", "dense", &bad);
        AW_RETURN_IF(bad || strcmp(sf, "dense") != 0, AW_ERR_UNSUPPORTED,
                     "%s: sparsity_config format \"%s\": sparse checkpoints are not supported", path,
                     bad ? "?" : sf);
    }
    json_t *groups = json_object_get(qc, "config_groups");
    AW_RETURN_IF(!json_is_object(groups) || json_object_size(groups) == 0, AW_ERR_UNSUPPORTED,
                 "%s: quantization_config has no config_groups", path);
    const char *g;
    json_t *grp;
    int linear = 0;
    json_object_foreach(groups, g, grp)
    {
        AW_RETURN_IF(!json_is_object(grp), AW_ERR_CONFIG, "%s: config_groups.%s must be an object", path, g);
        json_t *w = json_object_get(grp, "weights");
        AW_RETURN_IF(!w || json_is_null(w), AW_ERR_UNSUPPORTED,
                     "%s: config_groups.%s: weights are not quantized; this evaluator runs W8A8 only", path, g);
        AW_TRY(check_args(path, g, "weights", w, 0));
        json_t *in = json_object_get(grp, "input_activations");
        AW_RETURN_IF(!in || json_is_null(in), AW_ERR_UNSUPPORTED,
                     "%s: config_groups.%s: input activations are not quantized; this evaluator runs "
                     "W8A8 (static per-tensor INT8 activations) only",
                     path, g);
        AW_TRY(check_args(path, g, "input_activations", in, 1));
        v = json_object_get(grp, "output_activations");
        AW_RETURN_IF(v && !json_is_null(v), AW_ERR_UNSUPPORTED,
                     "%s: config_groups.%s: output activation quantization is not supported", path, g);
        linear |= targets_linear(grp);
    }
    AW_RETURN_IF(!linear, AW_ERR_UNSUPPORTED,
                 "%s: no config group targets \"Linear\": every linear layer must be W8A8", path);
    return AW_OK;
}

aw_status aw_check_quant_config(const char *config_path)
{
    AW_RETURN_IF(!config_path, AW_ERR_ARG, "aw_check_quant_config: NULL path");
    char *text = NULL;
    size_t len = 0;
    aw_status st = aw_read_file(config_path, AW_QCFG_MAX_BYTES, &text, &len);
    if (st == AW_ERR_IO) {
        /* keep the reader's text (it names the file), as a config problem;
         * copied first because the message buffer is the one being set */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", aw_err_message());
        return AW_FAIL(AW_ERR_CONFIG, "%s", msg);
    }
    if (st != AW_OK) return st;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    AW_RETURN_IF(!root, AW_ERR_CONFIG, "%s: invalid JSON at line %d column %d: %s", config_path,
                 jerr.line, jerr.column, jerr.text);
    st = check_qc(config_path, root);
    json_decref(root);
    return st;
}


void aw_eval_progress(int quiet, const char *fmt, ...)
{
    if (quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("aweq-dist: eval: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

