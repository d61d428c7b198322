/*
 * check_frame.c: unit tests for lib/frame.c.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "frame.h"

#define MAXLINES	32

/* The lines taken so far, joined with '|' for easy comparison. */
struct got {
	char	text[1024];
	size_t	len;
	int	nlines;
	int	toolong;
};

/* A mixed stream: "\n", "\r\n", "\0", empty frames, stray "\r". */
static const char stream[] =
    "{\"type\":\"USERS\"}\n"
    "two\r\n"
    "three\0"
    "\n\n\r\n\0\r\n"
    "four\r\r\n"
    "a\rb\n"
    "five\0"
    " six \n"
    "{\"type\":\"TEXT\",\"username\":\"\xc3\xa9\",\"text\":\"x\"}\r\n";
static const char expect[] =
    "{\"type\":\"USERS\"}|two|three|four\r|a\rb|five| six |"
    "{\"type\":\"TEXT\",\"username\":\"\xc3\xa9\",\"text\":\"x\"}|";

/* Takes every complete line out of f into g. */
static void
drain(struct framer *f, struct got *g)
{
	const char		*line;
	size_t			 len;
	enum frame_result	 r;

	while ((r = framer_next(f, &line, &len)) == FRAME_LINE) {
		ck_assert_uint_gt(len, 0);
		ck_assert_uint_lt(g->len + len + 1, sizeof(g->text));
		memcpy(g->text + g->len, line, len);
		g->len += len;
		g->text[g->len++] = '|';
		g->nlines++;
	}
	if (r == FRAME_TOOLONG)
		g->toolong = 1;
}

/* Checks that g holds exactly the expected lines. */
static void
check_got(const struct got *g)
{
	ck_assert_int_eq(g->toolong, 0);
	ck_assert_int_eq(g->nlines, 8);
	ck_assert_uint_eq(g->len, sizeof(expect) - 1);
	ck_assert_int_eq(memcmp(g->text, expect, g->len), 0);
}

START_TEST(test_whole)
{
	struct framer	f;
	struct got	g;

	memset(&g, 0, sizeof(g));
	framer_init(&f, 100);
	ck_assert_int_eq(framer_feed(&f, stream, sizeof(stream) - 1), 0);
	drain(&f, &g);
	check_got(&g);
	ck_assert_uint_eq(framer_pending(&f), 0);
	framer_free(&f);
}
END_TEST

/* Every split position of the stream gives the same lines. */
START_TEST(test_split_everywhere)
{
	struct framer	f;
	struct got	g;
	size_t		n = sizeof(stream) - 1, k;

	for (k = 0; k <= n; k++) {
		memset(&g, 0, sizeof(g));
		framer_init(&f, 100);
		ck_assert_int_eq(framer_feed(&f, stream, k), 0);
		drain(&f, &g);
		ck_assert_int_eq(framer_feed(&f, stream + k, n - k), 0);
		drain(&f, &g);
		check_got(&g);
		ck_assert_uint_eq(framer_pending(&f), 0);
		framer_free(&f);
	}
}
END_TEST

/* Fed one byte at a time, through framer_space and framer_commit. */
START_TEST(test_byte_at_a_time)
{
	struct framer	 f;
	struct got	 g;
	size_t		 n = sizeof(stream) - 1, k, avail;
	char		*p;

	memset(&g, 0, sizeof(g));
	framer_init(&f, 100);
	for (k = 0; k < n; k++) {
		p = framer_space(&f, 1, &avail);
		ck_assert_ptr_nonnull(p);
		ck_assert_uint_ge(avail, 1);
		*p = stream[k];
		framer_commit(&f, 1);
		drain(&f, &g);
		/* What is left is never searched again from its start. */
		ck_assert_uint_eq(f.scan, framer_pending(&f));
	}
	check_got(&g);
	framer_free(&f);
}
END_TEST

/* Pairs of split points give the same lines too. */
START_TEST(test_split_three)
{
	struct framer	f;
	struct got	g;
	size_t		n = sizeof(stream) - 1, a, b;

	for (a = 0; a <= n; a += 3)
		for (b = a; b <= n; b += 5) {
			memset(&g, 0, sizeof(g));
			framer_init(&f, 100);
			framer_feed(&f, stream, a);
			drain(&f, &g);
			framer_feed(&f, stream + a, b - a);
			drain(&f, &g);
			framer_feed(&f, stream + b, n - b);
			drain(&f, &g);
			check_got(&g);
			framer_free(&f);
		}
}
END_TEST

