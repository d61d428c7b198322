/*
 * check_frame.c: unit tests for lib/frame.c.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "frame.h"
#include "check_run.h"

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

/*
 * Objects framed where they close: no terminator, two in a row, braces
 * and escapes in strings, nesting, terminators and whitespace around
 * them, bytes after them, and lines that do not start with an object.
 */
static const char ostream[] =
    "{\"type\":\"IDENTIFY\",\"username\":\"a\"}"
    "{\"type\":\"USERS\"}{\"type\":\"USERS\"}"
    "{\"t\":\"}{\"}"
    "{\"t\":\"\\\\\"}"
    "{\"t\":\"\\\\\\\"}\"}"
    "{\"a\":[{\"b\":[1,{}]}],\"c\":{}}\n"
    "{\"d\":1}\r\n"
    " \t{\"e\":2} \r\n"
    "{\"f\":\"\xc3\xa9}\"}\0"
    "{\"g\":3}xy\n"
    "  \t \n"
    "}{\"h\":4}\n"
    "[{\"i\":5}]\n"
    "{\"j\":\"\n"
    "{]{[}]";
static const char oexpect[] =
    "{\"type\":\"IDENTIFY\",\"username\":\"a\"}|"
    "{\"type\":\"USERS\"}|{\"type\":\"USERS\"}|"
    "{\"t\":\"}{\"}|"
    "{\"t\":\"\\\\\"}|"
    "{\"t\":\"\\\\\\\"}\"}|"
    "{\"a\":[{\"b\":[1,{}]}],\"c\":{}}|"
    "{\"d\":1}|"
    " \t{\"e\":2}|"
    "{\"f\":\"\xc3\xa9}\"}|"
    "{\"g\":3}|xy|"
    "}{\"h\":4}|"
    "[{\"i\":5}]|"
    "{\"j\":\"|"
    "{]|{[}]|";

/* Feeds s[0..n) split at every point, byte by byte, and in a store. */
static void
check_stream(const char *s, size_t n, const char *want, int nwant)
{
	struct framer	 f;
	struct got	 g;
	char		 store[8];
	size_t		 k;

	for (k = 0; k <= n; k++) {
		memset(&g, 0, sizeof(g));
		if (k % 2)
			framer_init(&f, 100);
		else
			framer_init_store(&f, 100, store, sizeof(store));
		ck_assert_int_eq(framer_feed(&f, s, k), 0);
		drain(&f, &g);
		ck_assert_int_eq(framer_feed(&f, s + k, n - k), 0);
		drain(&f, &g);
		ck_assert_int_eq(g.toolong, 0);
		ck_assert_int_eq(g.nlines, nwant);
		ck_assert_uint_eq(g.len, strlen(want));
		ck_assert_int_eq(memcmp(g.text, want, g.len), 0);
		ck_assert_uint_eq(framer_pending(&f), 0);
		framer_free(&f);
	}
	memset(&g, 0, sizeof(g));
	framer_init(&f, 100);
	for (k = 0; k < n; k++) {
		ck_assert_int_eq(framer_feed(&f, s + k, 1), 0);
		drain(&f, &g);
		/* The frame's bytes are never scanned again. */
		ck_assert_uint_eq(f.scan, framer_pending(&f));
	}
	ck_assert_int_eq(g.nlines, nwant);
	ck_assert_int_eq(memcmp(g.text, want, strlen(want)), 0);
	framer_free(&f);
}

START_TEST(test_objects_split_everywhere)
{
	check_stream(ostream, sizeof(ostream) - 1, oexpect, 17);
}
END_TEST

/* The original TalkNet client: one object per write, no terminator. */
START_TEST(test_object_without_terminator)
{
	static const char	 id[] =
	    "{\"type\":\"IDENTIFY\",\"username\":\"a\"}";
	struct framer		 f;
	const char		*line;
	size_t			 len, k;

	framer_init(&f, 100);
	for (k = 0; k + 1 < sizeof(id) - 1; k++) {
		framer_feed(&f, id + k, 1);
		ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_NONE);
	}
	framer_feed(&f, id + k, 1);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_LINE);
	ck_assert_uint_eq(len, sizeof(id) - 1);
	ck_assert_int_eq(memcmp(line, id, len), 0);
	ck_assert_uint_eq(framer_pending(&f), 0);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_NONE);
	framer_free(&f);
}
END_TEST

