/* aw_writer.c - the compressed-tensors checkpoint (see aw_writer.h). */
#include "aw_writer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "aw_fs.h"
#include "aw_safetensors.h"

/* Every regular file of the input folder travels with the checkpoint
 * (tokenizer files, generation_config.json, README.md, LICENSE, ...) except
 * these: weights in any format and their indexes (the quantized safetensors
 * replace them, and a stale fp copy beside them is what some loaders would
 * pick), the files this writer makes itself, and calibration.tokens, which
 * is an input of the run, not part of the model, and not even what the run
 * calibrated on when --calib or --calib-text named other data. Names that
 * start with '.' (.gitattributes, editor and tool files) and sub-folders
 * are left behind too. */
static const char *const not_copied[] = {
    "*.safetensors", "*.index.json", "*.bin", "*.pt", "*.pth", "*.ckpt", "*.h5",
    "*.msgpack", "*.gguf", "*.onnx", "*.onnx_data", "*.ot", "*.tflite", "*.pkl",
    "*.pickle", "config.json", "aweq_report.json", "aweq_run.json", "report.html",
    "calibration.tokens"};

static json_t *quant_args(void)
{
    json_t *a = json_object();
    json_object_set_new(a, "num_bits", json_integer(8));
    json_object_set_new(a, "type", json_string("int"));
    json_object_set_new(a, "symmetric", json_true());
    json_object_set_new(a, "strategy", json_string("tensor"));
    json_object_set_new(a, "dynamic", json_false());
    json_object_set_new(a, "group_size", json_null());
    json_object_set_new(a, "block_structure", json_null());
    json_object_set_new(a, "actorder", json_null());
    json_object_set_new(a, "observer", json_string("minmax"));
    json_object_set_new(a, "observer_kwargs", json_object());
    return a;
}

