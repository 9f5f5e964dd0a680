/* aw_tokenizer.c - BPE tokenizers of Hugging Face model folders, giving the
 * ids Hugging Face `tokenizers` gives. See aw_tokenizer.h for the forms.
 *
 * The pipeline is that of tokenizers' TokenizerImpl::encode:
 *   1. added tokens that match the raw text are cut out (leftmost-longest,
 *      then the single_word / lstrip / rstrip rules of AddedVocabulary);
 *   2. each remaining piece is normalized (Prepend / Replace), and added
 *      tokens flagged `normalized` are cut out of the normalized piece;
 *   3. the pre-tokenizer splits the rest into words (the GPT-2 or cl100k
 *      regex written out by hand, Metaspace, ByteLevel);
 *   4. each word goes through BPE: one symbol per character (per byte for
 *      byte-level models, whose vocabulary spells bytes with GPT-2's
 *      bytes_to_unicode), byte fallback / unk as BPE::merge_word does, then
 *      merges by rank with the same priority queue as Word::merge_all;
 *   5. the post-processor adds BOS/EOS when asked.
 * Byte-level words are never spelled out: a word's raw bytes index a table
 * of symbol ids, and merges are looked up by id pairs. A bounded, sharded
 * cache maps words to ids. */
#include "aw_tokenizer.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aw_fs.h"
#include "aw_unicode.h"

#define TK_MAX_FILE ((size_t)512 << 20)  /* tokenizer.json, vocab.json, merges.txt */
#define TK_MAX_CONFIG ((size_t)16 << 20) /* tokenizer_config.json & co */
#define TK_MAX_ID 0x7FFFFFFFu            /* ids beyond this are refused */
#define TK_MAX_AFFIX 64                  /* continuing_subword_prefix / end_of_word_suffix */
#define TK_MAX_PT 4                      /* pre-tokenizer steps */
#define TK_MAX_NORM 8                    /* normalizer steps */
#define TK_MAX_SPECIAL 16                /* ids one post-processor step may add */

/* ---- ids ------------------------------------------------------------------ */

aw_status aw_idvec_push(aw_idvec *v, uint32_t id)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 256;
        uint32_t *p = realloc(v->v, cap * sizeof *p);
        if (!p) return AW_FAIL(AW_ERR_NOMEM, "token ids: out of memory growing to %zu ids", cap);
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = id;
    return AW_OK;
}

void aw_idvec_free(aw_idvec *v)
{
    if (!v) return;
    free(v->v);
    v->v = NULL;
    v->n = v->cap = 0;
}

/* Make room for k more ids at once (the hot loop pushes without checks). */
static aw_status idvec_reserve(aw_idvec *v, size_t k)
{
    if (v->cap - v->n >= k) return AW_OK;
    size_t cap = v->cap ? v->cap : 256;
    while (cap - v->n < k) {
        if (cap > SIZE_MAX / 8) return AW_FAIL(AW_ERR_NOMEM, "token ids: too many ids");
        cap *= 2;
    }
    uint32_t *p = realloc(v->v, cap * sizeof *p);
    if (!p) return AW_FAIL(AW_ERR_NOMEM, "token ids: out of memory growing to %zu ids", cap);
    v->v = p;
    v->cap = cap;
    return AW_OK;
}

/* ---- hashing -------------------------------------------------------------- */

static uint64_t hash_bytes(const void *data, size_t n)
{
    const uint8_t *p = data;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    h = (h ^ v) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
    return h;
}

static uint64_t hash_pair(uint32_t a, uint32_t b)
{
    uint64_t k = ((uint64_t)a << 32 | b) * 0x9E3779B97F4A7C15ull;
    return k ^ (k >> 29);
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

/* ---- the tokenizer -------------------------------------------------------- */

typedef struct {
    uint64_t key; /* a << 32 | b; UINT64_MAX when empty */
    uint32_t rank, new_id;
} merge_slot;

typedef struct {
    char *content;
    size_t len;
    uint32_t id;
    uint8_t lstrip, rstrip, single_word, normalized, special;
} added_tok;

/* Leftmost-longest search over a set of patterns: bucket by first byte,
 * longest first inside a bucket. */
typedef struct {
    size_t n;
    char **pat; /* owned copies (normalized patterns differ from contents) */
    size_t *plen;
    uint32_t *tok;       /* index into added[] */
    uint32_t first[257]; /* bucket b is [first[b], first[b+1]) of the order */
    uint32_t *order;     /* pattern indices by bucket, longest first */
} matcher;

typedef enum { NORM_PREPEND, NORM_REPLACE } norm_kind;
typedef struct {
    norm_kind kind;
    char *a, *b; /* PREPEND: a; REPLACE: a -> b */
    size_t alen, blen;
} norm_step;

typedef enum { PT_SPLIT, PT_METASPACE, PT_BYTELEVEL } pt_kind;
typedef enum { RE_GPT2, RE_CL100K, RE_QWEN2 } re_kind;
typedef enum { PREPEND_NEVER, PREPEND_FIRST, PREPEND_ALWAYS } prepend_scheme;
typedef struct {
    pt_kind kind;
    re_kind re;            /* PT_SPLIT; PT_BYTELEVEL with use_regex: GPT-2 */
    int use_regex;         /* PT_BYTELEVEL */
    int add_prefix_space;  /* PT_BYTELEVEL */
    prepend_scheme scheme; /* PT_METASPACE */
    int split;             /* PT_METASPACE */
    uint8_t rep[4];        /* PT_METASPACE replacement character */
    size_t rep_len;
} pt_step;

/* Word cache: sharded, each shard an open-addressed table whose keys and
 * ids live in one arena; a full shard is emptied (bounded memory). */
#define CACHE_SHARDS 16
#define CACHE_SLOTS 8192         /* per shard, power of two */
#define CACHE_ARENA (256u << 10) /* bytes per shard */
#define CACHE_MAX_KEY 128        /* longer words are not cached */
typedef struct {
    uint64_t h; /* 0 when empty */
    uint32_t off;
    uint16_t klen, nid;
} cache_slot;
typedef struct {
    pthread_mutex_t mu;
    cache_slot *slots;
    uint8_t *arena;
    size_t used, count;
} cache_shard;

struct aw_tokenizer {
    /* vocabulary: strings back to back; an open-addressed index over them */
    char *strs;
    size_t strs_len, strs_cap;
    uint32_t *v_off, *v_len, *v_id;
    uint64_t *v_hash;
    size_t n_vocab, v_cap;
    uint32_t *v_slots; /* entry + 1, 0 when empty */
    size_t v_mask;
    merge_slot *m_slots;
    size_t m_mask, n_merges;
    uint32_t max_id;

    /* model options */
    int byte_level, byte_fallback, fuse_unk, ignore_merges;
    int64_t unk_id;
    char *prefix, *suffix; /* NULL or "" when not used */
    size_t prefix_len, suffix_len;
    int32_t sym_id[256]; /* byte-level: id of the character spelling each byte */
    int32_t fb_id[256];  /* id of "<0xXX>", or -1 */
    uint8_t bl_utf8[256][2], bl_len[256];

    norm_step norm[TK_MAX_NORM];
    size_t n_norm;
    pt_step pt[TK_MAX_PT];
    size_t n_pt;

    added_tok *added;
    size_t n_added, added_cap;
    uint32_t *a_slots; /* index over added contents: entry + 1, 0 when empty */
    size_t a_mask;
    uint32_t added_max; /* largest added id (when n_added) */
    matcher m_raw, m_norm;

    uint32_t pre_ids[TK_MAX_SPECIAL * 2], post_ids[TK_MAX_SPECIAL * 2];
    size_t n_pre, n_post;
    int64_t bos;

    char *label; /* the file named in messages */
    char desc[320];

    cache_shard *cache;
};

/* ---- vocabulary ----------------------------------------------------------- */

static int64_t vocab_get(const aw_tokenizer *t, const void *s, size_t n)
{
    if (!t->v_slots) return -1;
    uint64_t h = hash_bytes(s, n);
    for (size_t i = (size_t)h & t->v_mask;; i = (i + 1) & t->v_mask) {
        uint32_t e = t->v_slots[i];
        if (!e) return -1;
        e--;
        if (t->v_hash[e] == h && t->v_len[e] == n && memcmp(t->strs + t->v_off[e], s, n) == 0)
            return t->v_id[e];
    }
}

/* Add s -> id; a second entry for s is refused (duplicate key), as is an id
 * another entry has (dup_id set to 1 then). */
static aw_status vocab_add(aw_tokenizer *t, const char *s, size_t n, uint32_t id, const char *what)
{
    if (t->n_vocab == t->v_cap) {
        size_t cap = t->v_cap ? 2 * t->v_cap : 1024;
        uint32_t *o = realloc(t->v_off, cap * sizeof *o);
        if (o) t->v_off = o;
        uint32_t *l = realloc(t->v_len, cap * sizeof *l);
        if (l) t->v_len = l;
        uint32_t *d = realloc(t->v_id, cap * sizeof *d);
        if (d) t->v_id = d;
        uint64_t *h = realloc(t->v_hash, cap * sizeof *h);
        if (h) t->v_hash = h;
        AW_RETURN_IF(!o || !l || !d || !h, AW_ERR_NOMEM, "%s: out of memory for the vocabulary",
                     t->label);
        t->v_cap = cap;
    }
    if (t->strs_len + n > t->strs_cap) {
        size_t cap = t->strs_cap ? t->strs_cap : 1 << 16;
        while (cap < t->strs_len + n) cap *= 2;
        char *p = realloc(t->strs, cap);
        AW_RETURN_IF(!p, AW_ERR_NOMEM, "%s: out of memory for the vocabulary", t->label);
        t->strs = p;
        t->strs_cap = cap;
    }
    AW_RETURN_IF(t->strs_len + n > UINT32_MAX, AW_ERR_TOKENIZER, "%s: %s too large", t->label,
                 what);
    /* grow the index at half load */
    if (2 * (t->n_vocab + 1) > (t->v_slots ? t->v_mask + 1 : 0)) {
        size_t cap = pow2_at_least(4 * (t->n_vocab + 1));
        uint32_t *slots = calloc(cap, sizeof *slots);
        AW_RETURN_IF(!slots, AW_ERR_NOMEM, "%s: out of memory for the vocabulary", t->label);
        for (size_t e = 0; e < t->n_vocab; e++) {
            size_t i = (size_t)t->v_hash[e] & (cap - 1);
            while (slots[i]) i = (i + 1) & (cap - 1);
            slots[i] = (uint32_t)e + 1;
        }
        free(t->v_slots);
        t->v_slots = slots;
        t->v_mask = cap - 1;
    }
    uint64_t h = hash_bytes(s, n);
    size_t i = (size_t)h & t->v_mask;
    for (; t->v_slots[i]; i = (i + 1) & t->v_mask) {
        uint32_t e = t->v_slots[i] - 1;
        if (t->v_hash[e] == h && t->v_len[e] == n && memcmp(t->strs + t->v_off[e], s, n) == 0)
            return AW_FAIL(AW_ERR_TOKENIZER, "%s: %s has the token \"%.*s\" twice", t->label, what,
                           (int)(n > 60 ? 60 : n), s);
    }
    size_t e = t->n_vocab++;
    memcpy(t->strs + t->strs_len, s, n);
    t->v_off[e] = (uint32_t)t->strs_len;
    t->v_len[e] = (uint32_t)n;
    t->v_id[e] = id;
    t->v_hash[e] = h;
    t->strs_len += n;
    t->v_slots[i] = (uint32_t)e + 1;
    if (id > t->max_id) t->max_id = id;
    return AW_OK;
}

/* Refuse two tokens with one id (a vocabulary must be a bijection). */
static aw_status vocab_check_ids(aw_tokenizer *t, const char *what)
{
    if (t->n_vocab == 0) return AW_FAIL(AW_ERR_TOKENIZER, "%s: %s is empty", t->label, what);
    size_t words = ((size_t)t->max_id >> 6) + 1;
    uint64_t *seen = calloc(words, sizeof *seen);
    AW_RETURN_IF(!seen, AW_ERR_NOMEM, "%s: out of memory checking ids", t->label);
    for (size_t e = 0; e < t->n_vocab; e++) {
        uint32_t id = t->v_id[e];
        if (seen[id >> 6] >> (id & 63) & 1) {
            free(seen);
            return AW_FAIL(AW_ERR_TOKENIZER, "%s: %s gives id %u to two tokens (one is \"%.*s\")",
                           t->label, what, id, (int)(t->v_len[e] > 60 ? 60 : t->v_len[e]),
                           t->strs + t->v_off[e]);
        }
        seen[id >> 6] |= 1ull << (id & 63);
    }
    free(seen);
    return AW_OK;
}

/* ---- merges --------------------------------------------------------------- */

static const merge_slot *merge_get(const aw_tokenizer *t, uint32_t a, uint32_t b)
{
    uint64_t key = (uint64_t)a << 32 | b;
    for (size_t i = (size_t)hash_pair(a, b) & t->m_mask;; i = (i + 1) & t->m_mask) {
        const merge_slot *s = &t->m_slots[i];
        if (s->key == key) return s;
        if (s->key == UINT64_MAX) return NULL;
    }
}

static aw_status merges_alloc(aw_tokenizer *t, size_t n)
{
    size_t cap = pow2_at_least(2 * n + 2);
    t->m_slots = malloc(cap * sizeof *t->m_slots);
    AW_RETURN_IF(!t->m_slots, AW_ERR_NOMEM, "%s: out of memory for %zu merges", t->label, n);
    for (size_t i = 0; i < cap; i++) t->m_slots[i].key = UINT64_MAX;
    t->m_mask = cap - 1;
    return AW_OK;
}

/* Record merge number `rank` of a and b. A pair seen before takes the later
 * rank, as tokenizers' HashMap collect does. what/where name it in errors. */
static aw_status merge_add(aw_tokenizer *t, const char *a, size_t alen, const char *b, size_t blen,
                           uint32_t rank, const char *where)
{
    int64_t ia = vocab_get(t, a, alen), ib = vocab_get(t, b, blen);
    AW_RETURN_IF(ia < 0, AW_ERR_TOKENIZER, "%s: %s: \"%.*s\" is not in the vocabulary", t->label,
                 where, (int)(alen > 60 ? 60 : alen), a);
    AW_RETURN_IF(ib < 0, AW_ERR_TOKENIZER, "%s: %s: \"%.*s\" is not in the vocabulary", t->label,
                 where, (int)(blen > 60 ? 60 : blen), b);
    size_t skip = t->prefix ? t->prefix_len : 0;
    AW_RETURN_IF(skip > blen || (skip < blen && (b[skip] & 0xC0) == 0x80), AW_ERR_TOKENIZER,
                 "%s: %s: \"%.*s\" does not start with the continuing_subword_prefix", t->label,
                 where, (int)(blen > 60 ? 60 : blen), b);
    char small[256];
    size_t n = alen + blen - skip;
    char *cat = n <= sizeof small ? small : malloc(n);
    AW_RETURN_IF(!cat, AW_ERR_NOMEM, "%s: out of memory", t->label);
    memcpy(cat, a, alen);
    memcpy(cat + alen, b + skip, blen - skip);
    int64_t inew = vocab_get(t, cat, n);
    if (cat != small) free(cat);
    AW_RETURN_IF(inew < 0, AW_ERR_TOKENIZER,
                 "%s: %s: the merged token \"%.*s%.*s\" is not in the vocabulary", t->label, where,
                 (int)(alen > 60 ? 60 : alen), a, (int)(blen > 60 ? 60 : blen), b);
    uint64_t key = (uint64_t)ia << 32 | (uint64_t)ib;
    size_t i = (size_t)hash_pair((uint32_t)ia, (uint32_t)ib) & t->m_mask;
    while (t->m_slots[i].key != UINT64_MAX && t->m_slots[i].key != key) i = (i + 1) & t->m_mask;
    if (t->m_slots[i].key == UINT64_MAX) t->n_merges++;
    t->m_slots[i] = (merge_slot){key, rank, (uint32_t)inew};
    return AW_OK;
}

/* ---- GPT-2 bytes_to_unicode ----------------------------------------------- */

static void byte_level_tables(aw_tokenizer *t)
{
    int n = 0;
    for (int b = 0; b < 256; b++) {
        uint32_t cp;
        if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
            cp = (uint32_t)b;
        else
            cp = 256u + (uint32_t)n++;
        if (cp < 0x80) {
            t->bl_utf8[b][0] = (uint8_t)cp;
            t->bl_len[b] = 1;
        } else {
            t->bl_utf8[b][0] = (uint8_t)(0xC0 | cp >> 6);
            t->bl_utf8[b][1] = (uint8_t)(0x80 | (cp & 0x3F));
            t->bl_len[b] = 2;
        }
    }
}

/* ---- JSON helpers --------------------------------------------------------- */

/* flags: 0, or JSON_DECODE_INT_AS_REAL for config files, whose
 * model_max_length can exceed 64 bits (OPT's is 1e30). */
static aw_status json_load(const char *path, const char *buf, size_t len, size_t flags,
                           json_t **out)
{
    json_error_t err;
    *out = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | flags, &err);
    AW_RETURN_IF(!*out, AW_ERR_TOKENIZER, "%s: not valid JSON (line %d, column %d): %s", path,
                 err.line, err.column, err.text);
    return AW_OK;
}

