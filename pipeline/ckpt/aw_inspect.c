/* aw_inspect.c - checkpoint checks and the inspect listing (see aw_inspect.h). */
#include "aw_inspect.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aw_eval.h"
#include "aw_fs.h"
#include "aw_model.h"
#include "aw_tokens.h"

static aw_status check_one(const aw_model_files *mf, const char *name, int ndim, const int64_t shape[2])
{
    const aw_st_file *f = NULL;
    const aw_st_tensor *t = NULL;
    AW_TRY(aw_mf_find(mf, name, &f, &t));
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char got[128] = "", want[64] = "";
        size_t k = 0;
        for (int i = 0; i < t->ndim && k < sizeof got; i++)
            k += (size_t)snprintf(got + k, sizeof got - k, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        k = 0;
        for (int i = 0; i < ndim; i++)
            k += (size_t)snprintf(want + k, sizeof want - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
        return AW_FAIL(AW_ERR_ST_SHAPE, "%s: tensor '%s' has shape [%s]; config.json implies [%s]",
                       aw_st_label(f), name, got, want);
    }
    AW_RETURN_IF(t->dtype != AW_DT_F16 && t->dtype != AW_DT_BF16 && t->dtype != AW_DT_F32,
                 AW_ERR_DTYPE, "%s: tensor '%s' has dtype %s; expected F16, BF16 or F32",
                 aw_st_label(f), name, aw_dtype_name(t->dtype));
    return AW_OK;
}

aw_status aw_checkpoint_check(const aw_model_config *c, const aw_model_files *mf)
{
    const aw_arch *a = aw_arch_of(c);
    char name[160];
    int ndim;
    int64_t shape[2];
    for (int m = 0; m < a->n_end_tensors; m++) {
        aw_tensor_ref r = a->end_tensors[m];
        if (r.kind == AW_T_HEAD && c->tie_word_embeddings) continue;
        aw_arch_tensor_name(c, -1, r, name, sizeof name);
        aw_arch_tensor_shape(c, r, &ndim, shape);
        AW_TRY(check_one(mf, name, ndim, shape));
    }
    for (int l = 0; l < c->num_hidden_layers; l++) {
        for (int b = 0; b < a->n_block_tensors; b++) {
            aw_tensor_ref r = a->block_tensors[b];
            if (r.kind == AW_T_LIN_B && !aw_arch_has_linear_bias(c, r.index)) continue;
            if (r.kind == AW_T_NORM_B && !aw_arch_has_norm_bias(c)) continue;
            aw_arch_tensor_name(c, l, r, name, sizeof name);
            aw_arch_tensor_shape(c, r, &ndim, shape);
            AW_TRY(check_one(mf, name, ndim, shape));
        }
    }
    return AW_OK;
}

aw_status aw_checkpoint_scan_values(const aw_model_files *mf)
{
    float *buf = NULL;
    size_t cap = 0;
    aw_status st = AW_OK;
    for (size_t i = 0; i < aw_mf_count(mf); i++) {
        const aw_st_file *f = NULL;
        const aw_st_tensor *t = aw_mf_at(mf, i, &f);
        if (!aw_dtype_table[t->dtype].is_float) continue;
        size_t n = (size_t)aw_st_numel(t);
        if (n > cap) {
            free(buf);
            buf = malloc(n * sizeof *buf);
            cap = n;
            AW_GOTO_IF(!buf, AW_ERR_NOMEM, "%s: tensor '%s': out of memory for %zu values",
                       aw_st_label(f), t->name, n);
        }
        AW_CHECK(aw_st_read_f32(f, t, buf, cap));
        for (size_t j = 0; j < n; j++)
            AW_GOTO_IF(!isfinite(buf[j]), AW_ERR_NONFINITE, "%s: tensor '%s': element %zu is %s",
                       aw_st_label(f), t->name, j, isnan(buf[j]) ? "NaN" : "Inf");
    }
fail:
    free(buf);
    return st;
}

static void fmt_count(uint64_t v, char *buf, size_t cap)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    size_t k = 0;
    for (int i = 0; i < n && k + 1 < cap; i++) {
        if (i > 0 && (n - i) % 3 == 0 && k + 2 < cap) buf[k++] = ',';
        buf[k++] = digits[i];
    }
    buf[k] = '\0';
}

