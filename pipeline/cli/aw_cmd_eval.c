/* aw_cmd_eval.c - `aweq-dist eval`: --text (the WikiText-2 protocol, over
 * the ranks) or --tokens (a W8A8 checkpoint on a token file); prints the
 * perplexity line on stdout (see aw_cli.h, aw_eval.h). */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aw_backend.h"
#include "aw_cli.h"
#include "aw_eval_int.h"

static void print_help(FILE *out)
{
    fprintf(out,
            "Usage: aweq-dist eval --model DIR --text FILE [--seq-len L] [options]\n"
            "       aweq-dist eval --model DIR --tokens FILE [--holdout H] [--batch N] [--quiet]\n"
            "  With --text: perplexity the WikiText-2 way, of an fp checkpoint or a W8A8\n"
            "  compressed-tensors one: the text's rows (a .txt cut after every newline, the\n"
            "  documents of a .jsonl) joined with \"\\n\\n\", tokenized once with DIR's tokenizer\n"
            "  (BOS in front), cut into tokens / L windows of L tokens; exp of the mean\n"
            "  -log p over every window's L - 1 predicted tokens. Under mpirun/srun each rank\n"
            "  holds the whole model and the windows are dealt over the ranks; the result\n"
            "  does not depend on the rank count.\n"
            "  --model DIR       the checkpoint folder (config.json, safetensors, tokenizer)\n"
            "  --text FILE       .txt or .jsonl, optionally .zst (e.g. wiki.test.raw)\n"
            "  --seq-len L       window length (default 2048)\n"
            "  --text-field NAME the jsonl member holding the text (default \"text\")\n"
            "  --max-windows K   only the first K windows (a quick look)\n"
            "  --backend B       auto (default), cpu, cuda or cpu-staged\n"
            "  With --tokens: perplexity of a W8A8 checkpoint (int-quantized, static\n"
            "  per-tensor INT8 weights and activations) on a token file, read from DIR alone.\n"
            "  --tokens FILE     token file (e.g. the model's calibration.tokens)\n"
            "  --holdout H       evaluate the last round(H x sequences), as the quantizer holds\n"
            "                    them out; 0 (default) evaluates every sequence\n"
            "  --batch N         sequences per block of samples (default 8; use the quantizer's\n"
            "                    value to reproduce its number exactly)\n"
            "  --quiet           no progress lines\n");
}

/* eval --text: collective over the process's world; only rank 0 prints. */
static int run_text(const aw_eval_text_opts *o)
{
    const aw_comm *w = aw_comm_world();
    if (!w) {
        aw_print_error(AW_ERR_MPI, 0, 1);
        return 1;
    }
    aw_eval_text_result r;
    aw_status st = aw_eval_text(o, w, &r);
    if (st == AW_OK) {
        if (w->rank == 0) {
            char lab[64];
            const char *kind = !r.quantized ? "fp" : aw_scheme_title(&r.scheme, lab, sizeof lab);
            printf("eval: %s: %s wikitext2 ppl %.6f on %u windows x %u tokens (%llu predicted tokens; %llu tokens "
                   "in %s)\n",
                   o->model_dir, kind, r.ppl, r.n_windows, r.seq_len,
                   (unsigned long long)r.n_pred, (unsigned long long)r.text_tokens, o->text_path);
            aw_eval_progress(o->quiet, "%.2f s on %d rank(s); rank 0: %s", r.seconds, w->size, r.backend);
            fflush(stdout);
        }
        return 0;
    }
    return aw_cli_end_job(w, st, NULL); /* as the quantization run ends */
}

int aw_cmd_eval(int argc, char **argv)
{
    enum { O_MODEL = 1000, O_TOKENS, O_HOLDOUT, O_BATCH, O_QUIET, O_TEXT, O_SEQLEN, O_FIELD, O_MAXW, O_BACKEND };
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL},     {"tokens", required_argument, 0, O_TOKENS},
        {"holdout", required_argument, 0, O_HOLDOUT}, {"batch", required_argument, 0, O_BATCH},
        {"quiet", no_argument, 0, O_QUIET},           {"text", required_argument, 0, O_TEXT},
        {"seq-len", required_argument, 0, O_SEQLEN},  {"text-field", required_argument, 0, O_FIELD},
        {"max-windows", required_argument, 0, O_MAXW}, {"backend", required_argument, 0, O_BACKEND},
        {"help", no_argument, 0, 'h'},                {0, 0, 0, 0}};
    const char *model = NULL, *tokens = NULL;
    double holdout = 0.0;
    int batch = 8, quiet = 0, c, holdout_set = 0, batch_set = 0, text_only = 0;
    aw_eval_text_opts to = {.seq_len = 2048, .backend_want = -1};
    char *end;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_MODEL: model = optarg; break;
        case O_TOKENS: tokens = optarg; break;
        case O_TEXT: to.text_path = optarg; break;
        case O_FIELD: to.text_field = optarg, text_only = 1; break;
        case O_HOLDOUT:
            holdout = strtod(optarg, &end);
            if (*end || end == optarg || !(holdout >= 0.0 && holdout < 1.0))
                return aw_usage_error("eval", "--holdout '%s': expected a share in [0, 1)", optarg);
            holdout_set = 1;
            break;
        case O_BATCH:
            v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > 4096)
                return aw_usage_error("eval", "--batch '%s': expected 1..4096", optarg);
            batch = (int)v;
            batch_set = 1;
            break;
        case O_SEQLEN:
            v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 2 || v > (1 << 20))
                return aw_usage_error("eval", "--seq-len '%s': expected 2..1048576", optarg);
            to.seq_len = (int)v;
            text_only = 1;
            break;
        case O_MAXW:
            v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > INT32_MAX)
                return aw_usage_error("eval", "--max-windows '%s': expected a positive count", optarg);
            to.max_windows = (int)v;
            text_only = 1;
            break;
        case O_BACKEND:
            if (strcmp(optarg, "cpu-staged") == 0) {
                to.staged = 1;
            } else if (aw_backend_parse(optarg, &to.backend_want) != AW_OK) {
                return aw_usage_error("eval", "--backend '%s': expected auto, cpu, cuda or cpu-staged", optarg);
            }
            text_only = 1;
            break;
        case O_QUIET: quiet = 1; break;
        case 'h': print_help(stdout); return 0;
        default: return aw_usage_error("eval", "%s", "bad option");
        }
    }
    if (optind < argc) return aw_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!model) return aw_usage_error("eval", "%s", "--model DIR is required");
    if (!tokens == !to.text_path) return aw_usage_error("eval", "%s", "give one of --text FILE or --tokens FILE");
    if (!to.text_path && text_only)
        return aw_usage_error("eval", "%s", "--seq-len, --max-windows, --text-field and --backend go with --text");
    if (to.text_path) {
        if (holdout_set || batch_set) return aw_usage_error("eval", "%s", "--holdout and --batch go with --tokens, not --text");
        to.model_dir = model;
        to.quiet = quiet;
        return run_text(&to);
    }

    aw_eval_result r;
    aw_status st = aw_eval(model, tokens, holdout, batch, quiet, &r);
    if (st != AW_OK) {
        aw_print_error(st, 0, 1);
        return 1;
    }
    char lab[64];
    printf("eval: %s: %s perplexity %.6f on %u sequences x %u tokens (%llu predicted tokens)\n", model,
           aw_scheme_title(&r.scheme, lab, sizeof lab), r.ppl, r.n_seq, r.seq_len, (unsigned long long)r.n_pred);
    aw_eval_progress(quiet, "%.2f s", r.seconds);
    fflush(stdout);
    return 0;
}

