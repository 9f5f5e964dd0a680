/*
 * test_kernels.c - every CPU kernel against its float64 reference
 * (kernels_ref.c) on seeded random data with outliers: normal values, a few
 * channels 50-100x larger, exact zeros (+0 and -0) and negative values.
 * Shapes include the odd ones (T = 1, d not a multiple of 8, L = 1, a head
 * chunk that does not divide the head count, sizes that cross the kernels'
 * internal blocks).
 *
 * Tolerances: float products, LayerNorm, RMSNorm, RoPE and attention to
 * 1e-5, both as the relative error of the whole output,
 * ||y - y_ref|| / ||y_ref||, and as the worst element of a row against that
 * row's norm. Kernels with a few roundings per element are also held to
 * their rounding bound element by element: RMSNorm and SwiGLU 2 roundings
 * (FLT_EPSILON of the value), RoPE 2 FLT_EPSILON of |x1| + |x2|. INT8 codes
 * and int32 products are exact; values defined by one float rounding
 * (embedding sum, dequantization, folds) are compared bit for bit.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "aw_dtype.h"
#include "aw_kernels.h"
#include "aw_kernels_inline.h"
#include "aw_rng.h"
#include "kernels_ref.h"
#include "testutil.h"

#define TOL_F32 1e-5

/* ---- helpers ------------------------------------------------------------- */

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    assert_non_null(p);
    return p;
}

static void fill_normal(float *x, size_t n, double sigma, uint64_t seed, const char *key)
{
    aw_rng r;
    aw_rng_seed(&r, seed, key);
    for (size_t i = 0; i < n; i++) x[i] = (float)(sigma * aw_rng_normal(&r));
}

/* y (rows, cols) against ref: whole-output relative error and the worst
 * element of each row relative to that row's norm, both <= tol. */
static void check_close(const char *what, const float *y, const double *ref, int rows, int cols,
                        double tol)
{
    double se = 0.0, sr = 0.0, worst_row = 0.0;
    for (int t = 0; t < rows; t++) {
        double rn = 0.0, me = 0.0;
        for (int j = 0; j < cols; j++) {
            double r = ref[(size_t)t * cols + j], e = fabs((double)y[(size_t)t * cols + j] - r);
            if (!(e == e)) e = INFINITY; /* NaN output fails */
            rn += r * r;
            se += e * e;
            me = e > me ? e : me;
        }
        sr += rn;
        double rel = rn > 0.0 ? me / sqrt(rn) : me;
        worst_row = rel > worst_row ? rel : worst_row;
    }
    double rel = sr > 0.0 ? sqrt(se / sr) : sqrt(se);
    if (getenv("AW_TEST_VERBOSE"))
        print_message("%s (%d x %d): relative error %.3g, worst row %.3g\n", what, rows, cols, rel,
                      worst_row);
    if (!(rel <= tol) || !(worst_row <= tol))
        fail_msg("%s (%d x %d): relative error %.3g, worst row max-abs/row-norm %.3g > %.1g", what,
                 rows, cols, rel, worst_row, tol);
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ---- linear --------------------------------------------------------------- */

static void run_linear(int T, int in, int out, int with_bias, uint64_t seed)
{
    float *x = xcalloc((size_t)T * in, sizeof(float));
    float *w = xcalloc((size_t)out * in, sizeof(float));
    float *b = xcalloc((size_t)out, sizeof(float));
    float *y = xcalloc((size_t)T * out, sizeof(float));
    double *yr = xcalloc((size_t)T * out, sizeof(double));
    aw_ref_fill_outliers(x, T, in, seed, "x");
    aw_ref_fill_outliers(w, out, in, seed, "w");
    fill_normal(b, (size_t)out, 3.0, seed, "b");
    for (size_t i = 0; i < (size_t)T * out; i++) y[i] = NAN; /* must be overwritten */
    aw_k_linear(x, w, with_bias ? b : NULL, y, T, in, out);
    aw_linear_ref(x, w, with_bias ? b : NULL, yr, T, in, out);
    char what[64];
    snprintf(what, sizeof what, "linear %d->%d bias=%d", in, out, with_bias);
    check_close(what, y, yr, T, out, TOL_F32);
    free(x), free(w), free(b), free(y), free(yr);
}

static void test_linear(void **state)
{
    (void)state;
    static const int shapes[][3] = {{1, 1, 1},     {1, 8, 3},     {7, 13, 5},
                                    {33, 100, 17}, {64, 96, 130}, {5, 300, 77}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        run_linear(shapes[s][0], shapes[s][1], shapes[s][2], 1, 10 + s);
        run_linear(shapes[s][0], shapes[s][1], shapes[s][2], 0, 20 + s);
    }
}

/* ---- layernorm ------------------------------------------------------------ */

static void test_layernorm(void **state)
{
    (void)state;
    static const int shapes[][2] = {{1, 1}, {1, 8}, {5, 13}, {16, 768}, {3, 1001}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int T = shapes[s][0], d = shapes[s][1];
        float *x = xcalloc((size_t)T * d, sizeof(float));
        float *g = xcalloc((size_t)d, sizeof(float));
        float *be = xcalloc((size_t)d, sizeof(float));
        float *y = xcalloc((size_t)T * d, sizeof(float));
        double *yr = xcalloc((size_t)T * d, sizeof(double));
        aw_ref_fill_outliers(x, T, d, 30 + s, "x");
        /* a large common offset: the two-pass variance must not lose it */
        for (int j = 0; j < d; j++) x[j] += 1000.0f;
        if (T > 2)
            for (int j = 0; j < d; j++) x[(size_t)2 * d + j] = 4.0f; /* constant row */
        fill_normal(g, (size_t)d, 1.0, 30 + s, "g");
        fill_normal(be, (size_t)d, 0.5, 30 + s, "b");
        aw_layernorm_ref(x, g, be, yr, T, d, 1e-5f);
        aw_k_layernorm(x, g, be, y, T, d, 1e-5f);
        check_close("layernorm", y, yr, T, d, TOL_F32);
        /* in place: same values bit for bit */
        aw_k_layernorm(x, g, be, x, T, d, 1e-5f);
        assert_memory_equal(x, y, (size_t)T * d * sizeof(float));
        free(x), free(g), free(be), free(y), free(yr);
    }
}

static void test_relu(void **state)
{
    (void)state;
    float x[19];
    aw_ref_fill_outliers(x, 1, 19, 40, "relu");
    x[5] = -0.0f;
    x[7] = NAN;
    float y[19];
    memcpy(y, x, sizeof x);
    aw_k_relu(y, 19);
    for (int i = 0; i < 19; i++) {
        if (i == 7) assert_true(isnan(y[i])); /* NaN is kept for the statistics to see */
        else if (x[i] < 0.0f) assert_true(same_bits(y[i], 0.0f));
        else assert_true(same_bits(y[i], x[i]));
    }
}

/* ---- RMSNorm ------------------------------------------------------------- */

static void test_rmsnorm(void **state)
{
    (void)state;
    static const int shapes[][2] = {{1, 1}, {1, 8}, {5, 13}, {16, 768}, {3, 1001}, {4, 4096}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int T = shapes[s][0], d = shapes[s][1];
        size_t n = (size_t)T * d;
        float *x = xcalloc(n, sizeof(float));
        float *g = xcalloc((size_t)d, sizeof(float));
        float *y = xcalloc(n, sizeof(float));
        double *yr = xcalloc(n, sizeof(double));
        aw_ref_fill_outliers(x, T, d, 170 + s, "x");
        /* a large common offset (no centring: it dominates the mean square) */
        for (int j = 0; j < d; j++) x[j] += 1000.0f;
        if (T > 2) {
            for (int j = 0; j < d; j++) x[(size_t)2 * d + j] = -4.0f; /* constant row */
            /* a row of 1e-3 values: mean square 1e-6, the size of eps */
            for (int j = 0; j < d; j++) x[(size_t)(T - 1) * d + j] *= 1e-3f;
        }
        fill_normal(g, (size_t)d, 1.0, 170 + s, "g");
        for (size_t i = 0; i < n; i++) y[i] = NAN; /* must be overwritten */
        aw_rmsnorm_ref(x, g, yr, T, d, 1e-6f);
        aw_k_rmsnorm(x, g, y, T, d, 1e-6f);
        check_close("rmsnorm", y, yr, T, d, TOL_F32);
        /* (float)(x * rstd) * gamma: two roundings of an rstd exact to 1e-15 */
        for (size_t i = 0; i < n; i++) {
            double tol = FLT_EPSILON * fabs(yr[i]) + FLT_TRUE_MIN;
            if (!(fabs((double)y[i] - yr[i]) <= tol))
                fail_msg("rmsnorm %dx%d at %zu: got %.9g, want %.17g", T, d, i, (double)y[i],
                         yr[i]);
        }
        /* in place: same values bit for bit */
        aw_k_rmsnorm(x, g, x, T, d, 1e-6f);
        assert_memory_equal(x, y, n * sizeof(float));
        free(x), free(g), free(y), free(yr);
    }
}

/* ---- SwiGLU --------------------------------------------------------------- */

static void test_swiglu(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 7, 1000, 4099};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        float *g = xcalloc(n, sizeof(float)), *u = xcalloc(n, sizeof(float));
        float *y = xcalloc(n, sizeof(float)), *a = xcalloc(n, sizeof(float));
        double *yr = xcalloc(n, sizeof(double));
        /* gate: outlier columns reach +-300 (silu saturates to g, or to a
         * float that underflows); up: the same kind of data */
        aw_ref_fill_outliers(g, 1, (int)n, 180 + s, "gate");
        aw_ref_fill_outliers(u, 1, (int)n, 180 + s, "up");
        /* the ends of the range: exp(-g) overflows the double for g < -709;
         * silu(g) = g above ~17 in float */
        const float ends[] = {1e30f, -1e30f, -800.0f, -88.0f, 20.0f, -20.0f, 1e-30f, -1e-30f};
        for (size_t i = 0; i < sizeof ends / sizeof ends[0] && 3 + 7 * i < n; i++)
            g[3 + 7 * i] = ends[i];
        for (size_t i = 0; i < n; i++) y[i] = NAN;
        aw_k_swiglu(g, u, y, n);
        aw_swiglu_ref(g, u, yr, n);
        for (size_t i = 0; i < n; i++) {
            /* silu rounded once from double, one float product: FLT_EPSILON
             * of the value, plus the subnormal spacing where either underflows */
            double tol = FLT_EPSILON * fabs(yr[i]) + FLT_TRUE_MIN * (1.0 + fabs((double)u[i]));
            if (!(fabs((double)y[i] - yr[i]) <= tol))
                fail_msg("swiglu gate=%a up=%a: got %.9g, want %.17g", (double)g[i], (double)u[i],
                         (double)y[i], yr[i]);
            assert_true(same_bits(y[i], aw_swiglu1(g[i], u[i])));
        }
        /* out aliasing gate, then up: the same bits */
        memcpy(a, g, n * sizeof(float));
        aw_k_swiglu(a, u, a, n);
        assert_memory_equal(a, y, n * sizeof(float));
        memcpy(a, u, n * sizeof(float));
        aw_k_swiglu(g, a, a, n);
        assert_memory_equal(a, y, n * sizeof(float));
        free(g), free(u), free(y), free(a), free(yr);
    }
    /* NaN stays NaN; -Inf * sigmoid(-Inf) is NaN as in PyTorch; +Inf passes */
    float g[3] = {NAN, -INFINITY, INFINITY}, u[3] = {1.0f, 1.0f, 2.0f}, y[3];
    aw_k_swiglu(g, u, y, 3);
    assert_true(isnan(y[0]) && isnan(y[1]));
    assert_true(isinf(y[2]) && y[2] > 0);
}

