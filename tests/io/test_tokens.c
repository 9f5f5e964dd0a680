/* test_tokens.c - the calibration token file: a round trip, the exact bytes
 * of the example in docs/token-file.md, and one test per defect the reader
 * must refuse. Defective files are made by patching a good one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aw_tokens.h"
#include "testutil.h"

typedef struct {
    char *dir;
    char *path; /* dir/calib.tok */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = aw_test_tmpdir();
    size_t n = strlen(f->dir) + 16;
    f->path = malloc(n);
    assert_non_null(f->path);
    snprintf(f->path, n, "%s/calib.tok", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    aw_test_rmtree(f->dir);
    free(f->dir);
    free(f->path);
    free(f);
    return 0;
}

/* Independent of the code under test, so a shared mistake cannot hide. */
static uint64_t fnv1a64(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

/* A good file of 3 sequences x 5 tokens, vocab 1000; returns its bytes. */
static uint8_t *write_good(const char *path, size_t *n)
{
    uint32_t ids[15];
    for (uint32_t i = 0; i < 15; i++) ids[i] = (i * 997u + 3u) % 1000u;
    ids[14] = 999; /* vocab - 1 is a valid id */
    aw_tokens t = {.vocab_size = 1000, .seq_len = 5, .n_seq = 3, .ids = ids};
    assert_int_equal(aw_tokens_write(path, &t), AW_OK);
    uint8_t *b = aw_test_read_bytes(path, n);
    assert_int_equal(*n, 32 + 15 * 4 + 8);
    return b;
}

/* Recompute the trailing checksum after the ids were patched. */
static void reseal(uint8_t *b, size_t n)
{
    put64(b + n - 8, fnv1a64(b + 32, n - 40));
}

static void expect_reject(const char *path, const void *bytes, size_t n, aw_status want,
                          const char *needle)
{
    aw_test_write_bytes(path, bytes, n);
    aw_tokens t = {0};
    aw_err_clear();
    aw_status st = aw_tokens_read(path, &t);
    aw_assert_status(st, want, needle);
    aw_assert_status(st, want, path); /* every message names the file */
    assert_null(t.ids);
}

static void test_round_trip(void **state)
{
    fixture *f = *state;
    enum { NS = 7, SL = 33 };
    uint32_t *ids = malloc(NS * SL * sizeof *ids);
    assert_non_null(ids);
    uint32_t x = 12345;
    for (size_t i = 0; i < NS * SL; i++) {
        x = x * 1664525u + 1013904223u;
        ids[i] = x % 50272u;
    }
    ids[0] = 0;
    ids[1] = 50271;
    aw_tokens t = {.vocab_size = 50272, .seq_len = SL, .n_seq = NS, .ids = ids};
    assert_int_equal(aw_tokens_write(f->path, &t), AW_OK);

    size_t n;
    uint8_t *b = aw_test_read_bytes(f->path, &n);
    assert_int_equal(n, 32 + 4 * NS * SL + 8);
    assert_memory_equal(b, "AWEQTOK1", 8);
    /* little-endian ids regardless of the host */
    for (size_t i = 0; i < NS * SL; i++) {
        const uint8_t *p = b + 32 + 4 * i;
        uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24;
        assert_int_equal(v, ids[i]);
    }
    free(b);

    aw_tokens back = {0};
    assert_int_equal(aw_tokens_read(f->path, &back), AW_OK);
    assert_int_equal(back.vocab_size, 50272);
    assert_int_equal(back.seq_len, SL);
    assert_int_equal(back.n_seq, NS);
    assert_memory_equal(back.ids, ids, NS * SL * sizeof *ids);
    aw_tokens_free(&back);
    assert_null(back.ids);
    aw_tokens_free(&back); /* twice, and on a zeroed struct */
    aw_tokens_free(NULL);
    free(ids);
}

/* The example in docs/token-file.md, byte for byte. */
static void test_doc_example(void **state)
{
    fixture *f = *state;
    static const uint8_t want[48] = {
        0x41, 0x57, 0x45, 0x51, 0x54, 0x4f, 0x4b, 0x31, 0x01, 0x00, 0x00, 0x00,
        0x60, 0xc4, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
        0xc6, 0xc3, 0x00, 0x00, 0xa0, 0xd3, 0x4a, 0x80, 0x56, 0x53, 0xfe, 0x87,
    };
    uint32_t ids[2] = {2, 50118};
    aw_tokens t = {.vocab_size = 50272, .seq_len = 2, .n_seq = 1, .ids = ids};
    assert_int_equal(aw_tokens_write(f->path, &t), AW_OK);
    size_t n;
    uint8_t *b = aw_test_read_bytes(f->path, &n);
    assert_int_equal(n, sizeof want);
    assert_memory_equal(b, want, sizeof want);
    assert_int_equal(fnv1a64(want + 32, 8), 0x87fe5356804ad3a0ull);
    free(b);
}

static void test_bad_magic(void **state)
{
    fixture *f = *state;
    size_t n;
    uint8_t *b = write_good(f->path, &n);
    b[7] = '2';
    expect_reject(f->path, b, n, AW_ERR_TOKENS, "magic");
    free(b);
}

static void test_bad_version(void **state)
{
    fixture *f = *state;
    size_t n;
    uint8_t *b = write_good(f->path, &n);
    put32(b + 8, 2);
    expect_reject(f->path, b, n, AW_ERR_TOKENS, "version 2");
    put32(b + 8, 0x01000000u); /* version 1 written big-endian */
    expect_reject(f->path, b, n, AW_ERR_TOKENS, "version 16777216");
    free(b);
}

static void test_reserved_nonzero(void **state)
{
    fixture *f = *state;
    size_t n;
    uint8_t *b = write_good(f->path, &n);
    put32(b + 28, 1);
    expect_reject(f->path, b, n, AW_ERR_TOKENS, "reserved");
    free(b);
}

static void test_truncated(void **state)
{
    fixture *f = *state;
    size_t n;
    uint8_t *b = write_good(f->path, &n);
    expect_reject(f->path, b, n - 1, AW_ERR_TOKENS, "truncated"); /* checksum cut */
    expect_reject(f->path, b, n - 8, AW_ERR_TOKENS, "truncated"); /* no checksum */
    expect_reject(f->path, b, 40, AW_ERR_TOKENS, "truncated");    /* ids cut */
    expect_reject(f->path, b, 31, AW_ERR_TOKENS, "truncated");    /* header cut */
    expect_reject(f->path, b, 0, AW_ERR_TOKENS, "truncated");     /* empty */
    free(b);
}

static void test_trailing_bytes(void **state)
{
    fixture *f = *state;
    size_t n;
    uint8_t *b = write_good(f->path, &n);
    uint8_t *longer = calloc(1, n + 3);
    assert_non_null(longer);
    memcpy(longer, b, n);
    expect_reject(f->path, longer, n + 3, AW_ERR_TOKENS, "3 trailing bytes");
    free(longer);
    free(b);
}

static void test_id_out_of_vocab(void **state)
{
    fixture *f = *state;
    size_t n;
    uint8_t *b = write_good(f->path, &n);
    /* sequence 2, position 3 -> id index 13; checksum stays valid */
    put32(b + 32 + 4 * 13, 1000);
    reseal(b, n);
    expect_reject(f->path, b, n, AW_ERR_TOKENS,
                  "sequence 2 position 3: token id 1000 >= vocab_size 1000");
    free(b);

    /* the header is not under the checksum: a smaller vocab in the header
     * makes the good id 999 (sequence 2, position 4) out of range */
    b = write_good(f->path, &n);
    put32(b + 12, 999);
    expect_reject(f->path, b, n, AW_ERR_TOKENS, "sequence 2 position 4: token id 999");
    free(b);
}

static void test_checksum_flip(void **state)
{
    fixture *f = *state;
    size_t n;
    uint8_t *b = write_good(f->path, &n);
    b[32 + 5] ^= 0x01; /* a bit of an id */
    expect_reject(f->path, b, n, AW_ERR_TOKENS, "checksum");
    b[32 + 5] ^= 0x01;
    b[n - 1] ^= 0x80; /* a bit of the checksum itself */
    expect_reject(f->path, b, n, AW_ERR_TOKENS, "checksum");
    free(b);
}

static void test_zero_counts(void **state)
{
    fixture *f = *state;
    size_t n;
    uint8_t *b = write_good(f->path, &n);
    put32(b + 24, 0);
    expect_reject(f->path, b, n, AW_ERR_TOKENS, "seq_len is 0");
    put32(b + 24, 5);
    put64(b + 16, 0);
    expect_reject(f->path, b, n, AW_ERR_TOKENS, "n_seq is 0");
    put64(b + 16, 3);
    put32(b + 12, 0);
    expect_reject(f->path, b, n, AW_ERR_TOKENS, "vocab_size is 0");
    /* a header-only file with seq_len 0 is refused for the count, not the size */
    put32(b + 12, 1000);
    put32(b + 24, 0);
    expect_reject(f->path, b, 40, AW_ERR_TOKENS, "seq_len is 0");
    free(b);
}

/* Counts whose product overflows must fail cleanly, before any allocation. */
static void test_huge_counts(void **state)
{
    fixture *f = *state;
    size_t n;
    uint8_t *b = write_good(f->path, &n);
    put64(b + 16, UINT64_MAX);
    put32(b + 24, 0xffffffffu);
    expect_reject(f->path, b, n, AW_ERR_TOKENS, "overflow");
    put64(b + 16, 1ull << 40); /* no overflow, but far more than the file */
    put32(b + 24, 1024);
    expect_reject(f->path, b, n, AW_ERR_TOKENS, "truncated");
    free(b);
}

static void test_missing_file(void **state)
{
    fixture *f = *state;
    aw_tokens t = {0};
    aw_assert_status(aw_tokens_read(f->path, &t), AW_ERR_IO, f->path);
    aw_assert_status(aw_tokens_read(f->dir, &t), AW_ERR_TOKENS, "not a regular file");
}

static void test_writer_refuses(void **state)
{
    fixture *f = *state;
    uint32_t ids[4] = {1, 2, 3, 100};
    aw_tokens t = {.vocab_size = 100, .seq_len = 2, .n_seq = 2, .ids = ids};
    aw_assert_status(aw_tokens_write(f->path, &t), AW_ERR_ARG,
                     "sequence 1 position 1: token id 100 >= vocab_size 100");
    struct stat sb;
    assert_int_not_equal(stat(f->path, &sb), 0); /* nothing left behind */

    ids[3] = 99;
    t.seq_len = 0;
    aw_assert_status(aw_tokens_write(f->path, &t), AW_ERR_ARG, f->path);
    t.seq_len = 2;
    t.n_seq = 0;
    aw_assert_status(aw_tokens_write(f->path, &t), AW_ERR_ARG, f->path);
    t.n_seq = 2;
    t.vocab_size = 0;
    aw_assert_status(aw_tokens_write(f->path, &t), AW_ERR_ARG, f->path);
    t.vocab_size = 100;
    t.ids = NULL;
    aw_assert_status(aw_tokens_write(f->path, &t), AW_ERR_ARG, f->path);
    assert_int_not_equal(stat(f->path, &sb), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_round_trip),    T(test_doc_example),      T(test_bad_magic),
        T(test_bad_version),   T(test_reserved_nonzero), T(test_truncated),
        T(test_trailing_bytes), T(test_id_out_of_vocab), T(test_checksum_flip),
        T(test_zero_counts),   T(test_huge_counts),      T(test_missing_file),
        T(test_writer_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
