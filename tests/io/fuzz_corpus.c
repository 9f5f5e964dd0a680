/* fuzz_corpus.c - fuzz target for the text-corpus reader (io/aw_corpus.c),
 * and a replay driver so CTest runs the fixtures without a fuzzer.
 *
 * The input is written to a temporary file and read whole, as .jsonl, and
 * as .jsonl.zst when it starts with the zstd magic number. Otherwise it is
 * also compressed here (one frame, then two frames cut in the middle) and
 * the .jsonl.zst must give exactly what the .jsonl gave; and read as .txt it
 * must be accepted iff it is strict UTF-8 within the cap, as itself.
 *
 * Fuzzing (clang, -DAWEQ_FUZZ=ON): LLVMFuzzerTestOneInput only, libFuzzer's
 * main. Otherwise main() replays files:
 *     fuzz_corpus [--reject | --accept | --any] PATH...
 * PATH is a file or a folder (its files, in name order); each goes through
 * the fuzz target, then is read through its own name: --reject requires
 * AW_ERR_CORPUS naming the file and a line, --accept requires success. Exit
 * 1 if any expectation fails; a crash or sanitizer report fails the test by
 * itself. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "aw_corpus.h"

/* Crash on a broken invariant: the fuzzer reports it with the input. */
#define FUZZ_ASSERT(cond)              \
    do {                               \
        if (!(cond)) __builtin_trap(); \
    } while (0)

/* A small cap, so that inputs of a few KiB reach the "too long" paths. */
#define FUZZ_MAX_DOC 2048u

/* 1 if p[0, n) is strict UTF-8, found by decoding each code point: written
 * apart from the reader's check, so that one mistake cannot hide in both. */
static int utf8_ok_ref(const uint8_t *p, size_t n)
{
    static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
    size_t i = 0;
    while (i < n) {
        uint8_t b = p[i];
        uint32_t cp;
        size_t k;
        if (b < 0x80) {
            i++;
            continue;
        } else if ((b & 0xe0) == 0xc0) {
            k = 1, cp = b & 0x1fu;
        } else if ((b & 0xf0) == 0xe0) {
            k = 2, cp = b & 0x0fu;
        } else if ((b & 0xf8) == 0xf0) {
            k = 3, cp = b & 0x07u;
        } else {
            return 0;
        }
        if (n - i - 1 < k) return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (p[i + j] & 0x3fu);
        }
        if (cp < min_cp[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += k + 1;
    }
    return 1;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

#define FNV_BASIS 0xcbf29ce484222325ull

typedef struct {
    aw_status st;
    size_t n_docs;
    uint64_t hash; /* over every (length, bytes) in order */
} outcome;

/* Read every document of path; check what holds for any input. */
static outcome read_corpus(const char *path, size_t max_doc)
{
    outcome o = {AW_OK, 0, FNV_BASIS};
    aw_corpus *c = NULL;
    o.st = aw_corpus_open(path, NULL, &c);
    FUZZ_ASSERT(o.st == AW_OK && c != NULL); /* the file is there, its name good */
    aw_corpus_set_max_doc(c, max_doc);
    for (;;) {
        const char *d = (const char *)1;
        size_t n = 1;
        o.st = aw_corpus_next(c, &d, &n);
        if (o.st != AW_OK) {
            FUZZ_ASSERT(d == NULL && n == 0);
            FUZZ_ASSERT(o.st == AW_ERR_CORPUS);
            FUZZ_ASSERT(strstr(aw_err_message(), path) != NULL);
            FUZZ_ASSERT(strstr(aw_err_message(), ": line ") != NULL);
            FUZZ_ASSERT(aw_corpus_next(c, &d, &n) == o.st && d == NULL); /* stays failed */
            break;
        }
        if (!d) {
            FUZZ_ASSERT(aw_corpus_next(c, &d, &n) == AW_OK && d == NULL); /* stays at the end */
            break;
        }
        FUZZ_ASSERT(n <= max_doc);
        FUZZ_ASSERT(utf8_ok_ref((const uint8_t *)d, n));
        o.n_docs++;
        o.hash = fnv1a(fnv1a(o.hash, &n, sizeof n), d, n);
    }
    aw_corpus_close(c);
    return o;
}

static char g_dir[64];
static char g_jsonl[96], g_zst[96], g_txt[96];

static void cleanup(void)
{
    unlink(g_jsonl);
    unlink(g_zst);
    unlink(g_txt);
    rmdir(g_dir);
}

static void setup_once(void)
{
    if (g_dir[0]) return;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/aweq-fuzz-corpus-XXXXXX",
             tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp");
    FUZZ_ASSERT(mkdtemp(g_dir) != NULL);
    snprintf(g_jsonl, sizeof g_jsonl, "%s/in.jsonl", g_dir);
    snprintf(g_zst, sizeof g_zst, "%s/in.jsonl.zst", g_dir);
    snprintf(g_txt, sizeof g_txt, "%s/in.txt", g_dir);
    atexit(cleanup);
}

static void write_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_ASSERT(fd >= 0);
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        FUZZ_ASSERT(w > 0);
        b += w;
        n -= (size_t)w;
    }
    FUZZ_ASSERT(close(fd) == 0);
}