/* ---- embedding ------------------------------------------------------------ */

static void test_embed(void **state)
{
    (void)state;
    static const int cfg[][4] = {{1, 1, 3, 1}, {2, 5, 11, 13}, {3, 7, 50, 40}}; /* n_seq L V d */
    /* OPT's offset 2, no offset, and no position table (LLaMA) */
    static const int offsets[] = {2, 0, -1};
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        int n_seq = cfg[c][0], L = cfg[c][1], V = cfg[c][2], d = cfg[c][3];
        float *E = xcalloc((size_t)V * d, sizeof(float));
        float *P = xcalloc((size_t)(L + 2) * d, sizeof(float));
        uint32_t *tok = xcalloc((size_t)n_seq * L, sizeof(uint32_t));
        float *h = xcalloc((size_t)n_seq * L * d, sizeof(float));
        double *hr = xcalloc((size_t)n_seq * L * d, sizeof(double));
        aw_ref_fill_outliers(E, V, d, 50 + c, "E");
        aw_ref_fill_outliers(P, L + 2, d, 50 + c, "P");
        aw_rng r;
        aw_rng_seed(&r, 50 + c, "tok");
        for (int i = 0; i < n_seq * L; i++) tok[i] = (uint32_t)aw_rng_below(&r, (uint64_t)V);
        tok[0] = (uint32_t)V - 1;
        for (size_t k = 0; k < sizeof offsets / sizeof offsets[0]; k++) {
            const float *Pk = offsets[k] < 0 ? NULL : P;
            int off = offsets[k] < 0 ? 0 : offsets[k];
            for (size_t i = 0; i < (size_t)n_seq * L * d; i++) h[i] = NAN;
            aw_k_embed(tok, n_seq, L, E, Pk, off, d, h);
            aw_embed_ref(tok, n_seq, L, E, Pk, off, d, hr);
            /* one float addition: the double sum rounded once is the same value */
            for (size_t i = 0; i < (size_t)n_seq * L * d; i++)
                assert_true(same_bits(h[i], (float)hr[i]));
            if (!Pk) /* a copy of the token's row */
                for (int t = 0; t < n_seq * L; t++)
                    assert_memory_equal(h + (size_t)t * d, E + (size_t)tok[t] * d,
                                        (size_t)d * sizeof(float));
        }
        free(E), free(P), free(tok), free(h), free(hr);
    }
}

/* ---- RoPE ----------------------------------------------------------------- */

static void run_rope(int n_seq, int L, int n_heads, int hd, float theta, uint64_t seed)
{
    int d = n_heads * hd, T = n_seq * L;
    size_t n = (size_t)T * d;
    float *x = xcalloc(n, sizeof(float)), *y = xcalloc(n, sizeof(float));
    double *yr = xcalloc(n, sizeof(double));
    aw_ref_fill_outliers(x, T, d, seed, "x");
    memcpy(y, x, n * sizeof(float));
    aw_k_rope(y, n_seq, L, n_heads, hd, theta);
    aw_rope_ref(x, yr, n_seq, L, n_heads, hd, theta);
    char what[96];
    snprintf(what, sizeof what, "rope n_seq=%d L=%d heads=%d hd=%d theta=%g", n_seq, L, n_heads, hd,
             (double)theta);
    check_close(what, y, yr, T, d, TOL_F32);
    /* each output: cos and sin rounded to float, two products and a sum,
     * about 1.5 FLT_EPSILON of |x1| + |x2| */
    int half = hd / 2;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < n_heads; h++)
            for (int i = 0; i < half; i++) {
                size_t a = (size_t)t * d + (size_t)h * hd + i, b = a + (size_t)half;
                double tol = 2.0 * FLT_EPSILON * (fabs((double)x[a]) + fabs((double)x[b])) + 1e-37;
                if (!(fabs((double)y[a] - yr[a]) <= tol) || !(fabs((double)y[b] - yr[b]) <= tol))
                    fail_msg("%s: row %d head %d pair %d: got (%.9g, %.9g), want (%.17g, %.17g)",
                             what, t, h, i, (double)y[a], (double)y[b], yr[a], yr[b]);
            }
    free(x), free(y), free(yr);
}

