/*
 * main.c - the aweq-dist program: command dispatch, option parsing and the
 * only place that decides to exit. Errors go to stderr as one line:
 *   aweq-dist: error: <what, naming file/tensor/rank> (<STATUS>) [src.c:line]
 * Exit codes: 0 success, 1 failure, 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "aw_backend.h"
#include "aw_config.h"
#include "aw_inspect.h"
#include "aw_comm.h"
#include "aw_eval.h"
#include "aw_html.h"
#include "aw_plan_cmd.h"
#include "aw_resolve.h"
#include "aw_run.h"
#include "aw_status.h"
#include "aw_synth.h"
#include "aw_tokenize_cmd.h"

#define AW_VERSION "0.1.0"
#define AW_MAX_TEXT_FILES 64
#define AW_MAX_TEXT_FILES_S "64"

static void print_error(aw_status st) { aw_print_error(st, 0, 1); }

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "aweq-dist: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'aweq-dist --help'.\n");
    return 2;
}

static void print_help(FILE *out)
{
    fprintf(out,
            "aweq-dist %s - AWEQ post-training quantization of OPT models across MPI ranks\n"
            "\n"
            "Usage:\n"
            "  aweq-dist --model DIR [--calib FILE] [--out DIR] [options]\n"
            "      Quantize a model to W8A8 (INT8 weights and static INT8 activations, per\n"
            "      tensor), validate on held-out tokens, write the compressed-tensors\n"
            "      checkpoint and aweq_report.json (nothing is written without --out).\n"
            "      --calib FILE        calibration tokens (default DIR/calibration.tokens)\n"
            "      --calib-text FILE   calibration text instead (repeatable): .txt (one document)\n"
            "                          or .jsonl (a document per line), either optionally .zst;\n"
            "                          tokenized with DIR's tokenizer, windows drawn as GPTQ does\n"
            "      --text-field NAME   the jsonl member holding the text (default \"text\")\n"
            "      --calib-samples N   calibration windows drawn from the text (default 128)\n"
            "      --calib-len L       tokens per window (default min(2048, the model's positions))\n"
            "      --seed S            seed of the window draw (default 0; Python's random.seed)\n"
            "      --eval-text FILE    also the perplexity of FILE (WikiText-2 protocol, windows of\n"
            "                          the calibration length), fp and W8A8, into the report\n"
            "      --method M          aweq (default), smoothquant or rtn\n"
            "      --alpha A           migration strength (default 0.5, AWEQ's square root)\n"
            "      --no-bias-correction  AWEQ without bias correction (ablation)\n"
            "      --holdout H         share of sequences held out for validation (default 0.2)\n"
            "      --batch N           sequences per block of samples (default 8)\n"
            "      --max-rel-error E   fail if any layer's W8A8 relative error exceeds E\n"
            "      --backend B         auto (default: CUDA when this rank has a GPU), cpu, cuda;\n"
            "                          or cpu-staged: the CPU kernels through the GPU data path\n"
            "                          (device copies, uploads, downloads), a check without a GPU\n"
            "      --handoff H         auto (default: NCCL when every rank has a GPU of its own),\n"
            "                          mpi (host buffers) or nccl\n"
            "      --stages S --replicas R  force the layout (default: planned)\n"
            "      --mem-per-rank G    memory budget per rank in GB (default: node / ranks)\n"
            "      --resume            reuse every block whose shard in OUT.work passes its\n"
            "                          checksum and was made by the same options; recompute the rest\n"
            "      --hang-timeout S    a rank with no progress for S seconds ends the job (1800)\n"
            "      --fail-at PHASE:RANK[:kill|hang|error]  test hook (load, calibrate, quantize,\n"
            "                          validate, evaluate, write)\n"
            "      DIR may be a name: $AWEQ_MODELS/NAME or the Hugging Face cache\n"
            "      (models--facebook--NAME/snapshots/*/).\n"
            "      --quiet             no progress lines\n"
            "      --progress-every S  least seconds between two progress lines of a phase\n"
            "                          (default 10; 0: a line per block); a bar on a terminal\n"
            "      --log-json FILE     the progress events (every block) as JSON lines, for batch\n"
            "                          systems; the last one says how the job ended\n"
            "      --report-layers L   layers whose per-channel ranges report.html draws, e.g.\n"
            "                          0,12,23 (at most 8; default the first, middle and last)\n"
            "      With --out, OUT/report.html draws the report (plots, no script) and\n"
            "      OUT/aweq_run.json records how the job ran (times, ranks, memory).\n"
            "      Run under mpirun/srun for several ranks: rank 0 plans, each rank loads\n"
            "      only its decoder blocks; the output does not depend on the rank count.\n"
            "  aweq-dist plan --model NAME_OR_DIR -n N --mem-per-rank G [options]\n"
            "      Print the plan and per-rank memory and time estimates, without weights.\n"
            "  aweq-dist eval --model DIR --text FILE [--seq-len L] [--backend B] [--quiet]\n"
            "      WikiText-2 perplexity the standard way (rows joined with \"\\n\\n\", tokenized\n"
            "      once, tokens / L windows of L = 2048 tokens) of an fp or a W8A8 checkpoint;\n"
            "      under mpirun the windows are split over the ranks (same number for any count).\n"
            "  aweq-dist eval --model DIR --tokens FILE [--holdout H] [--batch N] [--quiet]\n"
            "      Perplexity of any compressed-tensors W8A8 checkpoint (static per-tensor\n"
            "      INT8), computed with real integer products; --holdout H scores the last\n"
            "      share of sequences, as the quantization run holds them out.\n"
            "  aweq-dist tokenize --model DIR --text FILE [--text FILE...] --out FILE [options]\n"
            "      Tokenize calibration text once (one node) into a token file for --calib:\n"
            "      --calib-samples, --calib-len, --seed, --holdout, --text-field as for a run.\n"
            "  aweq-dist synth --out DIR [--shape NAME] [dims...] [options]\n"
            "      Write a generated OPT- or LLaMA-shaped checkpoint (config.json, sharded\n"
            "      safetensors, index, calibration.tokens) with the activation outliers of\n"
            "      real OPT.\n"
            "      --shape NAME        a built-in shape (default opt-125m; llama-160m for a\n"
            "                          LLaMA; see 'shapes')\n"
            "      --hidden D --layers L --heads H --ffn F --vocab V --max-pos P\n"
            "      --kv-heads K        override dimensions (tiny test models; K < H: GQA)\n"
            "      --dtype f16|bf16|f32 storage dtype (default f16)\n"
            "      --seed N            generator seed (default 1234)\n"
            "      --max-shard-size S  shard size limit, e.g. 100M, 512K (default 100M)\n"
            "      --calib-seqs N --calib-len L  calibration tokens (default 80 x 128)\n"
            "      --outliers N        outlier hidden channels (default max(2, d/128))\n"
            "      --quiet             no progress lines\n"
            "  aweq-dist inspect DIR [--scan]\n"
            "      List a checkpoint's tensors, its shape and parameter count, and check it\n"
            "      (every tensor present with the right shape; --scan also reads every\n"
            "      value and fails on NaN/Inf). On a quantized checkpoint: each layer's\n"
            "      scheme, bits, granularity and scales, and whether vLLM, transformers and\n"
            "      'aweq-dist eval' load it, by the format rules aweq-dist knows.\n"
            "  aweq-dist report OUT [OUT2 ...] [--out FILE]\n"
            "      Draw report.html from OUT/aweq_report.json (and aweq_run.json); with\n"
            "      several folders, the methods side by side (default FILE: OUT/report.html\n"
            "      for one folder, ./report.html for several).\n"
            "  aweq-dist shapes\n"
            "      The built-in OPT shapes and their parameter counts.\n"
            "  aweq-dist backend [--backend auto|cpu|cuda]\n"
            "      Say which compute backend this process would use.\n"
            "  aweq-dist --help | --version\n",
            AW_VERSION);
}

