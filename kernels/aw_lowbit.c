/*
 * aw_lowbit.c - low-bit weight kernels, CPU (see aw_lowbit.h): group steps,
 * codes, dequantization, bit packing, the Gram matrix of a layer's inputs,
 * and GPTQ.
 *
 * Rounding is defined once, here, for every path that makes codes (RTN and
 * the GPTQ sweep): a step is computed in double from float extremes and
 * rounded once to float, then to the storage dtype; a code is the float
 * quotient w / step rounded half to even (rint), plus z, clamped. The
 * tests/kernels references recompute all of it in double and must agree
 * bit for bit.
 */
#include "aw_lowbit.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "aw_lowbit.c needs float expressions evaluated in float (SSE, not x87)"
#endif
#ifdef __FAST_MATH__
#error "aw_lowbit.c must not be built with -ffast-math (the rounding of codes relies on IEEE float)"
#endif

/* LAPACK from OpenBLAS (Debian's libopenblas0 exports the Fortran symbols;
 * no LAPACKE header is installed). Column-major; the trailing size_t is
 * gfortran's hidden length of the character argument (ignored by OpenBLAS's
 * own C implementations). blasint is OpenBLAS's integer (cblas.h). */
extern void dpotrf_(const char *uplo, const blasint *n, double *a, const blasint *lda, blasint *info,
                    size_t uplo_len);
extern void dtrtri_(const char *uplo, const char *diag, const blasint *n, double *a, const blasint *lda,
                    blasint *info, size_t uplo_len, size_t diag_len);

/* 1.5 * 2^23: v + MAGIC - MAGIC is rint(v) (nearest, ties to even) for
 * |v| <= 2^22 (the floats of [2^23, 2^24) are the integers). */
#define ROUND_MAGIC 12582912.0f

/* The GPTQ sweep's column loops also get an AVX2 clone (aw_clones.h). */
#include "aw_clones.h"

/* ---- one group's step and one code ------------------------------------------------ */

/* Step and zero point of a group from lo = min(min w, 0), hi = max(max w, 0)
 * (NaN skipped). Symmetric: max|w| = max(-lo, hi). */
static void step_of(float lo, float hi, int bits, int sym, aw_dtype sdt, float *step, uint8_t *zero)
{
    int maxq = (1 << bits) - 1;
    double s;
    if (sym) s = (double)(-lo > hi ? -lo : hi) / (maxq / 2.0);
    else s = ((double)hi - (double)lo) / maxq;
    float sf = aw_round_to_dtype((float)s, sdt);
    if (!(sf > 0.0f) || !(sf <= FLT_MAX)) sf = 1.0f; /* zero, Inf, NaN: an all-zero group */
    *step = sf;
    if (sym) {
        *zero = (uint8_t)(1 << (bits - 1));
    } else {
        /* -lo / sf is about maxq at most, except after a step overflow to
         * 1; beyond 2^22 the magic sum is not rint, but clamps to maxq all
         * the same */
        float z = (-lo / sf + ROUND_MAGIC) - ROUND_MAGIC;
        *zero = (uint8_t)(z < 0.0f ? 0.0f : z > (float)maxq ? (float)maxq : z);
    }
}

/* The code of w as a float: clamp(rint(w / step) + z, 0, maxq), NaN -> z.
 * Written with selects so that loops over it vectorise. */
static inline float code_of(float w, float step, float z, float maxq)
{
    float v = w / step;
    v = v == v ? v : 0.0f;
    v = v > -512.0f ? v : -512.0f; /* beyond any code: keeps the magic sum exact */
    v = v < 512.0f ? v : 512.0f;
    float t = ((v + ROUND_MAGIC) - ROUND_MAGIC) + z;
    t = t > 0.0f ? t : 0.0f;
    return t < maxq ? t : maxq;
}

static inline int group_len(int G, int in) { return G > 0 && G < in ? G : in; }
static inline int n_groups(int G, int in) { return (in + group_len(G, in) - 1) / group_len(G, in); }

/* ---- RTN: steps, codes, dequantization ------------------------------------------------- */

