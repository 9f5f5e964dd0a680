/*
 * aw_scheme.h - a quantization scheme: what a quantized linear stores and
 * computes, independent of the method that chose its values.
 *
 *   W8A8 (the default): INT8 weights with one step per tensor, symmetric,
 *   and a static per-tensor INT8 step for the input (integer product).
 *   Weight-only (--wbits): b-bit weights (b = 3, 4 or 8) with one step per
 *   group of `group` consecutive input channels of a row (group 0: one per
 *   output channel, the whole row), symmetric or with a zero point; the
 *   input stays in floating point and the layer multiplies the dequantized
 *   weights.
 *
 * Weight-only codes are unsigned, q in [0, 2^b - 1], with a zero point z in
 * the same range per (row, group): w ~= (q - z) * step. Symmetric schemes
 * have z = 2^(b-1) everywhere (compressed-tensors stores the signed value
 * q - z shifted by 2^(b-1), which is q itself). The groups of a row are
 * ceil(in / group); the last one may be shorter.
 */
#ifndef AW_SCHEME_H
#define AW_SCHEME_H

#include "aw_status.h"

typedef enum {
    AW_ACT_FLOAT = 0, /* activations stay in floating point (weight-only) */
    AW_ACT_I8_TENSOR  /* static symmetric INT8, one step per tensor (W8A8) */
} aw_act_kind;

typedef struct {
    int wbits;        /* 8 (W8A8 or weight-only), 4, 3 */
    int group;        /* weight-only: input channels per step; 0 = the whole row */
    int sym;          /* 1: symmetric (z = 2^(b-1)); 0: zero point per group */
    aw_act_kind act;
} aw_scheme;

/* The W8A8 scheme every run had before schemes existed (a compound
 * literal: &AW_SCHEME_W8A8 is a pointer to it). */
#define AW_SCHEME_W8A8 ((aw_scheme){8, 0, 1, AW_ACT_I8_TENSOR})
static inline int aw_scheme_weight_only(const aw_scheme *s) { return s->act == AW_ACT_FLOAT; }
/* Steps per row of a linear with `in` inputs (weight-only schemes). */
static inline int aw_scheme_groups(const aw_scheme *s, int in)
{
    return s->group > 0 ? (in + s->group - 1) / s->group : 1;
}
/* Input channels per group of a linear with `in` inputs. */
static inline int aw_scheme_group_len(const aw_scheme *s, int in) { return s->group > 0 ? s->group : in; }

/* AW_ERR_ARG with a message unless the scheme is one the program makes:
 * W8A8, or weight-only with wbits 3, 4 or 8 and group 0 or >= 8. */
aw_status aw_scheme_check(const aw_scheme *s);
/* "w8a8", "w4 g128 sym", "w3 per-channel asym", ... into buf. */
const char *aw_scheme_label(const aw_scheme *s, char *buf, int cap);

#endif
