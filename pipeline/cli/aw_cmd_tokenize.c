/* aw_cmd_tokenize.c - the `tokenize` command: calibration text into a token
 * file, once, for --calib (see aw_cli.h). */
#include "aw_cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aw_config.h"
#include "aw_fs.h"
#include "aw_resolve.h"
#include "aw_textdata.h"
#include "aw_tokenizer.h"

#define AW_TOK_MAX_FILES 64

static void print_help(FILE *out)
{
    fprintf(out,
            "Usage: aweq-dist tokenize --model DIR --text FILE [--text FILE ...] --out FILE [options]\n"
            "  Tokenize calibration text with the model's own tokenizer (DIR's tokenizer.json,\n"
            "  or vocab.json + merges.txt) and draw the windows a run given --calib-text would\n"
            "  draw, into a token file for --calib (docs/token-file.md): calibration windows\n"
            "  first, then the held-out ones (docs/calibration-text.md says exactly how).\n"
            "  --model DIR          model folder or name (as for a run)\n"
            "  --text FILE          .txt (one document) or .jsonl (one per line), optionally .zst\n"
            "  --text-field NAME    jsonl member holding the text (default \"text\")\n"
            "  --out FILE           token file to write (atomically)\n"
            "  --calib-samples N    calibration windows (default 128)\n"
            "  --calib-len L        tokens per window (default min(2048, the model's positions))\n"
            "  --seed S             seed of the draw (default 0)\n"
            "  --holdout H          share of all windows held out for validation (default 0.2;\n"
            "                       give the run the same --holdout)\n"
            "  --quiet              no progress line\n");
}

int aw_cmd_tokenize(int argc, char **argv)
{
    enum { O_MODEL = 1000, O_TEXT, O_FIELD, O_OUT, O_SAMPLES, O_LEN, O_SEED, O_HOLDOUT, O_QUIET };
    static const struct option opts[] = {
        {"model", required_argument, 0, O_MODEL},     {"text", required_argument, 0, O_TEXT},
        {"calib-text", required_argument, 0, O_TEXT}, {"text-field", required_argument, 0, O_FIELD},
        {"out", required_argument, 0, O_OUT},         {"calib-samples", required_argument, 0, O_SAMPLES},
        {"calib-len", required_argument, 0, O_LEN},   {"seed", required_argument, 0, O_SEED},
        {"holdout", required_argument, 0, O_HOLDOUT}, {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, 'h'},                {0, 0, 0, 0}};
    const char *model = NULL, *out = NULL, *field = NULL, *files[AW_TOK_MAX_FILES];
    int n_files = 0, quiet = 0, c;
    long samples = 128, len = 0, seed = 0;
    double holdout = 0.2;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_MODEL: model = optarg; break;
        case O_TEXT:
            if (n_files == AW_TOK_MAX_FILES) return aw_usage_error("tokenize", "--text: at most %s files", "64");
            files[n_files++] = optarg;
            break;
        case O_FIELD: field = optarg; break;
        case O_OUT: out = optarg; break;
        case O_SAMPLES:
            if (aw_cli_parse_int(optarg, 1, 1 << 24, &samples)) return aw_usage_error("tokenize", "--calib-samples '%s': expected 1..16777216", optarg);
            break;
        case O_LEN:
            if (aw_cli_parse_int(optarg, 2, 1 << 20, &len)) return aw_usage_error("tokenize", "--calib-len '%s': expected 2..1048576", optarg);
            break;
        case O_SEED:
            if (aw_cli_parse_int(optarg, 0, 0x7fffffffL, &seed)) return aw_usage_error("tokenize", "--seed '%s': expected 0..2147483647", optarg);
            break;
        case O_HOLDOUT:
            holdout = strtod(optarg, &end);
            if (*end || end == optarg || !(holdout >= 0.0 && holdout < 1.0))
                return aw_usage_error("tokenize", "--holdout '%s': expected a share in [0, 1)", optarg);
            break;
        case O_QUIET: quiet = 1; break;
        case 'h': print_help(stdout); return 0;
        default: return aw_usage_error("tokenize", "%s", "bad option");
        }
    }
    if (optind < argc) return aw_usage_error("tokenize", "unexpected argument '%s'", argv[optind]);
    if (!model) return aw_usage_error("tokenize", "%s", "--model DIR is required");
    if (!n_files) return aw_usage_error("tokenize", "%s", "--text FILE is required");
    if (!out) return aw_usage_error("tokenize", "%s", "--out FILE is required");

    char *dir = NULL, *cfg_path = NULL;
    aw_tokenizer *tk = NULL;
    aw_tokens tok = {0};
    uint64_t stream = 0;
    aw_status st = aw_resolve_model(model, &dir);
    if (st == AW_OK && len == 0) {
        /* the default window: 2048 tokens, or the model's positions if fewer */
        aw_model_config cfg;
        len = 2048;
        cfg_path = aw_path_join(dir, "config.json");
        st = cfg_path ? aw_config_read(cfg_path, &cfg) : AW_FAIL(AW_ERR_NOMEM, "out of memory");
        if (st == AW_OK && cfg.max_position_embeddings < len) len = cfg.max_position_embeddings;
    }
    if (st == AW_OK) st = aw_tokenizer_open(dir, &tk);
    uint32_t n_hold = aw_holdout_windows((uint32_t)samples, holdout);
    if (st == AW_OK && n_hold > AW_MAX_HOLDOUT_WINDOWS)
        st = AW_FAIL(AW_ERR_ARG, "--holdout %g with %ld calibration windows: more than %u held-out windows",
                     holdout, samples, AW_MAX_HOLDOUT_WINDOWS);
    if (st == AW_OK) {
        if (!quiet) fprintf(stderr, "aweq-dist: tokenize: %s\n", aw_tokenizer_describe(tk));
        aw_calib_text_opts co = {.files = files, .n_files = n_files, .text_field = field,
                                 .n_calib = (uint32_t)samples, .n_hold = n_hold, .seq_len = (uint32_t)len,
                                 .seed = (uint64_t)seed, .quiet = quiet};
        st = aw_calib_from_text(tk, &co, &tok, &stream);
    }
    if (st == AW_OK) st = aw_tokens_write(out, &tok);
    if (st == AW_OK)
        printf("tokenize: wrote %s: %ld calibration + %u held-out windows of %ld tokens (vocabulary %u) from %llu "
               "tokens; run with --calib %s --holdout %g\n",
               out, samples, n_hold, len, tok.vocab_size, (unsigned long long)stream, out, holdout);
    aw_tokens_free(&tok);
    aw_tokenizer_close(tk);
    free(cfg_path);
    free(dir);
    if (st != AW_OK) {
        aw_print_error(st, 0, 1);
        return 1;
    }
    return 0;
}
