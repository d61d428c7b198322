/*
 * sandbox.c: the workers' system-call filter.
 *
 * A worker talks to one client on the internet, so it is the process an
 * attacker reaches first; we treat it as compromised.  Once it is set
 * up (its fds closed, its send pipe open), before it has a client (a
 * spare) or reads from it, it loads a seccomp filter that allows only
 * what serving one client needs: reading, writing and splicing the fds
 * it holds, taking a spare's client socket (recvmsg, dup2), polling them,
 * closing them, reconnecting to the hub (an AF_UNIX socket), memory for
 * malloc (never executable), the time, and exiting.  Any other system
 * call (open, execve, kill, ptrace, an AF_INET socket, fork, prctl, ...)
 * kills the worker with SIGSYS; the master reaps it and logs so, and
 * the hub runs the DISCONNECT semantics for its user, as for any crash.
 * A call made for another architecture (i386's int 0x80, x32) kills it
 * the same way.
 *
 * The master builds the filter once, at start, with libseccomp, and
 * keeps the BPF program; a worker only hands it to the kernel.  Building
 * it in the worker would make thousands of workers each call malloc and
 * write pages they share with the master (doc/design.md, "Memory per
 * worker"), and a bug in the rules shows up at start, not per client.
 *
 * Without libseccomp (./configure --without-seccomp) there is no filter
 * and the master says so at start.  Under valgrind there is none either:
 * valgrind makes system calls of its own on the worker's behalf (its
 * translations are mapped executable), which an allow-list for the
 * worker would kill.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_SECCOMP
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/sockios.h>
#include <seccomp.h>
#endif
#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND	0
#endif

#include "log.h"
#include "sandbox.h"
#include "xmalloc.h"

/* ASan and UBSan builds: the runtimes' own calls (see sandbox_extra). */
#if defined(TALKNET_SANITIZERS) || defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZERS	1
#endif

#ifdef HAVE_SECCOMP
/* The program every worker loads: built by the master, read by workers. */
static struct sock_fprog	sandbox_prog;

/*
 * What a worker may call with any arguments.  Beyond today's worker,
 * the list has what the hub-reconnect, ppoll-with-a-mask and
 * "done"-datagram code needs, and what glibc's syslog() does to
 * reconnect to /dev/log in daemon mode (closefrom() closed the socket
 * openlog() made in the master): close, socket, connect, sendto.
 */
static const int sandbox_allow[] = {
	/* The client socket, the hub channel, the send pipe, syslog. */
	SCMP_SYS(read),
	SCMP_SYS(recvfrom),
	/* A spare's hand-off: the client's socket, then moved to its
	 * number.  Only this process's own fds are ever involved. */
	SCMP_SYS(recvmsg),
	SCMP_SYS(dup2),
	SCMP_SYS(dup3),
	SCMP_SYS(write),
	SCMP_SYS(writev),
	SCMP_SYS(sendto),
	SCMP_SYS(sendmsg),
	SCMP_SYS(splice),
	SCMP_SYS(poll),
	SCMP_SYS(ppoll),
	/* The wait's epoll set, made before the filter (worker_wait.c). */
	SCMP_SYS(epoll_pwait),
	SCMP_SYS(epoll_ctl),
	SCMP_SYS(connect),
	SCMP_SYS(shutdown),
	SCMP_SYS(close),
	/* malloc, and the read scratch given back (MADV_DONTNEED). */
	SCMP_SYS(brk),
	SCMP_SYS(munmap),
	SCMP_SYS(mremap),
	SCMP_SYS(madvise),
	/* The time (the vDSO's fallbacks), the pid in log lines. */
	SCMP_SYS(clock_gettime),
	SCMP_SYS(gettimeofday),
	SCMP_SYS(time),
	SCMP_SYS(getpid),
	/*
	 * TLS workers (issue 18), found with strace -f on TLS sessions:
	 * OpenSSL reseeds its random generator in each forked process.
	 */
	SCMP_SYS(getrandom),
	/* Signals: SIGTERM's handler returns, ppoll's mask. */
	SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(rt_sigreturn),
	SCMP_SYS(restart_syscall),
	SCMP_SYS(exit),
	SCMP_SYS(exit_group),
};

#ifdef SANDBOX_SANITIZERS
/*
 * What ASan, UBSan and LeakSanitizer make at exit and to write a report:
 * read /proc/self/maps and the binary (symbols), ask whether stderr is a
 * terminal, probe memory through a pipe, and, for the leak check at
 * exit(), run a tracer (a clone sharing the memory: CLONE_VM) that lists
 * /proc/self/task and ptraces the worker.  Found with the kernel's
 * seccomp log (dmesg, "type=1326") under the filter with SCMP_ACT_LOG.
 * A sanitizer build is for tests only; the filter stays on, and kill,
 * execve, fork and other sockets stay denied.
 */
