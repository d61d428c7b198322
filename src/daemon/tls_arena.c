/*
 * tls_arena.c: the memory OpenSSL allocates in talknetd, in arenas of
 * ours (mappings of their own), so that a child can drop the TLS server
 * context with one munmap and a TLS worker allocates in fresh pages.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/mman.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "log.h"
#include "tls_arena.h"

/*
 * OpenSSL's memory goes to arenas of ours: CRYPTO_set_mem_functions,
 * raw OpenSSL, because libtls has no allocator hook.  Why: the server
 * context holds the private key.  Built in the glibc heap it shares
 * pages with everything the master allocates, so a child that must not
 * keep the key had to tls_free it, which writes malloc's links into
 * every chunk (and so copies every page: about 150 KiB a process) and
 * leaves what OpenSSL freed without wiping in its heap.  Built in an
 * arena (one anonymous mapping of its own), the context goes from a
 * child with one munmap: no page copied, no byte of it left.  A TLS
 * worker gets an arena of its own for its connection: fresh pages,
 * rather than free chunks in pages it shares with the master (each
 * reused chunk copies a page).
 *
 * An arena hands out blocks of a power of two (a 16-byte header, then
 * the payload), first from its free lists, then from the top.  The
 * mapping is reserved PROT_NONE and made writable as the top grows, a
 * step at a time: with vm.overcommit_memory=2 the kernel charges every
 * writable private page mapped, MAP_NORESERVE or not, and again at each
 * fork, so whole writable arenas (64 MiB each) would charge some 160
 * MiB a TLS worker and make forks fail long before --max-clients.
 */
#define ARENA_MAX		8
#define ARENA_CLASS_MIN		5		/* 32-byte blocks */
#define ARENA_CLASS_MAX		24		/* 16 MiB */
#define ARENA_PAGE		4096
#define ARENA_CTX_SIZE		((size_t)64 << 20)	/* a context's */
#define ARENA_OWN_SIZE		((size_t)32 << 20)	/* a TLS worker's */
#define ARENA_STEP		((size_t)64 << 10)	/* made writable at once */
#define ARENA_MAGIC		0x546c5361u	/* a live block's */
#define ARENA_FREED		0x546c5366u	/* one on a free list */

/*
 * An ASan build is told which bytes of an arena are a live block's, so
 * that it sees OpenSSL's overflows and uses after free in arenas as it
 * would in malloc's heap.
 */
#ifdef __SANITIZE_ADDRESS__
void	__asan_poison_memory_region(void const volatile *, size_t);
void	__asan_unpoison_memory_region(void const volatile *, size_t);
#define ARENA_POISON(p, n)	__asan_poison_memory_region((p), (n))
#define ARENA_UNPOISON(p, n)	__asan_unpoison_memory_region((p), (n))
#else
#define ARENA_POISON(p, n)	((void)(p), (void)(n))
#define ARENA_UNPOISON(p, n)	((void)(p), (void)(n))
#endif

struct arena_hdr {
	uint32_t	 magic;
	uint32_t	 class;
	uint64_t	 pad;		/* the payload is 16-byte aligned */
};

struct tls_arena {
	char		*base;		/* NULL: a free slot */
	size_t		 size;
	size_t		 top;		/* bytes handed out from the start */
	size_t		 rw;		/* bytes writable from the start */
	size_t		 live;		/* blocks not freed */
	int		 own;		/* a TLS worker's: pages given back */
	uint16_t	*pages;		/* own: live blocks on each page */
	int		 inherited;	/* the master's, in a TLS worker */
	int		 ctx;		/* a context's: never malloc(3) */
	void		*free[ARENA_CLASS_MAX + 1];
};

static struct tls_arena	 arenas[ARENA_MAX];
static struct tls_arena	*arena_cur;	/* new blocks, or NULL: malloc(3) */
static struct tls_arena	*arena_global;	/* all but contexts, in the master */
static int		 arena_on;	/* OpenSSL took our functions */
static int		 arena_dropped;	/* a child that unmapped them all */


/* Unmaps an arena without touching its pages. */
static void
arena_unmap(struct tls_arena *a)
{
	/* ASan keeps a range's poison past munmap: the next mapping there
	 * (an arena) would start poisoned.  Only the writable part was
	 * ever poisoned: the whole range's shadow would cost every child
	 * megabytes under ASan (the CI's sanitizer pass ran out). */
	ARENA_UNPOISON(a->base, a->rw);
	if (munmap(a->base, a->size) == -1)
		log_warn("TLS: munmap of an arena");
	memset(a, 0, sizeof(*a));
}

/*
 * Makes a's first end bytes writable (rounded up to a step), or returns
 * -1: a committed page is charged to the process (see above).
 */
