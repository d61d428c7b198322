/*
 * floor: the cheapest TalkNet server of each shape, for floor-bench.sh.
 * It answers what talknet-bench sends (IDENTIFY, TEXT, PUBLIC_TEXT,
 * NEW_ROOM, INVITE, JOIN_ROOM, ROOM_TEXT, DISCONNECT), scanning lines as
 * its encoder writes them: no codec, sandbox, shm, limits, or JOINED_ROOM
 * broadcasts.  usage: floor multi|single PORT [presence] (PORT 0 takes a
 * free one, printed as "listening on 127.0.0.1:PORT").  With presence,
 * every other identified user gets NEW_USER and DISCONNECTED, as the
 * protocol says (and talknetd does); without, no one does.
 *
 * multi, talknetd's process shape: a master hands each client to a worker
 * forked ahead (SCM_RIGHTS), which relays between it and a hub over a
 * Unix socket (connected ahead: the cheapest it can be); floor_multi.c.
 * This file routes: the hub of multi, and single, the same routing in
 * one process and one epoll loop (ngircd's).
 */
#define _GNU_SOURCE 1	/* accept4, memmem, close_range */

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <err.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "floor.h"

#define NAME_LEN	64		/* names and room names, bytes */
#define ROOMS_MAX	64		/* one bit each in struct ep */
#define HASH_SIZE	65536		/* name hash heads */
#define EVENTS		256

/* A list of endpoint fds: the identified users, a room's members. */
struct set {
	int	*v;
	size_t	 n, cap;
};

/* One endpoint: a client socket (single) or a worker's channel (hub). */
struct ep {
	struct buf	 in, out;
	char		 name[NAME_LEN];
	size_t		 namelen;
	uint64_t	 rooms, invited;	/* bit i: rooms[i] */
	int		 open, ident, dirty, outwait, hnext;
};

struct room {
	char		name[NAME_LEN];
	size_t		len;
	struct set	mem;
};

static struct ep	*eps;			/* by fd, neps of them */
static int		 neps, nrooms, efd = -1;
static int		 heads[HASH_SIZE];
static struct set	 everyone, dirty;	/* identified; to flush */
static struct room	 rooms[ROOMS_MAX];
static struct buf	 scratch;		/* the line being built */
volatile sig_atomic_t	 stopping;
static int		 presence;		/* NEW_USER, DISCONNECTED */

