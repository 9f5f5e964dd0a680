/* aw_model_files.c - the tensors of a model folder, one file or sharded.
 * See aw_model_files.h. */
#include "aw_model_files.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aw_fs.h"

typedef struct {
    const aw_st_tensor *t;
    const aw_st_file *f;
} mf_entry;

struct aw_model_files {
    char *dir;
    size_t n_shards;
    aw_st_file **shards;
    size_t n;
    mf_entry *entries; /* all tensors, sorted by name */
    uint64_t total_bytes;
};

/* Index files of real checkpoints are a few hundred KB; this only bounds
 * what a corrupt one can make us allocate. */
#define MF_INDEX_MAX ((size_t)64 << 20)

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const mf_entry *)a)->t->name, ((const mf_entry *)b)->t->name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* 1 if path exists, 0 if it does not, AW_ERR_IO (as -1) for anything else
 * (a permission problem must not read as "missing"). */
static int exists(const char *path, aw_status *st)
{
    struct stat sb;
    if (stat(path, &sb) == 0) return 1;
    if (errno == ENOENT || errno == ENOTDIR) return 0;
    *st = AW_FAIL(AW_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    return -1;
}

void aw_mf_close(aw_model_files *mf)
{
    if (!mf) return;
    for (size_t i = 0; i < mf->n_shards; i++) aw_st_close(mf->shards[i]);
    free(mf->shards);
    free(mf->entries);
    free(mf->dir);
    free(mf);
}

/* Collect every tensor of every shard into mf->entries, sorted by name;
 * a name held by two shards is AW_ERR_ST_DUPLICATE. */
static aw_status collect(aw_model_files *mf)
{
    size_t n = 0;
    for (size_t s = 0; s < mf->n_shards; s++) n += aw_st_count(mf->shards[s]);
    mf->entries = malloc((n ? n : 1) * sizeof *mf->entries);
    AW_RETURN_IF(!mf->entries, AW_ERR_NOMEM, "%s: out of memory for %zu tensors", mf->dir, n);
    for (size_t s = 0; s < mf->n_shards; s++) {
        for (size_t i = 0; i < aw_st_count(mf->shards[s]); i++) {
            const aw_st_tensor *t = aw_st_at(mf->shards[s], i);
            mf->entries[mf->n++] = (mf_entry){.t = t, .f = mf->shards[s]};
            mf->total_bytes += t->end - t->begin;
        }
    }
    qsort(mf->entries, mf->n, sizeof *mf->entries, cmp_entry);
    for (size_t i = 1; i < mf->n; i++) {
        const mf_entry *a = &mf->entries[i - 1], *b = &mf->entries[i];
        AW_RETURN_IF(strcmp(a->t->name, b->t->name) == 0, AW_ERR_ST_DUPLICATE,
                     "%s: tensor '%s' is in two shards: %s and %s", mf->dir, b->t->name,
                     aw_st_label(a->f), aw_st_label(b->f));
    }
    return AW_OK;
}

/* Index of shard name in the sorted names, for the weight_map checks. */
static size_t shard_of(const char *const *names, size_t n, const char *name)
{
    const char *const *p = bsearch(&name, names, n, sizeof *names, cmp_str);
    return p ? (size_t)(p - names) : n;
}

static aw_status open_sharded(aw_model_files *mf, const char *index_path)
{
    aw_status st = AW_OK;
    char *text = NULL;
    size_t len = 0;
    json_t *root = NULL;
    const char **names = NULL;
    char *shard_path = NULL;

    AW_CHECK(aw_read_file(index_path, MF_INDEX_MAX, &text, &len));
    json_error_t jerr;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    AW_GOTO_IF(!root, AW_ERR_INDEX, "%s: not valid JSON: %s (line %d, column %d)", index_path,
               jerr.text, jerr.line, jerr.column);
    AW_GOTO_IF(!json_is_object(root), AW_ERR_INDEX, "%s: not a JSON object", index_path);
    json_t *wm = json_object_get(root, "weight_map");
    AW_GOTO_IF(!wm || !json_is_object(wm), AW_ERR_INDEX, "%s: no \"weight_map\" object",
               index_path);
    size_t n_map = json_object_size(wm);
    AW_GOTO_IF(n_map == 0, AW_ERR_INDEX, "%s: \"weight_map\" is empty", index_path);

    /* distinct shard names, sorted: each shard is opened once */
    names = malloc(n_map * sizeof *names);
    AW_GOTO_IF(!names, AW_ERR_NOMEM, "%s: out of memory", index_path);
    size_t k = 0;
    const char *tensor;
    json_t *v;
    json_object_foreach(wm, tensor, v)
    {
        AW_GOTO_IF(!json_is_string(v), AW_ERR_INDEX,
                   "%s: weight_map: tensor '%s' is not mapped to a file name", index_path, tensor);
        const char *shard = json_string_value(v);
        AW_GOTO_IF(!aw_path_is_contained(shard), AW_ERR_INDEX_PATH,
                   "%s: weight_map: tensor '%s': shard '%s' is not a file inside the model folder",
                   index_path, tensor, shard);
        names[k++] = shard;
    }
    qsort(names, k, sizeof *names, cmp_str);
    size_t n_shards = 0;
    for (size_t i = 0; i < k; i++)
        if (n_shards == 0 || strcmp(names[n_shards - 1], names[i]) != 0) names[n_shards++] = names[i];

    mf->shards = calloc(n_shards, sizeof *mf->shards);
    AW_GOTO_IF(!mf->shards, AW_ERR_NOMEM, "%s: out of memory", index_path);
    for (size_t s = 0; s < n_shards; s++) {
        shard_path = aw_path_join(mf->dir, names[s]);
        AW_GOTO_IF(!shard_path, AW_ERR_NOMEM, "%s: out of memory", index_path);
        int e = exists(shard_path, &st);
        if (e < 0) goto fail;
        AW_GOTO_IF(e == 0, AW_ERR_MISSING_SHARD, "%s: shard %s listed in %s is missing",
                   shard_path, names[s], index_path);
        AW_CHECK(aw_st_open(shard_path, &mf->shards[s]));
        mf->n_shards++;
        free(shard_path);
        shard_path = NULL;
    }

    /* the index and the shards must agree both ways */
    json_object_foreach(wm, tensor, v)
    {
        size_t s = shard_of(names, n_shards, json_string_value(v));
        AW_GOTO_IF(!aw_st_find(mf->shards[s], tensor), AW_ERR_INDEX,
                   "%s: tensor '%s' is mapped to shard %s, which does not hold it", index_path,
                   tensor, names[s]);
    }
    for (size_t s = 0; s < n_shards; s++) {
        for (size_t i = 0; i < aw_st_count(mf->shards[s]); i++) {
            const char *name = aw_st_at(mf->shards[s], i)->name;
            json_t *where = json_object_get(wm, name);
            AW_GOTO_IF(!where, AW_ERR_INDEX,
                       "%s: shard %s holds tensor '%s', which the index does not list",
                       index_path, names[s], name);
            /* mapped elsewhere: that shard holds it too (checked above) */
            AW_GOTO_IF(strcmp(json_string_value(where), names[s]) != 0, AW_ERR_ST_DUPLICATE,
                       "%s: tensor '%s' is in two shards: %s and %s", index_path, name,
                       names[s], json_string_value(where));
        }
    }
    AW_CHECK(collect(mf));
fail: /* success falls through: the same buffers are released */
    free(shard_path);
    free(names);
    json_decref(root);
    free(text);
    return st;
}

/* Weights in formats this program does not read, looked for only when a
 * folder has no safetensors, so that the error says what is there and how to
 * convert it. Only names are looked at: the pickle formats (.bin, .pt, .pth,
 * .ckpt) are never opened, since unpickling runs code chosen by whoever wrote
 * the file. Checked in this order; the first kind a name matches counts. */
typedef enum {
    MF_HF_BIN,       /* transformers' PyTorch pickles, one or sharded */
    MF_HF_BIN_INDEX, /* their index */
    MF_METASEQ,      /* metaseq model-parallel parts (reshard-model_part-0.pt ...) */
    MF_TORCH_OTHER,  /* any other pickle: fairseq/metaseq consolidated, Lightning ... */
    MF_TF,           /* TensorFlow (HDF5) */
    MF_FLAX,         /* Flax (msgpack) */
    MF_FOREIGN_COUNT
} mf_foreign;

static const char *const mf_foreign_globs[MF_FOREIGN_COUNT][3] = {
    [MF_HF_BIN] = {"pytorch_model*.bin", NULL, NULL},
    [MF_HF_BIN_INDEX] = {"pytorch_model*.bin.index.json", NULL, NULL},
    [MF_METASEQ] = {"*model_part-*.pt", NULL, NULL},
    [MF_TORCH_OTHER] = {"*.pt", "*.pth", "*.ckpt"},
    [MF_TF] = {"tf_model*.h5", NULL, NULL},
    [MF_FLAX] = {"flax_model*.msgpack", NULL, NULL},
};

typedef struct {
    size_t count[MF_FOREIGN_COUNT];
    char first[MF_FOREIGN_COUNT][256]; /* smallest name of each kind */
} mf_found;

static void find_foreign(const char *dir, mf_found *f)
{
    memset(f, 0, sizeof *f);
    DIR *d = opendir(dir);
    if (!d) return; /* a missing or unreadable folder: the plain message */
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof f->first[0]) continue;
        for (int k = 0; k < MF_FOREIGN_COUNT; k++) {
            int hit = 0;
            for (int g = 0; g < 3 && mf_foreign_globs[k][g]; g++)
                hit |= fnmatch(mf_foreign_globs[k][g], e->d_name, 0) == 0;
            if (!hit) continue;
            if (f->count[k]++ == 0 || strcmp(e->d_name, f->first[k]) < 0)
                snprintf(f->first[k], sizeof f->first[k], "%s", e->d_name);
            break;
        }
    }
    closedir(d);
}