static void test_rope(void **state)
{
    (void)state;
    /* n_seq, L, heads, head_dim: the smallest head, several sequences (the
     * position restarts), head_dim/2 = 80 across the kernel's 64-pair
     * blocks, LLaMA's 128 with theta 1e4 and 5e5 (LLaMA 3), positions to
     * 2047 (angles of 2047 radians) */
    run_rope(1, 1, 1, 2, 10000.0f, 190);
    run_rope(1, 3, 1, 2, 10000.0f, 191);
    run_rope(2, 5, 3, 8, 10000.0f, 192);
    run_rope(3, 17, 2, 64, 10000.0f, 193);
    run_rope(2, 9, 2, 160, 10000.0f, 194);
    run_rope(2, 33, 4, 128, 500000.0f, 195);
    run_rope(1, 2048, 1, 128, 10000.0f, 196);
    /* the convention, by hand: hd 4, position 1: pair 0 turns by 1 radian,
     * pair 1 by 1/100 (theta^(-2/4) = 1/100) */
    float x[8] = {9, 9, 9, 9, 1.0f, 2.0f, 3.0f, 4.0f}; /* row 0 (p = 0) kept */
    aw_k_rope(x, 1, 2, 1, 4, 10000.0f);
    assert_true(x[0] == 9 && x[1] == 9 && x[2] == 9 && x[3] == 9);
    double c0 = cos(1.0), s0 = sin(1.0), c1 = cos(0.01), s1 = sin(0.01);
    assert_true(fabs(x[4] - (1.0 * c0 - 3.0 * s0)) < 1e-6);
    assert_true(fabs(x[6] - (3.0 * c0 + 1.0 * s0)) < 1e-6);
    assert_true(fabs(x[5] - (2.0 * c1 - 4.0 * s1)) < 1e-6);
    assert_true(fabs(x[7] - (4.0 * c1 + 2.0 * s1)) < 1e-6);
}

/* ---- attention ------------------------------------------------------------ */

typedef struct {
    float *q, *k, *v;
    int n_seq, L, n_heads, n_kv, d;
} att_in;

/* q and k: moderate outlier channels (a score's float rounding error grows
 * with |q||k|, so huge q/k outliers would measure the conditioning of the
 * problem, not the kernel); v: the full 50-100x outliers. k and v have
 * n_kv heads of d / n_heads columns. */
static att_in att_make(int n_seq, int L, int n_heads, int n_kv, int d, uint64_t seed)
{
    att_in a = {NULL, NULL, NULL, n_seq, L, n_heads, n_kv, d};
    int dkv = n_kv * (d / n_heads);
    size_t n = (size_t)n_seq * L * d, nkv = (size_t)n_seq * L * dkv;
    a.q = xcalloc(n, sizeof(float));
    a.k = xcalloc(nkv, sizeof(float));
    a.v = xcalloc(nkv, sizeof(float));
    aw_ref_fill_outliers(a.q, n_seq * L, d, seed, "q");
    aw_ref_fill_outliers(a.k, n_seq * L, dkv, seed, "k");
    aw_ref_fill_outliers(a.v, n_seq * L, dkv, seed, "v");
    for (size_t i = 0; i < n; i++) a.q[i] *= 0.05f;
    for (size_t i = 0; i < nkv; i++) a.k[i] *= 0.05f;
    return a;
}

static void att_free(att_in *a) { free(a->q), free(a->k), free(a->v); }

/* Runs the kernel with a workspace of exactly aw_k_attention_workspace()
 * floats (so ASan sees any overrun) into out. */
static void att_run(const att_in *a, int hpc, float *out)
{
    size_t ws_n = aw_k_attention_workspace(a->L, hpc);
    assert_true(ws_n <= (size_t)hpc * a->L * a->L);
    float *ws = malloc(ws_n * sizeof(float));
    assert_non_null(ws);
    float scale = 1.0f / sqrtf((float)(a->d / a->n_heads));
    aw_k_attention(a->q, a->k, a->v, out, a->n_seq, a->L, a->n_heads, a->n_kv, a->d, scale, hpc,
                   ws);
    free(ws);
}

static void test_attention_vs_ref(void **state)
{
    (void)state;
    /* n_seq, L, n_heads, n_kv_heads, d, heads_per_chunk: multi-head, then
     * grouped-query (groups of 2, 3, 4; one kv head; chunks that cut
     * through a group) */
    static const int cfg[][6] = {{1, 1, 1, 1, 8, 1},     {2, 7, 3, 3, 12, 2},
                                 {2, 33, 4, 4, 32, 3},   {1, 130, 2, 2, 16, 2},
                                 {1, 257, 3, 3, 24, 2},  {3, 5, 6, 6, 36, 4},
                                 {2, 7, 4, 2, 16, 3},    {2, 33, 6, 2, 48, 4},
                                 {1, 130, 8, 2, 64, 3},  {3, 9, 4, 1, 32, 4},
                                 {1, 257, 6, 3, 48, 5},  {1, 1, 2, 1, 8, 2}};
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        att_in a = att_make(cfg[c][0], cfg[c][1], cfg[c][2], cfg[c][3], cfg[c][4], 60 + c);
        size_t n = (size_t)a.n_seq * a.L * a.d;
        float *out = xcalloc(n, sizeof(float));
        double *ref = xcalloc(n, sizeof(double));
        for (size_t i = 0; i < n; i++) out[i] = NAN; /* must be overwritten */
        att_run(&a, cfg[c][5], out);
        aw_attention_ref(a.q, a.k, a.v, ref, a.n_seq, a.L, a.n_heads, a.n_kv, a.d,
                         1.0f / sqrtf((float)(a.d / a.n_heads)));
        char what[96];
        snprintf(what, sizeof what, "attention n_seq=%d L=%d heads=%d kv=%d d=%d", a.n_seq, a.L,
                 a.n_heads, a.n_kv, a.d);
        check_close(what, out, ref, a.n_seq * a.L, a.d, TOL_F32);
        free(out), free(ref);
        att_free(&a);
    }
}

static void test_attention_chunking(void **state)
{
    (void)state;
    /* 5 heads: chunks of 1, 2 and 3 (non-divisors), all 5, and more than 5;
     * then 6 heads on 2 kv heads (groups of 3) with chunks across groups */
    static const int cfg[][3] = {{5, 5, 40}, {6, 2, 48}}; /* heads, kv heads, d */
    for (size_t c = 0; c < 2; c++) {
        att_in a = att_make(2, 37, cfg[c][0], cfg[c][1], cfg[c][2], 70 + c);
        size_t n = (size_t)a.n_seq * a.L * a.d;
        float *base = xcalloc(n, sizeof(float));
        float *out = xcalloc(n, sizeof(float));
        att_run(&a, 1, base);
        static const int hpcs[] = {2, 3, 4, 5, 7};
        for (size_t i = 0; i < sizeof hpcs / sizeof hpcs[0]; i++) {
            memset(out, 0xff, n * sizeof(float));
            att_run(&a, hpcs[i], out);
            /* the same arithmetic per head whatever the chunking */
            assert_memory_equal(out, base, n * sizeof(float));
        }
        free(base), free(out);
        att_free(&a);
    }
    for (int hpc = 1; hpc <= 8; hpc++)
        assert_true(aw_k_attention_workspace(37, hpc) == (size_t)hpc * 37 * 37);
}

/* Grouped-query attention is multi-head attention on k and v with each kv
 * head repeated for its group of query heads (as Hugging Face's repeat_kv
 * does): the two agree to rounding (the products read k and v through
 * another row stride). A wrong head mapping would be off by O(1). */
static void test_attention_gqa_repeat(void **state)
{
    (void)state;
    int n_seq = 2, L = 40, H = 8, KV = 2, d = 64, hd = d / H, group = H / KV;
    att_in g = att_make(n_seq, L, H, KV, d, 75);
    att_in m = att_make(n_seq, L, H, H, d, 75); /* k, v overwritten below */
    memcpy(m.q, g.q, (size_t)n_seq * L * d * sizeof(float));
    for (int t = 0; t < n_seq * L; t++)
        for (int h = 0; h < H; h++) {
            size_t src = (size_t)t * KV * hd + (size_t)(h / group) * hd;
            size_t dst = (size_t)t * d + (size_t)h * hd;
            memcpy(m.k + dst, g.k + src, (size_t)hd * sizeof(float));
            memcpy(m.v + dst, g.v + src, (size_t)hd * sizeof(float));
        }
    size_t n = (size_t)n_seq * L * d;
    float *og = xcalloc(n, sizeof(float)), *om = xcalloc(n, sizeof(float));
    double *omd = xcalloc(n, sizeof(double));
    att_run(&g, 3, og);
    att_run(&m, 3, om);
    for (size_t i = 0; i < n; i++) omd[i] = om[i];
    check_close("attention gqa vs repeated kv", og, omd, n_seq * L, d, 1e-6);
    free(og), free(om), free(omd);
    att_free(&g), att_free(&m);
}

/* ---- statistics ----------------------------------------------------------- */

