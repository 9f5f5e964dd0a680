/* test_corpus.c - text corpora (io/aw_corpus.c): round trips of .txt and
 * .jsonl, plain and zstd-compressed (compressed here with libzstd: one frame,
 * many frames, blocks flushed every few bytes), the committed good files,
 * one test per must-reject file of tests/fixtures/corpus/reject, strict
 * UTF-8, the line cap; and Python's `random` and the window draw against
 * values from CPython (tests/fixtures/pyrand.txt). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <jansson.h>
#include <zstd.h>

#include "aw_corpus.h"
#include "testutil.h"

/* ------------------------------------------------------------ helpers -- */

typedef struct {
    char *dir;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = aw_test_tmpdir();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    aw_test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* "dir/name" into a static slot (two live at a time are enough here). */
static const char *in_dir(const fixture *f, const char *name)
{
    static char slots[2][4096];
    static int next;
    char *p = slots[next++ & 1];
    snprintf(p, sizeof slots[0], "%s/%s", f->dir, name);
    return p;
}

/* Growing byte buffer. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *src, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void puts_(bytes *b, const char *s)
{
    put(b, s, strlen(s));
}

/* The documents of a corpus, each copied (they may hold NUL bytes). */
typedef struct {
    size_t n;
    char **doc;
    size_t *len;
} docs;

static void docs_free(docs *d)
{
    for (size_t i = 0; i < d->n; i++) free(d->doc[i]);
    free(d->doc);
    free(d->len);
    memset(d, 0, sizeof *d);
}

/* Read every document of path until the end or the first error; max_doc 0
 * keeps the default cap. */
static aw_status read_all_cap(const char *path, const char *field, size_t max_doc, docs *out)
{
    memset(out, 0, sizeof *out);
    aw_corpus *c = (aw_corpus *)1;
    aw_err_clear();
    aw_status st = aw_corpus_open(path, field, &c);
    if (st != AW_OK) {
        assert_null(c);
        return st;
    }
    if (max_doc) aw_corpus_set_max_doc(c, max_doc);
    for (;;) {
        const char *d = (const char *)1;
        size_t len = 99;
        st = aw_corpus_next(c, &d, &len);
        if (st != AW_OK) {
            assert_null(d);
            break;
        }
        if (!d) {
            assert_int_equal(len, 0);
            /* the end stays the end */
            assert_int_equal(aw_corpus_next(c, &d, &len), AW_OK);
            assert_null(d);
            break;
        }
        out->doc = realloc(out->doc, (out->n + 1) * sizeof *out->doc);
        out->len = realloc(out->len, (out->n + 1) * sizeof *out->len);
        assert_true(out->doc && out->len);
        out->doc[out->n] = malloc(len + 1);
        assert_non_null(out->doc[out->n]);
        if (len) memcpy(out->doc[out->n], d, len);
        out->len[out->n++] = len;
    }
    aw_corpus_close(c);
    return st;
}

static aw_status read_all(const char *path, const char *field, docs *out)
{
    return read_all_cap(path, field, 0, out);
}

static void assert_doc(const docs *d, size_t i, const void *want, size_t n)
{
    assert_true(i < d->n);
    if (d->len[i] != n) fail_msg("document %zu: %zu bytes, want %zu", i, d->len[i], n);
    if (n) assert_memory_equal(d->doc[i], want, n);
}

/* Compress src as zstd: pieces of `piece` bytes (0: all) each made its own
 * frame when frames, else flushed as its own block(s) of one frame. */
static bytes zst(const void *src, size_t n, size_t piece, int frames, int checksum)
{
    bytes out = {0};
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    assert_non_null(cc);
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 3)));
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, checksum)));
    size_t cap = ZSTD_CStreamOutSize();
    uint8_t *tmp = malloc(cap);
    assert_non_null(tmp);
    const uint8_t *p = src;
    size_t off = 0;
    do {
        size_t k = piece && n - off > piece ? piece : n - off;
        int last = off + k == n;
        ZSTD_EndDirective mode = frames || last ? ZSTD_e_end : ZSTD_e_flush;
        ZSTD_inBuffer in = {p + off, k, 0};
        size_t left;
        do {
            ZSTD_outBuffer o = {tmp, cap, 0};
            left = ZSTD_compressStream2(cc, &o, &in, mode);
            assert_false(ZSTD_isError(left));
            put(&out, tmp, o.pos);
        } while (left != 0 || in.pos < in.size);
        off += k;
    } while (off < n);
    free(tmp);
    ZSTD_freeCCtx(cc);
    return out;
}

static void write_bytes(const char *path, const bytes *b)
{
    aw_test_write_bytes(path, b->p, b->n);
}

