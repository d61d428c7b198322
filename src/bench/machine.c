/*
 * machine.c: talknet-bench's machine workload, the limits of the
 * machine itself that a process-per-client server builds on: how many
 * processes it forks and reaps a second, and what one wake-up of a
 * process by another over a Unix socket costs, in time and in CPU.
 * The other workloads' figures read against these.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <err.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "bench.h"

#define FORK_NS		NS		/* forks timed this long */
#define FORK_MAX	200000
#define WAKE_WARMUP	200		/* round trips not timed */
#define WAKE_ROUNDS	20000		/* round trips timed, at most */
#define WAKE_NS		NS		/* and for about this long */

struct machine {
	uint64_t	 forks;
	double		 fork_s;
	unsigned int	 rounds;	/* timed round trips */
	unsigned int	 rounds_all;	/* with the warm-up */
	double		 wake_us;	/* half the median round trip */
	double		 rtt_p50_us;	/* the round trip itself */
	double		 rtt_p99_us;
	double		 wake_min_us;
	double		 wake_cpu_us;	/* both sides' CPU per wake-up */
	long		 cpus;
	char		 model[128];
	char		 kernel[256];
	char		 error[256];
};

/* Forks children that exit at once and reaps each, for about a second. */
static int
machine_forks(struct machine *m)
{
	int64_t	t0, now;
	pid_t	pid;
	int	st;

	t0 = now = clock_now_ns();
	while (now - t0 < FORK_NS && m->forks < FORK_MAX) {
		if ((pid = fork()) == -1) {
			snprintf(m->error, sizeof(m->error), "fork: %s",
			    strerror(errno));
			return -1;
		}
		if (pid == 0)
			_exit(0);
		while (waitpid(pid, &st, 0) == -1) {
			if (errno != EINTR) {
				snprintf(m->error, sizeof(m->error),
				    "waitpid: %s", strerror(errno));
				return -1;
			}
		}
		m->forks++;
		now = clock_now_ns();
	}
	m->fork_s = (double)(now - t0) / NS;
	return 0;
}

/* The echo side of the ping-pong: returns each byte until EOF. */
static void __attribute__((__noreturn__))
machine_echo(int fd)
{
	char	c;
	ssize_t	r;

	for (;;) {
		r = read(fd, &c, 1);
		if (r == -1 && errno == EINTR)
			continue;
		if (r != 1)
			_exit(r == 0 ? 0 : 1);
		if (write(fd, &c, 1) != 1)
			_exit(1);
	}
}

/* Sends one byte and waits for it back; -1 on error. */
static int
machine_ping(int fd)
{
	char	c = 'p';
	ssize_t	r;

	if (write(fd, &c, 1) != 1)
		return -1;
	while ((r = read(fd, &c, 1)) == -1 && errno == EINTR)
		;
	return r == 1 ? 0 : -1;
}

