/*
 * master_child.c: the master's per-client accounting.  It accepts
 * connections, refuses those over --max-clients or --max-clients-per-ip,
 * forks one worker per client, counts the workers per address, frees a
 * worker's places when it says its client is closed, kills a worker that
 * lingers, and reaps them all.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/tree.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND	0
#endif

#include "compat.h"
#include "addr.h"
#include "conf.h"
#include "log.h"
#include "master.h"
#include "nodepool.h"
#include "peer.h"
#include "talknetd.h"
#include "tls_server.h"

#define MASTER_ACCEPT_BURST	64
#define MASTER_RELEASE_BURST	256	/* release datagrams read per round */
#define MASTER_LINGER_MS	2000	/* a released worker's time to exit */
#define MASTER_LINGER_VG_MS	60000	/* the same, under valgrind */
#define MASTER_LINGER_SLACK	64	/* released, beyond max-clients */

/* Orders children by pid. */
static int
child_cmp(struct child *a, struct child *b)
{
	return (a->pid > b->pid) - (a->pid < b->pid);
}

RB_GENERATE(child_tree, child, entry, child_cmp)

/* Orders client addresses. */
static int
ip_cmp(struct ip_count *a, struct ip_count *b)
{
	if (a->family != b->family)
		return (a->family > b->family) - (a->family < b->family);
	return memcmp(a->addr, b->addr, sizeof(a->addr));
}

RB_GENERATE_STATIC(ip_tree, ip_count, entry, ip_cmp)

