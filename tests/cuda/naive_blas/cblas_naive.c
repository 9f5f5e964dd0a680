/* cblas_naive.c - see cblas.h beside this file (GPU-machine fallback only). */
#include "cblas.h"

#include <stddef.h>

/* C (m, n) = alpha op(A) op(B) + beta C; row-major, or column-major as the
 * transposed row-major problem. beta == 0 overwrites C (NaN in C ignored). */
void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m,
                 int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                 float beta, float *c, int ldc)
{
    if (order == CblasColMajor) { /* C^T = op(B)^T op(A)^T, row-major */
        cblas_sgemm(CblasRowMajor, tb, ta, n, m, k, alpha, b, ldb, a, lda, beta, c, ldc);
        return;
    }
    int at = ta != CblasNoTrans, bt = tb != CblasNoTrans;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            float s = 0.0f;
            for (int p = 0; p < k; p++) {
                float av = at ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                float bv = bt ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                s += av * bv;
            }
            float *cij = c + (size_t)i * ldc + j;
            *cij = beta == 0.0f ? alpha * s : alpha * s + beta * *cij;
        }
    }
}
