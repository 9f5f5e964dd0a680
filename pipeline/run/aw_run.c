/* aw_run.c - the quantization job over MPI ranks (see aw_run.h): the
 * phases in order (load, calibrate, quantize, validate, evaluate, write),
 * each agreed on by every rank; the phases themselves are in the other
 * files of pipeline/run/ (aw_run_int.h). */
#include "aw_run_int.h"

#include <stdlib.h>
#include <string.h>

#include "aw_cli.h"

aw_status run_end_job_if_failed(const aw_comm *w, const char *out_dir, aw_status st)
{
    if (st != AW_OK && w->size > 1) aw_cli_fail_job(w, st, out_dir);
    return st;
}

aw_status run_progress_start(const aw_comm *w, const aw_run_opts *o, aw_progress **prog)
{
    *prog = NULL;
    if (w->rank != 0 || (o->quiet && !o->log_json)) return AW_OK;
    aw_progress_opts po;
    aw_progress_defaults(&po);
    po.print = !o->quiet;
    po.every_s = o->progress_every_s;
    po.log_path = o->log_json;
    return aw_progress_create(&po, prog);
}

void run_progress_finish(aw_progress **prog, aw_status st, json_t *times)
{
    if (!*prog) {
        json_decref(times);
        return;
    }
    /* the last event, for batch systems: how the job ended */
    json_t *f = json_object();
    json_object_set_new(f, "status", json_string(st == AW_OK ? "ok" : aw_status_name(st)));
    if (st != AW_OK) json_object_set_new(f, "message", json_string(aw_err_message()));
    if (times) json_object_set_new(f, "times_s", times);
    aw_progress_event(*prog, "end", f);
    aw_progress_destroy(*prog);
    *prog = NULL;
}

