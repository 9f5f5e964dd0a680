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
#include "aw_lowbit.h"
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

/* QuantizationArgs of W8A8 (weights and inputs alike): these bytes are
 * pinned by the CLI tests, so the keys stay as they are. */
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

/* QuantizationArgs of a weight-only scheme (docs/checkpoint-format.md):
 * strategy "group" with group_size, or "channel" (one step per row);
 * GPTQ's act-order is compressed-tensors' actorder "weight" (columns visited
 * in Hessian order, groups contiguous in the original order: no index
 * tensor; 0.20 refuses "group"). */
static json_t *wo_weight_args(const aw_method *m)
{
    const aw_scheme *s = &m->scheme;
    json_t *a = json_object();
    json_object_set_new(a, "num_bits", json_integer(s->wbits));
    json_object_set_new(a, "type", json_string("int"));
    json_object_set_new(a, "symmetric", json_boolean(s->sym));
    json_object_set_new(a, "strategy", json_string(s->group > 0 ? "group" : "channel"));
    json_object_set_new(a, "dynamic", json_false());
    json_object_set_new(a, "group_size", s->group > 0 ? json_integer(s->group) : json_null());
    json_object_set_new(a, "block_structure", json_null());
    json_object_set_new(a, "actorder", m->act_order ? json_string("weight") : json_null());
    json_object_set_new(a, "observer", json_string("minmax"));
    json_object_set_new(a, "observer_kwargs", json_object());
    return a;
}

/* QuantizationArgs of dynamic input activations (compressed-tensors'
 * W4A4 / W4A8 presets): abits-bit symmetric int, strategy "token" or
 * "group" with group_size, dynamic true; no observer (the library's
 * dynamic quantizer takes the absmax of each token or group at run time). */
static json_t *dyn_act_args(const aw_scheme *s)
{
    json_t *a = json_object();
    json_object_set_new(a, "num_bits", json_integer(s->abits));
    json_object_set_new(a, "type", json_string("int"));
    json_object_set_new(a, "symmetric", json_true());
    json_object_set_new(a, "strategy", json_string(s->agroup > 0 ? "group" : "token"));
    json_object_set_new(a, "dynamic", json_true());
    json_object_set_new(a, "group_size", s->agroup > 0 ? json_integer(s->agroup) : json_null());
    json_object_set_new(a, "block_structure", json_null());
    json_object_set_new(a, "actorder", json_null());
    json_object_set_new(a, "observer", json_null());
    json_object_set_new(a, "observer_kwargs", json_object());
    return a;
}

