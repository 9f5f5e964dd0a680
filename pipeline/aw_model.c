/* aw_model.c - block parameters in memory (see aw_model.h). */
#include "aw_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const aw_linear_names[AW_LIN_COUNT] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "fc1", "fc2"};
const aw_block_tensor aw_linear_weight_tensor[AW_LIN_COUNT] = {AW_BT_Q_W, AW_BT_K_W, AW_BT_V_W,
                                                                AW_BT_O_W, AW_BT_FC1_W, AW_BT_FC2_W};
const aw_block_tensor aw_linear_bias_tensor[AW_LIN_COUNT] = {AW_BT_Q_B, AW_BT_K_B, AW_BT_V_B,
                                                             AW_BT_O_B, AW_BT_FC1_B, AW_BT_FC2_B};
const char *const aw_tap_names[AW_TAP_COUNT] = {"ln1->qkv", "v->out_proj", "ln2->fc1", "fc1->fc2"};

aw_tap_id aw_linear_tap(aw_linear_id l)
{
    static const aw_tap_id taps[AW_LIN_COUNT] = {AW_TAP_QKV, AW_TAP_QKV, AW_TAP_QKV,
                                                 AW_TAP_O,   AW_TAP_FC1, AW_TAP_FC2};
    return taps[l];
}

const float *aw_qblock_out_scale(const aw_qblock *q, aw_linear_id l)
{
    if (l == AW_LIN_V) return q->s[AW_TAP_O];
    if (l == AW_LIN_FC1) return q->s[AW_TAP_FC2];
    return NULL;
}

static void linear_dims(const aw_model_config *c, aw_linear_id l, int *in, int *out)
{
    int d = c->hidden_size, f = c->ffn_dim;
    *in = l == AW_LIN_FC2 ? f : d;
    *out = l == AW_LIN_FC1 ? f : d;
}

static size_t block_weights(const aw_model_config *c)
{
    size_t n = 0;
    for (int l = 0; l < AW_LIN_COUNT; l++) {
        int in, out;
        linear_dims(c, (aw_linear_id)l, &in, &out);
        n += (size_t)in * out;
    }
    return n;
}

