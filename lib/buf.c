/*
 * buf.c: a growable byte buffer with a read offset.
 */
#include "config.h"		/* _GNU_SOURCE, for mremap */

#include <sys/mman.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"

#define BUF_MIN_CAP	256

static int	buf_mapping;	/* new storage is mmap'ed (buf_map_storage) */

/* New storage past the store is mapped from now on (see buf.h). */
void
buf_map_storage(void)
{
	buf_mapping = 1;
}

/* Gives back a buffer's storage that is not its store. */
static void
buf_release(struct buf *b)
{
	if (b->data == b->store)
		return;
	if (b->mapped)
		(void)munmap(b->data, b->cap);
	else
		free(b->data);
	b->mapped = 0;
}

/*
 * Storage of cap bytes (a whole number of pages) as a mapping, holding
 * the pending bytes, which are at the front; NULL on ENOMEM.
 */
static char *
buf_map(struct buf *b, size_t *cap)
{
	size_t	 pg = (size_t)sysconf(_SC_PAGESIZE), c = *cap;
	char	*p;

	if (c > SIZE_MAX - pg) {
		errno = ENOMEM;
		return NULL;
	}
	c = (c + pg - 1) / pg * pg;
	if (b->mapped)
		p = mremap(b->data, b->cap, c, MREMAP_MAYMOVE);
	else {
		p = mmap(NULL, c, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED && b->len > 0)
			memcpy(p, b->data, b->len);
		if (p != MAP_FAILED)
			buf_release(b);
	}
	if (p == MAP_FAILED) {
		errno = ENOMEM;
		return NULL;
	}
	*cap = c;
	return p;
}

/* Sets an empty buffer; nothing is allocated until the first append. */
void
buf_init(struct buf *b)
{
	buf_init_store(b, NULL, 0);
}

/* Sets an empty buffer that starts in the caller's storage of cap bytes. */
void
buf_init_store(struct buf *b, char *store, size_t cap)
{
	b->store = store;
	b->store_cap = store == NULL ? 0 : cap;
	b->data = b->store;
	b->off = 0;
	b->len = 0;
	b->cap = b->store_cap;
	b->mapped = 0;
}

/* Frees heap storage and leaves the buffer empty (in its store, if any). */
void
buf_free(struct buf *b)
{
	buf_release(b);
	buf_init_store(b, b->store, b->store_cap);
}

/* Number of pending bytes. */
size_t
buf_pending(const struct buf *b)
{
	return b->len - b->off;
}

/* First pending byte. */
char *
buf_head(const struct buf *b)
{
	if (b->data == NULL)
		return NULL;
	return b->data + b->off;
}

/* Moves the pending bytes to the front of the storage. */
static void
buf_compact(struct buf *b)
{
	size_t	pending = b->len - b->off;

	if (b->off == 0)
		return;
	if (pending > 0)
		memmove(b->data, b->data + b->off, pending);
	b->off = 0;
	b->len = pending;
}

/* Makes room for n more bytes at data+len; returns 0, or -1 on ENOMEM. */
int
buf_reserve(struct buf *b, size_t n)
{
	size_t	 pending, need, cap;

	if (b->cap - b->len >= n)
		return 0;
	pending = b->len - b->off;
	if (b->cap - pending >= n) {
		buf_compact(b);
		return 0;
	}
	if (n > SIZE_MAX - pending) {
		errno = ENOMEM;
		return -1;
	}
	need = pending + n;
	cap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
	while (cap < need) {
		if (cap > SIZE_MAX / 2) {
			cap = need;
			break;
		}
		cap *= 2;
	}
	return buf_resize(b, cap);
}

/* Sets the capacity to cap bytes (at least what is pending). */
int
buf_resize(struct buf *b, size_t cap)
{
	size_t	 pending = b->len - b->off;
	char	*p;

	buf_compact(b);
	if (cap < pending)
		cap = pending;
	if (cap == b->cap)
		return 0;
	if (b->store != NULL && cap <= b->store_cap) {
		/* Back into the store: it is always big enough for this. */
		if (b->data != b->store) {
			memcpy(b->store, b->data, pending);
			buf_release(b);
			b->data = b->store;
		}
		b->cap = b->store_cap;
		return 0;
	}
	if (buf_mapping || b->mapped) {
		if ((p = buf_map(b, &cap)) == NULL)
			return -1;
		b->mapped = 1;
	} else if (b->data == b->store && b->store != NULL) {
		/* The store is not the heap's: copy out of it, never realloc. */
		if ((p = malloc(cap)) == NULL)
			return -1;
		memcpy(p, b->data, pending);
	} else if ((p = realloc(b->data, cap)) == NULL)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

/* Appends n bytes; returns 0, or -1 on ENOMEM. */
int
buf_append(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (buf_reserve(b, n) == -1)
		return -1;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

/* Marks n bytes written into the reserved space as pending. */
void
buf_commit(struct buf *b, size_t n)
{
	if (n > b->cap - b->len)
		n = b->cap - b->len;
	b->len += n;
}

/* Drops n pending bytes from the front (consumed or written out). */
void
buf_drain(struct buf *b, size_t n)
{
	if (n >= b->len - b->off) {
		b->off = 0;
		b->len = 0;
		return;
	}
	b->off += n;
}

/* Drops everything pending, keeping the storage. */
void
buf_reset(struct buf *b)
{
	b->off = 0;
	b->len = 0;
}

/* Frees an empty buffer's heap storage when it is larger than keep bytes. */
void
buf_shrink(struct buf *b, size_t keep)
{
	if (b->off == b->len && b->cap > keep && b->data != b->store)
		buf_free(b);
}
