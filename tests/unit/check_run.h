/*
 * check_run.h: the one main() of the unit tests: run a suite, exit 0 if
 * every test passed.
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

/* A test program whose main only runs the suite that fn builds. */
#define CHECK_MAIN(fn)			\
int					\
main(void)				\
{					\
	return check_run(fn());		\
}

#endif
