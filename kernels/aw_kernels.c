/*
 * aw_kernels.c - CPU backend of the kernels (see aw_kernels.h). Matrix
 * products go to OpenBLAS; the element-wise loops are written so that gcc -O3
 * vectorises them for baseline x86-64 (no branches in the inner loops, no
 * floating-point reductions that would need reassociation). Every loop that
 * accumulates does so in a fixed order, so results do not depend on the
 * thread count or the chunking chosen by the caller.
 */
#include "aw_kernels.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "aw_kernels_inline.h"

/* aw_quant_i8's rounding needs float expressions evaluated in float. */
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "aw_quant_i8 needs FLT_EVAL_METHOD == 0 (SSE, not x87)"
#endif
#ifdef __FAST_MATH__
#error "aw_kernels.c must not be built with -ffast-math (rounding, NaN and Inf semantics)"
#endif

/* The memory-bound loops also get an AVX2 clone (aw_clones.h): on SSE2
 * alone the int32 min and narrowing in aw_quant_i8 cost about twice as many
 * instructions. */
#include "aw_clones.h"

/* Threads of the loops below that split independent work (rows, heads):
 * OMP_NUM_THREADS when set, else as many as OpenBLAS uses (the pipeline sets
 * that per rank), as aw_gemm_i8.c does for the int8 product. The split
 * never changes what a thread computes or the order of any sum, so results
 * do not depend on it. */
static pthread_once_t g_thr_once = PTHREAD_ONCE_INIT;
static int g_omp_user;
static void read_thr_env(void)
{
    const char *e = getenv("OMP_NUM_THREADS");
    g_omp_user = e && *e;
}
static int k_threads(void)
{
    pthread_once(&g_thr_once, read_thr_env);
    int n = g_omp_user ? omp_get_max_threads() : openblas_get_num_threads();
    return n > 0 ? n : 1;
}

/* ---- linear ------------------------------------------------------------- */

void aw_k_linear(const float *x, const float *w, const float *b, float *y, int T, int in, int out)
{
    if (T <= 0 || out <= 0) return;
    /* bias rows first, then y += x W^T: one pass over y instead of two */
    if (b) {
        for (int t = 0; t < T; t++) memcpy(y + (size_t)t * out, b, (size_t)out * sizeof(float));
    }
    if (in <= 0) {
        if (!b) memset(y, 0, (size_t)T * out * sizeof(float));
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, out, in, 1.0f, x, in, w, in,
                b ? 1.0f : 0.0f, y, out);
}

/* ---- weight widening ------------------------------------------------------ */

/* One binary16 as the bits of its binary32 value, branch-free, so that the
 * loop vectorises (aw_f16_to_f32 of aw_dtype.h renormalises subnormals in a
 * loop): the same bits for all 65536 inputs (tests/kernels checks every
 * one). Normal: exponent rebiased 15 -> 127; Inf and NaN: exponent all ones,
 * payload kept (no quieting); zero and subnormal: m * 2^-24 is exact in
 * float, so an int -> float conversion and a power-of-two product make it
 * (m = 0 gives +0, the sign is or-ed in after). */
static inline AW_INLINE uint32_t f16_bits(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    uint32_t normal = ((e + 112u) << 23) | (m << 13);
    uint32_t special = 0x7f800000u | (m << 13);
    uint32_t sub = aw_f2u((float)(int32_t)m * 0x1p-24f);
    /* selects as masks: written with ?: gcc branches and does not vectorise */
    uint32_t is_special = 0u - (uint32_t)(e == 0x1fu), is_sub = 0u - (uint32_t)(e == 0);
    uint32_t r = (normal & ~(is_special | is_sub)) | (special & is_special) | (sub & is_sub);
    return sign | r;
}

AW_CLONES void aw_k_f16_to_f32(const uint16_t *src, float *dst, size_t n)
{
    uint32_t *d = (uint32_t *)(void *)dst;
    for (size_t i = 0; i < n; i++) d[i] = f16_bits(src[i]);
}

AW_CLONES void aw_k_bf16_to_f32(const uint16_t *src, float *dst, size_t n)
{
    uint32_t *d = (uint32_t *)(void *)dst;
    for (size_t i = 0; i < n; i++) d[i] = (uint32_t)src[i] << 16;
}

/* f32 bits -> bf16 bits, nearest with ties to even; NaN stays NaN (quiet,
 * sign and top payload bits kept), as aw_dtype.h's aw_f32_to_bf16. Selects
 * as masks so that the loops vectorise. */
