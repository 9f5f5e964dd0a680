/* aw_plan_cmd.c - the plan command: costs, printout, options (see aw_plan_cmd.h). */
#include "aw_plan_cmd.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aw_forward.h"
#include "aw_fs.h"
#include "aw_model.h"
#include "aw_validate.h"

#define AW_PLAN_LOGIT_CHUNK 128 /* rows of logits at a time on the last stage (as aw_run.c) */

static uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

/* Channels of a block's taps (the statistics' sums). */
static uint64_t stat_values(const aw_model_config *c)
{
    uint64_t n = 0;
    for (int t = 0; t < AW_TAP_COUNT; t++) n += (uint64_t)aw_arch_tap_width(c, (aw_tap_id)t);
    return n;
}

/* Validation sums of a block: two per linear, the token count, the
 * linears' output columns. */
static uint64_t val_values(const aw_model_config *c)
{
    const aw_arch *a = aw_arch_of(c);
    uint64_t n = 2 * (uint64_t)a->n_lin + 1;
    for (int l = 0; l < a->n_lin; l++) n += (uint64_t)aw_arch_dim(c, a->lin[l].out);
    return n;
}

aw_status aw_plan_costs_for(const aw_model_config *c, int seq_len, int batch, uint32_t calib_seqs,
                            uint32_t holdout_seqs, aw_plan_costs *out)
{
    AW_RETURN_IF(!c || !out, AW_ERR_ARG, "aw_plan_costs_for: NULL argument");
    AW_RETURN_IF(seq_len < 1 || seq_len > c->max_position_embeddings, AW_ERR_ARG,
                 "sequence length %d: the model has %d positions", seq_len, c->max_position_embeddings);
    AW_RETURN_IF(batch < 1 || (int64_t)batch * seq_len > 0x7fffffff, AW_ERR_ARG,
                 "batch of %d sequences of %d tokens: expected 1 to %d sequences", batch, seq_len,
                 0x7fffffff / seq_len);
    AW_RETURN_IF(calib_seqs < 1, AW_ERR_ARG, "no calibration sequences");
    memset(out, 0, sizeof *out);
    uint64_t d = (uint64_t)c->hidden_size, V = (uint64_t)c->vocab_size;
    const aw_arch *a = aw_arch_of(c);
    uint64_t P = a->end_name[AW_T_POS] ? (uint64_t)c->max_position_embeddings + (uint64_t)a->pos_offset : 0;
    uint64_t L = (uint64_t)seq_len;
    uint64_t T = (uint64_t)batch * L; /* tokens of one block of samples */
    uint64_t wsz = aw_dtype_size(c->torch_dtype);
    uint64_t calib_blocks = ceil_div(calib_seqs, (uint64_t)batch);
    uint64_t hold_blocks = ceil_div(holdout_seqs, (uint64_t)batch);

    /* Resident per block: fp weights in the checkpoint dtype, the W8A8
     * block, and the larger of two sets of sums that are never alive
     * together: calibration statistics (aw_stats_create: totals and one
     * part of the taps' widths (3d+ffn for OPT) in doubles, the running max
     * in floats, plus one part kept per block of samples so that replicas'
     * parts are added in block order), freed once the layer is quantized,
     * and validation sums (aw_layer_val_create: total and part of 2 per
     * linear + 1 + the linears' output widths in doubles, plus one per
     * held-out block). */
    uint64_t n_stat = stat_values(c), n_val = val_values(c);
    uint64_t stats = (2 * n_stat + 1) * 8 + n_stat * 4 + (n_stat + 1) * 8 * calib_blocks;
    uint64_t val = 2 * n_val * 8 + n_val * 8 * hold_blocks;
    out->n_layers = c->num_hidden_layers;
    out->block_bytes = aw_block_bytes(c, c->torch_dtype) + aw_qblock_bytes(c) + (stats > val ? stats : val);
    /* embeddings, positions and the final LN live in f32 on the ranks */
    uint64_t ends_values = V * d * (c->tie_word_embeddings ? 1 : 2) + P * d + 2 * d;
    out->ends_bytes = ends_values * sizeof(float);
    /* last stage: LN output and fp + W8A8 logits of one chunk of rows */
    out->head_ws_bytes = AW_PLAN_LOGIT_CHUNK * (d + 2 * V) * sizeof(float);
    /* every rank: the fp and W8A8 hidden states double-buffered for the
     * hand-off (4 x T x d floats), plus the largest phase's scratch (aw_run.c
     * frees between phases): calibration, the block forward's; quantization,
     * the f32 equalized block of one layer; validation, the forward's and
     * the per-layer checks' (which share the forward's f32 weight buffer) */
    uint64_t calib_ws = aw_fwd_ws_bytes(c, batch, seq_len);
    uint64_t quant_ws = aw_block_bytes(c, AW_DT_F32);
    uint64_t valid_ws = calib_ws + aw_val_ws_bytes(c, (int)T, 1);
    uint64_t phase = calib_ws > quant_ws ? calib_ws : quant_ws;
    phase = phase > valid_ws ? phase : valid_ws;
    out->rank_fixed_bytes = 4 * T * d * sizeof(float) + phase;
    out->block_read_bytes = aw_config_block_params(c) * wsz;
    out->ends_read_bytes = ends_values * wsz;
    /* per token: 2 FLOP per weight of the linears plus attention QK^T and
     * PV, 2 x 2 x L x d (causal half not skipped);
     * calibration runs the fp block once, validation three times (fp
     * stream, W8A8 stream, the per-layer W8A8 checks at the taps) */
    double per_token = 2.0 * (double)aw_arch_linear_params(c) + 4.0 * (double)L * (double)d;
    double calib_tokens = (double)calib_seqs * (double)L, hold_tokens = (double)holdout_seqs * (double)L;
    out->block_flops = per_token * (calib_tokens + 3.0 * hold_tokens);
    /* the tied head for the fp and the W8A8 logits of every held-out token */
    out->head_flops = 2.0 * (double)V * (double)d * hold_tokens * 2.0;
    out->sample_blocks = calib_blocks > 0x7fffffff ? 0x7fffffff : (int)calib_blocks;
    out->seq_len = seq_len;
    out->batch = batch;
    out->calib_seqs = calib_seqs;
    out->holdout_seqs = holdout_seqs;
    return AW_OK;
}

