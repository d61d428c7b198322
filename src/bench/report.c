/*
 * report.c: the result of a classic run, as a table for people or
 * as one JSON object (with the latency CDF) for run-bench and charts.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

/* The figures derived from the counters, shared by both outputs. */
struct outcome {
	double	 setup_s;	/* connect + identify of all clients */
	double	 join_s;	/* then the room */
	double	 window_s;	/* the measured window */
	double	 measured_s;	/* the measured phase, as it ran */
	double	 drained_s;	/* the wait at its end */
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
	int64_t			 t_stop;

	memset(r, 0, sizeof(*r));
	/* The phase ends on time, or with the run if that was cut short. */
	t_stop = b->t_end > 0 && b->t_end < b->t_finish ? b->t_end :
	    b->t_finish;
	if (b->t_measure > 0 && t_stop > b->t_measure)
		r->measured_s = (double)(t_stop - b->t_measure) / NS;
	if (b->t_end > 0 && b->t_finish > b->t_end)
		r->drained_s = (double)(b->t_finish - b->t_end) / NS;
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
void
report_human(const struct bench *b, FILE *f)
{
	const struct options	*o = b->o;
	struct outcome		 r;
	unsigned int		 n = b->n;

	result_compute(b, &r);
	fprintf(f, "workload %s  proto %s  server %s  %s %u",
	    workload_name(o->wl), o->proto == PK_IRC ? "irc" : "talknet",
	    b->tg.text, o->wl == WL_CONNECT ? "connections" : "clients", n);
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
	if (b->rs.error[0] != '\0')
		fprintf(f, "FAILED: %s\n", b->rs.error);
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
	if ((o->wl == WL_HOLD || b->srv_end.ok) && !b->rs.failed)
		fprintf(f, "memavail delta %.1f MiB (%.1f KiB/client; the "
		    "bench's own %.1f MiB taken out)\n",
		    (double)r.mem_delta.avail / 1024,
		    per_client(r.mem_delta.avail, &r),
		    (double)r.selfrss_delta_kib / 1024);
	if (o->wl == WL_HOLD && r.mem_delta.ok && !b->rs.failed)
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
	if (b->rs.note[0] != '\0' &&
	    strcmp(b->rs.note, b->rs.error) != 0)
		fprintf(f, "first problem: %s\n", b->rs.note);
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
void
bench_label(const struct bench *b, char *s, size_t len)
{
	const struct options	*o = b->o;

	if (o->label != NULL) {
		strlcpy(s, o->label, len);
		return;
	}
	if (o->wl == WL_FANOUT)
		snprintf(s, len, "%s %s %u/s", o->proto == PK_IRC ? "irc" :
		    "talknet", workload_name(o->wl), o->rate);
	else
		snprintf(s, len, "%s %s", o->proto == PK_IRC ? "irc" :
		    "talknet", workload_name(o->wl));
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
void
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
	    workload_name(o->wl), o->proto == PK_IRC ? "irc" : "talknet");
	json_str(f, b->tg.text);
	fprintf(f, ",\"nodes\":%u,\"clients\":%u,\"connections\":%u,"
	    "\"senders\":%u,\"rate\":%u,\"bytes\":%u,\"duration\":%u,"
	    "\"warmup\":%u,\"drain\":%u,\"concurrency\":%u,\"room\":%s,", b->tg.n,
	    o->wl == WL_CONNECT ? 0 : b->n, o->wl == WL_CONNECT ? b->n : 0,
	    o->wl == WL_FANOUT ? o->nsenders : o->wl == WL_PRIVATE ?
	    b->n / 2 : 0, o->rate, o->bytes, o->duration, o->warmup, o->drain,
	    o->concurrency, o->room || (o->wl == WL_FANOUT &&
	    o->proto == PK_IRC) ? "true" : "false");
	json_num(f, "measured_s", r.measured_s, 0);
	json_num(f, "drained_s", r.drained_s, 0);
	fprintf(f, "\"ok\":%s,\"error\":", b->rs.failed ? "false" : "true");
	json_str(f, b->rs.error);
	fputs(",\"first_problem\":", f);
	json_str(f, b->rs.note);
	fprintf(f, ",\"setup\":{\"clients\":%u,", b->nident);
	json_num(f, "seconds", r.setup_s, 0);
	json_num(f, "per_s", r.setup_s > 0 ? b->nident / r.setup_s : 0, 0);
	json_num(f, "join_seconds", r.join_s, 0);
	fprintf(f, "\"retries\":%" PRIu64 "},", b->connect_retries);
	/* sent_all: the warm-up's too, what the server saw (per message). */
	fprintf(f, "\"sent\":%" PRIu64 ",\"sent_all\":%" PRIu64
	    ",\"expected\":%" PRIu64
	    ",\"delivered\":%" PRIu64 ",\"missing\":%" PRIu64
	    ",\"misordered\":%" PRIu64 ",\"disconnects\":%" PRIu64
	    ",\"server_errors\":%" PRIu64 ",\"foreign\":%" PRIu64 ",",
	    b->sent, b->sent_all, b->expected, b->delivered, r.missing,
	    b->misordered, b->disconnects, b->server_errors, b->foreign);
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

/* --- join and broadcast ---------------------------------------------- */

/* The nearest-rank quantile q of n sorted samples, in ms; 0 if none. */
static double
p_quantile(const int64_t *v, unsigned int n, double q)
{
	unsigned int	k;

	if (n == 0)
		return 0;
	k = (unsigned int)ceil(q * n);
	k = k < 1 ? 0 : k - 1;
	return (double)v[k < n ? k : n - 1] / MS;
}

/* Prints {"count":..,"min":..,"p50":..,"p99":..,"max":..} of sorted ms. */
static void
p_json_dist(FILE *f, const char *key, const int64_t *v, unsigned int n)
{
	fprintf(f, "\"%s\":{\"count\":%u,\"min\":%.6g,\"p50\":%.6g,"
	    "\"p99\":%.6g,\"max\":%.6g}", key, n, p_quantile(v, n, 0),
	    p_quantile(v, n, 0.5), p_quantile(v, n, 0.99),
	    p_quantile(v, n, 1));
}

/* The server's CPU microseconds per join or per delivered copy. */
static double
p_cpu_per(const struct presence *p)
{
	double	units;

	units = p->o->wl == WL_JOIN ? p->nsteps :
	    (double)p->nsteps * (p->n - 1);
	return units > 0 && p->o->server_pid > 0 ? p->cpu_s * 1e6 / units : 0;
}

/* Prints the result of join or broadcast as one JSON object. */
void
report_presence_json(const struct presence *p, FILE *f)
{
	const struct options	*o = p->o;
	const char		*wl = o->wl == WL_JOIN ? "join" : "broadcast";
	char			 label[128];

	if (o->label != NULL)
		strlcpy(label, o->label, sizeof(label));
	else
		snprintf(label, sizeof(label), "%s %s %u", p->irc ? "irc" :
		    "talknet", wl, p->n);
	fputs("{\"label\":", f);
	json_str(f, label);
	fprintf(f, ",\"workload\":\"%s\",\"proto\":\"%s\",\"address\":", wl,
	    p->irc ? "irc" : "talknet");
	json_str(f, p->tg.text);
	fprintf(f, ",\"nodes\":%u,\"clients\":%u,\"repeat\":%u,"
	    "\"step_timeout\":%u,\"concurrency\":%u,\"ok\":%s,\"error\":",
	    p->tg.n, p->n, o->repeat, o->step_timeout, o->concurrency,
	    p->rs.failed ? "false" : "true");
	json_str(f, p->rs.error);
	fputs(",\"first_problem\":", f);
	json_str(f, p->rs.note);
	fprintf(f, ",\"setup\":{\"clients\":%u,\"seconds\":%.6g,"
	    "\"per_s\":%.6g,\"retries\":%" PRIu64 "},", p->nready, p->setup_s,
	    p->setup_s > 0 ? p->nready / p->setup_s : 0, p->retries);
	fprintf(f, "\"steps\":%u,\"lost\":%" PRIu64 ",\"server_errors\":%"
	    PRIu64 ",", p->nsteps, p->lost, p->server_errors);
	if (o->wl == WL_JOIN) {
		p_json_dist(f, "join_ms", p->whole_ns, p->nsteps);
		fputc(',', f);
		p_json_dist(f, "response_ms", p->resp_ns, p->nsteps);
	} else {
		fprintf(f, "\"copies\":{\"expected\":%llu,\"delivered\":%"
		    PRIu64 ",\"duplicates\":%" PRIu64 "},",
		    (unsigned long long)p->nsteps * (p->n - 1),
		    p->copies_all, p->duplicates);
		p_json_dist(f, "last_copy_ms", p->whole_ns, p->nsteps);
	}
	fprintf(f, ",\"server\":{\"pid\":%d,\"procs\":%u,\"cpu_s\":%.6g,"
	    "\"cpu_from\":\"%s\",\"cpu_us_per_%s\":%.6g}}\n",
	    (int)o->server_pid, p->nproc, p->cpu_s, p->cpu_fine ?
	    "schedstat" : "ticks", o->wl == WL_JOIN ? "join" : "copy",
	    p_cpu_per(p));
}

/* Prints the result of join or broadcast for a reader. */
void
report_presence_human(const struct presence *p, FILE *f)
{
	const struct options	*o = p->o;
	const int64_t		*w = p->whole_ns, *r = p->resp_ns;
	unsigned int		 n = p->nsteps;

	fprintf(f, "%s over %s at %s: %u clients held (set up in %.1f s, "
	    "%" PRIu64 " retries), %u of %u timed\n", o->wl == WL_JOIN ?
	    "join" : "broadcast", p->irc ? "irc" : "talknet", p->tg.text,
	    p->nready, p->setup_s, p->retries, n, o->repeat);
	if (o->wl == WL_JOIN) {
		fprintf(f, "  join (connect..close) ms  p50 %.2f  p99 %.2f  "
		    "max %.2f\n", p_quantile(w, n, 0.5), p_quantile(w, n, 0.99),
		    p_quantile(w, n, 1));
		fprintf(f, "  connect..RESPONSE ms      p50 %.2f  p99 %.2f  "
		    "max %.2f\n", p_quantile(r, n, 0.5), p_quantile(r, n, 0.99),
		    p_quantile(r, n, 1));
	} else {
		fprintf(f, "  last of %u copies ms  p50 %.2f  max %.2f  "
		    "(%" PRIu64 " copies in all)\n", p->n - 1,
		    p_quantile(w, n, 0.5), p_quantile(w, n, 1), p->copies_all);
	}
	if (o->server_pid > 0)
		fprintf(f, "  server CPU %.3f s: %.1f us per %s, %u "
		    "processes\n", p->cpu_s, p_cpu_per(p), o->wl == WL_JOIN ?
		    "join" : "copy", p->nproc);
	if (p->rs.note[0] != '\0')
		fprintf(f, "  first problem: %s\n", p->rs.note);
	if (p->rs.failed)
		fprintf(f, "FAILED: %s\n", p->rs.error);
}