/* f32 values of a block besides its weights: biases and two LayerNorms */
static size_t block_small(const aw_model_config *c)
{
    return 9 * (size_t)c->hidden_size + (size_t)c->ffn_dim;
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
    int d = c->hidden_size;
    /* floats first: their alignment then holds for the weights after them */
    float *p = arena;
    for (int l = 0; l < AW_LIN_COUNT; l++) {
        aw_linear *ln = &b->lin[l];
        linear_dims(c, (aw_linear_id)l, &ln->in, &ln->out);
        ln->b = p;
        p += ln->out;
    }
    b->ln1_g = p, p += d;
    b->ln1_b = p, p += d;
    b->ln2_g = p, p += d;
    b->ln2_b = p, p += d;
    uint8_t *w = (uint8_t *)p;
    for (int l = 0; l < AW_LIN_COUNT; l++) {
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
    block_carve(c, wdt, arena, b);
    return AW_OK;
}

void aw_block_destroy(aw_block *b)
{
    if (!b) return;
    free(b->arena);
    memset(b, 0, sizeof *b);
}

const float *aw_linear_f32(const aw_block *b, aw_linear_id l, float *scratch)
{
    const aw_linear *ln = &b->lin[l];
    if (b->wdt == AW_DT_F32) return ln->w;
    /* the dtype was checked at creation, so the conversion cannot fail */
    (void)aw_convert_to_f32(b->wdt, ln->w, scratch, (size_t)ln->in * ln->out);
    return scratch;
}

aw_status aw_block_convert(aw_block *dst, const aw_block *src)
{
    for (int l = 0; l < AW_LIN_COUNT; l++) {
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
    size_t d = (size_t)(src->ln1_b - src->ln1_g);
    memcpy(dst->ln1_g, src->ln1_g, d * sizeof(float));
    memcpy(dst->ln1_b, src->ln1_b, d * sizeof(float));
    memcpy(dst->ln2_g, src->ln2_g, d * sizeof(float));
    memcpy(dst->ln2_b, src->ln2_b, d * sizeof(float));
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
    char name[128];
    size_t max_w = 0;
    for (int l = 0; l < AW_LIN_COUNT; l++)
        if ((size_t)b->lin[l].in * b->lin[l].out > max_w) max_w = (size_t)b->lin[l].in * b->lin[l].out;
    /* weights pass through one f32 scratch (checked for NaN/Inf there) */
    float *tmp = malloc(max_w * sizeof(float));
    AW_RETURN_IF(!tmp, AW_ERR_NOMEM, "layer %d: out of memory", layer);
    aw_status st = AW_OK;
    for (int l = 0; l < AW_LIN_COUNT && st == AW_OK; l++) {
        aw_linear *ln = &b->lin[l];
        size_t n = (size_t)ln->in * ln->out;
        aw_block_tensor_name(layer, aw_linear_weight_tensor[l], name, sizeof name);
        st = load_tensor(mf, name, tmp, n);
        if (st == AW_OK) st = aw_convert_from_f32(b->wdt, tmp, ln->w, n);
        aw_block_tensor_name(layer, aw_linear_bias_tensor[l], name, sizeof name);
        if (st == AW_OK) st = load_tensor(mf, name, ln->b, (size_t)ln->out);
    }
    const struct {
        aw_block_tensor t;
        float *dst;
    } lns[4] = {{AW_BT_LN1_W, b->ln1_g}, {AW_BT_LN1_B, b->ln1_b}, {AW_BT_LN2_W, b->ln2_g}, {AW_BT_LN2_B, b->ln2_b}};
    for (int i = 0; i < 4 && st == AW_OK; i++) {
        aw_block_tensor_name(layer, lns[i].t, name, sizeof name);
        st = load_tensor(mf, name, lns[i].dst, (size_t)c->hidden_size);
    }
    free(tmp);
    return st;
}

uint64_t aw_qblock_bytes(const aw_model_config *c)
{
    size_t n_f = 2 * (5 * (size_t)c->hidden_size + (size_t)c->ffn_dim) /* bias, bias_plain */
                 + 4 * (size_t)c->hidden_size                          /* LayerNorms */
                 + 3 * (size_t)c->hidden_size + (size_t)c->ffn_dim;    /* s per tap */
    return n_f * sizeof(float) + block_weights(c);
}

static void qblock_carve(const aw_model_config *c, void *arena, aw_qblock *q)
{
    q->arena = arena;
    int d = c->hidden_size;
    float *pf = arena;
    for (int l = 0; l < AW_LIN_COUNT; l++) {
        aw_qlinear *ql = &q->lin[l];
        linear_dims(c, (aw_linear_id)l, &ql->in, &ql->out);
        ql->bias = pf, pf += ql->out;
        ql->bias_plain = pf, pf += ql->out;
    }
    q->ln1_g = pf, pf += d;
    q->ln1_b = pf, pf += d;
    q->ln2_g = pf, pf += d;
    q->ln2_b = pf, pf += d;
    int tap_in[AW_TAP_COUNT] = {d, d, d, c->ffn_dim};
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        q->s[t] = pf;
        pf += tap_in[t];
    }
    int8_t *pi = (int8_t *)pf;
    for (int l = 0; l < AW_LIN_COUNT; l++) {
        q->lin[l].wq = pi;
        pi += (size_t)q->lin[l].in * q->lin[l].out;
    }
}

aw_status aw_qblock_create(const aw_model_config *c, aw_qblock *q)
{
    memset(q, 0, sizeof *q);
    void *arena = malloc(aw_qblock_bytes(c));
    AW_RETURN_IF(!arena, AW_ERR_NOMEM, "out of memory for a quantized block");
    qblock_carve(c, arena, q);
    return AW_OK;
}

void aw_qblock_destroy(aw_qblock *q)
{
    if (!q) return;
    free(q->arena);
    memset(q, 0, sizeof *q);
}

static size_t ends_floats(const aw_model_config *c)
{
    size_t d = (size_t)c->hidden_size, v = (size_t)c->vocab_size;
    size_t p = (size_t)c->max_position_embeddings + AW_OPT_POS_OFFSET;
    return v * d + p * d + 2 * d;
}

uint64_t aw_ends_bytes(const aw_model_config *c) { return ends_floats(c) * sizeof(float); }

static void ends_carve(const aw_model_config *c, float *arena, aw_model_ends *e)
{
    size_t d = (size_t)c->hidden_size, v = (size_t)c->vocab_size;
    size_t p = (size_t)c->max_position_embeddings + AW_OPT_POS_OFFSET;
    e->arena = arena;
    e->embed = arena;
    e->pos = e->embed + v * d;
    e->lnf_g = e->pos + p * d;
    e->lnf_b = e->lnf_g + d;
}

aw_status aw_ends_load(const aw_model_config *c, const aw_model_files *mf, aw_model_ends *e)
{
    memset(e, 0, sizeof *e);
    size_t d = (size_t)c->hidden_size, v = (size_t)c->vocab_size;
    size_t p = (size_t)c->max_position_embeddings + AW_OPT_POS_OFFSET;
    float *arena = malloc(ends_floats(c) * sizeof(float));
    AW_RETURN_IF(!arena, AW_ERR_NOMEM, "out of memory for the embeddings (%zu x %zu)", v, d);
    ends_carve(c, arena, e);
    aw_status st = load_tensor(mf, aw_model_tensor_name(AW_MT_EMBED_TOKENS), e->embed, v * d);
    if (st == AW_OK) st = load_tensor(mf, aw_model_tensor_name(AW_MT_EMBED_POSITIONS), e->pos, p * d);
    if (st == AW_OK) st = load_tensor(mf, aw_model_tensor_name(AW_MT_FINAL_LN_W), e->lnf_g, d);
    if (st == AW_OK) st = load_tensor(mf, aw_model_tensor_name(AW_MT_FINAL_LN_B), e->lnf_b, d);
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
        float *tmp = malloc((size_t)c->hidden_size * (size_t)c->ffn_dim * sizeof(float));
        if (!tmp) st = AW_FAIL(AW_ERR_NOMEM, "out of memory widening a block");
        for (int l = 0; l < AW_LIN_COUNT && st == AW_OK; l++) {
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
    memset(dev, 0, sizeof *dev);
    void *arena = NULL;
    AW_TRY(aw_ops_mirror(o, &arena, host->arena, aw_qblock_bytes(c), "a quantized block"));
    if (arena == host->arena) {
        *dev = *host;
        return AW_OK;
    }
    qblock_carve(c, arena, dev);
    for (int l = 0; l < AW_LIN_COUNT; l++) {
        dev->lin[l].w_step = host->lin[l].w_step;
        dev->lin[l].x_step = host->lin[l].x_step;
    }
    aw_status st = o->vt->to_dev(o, arena, host->arena, aw_qblock_bytes(c));
    if (st != AW_OK) aw_qblock_dev_free(o, dev, host);
    return st;
}

void aw_qblock_dev_free(const aw_ops *o, aw_qblock *dev, const aw_qblock *host)
{
    if (!dev) return;
    aw_ops_mirror_free(o, dev->arena, host ? host->arena : NULL);
    memset(dev, 0, sizeof *dev);
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
