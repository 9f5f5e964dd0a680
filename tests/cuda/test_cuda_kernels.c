/*
 * test_cuda_kernels.c - every kernel of the CUDA backend (aw_kernels_cuda.h)
 * against the CPU backend (aw_kernels.h, itself tested against float64
 * references in tests/kernels) on seeded random data with outliers: normal
 * values, about one channel in 10 scaled 50-100x, exact +0 / -0, and where
 * the kernel defines them, NaN and Inf. Several shapes each, odd ones
 * included (T = 1, sizes not multiples of 4 or of the kernels' tiles,
 * unaligned pointers that take the scalar paths).
 *
 * Tolerances (docs/cuda-backend.md):
 *   fp32 products, LayerNorm, RMSNorm, attention (multi-head and
 *     grouped-query): 1e-5, as ||y - y_cpu|| / ||y_cpu|| and as the worst
 *     element of a row against that row's norm;
 *   RoPE, SwiGLU: 1e-6 on the same measures (the same formulas; the
 *     device's double pow/cos/sin/exp may round to a neighbouring float,
 *     one ulp, where glibc's does not), and in-place / aliased runs bit for
 *     bit against the out-of-place ones;
 *   fp16-weight linear: 2e-3 on the same measures (x is rounded to fp16,
 *     2^-11 relative per element; the measured error is a few 1e-4);
 *   statistics max, INT8 codes, int32 products, folds, dequantization,
 *     embedding, relu, add, absmax, column error sums: bit for bit;
 *   statistics sums (double, another order): 1e-12 of the sum of
 *     magnitudes (the bound of a reordered double sum); error sums: 1e-12
 *     relative against a long double sum of the same terms, 1e-10 against
 *     the CPU (whose 4 sequential chains carry ~n/4 * 2^-53 themselves).
 * Also: repeated runs give the same bits (no float atomics), the NCCL
 * wrappers on a one-rank communicator, and the device allocator's
 * out-of-memory message.
 *
 * No CUDA device: prints "skipped: no CUDA device (<reason>)" and exits 77
 * (CTest SKIP_RETURN_CODE). Otherwise a table, a final "N passed, N failed"
 * line, exit 0 only when nothing failed.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_dtype.h"
#include "aw_kernels.h"
#include "aw_kernels_inline.h"
#include "aw_rng.h"
#include "cuda/aw_cuda.h"
#include "cuda/aw_kernels_cuda.h"
#include "cuda/aw_nccl.h"
#include "kernels_ref.h"

#define TOL_F32 1e-5
#define TOL_LIBM 1e-6
#define TOL_F16W 2e-3
#define TOL_SUM 1e-12
/* the CPU's err_sums adds n/4 terms in each of 4 sequential chains: its own
 * error reaches ~n/4 * 2^-53 relative (5e-13 seen at n = 1.5e6) */
#define TOL_ERRSUM_CPU 1e-10

static int g_pass, g_fail;
static aw_kc *g_kc;
/* Cleared by DEV when a device call of the current check fails. */
static int g_ok;

/* ---- bookkeeping ---------------------------------------------------------------- */

/* One row of the table. err < 0 prints "-" (checks that are exact or not). */
static void report(const char *kernel, const char *shape, const char *metric, double err,
                   double tol, int ok)
{
    if (ok) g_pass++;
    else g_fail++;
    char e[32], t[32];
    if (err < 0) snprintf(e, sizeof e, "-");
    else snprintf(e, sizeof e, "%.3g", err);
    if (tol < 0) snprintf(t, sizeof t, "exact");
    else snprintf(t, sizeof t, "%.0e", tol);
    printf("%-18s %-26s %-18s %10s %8s  %s\n", kernel, shape, metric, e, t, ok ? "ok" : "FAILED");
}

/* A device call: on failure print the backend's message (stderr) and clear
 * g_ok, so that the check fails (and later device calls of it are skipped). */
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
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "test_cuda_kernels: out of host memory (%zu bytes)\n", n);
        exit(2); /* test main: the only exit besides main's return */
    }
    return p;
}

/* Device copy of n bytes of host memory (NULL on failure, g_ok cleared). */
static void *dev_from(const void *src, size_t n)
{
    void *d = NULL;
    DEV(aw_kc_malloc(&d, n ? n : 1, "test buffer"));
    if (d && n) DEV(aw_kc_copy(g_kc, d, src, n));
    return d;
}

/* Device buffer of n bytes filled with 0xff (NaN for floats): poisoned, so
 * an unwritten output cannot pass. */
static void *dev_poison(size_t n)
{
    void *d = NULL;
    DEV(aw_kc_malloc(&d, n ? n : 1, "test output"));
    if (d && n) DEV(aw_kc_memset(g_kc, d, 0xff, n));
    return d;
}

/* Copy device memory back and wait for everything queued before. */
static void dev_to(void *dst, const void *src, size_t n)
{
    if (src && n) DEV(aw_kc_copy(g_kc, dst, src, n));
    DEV(aw_kc_sync(g_kc));
}

/* ---- data ---------------------------------------------------------------------------- */

static void fill_normal(float *x, size_t n, double sigma, uint64_t seed, const char *key)
{
    aw_rng r;
    aw_rng_seed(&r, seed, key);
    for (size_t i = 0; i < n; i++) x[i] = (float)(sigma * aw_rng_normal(&r));
}

/* Positive scales in [0.25, 4) (fold divisors). */
static void fill_scales(float *s, int n, uint64_t seed)
{
    aw_rng r;
    aw_rng_seed(&r, seed, "s");
    for (int i = 0; i < n; i++) s[i] = (float)(0.25 * pow(16.0, aw_rng_uniform(&r)));
}

/* ---- comparisons --------------------------------------------------------------------- */

