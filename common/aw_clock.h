/*
 * aw_clock.h - the project's one clock: monotonic seconds (CLOCK_MONOTONIC)
 * for phase times, progress rates, the hang watchdog and benchmarks. Only
 * differences of two readings mean anything.
 */
#ifndef AW_CLOCK_H
#define AW_CLOCK_H

/* Monotonic seconds since an arbitrary origin. */
double aw_now(void);

#endif
