/*
 * check_encode.c: unit tests for lib/proto.c: the lines the codec
 * writes, round trips through the parser, and the type peek.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "proto.h"
#include "check_proto.h"
#include "check_run.h"

/* --- encoding ------------------------------------------------------------ */

/* Every example of protocol.md, in the exact bytes the codec sends. */
static const char *const examples[] = {
	"{\"type\":\"IDENTIFY\",\"username\":\"Kimberly\"}",
	"{\"type\":\"STATUS\",\"status\":\"AWAY\"}",
	"{\"type\":\"USERS\"}",
	"{\"type\":\"TEXT\",\"username\":\"Luis\",\"text\":\"Hi Luis\"}",
	"{\"type\":\"PUBLIC_TEXT\",\"text\":\"Hello everyone!\"}",
	"{\"type\":\"NEW_ROOM\",\"roomname\":\"Room 1\"}",
	"{\"type\":\"INVITE\",\"roomname\":\"Room 1\","
	    "\"usernames\":[\"Luis\",\"Antonio\"]}",
	"{\"type\":\"JOIN_ROOM\",\"roomname\":\"Room 1\"}",
	"{\"type\":\"ROOM_USERS\",\"roomname\":\"Room 1\"}",
	"{\"type\":\"ROOM_TEXT\",\"roomname\":\"Room 1\","
	    "\"text\":\"Hello Room 1!\"}",
	"{\"type\":\"LEAVE_ROOM\",\"roomname\":\"Room 1\"}",
	"{\"type\":\"DISCONNECT\"}",
	"{\"type\":\"RESPONSE\",\"operation\":\"IDENTIFY\","
	    "\"result\":\"SUCCESS\",\"extra\":\"Kimberly\"}",
	"{\"type\":\"NEW_USER\",\"username\":\"Kimberly\"}",
	"{\"type\":\"RESPONSE\",\"operation\":\"IDENTIFY\","
	    "\"result\":\"USER_ALREADY_EXISTS\",\"extra\":\"Kimberly\"}",
	"{\"type\":\"NEW_STATUS\",\"username\":\"Kimberly\","
	    "\"status\":\"AWAY\"}",
	"{\"type\":\"USER_LIST\",\"users\":{\"Kimberly\":\"ACTIVE\","
	    "\"Luis\":\"AWAY\"}}",
	"{\"type\":\"TEXT_FROM\",\"username\":\"Kimberly\","
	    "\"text\":\"Hi Luis\"}",
	"{\"type\":\"RESPONSE\",\"operation\":\"TEXT\","
	    "\"result\":\"NO_SUCH_USER\",\"extra\":\"Luis\"}",
	"{\"type\":\"PUBLIC_TEXT_FROM\",\"username\":\"Kimberly\","
	    "\"text\":\"Hello everyone!\"}",
	"{\"type\":\"RESPONSE\",\"operation\":\"NEW_ROOM\","
	    "\"result\":\"SUCCESS\",\"extra\":\"Room 1\"}",
	"{\"type\":\"RESPONSE\",\"operation\":\"NEW_ROOM\","
	    "\"result\":\"ROOM_ALREADY_EXISTS\",\"extra\":\"Room 1\"}",
	"{\"type\":\"RESPONSE\",\"operation\":\"NEW_ROOM\","
	    "\"result\":\"TOO_MANY_ROOMS\",\"extra\":\"Room 1\"}",
	"{\"type\":\"RESPONSE\",\"operation\":\"INVITE\","
	    "\"result\":\"NO_SUCH_ROOM\",\"extra\":\"Room 1\"}",
	"{\"type\":\"RESPONSE\",\"operation\":\"INVITE\","
	    "\"result\":\"NOT_JOINED\",\"extra\":\"Room 1\"}",
	"{\"type\":\"RESPONSE\",\"operation\":\"INVITE\","
	    "\"result\":\"NO_SUCH_USER\",\"extra\":\"Antonio\"}",
	"{\"type\":\"INVITATION\",\"username\":\"Kimberly\","
	    "\"roomname\":\"Room 1\"}",
	"{\"type\":\"RESPONSE\",\"operation\":\"JOIN_ROOM\","
	    "\"result\":\"SUCCESS\",\"extra\":\"Room 1\"}",
	"{\"type\":\"RESPONSE\",\"operation\":\"JOIN_ROOM\","
	    "\"result\":\"NOT_INVITED\",\"extra\":\"Room 1\"}",
	"{\"type\":\"JOINED_ROOM\",\"roomname\":\"Room 1\","
	    "\"username\":\"Luis\"}",
	"{\"type\":\"ROOM_USER_LIST\",\"roomname\":\"Room 1\","
	    "\"users\":{\"Kimberly\":\"ACTIVE\",\"Luis\":\"AWAY\"}}",
	"{\"type\":\"ROOM_TEXT_FROM\",\"roomname\":\"Room 1\","
	    "\"username\":\"Kimberly\",\"text\":\"Hello Room 1!\"}",
	"{\"type\":\"LEFT_ROOM\",\"roomname\":\"Room 1\","
	    "\"username\":\"Luis\"}",
	"{\"type\":\"DISCONNECTED\",\"username\":\"Luis\"}",
	"{\"type\":\"RESPONSE\",\"operation\":\"INVALID\","
	    "\"result\":\"NOT_IDENTIFIED\"}",
	"{\"type\":\"RESPONSE\",\"operation\":\"INVALID\","
	    "\"result\":\"INVALID\"}",
};

