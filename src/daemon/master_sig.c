/*
 * master_sig.c: what the master does with the signals it does not
 * serve in its loop.  Stray signals whose default action would kill or
 * stop it are ignored; a fatal one (a crash, abort(), SIGQUIT) first
 * removes the run directory, the table's name and the pidfile, then
 * ends the master as the signal would have.  And on start, what a
 * master killed by SIGKILL left behind is removed.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "log.h"
#include "master.h"
#include "talknetd.h"

/*
 * Ignored: each would kill or stop the master by default, and none
 * means anything to it.  SIGPIPE: a write to a closed socket returns
 * EPIPE instead.  SIGTSTP, SIGTTIN, SIGTTOU: a stopped master accepts
 * nobody.  SIGUSR1 is not here: it has a handler of its own.
 */
static const int master_stray[] = {
	SIGPIPE, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGXFSZ,
	SIGTSTP, SIGTTIN, SIGTTOU,
#ifdef SIGSTKFLT
	SIGSTKFLT,
#endif
#ifdef SIGPWR
	SIGPWR,
#endif
};

/* Fatal: the master cleans up, then dies of the signal all the same. */
static const int master_fatal[] = {
	SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGSYS, SIGTRAP, SIGQUIT,
	SIGXCPU,
};

/* Each fatal signal's action before ours (a sanitizer's, or SIG_DFL). */
static struct sigaction	master_fatal_old[sizeof(master_fatal) /
			    sizeof(master_fatal[0])];

/* Appends s to buf at *o, if it fits; async-signal-safe. */
static int
sig_cat(char *buf, size_t size, size_t *o, const char *s)
{
	size_t	n = strlen(s);

	if (*o + n >= size)
		return -1;
	memcpy(buf + *o, s, n);
	*o += n;
	buf[*o] = '\0';
	return 0;
}

/*
 * Removes what the master created, with async-signal-safe calls only:
 * the table's name (/dev/shm is where glibc's shm_open puts it), the
 * sockets in the run directory, the directory, and the pidfile.
 */
static void
master_crash_cleanup(void)
{
	static const char *const names[] = { "hub.sock" };
	char	path[PATH_MAX];
	size_t	i, o;

	if (master.rt.shmname[0] != '\0') {
		o = 0;
		if (sig_cat(path, sizeof(path), &o, "/dev/shm") == 0 &&
		    sig_cat(path, sizeof(path), &o, master.rt.shmname) == 0)
			(void)unlink(path);
	}
	if (master.rt.rundir[0] != '\0') {
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			o = 0;
			if (sig_cat(path, sizeof(path), &o,
			    master.rt.rundir) == 0 &&
			    sig_cat(path, sizeof(path), &o, "/") == 0 &&
			    sig_cat(path, sizeof(path), &o, names[i]) == 0)
				(void)unlink(path);
		}
		(void)rmdir(master.rt.rundir);
	}
	if (control_path()[0] != '\0')
		(void)unlink(control_path());
	if (master.pidfh != NULL && master.cfg != NULL)
		(void)unlink(master.cfg->pidfile);
}

/*
 * A fatal signal in the master: clean up, put the old action back and
 * let the signal end the process.  A fault (SIGSEGV from the CPU) comes
 * again when the handler returns, now to the old action; a sent one is
 * raised again, pending until the handler returns.
 */
static void
master_fatal_signal(int sig, siginfo_t *si, void *ctx)
{
	size_t	i;
	int	saved = errno;

	(void)ctx;
	if (getpid() == master.pid)
		master_crash_cleanup();
	for (i = 0; i < sizeof(master_fatal) / sizeof(master_fatal[0]); i++)
		if (master_fatal[i] == sig)
			(void)sigaction(sig, &master_fatal_old[i], NULL);
	if (si == NULL || si->si_code <= 0 || sig == SIGABRT ||
	    sig == SIGQUIT || sig == SIGXCPU)
		(void)raise(sig);
	errno = saved;
}

/*
 * Sets sig's disposition: a handler, SIG_IGN or SIG_DFL, nothing masked
 * while it runs.  The workers use it too: they start as the master.
 */
int
master_sig_set(int sig, void (*fn)(int), int flags)
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = fn;
	sa.sa_flags = flags;
	return sigaction(sig, &sa, NULL);
}

/*
 * Gives the stray signals and the real-time ones disposition fn: in the
 * master every one, or it fails; in a child (child 1) all but those it
 * keeps ignored, whatever comes of it.
 */