/* max(||y - r|| / ||r||, worst row's max |y - r| / row norm); NaN -> Inf. */
static double rel_err(const float *y, const float *r, int rows, int cols)
{
    double se = 0.0, sr = 0.0, worst = 0.0;
    for (int t = 0; t < rows; t++) {
        double rn = 0.0, me = 0.0;
        for (int j = 0; j < cols; j++) {
            double a = r[(size_t)t * cols + j], e = fabs((double)y[(size_t)t * cols + j] - a);
            if (!(e == e)) e = INFINITY;
            rn += a * a;
            se += e * e;
            me = e > me ? e : me;
        }
        sr += rn;
        double rel = rn > 0.0 ? me / sqrt(rn) : me;
        worst = rel > worst ? rel : worst;
    }
    double rel = sr > 0.0 ? sqrt(se / sr) : sqrt(se);
    return rel > worst ? rel : worst;
}

/* Number of elements whose bytes differ (elem bytes each). */
static size_t n_diff(const void *a, const void *b, size_t n, size_t elem)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += memcmp((const char *)a + i * elem, (const char *)b + i * elem, elem) != 0;
    return c;
}

static void report_exact(const char *kernel, const char *shape, size_t diffs, int ok)
{
    char m[48];
    snprintf(m, sizeof m, "%zu differ", diffs);
    report(kernel, shape, m, -1, -1, ok && diffs == 0);
}

/* ---- linear -------------------------------------------------------------------------- */

static void check_linear(int T, int in, int out, int with_bias, int f16w, uint64_t seed)
{
    g_ok = 1;
    size_t nx = (size_t)T * in, nw = (size_t)out * in, ny = (size_t)T * out;
    float *x = xmalloc(nx * 4), *w = xmalloc(nw * 4), *b = xmalloc((size_t)out * 4);
    float *y = xmalloc(ny * 4), *yc = xmalloc(ny * 4);
    uint16_t *wh = xmalloc(nw * 2);
    aw_ref_fill_outliers(x, T, in, seed, "x");
    aw_ref_fill_outliers(w, out, in, seed, "w");
    fill_normal(b, (size_t)out, 3.0, seed, "b");
    if (f16w) {
        /* the weights as the model stores them; the CPU reference gets the
         * same values widened back (exact), so the error measured is the
         * fp16 rounding of x and the accumulation order only */
        for (size_t i = 0; i < nw; i++) {
            wh[i] = aw_f32_to_f16(w[i] * 0.01f);
            w[i] = aw_f16_to_f32(wh[i]);
        }
    }
    float *dx = dev_from(x, nx * 4), *db = dev_from(b, (size_t)out * 4);
    void *dw = f16w ? dev_from(wh, nw * 2) : dev_from(w, nw * 4);
    float *dy = dev_poison(ny * 4);
    if (g_ok) {
        if (f16w) DEV(aw_kc_linear_f16w(g_kc, dx, dw, with_bias ? db : NULL, dy, T, in, out));
        else DEV(aw_kc_linear(g_kc, dx, dw, with_bias ? db : NULL, dy, T, in, out));
    }
    dev_to(y, dy, ny * 4);
    aw_k_linear(x, w, with_bias ? b : NULL, yc, T, in, out);
    double e = rel_err(y, yc, T, out);
    double tol = f16w ? TOL_F16W : TOL_F32;
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d->%d%s", T, in, out, with_bias ? " +b" : "");
    report(f16w ? "linear_f16w" : "linear", shape, "rel err", e, tol, g_ok && e <= tol);
    aw_kc_free(dx), aw_kc_free(db), aw_kc_free(dw), aw_kc_free(dy);
    free(x), free(w), free(b), free(y), free(yc), free(wh);
}

/* ---- layernorm ----------------------------------------------------------------------- */

static void check_layernorm(int T, int d, uint64_t seed)
{
    g_ok = 1;
    size_t n = (size_t)T * d;
    float *x = xmalloc(n * 4), *g = xmalloc((size_t)d * 4), *be = xmalloc((size_t)d * 4);
    float *y = xmalloc(n * 4), *y2 = xmalloc(n * 4), *yc = xmalloc(n * 4);
    aw_ref_fill_outliers(x, T, d, seed, "x");
    for (int j = 0; j < d; j++) x[j] += 1000.0f; /* a large common offset */
    if (T > 2)
        for (int j = 0; j < d; j++) x[(size_t)2 * d + j] = 4.0f; /* a constant row */
    fill_normal(g, (size_t)d, 1.0, seed, "g");
    fill_normal(be, (size_t)d, 0.5, seed, "b");
    float *dx = dev_from(x, n * 4), *dg = dev_from(g, (size_t)d * 4);
    float *dbe = dev_from(be, (size_t)d * 4), *dy = dev_poison(n * 4);
    if (g_ok) DEV(aw_kc_layernorm(g_kc, dx, dg, dbe, dy, T, d, 1e-5f));
    dev_to(y, dy, n * 4);
    if (g_ok) DEV(aw_kc_layernorm(g_kc, dx, dg, dbe, dx, T, d, 1e-5f)); /* in place */
    dev_to(y2, dx, n * 4);
    aw_k_layernorm(x, g, be, yc, T, d, 1e-5f);
    double e = rel_err(y, yc, T, d);
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d", T, d);
    report("layernorm", shape, "rel err", e, TOL_F32, g_ok && e <= TOL_F32);
    report_exact("layernorm", shape, n_diff(y, y2, n, 4), g_ok); /* in place: same bits */
    aw_kc_free(dx), aw_kc_free(dg), aw_kc_free(dbe), aw_kc_free(dy);
    free(x), free(g), free(be), free(y), free(y2), free(yc);
}

/* ---- rmsnorm ------------------------------------------------------------------------- */

