/*
 * test_lowbit_cuda.c - the low-bit entries of the CUDA ops table
 * (gram_accum, dequant_groups; aw_kc_lowbit.h) against the CPU table
 * (aw_ops_cpu(), whose kernels tests/kernels/test_lowbit.c holds to float64
 * references), through the table as the pipeline calls it: inputs uploaded
 * with to_dev, outputs in poisoned (0xff) device buffers, read back with
 * to_host. Seeded random data with outliers (aw_ref_fill_outliers: about
 * one channel in 10 scaled 50-100x, exact zeros); shapes with T = 1, widths
 * not multiples of 32, OPT-125m's 768 and 3072, accumulation over two calls.
 *
 * Tolerances:
 *   h (ssyrk, fp32, another order): |h - h_cpu| <= 1e-5 * sum_t |x_ti x_tj|
 *     per entry (both are within gamma_T of the exact sum; 1e-5 is far
 *     above what a correct product shows at these T, and a wrong entry or
 *     triangle shows at once); the row-major upper triangle bit for bit as
 *     it was (zeroed before the calls: never written);
 *   |x| sums and dequant_groups: bit for bit.
 * A second run of each gives the same bits (no atomics).
 *
 * No CUDA device: prints "skipped: no CUDA device (<reason>)" and exits 77
 * (CTest SKIP_RETURN_CODE). Otherwise a table, a final "N passed, N failed"
 * line, exit 0 only when nothing failed.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_lowbit.h"
#include "aw_ops.h"
#include "aw_rng.h"
#include "cuda/aw_cuda.h"
#include "kernels_ref.h"

#define TOL_GRAM 1e-5

static int g_pass, g_fail;
static aw_ops *g_cu;
static int g_ok; /* cleared by DEV when a device call of the current check fails */

static void report(const char *what, const char *shape, const char *metric, double err, double tol, int ok)
{
    if (ok) g_pass++;
    else g_fail++;
    char e[32], t[32];
    if (err < 0) snprintf(e, sizeof e, "-");
    else snprintf(e, sizeof e, "%.3g", err);
    if (tol < 0) snprintf(t, sizeof t, "exact");
    else snprintf(t, sizeof t, "%.0e", tol);
    printf("%-16s %-16s %-22s %10s %8s  %s\n", what, shape, metric, e, t, ok ? "ok" : "FAILED");
}

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
        fprintf(stderr, "test_lowbit_cuda: out of host memory (%zu bytes)\n", n);
        exit(2); /* test main: the only exit besides main's return */
    }
    return p;
}

static void *up(const void *src, size_t n)
{
    void *d = NULL;
    DEV(g_cu->vt->alloc(g_cu, &d, n ? n : 1, "test input"));
    if (d && n) DEV(g_cu->vt->to_dev(g_cu, d, src, n));
    return d;
}

static void *poison(size_t n)
{
    void *d = NULL;
    unsigned char *ff = xmalloc(n);
    memset(ff, 0xff, n);
    d = up(ff, n);
    free(ff);
    return d;
}

static void down(void *dst, const void *src, size_t n)
{
    if (src && n && g_ok) DEV(g_cu->vt->to_host(g_cu, dst, src, n));
    DEV(g_cu->vt->sync(g_cu));
}

static size_t n_diff(const void *a, const void *b, size_t n, size_t elem)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += memcmp((const char *)a + i * elem, (const char *)b + i * elem, elem) != 0;
    return c;
}

static void report_exact(const char *what, const char *shape, const char *metric, size_t diffs)
{
    char m[64];
    snprintf(m, sizeof m, "%s: %zu differ", metric, diffs);
    report(what, shape, m, -1, -1, g_ok && diffs == 0);
}

/* ---- gram_accum ------------------------------------------------------------------------- */