static inline AW_INLINE uint16_t bf16_of_bits(uint32_t u)
{
    uint32_t is_nan = 0u - (uint32_t)((u & 0x7fffffffu) > 0x7f800000u);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    uint32_t quiet = (u >> 16) | 0x40u;
    return (uint16_t)((rounded & ~is_nan) | (quiet & is_nan));
}

AW_CLONES void aw_k_f32_to_bf16(const float *src, uint16_t *dst, size_t n)
{
    const uint32_t *s = (const uint32_t *)(const void *)src;
    for (size_t i = 0; i < n; i++) dst[i] = bf16_of_bits(s[i]);
}

AW_CLONES void aw_k_f16_to_bf16(const uint16_t *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = bf16_of_bits(f16_bits(src[i]));
}

/* ---- layernorm ---------------------------------------------------------- */

/* LayerNorm of rows r0..r0+nr-1 (nr <= LN_ROWS) of x. Per row exactly the
 * scalar two-pass form of aw_k_layernorm's contract: s = sum x (double, j in
 * order), mean = s / d, v = sum (x - mean)^2 (double, j in order), rstd =
 * 1 / sqrt(v / d + eps), y = (float)((x - mean) * rstd) * gamma + beta. The
 * rows' sums run side by side so that LN_ROWS independent add chains hide
 * the latency of each; no row's order changes. Two passes in double: exact
 * enough that outlier channels (100x the others) do not cancel the variance
 * of the rest. */
enum { LN_ROWS = 4 };
static void layernorm_rows(const float *x, const float *gamma, const float *beta, float *y, int nr,
                           int d, float eps)
{
    double s[LN_ROWS] = {0}, mean[LN_ROWS], v[LN_ROWS] = {0}, rstd[LN_ROWS];
    if (nr == LN_ROWS) {
        for (int j = 0; j < d; j++)
            for (int r = 0; r < LN_ROWS; r++) s[r] += x[(size_t)r * d + j];
    } else {
        for (int j = 0; j < d; j++)
            for (int r = 0; r < nr; r++) s[r] += x[(size_t)r * d + j];
    }
    for (int r = 0; r < nr; r++) mean[r] = s[r] / d;
    if (nr == LN_ROWS) {
        for (int j = 0; j < d; j++)
            for (int r = 0; r < LN_ROWS; r++) {
                double c = x[(size_t)r * d + j] - mean[r];
                v[r] += c * c;
            }
    } else {
        for (int j = 0; j < d; j++)
            for (int r = 0; r < nr; r++) {
                double c = x[(size_t)r * d + j] - mean[r];
                v[r] += c * c;
            }
    }
    for (int r = 0; r < nr; r++) rstd[r] = 1.0 / sqrt(v[r] / d + (double)eps);
    /* centred in double too: a mean far from 0 relative to the spread
     * would lose digits if rounded to float first. Element-wise only, each
     * row read before it is written, so y may alias x. */
    for (int r = 0; r < nr; r++) {
        const float *xr = x + (size_t)r * d;
        float *yr = y + (size_t)r * d;
        double mu = mean[r], rs = rstd[r];
        for (int j = 0; j < d; j++) yr[j] = (float)(((double)xr[j] - mu) * rs) * gamma[j] + beta[j];
    }
}

void aw_k_layernorm(const float *x, const float *gamma, const float *beta, float *y, int T, int d,
                    float eps)
{
    if (d <= 0 || T <= 0) return;
    int ng = (T + LN_ROWS - 1) / LN_ROWS;
    /* rows are independent: groups of rows over the threads (a few rows
     * per thread are not worth a fork) */
    int nt = ng >= 64 ? k_threads() : 1;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int g = 0; g < ng; g++) {
        int t = g * LN_ROWS, nr = T - t < LN_ROWS ? T - t : LN_ROWS;
        layernorm_rows(x + (size_t)t * d, gamma, beta, y + (size_t)t * d, nr, d, eps);
    }
}

void aw_k_rmsnorm(const float *x, const float *gamma, float *y, int T, int d, float eps)
{
    if (d <= 0) return;
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * d;
        float *yr = y + (size_t)t * d;
        /* squares in double: exact (a float squared fits a double), so only
         * the sum rounds; outlier channels do not swamp the rest */
        double s = 0.0;
        for (int j = 0; j < d; j++) s += (double)xr[j] * xr[j];
        double rstd = 1.0 / sqrt(s / d + (double)eps);
        /* element-wise only, so y may alias x */
        for (int j = 0; j < d; j++) yr[j] = (float)((double)xr[j] * rstd) * gamma[j];
    }
}

/* ---- activations -------------------------------------------------------- */

