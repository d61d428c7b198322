/*
 * worker.c: one process per client connection.  It frames and validates
 * what the client sends, answers INVALID and NOT_IDENTIFIED itself,
 * forwards valid requests to the hub as binary frames, and queues what
 * the hub routes back, up to --max-queue bytes, for the client.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "frame.h"
#include "ipc.h"
#include "log.h"
#include "proto.h"
#include "shm.h"
#include "talknetd.h"
#include "title.h"
#include "xmalloc.h"

#define WORKER_READ_SIZE	(16 * 1024)
#define WORKER_HUB_READ_SIZE	(64 * 1024)
#define WORKER_HUB_HIGH		(256 * 1024)	/* stop reading the client */
#define WORKER_LINGER_MS	2000		/* flush time after CLOSE */
#define WORKER_STOP_MS		1000		/* flush time on SIGTERM */
#define WORKER_CLIENT_FD	3

enum ident_state {
	IDENT_NONE,		/* not identified */
	IDENT_PENDING,		/* IDENTIFY sent, the hub has not answered */
	IDENT_DONE
};

static struct {
	const struct config	*cfg;
	int			 cfd;		/* the client's TCP socket */
	int			 hfd;		/* the channel to the hub */
	char			 addr[64];
	struct framer		 in;		/* client input */
	struct buf		 out;		/* client output queue */
	struct buf		 hin;		/* frames from the hub */
	struct buf		 hout;		/* frames to the hub */
	struct proto_parser	 parser;
	struct shm_table	 tab;		/* read-only */
	enum ident_state	 ident;
	int			 closing;	/* DISCONNECT sent to the hub */
	int			 closed;	/* the hub answered CLOSE */
	int			 rd_done;	/* no more client input */
	int			 wr_dead;	/* the client cannot be written */
	enum result		 final;		/* reply after CLOSE, if any */
	int			 linger_ms;	/* flush time once closed */
} w;

static volatile sig_atomic_t	worker_stop;	/* SIGTERM came */

/* Records SIGTERM; the loop flushes the queue, then exits. */
static void
worker_sigterm(int sig)
{
	(void)sig;
	worker_stop = 1;
}

/*
 * Stops serving without the hub: no more input, and the queue gets a
 * short while to reach the client before the worker exits.
 */
static void
worker_wind_down(const char *why)
{
	log_debug("worker %s: %s", w.addr, why);
	w.rd_done = 1;
	w.closing = 1;
	w.closed = 1;
	w.final = RES_NONE;
	w.linger_ms = WORKER_STOP_MS;
}

