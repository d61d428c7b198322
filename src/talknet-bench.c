/*
 * talknet-bench.c: a load generator for talknetd and, over IRC, for
 * servers such as ngircd.
 *
 * One thread, one epoll set, non-blocking sockets.  Clients connect in
 * bursts of at most --concurrency at once so the server's listen backlog
 * is never overrun, identify (or register, over IRC), and then run one
 * workload: fanout, private, connect or hold.  Every message carries its
 * send time (CLOCK_MONOTONIC) in its text, so each delivered copy gives
 * one latency; copies that never arrive are counted as missing.  The
 * latencies go into a log-linear histogram (under 0.4% error), from
 * which the percentiles, the JSON CDF and the SVG chart are drawn.
 *
 * The TalkNet requests are built with the lib/ codec (proto_encode).
 * Replies land in a lib/ buffer per connection and are split with
 * memchr() (lib/frame.c scans byte by byte, which cost 41% of this
 * program's CPU at two million lines a second); texts, the hot path, are
 * read with a light scan, and the few replies that steer the set-up with
 * proto_parse_reply.  Every phase has a deadline, so the program always
 * stops.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1	/* memmem() */
#endif

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "proto.h"
#include "bench.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION		"0.1.0"
#endif

#define DEFAULT_HOST		"127.0.0.1"
#define DEFAULT_PORT_TALKNET	"8001"
#define DEFAULT_PORT_IRC	"6667"
#define READ_WANT		8192	/* bytes asked of one read */
#define READS_PER_EVENT		4	/* then let other sockets have a turn */
#define SERVER_MAX_LINE		(1024 * 1024)
#define MAX_EVENTS		1024
#define SEND_BURST		256	/* catch-up sends per sender per round */
#define INVITE_CHUNK		100	/* names per INVITE */
#define CONNECT_RETRIES		5	/* per client during set-up */
#define NAME_ATTEMPTS		26	/* letters tried when a name is taken */
#define TEARDOWN_NS		(2 * NS)
#define TICK_MAX_MS		100	/* the loop wakes at least this often */
#define MAX_CLIENTS		999999	/* names stay within 8 code points */
#define MAX_SEQ_SLOTS		(16u * 1024 * 1024)
#define IRC_MAX_BYTES		400	/* text that fits a 512-byte IRC line */
#define CDF_STEP		0.02	/* in "nines" (-log10(1 - p)) */
#define CDF_MAX_NINES		6.0
#define SETTLE_TICK_MS		250	/* MemAvailable read this often */
#define SETTLE_WINDOW		9	/* readings: 2 s of them */
#define SETTLE_SLACK_KIB	2048	/* it moved at most this much */

enum cstate {
	C_NEW = 0,	/* not started yet */
	C_WAIT,		/* waiting to retry its connect */
	C_CONNECTING,	/* non-blocking connect in progress */
	C_REGISTER,	/* IDENTIFY or NICK/USER sent */
	C_IDENT,	/* identified, waiting for the room */
	C_JOINING,	/* JOIN_ROOM or JOIN sent */
	C_READY,	/* in the workload */
	C_QUITTING,	/* DISCONNECT or QUIT sent, waiting for the close */
	C_CLOSED	/* done or failed, fd closed */
};

enum phase {
	PH_SETUP,	/* connect, identify, join */
	PH_WARMUP,	/* sending, not counted */
	PH_MEASURE,	/* sending, counted */
	PH_DRAIN,	/* waiting for the last copies */
	PH_HOLD,	/* idle clients, before the memory sample */
	PH_TEARDOWN,	/* disconnecting */
	PH_DONE
};

/* A log-linear histogram of nanoseconds: 128 buckets per octave. */
#define H_SUB_BITS	7
#define H_SUB		(1u << H_SUB_BITS)
#define H_LINEAR	(2u * H_SUB)		/* values below are exact */
#define H_OCTAVES	44
#define H_BUCKETS	(H_LINEAR + H_OCTAVES * H_SUB)

struct hist {
	uint64_t	 cnt[H_BUCKETS];
	uint64_t	 n;
	uint64_t	 min;
	uint64_t	 max;
	long double	 sum;
};

struct conn {
	int		 fd;
	unsigned int	 idx;
	enum cstate	 st;
	uint32_t	 ev;		/* events registered with epoll */
	unsigned int	 retries;
	unsigned int	 attempt;	/* name letter offset */
	char		 name[16];
	struct buf	 in;
	struct buf	 out;
	int		 sender;	/* sends on a schedule */
	int		 pinger;	/* private: measures round trips */
	unsigned int	 peer;		/* private: the other side */
	int64_t		 next_ns;	/* next scheduled send, or retry */
	uint64_t	 seq;		/* last sequence number sent */
	int64_t		 t_start;	/* connect started */
	TAILQ_ENTRY(conn) retry_entry;
};
TAILQ_HEAD(conn_queue, conn);

/* The system's memory counters at one moment, from /proc/meminfo, KiB. */
struct meminfo {
	int		 ok;
	long long	 avail;		/* MemAvailable */
	long long	 anon;		/* AnonPages */
	long long	 page_tables;	/* PageTables */
	long long	 kernel_stack;	/* KernelStack */
	long long	 slab;		/* Slab */
	long long	 shmem;		/* Shmem */
};

struct bench {
	struct options	*o;
	int		 ep;
	struct sockaddr_storage sa;
	socklen_t	 salen;
	char		 addrtext[INET6_ADDRSTRLEN + 8];
	struct conn	*c;
	unsigned int	 n;
	unsigned int	 next_new;	/* next C_NEW connection to start */
	unsigned int	 inflight;
	unsigned int	 nident;
	unsigned int	 nready;
	unsigned int	 nopen;
	struct conn_queue retryq;
	enum phase	 ph;
	char		 tag;		/* first letter of this run's names */
	char		 room[32];
	int64_t		 t0;
	int64_t		 t_ident;	/* all identified */
	int64_t		 t_ready;	/* all ready (joined) */
	int64_t		 t_measure;
	int64_t		 t_end;		/* end of the measured window */
	int64_t		 t_finish;	/* end of drain or hold */
	int64_t		 t_phase_end;	/* deadline of the current phase */
	int64_t		 deadline;	/* the whole run */
	int64_t		 t_progress;
	int64_t		 interval_ns;	/* between one sender's sends */
	/* counters */
	uint64_t	 sent;
	uint64_t	 sent_all;
	uint64_t	 expected;
	uint64_t	 delivered;
	uint64_t	 delivered_all;
	uint64_t	 misordered;
	uint64_t	 foreign;	/* text lines without our stamp */
	uint64_t	 server_errors;
	uint64_t	 disconnects;
	uint64_t	 connects_ok;
	uint64_t	 connects_failed;
	uint64_t	 connect_retries;
	int64_t		 max_lag_ns;
	char		 first_error[256];
	char		 setup_error[256];
	int		 failed;	/* set-up failed or interrupted */
	int		 busy;		/* buffers stay allocated: fanout, private */
	uint32_t	*lastseq;	/* n x slots, or NULL */
	unsigned int	 seq_slots;
	struct hist	 h;
	struct proto_parser pp;
	struct buf	 line;		/* scratch for IRC lines */
	char		*text;		/* scratch for a message text */
	/* server and machine samples */
	struct srvstat	 srv_start, srv_m0, srv_end;
	struct meminfo	 mem_start, mem_end;
	double		 settle_s;	/* waited for memory to settle */
	int		 settled;	/* it held still before the baseline */
	long long	 selfrss_start, selfrss_end;	/* KiB */
	struct rusage	 ru_start;
	double		 bench_cpu_s;
};

static volatile sig_atomic_t got_signal;

static void	 usage(FILE *, int) __attribute__((__noreturn__));
static void	 bench_setup_error(struct bench *, const char *, ...)
		    __attribute__((__format__(__printf__, 2, 3)));
static void	 conn_lost(struct bench *, struct conn *, const char *);
static void	 conn_send_line(struct bench *, struct conn *, const char *,
		    ...) __attribute__((__format__(__printf__, 3, 4)));

static const char *const workload_names[] = {
	[WL_NONE] = "none",
	[WL_FANOUT] = "fanout",
	[WL_PRIVATE] = "private",
	[WL_CONNECT] = "connect",
	[WL_HOLD] = "hold",
	[WL_MACHINE] = "machine",
	[WL_JOIN] = "join",
	[WL_BROADCAST] = "broadcast"
};

/* Prints the usage text and exits. */
static void
usage(FILE *f, int status)
{
	fprintf(f,
"usage: %s [options] fanout|private|connect|hold|join|broadcast\n"
"       %s [--json] machine\n"
"       %s --svg FILE --compare RESULT.json ...\n"
"  -H, --host HOST          server address (default 127.0.0.1)\n"
"  -p, --port PORT          server port (8001; 6667 with --proto irc)\n"
"      --allow-remote       allow a host that is not loopback\n"
"  -c, --clients N          clients (fanout 500, private 100, hold 1000,\n"
"                           connect: connections in all, 2000; join,\n"
"                           broadcast: clients held, 1000)\n"
"  -s, --senders S          fanout senders (default 10)\n"
"  -r, --rate R             msgs/s offered in all (fanout 1000; private 0:\n"
"                           closed loop)\n"
"  -b, --bytes B            message text size (default 100)\n"
"  -d, --duration D         seconds measured (fanout, private 10; connect\n"
"                           at most 10; hold: idle time before sampling, 2)\n"
"      --warmup W           seconds sent before measuring (default 2)\n"
"      --drain T            seconds to wait for late copies (default 5;\n"
"                           join, broadcast: for one step, 30)\n"
"      --setup-timeout T    seconds for connecting and joining (default 60)\n"
"      --concurrency K      connects in flight at once (default 8)\n"
"      --repeat R           join: serial joins timed (50); broadcast:\n"
"                           texts timed (5)\n"
"      --proto talknet|irc  protocol (default talknet)\n"
"      --room               fanout in one room (always so over IRC)\n"
"      --server-pid PID     sample CPU and memory of PID and its children\n"
"      --settle S           seconds to wait at most for the system's memory\n"
"                           to hold still before the baseline (hold 30,\n"
"                           others 0: no wait)\n"
"      --json               print the result as JSON on stdout\n"
"      --label TEXT         name of this result in JSON and charts\n"
"      --svg FILE           write the latency CDF as an SVG chart\n"
"      --compare FILE       add a --json result to the chart (repeatable)\n"
"      --title TEXT         chart title\n"
"  -q, --quiet              no progress, no table with --json\n"
"  -h, --help               show this help\n"
"  -V, --version            show the version\n",
	    getprogname(), getprogname(), getprogname());
	exit(status);
}

/* Tells the workloads of other files whether SIGINT or SIGTERM came. */
int
bench_interrupted(void)
{
	return got_signal != 0;
}

/* Records SIGINT or SIGTERM for the main loop. */
static void
on_signal(int sig)
{
	got_signal = sig;
}

/* Remembers the first problem of the run, for the report. */
static void
bench_note(struct bench *b, const char *fmt, ...)
    __attribute__((__format__(__printf__, 2, 3)));
