/*
 * request.c: the table of requests, the names of statuses and results,
 * and the look-ups by name.  See request.h.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto.h"
#include "request.h"
#include "utf8.h"

/*
 * The requests.  The wire numbers are those of IPC version 2 (0x0100
 * plus the request's place in the protocol): they must never change
 * without a new IPC_VERSION.
 */
static const struct req_row req_rows[MSG_REQUEST_LAST + 1] = {
	[MSG_IDENTIFY] =	{ "IDENTIFY", 0x0101, REQ_ANON, 1,
				    { ARG_USER } },
	[MSG_STATUS] =		{ "STATUS", 0x0102, 0, 1, { ARG_STATUS } },
	[MSG_USERS] =		{ "USERS", 0x0103, 0, 0, { ARG_TEXT } },
	[MSG_TEXT] =		{ "TEXT", 0x0104, 0, 2,
				    { ARG_USER, ARG_TEXT } },
	[MSG_PUBLIC_TEXT] =	{ "PUBLIC_TEXT", 0x0105, 0, 1, { ARG_TEXT } },
	[MSG_NEW_ROOM] =	{ "NEW_ROOM", 0x0106, 0, 1, { ARG_ROOM } },
	[MSG_INVITE] =		{ "INVITE", 0x0107, 0, 2,
				    { ARG_ROOM, ARG_NAMES } },
	[MSG_JOIN_ROOM] =	{ "JOIN_ROOM", 0x0108, 0, 1, { ARG_ROOM } },
	[MSG_ROOM_USERS] =	{ "ROOM_USERS", 0x0109, 0, 1, { ARG_ROOM } },
	[MSG_ROOM_TEXT] =	{ "ROOM_TEXT", 0x010a, 0, 2,
				    { ARG_ROOM, ARG_TEXT } },
	[MSG_LEAVE_ROOM] =	{ "LEAVE_ROOM", 0x010b, 0, 1, { ARG_ROOM } },
	[MSG_DISCONNECT] =	{ "DISCONNECT", 0x010c, REQ_ANON, 0,
				    { ARG_TEXT } },
};

/* Where each kind of argument lives in struct msg. */
static const size_t req_arg_off[] = {
	[ARG_USER] =	offsetof(struct msg, username),
	[ARG_ROOM] =	offsetof(struct msg, roomname),
	[ARG_TEXT] =	offsetof(struct msg, text),
	[ARG_STATUS] =	offsetof(struct msg, status),
};

/* Every status name. */
static const char *const proto_statuses[STATUS_COUNT] = {
	[STATUS_ACTIVE] = "ACTIVE",
	[STATUS_AWAY] = "AWAY",
	[STATUS_BUSY] = "BUSY",
};

/* Every result name. */
static const char *const proto_results[RES_COUNT] = {
	[RES_NONE] = NULL,
	[RES_SUCCESS] = "SUCCESS",
	[RES_USER_ALREADY_EXISTS] = "USER_ALREADY_EXISTS",
	[RES_NO_SUCH_USER] = "NO_SUCH_USER",
	[RES_ROOM_ALREADY_EXISTS] = "ROOM_ALREADY_EXISTS",
	[RES_TOO_MANY_ROOMS] = "TOO_MANY_ROOMS",
	[RES_NO_SUCH_ROOM] = "NO_SUCH_ROOM",
	[RES_NOT_JOINED] = "NOT_JOINED",
	[RES_NOT_INVITED] = "NOT_INVITED",
	[RES_INVALID] = "INVALID",
	[RES_NOT_IDENTIFIED] = "NOT_IDENTIFIED",
};

/* The row of a request type, or NULL if t is not a request. */
const struct req_row *
req_row(enum msg_type t)
{
	if ((int)t < MSG_REQUEST_FIRST || t > MSG_REQUEST_LAST)
		return NULL;
	return &req_rows[t];
}

/* The request a frame type carries, or MSG_NONE. */
enum msg_type
req_of_wire(uint32_t wire)
{
	int	t;

	for (t = MSG_REQUEST_FIRST; t <= MSG_REQUEST_LAST; t++)
		if (req_rows[t].wire == wire)
			return (enum msg_type)t;
	return MSG_NONE;
}