/* A terminator right after an object ends an empty frame: consumed. */
START_TEST(test_terminator_after_object)
{
	struct framer		 f;
	const char		*line;
	size_t			 len;

	framer_init(&f, 100);
	framer_feed(&f, "{}\r", 3);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_LINE);
	ck_assert_uint_eq(len, 2);
	/* "\r" may be the start of "\r\n": it waits. */
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_NONE);
	ck_assert_uint_eq(framer_pending(&f), 1);
	framer_feed(&f, "\n", 1);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_NONE);
	ck_assert_uint_eq(framer_pending(&f), 0);
	/* "\0" and "\n", and whitespace before them. */
	framer_feed(&f, "{} \0{}\t\n{}\n\n", 12);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_LINE);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_LINE);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_LINE);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_NONE);
	ck_assert_uint_eq(framer_pending(&f), 0);
	/* A "\r" then something else starts the next frame. */
	framer_feed(&f, "{}\rx\n", 5);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_LINE);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_LINE);
	ck_assert_uint_eq(len, 2);
	ck_assert_int_eq(memcmp(line, "\rx", 2), 0);
	framer_free(&f);
}
END_TEST

/* Braces, brackets and escaped quotes inside strings do not count. */
START_TEST(test_strings_and_escapes)
{
	size_t	len;

	ck_assert_int_eq(feed_next(100, "{\"a\":\"}\"", 8, &len), FRAME_NONE);
	ck_assert_int_eq(feed_next(100, "{\"a\":\"}\"}", 9, &len), FRAME_LINE);
	ck_assert_uint_eq(len, 9);
	/* An escaped quote does not end the string... */
	ck_assert_int_eq(feed_next(100, "{\"a\":\"\\\"}", 9, &len),
	    FRAME_NONE);
	/* ...an escaped backslash does not escape the quote after it. */
	ck_assert_int_eq(feed_next(100, "{\"a\":\"\\\\\"}", 10, &len),
	    FRAME_LINE);
	ck_assert_uint_eq(len, 10);
	ck_assert_int_eq(feed_next(100, "{\"a\":\"\\\\\\\"}", 11, &len),
	    FRAME_NONE);
	/* A key is a string too; a "\u" escape is plain bytes. */
	ck_assert_int_eq(feed_next(100, "{\"}\\u007d\":1}", 13, &len),
	    FRAME_LINE);
	ck_assert_uint_eq(len, 13);
	/* Raw UTF-8 bytes are opaque. */
	ck_assert_int_eq(feed_next(100, "{\"\xf0\x9f\x98\x80\":\"\xff]\"}",
	    13, &len), FRAME_LINE);
	ck_assert_uint_eq(len, 13);
}
END_TEST

/* Nesting: the frame ends at depth zero, whatever closes it. */
START_TEST(test_nesting)
{
	size_t	len;

	ck_assert_int_eq(feed_next(100, "{\"a\":[{},[]]", 12, &len),
	    FRAME_NONE);
	ck_assert_int_eq(feed_next(100, "{\"a\":[{},[]]}{", 14, &len),
	    FRAME_LINE);
	ck_assert_uint_eq(len, 13);
	/* Mismatched: "]" closes "{"; the codec refuses such a frame. */
	ck_assert_int_eq(feed_next(100, "{]", 2, &len), FRAME_LINE);
	ck_assert_uint_eq(len, 2);
	ck_assert_int_eq(feed_next(100, "{[}", 3, &len), FRAME_NONE);
	ck_assert_int_eq(feed_next(100, "{[}]", 4, &len), FRAME_LINE);
	ck_assert_uint_eq(len, 4);
}
END_TEST

