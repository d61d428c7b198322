/*
 * check_proto.c: unit tests for lib/proto.c.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "proto.h"
#include "check_run.h"

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
static int
str_is(struct str s, const char *want)
{
	size_t	n = strlen(want);

	return s.len == n && (n == 0 || memcmp(s.p, want, n) == 0);
}

/* Parses a request with default limits; returns the parser's result. */
static int
parse_req(const char *line, size_t len, struct proto_parser *pp,
    struct msg *m)
{
	return proto_parse_request(pp, line, len, m);
}

/* --- requests that parse --------------------------------------------- */

/* A parser in small stores parses the same, moving to the heap for more. */
START_TEST(test_parser_store)
{
	struct proto_parser	 pp;
	struct msg		 m;
	int			 tok[4 * 10];	/* 8 to 10 tokens */
	char			 scratch[64], text[200];
	char			 l[300];
	const char		*id = "{\"type\":\"IDENTIFY\",\"username\":\"Kim\"}";
	int			 i;

	proto_parser_init(&pp, NULL);
	proto_parser_store(&pp, tok, sizeof(tok), scratch, sizeof(scratch));
	ck_assert_ptr_eq(pp.tok, tok);
	ck_assert_uint_ge(pp.ntok, 8);
	ck_assert_int_eq(parse_req(id, strlen(id), &pp, &m), 0);
	ck_assert_int_eq(m.type, MSG_IDENTIFY);
	ck_assert(str_is(m.username, "Kim"));
	/* Short lines stay in the stores. */
	ck_assert_ptr_eq(pp.tok, tok);
	ck_assert_ptr_eq(pp.scratch, scratch);
	/* A long text and many tokens move both parts to the heap. */
	for (i = 0; i < (int)sizeof(text) - 1; i++)
		text[i] = (char)('a' + i % 26);
	text[sizeof(text) - 1] = '\0';
	(void)snprintf(l, sizeof(l), "{\"type\":\"TEXT\",\"username\":\"Kim\","
	    "\"text\":\"%s\"}", text);
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	ck_assert_int_eq(m.type, MSG_TEXT);
	ck_assert(str_is(m.text, text));
	ck_assert_ptr_eq(pp.tok, tok);
	ck_assert_ptr_ne(pp.scratch, scratch);
	(void)snprintf(l, sizeof(l), "{\"type\":\"INVITE\",\"roomname\":\"R\","
	    "\"usernames\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\"]}");
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	ck_assert_int_eq(m.type, MSG_INVITE);
	ck_assert_uint_eq(m.nlist, 7);
	ck_assert_ptr_ne(pp.tok, tok);
	ck_assert_int_eq(parse_req(id, strlen(id), &pp, &m), 0);
	ck_assert(str_is(m.username, "Kim"));
	/* Freeing frees only the heap parts (ASan would see a bad free). */
	proto_parser_free(&pp);
	ck_assert_ptr_null(pp.tok);
	ck_assert_ptr_null(pp.scratch);
}
END_TEST

START_TEST(test_req_each_type)
{
	struct proto_parser	 pp;
	struct msg		 m;
	const char		*l;

	proto_parser_init(&pp, NULL);

	l = "{\"type\":\"IDENTIFY\",\"username\":\"Kimberly\"}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	ck_assert_int_eq(m.type, MSG_IDENTIFY);
	ck_assert(str_is(m.username, "Kimberly"));

	l = "{\"type\":\"STATUS\",\"status\":\"AWAY\"}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	ck_assert_int_eq(m.type, MSG_STATUS);
	ck_assert_int_eq(m.st, STATUS_AWAY);
	ck_assert(str_is(m.status, "AWAY"));
	l = "{\"type\":\"STATUS\",\"status\":\"BUSY\"}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	ck_assert_int_eq(m.st, STATUS_BUSY);
	l = "{\"type\":\"STATUS\",\"status\":\"ACTIVE\"}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	ck_assert_int_eq(m.st, STATUS_ACTIVE);

	l = "{\"type\":\"USERS\"}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	ck_assert_int_eq(m.type, MSG_USERS);
	ck_assert_ptr_null(m.username.p);

	l = "{\"type\":\"TEXT\",\"username\":\"Luis\",\"text\":\"Hi Luis\"}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	ck_assert_int_eq(m.type, MSG_TEXT);
	ck_assert(str_is(m.username, "Luis"));
	ck_assert(str_is(m.text, "Hi Luis"));

	l = "{\"type\":\"PUBLIC_TEXT\",\"text\":\"Hello everyone!\"}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	ck_assert_int_eq(m.type, MSG_PUBLIC_TEXT);
	ck_assert(str_is(m.text, "Hello everyone!"));

	l = "{\"type\":\"NEW_ROOM\",\"roomname\":\"Room 1\"}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	ck_assert_int_eq(m.type, MSG_NEW_ROOM);
	ck_assert(str_is(m.roomname, "Room 1"));

	l = "{\"type\":\"INVITE\",\"roomname\":\"Room 1\","
	    "\"usernames\":[\"Luis\",\"Antonio\"]}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	ck_assert_int_eq(m.type, MSG_INVITE);
	ck_assert(str_is(m.roomname, "Room 1"));
	ck_assert_uint_eq(m.nlist, 2);
	ck_assert(str_is(m.list[0], "Luis"));
	ck_assert(str_is(m.list[1], "Antonio"));

	l = "{\"type\":\"JOIN_ROOM\",\"roomname\":\"Room 1\"}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	ck_assert_int_eq(m.type, MSG_JOIN_ROOM);
	ck_assert(str_is(m.roomname, "Room 1"));

	l = "{\"type\":\"ROOM_USERS\",\"roomname\":\"Room 1\"}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	ck_assert_int_eq(m.type, MSG_ROOM_USERS);

	l = "{\"type\":\"ROOM_TEXT\",\"roomname\":\"Room 1\","
	    "\"text\":\"Hello Room 1!\"}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	ck_assert_int_eq(m.type, MSG_ROOM_TEXT);
	ck_assert(str_is(m.roomname, "Room 1"));
	ck_assert(str_is(m.text, "Hello Room 1!"));

	l = "{\"type\":\"LEAVE_ROOM\",\"roomname\":\"Room 1\"}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	ck_assert_int_eq(m.type, MSG_LEAVE_ROOM);

	l = "{\"type\":\"DISCONNECT\"}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	ck_assert_int_eq(m.type, MSG_DISCONNECT);

	proto_parser_free(&pp);
}
END_TEST

