/* aw_cmd_sweep.c - `aweq-dist sweep`: the options, the grid file (one
 * point per line: a run's method and scheme options, read with the same
 * parser as `run`'s), the sweep over the process's world, the table on
 * stdout (see aw_cli.h, aw_run.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_cli.h"
#include "aw_resolve.h"
#include "aw_run.h"

#define AW_SWEEP_MAX_POINTS 4096

static void sweep_usage(FILE *out)
{
    fputs("Usage: aweq-dist sweep --model DIR --calib-text F --eval-text F --grid FILE\n"
          "                       --out DIR [options]\n"
          "  Calibrate once, then quantize and evaluate every point of a grid of\n"
          "  methods and schemes: the perplexity of the eval text for each, in\n"
          "  DIR/sweep.md (a table: schemes by methods) and DIR/sweep.json (the same\n"
          "  bytes for any number of ranks), times in DIR/sweep_run.json. Nothing\n"
          "  else is written. Under mpirun, when every rank holds the whole model\n"
          "  (one stage), the points run side by side on groups of ranks (point i\n"
          "  on group i % min(points, ranks), whose ranks split its windows); with\n"
          "  more stages one after the other over all ranks. The hang timeout must\n"
          "  cover one point: a rank waits for the round's other points.\n"
          "  --grid FILE          a point per line: a run's method and scheme options,\n"
          "                       e.g. --method awq --wbits 4 --group 128 --abits 4\n"
          "                       --agroup 128 --adynamic; '#' comments, blank lines\n"
          "  --calib FILE | --calib-text FILE [--text-field NAME]  calibration, as a run\n"
          "  --calib-samples N --calib-len L --seed S  the window draw, as a run\n"
          "  --eval-text FILE     the text whose perplexity each point gets\n"
          "  --kl                 also KL(fp || quantized) and top-1 agreement per point\n"
          "                       (the fp model runs beside every point: slower)\n"
          "  --eval-windows N     only its first N windows (default all): a quicker\n"
          "                       sweep, each point's perplexity on the same windows\n"
          "  --out DIR            the tables' folder (created; its parent must exist)\n"
          "  --batch B --backend B --cpu-precision P --handoff H --stages S --replicas R\n"
          "  --mem-per-rank G --hang-timeout S --progress-every S --log-json FILE\n"
          "  --quiet              as for a run\n",
          out);
}

static int sweep_usage_error(const char *fmt, const char *arg) { return aw_usage_error("sweep", fmt, arg); }

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
    size_t k = strspn(s, " \t");
    if (k) memmove(s, s + k, n - k + 1);
}

/* The grid file's points: 0, 2 after a usage line naming FILE:line, 1 after
 * an error line (the file cannot be read). */
static int read_grid(const char *path, aw_sweep_point **out, int *n_out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        aw_status st = AW_FAIL(AW_ERR_IO, "%s: cannot read the grid: %s", path, strerror(errno));
        aw_print_error(st, 0, 1);
        return 1;
    }
    aw_sweep_point *pts = NULL;
    int n = 0, cap = 0, lineno = 0, rc = 0;
    char line[4096], msg[400], where[4096 + 512];
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n' && !feof(f)) {
            snprintf(where, sizeof where, "%s:%d: line longer than %zu characters", path, lineno, sizeof line - 2);
            rc = sweep_usage_error("%s", where);
            break;
        }
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        trim(line);
        if (!line[0]) continue;
        if (strlen(line) >= AW_SWEEP_TEXT_MAX) {
            snprintf(where, sizeof where, "%s:%d: a point's options are longer than %d characters", path, lineno,
                     AW_SWEEP_TEXT_MAX - 1);
            rc = sweep_usage_error("%s", where);
            break;
        }
        if (n == AW_SWEEP_MAX_POINTS) {
            snprintf(where, sizeof where, "%s:%d: more than %d points", path, lineno, AW_SWEEP_MAX_POINTS);
            rc = sweep_usage_error("%s", where);
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            aw_sweep_point *p = realloc(pts, (size_t)cap * sizeof *pts);
            if (!p) {
                aw_print_error(AW_FAIL(AW_ERR_NOMEM, "out of memory for the grid"), 0, 1);
                rc = 1;
                break;
            }
            pts = p;
        }
        aw_sweep_point *pt = &pts[n];
        memset(pt, 0, sizeof *pt);
        pt->line = lineno;
        memcpy(pt->text, line, strlen(line) + 1); /* shorter than AW_SWEEP_TEXT_MAX: checked above */
        aw_run_opts d;
        aw_run_defaults(&d);
        pt->method = d.method;
        if (aw_cli_method_parse_line(line, &pt->method, msg, sizeof msg)) {
            snprintf(where, sizeof where, "%s:%d: %s", path, lineno, msg);
            rc = sweep_usage_error("%s", where);
            break;
        }
        n++;
    }
    if (rc == 0 && ferror(f)) {
        aw_print_error(AW_FAIL(AW_ERR_IO, "%s: read error", path), 0, 1);
        rc = 1;
    }
    fclose(f);
    if (rc == 0 && n == 0) {
        snprintf(where, sizeof where, "%s: no points (a line per point, e.g. --method rtn --wbits 4)", path);
        rc = sweep_usage_error("%s", where);
    }
    if (rc) {
        free(pts);
        return rc;
    }
    *out = pts;
    *n_out = n;
    return 0;
}