/* Parses an example, encodes it back and expects the same bytes. */
START_TEST(test_examples_roundtrip)
{
	struct proto_parser	 pp;
	struct msg		 m;
	struct buf		 b;
	const char		*l = examples[_i];
	size_t			 n = strlen(l);
	int			 r;

	proto_parser_init(&pp, NULL);
	buf_init(&b);
	r = proto_parse_request(&pp, l, n, &m);
	if (r == -1)
		r = proto_parse_reply(&pp, l, n, &m);
	ck_assert_msg(r == 0, "does not parse: %s", l);
	ck_assert_int_eq(proto_encode(&b, &m), 0);
	ck_assert_uint_eq(buf_pending(&b), n + 1);
	ck_assert_msg(memcmp(buf_head(&b), l, n) == 0, "got %.*s",
	    (int)buf_pending(&b), buf_head(&b));
	ck_assert_int_eq(buf_head(&b)[n], '\n');
	buf_free(&b);
	proto_parser_free(&pp);
}
END_TEST

/* Expects b to hold exactly want, then empties it. */
static void
expect_line(struct buf *b, const char *want)
{
	size_t	n = strlen(want);

	ck_assert_msg(buf_pending(b) == n &&
	    memcmp(buf_head(b), want, n) == 0, "got %.*s want %s",
	    (int)buf_pending(b), buf_head(b), want);
	buf_reset(b);
}

static const struct str users_ka[] = {
	S("Kimberly"), S("ACTIVE"), S("Luis"), S("AWAY")
};

/* Messages built from the enums, as the server builds them. */
static const struct built {
	struct msg	 m;
	const char	*want;
} built[] = {
	{ { .type = MSG_RESPONSE, .op = MSG_IDENTIFY, .res = RES_SUCCESS,
	    .extra = S("Kimberly"), .has_extra = 1 },
	    "{\"type\":\"RESPONSE\",\"operation\":\"IDENTIFY\","
	    "\"result\":\"SUCCESS\",\"extra\":\"Kimberly\"}\n" },
	{ { .type = MSG_RESPONSE, .operation = S("INVALID"),
	    .res = RES_INVALID },
	    "{\"type\":\"RESPONSE\",\"operation\":\"INVALID\","
	    "\"result\":\"INVALID\"}\n" },
	/* op MSG_NONE without an operation string also says INVALID. */
	{ { .type = MSG_RESPONSE, .res = RES_NOT_IDENTIFIED },
	    "{\"type\":\"RESPONSE\",\"operation\":\"INVALID\","
	    "\"result\":\"NOT_IDENTIFIED\"}\n" },
	/* Strings win over enums. */
	{ { .type = MSG_RESPONSE, .op = MSG_TEXT,
	    .operation = S("NEW_ROOM"), .res = RES_SUCCESS,
	    .result = S("CUSTOM"), .extra = S(""), .has_extra = 1 },
	    "{\"type\":\"RESPONSE\",\"operation\":\"NEW_ROOM\","
	    "\"result\":\"CUSTOM\",\"extra\":\"\"}\n" },
	{ { .type = MSG_NEW_STATUS, .username = S("Luis"),
	    .st = STATUS_BUSY },
	    "{\"type\":\"NEW_STATUS\",\"username\":\"Luis\","
	    "\"status\":\"BUSY\"}\n" },
	{ { .type = MSG_NEW_STATUS, .username = S("Luis"),
	    .st = STATUS_BUSY, .status = S("AWAY") },
	    "{\"type\":\"NEW_STATUS\",\"username\":\"Luis\","
	    "\"status\":\"AWAY\"}\n" },
	{ { .type = MSG_USER_LIST, .list = users_ka, .nlist = 2 },
	    "{\"type\":\"USER_LIST\",\"users\":"
	    "{\"Kimberly\":\"ACTIVE\",\"Luis\":\"AWAY\"}}\n" },
	{ { .type = MSG_USER_LIST, .list = users_ka, .nlist = 0 },
	    "{\"type\":\"USER_LIST\",\"users\":{}}\n" },
};

