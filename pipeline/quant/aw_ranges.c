/* aw_ranges.c - per-channel ranges for the report (see aw_ranges.h). */
#include "aw_ranges.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int aw_range_tap_in(const aw_model_config *c, aw_tap_id t)
{
    return aw_arch_tap_width(c, t);
}

int aw_range_per_bin(int in) { return in <= AW_RANGE_BINS ? 1 : (in + AW_RANGE_BINS - 1) / AW_RANGE_BINS; }
int aw_range_bins(int in) { return (in + aw_range_per_bin(in) - 1) / aw_range_per_bin(in); }

static size_t tap_len(int in) { return 4 * (size_t)aw_range_bins(in) + AW_RANGE_TOP * AW_TOP_FIELDS; }

size_t aw_range_detail_len(const aw_model_config *c)
{
    size_t n = 0;
    for (int t = 0; t < AW_TAP_COUNT; t++) n += tap_len(aw_range_tap_in(c, (aw_tap_id)t));
    return n;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Median of v (n > 0) through tmp (n floats). */
static float median(const float *v, int n, float *tmp)
{
    memcpy(tmp, v, (size_t)n * sizeof *tmp);
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_float);
    return n % 2 ? tmp[n / 2] : 0.5f * (tmp[n / 2 - 1] + tmp[n / 2]);
}

aw_status aw_range_depth(const aw_stats *st, float *const s[AW_TAP_COUNT], float *out)
{
    int max_in = 0;
    for (int t = 0; t < AW_TAP_COUNT; t++) max_in = st->in[t] > max_in ? st->in[t] : max_in;
    float *after = malloc(2 * (size_t)max_in * sizeof *after);
    AW_RETURN_IF(!after, AW_ERR_NOMEM, "out of memory for the report's ranges");
    float *tmp = after + max_in;
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        const float *x = st->absmax[t];
        int in = st->in[t];
        float *o = out + t * AW_DEPTH_N;
        float xb = 0, xa = 0, smin = INFINITY, smax = 0;
        for (int j = 0; j < in; j++) {
            after[j] = x[j] / s[t][j];
            xb = x[j] > xb ? x[j] : xb;
            xa = after[j] > xa ? after[j] : xa;
            smin = s[t][j] < smin ? s[t][j] : smin;
            smax = s[t][j] > smax ? s[t][j] : smax;
        }
        o[AW_DEPTH_X_MAX_BEFORE] = xb;
        o[AW_DEPTH_X_MAX_AFTER] = xa;
        o[AW_DEPTH_X_MED_BEFORE] = median(x, in, tmp);
        o[AW_DEPTH_X_MED_AFTER] = median(after, in, tmp);
        o[AW_DEPTH_S_MIN] = smin;
        o[AW_DEPTH_S_MAX] = smax;
    }
    free(after);
    return AW_OK;
}

/* Bin maxima of v (in) into out (bins). */
static void bin_max(const float *v, int in, float *out)
{
    int per = aw_range_per_bin(in), nb = aw_range_bins(in);
    for (int b = 0; b < nb; b++) {
        float m = 0.0f;
        for (int j = b * per; j < (b + 1) * per && j < in; j++) m = v[j] > m ? v[j] : m;
        out[b] = m;
    }
}