static void
bench_note(struct bench *b, const char *fmt, ...)
{
	va_list	ap;

	if (b->first_error[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(b->first_error, sizeof(b->first_error), fmt, ap);
	va_end(ap);
}

/* Stops a set-up that cannot finish; the results say why. */
static void
bench_setup_error(struct bench *b, const char *fmt, ...)
{
	va_list	ap;

	if (b->setup_error[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(b->setup_error, sizeof(b->setup_error), fmt, ap);
		va_end(ap);
	}
	b->failed = 1;
}

/* --- the histogram ------------------------------------------------------ */

/* Maps a value to its bucket. */
static unsigned int
hist_index(uint64_t v)
{
	unsigned int	msb, shift, idx;

	if (v < H_LINEAR)
		return (unsigned int)v;
	msb = 63 - (unsigned int)__builtin_clzll(v);
	shift = msb - H_SUB_BITS;
	idx = H_LINEAR + (shift - 1) * H_SUB +
	    (unsigned int)((v >> shift) - H_SUB);
	return idx < H_BUCKETS ? idx : H_BUCKETS - 1;
}

/* The middle of a bucket, the value it stands for. */
static uint64_t
hist_value(unsigned int idx)
{
	unsigned int	k, shift;
	uint64_t	m;

	if (idx < H_LINEAR)
		return idx;
	k = idx - H_LINEAR;
	shift = k / H_SUB + 1;
	m = k % H_SUB + H_SUB;
	return (m << shift) + ((uint64_t)1 << (shift - 1));
}

/* Adds one value in nanoseconds. */
static void
hist_add(struct hist *h, uint64_t v)
{
	h->cnt[hist_index(v)]++;
	if (h->n == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->n++;
	h->sum += v;
}

/* The value at quantile q (0..1), in nanoseconds; 0 when empty. */
static uint64_t
hist_quantile(const struct hist *h, double q)
{
	uint64_t	target, acc = 0, v;
	unsigned int	i;

	if (h->n == 0)
		return 0;
	if (q <= 0)
		return h->min;
	if (q >= 1)
		return h->max;
	target = (uint64_t)ceil(q * (double)h->n);
	if (target < 1)
		target = 1;
	for (i = 0; i < H_BUCKETS; i++) {
		acc += h->cnt[i];
		if (acc >= target)
			break;
	}
	v = hist_value(i < H_BUCKETS ? i : H_BUCKETS - 1);
	if (v < h->min)
		v = h->min;
	if (v > h->max)
		v = h->max;
	return v;
}

/* Nanoseconds as milliseconds. */
static double
ns_ms(uint64_t v)
{
	return (double)v / (double)MS;
}

/* --- /proc samples ------------------------------------------------------ */

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
	DIR		*d;
	struct dirent	*de;
	struct procent	*p = NULL, *np, *q;
	size_t		 n = 0, cap = 0, i;
	char		 path[64], buf[1024], *rp;
	FILE		*f;
	size_t		 r;
	int		 changed, pass;
	long		 hz = sysconf(_SC_CLK_TCK);
	unsigned long long ticks = 0, ut, st, cut, cst, child_ticks = 0;
	unsigned long long run_ns = 0, ns;
	int		 run_ok;
	int		 ppid;
	static const char *const mem_keys[] = { "Pss", "Rss" };
	long long	 pss, rss;
	long long	*const mem_vals[] = { &pss, &rss };

	memset(s, 0, sizeof(*s));
	if (root <= 0 || (d = opendir("/proc")) == NULL)
		return;
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
static void
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
static long long
self_rss_kib(void)
{
	static const char *const keys[] = { "VmRSS" };
	long long	 v;
	long long	*const vals[] = { &v };

	(void)proc_kibs("/proc/self/status", keys, vals, 1);
	return v;
}

/* --- the address -------------------------------------------------------- */

/* Tells whether an address is loopback (127/8, ::1, ::ffff:127/104). */
static int
addr_is_loopback(const struct sockaddr *sa)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;

	if (sa->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)(const void *)sa;
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) &&
		    sin6->sin6_addr.s6_addr[12] == 127;
	}
	return 0;
}

/*
 * Resolves --host and --port to one address, and its "host:port" text
 * into text; refuses remote hosts.
 */
void
bench_addr(const struct options *o, struct sockaddr_storage *sa,
    socklen_t *salen, char *text, size_t textlen)
{
	struct addrinfo	 hints, *res;
	char		 host[INET6_ADDRSTRLEN], serv[16];
	int		 e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((e = getaddrinfo(o->host, o->port, &hints, &res)) != 0)
		errx(1, "%s port %s: %s", o->host, o->port, gai_strerror(e));
	if (res->ai_addrlen > sizeof(*sa))
		errx(1, "%s: address too long", o->host);
	memcpy(sa, res->ai_addr, res->ai_addrlen);
	*salen = res->ai_addrlen;
	freeaddrinfo(res);
	if (!o->allow_remote && !addr_is_loopback((struct sockaddr *)sa))
		errx(2, "%s is not a loopback address; use --allow-remote "
		    "to load a remote server", o->host);
	if (getnameinfo((struct sockaddr *)sa, *salen, host, sizeof(host),
	    serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		strlcpy(host, o->host, sizeof(host));
	snprintf(text, textlen, "%s:%s", host, o->port);
}

/* Resolves the bench's address. */
static void
bench_resolve(struct bench *b)
{
	bench_addr(b->o, &b->sa, &b->salen, b->addrtext, sizeof(b->addrtext));
}

/* --- connections -------------------------------------------------------- */

/* States that count against --concurrency. */
static int
state_inflight(enum cstate st)
{
	return st == C_CONNECTING || st == C_REGISTER || st == C_QUITTING;
}

/* Moves a connection to a new state, keeping the in-flight count. */
static void
conn_set_state(struct bench *b, struct conn *c, enum cstate st)
{
	if (state_inflight(c->st))
		b->inflight--;
	if (state_inflight(st))
		b->inflight++;
	c->st = st;
}

/* Sets the epoll events of a connection if they changed. */
static void
conn_watch(struct bench *b, struct conn *c, uint32_t ev)
{
	struct epoll_event	e;

	if (c->fd < 0 || ev == c->ev)
		return;
	memset(&e, 0, sizeof(e));
	e.events = ev;
	e.data.u32 = c->idx;
	if (epoll_ctl(b->ep, EPOLL_CTL_MOD, c->fd, &e) == -1)
		err(1, "epoll_ctl");
	c->ev = ev;
}

/* A client's name for messages; it has none before it identifies. */
static const char *
conn_label(const struct conn *c)
{
	return c->name[0] != '\0' ? c->name : "unnamed";
}

/* Closes the socket and frees the buffers; the state becomes C_CLOSED. */
static void
conn_close(struct bench *b, struct conn *c)
{
	if (c->fd >= 0) {
		/* Closing the only fd also drops it from the epoll set. */
		close(c->fd);
		c->fd = -1;
		b->nopen--;
	}
	buf_free(&c->in);
	buf_free(&c->out);
	c->ev = 0;
	conn_set_state(b, c, C_CLOSED);
}

/* Writes what is queued; watches EPOLLOUT while some is left. */
static int
conn_flush(struct bench *b, struct conn *c)
{
	ssize_t	w;

	while (buf_pending(&c->out) > 0) {
		w = send(c->fd, buf_head(&c->out), buf_pending(&c->out),
		    MSG_NOSIGNAL);
		if (w == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_lost(b, c, strerror(errno));
			return -1;
		}
		buf_drain(&c->out, (size_t)w);
	}
	if (buf_pending(&c->out) > 0) {
		conn_watch(b, c, EPOLLIN | EPOLLOUT);
	} else {
		if (!b->busy)
			buf_free(&c->out);
		conn_watch(b, c, EPOLLIN);
	}
	return 0;
}

/* Queues one IRC line (CRLF added) and writes it. */
static void
conn_send_line(struct bench *b, struct conn *c, const char *fmt, ...)
{
	va_list	ap;
	int	len;

	if (c->fd < 0)
		return;
	buf_reset(&b->line);
	if (buf_reserve(&b->line, 1024) == -1)
		err(1, "buf_reserve");
	va_start(ap, fmt);
	len = vsnprintf(b->line.data, 1022, fmt, ap);
	va_end(ap);
	if (len < 0 || len > 1021)
		errx(1, "IRC line too long");
	memcpy(b->line.data + len, "\r\n", 2);
	if (buf_append(&c->out, b->line.data, (size_t)len + 2) == -1)
		err(1, "buf_append");
	conn_flush(b, c);
}

/* Encodes one TalkNet request and writes it. */
static void
conn_send_msg(struct bench *b, struct conn *c, const struct msg *m)
{
	if (c->fd < 0)
		return;
	if (proto_encode(&c->out, m) == -1)
		err(1, "proto_encode");
	conn_flush(b, c);
}

/* Gives a connection its name for this attempt: a letter and its index. */
static void
conn_name(struct bench *b, struct conn *c)
{
	snprintf(c->name, sizeof(c->name), "%c%u",
	    'a' + (b->tag - 'a' + (int)c->attempt) % 26, c->idx);
}

/* Sends IDENTIFY, or NICK and USER. */
static void
conn_register(struct bench *b, struct conn *c)
{
	struct msg	m;

	conn_name(b, c);
	conn_set_state(b, c, C_REGISTER);
	if (b->o->proto == PK_IRC) {
		conn_send_line(b, c, "NICK %s\r\nUSER %s 0 * :talknet-bench",
		    c->name, c->name);
		return;
	}
	memset(&m, 0, sizeof(m));
	m.type = MSG_IDENTIFY;
	m.username = str_c(c->name);
	conn_send_msg(b, c, &m);
}

/* Sends DISCONNECT or QUIT and half-closes, to wait for the server. */
static void
conn_quit(struct bench *b, struct conn *c)
{
	struct msg	m;

	if (b->o->proto == PK_IRC) {
		conn_send_line(b, c, "QUIT :bye");
	} else {
		memset(&m, 0, sizeof(m));
		m.type = MSG_DISCONNECT;
		conn_send_msg(b, c, &m);
	}
	if (c->fd < 0)
		return;
	if (buf_pending(&c->out) > 0) {
		/* A shut-down socket would drop it: give up on this one. */
		conn_close(b, c);
		return;
	}
	(void)shutdown(c->fd, SHUT_WR);
	conn_set_state(b, c, C_QUITTING);
}

/* Starts a non-blocking connect. */
static void
conn_start(struct bench *b, struct conn *c, int64_t now)
{
	struct epoll_event	e;
	int			fd, one = 1;

	c->t_start = now;
	fd = socket(b->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1) {
		conn_set_state(b, c, C_CONNECTING);
		conn_lost(b, c, strerror(errno));
		return;
	}
	/* Each message must leave at once: latency is what is measured. */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		warn("TCP_NODELAY");
	c->fd = fd;
	b->nopen++;
	buf_init(&c->in);
	buf_init(&c->out);
	memset(&e, 0, sizeof(e));
	e.events = EPOLLIN | EPOLLOUT;
	e.data.u32 = c->idx;
	if (epoll_ctl(b->ep, EPOLL_CTL_ADD, fd, &e) == -1)
		err(1, "epoll_ctl");
	c->ev = e.events;
	conn_set_state(b, c, C_CONNECTING);
	if (connect(fd, (struct sockaddr *)&b->sa, b->salen) == 0) {
		conn_register(b, c);
		return;
	}
	if (errno != EINPROGRESS)
		conn_lost(b, c, strerror(errno));
}

/* Marks a connection ready for the workload. */
static void
conn_ready(struct bench *b, struct conn *c, int64_t now)
{
	conn_set_state(b, c, C_READY);
	if (++b->nready == b->n)
		b->t_ready = now;
}

/* Handles a successful IDENTIFY or IRC registration. */
static void
conn_identified(struct bench *b, struct conn *c, int64_t now)
{
	const struct options	*o = b->o;
	struct msg		 m;

	b->nident++;
	if (o->wl == WL_CONNECT) {
		hist_add(&b->h, (uint64_t)(now - c->t_start));
		conn_quit(b, c);
		return;
	}
	conn_set_state(b, c, C_IDENT);
	if (b->nident == b->n)
		b->t_ident = now;
	if (o->wl == WL_FANOUT && o->proto == PK_IRC) {
		conn_set_state(b, c, C_JOINING);
		conn_send_line(b, c, "JOIN #%s", b->room);
		return;
	}
	if (o->wl == WL_FANOUT && o->room) {
		/* The creator makes the room once everyone is known. */
		if (b->nident == b->n) {
			memset(&m, 0, sizeof(m));
			m.type = MSG_NEW_ROOM;
			m.roomname = str_c(b->room);
			conn_set_state(b, &b->c[0], C_JOINING);
			conn_send_msg(b, &b->c[0], &m);
		}
		return;
	}
	conn_ready(b, c, now);
}

/* The creator has its room: invites everyone else, in chunks. */
static void
bench_invite_all(struct bench *b, struct conn *creator)
{
	struct str	*names;
	struct msg	 m;
	unsigned int	 i, k;

	if ((names = calloc(INVITE_CHUNK, sizeof(*names))) == NULL)
		err(1, "calloc");
	for (i = 1; i < b->n; i += k) {
		for (k = 0; k < INVITE_CHUNK && i + k < b->n; k++)
			names[k] = str_c(b->c[i + k].name);
		memset(&m, 0, sizeof(m));
		m.type = MSG_INVITE;
		m.roomname = str_c(b->room);
		m.list = names;
		m.nlist = k;
		if (proto_encode(&creator->out, &m) == -1)
			err(1, "proto_encode");
	}
	free(names);
	conn_flush(b, creator);
}

/*
 * Handles a connection that broke or was closed.  During set-up it is
 * retried a few times; in the connect workload it is one failure; later
 * it is a disconnect, and its missing copies show in the results.
 */
static void
conn_lost(struct bench *b, struct conn *c, const char *why)
{
	enum cstate	old = c->st;
	int64_t		now = clock_now_ns();

	conn_close(b, c);
	if (b->ph >= PH_TEARDOWN)
		return;
	if (b->o->wl == WL_CONNECT) {
		b->connects_failed++;
		bench_note(b, "connection %u: %s", c->idx, why);
		return;
	}
	if (b->ph == PH_SETUP && (old == C_CONNECTING || old == C_REGISTER) &&
	    c->retries < CONNECT_RETRIES) {
		c->retries++;
		b->connect_retries++;
		bench_note(b, "client %u: %s (retried)", c->idx, why);
		c->next_ns = now + (int64_t)c->retries * 100 * MS;
		conn_set_state(b, c, C_WAIT);
		TAILQ_INSERT_TAIL(&b->retryq, c, retry_entry);
		return;
	}
	if (b->ph == PH_SETUP) {
		bench_setup_error(b, "client %u (%s): %s", c->idx,
		    conn_label(c), why);
		return;
	}
	b->disconnects++;
	bench_note(b, "client %u (%s): %s", c->idx, conn_label(c), why);
}

/* --- messages ----------------------------------------------------------- */

/* Writes "T<sender>:<seq>:<ns>:" padded with 'x' to the payload size. */
static size_t
stamp_build(struct bench *b, unsigned int sender, uint64_t seq, int64_t t)
{
	int	len;
	size_t	n;

	len = snprintf(b->text, b->o->bytes + 64, "T%u:%" PRIu64 ":%" PRId64
	    ":", sender, seq, t);
	if (len < 0)
		errx(1, "snprintf");
	n = (size_t)len;
	if (n < b->o->bytes) {
		memset(b->text + n, 'x', b->o->bytes - n);
		n = b->o->bytes;
	}
	b->text[n] = '\0';
	return n;
}

/* Reads an unsigned decimal ending in ':'; -1 if there is none. */
static int
scan_u64(const char **pp, const char *end, uint64_t *v)
{
	const char	*p = *pp;
	uint64_t	 x = 0;

	if (p >= end || (unsigned char)(*p - '0') > 9)
		return -1;
	while (p < end && (unsigned char)(*p - '0') <= 9) {
		if (x > (UINT64_MAX - 9) / 10)
			return -1;
		x = x * 10 + (uint64_t)(*p - '0');
		p++;
	}
	if (p >= end || *p != ':')
		return -1;
	*pp = p + 1;
	*v = x;
	return 0;
}

/* Parses a stamp made by stamp_build(). */
static int
stamp_parse(const char *p, size_t len, uint64_t *sender, uint64_t *seq,
    int64_t *t)
{
	const char	*end = p + len;
	uint64_t	 ts;

	if (len < 1 || *p != 'T')
		return -1;
	p++;
	if (scan_u64(&p, end, sender) == -1 || scan_u64(&p, end, seq) == -1 ||
	    scan_u64(&p, end, &ts) == -1 || ts > INT64_MAX)
		return -1;
	*t = (int64_t)ts;
	return 0;
}

/* Sends one timed message from a sender or pinger. */
static void
bench_send(struct bench *b, struct conn *c, int64_t t)
{
	struct msg	 m;
	size_t		 len;
	struct conn	*peer;

	c->seq++;
	len = stamp_build(b, c->idx, c->seq, t);
	b->sent_all++;
	if (b->t_measure != 0 && t >= b->t_measure && t < b->t_end) {
		b->sent++;
		b->expected += b->o->wl == WL_FANOUT ? b->n - 1 : 1;
	}
	if (b->o->wl == WL_PRIVATE) {
		peer = &b->c[c->peer];
		if (b->o->proto == PK_IRC) {
			conn_send_line(b, c, "PRIVMSG %s :%s", peer->name,
			    b->text);
			return;
		}
		memset(&m, 0, sizeof(m));
		m.type = MSG_TEXT;
		m.username = str_c(peer->name);
		m.text.p = b->text;
		m.text.len = len;
		conn_send_msg(b, c, &m);
		return;
	}
	if (b->o->proto == PK_IRC) {
		conn_send_line(b, c, "PRIVMSG #%s :%s", b->room, b->text);
		return;
	}
	memset(&m, 0, sizeof(m));
	m.type = b->o->room ? MSG_ROOM_TEXT : MSG_PUBLIC_TEXT;
	m.roomname = str_c(b->room);
	m.text.p = b->text;
	m.text.len = len;
	conn_send_msg(b, c, &m);
}

/* Tells whether timed sends may go out now. */
static int
bench_sending(const struct bench *b, int64_t now)
{
	return (b->ph == PH_WARMUP || b->ph == PH_MEASURE) && now < b->t_end;
}

/* Handles one delivered text: records its latency, or echoes it. */
static void
bench_on_text(struct bench *b, struct conn *c, const char *text, size_t len,
    int64_t now)
{
	uint64_t	 sender, seq;
	int64_t		 t;
	uint32_t	*last;
	struct msg	 m;

	if (stamp_parse(text, len, &sender, &seq, &t) == -1 ||
	    sender >= b->n) {
		b->foreign++;
		return;
	}
	if (b->o->wl == WL_PRIVATE && !c->pinger) {
		/* The echo side sends the text back as it came. */
		if (c->st != C_READY)
			return;
		if (b->o->proto == PK_IRC) {
			conn_send_line(b, c, "PRIVMSG %s :%.*s",
			    b->c[c->peer].name, (int)len, text);
			return;
		}
		memset(&m, 0, sizeof(m));
		m.type = MSG_TEXT;
		m.username = str_c(b->c[c->peer].name);
		m.text.p = text;
		m.text.len = len;
		conn_send_msg(b, c, &m);
		return;
	}
	b->delivered_all++;
	if (b->lastseq != NULL) {
		last = &b->lastseq[(size_t)c->idx * b->seq_slots +
		    (b->o->wl == WL_PRIVATE ? 0 : sender % b->seq_slots)];
		if (seq <= *last)
			b->misordered++;
		else
			*last = (uint32_t)seq;
	}
	if (b->t_measure != 0 && t >= b->t_measure && t < b->t_end) {
		b->delivered++;
		hist_add(&b->h, now > t ? (uint64_t)(now - t) : 0);
	}
	/* A closed-loop pinger sends the next one as soon as this is back. */
	if (b->o->wl == WL_PRIVATE && b->o->rate == 0 &&
	    bench_sending(b, now))
		bench_send(b, c, clock_now_ns());
}

/* Handles a RESPONSE: the set-up steps, or an error from the server. */
static void
bench_on_response(struct bench *b, struct conn *c, const struct msg *m,
    int64_t now)
{
	if (c->st == C_QUITTING || b->ph >= PH_TEARDOWN)
		return;
	if (m->op == MSG_IDENTIFY && c->st == C_REGISTER) {
		if (m->res == RES_SUCCESS) {
			conn_identified(b, c, now);
		} else if (m->res == RES_USER_ALREADY_EXISTS &&
		    c->attempt + 1 < NAME_ATTEMPTS) {
			c->attempt++;
			conn_register(b, c);
		} else {
			conn_lost(b, c, "IDENTIFY refused");
		}
		return;
	}
	if (m->op == MSG_NEW_ROOM && c->idx == 0 && c->st == C_JOINING) {
		if (m->res != RES_SUCCESS) {
			bench_setup_error(b, "NEW_ROOM %s: %.*s", b->room,
			    (int)m->result.len, m->result.p);
			return;
		}
		conn_ready(b, c, now);
		bench_invite_all(b, c);
		return;
	}
	if (m->op == MSG_JOIN_ROOM && c->st == C_JOINING) {
		if (m->res != RES_SUCCESS) {
			bench_setup_error(b, "JOIN_ROOM %s: %.*s", b->room,
			    (int)m->result.len, m->result.p);
			return;
		}
		conn_ready(b, c, now);
		return;
	}
	b->server_errors++;
	bench_note(b, "client %u (%s): %.*s %.*s %.*s", c->idx, conn_label(c),
	    (int)m->operation.len, m->operation.p, (int)m->result.len,
	    m->result.p, (int)m->extra.len, m->extra.p);
	if (b->ph == PH_SETUP)
		bench_setup_error(b, "%s", b->first_error);
}

/* Tells whether s (len bytes) starts with the string literal lit. */
#define HAS_PREFIX(s, len, lit) \
	((len) >= sizeof(lit) - 1 && memcmp((s), (lit), sizeof(lit) - 1) == 0)

/*
 * Finds the "text" value of a TEXT_FROM-like line.  The protocol fixes
 * the key order and "text" comes last, so the value is found from the
 * end; a line in another shape is searched from the start.
 */
static int
talknet_text(const char *line, size_t len, const char **text, size_t *tlen)
{
	static const char	 key[] = "\"text\":\"";
	const char		*p, *q;

	if (line == NULL)	/* never; it keeps GCC's -Wnonnull calm */
		return -1;
	if (len > sizeof(key) + 2 && line[len - 1] == '}' &&
	    line[len - 2] == '"' &&
	    (q = memrchr(line, '"', len - 2)) != NULL &&
	    (size_t)(q - line) >= sizeof(key) - 2 &&
	    memcmp(q - (sizeof(key) - 2), key, sizeof(key) - 1) == 0) {
		*text = q + 1;
		*tlen = (size_t)(line + len - 2 - *text);
		return 0;
	}
	if ((p = memmem(line, len, key, sizeof(key) - 1)) == NULL)
		return -1;
	p += sizeof(key) - 1;
	if ((q = memchr(p, '"', (size_t)(line + len - p))) == NULL)
		return -1;
	*text = p;
	*tlen = (size_t)(q - p);
	return 0;
}

/*
 * Handles one TalkNet line.  Texts, the hot path, are found by a light
 * scan; RESPONSE and INVITATION go through the codec; the broadcasts
 * of others joining and leaving are skipped unread.
 */
static void
bench_talknet_line(struct bench *b, struct conn *c, const char *line,
    size_t len, int64_t now)
{
	static const char	 head[] = "{\"type\":\"";
	const char		*t, *text;
	size_t			 rest, tlen;
	int			 is_text = 0;
	struct msg		 m;

	if (HAS_PREFIX(line, len, head) && len > sizeof(head)) {
		t = line + sizeof(head) - 1;
		rest = len - (sizeof(head) - 1);
		switch (t[0]) {
		case 'R':
			is_text = HAS_PREFIX(t, rest, "ROOM_TEXT_FROM\"");
			break;
		case 'P':
			is_text = HAS_PREFIX(t, rest, "PUBLIC_TEXT_FROM\"");
			break;
		case 'T':
			is_text = HAS_PREFIX(t, rest, "TEXT_FROM\"");
			break;
		}
		if (is_text) {
			if (talknet_text(line, len, &text, &tlen) == -1)
				b->foreign++;
			else
				bench_on_text(b, c, text, tlen, now);
			return;
		}
		if (!HAS_PREFIX(t, rest, "RESPONSE\"") &&
		    !HAS_PREFIX(t, rest, "INVITATION\""))
			return;
	}
	if (proto_parse_reply(&b->pp, line, len, &m) == -1) {
		b->server_errors++;
		bench_note(b, "client %u: unreadable line from the server",
		    c->idx);
		return;
	}
	if (m.type == MSG_RESPONSE) {
		bench_on_response(b, c, &m, now);
	} else if (m.type == MSG_INVITATION && c->st == C_IDENT &&
	    m.roomname.len == strlen(b->room) &&
	    memcmp(m.roomname.p, b->room, m.roomname.len) == 0) {
		memset(&m, 0, sizeof(m));
		m.type = MSG_JOIN_ROOM;
		m.roomname = str_c(b->room);
		conn_set_state(b, c, C_JOINING);
		conn_send_msg(b, c, &m);
	}
}

/* Splits the next space-separated IRC word off *p. */
const char *
irc_word(const char **p, const char *end, size_t *len)
{
	const char	*s = *p, *w;

	while (s < end && *s == ' ')
		s++;
	w = s;
	while (s < end && *s != ' ')
		s++;
	*len = (size_t)(s - w);
	*p = s;
	return w;
}

/* Handles one IRC line: PING, registration, JOIN, PRIVMSG, errors. */
static void
bench_irc_line(struct bench *b, struct conn *c, const char *line, size_t len,
    int64_t now)
{
	const char	*p = line, *end = line + len, *cmd, *w;
	size_t		 clen, wlen;
	int		 num;

	if (*p == ':') {
		irc_word(&p, end, &wlen);	/* the prefix */
	}
	cmd = irc_word(&p, end, &clen);
	if (clen == 7 && memcmp(cmd, "PRIVMSG", 7) == 0) {
		irc_word(&p, end, &wlen);	/* the target */
		while (p < end && *p == ' ')
			p++;
		if (p < end && *p == ':')
			p++;
		bench_on_text(b, c, p, (size_t)(end - p), now);
		return;
	}
	if (clen == 4 && memcmp(cmd, "PING", 4) == 0) {
		conn_send_line(b, c, "PONG%.*s", (int)(end - p), p);
		return;
	}
	if (clen == 5 && memcmp(cmd, "ERROR", 5) == 0) {
		if (c->st != C_QUITTING) {
			b->server_errors++;
			bench_note(b, "client %u: %.*s", c->idx, (int)len,
			    line);
		}
		return;
	}
	if (clen != 3 || !isdigit((unsigned char)cmd[0]) ||
	    !isdigit((unsigned char)cmd[1]) || !isdigit((unsigned char)cmd[2]))
		return;
	if (c->st == C_QUITTING || b->ph >= PH_TEARDOWN)
		return;
	num = (cmd[0] - '0') * 100 + (cmd[1] - '0') * 10 + (cmd[2] - '0');
	switch (num) {
	case 1:		/* RPL_WELCOME */
		if (c->st == C_REGISTER)
			conn_identified(b, c, now);
		return;
	case 366:	/* RPL_ENDOFNAMES */
		if (c->st == C_JOINING)
			conn_ready(b, c, now);
		return;
	case 432:	/* ERR_ERRONEUSNICKNAME */
	case 433:	/* ERR_NICKNAMEINUSE */
		if (c->st == C_REGISTER && c->attempt + 1 < NAME_ATTEMPTS) {
			c->attempt++;
			conn_name(b, c);
			conn_send_line(b, c, "NICK %s", c->name);
			return;
		}
		break;
	default:
		if (num < 400 || num >= 600)
			return;
		break;
	}
	w = irc_word(&p, end, &wlen);	/* our nick */
	(void)w;
	b->server_errors++;
	bench_note(b, "client %u (%s): %.*s", c->idx, conn_label(c),
	    (int)len, line);
	if (b->ph == PH_SETUP && c->st != C_READY)
		bench_setup_error(b, "%s", b->first_error);
}

/*
 * Splits the lines of one read and handles each; returns the bytes
 * used, or -1 if the connection went away meanwhile.  Lines end in
 * "\n" or "\r\n" (servers never send the "\0" the framer also takes);
 * memchr() finds them, which at two million lines a second matters.
 */
static ssize_t
conn_lines(struct bench *b, struct conn *c, const char *p, size_t len,
    int64_t now)
{
	const char	*start = p, *end = p + len, *nl;
	size_t		 n;

	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n = (size_t)(nl - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n > 0) {
			if (b->o->proto == PK_IRC)
				bench_irc_line(b, c, p, n, now);
			else
				bench_talknet_line(b, c, p, n, now);
			if (c->fd < 0)
				return -1;
		}
		p = nl + 1;
	}
	return p - start;
}

/* Reads what a connection has and handles each complete line. */
static void
conn_read(struct bench *b, struct conn *c)
{
	ssize_t		 r, used;
	int64_t		 now;
	int		 i;

	for (i = 0; i < READS_PER_EVENT; i++) {
		if (buf_reserve(&c->in, READ_WANT) == -1)
			err(1, "buf_reserve");
		r = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			conn_lost(b, c, strerror(errno));
			return;
		}
		if (r == 0) {
			if (c->st == C_QUITTING) {
				if (b->o->wl == WL_CONNECT &&
				    b->ph == PH_SETUP)
					b->connects_ok++;
				conn_close(b, c);
			} else {
				conn_lost(b, c, "closed by the server");
			}
			return;
		}
		buf_commit(&c->in, (size_t)r);
		now = clock_now_ns();
		/* Not buf_head(): the reserve above made data non-NULL. */
		used = conn_lines(b, c, c->in.data + c->in.off,
		    buf_pending(&c->in), now);
		if (used == -1)
			return;
		buf_drain(&c->in, (size_t)used);
		if (buf_pending(&c->in) > SERVER_MAX_LINE) {
			conn_lost(b, c, "line too long");
			return;
		}
		if (c->in.len < c->in.cap)
			break;
	}
	/* Idle clients keep no buffer: hold measures the server, not us. */
	if (buf_pending(&c->in) == 0 && !b->busy)
		buf_free(&c->in);
}

/* Handles the epoll events of one connection. */
static void
conn_event(struct bench *b, struct conn *c, uint32_t ev)
{
	int		e = 0;
	socklen_t	elen = sizeof(e);

	if (c->fd < 0)
		return;
	if (c->st == C_CONNECTING) {
		if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0)
			return;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &elen) == -1)
			e = errno;
		if (e != 0) {
			conn_lost(b, c, strerror(e));
			return;
		}
		conn_watch(b, c, EPOLLIN);
		conn_register(b, c);
		return;
	}
	if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
		conn_read(b, c);
	if (c->fd >= 0 && (ev & EPOLLOUT))
		conn_flush(b, c);
}