static aw_status read_json_file(const char *path, size_t max, size_t flags, json_t **out)
{
    char *buf;
    size_t len;
    *out = NULL;
    aw_status st = aw_read_file(path, max, &buf, &len);
    if (st != AW_OK) return AW_FAIL(AW_ERR_TOKENIZER, "%s", aw_err_message());
    st = json_load(path, buf, len, flags, out);
    free(buf);
    return st;
}

/* Optional boolean field: absent or null keeps *v; anything else but a
 * boolean is refused. */
static aw_status json_bool_field(const json_t *o, const char *key, int *v, const char *label,
                                 const char *ctx)
{
    json_t *x = json_object_get(o, key);
    if (!x || json_is_null(x)) return AW_OK;
    AW_RETURN_IF(!json_is_boolean(x), AW_ERR_TOKENIZER, "%s: %s.%s is not a boolean", label, ctx,
                 key);
    *v = json_is_true(x);
    return AW_OK;
}

/* Optional string field: NULL when absent or null. */
static aw_status json_str_field(const json_t *o, const char *key, const char **s, size_t *n,
                                const char *label, const char *ctx)
{
    json_t *x = json_object_get(o, key);
    *s = NULL;
    *n = 0;
    if (!x || json_is_null(x)) return AW_OK;
    AW_RETURN_IF(!json_is_string(x), AW_ERR_TOKENIZER, "%s: %s.%s is not a string", label, ctx,
                 key);
    *s = json_string_value(x);
    *n = json_string_length(x);
    return AW_OK;
}

static char *dup_bytes(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        if (n) memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* ---- added tokens --------------------------------------------------------- */

typedef struct {
    const char *content;
    size_t len;
    int lstrip, rstrip, single_word, normalized, special;
} tok_spec;

/* A token of a config file: a string (special, not normalized, as
 * transformers makes of it) or {"content": ..., flags}. */
static aw_status tok_spec_parse(const json_t *v, tok_spec *s, int special, const char *label,
                                const char *ctx)
{
    memset(s, 0, sizeof *s);
    s->special = special;
    s->normalized = !special;
    if (json_is_string(v)) {
        s->content = json_string_value(v);
        s->len = json_string_length(v);
        return AW_OK;
    }
    AW_RETURN_IF(!json_is_object(v), AW_ERR_TOKENIZER,
                 "%s: %s is neither a string nor a token object", label, ctx);
    json_t *c = json_object_get(v, "content");
    AW_RETURN_IF(!json_is_string(c), AW_ERR_TOKENIZER, "%s: %s.content is missing or not a string",
                 label, ctx);
    s->content = json_string_value(c);
    s->len = json_string_length(c);
    AW_TRY(json_bool_field(v, "special", &s->special, label, ctx));
    s->normalized = !s->special;
    AW_TRY(json_bool_field(v, "lstrip", &s->lstrip, label, ctx));
    AW_TRY(json_bool_field(v, "rstrip", &s->rstrip, label, ctx));
    AW_TRY(json_bool_field(v, "single_word", &s->single_word, label, ctx));
    AW_TRY(json_bool_field(v, "normalized", &s->normalized, label, ctx));
    return AW_OK;
}

/* Index of the added token with content s, or -1. */
static int64_t added_find(const aw_tokenizer *t, const char *s, size_t n)
{
    if (!t->a_slots) return -1;
    for (size_t i = (size_t)hash_bytes(s, n) & t->a_mask;; i = (i + 1) & t->a_mask) {
        uint32_t e = t->a_slots[i];
        if (!e) return -1;
        const added_tok *a = &t->added[e - 1];
        if (a->len == n && memcmp(a->content, s, n) == 0) return e - 1;
    }
}

static int64_t added_get(const aw_tokenizer *t, const char *s, size_t n)
{
    int64_t i = added_find(t, s, n);
    return i < 0 ? -1 : (int64_t)t->added[i].id;
}

/* Index added[e] (the table is rebuilt at half load). */
static aw_status added_index(aw_tokenizer *t, size_t e)
{
    if (2 * (t->n_added + 1) > (t->a_slots ? t->a_mask + 1 : 0)) {
        size_t cap = pow2_at_least(4 * (t->n_added + 1));
        uint32_t *slots = calloc(cap, sizeof *slots);
        AW_RETURN_IF(!slots, AW_ERR_NOMEM, "%s: out of memory for added tokens", t->label);
        free(t->a_slots);
        t->a_slots = slots;
        t->a_mask = cap - 1;
        for (size_t k = 0; k < e; k++) {
            size_t i = (size_t)hash_bytes(t->added[k].content, t->added[k].len) & t->a_mask;
            while (t->a_slots[i]) i = (i + 1) & t->a_mask;
            t->a_slots[i] = (uint32_t)k + 1;
        }
    }
    size_t i = (size_t)hash_bytes(t->added[e].content, t->added[e].len) & t->a_mask;
    while (t->a_slots[i]) i = (i + 1) & t->a_mask;
    t->a_slots[i] = (uint32_t)e + 1;
    return AW_OK;
}

/* The id of a token: added tokens first, then the model (token_to_id). */
static int64_t token_id(const aw_tokenizer *t, const char *s, size_t n)
{
    int64_t id = added_get(t, s, n);
    return id >= 0 ? id : vocab_get(t, s, n);
}

/* AddedVocabulary::add_tokens for one token: empty contents are ignored, a
 * content already known keeps its id (flags are updated), a new one gets
 * the next id past the model's vocabulary. */
static aw_status added_add(aw_tokenizer *t, const tok_spec *s)
{
    if (s->len == 0) return AW_OK;
    int64_t known = added_find(t, s->content, s->len);
    if (known >= 0) {
        /* the first definition decides which pass matches it; a later one
         * updates the flags (added_tokens_map_r) */
        added_tok *a = &t->added[known];
        a->lstrip = (uint8_t)s->lstrip;
        a->rstrip = (uint8_t)s->rstrip;
        a->single_word = (uint8_t)s->single_word;
        a->special |= (uint8_t)s->special;
        return AW_OK;
    }
    int64_t id = vocab_get(t, s->content, s->len);
    if (id < 0) {
        /* next id: the model's size, or past the largest added one */
        uint64_t vs = t->n_vocab, next = vs;
        if (t->n_added && (t->added_max >= vs || vs == 0)) next = (uint64_t)t->added_max + 1;
        AW_RETURN_IF(next > TK_MAX_ID, AW_ERR_TOKENIZER, "%s: added token ids overflow", t->label);
        id = (int64_t)next;
    }
    if (t->n_added == t->added_cap) {
        size_t cap = t->added_cap ? 2 * t->added_cap : 16;
        added_tok *p = realloc(t->added, cap * sizeof *p);
        AW_RETURN_IF(!p, AW_ERR_NOMEM, "%s: out of memory for added tokens", t->label);
        t->added = p;
        t->added_cap = cap;
    }
    added_tok *a = &t->added[t->n_added];
    a->content = dup_bytes(s->content, s->len);
    AW_RETURN_IF(!a->content, AW_ERR_NOMEM, "%s: out of memory for added tokens", t->label);
    t->n_added++;
    a->len = s->len;
    a->id = (uint32_t)id;
    a->lstrip = (uint8_t)s->lstrip;
    a->rstrip = (uint8_t)s->rstrip;
    a->single_word = (uint8_t)s->single_word;
    a->normalized = (uint8_t)s->normalized;
    a->special = (uint8_t)s->special;
    if ((uint32_t)id > t->max_id) t->max_id = (uint32_t)id;
    if (t->n_added == 1 || (uint32_t)id > t->added_max) t->added_max = (uint32_t)id;
    return added_index(t, t->n_added - 1);
}

/* ---- normalizer ------------------------------------------------------------ */

/* Grow-only byte buffer of one encode call. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} bytebuf;

static aw_status buf_reserve(bytebuf *b, size_t n)
{
    if (n <= b->cap) return AW_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < n) {
        AW_RETURN_IF(cap > SIZE_MAX / 2, AW_ERR_NOMEM, "tokenizer: text too large");
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    AW_RETURN_IF(!p, AW_ERR_NOMEM, "tokenizer: out of memory (%zu bytes)", cap);
    b->p = p;
    b->cap = cap;
    return AW_OK;
}

/* Apply the normalizer steps to s (n bytes) into out (two buffers ping-pong
 * through the steps). Prepend adds nothing to an empty string. */
static aw_status normalize(const aw_tokenizer *t, const uint8_t *s, size_t n, bytebuf *out,
                           bytebuf *tmp)
{
    AW_TRY(buf_reserve(out, n + 1));
    memcpy(out->p, s, n);
    out->n = n;
    for (size_t k = 0; k < t->n_norm; k++) {
        const norm_step *ns = &t->norm[k];
        if (ns->kind == NORM_PREPEND) {
            if (out->n == 0) continue;
            AW_TRY(buf_reserve(tmp, out->n + ns->alen));
            memcpy(tmp->p, ns->a, ns->alen);
            memcpy(tmp->p + ns->alen, out->p, out->n);
            tmp->n = out->n + ns->alen;
        } else {
            size_t cnt = 0;
            for (size_t i = 0; i + ns->alen <= out->n;) {
                if (memcmp(out->p + i, ns->a, ns->alen) == 0) {
                    cnt++;
                    i += ns->alen;
                } else {
                    i++;
                }
            }
            if (cnt == 0) continue;
            size_t m = out->n - cnt * ns->alen + cnt * ns->blen;
            AW_TRY(buf_reserve(tmp, m));
            size_t o = 0;
            for (size_t i = 0; i < out->n;) {
                if (i + ns->alen <= out->n && memcmp(out->p + i, ns->a, ns->alen) == 0) {
                    memcpy(tmp->p + o, ns->b, ns->blen);
                    o += ns->blen;
                    i += ns->alen;
                } else {
                    tmp->p[o++] = out->p[i++];
                }
            }
            tmp->n = o;
        }
        bytebuf sw = *out;
        *out = *tmp;
        *tmp = sw;
    }
    return AW_OK;
}

/* ---- matchers -------------------------------------------------------------- */

static void matcher_free(matcher *m)
{
    for (size_t i = 0; i < m->n; i++) free(m->pat[i]);
    free(m->pat);
    free(m->plen);
    free(m->tok);
    free(m->order);
    memset(m, 0, sizeof *m);
}

/* Build the matcher of the added tokens whose `normalized` flag is want;
 * normalized patterns are run through the normalizer, as HF does. */
static aw_status matcher_build(aw_tokenizer *t, matcher *m, int want)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n_added; i++) n += t->added[i].normalized == want;
    memset(m->first, 0, sizeof m->first);
    if (n == 0) return AW_OK;
    m->pat = calloc(n, sizeof *m->pat);
    m->plen = calloc(n, sizeof *m->plen);
    m->tok = calloc(n, sizeof *m->tok);
    m->order = calloc(n, sizeof *m->order);
    AW_RETURN_IF(!m->pat || !m->plen || !m->tok || !m->order, AW_ERR_NOMEM,
                 "%s: out of memory for added tokens", t->label);
    bytebuf a = {0}, b = {0};
    aw_status st = AW_OK;
    /* special tokens come first in HF's pattern list, then the others */
    for (int pass = 1; pass >= 0 && st == AW_OK; pass--) {
        for (size_t i = 0; i < t->n_added && st == AW_OK; i++) {
            const added_tok *at = &t->added[i];
            if (at->normalized != want || at->special != pass) continue;
            const uint8_t *p = (const uint8_t *)at->content;
            size_t len = at->len;
            if (want) {
                st = normalize(t, p, len, &a, &b);
                if (st != AW_OK) break;
                p = a.p;
                len = a.n;
            }
            if (len == 0) continue;
            m->pat[m->n] = dup_bytes((const char *)p, len);
            if (!m->pat[m->n]) {
                st = AW_FAIL(AW_ERR_NOMEM, "%s: out of memory for added tokens", t->label);
                break;
            }
            m->plen[m->n] = len;
            m->tok[m->n] = (uint32_t)i;
            m->n++;
        }
    }
    free(a.p);
    free(b.p);
    AW_TRY(st);
    /* bucket by first byte (counting sort), longest first within a bucket;
     * equal patterns keep their order (the first one wins) */
    uint32_t cnt[257] = {0};
    for (size_t i = 0; i < m->n; i++) cnt[(uint8_t)m->pat[i][0] + 1]++;
    for (int b2 = 0; b2 < 256; b2++) cnt[b2 + 1] += cnt[b2];
    memcpy(m->first, cnt, sizeof cnt);
    for (size_t i = 0; i < m->n; i++) m->order[cnt[(uint8_t)m->pat[i][0]]++] = (uint32_t)i;
    for (int b2 = 0; b2 < 256; b2++) {
        /* insertion sort by length, descending, stable */
        for (uint32_t i = m->first[b2] + 1; i < m->first[b2 + 1]; i++) {
            uint32_t x = m->order[i];
            uint32_t j = i;
            while (j > m->first[b2] && m->plen[m->order[j - 1]] < m->plen[x]) {
                m->order[j] = m->order[j - 1];
                j--;
            }
            m->order[j] = x;
        }
    }
    return AW_OK;
}

