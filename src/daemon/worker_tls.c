/*
 * worker_tls.c: the worker of a tls:// connection.  It accepts the
 * connection on the server context it inherited from the master (which
 * holds the private key: see doc/design.md, "TLS"), runs the handshake
 * without blocking inside the login timeout, then reads and writes
 * through libtls instead of read(2) and splice(2).
 *
 * libtls asks for the socket to become readable or writable again
 * (TLS_WANT_POLLIN, TLS_WANT_POLLOUT) for a read and for a write
 * separately: the worker waits for what each asks.  A record may hold
 * more than one read takes; what it leaves inside libtls, poll cannot
 * see, so a read that filled the scratch is followed by another at
 * once.  A write takes the whole queue, up to a record (16 KiB) a call:
 * lines queued together leave in one record, never one each.  libtls
 * reads and writes the socket through the worker's callbacks, which keep
 * the client's FIN from it (worker_tls_cb_read).
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_TLS
#include <tls.h>
#endif

#include "log.h"
#include "tls_server.h"
#include "worker.h"

#ifdef HAVE_TLS
/* Room for why the session failed: libtls's reason, escaped. */
#define WORKER_TLS_WHY		160

static char	worker_tls_failed[WORKER_TLS_WHY];
static int	worker_tls_fin;	/* the client's FIN, kept from libtls */

/*
 * libtls's reads of the client socket.  Once the handshake is done, the
 * client's FIN is kept from libtls: read by libtls, a FIN without
 * close_notify fails the session, with an alert, and what is queued for
 * the client would be lost.  Held back, it is an end of input as in
 * clear (worker_tls_read).  In the handshake, libtls fails it.
 */
static ssize_t
worker_tls_cb_read(struct tls *t, void *p, size_t len, void *arg)
{
	ssize_t	n;

	(void)t;
	(void)arg;
	if (worker_tls_fin)
		return TLS_WANT_POLLIN;
	if ((n = read(w.cfd, p, len)) == -1)
		return (errno == EAGAIN || errno == EINTR) ?
		    TLS_WANT_POLLIN : -1;
	if (n == 0 && w.tls_ready) {
		worker_tls_fin = 1;
		return TLS_WANT_POLLIN;
	}
	return n;
}

/* libtls's writes to the client socket (SIGPIPE is ignored). */
static ssize_t
worker_tls_cb_write(struct tls *t, const void *p, size_t len, void *arg)
{
	ssize_t	n;

	(void)t;
	(void)arg;
	if ((n = write(w.cfd, p, len)) == -1 &&
	    (errno == EAGAIN || errno == EINTR))
		return TLS_WANT_POLLOUT;
	return n;
}

/*
 * Starts serving TLS on the client socket: a context for this one
 * connection, from the server context the master loaded.  Before the
 * sandbox: it allocates, and nothing in it can fail later for that.
 */
void
worker_tls_start(void)
{
	struct tls	*srv;

	if ((srv = tls_server_ctx()) == NULL)
		fatalx("worker %s: no TLS context", w.addr);
	/* Not in free chunks of pages shared with the master: copies. */
	tls_server_child();
	if (tls_accept_cbs(srv, &w.tls, worker_tls_cb_read,
	    worker_tls_cb_write, NULL) == -1)
		fatalx("worker %s: tls_accept_cbs: %s", w.addr,
		    tls_error(srv));
	w.tls_rwant = POLLIN;
	w.tls_wwant = POLLOUT;
}

/*
 * The session failed in libtls: the reason, escaped (it may quote what
 * the client sent), is logged once and kept for the end line.  Nothing
 * more is read or written through libtls.  A failed handshake leaves
 * the socket itself sound: the worker closes it as any other (FIN, and
 * what the client still sends read, so no reset), with no TLS alert.
 */
static void
worker_tls_fail(const char *what, int dead)
{
	const char	*e = tls_error(w.tls);

	if (e == NULL)
		e = "connection closed";
	(void)log_escape(e, strlen(e), worker_tls_failed,
	    sizeof(worker_tls_failed));
	log_info("worker %s: TLS %s: %s", w.addr, what, worker_tls_failed);
	w.flags |= WF_RD_DONE;
	if (dead)
		w.flags |= WF_WR_DEAD;
	buf_reset(&w.out);
	worker_leave(RES_NONE);
}

/* Why the TLS session failed, for the end line ("" if it did not). */
const char *
worker_tls_why(void)
{
	return worker_tls_failed;
}

/*
 * Runs the handshake a step.  A client that stalls in it is cut at the
 * login timeout like any other (worker_timers); one that sends no TLS
 * (plain text, HTTP) fails it, and is closed.
 */
static void
worker_tls_handshake(void)
{
	int	r;

	r = tls_handshake(w.tls);
	if (r == TLS_WANT_POLLIN || r == TLS_WANT_POLLOUT) {
		w.tls_rwant = r == TLS_WANT_POLLIN ? POLLIN : POLLOUT;
		return;
	}
	if (r == -1) {
		worker_end(END_INVALID, LIMIT_LAST);
		worker_tls_fail("handshake", 0);
		return;
	}
	w.tls_ready = 1;
	w.tls_rwant = POLLIN;
	/*
	 * The handshake's temporaries (key exchange, transcript) are
	 * freed: give their pages back, or each idle TLS client keeps
	 * them (doc/design.md, "TLS").
	 */
	(void)malloc_trim(0);
	tls_server_trim();
	log_debug("worker %s: %s, %s", w.addr, tls_conn_version(w.tls),
	    tls_conn_cipher(w.tls));
}

