/* aw_html_report.c - the sections of one report in report.html: setup,
 * run, end to end, equalization ranges, depth, verdict (see aw_html_int.h). */
#include "aw_html_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- sections of one report ------------------------------------------------ */

static void section_setup(aw_sb *b, json_t *rep)
{
    char buf[512], ml[64];
    json_t *cal = json_object_get(rep, "calibration");
    aw_sb_put(b, "<section class=\"setup\"><h2>Model, method and data</h2>\n<table class=\"kv\">\n");
    aw_html_kv_row(b, "model", aw_html_jstr(rep, "model", "?"));
    aw_html_method_label(rep, ml, sizeof ml);
    snprintf(buf, sizeof buf, "%s (%s; alpha %.2f; bias correction %s)", ml, aw_html_jstr(rep, "method", "?"),
             aw_html_jnum(rep, "alpha"), json_is_true(json_object_get(rep, "bias_correction")) ? "on" : "off");
    aw_html_kv_row(b, "method", buf);
    snprintf(buf, sizeof buf, "W8A8: weights %s; activations %s", aw_html_jstr(rep, "weights", "?"),
             aw_html_jstr(rep, "activations", "?"));
    aw_html_kv_row(b, "scheme", buf);
    json_t *taps = json_object_get(json_object_get(rep, "equalization"), "taps"), *e;
    if (json_is_array(taps)) {
        size_t i, k = 0;
        buf[0] = '\0';
        json_array_foreach(taps, i, e)
        {
            if (!json_is_true(json_object_get(e, "equalized"))) continue;
            k += (size_t)snprintf(buf + k, k < sizeof buf ? sizeof buf - k : 0, "%s%s", k ? ", " : "",
                                  aw_html_jstr(e, "tap", "?"));
        }
        aw_html_kv_row(b, "equalized fold points", k ? buf : "none");
    }
    double seqs = aw_html_jnum(cal, "sequences"), hold = aw_html_jnum(cal, "heldout_sequences"), L = aw_html_jnum(cal, "seq_len");
    json_t *text = json_object_get(cal, "text");
    if (json_is_array(text)) {
        size_t i, k = 0;
        char files[256] = "";
        json_array_foreach(text, i, e)
        {
            k += (size_t)snprintf(files + k, k < sizeof files ? sizeof files - k : 0, "%s%s", k ? ", " : "",
                                  json_string_value(e) ? json_string_value(e) : "?");
        }
        snprintf(buf, sizeof buf, "%.0f windows x %.0f tokens drawn from %s (seed %.0f; %s)", seqs, L, files,
                 aw_html_jnum(cal, "seed"), aw_html_jstr(cal, "draw", ""));
    } else {
        snprintf(buf, sizeof buf, "%.0f sequences x %.0f tokens from a token file (%.0f tokens)", seqs, L, seqs * L);
    }
    aw_html_kv_row(b, "calibration", buf);
    snprintf(buf, sizeof buf, "%.0f held-out sequences x %.0f tokens", hold, L);
    aw_html_kv_row(b, "validation", buf);
    json_t *ev = json_object_get(rep, "eval_text");
    if (json_is_object(ev)) {
        snprintf(buf, sizeof buf, "%s: %.0f windows x %.0f tokens of its %.0f tokens", aw_html_jstr(ev, "text", "?"),
                 aw_html_jnum(ev, "windows"), aw_html_jnum(ev, "seq_len"), aw_html_jnum(ev, "text_tokens"));
        aw_html_kv_row(b, "evaluation text", buf);
    }
    aw_sb_put(b, "</table></section>\n");
}

