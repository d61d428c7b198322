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

#ifdef HAVE_TLS
static struct tls_config *tlsio_config;
static const char	*tlsio_name;	/* the name the certificate must have */
static struct tls	**tlsio_ctx;	/* by fd; NULL: plain */
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
	if (fd < 0 || (size_t)fd >= tlsio_nctx)
		return NULL;
	return tlsio_ctx[fd];
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
 * Starts TLS on a connected socket: 0, or -1 (errno and rd_why() say
 * why).  The handshake itself is tlsio_handshake()'s.
 */
int
tlsio_start(int fd)
{
#ifdef HAVE_TLS
	struct tls	*t, **n;
	size_t		 want;

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
	if (tls_configure(t, tlsio_config) == -1 ||
	    tls_connect_socket(t, fd, tlsio_name) == -1) {
		tlsio_fail(t, "connect");
		tls_free(t);
		return -1;
	}
	tlsio_ctx[fd] = t;
#else
	(void)fd;
#endif
	return 0;
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
 * Goes on with the handshake of fd: 1 once done (or plain), 0 while it
 * waits (*ev: the epoll events it waits for), -1 if it failed.
 */
int
tlsio_handshake(int fd, uint32_t *ev)
{
#ifdef HAVE_TLS
	struct tls	*t = tlsio_get(fd);
	int		 r;

	if (t == NULL)
		return 1;
	r = tls_handshake(t);
	if (r == TLS_WANT_POLLIN || r == TLS_WANT_POLLOUT) {
		*ev = r == TLS_WANT_POLLIN ? EPOLLIN : EPOLLOUT;
		return 0;
	}
	if (r == -1) {
		tlsio_fail(t, "handshake");
		return -1;
	}
#else
	(void)fd;
	(void)ev;
#endif
	return 1;
}

/*
 * Reads like read(2): a TLS socket that waits for either direction is
 * EAGAIN; a TLS error is EPROTO, and rd_why() has its words.
 */
ssize_t
tlsio_read(int fd, void *p, size_t len)
{
#ifdef HAVE_TLS
	struct tls	*t = tlsio_get(fd);
	ssize_t		 n;

	if (t != NULL) {
		n = tls_read(t, p, len);
		if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
			errno = EAGAIN;
			return -1;
		}
		if (n == -1)
			tlsio_fail(t, "read");
		return n;
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
		/* SIGPIPE is ignored: libtls writes with write(2). */
		n = tls_write(t, p, len);
		if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
			errno = EAGAIN;
			return -1;
		}
		if (n == -1)
			tlsio_fail(t, "write");
		return n;
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
	struct tls	*t = tlsio_get(fd);

	if (t == NULL)
		return;
	(void)tls_close(t);
	tls_free(t);
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