void aw_k_relu(float *x, size_t n)
{
    /* NaN stays NaN (NaN < 0 is false), so statistics downstream still see it */
    for (size_t i = 0; i < n; i++) x[i] = x[i] < 0.0f ? 0.0f : x[i];
}

void aw_k_swiglu(const float *gate, const float *up, float *out, size_t n)
{
    /* element-wise, each value read before it is written: out may alias
     * gate or up (no restrict) */
    for (size_t i = 0; i < n; i++) out[i] = aw_swiglu1(gate[i], up[i]);
}

/* ---- embedding ---------------------------------------------------------- */

void aw_k_embed(const uint32_t *tokens, int n_seq, int L, const float *E, const float *P,
                int pos_offset, int d, float *h)
{
    if (d <= 0) return;
    for (int s = 0; s < n_seq; s++) {
        for (int p = 0; p < L; p++) {
            size_t row = (size_t)s * L + p;
            const float *e = E + (size_t)tokens[row] * d;
            float *hr = h + row * d;
            if (!P) {
                memcpy(hr, e, (size_t)d * sizeof(float));
                continue;
            }
            const float *pp = P + (size_t)(p + pos_offset) * d;
            for (int j = 0; j < d; j++) hr[j] = e[j] + pp[j];
        }
    }
}

/* ---- rotary positions --------------------------------------------------- */

/* Pairs per block: cos and sin of a block of pairs are computed once per
 * position (on the stack) and applied to every sequence and head, so the
 * double pow/cos/sin run L * head_dim/2 times per call, not per element. */
enum { AW_ROPE_PAIRS = 64 };

void aw_k_rope(float *x, int n_seq, int L, int n_heads, int head_dim, float theta)
{
    if (n_seq <= 0 || L <= 0 || n_heads <= 0 || head_dim < 2) return;
    int half = head_dim / 2;
    size_t d = (size_t)n_heads * head_dim;
    double inv[AW_ROPE_PAIRS];
    float c[AW_ROPE_PAIRS], sn[AW_ROPE_PAIRS];
    for (int i0 = 0; i0 < half; i0 += AW_ROPE_PAIRS) {
        int m = half - i0 < AW_ROPE_PAIRS ? half - i0 : AW_ROPE_PAIRS;
        for (int i = 0; i < m; i++) inv[i] = aw_rope_inv_freq(i0 + i, head_dim, theta);
        for (int p = 0; p < L; p++) {
            for (int i = 0; i < m; i++) aw_rope_cos_sin(p, inv[i], &c[i], &sn[i]);
            for (int s = 0; s < n_seq; s++) {
                float *row = x + ((size_t)s * L + p) * d;
                for (int h = 0; h < n_heads; h++) {
                    float *x1 = row + (size_t)h * head_dim + i0, *x2 = x1 + half;
                    for (int i = 0; i < m; i++) aw_rope_rotate(&x1[i], &x2[i], c[i], sn[i]);
                }
            }
        }
    }
}

/* ---- attention ---------------------------------------------------------- */

/* Rows of queries per block: only the scores of keys 0..i1-1 are computed for
 * block [i0, i1), so the work above the diagonal is at most one block wide. */
enum { AW_ATT_ROWS = 128 };

size_t aw_k_attention_workspace(int L, int heads_per_chunk)
{
    if (L <= 0) return 0;
    if (heads_per_chunk < 1) heads_per_chunk = 1;
    return (size_t)heads_per_chunk * L * L;
}

/* Max of sr[0..n) as the scalar loop `mx = sr[j] > mx ? sr[j] : mx` from
 * mx = sr[0] gives it, with 16 independent lanes (each a maxps chain). Max
 * is exact in any order; what order could change: a NaN sr[0] gives NaN in
 * every lane and stays (x > NaN is false), as in the scalar loop; a later NaN
 * is skipped by both; and which zero (+0 or -0) wins a tie at zero, which
 * the caller's sr[j] - mx cannot tell apart (x - +0 == x - -0 for x != 0,
 * and expf(+-0) == 1). */
static float row_max(const float *sr, int n)
{
    enum { LANES = 16 };
    float m[LANES];
    for (int k = 0; k < LANES; k++) m[k] = sr[0];
    int j = 1;
    for (; j + LANES <= n; j += LANES)
        for (int k = 0; k < LANES; k++) m[k] = sr[j + k] > m[k] ? sr[j + k] : m[k];
    for (; j < n; j++) m[0] = sr[j] > m[0] ? sr[j] : m[0];
    float mx = m[0];
    for (int k = 1; k < LANES; k++) mx = m[k] > mx ? m[k] : mx;
    return mx;
}

