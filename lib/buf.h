/*
 * buf.h: a growable byte buffer with a read offset, used for line input,
 * output queues and IPC batches.  Bytes data[off..len) are pending.
 */
#ifndef TALKNET_BUF_H
#define TALKNET_BUF_H

#include <stddef.h>

struct buf {
	char	*data;
	size_t	 off;	/* first pending byte */
	size_t	 len;	/* one past the last pending byte */
	size_t	 cap;	/* size of data */
	char	*store;	/* the owner's fixed storage, or NULL */
	size_t	 store_cap;
	int	 mapped;	/* data is a mapping of its own */
};

/*
 * From now on, storage past a buffer's store is a mapping of its own
 * (mmap), page-sized, and unmapped when freed, rather than malloc's: a
 * forked process that does this writes none of the heap it shares with
 * its parent, and a burst's pages go back when the buffer empties.
 */
void	 buf_map_storage(void);

/* Sets an empty buffer; nothing is allocated until the first append. */
void	 buf_init(struct buf *);
/*
 * Sets an empty buffer that starts in the caller's storage of cap bytes
 * and moves to the heap only when it outgrows it.
 */
void	 buf_init_store(struct buf *, char *store, size_t cap);
/* Frees heap storage and leaves the buffer empty (in its store, if any). */
void	 buf_free(struct buf *);
/*
 * Sets the capacity to cap bytes, at least what is pending, moving the
 * pending bytes to the front; returns 0, or -1 on ENOMEM.
 */
int	 buf_resize(struct buf *, size_t cap);
/* Number of pending bytes. */
size_t	 buf_pending(const struct buf *);
/* First pending byte. */
char	*buf_head(const struct buf *);
/* Makes room for n more bytes at data+len; returns 0, or -1 on ENOMEM. */
int	 buf_reserve(struct buf *, size_t n);
/* Appends n bytes; returns 0, or -1 on ENOMEM. */
int	 buf_append(struct buf *, const void *, size_t n);
/* Marks n bytes written into the reserved space as pending. */
void	 buf_commit(struct buf *, size_t n);
/* Drops n pending bytes from the front (consumed or written out). */
void	 buf_drain(struct buf *, size_t n);
/* Drops everything pending, keeping the storage. */
void	 buf_reset(struct buf *);
/*
 * Gives the storage back when nothing is pending and more than keep
 * bytes are allocated, so a burst does not pin memory for good.
 */
void	 buf_shrink(struct buf *, size_t keep);

#endif
