/* aw_cuda_plugin.c - libaweq_cuda.so's one entry point: the table of
 * aw_cuda_api.h over the CUDA backend's functions. */
#include "aw_cuda.h"
#include "aw_cuda_api.h"
#include "aw_kernels_cuda.h"
#include "aw_nccl.h"

_Static_assert(AW_CUDA_NCCL_ID_BYTES == AW_NCCL_ID_BYTES, "NCCL id size");

static aw_status stream_create(void **ctx) { return aw_kc_create(NULL, (aw_kc **)ctx); }
static void stream_destroy(void *ctx) { aw_kc_destroy(ctx); }
static void *stream_of(void *ctx) { return aw_kc_stream(ctx); }
static aw_status record(void *ctx, int slot) { return aw_kc_record(ctx, slot); }
static aw_status wait_for(void *waiter, void *producer, int slot) { return aw_kc_wait(waiter, producer, slot); }
static aw_status sync_ctx(void *ctx) { return aw_kc_sync(ctx); }

const aw_cuda_api *aw_cuda_plugin_api(void);

const aw_cuda_api *aw_cuda_plugin_api(void)
{
    static const aw_cuda_api api = {
        .abi = AW_CUDA_API_ABI,
        .device_count = aw_cuda_device_count,
        .use_device = aw_cuda_use_device,
        .mem_info = aw_cuda_mem_info,
        .device_key = aw_cuda_device_key,
        .ops_create = aw_ops_cuda_create,
        .ops_destroy = aw_ops_cuda_destroy,
        .stream_create = stream_create,
        .stream_destroy = stream_destroy,
        .stream_of = stream_of,
        .record = record,
        .wait = wait_for,
        .sync = sync_ctx,
        .nccl_get_id = aw_nccl_get_id,
        .nccl_init = aw_nccl_init,
        .nccl_destroy = aw_nccl_destroy,
        .nccl_abort = aw_nccl_abort,
        .nccl_send = aw_nccl_send,
        .nccl_recv = aw_nccl_recv,
    };
    return &api;
}
