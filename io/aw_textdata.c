/* aw_textdata.c - calibration windows and evaluation streams from text
 * (see aw_textdata.h). */
#include "aw_textdata.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_corpus.h"

/* A growable byte buffer. */
typedef struct {
    char *p;
    size_t n, cap;
} bytes;

static aw_status bytes_append(bytes *b, const char *s, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        char *p = realloc(b->p, cap);
        AW_RETURN_IF(!p, AW_ERR_NOMEM, "out of memory for %zu bytes of text", cap);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return AW_OK;
}

uint64_t aw_holdout_count(uint64_t n_seq, double share)
{
    if (!(share > 0.0)) return 0;
    long long h = llround(share * (double)n_seq);
    return h < 1 ? 1 : (uint64_t)h;
}

uint32_t aw_holdout_windows(uint32_t n_calib, double share)
{
    if (!(share > 0.0) || !(share < 1.0)) return 0;
    double x = (double)n_calib * share / (1.0 - share);
    if (x > (double)AW_MAX_HOLDOUT_WINDOWS) return UINT32_MAX; /* the caller refuses it */
    long long m0 = llround(x);
    for (long long m = m0 - 2; m <= m0 + 2; m++) {
        if (m < 1 || m > UINT32_MAX) continue;
        if ((long long)aw_holdout_count((uint64_t)n_calib + (uint64_t)m, share) == m) return (uint32_t)m;
    }
    return m0 < 1 ? 1 : (uint32_t)m0; /* not reached for shares in (0, 1) */
}

/* 1 if the UTF-8 text s (n bytes, valid) holds only characters Python's
 * str.isspace() calls whitespace, so that row.strip() is empty. */
static int is_blank(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        uint32_t cp = p[i];
        size_t k = 1;
        if (cp >= 0xF0) cp = p[i] & 0x07, k = 4;
        else if (cp >= 0xE0) cp = p[i] & 0x0F, k = 3;
        else if (cp >= 0xC0) cp = p[i] & 0x1F, k = 2;
        for (size_t m = 1; m < k && i + m < n; m++) cp = (cp << 6) | (p[i + m] & 0x3F);
        i += k;
        int space = (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
                    cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
                    cp == 0x202F || cp == 0x205F || cp == 0x3000;
        if (!space) return 0;
    }
    return 1;
}

/* 1 if path names a .jsonl or .jsonl.zst file (a document per line). */
static int is_jsonl(const char *path)
{
    size_t n = strlen(path);
    if (n >= 4 && strcmp(path + n - 4, ".zst") == 0) n -= 4;
    return n >= 6 && strncmp(path + n - 6, ".jsonl", 6) == 0;
}

/* The error of a tokenizer failure on a document, with the file named. */
static aw_status encode_doc(const aw_tokenizer *t, const char *path, uint64_t doc, const char *s,
                            size_t n, aw_idvec *ids)
{
    aw_status st = aw_tokenizer_encode(t, s, n, 1, ids);
    if (st == AW_OK) return AW_OK;
    char msg[768];
    snprintf(msg, sizeof msg, "%s", aw_err_message());
    return AW_FAIL(st, "%s: document %llu: %s", path, (unsigned long long)doc + 1, msg);
}