/* Orders nanosecond samples. */
static int
machine_cmp(const void *a, const void *b)
{
	int64_t	x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* CPU seconds of a rusage. */
static double
ru_cpu(const struct rusage *ru)
{
	return (double)ru->ru_utime.tv_sec + ru->ru_utime.tv_usec / 1e6 +
	    (double)ru->ru_stime.tv_sec + ru->ru_stime.tv_usec / 1e6;
}

/* Times round trips to a child over a socketpair; one wake-up is half. */
static int
machine_wakeups(struct machine *m, int64_t *rtt)
{
	struct rusage	 r0, r1, rc;
	int		 sv[2], st, bad = 0;
	pid_t		 pid;
	int64_t		 t0, t, t1;
	unsigned int	 i;

	/* A stream pair: each byte wakes the other side exactly once. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		err(1, "socketpair");
	if (getrusage(RUSAGE_SELF, &r0) == -1)
		err(1, "getrusage");
	if ((pid = fork()) == -1)
		err(1, "fork");
	if (pid == 0) {
		close(sv[0]);
		machine_echo(sv[1]);
	}
	close(sv[1]);
	for (i = 0; i < WAKE_WARMUP && !bad; i++)
		bad = machine_ping(sv[0]) == -1;
	t0 = clock_now_ns();
	for (t = t0; !bad && m->rounds < WAKE_ROUNDS && t - t0 < WAKE_NS;) {
		bad = machine_ping(sv[0]) == -1;
		t1 = clock_now_ns();
		rtt[m->rounds++] = t1 - t;
		t = t1;
	}
	m->rounds_all = i + m->rounds;
	if (getrusage(RUSAGE_SELF, &r1) == -1)
		err(1, "getrusage");
	/* EOF ends the child; its rusage comes back with its status. */
	close(sv[0]);
	while (wait4(pid, &st, 0, &rc) == -1)
		if (errno != EINTR)
			err(1, "wait4");
	if (bad || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(m->error, sizeof(m->error), "ping-pong child failed");
		return -1;
	}
	qsort(rtt, m->rounds, sizeof(*rtt), machine_cmp);
	m->wake_us = (double)rtt[m->rounds / 2] / 2 / 1000;
	m->rtt_p50_us = (double)rtt[m->rounds / 2] / 1000;
	m->rtt_p99_us = (double)rtt[(size_t)m->rounds * 99 / 100] / 1000;
	m->wake_min_us = (double)rtt[0] / 2 / 1000;
	m->wake_cpu_us = (ru_cpu(&r1) - ru_cpu(&r0) + ru_cpu(&rc)) * 1e6 /
	    m->rounds_all / 2;
	return 0;
}

/* Reads the CPU model from /proc/cpuinfo and the kernel from uname. */
static void
machine_describe(struct machine *m)
{
	FILE		*f;
	char		 line[512], *p;
	struct utsname	 u;

	strlcpy(m->model, "unknown", sizeof(m->model));
	if ((f = fopen("/proc/cpuinfo", "r")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL) {
			if (strncmp(line, "model name", 10) != 0 ||
			    (p = strchr(line, ':')) == NULL)
				continue;
			p += strspn(p + 1, " \t") + 1;
			p[strcspn(p, "\n")] = '\0';
			strlcpy(m->model, p, sizeof(m->model));
			break;
		}
		fclose(f);
	}
	if (uname(&u) == -1)
		strlcpy(m->kernel, "unknown", sizeof(m->kernel));
	else
		snprintf(m->kernel, sizeof(m->kernel), "%s %s %s", u.sysname,
		    u.release, u.machine);
	m->cpus = sysconf(_SC_NPROCESSORS_ONLN);
}

/* Prints the figures as one JSON object. */
static void
machine_json(const struct options *o, const struct machine *m, FILE *f)
{
	fputs("{\"label\":", f);
	json_str(f, o->label != NULL ? o->label : "machine");
	fprintf(f, ",\"workload\":\"machine\",\"ok\":%s,\"error\":",
	    m->error[0] == '\0' ? "true" : "false");
	json_str(f, m->error);
	fprintf(f, ",\"forks\":%llu,\"fork_seconds\":%.6g,"
	    "\"fork_per_s\":%.6g,", (unsigned long long)m->forks, m->fork_s,
	    m->fork_s > 0 ? m->forks / m->fork_s : 0);
	fprintf(f, "\"wakeup_rounds\":%u,\"wakeup_us\":%.6g,"
	    "\"wakeup_min_us\":%.6g,\"wakeup_cpu_us\":%.6g,", m->rounds,
	    m->wake_us, m->wake_min_us, m->wake_cpu_us);
	fprintf(f, "\"pingpong_p50_us\":%.6g,\"pingpong_p99_us\":%.6g,",
	    m->rtt_p50_us, m->rtt_p99_us);
	fprintf(f, "\"cpus\":%ld,\"cpu_model\":", m->cpus);
	json_str(f, m->model);
	fputs(",\"kernel\":", f);
	json_str(f, m->kernel);
	fputs("}\n", f);
}

/* Prints the figures for a reader. */
static void
machine_human(const struct machine *m, FILE *f)
{
	fprintf(f, "machine: %ld CPUs, %s, %s\n", m->cpus, m->model,
	    m->kernel);
	fprintf(f, "  fork+exit+waitpid    %8.0f /s  (%llu in %.2f s)\n",
	    m->fork_s > 0 ? m->forks / m->fork_s : 0,
	    (unsigned long long)m->forks, m->fork_s);
	fprintf(f, "  bare wake-up         %8.2f us  (median; min %.2f us; "
	    "%u round trips)\n", m->wake_us, m->wake_min_us, m->rounds);
	fprintf(f, "  ping-pong round trip %8.2f us  (p50; p99 %.2f us)\n",
	    m->rtt_p50_us, m->rtt_p99_us);
	fprintf(f, "  CPU per wake-up      %8.2f us  (both processes)\n",
	    m->wake_cpu_us);
	if (m->error[0] != '\0')
		fprintf(f, "FAILED: %s\n", m->error);
}

/* Runs the machine workload and reports it; the exit status. */
int
bench_machine(const struct options *o)
{
	struct machine	 m;
	int64_t		*rtt;
	int		 bad;

	memset(&m, 0, sizeof(m));
	if ((rtt = calloc(WAKE_ROUNDS, sizeof(*rtt))) == NULL)
		err(1, "calloc");
	machine_describe(&m);
	bad = machine_forks(&m) == -1;
	if (!bad && !bench_interrupted())
		bad = machine_wakeups(&m, rtt) == -1;
	free(rtt);
	if (o->json)
		machine_json(o, &m, stdout);
	if (!o->json || !o->quiet)
		machine_human(&m, o->json ? stderr : stdout);
	if (fflush(stdout) == EOF)
		err(1, "stdout");
	return bad ? 1 : 0;
}