/* Softmax of rows i0..i1-1 of S (row stride L), causal: row i keys 0..i,
 * and zeros in its columns i+1..i1-1 (they take part in the P v product).
 * Each row is exactly the scalar
 *     mx = max; sr[j] = expf(sr[j] - mx); sum += sr[j] (j = 0..i, in order);
 *     sr[j] *= 1 / sum
 * but the sums of SUM_ROWS rows run side by side (independent add chains
 * instead of one 4-cycle chain per element): each row's sum still adds its
 * values in order j = 0, 1, ..., and the zeros past its diagonal that the
 * joint loop also adds leave it unchanged (sum >= +0, NaN or +Inf: s + 0 == s
 * bit for bit). */
enum { SUM_ROWS = 8 };
static void softmax_causal(float *S, int L, int i0, int i1)
{
    for (int i = i0; i < i1; i++) {
        float *sr = S + (size_t)i * L;
        int n = i + 1;
        float mx = row_max(sr, n);
        for (int j = 0; j < n; j++) sr[j] = expf(sr[j] - mx);
        for (int j = n; j < i1; j++) sr[j] = 0.0f;
    }
    for (int g = i0; g < i1; g += SUM_ROWS) {
        int nr = i1 - g < SUM_ROWS ? i1 - g : SUM_ROWS;
        int nmax = g + nr; /* keys of the group's last row */
        float sum[SUM_ROWS] = {0};
        const float *r0 = S + (size_t)g * L;
        if (nr == SUM_ROWS) {
            for (int j = 0; j < nmax; j++)
                for (int r = 0; r < SUM_ROWS; r++) sum[r] += r0[(size_t)r * L + j];
        } else {
            for (int j = 0; j < nmax; j++)
                for (int r = 0; r < nr; r++) sum[r] += r0[(size_t)r * L + j];
        }
        for (int r = 0; r < nr; r++) {
            float *sr = S + (size_t)(g + r) * L;
            int n = g + r + 1;
            float inv = 1.0f / sum[r];
            for (int j = 0; j < n; j++) sr[j] *= inv;
        }
    }
}

/* One head of one sequence. q, k, v, o point at the head's first column of
 * the sequence's first row (row stride d for q and o, dkv for k and v); S
 * (L, L) is the head's slot in the workspace; only its rows' first i1
 * columns are written per block. */
static void attention_head(const float *q, const float *k, const float *v, float *o, int L, int hd,
                           int d, int dkv, float scale, float *S)
{
    for (int i0 = 0; i0 < L; i0 += AW_ATT_ROWS) {
        int i1 = i0 + AW_ATT_ROWS < L ? i0 + AW_ATT_ROWS : L;
        int m = i1 - i0;
        float *Sb = S + (size_t)i0 * L;
        /* Sb (m, i1) = q[i0:i1] k[0:i1]^T * scale */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, i1, hd, scale, q + (size_t)i0 * d,
                    d, k, dkv, 0.0f, Sb, L);
        softmax_causal(S, L, i0, i1);
        /* o[i0:i1] (m, hd) = P (m, i1) v[0:i1] (i1, hd) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, hd, i1, 1.0f, Sb, L, v, dkv,
                    0.0f, o + (size_t)i0 * d, d);
    }
}

void aw_k_attention(const float *q, const float *k, const float *v, float *out, int n_seq, int L,
                    int n_heads, int n_kv_heads, int d, float scale, int heads_per_chunk,
                    float *workspace)
{
    if (n_seq <= 0 || L <= 0 || n_heads <= 0 || d <= 0) return;
    if (d % n_heads != 0 || n_kv_heads <= 0 || n_heads % n_kv_heads != 0) return;
    int hd = d / n_heads;
    int group = n_heads / n_kv_heads; /* query heads per kv head */
    int dkv = n_kv_heads * hd;        /* k and v row width; d when group == 1 */
    int hpc = heads_per_chunk < 1 ? 1 : heads_per_chunk > n_heads ? n_heads : heads_per_chunk;
    /* The heads of a chunk on our threads, each head's two products on one
     * OpenBLAS thread: these small products (L x L x hd) split badly over
     * OpenBLAS's threads, and its threaded calls from several threads would
     * take turns. A head's arithmetic is the same on any thread: OpenBLAS
     * splits a product over threads by rows and columns of the result, never
     * by the reduction (k <= L is one block), so its bits do not depend on
     * the thread count either. */
    int nt = k_threads();
    nt = nt < hpc ? nt : hpc;
    if (nt > 1) {
        /* one parallel region for the call (a fork per sequence costs more
         * than a head on a busy machine); a thread takes heads of any
         * sequence, in small dynamic batches, in its own workspace slot */
        int blas = openblas_get_num_threads();
        openblas_set_num_threads(1);
        int units = n_seq * n_heads;
#pragma omp parallel num_threads(nt)
        {
            float *S = workspace + (size_t)omp_get_thread_num() * L * L;
#pragma omp for schedule(dynamic, 2)
            for (int u = 0; u < units; u++) {
                int s = u / n_heads, h = u % n_heads;
                size_t base = (size_t)s * L * d, kvbase = (size_t)s * L * dkv;
                size_t col = (size_t)h * hd, kvcol = (size_t)(h / group) * hd;
                attention_head(q + base + col, k + kvbase + kvcol, v + kvbase + kvcol, out + base + col, L,
                               hd, d, dkv, scale, S);
            }
        }
        openblas_set_num_threads(blas);
        return;
    }
    for (int s = 0; s < n_seq; s++) {
        size_t base = (size_t)s * L * d, kvbase = (size_t)s * L * dkv;
        for (int h0 = 0; h0 < n_heads; h0 += hpc) {
            int h1 = h0 + hpc < n_heads ? h0 + hpc : n_heads;
            /* each head of the chunk has its own (L, L) slot, as a batched
             * GPU version would; the arithmetic per head is the same
             * whatever the chunking, so results are bit-identical */
            for (int h = h0; h < h1; h++) {
                size_t col = (size_t)h * hd, kvcol = (size_t)(h / group) * hd;
                attention_head(q + base + col, k + kvbase + kvcol, v + kvbase + kvcol,
                               out + base + col, L, hd, d, dkv, scale,
                               workspace + (size_t)(h - h0) * L * L);
            }
        }
    }
}