/* "pytorch_model-00001-of-00002.bin (+1 more), tf_model.h5" */
static void describe_foreign(const mf_found *f, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int k = 0; k < MF_FOREIGN_COUNT && n < cap; k++) {
        if (!f->count[k]) continue;
        int w = f->count[k] > 1
                    ? snprintf(buf + n, cap - n, "%s%s (+%zu more)", n ? ", " : "", f->first[k],
                               f->count[k] - 1)
                    : snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", f->first[k]);
        if (w < 0) break;
        n += (size_t)w;
    }
}

/* The error for a folder with neither safetensors file: what is there
 * instead, and the command that converts it (one line; the suggested
 * output folder is "<dir>-safetensors"). */
static aw_status no_weights_error(const char *dir)
{
    mf_found f;
    find_foreign(dir, &f);
    char found[400];
    describe_foreign(&f, found, sizeof found);
    int dl = (int)strlen(dir); /* dir without trailing slashes, for "<dir>-safetensors" */
    while (dl > 1 && dir[dl - 1] == '/') dl--;
#define MF_NONE "%s: no safetensors weights (" AW_SINGLE_NAME " or its index); found %s; "
#define MF_PICKLE "pickles, which aweq-dist never loads (unpickling can run code); "
#define MF_OPT_SCRIPT                                                                               \
    "python3 src/transformers/models/opt/convert_opt_original_pytorch_checkpoint_to_pytorch.py "    \
    "--fairseq_path %.*s/%s --pytorch_dump_folder_path OUT --hf_config facebook/opt-SIZE (in the "  \
    "transformers source tree, not in its pip wheels), then save OUT (OPTModel names) again with "  \
    "AutoModelForCausalLM.from_pretrained('OUT').save_pretrained('OUT-safetensors')"
#define MF_HF_CMD(load_arg)                                                                         \
    "python3 -c \"from transformers import AutoModelForCausalLM as M, AutoTokenizer as T; "        \
    "d='%.*s'; o=d+'-safetensors'; M.from_pretrained(d, " load_arg ").save_pretrained(o, "         \
    "safe_serialization=True); T.from_pretrained(d).save_pretrained(o)\""
    if (f.count[MF_HF_BIN] || f.count[MF_HF_BIN_INDEX])
        return AW_FAIL(AW_ERR_UNSUPPORTED,
                       MF_NONE "the PyTorch weights are " MF_PICKLE "convert them once to "
                               "%.*s-safetensors (weights, config, tokenizer) with: "
                               MF_HF_CMD("torch_dtype='auto'"),
                       dir, found, dl, dir, dl, dir);
    if (f.count[MF_METASEQ])
        return AW_FAIL(AW_ERR_UNSUPPORTED,
                       MF_NONE "metaseq model-parallel parts are " MF_PICKLE
                               "consolidate them with metaseq (python3 -m "
                               "metaseq.scripts.convert_to_singleton %.*s: one GPU per part, "
                               "writes restored.pt), then " MF_OPT_SCRIPT,
                       dir, found, dl, dir, dl, dir, "restored.pt");
    if (f.count[MF_TORCH_OTHER])
        return AW_FAIL(AW_ERR_UNSUPPORTED,
                       MF_NONE "PyTorch checkpoints are " MF_PICKLE "if it is a consolidated "
                               "fairseq/metaseq OPT checkpoint: " MF_OPT_SCRIPT "; otherwise save "
                               "the model with save_pretrained(..., safe_serialization=True) where "
                               "it was made",
                       dir, found, dl, dir, f.first[MF_TORCH_OTHER]);
    if (f.count[MF_TF] || f.count[MF_FLAX]) {
        int tf = f.count[MF_TF] != 0;
        const char *fw = tf ? "TensorFlow" : "Flax", *arg = tf ? "from_tf" : "from_flax";
        return AW_FAIL(AW_ERR_UNSUPPORTED,
                       MF_NONE "aweq-dist does not read %s weights; convert them once to "
                               "%.*s-safetensors with transformers 4.x and %s installed "
                               "(transformers 5 ignores %s): " MF_HF_CMD("%s=True"),
                       dir, found, fw, dl, dir, fw, arg, dl, dir, arg);
    }
#undef MF_NONE
#undef MF_PICKLE
#undef MF_OPT_SCRIPT
#undef MF_HF_CMD
    return AW_FAIL(AW_ERR_MISSING_SHARD, "%s: no model weights: neither %s nor %s found", dir,
                   AW_INDEX_NAME, AW_SINGLE_NAME);
}

