/*
 * test_lowbit.c - the low-bit weight kernels (aw_lowbit.h) against their
 * float64 references (lowbit_ref.h) on random data with outliers
 * (aw_ref_fill_outliers: about one channel in 10 scaled 50-100x, exact
 * zeros), plus rows that push the step dtype to its ends (F16 subnormal
 * and overflowing steps) and an all-zero group.
 *
 * Exact (bit for bit): steps, zero points, codes and dequantized values of
 * RTN for bits 3, 4, 8, symmetric and asymmetric, per-row and grouped
 * (G dividing `in` or not), steps stored as F32, F16 or BF16; packing
 * against a bit-by-bit reference and against words produced by
 * compressed-tensors 0.20.1's own pack_to_int32; the Gram |x| sums; GPTQ's
 * act_order steps (taken before the sweep: RTN's).
 *
 * Tolerances:
 *   Gram matrix: |h - h_ref| <= gamma_T * sum_t |x_ti x_tj| with gamma_T =
 *     T u / (1 - T u), u = 2^-24: the classical bound of a float dot product
 *     of length T (any order, with or without fma), so any correct BLAS
 *     passes and a wrong entry (or a wrong triangle) does not.
 *   GPTQ against the unblocked float64 reference: the kernel sweeps in float
 *     (U and the weights rounded to float, lazy block updates in another
 *     order), so a weight that lies within ~1e-6 relative of a rounding
 *     boundary may take the neighbouring code, and the different error it
 *     spreads moves the rest of that row a little: codes are not all equal.
 *     Required: >= 99% of codes equal, the dequantized weights within 1% of
 *     the reference's (Frobenius norm of the difference over the norm), the
 *     output error tr(dW H dW^T) within 0.1% of the reference's. Measured:
 *     >= 99.85% equal (most configurations 100%), <= 1.1e-3, <= 1e-6. A
 *     subtly different algorithm does not pass: parametrising a group from
 *     weights that lack some earlier column's error (GPTQ's reference code
 *     does so when a group starts inside a block) made 3-7% of the codes
 *     differ, the weights 6-12%, the error 2-4%.
 *   GPTQ against RTN: tr(dW H dW^T) strictly smaller, for every combination
 *     (measured: RTN's is 1.7-2.2x GPTQ's).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_dtype.h"
#include "aw_lowbit.h"
#include "aw_rng.h"
#include "kernels_ref.h"
#include "lowbit_ref.h"
#include "testutil.h"

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    assert_non_null(p);
    return p;
}

static int n_groups(int G, int in) { return G > 0 && G < in ? (in + G - 1) / G : 1; }

/* Weights (out, in): normal values with about one output row in 10 scaled
 * 50-100x and exact zeros (the outlier fill of the transpose), so that row
 * steps differ by two orders. */
static void fill_weights(float *w, int out, int in, uint64_t seed, const char *key)
{
    float *t = xcalloc((size_t)out * in, sizeof(float));
    aw_ref_fill_outliers(t, in, out, seed, key);
    for (int r = 0; r < out; r++)
        for (int j = 0; j < in; j++) w[(size_t)r * in + j] = t[(size_t)j * out + r] * 0.02f;
    free(t);
}

/* ---- the references' own rounding of steps --------------------------------------------------- */

/* aw_round_sdt_ref (frexp / ldexp) agrees with aw_dtype.h's bit-pattern
 * conversions on random floats over the whole range, subnormal halves and
 * overflow included: the step references below rest on it. */
static void test_round_sdt_ref(void **state)
{
    (void)state;
    aw_rng r;
    aw_rng_seed(&r, 1, "sdt");
    for (int i = 0; i < 200000; i++) {
        float f = (float)ldexp(aw_rng_uniform(&r) + 0.5, (int)aw_rng_below(&r, 80) - 40);
        if (i % 3 == 0) f = (float)ldexp(aw_rng_uniform(&r), (int)aw_rng_below(&r, 40) - 28); /* f16 subnormal */
        double h = aw_round_sdt_ref(f, AW_DT_F16), b = aw_round_sdt_ref(f, AW_DT_BF16);
        float hk = aw_f16_to_f32(aw_f32_to_f16(f)), bk = aw_bf16_to_f32(aw_f32_to_bf16(f));
        if (h != (double)hk || b != (double)bk)
            fail_msg("%a: f16 ref %a kernel %a, bf16 ref %a kernel %a", (double)f, h, (double)hk, b, (double)bk);
    }
}

