/*
 * master_setup.c: what the master makes once, before its loop, and
 * holds until it exits: the listening sockets (its own or systemd's),
 * the hub's socket in a private run directory, the shared table, the
 * -u user, the open files limit, the pidfile, and daemon mode.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/tree.h>
#include <sys/un.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <libutil.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "log.h"
#include "master.h"
#include "shm.h"
#include "systemd.h"
#include "talknetd.h"

#define MASTER_BACKLOG		1024
/*
 * Hub fds beyond one per client: up to 48 channels over max-clients
 * (HUB_CHANNEL_MARGIN in hub.c), and a few of its own.
 */
#define MASTER_FD_SLACK		64

/*
 * Takes the listening sockets systemd passed instead of binding.  Done
 * before daemonizing: LISTEN_PID names the process systemd started, and
 * the daemon is its child.  Returns 1 when there were some, 0 when not;
 * exits on a bad environment or socket.
 */
int
master_listen_systemd(struct config *cfg)
{
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	int			 n, i, type;

	if ((n = systemd_listen_fds()) == 0)
		return 0;
	if (n == -1)
		fatalx("LISTEN_FDS or LISTEN_PID from systemd is malformed");
	if (n > TALKNETD_MAX_LISTEN)
		fatalx("systemd passed %d sockets, more than %d", n,
		    TALKNETD_MAX_LISTEN);
	for (i = 0; i < n; i++) {
		struct listen_addr *a = &cfg->listen[i];

		memset(a, 0, sizeof(*a));
		a->fd = SYSTEMD_LISTEN_FDS_START + i;
		sslen = sizeof(type);
		if (getsockopt(a->fd, SOL_SOCKET, SO_TYPE, &type, &sslen) ==
		    -1 || type != SOCK_STREAM)
			fatalx("fd %d from systemd is not a stream socket",
			    a->fd);
		sslen = sizeof(ss);
		if (getsockname(a->fd, (struct sockaddr *)&ss, &sslen) == -1)
			fatal("getsockname fd %d", a->fd);
		sockaddr_fmt((struct sockaddr *)&ss, sslen, a->text,
		    sizeof(a->text));
		/* FileDescriptorName=tls in the socket unit. */
		a->tls = strcmp(systemd_listen_name(i), "tls") == 0;
	}
	cfg->nlisten = (size_t)n;
	return 1;
}

/* Binds every configured address; returns 0, or -1 after logging. */
int
master_listen(struct config *cfg)
{
	struct sockaddr_storage	 ss;
	struct listen_addr	*a;
	socklen_t		 sslen;
	char			 name[128];
	size_t			 i;
	int			 fd, one = 1, bound = 0;

	/* Taken before daemonizing; said here, where the log goes. */
	if (master.systemd) {
		for (i = 0; i < cfg->nlisten; i++)
			log_info("listening on %s%s (socket from systemd)",
			    cfg->listen[i].tls ? "tls://" : "",
			    cfg->listen[i].text);
		return 0;
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
			fatal("cannot listen on %s", a->text);
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
			/* An error, and it names the address: exit 1. */
			fatal("cannot listen on %s", a->text);
		}
		sslen = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == -1)
			fatal("getsockname");
		sockaddr_fmt((struct sockaddr *)&ss, sslen, name, sizeof(name));
		log_info("listening on %s%s", a->tls ? "tls://" : "", name);
		a->fd = fd;
		bound++;
	}
	if (bound == 0)
		fatalx("no address to listen on");
	return 0;
}

