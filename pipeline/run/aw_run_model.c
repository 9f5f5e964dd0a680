/* aw_run_model.c - this rank's kernels and layers: the backend (CUDA after
 * checking that the plan's GPU part fits, the staged CPU table, or the
 * CPU's), the hand-off it allows, and the decoder blocks of this rank's
 * stage in the backend's memory (see aw_run_int.h). */
#include "aw_run_int.h"

#include <stdlib.h>
#include <string.h>

#include "aw_plan.h"

void run_dev_free(const run_topo *t, run_model *m, run_stream *s, int failed)
{
    const aw_ops *o = m->ops;
    if (!o) return;
    const aw_cuda_api *cu = m->cuda;
    aw_stream_links_close(&s->links, failed);
    for (int l = 0; l < t->nl; l++) {
        if (m->dfp && m->fp) aw_block_dev_free(o, &m->dfp[l], &m->fp[l]);
        if (m->dq && m->q) aw_qblock_dev_free(o, &m->dq[l], &m->q[l]);
        /* sums mirrored in the backend's memory go back to the host */
        if (s->stats) aw_stats_destroy(&s->stats[l]);
        if (s->val) aw_layer_val_destroy(&s->val[l]);
    }
    free(m->dfp);
    free(m->dq);
    m->dfp = NULL;
    m->dq = NULL;
    aw_ends_dev_free(o, &m->dends, &m->ends);
    aw_fwd_ws_destroy(&s->ws);
    aw_val_ws_destroy(&s->vws);
    for (int i = 0; i < 2; i++) aw_ops_mirror_free(o, s->dbuf[i], s->buf[i]);
    aw_ops_mirror_free(o, s->dtok, NULL);
    aw_ops_mirror_free(o, s->dlx, s->lx);
    aw_ops_mirror_free(o, s->dlogits_fp, s->logits_fp);
    aw_ops_mirror_free(o, s->dlogits_q, s->logits_q);
    aw_ops_mirror_free(o, s->dgram, s->gram);
    s->dbuf[0] = s->dbuf[1] = NULL;
    s->dtok = NULL;
    s->dgram = NULL;
    s->dlx = s->dlogits_fp = s->dlogits_q = NULL;
    if (cu && m->ops_owned) cu->ops_destroy(m->ops_owned);
    m->ops_owned = NULL;
    m->ops = NULL;
}

void run_free(const run_topo *t, run_inputs *in, run_model *m, run_stream *s, run_output *out)
{
    run_dev_free(t, m, s, 1);
    for (int l = 0; l < t->nl; l++) {
        if (m->fp) aw_block_destroy(&m->fp[l]);
        if (m->q) aw_qblock_destroy(&m->q[l]);
        if (s->stats) aw_stats_destroy(&s->stats[l]);
        if (s->val) aw_layer_val_destroy(&s->val[l]);
        if (s->parts) free(s->parts[l]);
    }
    free(s->parts);
    free(out->done);
    free(out->work);
    free(m->fp);
    free(m->q);
    free(s->stats);
    free(s->val);
    free(s->e2e_parts);
    free(out->depth_mine);
    free(out->detail_mine);
    aw_fwd_ws_destroy(&s->ws);
    aw_val_ws_destroy(&s->vws);
    aw_ends_destroy(&m->ends);
    aw_tokens_free(&in->tokens);
    aw_mf_close(in->mf);
    free(s->buf[0]);
    free(s->buf[1]);
    free(s->gram);
    free(s->lx);
    free(s->logits_fp);
    free(s->logits_q);
    memset(in, 0, sizeof *in);
    memset(m, 0, sizeof *m);
    memset(s, 0, sizeof *s);
    memset(out, 0, sizeof *out);
}

