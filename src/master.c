/*
 * master.c: the parent of every talknetd process.  It owns the listening
 * sockets, the shared-memory segment and the hub's Unix socket; it
 * starts the hub, forks one worker per accepted connection, reaps them,
 * and restarts the hub if it dies.  It never reads client traffic.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/tree.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libutil.h>
#include <malloc.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "nodepool.h"
#include "sandbox.h"
#include "shm.h"
#include "systemd.h"
#include "talknetd.h"
#include "title.h"
#include "xmalloc.h"

#define MASTER_BACKLOG		1024
#define MASTER_ACCEPT_BURST	64
#define MASTER_PAUSE_MS		200	/* after EMFILE or a failed fork */
#define MASTER_STOP_MS		3000	/* children get this long on exit */
#define MASTER_WORKER_KEEP	(32 * 1024)	/* malloc keeps this, no more */
/*
 * Hub fds beyond one per client: up to 48 channels over max-clients
 * (HUB_CHANNEL_MARGIN in hub.c), and a few of its own.
 */
#define MASTER_FD_SLACK		64
#define MASTER_RELEASE_BURST	256	/* release datagrams read per round */
#define MASTER_LINGER_MS	2000	/* a released worker's time to exit */
#define MASTER_LINGER_SLACK	64	/* released workers beyond max-clients */

/* How many live workers serve clients from one address. */
struct ip_count {
	int			family;
	unsigned char		addr[16];
	size_t			n;
	RB_ENTRY(ip_count)	entry;
};
RB_HEAD(ip_tree, ip_count);

/*
 * A live worker process.  Once it says its client is closed it is
 * "released": no longer counted against --max-clients and
 * --max-clients-per-ip, though it runs for a moment more.
 */
struct child {
	pid_t			pid;
	struct ip_count		*ip;		/* NULL once released */
	int			released;
	int			killed;		/* lingered too long */
	int64_t			released_at;	/* ms, monotonic */
	RB_ENTRY(child)		entry;
	TAILQ_ENTRY(child)	release_entry;	/* released, not killed */
};
TAILQ_HEAD(child_list, child);
RB_HEAD(child_tree, child);

static struct {
	struct config		*cfg;
	reload_fn		 reload;
	struct pidfh		*pidfh;		/* -p */
	uid_t			 uid;		/* -u: what children run as */
	gid_t			 gid;
	int			 drop;		/* children drop to uid/gid */
	int			 ready_fd;	/* daemon mode: tell the parent */
	struct runtime		 rt;
	pid_t			 pid;		/* the master's own */
	pid_t			 hub_pid;
	time_t			 hub_started;
	int			 hub_ctl;	/* the control pipe to the hub */
	int			 sigpipe[2];	/* self-pipe: handler to loop */
	int			 spare_fd;	/* given up to refuse at EMFILE */
	int			 release_fd;	/* workers say "client closed" */
	int			 stopping;
} master;

/*
 * What changes with every client.  It lives in a mapping that no child
 * inherits (see nodepool.c), so the master's writes here leave no stale
 * copy of a page behind in each worker.
 */
static struct {
	struct child_tree	 children;
	struct ip_tree		 ips;
	struct nodepool		 child_pool;
	struct nodepool		 ip_pool;
	size_t			 nchildren;	/* counted: not released */
	size_t			 nreleased;	/* released, not yet reaped */
	struct child_list	 released;	/* in release order */
	int			 status_dirty;	/* client count to report */
	time_t			 status_sent;
} *live;

/* Orders children by pid. */
static int
child_cmp(struct child *a, struct child *b)
{
	return (a->pid > b->pid) - (a->pid < b->pid);
}

/* libbsd's tree.h marks static generators __unused but leaves it undefined. */
#ifndef __unused
#define __unused __attribute__((__unused__))
#endif
RB_GENERATE_STATIC(child_tree, child, entry, child_cmp)

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
 * Takes the listening sockets systemd passed instead of binding.
 * Returns 1 when there were some, 0 when not, -1 on a bad environment.
 */
