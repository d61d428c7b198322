/*
 * loop.c: a classic run (fanout, private, connect, hold) from its
 * start to its report.  One thread, one epoll set, non-blocking sockets;
 * the run moves through its phases (set-up, warm-up, measure, drain or
 * hold, teardown), each with a deadline, so the program always stops.
 * SIGINT and SIGTERM end any workload with a report.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/resource.h>

#include <err.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "proto.h"
#include "bench.h"

#define MAX_EVENTS		1024
#define TEARDOWN_NS		(2 * NS)
#define TICK_MAX_MS		100	/* the loop wakes at least this often */

static volatile sig_atomic_t got_signal;

/* Tells the workloads whether SIGINT or SIGTERM came: its number, or 0. */
int
bench_interrupted(void)
{
	return got_signal;
}

/* Records SIGINT or SIGTERM for the main loop. */
static void
on_signal(int sig)
{
	got_signal = sig;
}

/* SIGINT and SIGTERM end the run with a report; SIGPIPE is ignored. */
void
bench_signals_setup(void)
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

/* Samples the server tree, if one was named. */
void
bench_sample(struct bench *b, struct srvstat *s, int mem)
{
	if (b->o->server_pid > 0)
		srv_sample(b->o->server_pid, mem, s);
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
		if (c->st == C_CONNECTING || c->st == C_HANDSHAKE)
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
		rs_fail(&b->rs, "%" PRIu64 " of %" PRIu64 " connections "
		    "failed, the first: %s", b->connects_failed,
		    b->connects_failed + b->connects_ok, b->rs.note);
	bench_teardown(b, now);
}

/*
 * A step of a connect run: its measured phase ends when the last
 * connection starts, or after --duration; then the ones in flight have
 * --drain to finish.
 */
static void
bench_connect_tick(struct bench *b, int64_t now)
{
	if (b->t_end == 0 && now >= b->t_phase_end)
		b->t_end = b->t_phase_end;
	else if (b->t_end == 0 && b->next_new == b->n)
		b->t_end = now;
	if (b->t_end == 0)
		return;
	if (b->inflight == 0 && TAILQ_EMPTY(&b->retryq)) {
		bench_connect_end(b, now);
	} else if (now >= b->t_end + (int64_t)b->o->drain * NS) {
		b->connects_failed += b->inflight;
		rs_note(&b->rs, "%u connections still open after the drain "
		    "time", b->inflight);
		bench_connect_end(b, now);
	}
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
		    workload_name(b->o->wl), (double)(now - b->t0) / NS,
		    b->connects_ok, b->connects_failed, b->inflight);
	else
		fprintf(stderr, "\r\033[K%s %6.1f s  ready %u/%u  sent %"
		    PRIu64 "  delivered %" PRIu64,
		    workload_name(b->o->wl), (double)(now - b->t0) / NS,
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
		rs_fail(&b->rs, "interrupted by signal %d",
		    (int)got_signal);
		bench_teardown(b, now);
		return;
	}
	if (now >= b->deadline) {
		if (b->ph < PH_TEARDOWN) {
			rs_fail(&b->rs, "the run passed its deadline");
			bench_teardown(b, now);
		} else {
			b->ph = PH_DONE;
		}
		return;
	}
	switch (b->ph) {
	case PH_SETUP:
		if (b->rs.failed) {
			bench_teardown(b, now);
			return;
		}
		bench_start_conns(b, now);
		if (b->nident == b->n && !conn_synced(b))
			b->wire->sync(b, now);
		if (o->wl == WL_CONNECT) {
			bench_connect_tick(b, now);
			return;
		}
		if (b->nready == b->n) {
			bench_begin(b, now);
			return;
		}
		if (now >= b->t0 + (int64_t)o->setup_timeout * NS) {
			rs_fail(&b->rs, "set-up timed out after %u s: %u "
			    "of %u clients identified, %u ready%s",
			    o->setup_timeout, b->nident, b->n, b->nready,
			    conn_synced(b) ? "" : "; some node does not list "
			    "every client (are the --nodes one cluster?)");
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
	if (o->wl == WL_CONNECT) {
		/* Its measured phase: connections start for --duration. */
		b->t_measure = b->t0;
		b->t_phase_end = b->t0 + (int64_t)o->duration * NS;
	}
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

/* Runs fanout, private, connect or hold, and reports; the exit status. */
int
bench_classic(struct options *o)
{
	struct bench	*b;
	unsigned int	 i;
	int		 rv = 0;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		err(1, "calloc");
	b->o = o;
	b->n = o->wl == WL_CONNECT ? o->connections : o->nclients;
	b->ph = PH_SETUP;
	b->busy = o->wl == WL_FANOUT || o->wl == WL_PRIVATE;
	b->tag = (char)('a' + getpid() % 26);
	snprintf(b->room, sizeof(b->room), "bench%d", (int)(getpid() % 100000));
	TAILQ_INIT(&b->retryq);
	buf_init(&b->line);
	proto_parser_init(&b->pp, NULL);
	if ((b->text = malloc((size_t)o->bytes + 64)) == NULL)
		err(1, "malloc");
	b->wire = o->proto == PK_IRC ? &wire_irc : &wire_talknet;
	targets_resolve(o, &b->tg);
	/* --nodes: the first client of each node asks it, from now on. */
	if (b->tg.n > 1)
		b->unsynced = b->tg.n < b->n ? b->tg.n : b->n;
	for (i = 0; i < b->unsynced; i++)
		b->probe_at[i] = 1;
	bench_init_clients(b);
	if ((b->ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		err(1, "epoll_create1");

	bench_sample(b, &b->srv_start, 1);
	if (o->server_pid > 0 && !b->srv_start.ok)
		errx(1, "--server-pid %d: no such process", (int)o->server_pid);
	if (o->settle > 0) {
		b->settle_s = procstat_settle(o->settle, &b->settled);
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
	if (b->rs.failed) {
		/* Said on stderr too, unless the report already went there. */
		if (!o->json || o->quiet)
			warnx("FAILED: %s", b->rs.error);
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
