/*
 * test_actq_cuda.c - the dynamic activation entries of the CUDA ops table
 * (act_quant, act_fakequant, gemm_groups, gather_cols, add_linear;
 * aw_kc_lowbit.h) against the CPU table (aw_ops_cpu(), whose kernels
 * tests/kernels/test_actq.c holds to float64 references), through the table
 * as the pipeline calls them: inputs uploaded with to_dev, outputs in
 * poisoned (0xff) device buffers, read back with to_host. Activations with
 * outlier channels (aw_ref_fill_outliers), a NaN and an Inf input, an
 * all-zero row, kept-channel masks; bits 4..8; groups 0/32/64/128 on widths
 * that are not multiples of the group, weight and activation groups nested
 * both ways; OPT-125m's 768 and 3072; T = 1 and tails of the 64 x 64 tiles.
 *
 * Exact (bit for bit): steps, codes, fake-quantized values, the grouped
 * product (the same integer and double arithmetic in the same order),
 * gather_cols. add_linear (cuBLAS sgemm, another order): |y - y_cpu| <=
 * 1e-5 * (|y0| + sum_k |xk wk|) per element.
 * A second run of the product gives the same bits.
 *
 * No CUDA device: prints "skipped: no CUDA device (<reason>)" and exits 77.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_actq.h"
#include "aw_ops.h"
#include "aw_rng.h"
#include "cuda/aw_cuda.h"
#include "kernels_ref.h"

static int g_pass, g_fail;
static aw_ops *g_cu;
static int g_ok;

#define DEV(expr)                                                                                  \
    do {                                                                                           \
        aw_status dev_st_ = (expr);                                                                \
        if (dev_st_ != AW_OK) {                                                                    \
            fprintf(stderr, "%s:%d: %s: %s [%s] (%s)\n", __FILE__, __LINE__, #expr,                \
                    aw_status_name(dev_st_), aw_err_message(), aw_err_where());                    \
            g_ok = 0;                                                                              \
        }                                                                                          \
    } while (0)

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        fprintf(stderr, "test_actq_cuda: out of host memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

static void *up(const void *src, size_t n)
{
    void *d = NULL;
    DEV(g_cu->vt->alloc(g_cu, &d, n ? n : 1, "test input"));
    if (d && n && src) DEV(g_cu->vt->to_dev(g_cu, d, src, n));
    return d;
}

static void *poison(size_t n)
{
    unsigned char *ff = xmalloc(n);
    memset(ff, 0xff, n);
    void *d = up(ff, n);
    free(ff);
    return d;
}

static void down(void *dst, const void *src, size_t n)
{
    if (src && n && g_ok) DEV(g_cu->vt->to_host(g_cu, dst, src, n));
    DEV(g_cu->vt->sync(g_cu));
}

static void rel(void *d) { g_cu->vt->release(g_cu, d); }

static size_t n_diff(const void *a, const void *b, size_t n, size_t elem)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += memcmp((const char *)a + i * elem, (const char *)b + i * elem, elem) != 0;
    return c;
}

static void report(const char *what, const char *shape, const char *metric, double err, double tol, int ok)
{
    if (ok) g_pass++;
    else g_fail++;
    char e[32], t[32];
    if (err < 0) snprintf(e, sizeof e, "-");
    else snprintf(e, sizeof e, "%.3g", err);
    if (tol < 0) snprintf(t, sizeof t, "exact");
    else snprintf(t, sizeof t, "%.0e", tol);
    printf("%-14s %-26s %-22s %10s %8s  %s\n", what, shape, metric, e, t, ok ? "ok" : "FAILED");
}

static void report_exact(const char *what, const char *shape, const char *metric, size_t diffs)
{
    char m[64];
    snprintf(m, sizeof m, "%s: %zu differ", metric, diffs);
    report(what, shape, m, -1, -1, g_ok && diffs == 0);
}

static void fill_x(float *x, int T, int in, uint64_t seed)
{
    aw_ref_fill_outliers(x, T, in, seed, "actq-cuda-x");
    if (T > 1)
        for (int j = 0; j < in; j++) x[(size_t)in + j] = 0.0f;
    if (T > 3) x[(size_t)3 * in + in / 2] = NAN;
    if (T > 5) x[(size_t)5 * in + in - 1] = INFINITY;
}

/* act_quant and act_fakequant (out of place and in place) */
static void check_act(int T, int in, int bits, int A, int masked, uint64_t seed)
{
    g_ok = 1;
    const aw_ops *cpu = aw_ops_cpu();
    int nga = aw_act_groups(in, A);
    size_t nx = (size_t)T * in, ns = (size_t)T * nga;
    float *x = xmalloc(nx * 4), *m = xmalloc((size_t)in * 4), *s = xmalloc(ns * 4), *sg = xmalloc(ns * 4);
    float *f = xmalloc(nx * 4), *fg = xmalloc(nx * 4), *fg2 = xmalloc(nx * 4);
    int8_t *q = xmalloc(nx), *qg = xmalloc(nx);
    fill_x(x, T, in, seed);
    for (int j = 0; j < in; j++) m[j] = j % 5 == 1 ? 0.0f : 1.0f;
    const float *mk = masked ? m : NULL;
    cpu->vt->act_quant(cpu, x, T, in, bits, A, mk, q, s);
    cpu->vt->act_fakequant(cpu, x, f, T, in, bits, A, mk);
    void *dx = up(x, nx * 4), *dm = masked ? up(m, (size_t)in * 4) : NULL;
    void *dq = poison(nx), *ds = poison(ns * 4), *df = poison(nx * 4);
    DEV(g_cu->vt->act_quant(g_cu, dx, T, in, bits, A, dm, dq, ds));
    DEV(g_cu->vt->act_fakequant(g_cu, dx, df, T, in, bits, A, dm));
    down(qg, dq, nx);
    down(sg, ds, ns * 4);
    down(fg, df, nx * 4);
    DEV(g_cu->vt->act_fakequant(g_cu, dx, dx, T, in, bits, A, dm)); /* in place */
    down(fg2, dx, nx * 4);
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d b%d A%d%s", T, in, bits, A, masked ? " mask" : "");
    report_exact("act_quant", shape, "codes", n_diff(q, qg, nx, 1));
    report_exact("act_quant", shape, "steps", n_diff(s, sg, ns, 4));
    report_exact("act_fakequant", shape, "values", n_diff(f, fg, nx, 4));
    report_exact("act_fakequant", shape, "in place", n_diff(f, fg2, nx, 4));
    rel(dx), rel(dq), rel(ds), rel(df);
    if (dm) rel(dm);
    free(x), free(m), free(s), free(sg), free(f), free(fg), free(fg2), free(q), free(qg);
}