static const int sandbox_extra[] = {
	SCMP_SYS(openat),
	SCMP_SYS(open),
	SCMP_SYS(readlink),
	SCMP_SYS(readlinkat),
	SCMP_SYS(fstat),
	SCMP_SYS(newfstatat),
	SCMP_SYS(lseek),
	SCMP_SYS(pread64),
	SCMP_SYS(getdents),
	SCMP_SYS(getdents64),
	SCMP_SYS(ioctl),
	SCMP_SYS(pipe),
	SCMP_SYS(pipe2),
	SCMP_SYS(fcntl),
	SCMP_SYS(mprotect),
	SCMP_SYS(ptrace),
	SCMP_SYS(prctl),
	SCMP_SYS(wait4),
	SCMP_SYS(sched_yield),
	SCMP_SYS(sigaltstack),
	SCMP_SYS(rt_sigaction),
	SCMP_SYS(gettid),
	SCMP_SYS(getppid),
	SCMP_SYS(futex),
	SCMP_SYS(getrlimit),
	SCMP_SYS(prlimit64),
	SCMP_SYS(nanosleep),
	SCMP_SYS(clock_nanosleep),
};
#endif

/* Adds one rule; a syscall this architecture lacks (< 0) is skipped. */
static void
sandbox_rule(scmp_filter_ctx ctx, int nr, unsigned int argc,
    const struct scmp_arg_cmp *arg)
{
	int	rc;

	if (nr < 0)
		return;
	if ((rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, argc,
	    arg)) < 0) {
		errno = -rc;
		fatal("seccomp rule for system call %d", nr);
	}
}

/* The rules: the allow-list, then the calls allowed some arguments. */
static void
sandbox_rules(scmp_filter_ctx ctx)
{
	struct scmp_arg_cmp	arg, two[2];
	size_t			i;

	for (i = 0; i < sizeof(sandbox_allow) / sizeof(sandbox_allow[0]); i++)
		sandbox_rule(ctx, sandbox_allow[i], 0, NULL);
#ifdef SANDBOX_SANITIZERS
	for (i = 0; i < sizeof(sandbox_extra) / sizeof(sandbox_extra[0]); i++)
		sandbox_rule(ctx, sandbox_extra[i], 0, NULL);
#endif
	/* Only Unix sockets: the hub's, syslog's.  No network of its own. */
	arg = SCMP_A0(SCMP_CMP_EQ, AF_UNIX);
	sandbox_rule(ctx, SCMP_SYS(socket), 1, &arg);
	/* A spare's check of the socket handed to it (worker_spare.c). */
	two[0] = SCMP_A1(SCMP_CMP_EQ, SOL_SOCKET);
	two[1] = SCMP_A2(SCMP_CMP_EQ, SO_TYPE);
	sandbox_rule(ctx, SCMP_SYS(getsockopt), 2, two);
	/* O_NONBLOCK on a reconnected hub channel, and reading it back. */
	arg = SCMP_A1(SCMP_CMP_EQ, F_GETFL);
	sandbox_rule(ctx, SCMP_SYS(fcntl), 1, &arg);
	arg = SCMP_A1(SCMP_CMP_EQ, F_SETFL);
	sandbox_rule(ctx, SCMP_SYS(fcntl), 1, &arg);
#ifndef SANDBOX_SANITIZERS
	/* SIOCOUTQ only: what the client has not acknowledged, for
	 * --stall-timeout.  (Sanitizer builds allow every ioctl.) */
	arg = SCMP_A1(SCMP_CMP_EQ, SIOCOUTQ);
	sandbox_rule(ctx, SCMP_SYS(ioctl), 1, &arg);
#endif
	/* Memory for malloc, never executable: no code but the binary's. */
	arg = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	sandbox_rule(ctx, SCMP_SYS(mmap), 1, &arg);
#ifndef SANDBOX_SANITIZERS
	sandbox_rule(ctx, SCMP_SYS(mprotect), 1, &arg);
#else
	/* LeakSanitizer's tracer shares our memory; a fork would not. */
	arg = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_VM, CLONE_VM);
	sandbox_rule(ctx, SCMP_SYS(clone), 1, &arg);
#endif
}

/*
 * Asks libseccomp (2.5 and later) for a binary tree of the system-call
 * numbers rather than a list.  Attaching the filter is part of every
 * connection's cost: the kernel runs it for each system call to build
 * its cache of always-allowed calls, and a tree's few comparisons per
 * call took the attach from 86 to 47 us here (AMD EPYC, Linux 6.18).
 * An older libseccomp keeps the list: the same rules, only slower.
 */