aw_status aw_gpu_costs_for(const aw_model_config *c, int seq_len, int batch, aw_gpu_costs *out)
{
    AW_RETURN_IF(seq_len < 1 || batch < 1, AW_ERR_ARG, "aw_gpu_costs_for: empty block of samples");
    memset(out, 0, sizeof *out);
    uint64_t d = (uint64_t)c->hidden_size, V = (uint64_t)c->vocab_size;
    uint64_t T = (uint64_t)batch * (uint64_t)seq_len;
    /* weights: F16 stays F16 (tensor cores), BF16 is widened to F32 */
    aw_dtype wdt = c->torch_dtype == AW_DT_F16 ? AW_DT_F16 : AW_DT_F32;
    /* sums mirrored on the device: statistics (max in f32, one block's sums
     * in f64, a counter) while calibrating, then validation sums */
    uint64_t n_stat = stat_values(c), n_val = val_values(c);
    uint64_t stats = n_stat * (4 + 8) + 8, val = n_val * 8;
    out->block = aw_block_bytes(c, wdt) + aw_qblock_bytes(c) + (stats > val ? stats : val);
    /* the hand-off blocks (fp and W8A8 streams, double-buffered), the
     * tokens, and validation's workspaces: the forward's and the per-layer
     * checks' (the largest phase; no f32 weight copies on the device) */
    out->fixed = 4 * T * d * sizeof(float) + T * sizeof(uint32_t) + aw_fwd_ws_bytes_ops(c, batch, seq_len, 0) +
                 aw_val_ws_bytes(c, (int)T, 1);
    out->ends = aw_ends_bytes(c);
    out->head = AW_GPU_LOGIT_CHUNK * (d + 2 * V) * sizeof(float);
    /* CUDA context (~0.5 GB), three contexts' 32 MiB cuBLASLt workspaces,
     * kernel scratch, and the NCCL buffers of two link communicators: a
     * round 1.5 GB */
    out->reserve = 1500000000ull;
    return AW_OK;
}