static int
master_listen_systemd(struct config *cfg)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	int			 n, i, type;

	if ((n = systemd_listen_fds()) <= 0)
		return n;
	if (n > TALKNETD_MAX_LISTEN) {
		log_warnx("systemd passed %d sockets, more than %d", n,
		    TALKNETD_MAX_LISTEN);
		return -1;
	}
	for (i = 0; i < n; i++) {
		struct listen_addr *a = &cfg->listen[i];

		memset(a, 0, sizeof(*a));
		a->fd = SYSTEMD_LISTEN_FDS_START + i;
		sslen = sizeof(type);
		if (getsockopt(a->fd, SOL_SOCKET, SO_TYPE, &type, &sslen) ==
		    -1 || type != SOCK_STREAM) {
			log_warnx("fd %d from systemd is not a stream socket",
			    a->fd);
			return -1;
		}
		sslen = sizeof(ss);
		if (getsockname(a->fd, (struct sockaddr *)&ss, &sslen) == -1) {
			log_warn("getsockname fd %d", a->fd);
			return -1;
		}
		sockaddr_fmt((struct sockaddr *)&ss, sslen, a->text,
		    sizeof(a->text));
		log_info("listening on %s (socket from systemd)", a->text);
	}
	cfg->nlisten = (size_t)n;
	return 1;
}

/* Binds every configured address; returns 0, or -1 after logging. */
static int
master_listen(struct config *cfg)
{
	struct sockaddr_storage	 ss;
	struct listen_addr	*a;
	socklen_t		 sslen;
	char			 name[128];
	size_t			 i;
	int			 fd, one = 1, bound = 0;

	switch (master_listen_systemd(cfg)) {
	case 1:
		return 0;
	case -1:
		return -1;
	}
	for (i = 0; i < cfg->nlisten; i++) {
		a = &cfg->listen[i];
		fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (fd == -1) {
			if (a->optional) {
				log_debug("%s: %s", a->text, strerror(errno));
				continue;
			}
			log_warn("socket %s", a->text);
			return -1;
		}
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one)) == -1)
			log_warn("SO_REUSEADDR %s", a->text);
		/* "*" binds IPv4 and IPv6 separately; keep them apart. */
		if (a->ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
		    IPV6_V6ONLY, &one, sizeof(one)) == -1)
			log_warn("IPV6_V6ONLY %s", a->text);
		if (bind(fd, (struct sockaddr *)&a->ss, a->sslen) == -1 ||
		    listen(fd, MASTER_BACKLOG) == -1) {
			if (a->optional && (errno == EADDRNOTAVAIL ||
			    errno == EAFNOSUPPORT)) {
				close(fd);
				continue;
			}
			log_warn("bind %s", a->text);
			close(fd);
			return -1;
		}
		sslen = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == -1)
			fatal("getsockname");
		sockaddr_fmt((struct sockaddr *)&ss, sslen, name, sizeof(name));
		log_info("listening on %s", name);
		a->fd = fd;
		bound++;
	}
	if (bound == 0) {
		log_warnx("no address to listen on");
		return -1;
	}
	return 0;
}

/* Records the signal for the main loop; async-signal-safe. */
static void
master_signal(int sig)
{
	unsigned char	c = (unsigned char)sig;
	int		saved = errno;

	(void)write(master.sigpipe[1], &c, 1);
	errno = saved;
}

/* Installs the master's signal handlers. */
static void
master_signals(void)
{
	struct sigaction	sa;

	if (pipe2(master.sigpipe, O_NONBLOCK | O_CLOEXEC) == -1)
		fatal("pipe2");
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = master_signal;
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGCHLD, &sa, NULL) == -1 ||
	    sigaction(SIGTERM, &sa, NULL) == -1 ||
	    sigaction(SIGINT, &sa, NULL) == -1 ||
	    sigaction(SIGHUP, &sa, NULL) == -1)
		fatal("sigaction");
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) == -1)
		fatal("sigaction");
}

/*
 * What every child does first: the master's handlers and self-pipe are
 * not theirs, and no child may keep a listening socket.
 */
