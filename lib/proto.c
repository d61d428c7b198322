/*
 * proto.c: the TalkNet client protocol codec.
 *
 * A line is checked in three steps: the whole line must be valid UTF-8,
 * then it must match the strict JSON grammar of RFC 8259 (json.c; jsmn
 * alone accepts too much), and only then is it tokenized by jsmn and its
 * fields checked against the row of its message type (a request's row
 * comes from the table of requests, request.c).
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "buf.h"
#include "json.h"
#include "proto.h"
#include "request.h"
#include "utf8.h"

#define PROTO_MIN_TOK	32
#define PROTO_MAX_FIELDS 4

/* The keys the protocol knows. */
enum proto_key {
	K_NONE = -1,
	K_TYPE = 0,
	K_USERNAME,
	K_ROOMNAME,
	K_TEXT,
	K_STATUS,
	K_USERNAMES,
	K_OPERATION,
	K_RESULT,
	K_EXTRA,
	K_USERS,
	K_COUNT
};

/* What a field must hold. */
enum field_kind {
	F_STRING,	/* any string */
	F_USER,		/* a user name */
	F_ROOM,		/* a room name */
	F_STATUS,	/* ACTIVE, AWAY or BUSY */
	F_NAMES,	/* a non-empty array of user names */
	F_USERS		/* an object of user name -> status */
};

struct proto_field {
	enum proto_key	 key;
	enum field_kind	 kind;
	int		 optional;
};

/* One message type: its name and its fields, in the order they are sent. */
struct proto_row {
	const char		*name;
	size_t			 nfields;
	struct proto_field	 fields[PROTO_MAX_FIELDS];
};

/* Every key name, and where its string lives in struct msg. */
static const struct {
	const char	*name;
	size_t		 off;
} proto_keys[K_COUNT] = {
	[K_TYPE] =	{ "type", 0 },
	[K_USERNAME] =	{ "username", offsetof(struct msg, username) },
	[K_ROOMNAME] =	{ "roomname", offsetof(struct msg, roomname) },
	[K_TEXT] =	{ "text", offsetof(struct msg, text) },
	[K_STATUS] =	{ "status", offsetof(struct msg, status) },
	[K_USERNAMES] =	{ "usernames", 0 },
	[K_OPERATION] =	{ "operation", offsetof(struct msg, operation) },
	[K_RESULT] =	{ "result", offsetof(struct msg, result) },
	[K_EXTRA] =	{ "extra", offsetof(struct msg, extra) },
	[K_USERS] =	{ "users", 0 },
};

/*
 * The server's messages; the requests' rows are in request.c, and
 * proto_row_of turns them into fields.
 */
#define FLD_USER	{ K_USERNAME, F_USER, 0 }
#define FLD_ROOM	{ K_ROOMNAME, F_ROOM, 0 }
#define FLD_TEXT	{ K_TEXT, F_STRING, 0 }
#define FLD_USERS	{ K_USERS, F_USERS, 0 }
static const struct proto_row proto_rows[MSG_TYPE_COUNT] = {
	[MSG_RESPONSE] = { "RESPONSE", 3, { { K_OPERATION, F_STRING, 0 },
	    { K_RESULT, F_STRING, 0 }, { K_EXTRA, F_STRING, 1 } } },
	[MSG_NEW_USER] = { "NEW_USER", 1, { FLD_USER } },
	[MSG_NEW_STATUS] = { "NEW_STATUS", 2,
	    { FLD_USER, { K_STATUS, F_STATUS, 0 } } },
	[MSG_USER_LIST] = { "USER_LIST", 1, { FLD_USERS } },
	[MSG_TEXT_FROM] = { "TEXT_FROM", 2, { FLD_USER, FLD_TEXT } },
	[MSG_PUBLIC_TEXT_FROM] = { "PUBLIC_TEXT_FROM", 2,
	    { FLD_USER, FLD_TEXT } },
	[MSG_INVITATION] = { "INVITATION", 2, { FLD_USER, FLD_ROOM } },
	[MSG_JOINED_ROOM] = { "JOINED_ROOM", 2, { FLD_ROOM, FLD_USER } },
	[MSG_ROOM_USER_LIST] = { "ROOM_USER_LIST", 2,
	    { FLD_ROOM, FLD_USERS } },
	[MSG_ROOM_TEXT_FROM] = { "ROOM_TEXT_FROM", 3,
	    { FLD_ROOM, FLD_USER, FLD_TEXT } },
	[MSG_LEFT_ROOM] = { "LEFT_ROOM", 2, { FLD_ROOM, FLD_USER } },
	[MSG_DISCONNECTED] = { "DISCONNECTED", 1, { FLD_USER } },
};