static void check_rmsnorm(int T, int d, uint64_t seed)
{
    g_ok = 1;
    size_t n = (size_t)T * d;
    float *x = xmalloc(n * 4), *g = xmalloc((size_t)d * 4);
    float *y = xmalloc(n * 4), *y2 = xmalloc(n * 4), *yc = xmalloc(n * 4);
    aw_ref_fill_outliers(x, T, d, seed, "x");
    for (int j = 0; j < d; j++) x[j] += 1000.0f; /* a large common offset */
    if (T > 2) {
        for (int j = 0; j < d; j++) x[(size_t)2 * d + j] = -4.0f; /* a constant row */
        for (int j = 0; j < d; j++) x[(size_t)(T - 1) * d + j] *= 1e-3f; /* mean square ~ eps */
    }
    fill_normal(g, (size_t)d, 1.0, seed, "g");
    float *dx = dev_from(x, n * 4), *dg = dev_from(g, (size_t)d * 4), *dy = dev_poison(n * 4);
    if (g_ok) DEV(aw_kc_rmsnorm(g_kc, dx, dg, dy, T, d, 1e-6f));
    dev_to(y, dy, n * 4);
    if (g_ok) DEV(aw_kc_rmsnorm(g_kc, dx, dg, dx, T, d, 1e-6f)); /* in place */
    dev_to(y2, dx, n * 4);
    aw_k_rmsnorm(x, g, yc, T, d, 1e-6f);
    double e = rel_err(y, yc, T, d);
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d", T, d);
    report("rmsnorm", shape, "rel err", e, TOL_F32, g_ok && e <= TOL_F32);
    report_exact("rmsnorm in place", shape, n_diff(y, y2, n, 4), g_ok);
    aw_kc_free(dx), aw_kc_free(dg), aw_kc_free(dy);
    free(x), free(g), free(y), free(y2), free(yc);
}

/* ---- relu, add, swiglu, embed, rope ---------------------------------------------------- */

static void check_relu_add(size_t n, uint64_t seed)
{
    g_ok = 1;
    float *x = xmalloc(n * 4), *y = xmalloc(n * 4), *r = xmalloc(n * 4), *c = xmalloc(n * 4);
    aw_ref_fill_outliers(x, 1, (int)n, seed, "x");
    fill_normal(y, n, 2.0, seed, "y");
    if (n > 7) x[7] = NAN, x[5] = -0.0f;
    float *dx = dev_from(x, n * 4), *dy = dev_from(y, n * 4);
    if (g_ok) DEV(aw_kc_relu(g_kc, dx, n));
    dev_to(r, dx, n * 4);
    memcpy(c, x, n * 4);
    aw_k_relu(c, n);
    char shape[32];
    snprintf(shape, sizeof shape, "n=%zu", n);
    report_exact("relu", shape, n_diff(r, c, n, 4), g_ok);
    /* add: h += y on the relu output (NaN included) */
    if (g_ok) DEV(aw_kc_add(g_kc, dx, dy, n));
    dev_to(r, dx, n * 4);
    for (size_t i = 0; i < n; i++) c[i] += y[i];
    report_exact("add", shape, n_diff(r, c, n, 4), g_ok);
    aw_kc_free(dx), aw_kc_free(dy);
    free(x), free(y), free(r), free(c);
}

static void check_swiglu(size_t n, uint64_t seed)
{
    g_ok = 1;
    float *g = xmalloc(n * 4), *u = xmalloc(n * 4), *y = xmalloc(n * 4), *ya = xmalloc(n * 4);
    float *yb = xmalloc(n * 4), *yc = xmalloc(n * 4);
    aw_ref_fill_outliers(g, 1, (int)n, seed, "gate");
    aw_ref_fill_outliers(u, 1, (int)n, seed, "up");
    /* the ends: exp(-g) overflows the double below -709, silu(g) = g above
     * ~17 (no NaN: rel_err counts a NaN output as an infinite error) */
    const float ends[] = {1e30f, -1e30f, -800.0f, -88.0f, 20.0f, -20.0f, 1e-30f, -1e-30f};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0] && 3 + 7 * i < n; i++)
        g[3 + 7 * i] = ends[i];
    float *dg = dev_from(g, n * 4), *du = dev_from(u, n * 4), *dy = dev_poison(n * 4);
    float *da = dev_from(g, n * 4), *db = dev_from(u, n * 4);
    if (g_ok) DEV(aw_kc_swiglu(g_kc, dg, du, dy, n));
    dev_to(y, dy, n * 4);
    if (g_ok) DEV(aw_kc_swiglu(g_kc, da, du, da, n)); /* out aliasing gate */
    dev_to(ya, da, n * 4);
    if (g_ok) DEV(aw_kc_swiglu(g_kc, dg, db, db, n)); /* out aliasing up */
    dev_to(yb, db, n * 4);
    aw_k_swiglu(g, u, yc, n);
    double e = rel_err(y, yc, 1, (int)n);
    char shape[32];
    snprintf(shape, sizeof shape, "n=%zu", n);
    report("swiglu", shape, "rel err", e, TOL_LIBM, g_ok && e <= TOL_LIBM);
    report_exact("swiglu aliased", shape, n_diff(ya, y, n, 4) + n_diff(yb, y, n, 4), g_ok);
    aw_kc_free(dg), aw_kc_free(du), aw_kc_free(dy), aw_kc_free(da), aw_kc_free(db);
    free(g), free(u), free(y), free(ya), free(yb), free(yc);
}

static void check_rope(int n_seq, int L, int n_heads, int hd, float theta, uint64_t seed)
{
    g_ok = 1;
    int T = n_seq * L, d = n_heads * hd;
    size_t n = (size_t)T * d;
    float *x = xmalloc(n * 4), *y = xmalloc(n * 4), *yc = xmalloc(n * 4);
    aw_ref_fill_outliers(x, T, d, seed, "x");
    float *dx = dev_from(x, n * 4);
    if (g_ok) DEV(aw_kc_rope(g_kc, dx, n_seq, L, n_heads, hd, theta));
    dev_to(y, dx, n * 4);
    memcpy(yc, x, n * 4);
    aw_k_rope(yc, n_seq, L, n_heads, hd, theta);
    double e = rel_err(y, yc, T, d);
    char shape[64];
    snprintf(shape, sizeof shape, "seq %d L %d h %d hd %d t %g", n_seq, L, n_heads, hd,
             (double)theta);
    report("rope", shape, "rel err", e, TOL_LIBM, g_ok && e <= TOL_LIBM);
    aw_kc_free(dx);
    free(x), free(y), free(yc);
}