/* --- phases ------------------------------------------------------------- */

/* Samples the server tree, if one was named. */
static void
bench_sample(struct bench *b, struct srvstat *s, int mem)
{
	if (b->o->server_pid > 0)
		srv_sample(b->o->server_pid, mem, s);
}

/*
 * Waits until MemAvailable holds still, at most --settle seconds.  The
 * kernel gives back what an earlier run's processes and sockets held over
 * many seconds after they are gone (on a VM that reports free pages to
 * its host, a quarter of a gigabyte took 18 s); a baseline taken meanwhile
 * would count that return against this run, even below zero.
 */
static void
bench_settle(struct bench *b)
{
	struct meminfo		 m;
	struct timespec		 tick = { 0, SETTLE_TICK_MS * 1000000L };
	long long		 win[SETTLE_WINDOW];
	long long		 lo, hi;
	int64_t			 t0, deadline;
	unsigned int		 i, n = 0;

	if (b->o->settle == 0)
		return;
	t0 = clock_now_ns();
	deadline = t0 + (int64_t)b->o->settle * NS;
	while (!got_signal) {
		meminfo_read(&m);
		if (!m.ok)
			break;
		win[n++ % SETTLE_WINDOW] = m.avail;
		if (n >= SETTLE_WINDOW) {
			lo = hi = win[0];
			for (i = 1; i < SETTLE_WINDOW; i++) {
				lo = win[i] < lo ? win[i] : lo;
				hi = win[i] > hi ? win[i] : hi;
			}
			if (hi - lo <= SETTLE_SLACK_KIB) {
				b->settled = 1;
				break;
			}
		}
		if (clock_now_ns() >= deadline)
			break;
		(void)nanosleep(&tick, NULL);
	}
	b->settle_s = (double)(clock_now_ns() - t0) / NS;
}