/* Creates the private run directory and binds the hub's socket in it. */
void
master_hub_socket(void)
{
	struct sockaddr_un	 sun;
	const char		*base;
	int			 fd;

	if ((base = getenv("RUNTIME_DIRECTORY")) == NULL &&
	    (base = getenv("TMPDIR")) == NULL)
		base = "/tmp";
	master_remove_stale(base);
	/* The pid in the name tells a later start whose directory it is. */
	if ((size_t)snprintf(master.rt.rundir, sizeof(master.rt.rundir),
	    "%s/talknetd.%ld.XXXXXX", base, (long)master.pid) >=
	    sizeof(master.rt.rundir))
		fatalx("run directory name too long: %s", base);
	/* mkdtemp makes it 0700: only our own uid may reach the hub. */
	if (mkdtemp(master.rt.rundir) == NULL)
		fatal("mkdtemp %s", master.rt.rundir);
	/*
	 * Locked for as long as we live (the fd is never closed): a later
	 * start removes only a directory nobody holds, whatever its pid
	 * and our argv[0] say.  Workers close their copy at fork.
	 */
	if ((fd = open(master.rt.rundir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 || flock(fd, LOCK_EX | LOCK_NB) == -1)
		fatal("locking %s", master.rt.rundir);
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
void
master_shm_create(void)
{
	struct config	*cfg = master.cfg;
	const void	*mem;
	size_t		 size;
	int		 fd;

	/* Rows for every user the node sees: its own and, with --cluster,
	 * the other nodes' (--max-users, at least --max-clients). */
	size = shm_size(cfg->max_users, cfg->max_rooms, cfg->max_name,
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
	/* Until the name goes, the lock tells a later start it is live. */
	if (flock(fd, LOCK_EX | LOCK_NB) == -1)
		fatal("locking %s", master.rt.shmname);
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
	if (cfg->max_users != cfg->max_clients)
		log_info("table %s: %zu bytes for %zu users (%zu clients "
		    "here) and %zu rooms", master.rt.shmname, size,
		    cfg->max_users, cfg->max_clients, cfg->max_rooms);
	else
		log_info("table %s: %zu bytes for %zu clients and %zu rooms",
		    master.rt.shmname, size, cfg->max_clients, cfg->max_rooms);
	master.rt.shmname[0] = '\0';
}

/* Looks up -u USER; the master itself keeps root for its clean-up. */
void
master_user(void)
{
	struct passwd	*pw;

	if (master.cfg->user[0] == '\0') {
		if (geteuid() == 0)
			log_warnx("running as root without -u USER: the hub "
			    "and the workers, which serve untrusted clients, "
			    "run as root too; start with -u USER to run them "
			    "as that user instead");
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
void
master_fd_limit(void)
{
	struct rlimit	rl;
	rlim_t		need, had;

	/* Each idle spare holds one: its hand-off socket. */
	need = (rlim_t)master.cfg->max_clients + MASTER_FD_SLACK +
	    2 * master.cfg->max_spare;
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
		    "--max-clients %zu and --max-spare %zu need: raise it "
		    "(LimitNOFILE=, ulimit -n)", (unsigned long long)rl.rlim_cur,
		    (unsigned long long)need, master.cfg->max_clients,
		    master.cfg->max_spare);
}

/* Opens the pidfile; a second instance with the same one stops here. */
void
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
void
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
		/* The daemon is the master now: its exit cleans up. */
		master.pid = getpid();
		close(p[0]);
		master.ready_fd = p[1];
		if (setsid() == -1)
			fatal("setsid");
		if (chdir("/") == -1)
			fatal("chdir /");
		return;
	default:
		/* The starting parent dies of a signal as before. */
		master_signals_release();
		close(p[1]);
		if (read(p[0], &c, 1) == 1)
			_exit(0);
		(void)fprintf(stderr, "talknetd: the daemon did not start\n");
		_exit(1);
	}
}

/*
 * Daemon mode: the "listening on" lines went to the starting terminal,
 * before the switch to syslog; they go to syslog too, where the admin
 * of a daemon looks.  Sockets from systemd have no configured address.
 */
static void
master_log_listening(void)
{
	struct sockaddr_storage	 ss;
	struct listen_addr	*a;
	socklen_t		 sslen;
	char			 name[128];
	size_t			 i;

	for (i = 0; i < master.cfg->nlisten; i++) {
		a = &master.cfg->listen[i];
		if (a->fd == -1)
			continue;
		sslen = sizeof(ss);
		if (getsockname(a->fd, (struct sockaddr *)&ss, &sslen) == -1) {
			log_warn("getsockname fd %d", a->fd);
			continue;
		}
		sockaddr_fmt((struct sockaddr *)&ss, sslen, name, sizeof(name));
		log_info("listening on %s%s%s", a->tls ? "tls://" : "", name,
		    a->sslen == 0 ? " (socket from systemd)" : "");
	}
}

/* Daemon mode, once serving: syslog, no terminal, and tell the parent. */
void
master_detach(void)
{
	int	fd;

	if (master.ready_fd == -1)
		return;
	log_init(0, master.cfg->log_level);
	master_log_listening();
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
