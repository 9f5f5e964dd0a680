/* aw_run_results.c - what rank 0 reports: each layer's metrics, the
 * layout (layers, peak memory and device of every rank), the equalization
 * ranges the report draws (aw_ranges.h), gathered through mpi/aw_reduce.h;
 * and the report files next to the checkpoint (see aw_run_int.h). */
#include "aw_run_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "aw_fs.h"
#include "aw_html.h"

/* ---- metrics, gathered on rank 0 ------------------------------------------ */

static void layer_metrics(const run_model *m, const run_stream *s, int l, aw_layer_metrics *out)
{
    const aw_layer_val *v = &s->val[l];
    double tokens = v->total[AW_VAL_TOKENS];
    for (int k = 0; k < m->q[l].n_lin; k++) {
        aw_layer_metrics *lm = &out[k];
        const aw_qlinear *ql = &m->q[l].lin[k];
        double se = v->total[AW_VAL_SQ_ERR(k)], sr = v->total[AW_VAL_SQ_REF(k)];
        lm->rel_err = sr > 0 ? sqrt(se / sr) : 0.0;
        lm->sqnr_db = se > 0 ? 10.0 * log10(sr / se) : INFINITY;
        lm->w_step = ql->w_step;
        lm->x_step = ql->x_step;
        /* mean output error per channel, with the bias written and with the
         * bias the layer would have had without correction */
        const float *so = aw_qblock_out_scale(&m->q[l], k);
        const double *col = v->total + v->col_off[k];
        double bc = 0, nobc = 0;
        for (int i = 0; i < ql->out; i++) {
            double e = tokens > 0 ? col[i] / tokens : 0.0;
            double e0 = e + ((double)ql->bias_plain[i] - ql->bias[i]) * (so ? so[i] : 1.0);
            bc += e * e;
            nobc += e0 * e0;
        }
        lm->bias_err = sqrt(bc / ql->out);
        lm->bias_err_nobc = sqrt(nobc / ql->out);
    }
}

aw_status run_gather_metrics(const run_inputs *in, const run_topo *t, const run_model *m, const run_stream *s,
                             aw_run_result *r)
{
    const aw_comm *w = t->w;
    int n_layers = in->cfg.num_hidden_layers, n_lin = aw_arch_of(&in->cfg)->n_lin;
    size_t per = (size_t)n_lin * sizeof(aw_layer_metrics);
    aw_layer_metrics *mine = calloc((size_t)(t->nl ? t->nl : 1) * (size_t)n_lin, sizeof *mine);
    int *counts = calloc((size_t)w->size, sizeof(int)), *displs = calloc((size_t)w->size, sizeof(int));
    r->layers = calloc((size_t)n_layers * (size_t)n_lin, sizeof *r->layers);
    if (!mine || !counts || !displs || !r->layers) {
        free(mine);
        free(counts);
        free(displs);
        return AW_FAIL(AW_ERR_NOMEM, "out of memory"); /* r->layers: aw_run_result_free */
    }
    for (int l = 0; l < t->nl; l++) layer_metrics(m, s, l, mine + (size_t)l * (size_t)n_lin);
    /* replica 0 of each stage speaks for it */
    for (int rk = 0; rk < w->size; rk++) {
        int sg = aw_plan_stage_of(&t->plan, rk);
        int nl = aw_plan_replica_of(&t->plan, rk) == 0 ? t->plan.first_layer[sg + 1] - t->plan.first_layer[sg] : 0;
        counts[rk] = (int)(nl * per);
        displs[rk] = (int)(t->plan.first_layer[sg] * per);
    }
    aw_status st = aw_gatherv_bytes(w, mine, counts, displs, r->layers, 0);
    free(mine);
    free(counts);
    free(displs);
    r->n_layers = n_layers;
    r->worst_rel_err = 0;
    for (int l = 0; l < n_layers; l++)
        for (int k = 0; k < n_lin; k++)
            if (r->layers[l * n_lin + k].rel_err > r->worst_rel_err) {
                r->worst_rel_err = r->layers[l * n_lin + k].rel_err;
                snprintf(r->worst_layer, sizeof r->worst_layer, "layers.%d.%s", l,
                         aw_arch_of(&in->cfg)->lin[k].name);
            }
    return st;
}