/* "}" outside an object, and anything else not "{", runs as a line. */
START_TEST(test_not_an_object)
{
	static const char	*lines[] = {
		"}", "}{}", "]{}", "[{}]{}", "x{}{}", "\"{}\"", "1{}", "\r}{}"
	};
	struct framer		 f;
	const char		*line;
	size_t			 len, i, n;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		n = strlen(lines[i]);
		framer_init(&f, 100);
		framer_feed(&f, lines[i], n);
		ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_NONE);
		framer_feed(&f, "\n", 1);
		ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_LINE);
		ck_assert_uint_eq(len, n);
		ck_assert_int_eq(memcmp(line, lines[i], n), 0);
		ck_assert_uint_eq(framer_pending(&f), 0);
		framer_free(&f);
	}
}
END_TEST

/* Terminators end a frame even inside an object or one of its strings. */
START_TEST(test_terminator_inside_object)
{
	size_t	len;

	ck_assert_int_eq(feed_next(100, "{\"a\":\"b\nc\"}", 11, &len),
	    FRAME_LINE);
	ck_assert_uint_eq(len, 7);
	ck_assert_int_eq(feed_next(100, "{\"a\":\r\n1}", 9, &len),
	    FRAME_LINE);
	ck_assert_uint_eq(len, 5);
	ck_assert_int_eq(feed_next(100, "{\"a\0\":1}", 8, &len), FRAME_LINE);
	ck_assert_uint_eq(len, 3);
}
END_TEST

/* Whitespace only is an empty frame; whitespace before "{" is kept. */
START_TEST(test_whitespace)
{
	struct framer		 f;
	const char		*line;
	size_t			 len;

	framer_init(&f, 10);
	framer_feed(&f, " \t \r \n\t\0 \r\n", 11);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_NONE);
	ck_assert_uint_eq(framer_pending(&f), 0);
	framer_feed(&f, " \r\t{} ", 6);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_LINE);
	ck_assert_uint_eq(len, 5);
	ck_assert_int_eq(memcmp(line, " \r\t{}", 5), 0);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_NONE);
	/* Whitespace counts toward the limit all the same. */
	framer_feed(&f, "          ", 10);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_TOOLONG);
	framer_free(&f);
	ck_assert_int_eq(feed_next(10, "         {}", 11, &len),
	    FRAME_TOOLONG);
	ck_assert_int_eq(feed_next(10, "        {}", 10, &len), FRAME_LINE);
}
END_TEST

/* An object is held to max_line too, an open string included. */
START_TEST(test_object_limit)
{
	struct framer		 f;
	const char		*line;
	size_t			 len, k;

	ck_assert_int_eq(feed_next(10, "{\"a\":\"bc\"}", 10, &len),
	    FRAME_LINE);
	ck_assert_uint_eq(len, 10);
	ck_assert_int_eq(feed_next(10, "{\"a\":\"bcd\"}", 11, &len),
	    FRAME_TOOLONG);
	ck_assert_int_eq(feed_next(10, "{\"a\":\"bcd\"}\n", 12, &len),
	    FRAME_TOOLONG);
	framer_init(&f, 10);
	framer_feed(&f, "{\"a\":\"", 6);
	for (k = 6; k < 10; k++) {
		ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_NONE);
		framer_feed(&f, "}", 1);
	}
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_NONE);
	framer_feed(&f, "}", 1);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_TOOLONG);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_TOOLONG);
	framer_free(&f);
}
END_TEST

/* 64 KiB objects one byte at a time: each byte scanned once. */
START_TEST(test_object_bytewise_linear)
{
	struct framer		 f;
	const char		*line;
	size_t			 len, k, max = 65536;
	char			 c;

	framer_init(&f, max);
	for (k = 0; k < max; k++) {
		if (k == 0)
			c = '{';
		else if (k == 1 || k == 3 || k == 5 || k == max - 2)
			c = '"';
		else if (k == 4)
			c = ':';
		else if (k == max - 1)
			c = '}';
		else
			c = "a{[}]\\\\"[k % 7];
		framer_feed(&f, &c, 1);
		if (k == max - 1)
			break;
		/* One check per byte, not two ck_asserts: each one costs a
		 * write to check's parent process. */
		if (framer_next(&f, &line, &len) != FRAME_NONE ||
		    f.scan != framer_pending(&f))
			ck_abort_msg("byte %zu: a frame, or scanned again", k);
	}
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_LINE);
	ck_assert_uint_eq(len, max);
	ck_assert_uint_eq(framer_pending(&f), 0);
	framer_free(&f);
}
END_TEST

