/*
 * aw_backend.h - which compute backend a rank uses. The CPU backend (plain C
 * plus OpenBLAS) is always there and is the reference; the CUDA backend is
 * compiled when nvcc was found at build time (AWEQ_HAVE_CUDA) and used only
 * when a device is present at run time. One GPU per rank, chosen by the
 * rank's local index on its node.
 */
#ifndef AW_BACKEND_H
#define AW_BACKEND_H

#include <stddef.h>

#include "aw_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { AW_BACKEND_CPU = 0, AW_BACKEND_CUDA, AW_BACKEND_COUNT } aw_backend_kind;

typedef struct {
    aw_backend_kind kind;
    int device;             /* CUDA device ordinal, -1 on CPU */
    int device_count;       /* CUDA devices visible (0 when none or no driver) */
    char device_name[128];  /* "NVIDIA H100 80GB HBM3", or the CPU's description */
    size_t device_mem;      /* bytes of device memory, 0 on CPU */
    int compiled_cuda;      /* 1 if this binary has the CUDA backend */
    unsigned long long device_key; /* the physical GPU (PCI ids), the same in every process; 0 on CPU */
} aw_backend_info;

/* Parse "auto" | "cpu" | "cuda" into *want (-1 for auto). AW_ERR_ARG otherwise. */
aw_status aw_backend_parse(const char *s, int *want);
/* Choose the backend for this rank. want: -1 auto (CUDA when a device is
 * present), AW_BACKEND_CPU or AW_BACKEND_CUDA (AW_ERR_NO_DEVICE with the
 * reason if CUDA is asked for and not usable). local_rank picks the GPU
 * (local_rank % device_count). */
aw_status aw_backend_select(int want, int local_rank, aw_backend_info *out);
/* Free and total bytes of this rank's device now (cudaMemGetInfo);
 * AW_ERR_NO_DEVICE on the CPU backend. */
aw_status aw_backend_mem_info(const aw_backend_info *b, size_t *free_b, size_t *total_b);
/* "cpu" or "cuda". */
const char *aw_backend_name(aw_backend_kind k);
/* This process's index among the ranks of its node, from the launcher's
 * environment (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID, MPI_LOCALRANKID),
 * 0 when none is set. */
int aw_local_rank_from_env(void);

#ifdef __cplusplus
}
#endif

#endif
