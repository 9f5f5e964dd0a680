/*
 * actq_layer.c - one realistic layer through the program's forward path
 * with integer activations, written out for tests/kernels/actq_ref.py,
 * which recomputes it in float64 (test_actq_ref).
 *
 * The layer: in 256, out 192 (the fc1 of an OPT shape with d 256, ffn 192),
 * T 64 tokens of activations with outlier channels (aw_ref_fill_outliers:
 * about one channel in 10 scaled 50-100x), weights normal with a few large
 * columns, quantized by aw_k_group_params / aw_k_group_quantize at 4 bits,
 * group 128, symmetric, steps rounded to F16 (the checkpoint dtype), signed
 * values q - z in wq. The output is aw_qlinear_ops on an aw_qblock of the
 * scheme (the forward every validation and evaluation runs) on the CPU
 * table. Three schemes: W4A4 g128 (activation groups of 128), W4A4 with
 * per-token activations, W4A8 per-token (weights g128 in each).
 *
 * File (little endian): "AWAQ", int32 cases; per case int32 T, in, out,
 * wbits, wgroup, abits, agroup; x (T, in) f32; codes (out, in) u8; wstep
 * (out, ngw) f32; wzero (out, ngw) u8; bias (out) f32; the program's input
 * codes (T, in) i8 and steps (T, nga) f32; y (T, out) f32.
 *
 * Usage: actq_layer OUT_FILE. Exit 0 on success.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_actq.h"
#include "aw_config.h"
#include "aw_forward.h"
#include "aw_lowbit.h"
#include "aw_model.h"
#include "aw_ops.h"
#include "aw_rng.h"
#include "kernels_ref.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "actq_layer: %s failed (line %d)\n", #c, __LINE__);                    \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)
#define TRY(st)                                                                                    \
    do {                                                                                           \
        if ((st) != AW_OK) {                                                                       \
            fprintf(stderr, "actq_layer: %s\n", aw_err_message());                                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

enum { T = 64, D = 256, FFN = 192 };

static void put(FILE *f, const void *p, size_t n) { CHECK(fwrite(p, 1, n, f) == n); }
static void put_i32(FILE *f, int32_t v) { put(f, &v, 4); }

static void run_case(FILE *f, const aw_model_config *c, const float *x, const float *w, const float *bias,
                     int wbits, int wgroup, int abits, int agroup)
{
    aw_scheme sc = {.wbits = wbits, .group = wgroup, .sym = 1, .act = AW_ACT_DYNAMIC, .abits = abits,
                    .agroup = agroup, .keep_pct = 0.0};
    TRY(aw_scheme_check(&sc));
    aw_qblock q;
    TRY(aw_qblock_create(c, &sc, &q));
    int l = -1;
    for (int k = 0; k < q.n_lin; k++)
        if (q.lin[k].in == D && q.lin[k].out == FFN) l = k;
    CHECK(l >= 0);
    aw_qlinear *ql = &q.lin[l];
    CHECK(ql->wq && ql->codes && ql->wstep && ql->wzero && ql->group == wgroup);
    int ngw = aw_act_groups(D, wgroup), nga = aw_act_groups(D, agroup);
    aw_k_group_params(w, FFN, D, wgroup, wbits, 1, AW_DT_F16, ql->wstep, ql->wzero);
    aw_k_group_quantize(w, FFN, D, wgroup, wbits, ql->wstep, ql->wzero, ql->codes);
    int glen = wgroup > 0 ? wgroup : D;
    for (int i = 0; i < FFN; i++)
        for (int j = 0; j < D; j++) {
            size_t k = (size_t)i * D + j;
            ql->wq[k] = (int8_t)((int)ql->codes[k] - (int)ql->wzero[(size_t)i * ngw + j / glen]);
        }
    memcpy(ql->bias, bias, FFN * sizeof(float));
    memcpy(ql->bias_plain, bias, FFN * sizeof(float));
    const aw_ops *o = aw_ops_cpu();
    aw_qlin_scratch s = {0};
    s.xq = malloc((size_t)T * D);
    s.xstep = malloc((size_t)T * nga * sizeof(float));
    s.gscratch = malloc(o->vt->gemm_groups_scratch(T, D, FFN, agroup, wgroup));
    float *y = malloc((size_t)T * FFN * sizeof(float));
    CHECK(s.xq && s.xstep && s.gscratch && y);
    TRY(aw_qlinear_ops(o, &q, l, x, y, T, &s));
    int32_t hdr[7] = {T, D, FFN, wbits, wgroup, abits, agroup};
    for (int k = 0; k < 7; k++) put_i32(f, hdr[k]);
    put(f, x, (size_t)T * D * sizeof(float));
    put(f, ql->codes, (size_t)FFN * D);
    put(f, ql->wstep, (size_t)FFN * ngw * sizeof(float));
    put(f, ql->wzero, (size_t)FFN * ngw);
    put(f, ql->bias, FFN * sizeof(float));
    put(f, s.xq, (size_t)T * D);
    put(f, s.xstep, (size_t)T * nga * sizeof(float));
    put(f, y, (size_t)T * FFN * sizeof(float));
    printf("actq_layer: W%dA%d wgroup %d agroup %d: %d x %d -> %d\n", wbits, abits, wgroup, agroup, T, D, FFN);
    free(s.xq), free(s.xstep), free(s.gscratch), free(y);
    aw_qblock_destroy(&q);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: actq_layer OUT_FILE\n");
        return 2;
    }
    aw_model_config c = *aw_shape_find("opt-125m");
    c.name[0] = '\0';
    c.hidden_size = D;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 4;
    c.head_dim = D / 4;
    c.ffn_dim = FFN;
    c.word_embed_proj_dim = D;
    c.num_hidden_layers = 1;
    c.vocab_size = 512;
    float *x = malloc((size_t)T * D * sizeof(float)), *w = malloc((size_t)FFN * D * sizeof(float));
    float *b = malloc(FFN * sizeof(float));
    CHECK(x && w && b);
    aw_ref_fill_outliers(x, T, D, 2026, "actq-layer-x");
    aw_rng r;
    aw_rng_seed(&r, 2026, "actq-layer-w");
    for (size_t k = 0; k < (size_t)FFN * D; k++) w[k] = (float)(0.02 * aw_rng_normal(&r));
    for (int i = 0; i < FFN; i++) {
        w[(size_t)i * D + 17] *= 8.0f; /* a few large weight columns */
        w[(size_t)i * D + 200] *= 5.0f;
    }
    for (int i = 0; i < FFN; i++) b[i] = (float)(0.1 * aw_rng_normal(&r));
    FILE *f = fopen(argv[1], "wb");
    CHECK(f);
    put(f, "AWAQ", 4);
    put_i32(f, 3);
    run_case(f, &c, x, w, b, 4, 128, 4, 128);
    run_case(f, &c, x, w, b, 4, 128, 4, 0);
    run_case(f, &c, x, w, b, 4, 128, 8, 0);
    CHECK(fclose(f) == 0);
    free(x), free(w), free(b);
    return 0;
}
