/* aw_html.c - report.html from the report JSON (see aw_html.h). */
#include "aw_html.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aw_fs.h"
#include "aw_run.h"
#include "aw_svg.h"

/* The six linear types, their short names and colors. */
static const char *const lin_short[6] = {"q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"};
static const char *const lin_color[6] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"};
static const char *const palette[10] = {"#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2",
                                        "#b279a2", "#eeca3b", "#9d755d", "#ff9da6", "#bab0ac"};
#define C_XB "#d62728" /* activation range before equalization */
#define C_XA "#1f77b4" /* after */
#define C_WB "#8c8c8c" /* weight column range before */
#define C_WA "#2ca02c" /* after */

#define CSS                                                                                                  \
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:20px auto;"            \
    "max-width:1290px;padding:0 16px;color:#222}\n"                                                          \
    "h1{font-size:22px;margin:8px 0}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;"      \
    "margin-top:30px}h3{font-size:15px;margin:14px 0 6px}\n"                                                 \
    "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;"              \
    "text-align:right;vertical-align:top}th{background:#f4f4f4}td.l,th.l{text-align:left}\n"                \
    ".kv td:first-child{text-align:left;color:#555;white-space:nowrap}.kv td{text-align:left}\n"            \
    ".row{display:flex;flex-wrap:wrap;gap:6px;align-items:flex-start}.col{display:flex;flex-direction:column;gap:6px}\n"                                     \
    ".verdict{font-size:15px;background:#f6f8fa;border-left:4px solid #4c78a8;padding:8px 12px}\n"           \
    ".cmp td{white-space:nowrap}.muted{color:#666}.bad{color:#b00}details{margin:8px 0}summary{cursor:pointer;font-weight:600}\n"      \
    "svg.plot{background:#fff;font:11px system-ui,sans-serif;border:1px solid #eee}\n"                      \
    "svg .frame{fill:none;stroke:#999}svg .grid{stroke:#eee}svg .axis{stroke:#999}"                          \
    "svg .title{font-weight:600;font-size:12px}svg .tick{fill:#444}svg .label{fill:#333}"                   \
    "svg .legend{fill:#fff;fill-opacity:.85;stroke:#ccc}svg .note{fill:#999;font-size:13px}"                 \
    "svg .drop{stroke:#555;stroke-width:1}.keys .key{margin-right:18px;white-space:nowrap}\n"

/* ---- JSON access ---------------------------------------------------------- */