static void section_run(aw_sb *b, json_t *run, const char *idp)
{
    char buf[512], id[64];
    aw_sb_put(b, AW_HTML_RUN_BEGIN "\n<section class=\"run\"><h2>The run</h2>\n");
    if (!json_is_object(run)) {
        aw_sb_put(b, "<p class=\"muted\">How the job ran (ranks, layout, backend, times, peak memory) is kept in "
                     "aweq_run.json beside the report; there is none here.</p>\n</section>\n" AW_HTML_RUN_END "\n");
        return;
    }
    json_t *ranks = json_object_get(run, "rank_layout"), *e;
    aw_sb_put(b, "<table class=\"kv\">\n");
    snprintf(buf, sizeof buf, "%.0f = %.0f stage(s) x %.0f replica(s); hand-off between stages %s",
             aw_html_jnum(run, "ranks"), aw_html_jnum(run, "stages"), aw_html_jnum(run, "replicas"), aw_html_jstr(run, "handoff", "?"));
    aw_html_kv_row(b, "ranks", buf);
    if (json_array_size(ranks) > 0) aw_html_kv_row(b, "backend (rank 0)", aw_html_jstr(json_array_get(ranks, 0), "device", "?"));
    double reused = aw_html_jnum(run, "resumed_blocks");
    if (reused > 0) {
        snprintf(buf, sizeof buf, "%.0f blocks reused from their shards (--resume)", reused);
        aw_html_kv_row(b, "resume", buf);
    }
    json_t *tps = json_object_get(run, "tokens_per_s");
    snprintf(buf, sizeof buf, "calibration %.0f tokens/s, validation %.0f tokens/s", aw_html_jnum(tps, "calibrate"),
             aw_html_jnum(tps, "validate"));
    aw_html_kv_row(b, "throughput", buf);
    aw_sb_put(b, "</table>\n<div class=\"row\">\n");
    static const char *const phases[5] = {"load", "calibrate", "quantize", "validate", "write"};
    json_t *times = json_object_get(run, "times_s");
    double tv[5];
    for (int i = 0; i < 5; i++) tv[i] = aw_html_jnum(times, phases[i]);
    snprintf(id, sizeof id, "%stimes", idp);
    aw_bars(b, id, "Time per phase (rank 0)", 520, phases, tv, 5, "%.2f s", NULL);
    size_t nr = json_array_size(ranks), i;
    if (nr > 0) {
        char(*labels)[64] = calloc(nr, sizeof *labels);
        const char **lp = calloc(nr, sizeof *lp);
        double *mb = calloc(nr, sizeof *mb);
        if (labels && lp && mb) {
            json_array_foreach(ranks, i, e)
            {
                snprintf(labels[i], sizeof labels[i], "rank %.0f: stage %.0f, layers %.0f-%.0f", aw_html_jnum(e, "rank"),
                         aw_html_jnum(e, "stage"), aw_html_jnum(e, "first_layer"), aw_html_jnum(e, "last_layer"));
                lp[i] = labels[i];
                mb[i] = aw_html_jnum(e, "peak_memory_mb");
            }
            snprintf(id, sizeof id, "%smemory", idp);
            aw_bars(b, id, "Peak resident memory per rank", 600, lp, mb, (int)nr, "%.0f MB", NULL);
        } else {
            b->failed = 1;
        }
        free(labels);
        free(lp);
        free(mb);
    }
    aw_sb_put(b, "</div>\n</section>\n" AW_HTML_RUN_END "\n");
}

static void e2e_row(aw_sb *b, const char *what, json_t *e)
{
    double fp = aw_html_jnum(e, "perplexity_fp"), q = aw_html_jnum(e, "perplexity_w8a8");
    aw_sb_put(b, "<tr><td class=\"l\">");
    aw_sb_esc(b, what);
    aw_sb_put(b, "</td>");
    aw_html_num_cell(b, "%.0f", aw_html_jnum(e, "predicted_tokens"));
    aw_html_num_cell(b, "%.4f", fp);
    aw_html_num_cell(b, "%.4f", q);
    aw_html_num_cell(b, "%.4f", q / fp);
    aw_html_num_cell(b, "%.6f", aw_html_jnum(e, "kl_divergence"));
    aw_html_num_cell(b, "%.2f%%", 100.0 * aw_html_jnum(e, "top1_agreement"));
    aw_sb_put(b, "</tr>\n");
}

