/*
 * frame.h: splits a byte stream into protocol frames.
 *
 * A frame ends at a terminator, "\n", "\r\n" (the "\r" is stripped) or
 * "\0", wherever it is, or where a JSON object that starts the frame
 * closes (protocol.md, "What the server accepts as a terminator"):
 *
 * - JSON whitespace (space, tab, "\r") before a frame's first other
 *   byte is skipped over; a frame of whitespace only is empty.
 * - A frame whose first other byte is "{" is an object.  The framer
 *   follows its strings (with their backslash escapes) and its nesting
 *   depth, and the frame ends with the byte that brings the depth back
 *   to zero outside a string.  A terminator right after it then ends
 *   an empty frame, so it is consumed.  "{" and "[" count as openers,
 *   "}" and "]" as closers, without matching them: "{]" is a frame,
 *   and the codec finds it is not JSON.  An object nested deeper than
 *   FRAME_MAX_DEPTH levels ends its frame at the opener that goes past
 *   it; that frame is not a JSON object either.
 * - Any other frame runs to the next terminator, as a line.
 *
 * Empty frames are skipped.  A frame longer than max_line bytes (not
 * counting its terminator) is an error as soon as the limit is crossed,
 * so an endless frame never makes the buffer grow past max_line plus
 * one read.  The framer keeps where it is in the current frame between
 * calls: bytes fed one at a time are scanned once.
 */
#ifndef TALKNET_FRAME_H
#define TALKNET_FRAME_H

#include <stddef.h>

#include "buf.h"

/* Deeper than the codec accepts (64), so the codec gives the verdict. */
#define FRAME_MAX_DEPTH	128

/*
 * The scan of the current frame: how far it went and what it found, so
 * that the next call goes on from there.
 */
struct framer {
	struct buf	in;
	size_t		max_line;
	size_t		scan;	/* bytes of the frame already scanned */
	unsigned int	depth;	/* open "{" and "[" of an object */
	unsigned char	kind;	/* what the frame is so far */
	unsigned char	instr;	/* 1: inside a string of it */
	unsigned char	esc;	/* 1: just after a "\" in it */
	unsigned char	lines;	/* 1: end at terminators only */
};

enum frame_result {
	FRAME_TOOLONG = -1,	/* the current frame crossed max_line */
	FRAME_NONE = 0,		/* no complete frame is buffered */
	FRAME_LINE = 1		/* *line, *len hold one frame */
};

/* Sets up an empty framer for frames of at most max_line bytes. */
void	 framer_init(struct framer *, size_t max_line);
/* The same, starting in the caller's storage of cap bytes (see buf.h). */
void	 framer_init_store(struct framer *, size_t max_line, char *store,
	    size_t cap);
/*
 * Makes the framer end frames at terminators only, never at the close
 * of an object, and keep frames of whitespace: for lines a person
 * types, which are not JSON.  Call it before feeding any byte.
 */
void	 framer_lines_only(struct framer *);
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
 * Takes the next frame.  On FRAME_LINE, *line points into the framer
 * (valid until the next framer call), is not NUL-terminated, and has no
 * terminator.  Empty frames are never returned.
 */
enum frame_result framer_next(struct framer *, const char **line, size_t *len);
/* Frees the buffer when nothing is pending and it grew past keep bytes. */
void	 framer_shrink(struct framer *, size_t keep);
/* Bytes buffered and not yet returned as frames. */
size_t	 framer_pending(const struct framer *);

#endif
