/*
 * worker_wait.c: the worker's wait on its client socket and its hub
 * channel.  ppoll sets up a wait on both fds and tears it down again on
 * every wake-up; an epoll set is made once and changed only when what
 * the loop waits for changes, which for an idle worker woken by a line
 * is never.  Without epoll the wait is ppoll, as it always was.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/epoll.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "worker.h"

/*
 * Makes the epoll set, before the sandbox: the filter lets a worker
 * wait on and change the set, not make one.  A failure only means
 * ppoll: the worker works the same.
 */
void
worker_wait_open(void)
{
	w.ep_fd[0] = w.ep_fd[1] = -1;
	if ((w.epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
		log_debug("worker %s: epoll_create1: %s, waiting in ppoll",
		    w.addr, strerror(errno));
}

/*
 * Brings entry i of the epoll set in line with pfd; conn tells one
 * channel from the next that reuses its fd number.  Closing an fd took
 * it out of the set already, so a DEL that finds nothing is fine.
 */
static int
worker_wait_sync(int i, const struct pollfd *pfd, uint64_t conn)
{
	struct epoll_event	ev;
	uint32_t		events = 0;
	int			same;

	if (pfd->events & POLLIN)
		events |= EPOLLIN;
	if (pfd->events & POLLOUT)
		events |= EPOLLOUT;
	same = pfd->fd == w.ep_fd[i] && conn == w.ep_conn[i];
	if (same && (pfd->fd == -1 || events == w.ep_events[i]))
		return 0;
	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.u32 = (uint32_t)i;
	if (same) {
		if (epoll_ctl(w.epfd, EPOLL_CTL_MOD, pfd->fd, &ev) == -1)
			return -1;
	} else {
		if (w.ep_fd[i] != -1 &&
		    epoll_ctl(w.epfd, EPOLL_CTL_DEL, w.ep_fd[i], NULL) == -1 &&
		    errno != ENOENT && errno != EBADF)
			return -1;
		w.ep_fd[i] = -1;
		if (pfd->fd != -1 &&
		    epoll_ctl(w.epfd, EPOLL_CTL_ADD, pfd->fd, &ev) == -1)
			return -1;
	}
	w.ep_fd[i] = pfd->fd;
	w.ep_events[i] = events;
	w.ep_conn[i] = conn;
	return 0;
}

/* The wait in ppoll, when there is no epoll set. */
static int
worker_wait_ppoll(struct pollfd *pfd, int timeout)
{
	struct timespec	ts, *tsp = NULL;

	if (timeout >= 0) {
		ts.tv_sec = timeout / 1000;
		ts.tv_nsec = (long)(timeout % 1000) * 1000000L;
		tsp = &ts;
	}
	return ppoll(pfd, 2, tsp, &w.wait_mask);
}

/*
 * Waits for what pfd[0] (the client) and pfd[1] (the hub) ask, at most
 * timeout ms (-1: no limit), with SIGTERM let in as in ppoll, and sets
 * their revents.  An fd of -1 is not waited on: a hung-up socket that is
 * not read cannot spin the loop.  Returns what ppoll would.
 */
int
worker_wait(struct pollfd *pfd, int timeout)
{
	struct epoll_event	ev[2];
	int			i, n;

	if (w.epfd != -1 && (worker_wait_sync(0, &pfd[0], 0) == -1 ||
	    worker_wait_sync(1, &pfd[1], w.hub_conn) == -1)) {
		log_debug("worker %s: epoll_ctl: %s, waiting in ppoll from "
		    "now on", w.addr, strerror(errno));
		(void)close(w.epfd);
		w.epfd = -1;
	}
	if (w.epfd == -1)
		return worker_wait_ppoll(pfd, timeout);
	pfd[0].revents = pfd[1].revents = 0;
	if ((n = epoll_pwait(w.epfd, ev, 2, timeout, &w.wait_mask)) == -1)
		return -1;
	/* EPOLLIN and the others are POLLIN's values on Linux. */
	for (i = 0; i < n; i++)
		if (ev[i].data.u32 < 2)
			pfd[ev[i].data.u32].revents = (short)(ev[i].events &
			    (EPOLLIN | EPOLLOUT | EPOLLHUP | EPOLLERR));
	return n;
}
