/* aw_outdir.c - see aw_outdir.h. */
#include "aw_outdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aw_fs.h"

static aw_status check_out(const char *out, int *exists_empty)
{
    struct stat sb;
    *exists_empty = 0;
    if (stat(out, &sb) != 0) {
        AW_RETURN_IF(errno != ENOENT, AW_ERR_IO, "%s: %s", out, strerror(errno));
        return AW_OK;
    }
    AW_RETURN_IF(!S_ISDIR(sb.st_mode), AW_ERR_IO, "%s: exists and is not a folder", out);
    DIR *dp = opendir(out);
    AW_RETURN_IF(!dp, AW_ERR_IO, "%s: %s", out, strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(dp);
    AW_RETURN_IF(n > 0, AW_ERR_IO, "%s: folder exists and is not empty; choose a new output folder", out);
    *exists_empty = 1;
    return AW_OK;
}

static void remove_flat(const char *dir);

aw_status aw_outdir_begin(const char *out, aw_outdir *od)
{
    memset(od, 0, sizeof *od);
    AW_TRY(check_out(out, &od->replace_empty));
    size_t n = strlen(out) + 40;
    od->final_path = strdup(out);
    od->tmp_path = malloc(n);
    if (!od->final_path || !od->tmp_path) {
        aw_outdir_abort(od);
        return AW_FAIL(AW_ERR_NOMEM, "out of memory");
    }
    snprintf(od->tmp_path, n, "%s.partial.%ld", out, (long)getpid());
    if (mkdir(od->tmp_path, 0755) != 0) {
        aw_status st = AW_FAIL(AW_ERR_IO, "%s: cannot create folder: %s", od->tmp_path, strerror(errno));
        free(od->tmp_path);
        od->tmp_path = NULL;
        aw_outdir_abort(od);
        return st;
    }
    return AW_OK;
}

char *aw_outdir_path(const aw_outdir *od, const char *name) { return aw_path_join(od->tmp_path, name); }

aw_status aw_outdir_commit(aw_outdir *od)
{
    aw_status st = AW_OK;
    if (od->replace_empty && rmdir(od->final_path) != 0 && errno != ENOENT)
        st = AW_FAIL(AW_ERR_IO, "%s: %s", od->final_path, strerror(errno));
    if (st == AW_OK && rename(od->tmp_path, od->final_path) != 0)
        st = AW_FAIL(AW_ERR_IO, "%s: cannot rename %s into place: %s", od->final_path, od->tmp_path,
                     strerror(errno));
    if (st == AW_OK) {
        /* make the rename durable: fsync the parent folder */
        char *parent = strdup(od->final_path);
        if (parent) {
            char *slash = strrchr(parent, '/');
            const char *dir = slash ? (slash == parent ? "/" : (*slash = '\0', parent)) : ".";
            int fd = open(dir, O_RDONLY | O_DIRECTORY);
            if (fd >= 0) {
                fsync(fd);
                close(fd);
            }
            free(parent);
        }
        free(od->tmp_path);
        od->tmp_path = NULL;
    }
    aw_outdir_abort(od);
    return st;
}

void aw_outdir_abort(aw_outdir *od)
{
    if (od->tmp_path) remove_flat(od->tmp_path);
    free(od->tmp_path);
    free(od->final_path);
    memset(od, 0, sizeof *od);
}

static void remove_flat(const char *dir)
{
    DIR *dp = opendir(dir);
    if (dp) {
        struct dirent *e;
        while ((e = readdir(dp))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *p = aw_path_join(dir, e->d_name);
            if (p) unlink(p);
            free(p);
        }
        closedir(dp);
    }
    rmdir(dir);
}

void aw_outdir_clean_stale(const char *out)
{
    size_t n = strlen(out) + 16;
    char *pat = malloc(n);
    if (!pat) return;
    snprintf(pat, n, "%s.partial.*", out);
    glob_t g;
    if (glob(pat, GLOB_NOSORT, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) remove_flat(g.gl_pathv[i]);
        globfree(&g);
    }
    free(pat);
}