/* Leftmost-longest match at or after `from`: 1 and the span, or 0. */
static int matcher_find(const matcher *m, const uint8_t *s, size_t n, size_t from, size_t *ms,
                        size_t *me, uint32_t *tok)
{
    if (m->n == 0) return 0;
    for (size_t i = from; i < n; i++) {
        uint8_t c = s[i];
        for (uint32_t k = m->first[c]; k < m->first[c + 1]; k++) {
            uint32_t p = m->order[k];
            size_t len = m->plen[p];
            if (len <= n - i && memcmp(s + i, m->pat[p], len) == 0) {
                *ms = i;
                *me = i + len;
                *tok = m->tok[p];
                return 1;
            }
        }
    }
    return 0;
}

/* ---- the encoder's state --------------------------------------------------- */

typedef struct {
    uint32_t id;
    int32_t prev, next;
    uint32_t len; /* bytes; 0 once merged away */
} bpe_sym;

typedef struct {
    uint32_t rank, pos, new_id;
} bpe_merge;

typedef struct {
    const aw_tokenizer *t;
    aw_idvec *out;
    bytebuf norm, norm_tmp, pre[TK_MAX_PT + 1], map;
    bpe_sym *sym;
    size_t sym_cap;
    bpe_merge *heap;
    size_t heap_cap;
} enc_ctx;

static void enc_free(enc_ctx *c)
{
    free(c->norm.p);
    free(c->norm_tmp.p);
    for (size_t i = 0; i <= TK_MAX_PT; i++) free(c->pre[i].p);
    free(c->map.p);
    free(c->sym);
    free(c->heap);
}

/* ---- word cache ------------------------------------------------------------ */

static void cache_free(cache_shard *c)
{
    if (!c) return;
    for (int i = 0; i < CACHE_SHARDS; i++) {
        pthread_mutex_destroy(&c[i].mu);
        free(c[i].slots);
        free(c[i].arena);
    }
    free(c);
}

static cache_shard *cache_new(void)
{
    cache_shard *c = calloc(CACHE_SHARDS, sizeof *c);
    if (!c) return NULL;
    int ok = 1;
    for (int i = 0; i < CACHE_SHARDS; i++) {
        pthread_mutex_init(&c[i].mu, NULL);
        c[i].slots = calloc(CACHE_SLOTS, sizeof *c[i].slots);
        c[i].arena = malloc(CACHE_ARENA);
        ok &= c[i].slots && c[i].arena;
    }
    if (!ok) {
        cache_free(c);
        return NULL;
    }
    return c;
}

/* Append the cached ids of word w to out: 1 on a hit. A shard another
 * thread holds is skipped (the word is then computed), as HF's try_read. */
static int cache_get(const aw_tokenizer *t, const uint8_t *w, size_t n, uint64_t h, aw_idvec *out)
{
    cache_shard *sh = &t->cache[h & (CACHE_SHARDS - 1)];
    if (pthread_mutex_trylock(&sh->mu) != 0) return 0;
    int hit = 0;
    for (size_t i = (size_t)(h >> 4) & (CACHE_SLOTS - 1);; i = (i + 1) & (CACHE_SLOTS - 1)) {
        const cache_slot *s = &sh->slots[i];
        if (!s->h) break;
        if (s->h == h && s->klen == n && memcmp(sh->arena + s->off, w, n) == 0) {
            if (idvec_reserve(out, s->nid) == AW_OK) {
                const uint8_t *ids = sh->arena + s->off + ((n + 3) & ~(size_t)3);
                memcpy(out->v + out->n, ids, (size_t)s->nid * 4);
                out->n += s->nid;
                hit = 1;
            }
            break;
        }
    }
    pthread_mutex_unlock(&sh->mu);
    return hit;
}

static void cache_put(const aw_tokenizer *t, const uint8_t *w, size_t n, uint64_t h,
                      const uint32_t *ids, size_t nid)
{
    if (n > CACHE_MAX_KEY || nid > 0xFFFF) return;
    cache_shard *sh = &t->cache[h & (CACHE_SHARDS - 1)];
    if (pthread_mutex_trylock(&sh->mu) != 0) return;
    size_t need = ((n + 3) & ~(size_t)3) + nid * 4;
    if (2 * (sh->count + 1) > CACHE_SLOTS || sh->used + need > CACHE_ARENA) {
        memset(sh->slots, 0, CACHE_SLOTS * sizeof *sh->slots);
        sh->used = sh->count = 0;
    }
    size_t i = (size_t)(h >> 4) & (CACHE_SLOTS - 1);
    while (sh->slots[i].h) {
        const cache_slot *s = &sh->slots[i];
        if (s->h == h && s->klen == n && memcmp(sh->arena + s->off, w, n) == 0) {
            pthread_mutex_unlock(&sh->mu);
            return; /* another call put it there */
        }
        i = (i + 1) & (CACHE_SLOTS - 1);
    }
    memcpy(sh->arena + sh->used, w, n);
    memcpy(sh->arena + sh->used + ((n + 3) & ~(size_t)3), ids, nid * 4);
    sh->slots[i] = (cache_slot){h, (uint32_t)sh->used, (uint16_t)n, (uint16_t)nid};
    sh->used += need;
    sh->count++;
    pthread_mutex_unlock(&sh->mu);
}

/* ---- BPE ------------------------------------------------------------------- */

static void heap_push(bpe_merge *h, size_t *n, bpe_merge m)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].rank < m.rank || (h[p].rank == m.rank && h[p].pos <= m.pos)) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = m;
}

static bpe_merge heap_pop(bpe_merge *h, size_t *n)
{
    bpe_merge top = h[0], last = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, s = i;
        const bpe_merge *best = &last;
        if (l < m &&
            (h[l].rank < best->rank || (h[l].rank == best->rank && h[l].pos < best->pos))) {
            s = l;
            best = &h[l];
        }
        if (r < m && (h[r].rank < best->rank || (h[r].rank == best->rank && h[r].pos < best->pos)))
            s = r;
        if (s == i) break;
        h[i] = h[s];
        i = s;
    }
    if (m) h[i] = last;
    return top;
}

/* The vocabulary id of one character of a word (bytes c, len n), with the
 * continuing_subword_prefix / end_of_word_suffix where they apply. */
static int64_t char_id(const aw_tokenizer *t, const uint8_t *c, size_t n, int first, int last)
{
    if ((first || !t->prefix_len) && (!last || !t->suffix_len)) return vocab_get(t, c, n);
    uint8_t tmp[2 * TK_MAX_AFFIX + 8];
    size_t k = 0;
    if (!first && t->prefix_len) {
        memcpy(tmp, t->prefix, t->prefix_len);
        k = t->prefix_len;
    }
    memcpy(tmp + k, c, n);
    k += n;
    if (last && t->suffix_len) {
        memcpy(tmp + k, t->suffix, t->suffix_len);
        k += t->suffix_len;
    }
    return vocab_get(t, tmp, k);
}

static aw_status sym_add(enc_ctx *c, size_t *ns, uint32_t id, uint32_t len)
{
    if (*ns == c->sym_cap) {
        size_t cap = c->sym_cap ? 2 * c->sym_cap : 256;
        bpe_sym *p = realloc(c->sym, cap * sizeof *p);
        AW_RETURN_IF(!p, AW_ERR_NOMEM, "tokenizer: out of memory (%zu symbols)", cap);
        c->sym = p;
        c->sym_cap = cap;
    }
    c->sym[*ns] = (bpe_sym){id, (int32_t)*ns - 1, (int32_t)*ns + 1, len};
    (*ns)++;
    return AW_OK;
}

