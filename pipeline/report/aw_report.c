/* aw_report.c - aweq_report.json and the readable table (see aw_run.h). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aw_run.h"

/* JSON has no inf/nan: an infinite SQNR (no error at all) is written as null. */
static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

/* The file name without its folders: the report does not depend on where
 * the job ran. */
static const char *base_name(const char *p)
{
    const char *b = strrchr(p, '/');
    return b ? b + 1 : p;
}

json_t *aw_report_times_json(const aw_run_result *r)
{
    json_t *t = json_object();
    json_object_set_new(t, "load", json_real(r->t_load));
    json_object_set_new(t, "calibrate", json_real(r->t_calib));
    json_object_set_new(t, "quantize", json_real(r->t_quant));
    json_object_set_new(t, "validate", json_real(r->t_valid));
    json_object_set_new(t, "write", json_real(r->t_write));
    return t;
}

aw_status aw_report_json(const aw_run_opts *o, const aw_run_result *r, char **out)
{
    json_t *root = json_object();
    json_t *layers = json_array();
    AW_RETURN_IF(!root || !layers, AW_ERR_NOMEM, "out of memory for the report");
    json_object_set_new(root, "tool", json_string("aweq-dist"));
    json_object_set_new(root, "model", json_string(o->model_dir));
    json_object_set_new(root, "method", json_string(aw_method_names[o->method.kind]));
    json_object_set_new(root, "alpha", json_real(o->method.alpha));
    json_object_set_new(root, "bias_correction", json_boolean(o->method.bias_correction));
    const aw_scheme *sc = &o->method.scheme;
    if (aw_scheme_coded(sc) || sc->keep_pct > 0) {
        /* keys a W8A8 report does not have: its bytes stay as they were */
        char w[96], x[96], lab[96];
        if (!aw_scheme_coded(sc))
            snprintf(w, sizeof w, "int8, symmetric, per tensor");
        else if (sc->group > 0)
            snprintf(w, sizeof w, "int%d, %s, groups of %d inputs", sc->wbits, sc->sym ? "symmetric" : "asymmetric", sc->group);
        else
            snprintf(w, sizeof w, "int%d, %s, per output channel", sc->wbits, sc->sym ? "symmetric" : "asymmetric");
        if (sc->act == AW_ACT_FLOAT) snprintf(x, sizeof x, "floating point (weight-only)");
        else if (sc->act == AW_ACT_I8_TENSOR) snprintf(x, sizeof x, "int8, symmetric, per tensor, static");
        else if (sc->agroup > 0) snprintf(x, sizeof x, "int%d, symmetric, groups of %d inputs, dynamic", sc->abits, sc->agroup);
        else snprintf(x, sizeof x, "int%d, symmetric, per token, dynamic", sc->abits);
        json_object_set_new(root, "scheme", json_string(aw_scheme_label(sc, lab, sizeof lab)));
        json_object_set_new(root, "weights", json_string(w));
        json_object_set_new(root, "activations", json_string(x));
        if (sc->keep_pct > 0) json_object_set_new(root, "kept_fp_channels_percent", json_real(sc->keep_pct));
        if (o->method.act_order) json_object_set_new(root, "act_order", json_true());
    } else {
        json_object_set_new(root, "weights", json_string("int8, symmetric, per tensor"));
        json_object_set_new(root, "activations", json_string("int8, symmetric, per tensor, static"));
    }
    json_t *cal = json_object();
    json_object_set_new(cal, "sequences", json_integer(r->calib_seqs));
    json_object_set_new(cal, "heldout_sequences", json_integer(r->holdout_seqs));
    json_object_set_new(cal, "seq_len", json_integer(r->seq_len));
    /* named only when not the default (fp32 reports keep their bytes) */
    if (o->cpu_bf16) json_object_set_new(cal, "precision", json_string("bf16 products, fp32 sums"));
    if (o->n_calib_texts > 0) {
        /* where the windows came from, so that another tool can draw them */
        json_t *files = json_array();
        for (int i = 0; i < o->n_calib_texts; i++) json_array_append_new(files, json_string(base_name(o->calib_texts[i])));
        json_object_set_new(cal, "text", files);
        json_object_set_new(cal, "seed", json_integer((json_int_t)o->seed));
        json_object_set_new(cal, "draw", json_string("docs/calibration-text.md"));
    }
    json_object_set_new(root, "calibration", cal);
    json_t *e2e = json_object();
    json_object_set_new(e2e, "perplexity_fp", num(aw_e2e_ppl_fp(&r->e2e)));
    json_object_set_new(e2e, "perplexity_w8a8", num(aw_e2e_ppl_q(&r->e2e)));
    json_object_set_new(e2e, "kl_divergence", num(aw_e2e_kl(&r->e2e)));
    json_object_set_new(e2e, "top1_agreement", num(aw_e2e_top1(&r->e2e)));
    json_object_set_new(e2e, "predicted_tokens", json_integer((json_int_t)r->e2e.n_pred));
    json_object_set_new(root, "end_to_end", e2e);
    if (o->eval_text && r->eval_windows > 0) {
        /* the WikiText-2 protocol (docs/calibration-text.md) at the window length */
        json_t *ev = json_object();
        json_object_set_new(ev, "text", json_string(base_name(o->eval_text)));
        json_object_set_new(ev, "seq_len", json_integer(r->seq_len));
        json_object_set_new(ev, "windows", json_integer(r->eval_windows));
        json_object_set_new(ev, "text_tokens", json_integer((json_int_t)r->eval_stream_tokens));
        json_object_set_new(ev, "predicted_tokens", json_integer((json_int_t)r->eval_e2e.n_pred));
        json_object_set_new(ev, "perplexity_fp", num(aw_e2e_ppl_fp(&r->eval_e2e)));
        json_object_set_new(ev, "perplexity_w8a8", num(aw_e2e_ppl_q(&r->eval_e2e)));
        json_object_set_new(ev, "kl_divergence", num(aw_e2e_kl(&r->eval_e2e)));
        json_object_set_new(ev, "top1_agreement", num(aw_e2e_top1(&r->eval_e2e)));
        json_object_set_new(root, "eval_text", ev);
    }
    const aw_arch *a = aw_arch_of(&r->cfg);
    for (int l = 0; l < r->n_layers; l++) {
        for (int k = 0; k < a->n_lin; k++) {
            const aw_layer_metrics *m = &r->layers[l * a->n_lin + k];
            char name[128];
            snprintf(name, sizeof name, "%s.%d.%s", a->layers_prefix, l, a->lin[k].name);
            json_t *j = json_object();
            json_object_set_new(j, "name", json_string(name));
            json_object_set_new(j, "rel_error", num(m->rel_err));
            json_object_set_new(j, "sqnr_db", num(m->sqnr_db));
            json_object_set_new(j, "mean_channel_error", num(m->bias_err));
            json_object_set_new(j, "mean_channel_error_without_bias_correction", num(m->bias_err_nobc));
            if (!aw_scheme_coded(sc)) {
                json_object_set_new(j, "weight_scale", json_real(m->w_step));
                json_object_set_new(j, "input_scale", json_real(m->x_step));
            }
            json_array_append_new(layers, j);
        }
    }
    json_object_set_new(root, "layers", layers);
    if (r->depth && r->detail) {
        /* per-channel ranges before and after equalization (aw_ranges.h) */
        json_t *eq = aw_range_json(&r->cfg, &o->method, r->n_layers, r->depth, r->n_shown, r->shown, r->detail);
        if (!eq) {
            json_decref(root);
            return AW_FAIL(AW_ERR_NOMEM, "out of memory for the report");
        }
        json_object_set_new(root, "equalization", eq);
    }
    /* no timings, ranks or devices here: the report is part of the
     * checkpoint, whose bytes must not depend on how the job was run
     * (they are in aweq_run.json: aw_run_json) */
    *out = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    json_decref(root);
    AW_RETURN_IF(!*out, AW_ERR_NOMEM, "out of memory for the report");
    return AW_OK;
}

