/*
 * check_ipc.c: unit tests of the inter-process frames: building,
 * splitting across reads, and rejecting malformed frames.
 */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "ipc.h"
#include "shm.h"
#include "talknetd.h"
#include "check_run.h"

/* Builds a request frame of strings. */
static void
put_request(struct buf *b, enum msg_type t, const char **strs, size_t n)
{
	size_t	hdr, i;

	hdr = ipc_begin(b, (uint16_t)(IPC_REQ_BASE + t), 0);
	for (i = 0; i < n; i++)
		ipc_put_str(b, strs[i], strlen(strs[i]));
	ipc_end(b, hdr);
}

START_TEST(test_roundtrip)
{
	struct buf	 b;
	struct ipc_hdr	 h;
	const char	*p;
	const char	*strs[] = { "Luis", "Hi Luis" };
	struct str	 got[4];

	buf_init(&b);
	put_request(&b, MSG_TEXT, strs, 2);
	ck_assert_int_eq(ipc_get(&b, &h, &p), 1);
	ck_assert_uint_eq(h.version, IPC_VERSION);
	ck_assert_uint_eq(h.type, IPC_REQ_BASE + MSG_TEXT);
	ck_assert_int_eq(ipc_get_strs(p, h.len, got, 4), 2);
	ck_assert_uint_eq(got[0].len, 4);
	ck_assert(memcmp(got[0].p, "Luis", 4) == 0);
	ck_assert_uint_eq(got[1].len, 7);
	ck_assert(memcmp(got[1].p, "Hi Luis", 7) == 0);
	ck_assert_int_eq(ipc_check_request(h.type, 2), 0);
	ck_assert_int_eq(ipc_request_msg(h.type), MSG_TEXT);
	ck_assert_int_eq(ipc_get(&b, &h, &p), 0);
	buf_free(&b);
}
END_TEST

START_TEST(test_split_every_byte)
{
	struct buf	 whole, in;
	struct ipc_hdr	 h;
	const char	*p;
	const char	*strs[] = { "Room 1", "a", "bb", "ccc" };
	size_t		 i, cut, frames;

	buf_init(&whole);
	put_request(&whole, MSG_INVITE, strs, 4);
	ipc_put(&whole, IPC_LINE, 7, "{\"type\":\"USERS\"}\n", 17);
	for (cut = 0; cut <= buf_pending(&whole); cut++) {
		buf_init(&in);
		frames = 0;
		for (i = 0; i < buf_pending(&whole); i++) {
			ck_assert_int_eq(buf_append(&in, whole.data + i, 1), 0);
			if (i + 1 < cut)
				continue;
			while (ipc_get(&in, &h, &p) == 1)
				frames++;
		}
		while (ipc_get(&in, &h, &p) == 1)
			frames++;
		ck_assert_uint_eq(frames, 2);
		ck_assert_uint_eq(buf_pending(&in), 0);
		buf_free(&in);
	}
	buf_free(&whole);
}
END_TEST

START_TEST(test_bad_version)
{
	struct buf	 b;
	struct ipc_hdr	 h;
	const char	*p;

	buf_init(&b);
	ipc_put(&b, IPC_CLOSE, 0, NULL, 0);
	((struct ipc_hdr *)(void *)b.data)->version = IPC_VERSION + 1;
	ck_assert_int_eq(ipc_get(&b, &h, &p), -1);
	buf_free(&b);
}
END_TEST

START_TEST(test_oversized)
{
	struct buf	 b;
	struct ipc_hdr	 h, *hp;
	const char	*p;

	buf_init(&b);
	ipc_put(&b, IPC_LINE, 0, "x\n", 2);
	hp = (struct ipc_hdr *)(void *)b.data;
	hp->len = IPC_MAX_PAYLOAD + 1;
	ck_assert_int_eq(ipc_get(&b, &h, &p), -1);
	buf_free(&b);
}
END_TEST

START_TEST(test_strs_malformed)
{
	char		pay[16];
	uint32_t	n;
	struct str	s[2];

	/* A length that runs past the end. */
	n = 10;
	memcpy(pay, &n, 4);
	memcpy(pay + 4, "abc", 3);
	ck_assert_int_eq(ipc_get_strs(pay, 7, s, 2), -1);
	/* A truncated length prefix. */
	ck_assert_int_eq(ipc_get_strs(pay, 3, s, 2), -1);
	/* Leftover bytes after a string. */
	n = 3;
	memcpy(pay, &n, 4);
	memcpy(pay + 4, "abcd", 4);
	ck_assert_int_eq(ipc_get_strs(pay, 8, s, 2), -1);
	/* Exactly one string, and an empty payload. */
	ck_assert_int_eq(ipc_get_strs(pay, 7, s, 2), 1);
	ck_assert_int_eq(ipc_get_strs(pay, 0, s, 2), 0);
}
END_TEST

