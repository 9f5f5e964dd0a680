/* aw_safetensors.c - safetensors reader (untrusted header, pread on demand)
 * and deterministic writer. See aw_safetensors.h for the format. */
#include "aw_safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aw_fs.h"

/* Tensor bytes are handed out as they lie on disk (little-endian). */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "aw_safetensors.c assumes a little-endian host"
#endif

typedef struct {
    const char *key;
    const char *value;
} st_kv;

/* Everything of one file lives in one allocation: this struct, then the
 * tensors (sorted by name), the metadata (sorted by key), then the strings. */
struct aw_st_file {
    int fd;               /* -1 when reading from memory */
    const uint8_t *mem;   /* the whole stream when fd < 0 */
    uint64_t data_offset; /* 8 + N */
    uint64_t data_size;   /* file size - 8 - N */
    const char *label;
    size_t n_tensors;
    aw_st_tensor *tensors;
    size_t n_meta;
    st_kv *meta;
};

static const char st_meta_key[] = "__metadata__";

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static void store_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static size_t align_up(size_t n) { return (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1); }

/* "[2, 3, 4]" for messages; truncated with "..." if buf is too small. */
static const char *shape_str(const int64_t *shape, int ndim, char *buf, size_t cap)
{
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
    return buf;
}

/* Product of dims with the zero case first: [2^40, 2^40, 0] holds 0 elements
 * and must not be refused as an overflow. Returns 0 on overflow. */
static int checked_numel(const int64_t *shape, int ndim, uint64_t *numel)
{
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0) {
            *numel = 0;
            return 1;
        }
    }
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++)
        if (__builtin_mul_overflow(n, (uint64_t)shape[i], &n)) return 0;
    *numel = n;
    return 1;
}

uint64_t aw_st_numel(const aw_st_tensor *t)
{
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (uint64_t)t->shape[i];
    return n;
}

/* ---------------------------------------------------------------- reader -- */

/* A non-negative JSON integer, or 0 (the caller names the field). */
static int json_uint(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v)) return 0;
    json_int_t x = json_integer_value(v);
    if (x < 0) return 0;
    *out = (uint64_t)x;
    return 1;
}

/* Validate one header entry into t (name set by the caller). Offsets are
 * checked against each other later, once all entries are known. */
static aw_status parse_entry(const char *label, const char *name, json_t *v, aw_st_tensor *t)
{
    AW_RETURN_IF(!json_is_object(v), AW_ERR_ST_JSON, "%s: tensor '%s': entry is not an object",
                 label, name);
    const char *key;
    json_t *field;
    json_object_foreach(v, key, field)
    {
        AW_RETURN_IF(strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"),
                     AW_ERR_ST_JSON, "%s: tensor '%s': unexpected key '%s'", label, name, key);
    }
    json_t *jd = json_object_get(v, "dtype");
    json_t *js = json_object_get(v, "shape");
    json_t *jo = json_object_get(v, "data_offsets");
    AW_RETURN_IF(!jd || !js || !jo, AW_ERR_ST_JSON,
                 "%s: tensor '%s': entry needs dtype, shape and data_offsets (missing %s)", label,
                 name, !jd ? "dtype" : !js ? "shape" : "data_offsets");

    AW_RETURN_IF(!json_is_string(jd), AW_ERR_ST_JSON, "%s: tensor '%s': dtype is not a string",
                 label, name);
    AW_RETURN_IF(aw_dtype_from_name(json_string_value(jd), &t->dtype) != AW_OK, AW_ERR_ST_DTYPE,
                 "%s: tensor '%s': unknown dtype '%.32s'", label, name, json_string_value(jd));

    AW_RETURN_IF(!json_is_array(js), AW_ERR_ST_JSON, "%s: tensor '%s': shape is not an array",
                 label, name);
    size_t ndim = json_array_size(js);
    AW_RETURN_IF(ndim > AW_ST_MAX_DIMS, AW_ERR_ST_SHAPE,
                 "%s: tensor '%s': shape has %zu dimensions, at most %d are supported", label, name,
                 ndim, AW_ST_MAX_DIMS);
    t->ndim = (int)ndim;
    for (size_t i = 0; i < ndim; i++) {
        json_t *d = json_array_get(js, i);
        AW_RETURN_IF(!json_is_integer(d), AW_ERR_ST_JSON,
                     "%s: tensor '%s': shape[%zu] is not an integer", label, name, i);
        AW_RETURN_IF(json_integer_value(d) < 0, AW_ERR_ST_SHAPE,
                     "%s: tensor '%s': shape[%zu] is negative (%lld)", label, name, i,
                     (long long)json_integer_value(d));
        t->shape[i] = (int64_t)json_integer_value(d);
    }

    AW_RETURN_IF(!json_is_array(jo) || json_array_size(jo) != 2, AW_ERR_ST_JSON,
                 "%s: tensor '%s': data_offsets is not a [begin, end] pair", label, name);
    json_t *jb = json_array_get(jo, 0), *je = json_array_get(jo, 1);
    AW_RETURN_IF(!json_is_integer(jb) || !json_is_integer(je), AW_ERR_ST_JSON,
                 "%s: tensor '%s': data_offsets are not integers", label, name);
    AW_RETURN_IF(!json_uint(jb, &t->begin) || !json_uint(je, &t->end), AW_ERR_ST_OFFSETS,
                 "%s: tensor '%s': data_offsets [%lld, %lld] are negative", label, name,
                 (long long)json_integer_value(jb), (long long)json_integer_value(je));
    AW_RETURN_IF(t->begin > t->end, AW_ERR_ST_OFFSETS,
                 "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] are reversed", label,
                 name, t->begin, t->end);

    char sbuf[128];
    uint64_t numel, nbytes;
    AW_RETURN_IF(!checked_numel(t->shape, t->ndim, &numel) ||
                     __builtin_mul_overflow(numel, (uint64_t)aw_dtype_size(t->dtype), &nbytes),
                 AW_ERR_ST_SHAPE, "%s: tensor '%s': shape %s overflows", label, name,
                 shape_str(t->shape, t->ndim, sbuf, sizeof sbuf));
    AW_RETURN_IF(nbytes != t->end - t->begin, AW_ERR_ST_SHAPE,
                 "%s: tensor '%s': shape %s of %s is %" PRIu64 " bytes but data_offsets [%" PRIu64
                 ", %" PRIu64 "] hold %" PRIu64,
                 label, name, shape_str(t->shape, t->ndim, sbuf, sizeof sbuf),
                 aw_dtype_name(t->dtype), nbytes, t->begin, t->end, t->end - t->begin);
    return AW_OK;
}

