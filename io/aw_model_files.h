/*
 * aw_model_files.h - the tensors of a Hugging Face model folder: either one
 * "model.safetensors" or shards listed by "model.safetensors.index.json"
 * ({"metadata": {...}, "weight_map": {tensor: shard file}}).
 *
 * Opening reads and validates the index and every shard's header (not the
 * data): shard names that leave the folder are refused (AW_ERR_INDEX_PATH),
 * a missing shard is AW_ERR_MISSING_SHARD, a tensor the index maps to a shard
 * that does not hold it (or held by a shard but not in the index) is
 * AW_ERR_INDEX, the same name in two shards is AW_ERR_ST_DUPLICATE.
 */
#ifndef AW_MODEL_FILES_H
#define AW_MODEL_FILES_H

#include <stddef.h>
#include <stdint.h>

#include "aw_safetensors.h"
#include "aw_status.h"

#define AW_INDEX_NAME "model.safetensors.index.json"
#define AW_SINGLE_NAME "model.safetensors"

typedef struct aw_model_files aw_model_files; /* opaque */

/* Open the tensors of the folder dir. Messages name the file and tensor. */
aw_status aw_mf_open(const char *dir, aw_model_files **out);
/* Release; accepts NULL. */
void aw_mf_close(aw_model_files *mf);

const char *aw_mf_dir(const aw_model_files *mf);
size_t aw_mf_count(const aw_model_files *mf);   /* tensors over all shards */
size_t aw_mf_shard_count(const aw_model_files *mf);
/* i-th tensor over all shards, in name order; *file gets the shard holding it. */
const aw_st_tensor *aw_mf_at(const aw_model_files *mf, size_t i, const aw_st_file **file);
/* Tensor by name: AW_ERR_MISSING_TENSOR naming the folder and the tensor. */
aw_status aw_mf_find(const aw_model_files *mf, const char *name,
                     const aw_st_file **file, const aw_st_tensor **t);
/* Total bytes of tensor data. */
uint64_t aw_mf_total_bytes(const aw_model_files *mf);

/* Serialise the opened folder (shard paths and header bytes) into a
 * malloc'd buffer, for rank 0 to broadcast; caller frees. */
aw_status aw_mf_export(const aw_model_files *mf, uint8_t **buf, size_t *len);
/* Rebuild from aw_mf_export's bytes: shard files are opened for their data
 * only (headers come from the buffer and are validated again). */
aw_status aw_mf_import(const void *buf, size_t len, aw_model_files **out);

/* Write model.safetensors.index.json atomically into dir: tensor_names[i]
 * lives in shard_names[i]; keys sorted; metadata.total_size = total_size. */
aw_status aw_mf_write_index(const char *dir, const char *const *tensor_names,
                            const char *const *shard_names, size_t n, uint64_t total_size);

#endif