aw_status aw_mf_open(const char *dir, aw_model_files **out)
{
    *out = NULL;
    AW_RETURN_IF(!dir || !*dir, AW_ERR_ARG, "aw_mf_open: no folder");
    aw_status st = AW_OK;
    char *index_path = NULL, *single_path = NULL;
    aw_model_files *mf = calloc(1, sizeof *mf);
    AW_GOTO_IF(!mf, AW_ERR_NOMEM, "%s: out of memory", dir);
    mf->dir = strdup(dir);
    index_path = aw_path_join(dir, AW_INDEX_NAME);
    single_path = aw_path_join(dir, AW_SINGLE_NAME);
    AW_GOTO_IF(!mf->dir || !index_path || !single_path, AW_ERR_NOMEM, "%s: out of memory", dir);

    int e = exists(index_path, &st);
    if (e < 0) goto fail;
    if (e) {
        AW_CHECK(open_sharded(mf, index_path));
    } else {
        e = exists(single_path, &st);
        if (e < 0) goto fail;
        if (e == 0) {
            st = no_weights_error(dir);
            goto fail;
        }
        mf->shards = calloc(1, sizeof *mf->shards);
        AW_GOTO_IF(!mf->shards, AW_ERR_NOMEM, "%s: out of memory", dir);
        AW_CHECK(aw_st_open(single_path, &mf->shards[0]));
        mf->n_shards = 1;
        AW_CHECK(collect(mf));
    }
    free(index_path);
    free(single_path);
    *out = mf;
    return AW_OK;
fail:
    free(index_path);
    free(single_path);
    aw_mf_close(mf);
    return st;
}