/* BPE::merge_word: the symbols of word w (raw bytes; for byte-level models
 * each byte is the character bl_utf8[byte]), unknown characters through
 * byte fallback or unk (fused or not). */
static aw_status bpe_symbols(enc_ctx *c, const uint8_t *w, size_t n, size_t *ns)
{
    const aw_tokenizer *t = c->t;
    int64_t unk_pending = -1;
    uint32_t unk_len = 0;
    *ns = 0;
    for (size_t i = 0; i < n;) {
        const uint8_t *ch;
        size_t clen, raw;
        int64_t id;
        int first = i == 0;
        if (t->byte_level) {
            ch = t->bl_utf8[w[i]];
            clen = t->bl_len[w[i]];
            raw = 1;
            if (!t->prefix_len && !t->suffix_len)
                id = t->sym_id[w[i]];
            else
                id = char_id(t, ch, clen, first, i + 1 == n);
        } else {
            ch = w + i;
            clen = raw = aw_utf8_len(w[i]);
            if (clen > n - i) clen = raw = n - i; /* cannot happen on valid text */
            id = char_id(t, ch, clen, first, i + raw == n);
        }
        i += raw;
        if (id >= 0) {
            if (unk_pending >= 0) {
                AW_TRY(sym_add(c, ns, (uint32_t)unk_pending, unk_len));
                unk_pending = -1;
            }
            AW_TRY(sym_add(c, ns, (uint32_t)id, (uint32_t)clen));
            continue;
        }
        if (t->byte_fallback) {
            /* the bytes of the character as the model spells it, prefix and
             * suffix included (BPE::merge_word formats `s`) */
            uint8_t tmp[2 * TK_MAX_AFFIX + 8];
            size_t k = 0;
            if (!first && t->prefix_len) {
                memcpy(tmp, t->prefix, t->prefix_len);
                k = t->prefix_len;
            }
            memcpy(tmp + k, ch, clen);
            k += clen;
            if (i == n && t->suffix_len) {
                memcpy(tmp + k, t->suffix, t->suffix_len);
                k += t->suffix_len;
            }
            int all = 1;
            for (size_t j = 0; j < k; j++) all &= t->fb_id[tmp[j]] >= 0;
            if (all) {
                for (size_t j = 0; j < k; j++)
                    AW_TRY(sym_add(c, ns, (uint32_t)t->fb_id[tmp[j]], 1));
                continue;
            }
        }
        if (t->unk_id >= 0) {
            if (unk_pending >= 0 && t->fuse_unk) {
                unk_len += (uint32_t)clen;
            } else {
                if (unk_pending >= 0) AW_TRY(sym_add(c, ns, (uint32_t)unk_pending, unk_len));
                unk_pending = t->unk_id;
                unk_len = (uint32_t)clen;
            }
        }
    }
    if (unk_pending >= 0) AW_TRY(sym_add(c, ns, (uint32_t)unk_pending, unk_len));
    if (*ns) c->sym[*ns - 1].next = -1;
    return AW_OK;
}

/* Word::merge_all: lowest rank first, leftmost among equals; a queue entry
 * whose pair changed since is dropped. */
static aw_status bpe_merge_all(enc_ctx *c, size_t ns)
{
    const aw_tokenizer *t = c->t;
    if (ns < 2) return AW_OK;
    if (c->heap_cap < 2 * ns) {
        size_t cap = 2 * ns;
        bpe_merge *p = realloc(c->heap, cap * sizeof *p);
        AW_RETURN_IF(!p, AW_ERR_NOMEM, "tokenizer: out of memory (%zu merges)", cap);
        c->heap = p;
        c->heap_cap = cap;
    }
    bpe_sym *s = c->sym;
    size_t hn = 0;
    for (size_t i = 0; i + 1 < ns; i++) {
        const merge_slot *m = merge_get(t, s[i].id, s[i + 1].id);
        if (m) heap_push(c->heap, &hn, (bpe_merge){m->rank, (uint32_t)i, m->new_id});
    }
    while (hn) {
        bpe_merge top = heap_pop(c->heap, &hn);
        bpe_sym *cur = &s[top.pos];
        if (cur->len == 0 || cur->next < 0) continue;
        int32_t nx = cur->next;
        const merge_slot *m = merge_get(t, cur->id, s[nx].id);
        if (!m || m->new_id != top.new_id) continue;
        cur->id = top.new_id;
        cur->len += s[nx].len;
        cur->next = s[nx].next;
        s[nx].len = 0;
        if (cur->next >= 0) s[cur->next].prev = (int32_t)top.pos;
        /* each merge removes a symbol and pushes at most two entries: the
         * queue never holds more than 2 * ns */
        if (cur->prev >= 0) {
            m = merge_get(t, s[cur->prev].id, cur->id);
            if (m) heap_push(c->heap, &hn, (bpe_merge){m->rank, (uint32_t)cur->prev, m->new_id});
        }
        if (cur->next >= 0) {
            m = merge_get(t, cur->id, s[cur->next].id);
            if (m) heap_push(c->heap, &hn, (bpe_merge){m->rank, top.pos, m->new_id});
        }
    }
    return AW_OK;
}

/* BPE of one pre-token (raw bytes), ids appended to c->out. */
static aw_status bpe_word(enc_ctx *c, const uint8_t *w, size_t n)
{
    const aw_tokenizer *t = c->t;
    if (n == 0) return AW_OK;
    aw_idvec *out = c->out;
    if (t->byte_level && n == 1 && t->sym_id[w[0]] >= 0 && !t->prefix_len && !t->suffix_len) {
        AW_TRY(idvec_reserve(out, 1));
        out->v[out->n++] = (uint32_t)t->sym_id[w[0]];
        return AW_OK;
    }
    uint64_t h = 0;
    if (n <= CACHE_MAX_KEY) {
        h = hash_bytes(w, n) | 1;
        if (cache_get(t, w, n, h, out)) return AW_OK;
    }
    size_t n0 = out->n;
    if (t->ignore_merges) {
        const uint8_t *key = w;
        size_t klen = n;
        if (t->byte_level) {
            AW_TRY(buf_reserve(&c->map, 2 * n));
            klen = 0;
            for (size_t i = 0; i < n; i++) {
                memcpy(c->map.p + klen, t->bl_utf8[w[i]], t->bl_len[w[i]]);
                klen += t->bl_len[w[i]];
            }
            key = c->map.p;
        }
        int64_t id = vocab_get(t, key, klen);
        if (id >= 0) {
            AW_TRY(idvec_reserve(out, 1));
            out->v[out->n++] = (uint32_t)id;
            if (h) cache_put(t, w, n, h, out->v + n0, 1);
            return AW_OK;
        }
    }
    size_t ns;
    AW_TRY(bpe_symbols(c, w, n, &ns));
    AW_TRY(bpe_merge_all(c, ns));
    AW_TRY(idvec_reserve(out, ns));
    for (size_t i = 0; i < ns; i++)
        if (c->sym[i].len) out->v[out->n++] = c->sym[i].id;
    if (h) cache_put(t, w, n, h, out->v + n0, out->n - n0);
    return AW_OK;
}

/* ---- pre-tokenizer patterns ------------------------------------------------ */

static inline unsigned cls_at(const uint8_t *s, size_t i, size_t *next)
{
    size_t k = i;
    uint32_t cp = aw_utf8_next(s, &k);
    *next = k;
    return aw_uc_class(cp);
}

#define IS_OTHER(cl) (!((cl) & (AW_UC_L | AW_UC_N | AW_UC_S)))

/* End of the run of characters from i whose class has `bits` (or none of
 * L/N/S when bits is 0). */
static size_t run_of(const uint8_t *s, size_t n, size_t i, unsigned bits)
{
    while (i < n) {
        if (s[i] < 0x80) {
            unsigned cl = aw_uc_latin1[s[i]];
            if (bits ? !(cl & bits) : !IS_OTHER(cl)) break;
            i++;
            continue;
        }
        size_t k;
        unsigned cl = cls_at(s, i, &k);
        if (bits ? !(cl & bits) : !IS_OTHER(cl)) break;
        i = k;
    }
    return i;
}

/* \s+(?!\S) | \s+ at i (a whitespace character): the run, less its last
 * character when a non-space follows and the run has two or more. */
