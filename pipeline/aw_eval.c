/* aw_eval.c - evaluator of a written W8A8 checkpoint (see aw_eval.h). */
#include "aw_eval.h"

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_forward.h"
#include "aw_fs.h"
#include "aw_kernels.h"
#include "aw_run.h"
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

aw_status aw_qblock_load(const aw_opt_config *c, const aw_model_files *mf, int layer, aw_qblock *q)
{
    char name[160], base[128];
    for (int l = 0; l < AW_LIN_COUNT; l++) {
        aw_qlinear *ql = &q->lin[l];
        /* "<module>" of "<module>.weight" */
        int n = aw_block_tensor_name(layer, aw_linear_weight_tensor[l], base, sizeof base);
        AW_RETURN_IF(n < 0, AW_ERR_ARG, "layer %d: tensor name too long", layer);
        base[n - (int)strlen(".weight")] = '\0';
        snprintf(name, sizeof name, "%s.weight", base);
        AW_TRY(load_weight(mf, name, ql));
        snprintf(name, sizeof name, "%s.weight_scale", base);
        AW_TRY(load_scale(mf, name, &ql->w_step));
        snprintf(name, sizeof name, "%s.input_scale", base);
        AW_TRY(load_scale(mf, name, &ql->x_step));
        aw_block_tensor_name(layer, aw_linear_bias_tensor[l], name, sizeof name);
        AW_TRY(load_vec(mf, name, ql->bias, ql->out));
        /* no uncorrected bias is known from a checkpoint; the forward uses bias */
        memcpy(ql->bias_plain, ql->bias, (size_t)ql->out * sizeof(float));
    }
    const struct {
        aw_block_tensor t;
        float *dst;
    } lns[4] = {{AW_BT_LN1_W, q->ln1_g}, {AW_BT_LN1_B, q->ln1_b}, {AW_BT_LN2_W, q->ln2_g}, {AW_BT_LN2_B, q->ln2_b}};
    for (int i = 0; i < 4; i++) {
        aw_block_tensor_name(layer, lns[i].t, name, sizeof name);
        AW_TRY(load_vec(mf, name, lns[i].dst, c->hidden_size));
    }
    /* equalization is folded into LayerNorms and weights of the checkpoint:
     * factors of 1 say the stored coordinates are the model's own */
    int tap_in[AW_TAP_COUNT] = {c->hidden_size, c->hidden_size, c->hidden_size, c->ffn_dim};
    for (int t = 0; t < AW_TAP_COUNT; t++)
        for (int j = 0; j < tap_in[t]; j++) q->s[t][j] = 1.0f;
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
    aw_opt_config cfg;
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
static void accum_nll(const aw_opt_config *c, const aw_model_ends *e, const float *h,
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
    const aw_opt_config *c = &s.cfg;
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
            "Usage: aweq-dist eval --model DIR --tokens FILE [--holdout H] [--batch N] [--quiet]\n"
            "  Perplexity of a W8A8 compressed-tensors checkpoint (int-quantized, static\n"
            "  per-tensor INT8 weights and activations) read from DIR alone: config.json and\n"
            "  the safetensors, nothing the quantizer left beside them.\n"
            "  --model DIR     the quantized checkpoint folder\n"
            "  --tokens FILE   token file (e.g. the model's calibration.tokens)\n"
            "  --holdout H     evaluate the last round(H x sequences), as the quantizer holds\n"
            "                  them out; 0 (default) evaluates every sequence\n"
            "  --batch N       sequences per block of samples (default 8; use the quantizer's\n"
            "                  value to reproduce its number exactly)\n"
            "  --quiet         no progress lines\n");
}

int aw_cmd_eval(int argc, char **argv)
{
    enum { O_MODEL = 1000, O_TOKENS, O_HOLDOUT, O_BATCH, O_QUIET };
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL},     {"tokens", required_argument, 0, O_TOKENS},
        {"holdout", required_argument, 0, O_HOLDOUT}, {"batch", required_argument, 0, O_BATCH},
        {"quiet", no_argument, 0, O_QUIET},           {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *model = NULL, *tokens = NULL;
    double holdout = 0.0;
    int batch = 8, quiet = 0, c;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_MODEL: model = optarg; break;
        case O_TOKENS: tokens = optarg; break;
        case O_HOLDOUT:
            holdout = strtod(optarg, &end);
            if (*end || end == optarg || !(holdout >= 0.0 && holdout < 1.0))
                return usage_error("--holdout '%s': expected a share in [0, 1)", optarg);
            break;
        case O_BATCH: {
            long v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > 4096)
                return usage_error("--batch '%s': expected 1..4096", optarg);
            batch = (int)v;
            break;
        }
        case O_QUIET: quiet = 1; break;
        case 'h': print_help(stdout); return 0;
        default: return usage_error("%s", "bad option");
        }
    }
    if (optind < argc) return usage_error("unexpected argument '%s'", argv[optind]);
    if (!model) return usage_error("%s", "--model DIR is required");
    if (!tokens) return usage_error("%s", "--tokens FILE is required");

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