/* ---- RTN: steps, codes, dequantization --------------------------------------------------------- */

static void check_rtn(int out, int in, int G, int bits, int sym, aw_dtype sdt, uint64_t seed)
{
    int ng = n_groups(G, in);
    size_t n = (size_t)out * in, np = (size_t)out * ng;
    float *w = xcalloc(n, 4), *step = xcalloc(np, 4), *step_r = xcalloc(np, 4);
    uint8_t *zero = xcalloc(np, 1), *zero_r = xcalloc(np, 1), *q = xcalloc(n, 1), *q_r = xcalloc(n, 1);
    float *dq = xcalloc(n, 4);
    double *dq_r = xcalloc(n, 8);
    fill_weights(w, out, in, seed, "w");
    /* row 1: tiny (F16 steps subnormal), row 2: huge (F16 steps overflow: 1),
     * row 3's first group: all zero (step 1) */
    for (int j = 0; j < in; j++) {
        w[(size_t)1 * in + j] *= 1e-5f;
        w[(size_t)2 * in + j] *= 1e9f;
    }
    int gl = G > 0 && G < in ? G : in;
    for (int j = 0; j < gl; j++) w[(size_t)3 * in + j] = 0.0f;
    memset(q, 0xaa, n);

    aw_k_group_params(w, out, in, G, bits, sym, sdt, step, zero);
    aw_group_params_ref(w, out, in, G, bits, sym, sdt, step_r, zero_r);
    char what[96];
    snprintf(what, sizeof what, "%dx%d G%d w%d %s %s", out, in, G, bits, sym ? "sym" : "asym", aw_dtype_name(sdt));
    for (size_t i = 0; i < np; i++) {
        if (memcmp(&step[i], &step_r[i], 4) != 0 || zero[i] != zero_r[i])
            fail_msg("%s: group %zu: step %a z %d, ref %a z %d", what, i, (double)step[i], zero[i],
                     (double)step_r[i], zero_r[i]);
    }
    assert_true(step[(size_t)3 * ng] == 1.0f); /* the all-zero group */
    if (sdt == AW_DT_F16) assert_true(step[(size_t)2 * ng] == 1.0f); /* overflowed to Inf */

    aw_k_group_quantize(w, out, in, G, bits, step, zero, q);
    aw_group_quantize_ref(w, out, in, G, bits, step, zero, q_r);
    for (size_t i = 0; i < n; i++)
        if (q[i] != q_r[i]) fail_msg("%s: code %zu: %d, ref %d", what, i, q[i], q_r[i]);

    aw_k_group_dequantize(q, step, zero, out, in, G, dq);
    aw_group_dequantize_ref(q, step, zero, out, in, G, dq_r);
    for (size_t i = 0; i < n; i++)
        if (dq[i] != (float)dq_r[i]) fail_msg("%s: value %zu: %a, ref %a", what, i, (double)dq[i], dq_r[i]);

    /* every code of every group is used near the group's ends: the codes
     * span 0 .. maxq somewhere (a clamp that is off by one shows) */
    int lo = 255, hi = 0;
    for (size_t i = 0; i < n; i++) lo = q[i] < lo ? q[i] : lo, hi = q[i] > hi ? q[i] : hi;
    assert_int_equal(lo, 0);
    if (bits < 8 || !sym) assert_int_equal(hi, (1 << bits) - 1);
    free(w), free(step), free(step_r), free(zero), free(zero_r), free(q), free(q_r), free(dq), free(dq_r);
}