/* ---- calibration statistics -------------------------------------------- */

/* Number of Inf/NaN among n values: |x| <= FLT_MAX is false exactly for them.
 * Counted per row so a row can take the fast path below. */
static inline AW_INLINE size_t count_nonfinite(const float *x, size_t n)
{
    uint32_t c = 0; /* n per call is at most 4 rows of d < 2^29 */
    for (size_t i = 0; i < n; i++) c += !(fabsf(x[i]) <= FLT_MAX);
    return c;
}

/* 4 finite rows x0..x3 (d) into the column statistics. Each column sees the
 * rows in order, so the sums are the same as row by row; the accumulators
 * are loaded and stored once per 4 rows. */
static inline AW_INLINE void stats_rows4(const float *x0, const float *x1, const float *x2,
                                         const float *x3, int d, float *restrict absmax,
                                         double *restrict sum)
{
    for (int j = 0; j < d; j++) {
        float a0 = fabsf(x0[j]), a1 = fabsf(x1[j]), a2 = fabsf(x2[j]), a3 = fabsf(x3[j]);
        float m = absmax[j];
        m = a0 > m ? a0 : m;
        m = a1 > m ? a1 : m;
        m = a2 > m ? a2 : m;
        m = a3 > m ? a3 : m;
        absmax[j] = m;
        double s = sum[j];
        s += (double)x0[j];
        s += (double)x1[j];
        s += (double)x2[j];
        s += (double)x3[j];
        sum[j] = s;
    }
}

static inline AW_INLINE void stats_row(const float *xr, int d, float *restrict absmax,
                                       double *restrict sum)
{
    for (int j = 0; j < d; j++) {
        float a = fabsf(xr[j]);
        absmax[j] = a > absmax[j] ? a : absmax[j];
        sum[j] += (double)xr[j];
    }
}

/* A row with non-finite values: skip them one by one (rare). */
static void stats_row_slow(const float *xr, int d, float *absmax, double *sum)
{
    for (int j = 0; j < d; j++) {
        if (!(fabsf(xr[j]) <= FLT_MAX)) continue;
        float a = fabsf(xr[j]);
        if (a > absmax[j]) absmax[j] = a;
        sum[j] += (double)xr[j];
    }
}

AW_CLONES size_t aw_k_stats_accum(const float *x, int T, int d, float *absmax, double *sum)
{
    if (T <= 0 || d <= 0) return 0;
    size_t bad = 0;
    int t = 0;
    for (; t + 4 <= T; t += 4) {
        const float *xr = x + (size_t)t * d;
        size_t nf = count_nonfinite(xr, (size_t)4 * d);
        if (nf == 0) {
            stats_rows4(xr, xr + d, xr + 2 * (size_t)d, xr + 3 * (size_t)d, d, absmax, sum);
            continue;
        }
        bad += nf;
        for (int r = 0; r < 4; r++) {
            const float *row = xr + (size_t)r * d;
            if (count_nonfinite(row, (size_t)d)) stats_row_slow(row, d, absmax, sum);
            else stats_row(row, d, absmax, sum);
        }
    }
    for (; t < T; t++) {
        const float *row = x + (size_t)t * d;
        size_t nf = count_nonfinite(row, (size_t)d);
        bad += nf;
        if (nf) stats_row_slow(row, d, absmax, sum);
        else stats_row(row, d, absmax, sum);
    }
    return bad;
}

