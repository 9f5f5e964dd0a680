/*
 * aw_outdir.h - output folders that appear complete or not at all: contents
 * are written into "<out>.partial.<pid>" and the folder is renamed onto
 * <out> at the end; a failure removes the partial folder.
 */
#ifndef AW_OUTDIR_H
#define AW_OUTDIR_H

#include "aw_status.h"

typedef struct {
    char *final_path; /* owned */
    char *tmp_path;   /* owned */
    int replace_empty;
} aw_outdir;

/* out must not exist or be an empty folder (AW_ERR_IO naming it otherwise);
 * creates the partial folder. */
aw_status aw_outdir_begin(const char *out, aw_outdir *od);
/* "<partial>/name", malloc'd (NULL on allocation failure). */
char *aw_outdir_path(const aw_outdir *od, const char *name);
/* Rename the partial folder onto out; on failure it is removed. Releases od. */
aw_status aw_outdir_commit(aw_outdir *od);
/* Remove "<out>.partial.*" folders a killed run left behind (flat folders
 * of this project's files; best effort). */
void aw_outdir_clean_stale(const char *out);
/* Remove the partial folder and its files; releases od; accepts a zeroed od. */
void aw_outdir_abort(aw_outdir *od);

#endif
