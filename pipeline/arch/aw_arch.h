/*
 * aw_arch.h - a model family as data. One descriptor per family
 * (aw_arch_opt.c, aw_arch_llama.c) says what a decoder block is made of:
 *
 *   linears    name, input and output widths, the tap that feeds it
 *   norms      two per block (before attention, before the MLP): LayerNorm
 *              with gain and bias, or RMSNorm with gain only
 *   taps       the four places a linear input is observed, with widths, and
 *              the fold point of each: the producer that absorbs 1/s (a
 *              norm's gain and bias, or a linear's rows) and whether
 *              SmoothQuant folds there
 *   tensors    the checkpoint tensors of a block and of the model's ends,
 *              in the order the family's files list them
 *   forward    the block forward as kernel calls (aw_ops.h)
 *   synth      the tensors a generated model needs
 *
 * Equalization, quantization, validation, the writer, eval and the planner
 * read the descriptor; none of them names a family. A fold into a linear's
 * rows is exact when what follows is linear or positive-homogeneous in that
 * operand: ReLU (OPT's fc1), the SwiGLU product in `up` (LLaMA), attention
 * in V per head; with grouped-query attention one factor serves every query
 * head of a KV group (aw_arch_row_of).
 */
#ifndef AW_ARCH_H
#define AW_ARCH_H

#include <stddef.h>
#include <stdint.h>

#include "aw_config.h"
#include "aw_status.h"

#define AW_LIN_MAX 7
#define AW_NORM_COUNT 2

/* The four taps of a pre-norm decoder block, by role. */
typedef enum {
    AW_TAP_ATTN_IN = 0, /* the first norm's output: input of q/k/v */
    AW_TAP_ATTN_OUT,    /* attention's output: input of the output projection */
    AW_TAP_MLP_IN,      /* the second norm's output: input of the MLP's first linears */
    AW_TAP_MLP_MID,     /* the MLP's hidden activation: input of its last linear */
    AW_TAP_COUNT
} aw_tap_id;

/* Widths a tensor dimension can have. */
typedef enum {
    AW_DIM_MODEL = 0, /* hidden_size (= heads * head_dim) */
    AW_DIM_KV,        /* num_key_value_heads * head_dim */
    AW_DIM_FFN,       /* ffn_dim / intermediate_size */
} aw_dim;

typedef enum { AW_NORM_LAYER = 0, AW_NORM_RMS } aw_norm_kind;
typedef enum { AW_FOLD_NORM = 0, AW_FOLD_ROWS } aw_fold_kind;

/* Linears 0-3 of every family are q, k, v and the output projection (the
 * attention half of a block is shared: aw_fwd_attention_half); the MLP's
 * follow. */
typedef struct {
    const char *name; /* "self_attn.q_proj": the tensor is <block>.<name>.weight */
    aw_dim in, out;
    aw_tap_id tap;    /* the tap feeding it */
} aw_arch_linear;

typedef struct {
    const char *name;      /* for reports: "ln1->qkv" */
    const char *consumers; /* for reports: "q_proj, k_proj, v_proj" */
    aw_dim width;
    aw_fold_kind fold;     /* what absorbs 1/s */
    int producer;          /* the norm (AW_FOLD_NORM) or the linear (AW_FOLD_ROWS) */
    int smoothquant;       /* 1: SmoothQuant equalizes here (the norm folds) */
} aw_arch_tap;

/* One checkpoint tensor of a block or of the model's ends. */
typedef enum {
    AW_T_LIN_W = 0, AW_T_LIN_B, AW_T_NORM_W, AW_T_NORM_B, /* block: index = linear or norm */
    AW_T_EMBED, AW_T_POS, AW_T_FINAL_W, AW_T_FINAL_B, AW_T_HEAD /* ends */
} aw_tensor_kind;

typedef struct {
    aw_tensor_kind kind;
    int index;
} aw_tensor_ref;

#define AW_BLOCK_TENSOR_MAX (2 * AW_LIN_MAX + 2 * AW_NORM_COUNT)
#define AW_END_TENSOR_MAX 5

