/* aw_corpus.c - text corpora read one document at a time, and CPython's
 * `random` for the window draw. See aw_corpus.h; the rules, and the Python
 * that draws the same windows, are in docs/calibration-text.md.
 *
 * Reading: decoded bytes (read() or zstd streaming) go to one growing buffer
 * buf; buf[start, end) is what has not been handed out yet. A .jsonl line is
 * cut there at its '\n', so the buffer holds one line plus one chunk, never
 * the whole file. A .txt document is the whole file, so it is read whole. */
#include "aw_corpus.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#define AW_CORPUS_CHUNK ((size_t)64 << 10) /* the buffer starts this large */
#define AW_CORPUS_MIN_READ (AW_CORPUS_CHUNK / 4) /* free bytes asked per fill */
#define AW_DRAW_TRIES 1000                       /* draws per held-out window */

typedef enum { KIND_TXT, KIND_JSONL } corpus_kind;

struct aw_corpus {
    char *path;
    char *field; /* .jsonl: the member holding the document */
    corpus_kind kind;
    int fd;
    size_t max_doc;
    /* zstd (dctx NULL for a plain file) */
    ZSTD_DCtx *dctx;
    uint8_t *zin; /* compressed bytes; zin[zpos, zlen) not yet given to zstd */
    size_t zcap, zpos, zlen;
    uint64_t zread;    /* compressed bytes read from the file so far */
    size_t zhint;      /* last ZSTD_decompressStream result: 0 between frames */
    int zany, zeof;    /* a frame was started; the file is read to its end */
    /* decoded bytes */
    uint8_t *buf;
    size_t cap, start, end, scan; /* no '\n' in buf[start, scan) */
    uint64_t base;                /* stream offset of buf[0] */
    uint64_t line;                /* 1-based number of the next line */
    int eof, done;
    aw_status failed;
    json_t *json; /* owns the document last returned from a .jsonl */
};

static int has_suffix(const char *s, size_t n, const char *suf)
{
    size_t k = strlen(suf);
    return n >= k && memcmp(s + n - k, suf, k) == 0;
}

/* "file" or "decompressed stream": what stream offsets count. */
static const char *stream_word(const aw_corpus *c)
{
    return c->dctx ? "decompressed stream" : "file";
}

/* --------------------------------------------------------------- UTF-8 -- */

/* Offset of the first sequence in p[0, n) that is not strict UTF-8 (RFC 3629:
 * no overlong form, no surrogate, nothing above U+10FFFF, no truncated
 * sequence), or n when all is valid; *why says what is wrong there. */
