/* aw_actq.c - dynamic activation quantization and the grouped integer
 * product, CPU reference (see aw_actq.h).
 *
 * aw_k_act_quant: per group one pass for the absolute maximum, one for the
 * codes (a float division per value, as the formula; the rounding by the
 * 1.5 * 2^23 addition, exact for |r| < 2^22 and the same as rintf in the
 * default rounding mode, after clamping, which commutes with rint for
 * integer bounds), with an AVX2 clone.
 *
 * aw_k_gemm_groups: tiles of rows x outputs over the OpenMP threads of
 * aw_k_gemm_i8; per tile, for each product block in order, the block's exact
 * int32 sums (oneDNN on strided views of the inputs when aw_k_gemm_i8 uses
 * it, all blocks of a tile in one go; else the int16 loop, one block at a
 * time packed into scratch), then the tile's double accumulator +=
 * acc * sx * sw. Every output element sees the same operations in the same
 * order whatever the tiling or the thread count. */
#include "aw_actq.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aw_clones.h"
#include "aw_kernels.h"

/* ---- activation quantization -------------------------------------------------- */

/* absmax of x (times m) into *amax; returns 1 if a value is NaN. On the
 * bits: |v| as an unsigned integer orders like |v| as a float, and a NaN's
 * is above Inf's (0x7f800000); an integer max reduction vectorises. */
static inline AW_INLINE uint32_t f2u(float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    return u;
}

static inline AW_INLINE int group_amax(const float *x, const float *m, int n, float *amax)
{
    uint32_t a = 0;
    if (m) {
        for (int j = 0; j < n; j++) {
            uint32_t u = f2u(x[j] * m[j]) & 0x7fffffffu;
            a = u > a ? u : a;
        }
    } else {
        for (int j = 0; j < n; j++) {
            uint32_t u = f2u(x[j]) & 0x7fffffffu;
            a = u > a ? u : a;
        }
    }
    memcpy(amax, &a, 4);
    return a > 0x7f800000u;
}

/* The step of one group: absmax / ((2^b - 1) / 2) in float, epsilon for 0;
 * NaN if an input of the group is NaN (Inf for an infinite one). */
static inline AW_INLINE float group_step(const float *x, const float *m, int n, int bits)
{
    float amax;
    if (group_amax(x, m, n, &amax)) return NAN;
    float half = (float)((1 << bits) - 1) / 2.0f;
    float step = amax / half;
    return step == 0.0f ? FLT_EPSILON : step;
}

#define AW_RINT_MAGIC 12582912.0f /* 1.5 * 2^23 */

/* r = clamp(v / step) rounded half to even; step finite, v finite */
static inline AW_INLINE float code_f(float v, float step, float lo, float hi)
{
    float r = v / step;
    r = r < lo ? lo : r;
    r = r > hi ? hi : r;
    return (r + AW_RINT_MAGIC) - AW_RINT_MAGIC;
}

AW_CLONES
static void quant_rows(const float *x, int T, int in, int bits, int A, const float *mask, int8_t *q, float *step)
{
    int nga = aw_act_groups(in, A), len = A > 0 ? A : in;
    float lo = -(float)(1 << (bits - 1)), hi = (float)((1 << (bits - 1)) - 1);
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * in;
        int8_t *qt = q + (size_t)t * in;
        for (int g = 0; g < nga; g++) {
            int j0 = g * len, n = in - j0 < len ? in - j0 : len;
            const float *m = mask ? mask + j0 : NULL;
            const float *xg = xt + j0;
            int8_t *qg = qt + j0;
            float s = group_step(xg, m, n, bits);
            step[(size_t)t * nga + g] = s;
            if (!isfinite(s)) { /* a NaN or Inf input: codes 0 (the step says what happened) */
                memset(qg, 0, (size_t)n);
                continue;
            }
            if (m)
                for (int j = 0; j < n; j++) qg[j] = (int8_t)(int)code_f(xg[j] * m[j], s, lo, hi);
            else
                for (int j = 0; j < n; j++) qg[j] = (int8_t)(int)code_f(xg[j], s, lo, hi);
        }
    }
}

