/*
 * presence.c: talknet-bench's join and broadcast workloads, what
 * thousands of clients online cost.
 *
 * Both first hold N clients, identified (over IRC: registered and in
 * #bench), which keep reading all along: every arrival and departure
 * reaches each of them.  join then times R newcomers one after another:
 * connect, IDENTIFY, RESPONSE, DISCONNECT and the server's close (over
 * IRC: NICK/USER, 001, JOIN, 366, QUIT, close).  broadcast has one held
 * client send one PUBLIC_TEXT (PRIVMSG #bench) R times and times each
 * until the last of its N-1 copies is in.
 *
 * One thread, one epoll set, non-blocking sockets, a deadline on every
 * phase; requests are a few bytes and are written whole or not at all.
 * The loop is not loop.c's: each step waits for one joiner or one
 * text's last copy, and 10,000 held clients read through one scratch
 * buffer with no output queue, where a classic run keeps a queue per
 * client and retries under --concurrency.  The pieces that are the same
 * are shared: targets_resolve(), sock_connect(), sock_event(), rd_read(),
 * irc_word(), and the reports are report.c's.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <ctype.h>
#include <err.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "proto.h"
#include "bench.h"

#define P_MAX_EVENTS	512
#define P_RETRIES	5		/* connects retried per held client */
#define P_NAME_ATTEMPTS	25		/* a..y; z: the joiner */
#define P_PAUSE_NS	(300 * MS)	/* between two broadcasts */
#define P_PROGRESS_NS	(5 * NS)
#define P_CHANNEL	"#bench"

static void	 p_lost(struct presence *, struct pconn *, const char *);

/* Tells whether a state counts against --concurrency. */
static int
p_inflight(enum pstate st)
{
	return st == P_CONNECTING || st == P_HANDSHAKE || st == P_REGISTER ||
	    st == P_JOINING;
}

/* Moves a connection to a state, keeping the counts; the joiner is apart. */
static void
p_set(struct presence *p, struct pconn *c, enum pstate st)
{
	if (c->idx < p->n) {
		p->inflight -= p_inflight(c->st);
		p->inflight += p_inflight(st);
		p->nwait -= c->st == P_WAIT;
		p->nwait += st == P_WAIT;
		p->nready -= c->st == P_READY;
		p->nready += st == P_READY;
	}
	c->st = st;
}

/* Closes the socket (which drops it from the epoll set) and its buffer. */
static void
p_close(struct pconn *c)
{
	if (c->fd >= 0) {
		tlsio_close(c->fd);
		close(c->fd);
	}
	c->fd = -1;
	buf_free(&c->in);
}

/* Writes one request whole; a request that does not fit is a loss. */
static void
p_write(struct presence *p, struct pconn *c, const char *line, size_t len)
{
	ssize_t	w;

	while ((w = tlsio_send(c->fd, line, len)) == -1 && errno == EINTR)
		;
	if (w == -1 || (size_t)w != len)
		p_lost(p, c, w == -1 ? rd_why(RD_ERROR) : "short write");
}

/* Writes one IRC line (the format has its CRLF). */
static void __attribute__((__format__(__printf__, 3, 4)))
p_send(struct presence *p, struct pconn *c, const char *fmt, ...)
{
	char	line[640];
	va_list	ap;
	int	len;

	if (c->fd < 0)
		return;
	va_start(ap, fmt);
	len = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(line))
		errx(1, "request too long");
	p_write(p, c, line, (size_t)len);
}

/* Encodes one TalkNet request with the lib/ codec and writes it. */
static void
p_send_msg(struct presence *p, struct pconn *c, enum msg_type type,
    const char *username, const char *text)
{
	struct msg	m;
	struct buf	b;

	if (c->fd < 0)
		return;
	memset(&m, 0, sizeof(m));
	m.type = type;
	if (username != NULL)
		m.username = str_c(username);
	if (text != NULL)
		m.text = str_c(text);
	buf_init(&b);
	if (proto_encode(&b, &m) == -1)
		err(1, "proto_encode");
	p_write(p, c, buf_head(&b), buf_pending(&b));
	buf_free(&b);
}

