/*
 * master.c: the parent of every talknetd process.  It owns the listening
 * sockets, the shared-memory segment and the hub's Unix socket; it
 * starts the hub, forks one worker per accepted connection, reaps them,
 * and restarts the hub if it dies.  It never reads client traffic.
 * This file is the process; master_child.c accepts, forks and counts
 * the workers.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/file.h>
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

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND	0
#endif

#include "addr.h"
#include "conf.h"
#include "control.h"
#include "ipc.h"
#include "log.h"
#include "master.h"
#include "nodepool.h"
#include "sandbox.h"
#include "shm.h"
#include "systemd.h"
#include "talknetd.h"
#include "title.h"
#include "tls_server.h"
#include "xmalloc.h"

#define MASTER_BACKLOG		1024
#define MASTER_PAUSE_MS		200	/* after EMFILE or a failed fork */
#define MASTER_STOP_MS		3000	/* children get this long on exit */
#define MASTER_STOP_VG_MS	30000	/* the same, under valgrind */
#define MASTER_WORKER_KEEP	(32 * 1024)	/* malloc keeps this, no more */
/*
 * Hub fds beyond one per client: up to 48 channels over max-clients
 * (HUB_CHANNEL_MARGIN in hub.c), and a few of its own.
 */
#define MASTER_FD_SLACK		64

/* The master's own state (master.h). */
struct master_state	 master;

/* What changes with every client, in memory no child inherits. */
struct master_live	*live;

/*
 * Takes the listening sockets systemd passed instead of binding.  Done
 * before daemonizing: LISTEN_PID names the process systemd started, and
 * the daemon is its child.  Returns 1 when there were some, 0 when not;
 * exits on a bad environment or socket.
 */
static int
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
static int
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

/* Records the signal for the main loop; async-signal-safe. */
static void
master_signal(int sig)
{
	unsigned char	c = (unsigned char)sig;
	int		saved = errno;

	(void)write(master.sigpipe[1], &c, 1);
	errno = saved;
}

/*
 * Holds every signal from the start until master_signals: one that came
 * between the pidfile (or the control socket) and the handlers would end
 * the master without the clean-up that removes them.  It waits instead.
 */
void
master_signals_hold(void)
{
	sigset_t	all;

	if (sigfillset(&all) == -1 || sigprocmask(SIG_BLOCK, &all, NULL) == -1)
		fatal("sigprocmask");
}

/* Lets every signal through: held ones, or a mask the starter left. */
void
master_signals_release(void)
{
	sigset_t	none;

	if (sigemptyset(&none) == -1 ||
	    sigprocmask(SIG_SETMASK, &none, NULL) == -1)
		fatal("sigprocmask");
}

/* The signals the master's loop serves, through its self-pipe. */
static const int master_caught[] = {
	SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1
};

/*
 * Installs the master's signal handlers, then takes the signals that
 * waited (master_signals_hold).  The mask is emptied, not restored: a
 * master started with SIGHUP or SIGTERM blocked would never see them.
 */
static void
master_signals(void)
{
	size_t	i;

	if (pipe2(master.sigpipe, O_NONBLOCK | O_CLOEXEC) == -1)
		fatal("pipe2");
	for (i = 0; i < sizeof(master_caught) / sizeof(master_caught[0]); i++)
		if (master_sig_set(master_caught[i], master_signal,
		    SA_RESTART) == -1)
			fatal("sigaction");
	if (master_sig_set(SIGPIPE, SIG_IGN, 0) == -1)
		fatal("sigaction");
	master_signals_extra();
	master_signals_release();
}

/*
 * What every child does first: the master's handlers and self-pipe are
 * not theirs, and no child may keep a listening socket.
 */
