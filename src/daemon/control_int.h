/*
 * control_int.h: what control.c (the socket) and control_cmd.c (the
 * commands) share, and nothing else includes.
 */
#ifndef TALKNETD_CONTROL_INT_H
#define TALKNETD_CONTROL_INT_H

#include <sys/types.h>

#include <stdint.h>

#include "buf.h"
#include "peer.h"
#include "proto.h"

#define CONTROL_MAX_CONN	8
#define CONTROL_OUT_LOW		(64 * 1024)	/* make more below this */

/* The commands whose answers are made a slice at a time. */
enum ctl_cmd {
	CMD_NONE = 0,
	CMD_USERS,
	CMD_ROOMS
};

/* One talknetctl connection. */
struct ctl_conn {
	struct peer	 peer;		/* fd -1: free */
	uid_t		 uid;		/* SO_PEERCRED */
	pid_t		 pid;
	int64_t		 last;		/* ms: it last made progress */
	int		 asked;		/* the request came: now answering */
	int		 done;		/* the whole answer is queued */
	enum ctl_cmd	 cmd;		/* what control_more makes */
	uint32_t	 cursor;	/* the next row to look at */
	uint64_t	 count;		/* rows sent */
};

/* control.c */
void	 control_fail(struct ctl_conn *, const char *why);

/* control_cmd.c */
/* Runs a request: queues its answer, or the first slice of it. */
void	 control_run(struct ctl_conn *, const struct str *w, size_t n);
/* Queues the next slice of a long answer (and END after the last). */
void	 control_more(struct ctl_conn *);

#endif