static void run_stats(int T, int d, uint64_t seed, int with_nonfinite)
{
    float *x = xcalloc((size_t)T * d, sizeof(float));
    aw_ref_fill_outliers(x, T, d, seed, "stats");
    /* last column: magnitudes 1e-8..1e8, so that double sums depend on the
     * order of the rows (the contract is rows in order) */
    aw_rng r;
    aw_rng_seed(&r, seed, "wide");
    for (int t = 0; t < T; t++)
        x[(size_t)t * d + d - 1] = (float)((aw_rng_below(&r, 2) ? -1.0 : 1.0) *
                                           pow(10.0, 16.0 * aw_rng_uniform(&r) - 8.0));
    if (with_nonfinite) {
        /* in the first 4-row block, in a later block, and in the tail rows */
        x[0] = NAN;
        x[(size_t)T * d - 1] = INFINITY;
        x[((size_t)T / 2) * d + (size_t)d / 2] = -INFINITY;
        x[((size_t)T / 2) * d] = -NAN;
    }
    size_t want_bad = 0;
    for (size_t i = 0; i < (size_t)T * d; i++) want_bad += !isfinite(x[i]);
    float *am = xcalloc((size_t)d, sizeof(float)), *amr = xcalloc((size_t)d, sizeof(float));
    double *sm = xcalloc((size_t)d, sizeof(double)), *smr = xcalloc((size_t)d, sizeof(double));
    /* running statistics: two calls, the second on the first rows again */
    size_t bad = aw_k_stats_accum(x, T, d, am, sm);
    bad += aw_k_stats_accum(x, T > 1 ? T - 1 : 1, d, am, sm);
    size_t bad_r = aw_stats_ref(x, T, d, amr, smr);
    bad_r += aw_stats_ref(x, T > 1 ? T - 1 : 1, d, amr, smr);
    assert_int_equal(bad, bad_r);
    if (!with_nonfinite) assert_int_equal(bad, 0);
    else assert_true(bad >= want_bad);
    for (int j = 0; j < d; j++) {
        assert_true(same_bits(am[j], amr[j]));
        /* rows in order per column: the same double additions as the ref */
        assert_true(memcmp(&sm[j], &smr[j], sizeof(double)) == 0);
        assert_true(isfinite(am[j]) && isfinite(sm[j]));
    }
    free(x), free(am), free(amr), free(sm), free(smr);
}

static void test_stats(void **state)
{
    (void)state;
    static const int shapes[][2] = {{1, 1}, {1, 13}, {3, 7}, {4, 8}, {5, 13}, {9, 768}, {64, 100}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        run_stats(shapes[s][0], shapes[s][1], 80 + s, 0);
        run_stats(shapes[s][0], shapes[s][1], 90 + s, 1);
    }
}

/* ---- INT8 ------------------------------------------------------------------ */

static void test_absmax(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 5, 16, 17, 33, 1000, 4099};
    float *x = xcalloc(4099, sizeof(float));
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        aw_ref_fill_outliers(x, 1, (int)(n ? n : 1), 100 + s, "absmax");
        if (n > 2) x[n - 2] = -1e4f; /* the largest magnitude is negative */
        assert_true(same_bits(aw_k_absmax(x, n), aw_absmax_ref(x, n)));
        if (n == 0) assert_true(same_bits(aw_k_absmax(x, 0), 0.0f));
        if (n == 0) continue;
        size_t where[] = {0, n / 2, n - 1};
        for (int w = 0; w < 3; w++) {
            float keep = x[where[w]];
            x[where[w]] = -INFINITY;
            assert_true(isinf(aw_k_absmax(x, n)) && aw_k_absmax(x, n) > 0);
            x[where[w]] = NAN;
            assert_true(isnan(aw_k_absmax(x, n)));
            x[(where[w] + 1) % n] = INFINITY; /* NaN wins over Inf */
            assert_true(isnan(aw_k_absmax(x, n)) || n == 1);
            x[where[w]] = keep;
            aw_ref_fill_outliers(x, 1, (int)n, 100 + s, "absmax");
        }
    }
    free(x);
}

static void test_int8_step(void **state)
{
    (void)state;
    assert_true(aw_k_int8_step(0.0f) == 1.0f);
    assert_true(aw_k_int8_step(-0.0f) == 1.0f);
    assert_true(aw_k_int8_step(NAN) == 1.0f);
    assert_true(aw_k_int8_step(INFINITY) == 1.0f);
    assert_true(aw_k_int8_step(-INFINITY) == 1.0f);
    assert_true(aw_k_int8_step(127.0f) == 1.0f);
    assert_true(aw_k_int8_step(254.0f) == 2.0f);
    assert_true(same_bits(aw_k_int8_step(3.5f), 3.5f / 127.0f));
    float tiny = aw_k_int8_step(FLT_TRUE_MIN); /* would underflow to 0 */
    assert_true(tiny > 0.0f && isfinite(tiny));
    assert_true(aw_k_int8_step(FLT_MAX) > 0.0f && isfinite(aw_k_int8_step(FLT_MAX)));
}

static void test_quantize_random(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 7, 16, 31, 1000, 4099};
    float *x = xcalloc(4099, sizeof(float));
    int8_t *q = xcalloc(4099, 1);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        aw_ref_fill_outliers(x, 1, (int)n, 110 + s, "quant");
        float am = aw_k_absmax(x, n);
        /* the tensor's own grid, and grids 10x and 1000x too fine (clamping) */
        float steps[] = {aw_k_int8_step(am), aw_k_int8_step(am) / 10.0f,
                         aw_k_int8_step(am) / 1000.0f, 0.37f};
        for (int k = 0; k < 4; k++) {
            memset(q, 0x55, n);
            aw_k_quantize_i8(x, n, steps[k], q);
            for (size_t i = 0; i < n; i++) {
                if (q[i] != aw_quant_i8_ref(x[i], steps[k]))
                    fail_msg("quantize x=%a step=%a: got %d, want %d", (double)x[i],
                             (double)steps[k], q[i], aw_quant_i8_ref(x[i], steps[k]));
                assert_int_equal(q[i], aw_quant_i8(x[i], steps[k]));
            }
        }
    }
    free(x), free(q);
}

static void test_quantize_ties_and_clamp(void **state)
{
    (void)state;
    /* (k + 0.5) * step for k = -140..139: exact ties. A long array so the
     * vectorised body, not only the tail, sees them. */
    enum { N = 280 };
    float x[N];
    int8_t q[N];
    const float steps[] = {1.0f, 0.25f, 3.0f};
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < N; i++) x[i] = ((float)(i - 140) + 0.5f) * steps[s];
        aw_k_quantize_i8(x, N, steps[s], q);
        for (int i = 0; i < N; i++) {
            int k = i - 140;
            /* k + 0.5 rounds to whichever of k, k + 1 is even */
            int want = (k % 2 == 0) ? k : k + 1;
            want = want > 127 ? 127 : want < -127 ? -127 : want;
            if (q[i] != want)
                fail_msg("tie %g * %g: got %d, want %d", k + 0.5, (double)steps[s], q[i], want);
            assert_int_equal(q[i], aw_quant_i8_ref(x[i], steps[s]));
        }
    }
    assert_int_equal(aw_quant_i8(2.5f, 1.0f), 2);
    assert_int_equal(aw_quant_i8(3.5f, 1.0f), 4);
    assert_int_equal(aw_quant_i8(-2.5f, 1.0f), -2);
    assert_int_equal(aw_quant_i8(-0.5f, 1.0f), 0);
    assert_int_equal(aw_quant_i8(0.5f, 1.0f), 0);
    assert_int_equal(aw_quant_i8(1.5f, 1.0f), 2);

    /* specials, placed in the middle of a long array */
    const float sp[] = {NAN,          -NAN,        INFINITY,     -INFINITY,  1e30f,
                        -1e30f,       127.49f,     127.5f,       -127.5f,    128.0f,
                        -200.0f,      -0.0f,       FLT_TRUE_MIN, 4194304.5f, 8388609.0f,
                        -12582912.0f, 12582913.0f, 0.49999997f};
    const int want[] = {0,   0,    127, -127, 127, -127, 127,  127, -127,
                        127, -127, 0,   0,    127, 127,  -127, 127, 0};
    enum { NS = sizeof sp / sizeof sp[0] };
    float y[64];
    int8_t qy[64];
    for (int i = 0; i < 64; i++) y[i] = 1.0f;
    memcpy(y + 20, sp, sizeof sp);
    aw_k_quantize_i8(y, 64, 1.0f, qy);
    for (int i = 0; i < NS; i++) {
        if (qy[20 + i] != want[i])
            fail_msg("special %a: got %d, want %d", (double)sp[i], qy[20 + i], want[i]);
        assert_int_equal(aw_quant_i8(sp[i], 1.0f), want[i]);
        assert_int_equal(aw_quant_i8_ref(sp[i], 1.0f), want[i]);
    }
    /* 0/0 is NaN too */
    assert_int_equal(aw_quant_i8(0.0f, 0.0f), 0);
}