/* ---- equalization folds ------------------------------------------------- */

void aw_k_scale_cols(float *w, int rows, int cols, const float *s)
{
    for (int i = 0; i < rows; i++) {
        float *wr = w + (size_t)i * cols;
        for (int j = 0; j < cols; j++) wr[j] *= s[j];
    }
}

void aw_k_div_cols(const float *x, float *y, int rows, int cols, const float *s)
{
    for (int i = 0; i < rows; i++) {
        const float *xr = x + (size_t)i * cols;
        float *yr = y + (size_t)i * cols;
        for (int j = 0; j < cols; j++) yr[j] = xr[j] / s[j];
    }
}

void aw_k_div_rows(float *w, float *b, int rows, int cols, const float *s)
{
    /* true division, not a multiply by 1/s: the fold is then the same
     * correctly rounded value on every backend */
    for (int i = 0; i < rows; i++) {
        float *wr = w + (size_t)i * cols;
        float si = s[i];
        for (int j = 0; j < cols; j++) wr[j] /= si;
        if (b) b[i] /= si;
    }
}

void aw_k_div_vec(float *v, int n, const float *s)
{
    for (int i = 0; i < n; i++) v[i] /= s[i];
}

/* ---- INT8 --------------------------------------------------------------- */

float aw_k_absmax(const float *x, size_t n)
{
    /* Max over the bit patterns of |x| as int32: for non-negative floats the
     * integer order is the numeric order and NaN patterns sort above Inf, so
     * a NaN anywhere makes the result NaN (a float max would drop it).
     * 16 independent lanes keep the vectorised compare chains short. */
    enum { LANES = 16 };
    int32_t m[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        for (int k = 0; k < LANES; k++) {
            int32_t b;
            memcpy(&b, x + i + k, sizeof b);
            b &= 0x7fffffff;
            m[k] = b > m[k] ? b : m[k];
        }
    }
    for (; i < n; i++) {
        int32_t b;
        memcpy(&b, x + i, sizeof b);
        b &= 0x7fffffff;
        m[0] = b > m[0] ? b : m[0];
    }
    int32_t r = 0;
    for (int k = 0; k < LANES; k++) r = m[k] > r ? m[k] : r;
    float f;
    memcpy(&f, &r, sizeof f);
    return f;
}

float aw_k_int8_step(float absmax)
{
    /* !(> 0) also catches NaN; a step that underflows to 0 would turn every
     * value into +-127, so such a range counts as dead too */
    if (!(absmax > 0.0f) || !(absmax <= FLT_MAX)) return 1.0f;
    float step = absmax / 127.0f;
    return step > 0.0f ? step : 1.0f;
}

AW_CLONES void aw_k_quantize_i8(const float *x, size_t n, float step, int8_t *q)
{
    for (size_t i = 0; i < n; i++) q[i] = aw_quant_i8(x[i], step);
}

AW_CLONES void aw_k_dequantize_i8(const int8_t *q, size_t n, float step, float *x)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)q[i] * step;
}

/* The int8 product on one thread (aw_gemm_i8.c uses oneDNN where exact, else
 * this loop on slices of rows, one per thread): tiles of GI8_KC values of
 * the reduction dimension at a time; a (GI8_NW, GI8_KC) tile of w and a
 * (GI8_TR, GI8_KC) block of x are widened to int16 on the stack (32 KB +
 * 2 KB), so that the dot products are int16 x int16 -> int32 sums, which gcc
 * maps to pmaddwd. Integer sums are exact, so the tiling does not change the
 * result. No allocation. */
enum { GI8_KC = 256, GI8_NW = 64, GI8_TR = 4 };

/* 4 dot products of length n: x rows x0..x3 (row stride GI8_KC) with w row
 * wr; the w values are loaded once for the 4. */
