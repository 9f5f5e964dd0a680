/* aw_arch.c - what every family shares: widths, names, counts (see aw_arch.h). */
#include "aw_arch.h"

#include <stdio.h>
#include <string.h>

const aw_arch *aw_arch_of(const aw_model_config *c)
{
    return c->family == AW_FAMILY_LLAMA ? &aw_arch_llama : &aw_arch_opt;
}

int aw_arch_dim(const aw_model_config *c, aw_dim d)
{
    switch (d) {
    case AW_DIM_KV: return c->num_key_value_heads * c->head_dim;
    case AW_DIM_FFN: return c->ffn_dim;
    default: return c->hidden_size;
    }
}

int aw_arch_tap_width(const aw_model_config *c, aw_tap_id t)
{
    return aw_arch_dim(c, aw_arch_of(c)->tap[t].width);
}

int aw_arch_max_width(const aw_model_config *c)
{
    return c->ffn_dim > c->hidden_size ? c->ffn_dim : c->hidden_size;
}

size_t aw_arch_max_linear(const aw_model_config *c)
{
    const aw_arch *a = aw_arch_of(c);
    size_t m = 0;
    for (int l = 0; l < a->n_lin; l++) {
        size_t n = (size_t)aw_arch_dim(c, a->lin[l].in) * (size_t)aw_arch_dim(c, a->lin[l].out);
        m = n > m ? n : m;
    }
    return m;
}

uint64_t aw_arch_linear_params(const aw_model_config *c)
{
    const aw_arch *a = aw_arch_of(c);
    uint64_t n = 0;
    for (int l = 0; l < a->n_lin; l++)
        n += (uint64_t)aw_arch_dim(c, a->lin[l].in) * (uint64_t)aw_arch_dim(c, a->lin[l].out);
    return n;
}

int aw_arch_has_linear_bias(const aw_model_config *c, int l)
{
    if (c->family == AW_FAMILY_OPT) return c->enable_bias;
    return aw_arch_of(c)->lin[l].tap == AW_TAP_ATTN_IN || aw_arch_of(c)->lin[l].tap == AW_TAP_ATTN_OUT
               ? c->attention_bias
               : c->mlp_bias;
}

int aw_arch_has_norm_bias(const aw_model_config *c) { return aw_arch_of(c)->norm == AW_NORM_LAYER; }

const char *aw_arch_linear_short(const aw_arch *a, int l)
{
    const char *n = strrchr(a->lin[l].name, '.');
    return n ? n + 1 : a->lin[l].name;
}

int aw_arch_fold_rows(const aw_model_config *c, aw_tap_id t)
{
    const aw_arch *a = aw_arch_of(c);
    if (a->tap[t].fold != AW_FOLD_ROWS) return aw_arch_tap_width(c, t);
    return aw_arch_dim(c, a->lin[a->tap[t].producer].out);
}

int aw_arch_row_of(const aw_model_config *c, aw_tap_id t, int j)
{
    if (aw_arch_fold_rows(c, t) == aw_arch_tap_width(c, t)) return j;
    /* query head h reads KV head h / (heads / kv_heads) */
    int hd = c->head_dim, group = c->num_attention_heads / c->num_key_value_heads;
    return (j / hd / group) * hd + j % hd;
}

int aw_arch_tensor_name(const aw_model_config *c, int layer, aw_tensor_ref r, char *buf, size_t cap)
{
    const aw_arch *a = aw_arch_of(c);
    int n = -1;
    if (!buf || cap == 0) return -1;
    switch (r.kind) {
    case AW_T_LIN_W:
    case AW_T_LIN_B:
        if (layer >= 0 && r.index >= 0 && r.index < a->n_lin)
            n = snprintf(buf, cap, "%s.%d.%s.%s", a->layers_prefix, layer, a->lin[r.index].name,
                         r.kind == AW_T_LIN_W ? "weight" : "bias");
        break;
    case AW_T_NORM_W:
    case AW_T_NORM_B:
        if (layer >= 0 && r.index >= 0 && r.index < AW_NORM_COUNT)
            n = snprintf(buf, cap, "%s.%d.%s.%s", a->layers_prefix, layer, a->norm_name[r.index],
                         r.kind == AW_T_NORM_W ? "weight" : "bias");
        break;
    default:
        if (r.kind <= AW_T_HEAD && a->end_name[r.kind]) n = snprintf(buf, cap, "%s", a->end_name[r.kind]);
        break;
    }
    if (n < 0 || (size_t)n >= cap) {
        buf[0] = '\0';
        return -1;
    }
    return n;
}

void aw_arch_tensor_shape(const aw_model_config *c, aw_tensor_ref r, int *ndim, int64_t shape[2])
{
    const aw_arch *a = aw_arch_of(c);
    int64_t d = c->hidden_size;
    shape[0] = shape[1] = 0;
    *ndim = 1;
    switch (r.kind) {
    case AW_T_LIN_W:
        *ndim = 2; /* [out, in] as nn.Linear */
        shape[0] = aw_arch_dim(c, a->lin[r.index].out);
        shape[1] = aw_arch_dim(c, a->lin[r.index].in);
        return;
    case AW_T_LIN_B: shape[0] = aw_arch_dim(c, a->lin[r.index].out); return;
    case AW_T_EMBED:
    case AW_T_HEAD: *ndim = 2, shape[0] = c->vocab_size, shape[1] = c->word_embed_proj_dim; return;
    case AW_T_POS:
        *ndim = 2, shape[0] = (int64_t)c->max_position_embeddings + a->pos_offset, shape[1] = d;
        return;
    default: shape[0] = d; return; /* norms */
    }
}

uint64_t aw_config_block_params(const aw_model_config *c)
{
    const aw_arch *a = aw_arch_of(c);
    uint64_t n = aw_arch_linear_params(c), d = (uint64_t)c->hidden_size;
    for (int l = 0; l < a->n_lin; l++)
        if (aw_arch_has_linear_bias(c, l)) n += (uint64_t)aw_arch_dim(c, a->lin[l].out);
    return n + (aw_arch_has_norm_bias(c) ? 4 : 2) * d;
}

uint64_t aw_config_param_count(const aw_model_config *c)
{
    const aw_arch *a = aw_arch_of(c);
    uint64_t d = (uint64_t)c->hidden_size, wp = (uint64_t)c->word_embed_proj_dim;
    uint64_t n = (uint64_t)c->vocab_size * wp + (uint64_t)c->num_hidden_layers * aw_config_block_params(c);
    if (!c->tie_word_embeddings) n += (uint64_t)c->vocab_size * wp;
    if (a->end_name[AW_T_POS]) n += ((uint64_t)c->max_position_embeddings + (uint64_t)a->pos_offset) * d;
    /* HF OPTDecoder has a final LayerNorm only when pre-LN (not OPT-350m). */
    if (c->do_layer_norm_before) n += (aw_arch_has_norm_bias(c) ? 2 : 1) * d;
    /* project_in [d, wp] and project_out [wp, d], no bias. */
    if (wp != d) n += 2 * d * wp;
    return n;
}