static void test_dequantize(void **state)
{
    (void)state;
    int8_t q[300];
    float x[300];
    for (int i = 0; i < 300; i++) q[i] = (int8_t)(i % 255 - 127);
    const float steps[] = {1.0f, 0.37f, 1e-7f, 3.3e5f};
    for (int s = 0; s < 4; s++) {
        aw_k_dequantize_i8(q, 300, steps[s], x);
        for (int i = 0; i < 300; i++)
            assert_true(same_bits(x[i], (float)((double)q[i] * steps[s])));
    }
}

/* The int8 product's entry points: the chosen path, and the fallback and its
 * one-thread loop called directly (test_gemm_i8.c tests the choice). */
enum { GI8_AUTO, GI8_FALLBACK, GI8_LOOP, GI8_NPATHS };
static const char *const gi8_names[GI8_NPATHS] = {"aw_k_gemm_i8", "aw_k_gemm_i8_fallback",
                                                  "aw_k_gemm_i8_loop"};

static void gemm_i8_path(int p, const int8_t *xq, const int8_t *wq, int32_t *acc, int T, int in,
                         int out)
{
    if (p == GI8_AUTO) aw_k_gemm_i8(xq, wq, acc, T, in, out);
    else if (p == GI8_FALLBACK) aw_k_gemm_i8_fallback(xq, wq, acc, T, in, out);
    else aw_k_gemm_i8_loop(xq, wq, acc, T, in, out);
}

static void run_gemm_i8(int T, int in, int out, uint64_t seed)
{
    int8_t *xq = xcalloc((size_t)T * in, 1), *wq = xcalloc((size_t)out * in, 1);
    int32_t *acc = xcalloc((size_t)T * out, sizeof(int32_t));
    int64_t *ref = xcalloc((size_t)T * out, sizeof(int64_t));
    aw_rng r;
    aw_rng_seed(&r, seed, "i8");
    for (size_t i = 0; i < (size_t)T * in; i++) xq[i] = (int8_t)((int)aw_rng_below(&r, 255) - 127);
    for (size_t i = 0; i < (size_t)out * in; i++)
        wq[i] = (int8_t)((int)aw_rng_below(&r, 255) - 127);
    aw_gemm_i8_ref(xq, wq, ref, T, in, out);
    for (int p = 0; p < GI8_NPATHS; p++) {
        for (size_t i = 0; i < (size_t)T * out; i++) acc[i] = 12345; /* must be overwritten */
        gemm_i8_path(p, xq, wq, acc, T, in, out);
        for (size_t i = 0; i < (size_t)T * out; i++)
            if ((int64_t)acc[i] != ref[i])
                fail_msg("%s %dx%dx%d at %zu: got %d, want %lld", gi8_names[p], T, in, out, i,
                         acc[i], (long long)ref[i]);
    }
    free(xq), free(wq), free(acc), free(ref);
}