/* pos_offset < 0: no position table (P NULL, LLaMA) */
static void check_embed(int n_seq, int L, int V, int d, int pos_offset, uint64_t seed)
{
    g_ok = 1;
    int off = pos_offset < 0 ? 0 : pos_offset;
    size_t nh = (size_t)n_seq * L * d;
    float *E = xmalloc((size_t)V * d * 4), *P = xmalloc((size_t)(L + off) * d * 4);
    uint32_t *tok = xmalloc((size_t)n_seq * L * 4);
    float *h = xmalloc(nh * 4), *hc = xmalloc(nh * 4);
    aw_ref_fill_outliers(E, V, d, seed, "E");
    aw_ref_fill_outliers(P, L + off, d, seed, "P");
    aw_rng r;
    aw_rng_seed(&r, seed, "tok");
    for (int i = 0; i < n_seq * L; i++) tok[i] = (uint32_t)aw_rng_below(&r, (uint64_t)V);
    tok[0] = (uint32_t)V - 1;
    float *dE = dev_from(E, (size_t)V * d * 4), *dP = dev_from(P, (size_t)(L + off) * d * 4);
    uint32_t *dt = dev_from(tok, (size_t)n_seq * L * 4);
    float *dh = dev_poison(nh * 4);
    const float *Puse = pos_offset < 0 ? NULL : P, *dPuse = pos_offset < 0 ? NULL : dP;
    if (g_ok) DEV(aw_kc_embed(g_kc, dt, n_seq, L, dE, dPuse, off, d, dh));
    dev_to(h, dh, nh * 4);
    aw_k_embed(tok, n_seq, L, E, Puse, off, d, hc);
    char shape[64];
    if (pos_offset < 0) snprintf(shape, sizeof shape, "seq %d L %d V %d d %d no P", n_seq, L, V, d);
    else snprintf(shape, sizeof shape, "seq %d L %d V %d d %d +%d", n_seq, L, V, d, pos_offset);
    report_exact("embed", shape, n_diff(h, hc, nh, 4), g_ok);
    aw_kc_free(dE), aw_kc_free(dP), aw_kc_free(dt), aw_kc_free(dh);
    free(E), free(P), free(tok), free(h), free(hc);
}

/* ---- attention ------------------------------------------------------------------------- */

/* q, out (n_seq*L, d); k, v (n_seq*L, n_kv * d/n_heads) */
static void check_attention(int n_seq, int L, int n_heads, int n_kv, int d, int hpc, uint64_t seed)
{
    g_ok = 1;
    size_t n = (size_t)n_seq * L * d, nkv = (size_t)n_seq * L * n_kv * (d / n_heads);
    float *q = xmalloc(n * 4), *k = xmalloc(nkv * 4), *v = xmalloc(nkv * 4);
    float *o = xmalloc(n * 4), *oc = xmalloc(n * 4);
    fill_normal(q, n, 1.0, seed, "q");
    fill_normal(k, nkv, 1.0, seed, "k");
    aw_ref_fill_outliers(v, n_seq * L, n_kv * (d / n_heads), seed, "v");
    for (size_t i = 3; i < n; i += 17) q[i] *= 8.0f; /* some peaked rows */
    size_t ws = aw_k_attention_workspace(L, hpc);
    float *wc = xmalloc(ws * 4);
    float *dq = dev_from(q, n * 4), *dk = dev_from(k, nkv * 4), *dv = dev_from(v, nkv * 4);
    float *dout = dev_poison(n * 4), *dws = dev_poison(aw_kc_attention_workspace(L, hpc) * 4);
    float scale = 1.0f / sqrtf((float)(d / n_heads));
    if (g_ok)
        DEV(aw_kc_attention(g_kc, dq, dk, dv, dout, n_seq, L, n_heads, n_kv, d, scale, hpc, dws));
    dev_to(o, dout, n * 4);
    aw_k_attention(q, k, v, oc, n_seq, L, n_heads, n_kv, d, scale, hpc, wc);
    double e = rel_err(o, oc, n_seq * L, d);
    char shape[64];
    if (n_kv == n_heads)
        snprintf(shape, sizeof shape, "seq %d L %d h %d d %d c %d", n_seq, L, n_heads, d, hpc);
    else
        snprintf(shape, sizeof shape, "seq %d L %d h %d/%d d %d c %d", n_seq, L, n_heads, n_kv, d,
                 hpc);
    report("attention", shape, "rel err", e, TOL_F32, g_ok && e <= TOL_F32);
    aw_kc_free(dq), aw_kc_free(dk), aw_kc_free(dv), aw_kc_free(dout), aw_kc_free(dws);
    free(q), free(k), free(v), free(o), free(oc), free(wc);
}

/* ---- statistics ------------------------------------------------------------------------ */

