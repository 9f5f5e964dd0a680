/* fuzz_safetensors.c - fuzz target for the safetensors reader, and a replay
 * driver so CTest runs the corpus without a fuzzer.
 *
 * Fuzzing (clang, -DAWEQ_FUZZ=ON): LLVMFuzzerTestOneInput only, libFuzzer's
 * main. Otherwise main() replays files:
 *     fuzz_safetensors [--reject | --accept | --any] PATH...
 * PATH is a file or a folder (its files, in name order); the mode before it
 * says what the reader must do with it. Exit 1 if any expectation fails; a
 * crash or sanitizer report fails the test by itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aw_safetensors.h"

/* Crash on a broken invariant: the fuzzer reports it with the input. */
#define FUZZ_ASSERT(cond)              \
    do {                               \
        if (!(cond)) __builtin_trap(); \
    } while (0)

/* Walk everything a caller can reach on an accepted file, then write it
 * again and read that back: the writer must take what the reader accepts
 * (empty names aside, which it refuses by contract). */
static void exercise(const aw_st_file *f, const uint8_t *data)
{
    size_t n = aw_st_count(f);
    uint8_t buf[4096];
    float fbuf[1024];
    for (size_t i = 0; i < n; i++) {
        const aw_st_tensor *t = aw_st_at(f, i);
        FUZZ_ASSERT(aw_st_find(f, t->name) == t);
        FUZZ_ASSERT(t->begin <= t->end);
        FUZZ_ASSERT(aw_st_numel(t) * aw_dtype_size(t->dtype) == t->end - t->begin);
        if (t->end - t->begin <= sizeof buf) FUZZ_ASSERT(aw_st_read(f, t, buf, sizeof buf) == AW_OK);
        if (aw_dtype_table[t->dtype].is_float && aw_st_numel(t) <= 1024)
            FUZZ_ASSERT(aw_st_read_f32(f, t, fbuf, 1024) == AW_OK);
        else if (!aw_dtype_table[t->dtype].is_float)
            FUZZ_ASSERT(aw_st_read_f32(f, t, fbuf, 1024) == AW_ERR_DTYPE);
    }
    size_t nm = aw_st_metadata_count(f);
    for (size_t i = 0; i < nm; i++) {
        const char *k, *v;
        aw_st_metadata_at(f, i, &k, &v);
        FUZZ_ASSERT(aw_st_metadata(f, k) == v);
    }

    aw_st_entry *e = calloc(n ? n : 1, sizeof *e);
    aw_st_meta *m = calloc(nm ? nm : 1, sizeof *m);
    FUZZ_ASSERT(e && m);
    int empty_name = 0;
    for (size_t i = 0; i < n; i++) {
        const aw_st_tensor *t = aw_st_at(f, i);
        e[i] = (aw_st_entry){t->name, t->dtype, t->ndim, {0}, data + aw_st_data_offset(f) + t->begin};
        memcpy(e[i].shape, t->shape, sizeof t->shape);
        empty_name |= t->name[0] == '\0';
    }
    for (size_t i = 0; i < nm; i++) aw_st_metadata_at(f, i, &m[i].key, &m[i].value);
    uint8_t *out;
    size_t len;
    aw_status st = aw_st_serialize(e, n, m, nm, &out, &len);
    if (st == AW_OK) {
        aw_st_file *g;
        FUZZ_ASSERT(aw_st_open_mem(out, len, "rewritten", &g) == AW_OK);
        FUZZ_ASSERT(aw_st_count(g) == n);
        for (size_t i = 0; i < n; i++) {
            const aw_st_tensor *a = aw_st_at(f, i), *b = aw_st_at(g, i);
            FUZZ_ASSERT(strcmp(a->name, b->name) == 0 && a->dtype == b->dtype);
            FUZZ_ASSERT(memcmp(data + aw_st_data_offset(f) + a->begin,
                               out + aw_st_data_offset(g) + b->begin, a->end - a->begin) == 0);
        }
        aw_st_close(g);
        free(out);
    } else {
        FUZZ_ASSERT(st == AW_ERR_ARG && empty_name);
    }
    free(m);
    free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aw_st_file *f = (aw_st_file *)1;
    aw_status st = aw_st_open_mem(data, size, "fuzz-input", &f);
    if (st != AW_OK) {
        FUZZ_ASSERT(f == NULL && st > AW_OK && st < AW_STATUS_COUNT);
        return 0;
    }
    exercise(f, data);
    aw_st_close(f);
    return 0;
}

#ifndef AWEQ_FUZZING
#include <stdio.h>

#include "fuzz_replay.h"

static int check_file(const char *path, const uint8_t *buf, size_t len, replay_mode mode)
{
    LLVMFuzzerTestOneInput(buf, len);
    aw_st_file *f;
    aw_status st = aw_st_open_mem(buf, len, path, &f);
    aw_st_close(f);
    if (mode == MODE_REJECT && st == AW_OK) {
        fprintf(stderr, "FAILED %s: accepted, must be rejected\n", path);
        return 1;
    }
    if (mode == MODE_ACCEPT && st != AW_OK) {
        fprintf(stderr, "FAILED %s: rejected (%s: %s), must be accepted\n", path,
                aw_status_name(st), aw_err_message());
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) { return aw_fuzz_replay_main(argc, argv, check_file); }
#endif
