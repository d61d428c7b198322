/*
 * shm.c: layout of and access to the users and rooms table.  The
 * mapping itself (shm_open, mmap) is done by its owners, the master and
 * the hub; this file only computes offsets, so it can be unit-tested
 * over plain memory.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/mman.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "shm.h"

#define SHM_ALIGN	8

/* Rounds n up to the table's alignment. */
static size_t
shm_align(size_t n)
{
	return (n + SHM_ALIGN - 1) & ~(size_t)(SHM_ALIGN - 1);
}

/* Bytes needed for a name of max code points (4 bytes each in UTF-8). */
static size_t
shm_name_bytes(size_t max_cp)
{
	return shm_align(max_cp * 4);
}

/* Bytes a table for these limits takes; 0 if it would overflow. */
size_t
shm_size(size_t max_users, size_t max_rooms, size_t max_name, size_t max_room)
{
	size_t	words, user_stride, room_stride;

	if (max_users == 0 || max_users > UINT32_MAX / 2 ||
	    max_rooms == 0 || max_rooms > UINT32_MAX / 2 ||
	    max_name == 0 || max_name > 65536 ||
	    max_room == 0 || max_room > 65536)
		return 0;
	words = (max_users + 63) / 64;
	user_stride = sizeof(struct shm_user) + shm_name_bytes(max_name);
	room_stride = sizeof(struct shm_room) + 2 * words * sizeof(uint64_t) +
	    shm_name_bytes(max_room);
	if (user_stride > SIZE_MAX / max_users ||
	    room_stride > SIZE_MAX / max_rooms)
		return 0;
	return shm_align(sizeof(struct shm_hdr)) + user_stride * max_users +
	    room_stride * max_rooms;
}

/* Lays out an empty table over mem. */
void
shm_format(void *mem, size_t size, size_t max_users, size_t max_rooms,
    size_t max_name, size_t max_room)
{
	struct shm_hdr	*h = mem;
	size_t		 words = (max_users + 63) / 64;

	/*
	 * A shared mapping is zeroed by freeing its pages: a table sized
	 * for 20,000 rooms is 100 MB, and writing zeros would make every
	 * page of it resident for good.  Other memory is cleared by hand.
	 */
	if (madvise(mem, size, MADV_REMOVE) == -1)
		memset(mem, 0, size);
	h->magic = SHM_MAGIC;
	h->version = SHM_VERSION;
	h->size = size;
	h->max_users = (uint32_t)max_users;
	h->max_rooms = (uint32_t)max_rooms;
	h->name_bytes = (uint32_t)shm_name_bytes(max_name);
	h->room_bytes = (uint32_t)shm_name_bytes(max_room);
	h->bitmap_words = (uint32_t)words;
	h->user_stride = (uint32_t)(sizeof(struct shm_user) + h->name_bytes);
	h->room_stride = (uint32_t)(sizeof(struct shm_room) +
	    2 * words * sizeof(uint64_t) + h->room_bytes);
	h->users_off = shm_align(sizeof(struct shm_hdr));
	h->rooms_off = h->users_off + (uint64_t)h->user_stride * max_users;
	h->gen = 0;
}

/* Checks a mapped header against its mapping size. */
int
shm_check(const void *mem, size_t size)
{
	const struct shm_hdr	*h = mem;
	size_t			 words;

	if (size < sizeof(*h) || h->magic != SHM_MAGIC ||
	    h->version != SHM_VERSION || h->size != size)
		return -1;
	if (h->max_users == 0 || h->max_rooms == 0)
		return -1;
	words = ((size_t)h->max_users + 63) / 64;
	if (h->bitmap_words != words ||
	    h->user_stride != sizeof(struct shm_user) + h->name_bytes ||
	    h->room_stride != sizeof(struct shm_room) +
	    2 * words * sizeof(uint64_t) + h->room_bytes)
		return -1;
	if (h->users_off != shm_align(sizeof(*h)) ||
	    h->rooms_off != h->users_off + (uint64_t)h->user_stride *
	    h->max_users ||
	    h->rooms_off + (uint64_t)h->room_stride * h->max_rooms != size)
		return -1;
	return 0;
}

/* Maps the named segment read-only from a read-only descriptor. */
const void *
shm_map_readonly(const char *name, size_t size)
{
	void	*mem;
	int	 fd, saved;

	/* O_RDONLY: a PROT_WRITE upgrade of a MAP_SHARED map then fails. */
	if ((fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0)) == -1)
		return NULL;
	mem = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	saved = errno;
	close(fd);
	errno = saved;
	return mem == MAP_FAILED ? NULL : mem;
}

/* Row i of the users. */
struct shm_user *
shm_user(const struct shm_table *t, uint32_t i)
{
	return (struct shm_user *)((char *)t->hdr + t->hdr->users_off +
	    (size_t)i * t->hdr->user_stride);
}

