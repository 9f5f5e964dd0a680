/* aw_reduce.c - see aw_reduce.h. */
#include "aw_reduce.h"

#include <stdint.h>
#include <stdlib.h>

aw_status aw_reduce_parts(const aw_pipe *p, const double *mine, size_t n, int nb,
                          void (*add)(void *ctx, const double *part), void *ctx)
{
    int R = p->replicas, max_mine = (nb + R - 1) / R;
    size_t per = (size_t)max_mine * n;
    if (per == 0) return AW_OK;
    AW_RETURN_IF(per > (size_t)INT32_MAX, AW_ERR_MPI, "statistics message too large");
    double *all = malloc(per * (size_t)R * sizeof(double));
    AW_RETURN_IF(!all, AW_ERR_NOMEM, "out of memory reducing statistics");
    aw_status st = AW_MPI(MPI_Allgather(mine, (int)per, MPI_DOUBLE, all, (int)per, MPI_DOUBLE, p->stage_comm));
    for (int b = 0; b < nb && st == AW_OK; b++) add(ctx, all + (size_t)(b % R) * per + (size_t)(b / R) * n);
    free(all);
    return st;
}

aw_status aw_reduce_max_f32(const aw_pipe *p, float *x, size_t n)
{
    return AW_MPI(MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_MAX, p->stage_comm));
}

aw_status aw_reduce_sum_u64(const aw_pipe *p, unsigned long long *x, size_t n)
{
    return AW_MPI(MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_UNSIGNED_LONG_LONG, MPI_SUM, p->stage_comm));
}

aw_status aw_reduce_sum_f32(const aw_pipe *p, float *x, size_t n)
{
    /* in slices: MPI counts are ints */
    for (size_t at = 0; at < n;) {
        size_t k = n - at < (size_t)1 << 30 ? n - at : (size_t)1 << 30;
        AW_TRY(AW_MPI(MPI_Allreduce(MPI_IN_PLACE, x + at, (int)k, MPI_FLOAT, MPI_SUM, p->stage_comm)));
        at += k;
    }
    return AW_OK;
}

aw_status aw_reduce_bcast_int(const aw_pipe *p, int *x, size_t n, int root)
{
    return AW_MPI(MPI_Bcast(x, (int)n, MPI_INT, root, p->stage_comm));
}

aw_status aw_reduce_world_sum_int(const aw_comm *c, int *x, size_t n)
{
    return AW_MPI(MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_INT, MPI_SUM, c->world));
}

aw_status aw_reduce_world_min_int(const aw_comm *c, int *x, size_t n)
{
    return AW_MPI(MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_INT, MPI_MIN, c->world));
}

aw_status aw_reduce_world_sum_f64(const aw_comm *c, double *x, size_t n)
{
    return AW_MPI(MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_DOUBLE, MPI_SUM, c->world));
}

aw_status aw_bcast_f64(const aw_comm *c, double *x, size_t n, int root)
{
    return AW_MPI(MPI_Bcast(x, (int)n, MPI_DOUBLE, root, c->world));
}

aw_status aw_gather_bytes(const aw_comm *c, const void *mine, size_t len, void *out, int root)
{
    return AW_MPI(MPI_Gather(mine, (int)len, MPI_CHAR, out, (int)len, MPI_CHAR, root, c->world));
}

aw_status aw_gather_f64(const aw_comm *c, const double *mine, size_t n, double *out, int root)
{
    return AW_MPI(MPI_Gather(mine, (int)n, MPI_DOUBLE, out, (int)n, MPI_DOUBLE, root, c->world));
}

aw_status aw_gatherv_bytes(const aw_comm *c, const void *mine, const int *counts, const int *displs, void *out,
                           int root)
{
    return AW_MPI(MPI_Gatherv(mine, counts[c->rank], MPI_BYTE, out, counts, displs, MPI_BYTE, root, c->world));
}

aw_status aw_gatherv_f32(const aw_comm *c, const float *mine, const int *counts, const int *displs, float *out,
                         int root)
{
    return AW_MPI(MPI_Gatherv(mine, counts[c->rank], MPI_FLOAT, out, counts, displs, MPI_FLOAT, root, c->world));
}

aw_status aw_send_f32(const aw_comm *c, const float *x, size_t n, int peer, int tag)
{
    return AW_MPI(MPI_Send(x, (int)n, MPI_FLOAT, peer, tag, c->world));
}

aw_status aw_recv_f32(const aw_comm *c, float *x, size_t n, int peer, int tag)
{
    return AW_MPI(MPI_Recv(x, (int)n, MPI_FLOAT, peer, tag, c->world, MPI_STATUS_IGNORE));
}