uint64_t aw_gpu_stage_bytes(const aw_gpu_costs *g, int n_layers, int first_stage, int last_stage)
{
    uint64_t b = (uint64_t)n_layers * g->block + g->fixed + g->reserve;
    if (first_stage || last_stage) b += g->ends;
    if (last_stage) b += g->head;
    return b;
}

static double gbytes(uint64_t b) { return (double)b / 1e9; }

aw_status aw_plan_check_gpu(const aw_model_config *c, const aw_plan *p, const aw_plan_costs *k, uint64_t gpu_mem)
{
    aw_gpu_costs g;
    AW_TRY(aw_gpu_costs_for(c, k->seq_len, k->batch, &g));
    for (int s = 0; s < p->stages; s++) {
        uint64_t need = aw_gpu_stage_bytes(&g, p->first_layer[s + 1] - p->first_layer[s], s == 0, s == p->stages - 1);
        AW_RETURN_IF(need > gpu_mem, AW_ERR_PLAN,
                     "stage %d needs %.1f GB of GPU memory per rank (%d blocks x %.2f GB + %.1f GB activations "
                     "for --batch %d), more than %.1f GB: use more stages or a smaller --batch",
                     s, gbytes(need), p->first_layer[s + 1] - p->first_layer[s], gbytes(g.block),
                     gbytes(g.fixed), k->batch, gbytes(gpu_mem));
    }
    return AW_OK;
}

/* "1m 23s", "2h 05m", "12.3 s": durations a reader compares at a glance. */
static const char *fmt_time(double s, char *buf, size_t cap)
{
    if (s < 60) snprintf(buf, cap, "%.1f s", s);
    else if (s < 3600) snprintf(buf, cap, "%dm %02ds", (int)(s / 60), (int)s % 60);
    else snprintf(buf, cap, "%dh %02dm", (int)(s / 3600), (int)(s / 60) % 60);
    return buf;
}