char *aw_quant_config_json(const aw_method *m)
{
    (void)m;
    json_t *group = json_object();
    json_t *targets = json_array();
    json_array_append_new(targets, json_string("Linear"));
    json_object_set_new(group, "targets", targets);
    json_object_set_new(group, "weights", quant_args());
    json_object_set_new(group, "input_activations", quant_args());
    json_object_set_new(group, "output_activations", json_null());
    json_t *groups = json_object();
    json_object_set_new(groups, "group_0", group);
    json_t *qc = json_object();
    json_object_set_new(qc, "quant_method", json_string("compressed-tensors"));
    json_object_set_new(qc, "format", json_string("int-quantized"));
    json_object_set_new(qc, "quantization_status", json_string("compressed"));
    json_object_set_new(qc, "config_groups", groups);
    json_t *ignore = json_array();
    json_array_append_new(ignore, json_string("lm_head"));
    json_object_set_new(qc, "ignore", ignore);
    json_object_set_new(qc, "kv_cache_scheme", json_null());
    json_object_set_new(qc, "sparsity_config", json_object());
    json_object_set_new(qc, "global_compression_ratio", json_null());
    char *s = json_dumps(qc, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(qc);
    return s;
}

/* Whether the output has biases on the linears: the checkpoint's, or those
 * bias correction adds to a family without them. */
static int writes_bias(const aw_model_config *c, const aw_method *m, int l)
{
    return aw_arch_has_linear_bias(c, l) || m->bias_correction;
}

static size_t block_param_bytes(const aw_model_config *c, const aw_method *m)
{
    size_t n = 2 * AW_NORM_COUNT * (size_t)c->hidden_size; /* norms */
    const aw_arch *a = aw_arch_of(c);
    for (int l = 0; l < a->n_lin; l++) n += (size_t)aw_arch_dim(c, a->lin[l].out); /* biases */
    return n * aw_dtype_size(m->param_dtype);
}

int aw_block_out_tensors(const aw_model_config *c, const aw_method *m)
{
    const aw_arch *a = aw_arch_of(c);
    int n = AW_NORM_COUNT * (aw_arch_has_norm_bias(c) ? 2 : 1);
    for (int l = 0; l < a->n_lin; l++) n += 3 + writes_bias(c, m, l);
    return n;
}

/* The output config: the input's, declaring the biases bias correction adds. */
static aw_model_config out_config(const aw_model_config *c, const aw_method *m)
{
    aw_model_config o = *c;
    if (m->bias_correction) o.attention_bias = o.mlp_bias = 1; /* keys of the families that have them */
    return o;
}

static aw_status block_entries(const aw_model_config *c, int layer, const aw_qblock *q,
                               const aw_method *m, char (*names)[128], uint8_t *scale_buf,
                               uint8_t *param_buf, aw_st_entry *e)
{
    int k = 0, d = c->hidden_size;
    size_t psz = aw_dtype_size(m->param_dtype);
    uint8_t *pp = param_buf;
    /* norms (folded) */
    for (int i = 0; i < 2 * AW_NORM_COUNT; i++) {
        if (i % 2 && !aw_arch_has_norm_bias(c)) continue;
        aw_tensor_ref r = {i % 2 ? AW_T_NORM_B : AW_T_NORM_W, i / 2};
        const float *v = i % 2 ? q->norm_b[i / 2] : q->norm_g[i / 2];
        aw_arch_tensor_name(c, layer, r, names[k], sizeof names[k]);
        AW_TRY(aw_convert_from_f32(m->param_dtype, v, pp, (size_t)d));
        e[k++] = (aw_st_entry){.name = names[k - 1], .dtype = m->param_dtype, .ndim = 1, .shape = {d}, .data = pp};
        pp += (size_t)d * psz;
    }
    for (int l = 0; l < q->n_lin; l++) {
        const aw_qlinear *ln = &q->lin[l];
        /* "<module>" of "<module>.weight": the families' names are far below
         * 96 bytes, so every "<module>.<param>" fits the 128-byte name slots */
        char base[96];
        AW_RETURN_IF(aw_arch_tensor_name(c, layer, (aw_tensor_ref){AW_T_LIN_W, l}, base, sizeof base) < 0,
                     AW_ERR_ARG, "layer %d: tensor name too long", layer);
        base[strlen(base) - strlen(".weight")] = '\0';

        snprintf(names[k], sizeof names[k], "%s.weight", base);
        e[k++] = (aw_st_entry){.name = names[k - 1], .dtype = AW_DT_I8, .ndim = 2,
                               .shape = {ln->out, ln->in}, .data = ln->wq};

        uint8_t *ws = scale_buf + (size_t)(2 * l) * 4, *xs = scale_buf + (size_t)(2 * l + 1) * 4;
        AW_TRY(aw_convert_from_f32(m->scale_dtype, &ln->w_step, ws, 1));
        AW_TRY(aw_convert_from_f32(m->scale_dtype, &ln->x_step, xs, 1));
        snprintf(names[k], sizeof names[k], "%s.weight_scale", base);
        e[k++] = (aw_st_entry){.name = names[k - 1], .dtype = m->scale_dtype, .ndim = 1, .shape = {1}, .data = ws};
        snprintf(names[k], sizeof names[k], "%s.input_scale", base);
        e[k++] = (aw_st_entry){.name = names[k - 1], .dtype = m->scale_dtype, .ndim = 1, .shape = {1}, .data = xs};

        if (!writes_bias(c, m, l)) continue;
        snprintf(names[k], sizeof names[k], "%s.bias", base);
        AW_TRY(aw_convert_from_f32(m->param_dtype, ln->bias, pp, (size_t)ln->out));
        e[k++] = (aw_st_entry){.name = names[k - 1], .dtype = m->param_dtype, .ndim = 1,
                               .shape = {ln->out}, .data = pp};
        pp += (size_t)ln->out * psz;
    }
    return AW_OK;
}

/* Copy src to dst atomically (temporary name, fsync, rename, as every file
 * of the checkpoint), 1 MiB at a time, so that any size is fine. Errors name
 * the file. */
static aw_status copy_file(const char *src, const char *dst)
{
    int fd = open(src, O_RDONLY | O_CLOEXEC);
    AW_RETURN_IF(fd < 0, AW_ERR_IO, "%s: cannot open: %s", src, strerror(errno));
    aw_atomic_file af;
    aw_status st = aw_atomic_open(dst, &af);
    if (st != AW_OK) {
        close(fd);
        return st;
    }
    const size_t cap = (size_t)1 << 20;
    char *buf = malloc(cap);
    AW_GOTO_IF(!buf, AW_ERR_NOMEM, "%s: out of memory for the copy", src);
    for (;;) {
        ssize_t n = read(fd, buf, cap);
        if (n < 0 && errno == EINTR) continue;
        AW_GOTO_IF(n < 0, AW_ERR_IO, "%s: read failed: %s", src, strerror(errno));
        if (n == 0) break;
        AW_CHECK(aw_atomic_write(&af, buf, (size_t)n));
    }
    free(buf);
    close(fd);
    return aw_atomic_commit(&af);
fail:
    aw_atomic_abort(&af);
    free(buf);
    close(fd);
    return st;
}

static int is_copied(const char *name)
{
    if (name[0] == '.') return 0;
    for (size_t i = 0; i < sizeof not_copied / sizeof not_copied[0]; i++)
        if (fnmatch(not_copied[i], name, 0) == 0) return 0;
    return 1;
}

/* Copy the files of src_dir that the checkpoint takes (see not_copied) into
 * out_dir, in name order. Symbolic links are followed (a Hugging Face cache
 * snapshot is all links to blobs) and the content copied; a dangling link is
 * skipped; any other failure is AW_ERR_IO naming the file. */
static aw_status copy_folder_files(const char *src_dir, const char *out_dir)
{
    struct dirent **list = NULL;
    int n = scandir(src_dir, &list, NULL, alphasort);
    AW_RETURN_IF(n < 0, AW_ERR_IO, "%s: cannot list the folder: %s", src_dir, strerror(errno));
    aw_status st = AW_OK;
    for (int i = 0; i < n && st == AW_OK; i++) {
        const char *name = list[i]->d_name;
        if (!is_copied(name)) continue;
        char *src = aw_path_join(src_dir, name), *dst = aw_path_join(out_dir, name);
        struct stat sb;
        if (!src || !dst) {
            st = AW_FAIL(AW_ERR_NOMEM, "out of memory");
        } else if (stat(src, &sb) != 0) {
            if (errno != ENOENT) st = AW_FAIL(AW_ERR_IO, "%s: cannot stat: %s", src, strerror(errno));
        } else if (S_ISREG(sb.st_mode)) {
            st = copy_file(src, dst);
        }
        free(src);
        free(dst);
    }
    for (int i = 0; i < n; i++) free(list[i]);
    free(list);
    return st;
}

int aw_out_file_count(const aw_model_config *c) { return c->num_hidden_layers + 1; }

void aw_out_file_name(const aw_model_config *c, int i, char *buf, size_t cap)
{
    snprintf(buf, cap, "model-%05d-of-%05d.safetensors", i + 1, aw_out_file_count(c));
}

/* The "aweq.*" extras of a shard: the factors of each tap, the bias each
 * linear would have without correction. */
#define AW_AUX_TENSORS (AW_TAP_COUNT + AW_LIN_MAX)

static void aux_name(int i, char *buf, size_t cap)
{
    if (i < AW_TAP_COUNT) snprintf(buf, cap, "aweq.s.%d", i);
    else snprintf(buf, cap, "aweq.bias_plain.%d", i - AW_TAP_COUNT);
}

aw_status aw_block_serialize(const aw_model_config *c, int layer, const aw_qblock *q,
                             const aw_method *m, const char *run_key, uint8_t **out, size_t *out_len)
{
    char names[AW_BLOCK_OUT_TENSORS + AW_AUX_TENSORS][128];
    uint8_t scales[2 * AW_LIN_MAX * 4];
    aw_st_entry e[AW_BLOCK_OUT_TENSORS + AW_AUX_TENSORS];
    uint8_t *params = malloc(block_param_bytes(c, m));
    AW_RETURN_IF(!params, AW_ERR_NOMEM, "layer %d: out of memory", layer);
    aw_status st = block_entries(c, layer, q, m, names, scales, params, e);
    size_t n = (size_t)aw_block_out_tensors(c, m);
    if (run_key) {
        for (int i = 0; i < AW_TAP_COUNT + q->n_lin; i++, n++) {
            aux_name(i, names[n], sizeof names[n]);
            int len = i < AW_TAP_COUNT ? aw_arch_tap_width(c, (aw_tap_id)i) : q->lin[i - AW_TAP_COUNT].out;
            const float *v = i < AW_TAP_COUNT ? q->s[i] : q->lin[i - AW_TAP_COUNT].bias_plain;
            e[n] = (aw_st_entry){.name = names[n], .dtype = AW_DT_F32, .ndim = 1, .shape = {len}, .data = v};
        }
    }
    const aw_st_meta meta[] = {{"aweq_run", run_key ? run_key : ""}, {"format", "pt"}};
    if (st == AW_OK) st = aw_st_serialize(e, n, run_key ? meta : meta + 1, run_key ? 2 : 1, out, out_len);
    free(params);
    return st;
}

/* Copy a shard tensor into dst as f32, checking its element count. */
static aw_status shard_f32(const aw_st_file *f, const char *name, float *dst, size_t n)
{
    const aw_st_tensor *t = aw_st_find(f, name);
    AW_RETURN_IF(!t, AW_ERR_MISSING_TENSOR, "%s: tensor '%s' missing", aw_st_label(f), name);
    AW_RETURN_IF(aw_st_numel(t) != n, AW_ERR_ST_SHAPE, "%s: tensor '%s' has %llu values, want %zu",
                 aw_st_label(f), name, (unsigned long long)aw_st_numel(t), n);
    return aw_st_read_f32(f, t, dst, n);
}

aw_status aw_block_from_shard(const aw_model_config *c, int layer, const uint8_t *bytes, size_t len,
                              const char *label, const char *run_key, aw_qblock *q)
{
    aw_st_file *f = NULL;
    AW_TRY(aw_st_open_mem(bytes, len, label, &f));
    aw_status st = AW_OK;
    const char *key = aw_st_metadata(f, "aweq_run");
    AW_GOTO_IF(!key || strcmp(key, run_key) != 0, AW_ERR_CHECKSUM,
               "%s: written by another run (options or inputs differ)", label);
    char name[160];
    int d = c->hidden_size;
    for (int i = 0; i < 2 * AW_NORM_COUNT; i++) {
        if (i % 2 && !aw_arch_has_norm_bias(c)) continue;
        aw_arch_tensor_name(c, layer, (aw_tensor_ref){i % 2 ? AW_T_NORM_B : AW_T_NORM_W, i / 2}, name, sizeof name);
        AW_CHECK(shard_f32(f, name, i % 2 ? q->norm_b[i / 2] : q->norm_g[i / 2], (size_t)d));
    }
    for (int l = 0; l < q->n_lin; l++) {
        aw_qlinear *ql = &q->lin[l];
        char base[96];
        aw_arch_tensor_name(c, layer, (aw_tensor_ref){AW_T_LIN_W, l}, base, sizeof base);
        base[strlen(base) - strlen(".weight")] = '\0';
        snprintf(name, sizeof name, "%s.weight", base);
        const aw_st_tensor *t = aw_st_find(f, name);
        AW_GOTO_IF(!t || t->dtype != AW_DT_I8 || aw_st_numel(t) != (uint64_t)ql->in * ql->out,
                   AW_ERR_ST_SHAPE, "%s: tensor '%s' missing or not I8 [%d, %d]", label, name, ql->out, ql->in);
        AW_CHECK(aw_st_read(f, t, ql->wq, (size_t)ql->in * ql->out));
        snprintf(name, sizeof name, "%s.weight_scale", base);
        AW_CHECK(shard_f32(f, name, &ql->w_step, 1));
        snprintf(name, sizeof name, "%s.input_scale", base);
        AW_CHECK(shard_f32(f, name, &ql->x_step, 1));
        snprintf(name, sizeof name, "%s.bias", base);
        if (aw_st_find(f, name)) AW_CHECK(shard_f32(f, name, ql->bias, (size_t)ql->out));
        else memset(ql->bias, 0, (size_t)ql->out * sizeof(float)); /* a family without biases, uncorrected */
    }
    for (int i = 0; i < AW_TAP_COUNT + q->n_lin; i++) {
        aux_name(i, name, sizeof name);
        if (i < AW_TAP_COUNT) AW_CHECK(shard_f32(f, name, q->s[i], (size_t)aw_arch_tap_width(c, (aw_tap_id)i)));
        else AW_CHECK(shard_f32(f, name, q->lin[i - AW_TAP_COUNT].bias_plain, (size_t)q->lin[i - AW_TAP_COUNT].out));
    }
    aw_qblock_set_out_scales(c, q);
fail:
    aw_st_close(f);
    return st;
}

char *aw_shard_path(const char *work_dir, int layer)
{
    char name[64];
    snprintf(name, sizeof name, "block-%05d.safetensors.zst", layer);
    return aw_path_join(work_dir, name);
}

void aw_shard_remove_all(const char *work_dir, int n_layers)
{
    for (int l = 0; l < n_layers; l++) {
        char *p = aw_shard_path(work_dir, l);
        if (p) unlink(p);
        free(p);
    }
}

aw_status aw_shard_write(const char *work_dir, int layer, const uint8_t *bytes, size_t len)
{
    char *path = aw_shard_path(work_dir, layer);
    AW_RETURN_IF(!path, AW_ERR_NOMEM, "out of memory");
    size_t cap = ZSTD_compressBound(len);
    void *z = malloc(cap);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    aw_status st = AW_OK;
    AW_GOTO_IF(!z || !cc, AW_ERR_NOMEM, "%s: out of memory for compression", path);
    /* the content checksum lets a resumed run tell a damaged shard from a good one */
    size_t r = ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 3);
    if (!ZSTD_isError(r)) r = ZSTD_compress2(cc, z, cap, bytes, len);
    AW_GOTO_IF(ZSTD_isError(r), AW_ERR_ZSTD, "%s: %s", path, ZSTD_getErrorName(r));
    AW_CHECK(aw_write_file_atomic(path, z, r));
fail:
    ZSTD_freeCCtx(cc);
    free(z);
    free(path);
    return st;
}