static void section_e2e(aw_sb *b, json_t *rep)
{
    aw_sb_put(b, "<section class=\"e2e\"><h2>End to end</h2>\n<table><tr><th class=\"l\">tokens</th>"
                 "<th>predicted</th><th>perplexity fp</th><th>perplexity W8A8</th><th>W8A8 / fp</th>"
                 "<th>KL(fp&#8214;W8A8)</th><th>top-1 agreement</th></tr>\n");
    e2e_row(b, "held-out calibration sequences", json_object_get(rep, "end_to_end"));
    json_t *ev = json_object_get(rep, "eval_text");
    if (json_is_object(ev)) {
        char what[200];
        snprintf(what, sizeof what, "%s (%.0f windows x %.0f tokens)", aw_html_jstr(ev, "text", "?"), aw_html_jnum(ev, "windows"),
                 aw_html_jnum(ev, "seq_len"));
        e2e_row(b, what, ev);
    }
    aw_sb_put(b, "</table>\n<p class=\"muted\">KL: mean over predicted tokens of KL(fp&#8214;W8A8) of the "
                 "next-token distributions; top-1 agreement: share of tokens where both models rank the same "
                 "token first.</p>\n</section>\n");
}

/* Floats of a JSON array (NaN for null) into a malloc'd array. */
static double *jarray(json_t *a, int *n)
{
    *n = (int)json_array_size(a);
    double *v = malloc((size_t)(*n ? *n : 1) * sizeof *v);
    if (!v) return NULL;
    for (int i = 0; i < *n; i++) {
        json_t *e = json_array_get(a, (size_t)i);
        v[i] = json_is_number(e) ? json_number_value(e) : NAN;
    }
    return v;
}

/* One fold point of one shown layer: the four series and the top channels. */
static void eq_plot(aw_sb *b, json_t *tap, int layer, int equalized, const char *idp, int ti)
{
    static const char *const keys[4] = {"x_before", "x_after", "w_before", "w_after"};
    static const char *const colors[4] = {C_XB, C_XA, C_WB, C_WA};
    static const char *const dashes[4] = {NULL, NULL, "4 3", "4 3"};
    static const char *const names[4] = {"x before", "x after", "w before", "w after"};
    double *v[4] = {0};
    int nb[4] = {0}, ch = aw_html_jint(tap, "channels", 0), per = aw_html_jint(tap, "channels_per_bin", 1);
    if (per < 1) per = 1;
    double lo = INFINITY, hi = 0;
    int ok = 1;
    for (int s = 0; s < 4; s++) {
        v[s] = jarray(json_object_get(tap, keys[s]), &nb[s]);
        if (!v[s]) ok = 0;
        for (int i = 0; v[s] && i < nb[s]; i++)
            if (v[s][i] > 0 && isfinite(v[s][i])) lo = v[s][i] < lo ? v[s][i] : lo, hi = v[s][i] > hi ? v[s][i] : hi;
    }
    double *xs = malloc((size_t)(nb[0] ? nb[0] : 1) * sizeof *xs);
    if (!ok || !xs) {
        b->failed = 1;
        goto done;
    }
    for (int i = 0; i < nb[0]; i++) xs[i] = (i + 0.5) * per - 0.5;
    char title[128], id[64];
    snprintf(title, sizeof title, "layer %d %s%s", layer, aw_html_jstr(tap, "tap", "?"), equalized ? "" : " (not equalized)");
    snprintf(id, sizeof id, "%seq-%d-%d", idp, layer, ti);
    aw_plot p;
    aw_plot_frame(&p, 304, 230, 0, ch > 0 ? ch : 1, lo, hi, 1);
    aw_plot_begin(b, &p, id, title, per > 1 ? "input channel (max over bins)" : "input channel", "max |value|");
    int drawn = 0;
    for (int s = 0; s < 4; s++)
        drawn += aw_plot_series(b, &p, xs, v[s], nb[s] < nb[0] ? nb[s] : nb[0], colors[s], dashes[s], s < 2 ? 1.2 : 1.0,
                                names[s]);
    /* the outlier channels: before -> after, the fall by the factor */
    json_t *top = json_object_get(tap, "top_channels"), *e;
    size_t i;
    json_array_foreach(top, i, e)
    {
        if (i >= 6) break;
        double c = aw_html_jnum(e, "channel"), xb = aw_html_jnum(e, "x_before"), xa = aw_html_jnum(e, "x_after"), f = aw_html_jnum(e, "factor");
        if (!(xb > 0) || !(xa > 0)) continue;
        aw_sb_printf(b, "<line class=\"drop\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", aw_plot_px(&p, c),
                     aw_plot_py(&p, xb), aw_plot_px(&p, c), aw_plot_py(&p, xa));
        char attrs[160];
        snprintf(attrs, sizeof attrs, "data-role=\"x_before\" data-channel=\"%.0f\" data-value=\"%.9g\"", c, xb);
        aw_plot_marker(b, &p, c, xb, 3.5, C_XB, 0, attrs);
        snprintf(attrs, sizeof attrs, "data-role=\"x_after\" data-channel=\"%.0f\" data-value=\"%.9g\" data-factor=\"%.9g\"",
                 c, xa, f);
        aw_plot_marker(b, &p, c, xa, 3.0, C_XA, 1, attrs);
        drawn++;
    }
    if (!drawn) aw_plot_note(b, &p, "no data");
    /* the axis, for checkers: log10 range and its pixels */
    aw_sb_printf(b, "<desc class=\"axis-y\" data-log10-top=\"%g\" data-log10-bottom=\"%g\" data-px-top=\"%d\" "
                 "data-px-bottom=\"%d\"></desc>\n",
                 p.y1, p.y0, p.mt, p.h - p.mb);
    aw_plot_end(b);
done:
    for (int s = 0; s < 4; s++) free(v[s]);
    free(xs);
}

