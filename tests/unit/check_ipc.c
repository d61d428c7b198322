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
#include "request.h"
#include "shm.h"
#include "talknetd.h"
#include "check_run.h"

/* Builds a request frame of strings. */
static void
put_request(struct buf *b, enum msg_type t, const char **strs, size_t n)
{
	size_t	hdr, i;

	hdr = ipc_begin(b, req_wire(t), 0);
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
	ck_assert_uint_eq(h.type, req_wire(MSG_TEXT));
	ck_assert_int_eq(ipc_get_strs(p, h.len, got, 4), 2);
	ck_assert_uint_eq(got[0].len, 4);
	ck_assert(memcmp(got[0].p, "Luis", 4) == 0);
	ck_assert_uint_eq(got[1].len, 7);
	ck_assert(memcmp(got[1].p, "Hi Luis", 7) == 0);
	ck_assert(req_nstrs_ok(req_of_wire(h.type), 2));
	ck_assert_int_eq(req_of_wire(h.type), MSG_TEXT);
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

/* Whether frame type w may carry n strings. */
static int
counts_ok(uint32_t w, long n)
{
	return req_nstrs_ok(req_of_wire(w), n);
}

START_TEST(test_request_counts)
{
	int	t;

	ck_assert(counts_ok(req_wire(MSG_IDENTIFY), 1));
	ck_assert(!counts_ok(req_wire(MSG_IDENTIFY), 0));
	ck_assert(!counts_ok(req_wire(MSG_IDENTIFY), 2));
	ck_assert(counts_ok(req_wire(MSG_USERS), 0));
	ck_assert(!counts_ok(req_wire(MSG_USERS), 1));
	ck_assert(!counts_ok(req_wire(MSG_INVITE), 1));
	ck_assert(counts_ok(req_wire(MSG_INVITE), 50));
	ck_assert(counts_ok(req_wire(MSG_TEXT), 2));
	ck_assert(!counts_ok(req_wire(MSG_ROOM_TEXT), 1));
	/* Server-only and unknown types are never requests. */
	ck_assert(!counts_ok(0x0100 + MSG_RESPONSE, 0));
	ck_assert(!counts_ok(IPC_LINE, 0));
	ck_assert(!counts_ok(IPC_HELLO, 1));
	ck_assert_int_eq(req_of_wire(0x0100), MSG_NONE);
	ck_assert_int_eq(req_of_wire(0xffff), MSG_NONE);
	ck_assert_ptr_null(req_row(MSG_RESPONSE));
	/* The numbers on the wire are those of IPC version 2. */
	for (t = MSG_REQUEST_FIRST; t <= MSG_REQUEST_LAST; t++) {
		ck_assert_uint_eq(req_wire((enum msg_type)t), 0x0100 + t);
		ck_assert_int_eq(req_of_wire(0x0100 + (uint32_t)t), t);
	}
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
	hdr = ipc_begin(&b, req_wire(MSG_PUBLIC_TEXT), 0);
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
	struct str		a[3];
	struct proto_limits	lim = { 8, 16 };

	a[0] = str_c("Luis");
	ck_assert_int_eq(req_args_valid(MSG_IDENTIFY, a, 1, &lim), 1);
	a[0] = str_c("123456789");		/* 9 code points */
	ck_assert_int_eq(req_args_valid(MSG_IDENTIFY, a, 1, &lim), 0);
	a[0] = str_c("a\tb");			/* a control character */
	ck_assert_int_eq(req_args_valid(MSG_IDENTIFY, a, 1, &lim), 0);
	a[0] = str_c("AWAY");
	ck_assert_int_eq(req_args_valid(MSG_STATUS, a, 1, &lim), 1);
	a[0] = str_c("SLEEPY");
	ck_assert_int_eq(req_args_valid(MSG_STATUS, a, 1, &lim), 0);
	a[0] = str_c("Room 1");
	a[1] = str_c("\xff");			/* text that is not UTF-8 */
	ck_assert_int_eq(req_args_valid(MSG_ROOM_TEXT, a, 2, &lim), 0);
	a[1] = str_c("Luis");
	a[2] = str_c("");			/* an empty invitee */
	ck_assert_int_eq(req_args_valid(MSG_INVITE, a, 3, &lim), 0);
	a[2] = str_c("Ana");
	ck_assert_int_eq(req_args_valid(MSG_INVITE, a, 3, &lim), 1);
	ck_assert_int_eq(req_args_valid(MSG_RESPONSE, a, 0, &lim), 0);
}
END_TEST

/* A request frame decodes into the fields its row names. */
START_TEST(test_get_request)
{
	struct buf		 b;
	struct ipc_hdr		 h;
	struct msg		 m;
	struct proto_limits	 lim = { 8, 16 };
	struct str		*args = NULL;
	size_t			 nargs = 0;
	const char		*p;
	const char		*inv[] = { "Room 1", "Ana", "Luis" };
	const char		*st[] = { "BUSY" };
	const char		*bad[] = { "Room 1", "123456789" };

	buf_init(&b);
	put_request(&b, MSG_INVITE, inv, 3);
	put_request(&b, MSG_STATUS, st, 1);
	put_request(&b, MSG_INVITE, bad, 2);
	ck_assert_int_eq(ipc_get(&b, &h, &p), 1);
	ck_assert_ptr_null(ipc_get_request(&h, p, &lim, &args, &nargs, &m));
	ck_assert_int_eq(m.type, MSG_INVITE);
	ck_assert(memcmp(m.roomname.p, "Room 1", 6) == 0);
	ck_assert_uint_eq(m.nlist, 2);
	ck_assert(memcmp(m.list[1].p, "Luis", 4) == 0);
	ck_assert_int_eq(ipc_get(&b, &h, &p), 1);
	ck_assert_ptr_null(ipc_get_request(&h, p, &lim, &args, &nargs, &m));
	ck_assert_int_eq(m.st, STATUS_BUSY);
	ck_assert_int_eq(ipc_get(&b, &h, &p), 1);
	ck_assert_ptr_nonnull(ipc_get_request(&h, p, &lim, &args, &nargs,
	    &m));
	free(args);
	buf_free(&b);
}
END_TEST

/* The hub's checks of order: seq, DISCONNECT last, IDENTIFY first. */
START_TEST(test_check_order)
{
	struct ipc_chan	ch;
	struct msg	m;
	enum ipc_step	step;

	memset(&ch, 0, sizeof(ch));
	memset(&m, 0, sizeof(m));
	m.type = MSG_USERS;
	ck_assert_ptr_nonnull(ipc_check_order(&ch, 1, &m, &step));
	m.type = MSG_IDENTIFY;
	m.username = str_c("Ana");
	ck_assert_ptr_null(ipc_check_order(&ch, 1, &m, &step));
	ck_assert_int_eq(step, IPC_STEP_RUN);
	ck_assert_ptr_nonnull(ipc_check_order(&ch, 2, &m, &step));
	ch.identified = 1;
	ch.last_seq = 1;
	ch.name = str_c("Ana");
	ck_assert_ptr_null(ipc_check_order(&ch, 1, &m, &step));
	ck_assert_int_eq(step, IPC_STEP_SKIP);
	ck_assert_ptr_null(ipc_check_order(&ch, 2, &m, &step));
	ck_assert_int_eq(step, IPC_STEP_AGAIN);
	ch.name = str_c("Bob");
	ck_assert_ptr_nonnull(ipc_check_order(&ch, 2, &m, &step));
	ch.parted = 1;
	m.type = MSG_USERS;
	ck_assert_ptr_nonnull(ipc_check_order(&ch, 2, &m, &step));
}
END_TEST

/*
 * The limits the master sends the hub: max-gather and the pacing rate
 * and window are checked too.
 */
START_TEST(test_check_limits)
{
	struct shm_live	l;

	memset(&l, 0, sizeof(l));
	l.max_line = 65536;
	l.max_queue = 1 << 20;
	l.rate_burst = 50;
	l.pace_min_rate = 65536;
	l.pace_window_ms = 1000;
	ck_assert_int_eq(ipc_check_limits(&l), 0);
	l.pace_min_rate = 1023;
	ck_assert_int_eq(ipc_check_limits(&l), -1);
	l.pace_min_rate = (uint64_t)1 << 30;
	ck_assert_int_eq(ipc_check_limits(&l), 0);
	l.pace_min_rate = UINT64_MAX;
	ck_assert_int_eq(ipc_check_limits(&l), -1);
	l.pace_min_rate = 65536;
	l.pace_window_ms = 99;
	ck_assert_int_eq(ipc_check_limits(&l), -1);
	l.pace_window_ms = 60001;
	ck_assert_int_eq(ipc_check_limits(&l), -1);
	l.pace_window_ms = 1000;
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

CHECK_SUITE(ipc_suite, "ipc", "frames",
    CK_TEST(test_roundtrip), CK_TEST(test_split_every_byte),
    CK_TEST(test_bad_version), CK_TEST(test_oversized),
    CK_TEST(test_strs_malformed), CK_TEST(test_request_counts),
    CK_TEST(test_compaction_keeps_frame), CK_TEST(test_max_frame),
    CK_TEST(test_check_args), CK_TEST(test_get_request),
    CK_TEST(test_check_order), CK_TEST(test_check_limits))

CHECK_MAIN(ipc_suite)
