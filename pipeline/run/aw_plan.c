/* aw_plan.c - the plan: costs of a layout and its printout (see aw_plan.h); the
 * command is pipeline/cli/aw_cmd_plan.c. */
#include "aw_plan.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aw_forward.h"
#include "aw_fs.h"
#include "aw_model.h"
#include "aw_ranges.h"
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
    out->block_bytes = aw_block_bytes(c, c->torch_dtype) + aw_qblock_bytes(c, &AW_SCHEME_W8A8) + (stats > val ? stats : val);
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
    /* the same work split by phase, for the cost models (aw_sched.h) */
    out->work.calib_flops = per_token * calib_tokens;
    out->work.calib_values = calib_tokens * (double)n_stat;
    out->work.params = (double)aw_arch_linear_params(c);
    out->work.params_root_d = out->work.params * sqrt((double)d);
    out->work.shard_bytes = out->work.params; /* INT8 weights (aw_plan_costs_method: other schemes) */
    _Static_assert(AW_PLAN_MAX_SHOWN >= 3, "the default shown layers fit");
    out->n_shown = aw_range_default_layers(c->num_hidden_layers, out->shown);
    out->work.valid_flops = per_token * 3.0 * hold_tokens;
    out->work.valid_values = hold_tokens * (double)n_stat;
    out->work.head_flops = out->head_flops;
    out->work.head_values = 2.0 * hold_tokens * (double)V;
    out->sample_blocks = calib_blocks > 0x7fffffff ? 0x7fffffff : (int)calib_blocks;
    /* a GPU rank quantizes on the device: the f32 equalized block */
    out->gpu_quant_bytes = aw_block_bytes(c, AW_DT_F32);
    out->seq_len = seq_len;
    out->batch = batch;
    out->calib_seqs = calib_seqs;
    out->holdout_seqs = holdout_seqs;
    return AW_OK;
}

/* What a method adds to a block's work: the Gram matrices' products in
 * calibration (a syrk, in^2 FLOP per token and tap), and in quantization
 * the matrix products of the scale searches (per grid value and linear
 * fed by a searched tap: the candidate's error through the Gram matrix, 2
 * out in^2 in double, counted twice, or on the token sample, 2 n_samp in
 * out, plus the sample's reference product once) and of GPTQ (per linear two LAPACK
 * factorizations of in^3/3 in double, counted twice for the double
 * rate, and the sweep's out in^2, counted twice for its rate). */
static void method_work(const aw_model_config *c, const aw_method *m, double calib_tokens, double hold_tokens,
                        aw_stats_level level, aw_plan_costs *k)
{
    const aw_arch *a = aw_arch_of(c);
    aw_block_work *w = &k->work;
    if (level == AW_STATS_GRAM)
        for (int t = 0; t < AW_TAP_COUNT; t++) {
            double in = (double)aw_arch_tap_width(c, (aw_tap_id)t), syrk = in * in * calib_tokens;
            w->calib_flops += syrk;
            k->block_flops += syrk;
        }
    int search = m->kind == AW_METHOD_AWQ || m->kind == AW_METHOD_AWEQ_SEARCH;
    int dyn = m->scheme.act == AW_ACT_DYNAMIC;
    double n_samp = calib_tokens < AW_SAMPLE_TOKENS ? calib_tokens : AW_SAMPLE_TOKENS;
    for (int l = 0; l < a->n_lin; l++) {
        double in = (double)aw_arch_dim(c, a->lin[l].in), out = (double)aw_arch_dim(c, a->lin[l].out);
        if (search && aw_scheme_coded(&m->scheme) && aw_method_uses_tap(m, c, a->lin[l].tap)) {
            w->quant_flops += dyn ? (AW_SEARCH_GRID + 1) * 2.0 * n_samp * in * out
                                  : AW_SEARCH_GRID * 2.0 * (2.0 * out * in * in); /* dsymm: double */
            /* and each candidate's weights rounded, at the per-weight rate of
             * quantization's one rounding (its cache term left out: a
             * candidate streams one linear at a time) */
            w->quant_params += AW_SEARCH_GRID * in * out;
        }
        /* weight-only: the quantized stream and the checks in fp32 */
        if (aw_scheme_weight_only(&m->scheme)) w->valid_fp_flops += 2.0 * 2.0 * in * out * hold_tokens;
        /* the sweep's updates are triangular, out in^2 FLOP, but run column
         * by column inside 128-column blocks at about half the sgemm rate
         * (opt-125m: 6.05 s measured): counted twice */
        if (m->kind == AW_METHOD_GPTQ) w->quant_flops += 2.0 * (2.0 * in * in * in / 3.0) + 2.0 * out * in * in;
    }
}

