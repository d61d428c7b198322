/*
 * check_sandbox.c: unit tests of the workers' seccomp filter.  Each case
 * forks a child that loads the filter (sandbox_worker) and makes one
 * system call: an allowed one must work, a forbidden one must kill the
 * child with SIGSYS, including calls made through another ABI (x32,
 * i386's int 0x80).  Exits 77 (skip) in a build without the filter.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"
#include "check_run.h"

/* Sanitizer builds allow what their runtimes need (src/daemon/sandbox.c). */
#if defined(TALKNET_SANITIZERS) || defined(__SANITIZE_ADDRESS__)
#define SANITIZERS	1
#endif

typedef int (*call_fn)(void);

/* The test's pid, known to the child before it loads the filter. */
static pid_t	parent;
/* A pipe made before the filter, as the worker's send pipe is. */
static int	pre_pipe[2];

/*
 * Runs call in a child under the filter; returns its wait status.  The
 * child exits 0 when the call returned what an allowed call returns,
 * 1 when it returned an error.
 */
static int
run_sandboxed(call_fn call)
{
	struct sigaction	sa;
	pid_t			pid;
	int			status;

	parent = getpid();
	ck_assert_int_eq(pipe(pre_pipe), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		/* A fault is the kernel's answer, not ASan's to report. */
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		(void)sigaction(SIGSEGV, &sa, NULL);
		sandbox_worker();
		_exit(call() == 0 ? 0 : 1);
	}
	close(pre_pipe[0]);
	close(pre_pipe[1]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

/* Asserts the call ran and succeeded under the filter. */
static void
assert_allowed(call_fn call, const char *what)
{
	int	status = run_sandboxed(call);

	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "%s: status 0x%x, expected exit 0", what, status);
}

/* Asserts the call killed the child with SIGSYS. */
static void
assert_killed(call_fn call, const char *what)
{
	int	status = run_sandboxed(call);

	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS,
	    "%s: status 0x%x, expected death by SIGSYS", what, status);
}

/* The calls a worker makes. */
static int
call_worker_io(void)
{
	char	 b = 'x';
	int	*p = pre_pipe;
	void	*m;

	if (write(p[1], &b, 1) != 1 || read(p[0], &b, 1) != 1)
		return -1;
	if (fcntl(p[0], F_SETFL, O_NONBLOCK) == -1 ||
	    fcntl(p[0], F_GETFL) == -1)
		return -1;
	if ((m = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS, -1, 0)) == MAP_FAILED)
		return -1;
	if (madvise(m, 65536, MADV_DONTNEED) == -1 || munmap(m, 65536) == -1)
		return -1;
	free(malloc(1 << 20));
	if (getpid() <= 0)
		return -1;
	close(p[0]);
	close(p[1]);
	return 0;
}

/* A Unix socket: the hub's, reconnecting. */
static int
call_unix_socket(void)
{
	int	fd;

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	close(fd);
	return 0;
}

/*
 * A spare's hand-off: a socket received with SCM_RIGHTS, checked with
 * getsockopt(SO_TYPE), moved with dup2.  The pair is made before the
 * filter, as the spare's hand-off socket is.
 */
static int	pre_pair[2] = { -1, -1 };

static int
call_handoff(void)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	}		 cb;
	struct msghdr	 msg;
	struct cmsghdr	*cm;
	struct iovec	 iov;
	char		 b = 'h';
	int		 fd = pre_pipe[0], type;
	socklen_t	 len = sizeof(type);

	memset(&msg, 0, sizeof(msg));
	memset(&cb, 0, sizeof(cb));
	iov.iov_base = &b;
	iov.iov_len = 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cb.buf;
	msg.msg_controllen = sizeof(cb.buf);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &pre_pair[0], sizeof(int));
	if (sendmsg(pre_pair[1], &msg, 0) != 1)
		return -1;
	msg.msg_controllen = sizeof(cb.buf);
	if (recvmsg(pre_pair[0], &msg, 0) != 1 ||
	    (cm = CMSG_FIRSTHDR(&msg)) == NULL)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
	    type != SOCK_STREAM)
		return -1;
	if (dup2(fd, pre_pipe[0]) == -1)
		return -1;
	return close(fd);
}

/* getsockopt(2) of anything but SO_TYPE. */
static int
call_getsockopt_other(void)
{
	int		v;
	socklen_t	len = sizeof(v);

	return getsockopt(pre_pair[0], SOL_SOCKET, SO_SNDBUF, &v, &len);
}