/* xorshift: reproducible test data */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Append one random valid code point as UTF-8 (all lengths, edges often). */
static void put_random_cp(bytes *b, uint64_t *s)
{
    static const uint32_t edges[] = {0x0,    0x7f,   0x80,   0x7ff,    0x800,   0xd7ff,
                                     0xe000, 0xfffd, 0xffff, 0x10000, 0x10ffff, 0xa,
                                     0x22,   0x5c,   0xe9,   0x4e2d,   0x1f600, 0xd};
    uint64_t r = rng_next(s);
    uint32_t cp;
    if (r % 4 == 0) {
        cp = edges[(r >> 8) % (sizeof edges / sizeof edges[0])];
    } else if (r % 4 == 1) {
        cp = 0x20 + (uint32_t)((r >> 8) % 95);
    } else {
        cp = (uint32_t)((r >> 8) % 0x110000);
        if (cp >= 0xd800 && cp <= 0xdfff) cp -= 0x800;
    }
    uint8_t u[4];
    size_t k;
    if (cp < 0x80) {
        u[0] = (uint8_t)cp, k = 1;
    } else if (cp < 0x800) {
        u[0] = (uint8_t)(0xc0 | cp >> 6), u[1] = (uint8_t)(0x80 | (cp & 0x3f)), k = 2;
    } else if (cp < 0x10000) {
        u[0] = (uint8_t)(0xe0 | cp >> 12), u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (uint8_t)(0x80 | (cp & 0x3f)), k = 3;
    } else {
        u[0] = (uint8_t)(0xf0 | cp >> 18), u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (uint8_t)(0x80 | (cp & 0x3f)), k = 4;
    }
    put(b, u, k);
}

static bytes random_text(uint64_t seed, size_t n_cp)
{
    bytes b = {0};
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n_cp; i++) put_random_cp(&b, &s);
    return b;
}

/* -------------------------------------------------------- round trips -- */

static void check_txt(const char *path, const bytes *want)
{
    docs d;
    aw_assert_status(read_all(path, NULL, &d), AW_OK, NULL);
    assert_int_equal(d.n, 1);
    assert_doc(&d, 0, want->p, want->n);
    docs_free(&d);
}

static void test_txt_round_trip(void **state)
{
    fixture *f = *state;
    /* every length of code point, NUL, CR LF kept as they are */
    bytes t = {0};
    puts_(&t, "a\r\nb\n");
    put(&t, "\0", 1);
    puts_(&t, "\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf"
              "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\xef\xbb\xbf end");
    write_bytes(in_dir(f, "small.txt"), &t);
    check_txt(in_dir(f, "small.txt"), &t);
    free(t.p);

    /* several times the read buffer */
    t = random_text(1, 400000);
    assert_true(t.n > 4 * 65536);
    write_bytes(in_dir(f, "big.txt"), &t);
    check_txt(in_dir(f, "big.txt"), &t);

    /* the same, zstd: one frame with checksum; blocks flushed every 1000
     * bytes (code points cut between blocks); many frames */
    bytes z = zst(t.p, t.n, 0, 0, 1);
    write_bytes(in_dir(f, "big.txt.zst"), &z);
    check_txt(in_dir(f, "big.txt.zst"), &t);
    free(z.p);
    z = zst(t.p, t.n, 1000, 0, 0);
    write_bytes(in_dir(f, "blocks.txt.zst"), &z);
    check_txt(in_dir(f, "blocks.txt.zst"), &t);
    free(z.p);
    z = zst(t.p, t.n, 77777, 1, 1);
    write_bytes(in_dir(f, "frames.txt.zst"), &z);
    check_txt(in_dir(f, "frames.txt.zst"), &t);
    free(z.p);
    free(t.p);
}

/* Random documents written as JSON lines in the field "content", with
 * other members around it, \u escapes (\u0000 included) or raw UTF-8,
 * \n or \r\n line ends, blank lines between; docs longer than the read
 * buffer among them. */
static void make_jsonl(size_t n_docs, uint64_t seed, bytes *file, bytes *want, size_t **lens)
{
    *lens = calloc(n_docs, sizeof **lens);
    assert_non_null(*lens);
    uint64_t s = seed;
    for (size_t i = 0; i < n_docs; i++) {
        size_t n_cp = i == 3 ? 150000 : i == 7 ? 70000 : (size_t)(rng_next(&s) % 200);
        bytes d = random_text(seed + i, n_cp);
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer((json_int_t)i));
        json_object_set_new(o, "content", json_stringn((const char *)d.p, d.n));
        json_object_set_new(o, "meta", json_pack("{s:s, s:[i,f,b,n]}", "content", "decoy", "x",
                                                 1, 2.5, 1));
        size_t flags =
            JSON_COMPACT | (i % 2 ? JSON_ENSURE_ASCII : 0) | (i % 3 ? JSON_SORT_KEYS : 0);
        char *line = json_dumps(o, flags);
        assert_non_null(line);
        json_decref(o);
        puts_(file, line);
        free(line);
        puts_(file, i % 4 == 1 ? "\r\n" : "\n");
        if (i % 5 == 2) puts_(file, "\n \t\r\n");
        put(want, d.p, d.n);
        (*lens)[i] = d.n;
        free(d.p);
    }
}