static void check_stats(int T, int d, int with_bad, uint64_t seed)
{
    g_ok = 1;
    size_t n = (size_t)T * d;
    float *x = xmalloc(n * 4), *x2 = xmalloc(n * 4);
    float *am = xmalloc((size_t)d * 4), *amc = xmalloc((size_t)d * 4), *am2 = xmalloc((size_t)d * 4);
    double *s = xmalloc((size_t)d * 8), *sc = xmalloc((size_t)d * 8), *s2 = xmalloc((size_t)d * 8);
    double *mag = xmalloc((size_t)d * 8);
    aw_ref_fill_outliers(x, T, d, seed, "x");
    aw_ref_fill_outliers(x2, T, d, seed, "x2");
    if (with_bad) {
        x[n / 3] = NAN, x[n / 2] = INFINITY, x[n - 1] = -INFINITY;
        x2[0] = NAN;
    }
    /* running statistics: start from a previous block's values (am2 holds
     * the sums' start for a moment) */
    fill_normal(amc, (size_t)d, 1.0, seed, "am0");
    for (int j = 0; j < d; j++) amc[j] = fabsf(amc[j]);
    fill_normal(am2, (size_t)d, 5.0, seed, "s0");
    for (int j = 0; j < d; j++) sc[j] = (double)am2[j], mag[j] = fabs(sc[j]);
    memcpy(am, amc, (size_t)d * 4);
    memcpy(s, sc, (size_t)d * 8);
    unsigned long long zero = 0, bad = 0;
    float *dx = dev_from(x, n * 4), *dx2 = dev_from(x2, n * 4);
    float *dam = dev_from(am, (size_t)d * 4);
    double *ds = dev_from(s, (size_t)d * 8);
    unsigned long long *dbad = dev_from(&zero, sizeof zero);
    if (g_ok) {
        DEV(aw_kc_stats_accum(g_kc, dx, T, d, dam, ds, dbad));
        DEV(aw_kc_stats_accum(g_kc, dx2, T, d, dam, ds, dbad));
    }
    dev_to(am, dam, (size_t)d * 4);
    dev_to(s, ds, (size_t)d * 8);
    dev_to(&bad, dbad, sizeof bad);
    /* again from the same start: the same bits (no scheduling dependence) */
    memcpy(am2, amc, (size_t)d * 4);
    memcpy(s2, sc, (size_t)d * 8);
    if (g_ok) {
        DEV(aw_kc_copy(g_kc, dam, am2, (size_t)d * 4));
        DEV(aw_kc_copy(g_kc, ds, s2, (size_t)d * 8));
        DEV(aw_kc_stats_accum(g_kc, dx, T, d, dam, ds, NULL));
        DEV(aw_kc_stats_accum(g_kc, dx2, T, d, dam, ds, NULL));
    }
    dev_to(am2, dam, (size_t)d * 4);
    dev_to(s2, ds, (size_t)d * 8);

    size_t badc = aw_k_stats_accum(x, T, d, amc, sc);
    badc += aw_k_stats_accum(x2, T, d, amc, sc);
    for (size_t i = 0; i < n; i++) {
        int j = (int)(i % (size_t)d);
        if (fabsf(x[i]) <= FLT_MAX) mag[j] += fabs((double)x[i]);
        if (fabsf(x2[i]) <= FLT_MAX) mag[j] += fabs((double)x2[i]);
    }
    double worst = 0.0;
    for (int j = 0; j < d; j++) {
        double e = fabs(s[j] - sc[j]) / (mag[j] > 0.0 ? mag[j] : 1.0);
        if (!(e == e)) e = INFINITY;
        worst = e > worst ? e : worst;
    }
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d%s", T, d, with_bad ? " nan/inf" : "");
    report_exact("stats max", shape, n_diff(am, amc, (size_t)d, 4), g_ok);
    report("stats sum", shape, "err/sum|x|", worst, TOL_SUM, g_ok && worst <= TOL_SUM);
    char m[48];
    snprintf(m, sizeof m, "%llu vs %zu", bad, badc);
    report("stats nonfinite", shape, m, -1, -1, g_ok && bad == (unsigned long long)badc);
    report_exact("stats rerun", shape,
                 n_diff(am, am2, (size_t)d, 4) + n_diff(s, s2, (size_t)d, 8), g_ok);
    aw_kc_free(dx), aw_kc_free(dx2), aw_kc_free(dam), aw_kc_free(ds), aw_kc_free(dbad);
    free(x), free(x2), free(am), free(amc), free(am2), free(s), free(sc), free(s2), free(mag);
}

/* ---- folds ------------------------------------------------------------------------------ */

static void check_folds(int rows, int cols, uint64_t seed)
{
    g_ok = 1;
    size_t n = (size_t)rows * cols;
    float *w = xmalloc(n * 4), *wc = xmalloc(n * 4), *r = xmalloc(n * 4);
    float *b = xmalloc((size_t)rows * 4), *bc = xmalloc((size_t)rows * 4), *br = xmalloc((size_t)rows * 4);
    float *sc = xmalloc((size_t)cols * 4), *sr = xmalloc((size_t)rows * 4);
    aw_ref_fill_outliers(w, rows, cols, seed, "w");
    fill_normal(b, (size_t)rows, 1.0, seed, "b");
    fill_scales(sc, cols, seed);
    fill_scales(sr, rows, seed + 1);
    memcpy(wc, w, n * 4);
    memcpy(bc, b, (size_t)rows * 4);
    float *dw = dev_from(w, n * 4), *db = dev_from(b, (size_t)rows * 4);
    float *dsc = dev_from(sc, (size_t)cols * 4), *dsr = dev_from(sr, (size_t)rows * 4);
    char shape[48];
    snprintf(shape, sizeof shape, "%dx%d", rows, cols);

    if (g_ok) DEV(aw_kc_scale_cols(g_kc, dw, rows, cols, dsc));
    dev_to(r, dw, n * 4);
    aw_k_scale_cols(wc, rows, cols, sc);
    report_exact("scale_cols", shape, n_diff(r, wc, n, 4), g_ok);

    float *dy = NULL;
    if (g_ok) DEV(aw_kc_malloc((void **)&dy, n * 4, "div_cols output"));
    if (g_ok) DEV(aw_kc_div_cols(g_kc, dw, dy, rows, cols, dsc));
    dev_to(r, dy, n * 4);
    float *yc = xmalloc(n * 4);
    aw_k_div_cols(wc, yc, rows, cols, sc);
    report_exact("div_cols", shape, n_diff(r, yc, n, 4), g_ok);
    free(yc);
    aw_kc_free(dy);

    if (g_ok) DEV(aw_kc_div_rows(g_kc, dw, db, rows, cols, dsr));
    dev_to(r, dw, n * 4);
    dev_to(br, db, (size_t)rows * 4);
    aw_k_div_rows(wc, bc, rows, cols, sr);
    report_exact("div_rows +b", shape, n_diff(r, wc, n, 4) + n_diff(br, bc, (size_t)rows, 4), g_ok);

    if (g_ok) DEV(aw_kc_div_rows(g_kc, dw, NULL, rows, cols, dsr));
    dev_to(r, dw, n * 4);
    aw_k_div_rows(wc, NULL, rows, cols, sr);
    report_exact("div_rows", shape, n_diff(r, wc, n, 4), g_ok);

    if (g_ok) DEV(aw_kc_div_vec(g_kc, db, rows, dsr));
    dev_to(br, db, (size_t)rows * 4);
    aw_k_div_vec(bc, rows, sr);
    report_exact("div_vec", shape, n_diff(br, bc, (size_t)rows, 4), g_ok);

    aw_kc_free(dw), aw_kc_free(db), aw_kc_free(dsc), aw_kc_free(dsr);
    free(w), free(wc), free(r), free(b), free(bc), free(br), free(sc), free(sr);
}

