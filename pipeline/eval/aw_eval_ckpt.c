/* aw_eval_ckpt.c - reading a compressed-tensors checkpoint as the
 * evaluator needs it: a quantized block's tensors (W8A8 int-quantized, or
 * weight-only pack-quantized), and the check of config.json's
 * quantization_config (see aw_eval.h). */
#include "aw_eval_int.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_fs.h"
#include "aw_lowbit.h"

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

/* ---- pack-quantized (weight-only) tensors -------------------------------- */

/* The words of a packed I32 tensor of exactly shape [rows, cols] into
 * words. what says what the tensor holds, for the message. */
static aw_status load_words(const aw_model_files *mf, const char *name, int64_t rows, int64_t cols,
                            const char *what, uint32_t *words)
{
    const aw_st_file *f = NULL;
    const aw_st_tensor *t = NULL;
    char sb[96];
    AW_TRY(aw_mf_find(mf, name, &f, &t));
    AW_RETURN_IF(t->dtype != AW_DT_I32, AW_ERR_DTYPE,
                 "%s: tensor '%s' has dtype %s; packed %s must be I32", aw_st_label(f), name,
                 aw_dtype_name(t->dtype), what);
    AW_RETURN_IF(t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols, AW_ERR_ST_SHAPE,
                 "%s: tensor '%s' has shape %s; config.json implies [%lld, %lld]", aw_st_label(f), name,
                 shape_text(t, sb, sizeof sb), (long long)rows, (long long)cols);
    return aw_st_read(f, t, words, (size_t)rows * (size_t)cols * 4);
}

/* Codes of a weight-only linear from `weight_packed` I32 [out, ceil(in * b /
 * 32)], each row packed on its own, LSB first (compressed-tensors 0.20). The
 * older layout (floor(32 / b) codes a word, the rest of the word unused)
 * differs at 3 bits; its width, ceil(in / 10), is another one from 160
 * inputs on (every real model), and refused by name. */
static aw_status load_packed(const aw_model_files *mf, const char *name, int bits, aw_qlinear *ql,
                             uint32_t *words)
{
    size_t wpr = aw_k_packed_words((size_t)ql->in, bits);
    const aw_st_file *f = NULL;
    const aw_st_tensor *t = NULL;
    AW_TRY(aw_mf_find(mf, name, &f, &t));
    int per_word = 32 / bits;
    int64_t old_w = (ql->in + per_word - 1) / per_word;
    AW_RETURN_IF(t->dtype == AW_DT_I32 && t->ndim == 2 && t->shape[0] == ql->out && t->shape[1] == old_w &&
                     (size_t)old_w != wpr,
                 AW_ERR_UNSUPPORTED,
                 "%s: tensor '%s' has %lld words a row: %d %d-bit codes a word, the packing of older "
                 "compressed-tensors releases; this evaluator reads the dense packing of 0.20 (%zu words a row)",
                 aw_st_label(f), name, (long long)old_w, per_word, bits, wpr);
    AW_TRY(load_words(mf, name, ql->out, (int64_t)wpr, "weights", words));
    for (int r = 0; r < ql->out; r++)
        aw_k_unpack_bits(words + (size_t)r * wpr, (size_t)ql->in, bits, ql->codes + (size_t)r * ql->in);
    return AW_OK;
}

/* `weight_shape` [2] (I64 as the library writes it, or I32): must be
 * {out, in}. */