static void check_gram(int T, int in, uint64_t seed)
{
    g_ok = 1;
    const aw_ops *cpu = aw_ops_cpu();
    size_t nx = (size_t)T * in, nh = (size_t)in * in;
    float *x = xmalloc(nx * 4), *h = xmalloc(nh * 4), *hg = xmalloc(nh * 4), *hg2 = xmalloc(nh * 4);
    double *as = xmalloc((size_t)in * 8), *asg = xmalloc((size_t)in * 8), *asg2 = xmalloc((size_t)in * 8);
    aw_ref_fill_outliers(x, T, in, seed, "x");
    int T1 = T / 2;
    /* CPU: two calls into zeros */
    cpu->vt->gram_accum(cpu, x, T1, in, h, as);
    cpu->vt->gram_accum(cpu, x + (size_t)T1 * in, T - T1, in, h, as);
    float *dx = up(x, nx * 4), *dh = poison(nh * 4);
    double *das = poison((size_t)in * 8);
    for (int run = 0; run < 2 && g_ok; run++) {
        DEV(g_cu->vt->zero(g_cu, dh, nh * 4));
        DEV(g_cu->vt->zero(g_cu, das, (size_t)in * 8));
        DEV(g_cu->vt->gram_accum(g_cu, dx, T1, in, dh, das));
        DEV(g_cu->vt->gram_accum(g_cu, dx + (size_t)T1 * in, T - T1, in, dh, das));
        down(run ? hg2 : hg, dh, nh * 4);
        down(run ? asg2 : asg, das, (size_t)in * 8);
    }
    /* lower triangle within TOL_GRAM of the magnitude sum; upper still 0 */
    /* sum_t |x_ti x_tj|: the Gram matrix of |x| (non-negative terms: the
     * CPU's float sum is within 1e-4 relative, plenty for a tolerance) */
    float *xa = xmalloc(nx * 4), *mag_h = xmalloc(nh * 4);
    double *as_tmp = xmalloc((size_t)in * 8);
    for (size_t i = 0; i < nx; i++) xa[i] = fabsf(x[i]);
    cpu->vt->gram_accum(cpu, xa, T, in, mag_h, as_tmp);
    double worst = 0.0;
    size_t upper_bad = 0;
    for (int i = 0; i < in; i++) {
        for (int j = 0; j <= i; j++) {
            double mag = mag_h[(size_t)i * in + j];
            double e = fabs((double)hg[(size_t)i * in + j] - h[(size_t)i * in + j]);
            double rel = mag > 0 ? e / mag : e;
            if (!(rel == rel)) rel = INFINITY;
            worst = rel > worst ? rel : worst;
        }
        for (int j = i + 1; j < in; j++) upper_bad += hg[(size_t)i * in + j] != 0.0f || signbit(hg[(size_t)i * in + j]);
    }
    char shape[48];
    snprintf(shape, sizeof shape, "%dx%d", T, in);
    report("gram_accum", shape, "h err / sum|x x|", worst, TOL_GRAM, g_ok && worst <= TOL_GRAM);
    report_exact("gram_accum", shape, "upper written", upper_bad);
    report_exact("gram_accum", shape, "|x| sums", n_diff(asg, as, (size_t)in, 8));
    report_exact("gram_accum", shape, "rerun h", n_diff(hg, hg2, nh, 4) + n_diff(asg, asg2, (size_t)in, 8));
    g_cu->vt->release(g_cu, dx), g_cu->vt->release(g_cu, dh), g_cu->vt->release(g_cu, das);
    free(x), free(h), free(hg), free(hg2), free(as), free(asg), free(asg2), free(xa), free(mag_h), free(as_tmp);
}

/* ---- dequant_groups ------------------------------------------------------------------------ */

static void check_dequant(int out, int in, int G, int bits, uint64_t seed)
{
    g_ok = 1;
    int gl = G > 0 && G < in ? G : in, ng = (in + gl - 1) / gl;
    size_t n = (size_t)out * in, np = (size_t)out * ng;
    float *w = xmalloc(n * 4), *step = xmalloc(np * 4), *want = xmalloc(n * 4), *got = xmalloc(n * 4);
    uint8_t *q = xmalloc(n), *zero = xmalloc(np);
    /* steps and codes from RTN of outlier-laden weights: realistic values */
    aw_ref_fill_outliers(w, out, in, seed, "w");
    aw_k_group_params(w, out, in, G, bits, 0, AW_DT_F16, step, zero);
    aw_k_group_quantize(w, out, in, G, bits, step, zero, q);
    aw_k_group_dequantize(q, step, zero, out, in, G, want);
    float *ds = up(step, np * 4), *dw = poison(n * 4);
    uint8_t *dq = up(q, n), *dz = up(zero, np);
    if (g_ok) DEV(g_cu->vt->dequant_groups(g_cu, dq, ds, dz, out, in, G, dw));
    down(got, dw, n * 4);
    char shape[48];
    snprintf(shape, sizeof shape, "%dx%d g%d w%d", out, in, G, bits);
    report_exact("dequant_groups", shape, "values", n_diff(got, want, n, 4));
    g_cu->vt->release(g_cu, ds), g_cu->vt->release(g_cu, dw), g_cu->vt->release(g_cu, dq);
    g_cu->vt->release(g_cu, dz);
    free(w), free(step), free(want), free(got), free(q), free(zero);
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
        fprintf(stderr, "test_lowbit_cuda: %s: %s\n", aw_status_name(st), aw_err_message());
        printf("0 passed, 1 failed\n");
        return 1;
    }
    printf("# device 0 of %d: %s, %.1f GiB\n", n_dev, name, (double)mem / (1 << 30));
    printf("%-16s %-16s %-22s %10s %8s  %s\n", "kernel", "shape", "metric", "error", "tol", "result");

    static const int gram[][2] = {{1, 1}, {1, 37}, {5, 13}, {130, 100}, {2048, 768}, {512, 3072}};
    for (size_t i = 0; i < sizeof gram / sizeof gram[0]; i++) check_gram(gram[i][0], gram[i][1], 40 + i);
    static const int dq[][4] = {{1, 1, 0, 4},       {7, 200, 64, 4},   {13, 256, 0, 3},
                                {768, 768, 128, 4}, {768, 3072, 128, 3}, {5, 37, 8, 8}};
    for (size_t i = 0; i < sizeof dq / sizeof dq[0]; i++) check_dequant(dq[i][0], dq[i][1], dq[i][2], dq[i][3], 60 + i);

    aw_ops_cuda_destroy(g_cu);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
