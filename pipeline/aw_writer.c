/* aw_writer.c - the compressed-tensors checkpoint (see aw_writer.h). */
#include "aw_writer.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aw_fs.h"
#include "aw_outdir.h"
#include "aw_safetensors.h"

/* Files of a Hugging Face model folder that travel with the checkpoint. */
static const char *const tokenizer_files[] = {
    "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
    "special_tokens_map.json", "added_tokens.json", "generation_config.json"};

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

size_t aw_block_out_param_bytes(const aw_opt_config *c, const aw_method *m)
{
    size_t n = 4 * (size_t)c->hidden_size;            /* two LayerNorms */
    n += 5 * (size_t)c->hidden_size + (size_t)c->ffn_dim; /* biases */
    return n * aw_dtype_size(m->param_dtype);
}

aw_status aw_block_out_entries(const aw_opt_config *c, int layer, const aw_qblock *q,
                               const aw_method *m, char (*names)[128], uint8_t *scale_buf,
                               uint8_t *param_buf, aw_st_entry *e)
{
    int k = 0, d = c->hidden_size;
    size_t psz = aw_dtype_size(m->param_dtype), ssz = aw_dtype_size(m->scale_dtype);
    uint8_t *pp = param_buf;
    /* LayerNorms (folded) */
    const struct {
        aw_block_tensor bt;
        const float *v;
    } lns[4] = {{AW_BT_LN1_W, q->ln1_g}, {AW_BT_LN1_B, q->ln1_b},
                {AW_BT_LN2_W, q->ln2_g}, {AW_BT_LN2_B, q->ln2_b}};
    for (int i = 0; i < 4; i++, k++) {
        aw_block_tensor_name(layer, lns[i].bt, names[k], sizeof names[k]);
        AW_TRY(aw_convert_from_f32(m->param_dtype, lns[i].v, pp, (size_t)d));
        e[k] = (aw_st_entry){.name = names[k], .dtype = m->param_dtype, .ndim = 1, .shape = {d}, .data = pp};
        pp += (size_t)d * psz;
    }
    static const aw_block_tensor w_of[AW_LIN_COUNT] = {AW_BT_Q_W, AW_BT_K_W, AW_BT_V_W,
                                                       AW_BT_O_W, AW_BT_FC1_W, AW_BT_FC2_W};
    for (int l = 0; l < AW_LIN_COUNT; l++) {
        const aw_qlinear *ln = &q->lin[l];
        /* "<module>" of "<module>.weight": OPT names are far below 96 bytes,
         * so every "<module>.<param>" fits the 128-byte name slots */
        char base[96];
        AW_RETURN_IF(aw_block_tensor_name(layer, w_of[l], base, sizeof base) < 0, AW_ERR_ARG,
                     "layer %d: tensor name too long", layer);
        base[strlen(base) - strlen(".weight")] = '\0';

        snprintf(names[k], sizeof names[k], "%s.weight", base);
        e[k++] = (aw_st_entry){.name = names[k - 1], .dtype = AW_DT_I8, .ndim = 2,
                               .shape = {ln->out, ln->in}, .data = ln->wq};

        uint8_t *ws = scale_buf + (size_t)(2 * l) * 4, *xs = scale_buf + (size_t)(2 * l + 1) * 4;
        AW_TRY(aw_convert_from_f32(m->scale_dtype, &ln->w_step, ws, 1));
        AW_TRY(aw_convert_from_f32(m->scale_dtype, &ln->x_step, xs, 1));
        (void)ssz;
        snprintf(names[k], sizeof names[k], "%s.weight_scale", base);
        e[k++] = (aw_st_entry){.name = names[k - 1], .dtype = m->scale_dtype, .ndim = 1, .shape = {1}, .data = ws};
        snprintf(names[k], sizeof names[k], "%s.input_scale", base);
        e[k++] = (aw_st_entry){.name = names[k - 1], .dtype = m->scale_dtype, .ndim = 1, .shape = {1}, .data = xs};

        snprintf(names[k], sizeof names[k], "%s.bias", base);
        AW_TRY(aw_convert_from_f32(m->param_dtype, ln->bias, pp, (size_t)ln->out));
        e[k++] = (aw_st_entry){.name = names[k - 1], .dtype = m->param_dtype, .ndim = 1,
                               .shape = {ln->out}, .data = pp};
        pp += (size_t)ln->out * psz;
    }
    return AW_OK;
}