aw_status aw_plan_costs_method(const aw_model_config *c, const aw_method *m, int seq_len, int batch,
                               uint32_t calib_seqs, uint32_t holdout_seqs, aw_plan_costs *out)
{
    AW_TRY(aw_plan_costs_for(c, seq_len, batch, calib_seqs, holdout_seqs, out));
    /* the shard's weights: INT8 values (W8A8, dynamic schemes) or packed
     * codes (weight-only), and per group a step in the scale dtype */
    if (aw_scheme_weight_only(&m->scheme)) out->work.shard_bytes = out->work.params * m->scheme.wbits / 8.0;
    if (aw_scheme_coded(&m->scheme) && m->scheme.group > 0)
        out->work.shard_bytes += out->work.params / m->scheme.group * aw_dtype_size(m->scale_dtype);
    /* weight-only blocks add their steps and zero points; their bias
     * correction dequantizes a linear on the device */
    out->block_bytes += aw_qblock_bytes(c, &m->scheme) - aw_qblock_bytes(c, &AW_SCHEME_W8A8);
    if (aw_scheme_coded(&m->scheme)) out->gpu_quant_bytes += (uint64_t)aw_arch_max_linear(c) * sizeof(float);
    /* the scheme's scratch in the quantized forward (validation, eval):
     * dynamic activations' steps and grouped-product scratch, kept
     * channels' gathered columns (coded weights dequantize into the f32
     * weight buffer the CPU forward has anyway; a GPU allocates it) */
    uint64_t T = (uint64_t)batch * (uint64_t)seq_len;
    uint64_t valid_ws = aw_fwd_ws_bytes(c, batch, seq_len) + aw_val_ws_bytes(c, (int)T, 1) +
                        aw_fwd_ws_scheme_bytes(c, (int)T, &m->scheme, 1);
    uint64_t hand = 4 * T * (uint64_t)c->hidden_size * sizeof(float);
    if (hand + valid_ws > out->rank_fixed_bytes) out->rank_fixed_bytes = hand + valid_ws;
    out->gpu_valid_extra = aw_fwd_ws_scheme_bytes(c, (int)T, &m->scheme, 0);
    /* methods that search with the activation quantizer: a token sample of
     * every tap per block, kept until the block is quantized */
    if (aw_method_needs_sample(m)) out->block_bytes += aw_stats_sample_bytes(c, AW_SAMPLE_TOKENS);
    aw_stats_level level = aw_method_stats_level(m);
    out->stats_abssum = level >= AW_STATS_ABSSUM;
    method_work(c, m, (double)calib_seqs * (double)seq_len, (double)holdout_seqs * (double)seq_len, level, out);
    /* per block: the |x| sums and the Gram totals (double), and one part of
     * them (one replica adds each block's part as it comes) */
    if (level >= AW_STATS_ABSSUM)
        out->block_bytes += aw_stats_bytes(c, level) - aw_stats_bytes(c, AW_STATS_PLAIN) +
                            aw_stats_extra_part_len(c, level) * sizeof(double);
    if (level != AW_STATS_GRAM) return AW_OK;
    /* per rank: the f32 Gram of one block of samples (calibration), and while
     * quantizing a layer the method's scratch: GPTQ's copies of the largest
     * Gram and its inverse factor in double plus the weights in f32, the
     * search's error products */
    uint64_t in_max = (uint64_t)aw_arch_max_width(c), sq = aw_stats_gram_scratch_floats(c);
    uint64_t quant_extra = 2 * in_max * in_max * sizeof(double) + 2 * (uint64_t)aw_arch_max_linear(c) * sizeof(float);
    uint64_t calib_extra = sq * sizeof(float);
    out->rank_fixed_bytes += quant_extra > calib_extra ? quant_extra : calib_extra;
    /* on a GPU the same buffers while quantizing (the largest Gram in
     * double, GPTQ's factor in f32, the weights dequantized or swept), and
     * a block's f32 Gram while calibrating; per block the |x| sums */
    out->gpu_quant_bytes += in_max * in_max * (sizeof(double) + sizeof(float)) +
                            2 * (uint64_t)aw_arch_max_linear(c) * sizeof(float);
    out->gpu_calib_extra = calib_extra;
    return AW_OK;
}