START_TEST(test_encode_built)
{
	struct msg	m;
	struct buf	b;
	int		i;

	buf_init(&b);
	for (i = 0; i < CHECK_N(built); i++) {
		ck_assert_int_eq(proto_encode(&b, &built[i].m), 0);
		expect_line(&b, built[i].want);
	}
	/* The table's list spells the statuses as the codec does. */
	ck_assert_str_eq(proto_status_name(STATUS_ACTIVE), users_ka[1].p);
	ck_assert_str_eq(proto_status_name(STATUS_AWAY), users_ka[3].p);

	/* Bad types are refused and leave the buffer alone. */
	buf_append(&b, "keep", 4);
	memset(&m, 0, sizeof(m));
	ck_assert_int_eq(proto_encode(&b, &m), -1);
	m.type = MSG_TYPE_COUNT;
	ck_assert_int_eq(proto_encode(&b, &m), -1);
	expect_line(&b, "keep");

	/* Appends after what is already queued. */
	buf_append(&b, "xx", 2);
	buf_drain(&b, 1);
	m.type = MSG_USERS;
	ck_assert_int_eq(proto_encode(&b, &m), 0);
	expect_line(&b, "x{\"type\":\"USERS\"}\n");
	buf_free(&b);
}
END_TEST

/* Returns 1 if the pending bytes of b contain the string s. */
static int
contains(const struct buf *b, const char *s)
{
	size_t	n = strlen(s), i;

	for (i = 0; i + n <= buf_pending(b); i++)
		if (memcmp(buf_head(b) + i, s, n) == 0)
			return 1;
	return 0;
}

START_TEST(test_encode_escapes)
{
	struct msg		m;
	struct buf		b;
	struct proto_parser	pp;
	struct msg		back;
	static const char	text[] = "a\"b\\c/\x01\x1b\x1f\x7f\b\f\n\r\t "
	    "\xc3\xa9\xf0\x9f\x98\x80\0z";
	static const char	want[] = "{\"type\":\"TEXT_FROM\","
	    "\"username\":\"Kim\",\"text\":\"a\\\"b\\\\c/\\u0001\\u001b"
	    "\\u001f\x7f\\b\\f\\n\\r\\t "
	    "\xc3\xa9\xf0\x9f\x98\x80\\u0000z\"}\n";

	buf_init(&b);
	memset(&m, 0, sizeof(m));
	m.type = MSG_TEXT_FROM;
	m.username = str_c("Kim");
	m.text.p = text;
	m.text.len = sizeof(text) - 1;
	ck_assert_int_eq(proto_encode(&b, &m), 0);
	ck_assert_uint_eq(buf_pending(&b), strlen(want));
	ck_assert_int_eq(memcmp(buf_head(&b), want, buf_pending(&b)), 0);
	/* No raw control byte, and exactly one '\n', at the end. */
	ck_assert_ptr_eq(memchr(buf_head(&b), '\n', buf_pending(&b)),
	    buf_head(&b) + buf_pending(&b) - 1);

	/* And it parses back to the same bytes. */
	proto_parser_init(&pp, NULL);
	ck_assert_int_eq(proto_parse_reply(&pp, buf_head(&b),
	    buf_pending(&b) - 1, &back), 0);
	ck_assert_uint_eq(back.text.len, sizeof(text) - 1);
	ck_assert_int_eq(memcmp(back.text.p, text, sizeof(text) - 1), 0);

	/* Keys and list entries are escaped too. */
	buf_reset(&b);
	memset(&m, 0, sizeof(m));
	m.type = MSG_INVITE;
	m.roomname = str_c("r\"1");
	m.list = &back.text;
	m.nlist = 1;
	ck_assert_int_eq(proto_encode(&b, &m), 0);
	ck_assert(contains(&b, "\"roomname\":\"r\\\"1\",\"usernames\":"
	    "[\"a\\\"b"));
	proto_parser_free(&pp);
	buf_free(&b);
}
END_TEST

