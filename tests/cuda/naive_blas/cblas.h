/*
 * cblas.h - a stand-in for the one CBLAS routine the CPU kernels call
 * (cblas_sgemm), used only by bench/cuda/gpu_checks.sh's direct build on a
 * GPU machine that has no BLAS installed. Plain loops, float accumulation in
 * k order: the CPU reference stays a float sgemm (the 1e-5 tolerance of the
 * CUDA comparison holds), just slower. Not part of any normal build.
 */
#ifndef AW_NAIVE_CBLAS_H
#define AW_NAIVE_CBLAS_H

enum CBLAS_ORDER { CblasRowMajor = 101, CblasColMajor = 102 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112, CblasConjTrans = 113 };

void cblas_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m,
                 int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                 float beta, float *c, int ldc);

#endif
