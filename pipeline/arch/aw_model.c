/* aw_model.c - block parameters in memory (see aw_model.h). */
#include "aw_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

aw_tap_id aw_linear_tap(const aw_model_config *c, int l) { return aw_arch_of(c)->lin[l].tap; }

const float *aw_qblock_out_scale(const aw_qblock *q, int l) { return q->out_s[l]; }

static void linear_dims(const aw_model_config *c, int l, int *in, int *out)
{
    const aw_arch *a = aw_arch_of(c);
    *in = aw_arch_dim(c, a->lin[l].in);
    *out = aw_arch_dim(c, a->lin[l].out);
}

static size_t block_weights(const aw_model_config *c) { return (size_t)aw_arch_linear_params(c); }

/* Linear output widths summed: the biases of a block. */
static size_t block_bias(const aw_model_config *c)
{
    const aw_arch *a = aw_arch_of(c);
    size_t n = 0;
    for (int l = 0; l < a->n_lin; l++) n += (size_t)aw_arch_dim(c, a->lin[l].out);
    return n;
}

/* f32 values of a block besides its weights: biases and two norms */
static size_t block_small(const aw_model_config *c)
{
    return block_bias(c) + 2 * AW_NORM_COUNT * (size_t)c->hidden_size;
}

uint64_t aw_block_bytes(const aw_model_config *c, aw_dtype wdt)
{
    return block_weights(c) * aw_dtype_size(wdt) + block_small(c) * sizeof(float);
}

/* Views of a block of shape c with weights in wdt over arena (block_bytes). */
static void block_carve(const aw_model_config *c, aw_dtype wdt, void *arena, aw_block *b)
{
    size_t esz = aw_dtype_size(wdt);
    b->arena = arena;
    b->wdt = wdt;
    b->n_lin = aw_arch_of(c)->n_lin;
    int d = c->hidden_size;
    /* floats first: their alignment then holds for the weights after them */
    float *p = arena;
    for (int l = 0; l < b->n_lin; l++) {
        aw_linear *ln = &b->lin[l];
        linear_dims(c, l, &ln->in, &ln->out);
        ln->b = p;
        p += ln->out;
    }
    for (int n = 0; n < AW_NORM_COUNT; n++) {
        b->norm_g[n] = p, p += d;
        b->norm_b[n] = p, p += d;
    }
    uint8_t *w = (uint8_t *)p;
    for (int l = 0; l < b->n_lin; l++) {
        b->lin[l].w = w;
        w += (size_t)b->lin[l].in * b->lin[l].out * esz;
    }
}

aw_status aw_block_create(const aw_model_config *c, aw_dtype wdt, aw_block *b)
{
    memset(b, 0, sizeof *b);
    AW_RETURN_IF(wdt != AW_DT_F32 && wdt != AW_DT_F16 && wdt != AW_DT_BF16, AW_ERR_DTYPE,
                 "block weights in %s: expected F32, F16 or BF16", aw_dtype_name(wdt));
    void *arena = malloc(aw_block_bytes(c, wdt));
    AW_RETURN_IF(!arena, AW_ERR_NOMEM, "out of memory for a block of %zu parameters", block_weights(c));
    /* the biases and norm biases a family has not stay 0 (they lead the
     * arena); the weights are always written whole */
    memset(arena, 0, block_small(c) * sizeof(float));
    block_carve(c, wdt, arena, b);
    return AW_OK;
}

void aw_block_destroy(aw_block *b)
{
    if (!b) return;
    free(b->arena);
    memset(b, 0, sizeof *b);
}

const float *aw_linear_f32(const aw_block *b, int l, float *scratch)
{
    const aw_linear *ln = &b->lin[l];
    if (b->wdt == AW_DT_F32) return ln->w;
    /* the dtype was checked at creation, so the conversion cannot fail */
    (void)aw_convert_to_f32(b->wdt, ln->w, scratch, (size_t)ln->in * ln->out);
    return scratch;
}

