/* aw_backend.c - backend choice at run time (see aw_backend.h). */
#include "aw_backend.h"
#include "aw_kernels.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aw_cuda_api.h"

/* ---- the CUDA plugin --------------------------------------------------------- */

static pthread_once_t g_cuda_once = PTHREAD_ONCE_INIT;
static const aw_cuda_api *g_cuda;
static char g_cuda_why[PATH_MAX + 256];

static void cuda_load(void)
{
#ifndef AWEQ_HAVE_CUDA
    snprintf(g_cuda_why, sizeof g_cuda_why, "this binary was built without the CUDA backend (nvcc not found at build time)");
#else
    char path[PATH_MAX];
    const char *env = getenv("AWEQ_CUDA_PLUGIN");
    if (env && *env) {
        snprintf(path, sizeof path, "%s", env);
    } else {
        ssize_t n = readlink("/proc/self/exe", path, sizeof path - 32);
        if (n <= 0) {
            snprintf(g_cuda_why, sizeof g_cuda_why, "cannot find the executable's folder to load libaweq_cuda.so");
            return;
        }
        path[n] = '\0';
        char *slash = strrchr(path, '/');
        snprintf(slash ? slash + 1 : path, sizeof path - (size_t)(slash ? slash + 1 - path : 0), "libaweq_cuda.so");
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(g_cuda_why, sizeof g_cuda_why, "cannot load the CUDA backend: %s", dlerror());
        return;
    }
    const aw_cuda_api *(*get)(void) = NULL;
    *(void **)&get = dlsym(h, "aw_cuda_plugin_api");
    const aw_cuda_api *api = get ? get() : NULL;
    if (!api || api->abi != AW_CUDA_API_ABI) {
        snprintf(g_cuda_why, sizeof g_cuda_why, "%s: not a CUDA backend of this version (ABI %d, expected %d)", path,
                 api ? api->abi : -1, AW_CUDA_API_ABI);
        dlclose(h);
        return;
    }
    g_cuda = api; /* kept loaded for the process's life */
#endif
}

const aw_cuda_api *aw_cuda_api_get(const char **why)
{
    pthread_once(&g_cuda_once, cuda_load);
    if (why) *why = g_cuda ? "" : g_cuda_why;
    return g_cuda;
}

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
    /* which INT8 product the W8A8 forward gets (aw_k_gemm_i8_path() has
     * the whole story; its self-test runs here, once) */
    snprintf(out->device_name, sizeof out->device_name, "host CPU (OpenBLAS; INT8 %s)",
             aw_k_gemm_i8_uses_onednn() ? "oneDNN s8s8s32, self-test passed" : "int16 loop, oneDNN not exact here");
}

aw_status aw_backend_select(int want, int local_rank, aw_backend_info *out)
{
    memset(out, 0, sizeof *out);
    cpu_info(out);
#ifdef AWEQ_HAVE_CUDA
    out->compiled_cuda = 1;
#endif
    if (want == AW_BACKEND_CPU) return AW_OK;
    /* auto on a machine without the NVIDIA driver: CPU, without loading the
     * CUDA libraries at all */
    if (want < 0 && access("/dev/nvidiactl", F_OK) != 0) return AW_OK;
    const char *why = "";
    const aw_cuda_api *api = aw_cuda_api_get(&why);
    int n = api ? api->device_count(&why) : 0;
    out->device_count = n;
    if (n == 0) {
        AW_RETURN_IF(want == AW_BACKEND_CUDA, AW_ERR_NO_DEVICE, "--backend cuda: no usable CUDA device (%s)", why);
        if (!api) fprintf(stderr, "aweq-dist: warning: an NVIDIA driver is present but %s; using the CPU\n", why);
        return AW_OK;
    }
    int dev = local_rank % n;
    AW_TRY(api->use_device(dev, out->device_name, sizeof out->device_name, &out->device_mem));
    AW_TRY(api->device_key(dev, &out->device_key));
    out->device_key |= 1ull << 63; /* never 0 */
    out->kind = AW_BACKEND_CUDA;
    out->device = dev;
    return AW_OK;
}

aw_status aw_backend_mem_info(const aw_backend_info *b, size_t *free_b, size_t *total_b)
{
    *free_b = *total_b = 0;
    const aw_cuda_api *api = b->kind == AW_BACKEND_CUDA ? aw_cuda_api_get(NULL) : NULL;
    AW_RETURN_IF(!api, AW_ERR_NO_DEVICE, "no device memory on the CPU backend");
    return api->mem_info(free_b, total_b);
}