static void test_rtn_exact(void **state)
{
    (void)state;
    static const int shapes[][3] = {{13, 256, 0}, {11, 256, 32}, {7, 512, 128}, {9, 200, 64}, {5, 37, 8}};
    static const int bits[] = {3, 4, 8};
    static const aw_dtype sdt[] = {AW_DT_F32, AW_DT_F16, AW_DT_BF16};
    uint64_t seed = 100;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int b = 0; b < 3; b++)
            for (int sym = 0; sym < 2; sym++)
                for (int d = 0; d < 3; d++)
                    check_rtn(shapes[s][0], shapes[s][1], shapes[s][2], bits[b], sym, sdt[d], seed++);
}

/* ---- packing ------------------------------------------------------------------------------------ */

static void test_pack_ref(void **state)
{
    (void)state;
    static const size_t ns[] = {1, 2, 7, 31, 32, 33, 101, 1000, 1001};
    aw_rng r;
    aw_rng_seed(&r, 7, "pack");
    for (int bits = 1; bits <= 8; bits++)
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
            size_t n = ns[k], nw = aw_k_packed_words(n, bits);
            assert_int_equal(nw, (n * bits + 31) / 32);
            uint8_t *q = xcalloc(n, 1), *back = xcalloc(n, 1), *back_r = xcalloc(n, 1);
            uint32_t *wk = xcalloc(nw + 1, 4), *wr = xcalloc(nw + 1, 4);
            for (size_t i = 0; i < n; i++) q[i] = (uint8_t)aw_rng_below(&r, 1u << bits);
            q[n - 1] = (uint8_t)((1u << bits) - 1); /* the last code all ones: it fills the tail */
            for (size_t i = 0; i <= nw; i++) wk[i] = 0xa5a5a5a5u; /* poison, and a guard word */
            aw_k_pack_bits(q, n, bits, wk);
            aw_pack_bits_ref(q, n, bits, wr);
            assert_memory_equal(wk, wr, nw * 4); /* includes the zero tail of the last word */
            assert_int_equal(wk[nw], 0xa5a5a5a5u);
            aw_k_unpack_bits(wk, n, bits, back);
            aw_unpack_bits_ref(wr, n, bits, back_r);
            assert_memory_equal(back, q, n);
            assert_memory_equal(back_r, q, n);
            /* bits above b in a code are ignored */
            for (size_t i = 0; i < n; i++) back[i] = (uint8_t)(q[i] | (0xffu << bits));
            if (bits < 8) {
                aw_k_pack_bits(back, n, bits, wk);
                assert_memory_equal(wk, wr, nw * 4);
            }
            free(q), free(back), free(back_r), free(wk), free(wr);
        }
}

/* Words from compressed-tensors itself. Produced with /work/venv/bin/python
 * (torch 2.15, compressed-tensors 0.20.1):
 *   from compressed_tensors.compressors.pack_quantized.helpers import pack_to_int32
 *   codes = [(i * 5 + 3) % (1 << bits) for i in range(n)]          # unsigned q
 *   signed = torch.tensor([codes], dtype=torch.int32) - (1 << (bits - 1))
 *   words = pack_to_int32(signed.to(torch.int8), bits)[0]           # & 0xffffffff
 * for (bits, n) = (3, 23) and (4, 13) (pack_to_int32 takes q - 2^(b-1) and
 * adds the offset back). One row: compressed-tensors packs each row of a
 * weight separately, ceil(in * b / 32) words per row. In the 3-bit case
 * code 10 straddles words 0 and 1, code 21 words 1 and 2. */
static void test_pack_compressed_tensors(void **state)
{
    (void)state;
    static const uint32_t want3[] = {0x43c67543u, 0x7543c675u, 0x6u};
    static const uint32_t want4[] = {0x61c72d83u, 0xfa50bu};
    for (int c = 0; c < 2; c++) {
        int bits = c == 0 ? 3 : 4;
        size_t n = c == 0 ? 23 : 13;
        const uint32_t *want = c == 0 ? want3 : want4;
        uint8_t q[32], back[32];
        uint32_t words[4];
        for (size_t i = 0; i < n; i++) q[i] = (uint8_t)((i * 5 + 3) % (1u << bits));
        assert_int_equal(aw_k_packed_words(n, bits), c == 0 ? 3 : 2);
        aw_k_pack_bits(q, n, bits, words);
        assert_memory_equal(words, want, aw_k_packed_words(n, bits) * 4);
        aw_k_unpack_bits(want, n, bits, back);
        assert_memory_equal(back, q, n);
    }
}