/* ---- quantized checkpoints ---------------------------------------------------- */

/* A QuantizationArgs object in words: "int8, symmetric, per tensor, static". */
static void args_text(json_t *a, char *buf, size_t cap)
{
    if (!json_is_object(a)) {
        snprintf(buf, cap, "not quantized");
        return;
    }
    json_t *bits = json_object_get(a, "num_bits"), *gs = json_object_get(a, "group_size");
    json_t *sym = json_object_get(a, "symmetric"), *dyn = json_object_get(a, "dynamic");
    const char *type = json_string_value(json_object_get(a, "type"));
    const char *strategy = json_string_value(json_object_get(a, "strategy"));
    char gran[48];
    if (json_is_integer(gs)) snprintf(gran, sizeof gran, "groups of %lld", (long long)json_integer_value(gs));
    else snprintf(gran, sizeof gran, "per %s", strategy ? strategy : "tensor");
    snprintf(buf, cap, "%s%lld, %s, %s, %s", type ? type : "int", json_is_integer(bits) ? (long long)json_integer_value(bits) : 8,
             json_is_false(sym) ? "asymmetric" : "symmetric", gran,
             dyn && !json_is_null(dyn) && !json_is_false(dyn) ? "dynamic" : "static");
}

static int args_is(json_t *a, const char *key, const char *want, const char *dflt)
{
    const char *v = json_string_value(json_object_get(a, key));
    return strcmp(v ? v : dflt, want) == 0;
}

static long long args_bits(json_t *a)
{
    json_t *v = json_object_get(a, "num_bits");
    return json_is_integer(v) ? json_integer_value(v) : 8;
}

static int args_dynamic(json_t *a)
{
    json_t *v = json_object_get(a, "dynamic");
    return v && !json_is_null(v) && !json_is_false(v);
}

/* vLLM's compressed-tensors scheme for one config group, by its selection
 * rules (weights x input activations x format), or why there is none. */