/* Fills the look-up key of a client address (IPv4, IPv6 or other). */
static void
ip_key(struct ip_count *key, const struct sockaddr *sa)
{
	memset(key, 0, sizeof(*key));
	key->family = sa->sa_family;
	if (sa->sa_family == AF_INET)
		memcpy(key->addr, &((const struct sockaddr_in *)(const void *)
		    sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(key->addr, &((const struct sockaddr_in6 *)(const void *)
		    sa)->sin6_addr, 16);
}

/*
 * Counts one more worker for the client's address.  NULL when the
 * address already has --max-clients-per-ip of them (errno EUSERS), or
 * when memory ran out (ENOMEM).
 */
static struct ip_count *
ip_take(const struct sockaddr *sa)
{
	struct ip_count	key, *ip;

	ip_key(&key, sa);
	if ((ip = RB_FIND(ip_tree, &live->ips, &key)) == NULL) {
		if ((ip = nodepool_get(&live->ip_pool)) == NULL)
			return NULL;
		*ip = key;
		RB_INSERT(ip_tree, &live->ips, ip);
	}
	if (master.cfg->max_clients_per_ip != 0 &&
	    ip->n >= master.cfg->max_clients_per_ip) {
		if (ip->n == 0) {
			RB_REMOVE(ip_tree, &live->ips, ip);
			nodepool_put(&live->ip_pool, ip);
		}
		errno = EUSERS;
		return NULL;
	}
	ip->n++;
	return ip;
}

/* Counts one worker less for an address. */
static void
ip_release(struct ip_count *ip)
{
	if (ip == NULL || --ip->n > 0)
		return;
	RB_REMOVE(ip_tree, &live->ips, ip);
	nodepool_put(&live->ip_pool, ip);
}

/*
 * Sets up the per-client records in a mapping no child inherits, so the
 * master's writes there leave no stale page copy in each worker.
 */
void
master_live_init(void)
{
	if ((live = nodepool_map(sizeof(*live))) == NULL)
		fatal("mmap");
	RB_INIT(&live->children);
	RB_INIT(&live->ips);
	TAILQ_INIT(&live->released);
	TAILQ_INIT(&live->spares[0]);
	TAILQ_INIT(&live->spares[1]);
	nodepool_init(&live->child_pool, sizeof(struct child));
	nodepool_init(&live->ip_pool, sizeof(struct ip_count));
}

/*
 * fork(2) for a worker.  In the child, glibc's fork() also resets ld.so's
 * locks and advances libc's fork generation, and runs the atfork
 * handlers; each page that writes is one more copy-on-write page in
 * every live worker (two of ld.so's data and one of libc's: 12 KiB a
 * worker).  The master is single-threaded, holds no lock here and
 * registers no atfork handler, so a worker needs none of that: _Fork is
 * the same system call without it, and still gives the child its own
 * thread id.
 */
static pid_t
master_fork_light(void)
{
#ifdef HAVE__FORK
	return _Fork();
#else
	return fork();
#endif
}

/*
 * In a new worker or spare, before it serves anyone: what it must not
 * keep of the master's.
 */
void
master_worker_child(int tls)
{
	master_child_setup();
	close(master.rt.hub_listen_fd);
	/* Only a TLS client's worker keeps the key (design.md). */
	if (!tls)
		tls_server_forget();
	/* Only the hub talks to Redis: no worker keeps its password
	 * (tested only when set: wiping writes, so copies a page). */
	if (master.cfg->cluster_password[0] != '\0')
		explicit_bzero(master.cfg->cluster_password,
		    sizeof(master.cfg->cluster_password));
}

/*
 * Forks a worker or a spare.  Every signal is held across the fork (see
 * master_child_setup: a SIGTERM must not hit the master's handler in
 * the child); the parent gets them back at once, the child once it has
 * set the default actions.
 */
pid_t
master_fork_child(void)
{
	pid_t	pid;

	master_signals_hold();
	pid = master_fork_light();
	if (pid != 0)
		master_signals_release();
	return pid;
}

/* Forks one worker for an accepted connection no spare took. */
static int
master_fork_worker(int fd, const char *addr, struct ip_count *ip, int tls)
{
	struct child	*c;
	pid_t		 pid;

	if ((c = nodepool_get(&live->child_pool)) == NULL) {
		log_warn("connection from %s refused", addr);
		return -1;
	}
	switch (pid = master_fork_child()) {
	case -1:
		log_warn("connection from %s refused: fork", addr);
		nodepool_put(&live->child_pool, c);
		return -1;
	case 0:
		master_worker_child(tls);
		worker_main(master.cfg, &master.rt, fd, addr, tls);
		/* NOTREACHED */
	default:
		memset(c, 0, sizeof(*c));
		c->pid = pid;
		c->ip = ip;
		c->since = time(NULL);
		(void)strlcpy(c->addr, addr, sizeof(c->addr));
		RB_INSERT(child_tree, &live->children, c);
		live->nchildren++;
		live->status_dirty = 1;
		return 0;
	}
}

/*
 * Out of fds: the waiting client would sit in the backlog until it gave
 * up.  Give back the spare fd for a moment, so it can be accepted and
 * closed cleanly, then take the spare again.
 */
static void
master_refuse(int lfd)
{
	struct sockaddr_storage	ss;
	socklen_t		sslen = sizeof(ss);
	char			name[128];
	int			fd;

	log_warn("accept");
	if (master.spare_fd == -1) {
		master.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		return;
	}
	close(master.spare_fd);
	fd = accept4(lfd, (struct sockaddr *)&ss, &sslen, SOCK_CLOEXEC);
	if (fd != -1) {
		sockaddr_fmt((struct sockaddr *)&ss, sslen, name, sizeof(name));
		log_warnx("connection from %s refused: out of file "
		    "descriptors", name);
		close(fd);
	}
	/* -1 until an fd is free again; the next EMFILE tries once more. */
	master.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Milliseconds of the monotonic clock. */
static int64_t
master_now_ms(void)
{
	struct timespec	ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		fatal("clock_gettime");
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Creates the socket on which workers say their client is closed.  One
 * datagram socket pair: the master reads its end, and every worker
 * inherits the other end (the hub closes it).  SO_PASSCRED makes the
 * kernel stamp each datagram with its sender's pid, so a worker need
 * not, and cannot, say which worker it is.
 */
void
master_release_open(void)
{
	int	sv[2], one = 1;

	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1)
		fatal("socketpair");
	if (setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one,
	    sizeof(one)) == -1)
		fatal("SO_PASSCRED");
	master.release_fd = sv[0];
	master.rt.release_fd = sv[1];
}

/*
 * A worker closed its client: its --max-clients and per-address places
 * are free now, though it may linger a moment (worker_finish).  Once
 * only; the reap then frees nothing more.
 */
static void
master_release(struct child *c)
{
	if (c->released)
		return;
	c->released = 1;
	c->released_at = master_now_ms();
	ip_release(c->ip);
	c->ip = NULL;
	live->nchildren--;
	live->nreleased++;
	TAILQ_INSERT_TAIL(&live->released, c, release_entry);
	live->status_dirty = 1;
}

/* The limits a report says were hit: ", hits: rate-limit 3", or "". */
static const char *
master_report_hits(const struct session_report *r, char *buf, size_t len)
{
	char		one[64];
	unsigned int	i;

	buf[0] = '\0';
	for (i = 0; i < LIMIT_LAST; i++) {
		if (r->hits[i] == 0)
			continue;
		(void)snprintf(one, sizeof(one), "%s %s %llu",
		    buf[0] == '\0' ? ", hits:" : ",", limit_name(i),
		    (unsigned long long)r->hits[i]);
		(void)strlcat(buf, one, len);
	}
	return buf;
}

/*
 * Takes a worker's end-of-session report into the totals: its first
 * datagram only, so a worker that sends more cannot count twice.  The
 * worker is not trusted: a datagram that is not a whole, plausible
 * report counts the session as "unknown", with none of its numbers.
 */
static void
master_report(struct child *c, const void *p, ssize_t n)
{
	struct session_report	r;
	char			hits[256];

	if (c->reported)
		return;
	c->reported = 1;
	if (n < 0 || session_report_get(p, (size_t)n, &r) == -1) {
		log_warnx("worker %ld (%s): bad session report (%zd bytes), "
		    "counted as unknown", (long)c->pid, c->addr, n);
		session_totals_add(&live->totals, NULL, END_NONE);
		return;
	}
	session_totals_add(&live->totals, &r, r.reason);
	log_debug("worker %ld (%s): session report: %s, in %llu/%llu, "
	    "out %llu/%llu%s", (long)c->pid, c->addr,
	    session_end_name(r.reason), (unsigned long long)r.lines_in,
	    (unsigned long long)r.bytes_in, (unsigned long long)r.lines_out,
	    (unsigned long long)r.bytes_out, master_report_hits(&r, hits,
	    sizeof(hits)));
}

/*
 * Reads the workers' "client closed" datagrams, each a worker's session
 * report.  The sender is the pid the kernel wrote in the credentials,
 * never anything in the datagram.  A worker running as -u USER cannot
 * put another pid there, so it can only give up its own place early
 * (and lingering is cut short by master_linger), and report its own
 * session.  Without -u, workers run as root and CAP_SYS_ADMIN lets one
 * claim any pid: a compromised worker could free another's place (more
 * connections get in), and so have master_linger kill that worker,
 * which as root it could do itself anyway; and it could report that
 * worker's session in its stead, once.  Returns 1 when the burst ran
 * out with datagrams maybe left, 0 when the socket is empty.
 */
int
master_release_read(void)
{
	union {
		struct cmsghdr	hdr;
		/* Room for the credentials only: fds a hostile worker
		 * attaches do not fit, and the kernel closes them. */
		char		buf[CMSG_SPACE(sizeof(struct ucred))];
	}		 cbuf;
	union {
		struct session_report	r;
		/* One byte more: a longer datagram is seen as such. */
		char			b[sizeof(struct session_report) + 1];
	}		 data;
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*cm;
	struct ucred	 cred;
	struct child	 key, *c;
	ssize_t		 n;
	int		 i;

	for (i = 0; i < MASTER_RELEASE_BURST; i++) {
		memset(&msg, 0, sizeof(msg));
		iov.iov_base = data.b;
		iov.iov_len = sizeof(data.b);
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = sizeof(cbuf.buf);
		/* MSG_TRUNC: the datagram's whole length, even if cut. */
		if ((n = recvmsg(master.release_fd, &msg,
		    MSG_DONTWAIT | MSG_TRUNC)) == -1) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				log_warn("recvmsg");
			return 0;
		}
		cm = CMSG_FIRSTHDR(&msg);
		if (cm == NULL || cm->cmsg_level != SOL_SOCKET ||
		    cm->cmsg_type != SCM_CREDENTIALS ||
		    cm->cmsg_len != CMSG_LEN(sizeof(cred)))
			continue;
		memcpy(&cred, CMSG_DATA(cm), sizeof(cred));
		key.pid = cred.pid;
		/* An unknown pid, or one released already: nothing.  Nor an
		 * idle spare's, which only a forged pid can name: it holds
		 * no place, and freeing one would wrap the count. */
		if ((c = RB_FIND(child_tree, &live->children, &key)) != NULL &&
		    !c->spare) {
			master_report(c, data.b, n);
			master_release(c);
		}
	}
	return 1;
}

/*
 * How long a released worker may take to exit.  Under valgrind its exit
 * runs the leak check, which takes seconds: a kill then would cut its
 * report short.
 */
static int64_t
master_linger_ms(void)
{
	return RUNNING_ON_VALGRIND ? MASTER_LINGER_VG_MS : MASTER_LINGER_MS;
}

/*
 * A released worker has had MASTER_LINGER_MS to exit: kill it.  Its
 * linger needs 500 ms at most; one that stays would be a process the
 * limits no longer count.  Returns the ms to the next such, or -1.
 */
int
master_linger(void)
{
	struct child	*c;
	int64_t		 now = master_now_ms();

	while ((c = TAILQ_FIRST(&live->released)) != NULL) {
		if (now - c->released_at < master_linger_ms())
			return (int)(c->released_at + master_linger_ms() - now);
		TAILQ_REMOVE(&live->released, c, release_entry);
		c->killed = 1;
		/* Not reaped yet, so the pid is still this child's. */
		(void)kill(c->pid, SIGKILL);
	}
	return -1;
}

/*
 * Whether --max-clients has room for one more worker.  Released workers
 * that still run are capped at max-clients + MASTER_LINGER_SLACK, so
 * that the processes stay within about twice the limit; each lingers
 * half a second at most.  Before refusing, the datagrams are read:
 * a worker says it is done before its client sees the end, so a client
 * that connects again at once finds its place free.
 */
static int
master_room(const char *name)
{
	size_t	max = master.cfg->max_clients;

	if (live->nchildren >= max ||
	    live->nreleased >= max + MASTER_LINGER_SLACK)
		master_release_read();
	if (live->nchildren >= max) {
		live->totals.hits[LIMIT_MAX_CLIENTS]++;
		log_warnx("connection from %s refused: %zu clients "
		    "(--max-clients)", name, live->nchildren);
		return 0;
	}
	if (live->nreleased >= max + MASTER_LINGER_SLACK) {
		log_warnx("connection from %s refused: %zu clients closing",
		    name, live->nreleased);
		return 0;
	}
	return 1;
}

/* Counts one more worker for an address, reading releases first if full. */
static struct ip_count *
master_ip_take(const struct sockaddr *sa)
{
	struct ip_count	*ip;

	if ((ip = ip_take(sa)) == NULL && errno == EUSERS) {
		master_release_read();
		ip = ip_take(sa);
	}
	return ip;
}

/*
 * Sets up an accepted client's socket for its worker: TCP_NODELAY, and
 * the send buffer's size (--send-buffer).  Left to the kernel, the
 * buffer grows to megabytes on a fast link, and the socket reports room
 * again only when a third of it went: a client reading steadily would
 * look idle for seconds to the hub's pacing (hub.c), and each client
 * could pin that much kernel memory.  Done here because the options
 * belong to the socket, which the worker shares, and a worker's
 * sandbox allows no setsockopt.  A failure is harmless: the kernel's
 * defaults stay.
 */
static void
master_client_socket(int fd, const char *name)
{
	int	one = 1, size;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (master.cfg->send_buffer == 0)
		return;
	size = (int)master.cfg->send_buffer;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)) == -1)
		log_debug("%s: SO_SNDBUF: %s", name, strerror(errno));
}

