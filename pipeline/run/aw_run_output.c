/* aw_run_output.c - what a run leaves on disk: the shards in <out>.work
 * (written as each block is quantized: where a run resumes), the
 * quantization of this rank's blocks, and the output folder, built as
 * OUT.partial.<pid> and renamed when complete (see aw_run_int.h). */
#include "aw_run_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aw_outdir.h"
#include "aw_writer.h"

/* ---- shards: where a run resumes ------------------------------------------------ */

/* What a block's shard depends on: the method and its options, the
 * calibration split and batching, the token ids and the model. */
static void make_run_key(const aw_run_opts *o, const run_inputs *in, run_output *out)
{
    /* W8A8 keys stay as they were (shards of earlier runs resume) */
    char scheme[96] = "";
    const aw_scheme *sc = &in->method.scheme;
    if (aw_scheme_weight_only(sc))
        snprintf(scheme, sizeof scheme, " wbits=%d group=%d sym=%d act_order=%d", sc->wbits, sc->group, sc->sym,
                 in->method.act_order);
    else if (sc->act == AW_ACT_DYNAMIC)
        snprintf(scheme, sizeof scheme, " wbits=%d group=%d sym=%d act_order=%d abits=%d agroup=%d", sc->wbits,
                 sc->group, sc->sym, in->method.act_order, sc->abits, sc->agroup);
    uint64_t h = 0xcbf29ce484222325ull;
    const uint8_t *p = (const uint8_t *)in->tokens.ids;
    /* the eval windows (after these) do not change a block */
    size_t n = ((size_t)in->n_calib + in->n_hold) * in->tokens.seq_len * sizeof(uint32_t);
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    snprintf(out->run_key, sizeof out->run_key,
             "method=%s alpha=%.9g bias_correction=%d%s dtype=%s calib=%u holdout=%u seq_len=%d batch=%d "
             "tokens=%016llx%s model=%s layers=%d d=%d",
             aw_method_names[in->method.kind], in->method.alpha, in->method.bias_correction, scheme,
             aw_dtype_name(in->method.param_dtype), in->n_calib, in->n_hold, in->L, in->B, (unsigned long long)h,
             in->cpu_bf16 ? " calib_precision=bf16" : "", o->model_dir, in->cfg.num_hidden_layers,
             in->cfg.hidden_size);
}

/* With --out: make <out>.work (emptied unless --resume). With --resume:
 * each stage's first replica checks its blocks' shards (zstd checksum, the
 * tensors, the run key); a damaged or stale shard is reported and removed,
 * and its block recomputed. Every replica of the stage then loads the good
 * ones. */
aw_status run_prepare_shards(const aw_run_opts *o, const run_inputs *in, const run_topo *t, run_model *m,
                             run_output *out, aw_run_result *r)
{
    const aw_comm *w = t->w;
    out->done = calloc((size_t)(t->nl ? t->nl : 1), sizeof(int));
    AW_RETURN_IF(!out->done, AW_ERR_NOMEM, "out of memory");
    if (!o->out_dir) return AW_OK;
    size_t wl = strlen(o->out_dir) + 8;
    out->work = malloc(wl);
    AW_RETURN_IF(!out->work, AW_ERR_NOMEM, "out of memory");
    snprintf(out->work, wl, "%s.work", o->out_dir);
    make_run_key(o, in, out);
    aw_status st = AW_OK;
    if (w->rank == 0) {
        /* the output's parent must exist: refuse an unwritable --out before
         * any work, rather than create folders the user did not name */
        if (mkdir(out->work, 0755) != 0 && errno != EEXIST)
            st = AW_FAIL(AW_ERR_IO, "%s: cannot create the shard folder: %s", out->work, strerror(errno));
        if (st == AW_OK && !o->resume) aw_shard_remove_all(out->work, in->cfg.num_hidden_layers);
    }
    AW_TRY(aw_comm_agree(w, st));
    if (!o->resume) return AW_OK;
    if (t->replica == 0) {
        for (int l = 0; l < t->nl; l++) {
            int layer = t->l0 + l;
            uint8_t *bytes = NULL;
            size_t len = 0;
            char *path = aw_shard_path(out->work, layer);
            AW_RETURN_IF(!path, AW_ERR_NOMEM, "out of memory");
            if (access(path, F_OK) != 0) {
                free(path);
                continue;
            }
            aw_status rs = aw_shard_read(out->work, layer, &bytes, &len);
            if (rs == AW_OK) rs = aw_qblock_create(&in->cfg, &in->method.scheme, &m->q[l]);
            if (rs == AW_OK) rs = aw_block_from_shard(&in->cfg, layer, bytes, len, path, out->run_key, &m->q[l]);
            free(bytes);
            if (rs == AW_OK) {
                out->done[l] = 1;
            } else {
                fprintf(stderr, "aweq-dist: rank %d: resume: %s; block %d will be recomputed\n", w->rank,
                        aw_err_message(), layer);
                aw_qblock_destroy(&m->q[l]);
                unlink(path);
            }
            free(path);
        }
    }
    AW_TRY(aw_reduce_bcast_int(&t->pipe, out->done, (size_t)t->nl, 0));
    st = AW_OK;
    if (t->replica != 0) {
        for (int l = 0; l < t->nl && st == AW_OK; l++) {
            if (!out->done[l]) continue;
            uint8_t *bytes = NULL;
            size_t len = 0;
            st = aw_shard_read(out->work, t->l0 + l, &bytes, &len);
            if (st == AW_OK) st = aw_qblock_create(&in->cfg, &in->method.scheme, &m->q[l]);
            if (st == AW_OK) st = aw_block_from_shard(&in->cfg, t->l0 + l, bytes, len, out->work, out->run_key, &m->q[l]);
            free(bytes);
        }
    }
    AW_TRY(aw_comm_agree(w, st));
    int total = 0; /* my stage's reused blocks (replica 0), then everyone's */
    if (t->replica == 0)
        for (int l = 0; l < t->nl; l++) total += out->done[l];
    AW_TRY(aw_reduce_world_sum_int(w, &total, 1));
    r->reused_blocks = total;
    if (w->rank == 0)
        fprintf(stderr, "aweq-dist: resume: reusing %d of %d blocks from %s; computing %d\n", total,
                in->cfg.num_hidden_layers, out->work, in->cfg.num_hidden_layers - total);
    return AW_OK;
}