aw_status aw_plan_print(FILE *out, const char *model_name, const aw_model_config *c, const aw_plan *p,
                        const aw_plan_costs *k, uint64_t mem_per_rank)
{
    AW_RETURN_IF(!out || !c || !p || !k, AW_ERR_ARG, "aw_plan_print: NULL argument");
    char t1[32], t2[32], t3[32];
    uint64_t params = aw_config_param_count(c);
    size_t wsz = aw_dtype_size(c->torch_dtype);
    fprintf(out, "plan: %s: %s d=%d layers=%d heads=%d ffn=%d vocab=%d, %.2fB parameters (%.1f GB in %s)\n",
            model_name ? model_name : "model", aw_arch_of(c)->label, c->hidden_size, c->num_hidden_layers, c->num_attention_heads,
            c->ffn_dim, c->vocab_size, (double)params / 1e9, gbytes(params * wsz), aw_dtype_name(c->torch_dtype));
    fprintf(out, "world: %d rank%s = %d stage%s x %d replica%s (rank = stage x %d + replica)\n", p->world,
            p->world == 1 ? "" : "s", p->stages, p->stages == 1 ? "" : "s", p->replicas,
            p->replicas == 1 ? "" : "s", p->replicas);
    fprintf(out, "memory per rank (budget %.1f GB):\n", gbytes(mem_per_rank));
    fprintf(out, "  %6.2f GB per decoder block (fp weights in %s, W8A8 block, statistics)\n",
            gbytes(k->block_bytes), aw_dtype_name(c->torch_dtype));
    fprintf(out, "  %6.2f GB on every rank (activations, workspaces, the f32 block being quantized)\n",
            gbytes(k->rank_fixed_bytes));
    fprintf(out, "  %+6.2f GB on the first and the last stage (embeddings, positions or head, final norm in f32)\n",
            gbytes(k->ends_bytes));
    fprintf(out, "  %+6.2f GB on the last stage (logits, %d rows at a time)\n", gbytes(k->head_ws_bytes),
            AW_PLAN_LOGIT_CHUNK);
    aw_gpu_costs g;
    AW_TRY(aw_gpu_costs_for(c, k->seq_len, k->batch, &g));
    fprintf(out, "GPU memory per rank on the CUDA backend: %.2f GB per block (fp weights in %s, W8A8 block), "
                 "%.2f GB activations, %.1f GB CUDA/cuBLAS/NCCL reserve\n",
            gbytes(g.block), c->torch_dtype == AW_DT_F16 ? "F16" : "F32", gbytes(g.fixed), gbytes(g.reserve));
    fprintf(out, "%6s  %-11s  %-9s  %6s  %18s  %9s  %10s\n", "stage", "ranks", "layers", "blocks", "memory/rank",
            "GPU/rank", "time");
    for (int s = 0; s < p->stages; s++) {
        char ranks[32], layers[32], mem[32];
        int r0 = s * p->replicas, r1 = r0 + p->replicas - 1;
        if (r0 == r1) snprintf(ranks, sizeof ranks, "%d", r0);
        else snprintf(ranks, sizeof ranks, "%d-%d", r0, r1);
        int l0 = p->first_layer[s], l1 = p->first_layer[s + 1] - 1;
        if (l0 == l1) snprintf(layers, sizeof layers, "%d", l0);
        else snprintf(layers, sizeof layers, "%d-%d", l0, l1);
        snprintf(mem, sizeof mem, "%.1f / %.1f GB", gbytes(p->mem_bytes[s]), gbytes(mem_per_rank));
        const char *role = p->stages == 1          ? "  embed + head"
                           : s == 0                 ? "  embed"
                           : s == p->stages - 1     ? "  head"
                                                    : "";
        char gpu[32];
        snprintf(gpu, sizeof gpu, "%.1f GB", gbytes(aw_gpu_stage_bytes(&g, l1 - l0 + 1, s == 0, s == p->stages - 1)));
        fprintf(out, "%6d  %-11s  %-9s  %6d  %18s  %9s  %10s%s\n", s, ranks, layers, l1 - l0 + 1, mem, gpu,
                fmt_time(p->seconds[s], t1, sizeof t1), role);
    }
    fprintf(out, "total: %d layers over %d stage%s; estimated %s (slowest stage %s + pipeline fill %s)\n",
            p->first_layer[p->stages], p->stages, p->stages == 1 ? "" : "s",
            fmt_time(p->total_seconds, t1, sizeof t1),
            fmt_time(p->total_seconds - p->fill_seconds, t2, sizeof t2),
            fmt_time(p->fill_seconds, t3, sizeof t3));
    double calib_tokens = (double)k->calib_seqs * k->seq_len, hold_tokens = (double)k->holdout_seqs * k->seq_len;
    fprintf(out, "assumptions (estimates, not measurements):\n");
    fprintf(out, "  %.0f TFLOP/s sustained per rank%s; %.1f GB/s file-system read per rank\n",
            p->rates.flops_per_s / 1e12,
            p->rates.flops_per_s == 400e12
                ? " (the default: about 40% of an H100 SXM's 989 TFLOP/s dense fp16 peak)"
                : "",
            p->rates.read_bytes_per_s / 1e9);
    fprintf(out, "  %u calibration + %u held-out sequences of %d tokens (%.0f + %.0f tokens), %d per block of "
                 "samples (%d blocks)\n",
            k->calib_seqs, k->holdout_seqs, k->seq_len, calib_tokens, hold_tokens, k->batch, k->sample_blocks);
    fprintf(out, "  a block runs once per calibration token and three times per held-out token (fp, W8A8, "
                 "per-layer checks): %.3g FLOP per decoder block, %.3g FLOP for the head\n",
            k->block_flops, k->head_flops);
    AW_RETURN_IF(ferror(out), AW_ERR_IO, "plan: cannot write the plan: %s", strerror(errno));
    return AW_OK;
}