/* ---- INT8 ------------------------------------------------------------------------------- */

/* absmax, quantize and dequantize of n values starting off floats into the
 * buffers (off > 0: unaligned, the scalar paths). */
static void check_int8(size_t n, size_t off, int nan_case, uint64_t seed)
{
    g_ok = 1;
    size_t nt = n + off;
    float *x = xmalloc(nt * 4), *xr = xmalloc(nt * 4), *xc = xmalloc(nt * 4);
    int8_t *q = xmalloc(nt), *qc = xmalloc(nt);
    aw_ref_fill_outliers(x, 1, (int)nt, seed, "x");
    float amc = aw_k_absmax(x + off, n);
    float step = aw_k_int8_step(amc);
    /* rounding ties and clamps: exact half steps, beyond the range, Inf */
    for (size_t i = off; i + 8 < nt; i += 97) {
        x[i] = ((float)(int)((i / 97) % 255) - 127.0f + 0.5f) * step;
        x[i + 1] = 300.0f * step * (i % 2 ? 1.0f : -1.0f);
    }
    if (nan_case && n > 20) x[off + 10] = NAN, x[off + 11] = INFINITY, x[off + 12] = -INFINITY;
    amc = aw_k_absmax(x + off, n);
    float *dx = dev_from(x, nt * 4), *dam = dev_poison(4), *dxo = dev_poison(nt * 4);
    int8_t *dq = dev_poison(nt);
    float am = 0.0f;
    if (g_ok) DEV(aw_kc_absmax(g_kc, dx + off, n, dam));
    dev_to(&am, dam, 4);
    char shape[48];
    snprintf(shape, sizeof shape, "n=%zu off %zu%s", n, off, nan_case ? " nan" : "");
    report_exact("absmax", shape, n_diff(&am, &amc, 1, 4), g_ok);

    if (g_ok) DEV(aw_kc_quantize_i8(g_kc, dx + off, n, step, dq + off));
    dev_to(q, dq, nt);
    aw_k_quantize_i8(x + off, n, step, qc + off);
    report_exact("quantize_i8", shape, n_diff(q + off, qc + off, n, 1), g_ok);

    if (g_ok) DEV(aw_kc_dequantize_i8(g_kc, dq + off, n, step, dxo + off));
    dev_to(xr, dxo, nt * 4);
    aw_k_dequantize_i8(qc + off, n, step, xc + off);
    report_exact("dequantize_i8", shape, n_diff(xr + off, xc + off, n, 4), g_ok);

    aw_kc_free(dx), aw_kc_free(dam), aw_kc_free(dxo), aw_kc_free(dq);
    free(x), free(xr), free(xc), free(q), free(qc);
}

static void fill_i8(int8_t *q, size_t n, uint64_t seed, const char *key)
{
    aw_rng r;
    aw_rng_seed(&r, seed, key);
    for (size_t i = 0; i < n; i++) q[i] = (int8_t)((int)aw_rng_below(&r, 255) - 127);
}

/* gemm_i8 (cuBLASLt or its fallback) and the fallback on its own, both
 * exact; then dequant_acc on the result, bit for bit. */
static void check_gemm_i8(int T, int in, int out, uint64_t seed)
{
    g_ok = 1;
    size_t nx = (size_t)T * in, nw = (size_t)out * in, na = (size_t)T * out;
    int8_t *xq = xmalloc(nx), *wq = xmalloc(nw);
    int32_t *acc = xmalloc(na * 4), *acc2 = xmalloc(na * 4), *accc = xmalloc(na * 4);
    float *b = xmalloc((size_t)out * 4), *y = xmalloc(na * 4), *yc = xmalloc(na * 4);
    fill_i8(xq, nx, seed, "x");
    fill_i8(wq, nw, seed, "w");
    if (nx) xq[0] = -127;
    if (nw) wq[0] = -127;
    fill_normal(b, (size_t)out, 2.0, seed, "b");
    int8_t *dx = dev_from(xq, nx), *dw = dev_from(wq, nw);
    int32_t *da = dev_poison(na * 4), *da2 = dev_poison(na * 4);
    float *db = dev_from(b, (size_t)out * 4), *dy = dev_poison(na * 4);
    if (g_ok) {
        DEV(aw_kc_gemm_i8(g_kc, dx, dw, da, T, in, out));
        DEV(aw_kc_gemm_i8_simt(g_kc, dx, dw, da2, T, in, out));
    }
    dev_to(acc, da, na * 4);
    dev_to(acc2, da2, na * 4);
    aw_k_gemm_i8(xq, wq, accc, T, in, out);
    char shape[48];
    snprintf(shape, sizeof shape, "%dx%d->%d", T, in, out);
    report_exact("gemm_i8", shape, n_diff(acc, accc, na, 4), g_ok);
    report_exact("gemm_i8_simt", shape, n_diff(acc2, accc, na, 4), g_ok);

    float xs = 0.0137f, wsf = 0.00291f;
    for (int with_b = 0; with_b < 2; with_b++) {
        if (g_ok) DEV(aw_kc_dequant_acc(g_kc, da, with_b ? db : NULL, xs, wsf, dy, T, out));
        dev_to(y, dy, na * 4);
        aw_k_dequant_acc(accc, with_b ? b : NULL, xs, wsf, yc, T, out);
        report_exact(with_b ? "dequant_acc +b" : "dequant_acc", shape, n_diff(y, yc, na, 4), g_ok);
    }
    aw_kc_free(dx), aw_kc_free(dw), aw_kc_free(da), aw_kc_free(da2), aw_kc_free(db), aw_kc_free(dy);
    free(xq), free(wq), free(acc), free(acc2), free(accc), free(b), free(y), free(yc);
}

