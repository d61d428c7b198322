/*
 * check_proto.h: what the codec's unit tests share: a sample line, a
 * comparison of a decoded string, and the checks of a line that must
 * decode to a given message or must be refused.
 */
#ifndef TALKNET_CHECK_PROTO_H
#define TALKNET_CHECK_PROTO_H

#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "proto.h"

struct sample {
	const char	*s;
	size_t		 len;
};

#define S(x)	{ x, sizeof(x) - 1 }

/* Eight and nine two-byte characters: the user name limit is 8. */
#define E8	"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9" \
	"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
#define E9	E8 "\xc3\xa9"

/* Returns 1 if s holds exactly the NUL-terminated want. */
static inline int
str_is(struct str s, const char *want)
{
	size_t	n = strlen(want);

	return s.len == n && (n == 0 || memcmp(s.p, want, n) == 0);
}

/* proto_parse_request or proto_parse_reply. */
typedef int (*parse_fn)(struct proto_parser *, const char *, size_t,
    struct msg *);

/*
 * A line and what it decodes to.  The type is always checked; a NULL
 * string is not, except that no username means none was decoded.  The
 * st, op, res, has_extra and nlist fields are checked for the types
 * that carry them.
 */
struct want {
	const char	*line;
	enum msg_type	 type;
	enum user_status st;
	enum msg_type	 op;
	enum result	 res;
	int		 has_extra;
	size_t		 nlist;
	const char	*username;
	const char	*roomname;
	const char	*text;
	const char	*status;
	const char	*operation;
	const char	*result;
	const char	*extra;
	const char	*list[6];
};

/* Asserts that s, if given, is what got decoded into d. */
static inline void
check_str(struct str d, const char *s, const char *what, const char *line)
{
	if (s != NULL)
		ck_assert_msg(str_is(d, s), "%s is not \"%s\" in %s", what, s,
		    line);
}

/* Asserts that parse decodes w->line, with pp, to what w says. */
static inline void
check_decodes(parse_fn parse, struct proto_parser *pp, const struct want *w)
{
	struct msg	m;
	size_t		i;

	ck_assert_msg(parse(pp, w->line, strlen(w->line), &m) == 0,
	    "should parse: %s", w->line);
	ck_assert_int_eq(m.type, w->type);
	if (w->type == MSG_STATUS || w->type == MSG_NEW_STATUS)
		ck_assert_int_eq(m.st, w->st);
	if (w->type == MSG_RESPONSE) {
		ck_assert_int_eq(m.op, w->op);
		ck_assert_int_eq(m.res, w->res);
		ck_assert_int_eq(m.has_extra, w->has_extra);
	}
	if (w->type == MSG_USER_LIST || w->type == MSG_ROOM_USER_LIST ||
	    w->type == MSG_INVITE)
		ck_assert_uint_eq(m.nlist, w->nlist);
	if (w->username == NULL)
		ck_assert_ptr_null(m.username.p);
	check_str(m.username, w->username, "username", w->line);
	check_str(m.roomname, w->roomname, "roomname", w->line);
	check_str(m.text, w->text, "text", w->line);
	check_str(m.status, w->status, "status", w->line);
	check_str(m.operation, w->operation, "operation", w->line);
	check_str(m.result, w->result, "result", w->line);
	check_str(m.extra, w->extra, "extra", w->line);
	for (i = 0; i < 6 && w->list[i] != NULL; i++)
		check_str(m.list[i], w->list[i], "list entry", w->line);
}

/* Asserts that parse decodes each of the n lines of w with one parser. */
static inline void
check_decodes_all(parse_fn parse, const struct want *w, size_t n)
{
	struct proto_parser	pp;
	size_t			i;

	proto_parser_init(&pp, NULL);
	for (i = 0; i < n; i++)
		check_decodes(parse, &pp, &w[i]);
	proto_parser_free(&pp);
}

/*
 * Asserts that parse refuses t as EINVAL, leaving nothing decoded, and
 * that the parser then still decodes the valid line ok.
 */
static inline void
check_refused(parse_fn parse, const struct sample *t, int i, const char *ok)
{
	struct proto_parser	pp;
	struct msg		m;

	proto_parser_init(&pp, NULL);
	errno = 0;
	ck_assert_msg(parse(&pp, t->s, t->len, &m) == -1,
	    "should be invalid (#%d): %s", i, t->s);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(m.type, MSG_NONE);
	ck_assert_ptr_null(m.username.p);
	ck_assert_ptr_null(m.list);
	ck_assert_int_eq(parse(&pp, ok, strlen(ok), &m), 0);
	proto_parser_free(&pp);
}

#endif
