/*
 * aw_eval_int.h - private to pipeline/eval/ and the eval command: what the
 * evaluators share.
 */
#ifndef AW_EVAL_INT_H
#define AW_EVAL_INT_H

#include "aw_eval.h"

/* Largest config.json read. */
#define AW_QCFG_MAX_BYTES (16u << 20)

/* A progress line on stderr, "aweq-dist: eval: <fmt>\n", unless quiet. */
void aw_eval_progress(int quiet, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
