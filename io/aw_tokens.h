/*
 * aw_tokens.h - calibration token files (format in docs/token-file.md):
 * a 32-byte header ("AWEQTOK1", version, vocab size, sequence count and
 * length), n_seq x seq_len little-endian uint32 token ids, and an FNV-1a 64
 * checksum of the token bytes. The reader checks every field, the exact file
 * size, each id against the vocabulary and the checksum.
 */
#ifndef AW_TOKENS_H
#define AW_TOKENS_H

#include <stddef.h>
#include <stdint.h>

#include "aw_status.h"

#define AW_TOKENS_MAGIC "AWEQTOK1"
#define AW_TOKENS_VERSION 1u
#define AW_TOKENS_HEADER_SIZE 32u

typedef struct {
    uint32_t vocab_size;
    uint32_t seq_len;
    uint64_t n_seq;
    uint32_t *ids; /* n_seq * seq_len, row-major; owned */
} aw_tokens;

/* Read and validate; AW_ERR_TOKENS naming the file for any defect. */
aw_status aw_tokens_read(const char *path, aw_tokens *out);
/* Write atomically. AW_ERR_ARG if an id is >= vocab_size. */
aw_status aw_tokens_write(const char *path, const aw_tokens *t);
/* Release ids; accepts a zeroed struct. */
void aw_tokens_free(aw_tokens *t);

#endif