aw_status run_gather_layout(const run_topo *t, const run_model *m, aw_run_result *r)
{
    const aw_comm *w = t->w;
    r->world = w->size;
    r->stages = t->S;
    r->replicas = t->R;
    r->rank_first_layer = calloc((size_t)w->size, sizeof(int));
    r->rank_last_layer = calloc((size_t)w->size, sizeof(int));
    r->rank_peak_mb = calloc((size_t)w->size, sizeof(double));
    AW_RETURN_IF(!r->rank_first_layer || !r->rank_last_layer || !r->rank_peak_mb, AW_ERR_NOMEM, "out of memory");
    for (int rk = 0; rk < w->size; rk++) {
        int sg = aw_plan_stage_of(&t->plan, rk);
        r->rank_first_layer[rk] = t->plan.first_layer[sg];
        r->rank_last_layer[rk] = t->plan.first_layer[sg + 1];
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double mb = (double)ru.ru_maxrss / 1024.0; /* Linux reports KB */
    AW_TRY(aw_gather_f64(w, &mb, 1, r->rank_peak_mb, 0));
    /* which backend and device each rank used */
    char mine[160];
    if (r->backend.kind == AW_BACKEND_CUDA)
        snprintf(mine, sizeof mine, "cuda device %d: %.120s", r->backend.device, r->backend.device_name);
    else
        snprintf(mine, sizeof mine, "%.16s: %.120s", m->ops ? m->ops->name : "cpu", r->backend.device_name);
    r->rank_device = calloc((size_t)w->size, sizeof *r->rank_device);
    AW_RETURN_IF(!r->rank_device, AW_ERR_NOMEM, "out of memory");
    return aw_gather_bytes(w, mine, sizeof mine, r->rank_device, 0);
}

/* ---- equalization ranges for the report (aw_ranges.h) ------------------------ */

/* Stage of the plan holding layer l. */
static int stage_of_layer(const aw_plan *p, int l)
{
    int sg = 0;
    while (sg + 1 < p->stages && p->first_layer[sg + 1] <= l) sg++;
    return sg;
}

/* Index of layer in r->shown, or -1. */
static int shown_index(const aw_run_result *r, int layer)
{
    for (int i = 0; i < r->n_shown; i++)
        if (r->shown[i] == layer) return i;
    return -1;
}

/* Replica 0 of a stage: my layer l's range summary, and its channel ranges
 * when the report shows it (while its statistics are still here). */
aw_status run_layer_ranges(const run_inputs *in, const run_topo *t, const run_model *m, const run_stream *s,
                           run_output *out, const aw_run_result *r, int l)
{
    const aw_model_config *c = &in->cfg;
    if (!out->depth_mine) {
        int mine = 0;
        for (int i = 0; i < r->n_shown; i++) mine += r->shown[i] >= t->l0 && r->shown[i] < t->l0 + t->nl;
        out->depth_mine = malloc((size_t)(t->nl ? t->nl : 1) * AW_DEPTH_LEN * sizeof(float));
        out->detail_mine = malloc((size_t)(mine ? mine : 1) * aw_range_detail_len(c) * sizeof(float));
        AW_RETURN_IF(!out->depth_mine || !out->detail_mine, AW_ERR_NOMEM, "out of memory for the report's ranges");
    }
    int layer = t->l0 + l, k = 0;
    AW_TRY(aw_range_depth(&s->stats[l], m->q[l].s, out->depth_mine + (size_t)l * AW_DEPTH_LEN));
    if (shown_index(r, layer) < 0) return AW_OK;
    for (int i = 0; i < r->n_shown; i++) k += r->shown[i] >= t->l0 && r->shown[i] < layer;
    return aw_range_detail(c, &m->fp[l], &s->stats[l], m->q[l].s,
                           out->detail_mine + (size_t)k * aw_range_detail_len(c));
}

/* Collective: every layer's summary and the shown layers' ranges on rank 0
 * (from each stage's first replica). */
aw_status run_gather_ranges(const run_inputs *in, const run_topo *t, const run_output *out, aw_run_result *r)
{
    const aw_comm *w = t->w;
    int n_layers = in->cfg.num_hidden_layers;
    size_t per = aw_range_detail_len(&in->cfg);
    int *counts = calloc((size_t)w->size, sizeof(int)), *displs = calloc((size_t)w->size, sizeof(int));
    if (w->rank == 0) {
        r->depth = malloc((size_t)n_layers * AW_DEPTH_LEN * sizeof(float));
        r->detail = malloc((size_t)(r->n_shown ? r->n_shown : 1) * per * sizeof(float));
    }
    aw_status st = AW_OK;
    if (!counts || !displs || (w->rank == 0 && (!r->depth || !r->detail)))
        st = AW_FAIL(AW_ERR_NOMEM, "out of memory for the report's ranges");
    st = aw_comm_agree(w, st);
    for (int rk = 0; rk < w->size && st == AW_OK; rk++) {
        int sg = aw_plan_stage_of(&t->plan, rk);
        int nl = aw_plan_replica_of(&t->plan, rk) == 0 ? t->plan.first_layer[sg + 1] - t->plan.first_layer[sg] : 0;
        counts[rk] = nl * AW_DEPTH_LEN;
        displs[rk] = t->plan.first_layer[sg] * AW_DEPTH_LEN;
    }
    if (st == AW_OK)
        st = aw_gatherv_f32(w, out->depth_mine, counts, displs, r->depth, 0);
    /* the shown layers, one message each, in layer order */
    for (int i = 0, k = 0; i < r->n_shown && st == AW_OK; i++) {
        int owner = stage_of_layer(&t->plan, r->shown[i]) * t->R;
        if (w->rank == owner && owner == 0)
            memcpy(r->detail + (size_t)i * per, out->detail_mine + (size_t)k * per, per * sizeof(float));
        else if (w->rank == owner)
            st = aw_send_f32(w, out->detail_mine + (size_t)k * per, per, 0, 7);
        else if (w->rank == 0)
            st = aw_recv_f32(w, r->detail + (size_t)i * per, per, owner, 7);
        if (w->rank == owner) k++;
    }
    free(counts);
    free(displs);
    return st;
}

/* ---- report files ------------------------------------------------------------- */

/* report.html and aweq_run.json next to the report (rank 0), rendered
 * from the two JSON texts exactly as `aweq-dist report OUT` renders them. */
aw_status run_write_report_files(const aw_run_opts *o, const aw_run_result *r, const char *dir,
                                 const char *report_json)
{
    char *run_text = NULL, *html = NULL, *path = NULL;
    json_t *rep = NULL, *run = NULL;
    json_error_t je;
    aw_status st = aw_run_json(o, r, &run_text);
    if (st == AW_OK) {
        rep = json_loads(report_json, 0, &je);
        run = json_loads(run_text, 0, &je);
        if (!rep || !run) st = AW_FAIL(AW_ERR_NOMEM, "out of memory for the report");
    }
    if (st == AW_OK) st = aw_html_render(&rep, &run, NULL, 1, &html);
    if (st == AW_OK) st = (path = aw_path_join(dir, "aweq_run.json")) ? AW_OK : AW_FAIL(AW_ERR_NOMEM, "out of memory");
    if (st == AW_OK) st = aw_write_file_atomic(path, run_text, strlen(run_text));
    free(path);
    path = NULL;
    if (st == AW_OK) st = (path = aw_path_join(dir, "report.html")) ? AW_OK : AW_FAIL(AW_ERR_NOMEM, "out of memory");
    if (st == AW_OK) st = aw_write_file_atomic(path, html, strlen(html));
    free(path);
    free(html);
    free(run_text);
    json_decref(rep);
    json_decref(run);
    return st;
}
