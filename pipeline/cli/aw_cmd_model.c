/* aw_cmd_model.c - the commands about model folders: synth (a generated
 * checkpoint), inspect, shapes, backend (see aw_cli.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aw_arch.h"
#include "aw_backend.h"
#include "aw_cli.h"
#include "aw_config.h"
#include "aw_inspect.h"
#include "aw_synth.h"

int aw_cmd_synth(int argc, char **argv)
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
            if (aw_cli_parse_int(optarg, 1, 1 << 22, &v)) return aw_usage_error(NULL, "synth: bad dimension '%s'", optarg);
            dims[c - O_HIDDEN] = v;
            break;
        case O_DTYPE: dtype = optarg; break;
        case O_SEED:
            if (aw_cli_parse_int(optarg, 0, 0x7fffffffL, &seed)) return aw_usage_error(NULL, "synth: bad --seed '%s'", optarg);
            break;
        case O_SHARD: shard = optarg; break;
        case O_CSEQS:
            if (aw_cli_parse_int(optarg, 1, 1 << 20, &cseqs)) return aw_usage_error(NULL, "synth: bad --calib-seqs '%s'", optarg);
            break;
        case O_CLEN:
            if (aw_cli_parse_int(optarg, 1, 1 << 20, &clen)) return aw_usage_error(NULL, "synth: bad --calib-len '%s'", optarg);
            break;
        case O_OUTLIERS:
            if (aw_cli_parse_int(optarg, 1, 256, &outliers)) return aw_usage_error(NULL, "synth: bad --outliers '%s' (1..256)", optarg);
            break;
        case O_QUIET: quiet = 1; break;
        case 'h': aw_cli_help(stdout); return 0;
        default: return aw_usage_error(NULL, "synth: %s", "bad option");
        }
    }
    if (optind < argc) return aw_usage_error(NULL, "synth: unexpected argument '%s'", argv[optind]);
    if (!out) return aw_usage_error(NULL, "synth: %s", "--out DIR is required");
    const aw_model_config *base = aw_shape_find(shape);
    if (!base) return aw_usage_error(NULL, "synth: unknown shape '%s' (see 'aweq-dist shapes')", shape);

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
            return aw_usage_error(NULL, "synth: --hidden must be a multiple of --heads%s", "");
        o.cfg.head_dim = o.cfg.hidden_size / o.cfg.num_attention_heads;
        if (!aw_arch_of(&o.cfg)->grouped_kv && o.cfg.num_key_value_heads != o.cfg.num_attention_heads)
            return aw_usage_error(NULL, "synth: --kv-heads: %s has no grouped-query attention",
                                  aw_arch_of(&o.cfg)->label);
        if (o.cfg.num_attention_heads % o.cfg.num_key_value_heads)
            return aw_usage_error(NULL, "synth: --heads must be a multiple of --kv-heads%s", "");
        if ((int)o.calib_len > o.cfg.max_position_embeddings) o.calib_len = (uint32_t)o.cfg.max_position_embeddings;
    }
    if (dtype) {
        if (!strcasecmp(dtype, "f16") || !strcasecmp(dtype, "float16")) o.cfg.torch_dtype = AW_DT_F16;
        else if (!strcasecmp(dtype, "bf16") || !strcasecmp(dtype, "bfloat16")) o.cfg.torch_dtype = AW_DT_BF16;
        else if (!strcasecmp(dtype, "f32") || !strcasecmp(dtype, "float32")) o.cfg.torch_dtype = AW_DT_F32;
        else return aw_usage_error(NULL, "synth: --dtype '%s': expected f16, bf16 or f32", dtype);
    }
    if (seed >= 0) o.seed = (uint64_t)seed;
    if (shard && aw_cli_parse_size(shard, &o.max_shard_bytes))
        return aw_usage_error(NULL, "synth: bad --max-shard-size '%s'", shard);
    if (cseqs) o.calib_seqs = (uint32_t)cseqs;
    if (clen) o.calib_len = (uint32_t)clen;
    if (outliers) o.n_outliers = (int)outliers;
    o.verbose = !quiet;

    aw_status st = aw_config_check_supported(&o.cfg, shape);
    if (st == AW_OK) st = aw_synth_write(&o, out);
    if (st != AW_OK) {
        aw_print_error(st, 0, 1);
        return 1;
    }
    if (!quiet)
        fprintf(stderr, "synth: %s: %s%s%s d=%d layers=%d, %.1fM parameters, %u x %u calibration tokens\n",
                out, o.cfg.name, o.cfg.name[0] ? " " : "", aw_arch_of(&o.cfg)->label,
                o.cfg.hidden_size, o.cfg.num_hidden_layers,
                aw_config_param_count(&o.cfg) / 1e6, o.calib_seqs, o.calib_len);
    return 0;
}
int aw_cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {{"scan", no_argument, 0, 's'}, {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int scan = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 's') scan = 1;
        else if (c == 'h') { aw_cli_help(stdout); return 0; }
        else return aw_usage_error(NULL, "inspect: %s", "bad option");
    }
    if (optind != argc - 1) return aw_usage_error(NULL, "inspect: %s", "expected one model folder");
    aw_status st = aw_inspect(argv[optind], stdout, scan);
    if (st != AW_OK) {
        fflush(stdout);
        aw_print_error(st, 0, 1);
        return 1;
    }
    return 0;
}

int aw_cmd_shapes(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("%-12s %6s %7s %6s %7s %8s %16s %s\n", "shape", "d", "layers", "heads", "ffn", "vocab",
           "parameters", "supported");
    for (size_t i = 0; i < aw_shape_count(); i++) {
        const aw_model_config *c = aw_shape_at(i);
        aw_status st = aw_config_check_supported(c, c->name);
        printf("%-12s %6d %7d %6d %7d %8d %16llu %s\n", c->name, c->hidden_size, c->num_hidden_layers,
               c->num_attention_heads, c->ffn_dim, c->vocab_size,
               (unsigned long long)aw_config_param_count(c), st == AW_OK ? "yes" : aw_err_message());
    }
    return 0;
}

int aw_cmd_backend(int argc, char **argv)
{
    static const struct option opts[] = {{"backend", required_argument, 0, 'b'}, {0, 0, 0, 0}};
    const char *req = "auto";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'b') req = optarg;
        else return aw_usage_error(NULL, "backend: %s", "bad option");
    }
    int want;
    aw_backend_info info;
    aw_status st = aw_backend_parse(req, &want);
    if (st == AW_OK) st = aw_backend_select(want, aw_local_rank_from_env(), &info);
    if (st != AW_OK) {
        aw_print_error(st, 0, 1);
        return 1;
    }
    printf("backend: %s (%s)%s\n", aw_backend_name(info.kind), info.device_name,
           info.compiled_cuda ? "" : "; built without CUDA");
    if (info.compiled_cuda) printf("cuda devices: %d\n", info.device_count);
    return 0;
}
