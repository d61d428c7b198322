/*
 * check_session.c: unit tests of what a worker's end-of-session report
 * goes through (session.c) and of the wait-status words of the logs
 * (log.c): a report the master cannot trust is refused, totals never
 * wrap, and a status reads "killed by SIGKILL", never "status 0x9".
 */
#include "config.h"

#include <sys/types.h>
#include <sys/wait.h>

#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "session.h"
#include "check_run.h"

/* A report an honest worker could send. */
static struct session_report
good_report(void)
{
	struct session_report	r;

	memset(&r, 0, sizeof(r));
	r.version = SESSION_REPORT_VERSION;
	r.reason = END_QUIT;
	r.lines_in = 3;
	r.bytes_in = 120;
	r.lines_out = 4;
	r.bytes_out = 200;
	r.hits[LIMIT_RATE] = 2;
	return r;
}

START_TEST(test_report_good)
{
	struct session_report	r = good_report(), got;

	ck_assert_int_eq(session_report_get(&r, sizeof(r), &got), 0);
	ck_assert_mem_eq(&r, &got, sizeof(r));
}
END_TEST

START_TEST(test_report_size)
{
	struct session_report	r = good_report(), got;
	char			big[sizeof(r) + 8];

	memset(big, 0, sizeof(big));
	memcpy(big, &r, sizeof(r));
	ck_assert_int_eq(session_report_get(&r, sizeof(r) - 1, &got), -1);
	ck_assert_int_eq(session_report_get(big, sizeof(big), &got), -1);
	ck_assert_int_eq(session_report_get(&r, 0, &got), -1);
	ck_assert_int_eq(session_report_get(&r, 1, &got), -1);
}
END_TEST

/* Each field an honest worker cannot send is refused on its own. */
START_TEST(test_report_forged)
{
	struct session_report	r, got;
	int			i;

	for (i = 0; i < 12; i++) {
		r = good_report();
		switch (i) {
		case 0: r.version = SESSION_REPORT_VERSION + 1; break;
		case 1: r.reason = END_LAST; break;
		case 2: r.reason = END_CRASHED; break;
		case 3: r.pad = 1; break;
		case 4: r.lines_in = r.bytes_in + 1; break;
		case 5: r.lines_out = r.bytes_out + 1; break;
		case 6: r.hits[LIMIT_MAX_CLIENTS] = 1; break;
		case 7: r.hits[LIMIT_MAX_CLIENTS_PER_IP] = 1; break;
		case 8: r.hits[LIMIT_MAX_LINE] = 2; break;
		case 9: r.hits[LIMIT_MAX_QUEUE] = 2; break;
		case 10: r.hits[LIMIT_RATE] = r.lines_in + 1; break;
		case 11: r.reason = 0xffff; break;
		}
		ck_assert_msg(session_report_get(&r, sizeof(r), &got) == -1,
		    "forged report %d taken", i);
	}
}
END_TEST

START_TEST(test_totals)
{
	struct session_totals	t;
	struct session_report	r = good_report();

	memset(&t, 0, sizeof(t));
	session_totals_add(&t, &r, r.reason);
	session_totals_add(&t, &r, r.reason);
	session_totals_add(&t, NULL, END_CRASHED);
	session_totals_add(&t, NULL, 9999);
	ck_assert_uint_eq(t.sessions, 4);
	ck_assert_uint_eq(t.ends[END_QUIT], 2);
	ck_assert_uint_eq(t.ends[END_CRASHED], 1);
	ck_assert_uint_eq(t.ends[END_NONE], 1);
	ck_assert_uint_eq(t.lines_in, 6);
	ck_assert_uint_eq(t.bytes_out, 400);
	ck_assert_uint_eq(t.hits[LIMIT_RATE], 4);
}
END_TEST

/* Huge (forged, yet consistent) numbers stick at the top, never wrap. */
START_TEST(test_totals_saturate)
{
	struct session_totals	t;
	struct session_report	r = good_report();

	memset(&t, 0, sizeof(t));
	r.bytes_in = UINT64_MAX / 2 + 1;
	session_totals_add(&t, &r, r.reason);
	session_totals_add(&t, &r, r.reason);
	session_totals_add(&t, &r, r.reason);
	ck_assert_uint_eq(t.bytes_in, UINT64_MAX);
	ck_assert_uint_eq(t.lines_in, 9);
}
END_TEST

START_TEST(test_end_of_close)
{
	ck_assert_uint_eq(session_end_of_close(CLOSE_KICKED), END_KICKED);
	ck_assert_uint_eq(session_end_of_close(CLOSE_QUEUE), END_QUEUE);
	ck_assert_uint_eq(session_end_of_close(CLOSE_QUIT), END_QUIT);
	ck_assert_uint_eq(session_end_of_close(CLOSE_PROTOCOL),
	    END_SERVER_ERROR);
	ck_assert_uint_eq(session_end_of_close(CLOSE_GONE), END_SERVER_ERROR);
	ck_assert_uint_eq(session_end_of_close(0), END_SERVER_ERROR);
	ck_assert_str_eq(session_end_name(END_KICKED), "kicked");
	ck_assert_str_eq(session_end_name(END_CRASHED), "worker crashed");
	ck_assert_str_eq(session_end_name(12345), "unknown");
}
END_TEST

/* The status of a child that ends as told, from a real waitpid. */
static int
child_status(int how)
{
	pid_t	pid;
	int	status;

	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		/* check's own handlers (SIGTERM kills its group) go. */
		if (how > 0) {
			/* SIGKILL has no handler: SIG_ERR is fine. */
			(void)signal(how, SIG_DFL);
			(void)raise(how);
		}
		_exit(-how);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return status;
}

START_TEST(test_wait_status)
{
	char	buf[LOG_STATUS_LEN];

	ck_assert_str_eq(log_wait_status(child_status(SIGKILL), buf,
	    sizeof(buf)), "killed by SIGKILL");
	ck_assert_str_eq(log_wait_status(child_status(SIGTERM), buf,
	    sizeof(buf)), "killed by SIGTERM");
	ck_assert_str_eq(log_wait_status(child_status(-1), buf, sizeof(buf)),
	    "exited with status 1");
	ck_assert_str_eq(log_wait_status(child_status(0), buf, sizeof(buf)),
	    "exited with status 0");
	ck_assert_str_eq(log_signame(SIGSEGV, buf, sizeof(buf)), "SIGSEGV");
	ck_assert_str_eq(log_signame(SIGSYS, buf, sizeof(buf)), "SIGSYS");
	ck_assert_str_eq(log_signame(1000, buf, sizeof(buf)), "signal 1000");
}
END_TEST

/* The session test suite. */
CHECK_SUITE(session_suite, "session", "report",
    CK_TEST(test_report_good), CK_TEST(test_report_size),
    CK_TEST(test_report_forged), CK_TEST(test_totals),
    CK_TEST(test_totals_saturate), CK_TEST(test_end_of_close),
    CK_TEST(test_wait_status))

CHECK_MAIN(session_suite)
