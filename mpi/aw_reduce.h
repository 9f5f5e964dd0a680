/*
 * aw_reduce.h - the run's collectives on plain buffers: the statistic and
 * error sums of the replicas of a stage added in block order (so the result
 * is the same bytes whatever the number of replicas), exact reductions
 * (max, integer sums), broadcasts and the gathers of metrics, layout and
 * ranges on rank 0. Every MPI call is checked (AW_MPI).
 */
#ifndef AW_REDUCE_H
#define AW_REDUCE_H

#include <stddef.h>

#include "aw_comm.h"
#include "aw_status.h"

/* ---- among the replicas of a stage (p->stage_comm) ------------------------ */

/* Allgather the replicas' per-block parts (replica j holds blocks
 * b % R == j, in order, n doubles each, at most ceil(nb / R) of them) and
 * hand each block's part to add() in block order 0..nb-1. */
aw_status aw_reduce_parts(const aw_pipe *p, const double *mine, size_t n, int nb,
                          void (*add)(void *ctx, const double *part), void *ctx);
/* In place: the elementwise max of x over the stage's replicas (exact in any order). */
aw_status aw_reduce_max_f32(const aw_pipe *p, float *x, size_t n);
/* In place: the sum of x over the stage's replicas (integers: exact). */
aw_status aw_reduce_sum_u64(const aw_pipe *p, unsigned long long *x, size_t n);
/* In place: the sum of x over the stage's replicas, for buffers where each
 * element is nonzero on at most one replica (+0.0f elsewhere): exact, the
 * bytes of that replica (a token sample's rows). */
aw_status aw_reduce_sum_f32(const aw_pipe *p, float *x, size_t n);
/* x from the stage's replica `root` to the others. */
aw_status aw_reduce_bcast_int(const aw_pipe *p, int *x, size_t n, int root);

/* ---- over the world --------------------------------------------------------- */

/* In place, over every rank: sums of ints / doubles, min of ints. Doubles
 * are exact only where all but one rank contribute zeros. */
aw_status aw_reduce_world_sum_int(const aw_comm *c, int *x, size_t n);
aw_status aw_reduce_world_min_int(const aw_comm *c, int *x, size_t n);
aw_status aw_reduce_world_sum_f64(const aw_comm *c, double *x, size_t n);
/* x from rank root to every rank. */
aw_status aw_bcast_f64(const aw_comm *c, double *x, size_t n, int root);

/* Gather `len` bytes (or doubles) from every rank into out on root (rank
 * k's at k * len); out matters only on root. */
aw_status aw_gather_bytes(const aw_comm *c, const void *mine, size_t len, void *out, int root);
aw_status aw_gather_f64(const aw_comm *c, const double *mine, size_t n, double *out, int root);
/* Gather rank k's counts[k] bytes (floats) into out + displs[k] on root. */
aw_status aw_gatherv_bytes(const aw_comm *c, const void *mine, const int *counts, const int *displs, void *out,
                           int root);
aw_status aw_gatherv_f32(const aw_comm *c, const float *mine, const int *counts, const int *displs, float *out,
                         int root);
/* Point to point: n floats to / from rank peer with tag. */
aw_status aw_send_f32(const aw_comm *c, const float *x, size_t n, int peer, int tag);
aw_status aw_recv_f32(const aw_comm *c, float *x, size_t n, int peer, int tag);

#endif
