/* aw_cli.c - the command table, the program's help and its voice on
 * stderr (see aw_cli.h). */
#include "aw_cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- the voice ------------------------------------------------------------- */

void aw_print_error(aw_status st, int rank, int size)
{
    char who[48] = "";
    if (size > 1) snprintf(who, sizeof who, "rank %d of %d: ", rank, size);
    fprintf(stderr, "aweq-dist: %serror: %s (%s) [%s]\n", who,
            aw_err_message()[0] ? aw_err_message() : aw_strerror(st), aw_status_name(st), aw_err_where());
    fflush(stderr);
}

void aw_print_interrupted(int rank, int size, const char *out_dir)
{
    if (!out_dir) {
        fprintf(stderr, "aweq-dist: rank %d of %d: interrupted by SIGTERM (%s); nothing was written\n", rank, size,
                aw_err_message());
        fflush(stderr);
        return;
    }
    fprintf(stderr, "aweq-dist: rank %d of %d: interrupted by SIGTERM (%s); blocks already quantized are "
            "kept in %s.work: rerun the same command with --resume\n", rank, size, aw_err_message(),
            out_dir);
    fflush(stderr);
}

int aw_cli_say(char *msg, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    return -1;
}

int aw_cli_fail_job(const aw_comm *w, aw_status st, const char *out_dir)
{
    int code = st == AW_ERR_INTERRUPTED ? 143 : 1;
    if (st == AW_ERR_INTERRUPTED) aw_print_interrupted(w->rank, w->size, out_dir);
    else aw_print_error(st, w->rank, w->size);
    if (w->size > 1) aw_comm_abort(w, code);
    return code;
}

int aw_cli_end_job(const aw_comm *w, aw_status st, const char *out_dir)
{
    if (st == AW_ERR_REMOTE) {
        if (w->size > 1) aw_comm_leave_after_peer_failure();
        return 1;
    }
    return aw_cli_fail_job(w, st, out_dir);
}

int aw_usage_error(const char *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "aweq-dist: ");
    if (cmd) fprintf(stderr, "%s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'aweq-dist %s%s--help'.\n", cmd ? cmd : "", cmd ? " " : "");
    return 2;
}

/* ---- option values ------------------------------------------------------------ */

/* "100M", "512K", "2G", "12345" -> bytes (decimal units, as shard sizes are). */
int aw_cli_parse_size(const char *s, uint64_t *out)
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

int aw_cli_parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* ---- help --------------------------------------------------------------------- */