aw_status aw_block_convert(aw_block *dst, const aw_block *src)
{
    for (int l = 0; l < src->n_lin; l++) {
        const aw_linear *s = &src->lin[l];
        aw_linear *d = &dst->lin[l];
        size_t n = (size_t)s->in * s->out;
        memcpy(d->b, s->b, (size_t)s->out * sizeof(float));
        if (src->wdt == dst->wdt) {
            memcpy(d->w, s->w, n * aw_dtype_size(src->wdt));
        } else if (dst->wdt == AW_DT_F32) {
            AW_TRY(aw_convert_to_f32(src->wdt, s->w, d->w, n));
        } else {
            AW_RETURN_IF(src->wdt != AW_DT_F32, AW_ERR_DTYPE, "block conversion %s -> %s",
                         aw_dtype_name(src->wdt), aw_dtype_name(dst->wdt));
            AW_TRY(aw_convert_from_f32(dst->wdt, s->w, d->w, n));
        }
    }
    size_t d = (size_t)(src->norm_b[0] - src->norm_g[0]);
    for (int n = 0; n < AW_NORM_COUNT; n++) {
        memcpy(dst->norm_g[n], src->norm_g[n], d * sizeof(float));
        memcpy(dst->norm_b[n], src->norm_b[n], d * sizeof(float));
    }
    return AW_OK;
}

/* Read a named tensor as f32 into dst, checking its size and values. */
static aw_status load_tensor(const aw_model_files *mf, const char *name, float *dst, size_t n)
{
    const aw_st_file *f = NULL;
    const aw_st_tensor *t = NULL;
    AW_TRY(aw_mf_find(mf, name, &f, &t));
    AW_RETURN_IF(aw_st_numel(t) != n, AW_ERR_ST_SHAPE, "%s: tensor '%s' has %llu values; the config implies %zu",
                 aw_st_label(f), name, (unsigned long long)aw_st_numel(t), n);
    AW_TRY(aw_st_read_f32(f, t, dst, n));
    for (size_t i = 0; i < n; i++)
        AW_RETURN_IF(!isfinite(dst[i]), AW_ERR_NONFINITE, "%s: tensor '%s': element %zu is %s",
                     aw_st_label(f), name, i, isnan(dst[i]) ? "NaN" : "Inf");
    return AW_OK;
}

aw_status aw_block_load(const aw_model_config *c, const aw_model_files *mf, int layer, aw_block *b)
{
    const aw_arch *a = aw_arch_of(c);
    char name[160];
    /* weights pass through one f32 scratch (checked for NaN/Inf there) */
    float *tmp = malloc(aw_arch_max_linear(c) * sizeof(float));
    AW_RETURN_IF(!tmp, AW_ERR_NOMEM, "layer %d: out of memory", layer);
    aw_status st = AW_OK;
    for (int i = 0; i < a->n_block_tensors && st == AW_OK; i++) {
        aw_tensor_ref r = a->block_tensors[i];
        if (r.kind == AW_T_LIN_B && !aw_arch_has_linear_bias(c, r.index)) continue;
        if (r.kind == AW_T_NORM_B && !aw_arch_has_norm_bias(c)) continue;
        aw_arch_tensor_name(c, layer, r, name, sizeof name);
        if (r.kind == AW_T_LIN_W) {
            aw_linear *ln = &b->lin[r.index];
            size_t n = (size_t)ln->in * ln->out;
            st = load_tensor(mf, name, tmp, n);
            if (st == AW_OK) st = aw_convert_from_f32(b->wdt, tmp, ln->w, n);
        } else if (r.kind == AW_T_LIN_B) {
            st = load_tensor(mf, name, b->lin[r.index].b, (size_t)b->lin[r.index].out);
        } else {
            float *dst = r.kind == AW_T_NORM_W ? b->norm_g[r.index] : b->norm_b[r.index];
            st = load_tensor(mf, name, dst, (size_t)c->hidden_size);
        }
    }
    free(tmp);
    return st;
}

/* Floats of a coded block's steps: (out, ng) per linear. */
static size_t qblock_steps(const aw_model_config *c, const aw_scheme *sc)
{
    if (!aw_scheme_coded(sc)) return 0;
    const aw_arch *a = aw_arch_of(c);
    size_t n = 0;
    for (int l = 0; l < a->n_lin; l++)
        n += (size_t)aw_arch_dim(c, a->lin[l].out) * (size_t)aw_scheme_groups(sc, aw_arch_dim(c, a->lin[l].in));
    return n;
}

