/* aw_comm.c - see aw_comm.h. */
#include "aw_comm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

aw_status aw_comm_group(const aw_comm *c, int color, aw_comm *group)
{
    memset(group, 0, sizeof *group);
    group->world = MPI_COMM_NULL;
    AW_TRY(aw_comm_split(c, color, c->rank, &group->world));
    AW_TRY(AW_MPI(MPI_Comm_rank(group->world, &group->rank)));
    return AW_MPI(MPI_Comm_size(group->world, &group->size));
}

void aw_comm_abort(const aw_comm *c, int code)
{
    /* The launcher forwards a rank's output through a pipe and stops reading
     * it once the abort reaches it: the error line just printed is lost if
     * the abort overtakes it (seen under load). Flushed, it gets a moment. */
    fflush(stdout);
    fflush(stderr);
    struct timespec pause = {0, 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    MPI_Abort(c->world, code);
}

void aw_comm_leave_after_peer_failure(void)
{
    fflush(stdout);
    fflush(stderr);
    struct timespec pause = {2, 0};
    nanosleep(&pause, NULL);
    _exit(1);
}

int aw_comm_node_size(const aw_comm *c)
{
    MPI_Comm node;
    int local = 1;
    if (MPI_Comm_split_type(c->world, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &local);
        MPI_Comm_free(&node);
    }
    return local > 0 ? local : 1;
}

aw_status aw_comm_node_count_same(const aw_comm *c, unsigned long long key, int *count)
{
    MPI_Comm node;
    int n = 1;
    *count = 0;
    AW_TRY(AW_MPI(MPI_Comm_split_type(c->world, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node)));
    aw_status st = AW_MPI(MPI_Comm_size(node, &n));
    unsigned long long *keys = st == AW_OK ? malloc((size_t)n * sizeof *keys) : NULL;
    if (st == AW_OK && !keys) st = AW_FAIL(AW_ERR_NOMEM, "out of memory");
    if (st == AW_OK)
        st = AW_MPI(MPI_Allgather(&key, 1, MPI_UNSIGNED_LONG_LONG, keys, 1, MPI_UNSIGNED_LONG_LONG, node));
    for (int i = 0; st == AW_OK && i < n; i++) *count += keys[i] == key;
    free(keys);
    MPI_Comm_free(&node);
    return st;
}

aw_status aw_pipe_open(const aw_comm *c, int stage, int replica, int stages, int replicas, aw_pipe *p)
{
    memset(p, 0, sizeof *p);
    p->w = c;
    p->stage_comm = p->chain_comm = MPI_COMM_NULL;
    p->stage = stage;
    p->replica = replica;
    p->stages = stages;
    p->replicas = replicas;
    AW_TRY(aw_comm_split(c, stage, replica, &p->stage_comm));
    return aw_comm_split(c, replica, stage, &p->chain_comm);
}

void aw_pipe_close(aw_pipe *p)
{
    if (!p->w) return; /* never opened */
    if (p->stage_comm != MPI_COMM_NULL) MPI_Comm_free(&p->stage_comm);
    if (p->chain_comm != MPI_COMM_NULL) MPI_Comm_free(&p->chain_comm);
}
