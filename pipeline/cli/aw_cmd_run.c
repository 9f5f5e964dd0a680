/* aw_cmd_run.c - the quantization run's command line: options into
 * aw_run_opts, the run over the process's world, the result table, and the
 * decision how a failed rank ends (see aw_cli.h, aw_run.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aw_cli.h"
#include "aw_resolve.h"
#include "aw_run.h"

int aw_cmd_run(int argc, char **argv)
{
    enum { O_OUT = 1000, O_HOLDOUT, O_MAXERR, O_RESUME, O_RLAYERS };
    static const struct option opts[] = {
        AW_CLI_JOB_LONGOPTS,
        AW_CLI_METHOD_LONGOPTS,
        {"out", required_argument, 0, O_OUT},         {"holdout", required_argument, 0, O_HOLDOUT},
        {"max-rel-error", required_argument, 0, O_MAXERR},
        {"resume", no_argument, 0, O_RESUME},         {"report-layers", required_argument, 0, O_RLAYERS},
        {"help", no_argument, 0, 'h'},                {0, 0, 0, 0}};
    aw_run_opts o;
    aw_run_defaults(&o);
    aw_cli_job_opts jo;
    aw_cli_job_init(&jo, &o);
    aw_cli_method_opts mo;
    aw_cli_method_init(&mo);
    char msg[320];
    int c;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_OUT: o.out_dir = optarg; break;
        case O_HOLDOUT:
            o.holdout = strtod(optarg, &end);
            if (*end || end == optarg || !(o.holdout >= 0.0 && o.holdout < 1.0))
                return aw_usage_error(NULL, "--holdout '%s': expected a share in [0, 1)", optarg);
            break;
        case O_MAXERR:
            o.max_rel_error = strtod(optarg, &end);
            if (*end || end == optarg || !(o.max_rel_error > 0))
                return aw_usage_error(NULL, "--max-rel-error '%s': expected a positive number", optarg);
            break;
        case O_RLAYERS: {
            /* "0,12,23": checked against the model once it is read */
            const char *q = optarg;
            o.n_report_layers = 0;
            for (;;) {
                if (o.n_report_layers == AW_RANGE_MAX_LAYERS)
                    return aw_usage_error(NULL, "--report-layers '%s': at most 8 layers", optarg);
                errno = 0;
                long lv = strtol(q, &end, 10);
                if (errno || end == q || lv < 0 || lv > 1000000 || (*end != ',' && *end != '\0'))
                    return aw_usage_error(NULL, "--report-layers '%s': expected layer numbers, e.g. 0,12,23", optarg);
                o.report_layers[o.n_report_layers++] = (int)lv;
                if (*end == '\0') break;
                q = end + 1;
            }
            break;
        }
        case O_RESUME: o.resume = 1; break;
        case 'h': aw_cli_help(stdout); return 0;
        default:
            if (c >= AW_JO_MODEL && c < AW_JO_END) {
                if (aw_cli_job_apply(&jo, &o, c, optarg, msg, sizeof msg)) return aw_usage_error(NULL, "%s", msg);
                break;
            }
            if (c < AW_MO_METHOD || c >= AW_MO_END) return aw_usage_error(NULL, "%s", "bad option");
            if (aw_cli_method_apply(&mo, c, optarg, msg, sizeof msg)) return aw_usage_error(NULL, "%s", msg);
            break;
        }
    }
    if (optind < argc) return aw_usage_error(NULL, "unexpected argument '%s'", argv[optind]);
    if (!o.model_dir) return aw_usage_error(NULL, "%s", "--model DIR is required");
    if (aw_cli_job_finish(&jo, &o, msg, sizeof msg)) return aw_usage_error(NULL, "%s", msg);
    if (aw_cli_method_finish(&mo, &o.method, msg, sizeof msg)) return aw_usage_error(NULL, "%s", msg);
    if (o.out_dir && o.method.scheme.keep_pct > 0)
        return aw_usage_error(NULL, "%s",
                              "--keep-salient with --out: compressed-tensors has no form for fp channels inside a "
                              "quantized linear; evaluate it with --eval-text or sweep");

    char *model_dir = NULL;
    aw_status rs = aw_resolve_model(o.model_dir, &model_dir);
    if (rs != AW_OK) {
        aw_print_error(rs, 0, 1);
        return 1;
    }
    o.model_dir = model_dir; /* freed below, once the run is over */

    const aw_comm *w = aw_comm_world();
    if (!w) {
        free(model_dir);
        aw_print_error(AW_ERR_MPI, 0, 1);
        return 1;
    }
    aw_run_result r;
    aw_status st = aw_run_comm(&o, w, &r);
    if (w->rank == 0 && (st == AW_OK || st == AW_ERR_VALIDATION) && r.layers) {
        aw_report_print(&o, &r, stdout);
        fflush(stdout);
    }
    aw_run_result_free(&r);
    o.model_dir = NULL;
    free(model_dir);
    if (st == AW_OK) return 0;
    return aw_cli_end_job(w, st, o.out_dir);
}
