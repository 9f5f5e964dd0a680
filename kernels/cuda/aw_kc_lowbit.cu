// aw_kc_lowbit.cu - low-bit weight kernels of the CUDA backend: the Gram
// matrix of a layer's inputs and the dequantization of grouped codes
// (aw_kc_lowbit.h).
//
// Row-major meets column-major: cuBLAS reads the row-major x (T, in) as the
// column-major matrix x^T (in, T) with leading dimension in, so ssyrk with
// op N gives C = x^T x. A column-major triangle entry (i, j) lives at
// h + i + j*in, which is the row-major (j, i): cuBLAS's UPPER (i <= j) is
// the row-major lower triangle (j >= i) the CPU fills, and the row-major
// upper triangle is never written.
#include <stdint.h>

#include "aw_cuda_check.h"
#include "aw_kc_lowbit.h"

static const unsigned AW_KC_MAX_BLOCKS = 1u << 16;

// ---- Gram matrix ----------------------------------------------------------------

// One thread per column j: abssum[j] += |x_tj| for t = 0 .. T-1 in order, in
// double, into the running value: the CPU's additions, in the CPU's order
// (bit-identical). A warp reads 32 consecutive floats of a row: coalesced.
__global__ void abssum_kernel(const float *__restrict__ x, int T, int in, double *abssum)
{
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < in; j += gridDim.x * blockDim.x) {
        double s = abssum[j];
        const float *p = x + j;
        for (int t = 0; t < T; t++, p += in) s += fabs((double)__ldg(p));
        abssum[j] = s;
    }
}

extern "C" aw_status aw_kc_gram_accum(aw_kc *k, const float *x, int T, int in, float *h, double *abssum)
{
    if (T <= 0 || in <= 0) return AW_OK;
    const float one = 1.0f;
    AW_CUBLAS_TRY(cublasSsyrk(k->blas, CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_N, in, T, &one, x, in, &one, h,
                              in));
    abssum_kernel<<<aw_kc_blocks((size_t)in, AW_KC_THREADS, AW_KC_MAX_BLOCKS), AW_KC_THREADS, 0,
                    k->stream>>>(x, T, in, abssum);
    AW_CUDA_LAUNCH("abssum_kernel");
    return AW_OK;
}

// ---- dequantization -------------------------------------------------------------------

// One thread per weight: (q - z) * step, one rounding (as the CPU).
__global__ void dequant_groups_kernel(const uint8_t *__restrict__ q, const float *__restrict__ step,
                                      const uint8_t *__restrict__ zero, int in, int gl, int ng,
                                      size_t n, float *__restrict__ w)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / (size_t)in;
        int j = (int)(i - r * (size_t)in);
        size_t p = r * (size_t)ng + (size_t)(j / gl);
        w[i] = __fmul_rn((float)((int)q[i] - (int)zero[p]), step[p]);
    }
}

extern "C" aw_status aw_kc_dequant_groups(aw_kc *k, const uint8_t *q, const float *step, const uint8_t *zero,
                                          int out, int in, int G, float *w)
{
    if (out <= 0 || in <= 0) return AW_OK;
    int gl = G > 0 && G < in ? G : in, ng = (in + gl - 1) / gl;
    size_t n = (size_t)out * in;
    dequant_groups_kernel<<<aw_kc_blocks(n, AW_KC_THREADS, AW_KC_MAX_BLOCKS), AW_KC_THREADS, 0,
                            k->stream>>>(q, step, zero, in, gl, ng, n, w);
    AW_CUDA_LAUNCH("dequant_groups_kernel");
    return AW_OK;
}
