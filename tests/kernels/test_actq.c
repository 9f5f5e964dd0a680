/*
 * test_actq.c - the dynamic activation kernels (aw_actq.h) against plain
 * float64 references on random activations with outlier channels
 * (aw_ref_fill_outliers: about one channel in 10 scaled 50-100x, exact
 * zeros), with masks (kept channels), a NaN input, an Inf input, all-zero
 * groups (the epsilon step), bits 4..8, groups 0/32/64/128 on widths that
 * are not multiples of the group (a shorter last group), activation and
 * weight groups nested both ways.
 *
 * Exact (bit for bit):
 *   act_quant: steps (absmax in double, one division rounded to float:
 *     a double quotient of two floats rounds to the float quotient) and
 *     codes (the quotient rounded once to float, half to even in double,
 *     clamped); act_fakequant: the integer code times the step rounded once
 *     to float (+0 for a zero code, whatever the sign of the input);
 *   gemm_groups: against a reference of the same integer arithmetic (int64
 *     sums per product block, the double sum acc * sx * sw in block order,
 *     + bias, rounded once), on shapes with several tiles of the kernel;
 *   gather_cols; the ops tables (aw_ops_cpu, aw_ops_cpu_staged) against the
 *     kernels, byte for byte.
 * Tolerance: gemm_groups against an independent float64 sum over inputs
 *   (x q * sx) (w q * sw): |y - r| <= 1e-6 |r| + 1e-12 sum |terms| (the
 *   float rounding is 6e-8 relative; the second term only covers outputs
 *   that cancel to near zero; measured worst printed);
 *   add_linear: within 1e-5 relative of a double product (OpenBLAS sgemm).
 * The same tests run with oneDNN held to AVX2 (test_actq_avx2), where
 * aw_k_gemm_i8's self-test rejects it and the grouped product takes the
 * int16 loop on packed blocks, and with OMP_NUM_THREADS=3 (test_actq_omp3:
 * other tiles per thread, the same bytes).
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_actq.h"
#include "aw_kernels.h"
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

/* ---- references ------------------------------------------------------------------ */

static double rint_even(double v) { return aw_round_half_even_ref(v); }

/* steps (T, nga) and codes of x; non-finite groups: codes 0 */
static void act_quant_ref(const float *x, int T, int in, int bits, int A, const float *mask, int8_t *q, float *step,
                          float *fq)
{
    int len = A > 0 ? A : in, nga = (in + len - 1) / len;
    double lo = -(double)(1 << (bits - 1)), hi = (double)((1 << (bits - 1)) - 1);
    double half = ((double)(1 << bits) - 1.0) / 2.0;
    for (int t = 0; t < T; t++) {
        for (int g = 0; g < nga; g++) {
            int j0 = g * len, j1 = j0 + len < in ? j0 + len : in;
            double amax = 0.0;
            int nan = 0;
            for (int j = j0; j < j1; j++) {
                double v = (double)x[(size_t)t * in + j] * (mask ? (double)mask[j] : 1.0);
                if (isnan(v)) nan = 1;
                else if (fabs(v) > amax) amax = fabs(v);
            }
            float s = nan ? NAN : (float)(amax / half);
            if (s == 0.0f) s = FLT_EPSILON;
            step[(size_t)t * nga + g] = s;
            for (int j = j0; j < j1; j++) {
                size_t k = (size_t)t * in + j;
                if (!isfinite(s)) {
                    q[k] = 0;
                    fq[k] = NAN;
                    continue;
                }
                double v = (double)x[k] * (mask ? (double)mask[j] : 1.0);
                double r = rint_even((double)(float)(v / (double)s));
                r = r < lo ? lo : r > hi ? hi : r;
                q[k] = (int8_t)r;
                fq[k] = (float)((double)q[k] * (double)s); /* the integer code: +0 for 0 */
            }
        }
    }
}

/* the same integer arithmetic as the kernel: int64 block sums, double sum in
 * block order, + b, rounded once */
