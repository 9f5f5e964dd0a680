/*
 * aw_inspect.h - checking a model folder against its config (every tensor
 * the family's blocks need, with the shape config.json implies and a float dtype)
 * and the `inspect` command's listing.
 */
#ifndef AW_INSPECT_H
#define AW_INSPECT_H

#include <stdint.h>
#include <stdio.h>

#include "aw_config.h"
#include "aw_model_files.h"
#include "aw_status.h"

/* AW_OK if mf holds every tensor of a model of shape c (its family's) with the right
 * shape and a float dtype (F16, BF16, F32). AW_ERR_MISSING_TENSOR,
 * AW_ERR_ST_SHAPE or AW_ERR_DTYPE naming the file and the tensor otherwise. */
aw_status aw_checkpoint_check(const aw_model_config *c, const aw_model_files *mf);

/* Read every float tensor and fail with AW_ERR_NONFINITE (file, tensor,
 * element) at the first NaN or Inf. */
aw_status aw_checkpoint_scan_values(const aw_model_files *mf);

/* The inspect command: list dir's tensors and model shape on out, then check
 * the checkpoint (and its values if scan_values). */
aw_status aw_inspect(const char *dir, FILE *out, int scan_values);

#endif
