/*
 * procstat.c: what /proc tells of the server and the machine:
 * the server tree's CPU time and memory, MemAvailable and friends, the
 * bench's own resident size, and the wait for the machine to settle
 * (memory holding still, the CPUs mostly idle).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <sys/types.h>

#include <ctype.h>
#include <err.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "bench.h"

#define SETTLE_TICK_MS		250	/* MemAvailable read this often */
#define SETTLE_WINDOW		9	/* readings: 2 s of them */
#define SETTLE_SLACK_KIB	2048	/* it moved at most this much */
#define SETTLE_CPU_PCT		10	/* all CPUs busy at most this much */

/*
 * Reads "Key: N kB" values of a /proc file in one pass: vals[i] for
 * keys[i], -1 for a key that is not there.  Returns how many were found.
 */
static size_t
proc_kibs(const char *path, const char *const keys[], long long *const vals[],
    size_t n)
{
	FILE		*f;
	char		 line[256];
	size_t		 i, klen, found = 0;

	for (i = 0; i < n; i++)
		*vals[i] = -1;
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (found < n && fgets(line, sizeof(line), f) != NULL) {
		for (i = 0; i < n; i++) {
			klen = strlen(keys[i]);
			if (strncmp(line, keys[i], klen) != 0 ||
			    line[klen] != ':')
				continue;
			*vals[i] = strtoll(line + klen + 1, NULL, 10);
			found++;
			break;
		}
	}
	fclose(f);
	return found;
}

struct procent {
	pid_t		 pid;
	pid_t		 ppid;
	unsigned long long ticks;
	unsigned long long child_ticks;	/* cutime+cstime */
	int		 in;
};