static void section_equalization(aw_sb *b, json_t *rep, const char *idp)
{
    json_t *eq = json_object_get(rep, "equalization");
    aw_sb_put(b, "<section class=\"equalization\"><h2>Equalization: per-channel ranges</h2>\n");
    if (!json_is_object(eq)) {
        aw_sb_put(b, "<p class=\"muted\">This report has no per-channel ranges (written by an older "
                     "aweq-dist).</p>\n</section>\n");
        return;
    }
    aw_sb_put(b, "<p>Per input channel of each fold point, log scale: the activation range max |x| over the "
                 "calibration tokens and the weight column range max |W| over the linears fed, before and after "
                 "the block's folds. Equalization divides channel j of the activation by its factor s<sub>j</sub> "
                 "and multiplies the weight column by it; AWEQ's s<sub>j</sub> = (x<sub>j</sub> / "
                 "w<sub>j</sub>)<sup>1/2</sup> leaves both at (x<sub>j</sub> w<sub>j</sub>)<sup>1/2</sup>: the "
                 "two lines after it coincide at v-&gt;out_proj and fc1-&gt;fc2, while at ln1-&gt;qkv and "
                 "ln2-&gt;fc1 the block's later folds into the rows of v_proj and fc1 scale those weights "
                 "again. The circles mark the channels of largest range, before (open) "
                 "and after (filled): each falls by its factor. Wide layers are drawn from bins of consecutive "
                 "channels (each series' maximum over the bin).</p>\n<p class=\"keys\">");
    static const char *const kn[4] = {"x before", "x after", "w before", "w after"};
    static const char *const kc[4] = {C_XB, C_XA, C_WB, C_WA};
    for (int k = 0; k < 4; k++)
        aw_sb_printf(b, "<span class=\"key\"><svg width=\"24\" height=\"10\"><line x1=\"0\" y1=\"5\" x2=\"24\" "
                     "y2=\"5\" stroke=\"%s\" stroke-width=\"2\"%s/></svg> %s</span>\n",
                     kc[k], k >= 2 ? " stroke-dasharray=\"4 3\"" : "", kn[k]);
    aw_sb_put(b, "<span class=\"key\"><svg width=\"24\" height=\"10\"><circle cx=\"6\" cy=\"5\" r=\"3.5\" "
                 "fill=\"white\" stroke=\"" C_XB "\" stroke-width=\"1.5\"/><circle cx=\"18\" cy=\"5\" r=\"3\" "
                 "fill=\"" C_XA "\"/></svg> a top channel before and after</span></p>\n");
    json_t *taps = json_object_get(eq, "taps");
    json_t *layers = json_object_get(eq, "layers"), *le;
    size_t i;
    json_array_foreach(layers, i, le)
    {
        int layer = aw_html_jint(le, "layer", -1);
        aw_sb_printf(b, "<h3>layer %d</h3>\n<div class=\"row\">\n", layer);
        json_t *ta = json_object_get(le, "taps"), *te;
        size_t k;
        json_array_foreach(ta, k, te)
        {
            int equalized = json_is_true(json_object_get(json_array_get(taps, k), "equalized"));
            eq_plot(b, te, layer, equalized, idp, (int)k);
        }
        aw_sb_put(b, "</div>\n");
    }
    /* the numbers of the first shown layer's first fold point */
    json_t *t0 = json_array_get(json_object_get(json_array_get(layers, 0), "taps"), 0);
    json_t *top = json_object_get(t0, "top_channels"), *e;
    if (json_array_size(top) > 0) {
        aw_sb_printf(b, "<h3>Channels of largest input range, layer %d %s</h3>\n<table><tr><th>channel</th>"
                     "<th>x before</th><th>x after</th><th>factor s</th><th>x before / x after</th><th>w before</th>"
                     "<th>w after</th></tr>\n",
                     aw_html_jint(json_array_get(layers, 0), "layer", -1), aw_html_jstr(t0, "tap", "?"));
        json_array_foreach(top, i, e)
        {
            if (i >= 8) break;
            aw_sb_put(b, "<tr>");
            aw_html_num_cell(b, "%.0f", aw_html_jnum(e, "channel"));
            aw_html_num_cell(b, "%.4g", aw_html_jnum(e, "x_before"));
            aw_html_num_cell(b, "%.4g", aw_html_jnum(e, "x_after"));
            aw_html_num_cell(b, "%.4g", aw_html_jnum(e, "factor"));
            aw_html_num_cell(b, "%.4g", aw_html_jnum(e, "x_before") / aw_html_jnum(e, "x_after"));
            aw_html_num_cell(b, "%.4g", aw_html_jnum(e, "w_before"));
            aw_html_num_cell(b, "%.4g", aw_html_jnum(e, "w_after"));
            aw_sb_put(b, "</tr>\n");
        }
        aw_sb_put(b, "</table>\n");
    }
    aw_sb_put(b, "</section>\n");
}