static void test_gemm_i8(void **state)
{
    (void)state;
    /* T, in, out: tails of the 4-row blocks, in across the 512 tile */
    static const int shapes[][3] = {{1, 1, 1},   {3, 5, 7},     {4, 64, 64},
                                    {5, 513, 9}, {9, 1030, 67}, {17, 100, 130}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        run_gemm_i8(shapes[s][0], shapes[s][1], shapes[s][2], 120 + s);
}

static void test_gemm_i8_limits(void **state)
{
    (void)state;
    /* in = 1000, all +-127: every product at its largest magnitude */
    {
        enum { T = 5, IN = 1000, OUT = 3 };
        int8_t *xq = xcalloc((size_t)T * IN, 1), *wq = xcalloc((size_t)OUT * IN, 1);
        int32_t acc[T * OUT];
        int64_t ref[T * OUT];
        for (int t = 0; t < T; t++)
            for (int i = 0; i < IN; i++) xq[t * IN + i] = (int8_t)(t % 2 ? -127 : 127);
        for (int o = 0; o < OUT; o++)
            for (int i = 0; i < IN; i++)
                wq[o * IN + i] = (int8_t)(o == 2 ? (i % 3 ? -127 : 127) : o ? -127 : 127);
        aw_gemm_i8_ref(xq, wq, ref, T, IN, OUT);
        for (int p = 0; p < GI8_NPATHS; p++) {
            gemm_i8_path(p, xq, wq, acc, T, IN, OUT);
            for (int i = 0; i < T * OUT; i++) assert_true((int64_t)acc[i] == ref[i]);
            assert_int_equal(acc[0], 127 * 127 * 1000);
            assert_int_equal(acc[1], -127 * 127 * 1000);
        }
        free(xq), free(wq);
    }
    /* in = 133000, the header's bound: 127^2 * 133000 = 2145157000 < 2^31 */
    {
        enum { IN = 133000 };
        int8_t *xq = xcalloc(IN, 1), *wq = xcalloc((size_t)2 * IN, 1);
        for (int i = 0; i < IN; i++) xq[i] = 127, wq[i] = 127, wq[IN + i] = -127;
        for (int p = 0; p < GI8_NPATHS; p++) {
            int32_t acc[2];
            gemm_i8_path(p, xq, wq, acc, 1, IN, 2);
            assert_true((int64_t)acc[0] == 127LL * 127 * IN);
            assert_true((int64_t)acc[1] == -127LL * 127 * IN);
        }
        free(xq), free(wq);
    }
    /* -128 (not a code of this project, but int8): 128^2 * 131071 < 2^31 */
    {
        enum { IN = 131071 };
        int8_t *xq = xcalloc(IN, 1), *wq = xcalloc((size_t)2 * IN, 1);
        for (int i = 0; i < IN; i++) xq[i] = -128, wq[i] = -128, wq[IN + i] = 127;
        for (int p = 0; p < GI8_NPATHS; p++) {
            int32_t acc[2];
            gemm_i8_path(p, xq, wq, acc, 1, IN, 2);
            assert_true((int64_t)acc[0] == 128LL * 128 * IN);
            assert_true((int64_t)acc[1] == -128LL * 127 * IN);
        }
        free(xq), free(wq);
    }
}

static void test_dequant_acc(void **state)
{
    (void)state;
    enum { T = 3, OUT = 37 };
    int32_t acc[T * OUT];
    float b[OUT], y[T * OUT];
    aw_rng r;
    aw_rng_seed(&r, 130, "acc");
    for (int i = 0; i < T * OUT; i++)
        acc[i] = (int32_t)((int64_t)aw_rng_below(&r, 4000000001ull) - 2000000000);
    acc[0] = INT32_MAX, acc[1] = INT32_MIN + 1, acc[2] = 0, acc[3] = 16777217;
    aw_ref_fill_outliers(b, 1, OUT, 130, "b");
    const float xs = 0.0123f, ws = 3.1e-4f;
    for (int with_b = 0; with_b < 2; with_b++) {
        aw_k_dequant_acc(acc, with_b ? b : NULL, xs, ws, y, T, OUT);
        for (int t = 0; t < T; t++)
            for (int j = 0; j < OUT; j++) {
                double p = (double)acc[t * OUT + j] * ((double)xs * ws);
                double want = p + (with_b ? b[j] : 0.0);
                /* float rounding of the conversion, the scale, the product
                 * and the sum: a few ulps of the terms */
                double tol = 4.0 * FLT_EPSILON * (fabs(p) + (with_b ? fabs(b[j]) : 0.0));
                if (!(fabs(y[t * OUT + j] - want) <= tol))
                    fail_msg("dequant_acc acc=%d: got %.9g want %.9g", acc[t * OUT + j],
                             (double)y[t * OUT + j], want);
            }
    }
}

/* ---- folds and validation sums ---------------------------------------------- */

static void test_folds(void **state)
{
    (void)state;
    enum { R = 7, C = 13 };
    float w[R * C], w0[R * C], b[R], b0[R], sc[C], sr[R];
    aw_ref_fill_outliers(w0, R, C, 140, "w");
    fill_normal(b0, R, 2.0, 140, "b");
    for (int j = 0; j < C; j++) sc[j] = 0.1f + (float)j * 0.37f;
    for (int i = 0; i < R; i++) sr[i] = 0.3f + (float)i * 1.7f;

    memcpy(w, w0, sizeof w);
    aw_k_scale_cols(w, R, C, sc);
    for (int i = 0; i < R * C; i++)
        assert_true(same_bits(w[i], (float)((double)w0[i] * sc[i % C])));

    /* one rounding of the exact quotient: the double quotient rounded to float */
    memcpy(w, w0, sizeof w), memcpy(b, b0, sizeof b);
    aw_k_div_rows(w, b, R, C, sr);
    for (int i = 0; i < R * C; i++)
        assert_true(same_bits(w[i], (float)((double)w0[i] / sr[i / C])));
    for (int i = 0; i < R; i++) assert_true(same_bits(b[i], (float)((double)b0[i] / sr[i])));
    memcpy(w, w0, sizeof w);
    aw_k_div_rows(w, NULL, R, C, sr);
    for (int i = 0; i < R * C; i++)
        assert_true(same_bits(w[i], (float)((double)w0[i] / sr[i / C])));

    memcpy(b, b0, sizeof b);
    aw_k_div_vec(b, R, sr);
    for (int i = 0; i < R; i++) assert_true(same_bits(b[i], (float)((double)b0[i] / sr[i])));
}

static void test_err_sums(void **state)
{
    (void)state;
    static const int shapes[][2] = {{1, 1}, {3, 7}, {16, 130}};
    for (size_t s = 0; s < 3; s++) {
        int T = shapes[s][0], out = shapes[s][1];
        size_t n = (size_t)T * out;
        float *yr = xcalloc(n, sizeof(float)), *y = xcalloc(n, sizeof(float));
        aw_ref_fill_outliers(yr, T, out, 150 + s, "yr");
        for (size_t i = 0; i < n; i++) y[i] = yr[i] * 1.001f + 0.01f;
        double se, sr;
        aw_k_err_sums(yr, y, n, &se, &sr);
        long double se_r = 0, sr_r = 0;
        for (size_t i = 0; i < n; i++) {
            long double e = (long double)y[i] - yr[i];
            se_r += e * e;
            sr_r += (long double)yr[i] * yr[i];
        }
        assert_true(fabs(se - (double)se_r) <= 1e-12 * (double)se_r);
        assert_true(fabs(sr - (double)sr_r) <= 1e-12 * (double)sr_r);

        double *ce = xcalloc((size_t)out, sizeof(double));
        for (int j = 0; j < out; j++) ce[j] = 1.0; /* accumulates */
        aw_k_col_err_accum(yr, y, T, out, ce);
        for (int j = 0; j < out; j++) {
            long double c = 1.0L, a = 0;
            for (int t = 0; t < T; t++) {
                c += (long double)y[(size_t)t * out + j] - yr[(size_t)t * out + j];
                a += fabsl((long double)y[(size_t)t * out + j] - yr[(size_t)t * out + j]);
            }
            assert_true(fabs(ce[j] - (double)c) <= 1e-12 * (double)(a + 1.0L));
        }
        free(yr), free(y), free(ce);
    }
}

/* ---- logprob ------------------------------------------------------------------ */

static void test_logprob(void **state)
{
    (void)state;
    static const int Vs[] = {1, 7, 1000, 50272};
    float *l = xcalloc(50272, sizeof(float)), *ref = xcalloc(50272, sizeof(float));
    for (size_t s = 0; s < sizeof Vs / sizeof Vs[0]; s++) {
        int V = Vs[s];
        aw_ref_fill_outliers(l, 1, V, 160 + s, "logits");
        for (int j = 0; j < V; j++) l[j] *= 0.1f; /* outliers become 5-10 nats above */
        aw_rng r;
        aw_rng_seed(&r, 160 + s, "noise");
        for (int j = 0; j < V; j++) ref[j] = l[j] + (float)(0.2 * aw_rng_normal(&r));
        uint32_t targets[] = {0, (uint32_t)V / 2, (uint32_t)V - 1};
        for (int ti = 0; ti < 3; ti++) {
            double kl = 0.25, kl_r = 0.0;
            int am = -5, am_r = -7;
            double lp = aw_k_logprob_row(l, ref, V, targets[ti], &kl, &am);
            double lp_r = aw_logprob_row_ref(l, ref, V, targets[ti], &kl_r, &am_r);
            if (!(fabs(lp - lp_r) <= 1e-10 * (1.0 + fabs(lp_r))))
                fail_msg("logprob V=%d: got %.17g want %.17g", V, lp, lp_r);
            kl -= 0.25; /* it adds to *kl */
            if (!(fabs(kl - kl_r) <= 1e-10 + 1e-8 * kl_r))
                fail_msg("KL V=%d: got %.17g want %.17g", V, kl, kl_r);
            assert_true(kl >= -1e-12);
            assert_int_equal(am, am_r);
            /* KL of a row against itself is exactly 0 */
            double k0 = 0.0;
            aw_k_logprob_row(l, l, V, targets[ti], &k0, &am);
            assert_true(k0 == 0.0);
            /* ref or kl NULL: no KL, same log p */
            double kn = 3.0;
            assert_true(aw_k_logprob_row(l, NULL, V, targets[ti], &kn, &am) == lp);
            assert_true(kn == 3.0);
            assert_true(aw_k_logprob_row(l, ref, V, targets[ti], NULL, &am) == lp);
        }
    }
    /* argmax: lowest index among equal maxima */
    float t[10] = {0, 1, 2, 9, 3, 9, 4, 5, 9, 0};
    int am = -1;
    aw_k_logprob_row(t, NULL, 10, 3, NULL, &am);
    assert_int_equal(am, 3);
    float u[4] = {7, 7, 7, 7};
    double lp = aw_k_logprob_row(u, NULL, 4, 2, NULL, &am);
    assert_int_equal(am, 0);
    assert_true(fabs(lp - log(0.25)) < 1e-15);
    free(l), free(ref);
}

/* ---- bit-exact forms of the fast paths ----------------------------------------- */

/* The widening kernels against aw_dtype.h's scalar conversions, all 65536
 * inputs, bit for bit (NaN payloads, subnormals, -0). */
static void test_widen_exhaustive(void **state)
{
    (void)state;
    enum { N = 65536 };
    uint16_t *h = xcalloc(N, sizeof(uint16_t));
    float *y = xcalloc(N + 1, sizeof(float));
    for (int i = 0; i < N; i++) h[i] = (uint16_t)i;
    aw_k_f16_to_f32(h, y, N);
    for (int i = 0; i < N; i++) {
        float w = aw_f16_to_f32(h[i]);
        if (aw_f2u(y[i]) != aw_f2u(w))
            fail_msg("f16 0x%04x: got 0x%08x want 0x%08x", i, aw_f2u(y[i]), aw_f2u(w));
    }
    aw_k_bf16_to_f32(h, y, N);
    for (int i = 0; i < N; i++) assert_true(aw_f2u(y[i]) == aw_f2u(aw_bf16_to_f32(h[i])));
    /* an odd count and offset (vector tails) */
    y[N - 3] = 7.0f;
    aw_k_f16_to_f32(h + 1, y + 1, N - 5);
    assert_true(y[N - 3] == 7.0f);
    free(h), free(y);
}

/* Rounding to bf16 against aw_dtype.h's aw_f32_to_bf16: every f16 value
 * (through its exact f32), and f32 bit patterns that hit every rounding
 * case (ties both ways, carries into the exponent, the largest finite
 * values rounding to inf, subnormals, NaN payloads), bit for bit. */
static void test_bf16_rounding(void **state)
{
    (void)state;
    enum { N = 65536 };
    uint16_t *h = xcalloc(N, sizeof(uint16_t)), *b = xcalloc(N + 1, sizeof(uint16_t));
    float *f = xcalloc(N, sizeof(float));
    for (int i = 0; i < N; i++) h[i] = (uint16_t)i;
    aw_k_f16_to_bf16(h, b, N);
    for (int i = 0; i < N; i++) {
        uint16_t want = aw_f32_to_bf16(aw_f16_to_f32(h[i]));
        if (b[i] != want) fail_msg("f16 0x%04x -> bf16 0x%04x, want 0x%04x", i, b[i], want);
    }
    /* f32: each high half with low halves 0, 1, 0x7fff, 0x8000, 0x8001,
     * 0xffff and a few others, over a stride of high halves */
    static const uint32_t lows[] = {0, 1, 0x3fff, 0x7fff, 0x8000, 0x8001, 0xc000, 0xffff};
    aw_rng rng;
    aw_rng_seed(&rng, 12345, "bf16");
    for (uint32_t hi0 = 0; hi0 < 0x10000; hi0 += 0x1000 / 8) {
        int n = 0;
        for (uint32_t hi = hi0; hi < hi0 + 0x1000 / 8 && n + 8 <= N; hi++)
            for (size_t k = 0; k < sizeof lows / sizeof lows[0]; k++) {
                uint32_t u = hi << 16 | (k == 2 ? (uint32_t)(aw_rng_next(&rng) & 0xffff) : lows[k]);
                memcpy(&f[n++], &u, sizeof u);
            }
        aw_k_f32_to_bf16(f, b, (size_t)n);
        for (int i = 0; i < n; i++) {
            uint16_t want = aw_f32_to_bf16(f[i]);
            if (b[i] != want) fail_msg("f32 0x%08x -> bf16 0x%04x, want 0x%04x", aw_f2u(f[i]), b[i], want);
        }
    }
    /* an odd count and offset (vector tails): every value written, the
     * first one past them not */
    b[0] = b[N - 4] = 0x1234;
    aw_k_f16_to_bf16(h + 1, b + 1, N - 5);
    assert_int_equal(b[0], 0x1234);
    assert_int_equal(b[N - 4], 0x1234);
    for (int i = 1; i <= N - 5; i++)
        if (b[i] != aw_f32_to_bf16(aw_f16_to_f32(h[i]))) fail_msg("tail: f16 0x%04x -> bf16 0x%04x", h[i], b[i]);
    free(h), free(b), free(f);
}

/* The bf16 linear against a float64 product of the same bf16-rounded
 * inputs: each output within the fp32 accumulation bound gamma_in *
 * sum_j |x_j w_j| (+ one rounding of the bias add), for F32, F16 and BF16
 * weights, with outlier channels. */
static void run_linear_bf16(int T, int in, int out, uint64_t seed)
{
    float *x = xcalloc((size_t)T * in, 4), *w = xcalloc((size_t)out * in, 4), *b = xcalloc(out, 4);
    float *y = xcalloc((size_t)T * out, 4);
    uint16_t *xb = xcalloc((size_t)T * in, 2), *wb = xcalloc((size_t)out * in, 2), *w16 = xcalloc((size_t)out * in, 2);
    uint16_t *wbf = xcalloc((size_t)out * in, 2);
    aw_ref_fill_outliers(x, T, in, seed, "x");
    aw_ref_fill_outliers(w, out, in, seed + 1, "w");
    aw_ref_fill_outliers(b, 1, out, seed + 2, "b");
    for (size_t i = 0; i < (size_t)out * in; i++) {
        w16[i] = aw_f32_to_f16(w[i]);
        wbf[i] = aw_f32_to_bf16(w[i]);
    }
    double u = 0x1p-24, gamma = (in + 1) * u / (1.0 - (in + 1) * u);
    for (int kind = 0; kind < 3; kind++) {
        const void *wp = kind == 0 ? (const void *)w : kind == 1 ? (const void *)w16 : (const void *)wbf;
        aw_dtype dt = kind == 0 ? AW_DT_F32 : kind == 1 ? AW_DT_F16 : AW_DT_BF16;
        aw_assert_status(aw_k_linear_bf16(x, wp, dt, kind == 1 ? NULL : b, y, T, in, out, xb, wb), AW_OK, NULL);
        for (int t = 0; t < T; t++)
            for (int o = 0; o < out; o++) {
                double r = 0.0, mag = 0.0;
                for (int j = 0; j < in; j++) {
                    float wv = kind == 0 ? w[(size_t)o * in + j]
                               : kind == 1 ? aw_f16_to_f32(w16[(size_t)o * in + j])
                                           : aw_bf16_to_f32(wbf[(size_t)o * in + j]);
                    double p = (double)aw_bf16_to_f32(aw_f32_to_bf16(x[(size_t)t * in + j])) *
                               (double)aw_bf16_to_f32(aw_f32_to_bf16(wv));
                    r += p;
                    mag += fabs(p);
                }
                double bias = kind == 1 ? 0.0 : (double)b[o];
                double got = y[(size_t)t * out + o], bound = gamma * mag + u * fabs(r + bias) + 1e-30;
                if (!(fabs(got - (r + bias)) <= bound))
                    fail_msg("bf16 linear %dx%dx%d (%s weights) (%d, %d): %.9g, ref %.9g, bound %.3g", T, in, out,
                             aw_dtype_name(dt), t, o, got, r + bias, bound);
            }
    }
    free(x), free(w), free(b), free(y), free(xb), free(wb), free(w16), free(wbf);
}

static void test_linear_bf16(void **state)
{
    (void)state;
    aw_status st = aw_k_bf16_check();
    if (st != AW_OK) {
        /* oneDNN has no bf16 product on this CPU (no AVX-512): the program
         * refuses --cpu-precision bf16 with this message. Any other failure
         * (a wrong self-test product) is a failure. */
        if (st != AW_ERR_UNSUPPORTED || !strstr(aw_err_message(), "unimplemented"))
            fail_msg("bf16 self-test: %s", aw_err_message());
        printf("skipped: %s\n", aw_err_message());
        skip();
    }
    static const int shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 100, 17}, {64, 96, 130}, {5, 300, 77}, {128, 768, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        run_linear_bf16(shapes[s][0], shapes[s][1], shapes[s][2], 40 + s);
    /* the same shape again (a cached primitive): the same bits */
    enum { T = 9, IN = 70, OUT = 11 };
    float x[T * IN], w[OUT * IN], y1[T * OUT], y2[T * OUT];
    uint16_t xb[T * IN], wb[OUT * IN];
    aw_ref_fill_outliers(x, T, IN, 7, "x");
    aw_ref_fill_outliers(w, OUT, IN, 8, "w");
    aw_assert_status(aw_k_linear_bf16(x, w, AW_DT_F32, NULL, y1, T, IN, OUT, xb, wb), AW_OK, NULL);
    aw_assert_status(aw_k_linear_bf16(x, w, AW_DT_F32, NULL, y2, T, IN, OUT, xb, wb), AW_OK, NULL);
    assert_memory_equal(y1, y2, sizeof y1);
    aw_assert_status(aw_k_linear_bf16(x, w, AW_DT_I8, NULL, y2, T, IN, OUT, xb, wb), AW_ERR_DTYPE, "dtype");
}

/* LayerNorm as one row at a time in the scalar order (the form the kernel
 * must reproduce bit for bit whatever its row grouping and threads). */
static void layernorm_scalar(const float *x, const float *gamma, const float *beta, float *y, int T,
                             int d, float eps)
{
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * d;
        float *yr = y + (size_t)t * d;
        double s = 0.0;
        for (int j = 0; j < d; j++) s += xr[j];
        double mean = s / d;
        double v = 0.0;
        for (int j = 0; j < d; j++) {
            double c = xr[j] - mean;
            v += c * c;
        }
        double rstd = 1.0 / sqrt(v / d + (double)eps);
        for (int j = 0; j < d; j++)
            yr[j] = (float)(((double)xr[j] - mean) * rstd) * gamma[j] + beta[j];
    }
}

