/* aw_sweep.c - `aweq-dist sweep`: one calibration, then every point of a
 * grid of methods and schemes quantized and evaluated, side by side on the
 * ranks when each holds the whole model, else in turn over all of them
 * (see aw_run.h). The phases are the run's (aw_run_int.h); the sweep
 * never writes shards or a checkpoint, only its tables. */
#include "aw_run_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aw_cli.h"
#include "aw_fs.h"
#include "aw_svg.h"

void aw_sweep_result_free(aw_sweep_result *r)
{
    if (!r) return;
    free(r->q);
    free(r->t_quant);
    free(r->t_eval);
    r->q = NULL;
    r->t_quant = r->t_eval = NULL;
}

/* The group that ran point i, also its first rank; -1 when every point ran
 * over all ranks. */
static int point_group(const aw_sweep_result *r, int i) { return r->groups > 1 ? i % r->groups : -1; }

/* The method the plan is made for: the first point with the statistics'
 * highest level (Gram matrices, else |x| sums), a token sample counting
 * next, else the first (the statistics' largest sums; the blocks of one
 * point live at a time). */
static const aw_method *plan_method(const aw_sweep_point *pts, int n)
{
    const aw_method *best = &pts[0].method;
    for (int i = 1; i < n; i++) {
        const aw_method *m = &pts[i].method;
        aw_stats_level lm = aw_method_stats_level(m), lb = aw_method_stats_level(best);
        if (lm > lb || (lm == lb && aw_method_needs_sample(m) && !aw_method_needs_sample(best))) best = m;
    }
    return best;
}

/* The previous point's quantized blocks, host and backend. */
static void drop_quantized(const run_topo *t, run_model *m)
{
    for (int l = 0; l < t->nl; l++) {
        if (m->dq && m->q) aw_qblock_dev_free(m->ops, &m->dq[l], &m->q[l]);
        if (m->q) aw_qblock_destroy(&m->q[l]);
    }
}

/* Rank 0, before any work: DIR can be made (an existing folder, or a
 * missing one whose parent is a writable folder: no folders the user did
 * not name). It is made when the tables are written, so a failed sweep
 * leaves nothing behind. */
static aw_status check_out_dir(const char *dir)
{
    struct stat sb;
    if (stat(dir, &sb) == 0) {
        AW_RETURN_IF(!S_ISDIR(sb.st_mode), AW_ERR_IO, "%s: exists and is not a folder", dir);
        AW_RETURN_IF(access(dir, W_OK) != 0, AW_ERR_IO, "%s: cannot write into the sweep's folder: %s", dir,
                     strerror(errno));
        return AW_OK;
    }
    char *parent = strdup(dir);
    AW_RETURN_IF(!parent, AW_ERR_NOMEM, "out of memory");
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/') parent[--n] = '\0';
    char *slash = strrchr(parent, '/');
    const char *p = slash ? (slash == parent ? "/" : (*slash = '\0', parent)) : ".";
    aw_status st = AW_OK;
    if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode) || access(p, W_OK) != 0)
        st = AW_FAIL(AW_ERR_IO, "%s: cannot create the sweep's folder: %s is not a writable folder", dir, p);
    free(parent);
    return st;
}

static aw_status make_out_dir(const char *dir)
{
    if (mkdir(dir, 0755) == 0 || errno == EEXIST) return AW_OK;
    return AW_FAIL(AW_ERR_IO, "%s: cannot create the sweep's folder: %s", dir, strerror(errno));
}

static aw_status write_text(const char *dir, const char *name, const char *text)
{
    char *path = aw_path_join(dir, name);
    AW_RETURN_IF(!path, AW_ERR_NOMEM, "out of memory");
    aw_status st = aw_write_file_atomic(path, text, strlen(text));
    free(path);
    return st;
}