static void gemm_groups_ref(const int8_t *xq, const float *xs, int A, const int8_t *wq, const float *ws, int W,
                            const float *b, float *y, int T, int in, int out)
{
    int P = aw_act_block(in, A, W), nb = (in + P - 1) / P;
    int alen = A > 0 ? A : in, wlen = W > 0 ? W : in, nga = (in + alen - 1) / alen, ngw = (in + wlen - 1) / wlen;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < out; i++) {
            double s = 0.0;
            for (int k = 0; k < nb; k++) {
                int j0 = k * P, j1 = j0 + P < in ? j0 + P : in;
                int64_t a = 0;
                for (int j = j0; j < j1; j++) a += (int64_t)xq[(size_t)t * in + j] * wq[(size_t)i * in + j];
                s += (double)a * (double)xs[(size_t)t * nga + j0 / alen] * (double)ws[(size_t)i * ngw + j0 / wlen];
            }
            y[(size_t)t * out + i] = (float)(s + (b ? (double)b[i] : 0.0));
        }
}

/* independent: sum over inputs of the dequantized values; *mag = sum |terms| */
static double gemm_groups_indep(const int8_t *xq, const float *xs, int A, const int8_t *wq, const float *ws, int W,
                                const float *b, int in, int t, int i, double *mag)
{
    int alen = A > 0 ? A : in, wlen = W > 0 ? W : in, nga = (in + alen - 1) / alen, ngw = (in + wlen - 1) / wlen;
    double s = b ? (double)b[i] : 0.0, m = fabs(s);
    for (int j = 0; j < in; j++) {
        double v = (double)xq[(size_t)t * in + j] * (double)xs[(size_t)t * nga + j / alen] *
                   ((double)wq[(size_t)i * in + j] * (double)ws[(size_t)i * ngw + j / wlen]);
        s += v;
        m += fabs(v);
    }
    *mag = m;
    return s;
}

/* ---- data ----------------------------------------------------------------------- */

/* x (T, in) with outlier channels; row 1 (if any) all zero; a kept-channel
 * mask with every 7th channel kept (and channel 0) */
static void fill_x(float *x, int T, int in, uint64_t seed)
{
    aw_ref_fill_outliers(x, T, in, seed, "actq-x");
    if (T > 1)
        for (int j = 0; j < in; j++) x[(size_t)in + j] = 0.0f;
}

static void fill_mask(float *m, int in)
{
    for (int j = 0; j < in; j++) m[j] = (j % 7 == 0) ? 0.0f : 1.0f;
}

static int bytes_equal(const void *a, const void *b, size_t n) { return memcmp(a, b, n) == 0; }

/* ---- tests ----------------------------------------------------------------------- */

static const int groups[] = {0, 32, 64, 128};

