/*
 * master.c: the parent of every talknetd process.  It owns the listening
 * sockets, the shared-memory segment and the hub's Unix socket; it
 * starts the hub, forks one worker per accepted connection, reaps them,
 * and restarts the hub if it dies.  It never reads client traffic.
 * This file is the process: its start, signals, reload, shutdown and
 * loop.  master_setup.c makes what it holds (listeners, the hub's
 * socket, the table, the pidfile, daemon mode); master_hub.c starts the
 * hub and writes to its pipe; master_child.c accepts, forks and counts
 * the workers.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/prctl.h>
#include <sys/tree.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libutil.h>
#include <malloc.h>
#include <poll.h>
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

#include "conf.h"
#include "control.h"
#include "log.h"
#include "master.h"
#include "nodepool.h"
#include "sandbox.h"
#include "systemd.h"
#include "talknetd.h"
#include "title.h"
#include "xmalloc.h"

#define MASTER_PAUSE_MS		200	/* after EMFILE or a failed fork */
#define MASTER_STOP_MS		3000	/* children get this long on exit */
#define MASTER_STOP_VG_MS	30000	/* the same, under valgrind */
#define MASTER_WORKER_KEEP	(32 * 1024)	/* malloc keeps this, no more */

/* The master's own state (master.h). */
struct master_state	 master;

/* What changes with every client, in memory no child inherits. */
struct master_live	*live;

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
		conf_live_summary(cur, err, sizeof(err));
		log_info("reloaded: %s", err);
		if (n > 0)
			(void)snprintf(msg, len, "reloaded: %s\nnot applied, "
			    "%s a restart: %s", err, n == 1 ? "needs" :
			    "they need", keys);
		else
			(void)snprintf(msg, len, "reloaded: %s", err);
		r = master_tls_reload(msg, len);
		/* Forked with the old settings and TLS context: replaced. */
		master_spare_retire_all();
	}
	/* Its copy of the cluster password: not in the heap workers get. */
	explicit_bzero(next, sizeof(*next));
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
	if (master.cfg->cluster[0] != '\0')
		(void)systemd_notify("STATUS=%zu clients, cluster: %s",
		    live->nchildren, master_cluster_name());
	else
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
		/* The hub's cluster state is read at least once a second. */
		if (cfg->cluster[0] != '\0' && (timeout == -1 ||
		    timeout > 1000))
			timeout = 1000;
		if (paused || master.hub_pid == 0)
			timeout = MASTER_PAUSE_MS;
		if ((left = master_linger()) != -1 &&
		    (timeout == -1 || left < timeout))
			timeout = left;
		if ((left = control_timeout()) != -1 &&
		    (timeout == -1 || left < timeout))
			timeout = left;
		/* One spare forked a turn: accepts wait for one fork at most. */
		if ((left = master_spare_fill()) != -1 &&
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
		master_cluster_poll();
		for (i = 2; i < nlisten; i++) {
			if ((pfd[i].revents & POLLIN) &&
			    master_accept(pfd[i].fd) == -1)
				paused = 1;
		}
		control_events(pfd + nlisten, nctl);
		master_status();
	}
}
