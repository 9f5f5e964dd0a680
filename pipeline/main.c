/*
 * main.c - the aweq-dist program: the command table and everything about
 * the command line live in pipeline/cli/ (aw_cli.h). Exit codes: 0
 * success, 1 failure, 2 usage error.
 */
#include <stdlib.h>
#include <unistd.h>

#include "aw_cli.h"

/* Two thread pools share a rank's cores: OpenMP's (oneDNN's INT8 products,
 * the kernels' loops) and OpenBLAS's. By default the idle threads of each
 * spin for a while after every parallel region (libgomp some 300000
 * rounds, OpenBLAS 2^28 cycles), on the cores where the other pool works.
 * Idle threads that sleep at once made every phase faster on a 2-core
 * machine (opt-125m, 2 threads: calibration 10.4 -> 7.8 s, validation
 * 8.2 -> 6.1 s; a 12-point stories260K sweep 8.2-9.1 -> 3.9 s; the same
 * output bytes). Both libraries read these variables once, in their
 * initializers, before main; so when neither is set the program sets both
 * and starts itself again (before MPI starts: the same process, its
 * launcher none the wiser). A user's own setting of either wins. */
static void idle_threads_sleep(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") || getenv("OPENBLAS_THREAD_TIMEOUT")) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 0) || setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0)) return;
    execv("/proc/self/exe", argv); /* returns only on failure: go on as we are */
}

int main(int argc, char **argv)
{
    idle_threads_sleep(argv);
    return aw_cli_main(argc, argv);
}
