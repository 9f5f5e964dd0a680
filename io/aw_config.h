/*
 * aw_config.h - the model description: a config.json (OPT or LLaMA family)
 * read into one struct, the built-in table of shapes (for planning without
 * weights), and the check of what this project can quantize. What a family's
 * blocks are made of (tensors, forward, folds) is its descriptor
 * (pipeline/arch/aw_arch.h); this file only reads and writes the JSON.
 */
#ifndef AW_CONFIG_H
#define AW_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "aw_dtype.h"
#include "aw_status.h"

/* The model families this project knows (config.json "model_type"). */
typedef enum { AW_FAMILY_OPT = 0, AW_FAMILY_LLAMA, AW_FAMILY_COUNT } aw_family;

typedef struct {
    char name[32];              /* "opt-125m" for a table shape, else "" */
    char model_type[32];        /* "opt", "llama" */
    aw_family family;
    char activation_function[16]; /* OPT "activation_function", LLaMA "hidden_act" */
    int hidden_size;            /* d */
    int num_hidden_layers;
    int num_attention_heads;
    int num_key_value_heads;    /* = num_attention_heads without grouped-query attention */
    int head_dim;               /* hidden_size / num_attention_heads */
    int ffn_dim;                /* OPT ffn_dim, LLaMA intermediate_size */
    int vocab_size;
    int max_position_embeddings;
    int word_embed_proj_dim;
    int do_layer_norm_before;   /* 1: pre-LN (all OPT but 350m) */
    int enable_bias;
    aw_dtype torch_dtype;       /* F16, BF16 or F32 */
    int pad_token_id, bos_token_id, eos_token_id;
    /* LLaMA */
    int tie_word_embeddings;    /* 1: the head is the embedding (OPT always) */
    double rms_norm_eps;
    double rope_theta;
    int attention_bias, mlp_bias; /* biases in the checkpoint (written when
                                     bias correction adds them) */
} aw_model_config;

/* OPT's learned positions are offset by 2: the table has max_pos + 2 rows. */
#define AW_OPT_POS_OFFSET 2

/* Read and parse config.json at path. AW_ERR_CONFIG naming the file and the
 * key for a missing or mistyped field; an unknown model_type, rope_scaling,
 * hidden_act or head layout is AW_ERR_UNSUPPORTED naming file and key. */
aw_status aw_config_read(const char *path, aw_model_config *out);
/* AW_OK if this project can quantize the model; else AW_ERR_UNSUPPORTED
 * with a message (label: file or shape name) saying what is unsupported. */
aw_status aw_config_check_supported(const aw_model_config *c, const char *label);
/* Write config.json atomically, as transformers writes the family's config.
 * quant_json, if not NULL, is a JSON object text stored as
 * "quantization_config". */
aw_status aw_config_write(const char *path, const aw_model_config *c, const char *quant_json);

/* Built-in shapes: "opt-125m" ... "opt-175b" (also "facebook/opt-125m"),
 * "llama-3-8b", "llama-3-70b", "llama-3-405b" (also "meta-llama/..."), and
 * small generated LLaMA shapes. NULL if unknown. */
const aw_model_config *aw_shape_find(const char *name);
size_t aw_shape_count(void);
const aw_model_config *aw_shape_at(size_t i);

/* (Parameter counts need the family's descriptor: aw_arch.h.) */

/* "opt" | "llama" (the family's model_type). */
const char *aw_family_name(aw_family f);

#endif