aw_status run_load_local(const run_inputs *in, const run_topo *t, run_model *m, run_stream *s, run_output *out)
{
    const aw_model_config *c = &in->cfg;
    int d = c->hidden_size, nl = t->nl;
    size_t maxT = (size_t)in->B * in->L;
    m->fp = calloc((size_t)nl, sizeof *m->fp);
    m->q = calloc((size_t)nl, sizeof *m->q);
    s->stats = calloc((size_t)nl, sizeof *s->stats);
    s->val = calloc((size_t)nl, sizeof *s->val);
    s->parts = calloc((size_t)nl, sizeof *s->parts);
    AW_RETURN_IF(!m->fp || !m->q || !s->stats || !s->val || !s->parts, AW_ERR_NOMEM, "out of memory");
    for (int l = 0; l < nl; l++) {
        AW_TRY(aw_block_create(c, c->torch_dtype, &m->fp[l]));
        AW_TRY(aw_block_load(c, in->mf, t->l0 + l, &m->fp[l]));
        AW_TRY(aw_stats_create(c, in->stats_level, &s->stats[l]));
        if (in->stats_sample)
            AW_TRY(aw_stats_use_sample(&s->stats[l], AW_SAMPLE_TOKENS, (uint64_t)in->n_calib * (uint64_t)in->L));
        aw_progress_step(out->prog, l + 1);
    }
    if (t->is_first || t->is_last) AW_TRY(aw_ends_load(c, in->mf, &m->ends));
    for (int i = 0; i < 2; i++) {
        s->buf[i] = malloc(2 * maxT * d * sizeof(float));
        AW_RETURN_IF(!s->buf[i], AW_ERR_NOMEM, "out of memory for hand-off buffers of %zu tokens", maxT);
    }
    /* the backend's copies: weights, sums, workspace, hand-off blocks */
    const aw_ops *o = m->ops;
    m->dfp = calloc((size_t)nl, sizeof *m->dfp);
    m->dq = calloc((size_t)nl, sizeof *m->dq);
    AW_RETURN_IF(!m->dfp || !m->dq, AW_ERR_NOMEM, "out of memory");
    if (in->stats_level == AW_STATS_GRAM) {
        size_t n = aw_stats_gram_scratch_floats(c);
        s->gram = calloc(n, sizeof(float));
        AW_RETURN_IF(!s->gram, AW_ERR_NOMEM, "out of memory for the Gram matrices of a block (%zu floats)", n);
        AW_TRY(aw_ops_mirror(o, (void **)&s->dgram, s->gram, n * sizeof(float), "Gram matrices of a block"));
        AW_TRY(o->vt->zero(o, s->dgram, n * sizeof(float)));
    }
    for (int l = 0; l < nl; l++) {
        AW_TRY(aw_block_to_dev(o, c, &m->fp[l], &m->dfp[l]));
        aw_stats_use_gram_scratch(&s->stats[l], s->gram, s->dgram);
        AW_TRY(aw_stats_attach(&s->stats[l], o));
    }
    if (t->is_first || t->is_last) AW_TRY(aw_ends_to_dev(o, c, &m->ends, &m->dends));
    AW_TRY(aw_fwd_ws_create_ops(o, c, in->B, in->L, &s->ws));
    if (in->cpu_bf16) AW_TRY(aw_fwd_ws_need_bf16(&s->ws, c)); /* calibration's */
    for (int i = 0; i < 2; i++)
        AW_TRY(aw_ops_mirror(o, (void **)&s->dbuf[i], s->buf[i], 2 * maxT * d * sizeof(float), "hand-off blocks"));
    if (!o->host) AW_TRY(o->vt->alloc(o, (void **)&s->dtok, maxT * sizeof(uint32_t), "tokens"));
    return o->vt->sync(o);
}

/* Collective: how many ranks of this node use this rank's GPU (by its PCI
 * ids, right whatever CUDA_VISIBLE_DEVICES or the local-rank variables
 * say); 1 on the CPU. */
static aw_status gpu_sharing(const aw_comm *w, const aw_backend_info *b, int *sharing)
{
    int same = 0;
    *sharing = 1;
    AW_TRY(aw_comm_node_count_same(w, b->device_key, &same));
    if (b->device_key) *sharing = same;
    return AW_OK;
}

aw_status run_start_backend(const aw_run_opts *o, const run_inputs *in, const run_topo *t, run_model *m,
                            run_stream *s, run_output *out, aw_run_result *r)
{
    aw_status st = AW_OK;
    const aw_comm *w = t->w;
    int sharing = 1;
    AW_TRY(gpu_sharing(w, &r->backend, &sharing));
    if (o->staged) {
        m->ops = aw_ops_cpu_staged();
    } else if (r->backend.kind == AW_BACKEND_CUDA) {
        aw_gpu_costs g;
        aw_plan_costs k;
        size_t free_b = 0, total_b = 0;
        st = aw_plan_costs_method(&in->cfg, &in->method, in->L, in->B, in->n_calib, in->n_hold + in->n_eval, &k);
        if (st == AW_OK) st = aw_gpu_costs_for(&in->cfg, &k, &g);
        if (st == AW_OK) st = aw_backend_mem_info(&r->backend, &free_b, &total_b);
        if (st == AW_OK) {
            /* ranks on the same GPU share what is free now: each checks
             * against its share */
            uint64_t share = (uint64_t)free_b / (uint64_t)sharing;
            uint64_t need = aw_gpu_stage_bytes(&g, t->nl, t->is_first, t->is_last);
            if (need > share)
                st = AW_FAIL(AW_ERR_NOMEM,
                             "GPU %d (%s): stage %d needs %.1f GB (%d blocks x %.2f GB + %.1f GB activations for "
                             "--batch %d + %.1f GB reserve), %.1f GB free of %.1f GB shared by %d rank(s): use more "
                             "ranks (stages), fewer ranks per GPU or a smaller --batch",
                             r->backend.device, r->backend.device_name, t->stage, (double)need / 1e9, t->nl,
                             (double)g.block / 1e9, (double)g.fixed / 1e9, in->B, (double)g.reserve / 1e9,
                             (double)free_b / 1e9, (double)total_b / 1e9, sharing);
        }
        m->cuda = aw_cuda_api_get(NULL); /* loaded: aw_backend_select chose CUDA through it */
        if (st == AW_OK) st = m->cuda->ops_create(&m->ops_owned);
        m->ops = m->ops_owned;
    } else {
        m->ops = aw_ops_cpu();
    }
    AW_TRY(aw_comm_agree(w, st));
    /* NCCL needs every rank on a GPU of its own */
    int all_own = r->backend.kind == AW_BACKEND_CUDA && sharing == 1;
    AW_TRY(aw_reduce_world_min_int(w, &all_own, 1));
    int want = o->handoff;
    AW_RETURN_IF(want == AW_HANDOFF_NCCL && !all_own, AW_ERR_ARG,
                 "--handoff nccl: every rank needs a GPU of its own (ranks on a node <= its GPUs)");
    s->nccl = t->S > 1 && all_own && want != AW_HANDOFF_MPI;
    r->nccl = s->nccl;
    if (s->nccl) aw_progress_note(out->prog, "hand-off between stages: NCCL, device to device");
    return AW_OK;
}