/* ---- the command --------------------------------------------------------- */

static void plan_usage(FILE *out)
{
    fputs(
            "Usage: aweq-dist plan --model NAME_OR_DIR -n N --mem-per-rank G [options]\n"
            "  Lay the model's decoder blocks out over N ranks (pipeline stages x\n"
            "  data-parallel replicas) within G GB per rank, and estimate memory and time.\n"
            "  Nothing but config.json is read: plans for OPT-175B need no weights.\n"
            "  --model NAME_OR_DIR   a built-in shape (see 'aweq-dist shapes') or a model folder\n"
            "  -n N                  ranks in the run (MPI world size)\n"
            "  --mem-per-rank G      memory per rank in GB (decimal): 80, 80G or 80GB\n"
            "  --stages S            force the pipeline stages (default: fewest that fit)\n"
            "  --replicas R          force the replicas per stage (S x R must be N)\n"
            "  --seq-len L           tokens per sequence (default 2048, capped at the model's positions)\n"
            "  --batch B             sequences per block of samples (default 1)\n"
            "  --calib-seqs N        calibration sequences (default 128)\n"
            "  --holdout-seqs N      held-out sequences for validation (default 16)\n"
            "  --tflops T            sustained TFLOP/s per rank (default 400: about 40% of an\n"
            "                        H100 SXM's 989 TFLOP/s dense fp16 peak)\n"
            "  --read-gbps R         file-system read GB/s per rank (default 2)\n"
            "  --gpu-mem G           GPU memory per rank in GB: fail if a stage's GPU part\n"
            "                        (the GPU/rank column) does not fit\n",
          out);
}

static int plan_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "aweq-dist: plan: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'aweq-dist plan --help'.\n");
    return 2;
}

/* The program's one error line (as main.c prints it). */
static int plan_fail(aw_status st)
{
    fprintf(stderr, "aweq-dist: error: %s (%s) [%s]\n", aw_err_message()[0] ? aw_err_message() : aw_strerror(st),
            aw_status_name(st), aw_err_where());
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
    enum { O_MODEL = 1000, O_MEM, O_STAGES, O_REPLICAS, O_SEQ, O_BATCH, O_CSEQS, O_HSEQS, O_TFLOPS, O_READ, O_GPU };
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL},       {"mem-per-rank", required_argument, 0, O_MEM},
        {"stages", required_argument, 0, O_STAGES},     {"replicas", required_argument, 0, O_REPLICAS},
        {"seq-len", required_argument, 0, O_SEQ},       {"batch", required_argument, 0, O_BATCH},
        {"calib-seqs", required_argument, 0, O_CSEQS},  {"holdout-seqs", required_argument, 0, O_HSEQS},
        {"tflops", required_argument, 0, O_TFLOPS},     {"read-gbps", required_argument, 0, O_READ},
        {"gpu-mem", required_argument, 0, O_GPU},       {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *model = NULL;
    long world = 0, stages = 0, replicas = 0, seq_len = 0, batch = 1, cseqs = 128, hseqs = 16;
    double tflops = 400, read_gbps = 2;
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
        default: return plan_usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return plan_usage_error("unexpected argument '%s'", argv[optind]);
    if (!model) return plan_usage_error("%s", "--model NAME_OR_DIR is required");
    if (!world) return plan_usage_error("%s", "-n N (ranks) is required");
    if (!mem) return plan_usage_error("%s", "--mem-per-rank G is required");

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
        char msg[96];
        snprintf(msg, sizeof msg, "%ld: %s has %d positions", seq_len, label, cfg.max_position_embeddings);
        return plan_usage_error("--seq-len %s", msg);
    }

    aw_plan_costs k;
    st = aw_plan_costs_for(&cfg, (int)seq_len, (int)batch, (uint32_t)cseqs, (uint32_t)hseqs, &k);
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
