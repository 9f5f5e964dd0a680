/* aw_progress.c - progress lines, bar and JSON-lines log (see aw_progress.h). */
#include "aw_progress.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "aw_clock.h"

/* A terminal bar is redrawn at most this often (seconds). */
#define AW_BAR_EVERY_S 0.2
#define AW_BAR_WIDTH 24

struct aw_progress {
    aw_progress_opts o;
    FILE *out, *log;
    int bar;               /* drawing a bar instead of lines */
    int bar_shown;         /* a bar is on the terminal's current line */
    double t_origin;       /* clock at creation */
    /* the current phase */
    int active;
    char phase[32], unit[48];
    long total, lag, done;
    double tokens_per_unit;
    double t_begin, t_last_line;  /* elapsed seconds */
    double eta;
    int lines;
};

static double clock_now(const aw_progress *p)
{
    return p->o.clock ? p->o.clock(p->o.clock_ctx) : aw_now();
}

double aw_progress_elapsed(const aw_progress *p) { return p ? clock_now(p) - p->t_origin : 0.0; }
double aw_progress_eta(const aw_progress *p) { return p && p->active ? p->eta : -1.0; }
int aw_progress_lines(const aw_progress *p) { return p ? p->lines : 0; }

void aw_progress_defaults(aw_progress_opts *o)
{
    memset(o, 0, sizeof *o);
    o->print = 1;
    o->every_s = 10.0;
    o->bar = -1;
}

aw_status aw_progress_create(const aw_progress_opts *o, aw_progress **out)
{
    *out = NULL;
    aw_progress *p = calloc(1, sizeof *p);
    AW_RETURN_IF(!p, AW_ERR_NOMEM, "out of memory");
    p->o = *o;
    p->out = o->out ? o->out : stderr;
    p->bar = o->print && (o->bar > 0 || (o->bar < 0 && isatty(fileno(p->out))));
    if (o->log_path) {
        p->log = fopen(o->log_path, "w");
        if (!p->log) {
            int e = errno;
            free(p);
            return AW_FAIL(AW_ERR_IO, "--log-json %s: cannot create: %s", o->log_path, strerror(e));
        }
    }
    p->t_origin = clock_now(p);
    p->eta = -1.0;
    *out = p;
    return AW_OK;
}

static void clear_bar(aw_progress *p)
{
    if (!p->bar_shown) return;
    fputs("\r\033[K", p->out);
    p->bar_shown = 0;
}

void aw_progress_destroy(aw_progress *p)
{
    if (!p) return;
    clear_bar(p);
    if (p->log) fclose(p->log);
    free(p);
}

const char *aw_progress_fmt_secs(double s, char *buf, size_t cap)
{
    if (!(s >= 0.0) || !isfinite(s)) snprintf(buf, cap, "?");
    else if (s < 10.0) snprintf(buf, cap, "%.1f s", s);
    else if (s < 60.0) snprintf(buf, cap, "%.0f s", s);
    else if (s < 3600.0) snprintf(buf, cap, "%d min %02d s", (int)(s / 60), (int)fmod(s, 60.0));
    else snprintf(buf, cap, "%d h %02d min", (int)(s / 3600), (int)fmod(s / 60.0, 60.0));
    return buf;
}

/* One log line: {"event": name, "t": elapsed, "unix_time": wall, <fields>}. */
static void log_event(aw_progress *p, const char *name, json_t *fields)
{
    if (!p->log) {
        json_decref(fields);
        return;
    }
    json_t *e = json_object();
    struct timeval tv;
    gettimeofday(&tv, NULL);
    json_object_set_new(e, "event", json_string(name));
    /* microseconds and milliseconds: short numbers at the log's precision */
    json_object_set_new(e, "t", json_real(round(aw_progress_elapsed(p) * 1e6) / 1e6));
    json_object_set_new(e, "unix_time", json_real((double)tv.tv_sec + (double)(tv.tv_usec / 1000) * 1e-3));
    if (fields) json_object_update(e, fields);
    json_decref(fields);
    char *s = json_dumps(e, JSON_COMPACT | JSON_REAL_PRECISION(14));
    json_decref(e);
    if (s) {
        fputs(s, p->log);
        fputc('\n', p->log);
        fflush(p->log);
        free(s);
    }
}

void aw_progress_event(aw_progress *p, const char *name, json_t *fields)
{
    if (!p) {
        json_decref(fields);
        return;
    }
    log_event(p, name, fields);
}

/* Units per second over the whole phase so far. (Measured on opt-125m,
 * the first block of samples is no slower than the rest, while a single
 * slow block later is common on a shared node: the mean over every block
 * is the steadier estimate.) */
static double unit_rate(const aw_progress *p, double now)
{
    double el = now - p->t_begin;
    return p->done > 0 && el > 0 ? (double)p->done / el : 0.0;
}

static void rate_text(const aw_progress *p, double rate, char *buf, size_t cap)
{
    if (p->tokens_per_unit > 0) snprintf(buf, cap, "%.0f tokens/s", rate * p->tokens_per_unit);
    else if (rate >= 1.0 || rate == 0.0) snprintf(buf, cap, "%.1f/s", rate);
    else snprintf(buf, cap, "%.1f s each", 1.0 / rate);
}

