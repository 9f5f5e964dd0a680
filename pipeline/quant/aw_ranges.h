/*
 * aw_ranges.h - what the report shows of equalization: per input channel
 * j of each fold point (tap), the activation range x_j = max |x_j| over
 * the calibration tokens and the weight column range w_j = max_i |W_ij|
 * over the linears the tap feeds (q, k and v together at ln1->qkv), before
 * and after the block's folds. After the fold x'_j = x_j / s_j exactly; w'
 * is measured on the equalized block (for v_proj the v -> out_proj fold
 * also divides its rows, so w'_j is not simply w_j * s_j there).
 *
 * Size (OPT-175B has 96 blocks of d = 12288 and taps of up to 4d = 49152
 * channels): the report keeps
 *   - for every layer, per tap, AW_DEPTH_N numbers: the largest and the
 *     median x before and after, the smallest and largest factor;
 *   - for a few chosen layers (--report-layers; default the first, middle
 *     and last), per tap, at most AW_RANGE_BINS bins of consecutive channels
 *     with each series' maximum over the bin (a maximum keeps every outlier
 *     visible on a log plot), plus the AW_RANGE_TOP channels of largest x
 *     exactly (channel, x, x', s, w, w').
 * So its size does not grow with d, and grows with the depth by a few
 * hundred bytes a layer.
 */
#ifndef AW_RANGES_H
#define AW_RANGES_H

#include <jansson.h>
#include <stddef.h>

#include "aw_config.h"
#include "aw_model.h"
#include "aw_quant.h"

#define AW_RANGE_BINS 512
#define AW_RANGE_TOP 16
#define AW_RANGE_MAX_LAYERS 8

enum {
    AW_DEPTH_X_MAX_BEFORE = 0,
    AW_DEPTH_X_MAX_AFTER,
    AW_DEPTH_X_MED_BEFORE,
    AW_DEPTH_X_MED_AFTER,
    AW_DEPTH_S_MIN,
    AW_DEPTH_S_MAX,
    AW_DEPTH_N
};
#define AW_DEPTH_LEN (AW_TAP_COUNT * AW_DEPTH_N)

/* Values of one top channel in a detail: channel, x, x', s, w, w'. */
#define AW_TOP_FIELDS 6

/* Channels of each tap of shape c (d, d, d, ffn). */
int aw_range_tap_in(const aw_model_config *c, aw_tap_id t);
/* Channels per bin, and bins, of a tap of `in` channels. */
int aw_range_per_bin(int in);
int aw_range_bins(int in);
/* Floats of one layer's detail: per tap, the bins of x, x', w, w' (in this
 * order), then AW_RANGE_TOP x AW_TOP_FIELDS (fewer channels than that: the
 * rest are channel -1). */
size_t aw_range_detail_len(const aw_model_config *c);

/* One layer's depth summary (AW_DEPTH_LEN floats, tap by tap) from its
 * statistics and its factors s (q->s, or 1 without equalization). */
aw_status aw_range_depth(const aw_stats *st, float *const s[AW_TAP_COUNT], float *out);
/* One layer's detail (aw_range_detail_len floats): the weight ranges from
 * an F32 copy of fp before, and after folding it with the factors
 * quantization chose (q->s: aw_equalize_with_factors, the same block as
 * quantization's, without repeating a search). Holds one F32 block while
 * it runs, as quantization does. */
aw_status aw_range_detail(const aw_model_config *c, const aw_block *fp, const aw_stats *st,
                          float *const s[AW_TAP_COUNT], float *out);

/* The layers shown by default: the first, the middle and the last
 * (distinct); returns their count (<= 3). */
int aw_range_default_layers(int n_layers, int *out);
/* Check a --report-layers list against the model: AW_ERR_ARG naming the
 * bad entry (out of range, repeated, not increasing). */
aw_status aw_range_check_layers(const int *layers, int n, int n_layers);

/* The report's "equalization" section: depth (n_layers x AW_DEPTH_LEN) and
 * the details of the n_shown layers `shown` (n_shown x detail_len). NULL
 * without memory. */
json_t *aw_range_json(const aw_model_config *c, const aw_method *m, int n_layers, const float *depth, int n_shown,
                      const int *shown, const float *detail);

#endif