static void check_jsonl(const char *path, const char *field, size_t n_docs, const bytes *want,
                        const size_t *lens)
{
    docs d;
    aw_assert_status(read_all(path, field, &d), AW_OK, NULL);
    assert_int_equal(d.n, n_docs);
    size_t off = 0;
    for (size_t i = 0; i < n_docs; i++) {
        assert_doc(&d, i, want->p + off, lens[i]);
        off += lens[i];
    }
    docs_free(&d);
}

static void test_jsonl_round_trip(void **state)
{
    fixture *f = *state;
    enum { N = 60 };
    bytes file = {0}, want = {0};
    size_t *lens;
    make_jsonl(N, 7, &file, &want, &lens);
    assert_true(lens[3] > 2 * 65536); /* longer than the read buffer */
    assert_non_null(memmem(file.p, file.n, "\\u0000", 6));
    assert_non_null(memmem(file.p, file.n, "\r\n", 2));
    write_bytes(in_dir(f, "docs.jsonl"), &file);
    check_jsonl(in_dir(f, "docs.jsonl"), "content", N, &want, lens);

    /* lines cut across blocks every 97 bytes, across frames every 4099 */
    size_t pieces[][2] = {{0, 0}, {97, 0}, {4099, 1}, {1, 1}};
    for (size_t k = 0; k < sizeof pieces / sizeof pieces[0]; k++) {
        size_t piece = pieces[k][0];
        if (piece == 1) piece = file.n / 2 + 3; /* two frames, cut mid-document */
        bytes z = zst(file.p, file.n, piece, (int)pieces[k][1], (int)(k % 2));
        write_bytes(in_dir(f, "docs.jsonl.zst"), &z);
        check_jsonl(in_dir(f, "docs.jsonl.zst"), "content", N, &want, lens);
        free(z.p);
    }

    /* the default field is "text": these lines have none */
    docs d;
    aw_assert_status(read_all(in_dir(f, "docs.jsonl"), NULL, &d), AW_ERR_CORPUS,
                     "line 1: the object has no \"text\" member");
    docs_free(&d);
    free(lens);
    free(file.p);
    free(want.p);
}

/* Escapes decode as JSON says; \u0000 is kept. */
static void test_jsonl_escapes(void **state)
{
    fixture *f = *state;
    const char *path = in_dir(f, "esc.jsonl");
    static const char text[] =
        "{\"text\":\"\\u0041\\u00e9\\u4e2d\\ud83d\\ude00\\udbff\\udfff\\u0000z\\t\\\"\\\\\\/\"}\n"
        "{\"text\":\"\\u0000\"}\r\n";
    aw_test_write_bytes(path, text, sizeof text - 1);
    docs d;
    aw_assert_status(read_all(path, NULL, &d), AW_OK, NULL);
    assert_int_equal(d.n, 2);
    static const char want[] = "A\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\0z\t\"\\/";
    assert_doc(&d, 0, want, sizeof want - 1);
    assert_doc(&d, 1, "\0", 1);
    docs_free(&d);
}

/* --------------------------------------------------- committed files -- */

static const char *const docs_jsonl_want[] = {
    "Hello, world.",
    "caf\xc3\xa9 \xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87",
    "tab\there\nnewline \"quoted\" back\\slash /",
    "nul\0inside",
    "",
    "raw UTF-8: \xc3\xa9 \xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87 \xf4\x8f\xbf\xbf",
    NULL, /* 300 x 'a' */
    "last line without a newline",
};

static void check_docs_jsonl(const char *rel)
{
    char *path = aw_test_source_path(rel);
    docs d;
    aw_assert_status(read_all(path, NULL, &d), AW_OK, NULL);
    assert_int_equal(d.n, sizeof docs_jsonl_want / sizeof docs_jsonl_want[0]);
    for (size_t i = 0; i < d.n; i++) {
        const char *w = docs_jsonl_want[i];
        if (!w) {
            char a[300];
            memset(a, 'a', sizeof a);
            assert_doc(&d, i, a, sizeof a);
        } else {
            assert_doc(&d, i, w, i == 3 ? 10 : strlen(w));
        }
    }
    docs_free(&d);
    free(path);
}