/* ---- validation sums --------------------------------------------------------------------- */

/* max relative error of got[0..1] against (a, b); NaN -> Inf. */
static double sum2_err(const double got[2], double a, double b)
{
    double e1 = fabs(got[0] - a) / (a > 0 ? a : 1), e2 = fabs(got[1] - b) / (b > 0 ? b : 1);
    double e = e1 > e2 ? e1 : e2;
    return e == e ? e : INFINITY;
}

static void check_err(int T, int out, uint64_t seed)
{
    g_ok = 1;
    size_t n = (size_t)T * out;
    float *yr = xmalloc(n * 4), *y = xmalloc(n * 4);
    double *ce = xmalloc((size_t)out * 8), *cec = xmalloc((size_t)out * 8);
    aw_ref_fill_outliers(yr, T, out, seed, "yr");
    fill_normal(y, n, 0.05, seed, "noise");
    for (size_t i = 0; i < n; i++) y[i] += yr[i];
    for (int j = 0; j < out; j++) cec[j] = 0.25 * j;
    memcpy(ce, cec, (size_t)out * 8);
    float *dyr = dev_from(yr, n * 4), *dy = dev_from(y, n * 4);
    double *dsum = dev_poison(2 * 8), *dce = dev_from(ce, (size_t)out * 8);
    double sums[2] = {0, 0}, sums2[2] = {0, 0};
    if (g_ok) DEV(aw_kc_err_sums(g_kc, dyr, dy, n, dsum));
    dev_to(sums, dsum, sizeof sums);
    if (g_ok) DEV(aw_kc_err_sums(g_kc, dyr, dy, n, dsum));
    dev_to(sums2, dsum, sizeof sums2);
    if (g_ok) DEV(aw_kc_col_err_accum(g_kc, dyr, dy, T, out, dce));
    dev_to(ce, dce, (size_t)out * 8);
    double se, sr;
    aw_k_err_sums(yr, y, n, &se, &sr);
    aw_k_col_err_accum(yr, y, T, out, cec);
    /* the same terms in long double: the sums' reference */
    long double le = 0.0L, lr = 0.0L;
    for (size_t i = 0; i < n; i++) {
        double a = yr[i], c = (double)y[i] - a;
        le += (long double)(c * c);
        lr += (long double)(a * a);
    }
    char shape[48];
    snprintf(shape, sizeof shape, "%dx%d", T, out);
    /* sums of non-negative terms: relative error is the measure */
    double e = sum2_err(sums, (double)le, (double)lr);
    report("err_sums", shape, "vs long double", e, TOL_SUM, g_ok && e <= TOL_SUM);
    e = sum2_err(sums, se, sr);
    report("err_sums", shape, "vs CPU", e, TOL_ERRSUM_CPU, g_ok && e <= TOL_ERRSUM_CPU);
    report_exact("err_sums rerun", shape, n_diff(sums, sums2, 2, 8), g_ok);
    report_exact("col_err_accum", shape, n_diff(ce, cec, (size_t)out, 8), g_ok);
    aw_kc_free(dyr), aw_kc_free(dy), aw_kc_free(dsum), aw_kc_free(dce);
    free(yr), free(y), free(ce), free(cec);
}

/* ---- NCCL on one rank, device allocator --------------------------------------------------- */

static void check_nccl(void)
{
    g_ok = 1;
    unsigned char id[AW_NCCL_ID_BYTES];
    void *comm = NULL;
    enum { N = 1000 };
    float a[N], r[N];
    double sd[N], rd[N];
    fill_normal(a, N, 3.0, 7, "nccl");
    for (int i = 0; i < N; i++) sd[i] = 0.5 * i - 100.0;
    DEV(aw_nccl_get_id(id, sizeof id));
    if (g_ok) DEV(aw_nccl_init(1, 0, id, &comm));
    float *da = dev_from(a, sizeof a), *dr = dev_poison(sizeof r);
    double *dsd = dev_from(sd, sizeof sd), *drd = dev_poison(sizeof rd);
    void *s = aw_kc_stream(g_kc);
    size_t diffs = 0;
    if (g_ok) DEV(aw_nccl_allreduce_max_f32(da, dr, N, comm, s));
    dev_to(r, dr, sizeof r);
    diffs += n_diff(r, a, N, 4);
    if (g_ok) DEV(aw_nccl_allreduce_sum_f64(dsd, drd, N, comm, s));
    dev_to(rd, drd, sizeof rd);
    diffs += n_diff(rd, sd, N, 8);
    if (g_ok) DEV(aw_kc_memset(g_kc, dr, 0xff, sizeof r));
    if (g_ok) DEV(aw_nccl_allgather(da, dr, sizeof a, comm, s));
    dev_to(r, dr, sizeof r);
    diffs += n_diff(r, a, N, 4);
    /* the stage hand-off: a send and a receive to self in one group */
    if (g_ok) DEV(aw_kc_memset(g_kc, dr, 0xff, sizeof r));
    if (g_ok) {
        DEV(aw_nccl_group_start());
        DEV(aw_nccl_send(da, sizeof a, 0, comm, s));
        DEV(aw_nccl_recv(dr, sizeof r, 0, comm, s));
        DEV(aw_nccl_group_end());
    }
    dev_to(r, dr, sizeof r);
    diffs += n_diff(r, a, N, 4);
    report_exact("nccl 1 rank", "max,sum,gather,send/recv", diffs, g_ok);
    aw_nccl_destroy(comm);
    aw_kc_free(da), aw_kc_free(dr), aw_kc_free(dsd), aw_kc_free(drd);
}

