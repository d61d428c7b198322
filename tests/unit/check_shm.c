/*
 * check_shm.c: unit tests of the shared table's layout, over plain
 * memory: sizes, row addressing, bitmaps and the header check.
 */
#include "config.h"

#include <sys/mman.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "shm.h"
#include "check_run.h"

/* Allocates and formats a table. */
static struct shm_table
table_new(size_t users, size_t rooms, size_t name, size_t room)
{
	struct shm_table	t;
	size_t			size = shm_size(users, rooms, name, room);
	void			*mem;

	ck_assert_uint_gt(size, 0);
	mem = aligned_alloc(64, (size + 63) & ~(size_t)63);
	ck_assert_ptr_nonnull(mem);
	shm_format(mem, size, users, rooms, name, room);
	t.hdr = mem;
	t.size = size;
	return t;
}

START_TEST(test_layout)
{
	struct shm_table	 t = table_new(1000, 1000, 8, 16);
	struct shm_user		*u0, *u999;
	struct shm_room		*r0, *r999;
	char			*end = (char *)t.hdr + t.size;

	ck_assert_int_eq(shm_check(t.hdr, t.size), 0);
	ck_assert_uint_eq(t.hdr->bitmap_words, 16);
	u0 = shm_user(&t, 0);
	u999 = shm_user(&t, 999);
	r0 = shm_room(&t, 0);
	r999 = shm_room(&t, 999);
	ck_assert_ptr_eq((char *)u999 + t.hdr->user_stride, (char *)r0);
	ck_assert_ptr_eq((char *)r999 + t.hdr->room_stride, end);
	ck_assert_ptr_eq(shm_user_name(&t, u0), (char *)(u0 + 1));
	/* The name space holds max_name code points of 4 bytes. */
	ck_assert_uint_ge(t.hdr->name_bytes, 8 * 4);
	ck_assert_uint_ge(t.hdr->room_bytes, 16 * 4);
	ck_assert_ptr_eq(shm_room_name(&t, r999) + t.hdr->room_bytes, end);
	free(t.hdr);
}
END_TEST

START_TEST(test_bitmaps)
{
	struct shm_table	 t = table_new(130, 3, 8, 16);
	struct shm_room		*r = shm_room(&t, 1);
	uint64_t		*m = shm_room_members(&t, r);
	uint64_t		*inv = shm_room_invited(&t, r);
	uint32_t		 i;

	ck_assert_uint_eq(t.hdr->bitmap_words, 3);
	shm_bit_set(m, 0);
	shm_bit_set(m, 64);
	shm_bit_set(m, 129);
	shm_bit_set(inv, 5);
	for (i = 0; i < 130; i++) {
		ck_assert_int_eq(shm_bit_test(m, i),
		    i == 0 || i == 64 || i == 129);
		ck_assert_int_eq(shm_bit_test(inv, i), i == 5);
	}
	shm_bit_clear(m, 64);
	ck_assert_int_eq(shm_bit_test(m, 64), 0);
	ck_assert_int_eq(shm_bit_test(m, 129), 1);
	/* Writing room 1 leaves rooms 0 and 2 untouched. */
	memset(shm_room_name(&t, r), 'x', t.hdr->room_bytes);
	ck_assert_uint_eq(shm_room(&t, 2)->in_use, 0);
	ck_assert_uint_eq(shm_room_members(&t, shm_room(&t, 2))[0], 0);
	ck_assert_int_eq(shm_check(t.hdr, t.size), 0);
	free(t.hdr);
}
END_TEST

START_TEST(test_check_rejects)
{
	struct shm_table	t = table_new(10, 10, 8, 16);

	ck_assert_int_eq(shm_check(t.hdr, t.size - 8), -1);
	t.hdr->magic ^= 1;
	ck_assert_int_eq(shm_check(t.hdr, t.size), -1);
	t.hdr->magic ^= 1;
	t.hdr->version++;
	ck_assert_int_eq(shm_check(t.hdr, t.size), -1);
	t.hdr->version--;
	t.hdr->room_stride += 8;
	ck_assert_int_eq(shm_check(t.hdr, t.size), -1);
	t.hdr->room_stride -= 8;
	ck_assert_int_eq(shm_check(t.hdr, t.size), 0);
	free(t.hdr);
}
END_TEST

