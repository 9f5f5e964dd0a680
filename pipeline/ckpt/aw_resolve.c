/* aw_resolve.c - see aw_resolve.h. */
#include "aw_resolve.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aw_fs.h"

static int is_model_dir(const char *d)
{
    char *p = aw_path_join(d, "config.json");
    struct stat sb;
    int ok = p && stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
    free(p);
    return ok;
}

static int is_dir(const char *d)
{
    struct stat sb;
    return stat(d, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* The snapshot of a cache repo folder: refs/main's revision, else the last
 * snapshot (in name order) that holds a config.json. */
static char *hf_snapshot(const char *repo)
{
    char *path = NULL;
    if (asprintf(&path, "%s/refs/main", repo) < 0) return NULL;
    FILE *f = fopen(path, "r");
    free(path);
    if (f) {
        char rev[128] = "";
        if (fgets(rev, sizeof rev, f)) rev[strcspn(rev, "\r\n")] = '\0';
        fclose(f);
        if (rev[0] && !strchr(rev, '/') && asprintf(&path, "%s/snapshots/%s", repo, rev) >= 0) {
            if (is_model_dir(path)) return path;
            free(path);
        }
    }
    if (asprintf(&path, "%s/snapshots/*", repo) < 0) return NULL;
    glob_t g;
    char *best = NULL;
    int gr = glob(path, 0, NULL, &g);
    free(path);
    if (gr == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++)
            if (is_model_dir(g.gl_pathv[i])) {
                free(best);
                best = strdup(g.gl_pathv[i]);
            }
        globfree(&g);
    }
    return best;
}

aw_status aw_resolve_model(const char *arg, char **dir)
{
    *dir = NULL;
    if (is_dir(arg)) {
        *dir = strdup(arg);
        AW_RETURN_IF(!*dir, AW_ERR_NOMEM, "out of memory");
        return AW_OK;
    }
    /* "ORG/NAME" ("meta-llama/Llama-2-7b-hf"), or a bare NAME: facebook's */
    const char *slash = strchr(arg, '/'), *name = slash ? slash + 1 : arg;
    char org[96] = "facebook";
    if (slash) {
        size_t n_org = (size_t)(slash - arg);
        AW_RETURN_IF(n_org == 0 || n_org >= sizeof org, AW_ERR_CONFIG, "model '%s': no such folder", arg);
        memcpy(org, arg, n_org);
        org[n_org] = '\0';
    }
    AW_RETURN_IF(!*name || strchr(name, '/') || !strcmp(name, "..") || !strcmp(name, ".") || !strcmp(org, "..") ||
                     !strcmp(org, "."),
                 AW_ERR_CONFIG, "model '%s': no such folder", arg);
    char *first = NULL, *path = NULL;
    const char *models = getenv("AWEQ_MODELS");
    if (models && *models) {
        AW_RETURN_IF(asprintf(&path, "%s/%s", models, name) < 0, AW_ERR_NOMEM, "out of memory");
        if (is_model_dir(path)) {
            *dir = path;
            return AW_OK;
        }
        first = path;
    }
    const char *cache = getenv("HF_HUB_CACHE"), *home = getenv("HF_HOME"), *user = getenv("HOME");
    int n;
    if (cache && *cache) n = asprintf(&path, "%s/models--%s--%s", cache, org, name);
    else if (home && *home) n = asprintf(&path, "%s/hub/models--%s--%s", home, org, name);
    else n = asprintf(&path, "%s/.cache/huggingface/hub/models--%s--%s", user ? user : "", org, name);
    if (n < 0) {
        free(first);
        return AW_FAIL(AW_ERR_NOMEM, "out of memory");
    }
    char *snap = hf_snapshot(path);
    if (snap) {
        free(first);
        free(path);
        *dir = snap;
        return AW_OK;
    }
    aw_status st = AW_FAIL(AW_ERR_CONFIG, "model '%s' not found: not a folder; looked in %s, %s/snapshots/*/ (Hugging Face cache)",
                           arg, first ? first : "$AWEQ_MODELS (not set)", path);
    free(first);
    free(path);
    return st;
}