static double jnum(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static int jint(json_t *o, const char *key, int dflt)
{
    double v = jnum(o, key);
    return isfinite(v) && fabs(v) < 1e9 ? (int)v : dflt;
}

static const char *jstr(json_t *o, const char *key, const char *dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : dflt;
}

static const char *base_name(const char *p, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", p ? p : "?");
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = '\0';
    const char *b = strrchr(buf, '/');
    return b ? b + 1 : buf;
}

/* "AWEQ", "AWEQ, no bias corr.", "SmoothQuant a=0.50", "RTN". */
static void method_label(json_t *rep, char *buf, size_t cap)
{
    const char *m = jstr(rep, "method", "?");
    double a = jnum(rep, "alpha");
    int bc = json_is_true(json_object_get(rep, "bias_correction"));
    if (strcmp(m, "aweq") == 0) {
        size_t k = (size_t)snprintf(buf, cap, "AWEQ%s", bc ? "" : ", no bias corr.");
        if (isfinite(a) && fabs(a - 0.5) > 1e-6 && k < cap) snprintf(buf + k, cap - k, " a=%.2f", a);
    } else if (strcmp(m, "smoothquant") == 0) {
        snprintf(buf, cap, "SmoothQuant a=%.2f", a);
    } else if (strcmp(m, "rtn") == 0) {
        snprintf(buf, cap, "RTN");
    } else {
        snprintf(buf, cap, "%s", m);
    }
}

/* Index 0-5 of a layer entry's linear type from its name, or -1. */
static int lin_of(const char *name)
{
    for (int k = 0; k < 6; k++) {
        size_t n = strlen(name), m = strlen(lin_short[k]);
        if (n > m && strcmp(name + n - m, lin_short[k]) == 0 && name[n - m - 1] == '.') return k;
    }
    return -1;
}

/* "model.decoder.layers.7.fc1" -> 7, or -1. */
static int layer_of(const char *name)
{
    const char *p = strstr(name, "layers.");
    return p ? atoi(p + 7) : -1;
}

/* Per-layer table of one report: rel[l*6+k], sqnr[l*6+k]; returns layers. */
static int layer_table(json_t *rep, double **rel, double **sqnr)
{
    json_t *ls = json_object_get(rep, "layers"), *e;
    size_t i;
    int n = 0;
    json_array_foreach(ls, i, e)
    {
        int l = layer_of(jstr(e, "name", ""));
        if (l + 1 > n) n = l + 1;
    }
    *rel = malloc((size_t)(n ? n : 1) * 6 * sizeof(double));
    *sqnr = malloc((size_t)(n ? n : 1) * 6 * sizeof(double));
    if (!*rel || !*sqnr) {
        free(*rel);
        free(*sqnr);
        *rel = *sqnr = NULL;
        return -1;
    }
    for (int k = 0; k < n * 6; k++) (*rel)[k] = (*sqnr)[k] = NAN;
    json_array_foreach(ls, i, e)
    {
        const char *name = jstr(e, "name", "");
        int l = layer_of(name), k = lin_of(name);
        if (l < 0 || k < 0) continue;
        (*rel)[l * 6 + k] = jnum(e, "rel_error");
        (*sqnr)[l * 6 + k] = jnum(e, "sqnr_db");
    }
    return n;
}

/* The README's summary numbers of one report. */
typedef struct {
    double fed_mean;    /* mean rel. error over q, k, v_proj and fc1 */
    double worst;       /* largest rel. error */
    char worst_name[96];
    double worst_sqnr;
    double kl, top1, ppl_fp, ppl_q, ratio;
    double ev_fp, ev_q; /* eval text perplexities (NaN without) */
} summary;

static void summarize(json_t *rep, summary *s)
{
    memset(s, 0, sizeof *s);
    json_t *ls = json_object_get(rep, "layers"), *e;
    size_t i;
    double sum = 0;
    int n = 0;
    s->worst = -1;
    s->worst_sqnr = NAN;
    json_array_foreach(ls, i, e)
    {
        const char *name = jstr(e, "name", "");
        double r = jnum(e, "rel_error");
        int k = lin_of(name);
        if (isfinite(r) && (k == 0 || k == 1 || k == 2 || k == 4)) sum += r, n++;
        if (isfinite(r) && r > s->worst) {
            s->worst = r;
            s->worst_sqnr = jnum(e, "sqnr_db");
            snprintf(s->worst_name, sizeof s->worst_name, "%s", name);
        }
    }
    s->fed_mean = n ? sum / n : NAN;
    if (s->worst < 0) s->worst = NAN;
    json_t *ee = json_object_get(rep, "end_to_end");
    s->kl = jnum(ee, "kl_divergence");
    s->top1 = jnum(ee, "top1_agreement");
    s->ppl_fp = jnum(ee, "perplexity_fp");
    s->ppl_q = jnum(ee, "perplexity_w8a8");
    s->ratio = s->ppl_q / s->ppl_fp;
    json_t *ev = json_object_get(rep, "eval_text");
    s->ev_fp = jnum(ev, "perplexity_fp");
    s->ev_q = jnum(ev, "perplexity_w8a8");
}

static void num_cell(aw_sb *b, const char *fmt, double v)
{
    if (isfinite(v)) {
        aw_sb_put(b, "<td>");
        aw_sb_printf(b, fmt, v);
        aw_sb_put(b, "</td>");
    } else {
        aw_sb_put(b, "<td class=\"muted\">n/a</td>");
    }
}

static void kv_row(aw_sb *b, const char *k, const char *v)
{
    aw_sb_put(b, "<tr><td>");
    aw_sb_esc(b, k);
    aw_sb_put(b, "</td><td>");
    aw_sb_esc(b, v);
    aw_sb_put(b, "</td></tr>\n");
}

/* ---- sections of one report ------------------------------------------------ */

static void section_setup(aw_sb *b, json_t *rep)
{
    char buf[512], ml[64];
    json_t *cal = json_object_get(rep, "calibration");
    aw_sb_put(b, "<section class=\"setup\"><h2>Model, method and data</h2>\n<table class=\"kv\">\n");
    kv_row(b, "model", jstr(rep, "model", "?"));
    method_label(rep, ml, sizeof ml);
    snprintf(buf, sizeof buf, "%s (%s; alpha %.2f; bias correction %s)", ml, jstr(rep, "method", "?"),
             jnum(rep, "alpha"), json_is_true(json_object_get(rep, "bias_correction")) ? "on" : "off");
    kv_row(b, "method", buf);
    snprintf(buf, sizeof buf, "W8A8: weights %s; activations %s", jstr(rep, "weights", "?"),
             jstr(rep, "activations", "?"));
    kv_row(b, "scheme", buf);
    json_t *taps = json_object_get(json_object_get(rep, "equalization"), "taps"), *e;
    if (json_is_array(taps)) {
        size_t i, k = 0;
        buf[0] = '\0';
        json_array_foreach(taps, i, e)
        {
            if (!json_is_true(json_object_get(e, "equalized"))) continue;
            k += (size_t)snprintf(buf + k, k < sizeof buf ? sizeof buf - k : 0, "%s%s", k ? ", " : "",
                                  jstr(e, "tap", "?"));
        }
        kv_row(b, "equalized fold points", k ? buf : "none");
    }
    double seqs = jnum(cal, "sequences"), hold = jnum(cal, "heldout_sequences"), L = jnum(cal, "seq_len");
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
                 jnum(cal, "seed"), jstr(cal, "draw", ""));
    } else {
        snprintf(buf, sizeof buf, "%.0f sequences x %.0f tokens from a token file (%.0f tokens)", seqs, L, seqs * L);
    }
    kv_row(b, "calibration", buf);
    snprintf(buf, sizeof buf, "%.0f held-out sequences x %.0f tokens", hold, L);
    kv_row(b, "validation", buf);
    json_t *ev = json_object_get(rep, "eval_text");
    if (json_is_object(ev)) {
        snprintf(buf, sizeof buf, "%s: %.0f windows x %.0f tokens of its %.0f tokens", jstr(ev, "text", "?"),
                 jnum(ev, "windows"), jnum(ev, "seq_len"), jnum(ev, "text_tokens"));
        kv_row(b, "evaluation text", buf);
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
             jnum(run, "ranks"), jnum(run, "stages"), jnum(run, "replicas"), jstr(run, "handoff", "?"));
    kv_row(b, "ranks", buf);
    if (json_array_size(ranks) > 0) kv_row(b, "backend (rank 0)", jstr(json_array_get(ranks, 0), "device", "?"));
    double reused = jnum(run, "resumed_blocks");
    if (reused > 0) {
        snprintf(buf, sizeof buf, "%.0f blocks reused from their shards (--resume)", reused);
        kv_row(b, "resume", buf);
    }
    json_t *tps = json_object_get(run, "tokens_per_s");
    snprintf(buf, sizeof buf, "calibration %.0f tokens/s, validation %.0f tokens/s", jnum(tps, "calibrate"),
             jnum(tps, "validate"));
    kv_row(b, "throughput", buf);
    aw_sb_put(b, "</table>\n<div class=\"row\">\n");
    static const char *const phases[5] = {"load", "calibrate", "quantize", "validate", "write"};
    json_t *times = json_object_get(run, "times_s");
    double tv[5];
    for (int i = 0; i < 5; i++) tv[i] = jnum(times, phases[i]);
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
                snprintf(labels[i], sizeof labels[i], "rank %.0f: stage %.0f, layers %.0f-%.0f", jnum(e, "rank"),
                         jnum(e, "stage"), jnum(e, "first_layer"), jnum(e, "last_layer"));
                lp[i] = labels[i];
                mb[i] = jnum(e, "peak_memory_mb");
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
    double fp = jnum(e, "perplexity_fp"), q = jnum(e, "perplexity_w8a8");
    aw_sb_put(b, "<tr><td class=\"l\">");
    aw_sb_esc(b, what);
    aw_sb_put(b, "</td>");
    num_cell(b, "%.0f", jnum(e, "predicted_tokens"));
    num_cell(b, "%.4f", fp);
    num_cell(b, "%.4f", q);
    num_cell(b, "%.4f", q / fp);
    num_cell(b, "%.6f", jnum(e, "kl_divergence"));
    num_cell(b, "%.2f%%", 100.0 * jnum(e, "top1_agreement"));
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
        snprintf(what, sizeof what, "%s (%.0f windows x %.0f tokens)", jstr(ev, "text", "?"), jnum(ev, "windows"),
                 jnum(ev, "seq_len"));
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
    int nb[4] = {0}, ch = jint(tap, "channels", 0), per = jint(tap, "channels_per_bin", 1);
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
    snprintf(title, sizeof title, "layer %d %s%s", layer, jstr(tap, "tap", "?"), equalized ? "" : " (not equalized)");
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
        double c = jnum(e, "channel"), xb = jnum(e, "x_before"), xa = jnum(e, "x_after"), f = jnum(e, "factor");
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
        int layer = jint(le, "layer", -1);
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
                     jint(json_array_get(layers, 0), "layer", -1), jstr(t0, "tap", "?"));
        json_array_foreach(top, i, e)
        {
            if (i >= 8) break;
            aw_sb_put(b, "<tr>");
            num_cell(b, "%.0f", jnum(e, "channel"));
            num_cell(b, "%.4g", jnum(e, "x_before"));
            num_cell(b, "%.4g", jnum(e, "x_after"));
            num_cell(b, "%.4g", jnum(e, "factor"));
            num_cell(b, "%.4g", jnum(e, "x_before") / jnum(e, "x_after"));
            num_cell(b, "%.4g", jnum(e, "w_before"));
            num_cell(b, "%.4g", jnum(e, "w_after"));
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
        const char *tn = jstr(json_array_get(taps, (size_t)t), "tap", "?");
        double lo = INFINITY, hi = 0;
        for (int l = 0; l < n; l++) {
            json_t *d = json_object_get(json_array_get(dep, (size_t)l), tn);
            x[l] = jnum(json_array_get(dep, (size_t)l), "layer");
            yb[l] = jnum(d, "x_max_before") / jnum(d, "x_median_before");
            ya[l] = jnum(d, "x_max_after") / jnum(d, "x_median_after");
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
    int n = layer_table(rep, &rel, &sq);
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
            drawn += aw_plot_series(b, &p, x, y, n, lin_color[k], NULL, 1.5, lin_short[k]);
        }
        if (!drawn) aw_plot_note(b, &p, "no data");
        aw_plot_legend(b, &p, lin_short, lin_color, NULL, 6);
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
        aw_sb_printf(b, "<tr><td class=\"l\">layers.%d.%s</td>", k / 6, lin_short[k % 6]);
        num_cell(b, "%.4f", rel[k]);
        num_cell(b, "%.1f", sq[k]);
        aw_sb_put(b, "</tr>\n");
    }
    aw_sb_put(b, "</table>\n");
    free(order);
    /* every layer, collapsed */
    aw_sb_put(b, "<details><summary>Every layer: relative error | SQNR (dB)</summary>\n<table><tr><th>layer</th>");
    for (int k = 0; k < 6; k++) aw_sb_printf(b, "<th>%s</th>", lin_short[k]);
    for (int k = 0; k < 6; k++) aw_sb_printf(b, "<th>%s dB</th>", lin_short[k]);
    aw_sb_put(b, "</tr>\n");
    for (int l = 0; l < n; l++) {
        aw_sb_printf(b, "<tr><td>%d</td>", l);
        for (int k = 0; k < 6; k++) num_cell(b, "%.4f", rel[l * 6 + k]);
        for (int k = 0; k < 6; k++) num_cell(b, "%.1f", sq[l * 6 + k]);
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
    summarize(rep, &s);
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
        aw_sb_esc(b, jstr(ev, "text", "eval text"));
        aw_sb_printf(b, " perplexity fp %.2f, W8A8 %.2f", s.ev_fp, s.ev_q);
    }
    aw_sb_put(b, "</p>\n");
}