/* ---- Gram matrix ----------------------------------------------------------------------------------- */

static void check_gram(int T, int in, uint64_t seed)
{
    size_t nx = (size_t)T * in, nh = (size_t)in * in;
    float *x = xcalloc(nx, 4), *h = xcalloc(nh, 4), *xa = xcalloc(nx, 4);
    double *hr = xcalloc(nh, 8), *mag = xcalloc(nh, 8), *as = xcalloc(in, 8), *asr = xcalloc(in, 8);
    aw_ref_fill_outliers(x, T, in, seed, "x");
    for (size_t i = 0; i < nx; i++) xa[i] = fabsf(x[i]);
    /* the upper triangle holds a sentinel that must survive */
    for (int i = 0; i < in; i++)
        for (int j = i + 1; j < in; j++) h[(size_t)i * in + j] = 1234.5f + (float)j;
    /* two calls: rows [0, T1) and [T1, T) accumulate */
    int T1 = T / 3;
    aw_k_gram_accum(x, T1, in, h, as);
    aw_k_gram_accum(x + (size_t)T1 * in, T - T1, in, h, as);
    aw_gram_ref(x, T, in, hr, asr);
    aw_gram_ref(xa, T, in, mag, asr); /* mag = sum_t |x_ti x_tj| (asr the same either way) */
    double u = 0x1p-24, gamma = (T + 1) * u / (1.0 - (T + 1) * u); /* T products + the accumulation */
    double worst = 0.0;
    for (int i = 0; i < in; i++) {
        for (int j = 0; j <= i; j++) {
            size_t p = (size_t)i * in + j;
            double e = fabs((double)h[p] - hr[p]), bound = gamma * mag[p];
            if (!(e <= bound)) fail_msg("gram %dx%d (%d, %d): %g, ref %g (bound %g)", T, in, i, j, (double)h[p], hr[p], bound);
            if (mag[p] > 0) worst = fmax(worst, e / mag[p]);
        }
        for (int j = i + 1; j < in; j++) assert_true(h[(size_t)i * in + j] == 1234.5f + (float)j);
    }
    for (int j = 0; j < in; j++)
        if (as[j] != asr[j]) fail_msg("abssum %dx%d [%d]: %.17g, ref %.17g", T, in, j, as[j], asr[j]);
    /* h NULL: the same |x| sums alone */
    memset(as, 0, (size_t)in * sizeof *as);
    aw_k_gram_accum(x, T1, in, NULL, as);
    aw_k_gram_accum(x + (size_t)T1 * in, T - T1, in, NULL, as);
    for (int j = 0; j < in; j++)
        if (as[j] != asr[j]) fail_msg("abssum alone %dx%d [%d]: %.17g, ref %.17g", T, in, j, as[j], asr[j]);
    free(x), free(h), free(xa), free(hr), free(mag), free(as), free(asr);
}

static void test_gram(void **state)
{
    (void)state;
    static const int shapes[][2] = {{1, 1}, {3, 5}, {37, 64}, {300, 129}, {1000, 96}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) check_gram(shapes[i][0], shapes[i][1], 300 + i);
}

/* ---- GPTQ ------------------------------------------------------------------------------------------- */

/* H (in, in) = X^T X in double from X (T, in): outlier channels and exact
 * zeros (aw_ref_fill_outliers) plus a shared component of rank 8 (8 f M, f
 * (T, 8), M (8, in) normal: about 23 rms per channel, so the outliers stand
 * 2-4x above it) that correlates the channels as a layer's inputs are.
 * Independent channels would make H nearly diagonal, where GPTQ has almost
 * nothing to gain over RTN (with a weaker shared part, 1x, it lost to RTN
 * at w3 g32 asym: the error it spreads widens later groups). Input `dead`
 * (if >= 0) is zero on every row. */
