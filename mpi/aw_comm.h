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

/* Wrap an MPI return code. */
aw_status aw_mpi_check(int rc, const char *call, const char *src_file, int src_line);
#define AW_MPI(call) aw_mpi_check((call), #call, __FILE__, __LINE__)

#endif