void aw_k_group_params(const float *w, int out, int in, int G, int bits, int sym, aw_dtype sdt,
                       float *step, uint8_t *zero)
{
    if (out <= 0 || in <= 0) return;
    int gl = group_len(G, in), ng = n_groups(G, in);
    for (int r = 0; r < out; r++) {
        const float *row = w + (size_t)r * in;
        for (int g = 0; g < ng; g++) {
            int j1 = g * gl, j2 = j1 + gl < in ? j1 + gl : in;
            float lo = 0.0f, hi = 0.0f;
            for (int j = j1; j < j2; j++) {
                lo = row[j] < lo ? row[j] : lo;
                hi = row[j] > hi ? row[j] : hi;
            }
            step_of(lo, hi, bits, sym, sdt, &step[(size_t)r * ng + g], &zero[(size_t)r * ng + g]);
        }
    }
}

void aw_k_group_quantize(const float *w, int out, int in, int G, int bits, const float *step,
                         const uint8_t *zero, uint8_t *q)
{
    if (out <= 0 || in <= 0) return;
    int gl = group_len(G, in), ng = n_groups(G, in);
    float maxq = (float)((1 << bits) - 1);
    for (int r = 0; r < out; r++) {
        for (int g = 0; g < ng; g++) {
            int j1 = g * gl, j2 = j1 + gl < in ? j1 + gl : in;
            float s = step[(size_t)r * ng + g], z = (float)zero[(size_t)r * ng + g];
            const float *src = w + (size_t)r * in;
            uint8_t *dst = q + (size_t)r * in;
            for (int j = j1; j < j2; j++) dst[j] = (uint8_t)code_of(src[j], s, z, maxq);
        }
    }
}

void aw_k_group_dequantize(const uint8_t *q, const float *step, const uint8_t *zero, int out, int in,
                           int G, float *w)
{
    if (out <= 0 || in <= 0) return;
    int gl = group_len(G, in), ng = n_groups(G, in);
    for (int r = 0; r < out; r++) {
        for (int g = 0; g < ng; g++) {
            int j1 = g * gl, j2 = j1 + gl < in ? j1 + gl : in;
            float s = step[(size_t)r * ng + g];
            int z = zero[(size_t)r * ng + g];
            const uint8_t *src = q + (size_t)r * in;
            float *dst = w + (size_t)r * in;
            for (int j = j1; j < j2; j++) dst[j] = (float)((int)src[j] - z) * s;
        }
    }
}

/* ---- bit packing ------------------------------------------------------------------------ */

size_t aw_k_packed_words(size_t n, int bits) { return (n * (size_t)bits + 31) / 32; }

void aw_k_pack_bits(const uint8_t *q, size_t n, int bits, uint32_t *words)
{
    uint32_t mask = (1u << bits) - 1u;
    uint64_t acc = 0; /* bits not yet written, LSB first; fewer than 32 between codes */
    int nacc = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        acc |= (uint64_t)(q[i] & mask) << nacc;
        nacc += bits;
        if (nacc >= 32) {
            words[wi++] = (uint32_t)acc;
            acc >>= 32;
            nacc -= 32;
        }
    }
    if (nacc > 0) words[wi] = (uint32_t)acc;
}

void aw_k_unpack_bits(const uint32_t *words, size_t n, int bits, uint8_t *q)
{
    uint32_t mask = (1u << bits) - 1u;
    uint64_t acc = 0;
    int nacc = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        if (nacc < bits) { /* the next word goes above the bits left */
            acc |= (uint64_t)words[wi++] << nacc;
            nacc += 32;
        }
        q[i] = (uint8_t)(acc & mask);
        acc >>= bits;
        nacc -= bits;
    }
}

/* ---- Gram matrix ------------------------------------------------------------------------- */

void aw_k_gram_accum(const float *x, int T, int in, float *h, double *abssum)
{
    if (T <= 0 || in <= 0) return;
    /* row-major x (T, in) as A (K = T, N = in), C = A^T A + C, lower */
    if (h) cblas_ssyrk(CblasRowMajor, CblasLower, CblasTrans, in, T, 1.0f, x, in, 1.0f, h, in);
    /* rows in order for every column (the CUDA kernel does the same) */
    for (int t = 0; t < T; t++) {
        const float *row = x + (size_t)t * in;
        for (int j = 0; j < in; j++) abssum[j] += fabs((double)row[j]);
    }
}

/* ---- GPTQ ---------------------------------------------------------------------------------- */

