// aw_cuda_probe.cu - device discovery and selection for the CUDA backend.
#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>

#include "aw_cuda.h"

extern "C" int aw_cuda_device_count(const char **why)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        if (why) *why = cudaGetErrorString(e);
        (void)cudaGetLastError(); // clear the sticky error of a failed probe
        return 0;
    }
    if (why) *why = n == 0 ? "no CUDA device" : "";
    return n;
}

extern "C" aw_status aw_cuda_use_device(int device, char *name, size_t name_cap, size_t *total_mem)
{
    cudaError_t e = cudaSetDevice(device);
    if (e != cudaSuccess)
        return AW_FAIL(AW_ERR_CUDA, "cudaSetDevice(%d): %s", device, cudaGetErrorString(e));
    cudaDeviceProp prop;
    e = cudaGetDeviceProperties(&prop, device);
    if (e != cudaSuccess)
        return AW_FAIL(AW_ERR_CUDA, "cudaGetDeviceProperties(%d): %s", device, cudaGetErrorString(e));
    snprintf(name, name_cap, "%s (sm_%d%d)", prop.name, prop.major, prop.minor);
    *total_mem = prop.totalGlobalMem;
    return AW_OK;
}

extern "C" aw_status aw_cuda_device_key(int device, unsigned long long *key)
{
    int dom = 0, bus = 0, dev = 0;
    cudaError_t e = cudaDeviceGetAttribute(&dom, cudaDevAttrPciDomainId, device);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&bus, cudaDevAttrPciBusId, device);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&dev, cudaDevAttrPciDeviceId, device);
    if (e != cudaSuccess)
        return AW_FAIL(AW_ERR_CUDA, "cudaDeviceGetAttribute(PCI id of device %d): %s", device, cudaGetErrorString(e));
    *key = ((unsigned long long)(unsigned)dom << 32) | ((unsigned long long)(unsigned)bus << 16) | (unsigned)dev;
    return AW_OK;
}

extern "C" aw_status aw_cuda_mem_info(size_t *free_b, size_t *total_b)
{
    cudaError_t e = cudaMemGetInfo(free_b, total_b);
    if (e != cudaSuccess)
        return AW_FAIL(AW_ERR_CUDA, "cudaMemGetInfo: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
    return AW_OK;
}
