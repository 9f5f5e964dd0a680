/* test_tokenizer.c - the tokenizer against ids Hugging Face gave on the same
 * text (tests/fixtures/make_tokenizer_fixtures.py wrote them), the folders
 * it must refuse, invalid UTF-8, and concurrent use.
 *
 * Big tokenizer files are not committed: the fixture folders say (spec.json)
 * how to lay them out from $AWEQ_SHARED_DATA (GPT-2's encoder.json and
 * vocab.bpe), and this file does it in a temporary folder: symlinks, OPT's
 * renumbered vocab.json, tokenizer.json skeletons filled with GPT-2's vocab
 * and merges. */
#include <dirent.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "aw_fs.h"
#include "aw_tokenizer.h"
#include "testutil.h"

#define FIX "tests/fixtures/tokenizer"

/* ---- helpers ---------------------------------------------------------------- */

typedef struct {
    size_t n;       /* records */
    uint32_t *cnt;  /* ids per record */
    uint32_t **ids; /* into one buffer */
    uint8_t *raw;
} expected;

static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Read expected/NAME.sS.ids.zst (falling back to s0); 0 if absent. */
static int read_expected(const char *name, int s, expected *e)
{
    memset(e, 0, sizeof *e);
    char rel[256];
    snprintf(rel, sizeof rel, FIX "/expected/%s.s%d.ids.zst", name, s);
    char *path = aw_test_source_path(rel);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        free(path);
        return s ? read_expected(name, 0, e) : 0;
    }
    size_t zn;
    uint8_t *z = aw_test_read_bytes(path, &zn);
    unsigned long long rn = ZSTD_getFrameContentSize(z, zn);
    assert_true(rn != ZSTD_CONTENTSIZE_ERROR && rn != ZSTD_CONTENTSIZE_UNKNOWN && rn >= 4);
    e->raw = malloc((size_t)rn);
    assert_non_null(e->raw);
    assert_int_equal(ZSTD_decompress(e->raw, (size_t)rn, z, zn), rn);
    free(z);
    free(path);
    e->n = ld32(e->raw);
    e->cnt = calloc(e->n, sizeof *e->cnt);
    e->ids = calloc(e->n, sizeof *e->ids);
    assert_non_null(e->cnt);
    assert_non_null(e->ids);
    size_t off = 4;
    for (size_t r = 0; r < e->n; r++) {
        assert_true(off + 4 <= rn);
        e->cnt[r] = ld32(e->raw + off);
        off += 4;
        assert_true(off + 4 * (size_t)e->cnt[r] <= rn);
        /* decode in place (little-endian on disk, whatever the host) */
        e->ids[r] = (uint32_t *)(void *)(e->raw + off);
        for (uint32_t i = 0; i < e->cnt[r]; i++) {
            uint32_t v = ld32(e->raw + off + 4 * i);
            memcpy(e->raw + off + 4 * i, &v, 4);
        }
        off += 4 * (size_t)e->cnt[r];
    }
    assert_int_equal(off, rn);
    return 1;
}

static void expected_free(expected *e)
{
    free(e->cnt);
    free(e->ids);
    free(e->raw);
}

static const char *shared_data(void)
{
    const char *d = getenv("AWEQ_SHARED_DATA");
    if (!d || !*d) return NULL;
    char p[4096];
    snprintf(p, sizeof p, "%s/gpt2-tokenizer/vocab.bpe", d);
    struct stat sb;
    return stat(p, &sb) == 0 ? d : NULL;
}

static char *shared_path(const char *rel)
{
    const char *d = shared_data();
    size_t n = strlen(d) + strlen(rel) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", d, rel);
    return p;
}

static void copy_file(const char *from, const char *to)
{
    size_t n;
    uint8_t *b = aw_test_read_bytes(from, &n);
    aw_test_write_bytes(to, b, n);
    free(b);
}

