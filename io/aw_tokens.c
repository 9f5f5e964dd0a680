/* aw_tokens.c - calibration token files; the byte layout is in
 * docs/token-file.md. Every integer is little-endian and is packed and
 * unpacked byte by byte, so the code does not depend on the host order. */
#include "aw_tokens.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aw_fs.h"

#define AW_FNV64_BASIS 0xcbf29ce484222325ull
#define AW_FNV64_PRIME 0x100000001b3ull
#define AW_TOKENS_TRAILER_SIZE 8u

/* Header offsets (bytes). */
#define AW_TOK_OFF_MAGIC 0
#define AW_TOK_OFF_VERSION 8
#define AW_TOK_OFF_VOCAB 12
#define AW_TOK_OFF_NSEQ 16
#define AW_TOK_OFF_SEQLEN 24
#define AW_TOK_OFF_RESERVED 28
_Static_assert(AW_TOK_OFF_RESERVED + 4 == AW_TOKENS_HEADER_SIZE, "header is 32 bytes");
_Static_assert(sizeof(AW_TOKENS_MAGIC) - 1 == 8, "magic is 8 bytes");

static uint64_t fnv1a64(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= AW_FNV64_PRIME;
    }
    return h;
}

static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t ld64(const uint8_t *p)
{
    return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32;
}

static void st32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void st64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Bytes of n_seq * seq_len ids, or 0 if that overflows what a file and a
 * size_t can hold (the header's counts are untrusted). */
static uint64_t ids_bytes(uint64_t n_seq, uint32_t seq_len)
{
    uint64_t limit = (uint64_t)SIZE_MAX < UINT64_MAX / 2 ? (uint64_t)SIZE_MAX : UINT64_MAX / 2;
    limit -= AW_TOKENS_HEADER_SIZE + AW_TOKENS_TRAILER_SIZE;
    if (n_seq == 0 || seq_len == 0 || n_seq > limit / 4 / seq_len) return 0;
    return n_seq * seq_len * 4;
}

aw_status aw_tokens_read(const char *path, aw_tokens *out)
{
    if (!path || !out) return AW_FAIL(AW_ERR_ARG, "aw_tokens_read: NULL argument");
    memset(out, 0, sizeof *out);
    aw_status st = AW_OK;
    uint32_t *ids = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return AW_FAIL(AW_ERR_IO, "%s: cannot open token file: %s", path, strerror(errno));

    struct stat sb;
    AW_GOTO_IF(fstat(fd, &sb) != 0, AW_ERR_IO, "%s: cannot stat token file: %s", path,
               strerror(errno));
    AW_GOTO_IF(!S_ISREG(sb.st_mode), AW_ERR_TOKENS, "%s: token file is not a regular file", path);
    uint64_t fsize = (uint64_t)sb.st_size;
    AW_GOTO_IF(fsize < AW_TOKENS_HEADER_SIZE, AW_ERR_TOKENS,
               "%s: token file truncated: %llu bytes, shorter than the %u-byte header", path,
               (unsigned long long)fsize, AW_TOKENS_HEADER_SIZE);

    uint8_t h[AW_TOKENS_HEADER_SIZE];
    AW_CHECK(aw_pread_full(fd, h, sizeof h, 0, path));
    AW_GOTO_IF(memcmp(h + AW_TOK_OFF_MAGIC, AW_TOKENS_MAGIC, 8) != 0, AW_ERR_TOKENS,
               "%s: not a token file (magic is not \"%s\")", path, AW_TOKENS_MAGIC);
    uint32_t version = ld32(h + AW_TOK_OFF_VERSION);
    uint32_t vocab = ld32(h + AW_TOK_OFF_VOCAB);
    uint64_t n_seq = ld64(h + AW_TOK_OFF_NSEQ);
    uint32_t seq_len = ld32(h + AW_TOK_OFF_SEQLEN);
    uint32_t reserved = ld32(h + AW_TOK_OFF_RESERVED);
    AW_GOTO_IF(version != AW_TOKENS_VERSION, AW_ERR_TOKENS,
               "%s: token file version %u, this program reads version %u", path, version,
               AW_TOKENS_VERSION);
    AW_GOTO_IF(reserved != 0, AW_ERR_TOKENS, "%s: reserved header field is %u, must be 0", path,
               reserved);
    AW_GOTO_IF(vocab == 0, AW_ERR_TOKENS, "%s: vocab_size is 0", path);
    AW_GOTO_IF(n_seq == 0, AW_ERR_TOKENS, "%s: n_seq is 0", path);
    AW_GOTO_IF(seq_len == 0, AW_ERR_TOKENS, "%s: seq_len is 0", path);
    uint64_t nbytes = ids_bytes(n_seq, seq_len);
    AW_GOTO_IF(nbytes == 0, AW_ERR_TOKENS, "%s: n_seq %llu x seq_len %u ids overflow", path,
               (unsigned long long)n_seq, seq_len);

    /* Size first: a bogus header must not make us allocate. */
    uint64_t want = AW_TOKENS_HEADER_SIZE + nbytes + AW_TOKENS_TRAILER_SIZE;
    AW_GOTO_IF(fsize < want, AW_ERR_TOKENS,
               "%s: token file truncated: %llu bytes, header (n_seq %llu, seq_len %u) needs %llu",
               path, (unsigned long long)fsize, (unsigned long long)n_seq, seq_len,
               (unsigned long long)want);
    AW_GOTO_IF(fsize > want, AW_ERR_TOKENS,
               "%s: token file has %llu trailing bytes after the checksum", path,
               (unsigned long long)(fsize - want));

    ids = malloc((size_t)nbytes);
    AW_GOTO_IF(!ids, AW_ERR_NOMEM, "%s: cannot allocate %llu bytes of token ids", path,
               (unsigned long long)nbytes);
    AW_CHECK(aw_pread_full(fd, ids, (size_t)nbytes, AW_TOKENS_HEADER_SIZE, path));
    uint8_t tr[AW_TOKENS_TRAILER_SIZE];
    AW_CHECK(aw_pread_full(fd, tr, sizeof tr, AW_TOKENS_HEADER_SIZE + nbytes, path));

    /* The checksum covers the bytes as stored, so check it before decoding. */
    uint64_t sum = fnv1a64(AW_FNV64_BASIS, (const uint8_t *)ids, (size_t)nbytes);
    uint64_t stored = ld64(tr);
    AW_GOTO_IF(sum != stored, AW_ERR_TOKENS,
               "%s: token checksum mismatch (stored %016llx, computed %016llx): file corrupted",
               path, (unsigned long long)stored, (unsigned long long)sum);

    /* Decode in place: each slot is read whole before it is written. */
    size_t n = (size_t)(nbytes / 4);
    const uint8_t *raw = (const uint8_t *)ids;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = ld32(raw + 4 * i);
        AW_GOTO_IF(id >= vocab, AW_ERR_TOKENS,
                   "%s: sequence %llu position %llu: token id %u >= vocab_size %u", path,
                   (unsigned long long)(i / seq_len), (unsigned long long)(i % seq_len), id,
                   vocab);
        ids[i] = id;
    }

    close(fd);
    out->vocab_size = vocab;
    out->seq_len = seq_len;
    out->n_seq = n_seq;
    out->ids = ids;
    return AW_OK;

fail:
    free(ids);
    close(fd);
    return st;
}

