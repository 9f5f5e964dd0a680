/* kernels_ref.c - float64 scalar references (see kernels_ref.h). */
#include "kernels_ref.h"

#include "aw_rng.h"

#include <math.h>
#include <stdlib.h>

void aw_linear_ref(const float *x, const float *w, const float *b, double *y, int T, int in,
                   int out)
{
    for (int t = 0; t < T; t++) {
        for (int o = 0; o < out; o++) {
            double s = b ? (double)b[o] : 0.0;
            for (int i = 0; i < in; i++) s += (double)x[(size_t)t * in + i] * w[(size_t)o * in + i];
            y[(size_t)t * out + o] = s;
        }
    }
}

void aw_layernorm_ref(const float *x, const float *gamma, const float *beta, double *y, int T,
                      int d, float eps)
{
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * d;
        long double s = 0;
        for (int j = 0; j < d; j++) s += xr[j];
        long double mean = s / d, v = 0;
        for (int j = 0; j < d; j++) v += (xr[j] - mean) * (xr[j] - mean);
        long double rstd = 1.0L / sqrtl(v / d + eps);
        for (int j = 0; j < d; j++)
            y[(size_t)t * d + j] = (double)((xr[j] - mean) * rstd * gamma[j] + beta[j]);
    }
}

void aw_rmsnorm_ref(const float *x, const float *gamma, double *y, int T, int d, float eps)
{
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * d;
        long double s = 0;
        for (int j = 0; j < d; j++) s += (long double)xr[j] * xr[j];
        long double rstd = 1.0L / sqrtl(s / d + eps);
        for (int j = 0; j < d; j++) y[(size_t)t * d + j] = (double)(xr[j] * rstd * gamma[j]);
    }
}

void aw_swiglu_ref(const float *gate, const float *up, double *y, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        long double g = gate[i];
        y[i] = (double)(g / (1.0L + expl(-g)) * up[i]);
    }
}

void aw_rope_ref(const float *x, double *y, int n_seq, int L, int n_heads, int head_dim,
                 float theta)
{
    int half = head_dim / 2;
    size_t d = (size_t)n_heads * head_dim;
    for (int s = 0; s < n_seq; s++)
        for (int p = 0; p < L; p++)
            for (int h = 0; h < n_heads; h++) {
                size_t at = ((size_t)s * L + p) * d + (size_t)h * head_dim;
                for (int i = 0; i < half; i++) {
                    long double a = p / powl(theta, 2.0L * i / head_dim);
                    long double c = cosl(a), sn = sinl(a);
                    long double x1 = x[at + i], x2 = x[at + i + half];
                    y[at + i] = (double)(x1 * c - x2 * sn);
                    y[at + i + half] = (double)(x2 * c + x1 * sn);
                }
            }
}

void aw_attention_ref(const float *q, const float *k, const float *v, double *out, int n_seq, int L,
                      int n_heads, int n_kv_heads, int d, float scale)
{
    int hd = d / n_heads, dkv = n_kv_heads * hd;
    double *p = malloc((size_t)L * sizeof(double));
    if (!p) return; /* the test's comparison then fails on garbage */
    for (int s = 0; s < n_seq; s++) {
        for (int h = 0; h < n_heads; h++) {
            /* written as the product, not the kernel's division */
            size_t kvcol = (size_t)(h * n_kv_heads / n_heads) * hd;
            for (int i = 0; i < L; i++) {
                const float *qi = q + ((size_t)s * L + i) * d + (size_t)h * hd;
                double mx = -INFINITY;
                for (int j = 0; j < L; j++) {
                    if (j > i) {
                        p[j] = 0.0; /* masked */
                        continue;
                    }
                    const float *kj = k + ((size_t)s * L + j) * dkv + kvcol;
                    double dot = 0.0;
                    for (int c = 0; c < hd; c++) dot += (double)qi[c] * kj[c];
                    p[j] = dot * scale;
                    if (p[j] > mx) mx = p[j];
                }
                double z = 0.0;
                for (int j = 0; j <= i; j++) {
                    p[j] = exp(p[j] - mx);
                    z += p[j];
                }
                for (int c = 0; c < hd; c++) {
                    double o = 0.0;
                    for (int j = 0; j <= i; j++)
                        o += p[j] / z * v[((size_t)s * L + j) * dkv + kvcol + c];
                    out[((size_t)s * L + i) * d + (size_t)h * hd + c] = o;
                }
            }
        }
    }
    free(p);
}

