/*
 * aw_tokenize_cmd.h - `aweq-dist tokenize`: calibration text tokenized once
 * (on one node, before a Slurm job) into a token file for --calib, drawn
 * exactly as a run given --calib-text draws it (aw_textdata.h).
 */
#ifndef AW_TOKENIZE_CMD_H
#define AW_TOKENIZE_CMD_H

/* argv[0] is "tokenize". Returns the exit code: 0, 1 after one error line
 * on stderr, 2 for a usage error. */
int aw_cmd_tokenize(int argc, char **argv);

#endif
