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
 *   Dynamic activations (--adynamic): the weights as weight-only, and the
 *   input quantized at run time to abits-bit symmetric integers with one
 *   step per token (agroup 0) or per group of agroup inputs of a token, the
 *   step absmax / ((2^abits - 1) / 2) and codes in [-2^(abits-1),
 *   2^(abits-1) - 1] (compressed-tensors' dynamic quantizer); the product
 *   is an integer product per block of inputs sharing both steps, scaled by
 *   both and added up in double (aw_actq.h).
 *   Kept channels (--keep-salient P, any scheme): the P% input channels of
 *   each tap with the largest calibration range (after the method's fold)
 *   stay in floating point (their weight columns rounded to the model's
 *   dtype); the quantized part sees zeros there.
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
    AW_ACT_I8_TENSOR, /* static symmetric INT8, one step per tensor (W8A8) */
    AW_ACT_DYNAMIC    /* abits-bit symmetric, steps per token or group, at run time */
} aw_act_kind;

typedef struct {
    int wbits;        /* 8 (W8A8 or weight-only), 4, 3 */
    int group;        /* weight-only: input channels per step; 0 = the whole row */
    int sym;          /* 1: symmetric (z = 2^(b-1)); 0: zero point per group */
    aw_act_kind act;
    int abits;        /* AW_ACT_DYNAMIC: 4..8 bits */
    int agroup;       /* AW_ACT_DYNAMIC: inputs per step of a token; 0 = the whole token */
    double keep_pct;  /* 0, or the share (percent, < 100) of each tap's channels kept in fp */
} aw_scheme;

/* The W8A8 scheme every run had before schemes existed (a compound
 * literal: &AW_SCHEME_W8A8 is a pointer to it). */
#define AW_SCHEME_W8A8 ((aw_scheme){8, 0, 1, AW_ACT_I8_TENSOR, 8, 0, 0.0})
static inline int aw_scheme_weight_only(const aw_scheme *s) { return s->act == AW_ACT_FLOAT; }
/* 1 if the weights are b-bit codes with steps per group (weight-only and
 * dynamic schemes), 0 for W8A8's per-tensor INT8. */
static inline int aw_scheme_coded(const aw_scheme *s) { return s->act != AW_ACT_I8_TENSOR; }
/* 1 if the layer quantizes its input (W8A8, dynamic). */
static inline int aw_scheme_int_act(const aw_scheme *s) { return s->act != AW_ACT_FLOAT; }
/* Channels kept in fp of a tap `in` wide: round(in * keep_pct / 100). */
static inline int aw_scheme_n_keep(const aw_scheme *s, int in)
{
    return s->keep_pct > 0 ? (int)((double)in * s->keep_pct / 100.0 + 0.5) : 0;
}
/* Steps per row of a linear with `in` inputs (weight-only schemes). */
static inline int aw_scheme_groups(const aw_scheme *s, int in)
{
    return s->group > 0 ? (in + s->group - 1) / s->group : 1;
}
/* Input channels per group of a linear with `in` inputs. */
static inline int aw_scheme_group_len(const aw_scheme *s, int in) { return s->group > 0 ? s->group : in; }

/* AW_ERR_ARG with a message unless the scheme is one the program makes:
 * W8A8, or coded weights with wbits 3, 4 or 8 and group 0 or >= 8, and for
 * dynamic activations abits 4..8, agroup 0 or >= 8, groups of weights and
 * activations nested (one divides the other), weights with integer
 * activations symmetric or under 8 bits (their signed values fit INT8);
 * keep_pct in [0, 100). */
aw_status aw_scheme_check(const aw_scheme *s);
/* "w8a8", "w4 g128 sym", "w3 per-channel asym", "w4 g128 sym a4 g128",
 * "w4 per-channel sym a8 token", "... keep 1%", ... into buf. */
const char *aw_scheme_label(const aw_scheme *s, char *buf, int cap);
/* "W8A8" for the plain W8A8 scheme (as the program has always said),
 * aw_scheme_label otherwise. */
const char *aw_scheme_title(const aw_scheme *s, char *buf, int cap);

#endif
