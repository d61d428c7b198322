/*
 * conn.c: the client's connection to the server, plain or TLS.
 *
 * Every byte to and from the server goes through conn_read and
 * conn_write, so the loop in main.c does not care which one it holds.
 * With --tls (libtls), conn_open finishes the handshake, with the
 * server's certificate and name verified, before the caller may queue
 * a single request: a server that fails verification never sees one.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <sys/types.h>
#include <sys/socket.h>

#include <err.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_TLS
#include <tls.h>
#endif

#include "clock.h"
#include "client.h"

/*
 * Connects to host and port within timeout_ms for all the addresses,
 * each in turn, non-blocking, so an unreachable server never hangs the
 * client.
 */
static int
conn_connect(const char *host, const char *port, long long timeout_ms)
{
	struct addrinfo	 hints, *res, *ai;
	struct pollfd	 pfd;
	socklen_t	 sl;
	long long	 deadline, left;
	int		 fd = -1, error, saved = ECONNREFUSED, soerr, n;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((error = getaddrinfo(host, port, &hints, &res)) != 0)
		errx(1, "%s port %s: %s", host, port, gai_strerror(error));
	deadline = clock_now_ms() + timeout_ms;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd == -1) {
			saved = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno != EINPROGRESS) {
			saved = errno;
			goto next;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		for (;;) {
			left = deadline - clock_now_ms();
			if (left <= 0) {
				n = 0;
				break;
			}
			n = poll(&pfd, 1, (int)left);
			if (n != -1 || errno != EINTR)
				break;
		}
		if (n == -1)
			err(1, "poll");
		if (n == 0) {
			saved = ETIMEDOUT;
			goto next;
		}
		sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == -1)
			err(1, "getsockopt");
		if (soerr == 0)
			break;
		saved = soerr;
next:
		if (close(fd) == -1)
			err(1, "close");
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		errx(1, "connect to %s port %s: %s", host, port,
		    strerror(saved));
	return fd;
}

#ifdef HAVE_TLS
/*
 * Builds the one TLS configuration of the process: the system's CAs
 * (tls_default_ca_cert_file) or --ca, and with --insecure no
 * verification at all, said on stderr every time.
 */
void
conn_tls_setup(struct client *c, const char *ca, int insecure)
{
	struct tls_config	*conf;

	if ((conf = tls_config_new()) == NULL)
		err(1, "tls_config_new");
	if (tls_config_set_ca_file(conf,
	    ca != NULL ? ca : tls_default_ca_cert_file()) == -1)
		errx(1, "CA file %s: %s",
		    ca != NULL ? ca : tls_default_ca_cert_file(),
		    tls_config_error(conf));
	if (insecure) {
		tls_config_insecure_noverifycert(conf);
		tls_config_insecure_noverifyname(conf);
		warnx("warning: --insecure: the server's certificate and "
		    "name are not verified; anyone on the path can read "
		    "and change this session");
	}
	c->tls_conf = conf;
}

/*
 * Runs the TLS handshake on c->fd, within --timeout; a
 * certificate or name that does not verify ends the client here,
 * before anything of ours is written.
 */
static void
conn_tls_start(struct client *c)
{
	struct pollfd	 pfd;
	long long	 deadline, left;
	int		 r, n;

	if ((c->tls = tls_client()) == NULL)
		err(1, "tls_client");
	if (tls_configure(c->tls, c->tls_conf) == -1)
		errx(1, "tls_configure: %s", tls_error(c->tls));
	if (tls_connect_socket(c->tls, c->fd, c->host) == -1)
		errx(1, "TLS with %s port %s: %s", c->host, c->port,
		    tls_error(c->tls));
	deadline = clock_now_ms() + c->connect_timeout_ms;
	pfd.fd = c->fd;
	while ((r = tls_handshake(c->tls)) == TLS_WANT_POLLIN ||
	    r == TLS_WANT_POLLOUT) {
		pfd.events = r == TLS_WANT_POLLIN ? POLLIN : POLLOUT;
		left = deadline - clock_now_ms();
		if (left <= 0)
			errx(1, "TLS handshake with %s port %s: timed out "
			    "(is it a TLS port?)", c->host, c->port);
		n = poll(&pfd, 1, (int)left);
		if (n == -1 && errno != EINTR)
			err(1, "poll");
	}
	if (r == -1)
		errx(1, "TLS handshake with %s port %s failed: %s%s", c->host,
		    c->port, tls_error(c->tls),
		    /* OpenSSL's words for an answer that is not TLS */
		    strstr(tls_error(c->tls), "wrong version number") != NULL ?
		    " (a plain port, not a TLS one?)" : "");
}