/* Accepts connections on one listener; returns -1 to pause accepting. */
int
master_accept(int lfd)
{
	struct sockaddr_storage	 ss;
	struct ip_count		*ip;
	socklen_t		 sslen;
	char			 name[128];
	int			 fd, i, tls;

	for (i = 0; i < MASTER_ACCEPT_BURST; i++) {
		sslen = sizeof(ss);
		/* Non-blocking for its worker: the flag is the socket's. */
		fd = peer_accept(lfd, (struct sockaddr *)&ss, &sslen,
		    SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd == -1) {
			switch (errno) {
			case EAGAIN:
				return 0;
			case EMFILE:
			case ENFILE:
				master_refuse(lfd);
				return -1;
			case ENOBUFS:
			case ENOMEM:
				log_warn("accept");
				return -1;
			default:
				log_warn("accept");
				return 0;
			}
		}
		/* Degraded: closed at once, so the balancer tries another
		 * node; the listener stays polled, its backlog drained. */
		if (master_cluster_refusing()) {
			live->cluster_refused++;
			close(fd);
			continue;
		}
		sockaddr_fmt((struct sockaddr *)&ss, sslen, name, sizeof(name));
		if (!master_room(name)) {
			close(fd);
			continue;
		}
		if ((ip = master_ip_take((struct sockaddr *)&ss)) == NULL) {
			if (errno != EUSERS) {
				log_warn("connection from %s refused", name);
				close(fd);
				return -1;
			}
			live->totals.hits[LIMIT_MAX_CLIENTS_PER_IP]++;
			log_warnx("connection from %s refused: %zu from that "
			    "address (--max-clients-per-ip)", name,
			    master.cfg->max_clients_per_ip);
			close(fd);
			continue;
		}
		master_client_socket(fd, name);
		tls = master_tls_listener(lfd);
		if (master_spare_give(fd, name, ip, tls) == -1 &&
		    master_fork_worker(fd, name, ip, tls) == -1) {
			ip_release(ip);
			close(fd);
			return -1;
		}
		/* The worker owns the client now; the master keeps no copy. */
		close(fd);
		log_debug("connection from %s", name);
	}
	return 0;
}

