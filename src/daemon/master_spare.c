/*
 * master_spare.c: the pool of spare workers.  fork(2) is the costliest
 * step of a new connection (it copies the master's page tables: 150 to
 * 600 µs, depending on the machine), so the master forks workers ahead
 * of their clients and keeps --min-spare to --max-spare of them idle, as
 * Apache's prefork MPM and Postfix's master(8) do.  An accepted
 * connection goes to the oldest idle spare over its hand-off socket
 * (SCM_RIGHTS), and the pool refills from the loop, one fork a turn, in
 * between accepts.
 *
 * A spare is a worker in all but its client: it ran master_child_setup
 * (privileges dropped, the master's fds closed) before it waits, so it
 * holds nothing a worker does not.  A plain spare has forgotten the TLS
 * key, as a plain worker does; tls:// connections have spares of their
 * own, which keep it.  Each still serves exactly one connection, then
 * exits: the isolation of one process per client is unchanged.
 *
 * How many stay idle follows demand: each accept that finds none adds
 * one to the number wanted, up to --max-spare, and each
 * MASTER_SPARE_DECAY_MS without such a miss halves it back toward
 * --min-spare, retiring the spares above it.  A reload retires every
 * spare: they were forked with the old settings and the old TLS
 * context.  A spare is retired by
 * closing the master's end of its hand-off socket; it sees the end of
 * file and exits 0.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/tree.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "compat.h"
#include "log.h"
#include "master.h"
#include "talknetd.h"

#define MASTER_SPARE_DECAY_MS	((int64_t)master.cfg->spare_decay_ms)
#define MASTER_SPARE_RETRY_MS	1000	/* after a fork that failed */
/*
 * The master's fds no spare may take: the talknetctl connections
 * (CONTROL_MAX_CONN), an accepted client, the hub's pipe on a restart.
 */
#define MASTER_SPARE_FD_FREE	16

static int	spare_fd_warned;	/* the pool is at the fd limit */

/* Whether some listener serves this kind of client (1: tls://). */
static int
spare_kind_used(int tls)
{
	size_t	i;

	for (i = 0; i < master.cfg->nlisten; i++)
		if (master.cfg->listen[i].fd != -1 &&
		    master.cfg->listen[i].tls == tls)
			return 1;
	return 0;
}

/* The idle spares wanted of one kind now, within the configured bounds. */
static size_t
spare_want(int tls)
{
	size_t	want = live->spare_want[tls];

	if (!spare_kind_used(tls))
		return 0;
	if (want < master.cfg->min_spare)
		want = master.cfg->min_spare;
	if (want > master.cfg->max_spare)
		want = master.cfg->max_spare;
	return want;
}

/*
 * Takes an idle spare out of its list and closes the master's end of
 * its hand-off socket: used (one connection per spare, ever), retired
 * (the end of file is its signal to exit), or the spare is gone.
 */
static void
spare_unlist(struct child *c)
{
	TAILQ_REMOVE(&live->spares[c->tls], c, spare_entry);
	live->nspare[c->tls]--;
	c->spare_idle = 0;
	close(c->handoff_fd);
	c->handoff_fd = -1;
}

/* Retires an idle spare; it exits 0 and is reaped like any child. */
static void
spare_retire(struct child *c)
{
	spare_unlist(c);
	c->retired = 1;
}

/*
 * Whether a spare may keep fd: each idle one holds one of the master's
 * fds, and a pool that took the last ones would leave accept(2) with
 * EMFILE, refusing every client while spares wait for one.  Logged
 * once each time the pool reaches the limit.
 */
static int
spare_fd_room(int fd)
{
	struct rlimit	rl;
	rlim_t		keep = MASTER_SPARE_FD_FREE;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
		return 1;
	/* A tiny limit: half of it for the master, half for spares. */
	if (keep > rl.rlim_cur / 2)
		keep = rl.rlim_cur / 2;
	if ((rlim_t)fd + keep < rl.rlim_cur) {
		spare_fd_warned = 0;
		return 1;
	}
	if (!spare_fd_warned)
		log_warnx("spare worker: %zu idle, no more: the open files "
		    "limit %llu must leave the master %llu", live->nspare[0] +
		    live->nspare[1], (unsigned long long)rl.rlim_cur,
		    (unsigned long long)keep);
	spare_fd_warned = 1;
	return 0;
}