/* The "operation" of a RESPONSE to a message that was not understood. */
static const char proto_op_invalid[] = "INVALID";

/* Protocol name of a message type; NULL if out of range. */
const char *
proto_type_name(enum msg_type t)
{
	const struct req_row	*row;

	if ((int)t <= MSG_NONE || t >= MSG_TYPE_COUNT)
		return NULL;
	if ((row = req_row(t)) != NULL)
		return row->name;
	return proto_rows[t].name;
}

/* The key and JSON shape of each kind of request argument. */
static const struct proto_field proto_arg_fields[] = {
	[ARG_USER] =	{ K_USERNAME, F_USER, 0 },
	[ARG_ROOM] =	{ K_ROOMNAME, F_ROOM, 0 },
	[ARG_TEXT] =	{ K_TEXT, F_STRING, 0 },
	[ARG_STATUS] =	{ K_STATUS, F_STATUS, 0 },
	[ARG_NAMES] =	{ K_USERNAMES, F_NAMES, 0 },
};

/*
 * The row of type t (a valid type): a server message's from proto_rows,
 * a request's made in tmp from its row in the table of requests.
 */
static const struct proto_row *
proto_row_of(enum msg_type t, struct proto_row *tmp)
{
	const struct req_row	*req;
	size_t			 k;

	if ((req = req_row(t)) == NULL)
		return &proto_rows[t];
	tmp->name = req->name;
	tmp->nfields = req->nargs;
	for (k = 0; k < req->nargs; k++)
		tmp->fields[k] = proto_arg_fields[req->args[k]];
	return tmp;
}

/* Sets up a parser with these limits (NULL: the protocol defaults). */
void
proto_parser_init(struct proto_parser *pp, const struct proto_limits *lim)
{
	memset(pp, 0, sizeof(*pp));
	if (lim != NULL)
		pp->lim = *lim;
	else {
		pp->lim.max_name = PROTO_MAX_NAME;
		pp->lim.max_room = PROTO_MAX_ROOM;
	}
}

/* Lets the parser start in the caller's storage. */
void
proto_parser_store(struct proto_parser *pp, void *tok, size_t tok_bytes,
    char *scratch, size_t scratch_bytes)
{
	proto_parser_free(pp);
	if (tok != NULL && tok_bytes >= sizeof(jsmntok_t)) {
		pp->tok_store = pp->tok = tok;
		pp->ntok = (unsigned int)(tok_bytes / sizeof(jsmntok_t));
	}
	if (scratch != NULL && scratch_bytes > 0) {
		pp->scratch_store = pp->scratch = scratch;
		pp->nscratch = scratch_bytes;
	}
}

/* Frees what the parser allocated, and forgets the caller's storage. */
void
proto_parser_free(struct proto_parser *pp)
{
	if (pp->tok != pp->tok_store)
		free(pp->tok);
	if (pp->scratch != pp->scratch_store)
		free(pp->scratch);
	free(pp->list);
	pp->tok = NULL;
	pp->ntok = 0;
	pp->scratch = NULL;
	pp->nscratch = 0;
	pp->list = NULL;
	pp->nlistcap = 0;
	pp->tok_store = NULL;
	pp->scratch_store = NULL;
}

/*
 * Grows p from old to n bytes like realloc, but copies out of the
 * owner's storage instead of handing it to the allocator.
 */
