/* aw_cmd_plan.c - `aweq-dist plan`: options, then the plan (pipeline/run/aw_plan.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aw_cli.h"
#include "aw_fs.h"
#include "aw_plan.h"

/* ---- the command --------------------------------------------------------- */

static void plan_usage(FILE *out)
{
    fputs(
            "Usage: aweq-dist plan --model NAME_OR_DIR -n N --mem-per-rank G [options]\n"
            "  Lay the model's decoder blocks out over N ranks (pipeline stages x\n"
            "  data-parallel replicas) within G GB per rank, and estimate memory and time.\n"
            "  Nothing but config.json is read: plans for OPT-175B need no weights.\n"
            "  --model NAME_OR_DIR   a built-in shape (see 'aweq-dist shapes') or a model\n"
            "                        folder\n"
            "  -n N                  ranks in the run (MPI world size)\n"
            "  --mem-per-rank G      memory per rank in GB (decimal): 80, 80G or 80GB\n"
            "  --stages S            force the pipeline stages (default: fewest that fit)\n"
            "  --replicas R          force the replicas per stage (S x R must be N)\n"
            "  --seq-len L           tokens per sequence (default 2048, capped at the\n"
            "                        model's positions)\n"
            "  --batch B             sequences per block of samples (default 1)\n"
            "  --calib-seqs N        calibration sequences (default 128)\n"
            "  --holdout-seqs N      held-out sequences for validation (default 16)\n"
            "  --backend B           cuda (default) or cpu: what the time estimates are for\n"
            "                        (memory is the same); cpu times come from a cost\n"
            "                        model fitted on this project's bench machine\n"
            "                        (bench/fit_costs.sh), cuda times from --tflops, an\n"
            "                        assumption not yet measured\n"
            "  --threads N           cpu: threads per rank (default: this machine's CPUs)\n"
            "  --tflops T            cuda: sustained TFLOP/s per rank (default 400: about 40%\n"
            "                        of an H100 SXM's 989 TFLOP/s dense fp16 peak)\n"
            "  --read-gbps R         file-system read GB/s per rank (default 2)\n"
            "  --gpu-mem G           GPU memory per rank in GB: fail if a stage's GPU part\n"
            "                        (the GPU/rank column) does not fit\n"
            "  --method M            the run's method (default aweq); gptq, and awq and\n"
            "                        aweq+search with weight-only schemes, keep each tap's\n"
            "                        Gram matrix, counted per block\n"
            "  --wbits B --group G --sym --asym --abits B --agroup G --adynamic\n"
            "  --keep-salient P      the run's scheme, as for a run (default W8A8)\n",
          out);
}

static int plan_usage_error(const char *fmt, const char *arg) { return aw_usage_error("plan", fmt, arg); }

/* The program's one error line. */
static int plan_fail(aw_status st)
{
    aw_print_error(st, 0, 1);
    return 1;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_pos_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(v > 0 && v < 1e12)) return -1;
    *out = v;
    return 0;
}

/* "80", "80G", "80GB", "1.5T", "1.5TB" (decimal) -> bytes. */
static int parse_gb(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v > 0)) return -1;
    double mul = 1e9;
    if (*end == 'G' || *end == 'g') end++;
    else if (*end == 'T' || *end == 't') mul = 1e12, end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end != '\0' || v * mul > 1e18 || v * mul < 1) return -1;
    *out = (uint64_t)(v * mul);
    return 0;
}