aw_status aw_run_comm(const aw_run_opts *o, const aw_comm *world, aw_run_result *r)
{
    memset(r, 0, sizeof *r);
    run_inputs in;
    run_topo t;
    run_model m;
    run_stream s;
    run_output out;
    memset(&in, 0, sizeof in);
    memset(&t, 0, sizeof t);
    memset(&m, 0, sizeof m);
    memset(&s, 0, sizeof s);
    memset(&out, 0, sizeof out);
    t.w = world;
    aw_status st = AW_OK;
    double t0 = aw_now();
    int local = aw_comm_node_size(world); /* collective, once */
    aw_set_blas_threads(local);
    AW_GOTO_IF(o->batch < 1, AW_ERR_ARG, "--batch %d: expected at least 1", o->batch);
    /* progress lines and events come from rank 0 (stage 0, replica 0) */
    st = run_progress_start(world, o, &out.prog);
    AW_CHECK(aw_comm_agree(world, st));
    aw_guard_start(world->rank, world->size, o->hang_timeout_s);
    st = aw_backend_select(o->staged ? AW_BACKEND_CPU : o->backend_want, aw_local_rank_from_env(), &r->backend);
    AW_CHECK(aw_comm_agree(world, st));
    AW_CHECK(run_setup(o, &in, &t, local));
    const aw_model_config *c = &in.cfg;
    AW_CHECK(aw_comm_agree(world, run_start_backend(o, &in, &t, &m, &s, &out, r)));
    r->cfg = in.cfg;
    in.method = o->method;
    /* non-quantized tensors and scales are written (and validated) in the
     * model's dtype; INT8 codes come from the rounded scale */
    in.method.param_dtype = c->torch_dtype;
    in.method.scale_dtype = c->torch_dtype;
    char slabel[64];
    const aw_scheme *sc = &o->method.scheme;
    if (world->rank == 0 && aw_scheme_coded(sc) && sc->group > 0) {
        /* the program runs a shorter last group; compressed-tensors 0.20
         * (and with it transformers and vLLM) refuses one */
        const aw_arch *a = aw_arch_of(c);
        for (int l = 0; l < a->n_lin; l++) {
            int inw = aw_arch_dim(c, a->lin[l].in);
            if (inw % sc->group == 0) continue;
            fprintf(stderr, "aweq-dist: warning: %s has %d inputs, not a multiple of --group %d: the last group of "
                            "each row is shorter; aweq-dist eval reads the checkpoint, compressed-tensors 0.20 "
                            "(transformers, vLLM) does not\n", a->lin[l].name, inw, sc->group);
            break;
        }
    }
    r->calib_seqs = in.n_calib;
    r->holdout_seqs = in.n_hold;
    r->seq_len = (uint32_t)in.L;
    r->calib_tokens = (uint64_t)in.n_calib * in.L;
    r->holdout_tokens = (uint64_t)in.n_hold * in.L;
    int plain = sc->act == AW_ACT_I8_TENSOR && !(sc->keep_pct > 0); /* W8A8 as it always was */
    aw_progress_note(out.prog, "model %s: %s d=%d layers=%d; %u calibration + %u held-out sequences of %d tokens; "
                     "method %s%s%s; %d rank(s) = %d stage(s) x %d replica(s)",
                     o->model_dir, aw_arch_of(c)->label, c->hidden_size, c->num_hidden_layers, in.n_calib, in.n_hold, in.L,
                     aw_method_names[o->method.kind], plain ? "" : ", ",
                     plain ? "" : aw_scheme_label(&o->method.scheme, slabel, sizeof slabel),
                     world->size, t.S, t.R);
    if (out.prog) {
        /* for batch systems: what this job is, before its phases */
        json_t *pe = json_object();
        json_object_set_new(pe, "model", json_string(o->model_dir));
        json_object_set_new(pe, "method", json_string(aw_method_names[o->method.kind]));
        json_object_set_new(pe, "layers", json_integer(c->num_hidden_layers));
        json_object_set_new(pe, "ranks", json_integer(world->size));
        json_object_set_new(pe, "stages", json_integer(t.S));
        json_object_set_new(pe, "replicas", json_integer(t.R));
        json_object_set_new(pe, "calibration_sequences", json_integer(in.n_calib));
        json_object_set_new(pe, "heldout_sequences", json_integer(in.n_hold));
        json_object_set_new(pe, "eval_windows", json_integer(in.n_eval));
        json_object_set_new(pe, "seq_len", json_integer(in.L));
        json_object_set_new(pe, "batch", json_integer(in.B));
        aw_progress_event(out.prog, "plan", pe);
    }
    /* the layers the report shows channel by channel */
    if (o->n_report_layers > 0) {
        /* the same answer on every rank: rank 0 says it, the others follow */
        AW_CHECK(aw_comm_agree(world, world->rank == 0 ? aw_range_check_layers(o->report_layers, o->n_report_layers,
                                                                                c->num_hidden_layers)
                                                       : AW_OK));
        r->n_shown = o->n_report_layers;
        memcpy(r->shown, o->report_layers, (size_t)r->n_shown * sizeof(int));
    } else {
        r->n_shown = aw_range_default_layers(c->num_hidden_layers, r->shown);
    }
    /* blocks of samples the pipeline still computes after rank 0's last:
     * the other stages' lag behind stage 0 */
    long lag = (long)(t.S - 1) * t.R;
    double block_tokens = (double)in.B * in.L;
    aw_progress_begin(out.prog, "load", t.nl, t.S > 1 ? "blocks of stage 0" : "blocks", 0, 0);
    /* the links first: NCCL's buffers are taken before the blocks fill the
     * device; a rank failing here may leave its neighbour inside an init
     * that only it could complete, so the job ends at once */
    if (s.nccl)
        AW_CHECK(aw_comm_agree(world, run_end_job_if_failed(world, o->out_dir, aw_stream_links_open(&t.pipe, m.cuda, &s.links))));
    AW_CHECK(aw_comm_agree(world, run_load_local(&in, &t, &m, &s, &out)));
    AW_CHECK(aw_comm_agree(world, aw_guard_step("load", &o->fail_at)));
    AW_CHECK(run_prepare_shards(o, &in, &t, &m, &out, r));
    r->t_load = aw_now() - t0;
    aw_progress_end(out.prog);

    t0 = aw_now();
    aw_progress_begin(out.prog, "calibrate", run_n_blocks(in.n_calib, in.B), "blocks of samples", block_tokens, lag);
    AW_CHECK(aw_comm_agree(world, run_end_job_if_failed(world, o->out_dir, run_calibrate(o, &in, &t, &m, &s, &out))));
    r->t_calib = aw_now() - t0;
    aw_progress_end(out.prog);

    t0 = aw_now();
    /* Peak memory is the largest phase, not their sum: the forward
     * workspace is not needed while quantizing, when the f32 equalized block
     * takes its place (the plan counts memory this way). */
    aw_fwd_ws_destroy(&s.ws);
    aw_progress_begin(out.prog, "quantize", t.nl, t.S > 1 ? "blocks of stage 0" : "blocks", 0, 0);
    st = run_quantize(o, &in, &t, &m, &s, &out, r);
    AW_CHECK(aw_comm_agree(world, st));
    AW_CHECK(aw_comm_agree(world, run_gather_ranges(&in, &t, &out, r)));
    /* statistics are spent once a layer is quantized */
    for (int l = 0; l < t.nl; l++) {
        aw_stats_destroy(&s.stats[l]);
        free(s.parts[l]);
        s.parts[l] = NULL;
    }
    r->t_quant = aw_now() - t0;
    aw_progress_end(out.prog);

    t0 = aw_now();
    aw_progress_begin(out.prog, "validate", run_n_blocks(in.n_hold, in.B), "blocks of samples", block_tokens, lag);
    AW_CHECK(aw_comm_agree(world, run_end_job_if_failed(world, o->out_dir, run_validate(o, &in, &t, &m, &s, &out, &r->e2e))));
    AW_CHECK(run_gather_metrics(&in, &t, &m, &s, r));
    aw_progress_end(out.prog);
    if (in.n_eval > 0) {
        aw_progress_begin(out.prog, "evaluate", run_n_blocks(in.n_eval, in.B), "blocks of windows", block_tokens, lag);
        AW_CHECK(aw_comm_agree(world, run_end_job_if_failed(world, o->out_dir, run_evaluate(o, &in, &t, &m, &s, &out, &r->eval_e2e))));
        aw_progress_end(out.prog);
        r->eval_windows = in.n_eval;
        r->eval_stream_tokens = in.eval_stream_tokens;
        aw_progress_note(out.prog, "evaluate: %s: perplexity fp %.4f, %s %.4f on %u windows of %d tokens",
                         o->eval_text, aw_e2e_ppl_fp(&r->eval_e2e),
                         aw_scheme_title(sc, slabel, sizeof slabel),
                         aw_e2e_ppl_q(&r->eval_e2e), in.n_eval, in.L);
    }
    r->t_valid = aw_now() - t0;
    st = AW_OK;
    if (world->rank == 0 && o->max_rel_error > 0 && r->worst_rel_err > o->max_rel_error)
        st = AW_FAIL(AW_ERR_VALIDATION, "%s: relative error %.4g exceeds --max-rel-error %g", r->worst_layer,
                     r->worst_rel_err, o->max_rel_error);
    AW_CHECK(aw_comm_agree(world, st));

    if (o->out_dir) {
        t0 = aw_now();
        aw_progress_begin(out.prog, "write", t.nl, t.S > 1 ? "blocks of stage 0" : "blocks", 0, 0);
        AW_CHECK(run_write_output(o, &in, &t, &m, &out, r, t0));
        r->t_write = aw_now() - t0;
        aw_progress_end(out.prog);
        aw_progress_note(out.prog, "wrote %s (report: %s/report.html)", o->out_dir, o->out_dir);
    }
    /* with --out, gathered before the report was written */
    if (!r->rank_peak_mb) AW_CHECK(run_gather_layout(&t, &m, r));
fail:
    run_progress_finish(&out.prog, st, out.prog ? aw_report_times_json(r) : NULL);
    aw_guard_stop();
    run_dev_free(&t, &m, &s, st != AW_OK);
    aw_pipe_close(&t.pipe);
    run_free(&t, &in, &m, &s, &out);
    return st;
}

aw_status aw_run(const aw_run_opts *o, aw_run_result *r)
{
    const aw_comm *w = aw_comm_world();
    if (!w) {
        memset(r, 0, sizeof *r);
        return AW_FAIL(AW_ERR_MPI, "MPI could not start: %s", aw_err_message());
    }
    return aw_run_comm(o, w, r);
}
