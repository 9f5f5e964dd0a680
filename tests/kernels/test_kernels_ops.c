/*
 * test_kernels_ops.c - the LLaMA entries of the CPU kernel tables (aw_ops.h):
 * rmsnorm, swiglu, rope, embed without positions, grouped-query attention,
 * the low-bit entries gram_accum and dequant_groups (test_lowbit.c
 * holds those to float64 references), and quantization's entries (widen,
 * absmax, row/col_absmax, div_rows, bias_delta(_i8), group_params /
 * quantize, search_err, gptq), on aw_ops_cpu() and on
 * aw_ops_cpu_staged() (inputs uploaded with to_dev into poisoned "device"
 * buffers, results read back with to_host). Each must give the bits of
 * the aw_k_* kernel it wraps (test_kernels.c holds those to float64
 * references), and the arguments a kernel cannot take must fail with
 * AW_ERR_ARG naming them. Random data with outliers as in
 * test_kernels.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_kernels.h"
#include "aw_lowbit.h"
#include "aw_ops.h"
#include "aw_quant_k.h"
#include "aw_rng.h"
#include "kernels_ref.h"
#include "testutil.h"

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    assert_non_null(p);
    return p;
}

/* A "device" copy of n bytes of host memory in o's memory. */
static void *up(const aw_ops *o, const void *src, size_t n)
{
    void *d = NULL;
    aw_assert_status(o->vt->alloc(o, &d, n, "test input"), AW_OK, NULL);
    aw_assert_status(o->vt->to_dev(o, d, src, n), AW_OK, NULL);
    return d;
}

/* A "device" buffer of n bytes: 0xff (NaN) bytes, so an unwritten output
 * cannot pass. */
static void *poison(const aw_ops *o, size_t n)
{
    void *d = NULL;
    aw_assert_status(o->vt->alloc(o, &d, n, "test output"), AW_OK, NULL);
    unsigned char *ff = xcalloc(n, 1);
    memset(ff, 0xff, n);
    aw_assert_status(o->vt->to_dev(o, d, ff, n), AW_OK, NULL);
    free(ff);
    return d;
}

/* Read n bytes back and compare them with want. */
static void down_equal(const aw_ops *o, const void *dev, const void *want, size_t n)
{
    void *h = xcalloc(n, 1);
    aw_assert_status(o->vt->to_host(o, h, dev, n), AW_OK, NULL);
    aw_assert_status(o->vt->sync(o), AW_OK, NULL);
    assert_memory_equal(h, want, n);
    free(h);
}

static const aw_ops *table(int i) { return i == 0 ? aw_ops_cpu() : aw_ops_cpu_staged(); }

static void test_ops_rmsnorm_swiglu(void **state)
{
    (void)state;
    enum { T = 5, D = 301 };
    size_t n = (size_t)T * D;
    float *x = xcalloc(n, 4), *g = xcalloc(D, 4), *u = xcalloc(n, 4), *want = xcalloc(n, 4);
    aw_ref_fill_outliers(x, T, D, 200, "x");
    aw_ref_fill_outliers(g, 1, D, 200, "g");
    aw_ref_fill_outliers(u, T, D, 200, "u");
    for (int t = 0; t < 2; t++) {
        const aw_ops *o = table(t);
        float *dx = up(o, x, n * 4), *dg = up(o, g, D * 4), *du = up(o, u, n * 4);
        float *dy = poison(o, n * 4);
        aw_k_rmsnorm(x, g, want, T, D, 1e-5f);
        aw_assert_status(o->vt->rmsnorm(o, dx, dg, dy, T, D, 1e-5f), AW_OK, NULL);
        down_equal(o, dy, want, n * 4);
        aw_k_swiglu(x, u, want, n);
        aw_assert_status(o->vt->swiglu(o, dx, du, dy, n), AW_OK, NULL);
        down_equal(o, dy, want, n * 4);
        aw_assert_status(o->vt->swiglu(o, dx, du, dx, n), AW_OK, NULL); /* out aliasing gate */
        down_equal(o, dx, want, n * 4);
        o->vt->release(o, dx), o->vt->release(o, dg), o->vt->release(o, du);
        o->vt->release(o, dy);
    }
    free(x), free(g), free(u), free(want);
}

