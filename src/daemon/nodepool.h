/*
 * nodepool.h: fixed-size records for the master's own bookkeeping, kept
 * in memory that forked children never inherit.
 */
#ifndef TALKNET_NODEPOOL_H
#define TALKNET_NODEPOOL_H

#include <stddef.h>

struct nodepool_free;

struct nodepool {
	size_t			 size;	/* of one record */
	struct nodepool_free	*free;	/* records given back */
	char			*next;	/* not handed out yet */
	char			*end;
};

/* Sets up an empty pool of records of size bytes. */
void	 nodepool_init(struct nodepool *, size_t size);
/* A zeroed record, or NULL with errno set when memory ran out. */
void	*nodepool_get(struct nodepool *);
/* Gives a record back for reuse. */
void	 nodepool_put(struct nodepool *, void *);
/* len zeroed bytes that no child inherits, or NULL with errno set. */
void	*nodepool_map(size_t len);

#endif