static void title_of(json_t *rep, char *buf, size_t cap)
{
    char ml[64], bn[256];
    method_label(rep, ml, sizeof ml);
    snprintf(buf, cap, "%s: %s W8A8", base_name(jstr(rep, "model", "?"), bn, sizeof bn), ml);
}

/* One report's sections; idp prefixes the plots' ids. */
static void render_one(aw_sb *b, json_t *rep, json_t *run, const char *idp)
{
    verdict(b, rep);
    section_setup(b, rep);
    section_run(b, run, idp);
    section_e2e(b, rep);
    section_equalization(b, rep, idp);
    section_depth(b, rep, idp);
}

/* ---- several reports ---------------------------------------------------------- */

static void render_compare(aw_sb *b, json_t *const *reps, json_t *const *runs, const char *const *names, int n)
{
    summary *s = calloc((size_t)n, sizeof *s);
    char(*labels)[160] = calloc((size_t)n, sizeof *labels);
    const char **lp = calloc((size_t)n, sizeof *lp), **cols = calloc((size_t)n, sizeof *cols);
    double *v = calloc((size_t)n, sizeof *v);
    double **rel = calloc((size_t)n, sizeof *rel), **sq = calloc((size_t)n, sizeof *sq);
    int *nl = calloc((size_t)n, sizeof *nl), any_eval = 0, any_run = 0, max_l = 0;
    if (!s || !labels || !lp || !cols || !v || !rel || !sq || !nl) {
        b->failed = 1;
        goto done;
    }
    for (int i = 0; i < n; i++) {
        char ml[64];
        summarize(reps[i], &s[i]);
        method_label(reps[i], ml, sizeof ml);
        snprintf(labels[i], sizeof labels[i], "%d. %s", i + 1, ml);
        lp[i] = labels[i];
        cols[i] = palette[i % 10];
        any_eval |= isfinite(s[i].ev_q);
        any_run |= json_is_object(runs[i]);
        nl[i] = layer_table(reps[i], &rel[i], &sq[i]);
        if (nl[i] < 0) b->failed = 1;
        max_l = nl[i] > max_l ? nl[i] : max_l;
    }
    aw_sb_put(b, "<section class=\"compare\"><h2>Methods side by side</h2>\n<table class=\"cmp\"><tr><th>#</th>"
                 "<th class=\"l\">report</th><th class=\"l\">method</th><th class=\"l\">model</th>"
                 "<th>q/k/v/fc1 rel. error (mean)</th><th>worst layer rel. error</th><th>KL(fp&#8214;W8A8)</th>"
                 "<th>top-1 agreement</th><th>W8A8 / fp perplexity</th>");
    if (any_eval) aw_sb_put(b, "<th>eval text: perplexity fp</th><th>eval text: perplexity W8A8</th>");
    if (any_run) aw_sb_put(b, "<th>job time</th>");
    aw_sb_put(b, "</tr>\n");
    for (int i = 0; i < n; i++) {
        char ml[64], bn[256];
        method_label(reps[i], ml, sizeof ml);
        aw_sb_printf(b, "<tr><td>%d</td><td class=\"l\">", i + 1);
        aw_sb_esc(b, names ? names[i] : "?");
        aw_sb_put(b, "</td><td class=\"l\">");
        aw_sb_esc(b, ml);
        aw_sb_put(b, "</td><td class=\"l\">");
        aw_sb_esc(b, base_name(jstr(reps[i], "model", "?"), bn, sizeof bn));
        aw_sb_put(b, "</td>");
        num_cell(b, "%.4f", s[i].fed_mean);
        num_cell(b, "%.4f", s[i].worst);
        num_cell(b, "%.4f", s[i].kl);
        num_cell(b, "%.1f%%", 100.0 * s[i].top1);
        num_cell(b, "%.4f", s[i].ratio);
        if (any_eval) {
            num_cell(b, "%.2f", s[i].ev_fp);
            num_cell(b, "%.2f", s[i].ev_q);
        }
        if (any_run) {
            json_t *t = json_object_get(runs[i], "times_s");
            double tot = jnum(t, "load") + jnum(t, "calibrate") + jnum(t, "quantize") + jnum(t, "validate") +
                         jnum(t, "write");
            num_cell(b, "%.1f s", tot);
        }
        aw_sb_put(b, "</tr>\n");
    }
    aw_sb_put(b, "</table>\n<div class=\"row\">\n");
    /* per-layer error of the outlier-fed linears, one line per report */
    double *x = malloc((size_t)(max_l ? max_l : 1) * sizeof *x), *y = malloc((size_t)(max_l ? max_l : 1) * sizeof *y);
    if (!x || !y) {
        b->failed = 1;
    } else {
        double lo = INFINITY, hi = 0;
        for (int i = 0; i < n; i++)
            for (int l = 0; l < nl[i]; l++)
                for (int k = 0; k < 6; k++) {
                    double r = rel[i][l * 6 + k];
                    if (r > 0 && isfinite(r)) lo = r < lo ? r : lo, hi = r > hi ? r : hi;
                }
        aw_plot p;
        aw_plot_frame(&p, 620, 320, 0, max_l > 1 ? max_l - 1 : 1, lo, hi, 1);
        aw_plot_legend_margin(&p, 150);
        aw_plot_begin(b, &p, "cmp-relerr", "Relative error per layer, mean of q/k/v_proj and fc1", "layer",
                      "relative error");
        int drawn = 0;
        for (int i = 0; i < n; i++) {
            for (int l = 0; l < nl[i]; l++) {
                double sum = 0;
                int c = 0;
                for (int k = 0; k < 6; k++) {
                    double r = rel[i][l * 6 + k];
                    if ((k <= 2 || k == 4) && isfinite(r)) sum += r, c++;
                }
                x[l] = l;
                y[l] = c ? sum / c : NAN;
            }
            drawn += aw_plot_series(b, &p, x, y, nl[i], cols[i], NULL, 1.8, labels[i]);
        }
        if (!drawn) aw_plot_note(b, &p, "no data");
        aw_plot_legend(b, &p, lp, cols, NULL, n);
        aw_plot_end(b);
    }
    free(x);
    free(y);
    aw_sb_put(b, "<div class=\"col\">\n");
    for (int i = 0; i < n; i++) v[i] = s[i].kl;
    aw_bars(b, "cmp-kl", "KL(fp||W8A8), lower is better", 600, lp, v, n, "%.4f", cols);
    for (int i = 0; i < n; i++) v[i] = 100.0 * s[i].top1;
    aw_bars(b, "cmp-top1", "Top-1 agreement with fp (%), higher is better", 600, lp, v, n, "%.1f%%", cols);
    for (int i = 0; i < n; i++) v[i] = s[i].ratio;
    aw_bars(b, "cmp-ppl", "Perplexity W8A8 / fp, closer to 1 is better", 600, lp, v, n, "%.4f", cols);
    aw_sb_put(b, "</div>\n</div>\n</section>\n");
    for (int i = 0; i < n; i++) {
        char title[320], idp[16];
        title_of(reps[i], title, sizeof title);
        snprintf(idp, sizeof idp, "r%d-", i + 1);
        aw_sb_printf(b, "<details class=\"report\"><summary>%d. ", i + 1);
        aw_sb_esc(b, title);
        aw_sb_put(b, " (");
        aw_sb_esc(b, names ? names[i] : "?");
        aw_sb_put(b, ")</summary>\n");
        render_one(b, reps[i], runs[i], idp);
        aw_sb_put(b, "</details>\n");
    }
done:
    for (int i = 0; rel && sq && i < n; i++) {
        free(rel[i]);
        free(sq[i]);
    }
    free(s);
    free(labels);
    free(lp);
    free(cols);
    free(v);
    free(rel);
    free(sq);
    free(nl);
}