static aw_status write_tables(const aw_run_opts *o, const aw_sweep_point *pts, const aw_sweep_result *r)
{
    char *json = NULL, *md = NULL, *run = NULL;
    AW_TRY(make_out_dir(o->out_dir));
    aw_status st = aw_sweep_json(o, pts, r, &json);
    if (st == AW_OK) st = aw_sweep_markdown(o, pts, r, &md);
    if (st == AW_OK) st = aw_sweep_run_json(o, pts, r, &run);
    if (st == AW_OK) st = write_text(o->out_dir, "sweep.json", json);
    if (st == AW_OK) st = write_text(o->out_dir, "sweep.md", md);
    if (st == AW_OK) st = write_text(o->out_dir, "sweep_run.json", run);
    free(json);
    free(md);
    free(run);
    return st;
}

/* Rank 0: where the time went, against a single-point run (load, calibrate,
 * one point with the fp stream). */
static void print_timing(const aw_sweep_result *r)
{
    int n = r->n_points;
    double q = 0, e = 0;
    for (int i = 0; i < n; i++) q += r->t_quant[i], e += r->t_eval[i];
    double single = r->t_load + r->t_calib + r->t_quant[0] + r->t_eval[0];
    double later = n > 1 ? (q + e - r->t_quant[0] - r->t_eval[0]) / (n - 1) : 0;
    char par[64] = "";
    if (r->groups > 1) snprintf(par, sizeof par, ", %d points side by side on %d ranks", r->groups, r->world);
    fprintf(stderr,
            "aweq-dist: sweep: %d points in %.2f s: load %.2f s and calibration %.2f s once; per point "
            "quantize %.2f s + evaluate %.2f s on average (the first, with the fp model, %.2f + %.2f s; each "
            "later %.2f s)%s; one point alone takes about %.2f s (load, calibration, the first point), this sweep "
            "%.2fx that; %s dominates\n",
            n, r->t_total, r->t_load, r->t_calib, q / n, e / n, r->t_quant[0], r->t_eval[0], later, par, single,
            single > 0 ? r->t_total / single : 0.0,
            e >= q && e >= r->t_calib ? "evaluation" : q >= r->t_calib ? "quantization" : "calibration");
    fflush(stderr);
}

/* Point i on topology t (every rank, or my group's): quantize every
 * block of t's, evaluate; r's entries for i (r->fp with the first).
 * Failures are agreed on among t's ranks, and one while streaming ends the
 * job (peers may wait for a block). A rank that has done its point waits
 * for the round's others in the world's agreement, blocked as a stage
 * waits for a block: the hang timeout must cover one point. */
static aw_status run_point(const aw_comm *world, const aw_run_opts *ro, run_inputs *in, const run_topo *t,
                           run_model *m, run_stream *s, run_output *out, const aw_run_result *rr,
                           const aw_sweep_point *pt, int i, int with_kl, aw_sweep_result *r)
{
    const aw_comm *w = t->w;
    /* a failure while a group of ranks streams ends the job, said with the
     * world's rank numbers; a rank alone returns it to the round's end */
    const aw_comm *ender = w->size > 1 ? world : w;
    const aw_model_config *c = &in->cfg;
    in->method = pt->method;
    in->method.param_dtype = in->method.scale_dtype = c->torch_dtype;
    double t0 = aw_now();
    /* the previous point's blocks and forward scratch make room for this
     * one's quantization (as a run frees the forward's workspace) */
    drop_quantized(t, m);
    aw_fwd_ws_destroy(&s->ws);
    aw_progress_begin(out->prog, "quantize", t->nl, t->S > 1 ? "blocks of stage 0" : "blocks", 0, 0);
    AW_TRY(aw_comm_agree(w, run_quantize(ro, in, t, m, s, out, rr)));
    aw_progress_end(out->prog);
    r->t_quant[i] = aw_now() - t0;

    t0 = aw_now();
    aw_status st = aw_fwd_ws_create_ops(m->ops, c, in->B, in->L, &s->ws);
    if (st == AW_OK) st = aw_fwd_ws_need_scheme(&s->ws, c, &in->method.scheme);
    AW_TRY(aw_comm_agree(w, st));
    s->eval_q_only = i > 0 && !with_kl; /* the fp model's perplexity once, unless KL is asked */
    aw_progress_begin(out->prog, "evaluate", run_n_blocks(in->n_eval, in->B), "blocks of windows",
                      (double)in->B * in->L, (long)(t->S - 1) * t->R);
    AW_TRY(aw_comm_agree(w, run_end_job_if_failed(ender, NULL, run_evaluate(ro, in, t, m, s, out, &r->q[i]))));
    aw_progress_end(out->prog);
    r->t_eval[i] = aw_now() - t0;
    return AW_OK;
}

