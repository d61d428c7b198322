/*
 * session.h: how a client's session ends, and the report its worker
 * sends the master when it does.
 *
 * The worker logs its own session's end line, and sends the master one
 * struct session_report in its release datagram (SCM_CREDENTIALS names
 * the sender).  The master adds the report to its totals, which
 * talknetctl "show stats" and SIGUSR1 print.  A worker is not trusted:
 * a report of the wrong size or version, or with a reason out of range,
 * is counted as END_NONE and its numbers are ignored.  A worker that dies
 * on a signal sends nothing; the master counts it as END_CRASHED.
 */
#ifndef TALKNETD_SESSION_H
#define TALKNETD_SESSION_H

#include <stddef.h>
#include <stdint.h>

#define SESSION_REPORT_VERSION	1

enum session_end {
	END_NONE = 0,		/* unknown: no report, or a bad one */
	END_QUIT,		/* the client sent DISCONNECT */
	END_CLIENT_CLOSED,	/* the client closed its side */
	END_INVALID,		/* an invalid message, or a line too long */
	END_LOGIN_TIMEOUT,	/* not identified in time */
	END_QUEUE,		/* its output queue over the limit, or stalled */
	END_KICKED,		/* talknetctl kick */
	END_SHUTDOWN,		/* the server stopped */
	END_CRASHED,		/* the worker died on a signal (master only) */
	END_SERVER_ERROR,	/* the hub dropped it, or did not come back */
	END_LAST
};

/* The limits whose hits are counted, each named after its option. */
enum limit_id {
	LIMIT_MAX_CLIENTS = 0,	/* master: refused at max-clients */
	LIMIT_MAX_CLIENTS_PER_IP, /* master: refused at max-clients-per-ip */
	LIMIT_MAX_LINE,		/* worker: a line over max-line */
	LIMIT_RATE,		/* worker: a line held back by rate-limit */
	LIMIT_LOGIN_TIMEOUT,	/* worker: cut at login-timeout */
	LIMIT_MAX_QUEUE,	/* worker: cut at max-queue */
	LIMIT_STALL,		/* worker: cut at stall-timeout */
	LIMIT_LAST
};

/* What a worker tells the master at the end of its session. */
struct session_report {
	uint16_t	version;	/* SESSION_REPORT_VERSION */
	uint16_t	reason;		/* enum session_end */
	uint32_t	pad;
	uint64_t	lines_in;	/* lines from the client */
	uint64_t	lines_out;	/* lines to the client */
	uint64_t	bytes_in;
	uint64_t	bytes_out;
	uint64_t	hits[LIMIT_LAST];	/* limits this session hit */
};

/* What the master adds up over every session that ended. */
struct session_totals {
	uint64_t	sessions;
	uint64_t	ends[END_LAST];
	uint64_t	lines_in;
	uint64_t	lines_out;
	uint64_t	bytes_in;
	uint64_t	bytes_out;
	uint64_t	hits[LIMIT_LAST];
};

/* A reason as the logs and talknetctl write it: "queue over the limit". */
const char	*session_end_name(unsigned int);
/* A limit by its option's name: "max-line". */
const char	*limit_name(unsigned int);
/*
 * Checks a report received from a worker (n bytes at p): returns 0 and
 * fills *r, or -1 when it is not a whole, known report.
 */
int		 session_report_get(const void *p, size_t n,
		    struct session_report *r);
/* The end of a session the hub closed with a CLOSE frame's reason. */
unsigned int	 session_end_of_close(uint32_t close_reason);
/* Adds a checked report (or, with r NULL, a crash) to the totals. */
void		 session_totals_add(struct session_totals *,
		    const struct session_report *r, unsigned int reason);

#endif