/* Kept channels: floats of the kept weight columns (out, n_keep) of every
 * linear and of the taps' masks (in), and the taps' indices (int32). */
static void qblock_keep(const aw_model_config *c, const aw_scheme *sc, size_t *n_f, size_t *n_idx)
{
    const aw_arch *a = aw_arch_of(c);
    *n_f = *n_idx = 0;
    if (!(sc->keep_pct > 0)) return;
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        int w = aw_arch_tap_width(c, (aw_tap_id)t);
        *n_f += (size_t)w;
        *n_idx += (size_t)aw_scheme_n_keep(sc, w);
    }
    for (int l = 0; l < a->n_lin; l++)
        *n_f += (size_t)aw_arch_dim(c, a->lin[l].out) * (size_t)aw_scheme_n_keep(sc, aw_arch_dim(c, a->lin[l].in));
}

uint64_t aw_qblock_bytes(const aw_model_config *c, const aw_scheme *sc)
{
    size_t n_f = 3 * block_bias(c)                                  /* bias, bias_plain, out_s */
                 + 2 * AW_NORM_COUNT * (size_t)c->hidden_size;       /* norms */
    for (int t = 0; t < AW_TAP_COUNT; t++) n_f += (size_t)aw_arch_tap_width(c, (aw_tap_id)t); /* s */
    size_t steps = qblock_steps(c, sc); /* coded: steps (float) and zero points (byte) */
    size_t kf, ki;
    qblock_keep(c, sc, &kf, &ki);
    /* codes, and with dynamic activations their signed values too */
    size_t wbytes = block_weights(c) * (sc->act == AW_ACT_DYNAMIC ? 2 : 1);
    return (n_f + steps + kf + ki) * sizeof(float) + wbytes + steps;
}

static void qblock_carve(const aw_model_config *c, const aw_scheme *sc, void *arena, aw_qblock *q)
{
    const aw_arch *a = aw_arch_of(c);
    int coded = aw_scheme_coded(sc), dyn = sc->act == AW_ACT_DYNAMIC, keep = sc->keep_pct > 0;
    q->arena = arena;
    q->scheme = *sc;
    q->n_lin = a->n_lin;
    int d = c->hidden_size;
    float *pf = arena;
    for (int l = 0; l < q->n_lin; l++) {
        aw_qlinear *ql = &q->lin[l];
        linear_dims(c, l, &ql->in, &ql->out);
        ql->tap = a->lin[l].tap;
        ql->group = coded ? sc->group : 0;
        ql->bias = pf, pf += ql->out;
        ql->bias_plain = pf, pf += ql->out;
    }
    for (int n = 0; n < AW_NORM_COUNT; n++) {
        q->norm_g[n] = pf, pf += d;
        q->norm_b[n] = pf, pf += d;
    }
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        q->s[t] = pf;
        pf += aw_arch_tap_width(c, (aw_tap_id)t);
    }
    for (int l = 0; l < q->n_lin; l++) {
        q->out_s[l] = NULL;
        for (int t = 0; t < AW_TAP_COUNT; t++)
            if (a->tap[t].fold == AW_FOLD_ROWS && a->tap[t].producer == l) q->out_s[l] = pf;
        pf += q->lin[l].out;
    }
    for (int l = 0; l < q->n_lin && coded; l++) {
        aw_qlinear *ql = &q->lin[l];
        ql->wstep = pf;
        pf += (size_t)ql->out * aw_scheme_groups(sc, ql->in);
    }
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        int w = aw_arch_tap_width(c, (aw_tap_id)t);
        q->n_keep[t] = keep ? aw_scheme_n_keep(sc, w) : 0;
        q->keep_mask[t] = keep ? pf : NULL;
        pf += keep ? (size_t)w : 0;
    }
    for (int l = 0; l < q->n_lin; l++) {
        aw_qlinear *ql = &q->lin[l];
        ql->n_keep = q->n_keep[ql->tap];
        ql->wkeep = keep ? pf : NULL;
        pf += (size_t)ql->out * ql->n_keep;
    }
    int32_t *pidx = (int32_t *)pf;
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        q->keep_idx[t] = keep ? pidx : NULL;
        pidx += q->n_keep[t];
    }
    for (int l = 0; l < q->n_lin; l++) {
        q->lin[l].keep_idx = q->keep_idx[q->lin[l].tap];
        q->lin[l].keep_mask = q->keep_mask[q->lin[l].tap];
    }
    uint8_t *pi = (uint8_t *)pidx;
    for (int l = 0; l < q->n_lin; l++) {
        aw_qlinear *ql = &q->lin[l];
        if (coded) ql->codes = pi, ql->wq = NULL;
        else ql->wq = (int8_t *)pi, ql->codes = NULL;
        pi += (size_t)ql->in * ql->out;
    }
    for (int l = 0; l < q->n_lin && dyn; l++) {
        aw_qlinear *ql = &q->lin[l];
        ql->wq = (int8_t *)pi;
        pi += (size_t)ql->in * ql->out;
    }
    for (int l = 0; l < q->n_lin && coded; l++) {
        aw_qlinear *ql = &q->lin[l];
        ql->wzero = pi;
        pi += (size_t)ql->out * aw_scheme_groups(sc, ql->in);
    }
}

