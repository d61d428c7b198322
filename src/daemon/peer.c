/*
 * peer.c: reading a channel of frames and running them through its
 * role's dispatcher (peer.h).  The hub, the workers and the master's
 * control socket read their peers only through here.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "control_wire.h"
#include "log.h"
#include "peer.h"
#include "xmalloc.h"

/* Sets up a peer on fd, its buffers empty. */
void
peer_init(struct peer *p, const struct peer_role *role, void *arg, int fd,
    uint32_t max)
{
	if (role->hdr_len < sizeof(struct wire_hdr) ||
	    role->hdr_len > PEER_HDR_MAX)
		fatalx("%s: header of %zu bytes", __func__, role->hdr_len);
	p->fd = fd;
	p->role = role;
	p->arg = arg;
	p->max = max;
	buf_init(&p->in);
	buf_init(&p->out);
}

/*
 * The frames of one read of n bytes at data (a scratch buffer the
 * caller reuses): they run straight from data unless keep holds a frame
 * that arrived in part, which data then completes.  Returns the buffer
 * to take frames from; view is the caller's storage for the first case.
 */
struct buf *
peer_feed(struct buf *keep, struct buf *view, char *data, size_t n)
{
	if (n == 0 || buf_pending(keep) > 0) {
		xbuf_append(keep, data, n);
		return keep;
	}
	/* A buffer over data itself: never freed or grown past it. */
	buf_init_store(view, data, n);
	buf_commit(view, n);
	return view;
}

/* After peer_feed's frames were taken: keeps a partial frame from data. */
void
peer_keep_rest(struct buf *keep, const struct buf *src)
{
	if (src != keep && buf_pending(src) > 0)
		xbuf_append(keep, buf_head(src), buf_pending(src));
}

const char peer_again[] = "not now";

/* Whether p takes its next frame now. */
static enum peer_want
peer_want(const struct peer *p)
{
	return p->role->want == NULL ? PEER_MORE : p->role->want(p);
}

/*
 * Runs the complete frames in src until they run out, the role holds
 * them, or the peer is dropped: for a bad header or what its dispatcher
 * refused.  A held peer keeps the rest in p->in; a dropped one keeps
 * nothing.
 */
void
peer_run(struct peer *p, struct buf *src)
{
	union {
		struct wire_hdr	 w;
		char		 b[PEER_HDR_MAX];
	}			 h;
	enum peer_want		 want;
	const char		*payload, *why;
	size_t			 off, len;
	int			 r;

	while ((want = peer_want(p)) == PEER_MORE) {
		off = src->off;
		len = src->len;
		if ((r = wire_get(src, p->role->hdr_len, p->role->version,
		    p->max, h.b, &payload)) == 0)
			break;
		if (r == -1)
			why = h.w.version != p->role->version ?
			    p->role->bad_version : p->role->too_long;
		else if ((why = p->role->dispatch(p, h.b, payload)) == NULL)
			continue;
		else if (why == peer_again) {
			/* wire_get only moved the offsets: the bytes stay. */
			src->off = off;
			src->len = len;
			break;
		}
		p->role->drop(p, why);
		want = PEER_GONE;
		break;
	}
	if (want == PEER_GONE)
		buf_reset(&p->in);
	else
		peer_keep_rest(&p->in, src);
}

/* Reads once into scratch and runs every complete frame. */
int
peer_read(struct peer *p, char *scratch, size_t size)
{
	struct buf	view;
	ssize_t		n;

	/*
	 * One scratch per role, never per peer: a peer holds bytes of its
	 * own only for a frame that arrived in part, so idle peers cost no
	 * read buffers.
	 */
	n = read(p->fd, scratch, size);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		if (n == 0)
			errno = 0;
		return -1;
	}
	if (p->role->arrived != NULL)
		p->role->arrived(p, (size_t)n);
	peer_run(p, peer_feed(&p->in, &view, scratch, (size_t)n));
	return 1;
}

/* Writes b at once, best effort: a full channel takes nothing more. */
void
peer_say(int fd, const struct buf *b)
{
	(void)send(fd, buf_head(b), buf_pending(b),
	    MSG_DONTWAIT | MSG_NOSIGNAL);
}

/*
 * The next connection on listener lfd, past what is no error (a signal,
 * a peer that gave up in the backlog).  The fd, or -1 with errno: EAGAIN
 * when there is none.
 */
int
peer_accept(int lfd, struct sockaddr *sa, socklen_t *len, int flags)
{
	socklen_t	size = len != NULL ? *len : 0;
	int		fd;

	for (;;) {
		if (len != NULL)
			*len = size;
		if ((fd = accept4(lfd, sa, len, flags)) != -1 ||
		    (errno != EINTR && errno != ECONNABORTED))
			return fd;
	}
}
