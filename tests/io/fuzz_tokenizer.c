/* fuzz_tokenizer.c - fuzz target for the tokenizer (tokenizer.json loader
 * and encoder), and a replay driver so CTest runs it without a fuzzer.
 *
 * Input: the first byte chooses what the rest is.
 *   b % 4 == 0: a tokenizer.json; when it loads, the input itself and a
 *               fixed text are encoded with it;
 *   b % 4 == 1, 2: text, encoded by a built-in tokenizer (byte-level with
 *               the GPT-2 regex and added tokens; cl100k split + ByteLevel +
 *               ignore_merges), add_special = b >> 2 & 1;
 *   b % 4 == 3: text for a third built-in (Prepend/Replace normalizer, byte
 *               fallback with holes, fused unk, subword prefix and suffix).
 * Invariants: valid UTF-8 encodes (ids below vocab_size); invalid UTF-8 is
 * AW_ERR_CORPUS and leaves the ids as they were; failures to load are
 * AW_ERR_TOKENIZER with *out NULL.
 *
 * Fuzzing (clang, -DAWEQ_FUZZ=ON): LLVMFuzzerTestOneInput only. Otherwise
 * main() replays:
 *     fuzz_tokenizer [--reject-dirs DIR] [--accept-dir DIR] [--any PATH]...
 * --reject-dirs: every sub-folder of DIR must be refused by
 * aw_tokenizer_open (AW_ERR_TOKENIZER), and its files are fed to the target
 * as tokenizer.json inputs; --accept-dir: DIR must open and encode the
 * replayed texts; --any: files (or folders of files) fed as they are.
 * Exit 1 if any expectation fails; a crash or sanitizer report fails by
 * itself. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aw_tokenizer.h"

#define FUZZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

static int valid_utf8(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t b = s[i];
        size_t k;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b < 0x80) {
            i++;
            continue;
        } else if (b >= 0xC2 && b <= 0xDF) {
            k = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            k = 2;
            lo = b == 0xE0 ? 0xA0 : 0x80;
            hi = b == 0xED ? 0x9F : 0xBF;
        } else if (b >= 0xF0 && b <= 0xF4) {
            k = 3;
            lo = b == 0xF0 ? 0x90 : 0x80;
            hi = b == 0xF4 ? 0x8F : 0xBF;
        } else {
            return 0;
        }
        if (n - i <= k || s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t j = 2; j <= k; j++)
            if ((s[i + j] & 0xC0) != 0x80) return 0;
        i += k + 1;
    }
    return 1;
}

/* Encode and check the invariants. */
static void encode_check(const aw_tokenizer *tk, const uint8_t *s, size_t n, int add_special)
{
    aw_idvec v = {0};
    FUZZ_ASSERT(aw_idvec_push(&v, 12345) == AW_OK);
    aw_status st = aw_tokenizer_encode(tk, (const char *)s, n, add_special, &v);
    if (valid_utf8(s, n)) {
        FUZZ_ASSERT(st == AW_OK);
        FUZZ_ASSERT(v.v[0] == 12345);
        uint32_t vs = aw_tokenizer_vocab_size(tk);
        for (size_t i = 1; i < v.n; i++) FUZZ_ASSERT(v.v[i] < vs);
        /* the same text again (now through the word cache) gives the same */
        aw_idvec w = {0};
        FUZZ_ASSERT(aw_tokenizer_encode(tk, (const char *)s, n, add_special, &w) == AW_OK);
        FUZZ_ASSERT(w.n == v.n - 1 && (w.n == 0 || memcmp(w.v, v.v + 1, w.n * 4) == 0));
        aw_idvec_free(&w);
    } else {
        FUZZ_ASSERT(st == AW_ERR_CORPUS);
        FUZZ_ASSERT(v.n == 1 && v.v[0] == 12345);
    }
    aw_idvec_free(&v);
}

/* ---- built-in tokenizers ------------------------------------------------------ */

/* GPT-2's bytes_to_unicode as UTF-8. */
static size_t byte_char(int b, char *out)
{
    static int map[256];
    static int ready;
    if (!ready) {
        int n = 0;
        for (int i = 0; i < 256; i++)
            map[i] =
                ((i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE)) ? i : 256 + n++;
        ready = 1;
    }
    int cp = map[b];
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        FUZZ_ASSERT(b->p);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* A JSON string of a token (only '"' and '\\' need escapes here). */
static void sb_tok(sbuf *b, const char *s, size_t n)
{
    sb_str(b, "\"");
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') sb_str(b, "\\");
        sb_add(b, s + i, 1);
    }
    sb_str(b, "\"");
}

/* Byte-level tokenizer: the 256 byte characters, a few merges of common
 * pairs, added tokens; kind 1 GPT-2 regex (add_prefix_space), kind 2 cl100k
 * split + ByteLevel without regex + ignore_merges. */