/* Rank 0: point i's line and event, once its sums are here. */
static void point_done(aw_progress *prog, const aw_sweep_point *pt, int i, int n_pts, const aw_sweep_result *r)
{
    if (!prog) return;
    char label[96], where[32] = "";
    aw_scheme_label(&pt->method.scheme, label, sizeof label);
    if (point_group(r, i) >= 0) snprintf(where, sizeof where, " on group %d", point_group(r, i));
    aw_progress_note(prog, "point %d/%d (line %d)%s: %s %s: perplexity %.4f (fp %.4f); quantize %.2f s, "
                     "evaluate %.2f s", i + 1, n_pts, pt->line, where, aw_method_names[pt->method.kind], label,
                     aw_e2e_ppl_q(&r->q[i]), aw_e2e_ppl_fp(&r->fp), r->t_quant[i], r->t_eval[i]);
    /* for batch systems: each point as it is done */
    json_t *pe = json_object();
    json_object_set_new(pe, "index", json_integer(i));
    json_object_set_new(pe, "line", json_integer(pt->line));
    json_object_set_new(pe, "method", json_string(aw_method_names[pt->method.kind]));
    json_object_set_new(pe, "scheme", json_string(label));
    json_object_set_new(pe, "perplexity", json_real(aw_e2e_ppl_q(&r->q[i])));
    json_object_set_new(pe, "quantize_s", json_real(r->t_quant[i]));
    json_object_set_new(pe, "evaluate_s", json_real(r->t_eval[i]));
    if (point_group(r, i) >= 0) json_object_set_new(pe, "group", json_integer(point_group(r, i)));
    aw_progress_event(prog, "point", pe);
}