static inline AW_INLINE void dot4_i16(const int16_t *restrict x0, const int16_t *restrict wr, int n,
                                      int32_t out4[4])
{
    const int16_t *restrict x1 = x0 + GI8_KC, *restrict x2 = x1 + GI8_KC,
                            *restrict x3 = x2 + GI8_KC;
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int k = 0; k < n; k++) {
        int32_t wk = wr[k];
        s0 += x0[k] * wk;
        s1 += x1[k] * wk;
        s2 += x2[k] * wk;
        s3 += x3[k] * wk;
    }
    out4[0] = s0, out4[1] = s1, out4[2] = s2, out4[3] = s3;
}

static inline AW_INLINE int32_t dot1_i16(const int16_t *restrict xr, const int16_t *restrict wr,
                                         int n)
{
    int32_t s = 0;
    for (int k = 0; k < n; k++) s += (int32_t)xr[k] * wr[k];
    return s;
}

/* dst (rows, kc) with row stride GI8_KC = src (rows, kc), row stride ld. */
static inline AW_INLINE void widen_i8(const int8_t *src, size_t ld, int rows, int kc, int16_t *dst)
{
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < kc; k++) dst[(size_t)r * GI8_KC + k] = src[(size_t)r * ld + k];
}

AW_CLONES void aw_k_gemm_i8_loop(const int8_t *xq, const int8_t *wq, int32_t *acc, int T, int in,
                                 int out)
{
    if (T <= 0 || out <= 0) return;
    memset(acc, 0, (size_t)T * out * sizeof(int32_t));
    if (in <= 0) return;
    int16_t wt[GI8_NW * GI8_KC];
    int16_t xt[GI8_TR * GI8_KC];
    /* k outermost: the w tile stays in L1 while all rows of x pass over it */
    for (int k0 = 0; k0 < in; k0 += GI8_KC) {
        int kc = k0 + GI8_KC < in ? GI8_KC : in - k0;
        for (int o0 = 0; o0 < out; o0 += GI8_NW) {
            int nw = o0 + GI8_NW < out ? GI8_NW : out - o0;
            widen_i8(wq + (size_t)o0 * in + k0, (size_t)in, nw, kc, wt);
            int t = 0;
            for (; t + GI8_TR <= T; t += GI8_TR) {
                widen_i8(xq + (size_t)t * in + k0, (size_t)in, GI8_TR, kc, xt);
                int32_t *a = acc + (size_t)t * out + o0;
                for (int o = 0; o < nw; o++) {
                    int32_t r4[GI8_TR];
                    dot4_i16(xt, wt + (size_t)o * GI8_KC, kc, r4);
                    for (int r = 0; r < GI8_TR; r++) a[(size_t)r * out + o] += r4[r];
                }
            }
            for (; t < T; t++) {
                widen_i8(xq + (size_t)t * in + k0, (size_t)in, 1, kc, xt);
                int32_t *a = acc + (size_t)t * out + o0;
                for (int o = 0; o < nw; o++) a[o] += dot1_i16(xt, wt + (size_t)o * GI8_KC, kc);
            }
        }
    }
}

void aw_k_dequant_acc(const int32_t *acc, const float *b, float x_step, float w_step, float *y,
                      int T, int out)
{
    float sc = x_step * w_step;
    for (int t = 0; t < T; t++) {
        const int32_t *ar = acc + (size_t)t * out;
        float *yr = y + (size_t)t * out;
        if (b) {
            for (int j = 0; j < out; j++) yr[j] = (float)ar[j] * sc + b[j];
        } else {
            for (int j = 0; j < out; j++) yr[j] = (float)ar[j] * sc;
        }
    }
}

/* ---- validation --------------------------------------------------------- */

void aw_k_err_sums(const float *yr, const float *y, size_t n, double *sq_err, double *sq_ref)
{
    /* 4 fixed partial sums: deterministic, and 4 independent add chains */
    double e[4] = {0, 0, 0, 0}, r[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        for (int k = 0; k < 4; k++) {
            double a = yr[i + k], c = (double)y[i + k] - a;
            e[k] += c * c;
            r[k] += a * a;
        }
    }
    for (; i < n; i++) {
        double a = yr[i], c = (double)y[i] - a;
        e[0] += c * c;
        r[0] += a * a;
    }
    *sq_err = (e[0] + e[1]) + (e[2] + e[3]);
    *sq_ref = (r[0] + r[1]) + (r[2] + r[3]);
}

void aw_k_col_err_accum(const float *yr, const float *y, int T, int out, double *col_err)
{
    for (int t = 0; t < T; t++) {
        const float *a = yr + (size_t)t * out, *c = y + (size_t)t * out;
        for (int j = 0; j < out; j++) col_err[j] += (double)c[j] - (double)a[j];
    }
}