static void *
proto_realloc(void *p, const void *store, size_t old, size_t n)
{
	void	*q;

	if (p == NULL || p != store)
		return realloc(p, n);
	if ((q = malloc(n)) != NULL)
		memcpy(q, p, old);
	return q;
}

/* --- parsing ------------------------------------------------------------ */

struct proto_ctx {
	struct proto_parser	*pp;
	const char		*line;
	jsmntok_t		*tok;
	size_t			 ntok;
	size_t			 used;	/* bytes of scratch holding strings */
	int			 request;
};

/* Makes room for n tokens; returns 0 or -1 on ENOMEM. */
static int
proto_grow_tok(struct proto_parser *pp, size_t n)
{
	jsmntok_t	*t;
	size_t		 cap;

	if (n <= pp->ntok)
		return 0;
	cap = pp->ntok < PROTO_MIN_TOK ? PROTO_MIN_TOK : pp->ntok;
	while (cap < n)
		cap *= 2;
	if (cap > UINT_MAX || cap > SIZE_MAX / sizeof(*t)) {
		errno = ENOMEM;
		return -1;
	}
	if ((t = proto_realloc(pp->tok, pp->tok_store,
	    (size_t)pp->ntok * sizeof(*t), cap * sizeof(*t))) == NULL)
		return -1;
	pp->tok = t;
	pp->ntok = (unsigned int)cap;
	return 0;
}

/* Makes room for n bytes of decoded strings; returns 0 or -1. */
static int
proto_grow_scratch(struct proto_parser *pp, size_t n)
{
	char	*s;

	if (n <= pp->nscratch)
		return 0;
	if ((s = proto_realloc(pp->scratch, pp->scratch_store, pp->nscratch,
	    n)) == NULL)
		return -1;
	pp->scratch = s;
	pp->nscratch = n;
	return 0;
}

/* Makes room for n list entries; returns 0 or -1. */
static int
proto_grow_list(struct proto_parser *pp, size_t n)
{
	struct str	*l;
	size_t		 cap;

	if (n <= pp->nlistcap)
		return 0;
	cap = pp->nlistcap < 16 ? 16 : pp->nlistcap;
	while (cap < n)
		cap *= 2;
	if (cap > SIZE_MAX / sizeof(*l)) {
		errno = ENOMEM;
		return -1;
	}
	if ((l = realloc(pp->list, cap * sizeof(*l))) == NULL)
		return -1;
	pp->list = l;
	pp->nlistcap = cap;
	return 0;
}

/*
 * Tokenizes a checked line with jsmn, growing the token array whenever
 * jsmn runs out.  Returns the number of tokens, or -1.
 */
static int
proto_tokenize(struct proto_parser *pp, const char *line, size_t len,
    size_t hint)
{
	jsmn_parser	p;
	int		r;

	if (proto_grow_tok(pp, hint) == -1)
		return -1;
	jsmn_init(&p);
	for (;;) {
		r = jsmn_parse(&p, line, len, pp->tok, pp->ntok);
		if (r != JSMN_ERROR_NOMEM)
			break;
		if (proto_grow_tok(pp, (size_t)pp->ntok * 2) == -1)
			return -1;
	}
	if (r < 1 || ((jsmntok_t *)pp->tok)[0].type != JSMN_OBJECT) {
		errno = EINVAL;
		return -1;
	}
	return r;
}

/* Index of the token after token i and everything nested in it. */
static size_t
tok_skip(const jsmntok_t *tok, size_t ntok, size_t i)
{
	int	end = tok[i].end;
	size_t	j;

	for (j = i + 1; j < ntok && tok[j].start < end; j++)
		;
	return j;
}

/* Decodes string token i into scratch; the space is kept if keep is set. */
static struct str
proto_decode(struct proto_ctx *c, size_t i, int keep)
{
	const jsmntok_t	*t = &c->tok[i];
	struct str	 s;
	char		*out = c->pp->scratch + c->used;

	s.p = out;
	s.len = json_unescape(c->line + t->start,
	    (size_t)(t->end - t->start), out);
	if (keep)
		c->used += s.len;
	return s;
}

