/*
 * session.c: names of session ends and limits, and the checks on a
 * worker's end-of-session report.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ipc.h"
#include "session.h"

static const char *const end_names[END_LAST] = {
	[END_NONE] = "unknown",
	[END_QUIT] = "quit",
	[END_CLIENT_CLOSED] = "client closed",
	[END_INVALID] = "invalid message",
	[END_LOGIN_TIMEOUT] = "login timeout",
	[END_QUEUE] = "queue over the limit",
	[END_KICKED] = "kicked",
	[END_SHUTDOWN] = "server shutdown",
	[END_CRASHED] = "worker crashed",
	[END_SERVER_ERROR] = "server error",
};

static const char *const limit_names[LIMIT_LAST] = {
	[LIMIT_MAX_CLIENTS] = "max-clients",
	[LIMIT_MAX_CLIENTS_PER_IP] = "max-clients-per-ip",
	[LIMIT_MAX_LINE] = "max-line",
	[LIMIT_RATE] = "rate-limit",
	[LIMIT_LOGIN_TIMEOUT] = "login-timeout",
	[LIMIT_MAX_QUEUE] = "max-queue",
	[LIMIT_STALL] = "stall-timeout",
};

/* A reason as the logs and talknetctl write it. */
const char *
session_end_name(unsigned int reason)
{
	return reason < END_LAST ? end_names[reason] : end_names[END_NONE];
}

/* A limit by its option's name. */
const char *
limit_name(unsigned int id)
{
	return id < LIMIT_LAST ? limit_names[id] : "unknown";
}

/*
 * Checks a worker's report: the exact size, the version, the reason,
 * and numbers that one session can have: no more lines than bytes, no
 * master-side limit, at most one hit of each limit that ends a session,
 * and no more lines held back by the rate limit than lines read.
 */
int
session_report_get(const void *p, size_t n, struct session_report *r)
{
	if (n != sizeof(*r))
		return -1;
	memcpy(r, p, sizeof(*r));
	if (r->version != SESSION_REPORT_VERSION || r->reason >= END_LAST ||
	    r->reason == END_CRASHED || r->pad != 0)
		return -1;
	if (r->lines_in > r->bytes_in || r->lines_out > r->bytes_out)
		return -1;
	if (r->hits[LIMIT_MAX_CLIENTS] != 0 ||
	    r->hits[LIMIT_MAX_CLIENTS_PER_IP] != 0 ||
	    r->hits[LIMIT_MAX_LINE] > 1 || r->hits[LIMIT_LOGIN_TIMEOUT] > 1 ||
	    r->hits[LIMIT_MAX_QUEUE] > 1 || r->hits[LIMIT_STALL] > 1 ||
	    r->hits[LIMIT_RATE] > r->lines_in)
		return -1;
	return 0;
}

/*
 * The end of a session the hub closed, by the CLOSE frame's reason: an
 * admin's kick, the client's queue, the DISCONNECT the worker asked for;
 * anything else is the server's own doing.
 */
unsigned int
session_end_of_close(uint32_t close_reason)
{
	switch (close_reason) {
	case CLOSE_QUIT:
		return END_QUIT;
	case CLOSE_QUEUE:
		return END_QUEUE;
	case CLOSE_KICKED:
		return END_KICKED;
	default:
		return END_SERVER_ERROR;
	}
}

/* a + b, or UINT64_MAX: forged reports cannot wrap a total to zero. */
static uint64_t
session_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Adds one ended session to the totals; r NULL counts the reason only. */
void
session_totals_add(struct session_totals *t, const struct session_report *r,
    unsigned int reason)
{
	size_t	i;

	t->sessions++;
	t->ends[reason < END_LAST ? reason : END_NONE]++;
	if (r == NULL)
		return;
	t->lines_in = session_add(t->lines_in, r->lines_in);
	t->lines_out = session_add(t->lines_out, r->lines_out);
	t->bytes_in = session_add(t->bytes_in, r->bytes_in);
	t->bytes_out = session_add(t->bytes_out, r->bytes_out);
	for (i = 0; i < LIMIT_LAST; i++)
		t->hits[i] = session_add(t->hits[i], r->hits[i]);
}