/* The frame type that carries request t. */
uint16_t
req_wire(enum msg_type t)
{
	const struct req_row	*row = req_row(t);

	return row == NULL ? 0 : row->wire;
}

/* Whether a request of type t may carry n strings: ARG_NAMES is 1 or more. */
int
req_nstrs_ok(enum msg_type t, long n)
{
	const struct req_row	*row = req_row(t);

	if (row == NULL || n < (long)row->nargs)
		return 0;
	if (row->nargs > 0 && row->args[row->nargs - 1] == ARG_NAMES)
		return n <= INT32_MAX;
	return n == (long)row->nargs;
}

/* Checks one string as an argument of this kind; 1 if it is good. */
int
req_arg_valid(enum req_arg kind, const char *p, size_t len,
    const struct proto_limits *lim)
{
	switch (kind) {
	case ARG_USER:
	case ARG_NAMES:
		return utf8_name_valid(p, len, lim->max_name);
	case ARG_ROOM:
		return utf8_name_valid(p, len, lim->max_room);
	case ARG_TEXT:
		return utf8_valid(p, len);
	case ARG_STATUS:
		return proto_status_lookup(p, len) != -1;
	}
	return 0;
}

/* Checks the n strings of a request of type t, in the order of its row. */
int
req_args_valid(enum msg_type t, const struct str *a, size_t n,
    const struct proto_limits *lim)
{
	const struct req_row	*row = req_row(t);
	size_t			 i;
	enum req_arg		 kind;

	if (row == NULL || !req_nstrs_ok(t, (long)n))
		return 0;
	for (i = 0; i < n; i++) {
		kind = row->args[i < row->nargs ? i : row->nargs - 1];
		if (!req_arg_valid(kind, a[i].p, a[i].len, lim))
			return 0;
	}
	return 1;
}

/* The field of m that holds an argument of this kind. */
struct str
req_get(const struct msg *m, enum req_arg kind)
{
	struct str	s;

	memcpy(&s, (const char *)m + req_arg_off[kind], sizeof(s));
	return s;
}

/* Stores an argument of this kind in m. */
void
req_set(struct msg *m, enum req_arg kind, struct str s)
{
	memcpy((char *)m + req_arg_off[kind], &s, sizeof(s));
}

/* Makes a struct str from a NUL-terminated string. */
struct str
str_c(const char *s)
{
	struct str	r;

	r.p = s;
	r.len = s == NULL ? 0 : strlen(s);
	return r;
}

/* Returns 1 if p[0..len) spells the NUL-terminated name exactly. */
int
str_eq_c(const char *p, size_t len, const char *name)
{
	return name != NULL && strlen(name) == len &&
	    (len == 0 || memcmp(p, name, len) == 0);
}

/* Protocol name of a status; NULL if out of range. */
const char *
proto_status_name(enum user_status st)
{
	if ((int)st < 0 || st >= STATUS_COUNT)
		return NULL;
	return proto_statuses[st];
}

/* Protocol name of a result; NULL if out of range. */
const char *
proto_result_name(enum result r)
{
	if ((int)r <= RES_NONE || r >= RES_COUNT)
		return NULL;
	return proto_results[r];
}

/* Message type of a name, or MSG_NONE. */
enum msg_type
proto_type_lookup(const char *p, size_t len)
{
	int	t;

	for (t = MSG_NONE + 1; t < MSG_TYPE_COUNT; t++)
		if (str_eq_c(p, len, proto_type_name((enum msg_type)t)))
			return (enum msg_type)t;
	return MSG_NONE;
}

/* Status of a name, or -1. */
int
proto_status_lookup(const char *p, size_t len)
{
	int	st;

	for (st = 0; st < STATUS_COUNT; st++)
		if (str_eq_c(p, len, proto_statuses[st]))
			return st;
	return -1;
}

/* Result of a name, or RES_NONE. */
enum result
proto_result_lookup(const char *p, size_t len)
{
	int	r;

	for (r = RES_NONE + 1; r < RES_COUNT; r++)
		if (str_eq_c(p, len, proto_results[r]))
			return (enum result)r;
	return RES_NONE;
}
