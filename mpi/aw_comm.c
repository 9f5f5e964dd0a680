/* aw_comm.c - see aw_comm.h. */
#include "aw_comm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fixed size of a relayed error message: fits aw_err_message()'s buffer. */
#define AW_COMM_MSG 1024

aw_status aw_mpi_check(int rc, const char *call, const char *src_file, int src_line)
{
    if (rc == MPI_SUCCESS) return AW_OK;
    char text[MPI_MAX_ERROR_STRING];
    int n = 0;
    if (MPI_Error_string(rc, text, &n) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", rc);
    /* keep just the function name of the call text */
    char fn[64];
    size_t k = strcspn(call, "(");
    if (k >= sizeof fn) k = sizeof fn - 1;
    memcpy(fn, call, k);
    fn[k] = '\0';
    return aw_err_set(AW_ERR_MPI, src_file, src_line, "%s failed: %s", fn, text);
}

aw_status aw_comm_init(int *argc, char ***argv, aw_comm *c)
{
    memset(c, 0, sizeof *c);
    c->world = MPI_COMM_NULL;
    int inited = 0;
    AW_TRY(AW_MPI(MPI_Initialized(&inited)));
    if (!inited) {
        int provided = 0;
        AW_TRY(AW_MPI(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided)));
        c->initialized_here = 1;
    }
    AW_TRY(AW_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN)));
    AW_TRY(AW_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &c->world)));
    AW_TRY(AW_MPI(MPI_Comm_rank(c->world, &c->rank)));
    AW_TRY(AW_MPI(MPI_Comm_size(c->world, &c->size)));
    return AW_OK;
}

void aw_comm_finalize(aw_comm *c)
{
    if (c->world != MPI_COMM_NULL) MPI_Comm_free(&c->world);
    if (c->initialized_here) {
        int fin = 0;
        MPI_Finalized(&fin);
        if (!fin) MPI_Finalize();
    }
    c->initialized_here = 0;
}

/* The wire form of a status: code plus message, fixed size. */
typedef struct {
    int32_t status;
    int32_t rank;
    char msg[AW_COMM_MSG];
} aw_wire_status;

static void wire_fill(aw_wire_status *w, aw_status st, int rank)
{
    memset(w, 0, sizeof *w);
    w->status = st;
    w->rank = rank;
    if (st != AW_OK) snprintf(w->msg, sizeof w->msg, "%s", aw_err_message());
}

aw_status aw_comm_bcast_bytes(const aw_comm *c, int root, aw_status root_status,
                              void **buf, size_t *len)
{
    aw_wire_status w;
    if (c->rank == root) wire_fill(&w, root_status, root);
    AW_TRY(AW_MPI(MPI_Bcast(&w, (int)sizeof w, MPI_BYTE, root, c->world)));
    if (w.status != AW_OK) {
        if (c->rank == root) return root_status;
        return AW_FAIL(AW_ERR_REMOTE, "rank %d: %s", root, w.msg);
    }
    uint64_t n = c->rank == root ? (uint64_t)*len : 0;
    AW_TRY(AW_MPI(MPI_Bcast(&n, 1, MPI_UINT64_T, root, c->world)));
    uint8_t *p = c->rank == root ? *buf : malloc(n ? n : 1);
    /* MPI counts are int: send in chunks of at most 1 GiB. A rank that could
     * not allocate still takes part (into a drain buffer) so that no rank is
     * left waiting in the broadcast, then reports. */
    const uint64_t chunk = 1ull << 30;
    uint8_t *drain = NULL;
    if (!p) drain = malloc(n < chunk ? (n ? n : 1) : chunk);
    aw_status st = AW_OK;
    for (uint64_t off = 0; off < n && st == AW_OK; off += chunk) {
        uint64_t m = n - off < chunk ? n - off : chunk;
        uint8_t *dst = p ? p + off : drain;
        if (!dst) {
            st = AW_FAIL(AW_ERR_NOMEM, "broadcast of %llu bytes: out of memory",
                         (unsigned long long)n);
            break;
        }
        st = AW_MPI(MPI_Bcast(dst, (int)m, MPI_BYTE, root, c->world));
    }
    free(drain);
    if (c->rank == root) return st;
    if (st == AW_OK && !p)
        st = AW_FAIL(AW_ERR_NOMEM, "broadcast of %llu bytes: out of memory", (unsigned long long)n);
    if (st != AW_OK) {
        free(p);
        return st;
    }
    *buf = p;
    *len = (size_t)n;
    return AW_OK;
}

aw_status aw_comm_agree(const aw_comm *c, aw_status local)
{
    /* lowest failing rank, or size if none */
    int mine = local != AW_OK ? c->rank : c->size;
    int first = c->size;
    AW_TRY(AW_MPI(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, c->world)));
    if (first == c->size) return AW_OK;
    aw_wire_status w;
    if (c->rank == first) wire_fill(&w, local, first);
    AW_TRY(AW_MPI(MPI_Bcast(&w, (int)sizeof w, MPI_BYTE, first, c->world)));
    if (local != AW_OK) return local;
    return AW_FAIL(AW_ERR_REMOTE, "rank %d: %s", first, w.msg);
}

static aw_comm aw_world_comm;
static int aw_world_ready;

static void aw_world_fini(void)
{
    if (aw_world_ready) aw_comm_finalize(&aw_world_comm);
    aw_world_ready = 0;
}

const aw_comm *aw_comm_world(void)
{
    if (!aw_world_ready) {
        if (aw_comm_init(NULL, NULL, &aw_world_comm) != AW_OK) return NULL;
        aw_world_ready = 1;
        atexit(aw_world_fini);
    }
    return &aw_world_comm;
}

aw_status aw_comm_split(const aw_comm *c, int color, int key, MPI_Comm *out)
{
    AW_TRY(AW_MPI(MPI_Comm_split(c->world, color, key, out)));
    return AW_MPI(MPI_Comm_set_errhandler(*out, MPI_ERRORS_RETURN));
}
