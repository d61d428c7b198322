/*
 * check_peer.c: unit tests of the peer layer (peer.h): a read's frames
 * taken from the scratch itself, and over a socketpair frames cut from
 * reads of every size, a role that holds its frames for
 * later, a frame its dispatcher puts back (peer_again), and the drops with their reasons: another version, a frame
 * over the limit, a frame the dispatcher refuses, the end of the stream.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "control_wire.h"
#include "ipc.h"
#include "peer.h"
#include "check_run.h"

#define NFRAMES		3

/* What the test role saw. */
static struct {
	uint16_t	 types[16];
	size_t		 lens[16];
	size_t		 n;		/* frames dispatched */
	const char	*dropped;	/* the reason, or NULL */
	int		 hold_after;	/* HOLD once n reaches it; 0: never */
	uint16_t	 refuse;	/* the type the dispatcher refuses */
	uint16_t	 again;		/* the type it puts back, */
	int		 again_left;	/* this many times */
	int		 holding;	/* HOLD: it put one back */
} seen;

/* Records one frame; refuses seen.refuse. */
static const char *
t_dispatch(struct peer *p, const void *hdr, const char *payload)
{
	struct wire_hdr	h;

	(void)p;
	(void)payload;
	memcpy(&h, hdr, sizeof(h));
	if (h.type == seen.refuse)
		return "refused by the role";
	if (h.type == seen.again && seen.again_left > 0) {
		seen.again_left--;
		seen.holding = 1;
		return peer_again;
	}
	ck_assert_uint_lt(seen.n, 16);
	seen.types[seen.n] = h.type;
	seen.lens[seen.n++] = h.len;
	return NULL;
}

/* Records the drop's reason. */
static void
t_drop(struct peer *p, const char *why)
{
	(void)p;
	seen.dropped = why;
}

/* Holds the frames once hold_after ran, as a paused sender. */
static enum peer_want
t_want(const struct peer *p)
{
	(void)p;
	if (seen.dropped != NULL)
		return PEER_GONE;
	if (seen.holding)
		return PEER_HOLD;
	if (seen.hold_after != 0 && seen.n >= (size_t)seen.hold_after)
		return PEER_HOLD;
	return PEER_MORE;
}

static const struct peer_role t_role = {
	sizeof(struct ipc_hdr), IPC_VERSION, "another version",
	"too long", t_dispatch, t_drop, t_want, NULL
};

static const struct peer_role t_ctl_role = {
	sizeof(struct ctl_hdr), CTL_VERSION, "another control version",
	"control frame too long", t_dispatch, t_drop, NULL, NULL
};

/* A socketpair whose reading end, sv[0], does not block. */
static void
t_pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
}

/* A peer of role r on a new socketpair, b written to its other end. */
static void
t_open(struct peer *p, const struct peer_role *r, uint32_t max, int sv[2],
    const struct buf *b)
{
	t_pair(sv);
	peer_init(p, r, NULL, sv[0], max);
	ck_assert_int_eq(write(sv[1], buf_head(b), buf_pending(b)),
	    (ssize_t)buf_pending(b));
}

/* Three frames of 0, 5 and 300 payload bytes. */
static void
t_frames(struct buf *b)
{
	char	big[300];

	memset(big, 'x', sizeof(big));
	buf_init(b);
	ipc_put(b, 0x0101, 0, NULL, 0);
	ipc_put(b, 0x0102, 0, "hello", 5);
	ipc_put(b, 0x0103, 0, big, sizeof(big));
}

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
	src = peer_feed(&keep, &view, scratch, cut);
	ck_assert_ptr_eq(src, &view);
	ck_assert_int_eq(ipc_get(src, &h, &p), 1);
	ck_assert_ptr_eq(p, scratch + sizeof(struct ipc_hdr));
	ck_assert_int_eq(ipc_get(src, &h, &p), 0);
	peer_keep_rest(&keep, src);
	ck_assert_uint_eq(buf_pending(&keep), 6);

	/* The scratch is reused: the kept bytes must not point into it. */
	memset(scratch, 0, sizeof(scratch));
	memcpy(scratch, buf_head(&wire) + cut, buf_pending(&wire) - cut);
	src = peer_feed(&keep, &view, scratch, buf_pending(&wire) - cut);
	ck_assert_ptr_eq(src, &keep);
	ck_assert_int_eq(ipc_get(src, &h, &p), 1);
	ck_assert_uint_eq(h.len, 4);
	ck_assert_int_eq(memcmp(p, "two\n", 4), 0);
	peer_keep_rest(&keep, src);
	ck_assert_uint_eq(buf_pending(&keep), 0);

	/* End of input: only what keep holds is left to run. */
	src = peer_feed(&keep, &view, scratch, 0);
	ck_assert_ptr_eq(src, &keep);
	ck_assert_int_eq(ipc_get(src, &h, &p), 0);
	buf_free(&wire);
	buf_free(&keep);
}
END_TEST