/* "100M", "512K", "2G", "12345" -> bytes (decimal units, as shard sizes are). */
static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v <= 0) return -1;
    double mul = 1;
    if (*end == 'K' || *end == 'k') mul = 1e3, end++;
    else if (*end == 'M' || *end == 'm') mul = 1e6, end++;
    else if (*end == 'G' || *end == 'g') mul = 1e9, end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end != '\0' || v * mul > 1e15) return -1;
    *out = (uint64_t)(v * mul);
    return 0;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int cmd_synth(int argc, char **argv)
{
    enum { O_SHAPE = 1000, O_OUT, O_HIDDEN, O_LAYERS, O_HEADS, O_FFN, O_VOCAB, O_MAXPOS, O_KV, O_DTYPE,
           O_SEED, O_SHARD, O_CSEQS, O_CLEN, O_OUTLIERS, O_QUIET };
    static const struct option opts[] = {
        {"shape", required_argument, 0, O_SHAPE},   {"out", required_argument, 0, O_OUT},
        {"hidden", required_argument, 0, O_HIDDEN}, {"layers", required_argument, 0, O_LAYERS},
        {"heads", required_argument, 0, O_HEADS},   {"ffn", required_argument, 0, O_FFN},
        {"vocab", required_argument, 0, O_VOCAB},   {"max-pos", required_argument, 0, O_MAXPOS},
        {"kv-heads", required_argument, 0, O_KV},
        {"dtype", required_argument, 0, O_DTYPE},   {"seed", required_argument, 0, O_SEED},
        {"max-shard-size", required_argument, 0, O_SHARD},
        {"calib-seqs", required_argument, 0, O_CSEQS}, {"calib-len", required_argument, 0, O_CLEN},
        {"outliers", required_argument, 0, O_OUTLIERS}, {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
    const char *shape = "opt-125m", *out = NULL, *dtype = NULL, *shard = NULL;
    long dims[7] = {0}, seed = -1, cseqs = 0, clen = 0, outliers = 0;
    int quiet = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        long v;
        switch (c) {
        case O_SHAPE: shape = optarg; break;
        case O_OUT: out = optarg; break;
        case O_HIDDEN: case O_LAYERS: case O_HEADS: case O_FFN: case O_VOCAB: case O_MAXPOS: case O_KV:
            if (parse_int(optarg, 1, 1 << 22, &v)) return usage_error("synth: bad dimension '%s'", optarg);
            dims[c - O_HIDDEN] = v;
            break;
        case O_DTYPE: dtype = optarg; break;
        case O_SEED:
            if (parse_int(optarg, 0, 0x7fffffffL, &seed)) return usage_error("synth: bad --seed '%s'", optarg);
            break;
        case O_SHARD: shard = optarg; break;
        case O_CSEQS:
            if (parse_int(optarg, 1, 1 << 20, &cseqs)) return usage_error("synth: bad --calib-seqs '%s'", optarg);
            break;
        case O_CLEN:
            if (parse_int(optarg, 1, 1 << 20, &clen)) return usage_error("synth: bad --calib-len '%s'", optarg);
            break;
        case O_OUTLIERS:
            if (parse_int(optarg, 1, 256, &outliers)) return usage_error("synth: bad --outliers '%s' (1..256)", optarg);
            break;
        case O_QUIET: quiet = 1; break;
        case 'h': print_help(stdout); return 0;
        default: return usage_error("synth: %s", "bad option");
        }
    }
    if (optind < argc) return usage_error("synth: unexpected argument '%s'", argv[optind]);
    if (!out) return usage_error("synth: %s", "--out DIR is required");
    const aw_model_config *base = aw_shape_find(shape);
    if (!base) return usage_error("synth: unknown shape '%s' (see 'aweq-dist shapes')", shape);

    aw_synth_opts o;
    aw_synth_defaults(&o, base);
    int custom = 0;
    int *fields[7] = {&o.cfg.hidden_size, &o.cfg.num_hidden_layers, &o.cfg.num_attention_heads,
                      &o.cfg.ffn_dim, &o.cfg.vocab_size, &o.cfg.max_position_embeddings,
                      &o.cfg.num_key_value_heads};
    if (dims[2] && !dims[6]) o.cfg.num_key_value_heads = (int)dims[2]; /* --heads alone: no grouping */
    for (int i = 0; i < 7; i++) {
        if (dims[i]) {
            *fields[i] = (int)dims[i];
            custom = 1;
        }
    }
    if (custom) {
        o.cfg.name[0] = '\0';
        o.cfg.word_embed_proj_dim = o.cfg.hidden_size;
        if (o.cfg.hidden_size % o.cfg.num_attention_heads)
            return usage_error("synth: --hidden must be a multiple of --heads%s", "");
        o.cfg.head_dim = o.cfg.hidden_size / o.cfg.num_attention_heads;
        if (o.cfg.family == AW_FAMILY_OPT && o.cfg.num_key_value_heads != o.cfg.num_attention_heads)
            return usage_error("synth: --kv-heads: %s", "OPT has no grouped-query attention");
        if (o.cfg.num_attention_heads % o.cfg.num_key_value_heads)
            return usage_error("synth: --heads must be a multiple of --kv-heads%s", "");
        if ((int)o.calib_len > o.cfg.max_position_embeddings) o.calib_len = (uint32_t)o.cfg.max_position_embeddings;
    }
    if (dtype) {
        if (!strcasecmp(dtype, "f16") || !strcasecmp(dtype, "float16")) o.cfg.torch_dtype = AW_DT_F16;
        else if (!strcasecmp(dtype, "bf16") || !strcasecmp(dtype, "bfloat16")) o.cfg.torch_dtype = AW_DT_BF16;
        else if (!strcasecmp(dtype, "f32") || !strcasecmp(dtype, "float32")) o.cfg.torch_dtype = AW_DT_F32;
        else return usage_error("synth: --dtype '%s': expected f16, bf16 or f32", dtype);
    }
    if (seed >= 0) o.seed = (uint64_t)seed;
    if (shard && parse_size(shard, &o.max_shard_bytes))
        return usage_error("synth: bad --max-shard-size '%s'", shard);
    if (cseqs) o.calib_seqs = (uint32_t)cseqs;
    if (clen) o.calib_len = (uint32_t)clen;
    if (outliers) o.n_outliers = (int)outliers;
    o.verbose = !quiet;

    aw_status st = aw_config_check_supported(&o.cfg, shape);
    if (st == AW_OK) st = aw_synth_write(&o, out);
    if (st != AW_OK) {
        print_error(st);
        return 1;
    }
    if (!quiet)
        fprintf(stderr, "synth: %s: %s%s%s d=%d layers=%d, %.1fM parameters, %u x %u calibration tokens\n",
                out, o.cfg.name, o.cfg.name[0] ? " " : "", o.cfg.family == AW_FAMILY_LLAMA ? "LLaMA" : "OPT",
                o.cfg.hidden_size, o.cfg.num_hidden_layers,
                aw_config_param_count(&o.cfg) / 1e6, o.calib_seqs, o.calib_len);
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    enum { O_MODEL = 1000, O_CALIB, O_OUT, O_METHOD, O_ALPHA, O_NOBC, O_HOLDOUT, O_BATCH, O_MAXERR,
           O_BACKEND, O_QUIET, O_STAGES, O_REPLICAS, O_MEM, O_RESUME, O_FAILAT, O_HANG, O_HANDOFF,
           O_CTEXT, O_TFIELD, O_CSAMPLES, O_CLEN, O_SEED, O_ETEXT, O_PEVERY, O_LOGJSON, O_RLAYERS };
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL},     {"calib", required_argument, 0, O_CALIB},
        {"out", required_argument, 0, O_OUT},         {"method", required_argument, 0, O_METHOD},
        {"alpha", required_argument, 0, O_ALPHA},     {"no-bias-correction", no_argument, 0, O_NOBC},
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
    int c, nobc = 0, alpha_set = 0, draw_set = 0;
    long v;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        aw_status st = AW_OK;
        switch (c) {
        case O_MODEL: o.model_dir = optarg; break;
        case O_CALIB: o.calib_path = optarg; break;
        case O_OUT: o.out_dir = optarg; break;
        case O_METHOD: st = aw_method_parse(optarg, &o.method.kind); break;
        case O_ALPHA:
            o.method.alpha = strtof(optarg, &end);
            if (*end || end == optarg || !(o.method.alpha >= 0.0f && o.method.alpha <= 1.0f))
                return usage_error("--alpha '%s': expected a number in [0, 1]", optarg);
            alpha_set = 1;
            break;
        case O_NOBC: nobc = 1; break;
        case O_HOLDOUT:
            o.holdout = strtod(optarg, &end);
            if (*end || end == optarg || !(o.holdout >= 0.0 && o.holdout < 1.0))
                return usage_error("--holdout '%s': expected a share in [0, 1)", optarg);
            break;
        case O_BATCH:
            if (parse_int(optarg, 1, 4096, &v)) return usage_error("--batch '%s': expected 1..4096", optarg);
            o.batch = (int)v;
            break;
        case O_MAXERR:
            o.max_rel_error = strtod(optarg, &end);
            if (*end || end == optarg || !(o.max_rel_error > 0))
                return usage_error("--max-rel-error '%s': expected a positive number", optarg);
            break;
        case O_BACKEND:
            if (strcmp(optarg, "cpu-staged") == 0) o.staged = 1;
            else o.staged = 0, st = aw_backend_parse(optarg, &o.backend_want);
            break;
        case O_HANDOFF:
            if (strcmp(optarg, "auto") == 0) o.handoff = AW_HANDOFF_AUTO;
            else if (strcmp(optarg, "mpi") == 0) o.handoff = AW_HANDOFF_MPI;
            else if (strcmp(optarg, "nccl") == 0) o.handoff = AW_HANDOFF_NCCL;
            else return usage_error("--handoff '%s': expected auto, mpi or nccl", optarg);
            break;
        case O_QUIET: o.quiet = 1; break;
        case O_STAGES:
            if (parse_int(optarg, 1, 1024, &v)) return usage_error("--stages '%s': expected 1..1024", optarg);
            o.stages = (int)v;
            break;
        case O_REPLICAS:
            if (parse_int(optarg, 1, 1 << 20, &v)) return usage_error("--replicas '%s': expected a positive count", optarg);
            o.replicas = (int)v;
            break;
        case O_MEM:
            o.mem_per_rank_gb = strtod(optarg, &end);
            if (*end == 'G' || *end == 'g') end++;
            if (*end == 'B' || *end == 'b') end++;
            if (*end || end == optarg || !(o.mem_per_rank_gb > 0))
                return usage_error("--mem-per-rank '%s': expected gigabytes, e.g. 80", optarg);
            break;
        case O_CTEXT:
            if (o.n_calib_texts == AW_MAX_TEXT_FILES) return usage_error("--calib-text: at most %s files", AW_MAX_TEXT_FILES_S);
            texts[o.n_calib_texts++] = optarg;
            break;
        case O_TFIELD: o.text_field = optarg; break;
        case O_CSAMPLES:
            if (parse_int(optarg, 1, 1 << 24, &v)) return usage_error("--calib-samples '%s': expected 1..16777216", optarg);
            o.calib_samples = (uint32_t)v;
            draw_set = 1;
            break;
        case O_CLEN:
            if (parse_int(optarg, 2, 1 << 20, &v)) return usage_error("--calib-len '%s': expected 2..1048576", optarg);
            o.calib_len = (uint32_t)v;
            draw_set = 1;
            break;
        case O_SEED:
            if (parse_int(optarg, 0, 0x7fffffffL, &v)) return usage_error("--seed '%s': expected 0..2147483647", optarg);
            o.seed = (uint64_t)v;
            break;
        case O_ETEXT: o.eval_text = optarg; break;
        case O_PEVERY:
            o.progress_every_s = strtod(optarg, &end);
            if (*end || end == optarg || !(o.progress_every_s >= 0 && o.progress_every_s <= 1e6))
                return usage_error("--progress-every '%s': expected seconds (0: a line per block)", optarg);
            break;
        case O_LOGJSON: o.log_json = optarg; break;
        case O_RLAYERS: {
            /* "0,12,23": checked against the model once it is read */
            const char *q = optarg;
            o.n_report_layers = 0;
            for (;;) {
                if (o.n_report_layers == AW_RANGE_MAX_LAYERS)
                    return usage_error("--report-layers '%s': at most 8 layers", optarg);
                errno = 0;
                long lv = strtol(q, &end, 10);
                if (errno || end == q || lv < 0 || lv > 1000000 || (*end != ',' && *end != '\0'))
                    return usage_error("--report-layers '%s': expected layer numbers, e.g. 0,12,23", optarg);
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
                return usage_error("--hang-timeout '%s': expected seconds (0: off)", optarg);
            break;
        case 'h': print_help(stdout); return 0;
        default: return usage_error("%s", "bad option");
        }
        if (st != AW_OK) return usage_error("%s", aw_err_message());
    }
    if (optind < argc) return usage_error("unexpected argument '%s'", argv[optind]);
    if (!o.model_dir) return usage_error("%s", "--model DIR is required");
    if (o.calib_path && o.n_calib_texts) return usage_error("%s", "--calib and --calib-text exclude each other");
    if (!o.n_calib_texts && (draw_set || o.seed))
        return usage_error("%s", "--calib-samples, --calib-len and --seed go with --calib-text");
    if (!o.n_calib_texts && !o.eval_text && o.text_field)
        return usage_error("%s", "--text-field goes with --calib-text or --eval-text");
    char *model_dir = NULL;
    aw_status rs = aw_resolve_model(o.model_dir, &model_dir);
    if (rs != AW_OK) {
        print_error(rs);
        return 1;
    }
    o.model_dir = model_dir; /* freed below, once the run is over */
    o.method.bias_correction = o.method.kind == AW_METHOD_AWEQ && !nobc;
    if (nobc && o.method.kind != AW_METHOD_AWEQ)
        return usage_error("%s", "--no-bias-correction applies to --method aweq");
    if (alpha_set && o.method.kind == AW_METHOD_RTN)
        return usage_error("%s", "--alpha does not apply to --method rtn");

    const aw_comm *w = aw_comm_world();
    if (!w) {
        free(model_dir);
        print_error(AW_ERR_MPI);
        return 1;
    }
    aw_run_result r;
    aw_status st = aw_run_comm(&o, w, &r);
    if (w->rank == 0 && (st == AW_OK || st == AW_ERR_VALIDATION) && r.layers) {
        aw_report_print(&o, &r, stdout);
        fflush(stdout);
    }
    aw_run_result_free(&r);
    const char *out_dir = o.out_dir ? o.out_dir : "(no --out)";
    o.model_dir = NULL;
    free(model_dir);
    if (st == AW_OK) return 0;
    /* A failure every rank learned in a collective step (AW_ERR_REMOTE on
     * the others) is printed once, by the rank that had it. No failed rank
     * goes through MPI_Finalize: it waits for every peer, and a peer that is
     * aborting (or blocked in a transfer) would keep it waiting. Leaving
     * without it makes the launcher end the job at once. Any other failure
     * is printed with the rank, and brings the job down with MPI_Abort. */
    if (st == AW_ERR_REMOTE) {
        fflush(stdout);
        fflush(stderr);
        if (w->size > 1) _exit(1);
        return 1;
    }
    if (st == AW_ERR_INTERRUPTED) {
        aw_print_interrupted(w->rank, w->size, out_dir);
        if (w->size > 1) MPI_Abort(w->world, 143);
        return 143;
    }
    if (w->size == 1) {
        print_error(st);
        return 1;
    }
    aw_print_error(st, w->rank, w->size);
    MPI_Abort(w->world, 1);
    return 1;
}

static int cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {{"scan", no_argument, 0, 's'}, {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int scan = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 's') scan = 1;
        else if (c == 'h') { print_help(stdout); return 0; }
        else return usage_error("inspect: %s", "bad option");
    }
    if (optind != argc - 1) return usage_error("inspect: %s", "expected one model folder");
    aw_status st = aw_inspect(argv[optind], stdout, scan);
    if (st != AW_OK) {
        fflush(stdout);
        print_error(st);
        return 1;
    }
    return 0;
}