aw_status aw_sweep_comm(const aw_run_opts *o, const aw_sweep_point *pts, int n_pts, uint32_t eval_windows, int with_kl,
                        const aw_comm *world, aw_sweep_result *r)
{
    memset(r, 0, sizeof *r);
    run_inputs in;
    run_topo t;
    run_model m;
    run_stream s;
    run_output out;
    aw_run_result rr; /* the phases' view of a run's result: backend, no shown layers */
    aw_comm group = {.world = MPI_COMM_NULL};
    run_topo ts; /* with points side by side: my group of ranks */
    memset(&ts, 0, sizeof ts);
    memset(&in, 0, sizeof in);
    memset(&t, 0, sizeof t);
    memset(&m, 0, sizeof m);
    memset(&s, 0, sizeof s);
    memset(&out, 0, sizeof out);
    memset(&rr, 0, sizeof rr);
    t.w = world;
    aw_status st = AW_OK;
    double t_start = aw_now(), t0 = t_start;
    AW_RETURN_IF(n_pts < 1 || !o->out_dir || !o->eval_text, AW_ERR_ARG, "sweep: needs points, --out and --eval-text");
    /* the phases see a run of the plan's method with nothing to validate
     * or write */
    aw_run_opts ro = *o;
    ro.method = *plan_method(pts, n_pts);
    ro.out_dir = NULL;
    ro.resume = 0;
    r->n_points = n_pts;
    r->with_kl = with_kl;
    r->q = calloc((size_t)n_pts, sizeof *r->q);
    r->t_quant = calloc((size_t)n_pts, sizeof(double));
    r->t_eval = calloc((size_t)n_pts, sizeof(double));
    if (!r->q || !r->t_quant || !r->t_eval) st = AW_FAIL(AW_ERR_NOMEM, "out of memory");
    int local = aw_comm_node_size(world); /* collective, once */
    aw_set_blas_threads(local);
    if (st == AW_OK && world->rank == 0) st = check_out_dir(o->out_dir);
    if (st == AW_OK) st = run_progress_start(world, &ro, &out.prog);
    AW_CHECK(aw_comm_agree(world, st));
    aw_guard_start(world->rank, world->size, o->hang_timeout_s);
    st = aw_backend_select(o->staged ? AW_BACKEND_CPU : o->backend_want, aw_local_rank_from_env(), &rr.backend);
    AW_CHECK(aw_comm_agree(world, st));
    AW_CHECK(run_setup(&ro, &in, &t, local));
    const aw_model_config *c = &in.cfg;
    in.method = ro.method;
    in.method.param_dtype = in.method.scale_dtype = c->torch_dtype;
    /* calibration collects what any point needs */
    in.stats_level = AW_STATS_PLAIN;
    in.stats_sample = 0;
    for (int i = 0; i < n_pts; i++) {
        aw_stats_level lv = aw_method_stats_level(&pts[i].method);
        if (lv > in.stats_level) in.stats_level = lv;
        in.stats_sample |= aw_method_needs_sample(&pts[i].method);
    }
    AW_CHECK(aw_comm_agree(world, run_start_backend(&ro, &in, &t, &m, &s, &out, &rr)));
    r->cfg = in.cfg;
    r->backend = rr.backend;
    r->calib_seqs = in.n_calib;
    r->seq_len = (uint32_t)in.L;
    r->eval_windows_all = in.n_eval;
    if (eval_windows > 0 && in.n_eval > eval_windows) in.n_eval = eval_windows; /* the first ones */
    r->eval_windows = in.n_eval;
    r->eval_stream_tokens = in.eval_stream_tokens;
    r->stats_level = in.stats_level;
    r->stats_sample = in.stats_sample;
    r->world = world->size;
    r->stages = t.S;
    r->replicas = t.R;
    AW_GOTO_IF(in.n_eval == 0, AW_ERR_ARG, "sweep: %s has no window of %d tokens to evaluate", o->eval_text, in.L);
    aw_progress_note(out.prog, "sweep %s: %s d=%d layers=%d; %u calibration windows of %d tokens (statistics%s%s), "
                     "%u eval windows; %d point(s); %d rank(s) = %d stage(s) x %d replica(s)",
                     o->model_dir, aw_arch_of(c)->label, c->hidden_size, c->num_hidden_layers, in.n_calib, in.L,
                     in.stats_level == AW_STATS_GRAM    ? " + Gram matrices"
                     : in.stats_level == AW_STATS_ABSSUM ? " + |x| sums"
                                                         : "",
                     in.stats_sample ? " + token sample" : "", in.n_eval,
                     n_pts, world->size, t.S, t.R);
    long lag = (long)(t.S - 1) * t.R;
    double block_tokens = (double)in.B * in.L;
    aw_progress_begin(out.prog, "load", t.nl, t.S > 1 ? "blocks of stage 0" : "blocks", 0, 0);
    if (s.nccl) AW_CHECK(aw_comm_agree(world, run_end_job_if_failed(world, NULL, aw_stream_links_open(&t.pipe, m.cuda, &s.links))));
    AW_CHECK(aw_comm_agree(world, run_load_local(&in, &t, &m, &s, &out)));
    AW_CHECK(aw_comm_agree(world, aw_guard_step("load", &o->fail_at)));
    out.done = calloc((size_t)(t.nl ? t.nl : 1), sizeof(int)); /* every block is quantized, none reused */
    AW_CHECK(aw_comm_agree(world, out.done ? AW_OK : AW_FAIL(AW_ERR_NOMEM, "out of memory")));
    aw_progress_end(out.prog);
    r->t_load = aw_now() - t0;

    t0 = aw_now();
    aw_progress_begin(out.prog, "calibrate", run_n_blocks(in.n_calib, in.B), "blocks of samples", block_tokens, lag);
    AW_CHECK(aw_comm_agree(world, run_end_job_if_failed(world, NULL, run_calibrate(&ro, &in, &t, &m, &s, &out))));
    aw_progress_end(out.prog);
    r->t_calib = aw_now() - t0;

    /* points side by side: with one stage every rank holds the whole model
     * and every statistic, so the ranks split into k = min(points, ranks)
     * groups (rank g + j * k is replica j of group g); group g runs the
     * points i with i % k == g, its replicas splitting the eval windows as
     * a run's do, and its sums are added in window order as one rank adds
     * them */
    int k = t.S == 1 && world->size > 1 && n_pts > 1 ? (n_pts < world->size ? n_pts : world->size) : 1;
    r->groups = k;
    int g = world->rank % k;
    if (k > 1) {
        st = aw_comm_group(world, g, &group);
        ts = t;
        ts.w = &group;
        memset(&ts.pipe, 0, sizeof ts.pipe);
        ts.replica = group.rank;
        ts.R = group.size;
        if (st == AW_OK) st = aw_pipe_open(&group, 0, ts.replica, 1, ts.R, &ts.pipe);
        AW_CHECK(aw_comm_agree(world, st));
    }
    for (int i0 = 0; i0 < n_pts; i0 += k) {
        if (k == 1) {
            /* the one point, over all ranks (agreed on by every rank) */
            AW_CHECK(run_point(world, &ro, &in, &t, &m, &s, &out, &rr, &pts[i0], i0, with_kl, r));
        } else {
            /* my group's point of the round; a failed point in any group
             * ends the job here, after the round */
            int mine = i0 + g;
            AW_CHECK(aw_comm_agree(world, mine < n_pts ? run_point(world, &ro, &in, &ts, &m, &s, &out, &rr, &pts[mine],
                                                                   mine, with_kl, r)
                                                       : AW_OK));
            for (int i = i0; i < i0 + k && i < n_pts; i++) {
                double msg[AW_E2E_LEN + 2];
                memcpy(msg, &r->q[i], sizeof r->q[i]);
                msg[AW_E2E_LEN] = r->t_quant[i];
                msg[AW_E2E_LEN + 1] = r->t_eval[i];
                AW_CHECK(aw_comm_agree(world, aw_bcast_f64(world, msg, AW_E2E_LEN + 2, point_group(r, i))));
                memcpy(&r->q[i], msg, sizeof r->q[i]);
                r->t_quant[i] = msg[AW_E2E_LEN];
                r->t_eval[i] = msg[AW_E2E_LEN + 1];
            }
        }
        if (i0 == 0) r->fp = r->q[0]; /* the fp model's sums ride with the first point */
        for (int i = i0; i < i0 + k && i < n_pts; i++) point_done(out.prog, &pts[i], i, n_pts, r);
    }
    r->t_total = aw_now() - t_start;
    st = AW_OK;
    if (world->rank == 0) {
        st = write_tables(o, pts, r);
        if (st == AW_OK) print_timing(r);
    }
    AW_CHECK(aw_comm_agree(world, st));
fail:
    run_progress_finish(&out.prog, st, NULL);
    aw_guard_stop();
    aw_pipe_close(&ts.pipe);
    aw_comm_finalize(&group);
    run_dev_free(&t, &m, &s, st != AW_OK);
    aw_pipe_close(&t.pipe);
    run_free(&t, &in, &m, &s, &out);
    aw_run_result_free(&rr);
    return st;
}