static int cmp_by_offsets(const void *a, const void *b)
{
    const aw_st_tensor *x = *(const aw_st_tensor *const *)a, *y = *(const aw_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_by_name(const void *a, const void *b)
{
    return strcmp(((const aw_st_tensor *)a)->name, ((const aw_st_tensor *)b)->name);
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const st_kv *)a)->key, ((const st_kv *)b)->key);
}

/* The tensors must tile [0, data_size) exactly. Which code a failure gets:
 *  - a consistent tiling that runs past the end of the file: the file was
 *    cut short, AW_ERR_ST_TRUNCATED;
 *  - a consistent tiling that stops before the end: trailing bytes no tensor
 *    owns, AW_ERR_ST_OFFSETS (the offsets do not cover the data section);
 *  - an inconsistent tiling with a tensor past the end: AW_ERR_ST_OFFSETS
 *    naming it (an offset out of range, not a short file);
 *  - otherwise the overlap or gap itself: AW_ERR_ST_OVERLAP naming both. */
static aw_status check_tiling(const char *label, aw_st_tensor *tensors, size_t n,
                              uint64_t data_size)
{
    if (n == 0) {
        AW_RETURN_IF(data_size != 0, AW_ERR_ST_OFFSETS,
                     "%s: %" PRIu64 " trailing bytes after a header that lists no tensors", label,
                     data_size);
        return AW_OK;
    }
    const aw_st_tensor **order = malloc(n * sizeof *order);
    AW_RETURN_IF(!order, AW_ERR_NOMEM, "%s: out of memory", label);
    for (size_t i = 0; i < n; i++) order[i] = &tensors[i];
    qsort(order, n, sizeof *order, cmp_by_offsets);

    size_t bad = n; /* first tensor (in offset order) that does not continue the tiling */
    uint64_t covered = 0;
    for (size_t i = 0; i < n; i++) {
        if (order[i]->begin != covered) {
            bad = i;
            break;
        }
        covered = order[i]->end;
    }
    const aw_st_tensor *past = NULL;
    for (size_t i = 0; i < n && !past; i++)
        if (order[i]->end > data_size) past = order[i];

    aw_status st = AW_OK;
    if (bad == n && past) {
        st = AW_FAIL(AW_ERR_ST_TRUNCATED,
                     "%s: file truncated: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                     "] end beyond the data section (%" PRIu64 " bytes)",
                     label, past->name, past->begin, past->end, data_size);
    } else if (bad == n && covered < data_size) {
        st = AW_FAIL(AW_ERR_ST_OFFSETS,
                     "%s: %" PRIu64 " trailing bytes: the last tensor '%s' ends at %" PRIu64
                     " but the data section is %" PRIu64 " bytes",
                     label, data_size - covered, order[n - 1]->name, covered, data_size);
    } else if (bad < n && past) {
        st = AW_FAIL(AW_ERR_ST_OFFSETS,
                     "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                     "] end beyond the data section (%" PRIu64 " bytes)",
                     label, past->name, past->begin, past->end, data_size);
    } else if (bad < n && bad == 0) {
        st = AW_FAIL(AW_ERR_ST_OVERLAP,
                     "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                     "] leave a gap: bytes [0, %" PRIu64 ") of the data section belong to no "
                     "tensor",
                     label, order[0]->name, order[0]->begin, order[0]->end, order[0]->begin);
    } else if (bad < n) {
        const aw_st_tensor *a = order[bad - 1], *b = order[bad];
        st = AW_FAIL(AW_ERR_ST_OVERLAP,
                     "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] %s tensor '%s' [%" PRIu64
                     ", %" PRIu64 "]",
                     label, b->name, b->begin, b->end,
                     b->begin < a->end ? "overlap" : "leave a gap after", a->name, a->begin,
                     a->end);
    }
    free(order);
    return st;
}