static int cmd_shapes(void)
{
    printf("%-10s %6s %7s %6s %7s %8s %16s %s\n", "shape", "d", "layers", "heads", "ffn", "vocab",
           "parameters", "supported");
    for (size_t i = 0; i < aw_shape_count(); i++) {
        const aw_model_config *c = aw_shape_at(i);
        aw_status st = aw_config_check_supported(c, c->name);
        printf("%-10s %6d %7d %6d %7d %8d %16llu %s\n", c->name, c->hidden_size, c->num_hidden_layers,
               c->num_attention_heads, c->ffn_dim, c->vocab_size,
               (unsigned long long)aw_config_param_count(c), st == AW_OK ? "yes" : aw_err_message());
    }
    return 0;
}

static int cmd_backend(int argc, char **argv)
{
    static const struct option opts[] = {{"backend", required_argument, 0, 'b'}, {0, 0, 0, 0}};
    const char *req = "auto";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'b') req = optarg;
        else return usage_error("backend: %s", "bad option");
    }
    int want;
    aw_backend_info info;
    aw_status st = aw_backend_parse(req, &want);
    if (st == AW_OK) st = aw_backend_select(want, aw_local_rank_from_env(), &info);
    if (st != AW_OK) {
        print_error(st);
        return 1;
    }
    printf("backend: %s (%s)%s\n", aw_backend_name(info.kind), info.device_name,
           info.compiled_cuda ? "" : "; built without CUDA");
    if (info.compiled_cuda) printf("cuda devices: %d\n", info.device_count);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        print_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("aweq-dist %s\n", AW_VERSION);
        return 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run") || !strcmp(cmd, "quantize")) return cmd_run(argc - 1, argv + 1);
    if (cmd[0] == '-') return cmd_run(argc, argv);
    if (!strcmp(cmd, "synth")) return cmd_synth(argc - 1, argv + 1);
    if (!strcmp(cmd, "plan")) return aw_cmd_plan(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return aw_cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "tokenize")) return aw_cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(cmd, "inspect")) return cmd_inspect(argc - 1, argv + 1);
    if (!strcmp(cmd, "report")) return aw_cmd_report(argc - 1, argv + 1);
    if (!strcmp(cmd, "shapes")) return cmd_shapes();
    if (!strcmp(cmd, "backend")) return cmd_backend(argc - 1, argv + 1);
    return usage_error("unknown command '%s'", cmd);
}