/* Lines that are valid requests, each with something unusual. */
static const struct sample req_valid[] = {
	S(" \t{ \"type\" : \"USERS\" }\r\n "),
	S("{\"type\":\"USERS\"}\n"),
	S("{\"t\\u0079pe\":\"U\\u0053ERS\"}"),
	S("{\"x\":{\"a\":[1,2,{\"b\":null}],\"type\":\"NOPE\"},"
	    "\"type\":\"USERS\",\"y\":[[],{}],\"z\":-1.5e+10,"
	    "\"w\":true,\"v\":false,\"u\":null,\"s\":\"\\u0000\\n\"}"),
	S("{\"type\":\"USERS\",\"x\":1,\"x\":2}"),
	S("{\"type\":\"USERS\",\"username\":\"a\",\"username\":3}"),
	S("{\"type\":\"USERS\",\"n\":[0,-0,1.5,1e10,1E-5,-0.0e+0,10,"
	    "123456789012345678901234567890]}"),
	S("{\"type\":\"USERS\",\"\":\"\"}"),
	S("{\"type\":\"IDENTIFY\",\"username\":\"" E8 "\"}"),
	S("{\"type\":\"IDENTIFY\",\"username\":\"\xf0\x9f\x98\x80\"}"),
	S("{\"type\":\"IDENTIFY\",\"username\":\"\\ud83d\\ude00\"}"),
	S("{\"type\":\"IDENTIFY\",\"username\":\"a b\xc2\xa0\"}"),
	S("{\"type\":\"IDENTIFY\",\"username\":\"\\u00e9\"}"),
	S("{\"type\":\"NEW_ROOM\",\"roomname\":\"" E8 E8 "\"}"),
	S("{\"type\":\"NEW_ROOM\",\"roomname\":\"0123456789abcdef\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\x7f\xc2\x80\"}"),
	S("{\"type\":\"INVITE\",\"roomname\":\"r\",\"usernames\":[\"a\"]}"),
	S("{\"type\":\"INVITE\",\"roomname\":\"r\","
	    "\"usernames\":[\"a\",\"a\"]}"),
	S("{\"usernames\":[\"b\"],\"roomname\":\"r\",\"type\":\"INVITE\"}"),
};

START_TEST(test_req_valid)
{
	struct proto_parser	pp;
	struct msg		m;

	proto_parser_init(&pp, NULL);
	ck_assert_msg(parse_req(req_valid[_i].s, req_valid[_i].len, &pp,
	    &m) == 0, "should be valid: %s", req_valid[_i].s);
	ck_assert_int_ne(m.type, MSG_NONE);
	proto_parser_free(&pp);
}
END_TEST

/* --- requests that are INVALID ----------------------------------------- */