/* log sum_j exp(l_j) over V values, in double, max-subtracted. */
static double logsumexp(const float *l, int V, float mx)
{
    double s = 0.0;
    for (int j = 0; j < V; j++) s += exp((double)l[j] - (double)mx);
    return (double)mx + log(s);
}

/* Max and argmax (lowest index on ties) of a row, as aw_k_logprob_row's
 * strict loop: the max is the same value as the ref row's plain max loop
 * (`mr = ref[j] > mr ? ref[j] : mr`), both skip a NaN past index 0. */
static float row_argmax(const float *l, int V, int *am_out)
{
    int am = 0;
    float mx = l[0];
    for (int j = 1; j < V; j++) {
        if (l[j] > mx) mx = l[j], am = j; /* strict: lowest index on ties */
    }
    *am_out = am;
    return mx;
}

/* KL(p_ref || p) of two rows given their log-sum-exps, summed in column order. */
static double kl_sum(const float *ref, double lser, const float *l, double lse, int V)
{
    double acc = 0.0;
    for (int j = 0; j < V; j++) {
        double lpr = (double)ref[j] - lser;
        double lp = (double)l[j] - lse;
        double pr = exp(lpr);
        if (pr > 0.0) acc += pr * (lpr - lp);
    }
    return acc;
}

double aw_k_logprob_row(const float *logits, const float *ref, int V, uint32_t target, double *kl,
                        int *argmax)
{
    if (V <= 0) {
        if (argmax) *argmax = -1;
        return -INFINITY;
    }
    int am;
    float mx = row_argmax(logits, V, &am);
    if (argmax) *argmax = am;
    double lse = logsumexp(logits, V, mx);
    if (ref && kl) {
        float mr = ref[0];
        for (int j = 1; j < V; j++) mr = ref[j] > mr ? ref[j] : mr;
        /* same function for both rows: identical rows give exactly 0 */
        double lser = logsumexp(ref, V, mr);
        *kl += kl_sum(ref, lser, logits, lse, V);
    }
    return (uint32_t)V > target ? (double)logits[target] - lse : -INFINITY;
}

/* One row pair of aw_k_logprob_pairs: the same operations as
 *   lp_fp = aw_k_logprob_row(ref, NULL, V, target, NULL, &am_fp);
 *   lp_q = aw_k_logprob_row(l, ref, V, target, &kl (from 0), &am_q);
 * with the ref row's max and log-sum-exp computed once: the first call's
 * max loop and logsumexp and the second call's are the same operations on
 * the same values (the strict max loop and the plain one pick the same
 * value), so the second is skipped. */
static void logprob_pair(const float *l, const float *ref, int V, uint32_t target, double *lp_fp,
                         double *lp_q, double *kl, int *am_fp, int *am_q)
{
    float mr = row_argmax(ref, V, am_fp);
    double lser = logsumexp(ref, V, mr);
    *lp_fp = (uint32_t)V > target ? (double)ref[target] - lser : -INFINITY;
    float mx = row_argmax(l, V, am_q);
    double lse = logsumexp(l, V, mx);
    *kl = 0.0 + kl_sum(ref, lser, l, lse, V);
    *lp_q = (uint32_t)V > target ? (double)l[target] - lse : -INFINITY;
}

void aw_k_logprob_pairs(const float *logits, const float *ref, int V, int n, const uint32_t *targets,
                        const uint8_t *skip, double *lp_fp, double *lp_q, double *kl, int *am_fp,
                        int *am_q)
{
    if (n <= 0) return;
    if (V <= 0) {
        for (int r = 0; r < n; r++) {
            lp_fp[r] = lp_q[r] = -INFINITY;
            kl[r] = 0.0;
            am_fp[r] = am_q[r] = -1;
        }
        return;
    }
    /* rows are independent; each row's sums in its own order */
    int nt = n >= 2 ? k_threads() : 1;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4) if (nt > 1)
    for (int r = 0; r < n; r++) {
        if (skip && skip[r]) continue;
        logprob_pair(logits + (size_t)r * V, ref + (size_t)r * V, V, targets[r], &lp_fp[r], &lp_q[r],
                     &kl[r], &am_fp[r], &am_q[r]);
    }
}

void aw_k_logprob_rows(const float *logits, int V, int n, const uint32_t *targets, const uint8_t *skip, double *lp)
{
    if (n <= 0) return;
    int nt = n >= 2 ? k_threads() : 1;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4) if (nt > 1)
    for (int r = 0; r < n; r++) {
        if (skip && skip[r]) continue;
        lp[r] = aw_k_logprob_row(logits + (size_t)r * V, NULL, V, targets[r], NULL, NULL);
    }
}
