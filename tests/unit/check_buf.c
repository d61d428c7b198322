/*
 * check_buf.c: unit tests for lib/buf.c.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "check_run.h"

START_TEST(test_empty)
{
	struct buf	b;

	buf_init(&b);
	ck_assert_uint_eq(buf_pending(&b), 0);
	ck_assert_ptr_null(b.data);
	buf_reset(&b);
	buf_drain(&b, 10);
	ck_assert_uint_eq(buf_pending(&b), 0);
	ck_assert_int_eq(buf_append(&b, "", 0), 0);
	ck_assert_ptr_null(b.data);
	buf_free(&b);
	buf_free(&b);
}
END_TEST

START_TEST(test_append_drain)
{
	struct buf	b;

	buf_init(&b);
	ck_assert_int_eq(buf_append(&b, "hello", 5), 0);
	ck_assert_int_eq(buf_append(&b, " world", 6), 0);
	ck_assert_uint_eq(buf_pending(&b), 11);
	ck_assert_int_eq(memcmp(buf_head(&b), "hello world", 11), 0);
	buf_drain(&b, 6);
	ck_assert_uint_eq(buf_pending(&b), 5);
	ck_assert_int_eq(memcmp(buf_head(&b), "world", 5), 0);
	buf_drain(&b, 100);
	ck_assert_uint_eq(buf_pending(&b), 0);
	ck_assert_uint_eq(b.off, 0);
	buf_free(&b);
}
END_TEST

START_TEST(test_reserve_commit)
{
	struct buf	b;

	buf_init(&b);
	ck_assert_int_eq(buf_reserve(&b, 10), 0);
	ck_assert_uint_ge(b.cap - b.len, 10);
	memcpy(b.data + b.len, "abc", 3);
	buf_commit(&b, 3);
	ck_assert_uint_eq(buf_pending(&b), 3);
	ck_assert_int_eq(memcmp(buf_head(&b), "abc", 3), 0);
	buf_reset(&b);
	ck_assert_uint_eq(buf_pending(&b), 0);
	ck_assert_ptr_nonnull(b.data);
	buf_free(&b);
}
END_TEST

START_TEST(test_compact)
{
	struct buf	 b;
	char		*data;
	size_t		 cap;
	char		 chunk[100];

	memset(chunk, 'x', sizeof(chunk));
	buf_init(&b);
	ck_assert_int_eq(buf_reserve(&b, 1), 0);
	cap = b.cap;
	while (b.cap - b.len >= sizeof(chunk))
		ck_assert_int_eq(buf_append(&b, chunk, sizeof(chunk)), 0);
	/* Drain most, then append: must compact instead of growing. */
	buf_drain(&b, buf_pending(&b) - 1);
	data = b.data;
	ck_assert_int_eq(buf_append(&b, "y", 1), 0);
	ck_assert_int_eq(buf_reserve(&b, cap - 2), 0);
	ck_assert_ptr_eq(b.data, data);
	ck_assert_uint_eq(b.cap, cap);
	ck_assert_uint_eq(b.off, 0);
	ck_assert_int_eq(memcmp(buf_head(&b), "xy", 2), 0);
	buf_free(&b);
}
END_TEST

START_TEST(test_grow_large)
{
	struct buf	 b;
	size_t		 i, n = 100000;
	char		*big;

	big = malloc(n);
	ck_assert_ptr_nonnull(big);
	for (i = 0; i < n; i++)
		big[i] = (char)(i % 251);
	buf_init(&b);
	for (i = 0; i < n; i += 1000)
		ck_assert_int_eq(buf_append(&b, big + i, 1000), 0);
	ck_assert_uint_eq(buf_pending(&b), n);
	ck_assert_int_eq(memcmp(buf_head(&b), big, n), 0);
	buf_free(&b);
	free(big);
}
END_TEST

START_TEST(test_overflow)
{
	struct buf	b;

	buf_init(&b);
	ck_assert_int_eq(buf_append(&b, "ab", 2), 0);
	ck_assert_int_eq(buf_reserve(&b, SIZE_MAX), -1);
	ck_assert_int_eq(buf_reserve(&b, SIZE_MAX - 1), -1);
	ck_assert_uint_eq(buf_pending(&b), 2);
	ck_assert_int_eq(memcmp(buf_head(&b), "ab", 2), 0);
	buf_free(&b);
}
END_TEST