aw_status aw_calib_from_text(const aw_tokenizer *t, const aw_calib_text_opts *o, aw_tokens *out,
                             uint64_t *stream_tokens)
{
    AW_RETURN_IF(!t || !o || !out || o->n_files < 1 || !o->files, AW_ERR_ARG,
                 "aw_calib_from_text: no text files");
    AW_RETURN_IF(o->n_calib < 1 || o->seq_len < 1, AW_ERR_ARG,
                 "calibration needs at least one window of at least one token");
    memset(out, 0, sizeof *out);
    aw_idvec ids = {0};
    aw_status st = AW_OK;
    uint64_t docs = 0;
    for (int f = 0; f < o->n_files; f++) {
        aw_corpus *c = NULL;
        AW_CHECK(aw_corpus_open(o->files[f], o->text_field, &c));
        uint64_t file_docs = 0;
        for (;;) {
            const char *doc = NULL;
            size_t len = 0;
            st = aw_corpus_next(c, &doc, &len);
            if (st != AW_OK || !doc) break;
            if (len == 0) continue; /* an empty document adds no text */
            st = encode_doc(t, o->files[f], file_docs, doc, len, &ids);
            if (st != AW_OK) break;
            file_docs++;
        }
        aw_corpus_close(c);
        if (st != AW_OK) goto fail;
        AW_GOTO_IF(file_docs == 0, AW_ERR_CORPUS, "%s: empty corpus: no document with any text",
                   o->files[f]);
        docs += file_docs;
    }
    if (stream_tokens) *stream_tokens = ids.n;
    uint64_t need = (uint64_t)o->seq_len + 1;
    AW_GOTO_IF(ids.n < need, AW_ERR_CORPUS,
               "%s%s: %zu tokens in %llu document(s) are shorter than one window of %u tokens (+1): "
               "give more text or a smaller --calib-len",
               o->files[0], o->n_files > 1 ? " ..." : "", ids.n, (unsigned long long)docs, o->seq_len);
    size_t nw = (size_t)o->n_calib + o->n_hold;
    uint64_t *starts = malloc(nw * sizeof *starts);
    out->ids = malloc(nw * o->seq_len * sizeof(uint32_t));
    if (!starts || !out->ids) {
        free(starts);
        AW_GOTO_IF(1, AW_ERR_NOMEM, "out of memory for %zu windows of %u tokens", nw, o->seq_len);
    }
    st = aw_draw_windows(ids.n, o->seq_len, o->n_calib, o->n_hold, o->seed, starts);
    if (st == AW_OK) {
        for (size_t w = 0; w < nw; w++)
            memcpy(out->ids + w * o->seq_len, ids.v + starts[w], (size_t)o->seq_len * sizeof(uint32_t));
    } else {
        char msg[768];
        snprintf(msg, sizeof msg, "%s", aw_err_message());
        st = AW_FAIL(st, "%s%s: %s", o->files[0], o->n_files > 1 ? " ..." : "", msg);
    }
    free(starts);
    if (st != AW_OK) goto fail;
    out->vocab_size = aw_tokenizer_vocab_size(t);
    out->seq_len = o->seq_len;
    out->n_seq = nw;
    if (!o->quiet)
        fprintf(stderr,
                "aweq-dist: calibration text: %llu document(s), %zu tokens; %u + %u windows of %u tokens, "
                "seed %llu\n",
                (unsigned long long)docs, ids.n, o->n_calib, o->n_hold, o->seq_len,
                (unsigned long long)o->seed);
    aw_idvec_free(&ids);
    return AW_OK;
fail:
    aw_idvec_free(&ids);
    aw_tokens_free(out);
    return st;
}

aw_status aw_eval_text_stream(const aw_tokenizer *t, const char *path, const char *text_field,
                              aw_idvec *ids)
{
    AW_RETURN_IF(!t || !path || !ids, AW_ERR_ARG, "aw_eval_text_stream: NULL argument");
    aw_corpus *c = NULL;
    AW_TRY(aw_corpus_open(path, text_field, &c));
    bytes text = {0};
    aw_status st = AW_OK;
    uint64_t rows = 0;
    static const char sep[] = "\n\n";
    int lines = !is_jsonl(path);
    for (;;) {
        const char *doc = NULL;
        size_t len = 0;
        AW_CHECK(aw_corpus_next(c, &doc, &len));
        if (!doc) break;
        /* a .txt is one document: its rows end after each "\n"; a .jsonl
         * document is one row, empty ones included */
        size_t i = 0;
        do {
            size_t j = len;
            if (lines) {
                j = i;
                while (j < len && doc[j] != '\n') j++;
                if (j < len) j++; /* the row keeps its "\n" */
            }
            if (rows++ > 0) AW_CHECK(bytes_append(&text, sep, 2));
            /* as Hugging Face's wikitext rows: a row of whitespace alone is "" */
            if (!is_blank(doc + i, j - i)) AW_CHECK(bytes_append(&text, doc + i, j - i));
            i = j;
        } while (i < len);
    }
    AW_GOTO_IF(rows == 0 || text.n == 0, AW_ERR_CORPUS, "%s: empty text: nothing to evaluate on", path);
    size_t before = ids->n;
    st = aw_tokenizer_encode(t, text.p, text.n, 1, ids);
    if (st != AW_OK) {
        char msg[768];
        snprintf(msg, sizeof msg, "%s", aw_err_message());
        st = AW_FAIL(st, "%s: %s", path, msg);
        ids->n = before;
    }
fail:
    free(text.p);
    aw_corpus_close(c);
    return st;
}