aw_status aw_html_render(json_t *const *reports, json_t *const *runs, const char *const *names, int n, char **html)
{
    *html = NULL;
    AW_RETURN_IF(n < 1, AW_ERR_ARG, "no report to render");
    for (int i = 0; i < n; i++)
        AW_RETURN_IF(!json_is_object(reports[i]), AW_ERR_ARG, "%s: the report is not a JSON object",
                     names ? names[i] : "report");
    aw_sb b;
    aw_sb_init(&b);
    char title[320];
    if (n == 1) title_of(reports[0], title, sizeof title);
    else snprintf(title, sizeof title, "%d quantization reports compared", n);
    aw_sb_put(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>aweq-dist: ");
    aw_sb_esc(&b, title);
    aw_sb_put(&b, "</title>\n<style>\n" CSS "</style>\n</head>\n<body>\n<h1>");
    aw_sb_esc(&b, title);
    aw_sb_put(&b, "</h1>\n");
    if (n == 1) render_one(&b, reports[0], runs ? runs[0] : NULL, "");
    else render_compare(&b, reports, runs, names, n);
    aw_sb_put(&b, "<footer><p class=\"muted\">Drawn by aweq-dist from aweq_report.json");
    aw_sb_put(&b, n == 1 ? " (and aweq_run.json for the run section); " : " files; ");
    aw_sb_put(&b, "redraw with <code>aweq-dist report OUT [OUT2 ...]</code>.</p></footer>\n</body>\n</html>\n");
    *html = aw_sb_take(&b);
    AW_RETURN_IF(!*html, AW_ERR_NOMEM, "out of memory for the HTML report");
    return AW_OK;
}

/* ---- the report command ---------------------------------------------------------- */

#define AW_REPORT_MAX_BYTES (256u << 20)

/* A JSON file (NULL in *out, AW_OK, if optional and absent). */
static aw_status load_json(const char *path, int optional, json_t **out)
{
    *out = NULL;
    struct stat sb;
    if (optional && stat(path, &sb) != 0) return AW_OK;
    char *text = NULL;
    size_t len = 0;
    AW_TRY(aw_read_file(path, AW_REPORT_MAX_BYTES, &text, &len));
    json_error_t je;
    *out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    AW_RETURN_IF(!*out, AW_ERR_CONFIG, "%s: invalid JSON at line %d column %d: %s", path, je.line, je.column, je.text);
    AW_RETURN_IF(!json_is_object(*out), AW_ERR_CONFIG, "%s: not a JSON object", path);
    AW_RETURN_IF(!optional && !json_is_array(json_object_get(*out, "layers")), AW_ERR_CONFIG,
                 "%s: no \"layers\": not an aweq_report.json", path);
    return AW_OK;
}

/* The report and run files of a folder (or of a report file named directly). */
static aw_status load_pair(const char *arg, json_t **rep, json_t **run)
{
    struct stat sb;
    AW_RETURN_IF(stat(arg, &sb) != 0, AW_ERR_IO, "%s: no such folder or file", arg);
    char *rp = NULL, *up = NULL;
    if (S_ISDIR(sb.st_mode)) {
        rp = aw_path_join(arg, "aweq_report.json");
        up = aw_path_join(arg, "aweq_run.json");
    } else {
        /* FILE.json: the run file beside it, if any */
        const char *slash = strrchr(arg, '/');
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - arg) : 1, slash ? arg : ".");
        rp = strdup(arg);
        up = aw_path_join(dir, "aweq_run.json");
    }
    aw_status st = rp && up ? AW_OK : AW_FAIL(AW_ERR_NOMEM, "out of memory");
    if (st == AW_OK) st = load_json(rp, 0, rep);
    if (st == AW_OK) st = load_json(up, 1, run);
    free(rp);
    free(up);
    return st;
}

