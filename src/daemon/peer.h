/*
 * peer.h: one channel of frames, whoever is at the other end: a worker
 * in the hub, the hub in a worker, talknetctl in the master.  A peer
 * holds its fd, the part of a frame that one read left over and its
 * output batch; peer_read reads into the role's scratch, cuts the frames
 * (a fixed header checked by wire_get) and gives each to its role's
 * dispatcher.  A bad frame drops that peer only, with the reason.
 */
#ifndef TALKNETD_PEER_H
#define TALKNETD_PEER_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define PEER_HDR_MAX	16	/* the longest fixed header (ipc.h) */

struct peer;

/* Whether a peer takes its next frame now. */
enum peer_want {
	PEER_MORE,		/* yes */
	PEER_HOLD,		/* not now: keep the rest for later */
	PEER_GONE		/* never: it was dropped, forget the rest */
};

/*
 * What one kind of peer is: its frames, and what its role does.  The
 * roles' tables give every field in this order.
 */
struct peer_role {
	size_t		  hdr_len;	/* bytes of its fixed header */
	uint16_t	  version;	/* the one its frames must carry */
	const char	 *bad_version;	/* why, for another version */
	const char	 *too_long;	/* why, for a frame over p->max */
	/* One frame (hdr is hdr_len bytes): NULL, or why to drop p. */
	const char	*(*dispatch)(struct peer *p, const void *hdr,
			    const char *payload);
	/* Drops p (or schedules it), saying why. */
	void		 (*drop)(struct peer *p, const char *why);
	/* Whether p takes its next frame; NULL: always. */
	enum peer_want	 (*want)(const struct peer *p);
	/* A read of n bytes came, before its frames run; may be NULL. */
	void		 (*arrived)(struct peer *p, size_t n);
};

/* One channel. */
struct peer {
	int			 fd;		/* -1: none */
	const struct peer_role	*role;
	void			*arg;		/* the role's: whose peer */
	uint32_t		 max;		/* longest payload taken */
	struct buf		 in;		/* a frame that came in part */
	struct buf		 out;		/* frames batched for writing */
};

/* Sets up a peer on fd (-1: none yet), its buffers empty. */
void	 peer_init(struct peer *, const struct peer_role *, void *arg,
	    int fd, uint32_t max);
/*
 * Reads once into scratch (size bytes) and runs every complete frame.
 * Returns 1 after a read, 0 if there was nothing to read (EAGAIN, EINTR),
 * -1 at the end of the stream (errno 0) or on an error (errno set).
 */
int	 peer_read(struct peer *, char *scratch, size_t size);
/*
 * Frames from one read into a reused scratch: returns the buffer to take
 * them from, data itself (through view) unless keep holds a partial
 * frame.  Afterwards peer_keep_rest keeps what is left of a partial one,
 * so a channel holds bytes of its own only between reads of one frame.
 */
struct buf *peer_feed(struct buf *keep, struct buf *view, char *data,
	    size_t n);
void	 peer_keep_rest(struct buf *keep, const struct buf *src);
/*
 * What a dispatcher returns for a frame it will not run yet: the frame
 * goes back, whole, and stays with the rest in p->in until the peer is
 * run again.  The role's want() must say PEER_HOLD by then, or the same
 * frame comes straight back.
 */
extern const char peer_again[];
/* Runs the complete frames in src, then keeps what is left in p->in. */
void	 peer_run(struct peer *, struct buf *src);
/* Writes b at once and forgets it, best effort: a peer's last words. */
void	 peer_say(int fd, const struct buf *b);
/* The next connection on a listener, past EINTR; -1 with errno. */
int	 peer_accept(int lfd, struct sockaddr *, socklen_t *, int flags);

#endif
