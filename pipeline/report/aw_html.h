/*
 * aw_html.h - report.html: one self-contained page (inline SVG and CSS, no
 * script, no network) drawn from aweq_report.json and, when present,
 * aweq_run.json:
 *   - model, method, scheme and calibration data; the run (ranks, layout,
 *     backend, times per phase, peak memory per rank);
 *   - end to end: perplexity fp and W8A8 (held-out windows, and the eval
 *     text, e.g. WikiText-2, when the run had one), KL, top-1 agreement;
 *   - per-channel input ranges of the shown layers before and after
 *     equalization (log scale) with the weight column ranges beside;
 *   - relative error and SQNR down the depth per linear type, the largest
 *     and median input range per fold point down the depth, the worst
 *     layers; every layer's numbers in a collapsed table;
 *   - with several reports, a comparison: the methods table, per-layer
 *     error of each report on one plot, KL, top-1 and perplexity ratio bars,
 *     then each report in full (collapsed).
 * The page depends only on the JSON given: the same files give the same
 * bytes. The run section (the only part drawn from aweq_run.json) sits
 * between the lines AW_HTML_RUN_BEGIN and AW_HTML_RUN_END, so that a check
 * of a checkpoint's reproducibility can cut it out and compare the rest.
 */
#ifndef AW_HTML_H
#define AW_HTML_H

#include <jansson.h>

#include "aw_status.h"

#define AW_HTML_RUN_BEGIN "<!-- aweq-run: begin (times, ranks, memory: differ from run to run) -->"
#define AW_HTML_RUN_END "<!-- aweq-run: end -->"

/* The page for n >= 1 reports (runs[i] may be NULL: no aweq_run.json);
 * names label the reports of a comparison (their folders; unused for one
 * report). *html is malloc'd. AW_ERR_ARG if a report is not an object. */
aw_status aw_html_render(json_t *const *reports, json_t *const *runs, const char *const *names, int n,
                         char **html);

#endif
