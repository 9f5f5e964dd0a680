/*
 * mpi_test_comm.c - multi-rank test of the collective steps: a broadcast of
 * a buffer whose bytes every rank can predict (large enough to need several
 * messages' worth of data), a failure on the root that must reach every rank
 * as AW_ERR_REMOTE with the root's message instead of a hang, and the
 * agreement step with a failure on the last rank. Reports like nccl-tests:
 * failures summed over ranks, rank 0 prints, exit code tells the truth.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_comm.h"

static int failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "rank %d: %s:%d: check failed: %s (last error: %s)\n",   \
                    c.rank, __FILE__, __LINE__, #cond, aw_err_message());           \
            failures++;                                                              \
        }                                                                            \
    } while (0)

static uint8_t pattern(size_t i) { return (uint8_t)((i * 2654435761u) >> 13); }

int main(int argc, char **argv)
{
    aw_comm c;
    if (aw_comm_init(&argc, &argv, &c) != AW_OK) {
        fprintf(stderr, "init failed: %s\n", aw_err_message());
        return 1;
    }
    /* 1. bytes from the root arrive intact on every rank */
    size_t n = 3u << 20;
    void *buf = NULL;
    size_t len = 0;
    uint8_t *mine = NULL;
    if (c.rank == 0) {
        mine = malloc(n);
        for (size_t i = 0; i < n; i++) mine[i] = pattern(i);
        buf = mine;
        len = n;
    }
    aw_status st = aw_comm_bcast_bytes(&c, 0, AW_OK, &buf, &len);
    CHECK(st == AW_OK);
    CHECK(len == n);
    if (st == AW_OK && len == n) {
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) bad += ((uint8_t *)buf)[i] != pattern(i);
        CHECK(bad == 0);
    }
    if (c.rank != 0) free(buf);
    free(mine);

    /* 2. a failure on the root reaches everyone with its message */
    buf = NULL;
    len = 0;
    aw_status root_st = AW_OK;
    if (c.rank == 0) root_st = AW_FAIL(AW_ERR_ST_OFFSETS, "model/x.safetensors: tensor 'w': bad offsets");
    st = aw_comm_bcast_bytes(&c, 0, root_st, &buf, &len);
    if (c.rank == 0) {
        CHECK(st == AW_ERR_ST_OFFSETS);
    } else {
        CHECK(st == AW_ERR_REMOTE);
        CHECK(strstr(aw_err_message(), "rank 0: model/x.safetensors: tensor 'w'") != NULL);
        CHECK(buf == NULL);
    }

    /* 3. agreement: all fine, then the last rank fails */
    CHECK(aw_comm_agree(&c, AW_OK) == AW_OK);
    aw_status local = AW_OK;
    if (c.rank == c.size - 1) local = AW_FAIL(AW_ERR_IO, "shard 7: No space left on device");
    st = aw_comm_agree(&c, local);
    if (c.rank == c.size - 1) {
        CHECK(st == AW_ERR_IO);
    } else {
        CHECK(st == AW_ERR_REMOTE);
        char want[64];
        snprintf(want, sizeof want, "rank %d: shard 7", c.size - 1);
        CHECK(strstr(aw_err_message(), want) != NULL);
    }

    int total = 0;
    MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, c.world);
    if (c.rank == 0) printf("mpi_test_comm: %d ranks: %s (%d failures)\n", c.size, total ? "FAILED" : "OK", total);
    aw_comm_finalize(&c);
    return total ? 1 : 0;
}
