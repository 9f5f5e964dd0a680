/*
 * testutil.h - helpers shared by the unit tests: a fresh temporary folder per
 * test, file helpers, and an assertion that a call failed with a given status
 * and a message that mentions a given text (file or tensor name).
 */
#ifndef AW_TESTUTIL_H
#define AW_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "aw_status.h"

/* mkdtemp under $TMPDIR (or /tmp): "aweq-test-XXXXXX"; malloc'd path. */
char *aw_test_tmpdir(void);
/* rm -rf path (tests only); accepts NULL. */
void aw_test_rmtree(const char *path);
/* Write bytes to path (plain, not atomic). */
void aw_test_write_bytes(const char *path, const void *buf, size_t n);
/* Read a whole file; malloc'd, *n set. Fails the test if unreadable. */
uint8_t *aw_test_read_bytes(const char *path, size_t *n);
/* "$AWEQ_SOURCE_DIR/rel" (malloc'd); fails the test if the variable is unset. */
char *aw_test_source_path(const char *rel);

/* Assert st == want and that aw_err_message() contains needle (if not NULL). */
#define aw_assert_status(st, want, needle) \
    aw_test_check_status((st), (want), (needle), __FILE__, __LINE__)
void aw_test_check_status(aw_status st, aw_status want, const char *needle,
                          const char *file, int line);

#endif