/* Takes the samples that close the measurement. */
static void
bench_finish(struct bench *b, int64_t now)
{
	struct rusage	ru;

	b->t_finish = now;
	bench_sample(b, &b->srv_end, 1);
	meminfo_read(&b->mem_end);
	b->selfrss_end = self_rss_kib();
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		b->bench_cpu_s =
		    (double)(ru.ru_utime.tv_sec - b->ru_start.ru_utime.tv_sec) +
		    (double)(ru.ru_stime.tv_sec - b->ru_start.ru_stime.tv_sec) +
		    (double)(ru.ru_utime.tv_usec - b->ru_start.ru_utime.tv_usec +
		    ru.ru_stime.tv_usec - b->ru_start.ru_stime.tv_usec) / 1e6;
}

/* Says goodbye on every connection and waits a moment for the closes. */
static void
bench_teardown(struct bench *b, int64_t now)
{
	unsigned int	i;
	struct conn	*c;

	if (b->t_finish == 0)
		bench_finish(b, now);
	b->ph = PH_TEARDOWN;
	b->t_phase_end = now + TEARDOWN_NS;
	for (i = 0; i < b->n; i++) {
		c = &b->c[i];
		if (c->fd < 0 || c->st == C_QUITTING)
			continue;
		if (c->st == C_CONNECTING)
			conn_close(b, c);
		else
			conn_quit(b, c);
	}
}

/* Ends a connect run; one connection that failed fails the run. */
static void
bench_connect_end(struct bench *b, int64_t now)
{
	if (b->connects_failed > 0)
		bench_setup_error(b, "%" PRIu64 " of %" PRIu64 " connections "
		    "failed, the first: %s", b->connects_failed,
		    b->connects_failed + b->connects_ok, b->first_error);
	bench_teardown(b, now);
}

/* Starts the connects that the concurrency limit allows. */
static void
bench_start_conns(struct bench *b, int64_t now)
{
	struct conn	*c, *next;
	unsigned int	 started = 0, limit = b->o->concurrency;

	for (c = TAILQ_FIRST(&b->retryq); c != NULL &&
	    b->inflight < limit; c = next) {
		next = TAILQ_NEXT(c, retry_entry);
		if (c->next_ns > now)
			continue;
		TAILQ_REMOVE(&b->retryq, c, retry_entry);
		conn_start(b, c, now);
	}
	while (b->inflight < limit && b->next_new < b->n && started < limit) {
		if (b->o->wl == WL_CONNECT && now >= b->t_phase_end)
			break;
		conn_start(b, &b->c[b->next_new++], now);
		started++;
	}
}

/* Everyone is ready: schedules the senders and starts the clock. */
static void
bench_begin(struct bench *b, int64_t now)
{
	const struct options	*o = b->o;
	struct conn		*c;
	unsigned int		 i, k, nsnd = 0;

	if (o->wl == WL_HOLD) {
		b->ph = PH_HOLD;
		b->t_phase_end = now + (int64_t)o->duration * NS;
		return;
	}
	b->t_measure = now + (int64_t)o->warmup * NS;
	b->t_end = b->t_measure + (int64_t)o->duration * NS;
	for (i = 0; i < b->n; i++)
		if (b->c[i].sender)
			nsnd++;
	if (o->rate > 0)
		b->interval_ns = NS * (int64_t)nsnd / (int64_t)o->rate;
	for (i = 0, k = 0; i < b->n; i++) {
		c = &b->c[i];
		if (!c->sender)
			continue;
		/* Senders are spread evenly over one interval. */
		c->next_ns = now + b->interval_ns * (int64_t)k++ /
		    (int64_t)nsnd;
	}
	b->ph = o->warmup > 0 ? PH_WARMUP : PH_MEASURE;
	if (b->ph == PH_MEASURE)
		bench_sample(b, &b->srv_m0, 0);
	if (o->rate == 0)
		for (i = 0; i < b->n; i++)
			if (b->c[i].sender && b->c[i].st == C_READY)
				bench_send(b, &b->c[i], clock_now_ns());
}

/* Sends what the senders' schedules say is due, a bounded burst each. */
static void
bench_send_due(struct bench *b, int64_t now)
{
	struct conn	*c;
	unsigned int	 i, k;
	int64_t		 t;

	if (b->o->rate == 0)
		return;
	for (i = 0; i < b->n; i++) {
		c = &b->c[i];
		if (!c->sender || c->st != C_READY)
			continue;
		for (k = 0; k < SEND_BURST && c->next_ns <= now; k++) {
			t = clock_now_ns();
			if (t >= b->t_end)
				break;
			if (t - c->next_ns > b->max_lag_ns)
				b->max_lag_ns = t - c->next_ns;
			bench_send(b, c, t);
			c->next_ns += b->interval_ns;
			if (c->fd < 0)
				break;
		}
	}
}