/* Names a client: the run's letter, the attempt's letter, its index. */
static void
p_name(struct presence *p, struct pconn *c)
{
	if (c->idx < p->n)
		snprintf(c->name, sizeof(c->name), "%c%c%u", p->tag,
		    'a' + (int)c->attempt, c->idx);
	else
		snprintf(c->name, sizeof(c->name), "%cz%u", p->tag,
		    p->nsteps);
}

/* Sends IDENTIFY, or NICK and USER. */
static void
p_register(struct presence *p, struct pconn *c)
{
	p_name(p, c);
	p_set(p, c, P_REGISTER);
	if (p->irc)
		p_send(p, c, "NICK %s\r\nUSER %s 0 * :talknet-bench\r\n",
		    c->name, c->name);
	else
		p_send_msg(p, c, MSG_IDENTIFY, c->name, NULL);
}

/*
 * Sends DISCONNECT or QUIT and half-closes, to wait for the server; over
 * TLS it only waits, since a TCP half-close would cut the TLS stream.
 */
static void
p_quit(struct presence *p, struct pconn *c)
{
	if (p->irc)
		p_send(p, c, "QUIT :bye\r\n");
	else
		p_send_msg(p, c, MSG_DISCONNECT, NULL, NULL);
	if (c->fd < 0)
		return;
	if (!tlsio_on(c->fd))
		(void)shutdown(c->fd, SHUT_WR);
	p_set(p, c, P_QUITTING);
}

/* Starts a non-blocking connect. */
static void
p_start(struct presence *p, struct pconn *c)
{
	unsigned int	k;
	int		done;

	/* Round robin over --nodes: the held by index, joiners by step. */
	k = (c->idx < p->n ? c->idx : p->nsteps) % p->tg.n;
	p_set(p, c, P_CONNECTING);
	/* Connected at once or not, EPOLLOUT comes: p_event registers it. */
	if ((c->fd = sock_connect(p->ep, &p->tg.sa[k], p->tg.salen[k], c->idx,
	    &done)) == -1)
		p_lost(p, c, strerror(errno));
}

/*
 * Handles a connection that broke or was closed.  A held client in
 * set-up is retried a few times; later it is one lost client; the
 * joiner's loss fails the run.
 */
static void
p_lost(struct presence *p, struct pconn *c, const char *why)
{
	enum pstate	old = c->st;

	p_close(c);
	if (c->idx >= p->n) {
		p_set(p, c, P_FAILED);
		rs_fail(&p->rs, "join %u (%s): %s", p->nsteps, c->name, why);
		return;
	}
	if (p->setup && (old == P_CONNECTING || old == P_HANDSHAKE ||
	    old == P_REGISTER) && c->retries < P_RETRIES) {
		c->retries++;
		p->retries++;
		rs_note(&p->rs, "client %u: %s (retried)", c->idx, why);
		c->t_retry = clock_now_ns() + (int64_t)c->retries * 100 * MS;
		p_set(p, c, P_WAIT);
		return;
	}
	p_set(p, c, P_FAILED);
	if (p->setup) {
		rs_fail(&p->rs, "client %u (%s): %s", c->idx, c->name, why);
		return;
	}
	p->lost++;
	rs_note(&p->rs, "client %u (%s): %s", c->idx, c->name, why);
}

/* Handles a successful IDENTIFY or IRC registration. */
static void
p_registered(struct presence *p, struct pconn *c, int64_t now)
{
	c->t_resp = now;
	if (p->irc) {
		p_set(p, c, P_JOINING);
		p_send(p, c, "JOIN %s\r\n", P_CHANNEL);
	} else if (c->idx < p->n) {
		p_set(p, c, P_READY);
	} else {
		p_quit(p, c);
	}
}

