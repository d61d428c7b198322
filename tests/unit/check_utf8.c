/*
 * check_utf8.c: unit tests for lib/utf8.c.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"
#include "check_run.h"

struct sample {
	const char	*s;
	size_t		 len;
};

#define S(x)	{ x, sizeof(x) - 1 }

static const struct sample valid[] = {
	S(""),
	S("plain ascii"),
	S("nul\0inside"),
	S("\x7f"),
	S("\xc2\x80"),			/* U+0080 */
	S("\xc3\xa9t\xc3\xa9"),		/* été */
	S("\xdf\xbf"),			/* U+07FF */
	S("\xe0\xa0\x80"),		/* U+0800 */
	S("\xed\x9f\xbf"),		/* U+D7FF */
	S("\xee\x80\x80"),		/* U+E000 */
	S("\xef\xbf\xbf"),		/* U+FFFF */
	S("\xf0\x90\x80\x80"),		/* U+10000 */
	S("\xf0\x9f\x98\x80"),		/* U+1F600 */
	S("\xf4\x8f\xbf\xbf"),		/* U+10FFFF */
};

static const struct sample invalid[] = {
	S("\x80"),			/* stray continuation */
	S("a\xbf"),
	S("\xc0\x80"),			/* overlong NUL */
	S("\xc1\xbf"),			/* overlong */
	S("\xc2"),			/* truncated */
	S("\xc2\x41"),
	S("\xe0\x80\x80"),		/* overlong */
	S("\xe0\x9f\xbf"),		/* overlong */
	S("\xe1\x80"),			/* truncated */
	S("\xed\xa0\x80"),		/* U+D800 */
	S("\xed\xbf\xbf"),		/* U+DFFF */
	S("\xed\xa0\xbd\xed\xb8\x80"),	/* CESU-8 pair */
	S("\xf0\x80\x80\x80"),		/* overlong */
	S("\xf0\x8f\xbf\xbf"),		/* overlong */
	S("\xf0\x9f\x98"),		/* truncated */
	S("\xf4\x90\x80\x80"),		/* U+110000 */
	S("\xf5\x80\x80\x80"),
	S("\xf8\x88\x80\x80\x80"),
	S("\xfe"),
	S("\xff"),
	S("ok\xe2\x82"),		/* truncated at the end */
};

START_TEST(test_valid)
{
	ck_assert_msg(utf8_valid(valid[_i].s, valid[_i].len) == 1,
	    "sample %d should be valid", _i);
}
END_TEST

START_TEST(test_invalid)
{
	ck_assert_msg(utf8_valid(invalid[_i].s, invalid[_i].len) == 0,
	    "sample %d should be invalid", _i);
	ck_assert_int_eq(utf8_name_valid(invalid[_i].s, invalid[_i].len,
	    100), 0);
}
END_TEST

START_TEST(test_count)
{
	ck_assert_uint_eq(utf8_count("", 0), 0);
	ck_assert_uint_eq(utf8_count("abc", 3), 3);
	ck_assert_uint_eq(utf8_count("\xc3\xa9t\xc3\xa9", 5), 3);
	ck_assert_uint_eq(utf8_count("\xf0\x9f\x98\x80\xe2\x82\xac", 7), 2);
}
END_TEST

START_TEST(test_encode)
{
	static const struct {
		uint32_t	 cp;
		const char	*s;
	} t[] = {
		{ 0x0, "\0" },
		{ 0x41, "A" },
		{ 0x7f, "\x7f" },
		{ 0x80, "\xc2\x80" },
		{ 0x7ff, "\xdf\xbf" },
		{ 0x800, "\xe0\xa0\x80" },
		{ 0x20ac, "\xe2\x82\xac" },
		{ 0xffff, "\xef\xbf\xbf" },
		{ 0x10000, "\xf0\x90\x80\x80" },
		{ 0x1f600, "\xf0\x9f\x98\x80" },
		{ 0x10ffff, "\xf4\x8f\xbf\xbf" },
	};
	char	out[4];
	size_t	i, n, want;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		want = t[i].cp == 0 ? 1 : strlen(t[i].s);
		n = utf8_encode(t[i].cp, out);
		ck_assert_uint_eq(n, want);
		ck_assert_int_eq(memcmp(out, t[i].s, n), 0);
		ck_assert_int_eq(utf8_valid(out, n), 1);
	}
}
END_TEST

START_TEST(test_names)
{
	/* Code points, not bytes: 8 two-byte characters are fine. */
	const char	*e8 = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";
	const char	*e9 = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";

	ck_assert_int_eq(utf8_name_valid("Kimberly", 8, 8), 1);
	ck_assert_int_eq(utf8_name_valid("Kimberly!", 9, 8), 0);
	ck_assert_int_eq(utf8_name_valid("a", 1, 1), 1);
	ck_assert_int_eq(utf8_name_valid("", 0, 8), 0);
	ck_assert_int_eq(utf8_name_valid(e8, strlen(e8), 8), 1);
	ck_assert_int_eq(utf8_name_valid(e9, strlen(e9), 8), 0);
	ck_assert_int_eq(utf8_name_valid("\xf0\x9f\x98\x80", 4, 1), 1);
	ck_assert_int_eq(utf8_name_valid("Room 1", 6, 16), 1);
	ck_assert_int_eq(utf8_name_valid("a\0b", 3, 8), 0);
	ck_assert_int_eq(utf8_name_valid("a\tb", 3, 8), 0);
	ck_assert_int_eq(utf8_name_valid("a\x1f", 2, 8), 0);
	ck_assert_int_eq(utf8_name_valid("a\x7f", 2, 8), 0);
	ck_assert_int_eq(utf8_name_valid("a\xc2\x80", 3, 8), 0);
	ck_assert_int_eq(utf8_name_valid("a\xc2\x9f", 3, 8), 0);
	ck_assert_int_eq(utf8_name_valid("a\xc2\xa0", 3, 8), 1);
	ck_assert_int_eq(utf8_name_valid("a\x20", 2, 8), 1);
}
END_TEST

/* The utf8 test suite. */
CHECK_SUITE(utf8_suite, "utf8", "core",
    CK_LOOP(test_valid, valid), CK_LOOP(test_invalid, invalid),
    CK_TEST(test_count), CK_TEST(test_encode), CK_TEST(test_names))

/* Runs the suite; exits non-zero on failure. */
CHECK_MAIN(utf8_suite)
