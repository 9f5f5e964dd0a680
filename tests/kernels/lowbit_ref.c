/* lowbit_ref.c - float64 references of the low-bit kernels (see lowbit_ref.h). */
#include "lowbit_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_ref.h"

double aw_round_sdt_ref(double v, aw_dtype sdt)
{
    int mant;     /* explicit mantissa bits */
    int emin;     /* exponent of the smallest normal */
    double fmax;  /* largest finite value */
    if (sdt == AW_DT_F16) mant = 10, emin = -14, fmax = 65504.0;
    else if (sdt == AW_DT_BF16) mant = 7, emin = -126, fmax = ldexp(255.0, 120); /* (2 - 2^-7) 2^127 */
    else return v; /* F32: v is a float already */
    if (v == 0.0 || !isfinite(v)) return v;
    int e;
    frexp(v, &e); /* |v| = f 2^e, f in [0.5, 1): the leading bit is 2^(e-1) */
    int lead = e - 1 < emin ? emin : e - 1;
    double ulp = ldexp(1.0, lead - mant);
    double r = aw_round_half_even_ref(v / ulp) * ulp; /* v / ulp: exact scaling */
    if (fabs(r) > fmax) return v > 0 ? INFINITY : -INFINITY;
    return r;
}

void aw_group_step_ref(const double *v, int n, int bits, int sym, aw_dtype sdt, float *step,
                       uint8_t *zero)
{
    int maxq = (1 << bits) - 1;
    double lo = 0.0, hi = 0.0;
    for (int i = 0; i < n; i++) {
        if (v[i] < lo) lo = v[i];
        if (v[i] > hi) hi = v[i];
    }
    double s = sym ? fmax(-lo, hi) / (maxq / 2.0) : (hi - lo) / maxq;
    double sd = aw_round_sdt_ref((double)(float)s, sdt);
    if (!(sd > 0.0) || !isfinite(sd)) sd = 1.0;
    *step = (float)sd;
    if (sym) {
        *zero = (uint8_t)(1 << (bits - 1));
    } else {
        double z = aw_round_half_even_ref((double)(float)(-(double)(float)lo / sd));
        *zero = (uint8_t)(z < 0 ? 0 : z > maxq ? maxq : z);
    }
}

static int glen(int G, int in) { return G > 0 && G < in ? G : in; }

void aw_group_params_ref(const float *w, int out, int in, int G, int bits, int sym, aw_dtype sdt,
                         float *step, uint8_t *zero)
{
    int gl = glen(G, in), ng = (in + gl - 1) / gl;
    double *v = malloc((size_t)gl * sizeof(double));
    if (!v) abort();
    for (int r = 0; r < out; r++)
        for (int g = 0; g < ng; g++) {
            int n = 0;
            for (int j = g * gl; j < in && j < (g + 1) * gl; j++) v[n++] = w[(size_t)r * in + j];
            aw_group_step_ref(v, n, bits, sym, sdt, &step[(size_t)r * ng + g], &zero[(size_t)r * ng + g]);
        }
    free(v);
}

uint8_t aw_code_ref(double w, float step, uint8_t zero, int bits)
{
    int maxq = (1 << bits) - 1;
    if (w != w) return zero;
    double v = (double)(float)(w / step); /* the float quotient (correctly rounded) */
    double c = aw_round_half_even_ref(fmax(fmin(v, 1e6), -1e6)) + zero;
    return (uint8_t)(c < 0 ? 0 : c > maxq ? maxq : c);
}

void aw_group_quantize_ref(const float *w, int out, int in, int G, int bits, const float *step,
                           const uint8_t *zero, uint8_t *q)
{
    int gl = glen(G, in), ng = (in + gl - 1) / gl;
    for (int r = 0; r < out; r++)
        for (int j = 0; j < in; j++) {
            size_t p = (size_t)r * ng + j / gl;
            q[(size_t)r * in + j] = aw_code_ref(w[(size_t)r * in + j], step[p], zero[p], bits);
        }
}

