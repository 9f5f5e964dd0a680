/*
 * aw_cuda_check.h - private to the .cu files of kernels/cuda: the macros that turn a
 * failed CUDA runtime, cuBLAS / cuBLASLt or NCCL call into the project's
 * aw_status (AW_ERR_CUDA, AW_ERR_NCCL) with the call's text, the library's
 * error string, and file:line (via AW_FAIL). They *return* from the calling
 * function, nccl-tests style; nothing below pipeline/ exits.
 *
 *   AW_CUDA_TRY(cudaMemcpyAsync(...));
 *   AW_CUBLAS_TRY(cublasSgemm(...));
 *   some_kernel<<<g, b, 0, s>>>(...); AW_CUDA_LAUNCH("some_kernel");
 *
 * C++ only (nvcc); not part of the C interface.
 */
#ifndef AW_CUDA_CHECK_H
#define AW_CUDA_CHECK_H

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "aw_status.h"

/* Kernels must round like the CPU reference: IEEE division and square
 * root, no flush-to-zero. --use_fast_math would break the bit-exact checks
 * (INT8 codes, folds, dequantization) of tests/cuda. */
#ifdef __USE_FAST_MATH__
#error "kernels/cuda must not be built with --use_fast_math"
#endif

#define AW_CUDA_TRY(call)                                                                          \
    do {                                                                                           \
        cudaError_t aw_ce_ = (call);                                                               \
        if (aw_ce_ != cudaSuccess)                                                                 \
            return AW_FAIL(AW_ERR_CUDA, "%s: %s (%s)", #call, cudaGetErrorString(aw_ce_),          \
                           cudaGetErrorName(aw_ce_));                                              \
    } while (0)

/* After a <<<>>> launch: configuration errors show at once; faults inside
 * the kernel show at the next synchronising call (aw_kc_sync). */
#define AW_CUDA_LAUNCH(name)                                                                       \
    do {                                                                                           \
        cudaError_t aw_ce_ = cudaGetLastError();                                                   \
        if (aw_ce_ != cudaSuccess)                                                                 \
            return AW_FAIL(AW_ERR_CUDA, "launch of %s: %s (%s)", (name),                           \
                           cudaGetErrorString(aw_ce_), cudaGetErrorName(aw_ce_));                  \
    } while (0)

#define AW_CUBLAS_TRY(call)                                                                        \
    do {                                                                                           \
        cublasStatus_t aw_bs_ = (call);                                                            \
        if (aw_bs_ != CUBLAS_STATUS_SUCCESS)                                                       \
            return AW_FAIL(AW_ERR_CUDA, "%s: %s (%s)", #call, cublasGetStatusString(aw_bs_),       \
                           cublasGetStatusName(aw_bs_));                                           \
    } while (0)

/* Blocks of 256 threads for the element-wise and row kernels. */
enum { AW_KC_THREADS = 256 };

/* Blocks for n items at `per_block` items per block, at most `cap` (grid-
 * stride loops cover the rest). Depends on n only, never on the device, so
 * any reduction shaped by it is the same on every GPU. */
static inline unsigned aw_kc_blocks(size_t n, size_t per_block, unsigned cap)
{
    size_t b = (n + per_block - 1) / per_block;
    if (b < 1) b = 1;
    return b > cap ? cap : (unsigned)b;
}

/* The context's stream and handles (aw_kc_mem.cu owns them). */
struct aw_kc {
    cudaStream_t stream;
    int own_stream; /* created by aw_kc_create (stream argument NULL) */
    cublasHandle_t blas;
    cublasLtHandle_t lt;
    void *lt_ws; /* cuBLASLt workspace, AW_KC_LT_WS bytes */
    void *scratch;
    size_t scratch_bytes;
    cudaEvent_t ev[4]; /* AW_KC_EVENTS marks (aw_kc_record), created with the context */
};

enum { AW_KC_LT_WS = 32 << 20 };

/* ctx->scratch with at least bytes (grows it: synchronises the stream). */
aw_status aw_kc_scratch(struct aw_kc *k, size_t bytes, void **out);

#endif
