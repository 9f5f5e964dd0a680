/* aw_quant_k.c - CPU quantization steps on a block's weights (see
 * aw_quant_k.h): the loops pipeline/quant/ ran on the host, unchanged. */
#include "aw_quant_k.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aw_kernels.h"
#include "aw_lowbit.h"

#ifdef __FAST_MATH__
#error "aw_quant_k.c must not be built with -ffast-math (results must be the reference's bits)"
#endif

void aw_k_col_absmax(const float *w, int rows, int cols, float *rw)
{
    for (int i = 0; i < rows; i++) {
        const float *row = w + (size_t)i * cols;
        for (int j = 0; j < cols; j++) {
            float a = fabsf(row[j]);
            rw[j] = a > rw[j] ? a : rw[j];
        }
    }
}

void aw_k_row_absmax(const float *w, int rows, int cols, float *rmax)
{
    for (int i = 0; i < rows; i++) rmax[i] = aw_k_absmax(w + (size_t)i * cols, (size_t)cols);
}

void aw_k_bias_delta_i8(const float *w, const int8_t *wq, float step, const double *mean, int rows, int cols,
                        double *delta)
{
    for (int i = 0; i < rows; i++) {
        const float *wr = w + (size_t)i * cols;
        const int8_t *qr = wq + (size_t)i * cols;
        double d = 0.0;
        for (int j = 0; j < cols; j++) d += ((double)qr[j] * step - (double)wr[j]) * mean[j];
        delta[i] = d;
    }
}

void aw_k_bias_delta(const float *w, const float *deq, const double *mean, int rows, int cols, double *delta)
{
    for (int i = 0; i < rows; i++) {
        const float *wr = w + (size_t)i * cols, *qr = deq + (size_t)i * cols;
        double d = 0.0;
        for (int j = 0; j < cols; j++) d += ((double)qr[j] - (double)wr[j]) * mean[j];
        delta[i] = d;
    }
}

/* Rows of a consumer the objective treats at a time: two (rows, in) double
 * arrays of about 32 MB each at most. */
static int objective_rows(int out, int in)
{
    int r = (int)((size_t)(1u << 22) / (size_t)in);
    return r < 1 ? 1 : r > out ? out : r;
}

aw_status aw_k_search_err(const float *w, int out, int in, const float *s, const double *G, int G_len, int bits,
                          int sym, aw_dtype sdt, double *acc)
{
    if (out <= 0 || in <= 0) return AW_OK;
    int R = objective_rows(out, in);
    int gl = G_len > 0 && G_len < in ? G_len : in, ng = (in + gl - 1) / gl;
    size_t cap = (size_t)R * in, cap_g = (size_t)R * ng;
    /* scratch carved from one block */
    double *dw = malloc(cap * (2 * sizeof(double) + 2 * sizeof(float) + 1) + cap_g * (sizeof(float) + 1));
    AW_RETURN_IF(!dw, AW_ERR_NOMEM, "out of memory for the scale search");
    double *dwg = dw + cap;                     /* (rows, in) dW G */
    float *ws = (float *)(dwg + cap);           /* (rows, in) W diag(s) */
    float *deq = ws + cap;                      /* (rows, in) Q(W diag(s)) */
    float *step = deq + cap;                    /* (rows, ng) */
    uint8_t *codes = (uint8_t *)(step + cap_g); /* (rows, in) */
    uint8_t *zero = codes + cap;                /* (rows, ng) */
    double total = *acc;
    for (int r0 = 0; r0 < out; r0 += R) {
        int rr = out - r0 < R ? out - r0 : R;
        const float *wr = w + (size_t)r0 * in;
        size_t n = (size_t)rr * in;
        memcpy(ws, wr, n * sizeof *ws);
        aw_k_scale_cols(ws, rr, in, s); /* the same bits the fold gives */
        aw_k_group_params(ws, rr, in, G_len, bits, sym, sdt, step, zero);
        aw_k_group_quantize(ws, rr, in, G_len, bits, step, zero, codes);
        aw_k_group_dequantize(codes, step, zero, rr, in, G_len, deq);
        for (int i = 0; i < rr; i++)
            for (int j = 0; j < in; j++) {
                size_t k = (size_t)i * in + j;
                dw[k] = (double)deq[k] / (double)s[j] - (double)wr[k];
            }
        /* dwg (rr, in) = dw (rr, in) G (in, in) */
        cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, rr, in, 1.0, G, in, dw, in, 0.0, dwg, in);
        for (size_t k = 0; k < n; k++) total += dw[k] * dwg[k];
    }
    free(dw);
    *acc = total;
    return AW_OK;
}
