/*
 * aw_comm.h - the world communicator and the collective steps every phase
 * uses: init/finalize with errors returned (MPI_ERRORS_RETURN), a broadcast
 * of a byte buffer that also carries the root's status (so a failure on
 * rank 0 while reading headers reaches every rank as AW_ERR_REMOTE with the
 * root's message instead of a hang), and an agreement on whether any rank
 * failed. Every MPI call is checked and mapped to AW_ERR_MPI naming the call.
 */
#ifndef AW_COMM_H
#define AW_COMM_H

#include <mpi.h>
#include <stddef.h>

#include "aw_status.h"

typedef struct {
    MPI_Comm world; /* duplicate of MPI_COMM_WORLD, errors returned */
    int rank;
    int size;
    int initialized_here; /* 1 if aw_comm_init called MPI_Init */
} aw_comm;

/* Initialise MPI (if not already) and duplicate the world communicator. */
aw_status aw_comm_init(int *argc, char ***argv, aw_comm *c);
/* Free the communicator and finalise MPI if aw_comm_init initialised it. */
void aw_comm_finalize(aw_comm *c);

/* The process's world, initialised (MPI_Init_thread) on first use and
 * finalised at exit. NULL with the error set if MPI cannot start. */
const aw_comm *aw_comm_world(void);

/* Split world into sub-communicators: ranks with the same color, ordered by
 * key. */
aw_status aw_comm_split(const aw_comm *c, int color, int key, MPI_Comm *out);
/* Collective over c: the ranks with the same color as a communicator of
 * their own (ordered by rank), for work a part of the job does with the
 * collectives of a whole one; freed with aw_comm_finalize (which finalises
 * nothing: it did not start MPI). */
aw_status aw_comm_group(const aw_comm *c, int color, aw_comm *group);

/* Broadcast root's buffer (and status) to every rank. On root, *buf and *len are
 * the input and stay owned by the caller; on the others *buf is malloc'd
 * here (caller frees). If root_status != AW_OK on root, every other rank
 * returns AW_ERR_REMOTE with the root's message and root returns its own
 * status; no buffer is sent. */
aw_status aw_comm_bcast_bytes(const aw_comm *c, int root, aw_status root_status,
                              void **buf, size_t *len);

/* Collective: every rank passes its local status; returns AW_OK only if all
 * ranks had AW_OK. Otherwise the lowest failing rank's message is delivered
 * to all ranks (AW_ERR_REMOTE on ranks that did not fail themselves, their
 * own status on those that did). */
aw_status aw_comm_agree(const aw_comm *c, aw_status local);

/* End the whole job now (MPI_Abort with the exit code): the program's top
 * calls it once the failure is printed; the output is flushed and given
 * 0.3 s to reach the launcher first. Does not return on a real MPI. */
void aw_comm_abort(const aw_comm *c, int code);

/* Leave after a peer's failure (AW_ERR_REMOTE): without MPI's finalize,
 * which waits for every peer; after 2 s, so that the failing rank's error
 * line and abort reach the launcher before this rank's exit ends the job
 * (an early exit got its line lost). Does not return. */
void aw_comm_leave_after_peer_failure(void);

/* Collective: how many ranks share this rank's node (1 if MPI cannot say). */
int aw_comm_node_size(const aw_comm *c);
/* Collective over the ranks of this node: how many of them (this one
 * included) pass the same key (e.g. a GPU's PCI ids). */
aw_status aw_comm_node_count_same(const aw_comm *c, unsigned long long key, int *count);

/* The pipeline's sub-communicators: rank = stage * R + replica; the
 * replicas of one stage (ordered by replica) reduce their statistics, the
 * stages of one replica chain (ordered by stage) hand blocks on. */
typedef struct {
    const aw_comm *w;
    MPI_Comm stage_comm; /* my stage's replicas */
    MPI_Comm chain_comm; /* my replica's stages */
    int stage, replica;
    int stages, replicas;
} aw_pipe;

/* Collective over c: split it into p's two communicators (p is reset
 * first, so that aw_pipe_close is safe after a failure). */
aw_status aw_pipe_open(const aw_comm *c, int stage, int replica, int stages, int replicas, aw_pipe *p);
/* Free p's communicators (either may be missing). */
void aw_pipe_close(aw_pipe *p);

/* Wrap an MPI return code. */
aw_status aw_mpi_check(int rc, const char *call, const char *src_file, int src_line);
#define AW_MPI(call) aw_mpi_check((call), #call, __FILE__, __LINE__)

#endif