/* data compressed as one frame per piece, the pieces cut at `cut`
 * (0: one frame), written to g_zst. */
static void write_zst(const uint8_t *data, size_t size, size_t cut)
{
    static ZSTD_CCtx *cc;
    if (!cc) FUZZ_ASSERT((cc = ZSTD_createCCtx()) != NULL);
    size_t cap = ZSTD_compressBound(size) * 2 + 64;
    uint8_t *z = malloc(cap);
    FUZZ_ASSERT(z != NULL);
    size_t a = ZSTD_compressCCtx(cc, z, cap, data, cut, 1);
    FUZZ_ASSERT(!ZSTD_isError(a));
    if (cut == 0) a = 0; /* one frame: no empty frame in front */
    size_t b = ZSTD_compressCCtx(cc, z + a, cap - a, data + cut, size - cut, 1);
    FUZZ_ASSERT(!ZSTD_isError(b));
    write_file(g_zst, z, a + b);
    free(z);
}

static int same(outcome x, outcome y)
{
    return x.st == y.st && x.n_docs == y.n_docs && x.hash == y.hash;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup_once();
    write_file(g_jsonl, data, size);
    outcome plain = read_corpus(g_jsonl, FUZZ_MAX_DOC);

    static const uint8_t magic[4] = {0x28, 0xb5, 0x2f, 0xfd};
    if (size >= 4 && memcmp(data, magic, 4) == 0) {
        write_file(g_zst, data, size);
        (void)read_corpus(g_zst, FUZZ_MAX_DOC);
    } else {
        /* compression changes nothing the reader hands out */
        write_zst(data, size, 0);
        FUZZ_ASSERT(same(read_corpus(g_zst, FUZZ_MAX_DOC), plain));
        write_zst(data, size, size / 2);
        FUZZ_ASSERT(same(read_corpus(g_zst, FUZZ_MAX_DOC), plain));
    }

    /* as .txt: the input itself, if it is UTF-8 and within the cap */
    write_file(g_txt, data, size);
    outcome txt = read_corpus(g_txt, FUZZ_MAX_DOC);
    if (utf8_ok_ref(data, size) && size <= FUZZ_MAX_DOC) {
        outcome want = {AW_OK, 1, fnv1a(fnv1a(FNV_BASIS, &size, sizeof size), data, size)};
        FUZZ_ASSERT(same(txt, want));
    } else {
        FUZZ_ASSERT(txt.st == AW_ERR_CORPUS);
    }
    return 0;
}

#ifndef AWEQ_FUZZING
#include "fuzz_replay.h"

/* Read path through its own name with the default cap. */
static aw_status read_by_name(const char *path, size_t *n_docs)
{
    aw_corpus *c;
    *n_docs = 0;
    aw_status st = aw_corpus_open(path, NULL, &c);
    if (st != AW_OK) return st;
    const char *d;
    size_t n;
    while ((st = aw_corpus_next(c, &d, &n)) == AW_OK && d) (*n_docs)++;
    aw_corpus_close(c);
    return st;
}

static int check_file(const char *path, const uint8_t *buf, size_t len, replay_mode mode)
{
    LLVMFuzzerTestOneInput(buf, len);
    size_t n_docs;
    aw_err_clear();
    aw_status st = read_by_name(path, &n_docs);
    if (mode == MODE_REJECT && st != AW_ERR_CORPUS) {
        fprintf(stderr, "FAILED %s: %s (%s), must be rejected with AW_ERR_CORPUS\n", path,
                st == AW_OK ? "accepted" : aw_status_name(st), aw_err_message());
        return 1;
    }
    if (mode == MODE_REJECT && (!strstr(aw_err_message(), path) || !strstr(aw_err_message(), ": line "))) {
        fprintf(stderr, "FAILED %s: message \"%s\" does not name the file and a line\n", path,
                aw_err_message());
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
