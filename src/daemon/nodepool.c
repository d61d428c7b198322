/*
 * nodepool.c: fixed-size records for the master's own bookkeeping, kept
 * in memory that forked children never inherit.
 *
 * After a fork, a page the master writes is copied for the master, and
 * the old page stays behind, private to every worker forked before the
 * write.  The records of live workers change on every accept and every
 * exit, so each worker would keep a private copy of their pages (and of
 * malloc's own state, if they came from malloc).  Here they live in
 * mappings marked MADV_DONTFORK: a worker has no copy of them at all.
 *
 * Chunks are never unmapped: the pool holds as many records as there
 * were live workers at the peak, at most --max-clients.
 */
#include "config.h"

#include <sys/mman.h>

#include <errno.h>
#include <string.h>

#include "nodepool.h"

#define NODEPOOL_CHUNK	(64 * 1024)

struct nodepool_free {
	struct nodepool_free	*next;
};

/* Sets up an empty pool of records of size bytes. */
void
nodepool_init(struct nodepool *np, size_t size)
{
	const size_t	align = sizeof(void *) * 2;

	if (size < sizeof(struct nodepool_free))
		size = sizeof(struct nodepool_free);
	np->size = (size + align - 1) / align * align;
	np->free = NULL;
	np->next = NULL;
	np->end = NULL;
}

/* len zeroed bytes that no child inherits, or NULL with errno set. */
void *
nodepool_map(size_t len)
{
	void	*p;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Not in any child: workers never read the master's records. */
	if (madvise(p, len, MADV_DONTFORK) == -1) {
		(void)munmap(p, len);
		return NULL;
	}
	return p;
}

/* A zeroed record, or NULL with errno set when memory ran out. */
void *
nodepool_get(struct nodepool *np)
{
	struct nodepool_free	*f;
	void			*p;

	if ((f = np->free) != NULL) {
		np->free = f->next;
		memset(f, 0, np->size);
		return f;
	}
	if (np->size > NODEPOOL_CHUNK) {
		errno = ENOMEM;
		return NULL;
	}
	if (np->next == NULL || (size_t)(np->end - np->next) < np->size) {
		if ((p = nodepool_map(NODEPOOL_CHUNK)) == NULL)
			return NULL;
		np->next = p;
		np->end = np->next + NODEPOOL_CHUNK;
	}
	p = np->next;
	np->next += np->size;
	return p;	/* fresh anonymous pages are zero */
}

/* Gives a record back for reuse. */
void
nodepool_put(struct nodepool *np, void *p)
{
	struct nodepool_free	*f = p;

	if (p == NULL)
		return;
	f->next = np->free;
	np->free = f;
}