/* Row i of the rooms. */
struct shm_room *
shm_room(const struct shm_table *t, uint32_t i)
{
	return (struct shm_room *)((char *)t->hdr + t->hdr->rooms_off +
	    (size_t)i * t->hdr->room_stride);
}

/* A user's name bytes. */
char *
shm_user_name(const struct shm_table *t, struct shm_user *u)
{
	(void)t;
	return (char *)(u + 1);
}

/* A room's member bitmap, indexed by user row. */
uint64_t *
shm_room_members(const struct shm_table *t, struct shm_room *r)
{
	(void)t;
	return (uint64_t *)(r + 1);
}

/* A room's invited bitmap, indexed by user row. */
uint64_t *
shm_room_invited(const struct shm_table *t, struct shm_room *r)
{
	return shm_room_members(t, r) + t->hdr->bitmap_words;
}

/* A room's name bytes, after its two bitmaps. */
char *
shm_room_name(const struct shm_table *t, struct shm_room *r)
{
	return (char *)(shm_room_invited(t, r) + t->hdr->bitmap_words);
}

/* Tests bit i. */
int
shm_bit_test(const uint64_t *map, uint32_t i)
{
	return (map[i / 64] >> (i % 64)) & 1;
}

/* Sets bit i. */
void
shm_bit_set(uint64_t *map, uint32_t i)
{
	map[i / 64] |= (uint64_t)1 << (i % 64);
}

/* Clears bit i. */
void
shm_bit_clear(uint64_t *map, uint32_t i)
{
	map[i / 64] &= ~((uint64_t)1 << (i % 64));
}

/*
 * Marks the table as being changed.  The barrier keeps the compiler and
 * CPU from moving row writes before the odd generation is visible, so a
 * reader (or a restarted hub) can tell a torn update.
 */
