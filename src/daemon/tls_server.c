/*
 * tls_server.c: the daemon's TLS server context, built by the master
 * from the certificate and key files and inherited by TLS workers.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <tls.h>

#include "log.h"
#include "tls_server.h"

/* A PEM chain or CA bundle is kilobytes; this bounds what root reads. */
#define TLS_SERVER_FILE_MAX	(4 * 1024 * 1024)

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
 * mapping is reserved, not committed (MAP_NORESERVE): only pages
 * touched cost memory.
 */
#define ARENA_MAX		8
#define ARENA_CLASS_MIN		5		/* 32-byte blocks */
#define ARENA_CLASS_MAX		24		/* 16 MiB */
#define ARENA_PAGE		4096
#define ARENA_CTX_SIZE		((size_t)64 << 20)	/* a context's */
#define ARENA_OWN_SIZE		((size_t)32 << 20)	/* a TLS worker's */
#define ARENA_MAGIC		0x546c5361u

struct arena_hdr {
	uint32_t	 magic;
	uint32_t	 class;
	uint64_t	 pad;		/* the payload is 16-byte aligned */
};

struct arena {
	char		*base;		/* NULL: a free slot */
	size_t		 size;
	size_t		 top;		/* bytes handed out from the start */
	size_t		 live;		/* blocks not freed */
	int		 own;		/* a TLS worker's: pages given back */
	uint16_t	*pages;		/* own: live blocks on each page */
	int		 inherited;	/* the master's, in a TLS worker */
	int		 ctx;		/* a context's: never malloc(3) */
	void		*free[ARENA_CLASS_MAX + 1];
};

static struct arena	 arenas[ARENA_MAX];
static struct arena	*arena_cur;	/* new blocks, or NULL: malloc(3) */
static struct arena	*arena_global;	/* all but contexts, in the master */
static int		 arena_on;	/* OpenSSL took our functions */
static int		 arena_dropped;	/* a child that unmapped them all */

static struct tls	*server_ctx;
static struct arena	*server_arena;	/* server_ctx's, or NULL: malloc */

/*
 * A new arena, or NULL: use malloc(3).  own: a TLS worker's; ctx: a
 * context's.
 */
static struct arena *
arena_new(int own, int ctx)
{
	struct arena	*a;
	size_t		 i;
	void		*p;

	if (!arena_on)
		return NULL;
	for (i = 0; i < ARENA_MAX && arenas[i].base != NULL; i++)
		;
	if (i == ARENA_MAX)
		return NULL;
	a = &arenas[i];
	a->size = own ? ARENA_OWN_SIZE : ARENA_CTX_SIZE;
	p = mmap(NULL, a->size, PROT_READ | PROT_WRITE,
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
	}
	return a;
}

/* Unmaps an arena without touching its pages. */
static void
arena_unmap(struct arena *a)
{
	if (munmap(a->base, a->size) == -1)
		log_warn("TLS: munmap of an arena");
	memset(a, 0, sizeof(*a));
}

/*
 * The master is done with what it built in a: unmapped, unless OpenSSL
 * keeps blocks there for good (state it builds once per process).  Then
 * it stays, and children that serve no TLS unmap it all the same (they
 * never call OpenSSL again: see tls_server_atexit).
 */
static void
arena_release(struct arena *a)
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
static void
arena_thread_reset(void)
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
static struct arena *
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
arena_count(struct arena *a, struct arena_hdr *h, int d)
{
	size_t	pg, last;

	if (a->pages == NULL)
		return;
	pg = (size_t)((char *)h - a->base) / ARENA_PAGE;
	last = pg + (((size_t)1 << h->class) - 1) / ARENA_PAGE;
	for (; pg <= last; pg++)
		a->pages[pg] += d;
}

/* A block of at least n bytes from a, or NULL when a is full. */
static void *
arena_alloc(struct arena *a, size_t n)
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
		memcpy(&a->free[c], p, sizeof(void *));
		a->live++;
		arena_count(a, (struct arena_hdr *)p - 1, 1);
		return p;
	}
	/* Page-sized blocks on pages of their own: given back whole. */
	bs = (size_t)1 << c;
	align = bs < ARENA_PAGE ? bs : ARENA_PAGE;
	off = (a->top + align - 1) & ~(align - 1);
	if (off > a->size || bs > a->size - off)
		return NULL;
	h = (struct arena_hdr *)(void *)(a->base + off);
	h->magic = ARENA_MAGIC;
	h->class = c;
	a->top = off + bs;
	a->live++;
	arena_count(a, h, 1);
	return h + 1;
}

/*
 * Puts a block back on its free list.  The master's are wiped (the key's
 * temporaries must not outlive them); a TLS worker's big ones give
 * their pages back but the first (the header, the free list's link).
 */
