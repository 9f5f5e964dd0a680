/* aw_backend.c - backend choice at run time (see aw_backend.h). */
#include "aw_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef AWEQ_HAVE_CUDA
#include "cuda/aw_cuda.h"
#endif

const char *aw_backend_name(aw_backend_kind k)
{
    static const char *const names[AW_BACKEND_COUNT] = {[AW_BACKEND_CPU] = "cpu",
                                                        [AW_BACKEND_CUDA] = "cuda"};
    return (unsigned)k < AW_BACKEND_COUNT ? names[k] : "?";
}

aw_status aw_backend_parse(const char *s, int *want)
{
    if (strcmp(s, "auto") == 0) *want = -1;
    else if (strcmp(s, "cpu") == 0) *want = AW_BACKEND_CPU;
    else if (strcmp(s, "cuda") == 0) *want = AW_BACKEND_CUDA;
    else return AW_FAIL(AW_ERR_ARG, "--backend '%s': expected auto, cpu or cuda", s);
    return AW_OK;
}

int aw_local_rank_from_env(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID",
                                       "MPI_LOCALRANKID", "MV2_COMM_WORLD_LOCAL_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) {
            char *end;
            long r = strtol(v, &end, 10);
            if (*end == '\0' && r >= 0 && r < 1 << 20) return (int)r;
        }
    }
    return 0;
}

static void cpu_info(aw_backend_info *out)
{
    out->kind = AW_BACKEND_CPU;
    out->device = -1;
    out->device_mem = 0;
    snprintf(out->device_name, sizeof out->device_name, "host CPU (OpenBLAS)");
}

aw_status aw_backend_select(int want, int local_rank, aw_backend_info *out)
{
    memset(out, 0, sizeof *out);
    cpu_info(out);
#ifdef AWEQ_HAVE_CUDA
    out->compiled_cuda = 1;
    if (want == AW_BACKEND_CPU) return AW_OK;
    const char *why = "";
    int n = aw_cuda_device_count(&why);
    out->device_count = n;
    if (n == 0) {
        AW_RETURN_IF(want == AW_BACKEND_CUDA, AW_ERR_NO_DEVICE,
                     "--backend cuda: no usable CUDA device (%s)", why);
        return AW_OK;
    }
    int dev = local_rank % n;
    AW_TRY(aw_cuda_use_device(dev, out->device_name, sizeof out->device_name, &out->device_mem));
    out->kind = AW_BACKEND_CUDA;
    out->device = dev;
    return AW_OK;
#else
    (void)local_rank;
    AW_RETURN_IF(want == AW_BACKEND_CUDA, AW_ERR_NO_DEVICE,
                 "--backend cuda: this binary was built without the CUDA backend (nvcc not found at build time)");
    return AW_OK;
#endif
}