static void
sandbox_optimize(scmp_filter_ctx ctx)
{
#if SCMP_VER_MAJOR > 2 || (SCMP_VER_MAJOR == 2 && SCMP_VER_MINOR >= 5)
	int	rc;

	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)) < 0)
		log_debug("sandbox: no binary tree (%s)", strerror(-rc));
#else
	(void)ctx;
#endif
}

/*
 * Writes the filter as BPF into a pipe and reads it back into
 * sandbox_prog.  A pipe, not memfd_create: the systemd unit denies that.
 * Non-blocking, so a program larger than the pipe fails instead of
 * hanging (ours is about 80 instructions; a pipe holds at least 512).
 */
static void
sandbox_export(scmp_filter_ctx ctx)
{
	struct sock_filter	*prog;
	size_t			 size = 0, max;
	ssize_t			 n;
	int			 p[2], rc;

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("sandbox: pipe2");
	if ((rc = seccomp_export_bpf(ctx, p[1])) < 0) {
		errno = -rc;
		fatal("sandbox: seccomp_export_bpf");
	}
	close(p[1]);
	max = BPF_MAXINSNS * sizeof(*prog);
	prog = xcalloc(BPF_MAXINSNS, sizeof(*prog));
	for (;;) {
		n = read(p[0], (char *)prog + size, max - size);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			fatal("sandbox: reading the filter back");
		if (n == 0 || (size += (size_t)n) == max)
			break;
	}
	close(p[0]);
	if (size == 0 || size % sizeof(*prog) != 0)
		fatalx("sandbox: the filter has %zu bytes", size);
	prog = xreallocarray(prog, size / sizeof(*prog), sizeof(*prog));
	sandbox_prog.len = (unsigned short)(size / sizeof(*prog));
	sandbox_prog.filter = prog;
}
#endif /* HAVE_SECCOMP */

/* 1 when workers load a filter: built with it and not under valgrind. */
int
sandbox_enabled(void)
{
#ifdef HAVE_SECCOMP
	return RUNNING_ON_VALGRIND ? 0 : 1;
#else
	return 0;
#endif
}

/*
 * Builds the workers' filter in the master, before it forks any.  Dies
 * if the kernel has no seccomp filters: a worker must never serve a
 * client unfiltered in a build that promises the filter.
 */
void
sandbox_init(void)
{
#ifdef HAVE_SECCOMP
	scmp_filter_ctx	ctx;
	int		rc;

	/* Time zone rules now, so a worker's syslog() never opens them. */
	tzset();
	if (!sandbox_enabled()) {
		log_warnx("running under valgrind: workers are not sandboxed");
		return;
	}
	/* A NULL program: EFAULT if the kernel takes filters, else EINVAL. */
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, NULL, 0, 0) != -1 ||
	    errno != EFAULT)
		fatal("no seccomp filters in this kernel (see "
		    "--without-seccomp)");
	/*
	 * Kill the process, not the thread; the worker has one thread, and
	 * a kernel before 4.14 (no KILL_PROCESS) gets the thread's kill.
	 */
	if ((ctx = seccomp_init(SCMP_ACT_KILL_PROCESS)) == NULL &&
	    (ctx = seccomp_init(SCMP_ACT_KILL)) == NULL)
		fatalx("sandbox: seccomp_init failed");
	/* A call for another ABI (i386, x32) is killed, not looked up. */
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH,
	    SCMP_ACT_KILL_PROCESS)) < 0 &&
	    (rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH,
	    SCMP_ACT_KILL)) < 0) {
		errno = -rc;
		fatal("sandbox: seccomp_attr_set");
	}
	sandbox_optimize(ctx);
	sandbox_rules(ctx);
	sandbox_export(ctx);
	seccomp_release(ctx);
	log_debug("sandbox: workers' filter of %u instructions",
	    (unsigned int)sandbox_prog.len);
#else
	tzset();
	log_warnx("built without seccomp: workers are not sandboxed");
#endif
}

/*
 * Loads the filter into this worker.  After this it can reach nothing
 * but the fds it holds.  Fails closed: a worker that cannot be
 * sandboxed exits before it reads a byte from its client.
 */
void
sandbox_worker(void)
{
	/*
	 * Not dumpable: no process of our uid may ptrace this worker or
	 * read its memory through /proc, and no core file shows a client's
	 * traffic.  (Dropping to -u USER already reset the flag, to the
	 * kernel's fs.suid_dumpable; this does not depend on that.)
	 */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("worker: prctl PR_SET_DUMPABLE");
#ifdef HAVE_SECCOMP
	if (!sandbox_enabled())
		return;
	/* Required to load a filter without CAP_SYS_ADMIN; and no exec
	 * could ever raise privileges again. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("worker: prctl PR_SET_NO_NEW_PRIVS");
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &sandbox_prog,
	    0, 0) == -1)
		fatal("worker: prctl PR_SET_SECCOMP");
#endif
}
