/*
 * check_control.c: unit tests of the control socket's frames (control.h):
 * a round trip, frames split at every byte, and the malformed ones the
 * master must refuse: another version, a payload over its limit,
 * strings that overrun the payload, and conf's list of every changed
 * restart-only setting.
 */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#include "control.h"
#include "talknetd.h"
#include "check_run.h"

/* Builds a request of words. */
static void
put_words(struct buf *b, const char **w, size_t n)
{
	size_t	off, i;

	off = ctl_begin(b, CTL_REQUEST);
	for (i = 0; i < n; i++)
		ctl_put_str(b, w[i], strlen(w[i]));
	ctl_end(b, off);
}

START_TEST(test_roundtrip)
{
	const char	*w[] = { "kick", "bob", "" };
	struct buf	 b;
	struct ctl_hdr	 h;
	struct str	 s[4];
	const char	*p;

	buf_init(&b);
	put_words(&b, w, 3);
	ck_assert_int_eq(ctl_get(&b, CTL_MAX_REQUEST, &h, &p), 1);
	ck_assert_uint_eq(h.version, CTL_VERSION);
	ck_assert_uint_eq(h.type, CTL_REQUEST);
	ck_assert_int_eq(ctl_get_strs(p, h.len, s, 4), 3);
	ck_assert(s[0].len == 4 && memcmp(s[0].p, "kick", 4) == 0);
	ck_assert(s[1].len == 3 && memcmp(s[1].p, "bob", 3) == 0);
	ck_assert_uint_eq(s[2].len, 0);
	ck_assert_int_eq(ctl_get(&b, CTL_MAX_REQUEST, &h, &p), 0);
	buf_free(&b);
}
END_TEST

START_TEST(test_split_every_byte)
{
	const char	*w[] = { "show", "users" };
	struct buf	 whole, in;
	struct ctl_hdr	 h;
	const char	*p;
	size_t		 cut;

	buf_init(&whole);
	put_words(&whole, w, 2);
	for (cut = 0; cut < buf_pending(&whole); cut++) {
		buf_init(&in);
		ck_assert_int_eq(buf_append(&in, buf_head(&whole), cut), 0);
		ck_assert_int_eq(ctl_get(&in, CTL_MAX_REQUEST, &h, &p), 0);
		ck_assert_int_eq(buf_append(&in, buf_head(&whole) + cut,
		    buf_pending(&whole) - cut), 0);
		ck_assert_int_eq(ctl_get(&in, CTL_MAX_REQUEST, &h, &p), 1);
		ck_assert_int_eq(ctl_get_strs(p, h.len, NULL, 0), 2);
		buf_free(&in);
	}
	buf_free(&whole);
}
END_TEST

START_TEST(test_bad_headers)
{
	struct ctl_hdr	 h, got;
	struct buf	 b;
	const char	*p;

	memset(&h, 0, sizeof(h));
	h.version = CTL_VERSION + 1;
	h.type = CTL_REQUEST;
	buf_init(&b);
	ck_assert_int_eq(buf_append(&b, &h, sizeof(h)), 0);
	ck_assert_int_eq(ctl_get(&b, CTL_MAX_REQUEST, &got, &p), -1);
	buf_reset(&b);
	/* Over the limit: refused from the header, before the payload. */
	h.version = CTL_VERSION;
	h.len = CTL_MAX_REQUEST + 1;
	ck_assert_int_eq(buf_append(&b, &h, sizeof(h)), 0);
	ck_assert_int_eq(ctl_get(&b, CTL_MAX_REQUEST, &got, &p), -1);
	buf_free(&b);
}
END_TEST

START_TEST(test_strs_overrun)
{
	char		p[8];
	uint32_t	n = 5;

	memcpy(p, &n, 4);
	memcpy(p + 4, "abcd", 4);
	ck_assert_int_eq(ctl_get_strs(p, 8, NULL, 0), -1);	/* 5 > 4 */
	ck_assert_int_eq(ctl_get_strs(p, 3, NULL, 0), -1);	/* no length */
	n = 4;
	memcpy(p, &n, 4);
	ck_assert_int_eq(ctl_get_strs(p, 8, NULL, 0), 1);
	ck_assert_int_eq(ctl_get_strs(p, 0, NULL, 0), 0);
}
END_TEST

START_TEST(test_restart_changes_all_named)
{
	struct config	a, b;
	char		err[256], keys[256];

	conf_defaults(&a);
	conf_defaults(&b);
	ck_assert_int_eq(conf_set(&a, "listen", "127.0.0.1:1", err,
	    sizeof(err)), 0);
	ck_assert_int_eq(conf_set(&b, "listen", "127.0.0.1:2", err,
	    sizeof(err)), 0);
	ck_assert_int_eq(conf_set(&b, "max-rooms", "7", err, sizeof(err)), 0);
	ck_assert_int_eq(conf_set(&b, "pidfile", "/x.pid", err, sizeof(err)),
	    0);
	ck_assert_int_eq(conf_set(&b, "max-line", "4096", err, sizeof(err)),
	    0);
	ck_assert_uint_eq(conf_restart_changes(&a, &b, 0, keys,
	    sizeof(keys)), 3);
	ck_assert_str_eq(keys, "listen, max-rooms, pidfile");
	/* Socket activation: the listen lines are not compared. */
	ck_assert_uint_eq(conf_restart_changes(&a, &b, 1, keys,
	    sizeof(keys)), 2);
	ck_assert_str_eq(keys, "max-rooms, pidfile");
	ck_assert_uint_eq(conf_restart_changes(&a, &a, 0, keys,
	    sizeof(keys)), 0);
	ck_assert_str_eq(keys, "");
}
END_TEST

CHECK_SUITE(control_suite, "control", "frames",
    CK_TEST(test_roundtrip), CK_TEST(test_split_every_byte),
    CK_TEST(test_bad_headers), CK_TEST(test_strs_overrun),
    CK_TEST(test_restart_changes_all_named))

CHECK_MAIN(control_suite)