static size_t ws_match(const uint8_t *s, size_t n, size_t i)
{
    size_t last = i, j = i;
    while (j < n) {
        size_t k;
        unsigned cl = cls_at(s, j, &k);
        if (!(cl & AW_UC_S)) break;
        last = j;
        j = k;
    }
    if (j == n || last == i) return j;
    return last;
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * Returns the end of the match that starts at i (< n). */
static size_t re_gpt2(const uint8_t *s, size_t n, size_t i)
{
    if (s[i] == '\'' && i + 1 < n) {
        uint8_t a = s[i + 1];
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if (i + 2 < n) {
            uint8_t b = s[i + 2];
            if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
                return i + 3;
        }
    }
    size_t k;
    unsigned cl = cls_at(s, i, &k);
    if (s[i] == ' ' && k < n) {
        size_t k2;
        unsigned c2 = cls_at(s, k, &k2);
        if (c2 & AW_UC_L) return run_of(s, n, k2, AW_UC_L);
        if (c2 & AW_UC_N) return run_of(s, n, k2, AW_UC_N);
        if (IS_OTHER(c2)) return run_of(s, n, k2, 0);
    }
    if (cl & AW_UC_L) return run_of(s, n, k, AW_UC_L);
    if (cl & AW_UC_N) return run_of(s, n, k, AW_UC_N);
    if (IS_OTHER(cl)) return run_of(s, n, k, 0);
    return ws_match(s, n, i);
}

/* Case-insensitive letter of the cl100k contractions: the ASCII letter, or
 * 0. U+017F (long s) folds to 's' under Oniguruma's (?i). */
static uint8_t fold_at(const uint8_t *s, size_t n, size_t i, size_t *next)
{
    if (i >= n) return 0;
    if (s[i] < 0x80) {
        *next = i + 1;
        uint8_t c = s[i];
        return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
    }
    if (s[i] == 0xC5 && i + 1 < n && s[i + 1] == 0xBF) {
        *next = i + 2;
        return 's';
    }
    return 0;
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * with D = 3 (cl100k, LLaMA 3) or 1 (Qwen2). */
static size_t re_cl100k(const uint8_t *s, size_t n, size_t i, int max_digits)
{
    if (s[i] == '\'') {
        size_t k1, k2;
        uint8_t a = fold_at(s, n, i + 1, &k1);
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return k1;
        if (a == 'r' || a == 'v' || a == 'l') {
            uint8_t b = fold_at(s, n, k1, &k2);
            if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
                return k2;
        }
    }
    size_t k;
    unsigned cl = cls_at(s, i, &k);
    if (cl & AW_UC_L) return run_of(s, n, k, AW_UC_L);
    if (s[i] != '\r' && s[i] != '\n' && !(cl & AW_UC_N) && k < n) {
        size_t k2;
        unsigned c2 = cls_at(s, k, &k2);
        if (c2 & AW_UC_L) return run_of(s, n, k2, AW_UC_L);
    }
    if (cl & AW_UC_N) {
        size_t j = k;
        for (int d = 1; d < max_digits && j < n; d++) {
            size_t k2;
            if (!(cls_at(s, j, &k2) & AW_UC_N)) break;
            j = k2;
        }
        return j;
    }
    size_t p = i, kp = k;
    unsigned cp = cl;
    if (s[i] == ' ' && k < n) {
        size_t k2;
        unsigned c2 = cls_at(s, k, &k2);
        if (IS_OTHER(c2)) {
            p = k;
            kp = k2;
            cp = c2;
        }
    }
    if (IS_OTHER(cp)) {
        size_t j = run_of(s, n, kp, 0);
        while (j < n && (s[j] == '\r' || s[j] == '\n')) j++;
        return j;
    }
    (void)p;
    /* whitespace: \s*[\r\n]+ ends after the run's last CR/LF */
    size_t j = i, lastnl = SIZE_MAX;
    while (j < n) {
        size_t k2;
        unsigned c2 = cls_at(s, j, &k2);
        if (!(c2 & AW_UC_S)) break;
        if (s[j] == '\r' || s[j] == '\n') lastnl = j;
        j = k2;
    }
    if (lastnl != SIZE_MAX) return lastnl + 1;
    return ws_match(s, n, i);
}

static size_t re_match(re_kind re, const uint8_t *s, size_t n, size_t i)
{
    switch (re) {
    case RE_GPT2:
        return re_gpt2(s, n, i);
    case RE_CL100K:
        return re_cl100k(s, n, i, 3);
    case RE_QWEN2:
        return re_cl100k(s, n, i, 1);
    }
    return n;
}

/* ---- pre-tokenization ------------------------------------------------------- */

/* Run pre-tokenizer steps k.. on piece s (n bytes). at_origin: the piece
 * starts at offset 0 of the original text (Metaspace's "first"). */
static aw_status pretok(enc_ctx *c, size_t k, const uint8_t *s, size_t n, int at_origin)
{
    const aw_tokenizer *t = c->t;
    if (n == 0) return AW_OK;
    if (k == t->n_pt) return bpe_word(c, s, n);
    const pt_step *p = &t->pt[k];
    bytebuf *b = &c->pre[k];
    switch (p->kind) {
    case PT_BYTELEVEL: {
        if (p->add_prefix_space && s[0] != ' ') {
            AW_TRY(buf_reserve(b, n + 1));
            b->p[0] = ' ';
            memcpy(b->p + 1, s, n);
            s = b->p;
            n++;
        }
        if (!p->use_regex) return pretok(c, k + 1, s, n, at_origin);
        for (size_t i = 0; i < n;) {
            size_t e = re_gpt2(s, n, i);
            AW_TRY(pretok(c, k + 1, s + i, e - i, at_origin && i == 0));
            i = e;
        }
        return AW_OK;
    }
    case PT_SPLIT:
        for (size_t i = 0; i < n;) {
            size_t e = re_match(p->re, s, n, i);
            AW_TRY(pretok(c, k + 1, s + i, e - i, at_origin && i == 0));
            i = e;
        }
        return AW_OK;
    case PT_METASPACE: {
        size_t spaces = 0;
        for (size_t i = 0; i < n; i++) spaces += s[i] == ' ';
        AW_TRY(buf_reserve(b, n + spaces * p->rep_len + p->rep_len));
        size_t o = 0;
        int has_rep = (s[0] == ' ') || (n >= p->rep_len && memcmp(s, p->rep, p->rep_len) == 0);
        if (!has_rep &&
            (p->scheme == PREPEND_ALWAYS || (p->scheme == PREPEND_FIRST && at_origin))) {
            memcpy(b->p, p->rep, p->rep_len);
            o = p->rep_len;
        }
        for (size_t i = 0; i < n; i++) {
            if (s[i] == ' ') {
                memcpy(b->p + o, p->rep, p->rep_len);
                o += p->rep_len;
            } else {
                b->p[o++] = s[i];
            }
        }
        const uint8_t *q = b->p;
        if (!p->split) return pretok(c, k + 1, q, o, at_origin);
        /* split before each replacement character (MergedWithNext) */
        size_t start = 0;
        for (size_t i = p->rep_len; i + p->rep_len <= o;) {
            if (memcmp(q + i, p->rep, p->rep_len) == 0) {
                AW_TRY(pretok(c, k + 1, q + start, i - start, at_origin && start == 0));
                start = i;
                i += p->rep_len;
            } else {
                i++;
            }
        }
        return pretok(c, k + 1, q + start, o - start, at_origin && start == 0);
    }
    }
    return AW_OK;
}

/* ---- added-token splitting --------------------------------------------------- */

static int ends_with_word(const uint8_t *s, size_t n)
{
    if (n == 0) return 0;
    size_t i = n - 1;
    while (i > 0 && (s[i] & 0xC0) == 0x80) i--;
    size_t k;
    return (cls_at(s, i, &k) & AW_UC_W) != 0;
}

static int starts_with_word(const uint8_t *s, size_t n)
{
    if (n == 0) return 0;
    size_t k;
    return (cls_at(s, 0, &k) & AW_UC_W) != 0;
}

/* Start of the run of whitespace that ends s (\s*$). */
static size_t ws_start_at_end(const uint8_t *s, size_t n)
{
    size_t i = n;
    while (i > 0) {
        size_t j = i - 1;
        while (j > 0 && (s[j] & 0xC0) == 0x80) j--;
        size_t k;
        if (!(cls_at(s, j, &k) & AW_UC_S)) break;
        i = j;
    }
    return i;
}

/* Length of the whitespace that starts s (^\s*). */
static size_t ws_len_at_start(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t k;
        if (!(cls_at(s, i, &k) & AW_UC_S)) break;
        i = k;
    }
    return i;
}

typedef aw_status (*piece_fn)(enc_ctx *c, const uint8_t *s, size_t n, int at_origin);

/* AddedVocabulary::find_matches: cut the matches of m out of s, handing the
 * text between them to fn and pushing the tokens' ids. */
static aw_status split_added(enc_ctx *c, const matcher *m, const uint8_t *s, size_t n,
                             int at_origin, piece_fn fn)
{
    const aw_tokenizer *t = c->t;
    size_t pos = 0, done = 0, ms, me;
    uint32_t ti;
    while (pos < n && matcher_find(m, s, n, pos, &ms, &me, &ti)) {
        const added_tok *a = &t->added[ti];
        size_t start = ms, stop = me;
        pos = me;
        if (a->single_word) {
            int sp_start = start == 0 || !ends_with_word(s, start);
            int sp_stop = stop == n || !starts_with_word(s + stop, n - stop);
            if (!sp_start || !sp_stop) continue;
        }
        if (a->lstrip) {
            size_t ns = ws_start_at_end(s, start);
            start = ns > done ? ns : done;
        }
        if (a->rstrip) stop += ws_len_at_start(s + stop, n - stop);
        if (start < done) start = done; /* overlapping strip: keep splits disjoint */
        if (done < start) AW_TRY(fn(c, s + done, start - done, at_origin && done == 0));
        AW_TRY(aw_idvec_push(c->out, a->id));
        done = stop;
        if (pos < stop) pos = stop;
    }
    if (done < n) AW_TRY(fn(c, s + done, n - done, at_origin && done == 0));
    return AW_OK;
}

static aw_status piece_pretok(enc_ctx *c, const uint8_t *s, size_t n, int at_origin)
{
    return pretok(c, 0, s, n, at_origin);
}

/* A piece of the raw text between non-normalized added tokens: normalize,
 * then cut the normalized added tokens out of it. */
static aw_status piece_raw(enc_ctx *c, const uint8_t *s, size_t n, int at_origin)
{
    const aw_tokenizer *t = c->t;
    if (t->n_norm == 0) return split_added(c, &t->m_norm, s, n, at_origin, piece_pretok);
    AW_TRY(normalize(t, s, n, &c->norm, &c->norm_tmp));
    /* the normalized text lives in c->norm until this piece is done: the
     * pre-tokenizer uses other buffers */
    return split_added(c, &t->m_norm, c->norm.p, c->norm.n, at_origin, piece_pretok);
}

aw_status aw_tokenizer_encode(const aw_tokenizer *t, const char *text, size_t len, int add_special,
                              aw_idvec *out)
{
    AW_RETURN_IF(!t || !out || (!text && len), AW_ERR_ARG, "aw_tokenizer_encode: NULL argument");
    const uint8_t *s = (const uint8_t *)text;
    size_t bad = aw_utf8_check(s, len);
    AW_RETURN_IF(bad != len, AW_ERR_CORPUS,
                 "text is not valid UTF-8: bad byte 0x%02X at byte offset %zu", s[bad], bad);
    size_t n0 = out->n;
    enc_ctx c = {.t = t, .out = out};
    aw_status st = AW_OK;
    if (add_special)
        for (size_t i = 0; i < t->n_pre && st == AW_OK; i++) st = aw_idvec_push(out, t->pre_ids[i]);
    if (st == AW_OK) st = idvec_reserve(out, len / 4 + 16);
    if (st == AW_OK) st = split_added(&c, &t->m_raw, s, len, 1, piece_raw);
    if (add_special)
        for (size_t i = 0; i < t->n_post && st == AW_OK; i++)
            st = aw_idvec_push(out, t->post_ids[i]);
    enc_free(&c);
    if (st != AW_OK) out->n = n0;
    return st;
}

/* ---- loading: shared --------------------------------------------------------- */

static aw_tokenizer *tk_new(const char *label)
{
    aw_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->label = dup_bytes(label, strlen(label));
    t->cache = cache_new();
    if (!t->label || !t->cache) {
        free(t->label);
        cache_free(t->cache);
        free(t);
        return NULL;
    }
    t->unk_id = -1;
    t->bos = -1;
    byte_level_tables(t);
    return t;
}

void aw_tokenizer_close(aw_tokenizer *t)
{
    if (!t) return;
    free(t->strs);
    free(t->v_off);
    free(t->v_len);
    free(t->v_id);
    free(t->v_hash);
    free(t->v_slots);
    free(t->m_slots);
    free(t->prefix);
    free(t->suffix);
    for (size_t i = 0; i < t->n_norm; i++) {
        free(t->norm[i].a);
        free(t->norm[i].b);
    }
    for (size_t i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    free(t->a_slots);
    matcher_free(&t->m_raw);
    matcher_free(&t->m_norm);
    free(t->label);
    cache_free(t->cache);
    free(t);
}

uint32_t aw_tokenizer_vocab_size(const aw_tokenizer *t)
{
    return t->max_id + 1;
}

int64_t aw_tokenizer_bos(const aw_tokenizer *t)
{
    return t->bos;
}

const char *aw_tokenizer_describe(const aw_tokenizer *t)
{
    return t->desc;
}

/* Tables that depend on the vocabulary, once it and the options are set. */
static aw_status finish_model(aw_tokenizer *t)
{
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->fb_id[b] = (int32_t)vocab_get(t, name, 6);
        t->sym_id[b] = (int32_t)vocab_get(t, t->bl_utf8[b], t->bl_len[b]);
    }
    AW_TRY(matcher_build(t, &t->m_raw, 0));
    AW_TRY(matcher_build(t, &t->m_norm, 1));
    return AW_OK;
}

/* The parts of tokenizer_config.json and special_tokens_map.json this
 * reader uses (special_tokens_map.json wins where both say). */
typedef struct {
    json_t *cfg, *map;
    const json_t *bos, *eos, *unk, *pad, *sep, *cls, *mask, *extra;
    int add_bos, add_eos; /* -1 when not said */
    int add_prefix_space;
    const char *tokenizer_class;
} folder_cfg;

static const json_t *cfg_get(const folder_cfg *f, const char *key)
{
    const json_t *v = f->map ? json_object_get(f->map, key) : NULL;
    if (v && !json_is_null(v)) return v;
    v = f->cfg ? json_object_get(f->cfg, key) : NULL;
    return v && !json_is_null(v) ? v : NULL;
}

static aw_status read_folder_cfg(const char *dir, folder_cfg *f)
{
    memset(f, 0, sizeof *f);
    f->add_bos = f->add_eos = -1;
    const char *names[2] = {"tokenizer_config.json", "special_tokens_map.json"};
    json_t **slots[2] = {&f->cfg, &f->map};
    for (int i = 0; i < 2; i++) {
        char *p = aw_path_join(dir, names[i]);
        AW_RETURN_IF(!p, AW_ERR_NOMEM, "out of memory");
        struct stat sb;
        aw_status st = AW_OK;
        if (stat(p, &sb) == 0) {
            st = read_json_file(p, TK_MAX_CONFIG, JSON_DECODE_INT_AS_REAL, slots[i]);
            if (st == AW_OK && !json_is_object(*slots[i]))
                st = AW_FAIL(AW_ERR_TOKENIZER, "%s: not a JSON object", p);
        }
        free(p);
        AW_TRY(st);
    }
    f->bos = cfg_get(f, "bos_token");
    f->eos = cfg_get(f, "eos_token");
    f->unk = cfg_get(f, "unk_token");
    f->pad = cfg_get(f, "pad_token");
    f->sep = cfg_get(f, "sep_token");
    f->cls = cfg_get(f, "cls_token");
    f->mask = cfg_get(f, "mask_token");
    f->extra = cfg_get(f, "additional_special_tokens");
    if (f->cfg) {
        json_t *v;
        if ((v = json_object_get(f->cfg, "add_bos_token")) && json_is_boolean(v))
            f->add_bos = json_is_true(v);
        if ((v = json_object_get(f->cfg, "add_eos_token")) && json_is_boolean(v))
            f->add_eos = json_is_true(v);
        if ((v = json_object_get(f->cfg, "add_prefix_space")) && json_is_boolean(v))
            f->add_prefix_space = json_is_true(v);
        if ((v = json_object_get(f->cfg, "tokenizer_class")) && json_is_string(v))
            f->tokenizer_class = json_string_value(v);
    }
    return AW_OK;
}

static void folder_cfg_free(folder_cfg *f)
{
    json_decref(f->cfg);
    json_decref(f->map);
}

/* The content of a config token (string or {"content"}), or NULL. */
static const char *cfg_token_content(const json_t *v, size_t *n)
{
    if (json_is_string(v)) {
        *n = json_string_length(v);
        return json_string_value(v);
    }
    json_t *c = json_is_object(v) ? json_object_get(v, "content") : NULL;
    if (json_is_string(c)) {
        *n = json_string_length(c);
        return json_string_value(c);
    }
    return NULL;
}

/* post-processor from add_bos_token / add_eos_token (transformers'
 * update_post_processor). */
static aw_status template_from_flags(aw_tokenizer *t, const folder_cfg *f, const char *cfg_path)
{
    t->n_pre = t->n_post = 0;
    const json_t *which[2] = {f->bos, f->eos};
    int want[2] = {f->add_bos == 1, f->add_eos == 1};
    for (int k = 0; k < 2; k++) {
        if (!want[k] || !which[k]) continue;
        size_t n;
        const char *s = cfg_token_content(which[k], &n);
        if (!s) continue;
        int64_t id = token_id(t, s, n);
        AW_RETURN_IF(id < 0, AW_ERR_TOKENIZER, "%s: %s token \"%s\" is not in the vocabulary",
                     cfg_path, k ? "EOS" : "BOS", s);
        if (k == 0)
            t->pre_ids[t->n_pre++] = (uint32_t)id;
        else
            t->post_ids[t->n_post++] = (uint32_t)id;
    }
    return AW_OK;
}

/* BOS: the config's bos_token when it names a known token. */
static void bos_from_cfg(aw_tokenizer *t, const folder_cfg *f)
{
    if (!f->bos) return;
    size_t n;
    const char *s = cfg_token_content(f->bos, &n);
    if (s) {
        int64_t id = token_id(t, s, n);
        if (id >= 0) t->bos = id;
    }
}

/* ---- loading: vocab.json + merges.txt --------------------------------------- */

static aw_status load_vocab_json(aw_tokenizer *t, const json_t *v, const char *path)
{
    AW_RETURN_IF(!json_is_object(v), AW_ERR_TOKENIZER,
                 "%s: the vocabulary is not a JSON object of token -> id", path);
    const char *key;
    size_t klen;
    json_t *val;
    json_object_keylen_foreach((json_t *)v, key, klen, val)
    {
        AW_RETURN_IF(!json_is_integer(val), AW_ERR_TOKENIZER,
                     "%s: the id of token \"%.*s\" is not an integer", path,
                     (int)(klen > 60 ? 60 : klen), key);
        json_int_t id = json_integer_value(val);
        AW_RETURN_IF(id < 0 || id > (json_int_t)TK_MAX_ID, AW_ERR_TOKENIZER,
                     "%s: token \"%.*s\" has id %lld, outside 0..%u", path,
                     (int)(klen > 60 ? 60 : klen), key, (long long)id, TK_MAX_ID);
        AW_TRY(vocab_add(t, key, klen, (uint32_t)id, "the vocabulary"));
    }
    return vocab_check_ids(t, "the vocabulary");
}

/* merges.txt as tokenizers reads it: lines (\n or \r\n), "#version" lines
 * skipped, every other line exactly two symbols split by one space. */
static aw_status load_merges_txt(aw_tokenizer *t, const char *buf, size_t len, const char *path)
{
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
    AW_TRY(merges_alloc(t, lines + 1));
    AW_RETURN_IF(aw_utf8_check((const uint8_t *)buf, len) != len, AW_ERR_TOKENIZER,
                 "%s: not valid UTF-8", path);
    uint32_t rank = 0;
    size_t lineno = 0;
    for (size_t i = 0; i < len;) {
        size_t e = i;
        while (e < len && buf[e] != '\n') e++;
        size_t next = e < len ? e + 1 : e;
        size_t l = e;
        if (l > i && buf[l - 1] == '\r') l--;
        lineno++;
        const char *line = buf + i;
        size_t n = l - i;
        i = next;
        if (n >= 8 && memcmp(line, "#version", 8) == 0) continue;
        const char *sp = memchr(line, ' ', n);
        char where[64];
        snprintf(where, sizeof where, "line %zu", lineno);
        AW_RETURN_IF(!sp || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - line)), AW_ERR_TOKENIZER,
                     "%s: line %zu is not two symbols separated by one space: \"%.*s\"", path,
                     lineno, (int)(n > 60 ? 60 : n), line);
        AW_TRY(merge_add(t, line, (size_t)(sp - line), sp + 1, n - (size_t)(sp + 1 - line), rank,
                         where));
        rank++;
    }
    AW_RETURN_IF(rank == 0, AW_ERR_TOKENIZER, "%s: no merges", path);
    return AW_OK;
}

