/* aw_dtype.c - the dtype traits table and bulk conversions. */
#include "aw_dtype.h"

#include <string.h>

/* write_rank follows the reference safetensors writer, which lays tensors out
 * by dtype (its enum order, descending) and then by name, so that every
 * tensor starts at a multiple of its element size. */
const aw_dtype_traits aw_dtype_table[AW_DT_COUNT] = {
    [AW_DT_F64] = {.name = "F64", .size = 8, .write_rank = 16, .is_float = 1},
    [AW_DT_F32] = {.name = "F32", .size = 4, .write_rank = 15, .is_float = 1},
    [AW_DT_F16] = {.name = "F16", .size = 2, .write_rank = 11, .is_float = 1},
    [AW_DT_BF16] = {.name = "BF16", .size = 2, .write_rank = 12, .is_float = 1},
    [AW_DT_I64] = {.name = "I64", .size = 8, .write_rank = 17, .is_float = 0},
    [AW_DT_U64] = {.name = "U64", .size = 8, .write_rank = 18, .is_float = 0},
    [AW_DT_I32] = {.name = "I32", .size = 4, .write_rank = 13, .is_float = 0},
    [AW_DT_U32] = {.name = "U32", .size = 4, .write_rank = 14, .is_float = 0},
    [AW_DT_I16] = {.name = "I16", .size = 2, .write_rank = 9, .is_float = 0},
    [AW_DT_U16] = {.name = "U16", .size = 2, .write_rank = 10, .is_float = 0},
    [AW_DT_I8] = {.name = "I8", .size = 1, .write_rank = 5, .is_float = 0},
    [AW_DT_U8] = {.name = "U8", .size = 1, .write_rank = 4, .is_float = 0},
    [AW_DT_BOOL] = {.name = "BOOL", .size = 1, .write_rank = 0, .is_float = 0},
};
_Static_assert(sizeof aw_dtype_table / sizeof aw_dtype_table[0] == AW_DT_COUNT,
               "every dtype needs traits");

aw_status aw_dtype_from_name(const char *name, aw_dtype *out)
{
    for (int i = 0; i < AW_DT_COUNT; i++) {
        if (strcmp(name, aw_dtype_table[i].name) == 0) {
            *out = (aw_dtype)i;
            return AW_OK;
        }
    }
    return AW_ERR_ST_DTYPE;
}

aw_status aw_convert_to_f32(aw_dtype src_dt, const void *src, float *dst, size_t n)
{
    switch (src_dt) {
    case AW_DT_F32:
        memcpy(dst, src, n * sizeof(float));
        return AW_OK;
    case AW_DT_F16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = aw_f16_to_f32(s[i]);
        return AW_OK;
    }
    case AW_DT_BF16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = aw_bf16_to_f32(s[i]);
        return AW_OK;
    }
    case AW_DT_F64: {
        const double *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = (float)s[i];
        return AW_OK;
    }
    default:
        return AW_FAIL(AW_ERR_DTYPE, "cannot convert %s to F32", aw_dtype_name(src_dt));
    }
}

aw_status aw_convert_from_f32(aw_dtype dst_dt, const float *src, void *dst, size_t n)
{
    switch (dst_dt) {
    case AW_DT_F32:
        memcpy(dst, src, n * sizeof(float));
        return AW_OK;
    case AW_DT_F16: {
        uint16_t *d = dst;
        for (size_t i = 0; i < n; i++) d[i] = aw_f32_to_f16(src[i]);
        return AW_OK;
    }
    case AW_DT_BF16: {
        uint16_t *d = dst;
        for (size_t i = 0; i < n; i++) d[i] = aw_f32_to_bf16(src[i]);
        return AW_OK;
    }
    case AW_DT_F64: {
        double *d = dst;
        for (size_t i = 0; i < n; i++) d[i] = src[i];
        return AW_OK;
    }
    default:
        return AW_FAIL(AW_ERR_DTYPE, "cannot convert F32 to %s", aw_dtype_name(dst_dt));
    }
}
