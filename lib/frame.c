/*
 * frame.c: splits a byte stream into protocol frames: lines, and JSON
 * objects that end where they close (see frame.h).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "frame.h"

#define FRAME_MIN_CAP	256

/* What the current frame is, as far as it is scanned (f->kind). */
enum {
	FRAME_K_START,		/* whitespace only, so far */
	FRAME_K_OBJECT,		/* began with "{": ends where it closes */
	FRAME_K_LINE		/* anything else: runs to a terminator */
};

/* How the scan of the current frame stopped. */
enum frame_scan {
	SCAN_MORE,		/* no end yet: wait for more bytes */
	SCAN_TERM,		/* a terminator at f->scan ends the frame */
	SCAN_CLOSE		/* the byte at f->scan is the frame's last */
};

/* Forgets the current frame's state: the next byte starts a frame. */
static void
framer_restart(struct framer *f)
{
	f->scan = 0;
	f->depth = 0;
	f->kind = f->lines ? FRAME_K_LINE : FRAME_K_START;
	f->instr = 0;
	f->esc = 0;
}

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
	f->lines = 0;
	framer_restart(f);
}

/* Makes the framer end frames at terminators only, as lines. */
void
framer_lines_only(struct framer *f)
{
	f->lines = 1;
	framer_restart(f);
}

/* Frees the framer's buffer. */
void
framer_free(struct framer *f)
{
	buf_free(&f->in);
	framer_restart(f);
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

/*
 * Takes one byte c of an object outside the terminators.  Returns 1,
 * changing nothing, if c is the object's last byte: the closer that
 * brings the depth back to zero outside a string, or an opener past
 * FRAME_MAX_DEPTH, which cuts the frame short (it is not JSON anyway,
 * and the depth never needs more than a small counter).
 */
static int
framer_object_byte(struct framer *f, char c)
{
	if (f->instr) {
		if (f->esc)
			f->esc = 0;
		else if (c == '\\')
			f->esc = 1;
		else if (c == '"')
			f->instr = 0;
		return 0;
	}
	switch (c) {
	case '"':
		f->instr = 1;
		break;
	case '{':
	case '[':
		if (f->depth >= FRAME_MAX_DEPTH)
			return 1;
		f->depth++;
		break;
	case '}':
	case ']':
		if (f->depth <= 1)
			return 1;
		f->depth--;
		break;
	default:
		break;
	}
	return 0;
}

/*
 * Scans the current frame, head[0..pending), from f->scan on, and says
 * whether and how it ends.  On an end, f->scan is left on the end's
 * byte and the state as it was before it, so a second call (after
 * FRAME_TOOLONG) finds the same end.
 */
static enum frame_scan
framer_scan(struct framer *f, const char *head, size_t pending)
{
	size_t	i;
	char	c;

	for (i = f->scan; i < pending; i++) {
		c = head[i];
		if (c == '\n' || c == '\0') {
			f->scan = i;
			return SCAN_TERM;
		}
		switch (f->kind) {
		case FRAME_K_START:
			if (c == '{') {
				f->kind = FRAME_K_OBJECT;
				f->depth = 1;
			} else if (c != ' ' && c != '\t' && c != '\r')
				f->kind = FRAME_K_LINE;
			break;
		case FRAME_K_OBJECT:
			if (framer_object_byte(f, c)) {
				f->scan = i;
				return SCAN_CLOSE;
			}
			break;
		default:
			break;
		}
	}
	f->scan = pending;
	return SCAN_MORE;
}

/* Takes the next non-empty frame, or says why there is none. */
enum frame_result
framer_next(struct framer *f, const char **line, size_t *len)
{
	struct buf		*b = &f->in;
	const char		*head;
	size_t			 pending, n, used;
	enum frame_scan		 r;
	int			 blank;

	for (;;) {
		if ((pending = buf_pending(b)) == 0) {
			framer_restart(f);
			return FRAME_NONE;
		}
		head = buf_head(b);
		/* Cannot happen; start the frame over if it does. */
		if (f->scan > pending)
			framer_restart(f);
		if ((r = framer_scan(f, head, pending)) == SCAN_MORE) {
			/* A frame of max_line bytes may still get "\r\n". */
			if (pending > f->max_line + 1 ||
			    (pending == f->max_line + 1 &&
			    head[pending - 1] != '\r'))
				return FRAME_TOOLONG;
			return FRAME_NONE;
		}
		n = f->scan;
		used = n + 1;
		if (r == SCAN_CLOSE)
			n++;
		else if (head[n] == '\n' && n > 0 && head[n - 1] == '\r')
			n--;
		if (n > f->max_line)
			return FRAME_TOOLONG;
		blank = f->kind == FRAME_K_START;
		framer_restart(f);
		buf_drain(b, used);
		if (n == 0 || blank)
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
		framer_restart(f);
	}
}