START_TEST(test_empty_frames)
{
	struct framer		 f;
	const char		*line;
	size_t			 len;

	framer_init(&f, 10);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_NONE);
	framer_feed(&f, "\n\r\n\0\n\0\0\r\n", 9);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_NONE);
	ck_assert_uint_eq(framer_pending(&f), 0);
	framer_feed(&f, "\r", 1);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_NONE);
	framer_feed(&f, "\nx\n", 3);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_LINE);
	ck_assert_uint_eq(len, 1);
	ck_assert_int_eq(line[0], 'x');
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_NONE);
	framer_free(&f);
}
END_TEST

/* Feeds s and returns the first framer_next result. */
static enum frame_result
feed_next(size_t max, const char *s, size_t n, size_t *len)
{
	struct framer		 f;
	const char		*line;
	enum frame_result	 r;

	framer_init(&f, max);
	framer_feed(&f, s, n);
	*len = 0;
	r = framer_next(&f, &line, len);
	framer_free(&f);
	return r;
}

START_TEST(test_limit_boundary)
{
	size_t	len;

	ck_assert_int_eq(feed_next(10, "0123456789\n", 11, &len), FRAME_LINE);
	ck_assert_uint_eq(len, 10);
	ck_assert_int_eq(feed_next(10, "0123456789\r\n", 12, &len),
	    FRAME_LINE);
	ck_assert_uint_eq(len, 10);
	ck_assert_int_eq(feed_next(10, "0123456789\0", 11, &len), FRAME_LINE);
	ck_assert_int_eq(feed_next(10, "0123456789", 10, &len), FRAME_NONE);
	ck_assert_int_eq(feed_next(10, "0123456789\r", 11, &len), FRAME_NONE);
	ck_assert_int_eq(feed_next(10, "01234567890\n", 12, &len),
	    FRAME_TOOLONG);
	ck_assert_int_eq(feed_next(10, "01234567890\r\n", 13, &len),
	    FRAME_TOOLONG);
	ck_assert_int_eq(feed_next(10, "01234567890", 11, &len),
	    FRAME_TOOLONG);
	ck_assert_int_eq(feed_next(10, "0123456789\rx", 12, &len),
	    FRAME_TOOLONG);
	ck_assert_int_eq(feed_next(10, "0123456789\r\r", 12, &len),
	    FRAME_TOOLONG);
	/* A "\r" before "\0" is part of the line. */
	ck_assert_int_eq(feed_next(10, "0123456789\r\0", 12, &len),
	    FRAME_TOOLONG);
	/* A long line after a short one in the same read. */
	ck_assert_int_eq(feed_next(10, "\nab\n", 4, &len), FRAME_LINE);
	ck_assert_uint_eq(len, 2);
}
END_TEST

/* Byte by byte: the error comes exactly when the limit is crossed. */
START_TEST(test_limit_bytewise)
{
	struct framer		 f;
	const char		*line;
	size_t			 len, k;

	framer_init(&f, 10);
	framer_feed(&f, "ab\n", 3);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_LINE);
	for (k = 0; k < 10; k++) {
		framer_feed(&f, "x", 1);
		ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_NONE);
	}
	framer_feed(&f, "\r", 1);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_NONE);
	framer_feed(&f, "\n", 1);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_LINE);
	ck_assert_uint_eq(len, 10);
	for (k = 0; k < 10; k++) {
		framer_feed(&f, "y", 1);
		ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_NONE);
	}
	framer_feed(&f, "y", 1);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_TOOLONG);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_TOOLONG);
	framer_free(&f);
}
END_TEST

