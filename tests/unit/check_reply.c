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

/* The answers and lists a client gets, each decoded. */
static const struct want reply_types[] = {
	{ .line = "{\"type\":\"RESPONSE\",\"operation\":\"IDENTIFY\","
	    "\"result\":\"SUCCESS\",\"extra\":\"Kimberly\"}",
	    .type = MSG_RESPONSE, .op = MSG_IDENTIFY, .res = RES_SUCCESS,
	    .operation = "IDENTIFY", .result = "SUCCESS", .has_extra = 1,
	    .extra = "Kimberly" },
	{ .line = "{\"type\":\"RESPONSE\",\"operation\":\"INVALID\","
	    "\"result\":\"NOT_IDENTIFIED\"}",
	    .type = MSG_RESPONSE, .op = MSG_NONE, .operation = "INVALID",
	    .res = RES_NOT_IDENTIFIED, .has_extra = 0 },
	{ .line = "{\"type\":\"RESPONSE\",\"operation\":\"NEW_ROOM\","
	    "\"result\":\"SOMETHING_NEW\",\"extra\":\"\"}",
	    .type = MSG_RESPONSE, .op = MSG_NEW_ROOM, .res = RES_NONE,
	    .result = "SOMETHING_NEW", .has_extra = 1, .extra = "" },
	{ .line = "{\"type\":\"RESPONSE\",\"operation\":\"FLY\","
	    "\"result\":\"INVALID\"}",
	    .type = MSG_RESPONSE, .op = MSG_NONE, .res = RES_INVALID },
	{ .line = "{\"type\":\"NEW_USER\",\"username\":\"Kimberly\"}",
	    .type = MSG_NEW_USER, .username = "Kimberly" },
	{ .line = "{\"type\":\"NEW_STATUS\",\"username\":\"Kimberly\","
	    "\"status\":\"BUSY\"}",
	    .type = MSG_NEW_STATUS, .username = "Kimberly", .st = STATUS_BUSY },
	{ .line = "{\"type\":\"NEW_STATUS\",\"username\":\"Kimberly\","
	    "\"status\":\"SLEEPING\"}",
	    .type = MSG_NEW_STATUS, .username = "Kimberly", .st = STATUS_ACTIVE,
	    .status = "SLEEPING" },
	{ .line = "{\"type\":\"USER_LIST\",\"users\":{\"Kimberly\":\"ACTIVE\","
	    "\"Luis\":\"AWAY\",\"Someone_long\":\"NAPPING\"}}",
	    .type = MSG_USER_LIST, .nlist = 3, .list = { "Kimberly", "ACTIVE",
	    "Luis", "AWAY", "Someone_long", "NAPPING" } },
	{ .line = "{\"type\":\"USER_LIST\",\"users\":{}}",
	    .type = MSG_USER_LIST, .nlist = 0 },
};

START_TEST(test_reply_each_type)
{
	check_decodes_all(proto_parse_reply, reply_types, CHECK_N(reply_types));
}
END_TEST

/* The texts and room notices a client gets, each decoded. */
static const struct want reply_texts[] = {
	{ .line = "{\"type\":\"TEXT_FROM\",\"username\":\"Kimberly\","
	    "\"text\":\"Hi Luis\"}",
	    .type = MSG_TEXT_FROM, .username = "Kimberly", .text = "Hi Luis" },
	{ .line = "{\"type\":\"PUBLIC_TEXT_FROM\",\"username\":\"Kimberly\","
	    "\"text\":\"Hello everyone!\"}",
	    .type = MSG_PUBLIC_TEXT_FROM, .username = "Kimberly",
	    .text = "Hello everyone!" },
	{ .line = "{\"type\":\"INVITATION\",\"username\":\"Kimberly\","
	    "\"roomname\":\"Room 1\"}",
	    .type = MSG_INVITATION, .username = "Kimberly",
	    .roomname = "Room 1" },
	{ .line = "{\"type\":\"JOINED_ROOM\",\"roomname\":\"Room 1\","
	    "\"username\":\"Luis\"}",
	    .type = MSG_JOINED_ROOM, .username = "Luis", .roomname = "Room 1" },
	{ .line = "{\"type\":\"ROOM_USER_LIST\",\"roomname\":\"Room 1\","
	    "\"users\":{\"Kimberly\":\"ACTIVE\",\"Luis\":\"AWAY\"}}",
	    .type = MSG_ROOM_USER_LIST, .roomname = "Room 1", .nlist = 2,
	    .list = { "Kimberly", "ACTIVE", "Luis", "AWAY" } },
	{ .line = "{\"type\":\"ROOM_TEXT_FROM\",\"roomname\":\"Room 1\","
	    "\"username\":\"Kimberly\",\"text\":\"Hello Room 1!\"}",
	    .type = MSG_ROOM_TEXT_FROM, .roomname = "Room 1",
	    .username = "Kimberly", .text = "Hello Room 1!" },
	{ .line = "{\"type\":\"LEFT_ROOM\",\"roomname\":\"Room 1\","
	    "\"username\":\"Luis\"}",
	    .type = MSG_LEFT_ROOM, .username = "Luis", .roomname = "Room 1" },
	{ .line = "{\"type\":\"DISCONNECTED\",\"username\":\"Luis\"}",
	    .type = MSG_DISCONNECTED, .username = "Luis" },
	/* Servers may allow longer names than the defaults. */
	{ .line = "{\"type\":\"NEW_USER\",\"username\":\"a_rather_long_name\"}",
	    .type = MSG_NEW_USER, .username = "a_rather_long_name" },
};

START_TEST(test_reply_each_text)
{
	check_decodes_all(proto_parse_reply, reply_texts, CHECK_N(reply_texts));
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
	check_refused(proto_parse_reply, &reply_invalid[_i], _i,
	    "{\"type\":\"NEW_USER\",\"username\":\"a\"}");
}
END_TEST

/* The reply tests. */
CHECK_SUITE(reply_suite, "reply", "reply",
    CK_TEST(test_reply_each_type), CK_TEST(test_reply_each_text),
    CK_LOOP(test_reply_invalid, reply_invalid))

/* Runs the suite; exits non-zero on failure. */
CHECK_MAIN(reply_suite)
