/* aw_model.c - block parameters in memory (see aw_model.h). */
#include "aw_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const aw_linear_names[AW_LIN_COUNT] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "fc1", "fc2"};
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

static void linear_dims(const aw_opt_config *c, aw_linear_id l, int *in, int *out)
{
    int d = c->hidden_size, f = c->ffn_dim;
    *in = l == AW_LIN_FC2 ? f : d;
    *out = l == AW_LIN_FC1 ? f : d;
}

static size_t block_floats(const aw_opt_config *c)
{
    size_t n = 4 * (size_t)c->hidden_size;
    for (int l = 0; l < AW_LIN_COUNT; l++) {
        int in, out;
        linear_dims(c, (aw_linear_id)l, &in, &out);
        n += (size_t)in * out + out;
    }
    return n;
}

aw_status aw_block_create(const aw_opt_config *c, aw_block *b)
{
    memset(b, 0, sizeof *b);
    size_t n = block_floats(c);
    b->arena = malloc(n * sizeof(float));
    AW_RETURN_IF(!b->arena, AW_ERR_NOMEM, "out of memory for a block of %zu parameters", n);
    float *p = b->arena;
    int d = c->hidden_size;
    for (int l = 0; l < AW_LIN_COUNT; l++) {
        aw_linear *ln = &b->lin[l];
        linear_dims(c, (aw_linear_id)l, &ln->in, &ln->out);
        ln->w = p;
        p += (size_t)ln->in * ln->out;
        ln->b = p;
        p += ln->out;
    }
    b->ln1_g = p, p += d;
    b->ln1_b = p, p += d;
    b->ln2_g = p, p += d;
    b->ln2_b = p, p += d;
    return AW_OK;
}

void aw_block_destroy(aw_block *b)
{
    if (!b) return;
    free(b->arena);
    memset(b, 0, sizeof *b);
}

void aw_block_copy(const aw_opt_config *c, aw_block *dst, const aw_block *src)
{
    memcpy(dst->arena, src->arena, block_floats(c) * sizeof(float));
}

/* Read a named f32 view, checking shape (done by inspect's check too) and values. */
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

aw_status aw_block_load(const aw_opt_config *c, const aw_model_files *mf, int layer, aw_block *b)
{
    char name[128];
    float *dst[AW_BT_COUNT] = {
        [AW_BT_Q_W] = b->lin[AW_LIN_Q].w,     [AW_BT_Q_B] = b->lin[AW_LIN_Q].b,
        [AW_BT_K_W] = b->lin[AW_LIN_K].w,     [AW_BT_K_B] = b->lin[AW_LIN_K].b,
        [AW_BT_V_W] = b->lin[AW_LIN_V].w,     [AW_BT_V_B] = b->lin[AW_LIN_V].b,
        [AW_BT_O_W] = b->lin[AW_LIN_O].w,     [AW_BT_O_B] = b->lin[AW_LIN_O].b,
        [AW_BT_FC1_W] = b->lin[AW_LIN_FC1].w, [AW_BT_FC1_B] = b->lin[AW_LIN_FC1].b,
        [AW_BT_FC2_W] = b->lin[AW_LIN_FC2].w, [AW_BT_FC2_B] = b->lin[AW_LIN_FC2].b,
        [AW_BT_LN1_W] = b->ln1_g,             [AW_BT_LN1_B] = b->ln1_b,
        [AW_BT_LN2_W] = b->ln2_g,             [AW_BT_LN2_B] = b->ln2_b,
    };
    for (int t = 0; t < AW_BT_COUNT; t++) {
        int ndim;
        int64_t shape[2];
        aw_block_tensor_shape(c, (aw_block_tensor)t, &ndim, shape);
        aw_block_tensor_name(layer, (aw_block_tensor)t, name, sizeof name);
        AW_TRY(load_tensor(mf, name, dst[t], (size_t)shape[0] * (size_t)(ndim == 2 ? shape[1] : 1)));
    }
    return AW_OK;
}

aw_status aw_qblock_create(const aw_opt_config *c, aw_qblock *q)
{
    memset(q, 0, sizeof *q);
    AW_TRY(aw_block_create(c, &q->eq));
    size_t n_i8 = 0, n_f = 0;
    for (int l = 0; l < AW_LIN_COUNT; l++) {
        n_i8 += (size_t)q->eq.lin[l].in * q->eq.lin[l].out;
        n_f += (size_t)q->eq.lin[l].out;
    }
    size_t tap_in[AW_TAP_COUNT] = {(size_t)c->hidden_size, (size_t)c->hidden_size,
                                   (size_t)c->hidden_size, (size_t)c->ffn_dim};
    for (int t = 0; t < AW_TAP_COUNT; t++) n_f += tap_in[t];
    /* floats first (alignment), then the int8 codes */
    q->arena = malloc(n_f * sizeof(float) + n_i8);
    if (!q->arena) {
        aw_block_destroy(&q->eq);
        return AW_FAIL(AW_ERR_NOMEM, "out of memory for a quantized block");
    }
    float *pf = q->arena;
    for (int l = 0; l < AW_LIN_COUNT; l++) {
        q->bias[l] = pf;
        pf += q->eq.lin[l].out;
    }
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        q->s[t] = pf;
        pf += tap_in[t];
    }
    int8_t *pi = (int8_t *)pf;
    for (int l = 0; l < AW_LIN_COUNT; l++) {
        q->wq[l] = pi;
        pi += (size_t)q->eq.lin[l].in * q->eq.lin[l].out;
    }
    return AW_OK;
}

void aw_qblock_destroy(aw_qblock *q)
{
    if (!q) return;
    aw_block_destroy(&q->eq);
    free(q->arena);
    memset(q, 0, sizeof *q);
}

aw_status aw_ends_load(const aw_opt_config *c, const aw_model_files *mf, aw_model_ends *e)
{
    memset(e, 0, sizeof *e);
    size_t d = (size_t)c->hidden_size, v = (size_t)c->vocab_size;
    size_t p = (size_t)c->max_position_embeddings + AW_OPT_POS_OFFSET;
    e->arena = malloc((v * d + p * d + 2 * d) * sizeof(float));
    AW_RETURN_IF(!e->arena, AW_ERR_NOMEM, "out of memory for the embeddings (%zu x %zu)", v, d);
    e->embed = e->arena;
    e->pos = e->embed + v * d;
    e->lnf_g = e->pos + p * d;
    e->lnf_b = e->lnf_g + d;
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
