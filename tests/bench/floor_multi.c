/*
 * floor_multi.c: the floor's multi shape, talknetd's processes: a master
 * that hands each accepted client (SCM_RIGHTS over a SOCK_SEQPACKET
 * pair) to one of the workers forked ahead (8, one more after each miss,
 * one fork a loop turn), and the workers, each relaying between its
 * client and its channel to the hub (floor.c's serve), connected ahead.
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

/* Room for the control message of one fd (SCM_RIGHTS). */
union fdbuf {
	struct cmsghdr	hdr;
	char		buf[CMSG_SPACE(sizeof(int))];
};

/* Writes all of p to fd, waiting while the socket is full; -1 if gone. */
static int
write_all(int fd, const char *p, size_t n)
{
	struct pollfd	pf;
	ssize_t		w;

	while (n > 0) {
		if ((w = write(fd, p, n)) > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w == -1 && errno == EINTR)
			continue;
		if (w == 0 || errno != EAGAIN)
			return -1;
		pf.fd = fd;
		pf.events = POLLOUT;
		if (poll(&pf, 1, -1) == -1 && errno != EINTR)
			return -1;
	}
	return 0;
}

/*
 * The client's new bytes: relays every whole line before a DISCONNECT
 * to the hub in one write, keeps a partial one; exits on DISCONNECT.
 */
static void
worker_client(struct buf *in, int hfd)
{
	const char	*l, *nl, *t;
	size_t		 off = 0, n;
	int		 bye = 0;

	while ((nl = memchr(in->p + off, '\n', in->len - off)) != NULL) {
		l = in->p + off;
		if (json_str(l, (size_t)(nl - l), "type", &t, &n) == 0 &&
		    is(t, n, "DISCONNECT")) {
			bye = 1;
			break;
		}
		off = (size_t)(nl - in->p) + 1;
	}
	if (off > 0 && write_all(hfd, in->p, off) == -1)
		_exit(0);
	if (bye)
		_exit(0);	/* the client sees the end of file */
	buf_drop(in, off);
	if (in->len > LINE_CAP)
		_exit(0);
}

/* A worker: relays between its client and its hub channel, then exits. */
static void __attribute__((noreturn))
worker(int ep, int cfd, int hfd)
{
	struct epoll_event	ev[2];
	struct buf		in = { NULL, 0, 0 };
	char			tmp[READ_CHUNK];
	ssize_t			r;
	int			n, k;

	watch(ep, EPOLL_CTL_ADD, cfd, EPOLLIN);
	for (;;) {
		if ((n = epoll_wait(ep, ev, 2, -1)) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "epoll_wait");
		}
		for (k = 0; k < n; k++) {
			r = read(ev[k].data.fd, tmp, sizeof(tmp));
			if (r == -1 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r <= 0)
				_exit(0);	/* client or hub gone */
			if (ev[k].data.fd == hfd) {
				if (write_all(cfd, tmp, (size_t)r) == -1)
					_exit(0);
				continue;
			}
			buf_add(&in, tmp, (size_t)r);
			worker_client(&in, hfd);
		}
	}
}

/* Points msg at one byte c and room for one fd in cbuf. */
static void
handoff_msg(struct msghdr *msg, struct iovec *iov, char *c, char *cbuf,
    size_t clen)
{
	memset(msg, 0, sizeof(*msg));
	memset(cbuf, 0, clen);
	iov->iov_base = c;
	iov->iov_len = 1;
	msg->msg_iov = iov;
	msg->msg_iovlen = 1;
	msg->msg_control = cbuf;
	msg->msg_controllen = clen;
}

/*
 * A spare: connects its hub channel and makes its epoll set ahead, then
 * waits for one client on the hand-off socket (fd 3); the master
 * closing it means exit.
 */
