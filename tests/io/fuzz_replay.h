/*
 * fuzz_replay.h - the replay driver the fuzz targets share, so that CTest
 * runs their corpora without a fuzzer (private to the tests):
 *     fuzz_X [--reject | --accept | --any] PATH...
 * PATH is a file or a folder (its files, in name order, dot files skipped);
 * the mode before it says what the parser must do with it. The target's
 * check gets each file's bytes and returns 1 (having said why on stderr)
 * when an expectation fails. Exit 1 if any failed, 2 when nothing was
 * given; a crash or sanitizer report fails the test by itself.
 */
#ifndef AW_FUZZ_REPLAY_H
#define AW_FUZZ_REPLAY_H

#include <stddef.h>
#include <stdint.h>

typedef enum { MODE_ANY, MODE_ACCEPT, MODE_REJECT } replay_mode;

typedef int (*aw_replay_check)(const char *path, const uint8_t *buf, size_t len, replay_mode mode);

int aw_fuzz_replay_main(int argc, char **argv, aw_replay_check check);

#endif