/*
 * Logs how a worker ended, when that is news, and counts its session if
 * the worker did not report it.  A worker that died on a signal crashed
 * (SIGSYS: a system call its sandbox forbids), unless the master killed
 * it for lingering after its report, or at shutdown.  One that exited
 * with an error without a report stopped on an error of its own.
 */
static void
master_child_ended(struct child *c, int status)
{
	char		desc[LOG_STATUS_LEN];
	unsigned int	reason = END_NONE;
	int		i;

	/* Its report was sent before it exited: read it first. */
	for (i = 0; !c->reported && i < 64 && master_release_read() == 1; i++)
		;
	(void)log_wait_status(status, desc, sizeof(desc));
	if (c->killed)
		log_info("worker %ld (%s) %s: still running %lld ms after its "
		    "session ended", (long)c->pid, c->addr, desc,
		    (long long)master_linger_ms());
	else if (master.stopping)
		reason = END_SHUTDOWN;
	else if (WIFSIGNALED(status)) {
		log_warnx("worker %ld (%s) crashed: %s", (long)c->pid, c->addr,
		    desc);
		reason = END_CRASHED;
	} else if (!c->reported && WEXITSTATUS(status) != 0) {
		log_warnx("worker %ld (%s) %s without ending its session",
		    (long)c->pid, c->addr, desc);
		reason = END_SERVER_ERROR;
	}
	if (!c->reported)
		session_totals_add(&live->totals, NULL, reason);
}

