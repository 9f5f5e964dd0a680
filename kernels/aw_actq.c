/* aw_actq.c - dynamic activation quantization and the grouped integer
 * product, CPU reference (see aw_actq.h). */
#include "aw_actq.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "aw_kernels.h"

/* The step of one group: absmax / ((2^b - 1) / 2) in float, epsilon for 0;
 * NaN if an input of the group is NaN. */
static float group_step(const float *x, const float *m, int n, int bits)
{
    float amax = 0.0f;
    int nan = 0;
    for (int j = 0; j < n; j++) {
        float v = m ? x[j] * m[j] : x[j];
        if (v != v) nan = 1;
        float a = fabsf(v);
        amax = a > amax ? a : amax;
    }
    if (nan) return NAN;
    float half = (float)((1 << bits) - 1) / 2.0f;
    float step = amax / half;
    return step == 0.0f ? FLT_EPSILON : step;
}

static inline float code_of(float v, float step, float lo, float hi)
{
    float r = rintf(v / step);
    return r < lo ? lo : r > hi ? hi : r;
}

void aw_k_act_quant(const float *x, int T, int in, int bits, int A, const float *mask, int8_t *q, float *step)
{
    int nga = aw_act_groups(in, A), len = A > 0 ? A : in;
    float lo = -(float)(1 << (bits - 1)), hi = (float)((1 << (bits - 1)) - 1);
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * in;
        int8_t *qt = q + (size_t)t * in;
        for (int g = 0; g < nga; g++) {
            int j0 = g * len, n = in - j0 < len ? in - j0 : len;
            const float *m = mask ? mask + j0 : NULL;
            float s = group_step(xt + j0, m, n, bits);
            step[(size_t)t * nga + g] = s;
            for (int j = 0; j < n; j++) {
                float v = m ? xt[j0 + j] * m[j] : xt[j0 + j];
                /* a NaN group: codes 0 (the step says what happened) */
                qt[j0 + j] = (int8_t)(s == s && v == v ? code_of(v, s, lo, hi) : 0.0f);
            }
        }
    }
}

void aw_k_act_fakequant(const float *x, float *y, int T, int in, int bits, int A, const float *mask)
{
    int nga = aw_act_groups(in, A), len = A > 0 ? A : in;
    float lo = -(float)(1 << (bits - 1)), hi = (float)((1 << (bits - 1)) - 1);
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * in;
        float *yt = y + (size_t)t * in;
        for (int g = 0; g < nga; g++) {
            int j0 = g * len, n = in - j0 < len ? in - j0 : len;
            const float *m = mask ? mask + j0 : NULL;
            float s = group_step(xt + j0, m, n, bits);
            for (int j = 0; j < n; j++) {
                float v = m ? xt[j0 + j] * m[j] : xt[j0 + j];
                yt[j0 + j] = s == s ? code_of(v, s, lo, hi) * s : NAN;
            }
        }
    }
}

size_t aw_k_gemm_groups_scratch(int T, int in, int out, int A, int W)
{
    size_t P = (size_t)aw_act_block(in, A, W);
    /* packed inputs (T, P) and weights (out, P), the block's int32 sums,
     * the double accumulator */
    size_t n = (size_t)T * P + (size_t)out * P;
    n = (n + 7) & ~(size_t)7;
    return n + (size_t)T * out * sizeof(int32_t) + (size_t)T * out * sizeof(double) + 16;
}

aw_status aw_k_gemm_groups(const int8_t *xq, const float *xs, int A, const int8_t *wq, const float *ws, int W,
                           const float *b, float *y, int T, int in, int out, void *scratch)
{
    AW_RETURN_IF(A > 0 && W > 0 && A % W != 0 && W % A != 0, AW_ERR_ARG,
                 "activation groups of %d and weight groups of %d do not nest", A, W);
    int P = aw_act_block(in, A, W), nb = (in + P - 1) / P;
    int nga = aw_act_groups(in, A), ngw = aw_act_groups(in, W);
    int alen = A > 0 ? A : in, wlen = W > 0 ? W : in;
    size_t packed = (size_t)T * P + (size_t)out * P;
    packed = (packed + 7) & ~(size_t)7;
    int8_t *xp = scratch, *wp = xp + (size_t)T * P;
    int32_t *acc = (int32_t *)((char *)scratch + packed);
    double *yd = (double *)((char *)acc + (((size_t)T * out * sizeof(int32_t) + 7) & ~(size_t)7));
    for (size_t k = 0; k < (size_t)T * out; k++) yd[k] = 0.0;
    for (int k = 0; k < nb; k++) {
        int j0 = k * P, n = in - j0 < P ? in - j0 : P;
        int ga = j0 / alen, gw = j0 / wlen;
        const int8_t *xb = xq + j0, *wb = wq + j0;
        if (nb > 1) {
            for (int t = 0; t < T; t++) memcpy(xp + (size_t)t * n, xq + (size_t)t * in + j0, (size_t)n);
            for (int i = 0; i < out; i++) memcpy(wp + (size_t)i * n, wq + (size_t)i * in + j0, (size_t)n);
            xb = xp;
            wb = wp;
        }
        aw_k_gemm_i8(xb, wb, acc, T, n, out);
        for (int t = 0; t < T; t++) {
            double sx = (double)xs[(size_t)t * nga + ga];
            const int32_t *at = acc + (size_t)t * out;
            double *yt = yd + (size_t)t * out;
            for (int i = 0; i < out; i++) yt[i] += (double)at[i] * sx * (double)ws[(size_t)i * ngw + gw];
        }
    }
    for (int t = 0; t < T; t++)
        for (int i = 0; i < out; i++)
            y[(size_t)t * out + i] = (float)(yd[(size_t)t * out + i] + (b ? (double)b[i] : 0.0));
    return AW_OK;
}

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