/* Known key of key token i, or K_NONE. */
static enum proto_key
proto_find_key(struct proto_ctx *c, size_t i)
{
	struct str	s;
	int		k;

	s = proto_decode(c, i, 0);
	for (k = 0; k < K_COUNT; k++)
		if (str_eq_c(s.p, s.len, proto_keys[k].name))
			return (enum proto_key)k;
	return K_NONE;
}

/* Decodes string token i as a name of this kind (its limit), or -1. */
static int
proto_name(struct proto_ctx *c, size_t i, enum req_arg kind, struct str *s)
{
	if (c->tok[i].type != JSMN_STRING)
		return -1;
	*s = proto_decode(c, i, 1);
	if (c->request && !req_arg_valid(kind, s->p, s->len, &c->pp->lim))
		return -1;
	return 0;
}

/*
 * Checks and stores field f, whose value is token i; returns 0, -1 if
 * it is invalid, or -2 on ENOMEM.
 */
static int
proto_get_field(struct proto_ctx *c, const struct proto_field *f, size_t i,
    struct msg *m)
{
	const jsmntok_t	*t = &c->tok[i];
	struct str	*dst = NULL, *list;
	size_t		 n, k, j;
	int		 st;

	if (proto_keys[f->key].off != 0)
		dst = (struct str *)(void *)((char *)m +
		    proto_keys[f->key].off);
	switch (f->kind) {
	case F_STRING:
		if (t->type != JSMN_STRING)
			return -1;
		*dst = proto_decode(c, i, 1);
		break;
	case F_USER:
		return proto_name(c, i, ARG_USER, dst);
	case F_ROOM:
		return proto_name(c, i, ARG_ROOM, dst);
	case F_STATUS:
		if (t->type != JSMN_STRING)
			return -1;
		*dst = proto_decode(c, i, 1);
		st = proto_status_lookup(dst->p, dst->len);
		if (st == -1 && c->request)
			return -1;
		m->st = st == -1 ? STATUS_ACTIVE : (enum user_status)st;
		break;
	case F_NAMES:
		if (t->type != JSMN_ARRAY || t->size < 1)
			return -1;
		n = (size_t)t->size;
		if (proto_grow_list(c->pp, n) == -1)
			return -2;
		list = c->pp->list;
		for (k = 0, j = i + 1; k < n; k++, j++)
			if (proto_name(c, j, ARG_USER,
			    &list[k]) == -1)
				return -1;
		m->list = n > 0 ? list : NULL;
		m->nlist = n;
		break;
	case F_USERS:
		if (t->type != JSMN_OBJECT)
			return -1;
		n = (size_t)t->size;
		if (n > SIZE_MAX / 2 || proto_grow_list(c->pp, 2 * n) == -1)
			return -2;
		list = c->pp->list;
		for (k = 0, j = i + 1; k < n; k++, j += 2) {
			if (proto_name(c, j, ARG_USER,
			    &list[2 * k]) == -1 ||
			    c->tok[j + 1].type != JSMN_STRING)
				return -1;
			list[2 * k + 1] = proto_decode(c, j + 1, 1);
			if (c->request && proto_status_lookup(
			    list[2 * k + 1].p, list[2 * k + 1].len) == -1)
				return -1;
		}
		m->list = n > 0 ? list : NULL;
		m->nlist = n;
		break;
	}
	switch (f->key) {
	case K_OPERATION:
		m->op = proto_type_lookup(dst->p, dst->len);
		if (m->op < MSG_REQUEST_FIRST || m->op > MSG_REQUEST_LAST)
			m->op = MSG_NONE;
		break;
	case K_RESULT:
		m->res = proto_result_lookup(dst->p, dst->len);
		break;
	case K_EXTRA:
		m->has_extra = 1;
		break;
	default:
		break;
	}
	return 0;
}

/*
 * Parses one line into *m: requests if request is set, else server
 * messages.  Returns 0, or -1 with errno EINVAL or ENOMEM.
 */