static void test_layernorm_exact(void **state)
{
    (void)state;
    static const int shapes[][2] = {{1, 5}, {3, 7}, {5, 768}, {263, 96}, {1030, 33}};
    int blas = openblas_get_num_threads();
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int T = shapes[s][0], d = shapes[s][1];
        size_t n = (size_t)T * d;
        float *x = xcalloc(n, sizeof(float)), *y = xcalloc(n, sizeof(float)), *yr = xcalloc(n, sizeof(float));
        float *g = xcalloc((size_t)d, sizeof(float)), *be = xcalloc((size_t)d, sizeof(float));
        aw_ref_fill_outliers(x, T, d, 500 + s, "x");
        fill_normal(g, (size_t)d, 1.0, 500 + s, "g");
        fill_normal(be, (size_t)d, 0.5, 500 + s, "b");
        if (T > 2) x[(size_t)2 * d] = NAN;
        if (T > 4) x[(size_t)4 * d + 1] = INFINITY;
        layernorm_scalar(x, g, be, yr, T, d, 1e-5f);
        for (int thr = 1; thr <= 3; thr++) {
            openblas_set_num_threads(thr);
            aw_k_layernorm(x, g, be, y, T, d, 1e-5f);
            assert_memory_equal(y, yr, n * sizeof(float));
        }
        free(x), free(y), free(yr), free(g), free(be);
    }
    openblas_set_num_threads(blas);
}