/* setsockopt(2): the master sets a client socket's options. */
static int
call_setsockopt(void)
{
	int	v = 4096;

	return setsockopt(pre_pair[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
}

/* An Internet socket: a worker has no network of its own. */
static int
call_inet_socket(void)
{
	return socket(AF_INET, SOCK_STREAM, 0) == -1 ? -1 : 0;
}

/* kill(2), signal 0 to the parent: harmless if it were allowed. */
static int
call_kill(void)
{
	return kill(parent, 0);
}

/* tgkill(2) to the parent, signal 0. */
static int
call_tgkill(void)
{
	return (int)syscall(SYS_tgkill, parent, parent, 0);
}

/* open(2) of a harmless file. */
static int
call_open(void)
{
	return open("/dev/null", O_RDONLY) == -1 ? -1 : 0;
}

/* execve(2) of /bin/true. */
static int
call_execve(void)
{
	char	*argv[] = { (char *)"true", NULL };

	return execve("/bin/true", argv, NULL);
}

/* ptrace(2): PTRACE_TRACEME. */
static int
call_ptrace(void)
{
	return (int)ptrace(PTRACE_TRACEME, 0, NULL, NULL);
}

/* fork, as clone(2) without CLONE_VM. */
static int
call_fork(void)
{
	pid_t	pid = (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);

	if (pid == 0)
		_exit(0);
	return pid == -1 ? -1 : 0;
}

/* prctl(2): making itself dumpable again. */
static int
call_prctl(void)
{
	return prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

/* Executable memory, new. */
static int
call_mmap_exec(void)
{
	return mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE |
	    MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? -1 : 0;
}

/* Executable memory, made so afterwards. */
static int
call_mprotect_exec(void)
{
	void	*m;

	m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -1;
	return mprotect(m, 4096, PROT_READ | PROT_EXEC);
}

/* fcntl(2) other than F_GETFL and F_SETFL. */
static int
call_fcntl_dupfd(void)
{
	return fcntl(0, F_DUPFD, 100) == -1 ? -1 : 0;
}

/* bind(2): a worker never listens. */
static int
call_bind(void)
{
	return bind(-1, NULL, 0);
}

#ifdef __x86_64__
/* getpid through the x32 ABI: same architecture, another table. */
static int
call_x32(void)
{
	return syscall(0x40000000 | SYS_getpid) > 0 ? 0 : -1;
}

/* getpid (20) through i386's int 0x80 from a 64-bit process. */
static int
call_int80(void)
{
	long	ret = 20;

	__asm__ volatile ("int $0x80" : "+a" (ret) : : "memory");
	return ret > 0 ? 0 : -1;
}
#endif

START_TEST(test_allowed)
{
	assert_allowed(call_worker_io, "pipe, fcntl, mmap, malloc, getpid");
	assert_allowed(call_unix_socket, "socket(AF_UNIX)");
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, pre_pair), 0);
	assert_allowed(call_handoff, "recvmsg, getsockopt(SO_TYPE), dup2");
	close(pre_pair[0]);
	close(pre_pair[1]);
}
END_TEST

START_TEST(test_forbidden)
{
	assert_killed(call_inet_socket, "socket(AF_INET)");
	assert_killed(call_kill, "kill");
	assert_killed(call_tgkill, "tgkill");
	assert_killed(call_execve, "execve");
	assert_killed(call_bind, "bind");
	assert_killed(call_mmap_exec, "mmap(PROT_EXEC)");
	assert_killed(call_fork, "clone without CLONE_VM (fork)");
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, pre_pair), 0);
	assert_killed(call_setsockopt, "setsockopt");
	assert_killed(call_getsockopt_other, "getsockopt(SO_SNDBUF)");
	close(pre_pair[0]);
	close(pre_pair[1]);
#ifndef SANITIZERS
	/* The sanitizers' runtimes need these at exit or in a report. */
	assert_killed(call_open, "open");
	assert_killed(call_ptrace, "ptrace");
	assert_killed(call_prctl, "prctl");
	assert_killed(call_mprotect_exec, "mprotect(PROT_EXEC)");
	assert_killed(call_fcntl_dupfd, "fcntl(F_DUPFD)");
#else
	(void)call_fcntl_dupfd;
	(void)call_open;
	(void)call_ptrace;
	(void)call_prctl;
	(void)call_mprotect_exec;
#endif
}
END_TEST

START_TEST(test_other_abis)
{
#ifdef __x86_64__
	int	status;

	assert_killed(call_x32, "getpid through x32");
	/* Without IA32 emulation the kernel faults int 0x80 first. */
	status = run_sandboxed(call_int80);
	ck_assert_msg(WIFSIGNALED(status) && (WTERMSIG(status) == SIGSYS ||
	    WTERMSIG(status) == SIGSEGV),
	    "int 0x80: status 0x%x, expected death by SIGSYS", status);
#endif
}
END_TEST

/* The value of a line of /proc/PID/status, or -1. */
static long
status_field(pid_t pid, const char *key)
{
	char	 path[64], line[256];
	FILE	*f;
	long	 v = -1;
	size_t	 n = strlen(key);

	(void)snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, n) == 0 && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	fclose(f);
	return v;
}

START_TEST(test_status)
{
	pid_t	pid;
	int	p[2], status;
	char	c;

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		close(p[1]);
		sandbox_worker();
		/* Waits for the parent to look, then exits. */
		(void)read(p[0], &c, 1);
		_exit(0);
	}
	close(p[0]);
	/* Loading the filter may take the child a moment. */
	for (status = 0; status < 500; status++) {
		if (status_field(pid, "Seccomp") == 2)
			break;
		usleep(10000);
	}
	ck_assert_int_eq(status_field(pid, "Seccomp"), 2);
	ck_assert_int_eq(status_field(pid, "NoNewPrivs"), 1);
	close(p[1]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* The parent itself is not filtered. */
	ck_assert_int_eq(status_field(getpid(), "Seccomp"), 0);
}
END_TEST

/* The sandbox test suite. */
CHECK_SUITE(sandbox_suite, "sandbox", "core",
    CK_TEST(test_allowed), CK_TEST(test_forbidden), CK_TEST(test_other_abis),
    CK_TEST(test_status))

/* Builds the filter once, as the master does, and runs the cases. */
int
main(void)
{
	if (!sandbox_enabled())
		return 77;
	log_init(1, LOG_LEVEL_WARNING);
	sandbox_init();
	return check_run(sandbox_suite());
}
