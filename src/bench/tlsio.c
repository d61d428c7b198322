/*
 * tlsio.c: talknet-bench's sockets over TLS (--tls), with libtls.  Every
 * socket of a run goes through tlsio_read() and tlsio_send(): a plain
 * socket reads and sends as before; a socket that tlsio_start() gave a
 * TLS context reads and sends through it.  The contexts sit in a table
 * indexed by the fd, so the connection layers (conn.c, presence.c) keep
 * their fds and need no field of their own.
 *
 * Each client has its own context, configured from one shared config:
 * a full handshake per connection, no session resumption, as a crowd of
 * distinct clients would do.  Built without libtls, --tls is refused in
 * main.c and these are the plain calls.
 *
 * libtls reads the socket through tlsio_cb_read(), which reads up to
 * TLSIO_RBUF bytes at once and hands OpenSSL its small reads (a record's
 * header, then its body) from them: two read(2)s per record cost the
 * bench half its CPU in a fan-out.  The buffer is freed once empty, so
 * that idle clients (hold) keep none.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <err.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_TLS
#include <tls.h>
#endif

#include "bench.h"

#define TLSIO_RBUF	32768	/* one read(2) of a TLS socket */

#ifdef HAVE_TLS
/* One TLS socket: its context and what was read but not yet decrypted. */
struct tlsio_sock {
	struct tls	*t;
	int		 fd;
	char		*rbuf;		/* NULL when empty */
	size_t		 roff;
	size_t		 rlen;
	int		 drained;	/* the last read took all there was */
};

static struct tls_config *tlsio_config;
static const char	*tlsio_name;	/* the name the certificate must have */
static struct tlsio_sock **tlsio_ctx;	/* by fd; NULL: plain */
static size_t		 tlsio_nctx;
#endif
static char		 tlsio_error[160];	/* the last TLS error */

/* Tells whether this build speaks TLS. */
int
tlsio_available(void)
{
#ifdef HAVE_TLS
	return 1;
#else
	return 0;
#endif
}

#ifdef HAVE_TLS
/* Keeps a context's error for rd_why() and sets errno to EPROTO. */
static void
tlsio_fail(struct tls *t, const char *what)
{
	const char	*e = tls_error(t);

	snprintf(tlsio_error, sizeof(tlsio_error), "TLS %s: %s", what,
	    e != NULL ? e : "failed");
	errno = EPROTO;
}

/* The context of fd, or NULL for a plain socket. */
static struct tls *
tlsio_get(int fd)
{
	if (fd < 0 || (size_t)fd >= tlsio_nctx || tlsio_ctx[fd] == NULL)
		return NULL;
	return tlsio_ctx[fd]->t;
}

/*
 * What a tls_read() or tls_write() gave, as read(2) would: waiting for
 * either direction is EAGAIN, an error EPROTO with its words kept.
 */
static ssize_t
tlsio_result(struct tls *t, ssize_t n, const char *what)
{
	if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
		errno = EAGAIN;
		return -1;
	}
	if (n == -1)
		tlsio_fail(t, what);
	return n;
}

/* libtls's reads: from the buffer, refilled by one large read(2). */
static ssize_t
tlsio_cb_read(struct tls *t, void *p, size_t len, void *arg)
{
	struct tlsio_sock	*s = arg;
	ssize_t			 n;

	(void)t;
	if (s->roff == s->rlen) {
		if (s->rbuf == NULL && (s->rbuf = malloc(TLSIO_RBUF)) == NULL)
			err(1, "malloc");
		while ((n = read(s->fd, s->rbuf, TLSIO_RBUF)) == -1 &&
		    errno == EINTR)
			;
		if (n <= 0) {
			free(s->rbuf);
			s->rbuf = NULL;
			s->roff = s->rlen = 0;
			if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return TLS_WANT_POLLIN;
			return n;
		}
		s->roff = 0;
		s->rlen = (size_t)n;
	}
	if (len > s->rlen - s->roff)
		len = s->rlen - s->roff;
	memcpy(p, s->rbuf + s->roff, len);
	s->roff += len;
	if (s->roff == s->rlen) {
		free(s->rbuf);
		s->rbuf = NULL;
		s->roff = s->rlen = 0;
	}
	return (ssize_t)len;
}

/* libtls's writes: send(2), never SIGPIPE. */
static ssize_t
tlsio_cb_write(struct tls *t, const void *p, size_t len, void *arg)
{
	struct tlsio_sock	*s = arg;
	ssize_t			 n;

	(void)t;
	while ((n = send(s->fd, p, len, MSG_NOSIGNAL)) == -1 && errno == EINTR)
		;
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return TLS_WANT_POLLOUT;
	return n;
}
#endif

/*
 * Sets up TLS for the run if o asks for it: the CA file (--ca), or no
 * verification at all (--insecure), else the system's CAs; the name
 * checked is --host's.
 */
void
tlsio_setup(const struct options *o)
{
#ifdef HAVE_TLS
	if (!o->tls)
		return;
	if ((tlsio_config = tls_config_new()) == NULL)
		errx(1, "tls_config_new failed");
	if (o->insecure) {
		tls_config_insecure_noverifycert(tlsio_config);
		tls_config_insecure_noverifyname(tlsio_config);
	} else if (o->ca != NULL &&
	    tls_config_set_ca_file(tlsio_config, o->ca) == -1)
		errx(1, "--ca %s: %s", o->ca, tls_config_error(tlsio_config));
	tlsio_name = o->host;
#else
	if (o->tls)
		errx(2, "--tls: this talknet-bench was built without TLS "
		    "(configure found no libtls)");
#endif
}