/* Milliseconds on the monotonic clock. */
static int64_t
worker_now_ms(void)
{
	struct timespec	ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		fatal("clock_gettime");
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Asks the hub for the DISCONNECT semantics; the answer is CLOSE. */
static void
worker_leave(enum result final)
{
	if (w.closing)
		return;
	w.closing = 1;
	w.final = final;
	w.rd_done = 1;
	ipc_put(&w.hout, IPC_REQ_DISCONNECT, 0, NULL, 0);
}

/* Forwards one valid request to the hub as a frame of strings. */
static void
worker_forward(const struct msg *m)
{
	size_t	hdr, i;

	hdr = ipc_begin(&w.hout, (uint16_t)(IPC_REQ_BASE + m->type), 0);
	switch (m->type) {
	case MSG_IDENTIFY:
		ipc_put_str(&w.hout, m->username.p, m->username.len);
		break;
	case MSG_STATUS:
		ipc_put_str(&w.hout, m->status.p, m->status.len);
		break;
	case MSG_TEXT:
		ipc_put_str(&w.hout, m->username.p, m->username.len);
		ipc_put_str(&w.hout, m->text.p, m->text.len);
		break;
	case MSG_PUBLIC_TEXT:
		ipc_put_str(&w.hout, m->text.p, m->text.len);
		break;
	case MSG_INVITE:
		ipc_put_str(&w.hout, m->roomname.p, m->roomname.len);
		for (i = 0; i < m->nlist; i++)
			ipc_put_str(&w.hout, m->list[i].p, m->list[i].len);
		break;
	case MSG_NEW_ROOM:
	case MSG_JOIN_ROOM:
	case MSG_ROOM_USERS:
	case MSG_LEAVE_ROOM:
		ipc_put_str(&w.hout, m->roomname.p, m->roomname.len);
		break;
	case MSG_ROOM_TEXT:
		ipc_put_str(&w.hout, m->roomname.p, m->roomname.len);
		ipc_put_str(&w.hout, m->text.p, m->text.len);
		break;
	default:
		break;
	}
	ipc_end(&w.hout, hdr);
}

/* Checks one line from the client and forwards it, or fails the client. */
static void
worker_line(const char *line, size_t len)
{
	struct msg	m;

	if (proto_parse_request(&w.parser, line, len, &m) == -1) {
		log_debug("worker %s: invalid message", w.addr);
		worker_leave(RES_INVALID);
		return;
	}
	if (w.ident == IDENT_NONE && m.type != MSG_IDENTIFY) {
		worker_leave(RES_NOT_IDENTIFIED);
		return;
	}
	if (w.ident == IDENT_DONE && m.type == MSG_IDENTIFY) {
		worker_leave(RES_INVALID);
		return;
	}
	if (m.type == MSG_DISCONNECT) {
		worker_leave(RES_NONE);
		return;
	}
	worker_forward(&m);
	if (m.type == MSG_IDENTIFY)
		w.ident = IDENT_PENDING;
}

/*
 * Runs the complete lines buffered from the client.  While an IDENTIFY
 * is pending the rest waits: whether they are allowed depends on it.
 */
static void
worker_input(void)
{
	const char		*line;
	size_t			 len;
	enum frame_result	 r;

	while (!w.closing && w.ident != IDENT_PENDING) {
		r = framer_next(&w.in, &line, &len);
		if (r == FRAME_NONE)
			break;
		if (r == FRAME_TOOLONG) {
			log_debug("worker %s: line over %zu bytes", w.addr,
			    w.cfg->max_line);
			worker_leave(RES_INVALID);
			break;
		}
		worker_line(line, len);
	}
	if (w.rd_done && !w.closing && w.ident != IDENT_PENDING)
		worker_leave(RES_NONE);
}

/* Reads from the client into the framer. */
static void
worker_client_read(void)
{
	char	*p;
	size_t	 avail;
	ssize_t	 n;

	if ((p = framer_space(&w.in, WORKER_READ_SIZE, &avail)) == NULL)
		fatal("framer_space");
	n = read(w.cfd, p, avail);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		log_debug("worker %s: read: %s", w.addr, strerror(errno));
		w.rd_done = 1;
		w.wr_dead = 1;
	} else if (n == 0)
		w.rd_done = 1;
	else
		framer_commit(&w.in, (size_t)n);
	worker_input();
}

/* Queues a line for the client; a full queue disconnects the client. */
static void
worker_queue(const char *p, size_t len)
{
	if (w.wr_dead)
		return;
	if (buf_pending(&w.out) + len > w.cfg->max_queue) {
		log_info("worker %s: output queue over %zu bytes, "
		    "disconnecting", w.addr, w.cfg->max_queue);
		w.wr_dead = 1;
		buf_reset(&w.out);
		worker_leave(RES_NONE);
		return;
	}
	xbuf_append(&w.out, p, len);
}

/* Takes the answer to IDENTIFY: on success, the process title changes. */
static int
worker_identified(const char *p, size_t len)
{
	struct ipc_identified	 id;
	struct shm_user		*u;
	char			 name[4 * LIMIT_MAX_NAME + 1];

	if (len != sizeof(id) || w.ident != IDENT_PENDING)
		return -1;
	memcpy(&id, p, sizeof(id));
	if (!id.ok) {
		w.ident = IDENT_NONE;
		return 0;
	}
	if (id.slot >= w.tab.hdr->max_users)
		return -1;
	/* The row is read from the shared table, mapped read-only here. */
	u = shm_user(&w.tab, id.slot);
	if (u->name_len >= sizeof(name) || u->name_len > w.tab.hdr->name_bytes)
		return -1;
	memcpy(name, shm_user_name(&w.tab, u), u->name_len);
	name[u->name_len] = '\0';
	title_set("worker %s %s", name, w.addr);
	w.ident = IDENT_DONE;
	return 0;
}