/* One head of attention in the plain scalar order: the score product, then
 * per row max, expf and the running float sum in key order, 1 / sum, zeros
 * past the diagonal, then the P v product; the same OpenBLAS calls as the
 * kernel, so the kernel must match it bit for bit. */
static void attention_scalar(const float *q, const float *k, const float *v, float *out, int n_seq, int L,
                             int n_heads, int n_kv, int d, float scale)
{
    int hd = d / n_heads, group = n_heads / n_kv, dkv = n_kv * hd;
    float *S = xcalloc((size_t)L * L, sizeof(float));
    for (int s = 0; s < n_seq; s++)
        for (int h = 0; h < n_heads; h++) {
            const float *qh = q + (size_t)s * L * d + (size_t)h * hd;
            const float *kh = k + (size_t)s * L * dkv + (size_t)(h / group) * hd;
            const float *vh = v + (size_t)s * L * dkv + (size_t)(h / group) * hd;
            float *oh = out + (size_t)s * L * d + (size_t)h * hd;
            for (int i0 = 0; i0 < L; i0 += 128) {
                int i1 = i0 + 128 < L ? i0 + 128 : L, m = i1 - i0;
                float *Sb = S + (size_t)i0 * L;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, i1, hd, scale, qh + (size_t)i0 * d, d,
                            kh, dkv, 0.0f, Sb, L);
                for (int i = i0; i < i1; i++) {
                    float *sr = S + (size_t)i * L;
                    int nk = i + 1;
                    float mx = sr[0];
                    for (int j = 1; j < nk; j++) mx = sr[j] > mx ? sr[j] : mx;
                    float sum = 0.0f;
                    for (int j = 0; j < nk; j++) {
                        sr[j] = expf(sr[j] - mx);
                        sum += sr[j];
                    }
                    float inv = 1.0f / sum;
                    for (int j = 0; j < nk; j++) sr[j] *= inv;
                    for (int j = nk; j < i1; j++) sr[j] = 0.0f;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hd, i1, 1.0f, Sb, L, vh, dkv, 0.0f,
                            oh + (size_t)i0 * d, d);
            }
        }
    free(S);
}

static void test_attention_exact(void **state)
{
    (void)state;
    /* n_seq, L, n_heads, n_kv_heads, d, heads_per_chunk */
    static const int cfg[][6] = {{2, 7, 3, 3, 12, 2}, {3, 33, 4, 4, 32, 4}, {1, 130, 2, 2, 16, 2},
                                 {2, 128, 12, 12, 96, 12}, {2, 33, 6, 2, 48, 4}, {1, 257, 3, 3, 24, 1}};
    int blas = openblas_get_num_threads();
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        att_in a = att_make(cfg[c][0], cfg[c][1], cfg[c][2], cfg[c][3], cfg[c][4], 600 + c);
        size_t n = (size_t)a.n_seq * a.L * a.d;
        /* scores of +-Inf and NaN in a few rows, and ties at a zero max */
        if (a.L > 5) {
            a.q[(size_t)3 * a.d] = NAN;
            a.q[(size_t)4 * a.d + 1] = INFINITY;
            for (int j = 0; j < a.d; j++) a.q[(size_t)5 * a.d + j] = (j & 1) ? 0.0f : -0.0f;
        }
        float *want = xcalloc(n, sizeof(float)), *out = xcalloc(n, sizeof(float));
        float scale = 1.0f / sqrtf((float)(a.d / a.n_heads));
        openblas_set_num_threads(1);
        attention_scalar(a.q, a.k, a.v, want, a.n_seq, a.L, a.n_heads, a.n_kv, a.d, scale);
        for (int thr = 1; thr <= 2; thr++) {
            openblas_set_num_threads(thr);
            memset(out, 0xff, n * sizeof(float));
            att_run(&a, cfg[c][5], out);
            assert_int_equal(openblas_get_num_threads(), thr); /* restored */
            if (memcmp(out, want, n * sizeof(float)) != 0)
                fail_msg("attention cfg %zu threads %d: not bit-identical to the scalar order", c, thr);
        }
        free(want), free(out);
        att_free(&a);
    }
    openblas_set_num_threads(blas);
}

/* The paired row statistics against two aw_k_logprob_row calls per row, bit
 * for bit, whatever the threads, and the rows alone (aw_k_logprob_rows)
 * against the pairs' lp_q; skipped rows untouched. */
static void test_logprob_pairs(void **state)
{
    (void)state;
    enum { N = 9 };
    static const int Vs[] = {1, 7, 5000};
    int blas = openblas_get_num_threads();
    for (size_t s = 0; s < sizeof Vs / sizeof Vs[0]; s++) {
        int V = Vs[s];
        float *l = xcalloc((size_t)N * V, sizeof(float)), *ref = xcalloc((size_t)N * V, sizeof(float));
        aw_ref_fill_outliers(ref, N, V, 700 + s, "ref");
        aw_rng r;
        aw_rng_seed(&r, 700 + s, "noise");
        for (size_t i = 0; i < (size_t)N * V; i++) ref[i] *= 0.1f, l[i] = ref[i] + (float)(0.2 * aw_rng_normal(&r));
        memcpy(l + (size_t)1 * V, ref + (size_t)1 * V, (size_t)V * sizeof(float)); /* KL exactly 0 */
        l[(size_t)2 * V] = NAN;
        ref[(size_t)3 * V + V / 2] = INFINITY;
        uint32_t tg[N];
        uint8_t skip[N] = {0};
        for (int i = 0; i < N; i++) tg[i] = (uint32_t)((i * 7919) % (V + 1)); /* some == V: out of range */
        skip[6] = 1;
        for (int thr = 1; thr <= 2; thr++) {
            openblas_set_num_threads(thr);
            double lf[N], lq[N], kl[N];
            int af[N], aq[N];
            lf[6] = lq[6] = kl[6] = 42.0, af[6] = aq[6] = 42;
            aw_k_logprob_pairs(l, ref, V, N, tg, skip, lf, lq, kl, af, aq);
            assert_true(lf[6] == 42.0 && lq[6] == 42.0 && kl[6] == 42.0 && af[6] == 42 && aq[6] == 42);
            /* the rows alone: the same lp_q bits */
            double lr[N];
            lr[6] = 42.0;
            aw_k_logprob_rows(l, V, N, tg, skip, lr);
            assert_true(lr[6] == 42.0);
            for (int i = 0; i < N; i++)
                if (!skip[i]) assert_memory_equal(&lr[i], &lq[i], sizeof(double));
            for (int i = 0; i < N; i++) {
                if (skip[i]) continue;
                const float *li = l + (size_t)i * V, *ri = ref + (size_t)i * V;
                int wf, wq;
                double k = 0.0;
                double want_f = aw_k_logprob_row(ri, NULL, V, tg[i], NULL, &wf);
                double want_q = aw_k_logprob_row(li, ri, V, tg[i], &k, &wq);
                assert_memory_equal(&lf[i], &want_f, sizeof(double));
                assert_memory_equal(&lq[i], &want_q, sizeof(double));
                assert_memory_equal(&kl[i], &k, sizeof(double));
                assert_int_equal(af[i], wf);
                assert_int_equal(aq[i], wq);
            }
        }
        free(l), free(ref);
    }
    openblas_set_num_threads(blas);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_relu),
        cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_embed),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_attention_vs_ref),
        cmocka_unit_test(test_attention_chunking),
        cmocka_unit_test(test_attention_gqa_repeat),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_absmax),
        cmocka_unit_test(test_int8_step),
        cmocka_unit_test(test_quantize_random),
        cmocka_unit_test(test_quantize_ties_and_clamp),
        cmocka_unit_test(test_dequantize),
        cmocka_unit_test(test_gemm_i8),
        cmocka_unit_test(test_gemm_i8_limits),
        cmocka_unit_test(test_dequant_acc),
        cmocka_unit_test(test_folds),
        cmocka_unit_test(test_err_sums),
        cmocka_unit_test(test_logprob),
        cmocka_unit_test(test_widen_exhaustive),
        cmocka_unit_test(test_bf16_rounding),
        cmocka_unit_test(test_linear_bf16),
        cmocka_unit_test(test_layernorm_exact),
        cmocka_unit_test(test_attention_exact),
        cmocka_unit_test(test_logprob_pairs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
