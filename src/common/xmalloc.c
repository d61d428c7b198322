/*
 * xmalloc.c: allocation wrappers that call fatal instead of returning
 * NULL, so callers stay simple.
 */
#include "config.h"

#include <stdlib.h>

#include "buf.h"
#include "log.h"
#include "xmalloc.h"

/* Allocates zeroed memory for nmemb objects of size bytes, or dies. */
void *
xcalloc(size_t nmemb, size_t size)
{
	void	*p;

	if ((p = calloc(nmemb == 0 ? 1 : nmemb, size == 0 ? 1 : size)) == NULL)
		fatal("calloc");
	return p;
}

/* Resizes an array of nmemb objects of size bytes, or dies. */
void *
xreallocarray(void *old, size_t nmemb, size_t size)
{
	void	*p;

	if ((p = reallocarray(old, nmemb == 0 ? 1 : nmemb,
	    size == 0 ? 1 : size)) == NULL)
		fatal("reallocarray");
	return p;
}

/* Appends to a buffer, or dies. */
void
xbuf_append(struct buf *b, const void *p, size_t n)
{
	if (buf_append(b, p, n) == -1)
		fatal("buf_append");
}

/* Reserves room in a buffer, or dies. */
void
xbuf_reserve(struct buf *b, size_t n)
{
	if (buf_reserve(b, n) == -1)
		fatal("buf_reserve");
}
