// aw_nccl.cu - NCCL wrappers for device buffers (aw_nccl.h).
#include <cuda_runtime.h>
#include <nccl.h>
#include <string.h>

#include "aw_nccl.h"

static_assert(sizeof(ncclUniqueId) == AW_NCCL_ID_BYTES, "AW_NCCL_ID_BYTES != sizeof(ncclUniqueId)");

// NCCL's last-error text is per communicator (or global for NULL) and
// often names the transport or peer that failed: add it to the message.
#define AW_NCCL_TRY(call, comm)                                                                    \
    do {                                                                                           \
        ncclResult_t aw_nr_ = (call);                                                              \
        if (aw_nr_ != ncclSuccess) {                                                               \
            const char *aw_nl_ = ncclGetLastError((ncclComm_t)(comm));                             \
            return AW_FAIL(AW_ERR_NCCL, "%s: %s%s%s", #call, ncclGetErrorString(aw_nr_),           \
                           aw_nl_ && *aw_nl_ ? ": " : "", aw_nl_ ? aw_nl_ : "");                   \
        }                                                                                          \
    } while (0)

extern "C" aw_status aw_nccl_get_id(void *id, size_t cap)
{
    AW_RETURN_IF(!id || cap < sizeof(ncclUniqueId), AW_ERR_ARG,
                 "aw_nccl_get_id: buffer of %zu bytes, %zu needed", cap, sizeof(ncclUniqueId));
    ncclUniqueId u;
    AW_NCCL_TRY(ncclGetUniqueId(&u), NULL);
    memcpy(id, &u, sizeof u);
    return AW_OK;
}

extern "C" aw_status aw_nccl_init(int nranks, int rank, const void *id, void **comm)
{
    *comm = NULL;
    AW_RETURN_IF(nranks < 1 || rank < 0 || rank >= nranks || !id, AW_ERR_ARG,
                 "aw_nccl_init: rank %d of %d", rank, nranks);
    ncclUniqueId u;
    memcpy(&u, id, sizeof u);
    ncclComm_t c = NULL;
    AW_NCCL_TRY(ncclCommInitRank(&c, nranks, u, rank), NULL);
    *comm = c;
    return AW_OK;
}

extern "C" void aw_nccl_destroy(void *comm)
{
    if (!comm) return;
    (void)ncclCommFinalize((ncclComm_t)comm);
    (void)ncclCommDestroy((ncclComm_t)comm);
}

extern "C" void aw_nccl_abort(void *comm)
{
    if (comm) (void)ncclCommAbort((ncclComm_t)comm);
}

extern "C" aw_status aw_nccl_send(const void *buf, size_t bytes, int peer, void *comm, void *stream)
{
    AW_NCCL_TRY(ncclSend(buf, bytes, ncclUint8, peer, (ncclComm_t)comm, (cudaStream_t)stream), comm);
    return AW_OK;
}

extern "C" aw_status aw_nccl_recv(void *buf, size_t bytes, int peer, void *comm, void *stream)
{
    AW_NCCL_TRY(ncclRecv(buf, bytes, ncclUint8, peer, (ncclComm_t)comm, (cudaStream_t)stream), comm);
    return AW_OK;
}

extern "C" aw_status aw_nccl_group_start(void)
{
    AW_NCCL_TRY(ncclGroupStart(), NULL);
    return AW_OK;
}

extern "C" aw_status aw_nccl_group_end(void)
{
    AW_NCCL_TRY(ncclGroupEnd(), NULL);
    return AW_OK;
}

extern "C" aw_status aw_nccl_allreduce_max_f32(const float *send, float *recv, size_t n, void *comm,
                                               void *stream)
{
    AW_NCCL_TRY(ncclAllReduce(send, recv, n, ncclFloat32, ncclMax, (ncclComm_t)comm,
                              (cudaStream_t)stream),
                comm);
    return AW_OK;
}

extern "C" aw_status aw_nccl_allreduce_sum_f64(const double *send, double *recv, size_t n,
                                               void *comm, void *stream)
{
    AW_NCCL_TRY(ncclAllReduce(send, recv, n, ncclFloat64, ncclSum, (ncclComm_t)comm,
                              (cudaStream_t)stream),
                comm);
    return AW_OK;
}

extern "C" aw_status aw_nccl_allgather(const void *send, void *recv, size_t bytes, void *comm,
                                       void *stream)
{
    AW_NCCL_TRY(ncclAllGather(send, recv, bytes, ncclUint8, (ncclComm_t)comm, (cudaStream_t)stream),
                comm);
    return AW_OK;
}
