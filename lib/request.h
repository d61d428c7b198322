/*
 * request.h: the one description of each request of the protocol.
 *
 * A row gives a request's name, the number of the worker-to-hub frame
 * that carries it (explicit, so the wire never depends on the order of
 * enum msg_type), its arguments in the order they are sent, each of a
 * kind whose limits one function checks, and the states it may run in.
 * The codec (proto.c), the worker's forwarding and the hub's checks
 * (src/daemon/ipc.c) and the fuzzers read it; nothing else lists requests.
 *
 * It also holds the names of statuses and results, and the look-ups.
 */
#ifndef TALKNET_REQUEST_H
#define TALKNET_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define REQ_MAX_ARGS		2

/* What one argument holds, and so which key and limit it has. */
enum req_arg {
	ARG_USER,	/* "username": a user name of max_name code points */
	ARG_ROOM,	/* "roomname": a room name of max_room code points */
	ARG_TEXT,	/* "text": any valid UTF-8 */
	ARG_STATUS,	/* "status": ACTIVE, AWAY or BUSY */
	ARG_NAMES	/* "usernames": one or more user names; last only */
};

/* Flags of a row. */
#define REQ_ANON	0x01	/* may run before IDENTIFY */

struct req_row {
	const char	*name;		/* "IDENTIFY" */
	uint16_t	 wire;		/* its IPC frame type */
	unsigned int	 flags;		/* REQ_* */
	size_t		 nargs;
	enum req_arg	 args[REQ_MAX_ARGS];
};

/* The row of a request type, or NULL if t is not a request. */
const struct req_row *req_row(enum msg_type t);
/* The request a frame type carries, or MSG_NONE. */
enum msg_type	 req_of_wire(uint32_t wire);
/* The frame type that carries request t (t must be a request). */
uint16_t	 req_wire(enum msg_type t);
/* Whether a request of type t may carry n strings on the wire. */
int		 req_nstrs_ok(enum msg_type t, long n);
/* Checks one string as an argument of this kind; 1 if it is good. */
int		 req_arg_valid(enum req_arg, const char *p, size_t len,
		    const struct proto_limits *);
/*
 * Checks the n strings of a request of type t, in the order of its row
 * (the names of ARG_NAMES one string each); 1 if they are all good.
 */
int		 req_args_valid(enum msg_type t, const struct str *a, size_t n,
		    const struct proto_limits *);
/* The field of m that holds an argument of this kind (not ARG_NAMES). */
struct str	 req_get(const struct msg *m, enum req_arg);
/* Stores an argument of this kind (not ARG_NAMES) in m. */
void		 req_set(struct msg *m, enum req_arg, struct str);

#endif
