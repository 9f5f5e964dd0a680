/* aw_html.c - report.html: one report or several side by side (see
 * aw_html.h; the sections of one report in aw_html_report.c). */
#include "aw_html_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        aw_html_summarize(reps[i], &s[i]);
        aw_html_method_label(reps[i], ml, sizeof ml);
        snprintf(labels[i], sizeof labels[i], "%d. %s", i + 1, ml);
        lp[i] = labels[i];
        cols[i] = aw_html_palette[i % 10];
        any_eval |= isfinite(s[i].ev_q);
        any_run |= json_is_object(runs[i]);
        nl[i] = aw_html_layer_table(reps[i], &rel[i], &sq[i]);
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
        aw_html_method_label(reps[i], ml, sizeof ml);
        aw_sb_printf(b, "<tr><td>%d</td><td class=\"l\">", i + 1);
        aw_sb_esc(b, names ? names[i] : "?");
        aw_sb_put(b, "</td><td class=\"l\">");
        aw_sb_esc(b, ml);
        aw_sb_put(b, "</td><td class=\"l\">");
        aw_sb_esc(b, aw_html_base_name(aw_html_jstr(reps[i], "model", "?"), bn, sizeof bn));
        aw_sb_put(b, "</td>");
        aw_html_num_cell(b, "%.4f", s[i].fed_mean);
        aw_html_num_cell(b, "%.4f", s[i].worst);
        aw_html_num_cell(b, "%.4f", s[i].kl);
        aw_html_num_cell(b, "%.1f%%", 100.0 * s[i].top1);
        aw_html_num_cell(b, "%.4f", s[i].ratio);
        if (any_eval) {
            aw_html_num_cell(b, "%.2f", s[i].ev_fp);
            aw_html_num_cell(b, "%.2f", s[i].ev_q);
        }
        if (any_run) {
            json_t *t = json_object_get(runs[i], "times_s");
            double tot = aw_html_jnum(t, "load") + aw_html_jnum(t, "calibrate") + aw_html_jnum(t, "quantize") + aw_html_jnum(t, "validate") +
                         aw_html_jnum(t, "write");
            aw_html_num_cell(b, "%.1f s", tot);
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
        aw_html_title_of(reps[i], title, sizeof title);
        snprintf(idp, sizeof idp, "r%d-", i + 1);
        aw_sb_printf(b, "<details class=\"report\"><summary>%d. ", i + 1);
        aw_sb_esc(b, title);
        aw_sb_put(b, " (");
        aw_sb_esc(b, names ? names[i] : "?");
        aw_sb_put(b, ")</summary>\n");
        aw_html_render_one(b, reps[i], runs[i], idp);
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
    if (n == 1) aw_html_title_of(reports[0], title, sizeof title);
    else snprintf(title, sizeof title, "%d quantization reports compared", n);
    aw_sb_put(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>aweq-dist: ");
    aw_sb_esc(&b, title);
    aw_sb_put(&b, "</title>\n<style>\n" CSS "</style>\n</head>\n<body>\n<h1>");
    aw_sb_esc(&b, title);
    aw_sb_put(&b, "</h1>\n");
    if (n == 1) aw_html_render_one(&b, reports[0], runs ? runs[0] : NULL, "");
    else render_compare(&b, reports, runs, names, n);
    aw_sb_put(&b, "<footer><p class=\"muted\">Drawn by aweq-dist from aweq_report.json");
    aw_sb_put(&b, n == 1 ? " (and aweq_run.json for the run section); " : " files; ");
    aw_sb_put(&b, "redraw with <code>aweq-dist report OUT [OUT2 ...]</code>.</p></footer>\n</body>\n</html>\n");
    *html = aw_sb_take(&b);
    AW_RETURN_IF(!*html, AW_ERR_NOMEM, "out of memory for the HTML report");
    return AW_OK;
}

