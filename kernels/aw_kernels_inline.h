/*
 * aw_kernels_inline.h - per-element math shared by the CPU backend and the
 * CUDA backend (host and device), so that both round the same way: the INT8
 * code of a value, the RoPE rotation, the SwiGLU gate.
 */
#ifndef AW_KERNELS_INLINE_H
#define AW_KERNELS_INLINE_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define AW_HD __host__ __device__
#else
#define AW_HD
#endif

/* A float's bit pattern and back, without aliasing UB (compiled to moves). */
static inline AW_HD uint32_t aw_f2u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline AW_HD float aw_u2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* 1.5 * 2^23: for |c| <= 2^22, c + 1.5*2^23 lies in [2^23, 2^24) where floats
 * are spaced by exactly 1, so the addition rounds c to an integer k (nearest,
 * ties to even: the default rounding mode) and the sum's bit pattern is
 * 0x4B400000 + k. */
#define AW_ROUND_MAGIC 12582912.0f

/* One INT8 code: round half to even of v = x / step (a float), clamped to
 * [-127, 127]; NaN maps to 0. That is, exactly:
 *     v = x / step; if (v != v) return 0; v = clamp(v, -127, 127); return rintf(v);
 * written on the bit pattern of v so that a loop over it vectorises without
 * branches on any x86-64 (gcc turns float selects against constants into
 * int8-lane masks or branches; an integer min stays one vector op):
 *   - a = bits of |v|; NaN patterns (above 0x7f800000) become +0;
 *   - for non-negative floats the integer order of the patterns is the
 *     numeric order, so min(a, bits(127.0f)) is the clamp (Inf included);
 *   - with the sign put back, adding 1.5*2^23 rounds to the integer k and
 *     the pattern's low byte is k in two's complement (0x4B400000 ends in
 *     0x00 and |k| <= 127).
 * Checked against the plain form above for all 2^32 inputs at several steps.
 * Needs float arithmetic in float (FLT_EVAL_METHOD 0), round-to-nearest, and
 * integer conversions that wrap (gcc, clang, nvcc). */
static inline AW_HD int8_t aw_quant_i8(float x, float step)
{
    uint32_t b = aw_f2u(x / step);
    uint32_t sign = b & 0x80000000u;
    int32_t a = (int32_t)(b & 0x7fffffffu);
    a &= -(int32_t)((uint32_t)(a - 0x7f800001) >> 31); /* NaN -> +0 */
    a = a < 0x42fe0000 ? a : 0x42fe0000;               /* min(|v|, 127.0f) */
    uint32_t r = aw_f2u(aw_u2f((uint32_t)a | sign) + AW_ROUND_MAGIC);
    return (int8_t)(uint8_t)r;
}

/* Float operations rounded once each, never contracted into an fma: nvcc
 * contracts a*b+c by default in device code, the CPU build (ISO C11, no FMA
 * ISA) does not; sums of products written with these round the same on
 * both backends. */
static inline AW_HD float aw_fmul(float a, float b)
{
#ifdef __CUDA_ARCH__
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}
static inline AW_HD float aw_fadd(float a, float b)
{
#ifdef __CUDA_ARCH__
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}
static inline AW_HD float aw_fsub(float a, float b)
{
#ifdef __CUDA_ARCH__
    return __fsub_rn(a, b);
#else
    return a - b;
#endif
}

/* RoPE, Hugging Face LLaMA form: pair i (i < head_dim/2) of a head is
 * (x[i], x[i + head_dim/2]), rotated by the angle p * inv_freq_i at position
 * p, inv_freq_i = theta^(-2i/head_dim). The frequency, the angle, cos and sin
 * are computed in double and rounded once to float; the rotation is applied
 * in float. Both backends call these three, so they differ only where the
 * device's double pow, cos, sin (2 ulp in double) and glibc's round to
 * neighbouring floats: rarely, by one float ulp of cos or sin. */
static inline AW_HD double aw_rope_inv_freq(int i, int head_dim, float theta)
{
    return 1.0 / pow((double)theta, (double)(2 * i) / (double)head_dim);
}
static inline AW_HD void aw_rope_cos_sin(int p, double inv_freq, float *c, float *s)
{
    double a = (double)p * inv_freq;
    *c = (float)cos(a);
    *s = (float)sin(a);
}
/* (x1, x2) -> (x1 c - x2 s, x2 c + x1 s), in place. */
static inline AW_HD void aw_rope_rotate(float *x1, float *x2, float c, float s)
{
    float a = *x1, b = *x2;
    *x1 = aw_fsub(aw_fmul(a, c), aw_fmul(b, s));
    *x2 = aw_fadd(aw_fmul(b, c), aw_fmul(a, s));
}

/* SwiGLU gate of one value: silu(g) * u = g * sigmoid(g) * u. silu is
 * computed in double as g / (1 + exp(-g)) and rounded once to float, then
 * one float product with u. Below g ~ -709 exp overflows and silu is -0;
 * g = -Inf gives NaN (-Inf * 0, as PyTorch's x * sigmoid(x)); NaN stays NaN.
 * Same caveat as RoPE for the device's double exp (1 ulp in double). */
static inline AW_HD float aw_swiglu1(float g, float u)
{
    double gd = (double)g;
    float silu = (float)(gd / (1.0 + exp(-gd)));
    return aw_fmul(silu, u);
}

#endif