/* Counts one copy of a broadcast, if it is the one being timed. */
static void
p_copy(struct presence *p, struct pconn *c, const char *text, size_t len,
    int64_t now)
{
	size_t	elen = strlen(p->expect);

	if (p->round == 0 || len != elen || memcmp(text, p->expect, len) != 0)
		return;
	if (c->idx == 0) {
		/* The sender's own copy is not one of the N-1. */
		rs_note(&p->rs, "the sender got its own text back");
		return;
	}
	if (c->got == p->round) {
		p->duplicates++;
		rs_note(&p->rs, "client %u: a second copy of %s", c->idx,
		    p->expect);
		return;
	}
	c->got = p->round;
	p->copies++;
	p->copies_all++;
	p->t_last = now;
}

/* Handles a RESPONSE: the only one expected is IDENTIFY's. */
static void
p_response(struct presence *p, struct pconn *c, const struct msg *m,
    int64_t now)
{
	if (m->op == MSG_IDENTIFY && c->st == P_REGISTER) {
		if (m->res == RES_SUCCESS) {
			p_registered(p, c, now);
		} else if (m->res == RES_USER_ALREADY_EXISTS &&
		    c->idx < p->n && c->attempt + 1 < P_NAME_ATTEMPTS) {
			c->attempt++;
			p_register(p, c);
		} else {
			p_lost(p, c, "IDENTIFY refused");
		}
		return;
	}
	p->server_errors++;
	rs_note(&p->rs, "client %u (%s): %.*s %.*s", c->idx, c->name,
	    (int)m->operation.len, m->operation.p, (int)m->result.len,
	    m->result.p);
}

/*
 * Handles one TalkNet line.  The joins and departures that every held
 * client hears are recognised by their type (proto_peek_type) and skipped
 * unread; the rest goes through the codec.
 */
static void
p_talknet_line(struct presence *p, struct pconn *c, const char *line,
    size_t len, int64_t now)
{
	struct msg	 m;
	enum msg_type	 t;

	if (proto_peek_type(line, len, &t) == 0 &&
	    (t == MSG_NEW_USER || t == MSG_DISCONNECTED))
		return;
	if (talknet_reply(&p->pp, line, len, &m, &p->rs, c->idx) == -1) {
		p->server_errors++;
		return;
	}
	if (m.type == MSG_PUBLIC_TEXT_FROM)
		p_copy(p, c, m.text.p, m.text.len, now);
	else if (m.type == MSG_RESPONSE)
		p_response(p, c, &m, now);
}

/* Handles an IRC numeric reply: 001, 366, a taken nick, errors. */
static void
p_irc_numeric(struct presence *p, struct pconn *c, int num,
    const char *line, size_t len, int64_t now)
{
	if (num == 1 && c->st == P_REGISTER) {		/* RPL_WELCOME */
		p_registered(p, c, now);
		return;
	}
	if (num == 366 && c->st == P_JOINING) {	/* RPL_ENDOFNAMES */
		if (c->idx < p->n)
			p_set(p, c, P_READY);
		else
			p_quit(p, c);
		return;
	}
	if (num < 400 || num >= 600 || c->st == P_QUITTING)
		return;
	if ((num == 432 || num == 433) && c->st == P_REGISTER &&
	    c->idx < p->n && c->attempt + 1 < P_NAME_ATTEMPTS) {
		c->attempt++;
		p_name(p, c);
		p_send(p, c, "NICK %s\r\n", c->name);
		return;
	}
	p->server_errors++;
	rs_note(&p->rs, "client %u (%s): %.*s", c->idx, c->name, (int)len,
	    line);
	if (c->st == P_REGISTER || c->st == P_JOINING)
		p_lost(p, c, "refused by the server");
}