static void link_shared(const char *dir, const char *name, const char *rel)
{
    char *src = shared_path(rel);
    char *dst = aw_path_join(dir, name);
    assert_int_equal(symlink(src, dst), 0);
    free(src);
    free(dst);
}

/* Copy the committed files of fixture folder `name` (spec.json aside). */
static void copy_fixture(const char *name, const char *dir)
{
    char rel[256];
    snprintf(rel, sizeof rel, FIX "/%s", name);
    char *src = aw_test_source_path(rel);
    DIR *d = opendir(src);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "spec.json") == 0) continue;
        char *a = aw_path_join(src, de->d_name), *b = aw_path_join(dir, de->d_name);
        copy_file(a, b);
        free(a);
        free(b);
    }
    closedir(d);
    free(src);
}

/* The OPT-style vocab.json: <s> <pad> </s> <unk> = 0..3, then GPT-2's tokens
 * (by GPT-2 id) at 4 + perm[id], perm from the script's opt_permutation. */
static void write_opt_vocab(const char *dir)
{
    char *src = shared_path("gpt2-tokenizer/encoder.json");
    json_error_t err;
    json_t *gv = json_load_file(src, 0, &err);
    assert_non_null(gv);
    size_t n = json_object_size(gv);
    const char **by_id = calloc(n, sizeof *by_id);
    uint32_t *perm = malloc(n * sizeof *perm);
    assert_non_null(by_id);
    assert_non_null(perm);
    const char *k;
    json_t *v;
    json_object_foreach(gv, k, v)
    {
        json_int_t id = json_integer_value(v);
        assert_true(id >= 0 && (size_t)id < n);
        by_id[id] = k;
    }
    for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    uint64_t x = 20240229;
    for (size_t i = n - 1; i > 0; i--) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        size_t j = (size_t)((x >> 33) % (i + 1));
        uint32_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    json_t *ov = json_object();
    const char *sp[4] = {"<s>", "<pad>", "</s>", "<unk>"};
    for (int i = 0; i < 4; i++) json_object_set_new(ov, sp[i], json_integer(i));
    for (size_t i = 0; i < n; i++) json_object_set_new(ov, by_id[i], json_integer(4 + perm[i]));
    char *dst = aw_path_join(dir, "vocab.json");
    assert_int_equal(json_dump_file(ov, dst, JSON_COMPACT), 0);
    free(dst);
    json_decref(ov);
    json_decref(gv);
    free(by_id);
    free(perm);
    free(src);
}

/* Append n bytes to a growing buffer. */
static void put(char **b, size_t *n, size_t *cap, const void *s, size_t k)
{
    if (*n + k > *cap) {
        *cap = 2 * (*n + k);
        *b = realloc(*b, *cap);
        assert_non_null(*b);
    }
    memcpy(*b + *n, s, k);
    *n += k;
}

/* A JSON string of merge-file text (only '"' and '\\' occur to escape). */
static void put_jstr(char **b, size_t *n, size_t *cap, const uint8_t *s, size_t k)
{
    put(b, n, cap, "\"", 1);
    for (size_t i = 0; i < k; i++) {
        if (s[i] == '"' || s[i] == '\\') put(b, n, cap, "\\", 1);
        put(b, n, cap, s + i, 1);
    }
    put(b, n, cap, "\"", 1);
}

/* Fill a tokenizer.json skeleton with GPT-2's vocabulary and merges: the
 * text of encoder.json spliced in for `"vocab": {}`, vocab.bpe's lines for
 * `"merges": []` (as "a b" strings or ["a", "b"] pairs). Text splicing
 * keeps this cheap under the sanitizers. */