static void test_act_quant_exact(void **state)
{
    (void)state;
    enum { T = 41, IN = 200 }; /* 200: a shorter last group for 32, 64, 128 */
    float *x = xcalloc((size_t)T * IN, sizeof(float)), *mask = xcalloc(IN, sizeof(float));
    float *s = xcalloc((size_t)T * IN, sizeof(float)), *sr = xcalloc((size_t)T * IN, sizeof(float));
    float *f = xcalloc((size_t)T * IN, sizeof(float)), *fr = xcalloc((size_t)T * IN, sizeof(float));
    int8_t *q = xcalloc((size_t)T * IN, 1), *qr = xcalloc((size_t)T * IN, 1);
    fill_x(x, T, IN, 11);
    x[(size_t)3 * IN + 70] = NAN;      /* row 3: a NaN in group 70 / A */
    x[(size_t)5 * IN + 150] = INFINITY; /* row 5: an Inf */
    /* row 6: one group of 32 all zero (channels 32..63), the rest normal */
    for (int j = 32; j < 64; j++) x[(size_t)6 * IN + j] = 0.0f;
    /* row 7: values on rounding boundaries of bits 4 (x / step = k + 0.5) */
    for (int j = 0; j < IN; j++) x[(size_t)7 * IN + j] = (float)((j % 16) - 8) * 0.5f + 0.25f;
    fill_mask(mask, IN);
    long checked = 0, nonfinite = 0, eps = 0;
    for (int bits = 4; bits <= 8; bits++)
        for (size_t gi = 0; gi < sizeof groups / sizeof groups[0]; gi++)
            for (int mk = 0; mk < 2; mk++) {
                int A = groups[gi], nga = aw_act_groups(IN, A);
                const float *m = mk ? mask : NULL;
                memset(q, 0x55, (size_t)T * IN);
                aw_k_act_quant(x, T, IN, bits, A, m, q, s);
                act_quant_ref(x, T, IN, bits, A, m, qr, sr, fr);
                assert_true(bytes_equal(q, qr, (size_t)T * IN));
                assert_true(bytes_equal(s, sr, (size_t)T * nga * sizeof(float)));
                aw_k_act_fakequant(x, f, T, IN, bits, A, m);
                assert_true(bytes_equal(f, fr, (size_t)T * IN * sizeof(float)));
                /* in place */
                memcpy(f, x, (size_t)T * IN * sizeof(float));
                aw_k_act_fakequant(f, f, T, IN, bits, A, m);
                assert_true(bytes_equal(f, fr, (size_t)T * IN * sizeof(float)));
                for (int k = 0; k < T * nga; k++) {
                    nonfinite += !isfinite(s[k]);
                    eps += s[k] == FLT_EPSILON;
                }
                /* codes in range, kept channels 0 */
                int lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
                for (int t = 0; t < T; t++)
                    for (int j = 0; j < IN; j++) {
                        int c = q[(size_t)t * IN + j];
                        assert_true(c >= lo && c <= hi);
                        if (m && m[j] == 0.0f) assert_int_equal(c, 0);
                    }
                checked++;
            }
    assert_int_equal(checked, 5 * 4 * 2);
    assert_true(nonfinite >= 2 * checked); /* the NaN and the Inf group each time */
    assert_true(eps >= checked);          /* the zero row at least */
    /* the NaN group: NaN step, codes 0; the others untouched */
    aw_k_act_quant(x, T, IN, 4, 32, NULL, q, s);
    assert_true(isnan(s[3 * 7 + 2]) && isfinite(s[3 * 7 + 1]));
    for (int j = 64; j < 96; j++) assert_int_equal(q[(size_t)3 * IN + j], 0);
    assert_true(s[6 * 7 + 1] == FLT_EPSILON && s[6 * 7 + 0] != FLT_EPSILON);
    /* many rows (the threaded path), against the reference */
    enum { T2 = 300, IN2 = 768 };
    float *x2 = xcalloc((size_t)T2 * IN2, sizeof(float)), *s2 = xcalloc((size_t)T2 * IN2, sizeof(float));
    float *s2r = xcalloc((size_t)T2 * IN2, sizeof(float)), *f2 = xcalloc((size_t)T2 * IN2, sizeof(float));
    float *f2r = xcalloc((size_t)T2 * IN2, sizeof(float));
    int8_t *q2 = xcalloc((size_t)T2 * IN2, 1), *q2r = xcalloc((size_t)T2 * IN2, 1);
    fill_x(x2, T2, IN2, 12);
    aw_k_act_quant(x2, T2, IN2, 4, 128, NULL, q2, s2);
    act_quant_ref(x2, T2, IN2, 4, 128, NULL, q2r, s2r, f2r);
    assert_true(bytes_equal(q2, q2r, (size_t)T2 * IN2));
    assert_true(bytes_equal(s2, s2r, (size_t)T2 * 6 * sizeof(float)));
    aw_k_act_fakequant(x2, f2, T2, IN2, 4, 128, NULL);
    assert_true(bytes_equal(f2, f2r, (size_t)T2 * IN2 * sizeof(float)));
    free(x2), free(s2), free(s2r), free(f2), free(f2r), free(q2), free(q2r);
    free(x), free(mask), free(s), free(sr), free(f), free(fr), free(q), free(qr);
}