static int vllm_scheme(const char *format, json_t *w, json_t *in, char *buf, size_t cap)
{
    int act_format = !strcmp(format, "int-quantized") || !strcmp(format, "naive-quantized") ||
                     !strcmp(format, "float-quantized");
    int w_sym = !json_is_false(json_object_get(w, "symmetric"));
    int w_tc = args_is(w, "strategy", "tensor", "tensor") || args_is(w, "strategy", "channel", "tensor");
    if (!json_is_object(w)) return snprintf(buf, cap, "no: weights are not quantized"), 0;
    if (!json_is_object(in) || json_is_null(in)) {
        int grp = args_is(w, "strategy", "group", "tensor") || args_is(w, "strategy", "channel", "tensor");
        long long b = args_bits(w);
        if (grp && w_sym && !args_dynamic(w) && !strcmp(format, "pack-quantized") && (b == 4 || b == 8))
            return snprintf(buf, cap, "yes: CompressedTensorsWNA16 (W%lldA16)", b), 1;
        return snprintf(buf, cap, "no: weight-only schemes need format pack-quantized, 4 or 8 bits, per channel "
                                  "or group, symmetric"), 0;
    }
    if (!act_format)
        return snprintf(buf, cap, "no: format %s carries no activation quantization", format), 0;
    if (!args_is(w, "type", "int", "int") || !args_is(in, "type", "int", "int"))
        return snprintf(buf, cap, "not checked: float schemes are outside the rules aweq-dist knows"), 0;
    int w_gc = args_is(w, "strategy", "group", "tensor") || args_is(w, "strategy", "channel", "tensor");
    if (args_dynamic(in) && (args_bits(w) != 8 || args_bits(in) != 8 || args_is(w, "strategy", "group", "tensor"))) {
        /* vLLM's selection for int-quantized low-bit integer schemes
         * (compressed_tensors.py, 2026): W4A8 per-token symmetric goes to
         * CompressedTensorsW4A8Int, whose only kernel for signed int4 is
         * the CPU one; its Humming schemes (WNA4Int, WNA8Int: dynamic int4
         * or int8 activations per token or group) take pack-quantized
         * weights only; nothing else matches */
        if (args_bits(w) == 4 && args_bits(in) == 8 && w_sym && w_gc && !args_dynamic(w) &&
            args_is(in, "strategy", "token", "tensor"))
            return snprintf(buf, cap, "CPU only: CompressedTensorsW4A8Int, whose one kernel for signed int4 weights "
                                      "(Dynamic4bitLinearKernel) runs on CPUs; on GPUs it finds no kernel "
                                      "(vllm-project/llm-compressor#2693)"), 0;
        return snprintf(buf, cap, "no: no scheme serves int-quantized integer W%lldA%lld with dynamic activations "
                                  "(%s weights, activations per %s); the Humming schemes for dynamic int4/int8 "
                                  "activations (WNA4Int, WNA8Int; vllm-project/vllm#46390) read pack-quantized "
                                  "weights only",
                        args_bits(w), args_bits(in), w_sym ? "symmetric" : "asymmetric",
                        args_is(in, "strategy", "group", "tensor") ? "group" : "token"), 0;
    }
    if (args_bits(w) != 8 || args_bits(in) != 8)
        return snprintf(buf, cap, "no: integer weight-and-activation schemes are 8-bit only (W%lldA%lld)",
                        args_bits(w), args_bits(in)), 0;
    if (!w_sym || !w_tc || args_dynamic(w))
        return snprintf(buf, cap, "no: INT8 weights must be symmetric, static, per tensor or per channel"), 0;
    if (args_is(in, "strategy", "tensor", "tensor") && !args_dynamic(in))
        return snprintf(buf, cap, "yes: CompressedTensorsW8A8Int8 (static per-tensor input scales)"), 1;
    if (args_is(in, "strategy", "token", "tensor") && args_dynamic(in))
        return snprintf(buf, cap, "yes: CompressedTensorsW8A8Int8 (dynamic per-token input scales)"), 1;
    return snprintf(buf, cap, "no: INT8 inputs must be static per tensor or dynamic per token"), 0;
}