static void fill_tokenizer_json(const char *dir, int merges_as_pairs)
{
    char *path = aw_path_join(dir, "tokenizer.json");
    size_t sn, vn, mn;
    char *sk = (char *)aw_test_read_bytes(path, &sn);
    sk[sn] = '\0';
    char *vp = shared_path("gpt2-tokenizer/encoder.json");
    uint8_t *v = aw_test_read_bytes(vp, &vn);
    char *mp = shared_path("gpt2-tokenizer/vocab.bpe");
    uint8_t *m = aw_test_read_bytes(mp, &mn);
    const char *va = strstr(sk, "\"vocab\": {}"), *ma = strstr(sk, "\"merges\": []");
    assert_non_null(va);
    assert_non_null(ma);
    assert_true(va < ma);
    char *b = NULL;
    size_t n = 0, cap = 0;
    put(&b, &n, &cap, sk, (size_t)(va - sk));
    put(&b, &n, &cap, "\"vocab\": ", 9);
    put(&b, &n, &cap, v, vn);
    const char *mid = va + strlen("\"vocab\": {}");
    put(&b, &n, &cap, mid, (size_t)(ma - mid));
    put(&b, &n, &cap, "\"merges\": [", 11);
    int firstm = 1;
    for (size_t i = 0; i < mn;) {
        size_t e = i;
        while (e < mn && m[e] != '\n') e++;
        if (e > i && !(e - i >= 8 && memcmp(m + i, "#version", 8) == 0)) {
            if (!firstm) put(&b, &n, &cap, ",", 1);
            firstm = 0;
            if (merges_as_pairs) {
                const uint8_t *sp = memchr(m + i, ' ', e - i);
                assert_non_null(sp);
                put(&b, &n, &cap, "[", 1);
                put_jstr(&b, &n, &cap, m + i, (size_t)(sp - (m + i)));
                put(&b, &n, &cap, ",", 1);
                put_jstr(&b, &n, &cap, sp + 1, (size_t)(m + e - sp - 1));
                put(&b, &n, &cap, "]", 1);
            } else {
                put_jstr(&b, &n, &cap, m + i, e - i);
            }
        }
        i = e + 1;
    }
    const char *tail = ma + strlen("\"merges\": []");
    put(&b, &n, &cap, "]", 1);
    put(&b, &n, &cap, tail, strlen(tail));
    aw_test_write_bytes(path, b, n);
    free(b);
    free(sk);
    free(v);
    free(m);
    free(vp);
    free(mp);
    free(path);
}

/* Lay out fixture `name` in a fresh temporary folder (returned). */
static char *make_folder(const char *name, int merges_as_pairs)
{
    char *dir = aw_test_tmpdir();
    copy_fixture(name, dir);
    if (strcmp(name, "gpt2") == 0 || strcmp(name, "opt") == 0) {
        link_shared(dir, "merges.txt", "gpt2-tokenizer/vocab.bpe");
        if (strcmp(name, "gpt2") == 0)
            link_shared(dir, "vocab.json", "gpt2-tokenizer/encoder.json");
        else
            write_opt_vocab(dir);
    } else if (strcmp(name, "gpt2-json") == 0 || strcmp(name, "llama3-json") == 0 ||
               strcmp(name, "qwen2-json") == 0) {
        fill_tokenizer_json(dir, merges_as_pairs);
    }
    return dir;
}

/* The texts of the records: hard_cases.txt whole, its lines, the wiki text
 * (all of it or its first `slice` bytes). */
typedef struct {
    char *hard, *wiki;
    size_t hard_n, wiki_n;
} texts;

static void load_texts(texts *t, size_t slice)
{
    char *p = aw_test_source_path(FIX "/hard_cases.txt");
    t->hard = (char *)aw_test_read_bytes(p, &t->hard_n);
    free(p);
    p = shared_path("wikitext-2/wiki.test.raw");
    t->wiki = (char *)aw_test_read_bytes(p, &t->wiki_n);
    free(p);
    if (slice && slice < t->wiki_n) {
        /* the script cut at a byte count and dropped a split character */
        size_t n = slice;
        while (n > 0 && ((uint8_t)t->wiki[n] & 0xC0) == 0x80) n--;
        t->wiki_n = n;
    }
}