/* ---- the tables ----------------------------------------------------------- */

/* The tables are texts grown in an aw_sb (aw_svg.h). */
static aw_status sb_done(aw_sb *b, char **out)
{
    *out = aw_sb_take(b);
    AW_RETURN_IF(!*out, AW_ERR_NOMEM, "out of memory for the sweep's table");
    return AW_OK;
}

/* A JSON string (quotes and escapes). */
static void sb_json_str(aw_sb *b, const char *s)
{
    aw_sb_printf(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') aw_sb_printf(b, "\\%c", *p);
        else if (*p < 0x20) aw_sb_printf(b, "\\u%04x", *p);
        else aw_sb_printf(b, "%c", *p);
    }
    aw_sb_printf(b, "\"");
}

/* Numbers in one fixed format; not finite ones as JSON null. */
static void sb_num(aw_sb *b, const char *fmt, double v)
{
    if (isfinite(v)) aw_sb_printf(b, fmt, v);
    else aw_sb_printf(b, "null");
}

static const char *act_name(aw_act_kind a)
{
    return a == AW_ACT_FLOAT ? "float" : a == AW_ACT_I8_TENSOR ? "int8-tensor" : "dynamic";
}

/* The method as a column of the table: its name and the options that
 * change it (alpha, bias correction, act order). */