aw_status aw_shard_read(const char *work_dir, int layer, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    char *path = aw_shard_path(work_dir, layer);
    AW_RETURN_IF(!path, AW_ERR_NOMEM, "out of memory");
    char *z = NULL;
    size_t zl = 0;
    uint8_t *raw = NULL;
    aw_status st = aw_read_file(path, (size_t)1 << 40, &z, &zl);
    if (st != AW_OK) goto fail;
    unsigned long long n = ZSTD_getFrameContentSize(z, zl);
    AW_GOTO_IF(n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN || n > ((size_t)1 << 40),
               AW_ERR_ZSTD, "%s: not a complete zstd shard", path);
    raw = malloc(n ? n : 1);
    AW_GOTO_IF(!raw, AW_ERR_NOMEM, "%s: out of memory for %llu bytes", path, n);
    size_t r = ZSTD_decompress(raw, n, z, zl);
    if (ZSTD_isError(r)) {
        AW_GOTO_IF(ZSTD_getErrorCode(r) == ZSTD_error_checksum_wrong, AW_ERR_CHECKSUM,
                   "%s: content checksum mismatch (damaged shard)", path);
        AW_GOTO_IF(1, AW_ERR_ZSTD, "%s: %s", path, ZSTD_getErrorName(r));
    }
    AW_GOTO_IF(r != n, AW_ERR_ZSTD, "%s: %zu bytes decompressed, %llu expected", path, r, n);
    *out = raw;
    *out_len = (size_t)n;
    raw = NULL;
fail:
    free(raw);
    free(z);
    free(path);
    return st;
}