static void free_texts(texts *t)
{
    free(t->hard);
    free(t->wiki);
}

static void print_ids(const char *what, const uint32_t *v, size_t n, size_t at)
{
    size_t lo = at > 4 ? at - 4 : 0, hi = at + 6 < n ? at + 6 : n;
    fprintf(stderr, "  %s [%zu..%zu):", what, lo, hi);
    for (size_t i = lo; i < hi; i++) fprintf(stderr, " %u", v[i]);
    fprintf(stderr, "\n");
}

/* Encode one text and compare with the expected record; 1 when equal. */
static int check_record(const aw_tokenizer *tk, const char *label, size_t r, const char *s,
                        size_t n, int add_special, const expected *e)
{
    aw_idvec v = {0};
    aw_status st = aw_tokenizer_encode(tk, s, n, add_special, &v);
    if (st != AW_OK) {
        fprintf(stderr, "%s record %zu: %s: %s\n", label, r, aw_status_name(st), aw_err_message());
        aw_idvec_free(&v);
        return 0;
    }
    int ok = v.n == e->cnt[r] && (v.n == 0 || memcmp(v.v, e->ids[r], v.n * 4) == 0);
    if (!ok) {
        size_t at = 0;
        while (at < v.n && at < e->cnt[r] && v.v[at] == e->ids[r][at]) at++;
        fprintf(stderr, "%s record %zu (add_special %d): %zu ids, HF %u; first difference at %zu\n",
                label, r, add_special, v.n, e->cnt[r], at);
        print_ids("ours", v.v, v.n, at);
        print_ids("HF  ", e->ids[r], e->cnt[r], at);
        fprintf(stderr, "  text: \"%.*s\"\n", (int)(n > 120 ? 120 : n), s);
    }
    aw_idvec_free(&v);
    return ok;
}

/* Every record of fixture `name` (folder `dir`), both add_special values. */
static void check_fixture(const char *name, const char *dir, const char *expected_name,
                          size_t slice)
{
    aw_tokenizer *tk = NULL;
    aw_status st = aw_tokenizer_open(dir, &tk);
    if (st != AW_OK) fail_msg("%s: %s: %s", name, aw_status_name(st), aw_err_message());
    texts tx;
    load_texts(&tx, slice);
    int failed = 0;
    for (int s = 0; s < 2; s++) {
        expected e;
        assert_true(read_expected(expected_name, s, &e));
        size_t r = 0;
        failed += !check_record(tk, name, r++, tx.hard, tx.hard_n, s, &e);
        for (size_t i = 0; i <= tx.hard_n; r++) {
            size_t j = i;
            while (j < tx.hard_n && tx.hard[j] != '\n') j++;
            assert_true(r < e.n);
            failed += !check_record(tk, name, r, tx.hard + i, j - i, s, &e);
            i = j + 1;
        }
        assert_int_equal(r + 1, e.n);
        failed += !check_record(tk, name, r, tx.wiki, tx.wiki_n, s, &e);
        expected_free(&e);
    }
    free_texts(&tx);
    aw_tokenizer_close(tk);
    if (failed) fail_msg("%s: %d records differ from Hugging Face", name, failed);
}

