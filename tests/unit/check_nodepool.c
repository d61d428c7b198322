/*
 * check_nodepool.c: unit tests of the master's record pool: records are
 * zeroed, distinct and reused, and a forked child has no copy of them.
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nodepool.h"
#include "check_run.h"

/* 1 when the page holding p is mapped in this process, 0 when not. */
static int
is_mapped(const void *p)
{
	uintptr_t	page = (uintptr_t)p & ~(uintptr_t)4095;

	if (msync((void *)page, 4096, MS_ASYNC) == 0)
		return 1;
	ck_assert_int_eq(errno, ENOMEM);
	return 0;
}

/* Forks a child that reports whether p is mapped there; returns that. */
static int
mapped_in_child(const void *p)
{
	pid_t	pid;
	int	status;

	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0)
		_exit(is_mapped(p) ? 1 : 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

START_TEST(test_get_put)
{
	struct nodepool	 np;
	char		*a, *b, *c;

	nodepool_init(&np, 40);
	a = nodepool_get(&np);
	b = nodepool_get(&np);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_ne(a, b);
	ck_assert_uint_eq((uintptr_t)a % 16, 0);
	ck_assert_uint_eq((uintptr_t)b % 16, 0);
	ck_assert_uint_ge((size_t)(a < b ? b - a : a - b), 40);
	memset(a, 0xa5, 40);
	memset(b, 0x5a, 40);
	/* A record given back comes back next, zeroed. */
	nodepool_put(&np, a);
	c = nodepool_get(&np);
	ck_assert_ptr_eq(c, a);
	ck_assert_int_eq(c[0], 0);
	ck_assert_int_eq(c[39], 0);
	ck_assert_int_eq((unsigned char)b[0], 0x5a);
	nodepool_put(&np, NULL);
}
END_TEST

/* Enough records for several chunks, each distinct and intact. */
START_TEST(test_many)
{
	struct nodepool	  np;
	enum {		  N = 20000 };
	uint32_t	**rec;
	size_t		  i;

	rec = calloc(N, sizeof(*rec));
	ck_assert_ptr_nonnull(rec);
	nodepool_init(&np, 3 * sizeof(uint32_t));
	for (i = 0; i < N; i++) {
		rec[i] = nodepool_get(&np);
		ck_assert_ptr_nonnull(rec[i]);
		ck_assert_uint_eq(rec[i][0] | rec[i][1] | rec[i][2], 0);
		rec[i][0] = rec[i][2] = (uint32_t)i;
	}
	for (i = 0; i < N; i += 2)
		nodepool_put(&np, rec[i]);
	for (i = 0; i < N; i += 2) {
		rec[i] = nodepool_get(&np);
		rec[i][0] = rec[i][2] = (uint32_t)i;
	}
	for (i = 0; i < N; i++)
		ck_assert(rec[i][0] == i && rec[i][2] == i);
	free(rec);
}
END_TEST

/* The point of the pool: a forked child has no copy of the records. */
START_TEST(test_not_inherited)
{
	struct nodepool	 np;
	char		*a, *m;

	nodepool_init(&np, 64);
	a = nodepool_get(&np);
	ck_assert_ptr_nonnull(a);
	m = nodepool_map(100);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(m[0] | m[99], 0);
	ck_assert_int_eq(is_mapped(a), 1);
	ck_assert_int_eq(is_mapped(m), 1);
	ck_assert_int_eq(mapped_in_child(a), 0);
	ck_assert_int_eq(mapped_in_child(m), 0);
	/* A control: the stack is inherited as usual. */
	ck_assert_int_eq(mapped_in_child(&np), 1);
}
END_TEST

/* The nodepool test suite. */
CHECK_SUITE(nodepool_suite, "nodepool", "core",
    CK_TEST(test_get_put), CK_TEST(test_many), CK_TEST(test_not_inherited))

CHECK_MAIN(nodepool_suite)
