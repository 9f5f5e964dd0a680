/* aw_inspect.c - checkpoint checks and the inspect listing (see aw_inspect.h). */
#include "aw_inspect.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aw_fs.h"
#include "aw_tokens.h"

static aw_status check_one(const aw_model_files *mf, const char *name, int ndim, const int64_t shape[2])
{
    const aw_st_file *f = NULL;
    const aw_st_tensor *t = NULL;
    AW_TRY(aw_mf_find(mf, name, &f, &t));
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char got[128] = "", want[64] = "";
        size_t k = 0;
        for (int i = 0; i < t->ndim && k < sizeof got; i++)
            k += (size_t)snprintf(got + k, sizeof got - k, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        k = 0;
        for (int i = 0; i < ndim; i++)
            k += (size_t)snprintf(want + k, sizeof want - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
        return AW_FAIL(AW_ERR_ST_SHAPE, "%s: tensor '%s' has shape [%s]; config.json implies [%s]",
                       aw_st_label(f), name, got, want);
    }
    AW_RETURN_IF(t->dtype != AW_DT_F16 && t->dtype != AW_DT_BF16 && t->dtype != AW_DT_F32,
                 AW_ERR_DTYPE, "%s: tensor '%s' has dtype %s; expected F16, BF16 or F32",
                 aw_st_label(f), name, aw_dtype_name(t->dtype));
    return AW_OK;
}

aw_status aw_checkpoint_check(const aw_opt_config *c, const aw_model_files *mf)
{
    char name[128];
    int ndim;
    int64_t shape[2];
    for (int m = 0; m < AW_MT_COUNT; m++) {
        aw_model_tensor_shape(c, (aw_model_tensor)m, &ndim, shape);
        AW_TRY(check_one(mf, aw_model_tensor_name((aw_model_tensor)m), ndim, shape));
    }
    for (int l = 0; l < c->num_hidden_layers; l++) {
        for (int b = 0; b < AW_BT_COUNT; b++) {
            aw_block_tensor_name(l, (aw_block_tensor)b, name, sizeof name);
            aw_block_tensor_shape(c, (aw_block_tensor)b, &ndim, shape);
            AW_TRY(check_one(mf, name, ndim, shape));
        }
    }
    return AW_OK;
}

aw_status aw_checkpoint_scan_values(const aw_model_files *mf)
{
    float *buf = NULL;
    size_t cap = 0;
    aw_status st = AW_OK;
    for (size_t i = 0; i < aw_mf_count(mf); i++) {
        const aw_st_file *f = NULL;
        const aw_st_tensor *t = aw_mf_at(mf, i, &f);
        if (!aw_dtype_table[t->dtype].is_float) continue;
        size_t n = (size_t)aw_st_numel(t);
        if (n > cap) {
            free(buf);
            buf = malloc(n * sizeof *buf);
            cap = n;
            AW_GOTO_IF(!buf, AW_ERR_NOMEM, "%s: tensor '%s': out of memory for %zu values",
                       aw_st_label(f), t->name, n);
        }
        AW_CHECK(aw_st_read_f32(f, t, buf, cap));
        for (size_t j = 0; j < n; j++)
            AW_GOTO_IF(!isfinite(buf[j]), AW_ERR_NONFINITE, "%s: tensor '%s': element %zu is %s",
                       aw_st_label(f), t->name, j, isnan(buf[j]) ? "NaN" : "Inf");
    }
fail:
    free(buf);
    return st;
}

static void fmt_count(uint64_t v, char *buf, size_t cap)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    size_t k = 0;
    for (int i = 0; i < n && k + 1 < cap; i++) {
        if (i > 0 && (n - i) % 3 == 0 && k + 2 < cap) buf[k++] = ',';
        buf[k++] = digits[i];
    }
    buf[k] = '\0';
}

aw_status aw_inspect(const char *dir, FILE *out, int scan_values)
{
    aw_status st = AW_OK;
    aw_opt_config cfg;
    aw_model_files *mf = NULL;
    char *cfg_path = aw_path_join(dir, "config.json");
    char *tok_path = aw_path_join(dir, "calibration.tokens");
    AW_GOTO_IF(!cfg_path || !tok_path, AW_ERR_NOMEM, "inspect: out of memory");
    AW_CHECK(aw_config_read(cfg_path, &cfg));
    AW_CHECK(aw_mf_open(dir, &mf));

    fprintf(out, "%-60s %-5s %-16s %12s  %s\n", "tensor", "dtype", "shape", "bytes", "file");
    uint64_t params = 0;
    for (size_t i = 0; i < aw_mf_count(mf); i++) {
        const aw_st_file *f = NULL;
        const aw_st_tensor *t = aw_mf_at(mf, i, &f);
        char shape[64] = "[";
        size_t k = 1;
        for (int d = 0; d < t->ndim && k < sizeof shape; d++)
            k += (size_t)snprintf(shape + k, sizeof shape - k, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        if (k < sizeof shape - 1) snprintf(shape + k, sizeof shape - k, "]");
        const char *file = strrchr(aw_st_label(f), '/');
        fprintf(out, "%-60s %-5s %-16s %12llu  %s\n", t->name, aw_dtype_name(t->dtype), shape,
                (unsigned long long)(t->end - t->begin), file ? file + 1 : aw_st_label(f));
        /* a stored lm_head.weight duplicates the tied embedding */
        if (strcmp(t->name, "lm_head.weight") != 0) params += aw_st_numel(t);
    }
    char pbuf[32], cbuf[32];
    fmt_count(params, pbuf, sizeof pbuf);
    fmt_count(aw_config_param_count(&cfg), cbuf, sizeof cbuf);
    fprintf(out, "\nmodel: %s%s%s, OPT, d=%d, layers=%d, heads=%d, ffn=%d, vocab=%d, positions=%d, dtype %s\n",
            dir, cfg.name[0] ? " " : "", cfg.name, cfg.hidden_size, cfg.num_hidden_layers,
            cfg.num_attention_heads, cfg.ffn_dim, cfg.vocab_size, cfg.max_position_embeddings,
            aw_dtype_name(cfg.torch_dtype));
    fprintf(out, "tensors: %zu in %zu file(s), %.1f MB\n", aw_mf_count(mf), aw_mf_shard_count(mf),
            aw_mf_total_bytes(mf) / 1e6);
    fprintf(out, "parameters: %s (%.1fM, tied LM head counted once); config.json implies %s\n", pbuf,
            params / 1e6, cbuf);

    struct stat sb;
    if (stat(tok_path, &sb) == 0) {
        aw_tokens tk = {0};
        AW_CHECK(aw_tokens_read(tok_path, &tk));
        AW_GOTO_IF(tk.vocab_size > (uint32_t)cfg.vocab_size, AW_ERR_TOKENS,
                   "%s: vocabulary of %u tokens is larger than the model's %d", tok_path,
                   tk.vocab_size, cfg.vocab_size);
        fprintf(out, "calibration.tokens: %llu sequences x %u tokens\n", (unsigned long long)tk.n_seq,
                tk.seq_len);
        aw_tokens_free(&tk);
    }
    AW_CHECK(aw_config_check_supported(&cfg, cfg_path));
    AW_CHECK(aw_checkpoint_check(&cfg, mf));
    if (scan_values) {
        AW_CHECK(aw_checkpoint_scan_values(mf));
        fprintf(out, "values: all finite\n");
    }
    fprintf(out, "checkpoint: OK\n");
fail:
    aw_mf_close(mf);
    free(cfg_path);
    free(tok_path);
    return st;
}