static int
arena_commit(struct tls_arena *a, size_t end)
{
	size_t	n;

	if (end <= a->rw)
		return 0;
	n = (end + ARENA_STEP - 1) & ~(ARENA_STEP - 1);
	if (n > a->size)
		n = a->size;
	if (mprotect(a->base + a->rw, n - a->rw,
	    PROT_READ | PROT_WRITE) == -1)
		return -1;
	a->rw = n;
	return 0;
}

/*
 * A new arena, or NULL: use malloc(3).  own: a TLS worker's; ctx: a
 * context's.
 */
static struct tls_arena *
arena_new(int own, int ctx)
{
	struct tls_arena	*a;
	size_t		 i;
	void		*p;

	if (!arena_on)
		return NULL;
	for (i = 0; i < ARENA_MAX && arenas[i].base != NULL; i++)
		;
	if (i == ARENA_MAX) {
		/* OpenSSL keeps blocks in every old context's arena. */
		log_warnx("TLS: no arena left: this one goes in the global "
		    "arena, which children without TLS drop all the same");
		return NULL;
	}
	a = &arenas[i];
	a->size = own ? ARENA_OWN_SIZE : ARENA_CTX_SIZE;
	/* Reserved, not writable: arena_commit makes it so as it grows. */
	p = mmap(NULL, a->size, PROT_NONE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		log_warn("TLS: mmap of an arena");
		return NULL;
	}
	a->base = p;
	a->own = own;
	a->ctx = ctx;
	/* A worker's arena counts live blocks per page in its first pages. */
	if (own) {
		a->pages = p;
		a->top = (a->size / ARENA_PAGE * sizeof(*a->pages) +
		    ARENA_PAGE - 1) & ~(size_t)(ARENA_PAGE - 1);
		if (arena_commit(a, a->top) == -1) {
			log_warn("TLS: mprotect of an arena");
			arena_unmap(a);
			return NULL;
		}
	}
	return a;
}

/*
 * The master is done with what it built in a: unmapped, unless OpenSSL
 * keeps blocks there for good (state it builds once per process).  Then
 * it stays, and children that serve no TLS unmap it all the same (they
 * never call OpenSSL again: see tls_arena_atexit).
 */
void
tls_arena_release(struct tls_arena *a)
{
	if (a == NULL)
		return;
	if (a->live == 0) {
		arena_unmap(a);
		return;
	}
	log_debug("TLS: OpenSSL keeps %zu blocks of an arena: kept", a->live);
}

/*
 * OpenSSL keeps state per thread (the error queue and the buffers of
 * its messages, a random generator), made or grown whenever it is first
 * needed: during a context's build, then, in that context's arena,
 * where it would keep the arena alive after the context is gone.  This
 * frees it and makes it again in the global arena (raw OpenSSL:
 * libtls has no call for it).
 */
void
tls_arena_thread_reset(void)
{
	unsigned char	b;

	arena_cur = arena_global;
	OPENSSL_thread_stop();
	ERR_clear_error();
	(void)RAND_bytes(&b, 1);
	(void)RAND_priv_bytes(&b, 1);
	explicit_bzero(&b, sizeof(b));
}

/* The arena p was allocated in, or NULL: malloc's. */
static struct tls_arena *
arena_find(const void *p)
{
	const char	*c = p;
	size_t		 i;

	for (i = 0; i < ARENA_MAX; i++)
		if (arenas[i].base != NULL && c >= arenas[i].base &&
		    c < arenas[i].base + arenas[i].size)
			return &arenas[i];
	return NULL;
}

/* Counts a block in (d 1) or out (d -1) of the pages it is on. */
static void
arena_count(struct tls_arena *a, struct arena_hdr *h, int d)
{
	size_t	pg, last;

	if (a->pages == NULL)
		return;
	pg = (size_t)((char *)h - a->base) / ARENA_PAGE;
	last = pg + (((size_t)1 << h->class) - 1) / ARENA_PAGE;
	for (; pg <= last; pg++)
		a->pages[pg] += d;
}

/* ASan: the first n bytes of block p (class c) usable, the rest not. */
static void
arena_usable(void *p, uint32_t c, size_t n)
{
	size_t	cap = ((size_t)1 << c) - sizeof(struct arena_hdr);

	ARENA_UNPOISON(p, cap);
	ARENA_POISON((char *)p + n, cap - n);
}