static const char *method_label(const aw_method *m, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s", aw_method_names[m->kind]);
    int alpha = m->kind == AW_METHOD_AWEQ || m->kind == AW_METHOD_SMOOTHQUANT;
    int corrects = m->kind == AW_METHOD_AWEQ || m->kind == AW_METHOD_AWEQ_SEARCH;
    if (alpha && m->alpha != 0.5f && n > 0 && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n, " alpha %g", (double)m->alpha);
    if (corrects && !m->bias_correction && n > 0 && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n, " no-bc");
    if (m->act_order && n > 0 && (size_t)n < cap) snprintf(buf + n, cap - (size_t)n, " act-order");
    return buf;
}

static const char *dtype_row(aw_dtype dt) { return dt == AW_DT_BF16 ? "BF16" : dt == AW_DT_F32 ? "FP32" : "FP16"; }

aw_status aw_sweep_json(const aw_run_opts *o, const aw_sweep_point *pts, const aw_sweep_result *r, char **out)
{
    aw_sb b;
    aw_sb_init(&b);
    char label[96], ml[96];
    aw_sb_printf(&b, "{\n  \"model\": ");
    sb_json_str(&b, o->model_dir);
    aw_sb_printf(&b, ",\n  \"calibration\": {\"windows\": %u, \"seq_len\": %u, \"tokens\": %llu, \"gram\": %s, "
                  "\"sample\": %s%s},\n",
              r->calib_seqs, r->seq_len, (unsigned long long)r->calib_seqs * r->seq_len,
              r->stats_level == AW_STATS_GRAM ? "true" : "false", r->stats_sample ? "true" : "false",
              o->cpu_bf16 ? ", \"precision\": \"bf16 products, fp32 sums\"" : "");
    aw_sb_printf(&b, "  \"eval\": {\"text\": ");
    sb_json_str(&b, o->eval_text);
    aw_sb_printf(&b, ", \"windows\": %u, \"windows_in_text\": %u, \"stream_tokens\": %llu, \"predicted_tokens\": %.0f},\n",
              r->eval_windows, r->eval_windows_all, (unsigned long long)r->eval_stream_tokens, r->fp.n_pred);
    aw_sb_printf(&b, "  \"fp\": {\"dtype\": \"%s\", \"perplexity\": ", aw_dtype_name(r->cfg.torch_dtype));
    sb_num(&b, "%.6f", aw_e2e_ppl_fp(&r->fp));
    aw_sb_printf(&b, ", \"nll\": ");
    sb_num(&b, "%.6f", r->fp.nll_fp);
    aw_sb_printf(&b, "},\n  \"points\": [");
    for (int i = 0; i < r->n_points; i++) {
        const aw_method *m = &pts[i].method;
        const aw_scheme *sc = &m->scheme;
        const aw_e2e *e = &r->q[i];
        aw_sb_printf(&b, "%s\n    {\"line\": %d, \"options\": ", i ? "," : "", pts[i].line);
        sb_json_str(&b, pts[i].text);
        aw_sb_printf(&b, ", \"method\": \"%s\", \"column\": ", aw_method_names[m->kind]);
        sb_json_str(&b, method_label(m, ml, sizeof ml));
        aw_sb_printf(&b, ", \"alpha\": %.4f, \"bias_correction\": %s, \"act_order\": %s,\n", (double)m->alpha,
                  m->bias_correction ? "true" : "false", m->act_order ? "true" : "false");
        aw_sb_printf(&b, "     \"scheme\": {\"wbits\": %d, \"group\": %d, \"sym\": %s, \"act\": \"%s\", \"abits\": %d, "
                      "\"agroup\": %d, \"keep_pct\": %.4f}, \"label\": ",
                  sc->wbits, sc->group, sc->sym ? "true" : "false", act_name(sc->act),
                  sc->act == AW_ACT_FLOAT ? 0 : sc->abits, sc->agroup, sc->keep_pct);
        sb_json_str(&b, aw_scheme_label(sc, label, sizeof label));
        aw_sb_printf(&b, ",\n     \"perplexity\": ");
        sb_num(&b, "%.6f", aw_e2e_ppl_q(e));
        aw_sb_printf(&b, ", \"nll\": ");
        sb_num(&b, "%.6f", e->nll_q);
        aw_sb_printf(&b, ", \"predicted_tokens\": %.0f", e->n_pred);
        if (r->with_kl) {
            aw_sb_printf(&b, ", \"kl\": ");
            sb_num(&b, "%.6e", aw_e2e_kl(e));
            aw_sb_printf(&b, ", \"top1\": ");
            sb_num(&b, "%.6f", aw_e2e_top1(e));
        }
        aw_sb_printf(&b, "}");
    }
    aw_sb_printf(&b, "\n  ]\n}\n");
    return sb_done(&b, out);
}