/* U^T, the transpose of the upper Cholesky factor U of (Hp + damp I)^-1,
 * into a (in, in) doubles, row-major lower triangle. Hp = H with rows and
 * columns in sweep order perm and dead diagonals set to 1.
 *
 * Two LAPACK calls (n^3/3 flops each) instead of factor, invert, factor
 * again (4 n^3/3): with J the order reversal, factor A = J (Hp + damp I) J
 * = L L^T (dpotrf); then Hp + damp I = R R^T with R = J L J upper, its
 * inverse R^-T R^-1, so U = R^-1 = J L^-1 J (dtrtri), whose diagonal is
 * positive: the Cholesky factor.
 * LAPACK is column-major: it reads the row-major buffer as its transpose,
 * which for the symmetric A is A, and leaves L^-1[p][q] (p >= q) at
 * row-major [q][p], flat index q n + p. U[i][j] = L^-1[n-1-i][n-1-j] then
 * sits at flat index n^2 - 1 - (j n + i): reversing the buffer end to end
 * puts U[i][j] at [j][i], i.e. U^T in the row-major lower triangle.
 * Returns LAPACK's info (0: done; > 0: not positive definite), -1 when H
 * has a non-finite entry. */
static blasint chol_inverse_factor(const double *H, const int *perm, int in, double damp, double *a)
{
    int finite = 1;
    for (int i = 0; i < in; i++) {
        int pi = perm[in - 1 - i];
        const double *hrow = H + (size_t)pi * in;
        double *arow = a + (size_t)i * in;
        for (int j = 0; j < in; j++) {
            double v = hrow[perm[in - 1 - j]];
            finite &= fabs(v) <= DBL_MAX;
            arow[j] = v;
        }
        if (arow[i] == 0.0) arow[i] = 1.0;
        arow[i] += damp;
    }
    /* OpenBLAS's dpotrf tests ajj <= 0, which NaN passes */
    if (!finite) return -1;
    blasint n = in, info = 0;
    dpotrf_("L", &n, a, &n, &info, 1);
    if (info == 0) dtrtri_("L", "N", &n, a, &n, &info, 1, 1);
    if (info != 0) return info;
    for (size_t f = 0, g = (size_t)in * in - 1; f < g; f++, g--) {
        double t = a[f];
        a[f] = a[g];
        a[g] = t;
    }
    return 0;
}

/* Doubles (in, in) to floats in the same buffer, row by row through tmp (in
 * floats): float row i ends at byte 4 (i + 1) in, below double row i + 1,
 * so nothing is overwritten before it is read. Only the lower triangle is
 * meaningful (and converted). */
static float *narrow_in_place(double *a, int in, float *tmp)
{
    unsigned char *base = (unsigned char *)a;
    for (int i = 0; i < in; i++) {
        const double *src = a + (size_t)i * in;
        for (int j = 0; j <= i; j++) tmp[j] = (float)src[j];
        memcpy(base + (size_t)i * in * sizeof(float), tmp, (size_t)(i + 1) * sizeof(float));
    }
    return (float *)(void *)a;
}

/* Sort key for act_order: decreasing diag, ties by index (a stable order). */
typedef struct {
    double d;
    int j;
} diag_key;

static int diag_key_cmp(const void *pa, const void *pb)
{
    const diag_key *a = pa, *b = pb;
    if (a->d != b->d) return a->d > b->d ? -1 : 1;
    return (a->j > b->j) - (a->j < b->j);
}

/* Wt (in, out): row k = column perm[k] of w (out, in); in tiles, so that
 * neither side is walked with a stride across the whole matrix. */
enum { TILE = 32 };
static void gather_columns(const float *w, int out, int in, const int *perm, float *Wt)
{
    for (int r0 = 0; r0 < out; r0 += TILE)
        for (int k0 = 0; k0 < in; k0 += TILE) {
            int r1 = r0 + TILE < out ? r0 + TILE : out, k1 = k0 + TILE < in ? k0 + TILE : in;
            for (int k = k0; k < k1; k++) {
                const float *src = w + perm[k];
                float *dst = Wt + (size_t)k * out;
                for (int r = r0; r < r1; r++) dst[r] = src[(size_t)r * in];
            }
        }
}

/* The way back: w (out, in) column perm[k] = row k of Wt, q likewise. */
static void scatter_columns(const float *Wt, const uint8_t *Qt, int out, int in, const int *perm, float *w,
                            uint8_t *q)
{
    for (int r0 = 0; r0 < out; r0 += TILE)
        for (int k0 = 0; k0 < in; k0 += TILE) {
            int r1 = r0 + TILE < out ? r0 + TILE : out, k1 = k0 + TILE < in ? k0 + TILE : in;
            for (int k = k0; k < k1; k++) {
                size_t j = (size_t)perm[k];
                for (int r = r0; r < r1; r++) {
                    w[(size_t)r * in + j] = Wt[(size_t)k * out + r];
                    q[(size_t)r * in + j] = Qt[(size_t)k * out + r];
                }
            }
        }
}

