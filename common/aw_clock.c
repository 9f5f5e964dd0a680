/* aw_clock.c - see aw_clock.h. */
#include "aw_clock.h"

#include <time.h>

double aw_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