/* Outliers down the depth: max / median input range per fold point. */
static void depth_outliers(aw_sb *b, json_t *eq, const char *idp)
{
    json_t *dep = json_object_get(eq, "depth"), *taps = json_object_get(eq, "taps");
    int n = (int)json_array_size(dep), nt = (int)json_array_size(taps);
    if (n == 0 || nt == 0) return;
    double *x = malloc((size_t)n * sizeof *x), *yb = malloc((size_t)n * sizeof *yb), *ya = malloc((size_t)n * sizeof *ya);
    if (!x || !yb || !ya) {
        b->failed = 1;
        goto done;
    }
    aw_sb_put(b, "<div class=\"row\">\n");
    for (int t = 0; t < nt; t++) {
        const char *tn = aw_html_jstr(json_array_get(taps, (size_t)t), "tap", "?");
        double lo = INFINITY, hi = 0;
        for (int l = 0; l < n; l++) {
            json_t *d = json_object_get(json_array_get(dep, (size_t)l), tn);
            x[l] = aw_html_jnum(json_array_get(dep, (size_t)l), "layer");
            yb[l] = aw_html_jnum(d, "x_max_before") / aw_html_jnum(d, "x_median_before");
            ya[l] = aw_html_jnum(d, "x_max_after") / aw_html_jnum(d, "x_median_after");
            for (int k = 0; k < 2; k++) {
                double v = k ? ya[l] : yb[l];
                if (v > 0 && isfinite(v)) lo = v < lo ? v : lo, hi = v > hi ? v : hi;
            }
        }
        aw_plot p;
        char id[64], title[96];
        snprintf(id, sizeof id, "%soutliers-%d", idp, t);
        snprintf(title, sizeof title, "%s: outlier ratio", tn);
        aw_plot_frame(&p, 304, 220, 0, n > 1 ? n - 1 : 1, lo, hi, 1);
        if (t == 0) aw_plot_legend_margin(&p, 70);
        aw_plot_begin(b, &p, id, title, "layer", "max / median range");
        int drawn = aw_plot_series(b, &p, x, yb, n, C_XB, NULL, 1.5, "before");
        drawn += aw_plot_series(b, &p, x, ya, n, C_XA, NULL, 1.5, "after");
        if (!drawn) aw_plot_note(b, &p, "no data");
        if (t == 0) {
            static const char *const nm[2] = {"before", "after"}, *const cl[2] = {C_XB, C_XA};
            aw_plot_legend(b, &p, nm, cl, NULL, 2);
        }
        aw_plot_end(b);
    }
    aw_sb_put(b, "</div>\n");
done:
    free(x);
    free(yb);
    free(ya);
}