START_TEST(test_reads_of_every_size)
{
	struct buf	 b;
	struct peer	 p;
	char		 scratch[64];
	size_t		 step, off, k;
	int		 sv[2];

	t_frames(&b);
	for (step = 1; step <= sizeof(scratch); step++) {
		memset(&seen, 0, sizeof(seen));
		t_pair(sv);
		peer_init(&p, &t_role, NULL, sv[0], IPC_MAX_PAYLOAD);
		for (off = 0; off < buf_pending(&b); off += k) {
			k = buf_pending(&b) - off < step ?
			    buf_pending(&b) - off : step;
			ck_assert_int_eq(write(sv[1], buf_head(&b) + off, k),
			    (ssize_t)k);
			ck_assert_int_eq(peer_read(&p, scratch, step), 1);
		}
		ck_assert_int_eq(peer_read(&p, scratch, step), 0);
		ck_assert_uint_eq(seen.n, NFRAMES);
		ck_assert_uint_eq(seen.types[0], 0x0101);
		ck_assert_uint_eq(seen.lens[1], 5);
		ck_assert_uint_eq(seen.lens[2], 300);
		ck_assert_uint_eq(buf_pending(&p.in), 0);
		ck_assert_ptr_null(seen.dropped);
		close(sv[1]);
		ck_assert_int_eq(peer_read(&p, scratch, step), -1);
		ck_assert_int_eq(errno, 0);
		close(sv[0]);
		buf_free(&p.in);
	}
	buf_free(&b);
}
END_TEST

/*
 * Sends b's three frames to a fresh peer and reads them once, with seen
 * set to stop after the first: the two others wait, whole, in the
 * peer's own input.
 */
static void
t_read_first(struct peer *p, int sv[2], const struct buf *b)
{
	char	scratch[1024];

	t_open(p, &t_role, IPC_MAX_PAYLOAD, sv, b);
	ck_assert_int_eq(peer_read(p, scratch, sizeof(scratch)), 1);
	ck_assert_uint_eq(seen.n, 1);
	ck_assert_ptr_null(seen.dropped);
	ck_assert_uint_eq(buf_pending(&p->in), buf_pending(b) -
	    sizeof(struct ipc_hdr));
}

/* Closes what t_read_first opened. */
static void
t_close(struct peer *p, int sv[2], struct buf *b)
{
	close(sv[0]);
	close(sv[1]);
	buf_free(&p->in);
	buf_free(b);
}

START_TEST(test_hold_then_resume)
{
	struct buf	 b;
	struct peer	 p;
	int		 sv[2];

	t_frames(&b);
	memset(&seen, 0, sizeof(seen));
	seen.hold_after = 1;
	t_read_first(&p, sv, &b);
	seen.hold_after = 0;
	peer_run(&p, &p.in);
	ck_assert_uint_eq(seen.n, NFRAMES);
	ck_assert_uint_eq(buf_pending(&p.in), 0);
	t_close(&p, sv, &b);
}
END_TEST

/*
 * A frame the dispatcher puts back stays whole, with those after it:
 * from the scratch of a read, and from the peer's own input; it runs
 * first when the peer is run again.
 */