/*
 * Starts TLS on a connected socket if --tls: 1, or 0 for a plain run,
 * or -1 (tlsio_why() says why).  The handshake is tlsio_step()'s.
 */
int
tlsio_start(int fd)
{
#ifdef HAVE_TLS
	struct tlsio_sock	*s, **n;
	struct tls		*t;
	size_t			 want;

	if (tlsio_config == NULL)
		return 0;
	if ((size_t)fd >= tlsio_nctx) {
		want = (size_t)fd + 64;
		if ((n = reallocarray(tlsio_ctx, want, sizeof(*n))) == NULL)
			err(1, "reallocarray");
		memset(n + tlsio_nctx, 0, (want - tlsio_nctx) * sizeof(*n));
		tlsio_ctx = n;
		tlsio_nctx = want;
	}
	if ((t = tls_client()) == NULL)
		errx(1, "tls_client failed");
	if ((s = calloc(1, sizeof(*s))) == NULL)
		err(1, "calloc");
	s->t = t;
	s->fd = fd;
	if (tls_configure(t, tlsio_config) == -1 ||
	    tls_connect_cbs(t, tlsio_cb_read, tlsio_cb_write, s,
	    tlsio_name) == -1) {
		tlsio_fail(t, "connect");
		tls_free(t);
		free(s);
		return -1;
	}
	tlsio_ctx[fd] = s;
	return 1;
#else
	(void)fd;
	return 0;
#endif
}

/* Tells whether fd is a TLS socket: its reads go on to TLS_WANT_POLLIN. */
int
tlsio_on(int fd)
{
#ifdef HAVE_TLS
	return tlsio_get(fd) != NULL;
#else
	(void)fd;
	return 0;
#endif
}

/*
 * Tells whether fd has bytes read but not decrypted yet, which epoll
 * will never report: the handshake's last read may have taken the
 * server's first lines with it.
 */
int
tlsio_pending(int fd)
{
#ifdef HAVE_TLS
	return tlsio_get(fd) != NULL && tlsio_ctx[fd]->rbuf != NULL;
#else
	(void)fd;
	return 0;
#endif
}

/*
 * Goes on with the handshake of fd, whose events in the epoll set ep
 * are tagged idx: 1 once done (fd then watched for input), 0 while it
 * waits (watched for what it waits for), -1 if it failed.  *ev: the
 * events now watched.
 */
int
tlsio_step(int ep, int fd, unsigned int idx, uint32_t *ev)
{
#ifdef HAVE_TLS
	struct tls	*t = tlsio_get(fd);
	int		 r = t != NULL ? tls_handshake(t) : 0;

	if (r == -1) {
		tlsio_fail(t, "handshake");
		return -1;
	}
	*ev = r == TLS_WANT_POLLOUT ? EPOLLOUT : EPOLLIN;
	sock_watch(ep, fd, idx, *ev);
	return r == TLS_WANT_POLLIN || r == TLS_WANT_POLLOUT ? 0 : 1;
#else
	(void)ep;
	(void)fd;
	(void)idx;
	*ev = EPOLLIN;
	return 1;
#endif
}

/*
 * Reads like read(2): a TLS socket that waits for either direction is
 * EAGAIN; a TLS error is EPROTO, and rd_why() has its words.
 */
ssize_t
tlsio_read(int fd, void *p, size_t len)
{
#ifdef HAVE_TLS
	struct tls		*t = tlsio_get(fd);
	struct tlsio_sock	*s;
	ssize_t			 n;

	if (t != NULL) {
		s = tlsio_ctx[fd];
		/*
		 * The caller reads until EAGAIN.  A read shorter than asked
		 * that left the buffer empty took a whole record and all
		 * that was read of the socket: the next would be a read(2)
		 * that finds nothing, one a message.  Say EAGAIN at once;
		 * epoll (level-triggered) reports what came since.
		 */
		if (s->drained) {
			s->drained = 0;
			errno = EAGAIN;
			return -1;
		}
		/*
		 * A record without data (a session ticket) ends a read with
		 * TLS_WANT_POLLIN although more may wait in the buffer,
		 * where epoll cannot see it: go on while some does.
		 */
		while ((n = tls_read(t, p, len)) == TLS_WANT_POLLIN &&
		    s->rbuf != NULL)
			;
		s->drained = n > 0 && (size_t)n < len && s->rbuf == NULL;
		return tlsio_result(t, n, "read");
	}
#endif
	return read(fd, p, len);
}

/* Sends like send(2) with MSG_NOSIGNAL, with read()'s errors above. */
ssize_t
tlsio_send(int fd, const void *p, size_t len)
{
#ifdef HAVE_TLS
	struct tls	*t = tlsio_get(fd);
	ssize_t		 n;

	if (t != NULL) {
		n = tls_write(t, p, len);
		return tlsio_result(t, n, "write");
	}
#endif
	return send(fd, p, len, MSG_NOSIGNAL);
}

/*
 * Ends the TLS of fd before its close: one try at close_notify, never a
 * wait (the socket is non-blocking, and the close comes next anyway).
 */
void
tlsio_close(int fd)
{
#ifdef HAVE_TLS
	struct tls		*t = tlsio_get(fd);
	struct tlsio_sock	*s;

	if (t == NULL)
		return;
	s = tlsio_ctx[fd];
	(void)tls_close(t);
	tls_free(t);
	free(s->rbuf);
	free(s);
	tlsio_ctx[fd] = NULL;
#else
	(void)fd;
#endif
}

/* The words of the last TLS error, for an EPROTO. */
const char *
tlsio_why(void)
{
	return tlsio_error[0] != '\0' ? tlsio_error : "TLS error";
}