aw_status run_write_output(const aw_run_opts *o, const run_inputs *in, const run_topo *t, const run_model *m,
                           const run_output *out, aw_run_result *r, double t0)
{
    const aw_comm *w = t->w;
    aw_outdir od;
    memset(&od, 0, sizeof od);
    char *json = NULL;
    const char *work = out->work;
    aw_status st = AW_OK;
    /* rank 0 makes the partial folder and the shard folder; all write into them */
    void *path = NULL;
    size_t pl = 0;
    if (w->rank == 0) {
        aw_outdir_clean_stale(o->out_dir);
        st = aw_outdir_begin(o->out_dir, &od);
        if (st == AW_OK) {
            path = od.tmp_path;
            pl = strlen(od.tmp_path) + 1;
        }
    }
    st = aw_comm_bcast_bytes(w, 0, st, &path, &pl);
    if (st != AW_OK) goto fail;
    const char *partial = path;
    /* each stage's first replica gathers its blocks' shards into final files */
    if (t->replica == 0) {
        for (int l = 0; l < t->nl && st == AW_OK; l++) {
            st = aw_gather_block(work, partial, &in->cfg, t->l0 + l);
            if (st == AW_OK) st = aw_guard_step("write", &o->fail_at);
            aw_progress_step(out->prog, l + 1);
        }
    }
    if (st == AW_OK && w->rank == 0) st = aw_write_ends(partial, &in->cfg, in->mf);
    st = aw_comm_agree(w, st);
    /* how the job ran (peak memory so far, devices), for aweq_run.json and
     * the report's run section: the write time is counted up to here */
    if (st == AW_OK) st = aw_comm_agree(w, run_gather_layout(t, m, r));
    if (st == AW_OK && w->rank == 0) {
        r->t_write = aw_now() - t0;
        st = aw_report_json(o, r, &json);
        if (st == AW_OK) st = aw_write_meta(partial, o->model_dir, &in->cfg, in->mf, &in->method, json);
        if (st == AW_OK) st = run_write_report_files(o, r, partial, json);
        if (st == AW_OK) st = aw_outdir_commit(&od);
        if (st == AW_OK) {
            /* the checkpoint is complete: the shards are no longer needed */
            aw_shard_remove_all(work, in->cfg.num_hidden_layers);
            rmdir(work);
        }
    }
    st = aw_comm_agree(w, st);
fail:
    if (w->rank != 0) free(path);
    if (w->rank == 0) aw_outdir_abort(&od);
    free(json);
    return st;
}

/* ---- quantization ------------------------------------------------------------ */

aw_status run_quantize(const aw_run_opts *o, const run_inputs *in, const run_topo *t, run_model *m,
                       const run_stream *s, run_output *out, const aw_run_result *r)
{
    const aw_model_config *c = &in->cfg;
    aw_status st = AW_OK;
    for (int l = 0; l < t->nl && st == AW_OK; l++) {
        if (!out->done[l]) {
            /* on the backend: the block in its memory (dfp) to the quantized
             * one there (dq, kept for validation), downloaded once into q */
            st = aw_qblock_create(c, &in->method.scheme, &m->q[l]);
            if (st == AW_OK) st = aw_qblock_dev_create(m->ops, c, &m->q[l], &m->dq[l]);
            if (st == AW_OK)
                st = aw_quantize_block_ops(m->ops, c, t->l0 + l, &m->dfp[l], &s->stats[l], &in->method, &m->dq[l],
                                           &m->q[l]);
            /* the shard is the resume point: written as soon as the block exists */
            if (st == AW_OK && out->work && t->replica == 0) {
                uint8_t *bytes = NULL;
                size_t len = 0;
                st = aw_block_serialize(c, t->l0 + l, &m->q[l], &in->method, out->run_key, &bytes, &len);
                if (st == AW_OK) st = aw_shard_write(out->work, t->l0 + l, bytes, len);
                free(bytes);
            }
        }
        /* what the report shows of this block's equalization (a reused
         * block too: its statistics were gathered all the same) */
        if (st == AW_OK && t->replica == 0) st = run_layer_ranges(in, t, m, s, out, r, l);
        if (st == AW_OK) st = aw_guard_step("quantize", &o->fail_at);
        aw_progress_step(out->prog, l + 1);
    }
    /* blocks taken from their shards to where validation runs (the host
     * ones on the CPU); the others are there already */
    for (int l = 0; l < t->nl && st == AW_OK; l++)
        if (out->done[l]) st = aw_qblock_to_dev(m->ops, c, &m->q[l], &m->dq[l]);
    return st;
}