static aw_status add_cfg_token(aw_tokenizer *t, const json_t *v, const char *path, const char *what)
{
    if (!v) return AW_OK;
    tok_spec s;
    AW_TRY(tok_spec_parse(v, &s, 1, path, what));
    s.special = 1;
    return added_add(t, &s);
}

static aw_status open_vocab_merges(aw_tokenizer *t, const char *dir, const char *vpath,
                                   const char *mpath)
{
    folder_cfg f;
    aw_status st = read_folder_cfg(dir, &f);
    char *mbuf = NULL, *cfg_path = NULL;
    json_t *vj = NULL, *atj = NULL;
    if (st != AW_OK) goto fail;
    cfg_path = aw_path_join(dir, "tokenizer_config.json");
    AW_GOTO_IF(!cfg_path, AW_ERR_NOMEM, "out of memory");
    if (f.tokenizer_class && strcmp(f.tokenizer_class, "GPT2Tokenizer") != 0 &&
        strcmp(f.tokenizer_class, "GPT2TokenizerFast") != 0)
        AW_GOTO_IF(1, AW_ERR_TOKENIZER,
                   "%s: tokenizer_class %s with vocab.json + merges.txt is not supported "
                   "(only GPT2Tokenizer)",
                   cfg_path, f.tokenizer_class);

    AW_CHECK(read_json_file(vpath, TK_MAX_FILE, 0, &vj));
    free(t->label);
    t->label = dup_bytes(vpath, strlen(vpath));
    AW_GOTO_IF(!t->label, AW_ERR_NOMEM, "out of memory");
    AW_CHECK(load_vocab_json(t, vj, vpath));
    size_t mlen;
    st = aw_read_file(mpath, TK_MAX_FILE, &mbuf, &mlen);
    AW_GOTO_IF(st != AW_OK, AW_ERR_TOKENIZER, "%s", aw_err_message());
    free(t->label);
    t->label = dup_bytes(mpath, strlen(mpath));
    AW_GOTO_IF(!t->label, AW_ERR_NOMEM, "out of memory");
    AW_CHECK(load_merges_txt(t, mbuf, mlen, mpath));
    free(t->label);
    t->label = dup_bytes(dir, strlen(dir));
    AW_GOTO_IF(!t->label, AW_ERR_NOMEM, "out of memory");

    t->byte_level = 1;
    t->pt[0] =
        (pt_step){.kind = PT_BYTELEVEL, .use_regex = 1, .add_prefix_space = f.add_prefix_space};
    t->n_pt = 1;

    /* added tokens, in the order transformers adds them */
    if (f.cfg) {
        json_t *dec = json_object_get(f.cfg, "added_tokens_decoder");
        if (dec && !json_is_null(dec)) {
            AW_GOTO_IF(!json_is_object(dec), AW_ERR_TOKENIZER,
                       "%s: added_tokens_decoder is not an object", cfg_path);
            /* by id */
            size_t n = json_object_size(dec), k = 0;
            long long *ids = calloc(n ? n : 1, sizeof *ids);
            json_t **vals = calloc(n ? n : 1, sizeof *vals);
            if (!ids || !vals) {
                free(ids);
                free(vals);
                AW_GOTO_IF(1, AW_ERR_NOMEM, "out of memory");
            }
            const char *key;
            json_t *val;
            json_object_foreach(dec, key, val)
            {
                char *end;
                errno = 0;
                long long id = strtoll(key, &end, 10);
                if (*key == '\0' || *end != '\0' || errno || id < 0) {
                    free(ids);
                    free(vals);
                    AW_GOTO_IF(1, AW_ERR_TOKENIZER,
                               "%s: added_tokens_decoder key \"%s\" is not an id", cfg_path, key);
                }
                size_t j = k++;
                while (j > 0 && ids[j - 1] > id) {
                    ids[j] = ids[j - 1];
                    vals[j] = vals[j - 1];
                    j--;
                }
                ids[j] = id;
                vals[j] = val;
            }
            for (size_t i = 0; i < k && st == AW_OK; i++) {
                tok_spec s;
                st = tok_spec_parse(vals[i], &s, 1, cfg_path, "added_tokens_decoder entry");
                if (st == AW_OK) st = added_add(t, &s);
            }
            free(ids);
            free(vals);
            if (st != AW_OK) goto fail;
        }
    }
    {
        char *ap = aw_path_join(dir, "added_tokens.json");
        AW_GOTO_IF(!ap, AW_ERR_NOMEM, "out of memory");
        struct stat sb;
        if (stat(ap, &sb) == 0) {
            st = read_json_file(ap, TK_MAX_CONFIG, 0, &atj);
            if (st == AW_OK && !json_is_object(atj))
                st = AW_FAIL(AW_ERR_TOKENIZER, "%s: not a JSON object of token -> id", ap);
            const char *key;
            size_t klen;
            json_t *val;
            if (st == AW_OK) {
                json_object_keylen_foreach(atj, key, klen, val)
                {
                    if (!json_is_integer(val)) {
                        st = AW_FAIL(AW_ERR_TOKENIZER, "%s: the id of \"%s\" is not an integer", ap,
                                     key);
                        break;
                    }
                    tok_spec s = {.content = key, .len = klen, .normalized = 1};
                    st = added_add(t, &s);
                    if (st != AW_OK) break;
                }
            }
        }
        free(ap);
        if (st != AW_OK) goto fail;
    }
    /* GPT2Tokenizer's defaults where the folder says nothing */
    static const char eot[] = "<|endoftext|>";
    json_t *def = json_string(eot);
    AW_GOTO_IF(!def, AW_ERR_NOMEM, "out of memory");
    int has_eot = vocab_get(t, eot, sizeof eot - 1) >= 0;
    if (!f.bos && has_eot) f.bos = def;
    if (!f.eos && has_eot) f.eos = def;
    if (!f.unk && has_eot) f.unk = def;
    const json_t *named[7] = {f.bos, f.eos, f.unk, f.sep, f.pad, f.cls, f.mask};
    for (int i = 0; i < 7 && st == AW_OK; i++)
        st = add_cfg_token(t, named[i], cfg_path, "special token");
    if (st == AW_OK && f.extra && json_is_array(f.extra)) {
        size_t i;
        json_t *v;
        json_array_foreach(f.extra, i, v)
        {
            st = add_cfg_token(t, v, cfg_path, "additional_special_tokens entry");
            if (st != AW_OK) break;
        }
    }
    if (st == AW_OK) st = finish_model(t);
    if (st == AW_OK) {
        bos_from_cfg(t, &f);
        st = template_from_flags(t, &f, cfg_path);
    }
    json_decref(def);
    if (st != AW_OK) goto fail;

    {
        char bos[96] = "no BOS";
        if (t->n_pre)
            snprintf(bos, sizeof bos, "BOS id %u added", t->pre_ids[0]);
        else if (t->bos >= 0)
            snprintf(bos, sizeof bos, "BOS id %lld not added", (long long)t->bos);
        snprintf(t->desc, sizeof t->desc,
                 "byte-level BPE, %zu tokens, %zu merges (vocab.json + merges.txt), %s", t->n_vocab,
                 t->n_merges, bos);
    }
    st = AW_OK;
fail:
    json_decref(vj);
    json_decref(atj);
    free(mbuf);
    free(cfg_path);
    folder_cfg_free(&f);
    return st;
}

/* ---- loading: tokenizer.json ---------------------------------------------------- */