static size_t utf8_check(const uint8_t *p, size_t n, const char **why)
{
    size_t i = 0;
    while (i < n) {
        /* ASCII eight bytes at a time */
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (!(w & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        uint8_t b = p[i];
        if (b < 0x80) {
            i++;
            continue;
        }
        size_t need;          /* continuation bytes after b */
        uint8_t lo = 0x80, hi = 0xbf; /* range of the second byte */
        const char *bad2 = "missing continuation byte";
        if (b >= 0xc2 && b <= 0xdf) {
            need = 1;
        } else if (b == 0xe0) {
            need = 2, lo = 0xa0, bad2 = "overlong encoding";
        } else if (b == 0xed) {
            need = 2, hi = 0x9f, bad2 = "UTF-16 surrogate (U+D800..U+DFFF)";
        } else if (b >= 0xe1 && b <= 0xef) {
            need = 2;
        } else if (b == 0xf0) {
            need = 3, lo = 0x90, bad2 = "overlong encoding";
        } else if (b == 0xf4) {
            need = 3, hi = 0x8f, bad2 = "code point above U+10FFFF";
        } else if (b >= 0xf1 && b <= 0xf3) {
            need = 3;
        } else {
            *why = b <= 0xbf   ? "continuation byte without a lead byte"
                   : b <= 0xc1 ? "overlong encoding"
                               : "byte that never occurs in UTF-8 (0xF5..0xFF)";
            return i;
        }
        size_t have = n - i - 1 < need ? n - i - 1 : need;
        for (size_t k = 1; k <= have; k++) {
            uint8_t x = p[i + k];
            if (k == 1 ? (x < lo || x > hi) : (x < 0x80 || x > 0xbf)) {
                *why = k == 1 && x >= 0x80 && x <= 0xbf ? bad2 : "missing continuation byte";
                return i;
            }
        }
        if (have < need) {
            *why = "truncated sequence at the end";
            return i;
        }
        i += need + 1;
    }
    return n;
}

/* --------------------------------------------------------- byte source -- */

/* Room for at least AW_CORPUS_MIN_READ more bytes after end: the pending
 * bytes move to the front, then the buffer doubles. */
static aw_status make_room(aw_corpus *c)
{
    if (c->cap - c->end >= AW_CORPUS_MIN_READ) return AW_OK;
    if (c->start > 0) {
        memmove(c->buf, c->buf + c->start, c->end - c->start);
        c->base += c->start;
        c->end -= c->start;
        c->scan -= c->start;
        c->start = 0;
        if (c->cap - c->end >= AW_CORPUS_MIN_READ) return AW_OK;
    }
    size_t ncap = c->cap * 2; /* cap <= 2 * (max_doc + chunk): no overflow */
    uint8_t *nb = realloc(c->buf, ncap);
    AW_RETURN_IF(!nb, AW_ERR_NOMEM, "%s: line %llu: cannot allocate %zu bytes for the line",
                 c->path, (unsigned long long)c->line, ncap);
    c->buf = nb;
    c->cap = ncap;
    return AW_OK;
}

static aw_status read_some(aw_corpus *c, void *dst, size_t n, size_t *got)
{
    for (;;) {
        ssize_t r = read(c->fd, dst, n);
        if (r >= 0) {
            *got = (size_t)r;
            return AW_OK;
        }
        if (errno != EINTR)
            return AW_FAIL(AW_ERR_IO, "%s: line %llu: read failed: %s", c->path,
                           (unsigned long long)c->line, strerror(errno));
    }
}

static aw_status zstd_error(aw_corpus *c, size_t ret)
{
    unsigned long long at = (unsigned long long)(c->zread - (c->zlen - c->zpos));
    const char *what;
    switch (ZSTD_getErrorCode(ret)) {
    case ZSTD_error_prefix_unknown: what = "not a zstd frame (unknown magic number)"; break;
    case ZSTD_error_checksum_wrong: what = "corrupt: zstd checksum mismatch"; break;
    case ZSTD_error_frameParameter_windowTooLarge:
        what = "the zstd frame needs a window larger than this reader allows";
        break;
    default: what = "corrupt zstd data"; break;
    }
    return AW_FAIL(AW_ERR_CORPUS, "%s: line %llu: %s (%s) near compressed byte %llu", c->path,
                   (unsigned long long)c->line, what, ZSTD_getErrorName(ret), at);
}

/* Decode the next bytes of a .zst into buf[end, cap): at least one, or none
 * and eof set once the last frame is complete. */
static aw_status fill_zstd(aw_corpus *c)
{
    ZSTD_outBuffer out = {c->buf + c->end, c->cap - c->end, 0};
    for (;;) {
        /* with input left, or output still held inside zstd, decode */
        if (c->zpos < c->zlen || c->zhint != 0) {
            ZSTD_inBuffer in = {c->zin, c->zlen, c->zpos};
            size_t ret = ZSTD_decompressStream(c->dctx, &out, &in);
            size_t used = in.pos - c->zpos;
            c->zpos = in.pos;
            if (ZSTD_isError(ret)) return zstd_error(c, ret);
            c->zany = 1;
            c->zhint = ret;
            if (out.pos > 0) break;
            if (used > 0) continue;
        }
        /* zstd needs more input */
        if (c->zeof) {
            AW_RETURN_IF(!c->zany, AW_ERR_CORPUS,
                         "%s: line %llu: truncated: the file is empty, no zstd frame", c->path,
                         (unsigned long long)c->line);
            AW_RETURN_IF(c->zhint != 0, AW_ERR_CORPUS,
                         "%s: line %llu: truncated: the zstd frame ends early (the file ends "
                         "after %llu bytes)",
                         c->path, (unsigned long long)c->line, (unsigned long long)c->zread);
            c->eof = 1;
            break;
        }
        if (c->zpos > 0) {
            memmove(c->zin, c->zin + c->zpos, c->zlen - c->zpos);
            c->zlen -= c->zpos;
            c->zpos = 0;
        }
        /* zstd takes all input it is given while it has room to write, so a
         * full input buffer here would mean it is stuck: refuse, not spin */
        AW_RETURN_IF(c->zlen == c->zcap, AW_ERR_CORPUS,
                     "%s: line %llu: corrupt zstd data: the decoder makes no progress near "
                     "compressed byte %llu",
                     c->path, (unsigned long long)c->line, (unsigned long long)c->zread);
        size_t r = 0;
        AW_TRY(read_some(c, c->zin + c->zlen, c->zcap - c->zlen, &r));
        c->zlen += r;
        c->zread += r;
        if (r == 0) c->zeof = 1;
    }
    c->end += out.pos;
    return AW_OK;
}

/* More decoded bytes at buf[end...]; sets eof at the end of the stream. */
static aw_status fill(aw_corpus *c)
{
    AW_TRY(make_room(c));
    if (c->dctx) return fill_zstd(c);
    size_t got = 0;
    AW_TRY(read_some(c, c->buf + c->end, c->cap - c->end, &got));
    c->end += got;
    if (got == 0) c->eof = 1;
    return AW_OK;
}

/* The next line, without its '\n': buf[*off, *off + *len). *has = 0 at the
 * end. A last line without '\n' counts; an empty file has no line. */
static aw_status next_line(aw_corpus *c, size_t *off, size_t *len, int *has)
{
    for (;;) {
        const uint8_t *nl = memchr(c->buf + c->scan, '\n', c->end - c->scan);
        size_t stop = nl ? (size_t)(nl - c->buf) : c->end;
        size_t n = stop - c->start;
        AW_RETURN_IF(n > c->max_doc, AW_ERR_CORPUS,
                     "%s: line %llu: line longer than the cap of %zu bytes (starts at byte "
                     "%llu of the %s)",
                     c->path, (unsigned long long)c->line, c->max_doc,
                     (unsigned long long)(c->base + c->start), stream_word(c));
        if (nl || (c->eof && n > 0)) {
            *off = c->start;
            *len = n;
            *has = 1;
            c->start = c->scan = nl ? stop + 1 : stop;
            return AW_OK;
        }
        if (c->eof) {
            *has = 0;
            return AW_OK;
        }
        c->scan = c->end;
        AW_TRY(fill(c));
    }
}

/* ------------------------------------------------------------ corpus -- */

aw_status aw_corpus_open(const char *path, const char *text_field, aw_corpus **out)
{
    AW_RETURN_IF(!out, AW_ERR_ARG, "aw_corpus_open: NULL output");
    *out = NULL;
    AW_RETURN_IF(!path, AW_ERR_ARG, "aw_corpus_open: NULL path");
    size_t n = strlen(path);
    int zst = has_suffix(path, n, ".zst");
    size_t stem = zst ? n - 4 : n;
    corpus_kind kind;
    if (has_suffix(path, stem, ".txt"))
        kind = KIND_TXT;
    else if (has_suffix(path, stem, ".jsonl"))
        kind = KIND_JSONL;
    else
        return AW_FAIL(AW_ERR_ARG,
                       "%s: unknown corpus type: the name must end in .txt, .jsonl, .txt.zst "
                       "or .jsonl.zst",
                       path);

    aw_status st = AW_OK;
    aw_corpus *c = calloc(1, sizeof *c);
    AW_RETURN_IF(!c, AW_ERR_NOMEM, "%s: out of memory", path);
    c->fd = -1;
    c->kind = kind;
    c->line = 1;
    c->max_doc = AW_CORPUS_MAX_DOC;
    c->path = strdup(path);
    c->field = strdup(text_field ? text_field : "text");
    c->cap = AW_CORPUS_CHUNK;
    c->buf = malloc(c->cap);
    AW_GOTO_IF(!c->path || !c->field || !c->buf, AW_ERR_NOMEM, "%s: out of memory", path);
    if (zst) {
        c->dctx = ZSTD_createDCtx();
        c->zcap = ZSTD_DStreamInSize();
        c->zin = malloc(c->zcap);
        AW_GOTO_IF(!c->dctx || !c->zin, AW_ERR_NOMEM, "%s: out of memory for zstd", path);
    }
    c->fd = open(path, O_RDONLY | O_CLOEXEC);
    AW_GOTO_IF(c->fd < 0, AW_ERR_IO, "%s: cannot open the corpus: %s", path, strerror(errno));
    *out = c;
    return AW_OK;

fail:
    aw_corpus_close(c);
    return st;
}

void aw_corpus_set_max_doc(aw_corpus *c, size_t max_bytes)
{
    if (!c) return;
    if (max_bytes < 1) max_bytes = 1;
    if (max_bytes > SIZE_MAX / 4) max_bytes = SIZE_MAX / 4;
    c->max_doc = max_bytes;
}

/* The .txt document: the whole file, bytes as they are. */
static aw_status next_txt(aw_corpus *c, const char **doc, size_t *len)
{
    while (!c->eof) {
        AW_RETURN_IF(c->end - c->start > c->max_doc, AW_ERR_CORPUS,
                     "%s: line %llu: document longer than the cap of %zu bytes", c->path,
                     (unsigned long long)c->line, c->max_doc);
        AW_TRY(fill(c));
    }
    const uint8_t *p = c->buf + c->start;
    size_t n = c->end - c->start;
    AW_RETURN_IF(n > c->max_doc, AW_ERR_CORPUS,
                 "%s: line 1: document of %zu bytes is longer than the cap of %zu bytes",
                 c->path, n, c->max_doc);
    const char *why = "";
    size_t bad = utf8_check(p, n, &why);
    if (bad < n) {
        unsigned long long line = 1;
        for (const uint8_t *q = p; (q = memchr(q, '\n', (size_t)(p + bad - q))); q++) line++;
        return AW_FAIL(AW_ERR_CORPUS,
                       "%s: line %llu: invalid UTF-8 at byte %zu of the %s (0x%02x: %s)", c->path,
                       line, bad, stream_word(c), p[bad], why);
    }
    c->start = c->end;
    c->done = 1;
    *doc = (const char *)p;
    *len = n;
    return AW_OK;
}

static const char *json_kind(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* The next .jsonl document: the string member `field` of the next non-blank
 * line. */
static aw_status next_jsonl(aw_corpus *c, const char **doc, size_t *len)
{
    for (;;) {
        size_t off, n;
        int has;
        AW_TRY(next_line(c, &off, &n, &has));
        if (!has) {
            c->done = 1;
            return AW_OK;
        }
        unsigned long long ln = (unsigned long long)c->line++;
        const uint8_t *p = c->buf + off;
        size_t k = 0;
        while (k < n && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r')) k++;
        if (k == n) continue; /* blank */

        const char *why = "";
        size_t bad = utf8_check(p, n, &why);
        AW_RETURN_IF(bad < n, AW_ERR_CORPUS,
                     "%s: line %llu: invalid UTF-8 at byte %zu of the line (byte %llu of the "
                     "%s; 0x%02x: %s)",
                     c->path, ln, bad, (unsigned long long)(c->base + off + bad), stream_word(c),
                     p[bad], why);

        json_error_t e;
        json_t *j = json_loadb((const char *)p, n,
                               JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &e);
        if (!j) {
            AW_RETURN_IF(json_error_code(&e) == json_error_out_of_memory, AW_ERR_NOMEM,
                         "%s: line %llu: out of memory parsing JSON", c->path, ln);
            return AW_FAIL(AW_ERR_CORPUS, "%s: line %llu: not JSON: %s (at byte %d of the line)",
                           c->path, ln, e.text, e.position);
        }
        c->json = j;
        AW_RETURN_IF(!json_is_object(j), AW_ERR_CORPUS,
                     "%s: line %llu: the line is %s, not a JSON object", c->path, ln,
                     json_kind(j));
        json_t *v = json_object_get(j, c->field);
        AW_RETURN_IF(!v, AW_ERR_CORPUS, "%s: line %llu: the object has no \"%s\" member",
                     c->path, ln, c->field);
        AW_RETURN_IF(!json_is_string(v), AW_ERR_CORPUS,
                     "%s: line %llu: member \"%s\" is %s, not a string", c->path, ln, c->field,
                     json_kind(v));
        const uint8_t *s = (const uint8_t *)json_string_value(v);
        size_t sn = json_string_length(v);
        /* escapes decode to UTF-8 too; jansson refuses lone surrogates, so
         * this only guards against a change there */
        bad = utf8_check(s, sn, &why);
        AW_RETURN_IF(bad < sn, AW_ERR_CORPUS,
                     "%s: line %llu: member \"%s\" is not valid UTF-8 after unescaping, at byte "
                     "%zu of the string (%s)",
                     c->path, ln, c->field, bad, why);
        *doc = (const char *)s;
        *len = sn;
        return AW_OK;
    }
}

aw_status aw_corpus_next(aw_corpus *c, const char **doc, size_t *len)
{
    AW_RETURN_IF(!c || !doc || !len, AW_ERR_ARG, "aw_corpus_next: NULL argument");
    *doc = NULL;
    *len = 0;
    if (c->failed)
        return AW_FAIL(c->failed, "%s: line %llu: reading stopped at an earlier error", c->path,
                       (unsigned long long)c->line);
    json_decref(c->json);
    c->json = NULL;
    if (c->done) return AW_OK;
    aw_status st = c->kind == KIND_TXT ? next_txt(c, doc, len) : next_jsonl(c, doc, len);
    if (st != AW_OK) {
        c->failed = st;
        *doc = NULL;
        *len = 0;
    }
    return st;
}

void aw_corpus_close(aw_corpus *c)
{
    if (!c) return;
    if (c->fd >= 0) close(c->fd);
    json_decref(c->json);
    ZSTD_freeDCtx(c->dctx);
    free(c->zin);
    free(c->buf);
    free(c->field);
    free(c->path);
    free(c);
}

/* ------------------------------------------------------- Python random -- */

/* MT19937 exactly as CPython's Modules/_randommodule.c. */
enum { MT_N = 624, MT_M = 397 };
_Static_assert(sizeof(((aw_pyrand *)0)->mt) / sizeof(uint32_t) == MT_N, "MT19937 state");

static void init_genrand(aw_pyrand *r, uint32_t s)
{
    r->mt[0] = s;
    for (int i = 1; i < MT_N; i++)
        r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->idx = MT_N;
}

static void init_by_array(aw_pyrand *r, const uint32_t *key, size_t klen)
{
    uint32_t *mt = r->mt;
    init_genrand(r, 19650218u);
    size_t i = 1, j = 0;
    for (size_t k = MT_N > klen ? MT_N : klen; k; k--) {
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1664525u)) + key[j] + (uint32_t)j;
        i++, j++;
        if (i >= MT_N) mt[0] = mt[MT_N - 1], i = 1;
        if (j >= klen) j = 0;
    }
    for (size_t k = MT_N - 1; k; k--) {
        mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
        i++;
        if (i >= MT_N) mt[0] = mt[MT_N - 1], i = 1;
    }
    mt[0] = 0x80000000u; /* MSB is 1, assuring a non-zero initial array */
}

static uint32_t genrand_uint32(aw_pyrand *r)
{
    static const uint32_t mag01[2] = {0x0u, 0x9908b0dfu};
    uint32_t *mt = r->mt, y;
    if (r->idx >= MT_N) {
        int kk;
        for (kk = 0; kk < MT_N - MT_M; kk++) {
            y = (mt[kk] & 0x80000000u) | (mt[kk + 1] & 0x7fffffffu);
            mt[kk] = mt[kk + MT_M] ^ (y >> 1) ^ mag01[y & 1u];
        }
        for (; kk < MT_N - 1; kk++) {
            y = (mt[kk] & 0x80000000u) | (mt[kk + 1] & 0x7fffffffu);
            mt[kk] = mt[kk + (MT_M - MT_N)] ^ (y >> 1) ^ mag01[y & 1u];
        }
        y = (mt[MT_N - 1] & 0x80000000u) | (mt[0] & 0x7fffffffu);
        mt[MT_N - 1] = mt[MT_M - 1] ^ (y >> 1) ^ mag01[y & 1u];
        r->idx = 0;
    }
    y = mt[r->idx++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= (y >> 18);
    return y;
}

/* random.getrandbits(k), 1 <= k <= 64: 32-bit words, least significant
 * first, the last one shifted down to its k mod 32 top bits. */
static uint64_t getrandbits(aw_pyrand *r, int k)
{
    if (k <= 32) return genrand_uint32(r) >> (32 - k);
    uint64_t lo = genrand_uint32(r);
    uint64_t hi = genrand_uint32(r) >> (64 - k);
    return lo | hi << 32;
}

void aw_pyrand_seed(aw_pyrand *r, uint64_t seed)
{
    /* random.seed(int): the 32-bit words of |seed|, least significant first;
     * 0 gives the key [0] */
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    init_by_array(r, key, key[1] ? 2 : 1);
}

uint64_t aw_pyrand_randbelow64(aw_pyrand *r, uint64_t n)
{
    if (n == 0) return 0;
    int k = 64 - __builtin_clzll(n); /* n.bit_length() */
    uint64_t v = getrandbits(r, k);
    while (v >= n) v = getrandbits(r, k);
    return v;
}

uint32_t aw_pyrand_randbelow(aw_pyrand *r, uint32_t n)
{
    return (uint32_t)aw_pyrand_randbelow64(r, n);
}

/* ------------------------------------------------------------- windows -- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* 1 if [s, s + L) overlaps [c, c + L) for some c of sorted[0, n). */
static int overlaps_any(const uint64_t *sorted, size_t n, uint64_t s, uint64_t L)
{
    /* the first c with c + L > s; it overlaps iff c < s + L */
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] + L > s)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo < n && sorted[lo] < s + L;
}

aw_status aw_draw_windows(size_t n_tokens, uint32_t L, uint32_t n_calib, uint32_t n_hold,
                          uint64_t seed, uint64_t *starts_out)
{
    size_t total = (size_t)n_calib + n_hold;
    AW_RETURN_IF(L == 0, AW_ERR_ARG, "aw_draw_windows: window length 0");
    AW_RETURN_IF(!starts_out && total > 0, AW_ERR_ARG, "aw_draw_windows: NULL starts_out");
    AW_RETURN_IF((uint64_t)n_tokens < (uint64_t)L + 1, AW_ERR_CORPUS,
                 "corpus of %zu tokens is too short for one window of %u tokens (needs at "
                 "least %llu)",
                 n_tokens, L, (unsigned long long)L + 1);
    uint64_t span = (uint64_t)n_tokens - L; /* randint(0, n - L - 1) */
    aw_pyrand r;
    aw_pyrand_seed(&r, seed);
    for (uint32_t i = 0; i < n_calib; i++) starts_out[i] = aw_pyrand_randbelow64(&r, span);
    if (n_hold == 0) return AW_OK;

    uint64_t *sorted = malloc((n_calib ? n_calib : 1) * sizeof *sorted);
    AW_RETURN_IF(!sorted, AW_ERR_NOMEM, "aw_draw_windows: cannot allocate %u starts", n_calib);
    memcpy(sorted, starts_out, (size_t)n_calib * sizeof *sorted);
    qsort(sorted, n_calib, sizeof *sorted, cmp_u64);
    for (uint32_t h = 0; h < n_hold; h++) {
        uint64_t s = 0;
        int ok = 0;
        for (int t = 0; t < AW_DRAW_TRIES && !ok; t++) {
            s = aw_pyrand_randbelow64(&r, span);
            ok = !overlaps_any(sorted, n_calib, s, L);
        }
        if (!ok) {
            free(sorted);
            return AW_FAIL(AW_ERR_CORPUS,
                           "corpus of %zu tokens is too short for %u held-out windows of %u "
                           "tokens beside %u calibration windows: held-out window %u overlapped "
                           "a calibration window in all %d draws",
                           n_tokens, n_hold, L, n_calib, h, AW_DRAW_TRIES);
        }
        starts_out[n_calib + h] = s;
    }
    free(sorted);
    return AW_OK;
}