/* Reads decrypted bytes: a size, 0 at the end, -1 or CONN_AGAIN. */
static ssize_t
conn_tls_read(struct client *c, void *p, size_t len)
{
	ssize_t	n;

	n = tls_read(c->tls, p, len);
	if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
		/* libtls holds nothing more: poll now tells the truth. */
		c->tls_more = 0;
		c->rd_events = n == TLS_WANT_POLLIN ? POLLIN : POLLOUT;
		return CONN_AGAIN;
	}
	c->rd_events = POLLIN;
	if (n == -1) {
		/*
		 * A server that closes without close_notify: the end, as
		 * a plain close is.  A cut there cannot forge a line: the
		 * framer only passes whole ones.
		 */
		if (strstr(tls_error(c->tls), "unexpected eof") != NULL)
			return 0;
		note(c, "read from server: %s", tls_error(c->tls));
	}
	return n;
}

/* Writes bytes through TLS: a size, -1 or CONN_AGAIN. */
static ssize_t
conn_tls_write(struct client *c, const void *p, size_t len)
{
	ssize_t	n;

	n = tls_write(c->tls, p, len);
	if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
		c->wr_events = n == TLS_WANT_POLLIN ? POLLIN : POLLOUT;
		return CONN_AGAIN;
	}
	c->wr_events = POLLOUT;
	return n;
}
#else
/* Built without libtls: --tls cannot be honoured. */
void
conn_tls_setup(struct client *c, const char *ca, int insecure)
{
	(void)c;
	(void)ca;
	(void)insecure;
	errx(1, "--tls: this talknet was built without TLS "
	    "(configure found no libtls)");
}
#endif

/* Connects to c->host and c->port, with the TLS handshake if --tls. */
void
conn_open(struct client *c)
{
	c->fd = conn_connect(c->host, c->port, c->connect_timeout_ms);
	c->rd_events = POLLIN;
	c->wr_events = POLLOUT;
	c->tls_more = 0;
#ifdef HAVE_TLS
	if (c->tls_conf != NULL)
		conn_tls_start(c);
#endif
}

/* Closes the connection, to open another. */
void
conn_close(struct client *c)
{
#ifdef HAVE_TLS
	if (c->tls != NULL) {
		/* One try at close_notify: the server has hung up anyway. */
		(void)tls_close(c->tls);
		tls_free(c->tls);
		c->tls = NULL;
	}
#endif
	if (close(c->fd) == -1)
		err(1, "close");
	c->fd = -1;
}

/* Reads from the server: a size, 0 at the end, -1 or CONN_AGAIN. */
ssize_t
conn_read(struct client *c, void *p, size_t len)
{
	ssize_t	n;

#ifdef HAVE_TLS
	if (c->tls != NULL)
		return conn_tls_read(c, p, len);
#endif
	n = read(c->fd, p, len);
	if (n == -1) {
		if (errno == EINTR || errno == EAGAIN)
			return CONN_AGAIN;
		if (errno != ECONNRESET)
			note(c, "read from server: %s", strerror(errno));
	}
	return n;
}

/* Writes to the server: a size, -1 or CONN_AGAIN. */
ssize_t
conn_write(struct client *c, const void *p, size_t len)
{
	ssize_t	n;

#ifdef HAVE_TLS
	if (c->tls != NULL)
		return conn_tls_write(c, p, len);
#endif
	n = send(c->fd, p, len, MSG_NOSIGNAL);
	if (n == -1 && (errno == EINTR || errno == EAGAIN))
		return CONN_AGAIN;
	return n;
}

/*
 * --raw at the end of its input: tells the server no more is coming,
 * and keeps reading its last lines.  Over TLS that is close_notify
 * (TLS 1.3 lets the other direction go on), then the TCP half-close.
 */
void
conn_shutdown(struct client *c)
{
#ifdef HAVE_TLS
	if (c->tls != NULL)
		(void)tls_close(c->tls);
#endif
	if (shutdown(c->fd, SHUT_WR) == -1 && errno != ENOTCONN)
		err(1, "shutdown");
}