const char *aw_mf_dir(const aw_model_files *mf) { return mf->dir; }
size_t aw_mf_count(const aw_model_files *mf) { return mf->n; }
size_t aw_mf_shard_count(const aw_model_files *mf) { return mf->n_shards; }
uint64_t aw_mf_total_bytes(const aw_model_files *mf) { return mf->total_bytes; }

const aw_st_tensor *aw_mf_at(const aw_model_files *mf, size_t i, const aw_st_file **file)
{
    if (i >= mf->n) {
        if (file) *file = NULL;
        return NULL;
    }
    if (file) *file = mf->entries[i].f;
    return mf->entries[i].t;
}

aw_status aw_mf_find(const aw_model_files *mf, const char *name, const aw_st_file **file,
                     const aw_st_tensor **t)
{
    size_t lo = 0, hi = mf->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, mf->entries[mid].t->name);
        if (c == 0) {
            if (file) *file = mf->entries[mid].f;
            if (t) *t = mf->entries[mid].t;
            return AW_OK;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (file) *file = NULL;
    if (t) *t = NULL;
    return AW_FAIL(AW_ERR_MISSING_TENSOR, "%s: tensor '%s' is not in the checkpoint", mf->dir,
                   name);
}

aw_status aw_mf_write_index(const char *dir, const char *const *tensor_names,
                            const char *const *shard_names, size_t n, uint64_t total_size)
{
    AW_RETURN_IF(total_size > (uint64_t)LLONG_MAX, AW_ERR_ARG,
                 "%s: index total_size %" PRIu64 " does not fit a JSON integer", dir, total_size);
    aw_status st = AW_OK;
    char *path = NULL, *text = NULL;
    json_t *root = json_object(), *meta = json_object(), *wm = json_object();
    AW_GOTO_IF(!root || !meta || !wm, AW_ERR_NOMEM, "%s: out of memory", dir);
    for (size_t i = 0; i < n; i++) {
        AW_GOTO_IF(!tensor_names[i] || !shard_names[i], AW_ERR_ARG, "%s: index entry %zu is NULL",
                   dir, i);
        AW_GOTO_IF(!aw_path_is_contained(shard_names[i]), AW_ERR_ARG,
                   "%s: tensor '%s': shard '%s' is not a file inside the folder", dir,
                   tensor_names[i], shard_names[i]);
        AW_GOTO_IF(json_object_get(wm, tensor_names[i]), AW_ERR_ARG,
                   "%s: tensor '%s' given twice for the index", dir, tensor_names[i]);
        AW_GOTO_IF(json_object_set_new(wm, tensor_names[i], json_string(shard_names[i])) != 0,
                   AW_ERR_ARG, "%s: tensor '%s' or shard '%s' is not valid UTF-8", dir,
                   tensor_names[i], shard_names[i]);
    }
    AW_GOTO_IF(json_object_set_new(meta, "total_size", json_integer((json_int_t)total_size)) != 0,
               AW_ERR_NOMEM, "%s: out of memory", dir);
    AW_GOTO_IF(json_object_set(root, "metadata", meta) != 0 ||
                   json_object_set(root, "weight_map", wm) != 0,
               AW_ERR_NOMEM, "%s: out of memory", dir);
    /* transformers writes json.dumps(index, indent=2, sort_keys=True) + "\n"
     * (ASCII only): the same flags give the same bytes */
    text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    AW_GOTO_IF(!text, AW_ERR_NOMEM, "%s: out of memory", dir);
    size_t len = strlen(text);
    char *grown = realloc(text, len + 2);
    AW_GOTO_IF(!grown, AW_ERR_NOMEM, "%s: out of memory", dir);
    text = grown;
    text[len++] = '\n';
    text[len] = '\0';
    path = aw_path_join(dir, AW_INDEX_NAME);
    AW_GOTO_IF(!path, AW_ERR_NOMEM, "%s: out of memory", dir);
    AW_CHECK(aw_write_file_atomic(path, text, len));
fail:
    free(path);
    free(text);
    json_decref(wm);
    json_decref(meta);
    json_decref(root);
    return st;
}