/* Prints one progress line on a terminal. */
static void
bench_progress(struct bench *b, int64_t now, int last)
{
	if (b->o->quiet || !isatty(STDERR_FILENO))
		return;
	if (!last && now < b->t_progress)
		return;
	b->t_progress = now + NS;
	if (b->o->wl == WL_CONNECT)
		fprintf(stderr, "\r\033[K%s %6.1f s  done %" PRIu64
		    "  failed %" PRIu64 "  in flight %u",
		    workload_names[b->o->wl], (double)(now - b->t0) / NS,
		    b->connects_ok, b->connects_failed, b->inflight);
	else
		fprintf(stderr, "\r\033[K%s %6.1f s  ready %u/%u  sent %"
		    PRIu64 "  delivered %" PRIu64,
		    workload_names[b->o->wl], (double)(now - b->t0) / NS,
		    b->nready, b->n, b->sent_all, b->delivered_all);
	if (last)
		fputs("\r\033[K", stderr);
	fflush(stderr);
}

/* Moves the run along: one step of the current phase. */
static void
bench_tick(struct bench *b, int64_t now)
{
	const struct options	*o = b->o;

	if (got_signal && b->ph < PH_TEARDOWN) {
		bench_setup_error(b, "interrupted by signal %d",
		    (int)got_signal);
		bench_teardown(b, now);
		return;
	}
	if (now >= b->deadline) {
		if (b->ph < PH_TEARDOWN) {
			bench_setup_error(b, "the run passed its deadline");
			bench_teardown(b, now);
		} else {
			b->ph = PH_DONE;
		}
		return;
	}
	switch (b->ph) {
	case PH_SETUP:
		if (b->failed) {
			bench_teardown(b, now);
			return;
		}
		bench_start_conns(b, now);
		if (o->wl == WL_CONNECT) {
			if ((b->next_new == b->n || now >= b->t_phase_end) &&
			    b->inflight == 0 && TAILQ_EMPTY(&b->retryq)) {
				bench_connect_end(b, now);
			} else if (now >= b->t_phase_end +
			    (int64_t)o->drain * NS) {
				b->connects_failed += b->inflight;
				bench_note(b, "%u connections still open after "
				    "the drain time", b->inflight);
				bench_connect_end(b, now);
			}
			return;
		}
		if (b->nready == b->n) {
			bench_begin(b, now);
			return;
		}
		if (now >= b->t0 + (int64_t)o->setup_timeout * NS) {
			bench_setup_error(b, "set-up timed out after %u s: %u "
			    "of %u clients identified, %u ready",
			    o->setup_timeout, b->nident, b->n, b->nready);
			bench_teardown(b, now);
		}
		return;
	case PH_WARMUP:
		if (now >= b->t_measure) {
			b->ph = PH_MEASURE;
			bench_sample(b, &b->srv_m0, 0);
		}
		bench_send_due(b, now);
		return;
	case PH_MEASURE:
		bench_send_due(b, now);
		if (now >= b->t_end) {
			b->ph = PH_DRAIN;
			b->t_phase_end = b->t_end + (int64_t)o->drain * NS;
		}
		return;
	case PH_DRAIN:
		if (b->delivered >= b->expected || now >= b->t_phase_end)
			bench_teardown(b, now);
		return;
	case PH_HOLD:
		if (now >= b->t_phase_end)
			bench_teardown(b, now);
		return;
	case PH_TEARDOWN:
		if (b->nopen == 0 || now >= b->t_phase_end)
			b->ph = PH_DONE;
		return;
	case PH_DONE:
		return;
	}
}

/* How long epoll may sleep, in milliseconds. */
static int
bench_timeout(const struct bench *b, int64_t now)
{
	int64_t		next = now + TICK_MAX_MS * MS;
	unsigned int	i;

	if ((b->ph == PH_WARMUP || b->ph == PH_MEASURE) && b->o->rate > 0) {
		for (i = 0; i < b->n; i++)
			if (b->c[i].sender && b->c[i].st == C_READY &&
			    b->c[i].next_ns < next)
				next = b->c[i].next_ns;
		if (b->ph == PH_WARMUP && b->t_measure < next)
			next = b->t_measure;
		if (b->t_end < next)
			next = b->t_end;
	}
	if (b->ph == PH_SETUP && b->inflight < b->o->concurrency &&
	    b->next_new < b->n && now + MS < next)
		next = now + MS;
	if (next <= now)
		return 0;
	return (int)((next - now + MS - 1) / MS);
}

/* The event loop: runs until the last phase is over. */
static void
bench_run(struct bench *b)
{
	struct epoll_event	evs[MAX_EVENTS];
	const struct options	*o = b->o;
	int64_t			now;
	int			nev, i;

	b->t0 = clock_now_ns();
	b->t_progress = b->t0 + NS;
	b->deadline = b->t0 + (int64_t)(o->setup_timeout + o->warmup +
	    o->duration + o->drain) * NS + 2 * TEARDOWN_NS;
	if (o->wl == WL_CONNECT)
		b->t_phase_end = b->t0 + (int64_t)o->duration * NS;
	while (b->ph != PH_DONE) {
		now = clock_now_ns();
		bench_tick(b, now);
		bench_progress(b, now, 0);
		if (b->ph == PH_DONE)
			break;
		nev = epoll_wait(b->ep, evs, MAX_EVENTS,
		    bench_timeout(b, clock_now_ns()));
		if (nev == -1) {
			if (errno == EINTR)
				continue;
			err(1, "epoll_wait");
		}
		for (i = 0; i < nev; i++)
			conn_event(b, &b->c[evs[i].data.u32], evs[i].events);
	}
	for (i = 0; i < (int)b->n; i++)
		if (b->c[i].fd >= 0)
			conn_close(b, &b->c[i]);
	bench_progress(b, clock_now_ns(), 1);
}

/* --- results ------------------------------------------------------------ */

/* The figures derived from the counters, shared by both outputs. */
struct outcome {
	double	 setup_s;	/* connect + identify of all clients */
	double	 join_s;	/* then the room */
	double	 window_s;	/* the measured window */
	double	 elapsed_s;	/* connect: the whole run */
	double	 delivered_pct;
	double	 delivered_per_s;
	double	 sent_per_s;
	uint64_t missing;
	double	 cpu_s;		/* server CPU over cpu_interval_s */
	double	 cpu_interval_s;
	long long selfrss_delta_kib;
	/* Growth (avail: MemAvailable's drop), the bench's own taken out. */
	struct meminfo mem_delta;
	unsigned int nmem;		/* clients the memory is shared by */
};

/* Divides a memory figure among the clients; 0 when there were none. */
static double
per_client(long long kib, const struct outcome *r)
{
	return r->nmem > 0 ? (double)kib / r->nmem : 0;
}

/* Computes the derived figures. */
static void
result_compute(const struct bench *b, struct outcome *r)
{
	const struct options	*o = b->o;
	int64_t			 t_ident = b->t_ident ? b->t_ident : b->t_finish;

	memset(r, 0, sizeof(*r));
	if (b->t0 != 0 && t_ident > b->t0)
		r->setup_s = (double)(t_ident - b->t0) / NS;
	if (b->t_ready > 0 && b->t_ident > 0)
		r->join_s = (double)(b->t_ready - b->t_ident) / NS;
	r->window_s = o->duration;
	if (b->t_finish > b->t0)
		r->elapsed_s = (double)(b->t_finish - b->t0) / NS;
	if (b->expected > 0)
		r->delivered_pct = 100.0 * (double)b->delivered /
		    (double)b->expected;
	if (r->window_s > 0) {
		r->delivered_per_s = (double)b->delivered / r->window_s;
		r->sent_per_s = (double)b->sent / r->window_s;
	}
	r->missing = b->expected > b->delivered ? b->expected - b->delivered :
	    0;
	if (o->wl == WL_FANOUT || o->wl == WL_PRIVATE) {
		if (b->srv_end.ok && b->srv_m0.ok && b->t_measure > 0 &&
		    b->t_finish > b->t_measure) {
			r->cpu_s = b->srv_end.cpu_s - b->srv_m0.cpu_s;
			r->cpu_interval_s = (double)(b->t_finish -
			    b->t_measure) / NS;
		}
	} else if (b->srv_end.ok && b->srv_start.ok) {
		r->cpu_s = b->srv_end.cpu_s - b->srv_start.cpu_s;
		r->cpu_interval_s = r->elapsed_s;
	}
	if (b->selfrss_start > 0 && b->selfrss_end > 0)
		r->selfrss_delta_kib = b->selfrss_end - b->selfrss_start;
	/* A hold that fell short shares its memory among those it held. */
	r->nmem = o->wl == WL_HOLD && b->nready > 0 ? b->nready : b->n;
	if (b->mem_start.ok && b->mem_end.ok) {
		r->mem_delta.ok = 1;
		r->mem_delta.avail = b->mem_start.avail - b->mem_end.avail -
		    r->selfrss_delta_kib;
		r->mem_delta.anon = b->mem_end.anon - b->mem_start.anon -
		    r->selfrss_delta_kib;
		r->mem_delta.page_tables = b->mem_end.page_tables -
		    b->mem_start.page_tables;
		r->mem_delta.kernel_stack = b->mem_end.kernel_stack -
		    b->mem_start.kernel_stack;
		r->mem_delta.slab = b->mem_end.slab - b->mem_start.slab;
		r->mem_delta.shmem = b->mem_end.shmem - b->mem_start.shmem;
	}
}

/* Formats milliseconds with a precision that suits their size. */
static const char *
fmt_ms(char *s, size_t len, double ms)
{
	if (ms < 1)
		snprintf(s, len, "%.3f", ms);
	else if (ms < 10)
		snprintf(s, len, "%.2f", ms);
	else
		snprintf(s, len, "%.1f", ms);
	return s;
}

/* Prints the percentile line of the histogram. */
static void
report_latency(const struct bench *b, FILE *f, const char *what)
{
	char	a[32], c[32], d[32], e[32], g[32];

	if (b->h.n == 0) {
		fprintf(f, "%s  no samples\n", what);
		return;
	}
	fprintf(f, "%s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", what,
	    fmt_ms(a, sizeof(a), ns_ms(hist_quantile(&b->h, 0.50))),
	    fmt_ms(c, sizeof(c), ns_ms(hist_quantile(&b->h, 0.90))),
	    fmt_ms(d, sizeof(d), ns_ms(hist_quantile(&b->h, 0.99))),
	    fmt_ms(e, sizeof(e), ns_ms(hist_quantile(&b->h, 0.999))),
	    fmt_ms(g, sizeof(g), ns_ms(b->h.max)));
}