START_TEST(test_generation)
{
	struct shm_table	t = table_new(10, 10, 8, 16);

	ck_assert_uint_eq(t.hdr->gen, 0);
	shm_begin(&t);
	ck_assert_uint_eq(t.hdr->gen & 1, 1);
	shm_commit(&t);
	ck_assert_uint_eq(t.hdr->gen, 2);
	free(t.hdr);
}
END_TEST

START_TEST(test_size_limits)
{
	ck_assert_uint_eq(shm_size(0, 10, 8, 16), 0);
	ck_assert_uint_eq(shm_size(10, 0, 8, 16), 0);
	ck_assert_uint_eq(shm_size(10, 10, 0, 16), 0);
	ck_assert_uint_gt(shm_size(1, 1, 1, 1), 0);
	/* More clients cost more per room: two bitmaps of one bit each. */
	ck_assert_uint_gt(shm_size(1000, 1000, 8, 16),
	    shm_size(64, 1000, 8, 16));
}
END_TEST

START_TEST(test_users)
{
	struct shm_table	 t = table_new(4, 2, 8, 16);
	struct shm_user		*u = shm_user(&t, 2);

	shm_user_attach(&t, 2, 1234);
	ck_assert_uint_eq(u->state, USER_CONNECTED);
	ck_assert_int_eq(u->pid, 1234);
	shm_user_identify(&t, 2, "K\xc3\xa9vin", 6);
	ck_assert_uint_eq(u->state, USER_IDENTIFIED);
	ck_assert_uint_eq(u->name_len, 6);
	ck_assert(memcmp(shm_user_name(&t, u), "K\xc3\xa9vin", 6) == 0);
	ck_assert_uint_eq(t.hdr->nidentified, 1);
	ck_assert_uint_gt(u->seq, 0);
	shm_user_unidentify(&t, 2);
	ck_assert_uint_eq(u->state, USER_CONNECTED);
	ck_assert_uint_eq(t.hdr->nidentified, 0);
	ck_assert_int_eq(u->pid, 1234);
	/* Unidentifying twice does not count twice. */
	shm_user_unidentify(&t, 2);
	ck_assert_uint_eq(t.hdr->nidentified, 0);
	shm_user_identify(&t, 2, "Luis", 4);
	shm_user_detach(&t, 2);
	ck_assert_uint_eq(u->state, USER_FREE);
	ck_assert_uint_eq(t.hdr->nidentified, 0);
	ck_assert_int_eq(shm_check(t.hdr, t.size), 0);
	free(t.hdr);
}
END_TEST