static char *byte_level_json(int kind)
{
    static const char *merges[][2] = {{"Ġ", "t"},   {"h", "e"}, {"Ġt", "he"}, {"i", "n"},
                                      {"Ġ", "a"},   {"e", "r"}, {"in", "g"},  {"Ġ", "Ġ"},
                                      {"ĠĠ", "ĠĠ"}, {"1", "2"}, {"12", "3"},  {"Ċ", "Ċ"}};
    sbuf b = {0};
    sb_str(&b, "{\"version\":\"1.0\",\"added_tokens\":[");
    sb_str(&b, "{\"id\":300,\"content\":\"<|endoftext|>\",\"single_word\":false,\"lstrip\":false,"
               "\"rstrip\":false,\"normalized\":false,\"special\":true},");
    sb_str(&b, "{\"id\":301,\"content\":\"<mask>\",\"single_word\":false,\"lstrip\":true,"
               "\"rstrip\":true,\"normalized\":false,\"special\":true},");
    sb_str(&b, "{\"id\":302,\"content\":\"wiki\",\"single_word\":true,\"lstrip\":false,"
               "\"rstrip\":false,\"normalized\":true,\"special\":false}],");
    sb_str(&b, "\"normalizer\":null,");
    if (kind == 1)
        sb_str(&b, "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,"
                   "\"trim_offsets\":true,\"use_regex\":true},");
    else
        sb_str(
            &b,
            "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\","
            "\"pattern\":{\"Regex\":\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?"
            "\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|"
            "\\\\s+(?!\\\\S)|\\\\s+\"},\"behavior\":\"Isolated\",\"invert\":false},"
            "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}]},");
    sb_str(&b,
           "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":"
           "{\"id\":\"<|endoftext|>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
           "\"special_tokens\":{\"<|endoftext|>\":{\"id\":\"<|endoftext|>\",\"ids\":[300]}}},");
    sb_str(&b, "\"model\":{\"type\":\"BPE\",\"ignore_merges\":");
    sb_str(&b, kind == 2 ? "true" : "false");
    sb_str(&b, ",\"vocab\":{");
    char c[4];
    for (int i = 0; i < 256; i++) {
        char num[32];
        size_t n = byte_char(i, c);
        sb_tok(&b, c, n);
        snprintf(num, sizeof num, ":%d,", i);
        sb_str(&b, num);
    }
    size_t nm = sizeof merges / sizeof merges[0];
    for (size_t i = 0; i < nm; i++) {
        char num[32], cat[32];
        snprintf(cat, sizeof cat, "%s%s", merges[i][0], merges[i][1]);
        sb_tok(&b, cat, strlen(cat));
        snprintf(num, sizeof num, ":%zu%s", 256 + i, i + 1 < nm ? "," : "");
        sb_str(&b, num);
    }
    sb_str(&b, "},\"merges\":[");
    for (size_t i = 0; i < nm; i++) {
        sb_str(&b, "[");
        sb_tok(&b, merges[i][0], strlen(merges[i][0]));
        sb_str(&b, ",");
        sb_tok(&b, merges[i][1], strlen(merges[i][1]));
        sb_str(&b, i + 1 < nm ? "]," : "]");
    }
    sb_str(&b, "]}}");
    return b.p;
}

/* SentencePiece-converted form with holes: byte tokens for even bytes
 * only (odd ones go to a fused <unk>), a subword prefix and word suffix. */
static char *llama_json(void)
{
    sbuf b = {0};
    sb_str(
        &b,
        "{\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true,"
        "\"normalized\":false},{\"id\":1,\"content\":\"<s>\",\"special\":true,\"normalized\":false},"
        "{\"id\":2,\"content\":\"</s>\",\"special\":true,\"normalized\":false,\"rstrip\":true}],"
        "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\","
        "\"prepend\":\"▁\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"▁\"}]},"
        "\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"▁\",\"prepend_scheme\":\"first\","
        "\"split\":true},"
        "\"post_processor\":{\"type\":\"RobertaProcessing\",\"sep\":[\"</s>\",2],\"cls\":[\"<s>\",1]},"
        "\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"fuse_unk\":true,\"byte_fallback\":true,"
        "\"continuing_subword_prefix\":\"##\",\"end_of_word_suffix\":\"</w>\",\"vocab\":{"
        "\"<unk>\":0,\"<s>\":1,\"</s>\":2,\"a\":3,\"##b\":4,\"ab\":5,\"▁\":6,\"##a\":7,\"c</w>\":8,"
        "\"##c</w>\":9,\"abc</w>\":10,\"b\":11,\"##▁\":12");
    for (int i = 0; i < 256; i += 2) {
        char e[32];
        snprintf(e, sizeof e, ",\"<0x%02X>\":%d", i, 100 + i);
        sb_str(&b, e);
    }
    sb_str(&b, "},\"merges\":[\"a ##b\",\"ab ##c</w>\"]}}");
    return b.p;
}

static aw_tokenizer *builtin[3];

static void builtin_init(void)
{
    if (builtin[0]) return;
    for (int k = 0; k < 3; k++) {
        char *j = k < 2 ? byte_level_json(k + 1) : llama_json();
        aw_status st = aw_tokenizer_open_json(j, strlen(j), "built-in", &builtin[k]);
        if (st != AW_OK) fprintf(stderr, "built-in %d: %s\n", k, aw_err_message());
        FUZZ_ASSERT(st == AW_OK);
        free(j);
    }
}