static aw_status check_weight_shape(const aw_model_files *mf, const char *name, const aw_qlinear *ql)
{
    const aw_st_file *f = NULL;
    const aw_st_tensor *t = NULL;
    char sb[96];
    AW_TRY(aw_mf_find(mf, name, &f, &t));
    AW_RETURN_IF(t->dtype != AW_DT_I64 && t->dtype != AW_DT_I32, AW_ERR_DTYPE,
                 "%s: tensor '%s' has dtype %s; a weight shape must be I64 (or I32)", aw_st_label(f), name,
                 aw_dtype_name(t->dtype));
    AW_RETURN_IF(t->ndim != 1 || t->shape[0] != 2, AW_ERR_ST_SHAPE,
                 "%s: tensor '%s' has shape %s; a weight shape is [2]", aw_st_label(f), name,
                 shape_text(t, sb, sizeof sb));
    int64_t v[2];
    if (t->dtype == AW_DT_I64) {
        AW_TRY(aw_st_read(f, t, v, sizeof v));
    } else {
        int32_t w[2];
        AW_TRY(aw_st_read(f, t, w, sizeof w));
        v[0] = w[0], v[1] = w[1];
    }
    AW_RETURN_IF(v[0] != ql->out || v[1] != ql->in, AW_ERR_ST_SHAPE,
                 "%s: tensor '%s' says [%lld, %lld]; config.json implies [%d, %d]", aw_st_label(f), name,
                 (long long)v[0], (long long)v[1], ql->out, ql->in);
    return AW_OK;
}

/* Steps (out, ng) from `weight_scale`, a float tensor [out, ng], each finite
 * and > 0. */
static aw_status load_steps(const aw_model_files *mf, const char *name, int ng, aw_qlinear *ql)
{
    const aw_st_file *f = NULL;
    const aw_st_tensor *t = NULL;
    char sb[96];
    AW_TRY(aw_mf_find(mf, name, &f, &t));
    AW_RETURN_IF(t->dtype != AW_DT_F16 && t->dtype != AW_DT_BF16 && t->dtype != AW_DT_F32, AW_ERR_DTYPE,
                 "%s: tensor '%s' has dtype %s; a scale must be F16, BF16 or F32", aw_st_label(f), name,
                 aw_dtype_name(t->dtype));
    AW_RETURN_IF(t->ndim != 2 || t->shape[0] != ql->out || t->shape[1] != ng, AW_ERR_ST_SHAPE,
                 "%s: tensor '%s' has shape %s; config.json implies [%d, %d] (one step per row and group)",
                 aw_st_label(f), name, shape_text(t, sb, sizeof sb), ql->out, ng);
    size_t n = (size_t)ql->out * (size_t)ng;
    AW_TRY(aw_st_read_f32(f, t, ql->wstep, n));
    for (size_t i = 0; i < n; i++)
        AW_RETURN_IF(!isfinite(ql->wstep[i]) || !(ql->wstep[i] > 0.0f), AW_ERR_NONFINITE,
                     "%s: tensor '%s': element %zu is %g; a step must be finite and positive", aw_st_label(f),
                     name, i, (double)ql->wstep[i]);
    return AW_OK;
}

/* Zero points (out, ng) from `weight_zero_point` I32 [ceil(out * b / 32),
 * ng]: each group's column packed down the rows. words holds the tensor,
 * col_words and col one column. */
static aw_status load_zeros(const aw_model_files *mf, const char *name, int bits, int ng, aw_qlinear *ql,
                            uint32_t *words, uint32_t *col_words, uint8_t *col)
{
    size_t zrows = aw_k_packed_words((size_t)ql->out, bits);
    AW_TRY(load_words(mf, name, (int64_t)zrows, ng, "zero points", words));
    for (int g = 0; g < ng; g++) {
        for (size_t w = 0; w < zrows; w++) col_words[w] = words[w * (size_t)ng + (size_t)g];
        aw_k_unpack_bits(col_words, (size_t)ql->out, bits, col);
        for (int r = 0; r < ql->out; r++) ql->wzero[(size_t)r * ng + g] = col[r];
    }
    return AW_OK;
}

/* Linear ql (module base) of a pack-quantized checkpoint. */
static aw_status load_wo_linear(const aw_model_files *mf, const char *base, const aw_scheme *sc, aw_qlinear *ql,
                                uint32_t *words, uint32_t *col_words, uint8_t *col)
{
    char name[160];
    int b = sc->wbits, ng = aw_scheme_groups(sc, ql->in);
    snprintf(name, sizeof name, "%s.weight_packed", base);
    AW_TRY(load_packed(mf, name, b, ql, words));
    snprintf(name, sizeof name, "%s.weight_shape", base);
    AW_TRY(check_weight_shape(mf, name, ql));
    snprintf(name, sizeof name, "%s.weight_scale", base);
    AW_TRY(load_steps(mf, name, ng, ql));
    if (sc->sym) {
        /* stored codes are q_signed + 2^(b-1): z = 2^(b-1) */
        memset(ql->wzero, 1 << (b - 1), (size_t)ql->out * (size_t)ng);
        return AW_OK;
    }
    snprintf(name, sizeof name, "%s.weight_zero_point", base);
    return load_zeros(mf, name, b, ng, ql, words, col_words, col);
}

