/*
 * xmalloc.h: allocation that never returns NULL; running out of memory
 * is fatal for the process that hits it.
 */
#ifndef TALKNETD_XMALLOC_H
#define TALKNETD_XMALLOC_H

#include <stddef.h>

struct buf;

/* Allocates zeroed memory for nmemb objects of size bytes, or dies. */
void	*xcalloc(size_t nmemb, size_t size);
/* Resizes an array of nmemb objects of size bytes, or dies. */
void	*xreallocarray(void *, size_t nmemb, size_t size);
/* Appends to a buffer, or dies. */
void	 xbuf_append(struct buf *, const void *, size_t);
/* Reserves room in a buffer, or dies. */
void	 xbuf_reserve(struct buf *, size_t);

#endif
