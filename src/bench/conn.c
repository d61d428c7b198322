/*
 * conn.c: talknet-bench's connections.  Each client is one
 * non-blocking socket in the run's epoll set: it connects (a burst of at
 * most --concurrency at once), registers through the run's wire (TalkNet
 * or IRC), reads lines and writes what is queued, and is retried, counted
 * or reported when it is lost.
 *
 * Replies land in a lib/ buffer per connection and are split with
 * memchr() (lib/frame.c scans byte by byte, which cost 41% of this
 * program's CPU at two million lines a second).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1	/* memrchr() */
#endif

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "bench.h"

#define READS_PER_EVENT		4	/* then let other sockets have a turn */
#define SERVER_MAX_LINE		(1024 * 1024)
#define CONNECT_RETRIES		5	/* per client during set-up */

static void	 conn_read(struct bench *, struct conn *);

/* Remembers the first problem of the run, which need not fail it. */
void
rs_note(struct run_status *rs, const char *fmt, ...)
{
	va_list	ap;

	if (rs->note[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(rs->note, sizeof(rs->note), fmt, ap);
	va_end(ap);
}

/* Fails the run; the first reason given is the one reported. */
void
rs_fail(struct run_status *rs, const char *fmt, ...)
{
	va_list	ap;

	if (!rs->failed) {
		va_start(ap, fmt);
		vsnprintf(rs->error, sizeof(rs->error), fmt, ap);
		va_end(ap);
	}
	rs->failed = 1;
}

/* Tells whether an address is loopback (127/8, ::1, ::ffff:127/104). */
static int
addr_is_loopback(const struct sockaddr *sa)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;

	if (sa->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)(const void *)sa;
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) &&
		    sin6->sin6_addr.s6_addr[12] == 127;
	}
	return 0;
}

/*
 * Takes the next "HOST:PORT" (or "[V6]:PORT") of a --nodes list at *pp
 * into host and port, and moves *pp past it and its comma: 1, or 0 at
 * the end of the list.  A malformed item is a usage error.
 */
int
node_next(const char **pp, char *host, size_t hostlen, char *port,
    size_t portlen)
{
	const char	*p = *pp, *end, *colon, *h = p;
	size_t		 hlen;

	if (*p == '\0')
		return 0;
	end = p + strcspn(p, ",");
	if (*p == '[') {
		h = p + 1;
		colon = memchr(p, ']', (size_t)(end - p));
		if (colon == NULL || colon + 1 >= end || colon[1] != ':')
			colon = NULL;
		hlen = colon == NULL ? 0 : (size_t)(colon - h);
		if (colon != NULL)
			colon++;
	} else {
		colon = memrchr(p, ':', (size_t)(end - p));
		hlen = colon == NULL ? 0 : (size_t)(colon - p);
	}
	if (colon == NULL || hlen == 0 || hlen >= hostlen ||
	    (size_t)(end - colon - 1) >= portlen || end == colon + 1)
		errx(2, "--nodes: \"%.*s\" is not HOST:PORT", (int)(end - p),
		    p);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	memcpy(port, colon + 1, (size_t)(end - colon - 1));
	port[end - colon - 1] = '\0';
	(void)opt_num("--nodes port", port, 1, 65535);
	*pp = *end == ',' ? end + 1 : end;
	if (*end == ',' && **pp == '\0')
		errx(2, "--nodes: a list ends with a comma");
	return 1;
}