aw_status aw_gather_block(const char *work_dir, const char *out_dir, const aw_model_config *c, int layer)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    AW_TRY(aw_shard_read(work_dir, layer, &bytes, &len));
    char name[64];
    aw_out_file_name(c, layer + 1, name, sizeof name);
    char *path = aw_path_join(out_dir, name);
    aw_st_file *f = NULL;
    aw_st_entry e[AW_BLOCK_OUT_TENSORS];
    size_t n = 0;
    aw_status st = path ? aw_st_open_mem(bytes, len, name, &f) : AW_FAIL(AW_ERR_NOMEM, "out of memory");
    /* the final file: the shard's tensors less its "aweq.*" extras, in the
     * same order and bytes as the writer lays them out */
    for (size_t i = 0; st == AW_OK && i < aw_st_count(f); i++) {
        const aw_st_tensor *t = aw_st_at(f, i);
        if (strncmp(t->name, "aweq.", 5) == 0) continue;
        AW_GOTO_IF(n >= AW_BLOCK_OUT_TENSORS, AW_ERR_ST_SHAPE, "%s: too many tensors in shard", name);
        e[n] = (aw_st_entry){.name = t->name, .dtype = t->dtype, .ndim = t->ndim,
                             .data = bytes + aw_st_data_offset(f) + t->begin};
        memcpy(e[n].shape, t->shape, sizeof e[n].shape);
        n++;
    }
    const aw_st_meta meta[] = {{"format", "pt"}};
    if (st == AW_OK) st = aw_st_write_file(path, e, n, meta, 1);