static void __attribute__((noreturn))
spare(const struct sockaddr_un *sun, socklen_t sl)
{
	union fdbuf	 cbuf;
	struct msghdr	 msg;
	struct cmsghdr	*cm;
	struct iovec	 iov;
	char		 c;
	int		 hfd, cfd, ep;

	if ((hfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(hfd, (const struct sockaddr *)sun, sl) == -1)
		err(1, "spare: hub");
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		err(1, "epoll_create1");
	watch(ep, EPOLL_CTL_ADD, hfd, EPOLLIN);
	handoff_msg(&msg, &iov, &c, cbuf.buf, sizeof(cbuf.buf));
	if (recvmsg(3, &msg, MSG_CMSG_CLOEXEC) <= 0)
		_exit(0);
	cm = CMSG_FIRSTHDR(&msg);
	if (cm == NULL || cm->cmsg_type != SCM_RIGHTS)
		_exit(1);
	memcpy(&cfd, CMSG_DATA(cm), sizeof(cfd));
	(void)close(3);
	worker(ep, cfd, hfd);
}

static pid_t		 hub_pid;
static int		 spare_fd[SPARES_MAX];
static int		 nspare, want = SPARES_MIN;

/* Forks one spare; its hand-off socket goes on the idle list. */
static void
spare_fork(const struct sockaddr_un *sun, socklen_t sl)
{
	int	sv[2];
	pid_t	pid;

	/* SEQPACKET: the hand-off is one message, whole or not at all. */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		warn("socketpair");
		return;
	}
	if ((pid = fork()) == -1) {
		warn("fork");
		(void)close(sv[0]);
		(void)close(sv[1]);
		return;
	}
	if (pid == 0) {
		/* The spare keeps its end at 3 and none of the master's
		 * fds: the listener and the other spares' hand-offs. */
		if (sv[1] != 3 && dup2(sv[1], 3) == -1)
			err(1, "dup2");
		if (close_range(4, ~0U, 0) == -1 ||
		    signal(SIGTERM, SIG_DFL) == SIG_ERR)
			err(1, "spare");
		spare(sun, sl);
	}
	(void)close(sv[1]);
	spare_fd[nspare++] = sv[0];
}

/* Hands cfd to the newest idle spare; its hand-off is used up either way. */
static void
spare_give(int cfd)
{
	union fdbuf	 cbuf;
	struct msghdr	 msg;
	struct cmsghdr	*cm;
	struct iovec	 iov;
	char		 c = 'c';
	int		 hfd = spare_fd[--nspare];

	handoff_msg(&msg, &iov, &c, cbuf.buf, sizeof(cbuf.buf));
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(cfd));
	memcpy(CMSG_DATA(cm), &cfd, sizeof(cfd));
	if (sendmsg(hfd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) != 1)
		warn("hand-off");
	(void)close(hfd);
}

static void
on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

/* Accepts what the listener has, each client to a spare. */
static void
master_accept(int lfd, const struct sockaddr_un *sun, socklen_t sl)
{
	int	cfd, one = 1;

	while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC))
	    != -1) {
		if (setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one)) == -1)
			err(1, "setsockopt");
		if (nspare == 0) {
			/* A miss: fork for this one, keep one more ahead. */
			if (want < SPARES_MAX)
				want++;
			spare_fork(sun, sl);
		}
		if (nspare > 0)
			spare_give(cfd);
		(void)close(cfd);
	}
	if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
		warn("accept4");
}

/*
 * The master: forks the hub, then accepts and hands off, refilling the
 * pool one fork a turn and reaping each turn, until SIGTERM.
 */
void
master(int lfd, int ulfd, const struct sockaddr_un *sun, socklen_t sl)
{
	struct pollfd		pf;
	pid_t			pid;
	int			i;

	if ((hub_pid = fork()) == -1)
		err(1, "fork");
	if (hub_pid == 0) {
		/* The hub goes with the master; it needs no listener. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
			err(1, "prctl");
		(void)close(lfd);
		serve(ulfd, 0);
	}
	(void)close(ulfd);
	/* Only the master stops in order; the others die of SIGTERM. */
	/* (poll(2) is never restarted: the flag is seen at once.) */
	if (signal(SIGTERM, on_term) == SIG_ERR ||
	    signal(SIGINT, on_term) == SIG_ERR)
		err(1, "signal");
	while (!stopping) {
		while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
			if (pid == hub_pid)
				errx(1, "the hub exited");
		if (nspare < want)
			spare_fork(sun, sl);
		pf.fd = lfd;
		pf.events = POLLIN;
		if (poll(&pf, 1, nspare < want ? 0 : 100) > 0)
			master_accept(lfd, sun, sl);
	}
	for (i = 0; i < nspare; i++)
		(void)close(spare_fd[i]);
	/* Every child reaped, the workers once the hub is gone: 5 s. */
	(void)kill(hub_pid, SIGTERM);
	(void)alarm(5);
	while (wait(NULL) > 0 || errno == EINTR)
		;
}

/* The hub's listener: an abstract Unix stream socket, named by our pid. */
int
listen_hub(struct sockaddr_un *sun, socklen_t *sl)
{
	int	fd, n;

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	n = snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1,
	    "talknet-floor-%ld", (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(sun->sun_path) - 1)
		errx(1, "hub name");
	*sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1 || bind(fd, (struct sockaddr *)sun, *sl) == -1 ||
	    listen(fd, 4096) == -1)
		err(1, "hub socket");
	return fd;
}
