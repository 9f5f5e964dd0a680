/* aw_svg.c - text buffer and inline-SVG plots (see aw_svg.h). */
#include "aw_svg.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void aw_sb_init(aw_sb *b) { memset(b, 0, sizeof *b); }

void aw_sb_free(aw_sb *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static int grow(aw_sb *b, size_t need)
{
    if (b->failed) return 0;
    if (b->n + need + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + need + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

void aw_sb_put(aw_sb *b, const char *s)
{
    size_t n = strlen(s);
    if (!grow(b, n)) return;
    memcpy(b->p + b->n, s, n + 1);
    b->n += n;
}

void aw_sb_printf(aw_sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        aw_sb_put(b, small);
        return;
    }
    if (!grow(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

void aw_sb_esc(aw_sb *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': aw_sb_put(b, "&amp;"); break;
        case '<': aw_sb_put(b, "&lt;"); break;
        case '>': aw_sb_put(b, "&gt;"); break;
        case '"': aw_sb_put(b, "&quot;"); break;
        default: {
            char c[2] = {*s, '\0'};
            aw_sb_put(b, c);
        }
        }
    }
}

char *aw_sb_take(aw_sb *b)
{
    if (b->failed || !grow(b, 0)) {
        aw_sb_free(b);
        return NULL;
    }
    char *p = b->p;
    p[b->n] = '\0';
    memset(b, 0, sizeof *b);
    return p;
}

/* ---- plots ------------------------------------------------------------------ */

/* A "nice" step (1, 2 or 5 x 10^k) giving about `ticks` intervals. */
static double nice_step(double span, int ticks)
{
    if (!(span > 0)) return 1.0;
    double raw = span / ticks, p = pow(10.0, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

void aw_plot_frame(aw_plot *p, int w, int h, double x0, double x1, double ymin, double ymax, int logy)
{
    memset(p, 0, sizeof *p);
    p->w = w;
    p->h = h;
    p->ml = 58;
    p->mr = 12;
    p->mt = 28;
    p->mb = 40;
    p->x0 = x0;
    p->x1 = x1 > x0 ? x1 : x0 + 1;
    p->logy = logy;
    if (logy) {
        if (!(ymin > 0) || !isfinite(ymin)) ymin = 1e-3;
        if (!(ymax > 0) || !isfinite(ymax)) ymax = ymin * 10;
        p->y0 = floor(log10(ymin));
        p->y1 = ceil(log10(ymax));
        if (p->y1 <= p->y0) p->y1 = p->y0 + 1;
    } else {
        if (!isfinite(ymin) || !isfinite(ymax)) ymin = 0, ymax = 1;
        if (ymin >= 0 && ymin < 0.5 * ymax) ymin = 0;
        if (ymax <= ymin) ymax = ymin + 1;
        double st = nice_step(ymax - ymin, 5);
        p->y0 = floor(ymin / st) * st;
        p->y1 = ceil(ymax / st) * st;
    }
}

double aw_plot_px(const aw_plot *p, double x)
{
    return p->ml + (x - p->x0) / (p->x1 - p->x0) * (p->w - p->ml - p->mr);
}

double aw_plot_py(const aw_plot *p, double y)
{
    double v = p->logy ? log10(y) : y;
    return p->mt + (p->y1 - v) / (p->y1 - p->y0) * (p->h - p->mt - p->mb);
}

static void tick_label(char *buf, size_t cap, double v)
{
    if (v != 0 && (fabs(v) >= 1e5 || fabs(v) < 1e-3)) snprintf(buf, cap, "%.0e", v);
    else snprintf(buf, cap, "%g", v);
}

void aw_plot_begin(aw_sb *b, const aw_plot *p, const char *id, const char *title, const char *xlabel,
                   const char *ylabel)
{
    aw_sb_printf(b, "<svg class=\"plot\" id=\"%s\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                 "xmlns=\"http://www.w3.org/2000/svg\" role=\"img\">\n",
                 id, p->w, p->h, p->w, p->h);
    aw_sb_put(b, "<title>");
    aw_sb_esc(b, title);
    aw_sb_put(b, "</title>\n");
    aw_sb_put(b, "<text class=\"title\" x=\"8\" y=\"16\">");
    aw_sb_esc(b, title);
    aw_sb_put(b, "</text>\n");
    double L = p->ml, R = p->w - p->mr, T = p->mt, B = p->h - p->mb;
    aw_sb_printf(b, "<rect class=\"frame\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>\n", L, T, R - L,
                 B - T);
    char lab[32];
    /* y grid and ticks */
    if (p->logy) {
        int span = (int)(p->y1 - p->y0), every = span > 8 ? 2 : 1;
        for (int k = (int)p->y0; k <= (int)p->y1; k++) {
            double y = aw_plot_py(p, pow(10.0, k));
            aw_sb_printf(b, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", L, y, R, y);
            if ((k - (int)p->y0) % every) continue;
            tick_label(lab, sizeof lab, pow(10.0, k));
            aw_sb_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", L - 4,
                         y + 4, lab);
        }
    } else {
        double st = nice_step(p->y1 - p->y0, 5);
        for (double v = p->y0; v <= p->y1 + st * 1e-6; v += st) {
            double y = aw_plot_py(p, v);
            aw_sb_printf(b, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", L, y, R, y);
            tick_label(lab, sizeof lab, fabs(v) < st * 1e-6 ? 0.0 : v);
            aw_sb_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", L - 4,
                         y + 4, lab);
        }
    }
    /* x ticks */
    double st = nice_step(p->x1 - p->x0, 6);
    if (st < 1 && p->x1 - p->x0 >= 1) st = 1;
    for (double v = ceil(p->x0 / st) * st; v <= p->x1 + st * 1e-6; v += st) {
        double x = aw_plot_px(p, v);
        aw_sb_printf(b, "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x, B, x, B + 4);
        tick_label(lab, sizeof lab, v);
        aw_sb_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", x, B + 16,
                     lab);
    }
    aw_sb_printf(b, "<text class=\"label\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", (L + R) / 2, p->h - 6);
    aw_sb_esc(b, xlabel);
    aw_sb_put(b, "</text>\n");
    aw_sb_printf(b, "<text class=\"label\" transform=\"translate(12 %.1f) rotate(-90)\" text-anchor=\"middle\">",
                 (T + B) / 2);
    aw_sb_esc(b, ylabel);
    aw_sb_put(b, "</text>\n");
}

static int drawable(const aw_plot *p, double x, double y)
{
    return isfinite(x) && isfinite(y) && (!p->logy || y > 0);
}

int aw_plot_series(aw_sb *b, const aw_plot *p, const double *x, const double *y, int n, const char *color,
                   const char *dash, double width, const char *name)
{
    int drawn = 0, open = 0, in_run = 0;
    for (int i = 0; i <= n; i++) {
        int ok = i < n && drawable(p, x[i], y[i]);
        /* a run of points: a polyline of 2+ points, or a dot for a lone one */
        if (ok && !open) {
            in_run = 0;
            for (int j = i; j < n && drawable(p, x[j], y[j]); j++) in_run++;
            if (in_run == 1) {
                aw_sb_printf(b, "<circle class=\"mark\" cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n",
                             aw_plot_px(p, x[i]), aw_plot_py(p, y[i]), width + 0.5, color);
                drawn++;
                continue;
            }
            aw_sb_put(b, "<polyline class=\"mark\" data-series=\"");
            aw_sb_esc(b, name ? name : "");
            aw_sb_printf(b, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\"", color, width);
            if (dash) aw_sb_printf(b, " stroke-dasharray=\"%s\"", dash);
            aw_sb_put(b, " points=\"");
            open = 1;
        }
        if (ok && open) {
            aw_sb_printf(b, "%.1f,%.1f ", aw_plot_px(p, x[i]), aw_plot_py(p, y[i]));
            drawn++;
        }
        if (!ok && open) {
            aw_sb_put(b, "\"/>\n");
            open = 0;
        }
    }
    return drawn;
}

void aw_plot_marker(aw_sb *b, const aw_plot *p, double x, double y, double r, const char *color, int filled,
                    const char *attrs)
{
    if (!drawable(p, x, y)) return;
    aw_sb_printf(b, "<circle class=\"mark\" cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" ", aw_plot_px(p, x), aw_plot_py(p, y),
                 r);
    if (filled) aw_sb_printf(b, "fill=\"%s\"", color);
    else aw_sb_printf(b, "fill=\"white\" stroke=\"%s\" stroke-width=\"1.5\"", color);
    if (attrs) aw_sb_printf(b, " %s", attrs);
    aw_sb_put(b, "/>\n");
}

void aw_plot_legend_margin(aw_plot *p, int w)
{
    p->legend_w = w;
    p->mr += w;
}

void aw_plot_legend(aw_sb *b, const aw_plot *p, const char *const *names, const char *const *colors,
                    const char *const *dashes, int n)
{
    double x = p->legend_w > 0 ? p->w - p->legend_w + 8 : p->w - p->mr - 128, y = p->mt + 6;
    if (p->legend_w <= 0)
        aw_sb_printf(b, "<rect class=\"legend\" x=\"%.1f\" y=\"%.1f\" width=\"124\" height=\"%d\"/>\n", x - 4, y - 2,
                     n * 14 + 4);
    for (int i = 0; i < n; i++, y += 14) {
        aw_sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"%s%s%s/>\n",
                     x, y + 6, x + 18, y + 6, colors[i], dashes && dashes[i] ? " stroke-dasharray=\"" : "",
                     dashes && dashes[i] ? dashes[i] : "", dashes && dashes[i] ? "\"" : "");
        aw_sb_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\">", x + 22, y + 10);
        aw_sb_esc(b, names[i]);
        aw_sb_put(b, "</text>\n");
    }
}

void aw_plot_note(aw_sb *b, const aw_plot *p, const char *text)
{
    aw_sb_printf(b, "<text class=\"note\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", (p->ml + p->w - p->mr) / 2.0,
                 (p->mt + p->h - p->mb) / 2.0);
    aw_sb_esc(b, text);
    aw_sb_put(b, "</text>\n");
}

void aw_plot_end(aw_sb *b) { aw_sb_put(b, "</svg>\n"); }

void aw_bars(aw_sb *b, const char *id, const char *title, int w, const char *const *labels, const double *v, int n,
             const char *vfmt, const char *const *colors)
{
    int row = 20, top = 26, left = 170, right = 90, h = top + n * row + 8;
    double vmax = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]) && v[i] > vmax) vmax = v[i];
    aw_sb_printf(b, "<svg class=\"plot bars\" id=\"%s\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                 "xmlns=\"http://www.w3.org/2000/svg\" role=\"img\">\n",
                 id, w, h, w, h);
    aw_sb_put(b, "<title>");
    aw_sb_esc(b, title);
    aw_sb_put(b, "</title>\n<text class=\"title\" x=\"4\" y=\"16\">");
    aw_sb_esc(b, title);
    aw_sb_put(b, "</text>\n");
    for (int i = 0; i < n; i++) {
        double y = top + i * row, len = vmax > 0 && isfinite(v[i]) && v[i] > 0 ? (w - left - right) * v[i] / vmax : 0;
        aw_sb_printf(b, "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", left - 6, y + 13);
        aw_sb_esc(b, labels[i]);
        aw_sb_put(b, "</text>\n");
        /* a zero value still gets a visible sliver: the bar exists */
        aw_sb_printf(b, "<rect class=\"mark bar\" x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n", left,
                     y + 2, len > 1 ? len : 1.0, row - 5, colors ? colors[i] : "#4c78a8");
        char val[64];
        if (isfinite(v[i])) snprintf(val, sizeof val, vfmt, v[i]);
        else snprintf(val, sizeof val, "n/a");
        aw_sb_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\">", left + (len > 1 ? len : 1.0) + 5, y + 13);
        aw_sb_esc(b, val);
        aw_sb_put(b, "</text>\n");
    }
    aw_sb_put(b, "</svg>\n");
}