/* Resolves host and port into the next slot of tg; refuses remote hosts. */
static void
target_add(const struct options *o, struct targets *tg, const char *host,
    const char *port)
{
	struct addrinfo		 hints, *res;
	struct sockaddr_storage	*sa = &tg->sa[tg->n];
	char			 h[INET6_ADDRSTRLEN], text[INET6_ADDRSTRLEN + 10];
	int			 e;

	if (tg->n == MAX_NODES)
		errx(2, "--nodes: %d nodes at most", MAX_NODES);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((e = getaddrinfo(host, port, &hints, &res)) != 0)
		errx(1, "%s port %s: %s", host, port, gai_strerror(e));
	if (res->ai_addrlen > sizeof(*sa))
		errx(1, "%s: address too long", host);
	memcpy(sa, res->ai_addr, res->ai_addrlen);
	tg->salen[tg->n] = res->ai_addrlen;
	freeaddrinfo(res);
	if (!o->allow_remote && !addr_is_loopback((struct sockaddr *)sa))
		errx(2, "%s is not a loopback address; use --allow-remote "
		    "to load a remote server", host);
	if (getnameinfo((struct sockaddr *)sa, tg->salen[tg->n], h, sizeof(h),
	    NULL, 0, NI_NUMERICHOST) != 0)
		strlcpy(h, host, sizeof(h));
	snprintf(text, sizeof(text), "%s%s%s%s:%s", tg->n > 0 ? "," : "",
	    strchr(h, ':') != NULL ? "[" : "", h,
	    strchr(h, ':') != NULL ? "]" : "", port);
	strlcat(tg->text, text, sizeof(tg->text));
	tg->n++;
}

/*
 * Resolves where the clients connect: --host and --port, or each node of
 * --nodes; client i goes to tg->sa[i % tg->n].
 */
void
targets_resolve(const struct options *o, struct targets *tg)
{
	char		 host[NI_MAXHOST], port[16];
	const char	*p = o->nodes;

	memset(tg, 0, sizeof(*tg));
	if (p == NULL) {
		target_add(o, tg, o->host, o->port);
		return;
	}
	while (node_next(&p, host, sizeof(host), port, sizeof(port)))
		target_add(o, tg, host, port);
	if (tg->n == 0)
		errx(2, "--nodes: no HOST:PORT given");
}

/* --- connections -------------------------------------------------------- */

/* States that count against --concurrency. */
static int
state_inflight(enum cstate st)
{
	return st == C_CONNECTING || st == C_HANDSHAKE || st == C_REGISTER ||
	    st == C_QUITTING;
}

/* Moves a connection to a new state, keeping the in-flight count. */
void
conn_set_state(struct bench *b, struct conn *c, enum cstate st)
{
	if (state_inflight(c->st))
		b->inflight--;
	if (state_inflight(st))
		b->inflight++;
	c->st = st;
}

/* Sets the epoll events of a connection if they changed. */
static void
conn_watch(struct bench *b, struct conn *c, uint32_t ev)
{
	if (c->fd < 0 || ev == c->ev)
		return;
	sock_watch(b->ep, c->fd, c->idx, ev);
	c->ev = ev;
}

/* A client's name for messages; it has none before it identifies. */
const char *
conn_label(const struct conn *c)
{
	return c->name[0] != '\0' ? c->name : "unnamed";
}

/* Closes the socket and frees the buffers; the state becomes C_CLOSED. */
void
conn_close(struct bench *b, struct conn *c)
{
	if (c->fd >= 0) {
		tlsio_close(c->fd);
		/* Closing the only fd also drops it from the epoll set. */
		close(c->fd);
		c->fd = -1;
		b->nopen--;
	}
	buf_free(&c->in);
	buf_free(&c->out);
	c->ev = 0;
	conn_set_state(b, c, C_CLOSED);
}

/* Writes what is queued; watches EPOLLOUT while some is left. */
int
conn_flush(struct bench *b, struct conn *c)
{
	ssize_t	w;

	while (buf_pending(&c->out) > 0) {
		w = tlsio_send(c->fd, buf_head(&c->out),
		    buf_pending(&c->out));
		if (w == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_lost(b, c, rd_why(RD_ERROR));
			return -1;
		}
		buf_drain(&c->out, (size_t)w);
	}
	if (buf_pending(&c->out) > 0) {
		conn_watch(b, c, EPOLLIN | EPOLLOUT);
	} else {
		if (!b->busy)
			buf_free(&c->out);
		conn_watch(b, c, EPOLLIN);
	}
	return 0;
}

/* Gives a connection its name for this attempt: a letter and its index. */
void
conn_name(struct bench *b, struct conn *c)
{
	snprintf(c->name, sizeof(c->name), "%c%u",
	    'a' + (b->tag - 'a' + (int)c->attempt) % 26, c->idx);
}

