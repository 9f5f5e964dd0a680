/* aw_synth.c - generated checkpoints of any family (see aw_synth.h). */
#include "aw_synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_arch.h"
#include "aw_fs.h"
#include "aw_model_files.h"
#include "aw_outdir.h"
#include "aw_rng.h"
#include "aw_safetensors.h"
#include "aw_tokens.h"

/* Outlier gains: LayerNorm gamma of an outlier channel is drawn from
 * [AW_OUTLIER_MIN, AW_OUTLIER_MAX] times the typical gamma of 1. */
#define AW_OUTLIER_MIN 20.0
#define AW_OUTLIER_MAX 100.0

void aw_synth_defaults(aw_synth_opts *o, const aw_model_config *shape)
{
    memset(o, 0, sizeof *o);
    o->cfg = *shape;
    o->cfg.torch_dtype = AW_DT_F16;
    o->seed = 1234;
    o->max_shard_bytes = 100ull * 1000 * 1000;
    o->calib_seqs = 80; /* 64 calibrate and 16 validate at the default --holdout 0.2 */
    o->calib_len = 128;
    if ((int)o->calib_len > shape->max_position_embeddings)
        o->calib_len = (uint32_t)shape->max_position_embeddings;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int aw_synth_outlier_channels(const aw_synth_opts *o, int *idx, int cap)
{
    int d = o->cfg.hidden_size;
    int n = o->n_outliers > 0 ? o->n_outliers : (d / 128 > 2 ? d / 128 : 2);
    if (n > d / 4) n = d / 4 > 0 ? d / 4 : 1;
    if (n > cap) n = cap;
    aw_rng r;
    aw_rng_seed(&r, o->seed, "outlier-channels");
    /* distinct channels by rejection: n is tiny next to d */
    for (int k = 0; k < n;) {
        int c = (int)aw_rng_below(&r, (uint64_t)d);
        int dup = 0;
        for (int j = 0; j < k; j++) dup |= idx[j] == c;
        if (!dup) idx[k++] = c;
    }
    qsort(idx, (size_t)n, sizeof *idx, cmp_int);
    return n;
}

/* Gain of an outlier channel, the same in every block (as in real OPT, where
 * the same few dimensions carry the outliers through the whole network). */
static double outlier_gain(const aw_synth_opts *o, int channel)
{
    char key[64];
    snprintf(key, sizeof key, "outlier-gain-%d", channel);
    aw_rng r;
    aw_rng_seed(&r, o->seed, key);
    return AW_OUTLIER_MIN + (AW_OUTLIER_MAX - AW_OUTLIER_MIN) * aw_rng_uniform(&r);
}

/* What a tensor is, for the generator. */
typedef struct {
    char name[96];
    int layer;              /* -1 for model-level tensors */
    aw_tensor_ref ref;      /* what it is in the family's descriptor */
    int ndim;
    int64_t shape[2];
    uint64_t numel;
    int shard;
} synth_tensor;

typedef struct {
    const aw_synth_opts *o;
    int outliers[256];
    double gains[256];
    int n_outliers;
} synth_ctx;

static int is_outlier(const synth_ctx *s, int channel, double *gain)
{
    for (int k = 0; k < s->n_outliers; k++) {
        if (s->outliers[k] == channel) {
            *gain = s->gains[k];
            return 1;
        }
    }
    return 0;
}

static void fill_normal(aw_rng *r, float *x, uint64_t n, double mean, double std)
{
    for (uint64_t i = 0; i < n; i++) x[i] = (float)(mean + std * aw_rng_normal(r));
}

/* Rows [out] x cols [in] weight: N(0, std^2); the columns of outlier input
 * channels shrink by 1/sqrt(gain) so that the layer's output stays balanced
 * between outlier and ordinary channels (the outliers still dominate the
 * activation range, which is what per-tensor INT8 suffers from). */
static void fill_linear(const synth_ctx *s, aw_rng *r, float *w, int64_t rows, int64_t cols,
                        double std, int shrink_outlier_cols)
{
    fill_normal(r, w, (uint64_t)(rows * cols), 0.0, std);
    if (!shrink_outlier_cols) return;
    for (int k = 0; k < s->n_outliers; k++) {
        int64_t j = s->outliers[k];
        float f = (float)(1.0 / sqrt(s->gains[k]));
        for (int64_t i = 0; i < rows; i++) w[i * cols + j] *= f;
    }
}

/* A few output rows of a row-fold producer (v_proj, fc1, up_proj) grow
 * 5-10x: milder outlier channels at the inputs of the output projection and
 * the MLP's last linear, different in each block. */
static void grow_some_rows(const synth_ctx *s, const synth_tensor *t, float *w, float *b)
{
    char key[128];
    snprintf(key, sizeof key, "%s:rows", t->name);
    aw_rng r;
    aw_rng_seed(&r, s->o->seed, key);
    int64_t rows = t->shape[0], cols = t->shape[1];
    for (int k = 0; k < s->n_outliers; k++) {
        int64_t i = (int64_t)aw_rng_below(&r, (uint64_t)rows);
        float f = (float)(5.0 + 5.0 * aw_rng_uniform(&r));
        for (int64_t j = 0; j < cols; j++) w[i * cols + j] *= f;
        if (b) b[i] *= f;
    }
}

/* Generate one tensor's values as f32 into x (numel floats). Weight and bias
 * of a layer are generated together (a bias follows its weight's row growth),
 * so a weight is generated into x and its bias into bias_out when asked. */
static int is_row_producer(const aw_arch *a, int l)
{
    for (int t = 0; t < AW_TAP_COUNT; t++)
        if (a->tap[t].fold == AW_FOLD_ROWS && a->tap[t].producer == l) return 1;
    return 0;
}

/* Weight scale of linear l: gain / sqrt(fan-in), with fan-in halved at the
 * MLP's last linear (half of a ReLU's inputs are zero). */
static double linear_std(const aw_arch *a, const aw_model_config *c, int l)
{
    const aw_arch_linear *ln = &a->lin[l];
    double in = aw_arch_dim(c, ln->in);
    if (ln->tap == AW_TAP_MLP_MID) return 0.5 / sqrt(in / 2.0);
    /* the output projection and the producers of the row folds are smaller */
    if (ln->tap == AW_TAP_ATTN_OUT || (is_row_producer(a, l) && ln->tap == AW_TAP_ATTN_IN)) return 0.5 / sqrt(in);
    return 1.0 / sqrt(in);
}

/* Generate one tensor's values as f32 into x (numel floats). A row-fold
 * producer's bias grows with its weight's rows (same row choice). */
static void gen_tensor(const synth_ctx *s, const synth_tensor *t, float *x)
{
    const aw_model_config *c = &s->o->cfg;
    const aw_arch *a = aw_arch_of(c);
    aw_rng r;
    aw_rng_seed(&r, s->o->seed, t->name);
    double d = c->hidden_size;
    double g;
    int l = t->ref.index;
    switch (t->ref.kind) {
    case AW_T_EMBED:
    case AW_T_HEAD: /* logits of a few units of spread */
        fill_normal(&r, x, t->numel, 0.0, 2.5 / sqrt(c->word_embed_proj_dim));
        return;
    case AW_T_POS: fill_normal(&r, x, t->numel, 0.0, 0.75 / sqrt(d)); return;
    case AW_T_FINAL_W: fill_normal(&r, x, t->numel, 1.0, 0.1); return;
    case AW_T_FINAL_B: fill_normal(&r, x, t->numel, 0.0, 0.02); return;
    case AW_T_NORM_W:
        fill_normal(&r, x, t->numel, 1.0, 0.1);
        for (uint64_t j = 0; j < t->numel; j++)
            if (is_outlier(s, (int)j, &g)) x[j] = (float)(g * (0.9 + 0.2 * aw_rng_uniform(&r)));
        return;
    case AW_T_NORM_B:
        /* outlier channels also carry a large mean: what bias correction is for */
        fill_normal(&r, x, t->numel, 0.0, 0.05);
        for (uint64_t j = 0; j < t->numel; j++)
            if (is_outlier(s, (int)j, &g)) x[j] = (float)(g * (0.2 + 0.3 * aw_rng_uniform(&r)));
        return;
    case AW_T_LIN_W:
        /* inputs straight from a norm carry its outlier channels */
        fill_linear(s, &r, x, t->shape[0], t->shape[1], linear_std(a, c, l),
                    a->tap[a->lin[l].tap].fold == AW_FOLD_NORM);
        if (is_row_producer(a, l)) grow_some_rows(s, t, x, NULL);
        return;
    case AW_T_LIN_B:
        fill_normal(&r, x, t->numel, 0.0, 0.05);
        if (is_row_producer(a, l)) {
            synth_tensor wt = *t;
            aw_arch_tensor_name(c, t->layer, (aw_tensor_ref){AW_T_LIN_W, l}, wt.name, sizeof wt.name);
            wt.shape[1] = 0;
            grow_some_rows(s, &wt, x, x);
        }
        return;
    }
}

/* The tensors of the model in checkpoint order, sizes filled in. */
static aw_status list_tensors(const aw_model_config *c, synth_tensor **out, size_t *n_out)
{
    const aw_arch *a = aw_arch_of(c);
    size_t n = (size_t)a->n_end_tensors + (size_t)c->num_hidden_layers * (size_t)a->n_block_tensors;
    synth_tensor *t = calloc(n, sizeof *t);
    AW_RETURN_IF(!t, AW_ERR_NOMEM, "synth: out of memory listing %zu tensors", n);
    size_t k = 0;
    for (int m = 0; m < a->n_end_tensors; m++) {
        aw_tensor_ref r = a->end_tensors[m];
        if (r.kind == AW_T_HEAD && c->tie_word_embeddings) continue;
        aw_arch_tensor_name(c, -1, r, t[k].name, sizeof t[k].name);
        t[k].layer = -1;
        t[k].ref = r;
        aw_arch_tensor_shape(c, r, &t[k].ndim, t[k].shape);
        k++;
    }
    for (int l = 0; l < c->num_hidden_layers; l++) {
        for (int b = 0; b < a->n_block_tensors; b++) {
            aw_tensor_ref r = a->block_tensors[b];
            if (r.kind == AW_T_LIN_B && !aw_arch_has_linear_bias(c, r.index)) continue;
            if (r.kind == AW_T_NORM_B && !aw_arch_has_norm_bias(c)) continue;
            aw_arch_tensor_name(c, l, r, t[k].name, sizeof t[k].name);
            t[k].layer = l;
            t[k].ref = r;
            aw_arch_tensor_shape(c, r, &t[k].ndim, t[k].shape);
            k++;
        }
    }
    n = k;
    for (size_t i = 0; i < n; i++)
        t[i].numel = (uint64_t)t[i].shape[0] * (uint64_t)(t[i].ndim == 2 ? t[i].shape[1] : 1);
    *out = t;
    *n_out = n;
    return AW_OK;
}

static aw_status write_tokens(const aw_synth_opts *o, const char *path)
{
    aw_tokens tk = {.vocab_size = (uint32_t)o->cfg.vocab_size,
                    .seq_len = o->calib_len,
                    .n_seq = o->calib_seqs};
    uint64_t n = (uint64_t)o->calib_seqs * o->calib_len;
    tk.ids = malloc(n * sizeof *tk.ids);
    AW_RETURN_IF(!tk.ids, AW_ERR_NOMEM, "synth: out of memory for %llu tokens", (unsigned long long)n);
    aw_rng r;
    aw_rng_seed(&r, o->seed, "calibration-tokens");
    double log_v = log((double)o->cfg.vocab_size);
    for (uint64_t s = 0; s < o->calib_seqs; s++) {
        uint32_t *row = tk.ids + s * o->calib_len;
        for (uint32_t i = 0; i < o->calib_len; i++) {
            if (i == 0) {
                /* a tokenizer's BOS starts every sequence (OPT's is </s>) */
                row[i] = (uint32_t)(o->cfg.bos_token_id < o->cfg.vocab_size ? o->cfg.bos_token_id : 0);
            } else if (i > 4 && aw_rng_uniform(&r) < 0.25) {
                /* repeat an earlier token: gives attention something to find */
                row[i] = row[1 + aw_rng_below(&r, i - 1)];
            } else {
                /* Zipf-like frequencies: log-uniform rank */
                uint64_t id = (uint64_t)exp(aw_rng_uniform(&r) * log_v) - 1;
                row[i] = (uint32_t)(id < (uint64_t)o->cfg.vocab_size ? id : 0);
            }
        }
    }
    aw_status st = aw_tokens_write(path, &tk);
    aw_tokens_free(&tk);
    return st;
}

aw_status aw_synth_write(const aw_synth_opts *o, const char *out_dir)
{
    aw_status st = AW_OK;
    const aw_model_config *c = &o->cfg;
    aw_dtype dt = c->torch_dtype;
    AW_RETURN_IF(dt != AW_DT_F16 && dt != AW_DT_F32 && dt != AW_DT_BF16, AW_ERR_ARG,
                 "synth: dtype %s: expected F16, BF16 or F32", aw_dtype_name(dt));
    AW_RETURN_IF(o->calib_seqs == 0 || o->calib_len == 0 ||
                     (int)o->calib_len > c->max_position_embeddings,
                 AW_ERR_ARG, "synth: calibration %u x %u tokens: length must be 1..%d",
                 o->calib_seqs, o->calib_len, c->max_position_embeddings);

    synth_ctx s = {.o = o};
    s.n_outliers = aw_synth_outlier_channels(o, s.outliers, 256);
    for (int k = 0; k < s.n_outliers; k++) s.gains[k] = outlier_gain(o, s.outliers[k]);

    synth_tensor *t = NULL;
    size_t nt = 0;
    char *path = NULL;
    aw_outdir od = {0};
    uint8_t *shard_buf = NULL;
    float *scratch = NULL;
    aw_st_entry *entries = NULL;
    const char **names = NULL, **shard_of = NULL;
    char (*shard_names)[64] = NULL;
    AW_CHECK(list_tensors(c, &t, &nt));

    /* shards: greedy by checkpoint order, a new shard when the limit would be passed */
    size_t esz = aw_dtype_size(dt);
    int n_shards = 0;
    uint64_t cur = 0, max_shard = 0, max_numel = 0, total = 0;
    for (size_t i = 0; i < nt; i++) {
        uint64_t b = t[i].numel * esz;
        if (n_shards == 0 || (cur > 0 && cur + b > o->max_shard_bytes)) {
            if (cur > max_shard) max_shard = cur;
            n_shards++;
            cur = 0;
        }
        t[i].shard = n_shards - 1;
        cur += b;
        total += b;
        if (t[i].numel > max_numel) max_numel = t[i].numel;
    }
    if (cur > max_shard) max_shard = cur;

    AW_CHECK(aw_outdir_begin(out_dir, &od));

    shard_names = calloc((size_t)n_shards, sizeof *shard_names);
    shard_buf = malloc(max_shard ? max_shard : 1);
    scratch = malloc(max_numel * sizeof(float));
    entries = calloc(nt, sizeof *entries);
    names = calloc(nt, sizeof *names);
    shard_of = calloc(nt, sizeof *shard_of);
    AW_GOTO_IF(!shard_names || !shard_buf || !scratch || !entries || !names || !shard_of,
               AW_ERR_NOMEM, "synth: out of memory (largest shard %llu bytes)",
               (unsigned long long)max_shard);
    for (int k = 0; k < n_shards; k++) {
        if (n_shards == 1) snprintf(shard_names[k], sizeof shard_names[k], "%s", AW_SINGLE_NAME);
        else snprintf(shard_names[k], sizeof shard_names[k], "model-%05d-of-%05d.safetensors", k + 1, n_shards);
    }

    size_t i = 0;
    for (int k = 0; k < n_shards; k++) {
        size_t ne = 0;
        uint64_t off = 0;
        for (; i < nt && t[i].shard == k; i++, ne++) {
            gen_tensor(&s, &t[i], scratch);
            AW_CHECK(aw_convert_from_f32(dt, scratch, shard_buf + off, t[i].numel));
            entries[ne] = (aw_st_entry){.name = t[i].name, .dtype = dt, .ndim = t[i].ndim,
                                        .shape = {t[i].shape[0], t[i].shape[1]},
                                        .data = shard_buf + off};
            off += t[i].numel * esz;
            names[i] = t[i].name;
            shard_of[i] = shard_names[k];
        }
        free(path);
        path = aw_outdir_path(&od, shard_names[k]);
        AW_GOTO_IF(!path, AW_ERR_NOMEM, "synth: out of memory");
        const aw_st_meta meta[] = {{"format", "pt"}};
        AW_CHECK(aw_st_write_file(path, entries, ne, meta, 1));
        if (o->verbose)
            fprintf(stderr, "synth: wrote %s (%zu tensors, %.1f MB) [%d/%d]\n", shard_names[k], ne,
                    off / 1e6, k + 1, n_shards);
    }
    if (n_shards > 1) AW_CHECK(aw_mf_write_index(od.tmp_path, names, shard_of, nt, total));

    free(path);
    path = aw_outdir_path(&od, "config.json");
    AW_GOTO_IF(!path, AW_ERR_NOMEM, "synth: out of memory");
    AW_CHECK(aw_config_write(path, c, NULL));
    free(path);
    path = aw_outdir_path(&od, "calibration.tokens");
    AW_GOTO_IF(!path, AW_ERR_NOMEM, "synth: out of memory");
    AW_CHECK(write_tokens(o, path));

    AW_CHECK(aw_outdir_commit(&od));

fail:
    aw_outdir_abort(&od);
    free(path);
    free(shard_buf);
    free(scratch);
    free(entries);
    free(names);
    free(shard_of);
    free(shard_names);
    free(t);
    return st;
}