void
shm_begin(const struct shm_table *t)
{
	t->hdr->gen++;
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

/* Marks the table as consistent again (gen even). */
void
shm_commit(const struct shm_table *t)
{
	__atomic_thread_fence(__ATOMIC_RELEASE);
	t->hdr->gen++;
}

/*
 * Writes the live limits.  A seqlock, not shm_begin: workers read them
 * without a lock, and a torn copy must never be taken for a new one.
 */
void
shm_live_set(const struct shm_table *t, const struct shm_live *l)
{
	struct shm_hdr	*h = t->hdr;

	__atomic_store_n(&h->live_gen, h->live_gen + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memcpy(&h->live, l, sizeof(*l));
	__atomic_store_n(&h->live_gen, h->live_gen + 1, __ATOMIC_RELEASE);
}

/* The generation of the live limits (odd: being written). */
uint64_t
shm_live_gen(const struct shm_table *t)
{
	return __atomic_load_n(&t->hdr->live_gen, __ATOMIC_ACQUIRE);
}

/* Reads a stable copy of the live limits, and its generation. */
int
shm_live_get(const struct shm_table *t, struct shm_live *l, uint64_t *gen)
{
	uint64_t	g1, g2;
	int		i;

	for (i = 0; i < 100; i++) {
		g1 = shm_live_gen(t);
		if (g1 & 1)
			continue;
		memcpy(l, (const void *)&t->hdr->live, sizeof(*l));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		g2 = __atomic_load_n(&t->hdr->live_gen, __ATOMIC_RELAXED);
		if (g1 == g2) {
			*gen = g1;
			return 0;
		}
	}
	return -1;
}

/*
 * Opens a seqlock for writing (gen odd), returning the old gen.  A hub
 * killed while it wrote left gen odd: the next starts from the even
 * below, or its writes would leave it odd for good, never trusted.
 */
static uint64_t
shm_seq_open(volatile uint64_t *gen)
{
	uint64_t	g = *gen & ~(uint64_t)1;

	__atomic_store_n(gen, g + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	return g;
}

/* Closes it again (gen even, one step on). */
static void
shm_seq_close(volatile uint64_t *gen, uint64_t g)
{
	__atomic_store_n(gen, g + 2, __ATOMIC_RELEASE);
}

/* Writes the cluster's nodes under their seqlock (the hub only). */
void
shm_nodes_set(const struct shm_table *t, const struct shm_nodes *n)
{
	struct shm_nodes	*d = &t->hdr->nodes;
	uint64_t		 g = shm_seq_open(&d->gen);

	d->version = SHM_NODES_VERSION;
	d->n = n->n;
	d->total = n->total;
	d->at = n->at;
	memcpy(d->node, n->node, sizeof(d->node));
	shm_seq_close(&d->gen, g);
}

/*
 * Copies len bytes of a part of the table that gen guards (a seqlock:
 * it retries while the hub writes); 0, or -1 if no stable copy came.
 */
static int
shm_seq_copy(const volatile uint64_t *gen, void *dst, const void *src,
    size_t len)
{
	uint64_t	g1, g2;
	int		i;

	for (i = 0; i < 100; i++) {
		g1 = __atomic_load_n(gen, __ATOMIC_ACQUIRE);
		if (g1 & 1)
			continue;
		memcpy(dst, src, len);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		g2 = __atomic_load_n(gen, __ATOMIC_RELAXED);
		if (g1 == g2)
			return 0;
	}
	return -1;
}

/* Reads a stable copy of the cluster's nodes; 0, or -1 if none. */
int
shm_nodes_get(const struct shm_table *t, struct shm_nodes *n)
{
	const struct shm_nodes	*s = &t->hdr->nodes;

	return shm_seq_copy(&s->gen, n, (const void *)s, sizeof(*n));
}

/*
 * Writes every stream's last id (the hub only).  A hub killed in the
 * middle leaves gen odd, and the next hub does not trust them.
 */
void
shm_tails_set(const struct shm_table *t, const struct shm_tails *v)
{
	struct shm_tails	*d = &t->hdr->tails;
	uint64_t		 g = shm_seq_open(&d->gen);

	d->version = v->version;
	d->n = v->n;
	memcpy(d->joins, v->joins, sizeof(d->joins));
	memcpy(d->tail, v->tail, sizeof(d->tail));
	shm_seq_close(&d->gen, g);
}

/* Writes one row's last id; row -1 is tn:joins' (the hub only). */
void
shm_tails_id(const struct shm_table *t, int row, const char *id)
{
	struct shm_tails	*d = &t->hdr->tails;
	char			*to;
	uint64_t		 g;

	if (row >= SHM_TAILS_MAX || (row >= 0 && (uint32_t)row >= d->n))
		return;
	to = row < 0 ? d->joins : d->tail[row].id;
	g = shm_seq_open(&d->gen);
	(void)strlcpy(to, id, SHM_TAIL_ID);
	shm_seq_close(&d->gen, g);
}

/* Reads a stable copy of the streams' last ids; 0, or -1 if none. */
int
shm_tails_get(const struct shm_table *t, struct shm_tails *v)
{
	const struct shm_tails	*s = &t->hdr->tails;

	return shm_seq_copy(&s->gen, v, (const void *)s, sizeof(*v));
}

/* Gives user row i to a worker's connection. */
void
shm_user_attach(const struct shm_table *t, uint32_t i, int32_t pid)
{
	struct shm_user	*u = shm_user(t, i);

	memset(u, 0, t->hdr->user_stride);
	u->state = USER_CONNECTED;
	u->pid = pid;
}

/* Gives user row i to a user of another node: no worker, no pid. */
void
shm_user_attach_remote(const struct shm_table *t, uint32_t i)
{
	shm_user_attach(t, i, 0);
	shm_user(t, i)->remote = 1;
}

/* Names user row i and makes it ACTIVE. */
void
shm_user_identify(const struct shm_table *t, uint32_t i, const char *name,
    size_t len)
{
	struct shm_user	*u = shm_user(t, i);

	memcpy(shm_user_name(t, u), name, len);
	u->name_len = (uint32_t)len;
	u->status = 0;		/* STATUS_ACTIVE */
	u->seq = ++t->hdr->seq;
	u->state = USER_IDENTIFIED;
	t->hdr->nidentified++;
}

/* Takes the name back: the row stays attached, unidentified. */
void
shm_user_unidentify(const struct shm_table *t, uint32_t i)
{
	struct shm_user	*u = shm_user(t, i);

	if (u->state != USER_IDENTIFIED)
		return;
	memset(shm_user_name(t, u), 0, t->hdr->name_bytes);
	u->name_len = 0;
	u->status = 0;
	u->state = USER_CONNECTED;
	t->hdr->nidentified--;
}

/* Frees user row i. */
void
shm_user_detach(const struct shm_table *t, uint32_t i)
{
	shm_user_unidentify(t, i);
	memset(shm_user(t, i), 0, t->hdr->user_stride);
}

/* Creates room row r with its creator as the only member. */
void
shm_room_create(const struct shm_table *t, uint32_t r, const char *name,
    size_t len, uint32_t creator)
{
	struct shm_room	*row = shm_room(t, r);

	memset(row, 0, t->hdr->room_stride);
	memcpy(shm_room_name(t, row), name, len);
	row->name_len = (uint32_t)len;
	row->seq = ++t->hdr->seq;
	shm_bit_set(shm_room_members(t, row), creator);
	row->nmembers = 1;
	row->creator = creator;
	row->in_use = 1;
	t->hdr->nrooms++;
}

/* Whether user u is a member of room r. */
int
shm_room_is_member(const struct shm_table *t, uint32_t r, uint32_t u)
{
	return shm_bit_test(shm_room_members(t, shm_room(t, r)), u);
}

/* Whether user u is invited to room r. */
int
shm_room_is_invited(const struct shm_table *t, uint32_t r, uint32_t u)
{
	return shm_bit_test(shm_room_invited(t, shm_room(t, r)), u);
}

/* Invites user u to room r; members and the invited are left alone. */
void
shm_room_invite(const struct shm_table *t, uint32_t r, uint32_t u)
{
	if (!shm_room_is_member(t, r, u))
		shm_bit_set(shm_room_invited(t, shm_room(t, r)), u);
}

/* Drops user u's invitation to room r, if any. */
void
shm_room_uninvite(const struct shm_table *t, uint32_t r, uint32_t u)
{
	shm_bit_clear(shm_room_invited(t, shm_room(t, r)), u);
}

/* Makes user u a member, using up the invitation. */
void
shm_room_join(const struct shm_table *t, uint32_t r, uint32_t u)
{
	struct shm_room	*row = shm_room(t, r);

	shm_bit_clear(shm_room_invited(t, row), u);
	if (!shm_bit_test(shm_room_members(t, row), u)) {
		shm_bit_set(shm_room_members(t, row), u);
		row->nmembers++;
	}
}

/* Removes member u from room r; frees the row when it empties. */
uint32_t
shm_room_leave(const struct shm_table *t, uint32_t r, uint32_t u)
{
	struct shm_room	*row = shm_room(t, r);

	if (shm_bit_test(shm_room_members(t, row), u)) {
		shm_bit_clear(shm_room_members(t, row), u);
		row->nmembers--;
	}
	if (row->nmembers == 0) {
		memset(row, 0, t->hdr->room_stride);
		t->hdr->nrooms--;
		return 0;
	}
	return row->nmembers;
}

/* Whether user row i holds an identified user. */
static int
shm_user_live(const struct shm_table *t, uint32_t i)
{
	return i < t->hdr->max_users &&
	    shm_user(t, i)->state == USER_IDENTIFIED;
}

/* Keeps only the bits of identified users in one bitmap word. */
static uint64_t
shm_live_bits(const struct shm_table *t, uint32_t word, uint64_t bits)
{
	uint64_t	w, keep = 0;
	uint32_t	b;

	for (w = bits; w != 0; w &= w - 1) {
		b = (uint32_t)__builtin_ctzll(w);
		if (shm_user_live(t, word * 64 + b))
			keep |= (uint64_t)1 << b;
	}
	return keep;
}

/* Repairs a table a dead hub may have left mid-update. */
unsigned
shm_repair(const struct shm_table *t)
{
	struct shm_hdr	*h = t->hdr;
	struct shm_user	*u;
	struct shm_room	*r;
	uint64_t	*m, *inv, keep;
	uint32_t	 i, j, nidentified = 0, nrooms = 0, n;
	unsigned	 fixes = 0;

	for (i = 0; i < h->max_users; i++) {
		u = shm_user(t, i);
		if (u->state > USER_IDENTIFIED ||
		    (u->state == USER_IDENTIFIED && (u->name_len == 0 ||
		    u->name_len > h->name_bytes))) {
			memset(u, 0, h->user_stride);
			fixes++;
		}
		if (u->state == USER_IDENTIFIED)
			nidentified++;
	}
	for (i = 0; i < h->max_rooms; i++) {
		r = shm_room(t, i);
		if (!r->in_use)
			continue;
		m = shm_room_members(t, r);
		inv = shm_room_invited(t, r);
		n = 0;
		for (j = 0; j < h->bitmap_words; j++) {
			/* Only identified users may be members or invited,
			 * and a member is not invited. */
			keep = shm_live_bits(t, j, m[j]);
			if (keep != m[j])
				fixes++;
			m[j] = keep;
			keep = shm_live_bits(t, j, inv[j]) & ~m[j];
			if (keep != inv[j])
				fixes++;
			inv[j] = keep;
			n += (uint32_t)__builtin_popcountll(m[j]);
		}
		if (r->name_len == 0 || r->name_len > h->room_bytes)
			n = 0;
		if (n != r->nmembers)
			fixes++;
		r->nmembers = n;
		if (n == 0) {
			memset(r, 0, h->room_stride);
			continue;
		}
		nrooms++;
	}
	if (nidentified != h->nidentified || nrooms != h->nrooms)
		fixes++;
	h->nidentified = nidentified;
	h->nrooms = nrooms;
	if (h->gen & 1) {
		h->gen++;
		fixes++;
	}
	return fixes;
}