/* Prints the human table. */
static void
report_human(const struct bench *b, FILE *f)
{
	const struct options	*o = b->o;
	struct outcome		 r;
	unsigned int		 n = b->n;

	result_compute(b, &r);
	fprintf(f, "workload %s  proto %s  server %s  clients %u",
	    workload_names[o->wl], o->proto == PK_IRC ? "irc" : "talknet",
	    b->addrtext, n);
	if (o->wl == WL_FANOUT)
		fprintf(f, "  senders %u  rate %u/s  bytes %u  %s", o->nsenders,
		    o->rate, o->bytes, o->room || o->proto == PK_IRC ?
		    "room" : "public");
	else if (o->wl == WL_PRIVATE)
		fprintf(f, "  pairs %u  rate %s  bytes %u", n / 2,
		    o->rate ? "paced" : "closed-loop", o->bytes);
	else if (o->wl == WL_CONNECT)
		fprintf(f, "  concurrency %u", o->concurrency);
	fputc('\n', f);
	if (b->setup_error[0] != '\0')
		fprintf(f, "FAILED: %s\n", b->setup_error);
	if (o->wl == WL_CONNECT) {
		fprintf(f, "connections %" PRIu64 " in %.2f s (%.0f/s)  "
		    "failed %" PRIu64 "\n", b->connects_ok,
		    r.elapsed_s, r.elapsed_s > 0 ? (double)b->connects_ok /
		    r.elapsed_s : 0, b->connects_failed);
		report_latency(b, f, "connect+identify ms");
	} else {
		fprintf(f, "setup %u of %u clients in %.2f s (%.0f/s)",
		    b->nident, n, r.setup_s, r.setup_s > 0 ?
		    (double)b->nident / r.setup_s : 0);
		if (o->wl == WL_FANOUT && (o->room || o->proto == PK_IRC))
			fprintf(f, "; joined the room in %.2f s", r.join_s);
		if (b->connect_retries > 0)
			fprintf(f, "; %" PRIu64 " connects retried",
			    b->connect_retries);
		fputc('\n', f);
	}
	if (o->wl == WL_FANOUT && b->t_measure > 0) {
		fprintf(f, "sent %" PRIu64 " (%.0f/s)  expected %" PRIu64
		    "  delivered %" PRIu64 " (%.2f%%)  %.0f/s\n", b->sent,
		    r.sent_per_s, b->expected, b->delivered, r.delivered_pct,
		    r.delivered_per_s);
		fprintf(f, "missing %" PRIu64 "  misordered %" PRIu64
		    "  disconnects %" PRIu64 "  send lag max %.1f ms\n",
		    r.missing, b->misordered, b->disconnects,
		    ns_ms((uint64_t)b->max_lag_ns));
		report_latency(b, f, "latency ms");
	} else if (o->wl == WL_PRIVATE && b->t_measure > 0) {
		fprintf(f, "round trips %" PRIu64 " (%.0f/s)  sent %" PRIu64
		    "  missing %" PRIu64 "  misordered %" PRIu64
		    "  disconnects %" PRIu64 "\n", b->delivered,
		    r.delivered_per_s, b->sent, r.missing, b->misordered,
		    b->disconnects);
		report_latency(b, f, "round trip ms");
	} else if (o->wl == WL_HOLD && b->nready == b->n && b->t_finish > 0) {
		fprintf(f, "held %u clients for %u s, %" PRIu64
		    " disconnects\n", b->nready, o->duration, b->disconnects);
	}
	if (b->srv_end.ok) {
		fprintf(f, "server cpu %.2f s (%.0f%% of %.1f s)  procs %u  "
		    "pss %.1f MiB (%.1f KiB/client)  rss %.1f MiB\n", r.cpu_s,
		    r.cpu_interval_s > 0 ? 100 * r.cpu_s / r.cpu_interval_s :
		    0, r.cpu_interval_s, b->srv_end.nproc,
		    (double)b->srv_end.pss_kib / 1024,
		    per_client((long long)b->srv_end.pss_kib, &r),
		    (double)b->srv_end.rss_kib / 1024);
	}
	/* A failed run's machine-wide deltas mean nothing: left out. */
	if ((o->wl == WL_HOLD || b->srv_end.ok) && !b->failed)
		fprintf(f, "memavail delta %.1f MiB (%.1f KiB/client; the "
		    "bench's own %.1f MiB taken out)\n",
		    (double)r.mem_delta.avail / 1024,
		    per_client(r.mem_delta.avail, &r),
		    (double)r.selfrss_delta_kib / 1024);
	if (o->wl == WL_HOLD && r.mem_delta.ok && !b->failed)
		fprintf(f, "per client KiB: anon %.1f  page tables %.1f  "
		    "kernel stacks %.1f  slab %.1f  shmem %.1f\n",
		    per_client(r.mem_delta.anon, &r),
		    per_client(r.mem_delta.page_tables, &r),
		    per_client(r.mem_delta.kernel_stack, &r),
		    per_client(r.mem_delta.slab, &r),
		    per_client(r.mem_delta.shmem, &r));
	if (o->settle > 0)
		fprintf(f, "memory %s after %.1f s before the baseline\n",
		    b->settled ? "settled" : "still moving", b->settle_s);
	fprintf(f, "bench cpu %.2f s", b->bench_cpu_s);
	if (b->server_errors > 0 || b->foreign > 0)
		fprintf(f, "  server errors %" PRIu64 "  foreign texts %"
		    PRIu64, b->server_errors, b->foreign);
	fputc('\n', f);
	if (b->first_error[0] != '\0' &&
	    strcmp(b->first_error, b->setup_error) != 0)
		fprintf(f, "first problem: %s\n", b->first_error);
}

/* Prints a JSON string. */
void
json_str(FILE *f, const char *s)
{
	const unsigned char	*p;

	fputc('"', f);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* Prints a number JSON accepts (no NaN or infinity). */
static void
json_num(FILE *f, const char *key, double v, int last)
{
	if (!isfinite(v))
		v = 0;
	fprintf(f, "\"%s\":%.6g%s", key, v, last ? "" : ",");
}

/* Builds the default label of this run. */
static void
bench_label(const struct bench *b, char *s, size_t len)
{
	const struct options	*o = b->o;

	if (o->label != NULL) {
		strlcpy(s, o->label, len);
		return;
	}
	if (o->wl == WL_FANOUT)
		snprintf(s, len, "%s %s %u/s", o->proto == PK_IRC ? "irc" :
		    "talknet", workload_names[o->wl], o->rate);
	else
		snprintf(s, len, "%s %s", o->proto == PK_IRC ? "irc" :
		    "talknet", workload_names[o->wl]);
}

/* Prints the CDF points: every CDF_STEP nines, then the maximum. */
static void
report_cdf(const struct hist *h, FILE *f)
{
	double	x, top, p;
	int	first = 1;

	fputc('[', f);
	if (h->n > 0) {
		top = log10((double)h->n);
		if (top > CDF_MAX_NINES)
			top = CDF_MAX_NINES;
		for (x = 0; x <= top + 1e-9; x += CDF_STEP) {
			p = 1 - pow(10, -x);
			fprintf(f, "%s[%.6g,%.6g]", first ? "" : ",", 100 * p,
			    ns_ms(hist_quantile(h, p)));
			first = 0;
		}
		fprintf(f, ",[100,%.6g]", ns_ms(h->max));
	}
	fputc(']', f);
}

/* Prints the result as one JSON object. */
static void
report_json(const struct bench *b, FILE *f)
{
	const struct options	*o = b->o;
	struct outcome		 r;
	char			 label[256];
	const struct hist	*h = &b->h;

	result_compute(b, &r);
	bench_label(b, label, sizeof(label));
	fputs("{\"label\":", f);
	json_str(f, label);
	fprintf(f, ",\"workload\":\"%s\",\"proto\":\"%s\",\"address\":",
	    workload_names[o->wl], o->proto == PK_IRC ? "irc" : "talknet");
	json_str(f, b->addrtext);
	fprintf(f, ",\"clients\":%u,\"senders\":%u,\"rate\":%u,\"bytes\":%u,"
	    "\"duration\":%u,\"warmup\":%u,\"concurrency\":%u,\"room\":%s,",
	    b->n, o->wl == WL_FANOUT ? o->nsenders : o->wl == WL_PRIVATE ?
	    b->n / 2 : 0, o->rate, o->bytes, o->duration, o->warmup,
	    o->concurrency, o->room || (o->wl == WL_FANOUT &&
	    o->proto == PK_IRC) ? "true" : "false");
	fprintf(f, "\"ok\":%s,\"error\":", b->failed ? "false" : "true");
	json_str(f, b->setup_error);
	fputs(",\"first_problem\":", f);
	json_str(f, b->first_error);
	fprintf(f, ",\"setup\":{\"clients\":%u,", b->nident);
	json_num(f, "seconds", r.setup_s, 0);
	json_num(f, "per_s", r.setup_s > 0 ? b->nident / r.setup_s : 0, 0);
	json_num(f, "join_seconds", r.join_s, 0);
	fprintf(f, "\"retries\":%" PRIu64 "},", b->connect_retries);
	fprintf(f, "\"sent\":%" PRIu64 ",\"expected\":%" PRIu64
	    ",\"delivered\":%" PRIu64 ",\"missing\":%" PRIu64
	    ",\"misordered\":%" PRIu64 ",\"disconnects\":%" PRIu64
	    ",\"server_errors\":%" PRIu64 ",\"foreign\":%" PRIu64 ",",
	    b->sent, b->expected, b->delivered, r.missing, b->misordered,
	    b->disconnects, b->server_errors, b->foreign);
	json_num(f, "sent_per_s", r.sent_per_s, 0);
	json_num(f, "delivered_pct", r.delivered_pct, 0);
	json_num(f, "delivered_per_s", r.delivered_per_s, 0);
	json_num(f, "roundtrips_per_s", o->wl == WL_PRIVATE ?
	    r.delivered_per_s : 0, 0);
	json_num(f, "send_lag_max_ms", ns_ms((uint64_t)b->max_lag_ns), 0);
	fprintf(f, "\"connects\":{\"ok\":%" PRIu64 ",\"failed\":%" PRIu64 ",",
	    b->connects_ok, b->connects_failed);
	json_num(f, "seconds", o->wl == WL_CONNECT ? r.elapsed_s : 0, 0);
	json_num(f, "per_s", o->wl == WL_CONNECT && r.elapsed_s > 0 ?
	    b->connects_ok / r.elapsed_s : 0, 1);
	fprintf(f, "},\"latency_ms\":{\"count\":%" PRIu64 ",", h->n);
	json_num(f, "min", ns_ms(h->min), 0);
	json_num(f, "mean", h->n ? (double)(h->sum / h->n) / MS : 0, 0);
	json_num(f, "p50", ns_ms(hist_quantile(h, 0.5)), 0);
	json_num(f, "p90", ns_ms(hist_quantile(h, 0.9)), 0);
	json_num(f, "p99", ns_ms(hist_quantile(h, 0.99)), 0);
	json_num(f, "p999", ns_ms(hist_quantile(h, 0.999)), 0);
	json_num(f, "max", ns_ms(h->max), 1);
	fprintf(f, "},\"server\":{\"pid\":%d,\"procs\":%u,",
	    (int)o->server_pid, b->srv_end.nproc);
	json_num(f, "cpu_s", r.cpu_s, 0);
	json_num(f, "cpu_interval_s", r.cpu_interval_s, 0);
	fprintf(f, "\"pss_kib\":%" PRIu64 ",\"rss_kib\":%" PRIu64 ",",
	    b->srv_end.pss_kib, b->srv_end.rss_kib);
	json_num(f, "pss_per_client_kib",
	    per_client((long long)b->srv_end.pss_kib, &r), 1);
	fprintf(f, "},\"memavail_delta_kib\":%lld,", r.mem_delta.avail);
	json_num(f, "memavail_per_client_kib",
	    per_client(r.mem_delta.avail, &r), 0);
	fprintf(f, "\"bench_rss_delta_kib\":%lld,", r.selfrss_delta_kib);
	json_num(f, "settle_s", b->settle_s, 0);
	fprintf(f, "\"settled\":%s,", b->settled ? "true" : "false");
	fputs("\"meminfo_per_client_kib\":{", f);
	json_num(f, "available", per_client(r.mem_delta.avail, &r), 0);
	json_num(f, "anon", per_client(r.mem_delta.anon, &r), 0);
	json_num(f, "page_tables", per_client(r.mem_delta.page_tables, &r),
	    0);
	json_num(f, "kernel_stack", per_client(r.mem_delta.kernel_stack,
	    &r), 0);
	json_num(f, "slab", per_client(r.mem_delta.slab, &r), 0);
	json_num(f, "shmem", per_client(r.mem_delta.shmem, &r), 1);
	fputs("},", f);
	json_num(f, "bench_cpu_s", b->bench_cpu_s, 0);
	fputs("\"cdf\":", f);
	report_cdf(h, f);
	fputs("}\n", f);
}

/* --- the SVG chart ------------------------------------------------------ */

/* One line of the chart: a label and its CDF points (percent, ms). */
struct series {
	char	 label[128];
	double	(*pts)[2];
	size_t	 npts;
	double	 count;
};

/* Reads a whole file, NUL-terminated; NULL on error (warned). */
static char *
read_file(const char *path)
{
	FILE	*f;
	char	*s = NULL, *ns;
	size_t	 len = 0, cap = 0, r;

	if ((f = fopen(path, "r")) == NULL) {
		warn("%s", path);
		return NULL;
	}
	for (;;) {
		if (cap - len < 65536) {
			if (cap > 64 * 1024 * 1024) {
				warnx("%s: too large", path);
				free(s);
				fclose(f);
				return NULL;
			}
			cap = cap ? cap * 2 : 131072;
			if ((ns = realloc(s, cap)) == NULL)
				err(1, "realloc");
			s = ns;
		}
		r = fread(s + len, 1, cap - len - 1, f);
		len += r;
		if (r == 0)
			break;
	}
	if (ferror(f)) {
		warn("%s", path);
		free(s);
		fclose(f);
		return NULL;
	}
	fclose(f);
	s[len] = '\0';
	return s;
}

/* Skips JSON white space. */
static char *
json_skip_ws(char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/*
 * Finds "key": in s and returns what follows the colon, white space
 * skipped; NULL if it is not there.  Enough for our own results, written
 * compactly or pretty-printed by another tool.
 */
static char *
json_find(char *s, const char *key)
{
	char	*p = s, *q;
	size_t	 klen = strlen(key);

	while ((p = strchr(p, '"')) != NULL) {
		q = p + 1;
		if (strncmp(q, key, klen) == 0 && q[klen] == '"') {
			q = json_skip_ws(q + klen + 1);
			if (*q == ':')
				return json_skip_ws(q + 1);
		}
		p = q;
	}
	return NULL;
}

/* Loads the label and CDF of a --json result; -1 if it has none. */
static int
series_load(const char *path, struct series *sr)
{
	char		*s, *p, *q, *e;
	size_t		 i, cap = 0;
	double		(*np)[2];

	memset(sr, 0, sizeof(*sr));
	if ((s = read_file(path)) == NULL)
		return -1;
	strlcpy(sr->label, path, sizeof(sr->label));
	if ((p = json_find(s, "label")) != NULL && *p == '"') {
		for (p++, i = 0; *p != '\0' && *p != '"' &&
		    i + 1 < sizeof(sr->label); p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			sr->label[i++] = *p;
		}
		sr->label[i] = '\0';
	}
	if ((p = json_find(s, "latency_ms")) != NULL &&
	    (p = json_find(p, "count")) != NULL)
		sr->count = strtod(p, NULL);
	if ((p = json_find(s, "cdf")) == NULL || *p != '[') {
		warnx("%s: no \"cdf\" in it", path);
		free(s);
		return -1;
	}
	p++;
	for (;;) {
		while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n' ||
		    *p == '\r')
			p++;
		if (*p != '[')
			break;
		if (sr->npts == cap) {
			cap = cap ? cap * 2 : 256;
			if ((np = reallocarray(sr->pts, cap,
			    sizeof(*sr->pts))) == NULL)
				err(1, "reallocarray");
			sr->pts = np;
		}
		sr->pts[sr->npts][0] = strtod(p + 1, &q);
		if (q == p + 1 || *(q = json_skip_ws(q)) != ',')
			break;
		sr->pts[sr->npts][1] = strtod(q + 1, &e);
		if (e == q + 1 || *(e = json_skip_ws(e)) != ']')
			break;
		sr->npts++;
		p = e + 1;
	}
	free(s);
	if (sr->npts == 0) {
		warnx("%s: empty \"cdf\"", path);
		return -1;
	}
	return 0;
}

/* Makes a series from this run's histogram. */
static void
series_from_hist(const struct bench *b, struct series *sr)
{
	const struct hist	*h = &b->h;
	double			 x, top, p;
	size_t			 n = 0;

	memset(sr, 0, sizeof(*sr));
	bench_label(b, sr->label, sizeof(sr->label));
	sr->count = (double)h->n;
	if (h->n == 0)
		return;
	top = log10((double)h->n);
	if (top > CDF_MAX_NINES)
		top = CDF_MAX_NINES;
	if ((sr->pts = calloc((size_t)(top / CDF_STEP) + 4,
	    sizeof(*sr->pts))) == NULL)
		err(1, "calloc");
	for (x = 0; x <= top + 1e-9; x += CDF_STEP) {
		p = 1 - pow(10, -x);
		sr->pts[n][0] = 100 * p;
		sr->pts[n][1] = ns_ms(hist_quantile(h, p));
		n++;
	}
	sr->pts[n][0] = 100;
	sr->pts[n][1] = ns_ms(h->max);
	sr->npts = n + 1;
}

/* A percentile as "nines": 90% is 1, 99% is 2; 100% is the series' top. */
static double
svg_nines(const struct series *sr, double pct)
{
	double	top = sr->count > 1 ? log10(sr->count) : 1;

	if (top > CDF_MAX_NINES)
		top = CDF_MAX_NINES;
	if (pct >= 100)
		return top;
	return -log10(1 - pct / 100);
}

/* Prints text for SVG, with <, > and & escaped. */
static void
svg_text(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else if (*s == '&')
			fputs("&amp;", f);
		else
			fputc(*s, f);
	}
}

