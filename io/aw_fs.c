/* aw_fs.c - atomic files, full pread/write loops, paths. See aw_fs.h. */
#include "aw_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Best effort: make the rename itself durable. A failure here does not undo
 * a complete file under its final name, so it is not reported. */
static void fsync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) {
        dir = strdup(".");
    } else if (slash == path) {
        dir = strdup("/");
    } else {
        dir = strndup(path, (size_t)(slash - path));
    }
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

static void atomic_release(aw_atomic_file *af)
{
    free(af->tmp_path);
    free(af->final_path);
    af->tmp_path = NULL;
    af->final_path = NULL;
    af->fd = -1;
    af->written = 0;
}

aw_status aw_atomic_open(const char *path, aw_atomic_file *af)
{
    af->fd = -1;
    af->tmp_path = NULL;
    af->final_path = NULL;
    af->written = 0;
    AW_RETURN_IF(!path || !*path, AW_ERR_ARG, "atomic open: empty path");

    size_t n = strlen(path) + 32;
    af->final_path = strdup(path);
    af->tmp_path = malloc(n);
    if (!af->final_path || !af->tmp_path) {
        atomic_release(af);
        return AW_FAIL(AW_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(af->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    af->fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (af->fd < 0) {
        int e = errno;
        aw_status st = AW_FAIL(AW_ERR_IO, "%s: cannot create %s: %s", path, af->tmp_path,
                               strerror(e));
        atomic_release(af);
        return st;
    }
    return AW_OK;
}

aw_status aw_atomic_write(aw_atomic_file *af, const void *buf, size_t n)
{
    AW_RETURN_IF(!af || af->fd < 0 || !af->tmp_path, AW_ERR_ARG, "atomic write: file not open");
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t w = write(af->fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return AW_FAIL(AW_ERR_IO, "%s: write failed after %llu bytes: %s", af->final_path,
                           (unsigned long long)af->written, strerror(errno));
        }
        /* write() returning 0 for n > 0 only happens on a full device */
        if (w == 0)
            return AW_FAIL(AW_ERR_IO, "%s: write failed after %llu bytes: %s", af->final_path,
                           (unsigned long long)af->written, strerror(ENOSPC));
        p += w;
        n -= (size_t)w;
        af->written += (uint64_t)w;
    }
    return AW_OK;
}

aw_status aw_atomic_commit(aw_atomic_file *af)
{
    AW_RETURN_IF(!af || af->fd < 0 || !af->tmp_path, AW_ERR_ARG, "atomic commit: file not open");
    aw_status st = AW_OK;
    /* fsync before rename: otherwise a crash can leave the final name
     * pointing at an empty file. close() reports late errors (NFS quota). */
    if (fsync(af->fd) != 0)
        st = AW_FAIL(AW_ERR_IO, "%s: fsync failed: %s", af->final_path, strerror(errno));
    if (close(af->fd) != 0 && st == AW_OK)
        st = AW_FAIL(AW_ERR_IO, "%s: close failed: %s", af->final_path, strerror(errno));
    af->fd = -1;
    if (st == AW_OK && rename(af->tmp_path, af->final_path) != 0)
        st = AW_FAIL(AW_ERR_IO, "%s: cannot rename %s onto it: %s", af->final_path, af->tmp_path,
                     strerror(errno));
    if (st == AW_OK)
        fsync_parent_dir(af->final_path);
    else
        unlink(af->tmp_path);
    atomic_release(af);
    return st;
}

void aw_atomic_abort(aw_atomic_file *af)
{
    /* tmp_path is set before the descriptor exists: a zeroed or released af
     * has none, so fd 0 of a zero-initialised struct is never closed. */
    if (!af || !af->tmp_path) return;
    if (af->fd >= 0) close(af->fd);
    unlink(af->tmp_path);
    atomic_release(af);
}

aw_status aw_write_file_atomic(const char *path, const void *buf, size_t n)
{
    aw_atomic_file af;
    AW_TRY(aw_atomic_open(path, &af));
    aw_status st = aw_atomic_write(&af, buf, n);
    if (st != AW_OK) {
        aw_atomic_abort(&af);
        return st;
    }
    return aw_atomic_commit(&af);
}

aw_status aw_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len)
{
    *out = NULL;
    if (out_len) *out_len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    AW_RETURN_IF(fd < 0, AW_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    aw_status st = AW_OK;
    char *buf = NULL;
    struct stat sb;
    AW_GOTO_IF(fstat(fd, &sb) != 0, AW_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    AW_GOTO_IF(!S_ISREG(sb.st_mode), AW_ERR_IO, "%s: not a regular file", path);
    AW_GOTO_IF((uint64_t)sb.st_size > max_bytes, AW_ERR_IO,
               "%s: file too large (%lld bytes, limit %zu)", path, (long long)sb.st_size,
               max_bytes);
    size_t n = (size_t)sb.st_size;
    buf = malloc(n + 1);
    AW_GOTO_IF(!buf, AW_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    AW_CHECK(aw_pread_full(fd, buf, n, 0, path));
    buf[n] = '\0';
    close(fd);
    *out = buf;
    if (out_len) *out_len = n;
    return AW_OK;
fail:
    free(buf);
    close(fd);
    return st;
}

aw_status aw_pread_full(int fd, void *buf, size_t n, uint64_t off, const char *label)
{
    uint64_t end;
    AW_RETURN_IF(__builtin_add_overflow(off, (uint64_t)n, &end) || end > (uint64_t)INT64_MAX,
                 AW_ERR_IO, "%s: read of %zu bytes at offset %llu is out of range", label, n,
                 (unsigned long long)off);
    uint8_t *p = buf;
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, p + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return AW_FAIL(AW_ERR_IO, "%s: read of %zu bytes at offset %llu failed: %s", label, n,
                           (unsigned long long)off, strerror(errno));
        }
        if (r == 0)
            return AW_FAIL(AW_ERR_IO,
                           "%s: short read at offset %llu: wanted %zu bytes, the file ended "
                           "after %zu",
                           label, (unsigned long long)off, n, done);
        done += (size_t)r;
    }
    return AW_OK;
}

char *aw_path_join(const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    int sep = dl > 0 && dir[dl - 1] != '/';
    char *p = malloc(dl + (size_t)sep + nl + 1);
    if (!p) return NULL;
    memcpy(p, dir, dl);
    if (sep) p[dl] = '/';
    memcpy(p + dl + (size_t)sep, name, nl + 1);
    return p;
}

int aw_path_is_contained(const char *name)
{
    if (!name || !*name || name[0] == '/') return 0;
    if (strchr(name, '\\')) return 0;
    /* walk the components: "..", wherever it is, may climb out */
    const char *p = name;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') return 0;
        if (!e) break;
        p = e + 1;
    }
    return 1;
}

aw_status aw_mkdir_p(const char *path)
{
    AW_RETURN_IF(!path || !*path, AW_ERR_ARG, "mkdir: empty path");
    char *buf = strdup(path);
    AW_RETURN_IF(!buf, AW_ERR_NOMEM, "%s: out of memory", path);
    aw_status st = AW_OK;
    size_t len = strlen(buf);
    /* create each prefix ending before a '/', then the whole path */
    for (size_t i = 1; i <= len; i++) {
        if (i < len && buf[i] != '/') continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            st = AW_FAIL(AW_ERR_IO, "%s: cannot create %s: %s", path, buf, strerror(errno));
            break;
        }
        struct stat sb;
        if (stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            st = AW_FAIL(AW_ERR_IO, "%s: %s exists and is not a folder", path, buf);
            break;
        }
        buf[i] = saved;
    }
    free(buf);
    return st;
}
