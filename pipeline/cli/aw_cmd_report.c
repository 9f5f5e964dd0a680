/* aw_cmd_report.c - `aweq-dist report OUT [OUT2 ...] [--out FILE]`: the
 * page of aw_html.h from the reports' JSON files (see aw_cli.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aw_cli.h"
#include "aw_fs.h"
#include "aw_html.h"

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
            return aw_usage_error("report", "%s", "bad option");
        }
    }
    int n = argc - optind;
    if (n < 1) {
        return aw_usage_error("report", "%s", "expected one or more output folders");
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
