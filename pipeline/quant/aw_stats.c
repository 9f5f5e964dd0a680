/* aw_stats.c - calibration statistics of a block: ranges, sums and, for
 * the methods that need them, Gram matrices (see aw_quant.h). */
#include "aw_quant.h"

#include <stdlib.h>
#include <string.h>

#include "aw_kernels.h"

/* Extra part of tap t: in(in+1)/2 lower-triangle values (with the Gram),
 * then in |x| sums. */
static size_t gram_part_len(int in, int with_gram)
{
    return (with_gram ? (size_t)in * (size_t)(in + 1) / 2 : 0) + (size_t)in;
}

size_t aw_stats_extra_part_len(const aw_model_config *c, aw_stats_level level)
{
    size_t n = 0;
    for (int t = 0; level >= AW_STATS_ABSSUM && t < AW_TAP_COUNT; t++)
        n += gram_part_len(aw_arch_tap_width(c, (aw_tap_id)t), level >= AW_STATS_GRAM);
    return n;
}

uint64_t aw_stats_bytes(const aw_model_config *c, aw_stats_level level)
{
    uint64_t n = 0, sq = 0;
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        uint64_t w = (uint64_t)aw_arch_tap_width(c, (aw_tap_id)t);
        n += w;
        sq += w * w;
    }
    /* the ranges (floats) padded to whole doubles: the Gram arrays follow */
    uint64_t b = (2 * n + 1) * sizeof(double) + (n * sizeof(float) + sizeof(double) - 1) / sizeof(double) * sizeof(double);
    /* |x| sums twice (totals and a block's); the Gram totals (double; the
     * f32 Gram of a block is the rank's shared scratch,
     * aw_stats_gram_scratch_floats) */
    if (level >= AW_STATS_ABSSUM) b += 2 * n * sizeof(double);
    if (level >= AW_STATS_GRAM) b += sq * sizeof(double);
    return b;
}

uint64_t aw_stats_sample_bytes(const aw_model_config *c, int n_samp)
{
    uint64_t n = 0;
    for (int t = 0; t < AW_TAP_COUNT; t++) n += (uint64_t)aw_arch_tap_width(c, (aw_tap_id)t);
    return n_samp > 0 ? (uint64_t)n_samp * n * sizeof(float) : 0;
}

aw_status aw_stats_use_sample(aw_stats *s, int n_samp, uint64_t total_tokens)
{
    AW_RETURN_IF(n_samp < 1, AW_ERR_ARG, "a token sample needs at least one row (%d)", n_samp);
    free(s->sample_all);
    s->sample_all = calloc((size_t)n_samp * s->n_sum, sizeof(float));
    AW_RETURN_IF(!s->sample_all, AW_ERR_NOMEM, "out of memory for a token sample (%d tokens)", n_samp);
    s->with_sample = 1;
    s->n_samp = n_samp;
    s->samp_total = total_tokens;
    s->samp_stride = total_tokens / (uint64_t)n_samp > 1 ? total_tokens / (uint64_t)n_samp : 1;
    uint64_t rows = (total_tokens + s->samp_stride - 1) / s->samp_stride;
    s->samp_rows = rows < (uint64_t)n_samp ? (int)rows : n_samp;
    s->samp_first = 0;
    float *p = s->sample_all;
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        s->sample[t] = p;
        p += (size_t)n_samp * s->in[t];
    }
    return AW_OK;
}

void aw_stats_set_block(aw_stats *s, uint64_t first_token) { s->samp_first = first_token; }

/* The sample's rows among the T tokens of the current block at tap. */
static aw_status observe_sample(aw_stats *s, aw_tap_id tap, const float *x, int T, int in)
{
    const aw_ops *o = s->ops;
    uint64_t g0 = s->samp_first, st = s->samp_stride;
    uint64_t g = (g0 + st - 1) / st * st; /* the first multiple of the stride at or after g0 */
    for (; g < g0 + (uint64_t)T && g / st < (uint64_t)s->samp_rows; g += st) {
        float *row = s->sample[tap] + (size_t)(g / st) * in;
        const float *src = x + (size_t)(g - g0) * in;
        if (o->host) memcpy(row, src, (size_t)in * sizeof *row);
        else AW_TRY(o->vt->to_host(o, row, src, (size_t)in * sizeof *row));
        for (int j = 0; j < in; j++) row[j] += 0.0f; /* -0 becomes +0 */
    }
    return AW_OK;
}

/* The observer's targets: the host arrays themselves. */
static void stats_on_host(aw_stats *s)
{
    s->ops = aw_ops_cpu();
    s->d_absmax = s->absmax[0];
    s->d_part = s->part;
    s->d_nonfinite = &s->nonfinite;
    s->d_gram = s->h_gram;
    s->d_abssum = s->h_abssum;
}