static const struct sample req_invalid[] = {
	/* not JSON, not an object */
	S(""),
	S(" "),
	S("not json"),
	S("[]"),
	S("[{\"type\":\"USERS\"}]"),
	S("\"USERS\""),
	S("42"),
	S("null"),
	S("true"),
	S("{"),
	S("}"),
	S("{\"type\":\"USERS\""),
	S("{\"type\":\"USERS\",}"),
	S("{,\"type\":\"USERS\"}"),
	S("{\"type\":\"USERS\",,\"a\":1}"),
	S("{\"type\" \"USERS\"}"),
	S("{\"type\":\"USERS\" \"a\":1}"),
	S("{\"type\"::\"USERS\"}"),
	S("{type:\"USERS\"}"),
	S("{'type':'USERS'}"),
	S("{\"type\":\"USERS\",1:2}"),
	S("{\"type\":\"USERS\",{}:2}"),
	S("{\"type\":\"USERS\",\"a\":[1,]}"),
	S("{\"type\":\"USERS\",\"a\":[,1]}"),
	S("{\"type\":\"USERS\",\"a\":[1 2]}"),
	S("{\"type\":\"USERS\",\"a\":[}"),
	S("{\"type\":\"USERS\",\"a\":{]}"),
	S("{\"type\":\"USERS\",\"a\":{\"b\"}}"),
	S("{\"type\":\"USERS\",\"a\"}"),
	S("{\"type\":\"USERS\",\"a\":}"),
	S("{\"type\":\"USERS\" /* c */}"),
	/* trailing garbage */
	S("{\"type\":\"USERS\"}x"),
	S("{\"type\":\"USERS\"}{}"),
	S("{\"type\":\"USERS\"},"),
	S("{\"type\":\"USERS\"}}"),
	S("{\"type\":\"USERS\"}\0"),
	/* whitespace that JSON does not allow */
	S("{\"type\":\"USERS\"\f}"),
	S("{\"type\":\"USERS\"\v}"),
	S("{\"type\":\xc2\xa0\"USERS\"}"),
	S("\xef\xbb\xbf{\"type\":\"USERS\"}"),
	S("\0{\"type\":\"USERS\"}"),
	/* missing type, bad type */
	S("{}"),
	S("{\"username\":\"a\"}"),
	S("{\"type\":1}"),
	S("{\"type\":null}"),
	S("{\"type\":true}"),
	S("{\"type\":[\"USERS\"]}"),
	S("{\"type\":{\"USERS\":1}}"),
	S("{\"type\":\"NOPE\"}"),
	S("{\"type\":\"users\"}"),
	S("{\"type\":\"USERS \"}"),
	S("{\"type\":\"\"}"),
	S("{\"type\":\"INVALID\"}"),
	S("{\"type\":\"USERS\\u0000\"}"),
	S("{\"type\":\"USERS\",\"type\":\"USERS\"}"),
	S("{\"type\":\"USERS\",\"t\\u0079pe\":\"USERS\"}"),
	S("{\"x\":{\"type\":\"USERS\"}}"),
	/* server-only types */
	S("{\"type\":\"RESPONSE\",\"operation\":\"INVALID\","
	    "\"result\":\"INVALID\"}"),
	S("{\"type\":\"NEW_USER\",\"username\":\"a\"}"),
	S("{\"type\":\"NEW_STATUS\",\"username\":\"a\",\"status\":\"AWAY\"}"),
	S("{\"type\":\"USER_LIST\",\"users\":{}}"),
	S("{\"type\":\"TEXT_FROM\",\"username\":\"a\",\"text\":\"b\"}"),
	S("{\"type\":\"PUBLIC_TEXT_FROM\",\"username\":\"a\",\"text\":\"b\"}"),
	S("{\"type\":\"INVITATION\",\"username\":\"a\",\"roomname\":\"b\"}"),
	S("{\"type\":\"JOINED_ROOM\",\"roomname\":\"b\",\"username\":\"a\"}"),
	S("{\"type\":\"ROOM_USER_LIST\",\"roomname\":\"b\",\"users\":{}}"),
	S("{\"type\":\"ROOM_TEXT_FROM\",\"roomname\":\"b\","
	    "\"username\":\"a\",\"text\":\"c\"}"),
	S("{\"type\":\"LEFT_ROOM\",\"roomname\":\"b\",\"username\":\"a\"}"),
	S("{\"type\":\"DISCONNECTED\",\"username\":\"a\"}"),
	/* missing keys */
	S("{\"type\":\"IDENTIFY\"}"),
	S("{\"type\":\"IDENTIFY\",\"user\":\"a\"}"),
	S("{\"type\":\"STATUS\"}"),
	S("{\"type\":\"TEXT\",\"username\":\"a\"}"),
	S("{\"type\":\"TEXT\",\"text\":\"a\"}"),
	S("{\"type\":\"PUBLIC_TEXT\"}"),
	S("{\"type\":\"NEW_ROOM\"}"),
	S("{\"type\":\"INVITE\",\"roomname\":\"r\"}"),
	S("{\"type\":\"INVITE\",\"usernames\":[\"a\"]}"),
	S("{\"type\":\"JOIN_ROOM\"}"),
	S("{\"type\":\"ROOM_USERS\"}"),
	S("{\"type\":\"ROOM_TEXT\",\"roomname\":\"r\"}"),
	S("{\"type\":\"ROOM_TEXT\",\"text\":\"r\"}"),
	S("{\"type\":\"LEAVE_ROOM\"}"),
	S("{\"type\":\"LEAVE_ROOM\",\"x\":{\"roomname\":\"r\"}}"),
	/* keys of the wrong JSON type */
	S("{\"type\":\"IDENTIFY\",\"username\":5}"),
	S("{\"type\":\"IDENTIFY\",\"username\":null}"),
	S("{\"type\":\"IDENTIFY\",\"username\":true}"),
	S("{\"type\":\"IDENTIFY\",\"username\":[\"a\"]}"),
	S("{\"type\":\"IDENTIFY\",\"username\":{}}"),
	S("{\"type\":\"STATUS\",\"status\":0}"),
	S("{\"type\":\"TEXT\",\"username\":\"a\",\"text\":5}"),
	S("{\"type\":\"TEXT\",\"username\":\"a\",\"text\":null}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":[\"x\"]}"),
	S("{\"type\":\"NEW_ROOM\",\"roomname\":1}"),
	S("{\"type\":\"INVITE\",\"roomname\":\"r\",\"usernames\":\"a\"}"),
	S("{\"type\":\"INVITE\",\"roomname\":\"r\",\"usernames\":{\"a\":1}}"),
	S("{\"type\":\"INVITE\",\"roomname\":[],\"usernames\":[\"a\"]}"),
	S("{\"type\":\"ROOM_TEXT\",\"roomname\":\"r\",\"text\":{}}"),
	/* bad values */
	S("{\"type\":\"STATUS\",\"status\":\"SLEEPING\"}"),
	S("{\"type\":\"STATUS\",\"status\":\"active\"}"),
	S("{\"type\":\"STATUS\",\"status\":\"\"}"),
	S("{\"type\":\"STATUS\",\"status\":\"AWAY \"}"),
	S("{\"type\":\"IDENTIFY\",\"username\":\"\"}"),
	S("{\"type\":\"IDENTIFY\",\"username\":\"Kimberly!\"}"),
	S("{\"type\":\"IDENTIFY\",\"username\":\"" E9 "\"}"),
	S("{\"type\":\"IDENTIFY\",\"username\":\"a\\u0001\"}"),
	S("{\"type\":\"IDENTIFY\",\"username\":\"a\\tb\"}"),
	S("{\"type\":\"IDENTIFY\",\"username\":\"a\\nb\"}"),
	S("{\"type\":\"IDENTIFY\",\"username\":\"a\\u0000\"}"),
	S("{\"type\":\"IDENTIFY\",\"username\":\"a\\u007f\"}"),
	S("{\"type\":\"IDENTIFY\",\"username\":\"a\x7f\"}"),
	S("{\"type\":\"IDENTIFY\",\"username\":\"a\\u0085\"}"),
	S("{\"type\":\"IDENTIFY\",\"username\":\"a\xc2\x9f\"}"),
	S("{\"type\":\"IDENTIFY\",\"username\":\"a\",\"username\":\"b\"}"),
	S("{\"type\":\"NEW_ROOM\",\"roomname\":\"\"}"),
	S("{\"type\":\"NEW_ROOM\",\"roomname\":\"0123456789abcdefg\"}"),
	S("{\"type\":\"NEW_ROOM\",\"roomname\":\"" E8 E9 "\"}"),
	S("{\"type\":\"NEW_ROOM\",\"roomname\":\"\\u001b[1m\"}"),
	S("{\"type\":\"INVITE\",\"roomname\":\"r\",\"usernames\":[]}"),
	S("{\"type\":\"INVITE\",\"roomname\":\"r\",\"usernames\":[1]}"),
	S("{\"type\":\"INVITE\",\"roomname\":\"r\","
	    "\"usernames\":[\"a\",2]}"),
	S("{\"type\":\"INVITE\",\"roomname\":\"r\","
	    "\"usernames\":[\"a\",null]}"),
	S("{\"type\":\"INVITE\",\"roomname\":\"r\","
	    "\"usernames\":[[\"a\"]]}"),
	S("{\"type\":\"INVITE\",\"roomname\":\"r\",\"usernames\":[\"\"]}"),
	S("{\"type\":\"INVITE\",\"roomname\":\"r\","
	    "\"usernames\":[\"a\",\"" E9 "\"]}"),
	S("{\"type\":\"INVITE\",\"roomname\":\"r\","
	    "\"usernames\":[\"a\\u0007\"]}"),
	S("{\"type\":\"INVITE\",\"roomname\":\"r\",\"usernames\":[\"a\"],"
	    "\"usernames\":[\"b\"]}"),
	S("{\"type\":\"ROOM_TEXT\",\"roomname\":\"r\",\"text\":\"a\","
	    "\"text\":\"b\"}"),
	/* raw control characters in strings */
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"a\tb\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"a\nb\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"a\rb\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"a\x1f\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"a\0b\"}"),
	S("{\"type\":\"USERS\",\"x\":\"\x01\"}"),
	/* bad escapes */
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\\x41\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\\U0041\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\\'\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\\a\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\\0\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\\u12\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\\u12G4\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\\u\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\\\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"abc\\"),
	S("{\"type\":\"USERS\",\"x\\q\":1}"),
	/* lone or mismatched surrogates */
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\\ud800\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\\udbff\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\\udc00\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\\udfff\\ud800\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\\ud800\\u0041\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\\ud800\\ud800\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\\ud800x\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\\ud800\\n\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\\ud800\\udc0\"}"),
	S("{\"type\":\"USERS\",\"x\":\"\\udc00\"}"),
	/* bad numbers and literals */
	S("{\"type\":\"USERS\",\"n\":01}"),
	S("{\"type\":\"USERS\",\"n\":-01}"),
	S("{\"type\":\"USERS\",\"n\":1.}"),
	S("{\"type\":\"USERS\",\"n\":1.e5}"),
	S("{\"type\":\"USERS\",\"n\":.5}"),
	S("{\"type\":\"USERS\",\"n\":-}"),
	S("{\"type\":\"USERS\",\"n\":+1}"),
	S("{\"type\":\"USERS\",\"n\":1e}"),
	S("{\"type\":\"USERS\",\"n\":1e+}"),
	S("{\"type\":\"USERS\",\"n\":0x1}"),
	S("{\"type\":\"USERS\",\"n\":1a}"),
	S("{\"type\":\"USERS\",\"n\":NaN}"),
	S("{\"type\":\"USERS\",\"n\":Infinity}"),
	S("{\"type\":\"USERS\",\"n\":-Infinity}"),
	S("{\"type\":\"USERS\",\"n\":tru}"),
	S("{\"type\":\"USERS\",\"n\":truex}"),
	S("{\"type\":\"USERS\",\"n\":True}"),
	S("{\"type\":\"USERS\",\"n\":nul}"),
	S("{\"type\":\"USERS\",\"n\":nulll}"),
	S("{\"type\":\"USERS\",\"n\":falsy}"),
	S("{\"type\":\"USERS\",\"n\":undefined}"),
	/* invalid UTF-8 anywhere in the line */
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\xc0\x80\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\xed\xa0\x80\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\xf4\x90\x80\x80\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\xe2\x82\"}"),
	S("{\"type\":\"PUBLIC_TEXT\",\"text\":\"\x80\"}"),
	S("{\"type\":\"USERS\",\"\xff\":1}"),
	S("{\"type\":\"USERS\"}\xff"),
};

