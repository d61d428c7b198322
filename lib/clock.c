/*
 * clock.c: the monotonic clock.  CLOCK_MONOTONIC cannot fail on Linux;
 * if it ever did, no timeout could be trusted, so the process aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"

/* Nanoseconds on CLOCK_MONOTONIC. */
int64_t
clock_now_ns(void)
{
	struct timespec	ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		abort();
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t
clock_now_ms(void)
{
	return clock_now_ns() / 1000000;
}