static void check_alloc(void)
{
    void *p = NULL;
    aw_status st = aw_kc_malloc(&p, (size_t)1 << 50, "a petabyte");
    const char *m = aw_err_message();
    int ok = st == AW_ERR_NOMEM && p == NULL && strstr(m, "a petabyte") && strstr(m, "free");
    if (!ok) fprintf(stderr, "aw_kc_malloc(1 PiB): %s: %s\n", aw_status_name(st), m);
    report("kc_malloc", "1 PiB", "AW_ERR_NOMEM", -1, -1, ok);
    aw_kc_free(p);
    aw_err_clear();
}

/* ---- main -------------------------------------------------------------------------------- */

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
    if (st == AW_OK) st = aw_kc_create(NULL, &g_kc);
    if (st != AW_OK) {
        fprintf(stderr, "test_cuda_kernels: %s: %s\n", aw_status_name(st), aw_err_message());
        printf("0 passed, 1 failed\n");
        return 1;
    }
    printf("# device 0 of %d: %s, %.1f GiB\n", n_dev, name, (double)mem / (1 << 30));
    printf("%-18s %-26s %-18s %10s %8s  %s\n", "kernel", "shape", "metric", "error", "tol",
           "result");

    static const int lin[][3] = {{1, 1, 1},      {7, 13, 5},     {33, 100, 17},
                                 {64, 96, 130},  {5, 300, 77},   {256, 768, 3072},
                                 {200, 3072, 768}};
    for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) {
        for (int bias = 0; bias < 2; bias++) {
            check_linear(lin[i][0], lin[i][1], lin[i][2], bias, 0, 10 + i);
            check_linear(lin[i][0], lin[i][1], lin[i][2], bias, 1, 30 + i);
        }
    }
    static const int ln[][2] = {{1, 1}, {1, 8}, {5, 13}, {16, 768}, {3, 1001}, {4, 12288}};
    for (size_t i = 0; i < sizeof ln / sizeof ln[0]; i++) check_layernorm(ln[i][0], ln[i][1], 50 + i);
    static const int rms[][2] = {{1, 1}, {1, 8}, {5, 13}, {16, 768}, {3, 1001}, {4, 8192}};
    for (size_t i = 0; i < sizeof rms / sizeof rms[0]; i++)
        check_rmsnorm(rms[i][0], rms[i][1], 140 + i);

    check_relu_add(1, 60);
    check_relu_add(1001, 61);
    check_relu_add((size_t)1 << 20, 62);
    check_swiglu(1, 150);
    check_swiglu(1001, 151);
    check_swiglu((size_t)1 << 20, 152);
    check_embed(1, 1, 3, 1, 2, 63);
    check_embed(2, 5, 11, 13, 2, 64);
    check_embed(3, 70, 50, 768, 2, 65);
    check_embed(2, 5, 11, 13, 0, 66);
    check_embed(2, 5, 11, 13, -1, 67);
    check_embed(3, 70, 50, 768, -1, 68);

    /* n_seq, L, heads, head_dim: one pair, restarting positions, LLaMA's
     * 128 at theta 1e4 and 5e5, positions to 4095 */
    check_rope(1, 1, 1, 2, 10000.0f, 155);
    check_rope(2, 5, 3, 8, 10000.0f, 156);
    check_rope(2, 9, 2, 160, 10000.0f, 157);
    check_rope(4, 300, 32, 128, 10000.0f, 158);
    check_rope(2, 257, 8, 128, 500000.0f, 159);
    check_rope(1, 4096, 4, 128, 10000.0f, 160);

    /* n_seq, L, heads, kv heads, d, heads per chunk: L = 1, chunks that do
     * not divide the heads, L across the 256-row blocks; then grouped-query:
     * groups of 2, 4, 8 (LLaMA-2-70B's 64/8 shape), one kv head, chunks
     * that cut through a group */
    static const int att[][6] = {{1, 1, 1, 1, 4, 1},       {2, 7, 3, 3, 12, 2},
                                 {2, 33, 8, 8, 64, 8},     {1, 300, 4, 4, 64, 3},
                                 {1, 520, 2, 2, 128, 1},   {2, 257, 12, 12, 768, 5},
                                 {1, 1, 2, 1, 8, 2},       {2, 7, 4, 2, 16, 3},
                                 {2, 33, 8, 2, 64, 3},     {1, 300, 6, 3, 96, 4},
                                 {2, 257, 32, 8, 1024, 5}, {1, 520, 64, 8, 8192, 16},
                                 {3, 40, 4, 1, 64, 4}};
    for (size_t i = 0; i < sizeof att / sizeof att[0]; i++)
        check_attention(att[i][0], att[i][1], att[i][2], att[i][3], att[i][4], att[i][5], 70 + i);

    static const int stats[][2] = {{1, 1}, {5, 13}, {129, 7}, {300, 768}, {1000, 1001}, {2048, 3072}};
    for (size_t i = 0; i < sizeof stats / sizeof stats[0]; i++) {
        check_stats(stats[i][0], stats[i][1], 0, 80 + i);
        check_stats(stats[i][0], stats[i][1], 1, 90 + i);
    }

    check_folds(1, 1, 100);
    check_folds(7, 13, 101);
    check_folds(768, 3072, 102);

    check_int8(1, 0, 0, 110);
    check_int8(1001, 0, 1, 111);
    check_int8(1001, 1, 1, 112);
    check_int8((size_t)3 << 20, 0, 0, 113);
    check_int8((size_t)3 << 20, 3, 1, 114);

    static const int gi8[][3] = {{1, 1, 1},     {7, 13, 5},     {33, 100, 17},  {64, 768, 768},
                                 {65, 96, 132}, {128, 3072, 768}, {256, 768, 3072}};
    for (size_t i = 0; i < sizeof gi8 / sizeof gi8[0]; i++)
        check_gemm_i8(gi8[i][0], gi8[i][1], gi8[i][2], 120 + i);

    check_err(1, 1, 130);
    check_err(33, 100, 131);
    check_err(512, 3072, 132);

    check_nccl();
    check_alloc();

    aw_kc_destroy(g_kc);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