fail:
    aw_st_close(f);
    free(path);
    free(bytes);
    return st;
}

/* The ends' tensors the checkpoint has (a tied head is not stored). */
static int end_tensors(const aw_model_config *c, const char *names[AW_END_TENSOR_MAX])
{
    const aw_arch *a = aw_arch_of(c);
    int n = 0;
    for (int i = 0; i < a->n_end_tensors; i++) {
        aw_tensor_kind k = a->end_tensors[i].kind;
        if (k == AW_T_HEAD && c->tie_word_embeddings) continue;
        names[n++] = a->end_name[k];
    }
    return n;
}

aw_status aw_write_ends(const char *out_dir, const aw_model_config *c, const aw_model_files *mf)
{
    const char *tn[AW_END_TENSOR_MAX];
    int nt = end_tensors(c, tn);
    const aw_st_file *files[AW_END_TENSOR_MAX];
    const aw_st_tensor *ts[AW_END_TENSOR_MAX];
    aw_st_entry e[AW_END_TENSOR_MAX];
    uint64_t bytes = 0;
    for (int t = 0; t < nt; t++) {
        AW_TRY(aw_mf_find(mf, tn[t], &files[t], &ts[t]));
        bytes += ts[t]->end - ts[t]->begin;
    }
    uint8_t *buf = malloc(bytes ? bytes : 1);
    AW_RETURN_IF(!buf, AW_ERR_NOMEM, "out of memory for the embeddings");
    aw_status st = AW_OK;
    uint64_t off = 0;
    for (int t = 0; t < nt && st == AW_OK; t++) {
        uint64_t nb = ts[t]->end - ts[t]->begin;
        st = aw_st_read(files[t], ts[t], buf + off, nb);
        e[t] = (aw_st_entry){.name = ts[t]->name, .dtype = ts[t]->dtype, .ndim = ts[t]->ndim, .data = buf + off};
        memcpy(e[t].shape, ts[t]->shape, sizeof e[t].shape);
        off += nb;
    }
    char name[64];
    aw_out_file_name(c, 0, name, sizeof name);
    char *path = aw_path_join(out_dir, name);
    const aw_st_meta meta[] = {{"format", "pt"}};
    if (st == AW_OK) st = path ? aw_st_write_file(path, e, (size_t)nt, meta, 1) : AW_FAIL(AW_ERR_NOMEM, "out of memory");
    free(path);
    free(buf);
    return st;
}

