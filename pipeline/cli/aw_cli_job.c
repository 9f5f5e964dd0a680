/* aw_cli_job.c - the options `run` and `sweep` share (the model, the
 * calibration draw, the eval text, the layout and the job's control): one
 * parser, so that both accept them with the same rules and messages (see
 * aw_cli.h). */
#include "aw_cli.h"

#include <stdlib.h>
#include <string.h>

void aw_cli_job_init(aw_cli_job_opts *jo, aw_run_opts *o)
{
    memset(jo, 0, sizeof *jo);
    o->calib_texts = jo->texts;
}

/* Seconds: a number >= 0 (and <= max when max > 0). */
static int parse_seconds(const char *arg, double max, double *out)
{
    char *end;
    double v = strtod(arg, &end);
    if (*end || end == arg || !(v >= 0) || (max > 0 && !(v <= max))) return -1;
    *out = v;
    return 0;
}

int aw_cli_job_apply(aw_cli_job_opts *jo, aw_run_opts *o, int code, const char *arg, char *msg, size_t cap)
{
    long v;
    char *end;
    switch (code) {
    case AW_JO_MODEL: o->model_dir = arg; return 0;
    case AW_JO_CALIB: o->calib_path = arg; return 0;
    case AW_JO_CTEXT:
        if (o->n_calib_texts == AW_CLI_JOB_MAX_TEXTS) return aw_cli_say(msg, cap, "--calib-text: at most %d files", AW_CLI_JOB_MAX_TEXTS);
        jo->texts[o->n_calib_texts++] = arg;
        return 0;
    case AW_JO_TFIELD: o->text_field = arg; return 0;
    case AW_JO_CSAMPLES:
        if (aw_cli_parse_int(arg, 1, 1 << 24, &v)) return aw_cli_say(msg, cap, "--calib-samples '%s': expected 1..16777216", arg);
        o->calib_samples = (uint32_t)v;
        jo->draw_set = 1;
        return 0;
    case AW_JO_CLEN:
        if (aw_cli_parse_int(arg, 2, 1 << 20, &v)) return aw_cli_say(msg, cap, "--calib-len '%s': expected 2..1048576", arg);
        o->calib_len = (uint32_t)v;
        jo->draw_set = 1;
        return 0;
    case AW_JO_SEED:
        if (aw_cli_parse_int(arg, 0, 0x7fffffffL, &v)) return aw_cli_say(msg, cap, "--seed '%s': expected 0..2147483647", arg);
        o->seed = (uint64_t)v;
        return 0;
    case AW_JO_ETEXT: o->eval_text = arg; return 0;
    case AW_JO_BATCH:
        if (aw_cli_parse_int(arg, 1, 4096, &v)) return aw_cli_say(msg, cap, "--batch '%s': expected 1..4096", arg);
        o->batch = (int)v;
        return 0;
    case AW_JO_BACKEND:
        if (strcmp(arg, "cpu-staged") == 0) {
            o->staged = 1;
            return 0;
        }
        o->staged = 0;
        if (aw_backend_parse(arg, &o->backend_want) != AW_OK) return aw_cli_say(msg, cap, "%s", aw_err_message());
        return 0;
    case AW_JO_CPREC:
        if (strcmp(arg, "fp32") == 0) o->cpu_bf16 = 0;
        else if (strcmp(arg, "bf16") == 0) o->cpu_bf16 = 1;
        else return aw_cli_say(msg, cap, "--cpu-precision '%s': expected fp32 or bf16", arg);
        return 0;
    case AW_JO_HANDOFF:
        if (strcmp(arg, "auto") == 0) o->handoff = AW_HANDOFF_AUTO;
        else if (strcmp(arg, "mpi") == 0) o->handoff = AW_HANDOFF_MPI;
        else if (strcmp(arg, "nccl") == 0) o->handoff = AW_HANDOFF_NCCL;
        else return aw_cli_say(msg, cap, "--handoff '%s': expected auto, mpi or nccl", arg);
        return 0;
    case AW_JO_STAGES:
        if (aw_cli_parse_int(arg, 1, 1024, &v)) return aw_cli_say(msg, cap, "--stages '%s': expected 1..1024", arg);
        o->stages = (int)v;
        return 0;
    case AW_JO_REPLICAS:
        if (aw_cli_parse_int(arg, 1, 1 << 20, &v)) return aw_cli_say(msg, cap, "--replicas '%s': expected a positive count", arg);
        o->replicas = (int)v;
        return 0;
    case AW_JO_MEM:
        o->mem_per_rank_gb = strtod(arg, &end);
        if (*end == 'G' || *end == 'g') end++;
        if (*end == 'B' || *end == 'b') end++;
        if (*end || end == arg || !(o->mem_per_rank_gb > 0))
            return aw_cli_say(msg, cap, "--mem-per-rank '%s': expected gigabytes, e.g. 80", arg);
        return 0;
    case AW_JO_HANG:
        if (parse_seconds(arg, 0, &o->hang_timeout_s)) return aw_cli_say(msg, cap, "--hang-timeout '%s': expected seconds (0: off)", arg);
        return 0;
    case AW_JO_PEVERY:
        if (parse_seconds(arg, 1e6, &o->progress_every_s))
            return aw_cli_say(msg, cap, "--progress-every '%s': expected seconds (0: a line per block)", arg);
        return 0;
    case AW_JO_LOGJSON: o->log_json = arg; return 0;
    case AW_JO_QUIET: o->quiet = 1; return 0;
    case AW_JO_FAILAT:
        if (aw_fail_at_parse(arg, &o->fail_at) != AW_OK) return aw_cli_say(msg, cap, "%s", aw_err_message());
        return 0;
    default: return aw_cli_say(msg, cap, "bad option");
    }
}

int aw_cli_job_finish(const aw_cli_job_opts *jo, const aw_run_opts *o, char *msg, size_t cap)
{
    if (o->calib_path && o->n_calib_texts) return aw_cli_say(msg, cap, "--calib and --calib-text exclude each other");
    if (!o->n_calib_texts && (jo->draw_set || o->seed))
        return aw_cli_say(msg, cap, "--calib-samples, --calib-len and --seed go with --calib-text");
    if (!o->n_calib_texts && !o->eval_text && o->text_field)
        return aw_cli_say(msg, cap, "--text-field goes with --calib-text or --eval-text");
    return 0;
}