#define NEED_SHARED()                                                                              \
    do {                                                                                           \
        if (!shared_data()) {                                                                      \
            fprintf(stderr, "AWEQ_SHARED_DATA not set or incomplete: skipped\n");                  \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- the forms ------------------------------------------------------------------ */

static void test_gpt2_vocab_merges(void **state)
{
    (void)state;
    NEED_SHARED();
    char *dir = make_folder("gpt2", 0);
    check_fixture("gpt2", dir, "gpt2", 0);
    aw_tokenizer *tk;
    assert_int_equal(aw_tokenizer_open(dir, &tk), AW_OK);
    assert_int_equal(aw_tokenizer_vocab_size(tk), 50257);
    assert_int_equal(aw_tokenizer_bos(tk), 50256); /* GPT2Tokenizer's default, not added */
    assert_non_null(strstr(aw_tokenizer_describe(tk), "vocab.json + merges.txt"));
    aw_tokenizer_close(tk);
    aw_test_rmtree(dir);
    free(dir);
}

static void test_opt_folder(void **state)
{
    (void)state;
    NEED_SHARED();
    char *dir = make_folder("opt", 0);
    check_fixture("opt", dir, "opt", 0);
    aw_tokenizer *tk;
    assert_int_equal(aw_tokenizer_open(dir, &tk), AW_OK);
    assert_int_equal(aw_tokenizer_vocab_size(tk), 50261);
    assert_int_equal(aw_tokenizer_bos(tk), 2);
    assert_non_null(strstr(aw_tokenizer_describe(tk), "BOS id 2 added"));
    /* empty text: BOS alone */
    aw_idvec v = {0};
    assert_int_equal(aw_tokenizer_encode(tk, "", 0, 1, &v), AW_OK);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.v[0], 2);
    aw_idvec_free(&v);
    aw_tokenizer_close(tk);
    aw_test_rmtree(dir);
    free(dir);
}

static void test_gpt2_tokenizer_json(void **state)
{
    (void)state;
    NEED_SHARED();
    for (int pairs = 0; pairs < 2; pairs++) {
        char *dir = make_folder("gpt2-json", pairs);
        check_fixture(pairs ? "gpt2-json (merges as pairs)" : "gpt2-json (merges as strings)", dir,
                      "gpt2", 0);
        aw_test_rmtree(dir);
        free(dir);
    }
}

static void test_llama3_style(void **state)
{
    (void)state;
    NEED_SHARED();
    char *dir = make_folder("llama3-json", 0);
    check_fixture("llama3-json", dir, "llama3-json", 0);
    aw_tokenizer *tk;
    assert_int_equal(aw_tokenizer_open(dir, &tk), AW_OK);
    assert_int_equal(aw_tokenizer_bos(tk), 50257); /* <|begin_of_text|>, past the vocabulary */
    assert_int_equal(aw_tokenizer_vocab_size(tk), 50258);
    aw_tokenizer_close(tk);
    aw_test_rmtree(dir);
    free(dir);
}

/* Qwen2's pattern: digits one at a time. */
static void test_qwen2_style(void **state)
{
    (void)state;
    NEED_SHARED();
    char *dir = make_folder("qwen2-json", 0);
    check_fixture("qwen2-json", dir, "qwen2-json", 65536);
    aw_test_rmtree(dir);
    free(dir);
}

static void test_llama_prepend_replace(void **state)
{
    (void)state;
    NEED_SHARED();
    char *dir = make_folder("llama-norm", 0);
    check_fixture("llama-norm", dir, "llama-norm", 65536);
    aw_tokenizer *tk;
    assert_int_equal(aw_tokenizer_open(dir, &tk), AW_OK);
    assert_int_equal(aw_tokenizer_bos(tk), 1);
    assert_non_null(strstr(aw_tokenizer_describe(tk), "byte fallback"));
    aw_tokenizer_close(tk);
    aw_test_rmtree(dir);
    free(dir);
}

static void test_llama_metaspace(void **state)
{
    (void)state;
    NEED_SHARED();
    const char *names[2] = {"llama-meta", "llama-meta-split"};
    for (int i = 0; i < 2; i++) {
        char *dir = make_folder(names[i], 0);
        check_fixture(names[i], dir, names[i], 65536);
        aw_test_rmtree(dir);
        free(dir);
    }
}

/* tokenizer.json wins over vocab.json + merges.txt in one folder. */
static void test_prefers_tokenizer_json(void **state)
{
    (void)state;
    char *dir = aw_test_tmpdir();
    copy_fixture("llama-meta", dir);
    char *p = aw_path_join(dir, "vocab.json");
    aw_test_write_bytes(p, "{\"a\": 0}", 8);
    free(p);
    p = aw_path_join(dir, "merges.txt");
    aw_test_write_bytes(p, "x y\n", 4); /* garbled: would be refused */
    free(p);
    aw_tokenizer *tk;
    assert_int_equal(aw_tokenizer_open(dir, &tk), AW_OK);
    assert_non_null(strstr(aw_tokenizer_describe(tk), "tokenizer.json"));
    aw_tokenizer_close(tk);
    aw_test_rmtree(dir);
    free(dir);
}

/* ---- refusals ---------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every folder of reject/ is refused with AW_ERR_TOKENIZER and a message
 * naming the file (or, for an empty folder, the folder). */
static void test_reject_folders(void **state)
{
    (void)state;
    char *root = aw_test_source_path(FIX "/reject");
    DIR *d = opendir(root);
    assert_non_null(d);
    char *names[128];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 128) {
        if (de->d_name[0] == '.' || strchr(de->d_name, '.')) continue;
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    assert_true(n >= 20);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        char *dir = aw_path_join(root, names[i]);
        aw_tokenizer *tk = (aw_tokenizer *)1;
        aw_err_clear();
        aw_status st = aw_tokenizer_open(dir, &tk);
        const char *msg = aw_err_message();
        if (st != AW_ERR_TOKENIZER || tk != NULL || !strstr(msg, dir)) {
            fprintf(stderr, "FAILED reject/%s: %s (%s)\n", names[i], aw_status_name(st), msg);
            failed++;
            if (st == AW_OK) aw_tokenizer_close(tk);
        } else {
            fprintf(stderr, "  reject/%-26s %s\n", names[i], msg + strlen(root) + 1);
        }
        free(dir);
        free(names[i]);
    }
    free(root);
    if (failed) fail_msg("%d must-reject folders were not refused as they must be", failed);
}

