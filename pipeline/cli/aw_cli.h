/*
 * aw_cli.h - the command line: one table of commands, one help text, and
 * the program's voice on stderr. Every command is `int f(int argc, char
 * **argv)` with argv[0] its name, returning the exit code: 0 success, 1
 * failure (after one error line), 2 usage error (after one usage line), 143
 * interrupted.
 */
#ifndef AW_CLI_H
#define AW_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "aw_status.h"

#define AW_VERSION "0.1.0"

/* The one-line error a user sees, on stderr:
 *   aweq-dist: [rank R of N: ]error: <what> (<STATUS>) [src.c:line]
 * (the rank part when size > 1). */
void aw_print_error(aw_status st, int rank, int size);
/* The preemption line: stopped after SIGTERM, rerun with --resume. */
void aw_print_interrupted(int rank, int size, const char *out_dir);
/* A usage error of command cmd (NULL: the program's own options):
 *   aweq-dist: [cmd: ]<fmt with arg>
 *   Try 'aweq-dist [cmd ]--help'.
 * Returns 2, the exit code of a usage error. */
int aw_usage_error(const char *cmd, const char *fmt, const char *arg);

/* The program's help (every command in one page). */
void aw_cli_help(FILE *out);

/* main(): the command named by argv[1] (a run when argv[1] is an option). */
int aw_cli_main(int argc, char **argv);

/* The commands (each in its own file of pipeline/cli/ unless noted). */
int aw_cmd_run(int argc, char **argv);
int aw_cmd_synth(int argc, char **argv);
int aw_cmd_inspect(int argc, char **argv);
int aw_cmd_shapes(int argc, char **argv);
int aw_cmd_backend(int argc, char **argv);
int aw_cmd_eval(int argc, char **argv);
int aw_cmd_report(int argc, char **argv);
int aw_cmd_tokenize(int argc, char **argv);
int aw_cmd_plan(int argc, char **argv);

/* Option values: "100M", "512K", "2G", "12345" -> bytes (decimal units);
 * a decimal integer in [lo, hi]. 0 on success, -1 if malformed. */
int aw_cli_parse_size(const char *s, uint64_t *out);
int aw_cli_parse_int(const char *s, long lo, long hi, long *out);

#endif