void aw_qlinear_set_signed(aw_qlinear *ql)
{
    int in = ql->in, G = ql->group > 0 ? ql->group : in, ng = (in + G - 1) / G;
    for (int i = 0; i < ql->out; i++) {
        const uint8_t *cq = ql->codes + (size_t)i * in, *z = ql->wzero + (size_t)i * ng;
        int8_t *w = ql->wq + (size_t)i * in;
        for (int j = 0; j < in; j++) w[j] = (int8_t)((int)cq[j] - (int)z[j / G]);
    }
}

void aw_qblock_set_out_scales(const aw_model_config *c, aw_qblock *q)
{
    const aw_arch *a = aw_arch_of(c);
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        if (a->tap[t].fold != AW_FOLD_ROWS) continue;
        float *out = q->out_s[a->tap[t].producer];
        int w = aw_arch_tap_width(c, (aw_tap_id)t);
        /* every tap channel of a producer row carries that row's factor */
        for (int j = w - 1; j >= 0; j--) out[aw_arch_row_of(c, (aw_tap_id)t, j)] = q->s[t][j];
    }
}

aw_status aw_qblock_create(const aw_model_config *c, const aw_scheme *sc, aw_qblock *q)
{
    memset(q, 0, sizeof *q);
    void *arena = calloc(1, aw_qblock_bytes(c, sc));
    AW_RETURN_IF(!arena, AW_ERR_NOMEM, "out of memory for a quantized block");
    qblock_carve(c, sc, arena, q);
    return AW_OK;
}

void aw_qblock_destroy(aw_qblock *q)
{
    if (!q) return;
    free(q->arena);
    memset(q, 0, sizeof *q);
}

static size_t pos_rows(const aw_model_config *c)
{
    const aw_arch *a = aw_arch_of(c);
    return a->end_name[AW_T_POS] ? (size_t)c->max_position_embeddings + (size_t)a->pos_offset : 0;
}

static size_t ends_floats(const aw_model_config *c)
{
    size_t d = (size_t)c->hidden_size, v = (size_t)c->vocab_size;
    return v * d * (c->tie_word_embeddings ? 1 : 2) + pos_rows(c) * d + 2 * d;
}

uint64_t aw_ends_bytes(const aw_model_config *c) { return ends_floats(c) * sizeof(float); }

static void ends_carve(const aw_model_config *c, float *arena, aw_model_ends *e)
{
    size_t d = (size_t)c->hidden_size, v = (size_t)c->vocab_size;
    e->arena = arena;
    e->embed = arena;
    float *p = e->embed + v * d;
    e->head = e->embed;
    if (!c->tie_word_embeddings) e->head = p, p += v * d;
    e->pos = pos_rows(c) ? p : NULL;
    p += pos_rows(c) * d;
    e->lnf_g = p;
    e->lnf_b = p + d;
}

