/* aw_eval.c - evaluator of a written W8A8 checkpoint (see aw_eval.h). */
#include "aw_eval.h"

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aw_forward.h"
#include "aw_fs.h"
#include "aw_kernels.h"
#include "aw_run.h"
#include "aw_backend.h"
#include "aw_cuda_api.h"
#include "aw_textdata.h"
#include "aw_tokens.h"

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

#define AW_QCFG_MAX_BYTES (16u << 20)

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

/* ---- evaluation ---------------------------------------------------------- */

typedef struct {
    aw_model_config cfg;
    aw_model_files *mf;
    aw_model_ends ends;
    aw_tokens tok;
    int n_layers; /* qblocks created */
    aw_qblock *q;
    aw_fwd_ws ws;
    float *h, *lx, *logits;
} eval_state;

static void eval_free(eval_state *s)
{
    for (int l = 0; l < s->n_layers; l++) aw_qblock_destroy(&s->q[l]);
    free(s->q);
    aw_fwd_ws_destroy(&s->ws);
    aw_ends_destroy(&s->ends);
    aw_tokens_free(&s->tok);
    aw_mf_close(s->mf);
    free(s->h);
    free(s->lx);
    free(s->logits);
    memset(s, 0, sizeof *s);
}

static void progress(int quiet, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(int quiet, const char *fmt, ...)
{
    if (quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("aweq-dist: eval: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* nll += -log p(tokens[t+1]) of the n_seq*L rows of h (T, d), in row chunks
 * and row order as aw_e2e_accum sums its W8A8 side. */
static void accum_nll(const aw_model_config *c, const aw_model_ends *e, const float *h,
                      const uint32_t *tokens, int n_seq, int L, float *x, float *logits, int chunk,
                      double *nll, uint64_t *n_pred)
{
    int T = n_seq * L, d = c->hidden_size, V = c->vocab_size;
    for (int t0 = 0; t0 < T; t0 += chunk) {
        int n = T - t0 < chunk ? T - t0 : chunk;
        aw_model_logits(c, e, h + (size_t)t0 * d, x, logits, n);
        for (int r = 0; r < n; r++) {
            int t = t0 + r;
            if (t % L == L - 1) continue; /* the last position predicts nothing we hold */
            *nll -= aw_k_logprob_row(logits + (size_t)r * V, NULL, V, tokens[t + 1], NULL, NULL);
            (*n_pred)++;
        }
    }
}

aw_status aw_eval(const char *model_dir, const char *tokens_path, double holdout, int batch,
                  int quiet, aw_eval_result *r)
{
    AW_RETURN_IF(!model_dir || !tokens_path || !r, AW_ERR_ARG, "aw_eval: NULL argument");
    memset(r, 0, sizeof *r);
    AW_RETURN_IF(!(holdout >= 0.0 && holdout < 1.0), AW_ERR_ARG,
                 "--holdout %g: expected a share in [0, 1)", holdout);
    AW_RETURN_IF(batch < 1, AW_ERR_ARG, "--batch %d: expected at least 1", batch);
    eval_state s;
    memset(&s, 0, sizeof s);
    aw_status st = AW_OK;
    double t_start = aw_now();
    char *cfg_path = aw_path_join(model_dir, "config.json");
    AW_GOTO_IF(!cfg_path, AW_ERR_NOMEM, "out of memory");
    AW_CHECK(aw_config_read(cfg_path, &s.cfg));
    AW_CHECK(aw_config_check_supported(&s.cfg, cfg_path));
    AW_CHECK(aw_check_quant_config(cfg_path));
    const aw_model_config *c = &s.cfg;
    AW_CHECK(aw_mf_open(model_dir, &s.mf));
    AW_CHECK(aw_ends_load(c, s.mf, &s.ends));
    s.q = calloc((size_t)c->num_hidden_layers, sizeof *s.q);
    AW_GOTO_IF(!s.q, AW_ERR_NOMEM, "out of memory");
    for (int l = 0; l < c->num_hidden_layers; l++) {
        AW_CHECK(aw_qblock_create(c, &s.q[l]));
        s.n_layers = l + 1;
        AW_CHECK(aw_qblock_load(c, s.mf, l, &s.q[l]));
    }

    AW_CHECK(aw_tokens_read(tokens_path, &s.tok));
    AW_GOTO_IF(s.tok.vocab_size > (uint32_t)c->vocab_size, AW_ERR_TOKENS,
               "%s: token vocabulary of %u is larger than the model's %d", tokens_path,
               s.tok.vocab_size, c->vocab_size);
    AW_GOTO_IF(s.tok.seq_len > (uint32_t)c->max_position_embeddings, AW_ERR_TOKENS,
               "%s: sequences of %u tokens are longer than the model's %d positions", tokens_path,
               s.tok.seq_len, c->max_position_embeddings);
    AW_GOTO_IF(s.tok.seq_len < 2, AW_ERR_TOKENS,
               "%s: sequences of %u token predict nothing; perplexity needs at least 2", tokens_path,
               s.tok.seq_len);
    AW_GOTO_IF(s.tok.n_seq == 0 || s.tok.n_seq > UINT32_MAX, AW_ERR_TOKENS,
               "%s: %llu sequences: expected 1 to %u", tokens_path,
               (unsigned long long)s.tok.n_seq, UINT32_MAX);

    /* the pipeline's split: the last llround(holdout * n) sequences, at least one */
    uint64_t n_eval = s.tok.n_seq;
    if (holdout > 0) {
        n_eval = (uint64_t)llround(holdout * (double)s.tok.n_seq);
        if (n_eval == 0) n_eval = 1;
    }
    uint32_t n_seq = (uint32_t)n_eval, first = (uint32_t)(s.tok.n_seq - n_eval);
    int L = (int)s.tok.seq_len, d = c->hidden_size, B = batch;
    int B_alloc = (uint32_t)B < n_seq ? B : (int)n_seq; /* no scratch beyond what is evaluated */
    AW_GOTO_IF((uint64_t)B_alloc * (uint64_t)L > (uint64_t)INT32_MAX, AW_ERR_ARG,
               "--batch %d: %d sequences of %d tokens are too many for one block", B, B_alloc, L);
    r->n_seq = n_seq;
    r->first_seq = first;
    r->seq_len = (uint32_t)L;
    progress(quiet, "model %s: OPT d=%d layers=%d, W8A8; %u sequences of %d tokens (%u..%u of %s)",
             model_dir, d, c->num_hidden_layers, n_seq, L, first, first + n_seq - 1, tokens_path);

    size_t maxT = (size_t)B_alloc * (size_t)L;
    AW_CHECK(aw_fwd_ws_create(c, B_alloc, L, &s.ws));
    s.h = malloc(maxT * (size_t)d * sizeof(float));
    s.lx = malloc((size_t)AW_EVAL_LOGIT_CHUNK * (size_t)d * sizeof(float));
    s.logits = malloc((size_t)AW_EVAL_LOGIT_CHUNK * (size_t)c->vocab_size * sizeof(float));
    AW_GOTO_IF(!s.h || !s.lx || !s.logits, AW_ERR_NOMEM,
               "out of memory for hidden states of %zu tokens and logits", maxT);

    /* blocks of samples in order, as aw_run() validates: the same sums in
     * the same order give the same perplexity */
    int n_batches = (int)((n_seq + (uint32_t)B - 1) / (uint32_t)B);
    for (int bi = 0; bi < n_batches; bi++) {
        uint32_t done = (uint32_t)bi * (uint32_t)B;
        int ns = (int)(n_seq - done < (uint32_t)B ? n_seq - done : (uint32_t)B);
        const uint32_t *tok = s.tok.ids + ((size_t)first + done) * (size_t)L;
        aw_model_embed(c, &s.ends, tok, ns, L, s.h);
        for (int l = 0; l < s.n_layers; l++)
            aw_block_forward(c, NULL, &s.q[l], s.h, ns, L, &s.ws, NULL, NULL);
        /* a block's sum from zero, then added to the total in block order:
         * the pipeline's per-block parts (aw_e2e_add), whatever its rank count */
        double part = 0.0;
        accum_nll(c, &s.ends, s.h, tok, ns, L, s.lx, s.logits, AW_EVAL_LOGIT_CHUNK, &part, &r->n_pred);
        r->nll += part;
        AW_GOTO_IF(!isfinite(r->nll), AW_ERR_NONFINITE,
                   "%s: the log-likelihood is not finite after block %d of samples (sequences %u..%u)",
                   model_dir, bi + 1, first + done, first + done + (uint32_t)ns - 1);
        progress(quiet, "block %d/%d of samples", bi + 1, n_batches);
    }
    r->ppl = exp(r->nll / (double)r->n_pred);
    r->seconds = aw_now() - t_start;
fail:
    free(cfg_path);
    eval_free(&s);
    return st;
}


/* ---- the WikiText-2 protocol on text (eval --text) ------------------------ */

/* 1 if config.json at path has a quantization_config (checked in full by
 * aw_check_quant_config), 0 if not. */
static aw_status config_is_quantized(const char *path, int *yes)
{
    char *text = NULL;
    size_t len = 0;
    AW_TRY(aw_read_file(path, AW_QCFG_MAX_BYTES, &text, &len));
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    AW_RETURN_IF(!root, AW_ERR_CONFIG, "%s: invalid JSON at line %d column %d: %s", path, jerr.line,
                 jerr.column, jerr.text);
    json_t *qc = json_is_object(root) ? json_object_get(root, "quantization_config") : NULL;
    *yes = qc && !json_is_null(qc);
    json_decref(root);
    return AW_OK;
}

typedef struct {
    aw_model_config cfg;
    int quantized;
    aw_model_files *mf;
    aw_model_ends ends, dends;
    int ends_dev;
    aw_block *fp, *dfp;  /* fp checkpoint: host blocks and their backend copies */
    aw_qblock *q, *dq;   /* W8A8 checkpoint */
    int n_host, n_dev;   /* blocks created, uploaded */
    const aw_ops *ops;
    aw_ops *ops_owned;
    const aw_cuda_api *cuda;
    aw_fwd_ws ws;
    float *h, *x, *logits;      /* host */
    float *dh, *dx, *dlogits;   /* their mirrors in the backend's memory */
    uint32_t *dtok;
    uint32_t *ids;              /* the text's tokens (every rank) */
    size_t n_ids;
    double *nll;                /* per window */
} text_state;

static void text_free(text_state *s)
{
    const aw_ops *o = s->ops;
    if (o) {
        for (int l = 0; l < s->n_dev; l++) {
            if (s->quantized) aw_qblock_dev_free(o, &s->dq[l], &s->q[l]);
            else aw_block_dev_free(o, &s->dfp[l], &s->fp[l]);
        }
        if (s->ends_dev) aw_ends_dev_free(o, &s->dends, &s->ends);
        aw_ops_mirror_free(o, s->dh, s->h);
        aw_ops_mirror_free(o, s->dx, s->x);
        aw_ops_mirror_free(o, s->dlogits, s->logits);
        if (s->dtok) o->vt->release(o, s->dtok);
        aw_fwd_ws_destroy(&s->ws);
    }
    for (int l = 0; l < s->n_host; l++) {
        if (s->quantized) aw_qblock_destroy(&s->q[l]);
        else aw_block_destroy(&s->fp[l]);
    }
    free(s->q);
    free(s->dq);
    free(s->fp);
    free(s->dfp);
    aw_ends_destroy(&s->ends);
    aw_mf_close(s->mf);
    if (s->cuda && s->ops_owned) s->cuda->ops_destroy(s->ops_owned);
    free(s->h);
    free(s->x);
    free(s->logits);
    free(s->ids);
    free(s->nll);
    memset(s, 0, sizeof *s);
}

/* Rank 0: the text's token stream (the protocol of aw_textdata.h). */
static aw_status text_tokens(const aw_eval_text_opts *o, uint32_t **ids, size_t *n, uint32_t *vocab)
{
    aw_tokenizer *tk = NULL;
    aw_idvec v = {0};
    AW_TRY(aw_tokenizer_open(o->model_dir, &tk));
    progress(o->quiet, "tokenizer: %s", aw_tokenizer_describe(tk));
    aw_status st = aw_eval_text_stream(tk, o->text_path, o->text_field, &v);
    *vocab = aw_tokenizer_vocab_size(tk);
    aw_tokenizer_close(tk);
    if (st != AW_OK) {
        aw_idvec_free(&v);
        return st;
    }
    *ids = v.v;
    *n = v.n;
    return AW_OK;
}

/* This rank's kernels (as a run picks them). */
static aw_status text_backend(const aw_eval_text_opts *o, text_state *s, aw_eval_text_result *r)
{
    aw_backend_info info;
    AW_TRY(aw_backend_select(o->staged ? AW_BACKEND_CPU : o->backend_want, aw_local_rank_from_env(), &info));
    if (o->staged) {
        s->ops = aw_ops_cpu_staged();
    } else if (info.kind == AW_BACKEND_CUDA) {
        s->cuda = aw_cuda_api_get(NULL);
        AW_RETURN_IF(!s->cuda, AW_ERR_NO_DEVICE, "the CUDA plugin could not be loaded");
        AW_TRY(s->cuda->ops_create(&s->ops_owned));
        s->ops = s->ops_owned;
    } else {
        s->ops = aw_ops_cpu();
    }
    if (info.kind == AW_BACKEND_CUDA)
        snprintf(r->backend, sizeof r->backend, "cuda device %d: %.120s", info.device, info.device_name);
    else
        snprintf(r->backend, sizeof r->backend, "%.16s: %.120s", s->ops->name, info.device_name);
    return AW_OK;
}

/* Every rank: the whole model in the backend's memory, and the scratch of
 * one window. */
static aw_status text_load(const aw_eval_text_opts *o, text_state *s)
{
    const aw_model_config *c = &s->cfg;
    const aw_ops *ops = s->ops;
    int nl = c->num_hidden_layers, L = o->seq_len, d = c->hidden_size, V = c->vocab_size;
    AW_TRY(aw_mf_open(o->model_dir, &s->mf));
    AW_TRY(aw_ends_load(c, s->mf, &s->ends));
    AW_TRY(aw_ends_to_dev(ops, c, &s->ends, &s->dends));
    s->ends_dev = 1;
    if (s->quantized) {
        s->q = calloc((size_t)nl, sizeof *s->q);
        s->dq = calloc((size_t)nl, sizeof *s->dq);
        AW_RETURN_IF(!s->q || !s->dq, AW_ERR_NOMEM, "out of memory");
    } else {
        s->fp = calloc((size_t)nl, sizeof *s->fp);
        s->dfp = calloc((size_t)nl, sizeof *s->dfp);
        AW_RETURN_IF(!s->fp || !s->dfp, AW_ERR_NOMEM, "out of memory");
    }
    for (int l = 0; l < nl; l++) {
        if (s->quantized) {
            AW_TRY(aw_qblock_create(c, &s->q[l]));
            s->n_host = l + 1;
            AW_TRY(aw_qblock_load(c, s->mf, l, &s->q[l]));
            AW_TRY(aw_qblock_to_dev(ops, c, &s->q[l], &s->dq[l]));
        } else {
            AW_TRY(aw_block_create(c, c->torch_dtype, &s->fp[l]));
            s->n_host = l + 1;
            AW_TRY(aw_block_load(c, s->mf, l, &s->fp[l]));
            AW_TRY(aw_block_to_dev(ops, c, &s->fp[l], &s->dfp[l]));
        }
        s->n_dev = l + 1;
    }
    AW_TRY(aw_fwd_ws_create_ops(ops, c, 1, L, &s->ws));
    size_t hb = (size_t)L * d * sizeof(float), xb = (size_t)AW_EVAL_LOGIT_CHUNK * d * sizeof(float);
    size_t lb = (size_t)AW_EVAL_LOGIT_CHUNK * V * sizeof(float);
    s->h = malloc(hb);
    s->x = malloc(xb);
    s->logits = malloc(lb);
    AW_RETURN_IF(!s->h || !s->x || !s->logits, AW_ERR_NOMEM, "out of memory for a window of %d tokens", L);
    AW_TRY(aw_ops_mirror(ops, (void **)&s->dh, s->h, hb, "hidden states"));
    AW_TRY(aw_ops_mirror(ops, (void **)&s->dx, s->x, xb, "logits"));
    AW_TRY(aw_ops_mirror(ops, (void **)&s->dlogits, s->logits, lb, "logits"));
    if (!ops->host) AW_TRY(ops->vt->alloc(ops, (void **)&s->dtok, (size_t)L * sizeof(uint32_t), "tokens"));
    return AW_OK;
}

/* -log p of the L - 1 next tokens of one window, summed in position order. */
static aw_status text_window(const aw_eval_text_opts *o, text_state *s, const uint32_t *tok, double *nll)
{
    const aw_model_config *c = &s->cfg;
    const aw_ops *ops = s->ops;
    int L = o->seq_len, d = c->hidden_size, V = c->vocab_size;
    const uint32_t *dtok = tok;
    if (s->dtok) {
        AW_TRY(ops->vt->to_dev(ops, s->dtok, tok, (size_t)L * sizeof(uint32_t)));
        dtok = s->dtok;
    }
    AW_TRY(aw_model_embed_ops(ops, c, &s->dends, dtok, 1, L, s->dh));
    for (int l = 0; l < c->num_hidden_layers; l++)
        AW_TRY(aw_block_forward(c, s->quantized ? NULL : &s->dfp[l], s->quantized ? &s->dq[l] : NULL, s->dh, 1,
                                L, &s->ws, NULL, NULL));
    double part = 0.0;
    for (int t0 = 0; t0 < L; t0 += AW_EVAL_LOGIT_CHUNK) {
        int n = L - t0 < AW_EVAL_LOGIT_CHUNK ? L - t0 : AW_EVAL_LOGIT_CHUNK;
        AW_TRY(aw_model_logits_ops(ops, c, &s->dends, s->dh + (size_t)t0 * d, s->dx, s->dlogits, n));
        if (!ops->host) AW_TRY(ops->vt->to_host(ops, s->logits, s->dlogits, (size_t)n * V * sizeof(float)));
        for (int r = 0; r < n; r++) {
            int t = t0 + r;
            if (t == L - 1) continue; /* the last position predicts nothing we hold */
            part -= aw_k_logprob_row(s->logits + (size_t)r * V, NULL, V, tok[t + 1], NULL, NULL);
        }
    }
    *nll = part;
    return AW_OK;
}

aw_status aw_eval_text(const aw_eval_text_opts *o, const aw_comm *w, aw_eval_text_result *r)
{
    AW_RETURN_IF(!o || !o->model_dir || !o->text_path || !w || !r, AW_ERR_ARG, "aw_eval_text: NULL argument");
    memset(r, 0, sizeof *r);
    AW_RETURN_IF(o->seq_len < 2, AW_ERR_ARG, "--seq-len %d: a window needs at least 2 tokens", o->seq_len);
    text_state s;
    memset(&s, 0, sizeof s);
    aw_status st = AW_OK;
    double t_start = aw_now();
    aw_set_blas_threads(aw_node_ranks(w));
    char *cfg_path = aw_path_join(o->model_dir, "config.json");
    AW_GOTO_IF(!cfg_path, AW_ERR_NOMEM, "out of memory");
    st = aw_config_read(cfg_path, &s.cfg);
    if (st == AW_OK) st = aw_config_check_supported(&s.cfg, cfg_path);
    if (st == AW_OK) st = config_is_quantized(cfg_path, &s.quantized);
    if (st == AW_OK && s.quantized) st = aw_check_quant_config(cfg_path);
    if (st == AW_OK && o->seq_len > s.cfg.max_position_embeddings)
        st = AW_FAIL(AW_ERR_ARG, "--seq-len %d: longer than the %d positions of %s", o->seq_len,
                     s.cfg.max_position_embeddings, cfg_path);
    AW_CHECK(aw_comm_agree(w, st));
    r->quantized = s.quantized;
    r->seq_len = (uint32_t)o->seq_len;

    /* rank 0 tokenizes, everyone gets the ids */
    void *buf = NULL;
    size_t len = 0;
    if (w->rank == 0) {
        uint32_t vocab = 0;
        st = text_tokens(o, &s.ids, &s.n_ids, &vocab);
        /* a tokenizer may know more ids than the model has rows (an added
         * <pad>): only the ids of this text must fit */
        for (size_t i = 0; st == AW_OK && vocab > (uint32_t)s.cfg.vocab_size && i < s.n_ids; i++)
            if (s.ids[i] >= (uint32_t)s.cfg.vocab_size)
                st = AW_FAIL(AW_ERR_TOKENS,
                             "%s: token %zu of %s is id %u from the folder's tokenizer, outside the %d rows of "
                             "config.json's vocabulary",
                             o->model_dir, i, o->text_path, s.ids[i], s.cfg.vocab_size);
        if (st == AW_OK && s.n_ids < (size_t)o->seq_len)
            st = AW_FAIL(AW_ERR_CORPUS, "%s: %zu tokens are fewer than one window of %d (--seq-len)",
                         o->text_path, s.n_ids, o->seq_len);
        buf = s.ids;
        len = s.n_ids * sizeof(uint32_t);
    }
    AW_CHECK(aw_comm_bcast_bytes(w, 0, st, &buf, &len));
    if (w->rank != 0) {
        s.ids = buf;
        s.n_ids = len / sizeof(uint32_t);
    }
    r->text_tokens = s.n_ids;
    uint64_t n = s.n_ids / (size_t)o->seq_len;
    if (o->max_windows > 0 && n > (uint64_t)o->max_windows) n = (uint64_t)o->max_windows;
    AW_GOTO_IF(n > INT32_MAX, AW_ERR_ARG, "%llu windows are too many", (unsigned long long)n);
    r->n_windows = (uint32_t)n;
    progress(o->quiet || w->rank != 0, "%s: %zu tokens, %u windows of %d; %s model %s (OPT d=%d layers=%d) on %d rank(s)",
             o->text_path, s.n_ids, r->n_windows, o->seq_len, s.quantized ? "W8A8" : "fp", o->model_dir,
             s.cfg.hidden_size, s.cfg.num_hidden_layers, w->size);

    st = text_backend(o, &s, r);
    if (st == AW_OK) st = text_load(o, &s);
    if (st == AW_OK) {
        s.nll = calloc(n ? n : 1, sizeof(double));
        if (!s.nll) st = AW_FAIL(AW_ERR_NOMEM, "out of memory");
    }
    AW_CHECK(aw_comm_agree(w, st));

    /* windows round robin over the ranks; no collective inside the loop */
    double t_loop = aw_now(), t_said = t_loop;
    uint64_t mine = 0, n_mine = n > (uint64_t)w->rank ? (n - (uint64_t)w->rank + (uint64_t)w->size - 1) / (uint64_t)w->size : 0;
    for (uint64_t k = (uint64_t)w->rank; k < n && st == AW_OK; k += (uint64_t)w->size) {
        st = text_window(o, &s, s.ids + k * (size_t)o->seq_len, &s.nll[k]);
        if (st == AW_OK && !isfinite(s.nll[k]))
            st = AW_FAIL(AW_ERR_NONFINITE, "%s: window %llu (tokens %llu..%llu of %s): the log-likelihood is not finite",
                         o->model_dir, (unsigned long long)k, (unsigned long long)(k * (uint64_t)o->seq_len),
                         (unsigned long long)((k + 1) * (uint64_t)o->seq_len - 1), o->text_path);
        mine++;
        double now = aw_now();
        if (w->rank == 0 && !o->quiet && (now - t_said >= 10.0 || mine == n_mine)) {
            double rate = (double)mine * o->seq_len / (now - t_loop);
            fprintf(stderr, "aweq-dist: eval: window %llu/%llu on rank 0, %.0f tokens/s, about %.0f s left\n",
                    (unsigned long long)mine, (unsigned long long)n_mine, rate,
                    (double)(n_mine - mine) * o->seq_len / (rate > 0 ? rate : 1));
            t_said = now;
        }
    }
    AW_CHECK(aw_comm_agree(w, st));
    /* each window's sum comes from one rank, zeros from the others: exact */
    if (n > 0) AW_CHECK(AW_MPI(MPI_Allreduce(MPI_IN_PLACE, s.nll, (int)n, MPI_DOUBLE, MPI_SUM, w->world)));
    for (uint64_t k = 0; k < n; k++) r->nll += s.nll[k];
    r->n_pred = n * (uint64_t)(o->seq_len - 1);
    r->ppl = r->n_pred ? exp(r->nll / (double)r->n_pred) : NAN;
    r->seconds = aw_now() - t_start;
fail:
    free(cfg_path);
    text_free(&s);
    return st;
}

/* ---- the command ---------------------------------------------------------- */

static void print_error(aw_status st) { aw_print_error(st, 0, 1); }

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "aweq-dist: eval: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'aweq-dist eval --help'.\n");
    return 2;
}

static void print_help(FILE *out)
{
    fprintf(out,
            "Usage: aweq-dist eval --model DIR --text FILE [--seq-len L] [options]\n"
            "       aweq-dist eval --model DIR --tokens FILE [--holdout H] [--batch N] [--quiet]\n"
            "  With --text: perplexity the WikiText-2 way, of an fp checkpoint or a W8A8\n"
            "  compressed-tensors one: the text's rows (a .txt cut after every newline, the\n"
            "  documents of a .jsonl) joined with \"\\n\\n\", tokenized once with DIR's tokenizer\n"
            "  (BOS in front), cut into tokens / L windows of L tokens; exp of the mean\n"
            "  -log p over every window's L - 1 predicted tokens. Under mpirun/srun each rank\n"
            "  holds the whole model and the windows are dealt over the ranks; the result\n"
            "  does not depend on the rank count.\n"
            "  --model DIR       the checkpoint folder (config.json, safetensors, tokenizer)\n"
            "  --text FILE       .txt or .jsonl, optionally .zst (e.g. wiki.test.raw)\n"
            "  --seq-len L       window length (default 2048)\n"
            "  --text-field NAME the jsonl member holding the text (default \"text\")\n"
            "  --max-windows K   only the first K windows (a quick look)\n"
            "  --backend B       auto (default), cpu, cuda or cpu-staged\n"
            "  With --tokens: perplexity of a W8A8 checkpoint (int-quantized, static\n"
            "  per-tensor INT8 weights and activations) on a token file, read from DIR alone.\n"
            "  --tokens FILE     token file (e.g. the model's calibration.tokens)\n"
            "  --holdout H       evaluate the last round(H x sequences), as the quantizer holds\n"
            "                    them out; 0 (default) evaluates every sequence\n"
            "  --batch N         sequences per block of samples (default 8; use the quantizer's\n"
            "                    value to reproduce its number exactly)\n"
            "  --quiet           no progress lines\n");
}

/* eval --text: collective over the process's world; only rank 0 prints. */
static int run_text(const aw_eval_text_opts *o)
{
    const aw_comm *w = aw_comm_world();
    if (!w) {
        print_error(AW_ERR_MPI);
        return 1;
    }
    aw_eval_text_result r;
    aw_status st = aw_eval_text(o, w, &r);
    if (st == AW_OK) {
        if (w->rank == 0) {
            printf("eval: %s: %s wikitext2 ppl %.6f on %u windows x %u tokens (%llu predicted tokens; %llu tokens "
                   "in %s)\n",
                   o->model_dir, r.quantized ? "W8A8" : "fp", r.ppl, r.n_windows, r.seq_len,
                   (unsigned long long)r.n_pred, (unsigned long long)r.text_tokens, o->text_path);
            progress(o->quiet, "%.2f s on %d rank(s); rank 0: %s", r.seconds, w->size, r.backend);
            fflush(stdout);
        }
        return 0;
    }
    /* as the quantization run: a failure every rank learned in a collective
     * step is printed once, by the rank that had it */
    if (st == AW_ERR_REMOTE) {
        fflush(stderr);
        if (w->size > 1) _exit(1);
        return 1;
    }
    aw_print_error(st, w->rank, w->size);
    if (w->size > 1) MPI_Abort(w->world, 1);
    return 1;
}

int aw_cmd_eval(int argc, char **argv)
{
    enum { O_MODEL = 1000, O_TOKENS, O_HOLDOUT, O_BATCH, O_QUIET, O_TEXT, O_SEQLEN, O_FIELD, O_MAXW, O_BACKEND };
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL},     {"tokens", required_argument, 0, O_TOKENS},
        {"holdout", required_argument, 0, O_HOLDOUT}, {"batch", required_argument, 0, O_BATCH},
        {"quiet", no_argument, 0, O_QUIET},           {"text", required_argument, 0, O_TEXT},
        {"seq-len", required_argument, 0, O_SEQLEN},  {"text-field", required_argument, 0, O_FIELD},
        {"max-windows", required_argument, 0, O_MAXW}, {"backend", required_argument, 0, O_BACKEND},
        {"help", no_argument, 0, 'h'},                {0, 0, 0, 0}};
    const char *model = NULL, *tokens = NULL;
    double holdout = 0.0;
    int batch = 8, quiet = 0, c, holdout_set = 0, batch_set = 0, text_only = 0;
    aw_eval_text_opts to = {.seq_len = 2048, .backend_want = -1};
    char *end;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_MODEL: model = optarg; break;
        case O_TOKENS: tokens = optarg; break;
        case O_TEXT: to.text_path = optarg; break;
        case O_FIELD: to.text_field = optarg, text_only = 1; break;
        case O_HOLDOUT:
            holdout = strtod(optarg, &end);
            if (*end || end == optarg || !(holdout >= 0.0 && holdout < 1.0))
                return usage_error("--holdout '%s': expected a share in [0, 1)", optarg);
            holdout_set = 1;
            break;
        case O_BATCH:
            v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > 4096)
                return usage_error("--batch '%s': expected 1..4096", optarg);
            batch = (int)v;
            batch_set = 1;
            break;
        case O_SEQLEN:
            v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 2 || v > (1 << 20))
                return usage_error("--seq-len '%s': expected 2..1048576", optarg);
            to.seq_len = (int)v;
            text_only = 1;
            break;
        case O_MAXW:
            v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > INT32_MAX)
                return usage_error("--max-windows '%s': expected a positive count", optarg);
            to.max_windows = (int)v;
            text_only = 1;
            break;
        case O_BACKEND:
            if (strcmp(optarg, "cpu-staged") == 0) {
                to.staged = 1;
            } else if (aw_backend_parse(optarg, &to.backend_want) != AW_OK) {
                return usage_error("--backend '%s': expected auto, cpu, cuda or cpu-staged", optarg);
            }
            text_only = 1;
            break;
        case O_QUIET: quiet = 1; break;
        case 'h': print_help(stdout); return 0;
        default: return usage_error("%s", "bad option");
        }
    }
    if (optind < argc) return usage_error("unexpected argument '%s'", argv[optind]);
    if (!model) return usage_error("%s", "--model DIR is required");
    if (!tokens == !to.text_path) return usage_error("%s", "give one of --text FILE or --tokens FILE");
    if (!to.text_path && text_only)
        return usage_error("%s", "--seq-len, --max-windows, --text-field and --backend go with --text");
    if (to.text_path) {
        if (holdout_set || batch_set) return usage_error("%s", "--holdout and --batch go with --tokens, not --text");
        to.model_dir = model;
        to.quiet = quiet;
        return run_text(&to);
    }

    aw_eval_result r;
    aw_status st = aw_eval(model, tokens, holdout, batch, quiet, &r);
    if (st != AW_OK) {
        print_error(st);
        return 1;
    }
    printf("eval: %s: W8A8 perplexity %.6f on %u sequences x %u tokens (%llu predicted tokens)\n",
           model, r.ppl, r.n_seq, r.seq_len, (unsigned long long)r.n_pred);
    progress(quiet, "%.2f s", r.seconds);
    fflush(stdout);
    return 0;
}