struct aw_block;
struct aw_qblock;
struct aw_fwd_ws;

/* Called at each tap with the tap's input x (T, in) (see aw_forward.h). */
typedef aw_status (*aw_tap_fn)(void *ctx, aw_tap_id tap, const float *x, int T, int in);

typedef struct aw_arch {
    aw_family family;
    const char *label;         /* "OPT", "LLaMA": for messages */
    const char *layers_prefix; /* "model.decoder.layers" */
    int n_lin;
    aw_arch_linear lin[AW_LIN_MAX];
    aw_arch_tap tap[AW_TAP_COUNT];
    int grouped_kv;            /* 1: fewer KV heads than heads may be configured */
    int rope;                  /* 1: RoPE on q and k (rope_theta), else learned positions */
    aw_norm_kind norm;
    const char *norm_name[AW_NORM_COUNT]; /* "self_attn_layer_norm", ... */
    /* a block's tensors and the ends', in the family's file order; the
     * biases listed are present only where the config says so
     * (aw_arch_has_linear_bias, aw_arch_has_norm_bias), a tied head only in
     * the embedding */
    int n_block_tensors;
    aw_tensor_ref block_tensors[AW_BLOCK_TENSOR_MAX];
    int n_end_tensors;
    aw_tensor_ref end_tensors[AW_END_TENSOR_MAX];
    const char *end_name[AW_T_HEAD + 1]; /* by kind; NULL for kinds the family lacks */
    int pos_offset;                       /* rows of the position table before position 0 */
    /* h <- block(h): see aw_block_forward (aw_forward.h) */
    aw_status (*forward)(const aw_model_config *c, const struct aw_block *b, const struct aw_qblock *q,
                         float *h, int n_seq, int L, struct aw_fwd_ws *ws, aw_tap_fn fn, void *ctx);
} aw_arch;

/* The descriptor of c's family. */
const aw_arch *aw_arch_of(const aw_model_config *c);

/* A width of c. */
int aw_arch_dim(const aw_model_config *c, aw_dim d);
int aw_arch_tap_width(const aw_model_config *c, aw_tap_id t);
/* The widest linear input or output of c, and the largest linear (in*out). */
int aw_arch_max_width(const aw_model_config *c);
size_t aw_arch_max_linear(const aw_model_config *c);
/* Parameters of one block's linears (weights only). */
uint64_t aw_arch_linear_params(const aw_model_config *c);
/* Whether the checkpoint has biases on the linears / the norms. */
int aw_arch_has_linear_bias(const aw_model_config *c, int l);
int aw_arch_has_norm_bias(const aw_model_config *c);

/* The last part of a linear's name ("q_proj", "fc1"). */
const char *aw_arch_linear_short(const aw_arch *a, int l);

/* Row-fold producer row of tap channel j: the channel itself, or with
 * grouped-query attention at the attention output (width d, producer v of
 * width kv) the v row that query-head channel j reads. */
int aw_arch_row_of(const aw_model_config *c, aw_tap_id t, int j);
/* Rows of a tap's row-fold producer (= tap width but at a GQA fold). */
int aw_arch_fold_rows(const aw_model_config *c, aw_tap_id t);

/* Tensor names: "<prefix>.<layer>.<linear or norm>.weight|bias" and the
 * ends' names, into buf; the length, or -1 if it does not fit. */
int aw_arch_tensor_name(const aw_model_config *c, int layer, aw_tensor_ref r, char *buf, size_t cap);
/* Shape of a tensor (ndim 1 or 2). */
void aw_arch_tensor_shape(const aw_model_config *c, aw_tensor_ref r, int *ndim, int64_t shape[2]);

/* Parameters of a block and of the whole model (a tied head counted once). */
uint64_t aw_config_block_params(const aw_model_config *c);
uint64_t aw_config_param_count(const aw_model_config *c);

extern const aw_arch aw_arch_opt;
extern const aw_arch aw_arch_llama;

#endif