/* Frees the places of a worker that was reaped, whatever its state. */
static void
master_child_gone(struct child *c, int status)
{
	master_child_ended(c, status);
	if (!c->released) {
		ip_release(c->ip);
		live->nchildren--;
	} else {
		if (!c->killed)
			TAILQ_REMOVE(&live->released, c, release_entry);
		live->nreleased--;
	}
}

/* Reaps every child that exited; restarts the hub if it was one. */
void
master_reap(void)
{
	struct child	 key, *c;
	pid_t		 pid;
	int		 status;
	char		 desc[LOG_STATUS_LEN];

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == master.hub_pid) {
			master.hub_pid = 0;
			if (master.hub_ctl != -1) {
				close(master.hub_ctl);
				master.hub_ctl = -1;
			}
			if (!master.stopping)
				log_warnx("hub %ld %s; starting another",
				    (long)pid, log_wait_status(status, desc,
				    sizeof(desc)));
			continue;
		}
		key.pid = pid;
		if ((c = RB_FIND(child_tree, &live->children, &key)) == NULL) {
			if (!master.stopping)
				log_warnx("process %ld, not a worker of ours, "
				    "%s", (long)pid, log_wait_status(status,
				    desc, sizeof(desc)));
			continue;
		}
		/* Before it leaves the tree: its report is looked up there. */
		if (c->spare)
			master_spare_reaped(c, status);
		else
			master_child_gone(c, status);
		RB_REMOVE(child_tree, &live->children, c);
		nodepool_put(&live->child_pool, c);
		live->status_dirty = 1;
	}
}
