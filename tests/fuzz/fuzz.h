/*
 * fuzz.h: what the fuzz targets and the replay driver share.
 */
#ifndef TALKNET_FUZZ_H
#define TALKNET_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * An invariant of the code under test.  It aborts even under NDEBUG, so
 * libFuzzer and the replay driver both see a broken one as a crash.
 */
#define FUZZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: invariant failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

/* A small PRNG for read sizes; never 0 once seeded with a non-zero. */
static inline uint32_t
xorshift32(uint32_t *s)
{
	uint32_t	x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

/*
 * The size of the next read, as the input's mode byte says: all that is
 * left, one byte, up to 8, or up to 300 bytes; never more than left.
 */
static inline size_t
fuzz_chunk(int mode, uint32_t *rng, size_t left)
{
	size_t	chunk;

	switch (mode) {
	case 0:
		chunk = left;
		break;
	case 1:
		chunk = 1;
		break;
	case 2:
		chunk = 1 + xorshift32(rng) % 8;
		break;
	default:
		chunk = 1 + xorshift32(rng) % 300;
		break;
	}
	return chunk > left ? left : chunk;
}

/* The entry point libFuzzer calls, and replay.c too. */
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#endif