void aw_embed_ref(const uint32_t *tokens, int n_seq, int L, const float *E, const float *P,
                  int pos_offset, int d, double *h)
{
    for (int s = 0; s < n_seq; s++)
        for (int p = 0; p < L; p++) {
            size_t row = (size_t)s * L + p;
            for (int j = 0; j < d; j++)
                /* without P the value itself (adding 0.0 would turn -0 into +0) */
                h[row * d + j] = P ? (double)E[(size_t)tokens[row] * d + j] +
                                         P[(size_t)(p + pos_offset) * d + j]
                                   : (double)E[(size_t)tokens[row] * d + j];
        }
}

size_t aw_stats_ref(const float *x, int T, int d, float *absmax, double *sum)
{
    size_t bad = 0;
    for (int t = 0; t < T; t++) {
        for (int j = 0; j < d; j++) {
            float v = x[(size_t)t * d + j];
            if (isnan(v) || isinf(v)) {
                bad++;
                continue;
            }
            if (fabs(v) > absmax[j]) absmax[j] = fabsf(v);
            sum[j] += v;
        }
    }
    return bad;
}

float aw_absmax_ref(const float *x, size_t n)
{
    int has_nan = 0, has_inf = 0;
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i])) has_nan = 1;
        else if (isinf(x[i])) has_inf = 1;
        else if (fabs(x[i]) > m) m = fabs(x[i]);
    }
    return has_nan ? NAN : has_inf ? INFINITY : (float)m;
}

double aw_round_half_even_ref(double v)
{
    double f = floor(v), r = v - f; /* r exact: |v| < 2^52 here */
    if (r > 0.5) return f + 1.0;
    if (r < 0.5) return f;
    return fmod(f, 2.0) == 0.0 ? f : f + 1.0;
}

int8_t aw_quant_i8_ref(float x, float step)
{
    /* the quotient in double rounded to float is the correctly rounded float
     * quotient: the kernel's x / step */
    double v = (double)(float)((double)x / (double)step);
    if (isnan(v)) return 0;
    if (v > 127.0) v = 127.0;
    if (v < -127.0) v = -127.0;
    return (int8_t)aw_round_half_even_ref(v);
}

void aw_gemm_i8_ref(const int8_t *xq, const int8_t *wq, int64_t *acc, int T, int in, int out)
{
    for (int t = 0; t < T; t++)
        for (int o = 0; o < out; o++) {
            int64_t s = 0;
            for (int i = 0; i < in; i++)
                s += (int64_t)xq[(size_t)t * in + i] * (int64_t)wq[(size_t)o * in + i];
            acc[(size_t)t * out + o] = s;
        }
}

static long double lse_ref(const float *l, int V)
{
    long double mx = l[0];
    for (int j = 1; j < V; j++)
        if (l[j] > mx) mx = l[j];
    long double s = 0;
    for (int j = 0; j < V; j++) s += expl((long double)l[j] - mx);
    return mx + logl(s);
}

double aw_logprob_row_ref(const float *logits, const float *ref, int V, uint32_t target, double *kl,
                          int *argmax)
{
    int am = 0;
    for (int j = 1; j < V; j++)
        if (logits[j] > logits[am]) am = j;
    *argmax = am;
    long double lse = lse_ref(logits, V);
    if (ref && kl) {
        long double lser = lse_ref(ref, V), s = 0;
        for (int j = 0; j < V; j++) {
            long double lpr = ref[j] - lser, lp = logits[j] - lse;
            s += expl(lpr) * (lpr - lp);
        }
        *kl = (double)s;
    }
    return (double)(logits[target] - lse);
}

void aw_ref_fill_outliers(float *x, int rows, int cols, uint64_t seed, const char *key)
{
    aw_rng r;
    aw_rng_seed(&r, seed, key);
    float cs_small[64];
    float *cs = cols <= 64 ? cs_small : malloc((size_t)cols * sizeof(float));
    if (!cs) abort();
    for (int j = 0; j < cols; j++) {
        int outlier = cols >= 3 && (j % 10 == 3 || j == cols - 2);
        cs[j] = outlier ? (float)(50.0 + 50.0 * aw_rng_uniform(&r)) : 1.0f;
    }
    for (size_t i = 0; i < (size_t)rows * cols; i++) {
        x[i] = (float)aw_rng_normal(&r) * cs[i % (size_t)cols];
        if (i % 29 == 11) x[i] = (i / 29) % 2 ? -0.0f : 0.0f;
    }
    if (cs != cs_small) free(cs);
}