aw_status aw_ends_load(const aw_model_config *c, const aw_model_files *mf, aw_model_ends *e)
{
    const aw_arch *a = aw_arch_of(c);
    memset(e, 0, sizeof *e);
    size_t d = (size_t)c->hidden_size, v = (size_t)c->vocab_size;
    float *arena = malloc(ends_floats(c) * sizeof(float));
    AW_RETURN_IF(!arena, AW_ERR_NOMEM, "out of memory for the embeddings (%zu x %zu)", v, d);
    ends_carve(c, arena, e);
    memset(e->lnf_b, 0, d * sizeof(float)); /* a final norm without bias; every other array is read whole */
    aw_status st = AW_OK;
    for (int i = 0; i < a->n_end_tensors && st == AW_OK; i++) {
        aw_tensor_kind k = a->end_tensors[i].kind;
        float *dst = k == AW_T_EMBED ? e->embed : k == AW_T_POS ? e->pos : k == AW_T_FINAL_W ? e->lnf_g
                   : k == AW_T_FINAL_B ? e->lnf_b : e->head;
        size_t n = k == AW_T_EMBED || k == AW_T_HEAD ? v * d : k == AW_T_POS ? pos_rows(c) * d : d;
        if (k == AW_T_HEAD && c->tie_word_embeddings) continue;
        st = load_tensor(mf, a->end_name[k], dst, n);
    }
    if (st != AW_OK) aw_ends_destroy(e);
    return st;
}

void aw_ends_destroy(aw_model_ends *e)
{
    if (!e) return;
    free(e->arena);
    memset(e, 0, sizeof *e);
}

/* ---- copies in a backend's memory ------------------------------------------------- */

aw_status aw_block_to_dev(const aw_ops *o, const aw_model_config *c, const aw_block *host, aw_block *dev)
{
    memset(dev, 0, sizeof *dev);
    aw_dtype wdt = aw_ops_dev_wdt(o, host->wdt);
    if (o->host && wdt == host->wdt) {
        *dev = *host; /* the same memory: aw_block_dev_free knows */
        return AW_OK;
    }
    void *arena = NULL;
    AW_TRY(o->vt->alloc(o, &arena, aw_block_bytes(c, wdt), "a block's weights"));
    block_carve(c, wdt, arena, dev);
    /* biases and LayerNorms lead both arenas, in the same order */
    aw_status st = o->vt->to_dev(o, dev->arena, host->arena, block_small(c) * sizeof(float));
    if (st == AW_OK && wdt == host->wdt) {
        st = o->vt->to_dev(o, dev->lin[0].w, host->lin[0].w, block_weights(c) * aw_dtype_size(wdt));
    } else if (st == AW_OK) {
        /* widened linear by linear through one host buffer */
        float *tmp = malloc(aw_arch_max_linear(c) * sizeof(float));
        if (!tmp) st = AW_FAIL(AW_ERR_NOMEM, "out of memory widening a block");
        for (int l = 0; l < host->n_lin && st == AW_OK; l++) {
            size_t n = (size_t)host->lin[l].in * host->lin[l].out;
            st = aw_convert_to_f32(host->wdt, host->lin[l].w, tmp, n);
            if (st == AW_OK) st = o->vt->to_dev(o, dev->lin[l].w, tmp, n * sizeof(float));
            /* to_dev may return before the bytes left tmp: wait before reusing it */
            if (st == AW_OK) st = o->vt->sync(o);
        }
        free(tmp);
    }
    if (st != AW_OK) aw_block_dev_free(o, dev, host);
    return st;
}

void aw_block_dev_free(const aw_ops *o, aw_block *dev, const aw_block *host)
{
    if (!dev) return;
    aw_ops_mirror_free(o, dev->arena, host ? host->arena : NULL);
    memset(dev, 0, sizeof *dev);
}