/* Index of s in the first n entries of list, or -1. */
static int find_str(char (*list)[96], int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0) return i;
    return -1;
}

static void sb_ppl(aw_sb *b, double v)
{
    if (isfinite(v)) aw_sb_printf(b, "%.2f", v);
    else aw_sb_printf(b, "%s", isnan(v) ? "nan" : "inf");
}

aw_status aw_sweep_markdown(const aw_run_opts *o, const aw_sweep_point *pts, const aw_sweep_result *r, char **out)
{
    int n = r->n_points;
    char (*rows)[96] = calloc((size_t)n, sizeof *rows), (*cols)[96] = calloc((size_t)n, sizeof *cols);
    int *cell = malloc((size_t)n * (size_t)n * sizeof(int));
    if (!rows || !cols || !cell) {
        free(rows);
        free(cols);
        free(cell);
        return AW_FAIL(AW_ERR_NOMEM, "out of memory for the sweep's table");
    }
    int nr = 0, nc = 0;
    char label[96], ml[96];
    for (int i = 0; i < n * n; i++) cell[i] = -1;
    /* rows: schemes, columns: methods, both in order of first appearance;
     * a cell holds its first point (the list below has every point) */
    for (int i = 0; i < n; i++) {
        aw_scheme_label(&pts[i].method.scheme, label, sizeof label);
        method_label(&pts[i].method, ml, sizeof ml);
        int ri = find_str(rows, nr, label), ci = find_str(cols, nc, ml);
        if (ri < 0) snprintf(rows[ri = nr++], sizeof rows[0], "%s", label);
        if (ci < 0) snprintf(cols[ci = nc++], sizeof cols[0], "%s", ml);
        if (cell[ri * n + ci] < 0) cell[ri * n + ci] = i;
    }
    double fp = aw_e2e_ppl_fp(&r->fp);
    aw_sb b;
    aw_sb_init(&b);
    aw_sb_printf(&b, "# Sweep: %s\n\n", o->model_dir);
    char part[64] = "";
    if (r->eval_windows < r->eval_windows_all) snprintf(part, sizeof part, "the first %u of ", r->eval_windows);
    aw_sb_printf(&b, "Perplexity of %s (%s%u windows of %u tokens, %.0f predicted tokens); calibration: %u windows of "
                  "%u tokens%s.\n\n", o->eval_text, part, r->eval_windows_all, r->seq_len, r->fp.n_pred,
              r->calib_seqs, r->seq_len, o->cpu_bf16 ? " (bf16 products, fp32 sums)" : "");
    aw_sb_printf(&b, "| scheme |");
    for (int j = 0; j < nc; j++) aw_sb_printf(&b, " %s |", cols[j]);
    aw_sb_printf(&b, "\n|---|");
    for (int j = 0; j < nc; j++) aw_sb_printf(&b, "---:|");
    aw_sb_printf(&b, "\n| %s |", dtype_row(r->cfg.torch_dtype));
    for (int j = 0; j < nc; j++) {
        aw_sb_printf(&b, " ");
        sb_ppl(&b, fp);
        aw_sb_printf(&b, " |");
    }
    for (int i = 0; i < nr; i++) {
        aw_sb_printf(&b, "\n| %s |", rows[i]);
        for (int j = 0; j < nc; j++) {
            int k = cell[i * n + j];
            aw_sb_printf(&b, " ");
            if (k >= 0) sb_ppl(&b, aw_e2e_ppl_q(&r->q[k]));
            else aw_sb_printf(&b, "-");
            aw_sb_printf(&b, " |");
        }
    }
    if (r->with_kl) {
        aw_sb_printf(&b, "\n\nKL(fp || quantized) per predicted token:\n\n| scheme |");
        for (int j = 0; j < nc; j++) aw_sb_printf(&b, " %s |", cols[j]);
        aw_sb_printf(&b, "\n|---|");
        for (int j = 0; j < nc; j++) aw_sb_printf(&b, "---:|");
        for (int i = 0; i < nr; i++) {
            aw_sb_printf(&b, "\n| %s |", rows[i]);
            for (int j = 0; j < nc; j++) {
                int k = cell[i * n + j];
                if (k >= 0) aw_sb_printf(&b, " %.6f |", aw_e2e_kl(&r->q[k]));
                else aw_sb_printf(&b, " - |");
            }
        }
    }
    aw_sb_printf(&b, "\n\n| line | method | scheme | perplexity | change vs fp |%s\n|---:|---|---|---:|---:|%s\n",
              r->with_kl ? " KL | top-1 |" : "", r->with_kl ? "---:|---:|" : "");
    for (int i = 0; i < n; i++) {
        double p = aw_e2e_ppl_q(&r->q[i]);
        aw_sb_printf(&b, "| %d | %s | %s | %.4f | %+.4f (%+.2f%%) |", pts[i].line,
                  method_label(&pts[i].method, ml, sizeof ml),
                  aw_scheme_label(&pts[i].method.scheme, label, sizeof label), p, p - fp, 100.0 * (p / fp - 1.0));
        if (r->with_kl) aw_sb_printf(&b, " %.6f | %.2f%% |", aw_e2e_kl(&r->q[i]), 100.0 * aw_e2e_top1(&r->q[i]));
        aw_sb_printf(&b, "\n");
    }
    free(rows);
    free(cols);
    free(cell);
    return sb_done(&b, out);
}