AW_CLONES
static void fakequant_rows(const float *x, float *y, int T, int in, int bits, int A, const float *mask)
{
    int nga = aw_act_groups(in, A), len = A > 0 ? A : in;
    float lo = -(float)(1 << (bits - 1)), hi = (float)((1 << (bits - 1)) - 1);
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * in;
        float *yt = y + (size_t)t * in;
        for (int g = 0; g < nga; g++) {
            int j0 = g * len, n = in - j0 < len ? in - j0 : len;
            const float *m = mask ? mask + j0 : NULL;
            const float *xg = xt + j0;
            float *yg = yt + j0;
            float s = group_step(xg, m, n, bits);
            if (!isfinite(s)) {
                for (int j = 0; j < n; j++) yg[j] = NAN;
                continue;
            }
            if (m)
                for (int j = 0; j < n; j++) yg[j] = code_f(xg[j] * m[j], s, lo, hi) * s;
            else
                for (int j = 0; j < n; j++) yg[j] = code_f(xg[j], s, lo, hi) * s;
        }
    }
}

/* Rows per slice of the activation quantization over threads. */
enum { AQ_ROWS = 16 };

void aw_k_act_quant(const float *x, int T, int in, int bits, int A, const float *mask, int8_t *q, float *step)
{
    if (T <= 0 || in <= 0) return;
    int nga = aw_act_groups(in, A);
    int ns = (T + AQ_ROWS - 1) / AQ_ROWS, nthr = (size_t)T * in >= 65536 ? aw_k_product_threads() : 1;
    if (nthr <= 1 || ns <= 1) {
        quant_rows(x, T, in, bits, A, mask, q, step);
        return;
    }
#pragma omp parallel for num_threads(nthr) schedule(static)
    for (int s = 0; s < ns; s++) {
        int t0 = s * AQ_ROWS, n = T - t0 < AQ_ROWS ? T - t0 : AQ_ROWS;
        quant_rows(x + (size_t)t0 * in, n, in, bits, A, mask, q + (size_t)t0 * in, step + (size_t)t0 * nga);
    }
}

void aw_k_act_fakequant(const float *x, float *y, int T, int in, int bits, int A, const float *mask)
{
    if (T <= 0 || in <= 0) return;
    int ns = (T + AQ_ROWS - 1) / AQ_ROWS, nthr = (size_t)T * in >= 65536 ? aw_k_product_threads() : 1;
    if (nthr <= 1 || ns <= 1) {
        fakequant_rows(x, y, T, in, bits, A, mask);
        return;
    }
#pragma omp parallel for num_threads(nthr) schedule(static)
    for (int s = 0; s < ns; s++) {
        int t0 = s * AQ_ROWS, n = T - t0 < AQ_ROWS ? T - t0 : AQ_ROWS;
        fakequant_rows(x + (size_t)t0 * in, y + (size_t)t0 * in, n, in, bits, A, mask);
    }
}

/* ---- the grouped product ------------------------------------------------------ */

/* Tile of the output: rows x outputs. */
enum { GT_ROWS = 128, GT_COLS = 256 };

typedef struct {
    size_t xp, wp, wsd, acc, yd, total; /* byte offsets into scratch */
    size_t cell;                        /* values per tile */
    int ntr, ntc;
} gg_layout;

static size_t up64(size_t n) { return (n + 63) & ~(size_t)63; }

