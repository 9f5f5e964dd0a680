/*
 * aw_writer.h - the quantized checkpoint: a Hugging Face model folder in the
 * compressed-tensors "int-quantized" format (docs/checkpoint-format.md):
 * per quantized Linear an I8 `weight`, `weight_scale` and `input_scale`
 * (per tensor, static) and the corrected `bias`; the folded LayerNorms and
 * the untouched embeddings and final LayerNorm in the model's dtype;
 * config.json with its quantization_config, the index, the tokenizer files
 * when present, and aweq_report.json. Built in a partial folder and renamed.
 */
#ifndef AW_WRITER_H
#define AW_WRITER_H

#include <stdint.h>

#include "aw_config.h"
#include "aw_model.h"
#include "aw_model_files.h"
#include "aw_quant.h"

/* Shard size limit of the final checkpoint (model-level tensors always come
 * first, blocks packed in order after them). */
#define AW_OUT_SHARD_BYTES (2000ull * 1000 * 1000)

/* The quantization_config JSON text for config.json (malloc'd). */
char *aw_quant_config_json(const aw_method *m);

/* Tensors of quantized block `layer` as safetensors entries pointing into q
 * (names in names_buf, AW_BLOCK_OUT_TENSORS entries of 128 bytes; scalar
 * scales in scale_buf, 2 * AW_LIN_COUNT * 4 bytes; LayerNorm and bias values
 * converted into param_buf of aw_block_out_param_bytes() bytes). */
#define AW_BLOCK_OUT_TENSORS (4 + 4 * AW_LIN_COUNT)
size_t aw_block_out_param_bytes(const aw_opt_config *c, const aw_method *m);
aw_status aw_block_out_entries(const aw_opt_config *c, int layer, const aw_qblock *q,
                               const aw_method *m, char (*names_buf)[128], uint8_t *scale_buf,
                               uint8_t *param_buf, aw_st_entry *entries);

/* Write the whole checkpoint into out_dir (absent or empty) from the
 * quantized blocks of all n_layers layers. */
aw_status aw_write_checkpoint(const char *out_dir, const char *model_dir, const aw_opt_config *c,
                              const aw_model_files *mf, const aw_qblock *q, int n_layers,
                              const aw_method *m, const char *report_json);

#endif