aw_status aw_sweep_run_json(const aw_run_opts *o, const aw_sweep_point *pts, const aw_sweep_result *r, char **out)
{
    (void)o;
    int n = r->n_points;
    double single = r->t_load + r->t_calib + r->t_quant[0] + r->t_eval[0];
    json_t *root = json_object(), *pa = json_array(), *times = json_object();
    json_object_set_new(root, "ranks", json_integer(r->world));
    json_object_set_new(root, "stages", json_integer(r->stages));
    json_object_set_new(root, "replicas", json_integer(r->replicas));
    json_object_set_new(root, "backend", json_string(aw_backend_name(r->backend.kind)));
    json_object_set_new(root, "points_in_parallel", json_boolean(r->groups > 1));
    json_object_set_new(root, "point_groups", json_integer(r->groups));
    json_object_set_new(times, "load", json_real(r->t_load));
    json_object_set_new(times, "calibrate", json_real(r->t_calib));
    json_object_set_new(times, "total", json_real(r->t_total));
    json_object_set_new(times, "one_point_alone", json_real(single));
    json_object_set_new(times, "ratio_to_one_point", json_real(single > 0 ? r->t_total / single : 0.0));
    json_object_set_new(root, "times_s", times);
    for (int i = 0; i < n; i++) {
        json_t *p = json_object();
        json_object_set_new(p, "line", json_integer(pts[i].line));
        json_object_set_new(p, "quantize_s", json_real(r->t_quant[i]));
        json_object_set_new(p, "evaluate_s", json_real(r->t_eval[i]));
        json_object_set_new(p, "fp_stream", json_boolean(i == 0));
        if (point_group(r, i) >= 0) json_object_set_new(p, "group", json_integer(point_group(r, i)));
        json_array_append_new(pa, p);
    }
    json_object_set_new(root, "points", pa);
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    json_decref(root);
    AW_RETURN_IF(!s, AW_ERR_NOMEM, "out of memory for sweep_run.json");
    size_t len = strlen(s);
    char *t = malloc(len + 2);
    if (!t) {
        free(s);
        return AW_FAIL(AW_ERR_NOMEM, "out of memory for sweep_run.json");
    }
    memcpy(t, s, len);
    t[len] = '\n';
    t[len + 1] = '\0';
    free(s);
    *out = t;
    return AW_OK;
}