void aw_cli_help(FILE *out)
{
    fprintf(out,
            "aweq-dist %s - AWEQ post-training quantization of OPT and LLaMA models\n"
            "across MPI ranks\n"
            "\n"
            "Usage:\n"
            "  aweq-dist --model DIR [--calib FILE] [--out DIR] [options]\n"
            "      Quantize a model to W8A8 (INT8 weights and static INT8 activations, per\n"
            "      tensor), weight-only (--wbits) or with integer activations quantized at\n"
            "      run time (--adynamic), validate on held-out tokens, write the\n"
            "      compressed-tensors checkpoint and aweq_report.json (nothing is written\n"
            "      without --out).\n"
            "      --calib FILE        calibration tokens (default DIR/calibration.tokens)\n"
            "      --calib-text FILE   calibration text instead (repeatable): .txt (one\n"
            "                          document) or .jsonl (a document per line), either\n"
            "                          optionally .zst; tokenized with DIR's tokenizer,\n"
            "                          windows drawn as GPTQ does\n"
            "      --text-field NAME   the jsonl member holding the text (default \"text\")\n"
            "      --calib-samples N   calibration windows drawn from the text (default 128)\n"
            "      --calib-len L       tokens per window (default min(2048, the model's\n"
            "                          positions))\n"
            "      --seed S            seed of the window draw (default 0; Python's\n"
            "                          random.seed)\n"
            "      --eval-text FILE    also the perplexity of FILE (WikiText-2 protocol,\n"
            "                          windows of the calibration length), fp and\n"
            "                          quantized, into the report\n"
            "      --method M          aweq (default), smoothquant or rtn; with --wbits or\n"
            "                          --adynamic also awq, aweq+search (AWEQ's factor,\n"
            "                          its alpha searched) or gptq\n"
            "      --alpha A           migration strength (default 0.5, AWEQ's square root)\n"
            "      --no-bias-correction  AWEQ without bias correction (ablation)\n"
            "      --wbits B           B-bit weights (3, 4 or 8), weight-only unless\n"
            "                          --adynamic: activations kept in the model's dtype\n"
            "                          (pack-quantized)\n"
            "      --group G           inputs per weight step (default 128; 0: one per\n"
            "                          output channel)\n"
            "      --sym | --asym      steps symmetric (default) or with a zero point\n"
            "      --act-order         gptq: columns in decreasing Hessian diagonal\n"
            "      --adynamic          integer activations quantized at run time per token\n"
            "                          (or group), with --wbits' weights (default 8-bit,\n"
            "                          one step per output channel, symmetric)\n"
            "      --abits B           bits of the activations (4 to 8; default 8; below 8\n"
            "                          needs --adynamic)\n"
            "      --agroup G          inputs per activation step (default 0: per token)\n"
            "      --keep-salient P    keep P%% of each tap's channels (largest ranges) in\n"
            "                          floating point (rtn, smoothquant, aweq; not with\n"
            "                          --out)\n"
            "      --holdout H         share of sequences held out for validation (default\n"
            "                          0.2)\n"
            "      --batch N           sequences per block of samples (default 8)\n"
            "      --max-rel-error E   fail if any layer's W8A8 relative error exceeds E\n"
            "      --backend B         auto (default: CUDA when this rank has a GPU), cpu,\n"
            "                          cuda; or cpu-staged: the CPU kernels through the\n"
            "                          GPU data path (device copies, uploads, downloads),\n"
            "                          a check without a GPU\n"
            "      --cpu-precision P   fp32 (default) or bf16: calibration's linears on a\n"
            "                          CPU backend with inputs and weights rounded to\n"
            "                          bfloat16, fp32 sums (oneDNN; about 2x the fp32 rate\n"
            "                          with AVX512-BF16, refused without AVX-512). The\n"
            "                          statistics and so the output change slightly;\n"
            "                          validation stays fp32\n"
            "      --handoff H         auto (default: NCCL when every rank has a GPU of\n"
            "                          its own), mpi (host buffers) or nccl\n"
            "      --stages S --replicas R  force the layout (default: planned)\n"
            "      --mem-per-rank G    memory budget per rank in GB (default: node / ranks)\n"
            "      --resume            reuse every block whose shard in OUT.work passes its\n"
            "                          checksum and was made by the same options;\n"
            "                          recompute the rest\n"
            "      --hang-timeout S    a rank with no progress for S seconds ends the job\n"
            "                          (default 1800)\n"
            "      --fail-at PHASE:RANK[:kill|hang|error]  test hook (load, calibrate,\n"
            "                          quantize, validate, evaluate, write)\n"
            "      DIR may be a name: $AWEQ_MODELS/NAME or the Hugging Face cache\n"
            "      (models--facebook--NAME/snapshots/*/).\n"
            "      --quiet             no progress lines\n"
            "      --progress-every S  least seconds between two progress lines of a phase\n"
            "                          (default 10; 0: a line per block); a bar on a terminal\n"
            "      --log-json FILE     the progress events (every block) as JSON lines, for\n"
            "                          batch systems; the last one says how the job ended\n"
            "      --report-layers L   layers whose per-channel ranges report.html draws,\n"
            "                          e.g. 0,12,23 (at most 8; default the first, middle\n"
            "                          and last)\n"
            "      With --out, OUT/report.html draws the report (plots, no script) and\n"
            "      OUT/aweq_run.json records how the job ran (times, ranks, memory).\n"
            "      Run under mpirun/srun for several ranks: rank 0 plans, each rank loads\n"
            "      only its decoder blocks; the output does not depend on the rank count.\n"
            "  aweq-dist sweep --model DIR --calib-text F --eval-text F --grid FILE --out DIR\n"
            "      Calibrate once, then quantize and evaluate each line of FILE (a run's\n"
            "      method and scheme options): the perplexities in DIR/sweep.md and\n"
            "      DIR/sweep.json (see 'aweq-dist sweep --help').\n"
            "  aweq-dist plan --model NAME_OR_DIR -n N --mem-per-rank G [options]\n"
            "      Print the plan and per-rank memory and time estimates, without weights.\n"
            "  aweq-dist eval --model DIR --text FILE [--seq-len L] [--backend B] [--quiet]\n"
            "      WikiText-2 perplexity the standard way (rows joined with \"\\n\\n\", tokenized\n"
            "      once, tokens / L windows of L = 2048 tokens) of an fp or a quantized\n"
            "      checkpoint; under mpirun the windows are split over the ranks (same\n"
            "      number for any count).\n"
            "  aweq-dist eval --model DIR --tokens FILE [--holdout H] [--batch N] [--quiet]\n"
            "      Perplexity of any compressed-tensors W8A8 checkpoint (static per-tensor\n"
            "      INT8), computed with real integer products; --holdout H scores the last\n"
            "      share of sequences, as the quantization run holds them out.\n"
            "  aweq-dist tokenize --model DIR --text FILE [--text FILE...] --out FILE\n"
            "      Tokenize calibration text once (one node) into a token file for --calib:\n"
            "      --calib-samples, --calib-len, --seed, --holdout, --text-field as for a\n"
            "      run.\n"
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
            "      The built-in shapes (OPT, LLaMA) and their parameter counts.\n"
            "  aweq-dist backend [--backend auto|cpu|cuda]\n"
            "      Say which compute backend this process would use.\n"
            "  aweq-dist --help | --version\n",
            AW_VERSION);
}

/* ---- the command table ----------------------------------------------------------- */

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
} aw_commands[] = {
    {"run", aw_cmd_run},         {"quantize", aw_cmd_run},  {"synth", aw_cmd_synth},
    {"plan", aw_cmd_plan},       {"eval", aw_cmd_eval},     {"tokenize", aw_cmd_tokenize},
    {"inspect", aw_cmd_inspect}, {"report", aw_cmd_report}, {"shapes", aw_cmd_shapes},
    {"backend", aw_cmd_backend}, {"sweep", aw_cmd_sweep},
};

int aw_cli_main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        aw_cli_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("aweq-dist %s\n", AW_VERSION);
        return 0;
    }
    const char *cmd = argv[1];
    if (cmd[0] == '-') return aw_cmd_run(argc, argv); /* the run's options, no command name */
    for (size_t i = 0; i < sizeof aw_commands / sizeof aw_commands[0]; i++)
        if (!strcmp(cmd, aw_commands[i].name)) return aw_commands[i].fn(argc - 1, argv + 1);
    return aw_usage_error(NULL, "unknown command '%s'", cmd);
}