static void
master_child_setup(void)
{
	struct sigaction	sa;
	size_t			i;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_DFL;
	(void)sigaction(SIGCHLD, &sa, NULL);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGHUP, &sa, NULL);
	close(master.sigpipe[0]);
	close(master.sigpipe[1]);
	if (master.hub_ctl != -1)
		close(master.hub_ctl);
	close(master.release_fd);
	if (master.spare_fd != -1)
		close(master.spare_fd);
	if (master.ready_fd != -1)
		close(master.ready_fd);
	for (i = 0; i < master.cfg->nlisten; i++)
		if (master.cfg->listen[i].fd != -1)
			close(master.cfg->listen[i].fd);
	/* The pidfile is the master's: only it may remove it. */
	if (master.pidfh != NULL)
		close(pidfile_fileno(master.pidfh));
	/*
	 * The hub and the workers never need root: they were handed every
	 * fd they use.  Drop groups, then gid, then uid, and fail closed.
	 */
	if (master.drop) {
		if (setgroups(1, &master.gid) == -1)
			fatal("setgroups");
		if (setresgid(master.gid, master.gid, master.gid) == -1)
			fatal("setresgid");
		if (setresuid(master.uid, master.uid, master.uid) == -1)
			fatal("setresuid");
	}
}

/*
 * Forks the hub; it inherits the hub socket, the writable shm fd and the
 * read end of a new control pipe, on which the master sends it what a
 * reload changes.  The write end is the master's alone.
 */
static void
master_start_hub(void)
{
	pid_t	pid;
	int	p[2];

	if (master.hub_ctl != -1) {
		close(master.hub_ctl);
		master.hub_ctl = -1;
	}
	if (pipe2(p, O_CLOEXEC) == -1) {
		log_warn("hub control pipe");
		return;
	}
	/* A hub that does not read must never block the master. */
	if (fcntl(p[1], F_SETFL, O_NONBLOCK) == -1) {
		log_warn("hub control pipe");
		close(p[0]);
		close(p[1]);
		return;
	}
	master.rt.hub_ctl_fd = p[0];
	master.hub_ctl = p[1];
	switch (pid = fork()) {
	case -1:
		log_warn("fork hub");
		break;
	case 0:
		master_child_setup();
		/* Only workers report a closed client. */
		close(master.rt.release_fd);
		hub_main(master.cfg, &master.rt);
		/* NOTREACHED */
	default:
		master.hub_pid = pid;
		master.hub_started = time(NULL);
		log_info("hub started, pid %ld", (long)pid);
		break;
	}
	close(p[0]);
	master.rt.hub_ctl_fd = -1;
	if (pid == -1) {
		close(master.hub_ctl);
		master.hub_ctl = -1;
	}
}

/*
 * Sends the hub the limits a reload changed.  The hub writes them into
 * the table, where every worker picks them up: one frame, smaller than
 * PIPE_BUF, so it is written whole or not at all.
 */
static void
master_send_limits(void)
{
	struct buf	b;
	struct shm_live	l;
	char		store[sizeof(struct ipc_hdr) + sizeof(l)];
	ssize_t		n;

	if (master.hub_ctl == -1)
		return;
	conf_live_limits(master.cfg, &l);
	buf_init_store(&b, store, sizeof(store));
	ipc_put(&b, IPC_LIMITS, 0, &l, sizeof(l));
	n = write(master.hub_ctl, buf_head(&b), buf_pending(&b));
	if (n != (ssize_t)buf_pending(&b))
		log_warnx("reload: the hub did not take the new limits; "
		    "they apply from its next start");
	buf_free(&b);
}

/* Creates the private run directory and binds the hub's socket in it. */
static void
master_hub_socket(void)
{
	struct sockaddr_un	 sun;
	const char		*base;
	int			 fd;

	if ((base = getenv("RUNTIME_DIRECTORY")) == NULL &&
	    (base = getenv("TMPDIR")) == NULL)
		base = "/tmp";
	if ((size_t)snprintf(master.rt.rundir, sizeof(master.rt.rundir),
	    "%s/talknetd.XXXXXX", base) >= sizeof(master.rt.rundir))
		fatalx("run directory name too long: %s", base);
	/* mkdtemp makes it 0700: only our own uid may reach the hub. */
	if (mkdtemp(master.rt.rundir) == NULL)
		fatal("mkdtemp %s", master.rt.rundir);
	if ((size_t)snprintf(master.rt.hubpath, sizeof(master.rt.hubpath),
	    "%s/hub.sock", master.rt.rundir) >= sizeof(master.rt.hubpath))
		fatalx("hub socket path too long");

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, master.rt.hubpath, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path))
		fatalx("hub socket path too long: %s", master.rt.hubpath);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		fatal("socket");
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		fatal("bind %s", master.rt.hubpath);
	/* Workers running as -u USER must reach the hub: hand them both. */
	if (master.drop && (chown(master.rt.rundir, master.uid, master.gid) ==
	    -1 || chown(master.rt.hubpath, master.uid, master.gid) == -1))
		fatal("chown %s", master.rt.rundir);
	if (listen(fd, MASTER_BACKLOG) == -1)
		fatal("listen %s", master.rt.hubpath);
	/* The master keeps this socket, so a restarted hub gets the same. */
	master.rt.hub_listen_fd = fd;
}

