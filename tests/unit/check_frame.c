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

/* Checks that g holds exactly the nwant lines joined in want. */
static void
check_lines(const struct got *g, const char *want, int nwant)
{
	ck_assert_int_eq(g->toolong, 0);
	ck_assert_int_eq(g->nlines, nwant);
	ck_assert_uint_eq(g->len, strlen(want));
	ck_assert_int_eq(memcmp(g->text, want, g->len), 0);
}

/* Checks that g holds exactly the expected lines of the stream. */
static void
check_got(const struct got *g)
{
	check_lines(g, expect, 8);
}

/* Feeds s[0..k), then s[k..n), to f, taking the lines into a fresh g. */
static void
feed_split(struct framer *f, const char *s, size_t n, size_t k,
    struct got *g)
{
	memset(g, 0, sizeof(*g));
	ck_assert_int_eq(framer_feed(f, s, k), 0);
	drain(f, g);
	ck_assert_int_eq(framer_feed(f, s + k, n - k), 0);
	drain(f, g);
}

#define ANY		(-1)		/* a length not checked */
#define F(s)		s, sizeof(s) - 1
#define NOFEED		NULL, 0

/*
 * One step of a script: feed bytes (times times), then framer_next must
 * give r each time; for a line, of length len (unless ANY) and bytes line
 * (unless NULL); and then framer_pending must be pending (unless ANY).
 */
struct step {
	const char		*feed;
	size_t			 n;
	int			 times;
	enum frame_result	 r;
	int			 len;
	const char		*line;
	int			 pending;
};

/* Runs the n steps of script st on a fresh framer of max (and flags). */
static void
run_steps(size_t max, int lines_only, const struct step *st, int n)
{
	struct framer	 f;
	const char	*line;
	size_t		 len;
	int		 i, k;

	framer_init(&f, max);
	if (lines_only)
		framer_lines_only(&f);
	for (i = 0; i < n; i++)
		for (k = 0; k < st[i].times; k++) {
			if (st[i].feed != NULL)
				framer_feed(&f, st[i].feed, st[i].n);
			ck_assert_msg(framer_next(&f, &line, &len) == st[i].r,
			    "step %d: not result %d", i, st[i].r);
			if (st[i].r == FRAME_LINE && st[i].len != ANY)
				ck_assert_uint_eq(len, (size_t)st[i].len);
			if (st[i].r == FRAME_LINE && st[i].line != NULL)
				ck_assert_int_eq(memcmp(line, st[i].line,
				    len), 0);
			if (st[i].pending != ANY)
				ck_assert_uint_eq(framer_pending(&f),
				    (size_t)st[i].pending);
		}
	framer_free(&f);
}

/* A line fed whole to a fresh framer of max: its first result. */
struct first {
	size_t			 max;
	const char		*s;
	size_t			 n;
	enum frame_result	 r;
	int			 len;	/* FRAME_LINE: the length, or ANY */
};

/* Checks the first framer_next result of each of the n lines of t. */
static void
check_first(const struct first *t, int n)
{
	struct framer		 f;
	const char		*line;
	size_t			 len;
	int			 i;

	for (i = 0; i < n; i++) {
		framer_init(&f, t[i].max);
		framer_feed(&f, t[i].s, t[i].n);
		len = 0;
		ck_assert_msg(framer_next(&f, &line, &len) == t[i].r,
		    "line %d: not result %d", i, t[i].r);
		if (t[i].len != ANY)
			ck_assert_uint_eq(len, (size_t)t[i].len);
		framer_free(&f);
	}
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
		framer_init(&f, 100);
		feed_split(&f, stream, n, k, &g);
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
	static const struct step	st[] = {
		{ NOFEED, 1, FRAME_NONE, ANY, NULL, ANY },
		{ F("\n\r\n\0\n\0\0\r\n"), 1, FRAME_NONE, ANY, NULL, 0 },
		{ F("\r"), 1, FRAME_NONE, ANY, NULL, ANY },
		{ F("\nx\n"), 1, FRAME_LINE, 1, "x", ANY },
		{ NOFEED, 1, FRAME_NONE, ANY, NULL, ANY },
	};

	run_steps(10, 0, st, CHECK_N(st));
}
END_TEST