static void test_accept_fixtures(void **state)
{
    (void)state;
    check_docs_jsonl("tests/fixtures/corpus/accept/docs.jsonl");
    check_docs_jsonl("tests/fixtures/corpus/accept/docs.jsonl.zst");

    char *txt = aw_test_source_path("tests/fixtures/corpus/accept/plain.txt");
    char *txz = aw_test_source_path("tests/fixtures/corpus/accept/plain.txt.zst");
    bytes want = {0};
    want.p = aw_test_read_bytes(txt, &want.n);
    assert_non_null(memmem(want.p, want.n, "\xf4\x8f\xbf\xbf", 4));
    check_txt(txt, &want);
    check_txt(txz, &want);
    free(want.p);
    free(txt);
    free(txz);

    /* empty corpora are not errors: a .txt is always one document */
    static const struct {
        const char *rel;
        size_t n_docs;
    } empties[] = {
        {"tests/fixtures/corpus/accept/empty.txt", 1},
        {"tests/fixtures/corpus/accept/empty.jsonl", 0},
        {"tests/fixtures/corpus/accept/blank_lines.jsonl", 0},
        {"tests/fixtures/corpus/accept/empty_frame.jsonl.zst", 0},
    };
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        char *p = aw_test_source_path(empties[i].rel);
        docs d;
        aw_assert_status(read_all(p, NULL, &d), AW_OK, NULL);
        assert_int_equal(d.n, empties[i].n_docs);
        if (d.n) assert_int_equal(d.len[0], 0);
        docs_free(&d);
        free(p);
    }
}

/* Every file of the accept folder is read whole (none forgotten above). */
static void test_accept_folder(void **state)
{
    (void)state;
    char *dir = aw_test_source_path("tests/fixtures/corpus/accept");
    DIR *dd = opendir(dir);
    assert_non_null(dd);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(dd))) {
        if (de->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        docs d;
        aw_assert_status(read_all(path, NULL, &d), AW_OK, NULL);
        docs_free(&d);
        n++;
    }
    closedir(dd);
    assert_true(n >= 8);
    free(dir);
}

/* ------------------------------------------------- must-reject files -- */

typedef struct {
    const char *file; /* in tests/fixtures/corpus/reject/ */
    int line;         /* the message says "line N:" */
    const char *needle;
} reject_case;

static const reject_case reject_cases[] = {
    {"not_json.jsonl", 2, "not JSON"},
    {"trailing_garbage.jsonl", 1, "not JSON"},
    {"two_objects.jsonl", 3, "not JSON"},
    {"not_object_array.jsonl", 2, "the line is an array, not a JSON object"},
    {"not_object_string.jsonl", 1, "the line is a string, not a JSON object"},
    {"missing_field.jsonl", 3, "the object has no \"text\" member"},
    {"field_number.jsonl", 1, "member \"text\" is a number, not a string"},
    {"field_null.jsonl", 1, "member \"text\" is null, not a string"},
    {"field_object.jsonl", 1, "member \"text\" is an object, not a string"},
    {"duplicate_key.jsonl", 1, "not JSON: duplicate object key"},
    {"bad_utf8.jsonl", 2,
     "invalid UTF-8 at byte 11 of the line (byte 28 of the file; 0xc3: missing continuation"},
    {"overlong_2byte.jsonl", 1, "at byte 10 of the line (byte 10 of the file; 0xc0: overlong"},
    {"overlong_3byte.jsonl", 1, "0xe0: overlong encoding"},
    {"overlong_4byte.jsonl", 1, "0xf0: overlong encoding"},
    {"surrogate.jsonl", 1, "0xed: UTF-16 surrogate"},
    {"above_max.jsonl", 1, "0xf4: code point above U+10FFFF"},
    {"byte_f5.jsonl", 1, "0xf5: byte that never occurs in UTF-8"},
    {"byte_ff.jsonl", 1, "0xff: byte that never occurs in UTF-8"},
    {"lone_continuation.jsonl", 1, "at byte 11 of the line (byte 11 of the file; 0x80: "
                                   "continuation byte without a lead byte"},
    {"utf8_outside_string.jsonl", 1, "at byte 15 of the line"},
    {"surrogate_escape.jsonl", 1, "not JSON: invalid Unicode"},
    {"low_surrogate_escape.jsonl", 1, "not JSON: invalid Unicode"},
    {"raw_nul.jsonl", 1, "not JSON"},
    {"raw_control.jsonl", 1, "not JSON"},
    {"crlf_bad_json.jsonl", 4, "not JSON"},
    {"bad_utf8.txt", 3, "invalid UTF-8 at byte 10 of the file (0xff"},
    {"truncated_utf8.txt", 2, "at byte 8 of the file (0xe2: truncated sequence at the end)"},
    {"surrogate.txt", 1, "at byte 0 of the file (0xed: UTF-16 surrogate"},
    {"empty.jsonl.zst", 1, "truncated: the file is empty, no zstd frame"},
    {"not_zstd.jsonl.zst", 1, "not a zstd frame"},
    {"truncated_header.txt.zst", 1, "truncated: the zstd frame ends early"},
    {"truncated.jsonl.zst", 3, "truncated: the zstd frame ends early"},
    {"truncated_between_blocks.jsonl.zst", 2, "truncated: the zstd frame ends early"},
    {"corrupt_block.jsonl.zst", 1, "corrupt zstd data"},
    {"bad_checksum.jsonl.zst", 1, "checksum mismatch"},
    {"window_too_large.jsonl.zst", 1, "window larger"},
    {"trailing_garbage.jsonl.zst", 3, "not a zstd frame"},
    {"second_frame_truncated.jsonl.zst", 2, "truncated: the zstd frame ends early"},
    {"bad_utf8.jsonl.zst", 2, "at byte 10 of the line (byte 27 of the decompressed stream"},
    {"bad_json_after_rle.jsonl.zst", 2, "not JSON"},
};
enum { N_REJECT = sizeof reject_cases / sizeof reject_cases[0] };