int aw_cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {{"out", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        if (c == 'o') {
            out = optarg;
        } else if (c == 'h') {
            printf("usage: aweq-dist report OUT [OUT2 ...] [--out FILE]\n"
                   "  Draw report.html from OUT/aweq_report.json (and OUT/aweq_run.json when present);\n"
                   "  with several folders, a comparison of them. Default FILE: OUT/report.html for one\n"
                   "  folder, ./report.html for several.\n");
            return 0;
        } else {
            fprintf(stderr, "aweq-dist: report: bad option\nTry 'aweq-dist report --help'.\n");
            return 2;
        }
    }
    int n = argc - optind;
    if (n < 1) {
        fprintf(stderr, "aweq-dist: report: expected one or more output folders\nTry 'aweq-dist report --help'.\n");
        return 2;
    }
    json_t **reps = calloc((size_t)n, sizeof *reps), **runs = calloc((size_t)n, sizeof *runs);
    char *html = NULL, *dflt = NULL;
    aw_status st = reps && runs ? AW_OK : AW_FAIL(AW_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && st == AW_OK; i++) st = load_pair(argv[optind + i], &reps[i], &runs[i]);
    if (st == AW_OK) st = aw_html_render(reps, runs, (const char *const *)(argv + optind), n, &html);
    if (st == AW_OK && !out) {
        struct stat sb;
        if (n == 1 && stat(argv[optind], &sb) == 0 && S_ISDIR(sb.st_mode)) out = dflt = aw_path_join(argv[optind], "report.html");
        else out = "report.html";
        if (!out) st = AW_FAIL(AW_ERR_NOMEM, "out of memory");
    }
    if (st == AW_OK) st = aw_write_file_atomic(out, html, strlen(html));
    if (st == AW_OK) printf("wrote %s (%d report%s)\n", out, n, n > 1 ? "s" : "");
    for (int i = 0; reps && runs && i < n; i++) {
        json_decref(reps[i]);
        json_decref(runs[i]);
    }
    free(reps);
    free(runs);
    free(html);
    free(dflt);
    if (st != AW_OK) {
        fflush(stdout);
        aw_print_error(st, 0, 1);
        return 1;
    }
    return 0;
}