/* gemm_groups on codes of real activations and random signed weights */
static void check_gemm(int T, int in, int out, int A, int W, int abits, int wbits, int bias, uint64_t seed)
{
    g_ok = 1;
    const aw_ops *cpu = aw_ops_cpu();
    int nga = aw_act_groups(in, A), ngw = aw_act_groups(in, W);
    size_t nx = (size_t)T * in, nw = (size_t)out * in, ny = (size_t)T * out;
    float *x = xmalloc(nx * 4), *xs = xmalloc((size_t)T * nga * 4), *ws = xmalloc((size_t)out * ngw * 4);
    float *b = xmalloc((size_t)out * 4), *y = xmalloc(ny * 4), *yg = xmalloc(ny * 4), *yg2 = xmalloc(ny * 4);
    int8_t *xq = xmalloc(nx), *wq = xmalloc(nw);
    aw_ref_fill_outliers(x, T, in, seed, "actq-cuda-gx");
    cpu->vt->act_quant(cpu, x, T, in, abits, A, NULL, xq, xs);
    aw_rng r;
    aw_rng_seed(&r, seed, "actq-cuda-w");
    int wl = -(1 << (wbits - 1)), wn = 1 << wbits;
    for (size_t k = 0; k < nw; k++) wq[k] = (int8_t)(wl + (int)aw_rng_below(&r, (uint64_t)wn));
    if (wbits == 8)
        for (int j = 0; j < in; j++) wq[j] = -128;
    if (abits == 8)
        for (int j = 0; j < in; j++) xq[j] = -128;
    for (size_t k = 0; k < (size_t)out * ngw; k++) ws[k] = (float)(0.001 + 0.05 * aw_rng_uniform(&r));
    for (int i = 0; i < out; i++) b[i] = (float)aw_rng_normal(&r);
    void *scr = xmalloc(cpu->vt->gemm_groups_scratch(T, in, out, A, W));
    DEV(cpu->vt->gemm_groups(cpu, xq, xs, A, wq, ws, W, bias ? b : NULL, y, T, in, out, scr));
    void *dxq = up(xq, nx), *dxs = up(xs, (size_t)T * nga * 4), *dwq = up(wq, nw);
    void *dws = up(ws, (size_t)out * ngw * 4), *db = bias ? up(b, (size_t)out * 4) : NULL, *dy = poison(ny * 4);
    void *dscr = poison(g_cu->vt->gemm_groups_scratch(T, in, out, A, W));
    DEV(g_cu->vt->gemm_groups(g_cu, dxq, dxs, A, dwq, dws, W, db, dy, T, in, out, dscr));
    down(yg, dy, ny * 4);
    DEV(g_cu->vt->gemm_groups(g_cu, dxq, dxs, A, dwq, dws, W, db, dy, T, in, out, dscr));
    down(yg2, dy, ny * 4);
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d->%d A%d W%d a%dw%d", T, in, out, A, W, abits, wbits);
    report_exact("gemm_groups", shape, "y", n_diff(y, yg, ny, 4));
    report_exact("gemm_groups", shape, "rerun", n_diff(yg, yg2, ny, 4));
    rel(dxq), rel(dxs), rel(dwq), rel(dws), rel(dy), rel(dscr);
    if (db) rel(db);
    free(scr), free(x), free(xs), free(ws), free(b), free(y), free(yg), free(yg2), free(xq), free(wq);
}