static void test_ops_embed_rope(void **state)
{
    (void)state;
    enum { NSEQ = 2, L = 7, V = 20, H = 3, HD = 10, D = H * HD };
    size_t n = (size_t)NSEQ * L * D;
    float *E = xcalloc((size_t)V * D, 4), *P = xcalloc((size_t)(L + 2) * D, 4);
    float *want = xcalloc(n, 4);
    uint32_t tok[NSEQ * L];
    aw_ref_fill_outliers(E, V, D, 210, "E");
    aw_ref_fill_outliers(P, L + 2, D, 210, "P");
    aw_rng r;
    aw_rng_seed(&r, 210, "tok");
    for (int i = 0; i < NSEQ * L; i++) tok[i] = (uint32_t)aw_rng_below(&r, V);
    for (int t = 0; t < 2; t++) {
        const aw_ops *o = table(t);
        float *dE = up(o, E, (size_t)V * D * 4), *dP = up(o, P, (size_t)(L + 2) * D * 4);
        uint32_t *dt = up(o, tok, sizeof tok);
        float *dh = poison(o, n * 4);
        /* OPT: positions offset by 2 */
        aw_k_embed(tok, NSEQ, L, E, P, 2, D, want);
        aw_assert_status(o->vt->embed(o, dt, NSEQ, L, dE, dP, 2, D, dh), AW_OK, NULL);
        down_equal(o, dh, want, n * 4);
        /* LLaMA: no position table, then RoPE on the embeddings */
        aw_k_embed(tok, NSEQ, L, E, NULL, 0, D, want);
        aw_assert_status(o->vt->embed(o, dt, NSEQ, L, dE, NULL, 0, D, dh), AW_OK, NULL);
        down_equal(o, dh, want, n * 4);
        aw_k_rope(want, NSEQ, L, H, HD, 10000.0f);
        aw_assert_status(o->vt->rope(o, dh, NSEQ, L, H, HD, 10000.0f), AW_OK, NULL);
        down_equal(o, dh, want, n * 4);
        /* an odd head_dim has no halves */
        aw_assert_status(o->vt->rope(o, dh, NSEQ, L, 1, 5, 10000.0f), AW_ERR_ARG, "head_dim 5");
        aw_err_clear();
        o->vt->release(o, dE), o->vt->release(o, dP), o->vt->release(o, dt);
        o->vt->release(o, dh);
    }
    free(E), free(P), free(want);
}

static void test_ops_attention_gqa(void **state)
{
    (void)state;
    enum { NSEQ = 2, L = 19, H = 6, KV = 2, HD = 8, D = H * HD, DKV = KV * HD, HPC = 4 };
    size_t n = (size_t)NSEQ * L * D, nkv = (size_t)NSEQ * L * DKV;
    float *q = xcalloc(n, 4), *k = xcalloc(nkv, 4), *v = xcalloc(nkv, 4), *want = xcalloc(n, 4);
    aw_ref_fill_outliers(q, NSEQ * L, D, 220, "q");
    aw_ref_fill_outliers(k, NSEQ * L, DKV, 220, "k");
    aw_ref_fill_outliers(v, NSEQ * L, DKV, 220, "v");
    for (size_t i = 0; i < n; i++) q[i] *= 0.05f;
    for (size_t i = 0; i < nkv; i++) k[i] *= 0.05f;
    float scale = 1.0f / sqrtf((float)HD);
    for (int t = 0; t < 2; t++) {
        const aw_ops *o = table(t);
        size_t wsn = o->vt->attention_workspace(L, HPC);
        float *wh = xcalloc(wsn, 4);
        aw_k_attention(q, k, v, want, NSEQ, L, H, KV, D, scale, HPC, wh);
        float *dq = up(o, q, n * 4), *dk = up(o, k, nkv * 4), *dv = up(o, v, nkv * 4);
        float *dout = poison(o, n * 4), *dws = poison(o, wsn * 4);
        aw_assert_status(o->vt->attention(o, dq, dk, dv, dout, NSEQ, L, H, KV, D, scale, HPC, dws),
                         AW_OK, NULL);
        down_equal(o, dout, want, n * 4);
        /* kv heads that do not divide the heads, heads that do not divide d */
        aw_assert_status(o->vt->attention(o, dq, dk, dv, dout, NSEQ, L, H, 4, D, scale, HPC, dws),
                         AW_ERR_ARG, "4 kv heads");
        aw_assert_status(o->vt->attention(o, dq, dk, dv, dout, NSEQ, L, 5, 5, D, scale, HPC, dws),
                         AW_ERR_ARG, "width 48");
        aw_assert_status(o->vt->attention(o, dq, dk, dv, dout, NSEQ, L, H, 0, D, scale, HPC, dws),
                         AW_ERR_ARG, "0 kv heads");
        aw_err_clear();
        o->vt->release(o, dq), o->vt->release(o, dk), o->vt->release(o, dv);
        o->vt->release(o, dout), o->vt->release(o, dws);
        free(wh);
    }
    free(q), free(k), free(v), free(want);
}