/* Copy len bytes and a NUL to *pool, advance it; the pool was sized by the
 * first pass over the header. */
static char *pool_copy(char **pool, const char *src, size_t len)
{
    char *dst = *pool;
    memcpy(dst, src, len);
    dst[len] = '\0';
    *pool += len + 1;
    return dst;
}

/* Parse and validate the header text; on success *out owns nothing of hdr. */
static aw_status st_build(const char *label, const char *hdr, size_t hdr_len, uint64_t file_size,
                          aw_st_file **out)
{
    json_error_t jerr;
    json_t *root = json_loadb(hdr, hdr_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        /* the whole header is one JSON object: anything after it but spaces
         * (the padding) is an error too, hence no JSON_DISABLE_EOF_CHECK */
        if (json_error_code(&jerr) == json_error_duplicate_key || strstr(jerr.text, "duplicate")) {
            /* jansson says "duplicate object key near '"name"'": keep the name */
            const char *near = strstr(jerr.text, "near '");
            const char *end = near ? strrchr(jerr.text, '\'') : NULL;
            if (near && end > near + 6)
                return AW_FAIL(AW_ERR_ST_DUPLICATE,
                               "%s: duplicate key %.*s in the header (line %d, column %d)", label,
                               (int)(end - (near + 6)), near + 6, jerr.line, jerr.column);
            return AW_FAIL(AW_ERR_ST_DUPLICATE, "%s: header: %s (line %d, column %d)", label,
                           jerr.text, jerr.line, jerr.column);
        }
        return AW_FAIL(AW_ERR_ST_JSON, "%s: header is not valid JSON: %s (line %d, column %d)",
                       label, jerr.text, jerr.line, jerr.column);
    }
    aw_status st = AW_OK;
    aw_st_file *f = NULL;
    AW_GOTO_IF(!json_is_object(root), AW_ERR_ST_JSON, "%s: header is not a JSON object", label);

    /* first pass: sizes, and the shape of __metadata__ */
    size_t n_tensors = 0, n_meta = 0, strings = strlen(label) + 1;
    json_t *jmeta = NULL;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, st_meta_key) == 0) {
            jmeta = val;
            continue;
        }
        n_tensors++;
        strings += strlen(key) + 1;
    }
    if (jmeta) {
        AW_GOTO_IF(!json_is_object(jmeta), AW_ERR_ST_JSON, "%s: __metadata__ is not an object",
                   label);
        json_object_foreach(jmeta, key, val)
        {
            AW_GOTO_IF(!json_is_string(val), AW_ERR_ST_JSON,
                       "%s: __metadata__ '%s' is not a string", label, key);
            n_meta++;
            strings += strlen(key) + 1 + json_string_length(val) + 1;
        }
    }

    size_t off_tensors = align_up(sizeof *f);
    size_t off_meta = align_up(off_tensors + n_tensors * sizeof(aw_st_tensor));
    size_t off_strings = align_up(off_meta + n_meta * sizeof(st_kv));
    uint8_t *block = calloc(1, off_strings + strings);
    AW_GOTO_IF(!block, AW_ERR_NOMEM, "%s: out of memory for %zu tensors", label, n_tensors);
    f = (aw_st_file *)block;
    f->fd = -1;
    f->tensors = (aw_st_tensor *)(block + off_tensors);
    f->meta = (st_kv *)(block + off_meta);
    char *pool = (char *)(block + off_strings);
    f->label = pool_copy(&pool, label, strlen(label));

    json_object_foreach(root, key, val)
    {
        if (strcmp(key, st_meta_key) == 0) continue;
        aw_st_tensor *t = &f->tensors[f->n_tensors++];
        t->name = pool_copy(&pool, key, strlen(key));
        AW_CHECK(parse_entry(label, key, val, t));
    }
    if (jmeta) {
        json_object_foreach(jmeta, key, val)
        {
            st_kv *kv = &f->meta[f->n_meta++];
            kv->key = pool_copy(&pool, key, strlen(key));
            kv->value = pool_copy(&pool, json_string_value(val), json_string_length(val));
        }
    }

    f->data_offset = 8 + (uint64_t)hdr_len;
    f->data_size = file_size - f->data_offset;
    AW_CHECK(check_tiling(label, f->tensors, f->n_tensors, f->data_size));

    qsort(f->tensors, f->n_tensors, sizeof *f->tensors, cmp_by_name);
    qsort(f->meta, f->n_meta, sizeof *f->meta, cmp_kv);
    json_decref(root);
    *out = f;
    return AW_OK;