/* gather_cols then add_linear onto a y that holds values */
static void check_keep(int T, int in, int n, int out, uint64_t seed)
{
    g_ok = 1;
    const aw_ops *cpu = aw_ops_cpu();
    size_t nx = (size_t)T * in, nk = (size_t)T * n, ny = (size_t)T * out;
    float *x = xmalloc(nx * 4), *xk = xmalloc(nk * 4), *xkg = xmalloc(nk * 4), *wk = xmalloc((size_t)out * n * 4);
    float *y0 = xmalloc(ny * 4), *y = xmalloc(ny * 4), *yg = xmalloc(ny * 4);
    int32_t *idx = xmalloc((size_t)n * 4);
    aw_ref_fill_outliers(x, T, in, seed, "actq-cuda-kx");
    aw_ref_fill_outliers(wk, out, n, seed + 1, "actq-cuda-wk");
    aw_ref_fill_outliers(y0, T, out, seed + 2, "actq-cuda-y0");
    for (int k = 0; k < n; k++) idx[k] = (int32_t)(((long)k * in) / n + (k % 3));
    cpu->vt->gather_cols(cpu, x, T, in, idx, n, xk);
    memcpy(y, y0, ny * 4);
    cpu->vt->add_linear(cpu, xk, wk, y, T, n, out);
    void *dx = up(x, nx * 4), *didx = up(idx, (size_t)n * 4), *dxk = poison(nk * 4);
    void *dwk = up(wk, (size_t)out * n * 4), *dy = up(y0, ny * 4);
    DEV(g_cu->vt->gather_cols(g_cu, dx, T, in, didx, n, dxk));
    DEV(g_cu->vt->add_linear(g_cu, dxk, dwk, dy, T, n, out));
    down(xkg, dxk, nk * 4);
    down(yg, dy, ny * 4);
    double worst = 0.0;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < out; i++) {
            double mag = fabs(y0[(size_t)t * out + i]);
            for (int k = 0; k < n; k++) mag += fabs((double)xk[(size_t)t * n + k] * wk[(size_t)i * n + k]);
            double e = fabs((double)yg[(size_t)t * out + i] - y[(size_t)t * out + i]) / (mag > 0 ? mag : 1.0);
            if (!(e <= worst)) worst = e; /* NaN counts as worst */
        }
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d n%d ->%d", T, in, n, out);
    report_exact("gather_cols", shape, "xk", n_diff(xk, xkg, nk, 4));
    report("add_linear", shape, "|dy| / (|y0|+sum|xw|)", worst, 1e-5, g_ok && worst <= 1e-5);
    rel(dx), rel(didx), rel(dxk), rel(dwk), rel(dy);
    free(x), free(xk), free(xkg), free(wk), free(y0), free(y), free(yg), free(idx);
}

int main(void)
{
    const char *why = "";
    int n_dev = aw_cuda_device_count(&why);
    if (n_dev == 0) {
        printf("skipped: no CUDA device (%s)\n", why);
        return 77;
    }
    char name[128];
    size_t mem = 0;
    aw_status st = aw_cuda_use_device(0, name, sizeof name, &mem);
    if (st == AW_OK) st = aw_ops_cuda_create(&g_cu);
    if (st != AW_OK) {
        fprintf(stderr, "test_actq_cuda: %s: %s\n", aw_status_name(st), aw_err_message());
        printf("0 passed, 1 failed\n");
        return 1;
    }
    printf("# device 0 of %d: %s, %.1f GiB\n", n_dev, name, (double)mem / (1 << 30));
    printf("%-14s %-26s %-22s %10s %8s  %s\n", "kernel", "shape", "metric", "error", "tol", "result");
    static const int groups[] = {0, 32, 64, 128};
    uint64_t seed = 300;
    for (int bits = 4; bits <= 8; bits++)
        for (size_t g = 0; g < 4; g++) check_act(41, 200, bits, groups[g], (bits + (int)g) % 2, seed++);
    check_act(1, 768, 4, 128, 0, seed++);
    check_act(257, 3072, 4, 128, 1, seed++);
    check_act(64, 3072, 8, 0, 0, seed++);
    static const int pairs[][2] = {{0, 0}, {0, 128}, {128, 0}, {32, 128}, {128, 32}, {64, 64}, {32, 0}, {0, 32}};
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
        check_gemm(37, 200, 29, pairs[p][0], pairs[p][1], 4, 4, 1, seed++);
        check_gemm(70, 201, 65, pairs[p][0], pairs[p][1], 8, 8, 0, seed++);
    }
    check_gemm(1, 768, 768, 128, 128, 4, 4, 1, seed++);
    check_gemm(300, 768, 768, 128, 128, 4, 4, 1, seed++);
    check_gemm(257, 3072, 768, 0, 128, 8, 4, 1, seed++);
    check_gemm(129, 768, 3072, 64, 128, 6, 4, 1, seed++);
    check_keep(1, 100, 3, 7, seed++);
    check_keep(70, 768, 8, 3072, seed++);
    check_keep(300, 3072, 31, 768, seed++);
    aw_ops_cuda_destroy(g_cu);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