START_TEST(test_request_counts)
{
	ck_assert_int_eq(ipc_check_request(IPC_REQ_BASE + MSG_IDENTIFY, 1), 0);
	ck_assert_int_eq(ipc_check_request(IPC_REQ_BASE + MSG_IDENTIFY, 0), -1);
	ck_assert_int_eq(ipc_check_request(IPC_REQ_BASE + MSG_IDENTIFY, 2), -1);
	ck_assert_int_eq(ipc_check_request(IPC_REQ_BASE + MSG_USERS, 0), 0);
	ck_assert_int_eq(ipc_check_request(IPC_REQ_BASE + MSG_USERS, 1), -1);
	ck_assert_int_eq(ipc_check_request(IPC_REQ_BASE + MSG_INVITE, 1), -1);
	ck_assert_int_eq(ipc_check_request(IPC_REQ_BASE + MSG_INVITE, 50), 0);
	ck_assert_int_eq(ipc_check_request(IPC_REQ_BASE + MSG_TEXT, 2), 0);
	ck_assert_int_eq(ipc_check_request(IPC_REQ_BASE + MSG_ROOM_TEXT, 1),
	    -1);
	/* Server-only and unknown types are never requests. */
	ck_assert_int_eq(ipc_check_request(IPC_REQ_BASE + MSG_RESPONSE, 0),
	    -1);
	ck_assert_int_eq(ipc_check_request(IPC_LINE, 0), -1);
	ck_assert_int_eq(ipc_check_request(IPC_HELLO, 1), -1);
	ck_assert_int_eq(ipc_request_msg(IPC_REQ_BASE), MSG_NONE);
	ck_assert_int_eq(ipc_request_msg(0xffff), MSG_NONE);
}
END_TEST

START_TEST(test_compaction_keeps_frame)
{
	struct buf	 b;
	struct ipc_hdr	 h;
	const char	*p;
	char		 big[5000];
	size_t		 hdr;
	struct str	 s[1];

	/* A frame built after the buffer drained part of its front. */
	buf_init(&b);
	memset(big, 'x', sizeof(big));
	ipc_put(&b, IPC_LINE, 0, big, 100);
	ck_assert_int_eq(ipc_get(&b, &h, &p), 1);
	ipc_put(&b, IPC_LINE, 0, big, 10);
	buf_drain(&b, 5);
	hdr = ipc_begin(&b, IPC_REQ_BASE + MSG_PUBLIC_TEXT, 0);
	ipc_put_str(&b, big, sizeof(big));
	ipc_end(&b, hdr);
	buf_drain(&b, sizeof(struct ipc_hdr) + 10 - 5);
	ck_assert_int_eq(ipc_get(&b, &h, &p), 1);
	ck_assert_uint_eq(h.len, 4 + sizeof(big));
	ck_assert_int_eq(ipc_get_strs(p, h.len, s, 1), 1);
	ck_assert_uint_eq(s[0].len, sizeof(big));
	buf_free(&b);
}
END_TEST

/*
 * Reads into a reused scratch: whole frames run from the scratch itself,
 * only a partial frame is kept, and the next read completes it.
 */
START_TEST(test_feed_from_scratch)
{
	struct buf	 wire, keep, view, *src;
	struct ipc_hdr	 h;
	const char	*p;
	char		 scratch[256];
	size_t		 cut;

	buf_init(&wire);
	buf_init(&keep);
	ipc_put(&wire, IPC_LINE, 0, "one\n", 4);
	ipc_put(&wire, IPC_LINE, 0, "two\n", 4);
	cut = sizeof(struct ipc_hdr) + 4 + 6;	/* mid-way into "two" */

	memcpy(scratch, buf_head(&wire), cut);
	src = ipc_feed(&keep, &view, scratch, cut);
	ck_assert_ptr_eq(src, &view);
	ck_assert_int_eq(ipc_get(src, &h, &p), 1);
	ck_assert_ptr_eq(p, scratch + sizeof(struct ipc_hdr));
	ck_assert_int_eq(ipc_get(src, &h, &p), 0);
	ipc_keep_rest(&keep, src);
	ck_assert_uint_eq(buf_pending(&keep), 6);

	/* The scratch is reused: the kept bytes must not point into it. */
	memset(scratch, 0, sizeof(scratch));
	memcpy(scratch, buf_head(&wire) + cut, buf_pending(&wire) - cut);
	src = ipc_feed(&keep, &view, scratch, buf_pending(&wire) - cut);
	ck_assert_ptr_eq(src, &keep);
	ck_assert_int_eq(ipc_get(src, &h, &p), 1);
	ck_assert_uint_eq(h.len, 4);
	ck_assert_int_eq(memcmp(p, "two\n", 4), 0);
	ipc_keep_rest(&keep, src);
	ck_assert_uint_eq(buf_pending(&keep), 0);

	/* End of input: only what keep holds is left to run. */
	src = ipc_feed(&keep, &view, scratch, 0);
	ck_assert_ptr_eq(src, &keep);
	ck_assert_int_eq(ipc_get(src, &h, &p), 0);
	buf_free(&wire);
	buf_free(&keep);
}
END_TEST

