// aw_kc_mem.cu - the CUDA backend's context (stream, cuBLAS/cuBLASLt
// handles, workspace, scratch) and device-buffer helpers (aw_kernels_cuda.h).
#include <stdlib.h>
#include <string.h>

#include "aw_cuda_check.h"
#include "aw_kernels_cuda.h"

// Below this, cudaMalloc's own out-of-memory error is message enough.
static const size_t AW_KC_BIG_ALLOC = (size_t)64 << 20;

extern "C" aw_status aw_kc_malloc(void **p, size_t bytes, const char *what)
{
    *p = NULL;
    if (bytes == 0) return AW_OK;
    if (bytes >= AW_KC_BIG_ALLOC) {
        size_t free_b = 0, total_b = 0;
        AW_CUDA_TRY(cudaMemGetInfo(&free_b, &total_b));
        AW_RETURN_IF(bytes > free_b, AW_ERR_NOMEM,
                     "device memory for %s: %zu bytes requested, %zu free of %zu",
                     what ? what : "a buffer", bytes, free_b, total_b);
    }
    cudaError_t e = cudaMalloc(p, bytes);
    if (e != cudaSuccess) {
        *p = NULL;
        (void)cudaGetLastError(); // out of memory is not sticky: clear it
        if (e == cudaErrorMemoryAllocation)
            return AW_FAIL(AW_ERR_NOMEM, "cudaMalloc for %s: %zu bytes: %s",
                           what ? what : "a buffer", bytes, cudaGetErrorString(e));
        return AW_FAIL(AW_ERR_CUDA, "cudaMalloc for %s (%zu bytes): %s (%s)",
                       what ? what : "a buffer", bytes, cudaGetErrorString(e), cudaGetErrorName(e));
    }
    return AW_OK;
}

extern "C" void aw_kc_free(void *p)
{
    if (p) (void)cudaFree(p);
}

extern "C" aw_status aw_kc_copy(aw_kc *k, void *dst, const void *src, size_t bytes)
{
    if (bytes == 0) return AW_OK;
    AW_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, k->stream));
    return AW_OK;
}

extern "C" aw_status aw_kc_memset(aw_kc *k, void *dst, int byte, size_t bytes)
{
    if (bytes == 0) return AW_OK;
    AW_CUDA_TRY(cudaMemsetAsync(dst, byte, bytes, k->stream));
    return AW_OK;
}

// Frees what a partly built context holds; the stream last (after a sync).
static void kc_release(aw_kc *k)
{
    if (k->stream) (void)cudaStreamSynchronize(k->stream);
    if (k->lt) (void)cublasLtDestroy(k->lt);
    if (k->blas) (void)cublasDestroy(k->blas);
    aw_kc_free(k->lt_ws);
    aw_kc_free(k->scratch);
    for (int i = 0; i < AW_KC_EVENTS; i++)
        if (k->ev[i]) (void)cudaEventDestroy(k->ev[i]);
    if (k->own_stream && k->stream) (void)cudaStreamDestroy(k->stream);
    free(k);
}

static aw_status kc_init(aw_kc *k, void *stream)
{
    if (stream) {
        k->stream = (cudaStream_t)stream;
    } else {
        AW_CUDA_TRY(cudaStreamCreateWithFlags(&k->stream, cudaStreamNonBlocking));
        k->own_stream = 1;
    }
    AW_CUBLAS_TRY(cublasCreate(&k->blas));
    AW_CUBLAS_TRY(cublasSetStream(k->blas, k->stream));
    // fp32 products stay fp32: no TF32 (the 1e-5 tolerance against the CPU
    // would not hold at TF32's 10-bit mantissa)
    AW_CUBLAS_TRY(cublasSetMathMode(k->blas, CUBLAS_DEFAULT_MATH));
    AW_CUBLAS_TRY(cublasLtCreate(&k->lt));
    AW_TRY(aw_kc_malloc(&k->lt_ws, AW_KC_LT_WS, "cuBLASLt workspace"));
    // the same workspace for cuBLAS: with it, results do not depend on
    // cuBLAS's per-stream default pool (cuBLAS reproducibility notes)
    AW_CUBLAS_TRY(cublasSetWorkspace(k->blas, k->lt_ws, AW_KC_LT_WS));
    for (int i = 0; i < AW_KC_EVENTS; i++)
        AW_CUDA_TRY(cudaEventCreateWithFlags(&k->ev[i], cudaEventDisableTiming));
    return AW_OK;
}

extern "C" aw_status aw_kc_create(void *stream, aw_kc **out)
{
    *out = NULL;
    aw_kc *k = (aw_kc *)calloc(1, sizeof *k);
    AW_RETURN_IF(!k, AW_ERR_NOMEM, "out of host memory for a CUDA context");
    aw_status st = kc_init(k, stream);
    if (st != AW_OK) {
        kc_release(k);
        return st;
    }
    *out = k;
    return AW_OK;
}

extern "C" void aw_kc_destroy(aw_kc *k)
{
    if (k) kc_release(k);
}

extern "C" void *aw_kc_stream(const aw_kc *k) { return (void *)k->stream; }

extern "C" aw_status aw_kc_sync(aw_kc *k)
{
    AW_CUDA_TRY(cudaStreamSynchronize(k->stream));
    AW_CUDA_TRY(cudaGetLastError());
    return AW_OK;
}

static_assert(sizeof(((aw_kc *)0)->ev) / sizeof(cudaEvent_t) == AW_KC_EVENTS, "event slots");

extern "C" aw_status aw_kc_record(aw_kc *k, int slot)
{
    AW_RETURN_IF(slot < 0 || slot >= AW_KC_EVENTS, AW_ERR_ARG, "event slot %d", slot);
    AW_CUDA_TRY(cudaEventRecord(k->ev[slot], k->stream));
    return AW_OK;
}

extern "C" aw_status aw_kc_wait(aw_kc *waiter, aw_kc *producer, int slot)
{
    AW_RETURN_IF(slot < 0 || slot >= AW_KC_EVENTS, AW_ERR_ARG, "event slot %d", slot);
    AW_CUDA_TRY(cudaStreamWaitEvent(waiter->stream, producer->ev[slot], 0));
    return AW_OK;
}

aw_status aw_kc_scratch(aw_kc *k, size_t bytes, void **out)
{
    if (bytes > k->scratch_bytes) {
        // the old buffer may still be read by queued kernels
        AW_CUDA_TRY(cudaStreamSynchronize(k->stream));
        aw_kc_free(k->scratch);
        k->scratch = NULL;
        k->scratch_bytes = 0;
        size_t want = bytes < ((size_t)1 << 20) ? ((size_t)1 << 20) : bytes;
        AW_TRY(aw_kc_malloc(&k->scratch, want, "kernel scratch"));
        k->scratch_bytes = want;
    }
    *out = k->scratch;
    return AW_OK;
}

extern "C" aw_status aw_kc_reserve(aw_kc *k, size_t bytes)
{
    void *p;
    return aw_kc_scratch(k, bytes, &p);
}
