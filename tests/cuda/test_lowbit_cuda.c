/*
 * test_lowbit_cuda.c - the low-bit and quantization entries of the CUDA ops
 * table (gram_accum, dequant_groups; widen, absmax, row/col_absmax,
 * div_rows, bias_delta(_i8), group_params / quantize, search_err, gptq;
 * aw_kc_lowbit.h) against the CPU table
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
 *   |x| sums and dequant_groups: bit for bit;
 *   widen, absmax, row/col ranges, div_rows, group steps and codes: bit for
 *     bit (exact operations, or the CPU's IEEE operations per value);
 *   bias_delta(_i8): |d - d_cpu| <= 1e-12 * sum_j |term_j| (double sums in
 *     another order);
 *   search_err: relative 1e-9 (dsymm and a tree sum in double);
 *   gptq (another blocking of the same float sweep): at most 2% of codes
 *     differ (values on a rounding boundary move one code, and the error
 *     they spread differs a little), and the dequantized weights' relative
 *     RMS difference is at most 5e-2.
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
#include "aw_kernels.h"
#include "aw_ops.h"
#include "aw_quant_k.h"
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

/* ---- quantization entries ------------------------------------------------------------------- */

static void check_quant(int out, int in, int G, int bits, int sym, aw_dtype sdt, uint64_t seed)
{
    g_ok = 1;
    const aw_ops *cpu = aw_ops_cpu();
    int gl = G > 0 && G < in ? G : in, ng = (in + gl - 1) / gl;
    size_t n = (size_t)out * in, np = (size_t)out * ng, nh = (size_t)in * in;
    float *w = xmalloc(n * 4), *deq = xmalloc(n * 4), *s = xmalloc((size_t)in * 4), *rs = xmalloc((size_t)out * 4);
    float *want = xmalloc(n * 4), *got = xmalloc(n * 4), *step = xmalloc(np * 4), *gstep = xmalloc(np * 4);
    float *x = xmalloc((size_t)2 * in * in * 4), *hf = xmalloc(nh * 4);
    double *mean = xmalloc((size_t)in * 8), *dl = xmalloc((size_t)out * 8), *gdl = xmalloc((size_t)out * 8);
    double *H = xmalloc(nh * 8), *as = xmalloc((size_t)in * 8);
    uint16_t *h16 = xmalloc(n * 2);
    int8_t *wq = xmalloc(n);
    uint8_t *codes = xmalloc(n), *gcodes = xmalloc(n), *zero = xmalloc(np), *gzero = xmalloc(np);
    char shape[48];
    snprintf(shape, sizeof shape, "%dx%d g%d w%d%s", out, in, G, bits, sym ? "s" : "a");
    aw_ref_fill_outliers(w, out, in, seed, "w");
    aw_ref_fill_outliers(deq, out, in, seed, "deq");
    aw_ref_fill_outliers(s, 1, in, seed, "s");
    aw_ref_fill_outliers(rs, 1, out, seed, "rs");
    aw_ref_fill_outliers(x, 2 * in, in, seed, "x");
    for (int j = 0; j < in; j++) s[j] = fabsf(s[j]) + 0.25f, mean[j] = s[j] * 0.5 - 0.3;
    for (int i = 0; i < out; i++) rs[i] = fabsf(rs[i]) + 0.5f;
    for (size_t i = 0; i < n; i++) h16[i] = aw_f32_to_f16(w[i] * 0.01f);
    /* H: X^T X (2 in rows) made symmetric, in double */
    aw_k_gram_accum(x, 2 * in, in, hf, as);
    for (int i = 0; i < in; i++)
        for (int j = 0; j <= i; j++) H[(size_t)i * in + j] = H[(size_t)j * in + i] = hf[(size_t)i * in + j];
    float *dw = up(w, n * 4), *ddeq = up(deq, n * 4), *ds = up(s, (size_t)in * 4), *drs = up(rs, (size_t)out * 4);
    float *dy = poison(n * 4), *dr = poison((size_t)(in > out ? in : out) * 4), *dstep = poison(np * 4);
    uint16_t *dh16 = up(h16, n * 2);
    uint8_t *dcodes = poison(n), *dzero = poison(np);
    double *dmean = up(mean, (size_t)in * 8), *ddl = poison((size_t)out * 8), *dH = up(H, nh * 8), *dacc = poison(8);
    /* widen */
    aw_convert_to_f32(AW_DT_F16, h16, want, n);
    if (g_ok) DEV(g_cu->vt->widen(g_cu, dh16, AW_DT_F16, dy, n));
    down(got, dy, n * 4);
    report_exact("widen", shape, "f16 values", n_diff(got, want, n, 4));
    /* ranges */
    float m1 = aw_k_absmax(w, n), g1 = 0.0f;
    if (g_ok) DEV(g_cu->vt->absmax(g_cu, dw, n, dr));
    down(&g1, dr, 4);
    report_exact("absmax", shape, "value", n_diff(&g1, &m1, 1, 4));
    aw_k_row_absmax(w, out, in, want);
    if (g_ok) DEV(g_cu->vt->row_absmax(g_cu, dw, out, in, dr));
    down(got, dr, (size_t)out * 4);
    report_exact("row_absmax", shape, "values", n_diff(got, want, (size_t)out, 4));
    memset(want, 0, (size_t)in * 4);
    aw_k_col_absmax(w, out, in, want);
    aw_k_col_absmax(deq, out, in, want);
    if (g_ok) DEV(g_cu->vt->zero(g_cu, dr, (size_t)in * 4));
    if (g_ok) DEV(g_cu->vt->col_absmax(g_cu, dw, out, in, dr));
    if (g_ok) DEV(g_cu->vt->col_absmax(g_cu, ddeq, out, in, dr));
    down(got, dr, (size_t)in * 4);
    report_exact("col_absmax", shape, "values", n_diff(got, want, (size_t)in, 4));
    /* div_rows */
    memcpy(want, w, n * 4);
    aw_k_div_rows(want, NULL, out, in, rs);
    if (g_ok) DEV(g_cu->vt->copy(g_cu, dy, dw, n * 4));
    if (g_ok) DEV(g_cu->vt->div_rows(g_cu, dy, NULL, out, in, drs));
    down(got, dy, n * 4);
    report_exact("div_rows", shape, "values", n_diff(got, want, n, 4));
    /* group steps and codes */
    aw_k_group_params(w, out, in, G, bits, sym, sdt, step, zero);
    aw_k_group_quantize(w, out, in, G, bits, step, zero, codes);
    if (g_ok) DEV(g_cu->vt->group_params(g_cu, dw, out, in, G, bits, sym, sdt, dstep, dzero));
    if (g_ok) DEV(g_cu->vt->group_quantize(g_cu, dw, out, in, G, bits, dstep, dzero, dcodes));
    down(gstep, dstep, np * 4);
    down(gzero, dzero, np);
    down(gcodes, dcodes, n);
    report_exact("group_params", shape, "steps, zeros", n_diff(gstep, step, np, 4) + n_diff(gzero, zero, np, 1));
    report_exact("group_quantize", shape, "codes", n_diff(gcodes, codes, n, 1));
    /* bias corrections */
    for (int v = 0; v < 2; v++) {
        float st8 = aw_k_int8_step(m1);
        if (v == 0) {
            aw_k_quantize_i8(w, n, st8, wq);
            aw_k_bias_delta_i8(w, wq, st8, mean, out, in, dl);
            int8_t *dwq = up(wq, n);
            if (g_ok) DEV(g_cu->vt->bias_delta_i8(g_cu, dw, dwq, st8, dmean, out, in, ddl));
            down(gdl, ddl, (size_t)out * 8);
            g_cu->vt->release(g_cu, dwq);
        } else {
            aw_k_bias_delta(w, deq, mean, out, in, dl);
            if (g_ok) DEV(g_cu->vt->bias_delta(g_cu, dw, ddeq, dmean, out, in, ddl));
            down(gdl, ddl, (size_t)out * 8);
        }
        double worst = 0.0;
        for (int i = 0; i < out; i++) {
            double mag = 0.0;
            for (int j = 0; j < in; j++) {
                double q = v == 0 ? (double)wq[(size_t)i * in + j] * st8 : (double)deq[(size_t)i * in + j];
                mag += fabs((q - (double)w[(size_t)i * in + j]) * mean[j]);
            }
            double e = fabs(gdl[i] - dl[i]) / (mag > 0 ? mag : 1.0);
            worst = e == e && e > worst ? e : e == e ? worst : INFINITY;
        }
        report(v == 0 ? "bias_delta_i8" : "bias_delta", shape, "err / sum|term|", worst, 1e-12, g_ok && worst <= 1e-12);
    }
    /* the search objective, two calls accumulated */
    double acc = 0.0, gacc = 0.0;
    aw_k_search_err(w, out, in, s, H, G, bits, sym, sdt, &acc);
    aw_k_search_err(deq, out, in, s, H, G, bits, sym, sdt, &acc);
    if (g_ok) DEV(g_cu->vt->zero(g_cu, dacc, 8));
    if (g_ok) DEV(g_cu->vt->search_err(g_cu, dw, out, in, ds, dH, G, bits, sym, sdt, dacc));
    if (g_ok) DEV(g_cu->vt->search_err(g_cu, ddeq, out, in, ds, dH, G, bits, sym, sdt, dacc));
    down(&gacc, dacc, 8);
    double rel = fabs(gacc - acc) / (fabs(acc) > 0 ? fabs(acc) : 1.0);
    report("search_err", shape, "relative", rel, 1e-9, g_ok && rel <= 1e-9);
    /* GPTQ, with and without act_order */
    for (int act = 0; act < 2; act++) {
        aw_gptq_opts go = {.bits = bits, .group = G, .sym = sym, .act_order = act, .block = 128,
                           .damp_frac = 0.01, .sdt = sdt};
        memcpy(want, w, n * 4);
        aw_status cs = cpu->vt->gptq == NULL ? AW_ERR_ARG : aw_k_gptq(want, H, out, in, &go, step, zero, codes);
        aw_gptq_plan plan;
        aw_status ps = aw_k_gptq_plan(H, in, &go, &plan);
        if (cs != AW_OK || ps != AW_OK) g_ok = 0;
        if (g_ok) DEV(g_cu->vt->copy(g_cu, dy, dw, n * 4));
        if (g_ok) DEV(g_cu->vt->gptq(g_cu, dy, &plan, out, &go, dstep, dzero, dcodes));
        aw_k_gptq_plan_free(&plan);
        down(got, dy, n * 4);
        down(gcodes, dcodes, n);
        double se = 0.0, sr = 0.0;
        for (size_t i = 0; i < n; i++) {
            double d = (double)got[i] - want[i];
            se += d * d, sr += (double)want[i] * want[i];
        }
        double frac = (double)n_diff(gcodes, codes, n, 1) / (double)n, rms = sqrt(se / (sr > 0 ? sr : 1.0));
        report(act ? "gptq act_order" : "gptq", shape, "codes differing", frac, 2e-2, g_ok && frac <= 2e-2);
        report(act ? "gptq act_order" : "gptq", shape, "deq rel rms", rms, 5e-2, g_ok && rms == rms && rms <= 5e-2);
    }
    g_cu->vt->release(g_cu, dw), g_cu->vt->release(g_cu, ddeq), g_cu->vt->release(g_cu, ds);
    g_cu->vt->release(g_cu, drs), g_cu->vt->release(g_cu, dy), g_cu->vt->release(g_cu, dr);
    g_cu->vt->release(g_cu, dstep), g_cu->vt->release(g_cu, dh16), g_cu->vt->release(g_cu, dcodes);
    g_cu->vt->release(g_cu, dzero), g_cu->vt->release(g_cu, dmean), g_cu->vt->release(g_cu, ddl);
    g_cu->vt->release(g_cu, dH), g_cu->vt->release(g_cu, dacc);
    free(w), free(deq), free(s), free(rs), free(want), free(got), free(step), free(gstep), free(x), free(hf);
    free(mean), free(dl), free(gdl), free(H), free(as), free(h16), free(wq), free(codes), free(gcodes);
    free(zero), free(gzero);
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
    /* out, in, group, bits, sym, step dtype */
    static const int qs[][6] = {{7, 37, 8, 4, 1, AW_DT_F32},   {13, 200, 64, 4, 0, AW_DT_F16},
                                {64, 300, 0, 3, 0, AW_DT_BF16}, {768, 768, 128, 4, 1, AW_DT_F16},
                                {256, 3072, 128, 3, 0, AW_DT_F16}};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++)
        check_quant(qs[i][0], qs[i][1], qs[i][2], qs[i][3], qs[i][4], (aw_dtype)qs[i][5], 80 + i);

    aw_ops_cuda_destroy(g_cu);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
