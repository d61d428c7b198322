/*
 * proto.h: the TalkNet client protocol codec (see talknet-protocol(7)).
 *
 * Parsing: one line (no terminator) in, one struct msg out.  The JSON is
 * checked strictly (RFC 8259 grammar, valid UTF-8, escapes decoded with
 * surrogate pairs), tokenized with jsmn, and every field is checked
 * against the row of its message type.  Decoded strings live in the
 * parser's scratch space until the next parse.
 *
 * Encoding: compact JSON, keys in the order of the protocol, '"', '\\'
 * and control characters below 0x20 escaped, everything else raw UTF-8,
 * then one '\n'.
 *
 * No sockets, no globals: every state lives in a struct proto_parser
 * owned by the caller.
 */
#ifndef TALKNET_PROTO_H
#define TALKNET_PROTO_H

#include <stddef.h>

#include "buf.h"

/* Default limits of the protocol. */
#define PROTO_MAX_NAME		8	/* code points in a user name */
#define PROTO_MAX_ROOM		16	/* code points in a room name */
#define PROTO_MAX_LINE		65536	/* bytes in one line */
#define PROTO_DEFAULT_PORT	"8001"	/* TCP, as getaddrinfo() takes it */

enum msg_type {
	MSG_NONE = 0,
	/* requests, client to server */
	MSG_IDENTIFY,
	MSG_STATUS,
	MSG_USERS,
	MSG_TEXT,
	MSG_PUBLIC_TEXT,
	MSG_NEW_ROOM,
	MSG_INVITE,
	MSG_JOIN_ROOM,
	MSG_ROOM_USERS,
	MSG_ROOM_TEXT,
	MSG_LEAVE_ROOM,
	MSG_DISCONNECT,
	/* server to client */
	MSG_RESPONSE,
	MSG_NEW_USER,
	MSG_NEW_STATUS,
	MSG_USER_LIST,
	MSG_TEXT_FROM,
	MSG_PUBLIC_TEXT_FROM,
	MSG_INVITATION,
	MSG_JOINED_ROOM,
	MSG_ROOM_USER_LIST,
	MSG_ROOM_TEXT_FROM,
	MSG_LEFT_ROOM,
	MSG_DISCONNECTED,
	MSG_TYPE_COUNT
};
#define MSG_REQUEST_FIRST	MSG_IDENTIFY
#define MSG_REQUEST_LAST	MSG_DISCONNECT

enum user_status {
	STATUS_ACTIVE = 0,
	STATUS_AWAY,
	STATUS_BUSY,
	STATUS_COUNT
};

/* The "result" of a RESPONSE. */
enum result {
	RES_NONE = 0,
	RES_SUCCESS,
	RES_USER_ALREADY_EXISTS,
	RES_NO_SUCH_USER,
	RES_ROOM_ALREADY_EXISTS,
	RES_TOO_MANY_ROOMS,
	RES_NO_SUCH_ROOM,
	RES_NOT_JOINED,
	RES_NOT_INVITED,
	RES_INVALID,
	RES_NOT_IDENTIFIED,
	RES_COUNT
};

/* A decoded string: explicit length, may hold NUL bytes, not terminated. */
struct str {
	const char	*p;
	size_t		 len;
};

/*
 * One message.  Only the fields of its type are set; the others are
 * {NULL, 0}.  list holds the "usernames" array of INVITE (nlist names),
 * or the "users" object of USER_LIST and ROOM_USER_LIST as nlist
 * (name, status) pairs in list[2*i], list[2*i+1].
 */
struct msg {
	enum msg_type	 type;
	struct str	 username;
	struct str	 roomname;
	struct str	 text;
	struct str	 status;	/* as sent; see st */
	enum user_status st;		/* STATUS and NEW_STATUS */
	struct str	 operation;	/* RESPONSE: as sent */
	enum msg_type	 op;		/* RESPONSE: MSG_NONE if unknown */
	struct str	 result;	/* RESPONSE: as sent */
	enum result	 res;		/* RESPONSE: RES_NONE if unknown */
	struct str	 extra;		/* RESPONSE: optional */
	int		 has_extra;
	const struct str *list;
	size_t		 nlist;
};

struct proto_limits {
	size_t	max_name;	/* code points, >= 1 */
	size_t	max_room;	/* code points, >= 1 */
};

/* Parser state owned by the caller; grows as needed, reused per line. */
struct proto_parser {
	struct proto_limits lim;
	void		*tok;		/* jsmntok_t[], kept opaque here */
	unsigned int	 ntok;
	char		*scratch;	/* decoded strings */
	size_t		 nscratch;
	struct str	*list;
	size_t		 nlistcap;
	void		*tok_store;	/* the owner's storage, or NULL */
	char		*scratch_store;
};

/* Sets up a parser with these limits (NULL: the protocol defaults). */
void	 proto_parser_init(struct proto_parser *, const struct proto_limits *);
/*
 * Lets the parser start in the caller's storage: tok_bytes (aligned
 * like an int) for tokens, scratch_bytes for decoded strings.  Lines
 * that need more move that part to the heap.
 */
void	 proto_parser_store(struct proto_parser *, void *tok, size_t tok_bytes,
	    char *scratch, size_t scratch_bytes);
/* Frees what the parser allocated. */
void	 proto_parser_free(struct proto_parser *);

/*
 * Parses a request a client sent the server.  Returns 0 and fills *m, or
 * -1 if the line is INVALID in the sense of the protocol: not UTF-8, not
 * a JSON object, no or unknown "type", a type only the server sends, a
 * missing key or one of the wrong JSON type, a bad status, a bad user or
 * room name, or an empty "usernames".  Unknown keys are ignored.
 * Also -1 on ENOMEM (errno set), which the caller treats the same way.
 */
int	 proto_parse_request(struct proto_parser *, const char *line,
	    size_t len, struct msg *m);
/*
 * Parses a message the server sent (for clients).  Names are checked as
 * plain strings, since a server may allow longer ones; statuses and
 * results outside the protocol are kept as strings (st is STATUS_ACTIVE,
 * res is RES_NONE).  Returns 0, or -1 if the line is not a well-formed
 * server message.
 */
int	 proto_parse_reply(struct proto_parser *, const char *line,
	    size_t len, struct msg *m);

/*
 * Appends m as one compact JSON line ending in '\n'.  Any type may be
 * encoded: servers encode replies, clients encode requests.  Returns 0,
 * or -1 on ENOMEM (the buffer is left as it was).
 */
int	 proto_encode(struct buf *, const struct msg *m);

/* Protocol names: "IDENTIFY", "ACTIVE", "NO_SUCH_USER"; NULL if out of range. */
const char	*proto_type_name(enum msg_type);
const char	*proto_status_name(enum user_status);
const char	*proto_result_name(enum result);
/* Reverse look-ups: MSG_NONE, -1, RES_NONE when the name is unknown. */
enum msg_type	 proto_type_lookup(const char *p, size_t len);
int		 proto_status_lookup(const char *p, size_t len);
enum result	 proto_result_lookup(const char *p, size_t len);

/*
 * Peeks at the type of a server line without decoding it (proto_peek.c):
 * 0 and *t (MSG_NONE if unknown) for a line that starts {"type":"NAME";
 * -1 for a line in another shape, which needs proto_parse_reply().
 */
int		 proto_peek_type(const char *line, size_t len,
		    enum msg_type *t);

/* Makes a struct str from a NUL-terminated string. */
struct str	 str_c(const char *);
/* Returns 1 if p[0..len) spells the NUL-terminated name exactly. */
int		 str_eq_c(const char *p, size_t len, const char *name);

#endif
