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

/* The entry point libFuzzer calls, and replay.c too. */
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#endif