char *aw_quant_config_json(const aw_method *m)
{
    int wo = aw_scheme_weight_only(&m->scheme), dyn = m->scheme.act == AW_ACT_DYNAMIC;
    json_t *group = json_object();
    json_t *targets = json_array();
    json_array_append_new(targets, json_string("Linear"));
    json_object_set_new(group, "targets", targets);
    json_object_set_new(group, "weights", wo || dyn ? wo_weight_args(m) : quant_args());
    json_object_set_new(group, "input_activations", wo ? json_null() : dyn ? dyn_act_args(&m->scheme) : quant_args());
    json_object_set_new(group, "output_activations", json_null());
    if (wo) json_object_set_new(group, "format", json_string(AW_CT_PACKED_FORMAT));
    if (dyn) json_object_set_new(group, "format", json_string(AW_CT_INT_FORMAT));
    json_t *groups = json_object();
    json_object_set_new(groups, "group_0", group);
    json_t *qc = json_object();
    json_object_set_new(qc, "quant_method", json_string("compressed-tensors"));
    json_object_set_new(qc, "format", json_string(wo ? AW_CT_PACKED_FORMAT : AW_CT_INT_FORMAT));
    json_object_set_new(qc, "quantization_status", json_string("compressed"));
    json_object_set_new(qc, "config_groups", groups);
    json_t *ignore = json_array();
    json_array_append_new(ignore, json_string("lm_head"));
    json_object_set_new(qc, "ignore", ignore);
    json_object_set_new(qc, "kv_cache_scheme", json_null());
    json_object_set_new(qc, "sparsity_config", json_object());
    json_object_set_new(qc, "global_compression_ratio", json_null());
    /* the release whose packing the words follow (older ones packed
     * floor(32 / b) codes per word: another layout at 3 bits) */
    if (wo || dyn) json_object_set_new(qc, "version", json_string(AW_CT_PACKED_VERSION));
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

/* Rounded up to 8 bytes: the regions carved from one buffer keep every
 * element type aligned. */
static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

/* 32-bit words of a weight-only linear: its packed codes (out rows of
 * ceil(in * b / 32)) and, with zero points, the packed zero points
 * (ceil(out * b / 32) rows of ng), as compressed-tensors lays them out. */
static size_t wo_code_words(const aw_scheme *s, int out, int in)
{
    return (size_t)out * aw_k_packed_words((size_t)in, s->wbits);
}
static size_t wo_zero_words(const aw_scheme *s, int out, int in)
{
    return s->sym ? 0 : aw_k_packed_words((size_t)out, s->wbits) * (size_t)aw_scheme_groups(s, in);
}

/* Dynamic schemes: the stored signed weights (out x in bytes), the steps
 * in the scale dtype and, asymmetric, the signed zero points (out x ng
 * bytes), each 8-byte aligned. */
static size_t dyn_region_bytes(const aw_method *m, int out, int in)
{
    const aw_scheme *s = &m->scheme;
    size_t nsteps = (size_t)out * (size_t)aw_scheme_groups(s, in);
    return align8((size_t)out * (size_t)in) + align8(nsteps * aw_dtype_size(m->scale_dtype)) +
           (s->sym ? 0 : align8(nsteps));
}

/* Bytes of the region of linear (out, in) in block_entries' buffer: W8A8
 * its two steps; weight-only its weight_shape, packed words (codes, then
 * zero points) and steps. */
static size_t lin_region_bytes(const aw_method *m, int out, int in)
{
    const aw_scheme *s = &m->scheme;
    size_t ssz = aw_dtype_size(m->scale_dtype);
    if (s->act == AW_ACT_DYNAMIC) return dyn_region_bytes(m, out, in);
    if (!aw_scheme_weight_only(s)) return align8(2 * ssz); /* weight and input step */
    return 2 * sizeof(int64_t) + align8((wo_code_words(s, out, in) + wo_zero_words(s, out, in)) * 4) +
           align8((size_t)out * (size_t)aw_scheme_groups(s, in) * ssz);
}

/* Weight-only scratch: one group's zero points down the rows, and their words. */
static size_t zero_scratch_bytes(const aw_scheme *s, size_t max_out)
{
    return aw_scheme_weight_only(s) ? align8(max_out) + align8(aw_k_packed_words(max_out, s->wbits) * 4) : 0;
}

/* Bytes of the one buffer block_entries converts a block's values into:
 * the linears' regions, the scratch, then norms and biases in the param
 * dtype. */
static size_t block_buf_bytes(const aw_model_config *c, const aw_method *m)
{
    const aw_arch *a = aw_arch_of(c);
    size_t np = 2 * AW_NORM_COUNT * (size_t)c->hidden_size; /* norms */
    size_t n = 0, max_out = 0;
    for (int l = 0; l < a->n_lin; l++) {
        int out = aw_arch_dim(c, a->lin[l].out), in = aw_arch_dim(c, a->lin[l].in);
        np += (size_t)out; /* bias */
        if ((size_t)out > max_out) max_out = (size_t)out;
        n += lin_region_bytes(m, out, in);
    }
    return n + zero_scratch_bytes(&m->scheme, max_out) + align8(np * aw_dtype_size(m->param_dtype));
}

static int same_scheme(const aw_scheme *a, const aw_scheme *b)
{
    return a->wbits == b->wbits && a->group == b->group && a->sym == b->sym && a->act == b->act &&
           (a->act != AW_ACT_DYNAMIC || (a->abits == b->abits && a->agroup == b->agroup));
}

int aw_block_out_tensors(const aw_model_config *c, const aw_method *m)
{
    const aw_arch *a = aw_arch_of(c);
    /* W8A8: weight, weight_scale, input_scale; weight-only: weight_packed,
     * weight_scale, weight_shape and weight_zero_point when asymmetric;
     * dynamic: weight, weight_scale and weight_zero_point when asymmetric */
    int per = aw_scheme_weight_only(&m->scheme) ? 3 + !m->scheme.sym
              : m->scheme.act == AW_ACT_DYNAMIC ? 2 + !m->scheme.sym
                                                : 3;
    int n = AW_NORM_COUNT * (aw_arch_has_norm_bias(c) ? 2 : 1);
    for (int l = 0; l < a->n_lin; l++) n += per + writes_bias(c, m, l);
    return n;
}

/* The output config: the input's, declaring the biases bias correction adds. */
static aw_model_config out_config(const aw_model_config *c, const aw_method *m)
{
    aw_model_config o = *c;
    if (m->bias_correction) o.attention_bias = o.mlp_bias = 1; /* keys of the families that have them */
    return o;
}
/* `weight_scale` [out, ng] of a coded linear into steps (out*ng values of
 * the scale dtype) as entry *k: AW_ERR_ARG unless every step is already a
 * value of that dtype (they are rounded before the codes are made). */
static aw_status group_scale_entry(int layer, const char *base, const aw_qlinear *ln, const aw_method *m, int ng,
                                   uint8_t *steps, char (*names)[128], aw_st_entry *e, int *k)
{
    size_t nsteps = (size_t)ln->out * (size_t)ng;
    for (size_t i = 0; i < nsteps; i++)
        AW_RETURN_IF(aw_round_to_dtype(ln->wstep[i], m->scale_dtype) != ln->wstep[i], AW_ERR_ARG,
                     "layer %d: %s: step %zu (%g) is not a %s value; steps are rounded before the codes are made",
                     layer, base, i, (double)ln->wstep[i], aw_dtype_name(m->scale_dtype));
    AW_TRY(aw_convert_from_f32(m->scale_dtype, ln->wstep, steps, nsteps));
    snprintf(names[*k], sizeof names[*k], "%s.weight_scale", base);
    e[*k] = (aw_st_entry){.name = names[*k], .dtype = m->scale_dtype, .ndim = 2, .shape = {ln->out, ng},
                          .data = steps};
    (*k)++;
    return AW_OK;
}


/* A weight-only linear's tensors (docs/checkpoint-format.md): the codes
 * packed row by row into `weight_packed` I32 [out, ceil(in * b / 32)], the
 * steps as `weight_scale` [out, ng], `weight_shape` I64 [2], and with zero
 * points `weight_zero_point` I32 [ceil(out * b / 32), ng]: each group's
 * column of zero points packed down the rows (compressed-tensors'
 * packed_dim 0). The stored codes are the signed values shifted by 2^(b-1),
 * which are our unsigned codes, and so are the stored zero points. The
 * steps must already be values of the scale dtype (aw_k_group_params rounds
 * them): what was validated is what is written. Regions come from *pb. */
static aw_status wo_linear_entries(int layer, const char *base, const aw_qlinear *ln, const aw_scheme *sc,
                                   const aw_method *m, uint8_t **pb, uint8_t *scratch, char (*names)[128],
                                   aw_st_entry *e, int *k)
{
    int b = sc->wbits, ng = aw_scheme_groups(sc, ln->in);
    size_t wpr = aw_k_packed_words((size_t)ln->in, b), zrows = aw_k_packed_words((size_t)ln->out, b);
    size_t nsteps = (size_t)ln->out * (size_t)ng;
    int64_t *shape = (int64_t *)*pb;
    shape[0] = ln->out;
    shape[1] = ln->in;
    uint32_t *words = (uint32_t *)(*pb + 2 * sizeof(int64_t));
    uint32_t *zw = words + wo_code_words(sc, ln->out, ln->in);
    uint8_t *steps = *pb + lin_region_bytes(m, ln->out, ln->in) - align8(nsteps * aw_dtype_size(m->scale_dtype));
    *pb += lin_region_bytes(m, ln->out, ln->in);

    for (int r = 0; r < ln->out; r++)
        aw_k_pack_bits(ln->codes + (size_t)r * ln->in, (size_t)ln->in, b, words + (size_t)r * wpr);
    snprintf(names[*k], sizeof names[*k], "%s.weight_packed", base);
    e[*k] = (aw_st_entry){.name = names[*k], .dtype = AW_DT_I32, .ndim = 2, .shape = {ln->out, (int64_t)wpr},
                          .data = words};
    (*k)++;

    AW_TRY(group_scale_entry(layer, base, ln, m, ng, steps, names, e, k));

    snprintf(names[*k], sizeof names[*k], "%s.weight_shape", base);
    e[*k] = (aw_st_entry){.name = names[*k], .dtype = AW_DT_I64, .ndim = 1, .shape = {2}, .data = shape};
    (*k)++;

    if (sc->sym) return AW_OK;
    /* scratch: one group's zero points down the rows, then their words */
    uint32_t *col_words = (uint32_t *)(scratch + align8((size_t)ln->out));
    for (int g = 0; g < ng; g++) {
        for (int r = 0; r < ln->out; r++) scratch[r] = ln->wzero[(size_t)r * ng + g];
        aw_k_pack_bits(scratch, (size_t)ln->out, b, col_words);
        for (size_t w = 0; w < zrows; w++) zw[w * (size_t)ng + (size_t)g] = col_words[w];
    }
    snprintf(names[*k], sizeof names[*k], "%s.weight_zero_point", base);
    e[*k] = (aw_st_entry){.name = names[*k], .dtype = AW_DT_I32, .ndim = 2, .shape = {(int64_t)zrows, ng},
                          .data = zw};
    (*k)++;
    return AW_OK;
}

/* A dynamic scheme's linear as compressed-tensors 0.20 writes it (format
 * int-quantized, docs/checkpoint-format.md): `weight` I8 [out, in] holding
 * the library's signed values q_s = code - 2^(b-1) (so w = (q_s - z_s)
 * step), `weight_scale` [out, ng] in the scale dtype and, asymmetric,
 * `weight_zero_point` I8 [out, ng] = zero - 2^(b-1) (unpacked). The steps
 * must already be values of the scale dtype. Regions come from *pb. */
static aw_status dyn_linear_entries(int layer, const char *base, const aw_qlinear *ln, const aw_scheme *sc,
                                    const aw_method *m, uint8_t **pb, char (*names)[128], aw_st_entry *e, int *k)
{
    int half = 1 << (sc->wbits - 1), ng = aw_scheme_groups(sc, ln->in);
    size_t nw = (size_t)ln->out * (size_t)ln->in, nsteps = (size_t)ln->out * (size_t)ng;
    int8_t *w = (int8_t *)*pb;
    uint8_t *steps = *pb + align8(nw);
    int8_t *z = (int8_t *)(steps + align8(nsteps * aw_dtype_size(m->scale_dtype)));
    *pb += lin_region_bytes(m, ln->out, ln->in);
    for (size_t i = 0; i < nw; i++) w[i] = (int8_t)((int)ln->codes[i] - half);
    snprintf(names[*k], sizeof names[*k], "%s.weight", base);
    e[*k] = (aw_st_entry){.name = names[*k], .dtype = AW_DT_I8, .ndim = 2, .shape = {ln->out, ln->in}, .data = w};
    (*k)++;
    AW_TRY(group_scale_entry(layer, base, ln, m, ng, steps, names, e, k));
    if (sc->sym) return AW_OK;
    for (size_t i = 0; i < nsteps; i++) z[i] = (int8_t)((int)ln->wzero[i] - half);
    snprintf(names[*k], sizeof names[*k], "%s.weight_zero_point", base);
    e[*k] = (aw_st_entry){.name = names[*k], .dtype = AW_DT_I8, .ndim = 2, .shape = {ln->out, ng}, .data = z};
    (*k)++;
    return AW_OK;
}

/* The final file's tensors of block `layer` into e (names in names), values
 * converted into buf (block_buf_bytes(c, m) bytes). q must have m's scheme. */
static aw_status block_entries(const aw_model_config *c, int layer, const aw_qblock *q,
                               const aw_method *m, char (*names)[128], uint8_t *buf, aw_st_entry *e)
{
    AW_RETURN_IF(!same_scheme(&q->scheme, &m->scheme), AW_ERR_ARG,
                 "layer %d: the quantized block's scheme is not the method's", layer);
    int k = 0, d = c->hidden_size, wo = aw_scheme_weight_only(&q->scheme), dyn = q->scheme.act == AW_ACT_DYNAMIC;
    size_t psz = aw_dtype_size(m->param_dtype);
    /* the per-linear regions first (8-byte aligned), then the scratch
     * column, then norms and biases in the param dtype */
    uint8_t *pb = buf;
    size_t max_out = 0;
    for (int l = 0; l < q->n_lin; l++) {
        pb += lin_region_bytes(m, q->lin[l].out, q->lin[l].in);
        if ((size_t)q->lin[l].out > max_out) max_out = (size_t)q->lin[l].out;
    }
    uint8_t *scratch = pb;
    pb += zero_scratch_bytes(&q->scheme, max_out);
    uint8_t *pp = pb;
    pb = buf;
    /* norms (folded) */
    for (int i = 0; i < 2 * AW_NORM_COUNT; i++) {
        if (i % 2 && !aw_arch_has_norm_bias(c)) continue;
        aw_tensor_ref r = {i % 2 ? AW_T_NORM_B : AW_T_NORM_W, i / 2};
        const float *v = i % 2 ? q->norm_b[i / 2] : q->norm_g[i / 2];
        aw_arch_tensor_name(c, layer, r, names[k], sizeof names[k]);
        AW_TRY(aw_convert_from_f32(m->param_dtype, v, pp, (size_t)d));
        e[k] = (aw_st_entry){.name = names[k], .dtype = m->param_dtype, .ndim = 1, .shape = {d}, .data = pp};
        k++;
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

        if (wo) {
            AW_TRY(wo_linear_entries(layer, base, ln, &q->scheme, m, &pb, scratch, names, e, &k));
        } else if (dyn) {
            AW_TRY(dyn_linear_entries(layer, base, ln, &q->scheme, m, &pb, names, e, &k));
        } else {
            snprintf(names[k], sizeof names[k], "%s.weight", base);
            e[k] = (aw_st_entry){.name = names[k], .dtype = AW_DT_I8, .ndim = 2,
                                 .shape = {ln->out, ln->in}, .data = ln->wq};
            k++;
            uint8_t *ws = pb, *xs = pb + aw_dtype_size(m->scale_dtype);
            pb += lin_region_bytes(m, ln->out, ln->in);
            AW_TRY(aw_convert_from_f32(m->scale_dtype, &ln->w_step, ws, 1));
            AW_TRY(aw_convert_from_f32(m->scale_dtype, &ln->x_step, xs, 1));
            snprintf(names[k], sizeof names[k], "%s.weight_scale", base);
            e[k] = (aw_st_entry){.name = names[k], .dtype = m->scale_dtype, .ndim = 1, .shape = {1}, .data = ws};
            k++;
            snprintf(names[k], sizeof names[k], "%s.input_scale", base);
            e[k] = (aw_st_entry){.name = names[k], .dtype = m->scale_dtype, .ndim = 1, .shape = {1}, .data = xs};
            k++;
        }

        if (!writes_bias(c, m, l)) continue;
        snprintf(names[k], sizeof names[k], "%s.bias", base);
        AW_TRY(aw_convert_from_f32(m->param_dtype, ln->bias, pp, (size_t)ln->out));
        e[k] = (aw_st_entry){.name = names[k], .dtype = m->param_dtype, .ndim = 1, .shape = {ln->out}, .data = pp};
        k++;
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
    aw_st_entry e[AW_BLOCK_OUT_TENSORS + AW_AUX_TENSORS];
    /* symmetric codes are read back with z = 2^(b-1) (no zero point is
     * stored): anything else would not survive the round trip */
    if (aw_scheme_coded(&q->scheme) && q->scheme.sym)
        for (int l = 0; l < q->n_lin; l++) {
            const aw_qlinear *ln = &q->lin[l];
            size_t nz = (size_t)ln->out * (size_t)aw_scheme_groups(&q->scheme, ln->in);
            for (size_t i = 0; i < nz; i++)
                AW_RETURN_IF(ln->wzero[i] != 1u << (q->scheme.wbits - 1), AW_ERR_ARG,
                             "layer %d: linear %d: zero point %u of a symmetric %d-bit scheme (must be %u)", layer,
                             l, ln->wzero[i], q->scheme.wbits, 1u << (q->scheme.wbits - 1));
        }
    /* compressed-tensors has no form for channels kept in floating point */
    AW_RETURN_IF(q->scheme.keep_pct > 0, AW_ERR_ARG,
                 "layer %d: kept fp channels (--keep-salient) cannot be written: compressed-tensors has no form for "
                 "them", layer);
    /* dynamic: the signed values the forward multiplies are what the
     * reader rebuilds from the stored codes and zero points */
    if (q->scheme.act == AW_ACT_DYNAMIC)
        for (int l = 0; l < q->n_lin; l++) {
            const aw_qlinear *ln = &q->lin[l];
            int ng = aw_scheme_groups(&q->scheme, ln->in), glen = aw_scheme_group_len(&q->scheme, ln->in);
            for (int r = 0; r < ln->out; r++)
                for (int j = 0; j < ln->in; j++) {
                    size_t i = (size_t)r * ln->in + j;
                    int want = (int)ln->codes[i] - (int)ln->wzero[(size_t)r * ng + j / glen];
                    AW_RETURN_IF(ln->wq[i] != want, AW_ERR_ARG,
                                 "layer %d: linear %d: signed weight [%d, %d] is %d, its code minus zero point %d",
                                 layer, l, r, j, ln->wq[i], want);
                }
        }
    uint8_t *buf = malloc(block_buf_bytes(c, m));
    AW_RETURN_IF(!buf, AW_ERR_NOMEM, "layer %d: out of memory", layer);
    aw_status st = block_entries(c, layer, q, m, names, buf, e);
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
    free(buf);
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

/* A weight-only linear of a shard back into ql: codes unpacked from
 * weight_packed, steps from weight_scale, zero points unpacked from
 * weight_zero_point (2^(b-1) when symmetric). words holds the largest
 * packed tensor, col one column of zero points and its words. */
static aw_status shard_wo_linear(const aw_st_file *f, const char *base, const aw_scheme *sc, aw_qlinear *ql,
                                 uint32_t *words, uint8_t *col, uint32_t *col_words)
{
    char name[160];
    int b = sc->wbits, ng = aw_scheme_groups(sc, ql->in);
    size_t wpr = aw_k_packed_words((size_t)ql->in, b), zrows = aw_k_packed_words((size_t)ql->out, b);
    snprintf(name, sizeof name, "%s.weight_packed", base);
    const aw_st_tensor *t = aw_st_find(f, name);
    AW_RETURN_IF(!t || t->dtype != AW_DT_I32 || t->ndim != 2 || t->shape[0] != ql->out || t->shape[1] != (int64_t)wpr,
                 AW_ERR_ST_SHAPE, "%s: tensor '%s' missing or not I32 [%d, %zu]", aw_st_label(f), name, ql->out, wpr);
    AW_TRY(aw_st_read(f, t, words, (size_t)ql->out * wpr * 4));
    for (int r = 0; r < ql->out; r++)
        aw_k_unpack_bits(words + (size_t)r * wpr, (size_t)ql->in, b, ql->codes + (size_t)r * ql->in);
    snprintf(name, sizeof name, "%s.weight_scale", base);
    AW_TRY(shard_f32(f, name, ql->wstep, (size_t)ql->out * (size_t)ng));
    snprintf(name, sizeof name, "%s.weight_shape", base);
    t = aw_st_find(f, name);
    int64_t shape[2] = {0, 0};
    if (t && t->dtype == AW_DT_I64 && aw_st_numel(t) == 2) AW_TRY(aw_st_read(f, t, shape, sizeof shape));
    AW_RETURN_IF(shape[0] != ql->out || shape[1] != ql->in, AW_ERR_ST_SHAPE,
                 "%s: tensor '%s' missing or not I64 {%d, %d}", aw_st_label(f), name, ql->out, ql->in);
    size_t nz = (size_t)ql->out * (size_t)ng;
    if (sc->sym) {
        memset(ql->wzero, 1 << (b - 1), nz);
        return AW_OK;
    }
    snprintf(name, sizeof name, "%s.weight_zero_point", base);
    t = aw_st_find(f, name);
    AW_RETURN_IF(!t || t->dtype != AW_DT_I32 || t->ndim != 2 || t->shape[0] != (int64_t)zrows || t->shape[1] != ng,
                 AW_ERR_ST_SHAPE, "%s: tensor '%s' missing or not I32 [%zu, %d]", aw_st_label(f), name, zrows, ng);
    AW_TRY(aw_st_read(f, t, words, zrows * (size_t)ng * 4));
    for (int g = 0; g < ng; g++) {
        for (size_t w = 0; w < zrows; w++) col_words[w] = words[w * (size_t)ng + (size_t)g];
        aw_k_unpack_bits(col_words, (size_t)ql->out, b, col);
        for (int r = 0; r < ql->out; r++) ql->wzero[(size_t)r * ng + g] = col[r];
    }
    return AW_OK;
}

/* A dynamic scheme's linear of a shard back into ql: codes from the I8
 * `weight` (q_s + 2^(b-1)), steps, zero points from the I8
 * `weight_zero_point` (2^(b-1) when symmetric), and wq = code - zero. */
static aw_status shard_dyn_linear(const aw_st_file *f, const char *base, const aw_scheme *sc, aw_qlinear *ql)
{
    char name[160];
    int half = 1 << (sc->wbits - 1), ng = aw_scheme_groups(sc, ql->in);
    size_t nw = (size_t)ql->out * (size_t)ql->in, nz = (size_t)ql->out * (size_t)ng;
    snprintf(name, sizeof name, "%s.weight", base);
    const aw_st_tensor *t = aw_st_find(f, name);
    AW_RETURN_IF(!t || t->dtype != AW_DT_I8 || t->ndim != 2 || t->shape[0] != ql->out || t->shape[1] != ql->in,
                 AW_ERR_ST_SHAPE, "%s: tensor '%s' missing or not I8 [%d, %d]", aw_st_label(f), name, ql->out, ql->in);
    AW_TRY(aw_st_read(f, t, ql->wq, nw)); /* the stored values, for now */
    for (size_t i = 0; i < nw; i++) ql->codes[i] = (uint8_t)(ql->wq[i] + half);
    snprintf(name, sizeof name, "%s.weight_scale", base);
    AW_TRY(shard_f32(f, name, ql->wstep, nz));
    if (sc->sym) {
        memset(ql->wzero, half, nz);
    } else {
        snprintf(name, sizeof name, "%s.weight_zero_point", base);
        t = aw_st_find(f, name);
        AW_RETURN_IF(!t || t->dtype != AW_DT_I8 || t->ndim != 2 || t->shape[0] != ql->out || t->shape[1] != ng,
                     AW_ERR_ST_SHAPE, "%s: tensor '%s' missing or not I8 [%d, %d]", aw_st_label(f), name, ql->out, ng);
        AW_TRY(aw_st_read(f, t, ql->wzero, nz));
        for (size_t i = 0; i < nz; i++) ql->wzero[i] = (uint8_t)((int8_t)ql->wzero[i] + half);
    }
    aw_qlinear_set_signed(ql);
    return AW_OK;
}

aw_status aw_block_from_shard(const aw_model_config *c, int layer, const uint8_t *bytes, size_t len,
                              const char *label, const char *run_key, aw_qblock *q)
{
    aw_st_file *f = NULL;
    AW_TRY(aw_st_open_mem(bytes, len, label, &f));
    aw_status st = AW_OK;
    uint32_t *words = NULL;
    const char *key = aw_st_metadata(f, "aweq_run");
    AW_GOTO_IF(!key || strcmp(key, run_key) != 0, AW_ERR_CHECKSUM,
               "%s: written by another run (options or inputs differ)", label);
    const aw_scheme *sc = &q->scheme;
    int wo = aw_scheme_weight_only(sc);
    size_t max_words = 0, max_out = 0;
    for (int l = 0; wo && l < q->n_lin; l++) {
        const aw_qlinear *ql = &q->lin[l];
        size_t nw = wo_code_words(sc, ql->out, ql->in), nz = wo_zero_words(sc, ql->out, ql->in);
        if (nw > max_words) max_words = nw;
        if (nz > max_words) max_words = nz;
        if ((size_t)ql->out > max_out) max_out = (size_t)ql->out;
    }
    size_t col_words = wo ? aw_k_packed_words(max_out, sc->wbits) : 0;
    /* one buffer: the packed words of one tensor, one column's words, then its bytes */
    words = malloc((max_words + col_words) * 4 + max_out + 1);
    AW_GOTO_IF(!words, AW_ERR_NOMEM, "%s: out of memory", label);
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
        if (wo) {
            AW_CHECK(shard_wo_linear(f, base, sc, ql, words, (uint8_t *)(words + max_words + col_words),
                                     words + max_words));
        } else if (sc->act == AW_ACT_DYNAMIC) {
            AW_CHECK(shard_dyn_linear(f, base, sc, ql));
        } else {
            snprintf(name, sizeof name, "%s.weight", base);
            const aw_st_tensor *t = aw_st_find(f, name);
            AW_GOTO_IF(!t || t->dtype != AW_DT_I8 || aw_st_numel(t) != (uint64_t)ql->in * ql->out,
                       AW_ERR_ST_SHAPE, "%s: tensor '%s' missing or not I8 [%d, %d]", label, name, ql->out, ql->in);
            AW_CHECK(aw_st_read(f, t, ql->wq, (size_t)ql->in * ql->out));
            snprintf(name, sizeof name, "%s.weight_scale", base);
            AW_CHECK(shard_f32(f, name, &ql->w_step, 1));
            snprintf(name, sizeof name, "%s.input_scale", base);
            AW_CHECK(shard_f32(f, name, &ql->x_step, 1));
        }
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
    free(words);
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
    uint8_t *buf = malloc(block_buf_bytes(c, m));
    aw_qblock q;
    memset(&q, 0, sizeof q);
    AW_GOTO_IF(!names || !files || !pn || !pf || !buf, AW_ERR_NOMEM, "out of memory");
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
    AW_CHECK(aw_qblock_create(c, &m->scheme, &q));
    for (int l = 0; l < L; l++) {
        aw_st_entry e[AW_BLOCK_OUT_TENSORS];
        AW_CHECK(block_entries(c, l, &q, m, names + k, buf, e));
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
    free(buf);
    free(names);
    free(files);
    free(pn);
    free(pf);
    return st;
}