static const char RE_GPT2_SRC[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char RE_CL100K_SRC[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char RE_QWEN2_SRC[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static const char *json_type_name(const json_t *o)
{
    json_t *ty = json_is_object(o) ? json_object_get(o, "type") : NULL;
    return json_is_string(ty) ? json_string_value(ty) : NULL;
}

static aw_status parse_normalizer(aw_tokenizer *t, const json_t *n, const char *path)
{
    if (!n || json_is_null(n)) return AW_OK;
    const char *ty = json_type_name(n);
    AW_RETURN_IF(!ty, AW_ERR_TOKENIZER, "%s: normalizer has no type", path);
    if (strcmp(ty, "Sequence") == 0) {
        json_t *list = json_object_get(n, "normalizers");
        AW_RETURN_IF(!json_is_array(list), AW_ERR_TOKENIZER,
                     "%s: normalizer Sequence without a normalizers list", path);
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v) AW_TRY(parse_normalizer(t, v, path));
        return AW_OK;
    }
    AW_RETURN_IF(t->n_norm == TK_MAX_NORM, AW_ERR_TOKENIZER, "%s: more than %d normalizers", path,
                 TK_MAX_NORM);
    norm_step *ns = &t->norm[t->n_norm];
    const char *a, *b;
    size_t alen, blen;
    if (strcmp(ty, "Prepend") == 0) {
        AW_TRY(json_str_field(n, "prepend", &a, &alen, path, "normalizer Prepend"));
        AW_RETURN_IF(!a, AW_ERR_TOKENIZER, "%s: normalizer Prepend without a prepend string", path);
        ns->kind = NORM_PREPEND;
        ns->a = dup_bytes(a, alen);
        ns->alen = alen;
        AW_RETURN_IF(!ns->a, AW_ERR_NOMEM, "out of memory");
        t->n_norm++;
        return AW_OK;
    }
    if (strcmp(ty, "Replace") == 0) {
        json_t *pat = json_object_get(n, "pattern");
        json_t *str = json_is_object(pat) ? json_object_get(pat, "String") : NULL;
        AW_RETURN_IF(!json_is_string(str), AW_ERR_TOKENIZER,
                     "%s: normalizer Replace with a pattern other than a plain String is not "
                     "supported",
                     path);
        AW_TRY(json_str_field(n, "content", &b, &blen, path, "normalizer Replace"));
        AW_RETURN_IF(!b, AW_ERR_TOKENIZER, "%s: normalizer Replace without content", path);
        alen = json_string_length(str);
        AW_RETURN_IF(alen == 0, AW_ERR_TOKENIZER, "%s: normalizer Replace of an empty string",
                     path);
        ns->kind = NORM_REPLACE;
        ns->a = dup_bytes(json_string_value(str), alen);
        ns->alen = alen;
        ns->b = dup_bytes(b, blen);
        ns->blen = blen;
        t->n_norm++;
        AW_RETURN_IF(!ns->a || !ns->b, AW_ERR_NOMEM, "out of memory");
        return AW_OK;
    }
    return AW_FAIL(AW_ERR_TOKENIZER,
                   "%s: normalizer %s is not supported (only Prepend, Replace and Sequence)", path,
                   ty);
}

static aw_status parse_pretok(aw_tokenizer *t, const json_t *p, const char *path)
{
    if (!p || json_is_null(p)) return AW_OK;
    const char *ty = json_type_name(p);
    AW_RETURN_IF(!ty, AW_ERR_TOKENIZER, "%s: pre_tokenizer has no type", path);
    if (strcmp(ty, "Sequence") == 0) {
        json_t *list = json_object_get(p, "pretokenizers");
        AW_RETURN_IF(!json_is_array(list), AW_ERR_TOKENIZER,
                     "%s: pre_tokenizer Sequence without a pretokenizers list", path);
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v) AW_TRY(parse_pretok(t, v, path));
        return AW_OK;
    }
    AW_RETURN_IF(t->n_pt == TK_MAX_PT, AW_ERR_TOKENIZER, "%s: more than %d pre-tokenizers", path,
                 TK_MAX_PT);
    AW_RETURN_IF(t->n_pt && t->pt[t->n_pt - 1].kind == PT_BYTELEVEL, AW_ERR_TOKENIZER,
                 "%s: pre_tokenizer %s after ByteLevel is not supported", path, ty);
    pt_step *s = &t->pt[t->n_pt];
    memset(s, 0, sizeof *s);
    if (strcmp(ty, "ByteLevel") == 0) {
        s->kind = PT_BYTELEVEL;
        s->use_regex = 1;
        AW_TRY(json_bool_field(p, "add_prefix_space", &s->add_prefix_space, path, "ByteLevel"));
        AW_TRY(json_bool_field(p, "use_regex", &s->use_regex, path, "ByteLevel"));
        for (size_t i = 0; i < t->n_pt; i++)
            AW_RETURN_IF(t->pt[i].kind == PT_METASPACE, AW_ERR_TOKENIZER,
                         "%s: pre_tokenizer ByteLevel after Metaspace is not supported", path);
        t->byte_level = 1;
        t->n_pt++;
        return AW_OK;
    }
    if (strcmp(ty, "Split") == 0) {
        json_t *pat = json_object_get(p, "pattern");
        json_t *re = json_is_object(pat) ? json_object_get(pat, "Regex") : NULL;
        const char *beh = NULL;
        size_t bl;
        int invert = 0;
        AW_TRY(json_str_field(p, "behavior", &beh, &bl, path, "Split"));
        AW_TRY(json_bool_field(p, "invert", &invert, path, "Split"));
        AW_RETURN_IF(!json_is_string(re), AW_ERR_TOKENIZER,
                     "%s: pre_tokenizer Split on a plain string is not supported (only the GPT-2, "
                     "cl100k/LLaMA-3 and Qwen2 regexes)",
                     path);
        AW_RETURN_IF(!beh || strcmp(beh, "Isolated") != 0 || invert, AW_ERR_TOKENIZER,
                     "%s: pre_tokenizer Split with behavior %s%s is not supported (only Isolated)",
                     path, beh ? beh : "(none)", invert ? ", inverted" : "");
        const char *src = json_string_value(re);
        if (strcmp(src, RE_GPT2_SRC) == 0)
            s->re = RE_GPT2;
        else if (strcmp(src, RE_CL100K_SRC) == 0)
            s->re = RE_CL100K;
        else if (strcmp(src, RE_QWEN2_SRC) == 0)
            s->re = RE_QWEN2;
        else
            return AW_FAIL(
                AW_ERR_TOKENIZER,
                "%s: pre_tokenizer Split with regex \"%.80s\" is not supported (only the "
                "GPT-2, cl100k/LLaMA-3 and Qwen2 patterns)",
                path, src);
        s->kind = PT_SPLIT;
        t->n_pt++;
        return AW_OK;
    }
    if (strcmp(ty, "Metaspace") == 0) {
        const char *rep;
        size_t rl;
        AW_TRY(json_str_field(p, "replacement", &rep, &rl, path, "Metaspace"));
        AW_RETURN_IF(!rep || rl == 0 || rl > 4 || aw_utf8_len((uint8_t)rep[0]) != rl,
                     AW_ERR_TOKENIZER, "%s: Metaspace replacement is not one character", path);
        s->kind = PT_METASPACE;
        memcpy(s->rep, rep, rl);
        s->rep_len = rl;
        s->split = 1;
        AW_TRY(json_bool_field(p, "split", &s->split, path, "Metaspace"));
        const char *sch;
        size_t sl;
        AW_TRY(json_str_field(p, "prepend_scheme", &sch, &sl, path, "Metaspace"));
        if (sch) {
            if (strcmp(sch, "always") == 0)
                s->scheme = PREPEND_ALWAYS;
            else if (strcmp(sch, "first") == 0)
                s->scheme = PREPEND_FIRST;
            else if (strcmp(sch, "never") == 0)
                s->scheme = PREPEND_NEVER;
            else
                return AW_FAIL(AW_ERR_TOKENIZER, "%s: Metaspace prepend_scheme \"%s\" is unknown",
                               path, sch);
        } else {
            int aps = 1;
            AW_TRY(json_bool_field(p, "add_prefix_space", &aps, path, "Metaspace"));
            s->scheme = aps ? PREPEND_ALWAYS : PREPEND_NEVER;
        }
        t->n_pt++;
        return AW_OK;
    }
    return AW_FAIL(AW_ERR_TOKENIZER,
                   "%s: pre_tokenizer %s is not supported (only ByteLevel, Metaspace, Split with a "
                   "known regex, Sequence)",
                   path, ty);
}

/* One processor's BOS/EOS: ids before and after the sequence. */
static aw_status parse_post(aw_tokenizer *t, const json_t *p, const char *path, uint32_t *pre,
                            size_t *npre, uint32_t *post, size_t *npost)
{
    if (!p || json_is_null(p)) return AW_OK;
    const char *ty = json_type_name(p);
    AW_RETURN_IF(!ty, AW_ERR_TOKENIZER, "%s: post_processor has no type", path);
    if (strcmp(ty, "ByteLevel") == 0) return AW_OK;
    if (strcmp(ty, "Sequence") == 0) {
        json_t *list = json_object_get(p, "processors");
        AW_RETURN_IF(!json_is_array(list), AW_ERR_TOKENIZER,
                     "%s: post_processor Sequence without a processors list", path);
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v)
        {
            /* a later processor wraps what the earlier ones produced */
            uint32_t a[TK_MAX_SPECIAL], b[TK_MAX_SPECIAL];
            size_t na = 0, nb = 0;
            AW_TRY(parse_post(t, v, path, a, &na, b, &nb));
            AW_RETURN_IF(*npre + na > TK_MAX_SPECIAL || *npost + nb > TK_MAX_SPECIAL,
                         AW_ERR_TOKENIZER, "%s: post_processor adds too many tokens", path);
            memmove(pre + na, pre, *npre * sizeof *pre);
            memcpy(pre, a, na * sizeof *pre);
            *npre += na;
            memcpy(post + *npost, b, nb * sizeof *post);
            *npost += nb;
        }
        return AW_OK;
    }
    if (strcmp(ty, "RobertaProcessing") == 0 || strcmp(ty, "BertProcessing") == 0) {
        json_t *cls = json_object_get(p, "cls"), *sep = json_object_get(p, "sep");
        json_t *ci = json_is_array(cls) ? json_array_get(cls, 1) : NULL;
        json_t *si = json_is_array(sep) ? json_array_get(sep, 1) : NULL;
        AW_RETURN_IF(!json_is_integer(ci) || !json_is_integer(si) || json_integer_value(ci) < 0 ||
                         json_integer_value(si) < 0 || json_integer_value(ci) > TK_MAX_ID ||
                         json_integer_value(si) > TK_MAX_ID,
                     AW_ERR_TOKENIZER, "%s: post_processor %s without valid cls/sep ids", path, ty);
        pre[(*npre)++] = (uint32_t)json_integer_value(ci);
        post[(*npost)++] = (uint32_t)json_integer_value(si);
        return AW_OK;
    }
    AW_RETURN_IF(strcmp(ty, "TemplateProcessing") != 0, AW_ERR_TOKENIZER,
                 "%s: post_processor %s is not supported", path, ty);
    json_t *single = json_object_get(p, "single");
    json_t *specials = json_object_get(p, "special_tokens");
    AW_RETURN_IF(!json_is_array(single), AW_ERR_TOKENIZER,
                 "%s: TemplateProcessing without a single template", path);
    int seen_a = 0;
    size_t i;
    json_t *piece;
    json_array_foreach(single, i, piece)
    {
        json_t *seq = json_object_get(piece, "Sequence");
        json_t *sp = json_object_get(piece, "SpecialToken");
        if (seq) {
            json_t *id = json_object_get(seq, "id");
            AW_RETURN_IF(!json_is_string(id) || strcmp(json_string_value(id), "A") != 0 || seen_a,
                         AW_ERR_TOKENIZER, "%s: TemplateProcessing single template is not one $A",
                         path);
            seen_a = 1;
            continue;
        }
        json_t *name = sp ? json_object_get(sp, "id") : NULL;
        AW_RETURN_IF(!json_is_string(name), AW_ERR_TOKENIZER,
                     "%s: TemplateProcessing piece is neither Sequence nor SpecialToken", path);
        json_t *def =
            json_is_object(specials) ? json_object_get(specials, json_string_value(name)) : NULL;
        json_t *ids = def ? json_object_get(def, "ids") : NULL;
        AW_RETURN_IF(!json_is_array(ids), AW_ERR_TOKENIZER,
                     "%s: TemplateProcessing special token \"%s\" has no ids", path,
                     json_string_value(name));
        size_t j;
        json_t *idv;
        json_array_foreach(ids, j, idv)
        {
            AW_RETURN_IF(!json_is_integer(idv) || json_integer_value(idv) < 0 ||
                             json_integer_value(idv) > TK_MAX_ID,
                         AW_ERR_TOKENIZER, "%s: TemplateProcessing special token \"%s\": bad id",
                         path, json_string_value(name));
            size_t *cnt = seen_a ? npost : npre;
            AW_RETURN_IF(*cnt == TK_MAX_SPECIAL, AW_ERR_TOKENIZER,
                         "%s: TemplateProcessing adds too many tokens", path);
            (seen_a ? post : pre)[(*cnt)++] = (uint32_t)json_integer_value(idv);
        }
    }
    AW_RETURN_IF(!seen_a, AW_ERR_TOKENIZER, "%s: TemplateProcessing single template has no $A",
                 path);
    return AW_OK;
}