static int cmp_desc(const void *a, const void *b)
{
    const double *x = a, *y = b;
    if (x[0] != y[0]) return x[0] < y[0] ? 1 : -1;
    return (x[1] > y[1]) - (x[1] < y[1]);
}

static void section_depth(aw_sb *b, json_t *rep, const char *idp)
{
    double *rel = NULL, *sq = NULL, *x = NULL, *y = NULL;
    int n = aw_html_layer_table(rep, &rel, &sq);
    aw_sb_put(b, "<section class=\"depth\"><h2>Down the depth</h2>\n");
    if (n <= 0) {
        if (n < 0) b->failed = 1;
        aw_sb_put(b, "<p class=\"muted\">No layers in this report.</p>\n</section>\n");
        free(rel);
        free(sq);
        return;
    }
    x = malloc((size_t)n * sizeof *x);
    y = malloc((size_t)n * sizeof *y);
    if (!x || !y) {
        b->failed = 1;
        goto done;
    }
    aw_sb_put(b, "<p>Per layer and linear type, on the held-out sequences: relative error "
                 "||y<sub>W8A8</sub> - y|| / ||y|| of the layer's output and its SQNR.</p>\n<div class=\"row\">\n");
    for (int pl = 0; pl < 2; pl++) {
        double *v = pl ? sq : rel, lo = INFINITY, hi = -INFINITY;
        for (int k = 0; k < n * 6; k++)
            if (isfinite(v[k]) && (pl || v[k] > 0)) lo = v[k] < lo ? v[k] : lo, hi = v[k] > hi ? v[k] : hi;
        aw_plot p;
        char id[64];
        snprintf(id, sizeof id, "%s%s", idp, pl ? "sqnr" : "relerr");
        aw_plot_frame(&p, 610, 300, 0, n > 1 ? n - 1 : 1, lo, hi, !pl);
        aw_plot_legend_margin(&p, 78);
        aw_plot_begin(b, &p, id, pl ? "SQNR per layer (dB)" : "Relative error per layer", "layer",
                      pl ? "SQNR (dB)" : "relative error");
        int drawn = 0;
        for (int k = 0; k < 6; k++) {
            for (int l = 0; l < n; l++) x[l] = l, y[l] = v[l * 6 + k];
            drawn += aw_plot_series(b, &p, x, y, n, aw_html_lin_color[k], NULL, 1.5, aw_html_lin_short[k]);
        }
        if (!drawn) aw_plot_note(b, &p, "no data");
        aw_plot_legend(b, &p, aw_html_lin_short, aw_html_lin_color, NULL, 6);
        aw_plot_end(b);
    }
    aw_sb_put(b, "</div>\n");
    json_t *eq = json_object_get(rep, "equalization");
    if (json_is_object(eq)) {
        aw_sb_put(b, "<h3>Outliers down the depth</h3>\n<p>Per fold point and layer: the largest channel's input "
                     "range over the median channel's, before and after equalization. Per-tensor INT8 spends its "
                     "256 steps on the largest channel: the lower this ratio, the more of them the ordinary "
                     "channels get.</p>\n");
        depth_outliers(b, eq, idp);
    }
    /* the worst layers */
    int total = n * 6;
    double *order = malloc((size_t)total * 2 * sizeof *order);
    if (!order) {
        b->failed = 1;
        goto done;
    }
    int m = 0;
    for (int k = 0; k < total; k++)
        if (isfinite(rel[k])) order[2 * m] = rel[k], order[2 * m + 1] = k, m++;
    qsort(order, (size_t)m, 2 * sizeof *order, cmp_desc);
    aw_sb_put(b, "<h3>Worst layers</h3>\n<table><tr><th class=\"l\">layer</th><th>relative error</th><th>SQNR (dB)</th>"
                 "</tr>\n");
    for (int i = 0; i < m && i < 10; i++) {
        int k = (int)order[2 * i + 1];
        aw_sb_printf(b, "<tr><td class=\"l\">layers.%d.%s</td>", k / 6, aw_html_lin_short[k % 6]);
        aw_html_num_cell(b, "%.4f", rel[k]);
        aw_html_num_cell(b, "%.1f", sq[k]);
        aw_sb_put(b, "</tr>\n");
    }
    aw_sb_put(b, "</table>\n");
    free(order);
    /* every layer, collapsed */
    aw_sb_put(b, "<details><summary>Every layer: relative error | SQNR (dB)</summary>\n<table><tr><th>layer</th>");
    for (int k = 0; k < 6; k++) aw_sb_printf(b, "<th>%s</th>", aw_html_lin_short[k]);
    for (int k = 0; k < 6; k++) aw_sb_printf(b, "<th>%s dB</th>", aw_html_lin_short[k]);
    aw_sb_put(b, "</tr>\n");
    for (int l = 0; l < n; l++) {
        aw_sb_printf(b, "<tr><td>%d</td>", l);
        for (int k = 0; k < 6; k++) aw_html_num_cell(b, "%.4f", rel[l * 6 + k]);
        for (int k = 0; k < 6; k++) aw_html_num_cell(b, "%.1f", sq[l * 6 + k]);
        aw_sb_put(b, "</tr>\n");
    }
    aw_sb_put(b, "</table></details>\n");
done:
    aw_sb_put(b, "</section>\n");
    free(rel);
    free(sq);
    free(x);
    free(y);
}