static int
proto_parse(struct proto_parser *pp, const char *line, size_t len,
    struct msg *m, int request)
{
	struct proto_ctx	 c;
	const struct proto_row	*row;
	struct proto_row	 tmp;
	const struct proto_field *f;
	size_t			 slot[K_COUNT], nkeys, i, k, hint;
	int			 dup[K_COUNT], r;
	enum proto_key		 key;
	enum msg_type		 type;
	struct str		 s;

	memset(m, 0, sizeof(*m));
	m->type = MSG_NONE;
	m->st = STATUS_ACTIVE;
	m->op = MSG_NONE;
	m->res = RES_NONE;
	if (len == 0 || len >= INT_MAX || !utf8_valid(line, len) ||
	    json_check(line, len, &hint) == -1)
		goto invalid;
	if ((r = proto_tokenize(pp, line, len, hint)) == -1)
		return -1;
	/* Decoded strings are never longer than their encoded form. */
	if (proto_grow_scratch(pp, len + 8) == -1)
		return -1;
	c.pp = pp;
	c.line = line;
	c.tok = pp->tok;
	c.ntok = (size_t)r;
	c.used = 0;
	c.request = request;

	for (k = 0; k < K_COUNT; k++) {
		slot[k] = 0;
		dup[k] = 0;
	}
	nkeys = (size_t)c.tok[0].size;
	for (i = 1, k = 0; k < nkeys && i + 1 < c.ntok; k++) {
		if ((key = proto_find_key(&c, i)) != K_NONE) {
			if (slot[key] != 0)
				dup[key] = 1;
			else
				slot[key] = i + 1;
		}
		i = tok_skip(c.tok, c.ntok, i + 1);
	}

	if (slot[K_TYPE] == 0 || dup[K_TYPE] ||
	    c.tok[slot[K_TYPE]].type != JSMN_STRING)
		goto invalid;
	s = proto_decode(&c, slot[K_TYPE], 0);
	type = proto_type_lookup(s.p, s.len);
	if (type == MSG_NONE || (request && type > MSG_REQUEST_LAST) ||
	    (!request && type <= MSG_REQUEST_LAST))
		goto invalid;
	m->type = type;
	row = proto_row_of(type, &tmp);
	for (k = 0; k < row->nfields; k++) {
		f = &row->fields[k];
		if (slot[f->key] == 0) {
			if (f->optional)
				continue;
			goto invalid;
		}
		if (dup[f->key])
			goto invalid;
		if ((r = proto_get_field(&c, f, slot[f->key], m)) == -2)
			goto fail;
		if (r == -1)
			goto invalid;
	}
	return 0;

invalid:
	errno = EINVAL;
fail:
	r = errno;
	memset(m, 0, sizeof(*m));
	errno = r;
	return -1;
}

/* Parses a request a client sent the server; 0, or -1 if INVALID. */
int
proto_parse_request(struct proto_parser *pp, const char *line, size_t len,
    struct msg *m)
{
	return proto_parse(pp, line, len, m, 1);
}

/* Parses a message the server sent; 0, or -1 if it is not well-formed. */
int
proto_parse_reply(struct proto_parser *pp, const char *line, size_t len,
    struct msg *m)
{
	return proto_parse(pp, line, len, m, 0);
}

/* --- encoding ----------------------------------------------------------- */

/* Appends s as a JSON string, quotes included; 0 or -1. */
static int
enc_str(struct buf *b, const char *p, size_t len)
{
	static const char	 hex[] = "0123456789abcdef";
	char			 esc[6];
	size_t			 i, run, n;
	unsigned char		 c;

	if (buf_append(b, "\"", 1) == -1)
		return -1;
	for (i = 0; i < len; ) {
		for (run = i; run < len; run++) {
			c = (unsigned char)p[run];
			if (c < 0x20 || c == '"' || c == '\\')
				break;
		}
		if (run > i) {
			if (buf_append(b, p + i, run - i) == -1)
				return -1;
			i = run;
			continue;
		}
		c = (unsigned char)p[i++];
		esc[0] = '\\';
		n = 2;
		if ((esc[1] = (char)json_esc_letter(c)) == '\0') {
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			n = 6;
		}
		if (buf_append(b, esc, n) == -1)
			return -1;
	}
	return buf_append(b, "\"", 1);
}