int aw_cmd_plan(int argc, char **argv)
{
    enum {
        O_MODEL = 1000, O_MEM, O_STAGES, O_REPLICAS, O_SEQ, O_BATCH, O_CSEQS, O_HSEQS, O_TFLOPS, O_READ, O_GPU,
        O_BACKEND, O_THREADS
    };
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL},       {"mem-per-rank", required_argument, 0, O_MEM},
        {"stages", required_argument, 0, O_STAGES},     {"replicas", required_argument, 0, O_REPLICAS},
        {"seq-len", required_argument, 0, O_SEQ},       {"batch", required_argument, 0, O_BATCH},
        {"calib-seqs", required_argument, 0, O_CSEQS},  {"holdout-seqs", required_argument, 0, O_HSEQS},
        {"tflops", required_argument, 0, O_TFLOPS},     {"read-gbps", required_argument, 0, O_READ},
        {"gpu-mem", required_argument, 0, O_GPU},       {"backend", required_argument, 0, O_BACKEND},
        {"threads", required_argument, 0, O_THREADS},   {"help", no_argument, 0, 'h'},
        AW_CLI_METHOD_LONGOPTS,
        {0, 0, 0, 0}};
    const char *model = NULL;
    long world = 0, stages = 0, replicas = 0, seq_len = 0, batch = 1, cseqs = 128, hseqs = 16;
    double tflops = 400, read_gbps = 2;
    long threads = 0;
    int cpu = 0, tflops_set = 0;
    aw_method method = {.kind = AW_METHOD_AWEQ, .alpha = 0.5f, .scheme = AW_SCHEME_W8A8};
    aw_cli_method_opts mo;
    aw_cli_method_init(&mo);
    char msg[320];
    uint64_t mem = 0, gpu_mem = 0;
    int c;
    optind = 1;
    opterr = 0; /* our own message for a bad option */
    while ((c = getopt_long(argc, argv, ":n:h", opts, NULL)) != -1) {
        switch (c) {
        case O_MODEL: model = optarg; break;
        case 'n':
            if (parse_long(optarg, 1, 1L << 20, &world))
                return plan_usage_error("-n '%s': expected 1 to 1048576 ranks", optarg);
            break;
        case O_MEM:
            if (parse_gb(optarg, &mem))
                return plan_usage_error("--mem-per-rank '%s': expected GB, e.g. 80 or 80GB", optarg);
            break;
        case O_STAGES:
            if (parse_long(optarg, 1, 1L << 20, &stages))
                return plan_usage_error("--stages '%s': expected a positive count", optarg);
            break;
        case O_REPLICAS:
            if (parse_long(optarg, 1, 1L << 20, &replicas))
                return plan_usage_error("--replicas '%s': expected a positive count", optarg);
            break;
        case O_SEQ:
            if (parse_long(optarg, 1, 1L << 20, &seq_len))
                return plan_usage_error("--seq-len '%s': expected a positive length", optarg);
            break;
        case O_BATCH:
            if (parse_long(optarg, 1, 4096, &batch))
                return plan_usage_error("--batch '%s': expected 1..4096", optarg);
            break;
        case O_CSEQS:
            if (parse_long(optarg, 1, 1L << 24, &cseqs))
                return plan_usage_error("--calib-seqs '%s': expected 1..16777216", optarg);
            break;
        case O_HSEQS:
            if (parse_long(optarg, 0, 1L << 24, &hseqs))
                return plan_usage_error("--holdout-seqs '%s': expected 0..16777216", optarg);
            break;
        case O_TFLOPS:
            if (parse_pos_double(optarg, &tflops))
                return plan_usage_error("--tflops '%s': expected a positive number", optarg);
            tflops_set = 1;
            break;
        case O_BACKEND:
            if (strcmp(optarg, "cpu") == 0) cpu = 1;
            else if (strcmp(optarg, "cuda") == 0) cpu = 0;
            else return plan_usage_error("--backend '%s': expected cpu or cuda", optarg);
            break;
        case O_THREADS:
            if (parse_long(optarg, 1, 65536, &threads))
                return plan_usage_error("--threads '%s': expected 1..65536", optarg);
            break;
        case O_READ:
            if (parse_pos_double(optarg, &read_gbps))
                return plan_usage_error("--read-gbps '%s': expected a positive number", optarg);
            break;
        case O_GPU:
            if (parse_gb(optarg, &gpu_mem))
                return plan_usage_error("--gpu-mem '%s': expected GB, e.g. 80 or 80GB", optarg);
            break;
        case 'h': plan_usage(stdout); return 0;
        case ':': return plan_usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            if (c < AW_MO_METHOD || c >= AW_MO_END) return plan_usage_error("unknown option '%s'", argv[optind - 1]);
            if (aw_cli_method_apply(&mo, c, optarg, msg, sizeof msg)) return plan_usage_error("%s", msg);
            break;
        }
    }
    if (optind < argc) return plan_usage_error("unexpected argument '%s'", argv[optind]);
    if (!model) return plan_usage_error("%s", "--model NAME_OR_DIR is required");
    if (!world) return plan_usage_error("%s", "-n N (ranks) is required");
    if (!mem) return plan_usage_error("%s", "--mem-per-rank G is required");
    if (aw_cli_method_finish(&mo, &method, msg, sizeof msg)) return plan_usage_error("%s", msg);
    /* each backend's time has one source: no option that would be ignored */
    if (cpu && tflops_set)
        return plan_usage_error("%s", "--tflops is the cuda backend's assumed rate; --backend cpu uses measured costs");
    if (!cpu && threads) return plan_usage_error("%s", "--threads is for --backend cpu");
    if (cpu && !threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? n : 1;
    }

    aw_model_config cfg;
    const char *label = model;
    const aw_model_config *shape = aw_shape_find(model);
    aw_status st = AW_OK;
    if (shape) {
        cfg = *shape;
        label = shape->name;
        st = aw_config_check_supported(&cfg, label);
    } else {
        struct stat sb;
        if (stat(model, &sb) != 0 || !S_ISDIR(sb.st_mode))
            return plan_usage_error(
                "--model '%s': neither a built-in shape (see 'aweq-dist shapes') nor a model folder", model);
        char *path = aw_path_join(model, "config.json");
        if (!path) return plan_fail(AW_FAIL(AW_ERR_NOMEM, "out of memory"));
        st = aw_config_read(path, &cfg);
        if (st == AW_OK) st = aw_config_check_supported(&cfg, path);
        free(path);
    }
    if (st != AW_OK) return plan_fail(st);
    if (!seq_len) seq_len = cfg.max_position_embeddings < 2048 ? cfg.max_position_embeddings : 2048;
    if (seq_len > cfg.max_position_embeddings) {
        char why[96];
        snprintf(why, sizeof why, "%ld: %s has %d positions", seq_len, label, cfg.max_position_embeddings);
        return plan_usage_error("--seq-len %s", why);
    }

    aw_plan_costs k;
    st = aw_plan_costs_method(&cfg, &method, (int)seq_len, (int)batch, (uint32_t)cseqs, (uint32_t)hseqs, &k);
    if (st == AW_OK && cpu) {
        st = aw_cost_block_seconds(&aw_cost_cpu, &k.work, (int)threads, &k.block_s);
        k.timed = 1;
        k.threads = (int)threads;
    }
    if (st != AW_OK) return plan_fail(st);
    aw_plan_rates rates = {.flops_per_s = tflops * 1e12, .read_bytes_per_s = read_gbps * 1e9};
    aw_plan *p = malloc(sizeof *p); /* ~20 KB: off the stack */
    if (!p) return plan_fail(AW_FAIL(AW_ERR_NOMEM, "out of memory"));
    st = aw_plan_make(&k, &rates, (int)world, mem, (int)stages, (int)replicas, p);
    if (st == AW_ERR_PLAN) {
        /* the scheduler does not know the model's name: put it in front */
        fprintf(stderr, "aweq-dist: error: %s: %s (%s) [%s]\n", label, aw_err_message(), aw_status_name(st),
                aw_err_where());
        free(p);
        return 1;
    }
    if (st == AW_OK) st = aw_plan_print(stdout, label, &cfg, p, &k, mem);
    if (st == AW_OK && gpu_mem) {
        st = aw_plan_check_gpu(&cfg, p, &k, gpu_mem);
        if (st == AW_ERR_PLAN) {
            fflush(stdout);
            fprintf(stderr, "aweq-dist: error: %s: %s (%s) [%s]\n", label, aw_err_message(), aw_status_name(st),
                    aw_err_where());
            free(p);
            return 1;
        }
    }
    free(p);
    if (st != AW_OK) return plan_fail(st);
    return fflush(stdout) == 0 ? 0 : plan_fail(AW_FAIL(AW_ERR_IO, "plan: cannot write the plan"));
}