static void
master_strays(void (*fn)(int), int child)
{
	size_t	i;
	int	sig;

	for (i = 0; i < sizeof(master_stray) / sizeof(master_stray[0]); i++) {
		sig = master_stray[i];
		if (child && (sig == SIGPIPE || sig == SIGTSTP ||
		    sig == SIGTTIN || sig == SIGTTOU))
			continue;
		if (master_sig_set(sig, fn, 0) == -1 && !child)
			fatal("sigaction %d", sig);
	}
	/* Real-time signals kill by default too; glibc keeps the first. */
	for (sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		if (master_sig_set(sig, fn, 0) == -1 && !child)
			fatal("sigaction %d", sig);
}

/* Ignores the stray signals and catches the fatal ones (master only). */
void
master_signals_extra(void)
{
	struct sigaction	sa;
	size_t			i;

	master_strays(SIG_IGN, 0);
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_sigaction = master_fatal_signal;
	sa.sa_flags = SA_SIGINFO;
	for (i = 0; i < sizeof(master_fatal) / sizeof(master_fatal[0]); i++)
		if (sigaction(master_fatal[i], &sa, &master_fatal_old[i]) == -1)
			fatal("sigaction %d", master_fatal[i]);
}

/*
 * What a child does first: the master's fatal handler cleans up the
 * master's files, and the ignored signals keep their usual meaning in
 * the hub and the workers.  SIGPIPE stays ignored: they write sockets.
 * So do the job-control stops: Ctrl-Z on talknetd -f reaches the whole
 * process group, and a stopped hub under a running master would hang
 * every client.
 */
void
master_signals_child(void)
{
	size_t	i;

	master_strays(SIG_DFL, 1);
	for (i = 0; i < sizeof(master_fatal) / sizeof(master_fatal[0]); i++)
		(void)sigaction(master_fatal[i], &master_fatal_old[i], NULL);
}

/* Reads up to size - 1 bytes of /proc/pid/what; their count, or -1. */
static ssize_t
master_proc_read(long pid, const char *what, char *buf, size_t size)
{
	char	path[64];
	ssize_t	n;
	int	fd;

	(void)snprintf(path, sizeof(path), "/proc/%ld/%s", pid, what);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/*
 * Whether pid is a live talknetd.  A pid that is gone, a zombie, or now
 * another program's, left its files behind.  When in doubt (/proc hidden
 * from us), it is live: its files stay.
 */
static int
master_pid_live(long pid)
{
	char	buf[4096], *p;
	ssize_t	n, i;

	if (pid <= 0 || pid == (long)getpid())
		return 1;
	if (kill((pid_t)pid, 0) == -1 && errno == ESRCH)
		return 0;
	if (master_proc_read(pid, "stat", buf, sizeof(buf)) <= 0 ||
	    (p = strrchr(buf, ')')) == NULL)
		return 1;
	if (p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'))
		return 0;
	if ((n = master_proc_read(pid, "cmdline", buf, sizeof(buf))) == -1)
		return 1;
	for (i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	return strstr(buf, "talknetd") != NULL;
}

/* Whether the file at fd/name is ours to remove: our uid or -u's. */
static int
master_stale_owner(int dfd, const char *name, mode_t type)
{
	struct stat	sb;

	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == -1)
		return 0;
	if ((sb.st_mode & S_IFMT) != type)
		return 0;
	return sb.st_uid == geteuid() || (master.drop &&
	    sb.st_uid == master.uid);
}

/*
 * Opens dfd/name, never through a link, and takes its lock: the fd, or
 * -1 when a live master holds it (it locks its run directory and its
 * table's name for its whole life: master_setup.c), or on an error.
 */
static int
master_stale_lock(int dfd, const char *name, int flags)
{
	int	fd;

	if ((fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC | flags)) == -1)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Empties and removes one stale run directory, base/name. */
static void
master_stale_rundir(int bfd, const char *base, const char *name, long pid)
{
	struct dirent	*de;
	DIR		*d;
	int		 fd;

	/* Held by a live master whose argv[0] is not "talknetd": keep it. */
	if ((fd = master_stale_lock(bfd, name, O_DIRECTORY)) == -1)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		log_warn("stale run directory %s/%s", base, name);
		close(fd);
		return;
	}
	/* Only files: the master makes nothing else in it. */
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == -1)
			log_warn("unlink %s/%s/%s", base, name, de->d_name);
	}
	closedir(d);
	if (unlinkat(bfd, name, AT_REMOVEDIR) == -1)
		log_warn("rmdir %s/%s", base, name);
	else
		log_info("removed %s/%s, left by talknetd pid %ld, which is "
		    "gone", base, name, pid);
}

/*
 * Scans dir for entries "talknetd.<pid><rest>" and removes those whose
 * pid is no longer a running talknetd.  rest is "" for the table's
 * names in /dev/shm, ".XXXXXX" for run directories.
 */
static void
master_stale_scan(const char *dir, int is_rundir)
{
	struct dirent	*de;
	DIR		*d;
	const char	*p;
	char		*end;
	long		 pid;
	int		 fd;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "talknetd.", 9) != 0)
			continue;
		p = de->d_name + 9;
		if (*p < '1' || *p > '9')
			continue;
		errno = 0;
		pid = strtol(p, &end, 10);
		if (errno != 0 || (is_rundir ? *end != '.' : *end != '\0'))
			continue;
		if (master_pid_live(pid))
			continue;
		if (!master_stale_owner(dirfd(d), de->d_name, is_rundir ?
		    S_IFDIR : S_IFREG))
			continue;
		if (is_rundir) {
			master_stale_rundir(dirfd(d), dir, de->d_name, pid);
			continue;
		}
		if ((fd = master_stale_lock(dirfd(d), de->d_name, 0)) == -1)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == -1)
			log_warn("unlink %s/%s", dir, de->d_name);
		else
			log_info("removed %s/%s, left by talknetd pid %ld, "
			    "which is gone", dir, de->d_name, pid);
		close(fd);
	}
	closedir(d);
}

/*
 * Removes what dead masters left in base (where the run directory goes)
 * and in /dev/shm.  A live daemon's files are never touched.
 */
void
master_remove_stale(const char *base)
{
	master_stale_scan(base, 1);
	master_stale_scan("/dev/shm", 0);
}