aw_status aw_write_meta(const char *out_dir, const char *model_dir, const aw_model_config *c,
                        const aw_model_files *mf, const aw_method *m, const char *report_json)
{
    aw_status st = AW_OK;
    int L = c->num_hidden_layers;
    const char *tn[AW_END_TENSOR_MAX];
    int nt = end_tensors(c, tn), nb = aw_block_out_tensors(c, m);
    size_t n = (size_t)nt + (size_t)L * (size_t)nb;
    aw_model_config oc = out_config(c, m);
    char(*names)[128] = calloc(n, sizeof *names);
    char(*files)[64] = calloc((size_t)L + 1, sizeof *files);
    const char **pn = calloc(n, sizeof *pn), **pf = calloc(n, sizeof *pf);
    char *path = NULL, *qjson = NULL;
    uint8_t scales[2 * AW_LIN_MAX * 4];
    uint8_t *params = malloc(block_param_bytes(c, m));
    aw_qblock q;
    memset(&q, 0, sizeof q);
    AW_GOTO_IF(!names || !files || !pn || !pf || !params, AW_ERR_NOMEM, "out of memory");
    for (int i = 0; i <= L; i++) aw_out_file_name(c, i, files[i], sizeof files[i]);
    uint64_t total = 0;
    size_t k = 0;
    for (int t = 0; t < nt; t++, k++) {
        const aw_st_file *f;
        const aw_st_tensor *ts;
        AW_CHECK(aw_mf_find(mf, tn[t], &f, &ts));
        snprintf(names[k], sizeof names[k], "%s", ts->name);
        pn[k] = names[k];
        pf[k] = files[0];
        total += ts->end - ts->begin;
    }
    /* the names and sizes of a block's tensors do not depend on its values:
     * list them from an empty quantized block */
    AW_CHECK(aw_qblock_create(c, &q));
    memset(q.arena, 0, aw_qblock_bytes(c));
    for (int l = 0; l < L; l++) {
        aw_st_entry e[AW_BLOCK_OUT_TENSORS];
        AW_CHECK(block_entries(c, l, &q, m, names + k, scales, params, e));
        for (int i = 0; i < nb; i++, k++) {
            pn[k] = names[k];
            pf[k] = files[l + 1];
            uint64_t numel = 1;
            for (int dd = 0; dd < e[i].ndim; dd++) numel *= (uint64_t)e[i].shape[dd];
            total += numel * aw_dtype_size(e[i].dtype);
        }
    }
    AW_CHECK(aw_mf_write_index(out_dir, pn, pf, k, total));
    qjson = aw_quant_config_json(m);
    path = aw_path_join(out_dir, "config.json");
    AW_GOTO_IF(!qjson || !path, AW_ERR_NOMEM, "out of memory");
    AW_CHECK(aw_config_write(path, &oc, qjson));
    AW_CHECK(copy_folder_files(model_dir, out_dir));
    if (report_json) {
        free(path);
        path = aw_path_join(out_dir, "aweq_report.json");
        AW_GOTO_IF(!path, AW_ERR_NOMEM, "out of memory");
        AW_CHECK(aw_write_file_atomic(path, report_json, strlen(report_json)));
    }
fail:
    aw_qblock_destroy(&q);
    free(path);
    free(qjson);
    free(params);
    free(names);
    free(files);
    free(pn);
    free(pf);
    return st;
}