aw_status aw_run_json(const aw_run_opts *o, const aw_run_result *r, char **out)
{
    (void)o;
    json_t *root = json_object();
    AW_RETURN_IF(!root, AW_ERR_NOMEM, "out of memory for the run record");
    json_object_set_new(root, "tool", json_string("aweq-dist"));
    json_object_set_new(root, "about", json_string("how this job ran; differs from run to run, unlike "
                                                   "aweq_report.json and the checkpoint"));
    json_object_set_new(root, "ranks", json_integer(r->world));
    json_object_set_new(root, "stages", json_integer(r->stages));
    json_object_set_new(root, "replicas", json_integer(r->replicas));
    json_object_set_new(root, "handoff", json_string(r->nccl ? "NCCL (device to device)" : "MPI"));
    json_object_set_new(root, "resumed_blocks", json_integer(r->reused_blocks));
    json_object_set_new(root, "times_s", aw_report_times_json(r));
    json_t *tps = json_object();
    double vtok = (double)r->holdout_tokens + (double)r->eval_windows * r->seq_len;
    json_object_set_new(tps, "calibrate", num(r->t_calib > 0 ? (double)r->calib_tokens / r->t_calib : NAN));
    json_object_set_new(tps, "validate", num(r->t_valid > 0 ? vtok / r->t_valid : NAN));
    json_object_set_new(root, "tokens_per_s", tps);
    json_t *ranks = json_array();
    for (int k = 0; r->rank_peak_mb && k < r->world; k++) {
        json_t *e = json_object();
        json_object_set_new(e, "rank", json_integer(k));
        json_object_set_new(e, "stage", json_integer(k / r->replicas));
        json_object_set_new(e, "replica", json_integer(k % r->replicas));
        json_object_set_new(e, "first_layer", json_integer(r->rank_first_layer[k]));
        json_object_set_new(e, "last_layer", json_integer(r->rank_last_layer[k] - 1));
        json_object_set_new(e, "peak_memory_mb", json_real(r->rank_peak_mb[k]));
        json_object_set_new(e, "device", json_string(r->rank_device ? r->rank_device[k] : "?"));
        json_array_append_new(ranks, e);
    }
    json_object_set_new(root, "rank_layout", ranks);
    *out = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    json_decref(root);
    AW_RETURN_IF(!*out, AW_ERR_NOMEM, "out of memory for the run record");
    return AW_OK;
}