START_TEST(test_limit_boundary)
{
	static const struct first	t[] = {
		{ 10, F("0123456789\n"), FRAME_LINE, 10 },
		{ 10, F("0123456789\r\n"), FRAME_LINE, 10 },
		{ 10, F("0123456789\0"), FRAME_LINE, ANY },
		{ 10, F("0123456789"), FRAME_NONE, ANY },
		{ 10, F("0123456789\r"), FRAME_NONE, ANY },
		{ 10, F("01234567890\n"), FRAME_TOOLONG, ANY },
		{ 10, F("01234567890\r\n"), FRAME_TOOLONG, ANY },
		{ 10, F("01234567890"), FRAME_TOOLONG, ANY },
		{ 10, F("0123456789\rx"), FRAME_TOOLONG, ANY },
		{ 10, F("0123456789\r\r"), FRAME_TOOLONG, ANY },
		/* A "\r" before "\0" is part of the line. */
		{ 10, F("0123456789\r\0"), FRAME_TOOLONG, ANY },
		/* A long line after a short one in the same read. */
		{ 10, F("\nab\n"), FRAME_LINE, 2 },
	};

	check_first(t, CHECK_N(t));
}
END_TEST

/* Byte by byte: the error comes exactly when the limit is crossed. */
START_TEST(test_limit_bytewise)
{
	static const struct step	st[] = {
		{ F("ab\n"), 1, FRAME_LINE, ANY, NULL, ANY },
		{ F("x"), 10, FRAME_NONE, ANY, NULL, ANY },
		{ F("\r"), 1, FRAME_NONE, ANY, NULL, ANY },
		{ F("\n"), 1, FRAME_LINE, 10, NULL, ANY },
		{ F("y"), 10, FRAME_NONE, ANY, NULL, ANY },
		{ F("y"), 1, FRAME_TOOLONG, ANY, NULL, ANY },
		{ NOFEED, 1, FRAME_TOOLONG, ANY, NULL, ANY },
	};

	run_steps(10, 0, st, CHECK_N(st));
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
		framer_init_store(&f, 100, store, sizeof(store));
		feed_split(&f, stream, n, k, &g);
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
		if (k % 2)
			framer_init(&f, 100);
		else
			framer_init_store(&f, 100, store, sizeof(store));
		feed_split(&f, s, n, k, &g);
		check_lines(&g, want, nwant);
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
	static const struct step	st[] = {
		{ F("{}\r"), 1, FRAME_LINE, 2, NULL, ANY },
		/* "\r" may be the start of "\r\n": it waits. */
		{ NOFEED, 1, FRAME_NONE, ANY, NULL, 1 },
		{ F("\n"), 1, FRAME_NONE, ANY, NULL, 0 },
		/* "\0" and "\n", and whitespace before them. */
		{ F("{} \0{}\t\n{}\n\n"), 1, FRAME_LINE, ANY, NULL, ANY },
		{ NOFEED, 2, FRAME_LINE, ANY, NULL, ANY },
		{ NOFEED, 1, FRAME_NONE, ANY, NULL, 0 },
		/* A "\r" then something else starts the next frame. */
		{ F("{}\rx\n"), 1, FRAME_LINE, ANY, NULL, ANY },
		{ NOFEED, 1, FRAME_LINE, 2, "\rx", ANY },
	};

	run_steps(100, 0, st, CHECK_N(st));
}
END_TEST

