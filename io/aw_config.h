/*
 * aw_config.h - the model description: an OPT config.json read into a struct,
 * the built-in table of OPT shapes (for planning without weights), the
 * Hugging Face tensor names of each decoder block, and the check of what this
 * project can quantize.
 */
#ifndef AW_CONFIG_H
#define AW_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "aw_dtype.h"
#include "aw_status.h"

typedef struct {
    char name[32];              /* "opt-125m" for a table shape, else "" */
    char model_type[32];        /* "opt" */
    char activation_function[16];
    int hidden_size;            /* d */
    int num_hidden_layers;
    int num_attention_heads;
    int ffn_dim;
    int vocab_size;
    int max_position_embeddings;
    int word_embed_proj_dim;
    int do_layer_norm_before;   /* 1: pre-LN (all OPT but 350m) */
    int enable_bias;
    aw_dtype torch_dtype;       /* F16, BF16 or F32 */
    int pad_token_id, bos_token_id, eos_token_id;
} aw_model_config;

/* OPT's learned positions are offset by 2: the table has max_pos + 2 rows. */
#define AW_OPT_POS_OFFSET 2

/* Read and parse config.json at path. AW_ERR_CONFIG naming the file and the
 * key for a missing or mistyped field; non-OPT model_type is AW_ERR_UNSUPPORTED. */
aw_status aw_config_read(const char *path, aw_model_config *out);
/* AW_OK if this project can quantize the model; else AW_ERR_UNSUPPORTED
 * with a message (label: file or shape name) saying what is unsupported. */
aw_status aw_config_check_supported(const aw_model_config *c, const char *label);
/* Write config.json atomically, as transformers writes an OPT config.
 * quant_json, if not NULL, is a JSON object text stored as
 * "quantization_config". */
aw_status aw_config_write(const char *path, const aw_model_config *c, const char *quant_json);

/* Built-in OPT shapes: "opt-125m" ... "opt-175b" (also "facebook/opt-125m").
 * NULL if unknown. */
const aw_model_config *aw_shape_find(const char *name);
size_t aw_shape_count(void);
const aw_model_config *aw_shape_at(size_t i);

/* Parameters, tied LM head counted once. */
uint64_t aw_config_param_count(const aw_model_config *c);
/* Parameters of one decoder block. */
uint64_t aw_config_block_params(const aw_model_config *c);

/* The 16 tensors of an OPT decoder block. */
typedef enum {
    AW_BT_Q_W = 0, AW_BT_Q_B, AW_BT_K_W, AW_BT_K_B, AW_BT_V_W, AW_BT_V_B,
    AW_BT_O_W, AW_BT_O_B, AW_BT_LN1_W, AW_BT_LN1_B,
    AW_BT_FC1_W, AW_BT_FC1_B, AW_BT_FC2_W, AW_BT_FC2_B, AW_BT_LN2_W, AW_BT_LN2_B,
    AW_BT_COUNT
} aw_block_tensor;

/* The model-level tensors. */
typedef enum {
    AW_MT_EMBED_TOKENS = 0, AW_MT_EMBED_POSITIONS, AW_MT_FINAL_LN_W, AW_MT_FINAL_LN_B,
    AW_MT_COUNT
} aw_model_tensor;

/* "model.decoder.layers.<layer>.self_attn.q_proj.weight" etc. into buf;
 * returns the length, or -1 if it does not fit in cap. */
int aw_block_tensor_name(int layer, aw_block_tensor which, char *buf, size_t cap);
/* Shape of a block tensor: ndim 1 or 2. */
void aw_block_tensor_shape(const aw_model_config *c, aw_block_tensor which, int *ndim, int64_t shape[2]);
/* "model.decoder.embed_tokens.weight" etc. */
const char *aw_model_tensor_name(aw_model_tensor which);
void aw_model_tensor_shape(const aw_model_config *c, aw_model_tensor which, int *ndim, int64_t shape[2]);

#endif