/* The events to wait for on the client, given what the loop wants. */
short
worker_tls_events(int rd, int wr)
{
	short	ev = 0;

	if (!w.tls_ready)
		return (w.flags & WF_RD_DONE) ? 0 : w.tls_rwant;
	if (rd)
		ev |= w.tls_rwant;
	if (wr)
		ev |= w.tls_wwant;
	return ev;
}

/* Reads once from the client into the framer; 1 if it may read more. */
static int
worker_tls_read(void)
{
	ssize_t	n;
	char	c;

	n = tls_read(w.tls, w.scratch, sizeof(w.scratch));
	if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
		w.tls_rwant = n == TLS_WANT_POLLIN ? POLLIN : POLLOUT;
		w.tls_more = 0;
		/* The client's FIN: input ends (a record cut short is lost). */
		if (worker_tls_fin)
			w.flags |= WF_RD_DONE | WF_RD_EOF;
		return 0;
	}
	w.tls_rwant = POLLIN;
	if (n == -1) {
		w.tls_more = 0;
		worker_end(END_CLIENT_CLOSED, LIMIT_LAST);
		/* Most clients close without close_notify: no failure. */
		if (recv(w.cfd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0) {
			w.flags |= WF_RD_DONE | WF_RD_EOF | WF_WR_DEAD;
			buf_reset(&w.out);
			return 0;
		}
		worker_tls_fail("read", 1);
		return 0;
	}
	if (n == 0) {
		w.tls_more = 0;
		w.flags |= WF_RD_DONE | WF_RD_EOF;
		return 0;
	}
	w.rep.bytes_in += (uint64_t)n;
	worker_scratch_wrote((size_t)n);
	if (framer_feed(&w.in, w.scratch, (size_t)n) == -1)
		fatal("framer_feed");
	/* A full scratch may have left part of a record in libtls. */
	w.tls_more = (size_t)n == sizeof(w.scratch);
	return w.tls_more;
}

/*
 * After the client's fd woke (revents), or with data left inside libtls
 * (w.tls_more): runs the handshake, or reads while the loop wants input
 * (rd).  A write that waits is retried by the loop's own write.
 */
void
worker_tls_ready(short revents, int rd)
{
	if (!w.tls_ready) {
		if (revents != 0 && !(w.flags & WF_RD_DONE))
			worker_tls_handshake();
		/* The handshake may have brought the first records. */
		if (!w.tls_ready)
			return;
	}
	if (!rd || (revents == 0 && !w.tls_more))
		return;
	(void)worker_tls_read();
	worker_input();
}

/*
 * Writes the queue to the client: one tls_write a record (16 KiB), as
 * many records as the socket takes.  Returns the bytes libtls took, 0
 * when it waits, -1 when the connection is dead.  A write that waits
 * must be retried with at least the same bytes (w.tls_wlen): the
 * queue's head stays, and worker_queue_keep_head keeps that much.
 */
ssize_t
worker_tls_send(const char *p, size_t len)
{
	size_t	off = 0;
	ssize_t	n;
	int	i;

	if (!w.tls_ready || len == 0)
		return 0;
	for (i = 0; i < WORKER_SEND_ROUNDS && off < len; i++) {
		n = tls_write(w.tls, p + off, len - off);
		if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
			w.tls_wwant = n == TLS_WANT_POLLIN ? POLLIN : POLLOUT;
			w.tls_wlen = len - off;
			break;
		}
		w.tls_wwant = POLLOUT;
		w.tls_wlen = 0;
		if (n == -1) {
			log_debug("worker %s: tls_write: %s", w.addr,
			    tls_error(w.tls));
			errno = EPIPE;
			return off > 0 ? (ssize_t)off : -1;
		}
		worker_count_out(p + off, (size_t)n);
		off += (size_t)n;
		/* Plain bytes: a stall check sees the socket's change. */
		w.sent += (uint64_t)n;
	}
	return (ssize_t)off;
}

/* Sends close_notify, once, without waiting for the client's. */
void
worker_tls_close(void)
{
	if (w.tls == NULL || !w.tls_ready || (w.flags & WF_WR_DEAD))
		return;
	(void)tls_close(w.tls);
}
#else /* !HAVE_TLS */
/* Built without TLS: no listener is tls://, so no worker gets here. */
void
worker_tls_start(void)
{
	fatalx("worker %s: built without TLS", w.addr);
}

/* Without TLS: nothing to wait for. */
short
worker_tls_events(int rd, int wr)
{
	(void)rd;
	(void)wr;
	return 0;
}

/* Without TLS: nothing to run. */
void
worker_tls_ready(short revents, int rd)
{
	(void)revents;
	(void)rd;
}

/* Without TLS: the connection is dead. */
ssize_t
worker_tls_send(const char *p, size_t len)
{
	(void)p;
	(void)len;
	return -1;
}

/* Without TLS: nothing to close. */
void
worker_tls_close(void)
{
}

/* Without TLS: no failure. */
const char *
worker_tls_why(void)
{
	return "";
}
#endif /* HAVE_TLS */