int aw_cmd_sweep(int argc, char **argv)
{
    enum { O_GRID = 1000, O_OUT, O_EWIN, O_KL };
    static const struct option opts[] = {
        AW_CLI_JOB_LONGOPTS,
        {"grid", required_argument, 0, O_GRID},           {"out", required_argument, 0, O_OUT},
        {"eval-windows", required_argument, 0, O_EWIN},   {"kl", no_argument, 0, O_KL},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    aw_run_opts o;
    aw_run_defaults(&o);
    o.holdout = 0.0; /* nothing is validated: every window calibrates */
    aw_cli_job_opts jo;
    aw_cli_job_init(&jo, &o);
    const char *grid = NULL;
    int c;
    uint32_t eval_windows = 0;
    int with_kl = 0;
    long v;
    char msg[320];
    optind = 1;
    opterr = 0; /* our own message for a bad option */
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_GRID: grid = optarg; break;
        case O_KL: with_kl = 1; break;
        case O_EWIN:
            if (aw_cli_parse_int(optarg, 1, 1 << 24, &v)) return sweep_usage_error("--eval-windows '%s': expected 1..16777216", optarg);
            eval_windows = (uint32_t)v;
            break;
        case O_OUT: o.out_dir = optarg; break;
        case 'h': sweep_usage(stdout); return 0;
        case ':': return sweep_usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            if (c >= AW_JO_MODEL && c < AW_JO_END) {
                if (aw_cli_job_apply(&jo, &o, c, optarg, msg, sizeof msg)) return sweep_usage_error("%s", msg);
                break;
            }
            return sweep_usage_error("unknown option '%s' (method and scheme options go in the --grid file)",
                                     argv[optind - 1]);
        }
    }
    if (optind < argc) return sweep_usage_error("unexpected argument '%s'", argv[optind]);
    if (!o.model_dir) return sweep_usage_error("%s", "--model DIR is required");
    if (!o.eval_text) return sweep_usage_error("%s", "--eval-text FILE is required (the perplexity each point gets)");
    if (!grid) return sweep_usage_error("%s", "--grid FILE is required (a point per line)");
    if (!o.out_dir) return sweep_usage_error("%s", "--out DIR is required (where the tables go)");
    if (aw_cli_job_finish(&jo, &o, msg, sizeof msg)) return sweep_usage_error("%s", msg);
    aw_sweep_point *pts = NULL;
    int n_pts = 0;
    int rc = read_grid(grid, &pts, &n_pts);
    if (rc) return rc;

    char *model_dir = NULL;
    aw_status rs = aw_resolve_model(o.model_dir, &model_dir);
    if (rs != AW_OK) {
        free(pts);
        aw_print_error(rs, 0, 1);
        return 1;
    }
    o.model_dir = model_dir;
    const aw_comm *w = aw_comm_world();
    if (!w) {
        free(pts);
        free(model_dir);
        aw_print_error(AW_ERR_MPI, 0, 1);
        return 1;
    }
    aw_sweep_result r;
    aw_status st = aw_sweep_comm(&o, pts, n_pts, eval_windows, with_kl, w, &r);
    if (st == AW_OK && w->rank == 0) {
        char *md = NULL;
        if (aw_sweep_markdown(&o, pts, &r, &md) == AW_OK) fputs(md, stdout);
        free(md);
        fflush(stdout);
    }
    aw_sweep_result_free(&r);
    free(pts);
    o.model_dir = NULL;
    free(model_dir);
    if (st == AW_OK) return 0;
    return aw_cli_end_job(w, st, NULL); /* as a run ends: nothing to resume */
}
