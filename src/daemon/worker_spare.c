/*
 * worker_spare.c: a spare worker, forked by the master ahead of any
 * client (master_spare.c).  It sets up all that needs no client, then
 * blocks until the master sends it one connection's socket, and from
 * there on is a worker like any other: one client, then exit.
 *
 * The hand-off socket is the spare's only link to the master until
 * then.  The master closing it (a reload, fewer spares wanted) is the
 * spare's cue to exit; so is anything but one well-formed message
 * carrying exactly one socket, and so is SIGTERM.
 *
 * The spare waits inside its sandbox (worker_prepare loads it), so
 * what it does with the hand-off is what the filter allows a worker:
 * recvmsg, getsockopt(SO_TYPE), dup2 and close.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "talknetd.h"
#include "title.h"
#include "worker.h"

/*
 * Checks a hand-off: the whole message, this version, the kind of
 * client this spare was forked for, a terminated address, and one fd
 * that is a stream socket (SO_TYPE fails on anything not a socket).
 * Returns the fd, or -1 (any fd passed is closed).
 */
static int
worker_spare_check(struct msghdr *msg, ssize_t n,
    const struct spare_handoff *h, int tls)
{
	struct cmsghdr	*cm;
	int		 fd = -1, type;
	socklen_t	 len = sizeof(type);

	cm = CMSG_FIRSTHDR(msg);
	if (cm != NULL && cm->cmsg_level == SOL_SOCKET &&
	    cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(sizeof(fd)))
		memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
	if (fd == -1) {
		log_warnx("worker (spare): hand-off without a socket");
		return -1;
	}
	if ((size_t)n != sizeof(*h) || (msg->msg_flags & (MSG_TRUNC |
	    MSG_CTRUNC)) || h->version != SPARE_HANDOFF_VERSION ||
	    h->tls != (uint32_t)tls ||
	    memchr(h->addr, '\0', sizeof(h->addr)) == NULL) {
		log_warnx("worker (spare): malformed hand-off (%zd bytes, "
		    "version %u)", n, n >= 4 ? h->version : 0);
		close(fd);
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
	    type != SOCK_STREAM) {
		log_warnx("worker (spare): the hand-off's fd is not a "
		    "stream socket");
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Sleeps until the hand-off socket has a message or its end (POLLHUP),
 * with SIGTERM let in only here (worker_signals blocks it otherwise):
 * a SIGTERM, from the master's shutdown or its death, ends the spare.
 */
static void
worker_spare_idle(void)
{
	struct pollfd	pfd;

	pfd.fd = WORKER_CLIENT_FD;
	pfd.events = POLLIN;
	for (;;) {
		pfd.revents = 0;
		if (ppoll(&pfd, 1, NULL, &w.wait_mask) == -1) {
			if (errno != EINTR)
				fatal("worker (spare): ppoll");
		} else if (pfd.revents != 0)
			return;
		if (worker_stop)
			_exit(0);
	}
}

/*
 * Waits for the client on the hand-off socket (at WORKER_CLIENT_FD) and
 * moves its socket there, which closes the hand-off socket.  Exits 0
 * when the master closed the hand-off, 1 on anything malformed.
 */
static void
worker_spare_wait(struct spare_handoff *h, int tls)
{
	union {
		struct cmsghdr	hdr;
		/* Room for one fd: more are cut (MSG_CTRUNC), and refused. */
		char		buf[CMSG_SPACE(sizeof(int))];
	}		 cbuf;
	struct msghdr	 msg;
	struct iovec	 iov;
	ssize_t		 n;
	int		 fd;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = h;
	iov.iov_len = sizeof(*h);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf.buf;
	msg.msg_controllen = sizeof(cbuf.buf);
	worker_spare_idle();
	do
		n = recvmsg(WORKER_CLIENT_FD, &msg, MSG_CMSG_CLOEXEC);
	while (n == -1 && errno == EINTR);
	if (n == 0)
		_exit(0);	/* retired by the master */
	if (n == -1)
		fatal("worker (spare): recvmsg");
	if ((fd = worker_spare_check(&msg, n, h, tls)) == -1)
		_exit(1);
	/* The client takes the hand-off socket's place: one fd less. */
	if (dup2(fd, WORKER_CLIENT_FD) == -1)
		fatal("worker (spare): dup2");
	close(fd);
}

/* A spare worker: set up ahead, wait for a client, then serve it. */
void
worker_spare_main(const struct config *cfg, const struct runtime *rt,
    int handoff, int tls)
{
	struct spare_handoff	h;

	(void)strlcpy(w.addr, "(spare)", sizeof(w.addr));
	title_set("worker (spare%s)", tls ? ", tls" : "");
	worker_prepare(cfg, rt, handoff, tls);
	memset(&h, 0, sizeof(h));
	worker_spare_wait(&h, tls);
	worker_serve(h.addr);
}