START_TEST(test_req_invalid)
{
	struct proto_parser	pp;
	struct msg		m;

	proto_parser_init(&pp, NULL);
	errno = 0;
	ck_assert_msg(parse_req(req_invalid[_i].s, req_invalid[_i].len,
	    &pp, &m) == -1, "should be invalid (#%d): %s", _i,
	    req_invalid[_i].s);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(m.type, MSG_NONE);
	ck_assert_ptr_null(m.username.p);
	ck_assert_ptr_null(m.list);
	/* The parser still works after an invalid line. */
	ck_assert_int_eq(parse_req("{\"type\":\"USERS\"}", 16, &pp, &m), 0);
	proto_parser_free(&pp);
}
END_TEST

/* Builds {"type":"USERS","x":<depth-1 nested containers>}. */
static char *
nested(size_t depth, int objects, size_t *lenp)
{
	struct buf	b;
	size_t		i;

	buf_init(&b);
	buf_append(&b, "{\"type\":\"USERS\",\"x\":", 20);
	for (i = 1; i < depth; i++) {
		if (objects)
			buf_append(&b, "{\"a\":", 5);
		else
			buf_append(&b, "[", 1);
	}
	buf_append(&b, "1", 1);
	for (i = 1; i < depth; i++)
		buf_append(&b, objects ? "}" : "]", 1);
	buf_append(&b, "}", 1);
	*lenp = buf_pending(&b);
	return b.data;
}