/*
 * Creates the shared table.  The writable fd goes to the hub only; the
 * master maps the segment read-only from a read-only fd, so the workers
 * it forks inherit a mapping that mprotect cannot make writable.
 */
static void
master_shm_create(void)
{
	struct config	*cfg = master.cfg;
	const void	*mem;
	size_t		 size;
	int		 fd;

	size = shm_size(cfg->max_clients, cfg->max_rooms, cfg->max_name,
	    cfg->max_room);
	if (size == 0)
		fatalx("table size overflows");
	(void)snprintf(master.rt.shmname, sizeof(master.rt.shmname),
	    "/talknetd.%ld", (long)getpid());
	fd = shm_open(master.rt.shmname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600);
	/*
	 * The name carries our pid, so an object already there was left by
	 * a dead master that had the same pid: it is stale.
	 */
	if (fd == -1 && errno == EEXIST) {
		log_warnx("removing stale %s", master.rt.shmname);
		if (shm_unlink(master.rt.shmname) == -1)
			fatal("shm_unlink %s", master.rt.shmname);
		fd = shm_open(master.rt.shmname, O_RDWR | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600);
	}
	if (fd == -1)
		fatal("shm_open %s", master.rt.shmname);
	if (ftruncate(fd, (off_t)size) == -1)
		fatal("ftruncate %s", master.rt.shmname);
	if ((mem = shm_map_readonly(master.rt.shmname, size)) == NULL)
		fatal("mapping %s read-only", master.rt.shmname);
	/*
	 * Mapped, so the name can go: no process of our uid can open the
	 * table any more.  The master keeps the only writable fd, for the
	 * hubs it forks; workers close it (worker_close_fds).
	 */
	if (shm_unlink(master.rt.shmname) == -1)
		fatal("shm_unlink %s", master.rt.shmname);
	master.rt.shm_fd = fd;
	master.rt.shm_ro = mem;
	master.rt.shm_size = size;
	log_info("table %s: %zu bytes for %zu clients and %zu rooms",
	    master.rt.shmname, size, cfg->max_clients, cfg->max_rooms);
	master.rt.shmname[0] = '\0';
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

/* Forks one worker for an accepted connection. */
static int
master_fork_worker(int fd, const char *addr, struct ip_count *ip)
{
	struct child	*c;
	pid_t		 pid;

	if ((c = nodepool_get(&live->child_pool)) == NULL) {
		log_warn("connection from %s refused", addr);
		return -1;
	}
	switch (pid = master_fork_light()) {
	case -1:
		log_warn("connection from %s refused: fork", addr);
		nodepool_put(&live->child_pool, c);
		return -1;
	case 0:
		master_child_setup();
		close(master.rt.hub_listen_fd);
		worker_main(master.cfg, &master.rt, fd, addr);
		/* NOTREACHED */
	default:
		memset(c, 0, sizeof(*c));
		c->pid = pid;
		c->ip = ip;
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
static void
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

/*
 * Reads the workers' "client closed" datagrams.  The sender is the pid
 * the kernel wrote in the credentials, never anything in the datagram.
 * A worker running as -u USER cannot put another pid there, so it can
 * only give up its own place early (and lingering is cut short by
 * master_linger).  Without -u, workers run as root and CAP_SYS_ADMIN
 * lets one claim any pid: a compromised worker could free another's
 * place (more connections get in), and so have master_linger kill that
 * worker, which as root it could do itself anyway.
 */
static void
master_release_read(void)
{
	union {
		struct cmsghdr	hdr;
		/* Room for the credentials only: fds a hostile worker
		 * attaches do not fit, and the kernel closes them. */
		char		buf[CMSG_SPACE(sizeof(struct ucred))];
	}		 cbuf;
	struct msghdr	 msg;
	struct iovec	 iov;
	struct cmsghdr	*cm;
	struct ucred	 cred;
	struct child	 key, *c;
	char		 b;
	int		 i;

	for (i = 0; i < MASTER_RELEASE_BURST; i++) {
		memset(&msg, 0, sizeof(msg));
		iov.iov_base = &b;
		iov.iov_len = 1;
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = sizeof(cbuf.buf);
		if (recvmsg(master.release_fd, &msg, MSG_DONTWAIT) == -1) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				log_warn("recvmsg");
			return;
		}
		cm = CMSG_FIRSTHDR(&msg);
		if (cm == NULL || cm->cmsg_level != SOL_SOCKET ||
		    cm->cmsg_type != SCM_CREDENTIALS ||
		    cm->cmsg_len != CMSG_LEN(sizeof(cred)))
			continue;
		memcpy(&cred, CMSG_DATA(cm), sizeof(cred));
		key.pid = cred.pid;
		/* An unknown pid, or one released already: nothing. */
		if ((c = RB_FIND(child_tree, &live->children, &key)) != NULL)
			master_release(c);
	}
}

/*
 * A released worker has had MASTER_LINGER_MS to exit: kill it.  Its
 * linger needs 500 ms at most; one that stays would be a process the
 * limits no longer count.  Returns the ms to the next such, or -1.
 */
static int
master_linger(void)
{
	struct child	*c;
	int64_t		 now = master_now_ms();

	while ((c = TAILQ_FIRST(&live->released)) != NULL) {
		if (now - c->released_at < MASTER_LINGER_MS)
			return (int)(c->released_at + MASTER_LINGER_MS - now);
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

/* Accepts connections on one listener; returns -1 to pause accepting. */
static int
master_accept(int lfd)
{
	struct sockaddr_storage	 ss;
	struct ip_count		*ip;
	socklen_t		 sslen;
	char			 name[128];
	int			 fd, i;

	for (i = 0; i < MASTER_ACCEPT_BURST; i++) {
		sslen = sizeof(ss);
		fd = accept4(lfd, (struct sockaddr *)&ss, &sslen,
		    SOCK_CLOEXEC);
		if (fd == -1) {
			switch (errno) {
			case EINTR:
			case ECONNABORTED:
				continue;
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
			log_warnx("connection from %s refused: %zu from that "
			    "address (--max-clients-per-ip)", name,
			    master.cfg->max_clients_per_ip);
			close(fd);
			continue;
		}
		if (master_fork_worker(fd, name, ip) == -1) {
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

/* "SYS" for SIGSYS (a worker's forbidden system call), for the log. */
static const char *
master_signame(int sig)
{
#ifdef HAVE_SIGABBREV_NP
	const char	*name;

	if ((name = sigabbrev_np(sig)) != NULL)
		return name;
#endif
	return sig == SIGSYS ? "SYS" : "?";
}

/* Reaps every child that exited; restarts the hub if it was one. */
static void
master_reap(void)
{
	struct child	 key, *c;
	pid_t		 pid;
	int		 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == master.hub_pid) {
			master.hub_pid = 0;
			if (master.hub_ctl != -1) {
				close(master.hub_ctl);
				master.hub_ctl = -1;
			}
			if (!master.stopping)
				log_warnx("hub %ld exited (status 0x%x)",
				    (long)pid, status);
			continue;
		}
		key.pid = pid;
		if ((c = RB_FIND(child_tree, &live->children, &key)) != NULL) {
			RB_REMOVE(child_tree, &live->children, c);
			if (!c->released) {
				ip_release(c->ip);
				live->nchildren--;
			} else {
				if (!c->killed)
					TAILQ_REMOVE(&live->released, c,
					    release_entry);
				live->nreleased--;
			}
			nodepool_put(&live->child_pool, c);
			live->status_dirty = 1;
		}
		if (WIFSIGNALED(status) && !master.stopping)
			log_warnx("worker %ld killed by signal %d (SIG%s)",
			    (long)pid, WTERMSIG(status),
			    master_signame(WTERMSIG(status)));
	}
}

/*
 * Removes what the master created, as far as it got: the table's name
 * (a start that failed before master_shm_create unlinked it), the
 * hub's socket and directory, the pidfile.  Each is forgotten once
 * removed, so running it twice is harmless.
 */
static void
master_cleanup(void)
{
	if (master.rt.shmname[0] != '\0') {
		if (shm_unlink(master.rt.shmname) == -1)
			log_warn("shm_unlink %s", master.rt.shmname);
		master.rt.shmname[0] = '\0';
	}
	if (master.rt.hubpath[0] != '\0') {
		if (unlink(master.rt.hubpath) == -1 && errno != ENOENT)
			log_warn("unlink %s", master.rt.hubpath);
		master.rt.hubpath[0] = '\0';
	}
	if (master.rt.rundir[0] != '\0') {
		if (rmdir(master.rt.rundir) == -1)
			log_warn("rmdir %s", master.rt.rundir);
		master.rt.rundir[0] = '\0';
	}
	if (master.pidfh != NULL) {
		if (pidfile_remove(master.pidfh) == -1)
			log_warn("pidfile_remove");
		master.pidfh = NULL;
	}
}

/* A master that exits on an error still removes what it created. */
static void
master_atexit(void)
{
	/* Children inherit the handler; only the master's own exit counts. */
	if (getpid() == master.pid)
		master_cleanup();
}

/* Stops every child, removes the table and the hub socket, and exits. */
static void
master_shutdown(void)
{
	struct child	*c;
	struct timespec	 ts = { 0, 20 * 1000 * 1000 };
	size_t		 i;
	int		 waited;

	master.stopping = 1;
	log_info("shutting down");
	(void)systemd_notify("STOPPING=1");
	for (i = 0; i < master.cfg->nlisten; i++)
		if (master.cfg->listen[i].fd != -1)
			close(master.cfg->listen[i].fd);
	if (master.hub_pid > 0)
		(void)kill(master.hub_pid, SIGTERM);
	RB_FOREACH(c, child_tree, &live->children)
		(void)kill(c->pid, SIGTERM);
	for (waited = 0; waited < MASTER_STOP_MS; waited += 20) {
		master_reap();
		if (master.hub_pid == 0 && RB_EMPTY(&live->children))
			break;
		(void)nanosleep(&ts, NULL);
	}
	if (master.hub_pid > 0)
		(void)kill(master.hub_pid, SIGKILL);
	RB_FOREACH(c, child_tree, &live->children)
		(void)kill(c->pid, SIGKILL);
	while (master.hub_pid > 0 || !RB_EMPTY(&live->children)) {
		if (waitpid(-1, NULL, 0) == -1 && errno == ECHILD)
			break;
		master_reap();
	}
	master_cleanup();
	log_info("stopped");
	exit(0);
}

/*
 * SIGHUP: re-reads the configuration.  The live settings take effect in
 * every process: the master's own, the hub's through its control pipe,
 * and the workers' through the table.  A changed setting that needs a
 * restart is refused, and the running value stays.
 */
static void
master_reload(void)
{
	struct config	*cur = master.cfg, *next;
	const char	*key;
	char		 err[512];

	(void)systemd_notify("RELOADING=1");
	next = xcalloc(1, sizeof(*next));
	if (master.reload(next, err, sizeof(err)) == -1) {
		log_warnx("reload: %s; keeping the running configuration",
		    err);
	} else {
		if ((key = conf_restart_needed(cur, next)) != NULL)
			log_warnx("reload: %s changed: refused, it needs a "
			    "restart; the other settings apply", key);
		cur->log_level = next->log_level;
		cur->max_line = next->max_line;
		cur->max_queue = next->max_queue;
		cur->max_clients_per_ip = next->max_clients_per_ip;
		cur->login_timeout = next->login_timeout;
		cur->rate_limit = next->rate_limit;
		cur->rate_burst = next->rate_burst;
		cur->stall_timeout = next->stall_timeout;
		cur->send_buffer = next->send_buffer;
		if (cur->max_line > master.rt.max_line_seen)
			master.rt.max_line_seen = cur->max_line;
		log_set_level(cur->log_level);
		master_send_limits();
		log_info("reloaded: log-level %d, max-line %zu, max-queue %zu, "
		    "max-clients-per-ip %zu, login-timeout %zu, rate-limit %zu, "
		    "rate-burst %zu, stall-timeout %zu", cur->log_level,
		    cur->max_line, cur->max_queue, cur->max_clients_per_ip,
		    cur->login_timeout, cur->rate_limit, cur->rate_burst,
		    cur->stall_timeout);
	}
	free(next);
	(void)systemd_notify("READY=1");
}

/* Tells systemd how many clients there are, at most once a second. */
static void
master_status(void)
{
	time_t	now = time(NULL);

	if (!live->status_dirty || now == live->status_sent)
		return;
	live->status_dirty = 0;
	live->status_sent = now;
	(void)systemd_notify("STATUS=%zu clients", live->nchildren);
}

/* Handles the signals the handler recorded. */
static void
master_dispatch_signals(void)
{
	unsigned char	sigs[64];
	ssize_t		n, i;

	while ((n = read(master.sigpipe[0], sigs, sizeof(sigs))) > 0) {
		for (i = 0; i < n; i++) {
			switch (sigs[i]) {
			case SIGCHLD:
				master_reap();
				break;
			case SIGTERM:
			case SIGINT:
				master_shutdown();
				break;
			case SIGHUP:
				master_reload();
				break;
			}
		}
	}
}

/* Looks up -u USER; the master itself keeps root for its clean-up. */
static void
master_user(void)
{
	struct passwd	*pw;

	if (master.cfg->user[0] == '\0') {
		if (geteuid() == 0)
			log_warnx("running as root: use -u USER so the hub and "
			    "the workers do not");
		return;
	}
	if ((pw = getpwnam(master.cfg->user)) == NULL)
		fatalx("user %s: no such user", master.cfg->user);
	if (geteuid() != 0)
		fatalx("-u %s needs talknetd to start as root",
		    master.cfg->user);
	master.uid = pw->pw_uid;
	master.gid = pw->pw_gid;
	master.drop = 1;
}

/*
 * The hub holds one channel per worker, so it needs about max-clients
 * descriptors; children inherit the limit.  Raise the soft limit as far
 * as the hard one allows, and say so if that is still short.
 */
static void
master_fd_limit(void)
{
	struct rlimit	rl;
	rlim_t		need, had;

	need = (rlim_t)master.cfg->max_clients + MASTER_FD_SLACK;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("getrlimit");
		return;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return;
	had = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ?
	    need : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("setrlimit");
		rl.rlim_cur = had;
	} else
		log_debug("open files limit raised to %llu",
		    (unsigned long long)rl.rlim_cur);
	if (rl.rlim_cur < need)
		log_warnx("open files limit %llu is below the %llu that "
		    "--max-clients %zu needs: raise it (LimitNOFILE=, "
		    "ulimit -n)", (unsigned long long)rl.rlim_cur,
		    (unsigned long long)need, master.cfg->max_clients);
}

/* Opens the pidfile; a second instance with the same one stops here. */
static void
master_pidfile(void)
{
	pid_t	other;

	if (master.cfg->pidfile[0] == '\0')
		return;
	master.pidfh = pidfile_open(master.cfg->pidfile, 0644, &other);
	if (master.pidfh == NULL) {
		if (errno == EEXIST)
			fatalx("already running as pid %ld (pidfile %s)",
			    (long)other, master.cfg->pidfile);
		fatal("pidfile %s", master.cfg->pidfile);
	}
}

/*
 * Daemon mode: the parent waits on a pipe and exits 0 only when the
 * daemon says it is ready; if the daemon dies first, the parent exits 1
 * (its errors went to the same stderr).
 */
static void
master_daemonize(void)
{
	int	p[2];
	char	c;
	pid_t	pid;

	master.ready_fd = -1;
	if (master.cfg->foreground)
		return;
	if (pipe2(p, O_CLOEXEC) == -1)
		fatal("pipe2");
	switch (pid = fork()) {
	case -1:
		fatal("fork");
	case 0:
		close(p[0]);
		master.ready_fd = p[1];
		if (setsid() == -1)
			fatal("setsid");
		if (chdir("/") == -1)
			fatal("chdir /");
		return;
	default:
		close(p[1]);
		if (read(p[0], &c, 1) == 1)
			_exit(0);
		(void)fprintf(stderr, "talknetd: the daemon did not start\n");
		_exit(1);
	}
}

/* Daemon mode, once serving: syslog, no terminal, and tell the parent. */
static void
master_detach(void)
{
	int	fd;

	if (master.ready_fd == -1)
		return;
	log_init(0, master.cfg->log_level);
	if ((fd = open("/dev/null", O_RDWR)) == -1)
		fatal("/dev/null");
	if (dup2(fd, STDIN_FILENO) == -1 || dup2(fd, STDOUT_FILENO) == -1 ||
	    dup2(fd, STDERR_FILENO) == -1)
		fatal("dup2");
	if (fd > STDERR_FILENO)
		close(fd);
	if (write(master.ready_fd, "", 1) != 1)
		fatal("write to the starting parent");
	close(master.ready_fd);
	master.ready_fd = -1;
}

/* The master process: set up, start the hub, accept until told to stop. */
void
master_main(struct config *cfg, reload_fn reload)
{
	struct pollfd	 pfd[TALKNETD_MAX_LISTEN + 2];
	size_t		 i, npfd;
	int		 timeout, left, paused = 0;

	/*
	 * Not dumpable: a process of our uid (a worker, when there is no
	 * -u) may not ptrace the master, read its memory or its fds
	 * through /proc (the table's writable fd).  Children inherit it.
	 */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("prctl PR_SET_DUMPABLE");
	master.cfg = cfg;
	master.reload = reload;
	master.hub_ctl = -1;
	master.rt.hub_ctl_fd = -1;
	master.rt.max_line_seen = cfg->max_line;
	/* Held in reserve: master_refuse spends it to turn a client away. */
	if ((master.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1)
		fatal("/dev/null");
	/*
	 * Set once here and inherited by every worker: thousands of them,
	 * so a burst's buffers go back to the kernel when freed instead of
	 * staying in each heap, and no worker touches malloc's state to
	 * set it (each page it writes is a copy-on-write fault).
	 */
	(void)mallopt(M_MMAP_THRESHOLD, MASTER_WORKER_KEEP);
	(void)mallopt(M_TRIM_THRESHOLD, MASTER_WORKER_KEEP);
	master_user();
	master_fd_limit();
	master_pidfile();
	master_daemonize();
	master.pid = getpid();
	/* After daemonizing: the daemon is a child, and would not have it. */
	if ((live = nodepool_map(sizeof(*live))) == NULL)
		fatal("mmap");
	RB_INIT(&live->children);
	RB_INIT(&live->ips);
	TAILQ_INIT(&live->released);
	nodepool_init(&live->child_pool, sizeof(struct child));
	nodepool_init(&live->ip_pool, sizeof(struct ip_count));
	if (atexit(master_atexit) != 0)
		fatalx("atexit");
	title_set("master");
	/* Handlers first: a signal right after "listening" must not kill. */
	master_signals();
	/* The workers' filter, built once here rather than in each. */
	sandbox_init();
	if (master_listen(cfg) == -1)
		exit(1);
	if (master.pidfh != NULL && pidfile_write(master.pidfh) == -1)
		fatal("pidfile_write");
	master_hub_socket();
	master_release_open();
	master_shm_create();
	master_detach();
	master_start_hub();
	(void)systemd_notify("READY=1\nSTATUS=0 clients\nMAINPID=%ld",
	    (long)getpid());

	for (;;) {
		npfd = 0;
		pfd[npfd].fd = master.sigpipe[0];
		pfd[npfd++].events = POLLIN;
		pfd[npfd].fd = master.release_fd;
		pfd[npfd++].events = POLLIN;
		for (i = 0; i < cfg->nlisten && !paused; i++) {
			if (cfg->listen[i].fd == -1)
				continue;
			pfd[npfd].fd = cfg->listen[i].fd;
			pfd[npfd++].events = POLLIN;
		}
		timeout = -1;
		if (live->status_dirty)
			timeout = 1000;
		if (paused || master.hub_pid == 0)
			timeout = MASTER_PAUSE_MS;
		if ((left = master_linger()) != -1 &&
		    (timeout == -1 || left < timeout))
			timeout = left;
		if (poll(pfd, npfd, timeout) == -1) {
			if (errno == EINTR)
				continue;
			fatal("poll");
		}
		paused = 0;
		if (pfd[0].revents & POLLIN)
			master_dispatch_signals();
		/* Releases first: they make room for the accepts below. */
		if (pfd[1].revents & POLLIN)
			master_release_read();
		/* A hub that keeps dying is restarted at most once a second. */
		if (master.hub_pid == 0 && time(NULL) > master.hub_started)
			master_start_hub();
		for (i = 2; i < npfd; i++) {
			if ((pfd[i].revents & POLLIN) &&
			    master_accept(pfd[i].fd) == -1)
				paused = 1;
		}
		master_status();
	}
}
