/*
 * check_run.h: the one main() of the unit tests: run a suite, exit 0 if
 * every test passed; and the one way a suite is built, from a table of
 * its tests.
 */
#ifndef TALKNET_CHECK_RUN_H
#define TALKNET_CHECK_RUN_H

#include <stdlib.h>

#include <check.h>

/* Runs every test of s; EXIT_SUCCESS if none failed. */
static inline int
check_run(Suite *s)
{
	SRunner	*sr = srunner_create(s);
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* One test of a case: run once, once per table entry, or to an exit. */
struct check_test {
	const TTest	*test;
	int		 loops;		/* > 0: run for _i in [0, loops) */
	int		 exit;		/* != 0: the status it must exit with */
};

#define CHECK_N(a)		((int)(sizeof(a) / sizeof((a)[0])))
#define CK_TEST(t)		{ .test = (t) }
#define CK_LOOP(t, table)	{ .test = (t), .loops = CHECK_N(table) }
#define CK_EXIT(t, st)		{ .test = (t), .exit = (st) }

/* Adds to s a case named name holding the n tests of t, in order. */
static inline void
check_case(Suite *s, const char *name, const struct check_test *t, int n)
{
	TCase	*tc = tcase_create(name);
	int	 i;

	for (i = 0; i < n; i++) {
		if (t[i].loops > 0)
			tcase_add_loop_test(tc, t[i].test, 0, t[i].loops);
		else if (t[i].exit != 0)
			tcase_add_exit_test(tc, t[i].test, t[i].exit);
		else
			tcase_add_test(tc, t[i].test);
	}
	suite_add_tcase(s, tc);
}

/* Defines fn, which builds suite name of one case tcname: the tests. */
#define CHECK_SUITE(fn, name, tcname, ...)				\
static Suite *								\
fn(void)								\
{									\
	const struct check_test	t_[] = { __VA_ARGS__ };			\
	Suite			*s_ = suite_create(name);		\
									\
	check_case(s_, tcname, t_, CHECK_N(t_));			\
	return s_;							\
}

/* A test program whose main only runs the suite that fn builds. */
#define CHECK_MAIN(fn)			\
int					\
main(void)				\
{					\
	return check_run(fn());		\
}

#endif