/* one grouped product against both references */
static void check_gemm(int T, int in, int out, int A, int W, int abits, int wbits, int bias, uint64_t seed,
                       double *worst)
{
    size_t nx = (size_t)T * in, nw = (size_t)out * in;
    int nga = aw_act_groups(in, A), ngw = aw_act_groups(in, W);
    float *x = xcalloc(nx, sizeof(float)), *xs = xcalloc((size_t)T * nga, sizeof(float));
    float *ws = xcalloc((size_t)out * ngw, sizeof(float)), *b = xcalloc(out, sizeof(float));
    float *y = xcalloc((size_t)T * out, sizeof(float)), *yr = xcalloc((size_t)T * out, sizeof(float));
    int8_t *xq = xcalloc(nx, 1), *wq = xcalloc(nw, 1);
    fill_x(x, T, in, seed);
    aw_k_act_quant(x, T, in, abits, A, NULL, xq, xs);
    aw_rng r;
    aw_rng_seed(&r, seed, "actq-w");
    int wl = -(1 << (wbits - 1)), wn = 1 << wbits;
    for (size_t k = 0; k < nw; k++) wq[k] = (int8_t)(wl + (int)aw_rng_below(&r, (uint64_t)wn));
    /* an output row at the int8 ends (against an activation row at its ends below) */
    if (wbits == 8)
        for (int j = 0; j < in; j++) wq[j] = -128;
    for (size_t k = 0; k < (size_t)out * ngw; k++) ws[k] = (float)(0.001 + 0.05 * aw_rng_uniform(&r));
    for (int i = 0; i < out; i++) b[i] = (float)aw_rng_normal(&r);
    if (abits == 8 && T > 2)
        for (int j = 0; j < in; j++) xq[(size_t)2 * in + j] = -128;
    void *scr = xcalloc(aw_k_gemm_groups_scratch(T, in, out, A, W), 1);
    aw_assert_status(aw_k_gemm_groups(xq, xs, A, wq, ws, W, bias ? b : NULL, y, T, in, out, scr), AW_OK, NULL);
    gemm_groups_ref(xq, xs, A, wq, ws, W, bias ? b : NULL, yr, T, in, out);
    for (size_t k = 0; k < (size_t)T * out; k++)
        if (memcmp(&y[k], &yr[k], sizeof(float)) != 0) {
            fprintf(stderr, "T %d in %d out %d A %d W %d: y[%zu] %.9g != ref %.9g\n", T, in, out, A, W, k, y[k],
                    yr[k]);
            fail();
        }
    for (int t = 0; t < T; t++)
        for (int i = 0; i < out; i++) {
            double mag, ri = gemm_groups_indep(xq, xs, A, wq, ws, W, bias ? b : NULL, in, t, i, &mag);
            double d = fabs((double)y[(size_t)t * out + i] - ri);
            assert_true(d <= 1e-6 * fabs(ri) + 1e-12 * mag);
            if (fabs(ri) > 1e-6 * mag && d / fabs(ri) > *worst) *worst = d / fabs(ri);
        }
    free(scr), free(x), free(xs), free(ws), free(b), free(y), free(yr), free(xq), free(wq);
}

static void test_gemm_groups_exact(void **state)
{
    (void)state;
    static const int pairs[][2] = {{0, 0}, {0, 128}, {128, 0}, {32, 128}, {128, 32}, {64, 64},
                                   {32, 0}, {0, 32},  {64, 128}, {128, 64}};
    double worst = 0.0;
    uint64_t seed = 100;
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++)
        for (int abits = 4; abits <= 8; abits += 4) {
            check_gemm(37, 200, 29, pairs[p][0], pairs[p][1], abits, 4, 1, seed++, &worst);
            check_gemm(19, 200, 11, pairs[p][0], pairs[p][1], abits, 8, 0, seed++, &worst);
        }
    /* several tiles both ways, odd sizes; every bit width */
    for (int bits = 4; bits <= 8; bits++) check_gemm(261, 392, 300, 128, 128, bits, 4, 1, seed++, &worst);
    check_gemm(300, 384, 520, 0, 128, 8, 8, 1, seed++, &worst);
    check_gemm(1, 256, 3, 32, 64, 4, 4, 1, seed++, &worst);
    printf("gemm_groups: worst relative difference to the independent float64 sum %.3g (%s)\n", worst,
           aw_k_gemm_i8_path());
    /* groups that do not nest */
    int8_t z[8] = {0};
    float f[8] = {0};
    aw_assert_status(aw_k_gemm_groups(z, f, 48, z, f, 32, NULL, f, 1, 8, 1, f), AW_ERR_ARG, "do not nest");
    aw_err_clear();
}

