/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *aw_test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    size_t n = strlen(base) + 32;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/aweq-test-XXXXXX", base);
    assert_non_null(mkdtemp(p));
    return p;
}

void aw_test_rmtree(const char *path)
{
    if (!path) return;
    size_t n = strlen(path) + 16;
    char *cmd = malloc(n);
    assert_non_null(cmd);
    snprintf(cmd, n, "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

void aw_test_write_bytes(const char *path, const void *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(buf, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

uint8_t *aw_test_read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len >= 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    if (len) assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return buf;
}

char *aw_test_source_path(const char *rel)
{
    const char *src = getenv("AWEQ_SOURCE_DIR");
    if (!src) fail_msg("AWEQ_SOURCE_DIR is not set (run the tests through ctest)");
    size_t n = strlen(src) + strlen(rel) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", src, rel);
    return p;
}

void aw_test_check_status(aw_status st, aw_status want, const char *needle,
                          const char *file, int line)
{
    if (st != want)
        fail_msg("%s:%d: status %s, want %s (message: %s)", file, line, aw_status_name(st),
                 aw_status_name(want), aw_err_message());
    if (needle && !strstr(aw_err_message(), needle))
        fail_msg("%s:%d: message \"%s\" does not mention \"%s\"", file, line, aw_err_message(),
                 needle);
}
