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

#define AW_MAX_TEXT_FILES 64
#define AW_MAX_TEXT_FILES_S "64"

int aw_cmd_run(int argc, char **argv)
{
    enum { O_MODEL = 1000, O_CALIB, O_OUT, O_HOLDOUT, O_BATCH, O_MAXERR,
           O_BACKEND, O_QUIET, O_STAGES, O_REPLICAS, O_MEM, O_RESUME, O_FAILAT, O_HANG, O_HANDOFF,
           O_CTEXT, O_TFIELD, O_CSAMPLES, O_CLEN, O_SEED, O_ETEXT, O_PEVERY, O_LOGJSON, O_RLAYERS };
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL},     {"calib", required_argument, 0, O_CALIB},
        {"out", required_argument, 0, O_OUT},         AW_CLI_METHOD_LONGOPTS,
        {"holdout", required_argument, 0, O_HOLDOUT}, {"batch", required_argument, 0, O_BATCH},
        {"max-rel-error", required_argument, 0, O_MAXERR},
        {"backend", required_argument, 0, O_BACKEND}, {"quiet", no_argument, 0, O_QUIET},
        {"handoff", required_argument, 0, O_HANDOFF},
        {"stages", required_argument, 0, O_STAGES},   {"replicas", required_argument, 0, O_REPLICAS},
        {"mem-per-rank", required_argument, 0, O_MEM},
        {"resume", no_argument, 0, O_RESUME},         {"fail-at", required_argument, 0, O_FAILAT},
        {"hang-timeout", required_argument, 0, O_HANG},
        {"calib-text", required_argument, 0, O_CTEXT}, {"text-field", required_argument, 0, O_TFIELD},
        {"calib-samples", required_argument, 0, O_CSAMPLES}, {"calib-len", required_argument, 0, O_CLEN},
        {"seed", required_argument, 0, O_SEED},       {"eval-text", required_argument, 0, O_ETEXT},
        {"progress-every", required_argument, 0, O_PEVERY}, {"log-json", required_argument, 0, O_LOGJSON},
        {"report-layers", required_argument, 0, O_RLAYERS},
        {"help", no_argument, 0, 'h'},                {0, 0, 0, 0}};
    aw_run_opts o;
    aw_run_defaults(&o);
    const char *texts[AW_MAX_TEXT_FILES];
    o.calib_texts = texts;
    aw_cli_method_opts mo;
    aw_cli_method_init(&mo);
    char msg[320];
    int c, draw_set = 0;
    long v;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        aw_status st = AW_OK;
        switch (c) {
        case O_MODEL: o.model_dir = optarg; break;
        case O_CALIB: o.calib_path = optarg; break;
        case O_OUT: o.out_dir = optarg; break;
        case O_HOLDOUT:
            o.holdout = strtod(optarg, &end);
            if (*end || end == optarg || !(o.holdout >= 0.0 && o.holdout < 1.0))
                return aw_usage_error(NULL, "--holdout '%s': expected a share in [0, 1)", optarg);
            break;
        case O_BATCH:
            if (aw_cli_parse_int(optarg, 1, 4096, &v)) return aw_usage_error(NULL, "--batch '%s': expected 1..4096", optarg);
            o.batch = (int)v;
            break;
        case O_MAXERR:
            o.max_rel_error = strtod(optarg, &end);
            if (*end || end == optarg || !(o.max_rel_error > 0))
                return aw_usage_error(NULL, "--max-rel-error '%s': expected a positive number", optarg);
            break;
        case O_BACKEND:
            if (strcmp(optarg, "cpu-staged") == 0) o.staged = 1;
            else o.staged = 0, st = aw_backend_parse(optarg, &o.backend_want);
            break;
        case O_HANDOFF:
            if (strcmp(optarg, "auto") == 0) o.handoff = AW_HANDOFF_AUTO;
            else if (strcmp(optarg, "mpi") == 0) o.handoff = AW_HANDOFF_MPI;
            else if (strcmp(optarg, "nccl") == 0) o.handoff = AW_HANDOFF_NCCL;
            else return aw_usage_error(NULL, "--handoff '%s': expected auto, mpi or nccl", optarg);
            break;
        case O_QUIET: o.quiet = 1; break;
        case O_STAGES:
            if (aw_cli_parse_int(optarg, 1, 1024, &v)) return aw_usage_error(NULL, "--stages '%s': expected 1..1024", optarg);
            o.stages = (int)v;
            break;
        case O_REPLICAS:
            if (aw_cli_parse_int(optarg, 1, 1 << 20, &v)) return aw_usage_error(NULL, "--replicas '%s': expected a positive count", optarg);
            o.replicas = (int)v;
            break;
        case O_MEM:
            o.mem_per_rank_gb = strtod(optarg, &end);
            if (*end == 'G' || *end == 'g') end++;
            if (*end == 'B' || *end == 'b') end++;
            if (*end || end == optarg || !(o.mem_per_rank_gb > 0))
                return aw_usage_error(NULL, "--mem-per-rank '%s': expected gigabytes, e.g. 80", optarg);
            break;
        case O_CTEXT:
            if (o.n_calib_texts == AW_MAX_TEXT_FILES) return aw_usage_error(NULL, "--calib-text: at most %s files", AW_MAX_TEXT_FILES_S);
            texts[o.n_calib_texts++] = optarg;
            break;
        case O_TFIELD: o.text_field = optarg; break;
        case O_CSAMPLES:
            if (aw_cli_parse_int(optarg, 1, 1 << 24, &v)) return aw_usage_error(NULL, "--calib-samples '%s': expected 1..16777216", optarg);
            o.calib_samples = (uint32_t)v;
            draw_set = 1;
            break;
        case O_CLEN:
            if (aw_cli_parse_int(optarg, 2, 1 << 20, &v)) return aw_usage_error(NULL, "--calib-len '%s': expected 2..1048576", optarg);
            o.calib_len = (uint32_t)v;
            draw_set = 1;
            break;
        case O_SEED:
            if (aw_cli_parse_int(optarg, 0, 0x7fffffffL, &v)) return aw_usage_error(NULL, "--seed '%s': expected 0..2147483647", optarg);
            o.seed = (uint64_t)v;
            break;
        case O_ETEXT: o.eval_text = optarg; break;
        case O_PEVERY:
            o.progress_every_s = strtod(optarg, &end);
            if (*end || end == optarg || !(o.progress_every_s >= 0 && o.progress_every_s <= 1e6))
                return aw_usage_error(NULL, "--progress-every '%s': expected seconds (0: a line per block)", optarg);
            break;
        case O_LOGJSON: o.log_json = optarg; break;
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
        case O_FAILAT: st = aw_fail_at_parse(optarg, &o.fail_at); break;
        case O_HANG:
            o.hang_timeout_s = strtod(optarg, &end);
            if (*end || end == optarg || !(o.hang_timeout_s >= 0))
                return aw_usage_error(NULL, "--hang-timeout '%s': expected seconds (0: off)", optarg);
            break;
        case 'h': aw_cli_help(stdout); return 0;
        default:
            if (c < AW_MO_METHOD || c >= AW_MO_END) return aw_usage_error(NULL, "%s", "bad option");
            if (aw_cli_method_apply(&mo, c, optarg, msg, sizeof msg)) return aw_usage_error(NULL, "%s", msg);
            break;
        }
        if (st != AW_OK) return aw_usage_error(NULL, "%s", aw_err_message());
    }
    if (optind < argc) return aw_usage_error(NULL, "unexpected argument '%s'", argv[optind]);
    if (!o.model_dir) return aw_usage_error(NULL, "%s", "--model DIR is required");
    if (o.calib_path && o.n_calib_texts) return aw_usage_error(NULL, "%s", "--calib and --calib-text exclude each other");
    if (!o.n_calib_texts && (draw_set || o.seed))
        return aw_usage_error(NULL, "%s", "--calib-samples, --calib-len and --seed go with --calib-text");
    if (!o.n_calib_texts && !o.eval_text && o.text_field)
        return aw_usage_error(NULL, "%s", "--text-field goes with --calib-text or --eval-text");
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
    /* A failure every rank learned in a collective step (AW_ERR_REMOTE on
     * the others) is printed once, by the rank that had it. No failed rank
     * goes through MPI's finalize: it waits for every peer, and a peer that is
     * aborting (or blocked in a transfer) would keep it waiting. Leaving
     * without it makes the launcher end the job at once. Any other failure
     * is printed with the rank, and brings the job down with aw_comm_abort. */
    if (st == AW_ERR_REMOTE) {
        if (w->size > 1) aw_comm_leave_after_peer_failure();
        return 1;
    }
    if (st == AW_ERR_INTERRUPTED) {
        aw_print_interrupted(w->rank, w->size, o.out_dir);
        if (w->size > 1) aw_comm_abort(w, 143);
        return 143;
    }
    if (w->size == 1) {
        aw_print_error(st, 0, 1);
        return 1;
    }
    aw_print_error(st, w->rank, w->size);
    aw_comm_abort(w, 1);
    return 1;
}