/* Sends IDENTIFY, or NICK and USER. */
void
conn_register(struct bench *b, struct conn *c)
{
	conn_name(b, c);
	conn_set_state(b, c, C_REGISTER);
	b->wire->hello(b, c);
}

/*
 * Sends DISCONNECT or QUIT and half-closes, to wait for the server; over
 * TLS it only waits, since a TCP half-close would cut the TLS stream.
 */
void
conn_quit(struct bench *b, struct conn *c)
{
	b->wire->bye(b, c);
	if (c->fd < 0)
		return;
	if (buf_pending(&c->out) > 0) {
		/* A shut-down socket would drop it: give up on this one. */
		conn_close(b, c);
		return;
	}
	if (!tlsio_on(c->fd))
		(void)shutdown(c->fd, SHUT_WR);
	conn_set_state(b, c, C_QUITTING);
}

/*
 * Opens a non-blocking TCP socket to sa in the epoll set ep, its events
 * tagged idx, and starts its connect: the fd, or -1 (errno says why).
 * *done tells whether the connect finished at once.
 */
int
sock_connect(int ep, const struct sockaddr_storage *sa, socklen_t salen,
    unsigned int idx, int *done)
{
	struct epoll_event	e;
	int			fd, one = 1, saved;

	*done = 0;
	fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		return -1;
	/* Each message must leave at once: latency is what is measured. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		warn("TCP_NODELAY");
	memset(&e, 0, sizeof(e));
	e.events = EPOLLIN | EPOLLOUT;
	e.data.u32 = idx;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) == -1)
		err(1, "epoll_ctl");
	if (connect(fd, (const struct sockaddr *)sa, salen) == 0)
		*done = 1;
	else if (errno != EINPROGRESS) {
		saved = errno;
		close(fd);	/* which also drops it from the epoll set */
		errno = saved;
		return -1;
	}
	return fd;
}

/*
 * conn_handshake goes on with a connection's TLS handshake and registers
 * it once done; conn_connected, once its TCP connect went through, starts
 * the handshake if --tls, or registers it; conn_tls_event takes the
 * events of a connection in its handshake.
 */
TLSIO_START_GENERATE(conn, struct bench, struct conn, &c->ev, conn_lost,
    conn_set_state, C_HANDSHAKE, conn_register, conn_read)

/* Starts a non-blocking connect. */
void
conn_start(struct bench *b, struct conn *c, int64_t now)
{
	unsigned int	k;
	int		done;

	c->t_start = now;
	conn_set_state(b, c, C_CONNECTING);
	/* Round robin: senders and pingers' peers spread over the nodes. */
	k = c->idx % b->tg.n;
	c->fd = sock_connect(b->ep, &b->tg.sa[k], b->tg.salen[k], c->idx,
	    &done);
	if (c->fd == -1) {
		conn_lost(b, c, strerror(errno));
		return;
	}
	/* Its buffers are empty: new, or freed by conn_close(). */
	b->nopen++;
	c->ev = EPOLLIN | EPOLLOUT;
	if (done)
		conn_connected(b, c);
}

/* Marks a connection ready for the workload. */
void
conn_ready(struct bench *b, struct conn *c, int64_t now)
{
	conn_set_state(b, c, C_READY);
	if (++b->nready == b->n)
		b->t_ready = now;
}

/* Handles a successful IDENTIFY or IRC registration. */
void
conn_identified(struct bench *b, struct conn *c, int64_t now)
{
	const struct options	*o = b->o;

	b->nident++;
	if (o->wl == WL_CONNECT) {
		hist_add(&b->h, (uint64_t)(now - c->t_start));
		conn_quit(b, c);
		return;
	}
	conn_set_state(b, c, C_IDENT);
	if (b->nident == b->n)
		b->t_ident = now;
	if (!conn_synced(b)) {
		/* Nobody enters before every node knows everyone. */
		if (b->nident == b->n)
			b->wire->sync(b, now);
		return;
	}
	conn_enter(b, c, now);
}

/*
 * Tells whether the clients may enter: always on one node; over several,
 * a fanout or private run (texts and invitations name the clients) waits
 * until each node's table lists every one of them.
 */