size_t aw_stats_gram_scratch_floats(const aw_model_config *c)
{
    size_t sq = 0;
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        size_t w = (size_t)aw_arch_tap_width(c, (aw_tap_id)t);
        sq += w * w;
    }
    return sq;
}

void aw_stats_use_gram_scratch(aw_stats *s, float *host, float *dev)
{
    s->h_gram = host;
    s->d_gram_scratch = dev;
    s->d_gram = s->ops && !s->ops->host ? dev : host;
}

aw_stats_level aw_stats_level_of(const aw_stats *s)
{
    return s->with_gram ? AW_STATS_GRAM : s->with_abssum ? AW_STATS_ABSSUM : AW_STATS_PLAIN;
}

aw_status aw_stats_create(const aw_model_config *c, aw_stats_level level, aw_stats *s)
{
    memset(s, 0, sizeof *s);
    int in[AW_TAP_COUNT];
    size_t n = 0, sq = 0;
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        n += (size_t)(in[t] = aw_arch_tap_width(c, (aw_tap_id)t));
        sq += (size_t)in[t] * (size_t)in[t];
    }
    s->arena = calloc(1, aw_stats_bytes(c, level));
    AW_RETURN_IF(!s->arena, AW_ERR_NOMEM, "out of memory for statistics%s",
                 level >= AW_STATS_GRAM ? " (Gram matrices of every tap)" : "");
    s->n_sum = n;
    s->sum_all = s->arena;
    s->part = s->sum_all + n;
    double *pd = s->sum_all;
    float *pf = (float *)(s->part + n + 1);
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        s->in[t] = in[t];
        s->sum[t] = pd, pd += in[t];
        s->absmax[t] = pf, pf += in[t];
    }
    if (level >= AW_STATS_ABSSUM) {
        s->with_abssum = 1;
        s->with_gram = level >= AW_STATS_GRAM;
        /* doubles first (pf is past n floats: realign on the arena's doubles) */
        double *g = (double *)s->arena + (2 * n + 1) + (n * sizeof(float) + sizeof(double) - 1) / sizeof(double);
        for (int t = 0; t < AW_TAP_COUNT; t++) {
            if (s->with_gram) s->gram[t] = g, g += (size_t)in[t] * in[t];
            s->n_gram += gram_part_len(in[t], s->with_gram);
        }
        for (int t = 0; t < AW_TAP_COUNT; t++) s->abssum[t] = g, g += in[t];
        s->h_abssum = g;
    }
    stats_on_host(s);
    return AW_OK;
}
/* Floats of one block's Gram matrices: sum_t in^2. */
static size_t gram_floats(const aw_stats *s)
{
    size_t sq = 0;
    for (int t = 0; t < AW_TAP_COUNT; t++) sq += (size_t)s->in[t] * (size_t)s->in[t];
    return sq;
}

/* Offset of tap t's Gram in the f32 block buffer. */
static size_t gram_off(const aw_stats *s, aw_tap_id tap)
{
    size_t off = 0;
    for (int t = 0; t < (int)tap; t++) off += (size_t)s->in[t] * (size_t)s->in[t];
    return off;
}

static void stats_detach(aw_stats *s)
{
    if (s->ops && !s->ops->host) {
        s->ops->vt->release(s->ops, s->d_absmax);
        s->ops->vt->release(s->ops, s->d_part);
        s->ops->vt->release(s->ops, s->d_nonfinite);
        if (s->with_abssum) s->ops->vt->release(s->ops, s->d_abssum);
    }
    stats_on_host(s);
}

void aw_stats_destroy(aw_stats *s)
{
    if (!s) return;
    if (s->arena) stats_detach(s);
    free(s->arena);
    free(s->sample_all);
    memset(s, 0, sizeof *s);
}

aw_status aw_stats_attach(aw_stats *s, const aw_ops *o)
{
    stats_detach(s);
    if (o->host) return AW_OK;
    float *dg = s->d_gram_scratch;
    s->d_absmax = NULL, s->d_part = NULL, s->d_nonfinite = NULL, s->d_abssum = NULL;
    s->d_gram = dg;
    s->ops = o;
    AW_TRY(o->vt->alloc(o, (void **)&s->d_absmax, s->n_sum * sizeof(float), "activation ranges"));
    AW_TRY(o->vt->alloc(o, (void **)&s->d_part, s->n_sum * sizeof(double), "activation sums"));
    AW_TRY(o->vt->alloc(o, (void **)&s->d_nonfinite, sizeof(unsigned long long), "a counter"));
    AW_TRY(o->vt->to_dev(o, s->d_absmax, s->absmax[0], s->n_sum * sizeof(float)));
    AW_TRY(o->vt->zero(o, s->d_part, s->n_sum * sizeof(double)));
    if (s->with_abssum) {
        AW_TRY(o->vt->alloc(o, (void **)&s->d_abssum, s->n_sum * sizeof(double), "activation |x| sums"));
        AW_TRY(o->vt->zero(o, s->d_abssum, s->n_sum * sizeof(double)));
    }
    return o->vt->to_dev(o, s->d_nonfinite, &s->nonfinite, sizeof(unsigned long long));
}