/* A block of at least n bytes from a, or NULL when a is full. */
static void *
arena_alloc(struct tls_arena *a, size_t n)
{
	struct arena_hdr	*h;
	uint32_t		 c = ARENA_CLASS_MIN;
	size_t			 bs, align, off;
	void			*p;

	while (c <= ARENA_CLASS_MAX &&
	    ((size_t)1 << c) - sizeof(*h) < n)
		c++;
	if (c > ARENA_CLASS_MAX)
		return NULL;
	if ((p = a->free[c]) != NULL) {
		ARENA_UNPOISON(p, sizeof(void *));
		memcpy(&a->free[c], p, sizeof(void *));
		h = (struct arena_hdr *)p - 1;
		h->magic = ARENA_MAGIC;
		a->live++;
		arena_count(a, h, 1);
		arena_usable(p, c, n);
		return p;
	}
	/* Page-sized blocks on pages of their own: given back whole. */
	bs = (size_t)1 << c;
	align = bs < ARENA_PAGE ? bs : ARENA_PAGE;
	off = (a->top + align - 1) & ~(align - 1);
	if (off > a->size || bs > a->size - off ||
	    arena_commit(a, off + bs) == -1)
		return NULL;
	h = (struct arena_hdr *)(void *)(a->base + off);
	h->magic = ARENA_MAGIC;
	h->class = c;
	a->top = off + bs;
	a->live++;
	arena_count(a, h, 1);
	arena_usable(h + 1, c, n);
	return h + 1;
}

/*
 * Puts a block back on its free list.  The master's are wiped (the key's
 * temporaries must not outlive them); a TLS worker's big ones give
 * their pages back but the first (the header, the free list's link).
 */
static void
arena_free(struct tls_arena *a, void *p)
{
	struct arena_hdr	*h = (struct arena_hdr *)p - 1;
	size_t			 bs;

	/* Not a live block of ours (freed twice, say): stop here. */
	if (h->magic != ARENA_MAGIC || h->class < ARENA_CLASS_MIN ||
	    h->class > ARENA_CLASS_MAX)
		abort();
	h->magic = ARENA_FREED;
	bs = (size_t)1 << h->class;
	ARENA_UNPOISON(p, bs - sizeof(*h));
	if (!a->own)
		explicit_bzero(p, bs - sizeof(*h));
	else if (bs >= 2 * ARENA_PAGE)
		(void)madvise((char *)h + ARENA_PAGE, bs - ARENA_PAGE,
		    MADV_DONTNEED);
	memcpy(p, &a->free[h->class], sizeof(void *));
	ARENA_POISON(p, bs - sizeof(*h));
	a->free[h->class] = p;
	a->live--;
	arena_count(a, h, -1);
}

/*
 * A worker's arena, once the handshake is done: the pages where no
 * block is live any more (its temporaries) go back to the kernel, and
 * the free blocks on them leave the free lists (their links are on
 * those pages).  New blocks come from the top again.
 */
static void
arena_trim(struct tls_arena *a)
{
	size_t	 c, pg, run, end;
	void	*p, *keep, *next;

	for (c = ARENA_CLASS_MIN; c <= ARENA_CLASS_MAX; c++) {
		keep = NULL;
		for (p = a->free[c]; p != NULL; p = next) {
			ARENA_UNPOISON(p, sizeof(next));
			memcpy(&next, p, sizeof(next));
			pg = (size_t)((char *)p - a->base) / ARENA_PAGE;
			if (a->pages[pg] != 0) {
				memcpy(p, &keep, sizeof(keep));
				keep = p;
			}
			ARENA_POISON(p, sizeof(next));
		}
		a->free[c] = keep;
	}
	end = (a->top + ARENA_PAGE - 1) / ARENA_PAGE;
	pg = a->size / ARENA_PAGE * sizeof(*a->pages) / ARENA_PAGE;
	while (pg < end) {
		for (run = 0; pg + run < end && a->pages[pg + run] == 0; run++)
			;
		if (run > 0)
			(void)madvise(a->base + pg * ARENA_PAGE,
			    run * ARENA_PAGE, MADV_DONTNEED);
		pg += run + 1;
	}
}

/* A block from arena a, or from malloc(3) (a NULL or full). */
static void *
arena_malloc(struct tls_arena *a, size_t n)
{
	void	*p;

	if (a == NULL)
		return malloc(n);
	/* A context is all in its arena, or not built. */
	if ((p = arena_alloc(a, n)) == NULL && !a->ctx)
		p = malloc(n);
	return p;
}

/* OpenSSL's malloc: the current arena, or malloc(3). */
static void *
tls_mem_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return arena_malloc(arena_cur, n);
}

/*
 * OpenSSL's realloc.  A block grows in its own arena: what belongs to a
 * context stays in the context's, global state in the global one.  In
 * a TLS worker a block of the master's moves to the worker's arena.
 */