/* The dispatcher: one frame from the hub; returns -1 on a bad frame. */
static int
worker_dispatch(const struct ipc_hdr *h, const char *p)
{
	switch (h->type) {
	case IPC_LINE:
		if (h->len == 0 || p[h->len - 1] != '\n')
			return -1;
		worker_queue(p, h->len);
		return 0;
	case IPC_IDENTIFIED:
		return worker_identified(p, h->len);
	case IPC_CLOSE:
		if (h->len != 0 || !w.closing)
			return -1;
		w.closed = 1;
		return 0;
	default:
		return -1;
	}
}

/* Reads frames from the hub and runs them. */
static void
worker_hub_read(void)
{
	struct ipc_hdr	 h;
	const char	*p;
	ssize_t		 n;
	int		 r;

	xbuf_reserve(&w.hin, WORKER_HUB_READ_SIZE);
	n = read(w.hfd, w.hin.data + w.hin.len, w.hin.cap - w.hin.len);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		if (!worker_stop)
			log_warnx("worker %s: hub channel closed", w.addr);
		worker_wind_down("hub channel closed");
		return;
	}
	buf_commit(&w.hin, (size_t)n);
	while ((r = ipc_get(&w.hin, &h, &p)) == 1) {
		if (worker_dispatch(&h, p) == -1)
			fatalx("worker %s: bad frame 0x%04x from the hub",
			    w.addr, h.type);
	}
	if (r == -1)
		fatalx("worker %s: bad frame header from the hub", w.addr);
	/* An IDENTIFY answer may let buffered lines run. */
	worker_input();
}

/* Writes as much of a buffer as the socket takes; -1 on a dead socket. */
static int
worker_write(int fd, struct buf *b)
{
	ssize_t	n;

	if (buf_pending(b) == 0)
		return 0;
	n = write(fd, buf_head(b), buf_pending(b));
	if (n == -1)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
	buf_drain(b, (size_t)n);
	return 0;
}

/*
 * Ends the connection once the hub said CLOSE and the queue is flushed:
 * half-close, then read what the client still sends for a moment, so the
 * kernel does not answer the last lines with a reset.
 */
static void
worker_finish(void)
{
	struct pollfd	pfd;
	char		junk[4096];
	int64_t		end = worker_now_ms() + 500;
	int		i;

	if (!w.wr_dead && shutdown(w.cfd, SHUT_WR) == 0) {
		for (i = 0; i < 64 && worker_now_ms() < end; i++) {
			pfd.fd = w.cfd;
			pfd.events = POLLIN;
			if (poll(&pfd, 1, (int)(end - worker_now_ms())) <= 0)
				break;
			if (read(w.cfd, junk, sizeof(junk)) <= 0)
				break;
		}
	}
	close(w.cfd);
	exit(0);
}

/* Appends the final INVALID or NOT_IDENTIFIED reply after CLOSE. */
static void
worker_final_reply(void)
{
	struct msg	m;

	if (w.final == RES_NONE)
		return;
	memset(&m, 0, sizeof(m));
	m.type = MSG_RESPONSE;
	m.operation = str_c("INVALID");
	m.res = w.final;
	w.final = RES_NONE;
	buf_reset(&w.out);	/* never mind the limit for the last line */
	if (proto_encode(&w.out, &m) == -1)
		fatal("proto_encode");
}

