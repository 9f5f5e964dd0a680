/* aw_stream.c - see aw_stream.h. */
#include "aw_stream.h"

#include <stdint.h>
#include <string.h>

aw_status aw_stream_mpi(const aw_pipe *p, const aw_stream_pass *pass)
{
    int first = p->stage == 0, last = p->stage == p->stages - 1, nm = pass->n, tag = pass->tag;
    MPI_Request rreq[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
    MPI_Request sreq[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
    aw_status st = AW_OK;
#define COUNT(kk) ((int)pass->count(pass->ctx, (kk)))
    if (!first && nm > 0)
        AW_CHECK(AW_MPI(MPI_Irecv(pass->buf[0], COUNT(0), MPI_FLOAT, p->stage - 1, tag, p->chain_comm, &rreq[0])));
    for (int k = 0; k < nm; k++) {
        int cur = k % 2, nxt = (k + 1) % 2;
        if (first) {
            AW_CHECK(AW_MPI(MPI_Wait(&sreq[cur], MPI_STATUS_IGNORE))); /* block k-2 left this buffer */
        } else {
            AW_CHECK(AW_MPI(MPI_Wait(&rreq[cur], MPI_STATUS_IGNORE)));
            if (k + 1 < nm) {
                AW_CHECK(AW_MPI(MPI_Wait(&sreq[nxt], MPI_STATUS_IGNORE)));
                AW_CHECK(AW_MPI(MPI_Irecv(pass->buf[nxt], COUNT(k + 1), MPI_FLOAT, p->stage - 1, tag,
                                          p->chain_comm, &rreq[nxt])));
            }
        }
        AW_CHECK(pass->compute(pass->ctx, k, pass->buf[cur], pass->dbuf[cur], (size_t)COUNT(k)));
        if (!last)
            AW_CHECK(AW_MPI(MPI_Isend(pass->buf[cur], COUNT(k), MPI_FLOAT, p->stage + 1, tag, p->chain_comm,
                                      &sreq[cur])));
        if (pass->done) pass->done(pass->ctx, k);
    }
    AW_CHECK(AW_MPI(MPI_Waitall(2, sreq, MPI_STATUSES_IGNORE)));
#undef COUNT
fail:
    return st;
}

aw_status aw_stream_links_open(const aw_pipe *p, const aw_cuda_api *cu, aw_nccl_links *l)
{
    int first = p->stage == 0, last = p->stage == p->stages - 1;
    uint8_t id_next[AW_CUDA_NCCL_ID_BYTES], id_prev[AW_CUDA_NCCL_ID_BYTES];
    memset(l, 0, sizeof *l);
    l->cu = cu;
    AW_TRY(cu->stream_create(&l->kc_recv));
    AW_TRY(cu->stream_create(&l->kc_send));
    if (!last) {
        AW_TRY(cu->nccl_get_id(id_next, sizeof id_next));
        AW_TRY(AW_MPI(MPI_Send(id_next, AW_CUDA_NCCL_ID_BYTES, MPI_BYTE, p->stage + 1, 0, p->chain_comm)));
    }
    if (!first) {
        AW_TRY(AW_MPI(MPI_Recv(id_prev, AW_CUDA_NCCL_ID_BYTES, MPI_BYTE, p->stage - 1, 0, p->chain_comm,
                               MPI_STATUS_IGNORE)));
        AW_TRY(cu->nccl_init(2, 1, id_prev, &l->link_prev));
    }
    if (!last) AW_TRY(cu->nccl_init(2, 0, id_next, &l->link_next));
    return AW_OK;
}

void aw_stream_links_close(aw_nccl_links *l, int failed)
{
    const aw_cuda_api *cu = l->cu;
    if (cu) {
        void (*end)(void *) = failed ? cu->nccl_abort : cu->nccl_destroy;
        if (l->link_prev) end(l->link_prev);
        if (l->link_next) end(l->link_next);
        if (l->kc_recv) cu->stream_destroy(l->kc_recv);
        if (l->kc_send) cu->stream_destroy(l->kc_send);
    }
    memset(l, 0, sizeof *l);
}

aw_status aw_stream_nccl(const aw_pipe *p, const aw_nccl_links *l, void *kc, const aw_stream_pass *pass)
{
    int first = p->stage == 0, last = p->stage == p->stages - 1, nm = pass->n;
    const aw_cuda_api *cu = l->cu;
    void *kr = l->kc_recv, *ks = l->kc_send;
#define BYTES(kk) (pass->count(pass->ctx, (kk)) * sizeof(float))
    if (!first && nm > 0) {
        AW_TRY(cu->nccl_recv(pass->dbuf[0], BYTES(0), 0, l->link_prev, cu->stream_of(kr)));
        AW_TRY(cu->record(kr, 0));
    }
    for (int k = 0; k < nm; k++) {
        int cur = k % 2, nxt = (k + 1) % 2;
        if (first) {
            if (k >= 2 && !last) AW_TRY(cu->wait(kc, ks, cur)); /* send k-2 left dbuf[cur] */
        } else {
            AW_TRY(cu->wait(kc, kr, cur)); /* block k has arrived */
            if (k + 1 < nm) {
                AW_TRY(cu->wait(kr, kc, nxt)); /* compute k-1 is done with dbuf[nxt] */
                if (!last) AW_TRY(cu->wait(kr, ks, nxt)); /* and send k-1 */
                AW_TRY(cu->nccl_recv(pass->dbuf[nxt], BYTES(k + 1), 0, l->link_prev, cu->stream_of(kr)));
                AW_TRY(cu->record(kr, nxt));
            }
        }
        AW_TRY(pass->compute(pass->ctx, k, NULL, pass->dbuf[cur], pass->count(pass->ctx, k)));
        AW_TRY(cu->record(kc, cur));
        if (!last) {
            AW_TRY(cu->wait(ks, kc, cur));
            AW_TRY(cu->nccl_send(pass->dbuf[cur], BYTES(k), 1, l->link_next, cu->stream_of(ks)));
            AW_TRY(cu->record(ks, cur));
        }
        if (pass->done) pass->done(pass->ctx, k);
    }
#undef BYTES
    AW_TRY(cu->sync(ks));
    return cu->sync(kr);
}