/* Compares two decoded strings: the same length, the same bytes. */
static void
same_str(struct str a, struct str b)
{
	ck_assert_uint_eq(a.len, b.len);
	if (a.len)
		ck_assert_int_eq(memcmp(a.p, b.p, a.len), 0);
}

/* Compares the fields two messages share. */
static void
same_msg(const struct msg *a, const struct msg *b)
{
	size_t	i, n;

	ck_assert_int_eq(a->type, b->type);
	same_str(a->username, b->username);
	same_str(a->roomname, b->roomname);
	same_str(a->text, b->text);
	ck_assert_int_eq(a->st, b->st);
	ck_assert_int_eq(a->op, b->op);
	ck_assert_int_eq(a->res, b->res);
	ck_assert_int_eq(a->has_extra, b->has_extra);
	ck_assert_uint_eq(a->extra.len, b->extra.len);
	ck_assert_uint_eq(a->nlist, b->nlist);
	n = a->type == MSG_INVITE ? a->nlist : 2 * a->nlist;
	for (i = 0; i < n; i++)
		same_str(a->list[i], b->list[i]);
}

/* Every type: build, encode, parse, compare, encode again, same bytes. */
START_TEST(test_roundtrip_all)
{
	struct proto_parser	 pp;
	struct msg		 m, back;
	struct buf		 b, b2;
	struct str		 names[3], users[4];
	int			 t, r;

	names[0] = str_c("Luis");
	names[1] = str_c(E8);
	names[2] = str_c("\xf0\x9f\x98\x80x");
	users[0] = str_c("Kim");
	users[1] = str_c("ACTIVE");
	users[2] = str_c("\xc3\xa9");
	users[3] = str_c("BUSY");
	proto_parser_init(&pp, NULL);
	buf_init(&b);
	buf_init(&b2);
	for (t = MSG_NONE + 1; t < MSG_TYPE_COUNT; t++) {
		memset(&m, 0, sizeof(m));
		m.type = (enum msg_type)t;
		m.username = str_c("Kimberly");
		m.roomname = str_c("Room \xc3\xa9 1");
		m.text.p = "t\0\"\\\n\xe2\x82\xac";
		m.text.len = 8;
		m.st = STATUS_AWAY;
		m.op = MSG_ROOM_TEXT;
		m.res = RES_NOT_JOINED;
		m.extra = str_c("Room 1");
		m.has_extra = 1;
		if (t == MSG_INVITE) {
			m.list = names;
			m.nlist = 3;
		} else if (t == MSG_USER_LIST || t == MSG_ROOM_USER_LIST) {
			m.list = users;
			m.nlist = 2;
		}
		ck_assert_int_eq(proto_encode(&b, &m), 0);
		ck_assert_int_eq(buf_head(&b)[buf_pending(&b) - 1], '\n');
		if (t <= MSG_REQUEST_LAST)
			r = proto_parse_request(&pp, buf_head(&b),
			    buf_pending(&b) - 1, &back);
		else
			r = proto_parse_reply(&pp, buf_head(&b),
			    buf_pending(&b) - 1, &back);
		ck_assert_msg(r == 0, "type %d: %.*s", t,
		    (int)buf_pending(&b), buf_head(&b));
		/* Only the fields of the type survive the trip. */
		ck_assert_int_eq(back.type, m.type);
		ck_assert_int_eq(proto_encode(&b2, &back), 0);
		ck_assert_uint_eq(buf_pending(&b), buf_pending(&b2));
		ck_assert_int_eq(memcmp(buf_head(&b), buf_head(&b2),
		    buf_pending(&b)), 0);
		if (t == MSG_ROOM_TEXT_FROM || t == MSG_RESPONSE ||
		    t == MSG_INVITE || t == MSG_USER_LIST) {
			/* Fill what these types do not carry, then compare. */
			if (t == MSG_ROOM_TEXT_FROM) {
				m.st = STATUS_ACTIVE;
				m.op = MSG_NONE;
				m.res = RES_NONE;
				m.has_extra = 0;
				m.extra.len = 0;
				m.nlist = 0;
			}
			if (t == MSG_RESPONSE) {
				m.username.len = back.username.len;
				m.username.p = back.username.p;
				m.roomname.len = m.text.len = 0;
				m.st = STATUS_ACTIVE;
			}
			if (t == MSG_INVITE || t == MSG_USER_LIST) {
				m.username = back.username;
				m.text.len = 0;
				m.st = STATUS_ACTIVE;
				m.op = MSG_NONE;
				m.res = RES_NONE;
				m.has_extra = 0;
				m.extra.len = 0;
				if (t == MSG_USER_LIST)
					m.roomname.len = 0;
			}
			same_msg(&m, &back);
		}
		buf_reset(&b);
		buf_reset(&b2);
	}
	buf_free(&b);
	buf_free(&b2);
	proto_parser_free(&pp);
}
END_TEST

