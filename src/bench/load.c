/*
 * load.c: the classic workloads themselves, whatever the wire:
 * fanout (senders on a schedule, every client a receiver), private
 * (pingers and their echoes), connect and hold.  Every message carries
 * its send time (CLOCK_MONOTONIC) in its text, so each delivered copy
 * gives one latency; copies that never arrive are counted as missing.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <err.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "bench.h"

#define SEND_BURST		256	/* catch-up sends per sender per round */
#define MAX_SEQ_SLOTS		(16u * 1024 * 1024)

/* Sets up the clients: names, senders, pingers and their peers. */
void
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
	size_t		 len;
	struct conn	*peer;

	c->seq++;
	len = stamp_build(b, c->idx, c->seq, t);
	b->sent_all++;
	if (b->t_measure != 0 && t >= b->t_measure && t < b->t_end) {
		b->sent++;
		b->expected += b->o->wl == WL_FANOUT ? b->n - 1 : 1;
	}
	peer = b->o->wl == WL_PRIVATE ? &b->c[c->peer] : NULL;
	b->wire->text(b, c, peer, b->text, len);
}

/* Tells whether timed sends may go out now. */
static int
bench_sending(const struct bench *b, int64_t now)
{
	return (b->ph == PH_WARMUP || b->ph == PH_MEASURE) && now < b->t_end;
}

/* Handles one delivered text: records its latency, or echoes it. */
void
bench_on_text(struct bench *b, struct conn *c, const char *text, size_t len,
    int64_t now)
{
	uint64_t	 sender, seq;
	int64_t		 t;
	uint32_t	*last;

	if (stamp_parse(text, len, &sender, &seq, &t) == -1 ||
	    sender >= b->n) {
		b->foreign++;
		return;
	}
	if (b->o->wl == WL_PRIVATE && !c->pinger) {
		/* The echo side sends the text back as it came. */
		if (c->st != C_READY)
			return;
		b->wire->text(b, c, &b->c[c->peer], text, len);
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

/* Everyone is ready: schedules the senders and starts the clock. */
void
bench_begin(struct bench *b, int64_t now)
{
	const struct options	*o = b->o;
	struct conn		*c;
	unsigned int		 i, k, nsnd = 0;

	if (o->wl == WL_HOLD) {
		/* Its measured phase: the clients held idle. */
		b->ph = PH_HOLD;
		b->t_measure = now;
		b->t_end = b->t_phase_end = now + (int64_t)o->duration * NS;
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
void
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