/* Forks one spare of a kind; 0, or -1 (logged) if it could not. */
static int
spare_fork(int tls)
{
	struct child	*c;
	pid_t		 pid;
	int		 sv[2], full;

	if ((c = nodepool_get(&live->child_pool)) == NULL) {
		log_warn("spare worker");
		return -1;
	}
	/* SEQPACKET: the hand-off is one message, whole or not at all. */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		full = errno == EMFILE;
		if (!full || !spare_fd_warned)
			log_warn("spare worker: socketpair");
		spare_fd_warned = full;
		nodepool_put(&live->child_pool, c);
		return -1;
	}
	/* The higher of the two: the lowest numbers are taken first. */
	if (!spare_fd_room(sv[0] > sv[1] ? sv[0] : sv[1])) {
		close(sv[0]);
		close(sv[1]);
		nodepool_put(&live->child_pool, c);
		return -1;
	}
	switch (pid = master_fork_child()) {
	case -1:
		log_warn("spare worker: fork");
		close(sv[0]);
		close(sv[1]);
		nodepool_put(&live->child_pool, c);
		return -1;
	case 0:
		/* The master's end, and every other spare's: worker_prepare
		 * closes all but the release socket and this one. */
		master_worker_child(tls);
		worker_spare_main(master.cfg, &master.rt, sv[1], tls);
		/* NOTREACHED */
	default:
		close(sv[1]);
		memset(c, 0, sizeof(*c));
		c->pid = pid;
		c->since = time(NULL);
		c->spare = 1;
		c->spare_idle = 1;
		c->tls = tls;
		c->handoff_fd = sv[0];
		(void)strlcpy(c->addr, "(spare)", sizeof(c->addr));
		RB_INSERT(child_tree, &live->children, c);
		TAILQ_INSERT_TAIL(&live->spares[tls], c, spare_entry);
		live->nspare[tls]++;
		live->spare_forks++;
		return 0;
	}
}

/* Sends a spare the client's socket and address; 0 or -1. */
static int
spare_send(struct child *c, int fd, const struct spare_handoff *h)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	}		 cbuf;
	struct msghdr	 msg;
	struct cmsghdr	*cm;
	struct iovec	 iov;
	ssize_t		 n;

	memset(&msg, 0, sizeof(msg));
	memset(&cbuf, 0, sizeof(cbuf));
	iov.iov_base = (void *)(uintptr_t)h;
	iov.iov_len = sizeof(*h);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf.buf;
	msg.msg_controllen = sizeof(cbuf.buf);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fd));
	memcpy(CMSG_DATA(cm), &fd, sizeof(fd));
	/* A spare that died meanwhile is EPIPE, not a SIGPIPE; its socket
	 * is new and holds nothing, so the message never waits. */
	do
		n = sendmsg(c->handoff_fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n == -1 && errno == EINTR);
	if (n == (ssize_t)sizeof(*h))
		return 0;
	log_warnx("spare worker %ld: hand-off failed: %s", (long)c->pid,
	    n == -1 ? strerror(errno) : "short");
	return -1;
}

/* An accept found no spare of a kind idle: want one more of them. */
static void
spare_missed(int tls)
{
	size_t	want = spare_want(tls);

	if (master.cfg->max_spare == 0)
		return;		/* no pool */
	live->spare_misses++;
	live->spare_missed_at = clock_now_ms();
	/* One more per connection that waited for a fork: the pool grows
	 * to the size of the burst, not beyond. */
	if (want < master.cfg->max_spare)
		live->spare_want[tls] = want + 1;
}

/*
 * Hands an accepted connection to the oldest idle spare of its kind.
 * Returns 0 when one took it (the caller closes its copy of fd), or -1
 * when none is idle: the caller forks a worker for it, as without a
 * pool.
 */
int
master_spare_give(int fd, const char *addr, struct ip_count *ip, int tls)
{
	struct spare_handoff	 h;
	struct child		*c;
	int			 r;

	memset(&h, 0, sizeof(h));
	h.version = SPARE_HANDOFF_VERSION;
	h.tls = (uint32_t)tls;
	(void)strlcpy(h.addr, addr, sizeof(h.addr));
	while ((c = TAILQ_FIRST(&live->spares[tls])) != NULL) {
		r = spare_send(c, fd, &h);
		/* Used either way: one connection per spare, ever. */
		spare_unlist(c);
		if (r == -1)
			continue;	/* its reap tells how it ended */
		c->spare = 0;
		c->ip = ip;
		c->since = time(NULL);
		(void)strlcpy(c->addr, addr, sizeof(c->addr));
		live->nchildren++;
		live->status_dirty = 1;
		live->spare_handoffs++;
		return 0;
	}
	spare_missed(tls);
	return -1;
}