static void test_keep_cols(void **state)
{
    (void)state;
    enum { T = 33, IN = 100, N = 5, OUT = 17 };
    float *x = xcalloc((size_t)T * IN, sizeof(float)), *xk = xcalloc((size_t)T * N, sizeof(float));
    float *wk = xcalloc((size_t)OUT * N, sizeof(float)), *y = xcalloc((size_t)T * OUT, sizeof(float));
    int32_t idx[N] = {0, 7, 14, 50, 99};
    fill_x(x, T, IN, 7);
    aw_ref_fill_outliers(wk, OUT, N, 8, "actq-wk");
    aw_k_gather_cols(x, T, IN, idx, N, xk);
    for (int t = 0; t < T; t++)
        for (int k = 0; k < N; k++) assert_true(bytes_equal(&xk[t * N + k], &x[t * IN + idx[k]], sizeof(float)));
    for (int k = 0; k < T * OUT; k++) y[k] = (float)k * 0.25f;
    aw_k_add_linear(xk, wk, y, T, N, OUT);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < OUT; i++) {
            double r = (double)(t * OUT + i) * 0.25, m = fabs(r);
            for (int k = 0; k < N; k++) {
                r += (double)xk[t * N + k] * wk[i * N + k];
                m += fabs((double)xk[t * N + k] * wk[i * N + k]);
            }
            assert_true(fabs(y[t * OUT + i] - r) <= 1e-5 * m + 1e-30);
        }
    free(x), free(xk), free(wk), free(y);
}