static const char fixed_text[] = "Hello <|endoftext|> wiki <mask> It's 12345 \xc3\xa9\xe2\x96\x81 "
                                 "\xf0\x9f\x98\x80\t\t\r\n\r\n  end  ";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    builtin_init();
    uint8_t mode = data[0];
    const uint8_t *rest = data + 1;
    size_t n = size - 1;
    if (mode % 4 == 0) {
        aw_tokenizer *tk = (aw_tokenizer *)1;
        aw_status st = aw_tokenizer_open_json((const char *)rest, n, "fuzz-input", &tk);
        if (st != AW_OK) {
            FUZZ_ASSERT(tk == NULL && st > AW_OK && st < AW_STATUS_COUNT);
            FUZZ_ASSERT(st == AW_ERR_TOKENIZER || st == AW_ERR_NOMEM);
            return 0;
        }
        encode_check(tk, rest, n < 4096 ? n : 4096, 1);
        encode_check(tk, (const uint8_t *)fixed_text, sizeof fixed_text - 1, 0);
        aw_tokenizer_close(tk);
        return 0;
    }
    int k = mode % 4 - 1;
    encode_check(builtin[k], rest, n, mode >> 2 & 1);
    return 0;
}

#ifndef AWEQ_FUZZING
#include "aw_fs.h"

static int n_done, n_failed;

/* Feed one file: as-is, and (for the reject folders) as a tokenizer.json
 * and as text for each built-in. */
static void feed_file(const char *path, int as_all_modes)
{
    char *buf;
    size_t len;
    if (aw_read_file(path, (size_t)64 << 20, &buf, &len) != AW_OK) {
        fprintf(stderr, "FAILED %s: %s\n", path, aw_err_message());
        n_failed++;
        return;
    }
    n_done++;
    if (as_all_modes) {
        uint8_t *in = malloc(len + 1);
        FUZZ_ASSERT(in);
        memcpy(in + 1, buf, len);
        for (int m = 0; m < 8; m++) {
            in[0] = (uint8_t)m;
            LLVMFuzzerTestOneInput(in, len + 1);
        }
        free(in);
    } else {
        LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
    }
    free(buf);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in dir (sorted, malloc'd full paths), dot files skipped. */
static size_t list_dir(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    *out = NULL;
    if (!d) return 0;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 32;
            names = realloc(names, cap * sizeof *names);
            FUZZ_ASSERT(names);
        }
        names[n++] = aw_path_join(dir, de->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_name);
    *out = names;
    return n;
}

static int is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static void feed_path(const char *path, int as_all_modes)
{
    if (!is_dir(path)) {
        feed_file(path, as_all_modes);
        return;
    }
    char **names;
    size_t n = list_dir(path, &names);
    for (size_t i = 0; i < n; i++) {
        feed_path(names[i], as_all_modes);
        free(names[i]);
    }
    free(names);
}

static void reject_dirs(const char *root)
{
    char **names;
    size_t n = list_dir(root, &names);
    for (size_t i = 0; i < n; i++) {
        if (is_dir(names[i])) {
            aw_tokenizer *tk = (aw_tokenizer *)1;
            aw_status st = aw_tokenizer_open(names[i], &tk);
            n_done++;
            if (st != AW_ERR_TOKENIZER || tk) {
                fprintf(stderr, "FAILED %s: %s, must be refused with AW_ERR_TOKENIZER\n", names[i],
                        aw_status_name(st));
                n_failed++;
                if (st == AW_OK) aw_tokenizer_close(tk);
            }
            feed_path(names[i], 1);
        }
        free(names[i]);
    }
    free(names);
}

static void accept_dir(const char *dir)
{
    aw_tokenizer *tk;
    aw_status st = aw_tokenizer_open(dir, &tk);
    n_done++;
    if (st != AW_OK) {
        fprintf(stderr, "FAILED %s: %s: %s, must be accepted\n", dir, aw_status_name(st),
                aw_err_message());
        n_failed++;
        return;
    }
    encode_check(tk, (const uint8_t *)fixed_text, sizeof fixed_text - 1, 1);
    encode_check(tk, (const uint8_t *)"\xff\xfe", 2, 1);
    aw_tokenizer_close(tk);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reject-dirs") == 0 && i + 1 < argc)
            reject_dirs(argv[++i]);
        else if (strcmp(argv[i], "--accept-dir") == 0 && i + 1 < argc)
            accept_dir(argv[++i]);
        else if (strcmp(argv[i], "--any") == 0)
            continue;
        else
            feed_path(argv[i], 0);
    }
    if (n_done == 0 && n_failed == 0) {
        fprintf(stderr, "usage: %s [--reject-dirs DIR] [--accept-dir DIR] [--any PATH...]\n",
                argv[0]);
        return 2;
    }
    for (int k = 0; k < 3; k++) aw_tokenizer_close(builtin[k]);
    fprintf(stderr, "%s: %d inputs replayed, %d failed: %s\n", argv[0], n_done, n_failed,
            n_failed ? "FAILED" : "OK");
    return n_failed ? 1 : 0;
}
#endif