/* Runtimes: vLLM, transformers, `aweq-dist eval`, by config.json alone. */
static void runtime_rules(const char *cfg_path, json_t *qc, FILE *out)
{
    const char *method = json_string_value(json_object_get(qc, "quant_method"));
    const char *format = json_string_value(json_object_get(qc, "format"));
    json_t *groups = json_object_get(qc, "config_groups"), *g;
    const char *gname;
    char why[512] = "", line[256];
    int ok = method && !strcmp(method, "compressed-tensors") && format && json_object_size(groups) > 0;
    if (!ok) snprintf(why, sizeof why, "no: quant_method %s, format %s: not a compressed-tensors checkpoint",
                      method ? method : "(none)", format ? format : "(none)");
    json_object_foreach(groups, gname, g)
    {
        if (!ok) break;
        if (!vllm_scheme(format, json_object_get(g, "weights"), json_object_get(g, "input_activations"), line,
                         sizeof line)) {
            snprintf(why, sizeof why, "%s (config group %s)", line, gname);
            ok = 0;
        } else if (!why[0]) {
            snprintf(why, sizeof why, "%s", line);
        }
    }
    json_t *kv = json_object_get(qc, "kv_cache_scheme");
    if (ok && kv && !json_is_null(kv) &&
        !(args_is(kv, "type", "float", "int") && args_bits(kv) == 8 && args_is(kv, "strategy", "tensor", "") &&
          json_is_true(json_object_get(kv, "symmetric")))) {
        snprintf(why, sizeof why, "no: a KV-cache scheme other than FP8 per tensor, symmetric");
        ok = 0;
    }
    fprintf(out, "loadable (by the format rules aweq-dist knows; neither runtime is run here):\n");
    fprintf(out, "  vLLM: %s\n", why);
    static const char *const ct_formats[] = {"dense", "int-quantized", "naive-quantized", "pack-quantized",
                                             "float-quantized", "marlin-24", "sparse-bitmask", "sparse-24-bitmask"};
    int hf = 0;
    for (size_t i = 0; format && i < sizeof ct_formats / sizeof ct_formats[0]; i++) hf |= !strcmp(format, ct_formats[i]);
    hf = hf && method && !strcmp(method, "compressed-tensors");
    fprintf(out, "  transformers: %s: quant_method %s, format %s%s\n", hf ? "yes" : "no", method ? method : "(none)",
            format ? format : "(none)", hf ? " (with the compressed-tensors package installed)" : "");
    json_t *in0 = NULL;
    json_object_foreach(groups, gname, g)
    {
        if (!in0) in0 = json_object_get(g, "input_activations");
    }
    if (hf && json_is_object(in0) && args_dynamic(in0) && args_is(in0, "type", "int", "int")) {
        /* what compressed-tensors 0.20.1 does under transformers 5.24
         * (docs/checkpoint-format.md, checked with the library) */
        fprintf(out, "    default load: weights decompressed on the first forward ((q - z) * step, in the model's "
                     "dtype); inputs fake-quantized at run time per %s (%lld-bit steps absmax / %g, in floating "
                     "point, not an integer product)\n",
                args_is(in0, "strategy", "group", "tensor") ? "group of inputs" : "token", args_bits(in0),
                ((double)(1ll << args_bits(in0)) - 1.0) / 2.0);
        fprintf(out, "    quantization_config=CompressedTensorsConfig(dequantize=True): weights dequantized on load, "
                     "the activation quantization dropped without a warning (a weight-only model)\n");
    }
    aw_status st = aw_check_quant_config(cfg_path, NULL);
    fprintf(out, "  aweq-dist eval: %s%s\n", st == AW_OK ? "yes" : "no: ", st == AW_OK ? "" : aw_err_message());
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* One single-value scale tensor into *v, or AW_ERR_* naming it. */
static aw_status read_scale(const aw_model_files *mf, const char *name, float *v)
{
    const aw_st_file *f = NULL;
    const aw_st_tensor *t = NULL;
    AW_TRY(aw_mf_find(mf, name, &f, &t));
    AW_RETURN_IF(aw_st_numel(t) != 1, AW_ERR_UNSUPPORTED, "%s: tensor '%s' has %llu values: not a per-tensor scale",
                 aw_st_label(f), name, (unsigned long long)aw_st_numel(t));
    AW_RETURN_IF(!aw_dtype_table[t->dtype].is_float, AW_ERR_DTYPE, "%s: tensor '%s' has dtype %s; a scale is a float",
                 aw_st_label(f), name, aw_dtype_name(t->dtype));
    AW_TRY(aw_st_read_f32(f, t, v, 1));
    AW_RETURN_IF(!isfinite(*v) || !(*v > 0), AW_ERR_NONFINITE, "%s: tensor '%s' is %g: a scale must be finite and positive",
                 aw_st_label(f), name, (double)*v);
    return AW_OK;
}

/* The largest step of a weight-only linear's weight_scale (float, any
 * shape), or AW_ERR_* naming it. */
static aw_status read_max_step(const aw_model_files *mf, const char *name, float *v)
{
    const aw_st_file *f = NULL;
    const aw_st_tensor *t = NULL;
    AW_TRY(aw_mf_find(mf, name, &f, &t));
    AW_RETURN_IF(!aw_dtype_table[t->dtype].is_float, AW_ERR_DTYPE, "%s: tensor '%s' has dtype %s; a scale is a float",
                 aw_st_label(f), name, aw_dtype_name(t->dtype));
    size_t n = (size_t)aw_st_numel(t);
    float *x = malloc((n ? n : 1) * sizeof *x);
    AW_RETURN_IF(!x, AW_ERR_NOMEM, "out of memory");
    aw_status st = aw_st_read_f32(f, t, x, n);
    *v = 0.0f;
    for (size_t i = 0; i < n && st == AW_OK; i++) {
        if (!isfinite(x[i]) || !(x[i] > 0))
            st = AW_FAIL(AW_ERR_NONFINITE, "%s: tensor '%s' value %zu is %g: a scale must be finite and positive",
                         aw_st_label(f), name, i, (double)x[i]);
        *v = x[i] > *v ? x[i] : *v;
    }
    free(x);
    return st;
}

/* Each layer's linears: scheme, bits, granularity and scales, with the
 * tensors every quantized Linear needs checked by their headers (the
 * INT8 weights are not read). */
static aw_status inspect_quantized(const aw_model_config *c, const aw_model_files *mf, json_t *qc, FILE *out)
{
    json_t *groups = json_object_get(qc, "config_groups"), *g, *ign = json_object_get(qc, "ignore"), *e;
    const char *gname;
    char text[160], ig[256] = "";
    size_t i, k = 0;
    json_array_foreach(ign, i, e) k += (size_t)snprintf(ig + k, k < sizeof ig ? sizeof ig - k : 0, "%s%s", k ? ", " : "",
                                                        json_string_value(e) ? json_string_value(e) : "?");
    const char *method = json_string_value(json_object_get(qc, "quant_method"));
    const char *format = json_string_value(json_object_get(qc, "format"));
    const char *status = json_string_value(json_object_get(qc, "quantization_status"));
    fprintf(out, "quantization: %s, format %s, status %s; ignore: %s\n", method ? method : "?", format ? format : "?",
            status ? status : "?", k ? ig : "(none)");
    json_t *w = NULL, *in = NULL;
    json_object_foreach(groups, gname, g)
    {
        json_t *targets = json_object_get(g, "targets");
        char tg[160] = "";
        size_t n = 0;
        json_array_foreach(targets, i, e) n += (size_t)snprintf(tg + n, n < sizeof tg ? sizeof tg - n : 0, "%s%s",
                                                                n ? ", " : "", json_string_value(e) ? json_string_value(e) : "?");
        fprintf(out, "  %s (targets %s):\n", gname, tg);
        args_text(json_object_get(g, "weights"), text, sizeof text);
        fprintf(out, "    weights: %s\n", text);
        args_text(json_object_get(g, "input_activations"), text, sizeof text);
        fprintf(out, "    input activations: %s\n", text);
        if (!w) w = json_object_get(g, "weights"), in = json_object_get(g, "input_activations");
    }
    char scheme[16], bits[16], gran[24];
    long long wb = args_bits(w), ab = json_is_object(in) ? args_bits(in) : 16;
    snprintf(scheme, sizeof scheme, "W%lldA%lld", wb, ab);
    snprintf(bits, sizeof bits, "%lld/%lld", wb, ab);
    json_t *gs = json_object_get(w, "group_size");
    if (json_is_integer(gs)) snprintf(gran, sizeof gran, "group %lld", (long long)json_integer_value(gs));
    else snprintf(gran, sizeof gran, "%s", args_is(w, "strategy", "channel", "tensor") ? "channel" : "tensor");
    /* weight-only (pack-quantized): packed I32 weights, steps per group or
     * channel, no input scale */
    int packed = format && !strcmp(format, "pack-quantized");
    /* dynamic activations (int-quantized): I8 weights, steps per group or
     * channel, the input steps made at run time */
    int dyn = !packed && json_is_object(in) && args_dynamic(in);
    const aw_arch *a = aw_arch_of(c);
    int nl_ = a->n_lin, n_lin = c->num_hidden_layers * nl_, shared = 1;
    float *ws = malloc((size_t)(n_lin ? n_lin : 1) * 2 * sizeof(float));
    AW_RETURN_IF(!ws, AW_ERR_NOMEM, "out of memory");
    float *xs = ws + n_lin;
    aw_status st = AW_OK;
    fprintf(out, "%5s  %-9s %-7s %-6s %-5s %-11s %13s %13s\n", "layer", "linear", "scheme", "weight", "bits",
            "granularity", "weight_scale", "input_scale");
    for (int l = 0; l < c->num_hidden_layers && st == AW_OK; l++) {
        for (int j = 0; j < nl_ && st == AW_OK; j++) {
            char name[160], base[128];
            int n = aw_arch_tensor_name(c, l, (aw_tensor_ref){AW_T_LIN_W, j}, base, sizeof base);
            base[n - (int)strlen(".weight")] = '\0';
            const aw_st_file *f = NULL;
            const aw_st_tensor *t = NULL;
            snprintf(name, sizeof name, packed ? "%s.weight_packed" : "%s.weight", base);
            st = aw_mf_find(mf, name, &f, &t);
            aw_dtype want = packed ? AW_DT_I32 : AW_DT_I8;
            if (st == AW_OK && t->dtype != want)
                st = AW_FAIL(AW_ERR_DTYPE, "%s: tensor '%s' has dtype %s; a quantized weight is %s", aw_st_label(f),
                             name, aw_dtype_name(t->dtype), aw_dtype_name(want));
            snprintf(name, sizeof name, "%s.weight_scale", base);
            if (st == AW_OK)
                st = packed || dyn ? read_max_step(mf, name, &ws[l * nl_ + j]) : read_scale(mf, name, &ws[l * nl_ + j]);
            snprintf(name, sizeof name, "%s.input_scale", base);
            if (st == AW_OK && !packed && !dyn) st = read_scale(mf, name, &xs[l * nl_ + j]);
            if (st != AW_OK) break;
            if (packed || dyn)
                fprintf(out, "%5d  %-9s %-7s %-6s %-5s %-11s %13.6g %13s\n", l, aw_arch_linear_short(a, j), scheme,
                        aw_dtype_name(t->dtype), bits, gran, (double)ws[l * nl_ + j], dyn ? "dynamic" : "-");
            else
                fprintf(out, "%5d  %-9s %-7s %-6s %-5s %-11s %13.6g %13.6g\n", l, aw_arch_linear_short(a, j), scheme,
                        aw_dtype_name(t->dtype), bits, gran, (double)ws[l * nl_ + j], (double)xs[l * nl_ + j]);
        }
        if (st == AW_OK && !packed && !dyn)
            for (int j = 1; j < nl_; j++) /* the linears fed by the first tap: q, k, v */
                if (a->lin[j].tap == AW_TAP_ATTN_IN) shared &= xs[l * nl_ + j] == xs[l * nl_];
    }
    if (st == AW_OK && n_lin > 0) {
        for (int pass = 0; pass < (packed || dyn ? 1 : 2); pass++) {
            float *v = pass ? xs : ws;
            qsort(v, (size_t)n_lin, sizeof *v, cmp_float);
            fprintf(out, "%s%s: %d values, min %.4g, median %.4g, max %.4g\n", pass ? "input_scale" : "weight_scale",
                    packed || dyn ? " (largest step of each linear)" : "", n_lin, (double)v[0], (double)v[n_lin / 2],
                    (double)v[n_lin - 1]);
        }
        if (!packed && !dyn) fprintf(out, "q/k/v_proj share one input scale in every layer: %s\n", shared ? "yes" : "no");
    }
    free(ws);
    return st;
}

/* The quantization_config of config.json, or NULL (an fp checkpoint);
 * *root keeps it alive. */
static json_t *quant_config(const char *cfg_path, json_t **root)
{
    json_error_t je;
    *root = json_load_file(cfg_path, 0, &je);
    json_t *qc = *root ? json_object_get(*root, "quantization_config") : NULL;
    return json_is_object(qc) ? qc : NULL;
}

aw_status aw_inspect(const char *dir, FILE *out, int scan_values)
{
    json_t *root = NULL, *qc = NULL;
    aw_status st = AW_OK;
    aw_model_config cfg;
    aw_model_files *mf = NULL;
    char *cfg_path = aw_path_join(dir, "config.json");
    char *tok_path = aw_path_join(dir, "calibration.tokens");
    AW_GOTO_IF(!cfg_path || !tok_path, AW_ERR_NOMEM, "inspect: out of memory");
    AW_CHECK(aw_config_read(cfg_path, &cfg));
    AW_CHECK(aw_mf_open(dir, &mf));

    fprintf(out, "%-60s %-5s %-16s %12s  %s\n", "tensor", "dtype", "shape", "bytes", "file");
    uint64_t params = 0, scales = 0;
    for (size_t i = 0; i < aw_mf_count(mf); i++) {
        const aw_st_file *f = NULL;
        const aw_st_tensor *t = aw_mf_at(mf, i, &f);
        char shape[64] = "[";
        size_t k = 1;
        for (int d = 0; d < t->ndim && k < sizeof shape; d++)
            k += (size_t)snprintf(shape + k, sizeof shape - k, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        if (k < sizeof shape - 1) snprintf(shape + k, sizeof shape - k, "]");
        const char *file = strrchr(aw_st_label(f), '/');
        fprintf(out, "%-60s %-5s %-16s %12llu  %s\n", t->name, aw_dtype_name(t->dtype), shape,
                (unsigned long long)(t->end - t->begin), file ? file + 1 : aw_st_label(f));
        /* a stored lm_head.weight duplicates the tied embedding; the
         * scales of a quantized checkpoint are not parameters */
        size_t nl = strlen(t->name);
        int is_scale = (nl > 13 && !strcmp(t->name + nl - 13, ".weight_scale")) ||
                       (nl > 12 && !strcmp(t->name + nl - 12, ".input_scale"));
        if (is_scale) scales += aw_st_numel(t);
        else if (!cfg.tie_word_embeddings || strcmp(t->name, "lm_head.weight") != 0) params += aw_st_numel(t);
    }
    char pbuf[32], cbuf[32];
    fmt_count(params, pbuf, sizeof pbuf);
    fmt_count(aw_config_param_count(&cfg), cbuf, sizeof cbuf);
    fprintf(out, "\nmodel: %s%s%s, %s, d=%d, layers=%d, heads=%d, ffn=%d, vocab=%d, positions=%d, kv_heads=%d, dtype %s\n",
            dir, cfg.name[0] ? " " : "", cfg.name, aw_arch_of(&cfg)->label, cfg.hidden_size,
            cfg.num_hidden_layers, cfg.num_attention_heads, cfg.ffn_dim, cfg.vocab_size, cfg.max_position_embeddings,
            cfg.num_key_value_heads, aw_dtype_name(cfg.torch_dtype));
    fprintf(out, "tensors: %zu in %zu file(s), %.1f MB\n", aw_mf_count(mf), aw_mf_shard_count(mf),
            aw_mf_total_bytes(mf) / 1e6);
    fprintf(out, "parameters: %s (%.1fM, a tied LM head counted once); config.json implies %s\n", pbuf,
            params / 1e6, cbuf);
    qc = quant_config(cfg_path, &root);
    if (qc) {
        /* a quantized checkpoint: its scheme, scales and the runtimes */
        fprintf(out, "scales: %llu values\n", (unsigned long long)scales);
        AW_CHECK(aw_config_check_supported(&cfg, cfg_path));
        /* the config's rules first: they stand even when a tensor below
         * does not match what the config says */
        runtime_rules(cfg_path, qc, out);
        AW_CHECK(inspect_quantized(&cfg, mf, qc, out));
        if (scan_values) {
            AW_CHECK(aw_checkpoint_scan_values(mf));
            fprintf(out, "values: all finite\n");
        }
        fprintf(out, "checkpoint: OK (quantized)\n");
        goto fail;
    }

    struct stat sb;
    if (stat(tok_path, &sb) == 0) {
        aw_tokens tk = {0};
        AW_CHECK(aw_tokens_read(tok_path, &tk));
        AW_GOTO_IF(tk.vocab_size > (uint32_t)cfg.vocab_size, AW_ERR_TOKENS,
                   "%s: vocabulary of %u tokens is larger than the model's %d", tok_path,
                   tk.vocab_size, cfg.vocab_size);
        fprintf(out, "calibration.tokens: %llu sequences x %u tokens\n", (unsigned long long)tk.n_seq,
                tk.seq_len);
        aw_tokens_free(&tk);
    }
    AW_CHECK(aw_config_check_supported(&cfg, cfg_path));
    AW_CHECK(aw_checkpoint_check(&cfg, mf));
    if (scan_values) {
        AW_CHECK(aw_checkpoint_scan_values(mf));
        fprintf(out, "values: all finite\n");
    }
    fprintf(out, "checkpoint: OK\n");
fail:
    json_decref(root);
    aw_mf_close(mf);
    free(cfg_path);
    free(tok_path);
    return st;
}
