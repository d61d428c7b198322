/*
 * frame.h: splits a byte stream into protocol lines.
 *
 * Terminators are "\n", "\r\n" (the "\r" is stripped) and "\0".
 * Empty frames are skipped.  A line longer than max_line bytes (not
 * counting its terminator) is an error as soon as the limit is crossed,
 * so an endless line never makes the buffer grow past max_line plus one
 * read.
 */
#ifndef TALKNET_FRAME_H
#define TALKNET_FRAME_H

#include <stddef.h>

#include "buf.h"

struct framer {
	struct buf	in;
	size_t		max_line;
	size_t		scan;	/* bytes of in already searched for a terminator */
};

enum frame_result {
	FRAME_TOOLONG = -1,	/* the current line crossed max_line */
	FRAME_NONE = 0,		/* no complete line is buffered */
	FRAME_LINE = 1		/* *line, *len hold one line */
};

/* Sets up an empty framer for lines of at most max_line bytes. */
void	 framer_init(struct framer *, size_t max_line);
/* The same, starting in the caller's storage of cap bytes (see buf.h). */
void	 framer_init_store(struct framer *, size_t max_line, char *store,
	    size_t cap);
/* Frees the framer's buffer. */
void	 framer_free(struct framer *);
/*
 * Returns where the next read may put up to *avail bytes (at least 1),
 * or NULL on ENOMEM.  want is the preferred read size.
 */
char	*framer_space(struct framer *, size_t want, size_t *avail);
/* Marks n bytes read into framer_space() as received. */
void	 framer_commit(struct framer *, size_t n);
/* Appends n bytes (a convenience for tests and the client); -1 on ENOMEM. */
int	 framer_feed(struct framer *, const char *p, size_t n);
/*
 * Takes the next line.  On FRAME_LINE, *line points into the framer
 * (valid until the next framer call), is not NUL-terminated, and has no
 * terminator.  Empty lines are never returned.
 */
enum frame_result framer_next(struct framer *, const char **line, size_t *len);
/* Frees the buffer when nothing is pending and it grew past keep bytes. */
void	 framer_shrink(struct framer *, size_t keep);
/* Bytes buffered and not yet returned as lines. */
size_t	 framer_pending(const struct framer *);

#endif
