/*
 * tls_arena.h: arenas for OpenSSL's memory in talknetd (tls_arena.c).
 *
 * OpenSSL is given our allocator (CRYPTO_set_mem_functions: raw
 * OpenSSL, since libtls has no allocator hook).  The master builds each
 * server context in an arena of its own, and OpenSSL's lasting state in
 * a global one; a child that serves no TLS unmaps them all (no page
 * copied, no key left); a TLS worker allocates in an arena of its own.
 */
#ifndef TALKNETD_TLS_ARENA_H
#define TALKNETD_TLS_ARENA_H

struct tls_arena;

/* Gives OpenSSL our allocator, once, before its first allocation. */
void		 tls_arena_init(void);
/* A new arena for a server context, or NULL (arenas off, or none left). */
struct tls_arena *tls_arena_new_ctx(void);
/* Where OpenSSL allocates from now on; NULL: the global arena. */
void		 tls_arena_use(struct tls_arena *);
/* The master is done with an arena: unmapped once nothing in it lives. */
void		 tls_arena_release(struct tls_arena *);
/* Remakes OpenSSL's per-thread state in the global arena. */
void		 tls_arena_thread_reset(void);
/* A child without TLS: unmaps every arena. */
void		 tls_arena_drop_all(void);
/* Whether OpenSSL allocates in the arenas at all. */
int		 tls_arena_enabled(void);
/* Whether tls_arena_drop_all ran in this process. */
int		 tls_arena_dropped(void);
/* A TLS worker before its connection: an arena of its own. */
void		 tls_arena_child(void);
/* A TLS worker after its handshake: gives back its temporaries' pages. */
void		 tls_arena_trim(void);

#endif