/* Refused with AW_ERR_CORPUS, a message naming the file, the line and the
 * defect; the documents before the bad line are still handed out. */
static void run_reject_case(void **state)
{
    const reject_case *c = *state;
    char rel[256], line[32];
    snprintf(rel, sizeof rel, "tests/fixtures/corpus/reject/%s", c->file);
    snprintf(line, sizeof line, ": line %d: ", c->line);
    char *path = aw_test_source_path(rel);
    docs d;
    aw_status st = read_all(path, NULL, &d);
    aw_assert_status(st, AW_ERR_CORPUS, path);
    aw_assert_status(st, AW_ERR_CORPUS, line);
    aw_assert_status(st, AW_ERR_CORPUS, c->needle);
    docs_free(&d);
    free(path);
}

static void test_reject_folder_matches_table(void **state)
{
    (void)state;
    char *dir = aw_test_source_path("tests/fixtures/corpus/reject");
    DIR *d = opendir(dir);
    assert_non_null(d);
    int seen[N_REJECT] = {0};
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        int found = 0;
        for (size_t i = 0; i < N_REJECT; i++)
            if (strcmp(de->d_name, reject_cases[i].file) == 0) seen[i] = found = 1;
        if (!found) fail_msg("%s/%s has no row in reject_cases", dir, de->d_name);
    }
    closedir(d);
    for (size_t i = 0; i < N_REJECT; i++)
        if (!seen[i])
            fail_msg("%s/%s is missing (run make_corpus_fixtures.py)", dir, reject_cases[i].file);
    free(dir);
}

/* ----------------------------------------------------- UTF-8, one by one -- */

static void test_utf8_table(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *s;
        int ok;
    } cases[] = {
        {"\x7f", 1},
        {"\xc2\x80", 1},
        {"\xdf\xbf", 1},
        {"\xe0\xa0\x80", 1},
        {"\xed\x9f\xbf", 1},             /* U+D7FF */
        {"\xee\x80\x80", 1},             /* U+E000 */
        {"\xef\xbf\xbf", 1},             /* U+FFFF */
        {"\xf0\x90\x80\x80", 1},         /* U+10000 */
        {"\xf4\x8f\xbf\xbf", 1},         /* U+10FFFF */
        {"\xc0\x80", 0},                 /* overlong NUL */
        {"\xc1\xbf", 0},
        {"\xe0\x9f\xbf", 0},             /* overlong U+07FF */
        {"\xf0\x8f\xbf\xbf", 0},         /* overlong U+FFFF */
        {"\xed\xa0\x80", 0},             /* U+D800 */
        {"\xed\xbf\xbf", 0},             /* U+DFFF */
        {"\xed\xa0\xbd\xed\xb8\x80", 0}, /* a CESU-8 surrogate pair */
        {"\xf4\x90\x80\x80", 0},         /* U+110000 */
        {"\xf5\x80\x80\x80", 0},
        {"\xf8\x88\x80\x80\x80", 0},
        {"\xfe", 0},
        {"\xff", 0},
        {"\x80", 0},
        {"\xbf", 0},
        {"\xc2", 0},
        {"\xe2\x82", 0},
        {"\xf0\x9f\x98", 0},
        {"\xc2\x41", 0},
        {"\xe2\x28\xa1", 0},
        {"\xe2\x82\x28", 0},
        {"\xf0\x9f\x28\x80", 0},
        {"\xf0\x9f\x98\x28", 0},
    };
    const char *path = in_dir(f, "u.txt");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* 9 bytes of ASCII before it: the offset is 9, past the 8-byte
         * fast path, and the same in the .jsonl form */
        char buf[64];
        int n = snprintf(buf, sizeof buf, "abcdefgh\n%s", cases[i].s);
        aw_test_write_bytes(path, buf, (size_t)n);
        docs d;
        aw_status st = read_all(path, NULL, &d);
        if (cases[i].ok) {
            aw_assert_status(st, AW_OK, NULL);
            assert_doc(&d, 0, buf, (size_t)n);
        } else {
            aw_assert_status(st, AW_ERR_CORPUS, "line 2: invalid UTF-8 at byte 9 of the file");
        }
        docs_free(&d);
    }
    const char *jpath = in_dir(f, "u.jsonl");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        int n = snprintf(buf, sizeof buf, "\n{\"text\":\"%s\"}", cases[i].s);
        aw_test_write_bytes(jpath, buf, (size_t)n);
        docs d;
        aw_status st = read_all(jpath, NULL, &d);
        if (cases[i].ok) {
            aw_assert_status(st, AW_OK, NULL);
            assert_doc(&d, 0, cases[i].s, strlen(cases[i].s));
        } else {
            aw_assert_status(st, AW_ERR_CORPUS, "line 2: invalid UTF-8 at byte 9 of the line");
        }
        docs_free(&d);
    }
}