/* Export format: "AWMF1\0", u64 dir length, dir, u64 shard count, then per
 * shard: u64 path length, path, u64 header length, header bytes. */
static int buf_put(uint8_t **p, size_t *len, size_t *cap, const void *src, size_t n)
{
    if (*len + n > *cap) {
        size_t nc = (*cap ? *cap * 2 : 4096);
        while (nc < *len + n) nc *= 2;
        uint8_t *q = realloc(*p, nc);
        if (!q) return -1;
        *p = q;
        *cap = nc;
    }
    memcpy(*p + *len, src, n);
    *len += n;
    return 0;
}

static int buf_put_blob(uint8_t **p, size_t *len, size_t *cap, const void *src, size_t n)
{
    uint64_t v = n;
    return buf_put(p, len, cap, &v, sizeof v) || buf_put(p, len, cap, src, n);
}

aw_status aw_mf_export(const aw_model_files *mf, uint8_t **out, size_t *out_len)
{
    uint8_t *p = NULL;
    size_t len = 0, cap = 0;
    int bad = buf_put(&p, &len, &cap, "AWMF1", 6) || buf_put_blob(&p, &len, &cap, mf->dir, strlen(mf->dir));
    uint64_t ns = mf->n_shards;
    bad = bad || buf_put(&p, &len, &cap, &ns, sizeof ns);
    for (size_t s = 0; s < mf->n_shards && !bad; s++) {
        uint8_t *hdr = NULL;
        size_t hl = 0;
        aw_status st = aw_st_header_bytes(mf->shards[s], &hdr, &hl);
        if (st != AW_OK) {
            free(p);
            return st;
        }
        const char *path = aw_st_label(mf->shards[s]);
        bad = buf_put_blob(&p, &len, &cap, path, strlen(path)) || buf_put_blob(&p, &len, &cap, hdr, hl);
        free(hdr);
    }
    if (bad) {
        free(p);
        return AW_FAIL(AW_ERR_NOMEM, "%s: out of memory exporting the tensor table", mf->dir);
    }
    *out = p;
    *out_len = len;
    return AW_OK;
}

