/*
 * check_reply.c: unit tests for lib/proto.c: the server lines a client
 * decodes.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "check_proto.h"
#include "check_run.h"

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

/* The reply tests. */
CHECK_SUITE(reply_suite, "reply", "reply",
    CK_TEST(test_reply_each_type), CK_TEST(test_reply_each_text),
    CK_LOOP(test_reply_invalid, reply_invalid))

/* Runs the suite; exits non-zero on failure. */
CHECK_MAIN(reply_suite)