START_TEST(test_depth)
{
	struct proto_parser	 pp;
	struct msg		 m;
	char			*l;
	size_t			 len;
	int			 objects;

	proto_parser_init(&pp, NULL);
	for (objects = 0; objects < 2; objects++) {
		l = nested(64, objects, &len);
		ck_assert_int_eq(parse_req(l, len, &pp, &m), 0);
		ck_assert_int_eq(m.type, MSG_USERS);
		free(l);
		l = nested(65, objects, &len);
		ck_assert_int_eq(parse_req(l, len, &pp, &m), -1);
		free(l);
		/* Far too deep: no recursion, no crash. */
		l = nested(100000, objects, &len);
		ck_assert_int_eq(parse_req(l, len, &pp, &m), -1);
		free(l);
	}
	proto_parser_free(&pp);
}
END_TEST

/* --- string escapes ------------------------------------------------------ */

START_TEST(test_escapes)
{
	struct proto_parser	 pp;
	struct msg		 m;
	const char		*l;
	static const char	 want[] = "\"\\/\b\f\n\r\tA\xc3\xa9\xe2\x82\xac"
	    "\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xef\xbf\xbf";

	proto_parser_init(&pp, NULL);
	l = "{\"type\":\"PUBLIC_TEXT\",\"text\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t"
	    "\\u0041\\u00E9\\u20ac\\ud83d\\uDE00\\udbff\\udfff\\uffff\"}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	ck_assert_uint_eq(m.text.len, sizeof(want) - 1);
	ck_assert_int_eq(memcmp(m.text.p, want, m.text.len), 0);

	/* \u0000 decodes to a NUL byte; the length says where text ends. */
	l = "{\"type\":\"TEXT\",\"username\":\"Luis\","
	    "\"text\":\"a\\u0000b\\u0000\"}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	ck_assert_uint_eq(m.text.len, 4);
	ck_assert_int_eq(memcmp(m.text.p, "a\0b\0", 4), 0);
	ck_assert(str_is(m.username, "Luis"));

	/* Escaped names count decoded code points. */
	l = "{\"type\":\"IDENTIFY\",\"username\":"
	    "\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\"}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	ck_assert(str_is(m.username, E8));
	l = "{\"type\":\"IDENTIFY\",\"username\":\"\\ud83d\\ude00\\ud83d"
	    "\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00"
	    "\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\"}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), -1);

	/* Raw UTF-8 passes through untouched. */
	l = "{\"type\":\"PUBLIC_TEXT\",\"text\":\"\xc3\xa9\xf0\x9f\x98\x80/\"}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	ck_assert(str_is(m.text, "\xc3\xa9\xf0\x9f\x98\x80/"));
	proto_parser_free(&pp);
}
END_TEST

/* Unknown keys are skipped whatever they hold, even known names inside. */
START_TEST(test_unknown_keys)
{
	struct proto_parser	 pp;
	struct msg		 m;
	const char		*l;

	proto_parser_init(&pp, NULL);
	l = "{\"extra\":{\"username\":\"x\",\"text\":[\"y\",{\"z\":[]}]},"
	    "\"username\":\"Luis\",\"zz\":[[[[]]],{\"text\":\"no\"}],"
	    "\"text\":\"yes\",\"type\":\"TEXT\",\"n\":-1.25E-3,\"b\":false}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	ck_assert_int_eq(m.type, MSG_TEXT);
	ck_assert(str_is(m.username, "Luis"));
	ck_assert(str_is(m.text, "yes"));
	ck_assert_int_eq(m.has_extra, 0);
	ck_assert_ptr_null(m.extra.p);
	proto_parser_free(&pp);
}
END_TEST