/* Read a length-prefixed blob at *off; NULL if it does not fit. */
static const uint8_t *buf_get_blob(const uint8_t *b, size_t len, size_t *off, size_t *n)
{
    uint64_t v;
    if (len - *off < sizeof v) return NULL;
    memcpy(&v, b + *off, sizeof v);
    *off += sizeof v;
    if (v > len - *off) return NULL;
    const uint8_t *r = b + *off;
    *off += (size_t)v;
    *n = (size_t)v;
    return r;
}

aw_status aw_mf_import(const void *buf, size_t len, aw_model_files **out)
{
    *out = NULL;
    const uint8_t *b = buf;
    size_t off = 6, n = 0;
    AW_RETURN_IF(len < 6 || memcmp(b, "AWMF1", 6) != 0, AW_ERR_ARG, "tensor table: bad magic");
    aw_model_files *mf = calloc(1, sizeof *mf);
    AW_RETURN_IF(!mf, AW_ERR_NOMEM, "out of memory");
    aw_status st = AW_OK;
    const uint8_t *dir = buf_get_blob(b, len, &off, &n);
    uint64_t ns = 0;
    AW_GOTO_IF(!dir || len - off < sizeof ns, AW_ERR_ARG, "tensor table: truncated");
    mf->dir = strndup((const char *)dir, n);
    memcpy(&ns, b + off, sizeof ns);
    off += sizeof ns;
    AW_GOTO_IF(!mf->dir || ns > len, AW_ERR_ARG, "tensor table: bad shard count");
    mf->shards = calloc(ns ? ns : 1, sizeof *mf->shards);
    AW_GOTO_IF(!mf->shards, AW_ERR_NOMEM, "out of memory");
    for (uint64_t s = 0; s < ns; s++) {
        size_t pl = 0, hl = 0;
        const uint8_t *path = buf_get_blob(b, len, &off, &pl);
        const uint8_t *hdr = path ? buf_get_blob(b, len, &off, &hl) : NULL;
        AW_GOTO_IF(!hdr, AW_ERR_ARG, "tensor table: truncated");
        char *p = strndup((const char *)path, pl);
        AW_GOTO_IF(!p, AW_ERR_NOMEM, "out of memory");
        st = aw_st_open_with_header(p, hdr, hl, &mf->shards[s]);
        free(p);
        if (st != AW_OK) goto fail;
        mf->n_shards++;
    }
    AW_CHECK(collect(mf));
    *out = mf;
    return AW_OK;
fail:
    aw_mf_close(mf);
    return st;
}
