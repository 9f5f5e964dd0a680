/* aw_html_util.c - report.html's shared pieces: the report's JSON read
 * member by member, names and labels, the summary numbers, table cells
 * (see aw_html_int.h). */
#include "aw_html_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The six linear types, their short names and colors. */
const char *const aw_html_lin_short[6] = {"q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"};
const char *const aw_html_lin_color[6] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"};
const char *const aw_html_palette[10] = {"#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2",
                                        "#b279a2", "#eeca3b", "#9d755d", "#ff9da6", "#bab0ac"};

/* ---- JSON access ---------------------------------------------------------- */

double aw_html_jnum(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

int aw_html_jint(json_t *o, const char *key, int dflt)
{
    double v = aw_html_jnum(o, key);
    return isfinite(v) && fabs(v) < 1e9 ? (int)v : dflt;
}

const char *aw_html_jstr(json_t *o, const char *key, const char *dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : dflt;
}

const char *aw_html_base_name(const char *p, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", p ? p : "?");
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = '\0';
    const char *b = strrchr(buf, '/');
    return b ? b + 1 : buf;
}

/* "AWEQ", "AWEQ, no bias corr.", "SmoothQuant a=0.50", "RTN". */
void aw_html_method_label(json_t *rep, char *buf, size_t cap)
{
    const char *m = aw_html_jstr(rep, "method", "?");
    double a = aw_html_jnum(rep, "alpha");
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
        size_t n = strlen(name), m = strlen(aw_html_lin_short[k]);
        if (n > m && strcmp(name + n - m, aw_html_lin_short[k]) == 0 && name[n - m - 1] == '.') return k;
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
int aw_html_layer_table(json_t *rep, double **rel, double **sqnr)
{
    json_t *ls = json_object_get(rep, "layers"), *e;
    size_t i;
    int n = 0;
    json_array_foreach(ls, i, e)
    {
        int l = layer_of(aw_html_jstr(e, "name", ""));
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
        const char *name = aw_html_jstr(e, "name", "");
        int l = layer_of(name), k = lin_of(name);
        if (l < 0 || k < 0) continue;
        (*rel)[l * 6 + k] = aw_html_jnum(e, "rel_error");
        (*sqnr)[l * 6 + k] = aw_html_jnum(e, "sqnr_db");
    }
    return n;
}


void aw_html_summarize(json_t *rep, summary *s)
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
        const char *name = aw_html_jstr(e, "name", "");
        double r = aw_html_jnum(e, "rel_error");
        int k = lin_of(name);
        if (isfinite(r) && (k == 0 || k == 1 || k == 2 || k == 4)) sum += r, n++;
        if (isfinite(r) && r > s->worst) {
            s->worst = r;
            s->worst_sqnr = aw_html_jnum(e, "sqnr_db");
            snprintf(s->worst_name, sizeof s->worst_name, "%s", name);
        }
    }
    s->fed_mean = n ? sum / n : NAN;
    if (s->worst < 0) s->worst = NAN;
    json_t *ee = json_object_get(rep, "end_to_end");
    s->kl = aw_html_jnum(ee, "kl_divergence");
    s->top1 = aw_html_jnum(ee, "top1_agreement");
    s->ppl_fp = aw_html_jnum(ee, "perplexity_fp");
    s->ppl_q = aw_html_jnum(ee, "perplexity_w8a8");
    s->ratio = s->ppl_q / s->ppl_fp;
    json_t *ev = json_object_get(rep, "eval_text");
    s->ev_fp = aw_html_jnum(ev, "perplexity_fp");
    s->ev_q = aw_html_jnum(ev, "perplexity_w8a8");
}

void aw_html_num_cell(aw_sb *b, const char *fmt, double v)
{
    if (isfinite(v)) {
        aw_sb_put(b, "<td>");
        aw_sb_printf(b, fmt, v);
        aw_sb_put(b, "</td>");
    } else {
        aw_sb_put(b, "<td class=\"muted\">n/a</td>");
    }
}

void aw_html_kv_row(aw_sb *b, const char *k, const char *v)
{
    aw_sb_put(b, "<tr><td>");
    aw_sb_esc(b, k);
    aw_sb_put(b, "</td><td>");
    aw_sb_esc(b, v);
    aw_sb_put(b, "</td></tr>\n");
}