/* Retires idle spares above what is wanted, the newest first. */
static void
spare_trim(int tls, size_t want)
{
	struct child	*c;

	while (live->nspare[tls] > want &&
	    (c = TAILQ_LAST(&live->spares[tls], child_list)) != NULL)
		spare_retire(c);
}

/*
 * A quiet while after a burst: halve the spares wanted of each kind
 * (master_spare_fill then retires those above it).
 */
static void
spare_decay(int64_t now)
{
	if (now - live->spare_missed_at < MASTER_SPARE_DECAY_MS)
		return;
	live->spare_missed_at = now;
	live->spare_want[0] /= 2;
	live->spare_want[1] /= 2;
}

/*
 * Forks at most one spare (the kinds taking turns), and retires those
 * beyond what is wanted.  Returns the poll timeout the loop should
 * use at most: 0 while spares are missing, the ms to the next retry or
 * decay, or -1.
 */
int
master_spare_fill(void)
{
	int64_t	now = clock_now_ms();
	size_t	want[2];
	int	tls, t = -1;

	if (master.stopping)
		return -1;
	spare_decay(now);
	for (tls = 0; tls < 2; tls++) {
		want[tls] = spare_want(tls);
		spare_trim(tls, want[tls]);
	}
	if (now < live->spare_retry_at)
		return (int)(live->spare_retry_at - now);
	/* The kinds take turns, so a burst of one starves neither. */
	tls = live->spare_turn;
	if (live->nspare[tls] >= want[tls])
		tls = !tls;
	if (live->nspare[tls] < want[tls]) {
		live->spare_turn = !tls;
		if (spare_fork(tls) == -1) {
			live->spare_retry_at = now + MASTER_SPARE_RETRY_MS;
			return MASTER_SPARE_RETRY_MS;
		}
	}
	for (tls = 0; tls < 2; tls++)
		if (live->nspare[tls] < want[tls])
			return 0;
	/* Above --min-spare: wake to halve it once the burst is over. */
	for (tls = 0; tls < 2; tls++)
		if (want[tls] > master.cfg->min_spare) {
			t = (int)(live->spare_missed_at +
			    MASTER_SPARE_DECAY_MS - now);
			if (t < 0)
				t = 0;
		}
	return t;
}

/* A reload: every idle spare goes, the pool refills with the new setup. */
void
master_spare_retire_all(void)
{
	int	tls;

	for (tls = 0; tls < 2; tls++) {
		live->spare_want[tls] = 0;
		spare_trim(tls, 0);
	}
}

/*
 * The master's ends of the idle spares' hand-off sockets, for a child
 * that keeps its fds (the hub) to close: the list lives in memory no
 * child inherits, so it is copied here, before the fork.
 */
size_t
master_spare_fds(int *fds, size_t max)
{
	struct child	*c;
	size_t		 n = 0;
	int		 tls;

	for (tls = 0; tls < 2; tls++)
		TAILQ_FOREACH(c, &live->spares[tls], spare_entry)
			if (n < max)
				fds[n++] = c->handoff_fd;
	return n;
}

/*
 * A spare exited before it had a client.  Retired ones were told to;
 * one that died idle (killed, or out of memory) is logged, and the
 * pool forks another in its place.
 */
void
master_spare_reaped(struct child *c, int status)
{
	char	desc[LOG_STATUS_LEN];

	if (c->spare_idle)
		spare_unlist(c);
	if (c->retired || master.stopping)
		return;
	live->spare_lost++;
	log_warnx("spare worker %ld %s before it had a client", (long)c->pid,
	    log_wait_status(status, desc, sizeof(desc)));
	/* Something kills spares: fork the next one a second later, not at
	 * the killer's pace (accepts meanwhile fork for themselves). */
	live->spare_retry_at = clock_now_ms() + MASTER_SPARE_RETRY_MS;
}