static gg_layout gg_plan(int T, int in, int out, int A, int W)
{
    gg_layout L;
    int P = aw_act_block(in, A, W), nb = (in + P - 1) / P;
    L.ntr = (T + GT_ROWS - 1) / GT_ROWS;
    L.ntc = (out + GT_COLS - 1) / GT_COLS;
    size_t tiles = (size_t)L.ntr * L.ntc;
    L.cell = (size_t)(T < GT_ROWS ? T : GT_ROWS) * (out < GT_COLS ? out : GT_COLS);
    L.xp = 0;                                                  /* one packed block of inputs (T, P) */
    L.wp = up64((size_t)T * P);                                /* and of weights (out, P) */
    L.wsd = L.wp + up64((size_t)out * P);                      /* weight steps (nb, out) double */
    L.acc = L.wsd + up64((size_t)nb * out * sizeof(double));   /* per tile int32 */
    L.yd = L.acc + up64(tiles * L.cell * sizeof(int32_t));     /* per tile double */
    L.total = L.yd + tiles * L.cell * sizeof(double) + 64;     /* + alignment slack */
    return L;
}

size_t aw_k_gemm_groups_scratch(int T, int in, int out, int A, int W)
{
    if (T <= 0 || in <= 0 || out <= 0) return 64;
    return gg_plan(T, in, out, A, W).total;
}

typedef struct {
    const int8_t *xq, *wq;   /* the operands (oneDNN reads strided views) */
    const int8_t *xp, *wp;   /* the current block packed (T, n) and (out, n) (the int16 loop) */
    const float *xs, *b;
    const double *wsd;
    float *y;
    int32_t *acc;
    double *yd;
    int T, in, out, A, W, onednn;
} gg_args;

/* Blocks [k0, k1) of tile [t0, t0+nt) x [i0, i0+no) of y: the block's int32
 * sums into acc, yd += acc * sx * sw; yd zeroed at block 0, y written after
 * the last block. */
AW_CLONES
static void gg_tile(const gg_args *g, int k0, int k1, int t0, int nt, int i0, int no, int32_t *acc, double *yd)
{
    static const int32_t co = 0;
    int in = g->in, P = aw_act_block(in, g->A, g->W), nb = (in + P - 1) / P;
    int nga = aw_act_groups(in, g->A), alen = g->A > 0 ? g->A : in;
    if (k0 == 0)
        for (size_t k = 0; k < (size_t)nt * no; k++) yd[k] = 0.0;
    for (int k = k0; k < k1; k++) {
        int j0 = k * P, n = in - j0 < P ? in - j0 : P, ga = j0 / alen;
        int done = 0;
        if (g->onednn)
            done = dnnl_gemm_s8s8s32('N', 'T', 'F', nt, no, n, 1.0f, g->xq + (size_t)t0 * in + j0, in, 0,
                                     g->wq + (size_t)i0 * in + j0, in, 0, 0.0f, acc, no, &co) == dnnl_success;
        if (g->onednn && !done) /* oneDNN failed: the plain loop on the strided views */
            for (int t = 0; t < nt; t++)
                for (int i = 0; i < no; i++) {
                    const int8_t *xr = g->xq + (size_t)(t0 + t) * in + j0, *wr = g->wq + (size_t)(i0 + i) * in + j0;
                    int32_t s = 0;
                    for (int j = 0; j < n; j++) s += (int32_t)xr[j] * wr[j];
                    acc[(size_t)t * no + i] = s;
                }
        else if (!done)
            aw_k_gemm_i8_loop(g->xp + (size_t)t0 * n, g->wp + (size_t)i0 * n, acc, nt, n, no);
        const double *sw = g->wsd + (size_t)k * g->out + i0;
        for (int t = 0; t < nt; t++) {
            double sx = (double)g->xs[(size_t)(t0 + t) * nga + ga];
            const int32_t *at = acc + (size_t)t * no;
            double *yt = yd + (size_t)t * no;
            for (int i = 0; i < no; i++) yt[i] += (double)at[i] * sx * sw[i];
        }
    }
    if (k1 < nb) return;
    for (int t = 0; t < nt; t++) {
        float *yo = g->y + (size_t)(t0 + t) * g->out + i0;
        const double *yt = yd + (size_t)t * no;
        if (g->b)
            for (int i = 0; i < no; i++) yo[i] = (float)(yt[i] + (double)g->b[i0 + i]);
        else
            for (int i = 0; i < no; i++) yo[i] = (float)(yt[i] + 0.0);
    }
}