/* Appends n bytes to b; out of memory is fatal. */
void
buf_add(struct buf *b, const void *p, size_t n)
{
	size_t	cap;
	char	*q;

	if (b->len + n > b->cap) {
		cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		if ((q = realloc(b->p, cap)) == NULL)
			err(1, "realloc");
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* Drops the first n bytes of b (n <= b->len). */
void
buf_drop(struct buf *b, size_t n)
{
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

/* Adds fd to a set. */
static void
set_add(struct set *s, int fd)
{
	int	*v;

	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		if ((v = realloc(s->v, s->cap * sizeof(*v))) == NULL)
			err(1, "realloc");
		s->v = v;
	}
	s->v[s->n++] = fd;
}

/* Removes fd from a set (order is not kept). */
static void
set_del(struct set *s, int fd)
{
	size_t	i;

	for (i = 0; i < s->n; i++)
		if (s->v[i] == fd) {
			s->v[i] = s->v[--s->n];
			return;
		}
}

/* FNV-1a of a name, into the hash heads. */
static unsigned int
name_hash(const char *p, size_t n)
{
	uint32_t	h = 2166136261u;

	while (n-- > 0)
		h = (h ^ (unsigned char)*p++) * 16777619u;
	return h % HASH_SIZE;
}

/* The fd of the identified user of that name, or -1. */
static int
name_find(const char *p, size_t n)
{
	int	fd;

	for (fd = heads[name_hash(p, n)]; fd != -1; fd = eps[fd].hnext)
		if (eps[fd].namelen == n && memcmp(eps[fd].name, p, n) == 0)
			return fd;
	return -1;
}

/* Forgets fd's name. */
static void
name_del(int fd)
{
	int	*pp = &heads[name_hash(eps[fd].name, eps[fd].namelen)];

	while (*pp != -1 && *pp != fd)
		pp = &eps[*pp].hnext;
	if (*pp == fd)
		*pp = eps[fd].hnext;
}

/*
 * Finds the string value of "key" in a line as talknet-bench writes it
 * (no spaces, key then value): 0 with its still-escaped bytes, or -1.
 */
int
json_str(const char *l, size_t len, const char *key, const char **v,
    size_t *vlen)
{
	char		 pat[32];
	size_t		 kl = strlen(key);
	const char	*p, *q, *e = l + len;

	if (kl + 4 > sizeof(pat))
		return -1;
	pat[0] = '"';
	memcpy(pat + 1, key, kl);
	memcpy(pat + 1 + kl, "\":\"", 3);
	if ((p = memmem(l, len, pat, kl + 4)) == NULL)
		return -1;
	for (q = p += kl + 4; q < e && *q != '"'; q += *q == '\\' ? 2 : 1)
		;
	if (q >= e)
		return -1;
	*v = p;
	*vlen = (size_t)(q - p);
	return 0;
}

/* Whether a scanned value is the string s. */
int
is(const char *v, size_t n, const char *s)
{
	return strlen(s) == n && memcmp(v, s, n) == 0;
}

/*
 * Builds a line from (string, length) pairs, a NULL string ending
 * them (length -1: strlen), into scratch.
 */
static void
line_build(const char *s, ...)
{
	va_list	ap;
	size_t	n;

	scratch.len = 0;
	va_start(ap, s);
	while (s != NULL) {
		n = va_arg(ap, size_t);
		buf_add(&scratch, s, n == (size_t)-1 ? strlen(s) : n);
		s = va_arg(ap, const char *);
	}
	va_end(ap);
}

/* Queues the line in scratch for fd. */
static void
line_to(int fd)
{
	buf_add(&eps[fd].out, scratch.p, scratch.len);
	if (!eps[fd].dirty) {	/* written at the end of the loop turn */
		eps[fd].dirty = 1;
		set_add(&dirty, fd);
	}
}

#define Z	((size_t)-1)

/* A RESPONSE: operation, result, extra. */
static void
respond(int fd, const char *op, const char *res, const char *x, size_t xl)
{
	line_build("{\"type\":\"RESPONSE\",\"operation\":\"", Z, op, Z,
	    "\",\"result\":\"", Z, res, Z, "\",\"extra\":\"", Z, x, xl,
	    "\"}\n", Z, (const char *)NULL);
	line_to(fd);
}

/* The room a request names, its name in *r, *rn (NULL if none); or -1. */
static int
room_arg(const char *l, size_t len, const char **r, size_t *rn)
{
	int	i;

	*r = NULL;
	if (json_str(l, len, "roomname", r, rn) == -1)
		return -1;
	for (i = 0; i < nrooms; i++)
		if (rooms[i].len == *rn && memcmp(rooms[i].name, *r, *rn) == 0)
			return i;
	return -1;
}

/* The line in scratch to every fd of s but the sender. */
static void
fan_out(const struct set *s, int from)
{
	size_t	i;

	for (i = 0; i < s->n; i++)
		if (s->v[i] != from)
			line_to(s->v[i]);
}

/* NEW_USER or DISCONNECTED to every identified user but from. */
static void
announce(const char *type, const char *name, size_t n, int from)
{
	if (!presence)
		return;
	line_build("{\"type\":\"", Z, type, Z, "\",\"username\":\"", Z,
	    name, n, "\"}\n", Z, (const char *)NULL);
	fan_out(&everyone, from);
}

/* IDENTIFY: the name, or USER_ALREADY_EXISTS. */
static void
do_identify(int fd, const char *l, size_t len)
{
	struct ep	*e = &eps[fd];
	const char	*v;
	size_t		 n;
	unsigned int	 h;

	if (e->ident || json_str(l, len, "username", &v, &n) == -1 ||
	    n == 0 || n >= NAME_LEN)
		return;
	if (name_find(v, n) != -1) {
		respond(fd, "IDENTIFY", "USER_ALREADY_EXISTS", v, n);
		return;
	}
	memcpy(e->name, v, n);
	e->namelen = n;
	e->ident = 1;
	h = name_hash(v, n);
	e->hnext = heads[h];
	heads[h] = fd;
	respond(fd, "IDENTIFY", "SUCCESS", v, n);
	announce("NEW_USER", v, n, fd);
	set_add(&everyone, fd);
}

/* TEXT: TEXT_FROM to the one user named. */
static void
do_text(int fd, const char *l, size_t len)
{
	const char	*u, *t;
	size_t		 un, tn;
	int		 to;

	if (json_str(l, len, "username", &u, &un) == -1 ||
	    json_str(l, len, "text", &t, &tn) == -1)
		return;
	if ((to = name_find(u, un)) == -1) {
		respond(fd, "TEXT", "NO_SUCH_USER", u, un);
		return;
	}
	line_build("{\"type\":\"TEXT_FROM\",\"username\":\"", Z, eps[fd].name,
	    eps[fd].namelen, "\",\"text\":\"", Z, t, tn, "\"}\n", Z,
	    (const char *)NULL);
	line_to(to);
}

/* PUBLIC_TEXT: PUBLIC_TEXT_FROM to every other identified user. */
static void
do_public(int fd, const char *l, size_t len)
{
	const char	*t;
	size_t		 tn;

	if (json_str(l, len, "text", &t, &tn) == -1)
		return;
	line_build("{\"type\":\"PUBLIC_TEXT_FROM\",\"username\":\"", Z,
	    eps[fd].name, eps[fd].namelen, "\",\"text\":\"", Z, t, tn,
	    "\"}\n", Z, (const char *)NULL);
	fan_out(&everyone, fd);
}

/* NEW_ROOM: the sender is its only member. */
static void
do_new_room(int fd, const char *l, size_t len)
{
	const char	*r;
	size_t		 rn;

	/* Its errors are not answered: a bench run makes none. */
	if (room_arg(l, len, &r, &rn) != -1 || r == NULL || rn == 0 ||
	    rn >= NAME_LEN || nrooms == ROOMS_MAX)
		return;
	memcpy(rooms[nrooms].name, r, rn);
	rooms[nrooms].len = rn;
	set_add(&rooms[nrooms].mem, fd);
	eps[fd].rooms |= 1ULL << nrooms;
	nrooms++;
	respond(fd, "NEW_ROOM", "SUCCESS", r, rn);
}

/* INVITE: INVITATION to each user named who is there (no errors). */
static void
do_invite(int fd, const char *l, size_t len)
{
	const char	*r, *p, *q, *e = l + len;
	size_t		 rn;
	uint64_t	 bit;
	int		 i, to;

	if ((i = room_arg(l, len, &r, &rn)) == -1 ||
	    !(eps[fd].rooms & (1ULL << i)) ||
	    (p = memmem(l, len, "\"usernames\":[", 13)) == NULL)
		return;
	bit = 1ULL << i;
	line_build("{\"type\":\"INVITATION\",\"username\":\"", Z,
	    eps[fd].name, eps[fd].namelen, "\",\"roomname\":\"", Z, r, rn,
	    "\"}\n", Z, (const char *)NULL);
	for (p += 13; p < e && *p == '"';
	    p = q + 1 + (q + 1 < e && q[1] == ',')) {
		for (q = ++p; q < e && *q != '"'; q += *q == '\\' ? 2 : 1)
			;
		if (q >= e)
			return;
		to = name_find(p, (size_t)(q - p));
		/* Members and the invited already are skipped. */
		if (to != -1 && !((eps[to].rooms | eps[to].invited) & bit)) {
			eps[to].invited |= bit;
			line_to(to);
		}
	}
}

/* JOIN_ROOM: an invited user becomes a member. */
static void
do_join(int fd, const char *l, size_t len)
{
	const char	*r;
	size_t		 rn;
	int		 i;

	if ((i = room_arg(l, len, &r, &rn)) == -1 ||
	    !(eps[fd].invited & (1ULL << i)))
		return;
	eps[fd].invited &= ~(1ULL << i);
	eps[fd].rooms |= 1ULL << i;
	set_add(&rooms[i].mem, fd);
	respond(fd, "JOIN_ROOM", "SUCCESS", r, rn);
}

/* ROOM_TEXT: ROOM_TEXT_FROM to every other member. */
static void
do_room_text(int fd, const char *l, size_t len)
{
	const char	*r, *t;
	size_t		 rn, tn;
	int		 i;

	if ((i = room_arg(l, len, &r, &rn)) == -1 ||
	    json_str(l, len, "text", &t, &tn) == -1 ||
	    !(eps[fd].rooms & (1ULL << i)))
		return;
	line_build("{\"type\":\"ROOM_TEXT_FROM\",\"roomname\":\"", Z, r, rn,
	    "\",\"username\":\"", Z, eps[fd].name, eps[fd].namelen,
	    "\",\"text\":\"", Z, t, tn, "\"}\n", Z, (const char *)NULL);
	fan_out(&rooms[i].mem, fd);
}

/* Closes an endpoint and forgets its user. */
static void
ep_close(int fd)
{
	struct ep	*e = &eps[fd];
	int		 i;

	if (e->ident) {
		name_del(fd);
		set_del(&everyone, fd);
		announce("DISCONNECTED", e->name, e->namelen, -1);
		for (i = 0; i < nrooms; i++)
			if (e->rooms & (1ULL << i))
				set_del(&rooms[i].mem, fd);
	}
	free(e->in.p);
	free(e->out.p);
	memset(e, 0, sizeof(*e));
	(void)close(fd);
}

/* The requests of an identified user, and their handlers. */
static const struct {
	const char	*type;
	void		(*fn)(int, const char *, size_t);
} reqs[] = {
	{ "TEXT", do_text }, { "ROOM_TEXT", do_room_text },
	{ "PUBLIC_TEXT", do_public }, { "NEW_ROOM", do_new_room },
	{ "INVITE", do_invite }, { "JOIN_ROOM", do_join },
};

/* Routes one line of fd's; DISCONNECT closes fd. */
static void
route(int fd, const char *l, size_t len)
{
	const char	*t;
	size_t		 n, i;

	if (json_str(l, len, "type", &t, &n) == -1)
		return;
	if (is(t, n, "DISCONNECT")) {
		ep_close(fd);
		return;
	}
	if (is(t, n, "IDENTIFY")) {
		do_identify(fd, l, len);
		return;
	}
	for (i = 0; eps[fd].ident && i < sizeof(reqs) / sizeof(reqs[0]); i++)
		if (is(t, n, reqs[i].type)) {
			reqs[i].fn(fd, l, len);
			return;
		}
}

/* Adds fd to the epoll set ep (or changes it: op), for events. */
void
watch(int ep, int op, int fd, uint32_t events)
{
	struct epoll_event	ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.fd = fd;
	if (epoll_ctl(ep, op, fd, &ev) == -1)
		err(1, "epoll_ctl");
}

/* Writes what fd has queued; waits for EPOLLOUT if the socket is full. */
static void
ep_flush(int fd)
{
	struct ep	*e = &eps[fd];
	ssize_t		 n = 0;

	e->dirty = 0;
	if (!e->open)
		return;
	while (e->out.len > 0 &&
	    (n = write(fd, e->out.p, e->out.len)) > 0)
		buf_drop(&e->out, (size_t)n);
	if (n == -1 && errno != EAGAIN && errno != EINTR) {
		ep_close(fd);
		return;
	}
	if ((e->out.len > 0) == e->outwait)
		return;
	e->outwait = e->out.len > 0;
	watch(efd, EPOLL_CTL_MOD, fd, EPOLLIN | (e->outwait ? EPOLLOUT : 0));
}

/* Reads what fd has and routes each whole line; EOF closes fd. */
static void
ep_read(int fd)
{
	struct ep	*e = &eps[fd];
	char		 tmp[READ_CHUNK], *nl;
	ssize_t		 n;
	size_t		 off = 0;

	if ((n = read(fd, tmp, sizeof(tmp))) == -1 &&
	    (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		ep_close(fd);
		return;
	}
	buf_add(&e->in, tmp, (size_t)n);
	while ((nl = memchr(e->in.p + off, '\n', e->in.len - off)) != NULL) {
		route(fd, e->in.p + off, (size_t)(nl - (e->in.p + off)));
		if (!e->open)
			return;		/* closed: its buffer is gone */
		off = (size_t)(nl - e->in.p) + 1;
	}
	buf_drop(&e->in, off);
	if (e->in.len > LINE_CAP)
		ep_close(fd);
}

/* Accepts what the listener has; tcp: a client, else a worker channel. */
static void
ep_accept(int lfd, int tcp)
{
	int	fd, one = 1;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC))
	    != -1) {
		if (fd >= neps) {
			(void)close(fd);
			continue;
		}
		if (tcp && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one)) == -1)
			err(1, "setsockopt");
		memset(&eps[fd], 0, sizeof(eps[fd]));
		eps[fd].open = 1;
		watch(efd, EPOLL_CTL_ADD, fd, EPOLLIN);
	}
	if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
		warn("accept4");
}

