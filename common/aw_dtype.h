/*
 * aw_dtype.h - element types of tensors on disk and in memory, with a traits
 * table (name as safetensors spells it, size in bytes, the order the
 * reference safetensors writer lays tensors out in), and IEEE half/bfloat16
 * conversions (round to nearest even) used by both io/ and kernels/.
 */
#ifndef AW_DTYPE_H
#define AW_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aw_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    AW_DT_F64 = 0,
    AW_DT_F32,
    AW_DT_F16,
    AW_DT_BF16,
    AW_DT_I64,
    AW_DT_U64,
    AW_DT_I32,
    AW_DT_U32,
    AW_DT_I16,
    AW_DT_U16,
    AW_DT_I8,
    AW_DT_U8,
    AW_DT_BOOL,
    AW_DT_COUNT
} aw_dtype;

typedef struct {
    const char *name;   /* "F16", as in a safetensors header */
    size_t size;        /* bytes per element */
    int write_rank;     /* reference writer order: higher rank is written first */
    int is_float;
} aw_dtype_traits;

extern const aw_dtype_traits aw_dtype_table[AW_DT_COUNT];

static inline const aw_dtype_traits *aw_dtype_traits_of(aw_dtype dt) { return &aw_dtype_table[dt]; }
static inline size_t aw_dtype_size(aw_dtype dt) { return aw_dtype_table[dt].size; }
static inline const char *aw_dtype_name(aw_dtype dt) { return aw_dtype_table[dt].name; }

/* Parse a safetensors dtype name; AW_ERR_ST_DTYPE (no message set) if unknown. */
aw_status aw_dtype_from_name(const char *name, aw_dtype *out);

/* IEEE 754 binary16 -> binary32, exact. */
static inline float aw_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13); /* inf / nan */
    } else if (exp != 0) {
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal: renormalise */
        int e = -1;
        do {
            e++;
            man <<= 1;
        } while ((man & 0x400u) == 0);
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* binary32 -> binary16, round to nearest, ties to even; overflow gives inf. */
static inline uint16_t aw_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf or nan (keep nan quiet and non-zero) */
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0));
    if (ax >= 0x477ff000u) /* >= 65520 rounds to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) { /* below 2^-14: subnormal half or zero */
        if (ax < 0x33000000u) return (uint16_t)sign; /* < 2^-25 rounds to 0 */
        uint32_t e = ax >> 23;
        uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - e; /* 14..24 */
        uint32_t r = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ax - 0x38000000u; /* rebias exponent 127 -> 15 */
    uint32_t lsb = (r >> 13) & 1u;
    r += 0xfffu + lsb;
    return (uint16_t)(sign | (r >> 13));
}

static inline float aw_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* binary32 -> bfloat16, round to nearest even; nan stays nan. */
static inline uint16_t aw_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

/* v rounded to what dt can hold (F16, BF16; other types unchanged): the
 * value a checkpoint of that dtype stores. */
static inline float aw_round_to_dtype(float v, aw_dtype dt)
{
    if (dt == AW_DT_F16) return aw_f16_to_f32(aw_f32_to_f16(v));
    if (dt == AW_DT_BF16) return aw_bf16_to_f32(aw_f32_to_bf16(v));
    return v;
}

/* Convert n elements of a float dtype (F32, F16, BF16, F64) to f32.
 * AW_ERR_DTYPE (message set) for any other dtype. */
aw_status aw_convert_to_f32(aw_dtype src_dt, const void *src, float *dst, size_t n);
/* Convert n f32 values to a float dtype (F32, F16, BF16, F64). */
aw_status aw_convert_from_f32(aw_dtype dst_dt, const float *src, void *dst, size_t n);

#ifdef __cplusplus
}
#endif

#endif
