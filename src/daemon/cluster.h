/*
 * cluster.h: the bridge between one node's hub and the cluster's Redis
 * (issue 19, doc/design.md "The cluster").  Only the hub calls it, and
 * only through these functions: Redis never shows in the request
 * handlers.  cluster.c holds the cluster's logic (the node's heartbeat,
 * the scripts); cluster_redis.c drives hiredis's async API from the
 * hub's own epoll loop (connecting, AUTH, SELECT, reconnecting).
 *
 * Built without hiredis, every function is a stub that says "no
 * cluster", and --cluster is refused when the configuration is read.
 */
#ifndef TALKNETD_CLUSTER_H
#define TALKNETD_CLUSTER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct config;

#define CLUSTER_PREFIX		"tn:"	/* every key the cluster owns */
/*
 * How long a node's heartbeat lives (cluster-ttl-ms, not live; the same
 * on every node: the join refuses a node whose TTL differs from a live
 * one's, since the reap grace and the stream's stuck timer of each node
 * follow its own), and how often it is refreshed.
 */
#define CLUSTER_TTL_MS(cfg)	((int64_t)(cfg)->cluster_ttl_ms)
#define CLUSTER_BEAT_MS(cfg)	(CLUSTER_TTL_MS(cfg) / 3)
#define CLUSTER_CONNECT_MS	2000	/* a connect that takes longer fails */
#define CLUSTER_BACKOFF_MIN_MS	100	/* reconnecting waits, doubling, */
#define CLUSTER_BACKOFF_MAX_MS	5000	/* at most this long */
#define CLUSTER_PENDING_MAX	100000	/* releases kept for Redis */

/* What a name claim came to (cluster_claim_name's callback). */
enum cluster_claim {
	CLAIM_GRANTED,		/* the name is this user's, cluster-wide */
	CLAIM_TAKEN,		/* a user of some node holds it */
	CLAIM_OURS,		/* this node holds it: free if no user here
				   has it (a dead hub's claim) */
	CLAIM_FAILED		/* Redis did not answer: refuse for now */
};
/* value: for a name granted, the cluster's time of the claim (ms). */
typedef void (*cluster_claim_fn)(void *arg, const char *name, size_t len,
    enum cluster_claim, uint64_t value);

/* hub.c: publishes cluster_degraded() in the table's header. */
void	 hub_cluster_state(void);

#ifdef HAVE_HIREDIS
/*
 * Claims this node's id in Redis, in the process about to be the
 * master, before anything starts: a live node holding the id refuses
 * it.  Sets cfg->cluster_token, which the hub's heartbeat then keeps
 * alive.  0, or -1 with the reason in err (talknetd exits with
 * TALKNETD_EXIT_CLUSTER).
 */
int	 cluster_join(struct config *, char *err, size_t errlen);

/* The hub: connects to Redis, registering its fds in epfd. */
void	 cluster_start(const struct config *, int epfd);
/* Whether this node runs in a cluster (--cluster). */
int	 cluster_on(void);
/* Whether Redis is unreachable or refused this node: no new users. */
int	 cluster_degraded(void);
/* Whether an epoll event's data.ptr is one of the cluster's fds. */
int	 cluster_owns(const void *);
/* Handles that event. */
void	 cluster_event(void *, uint32_t events);
/* The epoll timeout: the sooner of t and the cluster's next timer. */
int	 cluster_timeout(int t);
/* Runs the cluster's timers (heartbeat, reconnecting). */
void	 cluster_timers(void);

/*
 * Claims a user name cluster-wide for a user of this node (its row in
 * the table), atomically in Redis.  fn(arg, name, result) runs once, later,
 * from the hub's loop (never from within this call); until then the
 * caller holds the request.  cluster_claim_cancel forgets a claim whose
 * requester went away; the name, if granted, is released then.
 */
void	 cluster_claim_name(const char *, size_t, uint32_t row,
	    cluster_claim_fn, void *arg);
void	 cluster_claim_cancel(void *arg);
/* Gives a name this node held back to the cluster. */
void	 cluster_release_name(const char *, size_t);

/*
 * What this node's users do that other nodes must see: one XADD (or one
 * script) each on this node's stream, whatever the recipients.
 */
void	 cluster_status(const char *, size_t, int status);
void	 cluster_public_text(const char *from, size_t, const char *text,
	    size_t);
void	 cluster_private_text(const char *from, size_t, const char *to,
	    size_t, const char *text, size_t);

/*
 * cluster_room.c: rooms.  The claims (create, join) answer like a
 * name's; the rest are writes nothing waits for.
 */
void	 cluster_claim_room(const char *, size_t, const char *user, size_t,
	    cluster_claim_fn, void *);
void	 cluster_join_room(const char *, size_t, const char *user, size_t,
	    cluster_claim_fn, void *);
void	 cluster_invite(const char *, size_t, const char *inviter, size_t,
	    const char **names, const size_t *lens, size_t n);
void	 cluster_leave_room(const char *, size_t, const char *user, size_t);
void	 cluster_room_text(const char *, size_t, const char *user, size_t,
	    const char *text, size_t);

/*
 * cluster_mirror.c: the hub's mirror of the other nodes' users, rows of
 * the table flagged remote.  cluster.c calls these as it reads the
 * other nodes' streams, in each stream's order; node is the stream's.
 */