static void verdict(aw_sb *b, json_t *rep)
{
    summary s;
    aw_html_summarize(rep, &s);
    aw_sb_put(b, "<p class=\"verdict\">");
    if (isfinite(s.worst)) {
        aw_sb_put(b, "worst layer ");
        aw_sb_esc(b, s.worst_name);
        aw_sb_printf(b, ": relative error %.4f (SQNR %.1f dB); ", s.worst, s.worst_sqnr);
    }
    aw_sb_printf(b, "end to end: KL(fp&#8214;W8A8) %.4f, top-1 agreement %.1f%%, perplexity W8A8 / fp %.4f",
                 s.kl, 100.0 * s.top1, s.ratio);
    if (isfinite(s.ev_q)) {
        json_t *ev = json_object_get(rep, "eval_text");
        aw_sb_put(b, "; ");
        aw_sb_esc(b, aw_html_jstr(ev, "text", "eval text"));
        aw_sb_printf(b, " perplexity fp %.2f, W8A8 %.2f", s.ev_fp, s.ev_q);
    }
    aw_sb_put(b, "</p>\n");
}

void aw_html_title_of(json_t *rep, char *buf, size_t cap)
{
    char ml[64], bn[256];
    aw_html_method_label(rep, ml, sizeof ml);
    snprintf(buf, cap, "%s: %s W8A8", aw_html_base_name(aw_html_jstr(rep, "model", "?"), bn, sizeof bn), ml);
}

/* One report's sections; idp prefixes the plots' ids. */
void aw_html_render_one(aw_sb *b, json_t *rep, json_t *run, const char *idp)
{
    verdict(b, rep);
    section_setup(b, rep);
    section_run(b, run, idp);
    section_e2e(b, rep);
    section_equalization(b, rep, idp);
    section_depth(b, rep, idp);
}

