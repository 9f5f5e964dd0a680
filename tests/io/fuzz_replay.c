/* fuzz_replay.c - the shared replay driver of the fuzz targets (see
 * fuzz_replay.h). */
#include "fuzz_replay.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aw_fs.h"

static int n_files, n_failed;

static void replay_file(const char *path, replay_mode mode, aw_replay_check check)
{
    char *buf;
    size_t len;
    if (aw_read_file(path, (size_t)256 << 20, &buf, &len) != AW_OK) {
        fprintf(stderr, "FAILED %s: %s\n", path, aw_err_message());
        n_failed++;
        return;
    }
    n_files++;
    n_failed += check(path, (const uint8_t *)buf, len, mode);
    free(buf);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void replay_path(const char *path, replay_mode mode, aw_replay_check check)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "FAILED %s: cannot stat\n", path);
        n_failed++;
        return;
    }
    if (!S_ISDIR(sb.st_mode)) {
        replay_file(path, mode, check);
        return;
    }
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "FAILED %s: cannot open the folder\n", path);
        n_failed++;
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) break;
            names = grown;
        }
        names[n++] = aw_path_join(path, de->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_name);
    for (size_t i = 0; i < n; i++) {
        if (names[i]) replay_file(names[i], mode, check);
        free(names[i]);
    }
    free(names);
}

int aw_fuzz_replay_main(int argc, char **argv, aw_replay_check check)
{
    replay_mode mode = MODE_ANY;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reject") == 0)
            mode = MODE_REJECT;
        else if (strcmp(argv[i], "--accept") == 0)
            mode = MODE_ACCEPT;
        else if (strcmp(argv[i], "--any") == 0)
            mode = MODE_ANY;
        else
            replay_path(argv[i], mode, check);
    }
    if (n_files == 0 && n_failed == 0) {
        fprintf(stderr, "usage: %s [--reject | --accept | --any] PATH...\n", argv[0]);
        return 2;
    }
    fprintf(stderr, "%s: %d files replayed, %d failed: %s\n", argv[0], n_files, n_failed,
            n_failed ? "FAILED" : "OK");
    return n_failed ? 1 : 0;
}