/*
 * Writes the latency CDF of every series in one chart: latency on a log
 * x axis, the cumulative share on a "nines" y axis, so the tail that
 * tells servers apart gets as much room as the median.
 */
static int
svg_write(const char *path, const char *title, const struct series *sr,
    size_t nsr)
{
	static const char *const colors[] = {
		"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
		"#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"
	};
	static const struct { double nines; const char *label; } yt[] = {
		{ 0, "0%" }, { 0.30103, "50%" }, { 1, "90%" }, { 2, "99%" },
		{ 3, "99.9%" }, { 4, "99.99%" }, { 5, "99.999%" },
		{ 6, "99.9999%" }
	};
	const double	 W = 900, H = 560, L = 80, R = 30, T = 50, B = 60;
	double		 lo = INFINITY, hi = -INFINITY, ymax = 2, v, x, y;
	double		 pw = W - L - R, ph = H - T - B;
	int		 xmin, xmax, d;
	size_t		 i, j;
	FILE		*f;
	char		 tick[32];

	for (i = 0; i < nsr; i++) {
		for (j = 0; j < sr[i].npts; j++) {
			v = sr[i].pts[j][1];
			if (v > 0 && v < lo)
				lo = v;
			if (v > hi)
				hi = v;
		}
		v = svg_nines(&sr[i], 100);
		if (v > ymax)
			ymax = v;
	}
	if (!isfinite(lo) || !isfinite(hi) || hi <= 0) {
		lo = 0.1;
		hi = 100;
	}
	xmin = (int)floor(log10(lo));
	xmax = (int)ceil(log10(hi));
	if (xmax <= xmin)
		xmax = xmin + 1;
	ymax = ceil(ymax);
	if ((f = fopen(path, "w")) == NULL) {
		warn("%s", path);
		return -1;
	}
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
	    "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
	    "font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H);
	fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	fprintf(f, "<text x=\"%.0f\" y=\"28\" font-size=\"16\" "
	    "text-anchor=\"middle\">", W / 2);
	svg_text(f, title);
	fputs("</text>\n", f);
	/* Grid and ticks. */
	for (d = xmin; d <= xmax; d++) {
		x = L + pw * (d - xmin) / (xmax - xmin);
		snprintf(tick, sizeof(tick), "%g", pow(10, d));
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" "
		    "y2=\"%.0f\" stroke=\"#ddd\"/>\n<text x=\"%.1f\" "
		    "y=\"%.0f\" text-anchor=\"middle\">%s</text>\n", x, T, x,
		    T + ph, x, T + ph + 18, tick);
	}
	for (i = 0; i < sizeof(yt) / sizeof(yt[0]); i++) {
		if (yt[i].nines > ymax)
			break;
		y = T + ph - ph * yt[i].nines / ymax;
		fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" "
		    "y2=\"%.1f\" stroke=\"#ddd\"/>\n<text x=\"%.0f\" "
		    "y=\"%.1f\" text-anchor=\"end\">%s</text>\n", L, y, L + pw,
		    y, L - 6, y + 4, yt[i].label);
	}
	fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" "
	    "height=\"%.0f\" fill=\"none\" stroke=\"black\"/>\n", L, T, pw,
	    ph);
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">"
	    "latency (ms, log scale)</text>\n", L + pw / 2, H - 15);
	fprintf(f, "<text x=\"18\" y=\"%.0f\" text-anchor=\"middle\" "
	    "transform=\"rotate(-90 18 %.0f)\">copies delivered within "
	    "(cumulative)</text>\n", T + ph / 2, T + ph / 2);
	/* One line per series, and the legend. */
	for (i = 0; i < nsr; i++) {
		const char	*col = colors[i % (sizeof(colors) /
				    sizeof(colors[0]))];

		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" "
		    "stroke-width=\"2\" points=\"", col);
		for (j = 0; j < sr[i].npts; j++) {
			v = sr[i].pts[j][1];
			if (v < pow(10, xmin))
				v = pow(10, xmin);
			x = L + pw * (log10(v) - xmin) / (xmax - xmin);
			y = T + ph - ph * svg_nines(&sr[i], sr[i].pts[j][0]) /
			    ymax;
			fprintf(f, "%s%.1f,%.1f", j ? " " : "", x, y);
		}
		fputs("\"/>\n", f);
		y = T + 18 + 18 * (double)i;
		fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" "
		    "y2=\"%.0f\" stroke=\"%s\" stroke-width=\"3\"/>\n"
		    "<text x=\"%.0f\" y=\"%.0f\">", L + 12, y - 4, L + 36,
		    y - 4, col, L + 42, y);
		svg_text(f, sr[i].label);
		fputs("</text>\n", f);
	}
	fputs("</svg>\n", f);
	if (fclose(f) == EOF) {
		warn("%s", path);
		return -1;
	}
	return 0;
}

/* Writes --svg: this run (if any) and every --compare result. */
static int
bench_chart(const struct bench *b, const struct options *o)
{
	struct series	sr[MAX_COMPARE + 1];
	size_t		nsr = 0, i, bad = 0;
	char		title[256];
	int		rv;

	if (b != NULL && b->h.n > 0)
		series_from_hist(b, &sr[nsr++]);
	for (i = 0; i < o->ncompare; i++) {
		if (series_load(o->compare[i], &sr[nsr]) == 0)
			nsr++;
		else
			bad++;
	}
	if (nsr == 0) {
		warnx("%s: no latencies to draw", o->svg);
		return -1;
	}
	if (o->title != NULL)
		strlcpy(title, o->title, sizeof(title));
	else if (b != NULL && o->wl == WL_FANOUT)
		snprintf(title, sizeof(title), "latency CDF: fanout, %u "
		    "clients, %u senders, %u msgs/s, %u B", b->n, o->nsenders,
		    o->rate, o->bytes);
	else if (b != NULL)
		snprintf(title, sizeof(title), "latency CDF: %s, %u clients",
		    workload_names[o->wl], b->n);
	else
		strlcpy(title, "latency CDF", sizeof(title));
	rv = svg_write(o->svg, title, sr, nsr);
	for (i = 0; i < nsr; i++)
		free(sr[i].pts);
	/* A result left out is an error, though the chart has the rest. */
	return bad > 0 ? -1 : rv;
}

/* --- main --------------------------------------------------------------- */

/* Parses a number option with strtonum, or exits with usage status. */
static unsigned int
opt_num(const char *name, const char *arg, long long lo, long long hi)
{
	const char	*errstr;
	long long	 v;

	v = strtonum(arg, lo, hi, &errstr);
	if (errstr != NULL) {
		warnx("%s %s: %s (%lld to %lld)", name, arg, errstr, lo, hi);
		exit(2);
	}
	return (unsigned int)v;
}

/* Raises the open-file limit to what one run needs, if it may. */
static void
raise_nofile(rlim_t need)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		err(1, "getrlimit");
	if (rl.rlim_cur >= need)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ?
	    need : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		err(1, "setrlimit");
	if (rl.rlim_cur < need)
		errx(1, "this run needs %llu open files, the limit is %llu "
		    "(raise it with ulimit -n)", (unsigned long long)need,
		    (unsigned long long)rl.rlim_cur);
}

enum {
	OPT_ALLOW_REMOTE = 256,
	OPT_WARMUP,
	OPT_DRAIN,
	OPT_SETUP_TIMEOUT,
	OPT_CONCURRENCY,
	OPT_REPEAT,
	OPT_PROTO,
	OPT_SETTLE,
	OPT_ROOM,
	OPT_SERVER_PID,
	OPT_JSON,
	OPT_LABEL,
	OPT_SVG,
	OPT_COMPARE,
	OPT_TITLE
};

static const struct option longopts[] = {
	{ "host",		required_argument, NULL, 'H' },
	{ "port",		required_argument, NULL, 'p' },
	{ "allow-remote",	no_argument,	   NULL, OPT_ALLOW_REMOTE },
	{ "clients",		required_argument, NULL, 'c' },
	{ "senders",		required_argument, NULL, 's' },
	{ "rate",		required_argument, NULL, 'r' },
	{ "bytes",		required_argument, NULL, 'b' },
	{ "duration",		required_argument, NULL, 'd' },
	{ "warmup",		required_argument, NULL, OPT_WARMUP },
	{ "drain",		required_argument, NULL, OPT_DRAIN },
	{ "setup-timeout",	required_argument, NULL, OPT_SETUP_TIMEOUT },
	{ "concurrency",	required_argument, NULL, OPT_CONCURRENCY },
	{ "repeat",		required_argument, NULL, OPT_REPEAT },
	{ "proto",		required_argument, NULL, OPT_PROTO },
	{ "room",		no_argument,	   NULL, OPT_ROOM },
	{ "server-pid",		required_argument, NULL, OPT_SERVER_PID },
	{ "settle",		required_argument, NULL, OPT_SETTLE },
	{ "json",		no_argument,	   NULL, OPT_JSON },
	{ "label",		required_argument, NULL, OPT_LABEL },
	{ "svg",		required_argument, NULL, OPT_SVG },
	{ "compare",		required_argument, NULL, OPT_COMPARE },
	{ "title",		required_argument, NULL, OPT_TITLE },
	{ "quiet",		no_argument,	   NULL, 'q' },
	{ "help",		no_argument,	   NULL, 'h' },
	{ "version",		no_argument,	   NULL, 'V' },
	{ NULL,			0,		   NULL, 0 }
};