aw_status aw_stats_fetch(aw_stats *s)
{
    const aw_ops *o = s->ops;
    AW_TRY(o->vt->to_host(o, s->absmax[0], s->d_absmax, s->n_sum * sizeof(float)));
    return o->vt->to_host(o, &s->nonfinite, s->d_nonfinite, sizeof(unsigned long long));
}

aw_status aw_stats_observe(void *ctx, aw_tap_id tap, const float *x, int T, int in)
{
    aw_stats *s = ctx;
    const aw_ops *o = s->ops;
    size_t off = (size_t)(s->sum[tap] - s->sum_all);
    if (tap == AW_TAP_ATTN_IN) s->part[s->n_sum] += (double)T; /* the token count stays on the host */
    AW_TRY(o->vt->stats_accum(o, x, T, in, s->d_absmax + off, s->d_part + off, s->d_nonfinite));
    if (s->with_sample) AW_TRY(observe_sample(s, tap, x, T, in));
    if (!s->with_abssum) return AW_OK;
    AW_RETURN_IF(s->with_gram && !s->d_gram, AW_ERR_ARG,
                 "statistics with Gram matrices need their scratch (aw_stats_use_gram_scratch)");
    /* no Gram: the |x| sums alone (h NULL) */
    return o->vt->gram_accum(o, x, T, in, s->with_gram ? s->d_gram + gram_off(s, tap) : NULL, s->d_abssum + off);
}

aw_status aw_stats_take_part(aw_stats *s, double *dst)
{
    const aw_ops *o = s->ops;
    AW_TRY(o->vt->to_host(o, dst, s->d_part, s->n_sum * sizeof(double)));
    dst[s->n_sum] = s->part[s->n_sum];
    s->part[s->n_sum] = 0.0;
    AW_TRY(o->vt->zero(o, s->d_part, s->n_sum * sizeof(double)));
    if (!s->with_abssum) return AW_OK;
    /* per tap the block's f32 lower triangle as doubles (with the Gram),
     * then its |x| sums */
    size_t sq = s->with_gram ? gram_floats(s) : 0;
    if (sq) AW_TRY(o->vt->to_host(o, s->h_gram, s->d_gram, sq * sizeof(float)));
    AW_TRY(o->vt->to_host(o, s->h_abssum, s->d_abssum, s->n_sum * sizeof(double)));
    double *p = dst + s->n_sum + 1;
    const float *g = s->h_gram;
    const double *a = s->h_abssum;
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        int in = s->in[t];
        if (sq) {
            for (int i = 0; i < in; i++)
                for (int j = 0; j <= i; j++) *p++ = (double)g[(size_t)i * in + j];
            g += (size_t)in * in;
        }
        for (int j = 0; j < in; j++) *p++ = a[j];
        a += in;
    }
    if (sq) AW_TRY(o->vt->zero(o, s->d_gram, sq * sizeof(float)));
    return o->vt->zero(o, s->d_abssum, s->n_sum * sizeof(double));
}

void aw_stats_add_part(aw_stats *s, const double *part)
{
    for (size_t i = 0; i < s->n_sum; i++) s->sum_all[i] += part[i];
    s->tokens += (uint64_t)part[s->n_sum];
    if (!s->with_abssum) return;
    const double *p = part + s->n_sum + 1;
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        int in = s->in[t];
        double *g = s->gram[t];
        for (int i = 0; g && i < in; i++)
            for (int j = 0; j <= i; j++) g[(size_t)i * in + j] += *p++;
        for (int j = 0; j < in; j++) s->abssum[t][j] += *p++;
    }
}

void aw_stats_finish(aw_stats *s)
{
    for (int t = 0; t < AW_TAP_COUNT && s->with_gram; t++) {
        int in = s->in[t];
        double *g = s->gram[t];
        for (int i = 0; i < in; i++)
            for (int j = 0; j < i; j++) g[(size_t)j * in + i] = g[(size_t)i * in + j];
    }
}