int
conn_synced(const struct bench *b)
{
	return b->tg.n < 2 || b->wire->sync == NULL || b->unsynced == 0 ||
	    (b->o->wl != WL_FANOUT && b->o->wl != WL_PRIVATE);
}

/* An identified client heads for the room, or is ready. */
void
conn_enter(struct bench *b, struct conn *c, int64_t now)
{
	if (b->o->wl == WL_FANOUT && b->wire->enter(b, c))
		return;
	conn_ready(b, c, now);
}

/*
 * Handles a connection that broke or was closed.  During set-up it is
 * retried a few times; in the connect workload it is one failure; later
 * it is a disconnect, and its missing copies show in the results.
 */
void
conn_lost(struct bench *b, struct conn *c, const char *why)
{
	enum cstate	old = c->st;
	int64_t		now = clock_now_ns();

	conn_close(b, c);
	if (b->ph >= PH_TEARDOWN)
		return;
	if (b->o->wl == WL_CONNECT) {
		b->connects_failed++;
		rs_note(&b->rs, "connection %u: %s", c->idx, why);
		return;
	}
	if (b->ph == PH_SETUP && (old == C_CONNECTING ||
	    old == C_HANDSHAKE || old == C_REGISTER) &&
	    c->retries < CONNECT_RETRIES) {
		c->retries++;
		b->connect_retries++;
		rs_note(&b->rs, "client %u: %s (retried)", c->idx, why);
		c->next_ns = now + (int64_t)c->retries * 100 * MS;
		conn_set_state(b, c, C_WAIT);
		TAILQ_INSERT_TAIL(&b->retryq, c, retry_entry);
		return;
	}
	if (b->ph == PH_SETUP) {
		rs_fail(&b->rs, "client %u (%s): %s", c->idx,
		    conn_label(c), why);
		return;
	}
	b->disconnects++;
	rs_note(&b->rs, "client %u (%s): %s", c->idx, conn_label(c), why);
}


/*
 * Returns the next complete line in *pp..end and its length n without
 * "\n" or "\r\n", and moves *pp past it; NULL if no line is complete.
 * Servers never send the "\0" lib/frame.c also takes; memchr() finds
 * the ends, which at two million lines a second matters.
 */
