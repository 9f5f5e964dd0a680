/*
 * aw_html_int.h - private to pipeline/report/: what the parts of
 * report.html share (aw_html.h): colors, the page's CSS, reading the
 * report's JSON, the summary numbers, table cells, one report's sections.
 */
#ifndef AW_HTML_INT_H
#define AW_HTML_INT_H

#include <jansson.h>
#include <stddef.h>

#include "aw_html.h"
#include "aw_svg.h"

/* The six linear types, their short names and colors; the comparison's palette. */
extern const char *const aw_html_lin_short[6];
extern const char *const aw_html_lin_color[6];
extern const char *const aw_html_palette[10];
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
/* The README's summary numbers of one report. */
typedef struct {
    double fed_mean;    /* mean rel. error over q, k, v_proj and fc1 */
    double worst;       /* largest rel. error */
    char worst_name[96];
    double worst_sqnr;
    double kl, top1, ppl_fp, ppl_q, ratio;
    double ev_fp, ev_q; /* eval text perplexities (NaN without) */
} summary;

/* aw_html_util.c: JSON members (NaN / dflt when missing), names, tables. */
double aw_html_jnum(json_t *o, const char *key);
int aw_html_jint(json_t *o, const char *key, int dflt);
const char *aw_html_jstr(json_t *o, const char *key, const char *dflt);
const char *aw_html_base_name(const char *p, char *buf, size_t cap);
void aw_html_method_label(json_t *rep, char *buf, size_t cap);
/* (layers x 6) relative errors and SQNRs (malloc'd); the layer count. */
int aw_html_layer_table(json_t *rep, double **rel, double **sqnr);
void aw_html_summarize(json_t *rep, summary *s);
void aw_html_num_cell(aw_sb *b, const char *fmt, double v);
void aw_html_kv_row(aw_sb *b, const char *k, const char *v);

/* aw_html_report.c: one report's title and its sections in full. */
void aw_html_title_of(json_t *rep, char *buf, size_t cap);
void aw_html_render_one(aw_sb *b, json_t *rep, json_t *run, const char *idp);

#endif
