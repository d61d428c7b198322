/*
 * worker_session.c: a worker's account of its session.  It keeps where
 * the session stands (w.flags) and the input rate limit's bucket, counts
 * the lines and bytes each way, notes why the session ends and which
 * limit ended it, logs the end-of-session line and sends the master its
 * report (session.h) in the release datagram.
 *
 * The worker logs the end line, not the hub or the master: it alone
 * knows all of the session, and the address it names came from the
 * master's accept(2) before the worker read a byte of the client.  It
 * logs as it exits, so the libc page the log call writes is no copy
 * kept for long.  A compromised worker could lie in this line, as it
 * could write any line to its stderr; the master's own lines about it
 * (crashed, killed, a bad report) it cannot.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "session.h"
#include "worker.h"

/* Room for an escaped name: names are short, and longer ones are cut. */
#define WORKER_NAME_ESC		256

/*
 * Notes why the session ends and, if one did, which limit ended it
 * (LIMIT_LAST: none).  The first reason stays: a client that sent an
 * invalid line and then closed ended on the invalid line.
 */
void
worker_end(enum session_end reason, enum limit_id limit)
{
	if (w.rep.reason != END_NONE)
		return;
	w.rep.reason = (uint16_t)reason;
	if (limit < LIMIT_LAST)
		w.rep.hits[limit]++;
}

/* Sets flag f of the worker's state if on, else clears it. */
void
worker_flag(enum worker_flag f, int on)
{
	if (on)
		w.flags |= f;
	else
		w.flags &= ~f;
}

/*
 * The input rate limit: a token bucket of --rate-burst tokens, filled
 * at --rate-limit a second, one token a message.  Lines past the limit
 * stay buffered and the client is read no further until tokens come
 * back, so a flood is slowed down by TCP, never dropped.
 */
void
worker_refill(void)
{
	int64_t	now;

	if (w.lim.rate_limit == 0)
		return;
	now = clock_now_ms();
	w.tokens += (double)(now - w.tokens_at) * (double)w.lim.rate_limit /
	    1000.0;
	if (w.tokens > (double)w.lim.rate_burst)
		w.tokens = (double)w.lim.rate_burst;
	w.tokens_at = now;
}

/* Milliseconds until the bucket holds a token again (0: now). */
int
worker_token_wait_ms(void)
{
	if (w.lim.rate_limit == 0 || w.tokens >= 1.0)
		return 0;
	return (int)((1.0 - w.tokens) * 1000.0 / (double)w.lim.rate_limit) +
	    1;
}

/* Counts a line the rate limit held back, once per line. */
void
worker_rate_held(int held)
{
	if (held && !(w.flags & WF_RATE_HELD))
		w.rep.hits[LIMIT_RATE]++;
	worker_flag(WF_RATE_HELD, held);
}

/*
 * Counts bytes handed to the kernel for the client, and the lines they
 * end.  Through the send pipe they reach the socket a moment later:
 * bytes still in the pipe when a client goes away are counted though it
 * never got them, the only way the counts can be above what it read.
 */
void
worker_count_out(const char *p, size_t n)
{
	const char	*q, *end = p + n;

	w.rep.bytes_out += n;
	while (p < end && (q = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		w.rep.lines_out++;
		p = q + 1;
	}
}

/* The user's name, escaped for a log line, or "(unidentified)". */
static const char *
worker_log_name(char *dst, size_t len)
{
	if (w.ident != IDENT_DONE)
		return "(unidentified)";
	return log_escape(buf_head(&w.ident_name), buf_pending(&w.ident_name),
	    dst, len);
}

/*
 * Logs the session's end line and sends the master the report, which
 * also frees the client's --max-clients and per-address places before
 * the client sees the end: a client that connects again at once is not
 * refused for the one closing.  The kernel adds who sent it.  A failure
 * (the master's queue is full) only means the place is freed, and the
 * session counted as unknown, when the master reaps us.
 */
void
worker_session_end(void)
{
	char		 name[WORKER_NAME_ESC];
	const char	*tls = worker_tls_why();
	int64_t		 ms = clock_now_ms() - w.started_at;

	w.rep.version = SESSION_REPORT_VERSION;
	/* A TLS failure's reason follows the end's: "invalid message
	 * (TLS: wrong version number)". */
	log_info("session %s from %s ended: %s%s%s%s after %lld.%lld s, "
	    "in %llu lines/%llu bytes, out %llu lines/%llu bytes",
	    worker_log_name(name, sizeof(name)), w.addr,
	    session_end_name(w.rep.reason), *tls != '\0' ? " (TLS: " : "",
	    tls, *tls != '\0' ? ")" : "", (long long)(ms / 1000),
	    (long long)(ms % 1000 / 100), (unsigned long long)w.rep.lines_in,
	    (unsigned long long)w.rep.bytes_in,
	    (unsigned long long)w.rep.lines_out,
	    (unsigned long long)w.rep.bytes_out);
	if (send(WORKER_RELEASE_FD, &w.rep, sizeof(w.rep),
	    MSG_DONTWAIT | MSG_NOSIGNAL) == -1)
		log_debug("worker %s: session report: %s", w.addr,
		    strerror(errno));
}