/* An endless line never makes the buffer grow past one line and a read. */
START_TEST(test_endless_line)
{
	struct framer		 f;
	const char		*line;
	size_t			 len, avail, total = 0, want, max = 1000, n;
	char			*p;
	enum frame_result	 r = FRAME_NONE;
	int			 rounds;

	for (want = 1; want <= 4096; want *= 4) {
		framer_init(&f, max);
		total = 0;
		for (rounds = 0; rounds < 100000; rounds++) {
			p = framer_space(&f, want, &avail);
			ck_assert_ptr_nonnull(p);
			ck_assert_uint_ge(avail, 1);
			n = avail < want ? avail : want;
			memset(p, 'z', n);
			framer_commit(&f, n);
			total += n;
			ck_assert_uint_le(f.in.cap, max + want + 2 + 256);
			if ((r = framer_next(&f, &line, &len)) != FRAME_NONE)
				break;
			ck_assert_uint_le(total, max + 1);
		}
		ck_assert_int_eq(r, FRAME_TOOLONG);
		ck_assert_uint_gt(total, max);
		ck_assert_uint_le(total, max + 1 + want);
		framer_free(&f);
	}
}
END_TEST

/* Reads through framer_space reuse the buffer after lines are taken. */
START_TEST(test_space_reuse)
{
	struct framer		 f;
	const char		*line;
	size_t			 len, avail, cap = 0;
	char			*p;
	int			 i;

	framer_init(&f, 64);
	for (i = 0; i < 1000; i++) {
		p = framer_space(&f, 16, &avail);
		ck_assert_ptr_nonnull(p);
		ck_assert_uint_ge(avail, 16);
		memcpy(p, "hello\nwor", 9);
		framer_commit(&f, 9);
		ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_LINE);
		ck_assert_uint_eq(len, i == 0 ? 5 : 10);
		ck_assert_int_eq(memcmp(line, i == 0 ? "hello" : "worldhello",
		    len), 0);
		ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_NONE);
		framer_feed(&f, "ld", 2);
		if (i == 1)
			cap = f.in.cap;
		if (i > 1)
			ck_assert_uint_eq(f.in.cap, cap);
	}
	framer_free(&f);
}
END_TEST

/* A framer in a small store gives the same lines, and returns to it. */
START_TEST(test_store)
{
	struct framer	 f;
	struct got	 g;
	char		 store[8];
	const char	*line;
	size_t		 n = sizeof(stream) - 1, k, len;

	for (k = 0; k <= n; k++) {
		memset(&g, 0, sizeof(g));
		framer_init_store(&f, 100, store, sizeof(store));
		ck_assert_int_eq(framer_feed(&f, stream, k), 0);
		drain(&f, &g);
		ck_assert_int_eq(framer_feed(&f, stream + k, n - k), 0);
		drain(&f, &g);
		check_got(&g);
		framer_shrink(&f, 0);
		ck_assert_ptr_eq(f.in.data, store);
		framer_free(&f);
		ck_assert_ptr_eq(f.in.data, store);
	}
	/* Lines that fit never leave the store. */
	framer_init_store(&f, 100, store, sizeof(store));
	ck_assert_int_eq(framer_feed(&f, "ab\ncd", 5), 0);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_LINE);
	ck_assert_int_eq(framer_feed(&f, "efgh\n", 5), 0);
	ck_assert_ptr_eq(f.in.data, store);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_LINE);
	ck_assert_uint_eq(len, 6);
	ck_assert_int_eq(memcmp(line, "cdefgh", 6), 0);
	framer_free(&f);
}
END_TEST

/* The frame test suite. */
static Suite *
frame_suite(void)
{
	Suite	*s = suite_create("frame");
	TCase	*tc = tcase_create("split");
	TCase	*tl = tcase_create("limit");

	tcase_add_test(tc, test_whole);
	tcase_add_test(tc, test_split_everywhere);
	tcase_add_test(tc, test_byte_at_a_time);
	tcase_add_test(tc, test_split_three);
	tcase_add_test(tc, test_empty_frames);
	tcase_add_test(tc, test_space_reuse);
	tcase_add_test(tc, test_store);
	suite_add_tcase(s, tc);
	tcase_add_test(tl, test_limit_boundary);
	tcase_add_test(tl, test_limit_bytewise);
	tcase_add_test(tl, test_endless_line);
	suite_add_tcase(s, tl);
	return s;
}

/* Runs the suite; exits non-zero on failure. */
int
main(void)
{
	SRunner	*sr = srunner_create(frame_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