/* Connects to the hub's socket and says hello. */
static void
worker_connect_hub(const struct runtime *rt)
{
	struct sockaddr_un	sun;
	size_t			hdr;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, rt->hubpath, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path))
		fatalx("worker: hub path too long");
	if ((w.hfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		fatal("worker: socket");
	if (connect(w.hfd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		fatal("worker: connect %s", rt->hubpath);
	if (fcntl(w.hfd, F_SETFL, O_NONBLOCK) == -1)
		fatal("worker: fcntl");
	hdr = ipc_begin(&w.hout, IPC_HELLO, 0);
	ipc_put_str(&w.hout, w.addr, strlen(w.addr));
	ipc_end(&w.hout, hdr);
}

/* Keeps only the client socket and stdio: a worker needs nothing else. */
static void
worker_close_fds(int fd)
{
	if (fd != WORKER_CLIENT_FD) {
		if (dup2(fd, WORKER_CLIENT_FD) == -1)
			fatal("worker: dup2");
		close(fd);
	}
	/* Listeners, the hub's socket and the writable shm fd all go. */
	closefrom(WORKER_CLIENT_FD + 1);
	w.cfd = WORKER_CLIENT_FD;
}

/* The worker process: serve one client until it leaves. */
void
worker_main(const struct config *cfg, const struct runtime *rt, int fd,
    const struct sockaddr *sa, socklen_t salen)
{
	struct pollfd	 pfd[2];
	struct proto_limits lim;
	struct sigaction act;
	int		 one = 1, timeout;
	int64_t		 deadline = 0;

	w.cfg = cfg;
	w.linger_ms = WORKER_LINGER_MS;
	memset(&act, 0, sizeof(act));
	sigemptyset(&act.sa_mask);
	act.sa_handler = worker_sigterm;
	if (sigaction(SIGTERM, &act, NULL) == -1)
		fatal("worker: sigaction");
	sockaddr_fmt(sa, salen, w.addr, sizeof(w.addr));
	title_set("worker (unidentified) %s", w.addr);
	worker_close_fds(fd);
	/* Die with the master, so no worker outlives the service. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
		fatal("worker: prctl");

	/* Inherited PROT_READ mapping of an O_RDONLY fd: cannot be made
	 * writable here, so a worker cannot corrupt the table. */
	w.tab.hdr = (struct shm_hdr *)(uintptr_t)rt->shm_ro;
	w.tab.size = rt->shm_size;

	if (fcntl(w.cfd, F_SETFL, O_NONBLOCK) == -1)
		fatal("worker: fcntl");
	(void)setsockopt(w.cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	framer_init(&w.in, cfg->max_line);
	buf_init(&w.out);
	buf_init(&w.hin);
	buf_init(&w.hout);
	lim.max_name = cfg->max_name;
	lim.max_room = cfg->max_room;
	proto_parser_init(&w.parser, &lim);
	worker_connect_hub(rt);

	for (;;) {
		if (worker_stop && !w.closed)
			worker_wind_down("SIGTERM");
		if (w.closed) {
			worker_final_reply();
			if (w.wr_dead || buf_pending(&w.out) == 0)
				worker_finish();
			if (deadline == 0)
				deadline = worker_now_ms() + w.linger_ms;
			else if (worker_now_ms() >= deadline)
				worker_finish();
		}
		pfd[0].fd = w.cfd;
		pfd[0].events = 0;
		if (!w.rd_done && w.ident != IDENT_PENDING &&
		    buf_pending(&w.hout) < WORKER_HUB_HIGH)
			pfd[0].events |= POLLIN;
		if (!w.wr_dead && buf_pending(&w.out) > 0)
			pfd[0].events |= POLLOUT;
		/* Not watched at all, so a hung-up socket cannot spin us. */
		if (pfd[0].events == 0)
			pfd[0].fd = -1;
		pfd[1].fd = w.hfd;
		pfd[1].events = w.closed ? 0 : POLLIN;
		if (buf_pending(&w.hout) > 0 && !w.closed)
			pfd[1].events |= POLLOUT;
		if (pfd[1].events == 0)
			pfd[1].fd = -1;
		timeout = -1;
		if (deadline != 0)
			timeout = (int)(deadline - worker_now_ms()) + 1;
		if (poll(pfd, 2, timeout) == -1) {
			if (errno == EINTR)
				continue;
			fatal("worker: poll");
		}
		if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))
			worker_hub_read();
		if (pfd[0].revents & POLLIN)
			worker_client_read();
		else if (pfd[0].revents & (POLLHUP | POLLERR)) {
			w.rd_done = 1;
			if (pfd[0].revents & POLLERR)
				w.wr_dead = 1;
			worker_input();
		}
		if (!w.closed && worker_write(w.hfd, &w.hout) == -1)
			worker_wind_down("hub channel broken");
		if (!w.wr_dead && worker_write(w.cfd, &w.out) == -1) {
			log_debug("worker %s: write: %s", w.addr,
			    strerror(errno));
			w.wr_dead = 1;
			buf_reset(&w.out);
			worker_leave(RES_NONE);
		}
	}
}