/* The monotonic clock in microseconds. */
static int64_t
now_us(void)
{
	struct timespec	ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		err(1, "clock_gettime");
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * The routing loop, over the listener lfd: single's whole server, or
 * multi's hub.  Queued lines are written once a turn, so a turn that
 * routes many lines to one endpoint writes them in one call.  The hub
 * also gathers, as talknetd's does (hub_round.c, max-gather 5 ms), but
 * only after a broadcast: a write pass to 100 workers or more that took
 * 500 us or more makes the next wait as long (at most 5 ms), so under
 * load each worker wakes for more lines at a time.
 */
void __attribute__((noreturn))
serve(int lfd, int tcp)
{
	struct epoll_event	ev[EVENTS];
	int64_t			t, until = 0;
	size_t			i;
	int			n, k, fd;

	if ((efd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		err(1, "epoll_create1");
	watch(efd, EPOLL_CTL_ADD, lfd, EPOLLIN);
	for (;;) {
		t = dirty.n == 0 ? -1 : (until - now_us() + 999) / 1000;
		if ((n = epoll_wait(efd, ev, EVENTS, t < 0 && dirty.n ? 0 :
		    (int)t)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "epoll_wait");
		}
		for (k = 0; k < n; k++) {
			fd = ev[k].data.fd;
			if (fd == lfd)
				ep_accept(lfd, tcp);
			else if (eps[fd].open && (ev[k].events & EPOLLOUT))
				ep_flush(fd);
			if (fd != lfd && eps[fd].open &&
			    (ev[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				ep_read(fd);
		}
		if (dirty.n == 0 || (t = now_us()) < until)
			continue;
		for (i = 0; i < dirty.n; i++)
			ep_flush(dirty.v[i]);
		if (!tcp && dirty.n >= 100 && (t = now_us() - t) >= 500)
			until = now_us() + (t < 5000 ? t : 5000);
		dirty.n = 0;
	}
}

/* Sizes the endpoint table to the open-file limit, raised to its max. */
static void
eps_init(void)
{
	struct rlimit	rl;
	int		i;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		err(1, "getrlimit");
	rl.rlim_cur = rl.rlim_max;
	(void)setrlimit(RLIMIT_NOFILE, &rl);
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		err(1, "getrlimit");
	neps = rl.rlim_cur > 1048576 ? 1048576 : (int)rl.rlim_cur;
	if ((eps = calloc((size_t)neps, sizeof(*eps))) == NULL)
		err(1, "calloc");
	for (i = 0; i < HASH_SIZE; i++)
		heads[i] = -1;
}

/* The TCP listener on 127.0.0.1:port (0: any free one). */
static int
listen_tcp(int port)
{
	struct sockaddr_in	sin;
	socklen_t		sl = sizeof(sin);
	int			fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		err(1, "socket");
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
		err(1, "setsockopt");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(fd, 1024) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &sl) == -1)
		err(1, "127.0.0.1:%d", port);
	fprintf(stderr, "floor: listening on 127.0.0.1:%d\n",
	    ntohs(sin.sin_port));
	return fd;
}

int
main(int argc, char **argv)
{
	struct sockaddr_un	 sun;
	socklen_t		 sl;
	char			*end;
	long			 port;
	int			 lfd, ulfd;

	if (argc < 3 || argc > 4 || (strcmp(argv[1], "multi") != 0 &&
	    strcmp(argv[1], "single") != 0) || (argc == 4 &&
	    strcmp(argv[3], "presence") != 0))
		errx(2, "usage: floor multi|single PORT [presence]");
	presence = argc == 4;
	port = strtol(argv[2], &end, 10);
	if (*end != '\0' || port < 0 || port > 65535)
		errx(2, "bad port %s", argv[2]);
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		err(1, "signal");
	eps_init();
	if (strcmp(argv[1], "single") == 0)
		serve(listen_tcp((int)port), 1);
	ulfd = listen_hub(&sun, &sl);
	lfd = listen_tcp((int)port);
	master(lfd, ulfd, &sun, sl);
	return 0;
}