static double *make_hessian(int T, int in, int dead, uint64_t seed)
{
    enum { RANK = 8 };
    float *x = xcalloc((size_t)T * in, 4), *f = xcalloc((size_t)T * RANK, 4), *M = xcalloc((size_t)RANK * in, 4);
    double *H = xcalloc((size_t)in * in, 8), *as = xcalloc(in, 8);
    aw_ref_fill_outliers(x, T, in, seed, "x");
    aw_rng r;
    aw_rng_seed(&r, seed, "mix");
    for (int i = 0; i < T * RANK; i++) f[i] = (float)aw_rng_normal(&r);
    for (int i = 0; i < RANK * in; i++) M[i] = (float)aw_rng_normal(&r);
    for (int t = 0; t < T; t++)
        for (int j = 0; j < in; j++) {
            float s = 0.0f;
            for (int k = 0; k < RANK; k++) s += f[(size_t)t * RANK + k] * M[(size_t)k * in + j];
            x[(size_t)t * in + j] += 8.0f * s;
        }
    free(f), free(M);
    if (dead >= 0)
        for (int t = 0; t < T; t++) x[(size_t)t * in + dead] = 0.0f;
    aw_gram_ref(x, T, in, H, as);
    free(x), free(as);
    return H;
}

typedef struct {
    double frac_equal; /* codes equal to the reference's */
    double wdiff;      /* ||w - w_ref||_F / ||w_ref||_F, dequantized */
    double err, err_ref, err_rtn; /* tr(dW H dW^T): kernel, reference, RTN */
} gptq_cmp;

/* aw_k_gptq against aw_gptq_ref and RTN on one configuration. */
static gptq_cmp run_gptq(int out, int in, int T, int bits, int G, int sym, int act, int block, aw_dtype sdt,
                         uint64_t seed)
{
    int ng = n_groups(G, in), dead = in / 3;
    size_t n = (size_t)out * in, np = (size_t)out * ng;
    float *w0 = xcalloc(n, 4), *w = xcalloc(n, 4), *step = xcalloc(np, 4), *step_r = xcalloc(np, 4);
    float *rs = xcalloc(np, 4), *rdq = xcalloc(n, 4);
    uint8_t *zero = xcalloc(np, 1), *zero_r = xcalloc(np, 1), *q = xcalloc(n, 1), *q_r = xcalloc(n, 1);
    uint8_t *rz = xcalloc(np, 1), *rq = xcalloc(n, 1);
    double *wq = xcalloc(n, 8), *wq_r = xcalloc(n, 8);
    double *H = make_hessian(T, in, dead, seed);
    fill_weights(w0, out, in, seed, "w");
    memcpy(w, w0, n * 4);
    aw_gptq_opts o = {.bits = bits, .group = G, .sym = sym, .act_order = act, .block = block,
                      .damp_frac = 0.01, .sdt = sdt};
    char what[96];
    snprintf(what, sizeof what, "%dx%d w%d G%d %s%s block %d %s", out, in, bits, G, sym ? "sym" : "asym",
             act ? " act_order" : "", block, aw_dtype_name(sdt));
    aw_assert_status(aw_k_gptq(w, H, out, in, &o, step, zero, q), AW_OK, NULL);
    assert_int_equal(aw_gptq_ref(w0, H, out, in, bits, G, sym, act, 0.01, sdt, wq_r, step_r, zero_r, q_r), 0);

    /* the returned weights are the dequantized codes; the dead input is 0 */
    float *chk = xcalloc(n, 4);
    aw_k_group_dequantize(q, step, zero, out, in, G, chk);
    assert_memory_equal(chk, w, n * 4);
    free(chk);
    for (int r = 0; r < out; r++) assert_true(w[(size_t)r * in + dead] == 0.0f);
    if (act) {
        /* act_order: the steps are RTN's of the weights before the sweep
         * (dead input zeroed), exactly */
        float *wz = xcalloc(n, 4);
        memcpy(wz, w0, n * 4);
        for (int r = 0; r < out; r++) wz[(size_t)r * in + dead] = 0.0f;
        aw_group_params_ref(wz, out, in, G, bits, sym, sdt, rs, rz);
        assert_memory_equal(step, rs, np * 4);
        assert_memory_equal(zero, rz, np);
        assert_memory_equal(step_r, rs, np * 4);
        free(wz);
    }
    size_t eq = 0;
    double dd = 0.0, rr = 0.0;
    for (size_t i = 0; i < n; i++) {
        eq += q[i] == q_r[i];
        wq[i] = w[i];
        dd += (wq[i] - wq_r[i]) * (wq[i] - wq_r[i]);
        rr += wq_r[i] * wq_r[i];
    }

    /* RTN on the same weights (no dead-input handling: its error there is
     * part of what GPTQ avoids) */
    aw_k_group_params(w0, out, in, G, bits, sym, sdt, rs, rz);
    aw_k_group_quantize(w0, out, in, G, bits, rs, rz, rq);
    aw_k_group_dequantize(rq, rs, rz, out, in, G, rdq);
    double *rtn = xcalloc(n, 8);
    for (size_t i = 0; i < n; i++) rtn[i] = rdq[i];
    gptq_cmp c = {(double)eq / (double)n, sqrt(dd / rr), aw_output_err_ref(w0, wq, H, out, in),
                  aw_output_err_ref(w0, wq_r, H, out, in), aw_output_err_ref(w0, rtn, H, out, in)};
    print_message("%-40s codes equal %.5f  w diff %.1e  err %.6g ref %.6g (%+.1e)  rtn %.6g\n", what, c.frac_equal, c.wdiff, c.err,
                  c.err_ref, c.err / c.err_ref - 1.0, c.err_rtn);
    free(rtn), free(w0), free(w), free(step), free(step_r), free(rs), free(rdq), free(zero), free(zero_r);
    free(q), free(q_r), free(rz), free(rq), free(wq), free(wq_r), free(H);
    return c;
}