void	 cluster_mirror_user(const char *node, const char *, size_t,
	    int status);
void	 cluster_mirror_gone(const char *node, const char *, size_t);
void	 cluster_mirror_status(const char *, size_t, int status);
void	 cluster_mirror_public(const char *from, size_t, const char *text,
	    size_t);
void	 cluster_mirror_private(const char *from, size_t, const char *to,
	    size_t, const char *text, size_t);
/*
 * A snapshot of the cluster's names replaces the mirror: mark, then
 * cluster_mirror_user for each name (a user already there is kept),
 * then sweep drops the remote users the snapshot did not name.
 */
void	 cluster_mirror_mark(void);
void	 cluster_mirror_sweep(void);
/*
 * A restarted hub's mirrored user is node's (a snapshot says), quietly;
 * former: node took the name after the dead hub's place in its stream.
 */
void	 cluster_mirror_owned(const char *node, const char *, size_t,
	    int former);
/* Fencing: closes every client of this node, empties the mirror. */
void	 cluster_mirror_fence(void);
/* Re-asserts this node's users and their rooms (cluster_reassert). */
void	 cluster_mirror_reassert(int yield);
/* Whether this hub took over the table of a dead one. */
int	 cluster_mirror_restarted(void);
/* cluster_reap.c: sends it, args being the script's ARGV from the 2nd. */
void	 cluster_reassert(const char **args, const size_t *lens, size_t n);
/* Whether a user of this node holds that name. */
int	 cluster_mirror_local(const char *, size_t);
/* Whether a warning about what was read from Redis may be logged now. */
int	 cluster_warn_ok(void);
/* Whether one of node's users is mirrored here by that name. */
int	 cluster_mirror_of(const char *node, const char *, size_t);
/* Gives a mirrored user back to the node Redis says holds it. */
void	 cluster_mirror_owner(const char *, size_t, const char *node);
/* Whether a user of another node has that name. */
int	 cluster_mirror_remote(const char *, size_t);
/* A user of this node lost its name to another node's: closed. */
void	 cluster_mirror_evict(const char *, size_t);
/* Mirrors who holds a name a client here was closed for, once it is. */
void	 cluster_holder_mirrored(const char *, size_t);
/* Rooms: created, invited to, joined, left, talked in on other nodes. */
void	 cluster_mirror_room(const char *room, size_t, const char *creator,
	    size_t);
void	 cluster_mirror_invite(const char *room, size_t, const char *from,
	    size_t, const char *to, size_t);
void	 cluster_mirror_join(const char *room, size_t, const char *user,
	    size_t);
void	 cluster_mirror_room_member(const char *room, size_t,
	    const char *user, size_t);
void	 cluster_mirror_left(const char *room, size_t, const char *user,
	    size_t);
void	 cluster_mirror_room_text(const char *room, size_t, const char *user,
	    size_t, const char *text, size_t);
#else
static inline int	cluster_join(struct config *c, char *err, size_t len)
{ (void)c; (void)snprintf(err, len, "built without cluster support"); return -1; }
static inline void	cluster_start(const struct config *c, int fd)
{ (void)c; (void)fd; }
static inline int	cluster_on(void) { return 0; }
static inline int	cluster_degraded(void) { return 0; }
static inline int	cluster_owns(const void *p) { (void)p; return 0; }
static inline void	cluster_event(void *p, uint32_t e) { (void)p; (void)e; }
static inline int	cluster_timeout(int t) { return t; }
static inline void	cluster_timers(void) { }
static inline void	cluster_claim_name(const char *n, size_t l, uint32_t r,
    cluster_claim_fn f, void *a) { (void)n; (void)l; (void)r; (void)f; (void)a; }
static inline void	cluster_claim_cancel(void *a) { (void)a; }
static inline void	cluster_release_name(const char *n, size_t l)
{ (void)n; (void)l; }
static inline void	cluster_status(const char *n, size_t l, int s)
{ (void)n; (void)l; (void)s; }
static inline void	cluster_public_text(const char *f, size_t fl,
    const char *t, size_t tl) { (void)f; (void)fl; (void)t; (void)tl; }
static inline void	cluster_claim_room(const char *r, size_t rl,
    const char *u, size_t ul, cluster_claim_fn f, void *a)
{ (void)r; (void)rl; (void)u; (void)ul; (void)f; (void)a; }
static inline void	cluster_join_room(const char *r, size_t rl,
    const char *u, size_t ul, cluster_claim_fn f, void *a)
{ (void)r; (void)rl; (void)u; (void)ul; (void)f; (void)a; }
static inline void	cluster_invite(const char *r, size_t rl,
    const char *i, size_t il, const char **n, const size_t *l, size_t c)
{ (void)r; (void)rl; (void)i; (void)il; (void)n; (void)l; (void)c; }
static inline void	cluster_leave_room(const char *r, size_t rl,
    const char *u, size_t ul) { (void)r; (void)rl; (void)u; (void)ul; }
static inline void	cluster_room_text(const char *r, size_t rl,
    const char *u, size_t ul, const char *t, size_t tl)
{ (void)r; (void)rl; (void)u; (void)ul; (void)t; (void)tl; }
static inline void	cluster_private_text(const char *f, size_t fl,
    const char *to, size_t tol, const char *t, size_t tl)
{ (void)f; (void)fl; (void)to; (void)tol; (void)t; (void)tl; }
#endif

#endif
