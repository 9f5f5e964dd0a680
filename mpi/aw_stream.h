/*
 * aw_stream.h - the stage-to-stage stream: blocks of hidden states handed
 * from each stage to the next along a replica chain (aw_pipe's chain
 * communicator), double-buffered so that the next block's transfer overlaps
 * this block's compute. Two transports:
 *   - MPI from host buffers (a device block is staged through them by the
 *     caller's compute step), non-blocking, one tag per pass;
 *   - NCCL between the GPUs directly: a two-rank communicator per link of
 *     the chain, each driven from its own CUDA stream, ordered by events.
 * The caller computes; this module moves. Every MPI call is checked
 * (AW_MPI); a failure is returned, never exited on.
 */
#ifndef AW_STREAM_H
#define AW_STREAM_H

#include <stddef.h>

#include "aw_comm.h"
#include "aw_cuda_api.h"
#include "aw_status.h"

/* One pass of blocks through this rank's stage. Block k (0..n-1) is
 * count(ctx, k) floats; compute(ctx, k, host, dev, count) computes it in
 * place: host is the host buffer it arrived in (MPI; NULL with NCCL, where
 * it lives in dev only) and dev the backend's copy (or host itself);
 * done(ctx, k) (may be NULL) runs after the block was handed on. */
typedef struct {
    int n;                          /* blocks this rank streams */
    int tag;                        /* one per pass: small, under every MPI's tag bound */
    float *buf[2];                  /* host hand-off buffers (MPI) */
    float *dbuf[2];                 /* their copies in the backend's memory (NCCL: the only ones) */
    size_t (*count)(void *ctx, int k);
    aw_status (*compute)(void *ctx, int k, float *host, float *dev, size_t count);
    void (*done)(void *ctx, int k);
    void *ctx;
} aw_stream_pass;

/* The MPI hand-off: receive from the previous stage (the next block's
 * receive posted before computing this one), compute, send to the next
 * stage (non-blocking, double-buffered); waits for the last sends. */
aw_status aw_stream_mpi(const aw_pipe *p, const aw_stream_pass *pass);

/* The NCCL links of this rank's replica chain (zeroed: none). */
typedef struct {
    const aw_cuda_api *cu;
    void *link_prev, *link_next;    /* NCCL communicators to the previous / next stage */
    void *kc_recv, *kc_send;        /* CUDA contexts of the two links' streams */
} aw_nccl_links;

/* Collective over the chain: stage s makes the id of link (s, s+1) and
 * sends it over MPI; a link's two ranks join it together (stage s as its
 * rank 0), the chain in stage order. On failure what was made stays in l
 * for aw_stream_links_close. */
aw_status aw_stream_links_open(const aw_pipe *p, const aw_cuda_api *cu, aw_nccl_links *l);
/* Destroy the links (abort them after a failure: a peer may be inside a
 * transfer that will never complete) and their streams; l is zeroed. */
void aw_stream_links_close(aw_nccl_links *l, int failed);

/* The NCCL hand-off, kc the compute context (the backend's stream):
 *   recv of block k+1 into dbuf[(k+1)%2]: after compute k-1 and send k-1
 *     left that buffer (queued before compute k, so it overlaps it);
 *   compute of block k: after its recv (or, on the first stage, after send
 *     k-2 left its buffer);
 *   send of block k: after compute k (it overlaps compute k+1).
 * Slots 0/1 of each context's events mark the two buffers. */
aw_status aw_stream_nccl(const aw_pipe *p, const aw_nccl_links *l, void *kc, const aw_stream_pass *pass);

#endif