/* ------------------------------------------------------ caps and errors -- */

static void test_line_cap(void **state)
{
    fixture *f = *state;
    const char *path = in_dir(f, "cap.jsonl");
    /* line 1 is 15 bytes, line 3 is 16 */
    static const char text[] = "{\"text\":\"abcd\"}\n\n{\"text\":\"abcde\"}\n";
    aw_test_write_bytes(path, text, sizeof text - 1);
    docs d;
    aw_assert_status(read_all_cap(path, NULL, 15, &d), AW_ERR_CORPUS,
                     "line 3: line longer than the cap of 15 bytes");
    assert_int_equal(d.n, 1);
    docs_free(&d);
    aw_assert_status(read_all_cap(path, NULL, 16, &d), AW_OK, NULL);
    assert_int_equal(d.n, 2);
    docs_free(&d);

    /* a long line without '\n' is refused as soon as it passes the cap,
     * also when it comes in through zstd, in many fills */
    bytes big = {0};
    puts_(&big, "{\"text\":\"");
    for (int i = 0; i < 300000; i++) put(&big, "x", 1);
    write_bytes(path, &big);
    aw_assert_status(read_all_cap(path, NULL, 200000, &d), AW_ERR_CORPUS,
                     "line 1: line longer than the cap of 200000 bytes");
    docs_free(&d);
    bytes z = zst(big.p, big.n, 0, 0, 0);
    write_bytes(in_dir(f, "cap.jsonl.zst"), &z);
    aw_assert_status(read_all_cap(in_dir(f, "cap.jsonl.zst"), NULL, 200000, &d), AW_ERR_CORPUS,
                     "line 1: line longer than the cap of 200000 bytes");
    docs_free(&d);
    free(z.p);

    /* .txt: the document is the file */
    write_bytes(in_dir(f, "cap.txt"), &big);
    aw_assert_status(read_all_cap(in_dir(f, "cap.txt"), NULL, 1000, &d), AW_ERR_CORPUS,
                     "document longer than the cap of 1000 bytes");
    docs_free(&d);
    aw_assert_status(read_all_cap(in_dir(f, "cap.txt"), NULL, big.n, &d), AW_OK, NULL);
    assert_int_equal(d.n, 1);
    docs_free(&d);
    aw_assert_status(read_all_cap(in_dir(f, "cap.txt"), NULL, big.n - 1, &d), AW_ERR_CORPUS,
                     "cap.txt: line 1: document");
    docs_free(&d);
    free(big.p);
}

static void test_open_errors(void **state)
{
    fixture *f = *state;
    aw_corpus *c = (aw_corpus *)1;
    aw_assert_status(aw_corpus_open(in_dir(f, "missing.jsonl"), NULL, &c), AW_ERR_IO,
                     "missing.jsonl: cannot open");
    assert_null(c);
    c = (aw_corpus *)1;
    aw_assert_status(aw_corpus_open(in_dir(f, "missing.txt.zst"), NULL, &c), AW_ERR_IO,
                     "missing.txt.zst");
    assert_null(c);
    c = (aw_corpus *)1;
    aw_assert_status(aw_corpus_open(in_dir(f, "data.json"), NULL, &c), AW_ERR_ARG,
                     "data.json: unknown corpus type");
    assert_null(c);
    aw_assert_status(aw_corpus_open(in_dir(f, "data.zst"), NULL, &c), AW_ERR_ARG, "data.zst");
    aw_assert_status(aw_corpus_open(in_dir(f, "data.txt.gz"), NULL, &c), AW_ERR_ARG, NULL);
    aw_assert_status(aw_corpus_open(NULL, NULL, &c), AW_ERR_ARG, NULL);
    aw_assert_status(aw_corpus_open("x.txt", NULL, NULL), AW_ERR_ARG, NULL);

    /* a folder opens, then reading fails as I/O */
    const char *dir = in_dir(f, "folder.jsonl");
    assert_int_equal(mkdir(dir, 0755), 0);
    docs d;
    aw_assert_status(read_all(dir, NULL, &d), AW_ERR_IO, "folder.jsonl: line 1: read failed");
    docs_free(&d);

    const char *doc;
    size_t len;
    aw_assert_status(aw_corpus_next(NULL, &doc, &len), AW_ERR_ARG, NULL);
    aw_corpus_close(NULL);
}