static void test_gptq_vs_ref(void **state)
{
    (void)state;
    uint64_t seed = 500;
    /* in = 256: groups align with blocks of 128; block 48 makes groups of
     * 32 straddle block ends (the kernel then ends the block early); in =
     * 200 leaves a partial last group; in = 99 is odd, with blocks of 40 */
    static const int cfg[][4] = {{256, 128, 512, AW_DT_F16}, {256, 48, 512, AW_DT_F32}, {200, 128, 400, AW_DT_BF16},
                                 {256, 128, 512, AW_DT_F32}, {99, 40, 300, AW_DT_F16}};
    for (size_t s = 0; s < sizeof cfg / sizeof cfg[0]; s++)
        for (int G = 0; G <= 32; G += 32)
            for (int sym = 0; sym < 2; sym++)
                for (int act = 0; act < 2; act++) {
                    gptq_cmp c = run_gptq(40, cfg[s][0], cfg[s][2], 4, G, sym, act, cfg[s][1], cfg[s][3], seed++);
                    assert_true(c.frac_equal >= 0.99);
                    assert_true(c.wdiff <= 1e-2);
                    assert_true(fabs(c.err / c.err_ref - 1.0) <= 1e-3);
                }
    /* groups of 24 and 40: group starts inside the kernel's runs of 16
     * columns (a run then ends early) and, for 40, inside blocks of 128 */
    for (int G = 24; G <= 40; G += 16)
        for (int act = 0; act < 2; act++) {
            gptq_cmp c = run_gptq(40, 200, 400, 3, G, G == 24, act, 128, AW_DT_F32, seed++);
            assert_true(c.frac_equal >= 0.99);
            assert_true(c.wdiff <= 1e-2);
            assert_true(fabs(c.err / c.err_ref - 1.0) <= 1e-3);
        }
}