aw_status aw_qblock_to_dev(const aw_ops *o, const aw_model_config *c, const aw_qblock *host, aw_qblock *dev)
{
    AW_TRY(aw_qblock_dev_create(o, c, host, dev));
    if (dev->arena == host->arena) return AW_OK;
    for (int l = 0; l < dev->n_lin; l++) {
        dev->lin[l].w_step = host->lin[l].w_step;
        dev->lin[l].x_step = host->lin[l].x_step;
    }
    aw_status st = o->vt->to_dev(o, dev->arena, host->arena, aw_qblock_bytes(c, &host->scheme));
    if (st != AW_OK) aw_qblock_dev_free(o, dev, host);
    return st;
}

void aw_qblock_dev_free(const aw_ops *o, aw_qblock *dev, const aw_qblock *host)
{
    if (!dev) return;
    aw_ops_mirror_free(o, dev->arena, host ? host->arena : NULL);
    memset(dev, 0, sizeof *dev);
}

aw_status aw_block_dev_create(const aw_ops *o, const aw_model_config *c, aw_dtype wdt, aw_block *dev)
{
    memset(dev, 0, sizeof *dev);
    AW_RETURN_IF(wdt != AW_DT_F32 && wdt != AW_DT_F16 && wdt != AW_DT_BF16, AW_ERR_DTYPE,
                 "block weights in %s: expected F32, F16 or BF16", aw_dtype_name(wdt));
    void *arena = NULL;
    AW_TRY(o->vt->alloc(o, &arena, aw_block_bytes(c, wdt), "a block's weights"));
    block_carve(c, wdt, arena, dev);
    /* as aw_block_create: the biases and norms lead the arena, zeroed */
    aw_status st = o->vt->zero(o, arena, block_small(c) * sizeof(float));
    if (st != AW_OK) aw_block_dev_destroy(o, dev);
    return st;
}

void aw_block_dev_destroy(const aw_ops *o, aw_block *dev)
{
    if (!dev) return;
    if (dev->arena) o->vt->release(o, dev->arena);
    memset(dev, 0, sizeof *dev);
}

aw_status aw_qblock_dev_create(const aw_ops *o, const aw_model_config *c, const aw_qblock *host, aw_qblock *dev)
{
    memset(dev, 0, sizeof *dev);
    void *arena = NULL;
    uint64_t bytes = aw_qblock_bytes(c, &host->scheme);
    AW_TRY(aw_ops_mirror(o, &arena, host->arena, bytes, "a quantized block"));
    if (arena == host->arena) {
        *dev = *host;
        return AW_OK;
    }
    qblock_carve(c, &host->scheme, arena, dev);
    /* what aw_qblock_create's calloc gives: bytes nothing writes (the
     * padding of out_s) come back as zeros */
    aw_status st = o->vt->zero(o, arena, bytes);
    if (st != AW_OK) aw_qblock_dev_free(o, dev, host);
    return st;
}

aw_status aw_qblock_to_host(const aw_ops *o, const aw_model_config *c, const aw_qblock *dev, aw_qblock *host)
{
    for (int l = 0; l < dev->n_lin; l++) {
        host->lin[l].w_step = dev->lin[l].w_step;
        host->lin[l].x_step = dev->lin[l].x_step;
        host->lin[l].group = dev->lin[l].group;
    }
    if (dev->arena == host->arena) return AW_OK;
    return o->vt->to_host(o, host->arena, dev->arena, aw_qblock_bytes(c, &host->scheme));
}

aw_status aw_ends_to_dev(const aw_ops *o, const aw_model_config *c, const aw_model_ends *host, aw_model_ends *dev)
{
    memset(dev, 0, sizeof *dev);
    void *arena = NULL;
    AW_TRY(aw_ops_mirror(o, &arena, host->arena, aw_ends_bytes(c), "the embeddings"));
    ends_carve(c, arena, dev);
    if (arena == host->arena) return AW_OK;
    aw_status st = o->vt->to_dev(o, arena, host->arena, aw_ends_bytes(c));
    if (st != AW_OK) aw_ends_dev_free(o, dev, host);
    return st;
}

void aw_ends_dev_free(const aw_ops *o, aw_model_ends *dev, const aw_model_ends *host)
{
    if (!dev) return;
    aw_ops_mirror_free(o, dev->arena, host ? host->arena : NULL);
    memset(dev, 0, sizeof *dev);
}
