/*
 * main.c - the aweq-dist program: the command table and everything about
 * the command line live in pipeline/cli/ (aw_cli.h). Exit codes: 0
 * success, 1 failure, 2 usage error.
 */
#include "aw_cli.h"
#include "aw_kernels.h"

int main(int argc, char **argv)
{
    aw_k_threads_sleep_when_idle(argv); /* may run the program again, with the pools' settings */
    return aw_cli_main(argc, argv);
}
