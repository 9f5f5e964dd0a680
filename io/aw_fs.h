/*
 * aw_fs.h - file-system helpers shared by every writer of the project:
 * atomic files (write to "<path>.tmp.<pid>", fsync, rename; a failure leaves
 * nothing under the final name), full pread/pwrite loops, path joining and
 * the check that a relative name stays inside its folder.
 */
#ifndef AW_FS_H
#define AW_FS_H

#include <stddef.h>
#include <stdint.h>

#include "aw_status.h"

/* A file being written under a temporary name. */
typedef struct {
    int fd;
    char *tmp_path;   /* owned */
    char *final_path; /* owned */
    uint64_t written;
} aw_atomic_file;

/* Create "<path>.tmp.<pid>" for writing. AW_ERR_IO naming path on failure. */
aw_status aw_atomic_open(const char *path, aw_atomic_file *af);
/* Append n bytes; ENOSPC and short writes are AW_ERR_IO naming the path. */
aw_status aw_atomic_write(aw_atomic_file *af, const void *buf, size_t n);
/* fsync, close and rename onto the final name; on failure the temporary is
 * removed. af is released either way. */
aw_status aw_atomic_commit(aw_atomic_file *af);
/* Close and remove the temporary; accepts an af that was never opened. */
void aw_atomic_abort(aw_atomic_file *af);

/* Write a whole buffer to path atomically. */
aw_status aw_write_file_atomic(const char *path, const void *buf, size_t n);
/* Read a whole (small) file, NUL-terminated; *out is malloc'd, caller frees.
 * Refuses files larger than max_bytes (AW_ERR_IO naming the file). */
aw_status aw_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len);

/* pread exactly n bytes at off; a short read is AW_ERR_IO naming label. */
aw_status aw_pread_full(int fd, void *buf, size_t n, uint64_t off, const char *label);

/* "dir/name" into a malloc'd string (NULL on allocation failure). */
char *aw_path_join(const char *dir, const char *name);
/* 1 if name is a plain relative path that stays inside its folder: not
 * empty, not absolute, no ".." component, no backslash, no NUL. */
int aw_path_is_contained(const char *name);
/* mkdir -p; AW_ERR_IO naming the path on failure. */
aw_status aw_mkdir_p(const char *path);

#endif