/* Which file the messages name, for the cases the brief lists. */
static void test_reject_messages(void **state)
{
    (void)state;
    static const struct {
        const char *folder, *needle;
    } cases[] = {
        {"missing-merges", "merges.txt: missing"},
        {"merges-three-symbols", "merges.txt: line 2 is not two symbols"},
        {"merges-unknown-symbol", "merges.txt: line 2: \"z\" is not in the vocabulary"},
        {"merges-unknown-result", "merged token \"bc\" is not in the vocabulary"},
        {"vocab-duplicate-id", "vocab.json: the vocabulary gives id 1 to two tokens"},
        {"vocab-not-object", "vocab.json: the vocabulary is not a JSON object"},
        {"wordpiece", "tokenizer.json: model type WordPiece is not supported"},
        {"unigram", "tokenizer.json: model type Unigram is not supported"},
        {"wordlevel", "tokenizer.json: model type WordLevel is not supported"},
        {"sentencepiece-only", "tokenizer.model: a SentencePiece model alone is not supported"},
        {"broken-tokenizer-json", "tokenizer.json: not valid JSON"},
        {"broken-config", "tokenizer_config.json: not valid JSON"},
        {"normalizer-nfkc", "normalizer NFKC is not supported"},
        {"pretok-whitespace", "pre_tokenizer Whitespace is not supported"},
        {"empty-folder", "no tokenizer files in"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, FIX "/reject/%s", cases[i].folder);
        char *dir = aw_test_source_path(rel);
        aw_tokenizer *tk;
        aw_status st = aw_tokenizer_open(dir, &tk);
        aw_assert_status(st, AW_ERR_TOKENIZER, cases[i].needle);
        assert_null(tk);
        free(dir);
    }
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    char *dir = aw_test_source_path(FIX "/llama-meta");
    aw_tokenizer *tk;
    assert_int_equal(aw_tokenizer_open(dir, &tk), AW_OK);
    static const struct {
        const char *s;
        size_t n, off;
    } bad[] = {
        {"abc\xff", 4, 3},
        {"\x80", 1, 0},
        {"ok \xc3", 4, 3},
        {"\xc0\xaf", 2, 0},
        /* overlong '/' */ {"x\xed\xa0\x80", 4, 1}, /* surrogate */
        {"\xf4\x90\x80\x80", 4, 0},
        /* > U+10FFFF */ {"\xe2\x82", 2, 0},
        {"ab\xe2\x28\xa1", 5, 2},
    };
    aw_idvec v = {0};
    assert_int_equal(aw_idvec_push(&v, 7), AW_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "byte offset %zu", bad[i].off);
        aw_assert_status(aw_tokenizer_encode(tk, bad[i].s, bad[i].n, 1, &v), AW_ERR_CORPUS, needle);
        assert_int_equal(v.n, 1); /* out untouched */
        assert_int_equal(v.v[0], 7);
    }
    /* NUL bytes are text */
    assert_int_equal(aw_tokenizer_encode(tk, "a\0b", 3, 0, &v), AW_OK);
    assert_true(v.n > 1);
    aw_idvec_free(&v);
    aw_tokenizer_close(tk);
    free(dir);
}