void
master_child_setup(void)
{
	size_t	i;

	for (i = 0; i < sizeof(master_caught) / sizeof(master_caught[0]); i++)
		(void)master_sig_set(master_caught[i], SIG_DFL, 0);
	master_signals_child();
	/* Held across fork: one sent to us now finds SIG_DFL, not the
	 * master's handler (which would only write to the master's pipe). */
	master_signals_release();
	control_child();
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
	/*
	 * Die with the master, set here after the drop (which clears it):
	 * a master killed before hub_main or worker_main set it would send
	 * nothing, and the child would outlive it.  Killed before this
	 * line, it is already gone: the parent is someone else.
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
		fatal("prctl PR_SET_PDEATHSIG");
	if (getppid() != master.pid)
		_exit(0);
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
	master_signals_hold();
	switch (pid = fork()) {
	case -1:
		master_signals_release();
		log_warn("fork hub");
		break;
	case 0:
		master_child_setup();
		/* The hub never holds the TLS private key. */
		tls_server_forget();
		/* Only workers report a closed client. */
		close(master.rt.release_fd);
		hub_main(master.cfg, &master.rt);
		/* NOTREACHED */
	default:
		master_signals_release();
		master.hub_pid = pid;
		master.hub_started = time(NULL);
		master.hub_starts++;
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
 * Sends the hub one control frame, smaller than PIPE_BUF, so it is
 * written whole or not at all: the pipe never blocks the master.
 */
int
master_hub_send(uint16_t type, const void *payload, size_t len)
{
	struct buf	b;
	char		store[sizeof(struct ipc_hdr) + sizeof(struct shm_live)];
	ssize_t		n;
	int		r = 0;

	if (master.hub_ctl == -1)
		return -1;
	buf_init_store(&b, store, sizeof(store));
	ipc_put(&b, type, 0, payload, len);
	n = write(master.hub_ctl, buf_head(&b), buf_pending(&b));
	if (n != (ssize_t)buf_pending(&b))
		r = -1;
	buf_free(&b);
	return r;
}

/*
 * Sends the hub the limits a reload changed.  The hub writes them into
 * the table, where every worker picks them up.
 */
static void
master_send_limits(void)
{
	struct shm_live	l;

	if (master.hub_ctl == -1)
		return;
	conf_live_limits(master.cfg, &l);
	if (master_hub_send(IPC_LIMITS, &l, sizeof(l)) == -1)
		log_warnx("reload: the hub did not take the new limits; "
		    "they apply from its next start");
}

/* Sets the log level in every process (talknetctl log level). */
void
master_log_level(int level)
{
	master.cfg->log_level = level;
	log_set_level(level);
	master_send_limits();
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
	log_info("table %s: %zu bytes for %zu clients and %zu rooms",
	    master.rt.shmname, size, cfg->max_clients, cfg->max_rooms);
	master.rt.shmname[0] = '\0';
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
	control_close();
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
	int		 waited, stop_ms;

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
	/* Under valgrind each child's exit runs the leak check: slow. */
	stop_ms = RUNNING_ON_VALGRIND ? MASTER_STOP_VG_MS : MASTER_STOP_MS;
	for (waited = 0; waited < stop_ms; waited += 20) {
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
 * SIGHUP and talknetctl reload: re-reads the configuration.  The live
 * settings take effect in every process: the master's own, the hub's
 * through its control pipe, and the workers' through the table.  Every
 * changed setting that needs a restart is named and refused, and its
 * running value stays.  Under socket activation the listen lines are not
 * compared: systemd's sockets are served instead of them.
 */
int
master_reload(char *msg, size_t len)
{
	struct config	*cur = master.cfg, *next;
	char		 err[512], keys[256];
	size_t		 n;
	int		 r = 0;

	(void)systemd_notify("RELOADING=1");
	next = xcalloc(1, sizeof(*next));
	if (master.reload(next, err, sizeof(err)) == -1) {
		log_warnx("reload: %s; keeping the running configuration",
		    err);
		(void)snprintf(msg, len, "%s; keeping the running "
		    "configuration", err);
		r = -1;
	} else {
		n = conf_restart_changes(cur, next, master.systemd, keys,
		    sizeof(keys));
		if (n > 0)
			log_warnx("reload: %s changed: refused, %s a restart; "
			    "the other settings apply", keys,
			    n == 1 ? "it needs" : "they need");
		conf_apply_live(cur, next);
		cur->reloads++;
		if (cur->max_line > master.rt.max_line_seen)
			master.rt.max_line_seen = cur->max_line;
		log_set_level(cur->log_level);
		master_send_limits();
		(void)snprintf(err, sizeof(err), "log-level %s, max-line %zu, "
		    "max-queue %zu, max-clients-per-ip %zu, login-timeout %zu, "
		    "rate-limit %zu, rate-burst %zu, stall-timeout %zu",
		    log_level_name(cur->log_level), cur->max_line,
		    cur->max_queue, cur->max_clients_per_ip, cur->login_timeout,
		    cur->rate_limit, cur->rate_burst, cur->stall_timeout);
		log_info("reloaded: %s", err);
		if (n > 0)
			(void)snprintf(msg, len, "reloaded: %s\nnot applied, "
			    "%s a restart: %s", err, n == 1 ? "needs" :
			    "they need", keys);
		else
			(void)snprintf(msg, len, "reloaded: %s", err);
		r = master_tls_reload(msg, len);
	}
	free(next);
	(void)systemd_notify("READY=1");
	return r;
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
			case SIGHUP: {
				char	msg[1024];

				(void)master_reload(msg, sizeof(msg));
				break;
			}
			case SIGUSR1:
				control_log_stats();
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
static void
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

static void	master_loop(struct config *) __attribute__((noreturn));

/* The master process: set up, start the hub, accept until told to stop. */
void
master_main(struct config *cfg, reload_fn reload)
{
	char	err[512];

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
	master.systemd = master_listen_systemd(cfg);
	/* As root, before any child: the key file may be root's alone. */
	if (master_tls_load(cfg, err, sizeof(err)) == -1)
		fatalx("TLS: %s", err);
	/* From here on, an exit removes what the master made: the pidfile. */
	master_signals_hold();
	master.pid = getpid();
	if (atexit(master_atexit) != 0)
		fatalx("atexit");
	master_pidfile();
	master.started = time(NULL);
	/* Before daemonizing: a relative path is the start directory's. */
	if (control_open(cfg->control[0] != '\0' ? cfg->control :
	    TALKNETD_CONTROL_PATH, cfg->control[0] != '\0') == -1)
		exit(1);	/* master_atexit removes the pidfile */
	master_daemonize();
	master.pid = getpid();
	/* After daemonizing: the daemon is a child, and would not have it. */
	master_live_init();
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
	master_loop(cfg);
}

/*
 * The master's loop: signals, release datagrams, the listening sockets
 * (not while paused after EMFILE) and the control connections.
 */
static void
master_loop(struct config *cfg)
{
	struct pollfd	 pfd[TALKNETD_MAX_LISTEN + 2 + CONTROL_NPOLL];
	size_t		 i, npfd, nlisten, nctl;
	int		 timeout, left, paused = 0;

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
		nlisten = npfd;
		nctl = control_pollfds(pfd + npfd, CONTROL_NPOLL);
		npfd += nctl;
		timeout = -1;
		if (live->status_dirty)
			timeout = 1000;
		if (paused || master.hub_pid == 0)
			timeout = MASTER_PAUSE_MS;
		if ((left = master_linger()) != -1 &&
		    (timeout == -1 || left < timeout))
			timeout = left;
		if ((left = control_timeout()) != -1 &&
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
		for (i = 2; i < nlisten; i++) {
			if ((pfd[i].revents & POLLIN) &&
			    master_accept(pfd[i].fd) == -1)
				paused = 1;
		}
		control_events(pfd + nlisten, nctl);
		master_status();
	}
}
