/*
 * aw_quant_k.h - the CPU reference of the quantization steps that run on
 * a block's weights (pipeline/quant/ calls them through the ops table,
 * aw_ops.h, so that a GPU rank keeps the weights on the device): column and
 * row ranges for the folds, the bias correction's (Q(W') - W') E[x'] per
 * output, and the scale search's objective per consumer. Each is exactly
 * the loop the quantization code ran on the host before (same operations,
 * same order), so the results are the bits they gave.
 * The CUDA versions (kernels/cuda/aw_kc_lowbit.h) are tested against these.
 */
#ifndef AW_QUANT_K_H
#define AW_QUANT_K_H

#include <stddef.h>
#include <stdint.h>

#include "aw_dtype.h"
#include "aw_status.h"

/* rw[j] = max(rw[j], max_i |w_ij|) over w (rows, cols): a running maximum
 * (the caller zeroes rw first); NaN weights are passed over. */
void aw_k_col_absmax(const float *w, int rows, int cols, float *rw);
/* rmax[i] = aw_k_absmax(row i of w (rows, cols)). */
void aw_k_row_absmax(const float *w, int rows, int cols, float *rmax);
/* delta[i] = sum_j ((double)wq_ij * step - (double)w_ij) * mean_j, in
 * double, j in order: INT8 codes wq (rows, cols) against w. */
void aw_k_bias_delta_i8(const float *w, const int8_t *wq, float step, const double *mean, int rows, int cols,
                        double *delta);
/* delta[i] = sum_j ((double)deq_ij - (double)w_ij) * mean_j, likewise. */
void aw_k_bias_delta(const float *w, const float *deq, const double *mean, int rows, int cols, double *delta);

/* The scale search's objective of one consumer w (out, in), factors s (in),
 * G (in, in) symmetric double: *acc += sum_i dW_i^T G dW_i with
 * dW = Q(W diag s) diag(1/s) - W, Q group quantization (G_len inputs a
 * group, 0: the whole row; bits, sym, steps rounded to sdt; aw_lowbit.h).
 * Rows in chunks (two (rows, in) double arrays of about 32 MB at most), the
 * products by cblas_dsymm, the sum in row-major order into *acc.
 * AW_ERR_NOMEM. */
aw_status aw_k_search_err(const float *w, int out, int in, const float *s, const double *G, int G_len, int bits,
                          int sym, aw_dtype sdt, double *acc);

#endif