/* Four threads on one tokenizer give the ids one thread gives. */
typedef struct {
    const aw_tokenizer *tk;
    const char *s;
    size_t n;
    aw_idvec out;
    aw_status st;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    for (int k = 0; k < 3; k++) {
        j->out.n = 0;
        j->st = aw_tokenizer_encode(j->tk, j->s, j->n, 1, &j->out);
        if (j->st != AW_OK) break;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    NEED_SHARED();
    char *dir = make_folder("llama-meta-split", 0);
    aw_tokenizer *tk;
    assert_int_equal(aw_tokenizer_open(dir, &tk), AW_OK);
    texts tx;
    load_texts(&tx, 200000);
    aw_idvec ref = {0};
    assert_int_equal(aw_tokenizer_encode(tk, tx.wiki, tx.wiki_n, 1, &ref), AW_OK);
    job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        /* one text: the threads meet in the word cache */
        jobs[i] = (job){tk, tx.wiki, tx.wiki_n, {0}, AW_OK};
        assert_int_equal(pthread_create(&th[i], NULL, run_job, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].st, AW_OK);
        assert_int_equal(jobs[i].out.n, ref.n);
        assert_memory_equal(jobs[i].out.v, ref.v, ref.n * 4);
        aw_idvec_free(&jobs[i].out);
    }
    aw_idvec_free(&ref);
    free_texts(&tx);
    aw_tokenizer_close(tk);
    aw_test_rmtree(dir);
    free(dir);
}

/* TK_GROUP picks a share of the tests, so that CTest runs them as four
 * programs (tests/io/tokenizer.cmake) each well within its time under the
 * sanitizers; 0 (the default) runs them all. */
#ifndef TK_GROUP
#define TK_GROUP 0
#endif
#define IN_GROUP(g) (TK_GROUP == 0 || TK_GROUP == (g))

int main(void)
{
    struct CMUnitTest tests[16];
    size_t n = 0;
    if (IN_GROUP(1)) {
        tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_gpt2_vocab_merges);
        tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_opt_folder);
    }
    if (IN_GROUP(2)) {
        tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_gpt2_tokenizer_json);
        tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_qwen2_style);
    }
    if (IN_GROUP(3)) {
        tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_llama3_style);
        tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_llama_prepend_replace);
        tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_llama_metaspace);
        tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_prefers_tokenizer_json);
        tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_threads);
    }
    if (IN_GROUP(4)) {
        tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_reject_folders);
        tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_reject_messages);
        tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_invalid_utf8);
    }
    return _cmocka_run_group_tests("test_tokenizer", tests, n, NULL, NULL);
}
