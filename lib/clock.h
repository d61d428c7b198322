/*
 * clock.h: the monotonic clock, for timeouts and latencies.
 */
#ifndef TALKNET_CLOCK_H
#define TALKNET_CLOCK_H

#include <stdint.h>

/* Nanoseconds on CLOCK_MONOTONIC. */
int64_t	clock_now_ns(void);
/* Milliseconds on CLOCK_MONOTONIC. */
int64_t	clock_now_ms(void);

#endif