aw_status aw_range_detail(const aw_model_config *c, const aw_block *fp, const aw_stats *st,
                          float *const s_q[AW_TAP_COUNT], float *out)
{
    int max_in = aw_arch_max_width(c);
    aw_block eq;
    memset(&eq, 0, sizeof eq);
    /* per tap: w before, w after, x after, then the factors (all taps) */
    float *wb[AW_TAP_COUNT], *wa[AW_TAP_COUNT], *s[AW_TAP_COUNT];
    size_t total = 0;
    for (int t = 0; t < AW_TAP_COUNT; t++) total += (size_t)aw_range_tap_in(c, (aw_tap_id)t);
    float *arena = malloc((3 * total + (size_t)max_in) * sizeof(float));
    AW_RETURN_IF(!arena, AW_ERR_NOMEM, "out of memory for the report's ranges");
    float *p = arena, *xa = NULL;
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        size_t in = (size_t)aw_range_tap_in(c, (aw_tap_id)t);
        wb[t] = p, p += in;
        wa[t] = p, p += in;
        s[t] = p, p += in;
    }
    xa = p;
    aw_status st_ = aw_block_create(c, AW_DT_F32, &eq);
    if (st_ == AW_OK) st_ = aw_block_convert(&eq, fp);
    for (int t = 0; t < AW_TAP_COUNT && st_ == AW_OK; t++) st_ = aw_tap_col_absmax(c, &eq, (aw_tap_id)t, wb[t]);
    /* the same folds as quantization: the same block and factors */
    for (int t = 0; t < AW_TAP_COUNT; t++) memcpy(s[t], s_q[t], (size_t)aw_range_tap_in(c, (aw_tap_id)t) * sizeof(float));
    if (st_ == AW_OK) st_ = aw_equalize_with_factors(c, fp, s, &eq);
    for (int t = 0; t < AW_TAP_COUNT && st_ == AW_OK; t++) st_ = aw_tap_col_absmax(c, &eq, (aw_tap_id)t, wa[t]);
    aw_block_destroy(&eq);
    float *o = out;
    for (int t = 0; t < AW_TAP_COUNT && st_ == AW_OK; t++) {
        int in = aw_range_tap_in(c, (aw_tap_id)t), nb = aw_range_bins(in);
        const float *x = st->absmax[t];
        for (int j = 0; j < in; j++) xa[j] = x[j] / s[t][j];
        bin_max(x, in, o);
        bin_max(xa, in, o + nb);
        bin_max(wb[t], in, o + 2 * nb);
        bin_max(wa[t], in, o + 3 * nb);
        o += 4 * (size_t)nb;
        /* the channels of largest x, largest first (ties: lower channel) */
        int top[AW_RANGE_TOP], n_top = 0;
        for (int j = 0; j < in; j++) {
            int k = n_top < AW_RANGE_TOP ? n_top++ : AW_RANGE_TOP;
            if (k == AW_RANGE_TOP && !(x[j] > x[top[AW_RANGE_TOP - 1]])) continue;
            if (k == AW_RANGE_TOP) k = AW_RANGE_TOP - 1;
            while (k > 0 && x[j] > x[top[k - 1]]) {
                top[k] = top[k - 1];
                k--;
            }
            top[k] = j;
        }
        for (int k = 0; k < AW_RANGE_TOP; k++, o += AW_TOP_FIELDS) {
            if (k >= n_top) {
                o[0] = -1.0f;
                for (int f = 1; f < AW_TOP_FIELDS; f++) o[f] = 0.0f;
                continue;
            }
            int j = top[k];
            o[0] = (float)j;
            o[1] = x[j];
            o[2] = xa[j];
            o[3] = s[t][j];
            o[4] = wb[t][j];
            o[5] = wa[t][j];
        }
    }
    free(arena);
    return st_;
}

int aw_range_default_layers(int n_layers, int *out)
{
    int cand[3] = {0, n_layers / 2, n_layers - 1}, n = 0;
    for (int i = 0; i < 3; i++)
        if (cand[i] >= 0 && (n == 0 || cand[i] > out[n - 1])) out[n++] = cand[i];
    return n;
}

aw_status aw_range_check_layers(const int *layers, int n, int n_layers)
{
    AW_RETURN_IF(n > AW_RANGE_MAX_LAYERS, AW_ERR_ARG, "--report-layers: at most %d layers", AW_RANGE_MAX_LAYERS);
    for (int i = 0; i < n; i++) {
        AW_RETURN_IF(layers[i] < 0 || layers[i] >= n_layers, AW_ERR_ARG,
                     "--report-layers: layer %d does not exist (the model has %d, 0-%d)", layers[i], n_layers,
                     n_layers - 1);
        AW_RETURN_IF(i > 0 && layers[i] <= layers[i - 1], AW_ERR_ARG,
                     "--report-layers: list the layers once each, in increasing order (%d after %d)", layers[i],
                     layers[i - 1]);
    }
    return AW_OK;
}

/* A value rounded to `digits` significant digits, so that the JSON prints
 * it short: plots need no more, and the size stays small. */
static json_t *rounded(float v, int digits)
{
    if (!isfinite(v)) return json_null();
    char buf[32];
    snprintf(buf, sizeof buf, "%.*g", digits, (double)v);
    return json_real(strtod(buf, NULL));
}