/* The low-bit entries: gram_accum (two calls accumulating into a zeroed
 * matrix and |x| sums, the upper triangle left as zeroed) and
 * dequant_groups with a partial last group, against aw_k_gram_accum and
 * aw_k_group_dequantize on the host. */
static void test_ops_lowbit(void **state)
{
    (void)state;
    enum { T = 37, IN = 200, OUT = 9, G = 64, NG = (IN + G - 1) / G };
    size_t nx = (size_t)T * IN, nh = (size_t)IN * IN, nw = (size_t)OUT * IN;
    float *x = xcalloc(nx, 4), *h = xcalloc(nh, 4), *step = xcalloc(OUT * NG, 4), *w = xcalloc(nw, 4);
    double *as = xcalloc(IN, 8);
    uint8_t *q = xcalloc(nw, 1), *zero = xcalloc(OUT * NG, 1);
    aw_ref_fill_outliers(x, T, IN, 230, "x");
    aw_ref_fill_outliers(step, OUT, NG, 230, "s");
    aw_rng r;
    aw_rng_seed(&r, 230, "q");
    for (size_t i = 0; i < nw; i++) q[i] = (uint8_t)aw_rng_below(&r, 16);
    for (int i = 0; i < OUT * NG; i++) zero[i] = (uint8_t)aw_rng_below(&r, 16), step[i] = fabsf(step[i]) * 0.01f;
    aw_k_gram_accum(x, 20, IN, h, as);
    aw_k_gram_accum(x + 20 * IN, T - 20, IN, h, as);
    aw_k_group_dequantize(q, step, zero, OUT, IN, G, w);
    for (int t = 0; t < 2; t++) {
        const aw_ops *o = table(t);
        float *dx = up(o, x, nx * 4), *ds = up(o, step, OUT * NG * 4);
        uint8_t *dq = up(o, q, nw), *dz = up(o, zero, OUT * NG);
        float *dh = poison(o, nh * 4), *dw = poison(o, nw * 4);
        double *das = poison(o, IN * 8);
        aw_assert_status(o->vt->zero(o, dh, nh * 4), AW_OK, NULL);
        aw_assert_status(o->vt->zero(o, das, IN * 8), AW_OK, NULL);
        aw_assert_status(o->vt->gram_accum(o, dx, 20, IN, dh, das), AW_OK, NULL);
        aw_assert_status(o->vt->gram_accum(o, dx + 20 * IN, T - 20, IN, dh, das), AW_OK, NULL);
        down_equal(o, dh, h, nh * 4);
        down_equal(o, das, as, IN * 8);
        aw_assert_status(o->vt->dequant_groups(o, dq, ds, dz, OUT, IN, G, dw), AW_OK, NULL);
        down_equal(o, dw, w, nw * 4);
        o->vt->release(o, dx), o->vt->release(o, ds), o->vt->release(o, dq), o->vt->release(o, dz);
        o->vt->release(o, dh), o->vt->release(o, dw), o->vt->release(o, das);
    }
    free(x), free(h), free(step), free(w), free(as), free(q), free(zero);
}

/* Quantization's entries: each must give the bits of the aw_k_* kernel it
 * wraps, on both tables (the staged one from poisoned buffers). */