static void *
tls_mem_realloc(void *p, size_t n, const char *file, int line)
{
	struct tls_arena		*a;
	struct arena_hdr	*h;
	size_t			 cap;
	void			*q;

	if (p == NULL)
		return tls_mem_malloc(n, file, line);
	if ((a = arena_find(p)) == NULL)
		return realloc(p, n);
	if (n == 0) {
		if (!a->inherited)
			arena_free(a, p);
		return NULL;
	}
	h = (struct arena_hdr *)p - 1;
	cap = ((size_t)1 << h->class) - sizeof(*h);
	/* Live: its bytes past what was asked are OpenSSL's to copy. */
	ARENA_UNPOISON(p, cap);
	if (n <= cap && !a->inherited) {
		arena_usable(p, h->class, n);
		return p;
	}
	if ((q = arena_malloc(a->inherited ? arena_cur : a, n)) == NULL)
		return NULL;
	memcpy(q, p, n < cap ? n : cap);
	if (!a->inherited)
		arena_free(a, p);
	return q;
}

/*
 * OpenSSL's free: to the arena the block came from, or free(3).  A TLS
 * worker leaves the master's blocks as they are: putting one on a free
 * list would copy its page.
 */
static void
tls_mem_free(void *p, const char *file, int line)
{
	struct tls_arena	*a;

	(void)file;
	(void)line;
	if (p == NULL)
		return;
	if ((a = arena_find(p)) == NULL)
		free(p);
	else if (!a->inherited)
		arena_free(a, p);
}

/*
 * At exit: OpenSSL's cleanup, which it was told not to register itself.
 * A child that unmapped the arenas skips it: state OpenSSL built while
 * an arena was current may be gone.
 */
static void
tls_arena_atexit(void)
{
	if (!arena_dropped)
		OPENSSL_cleanup();
}

/*
 * Gives OpenSSL our allocator, once, before its first allocation (so
 * before tls_init).  If OpenSSL allocated already it refuses: contexts
 * then live in the heap and children free them as before.
 */
void
tls_arena_init(void)
{
	static int	done;

	if (done)
		return;
	done = 1;
	arena_on = CRYPTO_set_mem_functions(tls_mem_malloc, tls_mem_realloc,
	    tls_mem_free);
	if (!arena_on) {
		log_debug("TLS: OpenSSL allocated already: no arenas");
		return;
	}
	/* OpenSSL's state for good, together: fewer pages for a worker to
	 * copy when it writes to it (reference counts, caches). */
	arena_cur = arena_global = arena_new(0, 0);
	/* Our atexit, not OpenSSL's: children without arenas skip it. */
	if (OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL) == 1)
		(void)atexit(tls_arena_atexit);
}

/* A new arena for a server context, or NULL: OpenSSL uses malloc(3). */
struct tls_arena *
tls_arena_new_ctx(void)
{
	return arena_new(0, 1);
}

/* Makes a the arena OpenSSL allocates in; NULL: the global one. */
void
tls_arena_use(struct tls_arena *a)
{
	arena_cur = a != NULL ? a : arena_global;
}

/*
 * A child that serves no TLS: every arena is unmapped, not freed, so no
 * page it shares with the master is written (copied) and nothing of the
 * key is left in its address space.  The slots are left as they are,
 * never read again.
 */
void
tls_arena_drop_all(void)
{
	size_t	i;

	for (i = 0; i < ARENA_MAX; i++) {
		if (arenas[i].base == NULL)
			continue;
		ARENA_UNPOISON(arenas[i].base, arenas[i].rw);
		if (munmap(arenas[i].base, arenas[i].size) == -1)
			log_warn("TLS: munmap of an arena");
	}
	arena_dropped = 1;
}

/* Whether this process unmapped the arenas (tls_arena_drop_all). */
int
tls_arena_dropped(void)
{
	return arena_dropped;
}

/*
 * A TLS worker's arena, once the handshake is done: gives back the
 * pages that only held the handshake's temporaries.
 */
void
tls_arena_trim(void)
{
	if (arena_cur != NULL && arena_cur->own)
		arena_trim(arena_cur);
}

/*
 * A TLS worker, before its connection: what OpenSSL allocates from now
 * on goes to an arena of the worker's own (fresh pages), not to free
 * chunks of the heap it shares with the master; the master's arenas are
 * marked inherited, never written.
 */
void
tls_arena_child(void)
{
	size_t	i;

	for (i = 0; i < ARENA_MAX; i++)
		arenas[i].inherited = arenas[i].base != NULL;
	arena_cur = arena_new(1, 0);
}

/* Whether OpenSSL allocates in our arenas (tls_arena_init took). */
int
tls_arena_enabled(void)
{
	return arena_on;
}