void aw_group_dequantize_ref(const uint8_t *q, const float *step, const uint8_t *zero, int out,
                             int in, int G, double *w)
{
    int gl = glen(G, in), ng = (in + gl - 1) / gl;
    for (int r = 0; r < out; r++)
        for (int j = 0; j < in; j++) {
            size_t p = (size_t)r * ng + j / gl;
            w[(size_t)r * in + j] = ((double)q[(size_t)r * in + j] - zero[p]) * step[p];
        }
}

void aw_pack_bits_ref(const uint8_t *q, size_t n, int bits, uint32_t *words)
{
    size_t nw = (n * (size_t)bits + 31) / 32;
    for (size_t i = 0; i < nw; i++) words[i] = 0;
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < bits; b++) {
            size_t pos = i * (size_t)bits + (size_t)b;
            uint32_t bit = (q[i] >> b) & 1u;
            words[pos / 32] |= bit << (pos % 32);
        }
}

void aw_unpack_bits_ref(const uint32_t *words, size_t n, int bits, uint8_t *q)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (int b = 0; b < bits; b++) {
            size_t pos = i * (size_t)bits + (size_t)b;
            v |= ((words[pos / 32] >> (pos % 32)) & 1u) << b;
        }
        q[i] = (uint8_t)v;
    }
}

void aw_gram_ref(const float *x, int T, int in, double *h, double *abssum)
{
    for (int i = 0; i < in; i++) {
        for (int j = 0; j < in; j++) {
            double s = 0.0;
            for (int t = 0; t < T; t++) s += (double)x[(size_t)t * in + i] * x[(size_t)t * in + j];
            h[(size_t)i * in + j] = s;
        }
        double a = 0.0;
        for (int t = 0; t < T; t++) a += fabs((double)x[(size_t)t * in + i]);
        abssum[i] = a;
    }
}

/* Lower Cholesky factor of a (n, n) in place (the upper triangle zeroed);
 * -1 if not positive definite. */
static int chol_ref(double *a, int n)
{
    for (int j = 0; j < n; j++) {
        double d = a[(size_t)j * n + j];
        for (int k = 0; k < j; k++) d -= a[(size_t)j * n + k] * a[(size_t)j * n + k];
        if (!(d > 0.0)) return -1;
        d = sqrt(d);
        a[(size_t)j * n + j] = d;
        for (int i = j + 1; i < n; i++) {
            double s = a[(size_t)i * n + j];
            for (int k = 0; k < j; k++) s -= a[(size_t)i * n + k] * a[(size_t)j * n + k];
            a[(size_t)i * n + j] = s / d;
        }
        for (int i = 0; i < j; i++) a[(size_t)i * n + j] = 0.0;
    }
    return 0;
}

/* inv = (L L^T)^-1 from the lower factor L: column by column, L y = e_c
 * then L^T x = y. */
static void chol_inverse_ref(const double *L, int n, double *inv, double *y)
{
    for (int c = 0; c < n; c++) {
        for (int i = 0; i < n; i++) {
            double s = i == c ? 1.0 : 0.0;
            for (int k = 0; k < i; k++) s -= L[(size_t)i * n + k] * y[k];
            y[i] = s / L[(size_t)i * n + i];
        }
        for (int i = n - 1; i >= 0; i--) {
            double s = y[i];
            for (int k = i + 1; k < n; k++) s -= L[(size_t)k * n + i] * inv[(size_t)k * n + c];
            inv[(size_t)i * n + c] = s / L[(size_t)i * n + i];
        }
    }
}

