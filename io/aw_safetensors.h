/*
 * aw_safetensors.h - safetensors reader and writer.
 *
 * Format: an 8-byte little-endian header length N, N bytes of JSON
 * ({"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets"}}),
 * then the data section; offsets are relative to its start.
 *
 * Reader: the header is untrusted. aw_st_open() checks the length against the
 * file and AW_ST_HEADER_CAP, parses the JSON strictly (duplicate keys refused),
 * checks every dtype, that shape x element size == end - begin without
 * overflow, that every [begin, end) lies inside the data section, and that the
 * tensors tile the data section exactly (no overlap, no gap) as the format
 * requires. Tensor data is read with pread on demand; the whole file is never
 * read. Every error names the file (and the tensor) in aw_err_message().
 *
 * Writer: deterministic bytes. Tensors are laid out as the reference
 * safetensors library lays them out (by dtype write rank, descending, then by
 * name: every tensor aligned to its element size), metadata keys sorted, the
 * header padded with spaces to a multiple of 8. Files are written under a
 * temporary name and renamed.
 */
#ifndef AW_SAFETENSORS_H
#define AW_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "aw_dtype.h"
#include "aw_status.h"

#define AW_ST_MAX_DIMS 8
#define AW_ST_HEADER_CAP (100u * 1024u * 1024u) /* as the reference library */

typedef struct {
    char *name;                      /* owned by the file */
    aw_dtype dtype;
    int ndim;
    int64_t shape[AW_ST_MAX_DIMS];
    uint64_t begin, end;             /* byte offsets in the data section */
} aw_st_tensor;

typedef struct aw_st_file aw_st_file; /* opaque */

/* Open and validate a safetensors file. On failure *out is NULL and the
 * message names path (and the tensor). */
aw_status aw_st_open(const char *path, aw_st_file **out);
/* Validate a safetensors byte stream held in memory (a decompressed shard,
 * a fuzz input). buf must outlive the file; label names it in messages. */
aw_status aw_st_open_mem(const void *buf, size_t len, const char *label, aw_st_file **out);
/* Release; accepts NULL. */
void aw_st_close(aw_st_file *f);

/* The 8-byte prefix and JSON header of an open file, re-read into a
 * malloc'd buffer (caller frees): what rank 0 broadcasts. */
aw_status aw_st_header_bytes(const aw_st_file *f, uint8_t **out, size_t *len);
/* Open path for its data, taking the prefix + header from hdr (as another
 * rank read it) instead of reading them; validated against this file's size
 * exactly as aw_st_open does. */
aw_status aw_st_open_with_header(const char *path, const void *hdr, size_t hdr_len, aw_st_file **out);

const char *aw_st_label(const aw_st_file *f);     /* the path or label */
size_t aw_st_count(const aw_st_file *f);          /* number of tensors */
uint64_t aw_st_data_offset(const aw_st_file *f);  /* 8 + N: file offset of the data section */
/* i-th tensor in name order (strcmp). */
const aw_st_tensor *aw_st_at(const aw_st_file *f, size_t i);
/* Tensor by name, NULL if absent (no message set). */
const aw_st_tensor *aw_st_find(const aw_st_file *f, const char *name);
/* Metadata value, NULL if absent. */
const char *aw_st_metadata(const aw_st_file *f, const char *key);
size_t aw_st_metadata_count(const aw_st_file *f);
/* i-th metadata entry in key order. */
void aw_st_metadata_at(const aw_st_file *f, size_t i, const char **key, const char **value);

/* Number of elements of a tensor (product of shape; 1 for a scalar). */
uint64_t aw_st_numel(const aw_st_tensor *t);

/* Copy a tensor's raw bytes into dst (capacity dst_cap bytes, >= end-begin). */
aw_status aw_st_read(const aw_st_file *f, const aw_st_tensor *t, void *dst, size_t dst_cap);
/* Read a float tensor (F32, F16, BF16, F64) converted to f32 into dst
 * (capacity dst_count floats). AW_ERR_DTYPE naming file and tensor for
 * other dtypes. */
aw_status aw_st_read_f32(const aw_st_file *f, const aw_st_tensor *t, float *dst, size_t dst_count);

/* One tensor to write: data holds numel * dtype size bytes, row-major. */
typedef struct {
    const char *name;
    aw_dtype dtype;
    int ndim;
    int64_t shape[AW_ST_MAX_DIMS];
    const void *data;
} aw_st_entry;

typedef struct {
    const char *key;
    const char *value;
} aw_st_meta;

/* Bytes the serialised file will take (header included). */
aw_status aw_st_serialized_size(const aw_st_entry *entries, size_t n,
                                const aw_st_meta *meta, size_t n_meta, uint64_t *size);
/* Serialise into a malloc'd buffer (*out, *out_len); caller frees.
 * AW_ERR_ARG for a duplicate or empty name, bad ndim or negative dim. */
aw_status aw_st_serialize(const aw_st_entry *entries, size_t n,
                          const aw_st_meta *meta, size_t n_meta,
                          uint8_t **out, size_t *out_len);
/* Write a file atomically, streaming the tensor data (no whole-file buffer). */
aw_status aw_st_write_file(const char *path, const aw_st_entry *entries, size_t n,
                           const aw_st_meta *meta, size_t n_meta);

#endif