/* Hostile nesting: the depth stops at FRAME_MAX_DEPTH and cuts there. */
START_TEST(test_depth_cap)
{
	struct framer		 f;
	const char		*line;
	size_t			 len, k, nframes = 0;
	enum frame_result	 r;

	framer_init(&f, 1 << 20);
	framer_feed(&f, "{\"a\":", 5);
	for (k = 0; k < 20000; k++) {
		framer_feed(&f, "[", 1);
		while ((r = framer_next(&f, &line, &len)) == FRAME_LINE) {
			if (nframes++ == 0) {
				ck_assert_uint_eq(len, 5 + FRAME_MAX_DEPTH);
				ck_assert_int_eq(line[len - 1], '[');
			}
		}
		if (r != FRAME_NONE || f.depth > FRAME_MAX_DEPTH)
			ck_abort_msg("byte %zu: result %d, depth %u", k, r,
			    f.depth);
	}
	ck_assert_uint_eq(nframes, 1);
	framer_free(&f);
	/* Just under the cap the object closes as usual. */
	framer_init(&f, 1000);
	framer_feed(&f, "{", 1);
	for (k = 1; k < FRAME_MAX_DEPTH; k++)
		framer_feed(&f, "[", 1);
	for (k = 1; k < FRAME_MAX_DEPTH; k++)
		framer_feed(&f, "]", 1);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_NONE);
	framer_feed(&f, "}", 1);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_LINE);
	ck_assert_uint_eq(len, 2 * FRAME_MAX_DEPTH);
	framer_free(&f);
}
END_TEST

/* framer_lines_only: lines as typed, objects or not. */
START_TEST(test_lines_only)
{
	struct framer		 f;
	const char		*line;
	size_t			 len;

	framer_init(&f, 100);
	framer_lines_only(&f);
	framer_feed(&f, "{x} y{}{}", 9);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_NONE);
	framer_feed(&f, "\n \t\r\n", 5);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_LINE);
	ck_assert_uint_eq(len, 9);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_LINE);
	ck_assert_uint_eq(len, 2);
	ck_assert_int_eq(framer_next(&f, &line, &len), FRAME_NONE);
	framer_free(&f);
}
END_TEST

/* The frame test suite. */
static Suite *
frame_suite(void)
{
	const struct check_test	split[] = {
		CK_TEST(test_whole), CK_TEST(test_split_everywhere),
		CK_TEST(test_byte_at_a_time), CK_TEST(test_split_three),
		CK_TEST(test_empty_frames), CK_TEST(test_space_reuse),
		CK_TEST(test_store)
	};
	const struct check_test	limit[] = {
		CK_TEST(test_limit_boundary), CK_TEST(test_limit_bytewise),
		CK_TEST(test_endless_line), CK_TEST(test_object_limit),
		CK_TEST(test_object_bytewise_linear), CK_TEST(test_depth_cap)
	};
	const struct check_test	objects[] = {
		CK_TEST(test_objects_split_everywhere),
		CK_TEST(test_object_without_terminator),
		CK_TEST(test_terminator_after_object),
		CK_TEST(test_strings_and_escapes), CK_TEST(test_nesting),
		CK_TEST(test_not_an_object),
		CK_TEST(test_terminator_inside_object),
		CK_TEST(test_whitespace), CK_TEST(test_lines_only)
	};
	Suite			*s = suite_create("frame");

	check_case(s, "split", split, CHECK_N(split));
	check_case(s, "limit", limit, CHECK_N(limit));
	check_case(s, "objects", objects, CHECK_N(objects));
	return s;
}

/* Runs the suite; exits non-zero on failure. */
CHECK_MAIN(frame_suite)