START_TEST(test_rooms)
{
	struct shm_table	 t = table_new(70, 2, 8, 16);
	struct shm_room		*row = shm_room(&t, 1);

	shm_room_create(&t, 1, "Room 1", 6, 0);
	ck_assert_uint_eq(row->in_use, 1);
	ck_assert_uint_eq(row->nmembers, 1);
	ck_assert_uint_eq(t.hdr->nrooms, 1);
	ck_assert(memcmp(shm_room_name(&t, row), "Room 1", 6) == 0);
	ck_assert_int_eq(shm_room_is_member(&t, 1, 0), 1);
	ck_assert_int_eq(shm_room_is_member(&t, 1, 69), 0);

	/* Inviting a member does nothing; inviting others marks them. */
	shm_room_invite(&t, 1, 0);
	ck_assert_int_eq(shm_room_is_invited(&t, 1, 0), 0);
	shm_room_invite(&t, 1, 69);
	shm_room_invite(&t, 1, 5);
	ck_assert_int_eq(shm_room_is_invited(&t, 1, 69), 1);
	ck_assert_int_eq(shm_room_is_member(&t, 1, 69), 0);

	/* Joining uses the invitation up; joining again counts once. */
	shm_room_join(&t, 1, 69);
	ck_assert_int_eq(shm_room_is_invited(&t, 1, 69), 0);
	ck_assert_int_eq(shm_room_is_member(&t, 1, 69), 1);
	ck_assert_uint_eq(row->nmembers, 2);
	shm_room_join(&t, 1, 69);
	ck_assert_uint_eq(row->nmembers, 2);

	shm_room_uninvite(&t, 1, 5);
	ck_assert_int_eq(shm_room_is_invited(&t, 1, 5), 0);
	shm_room_invite(&t, 1, 5);

	/* Leaving: the last one out frees the row and its invitations. */
	ck_assert_uint_eq(shm_room_leave(&t, 1, 0), 1);
	ck_assert_int_eq(shm_room_is_member(&t, 1, 0), 0);
	ck_assert_uint_eq(shm_room_leave(&t, 1, 69), 0);
	ck_assert_uint_eq(row->in_use, 0);
	ck_assert_uint_eq(row->name_len, 0);
	ck_assert_int_eq(shm_room_is_invited(&t, 1, 5), 0);
	ck_assert_uint_eq(t.hdr->nrooms, 0);
	/* Room 0 was never touched. */
	ck_assert_uint_eq(shm_room(&t, 0)->in_use, 0);
	free(t.hdr);
}
END_TEST

START_TEST(test_repair)
{
	struct shm_table	 t = table_new(70, 3, 8, 16);
	struct shm_room		*r0 = shm_room(&t, 0), *r1 = shm_room(&t, 1);

	shm_user_attach(&t, 0, 10);
	shm_user_identify(&t, 0, "a", 1);
	shm_user_attach(&t, 65, 11);
	shm_user_identify(&t, 65, "b", 1);
	shm_room_create(&t, 0, "R", 1, 0);
	shm_room_invite(&t, 0, 65);
	ck_assert_uint_eq(shm_repair(&t), 0);

	/* A hub died halfway through b leaving and a joining room 1. */
	shm_begin(&t);
	shm_room_create(&t, 1, "S", 1, 65);
	shm_bit_set(shm_room_members(&t, r1), 0);	/* nmembers not yet */
	shm_user_unidentify(&t, 65);			/* b's bits remain */
	ck_assert_uint_eq(t.hdr->gen & 1, 1);
	ck_assert_uint_gt(shm_repair(&t), 0);
	ck_assert_uint_eq(t.hdr->gen & 1, 0);
	/* b's invitation to R is gone; S holds only a, counted right. */
	ck_assert_int_eq(shm_room_is_invited(&t, 0, 65), 0);
	ck_assert_int_eq(shm_room_is_member(&t, 1, 65), 0);
	ck_assert_int_eq(shm_room_is_member(&t, 1, 0), 1);
	ck_assert_uint_eq(r1->nmembers, 1);
	ck_assert_uint_eq(r0->nmembers, 1);
	ck_assert_uint_eq(t.hdr->nrooms, 2);
	ck_assert_uint_eq(t.hdr->nidentified, 1);

	/* A room left with no identified member is freed. */
	shm_user_unidentify(&t, 0);
	ck_assert_uint_gt(shm_repair(&t), 0);
	ck_assert_uint_eq(r0->in_use, 0);
	ck_assert_uint_eq(r1->in_use, 0);
	ck_assert_uint_eq(t.hdr->nrooms, 0);
	/* A bad state is cleared; a second pass finds nothing. */
	shm_user(&t, 3)->state = 77;
	ck_assert_uint_gt(shm_repair(&t), 0);
	ck_assert_uint_eq(shm_user(&t, 3)->state, USER_FREE);
	ck_assert_uint_eq(shm_repair(&t), 0);
	free(t.hdr);
}
END_TEST