/* ---- int-quantized with dynamic activations ----------------------------- */

/* An I8 tensor of exactly shape [rows, cols] into dst, every value a signed
 * b-bit integer in [-2^(b-1), 2^(b-1) - 1]. what says what it holds. */
static aw_status load_i8(const aw_model_files *mf, const char *name, int rows, int cols, int bits, const char *what,
                         int8_t *dst)
{
    const aw_st_file *f = NULL;
    const aw_st_tensor *t = NULL;
    char sb[96];
    AW_TRY(aw_mf_find(mf, name, &f, &t));
    AW_RETURN_IF(t->dtype != AW_DT_I8, AW_ERR_DTYPE, "%s: tensor '%s' has dtype %s; %s must be I8 (int-quantized)",
                 aw_st_label(f), name, aw_dtype_name(t->dtype), what);
    AW_RETURN_IF(t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols, AW_ERR_ST_SHAPE,
                 "%s: tensor '%s' has shape %s; config.json implies [%d, %d]", aw_st_label(f), name,
                 shape_text(t, sb, sizeof sb), rows, cols);
    size_t n = (size_t)rows * (size_t)cols;
    AW_TRY(aw_st_read(f, t, dst, n));
    int lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
    for (size_t i = 0; i < n; i++)
        AW_RETURN_IF(dst[i] < lo || dst[i] > hi, AW_ERR_UNSUPPORTED,
                     "%s: tensor '%s': element %zu is %d, outside the %d-bit range [%d, %d] config.json implies",
                     aw_st_label(f), name, i, dst[i], bits, lo, hi);
    return AW_OK;
}

/* Linear ql (module base) of an int-quantized checkpoint with dynamic
 * activations (compressed-tensors 0.20): `weight` I8 [out, in] the signed
 * values q_s, `weight_scale` [out, ng], and when asymmetric
 * `weight_zero_point` I8 [out, ng] z_s; w = (q_s - z_s) step. Our codes are
 * q_s + 2^(b-1), zero points z_s + 2^(b-1) (2^(b-1) when symmetric) and wq
 * = q_s - z_s, the signed values the integer product takes. */
static aw_status load_dyn_linear(const aw_model_files *mf, const char *base, const aw_scheme *sc, aw_qlinear *ql)
{
    char name[160];
    int b = sc->wbits, half = 1 << (b - 1), ng = aw_scheme_groups(sc, ql->in);
    size_t nw = (size_t)ql->out * (size_t)ql->in, nz = (size_t)ql->out * (size_t)ng;
    snprintf(name, sizeof name, "%s.weight", base);
    AW_TRY(load_i8(mf, name, ql->out, ql->in, b, "a quantized weight", ql->wq));
    for (size_t i = 0; i < nw; i++) ql->codes[i] = (uint8_t)(ql->wq[i] + half);
    snprintf(name, sizeof name, "%s.weight_scale", base);
    AW_TRY(load_steps(mf, name, ng, ql));
    if (sc->sym) {
        memset(ql->wzero, half, nz);
    } else {
        snprintf(name, sizeof name, "%s.weight_zero_point", base);
        AW_TRY(load_i8(mf, name, ql->out, ng, b, "a zero point", (int8_t *)ql->wzero));
        for (size_t i = 0; i < nz; i++) ql->wzero[i] = (uint8_t)((int8_t)ql->wzero[i] + half);
    }
    aw_qlinear_set_signed(ql);
    return AW_OK;
}