aw_status aw_tokens_write(const char *path, const aw_tokens *t)
{
    if (!path || !t) return AW_FAIL(AW_ERR_ARG, "aw_tokens_write: NULL argument");
    AW_RETURN_IF(t->vocab_size == 0 || t->n_seq == 0 || t->seq_len == 0 || !t->ids, AW_ERR_ARG,
                 "%s: token set needs vocab_size, n_seq and seq_len > 0 and ids "
                 "(vocab %u, n_seq %llu, seq_len %u)",
                 path, t->vocab_size, (unsigned long long)t->n_seq, t->seq_len);
    uint64_t nbytes = ids_bytes(t->n_seq, t->seq_len);
    AW_RETURN_IF(nbytes == 0, AW_ERR_ARG, "%s: n_seq %llu x seq_len %u ids overflow", path,
                 (unsigned long long)t->n_seq, t->seq_len);

    size_t n = (size_t)(nbytes / 4);
    size_t total = AW_TOKENS_HEADER_SIZE + (size_t)nbytes + AW_TOKENS_TRAILER_SIZE;
    uint8_t *buf = malloc(total);
    AW_RETURN_IF(!buf, AW_ERR_NOMEM, "%s: cannot allocate %zu bytes for the token file", path,
                 total);

    memcpy(buf + AW_TOK_OFF_MAGIC, AW_TOKENS_MAGIC, 8);
    st32(buf + AW_TOK_OFF_VERSION, AW_TOKENS_VERSION);
    st32(buf + AW_TOK_OFF_VOCAB, t->vocab_size);
    st64(buf + AW_TOK_OFF_NSEQ, t->n_seq);
    st32(buf + AW_TOK_OFF_SEQLEN, t->seq_len);
    st32(buf + AW_TOK_OFF_RESERVED, 0);
    uint8_t *p = buf + AW_TOKENS_HEADER_SIZE;
    for (size_t i = 0; i < n; i++) {
        if (t->ids[i] >= t->vocab_size) {
            free(buf);
            return AW_FAIL(AW_ERR_ARG,
                           "%s: sequence %llu position %llu: token id %u >= vocab_size %u", path,
                           (unsigned long long)(i / t->seq_len),
                           (unsigned long long)(i % t->seq_len), t->ids[i], t->vocab_size);
        }
        st32(p + 4 * i, t->ids[i]);
    }
    st64(p + nbytes, fnv1a64(AW_FNV64_BASIS, p, (size_t)nbytes));

    aw_status st = aw_write_file_atomic(path, buf, total);
    free(buf);
    return st;
}

void aw_tokens_free(aw_tokens *t)
{
    if (!t) return;
    free(t->ids);
    memset(t, 0, sizeof *t);
}