START_TEST(test_store)
{
	struct buf	b;
	char		store[16], big[100];
	size_t		i;

	for (i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	buf_init_store(&b, store, sizeof(store));
	ck_assert_ptr_eq(b.data, store);
	ck_assert_int_eq(buf_append(&b, big, 10), 0);
	buf_drain(&b, 4);
	/* Compacting in place is enough: the bytes stay in the store. */
	ck_assert_int_eq(buf_append(&b, big + 10, 10), 0);
	ck_assert_ptr_eq(b.data, store);
	ck_assert_uint_eq(buf_pending(&b), 16);
	ck_assert_int_eq(memcmp(buf_head(&b), big + 4, 16), 0);
	/* Outgrowing it moves the pending bytes to the heap. */
	ck_assert_int_eq(buf_append(&b, big + 20, 80), 0);
	ck_assert_ptr_ne(b.data, store);
	ck_assert_uint_eq(buf_pending(&b), 96);
	ck_assert_int_eq(memcmp(buf_head(&b), big + 4, 96), 0);
	/* Not while bytes are pending; then back into the store. */
	buf_shrink(&b, 0);
	ck_assert_ptr_ne(b.data, store);
	buf_drain(&b, 96);
	buf_shrink(&b, 0);
	ck_assert_ptr_eq(b.data, store);
	ck_assert_uint_eq(b.cap, sizeof(store));
	/* Shrinking or freeing a buffer in its store frees nothing. */
	buf_shrink(&b, 0);
	ck_assert_int_eq(buf_append(&b, "xy", 2), 0);
	buf_free(&b);
	ck_assert_ptr_eq(b.data, store);
	ck_assert_uint_eq(buf_pending(&b), 0);
	/* A resize that fits goes back into the store with its bytes. */
	ck_assert_int_eq(buf_append(&b, big, 40), 0);
	buf_drain(&b, 30);
	ck_assert_int_eq(buf_resize(&b, 12), 0);
	ck_assert_ptr_eq(b.data, store);
	ck_assert_int_eq(memcmp(buf_head(&b), big + 30, 10), 0);
	buf_free(&b);
}
END_TEST

/* The buf test suite. */
/*
 * With buf_map_storage, storage past the store is a mapping: bytes
 * survive growth (mremap) and the way back into the store, and an empty
 * buffer gives its pages back.
 */
START_TEST(test_mapped_storage)
{
	struct buf	b;
	char		store[64], chunk[1000];
	size_t		i;

	buf_map_storage();
	buf_init_store(&b, store, sizeof(store));
	for (i = 0; i < 300; i++) {
		memset(chunk, 'a' + (int)(i % 26), sizeof(chunk));
		ck_assert_int_eq(buf_append(&b, chunk, sizeof(chunk)), 0);
	}
	ck_assert(b.mapped);
	ck_assert(b.data != store);
	ck_assert_uint_eq(b.cap % 4096, 0);
	for (i = 0; i < 300; i++) {
		ck_assert_int_eq(buf_head(&b)[0], 'a' + (int)(i % 26));
		ck_assert_int_eq(buf_head(&b)[999], 'a' + (int)(i % 26));
		buf_drain(&b, 1000);
	}
	ck_assert_int_eq(buf_append(&b, "xyz", 3), 0);
	ck_assert_int_eq(buf_resize(&b, 0), 0);	/* back into the store */
	ck_assert(b.data == store);
	ck_assert(!b.mapped);
	ck_assert_int_eq(memcmp(buf_head(&b), "xyz", 3), 0);
	ck_assert_int_eq(buf_append(&b, chunk, sizeof(chunk)), 0);
	ck_assert(b.mapped);
	buf_drain(&b, buf_pending(&b));
	buf_shrink(&b, 0);
	ck_assert(b.data == store && !b.mapped && b.cap == sizeof(store));
	buf_free(&b);
}
END_TEST

CHECK_SUITE(buf_suite, "buf", "core",
    CK_TEST(test_empty), CK_TEST(test_append_drain),
    CK_TEST(test_reserve_commit), CK_TEST(test_compact),
    CK_TEST(test_grow_large), CK_TEST(test_overflow), CK_TEST(test_store),
    CK_TEST(test_mapped_storage))

/* Runs the suite; exits non-zero on failure. */
CHECK_MAIN(buf_suite)
