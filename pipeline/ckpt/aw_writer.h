/*
 * aw_writer.h - the quantized checkpoint: a Hugging Face model folder in the
 * compressed-tensors format (docs/checkpoint-format.md). W8A8 is
 * "int-quantized": per quantized Linear an I8 `weight`, `weight_scale` and
 * `input_scale` (per tensor, static) and the corrected `bias`. Weight-only
 * schemes are "pack-quantized" as compressed-tensors 0.20 writes it: the
 * codes packed densely into I32 `weight_packed`, `weight_scale` per (row,
 * group), `weight_shape`, and `weight_zero_point` (packed down the rows)
 * when asymmetric, plus the bias. Schemes with dynamic activations are
 * "int-quantized" as the library writes them: an I8 `weight` of the signed
 * values (code - 2^(b-1)), `weight_scale` per (row, group), an I8
 * `weight_zero_point` [out, ng] when asymmetric, no input scale, plus the
 * bias. Either way the folded LayerNorms and the
 * untouched embeddings and final LayerNorm in the model's dtype;
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

/* The final checkpoint has one file for the model-level tensors and one per
 * decoder block (model-00001-of-N: embeddings and final LayerNorm;
 * model-0000(l+2)-of-N: block l), so its bytes do not depend on how blocks
 * were spread over ranks. */
int aw_out_file_count(const aw_model_config *c);
void aw_out_file_name(const aw_model_config *c, int file_index, char *buf, size_t cap);

/* The compressed-tensors format of weight-only checkpoints, and the release
 * whose bit packing they follow (config.json's "version"); the format of
 * W8A8 and of dynamic-activation schemes (unpacked I8 weights). */
#define AW_CT_PACKED_FORMAT "pack-quantized"
#define AW_CT_PACKED_VERSION "0.20.1"
#define AW_CT_INT_FORMAT "int-quantized"

/* The quantization_config JSON text for config.json (malloc'd; NULL without
 * memory), from m->scheme (W8A8: int-quantized; weight-only:
 * pack-quantized, input_activations null; dynamic: int-quantized with the
 * weight-only weights entry and input_activations {abits, int, symmetric,
 * strategy token | group, dynamic true}) and m->act_order (actorder
 * "weight"). */
char *aw_quant_config_json(const aw_method *m);

/* Tensors of a block in the final checkpoint: at most AW_BLOCK_OUT_TENSORS
 * (per linear at most 5: weight_packed, weight_scale, weight_shape,
 * weight_zero_point, bias; dynamic at most 4: weight, weight_scale,
 * weight_zero_point, bias); a family without biases gets them only when
 * bias correction adds them. */
#define AW_BLOCK_OUT_TENSORS (2 * AW_NORM_COUNT + 5 * AW_LIN_MAX)
int aw_block_out_tensors(const aw_model_config *c, const aw_method *m);

/* Serialise quantized block `layer` as safetensors bytes (malloc'd): the
 * final file's tensors; with run_key non-NULL (a shard), also the block's
 * equalization factors and uncorrected biases as "aweq.*" tensors (what
 * validation needs, so a resumed run can reuse the block) and the key as
 * metadata "aweq_run". Dynamic schemes: per linear `weight` I8 (code -
 * 2^(b-1)), `weight_scale` [out, ng], `weight_zero_point` I8 [out, ng]
 * (zero - 2^(b-1)) when asymmetric. q must have m->scheme; AW_ERR_ARG if
 * not, if a coded step is not a value of m->scale_dtype, a symmetric zero
 * point is not 2^(b-1), a dynamic wq is not code - zero (any of which would
 * not survive the round trip), or the scheme keeps fp channels. */
aw_status aw_block_serialize(const aw_model_config *c, int layer, const aw_qblock *q,
                             const aw_method *m, const char *run_key, uint8_t **out, size_t *out_len);
/* Rebuild quantized block `layer` (created with the scheme the shard was
 * written with) from a shard's bytes: exactly the block serialised. AW_OK
 * only if every tensor is there with its shape and the shard's "aweq_run"
 * equals run_key; AW_ERR_CHECKSUM (stale or foreign shard) or the reader's
 * error otherwise, naming label. */
aw_status aw_block_from_shard(const aw_model_config *c, int layer, const uint8_t *bytes, size_t len,
                              const char *label, const char *run_key, aw_qblock *q);

/* The resume point: block `layer` as "<work_dir>/block-LLLLL.safetensors.zst",
 * zstd with its content checksum, written atomically. */
aw_status aw_shard_write(const char *work_dir, int layer, const uint8_t *st_bytes, size_t len);
/* "<work_dir>/block-LLLLL.safetensors.zst" (malloc'd; NULL without memory). */
char *aw_shard_path(const char *work_dir, int layer);
/* Remove the shards of layers [0, n_layers) from work_dir (missing ones are fine). */
void aw_shard_remove_all(const char *work_dir, int n_layers);
/* Read and decompress a shard (checksum verified): AW_ERR_ZSTD or
 * AW_ERR_CHECKSUM naming the file when it is damaged; bytes malloc'd. */
aw_status aw_shard_read(const char *work_dir, int layer, uint8_t **out, size_t *out_len);
/* Gather: the final file of block `layer` in out_dir, from its shard. */
aw_status aw_gather_block(const char *work_dir, const char *out_dir, const aw_model_config *c, int layer);

/* The model-level file (tensors copied as stored in the input). */
aw_status aw_write_ends(const char *out_dir, const aw_model_config *c, const aw_model_files *mf);
/* index.json, config.json with its quantization_config, tokenizer files
 * from model_dir when present, and aweq_report.json. */
aw_status aw_write_meta(const char *out_dir, const char *model_dir, const aw_model_config *c,
                        const aw_model_files *mf, const aw_method *m, const char *report_json);

#endif