/* Blocks [k0, k1) of every tile, over nthr threads. */
static void gg_tiles(const gg_args *g, const gg_layout *L, int k0, int k1, int nthr)
{
    int ntiles = L->ntr * L->ntc;
#pragma omp parallel for num_threads(nthr) schedule(dynamic, 1)
    for (int tile = 0; tile < ntiles; tile++) {
        int r = tile / L->ntc, c = tile % L->ntc;
        int t0 = r * GT_ROWS, i0 = c * GT_COLS;
        int nt = g->T - t0 < GT_ROWS ? g->T - t0 : GT_ROWS, no = g->out - i0 < GT_COLS ? g->out - i0 : GT_COLS;
        gg_tile(g, k0, k1, t0, nt, i0, no, g->acc + (size_t)tile * L->cell, g->yd + (size_t)tile * L->cell);
    }
}

aw_status aw_k_gemm_groups(const int8_t *xq, const float *xs, int A, const int8_t *wq, const float *ws, int W,
                           const float *b, float *y, int T, int in, int out, void *scratch)
{
    AW_RETURN_IF(A > 0 && W > 0 && A % W != 0 && W % A != 0, AW_ERR_ARG,
                 "activation groups of %d and weight groups of %d do not nest", A, W);
    AW_RETURN_IF(T < 0 || in <= 0 || out < 0, AW_ERR_ARG, "gemm_groups: bad shape T %d in %d out %d", T, in, out);
    if (T == 0 || out == 0) return AW_OK;
    int P = aw_act_block(in, A, W), nb = (in + P - 1) / P;
    int ngw = aw_act_groups(in, W), wlen = W > 0 ? W : in;
    gg_layout L = gg_plan(T, in, out, A, W);
    char *base = (char *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    int8_t *xp = (int8_t *)(base + L.xp), *wp = (int8_t *)(base + L.wp);
    double *wsd = (double *)(base + L.wsd);
    for (int k = 0; k < nb; k++) {
        int gw = k * P / wlen;
        for (int i = 0; i < out; i++) wsd[(size_t)k * out + i] = (double)ws[(size_t)i * ngw + gw];
    }
    gg_args g = {.xq = xq, .wq = wq, .xp = xq, .wp = wq, .xs = xs, .b = b, .wsd = wsd, .y = y,
                 .acc = (int32_t *)(base + L.acc), .yd = (double *)(base + L.yd), .T = T, .in = in, .out = out,
                 .A = A, .W = W, .onednn = aw_k_gemm_i8_uses_onednn()};
    int nthr = aw_k_product_threads(), ntiles = L.ntr * L.ntc;
    if (nthr > ntiles) nthr = ntiles;
    if (g.onednn || nb == 1) { /* every block of a tile in one go: the accumulators stay in cache */
        gg_tiles(&g, &L, 0, nb, nthr);
        return AW_OK;
    }
    /* the int16 loop wants contiguous rows: one block at a time, packed */
    g.xp = xp, g.wp = wp;
    for (int k = 0; k < nb; k++) {
        int j0 = k * P, n = in - j0 < P ? in - j0 : P;
        for (int t = 0; t < T; t++) memcpy(xp + (size_t)t * n, xq + (size_t)t * in + j0, (size_t)n);
        for (int i = 0; i < out; i++) memcpy(wp + (size_t)i * n, wq + (size_t)i * in + j0, (size_t)n);
        gg_tiles(&g, &L, k, k + 1, nthr);
    }
    return AW_OK;
}

/* ---- kept channels -------------------------------------------------------------- */

void aw_k_gather_cols(const float *x, int T, int in, const int32_t *idx, int n, float *xk)
{
    for (int t = 0; t < T; t++)
        for (int k = 0; k < n; k++) xk[(size_t)t * n + k] = x[(size_t)t * in + idx[k]];
}

void aw_k_add_linear(const float *xk, const float *wk, float *y, int T, int n, int out)
{
    if (T <= 0 || n <= 0 || out <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, out, n, 1.0f, xk, n, wk, n, 1.0f, y, out);
}