static void
arena_free(struct arena *a, void *p)
{
	struct arena_hdr	*h = (struct arena_hdr *)p - 1;
	size_t			 bs;

	if (h->magic != ARENA_MAGIC || h->class < ARENA_CLASS_MIN ||
	    h->class > ARENA_CLASS_MAX)
		abort();
	bs = (size_t)1 << h->class;
	if (!a->own)
		explicit_bzero(p, bs - sizeof(*h));
	else if (bs >= 2 * ARENA_PAGE)
		(void)madvise((char *)h + ARENA_PAGE, bs - ARENA_PAGE,
		    MADV_DONTNEED);
	memcpy(p, &a->free[h->class], sizeof(void *));
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
arena_trim(struct arena *a)
{
	size_t	 c, pg, run, end;
	void	*p, *keep, *next;

	for (c = ARENA_CLASS_MIN; c <= ARENA_CLASS_MAX; c++) {
		keep = NULL;
		for (p = a->free[c]; p != NULL; p = next) {
			memcpy(&next, p, sizeof(next));
			pg = (size_t)((char *)p - a->base) / ARENA_PAGE;
			if (a->pages[pg] == 0)
				continue;
			memcpy(p, &keep, sizeof(keep));
			keep = p;
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
arena_malloc(struct arena *a, size_t n)
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
	struct arena		*a;
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
	if (n <= cap && !a->inherited)
		return p;
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
	struct arena	*a;

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
tls_server_atexit(void)
{
	if (!arena_dropped)
		OPENSSL_cleanup();
}

/*
 * Gives OpenSSL our allocator, once, before its first allocation (so
 * before tls_init).  If OpenSSL allocated already it refuses: contexts
 * then live in the heap and children free them as before.
 */
static void
tls_server_mem_init(void)
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
		(void)atexit(tls_server_atexit);
}

/* Wipes and frees what tls_server_read read: it may be the key. */
static void
tls_server_unload(uint8_t *mem, size_t len)
{
	explicit_bzero(mem, len);
	free(mem);
}

/*
 * Cuts the ": Success" libtls adds to a message when errno was 0 (a
 * PEM file that holds no certificate is no system error).
 */
static void
tls_server_tidy(char *err)
{
	static const char	 tail[] = ": Success";
	size_t			 n = strlen(err), t = sizeof(tail) - 1;

	if (n >= t && strcmp(err + n - t, tail) == 0)
		err[n - t] = '\0';
}

/*
 * Reads a whole PEM file into memory, at most TLS_SERVER_FILE_MAX
 * bytes.  The master does this as root (the key file may be readable
 * by root alone) and in its event loop on reload: O_NONBLOCK, so a
 * FIFO named by mistake cannot hang it in open, and only a regular
 * file is read, so /dev/zero or a directory is an error, not a read
 * without end.
 */
static uint8_t *
tls_server_read(const char *path, size_t *len, char *err, size_t errlen)
{
	struct stat	 st;
	uint8_t		*mem = NULL;
	size_t		 got = 0;
	ssize_t		 n = 0;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		snprintf(err, errlen, "%s: not a regular file", path);
	else if (st.st_size == 0)
		snprintf(err, errlen, "%s: empty", path);
	else if (st.st_size > TLS_SERVER_FILE_MAX)
		snprintf(err, errlen, "%s: larger than %d bytes", path,
		    TLS_SERVER_FILE_MAX);
	else if ((mem = malloc(st.st_size)) == NULL)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	/* A file that shrinks meanwhile ends the loop: got says how much. */
	while (mem != NULL && got < (size_t)st.st_size) {
		n = read(fd, mem + got, st.st_size - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	if (mem != NULL && (n == -1 || got == 0)) {
		snprintf(err, errlen, "%s: %s", path, n == -1 ?
		    strerror(errno) : "empty");
		tls_server_unload(mem, st.st_size);
		mem = NULL;
	}
	if (close(fd) == -1 && mem != NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		tls_server_unload(mem, st.st_size);
		mem = NULL;
	}
	*len = got;
	return mem;
}

/* Sets the certificate, the key and, if any, the CA on cfg. */
static int
tls_server_files(struct tls_config *cfg, const struct tls_settings *s,
    char *err, size_t errlen)
{
	uint8_t	*cert, *key, *ca;
	size_t	 certlen, keylen, calen;
	int	 r = -1;

	if ((cert = tls_server_read(s->cert, &certlen, err, errlen)) == NULL)
		return -1;
	if ((key = tls_server_read(s->key, &keylen, err, errlen)) == NULL) {
		tls_server_unload(cert, certlen);
		return -1;
	}
	/* libtls adds strerror(errno) to its message: no stale one. */
	errno = 0;
	if (tls_config_set_keypair_mem(cfg, cert, certlen, key, keylen) ==
	    -1) {
		snprintf(err, errlen, "%s, %s: %s", s->cert, s->key,
		    tls_config_error(cfg));
		tls_server_tidy(err);
	} else
		r = 0;
	/* tls_server_unload wipes the key's bytes before freeing them. */
	tls_server_unload(key, keylen);
	tls_server_unload(cert, certlen);
	if (r == -1 || s->ca == NULL || s->ca[0] == '\0')
		return r;
	if ((ca = tls_server_read(s->ca, &calen, err, errlen)) == NULL)
		return -1;
	errno = 0;
	if (tls_config_set_ca_mem(cfg, ca, calen) == -1) {
		snprintf(err, errlen, "%s: %s", s->ca, tls_config_error(cfg));
		tls_server_tidy(err);
		r = -1;
	} else
		tls_config_verify_client(cfg);
	tls_server_unload(ca, calen);
	return r;
}

/* Sets the protocols and ciphers on cfg. */
static int
tls_server_params(struct tls_config *cfg, const struct tls_settings *s,
    char *err, size_t errlen)
{
	uint32_t	protocols;

	if (tls_config_parse_protocols(&protocols, s->protocols) == -1) {
		snprintf(err, errlen, "tls-protocols: %s: invalid",
		    s->protocols);
		return -1;
	}
	if (tls_config_set_protocols(cfg, protocols) == -1 ||
	    tls_config_set_ciphers(cfg, s->ciphers) == -1) {
		snprintf(err, errlen, "tls-ciphers: %s: %s", s->ciphers,
		    tls_config_error(cfg));
		return -1;
	}
	return 0;
}

/*
 * Builds a server context from cfg, OpenSSL's part of it in arena a
 * (NULL: malloc).  Returns it, or NULL with the reason in err.
 */
static struct tls *
tls_server_build(struct tls_config *cfg, struct arena *a,
    const struct tls_settings *s, char *err, size_t errlen)
{
	struct tls	*ctx;

	arena_cur = a;
	if ((ctx = tls_server()) == NULL) {
		arena_cur = arena_global;
		snprintf(err, errlen, "out of memory for a TLS context");
		return NULL;
	}
	/* tls_configure checks that the key belongs to the certificate. */
	errno = 0;
	if (tls_configure(ctx, cfg) == -1) {
		arena_cur = arena_global;
		snprintf(err, errlen, "%s, %s: %s", s->cert, s->key,
		    tls_error(ctx));
		tls_server_tidy(err);
		tls_free(ctx);
		return NULL;
	}
	arena_cur = arena_global;
	return ctx;
}

/*
 * Runs the two ends of a handshake in turns, a bounded number of steps.
 * The client is raw OpenSSL, not libtls: libtls frees what
 * X509_NAME_oneline gives it (the peer's subject, its issuer) with
 * free(3), not OPENSSL_free, so a libtls client's blocks could not be
 * in an arena; and OpenSSL's lasting state made for the client must be
 * (a child that unmaps the arenas would leave it unreachable).
 */
static void
tls_server_warm_steps(SSL *cli, struct tls *conn)
{
	int	rc = 0, rs = TLS_WANT_POLLIN, i;

	for (i = 0; i < 32 && (rc != 1 || rs != 0); i++) {
		if (rc != 1 && (rc = SSL_do_handshake(cli)) != 1 &&
		    SSL_get_error(cli, rc) != SSL_ERROR_WANT_READ)
			break;
		if (rs != 0 && (rs = tls_handshake(conn)) == -1)
			break;
	}
	ERR_clear_error();
}

/*
 * One handshake against srv over a socketpair, with protocol version v
 * (OpenSSL's number): the client verifies nothing, it is our server.
 */
static void
tls_server_warm_one(struct tls *srv, int v)
{
	SSL_CTX		*cctx = NULL;
	SSL		*cli = NULL;
	struct tls	*conn = NULL;
	int		 sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1) {
		log_warn("TLS: socketpair");
		return;
	}
	if ((cctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(cctx, v) != 1 ||
	    SSL_CTX_set_max_proto_version(cctx, v) != 1 ||
	    (cli = SSL_new(cctx)) == NULL || SSL_set_fd(cli, sv[0]) != 1)
		goto out;
	SSL_set_connect_state(cli);
	if (tls_accept_socket(srv, &conn, sv[1]) == -1)
		goto out;
	tls_server_warm_steps(cli, conn);
out:
	tls_free(conn);
	SSL_free(cli);
	SSL_CTX_free(cctx);
	ERR_clear_error();
	close(sv[0]);
	close(sv[1]);
}

/*
 * Runs a handshake against srv in the master, once with each protocol
 * version it serves.  What OpenSSL builds once per process at its first
 * handshake (the algorithms it fetches and caches, its random
 * generators) is then built before the fork, in pages every TLS worker
 * shares, rather than in each worker: about 115 KiB a TLS worker.  Best
 * effort: with client certificates required it stops half-way, having
 * warmed most of it.
 */
static void
tls_server_warm(struct tls *srv, const struct tls_settings *s)
{
	static const struct {
		uint32_t	 libtls;
		int		 openssl;
	} v[] = {
		{ TLS_PROTOCOL_TLSv1_3, TLS1_3_VERSION },
		{ TLS_PROTOCOL_TLSv1_2, TLS1_2_VERSION },
	};
	uint32_t	 protocols;
	size_t		 i;

	if (tls_config_parse_protocols(&protocols, s->protocols) == -1)
		return;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (protocols & v[i].libtls)
			tls_server_warm_one(srv, v[i].openssl);
}

/*
 * Builds a new server context from s and makes it the current one.  A
 * first one is built and freed before it (in an arena of its own, run
 * through a handshake): what OpenSSL builds for good at its first use
 * stays outside the arena the context lives in.
 */
int
tls_server_load(const struct tls_settings *s, char *err, size_t errlen)
{
	struct tls_config	*cfg;
	struct tls		*ctx;
	struct arena		*a;
	int			 r = -1;

	tls_server_mem_init();
	if (tls_init() == -1) {
		snprintf(err, errlen, "libtls cannot start");
		return -1;
	}
	if ((cfg = tls_config_new()) == NULL) {
		snprintf(err, errlen, "out of memory for a TLS configuration");
		return -1;
	}
	if (tls_server_params(cfg, s, err, errlen) == -1 ||
	    tls_server_files(cfg, s, err, errlen) == -1)
		goto out;
	a = arena_new(0, 1);
	ctx = tls_server_build(cfg, a, s, err, errlen);
	arena_thread_reset();
	if (ctx == NULL) {
		arena_release(a);
		goto out;
	}
	tls_server_warm(ctx, s);
	tls_free(ctx);
	arena_thread_reset();
	arena_release(a);
	a = arena_new(0, 1);
	ctx = tls_server_build(cfg, a, s, err, errlen);
	arena_thread_reset();
	if (ctx == NULL) {
		arena_release(a);
		goto out;
	}
	/* The key is in the context now: wipe cfg's copy, as httpd does. */
	tls_config_clear_keys(cfg);
	if (server_ctx != NULL) {
		tls_free(server_ctx);
		arena_thread_reset();
		arena_release(server_arena);
	}
	server_ctx = ctx;
	server_arena = a;
	r = 0;
out:
	/* The context holds its own reference to what it needs of cfg. */
	tls_config_free(cfg);
	return r;
}

/* The current server context. */
struct tls *
tls_server_ctx(void)
{
	return arena_dropped ? NULL : server_ctx;
}

/*
 * Drops the context.  Called at once by every child that serves no TLS
 * connection (the hub, plain workers), so that they do not keep the
 * private key in their memory.  With arenas, they are unmapped, not
 * freed: no page the child shares with the master is written (copied),
 * and nothing of the key is left in its address space.  libtls's own
 * small part (struct tls, its configuration: no key) stays unused in the
 * heap.
 */
void
tls_server_forget(void)
{
	size_t	i;

	if (server_ctx == NULL || arena_dropped)
		return;
	if (server_arena == NULL) {
		tls_free(server_ctx);
		server_ctx = NULL;
		return;
	}
	/* Unmapped only: the slots are left as they are, never read again. */
	for (i = 0; i < ARENA_MAX; i++)
		if (arenas[i].base != NULL &&
		    munmap(arenas[i].base, arenas[i].size) == -1)
			log_warn("TLS: munmap of an arena");
	/* server_ctx stays pointed at (libtls's part, in the heap: no
	 * key), or valgrind would call it lost; tls_server_ctx hides it. */
	arena_dropped = 1;
}

/*
 * A TLS worker whose handshake is done: gives back the pages of its
 * arena that only held the handshake's temporaries.
 */
void
tls_server_trim(void)
{
	if (arena_cur != NULL && arena_cur->own)
		arena_trim(arena_cur);
}

/*
 * A TLS worker, before its connection: what OpenSSL allocates from now
 * on goes to an arena of the worker's own (fresh pages), not to free
 * chunks of the heap it shares with the master.
 */
void
tls_server_child(void)
{
	size_t	i;

	for (i = 0; i < ARENA_MAX; i++)
		arenas[i].inherited = arenas[i].base != NULL;
	arena_cur = arena_new(1, 0);
}

/* Checks a protocol string as tls_server_load will read it. */
int
tls_server_check_protocols(const char *p, char *err, size_t errlen)
{
	uint32_t	protocols;

	if (tls_config_parse_protocols(&protocols, p) == -1) {
		snprintf(err, errlen, "invalid (e.g. tlsv1.2,tlsv1.3)");
		return -1;
	}
	return 0;
}