/* One column of the sweep, out rows: codes into qk, the dequantized values
 * over wk, the scaled errors (w - dq) * inv_d (inv_d = 1 / U_kk) into ek. */
static AW_CLONES void quantize_column(float *wk, const float *sc, const float *zc, float maxq, float inv_d,
                                      float *ek, uint8_t *qk, int out)
{
    for (int r = 0; r < out; r++) {
        float t = code_of(wk[r], sc[r], zc[r], maxq);
        float dq = (t - zc[r]) * sc[r];
        ek[r] = (wk[r] - dq) * inv_d;
        wk[r] = dq;
        qk[r] = (uint8_t)t;
    }
}

/* Rows c = 0 .. nc-1 of W (ld out) -= u[c] * e: a column's error spread
 * over the next few columns at once. */
static AW_CLONES void spread_error(float *W, int nc, const float *u, const float *e, int out)
{
    for (int c = 0; c < nc; c++) {
        float *wc = W + (size_t)c * out;
        for (int r = 0; r < out; r++) wc[r] -= u[c] * e[r];
    }
}

/* Where the run of columns that starts at k1 must end (at most k2): before
 * the first group start after k1, without act_order, so that a group is
 * parametrised at the start of a run, when every earlier column's error
 * has reached all of it (see the sweep). */
static int run_end(int k1, int k2, int gl, int grouped)
{
    if (!grouped) return k2;
    int g = (k1 / gl + 1) * gl;
    return g < k2 ? g : k2;
}

aw_status aw_k_gptq_plan(const double *H, int in, const aw_gptq_opts *opt, aw_gptq_plan *p)
{
    memset(p, 0, sizeof *p);
    AW_RETURN_IF(in <= 0, AW_ERR_ARG, "GPTQ: empty weight (%d inputs)", in);
    AW_RETURN_IF(opt->bits < 1 || opt->bits > 8 || opt->group < 0 || opt->block < 1 || !(opt->damp_frac >= 0.0),
                 AW_ERR_ARG, "GPTQ: bits %d, group %d, block %d, damp %g (want 1..8, >= 0, >= 1, >= 0)",
                 opt->bits, opt->group, opt->block, opt->damp_frac);
    const int act = opt->act_order;
    const size_t n_in = (size_t)in;
    /* one allocation, carved (8-byte items first):
     *   a    (in, in) doubles: the factorization, then U^T in floats
     *   keys (in) for act_order's sort
     *   tmp  (in) floats;  perm (in) ints: sweep position -> column;
     *   dead (in) bytes */
    size_t n_keys = act ? n_in : 0;
    size_t bytes = n_in * n_in * sizeof(double) + n_keys * sizeof(diag_key) + n_in * sizeof(float) +
                   n_in * sizeof(int) + n_in;
    unsigned char *arena = malloc(bytes);
    AW_RETURN_IF(!arena, AW_ERR_NOMEM, "GPTQ: out of memory for a layer of %d inputs (%zu bytes)", in, bytes);
    double *a = (double *)(void *)arena;
    diag_key *keys = (diag_key *)(void *)(a + n_in * n_in);
    float *tmp = (float *)(void *)(keys + n_keys);
    int *perm = (int *)(void *)(tmp + n_in);
    uint8_t *dead = (uint8_t *)(perm + n_in);

    /* dead inputs: H_jj == 0 -> column zeroed (H_jj read as 1 below) */
    double dsum = 0.0;
    for (int j = 0; j < in; j++) {
        double hjj = H[(size_t)j * in + j];
        if (!isfinite(hjj)) {
            free(arena);
            return AW_FAIL(AW_ERR_NONFINITE, "GPTQ: H[%d][%d] = %g is not finite", j, j, hjj);
        }
        dead[j] = hjj == 0.0;
        dsum += hjj == 0.0 ? 1.0 : hjj;
    }

    /* sweep order */
    if (act) {
        for (int j = 0; j < in; j++) {
            double hjj = H[(size_t)j * in + j];
            keys[j] = (diag_key){hjj == 0.0 ? 1.0 : hjj, j};
        }
        qsort(keys, n_in, sizeof *keys, diag_key_cmp);
        for (int k = 0; k < in; k++) perm[k] = keys[k].j;
    } else {
        for (int k = 0; k < in; k++) perm[k] = k;
    }

    /* U^T: U the upper Cholesky factor of (H + damp I)^-1 in sweep order;
     * damp raised tenfold twice if H + damp I is not positive definite */
    const double mean_diag = dsum / in;
    double frac = opt->damp_frac;
    blasint info = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        /* frac (not damp) scaled: 0.01 * 10 is the double 0.1, so a retry
         * gives the bits a call with 0.1 gives */
        if (attempt > 0) frac = opt->damp_frac * (attempt == 1 ? 10.0 : 100.0);
        info = chol_inverse_factor(H, perm, in, frac * mean_diag, a);
        if (info <= 0) break;
    }
    if (info < 0) {
        free(arena);
        return AW_FAIL(AW_ERR_NONFINITE, "GPTQ: H (%d x %d) has a non-finite entry off its diagonal", in, in);
    }
    if (info != 0) {
        free(arena);
        return AW_FAIL(AW_ERR_NONFINITE,
                       "GPTQ: H + damp I (%d x %d) is not positive definite even with damp raised to "
                       "%g of mean(diag H) (LAPACK info %d): non-finite or degenerate activations",
                       in, in, frac, (int)info);
    }
    p->in = in;
    p->ut = narrow_in_place(a, in, tmp); /* U^T (in, in), row-major lower triangle */
    p->perm = perm;
    p->dead = dead;
    p->arena = arena;
    return AW_OK;
}

