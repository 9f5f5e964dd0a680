/*
 * aw_cuda_api.h - the CUDA backend as a plugin. The CUDA kernels, cuBLAS and
 * NCCL live in libaweq_cuda.so (built when nvcc was found), loaded with
 * dlopen the first time a rank looks for a GPU. A CPU-only node therefore
 * runs the same binary without the CUDA libraries installed, and a CPU rank
 * never pays for their start-up (libcublasLt alone maps ~150 MB).
 *
 * The plugin resolves the project's error functions (aw_status.h) from the
 * executable (built with exported symbols), so a failure inside it reads
 * like any other: aw_err_message() names the CUDA/cuBLAS/NCCL call.
 *
 * The plugin is looked for at $AWEQ_CUDA_PLUGIN, else next to the
 * executable (/proc/self/exe's folder).
 */
#ifndef AW_CUDA_API_H
#define AW_CUDA_API_H

#include <stddef.h>

#include "aw_ops.h"
#include "aw_status.h"

/* 3: aw_ops_vt gained rmsnorm, swiglu, rope; embed and attention new
 * arguments (the table travels through ops_create). 4: aw_ops_vt gained
 * gram_accum and dequant_groups. 5: aw_ops_vt gained the quantization ops
 * (widen .. gptq). 6: aw_ops_vt gained the dynamic activation ops
 * (act_quant .. add_linear). 7: gram_accum takes h NULL (the |x| sums
 * alone) */
#define AW_CUDA_API_ABI 7
#define AW_CUDA_NCCL_ID_BYTES 128

typedef struct {
    int abi; /* AW_CUDA_API_ABI */
    /* devices (aw_cuda.h) */
    int (*device_count)(const char **why);
    aw_status (*use_device)(int device, char *name, size_t name_cap, size_t *total_mem);
    aw_status (*mem_info)(size_t *free_b, size_t *total_b);
    aw_status (*device_key)(int device, unsigned long long *key);
    /* the kernels table (aw_ops.h) on the current device */
    aw_status (*ops_create)(aw_ops **out);
    void (*ops_destroy)(aw_ops *o);
    /* more streams, ordered by events (aw_kc_create, aw_kc_record, aw_kc_wait) */
    aw_status (*stream_create)(void **ctx);
    void (*stream_destroy)(void *ctx);
    void *(*stream_of)(void *ctx);
    aw_status (*record)(void *ctx, int slot);
    aw_status (*wait)(void *waiter, void *producer, int slot);
    aw_status (*sync)(void *ctx);
    /* NCCL (aw_nccl.h) */
    aw_status (*nccl_get_id)(void *id, size_t cap);
    aw_status (*nccl_init)(int nranks, int rank, const void *id, void **comm);
    void (*nccl_destroy)(void *comm);
    void (*nccl_abort)(void *comm);
    aw_status (*nccl_send)(const void *buf, size_t bytes, int peer, void *comm, void *stream);
    aw_status (*nccl_recv)(void *buf, size_t bytes, int peer, void *comm, void *stream);
} aw_cuda_api;

/* The plugin's table, loaded once; NULL when this build has no CUDA backend
 * or the plugin cannot be loaded, with the reason in *why. Thread-safe. */
const aw_cuda_api *aw_cuda_api_get(const char **why);

#endif