void aw_report_print(const aw_run_opts *o, const aw_run_result *r, FILE *out)
{
    char qn[64];
    const char *q = aw_scheme_title(&o->method.scheme, qn, sizeof qn);
    fprintf(out, "\n%s validation on %u held-out sequences x %u tokens (method %s%s, alpha %.2f)\n", q,
            r->holdout_seqs, r->seq_len, aw_method_names[o->method.kind],
            o->method.bias_correction ? " + bias correction" : "", o->method.alpha);
    if (o->cpu_bf16) fprintf(out, "calibration: bf16 products, fp32 sums (--cpu-precision bf16)\n");
    const aw_arch *a = aw_arch_of(&r->cfg);
    int nl = a->n_lin;
    fprintf(out, "%-6s", "layer");
    for (int k = 0; k < nl; k++) fprintf(out, " %11s", aw_arch_linear_short(a, k));
    fprintf(out, "   (relative error | SQNR dB)\n");
    for (int l = 0; l < r->n_layers; l++) {
        fprintf(out, "%-6d", l);
        for (int k = 0; k < nl; k++) fprintf(out, " %11.4f", r->layers[l * nl + k].rel_err);
        fprintf(out, "   |");
        for (int k = 0; k < nl; k++) fprintf(out, " %5.1f", r->layers[l * nl + k].sqnr_db);
        fprintf(out, "\n");
    }
    fprintf(out, "worst layer: %s (relative error %.4f)\n", r->worst_layer, r->worst_rel_err);
    fprintf(out, "end to end: perplexity fp %.4f, %s %.4f; KL(fp||%s) %.6f; top-1 agreement %.2f%% (%llu tokens)\n",
            aw_e2e_ppl_fp(&r->e2e), q, aw_e2e_ppl_q(&r->e2e), q, aw_e2e_kl(&r->e2e), 100.0 * aw_e2e_top1(&r->e2e),
            (unsigned long long)r->e2e.n_pred);
    if (o->eval_text && r->eval_windows > 0)
        fprintf(out, "%s: perplexity fp %.4f, %s %.4f; KL(fp||%s) %.6f; top-1 agreement %.2f%% (%u windows x %u "
                "tokens, %llu predicted; %llu tokens in the text)\n",
                base_name(o->eval_text), aw_e2e_ppl_fp(&r->eval_e2e), q, aw_e2e_ppl_q(&r->eval_e2e), q,
                aw_e2e_kl(&r->eval_e2e), 100.0 * aw_e2e_top1(&r->eval_e2e), r->eval_windows, r->seq_len,
                (unsigned long long)r->eval_e2e.n_pred, (unsigned long long)r->eval_stream_tokens);
    fprintf(out, "time: load %.2f s, calibrate %.2f s, quantize %.2f s, validate %.2f s, write %.2f s\n",
            r->t_load, r->t_calib, r->t_quant, r->t_valid, r->t_write);
    if (r->rank_peak_mb) {
        fprintf(out, "ranks: %d = %d stage(s) x %d replica(s); hand-off %s\n", r->world, r->stages, r->replicas,
                r->nccl ? "NCCL (device to device)" : "MPI");
        for (int k = 0; k < r->world; k++)
            fprintf(out, "  rank %d: stage %d, replica %d, layers %d-%d, peak memory %.0f MB, %s\n", k,
                    k / r->replicas, k % r->replicas, r->rank_first_layer[k], r->rank_last_layer[k] - 1,
                    r->rank_peak_mb[k], r->rank_device ? r->rank_device[k] : "?");
    }
}