/* Braces, brackets and escaped quotes inside strings do not count. */
START_TEST(test_strings_and_escapes)
{
	static const struct first	t[] = {
		{ 100, F("{\"a\":\"}\""), FRAME_NONE, ANY },
		{ 100, F("{\"a\":\"}\"}"), FRAME_LINE, 9 },
		/* An escaped quote does not end the string... */
		{ 100, F("{\"a\":\"\\\"}"), FRAME_NONE, ANY },
		/* ...an escaped backslash does not escape the next quote. */
		{ 100, F("{\"a\":\"\\\\\"}"), FRAME_LINE, 10 },
		{ 100, F("{\"a\":\"\\\\\\\"}"), FRAME_NONE, ANY },
		/* A key is a string too; a "\u" escape is plain bytes. */
		{ 100, F("{\"}\\u007d\":1}"), FRAME_LINE, 13 },
		/* Raw UTF-8 bytes are opaque. */
		{ 100, F("{\"\xf0\x9f\x98\x80\":\"\xff]\"}"), FRAME_LINE, 13 },
	};

	check_first(t, CHECK_N(t));
}
END_TEST

/* Nesting: the frame ends at depth zero, whatever closes it. */
START_TEST(test_nesting)
{
	static const struct first	t[] = {
		{ 100, F("{\"a\":[{},[]]"), FRAME_NONE, ANY },
		{ 100, F("{\"a\":[{},[]]}{"), FRAME_LINE, 13 },
		/* Mismatched: "]" closes "{"; the codec refuses such frames. */
		{ 100, F("{]"), FRAME_LINE, 2 },
		{ 100, F("{[}"), FRAME_NONE, ANY },
		{ 100, F("{[}]"), FRAME_LINE, 4 },
	};

	check_first(t, CHECK_N(t));
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
	static const struct first	t[] = {
		{ 100, F("{\"a\":\"b\nc\"}"), FRAME_LINE, 7 },
		{ 100, F("{\"a\":\r\n1}"), FRAME_LINE, 5 },
		{ 100, F("{\"a\0\":1}"), FRAME_LINE, 3 },
	};

	check_first(t, CHECK_N(t));
}
END_TEST

/* Whitespace only is an empty frame; whitespace before "{" is kept. */
START_TEST(test_whitespace)
{
	static const struct step	st[] = {
		{ F(" \t \r \n\t\0 \r\n"), 1, FRAME_NONE, ANY, NULL, 0 },
		{ F(" \r\t{} "), 1, FRAME_LINE, 5, " \r\t{}", ANY },
		{ NOFEED, 1, FRAME_NONE, ANY, NULL, ANY },
		/* Whitespace counts toward the limit all the same. */
		{ F("          "), 1, FRAME_TOOLONG, ANY, NULL, ANY },
	};
	static const struct first	t[] = {
		{ 10, F("         {}"), FRAME_TOOLONG, ANY },
		{ 10, F("        {}"), FRAME_LINE, ANY },
	};

	run_steps(10, 0, st, CHECK_N(st));
	check_first(t, CHECK_N(t));
}
END_TEST

/* An object is held to max_line too, an open string included. */
START_TEST(test_object_limit)
{
	static const struct first	t[] = {
		{ 10, F("{\"a\":\"bc\"}"), FRAME_LINE, 10 },
		{ 10, F("{\"a\":\"bcd\"}"), FRAME_TOOLONG, ANY },
		{ 10, F("{\"a\":\"bcd\"}\n"), FRAME_TOOLONG, ANY },
	};
	static const struct step	st[] = {
		{ F("{\"a\":\""), 1, FRAME_NONE, ANY, NULL, ANY },
		{ F("}"), 4, FRAME_NONE, ANY, NULL, ANY },
		{ F("}"), 1, FRAME_TOOLONG, ANY, NULL, ANY },
		{ NOFEED, 1, FRAME_TOOLONG, ANY, NULL, ANY },
	};

	check_first(t, CHECK_N(t));
	run_steps(10, 0, st, CHECK_N(st));
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
	static const struct step	st[] = {
		{ F("{x} y{}{}"), 1, FRAME_NONE, ANY, NULL, ANY },
		{ F("\n \t\r\n"), 1, FRAME_LINE, 9, NULL, ANY },
		{ NOFEED, 1, FRAME_LINE, 2, NULL, ANY },
		{ NOFEED, 1, FRAME_NONE, ANY, NULL, ANY },
	};

	run_steps(100, 1, st, CHECK_N(st));
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