aw_status aw_qblock_load(const aw_model_config *c, const aw_model_files *mf, int layer, aw_qblock *q)
{
    char name[160], base[128];
    const aw_scheme *sc = &q->scheme;
    int wo = aw_scheme_weight_only(sc);
    /* weight-only: one buffer for the largest packed tensor and a column */
    size_t max_words = 0, max_out = 0;
    for (int l = 0; wo && l < q->n_lin; l++) {
        const aw_qlinear *ql = &q->lin[l];
        size_t nw = (size_t)ql->out * aw_k_packed_words((size_t)ql->in, sc->wbits);
        size_t nz = aw_k_packed_words((size_t)ql->out, sc->wbits) * (size_t)aw_scheme_groups(sc, ql->in);
        if (nw > max_words) max_words = nw;
        if (nz > max_words) max_words = nz;
        if ((size_t)ql->out > max_out) max_out = (size_t)ql->out;
    }
    size_t col_words = wo ? aw_k_packed_words(max_out, sc->wbits) : 0;
    uint32_t *words = wo ? malloc((max_words + col_words) * 4 + max_out) : NULL;
    AW_RETURN_IF(wo && !words, AW_ERR_NOMEM, "layer %d: out of memory for its packed weights", layer);
    aw_status st = AW_OK;
    for (int l = 0; l < q->n_lin; l++) {
        aw_qlinear *ql = &q->lin[l];
        /* "<module>" of "<module>.weight" */
        int n = aw_arch_tensor_name(c, layer, (aw_tensor_ref){AW_T_LIN_W, l}, base, sizeof base);
        AW_GOTO_IF(n < 0, AW_ERR_ARG, "layer %d: tensor name too long", layer);
        base[n - (int)strlen(".weight")] = '\0';
        if (wo) {
            AW_CHECK(load_wo_linear(mf, base, sc, ql, words, words + max_words,
                                    (uint8_t *)(words + max_words + col_words)));
        } else if (sc->act == AW_ACT_DYNAMIC) {
            AW_CHECK(load_dyn_linear(mf, base, sc, ql));
        } else {
            snprintf(name, sizeof name, "%s.weight", base);
            AW_CHECK(load_weight(mf, name, ql));
            snprintf(name, sizeof name, "%s.weight_scale", base);
            AW_CHECK(load_scale(mf, name, &ql->w_step));
            snprintf(name, sizeof name, "%s.input_scale", base);
            AW_CHECK(load_scale(mf, name, &ql->x_step));
        }
        snprintf(name, sizeof name, "%s.bias", base);
        if (aw_arch_has_linear_bias(c, l)) AW_CHECK(load_vec(mf, name, ql->bias, ql->out));
        else memset(ql->bias, 0, (size_t)ql->out * sizeof(float));
        /* no uncorrected bias is known from a checkpoint; the forward uses bias */
        memcpy(ql->bias_plain, ql->bias, (size_t)ql->out * sizeof(float));
    }
    for (int i = 0; i < 2 * AW_NORM_COUNT; i++) {
        if (i % 2 && !aw_arch_has_norm_bias(c)) continue;
        aw_arch_tensor_name(c, layer, (aw_tensor_ref){i % 2 ? AW_T_NORM_B : AW_T_NORM_W, i / 2}, name, sizeof name);
        AW_CHECK(load_vec(mf, name, i % 2 ? q->norm_b[i / 2] : q->norm_g[i / 2], c->hidden_size));
    }
    /* equalization is folded into norms and weights of the checkpoint:
     * factors of 1 say the stored coordinates are the model's own */
    for (int t = 0; t < AW_TAP_COUNT; t++)
        for (int j = 0; j < aw_arch_tap_width(c, (aw_tap_id)t); j++) q->s[t][j] = 1.0f;
    aw_qblock_set_out_scales(c, q);
fail:
    free(words);
    return st;
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

/* Member "group_size" of args `what` of group g: 0 when absent or null,
 * else its integer value (AW_ERR_CONFIG naming it when not an integer). */
static aw_status member_group_size(json_t *a, const char *path, const char *g, const char *what, long long *gs)
{
    json_t *v = json_object_get(a, "group_size");
    *gs = 0;
    if (!v || json_is_null(v)) return AW_OK;
    AW_RETURN_IF(!json_is_integer(v), AW_ERR_CONFIG, "%s: config_groups.%s.%s.group_size must be an integer", path,
                 g, what);
    *gs = json_integer_value(v);
    return AW_OK;
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
                 "%s: config_groups.%s.%s: %lld-bit quantization; this evaluator runs int-quantized "
                 "checkpoints with static activations as W8A8 only (low-bit weights come pack-quantized, or "
                 "int-quantized with dynamic activations)",
                 path, g, what, bits);
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

/* The weights' QuantizationArgs of a pack-quantized group g into *out
 * (weight-only, aw_scheme.h). compressed-tensors' defaults for absent
 * fields: num_bits 8, type int, symmetric true, dynamic false; strategy
 * "group" when group_size > 0, "channel" when it is -1. actorder "weight"
 * (or its alias "static") changes how GPTQ ran, not the format; "group"
 * (and its alias "dynamic", or true) would need the g_idx permutation. */
static aw_status check_wo_args(const char *path, const char *g, json_t *a, const char *format, aw_scheme *out)
{
    AW_RETURN_IF(!json_is_object(a), AW_ERR_CONFIG,
                 "%s: quantization_config.config_groups.%s.weights must be an object", path, g);
    json_t *v = json_object_get(a, "num_bits");
    long long bits = 8;
    if (v && !json_is_null(v)) {
        AW_RETURN_IF(!json_is_integer(v), AW_ERR_CONFIG,
                     "%s: quantization_config.config_groups.%s.weights.num_bits must be an integer", path, g);
        bits = json_integer_value(v);
    }
    AW_RETURN_IF(bits != 3 && bits != 4 && bits != 8, AW_ERR_UNSUPPORTED,
                 "%s: config_groups.%s.weights.num_bits: %lld-bit weights; this evaluator runs 3, 4 or 8 bits",
                 path, g, bits);
    int bad = 0;
    const char *type = member_str(a, "type", "int", &bad);
    AW_RETURN_IF(bad, AW_ERR_CONFIG, "%s: config_groups.%s.weights.type must be a string", path, g);
    AW_RETURN_IF(strcmp(type, "int") != 0, AW_ERR_UNSUPPORTED,
                 "%s: config_groups.%s.weights.type \"%s\"; this evaluator runs int quantization only", path, g,
                 type);
    v = json_object_get(a, "symmetric");
    AW_RETURN_IF(v && !json_is_null(v) && !json_is_boolean(v), AW_ERR_CONFIG,
                 "%s: config_groups.%s.weights.symmetric must be true or false", path, g);
    int sym = !(v && json_is_false(v));
    long long gs;
    AW_TRY(member_group_size(a, path, g, "weights", &gs));
    const char *strategy = member_str(a, "strategy", gs > 0 ? "group" : gs == -1 ? "channel" : "tensor", &bad);
    AW_RETURN_IF(bad, AW_ERR_CONFIG, "%s: config_groups.%s.weights.strategy must be a string", path, g);
    int group = 0;
    if (strcmp(strategy, "group") == 0) {
        AW_RETURN_IF(gs <= 0 || gs > INT32_MAX, AW_ERR_CONFIG,
                     "%s: config_groups.%s.weights.group_size %lld: strategy \"group\" needs a positive group size",
                     path, g, gs);
        AW_RETURN_IF(gs < 8, AW_ERR_UNSUPPORTED,
                     "%s: config_groups.%s.weights.group_size %lld; this evaluator runs groups of at least 8 "
                     "inputs",
                     path, g, gs);
        group = (int)gs;
    } else {
        AW_RETURN_IF(strcmp(strategy, "channel") != 0, AW_ERR_UNSUPPORTED,
                     "%s: config_groups.%s.weights.strategy \"%s\"; %s low-bit weights must have one step "
                     "per group or per output channel",
                     path, g, strategy, format);
        AW_RETURN_IF(gs != 0 && gs != -1, AW_ERR_CONFIG,
                     "%s: config_groups.%s.weights.group_size %lld with strategy \"channel\"", path, g, gs);
    }
    v = json_object_get(a, "block_structure");
    AW_RETURN_IF(v && !json_is_null(v), AW_ERR_UNSUPPORTED,
                 "%s: config_groups.%s.weights.block_structure is set; steps per group or channel only", path, g);
    v = json_object_get(a, "dynamic");
    AW_RETURN_IF(v && !json_is_null(v) && !json_is_false(v), AW_ERR_UNSUPPORTED,
                 "%s: config_groups.%s.weights.dynamic: dynamic weights are not supported", path, g);
    v = json_object_get(a, "actorder");
    if (v && !json_is_null(v) && !json_is_false(v)) {
        const char *ao = json_is_string(v) ? json_string_value(v) : NULL;
        int plain = ao && (strcmp(ao, "weight") == 0 || strcmp(ao, "static") == 0);
        int indexed = json_is_true(v) || (ao && (strcmp(ao, "group") == 0 || strcmp(ao, "dynamic") == 0));
        AW_RETURN_IF(indexed, AW_ERR_UNSUPPORTED,
                     "%s: config_groups.%s.weights.actorder %s%s%s: groups in activation order need the g_idx "
                     "permutation, which this evaluator does not read (compressed-tensors 0.20 removed it); "
                     "actorder \"weight\" is fine",
                     path, g, ao ? "\"" : "", ao ? ao : "true", ao ? "\"" : "");
        AW_RETURN_IF(!plain, AW_ERR_CONFIG,
                     "%s: config_groups.%s.weights.actorder must be null, \"weight\" or \"group\"", path, g);
    }
    *out = (aw_scheme){.wbits = (int)bits, .group = group, .sym = sym, .act = AW_ACT_FLOAT};
    aw_status st = aw_scheme_check(out);
    if (st != AW_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", aw_err_message());
        return AW_FAIL(AW_ERR_UNSUPPORTED, "%s: config_groups.%s.weights: %s", path, g, msg);
    }
    return AW_OK;
}

/* The input_activations of an int-quantized group g whose "dynamic" is set:
 * their fields of the dynamic scheme into ws (act, abits, agroup; the
 * caller checks the whole scheme). What the forward runs is abits-bit
 * symmetric int, one step per token (strategy "token") or per group of
 * group_size inputs (strategy "group"), computed at run time. */
static aw_status check_dyn_args(const char *path, const char *g, json_t *a, aw_scheme *ws)
{
    int bad = 0;
    json_t *v = json_object_get(a, "dynamic");
    AW_RETURN_IF(!json_is_true(v), AW_ERR_UNSUPPORTED,
                 "%s: config_groups.%s: input activations are dynamic \"%s\": this evaluator runs dynamic "
                 "activations with dynamic true (per token or per group)",
                 path, g, json_is_string(v) ? json_string_value(v) : "?");
    long long gs;
    AW_TRY(member_group_size(a, path, g, "input_activations", &gs));
    const char *strategy = member_str(a, "strategy", gs > 0 ? "group" : "tensor", &bad);
    AW_RETURN_IF(bad, AW_ERR_CONFIG, "%s: config_groups.%s.input_activations.strategy must be a string", path, g);
    int token = strcmp(strategy, "token") == 0, grouped = strcmp(strategy, "group") == 0;
    AW_RETURN_IF(!token && !grouped, AW_ERR_UNSUPPORTED,
                 "%s: config_groups.%s: input activations are dynamic with strategy \"%s\": this evaluator runs "
                 "dynamic activations per token or per group (and static ones per tensor, INT8)",
                 path, g, strategy);
    AW_RETURN_IF(token && gs != 0 && gs != -1, AW_ERR_CONFIG,
                 "%s: config_groups.%s.input_activations.group_size %lld with strategy \"token\"", path, g, gs);
    AW_RETURN_IF(grouped && (gs <= 0 || gs > INT32_MAX), AW_ERR_CONFIG,
                 "%s: config_groups.%s.input_activations.group_size %lld: strategy \"group\" needs a positive "
                 "group size",
                 path, g, gs);
    v = json_object_get(a, "num_bits");
    long long bits = 8;
    if (v && !json_is_null(v)) {
        AW_RETURN_IF(!json_is_integer(v), AW_ERR_CONFIG,
                     "%s: config_groups.%s.input_activations.num_bits must be an integer", path, g);
        bits = json_integer_value(v);
    }
    AW_RETURN_IF(bits < 4 || bits > 8, AW_ERR_UNSUPPORTED,
                 "%s: config_groups.%s.input_activations.num_bits: %lld-bit activations; this evaluator runs 4 to 8",
                 path, g, bits);
    const char *type = member_str(a, "type", "int", &bad);
    AW_RETURN_IF(bad, AW_ERR_CONFIG, "%s: config_groups.%s.input_activations.type must be a string", path, g);
    AW_RETURN_IF(strcmp(type, "int") != 0, AW_ERR_UNSUPPORTED,
                 "%s: config_groups.%s.input_activations.type \"%s\"; this evaluator runs int quantization only",
                 path, g, type);
    v = json_object_get(a, "symmetric");
    AW_RETURN_IF(v && !json_is_null(v) && !json_is_boolean(v), AW_ERR_CONFIG,
                 "%s: config_groups.%s.input_activations.symmetric must be true or false", path, g);
    AW_RETURN_IF(json_is_false(v), AW_ERR_UNSUPPORTED,
                 "%s: config_groups.%s.input_activations: asymmetric dynamic activations (zero points); this "
                 "evaluator runs symmetric ones only",
                 path, g);
    v = json_object_get(a, "block_structure");
    AW_RETURN_IF(v && !json_is_null(v), AW_ERR_UNSUPPORTED,
                 "%s: config_groups.%s.input_activations.block_structure is set; steps per token or group only", path,
                 g);
    ws->act = AW_ACT_DYNAMIC;
    ws->abits = (int)bits;
    ws->agroup = grouped ? (int)gs : 0;
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

static int same_scheme(const aw_scheme *a, const aw_scheme *b)
{
    return a->wbits == b->wbits && a->group == b->group && a->sym == b->sym && a->act == b->act &&
           a->abits == b->abits && a->agroup == b->agroup;
}

/* The scheme of config.json's quantization_config (root), into *out. */
static aw_status check_qc(const char *path, json_t *root, aw_scheme *out)
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
                 "%s: quantization_config has no format string; expected int-quantized or pack-quantized", path);
    int packed = strcmp(format, "pack-quantized") == 0;
    AW_RETURN_IF(!packed && strcmp(format, "int-quantized") != 0 && strcmp(format, "naive-quantized") != 0,
                 AW_ERR_UNSUPPORTED,
                 "%s: format \"%s\"; expected int-quantized or naive-quantized (W8A8) or pack-quantized "
                 "(weight-only)",
                 path, format);
    /* other states keep float weights that only mimic the integers */
    const char *status = member_str(qc, "quantization_status", "compressed", &bad);
    AW_RETURN_IF(bad || strcmp(status, "compressed") != 0, AW_ERR_UNSUPPORTED,
                 "%s: quantization_status \"%s\"; expected compressed (weights stored as integers)", path,
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
    /* rotations (QuIP, SpinQuant) would have to be applied to the inputs */
    v = json_object_get(qc, "transform_config");
    AW_RETURN_IF(v && !json_is_null(v) && !(json_is_object(v) && json_object_size(v) == 0), AW_ERR_UNSUPPORTED,
                 "%s: quantization_config.transform_config is set: transformed (rotated) weights are not supported",
                 path);
    json_t *groups = json_object_get(qc, "config_groups");
    AW_RETURN_IF(!json_is_object(groups) || json_object_size(groups) == 0, AW_ERR_UNSUPPORTED,
                 "%s: quantization_config has no config_groups", path);
    const char *g, *first = NULL;
    json_t *grp;
    int linear = 0;
    aw_scheme sc = AW_SCHEME_W8A8;
    json_object_foreach(groups, g, grp)
    {
        AW_RETURN_IF(!json_is_object(grp), AW_ERR_CONFIG, "%s: config_groups.%s must be an object", path, g);
        const char *gf = member_str(grp, "format", format, &bad);
        AW_RETURN_IF(bad, AW_ERR_CONFIG, "%s: config_groups.%s.format must be a string", path, g);
        AW_RETURN_IF(strcmp(gf, format) != 0, AW_ERR_UNSUPPORTED,
                     "%s: config_groups.%s.format \"%s\" is not the checkpoint's format \"%s\": one format for "
                     "every linear only",
                     path, g, gf, format);
        json_t *w = json_object_get(grp, "weights");
        AW_RETURN_IF(!w || json_is_null(w), AW_ERR_UNSUPPORTED,
                     "%s: config_groups.%s: weights are not quantized; this evaluator runs quantized weights only",
                     path, g);
        json_t *in = json_object_get(grp, "input_activations");
        aw_scheme gs = AW_SCHEME_W8A8;
        if (packed) {
            AW_RETURN_IF(in && !json_is_null(in), AW_ERR_UNSUPPORTED,
                         "%s: format \"pack-quantized\" with quantized input activations "
                         "(config_groups.%s.input_activations); this evaluator runs pack-quantized weight-only "
                         "checkpoints",
                         path, g);
            AW_TRY(check_wo_args(path, g, w, format, &gs));
        } else {
            AW_RETURN_IF(!in || json_is_null(in), AW_ERR_UNSUPPORTED,
                         "%s: config_groups.%s: input activations are not quantized; this evaluator runs "
                         "int-quantized W8A8 (static per-tensor INT8 activations), int-quantized with dynamic "
                         "activations, or pack-quantized weight-only",
                         path, g);
            v = json_is_object(in) ? json_object_get(in, "dynamic") : NULL;
            if (v && !json_is_null(v) && !json_is_false(v)) {
                /* dynamic activations: low-bit weights, steps per group or channel */
                AW_TRY(check_dyn_args(path, g, in, &gs));
                /* per-tensor weight steps are named with the inputs' strategy */
                json_t *gsz = json_is_object(w) ? json_object_get(w, "group_size") : NULL;
                long long wgs = json_is_integer(gsz) ? json_integer_value(gsz) : 0;
                const char *wdflt = wgs > 0 ? "group" : wgs == -1 ? "channel" : "tensor";
                const char *ws = json_is_object(w) ? member_str(w, "strategy", wdflt, &bad) : NULL;
                AW_RETURN_IF(ws && !bad && strcmp(ws, "group") != 0 && strcmp(ws, "channel") != 0,
                             AW_ERR_UNSUPPORTED,
                             "%s: config_groups.%s: weights with strategy \"%s\" and input activations dynamic "
                             "with strategy \"%s\": this evaluator runs dynamic activations with weight steps "
                             "per group or per output channel",
                             path, g, ws, gs.agroup > 0 ? "group" : "token");
                aw_scheme acts = gs;
                AW_TRY(check_wo_args(path, g, w, format, &gs));
                gs.act = acts.act, gs.abits = acts.abits, gs.agroup = acts.agroup;
                aw_status st = aw_scheme_check(&gs);
                if (st != AW_OK) {
                    char msg[256];
                    snprintf(msg, sizeof msg, "%s", aw_err_message());
                    return AW_FAIL(AW_ERR_UNSUPPORTED, "%s: config_groups.%s: %s", path, g, msg);
                }
            } else {
                /* the input first: static low-bit activations are named as such */
                AW_TRY(check_args(path, g, "input_activations", in, 1));
                AW_TRY(check_args(path, g, "weights", w, 0));
            }
        }
        v = json_object_get(grp, "output_activations");
        AW_RETURN_IF(v && !json_is_null(v), AW_ERR_UNSUPPORTED,
                     "%s: config_groups.%s: output activation quantization is not supported", path, g);
        AW_RETURN_IF(first && !same_scheme(&gs, &sc), AW_ERR_UNSUPPORTED,
                     "%s: config_groups.%s quantizes otherwise than config_groups.%s: one scheme for every "
                     "linear only",
                     path, g, first);
        if (!first) first = g;
        sc = gs;
        linear |= targets_linear(grp);
    }
    AW_RETURN_IF(!linear, AW_ERR_UNSUPPORTED,
                 "%s: no config group targets \"Linear\": every linear layer must be quantized", path);
    *out = sc;
    return AW_OK;
}

aw_status aw_check_quant_config(const char *config_path, aw_scheme *scheme)
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
    aw_scheme sc;
    st = check_qc(config_path, root, &sc);
    json_decref(root);
    if (st == AW_OK && scheme) *scheme = sc;
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