/* Handles one IRC line: PING, PRIVMSG, ERROR, numerics. */
static void
p_irc_line(struct presence *p, struct pconn *c, const char *line,
    size_t len, int64_t now)
{
	const char	*s = line, *end = line + len, *cmd;
	size_t		 clen, wlen;

	if (*s == ':')
		(void)irc_word(&s, end, &wlen);	/* the prefix */
	cmd = irc_word(&s, end, &clen);
	if (clen == 7 && memcmp(cmd, "PRIVMSG", 7) == 0) {
		(void)irc_word(&s, end, &wlen);	/* the target */
		while (s < end && *s == ' ')
			s++;
		if (s < end && *s == ':')
			s++;
		p_copy(p, c, s, (size_t)(end - s), now);
	} else if (clen == 4 && memcmp(cmd, "PING", 4) == 0) {
		p_send(p, c, "PONG%.*s\r\n", (int)(end - s), s);
	} else if (clen == 5 && memcmp(cmd, "ERROR", 5) == 0) {
		if (c->st != P_QUITTING) {
			p->server_errors++;
			rs_note(&p->rs, "client %u: %.*s", c->idx, (int)len,
			    line);
		}
	} else if (clen == 3 && isdigit((unsigned char)cmd[0]) &&
	    isdigit((unsigned char)cmd[1]) && isdigit((unsigned char)cmd[2])) {
		p_irc_numeric(p, c, (cmd[0] - '0') * 100 + (cmd[1] - '0') * 10 +
		    (cmd[2] - '0'), line, len, now);
	}
}

/* Handles one line of the server's; -1 once the connection is gone. */
static int
p_line(void *run, void *conn, const char *line, size_t len, int64_t now)
{
	struct presence	*p = run;
	struct pconn	*c = conn;

	if (p->irc)
		p_irc_line(p, c, line, len, now);
	else
		p_talknet_line(p, c, line, len, now);
	return c->fd < 0 ? -1 : 0;
}

/* The server closed a connection: the end of a quit, or a loss. */
static void
p_eof(struct presence *p, struct pconn *c, int64_t now)
{
	if (c->st != P_QUITTING) {
		p_lost(p, c, "closed by the server");
		return;
	}
	c->t_close = now;
	p_close(c);
	p_set(p, c, P_DONE);
}

/* Reads what a connection has; held clients keep no buffer when idle. */
static void
p_read(struct presence *p, struct pconn *c)
{
	const struct reader r = { .fd = c->fd, .in = &c->in,
	    .scratch = p->scratch, .scratch_len = sizeof(p->scratch),
	    .line = p_line, .run = p, .conn = c };
	int		rs;

	rs = rd_read(&r);
	/* A reset after our quit ends it all the same. */
	if (rs == RD_EOF || (rs == RD_ERROR && c->st == P_QUITTING &&
	    errno == ECONNRESET))
		p_eof(p, c, clock_now_ns());
	else if (rs != RD_OPEN && rs != RD_GONE)
		p_lost(p, c, rd_why(rs));
}

/*
 * p_handshake goes on with a client's TLS handshake, then registers it;
 * p_connected, once its TCP connect went through, starts the handshake
 * if --tls, or registers it; p_tls_event takes the events of a client in
 * its handshake.  The events watched are not kept.
 */
TLSIO_START_GENERATE(p, struct presence, struct pconn, &(uint32_t){ 0 },
    p_lost, p_set, P_HANDSHAKE, p_register, p_read)

/* Handles the epoll events of one connection. */
static void
p_event(struct presence *p, struct pconn *c, uint32_t ev)
{
	enum sock_event	se;
	int		e;

	if (c->fd < 0 || p_tls_event(p, c))
		return;
	se = sock_event(p->ep, c->fd, c->idx, c->st == P_CONNECTING, ev, &e);
	if (se == SE_CONNECTED)
		p_connected(p, c);
	else if (se == SE_FAILED)
		p_lost(p, c, strerror(e));
	else if (se == SE_READ)
		p_read(p, c);
}

/* Waits at most ms for events and handles them. */
static void
p_poll(struct presence *p, int ms)
{
	struct epoll_event	ev[P_MAX_EVENTS];
	int			n, i;

	n = epoll_wait(p->ep, ev, P_MAX_EVENTS, ms);
	if (n == -1) {
		if (errno != EINTR)
			err(1, "epoll_wait");
		return;
	}
	for (i = 0; i < n; i++)
		if (ev[i].data.u32 <= p->n)
			p_event(p, &p->c[ev[i].data.u32], ev[i].events);
}

