/*
 * aw_svg.h - a growing text buffer and the few inline-SVG plots the HTML
 * report draws (line plots with linear or log10 y axes, markers, legends,
 * horizontal bars). Plain text out, no dependencies: the report is one
 * self-contained file that any browser shows, from a login node or a
 * laptop, with no network and no script.
 *
 * Every plot is an <svg class="plot"> whose data marks carry the class
 * "mark" (polylines of 2+ points, circles, bars), so a checker can tell an
 * empty plot from a drawn one. Coordinates are printed with one decimal:
 * the same data give the same bytes.
 */
#ifndef AW_SVG_H
#define AW_SVG_H

#include <stddef.h>

/* A text buffer; on allocation failure it stops growing and `failed` is
 * set (checked once at the end: aw_sb_take returns NULL). */
typedef struct {
    char *p;
    size_t n, cap;
    int failed;
} aw_sb;

void aw_sb_init(aw_sb *b);
void aw_sb_free(aw_sb *b);
void aw_sb_put(aw_sb *b, const char *s);
void aw_sb_printf(aw_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s with & < > " escaped (text and attribute values). */
void aw_sb_esc(aw_sb *b, const char *s);
/* The text (malloc'd, the buffer left empty), or NULL if an allocation failed. */
char *aw_sb_take(aw_sb *b);

/* A plot's frame: pixel size, margins and data ranges. */
typedef struct {
    int w, h;             /* the whole svg */
    int ml, mr, mt, mb;   /* margins around the data area */
    double x0, x1;        /* data x range */
    double y0, y1;        /* data y range (log10 of it when logy) */
    int logy;
    int legend_w;         /* > 0: the legend sits in a right margin this wide */
} aw_plot;

/* Frame for x in [x0, x1] and y in [ymin, ymax]: a log axis spans whole
 * decades around the positive values (ymin, ymax > 0 required), a linear
 * one a rounded range that includes 0 when ymin >= 0 is near it. */
void aw_plot_frame(aw_plot *p, int w, int h, double x0, double x1, double ymin, double ymax, int logy);
/* Pixel position of a data point (y must be > 0 on a log axis). */
double aw_plot_px(const aw_plot *p, double x);
double aw_plot_py(const aw_plot *p, double y);

/* <svg class="plot" id=...>, the title, axes, grid, ticks and labels. */
void aw_plot_begin(aw_sb *b, const aw_plot *p, const char *id, const char *title, const char *xlabel,
                   const char *ylabel);
/* A line through the points; points that are not finite (or <= 0 on a log
 * axis) break it. dash: NULL or an SVG dash array. Returns the points drawn. */
int aw_plot_series(aw_sb *b, const aw_plot *p, const double *x, const double *y, int n, const char *color,
                   const char *dash, double width, const char *name);
/* A circle at a data point; attrs: more attributes (data-*), or NULL. */
void aw_plot_marker(aw_sb *b, const aw_plot *p, double x, double y, double r, const char *color, int filled,
                    const char *attrs);
/* Keep a right margin of `w` pixels for the legend (call before the
 * points are placed: the data area narrows). */
void aw_plot_legend_margin(aw_plot *p, int w);
/* A legend: in the right margin kept for it, else in the top right corner
 * of the data area. */
void aw_plot_legend(aw_sb *b, const aw_plot *p, const char *const *names, const char *const *colors,
                    const char *const *dashes, int n);
/* Text in the middle of the data area (a plot with nothing to draw). */
void aw_plot_note(aw_sb *b, const aw_plot *p, const char *text);
void aw_plot_end(aw_sb *b);

/* Horizontal bars, one per label, with its value printed (printf format
 * vfmt, e.g. "%.1f s"); colors: one per bar, or NULL for one color. */
void aw_bars(aw_sb *b, const char *id, const char *title, int w, const char *const *labels, const double *v, int n,
             const char *vfmt, const char *const *colors);

#endif