/* proto_peek_type: the type of every encoded line, without a decode. */
START_TEST(test_peek)
{
	struct buf	b;
	struct msg	m;
	enum msg_type	t;
	int		i;

	for (i = MSG_NONE + 1; i < MSG_TYPE_COUNT; i++) {
		buf_init(&b);
		memset(&m, 0, sizeof(m));
		m.type = (enum msg_type)i;
		ck_assert_int_eq(proto_encode(&b, &m), 0);
		t = MSG_NONE;
		ck_assert_int_eq(proto_peek_type(buf_head(&b),
		    buf_pending(&b) - 1, &t), 0);
		ck_assert_int_eq(t, i);
		buf_free(&b);
	}
	/* TEXT is not TEXT_FROM, nor TEXT_FROM ROOM_TEXT_FROM. */
	ck_assert_int_eq(proto_peek_type("{\"type\":\"TEXT\"}", 15, &t), 0);
	ck_assert_int_eq(t, MSG_TEXT);
	ck_assert_int_eq(proto_peek_type("{\"type\":\"TEXT_FROMX\"}", 21,
	    &t), 0);
	ck_assert_int_eq(t, MSG_NONE);
	ck_assert_int_eq(proto_peek_type("{\"type\":\"RESPONSE", 17, &t), 0);
	ck_assert_int_eq(t, MSG_NONE);
	ck_assert_int_eq(proto_peek_type("{\"type\":\"", 9, &t), -1);
	ck_assert_int_eq(proto_peek_type("{ \"type\":\"TEXT\"}", 16, &t),
	    -1);
	ck_assert_int_eq(proto_peek_type("", 0, &t), -1);
}
END_TEST

START_TEST(test_names)
{
	int	t;

	ck_assert_ptr_null(proto_type_name(MSG_NONE));
	ck_assert_ptr_null(proto_type_name(MSG_TYPE_COUNT));
	ck_assert_ptr_null(proto_status_name(STATUS_COUNT));
	ck_assert_ptr_null(proto_result_name(RES_NONE));
	ck_assert_ptr_null(proto_result_name(RES_COUNT));
	ck_assert_str_eq(proto_type_name(MSG_IDENTIFY), "IDENTIFY");
	ck_assert_str_eq(proto_type_name(MSG_DISCONNECTED), "DISCONNECTED");
	ck_assert_str_eq(proto_status_name(STATUS_ACTIVE), "ACTIVE");
	ck_assert_str_eq(proto_result_name(RES_NO_SUCH_USER),
	    "NO_SUCH_USER");
	for (t = MSG_NONE + 1; t < MSG_TYPE_COUNT; t++)
		ck_assert_int_eq(proto_type_lookup(proto_type_name(t),
		    strlen(proto_type_name(t))), t);
	for (t = 0; t < STATUS_COUNT; t++)
		ck_assert_int_eq(proto_status_lookup(proto_status_name(t),
		    strlen(proto_status_name(t))), t);
	for (t = RES_NONE + 1; t < RES_COUNT; t++)
		ck_assert_int_eq(proto_result_lookup(proto_result_name(t),
		    strlen(proto_result_name(t))), t);
	ck_assert_int_eq(proto_type_lookup("INVALID", 7), MSG_NONE);
	ck_assert_int_eq(proto_type_lookup("IDENTIFYX", 8), MSG_IDENTIFY);
	ck_assert_int_eq(proto_type_lookup("IDENTIF", 7), MSG_NONE);
	ck_assert_int_eq(proto_type_lookup("", 0), MSG_NONE);
	ck_assert_int_eq(proto_status_lookup("away", 4), -1);
	ck_assert_int_eq(proto_result_lookup("NOPE", 4), RES_NONE);
	ck_assert_uint_eq(str_c("abc").len, 3);
	ck_assert_ptr_null(str_c(NULL).p);
}
END_TEST

/* The encoding tests. */
CHECK_SUITE(encode_suite, "encode", "encode",
    CK_LOOP(test_examples_roundtrip, examples), CK_TEST(test_encode_built),
    CK_TEST(test_encode_escapes), CK_TEST(test_roundtrip_all),
    CK_TEST(test_names), CK_TEST(test_peek))

/* Runs the suite; exits non-zero on failure. */
CHECK_MAIN(encode_suite)
