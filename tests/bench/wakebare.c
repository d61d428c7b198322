/*
 * wakebare: the bare wake-up, for tests/bench/wakecost.py.  N children
 * each block in read(2) on a Unix socketpair; each round the parent
 * writes a byte to every child, which reads it and writes it back: half
 * a ping-pong.  Prints the children's CPU time (sum_exec_runtime from
 * /proc/PID/schedstat) per child per round, in microseconds.
 *
 * usage: wakebare N ROUNDS GAP_US
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <err.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* A child: echoes each byte until the parent closes its end. */
static void
child(int fd)
{
	char	c;

	while (read(fd, &c, 1) == 1)
		if (write(fd, &c, 1) != 1)
			break;
	_exit(0);
}

/* Nanoseconds pid has run, or 0 if it is gone. */
static long long
runtime_ns(pid_t pid)
{
	char		 path[64];
	FILE		*f;
	long long	 ns = 0;

	(void)snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fscanf(f, "%lld", &ns) != 1)
		ns = 0;
	(void)fclose(f);
	return ns;
}

/* Sums runtime_ns over n children. */
static long long
total_ns(const pid_t *pid, int n)
{
	long long	t = 0;
	int		i;

	for (i = 0; i < n; i++)
		t += runtime_ns(pid[i]);
	return t;
}

int
main(int argc, char **argv)
{
	pid_t		*pid;
	long long	 before, after;
	char		 c = 'x';
	int		*fd, sv[2], i, r, n, rounds, gap_us;

	if (argc != 4)
		errx(2, "usage: wakebare N ROUNDS GAP_US");
	n = atoi(argv[1]);
	rounds = atoi(argv[2]);
	gap_us = atoi(argv[3]);
	if (n < 1 || rounds < 1 || gap_us < 0)
		errx(2, "bad arguments");
	if ((fd = calloc((size_t)n, sizeof(*fd))) == NULL ||
	    (pid = calloc((size_t)n, sizeof(*pid))) == NULL)
		err(1, "calloc");
	for (i = 0; i < n; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
			err(1, "socketpair");
		if ((pid[i] = fork()) == -1)
			err(1, "fork");
		if (pid[i] == 0) {
			(void)close(sv[0]);
			child(sv[1]);
		}
		(void)close(sv[1]);
		fd[i] = sv[0];
	}
	(void)usleep(200000);
	before = total_ns(pid, n);
	for (r = 0; r < rounds; r++) {
		for (i = 0; i < n; i++)
			if (write(fd[i], &c, 1) != 1)
				err(1, "write");
		for (i = 0; i < n; i++)
			if (read(fd[i], &c, 1) != 1)
				err(1, "read");
		(void)usleep((useconds_t)gap_us);
	}
	after = total_ns(pid, n);
	printf("%.3f\n", (double)(after - before) / 1000.0 /
	    ((double)n * rounds));
	for (i = 0; i < n; i++)
		(void)close(fd[i]);
	for (i = 0; i < n; i++)
		if (waitpid(pid[i], NULL, 0) == -1)
			err(1, "waitpid");
	return 0;
}