aw_status aw_gpu_costs_for(const aw_model_config *c, const aw_plan_costs *k, aw_gpu_costs *out)
{
    int seq_len = k->seq_len, batch = k->batch;
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
    if (k->stats_abssum) stats += n_stat * sizeof(double); /* the |x| sums */
    out->block = aw_block_bytes(c, wdt) + aw_qblock_bytes(c, &AW_SCHEME_W8A8) + (stats > val ? stats : val);
    /* the hand-off blocks (fp and W8A8 streams, double-buffered), the
     * tokens, and the largest phase's scratch: validation's workspaces (the
     * forward's and the per-layer checks'), calibration's (the forward's and
     * a block's Gram matrices), or quantization's (k->gpu_quant_bytes; the
     * forward's workspace is freed then) */
    uint64_t fwd = aw_fwd_ws_bytes_ops(c, batch, seq_len, 0);
    uint64_t phase = fwd + aw_val_ws_bytes(c, (int)T, 1) + k->gpu_valid_extra;
    if (fwd + k->gpu_calib_extra > phase) phase = fwd + k->gpu_calib_extra;
    if (k->gpu_quant_bytes > phase) phase = k->gpu_quant_bytes;
    out->fixed = 4 * T * d * sizeof(float) + T * sizeof(uint32_t) + phase;

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
    AW_TRY(aw_gpu_costs_for(c, k, &g));
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

/* The slowest stage's time by phase, each with where its estimate comes
 * from: a cost model fitted on this machine (measured) or a rate nobody
 * measured yet (assumed). */
static void print_phases(FILE *out, const aw_plan *p, const aw_plan_costs *k)
{
    static const char *const names[AW_PHASE_COUNT] = {"load", "calibrate", "quantize", "validate"};
    int s = p->phase_stage;
    int blocks = p->first_layer[s + 1] - p->first_layer[s];
    char measured[256], assumed[160], read[96], t[32];
    if (k->timed) {
        int n = snprintf(measured, sizeof measured, "measured: fitted on %s, %d thread%s", aw_cost_cpu.machine,
                         aw_cost_cpu.fit_threads, aw_cost_cpu.fit_threads == 1 ? "" : "s");
        if (k->threads != aw_cost_cpu.fit_threads && n > 0 && (size_t)n < sizeof measured)
            snprintf(measured + n, sizeof measured - (size_t)n,
                     "; scaled to %d by the measured parallel share (Amdahl)", k->threads);
        fprintf(out, "time by phase on stage %d (the slowest: %d block%s, %d replica%s), cpu backend, "
                     "%d thread%s per rank:\n",
                s, blocks, blocks == 1 ? "" : "s", p->replicas, p->replicas == 1 ? "" : "s", k->threads,
                k->threads == 1 ? "" : "s");
    } else {
        snprintf(assumed, sizeof assumed, "assumed: %g TFLOP/s per GPU, not yet measured", p->rates.flops_per_s / 1e12);
        fprintf(out, "time by phase on stage %d (the slowest: %d block%s, %d replica%s), cuda backend:\n", s, blocks,
                blocks == 1 ? "" : "s", p->replicas, p->replicas == 1 ? "" : "s");
    }
    snprintf(read, sizeof read, "assumed: %g GB/s file-system read, not yet measured", p->rates.read_bytes_per_s / 1e9);
    for (int ph = 0; ph < AW_PHASE_COUNT; ph++) {
        const char *src = ph == AW_PHASE_LOAD ? read : k->timed ? measured : assumed;
        if (!k->timed && ph == AW_PHASE_QUANTIZE)
            src = k->work.quant_flops > 0
                      ? "assumed: the method's matrix products at that rate (GPTQ's factorizations run on the "
                        "host), the shards' zstd on one CPU thread; the rest not counted, not yet measured"
                      : "assumed: the shards' zstd on one CPU thread; the quantization on the GPU not counted, "
                        "not yet measured";
        fprintf(out, "  %-10s %10s  (%s)\n", names[ph], fmt_time(p->phase_seconds[ph], t, sizeof t), src);
    }
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
    AW_TRY(aw_gpu_costs_for(c, k, &g));
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
    print_phases(out, p, k);
    fprintf(out, "%s\n", k->timed ? "inputs of the estimates:" : "assumptions (estimates, not measurements):");
    if (k->timed) {
        fprintf(out, "  cpu backend, %d thread%s per rank: seconds per block from a cost model fitted on %s "
                     "with %d thread%s (bench/fit_costs.sh, bench/results/cost-model.md); %.1f GB/s "
                     "file-system read per rank (assumed)\n",
                k->threads, k->threads == 1 ? "" : "s", aw_cost_cpu.machine, aw_cost_cpu.fit_threads,
                aw_cost_cpu.fit_threads == 1 ? "" : "s", p->rates.read_bytes_per_s / 1e9);
    } else {
        fprintf(out, "  %.0f TFLOP/s sustained per rank%s; %.1f GB/s file-system read per rank\n",
                p->rates.flops_per_s / 1e12,
                p->rates.flops_per_s == 400e12
                    ? " (the default: about 40% of an H100 SXM's 989 TFLOP/s dense fp16 peak)"
                    : "",
                p->rates.read_bytes_per_s / 1e9);
    }
    fprintf(out, "  %u calibration + %u held-out sequences of %d tokens (%.0f + %.0f tokens), %d per block of "
                 "samples (%d blocks)\n",
            k->calib_seqs, k->holdout_seqs, k->seq_len, calib_tokens, hold_tokens, k->batch, k->sample_blocks);
    fprintf(out, "  a block runs once per calibration token and three times per held-out token (fp, W8A8, "
                 "per-layer checks): %.3g FLOP per decoder block, %.3g FLOP for the head\n",
            k->block_flops, k->head_flops);
    if (k->timed)
        fprintf(out, "  work of one decoder block: calibrate %.6g FLOP + %.6g values, quantize %.6g weights + "
                     "%.6g weights x sqrt(d) (%d blocks again for the report's ranges), validate %.6g FLOP + %.6g "
                     "values; head %.6g FLOP + %.6g values\n",
                k->work.calib_flops, k->work.calib_values, k->work.params, k->work.params_root_d, k->n_shown, k->work.valid_flops,
                k->work.valid_values, k->work.head_flops, k->work.head_values);
    AW_RETURN_IF(ferror(out), AW_ERR_IO, "plan: cannot write the plan: %s", strerror(errno));
    return AW_OK;
}