int aw_gptq_ref(const float *w, const double *H, int out, int in, int bits, int G, int sym,
                int act_order, double damp_frac, aw_dtype sdt, double *wq, float *step,
                uint8_t *zero, uint8_t *q)
{
    int gl = glen(G, in), ng = (in + gl - 1) / gl;
    double *W = malloc((size_t)out * in * sizeof(double));
    double *A = malloc((size_t)in * in * sizeof(double));
    double *Ai = malloc((size_t)in * in * sizeof(double));
    double *y = malloc((size_t)(in > out ? in : out) * sizeof(double));
    double *diag = malloc((size_t)in * sizeof(double));
    int *perm = malloc((size_t)in * sizeof(int));
    float *w0 = malloc((size_t)out * in * sizeof(float));
    if (!W || !A || !Ai || !y || !diag || !perm || !w0) abort();

    /* dead columns */
    double dsum = 0.0;
    for (int j = 0; j < in; j++) {
        diag[j] = H[(size_t)j * in + j];
        if (diag[j] == 0.0) diag[j] = 1.0;
        dsum += diag[j];
    }
    for (int r = 0; r < out; r++)
        for (int j = 0; j < in; j++) {
            float v = H[(size_t)j * in + j] == 0.0 ? 0.0f : w[(size_t)r * in + j];
            w0[(size_t)r * in + j] = v;
            W[(size_t)r * in + j] = v;
        }

    /* sweep order: selection of the largest remaining diagonal, lowest
     * index first among equals */
    for (int k = 0; k < in; k++) perm[k] = k;
    if (act_order) {
        for (int k = 0; k < in; k++) {
            int best = k;
            for (int m = k + 1; m < in; m++)
                if (diag[perm[m]] > diag[perm[best]] ||
                    (diag[perm[m]] == diag[perm[best]] && perm[m] < perm[best]))
                    best = m;
            int t = perm[k];
            perm[k] = perm[best];
            perm[best] = t;
        }
        aw_group_params_ref(w0, out, in, G, bits, sym, sdt, step, zero);
    }

    /* U: Hp + damp I = L L^T, inverse, its lower factor L2, U = L2^T */
    double damp = damp_frac * dsum / in;
    for (int i = 0; i < in; i++)
        for (int j = 0; j < in; j++) {
            A[(size_t)i * in + j] = i == j ? diag[perm[i]] + damp : H[(size_t)perm[i] * in + perm[j]];
        }
    int bad = chol_ref(A, in);
    if (!bad) {
        chol_inverse_ref(A, in, Ai, y);
        bad = chol_ref(Ai, in);
    }
    if (bad) {
        free(W), free(A), free(Ai), free(y), free(diag), free(perm), free(w0);
        return -1;
    }
    /* U[k][c] = Ai[c][k] (c >= k) */

    double *v = malloc((size_t)gl * (size_t)out * sizeof(double));
    if (!v) abort();
    for (int k = 0; k < in; k++) {
        int j = perm[k];
        int g = (act_order ? j : k) / gl;
        if (!act_order && k % gl == 0) {
            int ke = k + gl < in ? k + gl : in;
            for (int r = 0; r < out; r++) {
                for (int c = k; c < ke; c++) v[c - k] = W[(size_t)r * in + perm[c]];
                aw_group_step_ref(v, ke - k, bits, sym, sdt, &step[(size_t)r * ng + g],
                                  &zero[(size_t)r * ng + g]);
            }
        }
        double ukk = Ai[(size_t)k * in + k];
        for (int r = 0; r < out; r++) {
            float s = step[(size_t)r * ng + g];
            uint8_t z = zero[(size_t)r * ng + g];
            double wv = W[(size_t)r * in + j];
            uint8_t c = aw_code_ref(wv, s, z, bits);
            double dq = ((double)c - z) * s;
            double e = (wv - dq) / ukk;
            for (int m = k + 1; m < in; m++) W[(size_t)r * in + perm[m]] -= Ai[(size_t)m * in + k] * e;
            W[(size_t)r * in + j] = dq;
            q[(size_t)r * in + j] = c;
        }
    }
    memcpy(wq, W, (size_t)out * in * sizeof(double));
    free(v);
    free(W), free(A), free(Ai), free(y), free(diag), free(perm), free(w0);
    return 0;
}

double aw_output_err_ref(const float *w, const double *wq, const double *H, int out, int in)
{
    double *d = malloc((size_t)in * sizeof(double));
    if (!d) abort();
    long double tot = 0;
    for (int r = 0; r < out; r++) {
        for (int j = 0; j < in; j++) d[j] = wq[(size_t)r * in + j] - (double)w[(size_t)r * in + j];
        for (int i = 0; i < in; i++) {
            double s = 0.0;
            for (int j = 0; j < in; j++) s += H[(size_t)i * in + j] * d[j];
            tot += (long double)d[i] * s;
        }
    }
    free(d);
    return (double)tot;
}