fail:
    free(f);
    json_decref(root);
    return st;
}

/* Checks on the 8-byte prefix shared by the file and memory readers.
 * *hdr_len is written on every path (0 on failure): the callers' error
 * returns go through aw_err_set(), which the compiler cannot see returns
 * non-zero, so an output left unset on failure reads as maybe-uninitialized. */
static aw_status check_prefix(const char *label, const uint8_t prefix[8], uint64_t file_size,
                              uint64_t *hdr_len)
{
    *hdr_len = 0;
    uint64_t n = load_le64(prefix);
    AW_RETURN_IF(n > AW_ST_HEADER_CAP, AW_ERR_ST_HEADER_SIZE,
                 "%s: header length %" PRIu64 " exceeds the cap of %u bytes", label, n,
                 AW_ST_HEADER_CAP);
    AW_RETURN_IF(n > file_size - 8, AW_ERR_ST_HEADER_SIZE,
                 "%s: header length %" PRIu64 " runs past the end of the file (%" PRIu64
                 " bytes)",
                 label, n, file_size);
    *hdr_len = n;
    return AW_OK;
}

aw_status aw_st_open(const char *path, aw_st_file **out)
{
    *out = NULL;
    AW_RETURN_IF(!path, AW_ERR_ARG, "aw_st_open: no path");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    AW_RETURN_IF(fd < 0, AW_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    aw_status st = AW_OK;
    char *hdr = NULL;
    struct stat sb;
    AW_GOTO_IF(fstat(fd, &sb) != 0, AW_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    AW_GOTO_IF(!S_ISREG(sb.st_mode), AW_ERR_IO, "%s: not a regular file", path);
    uint64_t size = (uint64_t)sb.st_size;
    AW_GOTO_IF(size < 8, AW_ERR_ST_TRUNCATED,
               "%s: file truncated: %" PRIu64 " bytes, shorter than the 8-byte header length",
               path, size);
    uint8_t prefix[8];
    AW_CHECK(aw_pread_full(fd, prefix, 8, 0, path));
    uint64_t n;
    AW_CHECK(check_prefix(path, prefix, size, &n));
    hdr = malloc(n ? n : 1);
    AW_GOTO_IF(!hdr, AW_ERR_NOMEM, "%s: out of memory for a %" PRIu64 "-byte header", path, n);
    AW_CHECK(aw_pread_full(fd, hdr, n, 8, path));
    AW_CHECK(st_build(path, hdr, n, size, out));
    (*out)->fd = fd;
    free(hdr);
    return AW_OK;
fail:
    free(hdr);
    close(fd);
    return st;
}

aw_status aw_st_header_bytes(const aw_st_file *f, uint8_t **out, size_t *len)
{
    *out = NULL;
    AW_RETURN_IF(f->fd < 0, AW_ERR_ARG, "%s: not a file", f->label);
    size_t n = (size_t)f->data_offset;
    uint8_t *buf = malloc(n);
    AW_RETURN_IF(!buf, AW_ERR_NOMEM, "%s: out of memory for its header", f->label);
    aw_status st = aw_pread_full(f->fd, buf, n, 0, f->label);
    if (st != AW_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *len = n;
    return AW_OK;
}

aw_status aw_st_open_with_header(const char *path, const void *hdr, size_t hdr_len, aw_st_file **out)
{
    *out = NULL;
    AW_RETURN_IF(hdr_len < 8, AW_ERR_ST_TRUNCATED, "%s: header of %zu bytes", path, hdr_len);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    AW_RETURN_IF(fd < 0, AW_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    aw_status st = AW_OK;
    struct stat sb;
    AW_GOTO_IF(fstat(fd, &sb) != 0, AW_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    uint64_t n;
    AW_CHECK(check_prefix(path, hdr, (uint64_t)sb.st_size, &n));
    AW_GOTO_IF(n + 8 != hdr_len, AW_ERR_ST_HEADER_SIZE, "%s: header is %" PRIu64 " bytes here, %zu where it was read",
               path, n + 8, hdr_len);
    AW_CHECK(st_build(path, (const char *)hdr + 8, (size_t)n, (uint64_t)sb.st_size, out));
    (*out)->fd = fd;
    return AW_OK;
fail:
    close(fd);
    return st;
}

aw_status aw_st_open_mem(const void *buf, size_t len, const char *label, aw_st_file **out)
{
    *out = NULL;
    if (!label) label = "(memory)";
    AW_RETURN_IF(!buf && len, AW_ERR_ARG, "%s: no buffer", label);
    AW_RETURN_IF(len < 8, AW_ERR_ST_TRUNCATED,
                 "%s: file truncated: %zu bytes, shorter than the 8-byte header length", label,
                 len);
    uint64_t n;
    AW_TRY(check_prefix(label, buf, len, &n));
    AW_TRY(st_build(label, (const char *)buf + 8, (size_t)n, len, out));
    (*out)->mem = buf;
    return AW_OK;
}

void aw_st_close(aw_st_file *f)
{
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    free(f);
}

const char *aw_st_label(const aw_st_file *f) { return f->label; }
size_t aw_st_count(const aw_st_file *f) { return f->n_tensors; }
uint64_t aw_st_data_offset(const aw_st_file *f) { return f->data_offset; }

const aw_st_tensor *aw_st_at(const aw_st_file *f, size_t i)
{
    return i < f->n_tensors ? &f->tensors[i] : NULL;
}

const aw_st_tensor *aw_st_find(const aw_st_file *f, const char *name)
{
    size_t lo = 0, hi = f->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->tensors[mid].name);
        if (c == 0) return &f->tensors[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *aw_st_metadata(const aw_st_file *f, const char *key)
{
    st_kv probe = {.key = key};
    const st_kv *kv = f->n_meta ? bsearch(&probe, f->meta, f->n_meta, sizeof *f->meta, cmp_kv) : NULL;
    return kv ? kv->value : NULL;
}

size_t aw_st_metadata_count(const aw_st_file *f) { return f->n_meta; }

void aw_st_metadata_at(const aw_st_file *f, size_t i, const char **key, const char **value)
{
    *key = i < f->n_meta ? f->meta[i].key : NULL;
    *value = i < f->n_meta ? f->meta[i].value : NULL;
}

/* A tensor of another file would read the wrong bytes (or out of range):
 * compare addresses as integers, relational operators on unrelated pointers
 * being undefined. */
static int owns(const aw_st_file *f, const aw_st_tensor *t)
{
    uintptr_t p = (uintptr_t)t, lo = (uintptr_t)f->tensors;
    return t && p >= lo && p < lo + f->n_tensors * sizeof *t &&
           (p - lo) % sizeof *t == 0;
}

/* n bytes at offset off of the data section. */
static aw_status read_data(const aw_st_file *f, uint64_t off, void *dst, size_t n)
{
    if (n == 0) return AW_OK;
    if (f->fd < 0) {
        memcpy(dst, f->mem + f->data_offset + off, n);
        return AW_OK;
    }
    return aw_pread_full(f->fd, dst, n, f->data_offset + off, f->label);
}

aw_status aw_st_read(const aw_st_file *f, const aw_st_tensor *t, void *dst, size_t dst_cap)
{
    AW_RETURN_IF(!owns(f, t), AW_ERR_ARG, "%s: tensor '%s' does not belong to this file", f->label,
                 t ? t->name : "(null)");
    uint64_t n = t->end - t->begin;
    AW_RETURN_IF(n > dst_cap, AW_ERR_ARG,
                 "%s: tensor '%s' is %" PRIu64 " bytes, the destination holds %zu", f->label,
                 t->name, n, dst_cap);
    return read_data(f, t->begin, dst, (size_t)n);
}

aw_status aw_st_read_f32(const aw_st_file *f, const aw_st_tensor *t, float *dst, size_t dst_count)
{
    AW_RETURN_IF(!owns(f, t), AW_ERR_ARG, "%s: tensor '%s' does not belong to this file", f->label,
                 t ? t->name : "(null)");
    AW_RETURN_IF(!aw_dtype_table[t->dtype].is_float, AW_ERR_DTYPE,
                 "%s: tensor '%s' is %s; reading as F32 needs F32, F16, BF16 or F64", f->label,
                 t->name, aw_dtype_name(t->dtype));
    uint64_t numel = aw_st_numel(t);
    AW_RETURN_IF(numel > dst_count, AW_ERR_ARG,
                 "%s: tensor '%s' has %" PRIu64 " elements, the destination holds %zu", f->label,
                 t->name, numel, dst_count);
    if (t->dtype == AW_DT_F32) return read_data(f, t->begin, dst, (size_t)numel * sizeof(float));

    /* convert through a bounded buffer: the source may be larger than dst
     * (F64) and a memory stream may be misaligned for the element type */
    size_t esize = aw_dtype_size(t->dtype);
    size_t chunk = (size_t)1 << 16; /* elements */
    if (chunk > numel) chunk = (size_t)numel;
    if (chunk == 0) return AW_OK;
    void *buf = malloc(chunk * esize);
    AW_RETURN_IF(!buf, AW_ERR_NOMEM, "%s: tensor '%s': out of memory", f->label, t->name);
    aw_status st = AW_OK;
    for (uint64_t i = 0; i < numel && st == AW_OK; i += chunk) {
        size_t k = numel - i < chunk ? (size_t)(numel - i) : chunk;
        st = read_data(f, t->begin + i * esize, buf, k * esize);
        if (st == AW_OK) st = aw_convert_to_f32(t->dtype, buf, dst + i, k);
    }
    free(buf);
    return st;
}

/* ---------------------------------------------------------------- writer -- */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} st_sb;

static void sb_put(st_sb *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(st_sb *b, const char *s) { sb_put(b, s, strlen(s)); }

/* JSON string with the escapes serde_json (the reference writer) uses:
 * short forms for \" \\ \b \f \n \r \t, \u00xx (lowercase) for the other
 * control characters, everything else (UTF-8, DEL) as is. */
static void sb_json_string(st_sb *b, const char *s)
{
    sb_put(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        const char *esc = NULL;
        char ubuf[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c < 0x20) {
                snprintf(ubuf, sizeof ubuf, "\\u%04x", c);
                esc = ubuf;
            }
        }
        if (esc) {
            sb_put(b, run, (size_t)(s - run));
            sb_puts(b, esc);
            run = s + 1;
        }
    }
    sb_put(b, run, (size_t)(s - run));
    sb_put(b, "\"", 1);
}

/* The reader (jansson) refuses invalid UTF-8, so the writer must too or a
 * written file would not read back. */
static int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int n;
        uint32_t cp;
        if (c < 0x80) {
            p++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1fu;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0fu;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07u;
        } else {
            return 0;
        }
        for (int i = 1; i <= n; i++) { /* stops at the NUL: it is no continuation byte */
            if ((p[i] & 0xc0u) != 0x80u) return 0;
            cp = (cp << 6) | (p[i] & 0x3fu);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        p += n + 1;
    }
    return 1;
}

typedef struct {
    const aw_st_entry *e;
    uint64_t begin, nbytes;
} st_slot;

/* Where every tensor goes and the header text, computed once for the three
 * writer entry points. */
typedef struct {
    st_slot *slots;        /* layout order */
    const aw_st_meta **meta; /* key order */
    char *header;          /* padded with spaces to a multiple of 8 */
    size_t header_len;
    uint64_t data_size;
} st_plan;

static int cmp_slot_name(const void *a, const void *b)
{
    return strcmp(((const st_slot *)a)->e->name, ((const st_slot *)b)->e->name);
}

/* The reference writer's order: dtype rank descending (large elements
 * first, so every tensor is aligned to its element size), then name. */
static int cmp_slot_layout(const void *a, const void *b)
{
    const st_slot *x = a, *y = b;
    int rx = aw_dtype_table[x->e->dtype].write_rank, ry = aw_dtype_table[y->e->dtype].write_rank;
    if (rx != ry) return rx > ry ? -1 : 1;
    return strcmp(x->e->name, y->e->name);
}

static int cmp_meta_ptr(const void *a, const void *b)
{
    return strcmp((*(const aw_st_meta *const *)a)->key, (*(const aw_st_meta *const *)b)->key);
}

static void plan_free(st_plan *p)
{
    free(p->slots);
    free(p->header);
    memset(p, 0, sizeof *p);
}

static aw_status check_entry(const aw_st_entry *e, size_t i, uint64_t *nbytes)
{
    AW_RETURN_IF(!e->name || !*e->name, AW_ERR_ARG, "safetensors writer: tensor %zu has no name", i);
    AW_RETURN_IF(strcmp(e->name, st_meta_key) == 0, AW_ERR_ARG,
                 "safetensors writer: '%s' is reserved and cannot name a tensor", st_meta_key);
    AW_RETURN_IF(!utf8_valid(e->name), AW_ERR_ARG,
                 "safetensors writer: tensor %zu: name is not valid UTF-8", i);
    AW_RETURN_IF((unsigned)e->dtype >= AW_DT_COUNT, AW_ERR_ARG,
                 "safetensors writer: tensor '%s': bad dtype %d", e->name, (int)e->dtype);
    AW_RETURN_IF(e->ndim < 0 || e->ndim > AW_ST_MAX_DIMS, AW_ERR_ARG,
                 "safetensors writer: tensor '%s': ndim %d outside 0..%d", e->name, e->ndim,
                 AW_ST_MAX_DIMS);
    for (int d = 0; d < e->ndim; d++)
        AW_RETURN_IF(e->shape[d] < 0, AW_ERR_ARG,
                     "safetensors writer: tensor '%s': shape[%d] is negative (%" PRId64 ")",
                     e->name, d, e->shape[d]);
    uint64_t numel;
    AW_RETURN_IF(!checked_numel(e->shape, e->ndim, &numel) ||
                     __builtin_mul_overflow(numel, (uint64_t)aw_dtype_size(e->dtype), nbytes),
                 AW_ERR_ARG, "safetensors writer: tensor '%s': shape overflows", e->name);
    AW_RETURN_IF(*nbytes && !e->data, AW_ERR_ARG, "safetensors writer: tensor '%s' has no data",
                 e->name);
    return AW_OK;
}

static aw_status plan_build(const aw_st_entry *entries, size_t n, const aw_st_meta *meta,
                            size_t n_meta, st_plan *p)
{
    memset(p, 0, sizeof *p);
    AW_RETURN_IF((n && !entries) || (n_meta && !meta), AW_ERR_ARG,
                 "safetensors writer: NULL entries");
    aw_status st = AW_OK;
    st_sb sb = {0};
    size_t off_meta = align_up(n * sizeof(st_slot));
    uint8_t *block = malloc(off_meta + n_meta * sizeof(const aw_st_meta *) + 1);
    AW_GOTO_IF(!block, AW_ERR_NOMEM, "safetensors writer: out of memory for %zu tensors", n);
    p->slots = (st_slot *)block;
    p->meta = (const aw_st_meta **)(block + off_meta);

    for (size_t i = 0; i < n; i++) {
        p->slots[i].e = &entries[i];
        AW_CHECK(check_entry(&entries[i], i, &p->slots[i].nbytes));
    }
    qsort(p->slots, n, sizeof *p->slots, cmp_slot_name);
    for (size_t i = 1; i < n; i++)
        AW_GOTO_IF(strcmp(p->slots[i - 1].e->name, p->slots[i].e->name) == 0, AW_ERR_ARG,
                   "safetensors writer: tensor '%s' given twice", p->slots[i].e->name);
    qsort(p->slots, n, sizeof *p->slots, cmp_slot_layout);

    for (size_t i = 0; i < n_meta; i++) {
        AW_GOTO_IF(!meta[i].key || !meta[i].value, AW_ERR_ARG,
                   "safetensors writer: metadata entry %zu has no key or value", i);
        AW_GOTO_IF(!utf8_valid(meta[i].key) || !utf8_valid(meta[i].value), AW_ERR_ARG,
                   "safetensors writer: metadata '%s' is not valid UTF-8", meta[i].key);
        p->meta[i] = &meta[i];
    }
    qsort(p->meta, n_meta, sizeof *p->meta, cmp_meta_ptr);
    for (size_t i = 1; i < n_meta; i++)
        AW_GOTO_IF(strcmp(p->meta[i - 1]->key, p->meta[i]->key) == 0, AW_ERR_ARG,
                   "safetensors writer: metadata key '%s' given twice", p->meta[i]->key);

    /* compact JSON in layout order, as the reference writer emits it */
    sb_puts(&sb, "{");
    int first = 1;
    if (n_meta) {
        sb_puts(&sb, "\"__metadata__\":{");
        for (size_t i = 0; i < n_meta; i++) {
            if (i) sb_puts(&sb, ",");
            sb_json_string(&sb, p->meta[i]->key);
            sb_puts(&sb, ":");
            sb_json_string(&sb, p->meta[i]->value);
        }
        sb_puts(&sb, "}");
        first = 0;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const aw_st_entry *e = p->slots[i].e;
        char num[64];
        if (!first) sb_puts(&sb, ",");
        first = 0;
        sb_json_string(&sb, e->name);
        sb_puts(&sb, ":{\"dtype\":\"");
        sb_puts(&sb, aw_dtype_name(e->dtype));
        sb_puts(&sb, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            snprintf(num, sizeof num, "%s%" PRId64, d ? "," : "", e->shape[d]);
            sb_puts(&sb, num);
        }
        uint64_t end;
        AW_GOTO_IF(__builtin_add_overflow(off, p->slots[i].nbytes, &end), AW_ERR_ARG,
                   "safetensors writer: total size overflows at tensor '%s'", e->name);
        p->slots[i].begin = off;
        snprintf(num, sizeof num, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, end);
        sb_puts(&sb, num);
        off = end;
    }
    sb_puts(&sb, "}");
    while (sb.len % 8) sb_puts(&sb, " ");
    AW_GOTO_IF(sb.oom, AW_ERR_NOMEM, "safetensors writer: out of memory for the header");
    AW_GOTO_IF(sb.len > AW_ST_HEADER_CAP, AW_ERR_ARG,
               "safetensors writer: header of %zu bytes exceeds the cap of %u", sb.len,
               AW_ST_HEADER_CAP);
    p->header = sb.p;
    p->header_len = sb.len;
    p->data_size = off;
    return AW_OK;
fail:
    free(sb.p);
    plan_free(p);
    return st;
}

aw_status aw_st_serialized_size(const aw_st_entry *entries, size_t n, const aw_st_meta *meta,
                                size_t n_meta, uint64_t *size)
{
    st_plan p;
    AW_TRY(plan_build(entries, n, meta, n_meta, &p));
    *size = 8 + (uint64_t)p.header_len + p.data_size;
    plan_free(&p);
    return AW_OK;
}

aw_status aw_st_serialize(const aw_st_entry *entries, size_t n, const aw_st_meta *meta,
                          size_t n_meta, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    st_plan p;
    AW_TRY(plan_build(entries, n, meta, n_meta, &p));
    uint64_t total = 8 + (uint64_t)p.header_len + p.data_size;
    uint8_t *buf = total <= SIZE_MAX ? malloc((size_t)total) : NULL;
    if (!buf) {
        plan_free(&p);
        return AW_FAIL(AW_ERR_NOMEM, "safetensors writer: out of memory for %" PRIu64 " bytes",
                       total);
    }
    store_le64(buf, p.header_len);
    memcpy(buf + 8, p.header, p.header_len);
    uint8_t *data = buf + 8 + p.header_len;
    for (size_t i = 0; i < n; i++)
        if (p.slots[i].nbytes)
            memcpy(data + p.slots[i].begin, p.slots[i].e->data, (size_t)p.slots[i].nbytes);
    plan_free(&p);
    *out = buf;
    *out_len = (size_t)total;
    return AW_OK;
}

aw_status aw_st_write_file(const char *path, const aw_st_entry *entries, size_t n,
                           const aw_st_meta *meta, size_t n_meta)
{
    st_plan p;
    AW_TRY(plan_build(entries, n, meta, n_meta, &p));
    aw_atomic_file af;
    aw_status st = aw_atomic_open(path, &af);
    if (st != AW_OK) {
        plan_free(&p);
        return st;
    }
    uint8_t prefix[8];
    store_le64(prefix, p.header_len);
    AW_CHECK(aw_atomic_write(&af, prefix, sizeof prefix));
    AW_CHECK(aw_atomic_write(&af, p.header, p.header_len));
    for (size_t i = 0; i < n; i++)
        AW_CHECK(aw_atomic_write(&af, p.slots[i].e->data, (size_t)p.slots[i].nbytes));
    plan_free(&p);
    return aw_atomic_commit(&af);
fail:
    aw_atomic_abort(&af);
    plan_free(&p);
    return st;
}