/* After a failure every call fails; the documents before it were good. */
static void test_error_is_sticky(void **state)
{
    fixture *f = *state;
    const char *path = in_dir(f, "sticky.jsonl");
    static const char text[] = "{\"text\":\"one\"}\n{\"text\":1}\n{\"text\":\"three\"}\n";
    aw_test_write_bytes(path, text, sizeof text - 1);
    aw_corpus *c;
    assert_int_equal(aw_corpus_open(path, NULL, &c), AW_OK);
    const char *doc;
    size_t len;
    assert_int_equal(aw_corpus_next(c, &doc, &len), AW_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(doc, "one", 3);
    aw_assert_status(aw_corpus_next(c, &doc, &len), AW_ERR_CORPUS, "line 2: member");
    assert_null(doc);
    aw_assert_status(aw_corpus_next(c, &doc, &len), AW_ERR_CORPUS, "sticky.jsonl");
    assert_null(doc);
    aw_corpus_close(c);
}

/* ------------------------------------------------------ Python random -- */

/* Parse "u64 u64 ..." from *p. */
static uint64_t next_u64(char **p)
{
    char *end;
    unsigned long long v = strtoull(*p, &end, 10);
    if (end == *p) fail_msg("pyrand.txt: number expected at \"%.20s\"", *p);
    *p = end;
    return (uint64_t)v;
}

static void test_pyrand_fixture(void **state)
{
    (void)state;
    char *path = aw_test_source_path("tests/fixtures/pyrand.txt");
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char *line = NULL;
    size_t cap = 0;
    int n_randrange = 0, n_mix = 0, n_windows = 0, n_err = 0;
    int seen_seed[4] = {0}, seen_n1 = 0;
    while (getline(&line, &cap, fp) > 0) {
        if (line[0] == '#') continue;
        char *p = line;
        aw_pyrand r, r32;
        if (strncmp(p, "randrange ", 10) == 0) {
            p += 10;
            uint64_t seed = next_u64(&p), n = next_u64(&p), skip = next_u64(&p);
            uint64_t count = next_u64(&p);
            aw_pyrand_seed(&r, seed);
            aw_pyrand_seed(&r32, seed);
            for (uint64_t i = 0; i < skip; i++) {
                aw_pyrand_randbelow64(&r, n);
                if (n <= UINT32_MAX) aw_pyrand_randbelow(&r32, (uint32_t)n);
            }
            for (uint64_t i = 0; i < count; i++) {
                uint64_t want = next_u64(&p);
                uint64_t got = aw_pyrand_randbelow64(&r, n);
                if (got != want)
                    fail_msg("seed %llu randrange(%llu) draw %llu: %llu, Python %llu",
                             (unsigned long long)seed, (unsigned long long)n,
                             (unsigned long long)(skip + i), (unsigned long long)got,
                             (unsigned long long)want);
                if (n <= UINT32_MAX) assert_int_equal(aw_pyrand_randbelow(&r32, (uint32_t)n), want);
            }
            seen_seed[0] |= seed == 0, seen_seed[1] |= seed == 1, seen_seed[2] |= seed == 42;
            seen_seed[3] |= seed == (1ull << 32) + 5;
            seen_n1 |= n == 1;
            n_randrange++;
        } else if (strncmp(p, "mix ", 4) == 0) {
            p += 4;
            uint64_t seed = next_u64(&p), count = next_u64(&p);
            aw_pyrand_seed(&r, seed);
            for (uint64_t i = 0; i < count; i++) {
                uint64_t n = next_u64(&p), want = next_u64(&p);
                assert_int_equal(aw_pyrand_randbelow64(&r, n), want);
            }
            n_mix++;
        } else if (strncmp(p, "windows ", 8) == 0) {
            p += 8;
            uint64_t n_tokens = next_u64(&p), L = next_u64(&p), nc = next_u64(&p);
            uint64_t nh = next_u64(&p), seed = next_u64(&p);
            uint64_t *starts = calloc(nc + nh + 1, sizeof *starts);
            assert_non_null(starts);
            aw_status st = aw_draw_windows((size_t)n_tokens, (uint32_t)L, (uint32_t)nc,
                                           (uint32_t)nh, seed, starts);
            while (*p == ' ') p++;
            if (strncmp(p, "error", 5) == 0) {
                aw_assert_status(st, AW_ERR_CORPUS, "too short");
                n_err++;
            } else {
                aw_assert_status(st, AW_OK, NULL);
                for (uint64_t i = 0; i < nc + nh; i++) {
                    uint64_t want = next_u64(&p);
                    if (starts[i] != want)
                        fail_msg("windows n=%llu L=%llu seed %llu: start %llu is %llu, Python "
                                 "%llu",
                                 (unsigned long long)n_tokens, (unsigned long long)L,
                                 (unsigned long long)seed, (unsigned long long)i,
                                 (unsigned long long)starts[i], (unsigned long long)want);
                }
            }
            free(starts);
            n_windows++;
        } else {
            fail_msg("pyrand.txt: unknown line \"%.30s\"", line);
        }
    }
    free(line);
    fclose(fp);
    free(path);
    assert_true(n_randrange >= 100 && n_mix >= 3 && n_windows >= 8 && n_err >= 2);
    assert_true(seen_seed[0] && seen_seed[1] && seen_seed[2] && seen_seed[3] && seen_n1);
}

/* Held-out windows never overlap a calibration window; all starts are in
 * range; calibration starts are the plain draws of the seeded generator. */
static void test_windows_properties(void **state)
{
    (void)state;
    uint64_t s = 12345;
    for (int trial = 0; trial < 300; trial++) {
        uint32_t L = 1 + (uint32_t)(rng_next(&s) % 300);
        uint32_t nc = (uint32_t)(rng_next(&s) % 40), nh = (uint32_t)(rng_next(&s) % 20);
        size_t n_tokens = L + 1 + (size_t)(rng_next(&s) % ((uint64_t)(nc + nh + 2) * L * 3));
        uint64_t seed = rng_next(&s) % 5 == 0 ? rng_next(&s) : (uint64_t)trial;
        uint64_t starts[60];
        aw_err_clear();
        aw_status st = aw_draw_windows(n_tokens, L, nc, nh, seed, starts);
        if (st != AW_OK) {
            aw_assert_status(st, AW_ERR_CORPUS, "is too short for");
            assert_true(nh > 0);
            continue;
        }
        aw_pyrand r;
        aw_pyrand_seed(&r, seed);
        for (uint32_t i = 0; i < nc; i++)
            assert_int_equal(starts[i], aw_pyrand_randbelow64(&r, n_tokens - L));
        for (uint32_t i = 0; i < nc + nh; i++) assert_true(starts[i] + L < n_tokens);
        for (uint32_t h = nc; h < nc + nh; h++)
            for (uint32_t i = 0; i < nc; i++)
                if (starts[h] < starts[i] + L && starts[i] < starts[h] + L)
                    fail_msg("held-out start %llu overlaps calibration start %llu (L %u)",
                             (unsigned long long)starts[h], (unsigned long long)starts[i], L);
    }
}

static void test_windows_errors(void **state)
{
    (void)state;
    uint64_t st3[3];
    aw_assert_status(aw_draw_windows(2048, 2048, 1, 0, 0, st3), AW_ERR_CORPUS,
                     "corpus of 2048 tokens is too short for one window of 2048 tokens");
    aw_assert_status(aw_draw_windows(0, 1, 1, 0, 0, st3), AW_ERR_CORPUS, "0 tokens");
    /* exactly L + 1 tokens: the only start is 0 */
    assert_int_equal(aw_draw_windows(2049, 2048, 3, 0, 5, st3), AW_OK);
    assert_true(st3[0] == 0 && st3[1] == 0 && st3[2] == 0);
    /* one calibration window covers every held-out start */
    aw_assert_status(aw_draw_windows(150, 100, 1, 1, 0, st3), AW_ERR_CORPUS,
                     "corpus of 150 tokens is too short for 1 held-out windows");
    aw_assert_status(aw_draw_windows(100, 0, 1, 0, 0, st3), AW_ERR_ARG, "length 0");
    aw_assert_status(aw_draw_windows(100, 10, 1, 0, 0, NULL), AW_ERR_ARG, NULL);
    assert_int_equal(aw_draw_windows(100, 10, 0, 0, 0, NULL), AW_OK);
    /* held-out windows only, no calibration ones: nothing to avoid */
    assert_int_equal(aw_draw_windows(11, 10, 0, 3, 0, st3), AW_OK);
    assert_true(st3[0] == 0 && st3[1] == 0 && st3[2] == 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest fixed[] = {
        T(test_txt_round_trip),
        T(test_jsonl_round_trip),
        T(test_jsonl_escapes),
        cmocka_unit_test(test_accept_fixtures),
        cmocka_unit_test(test_accept_folder),
        cmocka_unit_test(test_reject_folder_matches_table),
        T(test_utf8_table),
        T(test_line_cap),
        T(test_open_errors),
        T(test_error_is_sticky),
        cmocka_unit_test(test_pyrand_fixture),
        cmocka_unit_test(test_windows_properties),
        cmocka_unit_test(test_windows_errors),
    };
    enum { N_FIXED = sizeof fixed / sizeof fixed[0] };
    /* one named test per must-reject file */
    struct CMUnitTest tests[N_FIXED + N_REJECT];
    memcpy(tests, fixed, sizeof fixed);
    for (size_t i = 0; i < N_REJECT; i++)
        tests[N_FIXED + i] = (struct CMUnitTest){.name = reject_cases[i].file,
                                                 .test_func = run_reject_case,
                                                 .initial_state = (void *)&reject_cases[i]};
    return _cmocka_run_group_tests("corpus", tests, N_FIXED + N_REJECT, NULL, NULL);
}