static aw_status parse_model(aw_tokenizer *t, const json_t *m, const char *path)
{
    AW_RETURN_IF(!json_is_object(m), AW_ERR_TOKENIZER, "%s: no model object", path);
    const char *ty = json_type_name(m);
    if (!ty && json_object_get(m, "merges")) ty = "BPE";
    AW_RETURN_IF(!ty, AW_ERR_TOKENIZER, "%s: model has no type", path);
    AW_RETURN_IF(strcmp(ty, "BPE") != 0, AW_ERR_TOKENIZER,
                 "%s: model type %s is not supported (only BPE)", path, ty);
    json_t *dropout = json_object_get(m, "dropout");
    AW_RETURN_IF(dropout && !json_is_null(dropout) &&
                     !(json_is_number(dropout) && json_number_value(dropout) == 0.0),
                 AW_ERR_TOKENIZER, "%s: BPE dropout is not supported (it is random)", path);
    const char *s;
    size_t n;
    AW_TRY(json_str_field(m, "continuing_subword_prefix", &s, &n, path, "model"));
    AW_RETURN_IF(n > TK_MAX_AFFIX, AW_ERR_TOKENIZER, "%s: continuing_subword_prefix too long",
                 path);
    if (s && n) {
        t->prefix = dup_bytes(s, n);
        t->prefix_len = n;
        AW_RETURN_IF(!t->prefix, AW_ERR_NOMEM, "out of memory");
    }
    AW_TRY(json_str_field(m, "end_of_word_suffix", &s, &n, path, "model"));
    AW_RETURN_IF(n > TK_MAX_AFFIX, AW_ERR_TOKENIZER, "%s: end_of_word_suffix too long", path);
    if (s && n) {
        t->suffix = dup_bytes(s, n);
        t->suffix_len = n;
        AW_RETURN_IF(!t->suffix, AW_ERR_NOMEM, "out of memory");
    }
    AW_TRY(json_bool_field(m, "fuse_unk", &t->fuse_unk, path, "model"));
    AW_TRY(json_bool_field(m, "byte_fallback", &t->byte_fallback, path, "model"));
    AW_TRY(json_bool_field(m, "ignore_merges", &t->ignore_merges, path, "model"));

    json_t *vocab = json_object_get(m, "vocab");
    AW_RETURN_IF(!vocab, AW_ERR_TOKENIZER, "%s: model has no vocab", path);
    AW_TRY(load_vocab_json(t, vocab, path));

    AW_TRY(json_str_field(m, "unk_token", &s, &n, path, "model"));
    if (s) {
        t->unk_id = vocab_get(t, s, n);
        AW_RETURN_IF(t->unk_id < 0, AW_ERR_TOKENIZER,
                     "%s: unk_token \"%s\" is not in the vocabulary", path, s);
    }

    json_t *merges = json_object_get(m, "merges");
    AW_RETURN_IF(merges && !json_is_array(merges), AW_ERR_TOKENIZER,
                 "%s: model.merges is not a list", path);
    size_t nm = merges ? json_array_size(merges) : 0;
    AW_TRY(merges_alloc(t, nm));
    uint32_t rank = 0;
    int kind = 0; /* 1: "a b" strings, 2: ["a", "b"] pairs; one list is one kind */
    for (size_t i = 0; i < nm; i++) {
        json_t *e = json_array_get(merges, i);
        char where[64];
        snprintf(where, sizeof where, "merges[%zu]", i);
        const char *a, *b;
        size_t alen, blen;
        if (json_is_string(e)) {
            AW_RETURN_IF(kind == 2, AW_ERR_TOKENIZER, "%s: %s: strings and pairs mixed", path,
                         where);
            kind = 1;
            const char *l = json_string_value(e);
            size_t ln = json_string_length(e);
            if (ln >= 8 && memcmp(l, "#version", 8) == 0) continue;
            const char *sp = memchr(l, ' ', ln);
            AW_RETURN_IF(!sp || memchr(sp + 1, ' ', ln - (size_t)(sp + 1 - l)), AW_ERR_TOKENIZER,
                         "%s: %s \"%.60s\" is not two symbols separated by one space", path, where,
                         l);
            a = l;
            alen = (size_t)(sp - l);
            b = sp + 1;
            blen = ln - alen - 1;
        } else {
            AW_RETURN_IF(kind == 1, AW_ERR_TOKENIZER, "%s: %s: strings and pairs mixed", path,
                         where);
            kind = 2;
            json_t *x = json_is_array(e) && json_array_size(e) == 2 ? json_array_get(e, 0) : NULL;
            json_t *y = x ? json_array_get(e, 1) : NULL;
            AW_RETURN_IF(!json_is_string(x) || !json_is_string(y), AW_ERR_TOKENIZER,
                         "%s: %s is neither \"a b\" nor [\"a\", \"b\"]", path, where);
            a = json_string_value(x);
            alen = json_string_length(x);
            b = json_string_value(y);
            blen = json_string_length(y);
        }
        AW_TRY(merge_add(t, a, alen, b, blen, rank, where));
        rank++;
    }
    return AW_OK;
}

static aw_status open_tokenizer_json(aw_tokenizer *t, const char *buf, size_t len, const char *path,
                                     const folder_cfg *f, const char *cfg_path)
{
    json_t *root = NULL;
    AW_TRY(json_load(path, buf, len, 0, &root));
    aw_status st = AW_OK;
    AW_GOTO_IF(!json_is_object(root), AW_ERR_TOKENIZER, "%s: not a JSON object", path);
    AW_CHECK(parse_model(t, json_object_get(root, "model"), path));
    AW_CHECK(parse_normalizer(t, json_object_get(root, "normalizer"), path));
    AW_CHECK(parse_pretok(t, json_object_get(root, "pre_tokenizer"), path));
    /* added tokens, in file order, ids as AddedVocabulary assigns them */
    json_t *added = json_object_get(root, "added_tokens");
    if (added && !json_is_null(added)) {
        AW_GOTO_IF(!json_is_array(added), AW_ERR_TOKENIZER, "%s: added_tokens is not a list", path);
        size_t i;
        json_t *v;
        json_array_foreach(added, i, v)
        {
            tok_spec s;
            char ctx[48];
            snprintf(ctx, sizeof ctx, "added_tokens[%zu]", i);
            AW_CHECK(tok_spec_parse(v, &s, 0, path, ctx));
            AW_GOTO_IF(!json_is_object(v), AW_ERR_TOKENIZER, "%s: %s is not an object", path, ctx);
            AW_CHECK(added_add(t, &s));
        }
    }
    AW_CHECK(finish_model(t));
    AW_CHECK(parse_post(t, json_object_get(root, "post_processor"), path, t->pre_ids, &t->n_pre,
                        t->post_ids, &t->n_post));
    for (size_t i = 0; i < t->n_pre; i++)
        if (t->pre_ids[i] > t->max_id) t->max_id = t->pre_ids[i];
    for (size_t i = 0; i < t->n_post; i++)
        if (t->post_ids[i] > t->max_id) t->max_id = t->post_ids[i];
    if (t->n_pre) t->bos = t->pre_ids[0];
    if (f) {
        bos_from_cfg(t, f);
        /* an explicit add_bos_token / add_eos_token rebuilds the template
         * from bos/eos (transformers' update_post_processor) */
        if (f->add_bos >= 0 || f->add_eos >= 0) AW_CHECK(template_from_flags(t, f, cfg_path));
    }
    {
        const char *kind = t->byte_level      ? "byte-level BPE"
                           : t->byte_fallback ? "BPE with byte fallback"
                                              : "BPE";
        char bos[96] = "no BOS";
        if (t->n_pre)
            snprintf(bos, sizeof bos, "BOS id %u added", t->pre_ids[0]);
        else if (t->bos >= 0)
            snprintf(bos, sizeof bos, "BOS id %lld not added", (long long)t->bos);
        snprintf(t->desc, sizeof t->desc,
                 "%s, %zu tokens + %zu added, %zu merges (tokenizer.json), %s", kind, t->n_vocab,
                 t->n_added, t->n_merges, bos);
    }
fail:
    json_decref(root);
    return st;
}

aw_status aw_tokenizer_open_json(const char *json, size_t len, const char *label,
                                 aw_tokenizer **out)
{
    AW_RETURN_IF(!out, AW_ERR_ARG, "aw_tokenizer_open_json: NULL argument");
    *out = NULL;
    AW_RETURN_IF(!json || !label, AW_ERR_ARG, "aw_tokenizer_open_json: NULL argument");
    aw_tokenizer *t = tk_new(label);
    AW_RETURN_IF(!t, AW_ERR_NOMEM, "%s: out of memory", label);
    aw_status st = open_tokenizer_json(t, json, len, label, NULL, NULL);
    if (st != AW_OK) {
        aw_tokenizer_close(t);
        return st;
    }
    *out = t;
    return AW_OK;
}

static int file_exists(const char *dir, const char *name, char **path)
{
    *path = aw_path_join(dir, name);
    struct stat sb;
    return *path && stat(*path, &sb) == 0;
}

aw_status aw_tokenizer_open(const char *model_dir, aw_tokenizer **out)
{
    AW_RETURN_IF(!out, AW_ERR_ARG, "aw_tokenizer_open: NULL argument");
    *out = NULL;
    AW_RETURN_IF(!model_dir, AW_ERR_ARG, "aw_tokenizer_open: NULL argument");
    struct stat sb;
    AW_RETURN_IF(stat(model_dir, &sb) != 0 || !S_ISDIR(sb.st_mode), AW_ERR_TOKENIZER,
                 "%s: not a folder: %s", model_dir, strerror(errno ? errno : ENOTDIR));
    char *tj = NULL, *vj = NULL, *mt = NULL, *sp = NULL, *cfg_path = NULL;
    char *buf = NULL;
    aw_status st = AW_OK;
    folder_cfg f = {0};
    aw_tokenizer *t = tk_new(model_dir);
    AW_GOTO_IF(!t, AW_ERR_NOMEM, "%s: out of memory", model_dir);
    int has_tj = file_exists(model_dir, "tokenizer.json", &tj);
    int has_vj = file_exists(model_dir, "vocab.json", &vj);
    int has_mt = file_exists(model_dir, "merges.txt", &mt);
    int has_sp = file_exists(model_dir, "tokenizer.model", &sp);
    AW_GOTO_IF(!tj || !vj || !mt || !sp, AW_ERR_NOMEM, "out of memory");
    if (has_tj) {
        size_t len;
        AW_CHECK(read_folder_cfg(model_dir, &f));
        cfg_path = aw_path_join(model_dir, "tokenizer_config.json");
        AW_GOTO_IF(!cfg_path, AW_ERR_NOMEM, "out of memory");
        st = aw_read_file(tj, TK_MAX_FILE, &buf, &len);
        AW_GOTO_IF(st != AW_OK, AW_ERR_TOKENIZER, "%s", aw_err_message());
        free(t->label);
        t->label = dup_bytes(tj, strlen(tj));
        AW_GOTO_IF(!t->label, AW_ERR_NOMEM, "out of memory");
        AW_CHECK(open_tokenizer_json(t, buf, len, tj, &f, cfg_path));
    } else if (has_vj && has_mt) {
        AW_CHECK(open_vocab_merges(t, model_dir, vj, mt));
    } else if (has_vj) {
        AW_GOTO_IF(1, AW_ERR_TOKENIZER, "%s: missing: vocab.json needs merges.txt beside it", mt);
    } else if (has_mt) {
        AW_GOTO_IF(1, AW_ERR_TOKENIZER, "%s: missing: merges.txt needs vocab.json beside it", vj);
    } else if (has_sp) {
        AW_GOTO_IF(1, AW_ERR_TOKENIZER,
                   "%s: a SentencePiece model alone is not supported: this program reads "
                   "tokenizer.json or vocab.json + merges.txt (save the tokenizer with "
                   "transformers to get tokenizer.json)",
                   sp);
    } else {
        AW_GOTO_IF(1, AW_ERR_TOKENIZER,
                   "no tokenizer files in %s: expected tokenizer.json or vocab.json + merges.txt",
                   model_dir);
    }
    *out = t;
    t = NULL;
fail:
    aw_tokenizer_close(t);
    folder_cfg_free(&f);
    free(buf);
    free(tj);
    free(vj);
    free(mt);
    free(sp);
    free(cfg_path);
    return st;
}