START_TEST(test_again_puts_the_frame_back)
{
	struct buf	 b;
	struct peer	 p;
	int		 sv[2];

	t_frames(&b);
	memset(&seen, 0, sizeof(seen));
	seen.again = 0x0102;
	seen.again_left = 1;
	t_read_first(&p, sv, &b);
	/* Again, the last frame, now out of the peer's own input. */
	seen.holding = 0;
	seen.again = 0x0103;
	seen.again_left = 1;
	peer_run(&p, &p.in);
	ck_assert_uint_eq(seen.n, 2);
	ck_assert_uint_eq(seen.types[1], 0x0102);
	ck_assert_uint_eq(seen.lens[1], 5);
	ck_assert_uint_eq(buf_pending(&p.in), sizeof(struct ipc_hdr) + 300);
	seen.holding = 0;
	peer_run(&p, &p.in);
	ck_assert_uint_eq(seen.n, NFRAMES);
	ck_assert_uint_eq(seen.types[2], 0x0103);
	ck_assert_uint_eq(seen.lens[2], 300);
	ck_assert_uint_eq(buf_pending(&p.in), 0);
	t_close(&p, sv, &b);
}
END_TEST

/*
 * Sends b to a fresh peer of role r (max payload) and reads it once,
 * with what seen holds so far.
 */
static void
t_send(const struct peer_role *r, uint32_t max, struct buf *b)
{
	struct peer	p;
	char		scratch[1024];
	int		sv[2];

	t_open(&p, r, max, sv, b);
	ck_assert_int_eq(peer_read(&p, scratch, sizeof(scratch)), 1);
	/* A dropped peer keeps nothing of what came. */
	if (seen.dropped != NULL)
		ck_assert_uint_eq(buf_pending(&p.in), 0);
	close(sv[0]);
	close(sv[1]);
	buf_free(&p.in);
}

START_TEST(test_drops_with_reason)
{
	static const struct {
		uint16_t	 version;	/* of the first frame */
		uint32_t	 max;
		uint16_t	 refuse;
		const char	*why;
		size_t		 ran;		/* frames run before the drop */
	} cases[] = {
		{ IPC_VERSION + 1, IPC_MAX_PAYLOAD, 0, "another version", 0 },
		{ IPC_VERSION, 299, 0, "too long", 2 },
		{ IPC_VERSION, IPC_MAX_PAYLOAD, 0x0102, "refused by the role",
		    1 },
	};
	struct buf	b;
	struct ipc_hdr	h;
	size_t		i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		t_frames(&b);
		memcpy(&h, buf_head(&b), sizeof(h));
		h.version = cases[i].version;
		memcpy(buf_head(&b), &h, sizeof(h));
		memset(&seen, 0, sizeof(seen));
		seen.refuse = cases[i].refuse;
		t_send(&t_role, cases[i].max, &b);
		ck_assert_str_eq(seen.dropped, cases[i].why);
		ck_assert_uint_eq(seen.n, cases[i].ran);
		buf_free(&b);
	}
}
END_TEST

START_TEST(test_control_header)
{
	struct buf	b;
	struct ctl_hdr	h;
	struct str	w[2] = { { "show", 4 }, { "users", 5 } };

	buf_init(&b);
	ctl_put(&b, CTL_REQUEST, w, 2);
	ctl_put(&b, CTL_REQUEST, w, 1);
	memset(&seen, 0, sizeof(seen));
	t_send(&t_ctl_role, CTL_MAX_REQUEST, &b);
	ck_assert_uint_eq(seen.n, 2);
	ck_assert_uint_eq(seen.types[1], CTL_REQUEST);
	ck_assert_ptr_null(seen.dropped);
	/* The control socket's version is its own. */
	memcpy(&h, buf_head(&b), sizeof(h));
	ck_assert_uint_eq(h.version, CTL_VERSION);
	buf_reset(&b);
	ipc_put(&b, CTL_REQUEST, 0, NULL, 0);
	memset(&seen, 0, sizeof(seen));
	t_send(&t_ctl_role, CTL_MAX_REQUEST, &b);
	ck_assert_str_eq(seen.dropped, "another control version");
	buf_free(&b);
}
END_TEST

CHECK_SUITE(peer_suite, "peer", "channel",
    CK_TEST(test_feed_from_scratch), CK_TEST(test_reads_of_every_size),
    CK_TEST(test_hold_then_resume), CK_TEST(test_again_puts_the_frame_back),
    CK_TEST(test_drops_with_reason),
    CK_TEST(test_control_header))

CHECK_MAIN(peer_suite)