/* Starts held clients while connects may be in flight, retries first. */
static void
p_start_more(struct presence *p, int64_t now)
{
	unsigned int	i;

	for (i = 0; p->nwait > 0 && i < p->n &&
	    p->inflight < p->o->concurrency; i++)
		if (p->c[i].st == P_WAIT && now >= p->c[i].t_retry)
			p_start(p, &p->c[i]);
	while (p->next < p->n && p->inflight < p->o->concurrency)
		p_start(p, &p->c[p->next++]);
}

/* Connects and identifies the held clients, --concurrency at a time. */
static void
p_setup(struct presence *p)
{
	int64_t	t0, now, deadline, t_progress;

	t0 = now = clock_now_ns();
	deadline = t0 + (int64_t)p->o->setup_timeout * NS;
	t_progress = t0 + P_PROGRESS_NS;
	p->setup = 1;
	while (!p->rs.failed && p->nready < p->n) {
		if (bench_interrupted()) {
			rs_fail(&p->rs, "interrupted");
			break;
		}
		if (now >= deadline) {
			rs_fail(&p->rs, "set-up: %u of %u clients ready "
			    "after %u s", p->nready, p->n, p->o->setup_timeout);
			break;
		}
		p_start_more(p, now);
		p_poll(p, p->nwait > 0 ? 10 : 100);
		now = clock_now_ns();
		if (!p->o->quiet && now >= t_progress) {
			fprintf(stderr, "set-up: %u of %u clients ready\n",
			    p->nready, p->n);
			t_progress = now + P_PROGRESS_NS;
		}
	}
	p->setup_s = (double)(now - t0) / NS;
	p->setup = 0;
}

/* Runs the loop until the joiner is done or failed, or the step is late. */
static void
p_wait_joiner(struct presence *p, struct pconn *c, int64_t deadline)
{
	while (!p->rs.failed && c->st != P_DONE && c->st != P_FAILED) {
		if (bench_interrupted()) {
			rs_fail(&p->rs, "interrupted");
			return;
		}
		if (clock_now_ns() >= deadline) {
			rs_fail(&p->rs, "join %u (%s): not done in %u s",
			    p->nsteps, c->name, p->o->step_timeout);
			return;
		}
		p_poll(p, 100);
	}
}

/* Times one newcomer: connect..RESPONSE and connect..close. */
static void
p_join_step(struct presence *p)
{
	struct pconn	*c = &p->c[p->n];
	int64_t		 t0;

	p_close(c);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->idx = p->n;
	buf_init(&c->in);
	t0 = clock_now_ns();
	p_start(p, c);
	p_wait_joiner(p, c, t0 + (int64_t)p->o->step_timeout * NS);
	if (p->rs.failed)
		return;
	p->resp_ns[p->nsteps] = c->t_resp - t0;
	p->whole_ns[p->nsteps] = c->t_close - t0;
	p->nsteps++;
}

/* Waits, reading, for ns: lets the server drain between broadcasts. */
static void
p_pause(struct presence *p, int64_t ns)
{
	int64_t	end = clock_now_ns() + ns, now;

	while ((now = clock_now_ns()) < end && !bench_interrupted())
		p_poll(p, (int)((end - now) / MS) + 1);
}

/* Times one text from client 0 until the last of its copies is in. */
static void
p_broadcast_step(struct presence *p)
{
	struct pconn	*c = &p->c[0];
	int64_t		 t0, deadline;

	p->round = p->nsteps + 1;
	snprintf(p->expect, sizeof(p->expect), "bench-%d-%" PRIu64,
	    (int)getpid(), p->round);
	p->copies = 0;
	t0 = clock_now_ns();
	deadline = t0 + (int64_t)p->o->step_timeout * NS;
	if (p->irc)
		p_send(p, c, "PRIVMSG %s :%s\r\n", P_CHANNEL, p->expect);
	else
		p_send_msg(p, c, MSG_PUBLIC_TEXT, NULL, p->expect);
	while (!p->rs.failed && p->copies < p->n - 1 - p->lost) {
		if (bench_interrupted()) {
			rs_fail(&p->rs, "interrupted");
			return;
		}
		if (clock_now_ns() >= deadline) {
			rs_fail(&p->rs, "broadcast %" PRIu64 ": %" PRIu64
			    " of %u copies in %u s", p->round, p->copies,
			    p->n - 1, p->o->step_timeout);
			return;
		}
		p_poll(p, 100);
	}
	if (p->rs.failed)
		return;
	if (p->lost > 0) {
		rs_fail(&p->rs, "broadcast %" PRIu64 ": %" PRIu64
		    " clients lost", p->round, p->lost);
		return;
	}
	p->whole_ns[p->nsteps++] = p->t_last - t0;
}