static void test_ops_quant(void **state)
{
    (void)state;
    enum { OUT = 13, IN = 150, G = 32, NG = (IN + G - 1) / G };
    size_t nw = (size_t)OUT * IN;
    float *w = xcalloc(nw, 4), *s = xcalloc(IN, 4), *rs = xcalloc(OUT, 4), *b = xcalloc(OUT, 4);
    float *want = xcalloc(nw, 4), *deq = xcalloc(nw, 4), *step = xcalloc(OUT * NG, 4);
    double *mean = xcalloc(IN, 8), *dl = xcalloc(OUT, 8), *Gm = xcalloc((size_t)IN * IN, 8);
    uint16_t *h16 = xcalloc(nw, 2), *b16 = xcalloc(nw, 2);
    int8_t *wq = xcalloc(nw, 1);
    uint8_t *codes = xcalloc(nw, 1), *zero = xcalloc(OUT * NG, 1);
    aw_ref_fill_outliers(w, OUT, IN, 240, "w");
    aw_ref_fill_outliers(deq, OUT, IN, 240, "deq");
    aw_ref_fill_outliers(s, 1, IN, 240, "s");
    aw_ref_fill_outliers(rs, 1, OUT, 240, "rs");
    aw_ref_fill_outliers(b, 1, OUT, 240, "b");
    for (int j = 0; j < IN; j++) s[j] = fabsf(s[j]) + 0.25f, mean[j] = s[j] * 0.5 - 0.3;
    for (int i = 0; i < OUT; i++) rs[i] = fabsf(rs[i]) + 0.5f;
    for (size_t i = 0; i < nw; i++) h16[i] = aw_f32_to_f16(w[i] * 0.01f), b16[i] = aw_f32_to_bf16(w[i]);
    /* a positive definite G: X^T X of random rows, in double */
    {
        float *x = xcalloc((size_t)2 * IN * IN, 4);
        aw_ref_fill_outliers(x, 2 * IN, IN, 240, "x");
        for (int i = 0; i < IN; i++)
            for (int j = 0; j < IN; j++) {
                double a = 0.0;
                for (int t = 0; t < 2 * IN; t++) a += (double)x[(size_t)t * IN + i] * x[(size_t)t * IN + j];
                Gm[(size_t)i * IN + j] = a;
            }
        free(x);
    }
    float step8 = aw_k_int8_step(aw_k_absmax(w, nw));
    aw_k_quantize_i8(w, nw, step8, wq);
    for (int t = 0; t < 2; t++) {
        const aw_ops *o = table(t);
        float *dw = up(o, w, nw * 4), *ds = up(o, s, IN * 4), *drs = up(o, rs, OUT * 4), *db = up(o, b, OUT * 4);
        float *ddeq = up(o, deq, nw * 4), *dy = poison(o, nw * 4), *dr = poison(o, IN * 4);
        float *dstep = poison(o, OUT * NG * 4);
        uint16_t *dh16 = up(o, h16, nw * 2), *db16 = up(o, b16, nw * 2);
        int8_t *dwq = up(o, wq, nw);
        uint8_t *dcodes = poison(o, nw), *dzero = poison(o, OUT * NG);
        double *dmean = up(o, mean, IN * 8), *ddl = poison(o, OUT * 8), *dG = up(o, Gm, (size_t)IN * IN * 8);
        double *dacc = poison(o, 8);
        /* widen: F16, BF16, F32 */
        aw_assert_status(aw_convert_to_f32(AW_DT_F16, h16, want, nw), AW_OK, NULL);
        aw_assert_status(o->vt->widen(o, dh16, AW_DT_F16, dy, nw), AW_OK, NULL);
        down_equal(o, dy, want, nw * 4);
        aw_assert_status(aw_convert_to_f32(AW_DT_BF16, b16, want, nw), AW_OK, NULL);
        aw_assert_status(o->vt->widen(o, db16, AW_DT_BF16, dy, nw), AW_OK, NULL);
        down_equal(o, dy, want, nw * 4);
        aw_assert_status(o->vt->widen(o, dw, AW_DT_F32, dy, nw), AW_OK, NULL);
        down_equal(o, dy, w, nw * 4);
        /* ranges */
        float m1 = aw_k_absmax(w, nw);
        aw_assert_status(o->vt->absmax(o, dw, nw, dr), AW_OK, NULL);
        down_equal(o, dr, &m1, 4);
        aw_k_row_absmax(w, OUT, IN, want);
        aw_assert_status(o->vt->row_absmax(o, dw, OUT, IN, dr), AW_OK, NULL);
        down_equal(o, dr, want, OUT * 4);
        memset(want, 0, IN * 4);
        aw_k_col_absmax(w, OUT, IN, want);
        aw_k_col_absmax(deq, OUT, IN, want); /* running over two tensors */
        aw_assert_status(o->vt->zero(o, dr, IN * 4), AW_OK, NULL);
        aw_assert_status(o->vt->col_absmax(o, dw, OUT, IN, dr), AW_OK, NULL);
        aw_assert_status(o->vt->col_absmax(o, ddeq, OUT, IN, dr), AW_OK, NULL);
        down_equal(o, dr, want, IN * 4);
        /* bias corrections */
        aw_k_bias_delta_i8(w, wq, step8, mean, OUT, IN, dl);
        aw_assert_status(o->vt->bias_delta_i8(o, dw, dwq, step8, dmean, OUT, IN, ddl), AW_OK, NULL);
        down_equal(o, ddl, dl, OUT * 8);
        aw_k_bias_delta(w, deq, mean, OUT, IN, dl);
        aw_assert_status(o->vt->bias_delta(o, dw, ddeq, dmean, OUT, IN, ddl), AW_OK, NULL);
        down_equal(o, ddl, dl, OUT * 8);
        /* group steps and codes, F16 steps */
        aw_k_group_params(w, OUT, IN, G, 4, 0, AW_DT_F16, step, zero);
        aw_k_group_quantize(w, OUT, IN, G, 4, step, zero, codes);
        aw_assert_status(o->vt->group_params(o, dw, OUT, IN, G, 4, 0, AW_DT_F16, dstep, dzero), AW_OK, NULL);
        down_equal(o, dstep, step, OUT * NG * 4);
        down_equal(o, dzero, zero, OUT * NG);
        aw_assert_status(o->vt->group_quantize(o, dw, OUT, IN, G, 4, dstep, dzero, dcodes), AW_OK, NULL);
        down_equal(o, dcodes, codes, nw);
        /* the search's objective, accumulated over two calls */
        double acc = 0.0;
        aw_assert_status(aw_k_search_err(w, OUT, IN, s, Gm, G, 4, 1, AW_DT_F32, &acc), AW_OK, NULL);
        aw_assert_status(aw_k_search_err(deq, OUT, IN, s, Gm, 0, 3, 0, AW_DT_BF16, &acc), AW_OK, NULL);
        assert_true(isfinite(acc) && acc > 0.0);
        aw_assert_status(o->vt->zero(o, dacc, 8), AW_OK, NULL);
        aw_assert_status(o->vt->search_err(o, dw, OUT, IN, ds, dG, G, 4, 1, AW_DT_F32, dacc), AW_OK, NULL);
        aw_assert_status(o->vt->search_err(o, ddeq, OUT, IN, ds, dG, 0, 3, 0, AW_DT_BF16, dacc), AW_OK, NULL);
        down_equal(o, dacc, &acc, 8);
        /* row folds */
        memcpy(want, w, nw * 4);
        float bw[OUT];
        memcpy(bw, b, sizeof bw);
        aw_k_div_rows(want, bw, OUT, IN, rs);
        aw_assert_status(o->vt->copy(o, dy, dw, nw * 4), AW_OK, NULL);
        aw_assert_status(o->vt->div_rows(o, dy, db, OUT, IN, drs), AW_OK, NULL);
        down_equal(o, dy, want, nw * 4);
        down_equal(o, db, bw, OUT * 4);
        /* GPTQ: with and without act_order, the plan from G */
        for (int act = 0; act < 2; act++) {
            aw_gptq_opts go = {.bits = 4, .group = G, .sym = 0, .act_order = act, .block = 64, .damp_frac = 0.01,
                               .sdt = AW_DT_F16};
            aw_gptq_plan plan;
            memcpy(want, w, nw * 4);
            aw_assert_status(aw_k_gptq(want, Gm, OUT, IN, &go, step, zero, codes), AW_OK, NULL);
            aw_assert_status(aw_k_gptq_plan(Gm, IN, &go, &plan), AW_OK, NULL);
            aw_assert_status(o->vt->copy(o, dy, dw, nw * 4), AW_OK, NULL);
            aw_assert_status(o->vt->gptq(o, dy, &plan, OUT, &go, dstep, dzero, dcodes), AW_OK, NULL);
            aw_k_gptq_plan_free(&plan);
            down_equal(o, dy, want, nw * 4);
            down_equal(o, dstep, step, OUT * NG * 4);
            down_equal(o, dzero, zero, OUT * NG);
            down_equal(o, dcodes, codes, nw);
        }
        o->vt->release(o, dw), o->vt->release(o, ds), o->vt->release(o, drs), o->vt->release(o, db);
        o->vt->release(o, ddeq), o->vt->release(o, dy), o->vt->release(o, dr), o->vt->release(o, dstep);
        o->vt->release(o, dh16), o->vt->release(o, db16), o->vt->release(o, dwq), o->vt->release(o, dcodes);
        o->vt->release(o, dzero), o->vt->release(o, dmean), o->vt->release(o, ddl), o->vt->release(o, dG);
        o->vt->release(o, dacc);
    }
    free(w), free(s), free(rs), free(b), free(want), free(deq), free(step), free(mean), free(dl), free(Gm);
    free(h16), free(b16), free(wq), free(codes), free(zero);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_rmsnorm_swiglu),
        cmocka_unit_test(test_ops_embed_rope),
        cmocka_unit_test(test_ops_attention_gqa),
        cmocka_unit_test(test_ops_lowbit),
        cmocka_unit_test(test_ops_quant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