/* Appends a struct str (NULL as the empty string) as a JSON string. */
static int
enc_s(struct buf *b, struct str s)
{
	if (s.p == NULL)
		s.len = 0;
	return enc_str(b, s.p, s.len);
}

/* Appends a NUL-terminated name (NULL as the empty string). */
static int
enc_name(struct buf *b, const char *name)
{
	return enc_s(b, str_c(name));
}

/* Appends ,"key": for field key. */
static int
enc_key(struct buf *b, enum proto_key key)
{
	const char	*name = proto_keys[key].name;

	if (buf_append(b, ",\"", 2) == -1 ||
	    buf_append(b, name, strlen(name)) == -1 ||
	    buf_append(b, "\":", 2) == -1)
		return -1;
	return 0;
}

/* Appends the value of field f of m. */
static int
enc_field(struct buf *b, const struct proto_field *f, const struct msg *m)
{
	const struct str	*s = NULL;
	size_t			 i;

	if (proto_keys[f->key].off != 0)
		s = (const struct str *)(const void *)((const char *)m +
		    proto_keys[f->key].off);
	switch (f->key) {
	case K_OPERATION:
		if (s->p != NULL)
			return enc_s(b, *s);
		if (m->op == MSG_NONE)
			return enc_name(b, proto_op_invalid);
		return enc_name(b, proto_type_name(m->op));
	case K_RESULT:
		if (s->p != NULL)
			return enc_s(b, *s);
		return enc_name(b, proto_result_name(m->res));
	case K_STATUS:
		if (s->p != NULL)
			return enc_s(b, *s);
		return enc_name(b, proto_status_name(m->st));
	case K_USERNAMES:
		if (buf_append(b, "[", 1) == -1)
			return -1;
		for (i = 0; i < m->nlist; i++)
			if ((i > 0 && buf_append(b, ",", 1) == -1) ||
			    enc_s(b, m->list[i]) == -1)
				return -1;
		return buf_append(b, "]", 1);
	case K_USERS:
		if (buf_append(b, "{", 1) == -1)
			return -1;
		for (i = 0; i < m->nlist; i++)
			if ((i > 0 && buf_append(b, ",", 1) == -1) ||
			    enc_s(b, m->list[2 * i]) == -1 ||
			    buf_append(b, ":", 1) == -1 ||
			    enc_s(b, m->list[2 * i + 1]) == -1)
				return -1;
		return buf_append(b, "}", 1);
	default:
		return enc_s(b, *s);
	}
}

/*
 * Appends m as one compact JSON line ending in '\n'.  An optional field
 * (the "extra" of RESPONSE) is sent if has_extra is set or extra.p is
 * not NULL.  A RESPONSE with neither operation nor op says "INVALID".
 * Returns 0, or -1 (ENOMEM, or EINVAL for a bad type) with the buffer
 * left as it was.
 */
int
proto_encode(struct buf *b, const struct msg *m)
{
	const struct proto_row	 *row;
	struct proto_row	  tmp;
	const struct proto_field *f;
	size_t			  pending, k;

	if ((int)m->type <= MSG_NONE || m->type >= MSG_TYPE_COUNT) {
		errno = EINVAL;
		return -1;
	}
	row = proto_row_of(m->type, &tmp);
	pending = buf_pending(b);
	if (buf_append(b, "{\"type\":", 8) == -1 ||
	    enc_name(b, row->name) == -1)
		goto fail;
	for (k = 0; k < row->nfields; k++) {
		f = &row->fields[k];
		if (f->optional && f->key == K_EXTRA && !m->has_extra &&
		    m->extra.p == NULL)
			continue;
		if (enc_key(b, f->key) == -1 || enc_field(b, f, m) == -1)
			goto fail;
	}
	if (buf_append(b, "}\n", 2) == -1)
		goto fail;
	return 0;

fail:
	/* Never leave a partial line: the pending bytes may have moved. */
	b->len = b->off + pending;
	return -1;
}
