/*
 * aw_nccl.h - NCCL for device buffers, C-callable: the hand-off of
 * activation blocks between pipeline stages and the reductions of
 * statistics between replicas, when both ends hold them on a GPU.
 *
 * Start-up order (nccl-tests): rank 0 of the communicator's MPI group calls
 * aw_nccl_get_id, the MPI side broadcasts the AW_NCCL_ID_BYTES bytes, every
 * rank sets its device (aw_cuda_use_device) and calls aw_nccl_init. The
 * communicator is an opaque pointer; destroy it with aw_nccl_destroy, or
 * aw_nccl_abort when a peer failed. All transfers are queued on the given
 * stream (a cudaStream_t) and complete in stream order.
 *
 * Determinism: max reductions are exact in any order. NCCL's sum order
 * depends on the rank count and topology, so statistics that must be
 * byte-identical across layouts are not summed with allreduce_sum: gather
 * the replicas' partials (aw_nccl_allgather) and add them in replica order.
 *
 * Every function returns AW_OK or AW_ERR_NCCL with ncclGetErrorString and
 * NCCL's last-error text in aw_err_message() (AW_ERR_ARG for a bad
 * argument).
 */
#ifndef AW_NCCL_H
#define AW_NCCL_H

#include <stddef.h>

#include "aw_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* sizeof(ncclUniqueId): what aw_nccl_get_id writes and MPI broadcasts. */
#define AW_NCCL_ID_BYTES 128

/* Write a fresh NCCL unique id into id (cap >= AW_NCCL_ID_BYTES bytes). */
aw_status aw_nccl_get_id(void *id, size_t cap);
/* Join the communicator of nranks ranks named by id (AW_NCCL_ID_BYTES bytes
 * from rank 0) as rank, on the current device; blocks until all ranks have
 * joined. *comm is NULL on failure. */
aw_status aw_nccl_init(int nranks, int rank, const void *id, void **comm);
/* Flush and free a communicator; NULL ok. */
void aw_nccl_destroy(void *comm);
/* Abandon a communicator after a failure elsewhere (peers may be gone);
 * NULL ok. */
void aw_nccl_abort(void *comm);

/* Point-to-point: bytes of device memory to / from rank peer. A send and
 * the matching receive must be queued on both sides; several of them that
 * must progress together go between aw_nccl_group_start and _end. */
aw_status aw_nccl_send(const void *buf, size_t bytes, int peer, void *comm, void *stream);
aw_status aw_nccl_recv(void *buf, size_t bytes, int peer, void *comm, void *stream);
aw_status aw_nccl_group_start(void);
aw_status aw_nccl_group_end(void);

/* recv[i] = max over ranks of send[i] (n floats; recv may equal send). */
aw_status aw_nccl_allreduce_max_f32(const float *send, float *recv, size_t n, void *comm,
                                    void *stream);
/* recv[i] = sum over ranks of send[i] (n doubles; order is NCCL's: see
 * Determinism above). */
aw_status aw_nccl_allreduce_sum_f64(const double *send, double *recv, size_t n, void *comm,
                                    void *stream);
/* recv (nranks * bytes) = every rank's bytes of send, in rank order. */
aw_status aw_nccl_allgather(const void *send, void *recv, size_t bytes, void *comm, void *stream);

#ifdef __cplusplus
}
#endif

#endif
