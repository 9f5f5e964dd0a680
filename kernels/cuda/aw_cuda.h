/*
 * aw_cuda.h - private: the C-callable entry points of the CUDA backend
 * (compiled by nvcc only when the toolkit is present; see aw_backend.c).
 */
#ifndef AW_CUDA_H
#define AW_CUDA_H

#include <stddef.h>

#include "aw_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable CUDA devices; 0 when there is no driver or no device
 * (cudaGetDeviceCount fails without a driver: that is "no GPU", not an
 * error). *why gets the CUDA error text when the count is 0 because of one. */
int aw_cuda_device_count(const char **why);
/* Make device the current one for this thread and describe it. */
aw_status aw_cuda_use_device(int device, char *name, size_t name_cap, size_t *total_mem);

/* A key naming the physical device (PCI domain, bus, device): the same on
 * every process that sees it, whatever CUDA_VISIBLE_DEVICES numbers it. */
aw_status aw_cuda_device_key(int device, unsigned long long *key);
/* Free and total bytes of the current device (cudaMemGetInfo). */
aw_status aw_cuda_mem_info(size_t *free_b, size_t *total_b);

#ifdef __cplusplus
}
#endif

#endif
