/*
 * test_kernels_ops.c - the LLaMA entries of the CPU kernel tables (aw_ops.h):
 * rmsnorm, swiglu, rope, embed without positions, grouped-query attention,
 * and the low-bit entries gram_accum and dequant_groups (test_lowbit.c
 * holds those to float64 references), on aw_ops_cpu() and on
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_rmsnorm_swiglu),
        cmocka_unit_test(test_ops_embed_rope),
        cmocka_unit_test(test_ops_attention_gqa),
        cmocka_unit_test(test_ops_lowbit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