void aw_k_gptq_plan_free(aw_gptq_plan *p)
{
    if (!p) return;
    free(p->arena);
    memset(p, 0, sizeof *p);
}

aw_status aw_k_gptq_sweep(float *w, const aw_gptq_plan *p, int out, const aw_gptq_opts *opt, float *step,
                          uint8_t *zero, uint8_t *q)
{
    const int in = p->in;
    AW_RETURN_IF(out <= 0 || in <= 0, AW_ERR_ARG, "GPTQ: empty weight (%d x %d)", out, in);
    const int bits = opt->bits, sym = opt->sym, act = opt->act_order;
    const int gl = group_len(opt->group, in), ng = n_groups(opt->group, in);
    const int B = opt->block < in ? opt->block : in;
    const float maxq = (float)((1 << bits) - 1);
    const size_t n_in = (size_t)in, n_out = (size_t)out;
    const int *perm = p->perm;
    const float *Ut = p->ut;

    /* one allocation, carved:
     *   Wt   (in, out) floats: w's columns in sweep order, as rows
     *   Et   (B, out) floats: the block's scaled errors, one row per column
     *   sc, zc (out) floats: the current column's step and zero point
     *   urun (in) floats
     *   Qt   (in, out) codes in sweep order */
    size_t bytes = (n_in * n_out + (size_t)B * n_out + 2 * n_out + n_in) * sizeof(float) + n_in * n_out;
    unsigned char *arena = malloc(bytes);
    AW_RETURN_IF(!arena, AW_ERR_NOMEM, "GPTQ: out of memory for a %d x %d layer (%zu bytes)", out, in, bytes);
    float *Wt = (float *)(void *)arena;
    float *Et = Wt + n_in * n_out;
    float *sc = Et + (size_t)B * n_out, *zc = sc + n_out;
    float *urun = zc + n_out; /* U[k][c] for the rest of a run */
    uint8_t *Qt = (uint8_t *)(urun + n_in);

    for (int j = 0; j < in; j++)
        if (p->dead[j])
            for (int r = 0; r < out; r++) w[(size_t)r * in + j] = 0.0f;
    /* with act_order every group's parameters now, from the weights before
     * the sweep (groups in the original column order) */
    if (act) aw_k_group_params(w, out, in, opt->group, bits, sym, opt->sdt, step, zero);

    gather_columns(w, out, in, perm, Wt);

    /* The sweep. Column k's error reaches the later columns in three
     * steps, all of them before those columns are quantized:
     *   the rest of its run of at most RUN columns at once (spread_error),
     *   the rest of its block when the run ends (sgemm, K = the run),
     *   the columns after the block when the block ends (sgemm, K = the
     *   block: GPTQ's lazy batch update).
     * Without act_order a group is parametrised when the sweep reaches its
     * first column, from weights that must have every earlier column's
     * error: so runs end before a group start (run_end), and a block that
     * a group would start inside and run past ends before it instead; a
     * group then starts a run, where the errors of all earlier runs have
     * reached the rest of the block, and the rest of the group lies inside
     * the block (or, starting the block, beyond it: all applied). */
    enum { RUN = 16 };
    const int grouped = !act && opt->group > 0;
    int cur_group = -1;
    for (int i1 = 0; i1 < in;) {
        int i2 = i1 + B < in ? i1 + B : in;
        if (grouped) {
            int g1 = (i2 - 1) / gl * gl;
            int g2 = g1 + gl < in ? g1 + gl : in;
            if (g1 > i1 && g2 > i2) i2 = g1;
        }
        for (int s1 = i1; s1 < i2;) {
            int s2 = run_end(s1, s1 + RUN < i2 ? s1 + RUN : i2, gl, grouped);
            for (int k = s1; k < s2; k++) {
                int g = perm[k] / gl;
                if (g != cur_group) {
                    if (!act) {
                        /* k starts group g (and a run): lo / hi per row over
                         * its columns k .. ke-1, all up to date */
                        int ke = k + gl < in ? k + gl : in;
                        for (int r = 0; r < out; r++) sc[r] = 0.0f, zc[r] = 0.0f; /* lo, hi */
                        for (int c = k; c < ke; c++) {
                            const float *col = Wt + (size_t)c * out;
                            for (int r = 0; r < out; r++) {
                                sc[r] = col[r] < sc[r] ? col[r] : sc[r];
                                zc[r] = col[r] > zc[r] ? col[r] : zc[r];
                            }
                        }
                        for (int r = 0; r < out; r++)
                            step_of(sc[r], zc[r], bits, sym, opt->sdt, &step[(size_t)r * ng + g],
                                    &zero[(size_t)r * ng + g]);
                    }
                    for (int r = 0; r < out; r++) {
                        sc[r] = step[(size_t)r * ng + g];
                        zc[r] = (float)zero[(size_t)r * ng + g];
                    }
                    cur_group = g;
                }
                float *ek = Et + (size_t)(k - i1) * out;
                quantize_column(Wt + (size_t)k * out, sc, zc, maxq, 1.0f / Ut[(size_t)k * in + k], ek,
                                Qt + (size_t)k * out, out);
                /* the rest of the run: Wt[c] -= U[k][c] e, c = k+1 .. s2-1 */
                for (int c = k + 1; c < s2; c++) urun[c - k - 1] = Ut[(size_t)c * in + k];
                spread_error(Wt + (size_t)(k + 1) * out, s2 - k - 1, urun, ek, out);
            }
            /* the rest of the block: Wt[s2:i2] (i2 - s2, out) -= U^T[s2:i2, s1:s2] Et[s1:s2] */
            if (s2 < i2)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, i2 - s2, out, s2 - s1, -1.0f,
                            Ut + (size_t)s2 * in + s1, in, Et + (size_t)(s1 - i1) * out, out, 1.0f,
                            Wt + (size_t)s2 * out, out);
            s1 = s2;
        }
        /* the columns after the block, lazily: Wt[i2:] (in - i2, out) -=
         * U^T[i2:, i1:i2] (in - i2, i2 - i1) Et (i2 - i1, out) */
        if (i2 < in)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, in - i2, out, i2 - i1, -1.0f,
                        Ut + (size_t)i2 * in + i1, in, Et, out, 1.0f, Wt + (size_t)i2 * out, out);
        i1 = i2;
    }

    /* w: the dequantized weights, q the codes, in the original column order */
    scatter_columns(Wt, Qt, out, in, perm, w, q);
    free(arena);
    return AW_OK;
}

aw_status aw_k_gptq(float *w, const double *H, int out, int in, const aw_gptq_opts *opt, float *step,
                    uint8_t *zero, uint8_t *q)
{
    AW_RETURN_IF(out <= 0 || in <= 0, AW_ERR_ARG, "GPTQ: empty weight (%d x %d)", out, in);
    aw_gptq_plan p;
    AW_TRY(aw_k_gptq_plan(H, in, opt, &p));
    aw_status st = aw_k_gptq_sweep(w, &p, out, opt, step, zero, q);
    aw_k_gptq_plan_free(&p);
    return st;
}