/* Sets up the clients: names, senders, pingers and their peers. */
static void
bench_init_clients(struct bench *b)
{
	const struct options	*o = b->o;
	struct conn		*c;
	unsigned int		 i;

	if ((b->c = calloc(b->n, sizeof(*b->c))) == NULL)
		err(1, "calloc");
	for (i = 0; i < b->n; i++) {
		c = &b->c[i];
		c->fd = -1;
		c->idx = i;
		c->st = C_NEW;
		buf_init(&c->in);
		buf_init(&c->out);
		if (o->wl == WL_FANOUT) {
			c->sender = i < o->nsenders;
		} else if (o->wl == WL_PRIVATE) {
			c->pinger = i % 2 == 0;
			c->sender = c->pinger;
			c->peer = c->pinger ? i + 1 : i - 1;
		}
	}
	if (o->wl == WL_FANOUT)
		b->seq_slots = o->nsenders;
	else if (o->wl == WL_PRIVATE)
		b->seq_slots = 1;
	if (b->seq_slots > 0 &&
	    (uint64_t)b->n * b->seq_slots <= MAX_SEQ_SLOTS &&
	    (b->lastseq = calloc((size_t)b->n * b->seq_slots,
	    sizeof(*b->lastseq))) == NULL)
		err(1, "calloc");
}

/* Which of the options that have a per-workload default were given. */
struct opts_given {
	int	clients, rate, duration, drain;
};

/* Handles the options about the report: 1 if ch was one of them. */
static int
opts_report(int ch, struct options *o)
{
	switch (ch) {
	case OPT_JSON:
		o->json = 1;
		return 1;
	case OPT_LABEL:
		o->label = optarg;
		return 1;
	case OPT_SVG:
		o->svg = optarg;
		return 1;
	case OPT_COMPARE:
		if (o->ncompare == MAX_COMPARE)
			errx(2, "at most %d --compare files", MAX_COMPARE);
		o->compare[o->ncompare++] = optarg;
		return 1;
	case OPT_TITLE:
		o->title = optarg;
		return 1;
	case 'q':
		o->quiet = 1;
		return 1;
	case 'h':
		usage(stdout, 0);
	case 'V':
		printf("talknet-bench %s\n", PACKAGE_VERSION);
		exit(0);
	}
	return 0;
}

/* Handles the options about the load: 1 if ch was one of them. */
static int
opts_load(int ch, struct options *o, struct opts_given *g)
{
	switch (ch) {
	case 'c':
		o->nclients = opt_num("--clients", optarg, 1, MAX_CLIENTS);
		g->clients = 1;
		return 1;
	case 's':
		o->nsenders = opt_num("--senders", optarg, 1, MAX_CLIENTS);
		return 1;
	case 'r':
		o->rate = opt_num("--rate", optarg, 0, 10000000);
		g->rate = 1;
		return 1;
	case 'b':
		o->bytes = opt_num("--bytes", optarg, 32, 60000);
		return 1;
	case 'd':
		o->duration = opt_num("--duration", optarg, 0, 86400);
		g->duration = 1;
		return 1;
	case OPT_WARMUP:
		o->warmup = opt_num("--warmup", optarg, 0, 3600);
		return 1;
	case OPT_DRAIN:
		o->drain = opt_num("--drain", optarg, 0, 3600);
		g->drain = 1;
		return 1;
	case OPT_SETUP_TIMEOUT:
		o->setup_timeout = opt_num("--setup-timeout", optarg, 1, 86400);
		return 1;
	case OPT_CONCURRENCY:
		o->concurrency = opt_num("--concurrency", optarg, 1,
		    MAX_CLIENTS);
		return 1;
	case OPT_REPEAT:
		o->repeat = opt_num("--repeat", optarg, 1, 100000);
		return 1;
	case OPT_ROOM:
		o->room = 1;
		return 1;
	case OPT_SETTLE:
		o->settle = opt_num("--settle", optarg, 0, 3600);
		o->set_settle = 1;
		return 1;
	}
	return 0;
}

/* Parses the options into o; returns the index of the first operand. */
static int
opts_parse(int argc, char *argv[], struct options *o, struct opts_given *g)
{
	int	ch;

	memset(o, 0, sizeof(*o));
	memset(g, 0, sizeof(*g));
	o->host = DEFAULT_HOST;
	o->nsenders = 10;
	o->bytes = 100;
	o->warmup = 2;
	o->drain = 5;
	o->setup_timeout = 60;
	o->concurrency = 8;
	while ((ch = getopt_long(argc, argv, "H:p:c:s:r:b:d:qhV", longopts,
	    NULL)) != -1) {
		if (opts_load(ch, o, g) || opts_report(ch, o))
			continue;
		switch (ch) {
		case 'H':
			o->host = optarg;
			break;
		case 'p':
			(void)opt_num("--port", optarg, 1, 65535);
			o->port = optarg;
			break;
		case OPT_ALLOW_REMOTE:
			o->allow_remote = 1;
			break;
		case OPT_PROTO:
			if (strcmp(optarg, "talknet") == 0)
				o->proto = PK_TALKNET;
			else if (strcmp(optarg, "irc") == 0)
				o->proto = PK_IRC;
			else {
				warnx("--proto %s: talknet or irc", optarg);
				usage(stderr, 2);
			}
			break;
		case OPT_SERVER_PID:
			o->server_pid = (pid_t)opt_num("--server-pid", optarg,
			    1, INT_MAX);
			break;
		default:
			usage(stderr, 2);
		}
	}
	return optind;
}

/* Sets the workload named name and the defaults that depend on it. */
static void
opts_workload(struct options *o, const char *name,
    const struct opts_given *g)
{
	unsigned int	i;

	for (i = WL_FANOUT; i <= WL_LAST; i++)
		if (strcmp(name, workload_names[i]) == 0)
			o->wl = (enum workload)i;
	if (o->wl == WL_NONE) {
		warnx("%s: not a workload (fanout, private, connect, hold, "
		    "machine, join, broadcast)", name);
		usage(stderr, 2);
	}
	if (o->ncompare > 0 && o->svg == NULL)
		errx(2, "--compare needs --svg");
	if (o->port == NULL)
		o->port = o->proto == PK_IRC ? DEFAULT_PORT_IRC :
		    DEFAULT_PORT_TALKNET;
	switch (o->wl) {
	case WL_FANOUT:
		if (!g->clients)
			o->nclients = 500;
		if (!g->rate)
			o->rate = 1000;
		if (!g->duration)
			o->duration = 10;
		if (o->rate == 0)
			errx(2, "fanout needs a --rate above 0");
		if (o->nclients < 2 || o->nsenders > o->nclients)
			errx(2, "fanout needs 2 clients or more, and no more "
			    "senders than clients");
		break;
	case WL_PRIVATE:
		if (!g->clients)
			o->nclients = 100;
		if (!g->duration)
			o->duration = 10;
		if (o->nclients < 2)
			errx(2, "private needs 2 clients or more");
		o->nclients -= o->nclients % 2;
		break;
	case WL_CONNECT:
		if (!g->clients)
			o->nclients = 2000;
		if (!g->duration)
			o->duration = 10;
		o->warmup = 0;
		break;
	case WL_HOLD:
		if (!g->clients)
			o->nclients = 1000;
		if (!g->duration)
			o->duration = 2;
		if (!o->set_settle)
			o->settle = 30;
		o->warmup = 0;
		break;
	case WL_JOIN:
	case WL_BROADCAST:
		if (!g->clients)
			o->nclients = 1000;
		if (o->repeat == 0)
			o->repeat = o->wl == WL_JOIN ? 50 : 5;
		if (!g->drain)
			o->drain = 30;	/* here: one join or broadcast, at most */
		if (o->drain == 0)
			errx(2, "%s needs a --drain above 0", name);
		if (o->wl == WL_BROADCAST && o->nclients < 2)
			errx(2, "broadcast needs 2 clients or more");
		break;
	case WL_MACHINE:
	case WL_NONE:
		break;
	}
	if (o->proto == PK_IRC && o->bytes > IRC_MAX_BYTES)
		errx(2, "--bytes %u: an IRC line holds at most %d", o->bytes,
		    IRC_MAX_BYTES);
}

/* SIGINT and SIGTERM end the run with a report; SIGPIPE is ignored. */
static void
signals_setup(void)
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_signal;
	if (sigaction(SIGINT, &sa, NULL) == -1 ||
	    sigaction(SIGTERM, &sa, NULL) == -1)
		err(1, "sigaction");
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) == -1)
		err(1, "sigaction");
}

/* Runs fanout, private, connect or hold, and reports; the exit status. */
static int
bench_classic(struct options *o)
{
	struct bench	*b;
	unsigned int	 i;
	int		 rv = 0;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		err(1, "calloc");
	b->o = o;
	b->n = o->nclients;
	b->ph = PH_SETUP;
	b->busy = o->wl == WL_FANOUT || o->wl == WL_PRIVATE;
	b->tag = (char)('a' + getpid() % 26);
	snprintf(b->room, sizeof(b->room), "bench%d", (int)(getpid() % 100000));
	TAILQ_INIT(&b->retryq);
	buf_init(&b->line);
	proto_parser_init(&b->pp, NULL);
	if ((b->text = malloc((size_t)o->bytes + 64)) == NULL)
		err(1, "malloc");
	bench_resolve(b);
	bench_init_clients(b);
	if ((b->ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		err(1, "epoll_create1");

	bench_sample(b, &b->srv_start, 1);
	if (o->server_pid > 0 && !b->srv_start.ok)
		errx(1, "--server-pid %d: no such process", (int)o->server_pid);
	if (o->settle > 0) {
		bench_settle(b);
		/* The server's CPU while we waited is not the run's. */
		bench_sample(b, &b->srv_start, 1);
	}
	meminfo_read(&b->mem_start);
	b->selfrss_start = self_rss_kib();
	(void)getrusage(RUSAGE_SELF, &b->ru_start);

	bench_run(b);

	if (o->json)
		report_json(b, stdout);
	if (!o->json || !o->quiet)
		report_human(b, o->json ? stderr : stdout);
	if (o->svg != NULL && bench_chart(b, o) == -1)
		rv = 1;
	if (b->failed) {
		/* Said on stderr too, unless the report already went there. */
		if (!o->json || o->quiet)
			warnx("FAILED: %s", b->setup_error);
		rv = 1;
	}
	if (fflush(stdout) == EOF)
		err(1, "stdout");

	for (i = 0; i < b->n; i++)
		conn_close(b, &b->c[i]);
	free(b->c);
	free(b->lastseq);
	free(b->text);
	buf_free(&b->line);
	proto_parser_free(&b->pp);
	close(b->ep);
	free(b);
	return rv;
}

/* Parses the options, runs one workload (or draws charts), reports. */
int
main(int argc, char *argv[])
{
	struct options		o;
	struct opts_given	g;
	int			first;

	first = opts_parse(argc, argv, &o, &g);
	argc -= first;
	argv += first;
	if (argc == 0 && o.ncompare > 0 && o.svg != NULL)
		return bench_chart(NULL, &o) == 0 ? 0 : 1;
	if (argc != 1)
		usage(stderr, 2);
	opts_workload(&o, argv[0], &g);
	raise_nofile((o.wl == WL_CONNECT ? o.concurrency : o.nclients) + 64);
	signals_setup();
	if (o.wl == WL_MACHINE)
		return bench_machine(&o);
	if (o.wl == WL_JOIN || o.wl == WL_BROADCAST)
		return bench_presence(&o);
	return bench_classic(&o);
}