/*
 * Runs the timed steps.  The server's CPU is sampled around them all
 * (it idles in the pauses): per step, its 10 ms ticks would round off
 * most of a join.
 */
static void
p_steps(struct presence *p)
{
	struct srvstat	s0, s1;
	unsigned int	k;

	srv_sample(p->o->server_pid, 0, &s0);
	for (k = 0; k < p->o->repeat && !p->rs.failed; k++) {
		if (p->o->wl == WL_BROADCAST && k > 0)
			p_pause(p, P_PAUSE_NS);
		if (p->o->wl == WL_JOIN)
			p_join_step(p);
		else
			p_broadcast_step(p);
	}
	srv_sample(p->o->server_pid, 0, &s1);
	if (s0.ok && s1.ok) {
		p->cpu_fine = s0.fine_ok && s1.fine_ok;
		p->cpu_s = p->cpu_fine ?
		    s1.cpu_fine_s - s0.cpu_fine_s : s1.cpu_s - s0.cpu_s;
		p->nproc = s1.nproc;
	}
	/* Lines that came after the last step are read, not left. */
	if (p->o->wl == WL_BROADCAST)
		p_pause(p, P_PAUSE_NS);
}

/* Orders nanosecond samples. */
static int
p_cmp(const void *a, const void *b)
{
	int64_t	x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Runs join or broadcast and reports it; the exit status. */
int
bench_presence(const struct options *o)
{
	struct presence	*p;
	struct srvstat	 s;
	unsigned int	 i;
	int		 rv;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		err(1, "calloc");
	p->o = o;
	p->n = o->nclients;
	p->irc = o->proto == PK_IRC;
	p->tag = (char)('a' + getpid() % 26);
	targets_resolve(o, &p->tg);
	proto_parser_init(&p->pp, NULL);
	if ((p->c = calloc((size_t)p->n + 1, sizeof(*p->c))) == NULL ||
	    (p->whole_ns = calloc(o->repeat, sizeof(int64_t))) == NULL ||
	    (p->resp_ns = calloc(o->repeat, sizeof(int64_t))) == NULL)
		err(1, "calloc");
	for (i = 0; i <= p->n; i++) {
		p->c[i].fd = -1;
		p->c[i].idx = i;
		buf_init(&p->c[i].in);
	}
	if ((p->ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		err(1, "epoll_create1");
	if (o->server_pid > 0) {
		srv_sample(o->server_pid, 0, &s);
		if (!s.ok)
			errx(1, "--server-pid %d: no such process",
			    (int)o->server_pid);
	}
	p_setup(p);
	if (!p->rs.failed)
		p_steps(p);
	qsort(p->whole_ns, p->nsteps, sizeof(int64_t), p_cmp);
	qsort(p->resp_ns, p->nsteps, sizeof(int64_t), p_cmp);
	if (o->json)
		report_presence_json(p, stdout);
	if (!o->json || !o->quiet)
		report_presence_human(p, o->json ? stderr : stdout);
	/* Said on stderr too, unless the report already went there. */
	if (p->rs.failed && (!o->json || o->quiet))
		warnx("FAILED: %s", p->rs.error);
	if (fflush(stdout) == EOF)
		err(1, "stdout");
	rv = p->rs.failed ? 1 : 0;
	for (i = 0; i <= p->n; i++)
		p_close(&p->c[i]);
	close(p->ep);
	proto_parser_free(&p->pp);
	free(p->c);
	free(p->whole_ns);
	free(p->resp_ns);
	free(p);
	return rv;
}