/* Creates a formatted segment and maps it as the master does for workers. */
static const struct shm_hdr *
map_worker_view(char *name, size_t namelen)
{
	const void	*ro;
	size_t		 size = shm_size(10, 10, 8, 16);
	void		*rw;
	int		 fd;

	(void)snprintf(name, namelen, "/talknetd-check.%ld", (long)getpid());
	(void)shm_unlink(name);
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	rw = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(rw, MAP_FAILED);
	shm_format(rw, size, 10, 10, 8, 16);
	close(fd);
	ro = shm_map_readonly(name, size);
	ck_assert_ptr_nonnull(ro);
	ck_assert_int_eq(shm_check(ro, size), 0);
	return ro;
}

START_TEST(test_readonly_cannot_be_made_writable)
{
	char			 name[64];
	const struct shm_hdr	*h = map_worker_view(name, sizeof(name));

	ck_assert_int_eq(mprotect((void *)(uintptr_t)h, sizeof(*h),
	    PROT_READ | PROT_WRITE), -1);
	ck_assert_int_eq(errno, EACCES);
	(void)shm_unlink(name);
}
END_TEST

/* Pages of [p, p + size) resident in memory, by mincore(). */
static size_t
resident_pages(void *p, size_t size)
{
	long		 pg = sysconf(_SC_PAGESIZE);
	size_t		 n = (size + (size_t)pg - 1) / (size_t)pg, i, in = 0;
	unsigned char	*vec = calloc(n, 1);

	ck_assert_ptr_nonnull(vec);
	ck_assert_int_eq(mincore(p, size, vec), 0);
	for (i = 0; i < n; i++)
		in += vec[i] & 1;
	free(vec);
	return in;
}

/*
 * Formatting a shared segment, fresh or dirty, leaves only the pages it
 * writes resident: a table sized for many rooms costs what is used.
 */
START_TEST(test_format_leaves_pages_free)
{
	char	 name[64];
	size_t	 size = shm_size(2000, 2000, 16, 16);
	void	*rw;
	int	 fd;

	(void)snprintf(name, sizeof(name), "/talknetd-check.%ld",
	    (long)getpid());
	(void)shm_unlink(name);
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ne(fd, -1);
	(void)shm_unlink(name);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	rw = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(rw, MAP_FAILED);
	close(fd);
	ck_assert_uint_gt(size, 256 * 4096);
	shm_format(rw, size, 2000, 2000, 16, 16);
	ck_assert_uint_le(resident_pages(rw, size), 4);
	/* A dirty table (a hub that could not resume) is cleared too. */
	memset(rw, 0x5a, size);
	shm_format(rw, size, 2000, 2000, 16, 16);
	ck_assert_uint_le(resident_pages(rw, size), 4);
	ck_assert_int_eq(shm_check(rw, size), 0);
	ck_assert_int_eq(((unsigned char *)rw)[size - 1], 0);
	ck_assert_uint_le(resident_pages(rw, size), 5);
	ck_assert_int_eq(munmap(rw, size), 0);
}
END_TEST

/* Ends the forked test with a status of its own on SIGSEGV. */
static void
on_segv(int sig)
{
	(void)sig;
	_exit(42);
}

START_TEST(test_readonly_write_faults)
{
	char			 name[64];
	const struct shm_hdr	*h = map_worker_view(name, sizeof(name));
	struct sigaction	 sa;

	(void)shm_unlink(name);
	/* Our own handler, so the sanitizers' does not turn it into 1. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_segv;
	ck_assert_int_eq(sigaction(SIGSEGV, &sa, NULL), 0);
	/* What a compromised worker would try: this must fault. */
	*(volatile uint32_t *)(uintptr_t)&h->nrooms = 7;
	ck_abort_msg("writing the read-only table did not fault");
}
END_TEST

/* Collects the table tests. */
CHECK_SUITE(shm_suite, "shm", "table",
    CK_TEST(test_layout), CK_TEST(test_bitmaps), CK_TEST(test_check_rejects),
    CK_TEST(test_generation), CK_TEST(test_size_limits), CK_TEST(test_users),
    CK_TEST(test_rooms), CK_TEST(test_repair),
    CK_TEST(test_format_leaves_pages_free),
    CK_TEST(test_readonly_cannot_be_made_writable),
    CK_EXIT(test_readonly_write_faults, 42))

CHECK_MAIN(shm_suite)
