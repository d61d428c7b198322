/*
 * frame.c: splits a byte stream into protocol lines.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "frame.h"

#define FRAME_MIN_CAP	256

/* Sets up an empty framer for lines of at most max_line bytes. */
void
framer_init(struct framer *f, size_t max_line)
{
	framer_init_store(f, max_line, NULL, 0);
}

/* The same, starting in the caller's storage of cap bytes. */
void
framer_init_store(struct framer *f, size_t max_line, char *store, size_t cap)
{
	buf_init_store(&f->in, store, cap);
	f->max_line = max_line;
	f->scan = 0;
}

/* Frees the framer's buffer. */
void
framer_free(struct framer *f)
{
	buf_free(&f->in);
	f->scan = 0;
}

/*
 * Compacts the buffer and, if that is not enough, grows it to hold want
 * more bytes.  The capacity stays under max_line + want + 2 (one line,
 * a "\r\n" and one read) unless unread lines are still pending.
 */
static int
framer_grow(struct framer *f, size_t want)
{
	struct buf	*b = &f->in;
	size_t		 pending = b->len - b->off, need, cap, bound;

	if (b->cap - pending >= want)
		return buf_resize(b, b->cap);	/* compacting is enough */
	if (want > SIZE_MAX - pending ||
	    f->max_line > SIZE_MAX - want - 2) {
		errno = ENOMEM;
		return -1;
	}
	need = pending + want;
	bound = f->max_line + want + 2;
	if (bound < need)
		bound = need;
	cap = b->cap < FRAME_MIN_CAP ? FRAME_MIN_CAP : b->cap;
	while (cap < need && cap <= SIZE_MAX / 2)
		cap *= 2;
	if (cap < need || cap > bound)
		cap = cap < need ? need : bound;
	return buf_resize(b, cap);
}

/* Returns where the next read may put up to *avail bytes (at least 1). */
char *
framer_space(struct framer *f, size_t want, size_t *avail)
{
	struct buf	*b = &f->in;

	if (want == 0)
		want = 1;
	if (b->cap - b->len < want && framer_grow(f, want) == -1)
		return NULL;
	*avail = b->cap - b->len;
	return b->data + b->len;
}

/* Marks n bytes read into framer_space() as received. */
void
framer_commit(struct framer *f, size_t n)
{
	buf_commit(&f->in, n);
}

/* Appends n bytes (a convenience for tests and the client); -1 on ENOMEM. */
int
framer_feed(struct framer *f, const char *p, size_t n)
{
	char	*dst;
	size_t	 avail;

	if (n == 0)
		return 0;
	if ((dst = framer_space(f, n, &avail)) == NULL)
		return -1;
	memcpy(dst, p, n);
	framer_commit(f, n);
	return 0;
}

/* Takes the next non-empty line, or says why there is none. */
enum frame_result
framer_next(struct framer *f, const char **line, size_t *len)
{
	struct buf	*b = &f->in;
	const char	*head, *end, *q;
	size_t		 pending, n;

	for (;;) {
		if ((pending = buf_pending(b)) == 0) {
			f->scan = 0;
			return FRAME_NONE;
		}
		head = buf_head(b);
		if (f->scan > pending)
			f->scan = 0;
		end = head + pending;
		for (q = head + f->scan; q < end; q++)
			if (*q == '\n' || *q == '\0')
				break;
		if (q == end) {
			f->scan = pending;
			/* A line of max_line bytes may still get its "\r\n". */
			if (pending > f->max_line + 1 ||
			    (pending == f->max_line + 1 &&
			    head[pending - 1] != '\r'))
				return FRAME_TOOLONG;
			return FRAME_NONE;
		}
		n = (size_t)(q - head);
		if (*q == '\n' && n > 0 && head[n - 1] == '\r')
			n--;
		if (n > f->max_line)
			return FRAME_TOOLONG;
		f->scan = 0;
		buf_drain(b, (size_t)(q - head) + 1);
		if (n == 0)
			continue;
		*line = head;
		*len = n;
		return FRAME_LINE;
	}
}

/* Bytes buffered and not yet returned as lines. */
size_t
framer_pending(const struct framer *f)
{
	return buf_pending(&f->in);
}

/* Frees the buffer when nothing is pending and it grew past keep bytes. */
void
framer_shrink(struct framer *f, size_t keep)
{
	if (framer_pending(f) == 0) {
		buf_shrink(&f->in, keep);
		f->scan = 0;
	}
}