/* Orders process entries by pid. */
static int
procent_cmp(const void *a, const void *b)
{
	const struct procent *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

/* Finds pid in the sorted table. */
static struct procent *
procent_find(struct procent *p, size_t n, pid_t pid)
{
	struct procent	key;

	key.pid = pid;
	return bsearch(&key, p, n, sizeof(*p), procent_cmp);
}

/*
 * Reads the nanoseconds a process has run, the first field of
 * /proc/PID/schedstat; -1 if it cannot.
 */
static int
schedstat_ns(pid_t pid, unsigned long long *ns)
{
	char	path[64];
	FILE	*f;
	int	ok;

	*ns = 0;
	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	ok = fscanf(f, "%llu", ns) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

/*
 * Reads pid, ppid and CPU ticks of every process in /proc into a table
 * sorted by pid, each marked "in" if it is root; returns its size.
 */
static size_t
procent_scan(pid_t root, struct procent **tab)
{
	DIR		*d;
	struct dirent	*de;
	struct procent	*p = NULL, *np;
	size_t		 n = 0, cap = 0, r;
	char		 path[64], buf[1024], *rp;
	FILE		*f;
	unsigned long long ut, st, cut, cst;
	int		 ppid;

	*tab = NULL;
	if ((d = opendir("/proc")) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (strlen(de->d_name) > 16)
			continue;
		if (snprintf(path, sizeof(path), "/proc/%.16s/stat",
		    de->d_name) >= (int)sizeof(path))
			continue;
		if ((f = fopen(path, "r")) == NULL)
			continue;
		r = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[r] = '\0';
		if ((rp = strrchr(buf, ')')) == NULL)
			continue;
		if (sscanf(rp + 1, " %*c %d %*d %*d %*d %*d %*u %*u %*u %*u "
		    "%*u %llu %llu %llu %llu", &ppid, &ut, &st, &cut,
		    &cst) != 5)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			if ((np = reallocarray(p, cap, sizeof(*p))) == NULL)
				break;
			p = np;
		}
		p[n].pid = (pid_t)strtol(de->d_name, NULL, 10);
		p[n].ppid = ppid;
		p[n].ticks = ut + st + cut + cst;
		p[n].child_ticks = cut + cst;
		p[n].in = p[n].pid == root;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(p, n, sizeof(*p), procent_cmp);
	*tab = p;
	return n;
}

/* Marks "in" every descendant of the members already in, by ppid. */
static void
procent_tree(struct procent *p, size_t n)
{
	struct procent	*q;
	size_t		 i;
	int		 changed, pass;

	/* Each pass adds at least one generation; a daemon tree is shallow. */
	for (pass = 0; pass < 32; pass++) {
		changed = 0;
		for (i = 0; i < n; i++) {
			if (p[i].in)
				continue;
			q = procent_find(p, n, p[i].ppid);
			if (q != NULL && q->in) {
				p[i].in = 1;
				changed = 1;
			}
		}
		if (!changed)
			break;
	}
}

/*
 * Samples the process tree under root: the CPU time of every member
 * (utime+stime, plus cutime+cstime for the children it has reaped,
 * which are no longer in the tree) and, with mem, the sums of Pss and
 * Rss from smaps_rollup.  Members are found by ppid, one generation
 * per pass.  cpu_fine_s counts the members' own time from schedstat,
 * in nanoseconds, rather than in ticks truncated per process, which
 * thousands of briefly busy workers would round off.
 */
void
srv_sample(pid_t root, int mem, struct srvstat *s)
{
	struct procent	*p;
	size_t		 n, i;
	char		 path[64];
	long		 hz = sysconf(_SC_CLK_TCK);
	unsigned long long ticks = 0, child_ticks = 0;
	unsigned long long run_ns = 0, ns;
	int		 run_ok;
	static const char *const mem_keys[] = { "Pss", "Rss" };
	long long	 pss, rss;
	long long	*const mem_vals[] = { &pss, &rss };

	memset(s, 0, sizeof(*s));
	if (root <= 0)
		return;
	n = procent_scan(root, &p);
	procent_tree(p, n);
	run_ok = 1;
	for (i = 0; i < n; i++) {
		if (!p[i].in)
			continue;
		s->nproc++;
		ticks += p[i].ticks;
		child_ticks += p[i].child_ticks;
		if (schedstat_ns(p[i].pid, &ns) == -1)
			run_ok = 0;
		run_ns += ns;
		if (!mem)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/smaps_rollup",
		    (int)p[i].pid);
		(void)proc_kibs(path, mem_keys, mem_vals, 2);
		if (pss > 0)
			s->pss_kib += (uint64_t)pss;
		if (rss > 0)
			s->rss_kib += (uint64_t)rss;
	}
	free(p);
	s->ok = s->nproc > 0;
	s->cpu_s = hz > 0 ? (double)ticks / (double)hz : 0;
	s->fine_ok = s->ok && run_ok && hz > 0;
	s->cpu_fine_s = s->fine_ok ? (double)run_ns / NS +
	    (double)child_ticks / (double)hz : 0;
}

/* Reads struct meminfo's counters in one pass; m->ok if all were there. */
void
meminfo_read(struct meminfo *m)
{
	static const char *const keys[] = { "MemAvailable", "AnonPages",
	    "PageTables", "KernelStack", "Slab", "Shmem" };
	long long	*const vals[] = { &m->avail, &m->anon, &m->page_tables,
			    &m->kernel_stack, &m->slab, &m->shmem };
	size_t		 n = sizeof(keys) / sizeof(keys[0]);

	m->ok = proc_kibs("/proc/meminfo", keys, vals, n) == n;
}

/* Reads this process's resident size, in KiB; -1 if unknown. */
long long
self_rss_kib(void)
{
	static const char *const keys[] = { "VmRSS" };
	long long	 v;
	long long	*const vals[] = { &v };

	(void)proc_kibs("/proc/self/status", keys, vals, 1);
	return v;
}

/* Reads the busy and the total jiffies of all CPUs; 0 on failure. */
static int
cpustat_read(long long *busy, long long *total)
{
	FILE		*f;
	char		 line[512], *p, *end;
	long long	 v, idle = 0;
	int		 i;

	*busy = *total = 0;
	if ((f = fopen("/proc/stat", "r")) == NULL)
		return 0;
	p = fgets(line, sizeof(line), f);
	fclose(f);
	if (p == NULL || strncmp(line, "cpu ", 4) != 0)
		return 0;
	/*
	 * user nice system idle iowait irq softirq steal: idle and iowait
	 * are the CPUs' own idle time; steal is another guest's, busy.
	 */
	p = line + 4;
	for (i = 0; i < 8; i++) {
		v = strtoll(p, &end, 10);
		if (end == p)
			return 0;
		p = end;
		*total += v;
		if (i == 3 || i == 4)
			idle += v;
	}
	*busy = *total - idle;
	return 1;
}

/* Spread of the window's readings. */
static long long
settle_range(const long long *w, unsigned int n)
{
	long long	lo = w[0], hi = w[0];
	unsigned int	i;

	for (i = 1; i < n; i++) {
		lo = w[i] < lo ? w[i] : lo;
		hi = w[i] > hi ? w[i] : hi;
	}
	return hi - lo;
}

/*
 * Waits until the machine settles, at most secs seconds, into *st:
 * MemAvailable holds still over the window and, with cpu, the CPUs
 * are mostly idle over it.  The kernel gives back what an earlier
 * run's processes and sockets held over many seconds after they are
 * gone (on a VM that reports free pages to its host, a quarter of a
 * gigabyte took 18 s), and reclaims meanwhile; a baseline or a latency
 * measured then would carry that return, even below zero.
 */
void
settle_wait(unsigned int secs, int cpu, struct settle *st)
{
	struct meminfo		 m;
	struct timespec		 tick = { 0, SETTLE_TICK_MS * 1000000L };
	long long		 win[SETTLE_WINDOW];
	long long		 busy[SETTLE_WINDOW], total[SETTLE_WINDOW];
	long long		 db, dt;
	int64_t			 t0, deadline;
	unsigned int		 n = 0, k, first;

	memset(st, 0, sizeof(*st));
	st->cpu_pct = -1;
	if (secs == 0)
		return;
	t0 = clock_now_ns();
	deadline = t0 + (int64_t)secs * NS;
	while (!bench_interrupted()) {
		meminfo_read(&m);
		k = n % SETTLE_WINDOW;
		if (!m.ok || (cpu && !cpustat_read(&busy[k], &total[k])))
			break;
		win[k] = m.avail;
		if (++n >= SETTLE_WINDOW) {
			st->mem_range_kib = settle_range(win, SETTLE_WINDOW);
			first = n % SETTLE_WINDOW;	/* the oldest */
			db = busy[k] - busy[first];
			dt = total[k] - total[first];
			if (cpu)
				st->cpu_pct = dt > 0 ? 100.0 * db / dt : 0;
			if (st->mem_range_kib <= SETTLE_SLACK_KIB &&
			    (!cpu || st->cpu_pct <= SETTLE_CPU_PCT)) {
				st->settled = 1;
				break;
			}
		}
		if (clock_now_ns() >= deadline)
			break;
		(void)nanosleep(&tick, NULL);
	}
	st->secs = (double)(clock_now_ns() - t0) / NS;
}

/* Waits for memory alone to hold still (the holds' baseline). */
double
procstat_settle(unsigned int secs, int *settled)
{
	struct settle	st;

	settle_wait(secs, 0, &st);
	*settled = st.settled;
	return st.secs;
}

/* The settle workload: waits, and tells how long and why it ended. */
int
bench_settle(const struct options *o)
{
	struct settle	st;
	FILE		*f = o->json ? stderr : stdout;

	settle_wait(o->settle, 1, &st);
	if (o->json) {
		fputs("{\"label\":", stdout);
		json_str(stdout, o->label != NULL ? o->label : "settle");
		printf(",\"workload\":\"settle\",\"ok\":true,"
		    "\"settle_s\":%.3f,\"settled\":%s,\"ended\":\"%s\","
		    "\"max_s\":%u,\"memavail_range_kib\":%lld,"
		    "\"cpu_busy_pct\":%.1f}\n", st.secs,
		    st.settled ? "true" : "false",
		    st.settled ? "settled" : "bound", o->settle,
		    st.mem_range_kib, st.cpu_pct);
	}
	if (!o->json || !o->quiet)
		fprintf(f, "settle: %s after %.1f s (MemAvailable moved %lld "
		    "KiB, CPUs %.1f%% busy over the last %d ms)\n",
		    st.settled ? "settled" : "not settled, bound reached",
		    st.secs, st.mem_range_kib, st.cpu_pct,
		    (SETTLE_WINDOW - 1) * SETTLE_TICK_MS);
	if (fflush(stdout) == EOF)
		err(1, "stdout");
	return 0;
}
