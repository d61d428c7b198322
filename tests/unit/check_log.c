/*
 * check_log.c: unit tests of log_escape, which makes peer data safe for
 * one log line: printable ASCII stays, the rest is escaped, and a value
 * too long for the buffer is cut with "..." and always NUL-terminated.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "check_run.h"

/* Escapes the len bytes of p into a buffer of dstlen bytes. */
static const char *
esc(const char *p, size_t len, size_t dstlen)
{
	static char	buf[256];

	ck_assert_uint_le(dstlen, sizeof(buf));
	memset(buf, 'Z', sizeof(buf));
	return log_escape(p, len, buf, dstlen);
}

START_TEST(test_printable_unchanged)
{
	ck_assert_str_eq(esc("[::1]:80", 8, 64), "[::1]:80");
	ck_assert_str_eq(esc("", 0, 1), "");
}
END_TEST

START_TEST(test_controls_escaped)
{
	ck_assert_str_eq(esc("a\nb\rc\td\\e", 9, 64), "a\\nb\\rc\\td\\\\e");
	ck_assert_str_eq(esc("\033[2J", 4, 64), "\\033[2J");
	ck_assert_str_eq(esc("\0x\177\303\251", 5, 64),
	    "\\000x\\177\\303\\251");
}
END_TEST

START_TEST(test_uncut_size)
{
	char	in[16], out[LOG_ESCAPED(sizeof(in))];
	size_t	i;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (char)(0x80 + i);
	log_escape(in, sizeof(in), out, sizeof(out));
	ck_assert_uint_eq(strlen(out), 4 * sizeof(in));
	ck_assert_str_eq(out + 4 * (sizeof(in) - 1), "\\217");
}
END_TEST

START_TEST(test_cut)
{
	/* Never an escape in part; "..." when more was left. */
	ck_assert_str_eq(esc("abcdefgh", 8, 8), "abcd...");
	ck_assert_str_eq(esc("abc\001efgh", 8, 9), "abc...");
	ck_assert_str_eq(esc("abcdefg", 7, 8), "abcdefg");
	ck_assert_str_eq(esc("abcdefgh", 8, 3), "");
	ck_assert_str_eq(esc("ab", 2, 2), "");
	ck_assert_str_eq(esc("a", 1, 2), "a");
}
END_TEST

/* The log test suite. */
CHECK_SUITE(log_suite, "log", "escape",
    CK_TEST(test_printable_unchanged), CK_TEST(test_controls_escaped),
    CK_TEST(test_uncut_size), CK_TEST(test_cut))

CHECK_MAIN(log_suite)