const char *
line_next(const char **pp, const char *end, size_t *n)
{
	const char	*p = *pp, *nl;

	if (p >= end || (nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
		return NULL;
	*n = (size_t)(nl - p);
	if (*n > 0 && p[*n - 1] == '\r')
		(*n)--;
	*pp = nl + 1;
	return p;
}

/*
 * Hands each complete line of p..p+len to the reader's handler; the
 * bytes used, or -1 if the connection went away meanwhile.
 */
static ssize_t
rd_lines(const struct reader *r, const char *p, size_t len, int64_t now)
{
	const char	*s = p, *end = p + len, *line;
	size_t		 n;

	while ((line = line_next(&s, end, &n)) != NULL) {
		if (n == 0)
			continue;
		if (r->line(r->run, r->conn, line, n, now) == -1)
			return -1;
	}
	return s - p;
}

/*
 * Reads what a socket has, a few reads at most, and hands each complete
 * line to the reader's handler.  A partial line waits in r->in, which
 * the next read appends to; without one, the read lands in the shared
 * scratch and only its last partial line is kept, so that idle clients
 * (hold, join, broadcast) hold no buffer.  Over TLS it reads until
 * libtls wants the socket: what libtls holds decrypted, epoll never
 * reports.  Returns an enum rd_status.
 */
int
rd_read(const struct reader *r)
{
	ssize_t	 n, used;
	size_t	 want;
	char	*d;
	int	 i, tls = tlsio_on(r->fd);

	for (i = 0; tls || i < READS_PER_EVENT; i++) {
		if (buf_pending(r->in) > 0 || r->keep) {
			if (buf_reserve(r->in, READ_WANT) == -1)
				err(1, "buf_reserve");
			d = r->in->data + r->in->len;
			want = r->in->cap - r->in->len;
		} else {
			d = r->scratch;
			want = r->scratch_len;
		}
		n = tlsio_read(r->fd, d, want);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0)
			return n == 0 ? RD_EOF : RD_ERROR;
		if (d == r->scratch) {
			if ((used = rd_lines(r, d, (size_t)n,
			    clock_now_ns())) == -1)
				return RD_GONE;
			if (used < n && buf_append(r->in, d + used,
			    (size_t)(n - used)) == -1)
				err(1, "buf_append");
		} else {
			buf_commit(r->in, (size_t)n);
			/* Not buf_head(): the reserve made data non-NULL. */
			if ((used = rd_lines(r, r->in->data + r->in->off,
			    buf_pending(r->in), clock_now_ns())) == -1)
				return RD_GONE;
			buf_drain(r->in, (size_t)used);
		}
		if (buf_pending(r->in) > SERVER_MAX_LINE)
			return RD_LONG;
		if (!tls && (size_t)n < want)
			break;
	}
	if (buf_pending(r->in) == 0 && !r->keep)
		buf_free(r->in);
	return RD_OPEN;
}

/* Why rd_read() ended a connection, in words. */
const char *
rd_why(int rs)
{
	if (rs == RD_EOF)
		return "closed by the server";
	if (rs == RD_LONG)
		return "line too long";
	if (errno == EPROTO)
		return tlsio_why();
	return strerror(errno);
}

/* Hands one line to the run's wire; -1 once the connection is gone. */
static int
conn_line(void *run, void *conn, const char *line, size_t len, int64_t now)
{
	struct bench	*b = run;
	struct conn	*c = conn;

	b->wire->line(b, c, line, len, now);
	return c->fd < 0 ? -1 : 0;
}

/* Reads what a connection has and handles each complete line. */
static void
conn_read(struct bench *b, struct conn *c)
{
	/* Idle clients keep no buffer: hold measures the server, not us. */
	const struct reader r = { .fd = c->fd, .in = &c->in,
	    .scratch = b->scratch, .scratch_len = sizeof(b->scratch),
	    .keep = b->busy, .line = conn_line, .run = b, .conn = c };
	int		rs;

	rs = rd_read(&r);
	if (rs == RD_EOF && c->st == C_QUITTING) {
		if (b->o->wl == WL_CONNECT && b->ph == PH_SETUP)
			b->connects_ok++;
		conn_close(b, c);
	} else if (rs != RD_OPEN && rs != RD_GONE) {
		conn_lost(b, c, rd_why(rs));
	}
}

/* Sets the epoll events of a socket, its events tagged idx. */
void
sock_watch(int ep, int fd, unsigned int idx, uint32_t events)
{
	struct epoll_event	e;

	memset(&e, 0, sizeof(e));
	e.events = events;
	e.data.u32 = idx;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e) == -1)
		err(1, "epoll_ctl");
}

/*
 * What one epoll event on a socket asks for: SE_CONNECTED when its
 * connect went through (it is then watched for input only), SE_FAILED
 * when it failed (*e: its errno), SE_READ when there is input or an end
 * to read, SE_NONE when nothing is to be done yet.
 */
enum sock_event
sock_event(int ep, int fd, unsigned int idx, int connecting, uint32_t ev,
    int *e)
{
	socklen_t	elen = sizeof(*e);

	*e = 0;
	if (!connecting)
		return ev & (EPOLLIN | EPOLLERR | EPOLLHUP) ? SE_READ : SE_NONE;
	if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0)
		return SE_NONE;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, e, &elen) == -1)
		*e = errno;
	if (*e != 0)
		return SE_FAILED;
	sock_watch(ep, fd, idx, EPOLLIN);
	return SE_CONNECTED;
}

/* Handles the epoll events of one connection. */
void
conn_event(struct bench *b, struct conn *c, uint32_t ev)
{
	int	e;

	if (c->fd < 0 || conn_tls_event(b, c))
		return;
	switch (sock_event(b->ep, c->fd, c->idx, c->st == C_CONNECTING, ev,
	    &e)) {
	case SE_CONNECTED:
		c->ev = EPOLLIN;
		conn_connected(b, c);
		return;
	case SE_FAILED:
		conn_lost(b, c, strerror(e));
		return;
	case SE_READ:
		conn_read(b, c);
		break;
	case SE_NONE:
		break;
	}
	if (c->fd >= 0 && (ev & EPOLLOUT))
		conn_flush(b, c);
}