START_TEST(test_max_frame)
{
	struct buf	 b;
	struct ipc_hdr	 h;
	const char	*p;
	char		 big[100];

	/* A header over the peer's limit fails before its payload comes. */
	buf_init(&b);
	memset(big, 'x', sizeof(big));
	ipc_put(&b, IPC_LINE, 0, big, sizeof(big));
	b.len = b.off + sizeof(struct ipc_hdr);
	ck_assert_int_eq(ipc_get_max(&b, 99, &h, &p), -1);
	ck_assert_int_eq(ipc_get_max(&b, 100, &h, &p), 0);
	b.len = b.off + sizeof(struct ipc_hdr) + sizeof(big);
	ck_assert_int_eq(ipc_get_max(&b, 100, &h, &p), 1);
	buf_free(&b);
}
END_TEST

START_TEST(test_check_args)
{
	struct str	a[3];

	a[0] = str_c("Luis");
	ck_assert_int_eq(ipc_check_args(MSG_IDENTIFY, a, 1, 8, 16), 1);
	a[0] = str_c("123456789");		/* 9 code points */
	ck_assert_int_eq(ipc_check_args(MSG_IDENTIFY, a, 1, 8, 16), 0);
	a[0] = str_c("a\tb");			/* a control character */
	ck_assert_int_eq(ipc_check_args(MSG_IDENTIFY, a, 1, 8, 16), 0);
	a[0] = str_c("AWAY");
	ck_assert_int_eq(ipc_check_args(MSG_STATUS, a, 1, 8, 16), 1);
	a[0] = str_c("SLEEPY");
	ck_assert_int_eq(ipc_check_args(MSG_STATUS, a, 1, 8, 16), 0);
	a[0] = str_c("Room 1");
	a[1] = str_c("\xff");			/* text that is not UTF-8 */
	ck_assert_int_eq(ipc_check_args(MSG_ROOM_TEXT, a, 2, 8, 16), 0);
	a[1] = str_c("Luis");
	a[2] = str_c("");			/* an empty invitee */
	ck_assert_int_eq(ipc_check_args(MSG_INVITE, a, 3, 8, 16), 0);
	a[2] = str_c("Ana");
	ck_assert_int_eq(ipc_check_args(MSG_INVITE, a, 3, 8, 16), 1);
	ck_assert_int_eq(ipc_check_args(MSG_RESPONSE, a, 0, 8, 16), 0);
}
END_TEST

/* The limits the master sends the hub: max-gather is checked too. */
START_TEST(test_check_limits)
{
	struct shm_live	l;

	memset(&l, 0, sizeof(l));
	l.max_line = 65536;
	l.max_queue = 1 << 20;
	l.rate_burst = 50;
	ck_assert_int_eq(ipc_check_limits(&l), 0);
	l.max_gather = CEIL_MAX_GATHER;
	ck_assert_int_eq(ipc_check_limits(&l), 0);
	l.max_gather = CEIL_MAX_GATHER + 1;
	ck_assert_int_eq(ipc_check_limits(&l), -1);
	l.max_gather = UINT32_MAX;
	ck_assert_int_eq(ipc_check_limits(&l), -1);
	l.max_gather = 0;
	l.log_level = 4;
	ck_assert_int_eq(ipc_check_limits(&l), -1);
}
END_TEST

/* Collects the IPC tests. */
static Suite *
ipc_suite(void)
{
	Suite	*s = suite_create("ipc");
	TCase	*tc = tcase_create("frames");

	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_split_every_byte);
	tcase_add_test(tc, test_bad_version);
	tcase_add_test(tc, test_oversized);
	tcase_add_test(tc, test_strs_malformed);
	tcase_add_test(tc, test_request_counts);
	tcase_add_test(tc, test_compaction_keeps_frame);
	tcase_add_test(tc, test_feed_from_scratch);
	tcase_add_test(tc, test_max_frame);
	tcase_add_test(tc, test_check_args);
	tcase_add_test(tc, test_check_limits);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(ipc_suite)