/* Custom limits raise the name lengths. */
START_TEST(test_limits)
{
	struct proto_parser	 pp;
	struct proto_limits	 lim = { 20, 3 };
	struct msg		 m;
	const char		*l;

	proto_parser_init(&pp, &lim);
	l = "{\"type\":\"IDENTIFY\",\"username\":\"twelve_chars\"}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	l = "{\"type\":\"NEW_ROOM\",\"roomname\":\"abc\"}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), 0);
	l = "{\"type\":\"NEW_ROOM\",\"roomname\":\"abcd\"}";
	ck_assert_int_eq(parse_req(l, strlen(l), &pp, &m), -1);
	proto_parser_free(&pp);
}
END_TEST

/* Big lines grow the token array and lists, then the parser is reused. */
START_TEST(test_big)
{
	struct proto_parser	 pp;
	struct msg		 m;
	struct buf		 b;
	size_t			 i, n = 10000;

	proto_parser_init(&pp, NULL);
	buf_init(&b);
	buf_append(&b, "{\"type\":\"INVITE\",\"roomname\":\"r\","
	    "\"usernames\":[", 45);
	for (i = 0; i < n; i++)
		buf_append(&b, i ? ",\"ab\"" : "\"ab\"", i ? 5 : 4);
	buf_append(&b, "]}", 2);
	ck_assert_int_eq(parse_req(buf_head(&b), buf_pending(&b), &pp, &m), 0);
	ck_assert_uint_eq(m.nlist, n);
	ck_assert(str_is(m.list[n - 1], "ab"));
	ck_assert_uint_ge(pp.ntok, n);
	ck_assert_int_eq(parse_req("{\"type\":\"USERS\"}", 16, &pp, &m), 0);

	/* A text as long as the line limit allows. */
	buf_reset(&b);
	buf_append(&b, "{\"type\":\"PUBLIC_TEXT\",\"text\":\"", 30);
	for (i = 0; i < PROTO_MAX_LINE - 40; i++)
		buf_append(&b, i % 2 ? "\\n" : "x", i % 2 ? 2 : 1);
	buf_append(&b, "\"}", 2);
	ck_assert_int_eq(parse_req(buf_head(&b), buf_pending(&b), &pp, &m), 0);
	ck_assert_uint_eq(m.text.len, PROTO_MAX_LINE - 40);
	ck_assert_int_eq(m.text.p[1], '\n');
	buf_free(&b);
	proto_parser_free(&pp);
}
END_TEST

/* --- replies ------------------------------------------------------------- */

START_TEST(test_reply_each_type)
{
	struct proto_parser	 pp;
	struct msg		 m;
	const char		*l;

	proto_parser_init(&pp, NULL);

	l = "{\"type\":\"RESPONSE\",\"operation\":\"IDENTIFY\","
	    "\"result\":\"SUCCESS\",\"extra\":\"Kimberly\"}";
	ck_assert_int_eq(proto_parse_reply(&pp, l, strlen(l), &m), 0);
	ck_assert_int_eq(m.type, MSG_RESPONSE);
	ck_assert_int_eq(m.op, MSG_IDENTIFY);
	ck_assert_int_eq(m.res, RES_SUCCESS);
	ck_assert(str_is(m.operation, "IDENTIFY"));
	ck_assert(str_is(m.result, "SUCCESS"));
	ck_assert_int_eq(m.has_extra, 1);
	ck_assert(str_is(m.extra, "Kimberly"));

	l = "{\"type\":\"RESPONSE\",\"operation\":\"INVALID\","
	    "\"result\":\"NOT_IDENTIFIED\"}";
	ck_assert_int_eq(proto_parse_reply(&pp, l, strlen(l), &m), 0);
	ck_assert_int_eq(m.op, MSG_NONE);
	ck_assert(str_is(m.operation, "INVALID"));
	ck_assert_int_eq(m.res, RES_NOT_IDENTIFIED);
	ck_assert_int_eq(m.has_extra, 0);

	l = "{\"type\":\"RESPONSE\",\"operation\":\"NEW_ROOM\","
	    "\"result\":\"SOMETHING_NEW\",\"extra\":\"\"}";
	ck_assert_int_eq(proto_parse_reply(&pp, l, strlen(l), &m), 0);
	ck_assert_int_eq(m.op, MSG_NEW_ROOM);
	ck_assert_int_eq(m.res, RES_NONE);
	ck_assert(str_is(m.result, "SOMETHING_NEW"));
	ck_assert_int_eq(m.has_extra, 1);
	ck_assert_uint_eq(m.extra.len, 0);

	l = "{\"type\":\"RESPONSE\",\"operation\":\"FLY\","
	    "\"result\":\"INVALID\"}";
	ck_assert_int_eq(proto_parse_reply(&pp, l, strlen(l), &m), 0);
	ck_assert_int_eq(m.op, MSG_NONE);
	ck_assert_int_eq(m.res, RES_INVALID);

	l = "{\"type\":\"NEW_USER\",\"username\":\"Kimberly\"}";
	ck_assert_int_eq(proto_parse_reply(&pp, l, strlen(l), &m), 0);
	ck_assert_int_eq(m.type, MSG_NEW_USER);
	ck_assert(str_is(m.username, "Kimberly"));

	l = "{\"type\":\"NEW_STATUS\",\"username\":\"Kimberly\","
	    "\"status\":\"BUSY\"}";
	ck_assert_int_eq(proto_parse_reply(&pp, l, strlen(l), &m), 0);
	ck_assert_int_eq(m.type, MSG_NEW_STATUS);
	ck_assert_int_eq(m.st, STATUS_BUSY);
	l = "{\"type\":\"NEW_STATUS\",\"username\":\"Kimberly\","
	    "\"status\":\"SLEEPING\"}";
	ck_assert_int_eq(proto_parse_reply(&pp, l, strlen(l), &m), 0);
	ck_assert_int_eq(m.st, STATUS_ACTIVE);
	ck_assert(str_is(m.status, "SLEEPING"));

	l = "{\"type\":\"USER_LIST\",\"users\":{\"Kimberly\":\"ACTIVE\","
	    "\"Luis\":\"AWAY\",\"Someone_long\":\"NAPPING\"}}";
	ck_assert_int_eq(proto_parse_reply(&pp, l, strlen(l), &m), 0);
	ck_assert_int_eq(m.type, MSG_USER_LIST);
	ck_assert_uint_eq(m.nlist, 3);
	ck_assert(str_is(m.list[0], "Kimberly"));
	ck_assert(str_is(m.list[1], "ACTIVE"));
	ck_assert(str_is(m.list[2], "Luis"));
	ck_assert(str_is(m.list[3], "AWAY"));
	ck_assert(str_is(m.list[4], "Someone_long"));
	ck_assert(str_is(m.list[5], "NAPPING"));
	l = "{\"type\":\"USER_LIST\",\"users\":{}}";
	ck_assert_int_eq(proto_parse_reply(&pp, l, strlen(l), &m), 0);
	ck_assert_uint_eq(m.nlist, 0);
	proto_parser_free(&pp);
}
END_TEST

/* The texts and room notices a client gets, each decoded. */
START_TEST(test_reply_each_text)
{
	struct proto_parser	 pp;
	struct msg		 m;
	const char		*l;

	proto_parser_init(&pp, NULL);

	l = "{\"type\":\"TEXT_FROM\",\"username\":\"Kimberly\","
	    "\"text\":\"Hi Luis\"}";
	ck_assert_int_eq(proto_parse_reply(&pp, l, strlen(l), &m), 0);
	ck_assert_int_eq(m.type, MSG_TEXT_FROM);
	ck_assert(str_is(m.username, "Kimberly"));
	ck_assert(str_is(m.text, "Hi Luis"));

	l = "{\"type\":\"PUBLIC_TEXT_FROM\",\"username\":\"Kimberly\","
	    "\"text\":\"Hello everyone!\"}";
	ck_assert_int_eq(proto_parse_reply(&pp, l, strlen(l), &m), 0);
	ck_assert_int_eq(m.type, MSG_PUBLIC_TEXT_FROM);
	ck_assert(str_is(m.text, "Hello everyone!"));

	l = "{\"type\":\"INVITATION\",\"username\":\"Kimberly\","
	    "\"roomname\":\"Room 1\"}";
	ck_assert_int_eq(proto_parse_reply(&pp, l, strlen(l), &m), 0);
	ck_assert_int_eq(m.type, MSG_INVITATION);
	ck_assert(str_is(m.username, "Kimberly"));
	ck_assert(str_is(m.roomname, "Room 1"));

	l = "{\"type\":\"JOINED_ROOM\",\"roomname\":\"Room 1\","
	    "\"username\":\"Luis\"}";
	ck_assert_int_eq(proto_parse_reply(&pp, l, strlen(l), &m), 0);
	ck_assert_int_eq(m.type, MSG_JOINED_ROOM);
	ck_assert(str_is(m.username, "Luis"));
	ck_assert(str_is(m.roomname, "Room 1"));

	l = "{\"type\":\"ROOM_USER_LIST\",\"roomname\":\"Room 1\","
	    "\"users\":{\"Kimberly\":\"ACTIVE\",\"Luis\":\"AWAY\"}}";
	ck_assert_int_eq(proto_parse_reply(&pp, l, strlen(l), &m), 0);
	ck_assert_int_eq(m.type, MSG_ROOM_USER_LIST);
	ck_assert(str_is(m.roomname, "Room 1"));
	ck_assert_uint_eq(m.nlist, 2);
	ck_assert(str_is(m.list[3], "AWAY"));

	l = "{\"type\":\"ROOM_TEXT_FROM\",\"roomname\":\"Room 1\","
	    "\"username\":\"Kimberly\",\"text\":\"Hello Room 1!\"}";
	ck_assert_int_eq(proto_parse_reply(&pp, l, strlen(l), &m), 0);
	ck_assert_int_eq(m.type, MSG_ROOM_TEXT_FROM);
	ck_assert(str_is(m.roomname, "Room 1"));
	ck_assert(str_is(m.username, "Kimberly"));
	ck_assert(str_is(m.text, "Hello Room 1!"));

	l = "{\"type\":\"LEFT_ROOM\",\"roomname\":\"Room 1\","
	    "\"username\":\"Luis\"}";
	ck_assert_int_eq(proto_parse_reply(&pp, l, strlen(l), &m), 0);
	ck_assert_int_eq(m.type, MSG_LEFT_ROOM);

	l = "{\"type\":\"DISCONNECTED\",\"username\":\"Luis\"}";
	ck_assert_int_eq(proto_parse_reply(&pp, l, strlen(l), &m), 0);
	ck_assert_int_eq(m.type, MSG_DISCONNECTED);
	ck_assert(str_is(m.username, "Luis"));

	/* Servers may allow longer names than the defaults. */
	l = "{\"type\":\"NEW_USER\",\"username\":\"a_rather_long_name\"}";
	ck_assert_int_eq(proto_parse_reply(&pp, l, strlen(l), &m), 0);
	proto_parser_free(&pp);
}
END_TEST

static const struct sample reply_invalid[] = {
	S("{\"type\":\"IDENTIFY\",\"username\":\"Kimberly\"}"),
	S("{\"type\":\"USERS\"}"),
	S("{\"type\":\"RESPONSE\",\"operation\":\"IDENTIFY\"}"),
	S("{\"type\":\"RESPONSE\",\"result\":\"SUCCESS\"}"),
	S("{\"type\":\"RESPONSE\",\"operation\":1,\"result\":\"SUCCESS\"}"),
	S("{\"type\":\"RESPONSE\",\"operation\":\"IDENTIFY\","
	    "\"result\":\"SUCCESS\",\"extra\":7}"),
	S("{\"type\":\"RESPONSE\",\"operation\":\"IDENTIFY\","
	    "\"result\":\"SUCCESS\",\"extra\":\"a\",\"extra\":\"b\"}"),
	S("{\"type\":\"NEW_USER\"}"),
	S("{\"type\":\"NEW_STATUS\",\"username\":\"a\"}"),
	S("{\"type\":\"NEW_STATUS\",\"username\":\"a\",\"status\":1}"),
	S("{\"type\":\"USER_LIST\",\"users\":[]}"),
	S("{\"type\":\"USER_LIST\",\"users\":{\"a\":1}}"),
	S("{\"type\":\"USER_LIST\",\"users\":{\"a\":\"ACTIVE\",\"b\":{}}}"),
	S("{\"type\":\"ROOM_USER_LIST\",\"users\":{}}"),
	S("{\"type\":\"TEXT_FROM\",\"username\":\"a\"}"),
	S("{\"type\":\"ROOM_TEXT_FROM\",\"roomname\":\"r\",\"text\":\"t\"}"),
	S("{\"type\":\"NOPE\"}"),
	S("[\"type\",\"NEW_USER\"]"),
	S("{\"type\":\"NEW_USER\",\"username\":\"a\"} x"),
};

START_TEST(test_reply_invalid)
{
	struct proto_parser	pp;
	struct msg		m;

	proto_parser_init(&pp, NULL);
	ck_assert_msg(proto_parse_reply(&pp, reply_invalid[_i].s,
	    reply_invalid[_i].len, &m) == -1, "should be invalid: %s",
	    reply_invalid[_i].s);
	proto_parser_free(&pp);
}
END_TEST

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

/* Messages built from the enums, as the server builds them. */
START_TEST(test_encode_built)
{
	struct msg	m;
	struct buf	b;
	struct str	users[4];

	buf_init(&b);

	memset(&m, 0, sizeof(m));
	m.type = MSG_RESPONSE;
	m.op = MSG_IDENTIFY;
	m.res = RES_SUCCESS;
	m.extra = str_c("Kimberly");
	m.has_extra = 1;
	ck_assert_int_eq(proto_encode(&b, &m), 0);
	expect_line(&b, "{\"type\":\"RESPONSE\",\"operation\":\"IDENTIFY\","
	    "\"result\":\"SUCCESS\",\"extra\":\"Kimberly\"}\n");

	memset(&m, 0, sizeof(m));
	m.type = MSG_RESPONSE;
	m.operation = str_c("INVALID");
	m.res = RES_INVALID;
	ck_assert_int_eq(proto_encode(&b, &m), 0);
	expect_line(&b, "{\"type\":\"RESPONSE\",\"operation\":\"INVALID\","
	    "\"result\":\"INVALID\"}\n");

	/* op MSG_NONE without an operation string also says INVALID. */
	memset(&m, 0, sizeof(m));
	m.type = MSG_RESPONSE;
	m.res = RES_NOT_IDENTIFIED;
	ck_assert_int_eq(proto_encode(&b, &m), 0);
	expect_line(&b, "{\"type\":\"RESPONSE\",\"operation\":\"INVALID\","
	    "\"result\":\"NOT_IDENTIFIED\"}\n");

	/* Strings win over enums. */
	memset(&m, 0, sizeof(m));
	m.type = MSG_RESPONSE;
	m.op = MSG_TEXT;
	m.operation = str_c("NEW_ROOM");
	m.res = RES_SUCCESS;
	m.result = str_c("CUSTOM");
	m.extra = str_c("");
	m.has_extra = 1;
	ck_assert_int_eq(proto_encode(&b, &m), 0);
	expect_line(&b, "{\"type\":\"RESPONSE\",\"operation\":\"NEW_ROOM\","
	    "\"result\":\"CUSTOM\",\"extra\":\"\"}\n");

	memset(&m, 0, sizeof(m));
	m.type = MSG_NEW_STATUS;
	m.username = str_c("Luis");
	m.st = STATUS_BUSY;
	ck_assert_int_eq(proto_encode(&b, &m), 0);
	expect_line(&b, "{\"type\":\"NEW_STATUS\",\"username\":\"Luis\","
	    "\"status\":\"BUSY\"}\n");
	m.status = str_c("AWAY");
	ck_assert_int_eq(proto_encode(&b, &m), 0);
	expect_line(&b, "{\"type\":\"NEW_STATUS\",\"username\":\"Luis\","
	    "\"status\":\"AWAY\"}\n");

	memset(&m, 0, sizeof(m));
	m.type = MSG_USER_LIST;
	users[0] = str_c("Kimberly");
	users[1] = str_c(proto_status_name(STATUS_ACTIVE));
	users[2] = str_c("Luis");
	users[3] = str_c(proto_status_name(STATUS_AWAY));
	m.list = users;
	m.nlist = 2;
	ck_assert_int_eq(proto_encode(&b, &m), 0);
	expect_line(&b, "{\"type\":\"USER_LIST\",\"users\":"
	    "{\"Kimberly\":\"ACTIVE\",\"Luis\":\"AWAY\"}}\n");
	m.nlist = 0;
	ck_assert_int_eq(proto_encode(&b, &m), 0);
	expect_line(&b, "{\"type\":\"USER_LIST\",\"users\":{}}\n");

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

/* Compares the fields two messages share. */
static void
same_msg(const struct msg *a, const struct msg *b)
{
	size_t	i, n;

	ck_assert_int_eq(a->type, b->type);
	ck_assert_uint_eq(a->username.len, b->username.len);
	if (a->username.len)
		ck_assert_int_eq(memcmp(a->username.p, b->username.p,
		    a->username.len), 0);
	ck_assert_uint_eq(a->roomname.len, b->roomname.len);
	if (a->roomname.len)
		ck_assert_int_eq(memcmp(a->roomname.p, b->roomname.p,
		    a->roomname.len), 0);
	ck_assert_uint_eq(a->text.len, b->text.len);
	if (a->text.len)
		ck_assert_int_eq(memcmp(a->text.p, b->text.p, a->text.len), 0);
	ck_assert_int_eq(a->st, b->st);
	ck_assert_int_eq(a->op, b->op);
	ck_assert_int_eq(a->res, b->res);
	ck_assert_int_eq(a->has_extra, b->has_extra);
	ck_assert_uint_eq(a->extra.len, b->extra.len);
	ck_assert_uint_eq(a->nlist, b->nlist);
	n = a->type == MSG_INVITE ? a->nlist : 2 * a->nlist;
	for (i = 0; i < n; i++) {
		ck_assert_uint_eq(a->list[i].len, b->list[i].len);
		ck_assert_int_eq(memcmp(a->list[i].p, b->list[i].p,
		    a->list[i].len), 0);
	}
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

/* The proto test suite. */
static Suite *
proto_suite(void)
{
	Suite	*s = suite_create("proto");
	TCase	*tr = tcase_create("request");
	TCase	*tp = tcase_create("reply");
	TCase	*te = tcase_create("encode");

	tcase_add_test(tr, test_req_each_type);
	tcase_add_test(tr, test_parser_store);
	tcase_add_loop_test(tr, test_req_valid, 0,
	    (int)(sizeof(req_valid) / sizeof(req_valid[0])));
	tcase_add_loop_test(tr, test_req_invalid, 0,
	    (int)(sizeof(req_invalid) / sizeof(req_invalid[0])));
	tcase_add_test(tr, test_depth);
	tcase_add_test(tr, test_escapes);
	tcase_add_test(tr, test_unknown_keys);
	tcase_add_test(tr, test_limits);
	tcase_add_test(tr, test_big);
	suite_add_tcase(s, tr);

	tcase_add_test(tp, test_reply_each_type);
	tcase_add_test(tp, test_reply_each_text);
	tcase_add_loop_test(tp, test_reply_invalid, 0,
	    (int)(sizeof(reply_invalid) / sizeof(reply_invalid[0])));
	suite_add_tcase(s, tp);

	tcase_add_loop_test(te, test_examples_roundtrip, 0,
	    (int)(sizeof(examples) / sizeof(examples[0])));
	tcase_add_test(te, test_encode_built);
	tcase_add_test(te, test_encode_escapes);
	tcase_add_test(te, test_roundtrip_all);
	tcase_add_test(te, test_names);
	tcase_add_test(te, test_peek);
	suite_add_tcase(s, te);
	return s;
}

/* Runs the suite; exits non-zero on failure. */
CHECK_MAIN(proto_suite)