/* Copy a small file if it exists in src_dir. */
static aw_status copy_if_present(const char *src_dir, const aw_outdir *od, const char *name)
{
    char *src = aw_path_join(src_dir, name);
    AW_RETURN_IF(!src, AW_ERR_NOMEM, "out of memory");
    struct stat sb;
    if (stat(src, &sb) != 0) {
        free(src);
        return AW_OK;
    }
    char *buf = NULL;
    size_t len = 0;
    aw_status st = aw_read_file(src, 256u << 20, &buf, &len);
    free(src);
    if (st != AW_OK) return st;
    char *dst = aw_outdir_path(od, name);
    st = dst ? aw_write_file_atomic(dst, buf, len) : AW_FAIL(AW_ERR_NOMEM, "out of memory");
    free(dst);
    free(buf);
    return st;
}

aw_status aw_write_checkpoint(const char *out_dir, const char *model_dir, const aw_opt_config *c,
                              const aw_model_files *mf, const aw_qblock *q, int n_layers,
                              const aw_method *m, const char *report_json)
{
    aw_status st = AW_OK;
    aw_outdir od = {0};
    char *path = NULL, *qjson = NULL;
    uint8_t *ends_buf = NULL, *scale_buf = NULL, *param_buf = NULL;
    char(*names)[128] = NULL;
    aw_st_entry *entries = NULL;
    const char **idx_names = NULL, **idx_shards = NULL;
    char(*shard_names)[64] = NULL;
    char(*idx_name_store)[128] = NULL;
    int *shard_of_layer = NULL;

    AW_CHECK(aw_outdir_begin(out_dir, &od));
    size_t block_bytes = aw_block_out_param_bytes(c, m);
    for (int l = 0; l < AW_LIN_COUNT; l++) block_bytes += (size_t)q[0].lin[l].in * q[0].lin[l].out + 8;

    /* shards: 1 = embeddings + final LN, then blocks packed up to the limit */
    int n_shards = 1;
    uint64_t cur = AW_OUT_SHARD_BYTES; /* force a new shard for the first block */
    shard_of_layer = calloc((size_t)n_layers, sizeof(int));
    AW_GOTO_IF(!shard_of_layer, AW_ERR_NOMEM, "out of memory");
    for (int l = 0; l < n_layers; l++) {
        if (cur + block_bytes > AW_OUT_SHARD_BYTES && cur > 0) {
            n_shards++;
            cur = 0;
        }
        shard_of_layer[l] = n_shards - 1;
        cur += block_bytes;
    }
    shard_names = calloc((size_t)n_shards, sizeof *shard_names);
    size_t n_total = AW_MT_COUNT + (size_t)n_layers * AW_BLOCK_OUT_TENSORS;
    idx_names = calloc(n_total, sizeof *idx_names);
    idx_shards = calloc(n_total, sizeof *idx_shards);
    idx_name_store = calloc(n_total, sizeof *idx_name_store);
    names = calloc(AW_BLOCK_OUT_TENSORS * (size_t)n_layers, sizeof *names);
    entries = calloc(AW_BLOCK_OUT_TENSORS * (size_t)n_layers + AW_MT_COUNT, sizeof *entries);
    scale_buf = malloc((size_t)n_layers * 2 * AW_LIN_COUNT * 8);
    param_buf = malloc((size_t)n_layers * aw_block_out_param_bytes(c, m));
    if (!shard_names || !idx_names || !idx_shards || !idx_name_store || !names || !entries ||
        !scale_buf || !param_buf)
        AW_GOTO_IF(1, AW_ERR_NOMEM, "out of memory for the checkpoint tables");
    for (int k = 0; k < n_shards; k++)
        snprintf(shard_names[k], sizeof shard_names[k], "model-%05d-of-%05d.safetensors", k + 1, n_shards);

    const aw_st_meta meta[] = {{"format", "pt"}};
    size_t ni = 0;
    uint64_t total = 0;
    /* shard 1: the model-level tensors, bytes as stored in the input */
    {
        uint64_t bytes = 0;
        const aw_st_file *files[AW_MT_COUNT];
        const aw_st_tensor *ts[AW_MT_COUNT];
        for (int t = 0; t < AW_MT_COUNT; t++) {
            aw_status fs = aw_mf_find(mf, aw_model_tensor_name((aw_model_tensor)t), &files[t], &ts[t]);
            if (fs != AW_OK) {
                st = fs;
                goto fail;
            }
            bytes += ts[t]->end - ts[t]->begin;
        }
        ends_buf = malloc(bytes ? bytes : 1);
        AW_GOTO_IF(!ends_buf, AW_ERR_NOMEM, "out of memory for the embeddings");
        uint64_t off = 0;
        for (int t = 0; t < AW_MT_COUNT; t++) {
            uint64_t nb = ts[t]->end - ts[t]->begin;
            st = aw_st_read(files[t], ts[t], ends_buf + off, nb);
            if (st != AW_OK) goto fail;
            entries[t] = (aw_st_entry){.name = ts[t]->name, .dtype = ts[t]->dtype, .ndim = ts[t]->ndim,
                                       .data = ends_buf + off};
            memcpy(entries[t].shape, ts[t]->shape, sizeof entries[t].shape);
            snprintf(idx_name_store[ni], sizeof idx_name_store[ni], "%s", ts[t]->name);
            idx_names[ni] = idx_name_store[ni];
            idx_shards[ni++] = shard_names[0];
            off += nb;
        }
        total += bytes;
        path = aw_outdir_path(&od, shard_names[0]);
        AW_GOTO_IF(!path, AW_ERR_NOMEM, "out of memory");
        st = aw_st_write_file(path, entries, AW_MT_COUNT, meta, 1);
        free(path);
        path = NULL;
        if (st != AW_OK) goto fail;
        free(ends_buf);
        ends_buf = NULL;
    }
    /* the blocks */
    size_t pbytes = aw_block_out_param_bytes(c, m);
    for (int k = 1; k < n_shards; k++) {
        size_t ne = 0;
        for (int l = 0; l < n_layers; l++) {
            if (shard_of_layer[l] != k) continue;
            aw_st_entry *e = entries + ne;
            st = aw_block_out_entries(c, l, &q[l], m, names + (size_t)l * AW_BLOCK_OUT_TENSORS,
                                      scale_buf + (size_t)l * 2 * AW_LIN_COUNT * 4,
                                      param_buf + (size_t)l * pbytes, e);
            if (st != AW_OK) goto fail;
            for (int i = 0; i < AW_BLOCK_OUT_TENSORS; i++) {
                snprintf(idx_name_store[ni], sizeof idx_name_store[ni], "%s", e[i].name);
                idx_names[ni] = idx_name_store[ni];
                idx_shards[ni++] = shard_names[k];
                uint64_t numel = 1;
                for (int dd = 0; dd < e[i].ndim; dd++) numel *= (uint64_t)e[i].shape[dd];
                total += numel * aw_dtype_size(e[i].dtype);
            }
            ne += AW_BLOCK_OUT_TENSORS;
        }
        path = aw_outdir_path(&od, shard_names[k]);
        AW_GOTO_IF(!path, AW_ERR_NOMEM, "out of memory");
        st = aw_st_write_file(path, entries, ne, meta, 1);
        free(path);
        path = NULL;
        if (st != AW_OK) goto fail;
    }
    AW_CHECK(aw_mf_write_index(od.tmp_path, idx_names, idx_shards, ni, total));

    qjson = aw_quant_config_json(m);
    AW_GOTO_IF(!qjson, AW_ERR_NOMEM, "out of memory");
    path = aw_outdir_path(&od, "config.json");
    AW_GOTO_IF(!path, AW_ERR_NOMEM, "out of memory");
    AW_CHECK(aw_config_write(path, c, qjson));
    for (size_t i = 0; i < sizeof tokenizer_files / sizeof tokenizer_files[0]; i++)
        AW_CHECK(copy_if_present(model_dir, &od, tokenizer_files[i]));
    if (report_json) {
        free(path);
        path = aw_outdir_path(&od, "aweq_report.json");
        AW_GOTO_IF(!path, AW_ERR_NOMEM, "out of memory");
        AW_CHECK(aw_write_file_atomic(path, report_json, strlen(report_json)));
    }
    AW_CHECK(aw_outdir_commit(&od));
fail:
    aw_outdir_abort(&od);
    free(path);
    free(qjson);
    free(ends_buf);
    free(scale_buf);
    free(param_buf);
    free(names);
    free(entries);
    free(idx_names);
    free(idx_shards);
    free(idx_name_store);
    free(shard_names);
    free(shard_of_layer);
    return st;
}