/* the tables' entries on their own memory against the kernels */
static void test_ops_tables(void **state)
{
    (void)state;
    enum { T = 70, IN = 200, OUT = 45, N = 4 };
    const int A = 64, W = 32, bits = 4;
    int nga = aw_act_groups(IN, A), ngw = aw_act_groups(IN, W);
    float *x = xcalloc((size_t)T * IN, sizeof(float)), *mask = xcalloc(IN, sizeof(float));
    fill_x(x, T, IN, 21);
    fill_mask(mask, IN);
    int8_t *q = xcalloc((size_t)T * IN, 1), *wq = xcalloc((size_t)OUT * IN, 1);
    float *s = xcalloc((size_t)T * nga, sizeof(float)), *ws = xcalloc((size_t)OUT * ngw, sizeof(float));
    float *f = xcalloc((size_t)T * IN, sizeof(float)), *y = xcalloc((size_t)T * OUT, sizeof(float));
    float *b = xcalloc(OUT, sizeof(float)), *xk = xcalloc((size_t)T * N, sizeof(float));
    float *wk = xcalloc((size_t)OUT * N, sizeof(float));
    int32_t idx[N] = {0, 7, 14, 21};
    aw_rng r;
    aw_rng_seed(&r, 5, "actq-ops");
    for (int k = 0; k < OUT * IN; k++) wq[k] = (int8_t)((int)aw_rng_below(&r, 16) - 8);
    for (int k = 0; k < OUT * ngw; k++) ws[k] = (float)(0.01 + aw_rng_uniform(&r));
    for (int k = 0; k < OUT; k++) b[k] = (float)aw_rng_normal(&r);
    for (int k = 0; k < OUT * N; k++) wk[k] = (float)aw_rng_normal(&r);
    /* the kernels */
    aw_k_act_quant(x, T, IN, bits, A, mask, q, s);
    aw_k_act_fakequant(x, f, T, IN, bits, A, mask);
    void *scr = xcalloc(aw_k_gemm_groups_scratch(T, IN, OUT, A, W), 1);
    aw_assert_status(aw_k_gemm_groups(q, s, A, wq, ws, W, b, y, T, IN, OUT, scr), AW_OK, NULL);
    aw_k_gather_cols(x, T, IN, idx, N, xk);
    aw_k_add_linear(xk, wk, y, T, N, OUT);
    const aw_ops *tabs[2] = {aw_ops_cpu(), aw_ops_cpu_staged()};
    for (int ti = 0; ti < 2; ti++) {
        const aw_ops *o = tabs[ti];
        const aw_ops_vt *v = o->vt;
        void *dx, *dm, *dq, *ds, *dwq, *dws, *db, *dy, *df, *dxk, *dwk, *didx, *dscr;
        size_t sb = v->gemm_groups_scratch(T, IN, OUT, A, W);
        aw_assert_status(v->alloc(o, &dx, (size_t)T * IN * 4, "x"), AW_OK, NULL);
        aw_assert_status(v->alloc(o, &dm, IN * 4, "m"), AW_OK, NULL);
        aw_assert_status(v->alloc(o, &dq, (size_t)T * IN, "q"), AW_OK, NULL);
        aw_assert_status(v->alloc(o, &ds, (size_t)T * nga * 4, "s"), AW_OK, NULL);
        aw_assert_status(v->alloc(o, &dwq, (size_t)OUT * IN, "wq"), AW_OK, NULL);
        aw_assert_status(v->alloc(o, &dws, (size_t)OUT * ngw * 4, "ws"), AW_OK, NULL);
        aw_assert_status(v->alloc(o, &db, OUT * 4, "b"), AW_OK, NULL);
        aw_assert_status(v->alloc(o, &dy, (size_t)T * OUT * 4, "y"), AW_OK, NULL);
        aw_assert_status(v->alloc(o, &df, (size_t)T * IN * 4, "f"), AW_OK, NULL);
        aw_assert_status(v->alloc(o, &dxk, (size_t)T * N * 4, "xk"), AW_OK, NULL);
        aw_assert_status(v->alloc(o, &dwk, (size_t)OUT * N * 4, "wk"), AW_OK, NULL);
        aw_assert_status(v->alloc(o, &didx, N * 4, "idx"), AW_OK, NULL);
        aw_assert_status(v->alloc(o, &dscr, sb, "scr"), AW_OK, NULL);
        aw_assert_status(v->to_dev(o, dx, x, (size_t)T * IN * 4), AW_OK, NULL);
        aw_assert_status(v->to_dev(o, dm, mask, IN * 4), AW_OK, NULL);
        aw_assert_status(v->to_dev(o, dwq, wq, (size_t)OUT * IN), AW_OK, NULL);
        aw_assert_status(v->to_dev(o, dws, ws, (size_t)OUT * ngw * 4), AW_OK, NULL);
        aw_assert_status(v->to_dev(o, db, b, OUT * 4), AW_OK, NULL);
        aw_assert_status(v->to_dev(o, dwk, wk, (size_t)OUT * N * 4), AW_OK, NULL);
        aw_assert_status(v->to_dev(o, didx, idx, N * 4), AW_OK, NULL);
        aw_assert_status(v->act_quant(o, dx, T, IN, bits, A, dm, dq, ds), AW_OK, NULL);
        aw_assert_status(v->act_fakequant(o, dx, df, T, IN, bits, A, dm), AW_OK, NULL);
        aw_assert_status(v->gemm_groups(o, dq, ds, A, dwq, dws, W, db, dy, T, IN, OUT, dscr), AW_OK, NULL);
        aw_assert_status(v->gather_cols(o, dx, T, IN, didx, N, dxk), AW_OK, NULL);
        aw_assert_status(v->add_linear(o, dxk, dwk, dy, T, N, OUT), AW_OK, NULL);
        int8_t *hq = xcalloc((size_t)T * IN, 1);
        float *hs = xcalloc((size_t)T * nga, 4), *hf = xcalloc((size_t)T * IN, 4), *hy = xcalloc((size_t)T * OUT, 4);
        float *hxk = xcalloc((size_t)T * N, 4);
        aw_assert_status(v->to_host(o, hq, dq, (size_t)T * IN), AW_OK, NULL);
        aw_assert_status(v->to_host(o, hs, ds, (size_t)T * nga * 4), AW_OK, NULL);
        aw_assert_status(v->to_host(o, hf, df, (size_t)T * IN * 4), AW_OK, NULL);
        aw_assert_status(v->to_host(o, hy, dy, (size_t)T * OUT * 4), AW_OK, NULL);
        aw_assert_status(v->to_host(o, hxk, dxk, (size_t)T * N * 4), AW_OK, NULL);
        assert_true(bytes_equal(hq, q, (size_t)T * IN));
        assert_true(bytes_equal(hs, s, (size_t)T * nga * 4));
        assert_true(bytes_equal(hf, f, (size_t)T * IN * 4));
        assert_true(bytes_equal(hxk, xk, (size_t)T * N * 4));
        assert_true(bytes_equal(hy, y, (size_t)T * OUT * 4));
        free(hq), free(hs), free(hf), free(hy), free(hxk);
        void *ptrs[] = {dx, dm, dq, ds, dwq, dws, db, dy, df, dxk, dwk, didx, dscr};
        for (size_t k = 0; k < sizeof ptrs / sizeof ptrs[0]; k++) v->release(o, ptrs[k]);
    }
    free(scr), free(x), free(mask), free(q), free(wq), free(s), free(ws), free(f), free(y), free(b), free(xk);
    free(wk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_act_quant_exact),
        cmocka_unit_test(test_gemm_groups_exact),
        cmocka_unit_test(test_keep_cols),
        cmocka_unit_test(test_ops_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