void aw_progress_begin(aw_progress *p, const char *phase, long total, const char *unit,
                       double tokens_per_unit, long lag)
{
    if (!p) return;
    if (p->active) aw_progress_end(p);
    p->active = 1;
    snprintf(p->phase, sizeof p->phase, "%s", phase);
    snprintf(p->unit, sizeof p->unit, "%s", unit);
    p->total = total;
    p->lag = lag > 0 ? lag : 0;
    p->done = 0;
    p->tokens_per_unit = tokens_per_unit;
    p->t_begin = p->t_last_line = aw_progress_elapsed(p);
    p->eta = -1.0;
    p->lines = 0;
    json_t *f = json_object();
    json_object_set_new(f, "phase", json_string(phase));
    json_object_set_new(f, "total", json_integer(total));
    json_object_set_new(f, "unit", json_string(unit));
    json_object_set_new(f, "tokens_per_unit", json_real(tokens_per_unit));
    json_object_set_new(f, "lag", json_integer(p->lag));
    log_event(p, "phase_begin", f);
}

static void draw_bar(aw_progress *p, double rate)
{
    char bar[AW_BAR_WIDTH + 1], rt[96], left[32];
    int fill = p->total > 0 ? (int)((double)AW_BAR_WIDTH * (double)p->done / (double)p->total) : 0;
    for (int i = 0; i < AW_BAR_WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[AW_BAR_WIDTH] = '\0';
    rate_text(p, rate, rt, sizeof rt);
    fprintf(p->out, "\r\033[Kaweq-dist: %s [%s] %ld/%ld %s, %s, %s left", p->phase, bar, p->done, p->total, p->unit,
            rt, aw_progress_fmt_secs(p->eta, left, sizeof left));
    fflush(p->out);
    p->bar_shown = 1;
}

void aw_progress_step(aw_progress *p, long done)
{
    if (!p || !p->active) return;
    double now = aw_progress_elapsed(p);
    p->done = done;
    double rate = unit_rate(p, now);
    long left_units = p->total - done + p->lag;
    p->eta = rate > 0 ? (double)(left_units > 0 ? left_units : 0) / rate : -1.0;
    int due = p->o.print && (p->o.every_s <= 0 || now - p->t_last_line >= p->o.every_s);
    if (p->bar && p->o.print && (now - p->t_last_line >= AW_BAR_EVERY_S || done == p->total)) {
        draw_bar(p, rate);
        p->t_last_line = now;
        due = 0;
    }
    if (due) {
        char rt[96], el[32], left[32];
        rate_text(p, rate, rt, sizeof rt);
        fprintf(p->out, "aweq-dist: %s: %ld/%ld %s (%.0f%%), %s, %s elapsed, %s left\n", p->phase, done, p->total,
                p->unit, p->total > 0 ? 100.0 * (double)done / (double)p->total : 100.0, rt,
                aw_progress_fmt_secs(now - p->t_begin, el, sizeof el), aw_progress_fmt_secs(p->eta, left, sizeof left));
        fflush(p->out);
        p->t_last_line = now;
        p->lines++;
    }
    json_t *f = json_object();
    json_object_set_new(f, "phase", json_string(p->phase));
    json_object_set_new(f, "done", json_integer(done));
    json_object_set_new(f, "total", json_integer(p->total));
    json_object_set_new(f, "elapsed", json_real(now - p->t_begin));
    json_object_set_new(f, "per_s", json_real(rate));
    if (p->tokens_per_unit > 0) json_object_set_new(f, "tokens_per_s", json_real(rate * p->tokens_per_unit));
    json_object_set_new(f, "eta_s", p->eta >= 0 ? json_real(p->eta) : json_null());
    json_object_set_new(f, "printed", json_boolean(due));
    log_event(p, "progress", f);
}

void aw_progress_end(aw_progress *p)
{
    if (!p || !p->active) return;
    double now = aw_progress_elapsed(p), secs = now - p->t_begin;
    double rate = secs > 0 ? (double)p->done / secs : 0.0;
    if (p->o.print) {
        char rt[96], el[32];
        clear_bar(p);
        rate_text(p, rate, rt, sizeof rt);
        fprintf(p->out, "aweq-dist: %s: %ld/%ld %s in %s (%s)\n", p->phase, p->done, p->total, p->unit,
                aw_progress_fmt_secs(secs, el, sizeof el), rt);
        fflush(p->out);
        p->lines++;
    }
    json_t *f = json_object();
    json_object_set_new(f, "phase", json_string(p->phase));
    json_object_set_new(f, "done", json_integer(p->done));
    json_object_set_new(f, "total", json_integer(p->total));
    json_object_set_new(f, "unit", json_string(p->unit));
    json_object_set_new(f, "seconds", json_real(secs));
    json_object_set_new(f, "per_s", json_real(rate));
    if (p->tokens_per_unit > 0) json_object_set_new(f, "tokens_per_s", json_real(rate * p->tokens_per_unit));
    json_object_set_new(f, "lines", json_integer(p->lines));
    log_event(p, "phase_end", f);
    p->active = 0;
}

void aw_progress_note(aw_progress *p, const char *fmt, ...)
{
    if (!p) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->o.print) {
        clear_bar(p);
        fprintf(p->out, "aweq-dist: %s\n", msg);
        fflush(p->out);
    }
    json_t *f = json_object();
    json_object_set_new(f, "message", json_string(msg));
    log_event(p, "note", f);
}