static void test_gptq_beats_rtn(void **state)
{
    (void)state;
    uint64_t seed = 700;
    for (int bits = 3; bits <= 4; bits++)
        for (int G = 0; G <= 32; G += 32)
            for (int sym = 0; sym < 2; sym++)
                for (int act = 0; act < 2; act++) {
                    gptq_cmp c = run_gptq(64, 192, 768, bits, G, sym, act, 128, AW_DT_F16, seed++);
                    if (!(c.err < c.err_rtn))
                        fail_msg("w%d G%d sym %d act %d: GPTQ %g >= RTN %g", bits, G, sym, act, c.err, c.err_rtn);
                }
}

/* A Hessian that is not positive definite at damp 1% but is at 10%: the
 * retry gives exactly what damp 10% gives; one that never is (and one with
 * a NaN or an Inf) fails with AW_ERR_NONFINITE. */
static void test_gptq_damp_retry(void **state)
{
    (void)state;
    enum { OUT = 16, IN = 64, T = 32 }; /* T < IN: X^T X singular */
    size_t n = (size_t)OUT * IN;
    double *H = make_hessian(T, IN, -1, 900);
    double m = 0.0;
    for (int j = 0; j < IN; j++) m += H[(size_t)j * IN + j];
    m /= IN;
    for (int j = 0; j < IN; j++) H[(size_t)j * IN + j] -= 0.03 * m; /* min eigenvalue about -0.03 m */
    float *w0 = xcalloc(n, 4), *w1 = xcalloc(n, 4), *w2 = xcalloc(n, 4), *s1 = xcalloc(OUT, 4), *s2 = xcalloc(OUT, 4);
    uint8_t *z1 = xcalloc(OUT, 1), *z2 = xcalloc(OUT, 1), *q1 = xcalloc(n, 1), *q2 = xcalloc(n, 1);
    fill_weights(w0, OUT, IN, 900, "w");
    memcpy(w1, w0, n * 4), memcpy(w2, w0, n * 4);
    aw_gptq_opts o = {.bits = 4, .group = 0, .sym = 1, .act_order = 0, .block = 128, .damp_frac = 0.01, .sdt = AW_DT_F32};
    aw_assert_status(aw_k_gptq(w1, H, OUT, IN, &o, s1, z1, q1), AW_OK, NULL);
    o.damp_frac = 0.1;
    aw_assert_status(aw_k_gptq(w2, H, OUT, IN, &o, s2, z2, q2), AW_OK, NULL);
    assert_memory_equal(w1, w2, n * 4);
    assert_memory_equal(q1, q2, n);
    /* never positive definite: damp 0 stays 0 */
    o.damp_frac = 0.0;
    memcpy(w1, w0, n * 4);
    aw_assert_status(aw_k_gptq(w1, H, OUT, IN, &o, s1, z1, q1), AW_ERR_NONFINITE, "not positive definite");
    /* a NaN off the diagonal (OpenBLAS's dpotrf would let it through), then
     * on it */
    o.damp_frac = 0.01;
    H[5 * IN + 7] = H[7 * IN + 5] = NAN;
    aw_assert_status(aw_k_gptq(w1, H, OUT, IN, &o, s1, z1, q1), AW_ERR_NONFINITE, "non-finite entry");
    H[5 * IN + 5] = INFINITY;
    aw_assert_status(aw_k_gptq(w1, H, OUT, IN, &o, s1, z1, q1), AW_ERR_NONFINITE, "H[5][5]");
    aw_assert_status(aw_k_gptq(w1, H, OUT, IN, &(aw_gptq_opts){.bits = 9, .block = 1}, s1, z1, q1),
                     AW_ERR_ARG, "bits 9");
    aw_err_clear();
    free(H), free(w0), free(w1), free(w2), free(s1), free(s2), free(z1), free(z2), free(q1), free(q2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_sdt_ref),
        cmocka_unit_test(test_rtn_exact),
        cmocka_unit_test(test_pack_ref),
        cmocka_unit_test(test_pack_compressed_tensors),
        cmocka_unit_test(test_gram),
        cmocka_unit_test(test_gptq_vs_ref),
        cmocka_unit_test(test_gptq_beats_rtn),
        cmocka_unit_test(test_gptq_damp_retry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
