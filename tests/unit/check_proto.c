/*
 * check_proto.c: unit tests for lib/proto.c: requests and escapes
 * (replies are in check_reply.c, encoding in check_encode.c).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "proto.h"
#include "check_proto.h"
#include "check_run.h"

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

/* A request of each type, each decoded. */
static const struct want req_types[] = {
	{ .line = "{\"type\":\"IDENTIFY\",\"username\":\"Kimberly\"}",
	    .type = MSG_IDENTIFY, .username = "Kimberly" },
	{ .line = "{\"type\":\"STATUS\",\"status\":\"AWAY\"}",
	    .type = MSG_STATUS, .st = STATUS_AWAY, .status = "AWAY" },
	{ .line = "{\"type\":\"STATUS\",\"status\":\"BUSY\"}",
	    .type = MSG_STATUS, .st = STATUS_BUSY, .status = "BUSY" },
	{ .line = "{\"type\":\"STATUS\",\"status\":\"ACTIVE\"}",
	    .type = MSG_STATUS, .st = STATUS_ACTIVE, .status = "ACTIVE" },
	{ .line = "{\"type\":\"USERS\"}", .type = MSG_USERS },
	{ .line = "{\"type\":\"TEXT\",\"username\":\"Luis\","
	    "\"text\":\"Hi Luis\"}",
	    .type = MSG_TEXT, .username = "Luis", .text = "Hi Luis" },
	{ .line = "{\"type\":\"PUBLIC_TEXT\",\"text\":\"Hello everyone!\"}",
	    .type = MSG_PUBLIC_TEXT, .text = "Hello everyone!" },
	{ .line = "{\"type\":\"NEW_ROOM\",\"roomname\":\"Room 1\"}",
	    .type = MSG_NEW_ROOM, .roomname = "Room 1" },
	{ .line = "{\"type\":\"INVITE\",\"roomname\":\"Room 1\","
	    "\"usernames\":[\"Luis\",\"Antonio\"]}",
	    .type = MSG_INVITE, .roomname = "Room 1", .nlist = 2,
	    .list = { "Luis", "Antonio" } },
	{ .line = "{\"type\":\"JOIN_ROOM\",\"roomname\":\"Room 1\"}",
	    .type = MSG_JOIN_ROOM, .roomname = "Room 1" },
	{ .line = "{\"type\":\"ROOM_USERS\",\"roomname\":\"Room 1\"}",
	    .type = MSG_ROOM_USERS, .roomname = "Room 1" },
	{ .line = "{\"type\":\"ROOM_TEXT\",\"roomname\":\"Room 1\","
	    "\"text\":\"Hello Room 1!\"}",
	    .type = MSG_ROOM_TEXT, .roomname = "Room 1",
	    .text = "Hello Room 1!" },
	{ .line = "{\"type\":\"LEAVE_ROOM\",\"roomname\":\"Room 1\"}",
	    .type = MSG_LEAVE_ROOM, .roomname = "Room 1" },
	{ .line = "{\"type\":\"DISCONNECT\"}", .type = MSG_DISCONNECT },
};

START_TEST(test_req_each_type)
{
	check_decodes_all(proto_parse_request, req_types, CHECK_N(req_types));
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
	check_refused(proto_parse_request, &req_invalid[_i], _i,
	    "{\"type\":\"USERS\"}");
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

/* The proto test suite. */
CHECK_SUITE(proto_suite, "proto", "request",
    CK_TEST(test_req_each_type), CK_TEST(test_parser_store),
    CK_LOOP(test_req_valid, req_valid),
    CK_LOOP(test_req_invalid, req_invalid), CK_TEST(test_depth),
    CK_TEST(test_escapes), CK_TEST(test_unknown_keys), CK_TEST(test_limits),
    CK_TEST(test_big))

/* Runs the suite; exits non-zero on failure. */
CHECK_MAIN(proto_suite)