static json_t *series(const float *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, rounded(v[i], 4));
    return a;
}

static const char *const depth_names[AW_DEPTH_N] = {"x_max_before", "x_max_after", "x_median_before",
                                                    "x_median_after", "factor_min", "factor_max"};

json_t *aw_range_json(const aw_model_config *c, const aw_method *m, int n_layers, const float *depth, int n_shown,
                      const int *shown, const float *detail)
{
    json_t *eq = json_object();
    if (!eq) return NULL;
    json_object_set_new(eq, "about",
                        json_string("x: max |x| per input channel over the calibration tokens; w: max |W| of the "
                                    "weight column over the linears fed; before and after the block's folds "
                                    "(x_after = x_before / factor); bins: each series' max over consecutive "
                                    "channels; top_channels: the channels of largest x_before, exact"));
    json_t *taps = json_array();
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        json_t *tj = json_object();
        json_object_set_new(tj, "tap", json_string(aw_arch_of(c)->tap[t].name));
        json_object_set_new(tj, "feeds", json_string(aw_arch_of(c)->tap[t].consumers));
        json_object_set_new(tj, "equalized", json_boolean(aw_method_uses_tap(m, c, (aw_tap_id)t)));
        json_array_append_new(taps, tj);
    }
    json_object_set_new(eq, "taps", taps);
    json_t *dep = json_array();
    for (int l = 0; l < n_layers; l++) {
        json_t *lj = json_object();
        json_object_set_new(lj, "layer", json_integer(l));
        for (int t = 0; t < AW_TAP_COUNT; t++) {
            json_t *tj = json_object();
            const float *v = depth + (size_t)l * AW_DEPTH_LEN + t * AW_DEPTH_N;
            for (int k = 0; k < AW_DEPTH_N; k++) json_object_set_new(tj, depth_names[k], rounded(v[k], 6));
            json_object_set_new(lj, aw_arch_of(c)->tap[t].name, tj);
        }
        json_array_append_new(dep, lj);
    }
    json_object_set_new(eq, "depth", dep);
    json_t *layers = json_array();
    size_t per_layer = aw_range_detail_len(c);
    for (int i = 0; i < n_shown; i++) {
        const float *o = detail + (size_t)i * per_layer;
        json_t *lj = json_object();
        json_object_set_new(lj, "layer", json_integer(shown[i]));
        json_t *ta = json_array();
        for (int t = 0; t < AW_TAP_COUNT; t++) {
            int in = aw_range_tap_in(c, (aw_tap_id)t), nb = aw_range_bins(in);
            json_t *tj = json_object();
            json_object_set_new(tj, "tap", json_string(aw_arch_of(c)->tap[t].name));
            json_object_set_new(tj, "channels", json_integer(in));
            json_object_set_new(tj, "channels_per_bin", json_integer(aw_range_per_bin(in)));
            json_object_set_new(tj, "x_before", series(o, nb));
            json_object_set_new(tj, "x_after", series(o + nb, nb));
            json_object_set_new(tj, "w_before", series(o + 2 * nb, nb));
            json_object_set_new(tj, "w_after", series(o + 3 * nb, nb));
            o += 4 * (size_t)nb;
            json_t *top = json_array();
            for (int k = 0; k < AW_RANGE_TOP; k++, o += AW_TOP_FIELDS) {
                if (o[0] < 0) continue;
                json_t *cj = json_object();
                json_object_set_new(cj, "channel", json_integer((json_int_t)o[0]));
                json_object_set_new(cj, "x_before", json_real(o[1]));
                json_object_set_new(cj, "x_after", json_real(o[2]));
                json_object_set_new(cj, "factor", json_real(o[3]));
                json_object_set_new(cj, "w_before", json_real(o[4]));
                json_object_set_new(cj, "w_after", json_real(o[5]));
                json_array_append_new(top, cj);
            }
            json_object_set_new(tj, "top_channels", top);
            json_array_append_new(ta, tj);
        }
        json_object_set_new(lj, "taps", ta);
        json_array_append_new(layers, lj);
    }
    json_object_set_new(eq, "layers", layers);
    return eq;
}
